//! Issue 17 against a real server on 127.0.0.1: a household recorded by an app from before
//! ID numbers were checked, holding a number that is not valid, still syncs, reads and is
//! worked on by today's phones (the server's validator does not check numbers; the phones
//! check only what they write); and companions on a visit, added on two phones offline,
//! sync to both through the server's validation and provenance checks.
#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ROOT};
use doorstep_core::protocol::*;
use doorstep_core::transport::enroll;
use doorstep_core::*;
use doorstep_server::store::DeviceAuth;
use doorstep_tests::raw_device::RawDevice;
use doorstep_tests::*;

/// A wrong check character (the valid number ends in 6).
const OLD_NUMBER: &str = "110101201403080011";

/// A device of `station` whose signing key the test holds: an older app writing raw.
async fn old_app(server: &TestServer, station: StationId) -> (RawDevice, String) {
    let code = server.enrolment_code(station, "OLD");
    let e = enroll(&server.url(), &code).await.unwrap();
    let auth = DeviceAuth {
        device: e.device,
        worker: e.worker,
        station: e.station,
        revoked: false,
    };
    (RawDevice::new(auth, 0x17), e.token)
}

async fn post(server: &TestServer, token: &str, req: &SyncRequest) -> SyncResponse {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/sync", server.url()))
        .bearer_auth(token)
        .body(req.encode())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    SyncResponse::decode(&resp.bytes().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_stored_before_the_check_still_syncs_and_reads() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    let (old, token) = old_app(&server, station).await;

    // The older app records a household and a person, then writes the person's number as
    // it did then: unchecked.
    let hh = old
        .store
        .create_household(&NewHousehold {
            code: "HH-000017".into(),
            village: "石桥村".into(),
            ..Default::default()
        })
        .unwrap();
    let p = old
        .store
        .add_person(hh, &NewPerson::named("王小明", "孙子"))
        .unwrap();
    let mut doc = old.document(hh);
    doc.transact(|tx| {
        let persons = tx.get(ROOT, "persons")?.unwrap().1;
        let rec = tx.get(&persons, p.to_string())?.unwrap().1;
        let cell = tx.put_object(&rec, "id_number", ObjType::Map)?;
        tx.put(&cell, "v", OLD_NUMBER)?;
        tx.put(&cell, "by", old.auth.worker.to_string())?;
        tx.put(&cell, "dev", old.auth.device.to_string())?;
        tx.put(&cell, "at", Timestamp::now().0)
    })
    .unwrap();
    let changes = doc.get_changes(&[]);
    let resp = post(&server, &token, &old.request(hh, &changes)).await;
    assert!(resp.errors.is_empty(), "refused: {:?}", resp.errors);
    assert!(resp.acks.iter().any(|a| a.doc == hh), "acknowledged");

    // Today's phone pulls it, reads the number as stored, and works on the household.
    let w01 = server.device(station, "W01", &url).await;
    w01.sync().await;
    assert!(w01.store.quarantined().unwrap().is_empty());
    let person = &w01.store.household(hh).unwrap().persons[0];
    assert_eq!(person.id_number.as_deref(), Some(OLD_NUMBER));
    w01.store
        .edit_person(hh, p, &PersonEdit::Relation("外孙".into()))
        .unwrap();
    w01.store
        .edit_person(
            hh,
            p,
            &PersonEdit::BirthDate(Some(BirthDate::parse("2014-03-08").unwrap())),
        )
        .unwrap();
    // Writing the number again is a new write: checked, refused, nothing written.
    assert!(matches!(
        w01.store
            .edit_person(hh, p, &PersonEdit::IdNumber(Some(OLD_NUMBER.into()))),
        Err(Error::InvalidInput(_))
    ));
    // The corrected one goes through, and the server takes all of it.
    w01.store
        .edit_person(
            hh,
            p,
            &PersonEdit::IdNumber(Some("110101201403080016".into())),
        )
        .unwrap();
    w01.sync().await;
    assert!(matches!(
        w01.store.household_upload_status(hh).unwrap(),
        UploadStatus::Uploaded { .. }
    ));
    assert_server_has(&server, &w01);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companions_added_on_two_phones_offline_reach_both() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    let w01 = server.device(station, "W01", &url).await;
    let w02 = server.device(station, "W02", &url).await;
    let hh = w01.new_household("HH-000018");
    let v = w01
        .store
        .start_visit(
            hh,
            &NewVisit {
                kind: VisitKind::Home,
                date: Date::parse("2026-11-29").unwrap(),
                started_at: Timestamp::now(),
                gps: None,
                other_workers: vec![],
                present: vec![],
                companions: vec![Companion::new("李芳", "村儿童主任")],
            },
        )
        .unwrap();
    w01.sync().await;
    w02.sync().await;

    // Offline: W01 adds the police officer; W02 adds the teacher and removes no one.
    let officer = Companion::new("张伟", "派出所民警");
    let teacher = Companion::new("陈老师", "石桥小学班主任");
    w01.store
        .edit_visit(hh, v, &VisitEdit::AddCompanion(officer.clone()))
        .unwrap();
    w02.store
        .edit_visit(hh, v, &VisitEdit::AddCompanion(teacher.clone()))
        .unwrap();
    w02.store
        .splice_section(hh, v, Section::ActualNeeds, 0, 0, "需要学习用品。")
        .unwrap();
    for d in [&w01, &w02, &w01] {
        d.sync().await;
        assert!(
            d.store.refused_households().unwrap().is_empty(),
            "{} refused",
            d.label
        );
    }
    assert_converged(&[&w01, &w02]);
    let visit = w02
        .store
        .household(hh)
        .unwrap()
        .visits
        .into_iter()
        .find(|x| x.id == v)
        .unwrap();
    assert_eq!(
        visit.companions,
        vec![officer, Companion::new("李芳", "村儿童主任"), teacher]
    );
    assert_server_has(&server, &w02);

    // Finalised on one phone, the companions are evidence: once the finalisation has
    // arrived, the other phone no longer changes them.
    w01.store.finalise_visit(hh, v).unwrap();
    w01.sync().await;
    w02.sync().await;
    assert!(matches!(
        w02.store.edit_visit(
            hh,
            v,
            &VisitEdit::RemoveCompanion(Companion::new("李芳", "村儿童主任"))
        ),
        Err(Error::VisitFinalised)
    ));
    server.stop().await;
}
