//! The embedded default backend: one SQLite file in the data directory, WAL mode.
//!
//! Writes go through one writer connection with **group commit** (ADR 0009): a write that
//! arrives while another is being committed waits for the writer, then runs in the same
//! transaction as every other write that waited with it, each in a `SAVEPOINT` of its own;
//! the last of them to run commits the lot with one `COMMIT` (one WAL fsync under
//! `synchronous=FULL`), and each caller gets its answer only once that `COMMIT` is durable.
//! A write that fails rolls back its own savepoint and gets its own error; the others go on.
//! Reads use a few connections of their own, which see the last commit (WAL) and never a
//! transaction still being grouped.
//!
//! **Encryption at rest** (ADR 0014): a store opened with a [`ServerKey`] is a SQLCipher
//! database (raw 256-bit key, as on the devices: ADR 0003), and so are its WAL and its
//! backups; files are created mode 0600 and the data directory 0700. Opening tells a wrong
//! key from a file that is not a database, from a plaintext database and from damage, and
//! writes nothing to a file it cannot read. [`SqliteStore::open`] without a key is the
//! plaintext store that tests and tools use; `doorstep-server` always opens with a key.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use doorstep_core::{CardIssuanceId, DeviceId, HouseholdId, StationId, WorkerId};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

mod blobs;
mod caseload;
mod console;

use super::key::{private_file_options, ServerKey};
use super::*;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_signers.sql"),
    include_str!("migrations/0003_console.sql"),
    include_str!("migrations/0004_last_sync.sql"),
    include_str!("migrations/0005_erasure.sql"),
    include_str!("migrations/0006_scope.sql"),
    include_str!("migrations/0007_device_access.sql"),
    include_str!("migrations/0008_search_rows.sql"),
    include_str!("migrations/0009_county_accounts.sql"),
    include_str!("migrations/0010_document_kind.sql"),
    include_str!("migrations/0011_work_read_model.sql"),
    include_str!("migrations/0012_phone_retirements.sql"),
    include_str!("migrations/0013_blobs.sql"),
    include_str!("migrations/0014_station_zone_login_clients.sql"),
    include_str!("migrations/0015_blob_touched.sql"),
    include_str!("migrations/0016_blobs_per_station.sql"),
    include_str!("migrations/0017_search_per_record.sql"),
];

/// Read connections: reads of different requests run side by side (each is short).
const READERS: usize = 4;
/// The writer connection's page cache, KiB.
const WRITER_CACHE_KIB: u32 = 32 * 1024;
/// At most this many writes share one transaction (bounds the wait of the first).
const MAX_GROUP: usize = 64;

/// The SQLite backend: a writer connection with group commit, and a few readers.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    group: Mutex<Group>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    transactions: AtomicU64,
    writes: AtomicU64,
    /// The database's key (`None`: a plaintext store), for its backups.
    /// (Boxed: it keeps `AnyStore`'s variants of similar size.)
    key: Option<Box<ServerKey>>,
}

/// The writes being grouped.
#[derive(Default)]
struct Group {
    /// Writes that have called in and not yet run their part: while there are any, the
    /// transaction stays open for them.
    waiting: usize,
    /// The transaction open on the writer, and how many writes ran in it.
    open: Option<(Arc<Batch>, usize)>,
}

/// One grouped transaction, for the writes that ran in it and wait for its `COMMIT`.
#[derive(Default)]
struct Batch {
    /// `None` until committed (`Ok`) or rolled back (`Err`, why).
    outcome: Mutex<Option<Result<(), String>>>,
    done: Condvar,
}

impl Batch {
    fn finish(&self, outcome: Result<(), String>) {
        *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        self.done.notify_all();
    }

    fn wait(&self) -> Result<(), String> {
        let mut outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(o) = outcome.as_ref() {
                return o.clone();
            }
            outcome = self.done.wait(outcome).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// How one write's part of a grouped transaction went.
enum Part<T> {
    /// Done; its savepoint released into the transaction.
    Done(T),
    /// Refused (its own error): its savepoint rolled back, the transaction goes on.
    Refused(StoreError),
    /// The transaction itself failed: the caller gets its error, the group the message.
    Broken(StoreError, String),
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

/// A stored change hash (32 bytes).
pub(crate) fn stored_hash(bytes: Vec<u8>) -> StoreResult<ChangeHash> {
    let h: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Database("stored hash is not 32 bytes".into()))?;
    Ok(ChangeHash(h))
}

/// A stored signature row.
pub(crate) fn stored_signature(
    actor: Vec<u8>,
    hash: Vec<u8>,
    sig: Vec<u8>,
) -> StoreResult<AuthorSignature> {
    let sig: [u8; 64] = sig
        .try_into()
        .map_err(|_| StoreError::Database("stored signature is not 64 bytes".into()))?;
    Ok(AuthorSignature {
        actor,
        signature: doorstep_core::protocol::ChangeSignature {
            hash: stored_hash(hash)?,
            sig,
        },
    })
}

fn parse<T>(s: &str, f: impl Fn(&str) -> Result<T, doorstep_core::Error>) -> StoreResult<T> {
    f(s).map_err(|_| StoreError::Database("malformed id in database".into()))
}

fn connect(path: &Path, key: Option<&ServerKey>) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    if let Some(key) = key {
        apply_key(&conn, key)?;
    }
    conn.busy_timeout(Duration::from_secs(30))?;
    // Sorts and temporary tables stay in memory: never a plaintext temporary file.
    conn.execute_batch("PRAGMA temp_store = MEMORY;")?;
    Ok(conn)
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Keyings of this process, one at a time, each tried again a few times if it fails (see
/// core's `store/db.rs`: concurrent keyings were seen to fail `PRAGMA key` now and then).
static KEYING: Mutex<()> = Mutex::new(());

fn apply_key(conn: &Connection, key: &ServerKey) -> StoreResult<()> {
    let _one_at_a_time = KEYING.lock().unwrap_or_else(|p| p.into_inner());
    let mut attempt = 0;
    loop {
        attempt += 1;
        match apply_key_now(conn, key) {
            Err(_) if attempt < 4 => std::thread::sleep(Duration::from_millis(10 * attempt)),
            other => return other,
        }
    }
}

fn apply_key_now(conn: &Connection, key: &ServerKey) -> StoreResult<()> {
    let fail = |_| StoreError::Database("cannot apply the database key (SQLCipher)".into());
    // SQLCipher logs decryption failures to stderr by default; the caller gets the error.
    conn.execute_batch("PRAGMA cipher_log_level = NONE;")
        .map_err(fail)?;
    // The key never appears in an error message: rusqlite's errors do not quote the SQL.
    conn.execute_batch(&format!("PRAGMA key = \"{}\";", key.sqlcipher_raw()))
        .map_err(fail)?;
    Ok(())
}

/// Create `dir` (and its missing parents) readable by the owner only.
pub(crate) fn create_private_dir(dir: &Path) -> StoreResult<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| {
        StoreError::Database(format!("cannot create directory {}: {e}", dir.display()))
    })
}

/// The database file and its companions (`-wal`, `-shm`, `-journal`).
fn companions(path: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", path.display())))
        .collect()
}

/// Make the database file exist with mode 0600 before SQLite opens it (SQLite creates the
/// WAL, shared-memory and journal files with the database file's mode), and take group and
/// other permissions away from files an older server created 0644.
fn prepare_file(path: &Path) -> StoreResult<()> {
    let io = |e: std::io::Error| StoreError::Database(format!("{}: {e}", path.display()));
    if !path.exists() {
        match private_file_options().open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
    }
    #[cfg(unix)]
    for file in companions(path) {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(&file) {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))
                    .map_err(io)?;
                tracing::warn!(file = %file.display(), "database file was readable by others: now 0600");
            }
        }
    }
    Ok(())
}

/// What the first bytes of a database file say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Header {
    /// Missing or empty: a new database.
    Empty,
    /// `SQLite format 3`: a plaintext SQLite database.
    Plaintext,
    /// Anything else (an encrypted database looks like random bytes).
    Other,
}

fn header(path: &Path) -> Header {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else {
        return Header::Empty;
    };
    let mut head = [0u8; 16];
    match f.read(&mut head) {
        Ok(0) | Err(_) => Header::Empty,
        Ok(16) if &head == SQLITE_HEADER => Header::Plaintext,
        Ok(_) => Header::Other,
    }
}

fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ffi::ErrorCode::NotADatabase)
    )
}

fn no_checkpoint_on_close(conn: &Connection, on: bool) -> StoreResult<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        on,
    )?;
    Ok(())
}

/// Open `path` with `key` (`None`: plaintext) and check that it reads: a connection that
/// is ready for use, or an error that says why not (wrong key, plaintext, not a database,
/// damaged). A file that does not read is left byte for byte as it was.
fn open_checked(path: &Path, key: Option<&ServerKey>) -> StoreResult<Connection> {
    let shown = || path.display().to_string();
    match (header(path), key) {
        (Header::Plaintext, Some(_)) => return Err(StoreError::NotEncrypted(shown())),
        (Header::Other, None) => {
            return Err(match diagnose(path, None) {
                StoreError::WrongKey(p) => StoreError::KeyRequired(p),
                e => e,
            })
        }
        _ => {}
    }
    let conn = connect(path, key)?;
    // Until the file is known to read, closing must not fold a WAL into it.
    no_checkpoint_on_close(&conn, true)?;
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => {}
        Err(e) if is_not_a_database(&e) => {
            drop(conn);
            return Err(diagnose(path, key));
        }
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ffi::ErrorCode::DatabaseCorrupt) => {
            return Err(StoreError::Damaged(shown()))
        }
        Err(e) => return Err(e.into()),
    }
    no_checkpoint_on_close(&conn, false)?;
    Ok(conn)
}

/// The first page did not decrypt (ADR 0003's diagnosis): a file that does not look
/// encrypted is not a database; with a key, SQLCipher's `cipher_integrity_check` checks
/// each page's HMAC on its own: every page failing means a wrong key, some failing means
/// damage.
fn diagnose(path: &Path, key: Option<&ServerKey>) -> StoreError {
    use doorstep_core::store::sqlcipher::{could_be_encrypted_database, key_or_damage, Diagnosis};
    let shown = path.display().to_string();
    if !could_be_encrypted_database(path) {
        return StoreError::NotADatabase(shown);
    }
    let Some(key) = key else {
        return StoreError::WrongKey(shown);
    };
    let Ok(conn) = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return StoreError::NotADatabase(shown);
    };
    if apply_key(&conn, key).is_err() || no_checkpoint_on_close(&conn, true).is_err() {
        return StoreError::WrongKey(shown);
    }
    match key_or_damage(&conn, path) {
        Diagnosis::Damaged => StoreError::Damaged(shown),
        Diagnosis::WrongKey | Diagnosis::NotADatabase => StoreError::WrongKey(shown),
    }
}

/// Copy everything of the open database `conn` into the new file `dest` (created 0600,
/// must not exist), encrypted with `key` (`None`: plaintext), in one read transaction (a
/// consistent copy while the server writes). The schema version goes along. A failed copy
/// removes what it wrote.
fn export_to(conn: &Connection, dest: &Path, key: Option<&ServerKey>) -> StoreResult<()> {
    let dest_str = dest
        .to_str()
        .ok_or(StoreError::Database("destination path is not UTF-8".into()))?;
    private_file_options()
        .open(dest)
        .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", dest.display())))?;
    let copy = || -> StoreResult<()> {
        let raw = key.map(ServerKey::sqlcipher_raw).unwrap_or_default();
        conn.execute(
            "ATTACH DATABASE ?1 AS export KEY ?2",
            params![dest_str, raw],
        )?;
        let copied = (|| -> StoreResult<()> {
            // The copy's b-trees split as rows go in: without this, a split leaves the moved
            // rows' old bytes in the free space of their first page, where a later erasure
            // or redaction of the restored copy, which zeroes only the live row, does not
            // reach (docs/reliability.md, finding 15).
            conn.execute_batch("PRAGMA export.secure_delete = ON")?;
            conn.execute_batch("BEGIN")?;
            let version: i64 = conn.query_row("PRAGMA main.user_version", [], |r| r.get(0))?;
            conn.query_row("SELECT sqlcipher_export('export')", [], |_| Ok(()))?;
            conn.execute_batch(&format!("PRAGMA export.user_version = {version}"))?;
            conn.execute_batch("COMMIT")?;
            Ok(())
        })();
        if copied.is_err() {
            rollback(conn);
        }
        let detached = conn.execute_batch("DETACH DATABASE export");
        copied?;
        detached?;
        std::fs::File::open(dest)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::Database(format!("{}: {e}", dest.display())))?;
        Ok(())
    };
    copy().inspect_err(|_| {
        for f in companions(dest) {
            let _ = std::fs::remove_file(f);
        }
    })
}

/// fsync a directory, so that a rename in it survives power loss.
fn sync_dir(dir: &Path) -> StoreResult<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::Database(format!("{}: {e}", dir.display())))
}

/// Fold the WAL into the database and leave WAL mode, which succeeds only when no other
/// connection (a running server, another admin command) has the database open.
fn take_exclusive(conn: &Connection) -> StoreResult<()> {
    conn.busy_timeout(Duration::from_millis(200))?;
    let busy = |_| StoreError::InUse;
    let (blocked, _, _): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(busy)?;
    if blocked != 0 {
        return Err(StoreError::InUse);
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(busy)?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(StoreError::InUse);
    }
    Ok(())
}

/// Row counts of every table, to check a copy against its original.
fn table_counts(conn: &Connection) -> StoreResult<Vec<(String, i64)>> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    tables
        .into_iter()
        .map(|t| {
            let n: i64 = conn.query_row(
                &format!("SELECT count(*) FROM \"{}\"", t.replace('"', "\"\"")),
                [],
                |r| r.get(0),
            )?;
            Ok((t, n))
        })
        .collect()
}

impl SqliteStore {
    /// Open (or create) `server.db` in `dir`, **unencrypted**: for tests and tools.
    /// `doorstep-server` opens its data with [`SqliteStore::open_encrypted`].
    pub fn open(dir: &Path) -> StoreResult<Self> {
        create_private_dir(dir)?;
        Self::open_file(&dir.join("server.db"))
    }

    /// Open (or create) the encrypted `server.db` in `dir` with its key.
    pub fn open_encrypted(dir: &Path, key: &ServerKey) -> StoreResult<Self> {
        create_private_dir(dir)?;
        Self::open_file_with(&dir.join("server.db"), Some(key))
    }

    /// Open (or create) a plaintext database file.
    pub fn open_file(path: &Path) -> StoreResult<Self> {
        Self::open_file_with(path, None)
    }

    /// Open (or create) a database file with its key (`None`: plaintext).
    pub fn open_file_with(path: &Path, key: Option<&ServerKey>) -> StoreResult<Self> {
        prepare_file(path)?;
        let mut conn = open_checked(path, key)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        // Deleted bytes are overwritten with zeros, in b-tree pages and freed pages alike:
        // an erased household leaves nothing behind in the file (ADR 0016).
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
        )?;
        // The writer keeps its pages between its transactions (readers lose theirs whenever
        // another connection commits): a page read again from the file is decrypted and its
        // HMAC checked again, the largest part of SQLCipher's cost in a sync. 32 MiB.
        conn.execute_batch(&format!("PRAGMA cache_size = -{WRITER_CACHE_KIB};"))?;
        let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let latest = MIGRATIONS.len() as i64;
        if current > latest {
            return Err(StoreError::SchemaTooNew {
                found: current,
                supported: latest,
            });
        }
        for v in current..latest {
            let tx = conn.transaction()?;
            tx.execute_batch(MIGRATIONS[v as usize])?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", v + 1))?;
            tx.commit()?;
        }
        conn.execute(
            "INSERT OR IGNORE INTO server_meta (key, value) VALUES ('epoch', ?1)",
            [Uuid::new_v4().to_string()],
        )?;
        // Space freed before `secure_delete` was on may hold deleted bytes: rewrite the file
        // once (the migration that turned it on asks for this).
        let pending: Option<String> = conn
            .query_row(
                "SELECT value FROM server_meta WHERE key = 'vacuum_pending'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if pending.is_some() {
            conn.execute_batch("VACUUM")?;
            conn.execute("DELETE FROM server_meta WHERE key = 'vacuum_pending'", [])?;
        }
        // No old page image outlives a restart in the WAL (an erasure whose truncation
        // readers held off is completed here).
        checkpoint_truncate(&conn);
        let readers = (0..READERS)
            .map(|_| {
                let r = connect(path, key)?;
                r.execute_batch("PRAGMA foreign_keys = ON;")?;
                Ok(Mutex::new(r))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        prepare_file(path)?;
        Ok(SqliteStore {
            writer: Mutex::new(conn),
            group: Mutex::new(Group::default()),
            readers,
            next_reader: AtomicUsize::new(0),
            transactions: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            key: key.cloned().map(Box::new),
        })
    }

    /// Whether the database is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.key.is_some()
    }

    /// Write a consistent copy of the database to the new file `dest` (mode 0600), while
    /// serving, encrypted with the database's own key (a plaintext store gives a plaintext
    /// copy). Restoring it: [`SqliteStore::restore`] (`doorstep-server restore`), which
    /// starts a new epoch.
    pub fn backup(&self, dest: &Path) -> StoreResult<()> {
        self.backup_with_key(dest, self.key.as_deref())
    }

    /// [`SqliteStore::backup`] encrypted with another key (`None`: plaintext).
    pub fn backup_with_key(&self, dest: &Path, key: Option<&ServerKey>) -> StoreResult<()> {
        if dest.exists() {
            return Err(StoreError::Database(format!(
                "{} exists: a backup is never written over a file",
                dest.display()
            )));
        }
        // A connection of its own: the copy runs without foreign-key checks (tables are
        // copied one by one) and holds no reader.
        let conn = connect(&self.path()?, self.key.as_deref())?;
        export_to(&conn, dest, key)
    }

    fn path(&self) -> StoreResult<PathBuf> {
        let conn = self.reader();
        let path = conn
            .path()
            .ok_or(StoreError::Database("database has no file".into()))?;
        Ok(PathBuf::from(path))
    }

    /// Re-encrypt `server.db` in `dir` from key `old` to key `new` (SQLCipher's
    /// `PRAGMA rekey`), in place and in one transaction: if it is interrupted, the old key
    /// still opens the database. Refused while anything else (a server) has it open.
    pub fn rotate_key(dir: &Path, old: &ServerKey, new: &ServerKey) -> StoreResult<()> {
        let path = dir.join("server.db");
        if header(&path) == Header::Empty {
            return Err(StoreError::NoDatabase(path.display().to_string()));
        }
        let conn = open_checked(&path, Some(old))?;
        take_exclusive(&conn)?;
        let rekeyed = conn
            .execute_batch(&format!("PRAGMA rekey = \"{}\";", new.sqlcipher_raw()))
            .map_err(|_| StoreError::Database("PRAGMA rekey failed: the database is unchanged and still opens with the old key".into()));
        let back = conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()));
        rekeyed?;
        back?;
        drop(conn);
        // The new key must open it now, and the old one must not.
        let check = open_checked(&path, Some(new))?;
        check.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0))?;
        Ok(())
    }

    /// Encrypt the plaintext `server.db` of `dir` with `key`: an encrypted copy is written
    /// beside it and checked (every table's row count), then replaces it; the plaintext
    /// file's blocks are overwritten with zeros before it is let go (best effort: a
    /// copy-on-write file system or an SSD may keep old blocks). Refused while anything else
    /// has the database open.
    pub fn encrypt_plaintext(dir: &Path, key: &ServerKey) -> StoreResult<()> {
        let path = dir.join("server.db");
        match header(&path) {
            Header::Empty => return Err(StoreError::NoDatabase(path.display().to_string())),
            Header::Other => {
                return Err(StoreError::Database(format!(
                    "{} is not a plaintext SQLite database (already encrypted?)",
                    path.display()
                )))
            }
            Header::Plaintext => {}
        }
        let conn = open_checked(&path, None)?;
        take_exclusive(&conn)?;
        let tmp = dir.join("server.db.encrypting");
        // A leftover of an interrupted run: an incomplete copy, never the original.
        for f in companions(&tmp) {
            let _ = std::fs::remove_file(f);
        }
        let result = (|| -> StoreResult<()> {
            export_to(&conn, &tmp, Some(key))?;
            let copy = open_checked(&tmp, Some(key))?;
            if table_counts(&copy)? != table_counts(&conn)? {
                return Err(StoreError::Database(
                    "the encrypted copy differs from the original; nothing was replaced".into(),
                ));
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()));
            for f in companions(&tmp) {
                let _ = std::fs::remove_file(f);
            }
            return Err(e);
        }
        // Keep the plaintext file's blocks to overwrite them once it is replaced.
        let io = |e: std::io::Error| StoreError::Database(format!("{}: {e}", path.display()));
        let mut old = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io)?;
        let len = old.metadata().map_err(io)?.len();
        drop(conn);
        std::fs::rename(&tmp, &path).map_err(io)?;
        sync_dir(dir)?;
        overwrite_with_zeros(&mut old, len).map_err(io)?;
        for f in companions(&path).into_iter().skip(1) {
            let _ = std::fs::remove_file(f);
        }
        Ok(())
    }

    /// Restore a backup (encrypted with `backup_key`, or a plaintext backup of an older
    /// server) into `dir` as `server.db` encrypted with `key`, then start a new epoch
    /// (returned): devices re-push what the backup lacks (docs/operations.md). `dir` must
    /// not hold a `server.db` already: nothing is overwritten.
    pub fn restore(
        backup: &Path,
        backup_key: &ServerKey,
        dir: &Path,
        key: &ServerKey,
    ) -> StoreResult<Uuid> {
        let path = dir.join("server.db");
        if header(&path) != Header::Empty {
            return Err(StoreError::Database(format!(
                "{} exists: move it aside first (a restore never overwrites a database)",
                path.display()
            )));
        }
        if !backup.is_file() {
            return Err(StoreError::NoDatabase(backup.display().to_string()));
        }
        create_private_dir(dir)?;
        let from_key = match header(backup) {
            Header::Plaintext => None,
            _ => Some(backup_key),
        };
        let src = open_checked(backup, from_key)?;
        let check: String = src.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(StoreError::Damaged(backup.display().to_string()));
        }
        let version: i64 = src.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > MIGRATIONS.len() as i64 {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported: MIGRATIONS.len() as i64,
            });
        }
        let tmp = dir.join("server.db.restoring");
        for f in companions(&tmp) {
            let _ = std::fs::remove_file(f);
        }
        export_to(&src, &tmp, Some(key))?;
        drop(src);
        std::fs::rename(&tmp, &path)
            .map_err(|e| StoreError::Database(format!("{}: {e}", path.display())))?;
        sync_dir(dir)?;
        let store = Self::open_encrypted(dir, key)?;
        store.new_epoch()
    }

    fn card_rows<P: rusqlite::Params>(&self, condition: &str, p: P) -> StoreResult<Vec<CardRow>> {
        let conn = self.reader();
        let mut st = conn.prepare_cached(&format!(
            "SELECT card_id, doc_id, serial, status, issued_by, issued_at FROM cards WHERE {condition}
             ORDER BY serial, issued_at, card_id"
        ))?;
        let rows = st
            .query_map(p, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(card, doc, serial, status, by, at)| {
                Ok(CardRow {
                    card: parse(&card, CardIssuanceId::parse)?,
                    household: parse(&doc, HouseholdId::parse)?,
                    serial,
                    status,
                    issued_by: parse(&by, WorkerId::parse)?,
                    issued_at: at,
                })
            })
            .collect()
    }

    /// A read connection: a free one if any, else wait for one.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.readers.len() {
            if let Ok(conn) = self.readers[(start + i) % self.readers.len()].try_lock() {
                return conn;
            }
        }
        // A panic while reading leaves no transaction behind: the connection stays usable.
        self.readers[start % self.readers.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// [`checkpoint_truncate`] on the writer between its transactions, retried for up to
    /// ten seconds while a transaction or readers are in the way.
    fn truncate_wal(&self) -> bool {
        for _ in 0..500 {
            {
                let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
                if conn.is_autocommit() && checkpoint_truncate(&conn) {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn group(&self) -> MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `part` as one write, grouped with the writes that wait with it into one
    /// transaction (see the module's documentation); its answer once that is durable.
    fn write<T>(&self, part: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.group().waiting += 1;
        // Parts run only while holding the writer, so a panic cannot happen while holding it
        // (they are contained below); a poisoned lock is taken over all the same.
        let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let open = self.group().open.as_ref().map(|(b, _)| b.clone());
        let batch = match open {
            Some(batch) => batch,
            None => {
                if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                    self.group().waiting -= 1;
                    return Err(e.into());
                }
                let batch = Arc::new(Batch::default());
                self.group().open = Some((batch.clone(), 0));
                batch
            }
        };
        let part = run_part(&conn, part);
        self.writes.fetch_add(1, Ordering::Relaxed);
        let close = {
            let mut g = self.group();
            g.waiting -= 1;
            let parts = g.open.as_ref().map_or(0, |(_, n)| n + 1);
            let close = matches!(part, Part::Broken(..)) || g.waiting == 0 || parts >= MAX_GROUP;
            g.open = if close {
                None
            } else {
                Some((batch.clone(), parts))
            };
            close
        };
        if !close {
            drop(conn);
            return match part {
                Part::Done(v) => batch
                    .wait()
                    .map(|()| v)
                    .map_err(|why| StoreError::Database(format!("grouped commit failed: {why}"))),
                Part::Refused(e) | Part::Broken(e, _) => Err(e),
            };
        }
        let outcome = match &part {
            Part::Broken(_, why) => {
                rollback(&conn);
                Err(why.clone())
            }
            _ => match conn.execute_batch("COMMIT") {
                Ok(()) => Ok(()),
                Err(e) => {
                    rollback(&conn);
                    Err(e.to_string())
                }
            },
        };
        self.transactions.fetch_add(1, Ordering::Relaxed);
        batch.finish(outcome.clone());
        drop(conn);
        match (part, outcome) {
            (Part::Done(v), Ok(())) => Ok(v),
            (Part::Done(_), Err(why)) => Err(StoreError::Database(format!(
                "grouped commit failed: {why}"
            ))),
            (Part::Refused(e) | Part::Broken(e, _), _) => Err(e),
        }
    }
}

/// Move the WAL into the database and truncate it to nothing, so that no old page image
/// stays in it. False if readers held it.
fn checkpoint_truncate(conn: &Connection) -> bool {
    // Without waiting: a reader (another process's, too) makes it report busy at once
    // instead of holding the writer for the busy timeout; callers try again or leave it to
    // the next start.
    if conn.busy_timeout(Duration::ZERO).is_err() {
        return false;
    }
    let busy: rusqlite::Result<i64> =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0));
    let _ = conn.busy_timeout(Duration::from_secs(30));
    busy == Ok(0)
}

/// A placeholder hash for a log entry without a change (unique per sequence number).
pub(crate) fn placeholder_hash_sql(seq: &str) -> String {
    format!("CAST(printf('%032d', {seq}) AS BLOB)")
}

fn erasure_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, i64, i64, String, String)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn erasure_record(raw: (String, String, i64, i64, String, String)) -> StoreResult<ErasureRecord> {
    Ok(ErasureRecord {
        station: parse(&raw.0, StationId::parse)?,
        doc: parse(&raw.1, HouseholdId::parse)?,
        seq: raw.2.max(0) as u64,
        erased_at: raw.3,
        erased_by: raw.4,
        reason: ErasureReason::parse(&raw.5).unwrap_or(ErasureReason::Other),
    })
}

const ERASURE_COLUMNS: &str = "station_id, doc_id, seq, erased_at, erased_by, reason";

/// Overwrite the first `len` bytes of a file with zeros, durably.
fn overwrite_with_zeros(f: &mut std::fs::File, len: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    f.seek(SeekFrom::Start(0))?;
    let zeros = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}

/// Roll the writer's transaction back, if one is still open.
fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        // If even this fails the connection is beyond help; the next BEGIN reports it.
        let _ = conn.execute_batch("ROLLBACK");
    }
}

/// Run one write inside its own savepoint of the open transaction.
fn run_part<T>(conn: &Connection, part: impl FnOnce(&Connection) -> StoreResult<T>) -> Part<T> {
    if let Err(e) = conn.execute_batch("SAVEPOINT part") {
        let why = e.to_string();
        return Part::Broken(e.into(), why);
    }
    let result = catch_unwind(AssertUnwindSafe(|| part(conn))).unwrap_or_else(|_| {
        Err(StoreError::Database(
            "internal error during a database write".into(),
        ))
    });
    match result {
        Ok(v) => match conn.execute_batch("RELEASE part") {
            Ok(()) => Part::Done(v),
            Err(e) => {
                let why = e.to_string();
                Part::Broken(e.into(), why)
            }
        },
        // SQLite rolls a whole transaction back on some errors (a full disk, I/O): then
        // there is no savepoint left to roll back to, and the group has failed with it.
        Err(e) if conn.is_autocommit() => {
            let why = e.to_string();
            Part::Broken(e, why)
        }
        Err(e) => match conn.execute_batch("ROLLBACK TO part; RELEASE part") {
            Ok(()) => Part::Refused(e),
            Err(r) => Part::Broken(e, r.to_string()),
        },
    }
}

impl ServerStore for SqliteStore {
    fn write_stats(&self) -> Option<WriteStats> {
        Some(WriteStats {
            transactions: self.transactions.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            queued: self.group().waiting,
        })
    }

    fn epoch(&self) -> StoreResult<Uuid> {
        let s: String = self.reader().query_row(
            "SELECT value FROM server_meta WHERE key = 'epoch'",
            [],
            |r| r.get(0),
        )?;
        Uuid::parse_str(&s).map_err(|_| StoreError::Database("malformed epoch".into()))
    }

    fn new_epoch(&self) -> StoreResult<Uuid> {
        let epoch = Uuid::new_v4();
        self.write(|conn| {
            conn.execute(
                "UPDATE server_meta SET value = ?1 WHERE key = 'epoch'",
                [epoch.to_string()],
            )?;
            Ok(epoch)
        })
    }

    fn create_station(&self, name: &str, now_ms: i64) -> StoreResult<StationId> {
        let id = StationId::new();
        self.write(|conn| {
            conn.execute(
                "INSERT INTO stations (station_id, name, created_at) VALUES (?1, ?2, ?3)",
                params![id.to_string(), name, now_ms],
            )?;
            Ok(id)
        })
    }

    fn add_worker(&self, station: StationId, label: &str, now_ms: i64) -> StoreResult<WorkerId> {
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
            let id = WorkerId::new();
            conn.execute(
                "INSERT INTO workers (worker_id, station_id, label, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id.to_string(), station.to_string(), label, now_ms],
            )?;
            Ok(id)
        })
    }

    fn set_worker_label(&self, worker: WorkerId, label: &str) -> StoreResult<StationId> {
        self.write(|conn| {
            let station: Option<String> = conn
                .query_row(
                    "UPDATE workers SET label = ?2 WHERE worker_id = ?1 RETURNING station_id",
                    params![worker.to_string(), label],
                    |r| r.get(0),
                )
                .optional()?;
            parse(
                &station.ok_or(StoreError::NotFound("worker"))?,
                StationId::parse,
            )
        })
    }

    fn enroll_device(
        &self,
        worker: WorkerId,
        code_hash: &str,
        expires_ms: i64,
    ) -> StoreResult<DeviceId> {
        self.write(|conn| {
            let station: Option<String> = conn
                .query_row(
                    "SELECT station_id FROM workers WHERE worker_id = ?1",
                    [worker.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            let station = station.ok_or(StoreError::NotFound("worker"))?;
            let id = DeviceId::new();
            conn.execute(
                "INSERT INTO devices (device_id, worker_id, station_id, code_hash, code_expires) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id.to_string(), worker.to_string(), station, code_hash, expires_ms],
            )?;
            Ok(id)
        })
    }

    fn redeem_code(
        &self,
        code_hash: &str,
        token_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<DeviceAuth>> {
        self.write(|tx| {
            let row: Option<(String, String, String)> = tx
                .query_row(
                    "SELECT device_id, worker_id, station_id FROM devices
                     WHERE code_hash = ?1 AND code_expires >= ?2 AND revoked_at IS NULL AND token_hash IS NULL",
                    params![code_hash, now_ms],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((d, w, s)) = row else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE devices SET code_hash = NULL, code_expires = NULL, token_hash = ?2, enrolled_at = ?3 WHERE device_id = ?1",
                params![d, token_hash, now_ms],
            )?;
            Ok(Some(DeviceAuth {
                device: parse(&d, DeviceId::parse)?,
                worker: parse(&w, WorkerId::parse)?,
                station: parse(&s, StationId::parse)?,
                revoked: false,
            }))
        })
    }

    fn revoke_device(&self, device: DeviceId, now_ms: i64) -> StoreResult<bool> {
        self.write(|conn| {
            let n = conn.execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, ?2), code_hash = NULL WHERE device_id = ?1",
                params![device.to_string(), now_ms],
            )?;
            Ok(n > 0)
        })
    }

    fn note_sync(&self, device: DeviceId, now_ms: i64, served_seq: u64) -> StoreResult<()> {
        self.write(|conn| {
            conn.execute(
                "UPDATE devices SET last_sync_at = max(coalesce(last_sync_at, 0), ?2),
                   served_seq = max(served_seq, ?3) WHERE device_id = ?1",
                params![device.to_string(), now_ms, served_seq as i64],
            )?;
            Ok(())
        })
    }

    fn served_seq(&self, device: DeviceId) -> StoreResult<u64> {
        let seq: Option<i64> = self
            .reader()
            .prepare_cached("SELECT served_seq FROM devices WHERE device_id = ?1")?
            .query_row([device.to_string()], |r| r.get(0))
            .optional()?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    }

    fn authenticate(&self, token_hash: &str) -> StoreResult<Option<DeviceAuth>> {
        let row: Option<(String, String, String, Option<i64>)> = self
            .reader()
            .prepare_cached("SELECT device_id, worker_id, station_id, revoked_at FROM devices WHERE token_hash = ?1")?
            .query_row([token_hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        row.map(|(d, w, s, revoked)| {
            Ok(DeviceAuth {
                device: parse(&d, DeviceId::parse)?,
                worker: parse(&w, WorkerId::parse)?,
                station: parse(&s, StationId::parse)?,
                revoked: revoked.is_some(),
            })
        })
        .transpose()
    }

    fn device(&self, device: DeviceId) -> StoreResult<Option<DeviceAuth>> {
        let row: Option<(String, String, Option<i64>)> = self
            .reader()
            .query_row(
                "SELECT worker_id, station_id, revoked_at FROM devices WHERE device_id = ?1",
                [device.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(w, s, revoked)| {
            Ok(DeviceAuth {
                device,
                worker: parse(&w, WorkerId::parse)?,
                station: parse(&s, StationId::parse)?,
                revoked: revoked.is_some(),
            })
        })
        .transpose()
    }

    fn bind_signer(
        &self,
        device: DeviceId,
        actor: &[u8],
        key: &[u8; 32],
        now_ms: i64,
    ) -> StoreResult<bool> {
        let (device, actor, key) = (device.to_string(), actor.to_vec(), key.to_vec());
        self.write(move |tx| {
            let by_actor: Option<(String, Vec<u8>)> = tx
                .query_row(
                    "SELECT device_id, public_key FROM signers WHERE actor = ?1",
                    [&actor],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((owner, bound_key)) = by_actor {
                return Ok(owner == device && bound_key == key);
            }
            let by_device: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT actor FROM signers WHERE device_id = ?1",
                    [&device],
                    |r| r.get(0),
                )
                .optional()?;
            if by_device.is_some() {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO signers (actor, device_id, public_key, bound_at) VALUES (?1, ?2, ?3, ?4)",
                params![actor, device, key, now_ms],
            )?;
            Ok(true)
        })
    }

    fn station_exists(&self, station: StationId) -> StoreResult<bool> {
        Ok(self
            .reader()
            .prepare_cached("SELECT 1 FROM stations WHERE station_id = ?1")?
            .query_row([station.to_string()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn signer(&self, actor: &[u8]) -> StoreResult<Option<SignerRecord>> {
        let row: Option<(String, String, String, Vec<u8>)> = self
            .reader()
            .prepare_cached(
                "SELECT s.device_id, d.worker_id, d.station_id, s.public_key FROM signers s
                 JOIN devices d ON d.device_id = s.device_id WHERE s.actor = ?1",
            )?
            .query_row([actor], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        row.map(|(d, w, s, k)| {
            Ok(SignerRecord {
                device: parse(&d, DeviceId::parse)?,
                worker: parse(&w, WorkerId::parse)?,
                station: parse(&s, StationId::parse)?,
                key: k
                    .try_into()
                    .map_err(|_| StoreError::Database("stored key is not 32 bytes".into()))?,
            })
        })
        .transpose()
    }

    fn doc_signatures(&self, doc: HouseholdId) -> StoreResult<Vec<AuthorSignature>> {
        let rows = self
            .reader()
            .prepare_cached("SELECT actor, hash, sig FROM doc_signatures WHERE doc_id = ?1")?
            .query_map([doc.to_string()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(actor, hash, sig)| stored_signature(actor, hash, sig))
            .collect()
    }

    fn document_station(&self, doc: HouseholdId) -> StoreResult<Option<StationId>> {
        let s: Option<String> = self
            .reader()
            .prepare_cached("SELECT station_id FROM documents WHERE doc_id = ?1")?
            .query_row([doc.to_string()], |r| r.get(0))
            .optional()?;
        s.map(|s| parse(&s, StationId::parse)).transpose()
    }

    fn load_document(&self, doc: HouseholdId) -> StoreResult<Option<StoredDocument>> {
        let conn = self.reader();
        // One read transaction: the snapshot and the entries after it from the same commit.
        let conn = conn.unchecked_transaction()?;
        let row: Option<(String, Option<Vec<u8>>, i64, i64)> = conn
            .prepare_cached(
                "SELECT station_id, snapshot, snapshot_seq, changes_since_snapshot FROM documents WHERE doc_id = ?1",
            )?
            .query_row([doc.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let Some((station, snapshot, snapshot_seq, since)) = row else {
            return Ok(None);
        };
        let changes = conn
            .prepare_cached(
                "SELECT bytes FROM change_log WHERE doc_id = ?1 AND seq > ?2 AND kind = 0 ORDER BY seq",
            )?
            .query_map(params![doc.to_string(), snapshot_seq], |r| r.get(0))?
            .collect::<Result<Vec<Vec<u8>>, _>>()?;
        Ok(Some(StoredDocument {
            station: Some(parse(&station, StationId::parse)?),
            snapshot,
            changes,
            changes_since_snapshot: since.max(0) as u64,
        }))
    }

    fn commit(
        &self,
        station: StationId,
        origin: DeviceId,
        appends: &[DocAppend],
    ) -> StoreResult<Vec<u64>> {
        self.write(|tx| {
            let st = station.to_string();
            let mut seq: i64 = tx.query_row(
                "SELECT coalesce(max(seq), 0) FROM change_log WHERE station_id = ?1",
                [&st],
                |r| r.get(0),
            )?;
            let mut last = Vec::with_capacity(appends.len());
            for a in appends {
                let doc = a.doc.to_string();
                // An erasure appends an entry under the document's id, so a commit
                // validated before it fails the check below; without one, look it up.
                if a.expected_seq.is_none() {
                    let erased: Option<i64> = tx
                        .prepare_cached("SELECT 1 FROM erasures WHERE doc_id = ?1")?
                        .query_row([&doc], |r| r.get(0))
                        .optional()?;
                    if erased.is_some() {
                        return Err(StoreError::Conflict("document erased"));
                    }
                }
                if let Some(expected) = a.expected_seq {
                    let current: i64 = tx
                        .prepare_cached(
                            "SELECT coalesce(max(seq), 0) FROM change_log WHERE doc_id = ?1",
                        )?
                        .query_row([&doc], |r| r.get(0))?;
                    if current as u64 != expected {
                        return Err(StoreError::Conflict("document changed concurrently"));
                    }
                }
                let owner: Option<String> = tx
                    .query_row(
                        "SELECT station_id FROM documents WHERE doc_id = ?1",
                        [&doc],
                        |r| r.get(0),
                    )
                    .optional()?;
                match owner {
                    Some(o) if o != st => {
                        return Err(StoreError::Conflict("document belongs to another station"))
                    }
                    Some(_) => {}
                    None => {
                        let kind = if doc == st { "station" } else { a.kind.as_str() };
                        tx.execute(
                            "INSERT INTO documents (doc_id, station_id, kind) VALUES (?1, ?2, ?3)",
                            params![doc, st, kind],
                        )?;
                        // Station work is the whole station's: no assignment (ADR 0021).
                        if a.kind == doorstep_core::doc::DocKind::Household {
                            caseload::assign_to_creator(tx, &st, &doc, &origin.to_string(), wall_ms())?;
                        }
                    }
                }
                let mut added = 0i64;
                for (hash, bytes) in &a.changes {
                    let n = tx
                        .prepare_cached(
                            "INSERT INTO change_log (station_id, seq, doc_id, hash, bytes, origin_device)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (doc_id, hash) DO NOTHING",
                        )?
                        .execute(params![st, seq + 1, doc, &hash.0[..], bytes, origin.to_string()])?;
                    if n > 0 {
                        seq += 1;
                        added += 1;
                    }
                }
                for s in &a.signatures {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO doc_signatures (doc_id, actor, hash, sig) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![doc, s.actor, &s.signature.hash.0[..], &s.signature.sig[..]])?;
                }
                tx.prepare_cached("DELETE FROM cards WHERE doc_id = ?1")?
                    .execute([&doc])?;
                for c in &a.cards {
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO cards (card_id, doc_id, station_id, serial, status, issued_by, issued_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![c.card.to_string(), doc, st, c.serial, c.status, c.issued_by.to_string(), c.issued_at])?;
                }
                match &a.snapshot {
                    Some(snap) => {
                        tx.prepare_cached(
                            "UPDATE documents SET snapshot = ?2, snapshot_seq = ?3, changes_since_snapshot = 0 WHERE doc_id = ?1",
                        )?
                        .execute(params![doc, snap, seq])?;
                    }
                    None => {
                        tx.prepare_cached(
                            "UPDATE documents SET changes_since_snapshot = changes_since_snapshot + ?2 WHERE doc_id = ?1",
                        )?
                        .execute(params![doc, added])?;
                    }
                }
                let doc_seq: i64 = tx
                    .prepare_cached("SELECT coalesce(max(seq), 0) FROM change_log WHERE doc_id = ?1")?
                    .query_row([&doc], |r| r.get(0))?;
                last.push(doc_seq as u64);
            }
            Ok(last)
        })
    }

    fn read_log(
        &self,
        station: StationId,
        after: u64,
        reader: LogReader,
        budget: usize,
    ) -> StoreResult<LogPage> {
        let conn = self.reader();
        // The scope and the log are read in one snapshot: an assignment committed between
        // them could otherwise be sorted by a scope that does not hold it yet.
        let tx = conn.unchecked_transaction()?;
        let mut st = tx.prepare_cached(
            // Rows are stepped lazily: the budget, not a row count, ends the page.
            "SELECT seq, doc_id, bytes, origin_device, hash, kind FROM change_log WHERE station_id = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        // Nothing after the cursor (a device up to date): no scope is read (it would sort
        // no row). Otherwise it is read in the same transaction as the rows.
        let any: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM change_log WHERE station_id = ?1 AND seq > ?2)",
            )?
            .query_row(params![station.to_string(), after as i64], |r| r.get(0))?;
        let scope = if any {
            caseload::page_scope(&tx, &reader.worker.to_string())?
        } else {
            super::scope::PageScope::Known(super::scope::ReaderScope::Only(Default::default()))
        };
        let mut rows = st.query(params![station.to_string(), after as i64])?;
        let mut page = super::scope::PageBuilder::new(station, after, reader, scope, budget);
        while let Some(r) = rows.next()? {
            let doc: String = r.get(1)?;
            let origin: String = r.get(3)?;
            let row = super::scope::Row {
                seq: r.get(0)?,
                kind: r.get(5)?,
                doc: &doc,
                origin: &origin,
            };
            if !page.take(row, || Ok(r.get(2)?), || stored_hash(r.get(4)?))? {
                break;
            }
        }
        page.finish()
    }

    fn high_water(&self, station: StationId) -> StoreResult<u64> {
        let seq: i64 = self.reader().query_row(
            "SELECT coalesce(max(seq), 0) FROM change_log WHERE station_id = ?1",
            [station.to_string()],
            |r| r.get(0),
        )?;
        Ok(seq as u64)
    }

    fn document_seq(&self, doc: HouseholdId) -> StoreResult<u64> {
        let seq: i64 = self
            .reader()
            .prepare_cached("SELECT coalesce(max(seq), 0) FROM change_log WHERE doc_id = ?1")?
            .query_row([doc.to_string()], |r| r.get(0))?;
        Ok(seq as u64)
    }

    fn cards_by_serial(&self, station: StationId, serial: &str) -> StoreResult<Vec<CardRow>> {
        self.card_rows(
            "station_id = ?1 AND serial = ?2",
            params![station.to_string(), serial],
        )
    }

    fn duplicate_cards(&self, station: StationId) -> StoreResult<Vec<CardRow>> {
        self.card_rows(
            "station_id = ?1 AND status = 'issued' AND serial IN
               (SELECT serial FROM cards WHERE station_id = ?1 AND status = 'issued' GROUP BY serial HAVING count(*) > 1)",
            params![station.to_string()],
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
            "station_id = ?1 AND issued_by = ?2 AND issued_at BETWEEN ?3 AND ?4",
            params![station.to_string(), worker.to_string(), from_ms, to_ms],
        )
    }

    fn erase_document(
        &self,
        station: StationId,
        doc: HouseholdId,
        reason: ErasureReason,
        erased_by: &str,
        now_ms: i64,
    ) -> StoreResult<ErasureRecord> {
        let st = station.to_string();
        let d = doc.to_string();
        let (record, fresh) = self.write(|tx| {
            let held: Option<_> = tx
                .query_row(
                    &format!("SELECT {ERASURE_COLUMNS} FROM erasures WHERE doc_id = ?1"),
                    [&d],
                    erasure_row,
                )
                .optional()?;
            if let Some(raw) = held {
                let record = erasure_record(raw)?;
                if record.station != station {
                    return Err(StoreError::Conflict("document belongs to another station"));
                }
                return Ok((record, false));
            }
            let owner: Option<String> = tx
                .query_row(
                    "SELECT station_id FROM documents WHERE doc_id = ?1",
                    [&d],
                    |r| r.get(0),
                )
                .optional()?;
            if owner.is_some_and(|o| o != st) {
                return Err(StoreError::Conflict("document belongs to another station"));
            }
            let seq = close_history(
                tx,
                &st,
                &d,
                &erasure_entry_bytes(reason, now_ms),
                KIND_ERASURE,
            )?;
            for table in ["documents", "doc_signatures", "cards"] {
                tx.execute(&format!("DELETE FROM {table} WHERE doc_id = ?1"), [&d])?;
            }
            console::delete_doc(tx, &d)?;
            tx.execute("DELETE FROM console_access WHERE target = ?1", [&d])?;
            tx.execute("DELETE FROM device_access WHERE doc_id = ?1", [&d])?;
            blobs::erase_doc(tx, &d)?;
            tx.execute(
                &format!(
                    "INSERT INTO erasures ({ERASURE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ),
                params![st, d, seq, now_ms, erased_by, reason.as_str()],
            )?;
            Ok((
                ErasureRecord {
                    station,
                    doc,
                    seq: seq as u64,
                    erased_at: now_ms,
                    erased_by: erased_by.to_owned(),
                    reason,
                },
                true,
            ))
        })?;
        if fresh {
            // The search index keeps deleted words in its segments until they merge: merge
            // them now. Then no page image of the household stays in the WAL.
            self.write(|tx| {
                tx.execute_batch("INSERT INTO rm_search(rm_search) VALUES('optimize');")?;
                Ok(())
            })?;
            if !self.truncate_wal() {
                tracing::warn!(
                    "the WAL could not be truncated after an erasure: it is at the next \
                     erasure or when the server starts"
                );
            }
        }
        Ok(record)
    }

    fn redact_document(
        &self,
        station: StationId,
        notice: &doorstep_core::protocol::RedactionNotice,
        snapshot: &[u8],
        expected_seq: u64,
        kept_blobs: &[doorstep_core::BlobHash],
    ) -> StoreResult<u64> {
        let st = station.to_string();
        let d = notice.doc.to_string();
        let seq = self.write(|tx| {
            let owner: Option<String> = tx
                .query_row("SELECT station_id FROM documents WHERE doc_id = ?1", [&d], |r| {
                    r.get(0)
                })
                .optional()?;
            match owner {
                None => return Err(StoreError::NotFound("household")),
                Some(o) if o != st => {
                    return Err(StoreError::Conflict("document belongs to another station"))
                }
                Some(_) => {}
            }
            let last: i64 = tx.query_row(
                "SELECT coalesce(max(seq), 0) FROM change_log WHERE doc_id = ?1",
                [&d],
                |r| r.get(0),
            )?;
            if last as u64 != expected_seq {
                return Err(StoreError::Conflict("the household changed meanwhile"));
            }
            let seq = close_history(tx, &st, &d, &notice.encode(), KIND_REDACTION)?;
            tx.execute(
                "UPDATE documents SET snapshot = ?2, snapshot_seq = ?3, changes_since_snapshot = 0 WHERE doc_id = ?1",
                params![d, snapshot, seq],
            )?;
            tx.execute("DELETE FROM doc_signatures WHERE doc_id = ?1", [&d])?;
            // The console's rows hold the old values: gone here (and its search index merged
            // below), read again from the generation by the caller.
            console::delete_doc(tx, &d)?;
            // Blobs are kept per station (ADR 0032).
            let kept: Vec<crate::store::blobs::BlobKey> = kept_blobs
                .iter()
                .map(|h| crate::store::blobs::BlobKey::new(station, *h))
                .collect();
            blobs::release_doc(tx, &d, &kept)?;
            Ok(seq as u64)
        })?;
        self.write(|tx| {
            tx.execute_batch("INSERT INTO rm_search(rm_search) VALUES('optimize');")?;
            Ok(())
        })?;
        if !self.truncate_wal() {
            tracing::warn!(
                "the WAL could not be truncated after a redaction: it is at the next one or when \
                 the server starts"
            );
        }
        Ok(seq)
    }

    fn redaction_notice(
        &self,
        doc: HouseholdId,
    ) -> StoreResult<Option<doorstep_core::protocol::RedactionNotice>> {
        let bytes: Option<Vec<u8>> = self
            .reader()
            .prepare_cached(
                "SELECT bytes FROM change_log WHERE doc_id = ?1 AND kind = ?2 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row(params![doc.to_string(), KIND_REDACTION], |r| r.get(0))
            .optional()?;
        bytes.map(|b| redaction_from_entry(&b)).transpose()
    }

    fn erasure(&self, doc: HouseholdId) -> StoreResult<Option<ErasureRecord>> {
        let raw = self
            .reader()
            .prepare_cached(&format!(
                "SELECT {ERASURE_COLUMNS} FROM erasures WHERE doc_id = ?1"
            ))?
            .query_row([doc.to_string()], erasure_row)
            .optional()?;
        raw.map(erasure_record).transpose()
    }

    fn erasures(&self, station: Option<StationId>) -> StoreResult<Vec<ErasureRecord>> {
        let conn = self.reader();
        let mut st = conn.prepare(&format!(
            "SELECT {ERASURE_COLUMNS} FROM erasures WHERE ?1 IS NULL OR station_id = ?1 ORDER BY erased_at, doc_id"
        ))?;
        let rows = st
            .query_map([station.map(|s| s.to_string())], erasure_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(erasure_record).collect()
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
        self.write(|conn| {
            // Only a household of the device's station that is held here (not its station
            // document): anything else is dropped, exactly as an entry already kept is.
            let mut ins = conn.prepare_cached(
                "INSERT OR IGNORE INTO device_access
                     (device_id, doc_id, at, station_id, worker_id, received_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS
                     (SELECT 1 FROM documents WHERE doc_id = ?2 AND station_id = ?4 AND doc_id <> ?4)",
            )?;
            let (device, station, worker) = (
                auth.device.to_string(),
                auth.station.to_string(),
                auth.worker.to_string(),
            );
            let mut kept = 0;
            for a in accesses {
                kept += ins.execute(params![
                    device,
                    a.household.to_string(),
                    a.at,
                    station,
                    worker,
                    now_ms
                ])?;
            }
            Ok(kept)
        })
    }

    fn list_documents(
        &self,
        station: StationId,
        after: Option<HouseholdId>,
        limit: usize,
        scoped: Option<WorkerId>,
    ) -> StoreResult<Vec<HouseholdId>> {
        let conn = self.reader();
        let tx = conn.unchecked_transaction()?;
        let scope = match scoped {
            Some(w) => Some(caseload::reader_scope(&tx, &w.to_string())?),
            None => None,
        };
        let st_id = station.to_string();
        let mut st = tx.prepare_cached(
            "SELECT doc_id FROM documents WHERE station_id = ?1 AND doc_id > ?2 ORDER BY doc_id LIMIT ?3",
        )?;
        let mut last = after.map(|a| a.to_string()).unwrap_or_default();
        let mut out = Vec::new();
        // A scoped listing skips what it may not see: read on until `limit` ids are kept.
        loop {
            let ids = st
                .query_map(params![st_id, last, limit as i64], |r| {
                    r.get::<_, String>(0)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let done = ids.len() < limit;
            for id in ids {
                if scope
                    .as_ref()
                    .is_none_or(|s| id == st_id || s.contains(&id))
                {
                    out.push(parse(&id, HouseholdId::parse)?);
                }
                last = id;
            }
            if done || out.len() >= limit {
                out.truncate(limit);
                return Ok(out);
            }
        }
    }

    fn worker_access(&self, worker: WorkerId) -> StoreResult<Option<WorkerAccess>> {
        let conn = self.reader();
        caseload::worker_row(&conn, &worker.to_string())?
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
        self.write(|tx| caseload::rescope(tx, worker, Some(role), None, now_ms))
    }

    fn set_team(
        &self,
        worker: WorkerId,
        team: Option<&doorstep_core::TeamName>,
        now_ms: i64,
    ) -> StoreResult<Rescoped> {
        self.write(|tx| caseload::rescope(tx, worker, None, Some(team), now_ms))
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
        self.write(|tx| caseload::assign(tx, station, doc, worker, team, assigned_by, now_ms))
    }

    fn assignment(&self, doc: HouseholdId) -> StoreResult<Option<Assignment>> {
        caseload::assignment(&self.reader(), doc)
    }

    fn in_scope(&self, worker: WorkerId, doc: HouseholdId) -> StoreResult<bool> {
        caseload::in_scope(&self.reader(), worker, doc)
    }

    fn scope_exit(&self, worker: WorkerId, doc: HouseholdId) -> StoreResult<Option<ScopeExit>> {
        caseload::scope_exit(&self.reader(), worker, doc)
    }

    fn scope_exits(&self, worker: WorkerId) -> StoreResult<Vec<HouseholdId>> {
        caseload::scope_exits(&self.reader(), worker)
    }

    fn scope_documents(&self, worker: WorkerId) -> StoreResult<Vec<HouseholdId>> {
        caseload::scope_documents(&self.reader(), worker)
    }

    fn retire(&self, station: StationId, doc: HouseholdId, now_ms: i64) -> StoreResult<Rescoped> {
        self.write(|tx| caseload::set_retired(tx, station, doc, true, now_ms))
    }

    fn reopen(&self, station: StationId, doc: HouseholdId, now_ms: i64) -> StoreResult<Rescoped> {
        self.write(|tx| caseload::set_retired(tx, station, doc, false, now_ms))
    }

    fn retirement(&self, doc: HouseholdId) -> StoreResult<Option<Retirement>> {
        caseload::retirement(&self.reader(), doc)
    }
}

/// Close a household's history in the log, inside the caller's transaction (an erasure,
/// ADR 0016, or a redaction, ADR 0026): every entry of the document keeps its sequence
/// number but loses its bytes and hash; one new entry of `kind` with `bytes` takes the
/// station's next number, which is returned.
fn close_history(
    tx: &Connection,
    station: &str,
    doc: &str,
    bytes: &[u8],
    kind: i64,
) -> StoreResult<i64> {
    let seq: i64 = tx.query_row(
        "SELECT coalesce(max(seq), 0) + 1 FROM change_log WHERE station_id = ?1",
        [station],
        |r| r.get(0),
    )?;
    tx.execute(
        &format!(
            "UPDATE change_log SET kind = ?2, bytes = x'', hash = {} WHERE doc_id = ?1",
            placeholder_hash_sql("seq")
        ),
        params![doc, KIND_ERASED],
    )?;
    tx.execute(
        &format!(
            "INSERT INTO change_log (station_id, seq, doc_id, hash, bytes, origin_device, kind)
             VALUES (?1, ?2, ?3, {}, ?4, ?5, ?6)",
            placeholder_hash_sql("?2")
        ),
        params![station, seq, doc, bytes, Uuid::nil().to_string(), kind],
    )?;
    Ok(seq)
}

/// The wall clock (ms since the Unix epoch), for records the store stamps itself.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod upgrade_tests {
    // A test: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::console::{AccountRole, ConsoleStore};

    /// The SQL of the tables (and their indexes) named.
    fn schema_of(path: &Path, tables: &[&str]) -> Vec<(String, String)> {
        let conn = Connection::open(path).unwrap();
        let mut out = Vec::new();
        for t in tables {
            let mut stmt = conn
                .prepare("SELECT name, sql FROM sqlite_master WHERE tbl_name = ?1 AND sql IS NOT NULL ORDER BY name")
                .unwrap();
            out.extend(
                stmt.query_map([t], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap()
                    .collect::<Result<Vec<(String, String)>, _>>()
                    .unwrap(),
            );
        }
        out
    }

    /// A server of schema 7 with a supervisor's account, her writer identity and a live
    /// session, upgraded through 8 and 9 (county accounts): all of it kept, foreign keys
    /// intact, the accounts' tables as a fresh store makes them.
    #[test]
    fn schema_7_upgrades_to_county_accounts_keeping_supervisors() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&old).unwrap();
            conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
            for (v, sql) in MIGRATIONS[..7].iter().enumerate() {
                let tx = conn.transaction().unwrap();
                tx.execute_batch(sql).unwrap();
                tx.execute_batch(&format!("PRAGMA user_version = {}", v + 1))
                    .unwrap();
                tx.commit().unwrap();
            }
            conn.execute_batch(
                "INSERT INTO stations VALUES ('0190a0a0-0000-7000-8000-000000000001', '站', 1);
                 INSERT INTO workers (worker_id, station_id, label, created_at)
                   VALUES ('0190a0a0-0000-7000-8000-000000000002', '0190a0a0-0000-7000-8000-000000000001', '主管 zhang', 1);
                 INSERT INTO devices (device_id, worker_id, station_id)
                   VALUES ('0190a0a0-0000-7000-8000-000000000003', '0190a0a0-0000-7000-8000-000000000002', '0190a0a0-0000-7000-8000-000000000001');
                 INSERT INTO console_accounts VALUES ('0190a0a0-0000-7000-8000-000000000004', '0190a0a0-0000-7000-8000-000000000001', 'zhang', '$argon2id$h', 1, NULL);
                 INSERT INTO console_signers VALUES ('0190a0a0-0000-7000-8000-000000000004', '0190a0a0-0000-7000-8000-000000000002', '0190a0a0-0000-7000-8000-000000000003', x'0707', zeroblob(32));
                 INSERT INTO console_sessions VALUES ('session-hash', '0190a0a0-0000-7000-8000-000000000004', 'csrf', 1, 9000000000000);",
            )
            .unwrap();
        }
        let store = SqliteStore::open_file(&old).unwrap();
        let station = StationId::parse("0190a0a0-0000-7000-8000-000000000001").unwrap();
        let account = store.account_by_login("zhang").unwrap().unwrap();
        assert_eq!(account.role, AccountRole::Supervisor(station));
        assert_eq!(account.password_hash, "$argon2id$h");
        let session = store.session("session-hash", 2).unwrap().unwrap();
        assert_eq!(
            (session.account.id, session.csrf.as_str()),
            (account.id, "csrf")
        );
        assert_eq!(
            store.account_signer(account.id).unwrap().map(|s| s.actor),
            Some(vec![7, 7])
        );
        assert_eq!(
            store.account_stations(account.id).unwrap(),
            vec![(station, "站".to_owned())]
        );
        drop(store);
        let conn = Connection::open(&old).unwrap();
        let broken: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(broken, 0, "every reference resolves");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        drop(conn);

        let fresh = dir.path().join("fresh.db");
        drop(SqliteStore::open_file(&fresh).unwrap());
        let tables = [
            "console_accounts",
            "console_account_stations",
            "console_signers",
            "console_sessions",
        ];
        assert_eq!(schema_of(&old, &tables), schema_of(&fresh, &tables));
    }

    /// Schema 16 (ADR 0032) on a store of schema 15 with blobs: each blob is keyed by the
    /// station of every household that references it (copied when two stations do), with
    /// its chunks, tail and references; nothing is left under a bare hash.
    #[test]
    fn schema_16_keys_the_blobs_of_an_older_store_by_station() {
        use crate::store::blobs::{BlobKey, BlobStore};
        use doorstep_core::BlobHash;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let (a, b) = (StationId::new(), StationId::new());
        let (da, db) = (HouseholdId::new(), HouseholdId::new());
        let bytes = b"a photo both stations hold".as_slice();
        let partial = b"half a signature".as_slice();
        let (h, p) = (BlobHash::of(bytes), BlobHash::of(partial));
        {
            let mut conn = Connection::open(&path).unwrap();
            for (v, sql) in MIGRATIONS[..15].iter().enumerate() {
                let tx = conn.transaction().unwrap();
                tx.execute_batch(sql).unwrap();
                tx.execute_batch(&format!("PRAGMA user_version = {}", v + 1))
                    .unwrap();
                tx.commit().unwrap();
            }
            for (station, doc) in [(a, da), (b, db)] {
                conn.execute(
                    "INSERT INTO stations (station_id, name, created_at) VALUES (?1, '站', 1)",
                    [station.to_string()],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO documents (doc_id, station_id) VALUES (?1, ?2)",
                    [doc.to_string(), station.to_string()],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO blob_refs (hash, doc_id) VALUES (?1, ?2)",
                    params![h.0.as_slice(), doc.to_string()],
                )
                .unwrap();
            }
            conn.execute(
                "INSERT INTO blob_refs (hash, doc_id) VALUES (?1, ?2)",
                params![p.0.as_slice(), da.to_string()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO blobs (hash, size, received, complete, uploader, created_at, touched_at)
                 VALUES (?1, ?2, ?2, 1, 'dev', 1, 1), (?3, ?4, 4, 0, 'dev', 1, 7)",
                params![h.0.as_slice(), bytes.len() as i64, p.0.as_slice(), partial.len() as i64],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO blob_chunks (hash, pos, bytes) VALUES (?1, 0, ?2), (?3, 0, ?4)",
                params![h.0.as_slice(), bytes, p.0.as_slice(), &partial[..4]],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO blob_tails (hash, pos, bytes) VALUES (?1, 4, ?2)",
                params![p.0.as_slice(), &partial[4..8]],
            )
            .unwrap();
        }
        let store = SqliteStore::open_file(&path).unwrap();
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
        assert_eq!(
            store.blob(&BlobKey::new(b, p)).unwrap(),
            None,
            "B never held it"
        );
        let bare: i64 = store
            .reader()
            .query_row(
                "SELECT (SELECT count(*) FROM blobs WHERE length(hash) <> 48)
                      + (SELECT count(*) FROM blob_chunks WHERE length(hash) <> 48)
                      + (SELECT count(*) FROM blob_tails WHERE length(hash) <> 48)
                      + (SELECT count(*) FROM blob_refs WHERE length(hash) <> 48)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(bare, 0);
        assert_eq!(
            store.blob_stats().unwrap().complete,
            2,
            "one copy per station"
        );
    }

    /// Schemas 8 and 17 on a store of schema 7 with console rows: each household's text is
    /// found afterwards (schema 8 keyed it by rowid, schema 17 carries it over as one search
    /// entry), a refresh replaces the old text and leaves the others as they were.
    #[test]
    fn schema_8_keys_the_search_rows_of_an_older_store() {
        use crate::store::console::HouseholdFilter;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let docs: Vec<_> = {
            let mut conn = Connection::open(&path).unwrap();
            for (v, sql) in MIGRATIONS[..7].iter().enumerate() {
                let tx = conn.transaction().unwrap();
                tx.execute_batch(sql).unwrap();
                tx.execute_batch(&format!("PRAGMA user_version = {}", v + 1))
                    .unwrap();
                tx.commit().unwrap();
            }
            let (station, worker) = (StationId::new(), WorkerId::new());
            (0..5)
                .map(|i| {
                    let d = crate::store::conformance::read_model_doc(
                        station,
                        worker,
                        &format!("HH-{i:06}"),
                        "石桥村",
                        &[],
                        &format!("旧的说明{i}"),
                        3,
                    );
                    // As schema 7 wrote them: no key from the household to its search row.
                    let (doc, st) = (d.household.doc.to_string(), station.to_string());
                    conn.execute(
                        "INSERT INTO rm_households (doc_id, station_id, seq, code, village, status,
                           categories, visits, open_needs, conflicts)
                         VALUES (?1, ?2, 3, ?3, '石桥村', 'active', '', 1, 0, 0)",
                        params![doc, st, d.household.code],
                    )
                    .unwrap();
                    conn.execute(
                        "INSERT INTO rm_search (doc_id, station_id, body) VALUES (?1, ?2, ?3)",
                        params![doc, st, d.search_text()],
                    )
                    .unwrap();
                    d
                })
                .collect()
        };
        let store = SqliteStore::open_file(&path).unwrap();
        let count = |sql: &str| -> i64 { store.reader().query_row(sql, [], |r| r.get(0)).unwrap() };
        // Schema 17 carried each household's text over as one entry.
        assert_eq!(
            count("SELECT count(*) FROM rm_text WHERE item = ''"),
            5,
            "every household's text is carried over"
        );
        let mut newer = docs[2].clone();
        newer.household.seq = 9;
        newer.texts = vec![crate::store::console::SearchText::new(
            "household",
            "新的说明",
        )];
        assert!(store.put_read_model(&newer).unwrap());
        let station = docs[0].household.station;
        let found = |q: &str| -> Vec<String> {
            let filter = HouseholdFilter {
                text: Some(q.into()),
                limit: 10,
                ..Default::default()
            };
            let rows = store.households(station, &filter).unwrap();
            rows.into_iter().map(|h| h.code).collect()
        };
        assert!(found("旧的说明2").is_empty(), "the old text is gone");
        assert_eq!(found("新的说明"), ["HH-000002"]);
        assert_eq!(
            found("旧的说明4"),
            ["HH-000004"],
            "the others are untouched"
        );
        assert_eq!(count("SELECT count(*) FROM rm_text"), 5);
        assert_eq!(
            count("SELECT count(*) FROM rm_text WHERE item = ''"),
            4,
            "the refreshed household's entry from before schema 17 is replaced"
        );
    }
}

#[cfg(test)]
mod backup_tests {
    // A test: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A backup holds each row's bytes once: the copy's b-trees split as rows go in, and a
    /// split must not leave the moved rows' old bytes in free space, where a later erasure
    /// or redaction of a restored copy (which zeroes the live row) would not reach them
    /// (docs/reliability.md, finding 15: a redacted marker outlived a re-applied redaction).
    #[test]
    fn a_backup_holds_no_dead_copy_of_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        const MARKER: &[u8] = "〔planted〕".as_bytes();
        const ROWS: usize = 60;
        store
            .write(|tx| {
                tx.execute_batch("CREATE TABLE planted (id INTEGER PRIMARY KEY, bytes BLOB)")?;
                for i in 0..ROWS {
                    // Rows of several hundred bytes, of varied sizes: pages split often.
                    let mut b = vec![b'x'; 300];
                    b.extend_from_slice(MARKER);
                    b.extend(std::iter::repeat_n(b'y', 300 + (i * 37) % 400));
                    tx.execute(
                        "INSERT INTO planted (id, bytes) VALUES (?1, ?2)",
                        params![i as i64, b],
                    )?;
                }
                Ok(())
            })
            .unwrap();
        let backup = dir.path().join("backup.db");
        store.backup(&backup).unwrap();
        let bytes = std::fs::read(&backup).unwrap();
        let copies = bytes.windows(MARKER.len()).filter(|w| *w == MARKER).count();
        assert_eq!(copies, ROWS, "the backup holds dead copies of rows");
    }
}
