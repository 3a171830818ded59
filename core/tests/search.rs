//! Full-text search against a brute-force model: random edits of visit sections, then every
//! query of 1–5 characters must find exactly the sections whose text holds it (letter case
//! aside), after live edits, after reopening the store and after `rebuild_index`.
//!
//! Seeds: `DOORSTEP_SEARCH_SEEDS=a..b` (default 0..6); a failure names its seed.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use doorstep_core::*;

/// Characters of the generated text: a few Chinese ones (so that 1- and 2-character
/// queries hit often), cased letters (ASCII and not), FTS and LIKE syntax, and a space.
/// None of them is in the household summary the helper writes.
const ALPHABET: &[char] = &[
    '补', '助', '事', '实', '口', 'A', 'b', 'C', 'd', 'Ä', 'é', '"', '*', '%', '_', ' ',
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: enough for test data.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn text(&mut self, max: usize) -> String {
        let n = 1 + self.below(max);
        (0..n)
            .map(|_| ALPHABET[self.below(ALPHABET.len())])
            .collect()
    }
}

type Key = (String, String); // (visit id, section name)

fn seeds() -> std::ops::Range<u64> {
    let spec = std::env::var("DOORSTEP_SEARCH_SEEDS").unwrap_or_else(|_| "0..6".into());
    let (a, b) = spec.split_once("..").expect("DOORSTEP_SEARCH_SEEDS=a..b");
    a.parse().unwrap()..b.parse().unwrap()
}

fn expected(model: &BTreeMap<Key, String>, needle: &str) -> BTreeSet<Key> {
    let n = needle.to_lowercase();
    model
        .iter()
        .filter(|(_, t)| t.to_lowercase().contains(&n))
        .map(|(k, _)| k.clone())
        .collect()
}

fn check(store: &Store, model: &BTreeMap<Key, String>, rng: &mut Rng, seed: u64, when: &str) {
    for q in 0..80 {
        // Half the queries are taken from a text, so most of them hit; the rest are random.
        let needle: String = match model.values().nth(rng.below(model.len().max(1))) {
            Some(t) if q % 2 == 0 && !t.is_empty() => {
                let chars: Vec<char> = t.chars().collect();
                let len = 1 + rng.below(5.min(chars.len()));
                let at = rng.below(chars.len() - len + 1);
                chars[at..at + len].iter().collect()
            }
            _ => rng.text(5),
        };
        if needle.trim() != needle || needle.trim().is_empty() {
            continue; // search trims its input; the model does not
        }
        let want = expected(model, &needle);
        let hits = store.search(&needle, 10_000).unwrap();
        let got: BTreeSet<Key> = hits
            .iter()
            .filter(|h| h.field != "summary")
            .map(|h| (h.record.clone(), h.field.clone()))
            .collect();
        assert_eq!(
            got,
            want,
            "seed {seed}, {when}: search {needle:?} (DOORSTEP_SEARCH_SEEDS={seed}..{})",
            seed + 1
        );
        assert_eq!(hits.len(), got.len(), "seed {seed}: one hit per text");
        for h in &hits {
            assert!(
                h.excerpt.to_lowercase().contains(&needle.to_lowercase()),
                "seed {seed}, {when}: excerpt {:?} of {needle:?}",
                h.excerpt
            );
        }
        // The limit keeps the first hits in household order.
        let few = store.search(&needle, 2).unwrap();
        assert_eq!(few.len(), hits.len().min(2), "seed {seed}: limit");
        assert_eq!(
            few[..],
            hits[..few.len()],
            "seed {seed}: limit keeps the order"
        );
    }
}

#[test]
fn search_finds_exactly_the_texts_that_hold_the_query() {
    for seed in seeds() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (seed + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        let dir = tempfile::tempdir().unwrap();
        let station = StationId::new();
        let worker = WorkerId::new();
        let path = dir.path().join("s.db");
        let store = Store::open(options(&path, worker, station)).unwrap();
        let sections = [Section::PersonalSituation, Section::Concerns];
        let mut slots = Vec::new();
        for h in 0..3 {
            let hh = household(&store, &format!("HH-{h:06}"));
            for d in 0..2 {
                let v = visit(&store, hh, &format!("2026-11-{:02}", 10 + d));
                for s in sections {
                    slots.push((hh, v, s));
                }
            }
        }
        let mut model: BTreeMap<Key, String> = BTreeMap::new();
        for round in 0..4 {
            for _ in 0..60 {
                let (hh, v, s) = slots[rng.below(slots.len())];
                let key = (v.to_string(), s.as_str().to_owned());
                let text = model.entry(key).or_default();
                let len = text.chars().count();
                let pos = rng.below(len + 1);
                let delete = if rng.below(3) == 0 {
                    rng.below(len - pos + 1).min(8)
                } else {
                    0
                };
                let insert = if delete > 0 && rng.below(2) == 0 {
                    String::new()
                } else {
                    rng.text(12)
                };
                store
                    .splice_section(hh, v, s, pos, delete, &insert)
                    .unwrap();
                let mut chars: Vec<char> = text.chars().collect();
                chars.splice(pos..pos + delete, insert.chars());
                *text = chars.into_iter().collect();
            }
            check(&store, &model, &mut rng, seed, &format!("round {round}"));
        }
        drop(store);
        let store = Store::open(options(&path, worker, station)).unwrap();
        check(&store, &model, &mut rng, seed, "after reopening");
        store.rebuild_index().unwrap();
        check(&store, &model, &mut rng, seed, "after rebuild_index");
        assert!(matches!(
            store.search("补\u{E000}", 5),
            Err(Error::InvalidInput(_))
        ));
    }
}
