//! Companions on a visit: people who are not registered workers (a 村儿童主任, a police
//! officer), recorded as (name, role). They round-trip through the document, merge as an
//! add-wins set between phones, read as none on a visit recorded before they existed, and
//! pass the server's validator and provenance checks.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ROOT};
use common::*;
use doorstep_core::doc::verify;
use doorstep_core::*;

fn director() -> Companion {
    Companion::new("李芳", "村儿童主任")
}

fn officer() -> Companion {
    Companion::new("张伟", "派出所民警")
}

fn companions(s: &Store, hh: HouseholdId, v: VisitId) -> Vec<Companion> {
    let h = s.household(hh).unwrap();
    h.visits.into_iter().find(|x| x.id == v).unwrap().companions
}

struct Pair {
    _dir: tempfile::TempDir,
    a: Store,
    b: Store,
    hh: HouseholdId,
    v: VisitId,
}

fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let a = open(dir.path(), "a.db", station);
    let b = open(dir.path(), "b.db", station);
    let hh = household(&a, "HH-000001");
    let v = visit(&a, hh, "2026-11-20");
    sync_pair(&a, &b);
    Pair {
        _dir: dir,
        a,
        b,
        hh,
        v,
    }
}

fn converged(a: &Store, b: &Store, hh: HouseholdId) {
    let (mut ha, mut hb) = (a.heads(hh).unwrap(), b.heads(hh).unwrap());
    ha.sort();
    hb.sort();
    assert_eq!(ha, hb, "heads differ");
    assert_eq!(a.household(hh).unwrap(), b.household(hh).unwrap());
    assert_eq!(a.index_dump().unwrap(), b.index_dump().unwrap());
    assert!(
        a.conflicts(None).unwrap().is_empty(),
        "a set raises no conflict"
    );
}

fn document(s: &Store, hh: HouseholdId) -> Automerge {
    Automerge::load(&s.export_document(hh).unwrap()).unwrap()
}

#[test]
fn companions_round_trip_through_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let (worker, station) = (WorkerId::new(), StationId::new());
    let s = Store::open(options(&dir.path().join("w.db"), worker, station)).unwrap();
    let hh = household(&s, "HH-000001");
    let v = s
        .start_visit(
            hh,
            &NewVisit {
                kind: VisitKind::Home,
                date: Date::parse("2026-11-20").unwrap(),
                started_at: Timestamp(1_764_000_000_000),
                gps: None,
                other_workers: vec![],
                present: vec![],
                // Trimmed on the way in; the same companion twice is one.
                companions: vec![
                    Companion::new(" 李芳 ", " 村儿童主任"),
                    officer(),
                    director(),
                ],
            },
        )
        .unwrap();
    assert_eq!(
        companions(&s, hh, v),
        vec![officer(), director()],
        "sorted by name"
    );
    let teacher = Companion::new("陈老师", "");
    s.edit_visit(hh, v, &VisitEdit::AddCompanion(teacher.clone()))
        .unwrap();
    s.edit_visit(hh, v, &VisitEdit::RemoveCompanion(officer()))
        .unwrap();
    // Removing one that is not there is no error and changes nothing.
    s.edit_visit(
        hh,
        v,
        &VisitEdit::RemoveCompanion(Companion::new("李芳", "")),
    )
    .unwrap();
    assert_eq!(companions(&s, hh, v), vec![director(), teacher.clone()]);

    // Each element carries who added it.
    let field = FieldRef::new(EntityRef::Visit(v), "companions");
    let history = s.field_history(hh, &field).unwrap();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|h| h.provenance.worker == s.worker()));
    assert_eq!(
        history[0].value.as_deref(),
        Some(r#"["李芳","村儿童主任"]"#),
        "the stored form"
    );

    // Bad companions are refused with a message that names the rule, not the person.
    for bad in [
        Companion::new("  ", "民警"),
        Companion::new("李\u{7}芳", ""),
        Companion::new("李芳", &"长".repeat(501)),
    ] {
        let e = s
            .edit_visit(hh, v, &VisitEdit::AddCompanion(bad))
            .unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
        assert!(!format!("{e} {e:?}").contains('芳'), "{e:?}");
    }

    // The document reopens and validates as the server would.
    drop(s);
    let s = Store::open(options(&dir.path().join("w.db"), worker, station)).unwrap();
    assert_eq!(companions(&s, hh, v), vec![director(), teacher]);
    verify::validate(&document(&s, hh)).unwrap();

    // A final visit is evidence: its companions are frozen with it.
    s.finalise_visit(hh, v).unwrap();
    assert!(matches!(
        s.edit_visit(hh, v, &VisitEdit::AddCompanion(officer())),
        Err(Error::VisitFinalised)
    ));
}

#[test]
fn two_phones_adding_companions_keep_both() {
    let Pair { a, b, hh, v, .. } = pair();
    a.edit_visit(hh, v, &VisitEdit::AddCompanion(director()))
        .unwrap();
    b.edit_visit(hh, v, &VisitEdit::AddCompanion(officer()))
        .unwrap();
    // Both phones add the same person too: one companion, not two.
    let teacher = Companion::new("陈老师", "石桥小学班主任");
    a.edit_visit(hh, v, &VisitEdit::AddCompanion(teacher.clone()))
        .unwrap();
    b.edit_visit(hh, v, &VisitEdit::AddCompanion(teacher.clone()))
        .unwrap();
    sync_pair(&a, &b);
    converged(&a, &b, hh);
    assert_eq!(companions(&a, hh, v), vec![officer(), director(), teacher]);
    verify::validate(&document(&a, hh)).unwrap();
}

#[test]
fn a_removal_wins_over_a_re_add_of_a_companion_the_phone_held() {
    let Pair { a, b, hh, v, .. } = pair();
    a.edit_visit(hh, v, &VisitEdit::AddCompanion(director()))
        .unwrap();
    sync_pair(&a, &b);
    // A removes her; B, which holds her already, adds her again: that writes nothing.
    a.edit_visit(hh, v, &VisitEdit::RemoveCompanion(director()))
        .unwrap();
    b.edit_visit(hh, v, &VisitEdit::AddCompanion(director()))
        .unwrap();
    sync_pair(&a, &b);
    converged(&a, &b, hh);
    assert!(companions(&a, hh, v).is_empty());
}

#[test]
fn an_add_wins_over_a_concurrent_removal_it_never_saw() {
    let Pair { a, b, hh, v, .. } = pair();
    // A adds and removes her while B, offline, adds her: B's addition is a new entry the
    // removal never saw, so she stays.
    a.edit_visit(hh, v, &VisitEdit::AddCompanion(director()))
        .unwrap();
    a.edit_visit(hh, v, &VisitEdit::RemoveCompanion(director()))
        .unwrap();
    b.edit_visit(hh, v, &VisitEdit::AddCompanion(director()))
        .unwrap();
    sync_pair(&a, &b);
    converged(&a, &b, hh);
    assert_eq!(companions(&a, hh, v), vec![director()]);
    let history = a
        .field_history(hh, &FieldRef::new(EntityRef::Visit(v), "companions"))
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0].provenance.worker,
        b.worker(),
        "B's addition stayed"
    );
}

#[test]
fn a_correction_on_each_phone_keeps_both_corrections() {
    let Pair { a, b, hh, v, .. } = pair();
    a.edit_visit(
        hh,
        v,
        &VisitEdit::AddCompanion(Companion::new("李方", "村儿童主任")),
    )
    .unwrap();
    sync_pair(&a, &b);
    // Each phone corrects the name its own way (a removal and an addition).
    for (s, name) in [(&a, "李芳"), (&b, "李舫")] {
        s.edit_visit(
            hh,
            v,
            &VisitEdit::RemoveCompanion(Companion::new("李方", "村儿童主任")),
        )
        .unwrap();
        s.edit_visit(
            hh,
            v,
            &VisitEdit::AddCompanion(Companion::new(name, "村儿童主任")),
        )
        .unwrap();
    }
    sync_pair(&a, &b);
    converged(&a, &b, hh);
    let names: Vec<String> = companions(&a, hh, v).into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["李舫", "李芳"],
        "both corrections, for a human to settle"
    );
}

/// Delete the visit's `companions` set, as if the visit had been recorded by an app from
/// before companions; the change, on an actor of its own.
fn without_companions_set(s: &Store, hh: HouseholdId, v: VisitId) -> Vec<u8> {
    let mut doc = document(s, hh).with_actor(automerge::ActorId::random());
    doc.transact(|tx| {
        let visits = tx.get(ROOT, "visits")?.unwrap().1;
        let visit = tx.get(&visits, v.to_string())?.unwrap().1;
        tx.delete(&visit, "companions")
    })
    .unwrap();
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

#[test]
fn a_visit_from_before_companions_reads_with_none_and_takes_them_from_two_phones() {
    let Pair { a, b, hh, v, .. } = pair();
    let old = without_companions_set(&a, hh, v);
    a.apply_changes(hh, std::slice::from_ref(&old)).unwrap();
    b.apply_changes(hh, &[old]).unwrap();
    let doc = document(&a, hh);
    let visit = doc.get(ROOT, "visits").unwrap().unwrap().1;
    let visit = doc.get(&visit, v.to_string()).unwrap().unwrap().1;
    assert!(doc.get(&visit, "companions").unwrap().is_none());
    assert!(companions(&a, hh, v).is_empty());
    verify::validate(&doc).unwrap();

    // Both phones add the first companion at once: each makes the set, and the merged
    // visit shows both sets' companions.
    a.edit_visit(hh, v, &VisitEdit::AddCompanion(director()))
        .unwrap();
    b.edit_visit(hh, v, &VisitEdit::AddCompanion(officer()))
        .unwrap();
    sync_pair(&a, &b);
    converged(&a, &b, hh);
    assert_eq!(companions(&a, hh, v), vec![officer(), director()]);
    verify::validate(&document(&a, hh)).unwrap();
    // One of them sits in the set that lost: removing still finds it.
    a.edit_visit(hh, v, &VisitEdit::RemoveCompanion(director()))
        .unwrap();
    a.edit_visit(hh, v, &VisitEdit::RemoveCompanion(officer()))
        .unwrap();
    sync_pair(&a, &b);
    converged(&a, &b, hh);
    assert!(companions(&b, hh, v).is_empty());
}

#[test]
fn the_server_checks_accept_companions_and_still_check_their_author() {
    let Pair { a, hh, v, .. } = pair();
    let before = document(&a, hh);
    a.edit_visit(hh, v, &VisitEdit::AddCompanion(director()))
        .unwrap();
    let after = document(&a, hh);
    let fresh = after.get_changes(&before.get_heads());
    assert_eq!(fresh.len(), 1);
    let decoded = verify::decode(&fresh);
    let writes = verify::writes(&decoded);
    let scope = verify::touched(&before, &writes, &verify::paths(&before, &writes));
    assert!(
        matches!(&scope, verify::Scope::Records(r) if r.len() == 1),
        "{scope:?}"
    );
    verify::validate_scope(&after, &scope).unwrap();
    let author = verify::Author {
        worker: a.worker(),
        device: a.device(),
    };
    let now = 1_764_000_000_000 + 60_000;
    verify::check_provenance_of(&after, &decoded[0], &author, now).unwrap();
    verify::check_finality_of(&after, &decoded, &verify::final_visits(&before)).unwrap();

    // The same addition credited to someone else is a forgery.
    let mut forged = before.fork().with_actor(automerge::ActorId::random());
    forged
        .transact(|tx| {
            let visits = tx.get(ROOT, "visits")?.unwrap().1;
            let visit = tx.get(&visits, v.to_string())?.unwrap().1;
            let set = tx.get(&visit, "companions")?.unwrap().1;
            let entry = tx.put_object(&set, r#"["李芳","村儿童主任"]"#, ObjType::Map)?;
            tx.put(&entry, "by", WorkerId::new().to_string())?;
            tx.put(&entry, "dev", a.device().to_string())?;
            tx.put(&entry, "at", 1_764_000_000_000_i64)
        })
        .unwrap();
    let change = forged.get_last_local_change().unwrap().clone();
    assert_eq!(
        verify::check_provenance(&forged, &change, &author, now),
        Err(verify::Violation::ForgedProvenance)
    );

    // A companion in a form no reader takes is refused by the validator, narrowed or not.
    let mut malformed = before.fork().with_actor(automerge::ActorId::random());
    malformed
        .transact(|tx| {
            let visits = tx.get(ROOT, "visits")?.unwrap().1;
            let visit = tx.get(&visits, v.to_string())?.unwrap().1;
            let set = tx.get(&visit, "companions")?.unwrap().1;
            let entry = tx.put_object(&set, "李芳 村儿童主任", ObjType::Map)?;
            tx.put(&entry, "by", a.worker().to_string())?;
            tx.put(&entry, "dev", a.device().to_string())?;
            tx.put(&entry, "at", 1_764_000_000_000_i64)
        })
        .unwrap();
    let fresh = malformed.get_changes(&before.get_heads());
    let decoded = verify::decode(&fresh);
    let writes = verify::writes(&decoded);
    let scope = verify::touched(&before, &writes, &verify::paths(&before, &writes));
    assert!(verify::validate_scope(&malformed, &scope).is_err());
    assert!(verify::validate(&malformed).is_err());
}
