//! The device side of the sync protocol: gather a request from the store, apply a response
//! in one transaction. Bytes in, bytes out: the transport is someone else's job.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Automerge, ChangeHash};
use rusqlite::{params, OptionalExtension};

use super::*;
use crate::protocol::{
    AuthorSignature, ChangeSignature, Cursor, DocChanges, DocError, Phase, Signer, SignerKey,
    SyncRequest, SyncResponse,
};

/// Most change bytes one request pushes; the rest goes in the next round.
const PUSH_LIMIT: usize = 8 * 1024 * 1024;

/// What applying one response did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Sync again: the server has more, or this device has more to push.
    pub more: bool,
    /// Documents whose pushed changes the server acknowledged.
    pub acknowledged: usize,
    /// Changes pulled that were new here.
    pub pulled: usize,
    /// Bytes of the changes and snapshots the response carried (the budget's unit: what
    /// the server counted against the request's budget).
    pub pulled_bytes: u64,
    /// Snapshots received (bootstrap).
    pub snapshots: usize,
    /// Documents the server refused, with why.
    pub refused: Vec<DocError>,
    /// The server was restored from a backup: this device re-pushes what it lacks.
    pub epoch_reset: bool,
    /// Households that changed here because of this response.
    pub changed: Vec<HouseholdId>,
    /// Documents this response could not apply or read: quarantined (see
    /// `Store::quarantined`); the rest of the response applied.
    pub quarantined: Vec<HouseholdId>,
    /// Households the server erased that this device held: deleted here, with any
    /// unsynced changes to them (see `Store::erased_households`).
    pub erased: Vec<super::erasure::ErasedHousehold>,
    /// Households that left the worker's scope and were removed here now, this device's
    /// edits to them handed in (see `Store::departed_households`).
    pub departed: Vec<HouseholdId>,
    /// Entries of this device's access log that the request carried, now counted as sent.
    pub accesses_sent: usize,
    /// Households the server redacted that this device held: replaced here by the new
    /// generation, this device's unsynced edits rebased onto it (ADR 0026).
    pub redacted: Vec<super::redaction::RedactedHousehold>,
    /// A bootstrap cut short: how many more documents the server said it has to send.
    pub bootstrap_remaining: Option<u64>,
}

/// A document held back from the index because what arrived for it could not be applied or
/// read (ADR 0013): the app lists it; nothing else of the sync waits for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    pub household: HouseholdId,
    /// Which rule failed (no record content).
    pub reason: String,
    pub since: Timestamp,
}

fn cursor_to_json(c: &Cursor) -> String {
    let phase = match c.phase {
        Phase::Log => serde_json::json!({"log": true}),
        Phase::Bootstrap { after } => serde_json::json!({"after": after.map(|a| a.to_string())}),
    };
    serde_json::json!({"epoch": c.epoch.to_string(), "seq": c.seq, "phase": phase}).to_string()
}

fn cursor_from_json(s: &str) -> Result<Cursor> {
    let v: serde_json::Value = serde_json::from_str(s).map_err(|_| Error::Damaged)?;
    let epoch = v["epoch"]
        .as_str()
        .and_then(|e| uuid::Uuid::parse_str(e).ok())
        .ok_or(Error::Damaged)?;
    let seq = v["seq"].as_u64().ok_or(Error::Damaged)?;
    let phase = if v["phase"].get("log").is_some() {
        Phase::Log
    } else {
        let after = match v["phase"]["after"].as_str() {
            Some(a) => Some(HouseholdId::parse(a).map_err(|_| Error::Damaged)?),
            None => None,
        };
        Phase::Bootstrap { after }
    };
    Ok(Cursor { epoch, seq, phase })
}

fn read_cursor(conn: &Connection) -> Result<Cursor> {
    match meta_get(conn, "sync_cursor")? {
        Some(bytes) => cursor_from_json(std::str::from_utf8(&bytes).map_err(|_| Error::Damaged)?),
        None => Ok(Cursor::default()),
    }
}

/// The heads the server has, as far as this document knows them (unknown hashes dropped:
/// they will arrive by pull).
pub(super) fn known(doc: &Automerge, heads: &[ChangeHash]) -> Vec<ChangeHash> {
    heads
        .iter()
        .copied()
        .filter(|h| doc.get_change_by_hash(h).is_some())
        .collect()
}

pub(super) fn stored_server_heads(
    conn: &Connection,
    household: HouseholdId,
) -> Result<Vec<ChangeHash>> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT server_heads FROM documents WHERE doc_id = ?1")?
        .query_row([household.to_string()], |r| r.get(0))
        .optional()?;
    bytes_to_hashes(&bytes.unwrap_or_default())
}

pub(super) fn set_server_state(
    conn: &Connection,
    doc: &Automerge,
    household: HouseholdId,
    heads: &[ChangeHash],
) -> Result<()> {
    let missing = doc.get_changes(&known(doc, heads));
    let unsynced = !missing.is_empty();
    // Uploaded when an acknowledgement first covers what was pending. The server's copy
    // moved (an ack, pulled changes or a snapshot), so a refusal is forgotten and the
    // document pushed again: a refusal can be transient — after a restore, a colleague's
    // changes this device relays are unattributed until that colleague's device registers
    // again (the simulation found it: its own edits then stayed unsynced for good). A
    // refusal in the same response is recorded after this.
    conn.prepare_cached(
        "UPDATE documents SET server_heads = ?2, unsynced = ?3, push_error = NULL,
         uploaded_at = CASE WHEN unsynced = 1 AND ?3 = 0 THEN ?4 ELSE uploaded_at END
         WHERE doc_id = ?1",
    )?
    .execute(params![
        household.to_string(),
        hashes_to_bytes(heads),
        unsynced,
        Timestamp::now().0
    ])?;
    super::status::record_covered(conn, doc, household, &missing)
}

impl Store {
    /// The cursor this device holds in the server's change log.
    pub fn sync_cursor(&self) -> Result<Cursor> {
        read_cursor(&self.writer().conn)
    }

    /// Build the next sync request: the cursor, and for each document with local changes
    /// the server lacks, those changes. `budget` is the response size asked for.
    pub fn build_sync_request(&self, budget: u32) -> Result<SyncRequest> {
        let mut w = self.writer();
        let Writer { conn, cache, .. } = &mut *w;
        let cursor = read_cursor(conn)?;
        let mut push = Vec::new();
        // While bootstrapping, the server's state is not known yet: push afterwards.
        if cursor.phase == Phase::Log {
            let ids: Vec<String> = conn
                .prepare_cached("SELECT doc_id FROM documents WHERE unsynced = 1 AND push_error IS NULL ORDER BY doc_id")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut size = 0;
            for id in ids {
                let household = HouseholdId::parse(&id).map_err(|_| Error::Damaged)?;
                let server = stored_server_heads(conn, household)?;
                let doc = load(conn, cache, household, &self.actor)?;
                let missing = doc.get_changes(&known(doc, &server));
                if missing.is_empty() {
                    continue;
                }
                let signatures = vouch(conn, &self.actor, &self.signing, household, &missing)?;
                let changes: Vec<Vec<u8>> =
                    missing.iter().map(|c| c.raw_bytes().to_vec()).collect();
                size += changes.iter().map(Vec::len).sum::<usize>();
                push.push(DocChanges {
                    doc: household,
                    changes,
                    signatures,
                });
                if size > PUSH_LIMIT {
                    break;
                }
            }
        }
        let signer = match meta_get(conn, "signer_known")? {
            Some(_) => None,
            None => Some(SignerKey {
                actor: self.actor.to_bytes().to_vec(),
                key: self.signing.public(),
            }),
        };
        // Last, after everything that may fail: the entries carried are marked in flight.
        let accesses = super::access::take_for_request(conn)?;
        Ok(SyncRequest {
            cursor,
            budget,
            push,
            signer,
            accesses,
        })
    }

    /// Documents this device received but could not apply or read, with why (the reason
    /// names a rule, never content). Each stays as it was before; the next version the
    /// server sends is tried with what was held back, and clears the entry if it applies.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>> {
        let w = self.writer();
        let rows = w
            .conn
            .prepare("SELECT doc_id, reason, since FROM quarantine ORDER BY since, doc_id")?
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, reason, since)| {
                Ok(Quarantined {
                    household: HouseholdId::parse(&id).map_err(|_| Error::Damaged)?,
                    reason,
                    since: Timestamp(since),
                })
            })
            .collect()
    }

    /// The next request as bytes for the wire (zstd-compressed; see `docs/protocol.md`).
    pub fn prepare_sync_request(&self, budget: u32) -> Result<Vec<u8>> {
        Ok(self.build_sync_request(budget)?.encode())
    }

    /// Apply a response body from the server in one transaction.
    pub fn apply_sync_response(&self, body: &[u8]) -> Result<SyncOutcome> {
        let response = SyncResponse::decode(body)?;
        self.apply_response(&response)
    }

    /// Apply a decoded response in one transaction: snapshots, pulled changes, acks,
    /// refusals and the new cursor land together or not at all.
    pub fn apply_response(&self, resp: &SyncResponse) -> Result<SyncOutcome> {
        let mut w = self.writer();
        let Writer { conn, cache, .. } = &mut *w;
        let mut touched: BTreeSet<HouseholdId> = BTreeSet::new();
        let tx = conn.transaction()?;
        // automerge may panic on bytes from the network; a panic is a malformed response
        // (the transaction rolls back and the touched documents are dropped from memory).
        let result = super::contained(|| {
            apply_in(
                &tx,
                cache,
                Here {
                    actor: &self.actor,
                    station: self.station,
                    compaction: self.compaction.by_count(),
                    now: (self.clock)(),
                },
                resp,
                &mut touched,
            )
        });
        let result = result.and_then(|o| tx.commit().map(|()| o).map_err(Error::from));
        if result.is_err() {
            for h in &touched {
                cache.evict(h);
            }
        }
        let mut outcome = result?;
        outcome.pulled_bytes = resp
            .pull
            .iter()
            .flat_map(|p| p.changes.iter().map(Vec::len))
            .chain(resp.snapshots.iter().map(|s| s.bytes.len()))
            .sum::<usize>() as u64;
        // Erased households leave no byte behind: scrub now (a failure leaves it pending for
        // the next open; the response itself is applied).
        if !outcome.erased.is_empty()
            || !outcome.departed.is_empty()
            || !outcome.redacted.is_empty()
        {
            if let Err(e) = super::erasure::scrub(conn) {
                tracing::warn!(error = %e, "scrub after an erasure failed; retried at next open");
            }
        }
        outcome.more = resp.more || {
            let pending: i64 = conn.query_row(
                "SELECT count(*) FROM documents WHERE unsynced = 1 AND push_error IS NULL",
                [],
                |r| r.get(0),
            )?;
            pending > 0 || super::access::more_to_send(conn)?
        };
        Ok(outcome)
    }

    /// Erase this store: the database and its WAL and shared-memory files. Used when the
    /// server says the device was revoked.
    pub fn wipe(self) -> Result<()> {
        self.wipe_shared()
    }

    /// [`wipe`](Self::wipe) for a store others may still hold: the bundled transport's sync
    /// does it when the server answers `wipe: true`. Its connections are closed first, then
    /// its files deleted; every later call on it fails (there is nothing left to read).
    pub fn wipe_shared(&self) -> Result<()> {
        // One lock at a time (the writer's, then the reader's): no order to get wrong.
        {
            let mut w = super::lock(&self.writer);
            w.cache.clear();
            // The file's connection is dropped, and with it closed, here.
            w.conn = Connection::open_in_memory()?;
        }
        *super::lock(&self.reader) = Connection::open_in_memory()?;
        let path = self.path.clone();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// The signatures that vouch for `changes` of `household`: this device signs its own
/// actor's newest change among them; for a colleague's changes (re-pushed to a restored
/// server) it sends the signature it received with them.
fn vouch(
    conn: &Connection,
    own: &ActorId,
    key: &crate::protocol::DeviceKey,
    household: HouseholdId,
    changes: &[automerge::Change],
) -> Result<Vec<AuthorSignature>> {
    let mut out = Vec::new();
    let mut others: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut newest_own: Option<&automerge::Change> = None;
    for c in changes {
        if c.actor_id() == own {
            if newest_own.is_none_or(|n| n.seq() < c.seq()) {
                newest_own = Some(c);
            }
        } else {
            others.insert(c.actor_id().to_bytes().to_vec());
        }
    }
    if let Some(c) = newest_own {
        out.push(AuthorSignature {
            actor: own.to_bytes().to_vec(),
            signature: key.sign(household.as_uuid(), &c.hash()),
        });
    }
    for actor in others {
        let row: Option<(Vec<u8>, Vec<u8>)> = conn
            .prepare_cached("SELECT hash, sig FROM signatures WHERE doc_id = ?1 AND actor = ?2")?
            .query_row(params![household.to_string(), actor], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((hash, sig)) = row {
            let (Ok(hash), Ok(sig)) = (<[u8; 32]>::try_from(hash), <[u8; 64]>::try_from(sig))
            else {
                return Err(Error::Damaged);
            };
            out.push(AuthorSignature {
                actor,
                signature: ChangeSignature {
                    hash: ChangeHash(hash),
                    sig,
                },
            });
        }
    }
    Ok(out)
}

/// Pin the owners of actors the server names (the first answer wins: a later one naming
/// another key for a known actor is ignored and its signatures will not verify).
fn pin_signers(tx: &Connection, signers: &[Signer]) -> Result<()> {
    for s in signers {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO signers (actor, device_id, worker_id, key) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![s.actor, s.device.to_string(), s.worker.to_string(), s.key])?;
    }
    Ok(())
}

/// Keep the signatures that came with a document, where they verify against the pinned
/// key of their actor's owner; one replaces the one held when its change is not older
/// (`held_doc`: the document with what came applied).
fn keep_signatures(
    tx: &Connection,
    doc: HouseholdId,
    held_doc: &Automerge,
    signatures: &[AuthorSignature],
) -> Result<()> {
    for s in signatures {
        let seq_of = |h: &ChangeHash| held_doc.get_change_meta_by_hash(h).map(|m| m.seq);
        let older = signature_of(tx, doc, &s.actor)?
            .is_some_and(|held| seq_of(&held) > seq_of(&s.signature.hash));
        if older {
            continue;
        }
        let key: Option<Vec<u8>> = tx
            .prepare_cached("SELECT key FROM signers WHERE actor = ?1")?
            .query_row([&s.actor], |r| r.get(0))
            .optional()?;
        let verified = key
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .is_some_and(|k| s.signature.verify(&k, doc.as_uuid()));
        if !verified {
            tracing::warn!(doc = %doc, "a signature did not verify; not kept");
            continue;
        }
        tx.prepare_cached(
            "INSERT OR REPLACE INTO signatures (doc_id, actor, hash, sig) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            doc.to_string(),
            s.actor,
            s.signature.hash.0.to_vec(),
            s.signature.sig.to_vec()
        ])?;
    }
    Ok(())
}

/// The hash of the change the held signature of `actor` for `doc` is over, if any.
fn signature_of(tx: &Connection, doc: HouseholdId, actor: &[u8]) -> Result<Option<ChangeHash>> {
    let hash: Option<Vec<u8>> = tx
        .prepare_cached("SELECT hash FROM signatures WHERE doc_id = ?1 AND actor = ?2")?
        .query_row(params![doc.to_string(), actor], |r| r.get(0))
        .optional()?;
    Ok(hash.and_then(|h| ChangeHash::try_from(h.as_slice()).ok()))
}

/// A received change that no verified signature of its author vouches for, or that writes
/// provenance other than its author's (ADR 0012): the document is quarantined, so a
/// compromised server cannot make this phone show words their author did not write.
fn unattributed(what: &str) -> Error {
    Error::MalformedDocument(format!("unattributed: {what}"))
}

/// Check what was received for `id` (already applied to `doc`): every change of another
/// actor than this device's is covered by a kept signature of its actor's pinned owner —
/// one over a change of that actor with at least its sequence number (an actor's changes
/// form one chain, so that signed change descends from every earlier one) — and, for the
/// `changes` given one by one, writes only its owner's provenance. With `changes` `None`
/// (a snapshot), every actor of the document is checked for coverage and every change of
/// another actor for its provenance. The station's own
/// document is the server's and is not checked.
fn verify_received(
    tx: &Connection,
    doc: &Automerge,
    id: HouseholdId,
    own: &ActorId,
    station: StationId,
    changes: Option<&[automerge::Change]>,
) -> Result<()> {
    if id == doc::station::station_doc_id(station) {
        return Ok(());
    }
    // A generation's changes (ADR 0026) come in snapshots only: the device computed it
    // itself (a redaction notice it witnessed) or, holding nothing of the household before,
    // took it from the server as it takes every household it first meets.
    let generated = |a: &ActorId| doc::generation::generation_of_actor(a.to_bytes(), id).is_some();
    if let Some(changes) = changes {
        if changes.iter().any(|c| generated(c.actor_id())) {
            return Err(unattributed("a generation's change outside its snapshot"));
        }
    }
    let mut needed: std::collections::BTreeMap<Vec<u8>, u64> = Default::default();
    match changes {
        Some(changes) => {
            for c in changes.iter().filter(|c| c.actor_id() != own) {
                let seq = needed.entry(c.actor_id().to_bytes().to_vec()).or_default();
                *seq = (*seq).max(c.seq());
            }
        }
        None => {
            for m in doc.get_changes_meta(&[]) {
                if m.actor.as_ref() != own && !generated(m.actor.as_ref()) {
                    let seq = needed.entry(m.actor.to_bytes().to_vec()).or_default();
                    *seq = (*seq).max(m.seq);
                }
            }
        }
    }
    for (actor, seq) in &needed {
        let signed = signature_of(tx, id, actor)?
            .and_then(|h| doc.get_change_meta_by_hash(&h))
            .map_or(0, |m| m.seq);
        if signed < *seq {
            return Err(unattributed("a change no signature of its author covers"));
        }
    }
    // A snapshot's changes are checked like pulled ones: a change its author signed may
    // still credit someone else, which an honest server refuses and a compromised one
    // could pass on to a new phone (ADR 0012).
    let in_snapshot;
    let changes = match changes {
        Some(changes) => changes,
        None => {
            in_snapshot = contained(|| Ok(doc.get_changes(&[])))?;
            &in_snapshot
        }
    };
    for c in changes
        .iter()
        .filter(|c| c.actor_id() != own && !generated(c.actor_id()))
    {
        let owner: Option<(String, String)> = tx
            .prepare_cached("SELECT worker_id, device_id FROM signers WHERE actor = ?1")?
            .query_row([c.actor_id().to_bytes()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let author = owner.and_then(|(w, d)| {
            Some(doc::verify::Author {
                worker: WorkerId::parse(&w).ok()?,
                device: DeviceId::parse(&d).ok()?,
            })
        });
        let Some(author) = author else {
            return Err(unattributed(
                "a change whose author the server did not name",
            ));
        };
        // The server bounds times against its clock; this phone's clock may be wrong.
        let ok = contained(|| Ok(doc::verify::check_provenance(doc, c, &author, i64::MAX / 4)))?;
        if ok.is_err() {
            return Err(unattributed(
                "a change writes provenance that is not its author's",
            ));
        }
    }
    Ok(())
}

/// What a document this phone holds has frozen — a survey's published versions (ADR 0022)
/// — before something received is applied to it; nothing for a document it does not hold
/// (or holds unreadable: the server's validator read it whole when it accepted it).
fn frozen_before(
    tx: &Connection,
    cache: &mut DocCache,
    id: HouseholdId,
    actor: &ActorId,
) -> Result<Vec<(String, String)>> {
    match load(tx, cache, id, actor) {
        Ok(doc) => Ok(contained(|| doc::survey::frozen_parts(doc)).unwrap_or_default()),
        Err(e) if document_fault(&e) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The server's check of a push (`doc::survey::check_frozen`), made by the phone on what it
/// pulls: a published version changed or written twice — which an honest server refuses
/// (code 3) and a compromised one might pass on — quarantines the document like any other
/// it cannot trust (ADR 0013), the rest of the response applying.
fn still_frozen(before: &[(String, String)], doc: &Automerge) -> Result<()> {
    contained(|| doc::survey::check_frozen(before, doc))
        .map_err(|_| Error::InvalidInput("frozen: a published survey version was changed"))
}

/// A snapshot from the server: a new document stored as it came, or what it adds to a known
/// one applied as changes. The number of changes it added to a known document.
fn apply_snapshot(
    tx: &rusqlite::Transaction<'_>,
    cache: &mut DocCache,
    actor: &ActorId,
    station: StationId,
    compaction: super::compaction::Compaction,
    bytes: &[u8],
    id: HouseholdId,
) -> Result<usize> {
    // A zstd frame of the encoding (today's server), or automerge's own encoding.
    let encoded = crate::protocol::decode_snapshot(bytes)
        .map_err(|_| Error::MalformedDocument("snapshot is not a valid zstd frame".into()))?;
    let theirs = contained(|| doc::load_document(&encoded, actor))?;
    let is_station = id == doc::station::station_doc_id(station);
    let kind = if is_station {
        (doc::station::station_header(&theirs)? == station).then_some("station")
    } else {
        let (kind, their_id, _) = doc::document_header(&theirs)?;
        (their_id == id).then_some(kind.as_str())
    };
    let Some(kind) = kind else {
        return Err(Error::NotAHousehold("snapshot id does not match"));
    };
    let heads = theirs.get_heads();
    let mut added = 0;
    if load(tx, cache, id, actor).is_ok() {
        let doc = cache.get_mut(&id).ok_or(Error::NotFound("household"))?;
        // A newer generation replaces a document only through its redaction notice, which
        // this device checks (ADR 0026): merged into the old history it would double it.
        if doc::generation::generation_of(&theirs, id) > doc::generation::generation_of(doc, id) {
            return Err(Error::MalformedDocument(
                "a new generation of the household without its redaction".into(),
            ));
        }
        let new = doc.get_changes_added(&theirs);
        added = apply_remote(tx, cache, actor, station, id, new, compaction)?.applied;
    } else {
        // A household first met in a redacted generation: its generation part must be a
        // state and nothing else (ADR 0034).
        if !is_station {
            contained(|| doc::generation_check::check_canonical(&theirs, id))?;
        }
        tx.execute(
            "INSERT INTO documents (doc_id, kind, snapshot, unsynced) VALUES (?1, ?2, ?3, 0)",
            params![id.to_string(), kind, stored_form(bytes)],
        )?;
        if is_station {
            index::update_station(tx, &theirs)?;
        } else {
            index::update_received(tx, &theirs, id, &doc::verify::Scope::Everything)?;
        }
        cache.insert(id, theirs);
    }
    let doc = load(tx, cache, id, actor)?;
    set_server_state(tx, doc, id, &heads)?;
    Ok(added)
}

/// Something received for a document that could not be applied yet, kept to retry: its
/// changes, and the signatures that came with them (they vouch for the changes when the
/// retry applies them).
#[derive(Clone, Debug)]
enum Held {
    Change(Vec<u8>),
    Snapshot(Vec<u8>),
    Signature(AuthorSignature),
}

impl Held {
    /// Stored form of a signature: actor length (1 byte), actor, change hash, signature.
    fn encode_signature(s: &AuthorSignature) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + s.actor.len() + 96);
        out.push(s.actor.len().min(255) as u8);
        out.extend_from_slice(&s.actor[..s.actor.len().min(255)]);
        out.extend_from_slice(&s.signature.hash.0);
        out.extend_from_slice(&s.signature.sig);
        out
    }

    fn decode_signature(b: &[u8]) -> Option<AuthorSignature> {
        let (&n, rest) = b.split_first()?;
        let n = n as usize;
        if rest.len() != n + 96 {
            return None;
        }
        Some(AuthorSignature {
            actor: rest[..n].to_vec(),
            signature: crate::protocol::ChangeSignature {
                hash: ChangeHash(rest[n..n + 32].try_into().ok()?),
                sig: rest[n + 32..].try_into().ok()?,
            },
        })
    }

    /// The changes it holds (a snapshot holds its whole history).
    fn changes(&self, actor: &ActorId) -> Result<Vec<automerge::Change>> {
        match self {
            Held::Signature(_) => Ok(Vec::new()),
            Held::Change(b) => decode_changes(std::slice::from_ref(b)),
            Held::Snapshot(b) => {
                let encoded = crate::protocol::decode_snapshot(b).map_err(|_| {
                    Error::MalformedDocument("snapshot is not a valid zstd frame".into())
                })?;
                let doc = contained(|| doc::load_document(&encoded, actor))?;
                Ok(doc.get_changes(&[]))
            }
        }
    }
}

/// Whether an error is about what a document holds (quarantine it and go on), rather than
/// about this device's storage (fail the whole response).
fn document_fault(e: &Error) -> bool {
    matches!(
        e,
        Error::MalformedDocument(_)
            | Error::NotAHousehold(_)
            | Error::MissingDependencies(_)
            | Error::InvalidInput(_)
            | Error::NotFound(_)
            | Error::Protocol(_)
    )
}

/// Run one document's part of a response in a savepoint: on a fault of the document's own,
/// undo that part alone and say why (the rest of the response goes on).
fn guarded<T>(
    tx: &rusqlite::Transaction<'_>,
    cache: &mut DocCache,
    doc: HouseholdId,
    f: impl FnOnce(&rusqlite::Transaction<'_>, &mut DocCache) -> Result<T>,
) -> Result<std::result::Result<T, String>> {
    tx.execute_batch("SAVEPOINT doc_part")?;
    match f(tx, cache) {
        Ok(v) => {
            tx.execute_batch("RELEASE doc_part")?;
            Ok(Ok(v))
        }
        Err(e) if document_fault(&e) => {
            tx.execute_batch("ROLLBACK TO doc_part; RELEASE doc_part")?;
            cache.evict(&doc);
            tracing::warn!(doc = %doc, error = %e, "document quarantined");
            Ok(Err(e.to_string()))
        }
        Err(e) => Err(e),
    }
}

/// What is held for a document, in the order it came.
fn held_items(tx: &Connection, doc: HouseholdId) -> Result<Vec<Held>> {
    let rows = tx
        .prepare_cached("SELECT kind, bytes FROM held WHERE doc_id = ?1 ORDER BY n")?
        .query_map([doc.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, b)| match k.as_str() {
            "s" => Some(Held::Snapshot(b)),
            "g" => Held::decode_signature(&b).map(Held::Signature),
            _ => Some(Held::Change(b)),
        })
        .collect())
}

/// Quarantine a document: why, and everything received for it since it was last readable.
fn quarantine(tx: &Connection, doc: HouseholdId, reason: &str, items: &[Held]) -> Result<()> {
    let id = doc.to_string();
    tx.execute(
        "INSERT INTO quarantine (doc_id, reason, since) VALUES (?1, ?2, ?3)
         ON CONFLICT (doc_id) DO UPDATE SET reason = ?2",
        params![id, reason, Timestamp::now().0],
    )?;
    tx.execute("DELETE FROM held WHERE doc_id = ?1", [&id])?;
    for (n, item) in items.iter().enumerate() {
        let (kind, bytes) = match item {
            Held::Change(b) => ("c", b.clone()),
            Held::Snapshot(b) => ("s", b.clone()),
            Held::Signature(sig) => ("g", Held::encode_signature(sig)),
        };
        tx.execute(
            "INSERT INTO held (doc_id, n, kind, bytes) VALUES (?1, ?2, ?3, ?4)",
            params![id, n as i64, kind, bytes],
        )?;
    }
    Ok(())
}

/// A document applied cleanly: whatever was held for it is in it now.
fn release_quarantine(tx: &Connection, doc: HouseholdId) -> Result<()> {
    let id = doc.to_string();
    // Still listed if it applied but does not read (`index::update_received`).
    tx.execute(
        "DELETE FROM quarantine WHERE doc_id = ?1
         AND NOT EXISTS (SELECT 1 FROM documents WHERE doc_id = ?1 AND unreadable = 1)",
        [&id],
    )?;
    tx.execute("DELETE FROM held WHERE doc_id = ?1", [&id])?;
    Ok(())
}

/// Who applies a response, and when.
struct Here<'a> {
    actor: &'a ActorId,
    station: StationId,
    compaction: super::compaction::Compaction,
    now: Timestamp,
}

fn apply_in(
    tx: &rusqlite::Transaction<'_>,
    cache: &mut DocCache,
    here: Here<'_>,
    resp: &SyncResponse,
    touched: &mut BTreeSet<HouseholdId>,
) -> Result<SyncOutcome> {
    let Here {
        actor,
        station,
        compaction,
        now,
    } = here;
    // A response from another epoch than the one this device last stored is a reset too,
    // whatever its flag says: the flag describes the request's cursor, and a late answer to
    // an older request (sent before the device's first sync, say) can carry a restored
    // server's epoch without it. Trusting the flag alone would let the device adopt the new
    // epoch while still believing the server holds what the old one acknowledged.
    let stored = read_cursor(tx)?;
    let reset = resp.epoch_reset || (!stored.epoch.is_nil() && stored.epoch != resp.cursor.epoch);
    let mut out = SyncOutcome {
        epoch_reset: reset,
        bootstrap_remaining: resp.bootstrap_remaining,
        ..SyncOutcome::default()
    };
    // A restored server may have lost this device's signer registration: register again.
    if reset {
        tx.execute("DELETE FROM meta WHERE key = 'signer_known'", [])?;
    } else if resp.signer_known {
        meta_put(tx, "signer_known", &[1])?;
    }
    pin_signers(tx, &resp.signers)?;
    // What the server acknowledged of each redacted household, read before a reset forgets
    // it: a redaction in the same response must not write again what the server had (and
    // may have redacted) as if it never had it (ADR 0034; the simulation found it).
    let mut acknowledged: BTreeMap<HouseholdId, Vec<ChangeHash>> = BTreeMap::new();
    for notice in &resp.redactions {
        acknowledged.insert(notice.doc, stored_server_heads(tx, notice.doc)?);
    }
    if reset {
        // The server lost history: forget what it was known to have; push what it lacks
        // once the snapshots show what it has.
        tx.execute(
            "UPDATE documents SET server_heads = x'', unsynced = 1, push_error = NULL",
            [],
        )?;
        tx.execute("UPDATE visit_uploads SET uploaded_at = NULL", [])?;
    }
    out.accesses_sent = super::access::response_applied(tx, reset)?;
    // Redactions first: the household's snapshot and later changes in this response are of
    // the new generation.
    for notice in &resp.redactions {
        touched.insert(notice.doc);
        let snapshot = resp
            .snapshots
            .iter()
            .find(|s| s.doc == notice.doc)
            .map(|s| s.bytes.as_slice());
        let server_heads = acknowledged.get(&notice.doc).cloned().unwrap_or_default();
        let applied = guarded(tx, cache, notice.doc, |tx, cache| {
            super::redaction::redact_in(
                tx,
                cache,
                actor,
                notice,
                snapshot,
                resp.cursor.seq,
                &server_heads,
            )
        })?;
        match applied {
            Ok(Some(r)) => {
                out.changed.push(notice.doc);
                out.redacted.push(r);
            }
            Ok(None) => {}
            Err(reason) => {
                quarantine(tx, notice.doc, &reason, &[])?;
                out.quarantined.push(notice.doc);
            }
        }
    }
    // A late answer to a request sent before this device took a household's new
    // generation speaks of the old one: what it says of that household is ignored. So is
    // what a late answer says of a household erased since (an erasure is final).
    let redacted_here: BTreeSet<HouseholdId> = resp.redactions.iter().map(|n| n.doc).collect();
    let mut passed_over: BTreeSet<HouseholdId> = BTreeSet::new();
    for doc in resp
        .snapshots
        .iter()
        .map(|s| s.doc)
        .chain(resp.pull.iter().map(|p| p.doc))
        .chain(resp.acks.iter().map(|a| a.doc))
        .chain(resp.errors.iter().map(|e| e.doc))
    {
        if (!redacted_here.contains(&doc)
            && super::redaction::predates_generation(tx, doc, resp.cursor.seq)?)
            || super::erasure::heard_erased(tx, doc)?
        {
            passed_over.insert(doc);
        }
    }
    for snap in resp
        .snapshots
        .iter()
        .filter(|s| !passed_over.contains(&s.doc))
    {
        touched.insert(snap.doc);
        // A household that comes (back) into the worker's scope.
        super::caseload::returned(tx, snap.doc)?;
        let applied = guarded(tx, cache, snap.doc, |tx, cache| {
            let frozen = frozen_before(tx, cache, snap.doc, actor)?;
            let added =
                apply_snapshot(tx, cache, actor, station, compaction, &snap.bytes, snap.doc)?;
            let doc = load(tx, cache, snap.doc, actor)?;
            keep_signatures(tx, snap.doc, doc, &snap.signatures)?;
            verify_received(tx, doc, snap.doc, actor, station, None)?;
            still_frozen(&frozen, doc)?;
            Ok(added)
        })?;
        match applied {
            Ok(added) => {
                out.pulled += added;
                release_quarantine(tx, snap.doc)?;
                out.snapshots += 1;
                // A household first met in a later generation: a late answer to an older
                // request must not bring the old one's changes (ADR 0026).
                super::redaction::met_generation(tx, cache, actor, snap.doc, resp.cursor.seq)?;
                if index::unreadable(tx, snap.doc)? {
                    out.quarantined.push(snap.doc);
                } else {
                    out.changed.push(snap.doc);
                }
            }
            Err(reason) => {
                let mut items = vec![Held::Snapshot(snap.bytes.clone())];
                items.extend(snap.signatures.iter().cloned().map(Held::Signature));
                quarantine(tx, snap.doc, &reason, &items)?;
                out.quarantined.push(snap.doc);
            }
        }
    }
    for pulled in resp.pull.iter().filter(|p| !passed_over.contains(&p.doc)) {
        touched.insert(pulled.doc);
        // Changes held back from an earlier response go first: these may repair them.
        let mut held = held_items(tx, pulled.doc)?;
        let was_held = !held.is_empty();
        held.extend(pulled.changes.iter().cloned().map(Held::Change));
        held.extend(pulled.signatures.iter().cloned().map(Held::Signature));
        let signatures: Vec<AuthorSignature> = held
            .iter()
            .filter_map(|h| match h {
                Held::Signature(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let applied = guarded(tx, cache, pulled.doc, |tx, cache| {
            let mut changes = Vec::new();
            for item in &held {
                changes.extend(item.changes(actor)?);
            }
            let received = changes.clone();
            let frozen = frozen_before(tx, cache, pulled.doc, actor)?;
            let hashes: Vec<ChangeHash> = changes.iter().map(|c| c.hash()).collect();
            let deps: BTreeSet<ChangeHash> =
                changes.iter().flat_map(|c| c.deps().to_vec()).collect();
            let applied =
                apply_remote(tx, cache, actor, station, pulled.doc, changes, compaction)?.applied;
            // The server now has these too: advance its known heads past them.
            let mut server: BTreeSet<ChangeHash> =
                stored_server_heads(tx, pulled.doc)?.into_iter().collect();
            server.extend(hashes);
            server.retain(|h| !deps.contains(h));
            let server: Vec<ChangeHash> = server.into_iter().collect();
            let doc = load(tx, cache, pulled.doc, actor)?;
            set_server_state(tx, doc, pulled.doc, &server)?;
            keep_signatures(tx, pulled.doc, doc, &signatures)?;
            verify_received(tx, doc, pulled.doc, actor, station, Some(&received))?;
            still_frozen(&frozen, doc)?;
            Ok(applied)
        })?;
        match applied {
            Ok(applied) => {
                if was_held {
                    release_quarantine(tx, pulled.doc)?;
                }
                out.pulled += applied;
                if index::unreadable(tx, pulled.doc)? {
                    out.quarantined.push(pulled.doc);
                } else if applied > 0 {
                    out.changed.push(pulled.doc);
                }
            }
            Err(reason) => {
                quarantine(tx, pulled.doc, &reason, &held)?;
                out.quarantined.push(pulled.doc);
            }
        }
    }
    for ack in resp.acks.iter().filter(|a| !passed_over.contains(&a.doc)) {
        touched.insert(ack.doc);
        match load(tx, cache, ack.doc, actor) {
            Ok(doc) => {
                set_server_state(tx, doc, ack.doc, &ack.heads)?;
                out.acknowledged += 1;
            }
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    // After an epoch reset every document is pushed again from scratch: a refusal of the
    // push computed against the old epoch must not stop that.
    // Likewise a document redacted in this response: what was refused was of its old
    // generation, and its rebased edits are pushed next (ADR 0026).
    let redacted: BTreeSet<HouseholdId> = out.redacted.iter().map(|r| r.household).collect();
    for err in resp
        .errors
        .iter()
        .filter(|e| !reset && !redacted.contains(&e.doc) && !passed_over.contains(&e.doc))
    {
        tx.execute(
            "UPDATE documents SET push_error = ?2 WHERE doc_id = ?1",
            params![err.doc.to_string(), err.code.as_str()],
        )?;
        out.refused.push(*err);
    }
    // Households that left the worker's scope go once this device's edits to them are
    // handed in (acknowledged or refused above; otherwise at a later answer).
    if let Some(scope) = &resp.scope {
        super::caseload::apply_notice(tx, scope, now)?;
    }
    for id in super::caseload::settle(tx, cache, actor, now)? {
        touched.insert(id);
        out.changed.retain(|h| *h != id);
        out.quarantined.retain(|h| *h != id);
        out.departed.push(id);
    }
    // Last: an erasure wins over anything else this response says of the household.
    for erasure in &resp.erasures {
        touched.insert(erasure.doc);
        if let Some(e) = super::erasure::erase_in(tx, cache, actor, erasure, now)? {
            out.erased.push(e);
        }
        out.changed.retain(|h| *h != erasure.doc);
        out.quarantined.retain(|h| *h != erasure.doc);
    }
    meta_put(tx, "sync_cursor", cursor_to_json(&resp.cursor).as_bytes())?;
    out.changed.sort();
    out.changed.dedup();
    Ok(out)
}

/// A received snapshot as the device stores it: the server sends automerge's encoding
/// without DEFLATE (its response is compressed as a whole), which would take 1.6–3.7 times
/// the room of a compacted document; a zstd frame of it takes about the same. Anything
/// already compressed is kept as it came.
fn stored_form(received: &[u8]) -> Vec<u8> {
    let framed = crate::protocol::compress(received);
    if !framed.is_empty() && framed.len() < received.len() {
        framed
    } else {
        received.to_vec()
    }
}
