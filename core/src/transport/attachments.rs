//! Attachments over HTTP (ADR 0023): uploads in chunks that resume where the server's
//! bytes end, and never send what the server holds; downloads on demand that resume at the
//! byte the last one stopped at. Apart from `sync`: notes never wait for photos.

use crate::error::{Error, Result};
use crate::model::attachment::{AttachmentKind, BlobHash};
use crate::model::ids::HouseholdId;
use crate::protocol::blobs::{
    chunk_path, download_path, next_upload_step, refusal, status_path, BlobRefusal, BlobStatus,
    UploadStep, CHUNK_SHA256_HEADER, CHUNK_START_HEADER, HOUSEHOLD_HEADER, SIZE_HEADER,
    UPLOAD_CHUNK,
};
use crate::store::{AttachmentUpload, Store};

use super::{transport_error, unauthorized, HttpTransport};

/// What one [`HttpTransport::upload_attachments`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttachmentUploadReport {
    /// Blobs the server holds whole now, sent by this call.
    pub completed: usize,
    /// Blobs the server held already: no byte of them was sent.
    pub already_held: usize,
    /// Blobs whose household the server has not received (or not yet with the reference):
    /// still pending; sync, then upload again.
    pub waiting: usize,
    /// Blobs the server refused (see the queue's reasons).
    pub failed: usize,
    /// Chunk bytes sent (request bodies).
    pub bytes_sent: u64,
    pub requests: u32,
}

/// What one [`HttpTransport::fetch_pinned_attachments`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinnedFetchReport {
    /// Attachments downloaded whole (and checked) by this call.
    pub fetched: usize,
    /// Attachments the server does not hold whole yet (their phone has not uploaded them):
    /// the next call tries again.
    pub waiting: usize,
    /// Attachments whose download failed for another reason (a piece that did not match
    /// its hash, a size that does not match the reference); tried again at the next call.
    pub failed: usize,
}

/// How many times a chunk the server found corrupt (damaged on the way) is sent again
/// before the upload is left for the next call.
const CORRUPT_RETRIES: u32 = 3;

enum Answer<T> {
    Ok(T),
    /// A refusal code from the server.
    Refused(u16, String),
}

impl HttpTransport {
    fn blob_request(
        &self,
        method: reqwest::Method,
        path: &str,
        household: HouseholdId,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .timeout(self.timeout)
            .bearer_auth(&self.token)
            .header(HOUSEHOLD_HEADER, household.to_string())
    }

    async fn blob_answer(resp: reqwest::Response) -> Result<Answer<BlobStatus>> {
        match resp.status().as_u16() {
            200 | 409 => Ok(Answer::Ok(resp.json().await.map_err(transport_error)?)),
            401 => Err(unauthorized(resp).await),
            s @ (400 | 403 | 404 | 413 | 422) => {
                let code = resp
                    .json::<BlobRefusal>()
                    .await
                    .map(|r| r.error)
                    .unwrap_or_else(|_| format!("http_{s}"));
                Ok(Answer::Refused(s, code))
            }
            s => Err(Error::Server(s)),
        }
    }

    /// Upload every pending attachment of this device's queue, oldest first, each in
    /// chunks from where the server's bytes end. Call it after `sync` (the server accepts
    /// a blob only once the household's document that references it has arrived). A
    /// network failure ends the call with the error; what the server confirmed is
    /// recorded, and the next call resumes there.
    pub async fn upload_attachments(&self, store: &Store) -> Result<AttachmentUploadReport> {
        let mut report = AttachmentUploadReport::default();
        for upload in store.pending_attachment_uploads()? {
            self.upload_one(store, &upload, &mut report).await?;
        }
        Ok(report)
    }

    async fn upload_one(
        &self,
        store: &Store,
        upload: &AttachmentUpload,
        report: &mut AttachmentUploadReport,
    ) -> Result<()> {
        let (household, hash, size) = (upload.household, upload.hash, upload.size);
        let resp = self
            .blob_request(reqwest::Method::GET, &status_path(&hash), household)
            .header(SIZE_HEADER, size.to_string())
            .send()
            .await
            .map_err(transport_error)?;
        report.requests += 1;
        let mut status = match Self::blob_answer(resp).await? {
            Answer::Ok(s) => s,
            Answer::Refused(_, code) if code == refusal::NOT_REFERENCED => {
                report.waiting += 1;
                return Ok(());
            }
            Answer::Refused(_, code) => {
                store.fail_attachment_upload(household, hash, &code)?;
                report.failed += 1;
                return Ok(());
            }
        };
        if status.complete {
            store.record_attachment_upload(household, hash, size, true)?;
            report.already_held += 1;
            return Ok(());
        }
        let mut corrupt = 0;
        loop {
            let (start, offset, end) = match next_upload_step(size, status, UPLOAD_CHUNK) {
                UploadStep::Done => {
                    store.record_attachment_upload(household, hash, size, true)?;
                    report.completed += 1;
                    return Ok(());
                }
                UploadStep::Send { start, offset, end } => (start, offset, end),
            };
            store.record_attachment_upload(household, hash, start, false)?;
            let len = usize::try_from(end - start).unwrap_or(usize::MAX);
            let chunk = store.attachment_slice(household, hash, start, len)?;
            let whole = BlobHash::of(&chunk).to_hex();
            // The server holds `start .. offset` of this chunk (a cut one): the rest goes.
            let skip = usize::try_from(offset - start)
                .unwrap_or(0)
                .min(chunk.len());
            let body = chunk[skip..].to_vec();
            let sent = body.len() as u64;
            let mut request = self
                .blob_request(reqwest::Method::PUT, &chunk_path(&hash, offset), household)
                .header(CHUNK_SHA256_HEADER, whole);
            if offset > start {
                request = request.header(CHUNK_START_HEADER, start.to_string());
            }
            let resp = request.body(body).send().await.map_err(transport_error)?;
            report.requests += 1;
            report.bytes_sent += sent;
            match Self::blob_answer(resp).await? {
                Answer::Ok(s) => status = s,
                Answer::Refused(422, code) if corrupt < CORRUPT_RETRIES => {
                    // Damaged on the way (or the server dropped a blob that did not match
                    // its hash): ask where to go on from.
                    corrupt += 1;
                    tracing::warn!(code = %code, "attachment chunk refused; sending again");
                    status = BlobStatus {
                        received: if code == refusal::BLOB_CORRUPT {
                            0
                        } else {
                            start
                        },
                        complete: false,
                        tail: 0,
                    };
                }
                Answer::Refused(_, code) if code == refusal::NOT_REFERENCED => {
                    report.waiting += 1;
                    return Ok(());
                }
                Answer::Refused(_, code) => {
                    store.fail_attachment_upload(household, hash, &code)?;
                    report.failed += 1;
                    return Ok(());
                }
            }
        }
    }

    /// [`fetch_pinned_attachments`](Self::fetch_pinned_attachments) of the kinds this
    /// phone's station pins ([`Store::pinned_attachment_kinds`], from the station document
    /// received at sync; ADR 0032). Nothing pinned: nothing is asked of the server.
    pub async fn fetch_station_pinned_attachments(
        &self,
        store: &Store,
    ) -> Result<PinnedFetchReport> {
        let kinds = store.pinned_attachment_kinds()?;
        self.fetch_pinned_attachments(store, &kinds).await
    }

    /// Download every attachment of `kinds` (a station's pinned kinds, e.g. signatures) that
    /// the households on this phone reference and it does not hold yet: call it after
    /// `sync`, like `upload_attachments`. A network failure ends the call with the error;
    /// what arrived is kept, and the next call resumes at the next byte.
    pub async fn fetch_pinned_attachments(
        &self,
        store: &Store,
        kinds: &[AttachmentKind],
    ) -> Result<PinnedFetchReport> {
        let mut report = PinnedFetchReport::default();
        for a in store.attachments_to_fetch(kinds)? {
            match self.fetch_attachment(store, a.household, a.hash).await {
                Ok(_) => report.fetched += 1,
                Err(Error::NotFound(_)) => report.waiting += 1,
                Err(
                    e @ (Error::Network { .. } | Error::Server(_) | Error::Unauthorized { .. }),
                ) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "pinned attachment not fetched");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// The bytes of an attachment of the household: from this store if it holds them,
    /// else fetched from the server in pieces, kept as they arrive (a cut resumes at the
    /// next byte), and checked whole against the hash before they are given out. The
    /// reference must be in the household's document here (it came with sync).
    pub async fn fetch_attachment(
        &self,
        store: &Store,
        household: HouseholdId,
        hash: BlobHash,
    ) -> Result<Vec<u8>> {
        let size = store.attachment_by_hash(household, hash)?.size;
        self.fetch_blob(store, household, hash, size).await
    }

    /// The thumbnail of a photo (ADR 0032), to show before the photo is fetched: from this
    /// store or the server, like [`fetch_attachment`](Self::fetch_attachment). `None` when
    /// the attachment has no thumbnail (not a photo, or captured without one).
    pub async fn fetch_attachment_thumbnail(
        &self,
        store: &Store,
        household: HouseholdId,
        hash: BlobHash,
    ) -> Result<Option<Vec<u8>>> {
        let Some(thumb) = store.attachment_by_hash(household, hash)?.thumbnail else {
            return Ok(None);
        };
        Ok(Some(
            self.fetch_blob(store, household, thumb.hash, thumb.size)
                .await?,
        ))
    }

    async fn fetch_blob(
        &self,
        store: &Store,
        household: HouseholdId,
        hash: BlobHash,
        size: u64,
    ) -> Result<Vec<u8>> {
        loop {
            if let Some(bytes) = store.attachment_bytes(household, hash)? {
                return Ok(bytes);
            }
            let held = store.attachment_held(household, hash)?;
            let resp = self
                .blob_request(reqwest::Method::GET, &download_path(&hash, held), household)
                .send()
                .await
                .map_err(transport_error)?;
            match resp.status().as_u16() {
                200 => {}
                401 => return Err(unauthorized(resp).await),
                404 => return Err(Error::NotFound("attachment on the server")),
                s => return Err(Error::Server(s)),
            }
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            if header(SIZE_HEADER).and_then(|s| s.parse::<u64>().ok()) != Some(size) {
                return Err(Error::Transport(
                    "the server's attachment size does not match its reference".into(),
                ));
            }
            let claimed = header(CHUNK_SHA256_HEADER);
            let mut resp = resp;
            let mut piece = Vec::new();
            let cut = loop {
                match resp.chunk().await {
                    Ok(Some(b)) => piece.extend_from_slice(&b),
                    Ok(None) => break None,
                    Err(e) => break Some(transport_error(e)),
                }
            };
            if piece.len() as u64 > size - held {
                return Err(Error::Transport("the server sent more than asked".into()));
            }
            if cut.is_none() && claimed.as_deref() != Some(BlobHash::of(&piece).to_hex().as_str()) {
                return Err(Error::Transport(
                    "an attachment piece did not match its hash".into(),
                ));
            }
            if !piece.is_empty() {
                store.append_attachment_download(household, hash, size, held, &piece)?;
            }
            if let Some(e) = cut {
                return Err(e);
            }
            if piece.is_empty() {
                return Err(Error::Transport("the server sent no bytes".into()));
            }
        }
    }
}
