//! The real `doorstep-server` binary, set up through its admin CLI, killed with SIGKILL
//! while devices sync, and restarted on the same data: nothing a device had acknowledged
//! is lost, and everything converges.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use doorstep_core::transport::{enroll, HttpTransport};
use doorstep_core::*;

const BIN: &str = env!("CARGO_BIN_EXE_doorstep-server");

/// The binary, with the key of its (encrypted) database in an environment variable.
fn bin() -> Command {
    let mut c = Command::new(BIN);
    c.env("DOORSTEP_KEY_ENV", "DOORSTEP_KILL_TEST_KEY")
        .env("DOORSTEP_KILL_TEST_KEY", "5e".repeat(32));
    c
}

fn cli(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(data: &str, port: u16) -> Child {
    let mut child = bin()
        .args([
            "serve",
            "--data",
            data,
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
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start");
}

async fn device(
    url: &str,
    code: &str,
    dir: &std::path::Path,
    name: &str,
) -> (Store, HttpTransport) {
    let e = enroll(url, code).await.unwrap();
    let mut options =
        StoreOptions::new(dir.join(name), StoreKey::Raw([9; 32]), e.worker, e.station);
    // The enrolled device id: the server checks every change's provenance against it.
    options.device = Some(e.device);
    let store = Store::open(options).unwrap();
    (
        store,
        HttpTransport::new(url, &e.token, Duration::from_secs(5)).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_session_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let station = cli(&[
        "station",
        "create",
        "--data",
        data,
        "--name",
        "石桥镇社工站",
    ])
    .trim()
    .to_owned();
    let codes = enroll_two_workers(data, &station);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start(data, port);
    let (a, ta) = device(&url, &codes[0], dir.path(), "a.db").await;
    let a = Arc::new(a);
    let (b, tb) = device(&url, &codes[1], dir.path(), "b.db").await;
    let hh = a
        .create_household(&NewHousehold {
            code: "HH-000001".into(),
            ..Default::default()
        })
        .unwrap();
    let new_visit = NewVisit {
        kind: VisitKind::Home,
        date: Date::parse("2026-11-29").unwrap(),
        started_at: Timestamp::now(),
        gps: None,
        other_workers: vec![],
        present: vec![],
        companions: vec![],
    };
    let v = a.start_visit(hh, &new_visit).unwrap();
    ta.sync(&a).await.unwrap();

    let mut typed = String::new();
    for round in 0..12u64 {
        let piece = format!("第{round}段。");
        a.splice_section(hh, v, Section::Concerns, typed.chars().count(), 0, &piece)
            .unwrap();
        typed.push_str(&piece);
        let in_flight = tokio::spawn({
            let (ta, a) = (ta.clone(), a.clone());
            async move { ta.sync(&a).await }
        });
        if round % 3 == 1 {
            // Kill with the request possibly in flight; restart on the same data.
            tokio::time::sleep(Duration::from_millis(round % 7)).await;
            server.kill().unwrap();
            server.wait().unwrap();
            server = start(data, port);
        }
        let _ = in_flight.await.unwrap(); // may fail if the kill hit it: the retry below follows
        let mut tries = 0;
        while !a.unsynced_households().unwrap().is_empty() {
            tries += 1;
            assert!(tries < 50, "outbox stuck after round {round}");
            let _ = ta.sync(&a).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tb.sync(&b).await.unwrap();
    let text = b
        .household(hh)
        .unwrap()
        .visits
        .iter()
        .find(|x| x.id == v)
        .unwrap()
        .section(Section::Concerns)
        .to_owned();
    assert_eq!(text, typed);
    assert_eq!(a.heads(hh).unwrap(), b.heads(hh).unwrap());
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Devices of several stations sync at once (their commits are grouped into shared
/// transactions, ADR 0009) while the server is killed with SIGKILL: a device is never told
/// its push is stored unless the shared COMMIT happened, so whatever a device stopped
/// re-sending reaches its station's other device after the restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_while_stations_sync_at_once_loses_nothing_acknowledged() {
    const STATIONS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    // Per station: a device that types, and one that reads at the end.
    let mut codes = Vec::new();
    for s in 0..STATIONS {
        let station = cli(&[
            "station",
            "create",
            "--data",
            data,
            "--name",
            &format!("站{s}"),
        ])
        .trim()
        .to_owned();
        codes.push(enroll_two_workers(data, &station));
    }
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start(data, port);
    let new_visit = NewVisit {
        kind: VisitKind::Home,
        date: Date::parse("2026-11-29").unwrap(),
        started_at: Timestamp::now(),
        gps: None,
        other_workers: vec![],
        present: vec![],
        companions: vec![],
    };
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for (s, pair) in codes.iter().enumerate() {
        let (w, tw) = device(&url, &pair[0], dir.path(), &format!("w{s}.db")).await;
        let hh = w
            .create_household(&NewHousehold {
                code: format!("HH-{s:06}"),
                ..Default::default()
            })
            .unwrap();
        let v = w.start_visit(hh, &new_visit).unwrap();
        tw.sync(&w).await.unwrap();
        writers.push((Arc::new(w), tw, hh, v, String::new()));
        readers.push(device(&url, &pair[1], dir.path(), &format!("r{s}.db")).await);
    }

    for round in 0..10u64 {
        let mut in_flight = Vec::new();
        for (w, tw, hh, v, typed) in &mut writers {
            let piece = format!("第{round}段。");
            w.splice_section(*hh, *v, Section::Concerns, typed.chars().count(), 0, &piece)
                .unwrap();
            typed.push_str(&piece);
            let (w, tw) = (w.clone(), tw.clone());
            in_flight.push(tokio::spawn(async move { tw.sync(&w).await }));
        }
        if round % 3 == 1 {
            tokio::time::sleep(Duration::from_millis(round % 5)).await;
            server.kill().unwrap();
            server.wait().unwrap();
            server = start(data, port);
        }
        for f in in_flight {
            let _ = f.await.unwrap(); // a sync the kill hit fails: retried below
        }
        for (w, tw, ..) in &writers {
            let mut tries = 0;
            while !w.unsynced_households().unwrap().is_empty() {
                tries += 1;
                assert!(tries < 50, "outbox stuck after round {round}");
                let _ = tw.sync(w).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    for ((w, _, hh, v, typed), (r, tr)) in writers.iter().zip(&readers) {
        tr.sync(r).await.unwrap();
        let text = r
            .household(*hh)
            .unwrap()
            .visits
            .iter()
            .find(|x| x.id == *v)
            .unwrap()
            .section(Section::Concerns)
            .to_owned();
        assert_eq!(&text, typed);
        assert_eq!(w.heads(*hh).unwrap(), r.heads(*hh).unwrap());
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Two workers (W01, W02) of `station`, each with a device waiting for its one-time code:
/// the codes, in that order (through the admin CLI, as an admin would).
fn enroll_two_workers(data: &str, station: &str) -> Vec<String> {
    let mut codes = Vec::new();
    for label in ["W01", "W02"] {
        let worker = cli(&[
            "worker",
            "add",
            "--data",
            data,
            "--station",
            station,
            "--label",
            label,
            // They share a caseload: each sees what the other writes.
            "--team",
            "station",
        ])
        .trim()
        .to_owned();
        let out = cli(&["device", "enroll", "--data", data, "--worker", &worker]);
        codes.push(
            out.lines()
                .find_map(|l| l.strip_prefix("code"))
                .unwrap()
                .trim()
                .to_owned(),
        );
    }
    codes
}
