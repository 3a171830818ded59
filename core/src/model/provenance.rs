//! Who wrote what, where and when; fields as the API names them; conflicts.

use crate::error::Error;
use crate::model::ids::*;
use crate::model::policy::EntityKind;
use crate::model::time::Timestamp;

/// Who wrote a value, on which device, when (device clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Provenance {
    pub worker: WorkerId,
    pub device: DeviceId,
    pub at: Timestamp,
}

/// A record inside a household document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityRef {
    Household,
    Person(PersonId),
    Visit(VisitId),
    Need(NeedId),
    Inquiry(InquiryId),
    FollowUp(FollowUpId),
    Card(CardIssuanceId),
    Benefit(BenefitId),
    Guardianship(GuardianshipId),
    /// A group activity's own fields (its document, ADR 0021).
    Activity(ActivityId),
    /// A resource's own fields (its document, ADR 0021).
    Resource(ResourceId),
    /// A survey's own fields (its document, ADR 0022).
    Survey(SurveyId),
    /// A person's response to a survey (a household record, ADR 0022).
    Response(ResponseId),
}

impl EntityRef {
    pub fn kind(&self) -> EntityKind {
        match self {
            EntityRef::Household => EntityKind::Household,
            EntityRef::Person(_) => EntityKind::Person,
            EntityRef::Visit(_) => EntityKind::Visit,
            EntityRef::Need(_) => EntityKind::Need,
            EntityRef::Inquiry(_) => EntityKind::Inquiry,
            EntityRef::FollowUp(_) => EntityKind::FollowUp,
            EntityRef::Card(_) => EntityKind::Card,
            EntityRef::Benefit(_) => EntityKind::Benefit,
            EntityRef::Guardianship(_) => EntityKind::Guardianship,
            EntityRef::Activity(_) => EntityKind::Activity,
            EntityRef::Resource(_) => EntityKind::Resource,
            EntityRef::Survey(_) => EntityKind::Survey,
            EntityRef::Response(_) => EntityKind::Response,
        }
    }

    /// The record's key in its collection (`None` for the household's own fields).
    pub fn key(&self) -> Option<String> {
        match self {
            EntityRef::Household => None,
            EntityRef::Person(id) => Some(id.to_string()),
            EntityRef::Visit(id) => Some(id.to_string()),
            EntityRef::Need(id) => Some(id.to_string()),
            EntityRef::Inquiry(id) => Some(id.to_string()),
            EntityRef::FollowUp(id) => Some(id.to_string()),
            EntityRef::Card(id) => Some(id.to_string()),
            EntityRef::Benefit(id) => Some(id.to_string()),
            EntityRef::Guardianship(id) => Some(id.to_string()),
            EntityRef::Activity(id) => Some(id.to_string()),
            EntityRef::Resource(id) => Some(id.to_string()),
            EntityRef::Survey(id) => Some(id.to_string()),
            EntityRef::Response(id) => Some(id.to_string()),
        }
    }

    /// Rebuild from a kind and key (as stored in the index).
    pub fn from_parts(kind: EntityKind, key: Option<&str>) -> Result<Self, Error> {
        let key = || key.ok_or(Error::InvalidInput("record id missing"));
        Ok(match kind {
            EntityKind::Household => EntityRef::Household,
            EntityKind::Person => EntityRef::Person(PersonId::parse(key()?)?),
            EntityKind::Visit => EntityRef::Visit(VisitId::parse(key()?)?),
            EntityKind::Need => EntityRef::Need(NeedId::parse(key()?)?),
            EntityKind::Inquiry => EntityRef::Inquiry(InquiryId::parse(key()?)?),
            EntityKind::FollowUp => EntityRef::FollowUp(FollowUpId::parse(key()?)?),
            EntityKind::Card => EntityRef::Card(CardIssuanceId::parse(key()?)?),
            EntityKind::Benefit => EntityRef::Benefit(BenefitId::parse(key()?)?),
            EntityKind::Guardianship => EntityRef::Guardianship(GuardianshipId::parse(key()?)?),
            EntityKind::Activity => EntityRef::Activity(ActivityId::parse(key()?)?),
            EntityKind::Resource => EntityRef::Resource(ResourceId::parse(key()?)?),
            EntityKind::Survey => EntityRef::Survey(SurveyId::parse(key()?)?),
            EntityKind::Response => EntityRef::Response(ResponseId::parse(key()?)?),
            EntityKind::Amendment => return Err(Error::InvalidInput("amendments are immutable")),
        })
    }
}

/// A field of a record, e.g. the name of a person.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldRef {
    pub entity: EntityRef,
    pub field: String,
}

impl FieldRef {
    pub fn new(entity: EntityRef, field: &str) -> Self {
        FieldRef {
            entity,
            field: field.to_owned(),
        }
    }
}

/// One value a field holds, with its provenance. A field holds several at once after
/// concurrent writes.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldVersion {
    /// Canonical text form; `None` when the value was cleared.
    pub value: Option<String>,
    pub provenance: Provenance,
}

/// Why a field needs a human.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictKind {
    /// Identity-critical field or status written concurrently with different values.
    ConcurrentValues,
    /// A finalised visit's text changed after it was sealed (edits made on another device
    /// before it learnt of the finalisation). `values` holds the finalisation's provenance.
    EditedAfterFinalise,
    /// A person answered one survey twice (two phones filled it offline, ADR 0022): the
    /// field is the later response's `person`; `values` holds each response's id (the
    /// earliest first) with who filled it. Resolving keeps the chosen one and withdraws the
    /// others.
    DuplicateResponse,
}

/// A conflict waiting for a human, with every value and who wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    pub household: HouseholdId,
    pub field: FieldRef,
    pub kind: ConflictKind,
    pub values: Vec<FieldVersion>,
}

/// What the index knows of a field that was written concurrently but merges by
/// last-writer-wins: the value shown, and the parallel updates it overshadowed.
#[derive(Clone, Debug, PartialEq)]
pub struct ParallelUpdate {
    pub household: HouseholdId,
    pub field: FieldRef,
    pub shown: FieldVersion,
    pub overshadowed: Vec<FieldVersion>,
}
