//! The HTTP surface: `POST /v1/sync`, `POST /v1/enroll`, the attachment endpoints under
//! `/v1/blobs` (`blobs`), `GET /healthz` on the public address, `GET /metrics` on its own (loopback by default). Handlers are generic over the
//! storage backend. Every error is a clean HTTP answer; the cause is logged without personal
//! data (ids and sizes only). The connection edge (limits, timeouts) is in `edge.rs`.

use std::net::{IpAddr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use doorstep_core::protocol::{
    EnrollRequest, Enrollment, SyncRequest, Unauthorized, SYNC_CONTENT_TYPE,
};
use http_body_util::LengthLimitError;
use tokio::net::TcpListener;

use crate::credentials::{hash_secret, normalise_code};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::store::ServerStore;
use crate::sync::SyncService;

mod blobs;

/// Server limits.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request body accepted from an authenticated device (compressed bytes).
    pub body_limit: usize,
    /// Time the server spends on a request besides receiving its body (waiting for a slot,
    /// authenticating, working) before it answers `503`.
    pub request_timeout: Duration,
    /// Memory for documents kept loaded (estimated bytes; ADR 0039).
    pub cache_bytes: usize,
    /// At most this many documents kept loaded as well (deprecated: `cache_bytes` bounds
    /// the memory; a count does not, as documents grow).
    pub cache_documents: Option<usize>,
    /// Syncs and enrolments worked on at once (each on a thread of the blocking pool);
    /// more requests wait their turn, within the request timeout. Bounds the threads and
    /// the documents in hand besides the cache (see `docs/operations.md`, Sizing).
    pub max_concurrent_syncs: usize,
    /// Time a client has to send a request head; also how long an idle keep-alive
    /// connection is kept. The connection is closed after it.
    pub header_timeout: Duration,
    /// Time a client has to send a whole request body once the server reads it (`408`).
    pub body_timeout: Duration,
    /// Memory for sync bodies over 64 KiB of authenticated devices, received or being
    /// worked on, all requests together; a request reserves its declared length (or
    /// `body_limit` when it declares none) before its body is read, and waits for room
    /// within its body timeout.
    pub body_memory: usize,
    /// Connections served at once on the public address. Further connections go to the
    /// reserve (`connection_reserve`).
    pub max_connections: usize,
    /// Connections over `max_connections` that are still answered, one request each:
    /// `/healthz` with `200`, everything else with `503` and `Retry-After`. When it is full
    /// the oldest of them is closed for a new one.
    pub connection_reserve: usize,
    /// Guesses at an enrolment code (well-formed codes; failed ones, in effect) per client
    /// address at once …
    pub enrol_burst: u32,
    /// … and then one more per this period; beyond, `429` with `Retry-After`.
    pub enrol_refill: Duration,
    /// Where `GET /metrics` is served (its own listener); `None`: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// Reverse proxies whose `X-Forwarded-For` is believed: for a connection from one of
    /// these, the client address (for enrolment limits and logs) is the last address in
    /// that header. Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// The station console under `/console` (docs/console.md); `None`: not served.
    pub console: Option<crate::console::ConsoleConfig>,
    /// Largest attachment accepted (bytes; `413 too_large` above).
    pub blob_limit: u64,
    /// Bytes of attachments one device may have started on the server, all together
    /// (`413 quota` above).
    pub blob_quota: u64,
    /// Partial uploads untouched for this many days are deleted at start and every
    /// [`crate::blob_sweep::SWEEP_EVERY`] (ADR 0029); `None`: never.
    pub partial_upload_days: Option<u32>,
}

/// Default of [`ServerConfig::blob_quota`]: 2 GiB per device (about 7,000 photos of 300 KB).
pub const DEFAULT_BLOB_QUOTA: u64 = 2 * 1024 * 1024 * 1024;

/// Default of [`ServerConfig::max_concurrent_syncs`]. Measured on 2 shared cores with 1,000
/// devices syncing at once (`docs/benchmarks-township-week.md`): against the old unbounded
/// pool (up to 512 threads), 128 gave ~14 % less throughput for 135 threads instead of 519
/// and ~40 MB less memory; 32 gave ~23 % less.
pub const DEFAULT_MAX_CONCURRENT_SYNCS: usize = 128;

/// Default of [`ServerConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;

/// Default of [`ServerConfig::connection_reserve`].
pub const DEFAULT_CONNECTION_RESERVE: usize = 64;

/// Default of [`ServerConfig::enrol_burst`]: failed enrolments per address at once, and
/// per minute.
pub const DEFAULT_ENROL_FAILURES_PER_MINUTE: u32 = 10;

/// Largest body of a request that is not authenticated (`/v1/enroll`; `/v1/sync` without a
/// valid token is answered `401` without reading its body).
pub const UNAUTHENTICATED_BODY_LIMIT: usize = 64 * 1024;

/// Connections served at once on the metrics listener.
const METRICS_CONNECTIONS: usize = 16;

impl Default for ServerConfig {
    /// The defaults, with metrics on a loopback port chosen by the system (see
    /// [`ServerHandle::metrics_addr`]); the command line's default is 127.0.0.1:9091.
    fn default() -> Self {
        ServerConfig {
            body_limit: 32 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            cache_bytes: crate::sync::DEFAULT_CACHE_BYTES,
            cache_documents: None,
            max_concurrent_syncs: DEFAULT_MAX_CONCURRENT_SYNCS,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            body_memory: 256 * 1024 * 1024,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connection_reserve: DEFAULT_CONNECTION_RESERVE,
            enrol_burst: DEFAULT_ENROL_FAILURES_PER_MINUTE,
            enrol_refill: Duration::from_secs(60) / DEFAULT_ENROL_FAILURES_PER_MINUTE,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            trusted_proxies: Vec::new(),
            console: Some(crate::console::ConsoleConfig::default()),
            blob_limit: doorstep_core::MAX_ATTACHMENT_BYTES,
            blob_quota: DEFAULT_BLOB_QUOTA,
            partial_upload_days: Some(crate::blob_sweep::DEFAULT_PARTIAL_UPLOAD_DAYS),
        }
    }
}

struct AppState<S: ServerStore> {
    sync: SyncService<S>,
    metrics: Arc<Metrics>,
    config: ServerConfig,
    /// Permits for work on the blocking pool (`max_concurrent_syncs`).
    slots: Arc<tokio::sync::Semaphore>,
    /// Guesses at enrolment codes per client address.
    enrolments: RateLimiter,
    /// `body_memory`, in KiB.
    body_budget: Arc<tokio::sync::Semaphore>,
}

type Shared<S> = Arc<AppState<S>>;

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    pub addr: SocketAddr,
    /// Where `/metrics` is served, if it is.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ServerHandle {
    /// `http://127.0.0.1:port`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:port` of the metrics listener, if there is one.
    pub fn metrics_url(&self) -> Option<String> {
        self.metrics_addr.map(|a| format!("http://{a}"))
    }

    /// Stop accepting, finish requests in flight, return.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        let _ = (&mut self.task).await;
    }

    /// Stop at once, dropping requests in flight and every connection (a crash, for tests).
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
    start(store, listener, config, std::future::pending()).await
}

/// Serve until Ctrl-C, SIGTERM or [`ServerHandle::shutdown`].
pub async fn serve_until_signal<S: ServerStore>(
    store: Arc<S>,
    listener: TcpListener,
    config: ServerConfig,
) -> std::io::Result<ServerHandle> {
    start(store, listener, config, shutdown_signal()).await
}

async fn start<S: ServerStore>(
    store: Arc<S>,
    listener: TcpListener,
    mut config: ServerConfig,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<ServerHandle> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let addr = listener.local_addr()?;
    let metrics_listener = match config.metrics_listen {
        Some(a) => Some(TcpListener::bind(a).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen for metrics on {a}: {e} (see --metrics-listen)"),
            )
        })?),
        None => None,
    };
    let metrics_addr = match &metrics_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    // Connections must fit in the open-file limit (raised towards the hard limit if needed).
    let others = config.connection_reserve + METRICS_CONNECTIONS;
    let fits = crate::edge::fd_budget(config.max_connections + others);
    config.max_connections = fits
        .saturating_sub(others)
        .max(1)
        .min(config.max_connections);
    let cache = crate::sync::CacheLimit {
        bytes: config.cache_bytes,
        documents: config.cache_documents,
    };
    // The console's loaded case files, shared by its pages and the sync service that keeps
    // the ones it accepts there (ADR 0033).
    let case_files = config
        .console
        .as_ref()
        .map(|c| Arc::new(crate::console::case_files::CaseFiles::new(c.case_files)));
    let console = config
        .console
        .clone()
        .zip(case_files.clone())
        .map(|(c, files)| {
            // Bring the read model up to date with the log (a row missed by a crash between a
            // commit and its read model update), in the background.
            let s = store.clone();
            tokio::task::spawn_blocking(move || {
                crate::console::read_model::catch_up_all(s.as_ref())
            });
            crate::console::router(store.clone(), c, config.trusted_proxies.clone(), files)
        });
    let metrics = Arc::new(Metrics::default());
    // Abandoned partial uploads: swept before the first request, then periodically.
    if let Some(days) = config.partial_upload_days {
        crate::blob_sweep::sweep_now(store.clone(), days, &metrics).await;
        tokio::spawn(crate::blob_sweep::every(
            Arc::downgrade(&store),
            days,
            metrics.clone(),
            rx.clone(),
        ));
    }
    let state = Arc::new(AppState {
        sync: match case_files {
            Some(files) => SyncService::with_cache(store, cache)
                .with_read_model(true)
                .with_case_files(files),
            None => SyncService::with_cache(store, cache).with_read_model(false),
        },
        metrics,
        slots: Arc::new(tokio::sync::Semaphore::new(
            config.max_concurrent_syncs.max(1),
        )),
        enrolments: RateLimiter::new(config.enrol_burst, config.enrol_refill),
        body_budget: Arc::new(tokio::sync::Semaphore::new(
            (config.body_memory / 1024).max(1),
        )),
        config,
    });
    let limits = crate::edge::Limits {
        max_connections: state.config.max_connections,
        reserve: state.config.connection_reserve,
        header_timeout: state.config.header_timeout,
    };
    let metrics_limits = crate::edge::Limits {
        max_connections: METRICS_CONNECTIONS,
        reserve: 0,
        header_timeout: state.config.header_timeout,
    };
    let metrics = state.metrics.clone();
    let public_router = match console {
        Some(c) => router(state.clone()).merge(c),
        None => router(state.clone()),
    };
    let public = crate::edge::serve(
        listener,
        public_router,
        busy_router(),
        limits,
        Some(metrics),
        {
            let mut rx = rx.clone();
            async move {
                tokio::select! { _ = rx.wait_for(|stop| *stop) => {}, _ = signal => {} }
            }
        },
    );
    let private = async move {
        if let Some(l) = metrics_listener {
            let mut rx = rx;
            let stop = async move {
                let _ = rx.wait_for(|stop| *stop).await;
            };
            crate::edge::serve(
                l,
                metrics_router(state),
                Router::new(),
                metrics_limits,
                None,
                stop,
            )
            .await;
        }
    };
    // The metrics listener stops with the public one (on a signal too).
    let stop_metrics = tx.clone();
    let task = tokio::spawn(async move {
        tokio::join!(
            async move {
                public.await;
                let _ = stop_metrics.send(true);
            },
            private
        );
        Ok(())
    });
    tracing::info!(%addr, metrics = ?metrics_addr, "doorstep-server listening");
    Ok(ServerHandle {
        addr,
        metrics_addr,
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
    Router::new()
        .route("/v1/sync", post(sync_handler::<S>))
        .route("/v1/enroll", post(enroll_handler::<S>))
        .route("/v1/blobs/{hash}/status", get(blobs::status::<S>))
        .route("/v1/blobs/{hash}/{offset}", put(blobs::chunk::<S>))
        .route("/v1/blobs/{hash}", get(blobs::download::<S>))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// The reserve's router (connections over the limit): liveness answers, the rest is asked
/// to come back.
fn busy_router() -> Router {
    Router::new().route("/healthz", get(healthz)).fallback(busy)
}

/// The metrics listener's router.
fn metrics_router<S: ServerStore>(state: Shared<S>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler::<S>))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::RETRY_AFTER, "1"),
        ],
        "busy, retry later\n",
    )
        .into_response()
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

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The client's address: the TCP peer, or for a connection from a trusted proxy the last
/// address of `X-Forwarded-For` (the one that proxy added; earlier ones are the client's
/// say). A last entry that is not an address leaves the proxy's own.
pub(crate) fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let canonical = |a: IpAddr| a.to_canonical();
    let peer = canonical(peer);
    if !trusted.iter().any(|t| canonical(*t) == peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok())
        .map_or(peer, canonical)
}

/// Why a request body was not read.
#[derive(Clone, Copy, Debug)]
enum BodyError {
    TooLarge,
    TimedOut,
    Broken,
}

impl BodyError {
    fn reason(self) -> &'static str {
        match self {
            BodyError::TooLarge => "body_too_large",
            BodyError::TimedOut => "body_timeout",
            BodyError::Broken => "body_unreadable",
        }
    }

    fn response<S: ServerStore>(self, state: &AppState<S>) -> Response {
        match self {
            BodyError::TooLarge => {
                state.metrics.bad_requests.fetch_add(1, Relaxed);
                plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
            }
            BodyError::TimedOut => {
                state.metrics.body_timeouts.fetch_add(1, Relaxed);
                plain(
                    StatusCode::REQUEST_TIMEOUT,
                    "request body not received in time\n",
                )
            }
            BodyError::Broken => {
                state.metrics.bad_requests.fetch_add(1, Relaxed);
                plain(StatusCode::BAD_REQUEST, "request body could not be read\n")
            }
        }
    }
}

/// Read a whole body of at most `limit` bytes by `deadline`. A declared length over the
/// limit is refused before reading.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<Bytes, BodyError> {
    if content_length(headers).is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    match tokio::time::timeout_at(deadline, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(BodyError::TimedOut),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(if e.into_inner().is::<LengthLimitError>() {
            BodyError::TooLarge
        } else {
            BodyError::Broken
        }),
    }
}

impl<S: ServerStore> AppState<S> {
    /// Run `f` on the blocking pool once a slot (`max_concurrent_syncs`) is free; the slot
    /// is released when `f` ends, even if the caller stopped waiting. `None` if it panicked
    /// (automerge may panic on hostile input: the panic ends this request only).
    async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(&AppState<S>) -> T + Send + 'static,
    {
        let slot = self.slots.clone().acquire_owned().await.ok()?;
        let state = self.clone();
        let done = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            catch_unwind(AssertUnwindSafe(|| f(&state))).ok()
        })
        .await
        .ok()
        .flatten();
        if done.is_none() {
            tracing::error!("request panicked");
        }
        done
    }

    /// Reserve room for a body of `bytes` in the body memory budget (at most all of it).
    async fn reserve_body_memory(&self, bytes: u64) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let total = (self.config.body_memory / 1024).max(1) as u64;
        let kib = bytes.div_ceil(1024).clamp(1, total);
        let kib = u32::try_from(kib).unwrap_or(u32::MAX);
        self.body_budget.clone().acquire_many_owned(kib).await.ok()
    }
}

enum Outcome {
    Ok(Vec<u8>, usize, usize),
    Unauthorized(bool),
    BadRequest(&'static str),
    Failed,
}

async fn sync_handler<S: ServerStore>(State(state): State<Shared<S>>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let Some(token) = bearer(&parts.headers).map(hash_secret) else {
        state.metrics.unauthorized.fetch_add(1, Relaxed);
        return unauthorized(false);
    };
    // A body larger than an unauthenticated one may be is read only once the token is
    // known: an unknown token gets its 401 before the body is read.
    let small =
        content_length(&parts.headers).is_some_and(|n| n <= UNAUTHENTICATED_BODY_LIMIT as u64);
    if !small {
        let t = token.clone();
        let auth = tokio::time::timeout(
            state.config.request_timeout,
            state.blocking(move |st| st.sync.store().authenticate(&t)),
        )
        .await;
        match auth {
            Ok(Some(Ok(Some(a)))) if !a.revoked => {}
            Ok(Some(Ok(Some(_)))) => {
                state.metrics.unauthorized.fetch_add(1, Relaxed);
                return unauthorized(true);
            }
            Ok(Some(Ok(None))) => {
                state.metrics.unauthorized.fetch_add(1, Relaxed);
                return unauthorized(false);
            }
            Ok(Some(Err(e))) => {
                tracing::error!(error = %e, "authentication failed");
                state.metrics.sync_errors.fetch_add(1, Relaxed);
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "sync failed\n");
            }
            Ok(None) => {
                state.metrics.sync_errors.fetch_add(1, Relaxed);
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "sync failed\n");
            }
            Err(_) => {
                state.metrics.sync_errors.fetch_add(1, Relaxed);
                return plain(StatusCode::SERVICE_UNAVAILABLE, "timed out\n");
            }
        }
    }
    let receiving = Instant::now();
    let body_deadline = tokio::time::Instant::now() + state.config.body_timeout;
    // A large body waits for room in the body memory budget (within its body timeout), so
    // that many uploads at once, even with a valid token, cannot exhaust the memory.
    let budget = if small {
        None
    } else {
        let declared = content_length(&parts.headers);
        if declared.is_some_and(|n| n > state.config.body_limit as u64) {
            return BodyError::TooLarge.response(&state);
        }
        let need = declared.unwrap_or(state.config.body_limit as u64);
        match tokio::time::timeout_at(body_deadline, state.reserve_body_memory(need)).await {
            Ok(Some(permit)) => Some(permit),
            Ok(None) => {
                state.metrics.sync_errors.fetch_add(1, Relaxed);
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "sync failed\n");
            }
            Err(_) => return BodyError::TimedOut.response(&state),
        }
    };
    let body = match read_body(body, &parts.headers, state.config.body_limit, body_deadline).await {
        Ok(b) => b,
        Err(e) => return e.response(&state),
    };
    state.metrics.bytes_in.fetch_add(body.len() as u64, Relaxed);
    // The request timeout does not count the time the body took to arrive. The token is
    // checked (again) with the work: a device revoked while uploading gets no data.
    let deadline = started + state.config.request_timeout + receiving.elapsed();
    let work = state.blocking(move |st| {
        // The body's room in the budget is given back when the work on it ends.
        let _budget = budget;
        let auth = match st.sync.store().authenticate(&token) {
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
        match st.sync.sync_hashed(&auth, &req) {
            Ok((resp, known)) => {
                let pushed: usize = req.push.iter().map(|d| d.changes.len()).sum();
                let served: usize = resp.pull.iter().map(|d| d.changes.len()).sum();
                tracing::info!(
                    device = %auth.device, pushed, served, snapshots = resp.snapshots.len(),
                    refused = resp.errors.len(), more = resp.more, "sync"
                );
                Outcome::Ok(resp.encode_with_hashes(&known), pushed, served)
            }
            Err(e) => {
                tracing::error!(device = %auth.device, error = %e, "sync failed");
                Outcome::Failed
            }
        }
    });
    let outcome = match tokio::time::timeout_at(deadline.into(), work).await {
        Ok(Some(o)) => o,
        Ok(None) => Outcome::Failed,
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

/// A refused enrolment attempt: counted, and logged with the client's address and a reason
/// code only (never the code that was tried).
fn enrol_refused<S: ServerStore>(state: &AppState<S>, client: IpAddr, reason: &'static str) {
    state.metrics.enrol_failures.fetch_add(1, Relaxed);
    tracing::warn!(%client, reason, "enrolment refused");
}

async fn enroll_handler<S: ServerStore>(
    State(state): State<Shared<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let client = client_addr(peer.ip(), &parts.headers, &state.config.trusted_proxies);
    let body = match read_body(
        body,
        &parts.headers,
        UNAUTHENTICATED_BODY_LIMIT,
        tokio::time::Instant::now() + state.config.body_timeout,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => {
            enrol_refused(&state, client, e.reason());
            return e.response(&state);
        }
    };
    let Ok(req) = serde_json::from_slice::<EnrollRequest>(&body) else {
        enrol_refused(&state, client, "malformed");
        state.metrics.bad_requests.fetch_add(1, Relaxed);
        return plain(StatusCode::BAD_REQUEST, "expected {\"code\": \"...\"}\n");
    };
    let code = normalise_code(&req.code);
    if code.is_empty() || code.len() > 64 {
        enrol_refused(&state, client, "malformed_code");
        state.metrics.unauthorized.fetch_add(1, Relaxed);
        return unauthorized(false);
    }
    // A guess at a code: it takes a token from its address's bucket (before the lookup, so
    // concurrent guesses cannot all pass), and a successful one gives it back, so in effect
    // failed guesses are limited. Requests that cannot be a code (above) are refused
    // without a lookup and need no limit.
    if let Err(wait) = state.enrolments.acquire(client, Instant::now()) {
        state.metrics.enrol_rate_limited.fetch_add(1, Relaxed);
        // Counted, not logged at warn level: a flood must not flood the log.
        tracing::debug!(%client, reason = "rate_limited", "enrolment refused");
        let secs = crate::ratelimit::retry_after_secs(wait).to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (header::RETRY_AFTER, secs),
            ],
            "too many enrolment attempts from this address; retry later\n",
        )
            .into_response();
    }
    let redeemed = state
        .blocking(move |st| {
            crate::credentials::redeem_code(st.sync.store().as_ref(), &code, crate::now_ms())
        })
        .await;
    match redeemed {
        Some(Ok(Some((auth, token)))) => {
            state.enrolments.refund(client, Instant::now());
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
        Some(Ok(None)) => {
            enrol_refused(&state, client, "unknown_code");
            state.metrics.unauthorized.fetch_add(1, Relaxed);
            unauthorized(false)
        }
        Some(Err(e)) => {
            // The server's failure, not the client's: the attempt does not count.
            state.enrolments.refund(client, Instant::now());
            tracing::error!(error = %e, "enrolment failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "enrolment failed\n")
        }
        None => {
            state.enrolments.refund(client, Instant::now());
            plain(StatusCode::INTERNAL_SERVER_ERROR, "enrolment failed\n")
        }
    }
}

async fn metrics_handler<S: ServerStore>(State(state): State<Shared<S>>) -> Response {
    let mut body = state.metrics.render();
    if let Some(w) = state.sync.store().write_stats() {
        body.push_str(&crate::metrics::render_write_stats(&w));
    }
    body.push_str(&crate::metrics::render_cache_stats(
        &state.sync.cache_stats(),
    ));
    match state.blocking(|st| st.sync.store().blob_stats()).await {
        Some(Ok(b)) => body.push_str(&crate::metrics::render_blob_stats(&b)),
        Some(Err(e)) => tracing::error!(error = %e, "blob statistics failed"),
        None => {}
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_comes_from_a_trusted_proxy_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.4".parse().unwrap(),
        );
        let proxy = [ip("127.0.0.1")];
        // Not from a trusted proxy: the header is the client's say and ignored.
        assert_eq!(client_addr(ip("192.0.2.1"), &h, &proxy), ip("192.0.2.1"));
        // From one: the last hop, the one the proxy added.
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &proxy), ip("198.51.100.4"));
        assert_eq!(
            client_addr(ip("::ffff:127.0.0.1"), &h, &proxy),
            ip("198.51.100.4")
        );
        h.insert("x-forwarded-for", "198.51.100.4, junk".parse().unwrap());
        assert_eq!(client_addr(ip("127.0.0.1"), &h, &proxy), ip("127.0.0.1"));
        assert_eq!(
            client_addr(ip("127.0.0.1"), &HeaderMap::new(), &proxy),
            ip("127.0.0.1")
        );
    }
}
