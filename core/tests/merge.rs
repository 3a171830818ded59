//! Replicas editing offline, then exchanging changes: what merges, what becomes a conflict.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use doorstep_core::*;

struct Pair {
    _dir: tempfile::TempDir,
    a: Store,
    b: Store,
    hh: HouseholdId,
}

fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let a = open(dir.path(), "a.db", station);
    let b = open(dir.path(), "b.db", station);
    let hh = household(&a, "HH-000001");
    sync_pair(&a, &b);
    Pair {
        _dir: dir,
        a,
        b,
        hh,
    }
}

fn assert_converged(a: &Store, b: &Store, hh: HouseholdId) {
    let (mut ha, mut hb) = (a.heads(hh).unwrap(), b.heads(hh).unwrap());
    ha.sort();
    hb.sort();
    assert_eq!(ha, hb, "heads differ");
    assert_eq!(a.household(hh).unwrap(), b.household(hh).unwrap());
    assert_eq!(a.index_dump().unwrap(), b.index_dump().unwrap());
    assert_eq!(a.conflicts(None).unwrap(), b.conflicts(None).unwrap());
}

#[test]
fn concurrent_typing_in_one_section_keeps_both_texts() {
    let Pair { a, b, hh, .. } = pair();
    let v = visit(&a, hh, "2026-11-20");
    a.splice_section(hh, v, Section::FamilySituation, 0, 0, "奶奶七十岁。")
        .unwrap();
    sync_pair(&a, &b);
    // Offline: A appends, B inserts at the start and corrects a word.
    a.splice_section(hh, v, Section::FamilySituation, 6, 0, "腿脚不便。")
        .unwrap();
    b.splice_section(hh, v, Section::FamilySituation, 0, 0, "家中两人：")
        .unwrap();
    b.splice_section(hh, v, Section::FamilySituation, 7, 2, "七十二")
        .unwrap();
    a.splice_summary(hh, 0, 0, "【重点户】").unwrap();
    b.splice_summary(hh, 3, 0, "（B）").unwrap();
    sync_pair(&a, &b);
    assert_converged(&a, &b, hh);
    let text = a.household(hh).unwrap().visits[0]
        .section(Section::FamilySituation)
        .to_owned();
    assert_eq!(text, "家中两人：奶奶七十二岁。腿脚不便。");
    assert!(
        a.conflicts(None).unwrap().is_empty(),
        "text merges, no conflict"
    );
    let summary = b.household(hh).unwrap().summary;
    assert!(
        summary.contains("【重点户】") && summary.contains("（B）"),
        "{summary}"
    );
    assert_eq!(a.search("腿脚不便", 5).unwrap().len(), 1);
    assert_eq!(b.search("腿脚不便", 5).unwrap().len(), 1);
}

#[test]
fn concurrent_name_edits_become_one_conflict_with_provenance_and_are_resolved() {
    let Pair { a, b, hh, .. } = pair();
    let p = a
        .add_person(hh, &NewPerson::named("王晓明", "孙子"))
        .unwrap();
    sync_pair(&a, &b);
    a.edit_person(hh, p, &PersonEdit::Name("王小明".into()))
        .unwrap();
    b.edit_person(hh, p, &PersonEdit::Name("汪晓明".into()))
        .unwrap();
    sync_pair(&a, &b);
    assert_converged(&a, &b, hh);
    let conflicts = a.conflicts(Some(hh)).unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let c = &conflicts[0];
    assert_eq!(c.field, FieldRef::new(EntityRef::Person(p), "name"));
    assert_eq!(c.kind, ConflictKind::ConcurrentValues);
    let mut values: Vec<_> = c
        .values
        .iter()
        .map(|v| {
            (
                v.value.clone().unwrap(),
                v.provenance.worker,
                v.provenance.device,
            )
        })
        .collect();
    values.sort();
    let mut expected = vec![
        ("王小明".to_owned(), a.worker(), a.device()),
        ("汪晓明".to_owned(), b.worker(), b.device()),
    ];
    expected.sort();
    assert_eq!(values, expected);

    // An ordinary edit may not close the conflict unseen: it must be resolved.
    assert!(matches!(
        a.edit_person(hh, p, &PersonEdit::Name("王某".into())),
        Err(Error::OpenConflict)
    ));
    // Other fields of the person stay editable.
    a.edit_person(hh, p, &PersonEdit::School(Some("石桥小学".into())))
        .unwrap();
    sync_pair(&a, &b);

    // B resolves, choosing A's spelling; the resolution travels and closes it everywhere.
    b.resolve_conflict(hh, &c.field, Some("王小明")).unwrap();
    assert!(b.conflicts(None).unwrap().is_empty());
    sync_pair(&a, &b);
    assert_converged(&a, &b, hh);
    assert!(a.conflicts(None).unwrap().is_empty());
    let h = a.household(hh).unwrap();
    assert_eq!(h.persons[0].name, "王小明");
    let hist = a.field_history(hh, &c.field).unwrap();
    assert_eq!(hist.len(), 1);
    assert_eq!(
        hist[0].provenance.worker,
        b.worker(),
        "the resolver is recorded"
    );
}

#[test]
fn same_value_written_twice_is_not_a_conflict_and_lww_keeps_the_overwritten_value_visible() {
    let Pair { a, b, hh, .. } = pair();
    let p = a.add_person(hh, &NewPerson::named("李四", "户主")).unwrap();
    sync_pair(&a, &b);
    a.edit_person(hh, p, &PersonEdit::Guardian(true)).unwrap();
    b.edit_person(hh, p, &PersonEdit::Guardian(true)).unwrap();
    a.edit_household(hh, &HouseholdEdit::Address("新地址一".into()))
        .unwrap();
    b.edit_household(hh, &HouseholdEdit::Address("新地址二".into()))
        .unwrap();
    sync_pair(&a, &b);
    assert_converged(&a, &b, hh);
    assert!(a.conflicts(None).unwrap().is_empty());
    let par = a.parallel_updates(None).unwrap();
    assert_eq!(par.len(), 1);
    assert_eq!(par[0].field, FieldRef::new(EntityRef::Household, "address"));
    let shown = a.household(hh).unwrap().address;
    assert_eq!(par[0].shown.value.as_deref(), Some(shown.as_str()));
    let other = par[0].overshadowed[0].value.clone().unwrap();
    assert_ne!(other, shown);
    assert!(["新地址一", "新地址二"].contains(&other.as_str()));
    // The value shown is the latest write by its timestamp.
    let latest = par[0].shown.provenance.at;
    assert!(par[0]
        .overshadowed
        .iter()
        .all(|v| v.provenance.at <= latest));
    // Writing the field again settles it.
    a.edit_household(hh, &HouseholdEdit::Address("核实后的地址".into()))
        .unwrap();
    sync_pair(&a, &b);
    assert!(b.parallel_updates(None).unwrap().is_empty());
}

#[test]
fn sets_are_add_wins() {
    let Pair { a, b, hh, .. } = pair();
    a.edit_household(hh, &HouseholdEdit::RemovePhone("13800138000".into()))
        .unwrap();
    b.edit_household(hh, &HouseholdEdit::AddPhone("13800138000".into()))
        .unwrap(); // re-add, concurrent
    b.edit_household(hh, &HouseholdEdit::AddPhone("13900139000".into()))
        .unwrap();
    a.edit_household(
        hh,
        &HouseholdEdit::AddTag("household.dibao_marginal".into()),
    )
    .unwrap();
    b.edit_household(hh, &HouseholdEdit::RemoveTag("household.dibao".into()))
        .unwrap();
    sync_pair(&a, &b);
    assert_converged(&a, &b, hh);
    let h = a.household(hh).unwrap();
    // B's re-add of an element it already had is a no-op, so A's removal stands; B's new phone stays.
    assert_eq!(h.phones, ["13900139000"]);
    assert_eq!(h.tags, ["household.dibao_marginal"]);
    // A genuinely concurrent add and remove of the same element: the add wins.
    a.edit_household(
        hh,
        &HouseholdEdit::AddTag("household.poverty_monitoring".into()),
    )
    .unwrap();
    sync_pair(&a, &b);
    a.edit_household(
        hh,
        &HouseholdEdit::RemoveTag("household.poverty_monitoring".into()),
    )
    .unwrap();
    b.edit_household(
        hh,
        &HouseholdEdit::RemoveTag("household.poverty_monitoring".into()),
    )
    .unwrap();
    b.edit_household(
        hh,
        &HouseholdEdit::AddTag("household.poverty_monitoring".into()),
    )
    .unwrap();
    sync_pair(&a, &b);
    assert_converged(&a, &b, hh);
    assert!(a
        .household(hh)
        .unwrap()
        .tags
        .contains(&"household.poverty_monitoring".to_owned()));
}

#[test]
fn done_versus_cancelled_is_a_conflict_resolved_to_one_state() {
    let Pair { a, b, hh, .. } = pair();
    let fu = a
        .add_follow_up(
            hh,
            &NewFollowUp {
                what: "送表格".into(),
                due: Date::parse("2026-12-01").unwrap(),
                assignee: a.worker(),
                origin_visit: None,
            },
        )
        .unwrap();
    sync_pair(&a, &b);
    a.complete_follow_up(hh, fu).unwrap();
    b.cancel_follow_up(hh, fu).unwrap();
    sync_pair(&a, &b);
    assert_converged(&a, &b, hh);
    let c = a.conflicts(None).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].field, FieldRef::new(EntityRef::FollowUp(fu), "status"));
    assert!(
        matches!(
            a.resolve_conflict(hh, &c[0].field, Some("open")),
            Err(Error::InvalidInput(_))
        ),
        "only a reached state"
    );
    a.resolve_conflict(hh, &c[0].field, Some("done")).unwrap();
    sync_pair(&a, &b);
    assert_converged(&a, &b, hh);
    assert!(b.conflicts(None).unwrap().is_empty());
    assert_eq!(
        b.household(hh).unwrap().follow_ups[0].status,
        FollowUpStatus::Done
    );
}

#[test]
fn text_typed_elsewhere_while_a_visit_was_finalised_is_flagged() {
    let Pair { a, b, hh, .. } = pair();
    let v = visit(&a, hh, "2026-11-20");
    a.splice_section(hh, v, Section::AdviceGiven, 0, 0, "建议申请补助。")
        .unwrap();
    sync_pair(&a, &b);
    a.finalise_visit(hh, v).unwrap();
    b.splice_section(hh, v, Section::AdviceGiven, 7, 0, "并联系学校。")
        .unwrap();
    sync_pair(&a, &b);
    assert_converged(&a, &b, hh);
    let c = a.conflicts(None).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].kind, ConflictKind::EditedAfterFinalise);
    assert_eq!(c[0].values[0].provenance.device, a.device());
    // Nothing was lost: the merged text holds both.
    assert_eq!(
        a.household(hh).unwrap().visits[0].section(Section::AdviceGiven),
        "建议申请补助。并联系学校。"
    );
    a.resolve_conflict(hh, &c[0].field, None).unwrap();
    sync_pair(&a, &b);
    assert!(b.conflicts(None).unwrap().is_empty());
    assert_converged(&a, &b, hh);
}

#[test]
fn duplicate_garbage_and_out_of_order_deliveries() {
    let Pair { a, b, hh, .. } = pair();
    let before = b.heads(hh).unwrap();
    let v = visit(&a, hh, "2026-11-20");
    a.splice_section(hh, v, Section::Concerns, 0, 0, "一")
        .unwrap();
    a.splice_section(hh, v, Section::Concerns, 1, 0, "二")
        .unwrap();
    let changes = a.export_changes(hh, &before).unwrap();
    assert_eq!(changes.len(), 3);
    // Missing dependency: the last change alone is refused and nothing is stored.
    let dump = b.index_dump().unwrap();
    assert!(matches!(
        b.apply_changes(hh, &changes[2..]),
        Err(Error::MissingDependencies(_))
    ));
    assert_eq!(b.heads(hh).unwrap(), before);
    // Garbage is refused.
    assert!(matches!(
        b.apply_changes(hh, &[vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3]]),
        Err(Error::MalformedDocument(_))
    ));
    assert!(matches!(
        b.apply_changes(hh, &[b"hello".to_vec()]),
        Err(Error::MalformedDocument(_))
    ));
    assert_eq!(b.index_dump().unwrap(), dump);
    // A change of another household under this id is refused.
    let other = household(&a, "HH-000002");
    let foreign = a.export_changes(other, &[]).unwrap();
    let stray = HouseholdId::new();
    assert!(matches!(
        b.apply_changes(stray, &foreign),
        Err(Error::NotAHousehold(_))
    ));
    assert!(b.household(stray).is_err());
    // Reversed order within one delivery is fine; a duplicate delivery is counted, not applied.
    let mut reversed = changes.clone();
    reversed.reverse();
    assert_eq!(
        b.apply_changes(hh, &reversed).unwrap(),
        ApplyOutcome {
            applied: 3,
            duplicates: 0
        }
    );
    assert_eq!(
        b.apply_changes(hh, &changes).unwrap(),
        ApplyOutcome {
            applied: 0,
            duplicates: 3
        }
    );
    sync_pair(&a, &b);
    assert_converged(&a, &b, hh);
    assert_converged(&a, &b, other);
}

#[test]
fn an_older_app_keeps_fields_it_does_not_know() {
    use automerge::transaction::Transactable;
    let Pair { a, b, hh, .. } = pair();
    // A "newer app" writes a field this version does not know, with a raw automerge change.
    let bytes = a.export_document(hh).unwrap();
    let mut newer = automerge::Automerge::load(&bytes).unwrap();
    let mut tx = newer.transaction();
    let hmap = match automerge::ReadDoc::get(&tx, &automerge::ROOT, "household").unwrap() {
        Some((_, id)) => id,
        None => panic!("no household map"),
    };
    tx.put(&hmap, "dialect_v2", "吴语").unwrap();
    tx.put(&automerge::ROOT, "schema", 2_i64).unwrap();
    tx.commit();
    let change = newer.get_last_local_change().unwrap().raw_bytes().to_vec();
    b.apply_changes(hh, &[change]).unwrap();
    // The older app edits the household; the unknown field survives and syncs on.
    b.edit_household(hh, &HouseholdEdit::Address("新地址".into()))
        .unwrap();
    b.add_person(hh, &NewPerson::named("新成员", "女儿"))
        .unwrap();
    sync_pair(&a, &b);
    let saved = a.export_document(hh).unwrap();
    let doc = automerge::Automerge::load(&saved).unwrap();
    let hmap = automerge::ReadDoc::get(&doc, &automerge::ROOT, "household")
        .unwrap()
        .unwrap()
        .1;
    let v = automerge::ReadDoc::get(&doc, &hmap, "dialect_v2")
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(v.as_str(), Some("吴语"));
    assert_eq!(a.household(hh).unwrap().address, "新地址");
}

#[test]
fn a_value_from_a_newer_app_shows_as_unrecognised_and_does_not_stop_sync() {
    use automerge::transaction::Transactable;
    let Pair { a, b, hh, .. } = pair();
    let p = a.add_person(hh, &NewPerson::named("李华", "户主")).unwrap();
    let other = household(&a, "HH-000002");
    sync_pair(&a, &b);
    // A newer app records a value of `sex` this version does not know.
    let mut newer = automerge::Automerge::load(&a.export_document(hh).unwrap()).unwrap();
    let mut tx = newer.transaction();
    let persons = automerge::ReadDoc::get(&tx, &automerge::ROOT, "persons")
        .unwrap()
        .unwrap()
        .1;
    let person = automerge::ReadDoc::get(&tx, &persons, p.to_string())
        .unwrap()
        .unwrap()
        .1;
    let cell = tx
        .put_object(&person, "sex", automerge::ObjType::Map)
        .unwrap();
    tx.put(&cell, "v", "declined_to_say_v2").unwrap();
    tx.put(&cell, "by", a.worker().to_string()).unwrap();
    tx.put(&cell, "dev", a.device().to_string()).unwrap();
    tx.put(&cell, "at", 1_i64).unwrap();
    tx.commit();
    let change = newer.get_last_local_change().unwrap().raw_bytes().to_vec();
    // Together with an ordinary change to another household, in one delivery.
    a.edit_household(
        other,
        &HouseholdEdit::AddTag("household.dibao_marginal".into()),
    )
    .unwrap();
    b.apply_changes(hh, &[change]).unwrap();
    push(&a, &b);
    // The household opens; that one field reads as unrecognised (ADR 0013).
    assert!(b.unreadable_households().unwrap().is_empty());
    let shown = b.household(hh).unwrap();
    let person = shown.persons.iter().find(|x| x.id == p).unwrap();
    assert_eq!(person.sex, Sex::Unrecognised);
    assert_eq!(person.name, "李华");
    assert!(
        b.household(other)
            .unwrap()
            .tags
            .contains(&"household.dibao_marginal".to_owned()),
        "sync went on"
    );
    assert!(
        b.households_in_village("石桥村")
            .unwrap()
            .iter()
            .any(|h| h.id == hh),
        "listed like any household"
    );
    // This version's server would refuse it: its validator knows no such value.
    let doc = automerge::Automerge::load(&b.export_document(hh).unwrap()).unwrap();
    assert!(doorstep_core::doc::verify::validate(&doc).is_err());
    // The document itself is kept whole and travels on.
    assert!(b.export_document(hh).unwrap().len() > 100);
    let before = b.index_dump().unwrap();
    b.rebuild_index().unwrap();
    assert_eq!(before, b.index_dump().unwrap());
}

#[test]
fn health_and_study_sections_merge_search_and_are_flagged_after_finalise() {
    let Pair { a, b, hh, .. } = pair();
    let v = visit(&a, hh, "2026-11-20");
    a.splice_section(hh, v, Section::Health, 0, 0, "哮喘，每月复诊。")
        .unwrap();
    sync_pair(&a, &b);
    // Offline: B writes the study section while A finalises.
    b.splice_section(hh, v, Section::Study, 0, 0, "三年级，数学跟不上。")
        .unwrap();
    a.finalise_visit(hh, v).unwrap();
    sync_pair(&a, &b);
    assert_converged(&a, &b, hh);
    let shown = a.household(hh).unwrap().visits.remove(0);
    assert_eq!(shown.section(Section::Health), "哮喘，每月复诊。");
    assert_eq!(shown.section(Section::Study), "三年级，数学跟不上。");
    let c = b.conflicts(None).unwrap();
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].kind, ConflictKind::EditedAfterFinalise);
    b.resolve_conflict(hh, &c[0].field, None).unwrap();
    sync_pair(&a, &b);
    assert!(a.conflicts(None).unwrap().is_empty());
    assert_converged(&a, &b, hh);
    // Both sections are searched, named by their section.
    let hits = a.search("数学跟不上", 10).unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].field, "study");
    assert_eq!(a.search("哮喘", 10).unwrap()[0].field, "health");
    // A final visit's health section is corrected by an amendment, like the others.
    assert!(matches!(
        a.splice_section(hh, v, Section::Health, 0, 0, "x"),
        Err(Error::VisitFinalised)
    ));
    a.amend_visit(hh, v, Some(Section::Health), "已停药。")
        .unwrap();
    assert_eq!(a.search("已停药", 10).unwrap()[0].field, "amendment");
}
