//! Actions that touch one record re-index only that record (`Scope::Record`). After each of
//! them, on a household with history and with open conflicts, the live index must equal one
//! rebuilt from the documents: rows, text, search and conflicts of the other records stay
//! as they were, and the touched record's are current.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use doorstep_core::*;

fn assert_index_current(s: &Store, after: &str) {
    let live = s.index_dump().unwrap();
    s.rebuild_index().unwrap();
    let rebuilt = s.index_dump().unwrap();
    if live != rebuilt {
        let only_live: Vec<_> = live.iter().filter(|r| !rebuilt.contains(r)).collect();
        let only_rebuilt: Vec<_> = rebuilt.iter().filter(|r| !live.contains(r)).collect();
        panic!("after {after}: live index differs from a rebuilt one\n  only live: {only_live:#?}\n  only rebuilt: {only_rebuilt:#?}");
    }
}

#[test]
fn record_scoped_actions_keep_the_index_equal_to_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let a = open(dir.path(), "a.db", station);
    let b = open(dir.path(), "b.db", station);
    let hh = household(&a, "HH-000001");
    let p = a
        .add_person(hh, &NewPerson::named("王小明", "孙子"))
        .unwrap();
    let v1 = visit(&a, hh, "2026-11-20");
    a.splice_section(hh, v1, Section::Concerns, 0, 0, "奶奶身体不好。")
        .unwrap();
    let need = a
        .add_need(
            hh,
            &NewNeed {
                category: "低保申请".into(),
                description: "协助准备材料".into(),
                person: Some(p),
                visit: Some(v1),
            },
        )
        .unwrap();
    sync_pair(&a, &b);
    // Concurrent edits: a conflict on the person's name, a parallel update of the address.
    a.edit_person(hh, p, &PersonEdit::Name("王晓明".into()))
        .unwrap();
    b.edit_person(hh, p, &PersonEdit::Name("王小鸣".into()))
        .unwrap();
    a.edit_household(hh, &HouseholdEdit::Address("石桥村五组".into()))
        .unwrap();
    b.edit_household(hh, &HouseholdEdit::Address("石桥村六组".into()))
        .unwrap();
    sync_pair(&a, &b);
    assert!(
        !a.conflicts(Some(hh)).unwrap().is_empty(),
        "a conflict to keep"
    );
    assert_index_current(&a, "the merge");

    let s = &a;
    let v2 = visit(s, hh, "2026-11-27");
    assert_index_current(s, "start_visit");
    s.edit_visit(hh, v2, &VisitEdit::AddPresent(p)).unwrap();
    assert_index_current(s, "edit_visit");
    s.splice_section(hh, v2, Section::ActualNeeds, 0, 0, "需要补助。")
        .unwrap();
    assert_index_current(s, "splice_section");
    let q = s
        .add_inquiry(
            hh,
            &NewInquiry {
                question: "补助标准是多少？".into(),
                topic: "事实无人抚养儿童补贴".into(),
                answer: None,
                visit: Some(v2),
            },
        )
        .unwrap();
    assert_index_current(s, "add_inquiry");
    s.set_inquiry_status(hh, q, InquiryStatus::Referred)
        .unwrap();
    assert_index_current(s, "set_inquiry_status");
    s.answer_inquiry(hh, q, "按当地标准每月发放。").unwrap();
    assert_index_current(s, "answer_inquiry");
    let fu = s
        .add_follow_up(
            hh,
            &NewFollowUp {
                what: "送申请表".into(),
                due: Date::parse("2026-12-04").unwrap(),
                assignee: s.worker(),
                origin_visit: Some(v2),
            },
        )
        .unwrap();
    assert_index_current(s, "add_follow_up");
    s.complete_follow_up(hh, fu).unwrap();
    assert_index_current(s, "complete_follow_up");
    let old = s
        .record_card_issuance(
            hh,
            &NewCardIssuance {
                serial: "HG-000001".into(),
                visit: Some(v2),
                person: Some(p),
                replaces: None,
            },
        )
        .unwrap();
    assert_index_current(s, "record_card_issuance");
    s.record_card_issuance(
        hh,
        &NewCardIssuance {
            serial: "HG-000002".into(),
            visit: Some(v2),
            person: Some(p),
            replaces: Some(old),
        },
    )
    .unwrap();
    assert_index_current(s, "a card that replaces another");
    s.set_need_status(hh, need, NeedStatus::Referred).unwrap();
    assert_index_current(s, "set_need_status");
    s.add_need(
        hh,
        &NewNeed {
            category: "助学".into(),
            description: "学费".into(),
            person: None,
            visit: Some(v2),
        },
    )
    .unwrap();
    assert_index_current(s, "add_need");
    s.finalise_visit(hh, v2).unwrap();
    assert_index_current(s, "finalise_visit");
    s.amend_visit(hh, v2, Some(Section::ActualNeeds), "应为：需要助学补助。")
        .unwrap();
    assert_index_current(s, "amend_visit");
    let p2 = s
        .add_person(hh, &NewPerson::named("王奶奶", "祖母"))
        .unwrap();
    assert_index_current(s, "add_person");
    s.edit_person(hh, p2, &PersonEdit::Guardian(true)).unwrap();
    assert_index_current(s, "edit_person");
    s.edit_household(hh, &HouseholdEdit::Village("石桥村".into()))
        .unwrap();
    assert_index_current(s, "edit_household");
    // The person's name conflict is still there, untouched by the record-scoped actions.
    let name = FieldRef::new(EntityRef::Person(p), "name");
    assert!(s
        .conflicts(Some(hh))
        .unwrap()
        .iter()
        .any(|c| c.field == name));
    s.resolve_conflict(hh, &name, Some("王晓明")).unwrap();
    assert_index_current(s, "resolve_conflict");
    assert!(!s
        .conflicts(Some(hh))
        .unwrap()
        .iter()
        .any(|c| c.field == name));
}

/// A household received from a colleague is read and re-indexed in the records the
/// received changes touch (`verify::touched_for_index`), texts typed into counted as their
/// record: after each delivery the receiving phone's index equals one rebuilt from its
/// documents, conflicts made by the delivery included.
#[test]
fn received_changes_keep_the_index_equal_to_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let a = open(dir.path(), "a.db", station);
    let b = open(dir.path(), "b.db", station);
    let hh = household(&a, "HH-000002");
    let p = a
        .add_person(hh, &NewPerson::named("李小红", "孙女"))
        .unwrap();
    // A history: earlier visits, finalised, with text.
    for (i, date) in ["2026-09-20", "2026-10-20"].iter().enumerate() {
        let v = visit(&a, hh, date);
        a.splice_section(
            hh,
            v,
            Section::FamilySituation,
            0,
            0,
            &format!("第{i}次走访，情况稳定。"),
        )
        .unwrap();
        a.finalise_visit(hh, v).unwrap();
    }
    sync_pair(&a, &b);
    assert_index_current(&b, "the first delivery");
    let step = |what: &str| {
        push(&a, &b);
        assert_index_current(&b, what);
    };
    let v = visit(&a, hh, "2026-11-20");
    step("a new visit");
    a.splice_section(hh, v, Section::Concerns, 0, 0, "孩子说想念妈妈。")
        .unwrap();
    step("typing into the new visit");
    a.splice_section(hh, v, Section::Concerns, 2, 2, "")
        .unwrap();
    step("deleting typed text");
    // A conflict made by the delivery: both phones renamed the person offline.
    a.edit_person(hh, p, &PersonEdit::Name("李晓红".into()))
        .unwrap();
    b.edit_person(hh, p, &PersonEdit::Name("李小虹".into()))
        .unwrap();
    step("a concurrent rename");
    assert!(
        b.conflicts(Some(hh))
            .unwrap()
            .iter()
            .any(|c| c.field == FieldRef::new(EntityRef::Person(p), "name")),
        "the delivery made a conflict on the receiving phone"
    );
    let need = a
        .add_need(
            hh,
            &NewNeed {
                category: "心理关爱".into(),
                description: "定期陪伴".into(),
                person: Some(p),
                visit: Some(v),
            },
        )
        .unwrap();
    step("a new need");
    a.set_need_status(hh, need, NeedStatus::Referred).unwrap();
    step("a need's status");
    a.finalise_visit(hh, v).unwrap();
    step("a finalisation");
    a.amend_visit(hh, v, Some(Section::Concerns), "补充：孩子周末由邻居照看。")
        .unwrap();
    step("an amendment");
    a.edit_household(hh, &HouseholdEdit::Address("石桥村七组".into()))
        .unwrap();
    step("a household field");
    a.splice_summary(hh, 0, 0, "更新：").unwrap();
    step("typing into the summary");
}
