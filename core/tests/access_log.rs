//! The device's access log (issue 16): opening a case file records who, which device and
//! when, durably and offline; lists and search record nothing; requests carry the unsent
//! entries of households the server holds and the response applied next counts them sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use doorstep_core::protocol::{Erasure, ErasureReason, SyncResponse, MAX_ACCESSES};
use doorstep_core::*;

fn acknowledged(store: &Store, hh: HouseholdId) {
    // As if the server had acknowledged the household (it holds it now).
    store
        .set_server_heads(hh, &store.heads(hh).unwrap())
        .unwrap();
}

fn response_to(store: &Store) -> SyncResponse {
    let cursor = store.sync_cursor().unwrap();
    SyncResponse {
        epoch: cursor.epoch,
        cursor,
        ..SyncResponse::default()
    }
}

#[test]
fn opening_a_case_file_is_recorded_on_disk_and_nothing_else_is() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let worker = WorkerId::new();
    let path = dir.path().join("w.db");
    let (hh, other, device) = {
        let store = Store::open(common::options(&path, worker, station)).unwrap();
        let hh = common::household(&store, "HH-1");
        let other = common::household(&store, "HH-2");
        // Reading for the app's own purposes, lists and search record nothing.
        store.household(hh).unwrap();
        store.households_in_village("石桥村").unwrap();
        store.search("祖孙", 10).unwrap();
        assert!(store.accesses(hh).unwrap().is_empty());
        let opened = store.open_case_file(hh).unwrap();
        assert_eq!(opened, store.household(hh).unwrap());
        store.open_case_file(hh).unwrap();
        // A household this store does not hold is an error and records nothing.
        let absent = HouseholdId::new();
        assert!(matches!(
            store.open_case_file(absent),
            Err(Error::NotFound(_))
        ));
        assert!(store.accesses(absent).unwrap().is_empty());
        (hh, other, store.device())
    };
    // Reopened from the file: both openings are there, newest first, ids and times only.
    let store = Store::open(common::options(&path, worker, station)).unwrap();
    let log = store.accesses(hh).unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[0].at > log[1].at);
    for a in &log {
        assert_eq!((a.household, a.worker, a.device), (hh, worker, device));
        assert!(!a.synced);
    }
    assert!(store.accesses(other).unwrap().is_empty());
    assert_eq!(store.unsynced_accesses().unwrap(), 2);
}

#[test]
fn requests_carry_unsent_accesses_until_a_response_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(dir.path(), "w.db", StationId::new());
    let held = common::household(&store, "HH-1");
    let new = common::household(&store, "HH-2");
    acknowledged(&store, held);
    store.open_case_file(held).unwrap();
    store.open_case_file(new).unwrap();
    // Only the household the server holds: the other's entry waits for its first ack.
    let req = store.build_sync_request(1 << 20).unwrap();
    assert_eq!(req.accesses.len(), 1);
    assert_eq!(req.accesses[0].household, held);
    assert_eq!(
        req.accesses[0].at,
        store.accesses(held).unwrap()[0].at.0,
        "the time recorded"
    );
    // The response was lost: the next request carries the entry again.
    let again = store.build_sync_request(1 << 20).unwrap();
    assert_eq!(again.accesses, req.accesses);
    // Its response is applied: the entry counts as sent, and is not carried again.
    let outcome = store.apply_response(&response_to(&store)).unwrap();
    assert_eq!(outcome.accesses_sent, 1);
    assert!(store.accesses(held).unwrap()[0].synced);
    acknowledged(&store, new);
    let next = store.build_sync_request(1 << 20).unwrap();
    assert_eq!(next.accesses.len(), 1);
    assert_eq!(next.accesses[0].household, new);
    // An entry recorded after the request was built is not counted by its response.
    store.open_case_file(held).unwrap();
    let outcome = store.apply_response(&response_to(&store)).unwrap();
    assert_eq!(outcome.accesses_sent, 1);
    assert!(outcome.more, "the newer entry waits to be sent");
    assert_eq!(store.unsynced_accesses().unwrap(), 1);
    // A reset (a restored server) sends every entry again.
    let _ = store.build_sync_request(1 << 20).unwrap();
    let mut reset = response_to(&store);
    reset.epoch_reset = true;
    let outcome = store.apply_response(&reset).unwrap();
    assert_eq!(outcome.accesses_sent, 0);
    assert_eq!(store.unsynced_accesses().unwrap(), 3);
}

#[test]
fn a_request_carries_at_most_the_cap_and_the_rest_go_next() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(dir.path(), "w.db", StationId::new());
    let hh = common::household(&store, "HH-1");
    acknowledged(&store, hh);
    for _ in 0..MAX_ACCESSES + 5 {
        store.open_case_file(hh).unwrap();
    }
    let req = store.build_sync_request(1 << 20).unwrap();
    assert_eq!(req.accesses.len(), MAX_ACCESSES);
    // Oldest first.
    assert!(req.accesses.windows(2).all(|w| w[0].at < w[1].at));
    let outcome = store.apply_response(&response_to(&store)).unwrap();
    assert_eq!(outcome.accesses_sent, MAX_ACCESSES);
    assert!(outcome.more);
    let rest = store.build_sync_request(1 << 20).unwrap();
    assert_eq!(rest.accesses.len(), 5);
    let outcome = store.apply_response(&response_to(&store)).unwrap();
    assert_eq!(outcome.accesses_sent, 5);
    assert!(!outcome.more);
    assert_eq!(store.unsynced_accesses().unwrap(), 0);
}

#[test]
fn two_requests_in_flight_count_only_what_both_carried() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(dir.path(), "w.db", StationId::new());
    let a = common::household(&store, "HH-1");
    let b = common::household(&store, "HH-2");
    acknowledged(&store, a);
    store.open_case_file(a).unwrap();
    let first = store.build_sync_request(1 << 20).unwrap();
    assert_eq!(first.accesses.len(), 1);
    // A second request before the first is answered carries a newer entry too.
    acknowledged(&store, b);
    store.open_case_file(b).unwrap();
    let second = store.build_sync_request(1 << 20).unwrap();
    assert_eq!(second.accesses.len(), 2);
    // Whichever is answered, only the entry both carried counts as sent.
    let outcome = store.apply_response(&response_to(&store)).unwrap();
    assert_eq!(outcome.accesses_sent, 1);
    assert!(store.accesses(a).unwrap()[0].synced);
    assert!(!store.accesses(b).unwrap()[0].synced);
}

#[test]
fn an_erased_household_takes_its_entries_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(dir.path(), "w.db", StationId::new());
    let gone = common::household(&store, "HH-1");
    let kept = common::household(&store, "HH-2");
    acknowledged(&store, gone);
    acknowledged(&store, kept);
    store.open_case_file(gone).unwrap();
    store.open_case_file(kept).unwrap();
    let _ = store.build_sync_request(1 << 20).unwrap();
    store.apply_response(&response_to(&store)).unwrap();
    store.open_case_file(gone).unwrap();
    let mut resp = response_to(&store);
    resp.erasures = vec![Erasure {
        doc: gone,
        reason: ErasureReason::SubjectRequest,
        erased_at: 1_765_000_000_000,
    }];
    let outcome = store.apply_response(&resp).unwrap();
    assert_eq!(outcome.erased.len(), 1);
    // Sent and unsent entries alike.
    assert!(store.accesses(gone).unwrap().is_empty());
    assert_eq!(store.accesses(kept).unwrap().len(), 1);
    assert_eq!(store.unsynced_accesses().unwrap(), 0);
    assert!(store
        .build_sync_request(1 << 20)
        .unwrap()
        .accesses
        .is_empty());
}
