//! The sweep of abandoned partial uploads (issue 20, ADR 0029). A device that started an
//! upload and never came back leaves a partial blob (its chunks, perhaps a cut chunk's
//! tail) that counts against its limit and holds a child's photo in part. `serve` sweeps
//! the uploads untouched for longer than `--partial-upload-days` when it starts and then
//! every [`SWEEP_EVERY`]; `doorstep-server blobs sweep` does it once.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::metrics::Metrics;
use crate::store::blobs::{BlobStore, BlobSweep};
use crate::store::{ServerStore, StoreResult};

/// Default of `--partial-upload-days`: a phone off the network for a week resumes from its
/// first byte.
pub const DEFAULT_PARTIAL_UPLOAD_DAYS: u32 = 7;

/// How often a serving server sweeps.
pub const SWEEP_EVERY: Duration = Duration::from_secs(6 * 60 * 60);

const DAY_MS: i64 = 86_400_000;

/// Delete the partial uploads last touched more than `days` days before `now_ms`.
pub fn sweep<S: BlobStore + ?Sized>(store: &S, days: u32, now_ms: i64) -> StoreResult<BlobSweep> {
    let before = now_ms.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
    let swept = store.sweep_partial_blobs(before)?;
    if swept.blobs > 0 {
        tracing::info!(
            blobs = swept.blobs,
            bytes = swept.bytes,
            days,
            "abandoned partial uploads swept"
        );
    }
    Ok(swept)
}

/// One sweep on the blocking pool, counted in the metrics; a failure is logged and the next
/// sweep tries again.
pub(crate) async fn sweep_now<S: ServerStore>(store: Arc<S>, days: u32, metrics: &Metrics) {
    let done = tokio::task::spawn_blocking(move || sweep(store.as_ref(), days, crate::now_ms()));
    match done.await {
        Ok(Ok(swept)) => {
            metrics.blob_partial_swept.fetch_add(swept.blobs, Relaxed);
        }
        Ok(Err(e)) => tracing::error!(error = %e, "sweep of partial uploads failed"),
        Err(_) => tracing::error!("sweep of partial uploads failed"),
    }
}

/// Sweep every [`SWEEP_EVERY`] until `stop` turns true or the server is gone (the first
/// sweep is the caller's, at start). The store is held weakly: a server aborted (a crash in
/// a test) closes its database as before.
pub(crate) async fn every<S: ServerStore>(
    store: Weak<S>,
    days: u32,
    metrics: Arc<Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let Some(store) = store.upgrade() else {
            return;
        };
        sweep_now(store, days, &metrics).await;
    }
}
