//! The console's storage on PostgreSQL (`store::console`). Search is `strpos` over the
//! lower-cased text of one station's households (no trigram extension needed).

use ::postgres::types::ToSql;
use doorstep_core::{HouseholdId, StationId, WorkerId};
use uuid::Uuid;

use super::{parse, PostgresStore, Statements};
use crate::store::console::*;
use crate::store::{StoreError, StoreResult};

fn parse_uuid(s: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| StoreError::Database("malformed id in database".into()))
}

fn account(r: &::postgres::Row) -> StoreResult<Account> {
    account_from(
        r.get("account_id"),
        r.get("role"),
        r.get::<_, Option<&str>>("station_id"),
        r.get("login"),
        r.get("password_hash"),
        r.get::<_, Option<i64>>("disabled_at").is_some(),
    )
}

const ACCOUNT_COLUMNS: &str =
    "a.account_id, a.role, a.station_id, a.login, a.password_hash, a.disabled_at";

fn station_exists(tx: &mut ::postgres::Transaction<'_>, station: &str) -> StoreResult<bool> {
    Ok(tx
        .query_opt("SELECT 1 FROM stations WHERE station_id = $1", &[&station])?
        .is_some())
}

/// `NotFound` if there is no such account; `Conflict` unless it is a county account. The
/// row stays locked until the transaction ends.
fn county_account(tx: &mut ::postgres::Transaction<'_>, account: AccountId) -> StoreResult<()> {
    let role = tx.query_opt(
        "SELECT role FROM console_accounts WHERE account_id = $1 FOR UPDATE",
        &[&account.to_string()],
    )?;
    match role.as_ref().map(|r| r.get::<_, &str>(0)) {
        None => Err(StoreError::NotFound("account")),
        Some("county") => Ok(()),
        Some(_) => Err(StoreError::Conflict(
            "only a county account is granted stations",
        )),
    }
}

/// Replace one document's rows inside the caller's transaction; false if the read model
/// holds a newer state or the household was erased meanwhile.
fn put_one(
    sx: &Statements,
    tx: &mut ::postgres::Transaction<'_>,
    m: &ReadModelDoc,
) -> StoreResult<bool> {
    let h = &m.household;
    let doc = h.doc.to_string();
    let station = h.station.to_string();
    let held = sx.query_opt(
        tx,
        "SELECT seq FROM rm_households WHERE doc_id = $1 FOR UPDATE",
        &[&doc],
    )?;
    if held.is_some_and(|r| r.get::<_, i64>(0) > h.seq as i64) {
        return Ok(false);
    }
    // An erasure that came between the push and this refresh wins.
    if sx
        .query_opt(tx, "SELECT 1 FROM erasures WHERE doc_id = $1", &[&doc])?
        .is_some()
    {
        return Ok(false);
    }
    // The four tables' rows in one statement (one round trip).
    sx.execute(
        tx,
        "WITH v AS (DELETE FROM rm_visits WHERE doc_id = $1),
              f AS (DELETE FROM rm_follow_ups WHERE doc_id = $1),
              x AS (DELETE FROM rm_facts WHERE doc_id = $1)
         DELETE FROM rm_households WHERE doc_id = $1",
        &[&doc],
    )?;
    sx.execute(
        tx,
        "INSERT INTO rm_households (doc_id, station_id, seq, code, village, status, categories,
           visits, last_visit, open_needs, conflicts, search_text)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            &doc,
            &station,
            &(h.seq as i64),
            &h.code,
            &h.village,
            &h.status,
            &join_words(&h.categories),
            &(h.visits as i64),
            &h.last_visit,
            &(h.open_needs as i64),
            &(h.conflicts as i64),
            &m.search_text(),
        ],
    )?;
    for v in &m.visits {
        let workers: Vec<String> = v.workers.iter().map(|w| w.to_string()).collect();
        sx.execute(
            tx,
            "INSERT INTO rm_visits (doc_id, visit_id, station_id, date, kind, status, workers)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &doc,
                &v.visit.to_string(),
                &station,
                &v.date,
                &v.kind,
                &v.status,
                &workers.join(" "),
            ],
        )?;
    }
    for f in &m.follow_ups {
        sx.execute(
            tx,
            "INSERT INTO rm_follow_ups (doc_id, follow_up_id, station_id, what, due, assignee, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &doc,
                &f.follow_up.to_string(),
                &station,
                &f.what,
                &f.due,
                &f.assignee.to_string(),
                &f.status,
            ],
        )?;
    }
    put_facts(sx, tx, &doc, &station, &m.facts)?;
    Ok(true)
}

fn put_facts(
    sx: &Statements,
    tx: &mut ::postgres::Transaction<'_>,
    doc: &str,
    station: &str,
    facts: &[FactRow],
) -> StoreResult<()> {
    for f in facts {
        sx.execute(
            tx,
            "INSERT INTO rm_facts (doc_id, fact, item_id, station_id, day, dim1, dim2)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &doc,
                &f.fact,
                &f.item.to_string(),
                &station,
                &f.day,
                &f.dim1,
                &f.dim2,
            ],
        )?;
    }
    Ok(())
}

impl ConsoleStore for PostgresStore {
    fn put_work(&self, w: &WorkRow) -> StoreResult<bool> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let (doc, station) = (w.doc.to_string(), w.station.to_string());
        let held = tx.query_opt(
            "SELECT seq FROM rm_work WHERE doc_id = $1 FOR UPDATE",
            &[&doc],
        )?;
        if held.is_some_and(|r| r.get::<_, i64>(0) > w.seq as i64) {
            return Ok(false);
        }
        if tx
            .query_opt("SELECT 1 FROM erasures WHERE doc_id = $1", &[&doc])?
            .is_some()
        {
            return Ok(false);
        }
        tx.execute("DELETE FROM rm_facts WHERE doc_id = $1", &[&doc])?;
        tx.execute(
            "INSERT INTO rm_work (doc_id, station_id, seq, kind) VALUES ($1, $2, $3, $4)
             ON CONFLICT (doc_id) DO UPDATE SET seq = EXCLUDED.seq, kind = EXCLUDED.kind",
            &[&doc, &station, &(w.seq as i64), &w.kind],
        )?;
        put_facts(&Statements::default(), &mut tx, &doc, &station, &w.facts)?;
        tx.commit()?;
        Ok(true)
    }

    fn put_read_models(&self, docs: &[ReadModelDoc]) -> StoreResult<Vec<bool>> {
        let mut l = self.pool.get()?;
        let (c, sx) = l.split();
        let mut tx = c.transaction()?;
        // In id order: two syncs refreshing the same households lock their rows in the
        // same order, so neither waits for the other forever.
        let mut order: Vec<usize> = (0..docs.len()).collect();
        order.sort_by_key(|&i| docs[i].household.doc);
        let mut written = vec![false; docs.len()];
        for i in order {
            written[i] = put_one(sx, &mut tx, &docs[i])?;
        }
        tx.commit()?;
        Ok(written)
    }

    fn clear_read_model(&self, station: StationId) -> StoreResult<()> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let s = station.to_string();
        for table in [
            "rm_households",
            "rm_visits",
            "rm_follow_ups",
            "rm_facts",
            "rm_work",
        ] {
            tx.execute(&format!("DELETE FROM {table} WHERE station_id = $1"), &[&s])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn read_model_seqs(&self, station: StationId) -> StoreResult<Vec<(HouseholdId, u64)>> {
        let mut c = self.pool.get()?;
        c.query(
            "SELECT doc_id, seq FROM rm_households WHERE station_id = $1
             UNION ALL SELECT doc_id, seq FROM rm_work WHERE station_id = $1",
            &[&station.to_string()],
        )?
        .iter()
        .map(|r| {
            Ok((
                parse(r.get(0), HouseholdId::parse)?,
                r.get::<_, i64>(1).max(0) as u64,
            ))
        })
        .collect()
    }

    fn work_documents(&self, station: StationId, kind: &str) -> StoreResult<Vec<HouseholdId>> {
        let mut c = self.pool.get()?;
        c.query(
            "SELECT doc_id FROM rm_work WHERE station_id = $1 AND kind = $2 ORDER BY doc_id",
            &[&station.to_string(), &kind],
        )?
        .iter()
        .map(|r| parse(r.get(0), HouseholdId::parse))
        .collect()
    }

    fn households(
        &self,
        station: StationId,
        filter: &HouseholdFilter,
    ) -> StoreResult<Vec<HouseholdRow>> {
        let mut sql = String::from(
            "SELECT doc_id, station_id, seq, code, village, status, categories, visits, last_visit,
                    open_needs, conflicts FROM rm_households WHERE station_id = $1",
        );
        let mut args: Vec<String> = vec![station.to_string()];
        if let Some(v) = &filter.village {
            args.push(v.clone());
            sql.push_str(&format!(" AND village = ${}", args.len()));
        }
        if let Some(c) = &filter.category {
            args.push(format!(" {c} "));
            sql.push_str(&format!(
                " AND strpos(' ' || categories || ' ', ${}) > 0",
                args.len()
            ));
        }
        if let Some(s) = &filter.status {
            args.push(s.clone());
            sql.push_str(&format!(" AND status = ${}", args.len()));
        }
        if let Some(t) = &filter.text {
            args.push(t.to_lowercase());
            sql.push_str(&format!(" AND strpos(search_text, ${}) > 0", args.len()));
        }
        sql.push_str(&format!(
            " ORDER BY code, doc_id LIMIT {}",
            filter.limit.max(1)
        ));
        let params: Vec<&(dyn ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        let mut c = self.pool.get()?;
        c.query(&sql, &params)?
            .iter()
            .map(|r| {
                Ok(HouseholdRow {
                    doc: parse(r.get(0), HouseholdId::parse)?,
                    station: parse(r.get(1), StationId::parse)?,
                    seq: r.get::<_, i64>(2).max(0) as u64,
                    code: r.get(3),
                    village: r.get(4),
                    status: r.get(5),
                    categories: split_words(r.get(6)),
                    visits: r.get::<_, i64>(7).max(0) as u64,
                    last_visit: r.get(8),
                    open_needs: r.get::<_, i64>(9).max(0) as u64,
                    conflicts: r.get::<_, i64>(10).max(0) as u64,
                })
            })
            .collect()
    }

    fn visits_between(
        &self,
        station: StationId,
        from: &str,
        to: &str,
    ) -> StoreResult<Vec<VisitRow>> {
        let mut c = self.pool.get()?;
        c.query(
            "SELECT doc_id, visit_id, date, kind, status, workers FROM rm_visits
             WHERE station_id = $1 AND date >= $2 AND date <= $3 ORDER BY date, doc_id, visit_id",
            &[&station.to_string(), &from, &to],
        )?
        .iter()
        .map(|r| {
            Ok(VisitRow {
                doc: parse(r.get(0), HouseholdId::parse)?,
                visit: parse_uuid(r.get(1))?,
                date: r.get(2),
                kind: r.get(3),
                status: r.get(4),
                workers: split_words(r.get(5))
                    .iter()
                    .map(|w| parse(w, WorkerId::parse))
                    .collect::<StoreResult<_>>()?,
            })
        })
        .collect()
    }

    fn facts_between(&self, station: StationId, from: &str, to: &str) -> StoreResult<Vec<FactRow>> {
        let mut c = self.pool.get()?;
        c.query(
            "SELECT doc_id, fact, item_id, day, dim1, dim2 FROM rm_facts
             WHERE station_id = $1 AND day >= $2 AND day <= $3 ORDER BY day, doc_id, fact, item_id",
            &[&station.to_string(), &from, &to],
        )?
        .iter()
        .map(|r| {
            Ok(FactRow {
                doc: parse(r.get(0), HouseholdId::parse)?,
                fact: r.get(1),
                item: parse_uuid(r.get(2))?,
                day: r.get(3),
                dim1: r.get(4),
                dim2: r.get(5),
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
            "station_id = $1 AND due >= $2 AND due <= $3",
            &[&station.to_string(), &from, &to],
        )
    }

    fn open_follow_ups(&self, station: StationId, until: &str) -> StoreResult<Vec<FollowUpRow>> {
        self.follow_up_rows(
            "station_id = $1 AND status = 'open' AND due <= $2",
            &[&station.to_string(), &until],
        )
    }

    fn worker_labels(&self, station: StationId) -> StoreResult<Vec<(WorkerId, String)>> {
        let mut c = self.pool.get()?;
        c.query(
            "SELECT worker_id, label FROM workers WHERE station_id = $1 ORDER BY label",
            &[&station.to_string()],
        )?
        .iter()
        .map(|r| Ok((parse(r.get(0), WorkerId::parse)?, r.get(1))))
        .collect()
    }

    fn stations(&self) -> StoreResult<Vec<(StationId, String)>> {
        let mut c = self.pool.get()?;
        c.query(
            "SELECT station_id, name FROM stations ORDER BY created_at",
            &[],
        )?
        .iter()
        .map(|r| Ok((parse(r.get(0), StationId::parse)?, r.get(1))))
        .collect()
    }

    fn station_devices(&self, station: StationId, now_ms: i64) -> StoreResult<Vec<DeviceRow>> {
        let mut c = self.pool.get()?;
        c.query(
            "SELECT d.device_id, d.worker_id, d.enrolled_at,
                    d.code_hash IS NOT NULL AND coalesce(d.code_expires, 0) >= $2,
                    d.revoked_at, EXISTS (SELECT 1 FROM console_signers c WHERE c.device_id = d.device_id),
                    d.last_sync_at
             FROM devices d JOIN workers w ON w.worker_id = d.worker_id
             WHERE d.station_id = $1 ORDER BY w.label, d.device_id",
            &[&station.to_string(), &now_ms],
        )?
        .iter()
        .map(|r| {
            device_row(
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            )
        })
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
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        if tx
            .query_opt(
                "SELECT 1 FROM stations WHERE station_id = $1",
                &[&station.to_string()],
            )?
            .is_none()
        {
            return Err(StoreError::NotFound("station"));
        }
        let n = tx.execute(
            "INSERT INTO console_accounts (account_id, station_id, login, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (login) DO NOTHING",
            &[&id.to_string(), &station.to_string(), &login, &password_hash, &now_ms],
        )?;
        if n == 0 {
            return Err(StoreError::Conflict("login taken"));
        }
        tx.commit()?;
        Ok(id)
    }

    fn account_by_login(&self, login: &str) -> StoreResult<Option<Account>> {
        let mut c = self.pool.get()?;
        c.query_opt(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM console_accounts a WHERE a.login = $1"),
            &[&login],
        )?
        .map(|r| account(&r))
        .transpose()
    }

    fn add_county_account(
        &self,
        login: &str,
        password_hash: &str,
        stations: &[StationId],
        now_ms: i64,
    ) -> StoreResult<AccountId> {
        let id = AccountId(Uuid::now_v7());
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        for s in stations {
            if !station_exists(&mut tx, &s.to_string())? {
                return Err(StoreError::NotFound("station"));
            }
        }
        let n = tx.execute(
            "INSERT INTO console_accounts
               (account_id, role, station_id, login, password_hash, created_at)
             VALUES ($1, 'county', NULL, $2, $3, $4) ON CONFLICT (login) DO NOTHING",
            &[&id.to_string(), &login, &password_hash, &now_ms],
        )?;
        if n == 0 {
            return Err(StoreError::Conflict("login taken"));
        }
        for s in stations {
            tx.execute(
                "INSERT INTO console_account_stations (account_id, station_id, granted_at)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&id.to_string(), &s.to_string(), &now_ms],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    fn grant_station(
        &self,
        account: AccountId,
        station: StationId,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        county_account(&mut tx, account)?;
        if !station_exists(&mut tx, &station.to_string())? {
            return Err(StoreError::NotFound("station"));
        }
        let n = tx.execute(
            "INSERT INTO console_account_stations (account_id, station_id, granted_at)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&account.to_string(), &station.to_string(), &now_ms],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    fn revoke_station(&self, account: AccountId, station: StationId) -> StoreResult<bool> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        county_account(&mut tx, account)?;
        let n = tx.execute(
            "DELETE FROM console_account_stations WHERE account_id = $1 AND station_id = $2",
            &[&account.to_string(), &station.to_string()],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    fn account_stations(&self, account: AccountId) -> StoreResult<Vec<(StationId, String)>> {
        let mut c = self.pool.get()?;
        let rows = c.query(
            "SELECT s.station_id, s.name FROM console_accounts a
             JOIN stations s ON s.station_id = a.station_id
             WHERE a.account_id = $1 AND a.role = 'supervisor'
             UNION
             SELECT s.station_id, s.name FROM console_account_stations g
             JOIN console_accounts a ON a.account_id = g.account_id AND a.role = 'county'
             JOIN stations s ON s.station_id = g.station_id
             WHERE g.account_id = $1",
            &[&account.to_string()],
        )?;
        let stations = rows
            .iter()
            .map(|r| Ok((parse(r.get(0), StationId::parse)?, r.get::<_, String>(1))))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(by_name(stations))
    }

    fn accounts(&self) -> StoreResult<Vec<AccountListing>> {
        let mut c = self.pool.get()?;
        let rows = c.query(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM console_accounts a ORDER BY a.login"),
            &[],
        )?;
        let grants = c.query(
            "SELECT account_id, station_id FROM console_account_stations
             ORDER BY account_id, station_id",
            &[],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let account = account(r)?;
            let stations = match account.role {
                AccountRole::Supervisor(s) => vec![s],
                AccountRole::County => {
                    let id = account.id.to_string();
                    grants
                        .iter()
                        .filter(|g| g.get::<_, &str>(0) == id)
                        .map(|g| parse(g.get(1), StationId::parse))
                        .collect::<StoreResult<Vec<_>>>()?
                }
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
        let mut c = self.pool.get()?;
        c.execute(
            "INSERT INTO console_signers (account_id, worker_id, device_id, actor, seed)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id) DO NOTHING",
            &[
                &account.to_string(),
                &signer.worker.to_string(),
                &signer.device.to_string(),
                &signer.actor,
                &signer.seed.to_vec(),
            ],
        )?;
        drop(c);
        self.account_signer(account)?
            .ok_or(StoreError::NotFound("account signer"))
    }

    fn account_signer(&self, account: AccountId) -> StoreResult<Option<AccountSigner>> {
        let mut c = self.pool.get()?;
        c.query_opt(
            "SELECT worker_id, device_id, actor, seed FROM console_signers WHERE account_id = $1",
            &[&account.to_string()],
        )?
        .map(|r| signer_from(r.get(0), r.get(1), r.get(2), r.get::<_, &[u8]>(3)))
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
        let mut c = self.pool.get()?;
        c.execute(
            "DELETE FROM console_sessions WHERE expires_at < $1",
            &[&now_ms],
        )?;
        c.execute(
            "INSERT INTO console_sessions (session_hash, account_id, csrf, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &session_hash,
                &account.to_string(),
                &csrf,
                &now_ms,
                &expires_ms,
            ],
        )?;
        Ok(())
    }

    fn session(&self, session_hash: &str, now_ms: i64) -> StoreResult<Option<Session>> {
        let mut c = self.pool.get()?;
        c.query_opt(
            &format!(
                "SELECT {ACCOUNT_COLUMNS}, s.csrf, s.expires_at
                 FROM console_sessions s JOIN console_accounts a ON a.account_id = s.account_id
                 WHERE s.session_hash = $1 AND s.expires_at > $2"
            ),
            &[&session_hash, &now_ms],
        )?
        .map(|r| {
            Ok(Session {
                account: account(&r)?,
                csrf: r.get("csrf"),
                expires_at: r.get("expires_at"),
            })
        })
        .transpose()
    }

    fn delete_session(&self, session_hash: &str) -> StoreResult<()> {
        let mut c = self.pool.get()?;
        c.execute(
            "DELETE FROM console_sessions WHERE session_hash = $1",
            &[&session_hash],
        )?;
        Ok(())
    }

    fn login_failed(
        &self,
        login: &str,
        client: &str,
        now_ms: i64,
        since_ms: i64,
    ) -> StoreResult<LoginFailures> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        tx.execute(
            "DELETE FROM console_login_failures WHERE at < $1",
            &[&since_ms],
        )?;
        tx.execute(
            "INSERT INTO console_login_failures (login, client, at) VALUES ($1, $2, $3)",
            &[&login, &client, &now_ms],
        )?;
        let counts = login_failures(&mut tx, login, client, since_ms)?;
        tx.commit()?;
        Ok(counts)
    }

    fn login_failures(
        &self,
        login: &str,
        client: &str,
        since_ms: i64,
    ) -> StoreResult<LoginFailures> {
        let mut c = self.pool.get()?;
        login_failures(&mut *c, login, client, since_ms)
    }

    fn station_zone(&self, station: StationId) -> StoreResult<UtcOffset> {
        let row = self.pool.get()?.prepared_opt(
            "SELECT utc_offset_minutes FROM stations WHERE station_id = $1",
            &[&station.to_string()],
        )?;
        let minutes: i32 = row.ok_or(StoreError::NotFound("station"))?.get(0);
        UtcOffset::from_minutes(i64::from(minutes))
            .map_err(|_| StoreError::Database("malformed station time zone".into()))
    }

    fn set_station_zone(&self, station: StationId, zone: UtcOffset) -> StoreResult<()> {
        let mut c = self.pool.get()?;
        let n = c.execute(
            "UPDATE stations SET utc_offset_minutes = $2 WHERE station_id = $1",
            &[&station.to_string(), &zone.minutes()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound("station"));
        }
        Ok(())
    }

    fn log_access(
        &self,
        account: AccountId,
        station: StationId,
        what: &str,
        target: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut c = self.pool.get()?;
        c.execute(
            "INSERT INTO console_access (account_id, station_id, what, target, at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &account.to_string(),
                &station.to_string(),
                &what,
                &target,
                &now_ms,
            ],
        )?;
        Ok(())
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
        let mut c = self.pool.get()?;
        c.query(
            "SELECT source, who, name, device, what, target, at FROM (
                 SELECT 0 AS source, a.account_id AS who, coalesce(c.login, '') AS name,
                        '' AS device, a.what AS what, a.target AS target, a.at AS at,
                        a.id AS ord
                 FROM console_access a
                 LEFT JOIN console_accounts c ON c.account_id = a.account_id
                 WHERE a.station_id = $1 AND ($2::text IS NULL OR a.target = $2)
                 UNION ALL
                 SELECT 1, d.worker_id, coalesce(w.label, ''), d.device_id, $4::text, d.doc_id,
                        d.at, 0
                 FROM device_access d
                 LEFT JOIN workers w ON w.worker_id = d.worker_id
                 WHERE d.station_id = $1 AND ($2::text IS NULL OR d.doc_id = $2)
             ) AS u ORDER BY at DESC, source, ord DESC, device LIMIT $3",
            &[
                &station.to_string(),
                &household.map(|h| h.to_string()),
                &(limit as i64),
                &CASE_FILE_ON_DEVICE,
            ],
        )?
        .iter()
        .map(|r| {
            logged_access(
                r.get::<_, i32>(0).into(),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            )
        })
        .collect()
    }
}

impl PostgresStore {
    fn access_entries(
        &self,
        station: StationId,
        target: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<AccessEntry>> {
        let mut c = self.pool.get()?;
        c.query(
            "SELECT a.account_id, coalesce(c.login, ''), a.what, a.target, a.at FROM console_access a
             LEFT JOIN console_accounts c ON c.account_id = a.account_id
             WHERE a.station_id = $1 AND ($3::text IS NULL OR a.target = $3)
             ORDER BY a.id DESC LIMIT $2",
            &[&station.to_string(), &(limit as i64), &target],
        )?
        .iter()
        .map(|r| {
            Ok(AccessEntry {
                account: AccountId(parse_uuid(r.get(0))?),
                login: r.get(1),
                what: r.get(2),
                target: r.get(3),
                at: r.get(4),
            })
        })
        .collect()
    }

    fn follow_up_rows(
        &self,
        condition: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<Vec<FollowUpRow>> {
        let mut c = self.pool.get()?;
        c.query(
            &format!(
                "SELECT doc_id, follow_up_id, what, due, assignee, status FROM rm_follow_ups
                 WHERE {condition} ORDER BY due, doc_id, follow_up_id"
            ),
            params,
        )?
        .iter()
        .map(|r| {
            Ok(FollowUpRow {
                doc: parse(r.get(0), HouseholdId::parse)?,
                follow_up: parse_uuid(r.get(1))?,
                what: r.get(2),
                due: r.get(3),
                assignee: parse(r.get(4), WorkerId::parse)?,
                status: r.get(5),
            })
        })
        .collect()
    }
}

/// Failed logins since `since_ms` of a login from a client, from the client, of the login.
fn login_failures(
    c: &mut impl ::postgres::GenericClient,
    login: &str,
    client: &str,
    since_ms: i64,
) -> StoreResult<LoginFailures> {
    let row = c.query_one(
        "SELECT
            (SELECT count(*) FROM console_login_failures
              WHERE login = $1 AND client = $2 AND at >= $3),
            (SELECT count(*) FROM console_login_failures WHERE client = $2 AND at >= $3),
            (SELECT count(*) FROM console_login_failures WHERE login = $1 AND at >= $3)",
        &[&login, &client, &since_ms],
    )?;
    let n = |i: usize| row.get::<_, i64>(i).max(0) as u64;
    Ok(LoginFailures {
        login_from_client: n(0),
        client: n(1),
        login: n(2),
    })
}
