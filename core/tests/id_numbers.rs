//! ID numbers through the typed API: checked (GB 11643-1999) and checked against the
//! person's birth date and sex when the app writes them, never when a document is read —
//! a number stored before the check existed stays readable, editable around and valid for
//! the server's validator.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ROOT};
use common::*;
use doorstep_core::doc::verify;
use doorstep_core::*;

/// 2014-03-08, male (17th digit 1): the check character computed by hand
/// (sum of digit x weight = 116, 116 mod 11 = 6, which maps to check character 6).
const BOY: &str = "110101201403080016";
/// The standard's own example: 1949-12-31, female, check character X.
const WOMAN: &str = "11010519491231002X";
/// BOY with the last digit mistyped.
const MISTYPED: &str = "110101201403080011";

fn one_store() -> (tempfile::TempDir, Store, HouseholdId) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), "w.db", StationId::new());
    let hh = household(&s, "HH-000001");
    (dir, s, hh)
}

fn boy(id_number: Option<&str>, sex: Sex, birth: Option<&str>) -> NewPerson {
    NewPerson {
        sex,
        birth_date: birth.map(|b| BirthDate::parse(b).unwrap()),
        id_number: id_number.map(str::to_owned),
        ..NewPerson::named("王小明", "孙子")
    }
}

/// The error of a refused call: `InvalidInput`, and neither its message nor its `Debug`
/// holds the number (or its first digits).
fn refused<T: std::fmt::Debug>(r: Result<T, Error>, number: &str) -> &'static str {
    let e = r.unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains(number), "{text}");
    assert!(!text.contains(&number[..6]), "{text}");
    match e {
        Error::InvalidInput(why) => why,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn a_new_person_with_a_bad_number_is_refused_without_echoing_it() {
    let (_dir, s, hh) = one_store();
    let why = refused(
        s.add_person(hh, &boy(Some(MISTYPED), Sex::Male, None)),
        MISTYPED,
    );
    assert!(why.contains("check character"), "{why}");
    for (bad, rule) in [
        ("11010120140308001", "18 characters"),
        ("1101012014O308001X", "digits"),
        ("110101201502300016", "check character"),
    ] {
        let why = refused(s.add_person(hh, &boy(Some(bad), Sex::Male, None)), bad);
        assert!(why.contains(rule), "{bad}: {why}");
    }
    assert!(
        s.household(hh).unwrap().persons.is_empty(),
        "nothing written"
    );
}

#[test]
fn a_number_is_saved_in_its_canonical_form_and_blank_means_none() {
    let (_dir, s, hh) = one_store();
    let p = s
        .add_person(hh, &boy(Some(" 110105 19491231 002x "), Sex::Female, None))
        .unwrap();
    assert_eq!(
        s.household(hh).unwrap().persons[0].id_number.as_deref(),
        Some(WOMAN)
    );
    s.edit_person(hh, p, &PersonEdit::IdNumber(Some("   ".into())))
        .unwrap();
    assert_eq!(s.household(hh).unwrap().persons[0].id_number, None);
    let q = s.add_person(hh, &boy(Some(""), Sex::Male, None)).unwrap();
    assert!(s
        .household(hh)
        .unwrap()
        .persons
        .iter()
        .any(|x| x.id == q && x.id_number.is_none()));
}

#[test]
fn a_number_that_contradicts_the_birth_date_or_sex_is_refused() {
    let (_dir, s, hh) = one_store();
    let why = refused(
        s.add_person(hh, &boy(Some(BOY), Sex::Male, Some("2014-03-09"))),
        BOY,
    );
    assert!(why.contains("birth date"), "{why}");
    let why = refused(s.add_person(hh, &boy(Some(BOY), Sex::Female, None)), BOY);
    assert!(why.contains("sex"), "{why}");
    // Agreeing values, an unknown sex and an estimated birth date are all accepted.
    s.add_person(hh, &boy(Some(BOY), Sex::Male, Some("2014-03-08")))
        .unwrap();
    s.add_person(hh, &boy(Some(BOY), Sex::Unknown, None))
        .unwrap();
    s.add_person(hh, &boy(Some(BOY), Sex::Unknown, Some("2014-01-01~")))
        .unwrap();

    // Editing the number is checked against what the person holds.
    let p = s
        .add_person(hh, &boy(None, Sex::Female, Some("1949-12-31")))
        .unwrap();
    let why = refused(
        s.edit_person(hh, p, &PersonEdit::IdNumber(Some(BOY.into()))),
        BOY,
    );
    assert!(why.contains("birth date"), "{why}");
    s.edit_person(hh, p, &PersonEdit::IdNumber(Some(WOMAN.into())))
        .unwrap();

    // And the birth date and sex are checked against a valid number the person holds.
    let edit = |e: PersonEdit| s.edit_person(hh, p, &e);
    let why = refused(edit(PersonEdit::Sex(Sex::Male)), WOMAN);
    assert!(why.contains("sex"), "{why}");
    let why = refused(
        edit(PersonEdit::BirthDate(Some(
            BirthDate::parse("1950-12-31").unwrap(),
        ))),
        WOMAN,
    );
    assert!(why.contains("birth date"), "{why}");
    edit(PersonEdit::Sex(Sex::Unknown)).unwrap();
    edit(PersonEdit::BirthDate(None)).unwrap();
    // To correct both, clear the number first.
    edit(PersonEdit::IdNumber(None)).unwrap();
    edit(PersonEdit::Sex(Sex::Male)).unwrap();
    let person = s
        .household(hh)
        .unwrap()
        .persons
        .into_iter()
        .find(|x| x.id == p)
        .unwrap();
    assert_eq!((person.sex, person.id_number), (Sex::Male, None));
}

#[test]
fn the_future_is_judged_by_the_store_clock_in_china() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(&dir.path().join("w.db"), WorkerId::new(), StationId::new());
    // 2014-03-07 23:59:59.999 in Beijing: BOY was born the next day.
    let eve = 1_394_207_999_999_i64;
    let now = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(eve));
    let clock = now.clone();
    o.clock =
        std::sync::Arc::new(move || Timestamp(clock.load(std::sync::atomic::Ordering::SeqCst)));
    let s = Store::open(o).unwrap();
    let hh = household(&s, "HH-000001");
    let why = refused(s.add_person(hh, &boy(Some(BOY), Sex::Male, None)), BOY);
    assert!(why.contains("future"), "{why}");
    now.store(eve + 1, std::sync::atomic::Ordering::SeqCst);
    s.add_person(hh, &boy(Some(BOY), Sex::Male, None)).unwrap();
}

/// A person whose `id_number` cell was written raw — as an app before the check did —
/// with `number`, as `s`'s worker and device on an actor of its own (not the store's, whose
/// next change would reuse the sequence number); the document and the change.
fn stored_raw(s: &Store, hh: HouseholdId, person: PersonId, number: &str) -> (Automerge, Vec<u8>) {
    let mut doc = Automerge::load(&s.export_document(hh).unwrap())
        .unwrap()
        .with_actor(automerge::ActorId::random());
    doc.transact(|tx| {
        let persons = tx.get(ROOT, "persons")?.unwrap().1;
        let rec = tx.get(&persons, person.to_string())?.unwrap().1;
        let cell = tx.put_object(&rec, "id_number", ObjType::Map)?;
        tx.put(&cell, "v", number)?;
        tx.put(&cell, "by", s.worker().to_string())?;
        tx.put(&cell, "dev", s.device().to_string())?;
        tx.put(&cell, "at", 1_764_000_000_000_i64)
    })
    .unwrap();
    let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    (doc, change)
}

#[test]
fn an_invalid_number_stored_earlier_stays_readable_and_valid_for_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let old_app = open(dir.path(), "old.db", station);
    let hh = household(&old_app, "HH-000001");
    let p = old_app
        .add_person(hh, &boy(None, Sex::Female, Some("2014-03-08")))
        .unwrap();
    let before = Automerge::load(&old_app.export_document(hh).unwrap()).unwrap();
    // A wrong check character, a date that does not exist, and no number at all.
    for (i, bad) in [MISTYPED, "110101201402300011", "不详"]
        .into_iter()
        .enumerate()
    {
        let (doc, change) = stored_raw(&old_app, hh, p, bad);

        // The server's validator: the whole document, and narrowed to what the push touches.
        verify::validate(&doc).unwrap();
        verify::readable(&doc).unwrap();
        let fresh = doc.get_changes(&before.get_heads());
        let decoded = verify::decode(&fresh);
        let writes = verify::writes(&decoded);
        let scope = verify::touched(&before, &writes, &verify::paths(&before, &writes));
        verify::validate_scope(&doc, &scope).unwrap();

        // A phone: the change applies, the household reads and lists, the number shows.
        let phone = open(dir.path(), &format!("phone{i}.db"), station);
        phone
            .apply_changes(hh, &old_app.export_changes(hh, &[]).unwrap())
            .unwrap();
        phone.apply_changes(hh, &[change]).unwrap();
        assert!(phone.unreadable_households().unwrap().is_empty());
        let person = &phone.household(hh).unwrap().persons[0];
        assert_eq!(person.id_number.as_deref(), Some(bad));
        assert_eq!(phone.households_in_village("石桥村").unwrap().len(), 1);

        // Other fields stay editable; nothing is checked against a number that is not
        // valid, so neither the sex nor the birth date is held hostage by it.
        phone
            .edit_person(hh, p, &PersonEdit::Relation("孙女".into()))
            .unwrap();
        phone
            .edit_person(hh, p, &PersonEdit::Sex(Sex::Male))
            .unwrap();
        phone
            .edit_person(
                hh,
                p,
                &PersonEdit::BirthDate(Some(BirthDate::parse("2014-03-09").unwrap())),
            )
            .unwrap();
        // Writing it again through the API is a new write, and checked.
        let why = refused(
            phone.edit_person(hh, p, &PersonEdit::IdNumber(Some(bad.into()))),
            bad,
        );
        assert!(!why.is_empty());
        let h = phone.household(hh).unwrap();
        assert_eq!(h.persons[0].id_number.as_deref(), Some(bad));
        let after = Automerge::load(&phone.export_document(hh).unwrap()).unwrap();
        verify::validate(&after).unwrap();
    }
}

#[test]
fn a_conflict_is_resolved_by_keeping_a_recorded_value_or_a_checked_correction() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let a = open(dir.path(), "a.db", station);
    let b = open(dir.path(), "b.db", station);
    let hh = household(&a, "HH-000001");
    let p = a.add_person(hh, &boy(None, Sex::Unknown, None)).unwrap();
    let q = a.add_person(hh, &boy(None, Sex::Unknown, None)).unwrap();
    sync_pair(&a, &b);
    // Two numbers for each person stored raw, concurrently, by apps that did not check them.
    for person in [p, q] {
        let (_, ca) = stored_raw(&a, hh, person, MISTYPED);
        let (_, cb) = stored_raw(&b, hh, person, "110101201402300011");
        a.apply_changes(hh, &[ca, cb]).unwrap();
    }
    let field = |person| FieldRef::new(EntityRef::Person(person), "id_number");
    assert_eq!(a.conflicts(Some(hh)).unwrap().len(), 2);

    // A corrected number is checked like an edit — a bad one refused without echoing it —
    // and saved in its canonical form.
    let typo = "110101201403080012";
    let why = refused(a.resolve_conflict(hh, &field(p), Some(typo)), typo);
    assert!(why.contains("check character"), "{why}");
    a.resolve_conflict(hh, &field(p), Some("110101 20140308 0016"))
        .unwrap();
    // Keeping one of the recorded numbers writes nothing new: not checked, so a conflict
    // between old numbers can always be settled (the console only offers recorded values).
    a.resolve_conflict(hh, &field(q), Some(MISTYPED)).unwrap();
    assert!(a.conflicts(Some(hh)).unwrap().is_empty());
    let h = a.household(hh).unwrap();
    let number = |id| {
        h.persons
            .iter()
            .find(|x| x.id == id)
            .unwrap()
            .id_number
            .clone()
    };
    assert_eq!(number(p).as_deref(), Some(BOY));
    assert_eq!(number(q).as_deref(), Some(MISTYPED));

    // A corrected birth date is checked against the valid number: B, not knowing it yet,
    // enters another birth date while A enters the number's own.
    sync_pair(&a, &b);
    let date = |d: &str| PersonEdit::BirthDate(Some(BirthDate::parse(d).unwrap()));
    a.edit_person(hh, p, &date("2014-03-08")).unwrap();
    b.edit_person(hh, p, &date("2014-03-01~")).unwrap();
    sync_pair(&a, &b);
    let field = FieldRef::new(EntityRef::Person(p), "birth_date");
    assert_eq!(a.conflicts(Some(hh)).unwrap()[0].field, field);
    let why = refused(a.resolve_conflict(hh, &field, Some("2014-03-09")), BOY);
    assert!(why.contains("birth date"), "{why}");
    a.resolve_conflict(hh, &field, Some("2014-03-08")).unwrap();
    assert!(a.conflicts(Some(hh)).unwrap().is_empty());
}
