//! Change observation: the app registers an observer; the returned subscription stops
//! delivery when dropped (or cancelled). An observer that throws is ignored, never fatal.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// How syncing is going, for a status line in the app.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum SyncState {
    Idle,
    /// A sync is running; `round_trips` so far.
    Syncing {
        round_trips: u32,
    },
    /// The server could not be reached (normal in the field).
    Offline,
    /// The last sync failed; `message` has no personal data.
    Error {
        message: String,
    },
}

/// What observers hear about.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeEvent {
    /// A household changed here (a local edit, changes pulled by a sync, or the server
    /// erased it and it is gone: reading it then answers `NotFound`).
    HouseholdChanged {
        household_id: doorstep_core::HouseholdId,
    },
    /// A group activity or a resource of the register changed here (a local edit or a
    /// sync): `document_id` is the activity's or the resource's id.
    StationWorkChanged {
        document_id: String,
    },
    SyncStateChanged {
        state: SyncState,
    },
}

/// An observer's failure (a thrown exception): reported, then ignored.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ObserverError {
    #[error("observer failed: {reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ObserverError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ObserverError::Failed { reason: e.reason }
    }
}

/// Implemented by the app (Kotlin, Swift, Python) to hear about changes. Called on the
/// thread that made the change: hand work to your UI thread.
#[uniffi::export(with_foreign)]
pub trait Observer: Send + Sync {
    fn on_event(&self, event: ChangeEvent) -> Result<(), ObserverError>;
}

#[derive(Default)]
pub(crate) struct Registry {
    next: AtomicU64,
    observers: Mutex<HashMap<u64, Arc<dyn Observer>>>,
}

impl Registry {
    pub(crate) fn add(self: &Arc<Self>, o: Arc<dyn Observer>) -> Arc<Subscription> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.observers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, o);
        Arc::new(Subscription {
            id,
            registry: Arc::downgrade(self),
        })
    }

    fn remove(&self, id: u64) {
        self.observers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    pub(crate) fn emit(&self, event: ChangeEvent) {
        // Copy the list so an observer may subscribe or cancel from inside its callback.
        let observers: Vec<Arc<dyn Observer>> = self
            .observers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for o in observers {
            // A thrown exception arrives as Err; a panic in Rust code is contained too.
            let _ = catch_unwind(AssertUnwindSafe(|| o.on_event(event.clone())));
        }
    }
}

/// Keeps an observer registered; dropping it (or `cancel()`) stops delivery.
#[derive(uniffi::Object)]
pub struct Subscription {
    id: u64,
    registry: Weak<Registry>,
}

#[uniffi::export]
impl Subscription {
    /// Stop delivery now (also happens when the subscription is dropped).
    pub fn cancel(&self) {
        if let Some(r) = self.registry.upgrade() {
            r.remove(self.id);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}
