//! Attachments (issue 20, ADR 0023): photos, signatures and scanned papers attached to a
//! record of a household. The household's document holds the reference (which record,
//! kind, MIME type, size, SHA-256 and who attached it, on which device, when); the bytes
//! are held apart, addressed by their SHA-256, and travel on their own endpoint.

use std::fmt;

use crate::error::{Error, Result};
use crate::model::ids::{AttachmentId, HouseholdId};
use crate::model::provenance::{EntityRef, Provenance};

/// Largest attachment the phone stores and the server accepts by default (16 MiB).
pub const MAX_ATTACHMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Longest MIME type accepted (`type/subtype`, no parameters needed).
pub const MAX_MIME_CHARS: usize = 100;

/// What an attachment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttachmentKind {
    /// A photo (living conditions, the contact card handed over ...).
    Photo,
    /// A signature (consent, a guardian's statement).
    Signature,
    /// A scanned paper (a school notice, a certificate).
    Document,
}

impl AttachmentKind {
    pub const ALL: [AttachmentKind; 3] = [
        AttachmentKind::Photo,
        AttachmentKind::Signature,
        AttachmentKind::Document,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AttachmentKind::Photo => "photo",
            AttachmentKind::Signature => "signature",
            AttachmentKind::Document => "document",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(Error::InvalidInput("unknown attachment kind"))
    }
}

/// The SHA-256 of an attachment's bytes: its address on the phone and on the server.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash(pub [u8; 32]);

impl BlobHash {
    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest;
        BlobHash(sha2::Sha256::digest(bytes).into())
    }

    /// Lower-case hex, 64 characters (the form in documents and URLs).
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    }

    /// Parse 64 lower-case hex characters; anything else is refused.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = Error::InvalidInput("malformed attachment hash");
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err(bad);
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            let (Some(hi), Some(lo)) = (nibble(pair[0]), nibble(pair[1])) else {
                return Err(bad);
            };
            out[i] = hi << 4 | lo;
        }
        Ok(BlobHash(out))
    }

    pub fn from_slice(b: &[u8]) -> Result<Self> {
        <[u8; 32]>::try_from(b)
            .map(BlobHash)
            .map_err(|_| Error::InvalidInput("malformed attachment hash"))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", self.to_hex())
    }
}

/// A MIME type as stored: `type/subtype`, ASCII, no spaces, at most [`MAX_MIME_CHARS`].
pub fn checked_mime(mime: &str) -> Result<&str> {
    let m = mime.trim();
    let ok = !m.is_empty()
        && m.len() <= MAX_MIME_CHARS
        && m.split_once('/')
            .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty())
        && m.bytes()
            .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\\');
    if ok {
        Ok(m)
    } else {
        Err(Error::InvalidInput("malformed MIME type"))
    }
}

/// How the app wants photos kept (ADR 0032), applied at capture to attachments of kind
/// [`AttachmentKind::Photo`] that are JPEG or PNG; nothing unless the app asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhotoOptions {
    /// A photo whose longest side is longer is scaled to this many pixels (aspect kept) and
    /// re-encoded as JPEG; `None`: kept at its size.
    pub longest_side: Option<u32>,
    /// The JPEG quality (1-100) of a scaled photo and of the thumbnail.
    pub jpeg_quality: u8,
    /// A thumbnail (JPEG, this longest side) is kept and uploaded as its own blob, named by
    /// the reference, for the app to show before the photo is fetched; `None`: no thumbnail.
    pub thumbnail_side: Option<u32>,
}

impl Default for PhotoOptions {
    /// Photos kept as they come: no scaling, no thumbnail.
    fn default() -> Self {
        PhotoOptions {
            longest_side: None,
            jpeg_quality: 80,
            thumbnail_side: None,
        }
    }
}

impl PhotoOptions {
    /// Sides of 16 to 16,384 pixels, a quality of 1 to 100.
    pub fn check(&self) -> Result<()> {
        let side_ok = |s: Option<u32>| s.is_none_or(|s| (16..=16_384).contains(&s));
        if !side_ok(self.longest_side) || !side_ok(self.thumbnail_side) {
            return Err(Error::InvalidInput("photo sides are 16 to 16384 pixels"));
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            return Err(Error::InvalidInput("JPEG quality is 1 to 100"));
        }
        Ok(())
    }

    /// Whether anything is to be done to a photo.
    pub fn any(&self) -> bool {
        self.longest_side.is_some() || self.thumbnail_side.is_some()
    }
}

/// A blob named by a reference besides the attachment's own bytes (its thumbnail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobRef {
    pub hash: BlobHash,
    pub size: u64,
}

/// A new attachment: what the app passes to `Store::add_attachment`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAttachment {
    /// The record it belongs to (a visit, a person, the household itself ...).
    pub record: EntityRef,
    pub kind: AttachmentKind,
    pub mime: String,
}

/// An attachment's reference as the household's document holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub id: AttachmentId,
    pub household: HouseholdId,
    pub record: EntityRef,
    pub kind: AttachmentKind,
    pub mime: String,
    pub size: u64,
    pub hash: BlobHash,
    /// A small JPEG of a photo, its own blob (ADR 0032): fetched before the photo.
    pub thumbnail: Option<BlobRef>,
    /// Who attached it, on which device, when.
    pub provenance: Provenance,
    /// Whether this phone holds the bytes (captured here, or downloaded).
    pub local: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_through_hex_and_refuse_anything_else() {
        let h = BlobHash::of(b"abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(BlobHash::parse(&h.to_hex()).unwrap(), h);
        for bad in [
            "",
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
            "zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad00",
        ] {
            assert!(BlobHash::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mime_types_are_checked() {
        assert_eq!(checked_mime(" image/jpeg ").unwrap(), "image/jpeg");
        for bad in ["", "jpeg", "image/", "/jpeg", "image/jp eg", "a\"/b"] {
            assert!(checked_mime(bad).is_err(), "{bad}");
        }
    }
}
