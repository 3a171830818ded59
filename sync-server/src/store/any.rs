//! The backend chosen at start: SQLite (the default, one data directory) or PostgreSQL
//! (`--database postgres://...`).

use doorstep_core::{DeviceId, HouseholdId, StationId, WorkerId};
use uuid::Uuid;

use super::key::ServerKey;
use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::*;

/// Either backend, behind the one trait.
#[derive(Debug)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(Box<PostgresStore>),
}

/// How to open the storage beyond where it is.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenWith<'a> {
    /// The SQLite database's key (`None`: a plaintext database, for tests and tools).
    pub key: Option<&'a ServerKey>,
    /// The CA of the PostgreSQL server's certificate (`sslmode=verify-ca/verify-full`).
    pub database_ca: Option<&'a std::path::Path>,
}

impl AnyStore {
    /// PostgreSQL when `database` is a `postgres://` URL, else SQLite in `data`
    /// (plaintext: see [`AnyStore::open_with`]).
    pub fn open(
        data: &std::path::Path,
        database: Option<&str>,
        schema: Option<&str>,
    ) -> StoreResult<Self> {
        Self::open_with(data, database, schema, OpenWith::default())
    }

    /// [`AnyStore::open`] with the SQLite key and the PostgreSQL CA.
    pub fn open_with(
        data: &std::path::Path,
        database: Option<&str>,
        schema: Option<&str>,
        with: OpenWith<'_>,
    ) -> StoreResult<Self> {
        match (database, with.key) {
            (Some(url), _) => Ok(AnyStore::Postgres(Box::new(PostgresStore::open_with_ca(
                url,
                schema,
                32,
                with.database_ca,
            )?))),
            (None, Some(key)) => Ok(AnyStore::Sqlite(SqliteStore::open_encrypted(data, key)?)),
            (None, None) => Ok(AnyStore::Sqlite(SqliteStore::open(data)?)),
        }
    }
}

macro_rules! delegate {
    ($( fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl ServerStore for AnyStore {
            $(
                fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        AnyStore::Sqlite(s) => s.$name($($arg),*),
                        AnyStore::Postgres(s) => s.$name($($arg),*),
                    }
                }
            )*
        }
    };
}

delegate! {
    fn epoch(&self) -> StoreResult<Uuid>;
    fn new_epoch(&self) -> StoreResult<Uuid>;
    fn create_station(&self, name: &str, now_ms: i64) -> StoreResult<StationId>;
    fn add_worker(&self, station: StationId, label: &str, now_ms: i64) -> StoreResult<WorkerId>;
    fn set_worker_label(&self, worker: WorkerId, label: &str) -> StoreResult<StationId>;
    fn enroll_device(&self, worker: WorkerId, code_hash: &str, expires_ms: i64) -> StoreResult<DeviceId>;
    fn redeem_code(&self, code_hash: &str, token_hash: &str, now_ms: i64) -> StoreResult<Option<DeviceAuth>>;
    fn revoke_device(&self, device: DeviceId, now_ms: i64) -> StoreResult<bool>;
    fn authenticate(&self, token_hash: &str) -> StoreResult<Option<DeviceAuth>>;
    fn device(&self, device: DeviceId) -> StoreResult<Option<DeviceAuth>>;
    fn note_sync(&self, device: DeviceId, now_ms: i64, served_seq: u64) -> StoreResult<()>;
    fn served_seq(&self, device: DeviceId) -> StoreResult<u64>;
    fn bind_signer(&self, device: DeviceId, actor: &[u8], key: &[u8; 32], now_ms: i64) -> StoreResult<bool>;
    fn station_exists(&self, station: StationId) -> StoreResult<bool>;
    fn signer(&self, actor: &[u8]) -> StoreResult<Option<SignerRecord>>;
    fn doc_signatures(&self, doc: HouseholdId) -> StoreResult<Vec<AuthorSignature>>;
    fn document_station(&self, doc: HouseholdId) -> StoreResult<Option<StationId>>;
    fn load_document(&self, doc: HouseholdId) -> StoreResult<Option<StoredDocument>>;
    fn commit(&self, station: StationId, origin: DeviceId, appends: &[DocAppend]) -> StoreResult<Vec<u64>>;
    fn read_log(&self, station: StationId, after: u64, reader: LogReader, budget: usize) -> StoreResult<LogPage>;
    fn high_water(&self, station: StationId) -> StoreResult<u64>;
    fn document_seq(&self, doc: HouseholdId) -> StoreResult<u64>;
    fn cards_by_serial(&self, station: StationId, serial: &str) -> StoreResult<Vec<CardRow>>;
    fn duplicate_cards(&self, station: StationId) -> StoreResult<Vec<CardRow>>;
    fn cards_issued_by(&self, station: StationId, worker: WorkerId, from_ms: i64, to_ms: i64) -> StoreResult<Vec<CardRow>>;
    fn list_documents(&self, station: StationId, after: Option<HouseholdId>, limit: usize, scoped: Option<WorkerId>) -> StoreResult<Vec<HouseholdId>>;
    fn worker_access(&self, worker: WorkerId) -> StoreResult<Option<WorkerAccess>>;
    fn set_role(&self, worker: WorkerId, role: doorstep_core::Role, now_ms: i64) -> StoreResult<Rescoped>;
    fn set_team(&self, worker: WorkerId, team: Option<&doorstep_core::TeamName>, now_ms: i64) -> StoreResult<Rescoped>;
    fn assign(&self, station: StationId, doc: HouseholdId, worker: Option<WorkerId>, team: Option<&doorstep_core::TeamName>, assigned_by: &str, now_ms: i64) -> StoreResult<Rescoped>;
    fn assignment(&self, doc: HouseholdId) -> StoreResult<Option<Assignment>>;
    fn in_scope(&self, worker: WorkerId, doc: HouseholdId) -> StoreResult<bool>;
    fn scope_exit(&self, worker: WorkerId, doc: HouseholdId) -> StoreResult<Option<ScopeExit>>;
    fn scope_documents(&self, worker: WorkerId) -> StoreResult<Vec<HouseholdId>>;
    fn scope_exits(&self, worker: WorkerId) -> StoreResult<Vec<HouseholdId>>;
    fn retire(&self, station: StationId, doc: HouseholdId, now_ms: i64) -> StoreResult<Rescoped>;
    fn reopen(&self, station: StationId, doc: HouseholdId, now_ms: i64) -> StoreResult<Rescoped>;
    fn retirement(&self, doc: HouseholdId) -> StoreResult<Option<Retirement>>;
    fn erase_document(&self, station: StationId, doc: HouseholdId, reason: ErasureReason, erased_by: &str, now_ms: i64) -> StoreResult<ErasureRecord>;
    fn redact_document(&self, station: StationId, notice: &doorstep_core::protocol::RedactionNotice, snapshot: &[u8], expected_seq: u64, kept_blobs: &[doorstep_core::BlobHash]) -> StoreResult<u64>;
    fn redaction_notice(&self, doc: HouseholdId) -> StoreResult<Option<doorstep_core::protocol::RedactionNotice>>;
    fn erasure(&self, doc: HouseholdId) -> StoreResult<Option<ErasureRecord>>;
    fn erasures(&self, station: Option<StationId>) -> StoreResult<Vec<ErasureRecord>>;
    fn write_stats(&self) -> Option<WriteStats>;
    fn record_accesses(&self, auth: &DeviceAuth, accesses: &[Access], now_ms: i64) -> StoreResult<usize>;
}

impl blobs::BlobStore for AnyStore {
    fn blob(&self, key: &blobs::BlobKey) -> StoreResult<Option<blobs::BlobRow>> {
        match self {
            AnyStore::Sqlite(s) => s.blob(key),
            AnyStore::Postgres(s) => s.blob(key),
        }
    }
    fn begin_blob(
        &self,
        key: &blobs::BlobKey,
        size: u64,
        device: DeviceId,
        quota: u64,
        now_ms: i64,
    ) -> StoreResult<blobs::BlobBegin> {
        match self {
            AnyStore::Sqlite(s) => s.begin_blob(key, size, device, quota, now_ms),
            AnyStore::Postgres(s) => s.begin_blob(key, size, device, quota, now_ms),
        }
    }
    fn append_blob(
        &self,
        key: &blobs::BlobKey,
        offset: u64,
        bytes: &[u8],
        now_ms: i64,
    ) -> StoreResult<u64> {
        match self {
            AnyStore::Sqlite(s) => s.append_blob(key, offset, bytes, now_ms),
            AnyStore::Postgres(s) => s.append_blob(key, offset, bytes, now_ms),
        }
    }
    fn finish_blob(&self, key: &blobs::BlobKey) -> StoreResult<bool> {
        match self {
            AnyStore::Sqlite(s) => s.finish_blob(key),
            AnyStore::Postgres(s) => s.finish_blob(key),
        }
    }
    fn read_blob(&self, key: &blobs::BlobKey, from: u64, len: usize) -> StoreResult<Vec<u8>> {
        match self {
            AnyStore::Sqlite(s) => s.read_blob(key, from, len),
            AnyStore::Postgres(s) => s.read_blob(key, from, len),
        }
    }
    fn blob_referenced(&self, key: &blobs::BlobKey, doc: HouseholdId) -> StoreResult<bool> {
        match self {
            AnyStore::Sqlite(s) => s.blob_referenced(key, doc),
            AnyStore::Postgres(s) => s.blob_referenced(key, doc),
        }
    }
    fn note_blob_ref(&self, key: &blobs::BlobKey, doc: HouseholdId) -> StoreResult<()> {
        match self {
            AnyStore::Sqlite(s) => s.note_blob_ref(key, doc),
            AnyStore::Postgres(s) => s.note_blob_ref(key, doc),
        }
    }
    fn blob_tail(&self, key: &blobs::BlobKey) -> StoreResult<Option<(u64, Vec<u8>)>> {
        match self {
            AnyStore::Sqlite(s) => s.blob_tail(key),
            AnyStore::Postgres(s) => s.blob_tail(key),
        }
    }
    fn set_blob_tail(
        &self,
        key: &blobs::BlobKey,
        pos: u64,
        bytes: &[u8],
        now_ms: i64,
    ) -> StoreResult<()> {
        match self {
            AnyStore::Sqlite(s) => s.set_blob_tail(key, pos, bytes, now_ms),
            AnyStore::Postgres(s) => s.set_blob_tail(key, pos, bytes, now_ms),
        }
    }
    fn sweep_partial_blobs(&self, before_ms: i64) -> StoreResult<blobs::BlobSweep> {
        match self {
            AnyStore::Sqlite(s) => s.sweep_partial_blobs(before_ms),
            AnyStore::Postgres(s) => s.sweep_partial_blobs(before_ms),
        }
    }
    fn clear_blob_tail(&self, key: &blobs::BlobKey) -> StoreResult<()> {
        match self {
            AnyStore::Sqlite(s) => s.clear_blob_tail(key),
            AnyStore::Postgres(s) => s.clear_blob_tail(key),
        }
    }
    fn blob_stats(&self) -> StoreResult<blobs::BlobStats> {
        match self {
            AnyStore::Sqlite(s) => s.blob_stats(),
            AnyStore::Postgres(s) => s.blob_stats(),
        }
    }
}
