//! Phone retention through the real binary (ADR 0025), on a data directory a real phone
//! synced into: `household retire --closed-for-days 90` lists and retires the household
//! the phone closed 100 days ago (its clock), never the one it closed today; `household
//! reopen` brings it back once, says so, refuses another station's id, and the period then
//! counts from the reopening.
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
const DAY: i64 = 86_400_000;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retire_takes_only_households_closed_longer_than_the_period_and_reopen_brings_one_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_file = dir.path().join("server.key");
    let key = ServerKey::generate().unwrap();
    key.write_new_file(&key_file).unwrap();

    let store = Arc::new(SqliteStore::open_encrypted(&data, &key).unwrap());
    let station = store.create_station("石桥镇社工站", now_ms()).unwrap();
    let w01 = store.add_worker(station, "W01", now_ms()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = doorstep_server::serve(store.clone(), listener, ServerConfig::default())
        .await
        .unwrap();
    let (_, code) = credentials::enroll_device(store.as_ref(), w01, now_ms()).unwrap();
    let e = enroll(&server.url(), &code).await.unwrap();
    let clock = Arc::new(AtomicI64::new(now_ms() - 100 * DAY));
    let mut options = StoreOptions::new(
        dir.path().join("w01.db"),
        StoreKey::Raw([7; 32]),
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
    let close = |code: &str| {
        let hh = phone
            .create_household(&NewHousehold {
                code: code.into(),
                ..Default::default()
            })
            .unwrap();
        phone
            .edit_household(hh, &HouseholdEdit::Status(HouseholdStatus::Closed))
            .unwrap();
        hh
    };
    // Closed 100 days ago by the phone's clock; another closed today.
    let old = close("HH-OLD");
    clock.store(now_ms(), Ordering::SeqCst);
    let new = close("HH-NEW");
    transport.sync(&phone).await.unwrap();
    server.shutdown().await;
    drop(store);

    let retire = |dry: bool| {
        let mut args = vec!["household", "retire", "--closed-for-days", "90"];
        if dry {
            args.push("--dry-run");
        }
        ok(cli(&data, &key_file, &args))
    };
    let listed = retire(true);
    assert!(
        listed.contains(&format!("{station}\t{old}\tretire\tclosed ")),
        "{listed}"
    );
    assert!(!listed.contains(&new.to_string()), "{listed}");
    assert!(listed.contains("1 household(s) closed for more than 90 days would leave"));
    assert!(
        ok(cli(
            &data,
            &key_file,
            &["household", "scope", "--worker", &w01.to_string()]
        ))
        .contains(&old.to_string()),
        "a dry run changes nothing"
    );
    assert!(retire(false).contains("1 household(s) closed for more than 90 days leave the phones"));
    let scope = ok(cli(
        &data,
        &key_file,
        &["household", "scope", "--worker", &w01.to_string()],
    ));
    assert!(
        !scope.contains(&old.to_string()) && scope.contains(&new.to_string()),
        "{scope}"
    );
    assert!(retire(false).starts_with("0 household(s)"), "done once");

    // Another station's id is refused with a message, nothing else.
    let other = StationId::new().to_string();
    let out = cli(
        &data,
        &key_file,
        &[
            "household",
            "reopen",
            "--station",
            &other,
            "--household",
            &old.to_string(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a household of this station"));
    let reopen = || {
        ok(cli(
            &data,
            &key_file,
            &[
                "household",
                "reopen",
                "--station",
                &station.to_string(),
                "--household",
                &old.to_string(),
            ],
        ))
    };
    assert!(
        reopen().contains("returns to the phones of 1 worker(s)"),
        "its worker's phone is told"
    );
    assert!(reopen().contains("was not retired"));
    assert!(
        retire(false).starts_with("0 household(s)"),
        "the period counts again from the reopening"
    );
    let store = SqliteStore::open_encrypted(&data, &key).unwrap();
    assert!(store.in_scope(w01, old).unwrap());
}
