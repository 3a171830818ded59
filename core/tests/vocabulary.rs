//! Controlled vocabularies on the device (ADR 0018): the typed API writes known codes only,
//! reading never fails (a newer code reads as unknown, free text from before as text with
//! the code it means), lists and counts go by code, the station's extension arrives in its
//! document, and a store from before schema 8 indexes what it already held.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ROOT};
use common::*;
use doorstep_core::doc::station::{self, station_doc_id};
use doorstep_core::*;

fn refusal(r: Result<impl std::fmt::Debug>) -> &'static str {
    match r {
        Err(Error::InvalidInput(why)) => why,
        other => panic!("not refused: {other:?}"),
    }
}

fn child(name: &str, categories: &[&str]) -> NewPerson {
    NewPerson {
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        ..NewPerson::named(name, "孙子")
    }
}

/// Values added to a person's `categories` set by a raw change on a copy of the household
/// (as a newer app, or an app from before vocabularies, wrote them), applied to `to`.
fn add_raw_categories(from: &Store, to: &Store, hh: HouseholdId, p: PersonId, values: &[&str]) {
    let mut doc = Automerge::load(&from.export_document(hh).unwrap()).unwrap();
    let mut tx = doc.transaction();
    let persons = tx.get(ROOT, "persons").unwrap().unwrap().1;
    let person = tx.get(&persons, p.to_string()).unwrap().unwrap().1;
    let set = tx.get(&person, "categories").unwrap().unwrap().1;
    for v in values {
        let e = tx.put_object(&set, *v, ObjType::Map).unwrap();
        tx.put(&e, "by", from.worker().to_string()).unwrap();
        tx.put(&e, "dev", from.device().to_string()).unwrap();
        tx.put(&e, "at", 1_i64).unwrap();
    }
    tx.commit();
    let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    to.apply_changes(hh, &[change]).unwrap();
}

fn codes_of(list: Vec<HouseholdSummary>) -> Vec<String> {
    list.into_iter().map(|h| h.code).collect()
}

#[test]
fn the_typed_api_writes_known_codes_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "w.db", StationId::new());
    let hh = household(&store, "HH-000001");
    for bad in ["child.not_a_category", "local.flood"] {
        let why = refusal(store.add_person(hh, &child("王小明", &[bad])));
        assert!(why.contains("unknown category code"), "{why}");
    }
    assert!(
        refusal(store.add_person(hh, &child("王小明", &["留守儿童"]))).contains("lowercase ASCII")
    );
    assert!(
        refusal(store.add_person(hh, &child("王小明", &["household.dibao"])))
            .contains("household's")
    );
    let p = store
        .add_person(hh, &child("王小明", &[" child.left_behind "]))
        .unwrap();
    assert!(
        refusal(store.edit_person(hh, p, &PersonEdit::AddCategory("child.nope".into())))
            .contains("unknown")
    );
    store
        .edit_person(
            hh,
            p,
            &PersonEdit::AddCategory("child.orphan.scattered".into()),
        )
        .unwrap();
    assert!(
        refusal(store.edit_household(hh, &HouseholdEdit::AddTag("低保".into())))
            .contains("lowercase ASCII")
    );
    assert!(refusal(
        store.edit_household(hh, &HouseholdEdit::AddTag("elderly.living_alone".into()))
    )
    .contains("person's"));
    assert!(refusal(store.create_household(&NewHousehold {
        code: "HH-000002".into(),
        tags: vec!["household.unknown".into()],
        ..Default::default()
    }))
    .contains("unknown"));
    let h = store.household(hh).unwrap();
    assert_eq!(h.tags, ["household.dibao"], "only the tag the helper wrote");
    assert_eq!(
        h.persons[0].categories,
        ["child.left_behind", "child.orphan.scattered"],
        "stored as the canonical code"
    );
    // Nothing refused reached the document or the index.
    assert_eq!(store.household_ids().unwrap().len(), 1);
    assert_eq!(h.persons.len(), 1);
}

#[test]
fn an_older_reader_meeting_a_newer_code_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let st = StationId::new();
    let (a, b) = (open(dir.path(), "a.db", st), open(dir.path(), "b.db", st));
    let hh = household(&a, "HH-000001");
    let p = a
        .add_person(hh, &child("王小明", &["child.left_behind"]))
        .unwrap();
    sync_pair(&a, &b);
    // A newer release's built-in code, written by a newer app.
    add_raw_categories(&a, &b, hh, p, &["child.from_release_2"]);
    assert!(b.unreadable_households().unwrap().is_empty());
    assert!(b.quarantined().unwrap().is_empty());
    let person = b.household(hh).unwrap().persons.remove(0);
    assert_eq!(
        person.categories,
        ["child.from_release_2", "child.left_behind"]
    );
    let vocabulary = b.vocabulary().unwrap();
    let read: Vec<Category> = person
        .categories
        .iter()
        .map(|c| vocabulary.describe(c))
        .collect();
    assert_eq!(
        read[0],
        Category::Unknown(CategoryCode::parse("child.from_release_2").unwrap())
    );
    assert!(matches!(&read[1], Category::Known(e) if e.label_zh == "留守儿童"));
    // Listed and counted under its code, like any other.
    assert_eq!(
        codes_of(b.households_in_category("child.from_release_2").unwrap()),
        ["HH-000001"]
    );
    assert!(b
        .category_counts()
        .unwrap()
        .iter()
        .any(|c| c.code.as_str() == "child.from_release_2" && c.persons == 1));
    // The older app still edits the person, and may remove the code it does not know, but
    // cannot write it.
    b.edit_person(hh, p, &PersonEdit::AddCategory("child.difficult".into()))
        .unwrap();
    assert!(refusal(b.edit_person(
        hh,
        p,
        &PersonEdit::AddCategory("child.from_release_2".into())
    ))
    .contains("unknown"));
    b.edit_person(
        hh,
        p,
        &PersonEdit::RemoveCategory("child.from_release_2".into()),
    )
    .unwrap();
    sync_pair(&a, &b);
    assert_eq!(
        a.household(hh).unwrap().persons[0].categories,
        ["child.difficult", "child.left_behind"]
    );
    assert_eq!(a.index_dump().unwrap(), b.index_dump().unwrap());
}

#[test]
fn free_text_from_before_vocabularies_stays_and_is_counted_under_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let st = StationId::new();
    let (a, b) = (open(dir.path(), "a.db", st), open(dir.path(), "b.db", st));
    let hh = household(&a, "HH-000001");
    let p = a
        .add_person(hh, &NewPerson::named("王小明", "孙子"))
        .unwrap();
    sync_pair(&a, &b);
    add_raw_categories(&a, &b, hh, p, &["留守", "困境儿童", "重点关注"]);
    let person = b.household(hh).unwrap().persons.remove(0);
    assert_eq!(
        person.categories,
        ["困境儿童", "留守", "重点关注"],
        "text kept as written"
    );
    let v = b.vocabulary().unwrap();
    assert_eq!(
        v.describe("留守"),
        Category::Text {
            text: "留守".into(),
            code: Some(CategoryCode::parse("child.left_behind").unwrap())
        }
    );
    assert_eq!(v.describe("重点关注").code(), None);
    assert_eq!(
        codes_of(b.households_in_category("child.left_behind").unwrap()),
        ["HH-000001"]
    );
    assert_eq!(
        codes_of(b.households_in_category("child.difficult").unwrap()),
        ["HH-000001"]
    );
    let counted: Vec<String> = b
        .category_counts()
        .unwrap()
        .into_iter()
        .map(|c| c.code.as_str().to_owned())
        .collect();
    assert_eq!(
        counted,
        ["child.difficult", "child.left_behind", "household.dibao"]
    );
    // A person changes the text for the code: removal of the text, addition of the code.
    b.edit_person(hh, p, &PersonEdit::RemoveCategory("留守".into()))
        .unwrap();
    b.edit_person(hh, p, &PersonEdit::AddCategory("child.left_behind".into()))
        .unwrap();
    assert_eq!(
        b.household(hh).unwrap().persons[0].categories,
        ["child.left_behind", "困境儿童", "重点关注"]
    );
}

#[test]
fn lists_by_category_take_the_codes_below_and_reject_bad_codes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "w.db", StationId::new());
    let (h1, h2, h3) = (
        household(&store, "HH-000001"),
        household(&store, "HH-000002"),
        household(&store, "HH-000003"),
    );
    store
        .add_person(h1, &child("甲", &["child.orphan.centralised"]))
        .unwrap();
    store
        .add_person(h2, &child("乙", &["child.orphan"]))
        .unwrap();
    let p3 = store
        .add_person(h3, &child("丙", &["elderly.living_alone"]))
        .unwrap();
    assert_eq!(
        codes_of(store.households_in_category("child.orphan").unwrap()),
        ["HH-000001", "HH-000002"]
    );
    assert_eq!(
        codes_of(
            store
                .households_in_category("child.orphan.centralised")
                .unwrap()
        ),
        ["HH-000001"]
    );
    assert_eq!(
        codes_of(store.households_in_category("household.dibao").unwrap()),
        ["HH-000001", "HH-000002", "HH-000003"],
        "the household tag"
    );
    assert!(store
        .households_in_category("child.left_behind")
        .unwrap()
        .is_empty());
    assert!(refusal(store.households_in_category("孤儿")).contains("lowercase ASCII"));
    // An edit of one person moves the household in the lists.
    store
        .edit_person(
            h3,
            p3,
            &PersonEdit::RemoveCategory("elderly.living_alone".into()),
        )
        .unwrap();
    assert!(store
        .households_in_category("elderly.living_alone")
        .unwrap()
        .is_empty());
    let counts = store.category_counts().unwrap();
    let dibao = counts
        .iter()
        .find(|c| c.code.as_str() == "household.dibao")
        .unwrap();
    assert_eq!((dibao.persons, dibao.households), (0, 3));
    let want = store.index_dump().unwrap();
    store.rebuild_index().unwrap();
    assert_eq!(store.index_dump().unwrap(), want);
}

#[test]
fn the_station_extension_arrives_in_its_document() {
    let dir = tempfile::tempdir().unwrap();
    let st = StationId::new();
    let store = open(dir.path(), "w.db", st);
    let hh = household(&store, "HH-000001");
    assert_eq!(store.vocabulary().unwrap(), Vocabulary::builtin());
    assert!(refusal(store.add_person(hh, &child("王小明", &["local.flood"]))).contains("unknown"));

    let mut doc = station::new_station_doc(st).unwrap();
    let flood = StationEntry {
        code: CategoryCode::parse("local.flood").unwrap(),
        kind: CategoryKind::Child,
        parent: Some(CategoryCode::parse("child.difficult").unwrap()),
        label_zh: "因灾困境儿童".into(),
        label_en: "In difficulty after a flood".into(),
    };
    station::set_vocabulary_entry(&mut doc, &flood, Timestamp(1)).unwrap();
    let changes: Vec<Vec<u8>> = doc
        .get_changes(&[])
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    store.apply_changes(station_doc_id(st), &changes).unwrap();
    let v = store.vocabulary().unwrap();
    assert_eq!(v.station_version, 1);
    let e = v.lookup("local.flood").unwrap();
    assert_eq!(
        (e.label_zh.as_str(), e.origin),
        ("因灾困境儿童", EntryOrigin::Station)
    );
    store
        .add_person(hh, &child("王小明", &["local.flood"]))
        .unwrap();
    assert_eq!(
        codes_of(store.households_in_category("child.difficult").unwrap()),
        ["HH-000001"],
        "listed under its parent"
    );
    let want = store.vocabulary().unwrap();
    store.rebuild_index().unwrap();
    assert_eq!(store.vocabulary().unwrap(), want);
}

#[test]
fn a_store_from_before_schema_8_indexes_the_categories_it_already_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let (st, worker) = (StationId::new(), WorkerId::new());
    let store = Store::open(options(&path, worker, st)).unwrap();
    let hh = household(&store, "HH-000001");
    store
        .add_person(hh, &child("王小明", &["child.left_behind"]))
        .unwrap();
    let want = store.index_dump().unwrap();
    drop(store);

    // What an app at schema 7 left: no vocabulary or category tables (nor the tables of
    // later schemas: care levels, station work).
    let conn = rusqlite::Connection::open(&path).unwrap();
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    conn.execute_batch(&format!(
        "PRAGMA key = \"x'{hex}'\";
         DROP TABLE access_log;
         DROP TABLE ix_care_levels;
         DROP TABLE ix_categories;
         DROP TABLE ix_vocabulary;
         DROP TABLE ix_vocabulary_version;
         DROP TABLE departed;
         DROP TABLE ix_activities;
         DROP TABLE ix_resources;
         DROP TABLE ix_attendance;
         DROP TABLE ix_referrals;
         DROP TABLE ix_surveys;
         DROP TABLE ix_responses;
         DROP TABLE ix_survey_answers;
         DROP TABLE attachment_blobs;
         DROP TABLE attachment_uploads;
         DROP TABLE ix_text_pending;
         ALTER TABLE documents DROP COLUMN pending_bytes;
         PRAGMA user_version = 7;"
    ))
    .unwrap();
    drop(conn);

    let store = Store::open(options(&path, worker, st)).unwrap();
    assert_eq!(
        codes_of(store.households_in_category("child.left_behind").unwrap()),
        ["HH-000001"]
    );
    assert_eq!(store.index_dump().unwrap(), want);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))
        .unwrap();
    let asked: i64 = conn
        .query_row(
            "SELECT count(*) FROM meta WHERE key = 'rebuild_index'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(asked, 0, "the request is answered once");
}
