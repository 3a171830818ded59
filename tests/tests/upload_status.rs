//! What a field app shows per household and per visit (issue 19): pending until the
//! server acknowledges, uploaded with a time, refused with a code and a reason; and the
//! list of refused households. Against a real server on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use doorstep_core::protocol::DocErrorCode;
use doorstep_core::transport::{enroll, HttpTransport};
use doorstep_core::*;
use doorstep_tests::*;

fn uploaded_at(status: UploadStatus) -> Timestamp {
    match status {
        UploadStatus::Uploaded { at: Some(at) } => at,
        other => panic!("not uploaded with a time: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_typed_offline_is_pending_then_uploaded_with_its_time() {
    let server = TestServer::start().await;
    let station = server.station("站");
    let a = server.device(station, "A", &server.url()).await;
    let hh = a.new_household("HH-000001");
    let v1 = a.visit(hh);
    a.type_into(hh, v1, Section::Concerns, "孩子情绪低落，需要关注。");
    assert_eq!(
        a.store.household_upload_status(hh).unwrap(),
        UploadStatus::Pending
    );
    assert_eq!(
        a.store.visit_upload_status(hh, v1).unwrap(),
        UploadStatus::Pending
    );
    assert!(a.store.refused_households().unwrap().is_empty());

    let before = Timestamp::now();
    a.sync().await;
    let after = Timestamp::now();
    let at = uploaded_at(a.store.household_upload_status(hh).unwrap());
    assert!(
        before <= at && at <= after,
        "{before:?} <= {at:?} <= {after:?}"
    );
    let v1_at = uploaded_at(a.store.visit_upload_status(hh, v1).unwrap());
    assert!(before <= v1_at && v1_at <= after);

    // A second visit typed offline: it and its household are pending, the first visit
    // keeps its receipt.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let v2 = a.visit(hh);
    a.type_into(hh, v2, Section::ActualNeeds, "申请补贴");
    assert_eq!(
        a.store.household_upload_status(hh).unwrap(),
        UploadStatus::Pending
    );
    assert_eq!(
        a.store.visit_upload_status(hh, v2).unwrap(),
        UploadStatus::Pending
    );
    assert_eq!(
        uploaded_at(a.store.visit_upload_status(hh, v1).unwrap()),
        v1_at
    );
    // Finalising the first visit makes it pending again.
    a.store.finalise_visit(hh, v1).unwrap();
    assert_eq!(
        a.store.visit_upload_status(hh, v1).unwrap(),
        UploadStatus::Pending
    );
    a.sync().await;
    let v2_at = uploaded_at(a.store.visit_upload_status(hh, v2).unwrap());
    assert!(v2_at > v1_at);
    assert!(uploaded_at(a.store.visit_upload_status(hh, v1).unwrap()) > v1_at);
    assert!(uploaded_at(a.store.household_upload_status(hh).unwrap()) > at);

    // A colleague received the household: nothing of theirs to upload.
    let b = server.device(station, "B", &server.url()).await;
    b.sync().await;
    assert_eq!(
        b.store.household_upload_status(hh).unwrap(),
        UploadStatus::Uploaded { at: None }
    );
    assert_eq!(
        b.store.visit_upload_status(hh, v2).unwrap(),
        UploadStatus::Uploaded { at: None }
    );
    assert!(matches!(
        b.store.visit_upload_status(hh, VisitId::new()),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        b.store.household_upload_status(HouseholdId::new()),
        Err(Error::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_household_the_server_refuses_is_listed_with_its_code() {
    let server = TestServer::start().await;
    let station = server.station("站");
    let good = server.device(station, "A", &server.url()).await;
    let fine = good.new_household("HH-000001");
    // A phone whose store writes another worker's id into what it records: the server
    // refuses the new household it did not write as its own, as it refuses any id this
    // device may not write (one code for both, so ids are not probed).
    let code = server.enrolment_code(station, "M");
    let e = enroll(&server.url(), &code).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(
        dir.path().join("m.db"),
        StoreKey::Raw([3; 32]),
        WorkerId::new(),
        e.station,
    );
    options.device = Some(e.device);
    let store = Store::open(options).unwrap();
    let transport = HttpTransport::new(&server.url(), &e.token, Duration::from_secs(10)).unwrap();
    let hh = store
        .create_household(&NewHousehold {
            code: "HH-000002".into(),
            village: "石桥村".into(),
            ..Default::default()
        })
        .unwrap();
    let visit = store
        .start_visit(
            hh,
            &NewVisit {
                kind: VisitKind::Home,
                date: Date::parse("2026-11-29").unwrap(),
                started_at: Timestamp::now(),
                gps: None,
                other_workers: vec![],
                present: vec![],
                companions: vec![],
            },
        )
        .unwrap();
    let report = transport.sync(&store).await.unwrap();
    assert_eq!(report.refused, 1);

    let code = DocErrorCode::NotFoundOrForbidden;
    let refused = UploadStatus::Refused {
        code,
        reason: refusal_reason(code).to_owned(),
    };
    assert_eq!(store.household_upload_status(hh).unwrap(), refused);
    assert_eq!(store.visit_upload_status(hh, visit).unwrap(), refused);
    assert_eq!(
        store.refused_households().unwrap(),
        vec![RefusedHousehold {
            household: hh,
            status: refused.clone()
        }]
    );
    // Not pushed again until changed here; the well-behaved phone is unaffected.
    assert_eq!(transport.sync(&store).await.unwrap().refused, 0);
    assert_eq!(store.refused_households().unwrap().len(), 1);
    good.sync().await;
    assert!(good.store.refused_households().unwrap().is_empty());
    assert!(matches!(
        good.store.household_upload_status(fine).unwrap(),
        UploadStatus::Uploaded { at: Some(_) }
    ));
    // A change here clears the refusal: pending again (and tried again at the next sync).
    store
        .edit_household(hh, &HouseholdEdit::Village("石桥村二组".into()))
        .unwrap();
    assert_eq!(
        store.household_upload_status(hh).unwrap(),
        UploadStatus::Pending
    );
    assert!(store.refused_households().unwrap().is_empty());
}
