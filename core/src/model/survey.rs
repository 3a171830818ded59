//! Needs surveys (一人一表, issue 17, ADR 0022): questionnaires a station defines, in frozen
//! versions, and one response per person, kept with the person's household.
//!
//! A version's questions and a response's answers are stored as one JSON value each (a
//! version is written once and never again; a response's answers are replaced whole), so
//! their shape is decoded here, leniently: a question type a newer app made reads as
//! [`QuestionKind::Unknown`] and its answers as [`AnswerValue::Unknown`].

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::model::ids::{HouseholdId, PersonId, ResponseId, SurveyId, SurveyVersionId};
use crate::model::provenance::Provenance;

/// The most questions in a version, options in a question, characters in a line of text.
pub const MAX_QUESTIONS: usize = 200;
pub const MAX_OPTIONS: usize = 50;
/// The longest free-text answer, in characters.
pub const MAX_ANSWER_CHARS: usize = 2_000;

/// One choice of a single- or multiple-choice question: a code the survey defines (stable
/// across versions, counted) and its label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SurveyOption {
    pub code: String,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuestionKind {
    Single {
        options: Vec<SurveyOption>,
    },
    Multiple {
        options: Vec<SurveyOption>,
    },
    /// A whole number (an age, yuan a month, meals a day), within the bounds if given.
    Number {
        min: Option<i64>,
        max: Option<i64>,
    },
    /// A point on a scale `min..=max` (满意度 1–5).
    Scale {
        min: i64,
        max: i64,
    },
    Text,
    /// A type a newer app defined: shown, never answered by this version.
    Unknown {
        name: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// The question's code within the survey (`q1`, `living_alone`): answers refer to it.
    pub id: String,
    pub label: String,
    pub kind: QuestionKind,
}

/// A published version: frozen once written.
#[derive(Clone, Debug, PartialEq)]
pub struct SurveyVersion {
    pub id: SurveyVersionId,
    /// 1, 2, … in the order the versions were published (two phones publishing at once
    /// may give two versions one number; both stand).
    pub number: u32,
    pub questions: Vec<Question>,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Survey {
    pub id: SurveyId,
    pub title: String,
    /// By number, then by id.
    pub versions: Vec<SurveyVersion>,
    pub created: Provenance,
}

impl Survey {
    pub fn version(&self, id: SurveyVersionId) -> Option<&SurveyVersion> {
        self.versions.iter().find(|v| v.id == id)
    }
    pub fn latest(&self) -> Option<&SurveyVersion> {
        self.versions.last()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum AnswerValue {
    Choice(String),
    Choices(Vec<String>),
    Number(i64),
    Scale(i64),
    Text(String),
    /// An answer shape a newer app wrote.
    Unknown,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub question: String,
    pub value: AnswerValue,
}

/// Whether a response counts: a withdrawn one is kept (history) but not counted, and it is
/// how a duplicate is settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseStatus {
    Submitted,
    Withdrawn,
    Unrecognised,
}

impl ResponseStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ResponseStatus::Submitted => "submitted",
            ResponseStatus::Withdrawn => "withdrawn",
            ResponseStatus::Unrecognised => "unrecognised",
        }
    }
    pub fn read(s: &str) -> Self {
        match s {
            "submitted" => ResponseStatus::Submitted,
            "withdrawn" => ResponseStatus::Withdrawn,
            _ => ResponseStatus::Unrecognised,
        }
    }
}

/// One person's answers to one version of a survey (a record of the household document).
#[derive(Clone, Debug, PartialEq)]
pub struct SurveyResponse {
    pub id: ResponseId,
    pub person: PersonId,
    pub survey: SurveyId,
    pub version: SurveyVersionId,
    pub answers: Vec<Answer>,
    pub status: ResponseStatus,
    pub created: Provenance,
}

/// How many held responses gave an answer (per version, question and option; `option` is
/// `None` for number and text questions, `sum` is the numbers' sum for number and scale).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnswerCount {
    pub version: SurveyVersionId,
    pub question: String,
    pub option: Option<String>,
    pub count: u32,
    pub sum: Option<i64>,
}

/// A person of a household this device holds who answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Respondent {
    pub household: HouseholdId,
    pub person: PersonId,
    pub response: ResponseId,
}

/// One row of the list of surveys (from the index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SurveySummary {
    pub id: SurveyId,
    pub title: String,
    pub versions: u32,
}

fn line(s: &str, what: &'static str) -> Result<String> {
    crate::model::values::required_line(s, what)
}

fn code_ok(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= 64
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
}

/// Check a version's questions as a phone writes them (clear errors, nothing stored yet).
pub fn check_questions(questions: &[Question]) -> Result<Vec<Question>> {
    if questions.is_empty() || questions.len() > MAX_QUESTIONS {
        return Err(Error::InvalidInput("a survey version has 1-200 questions"));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(questions.len());
    for q in questions {
        if !code_ok(&q.id) {
            return Err(Error::InvalidInput(
                "a question id is 1-64 letters, digits, '_', '-' or '.'",
            ));
        }
        if !seen.insert(q.id.clone()) {
            return Err(Error::InvalidInput("two questions share an id"));
        }
        let label = line(&q.label, "a question needs a label")?;
        let kind = match &q.kind {
            QuestionKind::Single { options } | QuestionKind::Multiple { options } => {
                if options.is_empty() || options.len() > MAX_OPTIONS {
                    return Err(Error::InvalidInput("a choice question has 1-50 options"));
                }
                let mut codes = std::collections::BTreeSet::new();
                let mut checked = Vec::new();
                for o in options {
                    if !code_ok(&o.code) {
                        return Err(Error::InvalidInput(
                            "an option code is 1-64 letters, digits, '_', '-' or '.'",
                        ));
                    }
                    if !codes.insert(o.code.clone()) {
                        return Err(Error::InvalidInput("two options share a code"));
                    }
                    checked.push(SurveyOption {
                        code: o.code.clone(),
                        label: line(&o.label, "an option needs a label")?,
                    });
                }
                if matches!(q.kind, QuestionKind::Single { .. }) {
                    QuestionKind::Single { options: checked }
                } else {
                    QuestionKind::Multiple { options: checked }
                }
            }
            QuestionKind::Number { min, max } => {
                if let (Some(a), Some(b)) = (min, max) {
                    if a > b {
                        return Err(Error::InvalidInput(
                            "a number's minimum is above its maximum",
                        ));
                    }
                }
                q.kind.clone()
            }
            QuestionKind::Scale { min, max } => {
                if min >= max || max - min > 100 {
                    return Err(Error::InvalidInput(
                        "a scale runs from its minimum up to at most 100 points higher",
                    ));
                }
                q.kind.clone()
            }
            QuestionKind::Text => QuestionKind::Text,
            QuestionKind::Unknown { .. } => {
                return Err(Error::InvalidInput("unknown question type"))
            }
        };
        out.push(Question {
            id: q.id.clone(),
            label,
            kind,
        });
    }
    Ok(out)
}

/// Check answers against the version they answer. Unanswered questions are allowed (an
/// elderly person may decline one); an answer to no question of the version, of the wrong
/// shape or out of bounds is refused.
pub fn check_answers(version: &SurveyVersion, answers: &[Answer]) -> Result<Vec<Answer>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(answers.len());
    for a in answers {
        let q = version
            .questions
            .iter()
            .find(|q| q.id == a.question)
            .ok_or(Error::InvalidInput(
                "an answer to a question this version does not ask",
            ))?;
        if !seen.insert(a.question.clone()) {
            return Err(Error::InvalidInput("two answers to one question"));
        }
        let has = |options: &[SurveyOption], c: &str| options.iter().any(|o| o.code == c);
        let value = match (&q.kind, &a.value) {
            (QuestionKind::Single { options }, AnswerValue::Choice(c)) if has(options, c) => {
                a.value.clone()
            }
            (QuestionKind::Multiple { options }, AnswerValue::Choices(cs)) => {
                let mut cs = cs.clone();
                cs.sort();
                cs.dedup();
                if cs.is_empty() || !cs.iter().all(|c| has(options, c)) {
                    return Err(Error::InvalidInput(
                        "a choice that is not one of the options",
                    ));
                }
                AnswerValue::Choices(cs)
            }
            (QuestionKind::Single { .. } | QuestionKind::Multiple { .. }, _) => {
                return Err(Error::InvalidInput(
                    "a choice that is not one of the options",
                ))
            }
            (QuestionKind::Number { min, max }, AnswerValue::Number(n)) => {
                if min.is_some_and(|m| *n < m) || max.is_some_and(|m| *n > m) {
                    return Err(Error::InvalidInput(
                        "a number outside the question's bounds",
                    ));
                }
                a.value.clone()
            }
            (QuestionKind::Scale { min, max }, AnswerValue::Scale(n)) => {
                if n < min || n > max {
                    return Err(Error::InvalidInput("a point outside the question's scale"));
                }
                a.value.clone()
            }
            (QuestionKind::Text, AnswerValue::Text(t)) => {
                let t = crate::model::values::free_text(t.trim())?;
                if t.is_empty() || t.chars().count() > MAX_ANSWER_CHARS {
                    return Err(Error::InvalidInput("a text answer is 1-2000 characters"));
                }
                AnswerValue::Text(t.to_owned())
            }
            (QuestionKind::Unknown { .. }, _) => {
                return Err(Error::InvalidInput(
                    "this app cannot answer a question of a newer type",
                ))
            }
            _ => return Err(Error::InvalidInput("an answer of the wrong type")),
        };
        out.push(Answer {
            question: a.question.clone(),
            value,
        });
    }
    Ok(out)
}

// ----- stored form -----------------------------------------------------------------------

fn options_json(options: &[SurveyOption]) -> Value {
    options
        .iter()
        .map(|o| json!({"code": o.code, "label": o.label}))
        .collect()
}

/// The stored form of a version's questions (one JSON array).
pub fn questions_json(questions: &[Question]) -> String {
    let qs: Vec<Value> = questions
        .iter()
        .map(|q| {
            let mut m = Map::new();
            m.insert("id".into(), q.id.clone().into());
            m.insert("label".into(), q.label.clone().into());
            let t = match &q.kind {
                QuestionKind::Single { options } => {
                    m.insert("options".into(), options_json(options));
                    "single"
                }
                QuestionKind::Multiple { options } => {
                    m.insert("options".into(), options_json(options));
                    "multiple"
                }
                QuestionKind::Number { min, max } => {
                    m.insert("min".into(), json!(min));
                    m.insert("max".into(), json!(max));
                    "number"
                }
                QuestionKind::Scale { min, max } => {
                    m.insert("min".into(), json!(min));
                    m.insert("max".into(), json!(max));
                    "scale"
                }
                QuestionKind::Text => "text",
                QuestionKind::Unknown { name } => name.as_str(),
            };
            m.insert("type".into(), t.into());
            Value::Object(m)
        })
        .collect();
    Value::Array(qs).to_string()
}

fn bad(what: &'static str) -> Error {
    Error::MalformedDocument(what.into())
}

fn str_of(v: &Value, key: &str, what: &'static str) -> Result<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| bad(what))
}

fn int_of(v: &Value, key: &str) -> Result<Option<i64>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n.as_i64().map(Some).ok_or_else(|| bad("survey bound")),
    }
}

fn read_options(v: &Value) -> Result<Vec<SurveyOption>> {
    v.get("options")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("survey options"))?
        .iter()
        .map(|o| {
            Ok(SurveyOption {
                code: str_of(o, "code", "option code")?,
                label: str_of(o, "label", "option label")?,
            })
        })
        .collect()
}

/// Read a version's stored questions (a type this version does not know reads as
/// `Unknown`; a broken shape is an error).
pub fn read_questions(stored: &str) -> Result<Vec<Question>> {
    let v: Value = serde_json::from_str(stored).map_err(|_| bad("survey questions"))?;
    v.as_array()
        .ok_or_else(|| bad("survey questions"))?
        .iter()
        .map(|q| {
            let t = str_of(q, "type", "question type")?;
            let kind = match t.as_str() {
                "single" => QuestionKind::Single {
                    options: read_options(q)?,
                },
                "multiple" => QuestionKind::Multiple {
                    options: read_options(q)?,
                },
                "number" => QuestionKind::Number {
                    min: int_of(q, "min")?,
                    max: int_of(q, "max")?,
                },
                "scale" => QuestionKind::Scale {
                    min: int_of(q, "min")?.ok_or_else(|| bad("scale bound"))?,
                    max: int_of(q, "max")?.ok_or_else(|| bad("scale bound"))?,
                },
                "text" => QuestionKind::Text,
                _ => QuestionKind::Unknown { name: t },
            };
            Ok(Question {
                id: str_of(q, "id", "question id")?,
                label: str_of(q, "label", "question label")?,
                kind,
            })
        })
        .collect()
}

/// The stored form of answers: `{question: {choice|choices|number|scale|text: value}}`,
/// self-describing so the index counts them without the survey's document.
pub fn answers_json(answers: &[Answer]) -> String {
    let mut m = Map::new();
    for a in answers {
        let v = match &a.value {
            AnswerValue::Choice(c) => json!({"choice": c}),
            AnswerValue::Choices(cs) => json!({"choices": cs}),
            AnswerValue::Number(n) => json!({"number": n}),
            AnswerValue::Scale(n) => json!({"scale": n}),
            AnswerValue::Text(t) => json!({"text": t}),
            AnswerValue::Unknown => continue,
        };
        m.insert(a.question.clone(), v);
    }
    Value::Object(m).to_string()
}

/// Read stored answers, by question id.
pub fn read_answers(stored: &str) -> Result<Vec<Answer>> {
    let v: Value = serde_json::from_str(stored).map_err(|_| bad("survey answers"))?;
    let m = v.as_object().ok_or_else(|| bad("survey answers"))?;
    m.iter()
        .map(|(q, a)| {
            let obj = a.as_object().ok_or_else(|| bad("survey answer"))?;
            let value = if let Some(c) = obj.get("choice") {
                AnswerValue::Choice(c.as_str().ok_or_else(|| bad("choice"))?.to_owned())
            } else if let Some(cs) = obj.get("choices") {
                AnswerValue::Choices(
                    cs.as_array()
                        .ok_or_else(|| bad("choices"))?
                        .iter()
                        .map(|c| c.as_str().map(str::to_owned).ok_or_else(|| bad("choices")))
                        .collect::<Result<_>>()?,
                )
            } else if let Some(n) = obj.get("number") {
                AnswerValue::Number(n.as_i64().ok_or_else(|| bad("number"))?)
            } else if let Some(n) = obj.get("scale") {
                AnswerValue::Scale(n.as_i64().ok_or_else(|| bad("scale"))?)
            } else if let Some(t) = obj.get("text") {
                AnswerValue::Text(t.as_str().ok_or_else(|| bad("text"))?.to_owned())
            } else {
                AnswerValue::Unknown
            };
            Ok(Answer {
                question: q.clone(),
                value,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version() -> SurveyVersion {
        SurveyVersion {
            id: SurveyVersionId::new(),
            number: 1,
            questions: check_questions(&sample_questions()).unwrap(),
            created: Provenance {
                worker: crate::model::ids::WorkerId::new(),
                device: crate::model::ids::DeviceId::new(),
                at: crate::model::time::Timestamp(0),
            },
        }
    }

    pub(crate) fn sample_questions() -> Vec<Question> {
        let opt = |c: &str, l: &str| SurveyOption {
            code: c.into(),
            label: l.into(),
        };
        vec![
            Question {
                id: "living".into(),
                label: "居住情况".into(),
                kind: QuestionKind::Single {
                    options: vec![opt("alone", "独居"), opt("spouse", "与配偶同住")],
                },
            },
            Question {
                id: "needs".into(),
                label: "需要哪些服务".into(),
                kind: QuestionKind::Multiple {
                    options: vec![
                        opt("meals", "助餐"),
                        opt("medical", "助医"),
                        opt("chat", "陪伴"),
                    ],
                },
            },
            Question {
                id: "age".into(),
                label: "年龄".into(),
                kind: QuestionKind::Number {
                    min: Some(0),
                    max: Some(130),
                },
            },
            Question {
                id: "mood".into(),
                label: "心情".into(),
                kind: QuestionKind::Scale { min: 1, max: 5 },
            },
            Question {
                id: "words".into(),
                label: "想说的话".into(),
                kind: QuestionKind::Text,
            },
        ]
    }

    #[test]
    fn questions_and_answers_round_trip_and_unknown_types_stay_readable() {
        let v = version();
        assert_eq!(
            read_questions(&questions_json(&v.questions)).unwrap(),
            v.questions
        );
        let stored = r#"[{"id":"q","label":"L","type":"map_pin","zoom":3}]"#;
        assert_eq!(
            read_questions(stored).unwrap()[0].kind,
            QuestionKind::Unknown {
                name: "map_pin".into()
            }
        );
        let answers = vec![
            Answer {
                question: "living".into(),
                value: AnswerValue::Choice("alone".into()),
            },
            Answer {
                question: "needs".into(),
                value: AnswerValue::Choices(vec!["meals".into(), "chat".into()]),
            },
            Answer {
                question: "mood".into(),
                value: AnswerValue::Scale(4),
            },
        ];
        let checked = check_answers(&v, &answers).unwrap();
        let mut back = read_answers(&answers_json(&checked)).unwrap();
        back.sort_by(|a, b| a.question.cmp(&b.question));
        assert_eq!(back.len(), 3);
        assert_eq!(
            back[2].value,
            AnswerValue::Choices(vec!["chat".into(), "meals".into()])
        );
        assert_eq!(
            read_answers(r#"{"q":{"pin":[1,2]}}"#).unwrap()[0].value,
            AnswerValue::Unknown
        );
        assert!(read_answers("[1]").is_err());
        assert!(read_questions("{}").is_err());
    }

    #[test]
    fn answers_are_checked_against_their_version() {
        let v = version();
        let one = |q: &str, value: AnswerValue| {
            check_answers(
                &v,
                &[Answer {
                    question: q.into(),
                    value,
                }],
            )
        };
        assert!(one("living", AnswerValue::Choice("alone".into())).is_ok());
        assert!(one("living", AnswerValue::Choice("nope".into())).is_err());
        assert!(one("living", AnswerValue::Number(1)).is_err());
        assert!(one("needs", AnswerValue::Choices(vec![])).is_err());
        assert!(one("age", AnswerValue::Number(131)).is_err());
        assert!(one("age", AnswerValue::Number(80)).is_ok());
        assert!(one("mood", AnswerValue::Scale(0)).is_err());
        assert!(one("mood", AnswerValue::Scale(5)).is_ok());
        assert!(one("words", AnswerValue::Text("  ".into())).is_err());
        assert!(one("words", AnswerValue::Text("想孙子".into())).is_ok());
        assert!(one("other", AnswerValue::Text("x".into())).is_err());
        let twice = Answer {
            question: "mood".into(),
            value: AnswerValue::Scale(3),
        };
        assert!(check_answers(&v, &[twice.clone(), twice]).is_err());
    }

    #[test]
    fn definitions_are_checked() {
        let mut qs = sample_questions();
        qs[1].id = "living".into();
        assert!(check_questions(&qs).is_err(), "duplicate question id");
        let mut qs = sample_questions();
        qs[3].kind = QuestionKind::Scale { min: 5, max: 1 };
        assert!(check_questions(&qs).is_err());
        let mut qs = sample_questions();
        qs[0].kind = QuestionKind::Single { options: vec![] };
        assert!(check_questions(&qs).is_err());
        assert!(check_questions(&[]).is_err());
        let mut qs = sample_questions();
        qs[0].id = "有空格 x".into();
        assert!(check_questions(&qs).is_err());
    }
}
