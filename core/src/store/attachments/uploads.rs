//! The upload queue of this device (ADR 0023): every blob captured here, pending (with the
//! bytes the server confirmed), done, or failed with the server's code.

use rusqlite::{params, OptionalExtension};

use super::size_i64;
use crate::error::{Error, Result};
use crate::model::attachment::BlobHash;
use crate::model::ids::HouseholdId;
use crate::store::Store;

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

impl Store {
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
}
