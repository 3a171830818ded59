//! Reading a household document as a whole, for a reader that is not a device store (the
//! server's console read model): the same readers the phone's index uses, so there is one
//! decoder of household documents.

use automerge::transaction::CommitOptions;
use std::collections::HashSet;

use automerge::{ActorId, Automerge, ChangeHash, ObjType, ReadDoc, Value};

use crate::doc::{cells, conflicts, read};
use crate::error::{Error, Result};
use crate::model::ids::ResolutionId;
use crate::model::policy::{policy, MergePolicy};
use crate::model::provenance::{Conflict, FieldRef, FieldVersion, ParallelUpdate, Provenance};
use crate::model::records::Household;

/// A household document read into records, with what waits for a human.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseFile {
    pub household: Household,
    /// Concurrent values of identity-critical fields and statuses, edits after finalising.
    pub conflicts: Vec<Conflict>,
    /// Last-writer-wins fields that were written concurrently, with what was overshadowed.
    pub parallel: Vec<ParallelUpdate>,
}

/// Read a household document (an error if it is not one, or is malformed).
pub fn read_case_file(doc: &Automerge) -> Result<CaseFile> {
    // Each record's keys read in one pass, not field by field (the same answers).
    let doc = &crate::doc::view::MapView::new(doc);
    let household = read::read_household(doc)?;
    let review = conflicts::review(doc, household.id)?;
    Ok(CaseFile {
        household,
        conflicts: review.conflicts,
        parallel: review.parallel,
    })
}

/// Every value a field holds now, the shown one first, each with who wrote it, on which
/// device, when (the provenance of a field).
pub fn field_versions(doc: &Automerge, field: &FieldRef) -> Result<Vec<FieldVersion>> {
    conflicts::field_versions(doc, field)
}

/// The changes one decision made to a document, ready to push like a device's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub resolution: ResolutionId,
    /// Change bytes, oldest first (one change).
    pub changes: Vec<Vec<u8>>,
    /// The newest change's hash: what the decider signs.
    pub head: ChangeHash,
}

/// Resolve a conflict in a loaded household document as `actor` (an actor bound to the
/// deciding person's device on the server, ADR 0012), with `p` as the decision's
/// provenance: the same write a phone's `Store::resolve_conflict` makes. The document is
/// changed in place; the changes come back for pushing.
pub fn resolve_conflict(
    doc: &mut Automerge,
    actor: &ActorId,
    field: &FieldRef,
    chosen: Option<&str>,
    p: &Provenance,
) -> Result<Decision> {
    let (household, _) = crate::doc::header(doc)?;
    let before = doc.get_heads();
    doc.set_actor(actor.clone());
    let id = ResolutionId::new();
    let mut tx = doc.transaction();
    if let Err(e) = conflicts::resolve(&mut tx, household, field, chosen, id, p) {
        tx.rollback();
        return Err(e);
    }
    let (hash, _) = tx.commit_with(CommitOptions::default().with_time(p.at.0));
    let head = hash.ok_or(Error::InvalidInput("the decision changed nothing"))?;
    let changes = doc
        .get_changes(&before)
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    Ok(Decision {
        resolution: id,
        changes,
        head,
    })
}

/// Every value a field has held, oldest first, each with who wrote it, on which device,
/// when: the values written over as well as the ones it holds now. For a field kept as a
/// cell (identity, status, last-writer-wins); other fields answer as [`field_versions`].
/// Costs a look at the field as of every change of the document: for one field on demand,
/// not for a whole case file.
pub fn field_history(doc: &Automerge, field: &FieldRef) -> Result<Vec<FieldVersion>> {
    let kind = field.entity.kind();
    match policy(kind, &field.field) {
        Some(MergePolicy::Identity | MergePolicy::LastWriterWins | MergePolicy::Status) => {}
        Some(_) => return field_versions(doc, field),
        None => return Err(Error::InvalidInput("unknown field")),
    }
    let key = field.entity.key();
    let obj = cells::entity_obj(doc, kind, key.as_deref())?.ok_or(Error::NotFound(kind.name()))?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for change in doc.get_changes(&[]) {
        // Before the record existed the object is unknown at those heads: nothing to see.
        let Ok(values) = doc.get_all_at(&obj, field.field.as_str(), &[change.hash()]) else {
            continue;
        };
        for (value, id) in values {
            // Each write is a new op (a lean value, or a legacy cell map written whole
            // once): its id is the version.
            if seen.insert(id.clone()) {
                match value {
                    Value::Object(ObjType::Map) => out.push(FieldVersion {
                        value: cells::get_str(doc, &id, "v")?,
                        provenance: cells::read_provenance(doc, &id)?,
                    }),
                    Value::Scalar(s) => out.push(FieldVersion {
                        value: s.as_str().map(str::to_owned),
                        provenance: cells::op_provenance(doc, &id)?,
                    }),
                    _ => {}
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (a.provenance.at, a.provenance.device, &a.value).cmp(&(
            b.provenance.at,
            b.provenance.device,
            &b.value,
        ))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::ids::{StationId, WorkerId};
    use crate::model::provenance::EntityRef;
    use crate::model::records::{HouseholdEdit, NewHousehold};
    use crate::store::{Store, StoreKey, StoreOptions};

    #[test]
    fn a_field_history_holds_every_value_it_was_given_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(
            dir.path().join("w.db"),
            StoreKey::Raw([3; 32]),
            WorkerId::new(),
            StationId::new(),
        ))
        .unwrap();
        let hh = store
            .create_household(&NewHousehold {
                code: "HH-1".into(),
                address: "一组".into(),
                ..Default::default()
            })
            .unwrap();
        for a in ["二组", "三组"] {
            store
                .edit_household(hh, &HouseholdEdit::Address(a.into()))
                .unwrap();
        }
        let doc =
            crate::doc::load_document(&store.export_document(hh).unwrap(), &ActorId::random())
                .unwrap();
        let field = FieldRef::new(EntityRef::Household, "address");
        let values: Vec<Option<String>> = field_history(&doc, &field)
            .unwrap()
            .into_iter()
            .map(|v| v.value)
            .collect();
        assert_eq!(
            values,
            [
                Some("一组".into()),
                Some("二组".into()),
                Some("三组".into())
            ]
        );
        assert_eq!(
            field_versions(&doc, &field).unwrap().len(),
            1,
            "now: one value"
        );
        let file = read_case_file(&doc).unwrap();
        assert_eq!(file.household.address, "三组");
        assert!(field_history(&doc, &FieldRef::new(EntityRef::Household, "nope")).is_err());
    }
}
