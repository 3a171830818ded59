//! Creation provenance (who created the document and each record in it) cannot be rewritten
//! by a push, however the rewrite is dressed: the server checks only the places the pushed
//! changes could reach, so these cases aim at that narrowing — a rewrite of a record nothing
//! else in the push touches, hidden behind innocent edits, by replacing an object on the
//! path to it, or by a concurrent change that wins a conflict.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use automerge::transaction::{Transactable, Transaction};
use automerge::{ActorId, Automerge, ChangeHash, ObjId, ObjType, ReadDoc, ROOT};
use doorstep_core::protocol::*;
use doorstep_core::{DeviceId, HouseholdId, StationId, WorkerId};
use doorstep_server::credentials;
use doorstep_server::store::{DeviceAuth, ServerStore};
use doorstep_server::sync::SyncService;
use doorstep_server::SqliteStore;

/// One change made on a copy of the server's document.
type Edit = Box<dyn FnOnce(&mut Transaction<'_>)>;

const PERSONS: [&str; 3] = ["p-1", "p-2", "p-3"];
const VISITS: [&str; 2] = ["v-1", "v-2"];

fn enrol(store: &SqliteStore, station: StationId) -> DeviceAuth {
    let worker = store.add_worker(station, "W01", 0).unwrap();
    let (_, code) = credentials::enroll_device(store, worker, 0).unwrap();
    credentials::redeem_code(store, &code, 0)
        .unwrap()
        .unwrap()
        .0
}

fn put_created(tx: &mut Transaction<'_>, obj: &ObjId, at: i64) {
    let created = tx.put_object(obj, "created", ObjType::Map).unwrap();
    tx.put(&created, "by", WorkerId::new().to_string()).unwrap();
    tx.put(&created, "dev", DeviceId::new().to_string())
        .unwrap();
    tx.put(&created, "at", at).unwrap();
}

fn map(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> ObjId {
    doc.get(obj, key).unwrap().unwrap().1
}

fn record(doc: &impl ReadDoc, col: &str, rec: &str) -> ObjId {
    map(doc, &map(doc, &ROOT, col), rec)
}

fn actor(byte: u8) -> ActorId {
    ActorId::from([byte; 16])
}

struct Case {
    service: SyncService<SqliteStore>,
    auth: DeviceAuth,
    id: HouseholdId,
    /// The document as the server has it: a header, persons, then (a second change) visits.
    doc: Automerge,
    /// Its heads before the visits were added.
    before_visits: Vec<ChangeHash>,
}

impl Case {
    fn new() -> (tempfile::TempDir, Case) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let station = store.create_station("站", 0).unwrap();
        let auth = enrol(&store, station);
        let id = HouseholdId::new();
        let mut doc = Automerge::new().with_actor(actor(0x10));
        let mut tx = doc.transaction();
        tx.put(ROOT, "schema", 1_i64).unwrap();
        tx.put(ROOT, "kind", "household").unwrap();
        tx.put(ROOT, "id", id.to_string()).unwrap();
        tx.put(ROOT, "station", station.to_string()).unwrap();
        put_created(&mut tx, &ROOT, 1);
        let persons = tx.put_object(ROOT, "persons", ObjType::Map).unwrap();
        for (i, p) in PERSONS.iter().enumerate() {
            let rec = tx.put_object(&persons, *p, ObjType::Map).unwrap();
            put_created(&mut tx, &rec, 10 + i as i64);
            let name = tx.put_object(&rec, "name", ObjType::Map).unwrap();
            tx.put(&name, "v", format!("名字{i}")).unwrap();
        }
        tx.commit();
        let before_visits = doc.get_heads();
        let mut tx = doc.transaction();
        let visits = tx.put_object(ROOT, "visits", ObjType::Map).unwrap();
        for (i, v) in VISITS.iter().enumerate() {
            let rec = tx.put_object(&visits, *v, ObjType::Map).unwrap();
            put_created(&mut tx, &rec, 20 + i as i64);
            let text = tx.put_object(&rec, "situation", ObjType::Text).unwrap();
            tx.splice_text(&text, 0, 0, "家中老人独居").unwrap();
        }
        tx.commit();
        let case = Case {
            service: SyncService::new(store, 16),
            auth,
            id,
            doc,
            before_visits,
        };
        let resp = case.push(&case.doc, &[]);
        assert!(resp.errors.is_empty(), "the household is accepted");
        (dir, case)
    }

    /// Push the changes of `doc` after `since`; the response.
    fn push(&self, doc: &Automerge, since: &[ChangeHash]) -> SyncResponse {
        let changes = doc
            .get_changes(since)
            .into_iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        let req = SyncRequest {
            push: vec![DocChanges {
                doc: self.id,
                changes,
            }],
            ..SyncRequest::default()
        };
        self.service.sync(&self.auth, &req).unwrap()
    }

    /// Edit a copy of the server's document (as of `at`) with `edits`, one change each,
    /// and push what is new; the error code, `None` when accepted.
    fn try_edits(&self, at: Option<&[ChangeHash]>, edits: Vec<Edit>) -> Option<DocErrorCode> {
        let mut doc = match at {
            Some(heads) => self.doc.fork_at(heads).unwrap(),
            None => self.doc.fork(),
        }
        .with_actor(actor(0xf0));
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

/// Innocent edits a forgery can hide behind: text typed in a visit, a name corrected.
fn innocent() -> Vec<Edit> {
    vec![
        edit(|tx| {
            let text = map(tx, &record(tx, "visits", "v-1"), "situation");
            tx.splice_text(&text, 0, 0, "补充：").unwrap();
        }),
        edit(|tx| {
            let name = map(tx, &record(tx, "persons", "p-1"), "name");
            tx.put(&name, "v", "改名").unwrap();
        }),
    ]
}

#[test]
fn innocent_edits_and_new_records_are_accepted() {
    let (_dir, case) = Case::new();
    let mut edits = innocent();
    edits.push(edit(|tx| {
        let persons = map(tx, &ROOT, "persons");
        let rec = tx.put_object(&persons, "p-4", ObjType::Map).unwrap();
        put_created(tx, &rec, 40);
    }));
    edits.push(edit(|tx| {
        let cards = tx.put_object(ROOT, "amendments", ObjType::Map).unwrap();
        let rec = tx.put_object(&cards, "a-1", ObjType::Map).unwrap();
        put_created(tx, &rec, 41);
    }));
    assert_eq!(case.try_edits(None, edits), None);
}

#[test]
fn rewriting_an_untouched_record_behind_innocent_edits_is_refused() {
    let (_dir, case) = Case::new();
    // Nothing else in the push touches p-3: the rewrite is its only trace.
    for (key, value) in [("by", "x"), ("dev", "y")] {
        let mut edits = innocent();
        edits.push(edit(move |tx| {
            let created = map(tx, &record(tx, "persons", "p-3"), "created");
            tx.put(&created, key, value).unwrap();
        }));
        case.refused(&format!("rewrite {key} of an untouched person"), edits);
    }
    let mut edits = innocent();
    edits.insert(
        1,
        edit(|tx| {
            let created = map(tx, &record(tx, "visits", "v-2"), "created");
            tx.put(&created, "at", 99_i64).unwrap();
        }),
    );
    case.refused("rewrite when an untouched visit was created", edits);
    // The same, within the very change that makes the innocent edit.
    case.refused(
        "rewrite in the same change as a text edit",
        vec![edit(|tx| {
            let text = map(tx, &record(tx, "visits", "v-1"), "situation");
            tx.splice_text(&text, 0, 0, "补充：").unwrap();
            let created = map(tx, &record(tx, "persons", "p-2"), "created");
            tx.put(&created, "by", WorkerId::new().to_string()).unwrap();
        })],
    );
    case.refused(
        "delete who created an untouched visit",
        vec![edit(|tx| {
            let created = map(tx, &record(tx, "visits", "v-2"), "created");
            tx.delete(&created, "by").unwrap();
        })],
    );
}

#[test]
fn replacing_an_object_on_the_path_to_a_provenance_is_refused() {
    let (_dir, case) = Case::new();
    case.refused(
        "replace a person's created map",
        vec![edit(|tx| {
            let rec = record(tx, "persons", "p-2");
            put_created(tx, &rec, 11);
        })],
    );
    case.refused(
        "replace a person's record (same fields, another creator)",
        vec![edit(|tx| {
            let persons = map(tx, &ROOT, "persons");
            let rec = tx.put_object(&persons, "p-3", ObjType::Map).unwrap();
            put_created(tx, &rec, 12);
            let name = tx.put_object(&rec, "name", ObjType::Map).unwrap();
            tx.put(&name, "v", "名字2").unwrap();
        })],
    );
    case.refused(
        "replace the whole persons collection",
        vec![edit(|tx| {
            let persons = tx.put_object(ROOT, "persons", ObjType::Map).unwrap();
            for p in PERSONS {
                let rec = tx.put_object(&persons, p, ObjType::Map).unwrap();
                put_created(tx, &rec, 10);
            }
        })],
    );
    case.refused(
        "replace the household's created map",
        vec![edit(|tx| put_created(tx, &ROOT, 1))],
    );
    case.refused(
        "delete a visit",
        vec![edit(|tx| {
            let visits = map(tx, &ROOT, "visits");
            tx.delete(&visits, "v-1").unwrap();
        })],
    );
    case.refused(
        "delete a person's created map",
        vec![edit(|tx| {
            let rec = record(tx, "persons", "p-1");
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
    // Made before the visits existed, by an actor that wins ties: its `visits` collection
    // (empty) takes the place of the real one once merged.
    assert_eq!(
        case.try_edits(
            Some(&old),
            vec![edit(|tx| {
                tx.put_object(ROOT, "visits", ObjType::Map).unwrap();
            })],
        ),
        Some(DocErrorCode::Invalid),
        "a concurrent, winning visits collection"
    );
    assert_eq!(
        case.try_edits(
            Some(&old),
            vec![edit(|tx| {
                let created = map(tx, &record(tx, "persons", "p-1"), "created");
                tx.put(&created, "by", "someone else").unwrap();
            })],
        ),
        Some(DocErrorCode::Invalid),
        "a concurrent rewrite of who created a person"
    );
    // The server still has the document as it was, and takes an honest edit.
    assert_eq!(case.try_edits(None, innocent()), None);
}
