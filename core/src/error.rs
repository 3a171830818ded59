//! The core's error type. Messages name kinds of things and positions, never the
//! content of a record (no names, notes or ID numbers), so they can be logged and shown.

/// Everything a core call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A caller passed a value the model refuses (empty required field, bad id, bad date,
    /// splice out of range ...). The text says which rule, not the value.
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),

    /// No record of that kind with that id (in this store).
    #[error("{0} not found")]
    NotFound(&'static str),

    /// The visit is final: it is evidence now; record an amendment instead.
    #[error("the visit is finalised; record an amendment instead")]
    VisitFinalised,

    /// The status machine does not allow this step.
    #[error("a {entity} cannot go from {from} to {to}")]
    InvalidTransition {
        entity: &'static str,
        from: &'static str,
        to: &'static str,
    },

    /// The field holds concurrent values waiting for a human: resolve the conflict
    /// (`resolve_conflict`) rather than overwrite it unseen.
    #[error("the field has an open conflict; resolve it first")]
    OpenConflict,

    /// There is no open conflict on that field.
    #[error("no open conflict on that field")]
    NoConflict,

    /// The key does not open this store.
    #[error("wrong key for this store")]
    WrongKey,

    /// The file is not a Doorstep store (not a database, or not encrypted).
    #[error("not a Doorstep store")]
    NotAStore,

    /// The store file is damaged (failed page authentication or structure checks).
    #[error("the store is damaged")]
    Damaged,

    /// The store was written by a newer version of Doorstep.
    #[error("store schema {found} is newer than this version supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },

    /// A document's bytes (from disk or the network) could not be decoded.
    #[error("malformed document data: {0}")]
    MalformedDocument(String),

    /// Changes arrived without the changes they depend on.
    #[error("changes are missing {0} dependencies")]
    MissingDependencies(usize),

    /// A document is not a household case file of this model.
    #[error("not a household document: {0}")]
    NotAHousehold(&'static str),

    /// Sync bytes (from the server or a peer) could not be decoded.
    #[error("sync protocol error: {0}")]
    Protocol(#[from] crate::protocol::WireError),

    /// The server refused the device's token. With `wipe`, the device was revoked: its
    /// store is erased (`HttpTransport::sync` has already deleted its files; with another
    /// transport, call `Store::wipe`), and the app deletes the store's key and the token.
    #[error("the server refused this device (wipe: {wipe})")]
    Unauthorized { wipe: bool },

    /// The network or the HTTP exchange failed; try again later.
    #[error("transport error: {0}")]
    Transport(String),

    /// The bundled HTTP transport could not reach the server, and what kind of failure it
    /// was (`detail` is the network library's text: host names and OS errors, never a
    /// request or response body).
    #[error("network: {failure}: {detail}")]
    Network {
        failure: NetworkFailure,
        detail: String,
    },

    /// The caller cancelled the call (its cancel token); the work stopped at a safe point.
    #[error("cancelled")]
    Cancelled,

    /// The server answered with an error status.
    #[error("server error: HTTP {0}")]
    Server(u16),

    /// SQLite failed (I/O, full disk ...).
    #[error("storage error: {0}")]
    Storage(#[source] rusqlite::Error),

    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Why the server could not be reached: an app tells "the address is wrong" (fix the
/// settings) apart from "offline" (retry later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetworkFailure {
    /// The server address cannot be used (malformed, or a scheme this build cannot speak).
    InvalidUrl,
    /// The server's host name did not resolve (no DNS answer, or a wrong name).
    Dns,
    /// The host answered but nothing listens on that port (server down, wrong port).
    ConnectionRefused,
    /// The TLS handshake failed (certificate, protocol), or the build has no TLS.
    Tls,
    /// No answer in time: a slow or stalled link.
    Timeout,
    /// Anything else on the way (unreachable network, reset connection): offline, retry.
    Offline,
}

impl std::fmt::Display for NetworkFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NetworkFailure::InvalidUrl => "the server address is not usable",
            NetworkFailure::Dns => "the server's name did not resolve",
            NetworkFailure::ConnectionRefused => "the server refused the connection",
            NetworkFailure::Tls => "the secure connection (TLS) failed",
            NetworkFailure::Timeout => "the server did not answer in time",
            NetworkFailure::Offline => "the server could not be reached",
        })
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt) => Error::Damaged,
            Some(ErrorCode::NotADatabase) => Error::Damaged,
            _ => Error::Storage(e),
        }
    }
}

impl From<automerge::AutomergeError> for Error {
    fn from(e: automerge::AutomergeError) -> Self {
        Error::MalformedDocument(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
