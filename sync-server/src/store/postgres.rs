//! The PostgreSQL backend, for several stateless server instances on one database.
//!
//! Same semantics as SQLite. Sequence numbers stay gap-free *as readers see them* with
//! several writers: a commit first locks its station's row (`SELECT … FOR UPDATE`), so the
//! commits of one station are serialised and the next sequence number is only taken after
//! the previous commit is visible. Migrations run under a transaction-level advisory lock,
//! so instances starting together do not race. Connections use TLS as `sslmode` in the
//! connection string says (`pg_tls`; verify-full recommended).

use std::sync::{Condvar, Mutex};

use ::postgres::Client;
use doorstep_core::{CardIssuanceId, DeviceId, HouseholdId, StationId, WorkerId};
use tokio_postgres_rustls::MakeRustlsConnect;
use uuid::Uuid;

use super::*;

mod blobs;
mod caseload;
mod console;
mod statements;

use statements::Statements;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/0001_init.sql"),
    include_str!("migrations/postgres/0002_signers.sql"),
    include_str!("migrations/postgres/0003_console.sql"),
    include_str!("migrations/postgres/0004_last_sync.sql"),
    include_str!("migrations/postgres/0005_erasure.sql"),
    include_str!("migrations/postgres/0006_scope.sql"),
    include_str!("migrations/postgres/0007_device_access.sql"),
    include_str!("migrations/postgres/0008_search_rows.sql"),
    include_str!("migrations/postgres/0009_county_accounts.sql"),
    include_str!("migrations/postgres/0010_document_kind.sql"),
    include_str!("migrations/postgres/0011_work_read_model.sql"),
    include_str!("migrations/postgres/0012_phone_retirements.sql"),
    include_str!("migrations/postgres/0013_blobs.sql"),
    include_str!("migrations/postgres/0014_station_zone_login_clients.sql"),
    include_str!("migrations/postgres/0015_blob_touched.sql"),
    include_str!("migrations/postgres/0016_blobs_per_station.sql"),
];
/// Key of the advisory lock that guards migrations.
const MIGRATION_LOCK: i64 = 0x646f_6f72_7374_6570; // "doorstep"

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        // The message names the SQL state, never a parameter value. Connection failures
        // (TLS, network, configuration) also say why: a database error's details (which may
        // quote values) are left out.
        match (e.as_db_error(), std::error::Error::source(&e)) {
            (None, Some(cause)) => StoreError::Database(format!("{e}: {cause}")),
            _ => StoreError::Database(e.to_string()),
        }
    }
}

fn parse<T>(s: &str, f: impl Fn(&str) -> Result<T, doorstep_core::Error>) -> StoreResult<T> {
    f(s).map_err(|_| StoreError::Database("malformed id in database".into()))
}

/// A small blocking connection pool.
struct Pool {
    config: ::postgres::Config,
    tls: MakeRustlsConnect,
    max: usize,
    state: Mutex<(Vec<Conn>, usize)>,
    freed: Condvar,
}

/// A pooled connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: Statements,
}

struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl Lease<'_> {
    fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("a lease holds its connection until dropped"))
    }

    /// The client and its prepared statements, borrowed apart (a transaction holds the
    /// client while it uses the statements).
    fn split(&mut self) -> (&mut Client, &Statements) {
        let Conn { client, statements } = self.conn();
        (client, statements)
    }

    /// `query_opt` with the statement prepared once on this connection.
    fn prepared_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ::postgres::types::ToSql + Sync)],
    ) -> StoreResult<Option<::postgres::Row>> {
        let (c, sx) = self.split();
        sx.query_opt(c, sql, params)
    }

    /// `query` with the statement prepared once on this connection.
    fn prepared(
        &mut self,
        sql: &str,
        params: &[&(dyn ::postgres::types::ToSql + Sync)],
    ) -> StoreResult<Vec<::postgres::Row>> {
        let (c, sx) = self.split();
        sx.query(c, sql, params)
    }

    /// `query_one` with the statement prepared once on this connection.
    fn prepared_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ::postgres::types::ToSql + Sync)],
    ) -> StoreResult<::postgres::Row> {
        let (c, sx) = self.split();
        sx.query_one(c, sql, params)
    }

    /// `execute` with the statement prepared once on this connection.
    fn prepared_execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ::postgres::types::ToSql + Sync)],
    ) -> StoreResult<u64> {
        let (c, sx) = self.split();
        sx.execute(c, sql, params)
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self
            .conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("a lease holds its connection until dropped"))
            .client
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.conn().client
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut st = self.pool.state.lock().unwrap_or_else(|p| p.into_inner());
        match self.conn.take() {
            Some(c) if !c.client.is_closed() => st.0.push(c),
            _ => st.1 -= 1,
        }
        self.pool.freed.notify_one();
    }
}

impl Pool {
    fn get(&self) -> StoreResult<Lease<'_>> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(c) = st.0.pop() {
                return Ok(Lease {
                    pool: self,
                    conn: Some(c),
                });
            }
            if st.1 < self.max {
                st.1 += 1;
                drop(st);
                return match self.config.connect(self.tls.clone()) {
                    Ok(client) => Ok(Lease {
                        pool: self,
                        conn: Some(Conn {
                            client,
                            statements: Statements::default(),
                        }),
                    }),
                    Err(e) => {
                        self.state.lock().unwrap_or_else(|p| p.into_inner()).1 -= 1;
                        Err(e.into())
                    }
                };
            }
            st = self.freed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The PostgreSQL backend.
pub struct PostgresStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore")
    }
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user@host:port/db`), optionally in a schema of its
    /// own (created if missing), and run the migrations.
    pub fn open(url: &str, schema: Option<&str>, max_connections: usize) -> StoreResult<Self> {
        Self::open_with_ca(url, schema, max_connections, None)
    }

    /// [`PostgresStore::open`] with the CA that signed the database server's certificate
    /// (for `sslmode=verify-ca` / `verify-full`; overrides `sslrootcert` in the URL).
    pub fn open_with_ca(
        url: &str,
        schema: Option<&str>,
        max_connections: usize,
        ca_file: Option<&std::path::Path>,
    ) -> StoreResult<Self> {
        let settings = super::pg_tls::split_settings(url, ca_file)?;
        let (tls, mode) = super::pg_tls::connector(&settings)?;
        let mut config: ::postgres::Config = settings
            .conn
            .parse()
            .map_err(|e: ::postgres::Error| StoreError::Database(e.to_string()))?;
        config.ssl_mode(mode);
        if settings.ca_file.is_none() && settings.mode != super::pg_tls::SslMode::Disable {
            tracing::warn!(
                sslmode = settings.mode.as_str(),
                "PostgreSQL: the database server is not authenticated; use sslmode=verify-full with its CA (docs/operations.md)"
            );
        } else if settings.mode == super::pg_tls::SslMode::Disable {
            tracing::warn!(
                "PostgreSQL: sslmode=disable, children's data crosses the network in clear"
            );
        }
        if let Some(schema) = schema {
            if !schema
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(StoreError::Database(
                    "schema name must be alphanumeric".into(),
                ));
            }
            let mut admin = config.connect(tls.clone())?;
            admin.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))?;
            config.options(&format!("-c search_path={schema}"));
        }
        let store = PostgresStore {
            pool: Pool {
                config,
                tls,
                max: max_connections.max(2),
                state: Mutex::new((Vec::new(), 0)),
                freed: Condvar::new(),
            },
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> StoreResult<()> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
        let current: i64 = match tx.query_opt("SELECT version FROM schema_version", &[])? {
            Some(r) => r.get(0),
            None => {
                tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])?;
                0
            }
        };
        let latest = MIGRATIONS.len() as i64;
        if current > latest {
            return Err(StoreError::SchemaTooNew {
                found: current,
                supported: latest,
            });
        }
        for v in current..latest {
            tx.batch_execute(MIGRATIONS[v as usize])?;
        }
        tx.execute("UPDATE schema_version SET version = $1", &[&latest])?;
        tx.execute(
            "INSERT INTO server_meta (key, value) VALUES ('epoch', $1) ON CONFLICT (key) DO NOTHING",
            &[&Uuid::new_v4().to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn card_rows(
        &self,
        condition: &str,
        params: &[&(dyn ::postgres::types::ToSql + Sync)],
    ) -> StoreResult<Vec<CardRow>> {
        let mut c = self.pool.get()?;
        let rows = c.query(
            &format!(
                "SELECT card_id, doc_id, serial, status, issued_by, issued_at FROM cards WHERE {condition}
                 ORDER BY serial, issued_at, card_id"
            ),
            params,
        )?;
        rows.iter()
            .map(|r| {
                Ok(CardRow {
                    card: parse(r.get(0), CardIssuanceId::parse)?,
                    household: parse(r.get(1), HouseholdId::parse)?,
                    serial: r.get(2),
                    status: r.get(3),
                    issued_by: parse(r.get(4), WorkerId::parse)?,
                    issued_at: r.get(5),
                })
            })
            .collect()
    }
}

const ERASURE_COLUMNS: &str = "station_id, doc_id, seq, erased_at, erased_by, reason";

fn erasure_record(r: &::postgres::Row) -> StoreResult<ErasureRecord> {
    Ok(ErasureRecord {
        station: parse(r.get(0), StationId::parse)?,
        doc: parse(r.get(1), HouseholdId::parse)?,
        seq: r.get::<_, i64>(2).max(0) as u64,
        erased_at: r.get(3),
        erased_by: r.get(4),
        reason: ErasureReason::parse(r.get(5)).unwrap_or(ErasureReason::Other),
    })
}

fn auth_row(r: &::postgres::Row, device: DeviceId) -> StoreResult<DeviceAuth> {
    Ok(DeviceAuth {
        device,
        worker: parse(r.get("worker_id"), WorkerId::parse)?,
        station: parse(r.get("station_id"), StationId::parse)?,
        revoked: r.get::<_, Option<i64>>("revoked_at").is_some(),
    })
}

impl ServerStore for PostgresStore {
    fn epoch(&self) -> StoreResult<Uuid> {
        let s: String = self
            .pool
            .get()?
            .prepared_one("SELECT value FROM server_meta WHERE key = 'epoch'", &[])?
            .get(0);
        Uuid::parse_str(&s).map_err(|_| StoreError::Database("malformed epoch".into()))
    }

    fn new_epoch(&self) -> StoreResult<Uuid> {
        let epoch = Uuid::new_v4();
        self.pool.get()?.execute(
            "UPDATE server_meta SET value = $1 WHERE key = 'epoch'",
            &[&epoch.to_string()],
        )?;
        Ok(epoch)
    }

    fn create_station(&self, name: &str, now_ms: i64) -> StoreResult<StationId> {
        let id = StationId::new();
        self.pool.get()?.execute(
            "INSERT INTO stations (station_id, name, created_at) VALUES ($1, $2, $3)",
            &[&id.to_string(), &name, &now_ms],
        )?;
        Ok(id)
    }

    fn add_worker(&self, station: StationId, label: &str, now_ms: i64) -> StoreResult<WorkerId> {
        let mut c = self.pool.get()?;
        if c.query_opt(
            "SELECT 1 FROM stations WHERE station_id = $1",
            &[&station.to_string()],
        )?
        .is_none()
        {
            return Err(StoreError::NotFound("station"));
        }
        let id = WorkerId::new();
        c.execute(
            "INSERT INTO workers (worker_id, station_id, label, created_at) VALUES ($1, $2, $3, $4)",
            &[&id.to_string(), &station.to_string(), &label, &now_ms],
        )?;
        Ok(id)
    }

    fn set_worker_label(&self, worker: WorkerId, label: &str) -> StoreResult<StationId> {
        let row = self.pool.get()?.query_opt(
            "UPDATE workers SET label = $2 WHERE worker_id = $1 RETURNING station_id",
            &[&worker.to_string(), &label],
        )?;
        let station: String = row.ok_or(StoreError::NotFound("worker"))?.get(0);
        parse(&station, StationId::parse)
    }

    fn enroll_device(
        &self,
        worker: WorkerId,
        code_hash: &str,
        expires_ms: i64,
    ) -> StoreResult<DeviceId> {
        let mut c = self.pool.get()?;
        let row = c.query_opt(
            "SELECT station_id FROM workers WHERE worker_id = $1",
            &[&worker.to_string()],
        )?;
        let station: String = row.ok_or(StoreError::NotFound("worker"))?.get(0);
        let id = DeviceId::new();
        c.execute(
            "INSERT INTO devices (device_id, worker_id, station_id, code_hash, code_expires) VALUES ($1, $2, $3, $4, $5)",
            &[&id.to_string(), &worker.to_string(), &station, &code_hash, &expires_ms],
        )?;
        Ok(id)
    }

    fn redeem_code(
        &self,
        code_hash: &str,
        token_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<DeviceAuth>> {
        let mut c = self.pool.get()?;
        let row = c.query_opt(
            "UPDATE devices SET code_hash = NULL, code_expires = NULL, token_hash = $2, enrolled_at = $3
             WHERE code_hash = $1 AND code_expires >= $3 AND revoked_at IS NULL AND token_hash IS NULL
             RETURNING device_id, worker_id, station_id, revoked_at",
            &[&code_hash, &token_hash, &now_ms],
        )?;
        row.map(|r| auth_row(&r, parse(r.get("device_id"), DeviceId::parse)?))
            .transpose()
    }

    fn revoke_device(&self, device: DeviceId, now_ms: i64) -> StoreResult<bool> {
        let n = self.pool.get()?.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, $2), code_hash = NULL WHERE device_id = $1",
            &[&device.to_string(), &now_ms],
        )?;
        Ok(n > 0)
    }

    fn note_sync(&self, device: DeviceId, now_ms: i64, served_seq: u64) -> StoreResult<()> {
        self.pool.get()?.prepared_execute(
            "UPDATE devices SET last_sync_at = greatest(coalesce(last_sync_at, 0), $2),
               served_seq = greatest(served_seq, $3) WHERE device_id = $1",
            &[&device.to_string(), &now_ms, &(served_seq as i64)],
        )?;
        Ok(())
    }

    fn served_seq(&self, device: DeviceId) -> StoreResult<u64> {
        let row = self.pool.get()?.prepared_opt(
            "SELECT served_seq FROM devices WHERE device_id = $1",
            &[&device.to_string()],
        )?;
        Ok(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64)
    }

    fn authenticate(&self, token_hash: &str) -> StoreResult<Option<DeviceAuth>> {
        let row = self.pool.get()?.prepared_opt(
            "SELECT device_id, worker_id, station_id, revoked_at FROM devices WHERE token_hash = $1",
            &[&token_hash],
        )?;
        row.map(|r| auth_row(&r, parse(r.get("device_id"), DeviceId::parse)?))
            .transpose()
    }

    fn device(&self, device: DeviceId) -> StoreResult<Option<DeviceAuth>> {
        let row = self.pool.get()?.prepared_opt(
            "SELECT worker_id, station_id, revoked_at FROM devices WHERE device_id = $1",
            &[&device.to_string()],
        )?;
        row.map(|r| auth_row(&r, device)).transpose()
    }

    fn bind_signer(
        &self,
        device: DeviceId,
        actor: &[u8],
        key: &[u8; 32],
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let device = device.to_string();
        // The device row is locked first, so two binds of one device are serialised.
        tx.query_opt(
            "SELECT 1 FROM devices WHERE device_id = $1 FOR UPDATE",
            &[&device],
        )?;
        if let Some(r) = tx.query_opt(
            "SELECT device_id, public_key FROM signers WHERE actor = $1",
            &[&actor],
        )? {
            let (owner, bound): (String, Vec<u8>) = (r.get(0), r.get(1));
            return Ok(owner == device && bound == key[..]);
        }
        if tx
            .query_opt("SELECT 1 FROM signers WHERE device_id = $1", &[&device])?
            .is_some()
        {
            return Ok(false);
        }
        let n = tx.execute(
            "INSERT INTO signers (actor, device_id, public_key, bound_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&actor, &device, &&key[..], &now_ms],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    fn station_exists(&self, station: StationId) -> StoreResult<bool> {
        Ok(self
            .pool
            .get()?
            .query_opt(
                "SELECT 1 FROM stations WHERE station_id = $1",
                &[&station.to_string()],
            )?
            .is_some())
    }

    fn signer(&self, actor: &[u8]) -> StoreResult<Option<SignerRecord>> {
        let row = self.pool.get()?.prepared_opt(
            "SELECT s.device_id, d.worker_id, d.station_id, s.public_key FROM signers s
             JOIN devices d ON d.device_id = s.device_id WHERE s.actor = $1",
            &[&actor],
        )?;
        row.map(|r| {
            Ok(SignerRecord {
                device: parse(r.get(0), DeviceId::parse)?,
                worker: parse(r.get(1), WorkerId::parse)?,
                station: parse(r.get(2), StationId::parse)?,
                key: r
                    .get::<_, Vec<u8>>(3)
                    .try_into()
                    .map_err(|_| StoreError::Database("stored key is not 32 bytes".into()))?,
            })
        })
        .transpose()
    }

    fn doc_signatures(&self, doc: HouseholdId) -> StoreResult<Vec<AuthorSignature>> {
        self.pool
            .get()?
            .prepared(
                "SELECT actor, hash, sig FROM doc_signatures WHERE doc_id = $1",
                &[&doc.to_string()],
            )?
            .iter()
            .map(|r| super::sqlite::stored_signature(r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    fn document_station(&self, doc: HouseholdId) -> StoreResult<Option<StationId>> {
        let row = self.pool.get()?.prepared_opt(
            "SELECT station_id FROM documents WHERE doc_id = $1",
            &[&doc.to_string()],
        )?;
        row.map(|r| parse(r.get(0), StationId::parse)).transpose()
    }

    fn load_document(&self, doc: HouseholdId) -> StoreResult<Option<StoredDocument>> {
        let mut l = self.pool.get()?;
        let (c, sx) = l.split();
        // One snapshot-consistent read of the document row and its later log entries.
        let mut tx = c
            .build_transaction()
            .isolation_level(::postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let Some(row) = sx.query_opt(
            &mut tx,
            "SELECT station_id, snapshot, snapshot_seq, changes_since_snapshot FROM documents WHERE doc_id = $1",
            &[&doc.to_string()],
        )?
        else {
            return Ok(None);
        };
        let snapshot_seq: i64 = row.get(2);
        let changes = sx
            .query(
                &mut tx,
                "SELECT bytes FROM change_log WHERE doc_id = $1 AND seq > $2 AND kind = 0 ORDER BY seq",
                &[&doc.to_string(), &snapshot_seq],
            )?
            .iter()
            .map(|r| r.get::<_, Vec<u8>>(0))
            .collect();
        tx.commit()?;
        Ok(Some(StoredDocument {
            station: Some(parse(row.get(0), StationId::parse)?),
            snapshot: row.get(1),
            changes,
            changes_since_snapshot: row.get::<_, i64>(3).max(0) as u64,
        }))
    }

    fn commit(
        &self,
        station: StationId,
        origin: DeviceId,
        appends: &[DocAppend],
    ) -> StoreResult<Vec<u64>> {
        let mut l = self.pool.get()?;
        let (c, sx) = l.split();
        let mut tx = c.transaction()?;
        let st = station.to_string();
        // Serialise this station's commits across instances: sequence numbers are taken in
        // commit order, so no reader ever sees seq N+1 before N.
        if sx
            .query_opt(
                &mut tx,
                "SELECT 1 FROM stations WHERE station_id = $1 FOR UPDATE",
                &[&st],
            )?
            .is_none()
        {
            return Err(StoreError::NotFound("station"));
        }
        // (A statement of its own after the lock: under READ COMMITTED it sees the commit
        // it waited for.)
        let mut seq: i64 = sx
            .query_one(
                &mut tx,
                "SELECT coalesce(max(seq), 0) FROM change_log WHERE station_id = $1",
                &[&st],
            )?
            .get(0);
        let origin = origin.to_string();
        let mut last = Vec::with_capacity(appends.len());
        for a in appends {
            let doc = a.doc.to_string();
            // What the document is now, in one round trip: its station (none: new), its
            // last log sequence, and whether it was erased.
            let now = sx.query_one(
                &mut tx,
                "SELECT (SELECT station_id FROM documents WHERE doc_id = $1),
                        (SELECT coalesce(max(seq), 0) FROM change_log WHERE doc_id = $1),
                        EXISTS (SELECT 1 FROM erasures WHERE doc_id = $1)",
                &[&doc],
            )?;
            let (held, doc_last, erased): (Option<String>, i64, bool) =
                (now.get(0), now.get(1), now.get(2));
            // An erasure appends an entry under the document's id, so a commit validated
            // before it fails the check below; without one, the erasure itself says so.
            match a.expected_seq {
                None if erased => return Err(StoreError::Conflict("document erased")),
                Some(expected) if doc_last as u64 != expected => {
                    return Err(StoreError::Conflict("document changed concurrently"))
                }
                _ => {}
            }
            match held {
                Some(s) if s != st => {
                    return Err(StoreError::Conflict("document belongs to another station"))
                }
                Some(_) => {}
                None => {
                    let kind = if doc == st {
                        "station"
                    } else {
                        a.kind.as_str()
                    };
                    sx.execute(
                        &mut tx,
                        "INSERT INTO documents (doc_id, station_id, kind) VALUES ($1, $2, $3)",
                        &[&doc, &st, &kind],
                    )?;
                    // Station work is the whole station's: no assignment (ADR 0021).
                    if a.kind == doorstep_core::doc::DocKind::Household {
                        caseload::assign_to_creator(&mut tx, &st, &doc, &origin, wall_ms())?;
                    }
                }
            }
            let mut added = 0i64;
            for (hash, bytes) in &a.changes {
                let n = sx.execute(
                    &mut tx,
                    "INSERT INTO change_log (station_id, seq, doc_id, hash, bytes, origin_device)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (doc_id, hash) DO NOTHING",
                    &[&st, &(seq + 1), &doc, &&hash.0[..], bytes, &origin],
                )?;
                if n > 0 {
                    seq += 1;
                    added += 1;
                }
            }
            for s in &a.signatures {
                sx.execute(
                    &mut tx,
                    "INSERT INTO doc_signatures (doc_id, actor, hash, sig) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (doc_id, actor) DO UPDATE SET hash = $3, sig = $4",
                    &[
                        &doc,
                        &s.actor,
                        &&s.signature.hash.0[..],
                        &&s.signature.sig[..],
                    ],
                )?;
            }
            sx.execute(&mut tx, "DELETE FROM cards WHERE doc_id = $1", &[&doc])?;
            for card in &a.cards {
                sx.execute(
                    &mut tx,
                    "INSERT INTO cards (card_id, doc_id, station_id, serial, status, issued_by, issued_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (doc_id, card_id) DO NOTHING",
                    &[&card.card.to_string(), &doc, &st, &card.serial, &card.status, &card.issued_by.to_string(), &card.issued_at],
                )?;
            }
            match &a.snapshot {
                Some(snap) => {
                    sx.execute(
                        &mut tx,
                        "UPDATE documents SET snapshot = $2, snapshot_seq = $3, changes_since_snapshot = 0 WHERE doc_id = $1",
                        &[&doc, snap, &seq],
                    )?;
                }
                None => {
                    sx.execute(
                        &mut tx,
                        "UPDATE documents SET changes_since_snapshot = changes_since_snapshot + $2 WHERE doc_id = $1",
                        &[&doc, &added],
                    )?;
                }
            }
            // The station's log is locked: this commit's last entry is the document's.
            last.push(if added > 0 { seq } else { doc_last } as u64);
        }
        tx.commit()?;
        Ok(last)
    }

    fn read_log(
        &self,
        station: StationId,
        after: u64,
        reader: LogReader,
        budget: usize,
    ) -> StoreResult<LogPage> {
        // Rows are fetched in chunks that grow (a slow link's small page reads a few
        // hundred rows, not the rest of the log), up to a bound on one page's rows.
        const FIRST_CHUNK: i64 = 256;
        const MAX_CHUNK: i64 = 8_192;
        const MAX_ROWS: usize = 50_000;
        let mut l = self.pool.get()?;
        let (c, sx) = l.split();
        // The scope and the log in one snapshot (see the SQLite backend).
        let mut tx = c
            .build_transaction()
            .isolation_level(::postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let worker = reader.worker.to_string();
        let none =
            super::scope::PageScope::Known(super::scope::ReaderScope::Only(Default::default()));
        let mut page = super::scope::PageBuilder::new(station, after, reader, none, budget);
        let (mut from, mut chunk, mut read) = (after as i64, FIRST_CHUNK, 0usize);
        loop {
            let rows = sx.query(
                &mut tx,
                "SELECT seq, doc_id, bytes, origin_device, hash, kind FROM change_log WHERE station_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&station.to_string(), &from, &chunk],
            )?;
            // Nothing (more) after the cursor: no scope is read (it would sort no row).
            // Otherwise the scope of the documents these rows name, not the worker's whole
            // caseload, in the same snapshot as the rows.
            let Some(last) = rows.last() else { break };
            from = last.get(0);
            let docs: std::collections::BTreeSet<&str> =
                rows.iter().map(|r| r.get::<_, &str>(1)).collect();
            let docs = docs.into_iter().map(str::to_owned).collect();
            page.see(caseload::page_scope(sx, &mut tx, &worker, docs)?);
            let mut full = false;
            for r in &rows {
                let row = super::scope::Row {
                    seq: r.get(0),
                    kind: i64::from(r.get::<_, i16>(5)),
                    doc: r.get(1),
                    origin: r.get(3),
                };
                if !page.take(
                    row,
                    || Ok(r.get::<_, Vec<u8>>(2)),
                    || super::sqlite::stored_hash(r.get(4)),
                )? {
                    full = true;
                    break;
                }
            }
            read += rows.len();
            if full || (rows.len() as i64) < chunk {
                break;
            }
            if read >= MAX_ROWS {
                page.set_more();
                break;
            }
            chunk = (chunk * 2).min(MAX_CHUNK);
        }
        tx.commit()?;
        page.finish()
    }

    fn erase_document(
        &self,
        station: StationId,
        doc: HouseholdId,
        reason: ErasureReason,
        erased_by: &str,
        now_ms: i64,
    ) -> StoreResult<ErasureRecord> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let st = station.to_string();
        let d = doc.to_string();
        // The station's commits are serialised on its row (see `commit`).
        if tx
            .query_opt(
                "SELECT 1 FROM stations WHERE station_id = $1 FOR UPDATE",
                &[&st],
            )?
            .is_none()
        {
            return Err(StoreError::NotFound("station"));
        }
        if let Some(r) = tx.query_opt(
            &format!("SELECT {ERASURE_COLUMNS} FROM erasures WHERE doc_id = $1"),
            &[&d],
        )? {
            let record = erasure_record(&r)?;
            if record.station != station {
                return Err(StoreError::Conflict("document belongs to another station"));
            }
            return Ok(record);
        }
        if let Some(r) =
            tx.query_opt("SELECT station_id FROM documents WHERE doc_id = $1", &[&d])?
        {
            if r.get::<_, String>(0) != st {
                return Err(StoreError::Conflict("document belongs to another station"));
            }
        }
        let seq = close_history(&mut tx, &st, &d, &erasure_entry_bytes(reason, now_ms), 2)?;
        for table in [
            "documents",
            "doc_signatures",
            "cards",
            "rm_households",
            "rm_visits",
            "rm_follow_ups",
            "rm_facts",
            "rm_work",
        ] {
            tx.execute(&format!("DELETE FROM {table} WHERE doc_id = $1"), &[&d])?;
        }
        tx.execute("DELETE FROM console_access WHERE target = $1", &[&d])?;
        tx.execute("DELETE FROM device_access WHERE doc_id = $1", &[&d])?;
        blobs::erase_doc(&mut tx, &d)?;
        tx.execute(
            &format!("INSERT INTO erasures ({ERASURE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"),
            &[&st, &d, &seq, &now_ms, &erased_by, &reason.as_str()],
        )?;
        tx.commit()?;
        Ok(ErasureRecord {
            station,
            doc,
            seq: seq as u64,
            erased_at: now_ms,
            erased_by: erased_by.to_owned(),
            reason,
        })
    }

    fn redact_document(
        &self,
        station: StationId,
        notice: &doorstep_core::protocol::RedactionNotice,
        snapshot: &[u8],
        expected_seq: u64,
        kept_blobs: &[doorstep_core::BlobHash],
    ) -> StoreResult<u64> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let st = station.to_string();
        let d = notice.doc.to_string();
        // The station's commits are serialised on its row (see `commit`).
        if tx
            .query_opt(
                "SELECT 1 FROM stations WHERE station_id = $1 FOR UPDATE",
                &[&st],
            )?
            .is_none()
        {
            return Err(StoreError::NotFound("station"));
        }
        match tx.query_opt("SELECT station_id FROM documents WHERE doc_id = $1", &[&d])? {
            None => return Err(StoreError::NotFound("household")),
            Some(r) if r.get::<_, String>(0) != st => {
                return Err(StoreError::Conflict("document belongs to another station"))
            }
            Some(_) => {}
        }
        let last: i64 = tx
            .query_one(
                "SELECT coalesce(max(seq), 0) FROM change_log WHERE doc_id = $1",
                &[&d],
            )?
            .get(0);
        if last as u64 != expected_seq {
            return Err(StoreError::Conflict("the household changed meanwhile"));
        }
        let seq = close_history(&mut tx, &st, &d, &notice.encode(), 4)?;
        tx.execute(
            "UPDATE documents SET snapshot = $2, snapshot_seq = $3, changes_since_snapshot = 0 WHERE doc_id = $1",
            &[&d, &snapshot, &seq],
        )?;
        tx.execute("DELETE FROM doc_signatures WHERE doc_id = $1", &[&d])?;
        // The console's rows hold the old values: read again from the generation by the
        // caller.
        for table in ["rm_households", "rm_visits", "rm_follow_ups", "rm_facts"] {
            tx.execute(&format!("DELETE FROM {table} WHERE doc_id = $1"), &[&d])?;
        }
        // Blobs are kept per station (ADR 0032).
        let kept: Vec<crate::store::blobs::BlobKey> = kept_blobs
            .iter()
            .map(|h| crate::store::blobs::BlobKey::new(station, *h))
            .collect();
        blobs::release_doc(&mut tx, &d, &kept)?;
        tx.commit()?;
        Ok(seq as u64)
    }

    fn redaction_notice(
        &self,
        doc: HouseholdId,
    ) -> StoreResult<Option<doorstep_core::protocol::RedactionNotice>> {
        let row = self.pool.get()?.prepared_opt(
            "SELECT bytes FROM change_log WHERE doc_id = $1 AND kind = 4 ORDER BY seq DESC LIMIT 1",
            &[&doc.to_string()],
        )?;
        row.map(|r| redaction_from_entry(&r.get::<_, Vec<u8>>(0)))
            .transpose()
    }

    fn erasure(&self, doc: HouseholdId) -> StoreResult<Option<ErasureRecord>> {
        let row = self.pool.get()?.prepared_opt(
            &format!("SELECT {ERASURE_COLUMNS} FROM erasures WHERE doc_id = $1"),
            &[&doc.to_string()],
        )?;
        row.as_ref().map(erasure_record).transpose()
    }

    fn erasures(&self, station: Option<StationId>) -> StoreResult<Vec<ErasureRecord>> {
        let rows = self.pool.get()?.query(
            &format!(
                "SELECT {ERASURE_COLUMNS} FROM erasures WHERE $1::text IS NULL OR station_id = $1
                 ORDER BY erased_at, doc_id"
            ),
            &[&station.map(|s| s.to_string())],
        )?;
        rows.iter().map(erasure_record).collect()
    }

    fn high_water(&self, station: StationId) -> StoreResult<u64> {
        let seq: i64 = self
            .pool
            .get()?
            .prepared_one(
                "SELECT coalesce(max(seq), 0) FROM change_log WHERE station_id = $1",
                &[&station.to_string()],
            )?
            .get(0);
        Ok(seq as u64)
    }

    fn document_seq(&self, doc: HouseholdId) -> StoreResult<u64> {
        let seq: i64 = self
            .pool
            .get()?
            .prepared_one(
                "SELECT coalesce(max(seq), 0) FROM change_log WHERE doc_id = $1",
                &[&doc.to_string()],
            )?
            .get(0);
        Ok(seq as u64)
    }

    fn cards_by_serial(&self, station: StationId, serial: &str) -> StoreResult<Vec<CardRow>> {
        self.card_rows(
            "station_id = $1 AND serial = $2",
            &[&station.to_string(), &serial],
        )
    }

    fn duplicate_cards(&self, station: StationId) -> StoreResult<Vec<CardRow>> {
        self.card_rows(
            "station_id = $1 AND status = 'issued' AND serial IN
               (SELECT serial FROM cards WHERE station_id = $1 AND status = 'issued' GROUP BY serial HAVING count(*) > 1)",
            &[&station.to_string()],
        )
    }

    fn cards_issued_by(
        &self,
        station: StationId,
        worker: WorkerId,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<CardRow>> {
        self.card_rows(
            "station_id = $1 AND issued_by = $2 AND issued_at BETWEEN $3 AND $4",
            &[&station.to_string(), &worker.to_string(), &from_ms, &to_ms],
        )
    }

    fn record_accesses(
        &self,
        auth: &DeviceAuth,
        accesses: &[Access],
        now_ms: i64,
    ) -> StoreResult<usize> {
        if accesses.is_empty() {
            return Ok(0);
        }
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        // Only a household of the device's station that is held here (not its station
        // document): anything else is dropped, exactly as an entry already kept is.
        let ins = tx.prepare(
            "INSERT INTO device_access (device_id, doc_id, at, station_id, worker_id, received_at)
             SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS
                 (SELECT 1 FROM documents WHERE doc_id = $2 AND station_id = $4 AND doc_id <> $4)
             ON CONFLICT DO NOTHING",
        )?;
        let (device, station, worker) = (
            auth.device.to_string(),
            auth.station.to_string(),
            auth.worker.to_string(),
        );
        let mut kept = 0;
        for a in accesses {
            kept += tx.execute(
                &ins,
                &[
                    &device,
                    &a.household.to_string(),
                    &a.at,
                    &station,
                    &worker,
                    &now_ms,
                ],
            )?;
        }
        tx.commit()?;
        Ok(kept as usize)
    }

    fn list_documents(
        &self,
        station: StationId,
        after: Option<HouseholdId>,
        limit: usize,
        scoped: Option<WorkerId>,
    ) -> StoreResult<Vec<HouseholdId>> {
        let mut c = self.pool.get()?;
        let mut tx = c
            .build_transaction()
            .isolation_level(::postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let scope = match scoped {
            Some(w) => Some(caseload::reader_scope(
                &Statements::default(),
                &mut tx,
                &w.to_string(),
            )?),
            None => None,
        };
        let st = station.to_string();
        let mut last = after.map(|a| a.to_string()).unwrap_or_default();
        let mut out = Vec::new();
        loop {
            let rows = tx.query(
                "SELECT doc_id FROM documents WHERE station_id = $1 AND doc_id > $2 ORDER BY doc_id LIMIT $3",
                &[&st, &last, &(limit as i64)],
            )?;
            let done = rows.len() < limit;
            for r in &rows {
                let id: String = r.get(0);
                if scope.as_ref().is_none_or(|s| id == st || s.contains(&id)) {
                    out.push(parse(&id, HouseholdId::parse)?);
                }
                last = id;
            }
            if done || out.len() >= limit {
                tx.commit()?;
                out.truncate(limit);
                return Ok(out);
            }
        }
    }

    fn worker_access(&self, worker: WorkerId) -> StoreResult<Option<WorkerAccess>> {
        {
            let mut l = self.pool.get()?;
            let (c, sx) = l.split();
            caseload::worker_row(sx, c, &worker.to_string())?
        }
        .map(|(station, role, team)| {
            Ok(WorkerAccess {
                station: parse(&station, StationId::parse)?,
                role,
                team: super::scope::stored_team(team.as_deref())?,
            })
        })
        .transpose()
    }

    fn set_role(
        &self,
        worker: WorkerId,
        role: doorstep_core::Role,
        now_ms: i64,
    ) -> StoreResult<Rescoped> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let out = caseload::rescope(&mut tx, worker, Some(role), None, now_ms)?;
        tx.commit()?;
        Ok(out)
    }

    fn set_team(
        &self,
        worker: WorkerId,
        team: Option<&doorstep_core::TeamName>,
        now_ms: i64,
    ) -> StoreResult<Rescoped> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let out = caseload::rescope(&mut tx, worker, None, Some(team), now_ms)?;
        tx.commit()?;
        Ok(out)
    }

    fn assign(
        &self,
        station: StationId,
        doc: HouseholdId,
        worker: Option<WorkerId>,
        team: Option<&doorstep_core::TeamName>,
        assigned_by: &str,
        now_ms: i64,
    ) -> StoreResult<Rescoped> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let out = caseload::assign(&mut tx, station, doc, worker, team, assigned_by, now_ms)?;
        tx.commit()?;
        Ok(out)
    }

    fn assignment(&self, doc: HouseholdId) -> StoreResult<Option<Assignment>> {
        caseload::assignment(&mut *self.pool.get()?, doc)
    }

    fn in_scope(&self, worker: WorkerId, doc: HouseholdId) -> StoreResult<bool> {
        let mut l = self.pool.get()?;
        let (c, sx) = l.split();
        caseload::in_scope(sx, c, worker, doc)
    }

    fn scope_exit(&self, worker: WorkerId, doc: HouseholdId) -> StoreResult<Option<ScopeExit>> {
        let mut l = self.pool.get()?;
        let (c, sx) = l.split();
        caseload::scope_exit(sx, c, worker, doc)
    }

    fn scope_exits(&self, worker: WorkerId) -> StoreResult<Vec<HouseholdId>> {
        caseload::scope_exits(&mut *self.pool.get()?, worker)
    }

    fn scope_documents(&self, worker: WorkerId) -> StoreResult<Vec<HouseholdId>> {
        caseload::scope_documents(&mut *self.pool.get()?, worker)
    }

    fn retire(&self, station: StationId, doc: HouseholdId, now_ms: i64) -> StoreResult<Rescoped> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let out = caseload::set_retired(&mut tx, station, doc, true, now_ms)?;
        tx.commit()?;
        Ok(out)
    }

    fn reopen(&self, station: StationId, doc: HouseholdId, now_ms: i64) -> StoreResult<Rescoped> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let out = caseload::set_retired(&mut tx, station, doc, false, now_ms)?;
        tx.commit()?;
        Ok(out)
    }

    fn retirement(&self, doc: HouseholdId) -> StoreResult<Option<Retirement>> {
        caseload::retirement(&mut *self.pool.get()?, doc)
    }
}

/// The wall clock (ms since the Unix epoch), for records the store stamps itself.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Close a household's history in the log, inside the caller's transaction (an erasure,
/// ADR 0016, or a redaction, ADR 0026): every entry of the document keeps its sequence
/// number but loses its bytes and hash; one new entry of `kind` with `bytes` takes the
/// station's next number, which is returned.
fn close_history(
    tx: &mut ::postgres::Transaction<'_>,
    station: &str,
    doc: &str,
    bytes: &[u8],
    kind: i16,
) -> StoreResult<i64> {
    let seq: i64 = tx
        .query_one(
            "SELECT coalesce(max(seq), 0) + 1 FROM change_log WHERE station_id = $1",
            &[&station],
        )?
        .get(0);
    tx.execute(
        "UPDATE change_log SET kind = 1, bytes = ''::bytea,
           hash = convert_to(lpad(seq::text, 32, '0'), 'UTF8') WHERE doc_id = $1",
        &[&doc],
    )?;
    tx.execute(
        "INSERT INTO change_log (station_id, seq, doc_id, hash, bytes, origin_device, kind)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &station,
            &seq,
            &doc,
            &format!("{seq:032}").into_bytes(),
            &bytes,
            &Uuid::nil().to_string(),
            &kind,
        ],
    )?;
    Ok(seq)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod upgrade_tests {
    use doorstep_core::BlobHash;

    use super::*;
    use crate::store::blobs::{BlobKey, BlobStore};

    /// Schema 16 (ADR 0032) on a PostgreSQL store of schema 15 with blobs, as the SQLite
    /// test of the same name: each blob keyed by the station of every household that
    /// references it (copied when two stations do), with its chunks, tail and references.
    /// Runs when DOORSTEP_TEST_POSTGRES names a database (CI sets it).
    #[test]
    fn schema_16_keys_the_blobs_of_an_older_store_by_station() {
        let Ok(url) = std::env::var("DOORSTEP_TEST_POSTGRES") else {
            eprintln!("DOORSTEP_TEST_POSTGRES not set: PostgreSQL upgrade skipped");
            return;
        };
        let schema = format!("up16_{}", Uuid::new_v4().simple());
        let mut c = Client::connect(&url, ::postgres::NoTls).unwrap();
        c.batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path = {schema}"
        ))
        .unwrap();
        for sql in &MIGRATIONS[..15] {
            c.batch_execute(sql).unwrap();
        }
        c.batch_execute(
            "CREATE TABLE schema_version (version BIGINT NOT NULL);
             INSERT INTO schema_version VALUES (15)",
        )
        .unwrap();
        let (a, b) = (StationId::new(), StationId::new());
        let (da, db) = (HouseholdId::new(), HouseholdId::new());
        let bytes = b"a photo both stations hold".as_slice();
        let partial = b"half a signature".as_slice();
        let (h, p) = (BlobHash::of(bytes), BlobHash::of(partial));
        for (station, doc) in [(a, da), (b, db)] {
            c.execute(
                "INSERT INTO stations (station_id, name, created_at) VALUES ($1, '站', 1)",
                &[&station.to_string()],
            )
            .unwrap();
            c.execute(
                "INSERT INTO documents (doc_id, station_id) VALUES ($1, $2)",
                &[&doc.to_string(), &station.to_string()],
            )
            .unwrap();
            c.execute(
                "INSERT INTO blob_refs (hash, doc_id) VALUES ($1, $2)",
                &[&h.0.as_slice(), &doc.to_string()],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO blob_refs (hash, doc_id) VALUES ($1, $2)",
            &[&p.0.as_slice(), &da.to_string()],
        )
        .unwrap();
        c.execute(
            "INSERT INTO blobs (hash, size, received, complete, uploader, created_at, touched_at)
             VALUES ($1, $2, $2, TRUE, 'dev', 1, 1), ($3, $4, 4, FALSE, 'dev', 1, 7)",
            &[
                &h.0.as_slice(),
                &(bytes.len() as i64),
                &p.0.as_slice(),
                &(partial.len() as i64),
            ],
        )
        .unwrap();
        c.execute(
            "INSERT INTO blob_chunks (hash, pos, bytes) VALUES ($1, 0, $2), ($3, 0, $4)",
            &[&h.0.as_slice(), &bytes, &p.0.as_slice(), &&partial[..4]],
        )
        .unwrap();
        c.execute(
            "INSERT INTO blob_tails (hash, pos, bytes) VALUES ($1, 4, $2)",
            &[&p.0.as_slice(), &&partial[4..8]],
        )
        .unwrap();

        let store = PostgresStore::open(&url, Some(&schema), 2).unwrap();
        for (station, doc) in [(a, da), (b, db)] {
            let key = BlobKey::new(station, h);
            assert!(store.blob(&key).unwrap().unwrap().complete);
            assert_eq!(store.read_blob(&key, 0, 100).unwrap(), bytes);
            assert!(store.blob_referenced(&key, doc).unwrap());
        }
        let pa = BlobKey::new(a, p);
        assert_eq!(store.blob(&pa).unwrap().unwrap().received, 4);
        assert_eq!(
            store.blob_tail(&pa).unwrap(),
            Some((4, partial[4..8].to_vec()))
        );
        assert_eq!(store.blob(&BlobKey::new(b, p)).unwrap(), None);
        let bare: i64 = c
            .query_one(
                "SELECT (SELECT count(*) FROM blobs WHERE octet_length(hash) <> 48)
                      + (SELECT count(*) FROM blob_chunks WHERE octet_length(hash) <> 48)
                      + (SELECT count(*) FROM blob_tails WHERE octet_length(hash) <> 48)
                      + (SELECT count(*) FROM blob_refs WHERE octet_length(hash) <> 48)",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(bare, 0);
        assert_eq!(store.blob_stats().unwrap().complete, 2);
        drop(store);
        c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .unwrap();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod statement_tests {
    use automerge::ChangeHash;

    use super::*;

    fn doc_append(doc: HouseholdId, h: u8, expected_seq: Option<u64>) -> DocAppend {
        DocAppend {
            doc,
            kind: doorstep_core::doc::DocKind::Household,
            changes: vec![(ChangeHash([h; 32]), vec![h; 8])],
            snapshot: None,
            cards: Vec::new(),
            expected_seq,
            signatures: Vec::new(),
        }
    }

    /// The commit's statements are prepared once on a connection and reused, also after a
    /// commit that was refused (its transaction rolled back): the connection then holds
    /// each of them once, and the next commits get the right sequence numbers.
    #[test]
    fn a_connection_prepares_the_commit_once_and_keeps_it_through_a_rollback() {
        let Ok(url) = std::env::var("DOORSTEP_TEST_POSTGRES") else {
            eprintln!("DOORSTEP_TEST_POSTGRES not set: PostgreSQL statement cache skipped");
            return;
        };
        let schema = format!("stmts_{}", Uuid::new_v4().simple());
        let store = PostgresStore::open(&url, Some(&schema), 2).unwrap();
        let station = store.create_station("站", 1).unwrap();
        let device = DeviceId::new();
        let doc = HouseholdId::new();
        assert_eq!(
            store
                .commit(station, device, &[doc_append(doc, 1, None)])
                .unwrap(),
            vec![1]
        );
        assert!(matches!(
            store.commit(station, device, &[doc_append(doc, 2, Some(7))]),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            store
                .commit(station, device, &[doc_append(doc, 2, Some(1))])
                .unwrap(),
            vec![2]
        );
        // A change already held adds nothing: the document's last entry is still 2.
        assert_eq!(
            store
                .commit(station, device, &[doc_append(doc, 2, Some(2))])
                .unwrap(),
            vec![2]
        );
        // One thread, a LIFO pool: every call above ran on the same connection.
        let mut lease = store.pool.get().unwrap();
        let rows = lease
            .query(
                "SELECT statement, count(*) FROM pg_prepared_statements
                 WHERE statement LIKE '%change_log%' GROUP BY statement",
                &[],
            )
            .unwrap();
        assert!(rows.len() >= 3, "commit's log statements prepared");
        for r in &rows {
            assert_eq!(
                r.get::<_, i64>(1),
                1,
                "prepared once: {}",
                r.get::<_, &str>(0)
            );
        }
        drop(lease);
        drop(store);
        let mut c = Client::connect(&url, ::postgres::NoTls).unwrap();
        c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .unwrap();
    }
}
