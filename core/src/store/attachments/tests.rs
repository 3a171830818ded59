//! The phone's attachments: capture, the queue, downloads.

use super::*;
use crate::model::attachment::{AttachmentKind, MAX_ATTACHMENT_BYTES};

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

#[test]
fn a_file_is_captured_in_pieces_with_the_same_address_as_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let hh = household(&s);
    // Larger than several pieces, and not a multiple of one.
    let bytes: Vec<u8> = (0..300_001u32).map(|i| (i * 31 % 253) as u8).collect();
    let path = dir.path().join("scan.jpg");
    std::fs::write(&path, &bytes).unwrap();
    let a = s.add_attachment_file(hh, &photo(), &path).unwrap();
    assert_eq!((a.hash, a.size), (BlobHash::of(&bytes), 300_001));
    assert_eq!(s.attachment_bytes(hh, a.hash).unwrap().unwrap(), bytes);
    assert_eq!(s.attachment_uploads().unwrap().len(), 1);
    // The same file again: a second reference, one copy of the bytes, one queue entry.
    let again = s.add_attachment_file(hh, &photo(), &path).unwrap();
    assert_eq!(again.hash, a.hash);
    assert_eq!(s.attachments(hh).unwrap().len(), 2);
    assert_eq!(s.attachment_uploads().unwrap().len(), 1);
    // The same bytes from memory land on the same address.
    assert_eq!(s.add_attachment(hh, &photo(), &bytes).unwrap().hash, a.hash);
    // A capture finishes a download of the same bytes under way.
    let other: Vec<u8> = (0..70_000u32).map(|i| (i % 7) as u8).collect();
    let other_hash = BlobHash::of(&other);
    s.append_attachment_download(hh, other_hash, 70_000, 0, &other[..1000])
        .unwrap();
    let other_path = dir.path().join("other.png");
    std::fs::write(&other_path, &other).unwrap();
    s.add_attachment_file(hh, &photo(), &other_path).unwrap();
    assert_eq!(s.attachment_bytes(hh, other_hash).unwrap().unwrap(), other);
    let w = s.writer();
    let provisional: i64 = w
        .conn
        .query_row(
            "SELECT count(*) FROM attachment_blobs WHERE hash = zeroblob(32)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        provisional, 0,
        "no row is left under the provisional address"
    );
}

#[test]
fn bad_files_get_clear_errors_and_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let hh = household(&s);
    let missing = dir.path().join("no-such-photo.jpg");
    assert!(matches!(
        s.add_attachment_file(hh, &photo(), &missing),
        Err(Error::NotFound("attachment file"))
    ));
    assert!(matches!(
        s.add_attachment_file(hh, &photo(), dir.path()),
        Err(Error::InvalidInput("the attachment path is not a file"))
    ));
    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        s.add_attachment_file(hh, &photo(), &empty),
        Err(Error::InvalidInput("an attachment needs bytes"))
    ));
    // Over the limit: refused from its length, before it is read (a sparse file).
    let big = dir.path().join("big.jpg");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(MAX_ATTACHMENT_BYTES + 1)
        .unwrap();
    assert!(matches!(
        s.add_attachment_file(hh, &photo(), &big),
        Err(Error::InvalidInput("attachment larger than the limit"))
    ));
    // A good file for a record that is not there: no bytes kept either.
    let good = dir.path().join("good.jpg");
    std::fs::write(&good, b"jpeg bytes").unwrap();
    let mut no_record = photo();
    no_record.record = EntityRef::Visit(VisitId::new());
    assert!(s.add_attachment_file(hh, &no_record, &good).is_err());
    assert!(s.attachments(hh).unwrap().is_empty());
    assert!(s.attachment_uploads().unwrap().is_empty(), "no bytes kept");
    let w = s.writer();
    let rows: i64 = w
        .conn
        .query_row("SELECT count(*) FROM attachment_blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

#[test]
fn a_thumbnail_is_named_by_both_its_hash_and_size_or_the_reference_is_malformed() {
    use automerge::transaction::Transactable;
    use automerge::ReadDoc;
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let hh = household(&s);
    let mut doc = s.read(hh, |d| Ok(d.fork())).unwrap();
    let thumb = BlobRef {
        hash: BlobHash::of(b"thumb"),
        size: 5,
    };
    let id = AttachmentId::new();
    let mut tx = doc.transaction();
    doc::attachments::add(
        &mut tx,
        id,
        &photo(),
        9,
        BlobHash::of(b"the photo"),
        Some(thumb),
        &s.provenance(),
    )
    .unwrap();
    tx.commit();
    let read = doc::attachments::read_all(&doc, hh).unwrap();
    assert_eq!(read[0].thumbnail, Some(thumb));
    let named = doc::attachments::referenced_hashes(&doc, hh).unwrap();
    assert!(
        named.contains(&thumb.hash),
        "a redaction keeps the thumbnail"
    );
    // A size without its hash, or a hash that is not one: the document is malformed.
    let col = doc::attachments::collections(&doc).unwrap()[0].clone();
    let (_, obj) = doc.get(&col, id.to_string()).unwrap().unwrap();
    let mut no_hash = doc.fork();
    let mut tx = no_hash.transaction();
    tx.delete(&obj, "thumb_hash").unwrap();
    tx.commit();
    assert!(doc::attachments::read_all(&no_hash, hh).is_err());
    let mut bad_hash = doc.fork();
    let mut tx = bad_hash.transaction();
    tx.put(&obj, "thumb_hash", "not a hash").unwrap();
    tx.commit();
    assert!(doc::attachments::read_all(&bad_hash, hh).is_err());
}
