//! Console benchmark: what a supervisor waits for. Not a test: it prints figures.
//!
//! Builds a station of H households (default 2,000: code, village, address, a situation
//! summary of 100 Chinese characters, 1–4 persons, one visit with a note of ~600
//! characters each) and one household with five years of visits (two a month, 120 visits),
//! on a real device store, syncs it to a real server on 127.0.0.1 (so the read model is
//! filled as in the field), then times the console's pages through HTTP with a signed-in
//! session: the household list, Chinese search (2 and 4 characters), the five-year case
//! file, the monthly report and the dashboard. Figures are the time from request to the
//! last byte of the answer on loopback (the server's time plus a loopback round trip).
//!
//! Run: `cargo bench -p doorstep-server --bench console` (`-- --households 200 --runs 20`
//! for a smaller run).

// A benchmark's report is what it prints.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use doorstep_core::transport::{enroll, HttpTransport};
use doorstep_core::*;
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, ServerConfig, SqliteStore};

const CHARS: &str = "老人儿童残疾低保独居家中生活困难父母外出务工奶奶爷爷孙子上学成绩身体健康需要帮助申请医疗救助心理疏导学校老师邻居照顾收入来源政策补助每月按时领取情况稳定关注";
const VILLAGES: [&str; 10] = [
    "石桥村",
    "柳湾村",
    "河口村",
    "东山村",
    "西岭村",
    "南坪村",
    "北坡村",
    "新田村",
    "上寨村",
    "下寨村",
];

/// A small deterministic generator (xorshift), so runs see the same text.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn text(&mut self, len: usize) -> String {
        let chars: Vec<char> = CHARS.chars().collect();
        (0..len).map(|_| chars[self.below(chars.len())]).collect()
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: a small smoke run then,
    // so the test-suite checks the benchmark works without paying for the full station.
    let full = std::env::args().any(|a| a == "--bench");
    let households = arg("--households", if full { 2000 } else { 10 });
    let long_visits = arg("--long-visits", if full { 120 } else { 6 }) as i64;
    let runs = arg("--runs", if full { 50 } else { 2 }).max(1);
    println!(
        "# doorstep-server console benchmark: {}; nproc = {}",
        if cfg!(debug_assertions) {
            "DEBUG build (figures not meaningful)"
        } else {
            "release build (optimised)"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("server")).unwrap());
    let station = store.create_station("石桥镇社工站", now_ms()).unwrap();
    let worker = store.add_worker(station, "W01", now_ms()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        console: Some(doorstep_server::console::ConsoleConfig {
            secure_cookies: false,
            ..doorstep_server::console::ConsoleConfig::default()
        }),
        ..ServerConfig::default()
    };
    let server = doorstep_server::serve(store.clone(), listener, config)
        .await
        .unwrap();
    let url = server.url();
    // A second server on the same database that keeps no case file loaded between pages:
    // the five-year case file as every page view paid for it before `case_files.rs`.
    let cold = doorstep_server::serve(
        store.clone(),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        ServerConfig {
            console: Some(doorstep_server::console::ConsoleConfig {
                secure_cookies: false,
                case_files: 0,
            }),
            ..ServerConfig::default()
        },
    )
    .await
    .unwrap();
    let cold_url = cold.url();
    let (_, code) = credentials::enroll_device(store.as_ref(), worker, now_ms()).unwrap();
    let e = enroll(&url, &code).await.unwrap();
    let mut options = StoreOptions::new(
        dir.path().join("w01.db"),
        StoreKey::Raw([0x5a; 32]),
        e.worker,
        e.station,
    );
    options.device = Some(e.device);
    options.durability = Durability::Relaxed;
    let phone = Store::open(options).unwrap();
    let transport = HttpTransport::new(&url, &e.token, Duration::from_secs(120)).unwrap();

    let started = Instant::now();
    let mut rng = Rng(20250303);
    let date = Date::parse("2026-11-15").unwrap();
    for i in 0..households {
        let village = VILLAGES[i % VILLAGES.len()];
        let hh = phone
            .create_household(&NewHousehold {
                code: format!("HH-{:06}", i + 1),
                village: village.into(),
                address: format!("{village}{}组{}号", i % 9 + 1, i % 50 + 1),
                tags: vec![[
                    "household.dibao",
                    "household.dibao_marginal",
                    "household.poverty_monitoring",
                ][i % 3]
                    .into()],
                summary: rng.text(100),
                ..Default::default()
            })
            .unwrap();
        for p in 0..(1 + rng.below(4)) {
            let name = rng.text(3);
            phone
                .add_person(
                    hh,
                    &NewPerson::named(&name, ["户主", "孙子", "配偶", "女儿"][p]),
                )
                .unwrap();
        }
        let day = date.add_days(-(i as i64 % 28)).unwrap();
        let v = phone.start_visit(hh, &new_visit(day)).unwrap();
        let note = rng.text(600);
        phone
            .splice_section(hh, v, Section::FamilySituation, 0, 0, &note)
            .unwrap();
    }
    // One household followed for five years: two visits a month.
    let long = phone
        .create_household(&NewHousehold {
            code: "HH-LONG".into(),
            village: VILLAGES[0].into(),
            summary: rng.text(100),
            ..Default::default()
        })
        .unwrap();
    let first = Date::parse("2021-12-01").unwrap();
    for k in 0..long_visits {
        let v = phone
            .start_visit(long, &new_visit(first.add_days(k * 15).unwrap()))
            .unwrap();
        let note = rng.text(600);
        phone
            .splice_section(long, v, Section::FamilySituation, 0, 0, &note)
            .unwrap();
        phone.finalise_visit(long, v).unwrap();
    }
    let built = started.elapsed();
    let started = Instant::now();
    for _ in 0..1000 {
        transport.sync(&phone).await.unwrap();
        if phone.unsynced_households().unwrap().is_empty() {
            break;
        }
    }
    let synced = started.elapsed();
    println!(
        "station: {households} households + one with {long_visits} visits; built on the phone in {:.1} s, synced (read model filled) in {:.1} s",
        built.as_secs_f64(),
        synced.as_secs_f64()
    );

    doorstep_server::console::auth::add_account(
        store.as_ref(),
        station,
        "bench",
        "bench-password",
        now_ms(),
    )
    .unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .get(format!("{url}/console/login"))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = login.text().await.unwrap();
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = page[at..].split('"').next().unwrap().to_owned();
    let resp = client
        .post(format!("{url}/console/login"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&login=bench&password=bench-password"))
        .send()
        .await
        .unwrap();
    let session = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    let pages = [
        (
            "case file, 5 years of visits, loaded per view (nothing kept)",
            format!("{cold_url}/console/households/{long}"),
        ),
        ("dashboard", "/console".to_owned()),
        (
            "household list (first 500)",
            "/console/households".to_owned(),
        ),
        (
            "search, 2 characters (补助)",
            "/console/households?q=%E8%A1%A5%E5%8A%A9".to_owned(),
        ),
        (
            "search, 4 characters (心理疏导)",
            "/console/households?q=%E5%BF%83%E7%90%86%E7%96%8F%E5%AF%BC".to_owned(),
        ),
        (
            "case file, 5 years of visits (kept loaded between views)",
            format!("/console/households/{long}"),
        ),
        ("monthly report", "/console/report?month=2026-11".to_owned()),
        (
            "CSV export, all households",
            "/console/export/households.csv".to_owned(),
        ),
    ];
    println!("\n| page | median | p99 | answer |\n|---|---|---|---|");
    for (name, path) in pages {
        let path = if path.starts_with("http") {
            path
        } else {
            format!("{url}{path}")
        };
        let mut times = Vec::with_capacity(runs);
        let mut size = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let resp = client
                .get(&path)
                .header("cookie", &session)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{path}");
            size = resp.bytes().await.unwrap().len();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {} KB |",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            size / 1024
        );
    }

    // The first view after a change (ADR 0033): the phone adds a need to the five-year
    // household and syncs, then the case file is asked once; `runs` times, alternating
    // between the server that keeps the case files of the pushes it accepts and the one that
    // keeps nothing (as every server did before). The sync's time is shown too: keeping a
    // case file costs the push a copy of the document.
    let cold_transport = HttpTransport::new(&cold_url, &e.token, Duration::from_secs(120)).unwrap();
    let servers = [
        ("kept when the change was accepted", &url, &transport),
        ("nothing kept", &cold_url, &cold_transport),
    ];
    let mut views: Vec<Vec<Duration>> = vec![Vec::new(); servers.len()];
    let mut syncs: Vec<Vec<Duration>> = vec![Vec::new(); servers.len()];
    let mut size = 0;
    for k in 0..runs {
        for (i, (_, base, t)) in servers.iter().enumerate() {
            phone
                .add_need(
                    long,
                    &NewNeed {
                        category: "医疗救助".into(),
                        description: format!("第{k}次"),
                        person: None,
                        visit: None,
                    },
                )
                .unwrap();
            let started = Instant::now();
            t.sync(&phone).await.unwrap();
            syncs[i].push(started.elapsed());
            let started = Instant::now();
            let resp = client
                .get(format!("{base}/console/households/{long}"))
                .header("cookie", &session)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            size = resp.bytes().await.unwrap().len();
            views[i].push(started.elapsed());
        }
    }
    println!("\n| after a change to the five-year case file | median | p99 | answer |\n|---|---|---|---|");
    for (i, (name, _, _)) in servers.iter().enumerate() {
        for (what, times) in [
            ("first view", &mut views[i]),
            ("the phone's sync of the change", &mut syncs[i]),
        ] {
            times.sort();
            println!(
                "| {what}, {name} | {:.1} ms | {:.1} ms | {} |",
                percentile(times, 0.5).as_secs_f64() * 1e3,
                percentile(times, 0.99).as_secs_f64() * 1e3,
                if what == "first view" {
                    format!("{} KB", size / 1024)
                } else {
                    "one need".to_owned()
                }
            );
        }
    }
    server.shutdown().await;
    cold.shutdown().await;
}
