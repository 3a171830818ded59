//! The attachment endpoints (ADR 0023, docs/protocol.md "Attachments"), sans-IO: paths,
//! headers, the status body and the plan of an upload. The transport carries them; an app
//! with its own HTTP stack can too.
//!
//! - `GET  /v1/blobs/{hash}/status` — how many bytes of the blob the server holds;
//! - `PUT  /v1/blobs/{hash}/{offset}` — one chunk, starting at `offset`;
//! - `GET  /v1/blobs/{hash}?from=N` — bytes from `N` (at most [`DOWNLOAD_PIECE`]).
//!
//! Every request names the household whose document references the blob
//! ([`HOUSEHOLD_HEADER`]): the server authorises it like that document, and only for blobs
//! that document references.

use crate::model::attachment::BlobHash;

/// The household whose document references the blob (hyphenated UUID).
pub const HOUSEHOLD_HEADER: &str = "doorstep-household";
/// The blob's whole size in bytes (uploads and status).
pub const SIZE_HEADER: &str = "doorstep-blob-size";
/// SHA-256 (lower-case hex) of a request's or a response's body: a chunk is refused, or
/// a piece dropped, when it does not match.
pub const CHUNK_SHA256_HEADER: &str = "doorstep-chunk-sha256";
/// Bytes of one upload chunk. A cut costs at most one chunk; each chunk costs a request
/// head and a small answer (~0.5 KB: under 1 % of 64 KiB).
pub const UPLOAD_CHUNK: usize = 64 * 1024;
/// Largest chunk the server accepts.
pub const MAX_CHUNK: usize = 1024 * 1024;
/// Most bytes one download answer carries.
pub const DOWNLOAD_PIECE: usize = 256 * 1024;
/// Media type of blob bodies.
pub const BLOB_CONTENT_TYPE: &str = "application/octet-stream";

/// The server's answer to a status request or a chunk (JSON), and the body of a `409` when
/// a chunk does not start where the server's bytes end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobStatus {
    /// Bytes held, in order from the start: the next chunk starts here.
    pub received: u64,
    /// The server holds the whole blob, checked against its hash.
    pub complete: bool,
}

/// A refusal's body (JSON): a code the device acts on, never content.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobRefusal {
    pub error: String,
}

/// Refusal codes.
pub mod refusal {
    /// The household's document on the server does not reference the blob (yet: sync first).
    pub const NOT_REFERENCED: &str = "not_referenced";
    /// The household is not the device's to see (another station, outside its caseload).
    pub const FORBIDDEN: &str = "forbidden";
    /// The blob is larger than the server's per-blob limit.
    pub const TOO_LARGE: &str = "too_large";
    /// The device's uploads would pass its limit.
    pub const QUOTA: &str = "quota";
    /// A chunk did not match its SHA-256.
    pub const CHUNK_CORRUPT: &str = "chunk_corrupt";
    /// The whole blob did not match its address: the server dropped it; start over.
    pub const BLOB_CORRUPT: &str = "blob_corrupt";
    /// The size does not match the reference's.
    pub const SIZE_MISMATCH: &str = "size_mismatch";
    /// The request is malformed (a header, the hash, the offset).
    pub const MALFORMED: &str = "malformed";
    /// The server does not hold the blob (download).
    pub const NOT_FOUND: &str = "not_found";
}

pub fn status_path(hash: &BlobHash) -> String {
    format!("/v1/blobs/{hash}/status")
}

pub fn chunk_path(hash: &BlobHash, offset: u64) -> String {
    format!("/v1/blobs/{hash}/{offset}")
}

pub fn download_path(hash: &BlobHash, from: u64) -> String {
    format!("/v1/blobs/{hash}?from={from}")
}

/// What an upload does next, given what the server holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadStep {
    /// The server has it all: nothing to send.
    Done,
    /// Send bytes `offset .. offset + len`.
    Send { offset: u64, len: usize },
}

/// The next step of uploading a blob of `size` bytes in chunks of `chunk`.
pub fn next_upload_step(size: u64, status: BlobStatus, chunk: usize) -> UploadStep {
    if status.complete || status.received >= size {
        return UploadStep::Done;
    }
    let left = size - status.received;
    UploadStep::Send {
        offset: status.received,
        len: usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(chunk.max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_resumes_where_the_server_stopped_and_sends_nothing_it_has() {
        let s = |received, complete| BlobStatus { received, complete };
        assert_eq!(
            next_upload_step(100, s(0, false), 64),
            UploadStep::Send { offset: 0, len: 64 }
        );
        assert_eq!(
            next_upload_step(100, s(64, false), 64),
            UploadStep::Send {
                offset: 64,
                len: 36
            }
        );
        assert_eq!(next_upload_step(100, s(0, true), 64), UploadStep::Done);
        assert_eq!(next_upload_step(100, s(100, false), 64), UploadStep::Done);
    }

    #[test]
    fn the_status_body_is_stable_json() {
        let s = BlobStatus {
            received: 65536,
            complete: false,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"received":65536,"complete":false}"#
        );
    }
}
