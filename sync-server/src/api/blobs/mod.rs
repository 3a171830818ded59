//! The attachment endpoints (ADR 0023, docs/protocol.md "Attachments"): status, one chunk
//! up (`upload`), one piece down (`download`). Apart from `/v1/sync`, so a stalled upload
//! never holds notes back.
//!
//! Every request names a household; the device must see it (its station, its caseload) and
//! the household's document on the server must reference the blob. Each chunk's SHA-256 is
//! checked before it is kept, and the whole blob's before it is served. This module holds
//! what the endpoints share: who may ask, the refusals, and the blocking work.

mod download;
mod upload;

pub(super) use download::download;
pub(super) use upload::{chunk, status};

use std::sync::atomic::Ordering::Relaxed;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use doorstep_core::protocol::blobs::{
    refusal, BlobRefusal, BlobStatus, HOUSEHOLD_HEADER, SIZE_HEADER,
};
use doorstep_core::{BlobHash, HouseholdId};

use super::{bearer, unauthorized, AppState, Shared};
use crate::credentials::hash_secret;
use crate::store::blobs::{BlobKey, BlobRow, BlobStore};
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
    key: &BlobKey,
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
    // The attachment's bytes, or its thumbnail's (ADR 0032).
    let size = doorstep_core::doc::attachments::read_all(&automerge, doc)
        .map_err(|_| Refused::Failed)?
        .into_iter()
        .find_map(|a| {
            if a.hash == key.hash {
                Some(a.size)
            } else {
                a.thumbnail.filter(|t| t.hash == key.hash).map(|t| t.size)
            }
        })
        .ok_or(Refused::Code(
            StatusCode::FORBIDDEN,
            refusal::NOT_REFERENCED,
        ))?;
    store.note_blob_ref(key, doc).map_err(failed)?;
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
    key: &BlobKey,
    r: BlobRow,
) -> Result<BlobStatus, Refused> {
    let mut s = status_of(r);
    if !r.complete {
        if let Some((pos, bytes)) = store.blob_tail(key).map_err(failed)? {
            if pos == r.received {
                s.tail = bytes.len() as u64;
            }
        }
    }
    Ok(s)
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
