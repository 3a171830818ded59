//! The HTTP surface against bad input: clean 4xx answers, and the server keeps serving.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use doorstep_core::protocol::*;
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, ServerConfig, SqliteStore};

async fn post(url: &str, token: Option<&str>, body: Vec<u8>) -> (u16, String) {
    let mut req = reqwest::Client::new().post(url).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clean_answers_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let station = store.create_station("站", now_ms()).unwrap();
    let worker = store.add_worker(station, "W01", now_ms()).unwrap();
    let (_, code) = credentials::enroll_device(store.as_ref(), worker, now_ms()).unwrap();
    let config = ServerConfig {
        body_limit: 1024 * 1024,
        ..ServerConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = doorstep_server::serve(store.clone(), listener, config)
        .await
        .unwrap();
    let url = server.url();
    let enrolment = doorstep_core::transport::enroll(&url, &code).await.unwrap();
    let token = enrolment.token.as_str();
    let sync = format!("{url}/v1/sync");

    let mut wrong_version = SyncRequest::default().encode_raw();
    wrong_version[0] = 99;
    let bomb = {
        let big = vec![0u8; MAX_MESSAGE_BYTES + 10];
        zstd_frame(&big)
    };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("empty body", vec![], 400),
        ("not zstd", b"hello".to_vec(), 400),
        ("wrong version", zstd_frame(&wrong_version), 400),
        (
            "truncated",
            {
                let b = SyncRequest::default().encode();
                b[..b.len() / 2].to_vec()
            },
            400,
        ),
        ("decompression bomb", bomb, 400),
        ("too large", vec![7u8; 2 * 1024 * 1024], 413),
    ];
    for (what, body, status) in cases {
        let (got, _) = post(&sync, Some(token), body).await;
        assert_eq!(got, status, "{what}");
    }
    assert_eq!(
        post(&sync, None, SyncRequest::default().encode()).await.0,
        401
    );
    assert_eq!(
        post(&sync, Some("x"), SyncRequest::default().encode())
            .await
            .0,
        401
    );
    assert_eq!(
        post(&format!("{url}/v1/enroll"), None, b"{not json".to_vec())
            .await
            .0,
        400
    );

    // Still serving: a valid sync, health and metrics (on the metrics listener).
    let (ok, _) = post(&sync, Some(token), SyncRequest::default().encode()).await;
    assert_eq!(ok, 200);
    let health = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // Metrics are on their own (loopback) listener, not on the public address.
    assert_eq!(
        reqwest::get(format!("{url}/metrics"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    let metrics_url = server.metrics_url().unwrap();
    let metrics = reqwest::get(format!("{metrics_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("doorstep_syncs_total 1"), "{metrics}");
    // The five malformed syncs, the one too large (now counted too) and the enrolment.
    assert!(
        metrics.contains("doorstep_bad_requests_total 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("doorstep_sync_duration_seconds_count"),
        "{metrics}"
    );
    // SQLite's group commit: no write waiting now; as many writes as grouped into
    // transactions at least (the enrolment redeemed a code).
    assert!(
        metrics.contains("doorstep_store_writes_queued 0"),
        "{metrics}"
    );
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"))
    };
    let (tx, writes) = (
        counter("doorstep_store_transactions_total "),
        counter("doorstep_store_writes_total "),
    );
    assert!(tx >= 1 && writes >= tx, "{metrics}");
    server.shutdown().await;
}

fn zstd_frame(raw: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(raw, 3).unwrap()
}
