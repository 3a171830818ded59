//! The building blocks of a household document: cells (a scalar field with its
//! provenance), add-wins sets and text. Every field of the model is stored as one of these.
//!
//! A cell is a small map `{v, by, dev, at}` written whole on every write, so that when two
//! devices write a field concurrently automerge keeps both maps (`get_all`) and each value
//! carries who wrote it, on which device and when.

use automerge::{ObjType, ReadDoc, ScalarValue, Value, ROOT};

use automerge::transaction::Transactable;
pub(crate) use automerge::ObjId;

use crate::error::{Error, Result};
use crate::model::ids::{DeviceId, WorkerId};
use crate::model::policy::EntityKind;
use crate::model::provenance::{FieldVersion, Provenance};
use crate::model::time::Timestamp;

const VALUE: &str = "v";
const BY: &str = "by";
const DEVICE: &str = "dev";
const AT: &str = "at";

pub(crate) fn malformed(what: &'static str) -> Error {
    Error::NotAHousehold(what)
}

/// Write the provenance keys into a map object.
pub(crate) fn put_provenance<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    p: &Provenance,
) -> Result<()> {
    tx.put(obj, BY, p.worker.to_string())?;
    tx.put(obj, DEVICE, p.device.to_string())?;
    tx.put(obj, AT, p.at.0)?;
    Ok(())
}

/// Read the provenance keys of a map object.
pub(crate) fn read_provenance<R: ReadDoc>(doc: &R, obj: &ObjId) -> Result<Provenance> {
    Ok(read_cell_map(doc, obj)?.1)
}

/// One cell's value (unread) and provenance (`by`, `dev` and `at`, required), in one pass
/// over the map's keys: one lookup of the map instead of four, and reading cells is most
/// of reading a household.
fn read_cell_map<R: ReadDoc>(
    doc: &R,
    cell: &ObjId,
) -> Result<(Option<Value<'static>>, Provenance)> {
    let (mut value, mut by, mut dev, mut at) = (None, None, None, None);
    for item in doc.map_range(cell, ..) {
        let slot = match &*item.key {
            VALUE => &mut value,
            BY => &mut by,
            DEVICE => &mut dev,
            AT => &mut at,
            _ => continue,
        };
        *slot = Some(item.value.into_value());
    }
    let worker = WorkerId::parse(&text(by)?.ok_or(malformed("provenance"))?)
        .map_err(|_| malformed("provenance"))?;
    let device = DeviceId::parse(&text(dev)?.ok_or(malformed("provenance"))?)
        .map_err(|_| malformed("provenance"))?;
    let at = match at {
        Some(Value::Scalar(s)) => match s.as_ref() {
            ScalarValue::Int(i) => *i,
            ScalarValue::Uint(u) => i64::try_from(*u).map_err(|_| malformed("provenance"))?,
            _ => return Err(malformed("provenance")),
        },
        _ => return Err(malformed("provenance")),
    };
    let provenance = Provenance {
        worker,
        device,
        at: Timestamp(at),
    };
    Ok((value, provenance))
}

/// A string scalar as [`get_str`] reads it.
fn text(v: Option<Value<'static>>) -> Result<Option<String>> {
    match v {
        None => Ok(None),
        Some(Value::Scalar(s)) => match s.as_ref() {
            ScalarValue::Str(v) => Ok(Some(v.to_string())),
            ScalarValue::Null => Ok(None),
            _ => Err(malformed("expected text")),
        },
        Some(_) => Err(malformed("expected text")),
    }
}

/// A string scalar under `key`, if present.
pub(crate) fn get_str<R: ReadDoc>(doc: &R, obj: &ObjId, key: &str) -> Result<Option<String>> {
    match doc.get(obj, key)? {
        None => Ok(None),
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(v) => Ok(Some(v.to_string())),
            ScalarValue::Null => Ok(None),
            _ => Err(malformed("expected text")),
        },
        Some(_) => Err(malformed("expected text")),
    }
}

/// The map object under `key`, if present.
pub(crate) fn get_map<R: ReadDoc>(doc: &R, obj: &ObjId, key: &str) -> Result<Option<ObjId>> {
    match doc.get(obj, key)? {
        Some((Value::Object(ObjType::Map), id)) => Ok(Some(id)),
        None => Ok(None),
        Some(_) => Err(malformed("expected a map")),
    }
}

/// The text object under `key`, if present.
pub(crate) fn get_text_obj<R: ReadDoc>(doc: &R, obj: &ObjId, key: &str) -> Result<Option<ObjId>> {
    match doc.get(obj, key)? {
        Some((Value::Object(ObjType::Text), id)) => Ok(Some(id)),
        None => Ok(None),
        Some(_) => Err(malformed("expected text")),
    }
}

/// The map that holds a record: the household map, or `collection[key]`.
pub(crate) fn entity_obj<R: ReadDoc>(
    doc: &R,
    kind: EntityKind,
    key: Option<&str>,
) -> Result<Option<ObjId>> {
    match key {
        None => get_map(doc, &ROOT, kind.collection()),
        Some(k) => {
            for collection in collections(doc, kind)? {
                if let Some(obj) = get_map(doc, &collection, k)? {
                    return Ok(Some(obj));
                }
            }
            Ok(None)
        }
    }
}

/// Every map a record collection has. One, except for a collection that came after a
/// document was made (benefits, guardianships): the first record creates it, and two
/// phones adding a first record at once leave two maps, whose records are all read (their
/// keys are record ids, so they never collide).
pub(crate) fn collections<R: ReadDoc>(doc: &R, kind: EntityKind) -> Result<Vec<ObjId>> {
    let mut out = Vec::new();
    for (value, id) in doc.get_all(&ROOT, kind.collection())? {
        match value {
            Value::Object(ObjType::Map) => out.push(id),
            _ => return Err(malformed("expected a map")),
        }
    }
    Ok(out)
}

/// The records of a collection as (key, map), sorted by key (v7 ids: creation order).
pub(crate) fn records_of<R: ReadDoc>(doc: &R, kind: EntityKind) -> Result<Vec<(String, ObjId)>> {
    let mut out = Vec::new();
    for col in collections(doc, kind)? {
        for key in doc.keys(&col) {
            if let Some(obj) = get_map(doc, &col, &key)? {
                out.push((key, obj));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Write a cell: a new `{v, by, dev, at}` map under `field` (`None` clears the value).
pub(crate) fn write_cell<T: Transactable>(
    tx: &mut T,
    parent: &ObjId,
    field: &str,
    value: Option<&str>,
    p: &Provenance,
) -> Result<()> {
    let cell = tx.put_object(parent, field, ObjType::Map)?;
    match value {
        Some(v) => tx.put(&cell, VALUE, v)?,
        None => tx.put(&cell, VALUE, ScalarValue::Null)?,
    }
    put_provenance(tx, &cell, p)
}

/// Every value a cell holds now, the one to show first. Several values mean concurrent
/// writes; the shown one is the latest by timestamp (then device, then value) so that every
/// replica shows the same one.
pub(crate) fn read_versions<R: ReadDoc>(
    doc: &R,
    parent: &ObjId,
    field: &str,
) -> Result<Vec<FieldVersion>> {
    let mut out = Vec::new();
    for (value, id) in doc.get_all(parent, field)? {
        match value {
            Value::Object(ObjType::Map) => {
                let (value, provenance) = read_cell_map(doc, &id)?;
                out.push(FieldVersion {
                    value: text(value)?,
                    provenance,
                });
            }
            _ => return Err(malformed("expected a field cell")),
        }
    }
    out.sort_by(|a, b| {
        (
            b.provenance.at,
            b.provenance.device,
            b.provenance.worker,
            &b.value,
        )
            .cmp(&(
                a.provenance.at,
                a.provenance.device,
                a.provenance.worker,
                &a.value,
            ))
    });
    Ok(out)
}

/// The shown value of a cell (`None` if never written or cleared).
pub(crate) fn read_cell<R: ReadDoc>(
    doc: &R,
    parent: &ObjId,
    field: &str,
) -> Result<Option<String>> {
    Ok(read_versions(doc, parent, field)?
        .into_iter()
        .next()
        .and_then(|v| v.value))
}

/// The shown value of a required cell.
pub(crate) fn read_required<R: ReadDoc>(
    doc: &R,
    parent: &ObjId,
    field: &'static str,
) -> Result<String> {
    read_cell(doc, parent, field)?.ok_or(malformed(field))
}

/// Create an empty set under `field` (done once, when its record is created).
pub(crate) fn create_set<T: Transactable>(
    tx: &mut T,
    parent: &ObjId,
    field: &str,
) -> Result<ObjId> {
    Ok(tx.put_object(parent, field, ObjType::Map)?)
}

/// Add an element to a set (a no-op if present).
pub(crate) fn set_add<T: Transactable>(
    tx: &mut T,
    parent: &ObjId,
    field: &str,
    element: &str,
    p: &Provenance,
) -> Result<()> {
    let set = match get_map(tx, parent, field)? {
        Some(s) => s,
        None => create_set(tx, parent, field)?,
    };
    if tx.get(&set, element)?.is_none() {
        let entry = tx.put_object(&set, element, ObjType::Map)?;
        put_provenance(tx, &entry, p)?;
    }
    Ok(())
}

/// Remove an element from a set (explicit removal; a concurrent add survives it).
///
/// From every map the set has: a set added to a record that was made without it (a
/// visit's `companions`, recorded before companions existed) may have been created on two
/// devices at once, and `read_set` shows the union of both maps.
pub(crate) fn set_remove<T: Transactable>(
    tx: &mut T,
    parent: &ObjId,
    field: &str,
    element: &str,
) -> Result<()> {
    let sets: Vec<ObjId> = tx
        .get_all(parent, field)?
        .into_iter()
        .filter_map(|(value, set)| matches!(value, Value::Object(ObjType::Map)).then_some(set))
        .collect();
    for set in sets {
        if tx.get(&set, element)?.is_some() {
            tx.delete(&set, element)?;
        }
    }
    Ok(())
}

/// The elements of a set, sorted.
pub(crate) fn read_set<R: ReadDoc>(doc: &R, parent: &ObjId, field: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    // Two devices creating the same set concurrently leave two maps: read their union.
    for (value, id) in doc.get_all(parent, field)? {
        if let Value::Object(ObjType::Map) = value {
            out.extend(doc.keys(&id));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Create a text object under `field` with initial content.
pub(crate) fn create_text<T: Transactable>(
    tx: &mut T,
    parent: &ObjId,
    field: &str,
    initial: &str,
) -> Result<ObjId> {
    let text = tx.put_object(parent, field, ObjType::Text)?;
    if !initial.is_empty() {
        tx.splice_text(&text, 0, 0, initial)?;
    }
    Ok(text)
}

/// The content of a text field ("" when absent).
pub(crate) fn read_text<R: ReadDoc>(doc: &R, parent: &ObjId, field: &str) -> Result<String> {
    match get_text_obj(doc, parent, field)? {
        Some(t) => Ok(doc.text(&t)?),
        None => Ok(String::new()),
    }
}

/// Splice into a text field: delete `delete` characters at `pos`, insert `insert` there.
/// Positions count Unicode code points.
pub(crate) fn splice_text<T: Transactable>(
    tx: &mut T,
    parent: &ObjId,
    field: &str,
    pos: usize,
    delete: usize,
    insert: &str,
) -> Result<()> {
    let text = get_text_obj(tx, parent, field)?.ok_or(Error::NotFound("text field"))?;
    let len = tx.length(&text);
    let end = pos
        .checked_add(delete)
        .ok_or(Error::InvalidInput("splice out of range"))?;
    if end > len {
        return Err(Error::InvalidInput("splice out of range"));
    }
    let delete = isize::try_from(delete).map_err(|_| Error::InvalidInput("splice out of range"))?;
    tx.splice_text(&text, pos, delete, insert)?;
    Ok(())
}
