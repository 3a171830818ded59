//! Names for ids on the device (ADR 0017): the workers' labels arrive in the station
//! document, are indexed as it changes, survive a rebuild and a reopen, and a store from
//! before schema 7 indexes the labels it already held.
#![allow(clippy::unwrap_used)]

mod common;

use automerge::Automerge;
use common::*;
use doorstep_core::doc::station::{self, station_doc_id};
use doorstep_core::*;

fn label(s: &str) -> WorkerLabel {
    WorkerLabel::new(s).unwrap()
}

/// The changes of `doc` after `since`, as the server's log carries them.
fn changes_since(doc: &Automerge, since: &[ChangeHash]) -> Vec<Vec<u8>> {
    doc.get_changes(since)
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

#[test]
fn labels_arrive_with_the_station_document_and_follow_its_changes() {
    let dir = tempfile::tempdir().unwrap();
    let st = StationId::new();
    let store = open(dir.path(), "w.db", st);
    let (zhang, wang, stranger) = (WorkerId::new(), WorkerId::new(), WorkerId::new());
    assert_eq!(
        store.worker_label(zhang).unwrap(),
        None,
        "no station document yet"
    );
    assert_eq!(store.worker_labels().unwrap(), vec![]);

    let mut doc = station::new_station_doc(st).unwrap();
    station::set_worker_labels(
        &mut doc,
        &[(zhang, label("W01 / 张丽")), (wang, label("W02"))],
        Timestamp(1),
    )
    .unwrap();
    let batch = station::add_batch(&mut doc, "HG", 1, 100, Timestamp(2)).unwrap();
    store
        .apply_changes(station_doc_id(st), &changes_since(&doc, &[]))
        .unwrap();
    assert_eq!(
        store.worker_label(zhang).unwrap().as_deref(),
        Some("W01 / 张丽")
    );
    assert_eq!(store.worker_label(stranger).unwrap(), None);
    assert_eq!(
        store.worker_labels().unwrap(),
        vec![(zhang, "W01 / 张丽".to_owned()), (wang, "W02".to_owned())]
    );

    // The station renames one; the next change of the document brings it.
    let heads = doc.get_heads();
    station::set_worker_labels(&mut doc, &[(wang, label("W02 / 王芳"))], Timestamp(3)).unwrap();
    station::add_lease(&mut doc, batch, 1, 10, store.device(), None, Timestamp(4)).unwrap();
    store
        .apply_changes(station_doc_id(st), &changes_since(&doc, &heads))
        .unwrap();
    assert_eq!(
        store.worker_label(wang).unwrap().as_deref(),
        Some("W02 / 王芳")
    );
    assert_eq!(store.card_leases().unwrap().len(), 1, "cards as before");

    // A bad entry (written by hand: the server refuses it) is skipped; the rest still reads.
    let heads = doc.get_heads();
    {
        use automerge::transaction::Transactable;
        use automerge::ReadDoc;
        let mut tx = doc.transaction();
        let workers = match tx.get(automerge::ROOT, "workers").unwrap() {
            Some((automerge::Value::Object(_), id)) => id,
            _ => panic!("the station document has a workers map"),
        };
        tx.put(&workers, stranger.to_string(), "张\u{202E}丽")
            .unwrap();
        tx.commit();
    }
    store
        .apply_changes(station_doc_id(st), &changes_since(&doc, &heads))
        .unwrap();
    assert_eq!(store.worker_label(stranger).unwrap(), None);
    assert_eq!(store.worker_labels().unwrap().len(), 2);
    assert!(store.quarantined().unwrap().is_empty());

    // The index is rebuilt from the document, and kept across a reopen.
    let want = store.worker_labels().unwrap();
    store.rebuild_index().unwrap();
    assert_eq!(store.worker_labels().unwrap(), want);
    let worker = store.worker();
    drop(store);
    let store = Store::open(options(&dir.path().join("w.db"), worker, st)).unwrap();
    assert_eq!(store.worker_labels().unwrap(), want);
}

#[test]
fn a_store_from_before_schema_7_indexes_the_labels_it_already_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let (st, worker, zhang) = (StationId::new(), WorkerId::new(), WorkerId::new());
    let store = Store::open(options(&path, worker, st)).unwrap();
    let mut doc = station::new_station_doc(st).unwrap();
    station::set_worker_labels(&mut doc, &[(zhang, label("W01 / 张丽"))], Timestamp(1)).unwrap();
    store
        .apply_changes(station_doc_id(st), &changes_since(&doc, &[]))
        .unwrap();
    drop(store);

    // What an app at schema 6 left: the station document (labels and all, unread), no
    // labels table. The migration to 7 must index what is already there.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    conn.execute_batch(&format!(
        "PRAGMA key = \"x'{hex}'\";
         DROP TABLE access_log;
         DROP TABLE ix_worker_labels;
         DROP TABLE ix_categories;
         DROP TABLE ix_vocabulary;
         DROP TABLE ix_vocabulary_version;
         DROP TABLE departed;
         DROP TABLE IF EXISTS ix_care_levels;
         DROP TABLE IF EXISTS ix_activities;
         DROP TABLE IF EXISTS ix_resources;
         DROP TABLE IF EXISTS ix_attendance;
         DROP TABLE IF EXISTS ix_referrals;
         DROP TABLE IF EXISTS ix_surveys;
         DROP TABLE IF EXISTS ix_responses;
         DROP TABLE IF EXISTS ix_survey_answers;
         DROP TABLE IF EXISTS attachment_blobs;
         DROP TABLE IF EXISTS attachment_uploads;
         DROP TABLE IF EXISTS ix_text_pending;
         ALTER TABLE documents DROP COLUMN pending_bytes;
         DELETE FROM meta WHERE key = 'reindex_station';
         PRAGMA user_version = 6;"
    ))
    .unwrap();
    drop(conn);

    let store = Store::open(options(&path, worker, st)).unwrap();
    assert_eq!(
        store.worker_label(zhang).unwrap().as_deref(),
        Some("W01 / 张丽")
    );
    drop(store);
    // The request is done: the next open does not index again (and finds the rows).
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))
        .unwrap();
    let asked: i64 = conn
        .query_row(
            "SELECT count(*) FROM meta WHERE key = 'reindex_station'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(asked, 0);
}

#[test]
fn a_store_without_a_station_document_upgrades_to_no_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let (st, worker) = (StationId::new(), WorkerId::new());
    drop(Store::open(options(&path, worker, st)).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    conn.execute_batch(&format!(
        "PRAGMA key = \"x'{hex}'\";
         DROP TABLE access_log;
         DROP TABLE ix_worker_labels;
         DROP TABLE ix_categories;
         DROP TABLE ix_vocabulary;
         DROP TABLE ix_vocabulary_version;
         DROP TABLE departed;
         DROP TABLE IF EXISTS ix_care_levels;
         DROP TABLE IF EXISTS ix_activities;
         DROP TABLE IF EXISTS ix_resources;
         DROP TABLE IF EXISTS ix_attendance;
         DROP TABLE IF EXISTS ix_referrals;
         DROP TABLE IF EXISTS ix_surveys;
         DROP TABLE IF EXISTS ix_responses;
         DROP TABLE IF EXISTS ix_survey_answers;
         DROP TABLE IF EXISTS attachment_blobs;
         DROP TABLE IF EXISTS attachment_uploads;
         DROP TABLE IF EXISTS ix_text_pending;
         ALTER TABLE documents DROP COLUMN pending_bytes;
         PRAGMA user_version = 6;"
    ))
    .unwrap();
    drop(conn);
    let store = Store::open(options(&path, worker, st)).unwrap();
    assert_eq!(store.worker_labels().unwrap(), vec![]);
}
