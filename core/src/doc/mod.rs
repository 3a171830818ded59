//! Domain <-> automerge document mapping: one household = one document.
//!
//! Layout (schema 1):
//! ```text
//! ROOT { schema: 1, kind: "household", id, station, created: {by, dev, at},
//!        household: { code, village, address, gps, status, care_level: cell; phones, tags: set;
//!                     summary: text },
//!        persons | visits | amendments | needs | inquiries | follow_ups | cards
//!          | benefits | guardianships: { <uuid>: record },
//!        resolutions: { <uuid>: { field, chosen, replaced: cell; created } } }
//! cell   = { v: string | null, by: worker, dev: device, at: ms }
//! set    = { <element>: { by, dev, at } }
//! record = { created: {by, dev, at}, <field>: cell | set | text ... }
//! ```
//! A visit's `companions` set holds each companion as the element `["<name>","<role>"]`
//! (`companions.rs`); a visit written before companions existed has no such set and reads
//! with none.
//! `benefits` and `guardianships` came later: a document made before them gets each
//! collection with its first record, possibly as two maps (`cells::collections`).
//! Fields this version does not know are never touched, so an older app keeps what a newer
//! one wrote.

pub mod attachments;
pub(crate) mod benefits;
pub(crate) mod cells;
pub(crate) mod companions;
pub(crate) mod conflicts;
pub mod generation;
pub mod generation_check;
pub(crate) mod identity;
#[cfg(test)]
mod later_sections_tests;
#[cfg(test)]
mod lean_tests;
pub mod pinned;
pub(crate) mod read;
pub mod station;
pub mod survey;
pub mod verify;
pub(crate) mod view;
pub(crate) mod work;
pub(crate) mod write;
pub use cells::{Doc, Tx};

use automerge::{ActorId, Automerge, LoadOptions, ReadDoc, ScalarValue, TextEncoding, Value, ROOT};

use crate::error::{Error, Result};
use crate::model::ids::{HouseholdId, StationId};
use crate::model::values::Section;

/// The document schema this version writes.
pub const SCHEMA_VERSION: i64 = 1;

/// Text positions are Unicode code points on every platform.
pub(crate) const TEXT_ENCODING: TextEncoding = TextEncoding::UnicodeCodePoint;

/// An empty document that will write as `actor`.
pub(crate) fn new_document(actor: &ActorId) -> Automerge {
    Automerge::new_with_encoding(TEXT_ENCODING).with_actor(actor.clone())
}

/// Load stored bytes (a snapshot, or concatenated changes) and write as `actor` from now on.
pub(crate) fn load_document(bytes: &[u8], actor: &ActorId) -> Result<Automerge> {
    let opts = LoadOptions::new().text_encoding(TEXT_ENCODING);
    let doc = Automerge::load_with_options(bytes, opts)
        .map_err(|e| Error::MalformedDocument(e.to_string()))?;
    Ok(doc.with_actor(actor.clone()))
}

/// The household id and station a document declares; checks it is a household document.
pub(crate) fn header<R: Doc>(doc: &R) -> Result<(HouseholdId, StationId)> {
    let kind = cells::get_str(doc, &ROOT, "kind")?;
    if kind.as_deref() != Some("household") {
        return Err(Error::NotAHousehold("kind"));
    }
    match doc.get(&ROOT, "schema")? {
        Some((Value::Scalar(s), _)) if matches!(s.as_ref(), ScalarValue::Int(v) if *v >= 1) => {}
        _ => return Err(Error::NotAHousehold("schema")),
    }
    let id = cells::get_str(doc, &ROOT, "id")?.ok_or(Error::NotAHousehold("id"))?;
    let station = cells::get_str(doc, &ROOT, "station")?.ok_or(Error::NotAHousehold("station"))?;
    Ok((
        HouseholdId::parse(&id).map_err(|_| Error::NotAHousehold("id"))?,
        StationId::parse(&station).map_err(|_| Error::NotAHousehold("station"))?,
    ))
}

/// What kind of document a device may write: a household's case file, or a station-work
/// document (ADR 0021). The station document is none of these (the server writes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocKind {
    Household,
    Work(crate::model::station_work::WorkKind),
}

impl DocKind {
    /// The ROOT `kind`; also `documents.kind` on the device and on the server.
    pub const fn as_str(self) -> &'static str {
        match self {
            DocKind::Household => "household",
            DocKind::Work(k) => k.as_str(),
        }
    }

    pub fn from_stored(s: &str) -> Option<DocKind> {
        match s {
            "household" => Some(DocKind::Household),
            other => crate::model::station_work::WorkKind::from_stored(other).map(DocKind::Work),
        }
    }
}

/// The kind, id and station a device-written document declares (a household or a
/// station-work document); anything else is `NotAHousehold` (for the server's checks and the
/// phones' apply).
pub fn document_header<R: Doc>(doc: &R) -> Result<(DocKind, HouseholdId, StationId)> {
    match cells::get_str(doc, &ROOT, "kind")?.as_deref() {
        Some("household") => header(doc).map(|(id, st)| (DocKind::Household, id, st)),
        _ => work::work_header(doc).map(|(k, id, st)| (DocKind::Work(k), id, st)),
    }
}

/// A digest of a visit's original sections (FNV-1a, 64 bit), the visit's `seal`: detects
/// change, not tampering. Every version of the app computes it the same way, so a version
/// that knows only these sections checks it too (ADR 0024).
pub(crate) fn seal_of<R: Doc>(doc: &R, visit: &cells::ObjId) -> Result<String> {
    digest(doc, visit, Section::ORIGINAL)
}

/// A digest of the sections added later (health, study), the visit's `seal_more`; `None`
/// for a visit started before them (it has none of their texts).
pub(crate) fn seal_more_of<R: Doc>(doc: &R, visit: &cells::ObjId) -> Result<Option<String>> {
    let mut has_later = false;
    for s in Section::LATER {
        has_later |= cells::get_text_obj(doc, visit, s.as_str())?.is_some();
    }
    if !has_later {
        return Ok(None);
    }
    digest(doc, visit, Section::LATER).map(Some)
}

fn digest<R: Doc>(doc: &R, visit: &cells::ObjId, sections: &[Section]) -> Result<String> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for s in sections {
        let text = cells::read_text(doc, visit, s.as_str())?;
        for b in s.as_str().bytes().chain([0]).chain(text.bytes()).chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    Ok(format!("{h:016x}"))
}

/// The card issuances a household document holds (for the server's card checks).
pub fn card_issuances(doc: &Automerge) -> Result<Vec<crate::model::records::CardIssuance>> {
    let Some(col) = cells::get_map(doc, &ROOT, "cards")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for key in doc.keys(&col) {
        if let Some(obj) = cells::get_map(doc, &col, &key)? {
            out.push(read::read_card(doc, &key, &obj)?);
        }
    }
    Ok(out)
}

/// When a household was closed, if it is: the time its shown status `closed` was written
/// (as the closing phone's clock recorded it). `None` while it is active or moved away. For
/// the server's retention (ADR 0016).
pub fn closed_at(doc: &Automerge) -> Result<Option<crate::model::time::Timestamp>> {
    // Station work is never closed (and never retained away: ADR 0021).
    if let Ok((DocKind::Work(_), _, _)) = document_header(doc) {
        return Ok(None);
    }
    let hh = cells::get_map(doc, &ROOT, "household")?.ok_or(
        crate::error::Error::MalformedDocument("no household map".into()),
    )?;
    let shown = cells::read_versions(doc, &hh, "status")?.into_iter().next();
    Ok(shown
        .filter(|v| v.value.as_deref() == Some("closed"))
        .map(|v| v.provenance.at))
}

/// An activity document read whole (for the server's read model: the monthly report counts
/// activities and their attendees; ADR 0021).
pub fn read_activity_document(doc: &Automerge) -> Result<crate::model::station_work::Activity> {
    work::read_activity(doc)
}

/// A resource document read whole (for the console's resource register, ADR 0021).
pub fn read_resource_document(doc: &Automerge) -> Result<crate::model::station_work::Resource> {
    work::read_resource(doc)
}

/// A survey document read whole, its versions by number (for the console's survey pages,
/// ADR 0022).
pub fn read_survey_document(doc: &Automerge) -> Result<crate::model::survey::Survey> {
    survey::read_survey(doc)
}

/// The village a household's case file shows (its shown version; empty if none), for the
/// server's assignment of a village's households (ADR 0019).
pub fn village(doc: &Automerge) -> Result<String> {
    let hh = cells::get_map(doc, &ROOT, "household")?.ok_or(
        crate::error::Error::MalformedDocument("no household map".into()),
    )?;
    let shown = cells::read_versions(doc, &hh, "village")?
        .into_iter()
        .next();
    Ok(shown.and_then(|v| v.value).unwrap_or_default())
}

/// The household id and station a household document declares (for the server's checks).
pub fn household_header(doc: &Automerge) -> Result<(HouseholdId, StationId)> {
    header(doc)
}

/// Whether a change's chunk checksum (bytes 4..8) matches its hash. automerge 0.12's
/// `Change::from_bytes` does not check it, but its incremental loader does: a change stored
/// with a wrong checksum would make the stored document fail to load later.
pub fn checksum_ok(change: &automerge::Change) -> bool {
    let bytes = change.raw_bytes();
    bytes.len() >= 8 && bytes[4..8] == change.hash().0[..4]
}

/// After `fresh` was applied to `doc` (whose heads were `before`), check that automerge
/// derives each of them back with the same hash. automerge 0.12 applies change bytes that
/// are not its own encoding of the ops they hold (a flipped byte, a crafted change); such a
/// document panics when its changes are read back and cannot be saved and loaded again
/// (`docs/fuzzing.md`, findings 1 and 2). The caller must drop `doc` on an error: the bad
/// change is in it.
pub fn check_applied(
    doc: &Automerge,
    before: &[automerge::ChangeHash],
    fresh: &[automerge::Change],
) -> Result<()> {
    let derived = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        doc.get_changes(before)
            .iter()
            .map(|c| c.hash())
            .collect::<std::collections::HashSet<_>>()
    }))
    .map_err(|_| Error::MalformedDocument("a change does not read back".into()))?;
    if fresh.iter().all(|c| derived.contains(&c.hash())) {
        Ok(())
    } else {
        Err(Error::MalformedDocument(
            "a change is not the encoding of its own operations".into(),
        ))
    }
}
