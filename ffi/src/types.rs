//! The records and enums apps see. The core's own types where the bindings' names are the
//! core's (remote types: unit enums, `BirthDate`, `NewPerson`, `HouseholdSummary`); records
//! of their own, with conversions, where the bindings name things differently
//! (`household_id` for `household`, `at_ms` for a `Timestamp`). Ids and dates are the core's
//! newtypes, strings in the bindings (`ids.rs`); instants are milliseconds since the Unix
//! epoch (ADR 0030).

use doorstep_core as core;
pub use doorstep_core::protocol::ErasureReason;
use doorstep_core::{
    ActivityId, AmendmentId, CardIssuanceId, CardLeaseId, Date, DeviceId, FollowUpId, HouseholdId,
    InquiryId, NeedId, PersonId, ResourceId, StationId, VisitId, WorkerId,
};
pub use doorstep_core::{
    BirthDate, CardStatus, ConflictKind, FollowUpStatus, HouseholdStatus, HouseholdSummary,
    InquiryStatus, NeedStatus, NewPerson, Role, Section, Sex, VisitKind, VisitStatus,
};

use crate::bounded;
use crate::error::{invalid, Result};
use crate::person_details::{
    Benefit, CareLevel, Guardianship, HukouType, SchoolStage, SchoolStatus,
};

// ----- converting -------------------------------------------------------------------------

fn gps_in(g: &Option<GeoPoint>) -> Result<Option<core::GeoPoint>> {
    g.map(|g| core::GeoPoint::new(g.lat, g.lon))
        .transpose()
        .map_err(Into::into)
}
fn gps_out(g: Option<core::GeoPoint>) -> Option<GeoPoint> {
    g.map(|g| GeoPoint {
        lat: g.lat,
        lon: g.lon,
    })
}
pub(crate) fn prov(p: core::Provenance) -> Provenance {
    Provenance {
        worker_id: p.worker,
        device_id: p.device,
        at_ms: p.at.0,
    }
}
/// Gives a core enum of unit variants to the bindings as it is (UniFFI's remote types: the
/// variants are listed again here and checked against the core's at compile time).
// The value enums end with `Unrecognised`: a value a newer version wrote, shown as such;
// the core refuses to write it (ADR 0013).
macro_rules! core_enum {
    ($(#[$doc:meta])* $name:ident { $($v:ident),+ $(,)? }) => {
        #[uniffi::remote(Enum)]
        $(#[$doc])*
        pub enum $name { $($v),+ }
    };
}

/// Declares an FFI enum mirroring a core enum of unit variants under another name, with
/// conversions both ways.
macro_rules! mirror_enum {
    ($(#[$doc:meta])* $name:ident => $core:path { $($v:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
        pub enum $name { $($v),+ }
        impl From<$name> for $core {
            fn from(v: $name) -> Self { match v { $($name::$v => <$core>::$v),+ } }
        }
        impl From<$core> for $name {
            fn from(v: $core) -> Self { match v { $(<$core>::$v => $name::$v),+ } }
        }
    };
}

core_enum!(HouseholdStatus {
    Active,
    MovedAway,
    Closed,
    Unrecognised
});
core_enum!(Sex {
    Female,
    Male,
    Unknown,
    Unrecognised
});
core_enum!(VisitKind {
    Home,
    Phone,
    School,
    NeighbourCheck,
    FollowUp,
    Unrecognised
});
core_enum!(VisitStatus {
    Draft,
    Final,
    Unrecognised
});
core_enum!(
    /// The text sections of a visit record (health and study are absent from a visit started
    /// before them: typing there is refused).
    Section { PersonalSituation, FamilySituation, ActualNeeds, QuestionsAsked, Concerns, AdviceGiven, Health, Study }
);
core_enum!(NeedStatus {
    Open,
    Referred,
    Met,
    Closed,
    Unrecognised
});
core_enum!(InquiryStatus {
    Open,
    Answered,
    Referred,
    Unrecognised
});
core_enum!(FollowUpStatus {
    Open,
    Done,
    Cancelled,
    Unrecognised
});
core_enum!(CardStatus {
    Issued,
    Replaced,
    Lost,
    Void,
    Unrecognised
});
core_enum!(ConflictKind {
    ConcurrentValues,
    EditedAfterFinalise,
    DuplicateResponse
});
mirror_enum!(
    /// Why the server refused a household's changes (see `UploadStatus::Refused`).
    RefusalCode => core::protocol::DocErrorCode { NotFoundOrForbidden, Malformed, Invalid, MissingDependencies, Unattributed, Finalised }
);

// ----- records ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, uniffi::Record)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

#[uniffi::remote(Record)]
pub struct BirthDate {
    /// `YYYY-MM-DD`
    pub date: Date,
    pub estimated: bool,
}

/// Who wrote a value, on which device, when (device clock, ms since the Unix epoch).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Provenance {
    pub worker_id: WorkerId,
    pub device_id: DeviceId,
    pub at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewHousehold {
    pub code: String,
    pub village: String,
    pub address: String,
    pub gps: Option<GeoPoint>,
    pub phones: Vec<String>,
    /// Codes of the vocabulary in force of kind `household`; an unknown code is refused.
    pub tags: Vec<String>,
    pub summary: String,
}

impl NewHousehold {
    pub(crate) fn to_core(&self) -> Result<core::NewHousehold> {
        Ok(core::NewHousehold {
            code: self.code.clone(),
            village: self.village.clone(),
            address: self.address.clone(),
            gps: gps_in(&self.gps)?,
            phones: self.phones.clone(),
            tags: self.tags.clone(),
            summary: self.summary.clone(),
        })
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum HouseholdEdit {
    Code {
        code: String,
    },
    Village {
        village: String,
    },
    Address {
        address: String,
    },
    Gps {
        gps: Option<GeoPoint>,
    },
    Status {
        status: HouseholdStatus,
    },
    AddPhone {
        phone: String,
    },
    RemovePhone {
        phone: String,
    },
    AddTag {
        tag: String,
    },
    RemoveTag {
        tag: String,
    },
    /// `None` clears it.
    CareLevel {
        care_level: Option<CareLevel>,
    },
}

impl HouseholdEdit {
    pub(crate) fn to_core(&self) -> Result<core::HouseholdEdit> {
        use core::HouseholdEdit as E;
        Ok(match self {
            HouseholdEdit::Code { code } => E::Code(code.clone()),
            HouseholdEdit::Village { village } => E::Village(village.clone()),
            HouseholdEdit::Address { address } => E::Address(address.clone()),
            HouseholdEdit::Gps { gps } => E::Gps(gps_in(gps)?),
            HouseholdEdit::Status { status } => E::Status(*status),
            HouseholdEdit::AddPhone { phone } => E::AddPhone(phone.clone()),
            HouseholdEdit::RemovePhone { phone } => E::RemovePhone(phone.clone()),
            HouseholdEdit::AddTag { tag } => E::AddTag(tag.clone()),
            HouseholdEdit::RemoveTag { tag } => E::RemoveTag(tag.clone()),
            HouseholdEdit::CareLevel { care_level } => E::CareLevel(care_level.map(Into::into)),
        })
    }
}

#[uniffi::remote(Record)]
pub struct NewPerson {
    pub name: String,
    pub sex: Sex,
    pub birth_date: Option<BirthDate>,
    pub id_number: Option<String>,
    pub relation: String,
    pub guardian: bool,
    /// Codes of the vocabulary in force for persons (`child`, `person`, `elderly` kinds);
    /// an unknown code is refused.
    pub categories: Vec<String>,
    pub school: Option<String>,
    pub grade: Option<String>,
}

#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum PersonEdit {
    Name {
        name: String,
    },
    Sex {
        sex: Sex,
    },
    BirthDate {
        birth_date: Option<BirthDate>,
    },
    IdNumber {
        id_number: Option<String>,
    },
    Relation {
        relation: String,
    },
    Guardian {
        guardian: bool,
    },
    AddCategory {
        category: String,
    },
    RemoveCategory {
        category: String,
    },
    School {
        school: Option<String>,
    },
    Grade {
        grade: Option<String>,
    },
    /// A code of `CodeList.PARENT_STATUS` (`parent.normal`,
    /// `child.unsupported.parent_imprisoned` ...); `None` or blank clears it.
    FatherStatus {
        status: Option<String>,
    },
    MotherStatus {
        status: Option<String>,
    },
    HukouType {
        hukou_type: Option<HukouType>,
    },
    /// 户籍地
    RegisteredResidence {
        place: String,
    },
    /// 实际居住地
    ActualResidence {
        place: String,
    },
    SchoolStage {
        stage: Option<SchoolStage>,
    },
    SchoolStatus {
        status: Option<SchoolStatus>,
    },
    Boarding {
        boarding: Option<bool>,
    },
    CareLevel {
        care_level: Option<CareLevel>,
    },
    /// The person attended a group activity.
    AddActivity {
        activity_id: ActivityId,
    },
    RemoveActivity {
        activity_id: ActivityId,
    },
}

impl PersonEdit {
    pub(crate) fn to_core(&self) -> Result<core::PersonEdit> {
        use core::PersonEdit as E;
        Ok(match self {
            PersonEdit::Name { name } => E::Name(name.clone()),
            PersonEdit::Sex { sex } => E::Sex(*sex),
            PersonEdit::BirthDate { birth_date } => E::BirthDate(*birth_date),
            PersonEdit::IdNumber { id_number } => E::IdNumber(id_number.clone()),
            PersonEdit::Relation { relation } => E::Relation(relation.clone()),
            PersonEdit::Guardian { guardian } => E::Guardian(*guardian),
            PersonEdit::AddCategory { category } => E::AddCategory(category.clone()),
            PersonEdit::RemoveCategory { category } => E::RemoveCategory(category.clone()),
            PersonEdit::School { school } => E::School(school.clone()),
            PersonEdit::Grade { grade } => E::Grade(grade.clone()),
            PersonEdit::FatherStatus { status } => E::FatherStatus(short(status)?),
            PersonEdit::MotherStatus { status } => E::MotherStatus(short(status)?),
            PersonEdit::HukouType { hukou_type } => E::HukouType(hukou_type.map(Into::into)),
            PersonEdit::RegisteredResidence { place } => E::RegisteredResidence(place.clone()),
            PersonEdit::ActualResidence { place } => E::ActualResidence(place.clone()),
            PersonEdit::SchoolStage { stage } => E::SchoolStage(stage.map(Into::into)),
            PersonEdit::SchoolStatus { status } => E::SchoolStatus(status.map(Into::into)),
            PersonEdit::Boarding { boarding } => E::Boarding(*boarding),
            PersonEdit::CareLevel { care_level } => E::CareLevel(care_level.map(Into::into)),
            PersonEdit::AddActivity { activity_id } => E::AddActivity(*activity_id),
            PersonEdit::RemoveActivity { activity_id } => E::RemoveActivity(*activity_id),
        })
    }
}

/// Someone on a visit who is not a registered worker (a 村儿童主任, a police officer):
/// `name` required, `role` may be empty. Personal data: do not log it. (The core's
/// `Companion`; not so named here because every Kotlin class has a `Companion` object.)
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct VisitCompanion {
    pub name: String,
    pub role: String,
}

impl VisitCompanion {
    fn to_core(&self) -> core::Companion {
        core::Companion::new(&self.name, &self.role)
    }
}

impl From<core::Companion> for VisitCompanion {
    fn from(c: core::Companion) -> Self {
        VisitCompanion {
            name: c.name,
            role: c.role,
        }
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewVisit {
    pub kind: VisitKind,
    /// The local date of the visit, `YYYY-MM-DD`.
    pub date: Date,
    pub started_at_ms: i64,
    pub gps: Option<GeoPoint>,
    pub other_worker_ids: Vec<WorkerId>,
    pub present_person_ids: Vec<PersonId>,
    /// People on the visit who are not registered workers (may be left out: none).
    #[uniffi(default)]
    pub companions: Vec<VisitCompanion>,
}

impl NewVisit {
    pub(crate) fn to_core(&self) -> Result<core::NewVisit> {
        Ok(core::NewVisit {
            kind: self.kind,
            date: self.date,
            started_at: core::Timestamp(self.started_at_ms),
            gps: gps_in(&self.gps)?,
            other_workers: self.other_worker_ids.clone(),
            present: self.present_person_ids.clone(),
            companions: self
                .companions
                .iter()
                .map(VisitCompanion::to_core)
                .collect(),
        })
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum VisitEdit {
    Kind { kind: VisitKind },
    Date { date: Date },
    EndedAt { ended_at_ms: Option<i64> },
    Gps { gps: Option<GeoPoint> },
    AddWorker { worker_id: WorkerId },
    RemoveWorker { worker_id: WorkerId },
    AddPresent { person_id: PersonId },
    RemovePresent { person_id: PersonId },
    AddCompanion { companion: VisitCompanion },
    RemoveCompanion { companion: VisitCompanion },
}

impl VisitEdit {
    pub(crate) fn to_core(&self) -> Result<core::VisitEdit> {
        use core::VisitEdit as E;
        Ok(match self {
            VisitEdit::Kind { kind } => E::Kind(*kind),
            VisitEdit::Date { date: d } => E::Date(*d),
            VisitEdit::EndedAt { ended_at_ms } => E::EndedAt(ended_at_ms.map(core::Timestamp)),
            VisitEdit::Gps { gps } => E::Gps(gps_in(gps)?),
            VisitEdit::AddWorker { worker_id: w } => E::AddWorker(*w),
            VisitEdit::RemoveWorker { worker_id: w } => E::RemoveWorker(*w),
            VisitEdit::AddPresent { person_id: p } => E::AddPresent(*p),
            VisitEdit::RemovePresent { person_id: p } => E::RemovePresent(*p),
            VisitEdit::AddCompanion { companion } => E::AddCompanion(companion.to_core()),
            VisitEdit::RemoveCompanion { companion } => E::RemoveCompanion(companion.to_core()),
        })
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewNeed {
    pub category: String,
    pub description: String,
    pub person_id: Option<PersonId>,
    pub visit_id: Option<VisitId>,
}

impl NewNeed {
    pub(crate) fn to_core(&self) -> Result<core::NewNeed> {
        Ok(core::NewNeed {
            category: self.category.clone(),
            description: self.description.clone(),
            person: self.person_id,
            visit: self.visit_id,
        })
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewInquiry {
    pub question: String,
    pub topic: String,
    pub answer: Option<String>,
    pub visit_id: Option<VisitId>,
}

impl NewInquiry {
    pub(crate) fn to_core(&self) -> Result<core::NewInquiry> {
        Ok(core::NewInquiry {
            question: self.question.clone(),
            topic: self.topic.clone(),
            answer: self.answer.clone(),
            visit: self.visit_id,
        })
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewFollowUp {
    pub what: String,
    /// `YYYY-MM-DD`
    pub due: Date,
    pub assignee_worker_id: WorkerId,
    pub origin_visit_id: Option<VisitId>,
}

impl NewFollowUp {
    pub(crate) fn to_core(&self) -> Result<core::NewFollowUp> {
        Ok(core::NewFollowUp {
            what: self.what.clone(),
            due: self.due,
            assignee: self.assignee_worker_id,
            origin_visit: self.origin_visit_id,
        })
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewCardIssuance {
    pub serial: String,
    pub visit_id: Option<VisitId>,
    pub person_id: Option<PersonId>,
    pub replaces_card_id: Option<CardIssuanceId>,
}

impl NewCardIssuance {
    pub(crate) fn to_core(&self) -> Result<core::NewCardIssuance> {
        Ok(core::NewCardIssuance {
            serial: self.serial.clone(),
            visit: self.visit_id,
            person: self.person_id,
            replaces: self.replaces_card_id,
        })
    }
}

// ----- read model ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Person {
    pub id: PersonId,
    pub name: String,
    pub sex: Sex,
    pub birth_date: Option<BirthDate>,
    pub id_number: Option<String>,
    pub relation: String,
    pub guardian: bool,
    /// Category codes (`child.orphan.centralised`; `vocabulary()`, `describeCategory`); free
    /// text written before vocabularies as it was written.
    pub categories: Vec<String>,
    pub school: Option<String>,
    pub grade: Option<String>,
    /// Codes of `CodeList.PARENT_STATUS` as stored (`describeCode`); `None`: not recorded.
    pub father_status: Option<String>,
    pub mother_status: Option<String>,
    pub hukou_type: Option<HukouType>,
    /// 户籍地; empty when not recorded.
    pub registered_residence: String,
    /// 实际居住地; empty when not recorded.
    pub actual_residence: String,
    pub school_stage: Option<SchoolStage>,
    pub school_status: Option<SchoolStatus>,
    pub boarding: Option<bool>,
    pub care_level: Option<CareLevel>,
    /// Group activities the person attended (activity ids; `attendees`).
    pub activity_ids: Vec<ActivityId>,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SectionText {
    pub section: Section,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Visit {
    pub id: VisitId,
    pub household_id: HouseholdId,
    pub kind: VisitKind,
    pub date: Date,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub gps: Option<GeoPoint>,
    pub status: VisitStatus,
    pub worker_ids: Vec<WorkerId>,
    pub present_person_ids: Vec<PersonId>,
    /// Sorted by name, then role.
    pub companions: Vec<VisitCompanion>,
    pub sections: Vec<SectionText>,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Amendment {
    pub id: AmendmentId,
    pub visit_id: VisitId,
    pub section: Option<Section>,
    pub text: String,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Need {
    pub id: NeedId,
    pub category: String,
    pub description: String,
    pub person_id: Option<PersonId>,
    pub visit_id: Option<VisitId>,
    pub status: NeedStatus,
    /// The resource of the register the need was referred to (`referNeed`).
    pub resource_id: Option<ResourceId>,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Inquiry {
    pub id: InquiryId,
    pub question: String,
    pub topic: String,
    pub answer: Option<String>,
    pub visit_id: Option<VisitId>,
    pub status: InquiryStatus,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FollowUp {
    pub id: FollowUpId,
    pub what: String,
    pub due: Date,
    pub assignee_worker_id: WorkerId,
    pub origin_visit_id: Option<VisitId>,
    pub status: FollowUpStatus,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct CardIssuance {
    pub id: CardIssuanceId,
    pub serial: String,
    pub visit_id: Option<VisitId>,
    pub person_id: Option<PersonId>,
    pub replaces_card_id: Option<CardIssuanceId>,
    pub status: CardStatus,
    pub created: Provenance,
}

/// A household's whole case file.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Household {
    pub id: HouseholdId,
    pub station_id: StationId,
    pub code: String,
    pub village: String,
    pub address: String,
    pub gps: Option<GeoPoint>,
    pub status: HouseholdStatus,
    pub phones: Vec<String>,
    /// Household category codes (`household.dibao`; `vocabulary()`, `describeCategory`);
    /// free text written before vocabularies as it was written.
    pub tags: Vec<String>,
    pub summary: String,
    pub created: Provenance,
    pub persons: Vec<Person>,
    pub visits: Vec<Visit>,
    pub amendments: Vec<Amendment>,
    pub needs: Vec<Need>,
    pub inquiries: Vec<Inquiry>,
    pub follow_ups: Vec<FollowUp>,
    pub cards: Vec<CardIssuance>,
    /// `None`: not set (the visit interval follows the strictest of it and its persons').
    pub care_level: Option<CareLevel>,
    pub benefits: Vec<Benefit>,
    pub guardianships: Vec<Guardianship>,
}

impl From<core::Household> for Household {
    fn from(h: core::Household) -> Self {
        Household {
            id: h.id,
            station_id: h.station,
            code: h.code,
            village: h.village,
            address: h.address,
            gps: gps_out(h.gps),
            status: h.status,
            phones: h.phones,
            tags: h.tags,
            summary: h.summary,
            created: prov(h.created),
            persons: h
                .persons
                .into_iter()
                .map(|p| Person {
                    id: p.id,
                    name: p.name,
                    sex: p.sex,
                    birth_date: p.birth_date,
                    id_number: p.id_number,
                    relation: p.relation,
                    guardian: p.guardian,
                    categories: p.categories,
                    school: p.school,
                    grade: p.grade,
                    father_status: p.parents.father,
                    mother_status: p.parents.mother,
                    hukou_type: p.hukou.kind.map(Into::into),
                    registered_residence: p.hukou.registered,
                    actual_residence: p.hukou.actual,
                    school_stage: p.schooling.stage.map(Into::into),
                    school_status: p.schooling.status.map(Into::into),
                    boarding: p.schooling.boarding,
                    care_level: p.care_level.map(Into::into),
                    activity_ids: p.activities,
                    created: prov(p.created),
                })
                .collect(),
            visits: h
                .visits
                .into_iter()
                .map(|v| Visit {
                    id: v.id,
                    household_id: v.household,
                    kind: v.kind,
                    date: v.date,
                    started_at_ms: v.started_at.0,
                    ended_at_ms: v.ended_at.map(|t| t.0),
                    gps: gps_out(v.gps),
                    status: v.status,
                    worker_ids: v.workers,
                    present_person_ids: v.present,
                    companions: v.companions.into_iter().map(Into::into).collect(),
                    sections: v
                        .sections
                        .into_iter()
                        .map(|(s, text)| SectionText { section: s, text })
                        .collect(),
                    created: prov(v.created),
                })
                .collect(),
            amendments: h
                .amendments
                .into_iter()
                .map(|a| Amendment {
                    id: a.id,
                    visit_id: a.visit,
                    section: a.section,
                    text: a.text,
                    created: prov(a.created),
                })
                .collect(),
            needs: h
                .needs
                .into_iter()
                .map(|n| Need {
                    id: n.id,
                    category: n.category,
                    description: n.description,
                    person_id: n.person,
                    visit_id: n.visit,
                    status: n.status,
                    resource_id: n.resource,
                    created: prov(n.created),
                })
                .collect(),
            inquiries: h
                .inquiries
                .into_iter()
                .map(|i| Inquiry {
                    id: i.id,
                    question: i.question,
                    topic: i.topic,
                    answer: i.answer,
                    visit_id: i.visit,
                    status: i.status,
                    created: prov(i.created),
                })
                .collect(),
            follow_ups: h
                .follow_ups
                .into_iter()
                .map(|f| FollowUp {
                    id: f.id,
                    what: f.what,
                    due: f.due,
                    assignee_worker_id: f.assignee,
                    origin_visit_id: f.origin_visit,
                    status: f.status,
                    created: prov(f.created),
                })
                .collect(),
            cards: h
                .cards
                .into_iter()
                .map(|c| CardIssuance {
                    id: c.id,
                    serial: c.serial,
                    visit_id: c.visit,
                    person_id: c.person,
                    replaces_card_id: c.replaces,
                    status: c.status,
                    created: prov(c.created),
                })
                .collect(),
            care_level: h.care_level.map(Into::into),
            benefits: h.benefits.into_iter().map(Into::into).collect(),
            guardianships: h.guardianships.into_iter().map(Into::into).collect(),
        }
    }
}

/// A short code the app passes, bounded before it reaches the core.
fn short(v: &Option<String>) -> Result<Option<String>> {
    if let Some(s) = v {
        bounded(s)?;
    }
    Ok(v.clone())
}

// ----- conflicts and provenance --------------------------------------------------------------

/// The kind of record a field belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum RecordKind {
    Household,
    Person,
    Visit,
    Need,
    Inquiry,
    FollowUp,
    Card,
    Benefit,
    Guardianship,
    /// A group activity's own field (`household_id` of a parallel update is then the
    /// activity's id).
    Activity,
    /// A resource's own field (likewise).
    Resource,
    /// A survey's own field (likewise; ADR 0022).
    Survey,
    /// A person's response to a survey (a record of the household).
    Response,
}

/// A field of a record: `record_id` is `None` for the household's own fields.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FieldRef {
    pub record: RecordKind,
    pub record_id: Option<String>,
    pub field: String,
}

impl FieldRef {
    pub(crate) fn to_core(&self) -> Result<core::FieldRef> {
        use core::EntityRef as E;
        let id = || {
            self.record_id
                .as_deref()
                .ok_or_else(|| invalid("record id is required"))
        };
        let entity = match self.record {
            RecordKind::Household => E::Household,
            RecordKind::Person => E::Person(core::PersonId::parse(id()?)?),
            RecordKind::Visit => E::Visit(core::VisitId::parse(id()?)?),
            RecordKind::Need => E::Need(core::NeedId::parse(id()?)?),
            RecordKind::Inquiry => E::Inquiry(core::InquiryId::parse(id()?)?),
            RecordKind::FollowUp => E::FollowUp(core::FollowUpId::parse(id()?)?),
            RecordKind::Card => E::Card(core::CardIssuanceId::parse(id()?)?),
            RecordKind::Benefit => E::Benefit(core::BenefitId::parse(id()?)?),
            RecordKind::Guardianship => E::Guardianship(core::GuardianshipId::parse(id()?)?),
            RecordKind::Activity => E::Activity(core::ActivityId::parse(id()?)?),
            RecordKind::Resource => E::Resource(core::ResourceId::parse(id()?)?),
            RecordKind::Survey => E::Survey(core::SurveyId::parse(id()?)?),
            RecordKind::Response => E::Response(core::ResponseId::parse(id()?)?),
        };
        Ok(core::FieldRef::new(entity, &self.field))
    }
}

impl From<&core::FieldRef> for FieldRef {
    fn from(f: &core::FieldRef) -> Self {
        use core::EntityRef as E;
        let record = match f.entity {
            E::Household => RecordKind::Household,
            E::Person(_) => RecordKind::Person,
            E::Visit(_) => RecordKind::Visit,
            E::Need(_) => RecordKind::Need,
            E::Inquiry(_) => RecordKind::Inquiry,
            E::FollowUp(_) => RecordKind::FollowUp,
            E::Card(_) => RecordKind::Card,
            E::Benefit(_) => RecordKind::Benefit,
            E::Guardianship(_) => RecordKind::Guardianship,
            E::Activity(_) => RecordKind::Activity,
            E::Resource(_) => RecordKind::Resource,
            E::Survey(_) => RecordKind::Survey,
            E::Response(_) => RecordKind::Response,
        };
        FieldRef {
            record,
            record_id: f.entity.key(),
            field: f.field.clone(),
        }
    }
}

/// One value a field holds, with who wrote it.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FieldVersion {
    pub value: Option<String>,
    pub provenance: Provenance,
}

pub(crate) fn versions(v: Vec<core::FieldVersion>) -> Vec<FieldVersion> {
    v.into_iter()
        .map(|v| FieldVersion {
            value: v.value,
            provenance: prov(v.provenance),
        })
        .collect()
}

/// A conflict waiting for a human.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Conflict {
    pub household_id: HouseholdId,
    pub field: FieldRef,
    pub kind: ConflictKind,
    pub values: Vec<FieldVersion>,
}

impl From<core::Conflict> for Conflict {
    fn from(c: core::Conflict) -> Self {
        Conflict {
            household_id: c.household,
            field: (&c.field).into(),
            kind: c.kind,
            values: versions(c.values),
        }
    }
}

/// A last-writer-wins field written concurrently: the value shown and those it overshadowed.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ParallelUpdate {
    pub household_id: HouseholdId,
    pub field: FieldRef,
    pub shown: FieldVersion,
    pub overshadowed: Vec<FieldVersion>,
}

impl From<core::ParallelUpdate> for ParallelUpdate {
    fn from(u: core::ParallelUpdate) -> Self {
        ParallelUpdate {
            household_id: u.household,
            field: (&u.field).into(),
            shown: versions(vec![u.shown]).remove(0),
            overshadowed: versions(u.overshadowed),
        }
    }
}

// ----- query results ------------------------------------------------------------------------

#[uniffi::remote(Record)]
pub struct HouseholdSummary {
    pub id: HouseholdId,
    pub code: String,
    pub village: String,
    pub address: String,
    pub status: HouseholdStatus,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct VisitSummary {
    pub id: VisitId,
    pub household_id: HouseholdId,
    pub date: Date,
    pub kind: VisitKind,
    pub status: VisitStatus,
    pub started_at_ms: i64,
}

impl From<core::VisitSummary> for VisitSummary {
    fn from(v: core::VisitSummary) -> Self {
        VisitSummary {
            id: v.id,
            household_id: v.household,
            date: v.date,
            kind: v.kind,
            status: v.status,
            started_at_ms: v.started_at.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FollowUpSummary {
    pub id: FollowUpId,
    pub household_id: HouseholdId,
    pub origin_visit_id: Option<VisitId>,
    pub due: Date,
    pub assignee_worker_id: WorkerId,
    pub status: FollowUpStatus,
    pub overdue: bool,
}

impl From<core::FollowUpSummary> for FollowUpSummary {
    fn from(f: core::FollowUpSummary) -> Self {
        FollowUpSummary {
            id: f.id,
            household_id: f.household,
            origin_visit_id: f.origin_visit,
            due: f.due,
            assignee_worker_id: f.assignee,
            status: f.status,
            overdue: f.overdue,
        }
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct CardSummary {
    pub id: CardIssuanceId,
    pub household_id: HouseholdId,
    pub serial: String,
    pub visit_id: Option<VisitId>,
    pub person_id: Option<PersonId>,
    pub status: CardStatus,
    pub issued_by_worker_id: WorkerId,
    pub issued_at_ms: i64,
}

impl From<core::CardSummary> for CardSummary {
    fn from(c: core::CardSummary) -> Self {
        CardSummary {
            id: c.id,
            household_id: c.household,
            serial: c.serial,
            visit_id: c.visit,
            person_id: c.person,
            status: c.status,
            issued_by_worker_id: c.issued_by,
            issued_at_ms: c.issued_at.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SearchHit {
    pub household_id: HouseholdId,
    pub record_id: String,
    pub field: String,
    pub excerpt: String,
}

impl From<core::SearchHit> for SearchHit {
    fn from(h: core::SearchHit) -> Self {
        SearchHit {
            household_id: h.household,
            record_id: h.record,
            field: h.field,
            excerpt: h.excerpt,
        }
    }
}

// ----- sync --------------------------------------------------------------------------------

/// What a `sync` call did.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct SyncReport {
    pub round_trips: u32,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub acknowledged: u32,
    pub pulled: u32,
    pub snapshots: u32,
    pub refused: u32,
    pub epoch_reset: bool,
    /// Households the server erased that this phone held: deleted here, with any of this
    /// phone's changes to them the server never got (tell the worker; see
    /// `erased_households`).
    pub erased: Vec<ErasedHousehold>,
    /// Households that left the worker's caseload (reassigned, or the worker moved team or
    /// role), removed here once this phone's edits to them reached the server (see
    /// `departed_households`, `why_gone`).
    pub departed_household_ids: Vec<HouseholdId>,
    /// Households the server redacted that this phone held: replaced by their new
    /// generation (without the redacted values or their history), this phone's unsynced
    /// edits kept on it (tell the worker if some were discarded).
    pub redacted: Vec<RedactedHousehold>,
    /// Neither side has more. `false` when `deadline_ms` stopped the sync between round
    /// trips: sync again later; it resumes where this one stopped.
    pub complete: bool,
}

/// A household the server redacted (a wrong ID number, a note on the wrong child, a person
/// who asked to be removed), replaced on this phone by its new generation.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RedactedHousehold {
    pub household_id: HouseholdId,
    pub generation: u32,
    pub reason: ErasureReason,
    /// When the server redacted it (ms since the Unix epoch, the server's clock).
    pub redacted_at_ms: i64,
    /// This phone computed the new generation from its own copy and found the server's.
    pub witnessed: bool,
    /// This phone's unsynced edits that fell on what was redacted: discarded.
    pub discarded_edits: u32,
}

impl From<core::RedactedHousehold> for RedactedHousehold {
    fn from(r: core::RedactedHousehold) -> Self {
        RedactedHousehold {
            household_id: r.household,
            generation: r.generation,
            reason: r.reason,
            redacted_at_ms: r.redacted_at.0,
            witnessed: r.witnessed,
            discarded_edits: r.discarded_edits,
        }
    }
}

/// Why a household was erased (a code: the server records no free text).
#[uniffi::remote(Enum)]
pub enum ErasureReason {
    /// The person or their guardian asked for it (PIPL Art. 47).
    SubjectRequest,
    /// Created in error (a duplicate, the wrong station).
    CreatedInError,
    /// Its retention period after closing ended.
    RetentionEnded,
    Other,
}

/// One opening of a case file on this phone (its access log): ids and times only.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct CaseFileAccess {
    pub household_id: HouseholdId,
    /// The signed-in worker who opened it.
    pub worker_id: WorkerId,
    /// This phone.
    pub device_id: DeviceId,
    /// When (ms since the Unix epoch, this phone's clock).
    pub at_ms: i64,
    /// The server has been sent it.
    pub synced: bool,
}

impl From<core::CaseFileAccess> for CaseFileAccess {
    fn from(a: core::CaseFileAccess) -> Self {
        CaseFileAccess {
            household_id: a.household,
            worker_id: a.worker,
            device_id: a.device,
            at_ms: a.at.0,
            synced: a.synced,
        }
    }
}

/// A household the server erased, deleted from this phone.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ErasedHousehold {
    pub household_id: HouseholdId,
    pub reason: ErasureReason,
    /// When the server erased it (ms since the Unix epoch, the server's clock).
    pub erased_at_ms: i64,
    /// When this phone deleted it (this phone's clock).
    pub removed_at_ms: i64,
    /// This phone's changes to it that never reached the server: discarded with it.
    pub discarded_changes: u32,
}

impl From<core::ErasedHousehold> for ErasedHousehold {
    fn from(e: core::ErasedHousehold) -> Self {
        ErasedHousehold {
            household_id: e.household,
            reason: e.reason,
            erased_at_ms: e.erased_at.0,
            removed_at_ms: e.removed_at.0,
            discarded_changes: e.discarded_changes,
        }
    }
}

/// What a worker sees (issue 16, ADR 0019), as the server last said.
#[uniffi::remote(Enum)]
pub enum Role {
    /// Their caseload: households assigned to them or their team, and those they create.
    Worker,
    /// The whole station.
    Supervisor,
    /// Console reports of several stations; no caseload on a phone.
    County,
}

/// A household that left the worker's caseload.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct DepartedHousehold {
    pub household_id: HouseholdId,
    /// When this phone was told (its clock, ms since the Unix epoch).
    pub left_at_ms: i64,
    /// When it was removed; absent while this phone's edits to it wait to be pushed.
    pub removed_at_ms: Option<i64>,
    /// This phone's changes to it that the server refused, discarded with it.
    pub discarded_changes: u32,
}

impl From<core::DepartedHousehold> for DepartedHousehold {
    fn from(d: core::DepartedHousehold) -> Self {
        DepartedHousehold {
            household_id: d.household,
            left_at_ms: d.left_at.0,
            removed_at_ms: d.removed_at.map(|t| t.0),
            discarded_changes: d.discarded_changes,
        }
    }
}

/// Why a household is no longer on this phone.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum GoneReason {
    /// The server erased it.
    Erased { erasure: ErasedHousehold },
    /// It left the worker's caseload (reassigned, or the worker moved team or role).
    LeftCaseload { departure: DepartedHousehold },
}

impl From<core::Gone> for GoneReason {
    fn from(g: core::Gone) -> Self {
        match g {
            core::Gone::Erased(e) => GoneReason::Erased { erasure: e.into() },
            core::Gone::LeftScope(d) => GoneReason::LeftCaseload {
                departure: d.into(),
            },
        }
    }
}

/// A worker of this station and the label the station gave them ("W01 / 张丽"), from the
/// station document.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct WorkerLabel {
    pub worker_id: WorkerId,
    pub label: String,
}

impl From<core::transport::SyncReport> for SyncReport {
    fn from(r: core::transport::SyncReport) -> Self {
        SyncReport {
            round_trips: r.round_trips,
            bytes_up: r.bytes_up,
            bytes_down: r.bytes_down,
            acknowledged: r.acknowledged as u32,
            pulled: r.pulled as u32,
            snapshots: r.snapshots as u32,
            refused: r.refused as u32,
            epoch_reset: r.epoch_reset,
            erased: r.erased.into_iter().map(Into::into).collect(),
            departed_household_ids: r.departed,
            redacted: r.redacted.into_iter().map(Into::into).collect(),
            complete: r.complete,
        }
    }
}

/// What applying one response did (transport-free sync).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SyncStep {
    /// Call `prepare_sync_request` again and send it.
    pub more: bool,
    pub acknowledged: u32,
    pub pulled: u32,
    pub snapshots: u32,
    pub refused: u32,
    pub epoch_reset: bool,
    pub changed_household_ids: Vec<HouseholdId>,
    /// Documents this step could not apply or read (see `quarantined`).
    pub quarantined_household_ids: Vec<HouseholdId>,
    /// Households the server erased that this phone held, deleted by this step.
    pub erased: Vec<ErasedHousehold>,
    /// Households that left the worker's caseload, removed by this step.
    pub departed_household_ids: Vec<HouseholdId>,
}

impl From<core::SyncOutcome> for SyncStep {
    fn from(o: core::SyncOutcome) -> Self {
        SyncStep {
            more: o.more,
            acknowledged: o.acknowledged as u32,
            pulled: o.pulled as u32,
            snapshots: o.snapshots as u32,
            refused: o.refused.len() as u32,
            epoch_reset: o.epoch_reset,
            changed_household_ids: o.changed,
            quarantined_household_ids: o.quarantined,
            erased: o.erased.into_iter().map(Into::into).collect(),
            departed_household_ids: o.departed,
        }
    }
}

/// A document this device received but could not apply or read: it stays as it was, and
/// the next version the server sends is tried again (the reason names a rule, no content).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Quarantined {
    pub household_id: HouseholdId,
    pub reason: String,
    /// Milliseconds since the Unix epoch.
    pub since_ms: i64,
}

impl From<core::Quarantined> for Quarantined {
    fn from(q: core::Quarantined) -> Self {
        Quarantined {
            household_id: q.household,
            reason: q.reason,
            since_ms: q.since.0,
        }
    }
}

/// Where this device's work on a household or a visit stands with the server. Reasons
/// name a rule, never content.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum UploadStatus {
    /// Changes made here that the server has not acknowledged yet.
    Pending,
    /// The server acknowledged every change made here; `at_ms` when (this phone's clock),
    /// `None` if nothing made here needed uploading.
    Uploaded { at_ms: Option<i64> },
    /// The server refused the household's changes; changing it here tries again.
    Refused { code: RefusalCode, reason: String },
    /// What the server sent could not be applied or read here (see `quarantined`).
    Quarantined { reason: String, since_ms: i64 },
    /// The server erased the household; this phone deleted it, with
    /// `discarded_changes` of its own changes the server never got.
    Erased {
        reason: ErasureReason,
        erased_at_ms: i64,
        discarded_changes: u32,
    },
}

impl From<core::UploadStatus> for UploadStatus {
    fn from(s: core::UploadStatus) -> Self {
        match s {
            core::UploadStatus::Pending => UploadStatus::Pending,
            core::UploadStatus::Uploaded { at } => UploadStatus::Uploaded {
                at_ms: at.map(|t| t.0),
            },
            core::UploadStatus::Refused { code, reason } => UploadStatus::Refused {
                code: code.into(),
                reason,
            },
            core::UploadStatus::Quarantined { reason, since } => UploadStatus::Quarantined {
                reason,
                since_ms: since.0,
            },
            core::UploadStatus::Erased {
                reason,
                erased_at,
                discarded_changes,
            } => UploadStatus::Erased {
                reason,
                erased_at_ms: erased_at.0,
                discarded_changes,
            },
        }
    }
}

/// A household refused by the server or quarantined here, with why.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RefusedHousehold {
    pub household_id: HouseholdId,
    pub status: UploadStatus,
}

impl From<core::RefusedHousehold> for RefusedHousehold {
    fn from(r: core::RefusedHousehold) -> Self {
        RefusedHousehold {
            household_id: r.household,
            status: r.status.into(),
        }
    }
}

/// The result of exchanging an enrolment code.
#[derive(Clone, PartialEq, uniffi::Record)]
pub struct Enrollment {
    /// Keep it in the Keystore / Keychain; never log it.
    pub token: String,
    pub device_id: DeviceId,
    pub worker_id: WorkerId,
    pub station_id: StationId,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

// ----- cards ---------------------------------------------------------------------------------

/// A card to leave with a household (serial as printed, e.g. `HG-000123-4`).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewCard {
    pub serial: String,
    pub visit_id: Option<VisitId>,
    pub person_id: Option<PersonId>,
    pub replaces_card_id: Option<CardIssuanceId>,
    /// The serial is not from this device's lease (a found or older card).
    pub outside_lease: bool,
}

impl NewCard {
    pub(crate) fn to_core(&self) -> Result<core::NewCard> {
        Ok(core::NewCard {
            serial: self.serial.clone(),
            visit: self.visit_id,
            person: self.person_id,
            replaces: self.replaces_card_id,
            outside_lease: self.outside_lease,
        })
    }
}

/// A range of serials leased to this device.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct CardLease {
    pub id: CardLeaseId,
    pub prefix: String,
    pub first: u32,
    pub last: u32,
    pub expires: Option<Date>,
    pub returned: bool,
}

impl From<core::CardLease> for CardLease {
    fn from(l: core::CardLease) -> Self {
        CardLease {
            id: l.id,
            prefix: l.prefix,
            first: l.first,
            last: l.last,
            expires: l.expires,
            returned: l.returned,
        }
    }
}

/// Cards this device can still hand out.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct CardStock {
    pub remaining: u32,
    /// Fewer than the threshold remain: ask the station for a new lease.
    pub low: bool,
    pub next_serial: Option<String>,
}

/// A serial issued to more than one household: void all but one.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct DuplicateCard {
    pub serial: String,
    pub issuances: Vec<CardSummary>,
}
