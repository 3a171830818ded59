//! The admin CLI's card lookups through the real binary, on a data directory a real phone
//! synced its cards into: `cards find` and `cards issued` name the issuing worker by label
//! with the end of its id and give the time in the station's time zone (UTC+08:00 unless
//! `station timezone` set another: ADR 0028), never a worker's whole UUID or milliseconds
//! since the epoch; `cards issued` takes a worker's label or id and its days in station
//! time.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use doorstep_core::transport::{enroll, HttpTransport};
use doorstep_core::*;
use doorstep_server::store::key::ServerKey;
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, ServerConfig, SqliteStore};

const BIN: &str = env!("CARGO_BIN_EXE_doorstep-server");

/// 2026-12-01 00:30 in Asia/Shanghai: still 30 November in UTC (16:30).
const DEC_01_0030: i64 = 1_796_056_200_000;
/// 2026-11-30 23:00 in Asia/Shanghai (15:00 UTC).
const NOV_30_2300: i64 = DEC_01_0030 - 90 * 60 * 1000;

fn cli(data: &Path, key: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .env_remove("DOORSTEP_KEY_FILE")
        .env_remove("DOORSTEP_KEY_ENV")
        .env_remove("DOORSTEP_DATABASE")
        .args(args)
        .args(["--data", data.to_str().unwrap()])
        .args(["--key-file", key.to_str().unwrap()])
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn refused(out: Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_lookups_name_workers_by_label_and_give_station_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_file = dir.path().join("server.key");
    let key = ServerKey::generate().unwrap();
    key.write_new_file(&key_file).unwrap();

    // A station, W01's phone with a lease of HG-000001 … HG-000010, a real server.
    let store = Arc::new(SqliteStore::open_encrypted(&data, &key).unwrap());
    let station = store.create_station("石桥镇社工站", now_ms()).unwrap();
    let w01 = store.add_worker(station, "W01", now_ms()).unwrap();
    store.add_worker(station, "W02", now_ms()).unwrap();
    store
        .set_team(
            w01,
            Some(&doorstep_core::TeamName::new("station").unwrap()),
            now_ms(),
        )
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = doorstep_server::serve(store.clone(), listener, ServerConfig::default())
        .await
        .unwrap();
    let (_, code) = credentials::enroll_device(store.as_ref(), w01, now_ms()).unwrap();
    let e = enroll(&server.url(), &code).await.unwrap();
    let batch = doorstep_server::cards::add_batch(store.as_ref(), station, "HG", 1, 100).unwrap();
    doorstep_server::cards::add_lease(store.as_ref(), station, batch, 1, 10, e.device, None)
        .unwrap();
    let clock = Arc::new(AtomicI64::new(NOV_30_2300));
    let mut options = StoreOptions::new(
        dir.path().join("w01.db"),
        StoreKey::Raw([9; 32]),
        e.worker,
        e.station,
    );
    options.device = Some(e.device);
    options.clock = {
        let clock = clock.clone();
        Arc::new(move || Timestamp(clock.load(Ordering::SeqCst)))
    };
    let phone = Store::open(options).unwrap();
    let transport = HttpTransport::new(&server.url(), &e.token, Duration::from_secs(30)).unwrap();
    transport.sync(&phone).await.unwrap();

    // Offline, W01 leaves one card at 23:00 on 30 November and one at 00:30 on 1 December
    // (Beijing time; both 30 November in UTC).
    let hh = phone
        .create_household(&NewHousehold {
            code: "HH-000001".into(),
            ..Default::default()
        })
        .unwrap();
    let issue = |n: u32, at: i64| {
        clock.store(at, Ordering::SeqCst);
        let serial = CardSerial::new("HG", n).unwrap().to_string();
        let card = NewCard {
            serial: serial.clone(),
            visit: None,
            person: None,
            replaces: None,
            outside_lease: false,
        };
        phone
            .issue_card(hh, &card, Date::parse("2026-12-01").unwrap())
            .unwrap();
        serial
    };
    let late = issue(1, NOV_30_2300);
    let early = issue(2, DEC_01_0030);
    transport.sync(&phone).await.unwrap();
    let w01_id = w01.to_string();
    assert_eq!(
        store.cards_by_serial(station, &early).unwrap()[0].issued_at,
        DEC_01_0030,
        "the server indexed the phone's time"
    );
    server.shutdown().await;
    drop(store);

    // What a supervisor reads: label, the end of the id, Beijing time; never the whole
    // worker id or milliseconds.
    let station = station.to_string();
    let plain_ids = |out: &str| {
        assert!(!out.contains(&w01_id), "the whole worker id: {out}");
        for ms in [DEC_01_0030, NOV_30_2300] {
            assert!(!out.contains(&ms.to_string()), "epoch ms: {out}");
        }
    };
    let short = format!("W01 (…{})", &w01_id[w01_id.len() - 8..]);
    let found = ok(cli(
        &data,
        &key_file,
        &[
            "cards",
            "find",
            "--station",
            &station,
            "--serial",
            &early.to_lowercase(),
        ],
    ));
    assert_eq!(
        found.trim(),
        format!(
            "{early}  issued  household {hh}  issued by {short} on 2026-12-01 00:30 (UTC+08:00)"
        ),
    );
    plain_ids(&found);

    // Days are the station's: 1 December holds the 00:30 card only, 30 November the 23:00
    // one; the worker named by label or by id.
    let issued = |worker: &str, day: &str| {
        cli(
            &data,
            &key_file,
            &[
                "cards",
                "issued",
                "--station",
                &station,
                "--worker",
                worker,
                "--from",
                day,
                "--to",
                day,
            ],
        )
    };
    let dec_1 = ok(issued("W01", "2026-12-01"));
    assert_eq!(dec_1.lines().count(), 1, "{dec_1}");
    assert!(
        dec_1.starts_with(&format!(
            "{early}  issued  household {hh}  issued by {short} on 2026-12-01 00:30"
        )),
        "{dec_1}"
    );
    plain_ids(&dec_1);
    let nov_30 = ok(issued(&w01_id, "2026-11-30"));
    assert_eq!(nov_30.lines().count(), 1, "{nov_30}");
    assert!(
        nov_30.starts_with(&late) && nov_30.contains(&format!("by {short} on 2026-11-30 23:00")),
        "{nov_30}"
    );
    assert_eq!(ok(issued("W02", "2026-12-01")).trim(), "none");

    // The station moves to UTC (ADR 0028): both cards were left on 30 November there, and
    // the times print in UTC. A malformed or impossible offset, or an unknown station, is
    // refused and changes nothing.
    let zone = |args: &[&str]| {
        let mut all = vec!["station", "timezone", "--station", &station];
        all.extend_from_slice(args);
        cli(&data, &key_file, &all)
    };
    assert_eq!(ok(zone(&[])).trim(), "UTC+08:00");
    for bad in ["+25:00", "Europe/Paris", "8"] {
        let e = refused(zone(&["--offset", bad]));
        assert!(e.contains("offset from UTC"), "{bad}: {e}");
    }
    let e = refused(cli(
        &data,
        &key_file,
        &[
            "station",
            "timezone",
            "--station",
            &StationId::new().to_string(),
            "--offset",
            "UTC",
        ],
    ));
    assert!(e.contains("station"), "{e}");
    assert_eq!(ok(zone(&[])).trim(), "UTC+08:00");
    assert!(ok(zone(&["--offset", "UTC"])).contains("time zone UTC+00:00"));
    assert_eq!(ok(zone(&[])).trim(), "UTC+00:00");
    let nov_30 = ok(issued("W01", "2026-11-30"));
    assert_eq!(nov_30.lines().count(), 2, "{nov_30}");
    assert!(
        nov_30.contains(&format!(
            "{early}  issued  household {hh}  issued by {short} on 2026-11-30 16:30 (UTC+00:00)"
        )),
        "{nov_30}"
    );
    assert_eq!(ok(issued("W01", "2026-12-01")).trim(), "none");
    assert!(ok(zone(&["--offset", "-05:30"])).contains("UTC-05:30"));
    let found = ok(cli(
        &data,
        &key_file,
        &["cards", "find", "--station", &station, "--serial", &late],
    ));
    assert!(found.contains("on 2026-11-30 09:30 (UTC-05:30)"), "{found}");

    // A label no worker has, or two workers have, is refused without repeating it (labels
    // may be names), with the ids to choose from.
    let e = refused(issued("W09", "2026-12-01"));
    assert!(
        e.contains("no worker of this station has that label") && !e.contains("W09"),
        "{e}"
    );
    let again = ok(cli(
        &data,
        &key_file,
        &["worker", "add", "--station", &station, "--label", "W01"],
    ));
    let e = refused(issued("W01", "2026-12-01"));
    assert!(
        e.contains("2 workers of this station have that label")
            && !e.contains("W01")
            && e.contains(&w01_id)
            && e.contains(again.trim()),
        "{e}"
    );
}
