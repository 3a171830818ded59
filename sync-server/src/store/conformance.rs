//! One conformance suite for every `ServerStore` backend: each check takes a factory of
//! empty stores and panics with a message on the first broken promise. The SQLite backend
//! runs it in `tests/conformance.rs`; another backend calls [`run_all`] the same way.
// A conformance check is a test: a failed unwrap is a failed check.
#![allow(clippy::unwrap_used)]

use automerge::ChangeHash;
use doorstep_core::{DeviceId, HouseholdId, StationId, WorkerId};

use super::console::{LoginFailures, UtcOffset};

use super::*;

mod blobs;
pub use blobs::*;

fn hash(n: u8) -> ChangeHash {
    ChangeHash([n; 32])
}

fn append(doc: HouseholdId, changes: &[(u8, &[u8])]) -> DocAppend {
    DocAppend {
        doc,
        kind: doorstep_core::doc::DocKind::Household,
        changes: changes
            .iter()
            .map(|(h, b)| (hash(*h), b.to_vec()))
            .collect(),
        snapshot: None,
        cards: Vec::new(),
        expected_seq: None,
        signatures: Vec::new(),
    }
}

/// A supervisor of `station` (who reads the whole log), made before the station holds a
/// document so that no scope entry is written for them.
fn supervisor<S: ServerStore>(s: &S, station: StationId) -> WorkerId {
    let w = s.add_worker(station, "S01", 1).unwrap();
    assert_eq!(
        s.set_role(w, doorstep_core::Role::Supervisor, 1).unwrap(),
        Rescoped::default()
    );
    w
}

fn reader(device: DeviceId, worker: WorkerId) -> LogReader {
    LogReader { device, worker }
}

/// Run every check, each on a fresh store.
pub fn run_all<S: ServerStore>(new_store: &dyn Fn() -> S) {
    credentials_lifecycle(&new_store());
    worker_labels_change_in_place(&new_store());
    sequences_are_gap_free_per_station_and_deduplicated(&new_store());
    log_reads_skip_own_changes_and_page_by_budget(&new_store());
    documents_load_from_snapshot_and_later_changes(&new_store());
    documents_belong_to_one_station(&new_store());
    epochs(&new_store());
    cards_are_indexed_per_document(&new_store());
    concurrent_commits_are_gap_free_and_refusals_leave_no_trace(&new_store());
    console_read_model_lists_filters_and_searches(&new_store());
    console_search_entries_are_replaced_one_record_at_a_time(&new_store());
    console_accounts_sessions_throttle_and_access_log(&new_store());
    county_accounts_read_the_stations_granted(&new_store());
    erasure_removes_a_household_and_keeps_the_log_gap_free(&new_store());
    redaction_replaces_a_household_and_keeps_the_log_gap_free(&new_store());
    scopes_follow_assignments_teams_and_roles(&new_store());
    a_page_meeting_many_households_sees_exactly_the_scope(&new_store());
    device_accesses_are_kept_once_listed_with_console_reads_and_erased(&new_store());
    station_work_is_in_every_workers_scope_and_never_reassigned(&new_store());
    retirement_takes_households_off_every_phone_and_reopening_brings_them_back(&new_store());
    blobs_are_chunked_checked_limited_and_erased(&new_store());
    redaction_releases_the_blobs_its_generation_no_longer_names(&new_store());
    sweeps_delete_partial_uploads_untouched_since_the_cutoff(&new_store());
    blobs_are_kept_per_station(&new_store());
}

pub fn credentials_lifecycle<S: ServerStore>(s: &S) {
    let station = s.create_station("站", 1).unwrap();
    let worker = s.add_worker(station, "W01", 1).unwrap();
    assert!(matches!(
        s.add_worker(doorstep_core::StationId::new(), "x", 1),
        Err(StoreError::NotFound(_))
    ));
    let device = s.enroll_device(worker, "codehash", 100).unwrap();
    assert_eq!(
        s.redeem_code("codehash", "tok", 101).unwrap(),
        None,
        "expired code refused"
    );
    let device2 = s.enroll_device(worker, "code2", 1000).unwrap();
    let auth = s
        .redeem_code("code2", "tokenhash", 500)
        .unwrap()
        .expect("valid code redeems");
    assert_eq!(
        (auth.device, auth.worker, auth.station, auth.revoked),
        (device2, worker, station, false)
    );
    assert_eq!(
        s.redeem_code("code2", "other", 501).unwrap(),
        None,
        "a code works once"
    );
    assert_eq!(s.authenticate("tokenhash").unwrap(), Some(auth));
    assert_eq!(s.authenticate("nope").unwrap(), None);
    // The last sync: recorded, never moved back, none for a device that never synced.
    let last = |d: DeviceId| {
        s.station_devices(station, 0)
            .unwrap()
            .into_iter()
            .find(|r| r.device == d)
            .unwrap()
            .last_sync
    };
    assert_eq!(last(device2), None);
    s.note_sync(device2, 550, 7).unwrap();
    s.note_sync(device2, 540, 3).unwrap();
    assert_eq!(
        s.served_seq(device2).unwrap(),
        7,
        "the served position only moves forward"
    );
    assert_eq!(s.served_seq(DeviceId::new()).unwrap(), 0);
    assert_eq!(last(device2), Some(550));
    assert_eq!(last(device), None);
    s.note_sync(DeviceId::new(), 550, 1).unwrap();
    assert!(s.revoke_device(device2, 600).unwrap());
    assert!(s.authenticate("tokenhash").unwrap().unwrap().revoked);
    assert!(!s.revoke_device(DeviceId::new(), 600).unwrap());
    let _ = device;
}

/// A label changes in place, for its own worker only; the worker's station comes back (the
/// caller publishes the label in that station's document).
pub fn worker_labels_change_in_place<S: ServerStore>(s: &S) {
    let (a, b) = (
        s.create_station("A", 1).unwrap(),
        s.create_station("B", 1).unwrap(),
    );
    let w1 = s.add_worker(a, "W01", 1).unwrap();
    let w2 = s.add_worker(a, "W02", 1).unwrap();
    let other = s.add_worker(b, "W02", 1).unwrap();
    assert_eq!(s.set_worker_label(w2, "W00 / 张丽").unwrap(), a);
    assert_eq!(
        s.worker_labels(a).unwrap(),
        vec![(w2, "W00 / 张丽".to_owned()), (w1, "W01".to_owned())],
        "changed in place, ordered by label"
    );
    assert_eq!(
        s.worker_labels(b).unwrap(),
        vec![(other, "W02".to_owned())],
        "another station's worker keeps its label"
    );
    assert_eq!(
        s.set_worker_label(w2, "W00 / 张丽").unwrap(),
        a,
        "the same label again"
    );
    assert!(matches!(
        s.set_worker_label(WorkerId::new(), "W09"),
        Err(StoreError::NotFound("worker"))
    ));
    assert_eq!(s.worker_labels(a).unwrap().len(), 2, "no worker made");
    // Devices keep working under the renamed worker.
    let device = s.enroll_device(w2, "code", 10).unwrap();
    let auth = s.redeem_code("code", "tok", 5).unwrap().unwrap();
    assert_eq!((auth.device, auth.worker, auth.station), (device, w2, a));
}

pub fn sequences_are_gap_free_per_station_and_deduplicated<S: ServerStore>(s: &S) {
    let (a, b) = (
        s.create_station("A", 1).unwrap(),
        s.create_station("B", 1).unwrap(),
    );
    let sup = supervisor(s, a);
    let dev = DeviceId::new();
    let (d1, d2, d3) = (HouseholdId::new(), HouseholdId::new(), HouseholdId::new());
    assert_eq!(s.high_water(a).unwrap(), 0);
    assert_eq!(
        s.commit(
            a,
            dev,
            &[
                append(d1, &[(1, b"x"), (2, b"y")]),
                append(d2, &[(3, b"z")])
            ]
        )
        .unwrap(),
        vec![2, 3],
        "each document's last sequence"
    );
    assert_eq!(s.high_water(a).unwrap(), 3);
    assert_eq!(
        s.commit(b, dev, &[append(d3, &[(4, b"w")])]).unwrap(),
        vec![1],
        "stations count separately"
    );
    // A retried push: known hashes get no new sequence number.
    assert_eq!(
        s.commit(a, dev, &[append(d1, &[(2, b"y"), (5, b"v")])])
            .unwrap(),
        vec![4]
    );
    // Optimistic concurrency: a commit validated against an older state of the document fails.
    let mut stale = append(d1, &[(6, b"u")]);
    stale.expected_seq = Some(2);
    assert!(matches!(
        s.commit(a, dev, &[stale]),
        Err(StoreError::Conflict(_))
    ));
    let mut current = append(d1, &[(6, b"u")]);
    current.expected_seq = Some(4);
    assert_eq!(s.commit(a, dev, &[current]).unwrap(), vec![5]);
    let page = s
        .read_log(a, 0, reader(DeviceId::new(), sup), usize::MAX)
        .unwrap();
    let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(page.entries[3].bytes, b"v");
    assert_eq!((page.last_seq, page.more), (5, false));
    assert_eq!(s.high_water(a).unwrap(), 5);
}

pub fn log_reads_skip_own_changes_and_page_by_budget<S: ServerStore>(s: &S) {
    let st = s.create_station("A", 1).unwrap();
    let sup = supervisor(s, st);
    let (me, other) = (DeviceId::new(), DeviceId::new());
    let d = HouseholdId::new();
    s.commit(st, me, &[append(d, &[(1, &[0; 100]), (2, &[0; 100])])])
        .unwrap();
    s.commit(
        st,
        other,
        &[append(d, &[(3, &[0; 100]), (4, &[0; 100]), (5, &[0; 100])])],
    )
    .unwrap();
    let mine_skipped = s.read_log(st, 0, reader(me, sup), usize::MAX).unwrap();
    assert_eq!(
        mine_skipped
            .entries
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert_eq!(mine_skipped.last_seq, 5);
    let only_mine = s.read_log(st, 2, reader(other, sup), usize::MAX).unwrap();
    assert!(only_mine.entries.is_empty());
    assert_eq!(
        only_mine.last_seq, 5,
        "the cursor moves past skipped entries"
    );
    let page = s.read_log(st, 0, reader(me, sup), 150).unwrap();
    assert_eq!(page.entries.len(), 1, "budget cuts the page");
    assert!(page.more);
    assert_eq!(page.last_seq, 3);
    let tiny = s.read_log(st, 0, reader(me, sup), 1).unwrap();
    assert_eq!(
        tiny.entries.len(),
        1,
        "at least one entry, whatever the budget"
    );
    let rest = s
        .read_log(st, page.last_seq, reader(me, sup), usize::MAX)
        .unwrap();
    assert_eq!(
        rest.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [4, 5]
    );
}

pub fn documents_load_from_snapshot_and_later_changes<S: ServerStore>(s: &S) {
    let st = s.create_station("A", 1).unwrap();
    let dev = DeviceId::new();
    let d = HouseholdId::new();
    assert_eq!(s.load_document(d).unwrap(), None);
    s.commit(st, dev, &[append(d, &[(1, b"a"), (2, b"b")])])
        .unwrap();
    let doc = s.load_document(d).unwrap().unwrap();
    assert_eq!(
        (doc.snapshot, doc.changes, doc.changes_since_snapshot),
        (None, vec![b"a".to_vec(), b"b".to_vec()], 2)
    );
    let mut with_snap = append(d, &[(3, b"c")]);
    with_snap.snapshot = Some(b"SNAP".to_vec());
    s.commit(st, dev, &[with_snap]).unwrap();
    s.commit(st, dev, &[append(d, &[(4, b"d")])]).unwrap();
    let doc = s.load_document(d).unwrap().unwrap();
    assert_eq!(doc.snapshot.as_deref(), Some(&b"SNAP"[..]));
    assert_eq!(
        doc.changes,
        vec![b"d".to_vec()],
        "only changes after the snapshot"
    );
    assert_eq!(doc.changes_since_snapshot, 1);
    assert_eq!(doc.station, Some(st));
}

pub fn documents_belong_to_one_station<S: ServerStore>(s: &S) {
    let (a, b) = (
        s.create_station("A", 1).unwrap(),
        s.create_station("B", 1).unwrap(),
    );
    let dev = DeviceId::new();
    let mut ids: Vec<HouseholdId> = (0..5).map(|_| HouseholdId::new()).collect();
    for id in &ids {
        s.commit(
            a,
            dev,
            &[append(*id, &[(ids.len() as u8, id.as_uuid().as_bytes())])],
        )
        .ok();
    }
    ids.sort();
    assert_eq!(s.document_station(ids[0]).unwrap(), Some(a));
    assert_eq!(s.document_station(HouseholdId::new()).unwrap(), None);
    let before = s.high_water(b).unwrap();
    assert!(matches!(
        s.commit(b, dev, &[append(ids[0], &[(99, b"x")])]),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.high_water(b).unwrap(),
        before,
        "a refused commit appends nothing"
    );
    assert_eq!(s.list_documents(a, None, 100, None).unwrap(), ids);
    assert_eq!(
        s.list_documents(a, Some(ids[1]), 2, None).unwrap(),
        ids[2..4].to_vec()
    );
    assert!(s.list_documents(b, None, 100, None).unwrap().is_empty());
}

pub fn epochs<S: ServerStore>(s: &S) {
    let e = s.epoch().unwrap();
    assert_eq!(s.epoch().unwrap(), e, "stable");
    let n = s.new_epoch().unwrap();
    assert_ne!(n, e);
    assert_eq!(s.epoch().unwrap(), n);
}

pub fn cards_are_indexed_per_document<S: ServerStore>(s: &S) {
    use doorstep_core::{CardIssuanceId, WorkerId};
    let st = s.create_station("A", 1).unwrap();
    let dev = DeviceId::new();
    let (h1, h2) = (HouseholdId::new(), HouseholdId::new());
    let w = WorkerId::new();
    let row = |h, serial: &str, status: &str, at| CardRow {
        card: CardIssuanceId::new(),
        household: h,
        serial: serial.into(),
        status: status.into(),
        issued_by: w,
        issued_at: at,
    };
    let mut a1 = append(h1, &[(1, b"x")]);
    a1.cards = vec![row(h1, "HG-000001-3", "issued", 10)];
    let mut a2 = append(h2, &[(2, b"y")]);
    a2.cards = vec![
        row(h2, "HG-000001-3", "issued", 20),
        row(h2, "HG-000002-1", "issued", 30),
    ];
    s.commit(st, dev, &[a1, a2]).unwrap();
    assert_eq!(s.document_seq(h2).unwrap(), 2);
    assert_eq!(s.document_seq(HouseholdId::new()).unwrap(), 0);
    assert_eq!(s.cards_by_serial(st, "HG-000001-3").unwrap().len(), 2);
    assert_eq!(s.duplicate_cards(st).unwrap().len(), 2);
    assert_eq!(s.cards_issued_by(st, w, 15, 30).unwrap().len(), 2);
    // The document's cards are replaced whole: voiding one clears the duplicate.
    let mut again = append(h2, &[(3, b"z")]);
    again.cards = vec![
        row(h2, "HG-000001-3", "void", 20),
        row(h2, "HG-000002-1", "issued", 30),
    ];
    s.commit(st, dev, &[again]).unwrap();
    assert!(s.duplicate_cards(st).unwrap().is_empty());
}

/// Many threads commit at once to two stations, some of their commits refused (validated
/// against an older state of the document, or aimed at another station's document): each
/// refused commit gets its own `Conflict` and leaves nothing behind, every accepted one is
/// in its station's log exactly once, under gap-free sequence numbers in commit order, and
/// the sequence each caller was told is where its changes are.
pub fn concurrent_commits_are_gap_free_and_refusals_leave_no_trace<S: ServerStore>(s: &S) {
    const THREADS: usize = 8;
    const COMMITS: usize = 12;
    let stations = [
        s.create_station("A", 1).unwrap(),
        s.create_station("B", 1).unwrap(),
    ];
    let sups = [supervisor(s, stations[0]), supervisor(s, stations[1])];
    let dev = DeviceId::new();
    // A document of station B that station A's commits may try to write to.
    let foreign = HouseholdId::new();
    s.commit(stations[1], dev, &[append(foreign, &[(0, b"b")])])
        .unwrap();
    // Each thread: its own document in its station, commits of two changes each.
    // Per thread, per commit: station index, outcome, the changes' bytes.
    type Outcome = (usize, Result<u64, StoreError>, Vec<Vec<u8>>);
    let outcomes: Vec<Vec<Outcome>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let station = stations[t % 2];
                    let doc = HouseholdId::new();
                    let mut expected = 0;
                    let mut out = Vec::new();
                    for k in 0..COMMITS {
                        let bytes: Vec<Vec<u8>> = (0..2)
                            .map(|j| format!("t{t} k{k} j{j}").into_bytes())
                            .collect();
                        let changes = bytes
                            .iter()
                            .enumerate()
                            .map(|(j, b)| {
                                let mut h = [0u8; 32];
                                h[..3].copy_from_slice(&[t as u8, k as u8, j as u8]);
                                h[3] = 1;
                                (ChangeHash(h), b.clone())
                            })
                            .collect();
                        let (target, expected_seq) = match k % 4 {
                            // Validated against a state the document has moved on from.
                            1 if k > 1 => (doc, Some(expected.max(1) - 1)),
                            // Another station's document.
                            3 if t % 2 == 0 => (foreign, None),
                            _ => (doc, Some(expected)),
                        };
                        let a = DocAppend {
                            doc: target,
                            kind: doorstep_core::doc::DocKind::Household,
                            changes,
                            snapshot: None,
                            cards: Vec::new(),
                            expected_seq,
                            signatures: Vec::new(),
                        };
                        let r = s.commit(station, dev, &[a]).map(|last| last[0]);
                        if let Ok(last) = r {
                            expected = last;
                        }
                        out.push((t % 2, r, bytes));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, station) in stations.iter().enumerate() {
        let log = s
            .read_log(*station, 0, reader(DeviceId::new(), sups[i]), usize::MAX)
            .unwrap();
        let seqs: Vec<u64> = log.entries.iter().map(|e| e.seq).collect();
        let n = seqs.len() as u64;
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "gap-free, in order");
        assert_eq!(s.high_water(*station).unwrap(), n);
        let mut accepted = 0;
        for (_, r, bytes) in outcomes.iter().flatten().filter(|(st, _, _)| *st == i) {
            let at: Vec<&LogEntry> = log
                .entries
                .iter()
                .filter(|e| bytes.contains(&e.bytes))
                .collect();
            match r {
                Ok(last) => {
                    accepted += 1;
                    assert_eq!(at.len(), 2, "an accepted commit is in the log once");
                    assert_eq!(at[1].seq, *last, "the caller was told where");
                    assert_eq!(
                        at[0].seq + 1,
                        at[1].seq,
                        "one commit's changes are adjacent"
                    );
                }
                Err(StoreError::Conflict(_)) => {
                    assert!(at.is_empty(), "a refused commit leaves nothing behind")
                }
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert!(accepted > 0);
    }
    let refused = outcomes
        .iter()
        .flatten()
        .filter(|(_, r, _)| r.is_err())
        .count();
    assert_eq!(
        refused,
        THREADS * 2 + THREADS / 2 * 3,
        "every stale or foreign commit, and only those, refused"
    );
}

pub(crate) fn read_model_doc(
    station: StationId,
    worker: WorkerId,
    code: &str,
    village: &str,
    categories: &[&str],
    text: &str,
    seq: u64,
) -> console::ReadModelDoc {
    let doc = HouseholdId::new();
    console::ReadModelDoc {
        household: console::HouseholdRow {
            doc,
            station,
            seq,
            code: code.into(),
            village: village.into(),
            status: "active".into(),
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            visits: 1,
            last_visit: Some("2026-11-29".into()),
            open_needs: 1,
            conflicts: 0,
        },
        texts: vec![console::SearchText::new("household", text)],
        visits: vec![console::VisitRow {
            doc,
            visit: uuid::Uuid::now_v7(),
            date: "2026-11-29".into(),
            kind: "home".into(),
            status: "draft".into(),
            workers: vec![worker],
        }],
        follow_ups: vec![console::FollowUpRow {
            doc,
            follow_up: uuid::Uuid::now_v7(),
            what: "送申请表".into(),
            due: "2026-12-01".into(),
            assignee: worker,
            status: "open".into(),
        }],
        facts: vec![console::FactRow {
            doc,
            fact: "need".into(),
            item: uuid::Uuid::now_v7(),
            day: "2026-11-30".into(),
            dim1: "医疗救助".into(),
            dim2: "open".into(),
        }],
    }
}

pub fn console_read_model_lists_filters_and_searches<S: ServerStore>(s: &S) {
    use console::HouseholdFilter;
    let station = s.create_station("站", 1).unwrap();
    let other = s.create_station("另一站", 1).unwrap();
    let worker = s.add_worker(station, "W01", 1).unwrap();
    let a = read_model_doc(
        station,
        worker,
        "HH-000001",
        "石桥村",
        &["低保", "独居"],
        "孩子需要心理疏导",
        3,
    );
    let b = read_model_doc(
        station,
        worker,
        "HH-000002",
        "柳湾村",
        &["低保"],
        "需要医疗救助",
        4,
    );
    let c = read_model_doc(other, worker, "HH-000003", "石桥村", &[], "心理疏导", 5);
    for d in [&a, &b, &c] {
        assert!(s.put_read_model(d).unwrap());
    }
    let list = |f: HouseholdFilter| -> Vec<String> {
        s.households(station, &HouseholdFilter { limit: 10, ..f })
            .unwrap()
            .into_iter()
            .map(|h| h.code)
            .collect()
    };
    assert_eq!(
        list(HouseholdFilter::default()),
        ["HH-000001", "HH-000002"],
        "one station, by code"
    );
    for q in ["心理疏导", "心理", "疏"] {
        assert_eq!(
            list(HouseholdFilter {
                text: Some(q.into()),
                ..Default::default()
            }),
            ["HH-000001"],
            "search {q}"
        );
    }
    assert!(list(HouseholdFilter {
        text: Some("\"%_".into()),
        ..Default::default()
    })
    .is_empty());
    assert_eq!(
        list(HouseholdFilter {
            category: Some("低保".into()),
            ..Default::default()
        }),
        ["HH-000001", "HH-000002"]
    );
    assert_eq!(
        list(HouseholdFilter {
            category: Some("独居".into()),
            ..Default::default()
        }),
        ["HH-000001"]
    );
    assert!(
        list(HouseholdFilter {
            category: Some("低".into()),
            ..Default::default()
        })
        .is_empty(),
        "whole categories only"
    );
    assert_eq!(
        list(HouseholdFilter {
            village: Some("柳湾村".into()),
            ..Default::default()
        }),
        ["HH-000002"]
    );
    let row = &s
        .households(
            station,
            &HouseholdFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap()[0];
    assert_eq!(row, &a.household, "a row reads back as written");

    // An older state never replaces a newer one; a newer one replaces rows and search text.
    let mut stale = a.clone();
    stale.household.seq = 2;
    stale.household.code = "HH-STALE".into();
    assert!(!s.put_read_model(&stale).unwrap());
    let mut newer = a.clone();
    newer.household.seq = 9;
    newer.texts = vec![console::SearchText::new("household", "已经解决")];
    newer.visits.clear();
    assert!(s.put_read_model(&newer).unwrap());
    assert!(list(HouseholdFilter {
        text: Some("心理".into()),
        ..Default::default()
    })
    .is_empty());
    assert_eq!(
        list(HouseholdFilter {
            text: Some("解决".into()),
            ..Default::default()
        }),
        ["HH-000001"]
    );
    assert_eq!(
        s.visits_between(station, "2026-11-01", "2026-11-30")
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.open_follow_ups(station, "2026-12-01").unwrap().len(), 2);
    assert!(s.open_follow_ups(station, "2026-11-30").unwrap().is_empty());
    assert_eq!(
        s.worker_labels(station).unwrap(),
        vec![(worker, "W01".to_owned())]
    );
    let mut seqs = s.read_model_seqs(station).unwrap();
    seqs.sort_by_key(|(_, q)| *q);
    assert_eq!(seqs, vec![(b.household.doc, 4), (a.household.doc, 9)]);

    // Several documents in one call: each kept or refused on its own, flags in the order
    // given (the stale one refused, the newer one written).
    let mut b_newer = b.clone();
    b_newer.household.seq = 10;
    b_newer.texts = vec![console::SearchText::new("household", "医疗救助已申请")];
    assert_eq!(
        s.put_read_models(&[stale.clone(), b_newer]).unwrap(),
        [false, true]
    );
    assert_eq!(
        list(HouseholdFilter {
            text: Some("已申请".into()),
            ..Default::default()
        }),
        ["HH-000002"]
    );
    let mut seqs = s.read_model_seqs(station).unwrap();
    seqs.sort_by_key(|(_, q)| *q);
    assert_eq!(seqs, vec![(a.household.doc, 9), (b.household.doc, 10)]);
    // Both replaced in one call: each search row is the new one, the old ones gone.
    let (mut a3, mut b3) = (a.clone(), b.clone());
    (a3.household.seq, a3.texts) = (
        11,
        vec![console::SearchText::new("household", "第三次回访")],
    );
    (b3.household.seq, b3.texts) = (
        12,
        vec![console::SearchText::new("household", "第四次回访")],
    );
    assert_eq!(s.put_read_models(&[b3, a3]).unwrap(), [true, true]);
    let search = |q: &str| {
        list(HouseholdFilter {
            text: Some(q.into()),
            ..Default::default()
        })
    };
    assert!(search("已申请").is_empty() && search("解决").is_empty());
    assert_eq!(search("第三次"), ["HH-000001"]);
    assert_eq!(search("第四次"), ["HH-000002"]);
    assert_eq!(search("回访"), ["HH-000001", "HH-000002"]);

    // Station work (ADR 0021): its row and facts, never replaced by an older state, listed
    // with the households' sequences, counted by the report's facts.
    let activity = HouseholdId::new();
    let work = |seq: u64, day: &str| console::WorkRow {
        doc: activity,
        station,
        seq,
        kind: "activity".into(),
        facts: vec![console::FactRow {
            doc: activity,
            fact: "activity".into(),
            item: *activity.as_uuid(),
            day: day.into(),
            dim1: "activity.safety.traffic".into(),
            dim2: "45".into(),
        }],
    };
    assert!(s.put_work(&work(6, "2026-11-20")).unwrap());
    assert!(!s.put_work(&work(5, "2026-11-02")).unwrap(), "older");
    let facts = s
        .facts_between(station, "2026-11-01", "2026-11-30")
        .unwrap();
    let days: Vec<&str> = facts
        .iter()
        .filter(|f| f.fact == "activity")
        .map(|f| f.day.as_str())
        .collect();
    assert_eq!(days, ["2026-11-20"]);
    assert!(s.put_work(&work(7, "2026-11-21")).unwrap(), "newer");
    let facts = s
        .facts_between(station, "2026-11-01", "2026-11-30")
        .unwrap();
    assert_eq!(facts.iter().filter(|f| f.fact == "activity").count(), 1);
    assert!(s.read_model_seqs(station).unwrap().contains(&(activity, 7)));
    // Listed by kind, for the console's pages of station work; another station's not.
    let resource = HouseholdId::new();
    assert!(s
        .put_work(&console::WorkRow {
            doc: resource,
            station,
            seq: 8,
            kind: "resource".into(),
            facts: Vec::new(),
        })
        .unwrap());
    assert_eq!(s.work_documents(station, "activity").unwrap(), [activity]);
    assert_eq!(s.work_documents(station, "resource").unwrap(), [resource]);
    assert!(s.work_documents(station, "survey").unwrap().is_empty());
    assert!(s.work_documents(other, "activity").unwrap().is_empty());

    s.clear_read_model(station).unwrap();
    assert!(list(HouseholdFilter::default()).is_empty());
    assert_eq!(
        s.read_model_seqs(other).unwrap().len(),
        1,
        "other stations are kept"
    );
}

/// A household's search entries, one per record: a refresh with one record's text changed,
/// one added and one gone finds the new texts and none of the old; unchanged ones are found
/// still; the same household given twice in one call keeps its newest state; a query is
/// found inside one record, never across two (a text is never matched across records).
pub fn console_search_entries_are_replaced_one_record_at_a_time<S: ServerStore>(s: &S) {
    use console::{HouseholdFilter, SearchText};
    let station = s.create_station("站", 1).unwrap();
    let worker = s.add_worker(station, "W01", 1).unwrap();
    let mut a = read_model_doc(station, worker, "HH-000001", "石桥村", &[], "石桥村", 3);
    a.texts = vec![
        SearchText::new("household", "hh-000001\n石桥村"),
        SearchText::new("visit:1", "孩子手臂有淤青\n需要上报"),
        SearchText::new("visit:2", "第二次家访：情况稳定"),
        SearchText::new("need:1", "医疗\n住院费用报销"),
    ];
    assert!(s.put_read_model(&a).unwrap());
    let found = |q: &str| -> Vec<String> {
        s.households(
            station,
            &HouseholdFilter {
                text: Some(q.into()),
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .map(|h| h.code)
        .collect()
    };
    for q in [
        "手臂有淤青",
        "情况稳定",
        "住院费用",
        "HH-000001",
        "淤青",
        "稳",
    ] {
        assert_eq!(found(q), ["HH-000001"], "{q}");
    }
    // Every trigram of this is in the household, in two records, but the text is in none.
    assert!(found("上报第二次").is_empty());
    let mut b = a.clone();
    b.household.seq = 4;
    b.texts = vec![
        SearchText::new("household", "hh-000001\n石桥村"),
        SearchText::new("visit:1", "孩子手臂的伤已经好了"),
        SearchText::new("visit:3", "第三次家访：已转介"),
    ];
    let mut c = b.clone();
    c.household.seq = 5;
    c.texts.push(SearchText::new("follow_up:1", "下月回访"));
    // The same household twice in one call: the newer state is what stays.
    assert_eq!(s.put_read_models(&[c, b]).unwrap(), [true, false]);
    for q in ["淤青", "情况稳定", "住院费用", "需要上报"] {
        assert!(found(q).is_empty(), "{q} is gone");
    }
    for q in ["伤已经好了", "已转介", "石桥村", "下月回访"] {
        assert_eq!(found(q), ["HH-000001"], "{q}");
    }
}

pub fn console_accounts_sessions_throttle_and_access_log<S: ServerStore>(s: &S) {
    let station = s.create_station("站", 1).unwrap();
    assert!(matches!(
        s.add_account(StationId::new(), "zhang", "h", 1),
        Err(StoreError::NotFound(_))
    ));
    let id = s
        .add_account(station, "zhang", "$argon2id$hash", 1)
        .unwrap();
    assert!(matches!(
        s.add_account(station, "zhang", "h", 1),
        Err(StoreError::Conflict(_))
    ));
    let a = s.account_by_login("zhang").unwrap().unwrap();
    assert_eq!(
        (a.id, a.role, a.password_hash.as_str(), a.disabled),
        (
            id,
            console::AccountRole::Supervisor(station),
            "$argon2id$hash",
            false
        )
    );
    assert!(s.account_by_login("li").unwrap().is_none());

    s.create_session("hash1", id, "csrf1", 10, 100).unwrap();
    let live = s.session("hash1", 50).unwrap().unwrap();
    assert_eq!(
        (live.account.id, live.csrf.as_str(), live.expires_at),
        (id, "csrf1", 100)
    );
    assert!(s.session("hash1", 100).unwrap().is_none(), "expired");
    assert!(s.session("nope", 50).unwrap().is_none());
    s.delete_session("hash1").unwrap();
    assert!(s.session("hash1", 50).unwrap().is_none(), "deleted");

    // Failed logins per login and client, per client, per login (ADR 0028).
    let f = |pair, client, login| LoginFailures {
        login_from_client: pair,
        client,
        login,
    };
    assert_eq!(
        s.login_failed("zhang", "192.0.2.1", 10, 0).unwrap(),
        f(1, 1, 1)
    );
    assert_eq!(
        s.login_failed("zhang", "192.0.2.1", 20, 0).unwrap(),
        f(2, 2, 2)
    );
    assert_eq!(
        s.login_failed("li", "192.0.2.1", 20, 0).unwrap(),
        f(1, 3, 1)
    );
    assert_eq!(
        s.login_failed("zhang", "2001:db8::/64", 20, 0).unwrap(),
        f(1, 1, 3)
    );
    assert_eq!(
        s.login_failures("zhang", "192.0.2.1", 0).unwrap(),
        f(2, 3, 3)
    );
    assert_eq!(
        s.login_failures("zhang", "198.51.100.1", 0).unwrap(),
        f(0, 0, 3)
    );
    assert_eq!(
        s.login_failures("zhang", "192.0.2.1", 15).unwrap(),
        f(1, 2, 2),
        "only inside the window"
    );
    assert_eq!(
        s.login_failed("wang", "198.51.100.1", 30, 15).unwrap(),
        f(1, 1, 1),
        "older failures are forgotten"
    );
    assert_eq!(
        s.login_failures("zhang", "192.0.2.1", 0).unwrap(),
        f(1, 2, 2)
    );

    // A station's time zone: Beijing time until set; an unknown station is not found.
    assert_eq!(s.station_zone(station).unwrap(), UtcOffset::BEIJING);
    s.set_station_zone(station, UtcOffset::UTC).unwrap();
    assert_eq!(s.station_zone(station).unwrap(), UtcOffset::UTC);
    let west = UtcOffset::from_minutes(-330).unwrap();
    s.set_station_zone(station, west).unwrap();
    assert_eq!(s.station_zone(station).unwrap(), west);
    let unknown = StationId::new();
    assert!(matches!(
        s.station_zone(unknown),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.set_station_zone(unknown, west),
        Err(StoreError::NotFound(_))
    ));
    s.set_station_zone(station, UtcOffset::BEIJING).unwrap();

    // Devices of the station: waiting for a code, enrolled, revoked, the console's own.
    let worker = s.add_worker(station, "W01", 1).unwrap();
    let waiting = s.enroll_device(worker, "code-a", 1_000).unwrap();
    let enrolled = s.enroll_device(worker, "code-b", 1_000).unwrap();
    assert!(s.redeem_code("code-b", "token-b", 10).unwrap().is_some());
    let revoked = s.enroll_device(worker, "code-c", 1_000).unwrap();
    assert!(s.revoke_device(revoked, 20).unwrap());
    let console_device = s.enroll_device(worker, "code-d", 0).unwrap();
    s.set_account_signer(
        id,
        &console::AccountSigner {
            worker,
            device: console_device,
            actor: vec![7; 16],
            seed: [9; 32],
        },
    )
    .unwrap();
    assert_eq!(s.account_signer(id).unwrap().map(|k| k.seed), Some([9; 32]));
    let rows = s.station_devices(station, 500).unwrap();
    assert_eq!(rows.len(), 4);
    let row = |d: DeviceId| rows.iter().find(|r| r.device == d).unwrap();
    assert!(row(waiting).code_waiting && row(waiting).enrolled_at.is_none());
    assert_eq!(row(enrolled).enrolled_at, Some(10));
    assert!(!row(enrolled).code_waiting);
    assert_eq!(row(revoked).revoked_at, Some(20));
    assert!(row(console_device).console && !row(console_device).code_waiting);
    assert!(
        !s.station_devices(station, 2_000)
            .unwrap()
            .iter()
            .any(|r| r.code_waiting),
        "codes expire"
    );

    s.log_access(id, station, "dashboard", None, 5).unwrap();
    s.log_access(id, station, "household", Some("hh-id"), 6)
        .unwrap();
    let log = s.access_log(station, 10).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].what.as_str(), log[0].target.as_deref(), log[0].at),
        ("household", Some("hh-id"), 6)
    );
    assert_eq!(log[1].account, id);
    assert_eq!(
        log[1].login, "zhang",
        "the account's login comes with each entry"
    );
    s.log_access(id, station, "household", Some("other-id"), 7)
        .unwrap();
    let of = s.access_log_of(station, "hh-id", 10).unwrap();
    assert_eq!(of.len(), 1, "only the accesses to that household");
    assert_eq!((of[0].what.as_str(), of[0].at), ("household", 6));
    assert!(s.access_log_of(station, "absent", 10).unwrap().is_empty());
}

/// County console accounts (ADR 0020): no station of their own, the stations granted to
/// them, grants and revocations, listed with the supervisors' accounts; sessions alike.
pub fn county_accounts_read_the_stations_granted<S: ServerStore>(s: &S) {
    use console::AccountRole;
    let a = s.create_station("B 站", 1).unwrap();
    let b = s.create_station("A 站", 1).unwrap();
    let c = s.create_station("C 站", 1).unwrap();
    let supervisor = s.add_account(a, "zhang", "h-s", 1).unwrap();

    // An unknown station makes nothing; a taken login neither (a supervisor's or a county's).
    assert!(matches!(
        s.add_county_account("li", "h", &[a, StationId::new()], 2),
        Err(StoreError::NotFound(_))
    ));
    assert!(s.account_by_login("li").unwrap().is_none(), "nothing made");
    assert!(matches!(
        s.add_county_account("zhang", "h", &[a], 2),
        Err(StoreError::Conflict(_))
    ));
    let county = s.add_county_account("li", "h-c", &[a, b, a], 2).unwrap();
    assert!(matches!(
        s.add_account(a, "li", "h", 2),
        Err(StoreError::Conflict(_))
    ));
    let read = s.account_by_login("li").unwrap().unwrap();
    assert_eq!(
        (
            read.id,
            read.role,
            read.password_hash.as_str(),
            read.disabled
        ),
        (county, AccountRole::County, "h-c", false)
    );
    assert_eq!(read.supervised_station(), None);
    let sup = s.account_by_login("zhang").unwrap().unwrap();
    assert_eq!(sup.role, AccountRole::Supervisor(a));
    assert_eq!(sup.supervised_station(), Some(a));

    // The stations each reads, by name, a duplicate once.
    let names = |id| s.account_stations(id).unwrap();
    assert_eq!(
        names(county),
        vec![(b, "A 站".to_owned()), (a, "B 站".to_owned())]
    );
    assert_eq!(names(supervisor), vec![(a, "B 站".to_owned())]);
    assert!(names(console::AccountId(uuid::Uuid::new_v4())).is_empty());

    // Grant and revoke: once each; unknown station or account; never a supervisor's.
    assert!(s.grant_station(county, c, 3).unwrap());
    assert!(!s.grant_station(county, c, 4).unwrap(), "granted already");
    assert!(matches!(
        s.grant_station(county, StationId::new(), 3),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.grant_station(console::AccountId(uuid::Uuid::new_v4()), c, 3),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.grant_station(supervisor, b, 3),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.revoke_station(supervisor, a),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        names(supervisor).len(),
        1,
        "a supervisor keeps her one station"
    );
    assert_eq!(names(county).len(), 3);
    assert!(s.revoke_station(county, a).unwrap());
    assert!(!s.revoke_station(county, a).unwrap(), "revoked already");
    assert_eq!(
        names(county).iter().map(|(st, _)| *st).collect::<Vec<_>>(),
        vec![b, c]
    );

    // Listed with their roles and stations, by login.
    let all = s.accounts().unwrap();
    let listed: Vec<_> = all
        .iter()
        .map(|l| {
            let mut st = l.stations.clone();
            st.sort();
            (l.account.login.as_str(), l.account.role, st)
        })
        .collect();
    let mut bc = vec![b, c];
    bc.sort();
    assert_eq!(
        listed,
        vec![
            ("li", AccountRole::County, bc),
            ("zhang", AccountRole::Supervisor(a), vec![a]),
        ]
    );

    // A county account's session reads back as county; its reads are logged in the station
    // read, with its login, beside the supervisor's.
    s.create_session("county-session", county, "csrf-c", 10, 100)
        .unwrap();
    let live = s.session("county-session", 50).unwrap().unwrap();
    assert_eq!(
        (live.account.id, live.account.role),
        (county, AccountRole::County)
    );
    s.log_access(county, b, "household", Some("hh-b"), 11)
        .unwrap();
    s.log_access(supervisor, a, "dashboard", None, 12).unwrap();
    let in_b = s.accesses(b, None, 10).unwrap();
    assert_eq!(in_b.len(), 1, "only the station read");
    assert_eq!(
        in_b[0].by,
        console::Accessor::Console {
            account: county,
            login: "li".to_owned()
        }
    );
    assert_eq!(s.access_log_of(b, "hh-b", 10).unwrap()[0].account, county);
    assert!(s
        .access_log(a, 10)
        .unwrap()
        .iter()
        .all(|e| e.account == supervisor));
}

pub fn erasure_removes_a_household_and_keeps_the_log_gap_free<S: ServerStore>(s: &S) {
    use doorstep_core::protocol::{ChangeSignature, ErasureReason};
    use doorstep_core::CardIssuanceId;
    let a = s.create_station("A", 1).unwrap();
    let b = s.create_station("B", 1).unwrap();
    let worker = s.add_worker(a, "W01", 1).unwrap();
    let sup = supervisor(s, a);
    let (dev, other) = (DeviceId::new(), DeviceId::new());
    let (d1, d2) = (HouseholdId::new(), HouseholdId::new());
    let mut a1 = append(d1, &[(1, b"name"), (2, b"note")]);
    a1.snapshot = Some(b"snapshot of d1".to_vec());
    a1.cards = vec![CardRow {
        card: CardIssuanceId::new(),
        household: d1,
        serial: "HG-000001-3".into(),
        status: "issued".into(),
        issued_by: worker,
        issued_at: 5,
    }];
    a1.signatures = vec![AuthorSignature {
        actor: vec![7; 16],
        signature: ChangeSignature {
            hash: hash(2),
            sig: [1; 64],
        },
    }];
    s.commit(a, dev, &[a1, append(d2, &[(3, b"other")])])
        .unwrap();
    let mut m = read_model_doc(a, worker, "H-1", "村", &[], "欧阳雪晴 planted", 2);
    m.household.doc = d1;
    s.put_read_model(&m).unwrap();
    let account = s.add_account(a, "sup", "hash", 1).unwrap();
    s.log_access(account, a, "household", Some(&d1.to_string()), 3)
        .unwrap();
    s.log_access(account, a, "dashboard", None, 4).unwrap();

    let record = s
        .erase_document(a, d1, ErasureReason::SubjectRequest, "cli", 10)
        .unwrap();
    assert_eq!(
        (record.station, record.doc, record.seq, record.erased_at),
        (a, d1, 4, 10),
        "the erasure takes the next sequence number"
    );
    assert_eq!(record.reason, ErasureReason::SubjectRequest);
    assert_eq!(s.load_document(d1).unwrap(), None);
    assert_eq!(s.document_station(d1).unwrap(), None);
    assert!(s.doc_signatures(d1).unwrap().is_empty());
    assert!(s.cards_by_serial(a, "HG-000001-3").unwrap().is_empty());
    assert_eq!(s.list_documents(a, None, 10, None).unwrap(), vec![d2]);
    let filter = console::HouseholdFilter {
        limit: 10,
        ..Default::default()
    };
    assert!(s.households(a, &filter).unwrap().is_empty());
    let search = console::HouseholdFilter {
        text: Some("欧阳雪晴".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(s.households(a, &search).unwrap().is_empty());
    assert!(s
        .visits_between(a, "2000-01-01", "2100-01-01")
        .unwrap()
        .is_empty());
    let access = s.access_log(a, 10).unwrap();
    assert_eq!(access.len(), 1, "the household's access entries go with it");
    assert_eq!(access[0].target, None);
    // The log: d1's entries keep their numbers but are skipped; the erasure is told once.
    let page = s.read_log(a, 0, reader(other, sup), usize::MAX).unwrap();
    assert_eq!(page.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
    assert_eq!(page.erasures, vec![record.notice()]);
    assert_eq!((page.last_seq, s.high_water(a).unwrap()), (4, 4));
    assert!(s
        .read_log(a, 4, reader(other, sup), usize::MAX)
        .unwrap()
        .erasures
        .is_empty());
    // A later erasure entry costs budget like an entry: pages still end.
    assert_eq!(
        s.read_log(a, 0, reader(other, sup), 1)
            .unwrap()
            .entries
            .len(),
        1
    );
    // The ledger, per station; idempotent; the erased id takes no new change.
    assert_eq!(s.erasure(d1).unwrap(), Some(record.clone()));
    assert_eq!(s.erasures(Some(a)).unwrap(), vec![record.clone()]);
    assert!(s.erasures(Some(b)).unwrap().is_empty());
    assert_eq!(
        s.erase_document(a, d1, ErasureReason::Other, "again", 20)
            .unwrap(),
        record
    );
    assert_eq!(s.high_water(a).unwrap(), 4);
    assert!(matches!(
        s.commit(a, dev, &[append(d1, &[(9, b"again")])]),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.erase_document(b, d2, ErasureReason::Other, "cli", 20),
        Err(StoreError::Conflict(_))
    ));
    // A household the server does not hold (a ledger re-applied to an older backup) is
    // recorded and told all the same.
    let absent = HouseholdId::new();
    let told = s
        .erase_document(a, absent, ErasureReason::CreatedInError, "cli", 30)
        .unwrap();
    assert_eq!(told.seq, 5);
    assert_eq!(
        s.read_log(a, 4, reader(other, sup), usize::MAX)
            .unwrap()
            .erasures,
        vec![told.notice()]
    );
    // Later commits continue the numbering.
    assert_eq!(
        s.commit(a, dev, &[append(d2, &[(4, b"later")])]).unwrap(),
        vec![6]
    );
    assert_eq!(s.erasures(None).unwrap().len(), 2);
}

pub fn redaction_replaces_a_household_and_keeps_the_log_gap_free<S: ServerStore>(s: &S) {
    use doorstep_core::protocol::{ChangeSignature, ErasureReason, RedactionNotice};
    let a = s.create_station("A", 1).unwrap();
    let b = s.create_station("B", 1).unwrap();
    let worker = s.add_worker(a, "W01", 1).unwrap();
    let sup = supervisor(s, a);
    let (dev, other) = (DeviceId::new(), DeviceId::new());
    let (d1, d2) = (HouseholdId::new(), HouseholdId::new());
    let mut a1 = append(d1, &[(1, b"name"), (2, b"id number")]);
    a1.signatures = vec![AuthorSignature {
        actor: vec![7; 16],
        signature: ChangeSignature {
            hash: hash(2),
            sig: [1; 64],
        },
    }];
    s.commit(a, dev, &[a1, append(d2, &[(3, b"other")])])
        .unwrap();
    let mut m = read_model_doc(a, worker, "H-1", "村", &[], "欧阳雪晴 planted", 2);
    m.household.doc = d1;
    s.put_read_model(&m).unwrap();
    let notice = RedactionNotice {
        doc: d1,
        generation: 1,
        reason: ErasureReason::SubjectRequest,
        redacted_at: 10,
        base: vec![hash(2)],
        clock: vec![(vec![7; 16], 2)],
        heads: vec![hash(9)],
        items: vec![format!("person/{}/id_number", uuid::Uuid::now_v7())],
        earlier: vec![],
    };
    // Computed from an older state than the server's: refused, nothing changes.
    assert!(matches!(
        s.redact_document(a, &notice, b"generation 1", 1, &[]),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.high_water(a).unwrap(), 3);
    let seq = s
        .redact_document(a, &notice, b"generation 1", 2, &[])
        .unwrap();
    assert_eq!(seq, 4, "the redaction takes the next sequence number");
    // The document is the generation alone; its signatures and read-model rows went.
    let stored = s.load_document(d1).unwrap().unwrap();
    assert_eq!(stored.snapshot.as_deref(), Some(&b"generation 1"[..]));
    assert!(stored.changes.is_empty());
    assert!(s.doc_signatures(d1).unwrap().is_empty());
    assert_eq!(s.document_seq(d1).unwrap(), 4);
    let search = console::HouseholdFilter {
        text: Some("欧阳雪晴".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(s.households(a, &search).unwrap().is_empty());
    // The log: d1's old entries keep their numbers but are skipped; the notice is told.
    let page = s.read_log(a, 0, reader(other, sup), usize::MAX).unwrap();
    assert_eq!(page.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
    assert_eq!(page.redactions, vec![notice.clone()]);
    assert_eq!((page.last_seq, s.high_water(a).unwrap()), (4, 4));
    // Changes on the generation follow; the document loads from it and them.
    s.commit(a, dev, &[append(d1, &[(5, b"after")])]).unwrap();
    let stored = s.load_document(d1).unwrap().unwrap();
    assert_eq!(stored.changes, vec![b"after".to_vec()]);
    // Another station's household, or one the server does not hold: refused.
    assert!(matches!(
        s.redact_document(b, &notice, b"x", 5, &[]),
        Err(StoreError::Conflict(_))
    ));
    let absent = RedactionNotice {
        doc: HouseholdId::new(),
        ..notice.clone()
    };
    assert!(matches!(
        s.redact_document(a, &absent, b"x", 0, &[]),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.high_water(a).unwrap(), 5);
}

/// A worker with one enrolled device (scope entries are written only for workers whose
/// devices may sync).
fn enrolled<S: ServerStore>(s: &S, station: StationId, label: &str) -> (WorkerId, DeviceId) {
    let w = s.add_worker(station, label, 1).unwrap();
    let code = format!("code-{label}-{station}");
    s.enroll_device(w, &code, i64::MAX).unwrap();
    let auth = s
        .redeem_code(&code, &format!("token-{label}-{station}"), 1)
        .unwrap()
        .unwrap();
    (w, auth.device)
}

/// A log page decides what a worker sees per household it meets; past a few hundred it
/// reads the worker's whole caseload instead (SQLite). Either way a page holds exactly the
/// changes of the households the worker sees — their own, their team's, the station's work
/// — less those retired from the phones, whatever the page's size.
pub fn a_page_meeting_many_households_sees_exactly_the_scope<S: ServerStore>(s: &S) {
    use doorstep_core::TeamName;
    let a = s.create_station("A", 1).unwrap();
    let north = TeamName::new("north").unwrap();
    let (w1, dev1) = enrolled(s, a, "W01");
    let (w3, dev3) = enrolled(s, a, "W03");
    s.set_team(w1, Some(&north), 1).unwrap();
    // 600 households made by W03's device (W03's, no team), one change each.
    let docs: Vec<HouseholdId> = (0..600).map(|_| HouseholdId::new()).collect();
    let appends: Vec<DocAppend> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut h = [7u8; 32];
            h[..8].copy_from_slice(&(i as u64).to_be_bytes());
            DocAppend {
                changes: vec![(ChangeHash(h), vec![b'x'; 40])],
                ..append(*d, &[])
            }
        })
        .collect();
    s.commit(a, dev3, &appends).unwrap();
    let mut sees = std::collections::BTreeSet::new();
    for (i, d) in docs.iter().enumerate() {
        match i % 4 {
            0 => {
                s.assign(a, *d, Some(w1), None, "cli", 2).unwrap();
            }
            1 => {
                s.assign(a, *d, None, Some(&north), "cli", 2).unwrap();
            }
            _ => continue,
        }
        if i % 40 == 0 {
            s.retire(a, *d, 3).unwrap();
        } else {
            sees.insert(*d);
        }
    }
    // One read of the whole log, and pages of about three changes each.
    let page = s.read_log(a, 0, reader(dev1, w1), usize::MAX).unwrap();
    let whole: std::collections::BTreeSet<HouseholdId> =
        page.entries.iter().map(|e| e.doc).collect();
    assert_eq!(page.entries.len(), whole.len());
    let differ =
        |got: &std::collections::BTreeSet<HouseholdId>| got.symmetric_difference(&sees).count();
    assert_eq!(differ(&whole), 0, "one page holds exactly what W01 sees");
    let (mut paged, mut after, mut pages) = (std::collections::BTreeSet::new(), 0, 0);
    loop {
        let page = s.read_log(a, after, reader(dev1, w1), 120).unwrap();
        paged.extend(page.entries.iter().map(|e| e.doc));
        after = page.last_seq;
        pages += 1;
        if !page.more {
            break;
        }
    }
    assert_eq!(differ(&paged), 0, "small pages hold exactly what W01 sees");
    assert!(pages > sees.len() / 3, "{pages} pages");
    // W03's device made every change: it is served none of its own.
    let page = s.read_log(a, 0, reader(dev3, w3), usize::MAX).unwrap();
    assert!(
        page.entries.is_empty(),
        "a device's own changes are skipped"
    );
}

pub fn scopes_follow_assignments_teams_and_roles<S: ServerStore>(s: &S) {
    use doorstep_core::{Role, TeamName};
    let (a, b) = (
        s.create_station("A", 1).unwrap(),
        s.create_station("B", 1).unwrap(),
    );
    let north = TeamName::new("north").unwrap();
    let (w1, dev1) = enrolled(s, a, "W01");
    let (w2, dev2) = enrolled(s, a, "W02");
    let (w3, dev3) = enrolled(s, a, "W03");
    let (sup, devs) = enrolled(s, a, "S01");
    let (wb, _) = enrolled(s, b, "B01");
    // No household yet: role and team changes write nothing.
    assert_eq!(
        s.set_team(w1, Some(&north), 1).unwrap(),
        Rescoped::default()
    );
    assert_eq!(
        s.set_team(w2, Some(&north), 1).unwrap(),
        Rescoped::default()
    );
    assert_eq!(
        s.set_role(sup, Role::Supervisor, 1).unwrap(),
        Rescoped::default()
    );
    let access = s.worker_access(w1).unwrap().unwrap();
    assert_eq!(
        (access.station, access.role, access.team),
        (a, Role::Worker, Some(north.clone()))
    );
    assert_eq!(s.worker_access(WorkerId::new()).unwrap(), None);

    // A household created by W01's device is assigned to W01 and W01's team.
    let d1 = HouseholdId::new();
    s.commit(a, dev1, &[append(d1, &[(1, b"a"), (2, b"b")])])
        .unwrap();
    let asg = s.assignment(d1).unwrap().unwrap();
    assert_eq!(
        (asg.station, asg.worker, asg.team.clone()),
        (a, Some(w1), Some(north.clone()))
    );
    assert_eq!(asg.assigned_by, "creation");
    for (w, sees) in [
        (w1, true),
        (w2, true),
        (w3, false),
        (sup, true),
        (wb, false),
    ] {
        assert_eq!(s.in_scope(w, d1).unwrap(), sees, "in scope of {w}");
    }
    assert_eq!(s.scope_documents(w2).unwrap(), vec![d1]);
    assert!(s.scope_documents(w3).unwrap().is_empty());
    // W03 reads past W01's changes; W02 and the supervisor get them.
    let page = s.read_log(a, 0, reader(dev3, w3), usize::MAX).unwrap();
    assert!(page.entries.is_empty());
    assert_eq!(
        page.last_seq, 2,
        "the cursor moves past what is not in scope"
    );
    assert_eq!(
        s.read_log(a, 0, reader(dev2, w2), usize::MAX)
            .unwrap()
            .entries
            .len(),
        2
    );
    assert_eq!(
        s.read_log(a, 0, reader(devs, sup), usize::MAX)
            .unwrap()
            .entries
            .len(),
        2
    );
    // A bootstrap lists only what the worker sees.
    assert!(s.list_documents(a, None, 10, Some(w3)).unwrap().is_empty());
    assert_eq!(s.list_documents(a, None, 10, Some(w2)).unwrap(), vec![d1]);
    assert_eq!(s.list_documents(a, None, 10, Some(sup)).unwrap(), vec![d1]);

    // Reassigned to W03 alone: W01 and W02 are told it left, W03 that it entered; the
    // supervisor is told nothing (she sees the station).
    assert_eq!(
        s.assign(a, d1, Some(w3), None, "cli", 50).unwrap(),
        Rescoped {
            entered: 1,
            left: 2
        }
    );
    assert_eq!(s.high_water(a).unwrap(), 5, "three scope entries, gap-free");
    let p1 = s.read_log(a, 2, reader(dev1, w1), usize::MAX).unwrap();
    assert_eq!((p1.left.clone(), p1.entered.clone()), (vec![d1], vec![]));
    assert!(p1.entries.is_empty());
    let p3 = s.read_log(a, 0, reader(dev3, w3), usize::MAX).unwrap();
    assert_eq!((p3.entered.clone(), p3.left.clone()), (vec![d1], vec![]));
    assert_eq!(p3.entries.len(), 2, "its changes are in scope now");
    let ps = s.read_log(a, 2, reader(devs, sup), usize::MAX).unwrap();
    assert!(ps.entered.is_empty() && ps.left.is_empty() && ps.entries.is_empty());
    let exit = s.scope_exit(w1, d1).unwrap().unwrap();
    assert_eq!(exit.at, 50);
    assert!(exit.seq > 2);
    assert_eq!(s.scope_exit(w3, d1).unwrap(), None);
    assert!(!s.in_scope(w1, d1).unwrap() && s.in_scope(w3, d1).unwrap());
    // Scope entries are not changes: the document loads as before.
    assert_eq!(
        s.load_document(d1).unwrap().unwrap().changes,
        vec![b"a".to_vec(), b"b".to_vec()]
    );

    // W01 becomes a supervisor: d1 enters; her exit is superseded.
    assert_eq!(
        s.set_role(w1, Role::Supervisor, 60).unwrap(),
        Rescoped {
            entered: 1,
            left: 0
        }
    );
    assert_eq!(s.scope_exit(w1, d1).unwrap(), None);
    assert!(s.in_scope(w1, d1).unwrap());
    // W02 leaves the team and joins none: nothing of hers changes (d1 is W03's now).
    assert_eq!(s.set_team(w2, None, 61).unwrap(), Rescoped::default());
    // Back to the north team: W02 enters, W03 keeps it.
    assert_eq!(
        s.assign(a, d1, Some(w3), Some(&north), "cli", 70).unwrap(),
        Rescoped::default(),
        "W02 has no team now; W01 is a supervisor"
    );
    assert_eq!(
        s.set_team(w2, Some(&north), 71).unwrap(),
        Rescoped {
            entered: 1,
            left: 0
        }
    );

    // Refusals: a worker or household of another station, the station document.
    let db = HouseholdId::new();
    assert!(matches!(
        s.assign(a, d1, Some(wb), None, "cli", 80),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.assign(a, db, Some(w1), None, "cli", 80),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.assign(b, d1, Some(wb), None, "cli", 80),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.set_role(WorkerId::new(), Role::Worker, 1),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.assignment(db).unwrap(), None);
}

/// Case files opened on a phone (issue 16): kept only for households of the device's own
/// station held here, once per (device, household, at); listed with the console's own reads,
/// newest first, naming the worker's label and the device; erased with the household.
pub fn device_accesses_are_kept_once_listed_with_console_reads_and_erased<S: ServerStore>(s: &S) {
    use console::{Accessor, CASE_FILE_ON_DEVICE};
    use doorstep_core::protocol::{Access, ErasureReason};
    let a = s.create_station("A", 1).unwrap();
    let b = s.create_station("B", 1).unwrap();
    let worker = s.add_worker(a, "W01 / 张丽", 1).unwrap();
    s.enroll_device(worker, "code", 100).unwrap();
    let auth = s.redeem_code("code", "tok", 2).unwrap().unwrap();
    let (h1, h2, foreign, absent) = (
        HouseholdId::new(),
        HouseholdId::new(),
        HouseholdId::new(),
        HouseholdId::new(),
    );
    s.commit(
        a,
        auth.device,
        &[append(h1, &[(1, b"x")]), append(h2, &[(2, b"y")])],
    )
    .unwrap();
    s.commit(b, DeviceId::new(), &[append(foreign, &[(3, b"z")])])
        .unwrap();
    let at = |household: HouseholdId, at: i64| Access { household, at };
    let sent = [
        at(h1, 100),
        at(h1, 300),
        at(h2, 250),
        at(foreign, 150),
        at(absent, 160),
        at(HouseholdId::from_uuid(*a.as_uuid()), 170),
        at(h1, 100),
    ];
    assert_eq!(
        s.record_accesses(&auth, &sent, 1_000).unwrap(),
        3,
        "own station's held households only, each once"
    );
    assert_eq!(
        s.record_accesses(&auth, &sent, 2_000).unwrap(),
        0,
        "a request sent again adds nothing"
    );
    assert!(s.accesses(b, None, 10).unwrap().is_empty(), "no oracle");
    assert!(s.accesses(a, Some(foreign), 10).unwrap().is_empty());

    let account = s.add_account(a, "sup", "hash", 1).unwrap();
    s.log_access(account, a, "household", Some(&h1.to_string()), 200)
        .unwrap();
    s.log_access(account, a, "dashboard", None, 400).unwrap();
    let device = Accessor::Device {
        worker,
        label: "W01 / 张丽".into(),
        device: auth.device,
    };
    let console = Accessor::Console {
        account,
        login: "sup".into(),
    };
    let of_h1 = s.accesses(a, Some(h1), 10).unwrap();
    let seen: Vec<(&Accessor, &str, i64)> = of_h1
        .iter()
        .map(|e| (&e.by, e.what.as_str(), e.at))
        .collect();
    assert_eq!(
        seen,
        vec![
            (&device, CASE_FILE_ON_DEVICE, 300),
            (&console, "household", 200),
            (&device, CASE_FILE_ON_DEVICE, 100),
        ],
        "both kinds, newest first"
    );
    assert!(of_h1.iter().all(|e| e.target == Some(h1.to_string())));
    let all = s.accesses(a, None, 10).unwrap();
    assert_eq!(
        all.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![400, 300, 250, 200, 100]
    );
    assert_eq!(s.accesses(a, None, 2).unwrap().len(), 2, "the limit");

    s.erase_document(a, h1, ErasureReason::SubjectRequest, "cli", 500)
        .unwrap();
    assert!(s.accesses(a, Some(h1), 10).unwrap().is_empty());
    assert_eq!(
        s.record_accesses(&auth, &[at(h1, 600)], 3_000).unwrap(),
        0,
        "an erased household takes no new entries"
    );
    let left = s.accesses(a, None, 10).unwrap();
    assert_eq!(
        left.iter().map(|e| e.at).collect::<Vec<_>>(),
        vec![400, 250],
        "the other household's entry and the dashboard read stay"
    );
}

/// Station-work documents (activities, resources, needs surveys; ADR 0021, 0022): every worker and supervisor of
/// the station sees them — in scope, in log reads, in a bootstrap — whoever made them; no
/// county account does, no other station does, no assignment moves them, and a role change
/// tells exactly the workers whose view changed.
pub fn station_work_is_in_every_workers_scope_and_never_reassigned<S: ServerStore>(s: &S) {
    use doorstep_core::doc::DocKind;
    use doorstep_core::{Role, WorkKind};
    let (a, b) = (
        s.create_station("A", 1).unwrap(),
        s.create_station("B", 1).unwrap(),
    );
    let (w1, dev1) = enrolled(s, a, "W01");
    let (w2, dev2) = enrolled(s, a, "W02");
    let (sup, devs) = enrolled(s, a, "S01");
    let (county, _) = enrolled(s, a, "C01");
    let (wb, devb) = enrolled(s, b, "B01");
    s.set_role(sup, Role::Supervisor, 1).unwrap();
    s.set_role(county, Role::County, 1).unwrap();
    let activity = HouseholdId::new();
    let resource = HouseholdId::new();
    let survey = HouseholdId::new();
    let household = HouseholdId::new();
    let work = |doc, kind, h: u8| DocAppend {
        kind: DocKind::Work(kind),
        ..append(doc, &[(h, b"w")])
    };
    s.commit(
        a,
        dev1,
        &[
            work(activity, WorkKind::Activity, 1),
            work(resource, WorkKind::Resource, 2),
            work(survey, WorkKind::Survey, 4),
            append(household, &[(3, b"h")]),
        ],
    )
    .unwrap();
    // No assignment: the station's, not the creator's.
    assert_eq!(s.assignment(activity).unwrap(), None);
    assert!(s.assignment(household).unwrap().is_some());
    for (w, sees) in [
        (w1, true),
        (w2, true),
        (sup, true),
        (county, false),
        (wb, false),
    ] {
        assert_eq!(s.in_scope(w, activity).unwrap(), sees, "activity, {w}");
        assert_eq!(s.in_scope(w, resource).unwrap(), sees, "resource, {w}");
        assert_eq!(s.in_scope(w, survey).unwrap(), sees, "survey, {w}");
    }
    assert!(
        !s.in_scope(w2, household).unwrap(),
        "households stay scoped"
    );
    let mut work_ids = vec![activity, resource, survey];
    work_ids.sort();
    assert_eq!(s.scope_documents(w2).unwrap(), work_ids);
    assert!(s.scope_documents(county).unwrap().is_empty());
    // W02 reads the station's work from the log and in a bootstrap; not W01's household.
    let page = s.read_log(a, 0, reader(dev2, w2), usize::MAX).unwrap();
    let mut got: Vec<HouseholdId> = page.entries.iter().map(|e| e.doc).collect();
    got.sort();
    assert_eq!(got, work_ids);
    assert_eq!(s.list_documents(a, None, 10, Some(w2)).unwrap(), work_ids);
    assert_eq!(
        s.read_log(a, 0, reader(devs, sup), usize::MAX)
            .unwrap()
            .entries
            .len(),
        4
    );
    // Another station's device sees none of it.
    assert!(s
        .read_log(b, 0, reader(devb, wb), usize::MAX)
        .unwrap()
        .entries
        .is_empty());
    assert!(s.list_documents(b, None, 10, Some(wb)).unwrap().is_empty());
    // Never reassigned: `assign` knows households only.
    assert!(matches!(
        s.assign(a, activity, Some(w1), None, "cli", 5),
        Err(StoreError::NotFound(_))
    ));
    // Reassigning the household moves no station work in or out of anyone's scope.
    let r = s.assign(a, household, Some(w2), None, "cli", 6).unwrap();
    assert_eq!(
        r,
        Rescoped {
            entered: 1,
            left: 1
        }
    );
    assert_eq!(s.scope_exits(w1).unwrap(), vec![household]);
    assert!(s.in_scope(w1, activity).unwrap());
    // A worker who becomes a county account leaves the station's work; back, it enters.
    let r = s.set_role(w1, Role::County, 7).unwrap();
    assert_eq!(
        r,
        Rescoped {
            entered: 0,
            left: 3
        }
    );
    assert!(!s.in_scope(w1, resource).unwrap());
    let r = s.set_role(w1, Role::Worker, 8).unwrap();
    assert_eq!(
        r,
        Rescoped {
            entered: 3,
            left: 0
        }
    );
    assert!(s.in_scope(w1, resource).unwrap());
}

/// Phone retention (ADR 0025): a retired household leaves the scope of every worker who saw
/// it, supervisors included, with a scope entry each; the server keeps it; bootstraps skip
/// it; a reassignment tells no one; reopening brings it back to whoever sees it then.
pub fn retirement_takes_households_off_every_phone_and_reopening_brings_them_back<
    S: ServerStore,
>(
    s: &S,
) {
    use doorstep_core::Role;
    let (a, b) = (
        s.create_station("A", 1).unwrap(),
        s.create_station("B", 1).unwrap(),
    );
    let (w1, dev1) = enrolled(s, a, "W01");
    let (w2, dev2) = enrolled(s, a, "W02");
    let (sup, devs) = enrolled(s, a, "S01");
    let (county, _) = enrolled(s, a, "C01");
    s.set_role(sup, Role::Supervisor, 1).unwrap();
    s.set_role(county, Role::County, 1).unwrap();
    let (closed, kept) = (HouseholdId::new(), HouseholdId::new());
    s.commit(
        a,
        dev1,
        &[append(closed, &[(1, b"a")]), append(kept, &[(2, b"b")])],
    )
    .unwrap();
    let high = s.high_water(a).unwrap();
    assert_eq!(s.retirement(closed).unwrap(), None);
    // Not a household of this station (nor station work, nor the station document).
    assert!(matches!(
        s.retire(b, closed, 5),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.retire(a, HouseholdId::new(), 5),
        Err(StoreError::NotFound(_))
    ));
    let station_doc = doorstep_core::doc::station::station_doc_id(a);
    assert!(matches!(
        s.retire(a, station_doc, 5),
        Err(StoreError::NotFound(_))
    ));

    // Retired: W01 (its holder) and the supervisor are told; W02 and the county never saw it.
    let r = s.retire(a, closed, 10).unwrap();
    assert_eq!((r.entered, r.left), (0, 2));
    assert_eq!(
        s.retirement(closed).unwrap(),
        Some(Retirement {
            retired_at: 10,
            reopened_at: None
        })
    );
    assert_eq!(
        s.retire(a, closed, 11).unwrap(),
        Rescoped::default(),
        "idempotent"
    );
    assert_eq!(s.high_water(a).unwrap(), high + 2);
    for w in [w1, sup, w2, county] {
        assert!(
            !s.in_scope(w, closed).unwrap(),
            "retired: in nobody's scope"
        );
    }
    assert!(s.in_scope(w1, kept).unwrap() && s.in_scope(sup, kept).unwrap());
    for (w, dev) in [(w1, dev1), (sup, devs)] {
        let page = s.read_log(a, high, reader(dev, w), usize::MAX).unwrap();
        assert_eq!(page.left, vec![closed], "{w} is told it left");
        assert!(page.entered.is_empty());
        let exit = s.scope_exit(w, closed).unwrap().unwrap();
        assert_eq!(exit.at, 10);
        assert_eq!(s.scope_exits(w).unwrap(), vec![closed]);
        let boot = s.list_documents(a, None, 10, Some(w)).unwrap();
        assert!(
            boot.contains(&kept) && !boot.contains(&closed),
            "a bootstrap skips it"
        );
        assert!(!s.scope_documents(w).unwrap().contains(&closed));
    }
    // The supervisor's log read skips later changes of it; the server keeps it all.
    s.commit(a, dev1, &[append(closed, &[(3, b"late")])])
        .unwrap();
    let page = s
        .read_log(a, high + 2, reader(devs, sup), usize::MAX)
        .unwrap();
    assert!(
        page.entries.is_empty(),
        "a retired household's changes reach no phone"
    );
    assert_eq!(s.load_document(closed).unwrap().unwrap().changes.len(), 2);
    assert!(
        s.list_documents(a, None, 10, None)
            .unwrap()
            .contains(&closed),
        "admin sweeps see it"
    );
    // Reassigned while retired: nobody's view changes.
    let r = s.assign(a, closed, Some(w2), None, "cli", 12).unwrap();
    assert_eq!(r, Rescoped::default());
    assert!(!s.in_scope(w2, closed).unwrap());

    // Reopened: its new holder W02 and the supervisor enter; W01 stays out.
    let before = s.high_water(a).unwrap();
    let r = s.reopen(a, closed, 20).unwrap();
    assert_eq!((r.entered, r.left), (2, 0));
    assert_eq!(
        s.reopen(a, closed, 21).unwrap(),
        Rescoped::default(),
        "idempotent"
    );
    assert_eq!(
        s.retirement(closed).unwrap(),
        Some(Retirement {
            retired_at: 10,
            reopened_at: Some(20)
        })
    );
    for (w, dev, sees) in [(w2, dev2, true), (sup, devs, true), (w1, dev1, false)] {
        assert_eq!(s.in_scope(w, closed).unwrap(), sees, "{w} after reopening");
        let page = s.read_log(a, before, reader(dev, w), usize::MAX).unwrap();
        if sees {
            assert_eq!(page.entered, vec![closed]);
            assert_eq!(s.scope_exit(w, closed).unwrap(), None);
        } else {
            assert!(page.entered.is_empty() && page.left.is_empty());
        }
    }
    // Retired again: the row is reused.
    assert_eq!(s.retire(a, closed, 30).unwrap().left, 2);
    assert!(s.retirement(closed).unwrap().unwrap().retired());
}
