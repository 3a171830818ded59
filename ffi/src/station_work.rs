//! The station's own work in the bindings (issue 17, ADR 0021): group activities, the
//! community resource register, who attended, and needs referred to a resource. Activity
//! types and resource kinds are vocabulary codes (`vocabulary()`, `describeCategory`).

use doorstep_core as core;
use doorstep_core::{ActivityId, Date, HouseholdId, NeedId, PersonId, ResourceId, StationId};
pub use doorstep_core::{ActivitySummary, ResourceSummary};

use crate::error::Result;
use crate::observe::ChangeEvent;
use crate::types::{prov, Provenance};
use crate::{bounded, guarded, text, Doorstep};

/// A group activity: 交通安全进校园, a village anti-drowning talk ...
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Activity {
    pub id: ActivityId,
    pub station_id: StationId,
    /// An activity code (`activity.safety.traffic`); a newer list's code reads as stored.
    pub activity_type: String,
    /// `YYYY-MM-DD`
    pub date: Date,
    pub place: String,
    pub target_group: String,
    pub attendee_count: Option<u32>,
    /// Partner organisations as written (县交警大队, 某村村委会).
    pub partners: Vec<String>,
    pub materials: Vec<String>,
    pub resource_ids: Vec<ResourceId>,
    pub narrative: String,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewActivity {
    pub activity_type: String,
    pub date: Date,
    pub place: String,
    pub target_group: String,
    pub attendee_count: Option<u32>,
    pub partners: Vec<String>,
    pub materials: Vec<String>,
    pub resource_ids: Vec<ResourceId>,
    pub narrative: String,
}

#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum ActivityEdit {
    ActivityType { activity_type: String },
    Date { date: Date },
    Place { place: String },
    TargetGroup { target_group: String },
    AttendeeCount { attendee_count: Option<u32> },
    AddPartner { partner: String },
    RemovePartner { partner: String },
    AddMaterial { material: String },
    RemoveMaterial { material: String },
    AddResource { resource_id: ResourceId },
    RemoveResource { resource_id: ResourceId },
}

/// One row of `activitiesBetween` / `activitiesInMonth` (from the index).
#[uniffi::remote(Record)]
pub struct ActivitySummary {
    pub id: ActivityId,
    pub activity_type: String,
    pub date: Date,
    pub place: String,
    pub attendee_count: Option<u32>,
}

/// An organisation or team of the community resource register.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Resource {
    pub id: ResourceId,
    pub station_id: StationId,
    /// A resource code (`resource.volunteer_team`); a newer list's code reads as stored.
    pub kind: String,
    pub name: String,
    pub leader: String,
    pub phones: Vec<String>,
    pub member_count: Option<u32>,
    pub availability: String,
    pub services: String,
    pub wishes: String,
    pub created: Provenance,
}

#[derive(Clone, Debug, PartialEq, uniffi::Record)]
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

#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum ResourceEdit {
    Kind { kind: String },
    Name { name: String },
    Leader { leader: String },
    AddPhone { phone: String },
    RemovePhone { phone: String },
    MemberCount { member_count: Option<u32> },
    Availability { availability: String },
}

/// The two collaborative texts of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ResourceText {
    Services,
    Wishes,
}

#[uniffi::remote(Record)]
pub struct ResourceSummary {
    pub id: ResourceId,
    pub kind: String,
    pub name: String,
    pub member_count: Option<u32>,
}

/// A person of a household this phone holds linked as an activity's attendee.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Attendee {
    pub household_id: HouseholdId,
    pub person_id: PersonId,
}

/// A household's need referred to a resource.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Referral {
    pub household_id: HouseholdId,
    pub need_id: NeedId,
    pub resource_id: ResourceId,
}

fn bounded_all(v: &[String]) -> Result<()> {
    v.iter().try_for_each(|s| bounded(s))
}

impl NewActivity {
    fn to_core(&self) -> Result<core::NewActivity> {
        bounded(&self.narrative)?;
        bounded(&self.place)?;
        bounded(&self.target_group)?;
        bounded_all(&self.partners)?;
        bounded_all(&self.materials)?;
        Ok(core::NewActivity {
            activity_type: self.activity_type.clone(),
            date: self.date,
            place: self.place.clone(),
            target_group: self.target_group.clone(),
            attendee_count: self.attendee_count,
            partners: self.partners.clone(),
            materials: self.materials.clone(),
            resources: self.resource_ids.clone(),
            narrative: self.narrative.clone(),
        })
    }
}

impl ActivityEdit {
    fn to_core(&self) -> Result<core::ActivityEdit> {
        use core::ActivityEdit as E;
        Ok(match self {
            ActivityEdit::ActivityType { activity_type } => E::ActivityType(activity_type.clone()),
            ActivityEdit::Date { date: d } => E::Date(*d),
            ActivityEdit::Place { place } => E::Place(place.clone()),
            ActivityEdit::TargetGroup { target_group } => E::TargetGroup(target_group.clone()),
            ActivityEdit::AttendeeCount { attendee_count } => E::AttendeeCount(*attendee_count),
            ActivityEdit::AddPartner { partner } => E::AddPartner(partner.clone()),
            ActivityEdit::RemovePartner { partner } => E::RemovePartner(partner.clone()),
            ActivityEdit::AddMaterial { material } => E::AddMaterial(material.clone()),
            ActivityEdit::RemoveMaterial { material } => E::RemoveMaterial(material.clone()),
            ActivityEdit::AddResource { resource_id: r } => E::AddResource(*r),
            ActivityEdit::RemoveResource { resource_id: r } => E::RemoveResource(*r),
        })
    }
}

impl NewResource {
    fn to_core(&self) -> Result<core::NewResource> {
        bounded(&self.services)?;
        bounded(&self.wishes)?;
        bounded(&self.name)?;
        bounded(&self.leader)?;
        bounded(&self.availability)?;
        bounded_all(&self.phones)?;
        Ok(core::NewResource {
            kind: self.kind.clone(),
            name: self.name.clone(),
            leader: self.leader.clone(),
            phones: self.phones.clone(),
            member_count: self.member_count,
            availability: self.availability.clone(),
            services: self.services.clone(),
            wishes: self.wishes.clone(),
        })
    }
}

impl ResourceEdit {
    fn to_core(&self) -> core::ResourceEdit {
        use core::ResourceEdit as E;
        match self {
            ResourceEdit::Kind { kind } => E::Kind(kind.clone()),
            ResourceEdit::Name { name } => E::Name(name.clone()),
            ResourceEdit::Leader { leader } => E::Leader(leader.clone()),
            ResourceEdit::AddPhone { phone } => E::AddPhone(phone.clone()),
            ResourceEdit::RemovePhone { phone } => E::RemovePhone(phone.clone()),
            ResourceEdit::MemberCount { member_count } => E::MemberCount(*member_count),
            ResourceEdit::Availability { availability } => E::Availability(availability.clone()),
        }
    }
}

impl From<ResourceText> for core::ResourceText {
    fn from(t: ResourceText) -> Self {
        match t {
            ResourceText::Services => core::ResourceText::Services,
            ResourceText::Wishes => core::ResourceText::Wishes,
        }
    }
}

impl From<core::Activity> for Activity {
    fn from(a: core::Activity) -> Self {
        Activity {
            id: a.id,
            station_id: a.station,
            activity_type: a.activity_type,
            date: a.date,
            place: a.place,
            target_group: a.target_group,
            attendee_count: a.attendee_count,
            partners: a.partners,
            materials: a.materials,
            resource_ids: a.resources,
            narrative: a.narrative,
            created: prov(a.created),
        }
    }
}

impl From<core::Resource> for Resource {
    fn from(r: core::Resource) -> Self {
        Resource {
            id: r.id,
            station_id: r.station,
            kind: r.kind,
            name: r.name,
            leader: r.leader,
            phones: r.phones,
            member_count: r.member_count,
            availability: r.availability,
            services: r.services,
            wishes: r.wishes,
            created: prov(r.created),
        }
    }
}

impl Doorstep {
    fn work_changed(&self, id: &core::HouseholdId) {
        self.observers.emit(ChangeEvent::StationWorkChanged {
            document_id: id.to_string(),
        });
    }
}

#[uniffi::export]
impl Doorstep {
    /// Record a group activity of this station (seen by every worker of the station).
    pub fn create_activity(&self, activity: NewActivity) -> Result<ActivityId> {
        guarded(|| {
            let new = activity.to_core()?;
            let id = self.store()?.create_activity(&new)?;
            self.work_changed(&core::HouseholdId::from_uuid(*id.as_uuid()));
            Ok(id)
        })
    }

    pub fn edit_activity(&self, activity_id: ActivityId, edit: ActivityEdit) -> Result<()> {
        guarded(|| {
            let (id, edit) = (activity_id, edit.to_core()?);
            self.store()?.edit_activity(id, &edit)?;
            self.work_changed(&core::HouseholdId::from_uuid(*id.as_uuid()));
            Ok(())
        })
    }

    /// Type into the narrative (positions in Unicode code points).
    pub fn splice_activity_narrative(
        &self,
        activity_id: ActivityId,
        position: u64,
        delete: u64,
        text: String,
    ) -> Result<()> {
        guarded(|| {
            bounded(&text)?;
            let (p, d) = (crate::position(position)?, crate::position(delete)?);
            self.store()?
                .splice_activity_narrative(activity_id, p, d, &text)?;
            self.work_changed(&core::HouseholdId::from_uuid(*activity_id.as_uuid()));
            Ok(())
        })
    }

    /// `splice_activity_narrative` with UTF-16 positions, as Kotlin and Swift count them.
    pub fn splice_activity_narrative_utf16(
        &self,
        activity_id: ActivityId,
        position: u64,
        delete: u64,
        text: String,
    ) -> Result<()> {
        guarded(|| {
            let current = self.store()?.activity(activity_id)?.narrative;
            let (p, d) = text::utf16_span(&current, position, delete)?;
            self.splice_activity_narrative(activity_id, p, d, text)
        })
    }

    pub fn activity(&self, activity_id: ActivityId) -> Result<Activity> {
        guarded(|| Ok(self.store()?.activity(activity_id)?.into()))
    }

    /// Activities dated `from..=to` (`YYYY-MM-DD`), by date.
    pub fn activities_between(&self, from: Date, to: Date) -> Result<Vec<ActivitySummary>> {
        guarded(|| Ok(self.store()?.activities_between(from, to)?))
    }

    /// Activities of one month (`month` 1–12), by date: the monthly report's list.
    pub fn activities_in_month(&self, year: i32, month: u32) -> Result<Vec<ActivitySummary>> {
        guarded(|| Ok(self.store()?.activities_in_month(year, month)?))
    }

    /// Persons of households this phone holds linked as attendees (`PersonEdit.AddActivity`).
    pub fn attendees(&self, activity_id: ActivityId) -> Result<Vec<Attendee>> {
        guarded(|| {
            Ok(self
                .store()?
                .attendees(activity_id)?
                .into_iter()
                .map(|a| Attendee {
                    household_id: a.household,
                    person_id: a.person,
                })
                .collect())
        })
    }

    /// Add an organisation or team to the station's resource register.
    pub fn create_resource(&self, resource: NewResource) -> Result<ResourceId> {
        guarded(|| {
            let new = resource.to_core()?;
            let id = self.store()?.create_resource(&new)?;
            self.work_changed(&core::HouseholdId::from_uuid(*id.as_uuid()));
            Ok(id)
        })
    }

    pub fn edit_resource(&self, resource_id: ResourceId, edit: ResourceEdit) -> Result<()> {
        guarded(|| {
            self.store()?.edit_resource(resource_id, &edit.to_core())?;
            self.work_changed(&core::HouseholdId::from_uuid(*resource_id.as_uuid()));
            Ok(())
        })
    }

    /// Type into a resource's services or wishes (Unicode code points).
    pub fn splice_resource_text(
        &self,
        resource_id: ResourceId,
        field: ResourceText,
        position: u64,
        delete: u64,
        text: String,
    ) -> Result<()> {
        guarded(|| {
            bounded(&text)?;
            let (p, d) = (crate::position(position)?, crate::position(delete)?);
            self.store()?
                .splice_resource_text(resource_id, field.into(), p, d, &text)?;
            self.work_changed(&core::HouseholdId::from_uuid(*resource_id.as_uuid()));
            Ok(())
        })
    }

    pub fn resource(&self, resource_id: ResourceId) -> Result<Resource> {
        guarded(|| Ok(self.store()?.resource(resource_id)?.into()))
    }

    /// The register, by kind then name; with `kind`, that code and the codes below it.
    pub fn resources(&self, kind: Option<String>) -> Result<Vec<ResourceSummary>> {
        guarded(|| Ok(self.store()?.resources(kind.as_deref())?))
    }

    /// Refer a household's need to a resource (`None` withdraws the referral).
    pub fn refer_need(
        &self,
        household_id: HouseholdId,
        need_id: NeedId,
        resource_id: Option<ResourceId>,
    ) -> Result<()> {
        guarded(|| self.write(household_id, |s, h| s.refer_need(h, need_id, resource_id)))
    }

    /// Needs of households this phone holds referred to `resource_id`.
    pub fn referrals_to(&self, resource_id: ResourceId) -> Result<Vec<Referral>> {
        guarded(|| {
            Ok(self
                .store()?
                .referrals_to(resource_id)?
                .into_iter()
                .map(|r| Referral {
                    household_id: r.household,
                    need_id: r.need,
                    resource_id: r.resource,
                })
                .collect())
        })
    }
}
