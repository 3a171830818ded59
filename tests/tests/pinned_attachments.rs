//! Eager download of pinned kinds (issue 20, ADR 0029), with a real server on 127.0.0.1: a
//! colleague's phone fetches, right after its sync, the signatures its households reference
//! and leaves the photos for when the app asks; a signature not uploaded yet waits and comes
//! at a later call; a call with nothing to do sends nothing. Which kinds are pinned is a
//! setting of the station (ADR 0032) that its phones receive at sync and no other
//! station's phones see.
#![allow(clippy::unwrap_used)]

use doorstep_core::*;
use doorstep_tests::TestServer;

fn new(kind: AttachmentKind) -> NewAttachment {
    NewAttachment {
        record: EntityRef::Household,
        kind,
        mime: "image/png".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_signatures_are_fetched_after_sync_and_photos_are_not() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    let a = server.device(station, "A01", &url).await;
    let b = server.device(station, "A02", &url).await;
    let hh = a.new_household("HH-PIN-1");
    let signature = a
        .store
        .add_attachment(hh, &new(AttachmentKind::Signature), &[7; 40_000])
        .unwrap();
    let photo = a
        .store
        .add_attachment(hh, &new(AttachmentKind::Photo), &[9; 90_000])
        .unwrap();
    a.sync().await;
    a.transport.upload_attachments(&a.store).await.unwrap();
    // A second signature reaches the server's document, not its bytes yet.
    let later = a
        .store
        .add_attachment(hh, &new(AttachmentKind::Signature), &[5; 30_000])
        .unwrap();
    a.sync().await;

    b.sync().await;
    let pinned = [AttachmentKind::Signature];
    assert_eq!(b.store.attachments_to_fetch(&pinned).unwrap().len(), 2);
    let r = b
        .transport
        .fetch_pinned_attachments(&b.store, &pinned)
        .await
        .unwrap();
    assert_eq!((r.fetched, r.waiting, r.failed), (1, 1, 0), "{r:?}");
    assert_eq!(
        b.store.attachment_bytes(hh, signature.hash).unwrap(),
        Some(vec![7; 40_000])
    );
    assert!(b.store.attachment_bytes(hh, photo.hash).unwrap().is_none());
    assert!(b.store.attachment_bytes(hh, later.hash).unwrap().is_none());

    a.transport.upload_attachments(&a.store).await.unwrap();
    let r = b
        .transport
        .fetch_pinned_attachments(&b.store, &pinned)
        .await
        .unwrap();
    assert_eq!((r.fetched, r.waiting), (1, 0), "{r:?}");
    assert_eq!(
        b.store.attachment_bytes(hh, later.hash).unwrap(),
        Some(vec![5; 30_000])
    );
    // Nothing left of the pinned kinds: nothing is asked of the server.
    assert!(b.store.attachments_to_fetch(&pinned).unwrap().is_empty());
    let r = b
        .transport
        .fetch_pinned_attachments(&b.store, &pinned)
        .await
        .unwrap();
    assert_eq!(r, Default::default());
    assert!(b.store.attachment_bytes(hh, photo.hash).unwrap().is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_station_setting_reaches_its_phones_at_sync_and_is_their_default() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let other = server.station("河口镇社工站");
    let url = server.url();
    let a = server.device(station, "A01", &url).await;
    let b = server.device(station, "A02", &url).await;
    let c = server.device(other, "C01", &url).await;
    let hh = a.new_household("HH-PIN-2");
    let signature = a
        .store
        .add_attachment(hh, &new(AttachmentKind::Signature), &[3; 20_000])
        .unwrap();
    let scan = a
        .store
        .add_attachment(hh, &new(AttachmentKind::Document), &[4; 25_000])
        .unwrap();
    let photo = a
        .store
        .add_attachment(hh, &new(AttachmentKind::Photo), &[6; 35_000])
        .unwrap();
    a.sync().await;
    a.transport.upload_attachments(&a.store).await.unwrap();

    // Nothing pinned: the default fetches nothing, and asks the server nothing.
    b.sync().await;
    assert!(b.store.pinned_attachment_kinds().unwrap().is_empty());
    let r = b
        .transport
        .fetch_station_pinned_attachments(&b.store)
        .await
        .unwrap();
    assert_eq!(r, Default::default());

    let pinned = [AttachmentKind::Signature, AttachmentKind::Document];
    assert!(
        doorstep_server::pinned::set_pinned_kinds(server.store.as_ref(), station, &pinned).unwrap()
    );
    // Before its next sync the phone does not know.
    assert!(b.store.pinned_attachment_kinds().unwrap().is_empty());
    b.sync().await;
    assert_eq!(b.store.pinned_attachment_kinds().unwrap(), pinned);
    let r = b
        .transport
        .fetch_station_pinned_attachments(&b.store)
        .await
        .unwrap();
    assert_eq!((r.fetched, r.waiting, r.failed), (2, 0, 0), "{r:?}");
    assert!(b
        .store
        .attachment_bytes(hh, signature.hash)
        .unwrap()
        .is_some());
    assert!(b.store.attachment_bytes(hh, scan.hash).unwrap().is_some());
    assert!(b.store.attachment_bytes(hh, photo.hash).unwrap().is_none());

    // Another station's phone never receives the setting.
    c.sync().await;
    assert!(c.store.pinned_attachment_kinds().unwrap().is_empty());

    // Unpinned again: the phones' default follows at their next sync.
    doorstep_server::pinned::set_pinned_kinds(server.store.as_ref(), station, &[]).unwrap();
    a.sync().await;
    assert!(a.store.pinned_attachment_kinds().unwrap().is_empty());
    server.stop().await;
}
