//! Several `doorstep-server` processes on one PostgreSQL database: devices spread across
//! them and switch between syncs, writing the same households concurrently. Every device
//! converges, and the station's log has no gap and no duplicate.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use doorstep_core::transport::{enroll, HttpTransport};
use doorstep_core::*;
use doorstep_server::store::postgres::PostgresStore;
use doorstep_server::store::ServerStore;

const BIN: &str = env!("CARGO_BIN_EXE_doorstep-server");

fn postgres_url() -> Option<String> {
    match std::env::var("DOORSTEP_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("DOORSTEP_TEST_POSTGRES must be set in CI"),
        _ => {
            eprintln!("DOORSTEP_TEST_POSTGRES not set: multi-instance test skipped");
            None
        }
    }
}

fn cli(url: &str, schema: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["--database", url, "--schema", schema])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn start(url: &str, schema: &str) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args([
            "--database",
            url,
            "--schema",
            schema,
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            // Not the default 127.0.0.1:9091: servers run side by side here.
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (child, format!("http://127.0.0.1:{port}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start");
}

/// A new worker of `station` with a phone enrolled through `server`: its store (key `i`)
/// and its token.
async fn phone(
    url: &str,
    schema: &str,
    station: &str,
    server: &str,
    dir: &std::path::Path,
    label: &str,
    i: usize,
) -> (Store, String) {
    let worker = cli(
        url,
        schema,
        &[
            "worker",
            "add",
            "--station",
            station,
            "--label",
            label,
            "--team",
            "station",
        ],
    )
    .trim()
    .to_owned();
    let out = cli(url, schema, &["device", "enroll", "--worker", &worker]);
    let code = out
        .lines()
        .find_map(|l| l.strip_prefix("code"))
        .unwrap()
        .trim()
        .to_owned();
    let e = enroll(server, &code).await.unwrap();
    let mut o = StoreOptions::new(
        dir.join(format!("{label}.db")),
        StoreKey::Raw([i as u8 + 1; 32]),
        e.worker,
        e.station,
    );
    o.device = Some(e.device);
    (Store::open(o).unwrap(), e.token)
}

/// A supervisor of the station (made before it holds a household: no scope entry), whose
/// reading of the log is the whole log.
fn supervisor(url: &str, schema: &str, station: &str) -> doorstep_server::store::LogReader {
    let worker = cli(
        url,
        schema,
        &[
            "worker",
            "add",
            "--station",
            station,
            "--label",
            "S01",
            "--role",
            "supervisor",
        ],
    );
    doorstep_server::store::LogReader {
        device: DeviceId::new(),
        worker: WorkerId::parse(worker.trim()).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_across_three_instances_converge_without_gaps() {
    let Some(url) = postgres_url() else { return };
    let schema = format!("multi_{}", uuid::Uuid::new_v4().simple());
    let station = cli(
        &url,
        &schema,
        &["station", "create", "--name", "石桥镇社工站"],
    )
    .trim()
    .to_owned();
    let auditor = supervisor(&url, &schema, &station);
    // Three instances start together on a fresh schema: migrations must not race.
    let servers: Vec<(Child, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(|| start(&url, &schema))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let urls: Vec<String> = servers.iter().map(|(_, u)| u.clone()).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut devices = Vec::new();
    for (i, label) in ["W01", "W02", "W03"].iter().enumerate() {
        let (store, token) = phone(&url, &schema, &station, &urls[i], dir.path(), label, i).await;
        devices.push((Arc::new(store), token));
    }
    let hh = devices[0]
        .0
        .create_household(&NewHousehold {
            code: "HH-000001".into(),
            ..Default::default()
        })
        .unwrap();
    let t = HttpTransport::new(&urls[0], &devices[0].1, Duration::from_secs(10)).unwrap();
    t.sync(&devices[0].0).await.unwrap();

    // Rounds: every device edits the same household, then all sync at once, each through a
    // different instance than last round.
    let mut expected = Vec::new();
    for round in 0..6 {
        for (i, (store, _)) in devices.iter().enumerate() {
            if store.household(hh).is_err() {
                continue;
            }
            // A set element unique to this device and round (tags are category codes since
            // ADR 0018; phone numbers are free).
            let phone = format!("1390{round:02}{i:04}");
            store
                .edit_household(hh, &HouseholdEdit::AddPhone(phone.clone()))
                .unwrap();
            expected.push(phone);
        }
        let tasks: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(i, (store, token))| {
                let (store, url) = (store.clone(), urls[(i + round) % urls.len()].clone());
                let t = HttpTransport::new(&url, token, Duration::from_secs(20)).unwrap();
                tokio::spawn(async move { t.sync(&store).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    }
    for _ in 0..2 {
        for (i, (store, token)) in devices.iter().enumerate() {
            HttpTransport::new(&urls[i], token, Duration::from_secs(20))
                .unwrap()
                .sync(store)
                .await
                .unwrap();
        }
    }
    let heads = devices[0].0.heads(hh).unwrap();
    let phones = devices[0].0.household(hh).unwrap().phones;
    for (store, _) in &devices {
        assert_eq!(store.heads(hh).unwrap(), heads);
        assert_eq!(
            store.index_dump().unwrap(),
            devices[0].0.index_dump().unwrap()
        );
    }
    assert!(
        expected.len() > 12,
        "devices wrote concurrently: {}",
        expected.len()
    );
    for phone in &expected {
        assert!(phones.contains(phone), "{phone} lost");
    }
    // The log: sequence numbers 1..=N without a gap, each change once. (The blocking
    // PostgreSQL client runs off the async runtime.)
    let station_id = StationId::parse(&station).unwrap();
    let (page, high) = tokio::task::spawn_blocking(move || {
        let pg = PostgresStore::open(&url, Some(&schema), 2).unwrap();
        (
            pg.read_log(station_id, 0, auditor, usize::MAX).unwrap(),
            pg.high_water(station_id).unwrap(),
        )
    })
    .await
    .unwrap();
    let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=high).collect::<Vec<_>>(),
        "gap or duplicate in the log"
    );
    let mut hashes: Vec<Vec<u8>> = page.entries.iter().map(|e| e.bytes.clone()).collect();
    let n = hashes.len();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), n, "a change stored twice");
    for (mut child, _) in servers {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// An erasure made with the CLI on PostgreSQL while two instances serve: the instance that
/// holds the household in its cache must not accept a device's offline edits to it, and
/// every device is told, whichever instance it syncs through (ADR 0016).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_reaches_devices_through_every_instance() {
    let Some(url) = postgres_url() else { return };
    let schema = format!("erase_{}", uuid::Uuid::new_v4().simple());
    let station = cli(&url, &schema, &["station", "create", "--name", "站"])
        .trim()
        .to_owned();
    let auditor = supervisor(&url, &schema, &station);
    let servers = [start(&url, &schema), start(&url, &schema)];
    let urls: Vec<String> = servers.iter().map(|(_, u)| u.clone()).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut devices = Vec::new();
    for (i, label) in ["W01", "W02"].iter().enumerate() {
        let (store, token) = phone(&url, &schema, &station, &urls[i], dir.path(), label, i).await;
        let t = HttpTransport::new(&urls[i], &token, Duration::from_secs(20)).unwrap();
        devices.push((store, t));
    }
    let hh = devices[0]
        .0
        .create_household(&NewHousehold {
            code: "HH-000001".into(),
            ..Default::default()
        })
        .unwrap();
    devices[0].1.sync(&devices[0].0).await.unwrap();
    // W02 receives it through the other instance, which now holds it in its cache.
    devices[1].1.sync(&devices[1].0).await.unwrap();
    assert!(devices[1].0.household(hh).is_ok());
    devices[1]
        .0
        .edit_household(hh, &HouseholdEdit::AddPhone("13900000001".into()))
        .unwrap();

    let data = dir.path().join("ledger");
    std::fs::create_dir(&data).unwrap();
    cli(
        &url,
        &schema,
        &[
            "household",
            "erase",
            "--data",
            data.to_str().unwrap(),
            "--station",
            &station,
            "--household",
            &hh.to_string(),
            "--reason",
            "created-in-error",
        ],
    );
    assert!(std::fs::read_to_string(data.join("erasures.jsonl"))
        .unwrap()
        .contains(&hh.to_string()));
    for (store, transport) in &devices {
        let report = transport.sync(store).await.unwrap();
        assert_eq!(report.erased.len(), 1, "{report:?}");
        assert!(store.household(hh).is_err());
        assert!(store.unsynced_households().unwrap().is_empty());
    }
    // Nothing of it is back on the database: no document, and the offline edit was never
    // appended (every entry of the household is blanked; the erasure's own entry is last).
    let station_id = StationId::parse(&station).unwrap();
    let (doc, erased, page) = tokio::task::spawn_blocking(move || {
        let pg = PostgresStore::open(&url, Some(&schema), 2).unwrap();
        (
            pg.load_document(hh).unwrap(),
            pg.erasure(hh).unwrap(),
            pg.read_log(station_id, 0, auditor, usize::MAX).unwrap(),
        )
    })
    .await
    .unwrap();
    assert!(doc.is_none());
    assert!(erased.is_some());
    assert!(
        page.entries.iter().all(|e| e.doc != hh),
        "{:?}",
        page.entries
    );
    assert_eq!(page.erasures.len(), 1);
    for (mut child, _) in servers {
        let _ = child.kill();
        let _ = child.wait();
    }
}
