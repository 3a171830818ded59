//! Contact cards end to end: batches and leases from the server's admin, issuing offline
//! from leases, duplicates surfaced everywhere and resolved by a void, serials checked.
#![allow(clippy::unwrap_used)]

use doorstep_core::*;
use doorstep_server::cards as admin;
use doorstep_server::store::ServerStore;
use doorstep_tests::*;

fn day(s: &str) -> Date {
    Date::parse(s).unwrap()
}

fn card(serial: &str, outside_lease: bool) -> NewCard {
    NewCard {
        serial: serial.into(),
        visit: None,
        person: None,
        replaces: None,
        outside_lease,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_from_leases_duplicates_and_checks() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    let a = server.device(station, "A", &url).await;
    let b = server.device(station, "B", &url).await;
    let s = server.store.as_ref();
    let batch = admin::add_batch(s, station, "HG", 1, 5000).unwrap();
    admin::add_lease(
        s,
        station,
        batch,
        1,
        10,
        a.device_id,
        Some(day("2027-06-30")),
    )
    .unwrap();
    admin::add_lease(s, station, batch, 11, 20, b.device_id, None).unwrap();
    assert!(
        admin::add_lease(s, station, batch, 5, 15, a.device_id, None).is_err(),
        "overlapping lease"
    );
    assert!(
        admin::add_lease(s, station, batch, 4990, 5010, a.device_id, None).is_err(),
        "outside the batch"
    );
    let ha = a.new_household("HH-000001");
    let hb = a.new_household("HH-000002");
    a.sync().await;
    b.sync().await;
    let today = day("2026-11-29");
    assert_eq!(
        a.store.card_leases().unwrap().len(),
        1,
        "the lease reached the device"
    );
    let first_a = a.store.next_card_serial(today).unwrap().unwrap();
    assert_eq!(first_a, CardSerial::new("HG", 1).unwrap().to_string());
    assert_eq!(
        b.store.next_card_serial(today).unwrap().unwrap(),
        CardSerial::new("HG", 11).unwrap().to_string()
    );

    // Offline, both issue from their own leases: no collision after sync.
    for _ in 0..3 {
        let next = a.store.next_card_serial(today).unwrap().unwrap();
        a.store.issue_card(ha, &card(&next, false), today).unwrap();
        let next = b.store.next_card_serial(today).unwrap().unwrap();
        b.store.issue_card(hb, &card(&next, false), today).unwrap();
    }
    for _ in 0..2 {
        a.sync().await;
        b.sync().await;
    }
    assert!(a.store.duplicate_cards().unwrap().is_empty());
    assert!(s.duplicate_cards(station).unwrap().is_empty());
    assert_eq!(b.store.cards_of_household(ha).unwrap().len(), 3);

    // Checks on the phone: a mistyped serial, a serial outside the lease without the flag.
    let good = CardSerial::new("HG", 7).unwrap().to_string();
    let typo = good.replace("000007", "000070");
    assert!(matches!(
        a.store.issue_card(ha, &card(&typo, false), today),
        Err(Error::InvalidInput(_))
    ));
    let bs = CardSerial::new("HG", 15).unwrap().to_string();
    assert!(matches!(
        a.store.issue_card(ha, &card(&bs, false), today),
        Err(Error::InvalidInput(_))
    ));
    let other_prefix = CardSerial::new("XZ", 1).unwrap().to_string();
    assert!(matches!(
        a.store.issue_card(ha, &card(&other_prefix, true), today),
        Err(Error::InvalidInput(_))
    ));

    // A forced collision: B hands out a card from A's lease (a found card), both offline.
    let contested = a.store.next_card_serial(today).unwrap().unwrap();
    let mine = a
        .store
        .issue_card(ha, &card(&contested, false), today)
        .unwrap();
    b.store
        .issue_card(hb, &card(&contested, true), today)
        .unwrap();
    for _ in 0..2 {
        a.sync().await;
        b.sync().await;
    }
    for d in [&a, &b] {
        let dup = d.store.duplicate_cards().unwrap();
        assert_eq!(dup.len(), 1, "{}", d.label);
        assert_eq!(dup[0].serial, contested);
        assert_eq!(dup[0].issuances.len(), 2);
    }
    assert_eq!(
        s.duplicate_cards(station).unwrap().len(),
        2,
        "the server's review queue"
    );
    assert_eq!(s.cards_by_serial(station, &contested).unwrap().len(), 2);
    // Resolved by voiding one issuance; nothing is deleted.
    a.store.set_card_status(ha, mine, CardStatus::Void).unwrap();
    a.sync().await;
    b.sync().await;
    assert!(
        a.store.duplicate_cards().unwrap().is_empty()
            && b.store.duplicate_cards().unwrap().is_empty()
    );
    assert!(s.duplicate_cards(station).unwrap().is_empty());
    assert_eq!(
        b.store.cards_by_serial(&contested).unwrap().len(),
        2,
        "both issuances kept, one void"
    );
    assert_converged(&[&a, &b]);

    // Stock: A has issued 4 of 10.
    let stock = a.store.card_stock(today, 7).unwrap();
    assert_eq!((stock.remaining, stock.low), (6, true));
    assert!(!a.store.card_stock(today, 6).unwrap().low);
    // Expiry: after the last day, A's lease gives nothing and its serials need the flag.
    let later = day("2027-07-01");
    assert_eq!(a.store.next_card_serial(later).unwrap(), None);
    let leftover = CardSerial::new("HG", 9).unwrap().to_string();
    assert!(a
        .store
        .issue_card(ha, &card(&leftover, false), later)
        .is_err());
    // Returned: the admin takes B's lease back; B learns it on sync.
    let lease_b = b.store.card_leases().unwrap()[0].id;
    admin::return_lease(s, station, lease_b).unwrap();
    b.sync().await;
    assert!(b.store.card_leases().unwrap()[0].returned);
    assert_eq!(b.store.next_card_serial(today).unwrap(), None);
    // Reports: cards per worker over a period.
    let issued = b
        .store
        .cards_issued_by(a.store.worker(), Timestamp(0), Timestamp::now())
        .unwrap();
    assert_eq!(issued.len(), 4);
    assert_eq!(
        s.cards_issued_by(station, a.store.worker(), 0, i64::MAX)
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_another_stations_serial_and_station_document_writes() {
    let server = TestServer::start().await;
    let (mine, theirs) = (server.station("A站"), server.station("B站"));
    let url = server.url();
    let a = server.device(mine, "A", &url).await;
    let s = server.store.as_ref();
    admin::add_batch(s, mine, "HG", 1, 100).unwrap();
    admin::add_batch(s, theirs, "XZ", 1, 100).unwrap();
    let h_ok = a.new_household("HH-000001");
    let h_bad = a.new_household("HH-000002");
    a.sync().await;
    // A device that bypasses the phone's checks (the low-level call records any serial).
    let foreign = CardSerial::new("XZ", 5).unwrap().to_string();
    a.store
        .record_card_issuance(
            h_bad,
            &NewCardIssuance {
                serial: foreign.clone(),
                visit: None,
                person: None,
                replaces: None,
            },
        )
        .unwrap();
    let own = CardSerial::new("HG", 5).unwrap().to_string();
    a.store
        .issue_card(h_ok, &card(&own, true), day("2026-11-29"))
        .unwrap();
    let report = a.sync().await;
    assert_eq!(report.refused, 1);
    assert_eq!(
        a.store.unsynced_households().unwrap().len(),
        1,
        "the refused household stays on the phone"
    );
    assert!(s.cards_by_serial(theirs, &foreign).unwrap().is_empty());
    assert!(s.cards_by_serial(mine, &foreign).unwrap().is_empty());
    assert_eq!(
        s.cards_by_serial(mine, &own).unwrap().len(),
        1,
        "a found card of this station is accepted"
    );
    // The station document is the admins': a device's push to it is refused.
    use doorstep_core::protocol::*;
    let station_doc = doorstep_core::doc::station::station_doc_id(mine);
    let req = SyncRequest {
        signer: None,
        cursor: a.store.sync_cursor().unwrap(),
        budget: 1 << 20,
        push: vec![DocChanges {
            signatures: Vec::new(),
            doc: station_doc,
            changes: a.store.export_changes(h_ok, &[]).unwrap(),
        }],
        accesses: Vec::new(),
    };
    let auth = s
        .authenticate(&doorstep_server::credentials::hash_secret(&a.token))
        .unwrap()
        .unwrap();
    let service = doorstep_server::sync::SyncService::new(server.store.clone(), 16);
    let resp = service.sync(&auth, &req).unwrap();
    assert_eq!(
        resp.errors,
        vec![DocError {
            doc: station_doc,
            code: DocErrorCode::NotFoundOrForbidden
        }]
    );
}
