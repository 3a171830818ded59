//! Redaction takes attachments with it (issue 20, ADR 0029), with a real server on 127.0.0.1
//! and real encrypted store files: removing a person drops the photos attached to them, and
//! `attachment/<id>` drops one photo alone — their references from every copy of the
//! household, their bytes from the server's database (pages and WAL) and from the phone that
//! took them and the phone that fetched them — while the household's other photo stays
//! everywhere. A new device never learns of them. The server's side on both backends is in
//! the conformance suite (`redaction_releases_the_blobs_its_generation_no_longer_names`).
#![allow(clippy::unwrap_used)]

use doorstep_core::*;
use doorstep_server::store::blobs::{BlobKey, BlobStore};
use doorstep_tests::{Device, TestServer};

const OF_PERSON: &[u8] = b"PLANTED-PHOTO-OF-THE-REDACTED-PERSON";
const ALONE: &[u8] = b"PLANTED-PHOTO-REDACTED-ALONE-000000";
const KEPT: &[u8] = b"KEPT-PHOTO-OF-THE-HOUSE-00000000000";

/// `len` bytes that start with `marker` (the rest differs per marker).
fn photo(marker: &[u8], len: usize) -> Vec<u8> {
    let mut v = marker.to_vec();
    let mut x = marker.iter().map(|b| u64::from(*b)).sum::<u64>() | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn new(record: EntityRef) -> NewAttachment {
    NewAttachment {
        record,
        kind: AttachmentKind::Photo,
        mime: "image/jpeg".into(),
    }
}

fn holds(pages: &[Vec<u8>], marker: &[u8]) -> bool {
    pages
        .iter()
        .any(|p| p.windows(marker.len()).any(|w| w == marker))
}

/// Which markers the pages hold.
fn found(pages: &[Vec<u8>]) -> Vec<&'static [u8]> {
    assert!(
        doorstep_tests::pages::decrypts(pages),
        "the pages did not decrypt"
    );
    [OF_PERSON, ALONE, KEPT]
        .into_iter()
        .filter(|m| holds(pages, m))
        .collect()
}

fn bytes_held(d: &Device, hh: HouseholdId, a: &Attachment) -> bool {
    d.store.attachment_bytes(hh, a.hash).unwrap().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redaction_removes_the_photos_of_what_it_removes_from_every_replica() {
    let server = TestServer::start().await;
    let station = server.station("石桥镇社工站");
    let url = server.url();
    let a = server.device(station, "A01", &url).await;
    let b = server.device(station, "A02", &url).await;
    let hh = a.new_household("HH-ATTACH-1");
    let grandma = a
        .store
        .add_person(hh, &NewPerson::named("欧阳秀英", "祖母"))
        .unwrap();
    let of_person = a
        .store
        .add_attachment(
            hh,
            &new(EntityRef::Person(grandma)),
            &photo(OF_PERSON, 90_000),
        )
        .unwrap();
    let alone = a
        .store
        .add_attachment(hh, &new(EntityRef::Household), &photo(ALONE, 60_000))
        .unwrap();
    let kept = a
        .store
        .add_attachment(hh, &new(EntityRef::Household), &photo(KEPT, 50_000))
        .unwrap();
    a.sync().await;
    a.transport.upload_attachments(&a.store).await.unwrap();
    assert!(a.store.pending_attachment_uploads().unwrap().is_empty());
    b.sync().await;
    for att in [&of_person, &alone, &kept] {
        b.transport
            .fetch_attachment(&b.store, hh, att.hash)
            .await
            .unwrap();
    }
    // The control: every copy holds all three.
    assert_eq!(found(&server.pages()), [OF_PERSON, ALONE, KEPT]);
    assert_eq!(found(&a.pages()), [OF_PERSON, ALONE, KEPT]);
    assert_eq!(found(&b.pages()), [OF_PERSON, ALONE, KEPT]);

    let notice = server.redact(
        station,
        hh,
        &[
            &format!("person/{grandma}"),
            &format!("attachment/{}", alone.id),
        ],
    );
    assert_eq!(notice.generation, 1);
    // The server: rows and bytes gone, in every page of the database and its WAL.
    assert!(server
        .store
        .blob(&BlobKey::new(station, of_person.hash))
        .unwrap()
        .is_none());
    assert!(server
        .store
        .blob(&BlobKey::new(station, alone.hash))
        .unwrap()
        .is_none());
    assert!(!server
        .store
        .blob_referenced(&BlobKey::new(station, alone.hash), hh)
        .unwrap());
    assert!(
        server
            .store
            .blob(&BlobKey::new(station, kept.hash))
            .unwrap()
            .unwrap()
            .complete
    );
    assert_eq!(found(&server.pages()), [KEPT]);

    // Each phone, at its next sync: references, bytes and queue entries gone.
    for d in [&a, &b] {
        let r = d.sync().await;
        assert_eq!(r.redacted.len(), 1, "{}: {r:?}", d.label);
        let left: Vec<BlobHash> = d
            .store
            .attachments(hh)
            .unwrap()
            .iter()
            .map(|x| x.hash)
            .collect();
        assert_eq!(left, [kept.hash], "{}", d.label);
        assert!(!bytes_held(d, hh, &of_person), "{}", d.label);
        assert!(!bytes_held(d, hh, &alone), "{}", d.label);
        assert!(bytes_held(d, hh, &kept), "{}", d.label);
        assert_eq!(found(&d.pages()), [KEPT], "{}", d.label);
    }
    let queue: Vec<BlobHash> = a
        .store
        .attachment_uploads()
        .unwrap()
        .iter()
        .map(|u| u.hash)
        .collect();
    assert_eq!(queue, [kept.hash], "the uploader's queue");

    // A new device learns only of the photo that stays; the others cannot be fetched.
    let c = server.device(station, "A03", &url).await;
    c.sync().await;
    assert_eq!(c.store.attachments(hh).unwrap().len(), 1);
    assert!(c
        .transport
        .fetch_attachment(&c.store, hh, of_person.hash)
        .await
        .is_err());
    let got = c
        .transport
        .fetch_attachment(&c.store, hh, kept.hash)
        .await
        .unwrap();
    assert_eq!(got, photo(KEPT, 50_000));
    server.stop().await;
}
