//! Edits of a household document, one function per user action. Each validates its input
//! and the record's current state before it writes, and writes through the cells of
//! `cells.rs`, so provenance is recorded on every value.

use crate::doc::Tx;
use automerge::{ObjType, ROOT};

use crate::doc::cells::*;
use crate::doc::companions;
use crate::doc::identity::{check_against_id_number, checked_id_number, today};
use crate::doc::{seal_more_of, seal_of, SCHEMA_VERSION};
use crate::error::{Error, Result};
use crate::model::id_number::IdNumber;
use crate::model::ids::*;
use crate::model::person_details::*;
use crate::model::policy::EntityKind;
use crate::model::provenance::Provenance;
use crate::model::records::*;
use crate::model::values::*;

/// The map of an existing record, or `NotFound`.
pub(crate) fn record<T: Tx>(tx: &T, kind: EntityKind, key: &str) -> Result<ObjId> {
    entity_obj(tx, kind, Some(key))?.ok_or(Error::NotFound(kind.name()))
}

fn household_obj<T: Tx>(tx: &T) -> Result<ObjId> {
    entity_obj(tx, EntityKind::Household, None)?.ok_or(Error::NotAHousehold("no household map"))
}

/// A new record map in its collection, with its creation provenance.
pub(crate) fn new_record<T: Tx>(
    tx: &mut T,
    kind: EntityKind,
    key: &str,
    p: &Provenance,
) -> Result<ObjId> {
    let collection = match get_map(tx, &ROOT, kind.collection())? {
        Some(c) => c,
        // A document made before this kind of record existed (benefits, guardianships).
        None if matches!(
            kind,
            EntityKind::Benefit | EntityKind::Guardianship | EntityKind::Response
        ) =>
        {
            tx.put_object(&ROOT, kind.collection(), ObjType::Map)?
        }
        None => return Err(Error::NotAHousehold("collection missing")),
    };
    if tx.get(&collection, key)?.is_some() {
        return Err(Error::InvalidInput("a record with this id exists"));
    }
    let obj = tx.put_object(&collection, key, ObjType::Map)?;
    let created = tx.put_object(&obj, "created", ObjType::Map)?;
    put_provenance(tx, &created, p)?;
    Ok(obj)
}

fn opt_line(v: &Option<String>) -> Result<Option<String>> {
    match v {
        Some(s) => {
            let s = optional_line(s)?;
            Ok((!s.is_empty()).then_some(s))
        }
        None => Ok(None),
    }
}

/// Write the whole skeleton of a new household document.
pub(crate) fn create_household<T: Tx>(
    tx: &mut T,
    id: HouseholdId,
    station: StationId,
    new: &NewHousehold,
    p: &Provenance,
) -> Result<()> {
    let code = required_line(&new.code, "household code is required")?;
    let village = optional_line(&new.village)?;
    let address = optional_line(&new.address)?;
    let summary = free_text(&new.summary)?;
    let phones = new
        .phones
        .iter()
        .map(|s| phone(s))
        .collect::<Result<Vec<_>>>()?;
    let tags = new
        .tags
        .iter()
        .map(|t| required_line(t, "empty tag"))
        .collect::<Result<Vec<_>>>()?;

    tx.put(&ROOT, "schema", SCHEMA_VERSION)?;
    tx.put(&ROOT, "kind", "household")?;
    tx.put(&ROOT, "id", id.to_string())?;
    tx.put(&ROOT, "station", station.to_string())?;
    let created = tx.put_object(&ROOT, "created", ObjType::Map)?;
    put_provenance(tx, &created, p)?;
    for kind in crate::model::policy::ALL_KINDS {
        tx.put_object(&ROOT, kind.collection(), ObjType::Map)?;
    }
    tx.put_object(&ROOT, "resolutions", ObjType::Map)?;

    let hh = household_obj(tx)?;
    write_cell(tx, &hh, "code", Some(&code), p)?;
    write_cell(tx, &hh, "village", Some(&village), p)?;
    write_cell(tx, &hh, "address", Some(&address), p)?;
    let gps = new.gps.map(|g| g.to_string());
    write_cell(tx, &hh, "gps", gps.as_deref(), p)?;
    write_cell(tx, &hh, "status", Some(HouseholdStatus::Active.as_str()), p)?;
    create_set(tx, &hh, "phones")?;
    create_set(tx, &hh, "tags")?;
    for ph in &phones {
        set_add(tx, &hh, "phones", ph, p)?;
    }
    for t in &tags {
        set_add(tx, &hh, "tags", t, p)?;
    }
    create_text(tx, &hh, "summary", summary)?;
    Ok(())
}

pub(crate) fn edit_household<T: Tx>(
    tx: &mut T,
    edit: &HouseholdEdit,
    p: &Provenance,
) -> Result<()> {
    let hh = household_obj(tx)?;
    match edit {
        HouseholdEdit::Code(v) => write_cell(
            tx,
            &hh,
            "code",
            Some(&required_line(v, "household code is required")?),
            p,
        ),
        HouseholdEdit::Village(v) => write_cell(tx, &hh, "village", Some(&optional_line(v)?), p),
        HouseholdEdit::Address(v) => write_cell(tx, &hh, "address", Some(&optional_line(v)?), p),
        HouseholdEdit::Gps(g) => write_cell(tx, &hh, "gps", g.map(|g| g.to_string()).as_deref(), p),
        HouseholdEdit::Status(s) => write_cell(tx, &hh, "status", Some(s.as_str()), p),
        HouseholdEdit::AddPhone(v) => set_add(tx, &hh, "phones", &phone(v)?, p),
        HouseholdEdit::RemovePhone(v) => set_remove(tx, &hh, "phones", &phone(v)?),
        HouseholdEdit::AddTag(v) => set_add(tx, &hh, "tags", &required_line(v, "empty tag")?, p),
        HouseholdEdit::RemoveTag(v) => set_remove(tx, &hh, "tags", &required_line(v, "empty tag")?),
        HouseholdEdit::CareLevel(l) => {
            write_enum(tx, &hh, "care_level", l.map(|l| l.to_write()), p)
        }
    }
}

pub(crate) fn splice_summary<T: Tx>(
    tx: &mut T,
    pos: usize,
    delete: usize,
    insert: &str,
) -> Result<()> {
    let hh = household_obj(tx)?;
    splice_text(tx, &hh, "summary", pos, delete, free_text(insert)?)
}

pub(crate) fn add_person<T: Tx>(
    tx: &mut T,
    id: PersonId,
    new: &NewPerson,
    p: &Provenance,
) -> Result<()> {
    let name = required_line(&new.name, "name is required")?;
    let relation = optional_line(&new.relation)?;
    let id_number = match &new.id_number {
        Some(text) if !text.trim().is_empty() => {
            let number = IdNumber::parse(text, today(p)?)?;
            number.check_consistent(new.birth_date, new.sex)?;
            Some(number.as_str().to_owned())
        }
        _ => None,
    };
    let school = opt_line(&new.school)?;
    let grade = opt_line(&new.grade)?;
    let categories = new
        .categories
        .iter()
        .map(|c| required_line(c, "empty category"))
        .collect::<Result<Vec<_>>>()?;
    let obj = new_record(tx, EntityKind::Person, &id.to_string(), p)?;
    write_cell(tx, &obj, "name", Some(&name), p)?;
    write_cell(tx, &obj, "sex", Some(new.sex.to_write()?), p)?;
    write_cell(
        tx,
        &obj,
        "birth_date",
        new.birth_date.map(|b| b.to_string()).as_deref(),
        p,
    )?;
    write_cell(tx, &obj, "id_number", id_number.as_deref(), p)?;
    write_cell(tx, &obj, "relation", Some(&relation), p)?;
    write_cell(tx, &obj, "guardian", Some(bool_text(new.guardian)), p)?;
    write_cell(tx, &obj, "school", school.as_deref(), p)?;
    write_cell(tx, &obj, "grade", grade.as_deref(), p)?;
    create_set(tx, &obj, "categories")?;
    for c in &categories {
        set_add(tx, &obj, "categories", c, p)?;
    }
    Ok(())
}

pub(crate) fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// Refuse to overwrite a field that holds concurrent values: that would close a conflict
/// without a resolution record.
pub(crate) fn guard_conflict<T: Tx>(tx: &T, obj: &ObjId, field: &str) -> Result<()> {
    let mut values = crate::doc::cells::read_values(tx, obj, field)?;
    values.sort();
    values.dedup();
    if values.len() > 1 {
        return Err(Error::OpenConflict);
    }
    Ok(())
}

pub(crate) fn edit_person<T: Tx>(
    tx: &mut T,
    id: PersonId,
    edit: &PersonEdit,
    p: &Provenance,
) -> Result<()> {
    let obj = record(tx, EntityKind::Person, &id.to_string())?;
    let identity = match edit {
        PersonEdit::Name(_) => Some("name"),
        PersonEdit::BirthDate(_) => Some("birth_date"),
        PersonEdit::IdNumber(_) => Some("id_number"),
        PersonEdit::Guardian(_) => Some("guardian"),
        PersonEdit::FatherStatus(_) => Some("father_status"),
        PersonEdit::MotherStatus(_) => Some("mother_status"),
        _ => None,
    };
    if let Some(field) = identity {
        guard_conflict(tx, &obj, field)?;
    }
    match edit {
        PersonEdit::Name(v) => write_cell(
            tx,
            &obj,
            "name",
            Some(&required_line(v, "name is required")?),
            p,
        ),
        PersonEdit::Sex(s) => {
            let sex = s.to_write()?;
            check_against_id_number(tx, &obj, None, *s, p)?;
            write_cell(tx, &obj, "sex", Some(sex), p)
        }
        PersonEdit::BirthDate(b) => {
            check_against_id_number(tx, &obj, *b, Sex::Unknown, p)?;
            write_cell(
                tx,
                &obj,
                "birth_date",
                b.map(|b| b.to_string()).as_deref(),
                p,
            )
        }
        PersonEdit::IdNumber(v) => {
            let number = match v {
                Some(text) if !text.trim().is_empty() => {
                    Some(checked_id_number(tx, &obj, text, p)?)
                }
                _ => None,
            };
            write_cell(tx, &obj, "id_number", number.as_deref(), p)
        }
        PersonEdit::Relation(v) => write_cell(tx, &obj, "relation", Some(&optional_line(v)?), p),
        PersonEdit::Guardian(g) => write_cell(tx, &obj, "guardian", Some(bool_text(*g)), p),
        PersonEdit::AddCategory(c) => set_add(
            tx,
            &obj,
            "categories",
            &required_line(c, "empty category")?,
            p,
        ),
        PersonEdit::RemoveCategory(c) => {
            set_remove(tx, &obj, "categories", &required_line(c, "empty category")?)
        }
        PersonEdit::AddActivity(a) => set_add(tx, &obj, "activities", &a.to_string(), p),
        PersonEdit::RemoveActivity(a) => set_remove(tx, &obj, "activities", &a.to_string()),
        PersonEdit::School(v) => write_cell(tx, &obj, "school", opt_line(v)?.as_deref(), p),
        PersonEdit::Grade(v) => write_cell(tx, &obj, "grade", opt_line(v)?.as_deref(), p),
        PersonEdit::FatherStatus(c) => write_code(tx, &obj, "father_status", c, p),
        PersonEdit::MotherStatus(c) => write_code(tx, &obj, "mother_status", c, p),
        PersonEdit::HukouType(t) => write_enum(tx, &obj, "hukou_type", t.map(|t| t.to_write()), p),
        PersonEdit::RegisteredResidence(v) => write_cell(
            tx,
            &obj,
            "registered_residence",
            Some(&optional_line(v)?),
            p,
        ),
        PersonEdit::ActualResidence(v) => {
            write_cell(tx, &obj, "actual_residence", Some(&optional_line(v)?), p)
        }
        PersonEdit::SchoolStage(s) => {
            write_enum(tx, &obj, "school_stage", s.map(|s| s.to_write()), p)
        }
        PersonEdit::SchoolStatus(s) => {
            write_enum(tx, &obj, "school_status", s.map(|s| s.to_write()), p)
        }
        PersonEdit::Boarding(b) => write_cell(tx, &obj, "boarding", b.map(bool_text), p),
        PersonEdit::CareLevel(l) => write_enum(tx, &obj, "care_level", l.map(|l| l.to_write()), p),
    }
}

/// Write an optional value enum (`None` clears); an unrecognised value is refused.
pub(crate) fn write_enum<T: Tx>(
    tx: &mut T,
    obj: &ObjId,
    field: &str,
    value: Option<Result<&'static str>>,
    p: &Provenance,
) -> Result<()> {
    let value = value.transpose()?;
    write_cell(tx, obj, field, value, p)
}

/// Write a parent's status: a code of the list, or `None` (or blank) to clear.
fn write_code<T: Tx>(
    tx: &mut T,
    obj: &ObjId,
    field: &str,
    code: &Option<String>,
    p: &Provenance,
) -> Result<()> {
    let code = match code {
        Some(c) if !c.trim().is_empty() => Some(CodeList::ParentStatus.check_writable(c)?),
        _ => None,
    };
    write_cell(tx, obj, field, code, p)
}

pub(crate) fn require_person<T: Tx>(tx: &T, id: &PersonId) -> Result<()> {
    record(tx, EntityKind::Person, &id.to_string()).map(|_| ())
}

fn require_visit<T: Tx>(tx: &T, id: &VisitId) -> Result<ObjId> {
    record(tx, EntityKind::Visit, &id.to_string())
}

pub(crate) fn start_visit<T: Tx>(
    tx: &mut T,
    id: VisitId,
    new: &NewVisit,
    p: &Provenance,
) -> Result<()> {
    for person in &new.present {
        require_person(tx, person)?;
    }
    let companions = new
        .companions
        .iter()
        .map(companions::element)
        .collect::<Result<Vec<_>>>()?;
    let obj = new_record(tx, EntityKind::Visit, &id.to_string(), p)?;
    write_cell(tx, &obj, "kind", Some(new.kind.to_write()?), p)?;
    write_cell(tx, &obj, "date", Some(&new.date.to_string()), p)?;
    write_cell(
        tx,
        &obj,
        "started_at",
        Some(&new.started_at.0.to_string()),
        p,
    )?;
    write_cell(tx, &obj, "ended_at", None, p)?;
    write_cell(
        tx,
        &obj,
        "gps",
        new.gps.map(|g| g.to_string()).as_deref(),
        p,
    )?;
    write_cell(tx, &obj, "status", Some(VisitStatus::Draft.as_str()), p)?;
    create_set(tx, &obj, "workers")?;
    set_add(tx, &obj, "workers", &p.worker.to_string(), p)?;
    for w in &new.other_workers {
        set_add(tx, &obj, "workers", &w.to_string(), p)?;
    }
    create_set(tx, &obj, "present")?;
    for person in &new.present {
        set_add(tx, &obj, "present", &person.to_string(), p)?;
    }
    create_set(tx, &obj, "companions")?;
    for c in &companions {
        set_add(tx, &obj, "companions", c, p)?;
    }
    for s in Section::ALL {
        create_text(tx, &obj, s.as_str(), "")?;
    }
    Ok(())
}

/// The visit's map, if it is still a draft.
fn draft_visit<T: Tx>(tx: &T, id: VisitId) -> Result<ObjId> {
    let obj = require_visit(tx, &id)?;
    match read_cell(tx, &obj, "status")?.as_deref() {
        Some("draft") => Ok(obj),
        _ => Err(Error::VisitFinalised),
    }
}

pub(crate) fn edit_visit<T: Tx>(
    tx: &mut T,
    id: VisitId,
    edit: &VisitEdit,
    p: &Provenance,
) -> Result<()> {
    let obj = draft_visit(tx, id)?;
    match edit {
        VisitEdit::Kind(k) => write_cell(tx, &obj, "kind", Some(k.to_write()?), p),
        VisitEdit::Date(d) => write_cell(tx, &obj, "date", Some(&d.to_string()), p),
        VisitEdit::EndedAt(t) => write_cell(
            tx,
            &obj,
            "ended_at",
            t.map(|t| t.0.to_string()).as_deref(),
            p,
        ),
        VisitEdit::Gps(g) => write_cell(tx, &obj, "gps", g.map(|g| g.to_string()).as_deref(), p),
        VisitEdit::AddWorker(w) => set_add(tx, &obj, "workers", &w.to_string(), p),
        VisitEdit::RemoveWorker(w) => set_remove(tx, &obj, "workers", &w.to_string()),
        VisitEdit::AddPresent(person) => {
            require_person(tx, person)?;
            set_add(tx, &obj, "present", &person.to_string(), p)
        }
        VisitEdit::RemovePresent(person) => set_remove(tx, &obj, "present", &person.to_string()),
        // A visit recorded before companions existed has no set yet: `set_add` makes it.
        VisitEdit::AddCompanion(c) => set_add(tx, &obj, "companions", &companions::element(c)?, p),
        VisitEdit::RemoveCompanion(c) => {
            set_remove(tx, &obj, "companions", &companions::element(c)?)
        }
    }
}

pub(crate) fn splice_section<T: Tx>(
    tx: &mut T,
    id: VisitId,
    section: Section,
    pos: usize,
    delete: usize,
    insert: &str,
    p: &Provenance,
) -> Result<()> {
    let obj = draft_visit(tx, id)?;
    // A visit started before the later sections has no text for them. Making one now
    // could race a colleague making the same one, and one of the two texts would hide the
    // other's words (ADR 0024): the section is refused instead.
    if Section::LATER.contains(&section) && get_text_obj(tx, &obj, section.as_str())?.is_none() {
        return Err(Error::InvalidInput(
            "this visit was started before health and study sections existed",
        ));
    }
    splice_text(tx, &obj, section.as_str(), pos, delete, free_text(insert)?)?;
    // Contributors of the visit's text: written once per worker, so typing stays cheap.
    set_add(tx, &obj, "workers", &p.worker.to_string(), p)
}

/// Freeze a visit: status final, and a seal (a digest of each section) so that text edits
/// made elsewhere before this device's finalisation arrived are detected as a conflict.
pub(crate) fn finalise_visit<T: Tx>(tx: &mut T, id: VisitId, p: &Provenance) -> Result<()> {
    let obj = draft_visit(tx, id)?;
    write_cell(tx, &obj, "status", Some(VisitStatus::Final.as_str()), p)?;
    write_seal(tx, &obj, p)
}

/// The visit's `seal` (its original sections) and, for a visit that has the later
/// sections, its `seal_more` (ADR 0024).
pub(crate) fn write_seal<T: Tx>(tx: &mut T, visit: &ObjId, p: &Provenance) -> Result<()> {
    let seal = seal_of(tx, visit)?;
    write_cell(tx, visit, "seal", Some(&seal), p)?;
    match seal_more_of(tx, visit)? {
        Some(more) => write_cell(tx, visit, "seal_more", Some(&more), p),
        None => Ok(()),
    }
}

pub(crate) fn amend_visit<T: Tx>(
    tx: &mut T,
    id: AmendmentId,
    visit: VisitId,
    section: Option<Section>,
    text: &str,
    p: &Provenance,
) -> Result<()> {
    let vobj = require_visit(tx, &visit)?;
    if read_cell(tx, &vobj, "status")?.as_deref() != Some("final") {
        return Err(Error::InvalidInput(
            "only a finalised visit is amended; edit the draft instead",
        ));
    }
    if text.trim().is_empty() {
        return Err(Error::InvalidInput("amendment text is required"));
    }
    let text = free_text(text)?;
    let obj = new_record(tx, EntityKind::Amendment, &id.to_string(), p)?;
    write_cell(tx, &obj, "visit", Some(&visit.to_string()), p)?;
    write_cell(tx, &obj, "section", section.map(|s| s.as_str()), p)?;
    write_cell(tx, &obj, "text", Some(text), p)
}

fn check_optional_visit<T: Tx>(tx: &T, visit: &Option<VisitId>) -> Result<()> {
    if let Some(v) = visit {
        require_visit(tx, v)?;
    }
    Ok(())
}

pub(crate) fn add_need<T: Tx>(tx: &mut T, id: NeedId, new: &NewNeed, p: &Provenance) -> Result<()> {
    let category = required_line(&new.category, "need category is required")?;
    let description = free_text(&new.description)?.to_owned();
    if let Some(person) = &new.person {
        require_person(tx, person)?;
    }
    check_optional_visit(tx, &new.visit)?;
    let obj = new_record(tx, EntityKind::Need, &id.to_string(), p)?;
    write_cell(tx, &obj, "category", Some(&category), p)?;
    write_cell(tx, &obj, "description", Some(&description), p)?;
    write_cell(
        tx,
        &obj,
        "person",
        new.person.map(|x| x.to_string()).as_deref(),
        p,
    )?;
    write_cell(
        tx,
        &obj,
        "visit",
        new.visit.map(|x| x.to_string()).as_deref(),
        p,
    )?;
    write_cell(tx, &obj, "status", Some(NeedStatus::Open.as_str()), p)
}

pub(crate) fn add_inquiry<T: Tx>(
    tx: &mut T,
    id: InquiryId,
    new: &NewInquiry,
    p: &Provenance,
) -> Result<()> {
    if new.question.trim().is_empty() {
        return Err(Error::InvalidInput("question is required"));
    }
    let question = free_text(&new.question)?.to_owned();
    let topic = optional_line(&new.topic)?;
    let answer = match &new.answer {
        Some(a) if !a.trim().is_empty() => Some(free_text(a)?.to_owned()),
        _ => None,
    };
    check_optional_visit(tx, &new.visit)?;
    let status = if answer.is_some() {
        InquiryStatus::Answered
    } else {
        InquiryStatus::Open
    };
    let obj = new_record(tx, EntityKind::Inquiry, &id.to_string(), p)?;
    write_cell(tx, &obj, "question", Some(&question), p)?;
    write_cell(tx, &obj, "topic", Some(&topic), p)?;
    write_cell(tx, &obj, "answer", answer.as_deref(), p)?;
    write_cell(
        tx,
        &obj,
        "visit",
        new.visit.map(|x| x.to_string()).as_deref(),
        p,
    )?;
    write_cell(tx, &obj, "status", Some(status.as_str()), p)
}

pub(crate) fn answer_inquiry<T: Tx>(
    tx: &mut T,
    id: InquiryId,
    answer: &str,
    p: &Provenance,
) -> Result<()> {
    if answer.trim().is_empty() {
        return Err(Error::InvalidInput("answer is required"));
    }
    let answer = free_text(answer)?;
    let obj = record(tx, EntityKind::Inquiry, &id.to_string())?;
    guard_conflict(tx, &obj, "status")?;
    write_cell(tx, &obj, "answer", Some(answer), p)?;
    let current = InquiryStatus::parse(&read_required(tx, &obj, "status")?)?;
    if current != InquiryStatus::Answered {
        write_cell(
            tx,
            &obj,
            "status",
            Some(InquiryStatus::Answered.as_str()),
            p,
        )?;
    }
    Ok(())
}

pub(crate) fn add_follow_up<T: Tx>(
    tx: &mut T,
    id: FollowUpId,
    new: &NewFollowUp,
    p: &Provenance,
) -> Result<()> {
    let what = required_line(&new.what, "follow-up description is required")?;
    check_optional_visit(tx, &new.origin_visit)?;
    let obj = new_record(tx, EntityKind::FollowUp, &id.to_string(), p)?;
    write_cell(tx, &obj, "what", Some(&what), p)?;
    write_cell(tx, &obj, "due", Some(&new.due.to_string()), p)?;
    write_cell(tx, &obj, "assignee", Some(&new.assignee.to_string()), p)?;
    write_cell(
        tx,
        &obj,
        "origin_visit",
        new.origin_visit.map(|x| x.to_string()).as_deref(),
        p,
    )?;
    write_cell(tx, &obj, "status", Some(FollowUpStatus::Open.as_str()), p)
}

pub(crate) fn add_card<T: Tx>(
    tx: &mut T,
    id: CardIssuanceId,
    new: &NewCardIssuance,
    p: &Provenance,
) -> Result<()> {
    let serial = required_line(&new.serial, "card serial is required")?;
    check_optional_visit(tx, &new.visit)?;
    if let Some(person) = &new.person {
        require_person(tx, person)?;
    }
    if let Some(old) = &new.replaces {
        record(tx, EntityKind::Card, &old.to_string())?;
    }
    let obj = new_record(tx, EntityKind::Card, &id.to_string(), p)?;
    write_cell(tx, &obj, "serial", Some(&serial), p)?;
    write_cell(
        tx,
        &obj,
        "visit",
        new.visit.map(|x| x.to_string()).as_deref(),
        p,
    )?;
    write_cell(
        tx,
        &obj,
        "person",
        new.person.map(|x| x.to_string()).as_deref(),
        p,
    )?;
    write_cell(
        tx,
        &obj,
        "replaces",
        new.replaces.map(|x| x.to_string()).as_deref(),
        p,
    )?;
    write_cell(tx, &obj, "status", Some(CardStatus::Issued.as_str()), p)?;
    if let Some(old) = &new.replaces {
        set_status(
            tx,
            EntityKind::Card,
            &old.to_string(),
            CardStatus::Replaced.as_str(),
            p,
        )?;
    }
    Ok(())
}

/// Step a record's status machine; the caller's `allowed(from, to)` says which steps exist.
pub(crate) fn set_status<T: Tx>(
    tx: &mut T,
    kind: EntityKind,
    key: &str,
    to: &str,
    p: &Provenance,
) -> Result<()> {
    let obj = record(tx, kind, key)?;
    guard_conflict(tx, &obj, "status")?;
    let from = read_required(tx, &obj, "status")?;
    let ok = match kind {
        EntityKind::Need => NeedStatus::parse(&from)?.can_become(NeedStatus::parse(to)?),
        EntityKind::Inquiry => InquiryStatus::parse(&from)?.can_become(InquiryStatus::parse(to)?),
        EntityKind::FollowUp => {
            FollowUpStatus::parse(&from)?.can_become(FollowUpStatus::parse(to)?)
        }
        EntityKind::Card => CardStatus::parse(&from)?.can_become(CardStatus::parse(to)?),
        EntityKind::Guardianship => {
            GuardianshipStatus::parse(&from)?.can_become(GuardianshipStatus::parse(to)?)
        }
        _ => false,
    };
    if !ok {
        return Err(Error::InvalidTransition {
            entity: kind.name(),
            from: status_name(&from),
            to: status_name(to),
        });
    }
    write_cell(tx, &obj, "status", Some(to), p)
}

/// A status text as a static name for error messages (statuses are not personal data).
fn status_name(s: &str) -> &'static str {
    const NAMES: &[&str] = &[
        "open",
        "referred",
        "met",
        "closed",
        "answered",
        "done",
        "cancelled",
        "issued",
        "replaced",
        "lost",
        "void",
        "draft",
        "final",
        "active",
        "ended",
    ];
    NAMES
        .iter()
        .find(|n| **n == s)
        .copied()
        .unwrap_or("unknown")
}

/// Refer a need to a resource of the register, or withdraw the referral (ADR 0021).
pub(crate) fn refer_need<T: Tx>(
    tx: &mut T,
    need: NeedId,
    resource: Option<ResourceId>,
    p: &Provenance,
) -> Result<()> {
    let obj = record(tx, EntityKind::Need, &need.to_string())?;
    let value = resource.map(|r| r.to_string());
    write_cell(tx, &obj, "resource", value.as_deref(), p)
}
