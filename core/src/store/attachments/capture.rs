//! Keeping a captured attachment's bytes (the first transaction of a capture): from memory,
//! or from a file read in pieces straight into the store's blob, so memory stays bounded by
//! one piece whatever the file's size.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, MAIN_DB};
use sha2::Digest;

use super::size_i64;
use crate::error::{Error, Result};
use crate::model::attachment::{BlobHash, MAX_ATTACHMENT_BYTES};
use crate::model::ids::HouseholdId;

/// Bytes read from a file at a time.
const PIECE: usize = 64 * 1024;

/// The address a file's bytes are kept under until their hash is known (no SHA-256 is all
/// zeros; the row never outlives the transaction under this address).
const UNHASHED: [u8; 32] = [0; 32];

pub(super) fn checked_size(size: u64) -> Result<()> {
    if size == 0 {
        return Err(Error::InvalidInput("an attachment needs bytes"));
    }
    if size > MAX_ATTACHMENT_BYTES {
        return Err(Error::InvalidInput("attachment larger than the limit"));
    }
    Ok(())
}

fn unreadable(e: std::io::Error) -> Error {
    match e.kind() {
        ErrorKind::NotFound => Error::NotFound("attachment file"),
        _ => Error::InvalidInput("the attachment file cannot be read"),
    }
}

/// A regular file, opened, of an acceptable size (checked before a byte is read).
pub(super) struct CaptureFile {
    file: File,
    size: u64,
}

pub(super) fn open_file(path: &Path) -> Result<CaptureFile> {
    let file = File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(Error::InvalidInput("the attachment path is not a file"));
    }
    checked_size(meta.len())?;
    Ok(CaptureFile {
        file,
        size: meta.len(),
    })
}

/// The whole of a file (for a photo to decode), checked like a capture from a file first.
#[cfg(feature = "photos")]
pub(super) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let CaptureFile { mut file, size } = open_file(path)?;
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut out).map_err(unreadable)?;
    if out.len() as u64 != size {
        return Err(Error::InvalidInput(
            "the attachment file changed while it was read",
        ));
    }
    Ok(out)
}

/// Keep bytes held in memory.
pub(super) fn keep_bytes(
    tx: &Connection,
    household: HouseholdId,
    bytes: &[u8],
) -> Result<(BlobHash, u64)> {
    checked_size(bytes.len() as u64)?;
    let hash = BlobHash::of(bytes);
    let size = bytes.len() as u64;
    let h = household.to_string();
    tx.execute(
        "INSERT OR IGNORE INTO attachment_blobs (doc_id, hash, size, held, data)
         VALUES (?1, ?2, ?3, ?3, ?4)",
        params![h, hash.0.as_slice(), size_i64(size), bytes],
    )?;
    // A download under way of the same bytes is finished by the capture.
    tx.execute(
        "UPDATE attachment_blobs SET held = size, data = ?3
         WHERE doc_id = ?1 AND hash = ?2 AND held < size",
        params![h, hash.0.as_slice(), bytes],
    )?;
    Ok((hash, size))
}

/// Keep a file's bytes: a row of the file's size is made under a provisional address, the
/// file is copied into it piece by piece (hashed on the way), and the row then takes its
/// hash as address, or goes if the household holds those bytes already. A file whose length
/// changes while it is read is refused (the transaction is dropped with the row).
pub(super) fn keep_file(
    tx: &Connection,
    household: HouseholdId,
    file: CaptureFile,
) -> Result<(BlobHash, u64)> {
    let CaptureFile { mut file, size } = file;
    let h = household.to_string();
    tx.execute(
        "INSERT OR REPLACE INTO attachment_blobs (doc_id, hash, size, held, data)
         VALUES (?1, ?2, ?3, ?3, zeroblob(?3))",
        params![h, UNHASHED.as_slice(), size_i64(size)],
    )?;
    let row = tx.last_insert_rowid();
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; PIECE];
    let mut copied = 0u64;
    {
        let mut blob = tx.blob_open(MAIN_DB, c"attachment_blobs", c"data", row, false)?;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(unreadable(e)),
            };
            copied += n as u64;
            if copied > size {
                break;
            }
            hasher.update(&buf[..n]);
            blob.write_all(&buf[..n])?;
        }
    }
    if copied != size {
        return Err(Error::InvalidInput(
            "the attachment file changed while it was read",
        ));
    }
    let hash = BlobHash(hasher.finalize().into());
    let held: Option<i64> = tx
        .query_row(
            "SELECT held FROM attachment_blobs WHERE doc_id = ?1 AND hash = ?2",
            params![h, hash.0.as_slice()],
            |r| r.get(0),
        )
        .optional()?;
    match held {
        // Held whole already (the same file attached twice): the copy goes.
        Some(held) if held == size_i64(size) => {
            tx.execute("DELETE FROM attachment_blobs WHERE rowid = ?1", [row])?;
        }
        // A download under way of the same bytes is finished by the capture.
        other => {
            if other.is_some() {
                tx.execute(
                    "DELETE FROM attachment_blobs WHERE doc_id = ?1 AND hash = ?2",
                    params![h, hash.0.as_slice()],
                )?;
            }
            tx.execute(
                "UPDATE attachment_blobs SET hash = ?2 WHERE rowid = ?1",
                params![row, hash.0.as_slice()],
            )?;
        }
    }
    Ok((hash, size))
}
