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
/// a piece dropped, when it does not match. For a chunk that finishes a cut one it covers
/// the whole chunk, from [`CHUNK_START_HEADER`].
pub const CHUNK_SHA256_HEADER: &str = "doorstep-chunk-sha256";
/// Where the chunk that a body finishes starts: the server's `received`, when it holds a
/// `tail` of a cut chunk and the body carries the rest from `received + tail`.
pub const CHUNK_START_HEADER: &str = "doorstep-chunk-start";
/// Bytes of one upload chunk. Each chunk costs a request head and a small answer (~0.5 KB:
/// 0.4 % of 128 KiB); a cut costs nothing but the bytes in flight (the server keeps what
/// arrived of a cut chunk, and the device sends the rest).
pub const UPLOAD_CHUNK: usize = 128 * 1024;
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
    /// Bytes of a cut chunk held after `received`, not yet checked: the next chunk starts
    /// at `received` and only its bytes from `received + tail` are sent. Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tail: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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

/// A chunk request (`PUT /v1/blobs/{hash}/{offset}`) as its path and headers describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRequest {
    pub hash: BlobHash,
    /// The chunk's first byte (where the server's held bytes must end).
    pub start: u64,
    /// The body's first byte (`start`, or past the tail of a cut chunk the server holds).
    pub offset: u64,
    /// The SHA-256 of the whole chunk, `start ..` the body's end.
    pub claimed: BlobHash,
}

impl ChunkRequest {
    /// Read a chunk request from its path segments and its [`CHUNK_SHA256_HEADER`] and
    /// [`CHUNK_START_HEADER`] values (untrusted: any malformed part is `None`, answered
    /// `400 malformed`). The rest of a cut chunk starts at most [`MAX_CHUNK`] past `start`.
    pub fn read(
        hash: &str,
        offset: &str,
        sha256: Option<&str>,
        start: Option<&str>,
    ) -> Option<ChunkRequest> {
        let number = |s: &str| -> Option<u64> {
            let s = s.trim();
            // Digits only: `+1` or `-0` parse as numbers in Rust but are not ours.
            (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let hash = BlobHash::parse(hash).ok()?;
        let offset = number(offset)?;
        let claimed = BlobHash::parse(sha256?.trim()).ok()?;
        let start = match start {
            None => offset,
            Some(s) => number(s)?,
        };
        if start > offset || offset - start > MAX_CHUNK as u64 {
            return None;
        }
        Some(ChunkRequest {
            hash,
            start,
            offset,
            claimed,
        })
    }

    /// How many body bytes the chunk may still hold (a chunk is at most [`MAX_CHUNK`]).
    pub fn room(&self) -> usize {
        MAX_CHUNK.saturating_sub(usize::try_from(self.offset - self.start).unwrap_or(MAX_CHUNK))
    }
}

/// What an upload does next, given what the server holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadStep {
    /// The server has it all: nothing to send.
    Done,
    /// The chunk `start .. end`: send bytes `offset .. end` (`offset > start` when the
    /// server holds a tail of it), with the SHA-256 of `start .. end`.
    Send { start: u64, offset: u64, end: u64 },
}

/// The next step of uploading a blob of `size` bytes in chunks of `chunk`.
pub fn next_upload_step(size: u64, status: BlobStatus, chunk: usize) -> UploadStep {
    if status.complete || status.received >= size {
        return UploadStep::Done;
    }
    let start = status.received;
    let end = start.saturating_add(chunk.max(1) as u64).min(size);
    // A tail that reaches the chunk's end (or past it) cannot be finished: send it whole.
    let offset = match start.checked_add(status.tail) {
        Some(o) if o < end => o,
        _ => start,
    };
    UploadStep::Send { start, offset, end }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_resumes_at_the_byte_after_a_cut_and_sends_nothing_the_server_has() {
        let s = |received, tail, complete| BlobStatus {
            received,
            complete,
            tail,
        };
        let send = |start, offset, end| UploadStep::Send { start, offset, end };
        assert_eq!(next_upload_step(100, s(0, 0, false), 64), send(0, 0, 64));
        assert_eq!(
            next_upload_step(100, s(64, 0, false), 64),
            send(64, 64, 100)
        );
        // 10 bytes of the cut chunk arrived: the rest of it goes.
        assert_eq!(
            next_upload_step(100, s(64, 10, false), 64),
            send(64, 74, 100)
        );
        // A tail as long as the chunk (or longer) cannot be finished: the chunk goes whole.
        assert_eq!(
            next_upload_step(100, s(64, 36, false), 64),
            send(64, 64, 100)
        );
        assert_eq!(next_upload_step(100, s(0, 0, true), 64), UploadStep::Done);
        assert_eq!(
            next_upload_step(100, s(100, 0, false), 64),
            UploadStep::Done
        );
    }

    #[test]
    fn chunk_requests_are_read_strictly() {
        let h = BlobHash::of(b"x").to_hex();
        let c = BlobHash::of(b"chunk").to_hex();
        let read = |o: &str, s: Option<&str>| ChunkRequest::read(&h, o, Some(&c), s);
        let ok = read("131072", None).unwrap();
        assert_eq!(
            (ok.start, ok.offset, ok.room()),
            (131072, 131072, MAX_CHUNK)
        );
        let rest = read("131082", Some("131072")).unwrap();
        assert_eq!(
            (rest.start, rest.offset, rest.room()),
            (131072, 131082, MAX_CHUNK - 10)
        );
        for (o, s) in [
            ("+1", None),
            ("-0", None),
            ("", None),
            ("1", Some("2")),
            ("99999999999999999999999", None),
            ("2000000", Some("0")),
        ] {
            assert_eq!(read(o, s), None, "{o:?} {s:?}");
        }
        assert_eq!(ChunkRequest::read(&h, "0", None, None), None);
        assert_eq!(ChunkRequest::read("XYZ", "0", Some(&c), None), None);
    }

    #[test]
    fn the_status_body_is_stable_json() {
        let mut s = BlobStatus {
            received: 65536,
            complete: false,
            tail: 0,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"received":65536,"complete":false}"#
        );
        s.tail = 7;
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"received":65536,"complete":false,"tail":7}"#
        );
    }
}
