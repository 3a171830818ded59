//! Fuzz target bodies (suite 5 of `docs/reliability.md`, see `docs/fuzzing.md`): one plain
//! function per decoder of untrusted bytes. The cargo-fuzz crate in `fuzz/` (nightly,
//! outside the workspace) calls each from one target; `tests/tests/fuzz_corpus.rs` replays
//! every corpus and artifact file through the same functions on stable, so the targets'
//! code and the inputs they found run in every CI build.
//!
//! Each function takes any bytes and must not panic, except on purpose: where a check is
//! cheap it asserts an invariant (a decoded message encodes back to itself, a stored
//! document reads the same twice and after a reload, a refused response leaves the store as
//! it was, a push at another station's document is refused, what the server acknowledges
//! loads back and reads whole on a phone of the same version), and a failed assertion is a finding. Findings whose fix lies elsewhere stay
//! listed in [`OPEN_FINDINGS`] until fixed.
//!
//! The targets that drive a device store or the server start from a committed *world*
//! (`fuzz/world/`: a server database, a device store and the ids in them), copied into a
//! scratch directory once per process and again after any input that changed it, so every
//! input meets the same state. The world and the seed corpora are written together by
//! [`write_world_and_seeds`] (`DOORSTEP_WRITE_FUZZ_WORLD=1 cargo test -p doorstep-tests
//! --test fuzz_corpus -- --ignored write_world_and_seeds`); rewriting the world gives new ids, which makes the
//! old seeds of the stateful targets miss, so the two are regenerated together.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};

use automerge::Automerge;
use doorstep_core::doc::station::{
    read_station, read_vocabulary, read_worker_labels, station_doc_id, station_header,
};
use doorstep_core::doc::{card_issuances, household_header};
use doorstep_core::protocol::*;
use doorstep_core::*;
use doorstep_server::credentials::{hash_secret, new_token, normalise_code};
use doorstep_server::store::{DeviceAuth, ServerStore};
use doorstep_server::sync::SyncService;
use doorstep_server::SqliteStore;

mod blobs;
pub use blobs::{attachment_refs, blobs, write_seeds as write_attachment_seeds};

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its cargo-fuzz target and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("sync_request", sync_request),
    ("sync_response", sync_response),
    ("enroll", enroll),
    ("document", document),
    ("device_response", device_response),
    ("server_push", server_push),
    ("blobs", blobs),
    ("attachment_refs", attachment_refs),
];

/// The raw key of the world's device store (test data only).
const DEVICE_KEY: [u8; 32] = [0x5a; 32];

// ----- panics inside automerge ---------------------------------------------------------------

static CONTAINED_PANICS: AtomicU64 = AtomicU64::new(0);

/// Under libFuzzer every panic aborts the process, even one the code catches. The core and
/// the server run automerge on hostile bytes inside `catch_unwind` and turn its panics into
/// errors; this hook lets a panic raised inside automerge unwind to that handler (an
/// uncaught one still aborts: libFuzzer's harness aborts on any panic reaching it) and
/// counts it. `DOORSTEP_FUZZ_STRICT=1` keeps every panic fatal, to hunt automerge's own.
pub fn tolerate_contained_automerge_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("DOORSTEP_FUZZ_STRICT").is_some() {
            return;
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_automerge = info
                .location()
                .is_some_and(|l| l.file().contains("/automerge-0."));
            LAST_PANIC_IN_AUTOMERGE.with(|f| f.set(in_automerge));
            if in_automerge {
                // Said for the first few: if no handler catches it, this is the message.
                if CONTAINED_PANICS.fetch_add(1, Ordering::Relaxed) < 10 || verbose() {
                    eprintln!("panic inside automerge (unwinding to its handler): {info}");
                    if verbose() {
                        eprintln!("{}", std::backtrace::Backtrace::force_capture());
                    }
                }
            } else {
                previous(info);
            }
        }));
    });
}

/// Panics raised inside automerge so far in this process (see above).
pub fn contained_automerge_panics() -> u64 {
    CONTAINED_PANICS.load(Ordering::Relaxed)
}

thread_local! {
    static LAST_PANIC_IN_AUTOMERGE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

static STRICT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Make open findings fatal (as `DOORSTEP_FUZZ_STRICT=1` does): for the test that checks
/// they are fixed.
pub fn set_strict(strict: bool) {
    STRICT.store(strict, Ordering::Relaxed);
}

fn strict() -> bool {
    STRICT.load(Ordering::Relaxed) || std::env::var_os("DOORSTEP_FUZZ_STRICT").is_some()
}

/// Open findings (see `docs/fuzzing.md`): bugs the fuzzers found whose fix lies outside the
/// decoders this suite owns. Until they are fixed the targets count them and go on (so a
/// long run can find other things); `DOORSTEP_FUZZ_STRICT=1`, or [`set_strict`], makes them
/// fatal, and `tests/tests/fuzz_corpus.rs::open_findings_are_fixed` replays their inputs
/// that way.
pub const OPEN_FINDINGS: &[(&str, &str)] = &[
    // Fixed (docs/fuzzing.md), each fatal if it comes back: "server-stores-unloadable-document"
    // (finding 1), "device-apply-panics" (finding 2) and "server-change-decoder-panics"
    // (finding 3: `Change::from_bytes` panicked on some pushed bytes outside `contained`).
];

static FINDINGS_SEEN: Mutex<Vec<(&'static str, usize)>> = Mutex::new(Vec::new());

/// Open finding `name` happened: fatal when strict, else counted (and said once).
fn open_finding(name: &'static str) {
    assert!(
        OPEN_FINDINGS.iter().any(|(n, _)| *n == name),
        "{name}: a fixed finding is back (docs/fuzzing.md)"
    );
    if strict() {
        panic!("open finding {name}");
    }
    let mut seen = FINDINGS_SEEN.lock().unwrap_or_else(|p| p.into_inner());
    let n = match seen.iter_mut().find(|(s, _)| *s == name) {
        Some((_, n)) => {
            *n += 1;
            *n
        }
        None => {
            seen.push((name, 1));
            1
        }
    };
    // Said at the 1st, 10th, 100th ... time: the log of a run counts them.
    let power_of_ten = n
        .to_string()
        .strip_prefix('1')
        .is_some_and(|z| z.bytes().all(|c| c == b'0'));
    if power_of_ten {
        eprintln!("open finding {name} hit {n} times (DOORSTEP_FUZZ_STRICT=1 makes it fatal)");
    }
}

/// How many times each open finding was hit in this process.
pub fn open_findings_seen() -> Vec<(&'static str, usize)> {
    let seen = FINDINGS_SEEN.lock().unwrap_or_else(|p| p.into_inner());
    OPEN_FINDINGS
        .iter()
        .map(|(n, _)| {
            let count = seen.iter().find(|(s, _)| s == n).map_or(0, |(_, c)| *c);
            (*n, count)
        })
        .collect()
}

/// Run `f`; a panic raised inside automerge that escapes it is open finding `name` (the
/// caller then resets its world). Any other panic goes on unwinding.
fn guard<T>(name: &'static str, f: impl FnOnce() -> T) -> Option<T> {
    LAST_PANIC_IN_AUTOMERGE.with(|c| c.set(false));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(p) => {
            if LAST_PANIC_IN_AUTOMERGE.with(|c| c.get()) && !strict() {
                open_finding(name);
                None
            } else {
                std::panic::resume_unwind(p)
            }
        }
    }
}

/// `DOORSTEP_FUZZ_VERBOSE=1`: say what happened to each input of a stateful target (ids,
/// counts and error kinds only), to check that seeds reach what they are meant to.
fn verbose() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var_os("DOORSTEP_FUZZ_VERBOSE").is_some())
}

macro_rules! say {
    ($($t:tt)*) => {
        if verbose() {
            eprintln!($($t)*);
        }
    };
}

// ----- pure decoders -------------------------------------------------------------------------

/// `SyncRequest::decode` (a zstd body, as the server receives it) and `decode_raw` (the
/// message inside): what decodes encodes back to the same message.
pub fn sync_request(data: &[u8]) {
    if let Ok(req) = SyncRequest::decode(data) {
        let raw = decompress(data).expect("a decoded body decompresses");
        assert_eq!(SyncRequest::decode_raw(&raw).as_ref(), Ok(&req));
        request_round_trip(&req);
    }
    if let Ok(req) = SyncRequest::decode_raw(data) {
        request_round_trip(&req);
    }
}

fn request_round_trip(req: &SyncRequest) {
    assert_eq!(SyncRequest::decode_raw(&req.encode_raw()).as_ref(), Ok(req));
    assert_eq!(SyncRequest::decode(&req.encode()).as_ref(), Ok(req));
}

/// `SyncResponse::decode` and `decode_raw`, as a device receives a response.
pub fn sync_response(data: &[u8]) {
    if let Ok(resp) = SyncResponse::decode(data) {
        let raw = decompress(data).expect("a decoded body decompresses");
        assert_eq!(SyncResponse::decode_raw(&raw).as_ref(), Ok(&resp));
        response_round_trip(&resp);
    }
    if let Ok(resp) = SyncResponse::decode_raw(data) {
        response_round_trip(&resp);
    }
}

fn response_round_trip(resp: &SyncResponse) {
    assert_eq!(
        SyncResponse::decode_raw(&resp.encode_raw()).as_ref(),
        Ok(resp)
    );
    assert_eq!(SyncResponse::decode(&resp.encode()).as_ref(), Ok(resp));
}

/// What decodes from JSON encodes and decodes back to the same value.
macro_rules! json_round_trip {
    ($v:expr, $t:ty) => {{
        let bytes = serde_json::to_vec($v).expect("a decoded value encodes");
        let back: $t = serde_json::from_slice(&bytes).expect("an encoded value decodes");
        assert_eq!(&back, $v);
    }};
}

/// Enrolment bodies: the server's reading of `POST /v1/enroll` (JSON, the code normalised,
/// hashed and looked up in the world's server store, as the handler does), and the device's
/// reading of the answers (`Enrollment` on 200, `Unauthorized` on 401).
pub fn enroll(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<EnrollRequest>(data) {
        let code = normalise_code(&req.code);
        assert!(code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert_eq!(
            normalise_code(&code),
            code,
            "normalising twice changes the code"
        );
        json_round_trip!(&req, EnrollRequest);
        // The handler's rule, then the lookup: no code of the world is unredeemed, so
        // nothing can match.
        if !code.is_empty() && code.len() <= 64 {
            let mut world = server_world();
            let found = world
                .store
                .redeem_code(&hash_secret(&code), &hash_secret(&new_token()), 0)
                .expect("looking up a code does not fail");
            assert!(found.is_none(), "a fuzzed code redeemed an enrolment");
            world.keep();
        }
    }
    if let Ok(e) = serde_json::from_slice::<Enrollment>(data) {
        json_round_trip!(&e, Enrollment);
        // The token never shows in logs: its Debug form is redacted.
        assert!(format!("{e:?}").contains("<redacted>"));
    }
    if let Ok(u) = serde_json::from_slice::<Unauthorized>(data) {
        json_round_trip!(&u, Unauthorized);
    }
}

// ----- stored documents ----------------------------------------------------------------------

/// Bytes loaded as an automerge document: as the server loads a stored document and reads
/// its header, card issuances and station data (cards, labels, vocabulary); then as a device stores a snapshot it
/// received and reads it through the typed API (household, index, conflicts, search).
pub fn document(data: &[u8]) {
    tolerate_contained_automerge_panics();
    let loaded = std::panic::catch_unwind(|| Automerge::load(data));
    if let Ok(Ok(doc)) = loaded {
        let reads = |d: &Automerge| {
            format!(
                "{:?} {:?} {:?} {:?} {:?} {:?}",
                household_header(d),
                card_issuances(d),
                read_station(d),
                station_header(d),
                read_worker_labels(d),
                read_vocabulary(d)
            )
        };
        let first = reads(&doc);
        assert_eq!(reads(&doc), first, "a document reads differently twice");
        // What the server stores after compaction is `save()`: it must load to the same.
        let saved = doc.save();
        let again = Automerge::load(&saved).expect("a saved document loads");
        assert_eq!(again.get_heads(), doc.get_heads());
        assert_eq!(reads(&again), first, "a saved document reads differently");
    }
    device_snapshot(data);
}

/// The id a device would receive these bytes under: the household id they declare, the
/// station document's id, or (for bytes that declare neither) one of the world's
/// households, so that the refusal is exercised too.
fn snapshot_id(data: &[u8], ids: &WorldIds) -> HouseholdId {
    let declared = std::panic::catch_unwind(|| {
        let doc = Automerge::load(data).ok()?;
        if let Ok((id, _)) = household_header(&doc) {
            return Some(id);
        }
        station_header(&doc).ok().map(station_doc_id)
    });
    declared.ok().flatten().unwrap_or_else(|| {
        ids.households
            .first()
            .copied()
            .unwrap_or(HouseholdId::from_uuid(uuid::Uuid::from_u128(1)))
    })
}

fn device_snapshot(data: &[u8]) {
    let mut world = device_world();
    let id = snapshot_id(data, &world.ids);
    let cursor = world.before.cursor;
    let resp = SyncResponse {
        epoch: cursor.epoch,
        cursor,
        snapshots: vec![DocSnapshot {
            signatures: Vec::new(),
            doc: id,
            bytes: data.to_vec(),
        }],
        ..SyncResponse::default()
    };
    let done = guard("device-apply-panics", || {
        let applied = world.store().apply_response(&resp);
        say!(
            "document: {} bytes as {id}: {:?}",
            data.len(),
            applied.as_ref().err()
        );
        match applied {
            Ok(_) => {
                world.check_readable(&[id]);
                world.keep_if_unchanged();
            }
            Err(_) => world.check_unchanged(),
        }
    });
    if done.is_none() {
        world.reset();
    }
}

/// A response message (uncompressed: `decode` is `sync_response`'s) applied by the world's
/// device store: pulled changes, snapshots, acks, refusals and a new cursor. A response the
/// store refuses leaves it exactly as it was; one it accepts leaves every household
/// readable, the same twice and after a reload from disk, with an index equal to a rebuilt
/// one.
pub fn device_response(data: &[u8]) {
    tolerate_contained_automerge_panics();
    let Ok(resp) = SyncResponse::decode_raw(data) else {
        return;
    };
    let mut world = device_world();
    let done = guard("device-apply-panics", || {
        let applied = world.store().apply_response(&resp);
        say!("device_response: {:?}", applied);
        match applied {
            Ok(_) => {
                let ids = world.store().household_ids().expect("ids");
                world.check_readable(&ids);
                world.keep_if_unchanged();
            }
            Err(_) => world.check_unchanged(),
        }
    });
    if done.is_none() {
        world.reset();
    }
}

// ----- the server ----------------------------------------------------------------------------

/// A request message (uncompressed) served by the world's `SyncService` for a device of
/// station A, as the HTTP handler does after decoding: the validation of pushed changes
/// (`accept`), the commit, and the pull. Checks: the response encodes and decodes back to
/// itself; acks and refusals name only pushed documents, never both; a push at station B's
/// documents or at station A's own document is refused with code 1; nothing of station B is
/// returned.
pub fn server_push(data: &[u8]) {
    tolerate_contained_automerge_panics();
    let Ok(req) = SyncRequest::decode_raw(data) else {
        return;
    };
    let mut world = server_world();
    let auth = world.ids.auth();
    let Some(served) = guard("server-change-decoder-panics", || {
        world.service.sync(&auth, &req)
    }) else {
        world.reset();
        return;
    };
    let Ok(resp) = served.inspect_err(|e| say!("server_push: {e}")) else {
        // A store failure, not a refusal: start the next input from a clean world.
        world.reset();
        return;
    };
    say!(
        "server_push: {} acks, errors {:?}, {} snapshots, {} pulled, more {}",
        resp.acks.len(),
        resp.errors.iter().map(|e| e.code).collect::<Vec<_>>(),
        resp.snapshots.len(),
        resp.pull.len(),
        resp.more
    );
    assert_eq!(SyncResponse::decode(&resp.encode()).as_ref(), Ok(&resp));
    let pushed: Vec<HouseholdId> = req.push.iter().map(|d| d.doc).collect();
    for a in &resp.acks {
        assert!(pushed.contains(&a.doc), "ack of a document not pushed");
        assert!(
            !resp.errors.iter().any(|e| e.doc == a.doc),
            "a document both acknowledged and refused"
        );
    }
    for e in &resp.errors {
        assert!(pushed.contains(&e.doc), "refusal of a document not pushed");
    }
    let ids = &world.ids;
    // Station B's documents: never acknowledged, served or accepted for a device of A.
    let theirs: Vec<HouseholdId> = ids
        .other_households
        .iter()
        .copied()
        .chain([station_doc_id(ids.other_station)])
        .collect();
    let own_station_doc = station_doc_id(ids.station);
    // A push at another station's document, or at the station's own document, is refused:
    // code 1, or code 2 when the change bytes do not even decode (they are decoded before the
    // owner is looked up, so garbage gets code 2 at every id and tells nothing).
    for d in req
        .push
        .iter()
        .filter(|d| theirs.contains(&d.doc) || d.doc == own_station_doc)
    {
        let code = resp.errors.iter().find(|e| e.doc == d.doc).map(|e| e.code);
        assert!(
            matches!(
                code,
                Some(DocErrorCode::NotFoundOrForbidden | DocErrorCode::Malformed)
            ),
            "a push at a forbidden document was answered {code:?}"
        );
    }
    let leaked = resp
        .snapshots
        .iter()
        .map(|s| s.doc)
        .chain(resp.pull.iter().map(|p| p.doc))
        .chain(resp.acks.iter().map(|a| a.doc))
        .any(|d| theirs.contains(&d));
    assert!(!leaked, "station B's data in an answer to station A");
    // What was accepted is stored: it loads back as the server loads it, with the heads the
    // ack gave, and its compacted form (`save`, what the server stores every 128 changes)
    // loads too. A document that stops loading would refuse every later sync of it.
    for a in &resp.acks {
        let stored = world
            .store
            .load_document(a.doc)
            .expect("load")
            .expect("an acknowledged document is stored");
        match reload(&stored, &a.heads) {
            Ok(()) => {}
            Err(e) => {
                say!("server_push: stored document does not load: {e}");
                open_finding("server-stores-unloadable-document");
                world.reset();
                return;
            }
        }
    }
    absent_and_forbidden_alike(&world, &req, &resp, &theirs);
    let high_water = world
        .store
        .high_water(world.ids.station)
        .expect("high water");
    if high_water != world.high_water {
        world.reset();
    } else {
        world.keep();
    }
}

/// Load a stored document as the server does (snapshot, then its log entries), then its
/// compacted form (what the server stores every 128 changes): both must have the heads the
/// server acknowledged, and the document must read whole with the phones' reader
/// (`doc::verify::validate`: what the server acknowledges, every device of the same version
/// applies), else why not.
fn reload(
    stored: &doorstep_server::store::StoredDocument,
    acked: &[ChangeHash],
) -> Result<(), String> {
    std::panic::catch_unwind(|| {
        let doc = doorstep_server::snapshot::load_stored(stored).map_err(|e| e.to_string())?;
        if doc.get_heads() != acked {
            return Err("the log entries load to other heads than acknowledged".into());
        }
        let compacted = doorstep_server::store::StoredDocument {
            snapshot: Some(doorstep_server::snapshot::encode_stored(&doc)),
            ..Default::default()
        };
        let again = doorstep_server::snapshot::load_stored(&compacted)
            .map_err(|e| format!("compacted: {e}"))?;
        if again.get_heads() != acked {
            return Err("the compacted document has other heads".into());
        }
        // Acknowledged ⇒ applicable: every phone of this version reads it whole (issue 13).
        doorstep_core::doc::verify::validate(&doc)
            .map_err(|e| format!("a phone of this version cannot read it: {e}"))?;
        Ok(())
    })
    .unwrap_or_else(|_| Err("automerge panicked".into()))
}

/// The same changes pushed at an id nobody has (a twin of each of station B's ids, its last
/// bit flipped) are refused with the same code as at station B's id: an answer that differs
/// would tell a device of A that the id exists elsewhere.
fn absent_and_forbidden_alike(
    world: &ServerWorld,
    req: &SyncRequest,
    resp: &SyncResponse,
    theirs: &[HouseholdId],
) {
    let twin =
        |d: HouseholdId| HouseholdId::from_uuid(uuid::Uuid::from_u128(d.as_uuid().as_u128() ^ 1));
    let at_b: Vec<HouseholdId> = req
        .push
        .iter()
        .map(|d| d.doc)
        .filter(|d| theirs.contains(d))
        .collect();
    if at_b.is_empty()
        || req
            .push
            .iter()
            .any(|d| at_b.iter().any(|b| twin(*b) == d.doc))
    {
        return;
    }
    let mut probe = req.clone();
    for d in &mut probe.push {
        if at_b.contains(&d.doc) {
            d.doc = twin(d.doc);
        }
    }
    let Ok(answer) = world.service.sync(&world.ids.auth(), &probe) else {
        return;
    };
    for b in &at_b {
        let at_twin = answer
            .errors
            .iter()
            .find(|e| e.doc == twin(*b))
            .map(|e| e.code);
        let at_their = resp.errors.iter().find(|e| e.doc == *b).map(|e| e.code);
        // A valid new household at a free id is accepted, as it may be: compare refusals.
        if at_twin.is_some() {
            assert_eq!(
                at_their, at_twin,
                "absent and forbidden answered differently"
            );
        }
    }
}

// ----- the world -----------------------------------------------------------------------------

/// The ids of the committed world (`fuzz/world/world.txt`).
#[derive(Clone, Debug)]
pub struct WorldIds {
    /// Station A: the device's station.
    pub station: StationId,
    pub worker: WorkerId,
    pub device: DeviceId,
    /// Station B: another station on the same server.
    pub other_station: StationId,
    /// Station A's households.
    pub households: Vec<HouseholdId>,
    /// Station B's households.
    pub other_households: Vec<HouseholdId>,
}

impl WorldIds {
    fn auth(&self) -> DeviceAuth {
        DeviceAuth {
            device: self.device,
            worker: self.worker,
            station: self.station,
            revoked: false,
        }
    }

    fn to_text(&self) -> String {
        let mut s = format!(
            "station {}\nworker {}\ndevice {}\nother_station {}\n",
            self.station, self.worker, self.device, self.other_station
        );
        for h in &self.households {
            s.push_str(&format!("household {h}\n"));
        }
        for h in &self.other_households {
            s.push_str(&format!("other_household {h}\n"));
        }
        s
    }

    fn parse(text: &str) -> WorldIds {
        let mut fields: std::collections::BTreeMap<&str, Vec<uuid::Uuid>> = Default::default();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once(' ') {
                let id = uuid::Uuid::parse_str(v.trim()).expect("an id in world.txt");
                fields.entry(k).or_default().push(id);
            }
        }
        let one = |k: &str| {
            *fields
                .get(k)
                .and_then(|v| v.first())
                .unwrap_or_else(|| panic!("world.txt has no {k}"))
        };
        let many = |k: &str| fields.get(k).cloned().unwrap_or_default();
        WorldIds {
            station: StationId::from_uuid(one("station")),
            worker: WorkerId::from_uuid(one("worker")),
            device: DeviceId::from_uuid(one("device")),
            other_station: StationId::from_uuid(one("other_station")),
            households: many("household")
                .into_iter()
                .map(HouseholdId::from_uuid)
                .collect(),
            other_households: many("other_household")
                .into_iter()
                .map(HouseholdId::from_uuid)
                .collect(),
        }
    }
}

/// `fuzz/world/` (or `DOORSTEP_FUZZ_WORLD`).
pub fn world_dir() -> PathBuf {
    std::env::var_os("DOORSTEP_FUZZ_WORLD")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/world"))
}

fn world_ids() -> WorldIds {
    let path = world_dir().join("world.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (see docs/fuzzing.md)", path.display()));
    WorldIds::parse(&text)
}

/// A scratch directory, in memory where the machine has one.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new()
            .prefix("doorstep-fuzz")
            .tempdir_in(shm)
        {
            return d;
        }
    }
    tempfile::tempdir().expect("temporary directory")
}

fn lock<T>(m: &'static Mutex<Option<T>>) -> MutexGuard<'static, Option<T>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The server of the world, opened on a fresh copy of `fuzz/world/server.db`.
struct ServerState {
    service: SyncService<SqliteStore>,
    store: Arc<SqliteStore>,
    high_water: u64,
    ids: WorldIds,
    _dir: tempfile::TempDir,
}

impl ServerState {
    fn open() -> ServerState {
        let ids = world_ids();
        let dir = scratch();
        std::fs::copy(world_dir().join("server.db"), dir.path().join("server.db"))
            .expect("copy the world's server database");
        let store = Arc::new(SqliteStore::open(dir.path()).expect("open the world's server"));
        let high_water = store.high_water(ids.station).expect("high water");
        ServerState {
            service: SyncService::new(store.clone(), 64),
            store,
            high_water,
            ids,
            _dir: dir,
        }
    }
}

static SERVER: Mutex<Option<ServerState>> = Mutex::new(None);

/// The world's server, held for one input.
struct ServerWorld {
    guard: MutexGuard<'static, Option<ServerState>>,
    state: Option<ServerState>,
}

impl std::ops::Deref for ServerWorld {
    type Target = ServerState;
    fn deref(&self) -> &ServerState {
        self.state.as_ref().expect("server world")
    }
}

fn server_world() -> ServerWorld {
    let mut guard = lock(&SERVER);
    let state = Some(guard.take().unwrap_or_else(ServerState::open));
    ServerWorld { guard, state }
}

impl ServerWorld {
    /// Keep the state for the next input (it did not change).
    fn keep(&mut self) {
        *self.guard = self.state.take();
    }
    /// Drop the state: the next input reopens a fresh copy.
    fn reset(&mut self) {
        self.state = None;
        *self.guard = None;
    }
}

impl Drop for ServerWorld {
    fn drop(&mut self) {
        // An input that panicked (a finding) leaves no state behind for the next one.
        if self.state.is_some() && std::thread::panicking() {
            *self.guard = None;
        }
    }
}

/// What the world's device store holds, compared after a refused response.
#[derive(Clone, Debug, PartialEq)]
struct DeviceSummary {
    cursor: Cursor,
    ids: Vec<HouseholdId>,
    heads: Vec<Vec<ChangeHash>>,
    server_heads: Vec<Vec<ChangeHash>>,
    index: Vec<String>,
    unsynced: Vec<HouseholdId>,
    unreadable: Vec<HouseholdId>,
}

impl DeviceSummary {
    fn of(store: &Store, ids: &WorldIds) -> DeviceSummary {
        let all = store.household_ids().expect("ids");
        let mut heads: Vec<Vec<ChangeHash>> = all
            .iter()
            .map(|h| store.heads(*h).expect("heads"))
            .collect();
        let station = station_doc_id(ids.station);
        heads.push(store.heads(station).unwrap_or_default());
        let mut server_heads: Vec<Vec<ChangeHash>> = all
            .iter()
            .map(|h| store.server_heads(*h).expect("server heads"))
            .collect();
        server_heads.push(store.server_heads(station).unwrap_or_default());
        DeviceSummary {
            cursor: store.sync_cursor().expect("cursor"),
            ids: all,
            heads,
            server_heads,
            index: store.index_dump().expect("index"),
            unsynced: store.unsynced_households().expect("unsynced"),
            unreadable: store.unreadable_households().expect("unreadable"),
        }
    }
}

/// The device store of the world, opened on a fresh copy of `fuzz/world/device.db`.
struct DeviceState {
    store: Option<Store>,
    before: DeviceSummary,
    ids: WorldIds,
    _dir: tempfile::TempDir,
}

impl DeviceState {
    fn open() -> DeviceState {
        let ids = world_ids();
        let dir = scratch();
        let path = dir.path().join("device.db");
        std::fs::copy(world_dir().join("device.db"), &path).expect("copy the world's device store");
        let mut o = StoreOptions::new(&path, StoreKey::Raw(DEVICE_KEY), ids.worker, ids.station);
        o.device = Some(ids.device);
        o.durability = Durability::Relaxed;
        let store = Store::open(o).expect("open the world's device store");
        let before = DeviceSummary::of(&store, &ids);
        DeviceState {
            store: Some(store),
            before,
            ids,
            _dir: dir,
        }
    }
}

static DEVICE: Mutex<Option<DeviceState>> = Mutex::new(None);

struct DeviceWorld {
    guard: MutexGuard<'static, Option<DeviceState>>,
    state: Option<DeviceState>,
}

impl std::ops::Deref for DeviceWorld {
    type Target = DeviceState;
    fn deref(&self) -> &DeviceState {
        self.state.as_ref().expect("device world")
    }
}

fn device_world() -> DeviceWorld {
    let mut guard = lock(&DEVICE);
    let state = Some(guard.take().unwrap_or_else(DeviceState::open));
    DeviceWorld { guard, state }
}

impl DeviceWorld {
    fn store(&self) -> &Store {
        self.store.as_ref().expect("device store")
    }

    /// After a refused response: the store is as it was, and stays for the next input.
    fn check_unchanged(&mut self) {
        let now = DeviceSummary::of(self.store(), &self.ids);
        assert_eq!(now, self.before, "a refused response changed the store");
        *self.guard = self.state.take();
    }

    /// After an accepted response: each household reads the same twice and after a reload
    /// from disk, and the index equals one rebuilt from the documents.
    fn check_readable(&self, ids: &[HouseholdId]) {
        let store = self.store();
        let read = |h: &HouseholdId| format!("{:?}", store.household(*h));
        let first: Vec<String> = ids.iter().map(read).collect();
        let second: Vec<String> = ids.iter().map(read).collect();
        assert_eq!(first, second, "a household reads differently twice");
        store.clear_cache();
        let reloaded: Vec<String> = ids.iter().map(read).collect();
        assert_eq!(
            first, reloaded,
            "a household reads differently after a reload"
        );
        for h in ids {
            let _ = store.conflicts(Some(*h));
        }
        let _ = store.search("石桥", 5);
        let _ = store.unreadable_households();
        let index = store.index_dump().expect("index");
        store.rebuild_index().expect("rebuild the index");
        assert_eq!(
            store.index_dump().expect("index"),
            index,
            "the index differs from a rebuilt one"
        );
    }

    /// Drop the store: the next input starts from a fresh copy.
    fn reset(&mut self) {
        self.state = None;
        *self.guard = None;
    }

    /// After an accepted response: keep the store for the next input if it holds what it
    /// held before (a response that added nothing), else start the next from a fresh copy.
    fn keep_if_unchanged(&mut self) {
        if DeviceSummary::of(self.store(), &self.ids) == self.before {
            *self.guard = self.state.take();
        } else {
            self.state = None;
            *self.guard = None;
        }
    }
}

impl Drop for DeviceWorld {
    fn drop(&mut self) {
        if self.state.is_some() && std::thread::panicking() {
            *self.guard = None;
        }
    }
}

// ----- writing the world and the seeds -------------------------------------------------------

/// Write `fuzz/world/` and the seed corpora `fuzz/corpus/<target>/seed-*` under `fuzz_dir`:
/// a server with two stations; station A's device (the world's) with two households (one
/// with persons, a visit, text, a need, an inquiry, a follow-up, a card and a name
/// conflict), a colleague's device, station B's device with a household; then, after the
/// world is saved, requests and responses of what happens next (edits, new households, a
/// forged push at station B, bootstraps, a stale epoch) and the documents themselves.
pub fn write_world_and_seeds(fuzz_dir: &Path) {
    blobs::write_seeds(fuzz_dir);
    use doorstep_server::cards;
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = Arc::new(SqliteStore::open(&tmp.path().join("server")).expect("server"));
    let service = SyncService::new(server.clone(), 64);
    let station = server.create_station("石桥镇社工站", 0).expect("station");
    let other_station = server.create_station("白沙镇社工站", 0).expect("station");
    let enrol = |st: StationId, label: &str| -> DeviceAuth {
        let worker = server.add_worker(st, label, 0).expect("worker");
        let team = doorstep_core::TeamName::new("station").expect("team");
        server.set_team(worker, Some(&team), 0).expect("team");
        let (_, code) =
            doorstep_server::credentials::enroll_device(server.as_ref(), worker, 0).expect("enrol");
        doorstep_server::credentials::redeem_code(server.as_ref(), &code, 0)
            .expect("redeem")
            .expect("redeemed")
            .0
    };
    let a = enrol(station, "W01");
    let a2 = enrol(station, "W02");
    let b = enrol(other_station, "W09");
    let batch = cards::add_batch(server.as_ref(), station, "HG", 1, 500).expect("batch");
    cards::add_lease(server.as_ref(), station, batch, 1, 50, a.device, None).expect("lease");

    let device_path = |name: &str| tmp.path().join(format!("{name}.db"));
    let open = |name: &str, auth: &DeviceAuth| {
        let mut o = StoreOptions::new(
            device_path(name),
            StoreKey::Raw(DEVICE_KEY),
            auth.worker,
            auth.station,
        );
        o.device = Some(auth.device);
        o.durability = Durability::Relaxed;
        Store::open(o).expect("device store")
    };
    let sync = |store: &Store, auth: &DeviceAuth| {
        for _ in 0..50 {
            let req = store.build_sync_request(1 << 20).expect("request");
            let resp = service.sync(auth, &req).expect("sync");
            if !store.apply_response(&resp).expect("apply").more {
                return;
            }
        }
        panic!("sync did not finish");
    };

    let sa = open("a", &a);
    let sa2 = open("a2", &a2);
    let sb = open("b", &b);
    let h1 = sa
        .create_household(&NewHousehold {
            code: "HH-000001".into(),
            village: "石桥村".into(),
            address: "石桥村一组".into(),
            summary: "祖孙二人生活，父母外出务工。".into(),
            ..Default::default()
        })
        .expect("household");
    let child = sa
        .add_person(
            h1,
            &NewPerson {
                categories: vec!["child.difficult".into()],
                school: Some("石桥小学".into()),
                grade: Some("三年级".into()),
                ..NewPerson::named("王小明", "孙子")
            },
        )
        .expect("person");
    let grandma = sa
        .add_person(h1, &NewPerson::named("李桂兰", "祖母"))
        .expect("person");
    sa.edit_person(h1, grandma, &PersonEdit::Guardian(true))
        .expect("edit");
    sa.edit_household(h1, &HouseholdEdit::AddTag("household.dibao".into()))
        .expect("tag");
    let visit = sa
        .start_visit(
            h1,
            &NewVisit {
                kind: VisitKind::Home,
                date: Date::parse("2026-11-29").expect("date"),
                started_at: Timestamp(1_764_400_000_000),
                gps: None,
                other_workers: vec![a2.worker],
                present: vec![child, grandma],
                companions: vec![],
            },
        )
        .expect("visit");
    sa.splice_section(
        h1,
        visit,
        Section::QuestionsAsked,
        0,
        0,
        "询问困境儿童基本生活补贴",
    )
    .expect("text");
    sa.splice_section(h1, visit, Section::ActualNeeds, 0, 0, "需要冬衣")
        .expect("text");
    sa.add_need(
        h1,
        &NewNeed {
            category: "生活".into(),
            description: "冬衣两套".into(),
            person: Some(child),
            visit: Some(visit),
        },
    )
    .expect("need");
    sa.add_inquiry(
        h1,
        &NewInquiry {
            question: "补贴何时发放".into(),
            topic: "补贴".into(),
            answer: None,
            visit: Some(visit),
        },
    )
    .expect("inquiry");
    sa.add_follow_up(
        h1,
        &NewFollowUp {
            what: "送冬衣".into(),
            due: Date::parse("2026-12-06").expect("date"),
            assignee: a.worker,
            origin_visit: Some(visit),
        },
    )
    .expect("follow-up");
    sa.record_card_issuance(
        h1,
        &NewCardIssuance {
            serial: CardSerial::new("HG", 1).expect("serial").to_string(),
            visit: Some(visit),
            person: Some(grandma),
            replaces: None,
        },
    )
    .expect("card");
    // An earlier visit, finalised and then amended.
    let earlier = sa
        .start_visit(
            h1,
            &NewVisit {
                kind: VisitKind::Phone,
                date: Date::parse("2026-11-20").expect("date"),
                started_at: Timestamp(1_763_600_000_000),
                gps: None,
                other_workers: vec![],
                present: vec![grandma],
                companions: vec![],
            },
        )
        .expect("visit");
    sa.splice_section(h1, earlier, Section::FamilySituation, 0, 0, "电话回访")
        .expect("text");
    sa.finalise_visit(h1, earlier).expect("finalise");
    sa.amend_visit(
        h1,
        earlier,
        Some(Section::FamilySituation),
        "补充：邻居照看",
    )
    .expect("amend");
    let h2 = sa
        .create_household(&NewHousehold {
            code: "HH-000002".into(),
            village: "石桥村".into(),
            ..Default::default()
        })
        .expect("household");
    sync(&sa, &a);
    sync(&sa2, &a2);
    // A concurrent name edit: a conflict for a human.
    sa.edit_person(h1, child, &PersonEdit::Name("王晓明".into()))
        .expect("edit");
    sa2.edit_person(h1, child, &PersonEdit::Name("王小鸣".into()))
        .expect("edit");
    sync(&sa, &a);
    sync(&sa2, &a2);
    sync(&sa, &a);
    let hb = sb
        .create_household(&NewHousehold {
            code: "HH-B00001".into(),
            village: "白沙村".into(),
            summary: "B站的记录。".into(),
            ..Default::default()
        })
        .expect("household");
    sb.add_person(hb, &NewPerson::named("赵某", "户主"))
        .expect("person");
    sync(&sb, &b);

    // ----- the world as it is now
    let world = fuzz_dir.join("world");
    std::fs::create_dir_all(&world).expect("world dir");
    let server_db = world.join("server.db");
    let _ = std::fs::remove_file(&server_db);
    server.backup(&server_db).expect("server backup");
    drop(sa); // checkpoints: the store is one file
    std::fs::copy(device_path("a"), world.join("device.db")).expect("device copy");
    let sa = open("a", &a);
    let ids = WorldIds {
        station,
        worker: a.worker,
        device: a.device,
        other_station,
        households: vec![h1, h2],
        other_households: vec![hb],
    };
    std::fs::write(world.join("world.txt"), ids.to_text()).expect("world.txt");
    let cursor = sa.sync_cursor().expect("cursor");

    // ----- what happens next: the seeds
    let mut seeds = Seeds::default();
    // The world's device edits and creates; its request, before the server sees it.
    sa.splice_section(h1, visit, Section::AdviceGiven, 0, 0, "建议申请临时救助")
        .expect("text");
    sa.add_person(h1, &NewPerson::named("王大力", "父亲"))
        .expect("person");
    sa.record_card_issuance(
        h1,
        &NewCardIssuance {
            serial: CardSerial::new("HG", 2).expect("serial").to_string(),
            visit: None,
            person: Some(child),
            replaces: None,
        },
    )
    .expect("card");
    let h3 = sa
        .create_household(&NewHousehold {
            code: "HH-000003".into(),
            village: "石桥村".into(),
            summary: "独居老人。".into(),
            ..Default::default()
        })
        .expect("household");
    let push_a = sa.build_sync_request(1 << 20).expect("request");
    seeds.request("push-edits-and-new", &push_a);
    // A colleague edits and creates; the server takes it.
    sa2.splice_section(h1, visit, Section::Concerns, 0, 0, "祖母腿脚不便")
        .expect("text");
    sa2.edit_household(h1, &HouseholdEdit::AddPhone("13800000000".into()))
        .expect("phone");
    let h4 = sa2
        .create_household(&NewHousehold {
            code: "HH-000004".into(),
            village: "石桥村".into(),
            ..Default::default()
        })
        .expect("household");
    let push_a2 = sa2.build_sync_request(1 << 20).expect("request");
    seeds.request("colleague-push", &push_a2);
    seeds.response(
        "colleague-acks",
        &service.sync(&a2, &push_a2).expect("sync"),
    );
    // The world's device asks: it pulls the colleague's work.
    let idle = SyncRequest {
        signer: None,
        cursor,
        budget: 1 << 20,
        push: vec![],
        accesses: Vec::new(),
    };
    seeds.request("idle", &idle);
    // The device's access log rides along: a household of the station and an absent id.
    let with_accesses = SyncRequest {
        accesses: vec![
            Access {
                household: h1,
                at: 1_765_000_000_000,
            },
            Access {
                household: HouseholdId::new(),
                at: 1_765_000_000_001,
            },
        ],
        ..idle.clone()
    };
    seeds.request("accesses", &with_accesses);
    seeds.response("pull", &service.sync(&a, &idle).expect("sync"));
    let small = SyncRequest {
        budget: 1,
        ..idle.clone()
    };
    seeds.response(
        "pull-small-budget",
        &service.sync(&a, &small).expect("sync"),
    );
    // An erasure notice (ADR 0016) for a household the device holds and one it never had:
    // the device deletes, counts its discarded changes and scrubs.
    let erasing = SyncResponse {
        erasures: vec![
            doorstep_core::protocol::Erasure {
                doc: h2,
                reason: doorstep_core::protocol::ErasureReason::SubjectRequest,
                erased_at: 1_765_000_000_000,
            },
            doorstep_core::protocol::Erasure {
                doc: HouseholdId::new(),
                reason: doorstep_core::protocol::ErasureReason::RetentionEnded,
                erased_at: 1_765_000_000_001,
            },
        ],
        ..service.sync(&a, &idle).expect("sync")
    };
    seeds.response("erasures", &erasing);
    // Bootstraps: from nothing, resuming, and after a restore (another epoch).
    let boot = SyncRequest {
        budget: 1 << 20,
        ..SyncRequest::default()
    };
    seeds.request("bootstrap", &boot);
    seeds.response("bootstrap", &service.sync(&a, &boot).expect("sync"));
    let resume = SyncRequest {
        signer: None,
        cursor: Cursor {
            epoch: cursor.epoch,
            seq: cursor.seq,
            phase: Phase::Bootstrap { after: Some(h1) },
        },
        budget: 1,
        push: vec![],
        accesses: Vec::new(),
    };
    seeds.request("bootstrap-resume", &resume);
    seeds.response(
        "bootstrap-resume",
        &service.sync(&a, &resume).expect("sync"),
    );
    let stale = SyncRequest {
        signer: None,
        cursor: Cursor {
            epoch: uuid::Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001),
            seq: cursor.seq,
            phase: Phase::Log,
        },
        budget: 1 << 20,
        push: vec![],
        accesses: Vec::new(),
    };
    seeds.request("stale-epoch", &stale);
    seeds.response("epoch-reset", &service.sync(&a, &stale).expect("sync"));
    // The world's device pushes: acknowledged (answered against the live server, so the
    // response carries the colleague's work too).
    seeds.response("acks", &service.sync(&a, &push_a).expect("sync"));
    // Refusals: a change without its dependencies, B's household, A's station document.
    let last_only = SyncRequest {
        signer: None,
        cursor,
        budget: 1 << 20,
        push: vec![DocChanges {
            signatures: Vec::new(),
            doc: h1,
            changes: sa2
                .export_changes(h1, &[])
                .expect("changes")
                .into_iter()
                .last()
                .into_iter()
                .collect(),
        }],
        accesses: Vec::new(),
    };
    seeds.request("missing-deps", &last_only);
    sb.splice_summary(hb, 0, 0, "新情况：").expect("text");
    let b_changes = sb.export_changes(hb, &[]).expect("changes");
    let forged = SyncRequest {
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
                doc: station_doc_id(station),
                changes: vec![b_changes[0].clone()],
            },
        ],
        accesses: Vec::new(),
    };
    seeds.request("forged-push", &forged);
    let refusals = service.sync(&a, &forged).expect("sync");
    seeds.response("refusals", &refusals);
    let mixed = SyncResponse {
        errors: vec![DocError {
            doc: h2,
            code: DocErrorCode::Invalid,
        }],
        ..service.sync(&a, &last_only).expect("sync")
    };
    seeds.response("refusal-and-acks", &mixed);

    // Documents: every household and the station document, as snapshots and as changes.
    for (name, store, h) in [
        ("h1", &sa, h1),
        ("h2", &sa, h2),
        ("h3", &sa, h3),
        ("h4", &sa2, h4),
        ("hb", &sb, hb),
        ("station", &sa, station_doc_id(station)),
    ] {
        seeds.add(
            "document",
            &format!("{name}-snapshot"),
            store.export_document(h).expect("document"),
        );
        let changes = store.export_changes(h, &[]).expect("changes").concat();
        seeds.add("document", &format!("{name}-changes"), changes);
    }

    // Enrolment bodies.
    for (name, body) in [
        ("request", r#"{"code": "ABCD-EFGH-JKMN"}"#),
        ("request-lowercase", r#"{"code":"abcd efgh jkmn"}"#),
        (
            "enrollment",
            r#"{"token":"dst_0123456789abcdef","device":"01930000-0000-7000-8000-000000000001","worker":"01930000-0000-7000-8000-000000000002","station":"01930000-0000-7000-8000-000000000003"}"#,
        ),
        ("unauthorized", r#"{"error":"revoked","wipe":true}"#),
    ] {
        seeds.add("enroll", name, body.as_bytes().to_vec());
    }
    seeds.write(&fuzz_dir.join("corpus"));
}

#[derive(Default)]
struct Seeds(Vec<(&'static str, String, Vec<u8>)>);

impl Seeds {
    fn add(&mut self, target: &'static str, name: &str, bytes: Vec<u8>) {
        self.0.push((target, format!("seed-{name}"), bytes));
    }
    fn request(&mut self, name: &str, r: &SyncRequest) {
        self.add("sync_request", &format!("{name}-raw"), r.encode_raw());
        self.add("sync_request", &format!("{name}-zstd"), r.encode());
        self.add("server_push", name, r.encode_raw());
    }
    fn response(&mut self, name: &str, r: &SyncResponse) {
        self.add("sync_response", &format!("{name}-raw"), r.encode_raw());
        self.add("sync_response", &format!("{name}-zstd"), r.encode());
        self.add("device_response", name, r.encode_raw());
    }
    fn write(&self, corpus: &Path) {
        // Old seeds of this generator go; what the fuzzer found stays.
        for (target, _) in TARGETS {
            if let Ok(entries) = std::fs::read_dir(corpus.join(target)) {
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().starts_with("seed-") {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
        for (target, name, bytes) in &self.0 {
            let dir = corpus.join(target);
            std::fs::create_dir_all(&dir).expect("corpus dir");
            std::fs::write(dir.join(name), bytes).expect("seed");
        }
    }
}
