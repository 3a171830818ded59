//! The workers' labels on the device ("W01 / 张丽" for a worker id): indexed from the
//! station document into `ix_worker_labels` (schema 7) whenever it changes; ADR 0017.

use automerge::ActorId;
use rusqlite::{params, Connection, OptionalExtension};

use super::{index, load_from_disk, meta_get, Store};
use crate::doc::station::station_doc_id;
use crate::error::Result;
use crate::model::ids::{StationId, WorkerId};

impl Store {
    /// The label the station gave a worker, if its station document carries one; `None` (a
    /// worker of another station, one added since the last sync, an older server): show the
    /// id.
    pub fn worker_label(&self, worker: WorkerId) -> Result<Option<String>> {
        self.reader_query(|c| {
            Ok(c.prepare_cached(
                "SELECT label FROM ix_worker_labels WHERE worker_id = doorstep_key(?1)",
            )?
            .query_row([worker.to_string()], |r| r.get(0))
            .optional()?)
        })
    }

    /// Every label the station document carries, ordered by label (then worker id).
    pub fn worker_labels(&self) -> Result<Vec<(WorkerId, String)>> {
        self.reader_query(|c| {
            let rows = c
                .prepare_cached(
                    "SELECT doorstep_id(worker_id), label FROM ix_worker_labels
                     ORDER BY label, worker_id",
                )?
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(w, l)| Ok((WorkerId::parse(&w)?, l)))
                .collect()
        })
    }
}

/// After the migration to schema 7, index the station document the store already held (it
/// may carry labels an older app received but did not read). The request in `meta` goes in
/// the same transaction as the rows, so a store closed half-way asks again at its next open.
/// A station document that does not load or read is left to its next change (labels are a
/// convenience: a store must still open).
pub(super) fn reindex_station_if_asked(
    conn: &mut Connection,
    station: StationId,
    actor: &ActorId,
) -> Result<()> {
    if meta_get(conn, "reindex_station")?.is_none() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    let indexed = load_from_disk(&tx, station_doc_id(station), actor)
        .and_then(|doc| index::update_station(&tx, &doc));
    let tx = match indexed {
        Ok(()) => tx,
        Err(e) => {
            tracing::warn!(error = %e, "the station document was not indexed after the upgrade");
            drop(tx);
            conn.transaction()?
        }
    };
    tx.execute("DELETE FROM meta WHERE key = 'reindex_station'", params![])?;
    tx.commit()?;
    Ok(())
}
