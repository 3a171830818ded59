//! A needs survey's answers counted per version, question and option (ADR 0022), from the
//! responses read out of the station's household documents by the core's reader. Pure: the
//! page gathers the survey and the responses, this counts, the template shows. Counted as
//! the phones count (`ix_survey_answers`): submitted responses only; each option chosen,
//! each scale point, each number (with their sum), each text answered (never copied).

use std::collections::BTreeMap;

use doorstep_core::{AnswerValue, QuestionKind, ResponseStatus, SurveyResponse, SurveyVersion};

/// One option's (or scale point's) count.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OptionCount {
    pub code: String,
    pub label: String,
    pub count: u32,
    /// Of the version's responses, in whole percent (rounded down).
    pub percent: u32,
}

/// A number or scale question's summary.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NumberSummary {
    pub count: u32,
    pub sum: i64,
    pub min: i64,
    pub max: i64,
    /// The mean to one decimal, as shown.
    pub mean: String,
}

/// What one question was answered.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct QuestionCount {
    pub id: String,
    pub label: String,
    /// `single`, `multiple`, `number`, `scale`, `text` or the unknown type's name.
    pub kind: String,
    /// Responses that answered it.
    pub answered: u32,
    /// Single and multiple choice: every option of the version, in its order, then any
    /// code answered that the version does not define; scale: every point.
    pub options: Vec<OptionCount>,
    /// Number and scale questions answered at least once.
    pub numbers: Option<NumberSummary>,
}

/// One version's counts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VersionCount {
    pub id: String,
    pub number: u32,
    /// Submitted responses to this version.
    pub responses: u32,
    pub questions: Vec<QuestionCount>,
}

fn percent(n: u32, of: u32) -> u32 {
    (u64::from(n) * 100)
        .checked_div(u64::from(of))
        .map(|p| p as u32)
        .unwrap_or(0)
}

/// Count the submitted responses (of any survey: those of another version are skipped) to
/// one version.
pub fn count_version<'a>(
    version: &SurveyVersion,
    responses: impl IntoIterator<Item = &'a SurveyResponse>,
) -> VersionCount {
    let responses: Vec<&SurveyResponse> = responses
        .into_iter()
        .filter(|r| r.version == version.id && r.status == ResponseStatus::Submitted)
        .collect();
    let total = responses.len() as u32;
    let questions = version
        .questions
        .iter()
        .map(|q| {
            let answers: Vec<&AnswerValue> = responses
                .iter()
                .filter_map(|r| r.answers.iter().find(|a| a.question == q.id))
                .map(|a| &a.value)
                .filter(|v| !matches!(v, AnswerValue::Unknown))
                .collect();
            let mut chosen: BTreeMap<String, u32> = BTreeMap::new();
            let mut numbers: Vec<i64> = Vec::new();
            for a in &answers {
                match a {
                    AnswerValue::Choice(c) => *chosen.entry(c.clone()).or_default() += 1,
                    AnswerValue::Choices(cs) => {
                        for c in cs {
                            *chosen.entry(c.clone()).or_default() += 1;
                        }
                    }
                    AnswerValue::Number(n) | AnswerValue::Scale(n) => numbers.push(*n),
                    AnswerValue::Text(_) | AnswerValue::Unknown => {}
                }
            }
            let mut options = Vec::new();
            let (kind, defined): (String, Vec<(String, String)>) = match &q.kind {
                QuestionKind::Single { options } => (
                    "single".into(),
                    options
                        .iter()
                        .map(|o| (o.code.clone(), o.label.clone()))
                        .collect(),
                ),
                QuestionKind::Multiple { options } => (
                    "multiple".into(),
                    options
                        .iter()
                        .map(|o| (o.code.clone(), o.label.clone()))
                        .collect(),
                ),
                QuestionKind::Scale { min, max } => (
                    "scale".into(),
                    (*min..=*max)
                        .take(101)
                        .map(|p| (p.to_string(), p.to_string()))
                        .collect(),
                ),
                QuestionKind::Number { .. } => ("number".into(), Vec::new()),
                QuestionKind::Text => ("text".into(), Vec::new()),
                QuestionKind::Unknown { name } => (name.clone(), Vec::new()),
            };
            if matches!(q.kind, QuestionKind::Scale { .. }) {
                for n in &numbers {
                    *chosen.entry(n.to_string()).or_default() += 1;
                }
            }
            for (code, label) in &defined {
                let count = chosen.remove(code).unwrap_or(0);
                options.push(OptionCount {
                    code: code.clone(),
                    label: label.clone(),
                    count,
                    percent: percent(count, total),
                });
            }
            // A code the version does not define (written by a newer app): shown as stored.
            for (code, count) in chosen {
                if matches!(
                    q.kind,
                    QuestionKind::Single { .. }
                        | QuestionKind::Multiple { .. }
                        | QuestionKind::Scale { .. }
                ) {
                    options.push(OptionCount {
                        label: code.clone(),
                        code,
                        count,
                        percent: percent(count, total),
                    });
                }
            }
            let numbers = (!numbers.is_empty()
                && matches!(
                    q.kind,
                    QuestionKind::Number { .. } | QuestionKind::Scale { .. }
                ))
            .then(|| {
                let count = numbers.len() as u32;
                let sum: i64 = numbers.iter().fold(0i64, |s, n| s.saturating_add(*n));
                let tenths = (i128::from(sum) * 10) / i128::from(count);
                NumberSummary {
                    count,
                    sum,
                    min: numbers.iter().copied().min().unwrap_or(0),
                    max: numbers.iter().copied().max().unwrap_or(0),
                    mean: format!(
                        "{}{}.{}",
                        if tenths < 0 { "-" } else { "" },
                        tenths.abs() / 10,
                        tenths.abs() % 10
                    ),
                }
            });
            QuestionCount {
                id: q.id.clone(),
                label: q.label.clone(),
                kind,
                answered: answers.len() as u32,
                options,
                numbers,
            }
        })
        .collect();
    VersionCount {
        id: version.id.to_string(),
        number: version.number,
        responses: total,
        questions,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use doorstep_core::*;

    fn version() -> SurveyVersion {
        let opt = |c: &str, l: &str| SurveyOption {
            code: c.into(),
            label: l.into(),
        };
        SurveyVersion {
            id: SurveyVersionId::new(),
            number: 1,
            questions: vec![
                Question {
                    id: "living".into(),
                    label: "居住情况".into(),
                    kind: QuestionKind::Single {
                        options: vec![opt("alone", "独居"), opt("with_family", "与家人同住")],
                    },
                },
                Question {
                    id: "help".into(),
                    label: "需要的帮助".into(),
                    kind: QuestionKind::Multiple {
                        options: vec![opt("meals", "助餐"), opt("medical", "就医")],
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
                    kind: QuestionKind::Scale { min: 1, max: 3 },
                },
                Question {
                    id: "words".into(),
                    label: "想说的话".into(),
                    kind: QuestionKind::Text,
                },
            ],
            created: Provenance {
                worker: WorkerId::new(),
                device: DeviceId::new(),
                at: Timestamp(0),
            },
        }
    }

    fn response(v: &SurveyVersion, status: ResponseStatus, answers: Vec<Answer>) -> SurveyResponse {
        SurveyResponse {
            id: ResponseId::new(),
            person: PersonId::new(),
            survey: SurveyId::new(),
            version: v.id,
            answers,
            status,
            created: v.created,
        }
    }

    fn a(q: &str, value: AnswerValue) -> Answer {
        Answer {
            question: q.into(),
            value,
        }
    }

    #[test]
    fn counts_submitted_responses_per_question_and_option() {
        let v = version();
        let rs = vec![
            response(
                &v,
                ResponseStatus::Submitted,
                vec![
                    a("living", AnswerValue::Choice("alone".into())),
                    a(
                        "help",
                        AnswerValue::Choices(vec!["meals".into(), "medical".into()]),
                    ),
                    a("age", AnswerValue::Number(81)),
                    a("mood", AnswerValue::Scale(2)),
                    a("words", AnswerValue::Text("想孙子".into())),
                ],
            ),
            response(
                &v,
                ResponseStatus::Submitted,
                vec![
                    a("living", AnswerValue::Choice("alone".into())),
                    a("help", AnswerValue::Choices(vec!["meals".into()])),
                    a("age", AnswerValue::Number(76)),
                    a("mood", AnswerValue::Scale(3)),
                ],
            ),
            // Withdrawn: not counted.
            response(
                &v,
                ResponseStatus::Withdrawn,
                vec![a("living", AnswerValue::Choice("with_family".into()))],
            ),
        ];
        let c = count_version(&v, &rs);
        assert_eq!(c.responses, 2);
        let q = |id: &str| c.questions.iter().find(|q| q.id == id).unwrap();
        let n = |id: &str, code: &str| {
            q(id)
                .options
                .iter()
                .find(|o| o.code == code)
                .map(|o| (o.count, o.percent))
                .unwrap()
        };
        assert_eq!(n("living", "alone"), (2, 100));
        assert_eq!(n("living", "with_family"), (0, 0));
        assert_eq!(n("help", "meals"), (2, 100));
        assert_eq!(n("help", "medical"), (1, 50));
        assert_eq!(q("mood").options.len(), 3, "every point shown");
        assert_eq!(n("mood", "1"), (0, 0));
        assert_eq!(n("mood", "3"), (1, 50));
        let age = q("age").numbers.clone().unwrap();
        assert_eq!((age.count, age.sum, age.min, age.max), (2, 157, 76, 81));
        assert_eq!(age.mean, "78.5");
        assert_eq!(q("mood").numbers.clone().unwrap().mean, "2.5");
        assert_eq!((q("words").answered, q("words").options.len()), (1, 0));
        assert!(q("words").numbers.is_none());
    }

    #[test]
    fn another_versions_responses_and_unknown_codes() {
        let v = version();
        let other = version();
        let rs = vec![
            response(
                &other,
                ResponseStatus::Submitted,
                vec![a("living", AnswerValue::Choice("alone".into()))],
            ),
            response(
                &v,
                ResponseStatus::Submitted,
                vec![a("living", AnswerValue::Choice("in_care_home".into()))],
            ),
        ];
        let c = count_version(&v, &rs);
        assert_eq!(c.responses, 1);
        let living = &c.questions[0];
        assert_eq!(living.options.len(), 3);
        assert_eq!(living.options[2].code, "in_care_home");
        assert_eq!(living.options[2].count, 1);
        assert_eq!(count_version(&v, &[]).questions[0].options[0].percent, 0);
    }
}
