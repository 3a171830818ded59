//! The attachment kinds a station pins (ADR 0032): its phones download the bytes of every
//! attachment of those kinds after a sync (signatures, say, which a worker must be able to
//! show offline), and the rest when the app opens them. A setting of the station document,
//! written by the server's admin only, so it reaches every phone of the station at its
//! next sync and no other station's:
//!
//! ```text
//! ROOT.pinned_attachments: { "photo": false, "signature": true, "document": false }
//! ```
//!
//! One boolean scalar per kind: a change is one `put` per kind and the last writer wins.
//! A document without the map pins nothing; a key this version does not know (a newer
//! server's kind) or a value that is not a boolean is skipped.

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ScalarValue, Value, ROOT};

use super::cells::get_map;
use super::station::station_header;
use crate::error::Result;
use crate::model::attachment::AttachmentKind;
use crate::model::time::Timestamp;

const KEY: &str = "pinned_attachments";

/// The kinds the station pins, in [`AttachmentKind::ALL`] order.
pub fn read_pinned_kinds<R: super::Doc>(doc: &R) -> Result<Vec<AttachmentKind>> {
    station_header(doc)?;
    let Ok(Some(map)) = get_map(doc, &ROOT, KEY) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for kind in AttachmentKind::ALL {
        if let Ok(Some((Value::Scalar(v), _))) = doc.get(&map, kind.as_str()) {
            if matches!(v.as_ref(), ScalarValue::Boolean(true)) {
                out.push(kind);
            }
        }
    }
    Ok(out)
}

/// Pin exactly `kinds` (the others are unpinned), in one change; `false` when the document
/// already said so (no change is made).
pub fn set_pinned_kinds(
    doc: &mut Automerge,
    kinds: &[AttachmentKind],
    at: Timestamp,
) -> Result<bool> {
    let wanted: Vec<AttachmentKind> = AttachmentKind::ALL
        .into_iter()
        .filter(|k| kinds.contains(k))
        .collect();
    let has_map = matches!(get_map(doc, &ROOT, KEY), Ok(Some(_)));
    if has_map && read_pinned_kinds(doc)? == wanted {
        return Ok(false);
    }
    let mut tx = doc.transaction();
    // Absent in a document from before it; anything but a map is replaced.
    let map = match get_map(&tx, &ROOT, KEY) {
        Ok(Some(m)) => m,
        _ => tx.put_object(&ROOT, KEY, ObjType::Map)?,
    };
    for kind in AttachmentKind::ALL {
        tx.put(&map, kind.as_str(), kinds.contains(&kind))?;
    }
    tx.commit_with(automerge::transaction::CommitOptions::default().with_time(at.0));
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::doc::station::new_station_doc;
    use crate::model::ids::StationId;

    #[test]
    fn pinned_kinds_are_set_read_back_and_not_written_twice() {
        let mut doc = new_station_doc(StationId::new()).unwrap();
        assert!(
            read_pinned_kinds(&doc).unwrap().is_empty(),
            "none by default"
        );
        let sig = [AttachmentKind::Signature];
        assert!(set_pinned_kinds(&mut doc, &sig, Timestamp(1)).unwrap());
        assert_eq!(read_pinned_kinds(&doc).unwrap(), sig);
        let heads = doc.get_heads();
        assert!(!set_pinned_kinds(&mut doc, &sig, Timestamp(2)).unwrap());
        assert_eq!(doc.get_heads(), heads, "no change for the same setting");
        let two = [AttachmentKind::Document, AttachmentKind::Signature];
        assert!(set_pinned_kinds(&mut doc, &two, Timestamp(3)).unwrap());
        assert_eq!(
            read_pinned_kinds(&doc).unwrap(),
            [AttachmentKind::Signature, AttachmentKind::Document]
        );
        assert!(set_pinned_kinds(&mut doc, &[], Timestamp(4)).unwrap());
        assert!(read_pinned_kinds(&doc).unwrap().is_empty());
        // Unpinning everything on a document without the map still writes it: explicit.
        let mut fresh = new_station_doc(StationId::new()).unwrap();
        assert!(set_pinned_kinds(&mut fresh, &[], Timestamp(5)).unwrap());
    }

    #[test]
    fn unknown_keys_and_values_are_skipped() {
        let mut doc = new_station_doc(StationId::new()).unwrap();
        let mut tx = doc.transaction();
        let map = tx.put_object(&ROOT, KEY, ObjType::Map).unwrap();
        tx.put(&map, "signature", "yes").unwrap();
        tx.put(&map, "video", true).unwrap();
        tx.put(&map, "document", true).unwrap();
        tx.commit();
        assert_eq!(read_pinned_kinds(&doc).unwrap(), [AttachmentKind::Document]);
        // A `pinned_attachments` that is not a map: nothing pinned, no error.
        let mut doc = new_station_doc(StationId::new()).unwrap();
        let mut tx = doc.transaction();
        tx.put(&ROOT, KEY, "signature").unwrap();
        tx.commit();
        assert!(read_pinned_kinds(&doc).unwrap().is_empty());
    }
}
