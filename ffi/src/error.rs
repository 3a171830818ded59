//! The one public error of the bindings, mapped from the core's errors in one place.
//! Messages name rules and kinds of records, never a name, a note or an ID number.

use doorstep_core::Error as Core;

/// Everything a Doorstep call can fail with. What the app should do is in `docs/embedding.md`.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum DoorstepError {
    /// A value the model refuses (bad id, date, empty required field, splice out of range...).
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },
    /// No such record in this store.
    #[error("{what} not found")]
    NotFound { what: String },
    /// The visit is final; record an amendment instead.
    #[error("the visit is finalised")]
    VisitFinalised,
    /// The status machine does not allow this step.
    #[error("cannot go from {from} to {to}")]
    InvalidTransition { from: String, to: String },
    /// The field has concurrent values waiting for a human: resolve the conflict first.
    #[error("the field has an open conflict")]
    OpenConflict,
    /// There is no open conflict on that field.
    #[error("no open conflict on that field")]
    NoConflict,
    /// The key does not open this store.
    #[error("wrong key")]
    WrongKey,
    /// The file is not a Doorstep store.
    #[error("not a Doorstep store")]
    NotAStore,
    /// The store file is damaged.
    #[error("the store is damaged")]
    Damaged,
    /// The store was written by a newer app version.
    #[error("the store needs a newer app version")]
    NeedsNewerApp,
    /// The server refused this device; with `wipe`, erase local data (`wipe()`).
    #[error("unauthorized (wipe: {wipe})")]
    Unauthorized { wipe: bool },
    /// The network failed; try again later (offline is normal in the field).
    #[error("network: {reason}")]
    Network { reason: String },
    /// The server answered with an error status.
    #[error("server error {status}")]
    Server { status: u16 },
    /// Bytes from the server or a peer could not be decoded.
    #[error("protocol: {reason}")]
    Protocol { reason: String },
    /// Local storage failed (disk full, I/O).
    #[error("storage: {reason}")]
    Storage { reason: String },
    /// The store was closed (after `wipe()`).
    #[error("the store is closed")]
    Closed,
    /// The call was cancelled (its `SyncCancel`, or its coroutine / Swift `Task`); what it
    /// had applied stays applied, and the next call carries on from there.
    #[error("cancelled")]
    Cancelled,
}

impl From<Core> for DoorstepError {
    fn from(e: Core) -> Self {
        match e {
            Core::InvalidInput(r) => DoorstepError::InvalidInput {
                reason: r.to_owned(),
            },
            Core::NotFound(w) => DoorstepError::NotFound { what: w.to_owned() },
            Core::VisitFinalised => DoorstepError::VisitFinalised,
            Core::InvalidTransition { from, to, .. } => DoorstepError::InvalidTransition {
                from: from.to_owned(),
                to: to.to_owned(),
            },
            Core::OpenConflict => DoorstepError::OpenConflict,
            Core::NoConflict => DoorstepError::NoConflict,
            Core::WrongKey => DoorstepError::WrongKey,
            Core::NotAStore => DoorstepError::NotAStore,
            Core::Damaged => DoorstepError::Damaged,
            Core::SchemaTooNew { .. } => DoorstepError::NeedsNewerApp,
            Core::Unauthorized { wipe } => DoorstepError::Unauthorized { wipe },
            Core::Transport(r) => DoorstepError::Network { reason: r },
            Core::Network { .. } => DoorstepError::Network {
                reason: e.to_string(),
            },
            Core::Cancelled => DoorstepError::Cancelled,
            Core::Server(status) => DoorstepError::Server { status },
            Core::Protocol(w) => DoorstepError::Protocol {
                reason: w.to_string(),
            },
            Core::MalformedDocument(_) | Core::NotAHousehold(_) | Core::MissingDependencies(_) => {
                DoorstepError::Protocol {
                    reason: e.to_string(),
                }
            }
            Core::Storage(_) | Core::Io(_) => DoorstepError::Storage {
                reason: e.to_string(),
            },
        }
    }
}

pub(crate) fn invalid(reason: &str) -> DoorstepError {
    DoorstepError::InvalidInput {
        reason: reason.to_owned(),
    }
}

pub type Result<T, E = DoorstepError> = std::result::Result<T, E>;
