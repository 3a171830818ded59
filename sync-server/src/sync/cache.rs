//! The server's cache of loaded documents, shared by every sync, bounded in bytes (ADR 0039):
//! memory follows the cache's size, not the number of documents a station has nor how big
//! they grew.

use std::collections::{BTreeMap, HashMap};

use automerge::ReadDoc;
use doorstep_core::HouseholdId;

use super::{Cached, SyncService};
use crate::store::ServerStore;

/// Bytes of memory the cache holds at most by default.
pub const DEFAULT_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// How big the cache may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimit {
    /// Estimated bytes of memory of the documents held (see [`estimated_bytes`]).
    pub bytes: usize,
    /// At most this many documents as well (the older, deprecated bound; `None`: only
    /// the bytes bound the cache).
    pub documents: Option<usize>,
}

impl Default for CacheLimit {
    fn default() -> Self {
        CacheLimit {
            bytes: DEFAULT_CACHE_BYTES,
            documents: None,
        }
    }
}

impl CacheLimit {
    /// At most `bytes` of documents.
    pub fn bytes(bytes: usize) -> Self {
        CacheLimit {
            bytes,
            documents: None,
        }
    }

    /// At most `documents` documents, within the default bytes.
    pub fn documents(documents: usize) -> Self {
        CacheLimit {
            documents: Some(documents),
            ..CacheLimit::default()
        }
    }
}

/// Memory of a loaded document: a fixed part (the document's maps, indexes and change graph
/// when nearly empty), a part per operation (its op set, stored in columns: a character of
/// a note costs a few bytes) and a part per change (the change graph: hash, dependencies,
/// actor, time). Fitted to `township-week --doc-memory 1000` (automerge 0.12, release, RSS
/// per loaded copy; ADR 0039): a household grown by 400 one-operation edits (534
/// operations, 402 changes) took 94.4 kB, estimated 97.8 kB; with 5 visits of ~600
/// characters (3,629 operations, 417 changes) 108.8 kB, estimated 125.0 kB; with 20 visits
/// (12,890 operations, 462 changes) 177.9 kB, estimated 208.2 kB; a new household of 134
/// operations and 2 changes is estimated at 17.8 kB and took 14.5–43.8 kB in three
/// runs (the RSS of small copies is noisy). The first estimate,
/// 8 KiB + 160 B per operation, gave that last one 2.07 MB, so a 256 MiB cache held a
/// tenth of the households it could.
const BYTES_PER_DOCUMENT: u64 = 16 * 1024;
const BYTES_PER_OP: u64 = 8;
const BYTES_PER_CHANGE: u64 = 192;

/// What a document costs the cache, estimated from automerge's own counts (no pass over the
/// document: read at every put-back).
pub fn estimated_bytes(doc: &automerge::Automerge) -> usize {
    let stats = doc.stats();
    let bytes = BYTES_PER_DOCUMENT
        .saturating_add(stats.num_ops.saturating_mul(BYTES_PER_OP))
        .saturating_add(stats.num_changes.saturating_mul(BYTES_PER_CHANGE));
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// A bounded cache of loaded documents (memory is bounded by this, not by the number of
/// documents a station has), least recently put back evicted first.
pub(super) struct DocCache {
    limit: CacheLimit,
    /// Estimated bytes of the documents held.
    bytes: usize,
    /// The most `bytes` has been.
    peak: usize,
    tick: u64,
    /// Each document with when it was put back and its estimated bytes.
    docs: HashMap<HouseholdId, (Cached, u64, usize)>,
    /// The documents by when they were put back, oldest first: the one to evict is found
    /// without a pass over the cache.
    order: BTreeMap<u64, HouseholdId>,
}

impl DocCache {
    pub(super) fn new(limit: CacheLimit) -> Self {
        DocCache {
            limit: CacheLimit {
                bytes: limit.bytes,
                documents: limit.documents.map(|n| n.max(1)),
            },
            bytes: 0,
            peak: 0,
            tick: 0,
            docs: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    pub(super) fn take(&mut self, id: &HouseholdId) -> Option<Cached> {
        let (cached, tick, bytes) = self.docs.remove(id)?;
        self.order.remove(&tick);
        self.bytes -= bytes;
        Some(cached)
    }

    /// Keep `cached` as the most recently used, evicting the least recently used until it
    /// fits. A document larger than the whole cache is not kept.
    pub(super) fn put(&mut self, id: HouseholdId, cached: Cached) {
        self.take(&id);
        let bytes = estimated_bytes(&cached.doc);
        if bytes > self.limit.bytes {
            return;
        }
        let full = |c: &Self| {
            c.bytes + bytes > c.limit.bytes || c.limit.documents.is_some_and(|n| c.docs.len() >= n)
        };
        while full(self) {
            let Some((_, old)) = self.order.pop_first() else {
                break;
            };
            if let Some((_, _, b)) = self.docs.remove(&old) {
                self.bytes -= b;
            }
        }
        self.tick += 1;
        self.bytes += bytes;
        self.peak = self.peak.max(self.bytes);
        self.docs.insert(id, (cached, self.tick, bytes));
        self.order.insert(self.tick, id);
    }

    pub(super) fn stats(&self) -> CacheStats {
        CacheStats {
            documents: self.docs.len() as u64,
            bytes: self.bytes as u64,
            peak_bytes: self.peak as u64,
            limit_bytes: self.limit.bytes as u64,
        }
    }
}

/// What the cache holds now (for `/metrics` and benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub documents: u64,
    /// Estimated bytes of the documents held (see [`estimated_bytes`]).
    pub bytes: u64,
    /// The most `bytes` has been since the server started.
    pub peak_bytes: u64,
    pub limit_bytes: u64,
}

impl<S: ServerStore> SyncService<S> {
    /// What the document cache holds now.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).stats()
    }
}

#[cfg(test)]
mod tests {
    use automerge::{transaction::Transactable, Automerge, ROOT};

    use super::*;

    impl DocCache {
        fn bytes(&self) -> usize {
            self.bytes
        }
        fn len(&self) -> usize {
            self.docs.len()
        }
    }

    fn cached(seq: u64) -> Cached {
        Cached {
            doc: Automerge::new(),
            since: 0,
            seq,
            card_ids: None,
        }
    }

    /// A document of `ops` operations.
    fn with_ops(seq: u64, ops: usize) -> Cached {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        for i in 0..ops {
            tx.put(ROOT, format!("k{i}"), i as i64)
                .expect("a fresh map takes any key");
        }
        tx.commit();
        Cached { doc, ..cached(seq) }
    }

    /// The cache evicts the document put back longest ago, counting a put-back of a
    /// document it holds as its newest use.
    #[test]
    fn the_cache_evicts_the_least_recently_put_back() {
        let mut cache = DocCache::new(CacheLimit::documents(2));
        let (a, b, c) = (HouseholdId::new(), HouseholdId::new(), HouseholdId::new());
        cache.put(a, cached(1));
        cache.put(b, cached(2));
        cache.put(a, cached(3)); // `a` again: now newer than `b`, nothing evicted
        assert_eq!(cache.docs.len(), 2);
        cache.put(c, cached(4));
        assert!(cache.take(&b).is_none(), "the oldest, b, was evicted");
        assert_eq!(cache.take(&a).map(|c| c.seq), Some(3));
        assert_eq!(cache.take(&c).map(|c| c.seq), Some(4));
        assert!(cache.docs.is_empty() && cache.order.is_empty());
    }

    /// Bytes, not documents, bound the cache: large documents push out more of the least
    /// recently used than small ones, and one larger than the cache is not kept.
    #[test]
    fn bytes_bound_the_cache() {
        let small = estimated_bytes(&with_ops(0, 1).doc);
        let large = estimated_bytes(&with_ops(0, 4000).doc);
        assert!(
            large > 2 * small,
            "4,000 ops cost more than one: {small} / {large}"
        );
        let mut cache = DocCache::new(CacheLimit::bytes(large + small));
        let ids: Vec<HouseholdId> = (0..4).map(|_| HouseholdId::new()).collect();
        cache.put(ids[0], with_ops(1, 1));
        cache.put(ids[1], with_ops(2, 1));
        cache.put(ids[2], with_ops(3, 1));
        assert_eq!((cache.len(), cache.bytes()), (3, 3 * small));
        // The large one needs the room of the two oldest small ones.
        cache.put(ids[3], with_ops(4, 4000));
        assert_eq!((cache.len(), cache.bytes()), (2, large + small));
        assert!(cache.take(&ids[0]).is_none() && cache.take(&ids[1]).is_none());
        assert_eq!(cache.take(&ids[2]).map(|c| c.seq), Some(3));
        assert_eq!(cache.bytes(), large);
        // Larger than the whole cache: not kept, and nothing evicted for it.
        cache.put(ids[0], with_ops(5, 16000));
        assert!(cache.take(&ids[0]).is_none());
        assert_eq!(cache.take(&ids[3]).map(|c| c.seq), Some(4));
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
        assert!(cache.order.is_empty());
        assert_eq!(cache.stats().peak_bytes, (large + small) as u64);
    }

    /// A change costs beside its operations (the change graph): the same operations made
    /// in many changes weigh more than made in one.
    #[test]
    fn changes_weigh_beside_operations() {
        let one = with_ops(0, 100).doc;
        let mut many = Automerge::new();
        for i in 0..100 {
            let mut tx = many.transaction();
            tx.put(ROOT, format!("k{i}"), i as i64)
                .expect("a fresh map takes any key");
            tx.commit();
        }
        assert_eq!(one.stats().num_ops, many.stats().num_ops);
        assert!(
            estimated_bytes(&many) > estimated_bytes(&one) + 99 * 100,
            "{} / {}",
            estimated_bytes(&one),
            estimated_bytes(&many)
        );
    }

    /// The document bound still holds beside the bytes (the deprecated `--cache-documents`).
    #[test]
    fn a_document_count_bounds_the_cache_too() {
        let mut cache = DocCache::new(CacheLimit {
            bytes: usize::MAX,
            documents: Some(3),
        });
        for seq in 0..10 {
            cache.put(HouseholdId::new(), cached(seq));
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.bytes(), 3 * estimated_bytes(&Automerge::new()));
    }
}
