//! Texts typed into whose search index waits (ADR 0027).
//!
//! Rewriting a text into the search index costs what the whole text costs (its trigrams,
//! its compressed copy), so a keystroke does not do it: it marks the text pending in
//! `ix_text_pending`, in the keystroke's own transaction, so the mark is as durable as the
//! change (a crash before the text is indexed loses nothing: the mark is still there).
//! [`Store::flush_search_index`] indexes the pending texts, each once whatever the number
//! of keystrokes; every search calls it first, so search stays exact. A pass that rewrites
//! a record's texts anyway (finalising or editing a visit, a merge of changes from
//! elsewhere, `rebuild_index`) removes that record's marks (`index.rs`).

use rusqlite::{params, Connection};

use super::index::{self, household_key, text_key, text_key_id};
use super::{load, lock, Store, Writer};
use crate::error::{Error, Result};
use crate::model::ids::HouseholdId;

/// Mark one text (a visit's section, a household's summary) as typed into.
pub(crate) fn mark(
    conn: &Connection,
    household: HouseholdId,
    entity: &str,
    field: &str,
) -> Result<()> {
    // Already marked (the usual case while typing): no row changes, no page is written.
    conn.prepare_cached(
        "INSERT OR IGNORE INTO ix_text_pending (household_id, entity_id, field)
         VALUES (?1, ?2, ?3)",
    )?
    .execute(params![household_key(household), text_key(entity), field])?;
    Ok(())
}

/// Forget the marks of a household whose texts were all just rewritten (or removed).
pub(crate) fn clear_household(conn: &Connection, household: HouseholdId) -> Result<()> {
    conn.prepare_cached("DELETE FROM ix_text_pending WHERE household_id = ?1")?
        .execute([household_key(household)])?;
    Ok(())
}

/// Forget the marks of one record whose texts were just rewritten.
pub(crate) fn clear_record(conn: &Connection, household: HouseholdId, entity: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM ix_text_pending WHERE household_id = ?1 AND entity_id = ?2")?
        .execute(params![household_key(household), text_key(entity)])?;
    Ok(())
}

fn clear_one(conn: &Connection, household: HouseholdId, entity: &str, field: &str) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM ix_text_pending WHERE household_id = ?1 AND entity_id = ?2 AND field = ?3",
    )?
    .execute(params![household_key(household), text_key(entity), field])?;
    Ok(())
}

/// Whether any text waits (one index probe).
fn any(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM ix_text_pending)")?
        .query_row([], |r| r.get(0))?)
}

/// The pending texts, household by household.
fn list(conn: &Connection) -> Result<Vec<(HouseholdId, String, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT household_id, entity_id, field FROM ix_text_pending
         ORDER BY household_id, entity_id, field",
    )?;
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let household = HouseholdId::parse(&text_key_id(r.get(0)?)?)?;
        out.push((household, text_key_id(r.get(1)?)?, r.get(2)?));
    }
    Ok(out)
}

impl Store {
    /// Bring the search index up to date with the text typed since it last was: each text
    /// typed into is indexed once, whatever the number of keystrokes. Every search does this
    /// first, so search always finds what was just typed (also after a crash); call it when
    /// typing pauses, or when the app goes to the background, so that the next search does
    /// not wait for it. Returns how many texts it indexed (0: the index was up to date).
    pub fn flush_search_index(&self) -> Result<u32> {
        let mut w = self.writer();
        let Writer { conn, cache, .. } = &mut *w;
        let pending = list(conn)?;
        if pending.is_empty() {
            return Ok(0);
        }
        let tx = conn.transaction()?;
        let mut indexed = 0u32;
        for (household, entity, field) in &pending {
            match load(&tx, cache, *household, &self.actor) {
                Ok(doc) => {
                    index::index_pending(&tx, doc, *household, entity, field)?;
                    indexed += 1;
                }
                // Gone (erased, say): nothing of it is to be found any more.
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            clear_one(&tx, *household, entity, field)?;
        }
        tx.commit()?;
        Ok(indexed)
    }

    /// `flush_search_index` when a text waits; only a read of the (empty) table when none
    /// does, without the writer's lock.
    pub(crate) fn flush_search_index_if_pending(&self) -> Result<()> {
        let waiting = {
            let r = lock(&self.reader);
            any(&r)?
        };
        if waiting {
            self.flush_search_index()?;
        }
        Ok(())
    }
}
