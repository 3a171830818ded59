//! The access log (issue 16) with a real server on 127.0.0.1: case files opened on phones,
//! offline too, reach the server with the next sync and the supervisor lists them with
//! the worker and the device; a lost or repeated request adds nothing twice; another
//! station's phone learns nothing; an erased household's entries go on both sides.
#![allow(clippy::unwrap_used)]

use doorstep_core::protocol::{Access, ErasureReason, SyncRequest, SyncResponse};
use doorstep_core::*;
use doorstep_server::store::console::{Accessor, ConsoleStore, LoggedAccess, CASE_FILE_ON_DEVICE};
use doorstep_tests::proxy::{Fault, Proxy};
use doorstep_tests::*;

/// The phones' openings of a household's case file the server holds, newest first.
fn on_phones(server: &TestServer, station: StationId, hh: HouseholdId) -> Vec<LoggedAccess> {
    server
        .store
        .accesses(station, Some(hh), 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.what == CASE_FILE_ON_DEVICE)
        .collect()
}

fn by(d: &Device, label: &str) -> Accessor {
    Accessor::Device {
        worker: d.store.worker(),
        label: label.into(),
        device: d.device_id,
    }
}

async fn raw_sync(url: &str, token: &str, req: &SyncRequest) -> (u16, Vec<u8>) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/sync"))
        .bearer_auth(token)
        .body(req.encode())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openings_offline_reach_the_supervisor_with_worker_and_device() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let proxy = Proxy::start(server.addr).await;
    let a = server.device(station, "W01", &proxy.url()).await;
    let b = server.device(station, "W02", &server.url()).await;
    let hh = a.new_household("HH-000001");
    a.sync().await;
    b.sync().await;

    // W01 opens the case file twice with no signal: the sync does not reach the server.
    a.store.open_case_file(hh).unwrap();
    a.store.open_case_file(hh).unwrap();
    proxy.plan([Fault::ResetBeforeForward]);
    assert!(a.try_sync().await.is_err());
    assert_eq!(a.store.unsynced_accesses().unwrap(), 2);
    assert!(on_phones(&server, station, hh).is_empty());
    // W02 opens it too, and syncs.
    b.store.open_case_file(hh).unwrap();
    b.sync().await;

    // Signal again.
    a.sync().await;
    assert_eq!(a.store.unsynced_accesses().unwrap(), 0);
    let mine = a.store.accesses(hh).unwrap();
    assert!(mine.iter().all(|e| e.synced));
    let seen = on_phones(&server, station, hh);
    assert_eq!(seen.len(), 3, "{seen:?}");
    let of_a: Vec<i64> = seen
        .iter()
        .filter(|e| e.by == by(&a, "W01"))
        .map(|e| e.at)
        .collect();
    assert_eq!(
        of_a,
        mine.iter().map(|e| e.at.0).collect::<Vec<_>>(),
        "both openings, at the phone's times, newest first"
    );
    assert_eq!(seen.iter().filter(|e| e.by == by(&b, "W02")).count(), 1);
    assert!(seen.iter().all(|e| e.target == Some(hh.to_string())));
    // Nothing else to send: the next sync carries none.
    assert!(a
        .store
        .build_sync_request(1 << 20)
        .unwrap()
        .accesses
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_or_repeated_request_adds_no_entry_twice() {
    let server = TestServer::start().await;
    let station = server.station("站");
    let proxy = Proxy::start(server.addr).await;
    let a = server.device(station, "W01", &proxy.url()).await;
    let hh = a.new_household("HH-000001");
    a.sync().await;

    // Two openings, not one sent twice (within one millisecond, nearly always: the phone
    // gives each its own).
    a.store.open_case_file(hh).unwrap();
    a.store.open_case_file(hh).unwrap();
    // The server applies the sync; the phone never hears back.
    proxy.plan([Fault::DropResponse]);
    assert!(a.try_sync().await.is_err());
    assert_eq!(on_phones(&server, station, hh).len(), 2);
    assert_eq!(
        a.store.unsynced_accesses().unwrap(),
        2,
        "not known to be sent"
    );
    // Sent again, and the request even delivered twice: still two.
    proxy.plan([Fault::DuplicateRequest]);
    a.sync().await;
    assert_eq!(a.store.unsynced_accesses().unwrap(), 0);
    assert_eq!(on_phones(&server, station, hh).len(), 2);
    a.store.open_case_file(hh).unwrap();
    a.sync().await;
    assert_eq!(on_phones(&server, station, hh).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_stations_phone_can_neither_write_nor_probe_the_log() {
    let server = TestServer::start().await;
    let (sa, sb) = (server.station("A站"), server.station("B站"));
    let a = server.device(sa, "A1", &server.url()).await;
    let c = server.device(sb, "B1", &server.url()).await;
    let hh = a.new_household("HH-000001");
    a.sync().await;
    c.sync().await;

    // B's phone claims to have opened A's household, and an id nobody has: the answers are
    // the same and nothing is kept.
    let ask = |household| SyncRequest {
        cursor: c.store.sync_cursor().unwrap(),
        budget: 1 << 20,
        accesses: vec![Access {
            household,
            at: 1_765_000_000_000,
        }],
        ..SyncRequest::default()
    };
    let (status, foreign) = raw_sync(&server.url(), &c.token, &ask(hh)).await;
    assert_eq!(status, 200);
    let (status, absent) = raw_sync(&server.url(), &c.token, &ask(HouseholdId::new())).await;
    assert_eq!(status, 200);
    assert_eq!(
        SyncResponse::decode(&foreign).unwrap(),
        SyncResponse::decode(&absent).unwrap(),
        "a foreign household answers as an absent one"
    );
    assert!(server.store.accesses(sa, None, 100).unwrap().is_empty());
    assert!(server.store.accesses(sb, None, 100).unwrap().is_empty());

    // A malformed access list is a clean 400.
    let mut body = ask(hh).encode_raw();
    body.push(0);
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/sync", server.url()))
        .bearer_auth(&c.token)
        .body(protocol::compress(&body))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_household_takes_its_entries_from_the_server_and_every_phone() {
    let server = TestServer::start().await;
    let station = server.station("站");
    let a = server.device(station, "W01", &server.url()).await;
    let b = server.device(station, "W02", &server.url()).await;
    let gone = a.new_household("HH-000001");
    let kept = a.new_household("HH-000002");
    a.sync().await;
    b.sync().await;
    a.store.open_case_file(gone).unwrap();
    a.store.open_case_file(kept).unwrap();
    b.store.open_case_file(gone).unwrap();
    a.sync().await;
    b.sync().await;
    assert_eq!(on_phones(&server, station, gone).len(), 2);

    server.erase(station, gone, ErasureReason::SubjectRequest);
    assert!(server
        .store
        .accesses(station, Some(gone), 100)
        .unwrap()
        .is_empty());
    // W02 opens it once more before hearing of the erasure (offline): that entry goes too.
    b.store.open_case_file(gone).unwrap();
    a.sync().await;
    b.sync().await;
    for d in [&a, &b] {
        assert!(d.store.accesses(gone).unwrap().is_empty(), "{}", d.label);
        assert_eq!(d.store.unsynced_accesses().unwrap(), 0, "{}", d.label);
    }
    assert!(on_phones(&server, station, gone).is_empty());
    assert_eq!(a.store.accesses(kept).unwrap().len(), 1);
    assert_eq!(on_phones(&server, station, kept).len(), 1);
}
