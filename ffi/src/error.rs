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
    #[error("{reason}")]
    VisitFinalised { reason: String },
    /// The status machine does not allow this step.
    #[error("cannot go from {from} to {to}")]
    InvalidTransition { from: String, to: String },
    /// The field has concurrent values waiting for a human: resolve the conflict first.
    #[error("{reason}")]
    OpenConflict { reason: String },
    /// There is no open conflict on that field.
    #[error("{reason}")]
    NoConflict { reason: String },
    /// The key does not open this store.
    #[error("{reason}")]
    WrongKey { reason: String },
    /// The file is not a Doorstep store.
    #[error("{reason}")]
    NotAStore { reason: String },
    /// The store file is damaged.
    #[error("{reason}")]
    Damaged { reason: String },
    /// The store was written by a newer app version.
    #[error("{reason}")]
    NeedsNewerApp { reason: String },
    /// The server refused this device; with `wipe`, erase local data (`wipe()`).
    #[error("unauthorized (wipe: {wipe})")]
    Unauthorized { wipe: bool },
    /// The server could not be reached. `kind` says what to tell the user: fix the address
    /// (`INVALID_URL`, `DNS`), the server is down (`CONNECTION_REFUSED`), a certificate or
    /// TLS problem (`TLS`), or offline / slow link: retry later (`OFFLINE`, `TIMEOUT`).
    #[error("network ({kind:?}): {reason}")]
    Network {
        kind: NetworkErrorKind,
        reason: String,
    },
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
    #[error("{reason}")]
    Closed { reason: String },
    /// The call was cancelled (its `SyncCancel`, or its coroutine / Swift `Task`); what it
    /// had applied stays applied, and the next call carries on from there.
    #[error("{reason}")]
    Cancelled { reason: String },
    /// A bug in the library (a panic); the message says where, never what data. Report it.
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

/// What kind of network failure a `Network` error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum NetworkErrorKind {
    /// The server address is malformed or uses a scheme this build cannot speak.
    InvalidUrl,
    /// The server's host name did not resolve.
    Dns,
    /// Nothing listens at the server's address and port (server down, wrong port).
    ConnectionRefused,
    /// The secure connection failed (certificate, handshake), or the build has no TLS.
    Tls,
    /// The server did not answer in time.
    Timeout,
    /// Anything else on the way (no network, connection reset): offline, retry later.
    Offline,
}

impl From<doorstep_core::NetworkFailure> for NetworkErrorKind {
    fn from(f: doorstep_core::NetworkFailure) -> Self {
        use doorstep_core::NetworkFailure as F;
        match f {
            F::InvalidUrl => NetworkErrorKind::InvalidUrl,
            F::Dns => NetworkErrorKind::Dns,
            F::ConnectionRefused => NetworkErrorKind::ConnectionRefused,
            F::Tls => NetworkErrorKind::Tls,
            F::Timeout => NetworkErrorKind::Timeout,
            F::Offline => NetworkErrorKind::Offline,
        }
    }
}

impl From<Core> for DoorstepError {
    fn from(e: Core) -> Self {
        // The core's messages name rules and kinds, never record content (core::error).
        let reason = e.to_string();
        match e {
            Core::InvalidInput(r) => DoorstepError::InvalidInput {
                reason: r.to_owned(),
            },
            Core::NotFound(w) => DoorstepError::NotFound { what: w.to_owned() },
            Core::VisitFinalised => DoorstepError::VisitFinalised { reason },
            Core::InvalidTransition { from, to, .. } => DoorstepError::InvalidTransition {
                from: from.to_owned(),
                to: to.to_owned(),
            },
            Core::OpenConflict => DoorstepError::OpenConflict { reason },
            Core::NoConflict => DoorstepError::NoConflict { reason },
            Core::WrongKey => DoorstepError::WrongKey { reason },
            Core::NotAStore => DoorstepError::NotAStore { reason },
            Core::Damaged => DoorstepError::Damaged { reason },
            Core::SchemaTooNew { .. } => DoorstepError::NeedsNewerApp { reason },
            Core::Unauthorized { wipe } => DoorstepError::Unauthorized { wipe },
            // The bundled transport's own failure (a server that never stops saying `more`).
            Core::Transport(_) => DoorstepError::Protocol { reason },
            Core::Network { failure, detail } => DoorstepError::Network {
                kind: failure.into(),
                reason: format!("{failure} ({detail})"),
            },
            Core::Cancelled => DoorstepError::Cancelled { reason },
            Core::Server(status) => DoorstepError::Server { status },
            Core::Protocol(_)
            | Core::MalformedDocument(_)
            | Core::NotAHousehold(_)
            | Core::MissingDependencies(_) => DoorstepError::Protocol { reason },
            Core::Storage(_) | Core::Io(_) => DoorstepError::Storage { reason },
        }
    }
}

/// The bindings' own refusals and states, with the messages the core would give.
pub(crate) fn closed() -> DoorstepError {
    DoorstepError::Closed {
        reason: "the store is closed (wiped)".into(),
    }
}

pub(crate) fn cancelled() -> DoorstepError {
    DoorstepError::Cancelled {
        reason: "cancelled".into(),
    }
}

/// A panic on the library's runtime. Its payload may quote data, so only the kind is kept.
pub(crate) fn internal() -> DoorstepError {
    DoorstepError::Internal {
        reason: "the library failed unexpectedly (a panic); please report it".into(),
    }
}

pub(crate) fn invalid(reason: &str) -> DoorstepError {
    DoorstepError::InvalidInput {
        reason: reason.to_owned(),
    }
}

pub type Result<T, E = DoorstepError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_core::NetworkFailure;

    /// The text the bindings show for an error: Kotlin's `message` and Python's `str` are
    /// built from the fields, so a variant without a non-empty field would read as "".
    fn fields_text(e: &DoorstepError) -> String {
        match e {
            DoorstepError::InvalidInput { reason }
            | DoorstepError::VisitFinalised { reason }
            | DoorstepError::OpenConflict { reason }
            | DoorstepError::NoConflict { reason }
            | DoorstepError::WrongKey { reason }
            | DoorstepError::NotAStore { reason }
            | DoorstepError::Damaged { reason }
            | DoorstepError::NeedsNewerApp { reason }
            | DoorstepError::Network { reason, .. }
            | DoorstepError::Protocol { reason }
            | DoorstepError::Storage { reason }
            | DoorstepError::Closed { reason }
            | DoorstepError::Cancelled { reason }
            | DoorstepError::Internal { reason } => reason.clone(),
            DoorstepError::NotFound { what } => what.clone(),
            DoorstepError::InvalidTransition { from, to } => format!("{from}{to}"),
            DoorstepError::Unauthorized { wipe } => wipe.to_string(),
            DoorstepError::Server { status } => status.to_string(),
        }
    }

    #[test]
    fn every_error_the_bindings_raise_has_a_message() {
        let core = vec![
            Core::InvalidInput("a rule"),
            Core::NotFound("visit"),
            Core::VisitFinalised,
            Core::InvalidTransition {
                entity: "follow-up",
                from: "done",
                to: "cancelled",
            },
            Core::OpenConflict,
            Core::NoConflict,
            Core::WrongKey,
            Core::NotAStore,
            Core::Damaged,
            Core::SchemaTooNew {
                found: 9,
                supported: 1,
            },
            Core::MalformedDocument("x".into()),
            Core::MissingDependencies(2),
            Core::NotAHousehold("station"),
            Core::Unauthorized { wipe: true },
            Core::Transport("sync did not finish".into()),
            Core::Network {
                failure: NetworkFailure::Dns,
                detail: "dns error".into(),
            },
            Core::Cancelled,
            Core::Server(503),
            Core::Io(std::io::Error::other("disk full")),
        ];
        let mut all: Vec<DoorstepError> = core.into_iter().map(Into::into).collect();
        all.extend([closed(), cancelled(), internal()]);
        for e in &all {
            assert!(!e.to_string().is_empty(), "{e:?}");
            assert!(!fields_text(e).trim().is_empty(), "{e:?}");
        }
    }

    #[test]
    fn network_failures_keep_their_kind() {
        for (failure, kind) in [
            (NetworkFailure::InvalidUrl, NetworkErrorKind::InvalidUrl),
            (NetworkFailure::Dns, NetworkErrorKind::Dns),
            (
                NetworkFailure::ConnectionRefused,
                NetworkErrorKind::ConnectionRefused,
            ),
            (NetworkFailure::Tls, NetworkErrorKind::Tls),
            (NetworkFailure::Timeout, NetworkErrorKind::Timeout),
            (NetworkFailure::Offline, NetworkErrorKind::Offline),
        ] {
            let e: DoorstepError = Core::Network {
                failure,
                detail: "d".into(),
            }
            .into();
            assert!(
                matches!(&e, DoorstepError::Network { kind: k, reason } if *k == kind && reason.contains("d")),
                "{e:?}"
            );
        }
    }
}
