//! Counters and a latency histogram, served as Prometheus text at `GET /metrics` (on the
//! metrics listener, not the public address).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

#[derive(Debug, Default)]
pub struct Metrics {
    pub syncs: AtomicU64,
    pub sync_errors: AtomicU64,
    pub unauthorized: AtomicU64,
    pub bad_requests: AtomicU64,
    pub enrolments: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub changes_accepted: AtomicU64,
    pub changes_served: AtomicU64,
    /// Enrolment attempts refused (unknown, used or expired code; malformed; too slow).
    pub enrol_failures: AtomicU64,
    /// Enrolment attempts answered `429` (the address had too many failures).
    pub enrol_rate_limited: AtomicU64,
    /// Requests whose body did not arrive within the body timeout.
    pub body_timeouts: AtomicU64,
    /// Connections accepted while the connection limit was reached (served by the reserve
    /// or closed).
    pub connections_over_limit: AtomicU64,
    /// Connections open now within the limit (a gauge).
    pub connections_open: AtomicU64,
    /// Attachment chunk bytes received (bodies of `PUT /v1/blobs/..`).
    pub blob_bytes_in: AtomicU64,
    /// Attachment bytes served (bodies of `GET /v1/blobs/..`).
    pub blob_bytes_out: AtomicU64,
    /// Attachments completed (their whole hash checked).
    pub blob_uploads: AtomicU64,
    /// Status requests for a blob the server held whole already (nothing was sent again).
    pub blob_dedup: AtomicU64,
    /// Blob requests refused (malformed, not referenced, too large, corrupt chunk ...).
    pub blob_refusals: AtomicU64,
    /// Abandoned partial uploads deleted by the sweep (ADR 0029).
    pub blob_partial_swept: AtomicU64,
    buckets: [AtomicU64; BUCKETS_MS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl Metrics {
    pub fn observe_latency(&self, elapsed: std::time::Duration) {
        let ms = elapsed.as_millis() as u64;
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if ms <= *b {
                self.buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_us
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = [
            (
                "doorstep_syncs_total",
                "Sync requests answered",
                &self.syncs,
            ),
            (
                "doorstep_sync_errors_total",
                "Sync requests that failed on the server",
                &self.sync_errors,
            ),
            (
                "doorstep_unauthorized_total",
                "Requests with a missing, unknown or revoked token",
                &self.unauthorized,
            ),
            (
                "doorstep_bad_requests_total",
                "Requests refused as malformed",
                &self.bad_requests,
            ),
            (
                "doorstep_enrolments_total",
                "Devices enrolled",
                &self.enrolments,
            ),
            (
                "doorstep_bytes_received_total",
                "Sync request body bytes",
                &self.bytes_in,
            ),
            (
                "doorstep_bytes_sent_total",
                "Sync response body bytes",
                &self.bytes_out,
            ),
            (
                "doorstep_changes_accepted_total",
                "Changes appended to change logs",
                &self.changes_accepted,
            ),
            (
                "doorstep_changes_served_total",
                "Changes sent to devices",
                &self.changes_served,
            ),
            (
                "doorstep_enrol_failures_total",
                "Enrolment attempts refused (unknown, used or expired code, malformed, too slow)",
                &self.enrol_failures,
            ),
            (
                "doorstep_enrol_rate_limited_total",
                "Enrolment attempts answered 429 (too many failures from the address)",
                &self.enrol_rate_limited,
            ),
            (
                "doorstep_body_timeouts_total",
                "Requests whose body did not arrive within the body timeout",
                &self.body_timeouts,
            ),
            (
                "doorstep_blob_bytes_received_total",
                "Attachment chunk bytes received",
                &self.blob_bytes_in,
            ),
            (
                "doorstep_blob_bytes_sent_total",
                "Attachment bytes served",
                &self.blob_bytes_out,
            ),
            (
                "doorstep_blob_uploads_total",
                "Attachments completed and checked against their hash",
                &self.blob_uploads,
            ),
            (
                "doorstep_blob_dedup_total",
                "Attachment uploads the server already held whole (no bytes sent)",
                &self.blob_dedup,
            ),
            (
                "doorstep_blob_refusals_total",
                "Attachment requests refused",
                &self.blob_refusals,
            ),
            (
                "doorstep_blob_partial_swept_total",
                "Abandoned partial uploads deleted by the sweep",
                &self.blob_partial_swept,
            ),
            (
                "doorstep_connections_over_limit_total",
                "Connections accepted over the connection limit (reserve or closed)",
                &self.connections_over_limit,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        }
        let name = "doorstep_connections_open";
        let _ = writeln!(
            out,
            "# HELP {name} Connections open within the connection limit\n# TYPE {name} gauge\n{name} {}",
            self.connections_open.load(Relaxed)
        );
        let name = "doorstep_sync_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to answer a sync request\n# TYPE {name} histogram"
        );
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {}",
                *b as f64 / 1000.0,
                self.buckets[i].load(Relaxed)
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.latency_sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

/// The store's write grouping (SQLite's group commit): transactions, the writes in them,
/// and the writes waiting now. Writes per transaction is the group size.
pub fn render_write_stats(w: &crate::store::WriteStats) -> String {
    let mut out = String::new();
    for (name, help, kind, v) in [
        (
            "doorstep_store_transactions_total",
            "Write transactions (one fsync each when committed)",
            "counter",
            w.transactions,
        ),
        (
            "doorstep_store_writes_total",
            "Store writes, grouped into those transactions",
            "counter",
            w.writes,
        ),
        (
            "doorstep_store_writes_queued",
            "Store writes waiting for the writer now",
            "gauge",
            w.queued as u64,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
    out
}

/// The document cache: documents and estimated bytes held, their peak, the limit (gauges).
pub fn render_cache_stats(c: &crate::sync::CacheStats) -> String {
    let mut out = String::new();
    for (name, help, v) in [
        (
            "doorstep_cache_documents",
            "Documents kept loaded in the cache",
            c.documents,
        ),
        (
            "doorstep_cache_bytes",
            "Estimated bytes of the documents kept loaded",
            c.bytes,
        ),
        (
            "doorstep_cache_peak_bytes",
            "The most doorstep_cache_bytes has been since start",
            c.peak_bytes,
        ),
        (
            "doorstep_cache_limit_bytes",
            "The cache's limit (--cache-mib)",
            c.limit_bytes,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    out
}

/// Attachments held: count and bytes, whole and partial (gauges).
pub fn render_blob_stats(b: &crate::store::blobs::BlobStats) -> String {
    let mut out = String::new();
    for (name, help, v) in [
        ("doorstep_blobs", "Attachments held whole", b.complete),
        (
            "doorstep_blob_bytes",
            "Bytes of attachments held whole",
            b.complete_bytes,
        ),
        (
            "doorstep_blobs_partial",
            "Attachment uploads under way",
            b.partial,
        ),
        (
            "doorstep_blob_partial_bytes",
            "Bytes held of attachment uploads under way",
            b.partial_bytes,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    out
}
