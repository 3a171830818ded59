//! The typed API on one device: every action, its errors, queries and search.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use doorstep_core::*;

fn setup() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "w.db", StationId::new());
    (dir, store)
}

#[test]
fn a_visit_is_recorded_read_back_and_found() {
    let (_d, s) = setup();
    let hh = household(&s, "HH-000001");
    let child = s
        .add_person(
            hh,
            &NewPerson {
                name: "王小明".into(),
                sex: Sex::Male,
                birth_date: Some(BirthDate::parse("2014-03-08").unwrap()),
                id_number: Some("110101201403080016".into()),
                relation: "孙子".into(),
                guardian: false,
                categories: vec!["child.unsupported".into(), "child.left_behind".into()],
                school: Some("石桥小学".into()),
                grade: Some("五年级".into()),
            },
        )
        .unwrap();
    let v = visit(&s, hh, "2026-11-20");
    s.edit_visit(hh, v, &VisitEdit::AddPresent(child)).unwrap();
    s.splice_section(hh, v, Section::PersonalSituation, 0, 0, "孩子身体健康，")
        .unwrap();
    s.splice_section(hh, v, Section::PersonalSituation, 7, 0, "学习成绩中等。")
        .unwrap();
    s.splice_section(hh, v, Section::PersonalSituation, 0, 2, "小明")
        .unwrap();
    s.splice_section(
        hh,
        v,
        Section::QuestionsAsked,
        0,
        0,
        "奶奶询问事实无人抚养儿童基本生活补助如何申请。",
    )
    .unwrap();
    let need = s
        .add_need(
            hh,
            &NewNeed {
                category: "低保申请".into(),
                description: "协助准备材料".into(),
                person: None,
                visit: Some(v),
            },
        )
        .unwrap();
    let inq = s
        .add_inquiry(
            hh,
            &NewInquiry {
                question: "补助标准是多少？".into(),
                topic: "事实无人抚养儿童补贴".into(),
                answer: None,
                visit: Some(v),
            },
        )
        .unwrap();
    s.answer_inquiry(hh, inq, "按当地标准每月发放，需村委会审核。")
        .unwrap();
    let worker = s.worker();
    let due = Date::parse("2026-11-27").unwrap();
    let fu = s
        .add_follow_up(
            hh,
            &NewFollowUp {
                what: "送申请表".into(),
                due,
                assignee: worker,
                origin_visit: Some(v),
            },
        )
        .unwrap();
    let card = s
        .record_card_issuance(
            hh,
            &NewCardIssuance {
                serial: "HG-010001".into(),
                visit: Some(v),
                person: Some(child),
                replaces: None,
            },
        )
        .unwrap();
    s.finalise_visit(hh, v).unwrap();

    let h = s.household(hh).unwrap();
    assert_eq!(h.code, "HH-000001");
    assert_eq!(h.phones, ["13800138000"]);
    assert_eq!(h.persons.len(), 1);
    assert_eq!(
        h.persons[0].categories,
        ["child.left_behind", "child.unsupported"]
    );
    let visit = &h.visits[0];
    assert_eq!(visit.status, VisitStatus::Final);
    assert_eq!(
        visit.section(Section::PersonalSituation),
        "小明身体健康，学习成绩中等。"
    );
    assert_eq!(visit.present, [child]);
    assert_eq!(visit.workers, [worker]);
    assert_eq!(h.needs[0].id, need);
    assert_eq!(h.inquiries[0].status, InquiryStatus::Answered);
    assert_eq!(h.follow_ups[0].id, fu);
    assert_eq!(h.cards[0].id, card);
    assert_eq!(h.created.worker, worker);
    assert_eq!(h.created.device, s.device());

    // Queries from the index.
    assert_eq!(s.households_in_village("石桥村").unwrap()[0].id, hh);
    assert_eq!(s.find_households_by_name("小明").unwrap()[0].id, hh);
    assert!(s.find_households_by_name("李").unwrap().is_empty());
    let d = |x: &str| Date::parse(x).unwrap();
    assert_eq!(
        s.visits_between(d("2026-11-01"), d("2026-11-30")).unwrap()[0].id,
        v
    );
    assert!(s
        .visits_between(d("2026-12-01"), d("2026-12-30"))
        .unwrap()
        .is_empty());
    assert_eq!(
        s.visits_by_worker(worker, d("2026-11-20"), d("2026-11-20"))
            .unwrap()
            .len(),
        1
    );
    assert!(s
        .visits_by_worker(WorkerId::new(), d("2026-11-01"), d("2026-11-30"))
        .unwrap()
        .is_empty());
    assert_eq!(
        s.visits_of_household(hh).unwrap()[0].status,
        VisitStatus::Final
    );
    assert_eq!(s.follow_ups_due(d("2026-11-25"), 3).unwrap().len(), 1);
    assert!(s.follow_ups_due(d("2026-11-20"), 3).unwrap().is_empty());
    assert!(s.follow_ups_overdue(d("2026-11-27")).unwrap().is_empty());
    let overdue = s.follow_ups_overdue(d("2026-11-28")).unwrap();
    assert!(overdue[0].overdue);
    assert_eq!(s.cards_by_serial("HG-010001").unwrap()[0].household, hh);
    // Lists by stored id: the household's cards, the worker's issuances.
    assert_eq!(s.cards_of_household(hh).unwrap().len(), 1);
    assert!(s.cards_of_household(HouseholdId::new()).unwrap().is_empty());
    let all_time = (Timestamp(0), Timestamp(i64::MAX));
    assert_eq!(
        s.cards_issued_by(worker, all_time.0, all_time.1)
            .unwrap()
            .len(),
        1
    );
    assert!(s
        .cards_issued_by(WorkerId::new(), all_time.0, all_time.1)
        .unwrap()
        .is_empty());
    assert!(s.cards_by_serial("HG-010002").unwrap().is_empty());

    // Full-text search in Chinese: two characters (below the trigram size) and longer.
    for q in [
        "补助",
        "事实无人抚养",
        "学习成绩",
        "村委会审核",
        "协助准备",
        "送申请表",
        "父母外出",
    ] {
        let hits = s.search(q, 10).unwrap();
        assert!(!hits.is_empty(), "search {q} found nothing");
        assert!(hits.iter().all(|h| h.excerpt.contains(q)), "excerpt of {q}");
    }
    assert!(s.search("不存在的内容", 10).unwrap().is_empty());
    assert!(
        s.search("%", 10).unwrap().is_empty(),
        "LIKE wildcards are literal"
    );
    assert!(
        s.search("含\"引号\"和*", 10).unwrap().is_empty(),
        "FTS syntax in the text is literal"
    );
    assert_eq!(
        s.search("学习成绩中等。", 10).unwrap().len(),
        1,
        "punctuation is matched too"
    );
    // Short text: CJK by bytes, ASCII letters without case.
    s.splice_summary(hh, 0, 0, "Wx家庭。").unwrap();
    assert_eq!(s.search("Wx", 10).unwrap().len(), 1);
    assert_eq!(s.search("wX", 10).unwrap().len(), 1, "ASCII case is folded");
    assert!(!s.search("补", 10).unwrap().is_empty());
    assert!(s.search("_", 10).unwrap().is_empty(), "no wildcard");

    s.complete_follow_up(hh, fu).unwrap();
    assert!(s.follow_ups_overdue(d("2026-12-28")).unwrap().is_empty());
}

#[test]
fn invalid_calls_get_typed_errors() {
    let (_d, s) = setup();
    let hh = household(&s, "HH-000001");
    let v = visit(&s, hh, "2026-11-20");
    let p = s.add_person(hh, &NewPerson::named("张三", "户主")).unwrap();

    // Unknown ids.
    assert!(matches!(
        s.household(HouseholdId::new()),
        Err(Error::NotFound("household"))
    ));
    assert!(matches!(
        s.edit_person(hh, PersonId::new(), &PersonEdit::Name("x".into())),
        Err(Error::NotFound("person"))
    ));
    assert!(matches!(
        s.splice_section(hh, VisitId::new(), Section::Concerns, 0, 0, "x"),
        Err(Error::NotFound("visit"))
    ));
    assert!(matches!(
        s.complete_follow_up(hh, FollowUpId::new()),
        Err(Error::NotFound("follow_up"))
    ));
    assert!(matches!(
        s.edit_visit(hh, v, &VisitEdit::AddPresent(PersonId::new())),
        Err(Error::NotFound("person"))
    ));
    assert!(matches!(
        s.add_need(
            hh,
            &NewNeed {
                category: "医疗".into(),
                description: String::new(),
                person: None,
                visit: Some(VisitId::new())
            }
        ),
        Err(Error::NotFound("visit"))
    ));
    // Out-of-range splices (code points: 3 characters, not 9 bytes).
    s.splice_section(hh, v, Section::Concerns, 0, 0, "三个字")
        .unwrap();
    assert!(matches!(
        s.splice_section(hh, v, Section::Concerns, 4, 0, "x"),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        s.splice_section(hh, v, Section::Concerns, 2, 2, ""),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        s.splice_section(hh, v, Section::Concerns, usize::MAX, 2, ""),
        Err(Error::InvalidInput(_))
    ));
    s.splice_section(hh, v, Section::Concerns, 3, 0, "。")
        .unwrap();
    assert!(matches!(
        s.splice_summary(hh, 10_000, 0, "x"),
        Err(Error::InvalidInput(_))
    ));
    // Empty required fields, bad values.
    assert!(matches!(
        s.create_household(&NewHousehold::default()),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        s.add_person(hh, &NewPerson::named("  ", "子")),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        s.edit_person(hh, p, &PersonEdit::Name(String::new())),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        s.edit_household(hh, &HouseholdEdit::AddPhone("call me".into())),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        s.edit_household(hh, &HouseholdEdit::Code("a\u{7}b".into())),
        Err(Error::InvalidInput(_))
    ));
    assert!(
        matches!(
            s.amend_visit(hh, v, None, "改正"),
            Err(Error::InvalidInput(_))
        ),
        "draft is edited, not amended"
    );
    // Status machines.
    let fu = s
        .add_follow_up(
            hh,
            &NewFollowUp {
                what: "回访".into(),
                due: Date::parse("2026-12-01").unwrap(),
                assignee: s.worker(),
                origin_visit: None,
            },
        )
        .unwrap();
    s.cancel_follow_up(hh, fu).unwrap();
    assert!(matches!(
        s.complete_follow_up(hh, fu),
        Err(Error::InvalidTransition {
            from: "cancelled",
            to: "done",
            ..
        })
    ));
    // A final visit is frozen.
    s.finalise_visit(hh, v).unwrap();
    assert!(matches!(
        s.splice_section(hh, v, Section::Concerns, 0, 0, "x"),
        Err(Error::VisitFinalised)
    ));
    assert!(matches!(
        s.edit_visit(hh, v, &VisitEdit::Kind(VisitKind::Phone)),
        Err(Error::VisitFinalised)
    ));
    assert!(matches!(
        s.finalise_visit(hh, v),
        Err(Error::VisitFinalised)
    ));
    assert!(matches!(
        s.amend_visit(hh, v, Some(Section::Concerns), " "),
        Err(Error::InvalidInput(_))
    ));
    let a = s
        .amend_visit(hh, v, Some(Section::Concerns), "应为：三个字。补充说明。")
        .unwrap();
    let h = s.household(hh).unwrap();
    assert_eq!(h.amendments[0].id, a);
    assert_eq!(
        h.visits[0].section(Section::Concerns),
        "三个字。",
        "the visit itself is unchanged"
    );
    assert_eq!(s.search("补充说明", 5).unwrap()[0].record, a.to_string());
    // Resolving where nothing conflicts.
    assert!(matches!(
        s.resolve_conflict(
            hh,
            &FieldRef::new(EntityRef::Person(p), "name"),
            Some("李四")
        ),
        Err(Error::NoConflict)
    ));
    // Bad ids and dates from text.
    assert!(HouseholdId::parse("zzz").is_err());
    assert!(Date::parse("2026-02-30").is_err());
    assert!(matches!(s.search("   ", 5), Err(Error::InvalidInput(_))));
    // None of these failed calls changed the document or the index.
    s.integrity_check().unwrap();
    let before = s.index_dump().unwrap();
    s.rebuild_index().unwrap();
    assert_eq!(before, s.index_dump().unwrap());
}

#[test]
fn errors_carry_no_personal_data() {
    let (_d, s) = setup();
    let hh = household(&s, "HH-000001");
    let secret = "王秘密110101201403080011";
    let errors = [
        s.add_person(hh, &NewPerson::named(&format!("{secret}\u{1}"), "子"))
            .unwrap_err(),
        s.edit_household(hh, &HouseholdEdit::AddPhone(secret.into()))
            .unwrap_err(),
        s.add_person(hh, &NewPerson::named(&secret.repeat(100), "子"))
            .unwrap_err(),
        s.add_person(
            hh,
            &NewPerson {
                id_number: Some("110101201403080011".into()),
                ..NewPerson::named("王秘密", "子")
            },
        )
        .unwrap_err(),
        s.edit_visit(
            hh,
            visit(&s, hh, "2026-11-20"),
            &VisitEdit::AddCompanion(Companion::new(&format!("{secret}\u{1}"), "民警")),
        )
        .unwrap_err(),
    ];
    for e in errors {
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains("王秘密") && !text.contains("1101012014"),
            "{text}"
        );
    }
}

#[test]
fn documents_load_lazily_compact_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let worker = WorkerId::new();
    let station = StationId::new();
    let mut o = options(&path, worker, station);
    o.cache_documents = 3;
    o.compact_after = 10;
    let (ids, text) = {
        let s = Store::open(o.clone()).unwrap();
        let ids: Vec<_> = (0..8)
            .map(|i| household(&s, &format!("HH-{i:06}")))
            .collect();
        assert!(s.cached_documents() <= 3);
        let v = visit(&s, ids[0], "2026-11-20");
        let mut text = String::new();
        for i in 0..45 {
            let piece = format!("第{i}句。");
            s.splice_section(
                ids[0],
                v,
                Section::FamilySituation,
                text.chars().count(),
                0,
                &piece,
            )
            .unwrap();
            text.push_str(&piece);
        }
        (ids, text)
    };
    let s = Store::open(o).unwrap();
    assert_eq!(s.cached_documents(), 0, "opening loads no document");
    assert_eq!(s.household_ids().unwrap().len(), 8);
    let h = s.household(ids[0]).unwrap();
    assert_eq!(h.visits[0].section(Section::FamilySituation), text);
    assert_eq!(s.visits_of_household(ids[0]).unwrap().len(), 1);
    for id in &ids {
        s.household(*id).unwrap();
    }
    assert!(s.cached_documents() <= 3);
    let before = s.index_dump().unwrap();
    s.rebuild_index().unwrap();
    assert_eq!(before, s.index_dump().unwrap());
}

#[test]
fn provenance_of_fields() {
    let (_d, s) = setup();
    let hh = household(&s, "HH-000001");
    s.edit_household(hh, &HouseholdEdit::Address("石桥村四组1号".into()))
        .unwrap();
    let hist = s
        .field_history(hh, &FieldRef::new(EntityRef::Household, "address"))
        .unwrap();
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].value.as_deref(), Some("石桥村四组1号"));
    assert_eq!(hist[0].provenance.worker, s.worker());
    assert_eq!(hist[0].provenance.device, s.device());
    let created = s.household(hh).unwrap().created.at;
    assert!(hist[0].provenance.at > created);
    let phones = s
        .field_history(hh, &FieldRef::new(EntityRef::Household, "phones"))
        .unwrap();
    assert_eq!(phones[0].value.as_deref(), Some("13800138000"));
    assert!(matches!(
        s.field_history(hh, &FieldRef::new(EntityRef::Household, "nonsense")),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn card_replacement_links_and_steps_the_old_card() {
    let (_d, s) = setup();
    let hh = household(&s, "HH-000001");
    let old = s
        .record_card_issuance(
            hh,
            &NewCardIssuance {
                serial: "HG-000001".into(),
                visit: None,
                person: None,
                replaces: None,
            },
        )
        .unwrap();
    s.set_card_status(hh, old, CardStatus::Lost).unwrap();
    assert!(matches!(
        s.set_card_status(hh, old, CardStatus::Issued),
        Err(Error::InvalidTransition { .. })
    ));
    let new = s.record_card_issuance(
        hh,
        &NewCardIssuance {
            serial: "HG-000002".into(),
            visit: None,
            person: None,
            replaces: Some(old),
        },
    );
    // A lost card cannot become "replaced": the status machine refuses and nothing is written.
    assert!(matches!(new, Err(Error::InvalidTransition { .. })));
    assert_eq!(s.household(hh).unwrap().cards.len(), 1);
    let a = s
        .record_card_issuance(
            hh,
            &NewCardIssuance {
                serial: "HG-000003".into(),
                visit: None,
                person: None,
                replaces: None,
            },
        )
        .unwrap();
    let b = s
        .record_card_issuance(
            hh,
            &NewCardIssuance {
                serial: "HG-000004".into(),
                visit: None,
                person: None,
                replaces: Some(a),
            },
        )
        .unwrap();
    let cards = s.household(hh).unwrap().cards;
    let find = |id| cards.iter().find(|c| c.id == id).unwrap();
    assert_eq!(find(a).status, CardStatus::Replaced);
    assert_eq!(find(b).replaces, Some(a));
    assert_eq!(
        s.cards_by_serial("HG-000003").unwrap()[0].status,
        CardStatus::Replaced
    );
}
