//! The conformance checks of attachments' bytes (`store::blobs`, ADR 0023 and 0029).
// A conformance check is a test: a failed unwrap is a failed check.
#![allow(clippy::unwrap_used)]

use doorstep_core::protocol::ErasureReason;
use doorstep_core::{BlobHash, DeviceId, HouseholdId, StationId};

use super::append;
use crate::store::blobs::*;
use crate::store::{ServerStore, StoreError};

/// Attachments' bytes (ADR 0023): chunks only in order, the whole checked against its hash
/// (a mismatch drops the bytes), a finished blob never started again, the device's limit,
/// pieces read across chunk boundaries, and erasure with the last household referencing it.
pub fn blobs_are_chunked_checked_limited_and_erased<S: ServerStore>(s: &S) {
    let station = s.create_station("A", 1).unwrap();
    let dev = DeviceId::new();
    let (d1, d2) = (HouseholdId::new(), HouseholdId::new());
    s.commit(
        station,
        dev,
        &[append(d1, &[(1, b"a")]), append(d2, &[(2, b"b")])],
    )
    .unwrap();
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 256) as u8).collect();
    let h = BlobKey::new(station, BlobHash::of(&bytes));
    assert_eq!(s.blob(&h).unwrap(), None);
    let fresh = BlobRow {
        size: 1000,
        received: 0,
        complete: false,
    };
    assert_eq!(
        s.begin_blob(&h, 1000, dev, 1500, 1).unwrap(),
        BlobBegin::Row(fresh)
    );
    assert_eq!(
        s.begin_blob(&h, 999, dev, 1500, 1).unwrap(),
        BlobBegin::SizeMismatch
    );
    // Only where the held bytes end.
    assert!(matches!(
        s.append_blob(&h, 10, &bytes[10..20], 1),
        Err(StoreError::Conflict(_))
    ));
    // A cut chunk's bytes are kept only where the held bytes end.
    s.set_blob_tail(&h, 5, b"late", 1).unwrap();
    assert_eq!(s.blob_tail(&h).unwrap(), None);
    s.set_blob_tail(&h, 0, &bytes[..10], 1).unwrap();
    s.set_blob_tail(&h, 0, &bytes[..20], 1).unwrap();
    assert_eq!(s.blob_tail(&h).unwrap(), Some((0, bytes[..20].to_vec())));
    s.clear_blob_tail(&h).unwrap();
    assert_eq!(s.blob_tail(&h).unwrap(), None);
    assert_eq!(s.append_blob(&h, 0, &bytes[..400], 1).unwrap(), 400);
    s.set_blob_tail(&h, 400, &bytes[400..450], 1).unwrap();
    assert!(matches!(
        s.append_blob(&h, 0, &bytes[..400], 1),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.append_blob(&h, 400, &[0; 601], 1),
        Err(StoreError::Conflict(_))
    ));
    // A last chunk that makes other bytes: dropped whole.
    let mut wrong = bytes[400..].to_vec();
    wrong[0] ^= 1;
    assert_eq!(s.append_blob(&h, 400, &wrong, 1).unwrap(), 1000);
    assert!(!s.finish_blob(&h).unwrap());
    assert_eq!(s.blob(&h).unwrap(), Some(fresh));
    s.append_blob(&h, 0, &bytes[..400], 1).unwrap();
    s.append_blob(&h, 400, &bytes[400..700], 1).unwrap();
    s.append_blob(&h, 700, &bytes[700..], 1).unwrap();
    assert!(s.finish_blob(&h).unwrap());
    let whole = BlobRow {
        size: 1000,
        received: 1000,
        complete: true,
    };
    assert_eq!(
        s.begin_blob(&h, 1000, dev, 0, 2).unwrap(),
        BlobBegin::Row(whole)
    );
    assert_eq!(s.read_blob(&h, 0, 5000).unwrap(), bytes);
    assert_eq!(s.read_blob(&h, 350, 400).unwrap(), &bytes[350..750]);
    assert_eq!(s.read_blob(&h, 999, 10).unwrap(), &bytes[999..]);
    // The device's limit counts what it started.
    let other = BlobKey::new(station, BlobHash::of(b"other"));
    assert_eq!(
        s.begin_blob(&other, 600, dev, 1500, 3).unwrap(),
        BlobBegin::OverQuota
    );
    assert_eq!(s.blob(&other).unwrap(), None);
    let stats = s.blob_stats().unwrap();
    assert_eq!(
        (stats.complete, stats.complete_bytes, stats.partial),
        (1, 1000, 0)
    );
    // References, and erasure with the last household that references the blob.
    assert!(!s.blob_referenced(&h, d1).unwrap());
    s.note_blob_ref(&h, d1).unwrap();
    s.note_blob_ref(&h, d1).unwrap();
    s.note_blob_ref(&h, d2).unwrap();
    assert!(s.blob_referenced(&h, d1).unwrap());
    s.erase_document(station, d1, ErasureReason::Other, "test", 5)
        .unwrap();
    assert!(!s.blob_referenced(&h, d1).unwrap());
    assert_eq!(s.blob(&h).unwrap(), Some(whole), "d2 still references it");
    s.erase_document(station, d2, ErasureReason::Other, "test", 6)
        .unwrap();
    assert_eq!(s.blob(&h).unwrap(), None);
    assert_eq!(s.blob_tail(&h).unwrap(), None);
    assert_eq!(s.read_blob(&h, 0, 5000).unwrap(), Vec::<u8>::new());
    assert_eq!(s.blob_stats().unwrap(), BlobStats::default());
}

/// A whole blob of `bytes`, started by `dev`.
fn held<S: ServerStore>(s: &S, station: StationId, dev: DeviceId, bytes: &[u8]) -> BlobKey {
    let h = BlobKey::new(station, BlobHash::of(bytes));
    s.begin_blob(&h, bytes.len() as u64, dev, u64::MAX, 1)
        .unwrap();
    s.append_blob(&h, 0, bytes, 1).unwrap();
    assert!(s.finish_blob(&h).unwrap());
    h
}

/// A redaction (ADR 0029) drops the household's hold on every blob its generation no longer
/// names, in the redaction's transaction: a blob no other household references goes (row,
/// bytes, a partial one's tail); one another household references stays; one the generation
/// still names stays. A redaction refused (computed from an older state) changes nothing.
pub fn redaction_releases_the_blobs_its_generation_no_longer_names<S: ServerStore>(s: &S) {
    use doorstep_core::protocol::RedactionNotice;
    let station = s.create_station("A", 1).unwrap();
    let dev = DeviceId::new();
    let (d1, d2) = (HouseholdId::new(), HouseholdId::new());
    s.commit(
        station,
        dev,
        &[append(d1, &[(1, b"a")]), append(d2, &[(2, b"b")])],
    )
    .unwrap();
    let only_here = held(s, station, dev, b"a photo of the redacted person");
    let shared = held(s, station, dev, b"a photo attached in both households");
    let kept = held(s, station, dev, b"the household's own photo");
    let partial_bytes = b"a signature cut on the way";
    let partial = BlobKey::new(station, BlobHash::of(partial_bytes));
    s.begin_blob(&partial, partial_bytes.len() as u64, dev, u64::MAX, 1)
        .unwrap();
    s.append_blob(&partial, 0, &partial_bytes[..5], 1).unwrap();
    s.set_blob_tail(&partial, 5, &partial_bytes[5..9], 1)
        .unwrap();
    for h in [&only_here, &shared, &kept, &partial] {
        s.note_blob_ref(h, d1).unwrap();
    }
    s.note_blob_ref(&shared, d2).unwrap();
    let notice = RedactionNotice {
        doc: d1,
        generation: 1,
        reason: ErasureReason::SubjectRequest,
        redacted_at: 10,
        base: vec![super::hash(1)],
        clock: vec![(vec![7; 16], 1)],
        heads: vec![super::hash(9)],
        items: vec![format!("person/{}", uuid::Uuid::now_v7())],
        earlier: vec![],
    };
    assert!(matches!(
        s.redact_document(station, &notice, b"generation 1", 0, &[kept.hash]),
        Err(StoreError::Conflict(_))
    ));
    assert!(
        s.blob(&only_here).unwrap().is_some(),
        "a refused redaction keeps every blob"
    );
    assert!(s.blob_referenced(&only_here, d1).unwrap());
    s.redact_document(station, &notice, b"generation 1", 1, &[kept.hash])
        .unwrap();
    assert_eq!(s.blob(&only_here).unwrap(), None);
    assert_eq!(s.read_blob(&only_here, 0, 100).unwrap(), Vec::<u8>::new());
    assert_eq!(s.blob(&partial).unwrap(), None);
    assert_eq!(s.blob_tail(&partial).unwrap(), None);
    assert!(!s.blob_referenced(&only_here, d1).unwrap());
    assert!(!s.blob_referenced(&shared, d1).unwrap());
    assert!(
        s.blob_referenced(&shared, d2).unwrap(),
        "d2 still references it"
    );
    assert!(s.blob(&shared).unwrap().is_some_and(|r| r.complete));
    assert!(s.blob_referenced(&kept, d1).unwrap());
    assert_eq!(
        s.read_blob(&kept, 0, 100).unwrap(),
        b"the household's own photo"
    );
    let stats = s.blob_stats().unwrap();
    assert_eq!((stats.complete, stats.partial), (2, 0));
}

/// Abandoned partial uploads (ADR 0029): a sweep deletes every partial upload last touched
/// before the cut-off — row, chunks, tail — and nothing else: one touched since (by a chunk,
/// a kept tail, a status request) stays, and so does a whole blob however old. The
/// household's reference stays, so the device can start the upload again; what it had
/// started no longer counts against its limit.
pub fn sweeps_delete_partial_uploads_untouched_since_the_cutoff<S: ServerStore>(s: &S) {
    let station = s.create_station("A", 1).unwrap();
    let dev = DeviceId::new();
    let d1 = HouseholdId::new();
    s.commit(station, dev, &[append(d1, &[(1, b"a")])]).unwrap();
    let whole = held(s, station, dev, b"a whole photo from long ago");
    let partial = |bytes: &[u8]| {
        let h = BlobKey::new(station, BlobHash::of(bytes));
        s.begin_blob(&h, bytes.len() as u64, dev, u64::MAX, 10)
            .unwrap();
        s.append_blob(&h, 0, &bytes[..5], 10).unwrap();
        h
    };
    let stale_bytes = b"abandoned on a 2G link";
    let stale = partial(stale_bytes);
    s.set_blob_tail(&stale, 5, &stale_bytes[5..9], 10).unwrap();
    s.note_blob_ref(&stale, d1).unwrap();
    let by_chunk = partial(b"resumed by a chunk");
    s.append_blob(&by_chunk, 5, b"d by", 50).unwrap();
    let by_tail = partial(b"resumed by a cut chunk");
    s.set_blob_tail(&by_tail, 5, b"med", 50).unwrap();
    let by_status = partial(b"asked about again");
    s.begin_blob(&by_status, 17, dev, u64::MAX, 50).unwrap();

    assert_eq!(s.sweep_partial_blobs(10).unwrap(), BlobSweep::default());
    assert_eq!(
        s.sweep_partial_blobs(40).unwrap(),
        BlobSweep { blobs: 1, bytes: 9 }
    );
    assert_eq!(s.blob(&stale).unwrap(), None);
    assert_eq!(s.blob_tail(&stale).unwrap(), None);
    assert_eq!(s.read_blob(&stale, 0, 100).unwrap(), Vec::<u8>::new());
    for h in [&by_chunk, &by_tail, &by_status] {
        assert!(s.blob(h).unwrap().is_some_and(|r| !r.complete));
    }
    assert_eq!(s.blob_tail(&by_tail).unwrap(), Some((5, b"med".to_vec())));
    assert!(s.blob(&whole).unwrap().is_some_and(|r| r.complete));
    // The reference stays: the upload starts again from its first byte.
    assert!(s.blob_referenced(&stale, d1).unwrap());
    assert_eq!(
        s.begin_blob(&stale, stale_bytes.len() as u64, dev, u64::MAX, 60)
            .unwrap(),
        BlobBegin::Row(BlobRow {
            size: stale_bytes.len() as u64,
            received: 0,
            complete: false,
        })
    );
    let swept = s.sweep_partial_blobs(i64::MAX).unwrap();
    assert_eq!(swept.blobs, 4);
    let stats = s.blob_stats().unwrap();
    assert_eq!(
        (stats.complete, stats.partial, stats.partial_bytes),
        (1, 0, 0)
    );
    // What the device had started no longer counts against its limit.
    let limit = whole_len() + 20;
    let again = BlobKey::new(station, BlobHash::of(b"twenty bytes exactly"));
    assert!(matches!(
        s.begin_blob(&again, 20, dev, limit, 70).unwrap(),
        BlobBegin::Row(_)
    ));
}

fn whole_len() -> u64 {
    b"a whole photo from long ago".len() as u64
}

/// Blobs are kept and deduplicated per station (ADR 0032): the same bytes under two
/// stations are two blobs. A status in one station says nothing of the other's (it must
/// send every byte), and erasing the last household of one station that references them
/// leaves the other station's copy.
pub fn blobs_are_kept_per_station<S: ServerStore>(s: &S) {
    let (a, b) = (
        s.create_station("A", 1).unwrap(),
        s.create_station("B", 1).unwrap(),
    );
    let (dev_a, dev_b) = (DeviceId::new(), DeviceId::new());
    let (da, db) = (HouseholdId::new(), HouseholdId::new());
    s.commit(a, dev_a, &[append(da, &[(1, b"a")])]).unwrap();
    s.commit(b, dev_b, &[append(db, &[(2, b"b")])]).unwrap();
    let bytes = b"the same photo in two stations";
    let in_a = held(s, a, dev_a, bytes);
    s.note_blob_ref(&in_a, da).unwrap();
    let in_b = BlobKey::new(b, in_a.hash);
    assert_ne!(in_a, in_b);
    assert_eq!(s.blob(&in_b).unwrap(), None, "B does not see A's blob");
    assert!(!s.blob_referenced(&in_b, da).unwrap());
    let fresh = BlobRow {
        size: bytes.len() as u64,
        received: 0,
        complete: false,
    };
    assert_eq!(
        s.begin_blob(&in_b, bytes.len() as u64, dev_b, u64::MAX, 2)
            .unwrap(),
        BlobBegin::Row(fresh),
        "B's device sends every byte"
    );
    s.append_blob(&in_b, 0, bytes, 2).unwrap();
    assert!(s.finish_blob(&in_b).unwrap());
    s.note_blob_ref(&in_b, db).unwrap();
    assert_eq!(s.blob_stats().unwrap().complete, 2);
    s.erase_document(a, da, ErasureReason::Other, "test", 3)
        .unwrap();
    assert_eq!(s.blob(&in_a).unwrap(), None);
    assert!(s.blob(&in_b).unwrap().unwrap().complete, "B's copy stays");
    assert_eq!(s.read_blob(&in_b, 0, 100).unwrap(), bytes);
}
