//! Snapshots without automerge's DEFLATE (`sync-server/src/snapshot.rs`): the server stores
//! compacted documents as a zstd frame of the uncompressed encoding and bootstraps devices
//! with the uncompressed encoding, yet still loads and serves the DEFLATE snapshots that
//! databases written by earlier servers hold.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ReadDoc, ROOT};
use doorstep_core::protocol::*;
use doorstep_core::{HouseholdId, StationId};
use doorstep_server::credentials;
use doorstep_server::snapshot;
use doorstep_server::store::{DeviceAuth, DocAppend, ServerStore};
use doorstep_server::sync::SyncService;
use doorstep_server::SqliteStore;

const AUTOMERGE_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

fn enrol(store: &SqliteStore, station: StationId, label: &str) -> DeviceAuth {
    let worker = store.add_worker(station, label, 0).unwrap();
    let (_, code) = credentials::enroll_device(store, worker, 0).unwrap();
    credentials::redeem_code(store, &code, 0)
        .unwrap()
        .unwrap()
        .0
}

/// A household document of `station` (its header), made by actor `byte`.
fn household(id: HouseholdId, station: StationId, byte: u8) -> Automerge {
    let mut doc = Automerge::new().with_actor(ActorId::from([byte; 16]));
    doc.transact(|tx| {
        tx.put(ROOT, "schema", 1_i64)?;
        tx.put(ROOT, "kind", "household")?;
        tx.put(ROOT, "id", id.to_string())?;
        tx.put(ROOT, "station", station.to_string())
    })
    .unwrap();
    doc
}

/// `n` more changes to the document (an address typed over and over); their bytes.
fn edits(doc: &mut Automerge, n: usize) -> Vec<Vec<u8>> {
    let heads = doc.get_heads();
    for i in 0..n {
        doc.transact(|tx| tx.put(ROOT, "address", format!("某路{i}号")))
            .unwrap();
    }
    doc.get_changes(&heads)
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

fn all_changes(doc: &Automerge) -> Vec<Vec<u8>> {
    doc.get_changes(&[])
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

fn request(push: Vec<DocChanges>) -> SyncRequest {
    SyncRequest {
        cursor: Cursor::default(),
        budget: 4 * 1024 * 1024,
        push,
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
    let a = enrol(&store, station, "W01");
    let b = enrol(&store, station, "W02");

    // As an earlier server compacted them: automerge's own DEFLATE snapshot. One document
    // has a log entry after its snapshot, the other none.
    let (with_tail, settled) = (HouseholdId::new(), HouseholdId::new());
    let mut docs = Vec::new();
    for id in [with_tail, settled] {
        let mut doc = household(id, station, 0x10);
        // Long enough that automerge DEFLATEs a column.
        edits(&mut doc, 300);
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
                a.device,
                &[DocAppend {
                    doc: id,
                    changes,
                    snapshot: Some(deflated),
                    cards: Vec::new(),
                    expected_seq: None,
                }],
            )
            .unwrap();
        docs.push(doc);
    }
    let tail = edits(&mut docs[0], 1);
    let service = SyncService::new(store.clone(), 16);
    let resp = service
        .sync(
            &a,
            &request(vec![DocChanges {
                doc: with_tail,
                changes: tail,
            }]),
        )
        .unwrap();
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
    let more = edits(&mut docs[1], 2);
    let resp = service
        .sync(
            &a,
            &request(vec![DocChanges {
                doc: settled,
                changes: more,
            }]),
        )
        .unwrap();
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    assert_eq!(resp.acks[0].heads, docs[1].get_heads());
}

#[test]
fn compaction_stores_a_zstd_frame_and_bootstraps_serve_it_uncompressed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let station = store.create_station("站", 0).unwrap();
    let a = enrol(&store, station, "W01");
    let b = enrol(&store, station, "W02");
    let id = HouseholdId::new();
    let mut doc = household(id, station, 0x20);
    // More than the 128 log entries after which the server compacts.
    edits(&mut doc, 140);
    let service = SyncService::new(store.clone(), 16);
    let resp = service
        .sync(
            &a,
            &request(vec![DocChanges {
                doc: id,
                changes: all_changes(&doc),
            }]),
        )
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
        assert_eq!(
            loaded.get(ROOT, "address").unwrap().unwrap().0.to_string(),
            "\"某路139号\""
        );
    }
}

#[test]
fn a_damaged_stored_snapshot_fails_the_request_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let station = store.create_station("站", 0).unwrap();
    let a = enrol(&store, station, "W01");
    let id = HouseholdId::new();
    let doc = household(id, station, 0x30);
    let mut frame = snapshot::encode_stored(&doc);
    frame.truncate(frame.len() / 2);
    store
        .commit(
            station,
            a.device,
            &[DocAppend {
                doc: id,
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
    assert!(service.sync(&a, &request(Vec::new())).is_err());
}
