//! Who wrote what: every pushed change must be vouched for by the device that owns its
//! actor and may write only that device's provenance (ADR 0012); creation provenance
//! already in a document may not be rewritten.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use automerge::{Automerge, ObjId, ObjType, ReadDoc, Value, ROOT};
use doorstep_core::doc::verify::{self, Author};
use doorstep_core::protocol::*;
use doorstep_core::HouseholdId;

use super::{contained, now_ms, SyncError, SyncService};
use crate::store::{DeviceAuth, ServerStore};

/// Where a creation provenance sits: the document's own (`None`) or a record's, as
/// (collection key at the root, record key).
pub(super) type Place = Option<(String, String)>;

/// The creation provenance at `place` ("by|dev|at"), read exactly as `authorship` reads it;
/// `None` where there is none.
pub(super) fn author_at(doc: &Automerge, place: &Place) -> Option<String> {
    let map = |obj: &ObjId, key: &str| match doc.get(obj, key) {
        Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    };
    let obj = match place {
        None => ROOT,
        Some((col, rec)) => map(&map(&ROOT, col)?, rec)?,
    };
    let Ok(Some((Value::Object(_), created))) = doc.get(&obj, "created") else {
        return None;
    };
    let read = |k: &str| {
        doc.get(&created, k)
            .ok()
            .flatten()
            .map(|(v, _)| v.to_string())
            .unwrap_or_default()
    };
    Some(format!("{}|{}|{}", read("by"), read("dev"), read("at")))
}

/// Who created the document and each record in it: pushes may not rewrite these.
pub(super) fn authorship(doc: &Automerge) -> BTreeMap<Place, String> {
    let mut out = BTreeMap::new();
    if let Some(who) = author_at(doc, &None) {
        out.insert(None, who);
    }
    for col in doc.keys(&ROOT) {
        out.extend(records(doc, &col).filter_map(|place| {
            let who = author_at(doc, &place)?;
            Some((place, who))
        }));
    }
    out
}

/// The places of the records of the collection at root key `col`.
pub(super) fn records<'a>(doc: &'a Automerge, col: &str) -> impl Iterator<Item = Place> + 'a {
    let obj = match doc.get(&ROOT, col) {
        Ok(Some((Value::Object(ObjType::Map), obj))) => Some(obj),
        _ => None,
    };
    let col = col.to_owned();
    obj.into_iter()
        .flat_map(move |obj| doc.keys(&obj).collect::<Vec<_>>())
        .map(move |rec| Some((col.clone(), rec)))
}

/// The places whose creation provenance `writes` could change, found in the document
/// before they are applied; `None` when that cannot be narrowed (check every place).
///
/// A provenance is read along root key `col` → record key `rec` → key `created` → keys
/// `by`, `dev`, `at`. Automerge changes a key's value only by ops at that (object, key), and
/// an object only ever sits where it was made; so a place is untouched unless an op writes
/// one of those keys of the objects on its path (or any key of its `created` object). An
/// object the document does not have yet was made by these changes: it can reach an
/// existing place only through an op on an existing object, which is counted there.
pub(super) fn touched_places(
    doc: &Automerge,
    writes: &verify::Writes,
    paths: &verify::Paths,
) -> Option<BTreeSet<Place>> {
    let mut out = BTreeSet::new();
    for (obj, keys) in writes {
        if *obj == ROOT {
            let Some(keys) = keys else {
                return None;
            };
            for col in keys {
                if col == "created" {
                    out.insert(None);
                }
                out.extend(records(doc, col));
            }
            continue;
        }
        // The path from the root to the object, as map keys (at most three deep matters);
        // provenance is never read under a list.
        let Some(verify::ObjPath::Keys(path)) = paths.get(obj) else {
            continue; // made by these changes, or under a list
        };
        let writes_key = |k: &str| keys.as_ref().is_none_or(|keys| keys.contains(k));
        match path.as_slice() {
            // The document's `created` object, or a collection.
            [col] => {
                if col == "created" {
                    out.insert(None);
                }
                match keys {
                    Some(keys) => {
                        out.extend(keys.iter().map(|rec| Some((col.clone(), rec.clone()))))
                    }
                    None => out.extend(
                        doc.keys(obj)
                            .map(|rec| Some((col.clone(), rec)))
                            .collect::<Vec<_>>(),
                    ),
                }
            }
            // A record.
            [col, rec] if writes_key("created") => {
                out.insert(Some((col.clone(), rec.clone())));
            }
            // A record's `created` object.
            [col, rec, created] if created == "created" => {
                out.insert(Some((col.clone(), rec.clone())));
            }
            _ => {}
        }
    }
    Some(out)
}

/// Whether a document's fresh changes are attributed to their authors.
pub(super) enum Attribution {
    /// Every change is vouched for; the pushed signatures to keep (per actor, the one over
    /// its newest change).
    Vouched(Vec<AuthorSignature>),
    /// Some change is not vouched for by its actor's owner, or writes another's provenance.
    Unattributed,
}

impl<S: ServerStore> SyncService<S> {
    /// Check that every fresh change is vouched for by the device that owns its actor (a
    /// bound device of this station, whose signature over a descendant-or-self change of the
    /// same actor verifies), and writes only that device's provenance.
    pub(super) fn attribute(
        &self,
        auth: &DeviceAuth,
        doc_id: HouseholdId,
        doc: &Automerge,
        fresh: &[verify::Decoded<'_>],
        pushed: &[&AuthorSignature],
        held: &[AuthorSignature],
    ) -> Result<Attribution, SyncError> {
        let now = now_ms();
        let mut by_actor: BTreeMap<Vec<u8>, Vec<&verify::Decoded<'_>>> = BTreeMap::new();
        for c in fresh {
            by_actor
                .entry(c.change.actor_id().to_bytes().to_vec())
                .or_default()
                .push(c);
        }
        let mut keep = Vec::new();
        for (actor, changes) in by_actor {
            let Some(owner) = self.signer(&actor)? else {
                return Ok(Attribution::Unattributed);
            };
            if owner.station != auth.station {
                return Ok(Attribution::Unattributed);
            }
            let author = Author {
                worker: owner.worker,
                device: owner.device,
            };
            for c in &changes {
                if !matches!(
                    contained(|| verify::check_provenance_of(doc, c, &author, now)),
                    Some(Ok(()))
                ) {
                    return Ok(Attribution::Unattributed);
                }
            }
            // Signatures for this actor: the pushed ones must verify and name a change of
            // this actor; the held ones were verified when they were kept.
            let mut vouching: Vec<automerge::ChangeHash> = Vec::new();
            for s in pushed.iter().filter(|s| s.actor == actor) {
                let of_actor = doc
                    .get_change_by_hash(&s.signature.hash)
                    .is_some_and(|c| c.actor_id().to_bytes() == actor.as_slice());
                if !of_actor || !s.signature.verify(&owner.key, doc_id.as_uuid()) {
                    return Ok(Attribution::Unattributed);
                }
                vouching.push(s.signature.hash);
                keep.push((*s).clone());
            }
            vouching.extend(
                held.iter()
                    .filter(|s| s.actor == actor)
                    .map(|s| s.signature.hash),
            );
            // A signature over the actor's change with sequence number n covers every change
            // of that actor up to n: automerge refuses a second change with an actor's
            // sequence number (and one at or below what the document holds), and a signed
            // change's dependencies must be present, so the actor's changes up to n in this
            // document are exactly the signed change's own chain (ADR 0012). Comparing
            // sequence numbers costs a lookup; walking ancestry cost a pass over the
            // document's changes per pushed change.
            let vouched = vouching
                .iter()
                .filter_map(|h| doc.get_change_meta_by_hash(h))
                .filter(|m| m.actor.to_bytes() == actor.as_slice())
                .map(|m| m.seq)
                .max()
                .unwrap_or(0);
            if changes.iter().any(|c| c.change.seq() > vouched) {
                return Ok(Attribution::Unattributed);
            }
        }
        // Keep, per actor, the signature over its newest change.
        keep.sort_by_key(|s| {
            std::cmp::Reverse(
                doc.get_change_meta_by_hash(&s.signature.hash)
                    .map(|m| m.seq)
                    .unwrap_or(0),
            )
        });
        let mut seen = HashSet::new();
        keep.retain(|s| seen.insert(s.actor.clone()));
        Ok(Attribution::Vouched(keep))
    }
}
