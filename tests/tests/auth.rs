//! Station scope and credentials: a device sees and writes only its station's documents,
//! absent and forbidden look the same, forged authorship is refused, revoked devices wipe.
#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::ReadDoc;
use doorstep_core::protocol::*;
use doorstep_core::*;
use doorstep_tests::*;

/// A raw sync request with a device token, as any HTTP client could send it.
async fn raw_sync(url: &str, token: &str, req: &SyncRequest) -> (u16, Vec<u8>) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/sync"))
        .bearer_auth(token)
        .body(req.encode())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

fn forged_change(
    doc_bytes: &[u8],
    edit: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Vec<u8> {
    let mut doc = automerge::Automerge::load(doc_bytes).unwrap();
    let mut tx = doc.transaction();
    edit(&mut tx);
    tx.commit();
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_reaches_only_its_own_station() {
    let server = TestServer::start().await;
    let (sa, sb) = (server.station("A站"), server.station("B站"));
    let url = server.url();
    let a = server.device(sa, "A1", &url).await;
    let b = server.device(sb, "B1", &url).await;
    let ha = a.new_household("HH-A00001");
    let hb = b.new_household("HH-B00001");
    b.type_into(hb, b.visit(hb), Section::Concerns, "B站的秘密记录");
    a.sync().await;
    b.sync().await;
    // Reading: A never receives B's household, by log or by bootstrap.
    assert!(a.store.household(hb).is_err());
    assert_eq!(a.store.household_ids().unwrap(), vec![ha]);
    let fresh = server.device(sa, "A2", &url).await;
    fresh.sync().await;
    assert_eq!(fresh.store.household_ids().unwrap(), vec![ha]);
    assert!(fresh.store.search("秘密", 5).unwrap().is_empty());

    // Writing: B's real changes, a guessed id, a new document claiming station B.
    let b_doc = b.store.export_document(hb).unwrap();
    let b_changes = b.store.export_changes(hb, &[]).unwrap();
    let edit_b = forged_change(&b_doc, |tx| {
        let hmap = tx.get(automerge::ROOT, "household").unwrap().unwrap().1;
        tx.put(&hmap, "address", "篡改").unwrap();
    });
    let guessed = HouseholdId::new();
    let claim_b = {
        let mut doc = automerge::Automerge::new();
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "schema", 1_i64).unwrap();
        tx.put(automerge::ROOT, "kind", "household").unwrap();
        tx.put(automerge::ROOT, "id", guessed.to_string()).unwrap();
        tx.put(automerge::ROOT, "station", sb.to_string()).unwrap();
        tx.commit();
        doc.get_last_local_change().unwrap().raw_bytes().to_vec()
    };
    let cursor = a.store.sync_cursor().unwrap();
    let req = SyncRequest {
        signer: None,
        cursor,
        budget: 1 << 20,
        push: vec![
            DocChanges {
                signatures: Vec::new(),
                doc: hb,
                changes: b_changes.clone(),
            },
            DocChanges {
                signatures: Vec::new(),
                doc: hb,
                changes: vec![edit_b],
            },
            DocChanges {
                signatures: Vec::new(),
                doc: guessed,
                changes: vec![claim_b],
            },
        ],
        accesses: Vec::new(),
    };
    let (status, body) = raw_sync(&url, &a.token, &req).await;
    assert_eq!(status, 200);
    let resp = SyncResponse::decode(&body).unwrap();
    assert!(resp.acks.is_empty(), "{:?}", resp.acks);
    let mut codes: Vec<_> = resp.errors.iter().map(|e| (e.doc, e.code)).collect();
    codes.sort_by_key(|c| c.0);
    let mut expected = vec![
        (hb, DocErrorCode::NotFoundOrForbidden),
        (guessed, DocErrorCode::NotFoundOrForbidden),
    ];
    expected.sort_by_key(|c| c.0);
    assert_eq!(codes, expected, "absent and forbidden answer alike");
    assert!(resp.pull.iter().all(|d| d.doc != hb) && resp.snapshots.iter().all(|d| d.doc != hb));
    // B's document is untouched.
    b.sync().await;
    assert_eq!(b.store.household(hb).unwrap().address, "石桥村一组");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn station_and_authorship_cannot_be_rewritten() {
    let server = TestServer::start().await;
    let (sa, sb) = (server.station("A站"), server.station("B站"));
    let url = server.url();
    let a = server.device(sa, "A1", &url).await;
    let hh = a.new_household("HH-A00001");
    a.sync().await;
    let doc = a.store.export_document(hh).unwrap();
    let move_station = forged_change(&doc, |tx| {
        tx.put(automerge::ROOT, "station", sb.to_string()).unwrap()
    });
    let forge_author = forged_change(&doc, |tx| {
        let created = tx.get(automerge::ROOT, "created").unwrap().unwrap().1;
        tx.put(&created, "by", WorkerId::new().to_string()).unwrap();
    });
    for (what, change) in [("station", move_station), ("author", forge_author)] {
        let req = SyncRequest {
            signer: None,
            cursor: a.store.sync_cursor().unwrap(),
            budget: 1 << 20,
            push: vec![DocChanges {
                signatures: Vec::new(),
                doc: hh,
                changes: vec![change],
            }],
            accesses: Vec::new(),
        };
        let (status, body) = raw_sync(&url, &a.token, &req).await;
        assert_eq!(status, 200, "{what}");
        let resp = SyncResponse::decode(&body).unwrap();
        assert_eq!(
            resp.errors,
            vec![DocError {
                doc: hh,
                code: DocErrorCode::Invalid
            }],
            "{what}"
        );
    }
    // The server's copy is still A's: a fresh device of station A gets it unchanged.
    let fresh = server.device(sa, "A2", &url).await;
    fresh.sync().await;
    assert_eq!(
        fresh.store.household(hh).unwrap(),
        a.store.household(hh).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_devices_are_told_to_wipe_and_unknown_tokens_are_refused() {
    use doorstep_server::store::ServerStore;
    let server = TestServer::start().await;
    let station = server.station("站");
    let url = server.url();
    let a = server.device(station, "A", &url).await;
    let hh = a.new_household("HH-000001");
    a.sync().await;
    let device_id = server
        .store
        .authenticate(&doorstep_server::credentials::hash_secret(&a.token))
        .unwrap()
        .unwrap()
        .device;
    assert!(server.store.revoke_device(device_id, 0).unwrap());
    let path = a.path.clone();
    assert!(path.exists());
    // The sync performs the wipe: the store's files are gone when it reports it.
    match a.try_sync().await {
        Err(Error::Unauthorized { wipe: true }) => {}
        other => panic!("expected a wipe, got {other:?}"),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        assert!(!std::path::Path::new(&file).exists(), "{file} is left");
    }
    assert!(std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .next()
        .is_none());
    // Nothing of it can be read any more, and nothing is written back.
    assert!(a.store.household_ids().is_err());
    assert!(a.store.household(hh).is_err());
    assert!(!path.exists());
    // Wiping again (what an app's revocation handler does) is harmless.
    a.store.wipe().unwrap();

    let (status, body) = raw_sync(&url, "not-a-token", &SyncRequest::default()).await;
    assert_eq!(status, 401);
    let body: Unauthorized = serde_json::from_slice(&body).unwrap();
    assert!(!body.wipe);
    // Enrolment codes work once.
    let code = server.enrolment_code(station, "B");
    assert!(doorstep_core::transport::enroll(&url, &code).await.is_ok());
    assert!(matches!(
        doorstep_core::transport::enroll(&url, &code).await,
        Err(Error::Unauthorized { .. })
    ));
    assert!(matches!(
        doorstep_core::transport::enroll(&url, "AAAA-BBBB-CCCC").await,
        Err(Error::Unauthorized { .. })
    ));
}
