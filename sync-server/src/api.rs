//! The HTTP surface: `POST /v1/sync`, `POST /v1/enroll`, `GET /healthz`, `GET /metrics`.
//! Handlers are generic over the storage backend. Every error is a clean HTTP answer; the
//! cause is logged without personal data (ids and sizes only).

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use doorstep_core::protocol::{
    EnrollRequest, Enrollment, SyncRequest, Unauthorized, SYNC_CONTENT_TYPE,
};
use tokio::net::TcpListener;

use crate::credentials::{hash_secret, normalise_code};
use crate::metrics::Metrics;
use crate::store::ServerStore;
use crate::sync::SyncService;

/// Server limits.
#[derive(Clone, Copy, Debug)]
pub struct ServerConfig {
    /// Largest request body accepted (compressed bytes).
    pub body_limit: usize,
    /// Time a request may take before the server gives up on it.
    pub request_timeout: Duration,
    /// Documents kept loaded in memory.
    pub cache_documents: usize,
    /// Syncs and enrolments worked on at once (each on a thread of the blocking pool);
    /// more requests wait their turn, within the request timeout. Bounds the threads and
    /// the documents in hand besides the cache (see `docs/operations.md`, Sizing).
    pub max_concurrent_syncs: usize,
}

/// Default of [`ServerConfig::max_concurrent_syncs`]. Measured on 2 shared cores with 1,000
/// devices syncing at once (`docs/benchmarks-township-week.md`): against the old unbounded
/// pool (up to 512 threads), 128 gave ~14 % less throughput for 135 threads instead of 519
/// and ~40 MB less memory; 32 gave ~23 % less.
pub const DEFAULT_MAX_CONCURRENT_SYNCS: usize = 128;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: 32 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            cache_documents: 1024,
            max_concurrent_syncs: DEFAULT_MAX_CONCURRENT_SYNCS,
        }
    }
}

struct AppState<S: ServerStore> {
    sync: SyncService<S>,
    metrics: Metrics,
    config: ServerConfig,
    /// Permits for work on the blocking pool (`max_concurrent_syncs`).
    slots: Arc<tokio::sync::Semaphore>,
}

type Shared<S> = Arc<AppState<S>>;

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ServerHandle {
    /// `http://127.0.0.1:port`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, finish requests in flight, return.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Stop at once, dropping requests in flight (a crash, for tests).
    pub fn abort(self) {
        self.task.abort();
    }

    /// Wait until the server stops (Ctrl-C or SIGTERM when started by `serve_until_signal`).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.unwrap_or(Ok(()))
    }
}

/// Serve on `listener` until [`ServerHandle::shutdown`].
pub async fn serve<S: ServerStore>(
    store: Arc<S>,
    listener: TcpListener,
    config: ServerConfig,
) -> std::io::Result<ServerHandle> {
    start(store, listener, config, std::future::pending())
}

/// Serve until Ctrl-C, SIGTERM or [`ServerHandle::shutdown`].
pub async fn serve_until_signal<S: ServerStore>(
    store: Arc<S>,
    listener: TcpListener,
    config: ServerConfig,
) -> std::io::Result<ServerHandle> {
    start(store, listener, config, shutdown_signal())
}

fn start<S: ServerStore>(
    store: Arc<S>,
    listener: TcpListener,
    config: ServerConfig,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<ServerHandle> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        tokio::select! { _ = rx => {}, _ = signal => {} }
    };
    let addr = listener.local_addr()?;
    let state = Arc::new(AppState {
        sync: SyncService::new(store, config.cache_documents),
        metrics: Metrics::default(),
        config,
        slots: Arc::new(tokio::sync::Semaphore::new(
            config.max_concurrent_syncs.max(1),
        )),
    });
    let app = router(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    tracing::info!(%addr, "doorstep-server listening");
    Ok(ServerHandle {
        addr,
        shutdown: Some(tx),
        task,
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

fn router<S: ServerStore>(state: Shared<S>) -> Router {
    let limit = state.config.body_limit;
    Router::new()
        .route("/v1/sync", post(sync_handler::<S>))
        .route("/v1/enroll", post(enroll_handler::<S>))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_handler::<S>))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

fn plain(status: StatusCode, msg: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

fn unauthorized(wipe: bool) -> Response {
    let error = if wipe { "revoked" } else { "unauthorized" };
    (
        StatusCode::UNAUTHORIZED,
        Json(Unauthorized {
            error: error.into(),
            wipe,
        }),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = v.strip_prefix("Bearer ")?.trim();
    (!token.is_empty() && token.len() <= 256).then_some(token)
}

enum Outcome {
    Ok(Vec<u8>, usize, usize),
    Unauthorized(bool),
    BadRequest(&'static str),
    Failed,
}

async fn sync_handler<S: ServerStore>(
    State(state): State<Shared<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    state.metrics.bytes_in.fetch_add(body.len() as u64, Relaxed);
    let Some(token) = bearer(&headers).map(hash_secret) else {
        state.metrics.unauthorized.fetch_add(1, Relaxed);
        return unauthorized(false);
    };
    let work_state = state.clone();
    let slots = state.slots.clone();
    // Wait for a slot, then work on the blocking pool; the slot is released when the work
    // ends (not when the request times out), so at most `max_concurrent_syncs` run at once.
    let work = async move {
        let Ok(slot) = slots.acquire_owned().await else {
            return Ok(Outcome::Failed);
        };
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            // automerge may panic on hostile input: the panic ends this request only.
            catch_unwind(AssertUnwindSafe(|| {
                let auth = match work_state.sync.store().authenticate(&token) {
                    Ok(Some(a)) if a.revoked => return Outcome::Unauthorized(true),
                    Ok(Some(a)) => a,
                    Ok(None) => return Outcome::Unauthorized(false),
                    Err(e) => {
                        tracing::error!(error = %e, "authentication failed");
                        return Outcome::Failed;
                    }
                };
                let req = match SyncRequest::decode(&body) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(device = %auth.device, error = %e, "malformed sync request");
                        return Outcome::BadRequest("malformed sync request");
                    }
                };
                match work_state.sync.sync(&auth, &req) {
                    Ok(resp) => {
                        let pushed: usize = req.push.iter().map(|d| d.changes.len()).sum();
                        let served: usize = resp.pull.iter().map(|d| d.changes.len()).sum();
                        tracing::info!(
                            device = %auth.device, pushed, served, snapshots = resp.snapshots.len(),
                            refused = resp.errors.len(), more = resp.more, "sync"
                        );
                        Outcome::Ok(resp.encode(), pushed, served)
                    }
                    Err(e) => {
                        tracing::error!(device = %auth.device, error = %e, "sync failed");
                        Outcome::Failed
                    }
                }
            }))
            .unwrap_or_else(|_| {
                tracing::error!("sync request panicked");
                Outcome::Failed
            })
        })
        .await
    };
    let outcome = match tokio::time::timeout(state.config.request_timeout, work).await {
        Ok(Ok(o)) => o,
        Ok(Err(_)) => Outcome::Failed,
        Err(_) => {
            state.metrics.sync_errors.fetch_add(1, Relaxed);
            return plain(StatusCode::SERVICE_UNAVAILABLE, "timed out\n");
        }
    };
    state.metrics.observe_latency(started.elapsed());
    match outcome {
        Outcome::Ok(bytes, pushed, served) => {
            state.metrics.syncs.fetch_add(1, Relaxed);
            state
                .metrics
                .bytes_out
                .fetch_add(bytes.len() as u64, Relaxed);
            state
                .metrics
                .changes_accepted
                .fetch_add(pushed as u64, Relaxed);
            state
                .metrics
                .changes_served
                .fetch_add(served as u64, Relaxed);
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, SYNC_CONTENT_TYPE)],
                bytes,
            )
                .into_response()
        }
        Outcome::Unauthorized(wipe) => {
            state.metrics.unauthorized.fetch_add(1, Relaxed);
            unauthorized(wipe)
        }
        Outcome::BadRequest(msg) => {
            state.metrics.bad_requests.fetch_add(1, Relaxed);
            plain(StatusCode::BAD_REQUEST, msg)
        }
        Outcome::Failed => {
            state.metrics.sync_errors.fetch_add(1, Relaxed);
            plain(StatusCode::INTERNAL_SERVER_ERROR, "sync failed\n")
        }
    }
}

async fn enroll_handler<S: ServerStore>(State(state): State<Shared<S>>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<EnrollRequest>(&body) else {
        state.metrics.bad_requests.fetch_add(1, Relaxed);
        return plain(StatusCode::BAD_REQUEST, "expected {\"code\": \"...\"}\n");
    };
    let code = normalise_code(&req.code);
    if code.is_empty() || code.len() > 64 {
        state.metrics.unauthorized.fetch_add(1, Relaxed);
        return unauthorized(false);
    }
    let st = state.clone();
    let Ok(slot) = state.slots.clone().acquire_owned().await else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "enrolment failed\n");
    };
    let redeemed = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        crate::credentials::redeem_code(st.sync.store().as_ref(), &code, crate::now_ms())
    })
    .await;
    match redeemed {
        Ok(Ok(Some((auth, token)))) => {
            state.metrics.enrolments.fetch_add(1, Relaxed);
            tracing::info!(device = %auth.device, "device enrolled");
            Json(Enrollment {
                token,
                device: auth.device,
                worker: auth.worker,
                station: auth.station,
            })
            .into_response()
        }
        Ok(Ok(None)) => {
            state.metrics.unauthorized.fetch_add(1, Relaxed);
            unauthorized(false)
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "enrolment failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "enrolment failed\n")
        }
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "enrolment failed\n"),
    }
}

async fn metrics_handler<S: ServerStore>(State(state): State<Shared<S>>) -> Response {
    let mut body = state.metrics.render();
    if let Some(w) = state.sync.store().write_stats() {
        body.push_str(&crate::metrics::render_write_stats(&w));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
