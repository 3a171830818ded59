//! Snapshots without automerge's DEFLATE (`sync-server/src/snapshot.rs`): the server stores
//! compacted documents as a zstd frame of the uncompressed encoding and bootstraps devices
//! with the uncompressed encoding, yet still loads and serves the DEFLATE snapshots that
//! databases written by earlier servers hold.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

#[allow(dead_code)]
#[path = "../../tests/src/raw_device.rs"]
mod raw_device;

use automerge::transaction::Transactable;
use automerge::{Automerge, Change, ObjType, ReadDoc, ROOT};
use doorstep_core::protocol::*;
use doorstep_core::{HouseholdId, NewHousehold, StationId};
use doorstep_server::credentials;
use doorstep_server::snapshot;
use doorstep_server::store::{DeviceAuth, DocAppend, ServerStore};
use doorstep_server::sync::SyncService;
use doorstep_server::SqliteStore;
use raw_device::RawDevice;

const AUTOMERGE_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

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

/// A household made on `dev`'s store (not synced), as a document that writes as `dev`.
fn household(dev: &RawDevice, code: &str) -> (HouseholdId, Automerge) {
    let id = dev
        .store
        .create_household(&NewHousehold {
            code: code.into(),
            ..Default::default()
        })
        .unwrap();
    (id, dev.document(id))
}

/// `n` more changes to the document (an address written over and over, each a new cell
/// with `dev`'s provenance, as the app writes it).
fn edits(dev: &RawDevice, doc: &mut Automerge, n: usize) -> Vec<Change> {
    let heads = doc.get_heads();
    let hh = address_map(doc);
    for i in 0..n {
        doc.transact(|tx| {
            let cell = tx.put_object(&hh, "address", ObjType::Map)?;
            tx.put(&cell, "v", format!("某路{i}号"))?;
            tx.put(&cell, "by", dev.auth.worker.to_string())?;
            tx.put(&cell, "dev", dev.auth.device.to_string())?;
            tx.put(&cell, "at", 1_700_000_000_000_i64 + i as i64)
        })
        .unwrap();
    }
    doc.get_changes(&heads)
}

/// The household map (where the address cell sits).
fn address_map(doc: &Automerge) -> automerge::ObjId {
    doc.get(ROOT, "household").unwrap().unwrap().1
}

/// The address a document shows.
fn address(doc: &Automerge) -> String {
    let cell = doc.get(address_map(doc), "address").unwrap().unwrap().1;
    doc.get(&cell, "v").unwrap().unwrap().0.to_string()
}

fn all_changes(doc: &Automerge) -> Vec<Change> {
    doc.get_changes(&[])
}

fn request(push: Vec<DocChanges>) -> SyncRequest {
    SyncRequest {
        signer: None,
        cursor: Cursor::default(),
        budget: 4 * 1024 * 1024,
        push,
        accesses: Vec::new(),
    }
}

/// A device's first sync: the snapshots it is sent, by document.
fn bootstrap(service: &SyncService<SqliteStore>, auth: &DeviceAuth) -> Vec<DocSnapshot> {
    let resp = service.sync(auth, &request(Vec::new())).unwrap();
    assert!(!resp.more);
    resp.snapshots
}

#[test]
fn snapshots_stored_by_earlier_servers_still_load_and_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let station = store.create_station("站", 0).unwrap();
    let a = RawDevice::new(enrol(&store, station, "W01"), 1);
    let b = enrol(&store, station, "W02");

    // As an earlier server compacted them: automerge's own DEFLATE snapshot. One document
    // has a log entry after its snapshot, the other none.
    let (with_tail, settled) = (HouseholdId::new(), HouseholdId::new());
    let mut docs = Vec::new();
    let _ = (with_tail, settled);
    let mut ids = Vec::new();
    for code in ["HH-1", "HH-2"] {
        let (id, mut doc) = household(&a, code);
        ids.push(id);
        // Long enough that automerge DEFLATEs a column.
        edits(&a, &mut doc, 300);
        let deflated = doc.save();
        assert!(deflated.len() < doc.save_nocompress().len());
        let changes = doc
            .get_changes(&[])
            .into_iter()
            .map(|c| (c.hash(), c.raw_bytes().to_vec()))
            .collect();
        store
            .commit(
                station,
                a.auth.device,
                &[DocAppend {
                    signatures: Vec::new(),
                    doc: id,
                    kind: doorstep_core::doc::DocKind::Household,
                    changes,
                    snapshot: Some(deflated),
                    cards: Vec::new(),
                    expected_seq: None,
                }],
            )
            .unwrap();
        docs.push(doc);
    }
    let (with_tail, settled) = (ids[0], ids[1]);
    let tail = edits(&a, &mut docs[0], 1);
    let service = SyncService::new(store.clone(), 16);
    let resp = service.sync(&a.auth, &a.request(with_tail, &tail)).unwrap();
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    assert_eq!(resp.acks[0].heads, docs[0].get_heads());

    // A fresh server (nothing cached) bootstraps a device from them.
    let service = SyncService::new(store.clone(), 16);
    let snapshots = bootstrap(&service, &b);
    assert_eq!(snapshots.len(), 2);
    for s in &snapshots {
        let doc = if s.doc == with_tail {
            &docs[0]
        } else {
            &docs[1]
        };
        assert_eq!(
            Automerge::load(&s.bytes).unwrap().get_heads(),
            doc.get_heads()
        );
    }
    // The settled one is sent exactly as stored: no save at all.
    let sent = snapshots.iter().find(|s| s.doc == settled).unwrap();
    assert_eq!(sent.bytes, docs[1].save());

    // And pushes onto it are validated against the loaded document.
    let more = edits(&a, &mut docs[1], 2);
    let resp = service.sync(&a.auth, &a.request(settled, &more)).unwrap();
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    assert_eq!(resp.acks[0].heads, docs[1].get_heads());
}

#[test]
fn compaction_stores_a_zstd_frame_and_bootstraps_serve_it_uncompressed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let station = store.create_station("站", 0).unwrap();
    let a = RawDevice::new(enrol(&store, station, "W01"), 2);
    let b = enrol(&store, station, "W02");
    let (id, mut doc) = household(&a, "HH-1");
    // More than the 128 log entries after which the server compacts.
    edits(&a, &mut doc, 140);
    let service = SyncService::new(store.clone(), 16);
    let resp = service
        .sync(&a.auth, &a.request(id, &all_changes(&doc)))
        .unwrap();
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);

    let stored = store.load_document(id).unwrap().unwrap();
    let snap = stored.snapshot.as_ref().expect("compacted");
    assert!(snap.starts_with(&ZSTD_MAGIC));
    assert!(stored.changes.is_empty());
    let raw = snapshot::decode_stored(snap).unwrap().into_owned();
    assert!(raw.starts_with(&AUTOMERGE_MAGIC));
    assert_eq!(
        snapshot::load_stored(&stored).unwrap().get_heads(),
        doc.get_heads()
    );

    // Served from the store (a fresh server) and from the cache: the same document.
    for service in [SyncService::new(store.clone(), 16), service] {
        let snapshots = bootstrap(&service, &b);
        assert_eq!(snapshots.len(), 1);
        // automerge's encoding without DEFLATE (the response is compressed as a whole).
        assert_eq!(snapshots[0].bytes, doc.save_nocompress());
        let loaded = Automerge::load(&snapshots[0].bytes).unwrap();
        assert_eq!(loaded.get_heads(), doc.get_heads());
        assert_eq!(address(&loaded), "\"某路139号\"");
    }
}

#[test]
fn a_damaged_stored_snapshot_fails_the_request_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let station = store.create_station("站", 0).unwrap();
    let a = RawDevice::new(enrol(&store, station, "W01"), 3);
    let (id, doc) = household(&a, "HH-1");
    let mut frame = snapshot::encode_stored(&doc);
    frame.truncate(frame.len() / 2);
    store
        .commit(
            station,
            a.auth.device,
            &[DocAppend {
                signatures: Vec::new(),
                doc: id,
                kind: doorstep_core::doc::DocKind::Household,
                changes: doc
                    .get_changes(&[])
                    .into_iter()
                    .map(|c| (c.hash(), c.raw_bytes().to_vec()))
                    .collect(),
                snapshot: Some(frame),
                cards: Vec::new(),
                expected_seq: None,
            }],
        )
        .unwrap();
    let service = SyncService::new(store.clone(), 16);
    assert!(service.sync(&a.auth, &request(Vec::new())).is_err());
}
