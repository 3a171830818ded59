//! The server side of one sync round trip: authorise, validate and merge the pushed
//! changes, append them to the station's log in one transaction, then answer with what the
//! device lacks (snapshots for a new device, log entries otherwise).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use automerge::{legacy, Automerge, Change, ObjId, ObjType, Prop, ReadDoc, Value, ROOT};
use doorstep_core::protocol::*;
use doorstep_core::{HouseholdId, StationId};

use doorstep_core::doc::card_issuances;
use doorstep_core::doc::station::{read_station, station_doc_id, StationCards};
use doorstep_core::{CardIssuanceId, CardSerial};

use crate::snapshot;
use doorstep_core::doc::verify::{self, Author, Violation};

use crate::store::{
    CardRow, DeviceAuth, DocAppend, ServerStore, SignerRecord, StoreError, StoredDocument,
};

/// Bounds on what a device may ask for.
const MIN_BUDGET: usize = 16 * 1024;
const MAX_BUDGET: usize = 32 * 1024 * 1024;
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

/// A bounded cache of loaded documents (memory is bounded by this, not by the number of
/// documents a station has).
struct DocCache {
    capacity: usize,
    tick: u64,
    docs: HashMap<HouseholdId, (Cached, u64)>,
}

impl DocCache {
    fn take(&mut self, id: &HouseholdId) -> Option<Cached> {
        self.docs.remove(id).map(|(c, _)| c)
    }
    fn put(&mut self, id: HouseholdId, cached: Cached) {
        if self.docs.len() >= self.capacity {
            if let Some(old) = self
                .docs
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| *k)
            {
                self.docs.remove(&old);
            }
        }
        self.tick += 1;
        self.docs.insert(id, (cached, self.tick));
    }
}

/// Everything a sync needs, shared by all requests.
pub struct SyncService<S: ServerStore> {
    store: Arc<S>,
    cache: Mutex<DocCache>,
    /// Actor bindings read so far (a binding never changes once made).
    signers: Mutex<HashMap<Vec<u8>, SignerRecord>>,
    stations: Mutex<HashMap<StationId, Arc<Mutex<()>>>>,
}

impl<S: ServerStore> std::fmt::Debug for SyncService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncService")
    }
}

fn contained<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// Where a creation provenance sits: the document's own (`None`) or a record's, as
/// (collection key at the root, record key).
type Place = Option<(String, String)>;

/// The creation provenance at `place` ("by|dev|at"), read exactly as `authorship` reads it;
/// `None` where there is none.
fn author_at(doc: &Automerge, place: &Place) -> Option<String> {
    let map = |obj: &ObjId, key: &str| match doc.get(obj, key) {
        Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    };
    let obj = match place {
        None => ROOT,
        Some((col, rec)) => map(&map(&ROOT, col)?, rec)?,
    };
    let Ok(Some((Value::Object(_), created))) = doc.get(&obj, "created") else {
        return None;
    };
    let read = |k: &str| {
        doc.get(&created, k)
            .ok()
            .flatten()
            .map(|(v, _)| v.to_string())
            .unwrap_or_default()
    };
    Some(format!("{}|{}|{}", read("by"), read("dev"), read("at")))
}

/// Who created the document and each record in it: pushes may not rewrite these.
fn authorship(doc: &Automerge) -> BTreeMap<Place, String> {
    let mut out = BTreeMap::new();
    if let Some(who) = author_at(doc, &None) {
        out.insert(None, who);
    }
    for col in doc.keys(&ROOT) {
        out.extend(records(doc, &col).filter_map(|place| {
            let who = author_at(doc, &place)?;
            Some((place, who))
        }));
    }
    out
}

/// The places of the records of the collection at root key `col`.
fn records<'a>(doc: &'a Automerge, col: &str) -> impl Iterator<Item = Place> + 'a {
    let obj = match doc.get(&ROOT, col) {
        Ok(Some((Value::Object(ObjType::Map), obj))) => Some(obj),
        _ => None,
    };
    let col = col.to_owned();
    obj.into_iter()
        .flat_map(move |obj| doc.keys(&obj).collect::<Vec<_>>())
        .map(move |rec| Some((col.clone(), rec)))
}

/// What a set of changes writes: for each object its ops target, the map keys they set or
/// delete, or `None` (every key) when an op targets a list position.
type Writes = HashMap<ObjId, Option<HashSet<String>>>;

fn writes(changes: &[Change]) -> Writes {
    let mut out: Writes = HashMap::new();
    for change in changes {
        // Typing is a run of list ops on one text: count its object once.
        let mut run: Option<legacy::ObjectId> = None;
        for op in change.decode().operations {
            if matches!(op.key, legacy::Key::Seq(_)) {
                if run.as_ref() == Some(&op.obj) {
                    continue;
                }
                run = Some(op.obj.clone());
            }
            let obj = match op.obj {
                legacy::ObjectId::Root => ROOT,
                // The actor index is the document's business: automerge looks the actor up.
                legacy::ObjectId::Id(id) => ObjId::Id(id.counter(), id.actor().clone(), usize::MAX),
            };
            let keys = out.entry(obj).or_insert_with(|| Some(HashSet::new()));
            match (op.key, keys) {
                (legacy::Key::Map(k), Some(keys)) => {
                    keys.insert(k.to_string());
                }
                (_, keys) => *keys = None,
            }
        }
    }
    out
}

/// The places whose creation provenance `writes` could change, found in the document
/// before they are applied; `None` when that cannot be narrowed (check every place).
///
/// A provenance is read along root key `col` → record key `rec` → key `created` → keys
/// `by`, `dev`, `at`. Automerge changes a key's value only by ops at that (object, key), and
/// an object only ever sits where it was made; so a place is untouched unless an op writes
/// one of those keys of the objects on its path (or any key of its `created` object). An
/// object the document does not have yet was made by these changes: it can reach an
/// existing place only through an op on an existing object, which is counted there.
fn touched_places(doc: &Automerge, writes: &Writes) -> Option<BTreeSet<Place>> {
    let mut out = BTreeSet::new();
    for (obj, keys) in writes {
        if *obj == ROOT {
            let Some(keys) = keys else {
                return None;
            };
            for col in keys {
                if col == "created" {
                    out.insert(None);
                }
                out.extend(records(doc, col));
            }
            continue;
        }
        let Ok(parents) = doc.parents(obj) else {
            continue; // made by these changes
        };
        // The path from the root to the object, as map keys (at most three deep matters);
        // provenance is never read under a list.
        let Some(mut path) = parents
            .take(4)
            .map(|parent| match parent.prop {
                Prop::Map(key) => Some(key),
                Prop::Seq(_) => None,
            })
            .collect::<Option<Vec<String>>>()
        else {
            continue;
        };
        path.reverse();
        let writes_key = |k: &str| keys.as_ref().is_none_or(|keys| keys.contains(k));
        match path.as_slice() {
            // The document's `created` object, or a collection.
            [col] => {
                if col == "created" {
                    out.insert(None);
                }
                match keys {
                    Some(keys) => {
                        out.extend(keys.iter().map(|rec| Some((col.clone(), rec.clone()))))
                    }
                    None => out.extend(
                        doc.keys(obj)
                            .map(|rec| Some((col.clone(), rec)))
                            .collect::<Vec<_>>(),
                    ),
                }
            }
            // A record.
            [col, rec] if writes_key("created") => {
                out.insert(Some((col.clone(), rec.clone())));
            }
            // A record's `created` object.
            [col, rec, created] if created == "created" => {
                out.insert(Some((col.clone(), rec.clone())));
            }
            _ => {}
        }
    }
    Some(out)
}

impl<S: ServerStore> SyncService<S> {
    pub fn new(store: Arc<S>, cache_documents: usize) -> Self {
        SyncService {
            store,
            cache: Mutex::new(DocCache {
                capacity: cache_documents.max(1),
                tick: 0,
                docs: HashMap::new(),
            }),
            stations: Mutex::new(HashMap::new()),
            signers: Mutex::new(HashMap::new()),
        }
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

    /// The owners of the actors whose signatures `resp` carries (so the device can check
    /// them against the keys it pinned).
    fn directory(&self, resp: &SyncResponse) -> Result<Vec<Signer>, SyncError> {
        let actors: BTreeSet<&Vec<u8>> = resp
            .pull
            .iter()
            .flat_map(|d| d.signatures.iter())
            .chain(resp.snapshots.iter().flat_map(|d| d.signatures.iter()))
            .map(|s| &s.actor)
            .collect();
        let mut out = Vec::with_capacity(actors.len());
        for actor in actors {
            if let Some(s) = self.signer(actor)? {
                out.push(Signer {
                    actor: actor.clone(),
                    device: s.device,
                    worker: s.worker,
                    key: s.key,
                });
            }
        }
        Ok(out)
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

    /// A document's snapshot for a bootstrap, in automerge's encoding without DEFLATE (the
    /// response is zstd-compressed as a whole; see `snapshot`); `None` if the server has no
    /// such document. A stored snapshot with no log entry after it is sent as stored,
    /// without loading the document; otherwise the cached copy, or the document loaded from
    /// the store (and then cached), is saved.
    fn bootstrap_snapshot(&self, id: HouseholdId) -> Result<Option<Vec<u8>>, SyncError> {
        let seq = self.store.document_seq(id)?;
        let hit = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(&id);
        let cached = match hit {
            Some(hit) if hit.seq == seq => hit,
            _ => {
                let Some(stored) = self.store.load_document(id)? else {
                    return Ok(None);
                };
                if let (Some(snap), true) = (&stored.snapshot, stored.changes.is_empty()) {
                    let bytes = snapshot::decode_stored(snap)
                        .map_err(|_| SyncError::StoredDocument)?
                        .into_owned();
                    return Ok(Some(bytes));
                }
                Self::loaded(&stored, seq)?
            }
        };
        let bytes = cached.doc.save_nocompress();
        self.put_back(id, cached);
        Ok(Some(bytes))
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

        // ----- push: validate against the old state, then commit all in one transaction.
        // The commit fails if another writer changed a document since it was validated
        // (another server instance on the same database): validate again, a few times.
        let mut created_here: Vec<HouseholdId> = Vec::new();
        let mut pushes: BTreeMap<HouseholdId, Push<'_>> = BTreeMap::new();
        for d in &req.push {
            let p = pushes.entry(d.doc).or_default();
            p.changes.extend(d.changes.iter());
            p.signatures.extend(d.signatures.iter());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut appends = Vec::new();
            let mut accepted: Vec<(HouseholdId, Cached)> = Vec::new();
            let mut cards: Option<StationCards> = None;
            resp.errors.clear();
            created_here.clear();
            for (doc_id, push) in &pushes {
                match self.accept(auth, *doc_id, push, &mut cards)? {
                    Verdict::Accepted {
                        cached,
                        append,
                        existed,
                    } => {
                        if !existed {
                            created_here.push(*doc_id);
                        }
                        appends.push(append);
                        accepted.push((*doc_id, *cached));
                    }
                    Verdict::Unchanged => {}
                    Verdict::Refused(code) => {
                        tracing::info!(doc = %doc_id, device = %auth.device, code = code.as_str(), "push refused");
                        resp.errors.push(DocError { doc: *doc_id, code })
                    }
                }
            }
            if appends.is_empty() {
                break;
            }
            // Until the commit succeeds, memory may be ahead of the database: the documents
            // in hand are not put back unless it does.
            match self.store.commit(auth.station, auth.device, &appends) {
                Ok(last_seqs) => {
                    crate::console::read_model::refresh_accepted(
                        self.store.as_ref(),
                        accepted
                            .iter()
                            .zip(&last_seqs)
                            .map(|((id, c), seq)| (*id, &c.doc, *seq)),
                    );
                    for ((doc_id, cached), seq) in accepted.into_iter().zip(last_seqs) {
                        resp.acks.push(DocHeads {
                            doc: doc_id,
                            heads: cached.doc.get_heads(),
                        });
                        self.put_back(doc_id, Cached { seq, ..cached });
                    }
                    break;
                }
                Err(StoreError::Conflict(_)) if attempt < 5 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        // Retried pushes of changes the server already had: acknowledge with current heads.
        for d in &req.push {
            if !resp.acks.iter().any(|a| a.doc == d.doc)
                && !resp.errors.iter().any(|e| e.doc == d.doc)
            {
                if let Some(c) = self.load(d.doc)? {
                    resp.acks.push(DocHeads {
                        doc: d.doc,
                        heads: c.doc.get_heads(),
                    });
                    self.put_back(d.doc, c);
                }
            }
        }

        // ----- pull
        let budget = (req.budget as usize).clamp(MIN_BUDGET, MAX_BUDGET);
        let mut cursor = req.cursor;
        if cursor.epoch != epoch {
            // A first sync, or a device from before a restore: start from snapshots.
            resp.epoch_reset = !cursor.epoch.is_nil();
            cursor = Cursor {
                epoch,
                seq: 0,
                phase: Phase::Bootstrap { after: None },
            };
        }
        let mut used = 0usize;
        if let Phase::Bootstrap { after } = cursor.phase {
            let high_water = if after.is_none() {
                self.store.high_water(auth.station)?
            } else {
                cursor.seq
            };
            let mut last = after;
            loop {
                let ids = self.store.list_documents(auth.station, last, 64)?;
                if ids.is_empty() {
                    cursor = Cursor {
                        epoch,
                        seq: high_water,
                        phase: Phase::Log,
                    };
                    break;
                }
                let mut full = false;
                for id in ids {
                    // A document this request created is exactly what the device sent.
                    if created_here.contains(&id) {
                        last = Some(id);
                        continue;
                    }
                    let Some(bytes) = self.bootstrap_snapshot(id)? else {
                        continue;
                    };
                    if used > 0 && used + bytes.len() > budget {
                        full = true;
                        break;
                    }
                    used += bytes.len();
                    resp.snapshots.push(DocSnapshot {
                        doc: id,
                        bytes,
                        signatures: self.store.doc_signatures(id)?,
                    });
                    last = Some(id);
                }
                if full {
                    resp.cursor = Cursor {
                        epoch,
                        seq: high_water,
                        phase: Phase::Bootstrap { after: last },
                    };
                    resp.more = true;
                    resp.signers = self.directory(&resp)?;
                    return Ok(resp);
                }
            }
        }
        let page = self.store.read_log(
            auth.station,
            cursor.seq,
            auth.device,
            budget.saturating_sub(used).max(1),
        )?;
        let mut grouped: Vec<(DocChanges, HashSet<automerge::ChangeHash>)> = Vec::new();
        for e in page.entries {
            match grouped.last_mut() {
                Some((g, hashes)) if g.doc == e.doc => {
                    g.changes.push(e.bytes);
                    hashes.insert(e.hash);
                }
                _ => grouped.push((
                    DocChanges {
                        doc: e.doc,
                        changes: vec![e.bytes],
                        signatures: Vec::new(),
                    },
                    HashSet::from([e.hash]),
                )),
            }
        }
        // Each group carries the signatures that vouch for the changes it holds (a
        // signature over a change of a later page comes with that page).
        for (g, hashes) in &mut grouped {
            g.signatures = self
                .store
                .doc_signatures(g.doc)?
                .into_iter()
                .filter(|s| hashes.contains(&s.signature.hash))
                .collect();
        }
        resp.pull = grouped.into_iter().map(|(g, _)| g).collect();
        resp.more = page.more;
        resp.cursor = Cursor {
            epoch,
            seq: page.last_seq,
            phase: Phase::Log,
        };
        resp.signers = self.directory(&resp)?;
        Ok(resp)
    }

    /// Validate one document's pushed changes against the server's copy: scope first (before
    /// decoding anything), then decoding, applying, the one validator, authorship and
    /// finality. The document in hand is dropped on any refusal.
    fn accept(
        &self,
        auth: &DeviceAuth,
        doc_id: HouseholdId,
        push: &Push<'_>,
        cards: &mut Option<StationCards>,
    ) -> Result<Verdict, SyncError> {
        use Verdict::Refused;
        // Station documents are written by admins only, and their ids are reserved: a
        // device of another station must not squat one before it is first written.
        if doc_id == station_doc_id(auth.station)
            || self
                .store
                .station_exists(StationId::from_uuid(*doc_id.as_uuid()))?
        {
            return Ok(Refused(DocErrorCode::NotFoundOrForbidden));
        }
        let (mut doc, since, loaded_seq, card_ids, existed) =
            match self.store.document_station(doc_id)? {
                Some(station) if station != auth.station => {
                    return Ok(Refused(DocErrorCode::NotFoundOrForbidden))
                }
                Some(_) => match self.load(doc_id)? {
                    Some(c) => (c.doc, c.since, c.seq, c.card_ids, true),
                    None => return Ok(Refused(DocErrorCode::NotFoundOrForbidden)),
                },
                None => (Automerge::new(), 0, 0, None, false),
            };
        let mut changes = Vec::with_capacity(push.changes.len());
        for bytes in &push.changes {
            // automerge's decoder panics on some malformed bytes (docs/fuzzing.md, finding 3).
            match contained(|| Change::from_bytes((*bytes).clone())) {
                // automerge's decoder skips the chunk checksum but its loader checks it: a
                // change stored with a wrong one would not load again.
                Some(Ok(c)) if doorstep_core::doc::checksum_ok(&c) => changes.push(c),
                _ => {
                    if existed {
                        self.put_back(
                            doc_id,
                            Cached {
                                doc,
                                since,
                                seq: loaded_seq,
                                card_ids,
                            },
                        );
                        return Ok(Refused(DocErrorCode::Malformed));
                    }
                    return Ok(Refused(DocErrorCode::NotFoundOrForbidden));
                }
            }
        }
        let mut fresh: Vec<Change> = Vec::new();
        for c in changes {
            if doc.get_change_by_hash(&c.hash()).is_none()
                && !fresh.iter().any(|f| f.hash() == c.hash())
            {
                fresh.push(c);
            }
        }
        if fresh.is_empty() {
            if existed {
                self.put_back(
                    doc_id,
                    Cached {
                        doc,
                        since,
                        seq: loaded_seq,
                        card_ids,
                    },
                );
            }
            return Ok(Verdict::Unchanged);
        }
        let cards_before: Vec<CardIssuanceId> = match card_ids {
            // Read from this very state when the server accepted it.
            Some(ids) => ids,
            None if existed => card_issuances(&doc)
                .unwrap_or_default()
                .iter()
                .map(|c| c.id)
                .collect(),
            None => Vec::new(),
        };
        // Creation provenance before the changes, where they could rewrite it (everywhere
        // when that cannot be narrowed).
        let authors_before: Option<Vec<(Place, String)>> =
            existed.then(
                || match contained(|| touched_places(&doc, &writes(&fresh))).flatten() {
                    Some(places) => places
                        .into_iter()
                        .filter_map(|place| {
                            let who = author_at(&doc, &place)?;
                            Some((place, who))
                        })
                        .collect(),
                    None => authorship(&doc).into_iter().collect(),
                },
            );
        let heads_before = doc.get_heads();
        let applied = contained(|| doc.apply_changes(fresh.clone()));
        // On any refusal the document in hand may hold the refused changes: drop it (the
        // next request reloads it from the store).
        // For a document the server does not have, every refusal reads "not found or
        // forbidden": another code would tell a device that the id exists elsewhere.
        let refuse = |code| {
            Ok(Refused(if existed {
                code
            } else {
                DocErrorCode::NotFoundOrForbidden
            }))
        };
        match applied {
            Some(Ok(())) => {}
            _ => return refuse(DocErrorCode::Malformed),
        }
        if !doc.get_missing_deps(&[]).is_empty() {
            return refuse(DocErrorCode::MissingDependencies);
        }
        // automerge applies change bytes that are not its own encoding of their operations;
        // such a document cannot be saved and loaded again, and panics devices that read
        // the change back (docs/fuzzing.md, findings 1 and 2).
        if doorstep_core::doc::check_applied(&doc, &heads_before, &fresh).is_err() {
            return refuse(DocErrorCode::Malformed);
        }
        // The header this device may write, and then the whole document as a phone of this
        // version reads it (the one validator, shared with the phones).
        match contained(|| doorstep_core::doc::household_header(&doc)) {
            Some(Ok((id, station))) if id == doc_id && station == auth.station => {}
            _ => return refuse(DocErrorCode::Invalid),
        }
        if !matches!(contained(|| verify::validate(&doc)), Some(Ok(()))) {
            return refuse(DocErrorCode::Invalid);
        }
        if let Some(authors_before) = &authors_before {
            if authors_before
                .iter()
                .any(|(place, who)| author_at(&doc, place).as_ref() != Some(who))
            {
                return Ok(Refused(DocErrorCode::Invalid));
            }
        }
        // Who wrote each change, verified: its actor's owner signed it, and what it writes
        // as provenance is its owner's (ADR 0012); and nothing after a visit's finalisation
        // touches that visit (ADR 0013).
        let signatures = match self.attribute(auth, doc_id, &doc, &fresh, &push.signatures)? {
            Ok(signatures) => signatures,
            Err(code) => return refuse(code),
        };
        for change in &fresh {
            if let Some(Err(Violation::Finalised)) | None =
                contained(|| verify::check_finality(&doc, change))
            {
                return refuse(DocErrorCode::Finalised);
            }
        }
        // New card issuances must carry a serial of one of this station's batches (once the
        // station manages its cards here, i.e. has registered a batch).
        let Ok(cards_after) = card_issuances(&doc) else {
            return Ok(Refused(DocErrorCode::Invalid));
        };
        for card in cards_after.iter().filter(|c| !cards_before.contains(&c.id)) {
            if cards.is_none() {
                *cards = Some(self.station_cards(auth.station)?);
            }
            let known = cards.as_ref().is_some_and(|b| {
                b.batches.is_empty()
                    || CardSerial::parse(&card.serial)
                        .ok()
                        .is_some_and(|s| b.batch_of(&s).is_some())
            });
            if !known {
                return Ok(Refused(DocErrorCode::Invalid));
            }
        }
        let card_rows = cards_after
            .iter()
            .map(|c| CardRow {
                card: c.id,
                household: doc_id,
                serial: c.serial.clone(),
                status: c.status.as_str().to_owned(),
                issued_by: c.created.worker,
                issued_at: c.created.at.0,
            })
            .collect();
        let since = since + fresh.len() as u64;
        let snapshot = (since >= COMPACT_AFTER).then(|| snapshot::encode_stored(&doc));
        let since = if snapshot.is_some() { 0 } else { since };
        let append = DocAppend {
            doc: doc_id,
            changes: fresh
                .iter()
                .map(|c| (c.hash(), c.raw_bytes().to_vec()))
                .collect(),
            snapshot,
            cards: card_rows,
            expected_seq: Some(loaded_seq),
            signatures,
        };
        let card_ids = Some(cards_after.iter().map(|c| c.id).collect());
        let cached = Cached {
            doc,
            since,
            seq: loaded_seq,
            card_ids,
        };
        Ok(Verdict::Accepted {
            cached: Box::new(cached),
            append,
            existed,
        })
    }

    /// Check that every fresh change is vouched for by the device that owns its actor (a
    /// bound device of this station, whose signature over a descendant-or-self change of the
    /// same actor verifies), and writes only that device's provenance. Returns the pushed
    /// signatures to keep.
    fn attribute(
        &self,
        auth: &DeviceAuth,
        doc_id: HouseholdId,
        doc: &Automerge,
        fresh: &[Change],
        pushed: &[&AuthorSignature],
    ) -> Result<Result<Vec<AuthorSignature>, DocErrorCode>, SyncError> {
        let now = now_ms();
        let mut by_actor: BTreeMap<Vec<u8>, Vec<&Change>> = BTreeMap::new();
        for c in fresh {
            by_actor
                .entry(c.actor_id().to_bytes().to_vec())
                .or_default()
                .push(c);
        }
        let held = self.store.doc_signatures(doc_id)?;
        let mut keep = Vec::new();
        for (actor, changes) in by_actor {
            let Some(owner) = self.signer(&actor)? else {
                return Ok(Err(DocErrorCode::Unattributed));
            };
            if owner.station != auth.station {
                return Ok(Err(DocErrorCode::Unattributed));
            }
            let author = Author {
                worker: owner.worker,
                device: owner.device,
            };
            for c in &changes {
                if !matches!(
                    contained(|| verify::check_provenance(doc, c, &author, now)),
                    Some(Ok(()))
                ) {
                    return Ok(Err(DocErrorCode::Unattributed));
                }
            }
            // Signatures for this actor: the pushed ones must verify and name a change of
            // this actor; the held ones were verified when they were kept.
            let mut vouching: Vec<automerge::ChangeHash> = Vec::new();
            for s in pushed.iter().filter(|s| s.actor == actor) {
                let of_actor = doc
                    .get_change_by_hash(&s.signature.hash)
                    .is_some_and(|c| c.actor_id().to_bytes() == actor.as_slice());
                if !of_actor || !s.signature.verify(&owner.key, doc_id.as_uuid()) {
                    return Ok(Err(DocErrorCode::Unattributed));
                }
                vouching.push(s.signature.hash);
                keep.push((*s).clone());
            }
            vouching.extend(
                held.iter()
                    .filter(|s| s.actor == actor)
                    .map(|s| s.signature.hash),
            );
            let covered = |c: &Change| {
                vouching.iter().any(|h| {
                    *h == c.hash()
                        || !doc
                            .get_changes(std::slice::from_ref(h))
                            .iter()
                            .any(|later| later.hash() == c.hash())
                })
            };
            if !changes.iter().all(|c| covered(c)) {
                return Ok(Err(DocErrorCode::Unattributed));
            }
        }
        // Keep, per actor, the signature over its newest change.
        keep.sort_by_key(|s| {
            std::cmp::Reverse(
                doc.get_change_by_hash(&s.signature.hash)
                    .map(|c| c.seq())
                    .unwrap_or(0),
            )
        });
        let mut seen = HashSet::new();
        keep.retain(|s| seen.insert(s.actor.clone()));
        Ok(Ok(keep))
    }
}

/// One document's part of a request.
#[derive(Default)]
struct Push<'a> {
    changes: Vec<&'a Vec<u8>>,
    signatures: Vec<&'a AuthorSignature>,
}

/// What became of one document's push.
enum Verdict {
    /// Nothing the server did not have.
    Unchanged,
    Accepted {
        cached: Box<Cached>,
        append: DocAppend,
        /// The server had the document before.
        existed: bool,
    },
    Refused(DocErrorCode),
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
