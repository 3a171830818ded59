//! Attachments' bytes on SQLite (`store::blobs`, ADR 0023): tables in the encrypted
//! database, chunks in upload order.

use doorstep_core::{DeviceId, HouseholdId};
use rusqlite::{params, Connection, OptionalExtension};

use super::SqliteStore;
use crate::store::blobs::*;
use crate::store::{StoreError, StoreResult};

fn i(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn row(conn: &Connection, key: &BlobKey) -> StoreResult<Option<BlobRow>> {
    Ok(conn
        .prepare_cached("SELECT size, received, complete FROM blobs WHERE hash = ?1")?
        .query_row([key.as_bytes()], |r| {
            Ok(BlobRow {
                size: u(r.get(0)?),
                received: u(r.get(1)?),
                complete: r.get(2)?,
            })
        })
        .optional()?)
}

impl BlobStore for SqliteStore {
    fn blob(&self, key: &BlobKey) -> StoreResult<Option<BlobRow>> {
        row(&self.reader(), key)
    }

    fn begin_blob(
        &self,
        key: &BlobKey,
        size: u64,
        device: DeviceId,
        quota: u64,
        now_ms: i64,
    ) -> StoreResult<BlobBegin> {
        self.write(|tx| {
            if let Some(r) = row(tx, key)? {
                if !r.complete {
                    tx.execute(
                        "UPDATE blobs SET touched_at = ?2 WHERE hash = ?1",
                        params![key.as_bytes(), now_ms],
                    )?;
                }
                return Ok(if r.size == size {
                    BlobBegin::Row(r)
                } else {
                    BlobBegin::SizeMismatch
                });
            }
            let used: i64 = tx.query_row(
                "SELECT coalesce(sum(size), 0) FROM blobs WHERE uploader = ?1",
                [device.to_string()],
                |r| r.get(0),
            )?;
            if u(used).saturating_add(size) > quota {
                return Ok(BlobBegin::OverQuota);
            }
            tx.execute(
                "INSERT INTO blobs (hash, size, received, complete, uploader, created_at,
                                    touched_at)
                 VALUES (?1, ?2, 0, 0, ?3, ?4, ?4)",
                params![key.as_bytes(), i(size), device.to_string(), now_ms],
            )?;
            Ok(BlobBegin::Row(BlobRow {
                size,
                received: 0,
                complete: false,
            }))
        })
    }

    fn append_blob(
        &self,
        key: &BlobKey,
        offset: u64,
        bytes: &[u8],
        now_ms: i64,
    ) -> StoreResult<u64> {
        self.write(|tx| {
            let r = row(tx, key)?.ok_or(StoreError::NotFound("blob"))?;
            let end = offset.saturating_add(bytes.len() as u64);
            if r.complete || r.received != offset || end > r.size {
                return Err(StoreError::Conflict("chunk does not continue the blob"));
            }
            tx.execute(
                "INSERT INTO blob_chunks (hash, pos, bytes) VALUES (?1, ?2, ?3)",
                params![key.as_bytes(), i(offset), bytes],
            )?;
            tx.execute(
                "UPDATE blobs SET received = ?2, touched_at = ?3 WHERE hash = ?1",
                params![key.as_bytes(), i(end), now_ms],
            )?;
            Ok(end)
        })
    }

    fn finish_blob(&self, key: &BlobKey) -> StoreResult<bool> {
        use sha2::Digest;
        self.write(|tx| {
            let r = row(tx, key)?.ok_or(StoreError::NotFound("blob"))?;
            if r.complete {
                return Ok(true);
            }
            let mut hasher = sha2::Sha256::new();
            let mut held = 0u64;
            {
                let mut stmt = tx
                    .prepare_cached("SELECT bytes FROM blob_chunks WHERE hash = ?1 ORDER BY pos")?;
                let mut rows = stmt.query([key.as_bytes()])?;
                while let Some(row) = rows.next()? {
                    let b = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
                    held += b.len() as u64;
                    hasher.update(b);
                }
            }
            let digest: [u8; 32] = hasher.finalize().into();
            if held == r.size && digest == key.hash.0 {
                tx.execute(
                    "UPDATE blobs SET complete = 1 WHERE hash = ?1",
                    [key.as_bytes()],
                )?;
                return Ok(true);
            }
            tx.execute("DELETE FROM blob_chunks WHERE hash = ?1", [key.as_bytes()])?;
            tx.execute(
                "UPDATE blobs SET received = 0 WHERE hash = ?1",
                [key.as_bytes()],
            )?;
            Ok(false)
        })
    }

    fn read_blob(&self, key: &BlobKey, from: u64, len: usize) -> StoreResult<Vec<u8>> {
        let conn = self.reader();
        let end = from.saturating_add(len as u64);
        let mut stmt = conn.prepare_cached(
            "SELECT pos, bytes FROM blob_chunks WHERE hash = ?1 AND pos < ?3
               AND pos + length(bytes) > ?2 ORDER BY pos",
        )?;
        let mut rows = stmt.query(params![key.as_bytes(), i(from), i(end)])?;
        let mut out = Vec::with_capacity(len.min(1 << 20));
        while let Some(row) = rows.next()? {
            let pos = u(row.get(0)?);
            let b = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            let start = usize::try_from(from.saturating_sub(pos)).unwrap_or(usize::MAX);
            let stop = usize::try_from(end - pos)
                .unwrap_or(usize::MAX)
                .min(b.len());
            if start < stop {
                out.extend_from_slice(&b[start..stop]);
            }
        }
        Ok(out)
    }

    fn blob_referenced(&self, key: &BlobKey, doc: HouseholdId) -> StoreResult<bool> {
        Ok(self
            .reader()
            .prepare_cached("SELECT 1 FROM blob_refs WHERE hash = ?1 AND doc_id = ?2")?
            .query_row(params![key.as_bytes(), doc.to_string()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn note_blob_ref(&self, key: &BlobKey, doc: HouseholdId) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO blob_refs (hash, doc_id) VALUES (?1, ?2)",
                params![key.as_bytes(), doc.to_string()],
            )?;
            Ok(())
        })
    }

    fn blob_tail(&self, key: &BlobKey) -> StoreResult<Option<(u64, Vec<u8>)>> {
        Ok(self
            .reader()
            .prepare_cached("SELECT pos, bytes FROM blob_tails WHERE hash = ?1")?
            .query_row([key.as_bytes()], |r| Ok((u(r.get(0)?), r.get(1)?)))
            .optional()?)
    }

    fn set_blob_tail(&self, key: &BlobKey, pos: u64, bytes: &[u8], now_ms: i64) -> StoreResult<()> {
        self.write(|tx| {
            let held = row(tx, key)?;
            if held.is_some_and(|r| !r.complete && r.received == pos) {
                tx.execute(
                    "INSERT OR REPLACE INTO blob_tails (hash, pos, bytes) VALUES (?1, ?2, ?3)",
                    params![key.as_bytes(), i(pos), bytes],
                )?;
                tx.execute(
                    "UPDATE blobs SET touched_at = ?2 WHERE hash = ?1",
                    params![key.as_bytes(), now_ms],
                )?;
            }
            Ok(())
        })
    }

    fn clear_blob_tail(&self, key: &BlobKey) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM blob_tails WHERE hash = ?1", [key.as_bytes()])?;
            Ok(())
        })
    }

    fn sweep_partial_blobs(&self, before_ms: i64) -> StoreResult<BlobSweep> {
        let stale = "SELECT hash FROM blobs WHERE complete = 0 AND touched_at < ?1";
        let swept = self.write(|tx| {
            let (blobs, bytes): (i64, i64) = tx.query_row(
                &format!(
                    "SELECT count(*), coalesce(sum(received), 0)
                       + (SELECT coalesce(sum(length(bytes)), 0) FROM blob_tails
                          WHERE hash IN ({stale}))
                     FROM blobs WHERE complete = 0 AND touched_at < ?1"
                ),
                [before_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            for table in ["blob_chunks", "blob_tails", "blobs"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE hash IN ({stale})"),
                    [before_ms],
                )?;
            }
            Ok(BlobSweep {
                blobs: u(blobs),
                bytes: u(bytes),
            })
        })?;
        if swept.blobs > 0 && !self.truncate_wal() {
            tracing::warn!("the WAL could not be truncated after a sweep of partial uploads");
        }
        Ok(swept)
    }

    fn blob_stats(&self) -> StoreResult<BlobStats> {
        Ok(self.reader().query_row(
            "SELECT coalesce(sum(complete), 0), coalesce(sum(CASE WHEN complete THEN size END), 0),
                    coalesce(sum(1 - complete), 0),
                    coalesce(sum(CASE WHEN complete THEN 0 ELSE received END), 0)
             FROM blobs",
            [],
            |r| {
                Ok(BlobStats {
                    complete: u(r.get(0)?),
                    complete_bytes: u(r.get(1)?),
                    partial: u(r.get(2)?),
                    partial_bytes: u(r.get(3)?),
                })
            },
        )?)
    }
}

/// In an erasure's transaction: the household's references go, and with them every blob
/// no other household references (bytes and row).
pub(super) fn erase_doc(tx: &Connection, doc: &str) -> StoreResult<()> {
    let gone = "SELECT hash FROM blob_refs WHERE doc_id = ?1
                  AND hash NOT IN (SELECT hash FROM blob_refs WHERE doc_id <> ?1)";
    tx.execute(
        &format!("DELETE FROM blob_chunks WHERE hash IN ({gone})"),
        [doc],
    )?;
    tx.execute(
        &format!("DELETE FROM blob_tails WHERE hash IN ({gone})"),
        [doc],
    )?;
    tx.execute(&format!("DELETE FROM blobs WHERE hash IN ({gone})"), [doc])?;
    tx.execute("DELETE FROM blob_refs WHERE doc_id = ?1", [doc])?;
    Ok(())
}

/// In a redaction's transaction (ADR 0029): the household's references to blobs its new
/// generation does not name (`kept`) go, and with them every such blob no other household
/// references (bytes, tail and row). Returns how many blobs went.
pub(super) fn release_doc(tx: &Connection, doc: &str, kept: &[BlobKey]) -> StoreResult<u64> {
    let held: Vec<Vec<u8>> = tx
        .prepare("SELECT hash FROM blob_refs WHERE doc_id = ?1")?
        .query_map([doc], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut gone = 0;
    for hash in held {
        if kept.iter().any(|k| k.as_bytes() == hash.as_slice()) {
            continue;
        }
        tx.execute(
            "DELETE FROM blob_refs WHERE doc_id = ?1 AND hash = ?2",
            params![doc, hash],
        )?;
        let elsewhere: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM blob_refs WHERE hash = ?1)",
            [&hash],
            |r| r.get(0),
        )?;
        if !elsewhere {
            for table in ["blob_chunks", "blob_tails", "blobs"] {
                tx.execute(&format!("DELETE FROM {table} WHERE hash = ?1"), [&hash])?;
            }
            gone += 1;
        }
    }
    Ok(gone)
}
