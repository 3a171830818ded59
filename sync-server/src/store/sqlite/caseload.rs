//! Roles, teams and caseload assignments on SQLite (`store::scope`, ADR 0019).

use std::collections::HashSet;

use doorstep_core::{HouseholdId, Role, StationId, TeamName, WorkerId};
use rusqlite::{params, Connection, OptionalExtension};

use super::{parse, placeholder_hash_sql};
use crate::store::scope::*;
use crate::store::{StoreError, StoreResult};

/// A worker's station, role and team as stored.
pub(super) fn worker_row(
    conn: &Connection,
    worker: &str,
) -> StoreResult<Option<(String, Role, Option<String>)>> {
    let row: Option<(String, String, Option<String>)> = conn
        .prepare_cached("SELECT station_id, role, team FROM workers WHERE worker_id = ?1")?
        .query_row([worker], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(s, role, team)| Ok((s, stored_role(&role)?, team)))
        .transpose()
}

fn stored_role(s: &str) -> StoreResult<Role> {
    Role::parse(s).ok_or_else(|| StoreError::Database("unknown role in database".into()))
}

/// The households a worker of `role` in `team` sees (stored ids, the station document
/// excluded).
pub(super) fn scope_docs(
    conn: &Connection,
    station: &str,
    worker: &str,
    role: Role,
    team: Option<&str>,
) -> StoreResult<HashSet<String>> {
    let mut out = HashSet::new();
    match role {
        Role::County => {}
        Role::Supervisor => {
            let mut st = conn.prepare_cached(
                "SELECT doc_id FROM documents WHERE station_id = ?1 AND doc_id <> ?1
                 AND doc_id NOT IN (SELECT doc_id FROM phone_retirements
                                    WHERE station_id = ?1 AND reopened_at IS NULL)",
            )?;
            for d in st.query_map([station], |r| r.get::<_, String>(0))? {
                out.insert(d?);
            }
        }
        Role::Worker => {
            // Their caseload (less what is retired from the phones, ADR 0025), and the
            // station's work (ADR 0021). Read once per page of the log: the set removes
            // duplicates, so the query sorts nothing (a `UNION` sorted a team's whole
            // caseload on every sync).
            let mut st = conn.prepare_cached(&format!(
                "SELECT a.doc_id FROM assignments a
                 WHERE (a.worker_id = ?1 OR (?2 IS NOT NULL AND a.station_id = ?3 AND a.team = ?2))
                   AND NOT EXISTS (SELECT 1 FROM phone_retirements r
                                   WHERE r.doc_id = a.doc_id AND r.station_id = ?3
                                     AND r.reopened_at IS NULL)
                 UNION ALL SELECT doc_id FROM documents WHERE station_id = ?3 AND kind IN {STATION_WORK_SQL}"
            ))?;
            for d in st.query_map(params![worker, team, station], |r| r.get::<_, String>(0))? {
                out.insert(d?);
            }
        }
    }
    Ok(out)
}

/// Documents a log page may ask about one at a time before the worker's whole scope is
/// read instead (one read of the caseload costs about this many lookups).
const LOOKUPS_BEFORE_WHOLE: usize = 256;

/// A worker's scope for one log page, looked up per document ([`ScopeLookup`]) with the
/// same rule as [`scope_docs`]: a page of a slow link's few changes costs a few lookups,
/// not the caseload (which it read on every page before).
struct WorkerLookup<'c> {
    conn: &'c Connection,
    worker: String,
    station: String,
    team: Option<String>,
    asked: usize,
    whole: Option<HashSet<String>>,
}

impl ScopeLookup for WorkerLookup<'_> {
    fn sees(&mut self, doc: &str) -> StoreResult<bool> {
        if self.whole.is_none() && self.asked == LOOKUPS_BEFORE_WHOLE {
            self.whole = Some(scope_docs(
                self.conn,
                &self.station,
                &self.worker,
                Role::Worker,
                self.team.as_deref(),
            )?);
        }
        if let Some(whole) = &self.whole {
            return Ok(whole.contains(doc));
        }
        self.asked += 1;
        let sees: bool = self
            .conn
            .prepare_cached(&format!(
                "SELECT EXISTS (SELECT 1 FROM assignments a
                   WHERE a.doc_id = ?1
                     AND (a.worker_id = ?2 OR (?3 IS NOT NULL AND a.station_id = ?4 AND a.team = ?3))
                     AND NOT EXISTS (SELECT 1 FROM phone_retirements r
                                     WHERE r.doc_id = a.doc_id AND r.station_id = ?4
                                       AND r.reopened_at IS NULL))
                 OR EXISTS (SELECT 1 FROM documents
                            WHERE doc_id = ?1 AND station_id = ?4 AND kind IN {STATION_WORK_SQL})"
            ))?
            .query_row(params![doc, self.worker, self.team, self.station], |r| {
                r.get(0)
            })?;
        Ok(sees)
    }
}

/// What filters one log page for this worker: a worker's scope is looked up per document
/// the page meets; a supervisor's (the station less what is retired) is read whole.
pub(super) fn page_scope<'c>(conn: &'c Connection, worker: &str) -> StoreResult<PageScope<'c>> {
    match worker_row(conn, worker)? {
        Some((station, Role::Worker, team)) => Ok(PageScope::lookup(WorkerLookup {
            conn,
            worker: worker.to_owned(),
            station,
            team,
            asked: 0,
            whole: None,
        })),
        _ => reader_scope(conn, worker).map(PageScope::Known),
    }
}

/// What filters a log read or a bootstrap for this worker.
pub(super) fn reader_scope(conn: &Connection, worker: &str) -> StoreResult<ReaderScope> {
    match worker_row(conn, worker)? {
        None => Ok(ReaderScope::Only(HashSet::new())),
        Some((station, role, _)) if role.sees_station() => Ok(ReaderScope::Station {
            retired: retired_docs(conn, &station)?,
        }),
        Some((station, role, team)) => {
            scope_docs(conn, &station, worker, role, team.as_deref()).map(ReaderScope::Only)
        }
    }
}

/// The households of a station retired from the phones (ADR 0025).
fn retired_docs(conn: &Connection, station: &str) -> StoreResult<HashSet<String>> {
    let mut st = conn.prepare_cached(
        "SELECT doc_id FROM phone_retirements WHERE station_id = ?1 AND reopened_at IS NULL",
    )?;
    let out = st
        .query_map([station], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    Ok(out)
}

fn is_retired(conn: &Connection, doc: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM phone_retirements WHERE doc_id = ?1 AND reopened_at IS NULL",
        )?
        .query_row([doc], |r| r.get::<_, i64>(0))
        .optional()?
        .is_some())
}

pub(super) fn retirement(conn: &Connection, doc: HouseholdId) -> StoreResult<Option<Retirement>> {
    Ok(conn
        .prepare_cached("SELECT retired_at, reopened_at FROM phone_retirements WHERE doc_id = ?1")?
        .query_row([doc.to_string()], |r| {
            Ok(Retirement {
                retired_at: r.get(0)?,
                reopened_at: r.get(1)?,
            })
        })
        .optional()?)
}

/// Retire a household from the phones (`retire`) or bring it back (`!retire`), with a scope
/// entry for every worker with a device who sees it (ADR 0025).
pub(super) fn set_retired(
    conn: &Connection,
    station: StationId,
    doc: HouseholdId,
    retire: bool,
    now_ms: i64,
) -> StoreResult<Rescoped> {
    let st = station.to_string();
    let d = doc.to_string();
    let held: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM documents WHERE doc_id = ?1 AND station_id = ?2 AND doc_id <> station_id
             AND kind = 'household'",
            params![d, st],
            |r| r.get(0),
        )
        .optional()?;
    if held.is_none() {
        return Err(StoreError::NotFound("household"));
    }
    if is_retired(conn, &d)? == retire {
        return Ok(Rescoped::default());
    }
    let assigned: Option<(Option<String>, Option<String>)> = conn
        .query_row(
            "SELECT worker_id, team FROM assignments WHERE doc_id = ?1",
            [&d],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (aw, at) = assigned.unwrap_or_default();
    let workers = workers_of(conn, &st)?;
    let entries: Vec<(String, String, bool)> =
        retirement_entries(&workers, (aw.as_deref(), at.as_deref()), !retire)
            .into_iter()
            .map(|(worker, entered)| (d.clone(), worker, entered))
            .collect();
    if retire {
        conn.execute(
            "INSERT INTO phone_retirements (doc_id, station_id, retired_at, reopened_at)
             VALUES (?1, ?2, ?3, NULL)
             ON CONFLICT (doc_id) DO UPDATE SET retired_at = excluded.retired_at, reopened_at = NULL",
            params![d, st, now_ms],
        )?;
    } else {
        conn.execute(
            "UPDATE phone_retirements SET reopened_at = ?2 WHERE doc_id = ?1",
            params![d, now_ms],
        )?;
    }
    append_entries(conn, &st, &entries, now_ms)
}

fn workers_of(conn: &Connection, station: &str) -> StoreResult<Vec<ScopedWorker>> {
    // Only workers with a device that may sync need entries: a device enrolled later
    // starts from a bootstrap of its scope.
    let mut st = conn.prepare_cached(
        "SELECT worker_id, role, team FROM workers w WHERE station_id = ?1 AND EXISTS
           (SELECT 1 FROM devices d WHERE d.worker_id = w.worker_id
             AND d.token_hash IS NOT NULL AND d.revoked_at IS NULL)",
    )?;
    let rows = st
        .query_map([station], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(id, role, team)| {
            Ok(ScopedWorker {
                id,
                role: stored_role(&role)?,
                team,
            })
        })
        .collect()
}

/// Append scope entries (household, worker, entered) to the station's log.
fn append_entries(
    conn: &Connection,
    station: &str,
    entries: &[(String, String, bool)],
    now_ms: i64,
) -> StoreResult<Rescoped> {
    let mut seq: i64 = conn.query_row(
        "SELECT coalesce(max(seq), 0) FROM change_log WHERE station_id = ?1",
        [station],
        |r| r.get(0),
    )?;
    let mut out = Rescoped::default();
    let mut st = conn.prepare_cached(&format!(
        "INSERT INTO change_log (station_id, seq, doc_id, hash, bytes, origin_device, kind)
         VALUES (?1, ?2, ?3, {}, ?4, ?5, ?6)",
        placeholder_hash_sql("?2")
    ))?;
    for (doc, worker, entered) in entries {
        seq += 1;
        st.execute(params![
            station,
            seq,
            doc,
            scope_entry_bytes(*entered, now_ms),
            worker,
            KIND_SCOPE
        ])?;
        if *entered {
            out.entered += 1;
        } else {
            out.left += 1;
        }
    }
    Ok(out)
}

/// Whether a worker has a device that may sync (enrolled, not revoked).
fn has_device(conn: &Connection, worker: &str) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM devices WHERE worker_id = ?1 AND token_hash IS NOT NULL AND revoked_at IS NULL LIMIT 1",
        )?
        .query_row([worker], |r| r.get::<_, i64>(0))
        .optional()?
        .is_some())
}

/// Change one worker's role and/or team, with the scope entries it makes.
pub(super) fn rescope(
    conn: &Connection,
    worker: WorkerId,
    role: Option<Role>,
    team: Option<Option<&TeamName>>,
    now_ms: i64,
) -> StoreResult<Rescoped> {
    let w = worker.to_string();
    let (station, old_role, old_team) =
        worker_row(conn, &w)?.ok_or(StoreError::NotFound("worker"))?;
    let new_role = role.unwrap_or(old_role);
    let new_team = match team {
        Some(t) => t.map(|t| t.as_str().to_owned()),
        None => old_team.clone(),
    };
    let before = scope_docs(conn, &station, &w, old_role, old_team.as_deref())?;
    conn.execute(
        "UPDATE workers SET role = ?2, team = ?3 WHERE worker_id = ?1",
        params![w, new_role.as_str(), new_team],
    )?;
    if !has_device(conn, &w)? {
        // Nothing to tell: a device enrolled later starts from a bootstrap of its scope.
        return Ok(Rescoped::default());
    }
    let after = scope_docs(conn, &station, &w, new_role, new_team.as_deref())?;
    let entries: Vec<(String, String, bool)> = rescope_entries(&before, &after)
        .into_iter()
        .map(|(doc, entered)| (doc, w.clone(), entered))
        .collect();
    append_entries(conn, &station, &entries, now_ms)
}

pub(super) fn assign(
    conn: &Connection,
    station: StationId,
    doc: HouseholdId,
    worker: Option<WorkerId>,
    team: Option<&TeamName>,
    assigned_by: &str,
    now_ms: i64,
) -> StoreResult<Rescoped> {
    let st = station.to_string();
    let d = doc.to_string();
    let held: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM documents WHERE doc_id = ?1 AND station_id = ?2 AND doc_id <> station_id
             AND kind = 'household'",
            params![d, st],
            |r| r.get(0),
        )
        .optional()?;
    if held.is_none() {
        return Err(StoreError::NotFound("household"));
    }
    let w = worker.map(|w| w.to_string());
    if let Some(w) = &w {
        if !matches!(worker_row(conn, w)?, Some((s, _, _)) if s == st) {
            return Err(StoreError::NotFound("worker"));
        }
    }
    let before: Option<(Option<String>, Option<String>)> = conn
        .query_row(
            "SELECT worker_id, team FROM assignments WHERE doc_id = ?1",
            [&d],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let team = team.map(|t| t.as_str().to_owned());
    // A household retired from the phones is in nobody's view: reassigning it tells no one
    // (its reopening tells its new holders).
    let workers = if is_retired(conn, &d)? {
        Vec::new()
    } else {
        workers_of(conn, &st)?
    };
    let entries: Vec<(String, String, bool)> = assignment_entries(
        &workers,
        before.as_ref().map(|(w, t)| (w.as_deref(), t.as_deref())),
        (w.as_deref(), team.as_deref()),
    )
    .into_iter()
    .map(|(worker, entered)| (d.clone(), worker, entered))
    .collect();
    conn.execute(
        "INSERT OR REPLACE INTO assignments (doc_id, station_id, worker_id, team, assigned_at, assigned_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![d, st, w, team, now_ms, assigned_by],
    )?;
    append_entries(conn, &st, &entries, now_ms)
}

/// A new household is assigned to the worker (and team) of the device that created it.
pub(super) fn assign_to_creator(
    conn: &Connection,
    station: &str,
    doc: &str,
    origin: &str,
    now_ms: i64,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO assignments (doc_id, station_id, worker_id, team, assigned_at, assigned_by)
         SELECT ?1, ?2, w.worker_id, w.team, ?4, 'creation'
         FROM devices dv JOIN workers w ON w.worker_id = dv.worker_id
         WHERE dv.device_id = ?3 AND w.station_id = ?2",
    )?
    .execute(params![doc, station, origin, now_ms])?;
    Ok(())
}

pub(super) fn assignment(conn: &Connection, doc: HouseholdId) -> StoreResult<Option<Assignment>> {
    type Raw = (String, Option<String>, Option<String>, i64, String);
    let row: Option<Raw> = conn
        .prepare_cached(
            "SELECT station_id, worker_id, team, assigned_at, assigned_by FROM assignments WHERE doc_id = ?1",
        )?
        .query_row([doc.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    row.map(|(station, worker, team, at, by)| {
        Ok(Assignment {
            doc,
            station: parse(&station, StationId::parse)?,
            worker: worker.map(|w| parse(&w, WorkerId::parse)).transpose()?,
            team: stored_team(team.as_deref())?,
            assigned_at: at,
            assigned_by: by,
        })
    })
    .transpose()
}

pub(super) fn in_scope(conn: &Connection, worker: WorkerId, doc: HouseholdId) -> StoreResult<bool> {
    let w = worker.to_string();
    let Some((station, role, team)) = worker_row(conn, &w)? else {
        return Ok(false);
    };
    let d = doc.to_string();
    if d == station {
        return Ok(false);
    }
    type Row = (String, String, Option<String>, Option<String>, Option<i64>);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT d.station_id, d.kind, a.worker_id, a.team, r.retired_at FROM documents d
             LEFT JOIN assignments a ON a.doc_id = d.doc_id
             LEFT JOIN phone_retirements r ON r.doc_id = d.doc_id AND r.reopened_at IS NULL
             WHERE d.doc_id = ?1",
        )?
        .query_row([&d], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    Ok(match row {
        // Retired from the phones (ADR 0025): in nobody's scope.
        Some((_, _, _, _, Some(_))) => false,
        Some((s, kind, aw, at, None)) if s == station => covers_document(
            &w,
            role,
            team.as_deref(),
            &kind,
            aw.as_deref(),
            at.as_deref(),
        ),
        _ => false,
    })
}

pub(super) fn scope_exit(
    conn: &Connection,
    worker: WorkerId,
    doc: HouseholdId,
) -> StoreResult<Option<ScopeExit>> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT seq, bytes FROM change_log WHERE doc_id = ?1 AND origin_device = ?2 AND kind = 3
             ORDER BY seq DESC LIMIT 1",
        )?
        .query_row(params![doc.to_string(), worker.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    match row {
        Some((seq, bytes)) => {
            let (entered, at) = scope_from_entry(&bytes)?;
            Ok((!entered).then_some(ScopeExit {
                seq: seq as u64,
                at,
            }))
        }
        None => Ok(None),
    }
}

pub(super) fn scope_documents(
    conn: &Connection,
    worker: WorkerId,
) -> StoreResult<Vec<HouseholdId>> {
    let w = worker.to_string();
    let Some((station, role, team)) = worker_row(conn, &w)? else {
        return Err(StoreError::NotFound("worker"));
    };
    let mut ids = scope_docs(conn, &station, &w, role, team.as_deref())?
        .into_iter()
        .map(|d| parse(&d, HouseholdId::parse))
        .collect::<StoreResult<Vec<_>>>()?;
    ids.sort();
    Ok(ids)
}

pub(super) fn scope_exits(conn: &Connection, worker: WorkerId) -> StoreResult<Vec<HouseholdId>> {
    let rows = conn
        .prepare_cached(
            "SELECT doc_id, bytes FROM change_log INDEXED BY change_log_scope
             WHERE kind = 3 AND origin_device = ?1 ORDER BY seq",
        )?
        .query_map([worker.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    last_exits(rows)
}
