//! An HTTP transport for the sync protocol (feature `http`): a reqwest client that runs
//! round trips until the server has nothing more, with timeouts, progress, a deadline and
//! cancellation. Apps with their own HTTP stack use `Store::prepare_sync_request` /
//! `Store::apply_sync_response` instead.
//!
//! Safe points: a round trip is one request and one response applied in one transaction
//! (`Store::apply_sync_response`), and the cursor moves only with that transaction. So the
//! loop may stop before a round, or abandon a round while it waits for the network (the
//! server may have acted; the next request repeats it harmlessly, acknowledged by change
//! hash), but never half-way through applying a response. The next `sync` resumes from the
//! saved cursor: nothing is lost and nothing pulled twice.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::{Error, NetworkFailure, Result};
use crate::model::ids::HouseholdId;
use crate::protocol::budget::{LinkEstimate, DEFAULT_ROUND_TRIP_TARGET};
use crate::protocol::{
    declared_size, EnrollRequest, Enrollment, Phase, Unauthorized, SYNC_CONTENT_TYPE,
};
use crate::store::{Store, SyncOutcome};

mod attachments;
mod failure;
pub use attachments::{AttachmentUploadReport, PinnedFetchReport};
use failure::transport_error;

/// Response size asked of the server before the link is measured (afterwards: the link's
/// rate × the round-trip target; see [`HttpTransport::with_round_trip_target`]).
pub const DEFAULT_BUDGET: u32 = crate::protocol::budget::FIRST_BUDGET;
/// Round trips one `sync` call makes at most before it reports an error (a server that
/// always says `more` would otherwise keep a phone busy forever).
const MAX_ROUNDS: u32 = 10_000;

/// What one `sync` call did, for the app and for benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub round_trips: u32,
    /// The response budget asked for in each round trip, in order (bytes; ADR 0039).
    pub budgets: Vec<u32>,
    /// Bytes of changes and snapshots received, in the budget's unit (see
    /// [`SyncOutcome::pulled_bytes`]).
    pub pulled_bytes: u64,
    /// Request bodies as sent.
    pub bytes_up: u64,
    /// Response bodies as received.
    pub bytes_down: u64,
    pub acknowledged: usize,
    pub pulled: usize,
    pub snapshots: usize,
    pub refused: usize,
    pub epoch_reset: bool,
    /// Households (and the station document) that changed here, each once, in id order.
    pub changed: Vec<HouseholdId>,
    /// Households the server erased that this device held, deleted here (with any
    /// unsynced changes to them: see `discarded_changes`).
    pub erased: Vec<crate::store::ErasedHousehold>,
    /// Households the server redacted that this device held: replaced by their new
    /// generation, this device's unsynced edits rebased onto it (ADR 0026).
    pub redacted: Vec<crate::store::RedactedHousehold>,
    /// Households that left the worker's scope and were removed here, this device's edits
    /// to them handed in first (see `Store::departed_households`).
    pub departed: Vec<HouseholdId>,
    /// Neither side has more. `false` when the deadline stopped the loop between rounds:
    /// call `sync` again later; it resumes where this one stopped.
    pub complete: bool,
}

/// How far a running `sync` has got, reported after every round trip.
///
/// During a new phone's first download, `snapshots_expected` estimates the total (the
/// snapshots so far plus what the server's last answer said it has still to send), so the
/// app can show a percentage; elsewhere it is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncProgress {
    pub round_trips: u32,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Distinct documents that changed here so far (pulled changes or snapshots).
    pub documents_received: u64,
    /// Pushed documents the server acknowledged so far.
    pub documents_acknowledged: u64,
    /// Snapshots received so far (a new phone's first download).
    pub snapshots: u64,
    /// The device is still receiving its first copy of the station's documents.
    pub bootstrapping: bool,
    /// While bootstrapping: `snapshots` plus the documents the server has still to send.
    pub snapshots_expected: Option<u64>,
}

/// Receives [`SyncProgress`] after each round trip, on the thread running the sync. Keep it
/// quick: the next round waits for it.
pub type ProgressSink = Arc<dyn Fn(&SyncProgress) + Send + Sync>;

/// Stops a running `sync` at its next safe point when [`CancelToken::cancel`] is called
/// (from any thread); a wait for the network is abandoned at once. Clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<CancelInner>);

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    waiting: Mutex<Vec<Waker>>,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        let waiting = std::mem::take(&mut *self.waiting());
        for w in waiting {
            w.wake();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        // A waker list stays valid even if a holder panicked.
        self.0.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `work`, unless the token is cancelled first (then `Error::Cancelled`; `work` is
    /// dropped, which hangs up its connection).
    async fn or_cancelled<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let mut work = pin!(work);
        std::future::poll_fn(|cx| {
            if self.is_cancelled() {
                return Poll::Ready(Err(Error::Cancelled));
            }
            {
                let mut waiting = self.waiting();
                if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    waiting.push(cx.waker().clone());
                }
            }
            // Cancelled between the check and the registration: it woke nobody.
            if self.is_cancelled() {
                return Poll::Ready(Err(Error::Cancelled));
            }
            work.as_mut().poll(cx)
        })
        .await
    }
}

/// What the caller of [`HttpTransport::sync_with`] controls.
#[derive(Clone, Default)]
pub struct SyncControl {
    /// Stop cleanly before this instant (a WorkManager / BGTaskScheduler window): no round
    /// is started that the slowest round so far would not finish in time, and a round
    /// still waiting for the network at the deadline is abandoned (its response unapplied).
    pub deadline: Option<Instant>,
    pub cancel: CancelToken,
    pub progress: Option<ProgressSink>,
}

impl std::fmt::Debug for SyncControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncControl")
            .field("deadline", &self.deadline)
            .field("cancel", &self.cancel)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What a transport has measured of its link, shared by its clones and by any transport
/// handed it with [`HttpTransport::with_link`] (an app keeps one for the life of the
/// process: each `sync` then starts from what the last one measured).
pub type SharedLink = Arc<Mutex<LinkEstimate>>;

/// A sync client for one server and one device token.
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    base: String,
    token: String,
    /// A budget fixed by the app; `None`: chosen from the link.
    budget: Option<u32>,
    target: Duration,
    link: SharedLink,
    timeout: Duration,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The server's base address, checked before any request: an app can tell a mistyped
/// address from a network that is down.
fn base_url(url: &str) -> Result<String> {
    let invalid = |detail: &str| Error::Network {
        failure: NetworkFailure::InvalidUrl,
        detail: detail.to_owned(),
    };
    let base = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(base).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("the address must start with http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the address has no host"));
    }
    Ok(base.to_owned())
}

/// A connection left idle this long is not used again: the next request opens a new one.
/// The server closes a keep-alive connection idle for its header timeout (10 s by
/// default, `--header-timeout-secs`), and a request sent on it as it closes fails with
/// "connection closed" although the server was never reached. Reusing only connections
/// idle for less keeps a device's request out of that race (rounds of one sync follow
/// each other at once and still share a connection).
pub const IDLE_CONNECTION_LIMIT: Duration = Duration::from_secs(4);

fn client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(IDLE_CONNECTION_LIMIT)
        .build()
        .map_err(transport_error)
}

async fn unauthorized(resp: reqwest::Response) -> Error {
    let wipe = resp
        .json::<Unauthorized>()
        .await
        .map(|u| u.wipe)
        .unwrap_or(false);
    Error::Unauthorized { wipe }
}

/// Exchange a one-time enrolment code for this device's token.
pub async fn enroll(base_url: &str, code: &str) -> Result<Enrollment> {
    let resp = client(Duration::from_secs(30))?
        .post(format!("{}/v1/enroll", self::base_url(base_url)?))
        .json(&EnrollRequest {
            code: code.trim().to_owned(),
        })
        .send()
        .await
        .map_err(transport_error)?;
    match resp.status().as_u16() {
        200 => resp.json::<Enrollment>().await.map_err(transport_error),
        401 | 403 => Err(Error::Unauthorized { wipe: false }),
        s => Err(Error::Server(s)),
    }
}

impl HttpTransport {
    /// A client for `base_url` (e.g. `https://sync.example.org`) with the device's token;
    /// each round trip times out after `timeout`.
    pub fn new(base_url: &str, token: &str, timeout: Duration) -> Result<Self> {
        Ok(HttpTransport {
            client: client(timeout)?,
            base: self::base_url(base_url)?,
            token: token.to_owned(),
            budget: None,
            target: DEFAULT_ROUND_TRIP_TARGET,
            link: SharedLink::default(),
            timeout,
        })
    }

    /// Always ask for responses of about this many bytes, whatever the link (the server
    /// keeps it within 16 KiB … 32 MiB).
    pub fn with_budget(mut self, budget: u32) -> Self {
        self.budget = Some(budget);
        self
    }

    /// How long a round trip should take (default 4 s): the budget asked is the link's
    /// measured rate × this, so a slow link gets small responses and a fast one large ones.
    /// Before anything is measured the budget is [`DEFAULT_BUDGET`].
    pub fn with_round_trip_target(mut self, target: Duration) -> Self {
        self.target = target;
        self
    }

    /// Measure the link into `link` (and start from what it holds) instead of a fresh
    /// estimate of this transport's own.
    pub fn with_link(mut self, link: SharedLink) -> Self {
        self.link = link;
        self
    }

    /// What this transport has measured of its link.
    pub fn link(&self) -> &SharedLink {
        &self.link
    }

    /// The budget the next request asks for.
    pub fn budget(&self) -> u32 {
        self.budget
            .unwrap_or_else(|| self.estimate().budget(self.target))
    }

    fn estimate(&self) -> std::sync::MutexGuard<'_, LinkEstimate> {
        // An estimate stays valid even if a holder panicked.
        self.link.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count a response of `body` read in `elapsed` (measured in the bytes it declares
    /// decompressed, the budget's unit; its wire size if it declares none).
    fn observe(&self, body: &[u8], elapsed: Duration) {
        let bytes = declared_size(body).unwrap_or(body.len() as u64);
        self.estimate().observe(bytes, elapsed);
    }

    /// One request and its response: the bytes moved and what the store did with them.
    pub async fn round_trip(&self, store: &Store) -> Result<(SyncOutcome, u64, u64)> {
        let body = store.prepare_sync_request(self.budget())?;
        let up = body.len() as u64;
        let started = Instant::now();
        let bytes = self.exchange(body, self.timeout).await?;
        self.observe(&bytes, started.elapsed());
        let outcome = store.apply_sync_response(&bytes)?;
        Ok((outcome, up, bytes.len() as u64))
    }

    /// POST a request body and read the whole response body (the part of a round that
    /// may be abandoned: nothing is applied yet).
    async fn exchange(&self, body: Vec<u8>, timeout: Duration) -> Result<Vec<u8>> {
        let resp = self
            .client
            .post(format!("{}/v1/sync", self.base))
            .timeout(timeout)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, SYNC_CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        match resp.status().as_u16() {
            200 => {}
            401 => return Err(unauthorized(resp).await),
            s => return Err(Error::Server(s)),
        }
        Ok(resp.bytes().await.map_err(transport_error)?.to_vec())
    }

    /// Sync until neither side has more: usually one round trip.
    pub async fn sync(&self, store: &Store) -> Result<SyncReport> {
        self.sync_with(store, &SyncControl::default()).await
    }

    /// [`sync`](Self::sync) with progress, a deadline and cancellation (see
    /// [`SyncControl`]). Stopped by the deadline, it returns `Ok` with `complete: false`;
    /// cancelled, `Err(Error::Cancelled)`. Either way what was applied stays applied and
    /// the next call resumes from there.
    pub async fn sync_with(&self, store: &Store, control: &SyncControl) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let mut documents: BTreeSet<HouseholdId> = BTreeSet::new();
        // The slowest round so far: a round is not started unless that much time is left.
        let mut slowest = Duration::ZERO;
        loop {
            if control.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let mut timeout = self.timeout;
            if let Some(deadline) = control.deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || left < slowest {
                    return Ok(finish(report, documents, false));
                }
                timeout = timeout.min(left);
            }
            let started = Instant::now();
            let budget = self.budget();
            let body = store.prepare_sync_request(budget)?;
            let up = body.len() as u64;
            let sent = Instant::now();
            let bytes = match control
                .cancel
                .or_cancelled(self.exchange(body, timeout))
                .await
            {
                Ok(bytes) => bytes,
                Err(Error::Network {
                    failure: NetworkFailure::Timeout,
                    ..
                }) if control.deadline.is_some_and(|d| Instant::now() >= d) => {
                    // The window closed while the server answered: the response is not
                    // applied, and the next sync asks again.
                    report.bytes_up += up;
                    return Ok(finish(report, documents, false));
                }
                Err(Error::Unauthorized { wipe: true }) => {
                    // Revoked: the data may not stay on this phone. The app deletes the key
                    // and token (Keystore / Keychain), which the library cannot reach.
                    tracing::warn!("device revoked: store wiped");
                    store.wipe_shared()?;
                    return Err(Error::Unauthorized { wipe: true });
                }
                Err(e) => return Err(e),
            };
            self.observe(&bytes, sent.elapsed());
            report.budgets.push(budget);
            // The safe point: from here the round is applied whole, or not at all.
            let o = store.apply_sync_response(&bytes)?;
            slowest = slowest.max(started.elapsed());
            report.round_trips += 1;
            report.bytes_up += up;
            report.bytes_down += bytes.len() as u64;
            report.acknowledged += o.acknowledged;
            report.pulled += o.pulled;
            report.pulled_bytes += o.pulled_bytes;
            report.snapshots += o.snapshots;
            report.refused += o.refused.len();
            report.epoch_reset |= o.epoch_reset;
            report.erased.extend(o.erased.iter().cloned());
            report.redacted.extend(o.redacted.iter().cloned());
            report.departed.extend(o.departed.iter().copied());
            documents.extend(o.changed);
            if let Some(progress) = &control.progress {
                let bootstrapping = matches!(store.sync_cursor()?.phase, Phase::Bootstrap { .. });
                progress(&SyncProgress {
                    round_trips: report.round_trips,
                    bytes_up: report.bytes_up,
                    bytes_down: report.bytes_down,
                    documents_received: documents.len() as u64,
                    documents_acknowledged: report.acknowledged as u64,
                    snapshots: report.snapshots as u64,
                    bootstrapping,
                    snapshots_expected: o
                        .bootstrap_remaining
                        .filter(|_| bootstrapping)
                        .map(|rest| report.snapshots as u64 + rest),
                });
            }
            if !o.more {
                return Ok(finish(report, documents, true));
            }
            if report.round_trips >= MAX_ROUNDS {
                return Err(Error::Transport(format!(
                    "sync did not finish in {MAX_ROUNDS} round trips"
                )));
            }
        }
    }
}

fn finish(mut report: SyncReport, changed: BTreeSet<HouseholdId>, complete: bool) -> SyncReport {
    report.changed = changed.into_iter().collect();
    report.complete = complete;
    report
}
