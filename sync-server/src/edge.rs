//! The connection edge: accepting TCP connections under a connection limit, with hyper's
//! header-read timeout, a small reserve that keeps `/healthz` answering when the limit is
//! reached, and graceful shutdown.
//!
//! - Each accepted connection takes a permit of `max_connections`; it is served by hyper's
//!   HTTP/1 server with a header-read timeout (which also closes idle keep-alive
//!   connections) and a bounded read buffer.
//! - When no permit is left the connection goes to the *reserve*: served by a tiny router
//!   (`/healthz` answers, everything else gets `503` with `Retry-After`), one request, no
//!   keep-alive. The reserve holds at most `reserve` connections; a newer one closes the
//!   oldest, so a prober that sends its request promptly is answered even while a flood
//!   of stalled connections is arriving.
//! - All connection tasks belong to the serving task: aborting it (a crash, in tests) drops
//!   every connection at once.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};
use tower::ServiceExt;

use crate::metrics::Metrics;

/// Largest request head (and read buffer) per connection: bounds what a connection sending
/// headers slowly can make the server hold. Requests with larger heads get `431`.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// File descriptors kept free besides the connections (database files and connections,
/// the metrics listener, logs).
const FD_MARGIN: u64 = 256;

/// How one listener serves connections.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_connections: usize,
    /// Connections over the limit still served (`/healthz`, `503` for the rest).
    pub reserve: usize,
    pub header_timeout: Duration,
}

/// Serve `app` on `listener` until `shutdown` completes, then finish the requests in flight.
/// `busy` serves the reserve connections.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    busy: Router,
    limits: Limits,
    metrics: Option<Arc<Metrics>>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let count = |counter: fn(&Metrics) -> &AtomicU64| {
        if let Some(m) = &metrics {
            counter(m).fetch_add(1, Relaxed);
        }
    };
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let mut busy_http = http.clone();
    busy_http.keep_alive(false);

    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut reserve = JoinSet::new();
    let mut reserve_order: VecDeque<AbortHandle> = VecDeque::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors (the limit is set to avoid it) or the like:
                    // give the others a moment instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next() => continue,
            Some(_) = reserve.join_next() => continue,
            () = &mut shutdown => break,
        };
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            count(|m| &m.connections_open);
            let conn = http.serve_connection(TokioIo::new(stream), service(app.clone(), peer));
            let conn = graceful.watch(conn);
            let metrics = metrics.clone();
            connections.spawn(async move {
                let _ = conn.await;
                if let Some(m) = metrics {
                    m.connections_open.fetch_sub(1, Relaxed);
                }
                drop(permit);
            });
            continue;
        }
        count(|m| &m.connections_over_limit);
        if limits.reserve == 0 {
            drop(stream);
            continue;
        }
        reserve_order.retain(|h| !h.is_finished());
        while reserve_order.len() >= limits.reserve {
            if let Some(oldest) = reserve_order.pop_front() {
                oldest.abort();
            }
        }
        let conn = busy_http.serve_connection(TokioIo::new(stream), service(busy.clone(), peer));
        reserve_order.push_back(reserve.spawn(async move {
            let _ = conn.await;
        }));
    }
    drop(listener);
    reserve.abort_all();
    // Idle connections close at once; the others after their request.
    graceful.shutdown().await;
    while connections.join_next().await.is_some() {}
}

/// A connection that failed before it was accepted (the client gave up): nothing to do.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// `app` as a hyper service for one connection from `peer` (handlers see it as
/// `ConnectInfo<SocketAddr>`).
fn service(
    app: Router,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Future<Output = Result<axum::response::Response, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    })
}

/// The connections the process can hold: raises the soft limit on open files towards the
/// hard limit if `wanted` connections (plus a margin) would not fit, and returns how many
/// connections fit (at most `wanted`).
pub(crate) fn fd_budget(wanted: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let needed = wanted as u64 + FD_MARGIN;
    let limit = getrlimit(Resource::Nofile);
    let Some(soft) = limit.current else {
        return wanted; // unlimited
    };
    let mut soft = soft;
    if soft < needed {
        let target = limit.maximum.map_or(needed, |hard| hard.min(needed));
        if target > soft {
            let raised = rustix::process::Rlimit {
                current: Some(target),
                maximum: limit.maximum,
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                soft = target;
            }
        }
    }
    let fits = soft.saturating_sub(FD_MARGIN);
    if fits < wanted as u64 {
        tracing::warn!(
            wanted,
            fits,
            "open-file limit too low for the connection limit: lowered it (raise LimitNOFILE)"
        );
        (fits as usize).max(1)
    } else {
        wanted
    }
}
