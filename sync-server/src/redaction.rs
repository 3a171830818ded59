//! Redacting inside a household's history (issue 15, ADR 0026): the household's document is
//! replaced by a new generation — its current state without the redacted fields or records,
//! written again with no history (`doorstep_core::doc::generation`) — through a ledger that
//! outlives the database, like erasure (ADR 0016).
//!
//! The ledger (`redactions.jsonl` beside the database, mode 0600) holds per redaction the
//! ids, the generation, what was redacted (`kind/record[/field]`: ids and field names), the
//! heads it was computed from and its own heads, when, who and a reason code — no personal
//! data. It is written before the database changes and re-applied when the server starts
//! and after `restore`, so a backup made before a redaction cannot bring the redacted
//! values back.

use automerge::ReadDoc;
use doorstep_core::doc::generation::{self, Redaction};
use doorstep_core::protocol::{ErasureReason, RedactionNotice};
use doorstep_core::{HouseholdId, StationId};
use serde::{Deserialize, Serialize};

use crate::erasure::{ErasureError, Ledger};
use crate::store::{ServerStore, StoreError};

/// The redaction ledger's file name in the data directory.
pub const LEDGER_FILE: &str = "redactions.jsonl";

/// One line of the redaction ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionEntry {
    pub station: String,
    pub household: String,
    pub generation: u32,
    /// `kind/record` or `kind/record/field`.
    pub items: Vec<String>,
    /// The heads the generation was computed from, and its own (hex).
    pub base: Vec<String>,
    pub heads: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub redacted_at: i64,
    pub redacted_by: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RedactionError {
    #[error("household {0} is not a household of this station")]
    NotInStation(HouseholdId),
    #[error("household {0} was erased")]
    Erased(HouseholdId),
    #[error("{0}")]
    Refused(String),
    #[error("the household kept changing; try again")]
    Busy,
    #[error(transparent)]
    Ledger(#[from] ErasureError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn hex(h: &automerge::ChangeHash) -> String {
    h.0.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<automerge::ChangeHash> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(automerge::ChangeHash(out))
}

/// The household's document as the server holds it, and its last log sequence.
fn current<S: ServerStore>(
    store: &S,
    station: StationId,
    household: HouseholdId,
) -> Result<(automerge::Automerge, u64), RedactionError> {
    if store.erasure(household)?.is_some() {
        return Err(RedactionError::Erased(household));
    }
    if store.document_station(household)? != Some(station) {
        return Err(RedactionError::NotInStation(household));
    }
    let seq = store.document_seq(household)?;
    let stored = store
        .load_document(household)?
        .ok_or(RedactionError::NotInStation(household))?;
    let doc = crate::snapshot::load_stored(&stored)
        .map_err(|_| RedactionError::Refused("the stored document does not load".into()))?;
    if !matches!(
        doorstep_core::doc::document_header(&doc),
        Ok((doorstep_core::doc::DocKind::Household, _, _))
    ) {
        return Err(RedactionError::Refused(
            "only a household's case file is redacted".into(),
        ));
    }
    Ok((doc, seq))
}

/// The next generation of `doc` without `items`, checked with the phones' own validator.
fn generate(
    doc: &automerge::Automerge,
    household: HouseholdId,
    items: &[Redaction],
    number: u32,
) -> Result<generation::Generation, RedactionError> {
    let g = generation::build(doc, household, items, number).map_err(|e| {
        RedactionError::Refused(match e {
            doorstep_core::Error::NotFound(_) => {
                "a record or field it names is not in the household".into()
            }
            other => other.to_string(),
        })
    })?;
    doorstep_core::doc::verify::validate(&g.doc).map_err(|_| {
        RedactionError::Refused(
            "redacting that would leave a record unreadable (a required field): remove the \
             record instead"
                .into(),
        )
    })?;
    Ok(g)
}

/// Redact a household of a station: the ledger first, then the database; the console's
/// read model is read again from the new generation. Retried if a device's push lands
/// between reading the household and writing its generation.
#[allow(clippy::too_many_arguments)]
pub fn redact<S: ServerStore>(
    store: &S,
    ledger: &Ledger,
    station: StationId,
    household: HouseholdId,
    items: &[Redaction],
    reason: ErasureReason,
    redacted_by: &str,
    now_ms: i64,
) -> Result<RedactionNotice, RedactionError> {
    if items.is_empty() || items.len() > doorstep_core::protocol::MAX_REDACTION_ITEMS {
        return Err(RedactionError::Refused(
            "name 1 to 256 things to redact".into(),
        ));
    }
    for _ in 0..5 {
        let (doc, seq) = current(store, station, household)?;
        let number = generation::generation_of(&doc, household) + 1;
        let g = generate(&doc, household, items, number)?;
        let notice = RedactionNotice {
            doc: household,
            generation: number,
            reason,
            redacted_at: now_ms,
            base: doc.get_heads(),
            clock: clock(&doc),
            heads: g.doc.get_heads(),
            items: items.iter().map(ToString::to_string).collect(),
            earlier: earlier_clocks(store, household, number)?,
        };
        ledger.append(&entry(station, &notice, redacted_by))?;
        match store.redact_document(
            station,
            &notice,
            &crate::snapshot::encode_stored(&g.doc),
            seq,
            &kept_blobs(&g.doc, household)?,
        ) {
            Ok(_) => {
                refresh(store, household);
                tracing::info!(station = %station, household = %household, generation = number, items = items.len(), reason = reason.as_str(), "household redacted");
                return Ok(notice);
            }
            // A push landed meanwhile: its changes are in the next attempt's state. The
            // ledger line of this attempt names heads the database never had: re-applying
            // it computes from what the database holds (see `reapply`).
            Err(StoreError::Conflict("the household changed meanwhile")) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(RedactionError::Busy)
}

/// The hashes the generation's attachments name: the server keeps their bytes, and drops
/// the household's hold on any other (ADR 0029).
fn kept_blobs(
    doc: &automerge::Automerge,
    household: HouseholdId,
) -> Result<Vec<doorstep_core::BlobHash>, RedactionError> {
    Ok(
        doorstep_core::doc::attachments::referenced_hashes(doc, household)
            .map_err(|_| {
                RedactionError::Refused("the generation's attachments do not read".into())
            })?
            .into_iter()
            .collect(),
    )
}

/// Per actor, the last sequence number of its changes in `doc`.
fn clock(doc: &automerge::Automerge) -> Vec<(Vec<u8>, u64)> {
    let mut out: std::collections::BTreeMap<Vec<u8>, u64> = Default::default();
    for m in doc.get_changes_meta(&[]) {
        let seq = out.entry(m.actor.to_bytes().to_vec()).or_default();
        *seq = (*seq).max(m.seq);
    }
    out.into_iter().collect()
}

/// The clocks of the household's earlier generations, from the notice of the last one
/// (read before the new notice replaces it in the log): a phone that skipped a generation
/// needs the clock of the one after the generation it holds (ADR 0034). Only generations
/// before `number`, in order.
fn earlier_clocks<S: ServerStore>(
    store: &S,
    household: HouseholdId,
    number: u32,
) -> Result<Vec<doorstep_core::protocol::GenerationClock>, RedactionError> {
    Ok(store
        .redaction_notice(household)?
        .map(|n| n.clocks_so_far())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.generation < number)
        .collect())
}

fn entry(station: StationId, n: &RedactionNotice, by: &str) -> RedactionEntry {
    RedactionEntry {
        station: station.to_string(),
        household: n.doc.to_string(),
        generation: n.generation,
        items: n.items.clone(),
        base: n.base.iter().map(hex).collect(),
        heads: n.heads.iter().map(hex).collect(),
        redacted_at: n.redacted_at,
        redacted_by: by.to_owned(),
        reason: n.reason.as_str().to_owned(),
    }
}

fn refresh<S: ServerStore>(store: &S, household: HouseholdId) {
    if let Err(e) = crate::console::read_model::refresh_one(store, household) {
        tracing::warn!(household = %household, error = %e, "read model not updated after a redaction");
    }
}

/// Apply every ledger entry the database lacks (after a restore, or a redaction cut short):
/// the household's generation is below the entry's. Where the database holds the heads the
/// entry was computed from, the generation is computed from them and is the one the devices
/// hold; otherwise (a backup older than the last changes before the redaction) it is
/// computed from what the database holds, so the redacted values go all the same. Returns
/// how many were applied.
pub fn reapply<S: ServerStore>(store: &S, ledger: &Ledger) -> Result<usize, RedactionError> {
    let mut applied = 0;
    for e in ledger.entries::<RedactionEntry>()? {
        let bad = |what: &str| RedactionError::Ledger(ledger.error(what));
        let station = StationId::parse(&e.station).map_err(|_| bad("bad station id"))?;
        let household = HouseholdId::parse(&e.household).map_err(|_| bad("bad household id"))?;
        let items = e
            .items
            .iter()
            .map(|i| Redaction::parse(i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad("bad redaction item"))?;
        let base: Vec<automerge::ChangeHash> = e.base.iter().filter_map(|h| unhex(h)).collect();
        let (doc, seq) = match current(store, station, household) {
            Ok(c) => c,
            // Erased since, or never in this database (a backup older than the household).
            Err(RedactionError::Erased(_) | RedactionError::NotInStation(_)) => continue,
            Err(RedactionError::Store(StoreError::NotFound(_))) => continue,
            Err(err) => return Err(err),
        };
        if generation::generation_of(&doc, household) >= e.generation {
            continue;
        }
        let holds_base =
            base.len() == e.base.len() && base.iter().all(|h| doc.get_change_by_hash(h).is_some());
        let from = if holds_base {
            doc.fork_at(&base)
                .map_err(|_| RedactionError::Refused("the ledger's heads do not load".into()))?
        } else {
            tracing::warn!(household = %household, generation = e.generation, "redaction re-applied to an older copy than it was made from: devices that hold the newer generation keep it quarantined");
            doc.clone()
        };
        let g = match generate(&from, household, &items, e.generation) {
            Ok(g) => g,
            // What it named is not in this (older) copy: nothing of it to redact here.
            Err(RedactionError::Refused(_)) => continue,
            Err(err) => return Err(err),
        };
        let notice = RedactionNotice {
            doc: household,
            generation: e.generation,
            reason: ErasureReason::parse(&e.reason).unwrap_or(ErasureReason::Other),
            redacted_at: e.redacted_at,
            base: from.get_heads(),
            clock: clock(&from),
            heads: g.doc.get_heads(),
            items: e.items.clone(),
            earlier: earlier_clocks(store, household, e.generation)?,
        };
        store.redact_document(
            station,
            &notice,
            &crate::snapshot::encode_stored(&g.doc),
            seq,
            &kept_blobs(&g.doc, household)?,
        )?;
        refresh(store, household);
        applied += 1;
    }
    if applied > 0 {
        tracing::info!(applied, "redactions re-applied from the ledger");
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_through_hex() {
        let h = automerge::ChangeHash([0xab; 32]);
        assert_eq!(unhex(&hex(&h)), Some(h));
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(&"g".repeat(64)), None);
    }
}
