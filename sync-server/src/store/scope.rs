//! Need-to-know (issue 16, ADR 0019): what the stores share about roles, teams and caseload
//! assignments — the records, the log entries that tell a worker's devices a household
//! entered or left their scope, and the assembly of a log page for one reader (both
//! backends read rows the same way; only their SQL differs).
//!
//! A scope entry is a `change_log` row of kind [`KIND_SCOPE`]: `doc_id` is the household,
//! `origin_device` names the *worker* the entry is for (not a device), `bytes` are one
//! byte (1 entered, 2 left) and the time (8 bytes, big-endian). Assignments, roles and
//! teams write entries for workers of role `worker` only: a supervisor sees the station, a
//! county account no caseload. Phone retention (ADR 0025) writes them for supervisors too:
//! a household retired from the phones leaves every phone that held it, and comes back to
//! every phone that should see it when it is reopened.

use std::collections::{BTreeSet, HashSet};

use doorstep_core::{HouseholdId, Role, StationId, TeamName, WorkerId};

use super::{
    erasure_from_entry, LogEntry, LogPage, StoreError, StoreResult, KIND_CHANGE, KIND_ERASURE,
    KIND_REDACTION,
};

/// A scope entry (see the module's documentation).
pub(crate) const KIND_SCOPE: i64 = 3;

/// At most this many scope entries in one page: each entering household costs its snapshot
/// in the response, which the page's byte budget does not see.
pub(crate) const MAX_SCOPE_ENTRIES_PER_PAGE: usize = 64;

/// Whom a household is assigned to. A household with neither a worker nor a team is seen
/// by supervisors only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub doc: HouseholdId,
    pub station: StationId,
    pub worker: Option<WorkerId>,
    pub team: Option<TeamName>,
    pub assigned_at: i64,
    /// `creation` (assigned to its creator), `cli`, a console account id, `migration`.
    pub assigned_by: String,
}

/// A household's phone retention (ADR 0025): when it was last taken off the phones, and
/// when it was last brought back. Retired while `reopened_at` is `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retirement {
    pub retired_at: i64,
    pub reopened_at: Option<i64>,
}

impl Retirement {
    /// Whether the household is off the phones now.
    pub fn retired(&self) -> bool {
        self.reopened_at.is_none()
    }
}

/// What filters a log read or a bootstrap for one reader (documents' stored ids; the
/// station document is always visible).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReaderScope {
    /// A supervisor: the station, except the households retired from the phones.
    Station { retired: HashSet<String> },
    /// A worker: their caseload and the station's work; a county account: nothing.
    Only(HashSet<String>),
}

impl ReaderScope {
    pub fn contains(&self, doc: &str) -> bool {
        match self {
            ReaderScope::Station { retired } => !retired.contains(doc),
            ReaderScope::Only(s) => s.contains(doc),
        }
    }
}

/// A reader's scope answered one document at a time, for the documents a log page meets
/// (a backend's lookup in the page's own read): a page of a few changes costs a few
/// lookups, not the worker's whole caseload. A backend may read the whole scope once a
/// page has asked about many documents.
pub(crate) trait ScopeLookup {
    /// Whether the reader sees `doc` (a stored id; not the station document).
    fn sees(&mut self, doc: &str) -> StoreResult<bool>;
}

/// How a page decides what its reader sees.
pub(crate) enum PageScope<'a> {
    /// Read whole before the page.
    Known(ReaderScope),
    /// Looked up per document, each answer kept for the page.
    Lookup(
        Box<dyn ScopeLookup + 'a>,
        std::collections::HashMap<String, bool>,
    ),
}

impl<'a> PageScope<'a> {
    pub fn lookup(l: impl ScopeLookup + 'a) -> PageScope<'a> {
        PageScope::Lookup(Box::new(l), Default::default())
    }

    fn sees(&mut self, doc: &str) -> StoreResult<bool> {
        match self {
            PageScope::Known(s) => Ok(s.contains(doc)),
            PageScope::Lookup(l, seen) => {
                if let Some(&v) = seen.get(doc) {
                    return Ok(v);
                }
                let v = l.sees(doc)?;
                seen.insert(doc.to_owned(), v);
                Ok(v)
            }
        }
    }
}

/// What a worker may see: their station, role and team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerAccess {
    pub station: StationId,
    pub role: Role,
    pub team: Option<TeamName>,
}

/// The last time a household left a worker's scope (and has not come back since).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScopeExit {
    /// The log sequence of the entry that told the worker's devices.
    pub seq: u64,
    /// When (server clock, ms).
    pub at: i64,
}

/// What a change of role, team or assignment did to the scopes of a station's workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rescoped {
    /// Scope entries written: households that entered some worker's scope...
    pub entered: usize,
    /// ...and that left one.
    pub left: usize,
}

/// How long a worker's devices may still push to a household that left their scope, after
/// they were told (edits made while the answer that told them was on its way, retried after
/// a lost connection). Before they are told (their cursor, and the furthest position the
/// server answered them with, are before the entry), they always may.
pub const HANDOVER_GRACE_MS: i64 = 24 * 60 * 60 * 1000;

/// A team name as stored (checked again on the way out, like every stored value).
pub(crate) fn stored_team(team: Option<&str>) -> StoreResult<Option<TeamName>> {
    team.map(TeamName::new)
        .transpose()
        .map_err(|_| StoreError::Database("malformed team in database".into()))
}

pub(crate) fn scope_entry_bytes(entered: bool, at: i64) -> Vec<u8> {
    let mut b = vec![if entered { 1 } else { 2 }];
    b.extend_from_slice(&at.to_be_bytes());
    b
}

/// (entered, at) of a scope entry.
pub(crate) fn scope_from_entry(bytes: &[u8]) -> StoreResult<(bool, i64)> {
    match bytes {
        [dir @ (1 | 2), at @ ..] if at.len() == 8 => {
            let mut t = [0u8; 8];
            t.copy_from_slice(at);
            Ok((*dir == 1, i64::from_be_bytes(t)))
        }
        _ => Err(StoreError::Database(
            "malformed scope entry in the log".into(),
        )),
    }
}

/// The households whose last entry (rows in sequence order: household id, entry bytes) says
/// they left.
pub(crate) fn last_exits(rows: Vec<(String, Vec<u8>)>) -> StoreResult<Vec<HouseholdId>> {
    let mut last: std::collections::BTreeMap<String, bool> = Default::default();
    for (doc, bytes) in rows {
        last.insert(doc, scope_from_entry(&bytes)?.0);
    }
    let mut out = Vec::new();
    for (doc, entered) in last {
        if !entered {
            out.push(
                HouseholdId::parse(&doc)
                    .map_err(|_| StoreError::Database("malformed id in the log".into()))?,
            );
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a worker of `role` in `team` sees a household assigned to `assigned`.
pub(crate) fn covers(
    worker: &str,
    role: Role,
    team: Option<&str>,
    assigned_worker: Option<&str>,
    assigned_team: Option<&str>,
) -> bool {
    match role {
        Role::Supervisor => true,
        Role::County => false,
        Role::Worker => {
            assigned_worker == Some(worker) || (team.is_some() && assigned_team == team)
        }
    }
}

/// Whether a worker of `role` sees a document of stored `kind` assigned to `assigned`:
/// station work (`activity`, `resource`; ADR 0021) is every worker's and supervisor's of
/// the station, never a county account's, and no assignment moves it; households follow
/// [`covers`].
pub(crate) fn covers_document(
    worker: &str,
    role: Role,
    team: Option<&str>,
    kind: &str,
    assigned_worker: Option<&str>,
    assigned_team: Option<&str>,
) -> bool {
    if is_station_work(kind) {
        return role != Role::County;
    }
    covers(worker, role, team, assigned_worker, assigned_team)
}

/// Whether a stored `documents.kind` is station work (ADR 0021).
pub(crate) fn is_station_work(kind: &str) -> bool {
    matches!(
        doorstep_core::doc::DocKind::from_stored(kind),
        Some(doorstep_core::doc::DocKind::Work(_))
    )
}

/// The stored kinds of station work, as an SQL list (both backends).
pub(crate) const STATION_WORK_SQL: &str = "('activity', 'resource', 'survey')";

/// One worker of a station as the scope computations need it (ids as stored).
#[derive(Clone, Debug)]
pub(crate) struct ScopedWorker {
    pub id: String,
    pub role: Role,
    pub team: Option<String>,
}

/// The scope entries an assignment change writes: (worker, entered) for every worker of
/// role `worker` whose view of the household changes.
pub(crate) fn assignment_entries(
    workers: &[ScopedWorker],
    before: Option<(Option<&str>, Option<&str>)>,
    after: (Option<&str>, Option<&str>),
) -> Vec<(String, bool)> {
    workers
        .iter()
        .filter(|w| w.role == Role::Worker)
        .filter_map(|w| {
            let was =
                before.is_some_and(|(bw, bt)| covers(&w.id, w.role, w.team.as_deref(), bw, bt));
            let is = covers(&w.id, w.role, w.team.as_deref(), after.0, after.1);
            (was != is).then(|| (w.id.clone(), is))
        })
        .collect()
}

/// The scope entries retiring a household from the phones (`entered` false) or reopening it
/// (`entered` true) writes: one for every worker of any role who sees it by role,
/// assignment and team (`assigned`: its assignment's worker and team).
pub(crate) fn retirement_entries(
    workers: &[ScopedWorker],
    assigned: (Option<&str>, Option<&str>),
    entered: bool,
) -> Vec<(String, bool)> {
    workers
        .iter()
        .filter(|w| covers(&w.id, w.role, w.team.as_deref(), assigned.0, assigned.1))
        .map(|w| (w.id.clone(), entered))
        .collect()
}

/// The scope entries a change of one worker's role or team writes: (household, entered).
/// Entries are written for workers of role `worker` only, so a worker who becomes a
/// supervisor gets "entered" for what they lacked, and one who stops being one "left" for
/// what they no longer see.
pub(crate) fn rescope_entries(
    before: &HashSet<String>,
    after: &HashSet<String>,
) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = after
        .difference(before)
        .map(|d| (d.clone(), true))
        .chain(before.difference(after).map(|d| (d.clone(), false)))
        .collect();
    out.sort();
    out
}

/// Who reads a log page: the device (its own entries are skipped) and its worker (whose
/// scope filters the page, unless the worker sees the station, and whose scope entries say
/// what entered or left it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogReader {
    pub device: doorstep_core::DeviceId,
    pub worker: WorkerId,
}

/// Assembles a page from log rows in sequence order, for one reader.
pub(crate) struct PageBuilder<'a> {
    page: LogPage,
    size: usize,
    budget: usize,
    me: String,
    station_doc: String,
    /// The reader's scope as of the page's read.
    scope: PageScope<'a>,
    worker: String,
    touched: BTreeSet<HouseholdId>,
    scope_entries: usize,
}

/// A log row as both backends read it.
pub(crate) struct Row<'a> {
    pub seq: i64,
    pub kind: i64,
    pub doc: &'a str,
    pub origin: &'a str,
}

impl<'a> PageBuilder<'a> {
    pub fn new(
        station: StationId,
        after: u64,
        reader: LogReader,
        scope: PageScope<'a>,
        budget: usize,
    ) -> PageBuilder<'a> {
        PageBuilder {
            page: LogPage {
                last_seq: after,
                ..LogPage::default()
            },
            size: 0,
            budget,
            me: reader.device.to_string(),
            station_doc: station.to_string(),
            scope,
            worker: reader.worker.to_string(),
            touched: BTreeSet::new(),
            scope_entries: 0,
        }
    }

    fn visible(&mut self, doc: &str) -> StoreResult<bool> {
        if doc == self.station_doc {
            return Ok(true);
        }
        self.scope.sees(doc)
    }

    /// Take one row; `bytes` and `hash` are read only when the row is used. False: the page
    /// is full (the row is not taken; `more` is set).
    pub fn take(
        &mut self,
        row: Row<'_>,
        bytes: impl FnOnce() -> StoreResult<Vec<u8>>,
        hash: impl FnOnce() -> StoreResult<automerge::ChangeHash>,
    ) -> StoreResult<bool> {
        // Only a change of another device or a redaction asks what the reader sees.
        let asks = match row.kind {
            KIND_CHANGE => row.origin != self.me,
            KIND_REDACTION => true,
            _ => false,
        };
        let visible = asks && self.visible(row.doc)?;
        match row.kind {
            KIND_ERASURE => {
                self.size += 32;
                let doc = parse_doc(row.doc)?;
                self.page.erasures.push(erasure_from_entry(doc, &bytes()?)?);
            }
            KIND_REDACTION if visible => {
                self.size += 128;
                let notice =
                    doorstep_core::protocol::RedactionNotice::decode(&bytes()?).map_err(|_| {
                        StoreError::Database("malformed redaction entry in the log".into())
                    })?;
                self.page.redactions.retain(|n| n.doc != notice.doc);
                self.page.redactions.push(notice);
            }
            KIND_CHANGE if visible => {
                let bytes = bytes()?;
                if self.size > 0 && self.size + bytes.len() > self.budget {
                    self.page.more = true;
                    return Ok(false);
                }
                self.size += bytes.len();
                self.page.entries.push(LogEntry {
                    seq: row.seq as u64,
                    doc: parse_doc(row.doc)?,
                    hash: hash()?,
                    bytes,
                });
            }
            KIND_SCOPE if self.worker == row.origin => {
                if self.scope_entries == MAX_SCOPE_ENTRIES_PER_PAGE {
                    self.page.more = true;
                    return Ok(false);
                }
                self.scope_entries += 1;
                self.size += 16;
                self.touched.insert(parse_doc(row.doc)?);
            }
            _ => {}
        }
        self.page.last_seq = row.seq as u64;
        Ok(true)
    }

    /// The page; each household a scope entry touched is sorted by the scope the page was
    /// read with (not by the entry: a later entry may have undone it, and the device must end
    /// up holding exactly what it may see).
    pub fn finish(mut self) -> StoreResult<LogPage> {
        for doc in std::mem::take(&mut self.touched) {
            if self.visible(&doc.to_string())? {
                self.page.entered.push(doc);
            } else {
                self.page.left.push(doc);
            }
        }
        Ok(self.page)
    }

    /// Widen a page's scope read whole with the answers for more documents (read in the
    /// same snapshot: a backend that reads the log in chunks reads each chunk's scope).
    pub fn see(&mut self, more: ReaderScope) {
        match (&mut self.scope, more) {
            (PageScope::Known(ReaderScope::Only(have)), ReaderScope::Only(more)) => {
                have.extend(more)
            }
            (scope, more) => *scope = PageScope::Known(more),
        }
    }

    pub fn set_more(&mut self) {
        self.page.more = true;
    }
}

fn parse_doc(s: &str) -> StoreResult<HouseholdId> {
    HouseholdId::parse(s).map_err(|_| StoreError::Database("malformed id in the log".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: &str, role: Role, team: Option<&str>) -> ScopedWorker {
        ScopedWorker {
            id: id.into(),
            role,
            team: team.map(Into::into),
        }
    }

    #[test]
    fn reassignment_tells_exactly_the_workers_whose_view_changes() {
        let workers = [
            w("a", Role::Worker, Some("north")),
            w("b", Role::Worker, Some("north")),
            w("c", Role::Worker, None),
            w("s", Role::Supervisor, None),
        ];
        // Created by a (team north): b sees it too; nobody is told (no entry for creation).
        // a → c, no team: a and b leave, c enters; the supervisor is never told.
        let mut got = assignment_entries(
            &workers,
            Some((Some("a"), Some("north"))),
            (Some("c"), None),
        );
        got.sort();
        assert_eq!(
            got,
            vec![("a".into(), false), ("b".into(), false), ("c".into(), true)]
        );
        // First assignment of an unassigned household: those who now see it enter.
        assert_eq!(
            assignment_entries(&workers, None, (Some("c"), None)),
            vec![("c".into(), true)]
        );
        // Same view before and after: nothing.
        assert!(assignment_entries(
            &workers,
            Some((Some("a"), Some("north"))),
            (Some("b"), Some("north"))
        )
        .is_empty());
    }

    #[test]
    fn retirement_tells_every_worker_who_sees_the_household_supervisors_included() {
        let workers = [
            w("a", Role::Worker, Some("north")),
            w("b", Role::Worker, Some("north")),
            w("c", Role::Worker, None),
            w("s", Role::Supervisor, None),
            w("k", Role::County, None),
        ];
        let mut got = retirement_entries(&workers, (Some("a"), None), false);
        got.sort();
        assert_eq!(got, vec![("a".into(), false), ("s".into(), false)]);
        let mut got = retirement_entries(&workers, (None, Some("north")), true);
        got.sort();
        assert_eq!(
            got,
            vec![("a".into(), true), ("b".into(), true), ("s".into(), true)]
        );
        // Retired households are in nobody's view; a supervisor's scope skips them.
        let scope = ReaderScope::Station {
            retired: ["x".to_string()].into_iter().collect(),
        };
        assert!(!scope.contains("x") && scope.contains("y"));
    }

    #[test]
    fn scope_entries_round_trip_and_refuse_garbage() {
        assert_eq!(
            scope_from_entry(&scope_entry_bytes(true, 5)).unwrap(),
            (true, 5)
        );
        assert_eq!(
            scope_from_entry(&scope_entry_bytes(false, -1)).unwrap(),
            (false, -1)
        );
        assert!(scope_from_entry(&[3, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(scope_from_entry(&[1]).is_err());
    }

    #[test]
    fn rescoping_lists_both_directions() {
        let before: HashSet<String> = ["x", "y"].iter().map(|s| s.to_string()).collect();
        let after: HashSet<String> = ["y", "z"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            rescope_entries(&before, &after),
            vec![("x".into(), false), ("z".into(), true)]
        );
    }
}
