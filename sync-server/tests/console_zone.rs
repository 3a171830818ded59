//! A station's time zone (ADR 0028) through real phones and a real server: two stations,
//! one in Beijing time (UTC+08:00, the default) and one set to UTC, each with a phone that
//! records a visit, a need, an inquiry and a contact card at 23:30 UTC on 30 November.
//! Each phone dates its visit by its own local day; the server dates the need, the inquiry
//! and the card by their instant in the station's zone. So the Beijing station counts all
//! of it in December and the UTC station in November — on the report, its CSV and its page,
//! and the case file shows each station's local time. Moving the Beijing station to UTC
//! (what `station timezone` does: set, then rebuild) moves its need, inquiry and card to
//! November; its visit stays on the day the worker recorded.
#![allow(clippy::unwrap_used)]

mod console_support;

use std::sync::Arc;
use std::time::Duration;

use console_support::client::Browser;
use doorstep_core::transport::{enroll, HttpTransport};
use doorstep_core::*;
use doorstep_server::console::report::{monthly, Month, Report};
use doorstep_server::console::{auth, read_model, ConsoleConfig};
use doorstep_server::station_time::UtcOffset;
use doorstep_server::store::console::ConsoleStore;
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, ServerConfig, SqliteStore};

/// 2026-11-30T23:30:00Z: 1 December 07:30 in Beijing.
const NOV_30_2330_UTC: i64 = 1_796_081_400_000;
const PASSWORD: &str = "correct horse battery";

/// A station whose phone records a visit (dated `visit_day`, the phone's local day), a
/// need, an inquiry and a card, all at [`NOV_30_2330_UTC`], and syncs. Returns the
/// station and the household.
async fn station_with_a_late_visit(
    store: &Arc<SqliteStore>,
    url: &str,
    dir: &std::path::Path,
    name: &str,
    zone: Option<UtcOffset>,
    visit_day: &str,
) -> (StationId, HouseholdId) {
    let station = store.create_station(name, now_ms()).unwrap();
    if let Some(zone) = zone {
        store.set_station_zone(station, zone).unwrap();
    }
    let worker = store.add_worker(station, "W01", now_ms()).unwrap();
    let (_, code) = credentials::enroll_device(store.as_ref(), worker, now_ms()).unwrap();
    let e = enroll(url, &code).await.unwrap();
    let batch = doorstep_server::cards::add_batch(store.as_ref(), station, "HG", 1, 100).unwrap();
    doorstep_server::cards::add_lease(store.as_ref(), station, batch, 1, 10, e.device, None)
        .unwrap();
    let mut options = StoreOptions::new(
        dir.join(format!("{station}.db")),
        StoreKey::Raw([7; 32]),
        e.worker,
        e.station,
    );
    options.device = Some(e.device);
    options.clock = Arc::new(|| Timestamp(NOV_30_2330_UTC));
    let phone = Store::open(options).unwrap();
    let t = HttpTransport::new(url, &e.token, Duration::from_secs(30)).unwrap();
    t.sync(&phone).await.unwrap();
    let hh = phone
        .create_household(&NewHousehold {
            code: "HH-000001".into(),
            village: "石桥村".into(),
            ..Default::default()
        })
        .unwrap();
    let visit = phone
        .start_visit(
            hh,
            &NewVisit {
                kind: VisitKind::Home,
                date: Date::parse(visit_day).unwrap(),
                started_at: Timestamp(NOV_30_2330_UTC),
                gps: None,
                other_workers: vec![],
                present: vec![],
                companions: vec![],
            },
        )
        .unwrap();
    phone
        .add_need(
            hh,
            &NewNeed {
                category: "医疗救助".into(),
                description: String::new(),
                person: None,
                visit: Some(visit),
            },
        )
        .unwrap();
    phone
        .add_inquiry(
            hh,
            &NewInquiry {
                question: "补助如何申请？".into(),
                topic: "补贴政策".into(),
                answer: None,
                visit: Some(visit),
            },
        )
        .unwrap();
    let card = NewCard {
        serial: CardSerial::new("HG", 1).unwrap().to_string(),
        visit: Some(visit),
        person: None,
        replaces: None,
        outside_lease: false,
    };
    phone
        .issue_card(hh, &card, Date::parse(visit_day).unwrap())
        .unwrap();
    t.sync(&phone).await.unwrap();
    (station, hh)
}

/// (visits, needs raised, inquiries, cards issued) of a report.
fn counts(r: &Report) -> (u64, u64, u64, u64) {
    (r.visits, r.needs_raised, r.inquiries, r.cards_issued)
}

fn report(store: &SqliteStore, station: StationId, month: &str) -> (u64, u64, u64, u64) {
    let today = Date::parse("2027-01-15").unwrap();
    counts(&monthly(store, station, Month::parse(month).unwrap(), today).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stations_time_zone_decides_its_months_and_its_dates() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("server")).unwrap());
    let config = ServerConfig {
        console: Some(ConsoleConfig {
            secure_cookies: false,
            ..ConsoleConfig::default()
        }),
        ..ServerConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = doorstep_server::serve(store.clone(), listener, config)
        .await
        .unwrap();
    let url = server.url();
    let (beijing, bj_household) =
        station_with_a_late_visit(&store, &url, dir.path(), "东八区站", None, "2026-12-01").await;
    let (utc, utc_household) = station_with_a_late_visit(
        &store,
        &url,
        dir.path(),
        "UTC站",
        Some(UtcOffset::UTC),
        "2026-11-30",
    )
    .await;
    assert_eq!(store.station_zone(beijing).unwrap(), UtcOffset::BEIJING);

    // Counted as the read model was kept at each accepted push.
    assert_eq!(report(&store, beijing, "2026-11"), (0, 0, 0, 0));
    assert_eq!(report(&store, beijing, "2026-12"), (1, 1, 1, 1));
    assert_eq!(report(&store, utc, "2026-11"), (1, 1, 1, 1));
    assert_eq!(report(&store, utc, "2026-12"), (0, 0, 0, 0));

    // The console's pages and exports say the same, and show each station's local time.
    for (station, household, login, month, local) in [
        (
            beijing,
            bj_household,
            "bj.supervisor",
            "2026-12",
            "2026-12-01 07:30",
        ),
        (
            utc,
            utc_household,
            "utc.supervisor",
            "2026-11",
            "2026-11-30 23:30",
        ),
    ] {
        auth::add_account(store.as_ref(), station, login, PASSWORD, now_ms()).unwrap();
        let mut b = Browser::new(url.clone());
        assert_eq!(b.login(login, PASSWORD).await.0, 303);
        let (status, page, _) = b.get(&format!("/console/households/{household}")).await;
        assert_eq!(status, 200);
        assert!(page.contains(local), "{login}: {local} on the case file");
        let (status, page, _) = b.get(&format!("/console/report?month={month}")).await;
        assert_eq!(status, 200);
        let zone = store.station_zone(station).unwrap().to_string();
        assert!(
            page.contains(&format!("<span class=\"zone\">{zone}</span>")),
            "{zone}"
        );
        let (status, csv, _) = b.get(&format!("/console/report.csv?month={month}")).await;
        assert_eq!(status, 200);
        for row in [
            "visits,total,1",
            "needs_raised,total,1",
            "inquiries,total,1",
            "cards_issued,total,1",
        ] {
            assert!(csv.contains(row), "{login} {month}: {row} in {csv}");
        }
    }

    // The Beijing station moves to UTC: its need, inquiry and card were recorded on
    // 30 November there; the visit stays on the day its worker recorded. The case file
    // shows UTC from the next page on.
    store.set_station_zone(beijing, UtcOffset::UTC).unwrap();
    let r = read_model::rebuild(store.as_ref(), beijing).unwrap();
    assert_eq!(r.documents, 1);
    assert_eq!(report(&store, beijing, "2026-11"), (0, 1, 1, 1));
    assert_eq!(report(&store, beijing, "2026-12"), (1, 0, 0, 0));
    let mut b = Browser::new(url.clone());
    assert_eq!(b.login("bj.supervisor", PASSWORD).await.0, 303);
    let (_, page, _) = b.get(&format!("/console/households/{bj_household}")).await;
    assert!(page.contains("2026-11-30 23:30") && !page.contains("2026-12-01 07:30"));
    server.shutdown().await;
}
