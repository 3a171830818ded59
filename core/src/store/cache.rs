//! A bounded cache of loaded documents: a store opens without loading any document, and a
//! phone keeps only the households in use in memory.

use std::collections::HashMap;

use automerge::Automerge;

use crate::model::ids::HouseholdId;

#[derive(Debug)]
pub(crate) struct DocCache {
    capacity: usize,
    tick: u64,
    docs: HashMap<HouseholdId, (Automerge, u64)>,
}

impl DocCache {
    pub(crate) fn new(capacity: usize) -> Self {
        DocCache {
            capacity: capacity.max(1),
            tick: 0,
            docs: HashMap::new(),
        }
    }

    pub(crate) fn get_mut(&mut self, id: &HouseholdId) -> Option<&mut Automerge> {
        self.tick += 1;
        let tick = self.tick;
        self.docs.get_mut(id).map(|(doc, used)| {
            *used = tick;
            doc
        })
    }

    /// Insert a document, evicting the least recently used one when full.
    pub(crate) fn insert(&mut self, id: HouseholdId, doc: Automerge) -> &mut Automerge {
        if self.docs.len() >= self.capacity && !self.docs.contains_key(&id) {
            if let Some(oldest) = self
                .docs
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
            {
                self.docs.remove(&oldest);
            }
        }
        self.tick += 1;
        let entry = self.docs.entry(id).or_insert((doc, 0));
        entry.1 = self.tick;
        &mut entry.0
    }

    /// Forget a document (after a failed write, memory may be ahead of disk).
    pub(crate) fn evict(&mut self, id: &HouseholdId) {
        self.docs.remove(id);
    }

    pub(crate) fn clear(&mut self) {
        self.docs.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.docs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut c = DocCache::new(2);
        let (a, b, d) = (HouseholdId::new(), HouseholdId::new(), HouseholdId::new());
        c.insert(a, Automerge::new());
        c.insert(b, Automerge::new());
        assert!(c.get_mut(&a).is_some());
        c.insert(d, Automerge::new());
        assert!(c.get_mut(&b).is_none(), "b was least recently used");
        assert!(c.get_mut(&a).is_some());
        assert_eq!(c.len(), 2);
    }
}
