//! The answer to a sync: what the device lacks — snapshots while it bootstraps, log
//! entries after its cursor otherwise — with the signatures that vouch for them and the
//! owners of their actors.

use std::collections::BTreeSet;

use doorstep_core::protocol::*;
use doorstep_core::HouseholdId;

use super::{SyncError, SyncService, Viewer, MAX_BUDGET, MIN_BUDGET};
use crate::snapshot;
use crate::store::{DeviceAuth, LogReader, ServerStore};

/// The most documents counted for a bootstrap's `bootstrap_remaining` (a station holds far
/// fewer; the count is only an estimate for a progress bar).
const REMAINING_COUNT_LIMIT: usize = 1_000_000;

impl<S: ServerStore> SyncService<S> {
    /// Fill `resp` with what the device lacks after its cursor, within its budget.
    /// `created_here`: documents this very request created (the device has them as sent).
    pub(super) fn pull(
        &self,
        auth: &DeviceAuth,
        access: &Viewer,
        req: &SyncRequest,
        epoch: uuid::Uuid,
        created_here: &[HouseholdId],
        mut resp: SyncResponse,
    ) -> Result<(SyncResponse, Vec<KnownHashes>), SyncError> {
        let mut known = Vec::new();
        let budget = (req.budget as usize).clamp(MIN_BUDGET, MAX_BUDGET);
        let mut cursor = req.cursor;
        if cursor.epoch != epoch {
            // A first sync, or a device from before a restore: start from snapshots.
            resp.epoch_reset = !cursor.epoch.is_nil();
            cursor = Cursor {
                epoch,
                seq: 0,
                phase: Phase::Bootstrap { after: None },
            };
        }
        // Every answer says what the worker may see; households that left it are listed.
        resp.scope = Some(ScopeNotice {
            role: access.role,
            team: access.team.clone(),
            left: Vec::new(),
        });
        // Every reader's bootstrap is scoped: a supervisor's skips the households retired
        // from the phones (ADR 0025).
        let scoped = Some(auth.worker);
        let mut used = 0usize;
        if let Phase::Bootstrap { after } = cursor.phase {
            let high_water = if after.is_none() {
                self.store.high_water(auth.station)?
            } else {
                cursor.seq
            };
            let mut last = after;
            loop {
                let ids = self.store.list_documents(auth.station, last, 64, scoped)?;
                if ids.is_empty() {
                    cursor = Cursor {
                        epoch,
                        seq: high_water,
                        phase: Phase::Log,
                    };
                    // The bootstrap skipped every erasure entry before `high_water`: a
                    // device that held households before (a reset, a late answer to an old
                    // request) learns of all of them here.
                    for e in self.store.erasures(Some(auth.station))? {
                        if !resp.erasures.iter().any(|have| have.doc == e.doc) {
                            resp.erasures.push(e.notice());
                        }
                    }
                    // Likewise every scope entry before `high_water`: the households that
                    // left this worker's scope (a device that held them before — a late
                    // answer to its first request, a reset — removes them).
                    let mut gone = Vec::new();
                    for h in self.store.scope_exits(auth.worker)? {
                        if !self.store.in_scope(auth.worker, h)? {
                            gone.push(h);
                        }
                    }
                    if let Some(scope) = resp.scope.as_mut() {
                        scope.left = gone;
                    }
                    break;
                }
                let mut full = false;
                for id in ids {
                    // A document this request created is exactly what the device sent.
                    if created_here.contains(&id) {
                        last = Some(id);
                        continue;
                    }
                    let Some(bytes) = self.bootstrap_snapshot(id)? else {
                        continue;
                    };
                    if used > 0 && used + bytes.len() > budget {
                        full = true;
                        break;
                    }
                    used += bytes.len();
                    resp.snapshots.push(DocSnapshot {
                        doc: id,
                        bytes,
                        signatures: self.store.doc_signatures(id)?,
                    });
                    last = Some(id);
                }
                if full {
                    resp.cursor = Cursor {
                        epoch,
                        seq: high_water,
                        phase: Phase::Bootstrap { after: last },
                    };
                    resp.more = true;
                    // For the phone's progress: what the bootstrap has still to send (ids
                    // only, one indexed read per page).
                    resp.bootstrap_remaining = Some(
                        self.store
                            .list_documents(auth.station, last, REMAINING_COUNT_LIMIT, scoped)?
                            .len() as u64,
                    );
                    self.attach_notices(&mut resp)?;
                    resp.signers = self.directory(&resp)?;
                    return Ok((resp, known));
                }
            }
        }
        let page = self.store.read_log(
            auth.station,
            cursor.seq,
            LogReader {
                device: auth.device,
                worker: auth.worker,
            },
            budget.saturating_sub(used).max(1),
        )?;
        // Households that entered the worker's scope come whole: their log entries may be
        // older than the cursor. (The page holds at most a few dozen scope entries.)
        for id in &page.entered {
            if created_here.contains(id) || resp.snapshots.iter().any(|s| s.doc == *id) {
                continue;
            }
            if let Some(bytes) = self.bootstrap_snapshot(*id)? {
                resp.snapshots.push(DocSnapshot {
                    doc: *id,
                    bytes,
                    signatures: self.store.doc_signatures(*id)?,
                });
            }
        }
        // A redacted household comes whole with its notice: the generation and what
        // followed it (a device that missed part of what was redacted takes it from here;
        // ADR 0026).
        for notice in &page.redactions {
            self.forget(notice.doc);
            if !resp.snapshots.iter().any(|s| s.doc == notice.doc) {
                if let Some(bytes) = self.bootstrap_snapshot(notice.doc)? {
                    resp.snapshots.push(DocSnapshot {
                        doc: notice.doc,
                        bytes,
                        signatures: self.store.doc_signatures(notice.doc)?,
                    });
                }
            }
        }
        resp.redactions = page.redactions;
        if let Some(scope) = resp.scope.as_mut() {
            for h in &page.left {
                if !scope.left.contains(h) {
                    scope.left.push(*h);
                }
            }
        }
        // Grouped by document, each group's hashes beside it in `known` (the log keeps each
        // change's hash: the response's encoding need not compute them).
        let mut grouped: Vec<DocChanges> = Vec::new();
        for e in page.entries {
            match (grouped.last_mut(), known.last_mut()) {
                (Some(g), Some(k)) if g.doc == e.doc => {
                    g.changes.push(e.bytes);
                    k.hashes.push(e.hash.0);
                }
                _ => {
                    known.push(KnownHashes {
                        doc: e.doc,
                        hashes: vec![e.hash.0],
                    });
                    grouped.push(DocChanges {
                        doc: e.doc,
                        changes: vec![e.bytes],
                        signatures: Vec::new(),
                    })
                }
            }
        }
        // Each group carries the signatures that vouch for the changes it holds (a
        // signature over a change of a later page comes with that page). A document has a
        // signature per writer (few), checked against its group's hashes.
        debug_assert_eq!(grouped.len(), known.len());
        for (g, k) in grouped.iter_mut().zip(&known) {
            g.signatures = self
                .store
                .doc_signatures(g.doc)?
                .into_iter()
                .filter(|s| k.hashes.contains(&s.signature.hash.0))
                .collect();
        }
        resp.pull = grouped;
        for e in page.erasures {
            self.forget(e.doc);
            if !resp.erasures.iter().any(|have| have.doc == e.doc) {
                resp.erasures.push(e);
            }
        }
        resp.more = page.more;
        resp.cursor = Cursor {
            epoch,
            seq: page.last_seq,
            phase: Phase::Log,
        };
        self.attach_notices(&mut resp)?;
        resp.signers = self.directory(&resp)?;
        Ok((resp, known))
    }

    /// A push of an older generation of a redacted household is answered with the
    /// household's snapshot and latest notice (ADR 0034), whatever the log page held.
    pub(super) fn answer_superseded(
        &self,
        resp: &mut SyncResponse,
        superseded: &[HouseholdId],
    ) -> Result<(), SyncError> {
        let mut added = false;
        for doc in superseded {
            if resp.snapshots.iter().any(|s| s.doc == *doc) {
                continue;
            }
            if let Some(bytes) = self.bootstrap_snapshot(*doc)? {
                resp.snapshots.push(DocSnapshot {
                    doc: *doc,
                    bytes,
                    signatures: self.store.doc_signatures(*doc)?,
                });
                added = true;
            }
        }
        if added {
            self.attach_notices(resp)?;
            resp.signers = self.directory(resp)?;
        }
        Ok(())
    }

    /// Each redacted household whose snapshot `resp` carries comes with its latest
    /// redaction notice: a device holding an older generation takes the new one through it
    /// (ADR 0026).
    fn attach_notices(&self, resp: &mut SyncResponse) -> Result<(), SyncError> {
        for i in 0..resp.snapshots.len() {
            let doc = resp.snapshots[i].doc;
            if resp.redactions.iter().any(|n| n.doc == doc) {
                continue;
            }
            if let Some(n) = self.store.redaction_notice(doc)? {
                resp.redactions.push(n);
            }
        }
        Ok(())
    }

    /// The owners of the actors whose signatures `resp` carries (so the device can check
    /// them against the keys it pinned).
    fn directory(&self, resp: &SyncResponse) -> Result<Vec<Signer>, SyncError> {
        let actors: BTreeSet<&Vec<u8>> = resp
            .pull
            .iter()
            .flat_map(|d| d.signatures.iter())
            .chain(resp.snapshots.iter().flat_map(|d| d.signatures.iter()))
            .map(|s| &s.actor)
            .collect();
        let mut out = Vec::with_capacity(actors.len());
        for actor in actors {
            if let Some(s) = self.signer(actor)? {
                out.push(Signer {
                    actor: actor.clone(),
                    device: s.device,
                    worker: s.worker,
                    key: s.key,
                });
            }
        }
        Ok(out)
    }

    /// A document's snapshot for a bootstrap, in automerge's encoding without DEFLATE (the
    /// response is zstd-compressed as a whole; see `snapshot`); `None` if the server has no
    /// such document. A stored snapshot with no log entry after it is sent as stored,
    /// without loading the document; otherwise the cached copy, or the document loaded from
    /// the store (and then cached), is saved.
    fn bootstrap_snapshot(&self, id: HouseholdId) -> Result<Option<Vec<u8>>, SyncError> {
        let seq = self.store.document_seq(id)?;
        let hit = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(&id);
        let cached = match hit {
            Some(hit) if hit.seq == seq => hit,
            _ => {
                let Some(stored) = self.store.load_document(id)? else {
                    return Ok(None);
                };
                if let (Some(snap), true) = (&stored.snapshot, stored.changes.is_empty()) {
                    let bytes = snapshot::decode_stored(snap)
                        .map_err(|_| SyncError::StoredDocument)?
                        .into_owned();
                    return Ok(Some(bytes));
                }
                Self::loaded(&stored, seq)?
            }
        };
        let bytes = cached.doc.save_nocompress();
        self.put_back(id, cached);
        Ok(Some(bytes))
    }
}
