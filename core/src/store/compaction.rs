//! When a document's change rows are folded into its snapshot (ADR 0038).
//!
//! Every change appended to a document, made here or received, is one row of `changes`;
//! compaction writes `documents.snapshot = doc.save()` and deletes those rows. `save()`
//! costs what the document's whole history costs, so folding after a fixed number of
//! changes made one keystroke in that number pay for the whole history: the p99 of typing
//! grew with the text. A keystroke now folds only once the tail has also grown to a share
//! of the snapshot's bytes, so on a long text the save comes rarer as the text grows (its
//! cost per keystroke stays the same) while the stored tail, and what a load applies one
//! change at a time, stays within that share. Every other change (an action that is not
//! typing, a sync, finalising) folds by the count as before, so a document at rest keeps
//! a short tail.

use automerge::Automerge;
use rusqlite::{params, Connection, Row};

use crate::error::Result;
use crate::model::ids::HouseholdId;

/// What one change row costs the store besides its change's bytes: the document's id
/// (36 bytes of text) and the change's hash (32 bytes), in the row and again in
/// `changes_by_doc`.
pub(crate) const ROW_BYTES: i64 = 136;

/// When a document's tail is folded into its snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Compaction {
    /// No tail of fewer changes than this is folded (`StoreOptions::compact_after`).
    pub after: u32,
    /// No tail whose bytes (the changes' and their rows', see `ROW_BYTES`) are under this
    /// percentage of the snapshot's is folded (`StoreOptions::compact_tail_percent`).
    pub tail_percent: u32,
}

/// A document's uncompacted part, as `documents` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Change rows since the snapshot (`pending_compaction`).
    pub changes: i64,
    /// Their changes' bytes (`pending_bytes`).
    pub bytes: i64,
    /// The snapshot's bytes (0 without one).
    pub snapshot: i64,
}

impl Compaction {
    /// Fold at once, whatever the tail (finalising a visit).
    pub(crate) const NOW: Compaction = Compaction {
        after: 1,
        tail_percent: 0,
    };

    /// The same count without the share: what every change but typing folds by.
    pub(crate) fn by_count(self) -> Compaction {
        Compaction {
            tail_percent: 0,
            ..self
        }
    }

    /// Whether a document with this tail is folded now.
    pub(crate) fn due(self, tail: &Tail) -> bool {
        let stored = tail
            .bytes
            .saturating_add(ROW_BYTES.saturating_mul(tail.changes));
        tail.changes >= i64::from(self.after)
            && stored.saturating_mul(100)
                >= tail.snapshot.saturating_mul(i64::from(self.tail_percent))
    }
}

/// The columns `RETURNING pending_compaction, pending_bytes, length(snapshot)` read.
pub(crate) fn tail_of(r: &Row<'_>) -> rusqlite::Result<Tail> {
    Ok(Tail {
        changes: r.get(0)?,
        bytes: r.get(1)?,
        snapshot: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
    })
}

/// Fold a document's change rows into one snapshot.
pub(crate) fn compact(conn: &Connection, doc: &Automerge, household: HouseholdId) -> Result<()> {
    let snapshot = doc.save();
    conn.prepare_cached(
        "UPDATE documents SET snapshot = ?2, pending_compaction = 0, pending_bytes = 0
         WHERE doc_id = ?1",
    )?
    .execute(params![household.to_string(), snapshot])?;
    conn.prepare_cached("DELETE FROM changes WHERE doc_id = ?1")?
        .execute([household.to_string()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Compaction = Compaction {
        after: 32,
        tail_percent: 50,
    };

    fn tail(changes: i64, bytes: i64, snapshot: i64) -> Tail {
        Tail {
            changes,
            bytes,
            snapshot,
        }
    }

    #[test]
    fn a_document_without_a_snapshot_folds_after_the_count() {
        assert!(!RULE.due(&tail(31, 31 * 100, 0)));
        assert!(RULE.due(&tail(32, 32 * 100, 0)));
    }

    #[test]
    fn a_long_document_folds_when_its_tail_reaches_its_share_of_the_snapshot() {
        // 100-byte changes on a 100 kB snapshot: the tail's rows cost 236 bytes each, and
        // half the snapshot is 50,000 bytes, reached by the 212th change.
        let snapshot = 100_000;
        assert!(!RULE.due(&tail(32, 3_200, snapshot)));
        assert!(!RULE.due(&tail(211, 21_100, snapshot)));
        assert!(RULE.due(&tail(212, 21_200, snapshot)));
    }

    #[test]
    fn now_folds_any_tail_and_a_zero_share_is_the_count_alone() {
        assert!(Compaction::NOW.due(&tail(1, 10, i64::MAX)));
        let count_only = Compaction {
            after: 32,
            tail_percent: 0,
        };
        assert!(count_only.due(&tail(32, 0, 1 << 40)));
        assert!(!count_only.due(&tail(31, 1 << 40, 0)));
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        assert!(RULE.due(&tail(i64::MAX, i64::MAX, i64::MAX)));
    }
}
