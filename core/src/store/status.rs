//! What the app shows about uploads: per household and per visit, pending, uploaded (when)
//! or refused / quarantined (a code and a reason that name a rule, never content).
//!
//! Built on what sync already keeps: `documents.unsynced` and `push_error`, the
//! `quarantine` table, and the acknowledged heads; schema 5 adds when an acknowledgement
//! covered a document's and a visit's local changes.

use std::collections::BTreeSet;

use automerge::{Automerge, ChangeHash};
use rusqlite::{params, OptionalExtension};

use super::*;
use crate::protocol::DocErrorCode;

/// Where this device's work on a household or a visit stands with the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadStatus {
    /// Changes made here that the server has not acknowledged yet.
    Pending,
    /// The server acknowledged heads covering every change made here. `at` is when (this
    /// device's clock); `None` when nothing made here needed uploading (received from the
    /// server) or it was uploaded before this version recorded times.
    Uploaded { at: Option<Timestamp> },
    /// The server refused this household's changes; they are not pushed again until the
    /// household is changed here. `reason` is for the app's screen.
    Refused { code: DocErrorCode, reason: String },
    /// What the server sent for this household could not be applied or read here (see
    /// [`Store::quarantined`]).
    Quarantined { reason: String, since: Timestamp },
    /// The server erased the household and this device deleted it; `discarded_changes`
    /// of this device's changes to it had not reached the server and went with it.
    Erased {
        reason: crate::protocol::ErasureReason,
        erased_at: Timestamp,
        discarded_changes: u32,
    },
}

/// A household whose work is stuck: refused by the server or quarantined here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedHousehold {
    pub household: HouseholdId,
    /// `Refused` or `Quarantined`.
    pub status: UploadStatus,
}

/// What the app can tell the worker about a refusal (a rule, no content).
pub fn refusal_reason(code: DocErrorCode) -> &'static str {
    match code {
        DocErrorCode::NotFoundOrForbidden => {
            "the server does not know this household or this device may not write it"
        }
        DocErrorCode::Malformed => "the server could not read these changes (report it)",
        DocErrorCode::Invalid => "the server found a value these changes write invalid",
        DocErrorCode::MissingDependencies => {
            "the server lacks earlier changes these build on (report it)"
        }
        DocErrorCode::Unattributed => {
            "the changes are not vouched for by this device (a store restored from a backup?)"
        }
        DocErrorCode::Finalised => "the changes touch a visit that was already finalised",
    }
}

fn parse_code(stored: &str) -> Result<DocErrorCode> {
    [
        DocErrorCode::NotFoundOrForbidden,
        DocErrorCode::Malformed,
        DocErrorCode::Invalid,
        DocErrorCode::MissingDependencies,
        DocErrorCode::Unattributed,
        DocErrorCode::Finalised,
    ]
    .into_iter()
    .find(|c| c.as_str() == stored)
    .ok_or(Error::Damaged)
}

/// The visit a local action wrote to, if any (an amendment counts for its visit).
fn visit_of(scope: Scope) -> Option<VisitId> {
    match scope {
        Scope::Section(visit, _) | Scope::OpenedVisit(visit) => Some(visit),
        Scope::Record(EntityKind::Visit, key) => Some(VisitId::from_uuid(key)),
        Scope::Records(records) => records
            .iter()
            .find(|(kind, _)| *kind == EntityKind::Visit)
            .map(|(_, key)| VisitId::from_uuid(*key)),
        _ => None,
    }
}

/// Remember the newest local change that wrote to a visit: it is pending until an
/// acknowledgement covers it.
pub(super) fn record_local_write(
    tx: &Connection,
    household: HouseholdId,
    scope: Scope,
    hash: ChangeHash,
) -> Result<()> {
    let Some(visit) = visit_of(scope) else {
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO visit_uploads (visit_id, doc_id, hash, uploaded_at)
         VALUES (?1, ?2, ?3, NULL)",
    )?
    .execute(params![
        visit.to_string(),
        household.to_string(),
        &hash.0[..]
    ])?;
    Ok(())
}

/// The server's heads for `household` are now `server_heads` (`missing`: the changes of
/// `doc` they do not cover): stamp the visits whose newest local change is covered.
pub(super) fn record_covered(
    tx: &Connection,
    doc: &Automerge,
    household: HouseholdId,
    missing: &[automerge::Change],
) -> Result<()> {
    let pending: Vec<(String, Vec<u8>)> = tx
        .prepare_cached(
            "SELECT visit_id, hash FROM visit_uploads WHERE doc_id = ?1 AND uploaded_at IS NULL",
        )?
        .query_map([household.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    if pending.is_empty() {
        return Ok(());
    }
    let missing: BTreeSet<ChangeHash> = missing.iter().map(|c| c.hash()).collect();
    let now = Timestamp::now().0;
    for (visit, hash) in pending {
        let hash = ChangeHash::try_from(hash.as_slice()).map_err(|_| Error::Damaged)?;
        // A change the document no longer has cannot be checked: leave it pending.
        if doc.get_change_by_hash(&hash).is_some() && !missing.contains(&hash) {
            tx.prepare_cached("UPDATE visit_uploads SET uploaded_at = ?2 WHERE visit_id = ?1")?
                .execute(params![visit, now])?;
        }
    }
    Ok(())
}

/// The visits the changes of `doc` beyond `from` wrote to (their sections, fields,
/// finalisation, or an amendment of them).
fn visits_written(doc: &Automerge, from: &[ChangeHash]) -> Result<BTreeSet<String>> {
    use automerge::{PatchAction, Prop};
    let mut visits = BTreeSet::new();
    let mut amendments = BTreeSet::new();
    for patch in doc.diff(from, &doc.get_heads()) {
        let path: Vec<&Prop> = patch.path.iter().map(|(_, p)| p).collect();
        // The record's key: below its collection, or the key a new record was put at.
        let record = match (path.first(), path.get(1), &patch.action) {
            (Some(Prop::Map(c)), Some(Prop::Map(k)), _) => Some((c.clone(), k.clone())),
            (Some(Prop::Map(c)), None, PatchAction::PutMap { key, .. }) => {
                Some((c.clone(), key.clone()))
            }
            _ => None,
        };
        match record {
            Some((c, k)) if c == EntityKind::Visit.collection() => {
                visits.insert(k);
            }
            Some((c, k)) if c == EntityKind::Amendment.collection() => {
                amendments.insert(k);
            }
            _ => {}
        }
    }
    for a in amendments {
        if let Some(obj) = crate::doc::cells::entity_obj(doc, EntityKind::Amendment, Some(&a))? {
            if let Some(v) = crate::doc::cells::read_cell(doc, &obj, "visit")? {
                visits.insert(v);
            }
        }
    }
    Ok(visits)
}

/// After this device took a redacted generation (ADR 0026) and rebased its unsynced edits
/// onto it (`doc`; `generation`: the generation's heads): the visits' rows named changes of
/// the old history, which `record_covered` can no longer find, so a pending visit would
/// stay pending for good. A visit the generation removed loses its row; a pending visit
/// the rebased edits wrote to waits for the newest of them; any other pending visit has
/// nothing left to upload (the server held its edits, or they fell on what was redacted
/// and were discarded, which the sync report counts) and is covered by the generation.
pub(super) fn rebased(
    tx: &Connection,
    doc: &Automerge,
    household: HouseholdId,
    generation: &[ChangeHash],
    actor: &ActorId,
) -> Result<()> {
    let rows: Vec<(String, bool)> = tx
        .prepare_cached(
            "SELECT visit_id, uploaded_at IS NULL FROM visit_uploads WHERE doc_id = ?1",
        )?
        .query_map([household.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    let Some(covered) = generation.iter().min().copied() else {
        return Ok(());
    };
    if rows.is_empty() {
        return Ok(());
    }
    let newest = doc
        .get_changes_meta(&[])
        .into_iter()
        .filter(|m| *m.actor == *actor)
        .max_by_key(|m| m.seq)
        .map(|m| m.hash);
    let written = match newest {
        Some(_) => visits_written(doc, generation)?,
        None => BTreeSet::new(),
    };
    for (visit, pending) in rows {
        if crate::doc::cells::entity_obj(doc, EntityKind::Visit, Some(&visit))?.is_none() {
            tx.prepare_cached("DELETE FROM visit_uploads WHERE visit_id = ?1")?
                .execute([&visit])?;
            continue;
        }
        if !pending {
            continue;
        }
        let hash = match newest {
            Some(h) if written.contains(&visit) => h,
            _ => covered,
        };
        tx.prepare_cached("UPDATE visit_uploads SET hash = ?2 WHERE visit_id = ?1")?
            .execute(params![visit, &hash.0[..]])?;
    }
    Ok(())
}

/// A household's state as stored: `(unsynced, push_error, uploaded_at)`, `None` when it is
/// not held here.
type DocState = (bool, Option<String>, Option<i64>);

fn doc_state(conn: &Connection, household: HouseholdId) -> Result<Option<DocState>> {
    Ok(conn
        .prepare_cached(
            "SELECT unsynced, push_error, uploaded_at FROM documents
             WHERE doc_id = ?1 AND kind = 'household'",
        )?
        .query_row([household.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?)
}

/// A refusal or a quarantine of the household, which outranks what its own state says.
fn stuck(
    conn: &Connection,
    household: HouseholdId,
    push_error: Option<&str>,
) -> Result<Option<UploadStatus>> {
    let quarantined: Option<(String, i64)> = conn
        .prepare_cached("SELECT reason, since FROM quarantine WHERE doc_id = ?1")?
        .query_row([household.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((reason, since)) = quarantined {
        return Ok(Some(UploadStatus::Quarantined {
            reason,
            since: Timestamp(since),
        }));
    }
    match push_error {
        Some(code) => {
            let code = parse_code(code)?;
            Ok(Some(UploadStatus::Refused {
                code,
                reason: refusal_reason(code).to_owned(),
            }))
        }
        None => Ok(None),
    }
}

impl Store {
    /// Where this device's work on a household stands with the server.
    pub fn household_upload_status(&self, household: HouseholdId) -> Result<UploadStatus> {
        let w = self.writer();
        let state = doc_state(&w.conn, household)?;
        if state.is_none() {
            if let Some(e) = super::erasure::erased(&w.conn, household)? {
                return Ok(UploadStatus::Erased {
                    reason: e.reason,
                    erased_at: e.erased_at,
                    discarded_changes: e.discarded_changes,
                });
            }
        }
        let push_error = state.as_ref().and_then(|(_, e, _)| e.as_deref());
        // Quarantined before it was ever stored here: listed, so it has a status.
        if let Some(s) = stuck(&w.conn, household, push_error)? {
            return Ok(s);
        }
        let (unsynced, _, uploaded_at) = state.ok_or(Error::NotFound("household"))?;
        Ok(if unsynced {
            UploadStatus::Pending
        } else {
            UploadStatus::Uploaded {
                at: uploaded_at.map(Timestamp),
            }
        })
    }

    /// Where this device's work on one visit stands: `Uploaded` once the server acknowledged
    /// the newest change made here to the visit (its sections, fields, finalisation or an
    /// amendment of it), even while other records of the household are pending. A refusal
    /// or quarantine of its household is the visit's too while it has work pending.
    pub fn visit_upload_status(
        &self,
        household: HouseholdId,
        visit: VisitId,
    ) -> Result<UploadStatus> {
        let w = self.writer();
        let (_, push_error, _) =
            doc_state(&w.conn, household)?.ok_or(Error::NotFound("household"))?;
        let row: Option<(String, Option<i64>)> = w
            .conn
            .prepare_cached("SELECT doc_id, uploaded_at FROM visit_uploads WHERE visit_id = ?1")?
            .query_row([visit.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match row {
            Some((doc, _)) if doc != household.to_string() => Err(Error::NotFound("visit")),
            Some((_, Some(at))) => Ok(UploadStatus::Uploaded {
                at: Some(Timestamp(at)),
            }),
            Some((_, None)) => {
                Ok(stuck(&w.conn, household, push_error.as_deref())?
                    .unwrap_or(UploadStatus::Pending))
            }
            None => {
                // Not written here (or before this version): uploaded if the household has it.
                drop(w);
                let held = self
                    .household(household)?
                    .visits
                    .iter()
                    .any(|v| v.id == visit);
                if held {
                    Ok(UploadStatus::Uploaded { at: None })
                } else {
                    Err(Error::NotFound("visit"))
                }
            }
        }
    }

    /// Every household the server refused or this device quarantined, with why: the list
    /// a field app shows as "needs attention".
    pub fn refused_households(&self) -> Result<Vec<RefusedHousehold>> {
        let w = self.writer();
        let ids: Vec<String> = w
            .conn
            .prepare(
                "SELECT doc_id FROM documents WHERE push_error IS NOT NULL AND kind = 'household'
                 UNION SELECT doc_id FROM quarantine ORDER BY 1",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let household = HouseholdId::parse(&id).map_err(|_| Error::Damaged)?;
            let push_error = doc_state(&w.conn, household)?.and_then(|(_, e, _)| e);
            if let Some(status) = stuck(&w.conn, household, push_error.as_deref())? {
                out.push(RefusedHousehold { household, status });
            }
        }
        Ok(out)
    }
}
