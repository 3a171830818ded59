//! Attachment references in a household's document (ADR 0023):
//!
//! ```text
//! ROOT.attachments: { <attachment id>: { record_kind, record?, kind, mime, size, hash,
//!                                        thumb_hash?, thumb_size?, by, dev, at } }
//! ```
//!
//! `thumb_hash` / `thumb_size` came later (ADR 0032): a photo's thumbnail, its own blob. A
//! reader from before ignores them.
//!
//! A reference is written once and never changed (a colleague cannot rewrite it: the
//! provenance check refuses writes into another actor's map holding `by`). Like the
//! collections that came after a document was made, two phones attaching a first file at
//! once leave two `attachments` maps; both are read (their keys are fresh ids).

use crate::doc::{Doc, Tx};
use automerge::{ObjType, ScalarValue, Value, ROOT};

use super::cells::{get_map, get_str, malformed, put_provenance, read_provenance, ObjId};
use crate::error::{Error, Result};
use crate::model::attachment::{
    checked_mime, Attachment, AttachmentKind, BlobHash, BlobRef, NewAttachment,
};
use crate::model::ids::{AttachmentId, HouseholdId};
use crate::model::policy::EntityKind;
use crate::model::provenance::{EntityRef, Provenance};

const COLLECTION: &str = "attachments";

/// Write a new reference. The record must exist in the document.
pub(crate) fn add<T: Tx>(
    tx: &mut T,
    id: AttachmentId,
    new: &NewAttachment,
    size: u64,
    hash: BlobHash,
    thumbnail: Option<BlobRef>,
    p: &Provenance,
) -> Result<()> {
    let (record, kind) = (new.record, new.kind);
    let mime = checked_mime(&new.mime)?;
    check_record(tx, record)?;
    let key = record.key();
    let collection = match get_map(tx, &ROOT, COLLECTION)? {
        Some(c) => c,
        None => tx.put_object(&ROOT, COLLECTION, ObjType::Map)?,
    };
    let obj = tx.put_object(&collection, id.to_string(), ObjType::Map)?;
    tx.put(&obj, "record_kind", record.kind().name())?;
    if let Some(k) = key {
        tx.put(&obj, "record", k)?;
    }
    tx.put(&obj, "kind", kind.as_str())?;
    tx.put(&obj, "mime", mime)?;
    tx.put(&obj, "size", size)?;
    tx.put(&obj, "hash", hash.to_hex())?;
    if let Some(t) = thumbnail {
        tx.put(&obj, "thumb_hash", t.hash.to_hex())?;
        tx.put(&obj, "thumb_size", t.size)?;
    }
    put_provenance(tx, &obj, p)?;
    Ok(())
}

/// The record an attachment is for exists in the household's document.
pub(crate) fn check_record<R: Doc>(doc: &R, record: EntityRef) -> Result<()> {
    let key = record.key();
    if record.kind() != EntityKind::Household
        && super::cells::entity_obj(doc, record.kind(), key.as_deref())?.is_none()
    {
        return Err(Error::NotFound("record"));
    }
    Ok(())
}

/// The household's `attachments` maps (two when two phones attached a first file at once).
pub(crate) fn collections<R: Doc>(doc: &R) -> Result<Vec<ObjId>> {
    Ok(doc
        .get_all(&ROOT, COLLECTION)?
        .into_iter()
        .filter(|(v, _)| matches!(v, Value::Object(ObjType::Map)))
        .map(|(_, id)| id)
        .collect())
}

/// The hashes the household's references name, thumbnails included (what a replica must
/// keep the bytes of).
pub fn referenced_hashes<R: Doc>(
    doc: &R,
    household: HouseholdId,
) -> Result<std::collections::BTreeSet<BlobHash>> {
    Ok(read_all(doc, household)?
        .into_iter()
        .flat_map(|a| std::iter::once(a.hash).chain(a.thumbnail.map(|t| t.hash)))
        .collect())
}

/// Every reference of the household, in id order (v7: the order they were attached). A
/// malformed reference makes the document malformed (the server refuses it: the one
/// validator, ADR 0013).
pub fn read_all<R: Doc>(doc: &R, household: HouseholdId) -> Result<Vec<Attachment>> {
    let mut out = Vec::new();
    for (value, col) in doc.get_all(&ROOT, COLLECTION)? {
        if !matches!(value, Value::Object(ObjType::Map)) {
            return Err(malformed("expected a map"));
        }
        for key in doc.keys(&col) {
            let obj = get_map(doc, &col, &key)?.ok_or(malformed("expected a map"))?;
            out.push(read_one(doc, household, &key, &obj)?);
        }
    }
    out.sort_by_key(|a| a.id);
    Ok(out)
}

fn read_one<R: Doc>(doc: &R, household: HouseholdId, key: &str, obj: &ObjId) -> Result<Attachment> {
    let bad = |what| malformed(what);
    let id = AttachmentId::parse(key).map_err(|_| bad("malformed attachment id"))?;
    let record_kind = get_str(doc, obj, "record_kind")?
        .and_then(|k| EntityKind::from_name(&k))
        .ok_or(bad("attachment record kind"))?;
    let record_key = get_str(doc, obj, "record")?;
    let record = if record_kind == EntityKind::Household {
        EntityRef::Household
    } else {
        EntityRef::from_parts(record_kind, record_key.as_deref())
            .map_err(|_| bad("attachment record"))?
    };
    let kind = get_str(doc, obj, "kind")?
        .and_then(|k| AttachmentKind::parse(&k).ok())
        .ok_or(bad("attachment kind"))?;
    let mime = get_str(doc, obj, "mime")?.ok_or(bad("attachment MIME type"))?;
    checked_mime(&mime).map_err(|_| bad("attachment MIME type"))?;
    let size = read_size(doc, obj, "size")?.ok_or(bad("attachment size"))?;
    let hash = get_str(doc, obj, "hash")?
        .and_then(|h| BlobHash::parse(&h).ok())
        .ok_or(bad("attachment hash"))?;
    // Both or neither; a thumbnail is a blob like the photo, checked as strictly.
    let thumbnail = match (
        get_str(doc, obj, "thumb_hash")?,
        read_size(doc, obj, "thumb_size")?,
    ) {
        (None, None) => None,
        (Some(h), Some(size)) => Some(BlobRef {
            hash: BlobHash::parse(&h).map_err(|_| bad("attachment thumbnail hash"))?,
            size,
        }),
        _ => return Err(bad("attachment thumbnail")),
    };
    let provenance = read_provenance(doc, obj)?;
    Ok(Attachment {
        id,
        household,
        record,
        kind,
        mime,
        size,
        hash,
        thumbnail,
        provenance,
        local: false,
    })
}

fn read_size<R: Doc>(doc: &R, obj: &ObjId, key: &str) -> Result<Option<u64>> {
    match doc.get(obj, key)? {
        None => Ok(None),
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Uint(n) => Ok(Some(*n)),
            ScalarValue::Int(n) => u64::try_from(*n)
                .map(Some)
                .map_err(|_| malformed("attachment size")),
            _ => Err(malformed("attachment size")),
        },
        _ => Err(malformed("attachment size")),
    }
}
