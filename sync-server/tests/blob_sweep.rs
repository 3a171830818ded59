//! The sweep of abandoned partial uploads (ADR 0029) through the real binary and a real
//! server: `blobs sweep --older-than-days 7` deletes the partial upload untouched for ten
//! days and nothing else (a partial one touched yesterday, a whole one from long ago);
//! `serve` sweeps before its first request, counts it in `/metrics`, and does not when the
//! sweep is off.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use doorstep_core::{BlobHash, DeviceId, StationId};
use doorstep_server::store::blobs::{BlobBegin, BlobKey, BlobStore};
use doorstep_server::store::key::ServerKey;
use doorstep_server::{now_ms, ServerConfig, SqliteStore};

const BIN: &str = env!("CARGO_BIN_EXE_doorstep-server");
const DAY: i64 = 86_400_000;

fn cli(data: &Path, key: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .env_remove("DOORSTEP_KEY_FILE")
        .env_remove("DOORSTEP_KEY_ENV")
        .env_remove("DOORSTEP_DATABASE")
        .args(args)
        .args(["--data", data.to_str().unwrap()])
        .args(["--key-file", key.to_str().unwrap()])
        .output()
        .unwrap()
}

/// A blob of `bytes` started (and its first 4 bytes received) `days_ago`; whole if `whole`.
fn started(store: &SqliteStore, bytes: &[u8], days_ago: i64, whole: bool) -> BlobKey {
    // The sweep does not look at stations: any will do.
    let h = BlobKey::new(StationId::new(), BlobHash::of(bytes));
    let at = now_ms() - days_ago * DAY;
    let begun = store
        .begin_blob(&h, bytes.len() as u64, DeviceId::new(), u64::MAX, at)
        .unwrap();
    assert!(matches!(begun, BlobBegin::Row(_)));
    if whole {
        store.append_blob(&h, 0, bytes, at).unwrap();
        assert!(store.finish_blob(&h).unwrap());
    } else {
        store.append_blob(&h, 0, &bytes[..4], at).unwrap();
    }
    h
}

fn held(store: &SqliteStore, h: &BlobKey) -> bool {
    store.blob(h).unwrap().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_uploads_untouched_for_days_are_swept_by_the_command_and_at_serve_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_file = dir.path().join("server.key");
    let key = ServerKey::generate().unwrap();
    key.write_new_file(&key_file).unwrap();
    let store = Arc::new(SqliteStore::open_encrypted(&data, &key).unwrap());

    let abandoned = started(&store, b"abandoned ten days ago", 10, false);
    let recent = started(&store, b"cut yesterday, coming back", 1, false);
    let whole = started(&store, b"a whole photo from last year", 365, true);
    let out = cli(
        &data,
        &key_file,
        &["blobs", "sweep", "--older-than-days", "7"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.starts_with("swept 1 partial upload(s)"), "{said}");
    assert!(!held(&store, &abandoned));
    assert!(held(&store, &recent));
    assert!(held(&store, &whole));

    // Sweep off: `serve` keeps an abandoned upload.
    let old = started(&store, b"abandoned a month ago", 30, false);
    let config = ServerConfig {
        partial_upload_days: None,
        ..ServerConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = doorstep_server::serve(store.clone(), listener, config)
        .await
        .unwrap();
    assert!(held(&store, &old));
    server.shutdown().await;

    // On (the default, 7 days): swept before the first request, and counted.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = doorstep_server::serve(store.clone(), listener, ServerConfig::default())
        .await
        .unwrap();
    assert!(!held(&store, &old));
    assert!(held(&store, &recent) && held(&store, &whole));
    let metrics = reqwest::get(format!("{}/metrics", server.metrics_url().unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("doorstep_blob_partial_swept_total 1"),
        "{metrics}"
    );
    server.shutdown().await;
}
