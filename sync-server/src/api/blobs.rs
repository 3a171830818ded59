//! The attachment endpoints (ADR 0023, docs/protocol.md "Attachments"): status, one chunk
//! up, one piece down. Apart from `/v1/sync`, so a stalled upload never holds notes back.
//!
//! Every request names a household; the device must see it (its station, its caseload) and
//! the household's document on the server must reference the blob. Each chunk's SHA-256 is
//! checked before it is kept, and the whole blob's before it is served.

use std::sync::atomic::Ordering::Relaxed;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorstep_core::protocol::blobs::{
    refusal, BlobRefusal, BlobStatus, BLOB_CONTENT_TYPE, CHUNK_SHA256_HEADER, CHUNK_START_HEADER,
    DOWNLOAD_PIECE, HOUSEHOLD_HEADER, MAX_CHUNK, SIZE_HEADER,
};
use doorstep_core::{BlobHash, HouseholdId};
use http_body_util::BodyExt;

use super::{bearer, unauthorized, AppState, BodyError, Shared};
use crate::credentials::hash_secret;
use crate::store::blobs::{BlobBegin, BlobRow, BlobStore};
use crate::store::{DeviceAuth, ServerStore, StoreError};

/// Why a blob request was not served.
#[derive(Debug)]
enum Refused {
    Unauthorized(bool),
    /// A status and a code for the device (never content).
    Code(StatusCode, &'static str),
    /// A chunk that does not continue the held bytes: the device resumes at `received`.
    Offset(BlobStatus),
    Failed,
}

impl Refused {
    fn response<S: ServerStore>(self, state: &AppState<S>) -> Response {
        match self {
            Refused::Unauthorized(wipe) => {
                state.metrics.unauthorized.fetch_add(1, Relaxed);
                unauthorized(wipe)
            }
            Refused::Code(status, code) => {
                state.metrics.blob_refusals.fetch_add(1, Relaxed);
                (status, Json(BlobRefusal { error: code.into() })).into_response()
            }
            Refused::Offset(s) => (StatusCode::CONFLICT, Json(s)).into_response(),
            Refused::Failed => {
                state.metrics.sync_errors.fetch_add(1, Relaxed);
                super::plain(StatusCode::INTERNAL_SERVER_ERROR, "blob request failed\n")
            }
        }
    }
}

fn failed(e: StoreError) -> Refused {
    tracing::error!(error = %e, "blob request failed");
    Refused::Failed
}

fn malformed() -> Refused {
    Refused::Code(StatusCode::BAD_REQUEST, refusal::MALFORMED)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// The request's hash and household, or `400`.
fn target(hash: &str, headers: &HeaderMap) -> Result<(BlobHash, HouseholdId), Refused> {
    let hash = BlobHash::parse(hash).map_err(|_| malformed())?;
    let doc = header_str(headers, HOUSEHOLD_HEADER)
        .and_then(|h| HouseholdId::parse(h).ok())
        .ok_or_else(malformed)?;
    Ok((hash, doc))
}

fn size_header(headers: &HeaderMap) -> Result<u64, Refused> {
    header_str(headers, SIZE_HEADER)
        .and_then(|s| s.parse().ok())
        .ok_or_else(malformed)
}

/// The token's device, allowed to see `doc`.
fn authorise<S: ServerStore>(
    st: &AppState<S>,
    token: &str,
    doc: HouseholdId,
) -> Result<DeviceAuth, Refused> {
    let store = st.sync.store();
    let auth = match store.authenticate(token) {
        Ok(Some(a)) if a.revoked => return Err(Refused::Unauthorized(true)),
        Ok(Some(a)) => a,
        Ok(None) => return Err(Refused::Unauthorized(false)),
        Err(e) => return Err(failed(e)),
    };
    // Another station's household is answered as one the server does not hold.
    match store.document_station(doc).map_err(failed)? {
        Some(s) if s == auth.station => {}
        _ => {
            return Err(Refused::Code(
                StatusCode::FORBIDDEN,
                refusal::NOT_REFERENCED,
            ))
        }
    }
    if !store.in_scope(auth.worker, doc).map_err(failed)? {
        return Err(Refused::Code(StatusCode::FORBIDDEN, refusal::FORBIDDEN));
    }
    Ok(auth)
}

/// The size the household's document gives the blob, if it references it (read from the
/// stored document), and the reference noted for later requests and erasure.
fn referenced_size<S: ServerStore>(
    st: &AppState<S>,
    doc: HouseholdId,
    hash: &BlobHash,
) -> Result<u64, Refused> {
    let store = st.sync.store();
    let stored = store
        .load_document(doc)
        .map_err(failed)?
        .ok_or(Refused::Code(
            StatusCode::FORBIDDEN,
            refusal::NOT_REFERENCED,
        ))?;
    let automerge = crate::snapshot::load_stored(&stored).map_err(|_| Refused::Failed)?;
    let size = doorstep_core::doc::attachments::read_all(&automerge, doc)
        .map_err(|_| Refused::Failed)?
        .into_iter()
        .find(|a| a.hash == *hash)
        .map(|a| a.size)
        .ok_or(Refused::Code(
            StatusCode::FORBIDDEN,
            refusal::NOT_REFERENCED,
        ))?;
    store.note_blob_ref(hash, doc).map_err(failed)?;
    Ok(size)
}

fn status_of(r: BlobRow) -> BlobStatus {
    BlobStatus {
        received: r.received,
        complete: r.complete,
        tail: 0,
    }
}

/// The status with the tail of a cut chunk the server holds.
fn status_with_tail<S: BlobStore + ?Sized>(
    store: &S,
    hash: &BlobHash,
    r: BlobRow,
) -> Result<BlobStatus, Refused> {
    let mut s = status_of(r);
    if !r.complete {
        if let Some((pos, bytes)) = store.blob_tail(hash).map_err(failed)? {
            if pos == r.received {
                s.tail = bytes.len() as u64;
            }
        }
    }
    Ok(s)
}

/// Read a body of at most `limit` bytes by `deadline`, keeping what arrived when it is cut
/// (the bytes, and why it ended early).
async fn read_keeping(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
    deadline: tokio::time::Instant,
) -> (Vec<u8>, Option<BodyError>) {
    if super::content_length(headers).is_some_and(|n| n > limit as u64) {
        return (Vec::new(), Some(BodyError::TooLarge));
    }
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return (out, Some(BodyError::TimedOut)),
            Ok(None) => return (out, None),
            Ok(Some(Err(_))) => return (out, Some(BodyError::Broken)),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if out.len() + data.len() > limit {
                        return (Vec::new(), Some(BodyError::TooLarge));
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
}

fn token_of(headers: &HeaderMap) -> Result<String, Refused> {
    bearer(headers)
        .map(hash_secret)
        .ok_or(Refused::Unauthorized(false))
}

/// Run `f` on the blocking pool within the request timeout.
async fn work<S, T, F>(state: &Shared<S>, f: F) -> Result<T, Refused>
where
    S: ServerStore,
    T: Send + 'static,
    F: FnOnce(&AppState<S>) -> Result<T, Refused> + Send + 'static,
{
    match tokio::time::timeout(state.config.request_timeout, state.blocking(f)).await {
        Ok(Some(r)) => r,
        Ok(None) => Err(Refused::Failed),
        Err(_) => Err(Refused::Code(StatusCode::SERVICE_UNAVAILABLE, "timed_out")),
    }
}

/// `GET /v1/blobs/{hash}/status`: what the server holds of the blob; starts its upload (a
/// row counted against the device's limit) if it holds nothing yet.
pub(super) async fn status<S: ServerStore>(
    State(state): State<Shared<S>>,
    Path(hash): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let token = token_of(&headers)?;
        let (hash, doc) = target(&hash, &headers)?;
        let size = size_header(&headers)?;
        work(&state, move |st| {
            let auth = authorise(st, &token, doc)?;
            let referenced = referenced_size(st, doc, &hash)?;
            if referenced != size {
                return Err(Refused::Code(
                    StatusCode::BAD_REQUEST,
                    refusal::SIZE_MISMATCH,
                ));
            }
            if size == 0 || size > st.config.blob_limit {
                return Err(Refused::Code(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    refusal::TOO_LARGE,
                ));
            }
            let begun = st
                .sync
                .store()
                .begin_blob(
                    &hash,
                    size,
                    auth.device,
                    st.config.blob_quota,
                    crate::now_ms(),
                )
                .map_err(failed)?;
            match begun {
                BlobBegin::Row(r) => {
                    if r.complete {
                        st.metrics.blob_dedup.fetch_add(1, Relaxed);
                    }
                    status_with_tail(st.sync.store().as_ref(), &hash, r)
                }
                BlobBegin::SizeMismatch => Err(Refused::Code(
                    StatusCode::BAD_REQUEST,
                    refusal::SIZE_MISMATCH,
                )),
                BlobBegin::OverQuota => {
                    tracing::warn!(device = %auth.device, "blob upload over the device's limit");
                    Err(Refused::Code(StatusCode::PAYLOAD_TOO_LARGE, refusal::QUOTA))
                }
            }
        })
        .await
    }
    .await;
    match result {
        Ok(s) => Json(s).into_response(),
        Err(r) => r.response(&state),
    }
}

/// `PUT /v1/blobs/{hash}/{offset}`: one chunk. Kept only if it matches its SHA-256 and
/// starts where the held bytes end; the last one completes the blob once the whole blob
/// matches its hash.
pub(super) async fn chunk<S: ServerStore>(
    State(state): State<Shared<S>>,
    Path((hash, offset)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let result = put_chunk(&state, &hash, &offset, &parts.headers, body).await;
    match result {
        Ok(s) => Json(s).into_response(),
        Err(r) => r.response(&state),
    }
}

async fn put_chunk<S: ServerStore>(
    state: &Shared<S>,
    hash: &str,
    offset: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<BlobStatus, Refused> {
    let token = token_of(headers)?;
    let (hash, doc) = target(hash, headers)?;
    let offset: u64 = offset.parse().map_err(|_| malformed())?;
    let claimed = header_str(headers, CHUNK_SHA256_HEADER)
        .and_then(|h| BlobHash::parse(h).ok())
        .ok_or_else(malformed)?;
    // Authorised before the body is read: a stranger's chunk costs no memory.
    let t = token.clone();
    work(state, move |st| {
        authorise(st, &t, doc)?;
        if !st
            .sync
            .store()
            .blob_referenced(&hash, doc)
            .map_err(failed)?
        {
            return Err(Refused::Code(
                StatusCode::FORBIDDEN,
                refusal::NOT_REFERENCED,
            ));
        }
        Ok(())
    })
    .await?;
    let start: u64 = match header_str(headers, CHUNK_START_HEADER) {
        None => offset,
        Some(v) => v.parse().map_err(|_| malformed())?,
    };
    if start > offset || offset - start > MAX_CHUNK as u64 {
        return Err(malformed());
    }
    let declared = super::content_length(headers).unwrap_or(MAX_CHUNK as u64);
    let _budget = state
        .reserve_body_memory(declared.min(MAX_CHUNK as u64))
        .await;
    let deadline = tokio::time::Instant::now() + state.config.body_timeout;
    let room = MAX_CHUNK - (offset - start) as usize;
    let (bytes, cut) = read_keeping(body, headers, room, deadline).await;
    state
        .metrics
        .blob_bytes_in
        .fetch_add(bytes.len() as u64, Relaxed);
    match cut {
        None => {}
        Some(BodyError::TooLarge) => {
            return Err(Refused::Code(
                StatusCode::PAYLOAD_TOO_LARGE,
                refusal::TOO_LARGE,
            ))
        }
        Some(e) => {
            // Cut on the way: keep what arrived (unchecked) as the tail of this chunk, so
            // the device sends only the rest. The device is gone: the answer is for logs.
            if !bytes.is_empty() {
                work(state, move |st| {
                    let store = st.sync.store();
                    let mut tail = Vec::new();
                    if start < offset {
                        match store.blob_tail(&hash).map_err(failed)? {
                            Some((pos, held))
                                if pos == start && start + held.len() as u64 == offset =>
                            {
                                tail = held
                            }
                            _ => return Ok(()),
                        }
                    }
                    tail.extend_from_slice(&bytes);
                    store.set_blob_tail(&hash, start, &tail).map_err(failed)
                })
                .await?;
            }
            if matches!(e, BodyError::TimedOut) {
                state.metrics.body_timeouts.fetch_add(1, Relaxed);
                return Err(Refused::Code(StatusCode::REQUEST_TIMEOUT, "body_timeout"));
            }
            return Err(malformed());
        }
    }
    if bytes.is_empty() {
        return Err(malformed());
    }
    work(state, move |st| {
        let store = st.sync.store();
        let row = store
            .blob(&hash)
            .map_err(failed)?
            .ok_or(Refused::Offset(BlobStatus {
                received: 0,
                complete: false,
                tail: 0,
            }))?;
        if row.complete {
            return Ok(status_of(row));
        }
        // The whole chunk: the tail the server holds, then this body.
        let chunk = if start < offset {
            match store.blob_tail(&hash).map_err(failed)? {
                Some((pos, mut held))
                    if pos == start
                        && pos == row.received
                        && start + held.len() as u64 == offset =>
                {
                    held.extend_from_slice(&bytes);
                    held
                }
                _ => {
                    return Err(Refused::Offset(status_with_tail(
                        store.as_ref(),
                        &hash,
                        row,
                    )?))
                }
            }
        } else {
            bytes.to_vec()
        };
        if BlobHash::of(&chunk) != claimed {
            tracing::warn!(%doc, offset, "blob chunk refused: it does not match its hash");
            store.clear_blob_tail(&hash).map_err(failed)?;
            return Err(Refused::Code(
                StatusCode::UNPROCESSABLE_ENTITY,
                refusal::CHUNK_CORRUPT,
            ));
        }
        let received = match store.append_blob(&hash, start, &chunk) {
            Ok(n) => n,
            Err(StoreError::Conflict(_)) | Err(StoreError::NotFound(_)) => {
                return Err(Refused::Offset(status_with_tail(
                    store.as_ref(),
                    &hash,
                    row,
                )?));
            }
            Err(e) => return Err(failed(e)),
        };
        store.clear_blob_tail(&hash).map_err(failed)?;
        if received < row.size {
            return Ok(BlobStatus {
                received,
                complete: false,
                tail: 0,
            });
        }
        if store.finish_blob(&hash).map_err(failed)? {
            st.metrics.blob_uploads.fetch_add(1, Relaxed);
            tracing::info!(%doc, size = row.size, "blob complete");
            Ok(BlobStatus {
                received,
                complete: true,
                tail: 0,
            })
        } else {
            tracing::warn!(%doc, "blob refused: the whole does not match its hash");
            Err(Refused::Code(
                StatusCode::UNPROCESSABLE_ENTITY,
                refusal::BLOB_CORRUPT,
            ))
        }
    })
    .await
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct From {
    #[serde(default)]
    from: u64,
}

/// `GET /v1/blobs/{hash}?from=N`: up to [`DOWNLOAD_PIECE`] bytes of a whole blob from `N`,
/// with their SHA-256 and the blob's size in headers.
pub(super) async fn download<S: ServerStore>(
    State(state): State<Shared<S>>,
    Path(hash): Path<String>,
    Query(from): Query<From>,
    headers: HeaderMap,
) -> Response {
    let from = from.from;
    let result = async {
        let token = token_of(&headers)?;
        let (hash, doc) = target(&hash, &headers)?;
        work(&state, move |st| {
            authorise(st, &token, doc)?;
            let store = st.sync.store();
            if !store.blob_referenced(&hash, doc).map_err(failed)? {
                referenced_size(st, doc, &hash)?;
            }
            let row = store
                .blob(&hash)
                .map_err(failed)?
                .filter(|r| r.complete)
                .ok_or(Refused::Code(StatusCode::NOT_FOUND, refusal::NOT_FOUND))?;
            if from >= row.size {
                return Err(Refused::Code(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    refusal::MALFORMED,
                ));
            }
            let bytes = store
                .read_blob(&hash, from, DOWNLOAD_PIECE)
                .map_err(failed)?;
            Ok((row.size, bytes))
        })
        .await
    }
    .await;
    match result {
        Ok((size, bytes)) => {
            state
                .metrics
                .blob_bytes_out
                .fetch_add(bytes.len() as u64, Relaxed);
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, BLOB_CONTENT_TYPE.to_owned()),
                    (
                        header::HeaderName::from_static(CHUNK_SHA256_HEADER),
                        BlobHash::of(&bytes).to_hex(),
                    ),
                    (
                        header::HeaderName::from_static(SIZE_HEADER),
                        size.to_string(),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Err(r) => r.response(&state),
    }
}
