//! `Store::open_visit`: a visit with its needs, follow-ups and card is one durable action
//! and one change, reads like the same records added one by one, and writes nothing when
//! any part is refused.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use doorstep_core::*;

fn new_visit(date: &str) -> NewVisit {
    NewVisit {
        kind: VisitKind::Home,
        date: Date::parse(date).unwrap(),
        started_at: Timestamp(1_764_000_000_000),
        gps: None,
        other_workers: vec![],
        present: vec![],
        companions: vec![],
    }
}

fn need(category: &str, description: &str) -> NewNeed {
    NewNeed {
        category: category.into(),
        description: description.into(),
        person: None,
        // Ignored: the need belongs to the visit opened.
        visit: None,
    }
}

fn opening(s: &Store, what: &str) -> VisitOpening {
    VisitOpening {
        visit: new_visit("2026-12-01"),
        needs: vec![need("医疗救助", "奶奶的药费\r\n报销"), need("助学", "学费")],
        follow_ups: vec![NewFollowUp {
            what: what.into(),
            due: Date::parse("2026-12-10").unwrap(),
            assignee: s.worker(),
            origin_visit: None,
        }],
        card: Some(NewCardIssuance {
            serial: "HG-010001".into(),
            visit: None,
            person: None,
            replaces: None,
        }),
    }
}

#[test]
fn a_visit_with_its_needs_follow_up_and_card_is_one_change() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let s = open(dir.path(), "w.db", station);
    let hh = household(&s, "HH-000001");
    let before = s.export_changes(hh, &[]).unwrap().len();

    let opened = s.open_visit(hh, &opening(&s, "送医保材料")).unwrap();

    assert_eq!(s.export_changes(hh, &[]).unwrap().len(), before + 1);
    let h = s.household(hh).unwrap();
    assert_eq!(h.visits.len(), 1);
    assert_eq!(h.visits[0].id, opened.visit);
    assert_eq!(
        h.needs.iter().map(|n| n.id).collect::<Vec<_>>().len(),
        opened.needs.len()
    );
    for (id, n) in opened.needs.iter().zip(&h.needs) {
        assert!(h.needs.iter().any(|x| x.id == *id));
        assert_eq!(n.visit, Some(opened.visit));
    }
    assert!(h.needs.iter().any(|n| n.description == "奶奶的药费\n报销"));
    assert_eq!(h.follow_ups.len(), 1);
    assert_eq!(h.follow_ups[0].id, opened.follow_ups[0]);
    assert_eq!(h.follow_ups[0].origin_visit, Some(opened.visit));
    assert_eq!(h.cards.len(), 1);
    assert_eq!(Some(h.cards[0].id), opened.card);
    assert_eq!(h.cards[0].visit, Some(opened.visit));
    // Indexed at once, and pending upload like any new visit.
    let hits = s.search("药费", 10).unwrap();
    assert!(hits.iter().any(|hit| hit.household == hh), "{hits:?}");
    assert_eq!(
        s.visit_upload_status(hh, opened.visit).unwrap(),
        UploadStatus::Pending
    );
    // After a reopen too: the action was durable.
    let worker = s.worker();
    drop(s);
    let s = Store::open(options(&dir.path().join("w.db"), worker, station)).unwrap();
    assert_eq!(s.household(hh).unwrap().needs.len(), 2);
}

#[test]
fn a_refused_part_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), "w.db", StationId::new());
    let hh = household(&s, "HH-000001");
    let before = s.export_changes(hh, &[]).unwrap();

    // A follow-up without a description is refused: neither the visit nor its needs stay.
    let err = s.open_visit(hh, &opening(&s, "  ")).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");

    assert_eq!(s.export_changes(hh, &[]).unwrap(), before);
    let h = s.household(hh).unwrap();
    assert!(h.visits.is_empty() && h.needs.is_empty() && h.cards.is_empty());
    assert!(s.search("药费", 10).unwrap().is_empty());
}
