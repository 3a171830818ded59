//! Redaction inside a household's history (issue 15, ADR 0026): a new generation of the
//! document keeps everything but what is redacted — other fields, notes, conflicts and their
//! provenance — holds no byte of the redacted values, is the same on every replica, and a
//! phone's unsynced edits rebase onto it without overwriting a colleague's value they never
//! saw.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::{ActorId, Automerge, Change};
use common::*;
use doorstep_core::doc::generation::{self, Redaction};
use doorstep_core::*;

const ID_NUMBER: &str = "110101201403080016";
const NOTE: &str = "孩子手臂有淤青，说是摔的。";

struct Station {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    station: StationId,
    a: Store,
    b: Store,
    hh: HouseholdId,
    child: PersonId,
    grandma: PersonId,
    visit: VisitId,
}

/// Two phones holding one household: a child with an ID number, a grandmother who is her
/// guardian and receives a benefit, a visit with notes, a need about the child, and a name
/// conflict on the child (two phones wrote it offline).
fn station() -> Station {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let a = open(dir.path(), "a.db", station);
    let b = open(dir.path(), "b.db", station);
    let hh = household(&a, "HH-000001");
    let child = a
        .add_person(
            hh,
            &NewPerson {
                id_number: Some(ID_NUMBER.into()),
                ..NewPerson::named("王小明", "孙子")
            },
        )
        .unwrap();
    let grandma = a
        .add_person(hh, &NewPerson::named("李秀英", "祖母"))
        .unwrap();
    a.add_benefit(
        hh,
        &NewBenefit {
            person: grandma,
            kind: "benefit.disability_living".into(),
            monthly_fen: 12000,
            from: None,
            until: None,
            source: "民政局".into(),
        },
    )
    .unwrap();
    a.add_guardianship(
        hh,
        &NewGuardianship {
            carer: grandma,
            child,
            kind: GuardianshipKind::Legal,
            relationship: "祖母".into(),
            capacity: None,
        },
    )
    .unwrap();
    let visit = visit(&a, hh, "2026-11-20");
    a.edit_visit(hh, visit, &VisitEdit::AddPresent(grandma))
        .unwrap();
    a.splice_section(hh, visit, Section::Concerns, 0, 0, NOTE)
        .unwrap();
    a.splice_section(hh, visit, Section::FamilySituation, 0, 0, "祖孙二人。")
        .unwrap();
    a.add_need(
        hh,
        &NewNeed {
            category: "need.psychological".into(),
            description: "需要心理疏导".into(),
            person: Some(child),
            visit: Some(visit),
        },
    )
    .unwrap();
    sync_pair(&a, &b);
    a.edit_person(hh, child, &PersonEdit::Name("王晓明".into()))
        .unwrap();
    b.edit_person(hh, child, &PersonEdit::Name("汪小明".into()))
        .unwrap();
    sync_pair(&a, &b);
    assert_eq!(a.conflicts(None).unwrap().len(), 1, "the name conflict");
    Station {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        station,
        a,
        b,
        hh,
        child,
        grandma,
        visit,
    }
}

fn document(store: &Store, hh: HouseholdId) -> Automerge {
    let mut doc = Automerge::new();
    let changes: Vec<Change> = store
        .export_changes(hh, &[])
        .unwrap()
        .iter()
        .map(|b| Change::from_bytes(b.clone()).unwrap())
        .collect();
    doc.apply_changes(changes).unwrap();
    doc
}

/// A fresh store holding exactly `doc` (as a phone that receives it would read it).
fn reader(s: &Station, name: &str, doc: &Automerge) -> Store {
    let store = open(&s.dir, name, s.station);
    let bytes: Vec<Vec<u8>> = doc
        .get_changes(&[])
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    store.apply_changes(s.hh, &bytes).unwrap();
    store
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_redacted_field_is_gone_from_every_byte_and_the_rest_stays() {
    let s = station();
    let old = document(&s.a, s.hh);
    assert!(contains(&old.save_nocompress(), ID_NUMBER), "control");
    let item = Redaction::parse(&format!("person/{}/id_number", s.child)).unwrap();
    assert_eq!(item.to_string(), format!("person/{}/id_number", s.child));
    let g = generation::build(&old, s.hh, std::slice::from_ref(&item), 1).unwrap();
    assert!(!contains(&g.doc.save_nocompress(), ID_NUMBER));
    doorstep_core::doc::verify::validate(&g.doc).unwrap();
    assert_eq!(generation::generation_of(&g.doc, s.hh), 1);
    assert_eq!(generation::layer1_of(&g.doc, s.hh), Some(g.layer1));

    let c = reader(&s, "c.db", &g.doc);
    let before = s.a.household(s.hh).unwrap();
    let after = c.household(s.hh).unwrap();
    let child = |h: &Household| h.persons.iter().find(|p| p.id == s.child).unwrap().clone();
    assert_eq!(child(&after).id_number, None);
    // Everything else reads as before, provenance included...
    let mut expected = before.clone();
    expected
        .persons
        .iter_mut()
        .find(|p| p.id == s.child)
        .unwrap()
        .id_number = None;
    assert_eq!(after, expected);
    // ...and the conflict, with both values and who wrote them.
    assert_eq!(c.conflicts(None).unwrap(), s.a.conflicts(None).unwrap());
    assert_eq!(c.search("淤青", 10).unwrap().len(), 1);

    // The same generation on every replica: B computes it from its own copy.
    let from_b = generation::build(&document(&s.b, s.hh), s.hh, &[item], 1).unwrap();
    let (mut x, mut y) = (g.doc.get_heads(), from_b.doc.get_heads());
    x.sort();
    y.sort();
    assert_eq!(x, y);
}

#[test]
fn a_removed_person_takes_what_refers_to_them() {
    let s = station();
    let old = document(&s.a, s.hh);
    assert!(contains(&old.save_nocompress(), "李秀英"), "control");
    let item = Redaction::parse(&format!("person/{}", s.grandma)).unwrap();
    let g = generation::build(&old, s.hh, &[item], 1).unwrap();
    assert!(!contains(&g.doc.save_nocompress(), "李秀英"));
    assert!(!contains(&g.doc.save_nocompress(), &s.grandma.to_string()));
    doorstep_core::doc::verify::validate(&g.doc).unwrap();
    let c = reader(&s, "c.db", &g.doc);
    let h = c.household(s.hh).unwrap();
    assert!(h.persons.iter().all(|p| p.id != s.grandma));
    assert!(h.benefits.is_empty(), "her benefit goes with her");
    assert!(h.guardianships.is_empty(), "so does her guardianship");
    assert!(
        h.visits[0].present.is_empty(),
        "and her presence on the visit"
    );
    assert_eq!(h.visits[0].section(Section::Concerns), NOTE);
    assert_eq!(h.needs.len(), 1, "a need about the child stays");
    assert_eq!(h.persons.len(), 1);
}

#[test]
fn a_redacted_note_of_a_final_visit_is_emptied_without_a_false_conflict() {
    let s = station();
    s.a.finalise_visit(s.hh, s.visit).unwrap();
    let old = document(&s.a, s.hh);
    let item = Redaction::parse(&format!("visit/{}/concerns", s.visit)).unwrap();
    let g = generation::build(&old, s.hh, &[item], 1).unwrap();
    assert!(!contains(&g.doc.save_nocompress(), "淤青"));
    let c = reader(&s, "c.db", &g.doc);
    let v = c.household(s.hh).unwrap().visits.remove(0);
    assert_eq!(v.section(Section::Concerns), "");
    assert_eq!(v.section(Section::FamilySituation), "祖孙二人。");
    assert_eq!(v.status, VisitStatus::Final);
    // Only the name conflict: the emptied text raises no "edited after finalise".
    assert_eq!(c.conflicts(None).unwrap().len(), 1);
}

#[test]
fn bad_redactions_are_refused() {
    let s = station();
    let old = document(&s.a, s.hh);
    for bad in [
        "",
        "person",
        "nobody/x",
        "person/not an id",
        "household//nope",
        "person/x/y/z",
    ] {
        assert!(
            matches!(Redaction::parse(bad), Err(Error::InvalidInput(_))),
            "{bad:?}"
        );
    }
    let absent = Redaction::parse(&format!("person/{}", PersonId::new())).unwrap();
    assert!(matches!(
        generation::build(&old, s.hh, &[absent], 1),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn unsynced_edits_rebase_onto_the_generation_and_keep_a_colleagues_value() {
    let s = station();
    // The server holds B's copy (H). A, offline, edits on top of it: types into the notes,
    // corrects the address, and writes the child's name — B wrote it too, concurrently.
    let base_store = &s.b;
    let conflict = s.b.conflicts(None).unwrap().remove(0);
    s.b.resolve_conflict(s.hh, &conflict.field, Some("王小明"))
        .unwrap();
    push(&s.b, &s.a);
    s.b.edit_person(s.hh, s.child, &PersonEdit::Name("汪晓明".into()))
        .unwrap();
    let h = document(base_store, s.hh);
    s.a.splice_section(s.hh, s.visit, Section::Concerns, 0, 0, "【复访】")
        .unwrap();
    s.a.edit_household(s.hh, &HouseholdEdit::Address("石桥村四组3号".into()))
        .unwrap();
    s.a.edit_person(s.hh, s.child, &PersonEdit::Name("王晓明".into()))
        .unwrap();
    s.a.edit_person(s.hh, s.grandma, &PersonEdit::Relation("外祖母".into()))
        .unwrap();
    // A now also holds H (it pulled B's edit after making its own).
    push(&s.b, &s.a);
    let a_doc = document(&s.a, s.hh);
    let expected = reader(&s, "merged.db", &a_doc);

    // The grandmother is removed on the server (a generation of H).
    let item = Redaction::parse(&format!("person/{}", s.grandma)).unwrap();
    let mut g = generation::build(&h, s.hh, &[item], 1).unwrap();
    // A's own actor: the rebase writes again what this device wrote.
    let actor = ActorId::from(s.a.actor_id());
    let rebased =
        generation::rebase(&a_doc, &h.get_heads(), &mut g.doc, s.hh, &actor, false).unwrap();
    assert!(rebased.kept >= 3, "{rebased:?}");
    assert!(
        rebased.dropped >= 1,
        "the edit of the removed person: {rebased:?}"
    );
    assert!(!contains(&g.doc.save_nocompress(), "李秀英"));
    let c = reader(&s, "c.db", &g.doc);
    let got = c.household(s.hh).unwrap();
    let want = expected.household(s.hh).unwrap();
    assert_eq!(got.address, want.address);
    assert_eq!(
        got.visits[0].section(Section::Concerns),
        format!("【复访】{NOTE}")
    );
    // The name conflict A's edit made with B's stays a conflict with both values.
    let names = |st: &Store| -> Vec<Option<String>> {
        let mut v: Vec<Option<String>> = st
            .conflicts(None)
            .unwrap()
            .into_iter()
            .filter(|c| c.field.field == "name")
            .flat_map(|c| c.values.into_iter().map(|v| v.value))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&c), names(&expected));
    assert!(names(&c).len() >= 2, "{:?}", names(&c));
}

/// What a phone checks of a generation it did not compute (ADR 0034): the honest one
/// passes — concurrent values and all — while one that hides history in its bytes, or
/// that credits a phone with a value it never wrote, is refused.
#[test]
fn a_generation_taken_unwitnessed_is_checked() {
    use automerge::transaction::{CommitOptions, Transactable};
    use automerge::{ReadDoc, ROOT};
    use doorstep_core::doc::generation_check::{check_canonical, check_own_words};
    let s = station();
    let old = document(&s.a, s.hh);
    let item = Redaction::parse(&format!("person/{}/id_number", s.child)).unwrap();
    let g = generation::build(&old, s.hh, std::slice::from_ref(&item), 1).unwrap();
    let a_actor = ActorId::from(s.a.actor_id());
    let b_actor = ActorId::from(s.b.actor_id());
    let (a_dev, b_dev) = (s.a.device().to_string(), s.b.device().to_string());
    check_canonical(&g.doc, s.hh).unwrap();
    check_own_words(&old, &a_actor, &g.doc, s.hh, &a_dev).unwrap();
    check_own_words(&document(&s.b, s.hh), &b_actor, &g.doc, s.hh, &b_dev).unwrap();
    // A document never redacted has nothing to check.
    check_canonical(&old, s.hh).unwrap();

    // Hidden history: the generation's own actor writes the ID number and deletes it
    // again. The state is the same; the bytes hold the number.
    let mut hidden = g.doc.clone();
    hidden.set_actor(generation::generation_actor(s.hh, 1, 0, 0));
    let mut tx = hidden.transaction();
    tx.put(&ROOT, "smuggled", ID_NUMBER).unwrap();
    tx.commit_with(CommitOptions::default().with_time(0));
    let mut tx = hidden.transaction();
    tx.delete(&ROOT, "smuggled").unwrap();
    tx.commit_with(CommitOptions::default().with_time(0));
    assert!(contains(&hidden.save_nocompress(), ID_NUMBER), "control");
    assert!(check_canonical(&hidden, s.hh).is_err());
    // A second generation's change beside the first.
    let mut two = g.doc.clone();
    two.set_actor(generation::generation_actor(s.hh, 2, 0, 0));
    let mut tx = two.transaction();
    tx.put(&ROOT, "extra", 1).unwrap();
    tx.commit_with(CommitOptions::default().with_time(0));
    assert!(check_canonical(&two, s.hh).is_err());

    // A forged word: the address reads as A's, saying something else, in the generation
    // (written canonically, so only the provenance check can tell). A's values are lean
    // (ADR 0035): another actor, entered in the registry as A's device, writes the address.
    let mut forged = old.clone();
    let forger = ActorId::random();
    forged.set_actor(forger.clone());
    let hh = match forged.get(&ROOT, "household").unwrap() {
        Some((automerge::Value::Object(_), id)) => id,
        other => panic!("no household map: {other:?}"),
    };
    let registry = match forged.get(&ROOT, "actors").unwrap() {
        Some((automerge::Value::Object(_), id)) => id,
        other => panic!("no registry of actors: {other:?}"),
    };
    let a_worker = {
        let entry = match forged.get(&registry, a_actor.to_hex_string()).unwrap() {
            Some((automerge::Value::Object(_), id)) => id,
            other => panic!("no entry for A: {other:?}"),
        };
        forged
            .get(&entry, "by")
            .unwrap()
            .unwrap()
            .0
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mut tx = forged.transaction();
    let entry = tx
        .put_object(&registry, forger.to_hex_string(), automerge::ObjType::Map)
        .unwrap();
    tx.put(&entry, "by", a_worker.as_str()).unwrap();
    tx.put(&entry, "dev", a_dev.as_str()).unwrap();
    tx.put(&hh, "address", "假地址").unwrap();
    tx.commit();
    let bad = generation::build(&forged, s.hh, std::slice::from_ref(&item), 1).unwrap();
    check_canonical(&bad.doc, s.hh).unwrap();
    assert!(check_own_words(&old, &a_actor, &bad.doc, s.hh, &a_dev).is_err());
    // B wrote no address: nothing credited to B changed.
    check_own_words(&document(&s.b, s.hh), &b_actor, &bad.doc, s.hh, &b_dev).unwrap();
}
