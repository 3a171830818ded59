//! Writes the malformed-input corpus replayed by `tests/tests/malformed.rs`:
//! `tests/corpus/malformed/*.bin` (one HTTP body each) and `MANIFEST.tsv` (which endpoint,
//! what answer is expected, what the input is). Run once, commit the files:
//!
//! ```text
//! cargo run -p doorstep-tests --bin make-corpus
//! ```
//!
//! The output is deterministic (fixed ids, actors and timestamps), so running it again
//! rewrites the same bytes. zstd frames are written by hand (raw and RLE blocks) so that
//! every header field can be made to lie.
// A generator: a failure is a message on the terminal.
#![allow(clippy::unwrap_used)]
// It reports what it wrote.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ROOT};
use doorstep_core::protocol::{
    Cursor, DocChanges, SyncRequest, MAX_BLOB_BYTES, MAX_MESSAGE_BYTES, PROTOCOL_VERSION,
};
use doorstep_core::HouseholdId;
use uuid::Uuid;

/// What the replay expects for an input.
enum Expect {
    /// This HTTP status.
    Status(u16),
    /// 200, and every document pushed gets this per-document error code, and no ack.
    DocError(u8),
    /// 200, every document pushed refused (whatever the code), and no ack.
    Refused,
    /// 200 with no per-document error (the input is hostile but well-formed).
    Ok,
    /// 200 or 400: either is a clean answer (see the description).
    Clean,
}

struct Input {
    name: String,
    endpoint: &'static str,
    expect: Expect,
    what: String,
    body: Vec<u8>,
}

#[derive(Default)]
struct Corpus(Vec<Input>);

impl Corpus {
    fn add(
        &mut self,
        name: &str,
        endpoint: &'static str,
        expect: Expect,
        what: &str,
        body: Vec<u8>,
    ) {
        assert!(
            !self.0.iter().any(|i| i.name == name),
            "duplicate corpus name {name}"
        );
        self.0.push(Input {
            name: name.to_owned(),
            endpoint,
            expect,
            what: what.to_owned(),
            body,
        });
    }
    fn sync(&mut self, name: &str, expect: Expect, what: &str, body: Vec<u8>) {
        self.add(&format!("sync-{name}"), "sync", expect, what, body);
    }
    fn enroll(&mut self, name: &str, expect: Expect, what: &str, body: Vec<u8>) {
        self.add(&format!("enroll-{name}"), "enroll", expect, what, body);
    }
}

// ----- zstd frames by hand ------------------------------------------------------------------

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const MAX_BLOCK: usize = 128 * 1024;

fn block_header(last: bool, kind: u32, size: usize) -> [u8; 3] {
    let v = u32::from(last) | (kind << 1) | ((size as u32) << 3);
    [v as u8, (v >> 8) as u8, (v >> 16) as u8]
}

/// One frame, single segment, with an 8-byte content size (`claimed`, normally the real
/// length), content in raw blocks.
fn frame_claiming(content: &[u8], claimed: u64) -> Vec<u8> {
    let mut out = ZSTD_MAGIC.to_vec();
    out.push(0xe0); // FCS 8 bytes, single segment, no checksum, no dictionary
    out.extend_from_slice(&claimed.to_le_bytes());
    let chunks: Vec<&[u8]> = if content.is_empty() {
        vec![&[][..]]
    } else {
        content.chunks(MAX_BLOCK).collect()
    };
    for (i, c) in chunks.iter().enumerate() {
        out.extend_from_slice(&block_header(i + 1 == chunks.len(), 0, c.len()));
        out.extend_from_slice(c);
    }
    out
}

fn frame(content: &[u8]) -> Vec<u8> {
    frame_claiming(content, content.len() as u64)
}

/// A frame without a content size whose RLE blocks inflate to `total` bytes of `byte`:
/// a few kilobytes that decompress to anything up to gigabytes.
fn rle_bomb(byte: u8, total: usize, window_descriptor: u8) -> Vec<u8> {
    let mut out = ZSTD_MAGIC.to_vec();
    out.push(0x00); // no content size, not single segment
    out.push(window_descriptor);
    let mut left = total;
    while left > 0 {
        let n = left.min(MAX_BLOCK);
        left -= n;
        out.extend_from_slice(&block_header(left == 0, 1, n));
        out.push(byte);
    }
    out
}

// ----- message encoding by hand -------------------------------------------------------------

fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A request header with a nil cursor (a first sync) and the given budget.
fn request_head(version: u8, kind: u8, budget: u64) -> Vec<u8> {
    let mut out = vec![version, kind];
    out.extend_from_slice(Uuid::nil().as_bytes());
    uvarint(&mut out, 0);
    out.push(0);
    uvarint(&mut out, budget);
    out
}

fn id(n: u128) -> HouseholdId {
    // Version-4-shaped fixed ids, so the corpus is the same on every run.
    HouseholdId::from_uuid(Uuid::from_u128(
        0x5eed_0000_0000_4000_8000_0000_0000_0000 | n,
    ))
}

fn request(push: Vec<DocChanges>) -> SyncRequest {
    SyncRequest {
        signer: None,
        cursor: Cursor::default(),
        budget: 1 << 20,
        push,
        accesses: Vec::new(),
    }
}

// ----- automerge changes --------------------------------------------------------------------

fn actor(n: u8) -> ActorId {
    ActorId::from(vec![n; 16])
}

/// A new household document's first change, declaring `doc` and `station`.
fn household_change(doc: HouseholdId, station: Uuid, actor_n: u8) -> (Automerge, Vec<u8>) {
    let mut d = Automerge::new().with_actor(actor(actor_n));
    let mut tx = d.transaction();
    tx.put(ROOT, "schema", 1_i64).unwrap();
    tx.put(ROOT, "kind", "household").unwrap();
    tx.put(ROOT, "id", doc.to_string()).unwrap();
    tx.put(ROOT, "station", station.to_string()).unwrap();
    let created = tx.put_object(ROOT, "created", ObjType::Map).unwrap();
    tx.put(&created, "by", Uuid::from_u128(7).to_string())
        .unwrap();
    tx.put(&created, "dev", Uuid::from_u128(8).to_string())
        .unwrap();
    tx.put(&created, "at", 1_764_000_000_000_i64).unwrap();
    let hh = tx.put_object(ROOT, "household", ObjType::Map).unwrap();
    let summary = tx.put_object(&hh, "summary", ObjType::Text).unwrap();
    tx.splice_text(&summary, 0, 0, "祖孙二人生活。").unwrap();
    tx.commit_with(automerge::transaction::CommitOptions::default().with_time(1_764_000_000_000));
    let bytes = d.get_last_local_change().unwrap().raw_bytes().to_vec();
    (d, bytes)
}

/// A change on top of `doc` (so it depends on `doc`'s heads).
fn follow_on_change(doc: &mut Automerge, text: &str) -> Vec<u8> {
    let mut tx = doc.transaction();
    tx.put(ROOT, "note", text).unwrap();
    tx.commit_with(automerge::transaction::CommitOptions::default().with_time(1_764_000_000_500));
    doc.get_last_local_change().unwrap().raw_bytes().to_vec()
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/malformed");
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = Corpus::default();
    let other_station = Uuid::from_u128(0x0b5e_55ed_0000_4000_8000_0000_0000_0001);

    // --- bodies and framing ---------------------------------------------------------------
    c.sync("empty", Expect::Status(400), "empty body", vec![]);
    c.sync(
        "not-zstd",
        Expect::Status(400),
        "plain text, not a zstd frame",
        b"hello, server".to_vec(),
    );
    c.sync(
        "raw-message-uncompressed",
        Expect::Status(400),
        "a valid request encoding sent without its zstd frame",
        request(vec![]).encode_raw(),
    );
    c.sync(
        "magic-only",
        Expect::Status(400),
        "the zstd magic number and nothing else",
        ZSTD_MAGIC.to_vec(),
    );
    let valid = request(vec![]).encode();
    for cut in [1, 4, 5, valid.len() / 2, valid.len() - 1] {
        c.sync(
            &format!("truncated-frame-{cut:03}"),
            Expect::Status(400),
            "a valid request body cut short",
            valid[..cut].to_vec(),
        );
    }
    let raw = request(vec![]).encode_raw();
    c.sync(
        "fcs-lies-short",
        Expect::Status(400),
        "frame content size smaller than the content",
        frame_claiming(&raw, raw.len() as u64 - 3),
    );
    c.sync(
        "fcs-lies-long",
        Expect::Status(400),
        "frame content size of 1 TiB over a small content",
        frame_claiming(&raw, 1 << 40),
    );
    let mut bad_block = frame(&raw);
    bad_block[13] |= 0x06; // block type 3: reserved
    c.sync(
        "reserved-block-type",
        Expect::Status(400),
        "a block of the reserved type",
        bad_block,
    );
    let mut long_block = frame(&raw);
    let h = block_header(true, 0, raw.len() + 1000);
    long_block[13..16].copy_from_slice(&h);
    c.sync(
        "block-size-lies",
        Expect::Status(400),
        "a raw block header claiming more bytes than follow",
        long_block,
    );
    let mut checksum = frame(&raw);
    checksum[4] |= 0x04; // content checksum present ...
    checksum.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // ... and wrong
    c.sync(
        "bad-checksum",
        Expect::Status(400),
        "a content checksum that does not match",
        checksum,
    );
    let mut reserved_bit = frame(&raw);
    reserved_bit[4] |= 0x08;
    c.sync(
        "reserved-header-bit",
        Expect::Status(400),
        "the frame header's reserved bit set",
        reserved_bit,
    );
    let mut dict = ZSTD_MAGIC.to_vec();
    dict.extend_from_slice(&[0x21, 0x01]); // single segment, 1-byte dictionary id, 1-byte FCS
    dict.push(raw.len() as u8);
    dict.extend_from_slice(&block_header(true, 0, raw.len()));
    dict.extend_from_slice(&raw);
    c.sync(
        "needs-dictionary",
        Expect::Status(400),
        "a frame that needs a dictionary the server does not have",
        dict,
    );
    c.sync(
        "huge-window",
        Expect::Status(400),
        "a frame asking for a 2 TiB window",
        rle_bomb(0, 1024, 0xf8),
    );
    c.sync(
        "bomb-64mib",
        Expect::Status(400),
        "decompression bomb: 2 kB of RLE blocks inflating to 64 MiB + 128 KiB of zeros",
        rle_bomb(0, MAX_MESSAGE_BYTES + MAX_BLOCK, 0x38),
    );
    c.sync(
        "bomb-1gib",
        Expect::Status(400),
        "decompression bomb: 24 kB of RLE blocks inflating to 1 GiB",
        rle_bomb(1, 1 << 30, 0x38),
    );
    let mut two = frame(&raw[..raw.len() / 2]);
    two.extend_from_slice(&frame(&raw[raw.len() / 2..]));
    c.sync(
        "two-frames",
        Expect::Clean,
        "a valid request split over two concatenated frames (the spec says one frame; the \
         decoder is allowed to read both)",
        two,
    );
    let mut skippable = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
    skippable.extend_from_slice(&frame(&raw));
    c.sync(
        "skippable-then-frame",
        Expect::Clean,
        "a skippable frame, then a valid request frame",
        skippable,
    );
    c.sync(
        "trailing-garbage-after-frame",
        Expect::Status(400),
        "a valid frame followed by garbage",
        {
            let mut b = frame(&raw);
            b.extend_from_slice(b"garbage");
            b
        },
    );

    // --- message header -----------------------------------------------------------------
    for v in [0u8, 1, 2, 4, 9, 255] {
        c.sync(
            &format!("version-{v:03}"),
            Expect::Status(400),
            "a protocol version this server does not speak (1: before signed changes, 2: before compact changes, 4: before signatures named by place)",
            frame(
                &request_head(v, 1, 1 << 20)
                    .into_iter()
                    .chain([0])
                    .collect::<Vec<_>>(),
            ),
        );
    }
    for k in [0u8, 2, 3, 255] {
        c.sync(
            &format!("kind-{k:03}"),
            Expect::Status(400),
            "a message kind other than request (2 is a response)",
            frame(
                &request_head(PROTOCOL_VERSION, k, 1 << 20)
                    .into_iter()
                    .chain([0])
                    .collect::<Vec<_>>(),
            ),
        );
    }
    c.sync(
        "kind-response-whole",
        Expect::Status(400),
        "a whole valid response message sent as a request",
        doorstep_core::protocol::SyncResponse::default().encode(),
    );
    let mut phase = vec![PROTOCOL_VERSION, 1];
    phase.extend_from_slice(Uuid::nil().as_bytes());
    phase.extend_from_slice(&[0, 7]);
    uvarint(&mut phase, 1 << 20);
    phase.push(0);
    c.sync(
        "cursor-phase-7",
        Expect::Status(400),
        "a cursor phase that does not exist",
        frame(&phase),
    );
    let mut nil_after = vec![PROTOCOL_VERSION, 1];
    nil_after.extend_from_slice(Uuid::nil().as_bytes());
    nil_after.extend_from_slice(&[0, 2]);
    nil_after.extend_from_slice(Uuid::nil().as_bytes());
    uvarint(&mut nil_after, 1 << 20);
    nil_after.push(0);
    c.sync(
        "cursor-nil-after",
        Expect::Status(400),
        "a bootstrap cursor resuming after the nil id",
        frame(&nil_after),
    );
    let mut long_varint = vec![PROTOCOL_VERSION, 1];
    long_varint.extend_from_slice(Uuid::nil().as_bytes());
    long_varint.extend_from_slice(&[0xff; 11]);
    c.sync(
        "varint-11-bytes",
        Expect::Status(400),
        "a varint of 11 bytes",
        frame(&long_varint),
    );
    let mut overflow = vec![PROTOCOL_VERSION, 1];
    overflow.extend_from_slice(Uuid::nil().as_bytes());
    overflow.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    c.sync(
        "varint-overflow",
        Expect::Status(400),
        "a varint over 2^64",
        frame(&overflow),
    );
    let mut budget = request_head(PROTOCOL_VERSION, 1, u64::from(u32::MAX) + 1);
    budget.push(0);
    c.sync(
        "budget-over-u32",
        Expect::Status(400),
        "a budget that does not fit 32 bits",
        frame(&budget),
    );
    let mut extreme = vec![PROTOCOL_VERSION, 1];
    extreme.extend_from_slice(Uuid::from_u128(0xdead).as_bytes());
    uvarint(&mut extreme, u64::MAX);
    extreme.push(2);
    extreme.extend_from_slice(id(0xffff).as_uuid().as_bytes());
    uvarint(&mut extreme, 0);
    extreme.push(0);
    extreme.push(0); // no signer registration
    c.sync(
        "cursor-extreme",
        Expect::Ok,
        "a well-formed request with an unknown epoch, seq 2^64-1, a bootstrap cursor after \
         an unknown id, budget 0: the server starts a bootstrap",
        frame(&extreme),
    );
    let mut trailing = raw.clone();
    trailing.push(0);
    c.sync(
        "trailing-byte",
        Expect::Status(400),
        "one byte after the message",
        frame(&trailing),
    );
    for cut in [1, 2, 10, 18, raw.len() - 1] {
        c.sync(
            &format!("truncated-message-{cut:02}"),
            Expect::Status(400),
            "a message cut short inside a valid frame",
            frame(&raw[..cut]),
        );
    }

    // --- counts and lengths that lie ------------------------------------------------------
    let mut huge_docs = request_head(PROTOCOL_VERSION, 1, 1 << 20);
    uvarint(&mut huge_docs, u64::MAX);
    c.sync(
        "count-docs-2^64",
        Expect::Status(400),
        "a document count of 2^64-1",
        frame(&huge_docs),
    );
    let mut many_docs = request_head(PROTOCOL_VERSION, 1, 1 << 20);
    uvarint(&mut many_docs, 1 << 40);
    many_docs.extend_from_slice(&[0xab; 64]);
    c.sync(
        "count-docs-2^40",
        Expect::Status(400),
        "a document count of 2^40 over 64 bytes",
        frame(&many_docs),
    );
    let mut huge_changes = request_head(PROTOCOL_VERSION, 1, 1 << 20);
    uvarint(&mut huge_changes, 1);
    huge_changes.extend_from_slice(id(1).as_uuid().as_bytes());
    uvarint(&mut huge_changes, 1 << 50);
    c.sync(
        "count-changes-2^50",
        Expect::Status(400),
        "a change count of 2^50",
        frame(&huge_changes),
    );
    let mut blob_long = request_head(PROTOCOL_VERSION, 1, 1 << 20);
    uvarint(&mut blob_long, 1);
    blob_long.extend_from_slice(id(1).as_uuid().as_bytes());
    uvarint(&mut blob_long, 1);
    blob_long.push(0); // sent whole
    uvarint(&mut blob_long, 1000);
    blob_long.extend_from_slice(&[0x85; 10]);
    c.sync(
        "length-lies",
        Expect::Status(400),
        "a change length of 1000 over 10 bytes",
        frame(&blob_long),
    );
    let mut blob_max = request_head(PROTOCOL_VERSION, 1, 1 << 20);
    uvarint(&mut blob_max, 1);
    blob_max.extend_from_slice(id(1).as_uuid().as_bytes());
    uvarint(&mut blob_max, 1);
    blob_max.push(0); // sent whole
    uvarint(&mut blob_max, MAX_BLOB_BYTES as u64 + 1);
    c.sync(
        "length-over-blob-limit",
        Expect::Status(400),
        "a change length over 16 MiB",
        frame(&blob_max),
    );
    let mut blob_u64 = request_head(PROTOCOL_VERSION, 1, 1 << 20);
    uvarint(&mut blob_u64, 1);
    blob_u64.extend_from_slice(id(1).as_uuid().as_bytes());
    uvarint(&mut blob_u64, 1);
    blob_u64.push(0); // sent whole
    uvarint(&mut blob_u64, u64::MAX);
    c.sync(
        "length-2^64",
        Expect::Status(400),
        "a change length of 2^64-1",
        frame(&blob_u64),
    );
    let mut nil_doc = request_head(PROTOCOL_VERSION, 1, 1 << 20);
    uvarint(&mut nil_doc, 1);
    nil_doc.extend_from_slice(Uuid::nil().as_bytes());
    uvarint(&mut nil_doc, 0);
    c.sync(
        "nil-document-id",
        Expect::Status(400),
        "a push for the nil document id",
        frame(&nil_doc),
    );
    // A signature naming its change by place (ADR 0037) past the start of the list.
    let mut sig_past = request_head(PROTOCOL_VERSION, 1, 1 << 20);
    uvarint(&mut sig_past, 1);
    sig_past.extend_from_slice(id(1).as_uuid().as_bytes());
    uvarint(&mut sig_past, 0); // no changes
    uvarint(&mut sig_past, 1); // one signature
    uvarint(&mut sig_past, 1); // the last change of the (empty) list
    sig_past.extend_from_slice(&[0x5a; 64]);
    sig_past.push(0); // no signer key
    c.sync(
        "signature-names-no-change",
        Expect::Status(400),
        "a signature naming the last change of an empty list",
        frame(&sig_past),
    );
    let mut short_uuid = request_head(PROTOCOL_VERSION, 1, 1 << 20);
    uvarint(&mut short_uuid, 1);
    short_uuid.extend_from_slice(&[0x11; 15]);
    short_uuid.push(0);
    c.sync(
        "document-id-short",
        Expect::Status(400),
        "a document id one byte short",
        frame(&short_uuid),
    );

    // --- automerge changes: per-document error codes ----------------------------------------
    let (mut base, first) = household_change(id(10), other_station, 1);
    let second = follow_on_change(&mut base, "x");
    let third = follow_on_change(&mut base, "y");
    let push = |doc: u128, changes: Vec<Vec<u8>>| DocChanges {
        signatures: Vec::new(),
        doc: id(doc),
        changes,
    };
    c.sync(
        "change-garbage",
        Expect::DocError(1),
        "a change that is random bytes (at an id the server does not have: every refusal there is code 1)",
        request(vec![push(20, vec![b"not an automerge change".to_vec()])]).encode(),
    );
    c.sync(
        "change-empty",
        Expect::DocError(1),
        "a change of zero bytes (at an id the server does not have: every refusal there is code 1)",
        request(vec![push(21, vec![vec![]])]).encode(),
    );
    for cut in [1, 8, first.len() / 2, first.len() - 1] {
        c.sync(
            &format!("change-truncated-{cut:03}"),
            Expect::DocError(1),
            "a valid change cut short (at an id the server does not have: every refusal there is code 1)",
            request(vec![push(22, vec![first[..cut].to_vec()])]).encode(),
        );
    }
    for pos in [4, 5, 8, 12, first.len() / 2, first.len() - 2] {
        let mut flipped = first.clone();
        flipped[pos] ^= 0x40;
        c.sync(
            &format!("change-bitflip-{pos:03}"),
            Expect::Refused,
            "a change (of a household of another station) with one bit flipped: automerge \
             does not check a change chunk's checksum, so a flip in the checksum or in text \
             content still parses (refused: another station) and others do not (malformed)",
            request(vec![push(23, vec![flipped])]).encode(),
        );
    }
    c.sync(
        "change-is-a-document",
        Expect::DocError(1),
        "a whole saved document where a change belongs (at an id the server does not have: every refusal there is code 1)",
        request(vec![push(24, vec![base.save()])]).encode(),
    );
    c.sync(
        // At a document id the server does not have, every refusal is "not found or
        // forbidden" (code 1), so it cannot be told from another station's document.
        "change-missing-deps",
        Expect::DocError(1),
        "a change whose dependency the server has never seen",
        request(vec![push(25, vec![third.clone()])]).encode(),
    );
    c.sync(
        "change-missing-deps-duplicated",
        Expect::DocError(1),
        "the same dependent change three times, in two entries for one document",
        request(vec![
            push(26, vec![third.clone(), third.clone()]),
            push(26, vec![third.clone()]),
        ])
        .encode(),
    );
    c.sync(
        "change-chain-gap",
        Expect::DocError(1),
        "a new document's first and third change, the second missing",
        request(vec![push(10, vec![first.clone(), third.clone()])]).encode(),
    );
    c.sync(
        "change-other-station",
        Expect::DocError(1),
        "a new household declaring another station",
        request(vec![push(10, vec![first.clone(), second.clone()])]).encode(),
    );
    c.sync(
        "change-other-station-duplicated",
        Expect::DocError(1),
        "a new household declaring another station, every change twice",
        request(vec![push(
            10,
            vec![first.clone(), first.clone(), second.clone(), second.clone()],
        )])
        .encode(),
    );
    c.sync(
        "change-id-mismatch",
        Expect::DocError(1),
        "a household document pushed under another document id",
        request(vec![push(27, vec![first.clone()])]).encode(),
    );
    let not_household = {
        let mut d = Automerge::new().with_actor(actor(2));
        let mut tx = d.transaction();
        tx.put(ROOT, "kind", "station").unwrap();
        tx.commit_with(
            automerge::transaction::CommitOptions::default().with_time(1_764_000_000_000),
        );
        d.get_last_local_change().unwrap().raw_bytes().to_vec()
    };
    c.sync(
        "change-not-a-household",
        Expect::DocError(1),
        "a new document that is not a household",
        request(vec![push(28, vec![not_household])]).encode(),
    );
    let mut mixed: Vec<DocChanges> = vec![
        push(30, vec![b"junk".to_vec()]),
        push(31, vec![vec![0x85, 0x6f, 0x4a, 0x83]]),
    ];
    mixed.extend((0..40).map(|i| push(100 + i, vec![vec![0x85, 0x6f, 0x4a, 0x83, i as u8]])));
    c.sync(
        "change-many-docs",
        Expect::DocError(1),
        "42 documents, each with a change that is only a chunk header",
        request(mixed).encode(),
    );

    // --- enrolment JSON ------------------------------------------------------------------
    c.enroll("empty", Expect::Status(400), "empty body", vec![]);
    c.enroll(
        "invalid-utf8",
        Expect::Status(400),
        "invalid UTF-8 inside the code string",
        {
            let mut b = br#"{"code": "ABCD-"#.to_vec();
            b.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
            b.extend_from_slice(br#""}"#);
            b
        },
    );
    c.enroll(
        "overlong-utf8",
        Expect::Status(400),
        "an overlong UTF-8 encoding of '/'",
        b"{\"code\": \"\xc0\xaf\"}".to_vec(),
    );
    c.enroll(
        "lone-surrogate",
        Expect::Status(400),
        "a JSON escape of a lone UTF-16 surrogate",
        br#"{"code": "\ud800"}"#.to_vec(),
    );
    c.enroll(
        "not-json",
        Expect::Status(400),
        "not JSON",
        b"code=ABCD-EFGH-JKMN".to_vec(),
    );
    c.enroll(
        "truncated",
        Expect::Status(400),
        "JSON cut short",
        br#"{"code": "ABCD-EF"#.to_vec(),
    );
    c.enroll(
        "wrong-type",
        Expect::Status(400),
        "the code as a number",
        br#"{"code": 12345678}"#.to_vec(),
    );
    c.enroll(
        "missing-field",
        Expect::Status(400),
        "no code field",
        br#"{"token": "x"}"#.to_vec(),
    );
    c.enroll(
        "array",
        Expect::Status(401),
        "a JSON array holding an unknown code: serde reads a struct from an array, so this \
         is a well-formed request for an unknown code",
        br#"["ABCD-EFGH-JKMN"]"#.to_vec(),
    );
    c.enroll(
        "deep-nesting",
        Expect::Status(400),
        "10,000 nested arrays",
        [b"[".repeat(10_000), b"]".repeat(10_000)].concat(),
    );
    c.enroll(
        "empty-code",
        Expect::Status(401),
        "an empty code",
        br#"{"code": ""}"#.to_vec(),
    );
    c.enroll(
        "code-only-dashes",
        Expect::Status(401),
        "a code with no letters or digits",
        br#"{"code": "----  ----"}"#.to_vec(),
    );
    c.enroll(
        "code-nul-bytes",
        Expect::Status(401),
        "a code of escaped NUL characters",
        br#"{"code": "\u0000\u0000\u0000"}"#.to_vec(),
    );
    c.enroll(
        "code-64kib",
        Expect::Status(413),
        "a code of 65,536 letters: the body is over the 64 KiB limit of an enrolment",
        format!(r#"{{"code": "{}"}}"#, "A".repeat(1 << 16)).into_bytes(),
    );
    c.enroll(
        "code-unknown",
        Expect::Status(401),
        "a well-formed code nobody was given",
        br#"{"code": "ZZZZ-ZZZZ-ZZZZ"}"#.to_vec(),
    );
    c.enroll(
        "code-fullwidth",
        Expect::Status(401),
        "a code in full-width letters",
        "{\"code\": \"ＡＢＣＤ-ＥＦＧＨ-ＪＫＭＮ\"}"
            .as_bytes()
            .to_vec(),
    );
    c.enroll(
        "duplicate-field",
        Expect::Status(400),
        "the code field twice",
        br#"{"code": "ABCD-EFGH-JKMN", "code": "ZZZZ-ZZZZ-ZZZZ"}"#.to_vec(),
    );

    // Write: remove old inputs first, so a renamed input leaves no stale file.
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "bin") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let mut manifest = String::from(
        "# Malformed inputs replayed by tests/tests/malformed.rs; written by\n\
         # `cargo run -p doorstep-tests --bin make-corpus` (tests/src/bin/make-corpus.rs).\n\
         # file\tendpoint\texpect\twhat\n\
         # expect: an HTTP status; doc:N = 200 and every pushed document refused with code N;\n\
         # doc:any = 200 and every pushed document refused, whatever the code;\n\
         # ok = 200 without refusals; clean = 200 or 400.\n",
    );
    let mut bytes = 0;
    for i in &c.0 {
        let file = format!("{}.bin", i.name);
        std::fs::write(dir.join(&file), &i.body).unwrap();
        bytes += i.body.len();
        let expect = match i.expect {
            Expect::Status(s) => s.to_string(),
            Expect::DocError(code) => format!("doc:{code}"),
            Expect::Refused => "doc:any".into(),
            Expect::Ok => "ok".into(),
            Expect::Clean => "clean".into(),
        };
        manifest.push_str(&format!("{file}\t{}\t{expect}\t{}\n", i.endpoint, i.what));
    }
    std::fs::write(dir.join("MANIFEST.tsv"), manifest).unwrap();
    println!(
        "wrote {} inputs ({bytes} bytes) and MANIFEST.tsv to {}",
        c.0.len(),
        dir.display()
    );
}
