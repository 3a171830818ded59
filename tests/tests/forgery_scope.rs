//! Forgery within a station (issue 16, ADR 0019): a worker's device sends generated
//! requests (`DOORSTEP_FORGERY_REQUESTS`, default 10,000; `DOORSTEP_FORGERY_SEED` picks the
//! stream) at households of its own station that are outside its worker's scope: a
//! colleague's households, and one that was its own until it was reassigned (and its device
//! told) two days ago. Pushes of the colleague's real changes, of forged edits on top of
//! them, of new documents declaring their ids; crafted cursors (from the start, random
//! positions, bootstraps after chosen ids) that try to read them, or to pass for a device
//! that has not been told its household left.
//!
//! Figures: requests; succeeded (a push at one of them acknowledged, or any of their ids or
//! text in an answer: must be 0); bytes of theirs returned (must be 0); and
//! absent-versus-forbidden: the same pushed bytes aimed at one of them and at an id nobody
//! has get the same answer (must differ 0 times).
#![allow(clippy::unwrap_used)]
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ReadDoc, ROOT};
use doorstep_core::protocol::*;
use doorstep_core::*;
use doorstep_server::store::ServerStore;
use doorstep_server::sync::SyncService;
use doorstep_server::SqliteStore;
use doorstep_tests::in_process::{device_store, enrol, env_u64, sync_in_process, Rng};
use uuid::Uuid;

const DEFAULT_REQUESTS: u64 = 10_000;
const DEFAULT_SEED: u64 = 0x5c09_e000_2026_1206;
/// Text only the colleague's households hold.
const SECRETS: [&str; 3] = [
    "同事机密-困境儿童-7731",
    "COLLEAGUE-ONLY-NOTE-51aa",
    "钱保密",
];
/// Typed by the colleague into the household after it was reassigned away from the attacker.
const AFTER_HANDOVER: &str = "交接后才写的记录-6b20";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn household(store: &Store, code: &str, secret: &str) -> HouseholdId {
    let hh = store
        .create_household(&NewHousehold {
            code: code.into(),
            village: "石桥村".into(),
            address: format!("石桥村{secret}"),
            ..Default::default()
        })
        .unwrap();
    store
        .add_person(hh, &NewPerson::named(secret, "户主"))
        .unwrap();
    hh
}

fn edit_on(doc: &[u8], actor: ActorId, address: &str) -> Vec<u8> {
    let mut d = Automerge::load(doc).unwrap().with_actor(actor);
    let mut tx = d.transaction();
    let hmap = tx.get(ROOT, "household").unwrap().unwrap().1;
    tx.put(&hmap, "address", address).unwrap();
    tx.commit();
    d.get_last_local_change().unwrap().raw_bytes().to_vec()
}

/// What the attacker may not reach, and the pools its pushes draw from.
struct Targets {
    ids: Vec<HouseholdId>,
    /// Each target's real changes (as its owner's device holds them).
    changes: Vec<Vec<Vec<u8>>>,
    /// Edits forged on top of each target (unsigned, by fresh actors).
    edits: Vec<Vec<Vec<u8>>>,
    /// New documents declaring each target's id in the attacker's own station.
    fresh: Vec<Vec<Vec<u8>>>,
    /// What must never appear in an answer to the attacker.
    needles: Vec<Vec<u8>>,
}

/// Which answer a pushed document got: acknowledged, or refused with a code, or nothing.
fn answer_for(resp: &SyncResponse, doc: HouseholdId) -> String {
    if resp.acks.iter().any(|a| a.doc == doc) {
        return "ack".into();
    }
    match resp.errors.iter().find(|e| e.doc == doc) {
        Some(e) => format!("refused {}", e.code.as_str()),
        None => "silent".into(),
    }
}

#[derive(Default)]
struct Figures {
    requests: u64,
    succeeded: u64,
    leaked_bytes: u64,
    pairs: u64,
    pairs_differing: u64,
    by_kind: BTreeMap<&'static str, u64>,
    violations: Vec<String>,
}

#[test]
fn a_worker_cannot_reach_households_outside_their_caseload() {
    let seed = env_u64("DOORSTEP_FORGERY_SEED").unwrap_or(DEFAULT_SEED);
    let count = env_u64("DOORSTEP_FORGERY_REQUESTS").unwrap_or(DEFAULT_REQUESTS);
    let mut rng = Rng(seed | 1);
    let started = std::time::Instant::now();

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("server")).unwrap());
    let st = store.create_station("石桥镇社工站", 0).unwrap();
    let auth_a = enrol(&store, st, "A01", None);
    let auth_c = enrol(&store, st, "C01", None);
    let service = SyncService::new(store.clone(), 64);
    let a = device_store(dir.path(), "a.db", &auth_a);
    let c = device_store(dir.path(), "c.db", &auth_c);
    sync_in_process(&service, &auth_a, &a);
    sync_in_process(&service, &auth_c, &c);

    // The colleague's households, the attacker's own, and one that was the attacker's.
    let mut ids: Vec<HouseholdId> = SECRETS
        .iter()
        .enumerate()
        .map(|(i, s)| household(&c, &format!("HH-C{i:05}"), s))
        .collect();
    let own = household(&a, "HH-A00001", "王小明");
    let former = household(&a, "HH-A00002", "李小红");
    let former_changes = a.export_changes(former, &[]).unwrap();
    sync_in_process(&service, &auth_a, &a);
    sync_in_process(&service, &auth_c, &c);
    // Reassigned to the colleague two days ago (past the hand-over window)...
    store
        .assign(
            st,
            former,
            Some(auth_c.worker),
            None,
            "test",
            doorstep_server::now_ms() - 2 * DAY_MS,
        )
        .unwrap();
    // ...the attacker's device was told and gave it up; the colleague wrote more to it.
    sync_in_process(&service, &auth_a, &a);
    assert!(a.household(former).is_err());
    sync_in_process(&service, &auth_c, &c);
    c.add_person(former, &NewPerson::named(AFTER_HANDOVER, "姑姑"))
        .unwrap();
    sync_in_process(&service, &auth_c, &c);
    ids.push(former);
    assert!(!store.in_scope(auth_a.worker, ids[0]).unwrap());
    assert!(store.in_scope(auth_a.worker, own).unwrap());

    let actor = |rng: &mut Rng| ActorId::from(rng.uuid().as_bytes().to_vec());
    let targets = Targets {
        changes: ids
            .iter()
            .map(|h| {
                if *h == former {
                    former_changes.clone()
                } else {
                    c.export_changes(*h, &[]).unwrap()
                }
            })
            .collect(),
        edits: ids
            .iter()
            .map(|h| {
                let doc = c.export_document(*h).unwrap();
                (0..16)
                    .map(|i| edit_on(&doc, actor(&mut rng), &format!("篡改{i}")))
                    .collect()
            })
            .collect(),
        fresh: ids
            .iter()
            .map(|h| {
                (0..4)
                    .map(|i| {
                        let mut shadow = Automerge::new().with_actor(actor(&mut rng));
                        let mut tx = shadow.transaction();
                        tx.put(ROOT, "schema", 1_i64).unwrap();
                        tx.put(ROOT, "kind", "household").unwrap();
                        tx.put(ROOT, "id", h.to_string()).unwrap();
                        tx.put(ROOT, "station", st.to_string()).unwrap();
                        tx.put(ROOT, "note", format!("抢占{i}")).unwrap();
                        tx.commit();
                        shadow.get_last_local_change().unwrap().raw_bytes().to_vec()
                    })
                    .collect()
            })
            .collect(),
        needles: {
            let mut n: Vec<Vec<u8>> = SECRETS.iter().map(|s| s.as_bytes().to_vec()).collect();
            n.push(AFTER_HANDOVER.as_bytes().to_vec());
            // The colleague's ids (not `former`'s: the attacker held it and is told it left).
            for h in &ids[..SECRETS.len()] {
                n.push(h.to_string().into_bytes());
                n.push(h.as_uuid().as_bytes().to_vec());
            }
            n
        },
        ids,
    };
    let before: Vec<_> = targets
        .ids
        .iter()
        .map(|h| store.load_document(*h).unwrap())
        .collect();
    let high = store.high_water(st).unwrap();
    let epoch = store.epoch().unwrap();

    let mut fig = Figures::default();
    for _ in 0..count {
        let honest = a.sync_cursor().unwrap();
        let t = rng.below(targets.ids.len());
        let target = targets.ids[t];
        let absent = HouseholdId::from_uuid(rng.uuid());
        // The cursor: honest, from the start (passing for a device never told), a random
        // position, or a bootstrap resuming just before a target.
        let cursor = match rng.below(4) {
            0 => honest,
            1 => Cursor {
                epoch,
                seq: 0,
                phase: Phase::Log,
            },
            2 => Cursor {
                epoch,
                seq: rng.below(high as usize + 1) as u64,
                phase: Phase::Log,
            },
            _ => Cursor {
                epoch,
                seq: high,
                phase: Phase::Bootstrap {
                    after: Some(HouseholdId::from_uuid(Uuid::from_u128(
                        target.as_uuid().as_u128().saturating_sub(1),
                    ))),
                },
            },
        };
        let (kind, changes): (&'static str, Vec<Vec<u8>>) = match rng.below(4) {
            0 => ("replay its real changes", targets.changes[t].clone()),
            1 => {
                let pool = &targets.edits[t];
                let mut all = targets.changes[t].clone();
                all.push(pool[rng.below(pool.len())].clone());
                ("a forged edit on top of it", all)
            }
            2 => {
                let pool = &targets.fresh[t];
                (
                    "a new document declaring its id",
                    vec![pool[rng.below(pool.len())].clone()],
                )
            }
            _ => ("read only, crafted cursor", Vec::new()),
        };
        *fig.by_kind.entry(kind).or_default() += 1;
        let request = |doc: HouseholdId| SyncRequest {
            cursor,
            budget: 1 << 20,
            push: if changes.is_empty() {
                Vec::new()
            } else {
                vec![DocChanges {
                    doc,
                    changes: changes.clone(),
                    signatures: Vec::new(),
                }]
            },
            signer: None,
            // And a claim to have opened it: nothing of it may enter its access log.
            accesses: vec![Access {
                household: target,
                at: 1_765_000_000_000,
            }],
        };
        // As the HTTP handler does: bytes in, decoded, served, encoded.
        let serve = |req: SyncRequest| {
            let req = SyncRequest::decode(&req.encode()).unwrap();
            service.sync(&auth_a, &req).unwrap()
        };
        let resp = serve(request(target));
        fig.requests += 1;
        // The refusal names the id the attacker pushed at (its own words back): searched
        // without it.
        let raw = SyncResponse {
            errors: resp
                .errors
                .iter()
                .filter(|e| e.doc != target)
                .copied()
                .collect(),
            ..resp.clone()
        }
        .encode_raw();
        let mut bad = Vec::new();
        if resp.acks.iter().any(|x| targets.ids.contains(&x.doc)) {
            bad.push("a push at it was acknowledged".to_owned());
        }
        if let Some(e) = resp
            .errors
            .iter()
            .find(|e| targets.ids.contains(&e.doc) && e.code != DocErrorCode::NotFoundOrForbidden)
        {
            bad.push(format!("refused with {} (not code 1)", e.code.as_str()));
        }
        if resp
            .snapshots
            .iter()
            .map(|s| s.doc)
            .chain(resp.pull.iter().map(|p| p.doc))
            .any(|d| targets.ids.contains(&d))
        {
            bad.push("its data in the answer".to_owned());
        }
        for n in &targets.needles {
            let found = raw.windows(n.len()).filter(|w| *w == n.as_slice()).count() as u64;
            if found > 0 {
                fig.leaked_bytes += found * n.len() as u64;
                bad.push(format!("{} bytes of its text or id", n.len()));
            }
        }
        if !bad.is_empty() {
            fig.succeeded += 1;
            fig.violations.push(format!(
                "{kind} at target {t} with cursor {cursor:?}: {bad:?}"
            ));
        }
        // The same bytes at an id nobody has get the same answer.
        if !changes.is_empty() {
            let other = serve(request(absent));
            fig.requests += 1;
            fig.pairs += 1;
            let (x, y) = (answer_for(&resp, target), answer_for(&other, absent));
            if x != y {
                fig.pairs_differing += 1;
                fig.violations
                    .push(format!("{kind}: at it {x}, at an absent id {y}"));
            }
            if other.acks.iter().any(|x| x.doc == absent) {
                // (Cannot happen: the bytes declare another id. If it did, the creation
                // would be the attacker's own new household, not a breach.)
                fig.violations
                    .push(format!("{kind}: created at an absent id"));
            }
        }
    }
    // No opening was recorded for any of them (the former one's real openings would be).
    use doorstep_server::store::console::ConsoleStore;
    for h in &targets.ids[..SECRETS.len()] {
        assert!(
            store.accesses(st, Some(*h), 10).unwrap().is_empty(),
            "an attacker's claimed opening was recorded"
        );
    }
    let after: Vec<_> = targets
        .ids
        .iter()
        .map(|h| store.load_document(*h).unwrap())
        .collect();
    assert!(before == after, "the targets' stored data changed");
    // The colleague's device still syncs and sees its households as they were.
    let mine: Vec<Household> = targets
        .ids
        .iter()
        .map(|h| c.household(*h).unwrap())
        .collect();
    sync_in_process(&service, &auth_c, &c);
    let still: Vec<Household> = targets
        .ids
        .iter()
        .map(|h| c.household(*h).unwrap())
        .collect();
    assert_eq!(mine, still);
    // And the attacker's honest device still works on its own household.
    a.add_person(own, &NewPerson::named("王小红", "孙女"))
        .unwrap();
    sync_in_process(&service, &auth_a, &a);
    assert!(a.unsynced_households().unwrap().is_empty());

    println!(
        "scope forgery figures (seed {seed:#x}): {} requests in {:.1}s; succeeded {}; bytes of \
         theirs returned {}; absent-vs-forbidden pairs {}, differing {}; by kind {:?}",
        fig.requests,
        started.elapsed().as_secs_f64(),
        fig.succeeded,
        fig.leaked_bytes,
        fig.pairs,
        fig.pairs_differing,
        fig.by_kind
    );
    assert!(
        fig.violations.is_empty(),
        "seed {seed:#x} (DOORSTEP_FORGERY_SEED): {} violations, first: {:?}",
        fig.violations.len(),
        &fig.violations[..fig.violations.len().min(5)]
    );
    assert!(fig.requests >= count);
    assert_eq!(
        (fig.succeeded, fig.leaked_bytes, fig.pairs_differing),
        (0, 0, 0)
    );
}
