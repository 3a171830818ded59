//! The sync wire format, version 5 (specified in `docs/protocol.md`): compact binary,
//! then one zstd frame. Pure functions, no IO. Every decoder returns an error on garbage and
//! never allocates more than the bytes it was given justify.

use automerge::ChangeHash;
use uuid::Uuid;

use crate::model::ids::{DeviceId, HouseholdId, WorkerId};
use crate::model::role::{Role, TeamName, MAX_TEAM_CHARS};
use crate::protocol::signing::ChangeSignature;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 5;
/// Largest decompressed message accepted (a decompression bomb stops here).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Largest single change or snapshot.
pub const MAX_BLOB_BYTES: usize = 16 * 1024 * 1024;
/// Longest automerge actor id accepted (Doorstep's are 16 bytes).
pub const MAX_ACTOR_BYTES: usize = 64;
/// Most case-file accesses one request carries (a device sends the rest next sync); a
/// request with more is refused.
pub const MAX_ACCESSES: usize = 1000;

/// A signature that names its signed change by actor and hash rather than by its place in
/// the list of changes it travels with (ADR 0037).
const SIGNED_BY_HASH: u64 = 0;

const KIND_REQUEST: u8 = 1;
const KIND_RESPONSE: u8 = 2;

/// Why bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("not a zstd frame, or it is damaged")]
    Compression,
    #[error("message larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    #[error("protocol version {0} is not supported (this build speaks {PROTOCOL_VERSION})")]
    Version(u8),
    #[error("unexpected message kind {0}")]
    Kind(u8),
    #[error("message ends early")]
    Truncated,
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

/// Where a device is in the station's change log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Cursor {
    /// The server's epoch (a new one after a restore from backup); nil before the first sync.
    pub epoch: Uuid,
    /// The last log sequence pulled (during bootstrap: the log position the snapshots cover).
    pub seq: u64,
    pub phase: Phase,
}

/// Log pulling, or a paged bootstrap from snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    Log,
    /// Receiving snapshots, in document-id order, after `after`.
    Bootstrap { after: Option<HouseholdId> },
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DocChanges {
    pub doc: HouseholdId,
    pub changes: Vec<Vec<u8>>,
    /// Signatures that vouch for these changes: per actor, one over its newest change.
    pub signatures: Vec<AuthorSignature>,
}

/// The hashes of one document's changes in a response, in the order of its `changes`
/// (what [`SyncResponse::encode_with_hashes`] is given; not part of the encoding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownHashes {
    pub doc: HouseholdId,
    pub hashes: Vec<[u8; 32]>,
}

/// A signature by the device that owns `actor`, over one of that actor's changes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AuthorSignature {
    pub actor: Vec<u8>,
    pub signature: ChangeSignature,
}

/// A device's own signing key and actor, registered with the server on its first syncs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerKey {
    pub actor: Vec<u8>,
    pub key: [u8; 32],
}

/// Who owns an actor: the device, its worker, and the device's public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    pub actor: Vec<u8>,
    pub device: DeviceId,
    pub worker: WorkerId,
    pub key: [u8; 32],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocHeads {
    pub doc: HouseholdId,
    pub heads: Vec<ChangeHash>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocSnapshot {
    pub doc: HouseholdId,
    pub bytes: Vec<u8>,
    pub signatures: Vec<AuthorSignature>,
}

/// Why the server refused a document's changes. "Not found" and "forbidden" are one code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocErrorCode {
    NotFoundOrForbidden,
    Malformed,
    Invalid,
    MissingDependencies,
    /// A change is not vouched for by the device that owns its actor, or writes
    /// provenance (`by`, `dev`, a future `at`) that is not its signer's.
    Unattributed,
    /// A change made after a visit was finalised touches that visit.
    Finalised,
}

impl DocErrorCode {
    fn to_byte(self) -> u8 {
        match self {
            DocErrorCode::NotFoundOrForbidden => 1,
            DocErrorCode::Malformed => 2,
            DocErrorCode::Invalid => 3,
            DocErrorCode::MissingDependencies => 4,
            DocErrorCode::Unattributed => 5,
            DocErrorCode::Finalised => 6,
        }
    }
    fn from_byte(b: u8) -> Result<Self, WireError> {
        Ok(match b {
            1 => DocErrorCode::NotFoundOrForbidden,
            2 => DocErrorCode::Malformed,
            3 => DocErrorCode::Invalid,
            4 => DocErrorCode::MissingDependencies,
            5 => DocErrorCode::Unattributed,
            6 => DocErrorCode::Finalised,
            _ => return Err(WireError::Malformed("unknown error code")),
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            DocErrorCode::NotFoundOrForbidden => "not_found_or_forbidden",
            DocErrorCode::Malformed => "malformed",
            DocErrorCode::Invalid => "invalid",
            DocErrorCode::MissingDependencies => "missing_dependencies",
            DocErrorCode::Unattributed => "unattributed",
            DocErrorCode::Finalised => "finalised",
        }
    }
}

/// Why a household was erased (a code, never free text: the ledger and the wire carry no
/// personal data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErasureReason {
    /// The person (or their guardian) asked for it (PIPL Art. 47).
    SubjectRequest,
    /// Created in error (a duplicate, a household that does not exist, the wrong station).
    CreatedInError,
    /// The retention period after closing ended.
    RetentionEnded,
    /// Another reason, recorded by code only.
    Other,
}

impl ErasureReason {
    pub const ALL: [ErasureReason; 4] = [
        ErasureReason::SubjectRequest,
        ErasureReason::CreatedInError,
        ErasureReason::RetentionEnded,
        ErasureReason::Other,
    ];
    pub fn to_byte(self) -> u8 {
        match self {
            ErasureReason::SubjectRequest => 1,
            ErasureReason::CreatedInError => 2,
            ErasureReason::RetentionEnded => 3,
            ErasureReason::Other => 4,
        }
    }
    /// The reason of a byte; a code a newer server added reads as [`ErasureReason::Other`]
    /// (the household is erased all the same).
    pub fn from_byte(b: u8) -> Self {
        match b {
            1 => ErasureReason::SubjectRequest,
            2 => ErasureReason::CreatedInError,
            3 => ErasureReason::RetentionEnded,
            _ => ErasureReason::Other,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureReason::SubjectRequest => "subject-request",
            ErasureReason::CreatedInError => "created-in-error",
            ErasureReason::RetentionEnded => "retention-ended",
            ErasureReason::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A household the server erased: every device deletes its copy (erasure wins over any
/// unsynced edit to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Erasure {
    pub doc: HouseholdId,
    pub reason: ErasureReason,
    /// When the server erased it (ms since the Unix epoch).
    pub erased_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocError {
    pub doc: HouseholdId,
    pub code: DocErrorCode,
}

/// One opening of a household's case file on the device (its access log, issue 16): which
/// household, when (ms since the Unix epoch, the device's clock). Who and on which device
/// the server knows from the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    pub household: HouseholdId,
    pub at: i64,
}

/// One sync request: the device's cursor, what it pushes, how much it wants back.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SyncRequest {
    pub cursor: Cursor,
    /// Response size the device asks the server to stay near (bytes of change data).
    pub budget: u32,
    pub push: Vec<DocChanges>,
    /// This device's actor and public key, sent until the server says it knows them.
    pub signer: Option<SignerKey>,
    /// Case files opened on the device that the server has not been sent yet (at most
    /// [`MAX_ACCESSES`]; absent on the wire when empty, so a request without any is what
    /// version 2 always sent).
    pub accesses: Vec<Access>,
}

/// One sync response.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SyncResponse {
    pub epoch: Uuid,
    /// The device's cursor was for another epoch: it must reconcile (see the spec).
    pub epoch_reset: bool,
    /// The budget cut the response short: sync again.
    pub more: bool,
    pub cursor: Cursor,
    pub acks: Vec<DocHeads>,
    pub errors: Vec<DocError>,
    pub snapshots: Vec<DocSnapshot>,
    pub pull: Vec<DocChanges>,
    /// The server holds this device's signer registration.
    pub signer_known: bool,
    /// The owners of the actors whose signatures this response carries.
    pub signers: Vec<Signer>,
    /// Households erased on the server: the device deletes them (flag bit 3; absent when
    /// empty, so a response without erasures is what version 2 always sent).
    pub erasures: Vec<Erasure>,
    /// The device's role and team and the households that left its scope (flag bit 4;
    /// every server since scopes sends it, ADR 0019).
    pub scope: Option<ScopeNotice>,
    /// Households redacted on the server (flag bit 5; absent when empty).
    pub redactions: Vec<RedactionNotice>,
    /// A bootstrap cut short by the budget: how many more documents it has to send, for
    /// the app's progress (flag bit 6; absent otherwise). An estimate: the station may
    /// change before the next page.
    pub bootstrap_remaining: Option<u64>,
}

/// A household redacted on the server (issue 15, ADR 0026): its history was replaced by
/// generation `generation`, computed from the server's copy at `base` without `items`. A
/// device holding `base` computes the same generation and takes it only if its heads are
/// `heads`; its unsynced edits are rebased onto it. The response also carries the
/// household's snapshot (the generation and what followed it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedactionNotice {
    pub doc: HouseholdId,
    pub generation: u32,
    pub reason: ErasureReason,
    /// When the server redacted it (ms since the Unix epoch).
    pub redacted_at: i64,
    pub base: Vec<ChangeHash>,
    /// Per actor, the last sequence number of its changes the server held at `base` (an
    /// actor's changes form one chain): a device that lacks part of `base` tells by it which
    /// of its own changes the server already had, so it does not write them again.
    pub clock: Vec<(Vec<u8>, u64)>,
    pub heads: Vec<ChangeHash>,
    /// What was redacted: `kind/record`, `kind/record/field` or `attachment/<id>` (ids and
    /// field names only).
    pub items: Vec<String>,
    /// The `clock` of each earlier generation's notice the server still knows, in order
    /// (flag bit 7 of a response; ADR 0034): a device that skipped a generation holds a
    /// copy whose actors the latest `clock` does not describe (its actors are the previous
    /// generation's), and tells by the clock of the generation after the one it holds which
    /// of its changes the server already had (docs/reliability.md, finding 13).
    pub earlier: Vec<GenerationClock>,
}

/// What the server held of a household at the `base` of one of its generations: per
/// actor, the last sequence number (a redaction notice's `clock`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerationClock {
    pub generation: u32,
    pub clock: Vec<(Vec<u8>, u64)>,
}

impl RedactionNotice {
    /// The clock of the server's copy at the base of generation `generation` (this
    /// notice's, or an earlier one it carries); `None` if the server did not say.
    pub fn clock_of(&self, generation: u32) -> Option<&[(Vec<u8>, u64)]> {
        if generation == self.generation {
            return Some(&self.clock);
        }
        self.earlier
            .iter()
            .find(|c| c.generation == generation)
            .map(|c| c.clock.as_slice())
    }

    /// The clocks this notice carries for later notices: its earlier ones and its own.
    pub fn clocks_so_far(&self) -> Vec<GenerationClock> {
        let mut out = self.earlier.clone();
        out.push(GenerationClock {
            generation: self.generation,
            clock: self.clock.clone(),
        });
        out
    }
}

/// At most this many items in one redaction, and this many bytes in one item.
pub const MAX_REDACTION_ITEMS: usize = 256;
const MAX_REDACTION_ITEM_BYTES: usize = 128;

impl RedactionNotice {
    /// The notice as the server keeps it in its log (the wire's encoding of one notice,
    /// then its earlier clocks if it has any: a notice stored before they existed reads as
    /// one without).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.redaction(self, !self.earlier.is_empty());
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader { buf: bytes };
        let with_earlier = {
            let mut probe = Reader { buf: bytes };
            probe.redaction(false)?;
            !probe.buf.is_empty()
        };
        let n = r.redaction(with_earlier)?;
        if with_earlier && n.earlier.is_empty() {
            return Err(WireError::Malformed("earlier clocks listed but none"));
        }
        r.finish()?;
        Ok(n)
    }
}

/// What a device's worker may see, as of this response (issue 16, ADR 0019).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ScopeNotice {
    pub role: Role,
    pub team: Option<TeamName>,
    /// Households that left the worker's scope (reassigned, the worker moved to another
    /// team or role): the device removes them once its own edits to them are pushed.
    pub left: Vec<HouseholdId>,
}

// ----- primitives --------------------------------------------------------------------------

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn uvarint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }
    fn len(&mut self, n: usize) {
        self.uvarint(n as u64);
    }
    fn uuid(&mut self, u: &Uuid) {
        self.0.extend_from_slice(u.as_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    fn cursor(&mut self, c: &Cursor) {
        self.uuid(&c.epoch);
        self.uvarint(c.seq);
        match c.phase {
            Phase::Log => self.u8(0),
            Phase::Bootstrap { after: None } => self.u8(1),
            Phase::Bootstrap { after: Some(d) } => {
                self.u8(2);
                self.uuid(d.as_uuid());
            }
        }
    }
    fn hashes(&mut self, list: &[ChangeHash]) {
        self.len(list.len());
        for h in list {
            self.0.extend_from_slice(&h.0);
        }
    }
    fn redaction(&mut self, n: &RedactionNotice, with_earlier: bool) {
        self.uuid(n.doc.as_uuid());
        self.uvarint(u64::from(n.generation));
        self.u8(n.reason.to_byte());
        self.uvarint(n.redacted_at.max(0) as u64);
        self.hashes(&n.base);
        self.clock(&n.clock);
        self.hashes(&n.heads);
        self.len(n.items.len());
        for i in &n.items {
            self.bytes(i.as_bytes());
        }
        if with_earlier {
            self.len(n.earlier.len());
            for c in &n.earlier {
                self.uvarint(u64::from(c.generation));
                self.clock(&c.clock);
            }
        }
    }
    fn clock(&mut self, clock: &[(Vec<u8>, u64)]) {
        self.len(clock.len());
        for (actor, seq) in clock {
            self.bytes(actor);
            self.uvarint(*seq);
        }
    }
    /// `known`: the changes' hashes the caller holds, per document in `list`'s order (see
    /// [`SyncResponse::encode_with_hashes`]).
    fn doc_changes(&mut self, list: &[DocChanges], known: &[KnownHashes]) {
        self.len(list.len());
        for (i, d) in list.iter().enumerate() {
            self.uuid(d.doc.as_uuid());
            let known = known
                .get(i)
                .filter(|k| k.doc == d.doc)
                .map(|k| k.hashes.as_slice());
            let hashes = super::compact::encode_known(&mut self.0, &d.changes, known);
            self.signatures(&d.signatures, &d.changes, &hashes);
        }
    }
    /// Signatures, each naming its signed change by its place in `changes` (whose hashes are
    /// `hashes`) when it is there, else by actor and hash (ADR 0037).
    fn signatures(
        &mut self,
        list: &[AuthorSignature],
        changes: &[Vec<u8>],
        hashes: &[Option<[u8; 32]>],
    ) {
        self.len(list.len());
        for s in list {
            let back = hashes.iter().zip(changes).rev().position(|(h, c)| {
                h.as_ref() == Some(&s.signature.hash.0)
                    && super::compact::actor_of(c) == Some(s.actor.as_slice())
            });
            match back {
                Some(p) => self.uvarint(p as u64 + 1),
                None => {
                    self.uvarint(SIGNED_BY_HASH);
                    self.bytes(&s.actor);
                    self.0.extend_from_slice(&s.signature.hash.0);
                }
            }
            self.0.extend_from_slice(&s.signature.sig);
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn uvarint(&mut self) -> Result<u64, WireError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return Err(WireError::Malformed("varint overflow"));
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError::Malformed("varint too long"))
    }
    /// A count of items that each take at least `min_item` bytes: it cannot exceed what is
    /// left, so a lying count cannot make us allocate.
    fn count(&mut self, min_item: usize) -> Result<usize, WireError> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| WireError::Malformed("count too large"))?;
        if n.saturating_mul(min_item.max(1)) > self.buf.len() {
            return Err(WireError::Malformed("count exceeds message"));
        }
        Ok(n)
    }
    fn uuid(&mut self) -> Result<Uuid, WireError> {
        let b = self.take(16)?;
        Uuid::from_slice(b).map_err(|_| WireError::Malformed("uuid"))
    }
    fn doc(&mut self) -> Result<HouseholdId, WireError> {
        let u = self.uuid()?;
        if u.is_nil() {
            return Err(WireError::Malformed("nil document id"));
        }
        Ok(HouseholdId::from_uuid(u))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, WireError> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| WireError::Malformed("length too large"))?;
        if n > MAX_BLOB_BYTES {
            return Err(WireError::Malformed("blob too large"));
        }
        Ok(self.take(n)?.to_vec())
    }
    fn hash(&mut self) -> Result<ChangeHash, WireError> {
        let b = self.take(32)?;
        let mut h = [0u8; 32];
        h.copy_from_slice(b);
        Ok(ChangeHash(h))
    }
    fn hashes(&mut self) -> Result<Vec<ChangeHash>, WireError> {
        let n = self.count(32)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.hash()?);
        }
        Ok(out)
    }
    fn clock(&mut self) -> Result<Vec<(Vec<u8>, u64)>, WireError> {
        let n = self.count(2)?;
        let mut clock = Vec::with_capacity(n);
        for _ in 0..n {
            clock.push((self.actor()?, self.uvarint()?));
        }
        Ok(clock)
    }
    fn redaction(&mut self, with_earlier: bool) -> Result<RedactionNotice, WireError> {
        let doc = self.doc()?;
        let generation = u32::try_from(self.uvarint()?)
            .ok()
            .filter(|g| *g > 0)
            .ok_or(WireError::Malformed("redaction generation"))?;
        let reason = ErasureReason::from_byte(self.u8()?);
        let redacted_at = i64::try_from(self.uvarint()?)
            .map_err(|_| WireError::Malformed("redaction time out of range"))?;
        let base = self.hashes()?;
        let clock = self.clock()?;
        let heads = self.hashes()?;
        if heads.is_empty() {
            return Err(WireError::Malformed("a generation without heads"));
        }
        let n = self.count(1)?;
        if n == 0 || n > MAX_REDACTION_ITEMS {
            return Err(WireError::Malformed("redaction items"));
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            let b = self.bytes()?;
            if b.len() > MAX_REDACTION_ITEM_BYTES {
                return Err(WireError::Malformed("redaction item too long"));
            }
            items.push(String::from_utf8(b).map_err(|_| WireError::Malformed("redaction item"))?);
        }
        let mut earlier: Vec<GenerationClock> = Vec::new();
        if with_earlier {
            let n = self.count(2)?;
            for _ in 0..n {
                let g = u32::try_from(self.uvarint()?)
                    .ok()
                    .filter(|g| *g > 0 && *g < generation)
                    .ok_or(WireError::Malformed("earlier generation"))?;
                // In order, each once: one meaning per encoding.
                if earlier.last().is_some_and(|c| c.generation >= g) {
                    return Err(WireError::Malformed("earlier generations out of order"));
                }
                earlier.push(GenerationClock {
                    generation: g,
                    clock: self.clock()?,
                });
            }
        }
        Ok(RedactionNotice {
            doc,
            generation,
            reason,
            redacted_at,
            base,
            clock,
            heads,
            items,
            earlier,
        })
    }
    fn cursor(&mut self) -> Result<Cursor, WireError> {
        let epoch = self.uuid()?;
        let seq = self.uvarint()?;
        let phase = match self.u8()? {
            0 => Phase::Log,
            1 => Phase::Bootstrap { after: None },
            2 => Phase::Bootstrap {
                after: Some(self.doc()?),
            },
            _ => return Err(WireError::Malformed("cursor phase")),
        };
        Ok(Cursor { epoch, seq, phase })
    }
    fn doc_changes(&mut self) -> Result<Vec<DocChanges>, WireError> {
        let n = self.count(17)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let doc = self.doc()?;
            let (changes, hashes) = self.compact_changes()?;
            let signatures = self.signatures(&changes, &hashes)?;
            out.push(DocChanges {
                doc,
                changes,
                signatures,
            });
        }
        Ok(out)
    }
    /// One document's changes in the compact form (ADR 0031), each rebuilt to its exact
    /// automerge bytes, with their hashes (`None` for a chunk that is not an uncompressed
    /// change).
    #[allow(clippy::type_complexity)]
    fn compact_changes(&mut self) -> Result<(Vec<Vec<u8>>, Vec<Option<[u8; 32]>>), WireError> {
        use super::compact::{rebuild, whole_hash, DEP_HASH, FORM_ELIDED, FORM_WHOLE};
        // Each change takes at least two bytes (form, length).
        let n = self.count(2)?;
        let mut out = Vec::with_capacity(n);
        let mut seen: Vec<Option<[u8; 32]>> = Vec::with_capacity(n);
        for _ in 0..n {
            match self.u8()? {
                FORM_WHOLE => {
                    let whole = self.bytes()?;
                    seen.push(whole_hash(&whole));
                    out.push(whole);
                }
                FORM_ELIDED => {
                    let k = self.count(1)?;
                    let mut deps = Vec::with_capacity(k);
                    for _ in 0..k {
                        let back = self.uvarint()?;
                        if back == DEP_HASH {
                            deps.push(self.array::<32>()?);
                        } else {
                            let at = usize::try_from(back)
                                .ok()
                                .and_then(|b| seen.len().checked_sub(b))
                                .ok_or(WireError::Malformed("dependency before the list"))?;
                            deps.push(
                                seen[at]
                                    .ok_or(WireError::Malformed("dependency on a whole chunk"))?,
                            );
                        }
                    }
                    let (hash, chunk) = rebuild(&deps, &self.bytes()?);
                    if chunk.len() > MAX_BLOB_BYTES {
                        return Err(WireError::Malformed("change too large"));
                    }
                    seen.push(Some(hash));
                    out.push(chunk);
                }
                _ => return Err(WireError::Malformed("change form")),
            }
        }
        Ok((out, seen))
    }
    fn actor(&mut self) -> Result<Vec<u8>, WireError> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| WireError::Malformed("length too large"))?;
        if n == 0 || n > MAX_ACTOR_BYTES {
            return Err(WireError::Malformed("actor id"));
        }
        Ok(self.take(n)?.to_vec())
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    /// Signatures whose signed change may be named by its place in `changes` (hashes
    /// `hashes`); outside a list of changes (a snapshot's), both are empty.
    fn signatures(
        &mut self,
        changes: &[Vec<u8>],
        hashes: &[Option<[u8; 32]>],
    ) -> Result<Vec<AuthorSignature>, WireError> {
        // Each takes at least a reference byte and the signature.
        let n = self.count(1 + 64)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let back = self.uvarint()?;
            let (actor, hash) = if back == SIGNED_BY_HASH {
                (self.actor()?, self.hash()?)
            } else {
                let at = usize::try_from(back)
                    .ok()
                    .and_then(|b| hashes.len().checked_sub(b))
                    .ok_or(WireError::Malformed("signed change before the list"))?;
                let hash = hashes[at].ok_or(WireError::Malformed("signed change not a change"))?;
                let actor = super::compact::actor_of(&changes[at])
                    .filter(|a| !a.is_empty() && a.len() <= MAX_ACTOR_BYTES)
                    .ok_or(WireError::Malformed("actor id"))?;
                (actor.to_vec(), ChangeHash(hash))
            };
            let sig = self.array::<64>()?;
            out.push(AuthorSignature {
                actor,
                signature: ChangeSignature { hash, sig },
            });
        }
        Ok(out)
    }
    /// The request's trailing access list: present only when not empty (one meaning per
    /// encoding), at most [`MAX_ACCESSES`]; an item is a document id and a uvarint time.
    fn accesses(&mut self) -> Result<Vec<Access>, WireError> {
        let n = self.count(17)?;
        if n == 0 {
            return Err(WireError::Malformed("empty access list"));
        }
        if n > MAX_ACCESSES {
            return Err(WireError::Malformed("too many accesses"));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let household = self.doc()?;
            let at =
                i64::try_from(self.uvarint()?).map_err(|_| WireError::Malformed("access time"))?;
            out.push(Access { household, at });
        }
        Ok(out)
    }
    fn finish(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::Malformed("trailing bytes"))
        }
    }
}

/// zstd contexts kept for reuse. A compression context is about 2 MB: made afresh for every
/// message, on a server with many threads, they fragment the heap (the server's memory then
/// grows with traffic, not with its cache). A few are kept, shared by all threads, so what
/// is kept stays bounded however many threads a server runs.
struct Pool<T>(std::sync::Mutex<Vec<T>>);

const POOLED_CONTEXTS: usize = 4;

impl<T> Pool<T> {
    const fn new() -> Self {
        Pool(std::sync::Mutex::new(Vec::new()))
    }
    fn take(&self) -> Option<T> {
        self.0.lock().ok()?.pop()
    }
    fn give(&self, item: T) {
        if let Ok(mut v) = self.0.lock() {
            if v.len() < POOLED_CONTEXTS {
                v.push(item);
            }
        }
    }
}

static COMPRESSORS: Pool<zstd::bulk::Compressor<'static>> = Pool::new();
static DECOMPRESSORS: Pool<zstd::zstd_safe::DCtx<'static>> = Pool::new();

/// Compress with zstd (level 3, a pooled context); empty only if allocation failed.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    // Level 3: zstd's default, a good ratio at phone-friendly speed. Compressing an
    // in-memory buffer cannot fail short of allocation failure.
    let Some(mut c) = COMPRESSORS
        .take()
        .or_else(|| zstd::bulk::Compressor::new(3).ok())
    else {
        return zstd::bulk::compress(raw, 3).unwrap_or_else(|_| Vec::new());
    };
    let out = c.compress(raw).unwrap_or_else(|_| Vec::new());
    COMPRESSORS.give(c);
    out
}

/// Decompress one zstd frame, refusing output beyond `MAX_MESSAGE_BYTES` without first
/// allocating that much.
pub fn decompress(body: &[u8]) -> Result<Vec<u8>, WireError> {
    use std::io::Read;
    let mut ctx = DECOMPRESSORS
        .take()
        .unwrap_or_else(zstd::zstd_safe::DCtx::create);
    // A context reused after a failed frame starts clean; its parameters (the window
    // limit that refuses a frame asking for gigabytes) are zstd's defaults and stay.
    if ctx
        .reset(zstd::zstd_safe::ResetDirective::SessionOnly)
        .is_err()
    {
        return Err(WireError::Compression);
    }
    let mut out = Vec::new();
    let read = {
        let decoder = zstd::stream::read::Decoder::with_context(body, &mut ctx);
        decoder
            .take(MAX_MESSAGE_BYTES as u64 + 1)
            .read_to_end(&mut out)
    };
    DECOMPRESSORS.give(ctx);
    read.map_err(|_| WireError::Compression)?;
    if out.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge);
    }
    Ok(out)
}

/// The size a message's zstd frame declares for its content (what `decompress` would give),
/// read from the frame's header without decompressing; `None` if the header does not say.
/// The transport measures the link in these bytes, the budget's own unit (ADR 0039).
pub fn declared_size(body: &[u8]) -> Option<u64> {
    zstd::zstd_safe::get_frame_content_size(body).ok().flatten()
}

/// The first bytes of a zstd frame. An automerge document starts with `85 6f 4a 83`.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A document snapshot as sent and stored: automerge's uncompressed encoding
/// (`save_nocompress`) in one zstd frame. No DEFLATE state (370 kB per `save()`) is made;
/// the frame is about the size of automerge's own compression (within 10 % on household
/// documents) and is made faster.
pub fn encode_snapshot(doc: &automerge::Automerge) -> Vec<u8> {
    let raw = doc.save_nocompress();
    let framed = compress(&raw);
    if framed.is_empty() {
        raw
    } else {
        framed
    }
}

/// The automerge encoding in a snapshot: a zstd frame is decompressed (bounded like a
/// message); anything else is automerge's own encoding (compressed or not), returned as is.
pub fn decode_snapshot(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, WireError> {
    if bytes.starts_with(&ZSTD_MAGIC) {
        decompress(bytes).map(std::borrow::Cow::Owned)
    } else {
        Ok(std::borrow::Cow::Borrowed(bytes))
    }
}

/// One document's change list in the compact form alone (as `doc_changes` carries it), with
/// nothing after it: each change rebuilt to its exact automerge bytes.
pub fn decode_changes(raw: &[u8]) -> Result<Vec<Vec<u8>>, WireError> {
    let mut r = Reader { buf: raw };
    let (changes, _) = r.compact_changes()?;
    r.finish()?;
    Ok(changes)
}

fn header(r: &mut Reader<'_>, kind: u8) -> Result<(), WireError> {
    let version = r.u8()?;
    if version != PROTOCOL_VERSION {
        return Err(WireError::Version(version));
    }
    let k = r.u8()?;
    if k != kind {
        return Err(WireError::Kind(k));
    }
    Ok(())
}

impl SyncRequest {
    /// The uncompressed encoding.
    pub fn encode_raw(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.u8(PROTOCOL_VERSION);
        w.u8(KIND_REQUEST);
        w.cursor(&self.cursor);
        w.uvarint(u64::from(self.budget));
        w.doc_changes(&self.push, &[]);
        match &self.signer {
            None => w.u8(0),
            Some(s) => {
                w.u8(1);
                w.bytes(&s.actor);
                w.0.extend_from_slice(&s.key);
            }
        }
        // A trailing section, only when there is something in it.
        if !self.accesses.is_empty() {
            w.len(self.accesses.len());
            for a in &self.accesses {
                w.uuid(a.household.as_uuid());
                // A time before 1970 is no time this device's clock can give: sent as 0.
                w.uvarint(u64::try_from(a.at).unwrap_or(0));
            }
        }
        w.0
    }

    /// The body as sent: encoding, then zstd.
    pub fn encode(&self) -> Vec<u8> {
        compress(&self.encode_raw())
    }

    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        Self::decode_raw(&decompress(body)?)
    }

    pub fn decode_raw(raw: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader { buf: raw };
        header(&mut r, KIND_REQUEST)?;
        let cursor = r.cursor()?;
        let budget = u32::try_from(r.uvarint()?).map_err(|_| WireError::Malformed("budget"))?;
        let push = r.doc_changes()?;
        let signer = match r.u8()? {
            0 => None,
            1 => Some(SignerKey {
                actor: r.actor()?,
                key: r.array::<32>()?,
            }),
            _ => return Err(WireError::Malformed("signer flag")),
        };
        let accesses = if r.buf.is_empty() {
            Vec::new()
        } else {
            r.accesses()?
        };
        r.finish()?;
        Ok(SyncRequest {
            cursor,
            budget,
            push,
            signer,
            accesses,
        })
    }
}

impl SyncResponse {
    /// Whether a redaction carries earlier generations' clocks (flag bit 7).
    fn earlier_clocks(&self) -> bool {
        self.redactions.iter().any(|n| !n.earlier.is_empty())
    }

    pub fn encode_raw(&self) -> Vec<u8> {
        self.encode_raw_with_hashes(&[])
    }

    /// [`SyncResponse::encode`], given the hashes of the pulled changes where the caller
    /// holds them (the server reads them from its log with the changes): `known[i]` for
    /// `pull[i]`, ignored where its document or length differs. The bytes are the same as
    /// `encode`'s; the changes are not hashed again.
    pub fn encode_with_hashes(&self, known: &[KnownHashes]) -> Vec<u8> {
        compress(&self.encode_raw_with_hashes(known))
    }

    fn encode_raw_with_hashes(&self, known: &[KnownHashes]) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.u8(PROTOCOL_VERSION);
        w.u8(KIND_RESPONSE);
        w.uuid(&self.epoch);
        w.u8(u8::from(self.more)
            | (u8::from(self.epoch_reset) << 1)
            | (u8::from(self.signer_known) << 2)
            | (u8::from(!self.erasures.is_empty()) << 3)
            | (u8::from(self.scope.is_some()) << 4)
            | (u8::from(!self.redactions.is_empty()) << 5)
            | (u8::from(self.bootstrap_remaining.is_some()) << 6)
            | (u8::from(self.earlier_clocks()) << 7));
        w.cursor(&self.cursor);
        w.len(self.acks.len());
        for a in &self.acks {
            w.uuid(a.doc.as_uuid());
            w.len(a.heads.len());
            for h in &a.heads {
                w.0.extend_from_slice(&h.0);
            }
        }
        w.len(self.errors.len());
        for e in &self.errors {
            w.uuid(e.doc.as_uuid());
            w.u8(e.code.to_byte());
        }
        w.len(self.snapshots.len());
        for s in &self.snapshots {
            w.uuid(s.doc.as_uuid());
            w.bytes(&s.bytes);
            w.signatures(&s.signatures, &[], &[]);
        }
        w.doc_changes(&self.pull, known);
        w.len(self.signers.len());
        for s in &self.signers {
            w.bytes(&s.actor);
            w.uuid(s.device.as_uuid());
            w.uuid(s.worker.as_uuid());
            w.0.extend_from_slice(&s.key);
        }
        if !self.erasures.is_empty() {
            w.len(self.erasures.len());
            for e in &self.erasures {
                w.uuid(e.doc.as_uuid());
                w.u8(e.reason.to_byte());
                w.uvarint(e.erased_at.max(0) as u64);
            }
        }
        if let Some(scope) = &self.scope {
            w.u8(scope.role.to_byte());
            w.bytes(
                scope
                    .team
                    .as_ref()
                    .map_or(&b""[..], |t| t.as_str().as_bytes()),
            );
            w.len(scope.left.len());
            for d in &scope.left {
                w.uuid(d.as_uuid());
            }
        }
        if !self.redactions.is_empty() {
            w.len(self.redactions.len());
            let with_earlier = self.earlier_clocks();
            for n in &self.redactions {
                w.redaction(n, with_earlier);
            }
        }
        if let Some(remaining) = self.bootstrap_remaining {
            w.uvarint(remaining);
        }
        w.0
    }

    pub fn encode(&self) -> Vec<u8> {
        compress(&self.encode_raw())
    }

    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        Self::decode_raw(&decompress(body)?)
    }

    pub fn decode_raw(raw: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader { buf: raw };
        header(&mut r, KIND_RESPONSE)?;
        let epoch = r.uuid()?;
        let flags = r.u8()?;
        let with_earlier = flags & 0b1000_0000 != 0;
        if with_earlier && flags & 0b10_0000 == 0 {
            return Err(WireError::Malformed(
                "earlier clocks flagged without redactions",
            ));
        }
        let cursor = r.cursor()?;
        let n = r.count(17)?;
        let mut acks = Vec::with_capacity(n);
        for _ in 0..n {
            let doc = r.doc()?;
            let m = r.count(32)?;
            let mut heads = Vec::with_capacity(m);
            for _ in 0..m {
                heads.push(r.hash()?);
            }
            acks.push(DocHeads { doc, heads });
        }
        let n = r.count(17)?;
        let mut errors = Vec::with_capacity(n);
        for _ in 0..n {
            let doc = r.doc()?;
            errors.push(DocError {
                doc,
                code: DocErrorCode::from_byte(r.u8()?)?,
            });
        }
        let n = r.count(17)?;
        let mut snapshots = Vec::with_capacity(n);
        for _ in 0..n {
            let doc = r.doc()?;
            let bytes = r.bytes()?;
            let signatures = r.signatures(&[], &[])?;
            snapshots.push(DocSnapshot {
                doc,
                bytes,
                signatures,
            });
        }
        let pull = r.doc_changes()?;
        let n = r.count(2 + 16 + 16 + 32)?;
        let mut signers = Vec::with_capacity(n);
        for _ in 0..n {
            signers.push(Signer {
                actor: r.actor()?,
                device: DeviceId::from_uuid(r.uuid()?),
                worker: WorkerId::from_uuid(r.uuid()?),
                key: r.array::<32>()?,
            });
        }
        let mut erasures = Vec::new();
        if flags & 0b1000 != 0 {
            let n = r.count(18)?;
            if n == 0 {
                return Err(WireError::Malformed("erasures flagged but none listed"));
            }
            erasures.reserve(n);
            for _ in 0..n {
                let doc = r.doc()?;
                let reason = ErasureReason::from_byte(r.u8()?);
                let at = r.uvarint()?;
                erasures.push(Erasure {
                    doc,
                    reason,
                    erased_at: i64::try_from(at)
                        .map_err(|_| WireError::Malformed("erasure time out of range"))?,
                });
            }
        }
        let scope = if flags & 0b1_0000 != 0 {
            let role = Role::from_byte(r.u8()?);
            let team = r.bytes()?;
            let team = if team.is_empty() {
                None
            } else {
                if team.len() > MAX_TEAM_CHARS * 4 {
                    return Err(WireError::Malformed("team name too long"));
                }
                let text =
                    std::str::from_utf8(&team).map_err(|_| WireError::Malformed("team name"))?;
                Some(TeamName::new(text).map_err(|_| WireError::Malformed("team name"))?)
            };
            let n = r.count(16)?;
            let mut left = Vec::with_capacity(n);
            for _ in 0..n {
                left.push(r.doc()?);
            }
            Some(ScopeNotice { role, team, left })
        } else {
            None
        };
        let mut redactions = Vec::new();
        if flags & 0b10_0000 != 0 {
            let n = r.count(20)?;
            if n == 0 {
                return Err(WireError::Malformed("redactions flagged but none listed"));
            }
            for _ in 0..n {
                redactions.push(r.redaction(with_earlier)?);
            }
            if with_earlier && redactions.iter().all(|n| n.earlier.is_empty()) {
                return Err(WireError::Malformed(
                    "earlier clocks flagged but none listed",
                ));
            }
        }
        let bootstrap_remaining = if flags & 0b100_0000 != 0 {
            Some(r.uvarint()?)
        } else {
            None
        };
        r.finish()?;
        Ok(SyncResponse {
            epoch,
            epoch_reset: flags & 0b10 != 0,
            more: flags & 0b01 != 0,
            cursor,
            acks,
            errors,
            snapshots,
            pull,
            signer_known: flags & 0b100 != 0,
            signers,
            erasures,
            scope,
            redactions,
            bootstrap_remaining,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_signature() -> AuthorSignature {
        AuthorSignature {
            actor: vec![1; 16],
            signature: ChangeSignature {
                hash: ChangeHash([2; 32]),
                sig: [3; 64],
            },
        }
    }

    fn sample_response() -> SyncResponse {
        let d = HouseholdId::new();
        SyncResponse {
            epoch: Uuid::new_v4(),
            epoch_reset: true,
            more: true,
            cursor: Cursor {
                epoch: Uuid::new_v4(),
                seq: 300,
                phase: Phase::Bootstrap { after: Some(d) },
            },
            acks: vec![DocHeads {
                doc: d,
                heads: vec![ChangeHash([7; 32]), ChangeHash([9; 32])],
            }],
            errors: vec![DocError {
                doc: HouseholdId::new(),
                code: DocErrorCode::Invalid,
            }],
            snapshots: vec![DocSnapshot {
                doc: d,
                bytes: vec![1, 2, 3],
                signatures: vec![sample_signature()],
            }],
            pull: vec![DocChanges {
                doc: d,
                changes: vec![vec![4; 200], vec![]],
                signatures: vec![sample_signature(), sample_signature()],
            }],
            signer_known: true,
            signers: vec![Signer {
                actor: vec![5; 16],
                device: DeviceId::new(),
                worker: WorkerId::new(),
                key: [6; 32],
            }],
            erasures: vec![Erasure {
                doc: HouseholdId::new(),
                reason: ErasureReason::SubjectRequest,
                erased_at: 1_765_000_000_000,
            }],
            scope: Some(ScopeNotice {
                role: Role::Worker,
                team: Some(TeamName::new("村A组").unwrap()),
                left: vec![HouseholdId::new(), HouseholdId::new()],
            }),
            redactions: Vec::new(),
            bootstrap_remaining: Some(1_234),
        }
    }

    /// Two actors' changes to one document, and a signature (made-up bytes) per actor over
    /// its newest change, as a push carries them.
    fn signed_group() -> DocChanges {
        use automerge::transaction::Transactable;
        let mut a = automerge::AutoCommit::new().with_actor(automerge::ActorId::from(vec![1; 16]));
        let text = a
            .put_object(automerge::ROOT, "note", automerge::ObjType::Text)
            .unwrap();
        a.commit();
        let mut b = a.fork().with_actor(automerge::ActorId::from(vec![2; 16]));
        for i in 0..3 {
            a.splice_text(&text, 0, 0, &format!("孩子{i}")).unwrap();
            a.commit();
        }
        b.put(automerge::ROOT, "phone", "13800000000").unwrap();
        b.commit();
        a.merge(&mut b).unwrap();
        let changes = a.get_changes(&[]);
        let newest = |actor: u8| {
            changes
                .iter()
                .rev()
                .find(|c| c.actor_id().to_bytes() == [actor; 16])
                .unwrap()
                .hash()
        };
        let sig = |actor: u8| AuthorSignature {
            actor: vec![actor; 16],
            signature: ChangeSignature {
                hash: newest(actor),
                sig: [actor; 64],
            },
        };
        DocChanges {
            doc: HouseholdId::new(),
            changes: changes.iter().map(|c| c.raw_bytes().to_vec()).collect(),
            signatures: vec![sig(1), sig(2)],
        }
    }

    fn push_of(group: DocChanges) -> SyncRequest {
        SyncRequest {
            cursor: Cursor::default(),
            budget: 1 << 20,
            push: vec![group],
            signer: None,
            accesses: Vec::new(),
        }
    }

    /// The transport measures a response by the size its frame declares (ADR 0039).
    #[test]
    fn a_message_declares_its_decompressed_size() {
        let body = push_of(signed_group()).encode();
        let size = declared_size(&body).expect("our frames declare their size");
        assert_eq!(size, decompress(&body).unwrap().len() as u64);
        assert_eq!(declared_size(b"not a zstd frame"), None);
        assert_eq!(declared_size(&[]), None);
    }

    #[test]
    fn signatures_name_their_change_by_its_place_in_the_list() {
        let group = signed_group();
        let req = push_of(group.clone());
        let raw = req.encode_raw();
        assert_eq!(SyncRequest::decode_raw(&raw).unwrap(), req);
        // A signature over a change the list does not hold names it by actor and hash.
        let mut elsewhere = group.clone();
        elsewhere.signatures[0].signature.hash = ChangeHash([7; 32]);
        let far = push_of(elsewhere).encode_raw();
        assert_eq!(
            SyncRequest::decode_raw(&far).unwrap().push[0].signatures[0]
                .signature
                .hash,
            ChangeHash([7; 32])
        );
        // Named by place, a signature saves its actor (1 + 16 bytes) and its hash (32).
        assert_eq!(far.len() - raw.len(), 17 + 32);
        // A signature naming the right hash under another actor keeps both.
        let mut other_actor = group;
        other_actor.signatures[0].actor = vec![2; 16];
        let req = push_of(other_actor);
        assert_eq!(SyncRequest::decode_raw(&req.encode_raw()).unwrap(), req);
    }

    #[test]
    fn a_signature_naming_a_place_outside_the_list_is_refused() {
        let mut w = Writer(Vec::new());
        w.u8(PROTOCOL_VERSION);
        w.u8(KIND_REQUEST);
        w.cursor(&Cursor::default());
        w.uvarint(1 << 20);
        w.len(1);
        w.uuid(HouseholdId::new().as_uuid());
        // One change sent whole that is not an automerge change, then two signatures'
        // worth of references: past the list, and to that chunk.
        let mut whole = w.0.clone();
        whole.extend_from_slice(&[1, crate::protocol::compact::FORM_WHOLE, 3, 1, 2, 3, 1]);
        for (back, why) in [
            (2u8, "signed change before the list"),
            (1, "signed change not a change"),
        ] {
            let mut raw = whole.clone();
            raw.push(back);
            raw.extend_from_slice(&[0; 64]);
            raw.push(0); // no signer
            assert_eq!(
                SyncRequest::decode_raw(&raw),
                Err(WireError::Malformed(why)),
                "reference {back}"
            );
        }
    }

    #[test]
    fn messages_round_trip() {
        let resp = sample_response();
        assert_eq!(SyncResponse::decode(&resp.encode()).unwrap(), resp);
        let req = SyncRequest {
            cursor: Cursor {
                epoch: Uuid::new_v4(),
                seq: u64::MAX,
                phase: Phase::Log,
            },
            budget: 1 << 20,
            push: vec![DocChanges {
                doc: HouseholdId::new(),
                changes: vec![vec![1; 3]],
                signatures: vec![sample_signature()],
            }],
            signer: Some(SignerKey {
                actor: vec![9; 16],
                key: [8; 32],
            }),
            accesses: vec![
                Access {
                    household: HouseholdId::new(),
                    at: 1_765_000_000_000,
                },
                Access {
                    household: HouseholdId::new(),
                    at: i64::MAX,
                },
            ],
        };
        assert_eq!(SyncRequest::decode(&req.encode()).unwrap(), req);
        let raw = req.encode_raw();
        for n in 0..raw.len() {
            // Cut at the end of the signer, a request without accesses is well formed.
            if let Ok(cut) = SyncRequest::decode_raw(&raw[..n]) {
                assert!(cut.accesses.is_empty(), "prefix {n} read as {cut:?}");
                assert_eq!(cut.signer, req.signer);
            }
        }
    }

    fn request_with(accesses: Vec<Access>) -> SyncRequest {
        SyncRequest {
            budget: 4096,
            accesses,
            ..SyncRequest::default()
        }
    }

    #[test]
    fn accesses_trail_the_request_only_when_there_are_some() {
        let without = request_with(vec![]).encode_raw();
        let one = Access {
            household: HouseholdId::new(),
            at: 1_765_000_000_000,
        };
        let with = request_with(vec![one]).encode_raw();
        // What version 2 sent before access logs, then a count, an id and a time.
        assert_eq!(&with[..without.len()], &without[..]);
        assert_eq!(with.len(), without.len() + 1 + 16 + 6);
        assert_eq!(SyncRequest::decode_raw(&without).unwrap().accesses, vec![]);
        // An empty list is refused: one meaning per encoding.
        let mut empty = without.clone();
        empty.push(0);
        assert_eq!(
            SyncRequest::decode_raw(&empty),
            Err(WireError::Malformed("empty access list"))
        );
        // A nil household, a time past i64, and more than the cap are refused.
        let mut nil = without.clone();
        nil.push(1);
        nil.extend_from_slice(&[0; 16]);
        nil.push(1);
        assert_eq!(
            SyncRequest::decode_raw(&nil),
            Err(WireError::Malformed("nil document id"))
        );
        let mut late = without.clone();
        let mut w = Writer(Vec::new());
        w.len(1);
        w.uuid(one.household.as_uuid());
        w.uvarint(u64::MAX);
        late.extend_from_slice(&w.0);
        assert_eq!(
            SyncRequest::decode_raw(&late),
            Err(WireError::Malformed("access time"))
        );
        let full = request_with(vec![one; MAX_ACCESSES]);
        assert_eq!(SyncRequest::decode(&full.encode()).unwrap(), full);
        let over = request_with(vec![one; MAX_ACCESSES + 1]).encode_raw();
        assert_eq!(
            SyncRequest::decode_raw(&over),
            Err(WireError::Malformed("too many accesses"))
        );
        // A count the rest of the message could not hold is refused before allocating.
        let mut lying = without.clone();
        let mut w = Writer(Vec::new());
        w.len(MAX_ACCESSES);
        lying.extend_from_slice(&w.0);
        lying.extend_from_slice(&[7; 17 * 3]);
        assert_eq!(
            SyncRequest::decode_raw(&lying),
            Err(WireError::Malformed("count exceeds message"))
        );
        // Trailing bytes after the list are still an error.
        let mut trailing = with.clone();
        trailing.push(0);
        assert_eq!(
            SyncRequest::decode_raw(&trailing),
            Err(WireError::Malformed("trailing bytes"))
        );
    }

    #[test]
    fn erasures_are_flagged_and_absent_when_there_are_none() {
        let mut resp = sample_response();
        let with = resp.encode_raw();
        // version, kind, epoch (16), then the flags.
        assert_eq!(with[18] & 0b1000, 0b1000);
        resp.erasures.clear();
        let without = resp.encode_raw();
        assert_eq!(without[18] & 0b1000, 0);
        assert_eq!(with.len(), without.len() + 1 + 16 + 1 + 6);
        assert_eq!(SyncResponse::decode_raw(&without).unwrap(), resp);
        // A flag with an empty list is refused: one meaning per encoding.
        let mut empty = without.clone();
        empty[18] |= 0b1000;
        empty.push(0);
        assert!(SyncResponse::decode_raw(&empty).is_err());
        // A reason code a newer server added reads as "other".
        assert_eq!(ErasureReason::from_byte(200), ErasureReason::Other);
        for r in ErasureReason::ALL {
            assert_eq!(ErasureReason::from_byte(r.to_byte()), r);
            assert_eq!(ErasureReason::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn redactions_are_flagged_round_trip_and_are_checked() {
        let mut resp = sample_response();
        let without = resp.encode_raw();
        assert_eq!(without[18] & 0b10_0000, 0, "absent when there are none");
        let notice = RedactionNotice {
            doc: HouseholdId::new(),
            generation: 2,
            reason: ErasureReason::SubjectRequest,
            redacted_at: 1_765_000_000_000,
            base: vec![ChangeHash([7; 32]), ChangeHash([8; 32])],
            clock: vec![(vec![1; 16], 12), (vec![2; 31], 1)],
            heads: vec![ChangeHash([9; 32])],
            items: vec![format!("person/{}/id_number", uuid::Uuid::now_v7())],
            earlier: vec![],
        };
        assert_eq!(RedactionNotice::decode(&notice.encode()).unwrap(), notice);
        resp.redactions.push(notice.clone());
        let with = resp.encode_raw();
        assert_eq!(with[18] & 0b10_0000, 0b10_0000);
        assert_eq!(SyncResponse::decode_raw(&with).unwrap(), resp);
        // One meaning per encoding, and nothing unbounded.
        let mut empty = without.clone();
        empty[18] |= 0b10_0000;
        empty.push(0);
        assert!(SyncResponse::decode_raw(&empty).is_err());
        for bad in [
            RedactionNotice {
                generation: 0,
                ..notice.clone()
            },
            RedactionNotice {
                heads: vec![],
                ..notice.clone()
            },
            RedactionNotice {
                items: vec![],
                ..notice.clone()
            },
            RedactionNotice {
                items: vec!["x".repeat(129)],
                ..notice.clone()
            },
        ] {
            assert!(RedactionNotice::decode(&bad.encode()).is_err(), "{bad:?}");
        }
        let mut cut = notice.encode();
        cut.pop();
        assert!(RedactionNotice::decode(&cut).is_err());
    }

    #[test]
    fn earlier_clocks_are_flagged_round_trip_and_are_checked() {
        let notice = RedactionNotice {
            doc: HouseholdId::new(),
            generation: 3,
            reason: ErasureReason::SubjectRequest,
            redacted_at: 1_765_000_000_000,
            base: vec![ChangeHash([7; 32])],
            clock: vec![(vec![2; 31], 4)],
            heads: vec![ChangeHash([9; 32])],
            items: vec![format!("visit/{}/notes", uuid::Uuid::now_v7())],
            earlier: vec![],
        };
        let mut resp = sample_response();
        resp.redactions.push(notice.clone());
        let without = resp.encode_raw();
        assert_eq!(
            without[18] & 0b1000_0000,
            0,
            "absent when no notice has any"
        );
        let with_earlier = RedactionNotice {
            earlier: vec![
                GenerationClock {
                    generation: 1,
                    clock: vec![(vec![1; 16], 12)],
                },
                GenerationClock {
                    generation: 2,
                    clock: vec![(vec![1; 16], 3), (vec![3; 31], 1)],
                },
            ],
            ..notice.clone()
        };
        // The log's form: a stored notice without them still reads.
        assert_eq!(
            RedactionNotice::decode(&with_earlier.encode()).unwrap(),
            with_earlier
        );
        assert_eq!(RedactionNotice::decode(&notice.encode()).unwrap(), notice);
        assert!(with_earlier.encode().len() > notice.encode().len());
        assert_eq!(with_earlier.clock_of(1), Some(&[(vec![1; 16], 12)][..]));
        assert_eq!(with_earlier.clock_of(3), Some(&notice.clock[..]));
        assert_eq!(notice.clock_of(2), None);
        // In a response: flagged, and a notice without them beside one with them.
        resp.redactions = vec![
            with_earlier.clone(),
            RedactionNotice {
                doc: HouseholdId::new(),
                ..notice.clone()
            },
        ];
        let with = resp.encode_raw();
        assert_eq!(with[18] & 0b1000_0000, 0b1000_0000);
        assert_eq!(SyncResponse::decode_raw(&with).unwrap(), resp);
        // One meaning per encoding: flagged with none, out of order, not earlier.
        let mut flagged = without.clone();
        flagged[18] |= 0b1000_0000;
        assert!(SyncResponse::decode_raw(&flagged).is_err());
        for earlier in [
            vec![
                with_earlier.earlier[1].clone(),
                with_earlier.earlier[0].clone(),
            ],
            vec![GenerationClock {
                generation: 3,
                clock: vec![],
            }],
            vec![GenerationClock {
                generation: 0,
                clock: vec![],
            }],
        ] {
            let bad = RedactionNotice {
                earlier,
                ..notice.clone()
            };
            assert!(RedactionNotice::decode(&bad.encode()).is_err(), "{bad:?}");
        }
        let mut cut = with_earlier.encode();
        cut.pop();
        assert!(RedactionNotice::decode(&cut).is_err());
    }

    #[test]
    fn the_bootstrap_remaining_count_is_flagged_and_absent_when_none() {
        let mut resp = sample_response();
        let with = resp.encode_raw();
        assert_eq!(SyncResponse::decode_raw(&with).unwrap(), resp);
        resp.bootstrap_remaining = None;
        let without = resp.encode_raw();
        // 1,234 as a uvarint: two bytes at the end; the flag bit goes with it.
        assert_eq!(with.len(), without.len() + 2);
        assert_eq!(SyncResponse::decode_raw(&without).unwrap(), resp);
        let mut flagged_but_missing = without.clone();
        flagged_but_missing[18] |= 0b100_0000;
        assert!(SyncResponse::decode_raw(&flagged_but_missing).is_err());
    }

    #[test]
    fn the_scope_section_is_flagged_and_checked() {
        let mut resp = sample_response();
        // Offsets below count from the end: the scope is the last section here.
        resp.bootstrap_remaining = None;
        let with = resp.encode_raw();
        assert_eq!(with[18] & 0b1_0000, 0b1_0000);
        assert_eq!(SyncResponse::decode_raw(&with).unwrap(), resp);
        // role, team (1 + 7 bytes of UTF-8), two ids.
        let scope = resp.scope.take().unwrap();
        let without = resp.encode_raw();
        assert_eq!(without[18] & 0b1_0000, 0);
        assert_eq!(with.len(), without.len() + 1 + 1 + 7 + 1 + 2 * 16);
        // A supervisor without a team and nothing left: three bytes.
        resp.scope = Some(ScopeNotice {
            role: Role::Supervisor,
            team: None,
            left: vec![],
        });
        let small = resp.encode_raw();
        assert_eq!(small.len(), without.len() + 3);
        assert_eq!(SyncResponse::decode_raw(&small).unwrap(), resp);
        // A team name that is not a valid one is refused (an invisible character).
        resp.scope = Some(scope);
        let mut bad = resp.encode_raw();
        let at = bad.len() - 1 - 2 * 16 - 7;
        bad[at..at + 3].copy_from_slice("\u{200B}".as_bytes());
        assert!(SyncResponse::decode_raw(&bad).is_err());
        // An unknown role code reads as the narrowest role.
        let mut newer = with.clone();
        let role_at = with.len() - 1 - 2 * 16 - 7 - 1 - 1;
        assert_eq!(newer[role_at], Role::Worker.to_byte());
        newer[role_at] = 77;
        assert_eq!(
            SyncResponse::decode_raw(&newer)
                .unwrap()
                .scope
                .unwrap()
                .role,
            Role::Worker
        );
    }

    #[test]
    fn an_idle_request_is_tiny() {
        let req = SyncRequest {
            cursor: Cursor {
                epoch: Uuid::new_v4(),
                seq: 123_456,
                phase: Phase::Log,
            },
            budget: 1 << 20,
            push: vec![],
            signer: None,
            accesses: vec![],
        };
        assert!(req.encode().len() < 40, "{}", req.encode().len());
    }

    #[test]
    fn every_truncation_of_a_message_is_an_error() {
        let raw = sample_response().encode_raw();
        for n in 0..raw.len() {
            assert!(
                SyncResponse::decode_raw(&raw[..n]).is_err(),
                "prefix {n} accepted"
            );
        }
        let mut longer = raw.clone();
        longer.push(0);
        assert_eq!(
            SyncResponse::decode_raw(&longer),
            Err(WireError::Malformed("trailing bytes"))
        );
    }

    #[test]
    fn versions_kinds_and_bombs_are_refused() {
        let mut raw = sample_response().encode_raw();
        raw[0] = 9;
        assert_eq!(SyncResponse::decode_raw(&raw), Err(WireError::Version(9)));
        let req = SyncRequest::default().encode_raw();
        assert_eq!(SyncResponse::decode_raw(&req), Err(WireError::Kind(1)));
        assert_eq!(
            SyncRequest::decode(b"not zstd at all"),
            Err(WireError::Compression)
        );
        // 100 MB of zeros compresses to a few kB: refused without inflating it all.
        let bomb = zstd::bulk::compress(&vec![0u8; MAX_MESSAGE_BYTES + 1024], 3).unwrap();
        assert!(bomb.len() < 100_000);
        assert_eq!(SyncRequest::decode(&bomb), Err(WireError::TooLarge));
    }

    #[test]
    fn pooled_contexts_start_clean_after_a_bad_frame() {
        let good = SyncRequest {
            budget: 4096,
            ..SyncRequest::default()
        }
        .encode();
        let mut cut = good.clone();
        cut.truncate(good.len() / 2);
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        // Several threads at once, so contexts move between threads and past failures.
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (good, cut, flipped) = (good.clone(), cut.clone(), flipped.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        assert!(SyncRequest::decode(&cut).is_err());
                        let _ = SyncRequest::decode(&flipped);
                        assert_eq!(SyncRequest::decode(&good).map(|r| r.budget), Ok(4096));
                        assert_eq!(decompress(&compress(&good)).unwrap(), good);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn lying_counts_do_not_allocate() {
        let mut w = Writer(Vec::new());
        w.u8(PROTOCOL_VERSION);
        w.u8(KIND_REQUEST);
        w.cursor(&Cursor::default());
        w.uvarint(10);
        w.uvarint(u64::MAX); // a count of documents no message could hold
        assert!(matches!(
            SyncRequest::decode_raw(&w.0),
            Err(WireError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = SyncRequest::decode_raw(&bytes);
            let _ = SyncResponse::decode_raw(&bytes);
            let _ = SyncRequest::decode(&bytes);
        }

        #[test]
        fn mutated_messages_never_panic(flip in 0usize..400, bit in 0u8..8) {
            let mut raw = sample_response().encode_raw();
            let i = flip % raw.len();
            raw[i] ^= 1 << bit;
            let _ = SyncResponse::decode_raw(&raw);
        }
    }
}
