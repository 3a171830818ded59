//! Fuzz target bodies for attachments (issue 20, ADR 0023 and 0029; see `docs/fuzzing.md`):
//! what the server reads from a blob request's path and headers, what a phone reads from
//! the server's blob answers and plans from them, a redaction item, and the attachment
//! references a document holds (as the one validator, the phones and a redaction read them).

use std::path::Path;

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ReadDoc, ROOT};
use doorstep_core::doc::attachments::{read_all, referenced_hashes};
use doorstep_core::doc::generation::{self, Redaction};
use doorstep_core::protocol::blobs::{
    next_upload_step, BlobRefusal, BlobStatus, ChunkRequest, UploadStep, MAX_CHUNK, UPLOAD_CHUNK,
};
use doorstep_core::*;

use super::tolerate_contained_automerge_panics;

/// The fields of an input, split at `0x00` (a field of one `0xff` byte is "absent").
fn fields(data: &[u8]) -> Vec<Option<String>> {
    data.split(|b| *b == 0)
        .map(|f| (f != [0xff]).then(|| String::from_utf8_lossy(f).into_owned()))
        .collect()
}

/// The first byte picks a decoder; the rest is its input:
/// - `0`: a chunk request: `hash \0 offset \0 sha256-header \0 start-header`
///   ([`ChunkRequest::read`], as the server reads `PUT /v1/blobs/{hash}/{offset}`);
/// - `1`: 8 bytes of blob size (big-endian), 2 of chunk size, then a status body (JSON, as
///   a phone reads a `200`/`409` answer) and the upload step planned from it;
/// - `2`: a refusal body (JSON);
/// - `3`: a blob hash (path segment or header);
/// - `4`: a redaction item (`kind/record[/field]`, `attachment/<id>`).
pub fn blobs(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 5 {
        0 => chunk_request(rest),
        1 => status(rest),
        2 => {
            if let Ok(r) = serde_json::from_slice::<BlobRefusal>(rest) {
                let again = serde_json::to_vec(&r).expect("a refusal encodes");
                assert_eq!(serde_json::from_slice::<BlobRefusal>(&again).ok(), Some(r));
            }
        }
        3 => {
            let text = String::from_utf8_lossy(rest);
            if let Ok(h) = BlobHash::parse(&text) {
                let hex = h.to_hex();
                assert_eq!(hex.len(), 64);
                assert!(hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                assert_eq!(BlobHash::parse(&hex).ok(), Some(h));
                assert_eq!(BlobHash::from_slice(&h.0).ok(), Some(h));
            }
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            if let Ok(item) = Redaction::parse(&text) {
                let shown = item.to_string();
                assert_eq!(Redaction::parse(&shown).ok(), Some(item.clone()));
                if let Redaction::Attachment { .. } = item {
                    // Compared as text with the ledger's: the canonical form only.
                    assert_eq!(shown, text);
                }
            }
        }
    }
}

fn chunk_request(rest: &[u8]) {
    let f = fields(rest);
    let get = |i: usize| f.get(i).cloned().flatten();
    let (hash, offset) = (get(0).unwrap_or_default(), get(1).unwrap_or_default());
    let Some(r) = ChunkRequest::read(&hash, &offset, get(2).as_deref(), get(3).as_deref()) else {
        return;
    };
    assert!(r.start <= r.offset, "{r:?}");
    assert!(r.offset - r.start <= MAX_CHUNK as u64, "{r:?}");
    assert_eq!(r.room() as u64, MAX_CHUNK as u64 - (r.offset - r.start));
    assert_eq!(r.hash, BlobHash::parse(&hash).expect("read, so it parses"));
}

fn status(rest: &[u8]) {
    if rest.len() < 10 {
        return;
    }
    let size = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
    let chunk = usize::from(u16::from_be_bytes([rest[8], rest[9]]));
    let Ok(s) = serde_json::from_slice::<BlobStatus>(&rest[10..]) else {
        return;
    };
    let again = serde_json::to_vec(&s).expect("a status encodes");
    assert_eq!(serde_json::from_slice::<BlobStatus>(&again).ok(), Some(s));
    for chunk in [chunk, UPLOAD_CHUNK] {
        match next_upload_step(size, s, chunk) {
            UploadStep::Done => assert!(s.complete || s.received >= size, "{s:?} {size}"),
            UploadStep::Send { start, offset, end } => {
                assert!(!s.complete && start == s.received, "{s:?}");
                assert!(
                    start <= offset && offset < end && end <= size,
                    "{s:?} {size}"
                );
                assert!(end - start <= chunk.max(1) as u64);
            }
        }
    }
}

/// Automerge bytes read for their attachment references: twice alike; every hash
/// round-trips; what the one validator accepts reads whole; and redacting one reference
/// (`attachment/<id>`) leaves exactly the others, in a document the validator still
/// accepts.
pub fn attachment_refs(data: &[u8]) {
    tolerate_contained_automerge_panics();
    let Ok(Ok(doc)) = std::panic::catch_unwind(|| Automerge::load(data)) else {
        return;
    };
    let id = match doorstep_core::doc::household_header(&doc) {
        Ok((id, _)) => id,
        Err(_) => HouseholdId::new(),
    };
    let first = read_all(&doc, id);
    assert_eq!(format!("{first:?}"), format!("{:?}", read_all(&doc, id)));
    let valid = doorstep_core::doc::verify::validate(&doc).is_ok();
    let Ok(refs) = first else {
        assert!(!valid, "the validator accepted references that do not read");
        return;
    };
    let hashes = referenced_hashes(&doc, id).expect("they read");
    for a in &refs {
        assert_eq!(BlobHash::parse(&a.hash.to_hex()).ok(), Some(a.hash));
        assert!(hashes.contains(&a.hash));
    }
    let (Some(target), true) = (refs.first(), valid) else {
        return;
    };
    let item = Redaction::parse(&format!("attachment/{}", target.id)).expect("an id reads");
    let built =
        std::panic::catch_unwind(|| generation::build(&doc, id, std::slice::from_ref(&item), 1));
    let Ok(Ok(g)) = built else {
        return;
    };
    let left: Vec<AttachmentId> = read_all(&g.doc, id)
        .expect("a generation's references read")
        .iter()
        .map(|a| a.id)
        .collect();
    let want: Vec<AttachmentId> = refs
        .iter()
        .map(|a| a.id)
        .filter(|i| *i != target.id)
        .collect();
    assert_eq!(left, want);
}

/// Seeds for both targets (`fuzz/corpus/{blobs,attachment_refs}/seed-*`).
pub fn write_seeds(fuzz_dir: &Path) {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed");
    };
    let h = BlobHash::of(b"a photo").to_hex();
    let c = BlobHash::of(b"a chunk").to_hex();
    let join = |mode: u8, parts: &[&[u8]]| {
        let mut v = vec![mode];
        v.extend_from_slice(&parts.join(&0u8));
        v
    };
    write(
        "blobs",
        "chunk",
        &join(0, &[h.as_bytes(), b"0", c.as_bytes(), &[0xff]]),
    );
    write(
        "blobs",
        "chunk-rest",
        &join(0, &[h.as_bytes(), b"131082", c.as_bytes(), b"131072"]),
    );
    write(
        "blobs",
        "chunk-bad-start",
        &join(0, &[h.as_bytes(), b"5", c.as_bytes(), b"9"]),
    );
    let mut status = vec![1];
    status.extend_from_slice(&300_000u64.to_be_bytes());
    status.extend_from_slice(&4096u16.to_be_bytes());
    status.extend_from_slice(br#"{"received":131072,"complete":false,"tail":17}"#);
    write("blobs", "status", &status);
    write(
        "blobs",
        "refusal",
        &join(2, &[br#"{"error":"not_referenced"}"#]),
    );
    write("blobs", "hash", &join(3, &[h.as_bytes()]));
    let att = AttachmentId::new();
    write(
        "blobs",
        "redaction",
        &join(4, &[format!("attachment/{att}").as_bytes()]),
    );
    write(
        "blobs",
        "redaction-field",
        &join(
            4,
            &[format!("person/{}/id_number", PersonId::new()).as_bytes()],
        ),
    );

    // A household's document with references, as a phone writes it.
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(StoreOptions::new(
        tmp.path().join("seed.db"),
        StoreKey::Raw([1; 32]),
        WorkerId::new(),
        StationId::new(),
    ))
    .expect("store");
    let hh = store
        .create_household(&NewHousehold {
            code: "HH-1".into(),
            ..Default::default()
        })
        .expect("household");
    let person = store
        .add_person(hh, &NewPerson::named("王小明", "孙子"))
        .expect("person");
    for (record, bytes) in [
        (EntityRef::Household, &b"the house"[..]),
        (EntityRef::Person(person), b"the child"),
    ] {
        let new = NewAttachment {
            record,
            kind: AttachmentKind::Photo,
            mime: "image/jpeg".into(),
        };
        store.add_attachment(hh, &new, bytes).expect("attach");
    }
    let mut doc = Automerge::new();
    let changes: Vec<automerge::Change> = store
        .export_changes(hh, &[])
        .expect("changes")
        .into_iter()
        .map(|b| automerge::Change::from_bytes(b).expect("a change"))
        .collect();
    doc.apply_changes(changes).expect("apply");
    write("attachment_refs", "household", &doc.save());
    // The same with one reference malformed (a hash that is not one).
    let col = doc
        .get(&ROOT, "attachments")
        .ok()
        .flatten()
        .map(|(_, id)| id)
        .expect("attachments");
    let key = doc.keys(&col).next().expect("a reference");
    let mut tx = doc.transaction();
    let obj = tx
        .put_object(&col, key.as_str(), ObjType::Map)
        .expect("object");
    tx.put(&obj, "hash", "not a hash").expect("put");
    tx.commit();
    write("attachment_refs", "malformed", &doc.save());
}
