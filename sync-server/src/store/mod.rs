//! The server's storage: a trait every backend implements (SQLite here; PostgreSQL to
//! scale out), with one conformance suite for all of them (`conformance`).
//!
//! The trait is synchronous: the sync service runs each request on a blocking thread
//! (automerge work is CPU-bound anyway), so a backend is plain code with transactions.

pub mod any;
pub mod blobs;
pub mod conformance;
pub mod console;
pub mod key;
pub mod pg_tls;
pub mod postgres;
pub mod scope;
pub mod sqlite;

use automerge::ChangeHash;
use doorstep_core::protocol::{Access, AuthorSignature, Erasure, ErasureReason};
use doorstep_core::{CardIssuanceId, DeviceId, HouseholdId, StationId, WorkerId};
use uuid::Uuid;

pub use scope::{Assignment, LogReader, Rescoped, Retirement, ScopeExit, WorkerAccess};

/// What the server knows of an authenticated device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceAuth {
    pub device: DeviceId,
    pub worker: WorkerId,
    pub station: StationId,
    pub revoked: bool,
}

/// A document as stored: the last snapshot and the log entries after it, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredDocument {
    pub station: Option<StationId>,
    pub snapshot: Option<Vec<u8>>,
    pub changes: Vec<Vec<u8>>,
    /// Log entries since the snapshot (drives compaction).
    pub changes_since_snapshot: u64,
}

/// Changes of one document accepted by a sync request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocAppend {
    pub doc: HouseholdId,
    /// What the document is (stored with a new document, migration 0010: a worker's scope
    /// holds every station-work document of the station, ADR 0021). Ignored for the
    /// station document, stored as `station`.
    pub kind: doorstep_core::doc::DocKind,
    pub changes: Vec<(ChangeHash, Vec<u8>)>,
    /// A fresh snapshot of the whole document after these changes, to store instead of
    /// replaying the log on the next load.
    pub snapshot: Option<Vec<u8>>,
    /// The document's card issuances after these changes (replacing the indexed ones).
    pub cards: Vec<CardRow>,
    /// The document's last log sequence the changes were validated against: the commit
    /// fails with `Conflict` if another writer (another server instance, the admin CLI)
    /// appended to the document since. `None` skips the check.
    pub expected_seq: Option<u64>,
    /// Verified signatures that came with the changes: each replaces the one held for its
    /// (document, actor).
    pub signatures: Vec<AuthorSignature>,
}

/// The device that owns an automerge actor, and the key it signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignerRecord {
    pub device: DeviceId,
    pub worker: WorkerId,
    pub station: StationId,
    pub key: [u8; 32],
}

/// A card issuance as the server indexes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRow {
    pub card: CardIssuanceId,
    pub household: HouseholdId,
    pub serial: String,
    pub status: String,
    pub issued_by: WorkerId,
    pub issued_at: i64,
}

/// One entry of a station's change log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: u64,
    pub doc: HouseholdId,
    pub hash: ChangeHash,
    pub bytes: Vec<u8>,
}

/// A page of the log read for one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogPage {
    pub entries: Vec<LogEntry>,
    /// The last sequence scanned (entries of the reading device itself are skipped but
    /// scanned): the device's next cursor.
    pub last_seq: u64,
    /// The budget cut the page short.
    pub more: bool,
    /// Households erased after `after` (their erasure entries in the log; the entries of
    /// their changes are skipped like their bytes were).
    pub erasures: Vec<Erasure>,
    /// For a scoped reader: households a scope entry in the page concerned that are in its
    /// scope now (the device needs their snapshot) ...
    pub entered: Vec<HouseholdId>,
    /// ... and that are not (the device removes them).
    pub left: Vec<HouseholdId>,
    /// Households of the reader's scope redacted after `after` (their notices: the device
    /// needs each household's snapshot with it).
    pub redactions: Vec<doorstep_core::protocol::RedactionNotice>,
}

/// An entry of the erasure ledger: which household, of which station, when, by whom, why.
/// Ids, times and codes only: no personal data (ADR 0016).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureRecord {
    pub station: StationId,
    pub doc: HouseholdId,
    /// The log sequence of the erasure's own entry (its notice to the devices).
    pub seq: u64,
    pub erased_at: i64,
    /// Who erased it: `cli`, a console account id, `retention`.
    pub erased_by: String,
    pub reason: ErasureReason,
}

impl ErasureRecord {
    /// The notice devices receive.
    pub fn notice(&self) -> Erasure {
        Erasure {
            doc: self.doc,
            reason: self.reason,
            erased_at: self.erased_at,
        }
    }
}

/// How a log entry of an erased document is marked (`change_log.kind`).
pub(crate) const KIND_CHANGE: i64 = 0;
/// An erased change: its bytes and hash are gone, its sequence number stays (gap-free).
pub(crate) const KIND_ERASED: i64 = 1;
/// The erasure's own entry: bytes are the reason code and the time (8 bytes, big-endian).
pub(crate) const KIND_ERASURE: i64 = 2;

/// A redaction's own entry (ADR 0026): bytes are its notice
/// (`doorstep_core::protocol::RedactionNotice::encode`). The household's earlier entries are
/// marked erased like an erasure's; its document is the new generation.
pub(crate) const KIND_REDACTION: i64 = 4;

/// A redaction entry's notice read back from the log.
pub(crate) fn redaction_from_entry(
    bytes: &[u8],
) -> StoreResult<doorstep_core::protocol::RedactionNotice> {
    doorstep_core::protocol::RedactionNotice::decode(bytes)
        .map_err(|_| StoreError::Database("malformed redaction entry in the log".into()))
}

/// The bytes of an erasure entry.
pub(crate) fn erasure_entry_bytes(reason: ErasureReason, at: i64) -> Vec<u8> {
    let mut b = vec![reason.to_byte()];
    b.extend_from_slice(&at.to_be_bytes());
    b
}

/// An erasure entry read back from the log.
pub(crate) fn erasure_from_entry(doc: HouseholdId, bytes: &[u8]) -> StoreResult<Erasure> {
    match bytes {
        [reason, at @ ..] if at.len() == 8 => {
            let mut t = [0u8; 8];
            t.copy_from_slice(at);
            Ok(Erasure {
                doc,
                reason: ErasureReason::from_byte(*reason),
                erased_at: i64::from_be_bytes(t),
            })
        }
        _ => Err(StoreError::Database(
            "malformed erasure entry in the log".into(),
        )),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("schema {found} is newer than this server supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error(
        "wrong key: {0} is encrypted with another key (nothing was changed; after `key rotate` \
         give the new key file)"
    )]
    WrongKey(String),
    #[error("{0} is encrypted: give its key (--key-file PATH or --key-env NAME)")]
    KeyRequired(String),
    #[error(
        "{0} is a plaintext (unencrypted) SQLite database: stop the server and encrypt it with \
         `doorstep-server encrypt --data DIR --key-file KEY` (docs/operations.md)"
    )]
    NotEncrypted(String),
    #[error("{0} is not a Doorstep server database (neither SQLCipher-encrypted nor SQLite)")]
    NotADatabase(String),
    #[error(
        "{0} is damaged: its key is right but pages fail their authentication check; restore \
         a backup (docs/operations.md)"
    )]
    Damaged(String),
    #[error("{0} does not exist")]
    NoDatabase(String),
    #[error("the database is in use (is doorstep-server running?): stop it first")]
    InUse,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Counts of the writer's work since the store was opened (for benchmarks and metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Transactions committed or rolled back (one fsync each when committed).
    pub transactions: u64,
    /// Writes run in them (each caller of a write method counts once).
    pub writes: u64,
    /// Writes called in right now and waiting for the writer or running their part.
    pub queued: usize,
}

/// Walk a station's documents — households and station work, not the station document —
/// in id order, reading 256 ids from the store at a time; `each` ends the walk early by
/// returning an error. For the admin's sweeps (retention, bulk assignment, the console's
/// catch-up), which must not hold a whole station's ids at once.
pub fn for_each_document<S, E>(
    store: &S,
    station: StationId,
    mut each: impl FnMut(HouseholdId) -> Result<(), E>,
) -> Result<(), E>
where
    S: ServerStore + ?Sized,
    E: From<StoreError>,
{
    let station_doc = doorstep_core::doc::station::station_doc_id(station);
    let mut after = None;
    loop {
        let ids = store.list_documents(station, after, 256, None)?;
        let Some(last) = ids.last().copied() else {
            return Ok(());
        };
        after = Some(last);
        for id in ids.into_iter().filter(|id| *id != station_doc) {
            each(id)?;
        }
    }
}

/// Everything the sync server stores. Implementations must make `commit` atomic, give each
/// station gap-free, strictly increasing sequence numbers in commit order, and deduplicate
/// changes by hash.
pub trait ServerStore: console::ConsoleStore + blobs::BlobStore + Send + Sync + 'static {
    /// This database's epoch: new when the database is created (or restored from a backup
    /// by `doorstep-server restore`), so devices can tell the server's history was reset.
    fn epoch(&self) -> StoreResult<Uuid>;
    /// Start a new epoch (after restoring a backup).
    fn new_epoch(&self) -> StoreResult<Uuid>;

    fn create_station(&self, name: &str, now_ms: i64) -> StoreResult<StationId>;
    fn add_worker(&self, station: StationId, label: &str, now_ms: i64) -> StoreResult<WorkerId>;
    /// Change a worker's label; returns the worker's station (`NotFound` for no such
    /// worker). The caller checks the label and publishes it (`workers::set_label`).
    fn set_worker_label(&self, worker: WorkerId, label: &str) -> StoreResult<StationId>;
    /// A new device for a worker, waiting for its one-time code.
    fn enroll_device(
        &self,
        worker: WorkerId,
        code_hash: &str,
        expires_ms: i64,
    ) -> StoreResult<DeviceId>;
    /// Exchange a one-time code for a token; `None` if the code is unknown, used or expired.
    fn redeem_code(
        &self,
        code_hash: &str,
        token_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<DeviceAuth>>;
    /// Revoke a device; false if there is no such device.
    fn revoke_device(&self, device: DeviceId, now_ms: i64) -> StoreResult<bool>;
    fn authenticate(&self, token_hash: &str) -> StoreResult<Option<DeviceAuth>>;
    /// What the server knows of a device, by id.
    fn device(&self, device: DeviceId) -> StoreResult<Option<DeviceAuth>>;
    /// Record that a device synced at `now_ms` (its last sync, shown in the console) and was
    /// answered up to log position `served_seq` (both only ever move forward).
    fn note_sync(&self, device: DeviceId, now_ms: i64, served_seq: u64) -> StoreResult<()>;
    /// The furthest log position a device was answered with, as last recorded.
    fn served_seq(&self, device: DeviceId) -> StoreResult<u64>;

    /// Bind `actor` and its public `key` to `device` (ADR 0012). True if the device now
    /// owns exactly this actor and key (bound now or before); false if the device owns
    /// another actor or key, or the actor belongs to another device. Never rebinds.
    fn bind_signer(
        &self,
        device: DeviceId,
        actor: &[u8],
        key: &[u8; 32],
        now_ms: i64,
    ) -> StoreResult<bool>;
    /// Whether a station has this id (its station document's id is reserved).
    fn station_exists(&self, station: StationId) -> StoreResult<bool>;
    /// The device that owns `actor`, if bound.
    fn signer(&self, actor: &[u8]) -> StoreResult<Option<SignerRecord>>;
    /// The newest signature held for each actor of a document.
    fn doc_signatures(&self, doc: HouseholdId) -> StoreResult<Vec<AuthorSignature>>;

    /// The station a document belongs to, if the server has it.
    fn document_station(&self, doc: HouseholdId) -> StoreResult<Option<StationId>>;
    /// The stored form of a document (snapshot + later changes), if any.
    fn load_document(&self, doc: HouseholdId) -> StoreResult<Option<StoredDocument>>;
    /// Append accepted changes to the station's log and the documents, atomically; returns
    /// for each append the document's last log sequence after the commit.
    fn commit(
        &self,
        station: StationId,
        origin: DeviceId,
        appends: &[DocAppend],
    ) -> StoreResult<Vec<u64>>;
    /// Log entries after `after`, skipping those that came from the reader's device and
    /// those of households outside its worker's scope (read in the same snapshot as the
    /// log), up to about `budget` bytes (always at least one entry if any). Scope entries
    /// for the reader's worker fill `entered` and `left`.
    fn read_log(
        &self,
        station: StationId,
        after: u64,
        reader: LogReader,
        budget: usize,
    ) -> StoreResult<LogPage>;
    /// The station's last sequence number (0 for an empty log).
    fn high_water(&self, station: StationId) -> StoreResult<u64>;
    /// The last log sequence of a document (0 if none): a cached copy older than this is stale.
    fn document_seq(&self, doc: HouseholdId) -> StoreResult<u64>;
    /// Active and past issuances of a serial in a station.
    fn cards_by_serial(&self, station: StationId, serial: &str) -> StoreResult<Vec<CardRow>>;
    /// Serials of a station issued (status `issued`) more than once, with their issuances.
    fn duplicate_cards(&self, station: StationId) -> StoreResult<Vec<CardRow>>;
    /// Cards a worker issued between two instants (ms, inclusive).
    fn cards_issued_by(
        &self,
        station: StationId,
        worker: WorkerId,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<CardRow>>;
    /// How the backend's writes were grouped into transactions so far, if it groups them
    /// (SQLite: ADR 0009); served at `/metrics`.
    fn write_stats(&self) -> Option<WriteStats> {
        None
    }

    /// Erase a household (ADR 0016), in one transaction: its document, snapshot,
    /// signatures, card rows, console read-model rows and access-log entries are deleted;
    /// each of its log entries keeps its sequence number but loses its bytes and hash; one
    /// new log entry tells the station's devices; the ledger records it. Idempotent: a
    /// household already erased returns its record. A household the server does not hold
    /// (a ledger re-applied to an older backup) is recorded all the same, so a device that
    /// still holds it is told and cannot bring it back. `Conflict` if the document belongs
    /// to another station. Then the freed space is scrubbed where the backend can
    /// (SQLite: `secure_delete`, the search index merged, the WAL truncated).
    fn erase_document(
        &self,
        station: StationId,
        doc: HouseholdId,
        reason: ErasureReason,
        erased_by: &str,
        now_ms: i64,
    ) -> StoreResult<ErasureRecord>;
    /// Redact a household (ADR 0026), in one transaction, if its last log sequence is
    /// still `expected_seq` (the state the generation was computed from; otherwise
    /// `Conflict`, and the caller computes it again): every log entry of the household
    /// keeps its sequence number but loses its bytes and hash, the generation
    /// (`snapshot`, stored form) becomes its document, its held signatures go, and one new
    /// log entry (the notice) tells the station's devices. Returns that entry's sequence.
    /// The household's references to blobs other than `kept_blobs` (the hashes the
    /// generation's attachments name) go in the same transaction, and with them every such
    /// blob no other household references (bytes, tail and row; ADR 0029).
    /// `NotFound` for a household the server does not hold (or erased), `Conflict` for one
    /// of another station. Then the freed space is scrubbed as after an erasure.
    fn redact_document(
        &self,
        station: StationId,
        notice: &doorstep_core::protocol::RedactionNotice,
        snapshot: &[u8],
        expected_seq: u64,
        kept_blobs: &[doorstep_core::BlobHash],
    ) -> StoreResult<u64>;
    /// The latest redaction notice of a household, if it was redacted (sent with its
    /// snapshot, so a device holding an older generation takes the new one through it).
    fn redaction_notice(
        &self,
        doc: HouseholdId,
    ) -> StoreResult<Option<doorstep_core::protocol::RedactionNotice>>;
    /// The erasure of a household, if it was erased (of any station).
    fn erasure(&self, doc: HouseholdId) -> StoreResult<Option<ErasureRecord>>;
    /// The erasure ledger of a station (all stations: `None`), oldest first.
    fn erasures(&self, station: Option<StationId>) -> StoreResult<Vec<ErasureRecord>>;

    /// Keep the case files a device says it opened (the request's `accesses`, issue 16):
    /// only those of households of `auth`'s station that the server holds (the rest are
    /// dropped without a word), once per (device, household, at). Returns how many were
    /// new.
    fn record_accesses(
        &self,
        auth: &DeviceAuth,
        accesses: &[Access],
        now_ms: i64,
    ) -> StoreResult<usize>;

    /// Documents of a station in id order after `after`, at most `limit`; with `scoped`,
    /// only the station document and the households in that worker's scope.
    fn list_documents(
        &self,
        station: StationId,
        after: Option<HouseholdId>,
        limit: usize,
        scoped: Option<WorkerId>,
    ) -> StoreResult<Vec<HouseholdId>>;

    // ----- need-to-know (issue 16, ADR 0019) -----

    /// A worker's station, role and team (`None`: no such worker).
    fn worker_access(&self, worker: WorkerId) -> StoreResult<Option<WorkerAccess>>;
    /// Set a worker's role; scope entries tell the worker's devices what entered or left
    /// their scope. `NotFound` for no such worker.
    fn set_role(
        &self,
        worker: WorkerId,
        role: doorstep_core::Role,
        now_ms: i64,
    ) -> StoreResult<Rescoped>;
    /// Put a worker in a team (or none), with scope entries as for `set_role`.
    fn set_team(
        &self,
        worker: WorkerId,
        team: Option<&doorstep_core::TeamName>,
        now_ms: i64,
    ) -> StoreResult<Rescoped>;
    /// Assign a household of `station` to a worker of the station and/or a team (both
    /// `None`: supervisors only), with scope entries for every worker whose view changes.
    /// `NotFound` for a household the station does not hold or a worker of another station.
    fn assign(
        &self,
        station: StationId,
        doc: HouseholdId,
        worker: Option<WorkerId>,
        team: Option<&doorstep_core::TeamName>,
        assigned_by: &str,
        now_ms: i64,
    ) -> StoreResult<Rescoped>;
    /// A household's assignment, if it has one.
    fn assignment(&self, doc: HouseholdId) -> StoreResult<Option<Assignment>>;
    /// Whether a household is in a worker's scope (by role, assignment and team).
    fn in_scope(&self, worker: WorkerId, doc: HouseholdId) -> StoreResult<bool>;
    /// When the household last left the worker's scope, unless it came back since.
    fn scope_exit(&self, worker: WorkerId, doc: HouseholdId) -> StoreResult<Option<ScopeExit>>;
    /// The households in a worker's scope, in id order.
    fn scope_documents(&self, worker: WorkerId) -> StoreResult<Vec<HouseholdId>>;
    /// The households whose last scope entry for this worker says they left (in id order):
    /// what a device of the worker may still hold after a bootstrap that skipped the entry.
    fn scope_exits(&self, worker: WorkerId) -> StoreResult<Vec<HouseholdId>>;

    // ----- phone retention (issue 15, ADR 0025) -----

    /// Take a household of `station` off every phone, in one transaction: it leaves every
    /// worker's scope, supervisors' included (a scope entry "left" for each worker with a
    /// device that may sync and who sees it now), so their devices hand in their edits to it
    /// and remove it; bootstraps skip it. The server keeps it. Idempotent (a household
    /// already retired: nothing written). `NotFound` for a household the station does not
    /// hold (station work is not retired).
    fn retire(&self, station: StationId, doc: HouseholdId, now_ms: i64) -> StoreResult<Rescoped>;
    /// Bring a retired household back to the phones: "entered" for every worker with a
    /// device that may sync and who sees it by role and assignment (their devices receive
    /// its snapshot). A household not retired: nothing written. `NotFound` as for `retire`.
    fn reopen(&self, station: StationId, doc: HouseholdId, now_ms: i64) -> StoreResult<Rescoped>;
    /// A household's phone retention, if it was ever retired.
    fn retirement(&self, doc: HouseholdId) -> StoreResult<Option<Retirement>>;
}
