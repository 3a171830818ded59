//! Redaction inside a household's history (issue 15, ADR 0026): a new *generation* of the
//! document — its state at given heads with the redacted fields and records left out,
//! written again with no history — and the rebase of a phone's unsynced edits onto it.
//!
//! A generation is deterministic: written by *generation actors* (derived from the
//! household id, the generation number, a round and a fork index) with time 0, in a fixed
//! order, so every replica that holds the same heads computes the same change hashes. The
//! server computes it and announces its heads; a phone that held those heads computes it
//! too and takes it only if the heads match (it witnesses the server's redaction).
//!
//! The document is written in layers, so that concurrency survives:
//! 1. the root's scalars and maps, and every record's map, empty (one change);
//! 2. everything inside (fields, cells, sets, texts) where one value is held (one change);
//! 3. each key that holds concurrent values, one *round* each: the round forks the document
//!    once per value, each fork writes one value with its own actor, and the forks merge —
//!    so the values are concurrent again, each with its own provenance inside.
//!
//! A rebased edit that was concurrent with a colleague's value it never saw is written on a
//! fork at layer 1 (where the record exists and its fields do not), so it stays concurrent
//! with that value instead of overwriting it.

use crate::doc::{Doc, Tx};
use std::collections::{BTreeMap, BTreeSet, HashSet};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, Automerge, ChangeHash, ObjId, ObjType, PatchAction, Prop, ReadDoc, Value, ROOT,
};

use crate::doc::cells::{entity_obj, get_map, read_cell, read_versions, records_of};
use crate::error::{Error, Result};
use crate::model::ids::{AttachmentId, HouseholdId};
use crate::model::policy::{fields_of, policy, EntityKind, MergePolicy, ALL_KINDS};

/// The first bytes of every generation actor (a device's actor is 16 random bytes, so the
/// two never collide: a generation actor is 31 bytes long).
const ACTOR_TAG: &[u8; 6] = b"dsgen\0";
const ACTOR_LEN: usize = 6 + 16 + 4 + 4 + 1;

/// The actor that writes fork `fork` of round `round` of generation `generation` of `doc`
/// (layers 1 and 2 are round 0, fork 0).
pub fn generation_actor(doc: HouseholdId, generation: u32, round: u32, fork: u8) -> ActorId {
    let mut b = Vec::with_capacity(ACTOR_LEN);
    b.extend_from_slice(ACTOR_TAG);
    b.extend_from_slice(doc.as_uuid().as_bytes());
    b.extend_from_slice(&generation.to_be_bytes());
    b.extend_from_slice(&round.to_be_bytes());
    b.push(fork);
    ActorId::from(b)
}

/// The generation a generation actor of `doc` wrote; `None` for any other actor.
pub fn generation_of_actor(actor: &[u8], doc: HouseholdId) -> Option<u32> {
    if actor.len() != ACTOR_LEN
        || &actor[..6] != ACTOR_TAG
        || &actor[6..22] != doc.as_uuid().as_bytes()
    {
        return None;
    }
    Some(u32::from_be_bytes(actor[22..26].try_into().ok()?))
}

/// The generation a document is in: the highest generation its generation actors wrote,
/// 0 for a document never redacted.
pub fn generation_of(doc: &Automerge, id: HouseholdId) -> u32 {
    doc.get_changes_meta(&[])
        .iter()
        .filter_map(|m| generation_of_actor(m.actor.to_bytes(), id))
        .max()
        .unwrap_or(0)
}

/// One thing to redact, named as a resolution names a field: `kind/record` (a whole record,
/// and what refers to it) or `kind/record/field` (a field's every value; the household's
/// own fields have an empty record: `household//address`). Ids and field names only: a
/// redaction carries no personal data.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Redaction {
    Field {
        kind: EntityKind,
        record: Option<String>,
        field: String,
    },
    Record {
        kind: EntityKind,
        record: String,
    },
    /// One attachment's reference (`attachment/<id>`, ADR 0029); its bytes go from every
    /// replica that holds no other reference to them.
    Attachment {
        id: AttachmentId,
    },
}

impl Redaction {
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || Error::InvalidInput("a redaction is kind/record or kind/record/field");
        let parts: Vec<&str> = s.split('/').collect();
        if let ["attachment", id] = parts.as_slice() {
            // The canonical form only: the item is compared as text with the ledger's.
            let id = AttachmentId::parse(id).map_err(|_| bad())?;
            return if id.to_string() == parts[1] {
                Ok(Redaction::Attachment { id })
            } else {
                Err(bad())
            };
        }
        let kind = EntityKind::from_name(parts.first().copied().unwrap_or_default())
            .filter(|k| ALL_KINDS.contains(k))
            .ok_or_else(bad)?;
        let record = |r: &str| -> Result<String> {
            if r.is_empty()
                || r.len() > 64
                || !r.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
            {
                return Err(bad());
            }
            Ok(r.to_owned())
        };
        match parts.as_slice() {
            [_, "", field] if kind == EntityKind::Household && policy(kind, field).is_some() => {
                Ok(Redaction::Field {
                    kind,
                    record: None,
                    field: (*field).to_owned(),
                })
            }
            [_, r, field] if kind != EntityKind::Household && policy(kind, field).is_some() => {
                Ok(Redaction::Field {
                    kind,
                    record: Some(record(r)?),
                    field: (*field).to_owned(),
                })
            }
            [_, r] if kind != EntityKind::Household => Ok(Redaction::Record {
                kind,
                record: record(r)?,
            }),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Redaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Redaction::Field {
                kind,
                record,
                field,
            } => write!(
                f,
                "{}/{}/{}",
                kind.name(),
                record.as_deref().unwrap_or(""),
                field
            ),
            Redaction::Record { kind, record } => write!(f, "{}/{}", kind.name(), record),
            Redaction::Attachment { id } => write!(f, "attachment/{id}"),
        }
    }
}

/// A generation: the document, and its layer-1 change (rebased concurrent edits fork there).
#[derive(Debug)]
pub struct Generation {
    pub doc: Automerge,
    pub layer1: ChangeHash,
}

/// What a generation leaves out or empties, as places of the old document.
#[derive(Default)]
struct Plan {
    /// (object, key) left out with every value it holds.
    skip: HashSet<(ObjId, String)>,
    /// (object, key) of texts written empty (a redacted text field stays a text, so a draft
    /// can still be typed into).
    blank: HashSet<(ObjId, String)>,
}

impl Plan {
    fn skips(&self, obj: &ObjId, key: &str) -> bool {
        self.skip.contains(&(obj.clone(), key.to_owned()))
    }
}

/// A record's field that names the record it belongs to: the record goes with it.
fn owned_by(kind: EntityKind, field: &str) -> bool {
    matches!(
        (kind, field),
        (EntityKind::Benefit, "person")
            | (EntityKind::Guardianship, "carer" | "child")
            | (EntityKind::Response, "person")
            | (EntityKind::Amendment, "visit")
    )
}

/// Where the redactions fall in `doc` (at its current state). A redaction that names
/// nothing the document holds is an error: the operator named the wrong thing.
fn plan(doc: &Automerge, items: &[Redaction]) -> Result<Plan> {
    let mut plan = Plan::default();
    let mut fields: Vec<(EntityKind, Option<String>, String)> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    for item in items {
        match item {
            Redaction::Field {
                kind,
                record,
                field,
            } => {
                let obj = entity_obj(doc, *kind, record.as_deref())?
                    .ok_or(Error::NotFound("record to redact"))?;
                if policy(*kind, field) == Some(MergePolicy::Text) {
                    plan.blank.insert((obj.clone(), field.clone()));
                    if *kind == EntityKind::Visit {
                        // The seals digest the text: they go with it.
                        plan.skip.insert((obj.clone(), "seal".into()));
                        plan.skip.insert((obj.clone(), "seal_more".into()));
                    }
                } else {
                    plan.skip.insert((obj, field.clone()));
                }
                fields.push((*kind, record.clone(), field.clone()));
            }
            Redaction::Record { kind, record } => {
                let mut found = false;
                for col in crate::doc::cells::collections(doc, *kind)? {
                    if get_map(doc, &col, record)?.is_some() {
                        plan.skip.insert((col, record.clone()));
                        found = true;
                    }
                }
                if !found {
                    return Err(Error::NotFound("record to redact"));
                }
                removed.push(record.clone());
            }
            Redaction::Attachment { id } => {
                let key = id.to_string();
                let held = crate::doc::attachments::collections(doc)?;
                let mut found = false;
                for col in held {
                    if get_map(doc, &col, &key)?.is_some() {
                        plan.skip.insert((col, key.clone()));
                        found = true;
                    }
                }
                if !found {
                    return Err(Error::NotFound("attachment to redact"));
                }
            }
        }
    }
    // What refers to a removed record goes too: a record it owns (a person's benefits,
    // guardianships and survey responses, a visit's amendments) with everything it holds,
    // a field naming it, a set element that is it. Owned records may own others in turn.
    let mut i = 0;
    while i < removed.len() {
        let gone = removed[i].clone();
        i += 1;
        for kind in ALL_KINDS
            .into_iter()
            .filter(|k| *k != EntityKind::Household)
        {
            for (key, obj) in records_of(doc, kind)? {
                if removed.contains(&key) {
                    continue;
                }
                for spec in fields_of(kind) {
                    match spec.policy {
                        MergePolicy::AddWinsSet => {
                            if let Some(set) = get_map(doc, &obj, spec.name)? {
                                // A legacy element is a map, a lean one (ADR 0035) `true`.
                                if doc.get(&set, gone.as_str())?.is_some() {
                                    plan.skip.insert((set, gone.clone()));
                                }
                            }
                        }
                        MergePolicy::Text => {}
                        _ => {
                            let names_it = read_versions(doc, &obj, spec.name)
                                .unwrap_or_default()
                                .iter()
                                .any(|v| v.value.as_deref() == Some(gone.as_str()));
                            if !names_it {
                                continue;
                            }
                            if owned_by(kind, spec.name) {
                                for col in crate::doc::cells::collections(doc, kind)? {
                                    if get_map(doc, &col, &key)?.is_some() {
                                        plan.skip.insert((col, key.clone()));
                                    }
                                }
                                removed.push(key.clone());
                                break;
                            }
                            plan.skip.insert((obj.clone(), spec.name.to_owned()));
                        }
                    }
                }
            }
        }
    }
    // An attachment's reference goes with the record it is attached to (its bytes then go
    // from every replica that holds no other reference to them: ADR 0029).
    for col in crate::doc::attachments::collections(doc)? {
        for key in doc.keys(&col).collect::<Vec<_>>() {
            let Some(obj) = get_map(doc, &col, &key)? else {
                continue;
            };
            let record = crate::doc::cells::get_str(doc, &obj, "record")?;
            if record.is_some_and(|r| removed.contains(&r)) {
                plan.skip.insert((col.clone(), key));
            }
        }
    }
    // Resolutions keep the values they replaced: those of a redacted field or record go.
    if let Some(col) = get_map(doc, &ROOT, "resolutions")? {
        for key in doc.keys(&col) {
            let Some(rec) = get_map(doc, &col, &key)? else {
                continue;
            };
            let path = read_cell(doc, &rec, "field")?.unwrap_or_default();
            let mut parts = path.splitn(3, '/');
            let (kind, record, field) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let hit = removed.iter().any(|r| r == record)
                || fields.iter().any(|(k, r, f)| {
                    k.name() == kind && r.as_deref().unwrap_or("") == record && f == field
                });
            if hit {
                plan.skip.insert((col.clone(), key));
            }
        }
    }
    Ok(plan)
}

/// A key holding concurrent values, written in a round of its own.
struct Deferred {
    /// The object in the generation that holds the key.
    dst: ObjId,
    key: String,
    /// Where the values are in the old document.
    src: ObjId,
}

/// Writes the old document's content into the generation.
struct Copier<'a> {
    old: &'a Automerge,
    plan: &'a Plan,
    deferred: Vec<Deferred>,
    /// Record maps created empty in layer 1, filled in layer 2: (generation, old).
    shells: Vec<(ObjId, ObjId)>,
    /// The old document's registries of actors (ADR 0035), read once.
    registries: Vec<ObjId>,
    /// The owners of the old document's actors, each looked up once.
    owners: crate::doc::cells::Owners,
}

impl<'a> Copier<'a> {
    fn new(old: &'a Automerge, plan: &'a Plan) -> Result<Self> {
        Ok(Copier {
            old,
            plan,
            deferred: Vec::new(),
            shells: Vec::new(),
            registries: crate::doc::cells::registries(old)?,
            owners: Default::default(),
        })
    }
}

impl Copier<'_> {
    /// Copy one value to `dst[key]`; objects recursively. With `defer`, a key inside that
    /// holds concurrent values waits for a round; without (inside a round), its shown value
    /// is copied.
    ///
    /// A lean value (ADR 0035) is credited to the actor that wrote it, which the copy would
    /// change: it is written as a legacy cell `{v, by, dev, at}` holding its provenance.
    #[allow(clippy::too_many_arguments)]
    fn copy_value<T: Tx>(
        &mut self,
        tx: &mut T,
        dst: &ObjId,
        key: &str,
        value: &Value<'_>,
        src: &ObjId,
        parent: &ObjId,
        defer: bool,
    ) -> Result<()> {
        match value {
            Value::Scalar(s)
                if crate::doc::cells::holds_lean_values(self.old, parent, &self.registries)? =>
            {
                let p = crate::doc::cells::op_provenance_with(self.old, src, &self.owners)?;
                crate::doc::cells::write_legacy_cell(tx, dst, key, Some(s.as_ref()), &p)?;
            }
            Value::Scalar(s) => {
                tx.put(dst, key, s.as_ref().clone())?;
            }
            Value::Object(ObjType::Text) => {
                let text = tx.put_object(dst, key, ObjType::Text)?;
                let content = self.old.text(src)?;
                if !content.is_empty() {
                    tx.splice_text(&text, 0, 0, &content)?;
                }
            }
            Value::Object(ObjType::Map | ObjType::Table) => {
                let obj = tx.put_object(dst, key, ObjType::Map)?;
                self.copy_map(tx, &obj, src, defer)?;
            }
            Value::Object(ObjType::List) => {
                let list = tx.put_object(dst, key, ObjType::List)?;
                for i in 0..self.old.length(src) {
                    if let Some((v, id)) = self.old.get(src, i)? {
                        match v {
                            Value::Scalar(s) => {
                                tx.insert(&list, i, s.as_ref().clone())?;
                            }
                            Value::Object(t) => {
                                let o = tx.insert_object(&list, i, t)?;
                                if t == ObjType::Text {
                                    let content = self.old.text(&id)?;
                                    tx.splice_text(&o, 0, 0, &content)?;
                                } else if t != ObjType::List {
                                    self.copy_map(tx, &o, &id, defer)?;
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Copy every key of the old map `src` into the generation's map `dst`.
    fn copy_map<T: Tx>(&mut self, tx: &mut T, dst: &ObjId, src: &ObjId, defer: bool) -> Result<()> {
        for key in self.old.keys(src).collect::<Vec<_>>() {
            if self.plan.skips(src, &key) {
                continue;
            }
            if self.plan.blank.contains(&(src.clone(), key.clone())) {
                tx.put_object(dst, key.as_str(), ObjType::Text)?;
                continue;
            }
            let values = self.old.get_all(src, key.as_str())?;
            if values.len() > 1 && defer {
                self.deferred.push(Deferred {
                    dst: dst.clone(),
                    key,
                    src: src.clone(),
                });
                continue;
            }
            if let Some((value, id)) = self.old.get(src, key.as_str())? {
                self.copy_value(tx, dst, &key, &value, &id, src, defer)?;
            }
        }
        Ok(())
    }
}

fn commit(tx: automerge::transaction::Transaction<'_>) -> Option<ChangeHash> {
    tx.commit_with(CommitOptions::default().with_time(0)).0
}

/// The generation `generation` of household `id` from `old` as it is now, without
/// `items`. Deterministic: the same document state, items and number give the same change
/// hashes on every replica.
pub fn build(
    old: &Automerge,
    id: HouseholdId,
    items: &[Redaction],
    generation: u32,
) -> Result<Generation> {
    if generation == 0 {
        return Err(Error::InvalidInput(
            "generation 0 is the document as created",
        ));
    }
    let plan = plan(old, items)?;
    let mut copier = Copier::new(old, &plan)?;
    let mut doc = Automerge::new().with_actor(generation_actor(id, generation, 0, 0));
    // Layer 1: the root's scalars, its maps, and every record's map, empty.
    let mut tx = doc.transaction();
    for key in old.keys(&ROOT).collect::<Vec<_>>() {
        if plan.skips(&ROOT, &key) {
            continue;
        }
        let values = old.get_all(&ROOT, key.as_str())?;
        if values.len() > 1 {
            copier.deferred.push(Deferred {
                dst: ROOT,
                key,
                src: ROOT,
            });
            continue;
        }
        let Some((value, src)) = old.get(&ROOT, key.as_str())? else {
            continue;
        };
        match value {
            Value::Object(ObjType::Map) => {
                let dst = tx.put_object(&ROOT, key.as_str(), ObjType::Map)?;
                let is_collection = ALL_KINDS
                    .iter()
                    .any(|k| *k != EntityKind::Household && k.collection() == key)
                    || key == "resolutions";
                if !is_collection {
                    copier.shells.push((dst, src));
                    continue;
                }
                for rec in old.keys(&src).collect::<Vec<_>>() {
                    if plan.skips(&src, &rec) {
                        continue;
                    }
                    let values = old.get_all(&src, rec.as_str())?;
                    match old.get(&src, rec.as_str())? {
                        Some((Value::Object(ObjType::Map), rsrc)) if values.len() == 1 => {
                            let rdst = tx.put_object(&dst, rec.as_str(), ObjType::Map)?;
                            copier.shells.push((rdst, rsrc));
                        }
                        Some(_) => copier.deferred.push(Deferred {
                            dst: dst.clone(),
                            key: rec,
                            src: src.clone(),
                        }),
                        None => {}
                    }
                }
            }
            other => copier.copy_value(&mut tx, &ROOT, &key, &other, &src, &ROOT, true)?,
        }
    }
    let layer1 = commit(tx).ok_or(Error::InvalidInput("nothing to keep"))?;
    // Layer 2: everything inside, where one value is held.
    let mut tx = doc.transaction();
    for (dst, src) in std::mem::take(&mut copier.shells) {
        copier.copy_map(&mut tx, &dst, &src, true)?;
    }
    commit(tx);
    // Rounds: each key with concurrent values, its values written concurrently again, in
    // the order automerge holds them (the shown one last, with the highest fork).
    let deferred = std::mem::take(&mut copier.deferred);
    for (round, d) in deferred.iter().enumerate() {
        let values = old.get_all(&d.src, d.key.as_str())?;
        let round = u32::try_from(round + 1)
            .map_err(|_| Error::InvalidInput("too many concurrent values"))?;
        let mut forks = Vec::with_capacity(values.len());
        for (fork, (value, src)) in values.iter().enumerate() {
            let fork = u8::try_from(fork)
                .map_err(|_| Error::InvalidInput("too many concurrent values"))?;
            let mut f = doc
                .fork()
                .with_actor(generation_actor(id, generation, round, fork));
            let mut tx = f.transaction();
            copier.copy_value(&mut tx, &d.dst, &d.key, value, src, &d.src, false)?;
            commit(tx);
            forks.push(f);
        }
        for mut f in forks {
            doc.merge(&mut f)?;
        }
    }
    Ok(Generation { doc, layer1 })
}

/// The layer-1 change of the generation `doc` is in (`None` before any redaction).
pub fn layer1_of(doc: &Automerge, id: HouseholdId) -> Option<ChangeHash> {
    let g = generation_of(doc, id);
    if g == 0 {
        return None;
    }
    let first = generation_actor(id, g, 0, 0);
    doc.get_changes_meta(&[])
        .into_iter()
        .find(|m| *m.actor == first && m.seq == 1)
        .map(|m| m.hash)
}

/// What a rebase did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rebased {
    /// Places (a field, an element, a text) this device's edits wrote again on the new
    /// generation.
    pub kept: usize,
    /// Places its edits touched that the redaction removed (the edit is discarded).
    pub dropped: usize,
}

/// The object at `path` (map keys from the root), if any.
fn walk<R: Doc>(doc: &R, path: &[Prop]) -> Option<ObjId> {
    let mut obj = ROOT;
    for p in path {
        match doc.get(&obj, p.clone()).ok()?? {
            (Value::Object(_), id) => obj = id,
            _ => return None,
        }
    }
    Some(obj)
}

/// Whether `old`'s `src[key]` is an attachment's reference (under `ROOT.attachments`) to a
/// record that `onto` no longer holds: attached offline to what was redacted, it goes too.
fn attached_to_removed<R: Doc>(
    onto: &R,
    old: &Automerge,
    path: &[Prop],
    src: &ObjId,
    key: &str,
) -> Result<bool> {
    if path != [Prop::Map("attachments".into())] {
        return Ok(false);
    }
    let Some(obj) = get_map(old, src, key)? else {
        return Ok(false);
    };
    let kind = crate::doc::cells::get_str(old, &obj, "record_kind")?
        .and_then(|k| EntityKind::from_name(&k));
    let record = crate::doc::cells::get_str(old, &obj, "record")?;
    match (kind, record) {
        (Some(kind), Some(record)) if kind != EntityKind::Household => {
            Ok(entity_obj(onto, kind, Some(&record))?.is_none())
        }
        _ => Ok(false),
    }
}

/// A map key the edits wrote: where (the path of its map) and which key.
type Slot = (Vec<Prop>, String);

/// Rebase the edits `old` holds beyond `base` (this device's unsynced work) onto `onto`,
/// a generation (and what followed it), as new changes of `actor`.
///
/// Texts take the character edits made since `base`, in order, where the generation kept
/// the text as it was at `base` (a redacted text drops them). A map key takes the values
/// written since `base`, copied whole; a value of `base` still shown beside them (the edit
/// was concurrent with it) stays: the edit is written on a fork at layer 1, concurrent with
/// it. With `conservative` (the device did not hold all of `base`, so a colleague's value it
/// never saw may sit there), every written value is written so.
pub fn rebase(
    old: &Automerge,
    base: &[ChangeHash],
    onto: &mut Automerge,
    id: HouseholdId,
    actor: &ActorId,
    conservative: bool,
) -> Result<Rebased> {
    let mut out = Rebased::default();
    let patches = old.diff(base, &old.get_heads());
    let mut texts = Vec::new();
    let mut slots: BTreeSet<Slot> = BTreeSet::new();
    for patch in &patches {
        let path: Vec<Prop> = patch.path.iter().map(|(_, p)| p.clone()).collect();
        match &patch.action {
            PatchAction::SpliceText { .. } | PatchAction::DeleteSeq { .. } => {
                texts.push((path, patch.obj.clone(), patch.action.clone()));
            }
            PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => {
                slots.insert((path, key.clone()));
            }
            PatchAction::Conflict {
                prop: Prop::Map(key),
            } => {
                slots.insert((path, key.clone()));
            }
            _ => {}
        }
    }
    // A place inside a value written since `base` comes with that value, copied whole.
    let written: Vec<Slot> = slots.iter().cloned().collect();
    let within_written = |path: &[Prop]| {
        written.iter().any(|(p, k)| {
            path.len() > p.len()
                && path[..p.len()] == p[..]
                && path[p.len()] == Prop::Map(k.clone())
        })
    };
    let mut concurrent: Vec<Slot> = Vec::new();
    let mut sequential: Vec<Slot> = Vec::new();
    for (path, key) in slots {
        if within_written(&path) {
            continue;
        }
        // The registry of actors (ADR 0035) is the generation's: the edits' lean values are
        // written again as legacy cells holding their provenance, which need no entry.
        let registry = [Prop::Map(crate::doc::cells::ACTORS.into())];
        if (path.is_empty() && key == crate::doc::cells::ACTORS) || path == registry {
            continue;
        }
        let Some(src) = walk(old, &path) else {
            continue;
        };
        let then: HashSet<ObjId> = old
            .get_all_at(&src, key.as_str(), base)?
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let survivors = old
            .get_all(&src, key.as_str())?
            .iter()
            .any(|(_, id)| then.contains(id));
        if conservative || survivors {
            concurrent.push((path, key));
        } else {
            sequential.push((path, key));
        }
    }
    let plan = Plan::default();
    let mut copier = Copier::new(old, &plan)?;
    // The values written since `base` at a slot of the old document, by this device: a
    // colleague's value beyond `base` (one a restored server lost before the redaction)
    // is that colleague's to write again — copied here it would carry their provenance in
    // this device's change, which the server refuses (the simulation found it). `None`
    // when every value written since is a colleague's: the slot is left as it is.
    let new_values = |src: &ObjId, key: &str| -> Result<Option<Vec<(Value<'static>, ObjId)>>> {
        let then: HashSet<ObjId> = old
            .get_all_at(src, key, base)?
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let (own, theirs): (Vec<_>, Vec<_>) = old
            .get_all(src, key)?
            .into_iter()
            .filter(|(_, id)| !then.contains(id))
            .map(|(v, id)| (v.into_owned(), id))
            .partition(|(_, id)| matches!(id, ObjId::Id(_, a, _) if a == actor));
        Ok(if own.is_empty() && !theirs.is_empty() {
            None
        } else {
            Some(own)
        })
    };
    // One chain of this actor's changes: first the concurrent writes, on a fork at layer 1
    // (where records exist and hold nothing yet)...
    if let (Some(l1), false) = (layer1_of(onto, id), concurrent.is_empty()) {
        // With this actor's own changes already there (its chain must go on: automerge
        // refuses two changes of one actor with one sequence number).
        let mut at: Vec<ChangeHash> = onto
            .get_changes_meta(&[])
            .into_iter()
            .filter(|m| *m.actor == *actor)
            .map(|m| m.hash)
            .collect();
        at.push(l1);
        let mut fork = onto.fork_at(&at)?.with_actor(actor.clone());
        let mut tx = fork.transaction();
        let mut later = Vec::new();
        for (path, key) in concurrent.drain(..) {
            let (Some(dst), Some(src)) = (walk(&tx, &path), walk(old, &path)) else {
                later.push((path, key));
                continue;
            };
            if attached_to_removed(&tx, old, &path, &src, &key)? {
                out.dropped += 1;
                continue;
            }
            let Some(values) = new_values(&src, &key)? else {
                continue;
            };
            for (value, vid) in values {
                copier.copy_value(&mut tx, &dst, &key, &value, &vid, &src, false)?;
            }
            out.kept += 1;
        }
        concurrent = later;
        if tx.pending_ops() > 0 {
            commit(tx);
            onto.merge(&mut fork)?;
        }
    }
    // ...then the rest on top of everything: texts, then keys.
    onto.set_actor(actor.clone());
    let mut tx = onto.transaction();
    let mut text_ok: BTreeMap<Vec<Prop>, bool> = BTreeMap::new();
    for (path, obj, action) in &texts {
        if within_written(path) {
            continue;
        }
        if !text_ok.contains_key(path) {
            // The generation kept the text as `base` had it; else it was redacted.
            let kept = walk(&tx, path)
                .is_some_and(|dst| tx.text(&dst).ok() == old.text_at(obj, base).ok());
            text_ok.insert(path.clone(), kept);
            if kept {
                out.kept += 1;
            } else {
                out.dropped += 1;
            }
        }
        if text_ok.get(path) != Some(&true) {
            continue;
        }
        let Some(dst) = walk(&tx, path) else {
            continue;
        };
        match action {
            PatchAction::SpliceText { index, value, .. } => {
                tx.splice_text(&dst, *index, 0, &value.make_string())?;
            }
            PatchAction::DeleteSeq { index, length } => {
                let length = isize::try_from(*length)
                    .map_err(|_| Error::InvalidInput("text edit too long"))?;
                tx.splice_text(&dst, *index, length, "")?;
            }
            _ => {}
        }
    }
    for (path, key) in concurrent.into_iter().chain(sequential) {
        let (Some(dst), Some(src)) = (walk(&tx, &path), walk(old, &path)) else {
            // The record was redacted: the edit goes with it.
            out.dropped += 1;
            continue;
        };
        if attached_to_removed(&tx, old, &path, &src, &key)? {
            out.dropped += 1;
            continue;
        }
        let Some(values) = new_values(&src, &key)? else {
            continue;
        };
        if values.is_empty() && tx.get(&dst, key.as_str())?.is_some() {
            tx.delete(&dst, key.as_str())?;
        }
        for (value, vid) in values {
            copier.copy_value(&mut tx, &dst, &key, &value, &vid, &src, false)?;
        }
        out.kept += 1;
    }
    if tx.pending_ops() > 0 {
        tx.commit();
    } else {
        tx.rollback();
    }
    Ok(out)
}
