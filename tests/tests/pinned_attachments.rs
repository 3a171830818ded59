//! Eager download of pinned kinds (issue 20, ADR 0029), with a real server on 127.0.0.1: a
//! colleague's phone fetches, right after its sync, the signatures its households reference
//! and leaves the photos for when the app asks; a signature not uploaded yet waits and comes
//! at a later call; a call with nothing to do sends nothing.
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
