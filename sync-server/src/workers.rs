//! Workers and their labels (ADR 0017). The `workers` table is the truth; each station's
//! document carries a copy of its workers' labels to the station's phones, so an app shows
//! "W01 / 张丽" for a worker id without a lookup of its own. [`publish_labels`] writes what
//! the document lacks: after a worker is added or relabelled, and for every station when
//! `serve` starts (the backfill for stations from before labels, and the repair of a
//! publication that was cut short between the two writes).
//!
//! Labels may be names: never logged, never quoted in an error.

use doorstep_core::doc::station;
use doorstep_core::{StationId, Timestamp, WorkerId, WorkerLabel};

use crate::snapshot::SnapshotError;
use crate::store::{ServerStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum WorkerAdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The label was refused (the rule, never the label) or the document could not be
    /// written.
    #[error(transparent)]
    Rule(#[from] doorstep_core::Error),
    #[error(transparent)]
    StoredDocument(#[from] SnapshotError),
}

/// What a publication did for one station.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// Labels written into the station document now (0: it had them all).
    pub written: usize,
    /// Workers whose stored label is not a valid label (from before the rule): not
    /// published; `worker label` gives them one.
    pub invalid: Vec<WorkerId>,
}

/// Add a worker to a station with a checked label, and publish it to the station's phones.
/// The worker exists once this returns; a publication that fails is logged and repaired by
/// the next one (the next `serve` start at the latest), so the id is never lost.
pub fn add_worker<S: ServerStore>(
    store: &S,
    station: StationId,
    label: &str,
    now_ms: i64,
) -> Result<WorkerId, WorkerAdminError> {
    let label = WorkerLabel::new(label)?;
    let worker = store.add_worker(station, label.as_str(), now_ms)?;
    if let Err(e) = publish_labels(store, station) {
        tracing::warn!(
            station = %station, worker = %worker, error = %e,
            "the new worker's label is not in the station document yet (written at the next \
             `serve` start or `worker label`)"
        );
    }
    Ok(worker)
}

/// A role as the admin types it.
pub fn role(s: &str) -> Result<doorstep_core::Role, String> {
    doorstep_core::Role::parse(s.trim()).ok_or_else(|| {
        let all: Vec<&str> = doorstep_core::Role::ALL
            .iter()
            .map(|r| r.as_str())
            .collect();
        format!("--role must be one of: {}", all.join(", "))
    })
}

/// Change a worker's role and/or team (`Some(None)`: no team) in one go; the worker's
/// devices learn what entered and left their scope at their next sync (ADR 0019).
pub fn set_access<S: ServerStore>(
    store: &S,
    worker: WorkerId,
    role: Option<doorstep_core::Role>,
    team: Option<Option<&doorstep_core::TeamName>>,
    now_ms: i64,
) -> Result<crate::store::Rescoped, StoreError> {
    let mut out = crate::store::Rescoped::default();
    if let Some(role) = role {
        out = store.set_role(worker, role, now_ms)?;
    }
    if let Some(team) = team {
        let r = store.set_team(worker, team, now_ms)?;
        out.entered += r.entered;
        out.left += r.left;
    }
    Ok(out)
}

/// Change a worker's label and publish it; returns the worker's station. Setting the label
/// a worker already has publishes it again (a retry after a failed publication).
pub fn set_label<S: ServerStore>(
    store: &S,
    worker: WorkerId,
    label: &str,
) -> Result<StationId, WorkerAdminError> {
    let label = WorkerLabel::new(label)?;
    let station = store.set_worker_label(worker, label.as_str())?;
    publish_labels(store, station)?;
    Ok(station)
}

/// Bring the station document's labels up to the `workers` table: one change with the
/// labels it lacks or holds differently, none when it is current. Workers whose stored
/// label breaks the rule are left out (and logged by id).
pub fn publish_labels<S: ServerStore>(
    store: &S,
    station: StationId,
) -> Result<Published, WorkerAdminError> {
    let (labels, invalid) = checked(store.worker_labels(station)?);
    for w in &invalid {
        tracing::warn!(
            station = %station, worker = %w,
            "a worker's stored label is not a valid label and is not sent to phones: set one \
             with `doorstep-server worker label`"
        );
    }
    let written = if labels.is_empty() {
        0
    } else {
        crate::station_doc::edit::<_, _, WorkerAdminError>(store, station, |doc| {
            station::set_worker_labels(doc, &labels, Timestamp::now())
        })?
    };
    Ok(Published { written, invalid })
}

/// [`publish_labels`] for every station (what `serve` does before it listens). A station
/// that fails is logged and skipped: labels are a convenience, serving is not. Returns the
/// number of labels written.
pub fn publish_all_labels<S: ServerStore>(store: &S) -> Result<usize, WorkerAdminError> {
    let mut written = 0;
    for (station, _) in store.stations()? {
        match publish_labels(store, station) {
            Ok(p) => written += p.written,
            Err(e) => tracing::warn!(
                station = %station, error = %e,
                "the workers' labels were not published to the station document"
            ),
        }
    }
    if written > 0 {
        tracing::info!(
            labels = written,
            "workers' labels published to station documents"
        );
    }
    Ok(written)
}

/// The stored labels split into valid ones and the workers whose label is not.
fn checked(stored: Vec<(WorkerId, String)>) -> (Vec<(WorkerId, WorkerLabel)>, Vec<WorkerId>) {
    let mut valid = Vec::with_capacity(stored.len());
    let mut invalid = Vec::new();
    for (w, l) in stored {
        match WorkerLabel::new(&l) {
            Ok(l) => valid.push((w, l)),
            Err(_) => invalid.push(w),
        }
    }
    (valid, invalid)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use doorstep_core::doc::station::{read_worker_labels, station_doc_id};

    use super::*;
    use crate::store::console::ConsoleStore;
    use crate::SqliteStore;

    fn doc_labels(store: &SqliteStore, station: StationId) -> Vec<(WorkerId, String)> {
        match store.load_document(station_doc_id(station)).unwrap() {
            None => Vec::new(),
            Some(stored) => {
                let doc = crate::snapshot::load_stored(&stored).unwrap();
                read_worker_labels(&doc)
                    .unwrap()
                    .into_iter()
                    .map(|(w, l)| (w, l.into_string()))
                    .collect()
            }
        }
    }

    fn sorted(mut v: Vec<(WorkerId, String)>) -> Vec<(WorkerId, String)> {
        v.sort();
        v
    }

    #[test]
    fn added_and_relabelled_workers_reach_their_own_station_document_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let (a, b) = (
            store.create_station("A", 1).unwrap(),
            store.create_station("B", 1).unwrap(),
        );
        let zhang = add_worker(&store, a, "  W01 / 张丽 ", 1).unwrap();
        let wang = add_worker(&store, b, "W01 / 王芳", 1).unwrap();
        assert_eq!(doc_labels(&store, a), vec![(zhang, "W01 / 张丽".into())]);
        assert_eq!(doc_labels(&store, b), vec![(wang, "W01 / 王芳".into())]);
        assert_eq!(set_label(&store, zhang, "W01 / 张丽华").unwrap(), a);
        assert_eq!(doc_labels(&store, a), vec![(zhang, "W01 / 张丽华".into())]);
        assert_eq!(doc_labels(&store, b), vec![(wang, "W01 / 王芳".into())]);
        // Nothing new: no change, the log stays where it is.
        let seq = store.high_water(a).unwrap();
        assert_eq!(publish_labels(&store, a).unwrap(), Published::default());
        assert_eq!(store.high_water(a).unwrap(), seq);
    }

    #[test]
    fn bad_labels_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let a = store.create_station("A", 1).unwrap();
        let w = add_worker(&store, a, "W01", 1).unwrap();
        for bad in ["", "   ", "张\n丽", "W\u{202E}01", &"张".repeat(65)] {
            assert!(matches!(
                add_worker(&store, a, bad, 1),
                Err(WorkerAdminError::Rule(doorstep_core::Error::InvalidInput(
                    _
                )))
            ));
            assert!(matches!(
                set_label(&store, w, bad),
                Err(WorkerAdminError::Rule(doorstep_core::Error::InvalidInput(
                    _
                )))
            ));
        }
        assert_eq!(store.worker_labels(a).unwrap(), vec![(w, "W01".into())]);
        assert_eq!(doc_labels(&store, a), vec![(w, "W01".into())]);
        assert!(matches!(
            set_label(&store, WorkerId::new(), "W02"),
            Err(WorkerAdminError::Store(StoreError::NotFound("worker")))
        ));
    }

    /// Stations from before labels: their workers were added without a publication (as the
    /// store alone adds them). The start of `serve` publishes them, once; a stored label
    /// that breaks today's rule is left out and named by id.
    #[test]
    fn the_backfill_publishes_existing_workers_once_and_skips_invalid_labels() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let (a, b, empty) = (
            store.create_station("A", 1).unwrap(),
            store.create_station("B", 1).unwrap(),
            store.create_station("C", 1).unwrap(),
        );
        let w1 = store.add_worker(a, "W01", 1).unwrap();
        let w2 = store.add_worker(a, "W02 / 张丽", 1).unwrap();
        let bad = store.add_worker(a, "W0\n3", 1).unwrap();
        let w4 = store.add_worker(b, "W01", 1).unwrap();
        assert_eq!(doc_labels(&store, a), vec![]);
        assert_eq!(publish_all_labels(&store).unwrap(), 3);
        assert_eq!(
            doc_labels(&store, a),
            sorted(vec![(w1, "W01".into()), (w2, "W02 / 张丽".into())])
        );
        assert_eq!(doc_labels(&store, b), vec![(w4, "W01".into())]);
        assert!(
            store
                .load_document(station_doc_id(empty))
                .unwrap()
                .is_none(),
            "a station without workers gets no document"
        );
        assert_eq!(publish_labels(&store, a).unwrap().invalid, vec![bad]);
        let seqs = (store.high_water(a).unwrap(), store.high_water(b).unwrap());
        assert_eq!(
            publish_all_labels(&store).unwrap(),
            0,
            "a second start writes nothing"
        );
        assert_eq!(
            (store.high_water(a).unwrap(), store.high_water(b).unwrap()),
            seqs
        );
        // Relabelled, the worker with the bad label is published too.
        set_label(&store, bad, "W03").unwrap();
        assert_eq!(doc_labels(&store, a).len(), 3);
    }
}
