//! Reading a household document as a whole, for a reader that is not a device store (the
//! server's console read model): the same readers the phone's index uses, so there is one
//! decoder of household documents.

use automerge::Automerge;

use crate::doc::{conflicts, read};
use crate::error::Result;
use crate::model::provenance::{Conflict, FieldRef, FieldVersion, ParallelUpdate};
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
