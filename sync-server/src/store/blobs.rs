//! Attachments' bytes on the server (issue 20, ADR 0023): one trait both backends
//! implement (SQLite: tables in the encrypted database; PostgreSQL: bytea in chunks), with
//! the conformance checks in `conformance`. The HTTP side (authorisation, chunk checks,
//! limits) is `crate::blobs`.

use doorstep_core::{BlobHash, DeviceId, HouseholdId, StationId};

use super::StoreResult;

/// Where the server keeps a blob (ADR 0032): the station's id (16 bytes) followed by the
/// blob's SHA-256 (32 bytes). Blobs are deduplicated within a station only: the same bytes
/// uploaded by two stations are held twice, so a device of one station can neither learn
/// from a status that another station holds some bytes nor skip sending them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobKey {
    pub station: StationId,
    /// The SHA-256 of the bytes (what a finished upload is checked against).
    pub hash: BlobHash,
    bytes: [u8; 48],
}

impl BlobKey {
    pub fn new(station: StationId, hash: BlobHash) -> Self {
        let mut bytes = [0u8; 48];
        bytes[..16].copy_from_slice(station.as_uuid().as_bytes());
        bytes[16..].copy_from_slice(&hash.0);
        BlobKey {
            station,
            hash,
            bytes,
        }
    }

    /// The key as the tables hold it (their `hash` columns).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobKey({}, {})", self.station, self.hash)
    }
}

/// What the server holds of a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobRow {
    pub size: u64,
    /// Bytes held from the start.
    pub received: u64,
    /// Checked whole against its hash.
    pub complete: bool,
}

/// The answer to starting (or resuming) an upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobBegin {
    /// The blob's row (new, or as held: a finished blob is never sent again).
    Row(BlobRow),
    /// The server holds a blob under this hash with another size: the request is wrong.
    SizeMismatch,
    /// The device's blobs would pass its limit (bytes).
    OverQuota,
}

/// Sizes and counts for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlobStats {
    pub complete: u64,
    pub complete_bytes: u64,
    pub partial: u64,
    pub partial_bytes: u64,
}

/// What a sweep of abandoned partial uploads deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlobSweep {
    pub blobs: u64,
    /// Bytes held of them (chunks and tails).
    pub bytes: u64,
}

/// The storage of blobs. Every call is its own transaction.
pub trait BlobStore {
    /// What is held of a blob, if anything.
    fn blob(&self, key: &BlobKey) -> StoreResult<Option<BlobRow>>;
    /// Start an upload of a blob of `size` bytes by `device`, unless the server holds it
    /// already; a new blob counts against the device's `quota` (bytes of the blobs it
    /// started). A partial upload asked about counts as touched at `now_ms`.
    fn begin_blob(
        &self,
        key: &BlobKey,
        size: u64,
        device: DeviceId,
        quota: u64,
        now_ms: i64,
    ) -> StoreResult<BlobBegin>;
    /// Keep a chunk that starts at `offset`; `Conflict` unless `offset` is where the held
    /// bytes end (the row is unchanged then). Returns the bytes held after it. The upload
    /// counts as touched at `now_ms` (the sweep spares it).
    fn append_blob(
        &self,
        key: &BlobKey,
        offset: u64,
        bytes: &[u8],
        now_ms: i64,
    ) -> StoreResult<u64>;
    /// Check a blob whose bytes are all held against its hash: `true` and complete if it
    /// matches; otherwise its bytes are dropped (the upload starts over) and `false`.
    fn finish_blob(&self, key: &BlobKey) -> StoreResult<bool>;
    /// Up to `len` bytes of a held blob from `from`.
    fn read_blob(&self, key: &BlobKey, from: u64, len: usize) -> StoreResult<Vec<u8>>;
    /// Whether the server has recorded that `doc` references the blob.
    fn blob_referenced(&self, key: &BlobKey, doc: HouseholdId) -> StoreResult<bool>;
    /// Record that `doc`'s document references the blob (checked by the caller).
    fn note_blob_ref(&self, key: &BlobKey, doc: HouseholdId) -> StoreResult<()>;
    /// Sizes and counts of the blobs held.
    fn blob_stats(&self) -> StoreResult<BlobStats>;
    /// What arrived of a cut chunk: its first byte's position and the bytes.
    fn blob_tail(&self, key: &BlobKey) -> StoreResult<Option<(u64, Vec<u8>)>>;
    /// Keep what arrived of a cut chunk (replacing any earlier tail), if it starts where the
    /// held bytes end; ignored otherwise. The upload counts as touched at `now_ms`.
    fn set_blob_tail(&self, key: &BlobKey, pos: u64, bytes: &[u8], now_ms: i64) -> StoreResult<()>;
    /// Delete every partial upload (not complete) last touched before `before_ms`: its row,
    /// chunks and tail (ADR 0029). The households' references stay: a device that comes
    /// back starts the upload again from its first byte.
    fn sweep_partial_blobs(&self, before_ms: i64) -> StoreResult<BlobSweep>;
    /// Drop a blob's tail.
    fn clear_blob_tail(&self, key: &BlobKey) -> StoreResult<()>;
}
