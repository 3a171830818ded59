//! Issue 17 against a real server on 127.0.0.1: the station's own work (ADR 0021). Two
//! phones type into one group activity's narrative offline and both words survive; a
//! resource of the register reaches every worker of the station whatever their caseload,
//! and no county account; erasing a household takes its persons' attendance with it.
#![allow(clippy::unwrap_used)]

use doorstep_core::protocol::ErasureReason;
use doorstep_core::*;
use doorstep_server::store::ServerStore;
use doorstep_tests::*;

fn activity() -> NewActivity {
    NewActivity {
        activity_type: "activity.safety.traffic".into(),
        date: Date::parse("2026-11-20").unwrap(),
        place: "镇中心小学".into(),
        target_group: "三至五年级学生".into(),
        attendee_count: Some(120),
        partners: vec!["县交警大队".into()],
        materials: vec!["交通安全手册 120 册".into()],
        resources: vec![],
        narrative: String::new(),
    }
}

fn doc_id(uuid: &uuid::Uuid) -> HouseholdId {
    HouseholdId::from_uuid(*uuid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_type_into_one_activity_and_both_see_a_resource() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    // Two workers with caseloads of their own (no shared team), and a county account.
    let a = server
        .device_as(station, "W01", Role::Worker, Some("north"))
        .await;
    let b = server
        .device_as(station, "W02", Role::Worker, Some("south"))
        .await;
    let county = server.device_as(station, "C01", Role::County, None).await;
    let other = server.station("河口镇社工站");
    let stranger = server.device(other, "X01", &url).await;

    let resource = a
        .store
        .create_resource(&NewResource {
            kind: "resource.volunteer_team".into(),
            name: "镇青年志愿服务队".into(),
            leader: "队长".into(),
            phones: vec!["13800138000".into()],
            member_count: Some(24),
            availability: "周末".into(),
            services: "交通安全宣传".into(),
            wishes: String::new(),
        })
        .unwrap();
    let act = a
        .store
        .create_activity(&NewActivity {
            resources: vec![resource],
            ..activity()
        })
        .unwrap();
    let private = a.new_household("HH-N-001");
    a.sync().await;
    b.sync().await;

    // B sees the station's work, not A's caseload.
    assert_eq!(b.store.resource(resource).unwrap().name, "镇青年志愿服务队");
    assert_eq!(b.store.activity(act).unwrap().resources, [resource]);
    assert!(
        b.store.household(private).is_err(),
        "A's caseload stays A's"
    );
    assert_eq!(
        b.store.resources(Some("resource.volunteer_team")).unwrap()[0].id,
        resource
    );

    // Offline on both phones: each types a word into the narrative, and edits a field.
    a.store
        .splice_activity_narrative(act, 0, 0, "交警讲解了过马路的规则。")
        .unwrap();
    b.store
        .splice_activity_narrative(act, 0, 0, "学生们提问踊跃。")
        .unwrap();
    b.store
        .edit_activity(act, &ActivityEdit::AttendeeCount(Some(118)))
        .unwrap();
    a.sync().await;
    b.sync().await;
    a.sync().await;
    for d in [&a, &b] {
        let read = d.store.activity(act).unwrap();
        assert!(
            read.narrative.contains("过马路"),
            "{}: {}",
            d.label,
            read.narrative
        );
        assert!(read.narrative.contains("提问踊跃"), "{}", d.label);
        assert_eq!(read.attendee_count, Some(118));
        assert_eq!(d.store.activities_in_month(2026, 11).unwrap().len(), 1);
        assert!(d.store.search("提问踊跃", 5).unwrap().len() == 1);
    }
    assert_eq!(
        a.store.activity(act).unwrap(),
        b.store.activity(act).unwrap()
    );
    assert_eq!(
        a.store.heads(doc_id(act.as_uuid())).unwrap(),
        b.store.heads(doc_id(act.as_uuid())).unwrap()
    );
    // The server holds what the phones hold.
    let stored = server
        .store
        .load_document(doc_id(act.as_uuid()))
        .unwrap()
        .unwrap();
    let doc = doorstep_server::snapshot::load_stored(&stored).unwrap();
    assert_eq!(
        doc.get_heads(),
        a.store.heads(doc_id(act.as_uuid())).unwrap()
    );

    // No county account and no other station receives any of it.
    county.sync().await;
    stranger.sync().await;
    for d in [&county, &stranger] {
        assert!(d.store.activity(act).is_err(), "{}", d.label);
        assert!(d.store.resources(None).unwrap().is_empty(), "{}", d.label);
    }
    // A county account may not create station work either.
    county.store.create_activity(&activity()).unwrap();
    let report = county.sync().await;
    assert_eq!(report.refused, 1, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_household_takes_its_attendance_and_referrals_from_every_replica() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    let a = server.device(station, "W01", &url).await;
    let b = server.device(station, "W02", &url).await;
    let act = a.store.create_activity(&activity()).unwrap();
    let resource = a
        .store
        .create_resource(&NewResource {
            kind: "resource.social_organisation".into(),
            name: "阳光社工服务中心".into(),
            ..Default::default()
        })
        .unwrap();
    let hh = a.new_household("HH-000101");
    let child = a
        .store
        .add_person(hh, &NewPerson::named("王小明", "孙子"))
        .unwrap();
    a.store
        .edit_person(hh, child, &PersonEdit::AddActivity(act))
        .unwrap();
    let need = a
        .store
        .add_need(
            hh,
            &NewNeed {
                category: "学业".into(),
                description: "课后辅导".into(),
                person: Some(child),
                visit: None,
            },
        )
        .unwrap();
    a.store.refer_need(hh, need, Some(resource)).unwrap();
    a.sync().await;
    b.sync().await;
    assert_converged(&[&a, &b]);
    for d in [&a, &b] {
        assert_eq!(d.store.attendees(act).unwrap().len(), 1, "{}", d.label);
        assert_eq!(d.store.referrals_to(resource).unwrap().len(), 1);
    }

    server.erase(station, hh, ErasureReason::SubjectRequest);
    a.sync().await;
    b.sync().await;
    for d in [&a, &b] {
        assert!(d.store.attendees(act).unwrap().is_empty(), "{}", d.label);
        assert!(d.store.referrals_to(resource).unwrap().is_empty());
        // The activity and the resource stay: they never held the person.
        assert_eq!(d.store.activity(act).unwrap().attendee_count, Some(120));
        assert_eq!(d.store.resource(resource).unwrap().name, "阳光社工服务中心");
    }
    assert_converged(&[&a, &b]);
    // Nor does the server's copy of the activity name the person.
    let stored = server
        .store
        .load_document(doc_id(act.as_uuid()))
        .unwrap()
        .unwrap();
    let doc = doorstep_server::snapshot::load_stored(&stored).unwrap();
    let child_id = child.to_string();
    for change in doc.get_changes(&[]) {
        let ops = change.decode().operations;
        assert!(
            !format!("{ops:?}").contains(&child_id),
            "the activity never holds a person's id"
        );
    }
    // A resource registered in error is erased the same way, from every phone.
    server.erase(
        station,
        doc_id(resource.as_uuid()),
        ErasureReason::CreatedInError,
    );
    a.sync().await;
    b.sync().await;
    for d in [&a, &b] {
        assert!(d.store.resource(resource).is_err(), "{}", d.label);
        assert!(d.store.resources(None).unwrap().is_empty());
        assert!(d.store.activity(act).is_ok());
    }
    assert_converged(&[&a, &b]);
}

/// A household cannot be turned into station work (which every worker of the station sees):
/// a push that rewrites ROOT `kind` into a well-formed activity is refused as invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_household_cannot_become_station_work() {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ReadDoc, ROOT};
    use doorstep_core::protocol::{DocErrorCode, SyncRequest, SyncResponse};
    use doorstep_core::transport::enroll;
    use doorstep_server::store::DeviceAuth;
    use doorstep_tests::raw_device::RawDevice;

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

    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let code = server.enrolment_code(station, "RAW");
    let e = enroll(&server.url(), &code).await.unwrap();
    let raw = RawDevice::new(
        DeviceAuth {
            device: e.device,
            worker: e.worker,
            station: e.station,
            revoked: false,
        },
        0x20,
    );
    let hh = raw
        .store
        .create_household(&NewHousehold {
            code: "HH-000201".into(),
            ..Default::default()
        })
        .unwrap();
    let mut doc = raw.document(hh);
    let first = doc.get_changes(&[]);
    let resp = post(&server, &e.token, &raw.request(hh, &first)).await;
    assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    let before = doc.get_heads();
    doc.transact(|tx| {
        tx.put(ROOT, "kind", "activity")?;
        let a = tx.put_object(ROOT, "activity", ObjType::Map)?;
        for (k, v) in [("type", "activity.safety"), ("date", "2026-11-20")] {
            let c = tx.put_object(&a, k, ObjType::Map)?;
            tx.put(&c, "v", v)?;
            tx.put(&c, "by", raw.auth.worker.to_string())?;
            tx.put(&c, "dev", raw.auth.device.to_string())?;
            tx.put(&c, "at", Timestamp::now().0)?;
        }
        tx.put_object(&a, "narrative", ObjType::Text)?;
        Ok::<_, automerge::AutomergeError>(())
    })
    .unwrap();
    assert_eq!(
        doc.get(ROOT, "kind").unwrap().unwrap().0.to_string(),
        "\"activity\""
    );
    let forged = doc.get_changes(&before);
    let resp = post(&server, &e.token, &raw.request(hh, &forged)).await;
    assert_eq!(resp.errors.len(), 1, "{resp:?}");
    assert_eq!(resp.errors[0].code, DocErrorCode::Invalid);
    // The server still holds a household, in its creator's caseload only.
    let colleague = server
        .device_as(station, "W09", Role::Worker, Some("elsewhere"))
        .await;
    colleague.sync().await;
    assert!(colleague.store.household(hh).is_err());
    assert!(colleague.store.resources(None).unwrap().is_empty());
}
