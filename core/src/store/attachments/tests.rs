//! The phone's attachments: capture, the queue, downloads.

use super::*;
use crate::model::attachment::AttachmentKind;

fn store(dir: &tempfile::TempDir) -> Store {
    let ids = |n: u128| uuid::Uuid::from_u128(n);
    Store::open(StoreOptions::new(
        dir.path().join("w.db"),
        StoreKey::Raw([3; 32]),
        WorkerId::from_uuid(ids(1)),
        StationId::from_uuid(ids(2)),
    ))
    .unwrap()
}

fn household(s: &Store) -> HouseholdId {
    s.create_household(&NewHousehold {
        code: "HH-1".into(),
        ..Default::default()
    })
    .unwrap()
}

fn photo() -> NewAttachment {
    NewAttachment {
        record: EntityRef::Household,
        kind: AttachmentKind::Photo,
        mime: "image/jpeg".into(),
    }
}

#[test]
fn a_captured_attachment_is_referenced_held_and_queued() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let hh = household(&s);
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let a = s.add_attachment(hh, &photo(), &bytes).unwrap();
    assert_eq!(a.hash, BlobHash::of(&bytes));
    assert_eq!(a.size, 100_000);
    let listed = s.attachments(hh).unwrap();
    assert_eq!(listed, vec![a.clone()]);
    assert_eq!(listed[0].provenance.device, s.device());
    assert_eq!(s.attachment_bytes(hh, a.hash).unwrap().unwrap(), bytes);
    assert_eq!(
        s.attachment_slice(hh, a.hash, 99_990, 100).unwrap(),
        &bytes[99_990..]
    );
    let queue = s.attachment_uploads().unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].state, AttachmentUploadState::Pending);
    // The reference survives a reopen (it is in the document, on disk).
    drop(s);
    let s = store(&dir);
    assert_eq!(s.attachments(hh).unwrap().len(), 1);
}

#[test]
fn bad_attachments_are_refused_and_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let hh = household(&s);
    assert!(s.add_attachment(hh, &photo(), b"").is_err());
    let mut bad = photo();
    bad.mime = "jpeg".into();
    assert!(s.add_attachment(hh, &bad, b"x").is_err());
    let mut missing = photo();
    missing.record = EntityRef::Visit(VisitId::new());
    assert!(s.add_attachment(hh, &missing, b"x").is_err());
    let big = vec![0u8; MAX_ATTACHMENT_BYTES as usize + 1];
    assert!(s.add_attachment(hh, &photo(), &big).is_err());
    assert!(s
        .add_attachment(HouseholdId::new(), &photo(), b"x")
        .is_err());
    assert!(s.attachments(hh).unwrap().is_empty());
    assert!(s.attachment_uploads().unwrap().is_empty(), "no bytes kept");
}

#[test]
fn a_download_resumes_where_it_stopped_and_is_checked_whole() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let hh = household(&s);
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i % 13) as u8).collect();
    let hash = BlobHash::of(&bytes);
    assert_eq!(
        s.append_attachment_download(hh, hash, 5000, 0, &bytes[..1234])
            .unwrap(),
        1234
    );
    // Not where the held bytes end: refused, nothing changes.
    assert!(s
        .append_attachment_download(hh, hash, 5000, 1000, &bytes[1000..2000])
        .is_err());
    assert_eq!(s.attachment_held(hh, hash).unwrap(), 1234);
    assert!(s.attachment_bytes(hh, hash).unwrap().is_none());
    s.append_attachment_download(hh, hash, 5000, 1234, &bytes[1234..])
        .unwrap();
    assert_eq!(s.attachment_bytes(hh, hash).unwrap().unwrap(), bytes);
    // Bytes that do not hash to the address are dropped whole.
    let other = BlobHash::of(b"other");
    assert!(s
        .append_attachment_download(hh, other, 4, 0, b"abcd")
        .is_err());
    assert_eq!(s.attachment_held(hh, other).unwrap(), 0);
}
