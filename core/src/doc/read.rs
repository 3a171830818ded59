//! Reading a household document into the domain records.

use crate::doc::Doc;
use automerge::ROOT;

use crate::doc::cells::*;
use crate::error::{Error, Result};
use crate::model::ids::*;
use crate::model::person_details::*;
use crate::model::policy::EntityKind;
use crate::model::provenance::Provenance;
use crate::model::records::*;
use crate::model::time::{Date, Timestamp};
use crate::model::values::*;

fn bad(what: &'static str) -> Error {
    Error::NotAHousehold(what)
}

fn opt<T>(v: Option<String>, parse: impl Fn(&str) -> Result<T>) -> Result<Option<T>> {
    v.map(|s| parse(&s)).transpose()
}

fn created<R: Doc>(doc: &R, obj: &ObjId) -> Result<Provenance> {
    let c = get_map(doc, obj, "created")?.ok_or(bad("record without provenance"))?;
    read_provenance(doc, &c)
}

fn timestamp(s: &str) -> Result<Timestamp> {
    s.parse().map(Timestamp).map_err(|_| bad("bad timestamp"))
}

/// The records of one collection, sorted by id (v7 ids: creation order).
fn records<R: Doc, T>(
    doc: &R,
    kind: EntityKind,
    read: impl Fn(&R, &str, &ObjId) -> Result<T>,
) -> Result<Vec<T>> {
    records_of(doc, kind)?
        .into_iter()
        .map(|(key, obj)| read(doc, &key, &obj))
        .collect()
}

pub(crate) fn read_household<R: Doc>(doc: &R) -> Result<Household> {
    let (id, station) = super::header(doc)?;
    let root_created = get_map(doc, &ROOT, "created")?.ok_or(bad("no provenance"))?;
    let hh = get_map(doc, &ROOT, "household")?.ok_or(bad("no household map"))?;
    let persons = records(doc, EntityKind::Person, read_person)?;
    let visits = records(doc, EntityKind::Visit, |d, k, o| read_visit(d, id, k, o))?;
    Ok(Household {
        id,
        station,
        code: read_required(doc, &hh, "code")?,
        village: read_cell(doc, &hh, "village")?.unwrap_or_default(),
        address: read_cell(doc, &hh, "address")?.unwrap_or_default(),
        gps: opt(read_cell(doc, &hh, "gps")?, GeoPoint::parse)?,
        status: HouseholdStatus::read(&read_required(doc, &hh, "status")?),
        phones: read_set(doc, &hh, "phones")?,
        tags: read_set(doc, &hh, "tags")?,
        summary: read_text(doc, &hh, "summary")?,
        created: read_provenance(doc, &root_created)?,
        persons,
        visits,
        amendments: records(doc, EntityKind::Amendment, read_amendment)?,
        needs: records(doc, EntityKind::Need, read_need)?,
        inquiries: records(doc, EntityKind::Inquiry, read_inquiry)?,
        follow_ups: records(doc, EntityKind::FollowUp, read_follow_up)?,
        cards: records(doc, EntityKind::Card, read_card)?,
        care_level: read_cell(doc, &hh, "care_level")?.map(|l| CareLevel::read(&l)),
        benefits: records(doc, EntityKind::Benefit, read_benefit)?,
        guardianships: records(doc, EntityKind::Guardianship, read_guardianship)?,
        responses: records(doc, EntityKind::Response, crate::doc::survey::read_response)?,
    })
}

/// An optional boolean cell: absent or null is `None`; anything but `true`/`false` is not
/// a boolean.
fn opt_bool(v: Option<String>) -> Result<Option<bool>> {
    match v.as_deref() {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(bad("malformed boolean")),
    }
}

pub(crate) fn read_person<R: Doc>(doc: &R, key: &str, o: &ObjId) -> Result<Person> {
    Ok(Person {
        id: PersonId::parse(key)?,
        name: read_required(doc, o, "name")?,
        sex: read_cell(doc, o, "sex")?.map_or(Sex::Unknown, |s| Sex::read(&s)),
        birth_date: opt(read_cell(doc, o, "birth_date")?, BirthDate::parse)?,
        id_number: read_cell(doc, o, "id_number")?,
        relation: read_cell(doc, o, "relation")?.unwrap_or_default(),
        guardian: read_cell(doc, o, "guardian")?.as_deref() == Some("true"),
        categories: read_set(doc, o, "categories")?,
        school: read_cell(doc, o, "school")?,
        grade: read_cell(doc, o, "grade")?,
        parents: ParentsStatus {
            father: opt(read_cell(doc, o, "father_status")?, |c| {
                CodeList::ParentStatus.read(c)
            })?,
            mother: opt(read_cell(doc, o, "mother_status")?, |c| {
                CodeList::ParentStatus.read(c)
            })?,
        },
        hukou: Hukou {
            kind: read_cell(doc, o, "hukou_type")?.map(|t| HukouType::read(&t)),
            registered: read_cell(doc, o, "registered_residence")?.unwrap_or_default(),
            actual: read_cell(doc, o, "actual_residence")?.unwrap_or_default(),
        },
        schooling: Schooling {
            stage: read_cell(doc, o, "school_stage")?.map(|s| SchoolStage::read(&s)),
            status: read_cell(doc, o, "school_status")?.map(|s| SchoolStatus::read(&s)),
            boarding: opt_bool(read_cell(doc, o, "boarding")?)?,
        },
        care_level: read_cell(doc, o, "care_level")?.map(|l| CareLevel::read(&l)),
        activities: read_set(doc, o, "activities")?
            .iter()
            .map(|a| ActivityId::parse(a))
            .collect::<Result<_>>()?,
        created: created(doc, o)?,
    })
}

pub(crate) fn read_benefit<R: Doc>(doc: &R, key: &str, o: &ObjId) -> Result<Benefit> {
    Ok(Benefit {
        id: BenefitId::parse(key)?,
        person: PersonId::parse(&read_required(doc, o, "person")?)?,
        kind: CodeList::BenefitType.read(&read_required(doc, o, "kind")?)?,
        monthly: Fen::read(&read_required(doc, o, "monthly_fen")?)?,
        from: opt(read_cell(doc, o, "from")?, Date::parse)?,
        until: opt(read_cell(doc, o, "until")?, Date::parse)?,
        source: read_cell(doc, o, "source")?.unwrap_or_default(),
        created: created(doc, o)?,
    })
}

pub(crate) fn read_guardianship<R: Doc>(doc: &R, key: &str, o: &ObjId) -> Result<Guardianship> {
    Ok(Guardianship {
        id: GuardianshipId::parse(key)?,
        carer: PersonId::parse(&read_required(doc, o, "carer")?)?,
        child: PersonId::parse(&read_required(doc, o, "child")?)?,
        kind: GuardianshipKind::read(&read_required(doc, o, "kind")?),
        relationship: read_cell(doc, o, "relationship")?.unwrap_or_default(),
        capacity: read_cell(doc, o, "capacity")?.map(|c| CareCapacity::read(&c)),
        status: GuardianshipStatus::read(&read_required(doc, o, "status")?),
        created: created(doc, o)?,
    })
}

pub(crate) fn read_visit<R: Doc>(
    doc: &R,
    household: HouseholdId,
    key: &str,
    o: &ObjId,
) -> Result<Visit> {
    let mut sections = Vec::with_capacity(Section::ALL.len());
    for s in Section::ALL {
        sections.push((*s, read_text(doc, o, s.as_str())?));
    }
    Ok(Visit {
        id: VisitId::parse(key)?,
        household,
        kind: VisitKind::read(&read_required(doc, o, "kind")?),
        date: Date::parse(&read_required(doc, o, "date")?)?,
        started_at: timestamp(&read_required(doc, o, "started_at")?)?,
        ended_at: opt(read_cell(doc, o, "ended_at")?, timestamp)?,
        gps: opt(read_cell(doc, o, "gps")?, GeoPoint::parse)?,
        status: VisitStatus::read(&read_required(doc, o, "status")?),
        workers: read_set(doc, o, "workers")?
            .iter()
            .map(|w| WorkerId::parse(w))
            .collect::<Result<_>>()?,
        present: read_set(doc, o, "present")?
            .iter()
            .map(|w| PersonId::parse(w))
            .collect::<Result<_>>()?,
        companions: super::companions::read(doc, o)?,
        sections,
        created: created(doc, o)?,
    })
}

pub(crate) fn read_amendment<R: Doc>(doc: &R, key: &str, o: &ObjId) -> Result<Amendment> {
    Ok(Amendment {
        id: AmendmentId::parse(key)?,
        visit: VisitId::parse(&read_required(doc, o, "visit")?)?,
        section: opt(read_cell(doc, o, "section")?, Section::parse)?,
        text: read_required(doc, o, "text")?,
        created: created(doc, o)?,
    })
}

pub(crate) fn read_need<R: Doc>(doc: &R, key: &str, o: &ObjId) -> Result<Need> {
    Ok(Need {
        id: NeedId::parse(key)?,
        category: read_required(doc, o, "category")?,
        description: read_cell(doc, o, "description")?.unwrap_or_default(),
        person: opt(read_cell(doc, o, "person")?, PersonId::parse)?,
        visit: opt(read_cell(doc, o, "visit")?, VisitId::parse)?,
        status: NeedStatus::read(&read_required(doc, o, "status")?),
        resource: opt(read_cell(doc, o, "resource")?, ResourceId::parse)?,
        created: created(doc, o)?,
    })
}

pub(crate) fn read_inquiry<R: Doc>(doc: &R, key: &str, o: &ObjId) -> Result<Inquiry> {
    Ok(Inquiry {
        id: InquiryId::parse(key)?,
        question: read_required(doc, o, "question")?,
        topic: read_cell(doc, o, "topic")?.unwrap_or_default(),
        answer: read_cell(doc, o, "answer")?,
        visit: opt(read_cell(doc, o, "visit")?, VisitId::parse)?,
        status: InquiryStatus::read(&read_required(doc, o, "status")?),
        created: created(doc, o)?,
    })
}

pub(crate) fn read_follow_up<R: Doc>(doc: &R, key: &str, o: &ObjId) -> Result<FollowUp> {
    Ok(FollowUp {
        id: FollowUpId::parse(key)?,
        what: read_required(doc, o, "what")?,
        due: Date::parse(&read_required(doc, o, "due")?)?,
        assignee: WorkerId::parse(&read_required(doc, o, "assignee")?)?,
        origin_visit: opt(read_cell(doc, o, "origin_visit")?, VisitId::parse)?,
        status: FollowUpStatus::read(&read_required(doc, o, "status")?),
        created: created(doc, o)?,
    })
}

pub(crate) fn read_card<R: Doc>(doc: &R, key: &str, o: &ObjId) -> Result<CardIssuance> {
    Ok(CardIssuance {
        id: CardIssuanceId::parse(key)?,
        serial: read_required(doc, o, "serial")?,
        visit: opt(read_cell(doc, o, "visit")?, VisitId::parse)?,
        person: opt(read_cell(doc, o, "person")?, PersonId::parse)?,
        replaces: opt(read_cell(doc, o, "replaces")?, CardIssuanceId::parse)?,
        status: CardStatus::read(&read_required(doc, o, "status")?),
        created: created(doc, o)?,
    })
}
