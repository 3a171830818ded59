//! Needs surveys (ADR 0022): the survey's own document, and a person's response as a record
//! of the person's household.
//!
//! ```text
//! ROOT { schema: 1, kind: "survey", id, station, created: {by, dev, at},
//!        survey: { title: cell,
//!                  versions: { <version id>: { number: int, questions: str (JSON),
//!                                              created: {by, dev, at} } } } }
//! household ROOT.responses.<response id> = { person, survey, version: cell (fixed);
//!        answers: cell (JSON); status: cell; created }
//! ```
//! A version is written once, whole, under a fresh id: nothing merges inside it and the
//! server refuses a change to it (`frozen_parts`).

use crate::doc::{Doc, Tx};
use automerge::{ObjType, ScalarValue, Value, ROOT};

use crate::doc::cells::*;
use crate::doc::conflicts::Review;
use crate::doc::write::{guard_conflict, new_record, record, require_person};
use crate::error::{Error, Result};
use crate::model::ids::*;
use crate::model::policy::EntityKind;
use crate::model::provenance::*;
use crate::model::station_work::WorkKind;
use crate::model::survey::*;

const VERSIONS: &str = "versions";

fn survey_obj<R: Doc>(doc: &R) -> Result<ObjId> {
    entity_obj(doc, EntityKind::Survey, None)?.ok_or(Error::NotAHousehold("survey map missing"))
}

fn versions_obj<R: Doc>(doc: &R) -> Result<ObjId> {
    get_map(doc, &survey_obj(doc)?, VERSIONS)?.ok_or(Error::NotAHousehold("survey versions"))
}

/// Write a new survey document with its first version.
pub(crate) fn create_survey<T: Tx>(
    tx: &mut T,
    id: SurveyId,
    version: SurveyVersionId,
    station: StationId,
    title: &str,
    questions: &[Question],
    p: &Provenance,
) -> Result<()> {
    let title = crate::model::values::required_line(title, "a survey needs a title")?;
    let questions = check_questions(questions)?;
    let s = crate::doc::work::root_skeleton(tx, WorkKind::Survey, &id.to_string(), station, p)?;
    write_cell(tx, &s, "title", Some(&title), p)?;
    tx.put_object(&s, VERSIONS, ObjType::Map)?;
    put_version(tx, version, 1, &questions, p)
}

fn put_version<T: Tx>(
    tx: &mut T,
    id: SurveyVersionId,
    number: u32,
    questions: &[Question],
    p: &Provenance,
) -> Result<()> {
    let versions = versions_obj(tx)?;
    let v = tx.put_object(&versions, id.to_string(), ObjType::Map)?;
    tx.put(&v, "number", i64::from(number))?;
    tx.put(&v, "questions", questions_json(questions))?;
    let created = tx.put_object(&v, "created", ObjType::Map)?;
    put_provenance(tx, &created, p)?;
    // Its scalars are values of this actor's: the registry names its owner (ADR 0035).
    crate::doc::cells::register_writer(tx, &v, "number", p)
}

/// Publish a new version (numbered after the highest this phone holds); the earlier ones
/// stay as they were, readable and answerable.
pub(crate) fn publish_version<T: Tx>(
    tx: &mut T,
    id: SurveyVersionId,
    questions: &[Question],
    p: &Provenance,
) -> Result<u32> {
    let questions = check_questions(questions)?;
    let next = read_versions_of(tx)?
        .iter()
        .map(|v| v.number)
        .max()
        .unwrap_or(0)
        .checked_add(1)
        .ok_or(Error::InvalidInput("too many versions"))?;
    put_version(tx, id, next, &questions, p)?;
    Ok(next)
}

pub(crate) fn set_title<T: Tx>(tx: &mut T, title: &str, p: &Provenance) -> Result<()> {
    let title = crate::model::values::required_line(title, "a survey needs a title")?;
    write_cell(tx, &survey_obj(tx)?, "title", Some(&title), p)
}

fn read_versions_of<R: Doc>(doc: &R) -> Result<Vec<SurveyVersion>> {
    let versions = versions_obj(doc)?;
    let mut out = Vec::new();
    for key in doc.keys(&versions) {
        let v = get_map(doc, &versions, &key)?.ok_or(malformed("survey version"))?;
        let number = match doc.get(&v, "number")? {
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Int(n) => {
                    u32::try_from(*n).map_err(|_| malformed("version number"))?
                }
                _ => return Err(malformed("version number")),
            },
            _ => return Err(malformed("version number")),
        };
        let questions = get_str(doc, &v, "questions")?.ok_or(malformed("version questions"))?;
        out.push(SurveyVersion {
            id: SurveyVersionId::parse(&key).map_err(|_| malformed("version id"))?,
            number,
            questions: read_questions(&questions)?,
            created: read_provenance(
                doc,
                &get_map(doc, &v, "created")?.ok_or(malformed("created"))?,
            )?,
        });
    }
    out.sort_by_key(|v| (v.number, v.id));
    Ok(out)
}

/// Read a survey document whole.
pub(crate) fn read_survey<R: Doc>(doc: &R) -> Result<Survey> {
    let (kind, id, _) = crate::doc::work::work_header(doc)?;
    if kind != WorkKind::Survey {
        return Err(Error::NotAHousehold("not a survey"));
    }
    let s = survey_obj(doc)?;
    let versions = read_versions_of(doc)?;
    if versions.is_empty() {
        return Err(malformed("a survey without a version"));
    }
    Ok(Survey {
        id: SurveyId::from_uuid(*id.as_uuid()),
        title: read_required(doc, &s, "title")?,
        versions,
        created: read_provenance(
            doc,
            &get_map(doc, &ROOT, "created")?.ok_or(malformed("created"))?,
        )?,
    })
}

/// What must never change in a document once accepted: a survey's versions, as
/// (version id, number and questions as stored). Empty for any other document. The server
/// takes it before a push and checks it after (`check_frozen`).
pub fn frozen_parts<R: Doc>(doc: &R) -> Result<Vec<(String, String)>> {
    match crate::doc::document_header(doc)? {
        (crate::doc::DocKind::Work(WorkKind::Survey), _, _) => {}
        _ => return Ok(Vec::new()),
    }
    let versions = versions_obj(doc)?;
    let mut out = Vec::new();
    for key in doc.keys(&versions) {
        if doc.get_all(&versions, &key)?.len() != 1 {
            return Err(malformed("a survey version written twice"));
        }
        let v = get_map(doc, &versions, &key)?.ok_or(malformed("survey version"))?;
        let mut whole = String::new();
        for field in ["number", "questions"] {
            let all = doc.get_all(&v, field)?;
            if all.len() != 1 {
                return Err(malformed("a survey version written twice"));
            }
            whole.push_str(&format!("{:?}\u{1f}", all[0].0));
        }
        out.push((key, whole));
    }
    Ok(out)
}

/// Whether every part frozen `before` is still there unchanged.
pub fn check_frozen<R: Doc>(before: &[(String, String)], doc: &R) -> Result<()> {
    if before.is_empty() {
        return Ok(());
    }
    let now = frozen_parts(doc)?;
    if before.iter().all(|b| now.contains(b)) {
        Ok(())
    } else {
        Err(Error::InvalidInput("a published survey version is frozen"))
    }
}

// ----- responses (records of the household) ----------------------------------------------

/// Add a person's response. The answers were checked against their version by the store
/// (which holds the survey); one submitted response per person and survey is checked here.
pub(crate) fn add_response<T: Tx>(
    tx: &mut T,
    id: ResponseId,
    person: PersonId,
    survey: SurveyId,
    version: SurveyVersionId,
    answers: &[Answer],
    p: &Provenance,
) -> Result<()> {
    require_person(tx, &person)?;
    if read_responses(tx)?
        .iter()
        .any(|r| r.person == person && r.survey == survey && r.status == ResponseStatus::Submitted)
    {
        return Err(Error::InvalidInput(
            "this person has answered this survey: edit that response",
        ));
    }
    let obj = new_record(tx, EntityKind::Response, &id.to_string(), p)?;
    write_cell(tx, &obj, "person", Some(&person.to_string()), p)?;
    write_cell(tx, &obj, "survey", Some(&survey.to_string()), p)?;
    write_cell(tx, &obj, "version", Some(&version.to_string()), p)?;
    write_cell(tx, &obj, "answers", Some(&answers_json(answers)), p)?;
    write_cell(
        tx,
        &obj,
        "status",
        Some(ResponseStatus::Submitted.as_str()),
        p,
    )
}

/// Replace a response's answers (checked by the store against the response's version).
pub(crate) fn edit_response<T: Tx>(
    tx: &mut T,
    id: ResponseId,
    answers: &[Answer],
    p: &Provenance,
) -> Result<()> {
    let obj = record(tx, EntityKind::Response, &id.to_string())?;
    write_cell(tx, &obj, "answers", Some(&answers_json(answers)), p)
}

/// Withdraw a response (kept, no longer counted): how a duplicate is settled.
pub(crate) fn withdraw_response<T: Tx>(tx: &mut T, id: ResponseId, p: &Provenance) -> Result<()> {
    let obj = record(tx, EntityKind::Response, &id.to_string())?;
    guard_conflict(tx, &obj, "status")?;
    write_cell(
        tx,
        &obj,
        "status",
        Some(ResponseStatus::Withdrawn.as_str()),
        p,
    )
}

pub(crate) fn read_response<R: Doc>(doc: &R, key: &str, o: &ObjId) -> Result<SurveyResponse> {
    Ok(SurveyResponse {
        id: ResponseId::parse(key)?,
        person: PersonId::parse(&read_required(doc, o, "person")?)?,
        survey: SurveyId::parse(&read_required(doc, o, "survey")?)?,
        version: SurveyVersionId::parse(&read_required(doc, o, "version")?)?,
        answers: read_answers(&read_required(doc, o, "answers")?)?,
        status: ResponseStatus::read(&read_required(doc, o, "status")?),
        created: read_provenance(
            doc,
            &get_map(doc, o, "created")?.ok_or(malformed("created"))?,
        )?,
    })
}

/// Every response of a household document, by id.
pub(crate) fn read_responses<R: Doc>(doc: &R) -> Result<Vec<SurveyResponse>> {
    records_of(doc, EntityKind::Response)?
        .iter()
        .map(|(k, o)| read_response(doc, k, o))
        .collect()
}

/// The one-response-per-person rule across records: two submitted responses of one person
/// to one survey (filled on two phones offline) are a conflict for a human, never a silent
/// overwrite.
pub(crate) fn review_duplicates<R: Doc>(
    doc: &R,
    household: HouseholdId,
    out: &mut Review,
) -> Result<()> {
    let mut groups: std::collections::BTreeMap<(PersonId, SurveyId), Vec<SurveyResponse>> =
        Default::default();
    for r in read_responses(doc)? {
        if r.status == ResponseStatus::Submitted {
            groups.entry((r.person, r.survey)).or_default().push(r);
        }
    }
    for (_, mut rs) in groups {
        if rs.len() < 2 {
            continue;
        }
        rs.sort_by_key(|r| (r.created.at, r.id));
        let later = rs.last().map(|r| r.id).unwrap_or_default();
        out.conflicts.push(Conflict {
            household,
            field: FieldRef::new(EntityRef::Response(later), "person"),
            kind: ConflictKind::DuplicateResponse,
            values: rs
                .iter()
                .map(|r| FieldVersion {
                    value: Some(r.id.to_string()),
                    provenance: r.created,
                })
                .collect(),
        });
    }
    Ok(())
}

/// Settle a duplicate: keep `chosen` (one of the responses) and withdraw the others.
pub(crate) fn keep_response<T: Tx>(
    tx: &mut T,
    conflict: &Conflict,
    chosen: Option<&str>,
    p: &Provenance,
) -> Result<Option<String>> {
    let chosen = chosen.ok_or(Error::InvalidInput("choose the response to keep"))?;
    if !conflict
        .values
        .iter()
        .any(|v| v.value.as_deref() == Some(chosen))
    {
        return Err(Error::InvalidInput("choose one of the duplicate responses"));
    }
    for v in &conflict.values {
        if let Some(other) = v.value.as_deref().filter(|o| *o != chosen) {
            withdraw_response(tx, ResponseId::parse(other)?, p)?;
        }
    }
    Ok(Some(chosen.to_owned()))
}
