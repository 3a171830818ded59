//! The records of a household case file as the API reads and writes them.

use crate::model::ids::*;
use crate::model::person_details::*;
use crate::model::provenance::Provenance;
use crate::model::time::{Date, Timestamp};
use crate::model::values::*;

/// A household's case file, read whole from its document.
#[derive(Clone, Debug, PartialEq)]
pub struct Household {
    pub id: HouseholdId,
    pub station: StationId,
    pub code: String,
    pub village: String,
    pub address: String,
    pub gps: Option<GeoPoint>,
    pub status: HouseholdStatus,
    pub phones: Vec<String>,
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
    /// The household's care level (the visit interval follows the strictest of it and its
    /// persons'); `None` when not set, as in documents from before care levels.
    pub care_level: Option<CareLevel>,
    pub benefits: Vec<Benefit>,
    pub guardianships: Vec<Guardianship>,
    /// Its persons' answers to the station's needs surveys (ADR 0022), by id.
    pub responses: Vec<crate::model::survey::SurveyResponse>,
}

/// What the app supplies to open a new case file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewHousehold {
    pub code: String,
    pub village: String,
    pub address: String,
    pub gps: Option<GeoPoint>,
    pub phones: Vec<String>,
    pub tags: Vec<String>,
    pub summary: String,
}

/// One edit of a household's own fields.
#[derive(Clone, Debug, PartialEq)]
pub enum HouseholdEdit {
    Code(String),
    Village(String),
    Address(String),
    Gps(Option<GeoPoint>),
    Status(HouseholdStatus),
    AddPhone(String),
    RemovePhone(String),
    AddTag(String),
    RemoveTag(String),
    CareLevel(Option<CareLevel>),
}

/// A person in a household.
#[derive(Clone, Debug, PartialEq)]
pub struct Person {
    pub id: PersonId,
    pub name: String,
    pub sex: Sex,
    pub birth_date: Option<BirthDate>,
    /// Restricted: shown only to those who need it; never logged.
    pub id_number: Option<String>,
    pub relation: String,
    pub guardian: bool,
    /// 困境儿童, 事实无人抚养, 留守, 独居老人 ... data, not an enum: stations add their own.
    pub categories: Vec<String>,
    pub school: Option<String>,
    pub grade: Option<String>,
    pub parents: ParentsStatus,
    pub hukou: Hukou,
    pub schooling: Schooling,
    pub care_level: Option<CareLevel>,
    /// Group activities this person attended (ADR 0021), sorted.
    pub activities: Vec<ActivityId>,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewPerson {
    pub name: String,
    pub sex: Sex,
    pub birth_date: Option<BirthDate>,
    pub id_number: Option<String>,
    pub relation: String,
    pub guardian: bool,
    pub categories: Vec<String>,
    pub school: Option<String>,
    pub grade: Option<String>,
}

impl NewPerson {
    /// A person with only a name and relation; the rest unknown.
    pub fn named(name: &str, relation: &str) -> Self {
        NewPerson {
            name: name.to_owned(),
            sex: Sex::Unknown,
            birth_date: None,
            id_number: None,
            relation: relation.to_owned(),
            guardian: false,
            categories: Vec::new(),
            school: None,
            grade: None,
        }
    }
}

/// One edit of a person.
#[derive(Clone, Debug, PartialEq)]
pub enum PersonEdit {
    Name(String),
    Sex(Sex),
    BirthDate(Option<BirthDate>),
    IdNumber(Option<String>),
    Relation(String),
    Guardian(bool),
    AddCategory(String),
    RemoveCategory(String),
    School(Option<String>),
    Grade(Option<String>),
    /// A code of [`CodeList::ParentStatus`], or `None` to clear.
    FatherStatus(Option<String>),
    MotherStatus(Option<String>),
    HukouType(Option<HukouType>),
    RegisteredResidence(String),
    ActualResidence(String),
    SchoolStage(Option<SchoolStage>),
    SchoolStatus(Option<SchoolStatus>),
    Boarding(Option<bool>),
    CareLevel(Option<CareLevel>),
    /// The person attended a group activity (ADR 0021).
    AddActivity(ActivityId),
    RemoveActivity(ActivityId),
}

/// A visit record.
#[derive(Clone, Debug, PartialEq)]
pub struct Visit {
    pub id: VisitId,
    pub household: HouseholdId,
    pub kind: VisitKind,
    pub date: Date,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub gps: Option<GeoPoint>,
    pub status: VisitStatus,
    pub workers: Vec<WorkerId>,
    pub present: Vec<PersonId>,
    /// People on the visit who are not registered workers, sorted by name, then role
    /// (empty for a visit recorded before companions existed).
    pub companions: Vec<Companion>,
    /// Every section, in [`Section::ALL`] order (a visit started before the later sections
    /// reads them as empty).
    pub sections: Vec<(Section, String)>,
    pub created: Provenance,
}

impl Visit {
    pub fn section(&self, which: Section) -> &str {
        self.sections
            .iter()
            .find(|(s, _)| *s == which)
            .map(|(_, t)| t.as_str())
            .unwrap_or("")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewVisit {
    pub kind: VisitKind,
    pub date: Date,
    pub started_at: Timestamp,
    pub gps: Option<GeoPoint>,
    /// Colleagues on the visit besides the signed-in worker.
    pub other_workers: Vec<WorkerId>,
    pub present: Vec<PersonId>,
    /// People on the visit who are not registered workers.
    pub companions: Vec<Companion>,
}

/// Someone on a visit who is not a registered worker: a village children's director
/// (村儿童主任), a police officer, a teacher. Personal data: never logged.
///
/// A companion is the pair of both texts: the same name and role added on two phones is
/// one companion; correcting either is a removal and an addition.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Companion {
    /// Required; one line, at most 500 characters.
    pub name: String,
    /// What they are there as (村儿童主任, 派出所民警 ...); may be empty.
    pub role: String,
}

impl Companion {
    pub fn new(name: &str, role: &str) -> Self {
        Companion {
            name: name.to_owned(),
            role: role.to_owned(),
        }
    }
}

/// One edit of a draft visit's fields (sections are edited by splice).
#[derive(Clone, Debug, PartialEq)]
pub enum VisitEdit {
    Kind(VisitKind),
    Date(Date),
    EndedAt(Option<Timestamp>),
    Gps(Option<GeoPoint>),
    AddWorker(WorkerId),
    RemoveWorker(WorkerId),
    AddPresent(PersonId),
    RemovePresent(PersonId),
    AddCompanion(Companion),
    RemoveCompanion(Companion),
}

/// A correction of a finalised visit: the visit stays as it was; this record says what
/// should be read differently, who said so and when.
#[derive(Clone, Debug, PartialEq)]
pub struct Amendment {
    pub id: AmendmentId,
    pub visit: VisitId,
    pub section: Option<Section>,
    pub text: String,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Need {
    pub id: NeedId,
    pub category: String,
    pub description: String,
    pub person: Option<PersonId>,
    pub visit: Option<VisitId>,
    pub status: NeedStatus,
    /// The resource of the register this need was referred to (ADR 0021).
    pub resource: Option<ResourceId>,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewNeed {
    pub category: String,
    pub description: String,
    pub person: Option<PersonId>,
    pub visit: Option<VisitId>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Inquiry {
    pub id: InquiryId,
    pub question: String,
    /// What it is about, e.g. a subsidy policy (困境儿童基本生活补贴).
    pub topic: String,
    pub answer: Option<String>,
    pub visit: Option<VisitId>,
    pub status: InquiryStatus,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewInquiry {
    pub question: String,
    pub topic: String,
    pub answer: Option<String>,
    pub visit: Option<VisitId>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FollowUp {
    pub id: FollowUpId,
    pub what: String,
    pub due: Date,
    pub assignee: WorkerId,
    pub origin_visit: Option<VisitId>,
    pub status: FollowUpStatus,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewFollowUp {
    pub what: String,
    pub due: Date,
    pub assignee: WorkerId,
    pub origin_visit: Option<VisitId>,
}

/// A contact card (爱心联系卡) left with a household. Serial rules (batches, leases, check
/// characters) belong to the cards feature; the core stores issuances.
#[derive(Clone, Debug, PartialEq)]
pub struct CardIssuance {
    pub id: CardIssuanceId,
    pub serial: String,
    pub visit: Option<VisitId>,
    pub person: Option<PersonId>,
    pub replaces: Option<CardIssuanceId>,
    pub status: CardStatus,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewCardIssuance {
    pub serial: String,
    pub visit: Option<VisitId>,
    pub person: Option<PersonId>,
    pub replaces: Option<CardIssuanceId>,
}

/// Where a person's household is registered (户籍) and where they actually live.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hukou {
    /// 户口性质; `None` when not recorded.
    pub kind: Option<HukouType>,
    /// 户籍地 (one line; empty when not recorded).
    pub registered: String,
    /// 实际居住地 (one line; empty when not recorded).
    pub actual: String,
}

/// A child's schooling, beside the older free-text `school` and `grade`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schooling {
    pub stage: Option<SchoolStage>,
    pub status: Option<SchoolStatus>,
    /// 寄宿; `None` when not recorded.
    pub boarding: Option<bool>,
}

/// The situation of a child's parents: codes of [`CodeList::ParentStatus`]
/// (`parent.normal`, `child.unsupported.parent_imprisoned` ...), as stored; `None` when not
/// recorded. A code this version does not know is kept ([`CodeList::describe`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParentsStatus {
    pub father: Option<String>,
    pub mother: Option<String>,
}

/// A benefit (subsidy) a person receives.
#[derive(Clone, Debug, PartialEq)]
pub struct Benefit {
    pub id: BenefitId,
    pub person: PersonId,
    /// A code of [`CodeList::BenefitType`] as stored (a newer release's code is kept).
    pub kind: String,
    pub monthly: Fen,
    pub from: Option<Date>,
    pub until: Option<Date>,
    /// Who pays or decided it (县民政局, 乡镇 ...); one line, may be empty.
    pub source: String,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewBenefit {
    pub person: PersonId,
    /// A code of [`CodeList::BenefitType`].
    pub kind: String,
    pub monthly_fen: u64,
    pub from: Option<Date>,
    pub until: Option<Date>,
    pub source: String,
}

/// One edit of a benefit (the person it belongs to is fixed).
#[derive(Clone, Debug, PartialEq)]
pub enum BenefitEdit {
    Kind(String),
    MonthlyFen(u64),
    From(Option<Date>),
    Until(Option<Date>),
    Source(String),
}

/// A carer of the household looking after a child of the household.
#[derive(Clone, Debug, PartialEq)]
pub struct Guardianship {
    pub id: GuardianshipId,
    pub carer: PersonId,
    pub child: PersonId,
    pub kind: GuardianshipKind,
    /// The carer's relationship to the child (祖母, 叔叔 ...); one line, may be empty.
    pub relationship: String,
    pub capacity: Option<CareCapacity>,
    pub status: GuardianshipStatus,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewGuardianship {
    pub carer: PersonId,
    pub child: PersonId,
    pub kind: GuardianshipKind,
    pub relationship: String,
    pub capacity: Option<CareCapacity>,
}

/// One edit of a guardianship (carer and child are fixed; ending it is
/// `Store::end_guardianship`).
#[derive(Clone, Debug, PartialEq)]
pub enum GuardianshipEdit {
    Kind(GuardianshipKind),
    Relationship(String),
    Capacity(Option<CareCapacity>),
}
