//! The cost of erasing a household (issue 15, ADR 0016) and of redacting inside one
//! (ADR 0026), against a real server on 127.0.0.1: a station of `--households` households
//! (three visits each) and two households followed for five years (two visits a month, 120
//! finalised visits with 600-character notes); two phones hold it all. The figures: the
//! server's time to redact one note of the first five-year household (generation, ledger,
//! transaction, search-index merge, WAL truncation) and to erase the second, the bytes each
//! phone downloads to learn of each, each phone's sync time (which includes building and
//! checking the generation, or deleting the household, and vacuuming its store), and the
//! files' sizes before and after.
//!
//! Run: `cargo bench -p doorstep-tests --bench erasure` (`-- --households 2000`). Under
//! `cargo test --all-targets` (no `--bench`) it runs with 20 households and 12 visits as a
//! smoke test.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::Instant;

use doorstep_core::protocol::ErasureReason;
use doorstep_core::*;
use doorstep_tests::TestServer;

fn arg(name: &str, default: usize) -> usize {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn file_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    for suffix in ["", "-wal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    }
    total
}

/// Deterministic filler text (Chinese characters), `n` characters.
fn text(seed: &mut u64, n: usize) -> String {
    (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from_u32(0x4e00 + ((*seed >> 33) % 2000) as u32).unwrap()
        })
        .collect()
}

fn new_visit(date: Date) -> NewVisit {
    NewVisit {
        kind: VisitKind::Home,
        date,
        started_at: Timestamp::now(),
        gps: None,
        other_workers: vec![],
        present: vec![],
        companions: vec![],
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let households = arg("--households", if bench { 500 } else { 20 });
    let long_visits = arg("--visits", if bench { 120 } else { 12 }) as i64;
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    let a = server.device(station, "A01", &url).await;
    let b = server.device(station, "A02", &url).await;
    let mut seed = 7u64;
    let day = Date::parse("2026-11-02").unwrap();
    for i in 0..households {
        let hh = a.new_household(&format!("HH-{i:06}"));
        for k in 0..3 {
            let v = a
                .store
                .start_visit(hh, &new_visit(day.add_days(-k * 30).unwrap()))
                .unwrap();
            a.store
                .splice_section(hh, v, Section::FamilySituation, 0, 0, &text(&mut seed, 200))
                .unwrap();
        }
    }
    let five_years = |code: &str, seed: &mut u64| {
        let long = a.new_household(code);
        let first = Date::parse("2021-12-01").unwrap();
        let mut visits = Vec::new();
        for k in 0..long_visits {
            let v = a
                .store
                .start_visit(long, &new_visit(first.add_days(k * 15).unwrap()))
                .unwrap();
            a.store
                .splice_section(long, v, Section::FamilySituation, 0, 0, &text(seed, 600))
                .unwrap();
            a.store.finalise_visit(long, v).unwrap();
            visits.push(v);
        }
        (long, visits)
    };
    let (redacted, redacted_visits) = five_years("HH-LONG-R", &mut seed);
    let (long, _) = five_years("HH-LONG", &mut seed);
    a.sync().await;
    b.sync().await;

    // A note written on the wrong child: one visit's text of the first household redacted.
    let started = Instant::now();
    let notice = server.redact(
        station,
        redacted,
        &[&format!(
            "visit/{}/family_situation",
            redacted_visits[redacted_visits.len() / 2]
        )],
    );
    let redact_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "redaction of one note of a household with {long_visits} visits ({} KiB as an automerge document): server {redact_ms:.0} ms (generation {}, ledger fsync, transaction, search-index merge, WAL truncation)",
        a.store.export_document(redacted).unwrap().len() / 1024,
        notice.generation
    );
    for d in [&a, &b] {
        let before = file_size(&d.path);
        let started = Instant::now();
        let report = d.sync().await;
        let sync_ms = started.elapsed().as_secs_f64() * 1e3;
        assert_eq!(report.redacted.len(), 1, "{report:?}");
        assert!(report.redacted[0].witnessed);
        println!(
            "{}: downloads {} bytes (uploads {}) in {} round trip(s); sync incl. building and checking the generation and vacuum {sync_ms:.0} ms; store {} -> {} KiB; the household now {} KiB",
            d.label,
            report.bytes_down,
            report.bytes_up,
            report.round_trips,
            before / 1024,
            file_size(&d.path) / 1024,
            d.store.export_document(redacted).unwrap().len() / 1024
        );
    }
    let export = a.store.export_document(long).unwrap().len();
    let server_db = server.dir.path().join("server.db");
    let (server_before, a_before, b_before) = (
        file_size(&server_db),
        file_size(&a.path),
        file_size(&b.path),
    );

    let started = Instant::now();
    server.erase(station, long, ErasureReason::SubjectRequest);
    let erase_ms = started.elapsed().as_secs_f64() * 1e3;
    let server_after = file_size(&server_db);

    let mut lines = Vec::new();
    for d in [&a, &b] {
        let before = if d.label == "A01" { a_before } else { b_before };
        let started = Instant::now();
        let report = d.sync().await;
        let sync_ms = started.elapsed().as_secs_f64() * 1e3;
        assert_eq!(report.erased.len(), 1, "{report:?}");
        assert!(!d.store.household_ids().unwrap().contains(&long));
        lines.push(format!(
            "{}: downloads {} bytes (uploads {}) in {} round trip(s); sync incl. delete and vacuum {sync_ms:.0} ms; store {} -> {} KiB",
            d.label,
            report.bytes_down,
            report.bytes_up,
            report.round_trips,
            before / 1024,
            file_size(&d.path) / 1024
        ));
    }
    println!(
        "erasure of a household with {long_visits} visits ({} KiB as an automerge document) in a station of {} households:",
        export / 1024,
        households + 1
    );
    println!(
        "server: {erase_ms:.0} ms (ledger fsync, transaction, search-index merge, WAL truncation); database + WAL {} -> {} KiB",
        server_before / 1024,
        server_after / 1024
    );
    for l in lines {
        println!("{l}");
    }
    server.stop().await;
}
