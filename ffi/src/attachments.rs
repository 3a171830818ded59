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

/// How photos are kept (ADR 0032), for `addAttachment` / `addAttachmentFile` of a JPEG or
/// PNG photo: scaled to `longestSide` pixels and re-encoded as JPEG at `jpegQuality`, and a
/// thumbnail of `thumbnailSide` pixels kept and uploaded as its own blob. `null` sides: not
/// done. Other kinds and types are kept as they come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PhotoOptions {
    #[uniffi(default = None)]
    pub longest_side: Option<u32>,
    #[uniffi(default = 80)]
    pub jpeg_quality: u8,
    #[uniffi(default = None)]
    pub thumbnail_side: Option<u32>,
}

impl From<PhotoOptions> for core::PhotoOptions {
    fn from(o: PhotoOptions) -> Self {
        core::PhotoOptions {
            longest_side: o.longest_side,
            jpeg_quality: o.jpeg_quality,
            thumbnail_side: o.thumbnail_side,
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
    /// A photo's thumbnail (its own blob's hash), if one was made at capture:
    /// `fetchAttachmentThumbnail` gets it before the photo.
    pub thumbnail_hash: Option<String>,
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
            thumbnail_hash: a.thumbnail.map(|t| t.hash.to_hex()),
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

fn new_attachment(
    record: RecordKind,
    record_id: Option<String>,
    kind: AttachmentKind,
    mime: String,
) -> Result<core::NewAttachment> {
    let entity = FieldRef {
        record,
        record_id,
        field: String::new(),
    }
    .to_core()?
    .entity;
    Ok(core::NewAttachment {
        record: entity,
        kind: kind.into(),
        mime,
    })
}

#[uniffi::export]
impl Doorstep {
    /// Attach bytes to a record of a household (`record_id` `None`: the household itself).
    /// They are kept encrypted in the store and queued for upload; the reference syncs with
    /// the household.
    /// `photo`: how a photo is kept (scaled, with a thumbnail); `null`: as it comes.
    #[uniffi::method(default(photo = None))]
    #[allow(clippy::too_many_arguments)]
    pub fn add_attachment(
        &self,
        household_id: HouseholdId,
        record: RecordKind,
        record_id: Option<String>,
        kind: AttachmentKind,
        mime: String,
        bytes: Vec<u8>,
        photo: Option<PhotoOptions>,
    ) -> Result<Attachment> {
        guarded(|| {
            let new = new_attachment(record, record_id, kind, mime)?;
            let photo = photo.map(Into::into).unwrap_or_default();
            let source = core::AttachmentSource::Bytes(&bytes);
            Ok(self
                .write(household_id, |s, h| {
                    s.add_attachment_with(h, &new, source, &photo)
                })?
                .into())
        })
    }

    /// Attach the file at `path` (what the camera or scanner wrote), read in pieces into
    /// the store (never whole in memory); otherwise like `addAttachment`. A missing file is
    /// `NotFound`; a directory, an unreadable file, an empty one or one over the limit is
    /// `InvalidInput`. The file is left where it is: delete it once this returns.
    /// `photo` as for `addAttachment` (a scaled photo is read whole to decode it, at most
    /// 16 MiB).
    #[uniffi::method(default(photo = None))]
    #[allow(clippy::too_many_arguments)]
    pub fn add_attachment_file(
        &self,
        household_id: HouseholdId,
        record: RecordKind,
        record_id: Option<String>,
        kind: AttachmentKind,
        mime: String,
        path: String,
        photo: Option<PhotoOptions>,
    ) -> Result<Attachment> {
        guarded(|| {
            let new = new_attachment(record, record_id, kind, mime)?;
            let photo = photo.map(Into::into).unwrap_or_default();
            let path = std::path::PathBuf::from(path);
            let source = core::AttachmentSource::File(&path);
            Ok(self
                .write(household_id, |s, h| {
                    s.add_attachment_with(h, &new, source, &photo)
                })?
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

    /// Download every attachment of the pinned kinds that this phone references and does
    /// not hold yet (call after `sync`). `kinds` `None` (the default): the kinds the
    /// station pins (`pinnedAttachmentKinds`, set on the server and received at sync);
    /// a list overrides it. A network failure ends the call; the next resumes.
    #[uniffi::method(default(kinds = None))]
    pub async fn fetch_pinned_attachments(
        &self,
        server_url: String,
        token: String,
        kinds: Option<Vec<AttachmentKind>>,
    ) -> Result<PinnedFetchReport> {
        crate::https_ready(&server_url)?;
        let store = self.store()?;
        let kinds: Vec<core::AttachmentKind> = match kinds {
            Some(k) => k.into_iter().map(Into::into).collect(),
            None => store.pinned_attachment_kinds()?,
        };
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

    /// The attachment kinds this phone's station pins (downloaded eagerly by
    /// `fetchPinnedAttachments`): from the station's settings, received at sync; empty
    /// before the first sync or when the station pins nothing.
    pub fn pinned_attachment_kinds(&self) -> Result<Vec<AttachmentKind>> {
        guarded(|| {
            Ok(self
                .store()?
                .pinned_attachment_kinds()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// A photo's thumbnail (`thumbnailHash`), to show while the photo itself is not here:
    /// from the store, or downloaded and checked like `fetchAttachment`. `null`: the
    /// attachment has none.
    pub async fn fetch_attachment_thumbnail(
        &self,
        server_url: String,
        token: String,
        household_id: HouseholdId,
        hash: String,
    ) -> Result<Option<Vec<u8>>> {
        crate::https_ready(&server_url)?;
        let store = self.store()?;
        let blob = self::hash(&hash)?;
        on_runtime(async move {
            let t =
                core::transport::HttpTransport::new(&server_url, &token, Duration::from_secs(60))?;
            Ok(t.fetch_attachment_thumbnail(&store, household_id, blob)
                .await?)
        })
        .await
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
