//! A duplicate needs-survey response in the conflict review and the case file (ADR 0022
//! §7): each response shown by its survey, version and answers with their labels, so the
//! supervisor can choose the one to keep (`resolve` withdraws the others).

use std::collections::{BTreeMap, HashMap};

use doorstep_core::doc::read_survey_document;
use doorstep_core::{SurveyId, WorkKind};

use super::*;

/// The surveys read so far, by id: a review page reads each survey once.
#[derive(Default)]
pub(super) struct SurveyTitles(HashMap<SurveyId, Option<doorstep_core::Survey>>);

/// "重复问卷 · <person's name>": whose responses they are.
pub(super) fn duplicate_heading(
    file: &doorstep_core::read_model::CaseFile,
    conflict: &doorstep_core::Conflict,
    words: &BTreeMap<&str, &str>,
) -> String {
    let person = match conflict.field.entity {
        doorstep_core::EntityRef::Response(r) => file
            .household
            .responses
            .iter()
            .find(|x| x.id == r)
            .and_then(|x| file.household.persons.iter().find(|p| p.id == x.person))
            .map(|p| p.name.clone()),
        _ => None,
    };
    format!(
        "{} · {}",
        words
            .get("duplicate_response")
            .copied()
            .unwrap_or("duplicate"),
        person.unwrap_or_default()
    )
}

/// One response as the review shows it: the survey, its version, each answer with its
/// question's and options' labels (and the response's id, which the choice keeps).
pub(super) fn response_summary<S: ServerStore>(
    c: &Console<S>,
    station: StationId,
    surveys: &mut SurveyTitles,
    file: &doorstep_core::read_model::CaseFile,
    response: Option<&str>,
    words: &BTreeMap<&str, &str>,
) -> Result<String, PageError> {
    use doorstep_core::{AnswerValue, QuestionKind};
    let Some(r) = response.and_then(|id| {
        file.household
            .responses
            .iter()
            .find(|r| r.id.to_string() == id)
    }) else {
        return Ok(response.unwrap_or_default().to_owned());
    };
    let survey = match surveys.0.get(&r.survey) {
        Some(s) => s.clone(),
        None => {
            let doc = HouseholdId::from_uuid(*r.survey.as_uuid());
            let read = match c.work_document(station, doc, WorkKind::Survey) {
                Ok(d) => read_survey_document(&d).ok(),
                Err(PageError::Store(e)) => return Err(PageError::Store(e)),
                Err(_) => None,
            };
            surveys.0.insert(r.survey, read.clone());
            read
        }
    };
    let version = survey.as_ref().and_then(|s| s.version(r.version));
    let mut parts = vec![format!(
        "《{}》 {} {}",
        survey.as_ref().map(|s| s.title.as_str()).unwrap_or("?"),
        words.get("version").copied().unwrap_or("version"),
        version
            .map(|v| v.number.to_string())
            .unwrap_or_else(|| "?".into())
    )];
    for a in &r.answers {
        let question = version.and_then(|v| v.questions.iter().find(|q| q.id == a.question));
        let options: &[doorstep_core::SurveyOption] = match question.map(|q| &q.kind) {
            Some(QuestionKind::Single { options } | QuestionKind::Multiple { options }) => options,
            _ => &[],
        };
        let label = |code: &str| {
            options
                .iter()
                .find(|o| o.code == code)
                .map(|o| o.label.clone())
                .unwrap_or_else(|| code.to_owned())
        };
        let shown = match &a.value {
            AnswerValue::Choice(code) => label(code),
            AnswerValue::Choices(codes) => codes
                .iter()
                .map(|c| label(c))
                .collect::<Vec<_>>()
                .join("、"),
            AnswerValue::Number(n) | AnswerValue::Scale(n) => n.to_string(),
            AnswerValue::Text(t) => t.clone(),
            AnswerValue::Unknown => "?".into(),
        };
        parts.push(format!(
            "{}：{}",
            question.map(|q| q.label.as_str()).unwrap_or(&a.question),
            shown
        ));
    }
    parts.push(r.id.to_string());
    Ok(parts.join("；"))
}
