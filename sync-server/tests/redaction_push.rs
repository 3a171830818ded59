//! A late push of an old generation (ADR 0034), on both backends (PostgreSQL when
//! DOORSTEP_TEST_POSTGRES names a database): a phone's request pushing its household is
//! answered only after the household was redacted and the phone took the generation. The
//! answer carries the household's snapshot and latest notice and no refusal, so the phone's
//! later edits are pushed (a refusal there stopped them for good: the simulation's seeds 166
//! and 176).
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use doorstep_core::protocol::{ErasureReason, SyncRequest};
use doorstep_core::*;
use doorstep_server::credentials::{self, hash_secret, new_token, normalise_code};
use doorstep_server::erasure::Ledger;
use doorstep_server::store::{DeviceAuth, ServerStore};
use doorstep_server::sync::SyncService;

fn device<S: ServerStore>(store: &S, dir: &std::path::Path) -> (Store, DeviceAuth, StationId) {
    let now = doorstep_server::now_ms();
    let station = store.create_station("站", now).unwrap();
    let worker = store.add_worker(station, "W1", now).unwrap();
    let (_, code) = credentials::enroll_device(store, worker, now).unwrap();
    let token = new_token();
    let auth = store
        .redeem_code(
            &hash_secret(&normalise_code(&code)),
            &hash_secret(&token),
            now,
        )
        .unwrap()
        .unwrap();
    let mut options = StoreOptions::new(
        dir.join("d.db"),
        StoreKey::Raw([7; 32]),
        auth.worker,
        auth.station,
    );
    options.device = Some(auth.device);
    (Store::open(options).unwrap(), auth, station)
}

fn sync<S: ServerStore>(service: &SyncService<S>, auth: &DeviceAuth, store: &Store) {
    for _ in 0..10 {
        let req = store.build_sync_request(64 * 1024).unwrap();
        let resp = service.sync(auth, &req).unwrap();
        let o = store.apply_sync_response(&resp.encode()).unwrap();
        if !o.more {
            return;
        }
    }
    panic!("still more after 10 round trips");
}

fn late_push_of_an_old_generation_is_answered_not_refused<S: ServerStore + 'static>(store: S) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(store);
    let (phone, auth, station) = device(store.as_ref(), dir.path());
    let service = SyncService::new(store.clone(), 2);
    let hh = phone
        .create_household(&NewHousehold {
            code: "HH-1".into(),
            village: "石桥村".into(),
            address: "石桥村一组".into(),
            summary: "写错了孩子".into(),
            ..Default::default()
        })
        .unwrap();
    sync(&service, &auth, &phone);
    // Offline: an edit, and a request pushing it that is answered late.
    phone
        .edit_household(hh, &HouseholdEdit::Address("石桥村二组".into()))
        .unwrap();
    let late = phone.prepare_sync_request(64 * 1024).unwrap();
    let ledger = Ledger::redactions_in(dir.path());
    doorstep_server::redaction::redact(
        store.as_ref(),
        &ledger,
        station,
        hh,
        &[doc::generation::Redaction::parse("household//summary").unwrap()],
        ErasureReason::SubjectRequest,
        "test",
        doorstep_server::now_ms(),
    )
    .unwrap();
    // The phone takes the generation, rebases its edit, pushes it; then edits again.
    sync(&service, &auth, &phone);
    assert!(phone.unsynced_households().unwrap().is_empty());
    phone
        .edit_household(hh, &HouseholdEdit::Address("石桥村三组".into()))
        .unwrap();
    // The late request reaches the server: its changes are of the old generation.
    let resp = service
        .sync(&auth, &SyncRequest::decode(&late).unwrap())
        .unwrap();
    assert!(
        resp.errors.iter().all(|e| e.doc != hh),
        "refused: {:?}",
        resp.errors
    );
    assert!(resp.snapshots.iter().any(|s| s.doc == hh));
    assert!(resp
        .redactions
        .iter()
        .any(|n| n.doc == hh && n.generation == 1));
    let o = phone.apply_sync_response(&resp.encode()).unwrap();
    assert!(o.refused.is_empty(), "{:?}", o.refused);
    // The edit made after the generation reaches the server.
    sync(&service, &auth, &phone);
    assert!(phone.unsynced_households().unwrap().is_empty());
    let stored = store.load_document(hh).unwrap().unwrap();
    let doc = doorstep_server::snapshot::load_stored(&stored).unwrap();
    let file = doorstep_core::read_model::read_case_file(&doc).unwrap();
    assert_eq!(file.household.address, "石桥村三组");
    assert_eq!(file.household.summary, "");
}

#[test]
fn sqlite_late_push_of_an_old_generation_is_answered_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    late_push_of_an_old_generation_is_answered_not_refused(
        doorstep_server::SqliteStore::open(dir.path()).unwrap(),
    );
}

#[test]
fn postgres_late_push_of_an_old_generation_is_answered_not_refused() {
    let url = match std::env::var("DOORSTEP_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var_os("CI").is_some() => {
            panic!("DOORSTEP_TEST_POSTGRES must be set in CI (scripts/test.sh starts PostgreSQL)")
        }
        _ => return,
    };
    let schema = format!("redact_{}", uuid::Uuid::new_v4().simple());
    late_push_of_an_old_generation_is_answered_not_refused(
        doorstep_server::store::postgres::PostgresStore::open(&url, Some(&schema), 4).unwrap(),
    );
}
