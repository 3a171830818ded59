//! Attachments in the bindings (issue 20, ADR 0023): photos, signatures and scanned papers
//! captured into the encrypted store, the upload queue, and downloads on demand. Hashes are
//! 64 lower-case hex digits.

use std::time::Duration;

use doorstep_core as core;
use doorstep_core::{AttachmentId, HouseholdId};

use crate::error::Result;
use crate::types::{prov, FieldRef, Provenance, RecordKind};
use crate::{guarded, on_runtime, Doorstep};

#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum AttachmentKind {
    Photo,
    Signature,
    Document,
}

impl From<AttachmentKind> for core::AttachmentKind {
    fn from(k: AttachmentKind) -> Self {
        match k {
            AttachmentKind::Photo => core::AttachmentKind::Photo,
            AttachmentKind::Signature => core::AttachmentKind::Signature,
            AttachmentKind::Document => core::AttachmentKind::Document,
        }
    }
}

impl From<core::AttachmentKind> for AttachmentKind {
    fn from(k: core::AttachmentKind) -> Self {
        match k {
            core::AttachmentKind::Photo => AttachmentKind::Photo,
            core::AttachmentKind::Signature => AttachmentKind::Signature,
            core::AttachmentKind::Document => AttachmentKind::Document,
        }
    }
}

/// An attachment's reference (from the household's document) and whether this phone holds
/// its bytes.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Attachment {
    pub id: AttachmentId,
    pub household_id: HouseholdId,
    pub record: RecordKind,
    /// `None` for the household itself.
    pub record_id: Option<String>,
    pub kind: AttachmentKind,
    pub mime: String,
    pub size: u64,
    /// SHA-256 of the bytes, lower-case hex.
    pub hash: String,
    /// Who attached it, on which device, when.
    pub created: Provenance,
    /// This phone holds the bytes (`attachmentBytes` returns them).
    pub local: bool,
}

impl From<core::Attachment> for Attachment {
    fn from(a: core::Attachment) -> Self {
        let record = FieldRef::from(&core::FieldRef::new(a.record, ""));
        Attachment {
            id: a.id,
            household_id: a.household,
            record: record.record,
            record_id: record.record_id,
            kind: a.kind.into(),
            mime: a.mime,
            size: a.size,
            hash: a.hash.to_hex(),
            created: prov(a.provenance),
            local: a.local,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum AttachmentUploadState {
    Pending,
    Done,
    /// The server refused it: `reason` is its code (`too_large`, `quota`, `forbidden` ...).
    Failed {
        reason: String,
    },
}

/// One entry of this phone's upload queue.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct AttachmentUpload {
    pub household_id: HouseholdId,
    pub hash: String,
    pub size: u64,
    /// Bytes the server has confirmed.
    pub sent: u64,
    pub state: AttachmentUploadState,
}

impl From<core::AttachmentUpload> for AttachmentUpload {
    fn from(u: core::AttachmentUpload) -> Self {
        AttachmentUpload {
            household_id: u.household,
            hash: u.hash.to_hex(),
            size: u.size,
            sent: u.sent,
            state: match u.state {
                core::AttachmentUploadState::Pending => AttachmentUploadState::Pending,
                core::AttachmentUploadState::Done => AttachmentUploadState::Done,
                core::AttachmentUploadState::Failed { reason } => {
                    AttachmentUploadState::Failed { reason }
                }
            },
        }
    }
}

/// What one `uploadAttachments` call did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct AttachmentUploadReport {
    pub completed: u32,
    /// The server held them already: no byte was sent.
    pub already_held: u32,
    /// The household has not reached the server yet: sync, then upload again.
    pub waiting: u32,
    pub failed: u32,
    pub bytes_sent: u64,
    pub requests: u32,
}

/// What one `fetchPinnedAttachments` call did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PinnedFetchReport {
    /// Downloaded whole (and checked) by this call.
    pub fetched: u32,
    /// Not on the server yet (their phone has not uploaded them): the next call tries again.
    pub waiting: u32,
    pub failed: u32,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn hash(s: &str) -> Result<core::BlobHash> {
    Ok(core::BlobHash::parse(s)?)
}

#[uniffi::export]
impl Doorstep {
    /// Attach bytes to a record of a household (`record_id` `None`: the household itself).
    /// They are kept encrypted in the store and queued for upload; the reference syncs with
    /// the household.
    pub fn add_attachment(
        &self,
        household_id: HouseholdId,
        record: RecordKind,
        record_id: Option<String>,
        kind: AttachmentKind,
        mime: String,
        bytes: Vec<u8>,
    ) -> Result<Attachment> {
        guarded(|| {
            let entity = FieldRef {
                record,
                record_id,
                field: String::new(),
            }
            .to_core()?
            .entity;
            let new = core::NewAttachment {
                record: entity,
                kind: kind.into(),
                mime,
            };
            Ok(self
                .write(household_id, |s, h| s.add_attachment(h, &new, &bytes))?
                .into())
        })
    }

    /// The household's attachments (references; `local` says whether the bytes are here).
    pub fn attachments(&self, household_id: HouseholdId) -> Result<Vec<Attachment>> {
        guarded(|| {
            Ok(self
                .store()?
                .attachments(household_id)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// The bytes, if this phone holds them (`None`: `fetchAttachment` first).
    pub fn attachment_bytes(
        &self,
        household_id: HouseholdId,
        hash: String,
    ) -> Result<Option<Vec<u8>>> {
        guarded(|| {
            Ok(self
                .store()?
                .attachment_bytes(household_id, self::hash(&hash)?)?)
        })
    }

    /// This phone's upload queue, oldest first.
    pub fn attachment_uploads(&self) -> Result<Vec<AttachmentUpload>> {
        guarded(|| {
            Ok(self
                .store()?
                .attachment_uploads()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Put a failed upload back in the queue.
    pub fn retry_attachment_upload(&self, household_id: HouseholdId, hash: String) -> Result<()> {
        guarded(|| {
            Ok(self
                .store()?
                .retry_attachment_upload(household_id, self::hash(&hash)?)?)
        })
    }

    /// Upload the queue's pending attachments, each from where the server's bytes end
    /// (call after `sync`). A network failure ends the call; the next resumes.
    pub async fn upload_attachments(
        &self,
        server_url: String,
        token: String,
    ) -> Result<AttachmentUploadReport> {
        crate::https_ready(&server_url)?;
        let store = self.store()?;
        let r = on_runtime(async move {
            let t =
                core::transport::HttpTransport::new(&server_url, &token, Duration::from_secs(60))?;
            Ok(t.upload_attachments(&store).await?)
        })
        .await?;
        Ok(AttachmentUploadReport {
            completed: count(r.completed),
            already_held: count(r.already_held),
            waiting: count(r.waiting),
            failed: count(r.failed),
            bytes_sent: r.bytes_sent,
            requests: r.requests,
        })
    }

    /// Download every attachment of `kinds` (the station's pinned kinds, e.g. signatures)
    /// that this phone references and does not hold yet (call after `sync`). A network
    /// failure ends the call; the next resumes.
    pub async fn fetch_pinned_attachments(
        &self,
        server_url: String,
        token: String,
        kinds: Vec<AttachmentKind>,
    ) -> Result<PinnedFetchReport> {
        let store = self.store()?;
        let kinds: Vec<core::AttachmentKind> = kinds.into_iter().map(Into::into).collect();
        let r = on_runtime(async move {
            let t =
                core::transport::HttpTransport::new(&server_url, &token, Duration::from_secs(60))?;
            Ok(t.fetch_pinned_attachments(&store, &kinds).await?)
        })
        .await?;
        Ok(PinnedFetchReport {
            fetched: count(r.fetched),
            waiting: count(r.waiting),
            failed: count(r.failed),
        })
    }

    /// The bytes of an attachment: from the store, or downloaded (resuming at the byte a
    /// cut download stopped at) and checked against the hash.
    pub async fn fetch_attachment(
        &self,
        server_url: String,
        token: String,
        household_id: HouseholdId,
        hash: String,
    ) -> Result<Vec<u8>> {
        crate::https_ready(&server_url)?;
        let store = self.store()?;
        let blob = self::hash(&hash)?;
        on_runtime(async move {
            let t =
                core::transport::HttpTransport::new(&server_url, &token, Duration::from_secs(60))?;
            Ok(t.fetch_attachment(&store, household_id, blob).await?)
        })
        .await
    }
}
