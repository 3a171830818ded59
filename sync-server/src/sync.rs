//! The server side of one sync round trip: authorise, validate and merge the pushed
//! changes, append them to the station's log in one transaction, then answer with what the
//! device lacks (snapshots for a new device, log entries otherwise).

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use automerge::{Automerge, Change, ReadDoc, ROOT};
use doorstep_core::protocol::*;
use doorstep_core::{HouseholdId, StationId};

use doorstep_core::doc::card_issuances;
use doorstep_core::doc::station::{read_station, station_doc_id, StationCards};
use doorstep_core::{CardIssuanceId, CardSerial};

use crate::store::{CardRow, DeviceAuth, DocAppend, ServerStore, StoreError};

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

/// Who created the document and each record in it: pushes may not rewrite these.
fn authorship(doc: &Automerge) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut put = |path: String, obj: &automerge::ObjId| {
        if let Ok(Some((automerge::Value::Object(_), created))) = doc.get(obj, "created") {
            let read = |k: &str| {
                doc.get(&created, k)
                    .ok()
                    .flatten()
                    .map(|(v, _)| v.to_string())
                    .unwrap_or_default()
            };
            out.insert(
                path,
                format!("{}|{}|{}", read("by"), read("dev"), read("at")),
            );
        }
    };
    put(String::new(), &ROOT);
    for key in doc.keys(&ROOT) {
        if let Ok(Some((automerge::Value::Object(automerge::ObjType::Map), col))) =
            doc.get(&ROOT, key.as_str())
        {
            for rec in doc.keys(&col) {
                if let Ok(Some((automerge::Value::Object(automerge::ObjType::Map), obj))) =
                    doc.get(&col, rec.as_str())
                {
                    put(format!("{key}/{rec}"), &obj);
                }
            }
        }
    }
    out
}

fn header(doc: &Automerge) -> Option<(String, String, String)> {
    let s = |k: &str| match doc.get(&ROOT, k) {
        Ok(Some((automerge::Value::Scalar(v), _))) => v.as_str().map(str::to_owned),
        _ => None,
    };
    Some((s("kind")?, s("id")?, s("station")?))
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
        }
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
        let loaded = contained(|| -> Result<Automerge, automerge::AutomergeError> {
            let mut doc = match &stored.snapshot {
                Some(s) => Automerge::load(s)?,
                None => Automerge::new(),
            };
            for c in &stored.changes {
                doc.load_incremental(c)?;
            }
            Ok(doc)
        });
        match loaded {
            Some(Ok(doc)) => Ok(Some(Cached {
                doc,
                since: stored.changes_since_snapshot,
                seq,
            })),
            _ => Err(SyncError::StoredDocument),
        }
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

        // ----- push: validate against the old state, then commit all in one transaction.
        // The commit fails if another writer changed a document since it was validated
        // (another server instance on the same database): validate again, a few times.
        let mut created_here: Vec<HouseholdId> = Vec::new();
        let mut pushes: BTreeMap<HouseholdId, Vec<&Vec<u8>>> = BTreeMap::new();
        for d in &req.push {
            pushes.entry(d.doc).or_default().extend(d.changes.iter());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut appends = Vec::new();
            let mut accepted: Vec<(HouseholdId, Automerge, u64)> = Vec::new();
            let mut cards: Option<StationCards> = None;
            resp.errors.clear();
            created_here.clear();
            for (doc_id, raw) in &pushes {
                match self.accept(auth, *doc_id, raw, &mut cards)? {
                    Ok(Some((doc, append, since, existed))) => {
                        if !existed {
                            created_here.push(*doc_id);
                        }
                        appends.push(append);
                        accepted.push((*doc_id, doc, since));
                    }
                    Ok(None) => {}
                    Err(code) => resp.errors.push(DocError { doc: *doc_id, code }),
                }
            }
            if appends.is_empty() {
                break;
            }
            // Until the commit succeeds, memory may be ahead of the database: the documents
            // in hand are not put back unless it does.
            match self.store.commit(auth.station, auth.device, &appends) {
                Ok(last_seqs) => {
                    for ((doc_id, doc, since), seq) in accepted.into_iter().zip(last_seqs) {
                        resp.acks.push(DocHeads {
                            doc: doc_id,
                            heads: doc.get_heads(),
                        });
                        self.put_back(doc_id, Cached { doc, since, seq });
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
                    let Some(c) = self.load(id)? else {
                        continue;
                    };
                    let bytes = c.doc.save();
                    self.put_back(id, c);
                    if used > 0 && used + bytes.len() > budget {
                        full = true;
                        break;
                    }
                    used += bytes.len();
                    resp.snapshots.push(DocSnapshot { doc: id, bytes });
                    last = Some(id);
                }
                if full {
                    resp.cursor = Cursor {
                        epoch,
                        seq: high_water,
                        phase: Phase::Bootstrap { after: last },
                    };
                    resp.more = true;
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
        let mut grouped: Vec<DocChanges> = Vec::new();
        for e in page.entries {
            match grouped.last_mut() {
                Some(g) if g.doc == e.doc => g.changes.push(e.bytes),
                _ => grouped.push(DocChanges {
                    doc: e.doc,
                    changes: vec![e.bytes],
                }),
            }
        }
        resp.pull = grouped;
        resp.more = page.more;
        resp.cursor = Cursor {
            epoch,
            seq: page.last_seq,
            phase: Phase::Log,
        };
        Ok(resp)
    }

    /// Validate one document's pushed changes; `Ok(Ok(None))` when nothing was new. The
    /// flag says whether the server had the document before.
    #[allow(clippy::type_complexity)]
    fn accept(
        &self,
        auth: &DeviceAuth,
        doc_id: HouseholdId,
        raw: &[&Vec<u8>],
        cards: &mut Option<StationCards>,
    ) -> Result<Result<Option<(Automerge, DocAppend, u64, bool)>, DocErrorCode>, SyncError> {
        // The station document is written by admins only.
        if doc_id == station_doc_id(auth.station) {
            return Ok(Err(DocErrorCode::NotFoundOrForbidden));
        }
        let mut changes = Vec::with_capacity(raw.len());
        for bytes in raw {
            match Change::from_bytes((*bytes).clone()) {
                Ok(c) => changes.push(c),
                Err(_) => return Ok(Err(DocErrorCode::Malformed)),
            }
        }
        let (mut doc, since, loaded_seq, existed) = match self.store.document_station(doc_id)? {
            Some(station) if station != auth.station => {
                return Ok(Err(DocErrorCode::NotFoundOrForbidden))
            }
            Some(_) => match self.load(doc_id)? {
                Some(c) => (c.doc, c.since, c.seq, true),
                None => return Ok(Err(DocErrorCode::NotFoundOrForbidden)),
            },
            None => (Automerge::new(), 0, 0, false),
        };
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
                    },
                );
            }
            return Ok(Ok(None));
        }
        let cards_before: Vec<CardIssuanceId> = if existed {
            card_issuances(&doc)
                .unwrap_or_default()
                .iter()
                .map(|c| c.id)
                .collect()
        } else {
            Vec::new()
        };
        let before = existed.then(|| (header(&doc), authorship(&doc)));
        let applied = contained(|| doc.apply_changes(fresh.clone()));
        // On any refusal the document in hand may hold the refused changes: drop it (the
        // next request reloads it from the store).
        // For a document the server does not have, every refusal reads "not found or
        // forbidden": another code would tell a device that the id exists elsewhere.
        let refuse = |code| {
            Ok(Err(if existed {
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
        let expected = (
            "household".to_owned(),
            doc_id.to_string(),
            auth.station.to_string(),
        );
        if header(&doc).as_ref() != Some(&expected) {
            return Ok(Err(if existed {
                DocErrorCode::Invalid
            } else {
                DocErrorCode::NotFoundOrForbidden
            }));
        }
        if let Some((_, authors_before)) = &before {
            let after = authorship(&doc);
            if authors_before
                .iter()
                .any(|(path, who)| after.get(path) != Some(who))
            {
                return Ok(Err(DocErrorCode::Invalid));
            }
        }
        // New card issuances must carry a serial of one of this station's batches (once the
        // station manages its cards here, i.e. has registered a batch).
        let Ok(cards_after) = card_issuances(&doc) else {
            return Ok(Err(DocErrorCode::Invalid));
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
                return Ok(Err(DocErrorCode::Invalid));
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
        let snapshot = (since >= COMPACT_AFTER).then(|| doc.save());
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
        };
        Ok(Ok(Some((doc, append, since, existed))))
    }
}
