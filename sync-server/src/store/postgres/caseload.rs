//! Roles, teams and caseload assignments on PostgreSQL (`store::scope`, ADR 0019). Same
//! rules as the SQLite backend; every write that appends scope entries first locks the
//! station's row, as a commit does, so sequence numbers stay gap-free in commit order.

use std::collections::HashSet;

use ::postgres::GenericClient;
use doorstep_core::{HouseholdId, Role, StationId, TeamName, WorkerId};

use super::{parse, Statements};
use crate::store::scope::*;
use crate::store::{StoreError, StoreResult};

pub(super) fn worker_row(
    sx: &Statements,
    c: &mut impl GenericClient,
    worker: &str,
) -> StoreResult<Option<(String, Role, Option<String>)>> {
    let row = sx.query_opt(
        c,
        "SELECT station_id, role, team FROM workers WHERE worker_id = $1",
        &[&worker],
    )?;
    row.map(|r| {
        let role: String = r.get(1);
        Ok((
            r.get(0),
            Role::parse(&role)
                .ok_or_else(|| StoreError::Database("unknown role in database".into()))?,
            r.get(2),
        ))
    })
    .transpose()
}

pub(super) fn scope_docs(
    sx: &Statements,
    c: &mut impl GenericClient,
    station: &str,
    worker: &str,
    role: Role,
    team: Option<&str>,
) -> StoreResult<HashSet<String>> {
    let rows = match role {
        Role::County => return Ok(HashSet::new()),
        Role::Supervisor => sx.query(
            c,
            "SELECT doc_id FROM documents WHERE station_id = $1 AND doc_id <> $1
             AND doc_id NOT IN (SELECT doc_id FROM phone_retirements
                                WHERE station_id = $1 AND reopened_at IS NULL)",
            &[&station],
        )?,
        // Their caseload (less what is retired from the phones, ADR 0025), and the
        // station's work (ADR 0021).
        Role::Worker => sx.query(
            c,
            &format!(
                "SELECT doc_id FROM (
                   SELECT doc_id FROM assignments WHERE worker_id = $1
                   UNION SELECT doc_id FROM assignments WHERE $2::text IS NOT NULL AND station_id = $3 AND team = $2
                 ) AS caseload
                 WHERE doc_id NOT IN (SELECT doc_id FROM phone_retirements
                                      WHERE station_id = $3 AND reopened_at IS NULL)
                 UNION SELECT doc_id FROM documents WHERE station_id = $3 AND kind IN {STATION_WORK_SQL}"
            ),
            &[&worker, &team, &station],
        )?,
    };
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// What filters one log page for this worker, given the documents its rows name: a
/// worker's scope is read for those documents only (the same rule as [`scope_docs`]); a
/// supervisor's (the station less what is retired) whole.
pub(super) fn page_scope(
    sx: &Statements,
    c: &mut impl GenericClient,
    worker: &str,
    docs: Vec<String>,
) -> StoreResult<ReaderScope> {
    let Some((station, Role::Worker, team)) = worker_row(sx, c, worker)? else {
        return reader_scope(sx, c, worker);
    };
    let rows = sx.query(
        c,
        &format!(
            "SELECT doc_id FROM (
               SELECT doc_id FROM assignments WHERE worker_id = $1 AND doc_id = ANY($4)
               UNION SELECT doc_id FROM assignments
                     WHERE $2::text IS NOT NULL AND station_id = $3 AND team = $2 AND doc_id = ANY($4)
             ) AS caseload
             WHERE doc_id NOT IN (SELECT doc_id FROM phone_retirements
                                  WHERE station_id = $3 AND reopened_at IS NULL)
             UNION SELECT doc_id FROM documents
                   WHERE station_id = $3 AND kind IN {STATION_WORK_SQL} AND doc_id = ANY($4)"
        ),
        &[&worker, &team, &station, &docs],
    )?;
    Ok(ReaderScope::Only(
        rows.iter().map(|r| r.get::<_, String>(0)).collect(),
    ))
}

pub(super) fn reader_scope(
    sx: &Statements,
    c: &mut impl GenericClient,
    worker: &str,
) -> StoreResult<ReaderScope> {
    match worker_row(sx, c, worker)? {
        None => Ok(ReaderScope::Only(HashSet::new())),
        Some((station, role, _)) if role.sees_station() => {
            let rows = sx.query(
                c,
                "SELECT doc_id FROM phone_retirements WHERE station_id = $1 AND reopened_at IS NULL",
                &[&station],
            )?;
            Ok(ReaderScope::Station {
                retired: rows.iter().map(|r| r.get::<_, String>(0)).collect(),
            })
        }
        Some((station, role, team)) => {
            scope_docs(sx, c, &station, worker, role, team.as_deref()).map(ReaderScope::Only)
        }
    }
}

fn is_retired(c: &mut impl GenericClient, doc: &str) -> StoreResult<bool> {
    Ok(c.query_opt(
        "SELECT 1 FROM phone_retirements WHERE doc_id = $1 AND reopened_at IS NULL",
        &[&doc],
    )?
    .is_some())
}

pub(super) fn retirement(
    c: &mut impl GenericClient,
    doc: HouseholdId,
) -> StoreResult<Option<Retirement>> {
    Ok(c.query_opt(
        "SELECT retired_at, reopened_at FROM phone_retirements WHERE doc_id = $1",
        &[&doc.to_string()],
    )?
    .map(|r| Retirement {
        retired_at: r.get(0),
        reopened_at: r.get(1),
    }))
}

/// Retire a household from the phones (`retire`) or bring it back (`!retire`), with a scope
/// entry for every worker with a device who sees it (ADR 0025; as on SQLite).
pub(super) fn set_retired(
    c: &mut impl GenericClient,
    station: StationId,
    doc: HouseholdId,
    retire: bool,
    now_ms: i64,
) -> StoreResult<Rescoped> {
    let st = station.to_string();
    let d = doc.to_string();
    lock_station(c, &st)?;
    if c.query_opt(
        "SELECT 1 FROM documents WHERE doc_id = $1 AND station_id = $2 AND doc_id <> station_id
         AND kind = 'household'",
        &[&d, &st],
    )?
    .is_none()
    {
        return Err(StoreError::NotFound("household"));
    }
    if is_retired(c, &d)? == retire {
        return Ok(Rescoped::default());
    }
    let (aw, at): (Option<String>, Option<String>) = c
        .query_opt(
            "SELECT worker_id, team FROM assignments WHERE doc_id = $1",
            &[&d],
        )?
        .map(|r| (r.get(0), r.get(1)))
        .unwrap_or_default();
    let workers = workers_of(c, &st)?;
    let entries: Vec<(String, String, bool)> =
        retirement_entries(&workers, (aw.as_deref(), at.as_deref()), !retire)
            .into_iter()
            .map(|(worker, entered)| (d.clone(), worker, entered))
            .collect();
    if retire {
        c.execute(
            "INSERT INTO phone_retirements (doc_id, station_id, retired_at, reopened_at)
             VALUES ($1, $2, $3, NULL)
             ON CONFLICT (doc_id) DO UPDATE SET retired_at = $3, reopened_at = NULL",
            &[&d, &st, &now_ms],
        )?;
    } else {
        c.execute(
            "UPDATE phone_retirements SET reopened_at = $2 WHERE doc_id = $1",
            &[&d, &now_ms],
        )?;
    }
    append_entries(c, &st, &entries, now_ms)
}

fn lock_station(c: &mut impl GenericClient, station: &str) -> StoreResult<()> {
    if c.query_opt(
        "SELECT 1 FROM stations WHERE station_id = $1 FOR UPDATE",
        &[&station],
    )?
    .is_none()
    {
        return Err(StoreError::NotFound("station"));
    }
    Ok(())
}

fn append_entries(
    c: &mut impl GenericClient,
    station: &str,
    entries: &[(String, String, bool)],
    now_ms: i64,
) -> StoreResult<Rescoped> {
    let mut seq: i64 = c
        .query_one(
            "SELECT coalesce(max(seq), 0) FROM change_log WHERE station_id = $1",
            &[&station],
        )?
        .get(0);
    let mut out = Rescoped::default();
    for (doc, worker, entered) in entries {
        seq += 1;
        c.execute(
            "INSERT INTO change_log (station_id, seq, doc_id, hash, bytes, origin_device, kind)
             VALUES ($1, $2, $3, $4, $5, $6, 3)",
            &[
                &station,
                &seq,
                doc,
                &format!("{seq:032}").into_bytes(),
                &scope_entry_bytes(*entered, now_ms),
                worker,
            ],
        )?;
        if *entered {
            out.entered += 1;
        } else {
            out.left += 1;
        }
    }
    Ok(out)
}

pub(super) fn rescope(
    c: &mut impl GenericClient,
    worker: WorkerId,
    role: Option<Role>,
    team: Option<Option<&TeamName>>,
    now_ms: i64,
) -> StoreResult<Rescoped> {
    let w = worker.to_string();
    let (station, _, _) =
        worker_row(&Statements::default(), c, &w)?.ok_or(StoreError::NotFound("worker"))?;
    lock_station(c, &station)?;
    let (_, old_role, old_team) =
        worker_row(&Statements::default(), c, &w)?.ok_or(StoreError::NotFound("worker"))?;
    let new_role = role.unwrap_or(old_role);
    let new_team = match team {
        Some(t) => t.map(|t| t.as_str().to_owned()),
        None => old_team.clone(),
    };
    let before = scope_docs(
        &Statements::default(),
        c,
        &station,
        &w,
        old_role,
        old_team.as_deref(),
    )?;
    c.execute(
        "UPDATE workers SET role = $2, team = $3 WHERE worker_id = $1",
        &[&w, &new_role.as_str(), &new_team],
    )?;
    if c
        .query_opt(
            "SELECT 1 FROM devices WHERE worker_id = $1 AND token_hash IS NOT NULL AND revoked_at IS NULL LIMIT 1",
            &[&w],
        )?
        .is_none()
    {
        // Nothing to tell: a device enrolled later starts from a bootstrap of its scope.
        return Ok(Rescoped::default());
    }
    let after = scope_docs(
        &Statements::default(),
        c,
        &station,
        &w,
        new_role,
        new_team.as_deref(),
    )?;
    let entries: Vec<(String, String, bool)> = rescope_entries(&before, &after)
        .into_iter()
        .map(|(doc, entered)| (doc, w.clone(), entered))
        .collect();
    append_entries(c, &station, &entries, now_ms)
}

fn workers_of(c: &mut impl GenericClient, station: &str) -> StoreResult<Vec<ScopedWorker>> {
    c.query(
        "SELECT worker_id, role, team FROM workers w WHERE station_id = $1 AND EXISTS
           (SELECT 1 FROM devices d WHERE d.worker_id = w.worker_id
             AND d.token_hash IS NOT NULL AND d.revoked_at IS NULL)",
        &[&station],
    )?
    .iter()
    .map(|r| {
        let role: String = r.get(1);
        Ok(ScopedWorker {
            id: r.get(0),
            role: Role::parse(&role)
                .ok_or_else(|| StoreError::Database("unknown role in database".into()))?,
            team: r.get(2),
        })
    })
    .collect()
}

pub(super) fn assign(
    c: &mut impl GenericClient,
    station: StationId,
    doc: HouseholdId,
    worker: Option<WorkerId>,
    team: Option<&TeamName>,
    assigned_by: &str,
    now_ms: i64,
) -> StoreResult<Rescoped> {
    let st = station.to_string();
    let d = doc.to_string();
    lock_station(c, &st)?;
    if c.query_opt(
        "SELECT 1 FROM documents WHERE doc_id = $1 AND station_id = $2 AND doc_id <> station_id
         AND kind = 'household'",
        &[&d, &st],
    )?
    .is_none()
    {
        return Err(StoreError::NotFound("household"));
    }
    let w = worker.map(|w| w.to_string());
    if let Some(w) = &w {
        if !matches!(worker_row(&Statements::default(), c, w)?, Some((s, _, _)) if s == st) {
            return Err(StoreError::NotFound("worker"));
        }
    }
    let before: Option<(Option<String>, Option<String>)> = c
        .query_opt(
            "SELECT worker_id, team FROM assignments WHERE doc_id = $1",
            &[&d],
        )?
        .map(|r| (r.get(0), r.get(1)));
    let team = team.map(|t| t.as_str().to_owned());
    // A household retired from the phones is in nobody's view (as on SQLite).
    let workers = if is_retired(c, &d)? {
        Vec::new()
    } else {
        workers_of(c, &st)?
    };
    let entries: Vec<(String, String, bool)> = assignment_entries(
        &workers,
        before.as_ref().map(|(w, t)| (w.as_deref(), t.as_deref())),
        (w.as_deref(), team.as_deref()),
    )
    .into_iter()
    .map(|(worker, entered)| (d.clone(), worker, entered))
    .collect();
    c.execute(
        "INSERT INTO assignments (doc_id, station_id, worker_id, team, assigned_at, assigned_by)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (doc_id) DO UPDATE SET worker_id = $3, team = $4, assigned_at = $5, assigned_by = $6",
        &[&d, &st, &w, &team, &now_ms, &assigned_by],
    )?;
    append_entries(c, &st, &entries, now_ms)
}

pub(super) fn assign_to_creator(
    c: &mut impl GenericClient,
    station: &str,
    doc: &str,
    origin: &str,
    now_ms: i64,
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO assignments (doc_id, station_id, worker_id, team, assigned_at, assigned_by)
         SELECT $1, $2, w.worker_id, w.team, $4, 'creation'
         FROM devices dv JOIN workers w ON w.worker_id = dv.worker_id
         WHERE dv.device_id = $3 AND w.station_id = $2
         ON CONFLICT (doc_id) DO NOTHING",
        &[&doc, &station, &origin, &now_ms],
    )?;
    Ok(())
}

pub(super) fn assignment(
    c: &mut impl GenericClient,
    doc: HouseholdId,
) -> StoreResult<Option<Assignment>> {
    let row = c.query_opt(
        "SELECT station_id, worker_id, team, assigned_at, assigned_by FROM assignments WHERE doc_id = $1",
        &[&doc.to_string()],
    )?;
    row.map(|r| {
        Ok(Assignment {
            doc,
            station: parse(r.get(0), StationId::parse)?,
            worker: r
                .get::<_, Option<&str>>(1)
                .map(|w| parse(w, WorkerId::parse))
                .transpose()?,
            team: stored_team(r.get::<_, Option<&str>>(2))?,
            assigned_at: r.get(3),
            assigned_by: r.get(4),
        })
    })
    .transpose()
}

pub(super) fn in_scope(
    sx: &Statements,
    c: &mut impl GenericClient,
    worker: WorkerId,
    doc: HouseholdId,
) -> StoreResult<bool> {
    let w = worker.to_string();
    let Some((station, role, team)) = worker_row(sx, c, &w)? else {
        return Ok(false);
    };
    let d = doc.to_string();
    if d == station {
        return Ok(false);
    }
    let row = sx.query_opt(
        c,
        "SELECT d.station_id, d.kind, a.worker_id, a.team, r.retired_at FROM documents d
         LEFT JOIN assignments a ON a.doc_id = d.doc_id
         LEFT JOIN phone_retirements r ON r.doc_id = d.doc_id AND r.reopened_at IS NULL
         WHERE d.doc_id = $1",
        &[&d],
    )?;
    Ok(match row {
        // Retired from the phones (ADR 0025): in nobody's scope.
        Some(r) if r.get::<_, Option<i64>>(4).is_some() => false,
        Some(r) if r.get::<_, &str>(0) == station => covers_document(
            &w,
            role,
            team.as_deref(),
            r.get::<_, &str>(1),
            r.get::<_, Option<&str>>(2),
            r.get::<_, Option<&str>>(3),
        ),
        _ => false,
    })
}

pub(super) fn scope_exit(
    sx: &Statements,
    c: &mut impl GenericClient,
    worker: WorkerId,
    doc: HouseholdId,
) -> StoreResult<Option<ScopeExit>> {
    let row = sx.query_opt(
        c,
        "SELECT seq, bytes FROM change_log WHERE doc_id = $1 AND origin_device = $2 AND kind = 3
         ORDER BY seq DESC LIMIT 1",
        &[&doc.to_string(), &worker.to_string()],
    )?;
    match row {
        Some(r) => {
            let (entered, at) = scope_from_entry(r.get(1))?;
            Ok((!entered).then_some(ScopeExit {
                seq: r.get::<_, i64>(0) as u64,
                at,
            }))
        }
        None => Ok(None),
    }
}

pub(super) fn scope_documents(
    c: &mut impl GenericClient,
    worker: WorkerId,
) -> StoreResult<Vec<HouseholdId>> {
    let w = worker.to_string();
    let Some((station, role, team)) = worker_row(&Statements::default(), c, &w)? else {
        return Err(StoreError::NotFound("worker"));
    };
    let mut ids = scope_docs(
        &Statements::default(),
        c,
        &station,
        &w,
        role,
        team.as_deref(),
    )?
    .into_iter()
    .map(|d| parse(&d, HouseholdId::parse))
    .collect::<StoreResult<Vec<_>>>()?;
    ids.sort();
    Ok(ids)
}

pub(super) fn scope_exits(
    c: &mut impl GenericClient,
    worker: WorkerId,
) -> StoreResult<Vec<HouseholdId>> {
    let rows = c
        .query(
            "SELECT doc_id, bytes FROM change_log WHERE kind = 3 AND origin_device = $1 ORDER BY seq",
            &[&worker.to_string()],
        )?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, Vec<u8>>(1)))
        .collect();
    last_exits(rows)
}
