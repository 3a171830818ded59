//! Typing marks its text for the search index instead of rewriting the whole text on every
//! keystroke (ADR 0027). Search must still find exactly what was typed a moment ago, and no
//! longer what was just deleted: right away, after a crash, after the visit is finalised and
//! after changes from elsewhere are merged.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use doorstep_core::*;

/// The (record, field) of every hit for `text`.
fn found(store: &Store, text: &str) -> Vec<(String, String)> {
    store
        .search(text, 100)
        .unwrap()
        .into_iter()
        .map(|h| (h.record, h.field))
        .collect()
}

fn type_chars(store: &Store, hh: HouseholdId, v: VisitId, s: Section, at: usize, text: &str) {
    for (i, c) in text.chars().enumerate() {
        store
            .splice_section(hh, v, s, at + i, 0, &c.to_string())
            .unwrap();
    }
}

#[test]
fn words_typed_a_moment_ago_are_found_and_deleted_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "a.db", StationId::new());
    let hh = household(&store, "HH-000001");
    let v = visit(&store, hh, "2026-12-07");
    let section = Section::PersonalSituation;
    let here = vec![(v.to_string(), section.as_str().to_owned())];

    type_chars(&store, hh, v, section, 0, "孩子在镇中心小学读三年级");
    assert_eq!(found(&store, "镇中心小学"), here, "a phrase typed just now");
    assert_eq!(found(&store, "三年"), here, "two characters typed just now");
    assert_eq!(found(&store, "级"), here, "the last character typed");

    // Replace 镇中心小学 with 县城 (one splice), then type after it.
    store.splice_section(hh, v, section, 3, 5, "县城").unwrap();
    assert!(found(&store, "镇中心小学").is_empty(), "deleted words");
    assert!(
        found(&store, "中心").is_empty(),
        "deleted words, 2 characters"
    );
    assert_eq!(found(&store, "在县城读"), here);

    // Delete the whole text: nothing of it is found.
    let len = "孩子在县城读三年级".chars().count();
    store.splice_section(hh, v, section, 0, len, "").unwrap();
    assert!(found(&store, "县城").is_empty(), "an emptied text");

    // The household's summary is typed into the same way.
    let summary = "祖孙二人生活，父母外出务工。".chars().count();
    store
        .splice_summary(hh, summary, 0, "奶奶腿脚不便")
        .unwrap();
    assert_eq!(
        found(&store, "腿脚不便"),
        vec![(hh.to_string(), "summary".to_owned())]
    );
    store.splice_summary(hh, summary, 6, "").unwrap();
    assert!(found(&store, "腿脚").is_empty());
}

#[test]
fn typing_marks_its_text_and_the_index_catches_up_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "a.db", StationId::new());
    let hh = household(&store, "HH-000001");
    let v = visit(&store, hh, "2026-12-07");
    // Starting a visit indexes it whole: nothing waits.
    assert_eq!(store.flush_search_index().unwrap(), 0);

    type_chars(&store, hh, v, Section::Concerns, 0, "担心孩子辍学");
    type_chars(&store, hh, v, Section::AdviceGiven, 0, "建议申请助学金");
    store.splice_summary(hh, 0, 0, "新近：").unwrap();
    // Three texts typed into, thirteen keystrokes: each text is indexed once, now. (A
    // keystroke that rewrote its text into the index itself would leave nothing here.)
    assert_eq!(store.flush_search_index().unwrap(), 3);
    assert_eq!(store.flush_search_index().unwrap(), 0, "up to date");
    assert_eq!(found(&store, "辍学").len(), 1);

    // A search indexes what waits before it looks.
    type_chars(&store, hh, v, Section::Concerns, 6, "的风险");
    assert_eq!(found(&store, "辍学的风险").len(), 1);
    assert_eq!(store.flush_search_index().unwrap(), 0, "the search did it");

    // Finalising the visit re-indexes its record, sections included: that clears its
    // marks; the summary's stays until something indexes it.
    type_chars(&store, hh, v, Section::Study, 0, "成绩中等");
    store.splice_summary(hh, 3, 0, "奶奶住院").unwrap();
    store.finalise_visit(hh, v).unwrap();
    assert_eq!(store.flush_search_index().unwrap(), 1, "the summary only");
    assert_eq!(found(&store, "成绩中等").len(), 1);
    assert_eq!(found(&store, "奶奶住院").len(), 1);

    // The live index equals one rebuilt from the documents.
    store.splice_summary(hh, 0, 0, "近况").unwrap();
    let live = store.index_dump().unwrap();
    store.rebuild_index().unwrap();
    assert_eq!(live, store.index_dump().unwrap());
}

#[test]
fn a_crash_after_a_keystroke_keeps_its_words_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let worker = WorkerId::new();
    let path = dir.path().join("a.db");
    let store = Store::open(options(&path, worker, station)).unwrap();
    let hh = household(&store, "HH-000001");
    let v = visit(&store, hh, "2026-12-07");
    type_chars(&store, hh, v, Section::Health, 0, "有哮喘，需要长期用药");
    // No close, no flush: the process is gone as far as this store knows.
    std::mem::forget(store);

    let store = Store::open(options(&path, worker, station)).unwrap();
    assert_eq!(
        found(&store, "长期用药"),
        vec![(v.to_string(), "health".to_owned())],
        "typed before the crash, found after it"
    );
    store
        .splice_section(hh, v, Section::Health, 0, 4, "")
        .unwrap();
    std::mem::forget(store);

    let store = Store::open(options(&path, worker, station)).unwrap();
    assert!(
        found(&store, "哮喘").is_empty(),
        "deleted before the crash, not found after it"
    );
    assert_eq!(found(&store, "长期用药").len(), 1);
}

#[test]
fn changes_from_elsewhere_bring_pending_texts_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let station = StationId::new();
    let a = open(dir.path(), "a.db", station);
    let b = open(dir.path(), "b.db", station);
    let hh = household(&a, "HH-000001");
    let v = visit(&a, hh, "2026-12-07");
    sync_pair(&a, &b);

    type_chars(&a, hh, v, Section::ActualNeeds, 0, "需要校服");
    type_chars(&b, hh, v, Section::QuestionsAsked, 0, "低保怎么续");
    // Merging b's change re-indexes the household on a: a's own typing is indexed with it.
    push(&b, &a);
    assert_eq!(a.flush_search_index().unwrap(), 0);
    assert_eq!(found(&a, "校服").len(), 1);
    assert_eq!(found(&a, "低保怎么续").len(), 1);
    // On b the same: merging a's changes indexes b's own typing too.
    push(&a, &b);
    assert_eq!(b.flush_search_index().unwrap(), 0);
    assert_eq!(found(&b, "需要校服").len(), 1);
    assert_eq!(a.index_dump().unwrap(), b.index_dump().unwrap());
}
