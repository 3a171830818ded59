//! The server side of one sync round trip: authorise, validate and merge the pushed
//! changes, append them to the station's log in one transaction, then answer with what the
//! device lacks (snapshots for a new device, log entries otherwise).
//!
//! Split along its seams: [`push`] decides what becomes of each pushed document (a typed
//! [`push::Verdict`]), [`provenance`] checks who wrote it, [`pull`] answers with what the
//! device lacks. This module holds what they share: the service, its document cache and the
//! station locks.

mod cache;
mod provenance;
mod pull;
mod push;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use automerge::Automerge;
use doorstep_core::doc::station::{read_station, station_doc_id, StationCards};
use doorstep_core::protocol::*;
use doorstep_core::{CardIssuanceId, DeviceId, HouseholdId, StationId};

use crate::snapshot;
use crate::store::{DeviceAuth, ServerStore, SignerRecord, StoreError, StoredDocument};
use cache::DocCache;
pub use cache::{estimated_bytes, CacheLimit, CacheStats, DEFAULT_CACHE_BYTES};

/// Bounds on what a device may ask for (the protocol's: a device keeps within them too).
const MIN_BUDGET: usize = doorstep_core::protocol::budget::MIN_BUDGET as usize;
const MAX_BUDGET: usize = doorstep_core::protocol::budget::MAX_BUDGET as usize;
/// Snapshot a server document after this many log entries.
const COMPACT_AFTER: u64 = 128;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored document could not be loaded")]
    StoredDocument,
}

/// A loaded document, with its log entries since the last snapshot (drives compaction) and
/// the log position it reflects (a copy older than the store's is reloaded: another server
/// instance or the admin CLI may have written it).
struct Cached {
    doc: Automerge,
    since: u64,
    seq: u64,
    /// The ids of its card issuances, when they have been read from this very state.
    card_ids: Option<Vec<CardIssuanceId>>,
}

/// Everything a sync needs, shared by all requests.
pub struct SyncService<S: ServerStore> {
    store: Arc<S>,
    cache: Mutex<DocCache>,
    /// Actor bindings read so far (a binding never changes once made).
    signers: Mutex<HashMap<Vec<u8>, SignerRecord>>,
    stations: Mutex<HashMap<StationId, Arc<Mutex<()>>>>,
    /// Keep the console's read model up to date as pushes are accepted (off when the
    /// console is not served: it catches up from the log when it is).
    read_model: bool,
    /// The console's loaded case files, kept warm from the pushes this service accepts
    /// (`console/case_files.rs`, ADR 0033); `None` without a console.
    case_files: Option<Arc<crate::console::case_files::CaseFiles>>,
    /// When each device's last sync was last written to the store: written at most every
    /// [`NOTE_SYNC_EVERY_MS`] per device, so a sync costs no extra write.
    noted: Mutex<HashMap<DeviceId, i64>>,
}

/// What the requesting device's worker may see (issue 16, ADR 0019), and where the device
/// is in the log.
pub(super) struct Viewer {
    pub role: doorstep_core::Role,
    pub team: Option<doorstep_core::TeamName>,
    pub cursor: Cursor,
    pub epoch: uuid::Uuid,
}

/// How stale a device's recorded last sync may get (the console shows it).
pub const NOTE_SYNC_EVERY_MS: i64 = 5 * 60 * 1000;

impl<S: ServerStore> std::fmt::Debug for SyncService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncService")
    }
}

fn contained<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

impl<S: ServerStore> SyncService<S> {
    /// A service whose cache holds at most `cache_documents` documents (within the default
    /// bytes; see [`SyncService::with_cache`]).
    pub fn new(store: Arc<S>, cache_documents: usize) -> Self {
        Self::with_cache(store, CacheLimit::documents(cache_documents))
    }

    /// A service whose document cache is bounded by `cache`.
    pub fn with_cache(store: Arc<S>, cache: CacheLimit) -> Self {
        SyncService {
            store,
            cache: Mutex::new(DocCache::new(cache)),
            stations: Mutex::new(HashMap::new()),
            signers: Mutex::new(HashMap::new()),
            read_model: true,
            case_files: None,
            noted: Mutex::new(HashMap::new()),
        }
    }

    /// Keep the case files of accepted pushes loaded in the console's `case_files` (the
    /// first page after a change then does not load the document again).
    pub(crate) fn with_case_files(
        mut self,
        case_files: Arc<crate::console::case_files::CaseFiles>,
    ) -> Self {
        self.case_files = Some(case_files);
        self
    }

    /// Whether accepted pushes update the console's read model (default yes).
    pub fn with_read_model(mut self, on: bool) -> Self {
        self.read_model = on;
        self
    }

    /// The device that owns `actor`, if bound.
    fn signer(&self, actor: &[u8]) -> Result<Option<SignerRecord>, SyncError> {
        if let Some(s) = self
            .signers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(actor)
        {
            return Ok(Some(*s));
        }
        let found = self.store.signer(actor)?;
        if let Some(s) = found {
            self.signers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(actor.to_vec(), s);
        }
        Ok(found)
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    fn station_lock(&self, station: StationId) -> Arc<Mutex<()>> {
        let mut map = self.stations.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(station).or_default().clone()
    }

    /// The document from the cache (if current), or loaded from the store; `None` if the
    /// server has none.
    fn load(&self, id: HouseholdId) -> Result<Option<Cached>, SyncError> {
        let seq = self.store.document_seq(id)?;
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(&id)
        {
            if hit.seq == seq {
                return Ok(Some(hit));
            }
        }
        let Some(stored) = self.store.load_document(id)? else {
            return Ok(None);
        };
        Self::loaded(&stored, seq).map(Some)
    }

    /// A stored document loaded (snapshot and log entries, applied as one batch).
    fn loaded(stored: &StoredDocument, seq: u64) -> Result<Cached, SyncError> {
        match contained(|| snapshot::load_stored(stored)) {
            Some(Ok(doc)) => Ok(Cached {
                doc,
                since: stored.changes_since_snapshot,
                seq,
                card_ids: None,
            }),
            _ => Err(SyncError::StoredDocument),
        }
    }

    /// Drop a document from the cache (it was erased).
    fn forget(&self, id: HouseholdId) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(&id);
    }

    fn put_back(&self, id: HouseholdId, cached: Cached) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(id, cached);
    }

    /// The station's card batches (from its station document), for checking serials.
    fn station_cards(&self, station: StationId) -> Result<StationCards, SyncError> {
        let id = station_doc_id(station);
        match self.load(id)? {
            Some(c) => {
                let cards = read_station(&c.doc).unwrap_or_default();
                self.put_back(id, c);
                Ok(cards)
            }
            None => Ok(StationCards::default()),
        }
    }

    /// One sync round trip for an authenticated device.
    pub fn sync(&self, auth: &DeviceAuth, req: &SyncRequest) -> Result<SyncResponse, SyncError> {
        self.sync_hashed(auth, req).map(|(resp, _)| resp)
    }

    /// [`SyncService::sync`], with the hashes of the pulled changes as the log holds them,
    /// for [`SyncResponse::encode_with_hashes`].
    pub fn sync_hashed(
        &self,
        auth: &DeviceAuth,
        req: &SyncRequest,
    ) -> Result<(SyncResponse, Vec<KnownHashes>), SyncError> {
        let epoch = self.store.epoch()?;
        let lock = self.station_lock(auth.station);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut resp = SyncResponse {
            epoch,
            ..SyncResponse::default()
        };
        // A device registers its actor and key on its first syncs (ADR 0012).
        resp.signer_known = match &req.signer {
            None => true,
            Some(s) => self
                .store
                .bind_signer(auth.device, &s.actor, &s.key, now_ms())?,
        };

        let worker = self
            .store
            .worker_access(auth.worker)?
            .ok_or(StoreError::NotFound("worker"))?;
        let access = Viewer {
            role: worker.role,
            team: worker.team,
            cursor: req.cursor,
            epoch,
        };
        let mut superseded = Vec::new();
        let created_here = self.push(auth, &access, req, &mut resp, &mut superseded)?;
        // After the push: a household the request creates holds its accesses already.
        self.record_accesses(auth, &access, &req.accesses)?;
        let (mut resp, known) = self.pull(auth, &access, req, epoch, &created_here, resp)?;
        self.answer_superseded(&mut resp, &superseded)?;
        // An answer that tells the device a household left its scope is recorded before it
        // is sent: from then on the device cannot claim an older cursor to keep writing.
        let told_left = resp.scope.as_ref().is_some_and(|s| !s.left.is_empty());
        let served = match resp.cursor.phase {
            Phase::Log => resp.cursor.seq,
            Phase::Bootstrap { .. } => 0,
        };
        if told_left {
            self.store.note_sync(auth.device, now_ms(), served)?;
            self.noted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(auth.device, now_ms());
        } else {
            self.note_sync(auth.device, served);
        }
        Ok((resp, known))
    }

    /// Keep the case files the device opened (its access log, issue 16). A failure fails
    /// the sync: the device then sends them again, and nothing is counted twice.
    /// Only households the worker sees or once saw (they left the scope) are kept: a worker
    /// cannot write into the log of a colleague's household (ADR 0019).
    fn record_accesses(
        &self,
        auth: &DeviceAuth,
        viewer: &Viewer,
        accesses: &[Access],
    ) -> Result<(), SyncError> {
        if accesses.is_empty() {
            return Ok(());
        }
        let mut held = Vec::with_capacity(accesses.len());
        for a in accesses {
            if viewer.role.sees_station()
                || self.store.in_scope(auth.worker, a.household)?
                || self.store.scope_exit(auth.worker, a.household)?.is_some()
            {
                held.push(*a);
            }
        }
        let kept = self.store.record_accesses(auth, &held, now_ms())?;
        tracing::debug!(
            device = %auth.device,
            sent = accesses.len(),
            kept,
            "case-file accesses recorded"
        );
        Ok(())
    }

    /// Record the device's sync for the console, unless it was recorded a moment ago.
    fn note_sync(&self, device: DeviceId, served: u64) {
        let now = now_ms();
        {
            let mut noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
            if noted
                .get(&device)
                .is_some_and(|t| now.saturating_sub(*t) < NOTE_SYNC_EVERY_MS)
            {
                return;
            }
            noted.insert(device, now);
        }
        if let Err(e) = self.store.note_sync(device, now, served) {
            tracing::warn!(device = %device, error = %e, "last sync not recorded");
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
