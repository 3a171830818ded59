//! Assigning many households at once (issue 16, ADR 0019): a village's households to the
//! worker or team who covers it, or a leaving worker's caseload handed to a colleague.
//!
//! Each household is reassigned with [`ServerStore::assign`], one transaction each, exactly
//! as `household assign` does it for one: scope entries for whoever gains or loses it, the
//! old holder's phones hand in their edits before removing it. A failure part-way leaves the
//! households done so far reassigned; running the same command again finishes the rest
//! (assigning a household to whom it is already assigned changes no one's scope).

use doorstep_core::{HouseholdId, StationId, TeamName, WorkerId};

use crate::store::{ServerStore, StoreError, StoreResult};

/// Which households of a station to assign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    One(HouseholdId),
    /// Every household whose case file names this village (exactly, after trimming).
    Village(String),
    /// Every household assigned to this worker (by name, not through a team): their
    /// caseload, e.g. when they leave the station.
    AssignedTo(WorkerId),
}

/// What an assignment of several households did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reassigned {
    pub households: usize,
    /// Scope entries written: some worker gains a household...
    pub entered: usize,
    /// ...or loses one.
    pub left: usize,
    /// Households whose document could not be read to learn their village (skipped; their
    /// ids are logged, nothing else).
    pub unreadable: usize,
}

/// The station's households `pick` names, in id order.
pub fn pick<S: ServerStore + ?Sized>(
    store: &S,
    station: StationId,
    pick: &Pick,
) -> StoreResult<(Vec<HouseholdId>, usize)> {
    if let Pick::One(id) = pick {
        return match store.document_station(*id)? {
            Some(s) if s == station => Ok((vec![*id], 0)),
            _ => Err(StoreError::NotFound("household of this station")),
        };
    }
    let (mut out, mut unreadable) = (Vec::new(), 0);
    crate::store::for_each_document(store, station, |id| -> StoreResult<()> {
        let chosen = match pick {
            Pick::One(_) => unreachable!("answered above"),
            Pick::AssignedTo(worker) => store
                .assignment(id)?
                .is_some_and(|a| a.worker == Some(*worker)),
            Pick::Village(village) => match village_of(store, id)? {
                // Station work (ADR 0021) has no village and is never assigned.
                Some(None) => false,
                Some(Some(v)) => v.trim() == village.trim(),
                None => {
                    tracing::warn!(household = %id, "assign: document not readable; skipped");
                    unreadable += 1;
                    false
                }
            },
        };
        if chosen {
            out.push(id);
        }
        Ok(())
    })?;
    Ok((out, unreadable))
}

/// The village a household's case file names (`Some(None)`: not a household but station
/// work), `None` if its document does not read.
fn village_of<S: ServerStore + ?Sized>(
    store: &S,
    id: HouseholdId,
) -> StoreResult<Option<Option<String>>> {
    let Some(stored) = store.load_document(id)? else {
        return Ok(None);
    };
    let Ok(doc) = crate::snapshot::load_stored(&stored) else {
        return Ok(None);
    };
    if let Ok((doorstep_core::doc::DocKind::Work(_), _, _)) =
        doorstep_core::doc::document_header(&doc)
    {
        return Ok(Some(None));
    }
    Ok(doorstep_core::doc::village(&doc).ok().map(Some))
}

/// Assign every household `pick` names to `worker` and/or `team`.
pub fn assign<S: ServerStore + ?Sized>(
    store: &S,
    station: StationId,
    pick_: &Pick,
    worker: Option<WorkerId>,
    team: Option<&TeamName>,
    by: &str,
    now_ms: i64,
) -> StoreResult<Reassigned> {
    let (ids, unreadable) = pick(store, station, pick_)?;
    let mut done = Reassigned {
        unreadable,
        ..Default::default()
    };
    for id in ids {
        let r = store.assign(station, id, worker, team, by, now_ms)?;
        done.households += 1;
        done.entered += r.entered;
        done.left += r.left;
    }
    Ok(done)
}
