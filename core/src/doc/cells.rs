//! The building blocks of a household document: cells (a scalar field with its
//! provenance), add-wins sets and text. Every field of the model is stored as one of these.
//!
//! A cell is one scalar under the field's key (a *lean* cell, ADR 0035): when two devices
//! write a field concurrently automerge keeps both values (`get_all`), and each value's
//! author is the owner of the automerge actor that wrote it — named once per document and
//! actor in the document's `actors` registry and proven by the change's signature (ADR
//! 0012) — and its time that of the change that wrote it.
//!
//! Documents written before ADR 0035 hold *legacy* cells, small maps `{v, by, dev, at}`
//! written whole on every write; they are read as they always were, and a field may hold
//! both forms at once (an old value beside a concurrent new one). A redaction's generation
//! writes legacy cells, since its own actors are not the values' authors.

use automerge::transaction::{Transactable, Transaction};
use automerge::{ActorId, AutoCommit, Automerge, ObjType, ReadDoc, ScalarValue, Value, ROOT};

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
/// The root key of the registry of actors: `{actor hex: {by, dev}}` (ADR 0035).
pub(crate) const ACTORS: &str = "actors";

/// A document, or a transaction on one, whose operations can be traced to the change that
/// made them: a lean cell's time is its change's.
pub trait Doc: ReadDoc {
    /// The time of the change that made op `id`; `None` for an op of the transaction
    /// being written (it has no change yet: it is the newest).
    fn op_time(&self, id: &ObjId) -> Option<i64>;
}

impl Doc for Automerge {
    fn op_time(&self, id: &ObjId) -> Option<i64> {
        let hash = self.hash_for_opid(id)?;
        Some(self.get_change_meta_by_hash(&hash)?.timestamp)
    }
}

impl Doc for Transaction<'_> {
    fn op_time(&self, id: &ObjId) -> Option<i64> {
        let hash = self.hash_for_opid(id)?;
        Some(self.get_change_by_hash(&hash)?.timestamp())
    }
}

impl Doc for AutoCommit {
    fn op_time(&self, id: &ObjId) -> Option<i64> {
        let hash = self.hash_for_opid(id)?;
        Some(ReadDoc::get_change_by_hash(self, &hash)?.timestamp())
    }
}

/// What the writers need: a transaction whose reads can trace provenance.
pub trait Tx: Transactable + Doc {}
impl<T: Transactable + Doc> Tx for T {}

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
fn text(v: Option<Value<'_>>) -> Result<Option<String>> {
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

/// Write a cell: the value (`None` clears it) under `field`, and the writer's actor in the
/// document's registry if it is not there yet (ADR 0035).
pub(crate) fn write_cell<T: Tx>(
    tx: &mut T,
    parent: &ObjId,
    field: &str,
    value: Option<&str>,
    p: &Provenance,
) -> Result<()> {
    let value = match value {
        Some(v) => ScalarValue::Str(v.into()),
        None => ScalarValue::Null,
    };
    // Automerge skips a put of the value already shown (or turns it into a delete of the
    // values beside it); a write is a write, concurrent with a colleague's and credited to
    // its writer, as a legacy cell was: clear the key first, then put.
    let same = tx
        .get_all(parent, field)?
        .iter()
        .any(|(v, _)| matches!(v, Value::Scalar(s) if **s == value));
    if same {
        tx.delete(parent, field)?;
    }
    tx.put(parent, field, value)?;
    register_writer(tx, parent, field, p)
}

/// Write a legacy cell `{v, by, dev, at}` (a generation, which is not the values' author,
/// keeps their provenance this way; and tests of documents from before ADR 0035).
pub(crate) fn write_legacy_cell<T: Transactable>(
    tx: &mut T,
    parent: &ObjId,
    field: &str,
    value: Option<&ScalarValue>,
    p: &Provenance,
) -> Result<()> {
    // In key order (`at`, `by`, `dev`, `v`): the order in which a generation copies a map,
    // so that a generation built again from a generation writes the same changes (ADR 0034's
    // canonical check).
    let cell = tx.put_object(parent, field, ObjType::Map)?;
    tx.put(&cell, AT, p.at.0)?;
    tx.put(&cell, BY, p.worker.to_string())?;
    tx.put(&cell, DEVICE, p.device.to_string())?;
    tx.put(&cell, VALUE, value.cloned().unwrap_or(ScalarValue::Null))?;
    Ok(())
}

/// Put the actor that just wrote `parent[key]` into the registry, as `p`'s worker and
/// device, unless it is there (one entry per actor and document, written by that actor).
pub(crate) fn register_writer<T: Tx>(
    tx: &mut T,
    parent: &ObjId,
    key: &str,
    p: &Provenance,
) -> Result<()> {
    let Some((_, ObjId::Id(_, actor, _))) = tx.get(parent, key)? else {
        return Err(malformed("provenance"));
    };
    let hex = actor.to_hex_string();
    let mut first = None;
    for (value, registry) in tx.get_all(&ROOT, ACTORS)? {
        if !matches!(value, Value::Object(ObjType::Map)) {
            return Err(malformed("actors"));
        }
        if tx.get(&registry, hex.as_str())?.is_some() {
            return Ok(());
        }
        first.get_or_insert(registry);
    }
    let registry = match first {
        Some(r) => r,
        None => tx.put_object(&ROOT, ACTORS, ObjType::Map)?,
    };
    let entry = tx.put_object(&registry, hex.as_str(), ObjType::Map)?;
    tx.put(&entry, BY, p.worker.to_string())?;
    tx.put(&entry, DEVICE, p.device.to_string())?;
    Ok(())
}

/// The worker and device that own `actor` in `doc`, from its registry of actors
/// (`None` if the actor is not registered there).
pub(crate) fn registered<R: ReadDoc>(
    doc: &R,
    actor: &ActorId,
) -> Result<Option<(WorkerId, DeviceId)>> {
    let key = actor.to_hex_string();
    for (value, registry) in doc.get_all(&ROOT, ACTORS)? {
        if !matches!(value, Value::Object(ObjType::Map)) {
            return Err(malformed("actors"));
        }
        if let Some(entry) = get_map(doc, &registry, &key)? {
            let (mut by, mut dev) = (None, None);
            for item in doc.map_range(&entry, ..) {
                match &*item.key {
                    BY => by = Some(item.value.into_value()),
                    DEVICE => dev = Some(item.value.into_value()),
                    _ => {}
                }
            }
            let worker = WorkerId::parse(&text(by)?.ok_or(malformed("actors"))?)
                .map_err(|_| malformed("actors"))?;
            let device = DeviceId::parse(&text(dev)?.ok_or(malformed("actors"))?)
                .map_err(|_| malformed("actors"))?;
            return Ok(Some((worker, device)));
        }
    }
    Ok(None)
}

/// Whether a scalar under the map `parent` is a lean value (a cell or a set element, ADR
/// 0035) rather than a header field (the root), a registry map's entry, or a key of a map
/// that holds its provenance itself (a legacy cell, a `created` map, an attachment).
/// `registries`: the document's [`registries`].
pub(crate) fn holds_lean_values<R: ReadDoc>(
    doc: &R,
    parent: &ObjId,
    registries: &[ObjId],
) -> Result<bool> {
    if *parent == ROOT || doc.get(parent, BY)?.is_some() {
        return Ok(false);
    }
    Ok(!registries.contains(parent))
}

/// The maps of the document's registry of actors (several where devices made one each
/// concurrently).
pub(crate) fn registries<R: ReadDoc>(doc: &R) -> Result<Vec<ObjId>> {
    Ok(doc
        .get_all(&ROOT, ACTORS)?
        .into_iter()
        .map(|(_, registry)| registry)
        .collect())
}

/// The provenance of the op `id` that wrote a lean value: its actor's owner and its
/// change's time (`i64::MAX` for an op of the transaction being written).
pub(crate) fn op_provenance<R: Doc>(doc: &R, id: &ObjId) -> Result<Provenance> {
    op_provenance_with(doc, id, &Owners::default())
}

/// The owners of the actors looked up so far in one document (ADR 0035): a review reads
/// many values written by a few actors, and finds each actor's entry in the registry once.
#[derive(Default)]
pub(crate) struct Owners(std::cell::RefCell<std::collections::HashMap<ActorId, Option<Owner>>>);

type Owner = (WorkerId, DeviceId);

impl Owners {
    /// [`registered`], remembered.
    pub(crate) fn of<R: ReadDoc>(&self, doc: &R, actor: &ActorId) -> Result<Option<Owner>> {
        if let Some(known) = self.0.borrow().get(actor) {
            return Ok(*known);
        }
        let found = registered(doc, actor)?;
        self.0.borrow_mut().insert(actor.clone(), found);
        Ok(found)
    }

    /// The owner of the actor that made op `id` (a lean value's author).
    fn of_op<R: ReadDoc>(&self, doc: &R, id: &ObjId) -> Result<Owner> {
        let ObjId::Id(_, actor, _) = id else {
            return Err(malformed("provenance"));
        };
        self.of(doc, actor)?.ok_or(malformed("provenance"))
    }
}

pub(crate) fn op_provenance_with<R: Doc>(
    doc: &R,
    id: &ObjId,
    owners: &Owners,
) -> Result<Provenance> {
    let (worker, device) = owners.of_op(doc, id)?;
    Ok(Provenance {
        worker,
        device,
        at: Timestamp(doc.op_time(id).unwrap_or(i64::MAX)),
    })
}

/// The provenance of a set element or a record's `created`: a legacy map `{by, dev, at}`,
/// or (a lean set element) the op that added it.
pub(crate) fn provenance_of<R: Doc>(doc: &R, value: &Value<'_>, id: &ObjId) -> Result<Provenance> {
    match value {
        Value::Object(ObjType::Map) => read_provenance(doc, id),
        Value::Scalar(_) => op_provenance(doc, id),
        _ => Err(malformed("provenance")),
    }
}

/// One value of a cell, in either form, with its provenance.
fn version<R: Doc>(doc: &R, value: Value<'_>, id: &ObjId, owners: &Owners) -> Result<FieldVersion> {
    match value {
        Value::Object(ObjType::Map) => {
            let (value, provenance) = read_cell_map(doc, id)?;
            Ok(FieldVersion {
                value: text(value)?,
                provenance,
            })
        }
        Value::Scalar(s) => Ok(FieldVersion {
            value: text(Some(Value::Scalar(s)))?,
            provenance: op_provenance_with(doc, id, owners)?,
        }),
        _ => Err(malformed("expected a field cell")),
    }
}

/// [`read_versions`] where a cell holds several values; where it holds one or none, only
/// checked as that would check it (`None`): a review looks for concurrent values, and
/// nearly every cell has one.
pub(crate) fn read_versions_if_several<R: Doc>(
    doc: &R,
    parent: &ObjId,
    field: &str,
    owners: &Owners,
) -> Result<Option<Vec<FieldVersion>>> {
    let values = doc.get_all(parent, field)?;
    if values.len() > 1 {
        return read_versions_with(doc, parent, field, owners).map(Some);
    }
    for (value, id) in values {
        match value {
            Value::Object(ObjType::Map) => {
                text(read_cell_map(doc, &id)?.0)?;
            }
            Value::Scalar(s) => {
                text(Some(Value::Scalar(s)))?;
                owners.of_op(doc, &id)?;
            }
            _ => return Err(malformed("expected a field cell")),
        }
    }
    Ok(None)
}

/// Every value a cell holds now, the one to show first. Several values mean concurrent
/// writes; the shown one is the latest by timestamp (then device, then value) so that every
/// replica shows the same one.
pub(crate) fn read_versions<R: Doc>(
    doc: &R,
    parent: &ObjId,
    field: &str,
) -> Result<Vec<FieldVersion>> {
    read_versions_with(doc, parent, field, &Owners::default())
}

/// [`read_versions`], the owners of actors looked up in `owners`.
pub(crate) fn read_versions_with<R: Doc>(
    doc: &R,
    parent: &ObjId,
    field: &str,
    owners: &Owners,
) -> Result<Vec<FieldVersion>> {
    let mut out = Vec::new();
    for (value, id) in doc.get_all(parent, field)? {
        out.push(version(doc, value, &id, owners)?);
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

/// The values a cell holds now, unordered and without provenance (what a writer checks
/// for an open conflict).
pub(crate) fn read_values<R: ReadDoc>(
    doc: &R,
    parent: &ObjId,
    field: &str,
) -> Result<Vec<Option<String>>> {
    let mut out = Vec::new();
    for (value, id) in doc.get_all(parent, field)? {
        out.push(match value {
            Value::Object(ObjType::Map) => text(doc.get(&id, VALUE)?.map(|(v, _)| v.into_owned()))?,
            Value::Scalar(s) => text(Some(Value::Scalar(s)))?,
            _ => return Err(malformed("expected a field cell")),
        });
    }
    Ok(out)
}

/// The shown value of a cell (`None` if never written or cleared).
pub(crate) fn read_cell<R: Doc>(doc: &R, parent: &ObjId, field: &str) -> Result<Option<String>> {
    // One value (nearly always): no provenance to look up.
    let values = doc.get_all(parent, field)?;
    if values.len() <= 1 {
        return match values.into_iter().next() {
            None => Ok(None),
            Some((Value::Object(ObjType::Map), id)) => Ok(text(read_cell_map(doc, &id)?.0)?),
            Some((Value::Scalar(s), _)) => text(Some(Value::Scalar(s))),
            Some(_) => Err(malformed("expected a field cell")),
        };
    }
    Ok(read_versions(doc, parent, field)?
        .into_iter()
        .next()
        .and_then(|v| v.value))
}

/// The shown value of a required cell.
pub(crate) fn read_required<R: Doc>(
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
/// The element is `true` under its key; who added it is the op's author (ADR 0035).
pub(crate) fn set_add<T: Tx>(
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
        tx.put(&set, element, true)?;
        register_writer(tx, &set, element, p)?;
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
