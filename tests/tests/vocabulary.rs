//! Controlled vocabularies (ADR 0018), against a real server: a station's own category
//! (`vocabulary add`) reaches its phones at their next sync and no other station's, a phone
//! can then write it and list households by it, a colleague's phone that has not synced the
//! entry yet reads the code as unknown and keeps working, and a relabelling follows.
#![allow(clippy::unwrap_used)]

use doorstep_core::*;
use doorstep_server::vocabulary;
use doorstep_tests::*;

fn entry(code: &str, parent: Option<&str>, zh: &str) -> StationEntry {
    StationEntry {
        code: CategoryCode::parse(code).unwrap(),
        kind: CategoryKind::Child,
        parent: parent.map(|p| CategoryCode::parse(p).unwrap()),
        label_zh: zh.into(),
        label_en: "In difficulty after a flood".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_category_reaches_its_phones_and_an_older_copy_keeps_working() {
    let server = TestServer::start().await;
    let (mine, theirs) = (
        server.station("石桥镇社工站"),
        server.station("河口镇社工站"),
    );
    let url = server.url();
    let a = server.device(mine, "A", &url).await;
    let b = server.device(mine, "B", &url).await;
    let other = server.device(theirs, "C", &url).await;
    for d in [&a, &b, &other] {
        d.sync().await;
    }
    assert_eq!(a.store.vocabulary().unwrap(), Vocabulary::builtin());
    let hh = a.new_household("HH-000001");
    let p = a
        .store
        .add_person(hh, &NewPerson::named("王小明", "孙子"))
        .unwrap();
    let refused = a
        .store
        .edit_person(hh, p, &PersonEdit::AddCategory("local.flood".into()));
    assert!(
        matches!(refused, Err(Error::InvalidInput(_))),
        "{refused:?}"
    );

    // The admin adds the station's category (`vocabulary add`).
    let s = server.store.as_ref();
    let flood = entry("local.flood", Some("child.difficult"), "因灾困境儿童");
    assert_eq!(vocabulary::set_entry(s, mine, &flood).unwrap(), Some(1));
    a.sync().await;
    other.sync().await;
    let v = a.store.vocabulary().unwrap();
    assert_eq!(v.station_version, 1);
    assert_eq!(v.lookup("local.flood").unwrap().label_zh, "因灾困境儿童");
    assert!(
        other
            .store
            .vocabulary()
            .unwrap()
            .lookup("local.flood")
            .is_none(),
        "never another station's"
    );

    // The phone writes it and lists by it (and by its parent).
    a.store
        .edit_person(hh, p, &PersonEdit::AddCategory("local.flood".into()))
        .unwrap();
    let listed = |d: &Device, code: &str| -> Vec<String> {
        d.store
            .households_in_category(code)
            .unwrap()
            .into_iter()
            .map(|h| h.code)
            .collect()
    };
    assert_eq!(listed(&a, "child.difficult"), ["HH-000001"]);
    a.sync().await;

    // A colleague's phone meets the code through the household before it has the entry (an
    // older copy of the vocabulary): the household reads, the code is unknown, counted and
    // listed under itself, and the person stays editable.
    // (Carried from phone to phone here: through the server the entry would come along.)
    b.store
        .apply_changes(hh, &a.store.export_changes(hh, &[]).unwrap())
        .unwrap();
    assert!(b.store.quarantined().unwrap().is_empty());
    let person = b.store.household(hh).unwrap().persons.remove(0);
    assert_eq!(person.categories, ["local.flood"]);
    assert_eq!(
        b.store
            .vocabulary()
            .unwrap()
            .describe(&person.categories[0]),
        Category::Unknown(CategoryCode::parse("local.flood").unwrap())
    );
    assert_eq!(listed(&b, "local.flood"), ["HH-000001"]);
    assert!(
        listed(&b, "child.difficult").is_empty(),
        "its parent is not known yet"
    );
    b.store
        .edit_person(hh, p, &PersonEdit::AddCategory("child.left_behind".into()))
        .unwrap();
    // Its next sync brings the entry: known, under its parent.
    b.sync().await;
    let v = b.store.vocabulary().unwrap();
    assert!(
        matches!(v.describe("local.flood"), Category::Known(e) if e.origin == EntryOrigin::Station)
    );
    assert_eq!(listed(&b, "child.difficult"), ["HH-000001"]);

    // A relabelling reaches the phones the same way.
    let relabelled = entry("local.flood", Some("child.difficult"), "因洪灾困境儿童");
    assert_eq!(
        vocabulary::set_entry(s, mine, &relabelled).unwrap(),
        Some(2)
    );
    a.sync().await;
    b.sync().await;
    for d in [&a, &b] {
        let v = d.store.vocabulary().unwrap();
        assert_eq!(
            (
                v.station_version,
                v.lookup("local.flood").unwrap().label_zh.as_str()
            ),
            (2, "因洪灾困境儿童")
        );
    }
    assert_converged(&[&a, &b]);

    // A new phone of the station gets the vocabulary in its first download.
    let newcomer = server.device(mine, "D", &server.url()).await;
    newcomer.sync().await;
    assert_eq!(
        newcomer.store.vocabulary().unwrap(),
        a.store.vocabulary().unwrap()
    );
    server.stop().await;
}
