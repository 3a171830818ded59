//! An HTTP transport for the sync protocol (feature `http`): a reqwest client that runs
//! round trips until the server has nothing more, with timeouts. Apps with their own HTTP
//! stack use `Store::prepare_sync_request` / `Store::apply_sync_response` instead.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::protocol::{EnrollRequest, Enrollment, Unauthorized, SYNC_CONTENT_TYPE};
use crate::store::{Store, SyncOutcome};

/// Response size asked of the server per round trip.
pub const DEFAULT_BUDGET: u32 = 4 * 1024 * 1024;
/// Round trips one `sync` call makes at most before it reports an error.
const MAX_ROUNDS: u32 = 10_000;

/// What one `sync` call did, for the app and for benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub round_trips: u32,
    /// Request bodies as sent.
    pub bytes_up: u64,
    /// Response bodies as received.
    pub bytes_down: u64,
    pub acknowledged: usize,
    pub pulled: usize,
    pub snapshots: usize,
    pub refused: usize,
    pub epoch_reset: bool,
}

/// A sync client for one server and one device token.
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    base: String,
    token: String,
    budget: u32,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn transport_error(e: reqwest::Error) -> Error {
    // reqwest's message names the URL and the failure, never a body.
    Error::Transport(e.without_url().to_string())
}

fn client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
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
        .post(format!("{}/v1/enroll", base_url.trim_end_matches('/')))
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
            base: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            budget: DEFAULT_BUDGET,
        })
    }

    /// Ask for responses of about this many bytes (smaller on a poor link).
    pub fn with_budget(mut self, budget: u32) -> Self {
        self.budget = budget;
        self
    }

    /// One request and its response: the bytes moved and what the store did with them.
    pub async fn round_trip(&self, store: &Store) -> Result<(SyncOutcome, u64, u64)> {
        let body = store.prepare_sync_request(self.budget)?;
        let up = body.len() as u64;
        let resp = self
            .client
            .post(format!("{}/v1/sync", self.base))
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
        let bytes = resp.bytes().await.map_err(transport_error)?;
        let outcome = store.apply_sync_response(&bytes)?;
        Ok((outcome, up, bytes.len() as u64))
    }

    /// Sync until neither side has more: usually one round trip.
    pub async fn sync(&self, store: &Store) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        loop {
            let (o, up, down) = self.round_trip(store).await?;
            report.round_trips += 1;
            report.bytes_up += up;
            report.bytes_down += down;
            report.acknowledged += o.acknowledged;
            report.pulled += o.pulled;
            report.snapshots += o.snapshots;
            report.refused += o.refused.len();
            report.epoch_reset |= o.epoch_reset;
            if !o.more {
                return Ok(report);
            }
            if report.round_trips >= MAX_ROUNDS {
                return Err(Error::Transport("sync did not finish".into()));
            }
        }
    }
}
