//! What a social worker records about a person (issue 17): benefits, guardianships,
//! parents' status, 户籍, schooling and care levels. They round-trip through the document,
//! refuse bad values with an error that names the rule, merge between phones by their
//! declared policies, read in documents from before them, pass (or fail) the server's
//! validator, and drive the visits-due list.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ROOT};
use common::*;
use doorstep_core::doc::verify;
use doorstep_core::*;

fn date(s: &str) -> Date {
    Date::parse(s).unwrap()
}

fn document(s: &Store, hh: HouseholdId) -> Automerge {
    Automerge::load(&s.export_document(hh).unwrap()).unwrap()
}

/// A household with a grandmother and a child.
fn family(s: &Store, code: &str) -> (HouseholdId, PersonId, PersonId) {
    let hh = household(s, code);
    let grandmother = s
        .add_person(hh, &NewPerson::named("李秀英", "祖母"))
        .unwrap();
    let child = s
        .add_person(hh, &NewPerson::named("王小明", "孙子"))
        .unwrap();
    (hh, grandmother, child)
}

fn benefit(person: PersonId) -> NewBenefit {
    NewBenefit {
        person,
        kind: "benefit.unsupported_child".into(),
        monthly_fen: 115_000,
        from: Some(date("2026-01-01")),
        until: None,
        source: "县民政局".into(),
    }
}

fn guardianship(carer: PersonId, child: PersonId) -> NewGuardianship {
    NewGuardianship {
        carer,
        child,
        kind: GuardianshipKind::Entrusted,
        relationship: "祖母".into(),
        capacity: Some(CareCapacity::Limited),
    }
}

fn person(s: &Store, hh: HouseholdId, id: PersonId) -> Person {
    s.household(hh)
        .unwrap()
        .persons
        .into_iter()
        .find(|p| p.id == id)
        .unwrap()
}

struct Pair {
    _dir: tempfile::TempDir,
    a: Store,
    b: Store,
    hh: HouseholdId,
    carer: PersonId,
    child: PersonId,
}

fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let a = open(dir.path(), "a.db", station);
    let b = open(dir.path(), "b.db", station);
    let (hh, carer, child) = family(&a, "HH-000001");
    sync_pair(&a, &b);
    Pair {
        _dir: dir,
        a,
        b,
        hh,
        carer,
        child,
    }
}

fn converged(a: &Store, b: &Store, hh: HouseholdId) {
    let (mut ha, mut hb) = (a.heads(hh).unwrap(), b.heads(hh).unwrap());
    ha.sort();
    hb.sort();
    assert_eq!(ha, hb, "heads differ");
    assert_eq!(a.household(hh).unwrap(), b.household(hh).unwrap());
    assert_eq!(a.index_dump().unwrap(), b.index_dump().unwrap());
    assert_eq!(a.conflicts(None).unwrap(), b.conflicts(None).unwrap());
    verify::validate(&document(a, hh)).unwrap();
}

#[test]
fn person_details_round_trip_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (worker, station) = (WorkerId::new(), StationId::new());
    let s = Store::open(options(&dir.path().join("w.db"), worker, station)).unwrap();
    let (hh, _, child) = family(&s, "HH-000001");

    // A person from before these fields: nothing recorded, all readable.
    let p = person(&s, hh, child);
    assert_eq!(p.parents, ParentsStatus::default());
    assert_eq!(p.hukou, Hukou::default());
    assert_eq!(p.schooling, Schooling::default());
    assert_eq!(p.care_level, None);

    for edit in [
        PersonEdit::FatherStatus(Some(" child.unsupported.parent_imprisoned ".into())),
        PersonEdit::MotherStatus(Some("parent.normal".into())),
        PersonEdit::HukouType(Some(HukouType::Agricultural)),
        PersonEdit::RegisteredResidence("石桥镇石桥村".into()),
        PersonEdit::ActualResidence(" 石桥镇石桥村三组12号 ".into()),
        PersonEdit::SchoolStage(Some(SchoolStage::Primary)),
        PersonEdit::SchoolStatus(Some(SchoolStatus::InclusiveClass)),
        PersonEdit::Boarding(Some(true)),
        PersonEdit::CareLevel(Some(CareLevel::High)),
    ] {
        s.edit_person(hh, child, &edit).unwrap();
    }
    s.edit_household(hh, &HouseholdEdit::CareLevel(Some(CareLevel::Medium)))
        .unwrap();
    let p = person(&s, hh, child);
    assert_eq!(
        p.parents,
        ParentsStatus {
            father: Some("child.unsupported.parent_imprisoned".into()),
            mother: Some("parent.normal".into()),
        }
    );
    assert_eq!(
        CodeList::ParentStatus.describe(p.parents.father.as_deref().unwrap()),
        Coded::Known {
            code: "child.unsupported.parent_imprisoned",
            label_zh: "服刑在押",
            label_en: "Serving a sentence or in custody",
        }
    );
    assert_eq!(
        p.hukou,
        Hukou {
            kind: Some(HukouType::Agricultural),
            registered: "石桥镇石桥村".into(),
            actual: "石桥镇石桥村三组12号".into(),
        }
    );
    assert_eq!(
        p.schooling,
        Schooling {
            stage: Some(SchoolStage::Primary),
            status: Some(SchoolStatus::InclusiveClass),
            boarding: Some(true),
        }
    );
    assert_eq!(p.care_level, Some(CareLevel::High));
    assert_eq!(s.household(hh).unwrap().care_level, Some(CareLevel::Medium));

    // Clearing works; the cleared value keeps who cleared it.
    s.edit_person(hh, child, &PersonEdit::MotherStatus(None))
        .unwrap();
    s.edit_person(hh, child, &PersonEdit::Boarding(None))
        .unwrap();
    let p = person(&s, hh, child);
    assert_eq!((p.parents.mother, p.schooling.boarding), (None, None));
    let history = s
        .field_history(
            hh,
            &FieldRef::new(EntityRef::Person(child), "mother_status"),
        )
        .unwrap();
    assert_eq!(
        (history[0].value.clone(), history[0].provenance.worker),
        (None, worker)
    );

    // Bad values: refused, nothing written, the message names the rule and no person.
    let before = s.heads(hh).unwrap();
    for bad in [
        PersonEdit::FatherStatus(Some("服刑".into())),
        PersonEdit::FatherStatus(Some("benefit.dibao".into())),
        PersonEdit::FatherStatus(Some("child.unsupported.parent_on_the_moon".into())),
        PersonEdit::HukouType(Some(HukouType::Unrecognised)),
        PersonEdit::SchoolStatus(Some(SchoolStatus::Unrecognised)),
        PersonEdit::CareLevel(Some(CareLevel::Unrecognised)),
        PersonEdit::RegisteredResidence("石桥\n镇".into()),
        PersonEdit::ActualResidence("长".repeat(501)),
    ] {
        let e = s.edit_person(hh, child, &bad).unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{bad:?}: {e:?}");
        assert!(!format!("{e}").contains("王小明"));
    }
    assert!(matches!(
        s.edit_household(hh, &HouseholdEdit::CareLevel(Some(CareLevel::Unrecognised))),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(s.heads(hh).unwrap(), before, "nothing was written");

    drop(s);
    let s = Store::open(options(&dir.path().join("w.db"), worker, station)).unwrap();
    assert_eq!(person(&s, hh, child).care_level, Some(CareLevel::High));
    verify::validate(&document(&s, hh)).unwrap();
}

#[test]
fn benefits_and_guardianships_round_trip_and_check_what_they_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), "w.db", StationId::new());
    let (hh, grandmother, child) = family(&s, "HH-000001");

    let b = s.add_benefit(hh, &benefit(child)).unwrap();
    s.edit_benefit(hh, b, &BenefitEdit::MonthlyFen(120_000))
        .unwrap();
    s.edit_benefit(hh, b, &BenefitEdit::Until(Some(date("2026-12-31"))))
        .unwrap();
    s.edit_benefit(hh, b, &BenefitEdit::Source("石桥镇民政办".into()))
        .unwrap();
    let h = s.household(hh).unwrap();
    assert_eq!(h.benefits.len(), 1);
    let got = &h.benefits[0];
    assert_eq!(
        (
            got.id,
            got.person,
            got.kind.as_str(),
            got.monthly,
            got.from,
            got.until,
            got.source.as_str()
        ),
        (
            b,
            child,
            "benefit.unsupported_child",
            Fen(120_000),
            Some(date("2026-01-01")),
            Some(date("2026-12-31")),
            "石桥镇民政办"
        )
    );
    assert_eq!(got.created.worker, s.worker());

    let bad_benefits = [
        NewBenefit {
            kind: "低保".into(),
            ..benefit(child)
        },
        NewBenefit {
            kind: "benefit.county_flood_relief".into(),
            ..benefit(child)
        },
        NewBenefit {
            monthly_fen: MAX_MONTHLY_FEN + 1,
            ..benefit(child)
        },
        NewBenefit {
            from: Some(date("2026-06-01")),
            until: Some(date("2026-05-31")),
            ..benefit(child)
        },
        NewBenefit {
            source: "县\u{0}民政局".into(),
            ..benefit(child)
        },
    ];
    for bad in bad_benefits {
        let e = s.add_benefit(hh, &bad).unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{bad:?}: {e:?}");
    }
    assert!(matches!(
        s.add_benefit(hh, &benefit(PersonId::new())),
        Err(Error::NotFound("person"))
    ));
    // An end before the start, or a start after the end, is refused on edit too.
    assert!(matches!(
        s.edit_benefit(hh, b, &BenefitEdit::From(Some(date("2027-01-01")))),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        s.edit_benefit(hh, b, &BenefitEdit::Until(Some(date("2025-12-31")))),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        s.edit_benefit(hh, BenefitId::new(), &BenefitEdit::MonthlyFen(1)),
        Err(Error::NotFound("benefit"))
    ));

    let g = s
        .add_guardianship(hh, &guardianship(grandmother, child))
        .unwrap();
    s.edit_guardianship(
        hh,
        g,
        &GuardianshipEdit::Capacity(Some(CareCapacity::Capable)),
    )
    .unwrap();
    s.edit_guardianship(hh, g, &GuardianshipEdit::Kind(GuardianshipKind::Legal))
        .unwrap();
    let got = s.household(hh).unwrap().guardianships;
    assert_eq!(got.len(), 1);
    assert_eq!(
        (
            got[0].carer,
            got[0].child,
            got[0].kind,
            got[0].capacity,
            got[0].status,
            got[0].relationship.as_str()
        ),
        (
            grandmother,
            child,
            GuardianshipKind::Legal,
            Some(CareCapacity::Capable),
            GuardianshipStatus::Active,
            "祖母"
        )
    );
    s.end_guardianship(hh, g).unwrap();
    assert_eq!(
        s.household(hh).unwrap().guardianships[0].status,
        GuardianshipStatus::Ended
    );
    assert!(matches!(
        s.end_guardianship(hh, g),
        Err(Error::InvalidTransition {
            entity: "guardianship",
            from: "ended",
            to: "ended"
        })
    ));
    assert!(matches!(
        s.add_guardianship(hh, &guardianship(child, child)),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        s.add_guardianship(hh, &guardianship(PersonId::new(), child)),
        Err(Error::NotFound("person"))
    ));
    assert!(matches!(
        s.add_guardianship(
            hh,
            &NewGuardianship {
                kind: GuardianshipKind::Unrecognised,
                ..guardianship(grandmother, child)
            }
        ),
        Err(Error::InvalidInput(_))
    ));
    verify::validate(&document(&s, hh)).unwrap();
}

#[test]
fn concurrent_benefit_edits_are_last_writer_wins_and_both_new_benefits_stay() {
    let Pair {
        a,
        b,
        hh,
        carer,
        child,
        ..
    } = pair();
    let id = a.add_benefit(hh, &benefit(child)).unwrap();
    sync_pair(&a, &b);
    // Offline, each phone corrects the amount; and each records another benefit.
    a.edit_benefit(hh, id, &BenefitEdit::MonthlyFen(118_000))
        .unwrap();
    b.edit_benefit(hh, id, &BenefitEdit::MonthlyFen(125_000))
        .unwrap();
    a.add_benefit(
        hh,
        &NewBenefit {
            kind: "benefit.disability_living".into(),
            ..benefit(carer)
        },
    )
    .unwrap();
    b.add_benefit(
        hh,
        &NewBenefit {
            kind: "benefit.disability_care".into(),
            ..benefit(carer)
        },
    )
    .unwrap();
    sync_pair(&a, &b);
    converged(&a, &b, hh);
    let h = a.household(hh).unwrap();
    assert_eq!(h.benefits.len(), 3, "both new benefits are kept");
    // The later write (by its device clock) shows; the other stays visible, no conflict.
    assert!(a.conflicts(Some(hh)).unwrap().is_empty());
    let parallel = a.parallel_updates(Some(hh)).unwrap();
    assert_eq!(parallel.len(), 1);
    let update = &parallel[0];
    assert_eq!(
        update.field,
        FieldRef::new(EntityRef::Benefit(id), "monthly_fen")
    );
    assert!(update.shown.provenance.at > update.overshadowed[0].provenance.at);
    let mut values = [
        update.shown.value.clone().unwrap(),
        update.overshadowed[0].value.clone().unwrap(),
    ];
    values.sort();
    assert_eq!(values, ["118000", "125000"]);
    let shown = h.benefits.iter().find(|x| x.id == id).unwrap().monthly;
    assert_eq!(Some(shown.to_string()), update.shown.value);
    // Writing the field again settles it.
    a.edit_benefit(hh, id, &BenefitEdit::MonthlyFen(120_000))
        .unwrap();
    sync_pair(&a, &b);
    assert!(b.parallel_updates(Some(hh)).unwrap().is_empty());
}

#[test]
fn concurrent_guardianship_kinds_are_a_conflict_for_a_human() {
    let Pair {
        a,
        b,
        hh,
        carer,
        child,
        ..
    } = pair();
    let g = a.add_guardianship(hh, &guardianship(carer, child)).unwrap();
    sync_pair(&a, &b);
    a.edit_guardianship(hh, g, &GuardianshipEdit::Kind(GuardianshipKind::Legal))
        .unwrap();
    b.edit_guardianship(hh, g, &GuardianshipEdit::Relationship("外祖母".into()))
        .unwrap();
    b.edit_guardianship(hh, g, &GuardianshipEdit::Kind(GuardianshipKind::Entrusted))
        .unwrap(); // the same value it held: still a write, concurrent with A's
                   // Meanwhile B ends it and A assesses the capacity: different fields, both apply.
    b.end_guardianship(hh, g).unwrap();
    a.edit_guardianship(
        hh,
        g,
        &GuardianshipEdit::Capacity(Some(CareCapacity::Incapable)),
    )
    .unwrap();
    sync_pair(&a, &b);
    converged(&a, &b, hh);
    let got = &a.household(hh).unwrap().guardianships[0];
    assert_eq!(got.relationship, "外祖母");
    assert_eq!(got.capacity, Some(CareCapacity::Incapable));
    assert_eq!(got.status, GuardianshipStatus::Ended);

    let field = FieldRef::new(EntityRef::Guardianship(g), "kind");
    let conflicts = a.conflicts(Some(hh)).unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].field, field);
    let mut values: Vec<_> = conflicts[0]
        .values
        .iter()
        .map(|v| (v.value.clone().unwrap(), v.provenance.worker))
        .collect();
    values.sort();
    assert_eq!(
        values,
        [
            ("entrusted".into(), b.worker()),
            ("legal".into(), a.worker())
        ]
    );
    // No ordinary edit closes it, and it cannot be cleared.
    assert!(matches!(
        a.edit_guardianship(hh, g, &GuardianshipEdit::Kind(GuardianshipKind::Legal)),
        Err(Error::OpenConflict)
    ));
    assert!(matches!(
        a.resolve_conflict(hh, &field, None),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        a.resolve_conflict(hh, &field, Some("guardian")),
        Err(Error::InvalidInput(_))
    ));
    b.resolve_conflict(hh, &field, Some("legal")).unwrap();
    sync_pair(&a, &b);
    converged(&a, &b, hh);
    assert!(a.conflicts(Some(hh)).unwrap().is_empty());
    assert_eq!(
        a.household(hh).unwrap().guardianships[0].kind,
        GuardianshipKind::Legal
    );
}

#[test]
fn concurrent_parent_statuses_are_a_conflict_and_other_details_last_writer_wins() {
    let Pair {
        a, b, hh, child, ..
    } = pair();
    a.edit_person(
        hh,
        child,
        &PersonEdit::FatherStatus(Some("child.unsupported.parent_missing".into())),
    )
    .unwrap();
    b.edit_person(
        hh,
        child,
        &PersonEdit::FatherStatus(Some("child.unsupported.parent_imprisoned".into())),
    )
    .unwrap();
    a.edit_person(
        hh,
        child,
        &PersonEdit::SchoolStatus(Some(SchoolStatus::DroppedOut)),
    )
    .unwrap();
    b.edit_person(
        hh,
        child,
        &PersonEdit::SchoolStatus(Some(SchoolStatus::Enrolled)),
    )
    .unwrap();
    a.edit_person(hh, child, &PersonEdit::CareLevel(Some(CareLevel::High)))
        .unwrap();
    b.edit_person(hh, child, &PersonEdit::CareLevel(Some(CareLevel::Low)))
        .unwrap();
    sync_pair(&a, &b);
    converged(&a, &b, hh);

    let father = FieldRef::new(EntityRef::Person(child), "father_status");
    let conflicts = a.conflicts(Some(hh)).unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].field, father);
    let parallel = a.parallel_updates(Some(hh)).unwrap();
    let mut fields: Vec<&str> = parallel.iter().map(|u| u.field.field.as_str()).collect();
    fields.sort();
    assert_eq!(fields, ["care_level", "school_status"]);
    // The later write (by its device clock) shows meanwhile.
    let p = person(&a, hh, child);
    let shown = |field: &str| {
        let u = parallel.iter().find(|u| u.field.field == field).unwrap();
        assert!(u.shown.provenance.at > u.overshadowed[0].provenance.at);
        u.shown.value.clone().unwrap()
    };
    assert_eq!(p.schooling.status.unwrap().as_str(), shown("school_status"));
    assert_eq!(p.care_level.unwrap().as_str(), shown("care_level"));

    assert!(matches!(
        a.edit_person(
            hh,
            child,
            &PersonEdit::FatherStatus(Some("parent.normal".into()))
        ),
        Err(Error::OpenConflict)
    ));
    // A correction must be a code of the list; a recorded value may be kept.
    assert!(matches!(
        a.resolve_conflict(hh, &father, Some("失联")),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        a.resolve_conflict(hh, &father, Some("parent.on_the_moon")),
        Err(Error::InvalidInput(_))
    ));
    a.resolve_conflict(hh, &father, Some("child.unsupported.parent_deceased"))
        .unwrap();
    sync_pair(&a, &b);
    converged(&a, &b, hh);
    assert_eq!(
        person(&b, hh, child).parents.father.as_deref(),
        Some("child.unsupported.parent_deceased")
    );
}

/// Delete the `benefits` and `guardianships` collections, as in a household made by an app
/// from before them; the change, on an actor of its own.
fn without_new_collections(s: &Store, hh: HouseholdId) -> Vec<u8> {
    let mut doc = document(s, hh).with_actor(automerge::ActorId::random());
    doc.transact(|tx| {
        tx.delete(ROOT, "benefits")?;
        tx.delete(ROOT, "guardianships")
    })
    .unwrap();
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

#[test]
fn a_household_from_before_benefits_reads_and_takes_them_from_two_phones_at_once() {
    let Pair {
        a,
        b,
        hh,
        carer,
        child,
        ..
    } = pair();
    let old = without_new_collections(&a, hh);
    a.apply_changes(hh, std::slice::from_ref(&old)).unwrap();
    b.apply_changes(hh, &[old]).unwrap();
    let doc = document(&a, hh);
    assert!(doc.get(ROOT, "benefits").unwrap().is_none());
    let h = a.household(hh).unwrap();
    assert!(h.benefits.is_empty() && h.guardianships.is_empty());
    verify::validate(&doc).unwrap();

    // Both phones record the first benefit and guardianship at once: each makes the
    // collections, and the merged household shows the records of both.
    let ba = a.add_benefit(hh, &benefit(child)).unwrap();
    let bb = b
        .add_benefit(
            hh,
            &NewBenefit {
                kind: "benefit.dibao".into(),
                ..benefit(carer)
            },
        )
        .unwrap();
    let ga = a.add_guardianship(hh, &guardianship(carer, child)).unwrap();
    let gb = b.add_guardianship(hh, &guardianship(carer, child)).unwrap();
    sync_pair(&a, &b);
    converged(&a, &b, hh);
    let h = a.household(hh).unwrap();
    let mut ids: Vec<_> = h.benefits.iter().map(|x| x.id).collect();
    let mut want = vec![ba, bb];
    ids.sort();
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(
        h.guardianships.len(),
        2,
        "a duplicate link is for a human to end"
    );
    let doc = document(&a, hh);
    assert_eq!(doc.get_all(ROOT, "benefits").unwrap().len(), 2, "two maps");

    // Records in the map that lost are still found, edited and ended.
    for id in [ba, bb] {
        a.edit_benefit(hh, id, &BenefitEdit::Source("乡镇".into()))
            .unwrap();
    }
    for id in [ga, gb] {
        b.end_guardianship(hh, id).unwrap();
    }
    sync_pair(&a, &b);
    converged(&a, &b, hh);
    let h = b.household(hh).unwrap();
    assert!(h.benefits.iter().all(|x| x.source == "乡镇"));
    assert!(h
        .guardianships
        .iter()
        .all(|g| g.status == GuardianshipStatus::Ended));
    let live = a.index_dump().unwrap();
    a.rebuild_index().unwrap();
    assert_eq!(a.index_dump().unwrap(), live);
}

/// A push that writes `value` into `field` of the record `key` of `collection`, in a fresh
/// cell credited to `s`'s worker and device (as a phone would write it): what the server's
/// validator gets.
fn pushed(
    s: &Store,
    hh: HouseholdId,
    collection: &str,
    key: &str,
    field: &str,
    value: &str,
) -> (Automerge, Automerge) {
    let before = document(s, hh);
    let mut after = before.fork().with_actor(automerge::ActorId::random());
    after
        .transact(|tx| {
            let col = tx.get(ROOT, collection)?.unwrap().1;
            let rec = if key.is_empty() {
                col
            } else {
                tx.get(&col, key)?.unwrap().1
            };
            let cell = tx.put_object(&rec, field, ObjType::Map)?;
            tx.put(&cell, "v", value)?;
            tx.put(&cell, "by", s.worker().to_string())?;
            tx.put(&cell, "dev", s.device().to_string())?;
            tx.put(&cell, "at", 1_764_000_000_000_i64)
        })
        .unwrap();
    (before, after)
}

/// The validator's verdict on a push, narrowed as the server runs it and whole; they agree.
fn verdict(before: &Automerge, after: &Automerge) -> Result<()> {
    let fresh = after.get_changes(&before.get_heads());
    let decoded = verify::decode(&fresh);
    let writes = verify::writes(&decoded);
    let scope = verify::touched(before, &writes, &verify::paths(before, &writes));
    let narrowed = verify::validate_scope(after, &scope);
    let whole = verify::validate(after);
    assert_eq!(narrowed.is_ok(), whole.is_ok(), "{scope:?}");
    whole
}

#[test]
fn the_validator_refuses_malformed_values_and_accepts_newer_codes() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), "w.db", StationId::new());
    let (hh, carer, child) = family(&s, "HH-000001");
    let b = s.add_benefit(hh, &benefit(child)).unwrap();
    let g = s.add_guardianship(hh, &guardianship(carer, child)).unwrap();
    let (p, b, g) = (child.to_string(), b.to_string(), g.to_string());

    // Refused: the household would not read, or holds a value this version does not know.
    for (collection, key, field, value) in [
        ("benefits", b.as_str(), "monthly_fen", "1150.00"),
        ("benefits", &b, "monthly_fen", "-5"),
        ("benefits", &b, "monthly_fen", "0115000"),
        ("benefits", &b, "kind", "事实无人抚养儿童基本生活补贴"),
        ("benefits", &b, "from", "2026-02-30"),
        ("benefits", &b, "person", "not-a-person"),
        ("persons", &p, "father_status", "服刑在押"),
        ("persons", &p, "mother_status", "Parent.Normal"),
        ("persons", &p, "boarding", "yes"),
        ("persons", &p, "hukou_type", "foreign"),
        ("persons", &p, "school_status", "graduated"),
        ("persons", &p, "school_stage", "doctorate"),
        ("persons", &p, "care_level", "critical"),
        ("household", "", "care_level", "critical"),
        ("guardianships", &g, "kind", "foster"),
        ("guardianships", &g, "capacity", "some"),
        ("guardianships", &g, "status", "suspended"),
        ("guardianships", &g, "carer", "nobody"),
    ] {
        let (before, after) = pushed(&s, hh, collection, key, field, value);
        assert!(
            verdict(&before, &after).is_err(),
            "{collection}.{field} = {value:?} was accepted"
        );
    }
    // Accepted: the forms the core writes, and codes of a newer list (as categories).
    for (collection, key, field, value) in [
        ("benefits", b.as_str(), "monthly_fen", "0"),
        ("benefits", &b, "kind", "benefit.county_flood_relief"),
        ("persons", &p, "father_status", "parent.unknown_whereabouts"),
        ("persons", &p, "boarding", "false"),
        ("guardianships", &g, "capacity", "incapable"),
    ] {
        let (before, after) = pushed(&s, hh, collection, key, field, value);
        verdict(&before, &after)
            .unwrap_or_else(|e| panic!("{collection}.{field} = {value:?}: {e}"));
    }
}

#[test]
fn an_older_app_shows_a_newer_code_as_unknown_and_keeps_editing() {
    let Pair {
        a, b, hh, child, ..
    } = pair();
    // A newer release's codes, as a newer phone writes them (the validator accepts them).
    let bid = a.add_benefit(hh, &benefit(child)).unwrap();
    sync_pair(&a, &b);
    for (collection, key, field, value) in [
        (
            "benefits",
            bid.to_string(),
            "kind",
            "benefit.county_flood_relief",
        ),
        (
            "persons",
            child.to_string(),
            "father_status",
            "parent.unknown_whereabouts",
        ),
    ] {
        let (before, after) = pushed(&a, hh, collection, &key, field, value);
        let fresh: Vec<Vec<u8>> = after
            .get_changes(&before.get_heads())
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        b.apply_changes(hh, &fresh).unwrap();
    }
    let h = b.household(hh).unwrap();
    assert_eq!(
        CodeList::BenefitType.describe(&h.benefits[0].kind),
        Coded::Unknown("benefit.county_flood_relief".into())
    );
    let p = h.persons.iter().find(|p| p.id == child).unwrap();
    assert_eq!(
        CodeList::ParentStatus.describe(p.parents.father.as_deref().unwrap()),
        Coded::Unknown("parent.unknown_whereabouts".into())
    );
    // Value enums a newer version wrote read as unrecognised: shown, not quarantined; a
    // care level this version does not know sets no visit interval.
    for (collection, key, field, value) in [
        ("persons", child.to_string(), "hukou_type", "overseas"),
        ("persons", child.to_string(), "care_level", "critical"),
    ] {
        let (before, after) = pushed(&a, hh, collection, &key, field, value);
        let fresh: Vec<Vec<u8>> = after
            .get_changes(&before.get_heads())
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        b.apply_changes(hh, &fresh).unwrap();
    }
    let p = person(&b, hh, child);
    assert_eq!(p.hukou.kind, Some(HukouType::Unrecognised));
    assert_eq!(p.care_level, Some(CareLevel::Unrecognised));
    assert!(b.visits_due(date("2030-01-01")).unwrap().is_empty());
    // The rest stays editable; the code stays until someone writes over it.
    b.edit_benefit(hh, bid, &BenefitEdit::MonthlyFen(1))
        .unwrap();
    b.edit_person(
        hh,
        child,
        &PersonEdit::MotherStatus(Some("parent.normal".into())),
    )
    .unwrap();
    let h = b.household(hh).unwrap();
    assert_eq!(h.benefits[0].kind, "benefit.county_flood_relief");
    assert!(b.quarantined().unwrap().is_empty());
}

#[test]
fn visits_due_follow_the_strictest_care_level_and_the_latest_visit() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), "w.db", StationId::new());
    let as_of = date("2026-12-06");
    let code = |d: &[VisitDue]| d.iter().map(|x| x.code.clone()).collect::<Vec<_>>();

    // No care level anywhere: nothing is due, whatever the visits.
    let (plain, _, _) = family(&s, "HH-000001");
    visit(&s, plain, "2025-01-01");
    assert!(s.visits_due(as_of).unwrap().is_empty());

    // The household is low (180 days) but its child high (30 days): 30 days rule.
    let (strict, _, child) = family(&s, "HH-000002");
    s.edit_household(strict, &HouseholdEdit::CareLevel(Some(CareLevel::Low)))
        .unwrap();
    s.edit_person(strict, child, &PersonEdit::CareLevel(Some(CareLevel::High)))
        .unwrap();
    visit(&s, strict, "2026-10-01");
    visit(&s, strict, "2026-11-01"); // the latest counts: due 2026-12-01
                                     // Medium, visited 90 days ago exactly: due today.
    let (today, _, _) = family(&s, "HH-000003");
    s.edit_household(today, &HouseholdEdit::CareLevel(Some(CareLevel::Medium)))
        .unwrap();
    visit(&s, today, "2026-09-07");
    // Medium, visited 89 days ago: not due.
    let (fresh, _, _) = family(&s, "HH-000004");
    s.edit_household(fresh, &HouseholdEdit::CareLevel(Some(CareLevel::Medium)))
        .unwrap();
    visit(&s, fresh, "2026-09-08");
    // Never visited: first.
    let (never, _, _) = family(&s, "HH-000005");
    s.edit_household(never, &HouseholdEdit::CareLevel(Some(CareLevel::Low)))
        .unwrap();
    // Overdue but closed: not listed.
    let (closed, _, _) = family(&s, "HH-000006");
    s.edit_household(closed, &HouseholdEdit::CareLevel(Some(CareLevel::High)))
        .unwrap();
    s.edit_household(closed, &HouseholdEdit::Status(HouseholdStatus::Closed))
        .unwrap();

    let due = s.visits_due(as_of).unwrap();
    assert_eq!(code(&due), ["HH-000005", "HH-000002", "HH-000003"]);
    assert_eq!(
        due[0],
        VisitDue {
            household: never,
            code: "HH-000005".into(),
            village: "石桥村".into(),
            care_level: CareLevel::Low,
            visit_every_days: 180,
            last_visit: None,
            due_on: None,
            days_overdue: None,
        }
    );
    assert_eq!(
        (
            due[1].care_level,
            due[1].last_visit,
            due[1].due_on,
            due[1].days_overdue
        ),
        (
            CareLevel::High,
            Some(date("2026-11-01")),
            Some(date("2026-12-01")),
            Some(5)
        )
    );
    assert_eq!(due[2].days_overdue, Some(0));

    // A visit takes a household off the list; clearing the child's level relaxes it.
    visit(&s, never, "2026-12-06");
    s.edit_person(strict, child, &PersonEdit::CareLevel(None))
        .unwrap();
    assert_eq!(code(&s.visits_due(as_of).unwrap()), ["HH-000003"]);
    // Later, more become due, the most overdue first.
    let due = s.visits_due(date("2027-06-30")).unwrap();
    assert_eq!(
        code(&due),
        ["HH-000003", "HH-000004", "HH-000002", "HH-000005"]
    );
    let live = s.index_dump().unwrap();
    s.rebuild_index().unwrap();
    assert_eq!(s.index_dump().unwrap(), live);
}

#[test]
fn a_store_from_before_care_levels_indexes_the_levels_it_already_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let (st, worker) = (StationId::new(), WorkerId::new());
    let store = Store::open(options(&path, worker, st)).unwrap();
    let hh = household(&store, "HH-000001");
    store
        .edit_household(hh, &HouseholdEdit::CareLevel(Some(CareLevel::High)))
        .unwrap();
    let want = store.index_dump().unwrap();
    assert_eq!(store.visits_due(date("2026-12-06")).unwrap().len(), 1);
    drop(store);

    // What an app from before care levels left (a newer phone's levels synced into it).
    let conn = rusqlite::Connection::open(&path).unwrap();
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    let before: i64 = {
        conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))
            .unwrap();
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    // Schema 10: before care levels (0011) and what came after them (0012: station work;
    // 0013: surveys; 0014: attachments; 0015: texts waiting for the search index; 0016: the tail's bytes).
    assert!(before >= 13);
    conn.execute_batch(
        "DROP TABLE ix_care_levels; DROP TABLE ix_activities; DROP TABLE ix_resources;
         DROP TABLE ix_attendance; DROP TABLE ix_referrals; DROP TABLE ix_surveys;
         DROP TABLE ix_responses; DROP TABLE ix_survey_answers;
         DROP TABLE attachment_blobs; DROP TABLE attachment_uploads;
         DROP TABLE ix_text_pending;
         ALTER TABLE documents DROP COLUMN pending_bytes; PRAGMA user_version = 10;",
    )
    .unwrap();
    drop(conn);

    let store = Store::open(options(&path, worker, st)).unwrap();
    assert_eq!(store.index_dump().unwrap(), want);
    assert_eq!(store.visits_due(date("2026-12-06")).unwrap().len(), 1);
}

#[test]
fn recording_a_guardianship_marks_the_carer_as_a_guardian_unless_the_flag_is_in_conflict() {
    let Pair {
        a,
        b,
        hh,
        carer,
        child,
        ..
    } = pair();
    assert!(!person(&a, hh, carer).guardian);
    a.add_guardianship(hh, &guardianship(carer, child)).unwrap();
    assert!(person(&a, hh, carer).guardian, "the flag follows the link");
    assert!(!person(&a, hh, child).guardian);
    sync_pair(&a, &b);
    converged(&a, &b, hh);
    // A flag two phones set differently is a conflict for a human: a new link leaves it.
    let (hh2, carer2, child2) = family(&a, "HH-000002");
    sync_pair(&a, &b);
    a.edit_person(hh2, carer2, &PersonEdit::Guardian(true))
        .unwrap();
    b.edit_person(hh2, carer2, &PersonEdit::Guardian(false))
        .unwrap();
    sync_pair(&a, &b);
    let before = a.conflicts(Some(hh2)).unwrap();
    assert_eq!(before.len(), 1, "{before:?}");
    a.add_guardianship(hh2, &guardianship(carer2, child2))
        .unwrap();
    assert_eq!(a.conflicts(Some(hh2)).unwrap(), before);
}
