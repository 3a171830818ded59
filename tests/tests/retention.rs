//! Phone retention (issue 15, ADR 0025) with a real server on 127.0.0.1 and real encrypted
//! store files: a household closed for longer than the phones' period leaves a worker's and
//! a supervisor's phone (planted strings gone from every byte of their files), after the
//! worker's phone hands in its unsynced edit to it; the server keeps it all; a phone enrolled
//! later never receives it; reopened, it comes back; one closed less long stays. Time passes
//! by giving the sweep a later "now": nothing sleeps.
#![allow(clippy::unwrap_used)]

use doorstep_core::*;
use doorstep_server::now_ms;
use doorstep_server::retirement::{reopen, sweep, Step};
use doorstep_server::store::ServerStore;
use doorstep_tests::{pages, Device, TestServer};

const NAME: &str = "诸葛婉清";
const ID_NUMBER: &str = "513422201203046038";
const NOTE: &str = "孩子与继母关系紧张夜里不敢回家";
/// Typed on the worker's phone offline, after the household was closed.
const OFFLINE: &str = "结案回访孩子已转学到县城";
const PLANTED: [&str; 4] = [NAME, ID_NUMBER, NOTE, OFFLINE];

const DAY: i64 = 86_400_000;
const PERIOD: i64 = 30 * DAY;

fn planted_in(device: &Device) -> Vec<&'static str> {
    let pages = device.pages();
    assert!(
        pages::decrypts(&pages),
        "{}: pages did not decrypt",
        device.label
    );
    pages::found(&pages, &PLANTED)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_household_leaves_every_phone_after_the_period_and_stays_on_the_server() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let w = server.device_as(station, "A01", Role::Worker, None).await;
    let sup = server
        .device_as(station, "S01", Role::Supervisor, None)
        .await;
    // Both bootstrap first: the household then reaches the supervisor as log changes (a
    // bootstrap snapshot is compressed, where a byte search would not find it anyway).
    w.sync().await;
    sup.sync().await;

    let hh = w.new_household("HH-RETIRE-1");
    let person = w
        .store
        .add_person(hh, &NewPerson::named(NAME, "孙女"))
        .unwrap();
    w.store
        .edit_person(hh, person, &PersonEdit::IdNumber(Some(ID_NUMBER.into())))
        .unwrap();
    let v = w.visit(hh);
    w.store
        .splice_section(hh, v, Section::Concerns, 0, 0, NOTE)
        .unwrap();
    let kept = w.new_household("HH-ACTIVE-1");
    w.store
        .edit_household(hh, &HouseholdEdit::Status(HouseholdStatus::Closed))
        .unwrap();
    w.sync().await;
    sup.sync().await;
    let now = now_ms();

    // The worker keeps writing offline (a closing visit's note).
    w.store
        .splice_section(hh, v, Section::FamilySituation, 0, 0, OFFLINE)
        .unwrap();
    assert_eq!(planted_in(&w), PLANTED, "control: found where it is");
    assert_eq!(planted_in(&sup), [NAME, ID_NUMBER, NOTE]);

    // Closed less long than the period: it stays.
    let store = server.store.as_ref();
    assert!(sweep(store, Some(station), PERIOD, now + 10 * DAY, false)
        .unwrap()
        .is_empty());
    sup.sync().await;
    assert_eq!(sup.store.household(hh).unwrap().persons[0].name, NAME);

    // Past it: a dry run lists it and changes nothing; the sweep retires it alone.
    let later = now + PERIOD + DAY;
    let listed = sweep(store, Some(station), PERIOD, later, true).unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|s| (s.household, s.step))
            .collect::<Vec<_>>(),
        [(hh, Step::Retire)]
    );
    assert_eq!(
        store.retirement(hh).unwrap(),
        None,
        "a dry run retires nothing"
    );
    let swept = sweep(store, None, PERIOD, later, false).unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].told, 2, "the worker and the supervisor are told");

    // The supervisor's phone (nothing unsynced) removes it at its next sync.
    let rs = sup.sync().await;
    assert_eq!(rs.departed, vec![hh], "{rs:?}");
    assert!(sup.store.household(hh).is_err());
    assert!(
        sup.store.household(kept).is_ok(),
        "an active household stays"
    );
    // The worker's phone hands in its offline edit first, then removes it.
    let rw = w.sync().await;
    assert_eq!(rw.departed, vec![hh], "{rw:?}");
    assert!(w.store.household(hh).is_err());
    assert!(w.store.household(kept).is_ok());
    assert!(w.store.unsynced_households().unwrap().is_empty());
    match w.store.why_gone(hh).unwrap() {
        Some(Gone::LeftScope(d)) => assert_eq!(d.discarded_changes, 0, "the edit was kept"),
        other => panic!("why_gone: {other:?}"),
    }
    for d in [&w, &sup] {
        assert_eq!(
            planted_in(d),
            Vec::<&str>::new(),
            "{} still holds them",
            d.label
        );
    }

    // The server keeps the household whole, the offline edit included.
    assert_eq!(pages::found(&server.pages(), &PLANTED), PLANTED);
    let stored = store.load_document(hh).unwrap().unwrap();
    let doc = doorstep_server::snapshot::load_stored(&stored).unwrap();
    assert!(doorstep_core::doc::closed_at(&doc).unwrap().is_some());
    assert!(store.retirement(hh).unwrap().unwrap().retired());

    // A phone enrolled afterwards — the worker's second, a new supervisor's — never gets it.
    let w2 = {
        let code = doorstep_server::credentials::enroll_device(store, w.store.worker(), now_ms())
            .unwrap()
            .1;
        Device::enroll(&server.url(), &server.url(), &code, "A01-second").await
    };
    let sup2 = server
        .device_as(station, "S02", Role::Supervisor, None)
        .await;
    for d in [&w2, &sup2] {
        d.sync().await;
        assert!(
            d.store.household(hh).is_err(),
            "{} bootstrapped it",
            d.label
        );
        assert!(d.store.household(kept).is_ok());
        assert_eq!(planted_in(d), Vec::<&str>::new());
    }

    // Reopened: back to every phone that should see it, whole; the period counts again.
    let r = reopen(store, station, hh, later).unwrap();
    assert_eq!(r.entered, 3, "the worker and both supervisors");
    for d in [&w, &sup, &w2, &sup2] {
        d.sync().await;
        assert_eq!(
            d.section_text(hh, v, Section::FamilySituation),
            OFFLINE,
            "{}",
            d.label
        );
        assert_eq!(d.store.household(hh).unwrap().persons[0].name, NAME);
    }
    assert_eq!(w.store.why_gone(hh).unwrap(), None);
    assert!(sweep(store, None, PERIOD, later + DAY, false)
        .unwrap()
        .is_empty());
    // Reopening another station's household, or an unknown one, is refused.
    let other = server.station("柳河镇社工站");
    assert!(reopen(store, other, hh, later).is_err());
    assert!(reopen(store, station, HouseholdId::new(), later).is_err());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_household_set_active_by_a_late_phone_comes_back() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let w = server.device_as(station, "A01", Role::Worker, None).await;
    let sup = server
        .device_as(station, "S01", Role::Supervisor, None)
        .await;
    w.sync().await;
    sup.sync().await;
    let hh = w.new_household("HH-RETIRE-2");
    w.store
        .edit_household(hh, &HouseholdEdit::Status(HouseholdStatus::Closed))
        .unwrap();
    w.sync().await;
    sup.sync().await;
    // The worker, offline, reopens the case on the phone; the station retires it meanwhile.
    w.store
        .edit_household(hh, &HouseholdEdit::Status(HouseholdStatus::Active))
        .unwrap();
    let store = server.store.as_ref();
    let later = now_ms() + PERIOD + DAY;
    assert_eq!(sweep(store, None, PERIOD, later, false).unwrap().len(), 1);
    assert_eq!(sup.sync().await.departed, vec![hh]);
    // The worker's phone hands the edit in (then removes the household as told) ...
    assert_eq!(w.sync().await.departed, vec![hh]);
    // ... and the next sweep sees it is no longer closed: it comes back to both phones.
    let swept = sweep(store, None, PERIOD, later + DAY, false).unwrap();
    assert_eq!(
        swept
            .iter()
            .map(|s| (s.household, s.step))
            .collect::<Vec<_>>(),
        [(hh, Step::Return)]
    );
    for d in [&w, &sup] {
        d.sync().await;
        assert_eq!(
            d.store.household(hh).unwrap().status,
            HouseholdStatus::Active,
            "{}",
            d.label
        );
    }
    server.stop().await;
}
