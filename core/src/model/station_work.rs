//! The station's own work beside home visits (issue 17, ADR 0021): group activities and the
//! community resource register. Each activity and each resource is a document of its own,
//! seen by every worker and supervisor of the station.

use crate::model::ids::{ActivityId, HouseholdId, PersonId, ResourceId, StationId};
use crate::model::provenance::Provenance;
use crate::model::time::Date;

/// What kind of document a station-work document is (its ROOT `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkKind {
    Activity,
    Resource,
    /// A needs survey's definition and versions (ADR 0022).
    Survey,
}

impl WorkKind {
    /// The ROOT `kind`, the device's and the server's `documents.kind`.
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkKind::Activity => "activity",
            WorkKind::Resource => "resource",
            WorkKind::Survey => "survey",
        }
    }

    pub fn from_stored(s: &str) -> Option<WorkKind> {
        match s {
            "activity" => Some(WorkKind::Activity),
            "resource" => Some(WorkKind::Resource),
            "survey" => Some(WorkKind::Survey),
            _ => None,
        }
    }
}

/// A group activity (小组/社区活动): school traffic-safety education, an anti-drowning talk in
/// a village, a festival visit to the elderly.
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    pub id: ActivityId,
    pub station: StationId,
    /// An activity-type code (`activity.traffic_safety`; ADR 0018): a code this app does not
    /// know (a newer list's) reads as it is stored; `Vocabulary::describe` says it is unknown.
    pub activity_type: String,
    pub date: Date,
    pub place: String,
    /// Who it was for, one line (小学三至五年级学生, 留守儿童及其照料人).
    pub target_group: String,
    /// How many attended (counted; named attendees are linked from their persons).
    pub attendee_count: Option<u32>,
    /// Partner organisations named as written (县交警大队, 某村村委会), sorted.
    pub partners: Vec<String>,
    /// Materials handed out, as written (安全手册 50 册), sorted.
    pub materials: Vec<String>,
    /// Resources of the register that took part.
    pub resources: Vec<ResourceId>,
    /// What happened: collaborative text, merged like a visit's sections.
    pub narrative: String,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewActivity {
    pub activity_type: String,
    pub date: Date,
    pub place: String,
    pub target_group: String,
    pub attendee_count: Option<u32>,
    pub partners: Vec<String>,
    pub materials: Vec<String>,
    pub resources: Vec<ResourceId>,
    pub narrative: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActivityEdit {
    ActivityType(String),
    Date(Date),
    Place(String),
    TargetGroup(String),
    AttendeeCount(Option<u32>),
    AddPartner(String),
    RemovePartner(String),
    AddMaterial(String),
    RemoveMaterial(String),
    AddResource(ResourceId),
    RemoveResource(ResourceId),
}

/// An organisation or team of the community resource register (社区资源台账): a volunteer
/// team, a social organisation, a caring enterprise, a school.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub id: ResourceId,
    pub station: StationId,
    /// A resource-kind code (`resource.volunteer_team`; ADR 0018), read as stored.
    pub kind: String,
    pub name: String,
    /// The leader or contact person, one line.
    pub leader: String,
    /// Contact phone numbers, sorted.
    pub phones: Vec<String>,
    pub member_count: Option<u32>,
    /// When they can help (周末, 寒暑假), one line.
    pub availability: String,
    /// What they do: collaborative text.
    pub services: String,
    /// What they would like to do or need: collaborative text.
    pub wishes: String,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NewResource {
    pub kind: String,
    pub name: String,
    pub leader: String,
    pub phones: Vec<String>,
    pub member_count: Option<u32>,
    pub availability: String,
    pub services: String,
    pub wishes: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceEdit {
    Kind(String),
    Name(String),
    Leader(String),
    AddPhone(String),
    RemovePhone(String),
    MemberCount(Option<u32>),
    Availability(String),
}

/// The two collaborative texts of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceText {
    Services,
    Wishes,
}

impl ResourceText {
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceText::Services => "services",
            ResourceText::Wishes => "wishes",
        }
    }
}

/// One row of a list of activities (from the index: no document is loaded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivitySummary {
    pub id: ActivityId,
    pub activity_type: String,
    pub date: Date,
    pub place: String,
    pub attendee_count: Option<u32>,
}

/// One row of a list of resources (from the index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceSummary {
    pub id: ResourceId,
    pub kind: String,
    pub name: String,
    pub member_count: Option<u32>,
}

/// A person of a household this device holds who attended an activity (the link is kept on
/// the person, in the household's document: ADR 0021).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attendee {
    pub household: HouseholdId,
    pub person: PersonId,
}

/// A household's need referred to a resource (the referral is kept on the need).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referral {
    pub household: HouseholdId,
    pub need: crate::model::ids::NeedId,
    pub resource: ResourceId,
}

/// The largest count accepted (attendees, members).
pub const MAX_COUNT: u32 = 1_000_000;
