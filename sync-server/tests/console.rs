//! The station console over HTTP against a real server on 127.0.0.1 with case files that
//! real devices synced: login (CSRF, cookie attributes, throttling), pages, search in
//! Chinese, provenance, masking, CSV export, logout, the access log, the read model rebuilt.
#![allow(clippy::unwrap_used)]

mod console_support;

use console_support::client::Browser;
use console_support::*;
use doorstep_core::{EntityRef, FieldRef};
use doorstep_server::console::{read_model, resolve};
use doorstep_server::store::console::{ConsoleStore, HouseholdFilter};
use doorstep_server::store::ServerStore;
use reqwest::header;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_reviews_her_station_in_the_console() {
    let st = station(true).await;
    let mut b = Browser::new(st.url());

    // Not signed in: every page sends to the login page.
    let (status, _, headers) = b.get("/console/households").await;
    assert_eq!(status, 303);
    assert_eq!(headers[header::LOCATION], "/console/login");

    // A login without the login form's CSRF token is refused.
    let (status, _, _) = b
        .post(
            "/console/login",
            form(&[("login", LOGIN), ("password", PASSWORD)]),
        )
        .await;
    assert_eq!(status, 403);

    let (status, _, set) = b.login(LOGIN, PASSWORD).await;
    assert_eq!(status, 303, "{set:?}");
    let session = set
        .iter()
        .find(|c| c.starts_with("doorstep_session="))
        .expect("a session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    assert!(set.iter().any(|c| c == "location: /console"));

    // The dashboard counts what the devices synced.
    let (status, page, headers) = b.get("/console").await;
    assert_eq!(status, 200);
    assert!(headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert!(page.contains("石桥镇社工站"), "{page}");
    assert!(
        page.contains("id=\"tile-conflicts\"><span class=\"n\">1</span>"),
        "{page}"
    );
    assert!(
        page.contains("id=\"tile-households\"><span class=\"n\">2</span>"),
        "{page}"
    );
    assert!(
        page.contains("id=\"tile-devices\"><span class=\"n\">3</span>"),
        "three phones in use: {page}"
    );

    // Search in Chinese: a four-character phrase (trigram index) and two characters (scan).
    for q in ["%E5%BF%83%E7%90%86%E7%96%8F%E5%AF%BC", "%E5%BF%83%E7%90%86"] {
        let (status, page, _) = b.get(&format!("/console/households?q={q}")).await;
        assert_eq!(status, 200);
        assert!(page.contains("HH-000001"), "{page}");
        assert!(!page.contains("HH-000002"), "{page}");
    }
    let (_, page, _) = b
        .get("/console/households?q=%E5%8C%BB%E7%96%97%E6%95%91%E5%8A%A9")
        .await;
    assert!(
        page.contains("HH-000002") && !page.contains("HH-000001"),
        "{page}"
    );
    let (_, page, _) = b
        .get("/console/households?q=%E4%B8%8D%E5%AD%98%E5%9C%A8")
        .await;
    assert!(page.contains("id=\"no-results\""), "{page}");
    // Filters.
    let (_, page, _) = b
        .get("/console/households?category=child.unsupported")
        .await;
    assert!(
        page.contains("HH-000001") && !page.contains("HH-000002"),
        "{page}"
    );
    let (_, page, _) = b
        .get("/console/households?village=%E6%9F%B3%E6%B9%BE%E6%9D%91")
        .await;
    assert!(
        page.contains("HH-000002") && !page.contains("HH-000001"),
        "{page}"
    );

    // The case file: who wrote each value of the contested name, the ID number masked.
    let (status, page, _) = b
        .get(&format!("/console/households/{}", st.contested))
        .await;
    assert_eq!(status, 200);
    let name_rows: Vec<&str> = page
        .split("<tr")
        .filter(|r| r.contains("data-field=\"name\""))
        .collect();
    assert_eq!(name_rows.len(), 2, "{page}");
    assert!(
        name_rows
            .iter()
            .any(|r| r.contains("王小明") && r.contains("W01")),
        "{name_rows:?}"
    );
    assert!(
        name_rows
            .iter()
            .any(|r| r.contains("汪晓明") && r.contains("W03")),
        "{name_rows:?}"
    );
    assert!(page.contains("110***********1234"), "{page}");
    assert!(!page.contains(ID_NUMBER));
    assert!(page.contains("建议心理疏导"), "the visit note is shown");
    // Sections are named as a supervisor names them, the later ones too (ADR 0024).
    assert!(
        page.contains("<h4>担忧</h4>") && page.contains("<h4>健康状况</h4>"),
        "{page}"
    );
    assert!(page.contains("哮喘，每月复诊"), "{page}");
    // Each person and visit shows the record id an admin redacts by (ADR 0026).
    assert!(
        page.contains("<p class=\"muted record-id\"") && page.contains(">person&#x2f;"),
        "{page}"
    );

    // A field's history: every value it was given, newest first, earlier ones marked.
    let (_, w01, t01) = &st.devices[0];
    w01.edit_household(
        st.quiet,
        &doorstep_core::HouseholdEdit::Address("柳湾村3组5号".into()),
    )
    .unwrap();
    t01.sync(w01).await.unwrap();
    let (status, page, _) = b
        .get(&format!(
            "/console/households/{}/history?field=household::address",
            st.quiet
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    let rows: Vec<&str> = page.split("<tr class=").skip(1).collect();
    assert_eq!(rows.len(), 2, "{page}");
    assert!(
        rows[0].starts_with("\"current\"")
            && rows[0].contains("柳湾村3组5号")
            && rows[0].contains("W01"),
        "{page}"
    );
    assert!(
        rows[1].starts_with("\"earlier\"") && rows[1].contains("柳湾村2组11号"),
        "{page}"
    );
    let (status, _, _) = b
        .get(&format!(
            "/console/households/{}/history?field=household::nope",
            st.quiet
        ))
        .await;
    assert_eq!(status, 400);

    // Another station's household or a malformed id: not found.
    let (status, _, _) = b
        .get(&format!("/console/households/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = b.get("/console/households/not-an-id").await;
    assert_eq!(status, 404);

    // Conflicts and follow-ups.
    let (_, page, _) = b.get("/console/conflicts").await;
    assert!(page.contains("王小明") && page.contains("汪晓明"), "{page}");
    let csrf = Browser::csrf_of(&page);
    let w02 = &st.devices[1].1;
    let child = w02.household(st.contested).unwrap().persons[0].id;
    let path = resolve::field_path(&FieldRef::new(EntityRef::Person(child), "name"));
    let keep = resolve::value_digest(Some("王小明"));
    assert!(page.contains(&format!("value=\"{path}\"")), "{page}");
    assert!(page.contains(&format!("value=\"{keep}\"")), "{page}");
    let doc = st.contested.to_string();
    // Without the CSRF token, or for a value nobody wrote: refused, nothing written.
    let (status, _, _) = b
        .post(
            "/console/conflicts/resolve",
            form(&[("doc", &doc), ("field", &path), ("chosen", &keep)]),
        )
        .await;
    assert_eq!(status, 403);
    let forged = resolve::value_digest(Some("李四"));
    let (status, _, _) = b
        .post(
            "/console/conflicts/resolve",
            form(&[
                ("csrf", &csrf),
                ("doc", &doc),
                ("field", &path),
                ("chosen", &forged),
            ]),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _, _) = b
        .post(
            "/console/conflicts/resolve",
            form(&[
                ("csrf", &csrf),
                ("doc", &doc),
                ("field", "person:x:name"),
                ("chosen", &keep),
            ]),
        )
        .await;
    assert_eq!(status, 400);
    // The supervisor keeps 王小明: written as her, pushed like a device's change.
    let (status, body, set) = b
        .post(
            "/console/conflicts/resolve",
            form(&[
                ("csrf", &csrf),
                ("doc", &doc),
                ("field", &path),
                ("chosen", &keep),
            ]),
        )
        .await;
    assert_eq!(status, 303, "{body}");
    assert!(set.iter().any(|c| c == "location: /console/conflicts"));
    let (_, page, _) = b.get("/console/conflicts").await;
    assert!(page.contains("id=\"no-conflicts\""), "{page}");
    // A third device, not one of the two that wrote the names, gets it at its next sync.
    let (_, w02, t02) = &st.devices[1];
    assert_eq!(w02.conflicts(None).unwrap().len(), 1);
    t02.sync(w02).await.unwrap();
    assert!(w02.conflicts(None).unwrap().is_empty());
    let person = &w02.household(st.contested).unwrap().persons[0];
    assert_eq!(person.name, "王小明");
    let history = w02
        .field_history(
            st.contested,
            &FieldRef::new(EntityRef::Person(child), "name"),
        )
        .unwrap();
    assert_eq!(history.len(), 1);
    let labels = st.store.worker_labels(st.station).unwrap();
    let decider = labels
        .iter()
        .find(|(w, _)| *w == history[0].provenance.worker)
        .unwrap();
    assert_eq!(
        decider.1,
        format!("主管 {LOGIN}"),
        "the decision is the supervisor's"
    );
    let (_, page, _) = b.get("/console").await;
    assert!(
        page.contains("id=\"tile-conflicts\"><span class=\"n\">0</span>"),
        "{page}"
    );
    let (_, page, _) = b.get("/console/follow-ups").await;
    assert!(
        page.contains("送医疗救助申请表") && page.contains("W01"),
        "{page}"
    );

    // Workers and devices: enrol a phone with a one-time code (text and QR), revoke it.
    let (status, page, _) = b.get("/console/devices").await;
    assert_eq!(status, 200);
    // Each phone that synced shows when it last did.
    let rows = st
        .store
        .station_devices(st.station, doorstep_server::now_ms())
        .unwrap();
    let phones: Vec<_> = rows.iter().filter(|d| !d.console).collect();
    assert_eq!(phones.len(), 3);
    for d in &phones {
        let at = d.last_sync.unwrap_or_else(|| panic!("no last sync: {d:?}"));
        assert!(
            (doorstep_server::now_ms() - at).abs() < 10 * 60 * 1000,
            "{d:?}"
        );
        let row = page
            .split(&format!("id=\"device-{}\"", d.device))
            .nth(1)
            .unwrap();
        let cell = row.split("class=\"last-sync\">").nth(1).unwrap();
        assert!(cell.starts_with("20"), "a local time: {cell}");
    }
    assert!(
        page.contains("W01") && page.contains(&format!("主管 {LOGIN}")),
        "{page}"
    );
    let csrf = Browser::csrf_of(&page);
    let w02_id = st.devices[1].1.worker().to_string();
    let (status, _, _) = b
        .post("/console/devices/enroll", form(&[("worker", &w02_id)]))
        .await;
    assert_eq!(status, 403);
    let (status, page, _) = b
        .post(
            "/console/devices/enroll",
            form(&[("csrf", &csrf), ("worker", &w02_id)]),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let at = page.find("id=\"enrol-code\">").unwrap() + 16;
    let code = page[at..].split('<').next().unwrap().to_owned();
    assert_eq!(code.len(), 14, "{code}");
    assert!(page.contains("<svg"), "a QR code");
    let enrolment = doorstep_core::transport::enroll(&st.url(), &code)
        .await
        .unwrap();
    assert_eq!(enrolment.worker, st.devices[1].1.worker());
    let device = enrolment.device.to_string();
    assert!(
        page.contains(&format!("value=\"{device}\"")),
        "revocable: {page}"
    );
    let (status, _, _) = b
        .post(
            "/console/devices/revoke",
            form(&[("csrf", &csrf), ("device", &device)]),
        )
        .await;
    assert_eq!(status, 303);
    assert!(st.store.device(enrolment.device).unwrap().unwrap().revoked);
    // Never synced: no last sync.
    let fresh = st
        .store
        .station_devices(st.station, doorstep_server::now_ms())
        .unwrap()
        .into_iter()
        .find(|d| d.device == enrolment.device)
        .unwrap();
    assert_eq!(fresh.last_sync, None);
    let (status, _, _) = b
        .post(
            "/console/workers",
            form(&[("csrf", &csrf), ("label", "W04")]),
        )
        .await;
    assert_eq!(status, 303);
    let (_, page, _) = b.get("/console/devices").await;
    assert!(page.contains("<h2>W04</h2>"), "{page}");
    // The supervisor's own identity cannot be given a phone or revoked from here.
    let console_device = st
        .store
        .station_devices(st.station, doorstep_server::now_ms())
        .unwrap()
        .into_iter()
        .find(|d| d.console)
        .unwrap();
    let (status, _, _) = b
        .post(
            "/console/devices/revoke",
            form(&[
                ("csrf", &csrf),
                ("device", &console_device.device.to_string()),
            ]),
        )
        .await;
    assert_eq!(status, 400);

    // Cards: a batch, a lease of ten to W01's phone, one card left with a household.
    let batch =
        doorstep_server::cards::add_batch(st.store.as_ref(), st.station, "HG", 1, 100).unwrap();
    let (_, w01, t01) = &st.devices[0];
    doorstep_server::cards::add_lease(
        st.store.as_ref(),
        st.station,
        batch,
        1,
        10,
        w01.device(),
        None,
    )
    .unwrap();
    t01.sync(w01).await.unwrap();
    let today = doorstep_server::station_time::UtcOffset::BEIJING
        .date(doorstep_server::now_ms())
        .unwrap();
    let serial = doorstep_core::CardSerial::new("HG", 1).unwrap().to_string();
    w01.issue_card(
        st.quiet,
        &doorstep_core::NewCard {
            serial,
            visit: None,
            person: None,
            replaces: None,
            outside_lease: false,
        },
        today,
    )
    .unwrap();
    t01.sync(w01).await.unwrap();
    let (status, page, _) = b.get("/console/cards").await;
    assert_eq!(status, 200);
    let lease = page.split("<tbody>").nth(1).unwrap();
    assert!(
        lease.contains("HG-000001 … HG-000010") && lease.contains("W01"),
        "{page}"
    );
    assert!(
        lease.contains("<td class=\"used\">1</td><td class=\"left\">9</td>"),
        "{page}"
    );
    let batches = page.split("<tbody>").nth(2).unwrap();
    assert!(
        batches.contains("<td>100</td><td>10</td><td>90</td>"),
        "{page}"
    );

    // CSV: UTF-8 with a BOM, a header, one line per household.
    let (status, csv, headers) = b.get("/console/export/households.csv").await;
    assert_eq!(status, 200);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv.starts_with('\u{feff}'));
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0],
        "code,village,categories,status,visits,last_visit,open_needs,conflicts,household_id"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[1].starts_with("HH-000001,石桥村,"), "{csv}");
    assert!(
        lines[1].ends_with(&format!(",1,2026-11-29,0,0,{}", st.contested)),
        "{csv}"
    );
    assert!(
        lines[2].starts_with("HH-000002,柳湾村,,active,1,2026-11-29,0,0,"),
        "{csv}"
    );

    // The month's visits: one row each, the household's code and the workers' labels, no
    // notes.
    let (status, csv, _) = b.get("/console/export/visits.csv?month=2026-11").await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0],
        "date,household_code,kind,status,workers,visit_id,household_id"
    );
    let mut rows: Vec<&str> = lines[1..].to_vec();
    rows.sort();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows[0].starts_with("2026-11-29,HH-000001,home,draft,W02,"),
        "{csv}"
    );
    assert!(
        rows[1].starts_with("2026-11-29,HH-000002,home,draft,W01,"),
        "{csv}"
    );
    assert!(
        !csv.contains("心理疏导"),
        "notes stay in the case file: {csv}"
    );
    let (_, other_month, _) = b.get("/console/export/visits.csv?month=2026-10").await;
    assert_eq!(
        other_month.trim_start_matches('\u{feff}').lines().count(),
        1
    );
    let (status, xlsx, headers) = b.get("/console/export/visits.xlsx?month=2026-11").await;
    assert_eq!(status, 200);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .contains("spreadsheetml"));
    assert!(xlsx.starts_with("PK"), "an XLSX is a zip");
    let (status, _, _) = b.get("/console/export/visits.csv?month=2026-13").await;
    assert_eq!(status, 400);

    // The English switch.
    let (status, _, _) = b.get("/console/lang?to=en").await;
    assert_eq!(status, 303);
    let (_, page, _) = b.get("/console").await;
    assert!(
        page.contains("Unresolved conflicts") && page.contains("lang=\"en\""),
        "{page}"
    );

    // Logout needs the session's CSRF token.
    let (status, _, _) = b.post("/console/logout", form(&[])).await;
    assert_eq!(status, 403);
    let (status, _, _) = b.post("/console/logout", form(&[("csrf", "forged")])).await;
    assert_eq!(status, 403);
    let (_, page, _) = b.get("/console").await;
    let csrf = Browser::csrf_of(&page);
    let (status, _, _) = b.post("/console/logout", form(&[("csrf", &csrf)])).await;
    assert_eq!(status, 303);
    let (status, _, _) = b.get("/console").await;
    assert_eq!(status, 303, "the session ended");

    // Every page and the export are in the access log, with ids only.
    let log = st.store.access_log(st.station, 100).unwrap();
    let whats: Vec<&str> = log.iter().map(|e| e.what.as_str()).collect();
    for what in [
        "login",
        "dashboard",
        "households",
        "household",
        "field_history",
        "conflicts",
        "resolve_conflict",
        "devices",
        "enroll_device",
        "revoke_device",
        "add_worker",
        "cards",
        "follow_ups",
        "export_households_csv",
        "export_visits_csv",
        "export_visits_xlsx",
        "logout",
    ] {
        assert!(whats.contains(&what), "{what} missing from {whats:?}");
    }
    let contested = st.contested.to_string();
    assert!(log
        .iter()
        .any(|e| e.what == "household" && e.target.as_deref() == Some(contested.as_str())));

    // The read model rebuilt from the documents equals the one maintained on sync.
    let all = HouseholdFilter {
        limit: 100,
        ..Default::default()
    };
    let before = st.store.households(st.station, &all).unwrap();
    let r = read_model::rebuild(st.store.as_ref(), st.station).unwrap();
    assert_eq!(r.documents, 2);
    assert_eq!(st.store.households(st.station, &all).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_throttled_and_cookies_are_secure() {
    let st = station(true).await;
    let mut b = Browser::new(st.url());
    let (status, page, _) = b.login(LOGIN, "wrong password!").await;
    assert_eq!(status, 401);
    assert!(page.contains("id=\"login-error\""));
    for _ in 0..4 {
        assert_eq!(b.login(LOGIN, "wrong password!").await.0, 401);
    }
    // Five failures: even the right password is refused for a while.
    assert_eq!(b.login(LOGIN, PASSWORD).await.0, 429);
    // An unknown login is refused like a wrong password.
    assert_eq!(b.login("nobody", PASSWORD).await.0, 401);

    // A console behind TLS (the default) marks its cookies Secure.
    let secure = station(true).await;
    let mut b = Browser::new(secure.url());
    let (status, _, set) = b.login(LOGIN, PASSWORD).await;
    assert_eq!(status, 303);
    assert!(
        set.iter()
            .any(|c| c.starts_with("doorstep_session=") && c.contains("; Secure")),
        "{set:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasures_are_listed_with_ids_and_reasons_only() {
    use doorstep_core::protocol::ErasureReason;
    use doorstep_server::erasure::{self, Ledger};
    let st = station(false).await;
    let mut b = Browser::new(st.url());
    let (status, _, _) = b.login(LOGIN, PASSWORD).await;
    assert_eq!(status, 303);
    let quiet = st.quiet.to_string();
    let (status, page, _) = b.get("/console/erasures").await;
    assert_eq!(status, 200);
    assert!(!page.contains(&quiet));
    let (_, list, _) = b.get("/console/households").await;
    assert!(list.contains("HH-000002"), "the household is listed before");
    let (status, _, _) = b.get(&format!("/console/households/{quiet}")).await;
    assert_eq!(status, 200);
    assert!(st
        .store
        .access_log(st.station, 100)
        .unwrap()
        .iter()
        .any(|e| e.target.as_deref() == Some(quiet.as_str())));

    erasure::erase(
        st.store.as_ref(),
        &Ledger::in_dir(st.dir.path()),
        st.station,
        st.quiet,
        ErasureReason::SubjectRequest,
        "cli",
        doorstep_server::now_ms(),
    )
    .unwrap();
    let (status, page, _) = b.get("/console/erasures").await;
    assert_eq!(status, 200);
    assert!(page.contains(&quiet), "{page}");
    assert!(page.contains("本人或监护人要求删除"));
    assert!(!page.contains("医疗救助") && !page.contains("HH-000002"));
    let (status, _, _) = b.get(&format!("/console/households/{quiet}")).await;
    assert_eq!(status, 404, "an erased case file is gone from the console");
    let (_, list, _) = b.get("/console/households").await;
    assert!(!list.contains("HH-000002"));
    let (_, found, _) = b.get("/console/households?q=医疗救助").await;
    assert!(!found.contains(&quiet));
    let log = st.store.access_log(st.station, 100).unwrap();
    assert!(log.iter().any(|e| e.what == "erasures"));
    assert!(
        !log.iter()
            .any(|e| e.target.as_deref() == Some(quiet.as_str())),
        "the access log's entries about the household went with it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_sees_who_opened_a_case_file() {
    let st = station(false).await;
    let mut b = Browser::new(st.url());
    let (status, _, _) = b.login(LOGIN, PASSWORD).await;
    assert_eq!(status, 303);
    let (contested, quiet) = (st.contested.to_string(), st.quiet.to_string());
    let (status, page, _) = b.get(&format!("/console/households/{contested}")).await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("/console/access?household={contested}")));
    b.get(&format!("/console/households/{quiet}")).await;

    // W02 opens the contested case file on the phone (offline), then syncs.
    let (_, w02, transport) = &st.devices[1];
    w02.open_case_file(st.contested).unwrap();
    transport.sync(w02).await.unwrap();
    assert_eq!(w02.unsynced_accesses().unwrap(), 0);

    let (status, page, _) = b
        .get(&format!("/console/access?household={contested}"))
        .await;
    assert_eq!(status, 200);
    assert!(page.contains(LOGIN) && page.contains(&contested), "{page}");
    assert!(
        page.contains("W02") && page.contains(&w02.device().to_string()),
        "the phone's opening, with the worker's label and the device: {page}"
    );
    let logged = st
        .store
        .accesses(st.station, Some(st.contested), 10)
        .unwrap();
    let on_phone: Vec<_> = logged
        .iter()
        .filter(|e| e.what == doorstep_server::store::console::CASE_FILE_ON_DEVICE)
        .collect();
    assert_eq!(on_phone.len(), 1);
    assert_eq!(
        on_phone[0].by,
        doorstep_server::store::console::Accessor::Device {
            worker: w02.worker(),
            label: "W02".into(),
            device: w02.device(),
        }
    );
    assert_eq!(
        on_phone[0].at,
        w02.accesses(st.contested).unwrap()[0].at.0,
        "the phone's time"
    );
    assert!(
        !page.contains(&format!("access?household={quiet}")),
        "only the accesses to that household"
    );
    let (_, all, _) = b.get("/console/access").await;
    assert!(
        all.contains(&contested) && all.contains(&quiet) && all.contains("login"),
        "{all}"
    );
    // The page names no person: ids, logins, actions and times only.
    assert!(!all.contains(ID_NUMBER) && !all.contains("心理疏导"));
    let (status, _, _) = b.get("/console/access?household=not-an-id").await;
    assert_eq!(status, 404);
    // Looking at the log is itself logged.
    let log = st.store.access_log(st.station, 10).unwrap();
    assert!(log
        .iter()
        .any(|e| e.what == "access_log" && e.target.as_deref() == Some(contested.as_str())));
}
