//! Group commit in the SQLite backend (ADR 0009): writes that queue behind one another share
//! one transaction, each in its own savepoint; a refused write leaves the others alone;
//! nobody is answered before the shared COMMIT.
//!
//! To make the queue deterministic, a second connection holds SQLite's write lock: the first
//! write then waits inside `BEGIN IMMEDIATE` (SQLite's busy timeout) while holding the
//! writer, the others queue behind it, and the test releases the lock once all are queued.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use automerge::ChangeHash;
use doorstep_core::{DeviceId, HouseholdId, StationId};
use doorstep_server::store::{DocAppend, ServerStore, StoreError};
use doorstep_server::SqliteStore;
use rusqlite::Connection;

fn append(doc: HouseholdId, tag: &str, expected_seq: Option<u64>) -> DocAppend {
    let mut h = [0u8; 32];
    for (i, b) in tag.bytes().enumerate().take(32) {
        h[i] = b;
    }
    DocAppend {
        signatures: Vec::new(),
        doc,
        kind: doorstep_core::doc::DocKind::Household,
        changes: vec![(ChangeHash(h), tag.as_bytes().to_vec())],
        snapshot: None,
        cards: Vec::new(),
        expected_seq,
    }
}

/// Another connection to the file, holding SQLite's write lock until dropped.
struct WriteLock(Connection);

impl WriteLock {
    fn take(path: &Path) -> Self {
        let c = Connection::open(path).unwrap();
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        WriteLock(c)
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        self.0.execute_batch("ROLLBACK").unwrap();
    }
}

/// Wait (without a deadline: no timed assertion) until `n` writes are queued.
fn until_queued(store: &SqliteStore, n: usize) {
    while store.write_stats().unwrap().queued < n {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The log of a station as an independent connection sees it: (seq, bytes).
fn log(path: &Path, station: StationId) -> Vec<(u64, String)> {
    let c = Connection::open(path).unwrap();
    let mut st = c
        .prepare("SELECT seq, bytes FROM change_log WHERE station_id = ?1 ORDER BY seq")
        .unwrap();
    st.query_map([station.to_string()], |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            String::from_utf8(r.get::<_, Vec<u8>>(1)?).unwrap(),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn queued_commits_share_one_transaction_and_a_refused_one_leaves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let store = SqliteStore::open_file(&path).unwrap();
    let (a, b) = (
        store.create_station("A", 1).unwrap(),
        store.create_station("B", 1).unwrap(),
    );
    let dev = DeviceId::new();
    // A document of each station, with one entry.
    let (da, db) = (HouseholdId::new(), HouseholdId::new());
    assert_eq!(
        store.commit(a, dev, &[append(da, "a0", None)]).unwrap(),
        [1]
    );
    assert_eq!(
        store.commit(b, dev, &[append(db, "b0", None)]).unwrap(),
        [1]
    );
    let before = store.write_stats().unwrap();

    // Twelve commits queue up: good ones to both stations, and three to refuse — one
    // validated against an older state of its document, one aimed at the other station's
    // document, one at a document another commit of the batch moves first.
    let lock = WriteLock::take(&path);
    let answered = AtomicBool::new(false);
    let results = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for i in 0..9 {
            let (st, doc) = if i % 2 == 0 { (a, da) } else { (b, db) };
            let tag = format!("ok{i}");
            let (store, answered, path) = (&store, &answered, &path);
            handles.push(scope.spawn(move || {
                let r = store.commit(st, dev, &[append(doc, &tag, None)]);
                answered.store(true, Ordering::SeqCst);
                // Answered only once committed: an independent reader sees it.
                if r.is_ok() {
                    assert!(log(path, st).iter().any(|(_, t)| *t == tag));
                }
                (tag, r)
            }));
        }
        let refusals = [
            (a, append(da, "stale", Some(0))),
            (a, append(db, "foreign", None)),
            (b, append(HouseholdId::new(), "fresh", Some(7))),
        ];
        for (st, app) in refusals {
            let store = &store;
            handles.push(scope.spawn(move || {
                let tag = String::from_utf8(app.changes[0].1.clone()).unwrap();
                (tag, store.commit(st, dev, &[app]))
            }));
        }
        until_queued(&store, 12);
        assert!(
            !answered.load(Ordering::SeqCst),
            "nobody answered while queued"
        );
        drop(lock);
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });

    let after = store.write_stats().unwrap();
    assert_eq!(after.writes - before.writes, 12);
    assert_eq!(
        after.transactions - before.transactions,
        1,
        "one transaction, one fsync"
    );
    for (tag, r) in &results {
        match tag.as_str() {
            "stale" | "foreign" | "fresh" => {
                assert!(matches!(r, Err(StoreError::Conflict(_))), "{tag}: {r:?}")
            }
            _ => assert!(r.is_ok(), "{tag}: {r:?}"),
        }
    }
    drop(store);
    // On disk, from a fresh open: gap-free per station, nothing of the refused ones.
    let store = SqliteStore::open_file(&path).unwrap();
    for (st, n) in [(a, 6), (b, 5)] {
        let entries = log(&path, st);
        assert_eq!(
            entries.iter().map(|e| e.0).collect::<Vec<_>>(),
            (1..=n).collect::<Vec<u64>>()
        );
        assert!(entries
            .iter()
            .all(|(_, t)| t.starts_with("ok") || t.ends_with('0')));
        assert_eq!(store.high_water(st).unwrap(), n);
    }
    // Each caller was told its own document's last sequence, in commit order.
    let mut told: Vec<(StationId, u64)> = results
        .iter()
        .filter_map(|(tag, r)| {
            let i: usize = tag.strip_prefix("ok")?.parse().ok()?;
            Some((if i.is_multiple_of(2) { a } else { b }, r.as_ref().ok()?[0]))
        })
        .collect();
    told.sort_by_key(|(st, seq)| (*st == b, *seq));
    assert_eq!(
        told.iter().map(|t| t.1).collect::<Vec<_>>(),
        [2, 3, 4, 5, 6, 2, 3, 4, 5]
    );
}

#[test]
fn many_threads_committing_get_gap_free_sequences_and_every_commit_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let store = SqliteStore::open_file(&path).unwrap();
    let stations: Vec<StationId> = (0..3)
        .map(|i| store.create_station(&format!("S{i}"), 1).unwrap())
        .collect();
    let dev = DeviceId::new();
    std::thread::scope(|scope| {
        for t in 0..12 {
            let (store, stations, path) = (&store, &stations, &path);
            scope.spawn(move || {
                let st = stations[t % 3];
                let doc = HouseholdId::new();
                let mut last = 0;
                for k in 0..40 {
                    let tag = format!("t{t}k{k}");
                    let seq = store
                        .commit(st, dev, &[append(doc, &tag, Some(last))])
                        .unwrap()[0];
                    assert!(seq > last, "strictly increasing");
                    last = seq;
                    // On disk when answered: another connection reads it at that sequence.
                    if k % 10 == 0 {
                        assert!(log(path, st).contains(&(seq, tag)));
                    }
                }
            });
        }
    });
    let stats = store.write_stats().unwrap();
    drop(store);
    for st in &stations {
        let entries = log(&path, *st);
        assert_eq!(
            entries.iter().map(|e| e.0).collect::<Vec<_>>(),
            (1..=160).collect::<Vec<u64>>(),
            "gap-free"
        );
    }
    assert_eq!(stats.queued, 0);
    assert!(stats.transactions <= stats.writes);
}
