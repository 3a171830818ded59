//! Case files the console read lately, kept loaded and read: a case-file page, the
//! conflict queue and the survey counts need the whole document, and loading and reading a
//! five-year case file costs most of its page (docs/benchmarks.md, "Station console").
//! An entry is the document at one log sequence: the page asks the store for the
//! document's sequence (one indexed read) and loads it again when it moved, so a change
//! pushed through any instance shows at the next page. Bounded: the least recently used
//! entry goes first. A push this server accepts is read for the read model anyway; the
//! last case files of each push are kept from that read (`keep`), so the first page after a
//! change does not load the document again (ADR 0033).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use automerge::Automerge;
use doorstep_core::read_model::CaseFile;
use doorstep_core::HouseholdId;

/// Case files kept at most unless configured (`ConsoleConfig::case_files`). A five-year
/// case file loaded is a few MB.
pub const KEPT: usize = 16;

/// A household document loaded, and read into records.
#[derive(Debug)]
pub(crate) struct LoadedCaseFile {
    pub doc: Automerge,
    pub file: CaseFile,
}

#[derive(Debug)]
struct Kept<T> {
    seq: u64,
    used: u64,
    loaded: Arc<T>,
}

#[derive(Debug)]
struct Held<T> {
    tick: u64,
    files: HashMap<HouseholdId, Kept<T>>,
}

/// The console's loaded case files (`T`: [`LoadedCaseFile`]).
#[derive(Debug)]
pub(crate) struct CaseFiles<T = LoadedCaseFile> {
    held: Mutex<Held<T>>,
    /// Kept at most; 0: none (every page loads its case file).
    max: usize,
}

impl<T> CaseFiles<T> {
    pub fn new(max: usize) -> Self {
        CaseFiles {
            held: Mutex::new(Held {
                tick: 0,
                files: HashMap::new(),
            }),
            max,
        }
    }

    /// The case file `id` at log sequence `seq`: kept, or `load`ed and kept. Loading runs
    /// outside the lock (two pages may load one document at once; the later one is kept).
    pub fn get<E>(
        &self,
        id: HouseholdId,
        seq: u64,
        load: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            held.tick += 1;
            let tick = held.tick;
            if let Some(k) = held.files.get_mut(&id).filter(|k| k.seq == seq) {
                k.used = tick;
                return Ok(k.loaded.clone());
            }
        }
        let loaded = Arc::new(load()?);
        self.insert(id, seq, loaded.clone());
        Ok(loaded)
    }

    /// How many case files are kept at most (0: none).
    pub fn capacity(&self) -> usize {
        self.max
    }

    /// Keep a case file read elsewhere at log sequence `seq` — a push this server just
    /// accepted, read for the read model — so the first page after the change finds it
    /// loaded. Nothing when none are kept.
    pub fn keep(&self, id: HouseholdId, seq: u64, loaded: T) {
        self.insert(id, seq, Arc::new(loaded));
    }

    fn insert(&self, id: HouseholdId, seq: u64, loaded: Arc<T>) {
        if self.max == 0 {
            return;
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.tick += 1;
        let used = held.tick;
        // A page may have loaded a later sequence meanwhile: never replace it by an older one.
        if held.files.get(&id).is_some_and(|k| k.seq > seq) {
            return;
        }
        held.files.insert(id, Kept { seq, used, loaded });
        while held.files.len() > self.max {
            let Some(oldest) = held
                .files
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(id, _)| *id)
            else {
                break;
            };
            held.files.remove(&oldest);
        }
    }

    /// Forget a case file (erased, or no longer the station's): its contents leave memory.
    pub fn forget(&self, id: HouseholdId) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .files
            .remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_file_is_loaded_again_when_its_sequence_moved_and_the_least_used_goes() {
        let files: CaseFiles<usize> = CaseFiles::new(KEPT);
        let (a, b) = (HouseholdId::new(), HouseholdId::new());
        let mut loads = 0usize;
        let mut get = |id, seq| {
            files
                .get(id, seq, || {
                    loads += 1;
                    Ok::<_, ()>(loads)
                })
                .unwrap()
        };
        let first = get(a, 1);
        assert!(Arc::ptr_eq(&first, &get(a, 1)), "kept");
        assert!(
            !Arc::ptr_eq(&first, &get(a, 2)),
            "a newer sequence loads again"
        );
        get(b, 1);
        for _ in 0..KEPT {
            get(HouseholdId::new(), 1);
        }
        let again = get(a, 2);
        assert!(!Arc::ptr_eq(&first, &again));
        assert_eq!(*again, 3 + KEPT + 1, "a was pushed out by the others");
        files.forget(a);
        assert!(!files.held.lock().unwrap().files.contains_key(&a));

        // A case file kept from elsewhere (an accepted push) is found by the next page; an
        // older sequence never replaces a newer one.
        let c = HouseholdId::new();
        files.keep(c, 7, 70);
        let kept = files.get(c, 7, || Ok::<_, ()>(0)).unwrap();
        assert_eq!(*kept, 70, "not loaded again");
        files.keep(c, 6, 60);
        assert_eq!(*files.get(c, 7, || Ok::<_, ()>(0)).unwrap(), 70);

        let none: CaseFiles<u32> = CaseFiles::new(0);
        none.keep(a, 1, 9);
        assert!(none.held.lock().unwrap().files.is_empty(), "nothing kept");
        let one = none.get(a, 1, || Ok::<_, ()>(1)).unwrap();
        let two = none.get(a, 1, || Ok::<_, ()>(2)).unwrap();
        assert_eq!((*one, *two), (1, 2), "nothing kept");
    }
}
