//! Compaction sized by bytes (ADR 0038): a document's change rows are folded into its
//! snapshot once there are `compact_after` of them (32) *and* their bytes, with what each
//! row costs besides (136 bytes), reach `compact_tail_percent` (200 %) of the snapshot's,
//! when the change is typing; every other change folds by the count alone. A long document
//! being typed into is therefore folded rarely, not on every 32nd keystroke, and what is
//! stored loads as the document that was written.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use doorstep_core::*;

/// What a change row costs besides its change's bytes (the document's id and the
/// change's hash, in the row and in its index), as ADR 0038 counts it.
const ROW_BYTES: u64 = 136;

/// Whether the rule folds a tail of `changes` rows of `bytes` on a snapshot of `snapshot`.
fn due(changes: u64, bytes: u64, snapshot: u64) -> bool {
    changes >= 32 && (bytes + ROW_BYTES * changes) * 100 >= snapshot * 200
}

/// A piece of note text that does not repeat (so the snapshot does not compress it away):
/// 30 characters drawn from 3,000 common ones by a seeded generator.
fn piece(i: usize) -> String {
    let mut x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..30)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_u32(0x4e00 + (x % 3000) as u32).unwrap()
        })
        .collect()
}

struct Typed {
    /// Edit numbers (from 1) after which the document had been folded.
    compactions: Vec<usize>,
    text: String,
}

/// Type `edits` pieces at the end of a section, checking the rule after every edit.
fn type_checking_the_rule(s: &Store, hh: HouseholdId, v: VisitId, edits: usize) -> Typed {
    let mut before = s.document_storage(hh).unwrap();
    let mut text = String::new();
    let mut compactions = Vec::new();
    for i in 0..edits {
        let p = piece(i);
        s.splice_section(hh, v, Section::FamilySituation, text.chars().count(), 0, &p)
            .unwrap();
        text.push_str(&p);
        let after = s.document_storage(hh).unwrap();
        if after.pending_changes == 0 {
            // Folded by this edit: the rule held on the tail the edit made.
            assert_eq!(after.pending_bytes, 0);
            assert!(
                before.pending_changes + 1 >= 32,
                "edit {} folded a tail of {} changes",
                i + 1,
                before.pending_changes + 1
            );
            assert!(after.snapshot_bytes > 0);
            compactions.push(i + 1);
        } else {
            assert_eq!(after.pending_changes, before.pending_changes + 1);
            assert_eq!(after.snapshot_bytes, before.snapshot_bytes);
            assert!(
                !due(
                    after.pending_changes,
                    after.pending_bytes,
                    after.snapshot_bytes
                ),
                "edit {} left a tail the rule folds: {after:?}",
                i + 1
            );
        }
        before = after;
    }
    Typed { compactions, text }
}

#[test]
fn the_defaults_are_32_changes_and_twice_the_snapshot() {
    let o = StoreOptions::new(
        "unused.db",
        StoreKey::Raw(KEY),
        WorkerId::new(),
        StationId::new(),
    );
    assert_eq!((o.compact_after, o.compact_tail_percent), (32, 200));
}

#[test]
fn a_long_document_is_folded_by_its_tail_share_not_every_32nd_edit_and_loads_equal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.db");
    let (worker, station) = (WorkerId::new(), StationId::new());
    let mut o = options(&path, worker, station);
    o.durability = Durability::Relaxed;
    let edits = 1000;
    let (hh, v, start, Typed { compactions, text }, want, heads) = {
        let s = Store::open(o.clone()).unwrap();
        let hh = household(&s, "HH-000001");
        let v = visit(&s, hh, "2026-12-07");
        let start = s.document_storage(hh).unwrap().pending_changes as usize;
        let typed = type_checking_the_rule(&s, hh, v, edits);
        let (want, heads) = (s.household(hh).unwrap(), s.heads(hh).unwrap());
        (hh, v, start, typed, want, heads)
    };
    // Early, while the snapshot is small, every 32nd change folds (the household's and
    // the visit's changes count in the first 32).
    assert_eq!(compactions.first(), Some(&(32 - start)));
    assert_eq!(compactions.get(1), Some(&(64 - start)));
    // Later the snapshot is large and the folds come far apart: under half as many as the
    // count alone makes, and none of the last ones within 64 edits of the one before.
    assert!(
        compactions.len() < edits / 32 / 2,
        "{} compactions in {edits} edits: {compactions:?}",
        compactions.len()
    );
    let late: Vec<usize> = compactions.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        late.iter().rev().take(3).all(|gap| *gap > 64),
        "gaps between folds: {late:?}"
    );

    // What was stored, a snapshot and a tail of change rows, loads as the document was.
    let s = Store::open(o).unwrap();
    let stored = s.document_storage(hh).unwrap();
    assert!(
        stored.pending_changes > 32,
        "a long tail is kept: {stored:?}"
    );
    assert_eq!(s.heads(hh).unwrap(), heads);
    let got = s.household(hh).unwrap();
    assert_eq!(got, want);
    let visit = got.visits.iter().find(|x| x.id == v).unwrap();
    assert_eq!(visit.section(Section::FamilySituation), text);
    let dump = s.index_dump().unwrap();
    s.rebuild_index().unwrap();
    assert_eq!(s.index_dump().unwrap(), dump);

    // Finalising folds whatever the tail.
    s.finalise_visit(hh, v).unwrap();
    let folded = s.document_storage(hh).unwrap();
    assert_eq!((folded.pending_changes, folded.pending_bytes), (0, 0));
    drop(s);
    let s = Store::open(options(&path, worker, station)).unwrap();
    let again = s.household(hh).unwrap();
    assert_eq!(again.visits[0].section(Section::FamilySituation), text);
}

#[test]
fn other_actions_and_received_changes_fold_by_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let mut oa = options(&dir.path().join("a.db"), WorkerId::new(), station);
    oa.durability = Durability::Relaxed;
    let a = Store::open(oa).unwrap();
    let b = open(dir.path(), "b.db", station);
    let hh = household(&a, "HH-000002");
    let v = visit(&a, hh, "2026-12-07");
    let Typed { mut text, .. } = type_checking_the_rule(&a, hh, v, 600);
    push(&a, &b);
    // Over 600 changes in one batch on no snapshot: folded at once.
    let first = b.document_storage(hh).unwrap();
    assert_eq!(first.pending_changes, 0);
    assert!(first.snapshot_bytes > 0);

    // Two batches of 20 typed changes: B keeps the first and folds at the second (40, past
    // the count), though 40 rows are far under their share of its snapshot.
    for batch in 0..2 {
        for i in 0..20 {
            let p = piece(10_000 + batch * 20 + i);
            a.splice_section(hh, v, Section::FamilySituation, text.chars().count(), 0, &p)
                .unwrap();
            text.push_str(&p);
        }
        let before = b.document_storage(hh).unwrap();
        push(&a, &b);
        let after = b.document_storage(hh).unwrap();
        if batch == 0 {
            assert_eq!(after.pending_changes, 20, "{after:?}");
        } else {
            assert!(!due(40, before.pending_bytes * 2, before.snapshot_bytes));
            assert_eq!(after.pending_changes, 0, "{after:?}");
            assert!(after.snapshot_bytes > first.snapshot_bytes);
        }
    }
    assert_eq!(b.heads(hh).unwrap(), a.heads(hh).unwrap());
    b.clear_cache();
    assert_eq!(b.household(hh).unwrap(), a.household(hh).unwrap());

    // On A, typing left a tail past the count that a keystroke would keep; any other action
    // folds it.
    let tail = a.document_storage(hh).unwrap();
    assert!(tail.pending_changes >= 32, "{tail:?}");
    assert!(!due(
        tail.pending_changes + 1,
        tail.pending_bytes + 300,
        tail.snapshot_bytes
    ));
    a.edit_household(hh, &HouseholdEdit::Address("石桥村四组1号".into()))
        .unwrap();
    let folded = a.document_storage(hh).unwrap();
    assert_eq!((folded.pending_changes, folded.pending_bytes), (0, 0));
}

#[test]
fn a_share_of_zero_is_the_count_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(
        &dir.path().join("count.db"),
        WorkerId::new(),
        StationId::new(),
    );
    o.durability = Durability::Relaxed;
    o.compact_tail_percent = 0;
    let s = Store::open(o).unwrap();
    let hh = household(&s, "HH-000003");
    let v = visit(&s, hh, "2026-12-07");
    let start = s.document_storage(hh).unwrap().pending_changes as usize;
    let mut len = 0;
    let mut folds = Vec::new();
    for i in 0..200 {
        let p = piece(i);
        s.splice_section(hh, v, Section::FamilySituation, len, 0, &p)
            .unwrap();
        len += p.chars().count();
        let st = s.document_storage(hh).unwrap();
        assert!(st.pending_changes < 32, "{st:?}");
        if st.pending_changes == 0 {
            folds.push(i + 1);
        }
    }
    let every_32nd: Vec<usize> = (1..=200)
        .filter(|n| (n + start).is_multiple_of(32))
        .collect();
    assert_eq!(folds, every_32nd);
}
