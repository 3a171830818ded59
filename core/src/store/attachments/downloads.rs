//! Downloads on demand (ADR 0023): the bytes of a blob arrive in pieces, are kept as they
//! come (a cut download resumes at the next byte) and are checked whole against the hash.

use rusqlite::{params, OptionalExtension};

use super::size_i64;
use crate::error::{Error, Result};
use crate::model::attachment::{BlobHash, MAX_ATTACHMENT_BYTES};
use crate::model::ids::HouseholdId;
use crate::store::Store;

impl Store {
    /// How many bytes of a download this phone holds (0: none yet).
    pub fn attachment_held(&self, household: HouseholdId, hash: BlobHash) -> Result<u64> {
        let w = self.writer();
        let held: Option<i64> = w
            .conn
            .prepare_cached("SELECT held FROM attachment_blobs WHERE doc_id = ?1 AND hash = ?2")?
            .query_row(params![household.to_string(), hash.0.as_slice()], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(held.unwrap_or(0).max(0) as u64)
    }

    /// Keep bytes of a download that start at `offset` (what this phone holds so far: a
    /// resumed download continues there). When the last byte arrives the whole blob's
    /// SHA-256 is checked: on a mismatch what was held is dropped (the next fetch starts
    /// over) and the call fails. Returns the bytes held after it.
    pub fn append_attachment_download(
        &self,
        household: HouseholdId,
        hash: BlobHash,
        size: u64,
        offset: u64,
        bytes: &[u8],
    ) -> Result<u64> {
        if offset.saturating_add(bytes.len() as u64) > size || size > MAX_ATTACHMENT_BYTES {
            return Err(Error::InvalidInput("download past the attachment's size"));
        }
        let h = household.to_string();
        let mut w = self.writer();
        let tx = w.conn.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO attachment_blobs (doc_id, hash, size, held, data)
             VALUES (?1, ?2, ?3, 0, x'')",
            params![h, hash.0.as_slice(), size_i64(size)],
        )?;
        let held: i64 = tx.query_row(
            "SELECT held FROM attachment_blobs WHERE doc_id = ?1 AND hash = ?2",
            params![h, hash.0.as_slice()],
            |r| r.get(0),
        )?;
        if held != size_i64(offset) {
            return Err(Error::InvalidInput(
                "download does not continue what is held",
            ));
        }
        let now = offset + bytes.len() as u64;
        tx.execute(
            "UPDATE attachment_blobs SET data = CAST(data || ?3 AS BLOB), held = ?4
             WHERE doc_id = ?1 AND hash = ?2",
            params![h, hash.0.as_slice(), bytes, size_i64(now)],
        )?;
        if now == size {
            let data: Vec<u8> = tx.query_row(
                "SELECT data FROM attachment_blobs WHERE doc_id = ?1 AND hash = ?2",
                params![h, hash.0.as_slice()],
                |r| r.get(0),
            )?;
            if BlobHash::of(&data) != hash {
                tx.execute(
                    "DELETE FROM attachment_blobs WHERE doc_id = ?1 AND hash = ?2",
                    params![h, hash.0.as_slice()],
                )?;
                tx.commit()?;
                return Err(Error::InvalidInput(
                    "downloaded attachment does not match its hash",
                ));
            }
        }
        tx.commit()?;
        Ok(now)
    }
}
