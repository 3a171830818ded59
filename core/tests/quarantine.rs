//! Sync never blocks on one document (ADR 0013): what a device cannot apply or read is
//! quarantined with its reason, the rest of the response applies and the cursor moves, and
//! a later valid version repairs it. Responses are built by hand, as a faulty or hostile
//! server could send them.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ROOT};
use common::*;
use doorstep_core::protocol::*;
use doorstep_core::*;

/// A response pulling `groups` at log position `seq`, each group with a signature by each
/// author over the newest of its changes (bytes that are no change are sent unsigned).
fn response(
    epoch: uuid::Uuid,
    seq: u64,
    groups: Vec<(HouseholdId, Vec<Vec<u8>>)>,
    authors: &[&Author],
) -> SyncResponse {
    SyncResponse {
        epoch,
        cursor: Cursor {
            epoch,
            seq,
            phase: Phase::Log,
        },
        pull: groups
            .into_iter()
            .map(|(doc, changes)| {
                let mut signatures = Vec::new();
                let decoded: Vec<automerge::Change> = changes
                    .iter()
                    .filter_map(|b| automerge::Change::from_bytes(b.clone()).ok())
                    .collect();
                for a in authors {
                    signatures.extend(a.sign_newest(doc, decoded.iter()));
                }
                DocChanges {
                    doc,
                    changes,
                    signatures,
                }
            })
            .collect(),
        signers: authors.iter().map(|a| a.signer()).collect(),
        ..SyncResponse::default()
    }
}

/// A change to `visit`'s kind on a copy of `base` (a new cell, as a newer app would write
/// it) by `author`; the document after it.
fn set_kind(base: &Automerge, visit: VisitId, kind: &str, author: &Author) -> (Automerge, Vec<u8>) {
    let mut doc = base.fork().with_actor(author.actor.clone());
    doc.transact(|tx| {
        let visits = tx.get(ROOT, "visits")?.unwrap().1;
        let v = tx.get(&visits, visit.to_string())?.unwrap().1;
        let cell = tx.put_object(&v, "kind", ObjType::Map)?;
        tx.put(&cell, "v", kind)?;
        tx.put(&cell, "by", author.worker.to_string())?;
        tx.put(&cell, "dev", author.device.to_string())?;
        tx.put(&cell, "at", 1_700_000_000_000_i64)
    })
    .unwrap();
    let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    (doc, change)
}

/// A change by `author` on a copy of `base` that sets the root's `schema` (`None`: deletes
/// it, leaving a document no reader takes for a household); the document after it.
fn set_schema(base: &Automerge, schema: Option<i64>, author: &Author) -> (Automerge, Vec<u8>) {
    let mut doc = base.fork().with_actor(author.actor.clone());
    doc.transact(|tx| match schema {
        Some(v) => tx.put(ROOT, "schema", v),
        None => tx.delete(ROOT, "schema"),
    })
    .unwrap();
    let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    (doc, change)
}

#[test]
fn an_unreadable_document_is_quarantined_and_a_later_version_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let mut opts = options(&dir.path().join("maker.db"), WorkerId::new(), station);
    opts.signing_seed = Some([0x4d; 32]);
    let maker = Store::open(opts).unwrap();
    let made_by = Author::of(&maker, [0x4d; 32]);
    let (newer, repairer) = (Author::new(0x61), Author::new(0x62));
    let device = open(dir.path(), "device.db", station);
    let good = household(&maker, "HH-000001");
    let poisoned = household(&maker, "HH-000002");
    let v = visit(&maker, poisoned, "2026-11-29");
    let base = Automerge::load(&maker.export_document(poisoned).unwrap()).unwrap();
    let _ = v;
    let (bad_doc, bad) = set_schema(&base, None, &newer);
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
            &[&made_by, &newer],
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
    assert!(reason.contains("schema"), "{reason}");
    assert!(device.household(poisoned).is_err());
    // Not in the index: the screens do not list a household that would not open.
    let listed = device.households_in_village("石桥村").unwrap();
    assert!(listed.iter().any(|h| h.id == good));
    assert!(listed.iter().all(|h| h.id != poisoned));

    // A later version puts the schema back: the held changes and the new one apply.
    let (_, repair) = set_schema(&bad_doc, Some(1), &repairer);
    let outcome = device
        .apply_response(&response(
            epoch,
            11,
            vec![(poisoned, vec![repair])],
            &[&repairer],
        ))
        .unwrap();
    assert!(
        outcome.quarantined.is_empty(),
        "{outcome:?} {:?}",
        device.quarantined()
    );
    let hh = device.household(poisoned).unwrap();
    assert_eq!(hh.visits.len(), 1);
    let still: Vec<HouseholdId> = device
        .quarantined()
        .unwrap()
        .into_iter()
        .map(|q| q.household)
        .collect();
    assert!(!still.contains(&poisoned), "repaired: {still:?}");
    assert_eq!(device.sync_cursor().unwrap().seq, 11);
}

/// Phones verify what they pull (ADR 0012): a change that comes before the signature that
/// covers it (the server keeps only the newest signature per actor; a page may end between
/// a change and that signature) waits, quarantined as unattributed, and applies when the
/// signature comes; a change no signature of its owner ever covers never shows.
#[test]
fn a_change_waits_for_the_signature_that_covers_it() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let mut opts = options(&dir.path().join("maker.db"), WorkerId::new(), station);
    opts.signing_seed = Some([0x4e; 32]);
    let maker = Store::open(opts).unwrap();
    let made_by = Author::of(&maker, [0x4e; 32]);
    let device = open(dir.path(), "device.db", station);
    let hh = household(&maker, "HH-000001");
    let first = maker.export_changes(hh, &[]).unwrap();
    let heads = Automerge::load(&maker.export_document(hh).unwrap())
        .unwrap()
        .get_heads();
    maker
        .edit_household(hh, &HouseholdEdit::Village("新村".into()))
        .unwrap();
    let second = maker.export_changes(hh, &heads).unwrap();
    let epoch = uuid::Uuid::new_v4();

    // Page 1: the household's first changes, no signature (it covers page 2's change).
    let outcome = device
        .apply_response(&response(epoch, 1, vec![(hh, first)], &[]))
        .unwrap();
    assert_eq!(outcome.quarantined, vec![hh], "{outcome:?}");
    let why = &device.quarantined().unwrap()[0].reason;
    assert!(why.contains("unattributed"), "{why}");
    assert!(
        device.household(hh).is_err(),
        "shown before it is vouched for"
    );

    // Page 2: the newest change with its author's signature: all of it applies.
    let outcome = device
        .apply_response(&response(epoch, 2, vec![(hh, second.clone())], &[&made_by]))
        .unwrap();
    assert!(outcome.quarantined.is_empty(), "{outcome:?}");
    assert!(device.quarantined().unwrap().is_empty());
    assert_eq!(device.household(hh).unwrap().village, "新村");

    // A signature by a key that is not the pinned owner's vouches for nothing.
    let other = open(dir.path(), "other.db", station);
    let impostor = Author {
        key: DeviceKey::from_seed(&[0x99; 32]),
        ..Author::of(&maker, [0x4e; 32])
    };
    let mut resp = response(
        epoch,
        1,
        vec![(hh, maker.export_changes(hh, &[]).unwrap())],
        &[&impostor],
    );
    resp.signers = vec![made_by.signer()];
    let outcome = other.apply_response(&resp).unwrap();
    assert_eq!(outcome.quarantined, vec![hh], "{outcome:?}");
    assert!(other.household(hh).is_err());
}

/// A value a newer version wrote (ADR 0013): the server of this version refuses it
/// (`verify::validate`), but a phone of this version that meets it — from a newer server —
/// shows that one field as `Unrecognised` and the household opens; nothing writes it back,
/// and a known value written over it reads again.
#[test]
fn a_value_from_a_newer_version_shows_as_unrecognised_and_hides_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let mut opts = options(&dir.path().join("maker.db"), WorkerId::new(), station);
    opts.signing_seed = Some([0x4f; 32]);
    let maker = Store::open(opts).unwrap();
    let made_by = Author::of(&maker, [0x4f; 32]);
    let device = open(dir.path(), "device.db", station);
    let hh = household(&maker, "HH-000001");
    let v = visit(&maker, hh, "2026-11-29");
    let base = Automerge::load(&maker.export_document(hh).unwrap()).unwrap();
    let newer = Author::new(0x63);
    let (newer_doc, change) = set_kind(&base, v, "group_activity", &newer);
    assert!(
        doorstep_core::doc::verify::validate(&newer_doc).is_err(),
        "this version's server must refuse a value it does not know"
    );
    let mut changes = maker.export_changes(hh, &[]).unwrap();
    changes.push(change);
    let epoch = uuid::Uuid::new_v4();
    let outcome = device
        .apply_response(&response(
            epoch,
            1,
            vec![(hh, changes)],
            &[&made_by, &newer],
        ))
        .unwrap();
    assert!(outcome.quarantined.is_empty(), "{outcome:?}");
    assert!(outcome.changed.contains(&hh));
    let shown = device.household(hh).unwrap();
    assert_eq!(shown.visits[0].kind, VisitKind::Unrecognised);
    assert_eq!(shown.code, "HH-000001");
    // Listed and searchable like any household.
    let listed = device.households_in_village("石桥村").unwrap();
    assert!(listed.iter().any(|h| h.id == hh));
    // Never written back; a known value written over it reads again.
    assert!(device
        .edit_visit(hh, v, &VisitEdit::Kind(VisitKind::Unrecognised))
        .is_err());
    device
        .edit_visit(hh, v, &VisitEdit::Kind(VisitKind::Phone))
        .unwrap();
    assert_eq!(
        device.household(hh).unwrap().visits[0].kind,
        VisitKind::Phone
    );
}
