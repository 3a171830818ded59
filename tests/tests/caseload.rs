//! Need-to-know (issue 16, ADR 0019) with a real server on 127.0.0.1 and real encrypted
//! store files: a worker's phone holds only their caseload; a household reassigned while its
//! worker is offline with unsynced edits takes those edits along, then leaves the old phone
//! (planted strings gone from its files), reaches the new worker's phone, and the supervisor
//! sees both sides.
#![allow(clippy::unwrap_used)]

use doorstep_core::*;
use doorstep_server::store::ServerStore;
use doorstep_tests::{pages, Device, TestServer};

const NAME: &str = "司马晓彤";
const NOTE: &str = "孩子说最近睡不好常做噩梦";
const OFFLINE: &str = "奶奶住院了孩子暂住姑姑家";
const PLANTED: [&str; 3] = [NAME, NOTE, OFFLINE];

fn plant(device: &Device) -> (HouseholdId, VisitId) {
    let hh = device.new_household("HH-SCOPE-1");
    device
        .store
        .add_person(hh, &NewPerson::named(NAME, "孙女"))
        .unwrap();
    let v = device.visit(hh);
    device
        .store
        .splice_section(hh, v, Section::Concerns, 0, 0, NOTE)
        .unwrap();
    (hh, v)
}

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
async fn a_reassignment_while_offline_hands_in_the_edits_then_moves_the_household() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let a = server.device_as(station, "A01", Role::Worker, None).await;
    let b = server.device_as(station, "A02", Role::Worker, None).await;
    let sup = server
        .device_as(station, "S01", Role::Supervisor, None)
        .await;
    for d in [&a, &b, &sup] {
        d.sync().await;
    }
    assert_eq!(a.store.role().unwrap(), Some(Role::Worker));
    assert_eq!(sup.store.role().unwrap(), Some(Role::Supervisor));

    // A's household is A's: B's phone never receives it, the supervisor's does.
    let (hh, v) = plant(&a);
    a.sync().await;
    b.sync().await;
    sup.sync().await;
    assert!(b.store.household(hh).is_err(), "outside B's caseload");
    assert!(planted_in(&b).is_empty(), "no byte of it on B's phone");
    assert_eq!(sup.store.household(hh).unwrap().persons[0].name, NAME);

    // A goes offline and keeps writing; meanwhile the household is reassigned to B.
    a.store
        .splice_section(hh, v, Section::FamilySituation, 0, 0, OFFLINE)
        .unwrap();
    let r = server
        .store
        .assign(station, hh, Some(b.store.worker()), None, "test", now_ms())
        .unwrap();
    assert_eq!((r.entered, r.left), (1, 1));

    // B's phone receives the household as it is on the server (without A's offline edit).
    let rb = b.sync().await;
    assert!(rb.departed.is_empty());
    let at_b = b.store.household(hh).unwrap();
    assert_eq!(at_b.persons[0].name, NAME);
    assert_eq!(b.section_text(hh, v, Section::FamilySituation), "");

    // A reconnects: the offline edit is handed in, then the household leaves A's phone.
    let ra = a.sync().await;
    assert_eq!(ra.departed, vec![hh], "{ra:?}");
    assert!(a.store.household(hh).is_err());
    assert!(a.store.unsynced_households().unwrap().is_empty());
    match a.store.why_gone(hh).unwrap() {
        Some(Gone::LeftScope(d)) => {
            assert_eq!(d.household, hh);
            assert!(d.removed_at.is_some());
            assert_eq!(
                d.discarded_changes, 0,
                "the offline edit reached the server"
            );
        }
        other => panic!("why_gone: {other:?}"),
    }
    assert_eq!(a.store.departed_households().unwrap().len(), 1);
    assert!(
        planted_in(&a).is_empty(),
        "A's files still hold {:?}",
        planted_in(&a)
    );

    // B and the supervisor both see A's offline edit and B's phone keeps the household.
    b.sync().await;
    sup.sync().await;
    assert_eq!(b.section_text(hh, v, Section::FamilySituation), OFFLINE);
    assert_eq!(sup.section_text(hh, v, Section::FamilySituation), OFFLINE);
    assert_eq!(b.section_text(hh, v, Section::Concerns), NOTE);

    // A's device can no longer write to it (the hand-over was used up is not the point:
    // A's phone holds nothing to push), nor read it: a new device of A bootstraps without it.
    let a2 = {
        let code = doorstep_server::credentials::enroll_device(
            server.store.as_ref(),
            a.store.worker(),
            now_ms(),
        )
        .unwrap()
        .1;
        Device::enroll(&server.url(), &server.url(), &code, "A01-second").await
    };
    a2.sync().await;
    assert!(a2.store.household(hh).is_err());
    assert!(planted_in(&a2).is_empty());

    // Reassigned back: it returns to A's phone whole, and is no longer "gone".
    server
        .store
        .assign(station, hh, Some(a.store.worker()), None, "test", now_ms())
        .unwrap();
    a.sync().await;
    assert_eq!(a.section_text(hh, v, Section::FamilySituation), OFFLINE);
    assert_eq!(a.store.why_gone(hh).unwrap(), None);
    b.sync().await;
    assert!(b.store.household(hh).is_err(), "it left B");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_made_while_the_answer_was_on_its_way_are_handed_in_before_the_household_goes() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let a = server.device_as(station, "A01", Role::Worker, None).await;
    let b = server.device_as(station, "A02", Role::Worker, None).await;
    a.sync().await;
    b.sync().await;
    let (hh, v) = plant(&a);
    a.sync().await;
    server
        .store
        .assign(station, hh, Some(b.store.worker()), None, "test", now_ms())
        .unwrap();
    // A's request leaves; A types while it is on its way; the answer says "left".
    let body = a.store.prepare_sync_request(1 << 20).unwrap();
    a.store
        .splice_section(hh, v, Section::FamilySituation, 0, 0, OFFLINE)
        .unwrap();
    let answer = post(&server, &a.token, body).await;
    let step = a.store.apply_sync_response(&answer).unwrap();
    assert!(step.departed.is_empty(), "still holds an edit to hand in");
    assert!(step.more, "and says so");
    assert!(matches!(
        a.store.why_gone(hh).unwrap(),
        Some(Gone::LeftScope(DepartedHousehold {
            removed_at: None,
            ..
        }))
    ));
    // The next round trip hands it in (the server's hand-over), and then it goes.
    let r = a.sync().await;
    assert_eq!(r.departed, vec![hh]);
    assert!(a.store.household(hh).is_err());
    b.sync().await;
    assert_eq!(b.section_text(hh, v, Section::FamilySituation), OFFLINE);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_share_a_caseload_and_a_role_change_rescopes_the_phone() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let a = server
        .device_as(station, "A01", Role::Worker, Some("北片"))
        .await;
    let b = server
        .device_as(station, "A02", Role::Worker, Some("北片"))
        .await;
    let c = server
        .device_as(station, "A03", Role::Worker, Some("南片"))
        .await;
    for d in [&a, &b, &c] {
        d.sync().await;
    }
    assert_eq!(a.store.team().unwrap().unwrap().as_str(), "北片");
    let north = a.new_household("HH-NORTH");
    let south = c.new_household("HH-SOUTH");
    a.sync().await;
    c.sync().await;
    b.sync().await;
    assert!(b.store.household(north).is_ok(), "a teammate's household");
    assert!(b.store.household(south).is_err(), "another team's");

    // C becomes a supervisor: the north household arrives; back to worker: it leaves.
    server
        .store
        .set_role(c.store.worker(), Role::Supervisor, now_ms())
        .unwrap();
    c.sync().await;
    assert_eq!(c.store.role().unwrap(), Some(Role::Supervisor));
    assert!(c.store.household(north).is_ok());
    server
        .store
        .set_role(c.store.worker(), Role::Worker, now_ms())
        .unwrap();
    let r = c.sync().await;
    assert_eq!(r.departed, vec![north]);
    assert!(c.store.household(south).is_ok(), "her own stays");

    // B moves to the south team: north leaves B's phone, south arrives.
    server
        .store
        .set_team(
            b.store.worker(),
            Some(&TeamName::new("南片").unwrap()),
            now_ms(),
        )
        .unwrap();
    let r = b.sync().await;
    assert_eq!(r.departed, vec![north]);
    assert!(b.store.household(south).is_ok());
    assert_eq!(b.store.team().unwrap().unwrap().as_str(), "南片");
    // North stays with A, who created it.
    a.sync().await;
    assert!(a.store.household(north).is_ok());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_on_the_way_out_still_reaches_the_access_log() {
    use doorstep_server::store::console::{Accessor, ConsoleStore};
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let a = server.device_as(station, "A01", Role::Worker, None).await;
    let b = server.device_as(station, "A02", Role::Worker, None).await;
    a.sync().await;
    let (hh, _) = plant(&a);
    a.sync().await;
    server
        .store
        .assign(station, hh, Some(b.store.worker()), None, "test", now_ms())
        .unwrap();
    // The worker opens the case file while the answer that takes it away is on its way:
    // the household goes (nothing of hers to hand in), the opening stays to be sent.
    let body = a.store.prepare_sync_request(1 << 20).unwrap();
    a.store.open_case_file(hh).unwrap();
    let answer = post(&server, &a.token, body).await;
    let step = a.store.apply_sync_response(&answer).unwrap();
    assert_eq!(step.departed, vec![hh]);
    assert_eq!(a.store.unsynced_accesses().unwrap(), 1);
    a.sync().await;
    assert_eq!(a.store.unsynced_accesses().unwrap(), 0);
    let logged = server.store.accesses(station, Some(hh), 10).unwrap();
    assert!(
        logged.iter().any(|e| matches!(
            &e.by,
            Accessor::Device { worker, .. } if *worker == a.store.worker()
        )),
        "{logged:?}"
    );
    server.stop().await;
}

/// A worker leaves: their whole caseload goes to a colleague in one command, and a
/// village's households go to a team. Each phone gains and loses exactly those households
/// at its next sync; a household of another village and one assigned to someone else stay
/// where they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaving_workers_caseload_and_a_village_are_assigned_in_one_command() {
    use doorstep_server::caseload::{self, Pick};
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let a = server.device_as(station, "A01", Role::Worker, None).await;
    let b = server.device_as(station, "A02", Role::Worker, None).await;
    let north = TeamName::new("北片").unwrap();
    let c = server
        .device_as(station, "A03", Role::Worker, Some("北片"))
        .await;
    let created = |d: &Device, code: &str, village: &str| {
        d.store
            .create_household(&NewHousehold {
                code: code.into(),
                village: village.into(),
                ..Default::default()
            })
            .unwrap()
    };
    let a_stone = created(&a, "HH-A-1", "石桥村");
    let a_willow = created(&a, "HH-A-2", "柳湾村");
    let b_stone = created(&b, "HH-B-1", "石桥村");
    let b_willow = created(&b, "HH-B-2", "柳湾村");
    // Station work (ADR 0021) is in everyone's scope and moves with no assignment.
    let activity = a
        .store
        .create_activity(&NewActivity {
            activity_type: "activity.safety.drowning".into(),
            date: Date::parse("2026-07-01").unwrap(),
            place: "石桥村".into(),
            target_group: String::new(),
            attendee_count: Some(30),
            partners: vec![],
            materials: vec![],
            resources: vec![],
            narrative: String::new(),
        })
        .unwrap();
    for d in [&a, &b, &c] {
        d.sync().await;
    }
    let held = |d: &Device| -> Vec<HouseholdId> {
        let mut ids = d.store.household_ids().unwrap();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<HouseholdId>| {
        v.sort();
        v
    };
    assert_eq!(held(&a), sorted(vec![a_stone, a_willow]));
    assert!(held(&c).is_empty());

    // A leaves: everything assigned to A goes to B.
    let r = caseload::assign(
        server.store.as_ref(),
        station,
        &Pick::AssignedTo(a.store.worker()),
        Some(b.store.worker()),
        None,
        "test",
        now_ms(),
    )
    .unwrap();
    assert_eq!((r.households, r.entered, r.left), (2, 2, 2), "{r:?}");
    let ra = a.sync().await;
    assert_eq!(sorted(ra.departed.clone()), sorted(vec![a_stone, a_willow]));
    assert!(held(&a).is_empty());
    b.sync().await;
    assert_eq!(held(&b), sorted(vec![a_stone, a_willow, b_stone, b_willow]));

    // 石桥村 goes to the north team (no single worker): B loses both of its households
    // there, C gains them; 柳湾村's stay with B.
    let r = caseload::assign(
        server.store.as_ref(),
        station,
        &Pick::Village(" 石桥村 ".into()),
        None,
        Some(&north),
        "test",
        now_ms(),
    )
    .unwrap();
    assert_eq!((r.households, r.unreadable), (2, 0), "{r:?}");
    let rb = b.sync().await;
    assert_eq!(sorted(rb.departed.clone()), sorted(vec![a_stone, b_stone]));
    assert_eq!(held(&b), sorted(vec![a_willow, b_willow]));
    c.sync().await;
    assert_eq!(held(&c), sorted(vec![a_stone, b_stone]));
    // Pick::AssignedTo and Pick::Village never take the activity; everyone still has it.
    for d in [&a, &b, &c] {
        d.sync().await;
        assert_eq!(
            d.store.activity(activity).unwrap().place,
            "石桥村",
            "{}",
            d.label
        );
    }

    // A household of another station is not "one of this station's".
    let elsewhere = server.station("柳湾镇社工站");
    assert!(caseload::pick(server.store.as_ref(), elsewhere, &Pick::One(a_willow)).is_err());
    server.stop().await;
}

async fn post(server: &TestServer, token: &str, body: Vec<u8>) -> Vec<u8> {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/sync", server.url()))
        .bearer_auth(token)
        .header("content-type", protocol::SYNC_CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap().to_vec()
}

fn now_ms() -> i64 {
    doorstep_server::now_ms()
}
