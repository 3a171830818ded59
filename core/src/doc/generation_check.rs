//! What a phone checks of a generation it did not compute itself (issue 15, ADR 0034): a
//! new phone meeting a redacted household, or a phone that lacked part of what the server
//! redacted from.
//!
//! 1. **Canonical.** The generation's changes are exactly its own state written again by
//!    [`generation::build`]: same actors, same order, time 0, no dependencies outside it.
//!    So the bytes hold a state and nothing else — no history in which a redacted value
//!    could hide — and no change of a device sits under it.
//! 2. **This device's words.** Every provenance map (a cell, a `created` map, a set
//!    element) in the generation that names this device carries a value and a time this
//!    device wrote: a server cannot, through a generation, put words in this device's
//!    mouth on a phone that held the household. (A colleague's cells the phone cannot check
//!    the same way: it may lack that colleague's last changes, and the server's claim of
//!    what it held is not signed; ADR 0034 states the trust left.)

use std::collections::{HashMap, HashSet};

use automerge::{
    legacy, ActorId, Automerge, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT,
};

use crate::doc::generation::{self, generation_of, generation_of_actor};
use crate::error::{Error, Result};
use crate::model::ids::HouseholdId;

fn refused(why: &str) -> Error {
    Error::MalformedDocument(format!("generation: {why}"))
}

/// The heads of the generation part of `doc` (the changes its generation actors wrote);
/// empty for a document never redacted.
pub fn generation_heads(doc: &Automerge, id: HouseholdId) -> Vec<ChangeHash> {
    let n = generation_of(doc, id);
    if n == 0 {
        return Vec::new();
    }
    let metas = doc.get_changes_meta(&[]);
    let ours: Vec<_> = metas
        .iter()
        .filter(|m| generation_of_actor(m.actor.to_bytes(), id) == Some(n))
        .collect();
    let deps: HashSet<ChangeHash> = ours.iter().flat_map(|m| m.deps.iter().copied()).collect();
    let mut heads: Vec<ChangeHash> = ours
        .iter()
        .map(|m| m.hash)
        .filter(|h| !deps.contains(h))
        .collect();
    heads.sort();
    heads
}

/// Check 1: the generation part of `doc` is its own state written again (see the module).
/// Nothing to check for a document never redacted.
pub fn check_canonical(doc: &Automerge, id: HouseholdId) -> Result<()> {
    let n = generation_of(doc, id);
    if n == 0 {
        return Ok(());
    }
    let metas = doc.get_changes_meta(&[]);
    if metas
        .iter()
        .any(|m| generation_of_actor(m.actor.to_bytes(), id).is_some_and(|g| g != n))
    {
        return Err(refused("changes of two generations"));
    }
    let heads = generation_heads(doc, id);
    let part = doc
        .fork_at(&heads)
        .map_err(|_| refused("its changes do not load"))?;
    if part
        .get_changes_meta(&[])
        .iter()
        .any(|m| generation_of_actor(m.actor.to_bytes(), id) != Some(n))
    {
        return Err(refused("a device's change under it"));
    }
    let again = generation::build(&part, id, &[], n)?;
    let mut rebuilt = again.doc.get_heads();
    rebuilt.sort();
    if rebuilt != heads {
        return Err(refused("not its own state written again"));
    }
    Ok(())
}

/// A value as compared between two documents: scalars by value, objects by kind.
fn shown(v: &Value<'_>) -> String {
    match v {
        Value::Scalar(s) => format!("{s:?}"),
        Value::Object(t) => format!("{t:?}"),
    }
}

fn scalar_time(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int(t) => Some(*t),
        ScalarValue::Uint(t) => i64::try_from(*t).ok(),
        _ => None,
    }
}

/// The provenance maps below `obj` that name `device` (`dev`), as (value shown, time).
fn device_cells(
    doc: &Automerge,
    obj: &ObjId,
    device: &str,
    out: &mut Vec<(String, Option<i64>)>,
) -> Result<()> {
    let dev = match doc.get(obj, "dev")? {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(d) => Some(d.to_string()),
            _ => None,
        },
        _ => None,
    };
    if dev.as_deref() == Some(device) {
        let v = doc
            .get(obj, "v")?
            .map(|(v, _)| shown(&v))
            .unwrap_or_default();
        let at = match doc.get(obj, "at")? {
            Some((Value::Scalar(s), _)) => scalar_time(&s),
            _ => None,
        };
        out.push((v, at));
    }
    for key in doc.keys(obj).collect::<Vec<_>>() {
        for (v, child) in doc.get_all(obj, key.as_str())? {
            if matches!(v, Value::Object(ObjType::Map | ObjType::Table)) {
                device_cells(doc, &child, device, out)?;
            } else if matches!(v, Value::Object(ObjType::List)) {
                for i in 0..doc.length(&child) {
                    if let Some((Value::Object(ObjType::Map), e)) = doc.get(&child, i)? {
                        device_cells(doc, &e, device, out)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Every provenance map that names `device` in `old`'s history, and every lean value its
/// own actor wrote (ADR 0035) as the legacy cell a generation makes of it: those its own actor's
/// changes wrote (a provenance map is written whole by one change and never changed after,
/// ADR 0002; the server lets no other actor write this device's provenance, ADR 0012), and
/// those of the generation `old` is in (checked when it was taken).
fn ever_written(
    old: &Automerge,
    own: &ActorId,
    id: HouseholdId,
    device: &str,
) -> Result<HashSet<(String, Option<i64>)>> {
    let mut seen = HashSet::new();
    for change in old.get_changes(&[]) {
        if change.actor_id() != own {
            continue;
        }
        let mut maps: HashMap<legacy::ObjectId, (String, Option<i64>, bool)> = HashMap::new();
        for op in change.decode().operations {
            let legacy::Key::Map(key) = &op.key else {
                continue;
            };
            let entry = maps.entry(op.obj.clone()).or_default();
            match (key.as_str(), &op.action) {
                ("v", legacy::OpType::Put(v)) => entry.0 = format!("{v:?}"),
                ("v", legacy::OpType::Make(t)) => entry.0 = format!("{t:?}"),
                ("at", legacy::OpType::Put(v)) => entry.1 = scalar_time(v),
                ("dev", legacy::OpType::Put(ScalarValue::Str(d))) => entry.2 = d == device,
                // A lean value (ADR 0035): a generation writes it as a legacy cell holding
                // this value and its change's time.
                (_, legacy::OpType::Put(v)) => {
                    seen.insert((format!("{v:?}"), Some(change.timestamp())));
                }
                _ => {}
            }
        }
        seen.extend(
            maps.into_values()
                .filter(|(_, _, mine)| *mine)
                .map(|(v, at, _)| (v, at)),
        );
    }
    let heads = generation_heads(old, id);
    if !heads.is_empty() {
        let part = old
            .fork_at(&heads)
            .map_err(|_| refused("the old copy does not load"))?;
        let mut cells = Vec::new();
        device_cells(&part, &ROOT, device, &mut cells)?;
        seen.extend(cells);
    }
    Ok(seen)
}

/// Check 2: every provenance map of `taken` that names `device` carries a value and time
/// `old` (this device's copy before) held. `old` holds every change this device made, so
/// anything else credited to it was not written by it.
pub fn check_own_words(
    old: &Automerge,
    own: &ActorId,
    taken: &Automerge,
    id: HouseholdId,
    device: &str,
) -> Result<()> {
    let mut cells = Vec::new();
    device_cells(taken, &ROOT, device, &mut cells)?;
    if cells.is_empty() {
        return Ok(());
    }
    let seen = ever_written(old, own, id, device)?;
    if cells.iter().any(|c| !seen.contains(c)) {
        return Err(refused("a value credited to this device it never wrote"));
    }
    Ok(())
}
