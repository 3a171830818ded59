//! The console's storage on SQLite (`store::console`).

use doorstep_core::{HouseholdId, StationId, WorkerId};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::{parse, SqliteStore};
use crate::store::console::*;
use crate::store::{StoreError, StoreResult};

fn household_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HouseholdRowRaw> {
    Ok(HouseholdRowRaw {
        doc: r.get(0)?,
        station: r.get(1)?,
        seq: r.get(2)?,
        code: r.get(3)?,
        village: r.get(4)?,
        status: r.get(5)?,
        categories: r.get(6)?,
        visits: r.get(7)?,
        last_visit: r.get(8)?,
        open_needs: r.get(9)?,
        conflicts: r.get(10)?,
    })
}

/// A household row as read, before its ids are parsed.
struct HouseholdRowRaw {
    doc: String,
    station: String,
    seq: i64,
    code: String,
    village: String,
    status: String,
    categories: String,
    visits: i64,
    last_visit: Option<String>,
    open_needs: i64,
    conflicts: i64,
}

impl HouseholdRowRaw {
    fn parse(self) -> StoreResult<HouseholdRow> {
        Ok(HouseholdRow {
            doc: parse(&self.doc, HouseholdId::parse)?,
            station: parse(&self.station, StationId::parse)?,
            seq: self.seq.max(0) as u64,
            code: self.code,
            village: self.village,
            status: self.status,
            categories: split_words(&self.categories),
            visits: self.visits.max(0) as u64,
            last_visit: self.last_visit,
            open_needs: self.open_needs.max(0) as u64,
            conflicts: self.conflicts.max(0) as u64,
        })
    }
}

const HOUSEHOLD_COLUMNS: &str = "h.doc_id, h.station_id, h.seq, h.code, h.village, h.status, \
     h.categories, h.visits, h.last_visit, h.open_needs, h.conflicts";

fn parse_uuid(s: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| StoreError::Database("malformed id in database".into()))
}

/// An account's columns, in the order of [`ACCOUNT_COLUMNS`].
type AccountRaw = (String, String, Option<String>, String, String, bool);

const ACCOUNT_COLUMNS: &str =
    "a.account_id, a.role, a.station_id, a.login, a.password_hash, a.disabled_at";

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRaw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get::<_, Option<i64>>(5)?.is_some(),
    ))
}

fn account(raw: AccountRaw) -> StoreResult<Account> {
    account_from(&raw.0, &raw.1, raw.2.as_deref(), raw.3, raw.4, raw.5)
}

fn station_exists(conn: &Connection, station: &str) -> StoreResult<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM stations WHERE station_id = ?1",
            [station],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .is_some())
}

/// The role of an account (`NotFound` if there is none); `Conflict` unless it is a county
/// account.
fn county_account(conn: &Connection, account: AccountId) -> StoreResult<()> {
    let role: Option<String> = conn
        .query_row(
            "SELECT role FROM console_accounts WHERE account_id = ?1",
            [account.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    match role.as_deref() {
        None => Err(StoreError::NotFound("account")),
        Some("county") => Ok(()),
        Some(_) => Err(StoreError::Conflict(
            "only a county account is granted stations",
        )),
    }
}

pub(super) fn delete_doc(conn: &Connection, doc: &str) -> StoreResult<()> {
    delete_texts(conn, doc)?;
    delete_rows(conn, doc)
}

/// A document's search entries (server schema 17: one per record, ADR 0041).
fn delete_texts(conn: &Connection, doc: &str) -> StoreResult<()> {
    conn.prepare_cached(
        "DELETE FROM rm_search WHERE rowid IN (SELECT id FROM rm_text WHERE doc_id = ?1)",
    )?
    .execute([doc])?;
    conn.prepare_cached("DELETE FROM rm_text WHERE doc_id = ?1")?
        .execute([doc])?;
    Ok(())
}

/// A document's rows other than its search entries.
fn delete_rows(conn: &Connection, doc: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM rm_households WHERE doc_id = ?1")?
        .execute([doc])?;
    conn.prepare_cached("DELETE FROM rm_visits WHERE doc_id = ?1")?
        .execute([doc])?;
    conn.prepare_cached("DELETE FROM rm_follow_ups WHERE doc_id = ?1")?
        .execute([doc])?;
    conn.prepare_cached("DELETE FROM rm_facts WHERE doc_id = ?1")?
        .execute([doc])?;
    conn.prepare_cached("DELETE FROM rm_work WHERE doc_id = ?1")?
        .execute([doc])?;
    Ok(())
}

/// Whether one document's rows are to be replaced (inside the caller's transaction): not
/// if the read model holds a newer state or the household was erased meanwhile.
fn replaceable(conn: &Connection, m: &ReadModelDoc) -> StoreResult<bool> {
    let h = &m.household;
    let doc = h.doc.to_string();
    let held: Option<i64> = conn
        .prepare_cached("SELECT seq FROM rm_households WHERE doc_id = ?1")?
        .query_row([&doc], |r| r.get(0))
        .optional()?;
    if held.is_some_and(|s| s > h.seq as i64) {
        return Ok(false);
    }
    // An erasure that came between the push and this refresh wins.
    let erased: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM erasures WHERE doc_id = ?1")?
        .query_row([&doc], |r| r.get(0))
        .optional()?;
    Ok(erased.is_none())
}

/// What one document's new search entries change: the rows (`rm_text.id`) whose entry is
/// gone or changed, and the entries to index anew. An entry whose text is unchanged is
/// left as it is.
fn text_changes<'a>(
    conn: &Connection,
    m: &'a ReadModelDoc,
    gone: &mut Vec<i64>,
    new: &mut Vec<(&'a HouseholdRow, &'a SearchText)>,
) -> StoreResult<()> {
    let doc = m.household.doc.to_string();
    let mut held: std::collections::HashMap<String, (i64, String)> = conn
        .prepare_cached("SELECT item, id, body FROM rm_text WHERE doc_id = ?1")?
        .query_map([&doc], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
        .collect::<Result<_, _>>()?;
    for t in &m.texts {
        match held.remove(&t.item) {
            Some((_, body)) if body == t.body => {}
            Some((id, _)) => {
                gone.push(id);
                new.push((&m.household, t));
            }
            None => new.push((&m.household, t)),
        }
    }
    gone.extend(held.into_values().map(|(id, _)| id));
    Ok(())
}

/// Replace one document's rows but its search entries.
fn put_one(conn: &Connection, m: &ReadModelDoc) -> StoreResult<()> {
    let h = &m.household;
    let doc = h.doc.to_string();
    let station = h.station.to_string();
    delete_rows(conn, &doc)?;
    conn.prepare_cached(
        "INSERT INTO rm_households (doc_id, station_id, seq, code, village, status,
           categories, visits, last_visit, open_needs, conflicts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        doc,
        station,
        h.seq as i64,
        h.code,
        h.village,
        h.status,
        join_words(&h.categories),
        h.visits as i64,
        h.last_visit,
        h.open_needs as i64,
        h.conflicts as i64,
    ])?;
    let mut visit = conn.prepare_cached(
        "INSERT OR REPLACE INTO rm_visits
           (doc_id, visit_id, station_id, date, kind, status, workers)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for v in &m.visits {
        let workers: Vec<String> = v.workers.iter().map(|w| w.to_string()).collect();
        let id = v.visit.to_string();
        let workers = workers.join(" ");
        visit.execute(params![doc, id, station, v.date, v.kind, v.status, workers])?;
    }
    let mut follow_up = conn.prepare_cached(
        "INSERT OR REPLACE INTO rm_follow_ups
           (doc_id, follow_up_id, station_id, what, due, assignee, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for f in &m.follow_ups {
        let (id, assignee) = (f.follow_up.to_string(), f.assignee.to_string());
        follow_up.execute(params![doc, id, station, f.what, f.due, assignee, f.status])?;
    }
    put_facts(conn, &doc, &station, &m.facts)
}

fn put_facts(conn: &Connection, doc: &str, station: &str, facts: &[FactRow]) -> StoreResult<()> {
    let mut fact = conn.prepare_cached(
        "INSERT OR REPLACE INTO rm_facts (doc_id, fact, item_id, station_id, day, dim1, dim2)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for f in facts {
        let item = f.item.to_string();
        fact.execute(params![doc, f.fact, item, station, f.day, f.dim1, f.dim2])?;
    }
    Ok(())
}

/// The read-model rows of a station-work document, replaced unless newer ones are held.
fn put_work_row(conn: &Connection, w: &WorkRow) -> StoreResult<bool> {
    let (doc, station) = (w.doc.to_string(), w.station.to_string());
    let held: Option<i64> = conn
        .prepare_cached("SELECT seq FROM rm_work WHERE doc_id = ?1")?
        .query_row([&doc], |r| r.get(0))
        .optional()?;
    if held.is_some_and(|s| s > w.seq as i64) {
        return Ok(false);
    }
    let erased: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM erasures WHERE doc_id = ?1")?
        .query_row([&doc], |r| r.get(0))
        .optional()?;
    if erased.is_some() {
        return Ok(false);
    }
    delete_doc(conn, &doc)?;
    conn.prepare_cached(
        "INSERT INTO rm_work (doc_id, station_id, seq, kind) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![doc, station, w.seq as i64, w.kind])?;
    put_facts(conn, &doc, &station, &w.facts)?;
    Ok(true)
}

impl ConsoleStore for SqliteStore {
    fn put_work(&self, row: &WorkRow) -> StoreResult<bool> {
        self.write(|conn| put_work_row(conn, row))
    }

    fn put_read_models(&self, docs: &[ReadModelDoc]) -> StoreResult<Vec<bool>> {
        let mut order: Vec<usize> = (0..docs.len()).collect();
        order.sort_by_key(|&i| (docs[i].household.doc, docs[i].household.seq));
        // A household given twice: its newest state only.
        let order: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(k, &i)| {
                order
                    .get(k + 1)
                    .is_none_or(|&j| docs[j].household.doc != docs[i].household.doc)
            })
            .map(|(_, &i)| i)
            .collect();
        self.write(|conn| {
            let mut written = vec![false; docs.len()];
            let (mut gone, mut new) = (Vec::new(), Vec::new());
            for i in order.iter().copied() {
                if replaceable(conn, &docs[i])? {
                    written[i] = true;
                    text_changes(conn, &docs[i], &mut gone, &mut new)?;
                }
            }
            // The old entries first, in rowid order, then the new ones, each a higher rowid
            // than any before (`rm_text.id` is AUTOINCREMENT): FTS5 writes its pending
            // terms out as a new segment whenever a row comes below the last one it took,
            // so deleting and inserting household by household wrote (and later merged)
            // one segment per household.
            gone.sort_unstable();
            let mut unindex = conn.prepare_cached("DELETE FROM rm_search WHERE rowid = ?1")?;
            let mut drop_text = conn.prepare_cached("DELETE FROM rm_text WHERE id = ?1")?;
            for id in gone {
                unindex.execute([id])?;
                drop_text.execute([id])?;
            }
            let mut keep_text = conn.prepare_cached(
                "INSERT INTO rm_text (doc_id, station_id, item, body) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut index =
                conn.prepare_cached("INSERT INTO rm_search (rowid, body) VALUES (?1, ?2)")?;
            for (h, t) in new {
                let (doc, station) = (h.doc.to_string(), h.station.to_string());
                keep_text.execute(params![doc, station, t.item, t.body])?;
                index.execute(params![conn.last_insert_rowid(), t.body])?;
            }
            for i in order.iter().copied().filter(|&i| written[i]) {
                put_one(conn, &docs[i])?;
            }
            Ok(written)
        })
    }

    fn clear_read_model(&self, station: StationId) -> StoreResult<()> {
        let s = station.to_string();
        self.write(|conn| {
            conn.execute(
                "DELETE FROM rm_search WHERE rowid IN (SELECT id FROM rm_text WHERE station_id = ?1)",
                [&s],
            )?;
            for table in [
                "rm_households",
                "rm_text",
                "rm_visits",
                "rm_follow_ups",
                "rm_facts",
                "rm_work",
            ] {
                conn.execute(&format!("DELETE FROM {table} WHERE station_id = ?1"), [&s])?;
            }
            Ok(())
        })
    }

    fn read_model_seqs(&self, station: StationId) -> StoreResult<Vec<(HouseholdId, u64)>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT doc_id, seq FROM rm_households WHERE station_id = ?1
                          UNION ALL SELECT doc_id, seq FROM rm_work WHERE station_id = ?1",
        )?;
        let rows = stmt
            .query_map([station.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(d, s)| Ok((parse(&d, HouseholdId::parse)?, s.max(0) as u64)))
            .collect()
    }

    fn work_documents(&self, station: StationId, kind: &str) -> StoreResult<Vec<HouseholdId>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT doc_id FROM rm_work WHERE station_id = ?1 AND kind = ?2 ORDER BY doc_id",
        )?;
        let rows = stmt
            .query_map(params![station.to_string(), kind], |r| {
                r.get::<_, String>(0)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter().map(|d| parse(d, HouseholdId::parse)).collect()
    }

    fn households(
        &self,
        station: StationId,
        filter: &HouseholdFilter,
    ) -> StoreResult<Vec<HouseholdRow>> {
        let mut sql =
            format!("SELECT {HOUSEHOLD_COLUMNS} FROM rm_households h WHERE h.station_id = ?1");
        let mut args: Vec<String> = vec![station.to_string()];
        if let Some(v) = &filter.village {
            args.push(v.clone());
            sql.push_str(&format!(" AND h.village = ?{}", args.len()));
        }
        if let Some(c) = &filter.category {
            args.push(format!(" {c} "));
            sql.push_str(&format!(
                " AND instr(' ' || h.categories || ' ', ?{}) > 0",
                args.len()
            ));
        }
        if let Some(s) = &filter.status {
            args.push(s.clone());
            sql.push_str(&format!(" AND h.status = ?{}", args.len()));
        }
        if let Some(t) = &filter.text {
            let t = t.to_lowercase();
            let chars: Vec<char> = t.chars().collect();
            args.push(t.clone());
            let needle = args.len();
            if chars.len() >= 3 {
                // The entries holding every trigram of the text (the index keeps no
                // positions), then each checked for the text itself.
                args.push(doorstep_core::store::trigram_query(&chars));
                sql.push_str(&format!(
                    " AND h.doc_id IN (SELECT t.doc_id FROM rm_text t
                       WHERE t.id IN (SELECT rowid FROM rm_search WHERE rm_search MATCH ?{})
                         AND instr(t.body, ?{needle}) > 0)",
                    args.len()
                ));
            } else {
                sql.push_str(&format!(
                    " AND h.doc_id IN (SELECT doc_id FROM rm_text WHERE station_id = ?1 AND instr(body, ?{needle}) > 0)"
                ));
            }
        }
        sql.push_str(&format!(
            " ORDER BY h.code, h.doc_id LIMIT {}",
            filter.limit.max(1)
        ));
        let conn = self.reader();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(&args), household_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(HouseholdRowRaw::parse).collect()
    }

    fn visits_between(
        &self,
        station: StationId,
        from: &str,
        to: &str,
    ) -> StoreResult<Vec<VisitRow>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT doc_id, visit_id, date, kind, status, workers FROM rm_visits
             WHERE station_id = ?1 AND date >= ?2 AND date <= ?3 ORDER BY date, doc_id, visit_id",
        )?;
        let rows = stmt
            .query_map(params![station.to_string(), from, to], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(d, v, date, kind, status, workers)| {
                Ok(VisitRow {
                    doc: parse(&d, HouseholdId::parse)?,
                    visit: parse_uuid(&v)?,
                    date,
                    kind,
                    status,
                    workers: split_words(&workers)
                        .iter()
                        .map(|w| parse(w, WorkerId::parse))
                        .collect::<StoreResult<_>>()?,
                })
            })
            .collect()
    }

    fn facts_between(&self, station: StationId, from: &str, to: &str) -> StoreResult<Vec<FactRow>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT doc_id, fact, item_id, day, dim1, dim2 FROM rm_facts
             WHERE station_id = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day, doc_id, fact, item_id",
        )?;
        let rows = stmt
            .query_map(params![station.to_string(), from, to], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(d, fact, item, day, dim1, dim2)| {
                Ok(FactRow {
                    doc: parse(&d, HouseholdId::parse)?,
                    fact,
                    item: parse_uuid(&item)?,
                    day,
                    dim1,
                    dim2,
                })
            })
            .collect()
    }

    fn follow_ups_due_between(
        &self,
        station: StationId,
        from: &str,
        to: &str,
    ) -> StoreResult<Vec<FollowUpRow>> {
        self.follow_up_rows(
            "station_id = ?1 AND due >= ?2 AND due <= ?3",
            params![station.to_string(), from, to],
        )
    }

    fn open_follow_ups(&self, station: StationId, until: &str) -> StoreResult<Vec<FollowUpRow>> {
        self.follow_up_rows(
            "station_id = ?1 AND status = 'open' AND due <= ?2",
            params![station.to_string(), until],
        )
    }
    fn worker_labels(&self, station: StationId) -> StoreResult<Vec<(WorkerId, String)>> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare("SELECT worker_id, label FROM workers WHERE station_id = ?1 ORDER BY label")?;
        let rows = stmt
            .query_map([station.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(w, l)| Ok((parse(&w, WorkerId::parse)?, l)))
            .collect()
    }

    fn stations(&self) -> StoreResult<Vec<(StationId, String)>> {
        let conn = self.reader();
        let mut stmt = conn.prepare("SELECT station_id, name FROM stations ORDER BY created_at")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(s, n)| Ok((parse(&s, StationId::parse)?, n)))
            .collect()
    }

    fn station_devices(&self, station: StationId, now_ms: i64) -> StoreResult<Vec<DeviceRow>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT d.device_id, d.worker_id, d.enrolled_at,
                    d.code_hash IS NOT NULL AND coalesce(d.code_expires, 0) >= ?2,
                    d.revoked_at, EXISTS (SELECT 1 FROM console_signers c WHERE c.device_id = d.device_id),
                    d.last_sync_at
             FROM devices d JOIN workers w ON w.worker_id = d.worker_id
             WHERE d.station_id = ?1 ORDER BY w.label, d.device_id",
        )?;
        let rows = stmt
            .query_map(params![station.to_string(), now_ms], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, bool>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(d, w, e, c, r, k, l)| device_row(&d, &w, e, c, r, k, l))
            .collect()
    }

    fn add_account(
        &self,
        station: StationId,
        login: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        let id = AccountId(Uuid::now_v7());
        self.write(|conn| {
            let exists: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM stations WHERE station_id = ?1",
                    [station.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound("station"));
            }
            let taken: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM console_accounts WHERE login = ?1",
                    [login],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::Conflict("login taken"));
            }
            conn.execute(
                "INSERT INTO console_accounts (account_id, station_id, login, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id.to_string(), station.to_string(), login, password_hash, now_ms],
            )?;
            Ok(id)
        })
    }

    fn account_by_login(&self, login: &str) -> StoreResult<Option<Account>> {
        let raw = self
            .reader()
            .query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM console_accounts a WHERE a.login = ?1"),
                [login],
                account_row,
            )
            .optional()?;
        raw.map(account).transpose()
    }

    fn add_county_account(
        &self,
        login: &str,
        password_hash: &str,
        stations: &[StationId],
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        let id = AccountId(Uuid::now_v7());
        self.write(|conn| {
            for s in stations {
                if !station_exists(conn, &s.to_string())? {
                    return Err(StoreError::NotFound("station"));
                }
            }
            let taken: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM console_accounts WHERE login = ?1",
                    [login],
                    |r| r.get(0),
                )
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::Conflict("login taken"));
            }
            conn.execute(
                "INSERT INTO console_accounts
                   (account_id, role, station_id, login, password_hash, created_at)
                 VALUES (?1, 'county', NULL, ?2, ?3, ?4)",
                params![id.to_string(), login, password_hash, now_ms],
            )?;
            for s in stations {
                conn.execute(
                    "INSERT OR IGNORE INTO console_account_stations (account_id, station_id, granted_at)
                     VALUES (?1, ?2, ?3)",
                    params![id.to_string(), s.to_string(), now_ms],
                )?;
            }
            Ok(id)
        })
    }

    fn grant_station(
        &self,
        account: AccountId,
        station: StationId,
        now_ms: i64,
    ) -> StoreResult<bool> {
        self.write(|conn| {
            county_account(conn, account)?;
            if !station_exists(conn, &station.to_string())? {
                return Err(StoreError::NotFound("station"));
            }
            let n = conn.execute(
                "INSERT OR IGNORE INTO console_account_stations (account_id, station_id, granted_at)
                 VALUES (?1, ?2, ?3)",
                params![account.to_string(), station.to_string(), now_ms],
            )?;
            Ok(n == 1)
        })
    }

    fn revoke_station(&self, account: AccountId, station: StationId) -> StoreResult<bool> {
        self.write(|conn| {
            county_account(conn, account)?;
            let n = conn.execute(
                "DELETE FROM console_account_stations WHERE account_id = ?1 AND station_id = ?2",
                params![account.to_string(), station.to_string()],
            )?;
            Ok(n == 1)
        })
    }

    fn account_stations(&self, account: AccountId) -> StoreResult<Vec<(StationId, String)>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT s.station_id, s.name FROM console_accounts a
             JOIN stations s ON s.station_id = a.station_id
             WHERE a.account_id = ?1 AND a.role = 'supervisor'
             UNION
             SELECT s.station_id, s.name FROM console_account_stations g
             JOIN console_accounts a ON a.account_id = g.account_id AND a.role = 'county'
             JOIN stations s ON s.station_id = g.station_id
             WHERE g.account_id = ?1",
        )?;
        let rows = stmt
            .query_map([account.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let stations = rows
            .into_iter()
            .map(|(s, n)| Ok((parse(&s, StationId::parse)?, n)))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(by_name(stations))
    }

    fn accounts(&self) -> StoreResult<Vec<AccountListing>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM console_accounts a ORDER BY a.login"
        ))?;
        let raws = stmt
            .query_map([], account_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let mut grants = conn.prepare(
            "SELECT station_id FROM console_account_stations WHERE account_id = ?1
             ORDER BY station_id",
        )?;
        let mut out = Vec::with_capacity(raws.len());
        for raw in raws {
            let account = account(raw)?;
            let stations = match account.role {
                AccountRole::Supervisor(s) => vec![s],
                AccountRole::County => grants
                    .query_map([account.id.to_string()], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?
                    .iter()
                    .map(|s| parse(s, StationId::parse))
                    .collect::<StoreResult<Vec<_>>>()?,
            };
            out.push(AccountListing { account, stations });
        }
        Ok(out)
    }

    fn set_account_signer(
        &self,
        account: AccountId,
        signer: &AccountSigner,
    ) -> StoreResult<AccountSigner> {
        self.write(|conn| {
            conn.execute(
                "INSERT OR IGNORE INTO console_signers (account_id, worker_id, device_id, actor, seed)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    account.to_string(),
                    signer.worker.to_string(),
                    signer.device.to_string(),
                    signer.actor,
                    signer.seed.to_vec()
                ],
            )?;
            let (w, d, a, s): (String, String, Vec<u8>, Vec<u8>) = conn.query_row(
                "SELECT worker_id, device_id, actor, seed FROM console_signers WHERE account_id = ?1",
                [account.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            signer_from(&w, &d, a, &s)
        })
    }

    fn account_signer(&self, account: AccountId) -> StoreResult<Option<AccountSigner>> {
        let row: Option<(String, String, Vec<u8>, Vec<u8>)> = self
            .reader()
            .query_row(
                "SELECT worker_id, device_id, actor, seed FROM console_signers WHERE account_id = ?1",
                [account.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        row.map(|(w, d, a, s)| signer_from(&w, &d, a, &s))
            .transpose()
    }

    fn create_session(
        &self,
        session_hash: &str,
        account: AccountId,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> StoreResult<()> {
        self.write(|conn| {
            conn.execute(
                "DELETE FROM console_sessions WHERE expires_at < ?1",
                [now_ms],
            )?;
            conn.execute(
                "INSERT INTO console_sessions (session_hash, account_id, csrf, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![session_hash, account.to_string(), csrf, now_ms, expires_ms],
            )?;
            Ok(())
        })
    }

    fn session(&self, session_hash: &str, now_ms: i64) -> StoreResult<Option<Session>> {
        let raw = self
            .reader()
            .query_row(
                &format!(
                    "SELECT {ACCOUNT_COLUMNS}, s.csrf, s.expires_at
                     FROM console_sessions s JOIN console_accounts a ON a.account_id = s.account_id
                     WHERE s.session_hash = ?1 AND s.expires_at > ?2"
                ),
                params![session_hash, now_ms],
                |r| Ok((account_row(r)?, r.get::<_, String>(6)?, r.get::<_, i64>(7)?)),
            )
            .optional()?;
        raw.map(|(a, csrf, expires_at)| {
            Ok(Session {
                account: account(a)?,
                csrf,
                expires_at,
            })
        })
        .transpose()
    }

    fn delete_session(&self, session_hash: &str) -> StoreResult<()> {
        self.write(|conn| {
            conn.execute(
                "DELETE FROM console_sessions WHERE session_hash = ?1",
                [session_hash],
            )?;
            Ok(())
        })
    }

    fn login_failed(
        &self,
        login: &str,
        client: &str,
        now_ms: i64,
        since_ms: i64,
    ) -> StoreResult<LoginFailures> {
        self.write(|conn| {
            conn.execute(
                "DELETE FROM console_login_failures WHERE at < ?1",
                [since_ms],
            )?;
            conn.execute(
                "INSERT INTO console_login_failures (login, client, at) VALUES (?1, ?2, ?3)",
                params![login, client, now_ms],
            )?;
            login_failures(conn, login, client, since_ms)
        })
    }

    fn login_failures(
        &self,
        login: &str,
        client: &str,
        since_ms: i64,
    ) -> StoreResult<LoginFailures> {
        login_failures(&self.reader(), login, client, since_ms)
    }

    fn station_zone(&self, station: StationId) -> StoreResult<UtcOffset> {
        let minutes: Option<i64> = self
            .reader()
            .query_row(
                "SELECT utc_offset_minutes FROM stations WHERE station_id = ?1",
                [station.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        let minutes = minutes.ok_or(StoreError::NotFound("station"))?;
        UtcOffset::from_minutes(minutes)
            .map_err(|_| StoreError::Database("malformed station time zone".into()))
    }

    fn set_station_zone(&self, station: StationId, zone: UtcOffset) -> StoreResult<()> {
        self.write(|conn| {
            let n = conn.execute(
                "UPDATE stations SET utc_offset_minutes = ?2 WHERE station_id = ?1",
                params![station.to_string(), zone.minutes()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound("station"));
            }
            Ok(())
        })
    }

    fn log_access(
        &self,
        account: AccountId,
        station: StationId,
        what: &str,
        target: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.write(|conn| {
            conn.execute(
                "INSERT INTO console_access (account_id, station_id, what, target, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    account.to_string(),
                    station.to_string(),
                    what,
                    target,
                    now_ms
                ],
            )?;
            Ok(())
        })
    }

    fn access_log(&self, station: StationId, limit: usize) -> StoreResult<Vec<AccessEntry>> {
        self.access_entries(station, None, limit)
    }

    fn access_log_of(
        &self,
        station: StationId,
        target: &str,
        limit: usize,
    ) -> StoreResult<Vec<AccessEntry>> {
        self.access_entries(station, Some(target), limit)
    }

    fn accesses(
        &self,
        station: StationId,
        household: Option<HouseholdId>,
        limit: usize,
    ) -> StoreResult<Vec<LoggedAccess>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT source, who, name, device, what, target, at FROM (
                 SELECT 0 AS source, a.account_id AS who, coalesce(c.login, '') AS name,
                        '' AS device, a.what AS what, a.target AS target, a.at AS at, a.id AS ord
                 FROM console_access a
                 LEFT JOIN console_accounts c ON c.account_id = a.account_id
                 WHERE a.station_id = ?1 AND (?2 IS NULL OR a.target = ?2)
                 UNION ALL
                 SELECT 1, d.worker_id, coalesce(w.label, ''), d.device_id, ?4, d.doc_id, d.at, 0
                 FROM device_access d
                 LEFT JOIN workers w ON w.worker_id = d.worker_id
                 WHERE d.station_id = ?1 AND (?2 IS NULL OR d.doc_id = ?2)
             ) ORDER BY at DESC, source, ord DESC, device LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(
                params![
                    station.to_string(),
                    household.map(|h| h.to_string()),
                    limit as i64,
                    CASE_FILE_ON_DEVICE
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, i64>(6)?,
                    ))
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(source, who, name, device, what, target, at)| {
                logged_access(source, &who, name, &device, what, target, at)
            })
            .collect()
    }
}

impl SqliteStore {
    fn access_entries(
        &self,
        station: StationId,
        target: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<AccessEntry>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT a.account_id, coalesce(c.login, ''), a.what, a.target, a.at FROM console_access a
             LEFT JOIN console_accounts c ON c.account_id = a.account_id
             WHERE a.station_id = ?1 AND (?3 IS NULL OR a.target = ?3)
             ORDER BY a.id DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![station.to_string(), limit as i64, target], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(a, login, what, target, at)| {
                Ok(AccessEntry {
                    account: AccountId(parse_uuid(&a)?),
                    login,
                    what,
                    target,
                    at,
                })
            })
            .collect()
    }

    fn follow_up_rows<P: rusqlite::Params>(
        &self,
        condition: &str,
        p: P,
    ) -> StoreResult<Vec<FollowUpRow>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!(
            "SELECT doc_id, follow_up_id, what, due, assignee, status FROM rm_follow_ups
             WHERE {condition} ORDER BY due, doc_id, follow_up_id"
        ))?;
        let rows = stmt
            .query_map(p, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(d, f, what, due, a, status)| {
                Ok(FollowUpRow {
                    doc: parse(&d, HouseholdId::parse)?,
                    follow_up: parse_uuid(&f)?,
                    what,
                    due,
                    assignee: parse(&a, WorkerId::parse)?,
                    status,
                })
            })
            .collect()
    }
}

/// Failed logins since `since_ms` of a login from a client, from the client, of the login.
fn login_failures(
    conn: &Connection,
    login: &str,
    client: &str,
    since_ms: i64,
) -> StoreResult<LoginFailures> {
    let (pair, from_client, of_login): (i64, i64, i64) = conn.query_row(
        "SELECT
            (SELECT count(*) FROM console_login_failures
              WHERE login = ?1 AND client = ?2 AND at >= ?3),
            (SELECT count(*) FROM console_login_failures WHERE client = ?2 AND at >= ?3),
            (SELECT count(*) FROM console_login_failures WHERE login = ?1 AND at >= ?3)",
        params![login, client, since_ms],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(LoginFailures {
        login_from_client: pair.max(0) as u64,
        client: from_client.max(0) as u64,
        login: of_login.max(0) as u64,
    })
}
