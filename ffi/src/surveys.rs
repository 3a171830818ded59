//! Needs surveys in the bindings (issue 17, ADR 0022): a station's questionnaires in frozen
//! versions, one response per person kept in the person's household, and the counts of the
//! responses this phone holds.

use doorstep_core as core;
pub use doorstep_core::SurveySummary;
use doorstep_core::{HouseholdId, PersonId, ResponseId, SurveyId, SurveyVersionId};

use crate::error::{invalid, Result};
use crate::observe::ChangeEvent;
use crate::types::{prov, Provenance};
use crate::{guarded, Doorstep};

#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SurveyOption {
    /// Stable across versions, counted (`alone`, `meals`).
    pub code: String,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum QuestionKind {
    Single {
        options: Vec<SurveyOption>,
    },
    Multiple {
        options: Vec<SurveyOption>,
    },
    /// A whole number within the optional bounds.
    Number {
        min: Option<i64>,
        max: Option<i64>,
    },
    /// A point of `min..=max` (1–5).
    Scale {
        min: i64,
        max: i64,
    },
    Text,
    /// A type a newer app defined: shown, not answerable by this version.
    Unknown {
        name: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Question {
    /// The question's code in the survey (`living`); answers refer to it.
    pub id: String,
    pub label: String,
    pub kind: QuestionKind,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SurveyVersion {
    pub id: SurveyVersionId,
    pub number: u32,
    pub questions: Vec<Question>,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Survey {
    pub id: SurveyId,
    pub title: String,
    /// By number; the last is the latest.
    pub versions: Vec<SurveyVersion>,
    pub created: Provenance,
}

#[uniffi::remote(Record)]
pub struct SurveySummary {
    pub id: SurveyId,
    pub title: String,
    pub versions: u32,
}

#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum AnswerValue {
    Choice {
        code: String,
    },
    Choices {
        codes: Vec<String>,
    },
    Number {
        value: i64,
    },
    Scale {
        value: i64,
    },
    Text {
        text: String,
    },
    /// An answer a newer app wrote.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Answer {
    pub question: String,
    pub value: AnswerValue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ResponseStatus {
    Submitted,
    /// Kept, not counted (how a duplicate is settled).
    Withdrawn,
    Unrecognised,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SurveyResponse {
    pub id: ResponseId,
    pub person_id: PersonId,
    pub survey_id: SurveyId,
    /// The version it answered (kept when newer versions are published).
    pub version_id: SurveyVersionId,
    pub answers: Vec<Answer>,
    pub status: ResponseStatus,
    pub created: Provenance,
}

/// How many submitted responses this phone holds gave an answer.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct AnswerCount {
    pub version_id: SurveyVersionId,
    pub question: String,
    /// The option code (choices) or the point (scale); `None` for number and text.
    pub option: Option<String>,
    pub count: u32,
    /// The sum of the numbers (number, scale).
    pub sum: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Respondent {
    pub household_id: HouseholdId,
    pub person_id: PersonId,
    pub response_id: ResponseId,
}

impl From<core::SurveyOption> for SurveyOption {
    fn from(o: core::SurveyOption) -> Self {
        SurveyOption {
            code: o.code,
            label: o.label,
        }
    }
}

impl SurveyOption {
    fn to_core(&self) -> core::SurveyOption {
        core::SurveyOption {
            code: self.code.clone(),
            label: self.label.clone(),
        }
    }
}

impl From<core::Question> for Question {
    fn from(q: core::Question) -> Self {
        use core::QuestionKind as K;
        let opts = |o: Vec<core::SurveyOption>| o.into_iter().map(Into::into).collect();
        Question {
            id: q.id,
            label: q.label,
            kind: match q.kind {
                K::Single { options } => QuestionKind::Single {
                    options: opts(options),
                },
                K::Multiple { options } => QuestionKind::Multiple {
                    options: opts(options),
                },
                K::Number { min, max } => QuestionKind::Number { min, max },
                K::Scale { min, max } => QuestionKind::Scale { min, max },
                K::Text => QuestionKind::Text,
                K::Unknown { name } => QuestionKind::Unknown { name },
            },
        }
    }
}

impl Question {
    fn to_core(&self) -> Result<core::Question> {
        use core::QuestionKind as K;
        let opts = |o: &[SurveyOption]| o.iter().map(SurveyOption::to_core).collect();
        Ok(core::Question {
            id: self.id.clone(),
            label: self.label.clone(),
            kind: match &self.kind {
                QuestionKind::Single { options } => K::Single {
                    options: opts(options),
                },
                QuestionKind::Multiple { options } => K::Multiple {
                    options: opts(options),
                },
                QuestionKind::Number { min, max } => K::Number {
                    min: *min,
                    max: *max,
                },
                QuestionKind::Scale { min, max } => K::Scale {
                    min: *min,
                    max: *max,
                },
                QuestionKind::Text => K::Text,
                QuestionKind::Unknown { .. } => {
                    return Err(invalid("a question of an unknown type cannot be written"))
                }
            },
        })
    }
}

impl From<core::Answer> for Answer {
    fn from(a: core::Answer) -> Self {
        use core::AnswerValue as V;
        Answer {
            question: a.question,
            value: match a.value {
                V::Choice(code) => AnswerValue::Choice { code },
                V::Choices(codes) => AnswerValue::Choices { codes },
                V::Number(value) => AnswerValue::Number { value },
                V::Scale(value) => AnswerValue::Scale { value },
                V::Text(text) => AnswerValue::Text { text },
                V::Unknown => AnswerValue::Unknown,
            },
        }
    }
}

impl Answer {
    fn to_core(&self) -> Result<core::Answer> {
        use core::AnswerValue as V;
        Ok(core::Answer {
            question: self.question.clone(),
            value: match &self.value {
                AnswerValue::Choice { code } => V::Choice(code.clone()),
                AnswerValue::Choices { codes } => V::Choices(codes.clone()),
                AnswerValue::Number { value } => V::Number(*value),
                AnswerValue::Scale { value } => V::Scale(*value),
                AnswerValue::Text { text } => V::Text(text.clone()),
                AnswerValue::Unknown => return Err(invalid("an answer of an unknown type")),
            },
        })
    }
}

fn questions(qs: &[Question]) -> Result<Vec<core::Question>> {
    qs.iter().map(Question::to_core).collect()
}

fn answers(a: &[Answer]) -> Result<Vec<core::Answer>> {
    a.iter().map(Answer::to_core).collect()
}

impl From<core::SurveyResponse> for SurveyResponse {
    fn from(r: core::SurveyResponse) -> Self {
        SurveyResponse {
            id: r.id,
            person_id: r.person,
            survey_id: r.survey,
            version_id: r.version,
            answers: r.answers.into_iter().map(Into::into).collect(),
            status: match r.status {
                core::ResponseStatus::Submitted => ResponseStatus::Submitted,
                core::ResponseStatus::Withdrawn => ResponseStatus::Withdrawn,
                core::ResponseStatus::Unrecognised => ResponseStatus::Unrecognised,
            },
            created: prov(r.created),
        }
    }
}

impl From<core::Survey> for Survey {
    fn from(s: core::Survey) -> Self {
        Survey {
            id: s.id,
            title: s.title,
            versions: s
                .versions
                .into_iter()
                .map(|v| SurveyVersion {
                    id: v.id,
                    number: v.number,
                    questions: v.questions.into_iter().map(Into::into).collect(),
                    created: prov(v.created),
                })
                .collect(),
            created: prov(s.created),
        }
    }
}

impl Doorstep {
    fn survey_changed(&self, id: &core::SurveyId) {
        self.observers.emit(ChangeEvent::StationWorkChanged {
            document_id: id.to_string(),
        });
    }
}

#[uniffi::export]
impl Doorstep {
    /// Define a needs survey with its first version (seen by every worker of the station).
    pub fn create_survey(&self, title: String, questions: Vec<Question>) -> Result<SurveyId> {
        guarded(|| {
            let qs = self::questions(&questions)?;
            let id = self.store()?.create_survey(&title, &qs)?;
            self.survey_changed(&id);
            Ok(id)
        })
    }

    /// Publish a new, frozen version of a survey; its id. Earlier versions stay as they were.
    pub fn publish_survey_version(
        &self,
        survey_id: SurveyId,
        questions: Vec<Question>,
    ) -> Result<SurveyVersionId> {
        guarded(|| {
            let qs = self::questions(&questions)?;
            let v = self.store()?.publish_survey_version(survey_id, &qs)?;
            self.survey_changed(&survey_id);
            Ok(v)
        })
    }

    pub fn rename_survey(&self, survey_id: SurveyId, title: String) -> Result<()> {
        guarded(|| {
            self.store()?.rename_survey(survey_id, &title)?;
            self.survey_changed(&survey_id);
            Ok(())
        })
    }

    pub fn survey(&self, survey_id: SurveyId) -> Result<Survey> {
        guarded(|| Ok(self.store()?.survey(survey_id)?.into()))
    }

    /// The surveys this phone holds, by title.
    pub fn surveys(&self) -> Result<Vec<SurveySummary>> {
        guarded(|| Ok(self.store()?.surveys()?))
    }

    /// Record a person's answers to a version of a survey (checked against it); its id. A
    /// person answers a survey once: edit that response instead.
    pub fn respond_to_survey(
        &self,
        household_id: HouseholdId,
        person_id: PersonId,
        survey_id: SurveyId,
        version_id: SurveyVersionId,
        answers: Vec<Answer>,
    ) -> Result<ResponseId> {
        guarded(|| {
            let a = self::answers(&answers)?;
            self.write(household_id, |s, h| {
                s.respond_to_survey(h, person_id, survey_id, version_id, &a)
            })
        })
    }

    /// Replace a response's answers.
    pub fn edit_survey_response(
        &self,
        household_id: HouseholdId,
        response_id: ResponseId,
        answers: Vec<Answer>,
    ) -> Result<()> {
        guarded(|| {
            let a = self::answers(&answers)?;
            self.write(household_id, |s, h| {
                s.edit_survey_response(h, response_id, &a)
            })
        })
    }

    /// Withdraw a response: kept in the case file, no longer counted.
    pub fn withdraw_survey_response(
        &self,
        household_id: HouseholdId,
        response_id: ResponseId,
    ) -> Result<()> {
        guarded(|| {
            self.write(household_id, |s, h| {
                s.withdraw_survey_response(h, response_id)
            })
        })
    }

    pub fn survey_response(
        &self,
        household_id: HouseholdId,
        response_id: ResponseId,
    ) -> Result<SurveyResponse> {
        guarded(|| {
            Ok(self
                .store()?
                .survey_response(household_id, response_id)?
                .into())
        })
    }

    /// Every response of a household's persons, by id.
    pub fn survey_responses(&self, household_id: HouseholdId) -> Result<Vec<SurveyResponse>> {
        guarded(|| {
            Ok(self
                .store()?
                .household(household_id)?
                .responses
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// The persons of households this phone holds with a submitted response.
    pub fn respondents(&self, survey_id: SurveyId) -> Result<Vec<Respondent>> {
        guarded(|| {
            Ok(self
                .store()?
                .respondents(survey_id)?
                .into_iter()
                .map(|r| Respondent {
                    household_id: r.household,
                    person_id: r.person,
                    response_id: r.response,
                })
                .collect())
        })
    }

    /// Counts per version, question and option of the submitted responses this phone holds.
    pub fn survey_counts(&self, survey_id: SurveyId) -> Result<Vec<AnswerCount>> {
        guarded(|| {
            Ok(self
                .store()?
                .survey_counts(survey_id)?
                .into_iter()
                .map(|c| AnswerCount {
                    version_id: c.version,
                    question: c.question,
                    option: c.option,
                    count: c.count,
                    sum: c.sum,
                })
                .collect())
        })
    }
}
