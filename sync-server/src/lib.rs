//! # doorstep-server
//!
//! The sync server: authenticates devices, validates and merges their edits, and serves
//! each device its station's data, over `POST /v1/sync` (the protocol of
//! `docs/protocol.md`). Storage is behind the [`store::ServerStore`] trait; SQLite is the
//! embedded default.

pub mod api;
pub mod blob_sweep;
pub mod cards;
pub mod caseload;
pub mod console;
pub mod credentials;
pub mod demo;
mod edge;
pub mod edge_args;
pub mod erasure;
pub mod metrics;
pub mod pinned;
pub mod ratelimit;
pub mod redaction;
pub mod retirement;
pub mod snapshot;
mod station_doc;
pub mod station_time;
pub mod store;
pub mod sync;
pub mod vocabulary;
pub mod workers;

pub use api::{serve, ServerConfig, ServerHandle};
pub use store::sqlite::SqliteStore;

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
