//! Attachments on the phone (issue 20, ADR 0023): captured bytes kept inside the encrypted
//! store, addressed by SHA-256; the reference written into the household's document; the
//! upload queue the app observes; downloads that resume at the byte they stopped at.
//!
//! Capture is two transactions: the bytes and the queue entry first, then the reference
//! (an ordinary action on the household). A crash between them leaves bytes without a
//! reference: never a reference whose bytes were lost.

mod capture;
mod downloads;
#[cfg(feature = "photos")]
mod photo;
#[cfg(test)]
mod tests;
mod uploads;

use rusqlite::{params, OptionalExtension};

use super::*;
use crate::model::attachment::{
    checked_mime, Attachment, AttachmentKind, BlobHash, BlobRef, NewAttachment, PhotoOptions,
};

/// Where a capture's bytes come from: memory, or a file read in pieces.
#[derive(Clone, Copy, Debug)]
pub enum AttachmentSource<'a> {
    Bytes(&'a [u8]),
    File(&'a std::path::Path),
}

pub use uploads::{AttachmentUpload, AttachmentUploadState};

fn size_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    /// Attach `bytes` (a photo, a signature, a scanned paper) to a record of a household.
    /// The bytes are stored in this (encrypted) store under their SHA-256 and queued for
    /// upload; the reference, with who attached it, on which device and when, goes into
    /// the household's document and syncs with it. Empty or larger than
    /// [`MAX_ATTACHMENT_BYTES`](crate::model::attachment::MAX_ATTACHMENT_BYTES): refused.
    pub fn add_attachment(
        &self,
        household: HouseholdId,
        new: &NewAttachment,
        bytes: &[u8],
    ) -> Result<Attachment> {
        self.capture(household, new, None, |tx| {
            capture::keep_bytes(tx, household, bytes)
        })
    }

    /// Attach the file at `path` (what a camera or a scanner app wrote): like
    /// [`add_attachment`](Self::add_attachment), but the file is read in pieces straight
    /// into the store, so a 16 MiB scan never sits whole in memory. A missing file is
    /// `NotFound("attachment file")`; a directory, an unreadable file, or one that changes
    /// while it is read is `InvalidInput`; empty or larger than [`MAX_ATTACHMENT_BYTES`](crate::model::attachment::MAX_ATTACHMENT_BYTES)
    /// likewise, before a byte is read. The file itself is left alone (the app deletes it).
    pub fn add_attachment_file(
        &self,
        household: HouseholdId,
        new: &NewAttachment,
        path: &std::path::Path,
    ) -> Result<Attachment> {
        let file = capture::open_file(path)?;
        self.capture(household, new, None, |tx| {
            capture::keep_file(tx, household, file)
        })
    }

    /// [`add_attachment`](Self::add_attachment) or
    /// [`add_attachment_file`](Self::add_attachment_file), a photo kept as `photo` says
    /// (ADR 0032): a JPEG or PNG photo scaled down to a longest side and re-encoded as
    /// JPEG (the reference's MIME type says so), and a thumbnail kept, uploaded and named
    /// by the reference. Other kinds, other types and photos already small enough are kept
    /// as they come. A JPEG or PNG photo that does not decode is refused (`InvalidInput`):
    /// the worker can retake it, or the app attach it without options. Needs the `photos`
    /// feature (the bindings have it); without it, asking to scale is `InvalidInput`.
    pub fn add_attachment_with(
        &self,
        household: HouseholdId,
        new: &NewAttachment,
        source: AttachmentSource<'_>,
        photo: &PhotoOptions,
    ) -> Result<Attachment> {
        photo.check()?;
        let wanted = new.kind == AttachmentKind::Photo
            && photo.any()
            && ["image/jpeg", "image/png"]
                .iter()
                .any(|m| checked_mime(&new.mime).is_ok_and(|x| x.eq_ignore_ascii_case(m)));
        if wanted {
            return self.add_prepared_photo(household, new, source, photo);
        }
        match source {
            AttachmentSource::Bytes(bytes) => self.add_attachment(household, new, bytes),
            AttachmentSource::File(path) => self.add_attachment_file(household, new, path),
        }
    }

    #[cfg(feature = "photos")]
    fn add_prepared_photo(
        &self,
        household: HouseholdId,
        new: &NewAttachment,
        source: AttachmentSource<'_>,
        photo: &PhotoOptions,
    ) -> Result<Attachment> {
        // Decoding needs the whole photo in memory (at most the 16 MiB limit).
        let read;
        let bytes = match source {
            AttachmentSource::Bytes(b) => {
                capture::checked_size(b.len() as u64)?;
                b
            }
            AttachmentSource::File(path) => {
                read = capture::read_file(path)?;
                read.as_slice()
            }
        };
        let Some(prepared) = photo::prepare(bytes, &new.mime, photo)? else {
            return self.add_attachment(household, new, bytes);
        };
        let new = NewAttachment {
            mime: prepared.mime,
            ..new.clone()
        };
        let kept = prepared.bytes;
        self.capture(household, &new, prepared.thumbnail.as_deref(), |tx| {
            capture::keep_bytes(tx, household, &kept)
        })
    }

    #[cfg(not(feature = "photos"))]
    fn add_prepared_photo(
        &self,
        _: HouseholdId,
        _: &NewAttachment,
        _: AttachmentSource<'_>,
        _: &PhotoOptions,
    ) -> Result<Attachment> {
        Err(Error::InvalidInput(
            "this build does not scale photos (the `photos` feature)",
        ))
    }

    /// Check the request, keep the bytes (`keep`, in the capture's first transaction:
    /// returns their hash and size) and queue them, then write the reference.
    fn capture(
        &self,
        household: HouseholdId,
        new: &NewAttachment,
        thumbnail: Option<&[u8]>,
        keep: impl FnOnce(&Connection) -> Result<(BlobHash, u64)>,
    ) -> Result<Attachment> {
        let mime = checked_mime(&new.mime)?.to_owned();
        let new = &NewAttachment {
            mime: mime.clone(),
            ..new.clone()
        };
        // The household and the record must be here before any bytes are kept.
        self.read(household, |doc| {
            doc::attachments::check_record(doc, new.record)
        })?;
        let h = household.to_string();
        let (hash, size, thumbnail) = {
            let mut w = self.writer();
            let tx = w.conn.transaction()?;
            let (hash, size) = keep(&tx)?;
            let thumbnail = match thumbnail {
                Some(t) => {
                    let (hash, size) = capture::keep_bytes(&tx, household, t)?;
                    Some(BlobRef { hash, size })
                }
                None => None,
            };
            // The thumbnail is queued a millisecond before its photo, so it goes up first
            // (the queue is worked oldest first): it is what a colleague's phone shows first.
            let now = (self.clock)().0;
            for (hash, size, queued_at) in thumbnail
                .iter()
                .map(|t| (t.hash, t.size, now.saturating_sub(1)))
                .chain([(hash, size, now)])
            {
                tx.execute(
                    "INSERT OR IGNORE INTO attachment_uploads
                     (doc_id, hash, size, state, sent, reason, queued_at)
                     VALUES (?1, ?2, ?3, 'pending', 0, NULL, ?4)",
                    params![h, hash.0.as_slice(), size_i64(size), queued_at],
                )?;
            }
            tx.commit()?;
            (hash, size, thumbnail)
        };
        let id = AttachmentId::new();
        let p = self.provenance();
        let referenced = self.act(
            household,
            Scope::Record(EntityKind::Household, Uuid::nil()),
            |tx, p| doc::attachments::add(tx, id, new, size, hash, thumbnail, p),
        );
        if let Err(e) = referenced {
            // No reference: bytes kept only for it would never be uploaded or shown.
            self.forget_unreferenced(household, hash)?;
            if let Some(t) = thumbnail {
                self.forget_unreferenced(household, t.hash)?;
            }
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
            thumbnail,
            provenance: p,
            local: true,
        })
    }

    /// Drop the bytes and queue entry of a blob the household's document does not reference.
    fn forget_unreferenced(&self, household: HouseholdId, hash: BlobHash) -> Result<()> {
        let referenced = self
            .read(household, |doc| {
                doc::attachments::referenced_hashes(doc, household)
            })?
            .contains(&hash);
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

    /// The attachment kinds this phone's station pins (ADR 0032: a setting of the station
    /// document, set with `doorstep-server station pinned-attachments`, received at sync):
    /// what `HttpTransport::fetch_station_pinned_attachments` downloads eagerly. None
    /// before the first sync or when the station pins nothing.
    pub fn pinned_attachment_kinds(&self) -> Result<Vec<crate::model::attachment::AttachmentKind>> {
        let station = crate::doc::station::station_doc_id(self.station());
        match self.read(station, crate::doc::pinned::read_pinned_kinds) {
            Err(Error::NotFound(_)) => Ok(Vec::new()),
            r => r,
        }
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
