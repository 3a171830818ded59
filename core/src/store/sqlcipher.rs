//! Telling a wrong key from a damaged file from something that is no database at all, when
//! an encrypted SQLite file's first page does not decrypt (ADR 0003). Shared by the device
//! store and the server's SQLite store, which open SQLCipher files the same way.

use std::path::Path;

use rusqlite::Connection;

/// What a file whose first page did not decrypt is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diagnosis {
    /// Not an encrypted database (too short, not whole pages, or not random-looking).
    NotADatabase,
    /// Every page fails its authentication: the key is wrong.
    WrongKey,
    /// Some pages fail: the file is damaged.
    Damaged,
}

/// Whether the file could be an encrypted SQLite database: at least two 512-byte pages
/// and a first page that looks like random bytes. `false` means [`Diagnosis::NotADatabase`].
pub fn could_be_encrypted_database(path: &Path) -> bool {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    len >= 1024 && len.is_multiple_of(512) && looks_encrypted(path)
}

/// With the key applied to `conn` (opened read-only on `path`), SQLCipher's
/// `cipher_integrity_check` checks each page's HMAC on its own: every page (or all but a
/// stray one) failing means a wrong key, some failing means damage.
pub fn key_or_damage(conn: &Connection, path: &Path) -> Diagnosis {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let failures: Result<Vec<String>, rusqlite::Error> = conn
        .prepare("PRAGMA cipher_integrity_check")
        .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(0))?.collect());
    let pages = (len / 4096).max(1);
    match failures {
        Ok(f) if (f.len() as u64) + 1 >= pages => Diagnosis::WrongKey,
        Ok(_) => Diagnosis::Damaged,
        Err(_) => Diagnosis::WrongKey,
    }
}

/// Encrypted pages look like random bytes (about 8 bits of entropy per byte); text, images'
/// headers and zero-filled files do not. Random bytes and a wrong key cannot be told apart.
fn looks_encrypted(path: &Path) -> bool {
    use std::io::Read;
    let mut page = vec![0u8; 4096];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(n) = f.read(&mut page) else {
        return false;
    };
    let mut counts = [0u32; 256];
    for b in &page[..n] {
        counts[usize::from(*b)] += 1;
    }
    let total = n as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / total;
            -p * p.log2()
        })
        .sum();
    entropy > 7.5
}
