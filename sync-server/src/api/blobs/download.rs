//! `GET /v1/blobs/{hash}?from=N`: one piece of a whole blob.

use std::sync::atomic::Ordering::Relaxed;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use doorstep_core::protocol::blobs::{
    refusal, BLOB_CONTENT_TYPE, CHUNK_SHA256_HEADER, DOWNLOAD_PIECE, SIZE_HEADER,
};
use doorstep_core::BlobHash;

use super::{authorise, failed, referenced_size, target, token_of, work, Refused};
use crate::api::Shared;
use crate::store::blobs::BlobKey;
use crate::store::ServerStore;

#[derive(Debug, serde::Deserialize)]
pub(in crate::api) struct From {
    #[serde(default)]
    from: u64,
}

/// `GET /v1/blobs/{hash}?from=N`: up to [`DOWNLOAD_PIECE`] bytes of a whole blob from `N`,
/// with their SHA-256 and the blob's size in headers.
pub(in crate::api) async fn download<S: ServerStore>(
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
            let auth = authorise(st, &token, doc)?;
            let key = BlobKey::new(auth.station, hash);
            let store = st.sync.store();
            if !store.blob_referenced(&key, doc).map_err(failed)? {
                referenced_size(st, doc, &key)?;
            }
            let row = store
                .blob(&key)
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
                .read_blob(&key, from, DOWNLOAD_PIECE)
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
