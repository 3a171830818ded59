//! Households the server erased (issue 15, ADR 0016): deleted here with everything this
//! device held of them, unsynced edits included (erasure wins), and the freed space
//! scrubbed, so no byte of them stays in the store's files. What stays is one row per
//! erased household (id, reason code, times, how many of this device's changes were
//! discarded): the app tells the worker what happened and why.

use rusqlite::{params, OptionalExtension};

use super::*;
use crate::protocol::{Erasure, ErasureReason};

/// A household the server erased that this device held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasedHousehold {
    pub household: HouseholdId,
    pub reason: ErasureReason,
    /// When the server erased it (the server's clock).
    pub erased_at: Timestamp,
    /// When this device deleted it (this device's clock).
    pub removed_at: Timestamp,
    /// This device's changes to it that had not reached the server, discarded with it.
    pub discarded_changes: u32,
}

/// Delete an erased household from this store, inside the response's transaction. `None`
/// if this device did not hold it.
pub(super) fn erase_in(
    tx: &Connection,
    cache: &mut DocCache,
    actor: &ActorId,
    erasure: &Erasure,
    now: Timestamp,
) -> Result<Option<ErasedHousehold>> {
    let id = erasure.doc;
    let h = id.to_string();
    // Its access-log entries go whether or not the document is held here.
    super::access::erase(tx, id)?;
    let state: Option<(Vec<u8>, bool)> = tx
        .prepare_cached("SELECT server_heads, unsynced FROM documents WHERE doc_id = ?1")?
        .query_row([&h], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let quarantined: Option<i64> = tx
        .prepare_cached("SELECT 1 FROM quarantine WHERE doc_id = ?1")?
        .query_row([&h], |r| r.get(0))
        .optional()?;
    if state.is_none() && quarantined.is_none() {
        // Not held here: remember that it was erased all the same, so that a late answer
        // served before the erasure cannot bring it (`heard_erased`).
        meta_put(tx, &heard_key(id), &[1])?;
        return Ok(None);
    }
    let discarded = match &state {
        Some((heads, true)) => discarded_changes(tx, cache, actor, id, heads)?,
        _ => 0,
    };
    remove_household(tx, cache, id)?;
    tx.execute(
        "INSERT OR REPLACE INTO erased (doc_id, reason, erased_at, removed_at, discarded)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            h,
            erasure.reason.as_str(),
            erasure.erased_at,
            now.0,
            i64::from(discarded)
        ],
    )?;
    Ok(Some(ErasedHousehold {
        household: id,
        reason: erasure.reason,
        erased_at: Timestamp(erasure.erased_at),
        removed_at: now,
        discarded_changes: discarded,
    }))
}

fn heard_key(id: HouseholdId) -> String {
    format!("erased_unheld:{id}")
}

/// Whether this device heard that the server erased `id` (it deleted the household, or
/// did not hold it then). An erasure is final — the server refuses the household for good
/// and a restore re-applies the erasure ledger — so what a late answer served before the
/// erasure says of it (a snapshot, changes, an acknowledgement, a refusal) is ignored: it
/// would bring the household back on this device alone (the simulation found it;
/// docs/reliability.md, finding 14).
pub(super) fn heard_erased(conn: &Connection, id: HouseholdId) -> Result<bool> {
    Ok(erased(conn, id)?.is_some() || meta_get(conn, &heard_key(id))?.is_some())
}

/// Delete everything this store holds of a household (document, changes, signatures,
/// quarantine, upload status, index and search rows), inside the caller's transaction, and
/// leave a scrub pending for after it commits. Used by erasure and by a household leaving
/// the worker's scope (`store::caseload`).
pub(super) fn remove_household(
    tx: &Connection,
    cache: &mut DocCache,
    id: HouseholdId,
) -> Result<()> {
    let h = id.to_string();
    cache.evict(&id);
    for table in [
        "changes",
        "signatures",
        "quarantine",
        "held",
        "visit_uploads",
        "attachment_blobs",
        "attachment_uploads",
        "documents",
    ] {
        tx.execute(&format!("DELETE FROM {table} WHERE doc_id = ?1"), [&h])?;
    }
    index::remove(tx, id)?;
    meta_put(tx, "scrub_pending", &[1])?;
    Ok(())
}

/// How many of this device's changes to the household the server does not have.
pub(super) fn discarded_changes(
    tx: &Connection,
    cache: &mut DocCache,
    actor: &ActorId,
    id: HouseholdId,
    server_heads: &[u8],
) -> Result<u32> {
    let heads = bytes_to_hashes(server_heads)?;
    match load(tx, cache, id, actor) {
        Ok(doc) => {
            let own = doc
                .get_changes(&super::sync::known(doc, &heads))
                .iter()
                .filter(|c| c.actor_id() == actor)
                .count();
            Ok(u32::try_from(own).unwrap_or(u32::MAX))
        }
        // A document this version cannot load: count what was written here.
        Err(_) => {
            let n: i64 = tx
                .prepare_cached("SELECT count(*) FROM changes WHERE doc_id = ?1 AND local = 1")?
                .query_row([id.to_string()], |r| r.get(0))?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        }
    }
}

/// Overwrite what erasures freed: merge the search index (its segments keep deleted words
/// until merged), rewrite the file from its live pages (`VACUUM`: freed pages and deleted
/// cells go), and truncate the WAL (old page images go). Run after the erasing transaction
/// committed, and again at open if an earlier run was cut short.
pub(super) fn scrub(conn: &Connection) -> Result<()> {
    conn.execute_batch("INSERT INTO ix_text(ix_text) VALUES('optimize');")?;
    conn.execute_batch("VACUUM;")?;
    conn.execute("DELETE FROM meta WHERE key = 'scrub_pending'", [])?;
    // Readers may hold the WAL a moment: the store's close truncates it again.
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL not truncated after an erasure");
    }
    Ok(())
}

/// Whether a scrub was left undone (the app stopped between an erasure and its scrub).
pub(super) fn scrub_pending(conn: &Connection) -> Result<bool> {
    Ok(meta_get(conn, "scrub_pending")?.is_some())
}

fn erased_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64, i64, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn erased_household(raw: (String, String, i64, i64, i64)) -> Result<ErasedHousehold> {
    Ok(ErasedHousehold {
        household: HouseholdId::parse(&raw.0).map_err(|_| Error::Damaged)?,
        reason: ErasureReason::parse(&raw.1).unwrap_or(ErasureReason::Other),
        erased_at: Timestamp(raw.2),
        removed_at: Timestamp(raw.3),
        discarded_changes: u32::try_from(raw.4).unwrap_or(0),
    })
}

/// The erasure of one household, if this device deleted it because the server erased it.
pub(super) fn erased(conn: &Connection, household: HouseholdId) -> Result<Option<ErasedHousehold>> {
    let raw = conn
        .prepare_cached(
            "SELECT doc_id, reason, erased_at, removed_at, discarded FROM erased WHERE doc_id = ?1",
        )?
        .query_row([household.to_string()], erased_row)
        .optional()?;
    raw.map(erased_household).transpose()
}

impl Store {
    /// Households this device deleted because the server erased them, newest first: what
    /// the app shows as "removed from this phone", with why and whether unsynced work on
    /// them was discarded.
    pub fn erased_households(&self) -> Result<Vec<ErasedHousehold>> {
        self.with_reader(|conn| {
            let rows = conn
                .prepare(
                    "SELECT doc_id, reason, erased_at, removed_at, discarded FROM erased
                     ORDER BY removed_at DESC, doc_id",
                )?
                .query_map([], erased_row)?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            rows.into_iter().map(erased_household).collect()
        })
    }
}
