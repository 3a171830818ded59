//! Station-work documents (ADR 0021): one automerge document per group activity and per
//! resource of the community register.
//!
//! ```text
//! ROOT { schema: 1, kind: "activity", id, station, created: {by, dev, at},
//!        activity: { type, date, place, target_group, attendee_count: cell;
//!                    partners, materials, resources: set; narrative: text } }
//! ROOT { schema: 1, kind: "resource", id, station, created: {by, dev, at},
//!        resource: { kind, name, leader, member_count, availability: cell;
//!                    phones: set; services, wishes: text } }
//! ```
//! Cells, sets and texts are the household document's (`cells.rs`, ADR 0002); the merge
//! policy of every field is in `model/policy.rs`. Who attended is kept on the persons, and
//! which resource a need was referred to on the need, in the households' own documents.

use crate::doc::{Doc, Tx};
use automerge::{ObjType, ScalarValue, Value, ROOT};

use crate::doc::cells::*;
use crate::doc::SCHEMA_VERSION;
use crate::error::{Error, Result};
use crate::model::ids::{ActivityId, HouseholdId, ResourceId, StationId};
use crate::model::policy::EntityKind;
use crate::model::provenance::Provenance;
use crate::model::station_work::*;
use crate::model::time::Date;
use crate::model::values::{free_text, optional_line, phone, required_line};

/// The record kind a station-work document holds.
pub(crate) const fn entity(kind: WorkKind) -> EntityKind {
    match kind {
        WorkKind::Activity => EntityKind::Activity,
        WorkKind::Resource => EntityKind::Resource,
        WorkKind::Survey => EntityKind::Survey,
    }
}

/// Kind, id and station a station-work document declares.
pub(crate) fn work_header<R: Doc>(doc: &R) -> Result<(WorkKind, HouseholdId, StationId)> {
    let kind = get_str(doc, &ROOT, "kind")?
        .and_then(|k| WorkKind::from_stored(&k))
        .ok_or(Error::NotAHousehold("kind"))?;
    let (id, station) = id_and_station(doc)?;
    Ok((kind, id, station))
}

/// The schema, id and station of the root (every document kind carries them alike).
pub(crate) fn id_and_station<R: Doc>(doc: &R) -> Result<(HouseholdId, StationId)> {
    match doc.get(&ROOT, "schema")? {
        Some((Value::Scalar(s), _)) if matches!(s.as_ref(), ScalarValue::Int(v) if *v >= 1) => {}
        _ => return Err(Error::NotAHousehold("schema")),
    }
    let id = get_str(doc, &ROOT, "id")?.ok_or(Error::NotAHousehold("id"))?;
    let station = get_str(doc, &ROOT, "station")?.ok_or(Error::NotAHousehold("station"))?;
    Ok((
        HouseholdId::parse(&id).map_err(|_| Error::NotAHousehold("id"))?,
        StationId::parse(&station).map_err(|_| Error::NotAHousehold("station"))?,
    ))
}

pub(crate) fn root_skeleton<T: Tx>(
    tx: &mut T,
    kind: WorkKind,
    id: &str,
    station: StationId,
    p: &Provenance,
) -> Result<ObjId> {
    tx.put(&ROOT, "schema", SCHEMA_VERSION)?;
    tx.put(&ROOT, "kind", kind.as_str())?;
    tx.put(&ROOT, "id", id)?;
    tx.put(&ROOT, "station", station.to_string())?;
    let created = tx.put_object(&ROOT, "created", ObjType::Map)?;
    put_provenance(tx, &created, p)?;
    Ok(tx.put_object(&ROOT, entity(kind).collection(), ObjType::Map)?)
}

fn record_obj<R: Doc>(doc: &R, kind: WorkKind) -> Result<ObjId> {
    entity_obj(doc, entity(kind), None)?.ok_or(Error::NotAHousehold("record map missing"))
}

fn count_text(n: Option<u32>) -> Result<Option<String>> {
    match n {
        Some(n) if n > MAX_COUNT => Err(Error::InvalidInput("count too large")),
        n => Ok(n.map(|n| n.to_string())),
    }
}

fn parse_count(v: Option<String>, what: &'static str) -> Result<Option<u32>> {
    v.map(|s| {
        s.parse::<u32>()
            .ok()
            .filter(|n| *n <= MAX_COUNT)
            .ok_or(Error::MalformedDocument(what.into()))
    })
    .transpose()
}

fn line_set(values: &[String], what: &'static str) -> Result<Vec<String>> {
    values.iter().map(|v| required_line(v, what)).collect()
}

// ----- activities ------------------------------------------------------------------------

/// Write a new activity document. `activity_type` is checked against the vocabulary by the
/// store (it knows the station's); here it must be a non-empty line.
pub(crate) fn create_activity<T: Tx>(
    tx: &mut T,
    id: ActivityId,
    station: StationId,
    new: &NewActivity,
    p: &Provenance,
) -> Result<()> {
    let activity_type = required_line(&new.activity_type, "an activity type is required")?;
    let place = optional_line(&new.place)?;
    let target = optional_line(&new.target_group)?;
    let count = count_text(new.attendee_count)?;
    let partners = line_set(&new.partners, "empty partner")?;
    let materials = line_set(&new.materials, "empty material")?;
    let narrative = free_text(&new.narrative)?;
    let a = root_skeleton(tx, WorkKind::Activity, &id.to_string(), station, p)?;
    write_cell(tx, &a, "type", Some(&activity_type), p)?;
    write_cell(tx, &a, "date", Some(&new.date.to_string()), p)?;
    write_cell(tx, &a, "place", Some(&place), p)?;
    write_cell(tx, &a, "target_group", Some(&target), p)?;
    write_cell(tx, &a, "attendee_count", count.as_deref(), p)?;
    for set in ["partners", "materials", "resources"] {
        create_set(tx, &a, set)?;
    }
    for v in &partners {
        set_add(tx, &a, "partners", v, p)?;
    }
    for v in &materials {
        set_add(tx, &a, "materials", v, p)?;
    }
    for r in &new.resources {
        set_add(tx, &a, "resources", &r.to_string(), p)?;
    }
    create_text(tx, &a, "narrative", narrative)?;
    Ok(())
}

pub(crate) fn edit_activity<T: Tx>(tx: &mut T, edit: &ActivityEdit, p: &Provenance) -> Result<()> {
    let a = record_obj(tx, WorkKind::Activity)?;
    match edit {
        ActivityEdit::ActivityType(v) => write_cell(
            tx,
            &a,
            "type",
            Some(&required_line(v, "an activity type is required")?),
            p,
        ),
        ActivityEdit::Date(d) => write_cell(tx, &a, "date", Some(&d.to_string()), p),
        ActivityEdit::Place(v) => write_cell(tx, &a, "place", Some(&optional_line(v)?), p),
        ActivityEdit::TargetGroup(v) => {
            write_cell(tx, &a, "target_group", Some(&optional_line(v)?), p)
        }
        ActivityEdit::AttendeeCount(n) => {
            write_cell(tx, &a, "attendee_count", count_text(*n)?.as_deref(), p)
        }
        ActivityEdit::AddPartner(v) => {
            set_add(tx, &a, "partners", &required_line(v, "empty partner")?, p)
        }
        ActivityEdit::RemovePartner(v) => set_remove(tx, &a, "partners", v.trim()),
        ActivityEdit::AddMaterial(v) => {
            set_add(tx, &a, "materials", &required_line(v, "empty material")?, p)
        }
        ActivityEdit::RemoveMaterial(v) => set_remove(tx, &a, "materials", v.trim()),
        ActivityEdit::AddResource(r) => set_add(tx, &a, "resources", &r.to_string(), p),
        ActivityEdit::RemoveResource(r) => set_remove(tx, &a, "resources", &r.to_string()),
    }
}

pub(crate) fn splice_narrative<T: Tx>(
    tx: &mut T,
    pos: usize,
    delete: usize,
    insert: &str,
) -> Result<()> {
    let a = record_obj(tx, WorkKind::Activity)?;
    splice_text(tx, &a, "narrative", pos, delete, free_text(insert)?)
}

/// Read an activity document whole (strictly: a value this version cannot read is an
/// error; codes are read as stored).
pub(crate) fn read_activity<R: Doc>(doc: &R) -> Result<Activity> {
    let (kind, id, station) = work_header(doc)?;
    if kind != WorkKind::Activity {
        return Err(Error::NotAHousehold("not an activity"));
    }
    let a = record_obj(doc, WorkKind::Activity)?;
    let resources = read_set(doc, &a, "resources")?
        .iter()
        .map(|r| ResourceId::parse(r).map_err(|_| malformed("resource id")))
        .collect::<Result<Vec<_>>>()?;
    Ok(Activity {
        id: ActivityId::from_uuid(*id.as_uuid()),
        station,
        activity_type: read_required(doc, &a, "type")?,
        date: Date::parse(&read_required(doc, &a, "date")?)
            .map_err(|_| malformed("activity date"))?,
        place: read_cell(doc, &a, "place")?.unwrap_or_default(),
        target_group: read_cell(doc, &a, "target_group")?.unwrap_or_default(),
        attendee_count: parse_count(read_cell(doc, &a, "attendee_count")?, "attendee count")?,
        partners: read_set(doc, &a, "partners")?,
        materials: read_set(doc, &a, "materials")?,
        resources,
        narrative: read_text(doc, &a, "narrative")?,
        created: read_provenance(
            doc,
            &get_map(doc, &ROOT, "created")?.ok_or(malformed("created"))?,
        )?,
    })
}

// ----- resources -------------------------------------------------------------------------

pub(crate) fn create_resource<T: Tx>(
    tx: &mut T,
    id: ResourceId,
    station: StationId,
    new: &NewResource,
    p: &Provenance,
) -> Result<()> {
    let kind = required_line(&new.kind, "a resource kind is required")?;
    let name = required_line(&new.name, "a resource's name is required")?;
    let leader = optional_line(&new.leader)?;
    let availability = optional_line(&new.availability)?;
    let count = count_text(new.member_count)?;
    let phones = new
        .phones
        .iter()
        .map(|s| phone(s))
        .collect::<Result<Vec<_>>>()?;
    let services = free_text(&new.services)?;
    let wishes = free_text(&new.wishes)?;
    let r = root_skeleton(tx, WorkKind::Resource, &id.to_string(), station, p)?;
    write_cell(tx, &r, "kind", Some(&kind), p)?;
    write_cell(tx, &r, "name", Some(&name), p)?;
    write_cell(tx, &r, "leader", Some(&leader), p)?;
    write_cell(tx, &r, "member_count", count.as_deref(), p)?;
    write_cell(tx, &r, "availability", Some(&availability), p)?;
    create_set(tx, &r, "phones")?;
    for ph in &phones {
        set_add(tx, &r, "phones", ph, p)?;
    }
    create_text(tx, &r, "services", services)?;
    create_text(tx, &r, "wishes", wishes)?;
    Ok(())
}

pub(crate) fn edit_resource<T: Tx>(tx: &mut T, edit: &ResourceEdit, p: &Provenance) -> Result<()> {
    let r = record_obj(tx, WorkKind::Resource)?;
    match edit {
        ResourceEdit::Kind(v) => write_cell(
            tx,
            &r,
            "kind",
            Some(&required_line(v, "a resource kind is required")?),
            p,
        ),
        ResourceEdit::Name(v) => write_cell(
            tx,
            &r,
            "name",
            Some(&required_line(v, "a resource's name is required")?),
            p,
        ),
        ResourceEdit::Leader(v) => write_cell(tx, &r, "leader", Some(&optional_line(v)?), p),
        ResourceEdit::AddPhone(v) => set_add(tx, &r, "phones", &phone(v)?, p),
        ResourceEdit::RemovePhone(v) => set_remove(tx, &r, "phones", &phone(v)?),
        ResourceEdit::MemberCount(n) => {
            write_cell(tx, &r, "member_count", count_text(*n)?.as_deref(), p)
        }
        ResourceEdit::Availability(v) => {
            write_cell(tx, &r, "availability", Some(&optional_line(v)?), p)
        }
    }
}

pub(crate) fn splice_resource_text<T: Tx>(
    tx: &mut T,
    field: ResourceText,
    pos: usize,
    delete: usize,
    insert: &str,
) -> Result<()> {
    let r = record_obj(tx, WorkKind::Resource)?;
    splice_text(tx, &r, field.as_str(), pos, delete, free_text(insert)?)
}

pub(crate) fn read_resource<R: Doc>(doc: &R) -> Result<Resource> {
    let (kind, id, station) = work_header(doc)?;
    if kind != WorkKind::Resource {
        return Err(Error::NotAHousehold("not a resource"));
    }
    let r = record_obj(doc, WorkKind::Resource)?;
    Ok(Resource {
        id: ResourceId::from_uuid(*id.as_uuid()),
        station,
        kind: read_required(doc, &r, "kind")?,
        name: read_required(doc, &r, "name")?,
        leader: read_cell(doc, &r, "leader")?.unwrap_or_default(),
        phones: read_set(doc, &r, "phones")?,
        member_count: parse_count(read_cell(doc, &r, "member_count")?, "member count")?,
        availability: read_cell(doc, &r, "availability")?.unwrap_or_default(),
        services: read_text(doc, &r, "services")?,
        wishes: read_text(doc, &r, "wishes")?,
        created: read_provenance(
            doc,
            &get_map(doc, &ROOT, "created")?.ok_or(malformed("created"))?,
        )?,
    })
}

/// Read a station-work document whole and review its fields (what `verify::validate` and
/// `verify::readable` run for one): the review of parallel updates.
pub(crate) fn review_work<R: Doc>(doc: &R) -> Result<crate::doc::conflicts::Review> {
    let (kind, id, _) = work_header(doc)?;
    match kind {
        WorkKind::Activity => read_activity(doc).map(drop)?,
        WorkKind::Resource => read_resource(doc).map(drop)?,
        WorkKind::Survey => {
            crate::doc::survey::read_survey(doc)?;
            crate::doc::survey::frozen_parts(doc)?;
        }
    }
    let mut review = crate::doc::conflicts::Review::default();
    let obj = record_obj(doc, kind)?;
    let key = id.to_string();
    let owners = crate::doc::cells::Owners::default();
    crate::doc::conflicts::review_record(
        doc,
        id,
        entity(kind),
        Some(&key),
        &obj,
        &owners,
        &mut review,
    )?;
    Ok(review)
}
