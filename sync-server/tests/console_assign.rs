//! A supervisor reassigns a household from its case-file page (issue 16, ADR 0019), over
//! HTTP against a real server on 127.0.0.1 with real phones: the form needs the session's
//! CSRF token; the household moves to the chosen worker's phone and leaves the others'
//! (their phones share it through the station's team until then); the page says whom it is
//! assigned to; bad input changes nothing; the action is in the access log with ids only.
#![allow(clippy::unwrap_used)]

mod console_support;

use console_support::client::Browser;
use console_support::*;
use doorstep_server::store::console::ConsoleStore;
use doorstep_server::store::ServerStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_reassigns_a_case_file_to_one_worker() {
    let st = station(false).await;
    let mut b = Browser::new(st.url());
    let (status, _, _) = b.login(LOGIN, PASSWORD).await;
    assert_eq!(status, 303);
    let quiet = st.quiet.to_string();
    let path = format!("/console/households/{quiet}");
    let (status, page, _) = b.get(&path).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"assignment\""), "{page}");
    assert!(
        page.contains("station"),
        "assigned to its creator's team: {page}"
    );
    let csrf = Browser::csrf_of(&page);
    let w03 = st.devices[2].1.worker();

    // Without the token, or with nothing chosen, or a bad team: refused, nothing changes.
    let before = st.store.assignment(st.quiet).unwrap();
    let action = format!("{path}/assign");
    let (status, _, _) = b.post(&action, form(&[("worker", &w03.to_string())])).await;
    assert_eq!(status, 403);
    let (status, _, _) = b
        .post(
            &action,
            form(&[("csrf", &csrf), ("worker", ""), ("team", "")]),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = b
        .post(
            &action,
            form(&[("csrf", &csrf), ("worker", ""), ("team", "a\u{200B}b")]),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = b
        .post(
            &action,
            form(&[
                ("csrf", &csrf),
                ("worker", &uuid::Uuid::new_v4().to_string()),
            ]),
        )
        .await;
    assert_eq!(status, 404, "a worker of no station");
    assert_eq!(st.store.assignment(st.quiet).unwrap(), before);

    // To W03 alone.
    let (status, _, _) = b
        .post(
            &action,
            form(&[("csrf", &csrf), ("worker", &w03.to_string()), ("team", "")]),
        )
        .await;
    assert_eq!(status, 303);
    let a = st.store.assignment(st.quiet).unwrap().unwrap();
    assert_eq!((a.worker, a.team), (Some(w03), None));
    let (_, page, _) = b.get(&path).await;
    let shown = page.split("class=\"assigned-worker\">").nth(1).unwrap();
    assert!(shown.starts_with("W03"), "{shown}");

    // W01 and W02 remove it at their next sync; W03 keeps it.
    for (label, store, transport) in &st.devices {
        let report = transport.sync(store).await.unwrap();
        if label == "W03" {
            assert!(store.household(st.quiet).is_ok());
            assert!(report.departed.is_empty());
        } else {
            assert_eq!(report.departed, vec![st.quiet], "{label}");
            assert!(store.household(st.quiet).is_err(), "{label}");
        }
    }
    let log = st.store.access_log(st.station, 20).unwrap();
    assert!(log
        .iter()
        .any(|e| e.what == "assign" && e.target.as_deref() == Some(quiet.as_str())));
}
