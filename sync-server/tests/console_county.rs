//! A county account in the console (issue 16, ADR 0020), over HTTP against a real server on
//! 127.0.0.1 with real phones in three stations: it reads the two stations granted to it
//! (dashboard, households, case files, conflicts, follow-ups, the report, exports, the access
//! log) under `/console/s/{station}`; a third station answers exactly like a station that
//! does not exist; every write route is refused with `403` and changes nothing; each read is
//! in the access log of the station read, with its account; a supervisor's console is as it
//! was; a station taken back is gone at the next page.
#![allow(clippy::unwrap_used)]

mod console_support;

use console_support::client::Browser;
use console_support::*;
use doorstep_core::StationId;
use doorstep_server::store::console::{Accessor, AccountId, ConsoleStore};
use doorstep_server::store::ServerStore;

const COUNTY: &str = "wang.county";

/// What the station's state is, as far as any console write could change it.
#[derive(Debug, PartialEq)]
struct Written {
    log: u64,
    assignment: Option<doorstep_server::store::Assignment>,
    devices: Vec<(String, Option<i64>)>,
    workers: usize,
    conflicts: u64,
}

fn written(st: &Station, station: StationId) -> Written {
    let s = st.store.as_ref();
    Written {
        log: s.high_water(station).unwrap(),
        assignment: s.assignment(st.quiet).unwrap(),
        devices: s
            .station_devices(station, 0)
            .unwrap()
            .into_iter()
            .map(|d| (d.device.to_string(), d.revoked_at))
            .collect(),
        workers: s.worker_labels(station).unwrap().len(),
        conflicts: s
            .households(
                station,
                &doorstep_server::store::console::HouseholdFilter {
                    limit: 1000,
                    ..Default::default()
                },
            )
            .unwrap()
            .iter()
            .map(|h| h.conflicts)
            .sum(),
    }
}

/// The console reads of an account in a station's access log: (what, target).
fn reads_of(st: &Station, station: StationId, account: AccountId) -> Vec<(String, String)> {
    st.store
        .accesses(station, None, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| matches!(&e.by, Accessor::Console { account: a, .. } if *a == account))
        .map(|e| (e.what, e.target.unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_account_reads_its_stations_only_and_writes_nothing() {
    let st = station(false).await;
    let a = st.station;
    let (b, b_household) = another_station(&st, "河口镇社工站", "HK-000001", "赵大山").await;
    let (c, c_household) = another_station(&st, "青山镇社工站", "QS-000001", "钱小河").await;
    let county = doorstep_server::console::auth::add_county_account(
        st.store.as_ref(),
        COUNTY,
        PASSWORD,
        &[a, b],
        doorstep_server::now_ms(),
    )
    .unwrap();

    let mut browser = Browser::new(st.url());
    let (status, _, set) = browser.login(COUNTY, PASSWORD).await;
    assert_eq!(status, 303, "{set:?}");

    // Without a station chosen: to the list of its stations, which names A and B, not C.
    let (status, _, headers) = browser.get("/console").await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/console/stations");
    let (status, _, headers) = browser.get("/console/households").await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/console/stations");
    let (status, page, _) = browser.get("/console/stations").await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("href=\"/console/s/{a}\"")), "{page}");
    assert!(page.contains(&format!("href=\"/console/s/{b}\"")), "{page}");
    assert!(page.contains("石桥镇社工站") && page.contains("河口镇社工站"));
    assert!(!page.contains("青山镇社工站") && !page.contains(&c.to_string()));

    // Station A: every page a supervisor reads, links kept under the station's prefix, no
    // form that writes.
    let base = format!("/console/s/{a}");
    let contested = st.contested.to_string();
    let (status, page, _) = browser.get(&base).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("石桥镇社工站") && page.contains("id=\"read-only\""));
    assert!(
        page.contains(&format!("href=\"{base}/households\"")),
        "{page}"
    );
    let (status, page, _) = browser.get(&format!("{base}/households")).await;
    assert_eq!(status, 200);
    assert!(page.contains("HH-000001") && page.contains("HH-000002"));
    assert!(page.contains(&format!("href=\"{base}/households/{contested}\"")));
    assert!(!page.contains("HK-000001"), "another station's household");
    let (status, page, _) = browser.get(&format!("{base}/households/{contested}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("王小明") && page.contains("汪晓明"), "{page}");
    assert!(page.contains("110***********1234") && !page.contains(ID_NUMBER));
    assert!(!page.contains("/assign\""), "no assignment form: {page}");
    let (status, page, _) = browser.get(&format!("{base}/conflicts")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("王小明") && !page.contains("conflicts/resolve"),
        "{page}"
    );
    let (status, page, _) = browser.get(&format!("{base}/follow-ups")).await;
    assert_eq!(status, 200);
    assert!(page.contains("送医疗救助申请表"), "{page}");
    let (status, page, _) = browser.get(&format!("{base}/report?month=2026-11")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("href=\"{base}/report.csv?month=2026-11\"")),
        "{page}"
    );
    let (status, csv, _) = browser.get(&format!("{base}/export/households.csv")).await;
    assert_eq!(status, 200);
    assert!(
        csv.contains("HH-000001") && !csv.contains("HK-000001"),
        "{csv}"
    );
    let (status, csv, _) = browser
        .get(&format!("{base}/export/visits.csv?month=2026-11"))
        .await;
    assert_eq!(status, 200);
    assert!(csv.contains("HH-000002"), "{csv}");
    let (status, csv, _) = browser
        .get(&format!("{base}/report.csv?month=2026-11"))
        .await;
    assert_eq!(status, 200);
    assert!(csv.contains("section,item,count"), "{csv}");
    for (path, form) in [("devices", "devices/enroll"), ("cards", "cards/batches")] {
        let (status, page, _) = browser.get(&format!("{base}/{path}")).await;
        assert_eq!(status, 200);
        assert!(!page.contains(form), "{path} without its forms: {page}");
    }

    // Station B likewise; B's prefix never reaches A's households.
    let base_b = format!("/console/s/{b}");
    let (status, page, _) = browser.get(&base_b).await;
    assert_eq!(status, 200);
    assert!(page.contains("河口镇社工站"));
    let (status, page, _) = browser.get(&format!("{base_b}/households")).await;
    assert_eq!(status, 200);
    assert!(page.contains("HK-000001") && !page.contains("HH-000001"));
    let (status, page, _) = browser
        .get(&format!("{base_b}/households/{b_household}"))
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("赵大山"), "{page}");
    let (status, body, _) = browser
        .get(&format!("{base_b}/households/{contested}"))
        .await;
    assert_eq!((status, body.as_str()), (404, "not found\n"));

    // Station C, not granted, answers exactly like a station that does not exist: same
    // status, same body, same type, for every page — and C's household by any prefix.
    let unknown = StationId::new();
    let c_hh = c_household.to_string();
    for path in [
        "".to_owned(),
        "/".to_owned(),
        "/households".to_owned(),
        format!("/households/{c_hh}"),
        format!("/households/{c_hh}/history?field=household::code"),
        "/conflicts".to_owned(),
        "/follow-ups".to_owned(),
        "/report?month=2026-11".to_owned(),
        "/report.csv".to_owned(),
        "/export/households.csv".to_owned(),
        "/export/visits.xlsx?month=2026-11".to_owned(),
        "/devices".to_owned(),
        "/cards".to_owned(),
        "/erasures".to_owned(),
        format!("/access?household={c_hh}"),
    ] {
        let (s1, b1, h1) = browser.get(&format!("/console/s/{c}{path}")).await;
        let (s2, b2, h2) = browser.get(&format!("/console/s/{unknown}{path}")).await;
        assert_eq!((s1, &b1), (s2, &b2), "{path}");
        assert_eq!(h1.get("content-type"), h2.get("content-type"), "{path}");
        assert_eq!((s1, b1.as_str()), (404, "not found\n"), "{path}");
    }
    let (status, _, _) = browser.get(&format!("{base}/households/{c_hh}")).await;
    assert_eq!(status, 404, "C's household under A's prefix");
    let (status, body, _) = browser.get("/console/s/not-a-station/households").await;
    assert_eq!((status, body.as_str()), (404, "not found\n"));

    // Every write route, with its own valid CSRF token, refused: 403 with a reason and no
    // personal data, under A's prefix and without one; under C's, not found. Nothing changed.
    let (_, page, _) = browser.get(&base).await;
    let csrf = Browser::csrf_of(&page);
    let worker = st.devices[2].1.worker().to_string();
    let device = st.store.station_devices(a, 0).unwrap()[0]
        .device
        .to_string();
    let writes: Vec<(String, Vec<(&str, String)>)> = vec![
        (
            "conflicts/resolve".into(),
            vec![
                ("doc", contested.clone()),
                ("field", "person:x:name".into()),
                ("chosen", "0".into()),
            ],
        ),
        (
            format!("households/{}/assign", st.quiet),
            vec![("worker", worker.clone()), ("team", String::new())],
        ),
        ("devices/enroll".into(), vec![("worker", worker.clone())]),
        ("devices/revoke".into(), vec![("device", device.clone())]),
        ("workers".into(), vec![("label", "W99".into())]),
        (
            "cards/batches".into(),
            vec![
                ("prefix", "HG".into()),
                ("first", "1".into()),
                ("last", "100".into()),
            ],
        ),
        (
            "cards/leases".into(),
            vec![
                ("batch", uuid::Uuid::new_v4().to_string()),
                ("device", device.clone()),
                ("first", "1".into()),
                ("last", "10".into()),
            ],
        ),
        (
            "cards/return".into(),
            vec![("lease", uuid::Uuid::new_v4().to_string())],
        ),
    ];
    // Every POST route of the console but logging in and out is in the list above.
    let routes = include_str!("../src/console/mod.rs");
    let posts = routes.matches("post(pages::").count();
    assert_eq!(
        posts - 2,
        writes.len(),
        "a console write route is not tested here"
    );
    let before_a = written(&st, a);
    let before_b = written(&st, b);
    for (path, fields) in &writes {
        let mut pairs: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        pairs.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
        for prefix in [base.as_str(), "/console", base_b.as_str()] {
            let (status, body, _) = browser
                .post(&format!("{prefix}/{path}"), form(&pairs))
                .await;
            assert_eq!(status, 403, "{prefix}/{path}: {body}");
            assert!(body.contains("county account reads only"), "{body}");
            for private in ["王小明", "汪晓明", ID_NUMBER, "HH-0000", "W03"] {
                assert!(!body.contains(private), "{path}: {body}");
            }
        }
        let (status, body, _) = browser
            .post(&format!("/console/s/{c}/{path}"), form(&pairs))
            .await;
        let (s2, b2, _) = browser
            .post(&format!("/console/s/{unknown}/{path}"), form(&pairs))
            .await;
        assert_eq!((status, &body), (s2, &b2), "{path}");
        assert_eq!(status, 404, "{path}");
    }
    assert_eq!(
        written(&st, a),
        before_a,
        "a county account changed station A"
    );
    assert_eq!(
        written(&st, b),
        before_b,
        "a county account changed station B"
    );

    // Its reads are in the access log of the station read, with its account id; none in C.
    let in_a = reads_of(&st, a, county);
    for expected in [
        ("dashboard", ""),
        ("households", ""),
        ("household", contested.as_str()),
        ("conflicts", ""),
        ("follow_ups", ""),
        ("report", "2026-11"),
        ("export_households_csv", ""),
        ("export_visits_csv", "2026-11"),
        ("export_report_csv", "2026-11"),
        ("devices", ""),
        ("cards", ""),
    ] {
        assert!(
            in_a.iter()
                .any(|(w, t)| (w.as_str(), t.as_str()) == expected),
            "{expected:?} not in {in_a:?}"
        );
    }
    let in_b = reads_of(&st, b, county);
    assert!(
        in_b.contains(&("household".into(), b_household.to_string())),
        "{in_b:?}"
    );
    assert!(
        !in_b.iter().any(|(_, t)| *t == contested),
        "A's read logged in B"
    );
    assert!(reads_of(&st, c, county).is_empty());
    // What `household accesses` prints: the county's read of the case file among them.
    let of_case = st.store.accesses(a, Some(st.contested), 100).unwrap();
    assert!(of_case.iter().any(|e| e.by
        == Accessor::Console {
            account: county,
            login: COUNTY.into()
        }
        && e.what == "household"));

    // The supervisor's console is as it was: her pages unprefixed, her access log names the
    // county account, another station not found, and her writes still work.
    let mut supervisor = Browser::new(st.url());
    let (status, _, _) = supervisor.login(LOGIN, PASSWORD).await;
    assert_eq!(status, 303);
    let (status, page, _) = supervisor.get("/console").await;
    assert_eq!(status, 200);
    assert!(page.contains("href=\"/console/households\"") && !page.contains("id=\"read-only\""));
    let (status, page, _) = supervisor
        .get(&format!("/console/households/{contested}"))
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("/assign\""), "the assignment form is there");
    let (status, page, _) = supervisor.get("/console/conflicts").await;
    assert_eq!(status, 200);
    assert!(page.contains("action=\"/console/conflicts/resolve\""));
    let (_, page, _) = supervisor.get("/console/access").await;
    assert!(page.contains(COUNTY), "the county account's reads: {page}");
    let (status, body, _) = supervisor.get(&format!("/console/s/{b}")).await;
    assert_eq!((status, body.as_str()), (404, "not found\n"));
    let (status, _, _) = supervisor.get(&format!("/console/s/{a}/households")).await;
    assert_eq!(status, 200, "her own station by its prefix too");
    let (_, page, _) = supervisor.get("/console").await;
    let token = Browser::csrf_of(&page);
    let (status, _, _) = supervisor
        .post(
            "/console/workers",
            form(&[("csrf", &token), ("label", "W04")]),
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(written(&st, a).workers, before_a.workers + 1);

    // B taken back: its next page is not found, like an unknown station's.
    assert!(st.store.revoke_station(county, b).unwrap());
    let (s1, b1, _) = browser.get(&base_b).await;
    let (s2, b2, _) = browser.get(&format!("/console/s/{unknown}")).await;
    assert_eq!((s1, &b1), (s2, &b2));
    assert_eq!(s1, 404);
    let (status, page, _) = browser.get(&base).await;
    assert_eq!(status, 200, "A still granted");

    // It signs out like anyone (its token checked); then every page asks for a login.
    let token = Browser::csrf_of(&page);
    let (status, _, _) = browser
        .post("/console/logout", form(&[("csrf", "forged")]))
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = browser
        .post("/console/logout", form(&[("csrf", &token)]))
        .await;
    assert_eq!(status, 303);
    let (status, _, headers) = browser.get(&base).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/console/login");
}

/// The PostgreSQL test database (`DOORSTEP_TEST_POSTGRES`), or `None` outside CI when none is
/// configured.
fn postgres_url() -> Option<String> {
    match std::env::var("DOORSTEP_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("DOORSTEP_TEST_POSTGRES must be set in CI (eval \"$(scripts/postgres.sh)\")")
        }
        _ => {
            eprintln!("DOORSTEP_TEST_POSTGRES not set: the county console on PostgreSQL skipped");
            None
        }
    }
}

/// The same promises on PostgreSQL: a real server on 127.0.0.1 over a fresh schema, three
/// stations (without phones), a supervisor and a county account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_account_on_postgresql() {
    use doorstep_server::console::ConsoleConfig;
    use doorstep_server::store::postgres::PostgresStore;
    use doorstep_server::{now_ms, ServerConfig};
    use std::sync::Arc;

    let Some(url) = postgres_url() else { return };
    // The blocking PostgreSQL client runs off the async runtime.
    async fn off<T: Send + 'static>(
        store: &Arc<PostgresStore>,
        f: impl FnOnce(&PostgresStore) -> T + Send + 'static,
    ) -> T {
        let store = store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .unwrap()
    }
    let (store, a, b, c, county) = tokio::task::spawn_blocking(move || {
        let schema = format!("county_{}", uuid::Uuid::new_v4().simple());
        let store = Arc::new(PostgresStore::open(&url, Some(&schema), 4).unwrap());
        let a = store.create_station("石桥镇社工站", now_ms()).unwrap();
        let b = store.create_station("河口镇社工站", now_ms()).unwrap();
        let c = store.create_station("青山镇社工站", now_ms()).unwrap();
        store.add_worker(a, "W01", now_ms()).unwrap();
        doorstep_server::console::auth::add_account(store.as_ref(), a, LOGIN, PASSWORD, now_ms())
            .unwrap();
        let county = doorstep_server::console::auth::add_county_account(
            store.as_ref(),
            COUNTY,
            PASSWORD,
            &[a, b],
            now_ms(),
        )
        .unwrap();
        (store, a, b, c, county)
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        console: Some(ConsoleConfig {
            secure_cookies: false,
            ..ConsoleConfig::default()
        }),
        ..ServerConfig::default()
    };
    let server = doorstep_server::serve(store.clone(), listener, config)
        .await
        .unwrap();

    let mut browser = Browser::new(server.url());
    assert_eq!(browser.login(COUNTY, PASSWORD).await.0, 303);
    let (_, page, _) = browser.get("/console/stations").await;
    assert!(page.contains("石桥镇社工站") && page.contains("河口镇社工站"));
    assert!(!page.contains("青山镇社工站"));
    for station in [a, b] {
        for path in [
            "",
            "/households",
            "/report.csv?month=2026-11",
            "/export/households.csv",
        ] {
            let (status, body, _) = browser.get(&format!("/console/s/{station}{path}")).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
    }
    let unknown = StationId::new();
    for path in ["", "/households", "/report.csv", "/access"] {
        let (s1, b1, _) = browser.get(&format!("/console/s/{c}{path}")).await;
        let (s2, b2, _) = browser.get(&format!("/console/s/{unknown}{path}")).await;
        assert_eq!((s1, &b1), (s2, &b2), "{path}");
        assert_eq!(s1, 404);
    }
    let (_, page, _) = browser.get(&format!("/console/s/{a}")).await;
    let csrf = Browser::csrf_of(&page);
    let (status, body, _) = browser
        .post(
            &format!("/console/s/{a}/workers"),
            form(&[("csrf", &csrf), ("label", "W99")]),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let workers = off(&store, move |s| s.worker_labels(a).unwrap().len()).await;
    assert_eq!(workers, 1, "no worker added");

    let reads: Vec<String> = off(&store, move |s| s.accesses(a, None, 100).unwrap())
        .await
        .into_iter()
        .filter(|e| matches!(&e.by, Accessor::Console { account, .. } if *account == county))
        .map(|e| e.what)
        .collect();
    assert!(reads.contains(&"dashboard".to_owned()), "{reads:?}");
    assert!(
        reads.contains(&"export_households_csv".to_owned()),
        "{reads:?}"
    );
    assert!(off(&store, move |s| s.accesses(c, None, 100).unwrap())
        .await
        .is_empty());

    let mut supervisor = Browser::new(server.url());
    assert_eq!(supervisor.login(LOGIN, PASSWORD).await.0, 303);
    assert_eq!(supervisor.get("/console").await.0, 200);
    assert_eq!(supervisor.get(&format!("/console/s/{b}")).await.0, 404);

    assert!(off(&store, move |s| s.revoke_station(county, b).unwrap()).await);
    assert_eq!(browser.get(&format!("/console/s/{b}")).await.0, 404);
    server.shutdown().await;
    // Its pool's connections close with blocking calls too.
    tokio::task::spawn_blocking(move || drop(store))
        .await
        .unwrap();
}
