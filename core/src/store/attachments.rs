//! Attachments on the phone (issue 20, ADR 0023): captured bytes kept inside the encrypted
//! store, addressed by SHA-256; the reference written into the household's document; the
//! upload queue the app observes; downloads that resume at the byte they stopped at.
//!
//! Capture is two transactions: the bytes and the queue entry first, then the reference
//! (an ordinary action on the household). A crash between them leaves bytes without a
//! reference: never a reference whose bytes were lost.

use rusqlite::{params, OptionalExtension};

use super::*;
use crate::model::attachment::{
    checked_mime, Attachment, BlobHash, NewAttachment, MAX_ATTACHMENT_BYTES,
};

/// Where an upload of this device's queue stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachmentUploadState {
    /// Waiting, or under way (`sent` says how far).
    Pending,
    /// The server holds the whole blob (sent now, or it had it already).
    Done,
    /// The server refused it; `reason` is a code for the app's screen (never content).
    /// It is tried again only when [`Store::retry_attachment_upload`] is called.
    Failed { reason: String },
}

/// One entry of this device's upload queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentUpload {
    pub household: HouseholdId,
    pub hash: BlobHash,
    pub size: u64,
    /// Bytes the server has confirmed (it resumes from here).
    pub sent: u64,
    pub state: AttachmentUploadState,
}

fn hash_of(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<BlobHash> {
    let b: Vec<u8> = r.get(i)?;
    BlobHash::from_slice(&b).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, "hash".into())
    })
}

fn upload_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttachmentUpload> {
    let doc: String = r.get(0)?;
    let household = HouseholdId::parse(&doc).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, "id".into())
    })?;
    let state: String = r.get(4)?;
    let reason: Option<String> = r.get(5)?;
    Ok(AttachmentUpload {
        household,
        hash: hash_of(r, 1)?,
        size: r.get::<_, i64>(2)?.max(0) as u64,
        sent: r.get::<_, i64>(3)?.max(0) as u64,
        state: match state.as_str() {
            "done" => AttachmentUploadState::Done,
            "failed" => AttachmentUploadState::Failed {
                reason: reason.unwrap_or_default(),
            },
            _ => AttachmentUploadState::Pending,
        },
    })
}

const UPLOAD_COLUMNS: &str = "doc_id, hash, size, sent, state, reason";

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

    /// This device's upload queue: every blob captured here, oldest first.
    pub fn attachment_uploads(&self) -> Result<Vec<AttachmentUpload>> {
        let w = self.writer();
        let mut stmt = w.conn.prepare_cached(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM attachment_uploads ORDER BY queued_at, hash"
        ))?;
        let rows = stmt.query_map([], upload_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The uploads still to do (pending), oldest first.
    pub fn pending_attachment_uploads(&self) -> Result<Vec<AttachmentUpload>> {
        Ok(self
            .attachment_uploads()?
            .into_iter()
            .filter(|u| u.state == AttachmentUploadState::Pending)
            .collect())
    }

    /// Put a failed upload back in the queue.
    pub fn retry_attachment_upload(&self, household: HouseholdId, hash: BlobHash) -> Result<()> {
        let w = self.writer();
        w.conn.execute(
            "UPDATE attachment_uploads SET state = 'pending', reason = NULL
             WHERE doc_id = ?1 AND hash = ?2 AND state = 'failed'",
            params![household.to_string(), hash.0.as_slice()],
        )?;
        Ok(())
    }

    /// Record how far an upload got (the server confirmed `sent` bytes), done when all.
    pub fn record_attachment_upload(
        &self,
        household: HouseholdId,
        hash: BlobHash,
        sent: u64,
        done: bool,
    ) -> Result<()> {
        let w = self.writer();
        w.conn.execute(
            "UPDATE attachment_uploads SET sent = min(?3, size),
                state = CASE WHEN ?4 THEN 'done' ELSE state END
             WHERE doc_id = ?1 AND hash = ?2",
            params![
                household.to_string(),
                hash.0.as_slice(),
                size_i64(sent),
                done
            ],
        )?;
        Ok(())
    }

    /// Mark an upload failed with a reason code (kept until retried).
    pub fn fail_attachment_upload(
        &self,
        household: HouseholdId,
        hash: BlobHash,
        reason: &str,
    ) -> Result<()> {
        let w = self.writer();
        w.conn.execute(
            "UPDATE attachment_uploads SET state = 'failed', reason = ?3
             WHERE doc_id = ?1 AND hash = ?2",
            params![household.to_string(), hash.0.as_slice(), reason],
        )?;
        Ok(())
    }

    /// `len` bytes of a held blob from `offset` (fewer at its end).
    pub fn attachment_slice(
        &self,
        household: HouseholdId,
        hash: BlobHash,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>> {
        let w = self.writer();
        let slice = w
            .conn
            .prepare_cached(
                "SELECT substr(data, ?3, ?4) FROM attachment_blobs
                 WHERE doc_id = ?1 AND hash = ?2 AND held = size",
            )?
            .query_row(
                params![
                    household.to_string(),
                    hash.0.as_slice(),
                    size_i64(offset).saturating_add(1),
                    size_i64(len as u64)
                ],
                |r| r.get(0),
            )
            .optional()?;
        slice.ok_or(Error::NotFound("attachment bytes"))
    }

    /// The reference of an attachment of the household with these bytes.
    pub fn attachment_by_hash(&self, household: HouseholdId, hash: BlobHash) -> Result<Attachment> {
        self.attachments(household)?
            .into_iter()
            .find(|a| a.hash == hash)
            .ok_or(Error::NotFound("attachment"))
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::attachment::AttachmentKind;

    fn store(dir: &tempfile::TempDir) -> Store {
        let ids = |n: u128| uuid::Uuid::from_u128(n);
        Store::open(StoreOptions::new(
            dir.path().join("w.db"),
            StoreKey::Raw([3; 32]),
            WorkerId::from_uuid(ids(1)),
            StationId::from_uuid(ids(2)),
        ))
        .unwrap()
    }

    fn household(s: &Store) -> HouseholdId {
        s.create_household(&NewHousehold {
            code: "HH-1".into(),
            ..Default::default()
        })
        .unwrap()
    }

    fn photo() -> NewAttachment {
        NewAttachment {
            record: EntityRef::Household,
            kind: AttachmentKind::Photo,
            mime: "image/jpeg".into(),
        }
    }

    #[test]
    fn a_captured_attachment_is_referenced_held_and_queued() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let hh = household(&s);
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let a = s.add_attachment(hh, &photo(), &bytes).unwrap();
        assert_eq!(a.hash, BlobHash::of(&bytes));
        assert_eq!(a.size, 100_000);
        let listed = s.attachments(hh).unwrap();
        assert_eq!(listed, vec![a.clone()]);
        assert_eq!(listed[0].provenance.device, s.device());
        assert_eq!(s.attachment_bytes(hh, a.hash).unwrap().unwrap(), bytes);
        assert_eq!(
            s.attachment_slice(hh, a.hash, 99_990, 100).unwrap(),
            &bytes[99_990..]
        );
        let queue = s.attachment_uploads().unwrap();
        assert_eq!(queue.len(), 1);
        assert_eq!(queue[0].state, AttachmentUploadState::Pending);
        // The reference survives a reopen (it is in the document, on disk).
        drop(s);
        let s = store(&dir);
        assert_eq!(s.attachments(hh).unwrap().len(), 1);
    }

    #[test]
    fn bad_attachments_are_refused_and_nothing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let hh = household(&s);
        assert!(s.add_attachment(hh, &photo(), b"").is_err());
        let mut bad = photo();
        bad.mime = "jpeg".into();
        assert!(s.add_attachment(hh, &bad, b"x").is_err());
        let mut missing = photo();
        missing.record = EntityRef::Visit(VisitId::new());
        assert!(s.add_attachment(hh, &missing, b"x").is_err());
        let big = vec![0u8; MAX_ATTACHMENT_BYTES as usize + 1];
        assert!(s.add_attachment(hh, &photo(), &big).is_err());
        assert!(s
            .add_attachment(HouseholdId::new(), &photo(), b"x")
            .is_err());
        assert!(s.attachments(hh).unwrap().is_empty());
        assert!(s.attachment_uploads().unwrap().is_empty(), "no bytes kept");
    }

    #[test]
    fn a_download_resumes_where_it_stopped_and_is_checked_whole() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let hh = household(&s);
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i % 13) as u8).collect();
        let hash = BlobHash::of(&bytes);
        assert_eq!(
            s.append_attachment_download(hh, hash, 5000, 0, &bytes[..1234])
                .unwrap(),
            1234
        );
        // Not where the held bytes end: refused, nothing changes.
        assert!(s
            .append_attachment_download(hh, hash, 5000, 1000, &bytes[1000..2000])
            .is_err());
        assert_eq!(s.attachment_held(hh, hash).unwrap(), 1234);
        assert!(s.attachment_bytes(hh, hash).unwrap().is_none());
        s.append_attachment_download(hh, hash, 5000, 1234, &bytes[1234..])
            .unwrap();
        assert_eq!(s.attachment_bytes(hh, hash).unwrap().unwrap(), bytes);
        // Bytes that do not hash to the address are dropped whole.
        let other = BlobHash::of(b"other");
        assert!(s
            .append_attachment_download(hh, other, 4, 0, b"abcd")
            .is_err());
        assert_eq!(s.attachment_held(hh, other).unwrap(), 0);
    }
}
