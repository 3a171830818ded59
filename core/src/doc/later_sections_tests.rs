//! The health and study sections came after the first six (ADR 0024): a visit started
//! before them keeps reading, sealing and settling as it did; the visit's `seal` stays what
//! every version computes, and `seal_more` covers the later sections.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

use crate::doc::Doc;
use automerge::transaction::Transactable;
use automerge::Automerge;

use super::cells::{entity_obj, read_cell, read_versions, ObjId};
use super::conflicts::{resolve, review};
use super::{seal_more_of, seal_of, verify, write};
use crate::error::Error;
use crate::model::ids::*;
use crate::model::policy::EntityKind;
use crate::model::provenance::{ConflictKind, Provenance};
use crate::model::records::{NewHousehold, NewVisit};
use crate::model::time::{Date, Timestamp};
use crate::model::values::{Section, VisitKind};

fn prov(at: i64) -> Provenance {
    Provenance {
        worker: WorkerId::new(),
        device: DeviceId::new(),
        at: Timestamp(at),
    }
}

/// A household with one draft visit; `before_later_sections` makes the visit as a version
/// without health and study did (no text for them).
fn household(visit: VisitId, before_later_sections: bool) -> (Automerge, HouseholdId) {
    let p = prov(1_700_000_000_000);
    let id = HouseholdId::new();
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    let new = NewHousehold {
        code: "HH-000001".into(),
        ..Default::default()
    };
    write::create_household(&mut tx, id, StationId::new(), &new, &p).unwrap();
    let new = NewVisit {
        kind: VisitKind::Home,
        date: Date::parse("2026-05-03").unwrap(),
        started_at: p.at,
        gps: None,
        other_workers: Vec::new(),
        present: Vec::new(),
        companions: vec![],
    };
    write::start_visit(&mut tx, visit, &new, &p).unwrap();
    if before_later_sections {
        let obj = visit_obj(&tx, visit);
        for s in Section::LATER {
            tx.delete(&obj, s.as_str()).unwrap();
        }
    }
    tx.commit();
    (doc, id)
}

fn visit_obj<R: Doc>(doc: &R, visit: VisitId) -> ObjId {
    entity_obj(doc, EntityKind::Visit, Some(&visit.to_string()))
        .unwrap()
        .unwrap()
}

fn type_into(doc: &mut Automerge, visit: VisitId, s: Section, pos: usize, text: &str) {
    let mut tx = doc.transaction();
    write::splice_section(&mut tx, visit, s, pos, 0, text, &prov(1_700_000_001_000)).unwrap();
    tx.commit();
}

fn finalise(doc: &mut Automerge, visit: VisitId) {
    let mut tx = doc.transaction();
    write::finalise_visit(&mut tx, visit, &prov(1_700_000_002_000)).unwrap();
    tx.commit();
}

#[test]
fn the_seal_covers_the_original_sections_and_seal_more_the_later_ones() {
    let v = VisitId::new();
    let (mut doc, hh) = household(v, false);
    type_into(&mut doc, v, Section::Concerns, 0, "孩子手臂有淤青");
    let seal_before = seal_of(&doc, &visit_obj(&doc, v)).unwrap();
    let more_before = seal_more_of(&doc, &visit_obj(&doc, v)).unwrap();
    assert!(more_before.is_some(), "a new visit has the later sections");
    type_into(&mut doc, v, Section::Health, 0, "哮喘，每月复诊");
    type_into(&mut doc, v, Section::Study, 0, "三年级，成绩中等");
    let obj = visit_obj(&doc, v);
    // What a version that knows only the six sections computes does not move...
    assert_eq!(seal_of(&doc, &obj).unwrap(), seal_before);
    // ...the later sections have their own seal.
    let more = seal_more_of(&doc, &obj).unwrap();
    assert_ne!(more, more_before);
    finalise(&mut doc, v);
    let obj = visit_obj(&doc, v);
    assert_eq!(read_cell(&doc, &obj, "seal").unwrap(), Some(seal_before));
    assert_eq!(read_cell(&doc, &obj, "seal_more").unwrap(), more);
    assert!(review(&doc, hh).unwrap().conflicts.is_empty());
    verify::validate(&doc).unwrap();
    let visit = super::read::read_household(&doc).unwrap().visits.remove(0);
    assert_eq!(visit.section(Section::Health), "哮喘，每月复诊");
    assert_eq!(visit.section(Section::Study), "三年级，成绩中等");
}

#[test]
fn a_visit_started_before_the_later_sections_reads_seals_and_refuses_them() {
    let v = VisitId::new();
    let (mut doc, hh) = household(v, true);
    type_into(&mut doc, v, Section::FamilySituation, 0, "奶奶七十二岁");
    // Making the text now could race a colleague making it too: refused, clearly.
    let mut tx = doc.transaction();
    let err = write::splice_section(&mut tx, v, Section::Health, 0, 0, "x", &prov(1)).unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(m) if m.contains("before health and study")),
        "{err:?}"
    );
    tx.rollback();
    finalise(&mut doc, v);
    let obj = visit_obj(&doc, v);
    assert!(read_cell(&doc, &obj, "seal").unwrap().is_some());
    assert_eq!(read_cell(&doc, &obj, "seal_more").unwrap(), None);
    assert!(review(&doc, hh).unwrap().conflicts.is_empty());
    verify::validate(&doc).unwrap();
    let visit = super::read::read_household(&doc).unwrap().visits.remove(0);
    assert_eq!(visit.section(Section::Health), "");
    assert_eq!(visit.section(Section::FamilySituation), "奶奶七十二岁");
}

#[test]
fn a_later_section_typed_while_the_visit_was_finalised_is_flagged_and_settled() {
    let v = VisitId::new();
    let (mut a, hh) = household(v, false);
    type_into(&mut a, v, Section::Health, 0, "发烧三天");
    let mut b = a.fork().with_actor(automerge::ActorId::random());
    finalise(&mut a, v);
    // Offline, concurrently: B adds to the health section.
    type_into(&mut b, v, Section::Health, 4, "，已就医");
    a.merge(&mut b).unwrap();
    let obj = visit_obj(&a, v);
    // The original seal still matches: an older version (which shows no health section)
    // raises nothing; this version does.
    assert_eq!(
        read_cell(&a, &obj, "seal").unwrap(),
        Some(seal_of(&a, &obj).unwrap())
    );
    let conflicts = review(&a, hh).unwrap().conflicts;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].kind, ConflictKind::EditedAfterFinalise);
    // Nothing was lost.
    let visit = super::read::read_household(&a).unwrap().visits.remove(0);
    assert_eq!(visit.section(Section::Health), "发烧三天，已就医");
    // Accepting the merged text settles it, and the visit itself is not written.
    let seals_before = read_versions(&a, &obj, "seal_more").unwrap();
    let mut tx = a.transaction();
    resolve(
        &mut tx,
        hh,
        &conflicts[0].field,
        None,
        ResolutionId::new(),
        &prov(1_700_000_003_000),
    )
    .unwrap();
    tx.commit();
    assert!(review(&a, hh).unwrap().conflicts.is_empty());
    assert_eq!(read_versions(&a, &obj, "seal_more").unwrap(), seals_before);
    // A later edit of the same section, concurrent with that decision, is raised again.
    type_into(&mut b, v, Section::Health, 0, "【补】");
    a.merge(&mut b).unwrap();
    assert_eq!(review(&a, hh).unwrap().conflicts.len(), 1);
}

#[test]
fn the_server_refuses_a_later_section_typed_after_the_author_saw_it_final() {
    let v = VisitId::new();
    let (mut doc, _) = household(v, false);
    type_into(&mut doc, v, Section::Study, 0, "辍学在家");
    finalise(&mut doc, v);
    let before = doc.get_heads();
    // Written raw, as a forged push would (the typed API refuses a final visit).
    let mut tx = doc.transaction();
    let text = super::cells::get_text_obj(&tx, &visit_obj(&tx, v), "study")
        .unwrap()
        .unwrap();
    tx.splice_text(&text, 0, 0, "已复学，").unwrap();
    tx.commit();
    let change = doc.get_changes(&before).remove(0).clone();
    assert!(matches!(
        verify::check_finality(&doc, &change),
        Err(verify::Violation::Finalised)
    ));
}
