//! Reading a household document as a whole, for a reader that is not a device store (the
//! server's console read model): the same readers the phone's index uses, so there is one
//! decoder of household documents.

use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge, ChangeHash};

use crate::doc::{conflicts, read};
use crate::error::{Error, Result};
use crate::model::ids::ResolutionId;
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
