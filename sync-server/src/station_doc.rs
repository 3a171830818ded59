//! The server's own edits to a station document (card batches and leases: `cards`; the
//! workers' labels: `workers`). Each edit is one automerge change appended to the station's
//! change log, so it reaches every device of the station at its next sync; the sync
//! service's cached copy is stale from then on (its log position is older) and reloaded.
//! Devices do not check signatures on the station document (`verify_received` in core):
//! only the server writes it, and devices never push to it.

use automerge::Automerge;
use doorstep_core::doc::station::{self, station_doc_id};
use doorstep_core::{DeviceId, StationId};

use crate::snapshot::SnapshotError;
use crate::store::{DocAppend, ServerStore, StoreError};

/// Changes written by the server itself carry this origin (no device skips them).
pub(crate) const SERVER_ORIGIN: DeviceId = DeviceId::from_uuid(uuid::Uuid::nil());

/// How often an edit is tried again when another writer (the admin CLI, the console,
/// another server instance) changed the document between its load and its commit.
const ATTEMPTS: usize = 5;

/// Apply an admin edit to the station document and append its changes to the station log.
/// The edit runs on the current document, again if another writer got there first: the
/// commit checks the document's log position, so two writers never both start the
/// document (one `batches`, `leases` or `workers` map would hide the other's) or check an
/// overlap against a stale copy. An edit that changes nothing writes nothing.
pub(crate) fn edit<S, T, E>(
    store: &S,
    station: StationId,
    mut edit: impl FnMut(&mut Automerge) -> doorstep_core::Result<T>,
) -> Result<T, E>
where
    S: ServerStore,
    E: From<StoreError> + From<doorstep_core::Error> + From<SnapshotError>,
{
    let id = station_doc_id(station);
    let mut attempt = 1;
    loop {
        // The position first: a write that lands before the load fails the commit below
        // (and the edit is tried again); it can never go unseen.
        let seq = store.document_seq(id)?;
        let (mut doc, base) = match store.load_document(id)? {
            Some(stored) => {
                let doc = crate::snapshot::load_stored(&stored)?;
                let heads = doc.get_heads();
                (doc, heads)
            }
            None => (station::new_station_doc(station)?, Vec::new()),
        };
        let out = edit(&mut doc)?;
        let changes: Vec<_> = doc
            .get_changes(&base)
            .into_iter()
            .map(|c| (c.hash(), c.raw_bytes().to_vec()))
            .collect();
        if changes.is_empty() {
            return Ok(out);
        }
        let append = DocAppend {
            doc: id,
            kind: doorstep_core::doc::DocKind::Household,
            changes,
            snapshot: None,
            cards: Vec::new(),
            expected_seq: Some(seq),
            signatures: Vec::new(),
        };
        match store.commit(station, SERVER_ORIGIN, &[append]) {
            Ok(_) => return Ok(out),
            Err(StoreError::Conflict(_)) if attempt < ATTEMPTS => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Barrier};

    use doorstep_core::doc::station::{read_worker_labels, set_worker_labels};
    use doorstep_core::{Timestamp, WorkerId, WorkerLabel};

    use super::*;
    use crate::SqliteStore;

    /// Two admins label a worker each at the same moment, on a station without a document
    /// yet: both load "no document", both start one. Without the log-position check both
    /// commits land, the two `workers` maps conflict and one label is hidden; with it, the
    /// second edit is tried again on the first one's document.
    #[test]
    fn concurrent_first_edits_keep_both() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let station = store.create_station("站", 1).unwrap();
        let both_loaded = Arc::new(Barrier::new(2));
        let writers: Vec<_> = ["W01", "W02"]
            .into_iter()
            .map(|name| {
                let (store, both_loaded) = (store.clone(), both_loaded.clone());
                std::thread::spawn(move || {
                    let worker = WorkerId::new();
                    let label = WorkerLabel::new(name).unwrap();
                    let first = AtomicBool::new(true);
                    edit::<_, _, crate::workers::WorkerAdminError>(
                        store.as_ref(),
                        station,
                        |doc| {
                            if first.swap(false, Ordering::SeqCst) {
                                both_loaded.wait();
                            }
                            set_worker_labels(doc, &[(worker, label.clone())], Timestamp(1))
                        },
                    )
                    .unwrap();
                    worker
                })
            })
            .collect();
        let mut workers: Vec<WorkerId> = writers.into_iter().map(|t| t.join().unwrap()).collect();
        workers.sort();
        let stored = store
            .load_document(station_doc_id(station))
            .unwrap()
            .unwrap();
        let doc = crate::snapshot::load_stored(&stored).unwrap();
        let labelled: Vec<WorkerId> = read_worker_labels(&doc)
            .unwrap()
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        let mut labelled = labelled;
        labelled.sort();
        assert_eq!(labelled, workers, "both labels are in the document");
    }

    #[test]
    fn an_edit_that_changes_nothing_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let station = store.create_station("站", 1).unwrap();
        let w = (WorkerId::new(), WorkerLabel::new("W01").unwrap());
        let label =
            |doc: &mut Automerge| set_worker_labels(doc, std::slice::from_ref(&w), Timestamp(1));
        edit::<_, _, crate::workers::WorkerAdminError>(&store, station, label).unwrap();
        let seq = store.high_water(station).unwrap();
        assert!(seq > 0);
        edit::<_, _, crate::workers::WorkerAdminError>(&store, station, label).unwrap();
        assert_eq!(store.high_water(station).unwrap(), seq);
    }
}
