//! The station's work beside home visits (issue 17, ADR 0021): group activities and the
//! community resource register, each a document of its own that every worker and
//! supervisor of the station holds; attendance and referrals, kept in the households'
//! documents.

use automerge::transaction::CommitOptions;
use rusqlite::params;

use super::*;
use crate::doc::work;
use crate::doc::DocKind;
use crate::model::station_work::*;
use crate::model::time::Date;

/// A station-work document travels and is stored under its id like a household's.
fn doc_id(uuid: &Uuid) -> HouseholdId {
    HouseholdId::from_uuid(*uuid)
}

type ActivityRow = (String, String, String, String, Option<u32>);
type ResourceRow = (String, String, String, Option<u32>);

impl Store {
    /// Create a new document of station work in one transaction (like `create_household`).
    pub(super) fn create_work(
        &self,
        id: HouseholdId,
        kind: WorkKind,
        write: impl FnOnce(&mut automerge::transaction::Transaction<'_>, &Provenance) -> Result<()>,
    ) -> Result<()> {
        let p = self.provenance();
        let mut w = self.writer();
        let Writer { conn, cache, .. } = &mut *w;
        let mut doc = doc::new_document(&self.actor);
        let mut tx = doc.transaction();
        write(&mut tx, &p)?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(p.at.0));
        let hash = hash.ok_or(Error::InvalidInput("empty document"))?;
        persist_local(
            conn,
            &mut doc,
            id,
            hash,
            Scope::Household,
            self.compaction.by_count(),
            Some(DocKind::Work(kind)),
        )?;
        cache.insert(id, doc);
        Ok(())
    }

    /// Act on an existing station-work document of `kind` (`NotFound` if this store holds
    /// no such document).
    pub(super) fn act_on_work<T>(
        &self,
        id: HouseholdId,
        kind: WorkKind,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>, &Provenance) -> Result<T>,
    ) -> Result<T> {
        self.require_kind(id, kind)?;
        // Small documents: every edit reindexes the whole of it.
        self.act(id, Scope::Household, f)
    }

    /// What station work a document this store holds is (`None`: a household, the station
    /// document, or nothing held).
    pub fn work_kind(&self, id: HouseholdId) -> Result<Option<WorkKind>> {
        let stored: Option<String> = self.with_reader(|c| {
            Ok(
                c.prepare_cached("SELECT kind FROM documents WHERE doc_id = ?1")?
                    .query_row([id.to_string()], |r| r.get(0))
                    .optional()?,
            )
        })?;
        Ok(stored.as_deref().and_then(WorkKind::from_stored))
    }

    pub(super) fn require_kind(&self, id: HouseholdId, kind: WorkKind) -> Result<()> {
        let stored: Option<String> = self.with_reader(|c| {
            Ok(
                c.prepare_cached("SELECT kind FROM documents WHERE doc_id = ?1")?
                    .query_row([id.to_string()], |r| r.get(0))
                    .optional()?,
            )
        })?;
        if stored.as_deref() == Some(kind.as_str()) {
            Ok(())
        } else {
            Err(Error::NotFound(kind.as_str()))
        }
    }

    fn checked_code(&self, code: &str, place: CategoryPlace) -> Result<String> {
        Ok(self
            .vocabulary()?
            .check_writable(code, place)?
            .as_str()
            .to_owned())
    }

    // ----- group activities -------------------------------------------------------------

    /// Record a group activity of this station. `activity_type` is an activity code of the
    /// vocabulary in force (ADR 0018); a county account's store may not (the server refuses).
    pub fn create_activity(&self, new: &NewActivity) -> Result<ActivityId> {
        let id = ActivityId::new();
        let new = NewActivity {
            activity_type: self.checked_code(&new.activity_type, CategoryPlace::Activity)?,
            narrative: lines(&new.narrative).into_owned(),
            ..new.clone()
        };
        self.create_work(doc_id(id.as_uuid()), WorkKind::Activity, |tx, p| {
            work::create_activity(tx, id, self.station, &new, p)
        })?;
        Ok(id)
    }

    pub fn edit_activity(&self, id: ActivityId, edit: &ActivityEdit) -> Result<()> {
        let edit = match edit {
            ActivityEdit::ActivityType(t) => {
                ActivityEdit::ActivityType(self.checked_code(t, CategoryPlace::Activity)?)
            }
            e => e.clone(),
        };
        self.act_on_work(doc_id(id.as_uuid()), WorkKind::Activity, |tx, p| {
            work::edit_activity(tx, &edit, p)
        })
    }

    /// Type into an activity's narrative (positions in Unicode code points): concurrent
    /// typing merges as in a visit's sections.
    pub fn splice_activity_narrative(
        &self,
        id: ActivityId,
        pos: usize,
        delete: usize,
        insert: &str,
    ) -> Result<()> {
        let insert = lines(insert);
        self.act_on_work(doc_id(id.as_uuid()), WorkKind::Activity, |tx, _| {
            work::splice_narrative(tx, pos, delete, &insert)
        })
    }

    /// The whole activity.
    pub fn activity(&self, id: ActivityId) -> Result<Activity> {
        self.require_kind(doc_id(id.as_uuid()), WorkKind::Activity)?;
        self.read(doc_id(id.as_uuid()), work::read_activity)
    }

    /// Activities dated `from..=to`, by date (from the index).
    pub fn activities_between(&self, from: Date, to: Date) -> Result<Vec<ActivitySummary>> {
        self.activities_dated(&from.to_string(), &to.to_string())
    }

    /// Activities of one calendar month (`month` 1–12), by date.
    pub fn activities_in_month(&self, year: i32, month: u32) -> Result<Vec<ActivitySummary>> {
        if !(1..=12).contains(&month) || !(1900..=9999).contains(&year) {
            return Err(Error::InvalidInput("month is 1-12 of a year 1900-9999"));
        }
        // Dates are stored as `YYYY-MM-DD`: the month is a range of text.
        self.activities_dated(
            &format!("{year:04}-{month:02}-01"),
            &format!("{year:04}-{month:02}-31"),
        )
    }

    fn activities_dated(&self, from: &str, to: &str) -> Result<Vec<ActivitySummary>> {
        self.with_reader(|c| {
            let rows = c
                .prepare_cached(
                    "SELECT doorstep_id(activity_id), type, date, place, attendee_count
                     FROM ix_activities WHERE date BETWEEN ?1 AND ?2 ORDER BY date, activity_id",
                )?
                .query_map([from, to], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<std::result::Result<Vec<ActivityRow>, _>>()?;
            rows.into_iter()
                .map(|(id, t, date, place, count)| {
                    Ok(ActivitySummary {
                        id: ActivityId::parse(&id).map_err(|_| Error::Damaged)?,
                        activity_type: t,
                        date: Date::parse(&date).map_err(|_| Error::Damaged)?,
                        place,
                        attendee_count: count,
                    })
                })
                .collect()
        })
    }

    /// The persons of households this device holds who are linked as attendees of the
    /// activity (a worker sees the attendees of their own caseload only: ADR 0021).
    pub fn attendees(&self, activity: ActivityId) -> Result<Vec<Attendee>> {
        self.with_reader(|c| {
            let rows = c
                .prepare_cached(
                    "SELECT doorstep_id(household_id), doorstep_id(person_id) FROM ix_attendance
                     WHERE activity_id = doorstep_key(?1) ORDER BY household_id, person_id",
                )?
                .query_map([activity.to_string()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(h, p)| {
                    Ok(Attendee {
                        household: HouseholdId::parse(&h).map_err(|_| Error::Damaged)?,
                        person: PersonId::parse(&p).map_err(|_| Error::Damaged)?,
                    })
                })
                .collect()
        })
    }

    // ----- the community resource register ----------------------------------------------

    /// Add an organisation or team to the register. `kind` is a resource code of the
    /// vocabulary in force (ADR 0018).
    pub fn create_resource(&self, new: &NewResource) -> Result<ResourceId> {
        let id = ResourceId::new();
        let new = NewResource {
            kind: self.checked_code(&new.kind, CategoryPlace::Resource)?,
            services: lines(&new.services).into_owned(),
            wishes: lines(&new.wishes).into_owned(),
            ..new.clone()
        };
        self.create_work(doc_id(id.as_uuid()), WorkKind::Resource, |tx, p| {
            work::create_resource(tx, id, self.station, &new, p)
        })?;
        Ok(id)
    }

    pub fn edit_resource(&self, id: ResourceId, edit: &ResourceEdit) -> Result<()> {
        let edit = match edit {
            ResourceEdit::Kind(k) => {
                ResourceEdit::Kind(self.checked_code(k, CategoryPlace::Resource)?)
            }
            e => e.clone(),
        };
        self.act_on_work(doc_id(id.as_uuid()), WorkKind::Resource, |tx, p| {
            work::edit_resource(tx, &edit, p)
        })
    }

    /// Type into a resource's services or wishes (Unicode code points).
    pub fn splice_resource_text(
        &self,
        id: ResourceId,
        field: ResourceText,
        pos: usize,
        delete: usize,
        insert: &str,
    ) -> Result<()> {
        let insert = lines(insert);
        self.act_on_work(doc_id(id.as_uuid()), WorkKind::Resource, |tx, _| {
            work::splice_resource_text(tx, field, pos, delete, &insert)
        })
    }

    pub fn resource(&self, id: ResourceId) -> Result<Resource> {
        self.require_kind(doc_id(id.as_uuid()), WorkKind::Resource)?;
        self.read(doc_id(id.as_uuid()), work::read_resource)
    }

    /// The register, by kind then name; with `kind`, that code and every code below it.
    pub fn resources(&self, kind: Option<&str>) -> Result<Vec<ResourceSummary>> {
        let kinds: Option<Vec<String>> = match kind {
            None => None,
            Some(k) => Some(
                self.vocabulary()?
                    .with_descendants(&crate::model::vocabulary::CategoryCode::parse(k)?)
                    .into_iter()
                    .map(|c| c.as_str().to_owned())
                    .collect(),
            ),
        };
        let kinds_json = kinds.map(|k| serde_json::Value::from(k).to_string());
        self.with_reader(|c| {
            let rows = c
                .prepare_cached(
                    "SELECT doorstep_id(resource_id), kind, name, member_count FROM ix_resources
                     WHERE ?1 IS NULL OR kind IN (SELECT value FROM json_each(?1))
                     ORDER BY kind, name, resource_id",
                )?
                .query_map(params![kinds_json], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<std::result::Result<Vec<ResourceRow>, _>>()?;
            rows.into_iter()
                .map(|(id, kind, name, count)| {
                    Ok(ResourceSummary {
                        id: ResourceId::parse(&id).map_err(|_| Error::Damaged)?,
                        kind,
                        name,
                        member_count: count,
                    })
                })
                .collect()
        })
    }

    /// Refer a household's need to a resource of the register (`None` withdraws it). The
    /// referral is kept on the need, in the household's document.
    pub fn refer_need(
        &self,
        household: HouseholdId,
        need: NeedId,
        resource: Option<ResourceId>,
    ) -> Result<()> {
        self.act(
            household,
            Scope::Record(EntityKind::Need, *need.as_uuid()),
            |tx, p| write::refer_need(tx, need, resource, p),
        )
    }

    /// Needs of households this device holds that were referred to `resource`.
    pub fn referrals_to(&self, resource: ResourceId) -> Result<Vec<Referral>> {
        self.with_reader(|c| {
            let rows = c
                .prepare_cached(
                    "SELECT doorstep_id(household_id), doorstep_id(need_id) FROM ix_referrals
                     WHERE resource_id = doorstep_key(?1) ORDER BY household_id, need_id",
                )?
                .query_map([resource.to_string()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(h, n)| {
                    Ok(Referral {
                        household: HouseholdId::parse(&h).map_err(|_| Error::Damaged)?,
                        need: NeedId::parse(&n).map_err(|_| Error::Damaged)?,
                        resource,
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::policy::{fields_of, MergePolicy};

    fn store(dir: &tempfile::TempDir, name: &str, station: StationId) -> Store {
        Store::open(StoreOptions::new(
            dir.path().join(name),
            StoreKey::Raw([7; 32]),
            WorkerId::new(),
            station,
        ))
        .unwrap()
    }

    /// Send what `from` has of `id` and `to` lacks.
    fn send(from: &Store, to: &Store, id: HouseholdId) {
        let have = to.heads(id).unwrap_or_default();
        let changes = from.export_changes(id, &have).unwrap();
        to.apply_changes(id, &changes).unwrap();
    }

    fn new_activity() -> NewActivity {
        NewActivity {
            activity_type: "activity.safety.traffic".into(),
            date: Date::parse("2026-11-20").unwrap(),
            place: "镇中心小学".into(),
            target_group: "三至五年级学生".into(),
            attendee_count: Some(120),
            partners: vec!["县交警大队".into()],
            materials: vec!["交通安全手册 120 册".into()],
            resources: vec![],
            narrative: String::new(),
        }
    }

    #[test]
    fn station_work_fields_have_their_declared_policies() {
        let policy = |kind, name: &str| {
            fields_of(kind)
                .find(|f| f.name == name)
                .map(|f| f.policy)
                .unwrap()
        };
        assert_eq!(policy(EntityKind::Activity, "narrative"), MergePolicy::Text);
        assert_eq!(
            policy(EntityKind::Activity, "partners"),
            MergePolicy::AddWinsSet
        );
        assert_eq!(
            policy(EntityKind::Activity, "attendee_count"),
            MergePolicy::LastWriterWins
        );
        assert_eq!(policy(EntityKind::Resource, "wishes"), MergePolicy::Text);
        assert_eq!(
            policy(EntityKind::Resource, "phones"),
            MergePolicy::AddWinsSet
        );
        assert_eq!(
            policy(EntityKind::Resource, "member_count"),
            MergePolicy::LastWriterWins
        );
        assert_eq!(
            policy(EntityKind::Person, "activities"),
            MergePolicy::AddWinsSet
        );
        assert_eq!(
            policy(EntityKind::Need, "resource"),
            MergePolicy::LastWriterWins
        );
    }

    #[test]
    fn concurrent_activity_edits_merge_by_policy_and_surface_parallel_updates() {
        let dir = tempfile::tempdir().unwrap();
        let station = StationId::new();
        let (a, b) = (store(&dir, "a.db", station), store(&dir, "b.db", station));
        let id = a.create_activity(&new_activity()).unwrap();
        let doc = HouseholdId::from_uuid(*id.as_uuid());
        send(&a, &b, doc);
        assert_eq!(b.activity(id).unwrap().place, "镇中心小学");
        // Offline on both phones.
        a.splice_activity_narrative(id, 0, 0, "交警讲解").unwrap();
        b.splice_activity_narrative(id, 0, 0, "学生提问").unwrap();
        a.edit_activity(id, &ActivityEdit::Place("镇中心小学操场".into()))
            .unwrap();
        b.edit_activity(id, &ActivityEdit::Place("镇中心小学礼堂".into()))
            .unwrap();
        a.edit_activity(id, &ActivityEdit::AddPartner("某村村委会".into()))
            .unwrap();
        b.edit_activity(id, &ActivityEdit::AttendeeCount(Some(118)))
            .unwrap();
        send(&a, &b, doc);
        send(&b, &a, doc);
        let (x, y) = (a.activity(id).unwrap(), b.activity(id).unwrap());
        assert_eq!(x, y);
        assert!(x.narrative.contains("交警讲解") && x.narrative.contains("学生提问"));
        assert_eq!(x.partners, ["县交警大队", "某村村委会"]);
        assert_eq!(x.attendee_count, Some(118));
        // The overshadowed place stays visible, on both phones alike.
        let parallel = a.parallel_updates(None).unwrap();
        assert_eq!(parallel.len(), 1);
        assert_eq!(parallel[0].field.entity, EntityRef::Activity(id));
        assert_eq!(parallel[0].field.field, "place");
        assert!(a.conflicts(None).unwrap().is_empty());
        assert_eq!(a.index_dump().unwrap(), b.index_dump().unwrap());
        // Writing the field again settles it; the narrative is searchable.
        a.edit_activity(id, &ActivityEdit::Place("镇中心小学礼堂".into()))
            .unwrap();
        assert!(a.parallel_updates(None).unwrap().is_empty());
        assert_eq!(a.search("学生提问", 5).unwrap().len(), 1);
        assert_eq!(
            a.activities_in_month(2026, 11).unwrap()[0].id,
            id,
            "listed by month"
        );
        assert!(a.activities_in_month(2026, 12).unwrap().is_empty());
        let before = a.index_dump().unwrap();
        a.rebuild_index().unwrap();
        assert_eq!(a.index_dump().unwrap(), before);
    }

    #[test]
    fn concurrent_resource_edits_merge_by_policy() {
        let dir = tempfile::tempdir().unwrap();
        let station = StationId::new();
        let (a, b) = (store(&dir, "a.db", station), store(&dir, "b.db", station));
        let id = a
            .create_resource(&NewResource {
                kind: "resource.volunteer_team".into(),
                name: "青年志愿服务队".into(),
                leader: "队长".into(),
                phones: vec!["13800138000".into()],
                member_count: Some(20),
                ..Default::default()
            })
            .unwrap();
        let doc = HouseholdId::from_uuid(*id.as_uuid());
        send(&a, &b, doc);
        a.splice_resource_text(id, ResourceText::Wishes, 0, 0, "希望开展助学")
            .unwrap();
        b.splice_resource_text(id, ResourceText::Wishes, 0, 0, "需要活动场地")
            .unwrap();
        a.edit_resource(id, &ResourceEdit::MemberCount(Some(25)))
            .unwrap();
        b.edit_resource(id, &ResourceEdit::MemberCount(Some(22)))
            .unwrap();
        b.edit_resource(id, &ResourceEdit::AddPhone("13900139000".into()))
            .unwrap();
        send(&a, &b, doc);
        send(&b, &a, doc);
        let (x, y) = (a.resource(id).unwrap(), b.resource(id).unwrap());
        assert_eq!(x, y);
        assert!(x.wishes.contains("希望开展助学") && x.wishes.contains("需要活动场地"));
        assert_eq!(x.phones.len(), 2);
        let parallel = b.parallel_updates(None).unwrap();
        assert_eq!(parallel.len(), 1);
        assert_eq!(parallel[0].field.field, "member_count");
        assert_eq!(
            a.resources(Some("resource.volunteer_team")).unwrap().len(),
            1
        );
        assert!(a.resources(Some("resource.school")).unwrap().is_empty());
        assert_eq!(a.index_dump().unwrap(), b.index_dump().unwrap());
    }

    #[test]
    fn codes_are_checked_on_write_and_unknown_ones_stay_readable() {
        let dir = tempfile::tempdir().unwrap();
        let a = store(&dir, "a.db", StationId::new());
        let bad = |t: &str| {
            a.create_activity(&NewActivity {
                activity_type: t.into(),
                ..new_activity()
            })
        };
        assert!(matches!(bad("child.orphan"), Err(Error::InvalidInput(_))));
        assert!(matches!(
            bad("activity.not_yet"),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(bad("交通安全"), Err(Error::InvalidInput(_))));
        assert!(matches!(
            a.create_resource(&NewResource {
                kind: "activity.safety".into(),
                name: "x".into(),
                ..Default::default()
            }),
            Err(Error::InvalidInput(_))
        ));
        // A code of a newer list, written by a newer phone: read as stored, described as
        // unknown, and the activity edits on.
        let id = a.create_activity(&new_activity()).unwrap();
        let doc = HouseholdId::from_uuid(*id.as_uuid());
        {
            let mut w = a.writer();
            let Writer { conn, cache, .. } = &mut *w;
            let d = load(conn, cache, doc, &a.actor).unwrap();
            let mut tx = d.transaction();
            let p = a.provenance();
            let obj = crate::doc::cells::entity_obj(&tx, EntityKind::Activity, None)
                .unwrap()
                .unwrap();
            crate::doc::cells::write_cell(&mut tx, &obj, "type", Some("activity.newer.kind"), &p)
                .unwrap();
            let (hash, _) = tx.commit();
            persist_local(
                conn,
                d,
                doc,
                hash.unwrap(),
                Scope::Household,
                a.compaction,
                None,
            )
            .unwrap();
        }
        let read = a.activity(id).unwrap();
        assert_eq!(read.activity_type, "activity.newer.kind");
        assert!(matches!(
            a.vocabulary().unwrap().describe(&read.activity_type),
            crate::model::vocabulary::Category::Unknown(_)
        ));
        a.edit_activity(id, &ActivityEdit::Place("村文化广场".into()))
            .unwrap();
        // Not an activity: a household id, a resource's id.
        assert!(matches!(
            a.activity(ActivityId::new()),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn attendance_and_referrals_live_with_their_household() {
        let dir = tempfile::tempdir().unwrap();
        let a = store(&dir, "a.db", StationId::new());
        let activity = a.create_activity(&new_activity()).unwrap();
        let resource = a
            .create_resource(&NewResource {
                kind: "resource.social_organisation".into(),
                name: "阳光社工服务中心".into(),
                ..Default::default()
            })
            .unwrap();
        let hh = a
            .create_household(&NewHousehold {
                code: "HH-1".into(),
                ..Default::default()
            })
            .unwrap();
        let child = a.add_person(hh, &NewPerson::named("小明", "孙子")).unwrap();
        a.edit_person(hh, child, &PersonEdit::AddActivity(activity))
            .unwrap();
        let need = a
            .add_need(
                hh,
                &NewNeed {
                    category: "学业".into(),
                    description: "课后辅导".into(),
                    person: Some(child),
                    visit: None,
                },
            )
            .unwrap();
        a.refer_need(hh, need, Some(resource)).unwrap();
        assert_eq!(
            a.attendees(activity).unwrap(),
            [Attendee {
                household: hh,
                person: child
            }]
        );
        assert_eq!(a.referrals_to(resource).unwrap().len(), 1);
        let h = a.household(hh).unwrap();
        assert_eq!(h.persons[0].activities, [activity]);
        assert_eq!(h.needs[0].resource, Some(resource));
        let before = a.index_dump().unwrap();
        a.rebuild_index().unwrap();
        assert_eq!(a.index_dump().unwrap(), before);
        // The household's rows go with it (as an erasure removes them).
        {
            let w = a.writer();
            index::remove(&w.conn, hh).unwrap();
        }
        assert!(a.attendees(activity).unwrap().is_empty());
        assert!(a.referrals_to(resource).unwrap().is_empty());
        a.refer_need(hh, need, None).unwrap();
        assert!(a.referrals_to(resource).unwrap().is_empty());
    }

    #[test]
    fn a_document_cannot_change_its_kind_and_the_validator_reads_station_work() {
        let dir = tempfile::tempdir().unwrap();
        let station = StationId::new();
        let (a, b) = (store(&dir, "a.db", station), store(&dir, "b.db", station));
        let id = a.create_activity(&new_activity()).unwrap();
        let doc = HouseholdId::from_uuid(*id.as_uuid());
        send(&a, &b, doc);
        let whole = {
            let mut w = a.writer();
            let Writer { conn, cache, .. } = &mut *w;
            load(conn, cache, doc, &a.actor).unwrap().clone()
        };
        crate::doc::verify::validate(&whole).unwrap();
        crate::doc::verify::readable(&whole).unwrap();
        // Turn it into a "household" and a bad date: refused by both readers.
        let mut forged = whole.fork();
        let mut tx = forged.transaction();
        automerge::transaction::Transactable::put(&mut tx, automerge::ROOT, "kind", "household")
            .unwrap();
        tx.commit();
        assert!(crate::doc::verify::validate(&forged).is_err());
        let changes: Vec<Vec<u8>> = forged
            .get_changes(&whole.get_heads())
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        assert!(b.apply_changes(doc, &changes).is_err());
        assert_eq!(b.activity(id).unwrap().id, id);
        let mut bad = whole.fork();
        let mut tx = bad.transaction();
        let obj = crate::doc::cells::entity_obj(&tx, EntityKind::Activity, None)
            .unwrap()
            .unwrap();
        crate::doc::cells::write_cell(&mut tx, &obj, "date", Some("yesterday"), &a.provenance())
            .unwrap();
        tx.commit();
        assert!(crate::doc::verify::validate(&bad).is_err());
    }
}
