//! A station with real devices that synced real case files to a real server on
//! 127.0.0.1, and a supervisor's console account: what the console tests look at.
#![allow(clippy::unwrap_used, dead_code)]

pub mod client;

use std::sync::Arc;
use std::time::Duration;

use doorstep_core::transport::{enroll, HttpTransport};
use doorstep_core::*;
use doorstep_server::api::ServerHandle;
use doorstep_server::console::ConsoleConfig;
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, ServerConfig, SqliteStore};

pub const LOGIN: &str = "zhang.supervisor";
pub const PASSWORD: &str = "correct horse battery";
/// A child's ID number (made up); the console must never show it whole.
pub const ID_NUMBER: &str = "110101201001061234";

pub struct Station {
    pub dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    pub server: ServerHandle,
    pub station: StationId,
    /// HH-000001: two workers wrote the child's name differently (a conflict); notes
    /// mention 心理疏导.
    pub contested: HouseholdId,
    /// HH-000002: a visit about 医疗救助.
    pub quiet: HouseholdId,
    pub devices: Vec<(String, Store, HttpTransport)>,
}

impl Station {
    pub fn url(&self) -> String {
        self.server.url()
    }
}

fn device_key() -> StoreKey {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    k[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    StoreKey::Raw(k)
}

/// Start a server with the console (session cookie `Secure` if `secure_cookies`), enrol W01–W03,
/// record case files offline, sync until every device has everything.
pub async fn station(secure_cookies: bool) -> Station {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("server")).unwrap());
    let station = store.create_station("石桥镇社工站", now_ms()).unwrap();
    let config = ServerConfig {
        console: Some(ConsoleConfig {
            secure_cookies,
            ..ConsoleConfig::default()
        }),
        ..ServerConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = doorstep_server::serve(store.clone(), listener, config)
        .await
        .unwrap();
    let url = server.url();
    let mut devices = Vec::new();
    for label in ["W01", "W02", "W03"] {
        let worker = store.add_worker(station, label, now_ms()).unwrap();
        store
            .set_team(
                worker,
                Some(&doorstep_core::TeamName::new("station").unwrap()),
                now_ms(),
            )
            .unwrap();
        let (_, code) = credentials::enroll_device(store.as_ref(), worker, now_ms()).unwrap();
        let e = enroll(&url, &code).await.unwrap();
        let mut options = StoreOptions::new(
            dir.path().join(format!("{label}.db")),
            device_key(),
            e.worker,
            e.station,
        );
        options.device = Some(e.device);
        let s = Store::open(options).unwrap();
        let t = HttpTransport::new(&url, &e.token, Duration::from_secs(30)).unwrap();
        devices.push((label.to_owned(), s, t));
    }
    let w01 = &devices[0].1;
    let contested = w01
        .create_household(&NewHousehold {
            code: "HH-000001".into(),
            village: "石桥村".into(),
            address: "石桥村1组10号".into(),
            tags: vec!["household.dibao".into()],
            summary: "祖孙二人生活，父母外出务工。".into(),
            ..Default::default()
        })
        .unwrap();
    let child = w01
        .add_person(
            contested,
            &NewPerson {
                categories: vec!["child.unsupported".into()],
                id_number: Some(ID_NUMBER.into()),
                ..NewPerson::named("王晓明", "孙子")
            },
        )
        .unwrap();
    let quiet = w01
        .create_household(&NewHousehold {
            code: "HH-000002".into(),
            village: "柳湾村".into(),
            address: "柳湾村2组11号".into(),
            ..Default::default()
        })
        .unwrap();
    for (_, s, t) in &devices {
        t.sync(s).await.unwrap();
    }
    // Offline: W02 visits the contested household, W01 the quiet one; W01 and W03 write
    // the child's name differently.
    let visit = |s: &Store, hh: HouseholdId| {
        s.start_visit(
            hh,
            &NewVisit {
                kind: VisitKind::Home,
                date: Date::parse("2026-11-29").unwrap(),
                started_at: Timestamp::now(),
                gps: None,
                other_workers: vec![],
                present: vec![],
                companions: vec![],
            },
        )
        .unwrap()
    };
    let w02 = &devices[1].1;
    let v = visit(w02, contested);
    w02.splice_section(
        contested,
        v,
        Section::Concerns,
        0,
        0,
        "孩子近来情绪低落，建议心理疏导。",
    )
    .unwrap();
    w02.splice_section(contested, v, Section::Health, 0, 0, "哮喘，每月复诊。")
        .unwrap();
    let v = visit(w01, quiet);
    w01.splice_section(
        quiet,
        v,
        Section::ActualNeeds,
        0,
        0,
        "需要协助办理医疗救助。",
    )
    .unwrap();
    w01.add_follow_up(
        quiet,
        &NewFollowUp {
            what: "送医疗救助申请表".into(),
            due: Date::parse("2026-11-30").unwrap(),
            assignee: w01.worker(),
            origin_visit: Some(v),
        },
    )
    .unwrap();
    w01.edit_person(contested, child, &PersonEdit::Name("王小明".into()))
        .unwrap();
    devices[2]
        .1
        .edit_person(contested, child, &PersonEdit::Name("汪晓明".into()))
        .unwrap();
    for _ in 0..2 {
        for (_, s, t) in &devices {
            t.sync(s).await.unwrap();
        }
    }
    doorstep_server::console::auth::add_account(store.as_ref(), station, LOGIN, PASSWORD, now_ms())
        .unwrap();
    Station {
        dir,
        store,
        server,
        station,
        contested,
        quiet,
        devices,
    }
}

/// `application/x-www-form-urlencoded` of some pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Another station on the same server: one worker's phone records one household (code
/// `code`, a person named `name`) and syncs it. Returns the station and the household.
pub async fn another_station(
    st: &Station,
    station_name: &str,
    code: &str,
    name: &str,
) -> (StationId, HouseholdId) {
    let store = st.store.as_ref();
    let station = store.create_station(station_name, now_ms()).unwrap();
    let worker = store.add_worker(station, "W01", now_ms()).unwrap();
    let (_, enrol_code) = credentials::enroll_device(store, worker, now_ms()).unwrap();
    let e = enroll(&st.url(), &enrol_code).await.unwrap();
    let mut options = StoreOptions::new(
        st.dir.path().join(format!("{code}.db")),
        device_key(),
        e.worker,
        e.station,
    );
    options.device = Some(e.device);
    let phone = Store::open(options).unwrap();
    let t = HttpTransport::new(&st.url(), &e.token, Duration::from_secs(30)).unwrap();
    let hh = phone
        .create_household(&NewHousehold {
            code: code.into(),
            village: "河口村".into(),
            ..Default::default()
        })
        .unwrap();
    phone
        .add_person(hh, &NewPerson::named(name, "户主"))
        .unwrap();
    t.sync(&phone).await.unwrap();
    (station, hh)
}
