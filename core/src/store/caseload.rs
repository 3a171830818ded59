//! The worker's caseload on this device (issue 16, ADR 0019). Every sync answer carries the
//! worker's role and team and the households that left their scope; the store keeps the
//! first two (the app shows them) and removes the third — after this device's own edits to
//! them are pushed, so a reassignment never loses a word. What stays of a removed household
//! is one row: its id, when, and how many of this device's changes were discarded (only if
//! the server refused them), so the app can say why it is gone.

use rusqlite::{params, OptionalExtension};

use super::*;
use crate::model::role::{Role, TeamName};
use crate::protocol::ScopeNotice;

/// A household that left this worker's scope and was removed from (or is leaving) this
/// device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepartedHousehold {
    pub household: HouseholdId,
    /// When this device was told (its clock).
    pub left_at: Timestamp,
    /// When it was removed; `None` while this device's edits to it wait to be pushed.
    pub removed_at: Option<Timestamp>,
    /// This device's changes to it the server refused, discarded with it.
    pub discarded_changes: u32,
}

/// Why a household this device once held is no longer on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gone {
    /// The server erased it (issue 15).
    Erased(ErasedHousehold),
    /// It left the worker's scope (reassigned, or the worker moved team or role).
    LeftScope(DepartedHousehold),
}

/// Apply a scope notice inside the response's transaction: keep the role and team, and mark
/// the held households that left the scope as departing (`settle` removes them).
pub(super) fn apply_notice(tx: &Connection, notice: &ScopeNotice, now: Timestamp) -> Result<()> {
    meta_put(tx, "role", notice.role.as_str().as_bytes())?;
    match &notice.team {
        Some(t) => meta_put(tx, "team", t.as_str().as_bytes())?,
        None => {
            tx.execute("DELETE FROM meta WHERE key = 'team'", [])?;
        }
    }
    for doc in &notice.left {
        let h = doc.to_string();
        let held: Option<i64> = tx
            .prepare_cached("SELECT 1 FROM documents WHERE doc_id = ?1")?
            .query_row([&h], |r| r.get(0))
            .optional()?;
        if held.is_some() {
            tx.execute(
                "INSERT OR REPLACE INTO departed (doc_id, left_at, removed_at, discarded)
                 VALUES (?1, ?2, NULL, 0)",
                params![h, now.0],
            )?;
        }
    }
    Ok(())
}

/// A household that came back into scope (a snapshot of it arrived) is no longer departed.
pub(super) fn returned(tx: &Connection, doc: HouseholdId) -> Result<()> {
    tx.prepare_cached("DELETE FROM departed WHERE doc_id = ?1")?
        .execute([doc.to_string()])?;
    Ok(())
}

/// Remove every departing household whose edits have been handed in: acknowledged (nothing
/// unsynced) or refused (the server will not take them: they are counted as discarded).
/// Runs last in the response's transaction, after the acks and refusals are recorded.
pub(super) fn settle(
    tx: &Connection,
    cache: &mut DocCache,
    actor: &ActorId,
    now: Timestamp,
) -> Result<Vec<HouseholdId>> {
    /// A departing household: id, unsynced, refused, the server heads it knows (absent:
    /// the document is gone already).
    type Waiting = (String, Option<bool>, Option<bool>, Option<Vec<u8>>);
    let waiting: Vec<Waiting> = tx
        .prepare_cached(
            "SELECT p.doc_id, d.unsynced, d.push_error IS NOT NULL, d.server_heads
             FROM departed p LEFT JOIN documents d ON d.doc_id = p.doc_id
             WHERE p.removed_at IS NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<std::result::Result<_, _>>()?;
    let mut removed = Vec::new();
    for (h, unsynced, refused, heads) in waiting {
        let id = HouseholdId::parse(&h).map_err(|_| Error::Damaged)?;
        let discarded = match (unsynced, refused) {
            // Still to be pushed: wait for the next answer.
            (Some(true), Some(false)) => continue,
            (Some(true), Some(true)) => super::erasure::discarded_changes(
                tx,
                cache,
                actor,
                id,
                heads.as_deref().unwrap_or_default(),
            )?,
            _ => 0,
        };
        super::erasure::remove_household(tx, cache, id)?;
        tx.execute(
            "UPDATE departed SET removed_at = ?2, discarded = ?3 WHERE doc_id = ?1",
            params![h, now.0, i64::from(discarded)],
        )?;
        removed.push(id);
    }
    Ok(removed)
}

fn departed_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, i64, Option<i64>, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn departed_household(raw: (String, i64, Option<i64>, i64)) -> Result<DepartedHousehold> {
    Ok(DepartedHousehold {
        household: HouseholdId::parse(&raw.0).map_err(|_| Error::Damaged)?,
        left_at: Timestamp(raw.1),
        removed_at: raw.2.map(Timestamp),
        discarded_changes: u32::try_from(raw.3).unwrap_or(0),
    })
}

impl Store {
    /// The worker's role as the server last said (`None` before the first sync with a
    /// server that has scopes).
    pub fn role(&self) -> Result<Option<Role>> {
        self.with_reader(|conn| {
            Ok(meta_get(conn, "role")?
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| Role::parse(&s)))
        })
    }

    /// The worker's team as the server last said.
    pub fn team(&self) -> Result<Option<TeamName>> {
        self.with_reader(|conn| {
            Ok(meta_get(conn, "team")?
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| TeamName::new(&s).ok()))
        })
    }

    /// Households that left this worker's scope, newest first (those still waiting for
    /// their edits to be pushed have no `removed_at`).
    pub fn departed_households(&self) -> Result<Vec<DepartedHousehold>> {
        self.with_reader(|conn| {
            let rows = conn
                .prepare(
                    "SELECT doc_id, left_at, removed_at, discarded FROM departed
                     ORDER BY left_at DESC, doc_id",
                )?
                .query_map([], departed_row)?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            rows.into_iter().map(departed_household).collect()
        })
    }

    /// Why a household is not (or soon not) on this device: erased by the server, or gone
    /// from the worker's scope. `None`: it is here, or this device never held it.
    pub fn why_gone(&self, household: HouseholdId) -> Result<Option<Gone>> {
        if let Some(e) = self.with_reader(|conn| super::erasure::erased(conn, household))? {
            return Ok(Some(Gone::Erased(e)));
        }
        self.with_reader(|conn| {
            let raw = conn
                .prepare_cached(
                    "SELECT doc_id, left_at, removed_at, discarded FROM departed WHERE doc_id = ?1",
                )?
                .query_row([household.to_string()], departed_row)
                .optional()?;
            raw.map(|r| departed_household(r).map(Gone::LeftScope))
                .transpose()
        })
    }
}
