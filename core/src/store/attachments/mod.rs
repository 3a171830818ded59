//! Attachments on the phone (issue 20, ADR 0023): captured bytes kept inside the encrypted
//! store, addressed by SHA-256; the reference written into the household's document; the
//! upload queue the app observes; downloads that resume at the byte they stopped at.
//!
//! Capture is two transactions: the bytes and the queue entry first, then the reference
//! (an ordinary action on the household). A crash between them leaves bytes without a
//! reference: never a reference whose bytes were lost.

mod downloads;
#[cfg(test)]
mod tests;
mod uploads;

use rusqlite::{params, OptionalExtension};

use super::*;
use crate::model::attachment::{
    checked_mime, Attachment, BlobHash, NewAttachment, MAX_ATTACHMENT_BYTES,
};

pub use uploads::{AttachmentUpload, AttachmentUploadState};

fn size_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    /// Attach `bytes` (a photo, a signature, a scanned paper) to a record of a household.
    /// The bytes are stored in this (encrypted) store under their SHA-256 and queued for
    /// upload; the reference, with who attached it, on which device and when, goes into
    /// the household's document and syncs with it. Empty or larger than
    /// [`MAX_ATTACHMENT_BYTES`]: refused.
    pub fn add_attachment(
        &self,
        household: HouseholdId,
        new: &NewAttachment,
        bytes: &[u8],
    ) -> Result<Attachment> {
        if bytes.is_empty() {
            return Err(Error::InvalidInput("an attachment needs bytes"));
        }
        if bytes.len() as u64 > MAX_ATTACHMENT_BYTES {
            return Err(Error::InvalidInput("attachment larger than the limit"));
        }
        let mime = checked_mime(&new.mime)?.to_owned();
        let new = &NewAttachment {
            mime: mime.clone(),
            ..new.clone()
        };
        // The household and the record must be here before any bytes are kept.
        self.read(household, |doc| {
            doc::attachments::check_record(doc, new.record)
        })?;
        let hash = BlobHash::of(bytes);
        let size = bytes.len() as u64;
        let h = household.to_string();
        {
            let mut w = self.writer();
            let tx = w.conn.transaction()?;
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
            tx.execute(
                "INSERT OR IGNORE INTO attachment_uploads
                 (doc_id, hash, size, state, sent, reason, queued_at)
                 VALUES (?1, ?2, ?3, 'pending', 0, NULL, ?4)",
                params![h, hash.0.as_slice(), size_i64(size), (self.clock)().0],
            )?;
            tx.commit()?;
        }
        let id = AttachmentId::new();
        let p = self.provenance();
        let referenced = self.act(
            household,
            Scope::Record(EntityKind::Household, Uuid::nil()),
            |tx, p| doc::attachments::add(tx, id, new, size, hash, p),
        );
        if let Err(e) = referenced {
            // No reference: bytes kept only for it would never be uploaded or shown.
            self.forget_unreferenced(household, hash)?;
            return Err(e);
        }
        Ok(Attachment {
            id,
            household,
            record: new.record,
            kind: new.kind,
            mime,
            size,
            hash,
            provenance: p,
            local: true,
        })
    }

    /// Drop the bytes and queue entry of a blob the household's document does not reference.
    fn forget_unreferenced(&self, household: HouseholdId, hash: BlobHash) -> Result<()> {
        let referenced = self
            .read(household, |doc| doc::attachments::read_all(doc, household))?
            .iter()
            .any(|a| a.hash == hash);
        if !referenced {
            let w = self.writer();
            let h = household.to_string();
            w.conn.execute(
                "DELETE FROM attachment_uploads WHERE doc_id = ?1 AND hash = ?2",
                params![h, hash.0.as_slice()],
            )?;
            w.conn.execute(
                "DELETE FROM attachment_blobs WHERE doc_id = ?1 AND hash = ?2",
                params![h, hash.0.as_slice()],
            )?;
        }
        Ok(())
    }

    /// The household's attachments (references from its document, synced like the rest),
    /// each saying whether this phone holds its bytes.
    pub fn attachments(&self, household: HouseholdId) -> Result<Vec<Attachment>> {
        let mut list = self.read(household, |doc| doc::attachments::read_all(doc, household))?;
        let w = self.writer();
        let mut held = w.conn.prepare_cached(
            "SELECT 1 FROM attachment_blobs WHERE doc_id = ?1 AND hash = ?2 AND held = size",
        )?;
        let h = household.to_string();
        for a in &mut list {
            a.local = held
                .query_row(params![h, a.hash.0.as_slice()], |_| Ok(()))
                .optional()?
                .is_some();
        }
        Ok(list)
    }

    /// The bytes of an attachment of the household, if this phone holds all of them
    /// (`None`: fetch them first, `HttpTransport::fetch_attachment`).
    pub fn attachment_bytes(
        &self,
        household: HouseholdId,
        hash: BlobHash,
    ) -> Result<Option<Vec<u8>>> {
        let w = self.writer();
        let data = w
            .conn
            .prepare_cached(
                "SELECT data FROM attachment_blobs
                 WHERE doc_id = ?1 AND hash = ?2 AND held = size",
            )?
            .query_row(params![household.to_string(), hash.0.as_slice()], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(data)
    }

    /// The attachments of these kinds that households on this phone reference but whose
    /// bytes it does not hold whole: what an eager download of pinned kinds (a station's
    /// signatures) fetches after a sync. Households this phone cannot read are skipped.
    pub fn attachments_to_fetch(
        &self,
        kinds: &[crate::model::attachment::AttachmentKind],
    ) -> Result<Vec<Attachment>> {
        let unreadable = self.unreadable_households()?;
        let mut out = Vec::new();
        for household in self.household_ids()? {
            if unreadable.contains(&household) {
                continue;
            }
            out.extend(
                self.attachments(household)?
                    .into_iter()
                    .filter(|a| !a.local && kinds.contains(&a.kind)),
            );
        }
        Ok(out)
    }

    /// The reference of an attachment of the household with these bytes.
    pub fn attachment_by_hash(&self, household: HouseholdId, hash: BlobHash) -> Result<Attachment> {
        self.attachments(household)?
            .into_iter()
            .find(|a| a.hash == hash)
            .ok_or(Error::NotFound("attachment"))
    }
}

/// In a redaction's transaction (ADR 0029): drop the bytes and queue entries of the
/// household's blobs that no reference of its new generation names (`kept`). Returns how
/// many blobs went.
pub(super) fn release_unreferenced(
    tx: &Connection,
    household: HouseholdId,
    kept: &std::collections::BTreeSet<BlobHash>,
) -> Result<usize> {
    let h = household.to_string();
    let mut held: std::collections::BTreeSet<Vec<u8>> = Default::default();
    for table in ["attachment_blobs", "attachment_uploads"] {
        let mut stmt = tx.prepare(&format!("SELECT hash FROM {table} WHERE doc_id = ?1"))?;
        let rows = stmt.query_map([&h], |r| r.get::<_, Vec<u8>>(0))?;
        for hash in rows {
            held.insert(hash?);
        }
    }
    let mut gone = 0;
    for hash in held {
        if kept.iter().any(|k| k.0.as_slice() == hash.as_slice()) {
            continue;
        }
        for table in ["attachment_blobs", "attachment_uploads"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE doc_id = ?1 AND hash = ?2"),
                params![h, hash],
            )?;
        }
        gone += 1;
    }
    Ok(gone)
}
