//! Erasing a household (issue 15, ADR 0016): the ledger that outlives the database, and
//! the one way every caller (the admin CLI, the console, retention) erases.
//!
//! The ledger is a file of its own beside the database (`erasures.jsonl` in the data
//! directory, mode 0600): one JSON line per erasure with ids, the time, who and a reason
//! code — no personal data. It is written (and synced to disk) **before** the database
//! erases, and re-applied whenever the server starts and after `restore`: a backup made
//! before an erasure, restored later, cannot bring the household back, and an erasure cut
//! short by a crash completes at the next start.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use doorstep_core::protocol::ErasureReason;
use doorstep_core::{HouseholdId, StationId};
use serde::{Deserialize, Serialize};

use crate::store::{ErasureRecord, ServerStore, StoreError};

/// The ledger's file name in the data directory.
pub const LEDGER_FILE: &str = "erasures.jsonl";

/// One line of the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub station: String,
    pub household: String,
    /// Milliseconds since the Unix epoch.
    pub erased_at: i64,
    pub erased_by: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("the erasure ledger {0}: {1}")]
    Ledger(PathBuf, String),
    #[error("household {0} is not a household of this station")]
    NotInStation(HouseholdId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The erasure ledger of a data directory.
#[derive(Clone, Debug)]
pub struct Ledger {
    path: PathBuf,
}

impl Ledger {
    /// The ledger of the data directory `data` (the file need not exist yet).
    pub fn in_dir(data: &Path) -> Self {
        Ledger {
            path: data.join(LEDGER_FILE),
        }
    }

    /// The ledger of redactions of the data directory `data` (ADR 0026): kept and re-applied
    /// like the erasures', in a file of its own.
    pub fn redactions_in(data: &Path) -> Self {
        Ledger {
            path: data.join(crate::redaction::LEDGER_FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn error(&self, e: impl std::fmt::Display) -> ErasureError {
        ErasureError::Ledger(self.path.clone(), e.to_string())
    }

    /// Append an entry and make it durable (file and, when it is new, its directory).
    pub fn append<T: Serialize>(&self, entry: &T) -> Result<(), ErasureError> {
        let new = !self.path.exists();
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&self.path).map_err(|e| self.error(e))?;
        let mut line = serde_json::to_vec(entry).map_err(|e| self.error(e))?;
        line.push(b'\n');
        f.write_all(&line)
            .and_then(|()| f.sync_all())
            .map_err(|e| self.error(e))?;
        if new {
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| self.error(e))?;
            }
        }
        Ok(())
    }

    /// Every entry, oldest first; none if there is no ledger. A last line cut short by a
    /// crash mid-append is skipped (its erasure never started); any other unreadable line
    /// is an error: the ledger is not silently half-applied.
    pub fn entries<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, ErasureError> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.error(e)),
        };
        let lines: Vec<String> = std::io::BufReader::new(f)
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(e))?;
        let mut out = Vec::with_capacity(lines.len());
        let last = lines.len().saturating_sub(1);
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<T>(line) {
                Ok(e) => out.push(e),
                Err(_) if i == last => {}
                Err(_) => return Err(self.error(format!("line {} is not an entry", i + 1))),
            }
        }
        Ok(out)
    }
}

fn parse_entry(
    ledger: &Ledger,
    e: &LedgerEntry,
) -> Result<(StationId, HouseholdId, ErasureReason), ErasureError> {
    let station = StationId::parse(&e.station).map_err(|_| ledger.error("bad station id"))?;
    let household =
        HouseholdId::parse(&e.household).map_err(|_| ledger.error("bad household id"))?;
    let reason = ErasureReason::parse(&e.reason).unwrap_or(ErasureReason::Other);
    Ok((station, household, reason))
}

/// Erase a household of a station: the ledger first, then the database. A household the
/// server does not hold in that station is refused (an id of another station is answered
/// the same way); one already erased returns its record.
pub fn erase<S: ServerStore + ?Sized>(
    store: &S,
    ledger: &Ledger,
    station: StationId,
    household: HouseholdId,
    reason: ErasureReason,
    erased_by: &str,
    now_ms: i64,
) -> Result<ErasureRecord, ErasureError> {
    if let Some(done) = store.erasure(household)? {
        return if done.station == station {
            Ok(done)
        } else {
            Err(ErasureError::NotInStation(household))
        };
    }
    if store.document_station(household)? != Some(station) {
        return Err(ErasureError::NotInStation(household));
    }
    ledger.append(&LedgerEntry {
        station: station.to_string(),
        household: household.to_string(),
        erased_at: now_ms,
        erased_by: erased_by.to_owned(),
        reason: reason.as_str().to_owned(),
    })?;
    let record = store.erase_document(station, household, reason, erased_by, now_ms)?;
    tracing::info!(station = %station, household = %household, reason = reason.as_str(), "household erased");
    Ok(record)
}

/// Apply every ledger entry the database lacks (after a restore, or an erasure cut short);
/// returns how many were applied. An entry of a station the database does not have (a
/// backup older than the station) has nothing to erase.
pub fn reapply<S: ServerStore + ?Sized>(store: &S, ledger: &Ledger) -> Result<usize, ErasureError> {
    let mut applied = 0;
    for entry in ledger.entries::<LedgerEntry>()? {
        let (station, household, reason) = parse_entry(ledger, &entry)?;
        if store.erasure(household)?.is_some() {
            continue;
        }
        match store.erase_document(
            station,
            household,
            reason,
            &entry.erased_by,
            entry.erased_at,
        ) {
            Ok(_) => applied += 1,
            Err(StoreError::NotFound("station")) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if applied > 0 {
        tracing::info!(applied, "erasures re-applied from the ledger");
    }
    Ok(applied)
}

/// A household whose retention ended (closed longer than the retention period).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expired {
    pub station: StationId,
    pub household: HouseholdId,
    /// When it was closed (ms since the Unix epoch, the closing phone's clock).
    pub closed_at: i64,
}

/// Retention (issue 15, ADR 0016): every household of `station` (all stations: `None`)
/// closed for longer than `closed_for_ms` at `now_ms` is erased with the reason
/// `retention-ended` (by `retention`), through the ledger like any erasure; with `dry_run`,
/// only listed. Returns them, oldest closing first. A household reopened since (its shown
/// status is no longer `closed`) is kept; one whose document cannot be read is skipped and
/// logged (by id), never erased on a guess.
pub fn retention<S: ServerStore + ?Sized>(
    store: &S,
    ledger: &Ledger,
    station: Option<StationId>,
    closed_for_ms: i64,
    now_ms: i64,
    dry_run: bool,
) -> Result<Vec<Expired>, ErasureError> {
    let stations: Vec<StationId> = match station {
        Some(s) => vec![s],
        None => store.stations()?.into_iter().map(|(s, _)| s).collect(),
    };
    let cutoff = now_ms.saturating_sub(closed_for_ms);
    let mut expired = Vec::new();
    for station in stations {
        crate::store::for_each_document(store, station, |id| -> Result<(), ErasureError> {
            let Some(stored) = store.load_document(id)? else {
                return Ok(());
            };
            let doc = crate::snapshot::load_stored(&stored).ok();
            // Station work (ADR 0021) is not closed; an admin erases it by id.
            if let Some(Ok((doorstep_core::doc::DocKind::Work(_), _, _))) =
                doc.as_ref().map(doorstep_core::doc::document_header)
            {
                return Ok(());
            }
            match doc.and_then(|doc| doorstep_core::doc::closed_at(&doc).ok()) {
                Some(Some(at)) if at.0 <= cutoff => expired.push(Expired {
                    station,
                    household: id,
                    closed_at: at.0,
                }),
                Some(_) => {}
                None => tracing::warn!(household = %id, "retention: document not readable; kept"),
            }
            Ok(())
        })?;
    }
    expired.sort_by_key(|e| (e.closed_at, e.household));
    if !dry_run {
        for e in &expired {
            erase(
                store,
                ledger,
                e.station,
                e.household,
                ErasureReason::RetentionEnded,
                "retention",
                now_ms,
            )?;
        }
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> LedgerEntry {
        LedgerEntry {
            station: StationId::new().to_string(),
            household: HouseholdId::new().to_string(),
            erased_at: i64::from(n),
            erased_by: "cli".into(),
            reason: "subject-request".into(),
        }
    }

    #[test]
    fn the_ledger_keeps_entries_in_order_privately_and_survives_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::in_dir(dir.path());
        assert!(
            ledger.entries::<LedgerEntry>().unwrap().is_empty(),
            "no file: no entries"
        );
        let (a, b) = (entry(1), entry(2));
        ledger.append(&a).unwrap();
        ledger.append(&b).unwrap();
        assert_eq!(
            ledger.entries::<LedgerEntry>().unwrap(),
            vec![a.clone(), b.clone()]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(ledger.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A crash mid-append leaves half a line: that erasure never started; skipped.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(ledger.path())
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"station\":\"0190").unwrap();
        drop(f);
        assert_eq!(
            ledger.entries::<LedgerEntry>().unwrap(),
            vec![a.clone(), b.clone()]
        );
        // A damaged line before the end is an error, never a ledger half applied.
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        let damaged = text.replacen("\"station\"", "\"stat", 1);
        std::fs::write(ledger.path(), damaged).unwrap();
        let err = ledger.entries::<LedgerEntry>().unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
