//! Sync never blocks on one document (ADR 0013): what a device cannot apply or read is
//! quarantined with its reason, the rest of the response applies and the cursor moves, and
//! a later valid version repairs it. Responses are built by hand, as a faulty or hostile
//! server could send them.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ReadDoc, ROOT};
use common::*;
use doorstep_core::protocol::*;
use doorstep_core::*;

/// A response pulling `groups` at log position `seq`.
fn response(epoch: uuid::Uuid, seq: u64, groups: Vec<(HouseholdId, Vec<Vec<u8>>)>) -> SyncResponse {
    SyncResponse {
        epoch,
        cursor: Cursor {
            epoch,
            seq,
            phase: Phase::Log,
        },
        pull: groups
            .into_iter()
            .map(|(doc, changes)| DocChanges {
                doc,
                changes,
                signatures: Vec::new(),
            })
            .collect(),
        ..SyncResponse::default()
    }
}

/// A change to `visit`'s kind on a copy of `base` (a new cell, as a newer app would write
/// it); the document after it.
fn set_kind(base: &Automerge, visit: VisitId, kind: &str, actor: u8) -> (Automerge, Vec<u8>) {
    let mut doc = base.fork().with_actor(ActorId::from([actor; 16]));
    doc.transact(|tx| {
        let visits = tx.get(ROOT, "visits")?.unwrap().1;
        let v = tx.get(&visits, visit.to_string())?.unwrap().1;
        let cell = tx.put_object(&v, "kind", ObjType::Map)?;
        tx.put(&cell, "v", kind)?;
        tx.put(&cell, "by", WorkerId::new().to_string())?;
        tx.put(&cell, "dev", DeviceId::new().to_string())?;
        tx.put(&cell, "at", 1_700_000_000_000_i64)
    })
    .unwrap();
    let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    (doc, change)
}

#[test]
fn an_unreadable_document_is_quarantined_and_a_later_version_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let maker = open(dir.path(), "maker.db", station);
    let device = open(dir.path(), "device.db", station);
    let good = household(&maker, "HH-000001");
    let poisoned = household(&maker, "HH-000002");
    let v = visit(&maker, poisoned, "2026-11-29");
    let base = Automerge::load(&maker.export_document(poisoned).unwrap()).unwrap();
    let (bad_doc, bad) = set_kind(&base, v, "x", 0x61);
    let epoch = uuid::Uuid::new_v4();

    let mut poisoned_changes = maker.export_changes(poisoned, &[]).unwrap();
    poisoned_changes.push(bad);
    let outcome = device
        .apply_response(&response(
            epoch,
            10,
            vec![
                (poisoned, poisoned_changes),
                (good, maker.export_changes(good, &[]).unwrap()),
                (HouseholdId::new(), vec![b"not a change".to_vec()]),
            ],
        ))
        .unwrap();
    // The good household arrived, the cursor moved, two documents wait with their reasons.
    assert_eq!(device.household(good).unwrap().code, "HH-000001");
    assert_eq!(device.sync_cursor().unwrap().seq, 10);
    assert_eq!(outcome.quarantined.len(), 2, "{outcome:?}");
    assert!(outcome.quarantined.contains(&poisoned));
    assert!(!outcome.changed.contains(&poisoned));
    let held = device.quarantined().unwrap();
    assert_eq!(held.len(), 2);
    let reason = &held
        .iter()
        .find(|q| q.household == poisoned)
        .unwrap()
        .reason;
    assert!(reason.contains("VisitKind"), "{reason}");
    assert!(device.household(poisoned).is_err());
    // Not in the index: the screens do not list a household that would not open.
    let listed = device.households_in_village("石桥村").unwrap();
    assert!(listed.iter().any(|h| h.id == good));
    assert!(listed.iter().all(|h| h.id != poisoned));

    // A later version writes a valid kind over it: the held changes and the new one apply.
    let (_, repair) = set_kind(&bad_doc, v, "home", 0x62);
    let outcome = device
        .apply_response(&response(epoch, 11, vec![(poisoned, vec![repair])]))
        .unwrap();
    assert!(outcome.quarantined.is_empty(), "{outcome:?}");
    let hh = device.household(poisoned).unwrap();
    assert_eq!(hh.visits[0].kind, VisitKind::Home);
    let still: Vec<HouseholdId> = device
        .quarantined()
        .unwrap()
        .into_iter()
        .map(|q| q.household)
        .collect();
    assert!(!still.contains(&poisoned), "repaired: {still:?}");
    assert_eq!(device.sync_cursor().unwrap().seq, 11);
}
