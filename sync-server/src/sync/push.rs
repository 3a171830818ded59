//! What becomes of the documents a device pushes: each is decided on its own (one bad
//! document never blocks the rest) with a typed [`Verdict`], and the accepted ones are
//! appended to the station's log in one transaction.

use std::collections::BTreeMap;

use automerge::{Automerge, Change, ReadDoc};
use doorstep_core::doc::card_issuances;
use doorstep_core::doc::station::{station_doc_id, StationCards};
use doorstep_core::doc::verify::{self, Violation};
use doorstep_core::protocol::*;
use doorstep_core::{CardIssuanceId, CardSerial, HouseholdId, StationId};

use super::provenance::{author_at, authorship, touched_places, Attribution, Place};
use super::Viewer;
use super::{contained, snapshot, Cached, SyncError, SyncService, COMPACT_AFTER};
use crate::store::scope::HANDOVER_GRACE_MS;
use crate::store::{CardRow, DeviceAuth, DocAppend, ServerStore, StoreError};

impl<S: ServerStore> SyncService<S> {
    /// Decide every pushed document and commit the accepted ones; acks and refusals go into
    /// `resp`. Returns the documents this request created.
    pub(super) fn push(
        &self,
        auth: &DeviceAuth,
        access: &Viewer,
        req: &SyncRequest,
        resp: &mut SyncResponse,
        superseded: &mut Vec<HouseholdId>,
    ) -> Result<Vec<HouseholdId>, SyncError> {
        // Validate against the old state, then commit all in one transaction.
        // validate against the old state, then commit all in one transaction.
        // The commit fails if another writer changed a document since it was validated
        // (another server instance on the same database): validate again, a few times.
        let mut created_here: Vec<HouseholdId> = Vec::new();
        let mut pushes: BTreeMap<HouseholdId, Push<'_>> = BTreeMap::new();
        for d in &req.push {
            let p = pushes.entry(d.doc).or_default();
            p.changes.extend(d.changes.iter());
            p.signatures.extend(d.signatures.iter());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut appends = Vec::new();
            let mut accepted: Vec<(HouseholdId, Cached)> = Vec::new();
            let mut cards: Option<StationCards> = None;
            resp.errors.clear();
            created_here.clear();
            superseded.clear();
            for (doc_id, push) in &pushes {
                match self.accept(auth, access, *doc_id, push, &mut cards)? {
                    Verdict::Accepted {
                        cached,
                        append,
                        existed,
                    } => {
                        if !existed {
                            created_here.push(*doc_id);
                        }
                        appends.push(append);
                        accepted.push((*doc_id, *cached));
                    }
                    Verdict::Unchanged => {}
                    Verdict::Superseded => {
                        tracing::info!(doc = %doc_id, device = %auth.device, "push of an older generation");
                        superseded.push(*doc_id);
                    }
                    Verdict::Erased(notice) => {
                        if !resp.erasures.contains(&notice) {
                            resp.erasures.push(notice);
                        }
                    }
                    Verdict::Refused(code) => {
                        tracing::info!(doc = %doc_id, device = %auth.device, code = code.as_str(), "push refused");
                        resp.errors.push(DocError { doc: *doc_id, code })
                    }
                }
            }
            if appends.is_empty() {
                break;
            }
            // Until the commit succeeds, memory may be ahead of the database: the documents
            // in hand are not put back unless it does.
            match self.store.commit(auth.station, auth.device, &appends) {
                Ok(last_seqs) => {
                    if self.read_model {
                        // Read per sync: a zone set from the CLI holds from the next one. Not
                        // read, the rows stay behind the log until `catch_up` at start.
                        match self.store.station_zone(auth.station) {
                            Ok(zone) => crate::console::read_model::refresh_accepted(
                                self.store.as_ref(),
                                zone,
                                accepted
                                    .iter()
                                    .zip(&last_seqs)
                                    .map(|((id, c), seq)| (*id, &c.doc, *seq)),
                                self.case_files.as_deref(),
                            ),
                            Err(e) => tracing::warn!(error = %e, "read model not updated"),
                        }
                    }
                    for ((doc_id, cached), seq) in accepted.into_iter().zip(last_seqs) {
                        let heads = match pushes.get(&doc_id) {
                            Some(p) if p.handover.get() => pushed_heads(&p.changes),
                            _ => cached.doc.get_heads(),
                        };
                        resp.acks.push(DocHeads { doc: doc_id, heads });
                        self.put_back(doc_id, Cached { seq, ..cached });
                    }
                    break;
                }
                Err(StoreError::Conflict(_)) if attempt < 5 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        // Retried pushes of changes the server already had: acknowledge with current heads.
        for d in &req.push {
            if !resp.acks.iter().any(|a| a.doc == d.doc)
                && !resp.errors.iter().any(|e| e.doc == d.doc)
                && !resp.erasures.iter().any(|e| e.doc == d.doc)
                && !superseded.contains(&d.doc)
            {
                if let Some(p) = pushes.get(&d.doc).filter(|p| p.handover.get()) {
                    resp.acks.push(DocHeads {
                        doc: d.doc,
                        heads: pushed_heads(&p.changes),
                    });
                } else if let Some(c) = self.load(d.doc)? {
                    resp.acks.push(DocHeads {
                        doc: d.doc,
                        heads: c.doc.get_heads(),
                    });
                    self.put_back(d.doc, c);
                }
            }
        }
        Ok(created_here)
    }

    /// Whether this device may write to a household of its station: it is in its worker's
    /// scope, or it left that scope and the device has not been told yet (its cursor is
    /// before the entry that tells it) or was told less than [`HANDOVER_GRACE_MS`] ago (its
    /// edits made while that answer was on its way). Edits made while a household was
    /// being reassigned arrive; a worker never gains access to a household they never had.
    fn may_write(
        &self,
        auth: &DeviceAuth,
        access: &Viewer,
        doc: HouseholdId,
    ) -> Result<Write, SyncError> {
        // A supervisor sees the station, less what is retired from the phones (ADR 0025):
        // `in_scope` says so for every role.
        if self.store.in_scope(auth.worker, doc)? {
            return Ok(Write::InScope);
        }
        let handed_over = match self.store.scope_exit(auth.worker, doc)? {
            None => false,
            Some(exit) => {
                // Where the device is: its cursor, but never before the furthest position
                // it was answered with (a device cannot pretend not to have been told).
                let claimed = match access.cursor.phase {
                    Phase::Log if access.cursor.epoch == access.epoch => access.cursor.seq,
                    _ => 0,
                };
                let at = claimed.max(self.store.served_seq(auth.device)?);
                at < exit.seq || super::now_ms().saturating_sub(exit.at) < HANDOVER_GRACE_MS
            }
        };
        Ok(if handed_over {
            Write::Handover
        } else {
            Write::Refused
        })
    }

    /// Validate one document's pushed changes against the server's copy: scope first (before
    /// decoding anything), then decoding, applying, the one validator, authorship and
    /// finality. The document in hand is dropped on any refusal.
    fn accept(
        &self,
        auth: &DeviceAuth,
        access: &Viewer,
        doc_id: HouseholdId,
        push: &Push<'_>,
        cards: &mut Option<StationCards>,
    ) -> Result<Verdict, SyncError> {
        use Verdict::Refused;
        // Scope first, before anything is decoded. A document of another station, or a
        // reserved station-document id (written by admins only; a device must not squat
        // one before it is first written), is handled exactly like an absent one: its push
        // is decoded and checked against an empty document that is then thrown away, and
        // refused with the code an absent id's refused push gets. Neither the answer nor
        // the work tells a device that the id exists (docs/protocol.md).
        let reserved = doc_id == station_doc_id(auth.station)
            || self
                .store
                .station_exists(StationId::from_uuid(*doc_id.as_uuid()))?;
        let station = if reserved {
            None
        } else {
            self.store.document_station(doc_id)?
        };
        // An erased household stays erased: its own station's device is told (and deletes
        // its copy, unsynced edits and all); any other is answered as for a foreign id.
        // Erasing deletes the document's row, so only an id the server does not hold is
        // looked up (an erasure racing this push fails its commit, which retries).
        let erased = match station {
            None if !reserved => self.store.erasure(doc_id)?,
            _ => None,
        };
        if let Some(e) = erased.as_ref().filter(|e| e.station == auth.station) {
            self.forget(doc_id);
            return Ok(Verdict::Erased(e.notice()));
        }
        // A household of the station outside the worker's scope is foreign too (issue 16),
        // unless it left the scope so lately that this device may still hand in its edits.
        let outside_scope = match station {
            Some(s) if s == auth.station && !reserved => {
                match self.may_write(auth, access, doc_id)? {
                    Write::InScope => false,
                    Write::Handover => {
                        push.handover.set(true);
                        false
                    }
                    Write::Refused => true,
                }
            }
            // Creating a household: a county account has no caseload to create it in.
            None => access.role == doorstep_core::Role::County,
            _ => false,
        };
        let foreign = reserved
            || erased.is_some()
            || outside_scope
            || station.is_some_and(|s| s != auth.station);
        let (mut doc, since, loaded_seq, card_ids, existed) = match station {
            Some(_) if !foreign => match self.load(doc_id)? {
                Some(c) => (c.doc, c.since, c.seq, c.card_ids, true),
                None => return Ok(Refused(DocErrorCode::NotFoundOrForbidden)),
            },
            _ => (Automerge::new(), 0, 0, None, false),
        };
        let mut changes = Vec::with_capacity(push.changes.len());
        for bytes in &push.changes {
            // automerge's decoder panics on some malformed bytes (docs/fuzzing.md, finding 3).
            match contained(|| Change::from_bytes((*bytes).clone())) {
                // automerge's decoder skips the chunk checksum but its loader checks it: a
                // change stored with a wrong one would not load again.
                Some(Ok(c)) if doorstep_core::doc::checksum_ok(&c) => changes.push(c),
                _ => {
                    if existed {
                        self.put_back(
                            doc_id,
                            Cached {
                                doc,
                                since,
                                seq: loaded_seq,
                                card_ids,
                            },
                        );
                        return Ok(Refused(DocErrorCode::Malformed));
                    }
                    return Ok(Refused(DocErrorCode::NotFoundOrForbidden));
                }
            }
        }
        let mut fresh: Vec<Change> = Vec::new();
        for c in changes {
            if doc.get_change_meta_by_hash(&c.hash()).is_none()
                && !fresh.iter().any(|f| f.hash() == c.hash())
            {
                fresh.push(c);
            }
        }
        if fresh.is_empty() {
            if existed {
                self.put_back(
                    doc_id,
                    Cached {
                        doc,
                        since,
                        seq: loaded_seq,
                        card_ids,
                    },
                );
            }
            return Ok(Verdict::Unchanged);
        }
        let cards_before: Vec<CardIssuanceId> = match card_ids {
            // Read from this very state when the server accepted it.
            Some(ids) => ids,
            None if existed => card_issuances(&doc)
                .unwrap_or_default()
                .iter()
                .map(|c| c.id)
                .collect(),
            None => Vec::new(),
        };
        // Creation provenance before the changes, where they could rewrite it (everywhere
        // when that cannot be narrowed).
        // Each change's operations, decoded once for every check below.
        let Some(decoded) = contained(|| verify::decode(&fresh)) else {
            return Ok(Refused(if existed {
                DocErrorCode::Malformed
            } else {
                DocErrorCode::NotFoundOrForbidden
            }));
        };
        // What the changes write and where, in the document before them: looked up once
        // for the creation provenance and the validator's scope.
        let writes = contained(|| verify::writes(&decoded)).and_then(|w| {
            let paths = if existed {
                contained(|| verify::paths(&doc, &w))?
            } else {
                Default::default()
            };
            Some((w, paths))
        });
        let authors_before: Option<Vec<(Place, String)>> = existed.then(|| {
            match writes
                .as_ref()
                .and_then(|(w, p)| contained(|| touched_places(&doc, w, p)).flatten())
            {
                Some(places) => places
                    .into_iter()
                    .filter_map(|place| {
                        let who = author_at(&doc, &place)?;
                        Some((place, who))
                    })
                    .collect(),
                None => authorship(&doc).into_iter().collect(),
            }
        });
        // What the one validator and the finality check need from the state before the
        // push: the records the changes can touch (the rest was valid when accepted) and
        // the visits final now (ADR 0013).
        let (scope, final_before) = if existed {
            (
                writes
                    .as_ref()
                    .and_then(|(w, p)| contained(|| verify::touched(&doc, w, p)))
                    .unwrap_or(verify::Scope::Everything),
                contained(|| verify::final_visits(&doc)),
            )
        } else {
            (verify::Scope::Everything, Some(Default::default()))
        };
        // What the document was (validated when it was accepted): it never changes kind.
        let kind_before = if existed {
            match contained(|| doorstep_core::doc::document_header(&doc)) {
                Some(Ok((kind, _, _))) => Some(kind),
                _ => None,
            }
        } else {
            None
        };
        // A survey's published versions are frozen (ADR 0022): what they hold now must be
        // there unchanged after the push.
        let frozen_before = if existed {
            match contained(|| doorstep_core::doc::survey::frozen_parts(&doc)) {
                Some(Ok(parts)) => parts,
                _ => Vec::new(),
            }
        } else {
            Vec::new()
        };
        // A redacted household (ADR 0026): changes of an older generation are answered by
        // the household's snapshot and latest notice, not refused (ADR 0034). A device still
        // on the old generation takes the new one from them and rebases its edits; one
        // that took it already (this is a late request of its own) ignores them, where a
        // refusal would stop its later edits for good.
        let redacted = existed && doorstep_core::doc::generation::generation_of(&doc, doc_id) > 0;
        // A change without dependencies starts a document: one for a document that exists
        // would start a second history beside it (after a redaction, the old one again).
        if existed && fresh.iter().any(|c| c.deps().is_empty()) {
            return Ok(if redacted {
                Verdict::Superseded
            } else {
                Refused(DocErrorCode::Invalid)
            });
        }
        let heads_before = doc.get_heads();
        let applied = contained(|| doc.apply_changes(fresh.clone()));
        // On any refusal the document in hand may hold the refused changes: drop it (the
        // next request reloads it from the store).
        // For a document the server does not have, every refusal reads "not found or
        // forbidden": another code would tell a device that the id exists elsewhere.
        let refuse = |code| {
            Ok(Refused(if existed {
                code
            } else {
                DocErrorCode::NotFoundOrForbidden
            }))
        };
        match applied {
            Some(Ok(())) => {}
            _ => return refuse(DocErrorCode::Malformed),
        }
        if !doc.get_missing_deps(&[]).is_empty() {
            if redacted {
                return Ok(Verdict::Superseded);
            }
            return refuse(DocErrorCode::MissingDependencies);
        }
        // automerge applies change bytes that are not its own encoding of their operations;
        // such a document cannot be saved and loaded again, and panics devices that read
        // the change back (docs/fuzzing.md, findings 1 and 2).
        if doorstep_core::doc::check_applied(&doc, &heads_before, &fresh).is_err() {
            return refuse(DocErrorCode::Malformed);
        }
        // The header this device may write, and then the whole document as a phone of this
        // version reads it (the one validator, shared with the phones).
        // A household's case file or a station-work document (ADR 0021); its kind stays what
        // it was (a household never becomes station work, which every worker sees).
        let kind = match contained(|| doorstep_core::doc::document_header(&doc)) {
            Some(Ok((kind, id, station)))
                if id == doc_id
                    && station == auth.station
                    && (!existed || kind_before == Some(kind)) =>
            {
                kind
            }
            _ => return refuse(DocErrorCode::Invalid),
        };
        if !matches!(
            contained(|| verify::validate_scope(&doc, &scope)),
            Some(Ok(()))
        ) {
            return refuse(DocErrorCode::Invalid);
        }
        if !matches!(
            contained(|| doorstep_core::doc::survey::check_frozen(&frozen_before, &doc)),
            Some(Ok(()))
        ) {
            return refuse(DocErrorCode::Invalid);
        }
        if let Some(authors_before) = &authors_before {
            if authors_before
                .iter()
                .any(|(place, who)| author_at(&doc, place).as_ref() != Some(who))
            {
                return Ok(Refused(DocErrorCode::Invalid));
            }
        }
        // Who wrote each change, verified: its actor's owner signed it, and what it writes
        // as provenance is its owner's (ADR 0012); and nothing after a visit's finalisation
        // touches that visit (ADR 0013).
        let held = if existed {
            self.store.doc_signatures(doc_id)?
        } else {
            Vec::new()
        };
        let signatures =
            match self.attribute(auth, doc_id, &doc, &decoded, &push.signatures, &held)? {
                Attribution::Vouched(signatures) => signatures,
                Attribution::Unattributed => return refuse(DocErrorCode::Unattributed),
            };
        let Some(final_before) = final_before else {
            return refuse(DocErrorCode::Invalid);
        };
        if let Some(Err(Violation::Finalised)) | None =
            contained(|| verify::check_finality_of(&doc, &decoded, &final_before))
        {
            return refuse(DocErrorCode::Finalised);
        }
        // New card issuances must carry a serial of one of this station's batches (once the
        // station manages its cards here, i.e. has registered a batch).
        let Ok(cards_after) = card_issuances(&doc) else {
            return refuse(DocErrorCode::Invalid);
        };
        for card in cards_after.iter().filter(|c| !cards_before.contains(&c.id)) {
            if cards.is_none() {
                *cards = Some(self.station_cards(auth.station)?);
            }
            let known = cards.as_ref().is_some_and(|b| {
                b.batches.is_empty()
                    || CardSerial::parse(&card.serial)
                        .ok()
                        .is_some_and(|s| b.batch_of(&s).is_some())
            });
            if !known {
                return refuse(DocErrorCode::Invalid);
            }
        }
        // Everything an absent id's push goes through, done: now refuse the foreign one.
        if foreign {
            return Ok(Refused(DocErrorCode::NotFoundOrForbidden));
        }
        let card_rows = cards_after
            .iter()
            .map(|c| CardRow {
                card: c.id,
                household: doc_id,
                serial: c.serial.clone(),
                status: c.status.as_str().to_owned(),
                issued_by: c.created.worker,
                issued_at: c.created.at.0,
            })
            .collect();
        let since = since + fresh.len() as u64;
        let snapshot = (since >= COMPACT_AFTER).then(|| snapshot::encode_stored(&doc));
        let since = if snapshot.is_some() { 0 } else { since };
        let append = DocAppend {
            doc: doc_id,
            kind,
            changes: fresh
                .iter()
                .map(|c| (c.hash(), c.raw_bytes().to_vec()))
                .collect(),
            snapshot,
            cards: card_rows,
            expected_seq: Some(loaded_seq),
            signatures,
        };
        let card_ids = Some(cards_after.iter().map(|c| c.id).collect());
        let cached = Cached {
            doc,
            since,
            seq: loaded_seq,
            card_ids,
        };
        Ok(Verdict::Accepted {
            cached: Box::new(cached),
            append,
            existed,
        })
    }
}

/// One document's part of a request.
#[derive(Default)]
pub(super) struct Push<'a> {
    changes: Vec<&'a Vec<u8>>,
    signatures: Vec<&'a AuthorSignature>,
    /// Taken as a hand-over: the household left the worker's scope (ADR 0019). Its ack
    /// names the heads of what the device pushed, not the server's heads (the device will
    /// never receive the changes of the worker who has it now, and must not wait for them).
    handover: std::cell::Cell<bool>,
}

/// The heads of a set of pushed changes: those no other pushed change depends on.
fn pushed_heads(changes: &[&Vec<u8>]) -> Vec<automerge::ChangeHash> {
    let decoded: Vec<Change> = changes
        .iter()
        .filter_map(|b| contained(|| Change::from_bytes((*b).clone()).ok()).flatten())
        .collect();
    let deps: std::collections::HashSet<automerge::ChangeHash> = decoded
        .iter()
        .flat_map(|c| c.deps().iter().copied())
        .collect();
    let mut heads: Vec<automerge::ChangeHash> = decoded
        .iter()
        .map(|c| c.hash())
        .filter(|h| !deps.contains(h))
        .collect();
    heads.sort();
    heads.dedup();
    heads
}

/// Whether a device may write to a household of its station (ADR 0019).
enum Write {
    InScope,
    /// It left the worker's scope, and this device may still hand in its edits.
    Handover,
    Refused,
}

/// What became of one document's push.
pub(super) enum Verdict {
    /// Nothing the server did not have.
    Unchanged,
    Accepted {
        cached: Box<Cached>,
        append: DocAppend,
        /// The server had the document before.
        existed: bool,
    },
    Refused(DocErrorCode),
    /// The household was erased: the device is told to delete it.
    Erased(Erasure),
    /// Changes of an older generation of a redacted household: answered with its snapshot
    /// and latest notice (ADR 0034).
    Superseded,
}
