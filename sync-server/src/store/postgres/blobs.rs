//! Attachments' bytes on PostgreSQL (`store::blobs`, ADR 0023): bytea in chunks, same rules
//! as the SQLite backend. A blob's row is locked (`FOR UPDATE`) by every write to it, so two
//! instances appending to one blob cannot both take the same offset.

use ::postgres::GenericClient;
use doorstep_core::{DeviceId, HouseholdId};

use super::PostgresStore;
use crate::store::blobs::*;
use crate::store::{StoreError, StoreResult};

fn i(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn row(c: &mut impl GenericClient, key: &BlobKey, lock: bool) -> StoreResult<Option<BlobRow>> {
    let sql = if lock {
        "SELECT size, received, complete FROM blobs WHERE hash = $1 FOR UPDATE"
    } else {
        "SELECT size, received, complete FROM blobs WHERE hash = $1"
    };
    Ok(c.query_opt(sql, &[&key.as_bytes()])?.map(|r| BlobRow {
        size: u(r.get(0)),
        received: u(r.get(1)),
        complete: r.get(2),
    }))
}

impl BlobStore for PostgresStore {
    fn blob(&self, key: &BlobKey) -> StoreResult<Option<BlobRow>> {
        row(&mut *self.pool.get()?, key, false)
    }

    fn begin_blob(
        &self,
        key: &BlobKey,
        size: u64,
        device: DeviceId,
        quota: u64,
        now_ms: i64,
    ) -> StoreResult<BlobBegin> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let dev = device.to_string();
        // One device's uploads are counted one at a time.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&dev])?;
        if let Some(r) = row(&mut tx, key, true)? {
            if !r.complete {
                tx.execute(
                    "UPDATE blobs SET touched_at = $2 WHERE hash = $1",
                    &[&key.as_bytes(), &now_ms],
                )?;
            }
            tx.commit()?;
            return Ok(if r.size == size {
                BlobBegin::Row(r)
            } else {
                BlobBegin::SizeMismatch
            });
        }
        let used: i64 = tx
            .query_one(
                "SELECT coalesce(sum(size), 0)::BIGINT FROM blobs WHERE uploader = $1",
                &[&dev],
            )?
            .get(0);
        if u(used).saturating_add(size) > quota {
            return Ok(BlobBegin::OverQuota);
        }
        let inserted = tx.execute(
            "INSERT INTO blobs (hash, size, received, complete, uploader, created_at, touched_at)
             VALUES ($1, $2, 0, FALSE, $3, $4, $4) ON CONFLICT (hash) DO NOTHING",
            &[&key.as_bytes(), &i(size), &dev, &now_ms],
        )?;
        if inserted == 0 {
            // Another device started it at the same instant: answer with its row.
            let r = row(&mut tx, key, false)?.ok_or(StoreError::NotFound("blob"))?;
            tx.commit()?;
            return Ok(if r.size == size {
                BlobBegin::Row(r)
            } else {
                BlobBegin::SizeMismatch
            });
        }
        tx.commit()?;
        Ok(BlobBegin::Row(BlobRow {
            size,
            received: 0,
            complete: false,
        }))
    }

    fn append_blob(
        &self,
        key: &BlobKey,
        offset: u64,
        bytes: &[u8],
        now_ms: i64,
    ) -> StoreResult<u64> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let r = row(&mut tx, key, true)?.ok_or(StoreError::NotFound("blob"))?;
        let end = offset.saturating_add(bytes.len() as u64);
        if r.complete || r.received != offset || end > r.size {
            return Err(StoreError::Conflict("chunk does not continue the blob"));
        }
        tx.execute(
            "INSERT INTO blob_chunks (hash, pos, bytes) VALUES ($1, $2, $3)",
            &[&key.as_bytes(), &i(offset), &bytes],
        )?;
        tx.execute(
            "UPDATE blobs SET received = $2, touched_at = $3 WHERE hash = $1",
            &[&key.as_bytes(), &i(end), &now_ms],
        )?;
        tx.commit()?;
        Ok(end)
    }

    fn finish_blob(&self, key: &BlobKey) -> StoreResult<bool> {
        use sha2::Digest;
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let r = row(&mut tx, key, true)?.ok_or(StoreError::NotFound("blob"))?;
        if r.complete {
            return Ok(true);
        }
        let mut hasher = sha2::Sha256::new();
        let mut held = 0u64;
        for chunk in tx.query(
            "SELECT bytes FROM blob_chunks WHERE hash = $1 ORDER BY pos",
            &[&key.as_bytes()],
        )? {
            let b: &[u8] = chunk.get(0);
            held += b.len() as u64;
            hasher.update(b);
        }
        let digest: [u8; 32] = hasher.finalize().into();
        if held == r.size && digest == key.hash.0 {
            tx.execute(
                "UPDATE blobs SET complete = TRUE WHERE hash = $1",
                &[&key.as_bytes()],
            )?;
            tx.commit()?;
            return Ok(true);
        }
        tx.execute(
            "DELETE FROM blob_chunks WHERE hash = $1",
            &[&key.as_bytes()],
        )?;
        tx.execute(
            "UPDATE blobs SET received = 0 WHERE hash = $1",
            &[&key.as_bytes()],
        )?;
        tx.commit()?;
        Ok(false)
    }

    fn read_blob(&self, key: &BlobKey, from: u64, len: usize) -> StoreResult<Vec<u8>> {
        let end = from.saturating_add(len as u64);
        let rows = self.pool.get()?.query(
            "SELECT pos, bytes FROM blob_chunks WHERE hash = $1 AND pos < $3
               AND pos + octet_length(bytes) > $2 ORDER BY pos",
            &[&key.as_bytes(), &i(from), &i(end)],
        )?;
        let mut out = Vec::with_capacity(len.min(1 << 20));
        for r in rows {
            let pos = u(r.get(0));
            let b: &[u8] = r.get(1);
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
            .pool
            .get()?
            .query_opt(
                "SELECT 1 FROM blob_refs WHERE hash = $1 AND doc_id = $2",
                &[&key.as_bytes(), &doc.to_string()],
            )?
            .is_some())
    }

    fn note_blob_ref(&self, key: &BlobKey, doc: HouseholdId) -> StoreResult<()> {
        self.pool.get()?.execute(
            "INSERT INTO blob_refs (hash, doc_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&key.as_bytes(), &doc.to_string()],
        )?;
        Ok(())
    }

    fn blob_tail(&self, key: &BlobKey) -> StoreResult<Option<(u64, Vec<u8>)>> {
        Ok(self
            .pool
            .get()?
            .query_opt(
                "SELECT pos, bytes FROM blob_tails WHERE hash = $1",
                &[&key.as_bytes()],
            )?
            .map(|r| (u(r.get(0)), r.get(1))))
    }

    fn set_blob_tail(&self, key: &BlobKey, pos: u64, bytes: &[u8], now_ms: i64) -> StoreResult<()> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let held = row(&mut tx, key, true)?;
        if held.is_some_and(|r| !r.complete && r.received == pos) {
            tx.execute(
                "INSERT INTO blob_tails (hash, pos, bytes) VALUES ($1, $2, $3)
                 ON CONFLICT (hash) DO UPDATE SET pos = EXCLUDED.pos, bytes = EXCLUDED.bytes",
                &[&key.as_bytes(), &i(pos), &bytes],
            )?;
            tx.execute(
                "UPDATE blobs SET touched_at = $2 WHERE hash = $1",
                &[&key.as_bytes(), &now_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn clear_blob_tail(&self, key: &BlobKey) -> StoreResult<()> {
        self.pool
            .get()?
            .execute("DELETE FROM blob_tails WHERE hash = $1", &[&key.as_bytes()])?;
        Ok(())
    }

    fn sweep_partial_blobs(&self, before_ms: i64) -> StoreResult<BlobSweep> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        // Locked like every write to a blob: a chunk landing now waits, then finds no row
        // (the device starts again from its first byte).
        let stale: Vec<(Vec<u8>, i64)> = tx
            .query(
                "SELECT hash, received FROM blobs WHERE NOT complete AND touched_at < $1
                 FOR UPDATE",
                &[&before_ms],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut swept = BlobSweep::default();
        for (hash, received) in stale {
            let tail: i64 = tx
                .query_one(
                    "SELECT coalesce(sum(octet_length(bytes)), 0)::BIGINT FROM blob_tails
                     WHERE hash = $1",
                    &[&hash],
                )?
                .get(0);
            for table in ["blob_chunks", "blob_tails", "blobs"] {
                tx.execute(&format!("DELETE FROM {table} WHERE hash = $1"), &[&hash])?;
            }
            swept.blobs += 1;
            swept.bytes += u(received) + u(tail);
        }
        tx.commit()?;
        Ok(swept)
    }

    fn blob_stats(&self) -> StoreResult<BlobStats> {
        let r = self.pool.get()?.query_one(
            "SELECT count(*) FILTER (WHERE complete),
                    coalesce(sum(size) FILTER (WHERE complete), 0)::BIGINT,
                    count(*) FILTER (WHERE NOT complete),
                    coalesce(sum(received) FILTER (WHERE NOT complete), 0)::BIGINT
             FROM blobs",
            &[],
        )?;
        Ok(BlobStats {
            complete: u(r.get(0)),
            complete_bytes: u(r.get(1)),
            partial: u(r.get(2)),
            partial_bytes: u(r.get(3)),
        })
    }
}

/// In an erasure's transaction: the household's references go, and with them every blob
/// no other household references (bytes and row).
pub(super) fn erase_doc(tx: &mut impl GenericClient, doc: &str) -> StoreResult<()> {
    let gone = "SELECT hash FROM blob_refs WHERE doc_id = $1
                  AND hash NOT IN (SELECT hash FROM blob_refs WHERE doc_id <> $1)";
    tx.execute(
        &format!("DELETE FROM blob_chunks WHERE hash IN ({gone})"),
        &[&doc],
    )?;
    tx.execute(
        &format!("DELETE FROM blob_tails WHERE hash IN ({gone})"),
        &[&doc],
    )?;
    tx.execute(
        &format!("DELETE FROM blobs WHERE hash IN ({gone})"),
        &[&doc],
    )?;
    tx.execute("DELETE FROM blob_refs WHERE doc_id = $1", &[&doc])?;
    Ok(())
}

/// In a redaction's transaction (ADR 0029): the household's references to blobs its new
/// generation does not name (`kept`) go, and with them every such blob no other household
/// references (bytes, tail and row). Returns how many blobs went.
pub(super) fn release_doc(
    tx: &mut impl GenericClient,
    doc: &str,
    kept: &[BlobKey],
) -> StoreResult<u64> {
    let held: Vec<Vec<u8>> = tx
        .query("SELECT hash FROM blob_refs WHERE doc_id = $1", &[&doc])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut gone = 0;
    for hash in held {
        if kept.iter().any(|k| k.as_bytes() == hash.as_slice()) {
            continue;
        }
        tx.execute(
            "DELETE FROM blob_refs WHERE doc_id = $1 AND hash = $2",
            &[&doc, &hash],
        )?;
        let elsewhere: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM blob_refs WHERE hash = $1)",
                &[&hash],
            )?
            .get(0);
        if !elsewhere {
            for table in ["blob_chunks", "blob_tails", "blobs"] {
                tx.execute(&format!("DELETE FROM {table} WHERE hash = $1"), &[&hash])?;
            }
            gone += 1;
        }
    }
    Ok(gone)
}
