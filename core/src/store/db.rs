//! Opening the encrypted SQLite file: key, pragmas, and telling a wrong key from a file
//! that is not a store or a store that is damaged.

use std::fmt;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// The key of a store. Apps keep a random 256-bit key in Android Keystore / iOS Keychain
/// and pass it raw; a passphrase pays SQLCipher's key derivation (slow on a phone) on every
/// open and is offered for tools and tests.
#[derive(Clone)]
pub enum StoreKey {
    /// 32 random bytes, given to SQLCipher as a raw key (no key derivation).
    Raw([u8; 32]),
    /// A passphrase, stretched by SQLCipher's PBKDF2.
    Passphrase(String),
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreKey::Raw(_) => f.write_str("StoreKey::Raw(<redacted>)"),
            StoreKey::Passphrase(_) => f.write_str("StoreKey::Passphrase(<redacted>)"),
        }
    }
}

impl StoreKey {
    fn pragma_value(&self) -> String {
        match self {
            StoreKey::Raw(bytes) => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                format!("\"x'{hex}'\"")
            }
            StoreKey::Passphrase(p) => format!("'{}'", p.replace('\'', "''")),
        }
    }
}

/// How hard a write call works to be on disk before it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: when a write returns Ok it survives power loss. The default.
    Full,
    /// `synchronous=OFF`: for bulk loading in benchmarks and tools only.
    Relaxed,
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Keyings of this process, one at a time. Concurrent first keyings were seen to fail
/// `PRAGMA key` now and then (the simulation's first seeds; SQLCipher sets up its crypto
/// provider on first use), and later ones too, rarely (a CI run of wave 2: "An error
/// occurred with PRAGMA key" while test threads opened stores at once). A raw key costs
/// no derivation, so serialising every keying costs nothing that matters; a keying that
/// fails anyway is tried again a few times before its error is returned.
static KEYING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn apply_key(conn: &Connection, key: &StoreKey) -> Result<()> {
    let _one_at_a_time = KEYING.lock().unwrap_or_else(|p| p.into_inner());
    let mut attempt = 0;
    loop {
        attempt += 1;
        match apply_key_now(conn, key) {
            Err(Error::Storage(_)) if attempt < 4 => {
                std::thread::sleep(std::time::Duration::from_millis(10 * attempt))
            }
            other => return other,
        }
    }
}

fn apply_key_now(conn: &Connection, key: &StoreKey) -> Result<()> {
    // SQLCipher logs decryption failures to stderr by default; the caller gets the error.
    conn.execute_batch("PRAGMA cipher_log_level = NONE;")
        .map_err(Error::Storage)?;
    conn.execute_batch(&format!("PRAGMA key = {};", key.pragma_value()))
        .map_err(Error::Storage)?;
    // Wiping freed memory costs time on every page; the key stays in the process anyway.
    conn.execute_batch("PRAGMA cipher_memory_security = OFF;")
        .map_err(Error::Storage)?;
    Ok(())
}

/// A connection that closes does not fold the WAL into the database file: a store that
/// fails to open stays byte for byte as it was (for a person or a recovery tool to look
/// at), and a store that opened folds its WAL explicitly when it is dropped.
fn no_checkpoint_on_close(conn: &Connection) -> Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(Error::Storage)?;
    Ok(())
}

fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ffi::ErrorCode::NotADatabase)
    )
}

/// Open (or create) the store file with its key; the connection is ready for use.
pub(crate) fn open_connection(
    path: &Path,
    key: &StoreKey,
    durability: Durability,
    read_only: bool,
) -> Result<Connection> {
    if let Ok(mut f) = std::fs::File::open(path) {
        use std::io::Read;
        let mut head = [0u8; 16];
        if f.read_exact(&mut head).is_ok() && &head == SQLITE_HEADER {
            // A plain SQLite file: not ours (ours are encrypted from the first byte).
            return Err(Error::NotAStore);
        }
    }
    if !read_only && durability == Durability::Full {
        // Before SQLite's recovery can drop acknowledged transactions from a damaged WAL.
        // (Without fsyncs there is no write order to tell damage from a torn write by.)
        super::wal::check(path)?;
    }
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(Error::Storage)?;
    apply_key(&conn, key)?;
    no_checkpoint_on_close(&conn)?;
    super::schema::register_functions(&conn)?;
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => {}
        Err(e) if is_not_a_database(&e) => {
            drop(conn);
            return Err(diagnose(path, key));
        }
        Err(e) => return Err(e.into()),
    }
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(Error::Storage)?;
    if !read_only {
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(Error::from)?;
    }
    let sync = synchronous(durability);
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;"
    ))
    .map_err(Error::from)?;
    Ok(conn)
}

/// The `PRAGMA synchronous` level of a durability.
pub(crate) fn synchronous(durability: Durability) -> &'static str {
    match durability {
        Durability::Full => "FULL",
        Durability::Relaxed => "OFF",
    }
}

/// The first page did not decrypt. A wrong key fails every page's authentication; damage
/// fails some. SQLCipher's `cipher_integrity_check` checks each page's HMAC on its own.
fn diagnose(path: &Path, key: &StoreKey) -> Error {
    use super::sqlcipher::{could_be_encrypted_database, key_or_damage, Diagnosis};
    if !could_be_encrypted_database(path) {
        return Error::NotAStore;
    }
    let Ok(conn) = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return Error::NotAStore;
    };
    if apply_key(&conn, key).is_err() {
        return Error::WrongKey;
    }
    if no_checkpoint_on_close(&conn).is_err() {
        return Error::Damaged;
    }
    match key_or_damage(&conn, path) {
        Diagnosis::Damaged => Error::Damaged,
        Diagnosis::WrongKey | Diagnosis::NotADatabase => Error::WrongKey,
    }
}
