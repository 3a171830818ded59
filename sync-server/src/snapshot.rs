//! Document snapshots without automerge's DEFLATE.
//!
//! `Automerge::save` runs every large column through DEFLATE, and each call allocates a
//! fresh ~370 kB compressor. On a server with many threads, glibc serves these from heaps
//! that cached documents pin, and the process grows with the documents churned through its
//! cache rather than with the cache (`docs/operations.md`, Sizing). So the server saves with
//! `save_nocompress` and compresses where bytes matter, with zstd contexts that are kept and
//! reused:
//!
//! - **stored snapshots** (compaction) are the uncompressed document encoding in one zstd
//!   frame. A database written by an earlier server holds automerge's own (DEFLATE) encoding;
//!   both load. The two are told apart by their first four bytes: automerge's magic is
//!   `85 6f 4a 83`, zstd's `28 b5 2f fd`.
//! - **bootstrap snapshots** go out uncompressed inside the response, which is zstd-compressed
//!   as a whole; `Automerge::load` on the device reads either encoding, and the device
//!   stores what it receives as a zstd frame.

use std::borrow::Cow;

use automerge::Automerge;

use crate::store::StoredDocument;

#[cfg(test)]
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("stored snapshot is not a valid zstd frame")]
    Compression,
    #[error("stored document does not load: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}

/// The form in which the server stores and sends a snapshot of `doc`: its uncompressed
/// encoding in a zstd frame (`doorstep_core::protocol::encode_snapshot`, pooled contexts).
pub fn encode_stored(doc: &Automerge) -> Vec<u8> {
    doorstep_core::protocol::encode_snapshot(doc)
}

/// The automerge encoding held in a stored snapshot, as `Automerge::load` reads it: a zstd
/// frame is decompressed (bounded like a sync message); anything else is automerge's own
/// encoding, compressed or not, and is returned as is.
pub fn decode_stored(stored: &[u8]) -> Result<Cow<'_, [u8]>, SnapshotError> {
    doorstep_core::protocol::decode_snapshot(stored).map_err(|_| SnapshotError::Compression)
}

/// A stored document as an automerge document: its snapshot (either encoding) and the log
/// entries after it, applied as one batch.
pub fn load_stored(stored: &StoredDocument) -> Result<Automerge, SnapshotError> {
    let mut doc = match &stored.snapshot {
        Some(s) => Automerge::load(&decode_stored(s)?)?,
        None => Automerge::new(),
    };
    if !stored.changes.is_empty() {
        doc.load_incremental(&stored.changes.concat())?;
    }
    Ok(doc)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ReadDoc, ROOT};

    fn doc_with_text(n: usize) -> Automerge {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        let text = tx
            .put_object(ROOT, "notes", automerge::ObjType::Text)
            .unwrap();
        tx.splice_text(
            &text,
            0,
            0,
            &"走访记录，询问困境儿童基本生活补贴。".repeat(n),
        )
        .unwrap();
        tx.put(ROOT, "kind", "household").unwrap();
        tx.commit();
        doc
    }

    #[test]
    fn stored_snapshots_are_zstd_frames_that_load_back() {
        let doc = doc_with_text(200);
        let stored = encode_stored(&doc);
        assert!(stored.starts_with(&ZSTD_MAGIC));
        // Smaller than the uncompressed encoding it holds.
        assert!(stored.len() < doc.save_nocompress().len());
        let again = load_stored(&StoredDocument {
            snapshot: Some(stored),
            ..StoredDocument::default()
        })
        .unwrap();
        assert_eq!(again.get_heads(), doc.get_heads());
        assert_eq!(
            again
                .text(again.get(ROOT, "notes").unwrap().unwrap().1)
                .unwrap()
                .chars()
                .count(),
            3600
        );
    }

    #[test]
    fn snapshots_of_earlier_servers_still_load() {
        // Automerge's own encodings, DEFLATE-compressed (as stored before) or not.
        let doc = doc_with_text(200);
        for bytes in [doc.save(), doc.save_nocompress()] {
            assert!(!bytes.starts_with(&ZSTD_MAGIC));
            assert!(matches!(decode_stored(&bytes).unwrap(), Cow::Borrowed(_)));
            let heads = doc.get_heads();
            // With log entries after the snapshot.
            let mut later = doc.fork();
            later.transact(|tx| tx.put(ROOT, "id", "x")).unwrap();
            let changes = later
                .get_changes(&heads)
                .into_iter()
                .map(|c| c.raw_bytes().to_vec())
                .collect();
            let loaded = load_stored(&StoredDocument {
                snapshot: Some(bytes),
                changes,
                ..StoredDocument::default()
            })
            .unwrap();
            assert_eq!(loaded.get_heads(), later.get_heads());
        }
    }

    #[test]
    fn a_damaged_stored_snapshot_is_an_error_not_a_panic() {
        let mut stored = encode_stored(&doc_with_text(50));
        let n = stored.len();
        stored.truncate(n / 2);
        assert!(matches!(
            decode_stored(&stored),
            Err(SnapshotError::Compression)
        ));
        let mut garbage = ZSTD_MAGIC.to_vec();
        garbage.extend_from_slice(&[0xff; 64]);
        assert!(load_stored(&StoredDocument {
            snapshot: Some(garbage),
            ..StoredDocument::default()
        })
        .is_err());
        assert!(load_stored(&StoredDocument {
            snapshot: Some(vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3]),
            ..StoredDocument::default()
        })
        .is_err());
    }
}
