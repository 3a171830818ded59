//! The server's cache of loaded documents, shared by every sync.

use std::collections::HashMap;

use doorstep_core::HouseholdId;

use super::Cached;

/// A bounded cache of loaded documents (memory is bounded by this, not by the number of
/// documents a station has).
pub(super) struct DocCache {
    capacity: usize,
    tick: u64,
    docs: HashMap<HouseholdId, (Cached, u64)>,
    /// The documents by when they were put back, oldest first: the one to evict is found
    /// without a pass over the cache.
    order: std::collections::BTreeMap<u64, HouseholdId>,
}

impl DocCache {
    pub(super) fn new(capacity: usize) -> Self {
        DocCache {
            capacity: capacity.max(1),
            tick: 0,
            docs: HashMap::new(),
            order: std::collections::BTreeMap::new(),
        }
    }
    pub(super) fn take(&mut self, id: &HouseholdId) -> Option<Cached> {
        let (cached, tick) = self.docs.remove(id)?;
        self.order.remove(&tick);
        Some(cached)
    }
    pub(super) fn put(&mut self, id: HouseholdId, cached: Cached) {
        self.take(&id);
        if self.docs.len() >= self.capacity {
            if let Some((_, old)) = self.order.pop_first() {
                self.docs.remove(&old);
            }
        }
        self.tick += 1;
        self.docs.insert(id, (cached, self.tick));
        self.order.insert(self.tick, id);
    }
}

#[cfg(test)]
mod tests {
    use automerge::Automerge;

    use super::*;

    fn cached(seq: u64) -> Cached {
        Cached {
            doc: Automerge::new(),
            since: 0,
            seq,
            card_ids: None,
        }
    }

    /// The cache evicts the document put back longest ago, counting a put-back of a
    /// document it holds as its newest use.
    #[test]
    fn the_cache_evicts_the_least_recently_put_back() {
        let mut cache = DocCache::new(2);
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
}
