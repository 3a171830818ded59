//! Households the server redacted (issue 15, ADR 0026): this device replaces its copy by
//! the new generation — computed here from its own copy when it holds the server's `base`,
//! and taken only if its heads are the server's (the device witnesses the redaction) — and
//! rebases its unsynced edits onto it. The old history goes: changes, signatures, held
//! items, index and search rows, the bytes of attachments no reference names any more (ADR
//! 0029), and the freed pages are scrubbed as after an erasure.

use automerge::Automerge;

use super::*;
use crate::doc::generation::{self, Redaction};
use crate::protocol::{ErasureReason, RedactionNotice};

/// A household this device held that the server redacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedactedHousehold {
    pub household: HouseholdId,
    pub generation: u32,
    pub reason: ErasureReason,
    /// When the server redacted it (the server's clock).
    pub redacted_at: Timestamp,
    /// Whether this device computed the generation from its own copy and found the
    /// server's (`false`: it did not hold everything the server redacted from, and took the
    /// server's generation as it came).
    pub witnessed: bool,
    /// This device's unsynced edits that fell on what was redacted, discarded.
    pub discarded_edits: u32,
}

fn sorted(mut h: Vec<ChangeHash>) -> Vec<ChangeHash> {
    h.sort();
    h
}

/// Apply one redaction notice inside the response's transaction. `None` when this device
/// does not hold the household (its snapshot, in the same response, brings the generation)
/// or already holds that generation. `snapshot` is the household's snapshot from the same
/// response, if any; `server_heads`, the heads the server last acknowledged (read before
/// an epoch reset in the same response forgot them).
pub(super) fn redact_in(
    tx: &Connection,
    cache: &mut DocCache,
    actor: &ActorId,
    notice: &RedactionNotice,
    snapshot: Option<&[u8]>,
    cursor_seq: u64,
    server_heads: &[ChangeHash],
) -> Result<Option<RedactedHousehold>> {
    let id = notice.doc;
    let old: Automerge = match load(tx, cache, id, actor) {
        Ok(doc) => doc.clone(),
        Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let held = generation::generation_of(&old, id);
    if held >= notice.generation {
        return Ok(None);
    }
    let items = notice
        .items
        .iter()
        .map(|i| Redaction::parse(i))
        .collect::<Result<Vec<_>>>()
        .map_err(|_| Error::MalformedDocument("a redaction this version cannot read".into()))?;
    let witnessed = notice
        .base
        .iter()
        .all(|h| old.get_change_by_hash(h).is_some());
    let (mut onto, base) = if witnessed {
        let at_base = contained(|| Ok(old.fork_at(&notice.base)?))?;
        let g = contained(|| generation::build(&at_base, id, &items, notice.generation))?;
        if sorted(g.doc.get_heads()) != sorted(notice.heads.clone()) {
            return Err(Error::MalformedDocument(
                "the server's redaction does not match this device's copy".into(),
            ));
        }
        (g.doc, notice.base.clone())
    } else {
        // This device missed some of what the server redacted from: it takes the server's
        // generation as it came (as a new device does) and rebases onto it what the server
        // never had.
        let bytes = snapshot.ok_or(Error::MalformedDocument(
            "a redaction without its generation".into(),
        ))?;
        let bytes = crate::protocol::decode_snapshot(bytes)
            .map_err(|_| Error::MalformedDocument("snapshot is not a valid zstd frame".into()))?;
        let theirs = contained(|| doc::load_document(&bytes, actor))?;
        if generation::generation_of(&theirs, id) != notice.generation
            || notice
                .heads
                .iter()
                .any(|h| theirs.get_change_by_hash(h).is_none())
        {
            return Err(Error::MalformedDocument(
                "a redaction whose generation did not come with it".into(),
            ));
        }
        // What this device can check of a generation it did not compute (ADR 0034): that
        // it is a state and nothing else, and credits this device with nothing it did not
        // write.
        contained(|| doc::generation_check::check_canonical(&theirs, id))?;
        let device = meta_get(tx, "device_id")?
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(Error::Damaged)?;
        contained(|| doc::generation_check::check_own_words(&old, actor, &theirs, id, &device))?;
        // What the server held of this copy is told by the clock of the generation after
        // the one it is of: a device that skipped a generation holds changes the latest
        // clock does not describe (finding 13).
        let clock = notice.clock_of(held + 1).unwrap_or_default();
        (theirs, held_at_base(&old, clock, server_heads))
    };
    let rebased = contained(|| generation::rebase(&old, &base, &mut onto, id, actor, !witnessed))?;
    onto.set_actor(actor.clone());
    // The old history goes; the generation (and the rebased edits) is the document now.
    let h = id.to_string();
    cache.evict(&id);
    for table in ["changes", "signatures", "held", "quarantine"] {
        tx.execute(&format!("DELETE FROM {table} WHERE doc_id = ?1"), [&h])?;
    }
    tx.execute(
        "UPDATE documents SET snapshot = ?2, pending_compaction = 0, pending_bytes = 0, unreadable = 0 WHERE doc_id = ?1",
        params![h, onto.save()],
    )?;
    index::remove(tx, id)?;
    index::update_received(tx, &onto, id, &doc::verify::Scope::Everything)?;
    // Bytes no reference of the generation names go with the old history (ADR 0029).
    let kept = doc::attachments::referenced_hashes(&onto, id)?;
    super::attachments::release_unreferenced(tx, id, &kept)?;
    // The visits' upload rows named old changes: point them at what is left to upload.
    super::status::rebased(tx, &onto, id, &notice.heads, actor)?;
    // The server holds the generation: what this device rebased onto it is unsynced.
    super::sync::set_server_state(tx, &onto, id, &notice.heads)?;
    meta_put(tx, "scrub_pending", &[1])?;
    meta_put(tx, &generation_key(id), &cursor_seq.to_be_bytes())?;
    cache.insert(id, onto);
    Ok(Some(RedactedHousehold {
        household: id,
        generation: notice.generation,
        reason: notice.reason,
        redacted_at: Timestamp(notice.redacted_at),
        witnessed,
        discarded_edits: u32::try_from(rebased.dropped).unwrap_or(u32::MAX),
    }))
}

/// The heads of what this device holds that the server held when it redacted the
/// generation `old` is of: every change within `clock` (the server's at the base of the next
/// generation; an actor's changes form one chain), and what the server acknowledged. A
/// change the server had but never acknowledged (its answer was lost) is within the clock:
/// it is not written again onto the generation. Without a clock (a server that did not
/// say), only what it acknowledged.
fn held_at_base(
    old: &Automerge,
    clock: &[(Vec<u8>, u64)],
    server_heads: &[ChangeHash],
) -> Vec<ChangeHash> {
    let clock: std::collections::HashMap<&[u8], u64> =
        clock.iter().map(|(a, s)| (a.as_slice(), *s)).collect();
    let acknowledged: std::collections::HashSet<ChangeHash> = {
        let server = super::sync::known(old, server_heads);
        let mut covered: std::collections::HashSet<ChangeHash> = Default::default();
        let mut stack = server;
        while let Some(h) = stack.pop() {
            if covered.insert(h) {
                if let Some(c) = old.get_change_by_hash(&h) {
                    stack.extend(c.deps().iter().copied());
                }
            }
        }
        covered
    };
    let within: Vec<automerge::ChangeMetadata<'_>> = old
        .get_changes_meta(&[])
        .into_iter()
        .filter(|m| {
            acknowledged.contains(&m.hash)
                || clock.get(m.actor.to_bytes()).is_some_and(|s| m.seq <= *s)
        })
        .collect();
    let deps: std::collections::HashSet<ChangeHash> =
        within.iter().flat_map(|m| m.deps.iter().copied()).collect();
    within
        .iter()
        .map(|m| m.hash)
        .filter(|h| !deps.contains(h))
        .collect()
}

fn generation_key(id: HouseholdId) -> String {
    format!("generation_at:{id}")
}

/// Whether a response for log position `cursor_seq` predates the redaction this device
/// took for `id` (a late answer to an older request): what it says of the household is of
/// the old generation — changes and snapshots that would bring redacted values back, an
/// acknowledgement of heads that are gone — and is ignored.
pub(super) fn predates_generation(
    conn: &Connection,
    id: HouseholdId,
    cursor_seq: u64,
) -> Result<bool> {
    Ok(meta_get(conn, &generation_key(id))?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .is_some_and(|b| cursor_seq < u64::from_be_bytes(b)))
}

/// After a snapshot: if the household is in a redacted generation and this device has not
/// marked when it took one, mark it now (`predates_generation`).
pub(super) fn met_generation(
    tx: &Connection,
    cache: &mut DocCache,
    actor: &ActorId,
    id: HouseholdId,
    cursor_seq: u64,
) -> Result<()> {
    if meta_get(tx, &generation_key(id))?.is_some() {
        return Ok(());
    }
    let doc = load(tx, cache, id, actor)?;
    if generation::generation_of(doc, id) > 0 {
        meta_put(tx, &generation_key(id), &cursor_seq.to_be_bytes())?;
    }
    Ok(())
}
