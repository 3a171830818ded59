//! Phone retention (issue 15, ADR 0025): closed households leave the phones after the
//! station's phone period and stay on the server until its retention ends (ADR 0016 §7).
//!
//! Gather (each household's closing time and retirement, read from the store), plan (pure:
//! [`due`]), execute (one transaction per household, [`ServerStore::retire`] /
//! [`ServerStore::reopen`], like the bulk assignment of `caseload`). Retiring a household
//! takes it out of every worker's scope, supervisors' included: each phone that holds it is
//! told at its next sync, hands in its unsynced edits to it and then removes it (ADR 0019
//! §6). A failure part-way leaves the households done so far retired; running the command
//! again finishes the rest.

use doorstep_core::{HouseholdId, StationId};

use crate::store::{Rescoped, Retirement, ServerStore, StoreError};

/// What the sweep does to one household.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Take it off the phones: closed since `closed_at` (or reopened since, if later) for
    /// longer than the period.
    Retire,
    /// Bring it back: it is retired but its status is no longer `closed` (a late phone's
    /// edit, handed in after it was retired, set it active or moved away).
    Return,
}

/// The plan for one household: `closed_at` is when its shown status became `closed`
/// (`None`: it is not closed), `retirement` its record, `cutoff` the sweep's time less the
/// period. A household reopened is given the whole period again from its reopening, so a
/// supervisor who brings one back has time to set its status on a phone.
pub fn due(closed_at: Option<i64>, retirement: Option<Retirement>, cutoff: i64) -> Option<Step> {
    let retired = retirement.is_some_and(|r| r.retired());
    match closed_at {
        None if retired => Some(Step::Return),
        None => None,
        Some(_) if retired => None,
        Some(at) => {
            let since = retirement
                .and_then(|r| r.reopened_at)
                .map_or(at, |reopened| at.max(reopened));
            (since <= cutoff).then_some(Step::Retire)
        }
    }
}

/// A household the sweep retired from the phones or brought back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swept {
    pub station: StationId,
    pub household: HouseholdId,
    pub step: Step,
    /// When it was closed (ms since the Unix epoch, the closing phone's clock); `None` for
    /// a household brought back.
    pub closed_at: Option<i64>,
    /// Scope entries written (phones told); zero in a dry run.
    pub told: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RetirementError {
    #[error("household {0} is not a household of this station")]
    NotInStation(HouseholdId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Phone retention: every household of `station` (all stations: `None`) closed for longer
/// than `closed_for_ms` at `now_ms` leaves the phones (see [`due`]); a retired household
/// whose status is no longer `closed` comes back. With `dry_run`, only listed. A document
/// the server cannot read is logged (by id) and left as it is, never retired on a guess.
/// Returns what was done, oldest closing first, returns last.
pub fn sweep<S: ServerStore + ?Sized>(
    store: &S,
    station: Option<StationId>,
    closed_for_ms: i64,
    now_ms: i64,
    dry_run: bool,
) -> Result<Vec<Swept>, RetirementError> {
    let stations: Vec<StationId> = match station {
        Some(s) => vec![s],
        None => store.stations()?.into_iter().map(|(s, _)| s).collect(),
    };
    let cutoff = now_ms.saturating_sub(closed_for_ms);
    let mut plan = Vec::new();
    for station in stations {
        crate::store::for_each_document(store, station, |id| -> Result<(), RetirementError> {
            let Some(stored) = store.load_document(id)? else {
                return Ok(());
            };
            let doc = crate::snapshot::load_stored(&stored).ok();
            // Station work (ADR 0021) is every worker's and is never closed.
            if let Some(Ok((doorstep_core::doc::DocKind::Work(_), _, _))) =
                doc.as_ref().map(doorstep_core::doc::document_header)
            {
                return Ok(());
            }
            let Some(closed_at) = doc.and_then(|d| doorstep_core::doc::closed_at(&d).ok()) else {
                tracing::warn!(household = %id, "phone retention: document not readable; left as it is");
                return Ok(());
            };
            let closed_at = closed_at.map(|t| t.0);
            if let Some(step) = due(closed_at, store.retirement(id)?, cutoff) {
                plan.push(Swept {
                    station,
                    household: id,
                    step,
                    closed_at,
                    told: 0,
                });
            }
            Ok(())
        })?;
    }
    plan.sort_by_key(|s| (s.step == Step::Return, s.closed_at, s.household));
    if !dry_run {
        for s in &mut plan {
            let r: Rescoped = match s.step {
                Step::Retire => store.retire(s.station, s.household, now_ms)?,
                Step::Return => store.reopen(s.station, s.household, now_ms)?,
            };
            s.told = r.entered + r.left;
            tracing::info!(station = %s.station, household = %s.household, step = ?s.step, told = s.told, "phone retention");
        }
    }
    Ok(plan)
}

/// Bring a retired household back to the phones of those who should see it (`household
/// reopen`): they receive it whole at their next sync. Its status stays what it is (the
/// server does not write case files): a worker sets it on a phone; until then the phone
/// period counts from now. A household that is not retired is left as it is (nothing
/// written). Returns the scope entries written.
pub fn reopen<S: ServerStore + ?Sized>(
    store: &S,
    station: StationId,
    household: HouseholdId,
    now_ms: i64,
) -> Result<Rescoped, RetirementError> {
    if store.document_station(household)? != Some(station) {
        return Err(RetirementError::NotInStation(household));
    }
    match store.reopen(station, household, now_ms) {
        Err(StoreError::NotFound(_)) => Err(RetirementError::NotInStation(household)),
        r => {
            let r = r?;
            tracing::info!(station = %station, household = %household, told = r.entered, "household reopened on the phones");
            Ok(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn the_plan_retires_what_was_closed_longer_than_the_period_and_returns_what_reopened() {
        let cutoff = 100 * DAY;
        let retired = Some(Retirement {
            retired_at: 101 * DAY,
            reopened_at: None,
        });
        let reopened = |at| {
            Some(Retirement {
                retired_at: DAY,
                reopened_at: Some(at),
            })
        };
        // Closed long enough: retired; closed less long, or at the cutoff's next instant: kept.
        assert_eq!(due(Some(50 * DAY), None, cutoff), Some(Step::Retire));
        assert_eq!(due(Some(cutoff), None, cutoff), Some(Step::Retire));
        assert_eq!(due(Some(cutoff + 1), None, cutoff), None);
        // Active (never closed) households stay, retired or not.
        assert_eq!(due(None, None, cutoff), None);
        // Already retired: nothing more; retired but no longer closed: back to the phones.
        assert_eq!(due(Some(50 * DAY), retired, cutoff), None);
        assert_eq!(due(None, retired, cutoff), Some(Step::Return));
        // Reopened: the period counts again from the reopening, whichever is later.
        assert_eq!(due(Some(50 * DAY), reopened(cutoff + 1), cutoff), None);
        assert_eq!(
            due(Some(50 * DAY), reopened(60 * DAY), cutoff),
            Some(Step::Retire)
        );
        assert_eq!(due(Some(cutoff + 5), reopened(60 * DAY), cutoff), None);
    }
}
