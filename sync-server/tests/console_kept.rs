//! The console keeps the case files of the pushes its server accepts (ADR 0033): after a
//! phone's change, the case file is served from what the push read, not loaded again. To
//! see that, the stored document is then broken in the database file itself: the server
//! that accepted the push still shows the case file with the change; a second server on
//! the same database, which did not accept it, cannot read it.
#![allow(clippy::unwrap_used)]

mod console_support;

use std::sync::Arc;

use console_support::client::Browser;
use console_support::*;
use doorstep_core::*;
use doorstep_server::console::ConsoleConfig;
use doorstep_server::{ServerConfig, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_view_after_a_change_is_the_one_the_push_read() {
    let st = station(false).await;
    let server_dir = st.dir.path().join("server");
    let other = doorstep_server::serve(
        Arc::new(SqliteStore::open(&server_dir).unwrap()),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        ServerConfig {
            console: Some(ConsoleConfig {
                secure_cookies: false,
                ..ConsoleConfig::default()
            }),
            ..ServerConfig::default()
        },
    )
    .await
    .unwrap();

    // W02's phone raises a need in the quiet household and syncs with the first server.
    let (_, w02, t02) = &st.devices[1];
    w02.add_need(
        st.quiet,
        &NewNeed {
            category: "医疗救助".into(),
            description: "代办轮椅申请".into(),
            person: None,
            visit: None,
        },
    )
    .unwrap();
    t02.sync(w02).await.unwrap();

    // The stored document no longer loads: its snapshot and changes are garbage (their log
    // sequence stays, so a page sees no newer version).
    let db = rusqlite::Connection::open(server_dir.join("server.db")).unwrap();
    let id = st.quiet.to_string();
    db.execute(
        "UPDATE documents SET snapshot = x'00' WHERE doc_id = ?1",
        [&id],
    )
    .unwrap();
    let broken = db
        .execute(
            "UPDATE change_log SET bytes = x'00' WHERE doc_id = ?1 AND kind = 0",
            [&id],
        )
        .unwrap();
    assert!(broken > 0, "the household's changes are in the log");

    let page = format!("/console/households/{}", st.quiet);
    let mut kept = Browser::new(st.url());
    assert_eq!(kept.login(LOGIN, PASSWORD).await.0, 303);
    let (status, body, _) = kept.get(&page).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("HH-000002") && body.contains("代办轮椅申请"),
        "the case file with the change, as the push read it: {body}"
    );

    let mut elsewhere = Browser::new(other.url());
    assert_eq!(elsewhere.login(LOGIN, PASSWORD).await.0, 303);
    let (status, body, _) = elsewhere.get(&page).await;
    assert_eq!(status, 500, "{body}");
    assert!(!body.contains("代办轮椅申请"), "{body}");
    other.shutdown().await;
}
