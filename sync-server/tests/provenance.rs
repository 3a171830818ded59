//! Creation provenance (who created the document and each record in it) cannot be rewritten
//! by a push, however the rewrite is dressed: the server checks only the places the pushed
//! changes could reach, so these cases aim at that narrowing — a rewrite of a record nothing
//! else in the push touches, hidden behind innocent edits, by replacing an object on the
//! path to it, or by a concurrent change that wins a conflict. The pushes come from a real
//! enrolled device of the station whose key the test holds (an attacker with a phone), so
//! they pass the signature checks and meet the provenance checks themselves.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../../tests/src/raw_device.rs"]
mod raw_device;

use std::sync::Arc;

use automerge::transaction::{Transactable, Transaction};
use automerge::{Automerge, ChangeHash, ObjId, ObjType, ReadDoc, ROOT};
use doorstep_core::protocol::*;
use doorstep_core::*;
use doorstep_server::credentials;
use doorstep_server::store::{DeviceAuth, ServerStore};
use doorstep_server::sync::SyncService;
use doorstep_server::SqliteStore;
use raw_device::RawDevice;

/// One change made on a copy of the server's document.
type Edit = Box<dyn FnOnce(&mut Transaction<'_>)>;

fn enrol(store: &SqliteStore, station: StationId, label: &str) -> DeviceAuth {
    let worker = store.add_worker(station, label, 0).unwrap();
    store
        .set_team(
            worker,
            Some(&doorstep_core::TeamName::new("station").unwrap()),
            0,
        )
        .unwrap();
    let (_, code) = credentials::enroll_device(store, worker, 0).unwrap();
    credentials::redeem_code(store, &code, 0)
        .unwrap()
        .unwrap()
        .0
}

/// A `created` map naming someone else (the attack), or `who` (an honest record).
fn put_created_as(tx: &mut Transaction<'_>, obj: &ObjId, at: i64, who: Option<&DeviceAuth>) {
    let created = tx.put_object(obj, "created", ObjType::Map).unwrap();
    let (w, d) = match who {
        Some(a) => (a.worker.to_string(), a.device.to_string()),
        None => (WorkerId::new().to_string(), DeviceId::new().to_string()),
    };
    tx.put(&created, "by", w).unwrap();
    tx.put(&created, "dev", d).unwrap();
    tx.put(&created, "at", at).unwrap();
}

fn put_created(tx: &mut Transaction<'_>, obj: &ObjId, at: i64) {
    put_created_as(tx, obj, at, None)
}

fn map(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> ObjId {
    doc.get(obj, key).unwrap().unwrap().1
}

fn record(doc: &impl ReadDoc, col: &str, rec: &str) -> ObjId {
    map(doc, &map(doc, &ROOT, col), rec)
}

/// A cell written as the app writes it: a new map with the writer's provenance.
fn put_cell(tx: &mut Transaction<'_>, obj: &ObjId, field: &str, value: &str, who: &DeviceAuth) {
    let cell = tx.put_object(obj, field, ObjType::Map).unwrap();
    tx.put(&cell, "v", value).unwrap();
    tx.put(&cell, "by", who.worker.to_string()).unwrap();
    tx.put(&cell, "dev", who.device.to_string()).unwrap();
    tx.put(&cell, "at", 1_700_000_000_000_i64).unwrap();
}

const SECTION: &str = "personal_situation";

struct Case {
    service: SyncService<SqliteStore>,
    /// The device that pushes the edits under test.
    forger: RawDevice,
    id: HouseholdId,
    persons: Vec<String>,
    visits: Vec<String>,
    /// The document as the server has it: persons, then visits (made by W01's device).
    doc: Automerge,
    /// Its heads before the visits were added.
    before_visits: Vec<ChangeHash>,
}

impl Case {
    fn new() -> (tempfile::TempDir, Case) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let station = store.create_station("站", 0).unwrap();
        let w01 = RawDevice::new(enrol(&store, station, "W01"), 0x10);
        let forger = RawDevice::new(enrol(&store, station, "W02"), 0xf0);
        let service = SyncService::new(store, 16);
        let id = w01
            .store
            .create_household(&NewHousehold {
                code: "HH-000001".into(),
                ..Default::default()
            })
            .unwrap();
        let persons = (0..3)
            .map(|i| {
                w01.store
                    .add_person(id, &NewPerson::named(&format!("名字{i}"), "子女"))
                    .unwrap()
                    .to_string()
            })
            .collect();
        let before_visits = w01.store.heads(id).unwrap();
        let visits = (0..2)
            .map(|_| {
                let v = w01
                    .store
                    .start_visit(
                        id,
                        &NewVisit {
                            kind: VisitKind::Home,
                            date: Date::parse("2026-11-29").unwrap(),
                            started_at: Timestamp(1_700_000_000_000),
                            gps: None,
                            other_workers: vec![],
                            present: vec![],
                            companions: vec![],
                        },
                    )
                    .unwrap();
                w01.store
                    .splice_section(id, v, Section::PersonalSituation, 0, 0, "家中老人独居")
                    .unwrap();
                v.to_string()
            })
            .collect();
        w01.sync(&service);
        assert!(
            w01.store.unsynced_households().unwrap().is_empty(),
            "the household is accepted"
        );
        forger.sync(&service);
        let doc = forger.document(id);
        let case = Case {
            service,
            forger,
            id,
            persons,
            visits,
            doc,
            before_visits,
        };
        (dir, case)
    }

    fn p(&self, i: usize) -> String {
        self.persons[i].clone()
    }

    fn v(&self, i: usize) -> String {
        self.visits[i].clone()
    }

    /// Push the changes of `doc` after `since`, signed by the forger; the response.
    fn push(&self, doc: &Automerge, since: &[ChangeHash]) -> SyncResponse {
        let changes = doc.get_changes(since);
        let req = self.forger.request(self.id, &changes);
        self.service.sync(&self.forger.auth, &req).unwrap()
    }

    /// Edit a copy of the server's document (as of `at`) with `edits`, one change each,
    /// and push what is new; the error code, `None` when accepted.
    fn try_edits(&self, at: Option<&[ChangeHash]>, edits: Vec<Edit>) -> Option<DocErrorCode> {
        let mut doc = match at {
            Some(heads) => self.doc.fork_at(heads).unwrap(),
            None => self.doc.fork(),
        }
        .with_actor(self.forger.actor.clone());
        let since = doc.get_heads();
        for edit in edits {
            let mut tx = doc.transaction();
            edit(&mut tx);
            tx.commit();
        }
        let resp = self.push(&doc, &since);
        match resp.errors.as_slice() {
            [] => {
                assert!(resp.acks.iter().any(|a| a.doc == self.id));
                None
            }
            [e] => Some(e.code),
            more => panic!("one document pushed, {} errors", more.len()),
        }
    }

    fn refused(&self, what: &str, edits: Vec<Edit>) {
        assert_eq!(
            self.try_edits(None, edits),
            Some(DocErrorCode::Invalid),
            "{what}: must be refused"
        );
    }
}

fn edit(f: impl FnOnce(&mut Transaction<'_>) + 'static) -> Edit {
    Box::new(f)
}

/// Innocent edits a forgery can hide behind: text typed in a visit, a name corrected (a
/// new cell, as the app writes it).
fn innocent(case: &Case) -> Vec<Edit> {
    let (v, p, me) = (case.v(0), case.p(0), case.forger.auth);
    vec![
        edit(move |tx| {
            let text = map(tx, &record(tx, "visits", &v), SECTION);
            tx.splice_text(&text, 0, 0, "补充：").unwrap();
        }),
        edit(move |tx| {
            let rec = record(tx, "persons", &p);
            put_cell(tx, &rec, "name", "改名", &me);
        }),
    ]
}

#[test]
fn innocent_edits_and_new_records_are_accepted() {
    let (_dir, case) = Case::new();
    assert_eq!(case.try_edits(None, innocent(&case)), None);
    // New records made by a device's own store, as the app makes them (a fresh case: the
    // store does not know the raw changes its actor just made).
    let (_dir, case) = Case::new();
    let f = &case.forger;
    f.store
        .add_person(case.id, &NewPerson::named("新成员", "孙子女"))
        .unwrap();
    f.sync(&case.service);
    assert!(f.store.unsynced_households().unwrap().is_empty());
}

#[test]
fn a_value_written_into_a_colleagues_cell_is_refused() {
    let (_dir, case) = Case::new();
    // W01's name value is lean (ADR 0035): credited to W01's actor through the registry.
    // W01's entry rewritten in place would credit W01's values to someone else.
    let registry = map(&case.doc, &ROOT, "actors");
    let w01_key = case.doc.keys(&registry).next().unwrap();
    let me = case.forger.auth;
    assert_eq!(
        case.try_edits(
            None,
            vec![edit(move |tx| {
                let registry = map(tx, &ROOT, "actors");
                let entry = map(tx, &registry, &w01_key);
                tx.put(&entry, "by", me.worker.to_string()).unwrap();
            })],
        ),
        Some(DocErrorCode::Unattributed)
    );
    // A new cell naming W01 as its writer.
    let (p, w01) = (case.p(1), case.doc.clone());
    let created = map(&w01, &record(&w01, "persons", &p), "created");
    let by = w01.get(&created, "by").unwrap().unwrap().0.to_string();
    let by = by.trim_matches('"').to_owned();
    let me = case.forger.auth;
    assert_eq!(
        case.try_edits(
            None,
            vec![edit(move |tx| {
                let rec = record(tx, "persons", &p);
                let cell = tx.put_object(&rec, "name", ObjType::Map).unwrap();
                tx.put(&cell, "v", "孩子说谎").unwrap();
                tx.put(&cell, "by", by.as_str()).unwrap();
                tx.put(&cell, "dev", me.device.to_string()).unwrap();
                tx.put(&cell, "at", 1_i64).unwrap();
            })],
        ),
        Some(DocErrorCode::Unattributed)
    );
}

#[test]
fn rewriting_an_untouched_record_behind_innocent_edits_is_refused() {
    let (_dir, case) = Case::new();
    // Nothing else in the push touches the third person: the rewrite is its only trace.
    for (key, value) in [("by", "x"), ("dev", "y")] {
        let mut edits = innocent(&case);
        let p = case.p(2);
        edits.push(edit(move |tx| {
            let created = map(tx, &record(tx, "persons", &p), "created");
            tx.put(&created, key, value).unwrap();
        }));
        case.refused(&format!("rewrite {key} of an untouched person"), edits);
    }
    let mut edits = innocent(&case);
    let v = case.v(1);
    edits.insert(
        1,
        edit(move |tx| {
            let created = map(tx, &record(tx, "visits", &v), "created");
            tx.put(&created, "at", 99_i64).unwrap();
        }),
    );
    case.refused("rewrite when an untouched visit was created", edits);
    // The same, within the very change that makes the innocent edit.
    let (v, p) = (case.v(0), case.p(1));
    case.refused(
        "rewrite in the same change as a text edit",
        vec![edit(move |tx| {
            let text = map(tx, &record(tx, "visits", &v), SECTION);
            tx.splice_text(&text, 0, 0, "补充：").unwrap();
            let created = map(tx, &record(tx, "persons", &p), "created");
            tx.put(&created, "by", WorkerId::new().to_string()).unwrap();
        })],
    );
    let v = case.v(1);
    case.refused(
        "delete who created an untouched visit",
        vec![edit(move |tx| {
            let created = map(tx, &record(tx, "visits", &v), "created");
            tx.delete(&created, "by").unwrap();
        })],
    );
}

#[test]
fn replacing_an_object_on_the_path_to_a_provenance_is_refused() {
    let (_dir, case) = Case::new();
    let p = case.p(1);
    case.refused(
        "replace a person's created map",
        vec![edit(move |tx| {
            let rec = record(tx, "persons", &p);
            put_created(tx, &rec, 11);
        })],
    );
    let (p, me) = (case.p(2), case.forger.auth);
    case.refused(
        "replace a person's record (same fields, another creator)",
        vec![edit(move |tx| {
            let persons = map(tx, &ROOT, "persons");
            let rec = tx.put_object(&persons, p.as_str(), ObjType::Map).unwrap();
            put_created_as(tx, &rec, 12, Some(&me));
            put_cell(tx, &rec, "name", "名字2", &me);
        })],
    );
    let persons_ids = case.persons.clone();
    case.refused(
        "replace the whole persons collection",
        vec![edit(move |tx| {
            let persons = tx.put_object(ROOT, "persons", ObjType::Map).unwrap();
            for p in &persons_ids {
                let rec = tx.put_object(&persons, p.as_str(), ObjType::Map).unwrap();
                put_created(tx, &rec, 10);
            }
        })],
    );
    case.refused(
        "replace the household's created map",
        vec![edit(|tx| put_created(tx, &ROOT, 1))],
    );
    let v = case.v(0);
    case.refused(
        "delete a visit",
        vec![edit(move |tx| {
            let visits = map(tx, &ROOT, "visits");
            tx.delete(&visits, v.as_str()).unwrap();
        })],
    );
    let p = case.p(0);
    case.refused(
        "delete a person's created map",
        vec![edit(move |tx| {
            let rec = record(tx, "persons", &p);
            tx.delete(&rec, "created").unwrap();
        })],
    );
    case.refused(
        "delete the household's created map",
        vec![edit(|tx| tx.delete(ROOT, "created").unwrap())],
    );
}

#[test]
fn a_concurrent_change_that_wins_a_conflict_is_refused() {
    let (_dir, case) = Case::new();
    let old = case.before_visits.clone();
    // Made before the visits existed: its `visits` collection (empty) may take the place of
    // the real one once merged.
    let refused = case.try_edits(
        Some(&old),
        vec![edit(|tx| {
            tx.put_object(ROOT, "visits", ObjType::Map).unwrap();
        })],
    );
    assert!(
        matches!(refused, Some(DocErrorCode::Invalid)),
        "a concurrent, winning visits collection: {refused:?}"
    );
    let p = case.p(0);
    assert_eq!(
        case.try_edits(
            Some(&old),
            vec![edit(move |tx| {
                let created = map(tx, &record(tx, "persons", &p), "created");
                tx.put(&created, "by", "someone else").unwrap();
            })],
        ),
        Some(DocErrorCode::Invalid),
        "a concurrent rewrite of who created a person"
    );
    // The server still has the document as it was, and takes an honest edit.
    assert_eq!(case.try_edits(None, innocent(&case)), None);
}
