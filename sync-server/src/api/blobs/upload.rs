//! `GET /v1/blobs/{hash}/status` (what the server holds, and the start of an upload) and
//! `PUT /v1/blobs/{hash}/{offset}` (one chunk, checked against its SHA-256; a cut one kept
//! as the blob's tail so the device resumes at the next byte).

use std::sync::atomic::Ordering::Relaxed;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorstep_core::protocol::blobs::{
    refusal, BlobStatus, ChunkRequest, CHUNK_SHA256_HEADER, CHUNK_START_HEADER, MAX_CHUNK,
};
use doorstep_core::BlobHash;
use http_body_util::BodyExt;

use super::{
    authorise, failed, header_str, malformed, referenced_size, size_header, status_of,
    status_with_tail, target, token_of, work, Refused,
};
use crate::api::{BodyError, Shared};
use crate::store::blobs::{BlobBegin, BlobKey};
use crate::store::{ServerStore, StoreError};

/// Read a body of at most `limit` bytes by `deadline`, keeping what arrived when it is cut
/// (the bytes, and why it ended early).
async fn read_keeping(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
    deadline: tokio::time::Instant,
) -> (Vec<u8>, Option<BodyError>) {
    if crate::api::content_length(headers).is_some_and(|n| n > limit as u64) {
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

/// `GET /v1/blobs/{hash}/status`: what the server holds of the blob; starts its upload (a
/// row counted against the device's limit) if it holds nothing yet.
pub(in crate::api) async fn status<S: ServerStore>(
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
            let key = BlobKey::new(auth.station, hash);
            let referenced = referenced_size(st, doc, &key)?;
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
                    &key,
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
                    status_with_tail(st.sync.store().as_ref(), &key, r)
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
pub(in crate::api) async fn chunk<S: ServerStore>(
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
    let (_, doc) = target(hash, headers)?;
    let request = ChunkRequest::read(
        hash,
        offset,
        header_str(headers, CHUNK_SHA256_HEADER),
        header_str(headers, CHUNK_START_HEADER),
    )
    .ok_or_else(malformed)?;
    let (hash, start, offset, claimed) =
        (request.hash, request.start, request.offset, request.claimed);
    // Authorised before the body is read: a stranger's chunk costs no memory.
    let t = token.clone();
    let station = work(state, move |st| {
        let auth = authorise(st, &t, doc)?;
        if !st
            .sync
            .store()
            .blob_referenced(&BlobKey::new(auth.station, hash), doc)
            .map_err(failed)?
        {
            return Err(Refused::Code(
                StatusCode::FORBIDDEN,
                refusal::NOT_REFERENCED,
            ));
        }
        Ok(auth.station)
    })
    .await?;
    // The blob as this station holds it (ADR 0032).
    let key = BlobKey::new(station, hash);
    let declared = crate::api::content_length(headers).unwrap_or(MAX_CHUNK as u64);
    let _budget = state
        .reserve_body_memory(declared.min(MAX_CHUNK as u64))
        .await;
    let deadline = tokio::time::Instant::now() + state.config.body_timeout;
    let (bytes, cut) = read_keeping(body, headers, request.room(), deadline).await;
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
                        match store.blob_tail(&key).map_err(failed)? {
                            Some((pos, held))
                                if pos == start && start + held.len() as u64 == offset =>
                            {
                                tail = held
                            }
                            _ => return Ok(()),
                        }
                    }
                    tail.extend_from_slice(&bytes);
                    store
                        .set_blob_tail(&key, start, &tail, crate::now_ms())
                        .map_err(failed)
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
            .blob(&key)
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
            match store.blob_tail(&key).map_err(failed)? {
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
                        &key,
                        row,
                    )?))
                }
            }
        } else {
            bytes.to_vec()
        };
        if BlobHash::of(&chunk) != claimed {
            tracing::warn!(%doc, offset, "blob chunk refused: it does not match its hash");
            store.clear_blob_tail(&key).map_err(failed)?;
            return Err(Refused::Code(
                StatusCode::UNPROCESSABLE_ENTITY,
                refusal::CHUNK_CORRUPT,
            ));
        }
        let received = match store.append_blob(&key, start, &chunk, crate::now_ms()) {
            Ok(n) => n,
            Err(StoreError::Conflict(_)) | Err(StoreError::NotFound(_)) => {
                return Err(Refused::Offset(status_with_tail(
                    store.as_ref(),
                    &key,
                    row,
                )?));
            }
            Err(e) => return Err(failed(e)),
        };
        store.clear_blob_tail(&key).map_err(failed)?;
        if received < row.size {
            return Ok(BlobStatus {
                received,
                complete: false,
                tail: 0,
            });
        }
        if store.finish_blob(&key).map_err(failed)? {
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
