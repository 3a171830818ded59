//! What an app hands a running `sync`: a listener for progress and a handle to cancel it.
//! The loop itself is the core's (`doorstep_core::transport::HttpTransport::sync_with`).

use std::sync::Arc;

use doorstep_core::transport as core;
pub use doorstep_core::transport::SyncProgress;

use crate::observe::ObserverError;

/// How far a running `sync` has got, after each round trip. During a new phone's first
/// download `snapshots_expected` estimates the total, for a percentage.
// The core's own type (UniFFI remote record: the fields are checked against it at compile time).
#[uniffi::remote(Record)]
pub struct SyncProgress {
    pub round_trips: u32,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Distinct documents that changed on this phone so far (pulled or first received).
    pub documents_received: u64,
    /// This phone's documents the server acknowledged so far.
    pub documents_acknowledged: u64,
    /// Snapshots received so far (a new phone's first download).
    pub snapshots: u64,
    /// The phone is still receiving its first copy of the station's documents.
    pub bootstrapping: bool,
    /// While bootstrapping: the snapshots so far plus what the server has still to send.
    pub snapshots_expected: Option<u64>,
}

/// Implemented by the app to hear a sync's progress. Called on the library's sync thread
/// after each round trip: keep it quick and hop to the UI thread yourself. A listener that
/// throws is ignored; the sync goes on.
#[uniffi::export(with_foreign)]
pub trait SyncProgressListener: Send + Sync {
    fn on_progress(&self, progress: SyncProgress) -> Result<(), ObserverError>;
}

/// Cancels the `sync` it was passed to, from any thread: the Rust work stops at its next
/// safe point (a wait for the network is abandoned at once; a response being applied is
/// applied whole first) and `sync` fails with `Cancelled`. Cancelling the coroutine or
/// Swift `Task` running `sync` does the same without a handle.
#[derive(Debug, Default, uniffi::Object)]
pub struct SyncCancel {
    pub(crate) token: core::CancelToken,
}

#[uniffi::export]
impl SyncCancel {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    pub fn cancel(&self) {
        self.token.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
}
