//! The store on the phone: one encrypted SQLite file per signed-in worker holding the
//! household documents (a durable change log plus snapshots) and the query index.
//!
//! Every user action is one SQLite transaction that appends the automerge change, updates
//! the index and marks the document as unsynced; when the call returns Ok the action is on
//! disk (WAL, `synchronous=FULL`).

mod access;
mod attachments;
mod cache;
mod cards;
mod caseload;
mod compaction;
pub(crate) mod db;
mod erasure;
pub(crate) mod index;
mod labels;
mod person_details;
mod query;
pub use query::trigram_query;
mod redaction;
pub(crate) mod schema;
pub mod sqlcipher;
mod station_work;
mod status;
mod surveys;
mod sync;
mod text_pending;
mod visit_opening;
mod vocabulary;
mod wal;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use automerge::transaction::{CommitOptions, Transaction};
use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc};
use rusqlite::{params, Connection, OptionalExtension};

pub use access::CaseFileAccess;
pub use attachments::{AttachmentSource, AttachmentUpload, AttachmentUploadState};
pub use cards::{CardStock, DuplicateCard, NewCard};
pub use caseload::{DepartedHousehold, Gone};
pub use db::{Durability, StoreKey};
pub use erasure::ErasedHousehold;
pub use person_details::VisitDue;
pub use query::*;
pub use redaction::RedactedHousehold;
pub use status::{refusal_reason, RefusedHousehold, UploadStatus};
pub use sync::{Quarantined, SyncOutcome};
pub use visit_opening::{OpenedVisit, VisitOpening};
pub use vocabulary::CategoryCount;

use crate::doc::{self, conflicts, write};
use crate::error::{Error, Result};
use crate::model::ids::*;
use crate::model::policy::EntityKind;
use crate::model::provenance::*;
use crate::model::records::*;
use crate::model::time::Timestamp;
use crate::model::values::normalise_line_breaks as lines;
use crate::model::values::*;
use crate::model::vocabulary::CategoryPlace;
use cache::DocCache;
use compaction::{compact, Compaction};
use index::Scope;
use uuid::Uuid;

/// A source of "now" for provenance; injectable so tests and simulations are repeatable.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// How to open a store.
#[derive(Clone)]
pub struct StoreOptions {
    pub path: PathBuf,
    pub key: StoreKey,
    /// The signed-in worker: author of every write made through this store.
    pub worker: WorkerId,
    /// The worker's station: new households belong to it.
    pub station: StationId,
    /// The device id the server enrolled this install under (from the enrolment); a new
    /// store without one gets a fresh id. Provenance and card leases use it.
    pub device: Option<DeviceId>,
    pub durability: Durability,
    /// How many documents stay loaded in memory.
    pub cache_documents: usize,
    /// A document's changes since its snapshot are folded into a new snapshot once there
    /// are at least this many of them (ADR 0011) ...
    pub compact_after: u32,
    /// ... and, when the change is typing (`splice_section`, `splice_summary`), once their
    /// bytes (with their rows') also reach this percentage of the snapshot's (ADR 0038), so
    /// typing into a long document does not save it whole every `compact_after` keystrokes.
    /// 0: the count alone decides.
    pub compact_tail_percent: u32,
    pub clock: Clock,
    /// The secret seed of this install's signing key, used only when the store is created
    /// (ADR 0012). `None`, the default, makes a random one; apps leave it so. Tests that
    /// must sign changes by hand, as an attacker holding a phone's key would, set it.
    pub signing_seed: Option<[u8; 32]>,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("worker", &self.worker)
            .field("station", &self.station)
            .field("durability", &self.durability)
            .field("cache_documents", &self.cache_documents)
            .field("compact_after", &self.compact_after)
            .field("compact_tail_percent", &self.compact_tail_percent)
            .finish_non_exhaustive()
    }
}

impl StoreOptions {
    /// Defaults: full durability, 64 cached documents, compaction after 32 changes (typing:
    /// once they also reach twice the snapshot's bytes), system clock.
    pub fn new(
        path: impl AsRef<Path>,
        key: StoreKey,
        worker: WorkerId,
        station: StationId,
    ) -> Self {
        StoreOptions {
            path: path.as_ref().to_path_buf(),
            key,
            worker,
            station,
            device: None,
            durability: Durability::Full,
            cache_documents: 64,
            compact_after: 32,
            compact_tail_percent: 200,
            clock: Arc::new(Timestamp::now),
            signing_seed: None,
        }
    }
}

/// What one document takes on disk (`Store::document_storage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocumentStorage {
    /// The snapshot's bytes (0 before the first compaction).
    pub snapshot_bytes: u64,
    /// Changes stored since the snapshot, one row each.
    pub pending_changes: u64,
    /// Those changes' bytes.
    pub pending_bytes: u64,
}

/// What `apply_changes` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ApplyOutcome {
    /// Changes new to this store.
    pub applied: usize,
    /// Changes it already had (a retried or duplicated delivery).
    pub duplicates: usize,
}

struct Writer {
    conn: Connection,
    cache: DocCache,
    /// `PRAGMA synchronous` to return to after a seal.
    synchronous: &'static str,
}

/// The writer, locked. When it is released after a write, a seal follows (see `seal`).
struct WriterGuard<'a> {
    guard: MutexGuard<'a, Writer>,
    changes: u64,
}

impl std::ops::Deref for WriterGuard<'_> {
    type Target = Writer;
    fn deref(&self) -> &Writer {
        &self.guard
    }
}

impl std::ops::DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut Writer {
        &mut self.guard
    }
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        let w = &mut *self.guard;
        if w.conn.total_changes() != self.changes && w.conn.is_autocommit() {
            seal(&w.conn, w.synchronous);
        }
    }
}

/// Write one small transaction after the ones just committed, without waiting for the
/// disk. SQLite takes the first WAL frame that fails its checksum for a torn write and
/// drops it and everything after; `wal::check` tells damage from a torn write only when a
/// later transaction follows the damaged one. The seal makes every acknowledged
/// transaction have one; damage to the seal itself loses nothing. A failed seal only
/// weakens that check, so it is logged, not returned.
fn seal(conn: &Connection, synchronous: &str) {
    let r = conn.execute_batch(&format!(
        "PRAGMA synchronous = OFF;
         INSERT OR REPLACE INTO meta (key, value) VALUES ('wal_seal', randomblob(8));
         PRAGMA synchronous = {synchronous};"
    ));
    if let Err(e) = r {
        tracing::warn!(error = %e, "sealing the write-ahead log failed");
        let _ = conn.execute_batch(&format!("PRAGMA synchronous = {synchronous};"));
    }
}

/// The device store. Cheap to share across threads (`&self` methods, internal locks):
/// writes and document reads take the writer lock; index queries use their own connection.
pub struct Store {
    writer: Mutex<Writer>,
    reader: Mutex<Connection>,
    worker: WorkerId,
    station: StationId,
    device: DeviceId,
    actor: ActorId,
    /// Signs this device's changes (ADR 0012).
    signing: crate::protocol::DeviceKey,
    compaction: Compaction,
    clock: Clock,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("worker", &self.worker)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// The index scope of an action on one record.
fn record(kind: EntityKind, key: &Uuid) -> Scope {
    Scope::Record(kind, *key)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves SQLite consistent (transactions roll back) and
    // the cache is only a cache, so a poisoned lock is safe to take over.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// This store's signing key, made on first open (stores from before schema 4 get theirs
/// then): 32 random bytes kept in the encrypted store, never sent anywhere.
fn signing_key(conn: &Connection, given: Option<[u8; 32]>) -> Result<crate::protocol::DeviceKey> {
    use crate::protocol::DeviceKey;
    if let Some(seed) = meta_get(conn, "signing_key")? {
        let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| Error::Damaged)?;
        return Ok(DeviceKey::from_seed(&seed));
    }
    let mut seed = [0u8; 32];
    match given {
        Some(g) => seed = g,
        None => getrandom::fill(&mut seed)
            .map_err(|_| Error::InvalidInput("no randomness for a key"))?,
    }
    meta_put(conn, "signing_key", &seed)?;
    Ok(DeviceKey::from_seed(&seed))
}

fn meta_get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

fn meta_put(conn: &Connection, key: &str, value: &[u8]) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        params![key, value],
    )?;
    Ok(())
}

fn hashes_to_bytes(heads: &[ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|h| h.0).collect()
}

fn bytes_to_hashes(bytes: &[u8]) -> Result<Vec<ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return Err(Error::Damaged);
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| ChangeHash(c.try_into().unwrap_or([0; 32])))
        .collect())
}

impl Store {
    fn writer(&self) -> WriterGuard<'_> {
        let guard = lock(&self.writer);
        let changes = guard.conn.total_changes();
        WriterGuard { guard, changes }
    }

    /// Open the store at `options.path`, creating it if absent. Fails with `WrongKey`,
    /// `NotAStore` or `Damaged` rather than touching a file it cannot read.
    pub fn open(options: StoreOptions) -> Result<Store> {
        let mut conn = db::open_connection(&options.path, &options.key, options.durability, false)?;
        schema::migrate(&mut conn)?;
        let (device, actor) = match (meta_get(&conn, "device_id")?, meta_get(&conn, "actor")?) {
            (Some(d), Some(a)) => {
                let d = DeviceId::parse(std::str::from_utf8(&d).map_err(|_| Error::Damaged)?)?;
                (d, ActorId::from(a))
            }
            _ => {
                // A fresh actor per store: two writers under one actor corrupt documents.
                // All four facts in one transaction: a store killed while being created has
                // either all of them (an owner) or none.
                let device = options.device.unwrap_or_default();
                let actor = ActorId::random();
                let tx = conn.transaction()?;
                meta_put(&tx, "device_id", device.to_string().as_bytes())?;
                meta_put(&tx, "actor", actor.to_bytes())?;
                meta_put(&tx, "worker_id", options.worker.to_string().as_bytes())?;
                meta_put(&tx, "station_id", options.station.to_string().as_bytes())?;
                tx.commit()?;
                (device, actor)
            }
        };
        let signing = signing_key(&conn, options.signing_seed)?;
        if options.device.is_some_and(|d| d != device) {
            return Err(Error::InvalidInput("this store belongs to another device"));
        }
        if let Some(w) = meta_get(&conn, "worker_id")? {
            if w != options.worker.to_string().as_bytes() {
                return Err(Error::InvalidInput("this store belongs to another worker"));
            }
        }
        // An erasure whose scrub was cut short: finish it before anything else.
        if erasure::scrub_pending(&conn)? {
            erasure::scrub(&conn)?;
        }
        // A migration that added an index of the station document (schema 7: labels).
        labels::reindex_station_if_asked(&mut conn, options.station, &actor)?;
        // The creation or a migration may be the last transaction in the WAL.
        seal(&conn, db::synchronous(options.durability));
        let reader = db::open_connection(&options.path, &options.key, options.durability, true)?;
        let store = Store {
            writer: Mutex::new(Writer {
                conn,
                cache: DocCache::new(options.cache_documents),
                synchronous: db::synchronous(options.durability),
            }),
            reader: Mutex::new(reader),
            worker: options.worker,
            station: options.station,
            device,
            actor,
            signing,
            compaction: Compaction {
                after: options.compact_after.max(1),
                tail_percent: options.compact_tail_percent,
            },
            clock: options.clock,
            path: options.path,
        };
        // A migration added index tables that existing documents have rows in (schema 8:
        // categories by code); it asks in `meta`, and the rebuild removes the request.
        let asked = meta_get(&store.writer().conn, "rebuild_index")?.is_some();
        if asked {
            store.rebuild_index()?;
            tracing::info!("index rebuilt after the store's upgrade");
        }
        Ok(store)
    }

    pub fn worker(&self) -> WorkerId {
        self.worker
    }
    pub fn station(&self) -> StationId {
        self.station
    }
    /// This install's automerge actor id (fresh per store file; bound to the device on
    /// the server at its first sync).
    pub fn actor_id(&self) -> Vec<u8> {
        self.actor.to_bytes().to_vec()
    }
    /// This install's id (fresh per store file).
    pub fn device(&self) -> DeviceId {
        self.device
    }
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn provenance(&self) -> Provenance {
        Provenance {
            worker: self.worker,
            device: self.device,
            at: (self.clock)(),
        }
    }

    /// Run one user action on one household: mutate the document, then persist the change
    /// and the index in one SQLite transaction.
    fn act<T>(
        &self,
        household: HouseholdId,
        scope: Scope,
        f: impl FnOnce(&mut Transaction<'_>, &Provenance) -> Result<T>,
    ) -> Result<T> {
        // Typing waits for its tail to reach its share of the snapshot; any other action
        // folds by the count, so a document at rest keeps a short tail (ADR 0038).
        let compaction = match scope {
            Scope::Section(..) | Scope::Summary => self.compaction,
            _ => self.compaction.by_count(),
        };
        self.act_compacting(household, scope, compaction, f)
    }

    /// `act`, compacting the document in the same transaction when `compaction` says so
    /// (`Compaction::NOW`: whatever its tail).
    fn act_compacting<T>(
        &self,
        household: HouseholdId,
        scope: Scope,
        compaction: Compaction,
        f: impl FnOnce(&mut Transaction<'_>, &Provenance) -> Result<T>,
    ) -> Result<T> {
        let p = self.provenance();
        let mut w = self.writer();
        let Writer { conn, cache, .. } = &mut *w;
        let doc = load(conn, cache, household, &self.actor)?;
        let mut tx = doc.transaction();
        let out = f(&mut tx, &p)?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(p.at.0));
        let Some(hash) = hash else { return Ok(out) };
        let result = persist_local(conn, doc, household, hash, scope, compaction, None);
        if result.is_err() {
            // Memory is ahead of disk now: drop the document so the next read reloads.
            cache.evict(&household);
        }
        result.map(|()| out)
    }

    // ----- households -------------------------------------------------------------------

    /// Open a new case file in this worker's station.
    pub fn create_household(&self, new: &NewHousehold) -> Result<HouseholdId> {
        let id = HouseholdId::new();
        let p = self.provenance();
        let mut w = self.writer();
        let Writer { conn, cache, .. } = &mut *w;
        let mut doc = doc::new_document(&self.actor);
        let mut tx = doc.transaction();
        let new = &NewHousehold {
            summary: lines(&new.summary).into_owned(),
            tags: self.checked_categories(&new.tags, CategoryPlace::Household)?,
            ..new.clone()
        };
        write::create_household(&mut tx, id, self.station, new, &p)?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(p.at.0));
        let hash = hash.ok_or(Error::InvalidInput("empty household"))?;
        persist_local(
            conn,
            &mut doc,
            id,
            hash,
            Scope::Household,
            self.compaction.by_count(),
            Some(doc::DocKind::Household),
        )?;
        cache.insert(id, doc);
        Ok(id)
    }

    /// `AddTag` takes a household category code of the vocabulary in force (ADR 0018);
    /// `RemoveTag` takes any value the household holds (free text from before too).
    pub fn edit_household(&self, id: HouseholdId, edit: &HouseholdEdit) -> Result<()> {
        let checked;
        let edit = match edit {
            HouseholdEdit::AddTag(t) => {
                let code =
                    self.checked_categories(std::slice::from_ref(t), CategoryPlace::Household)?;
                checked = HouseholdEdit::AddTag(code.into_iter().next().unwrap_or_default());
                &checked
            }
            other => other,
        };
        self.act(
            id,
            Scope::Record(EntityKind::Household, Uuid::nil()),
            |tx, p| write::edit_household(tx, edit, p),
        )
    }

    /// Splice the situation summary: delete `delete` characters at `pos` (code points) and
    /// insert `insert` there.
    pub fn splice_summary(
        &self,
        id: HouseholdId,
        pos: usize,
        delete: usize,
        insert: &str,
    ) -> Result<()> {
        self.act(id, Scope::Summary, |tx, _| {
            write::splice_summary(tx, pos, delete, &lines(insert))
        })
    }

    /// The whole case file, without recording an access: for the app's own use. To show it
    /// to the worker, use [`open_case_file`](Self::open_case_file), which records one.
    pub fn household(&self, id: HouseholdId) -> Result<Household> {
        self.read(id, doc::read::read_household)
    }

    fn read<T>(&self, id: HouseholdId, f: impl FnOnce(&Automerge) -> Result<T>) -> Result<T> {
        let mut w = self.writer();
        let Writer { conn, cache, .. } = &mut *w;
        let doc = load(conn, cache, id, &self.actor)?;
        f(doc)
    }

    // ----- persons ----------------------------------------------------------------------

    /// `categories` are codes of the vocabulary in force for persons (ADR 0018).
    pub fn add_person(&self, household: HouseholdId, new: &NewPerson) -> Result<PersonId> {
        let new = &NewPerson {
            categories: self.checked_categories(&new.categories, CategoryPlace::Person)?,
            ..new.clone()
        };
        let id = PersonId::new();
        self.act(
            household,
            record(EntityKind::Person, id.as_uuid()),
            |tx, p| write::add_person(tx, id, new, p),
        )?;
        Ok(id)
    }

    pub fn edit_person(
        &self,
        household: HouseholdId,
        person: PersonId,
        edit: &PersonEdit,
    ) -> Result<()> {
        // `AddCategory` takes a code of the vocabulary in force; `RemoveCategory` any value
        // the person holds (free text from before vocabularies too).
        let checked;
        let edit = match edit {
            PersonEdit::AddCategory(c) => {
                let code =
                    self.checked_categories(std::slice::from_ref(c), CategoryPlace::Person)?;
                checked = PersonEdit::AddCategory(code.into_iter().next().unwrap_or_default());
                &checked
            }
            other => other,
        };
        self.act(
            household,
            record(EntityKind::Person, person.as_uuid()),
            |tx, p| write::edit_person(tx, person, edit, p),
        )
    }

    // ----- visits -----------------------------------------------------------------------

    /// Start a visit (a draft) with the signed-in worker on it.
    pub fn start_visit(&self, household: HouseholdId, new: &NewVisit) -> Result<VisitId> {
        let id = VisitId::new();
        self.act(
            household,
            record(EntityKind::Visit, id.as_uuid()),
            |tx, p| write::start_visit(tx, id, new, p),
        )?;
        Ok(id)
    }

    pub fn edit_visit(
        &self,
        household: HouseholdId,
        visit: VisitId,
        edit: &VisitEdit,
    ) -> Result<()> {
        self.act(
            household,
            record(EntityKind::Visit, visit.as_uuid()),
            |tx, p| write::edit_visit(tx, visit, edit, p),
        )
    }

    /// Type into a section of a draft visit: delete `delete` characters at `pos` (Unicode
    /// code points) and insert `insert`. One durable action.
    pub fn splice_section(
        &self,
        household: HouseholdId,
        visit: VisitId,
        section: Section,
        pos: usize,
        delete: usize,
        insert: &str,
    ) -> Result<()> {
        self.act(household, Scope::Section(visit, section), |tx, p| {
            write::splice_section(tx, visit, section, pos, delete, &lines(insert), p)
        })
    }

    /// Freeze a visit: from now on it is evidence and only amendments correct it.
    ///
    /// The household's document is compacted in the same transaction: a finished visit is
    /// the natural point to fold its many small changes (one per keystroke burst) into the
    /// snapshot, which holds them in a fraction of the bytes.
    pub fn finalise_visit(&self, household: HouseholdId, visit: VisitId) -> Result<()> {
        self.act_compacting(
            household,
            record(EntityKind::Visit, visit.as_uuid()),
            Compaction::NOW,
            |tx, p| write::finalise_visit(tx, visit, p),
        )
    }

    /// Record a correction of a finalised visit (optionally about one section).
    pub fn amend_visit(
        &self,
        household: HouseholdId,
        visit: VisitId,
        section: Option<Section>,
        text: &str,
    ) -> Result<AmendmentId> {
        let id = AmendmentId::new();
        // The visit in the scope too: an amendment is part of its visit's upload status.
        self.act(
            household,
            Scope::Records([
                (EntityKind::Amendment, *id.as_uuid()),
                (EntityKind::Visit, *visit.as_uuid()),
            ]),
            |tx, p| write::amend_visit(tx, id, visit, section, &lines(text), p),
        )?;
        Ok(id)
    }

    // ----- needs, inquiries, follow-ups, cards ------------------------------------------

    pub fn add_need(&self, household: HouseholdId, new: &NewNeed) -> Result<NeedId> {
        let id = NeedId::new();
        let new = &NewNeed {
            description: lines(&new.description).into_owned(),
            ..new.clone()
        };
        self.act(
            household,
            record(EntityKind::Need, id.as_uuid()),
            |tx, p| write::add_need(tx, id, new, p),
        )?;
        Ok(id)
    }

    pub fn set_need_status(
        &self,
        household: HouseholdId,
        need: NeedId,
        status: NeedStatus,
    ) -> Result<()> {
        self.set_status(
            household,
            crate::model::policy::EntityKind::Need,
            &need.to_string(),
            status.as_str(),
        )
    }

    pub fn add_inquiry(&self, household: HouseholdId, new: &NewInquiry) -> Result<InquiryId> {
        let id = InquiryId::new();
        let new = &NewInquiry {
            question: lines(&new.question).into_owned(),
            answer: new.answer.as_deref().map(|a| lines(a).into_owned()),
            ..new.clone()
        };
        self.act(
            household,
            record(EntityKind::Inquiry, id.as_uuid()),
            |tx, p| write::add_inquiry(tx, id, new, p),
        )?;
        Ok(id)
    }

    pub fn answer_inquiry(
        &self,
        household: HouseholdId,
        inquiry: InquiryId,
        answer: &str,
    ) -> Result<()> {
        self.act(
            household,
            record(EntityKind::Inquiry, inquiry.as_uuid()),
            |tx, p| write::answer_inquiry(tx, inquiry, &lines(answer), p),
        )
    }

    pub fn set_inquiry_status(
        &self,
        household: HouseholdId,
        inquiry: InquiryId,
        status: InquiryStatus,
    ) -> Result<()> {
        self.set_status(
            household,
            crate::model::policy::EntityKind::Inquiry,
            &inquiry.to_string(),
            status.as_str(),
        )
    }

    pub fn add_follow_up(&self, household: HouseholdId, new: &NewFollowUp) -> Result<FollowUpId> {
        let id = FollowUpId::new();
        self.act(
            household,
            record(EntityKind::FollowUp, id.as_uuid()),
            |tx, p| write::add_follow_up(tx, id, new, p),
        )?;
        Ok(id)
    }

    pub fn complete_follow_up(&self, household: HouseholdId, follow_up: FollowUpId) -> Result<()> {
        self.set_status(
            household,
            crate::model::policy::EntityKind::FollowUp,
            &follow_up.to_string(),
            "done",
        )
    }

    pub fn cancel_follow_up(&self, household: HouseholdId, follow_up: FollowUpId) -> Result<()> {
        self.set_status(
            household,
            crate::model::policy::EntityKind::FollowUp,
            &follow_up.to_string(),
            "cancelled",
        )
    }

    /// Record that a contact card was left with the household.
    pub fn record_card_issuance(
        &self,
        household: HouseholdId,
        new: &NewCardIssuance,
    ) -> Result<CardIssuanceId> {
        let id = CardIssuanceId::new();
        let scope = match new.replaces {
            None => record(EntityKind::Card, id.as_uuid()),
            Some(old) => Scope::Records([
                (EntityKind::Card, *id.as_uuid()),
                (EntityKind::Card, *old.as_uuid()),
            ]),
        };
        self.act(household, scope, |tx, p| write::add_card(tx, id, new, p))?;
        Ok(id)
    }

    pub fn set_card_status(
        &self,
        household: HouseholdId,
        card: CardIssuanceId,
        status: CardStatus,
    ) -> Result<()> {
        self.set_status(
            household,
            crate::model::policy::EntityKind::Card,
            &card.to_string(),
            status.as_str(),
        )
    }

    fn set_status(
        &self,
        household: HouseholdId,
        kind: crate::model::policy::EntityKind,
        key: &str,
        to: &str,
    ) -> Result<()> {
        // A key that is not a UUID names no record: the write refuses it.
        let scope = Uuid::parse_str(key).map_or(Scope::Household, |k| Scope::Record(kind, k));
        self.act(household, scope, |tx, p| {
            write::set_status(tx, kind, key, to, p)
        })
    }

    // ----- conflicts and provenance ------------------------------------------------------

    /// Resolve an open conflict on `field`: `chosen` is the value to keep (one of the
    /// conflicting ones, or a corrected one for identity fields; ignored for a visit edited
    /// after finalisation, which is accepted as merged). Records who resolved it and the
    /// values it replaced.
    pub fn resolve_conflict(
        &self,
        household: HouseholdId,
        field: &FieldRef,
        chosen: Option<&str>,
    ) -> Result<ResolutionId> {
        let id = ResolutionId::new();
        self.act(household, Scope::Household, |tx, p| {
            conflicts::resolve(tx, household, field, chosen, id, p)
        })?;
        Ok(id)
    }

    /// Every value a field holds now, with who wrote it, on which device, when. The shown
    /// value comes first; more than one means concurrent writes. For a set, one entry per
    /// element; for text, the record's creation.
    pub fn field_history(
        &self,
        household: HouseholdId,
        field: &FieldRef,
    ) -> Result<Vec<FieldVersion>> {
        self.read(household, |d| conflicts::field_versions(d, field))
    }

    // ----- the sync entry points ---------------------------------------------------------

    /// Every household document in the store.
    pub fn household_ids(&self) -> Result<Vec<HouseholdId>> {
        let r = lock(&self.reader);
        let mut st =
            r.prepare("SELECT doc_id FROM documents WHERE kind = 'household' ORDER BY doc_id")?;
        let ids = st
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        ids.iter().map(|s| HouseholdId::parse(s)).collect()
    }

    /// The current heads of a household document.
    pub fn heads(&self, household: HouseholdId) -> Result<Vec<ChangeHash>> {
        self.read(household, |d| Ok(d.get_heads()))
    }

    /// The changes a peer that has `have` lacks (automerge change bytes, causal order).
    pub fn export_changes(
        &self,
        household: HouseholdId,
        have: &[ChangeHash],
    ) -> Result<Vec<Vec<u8>>> {
        self.read(household, |d| {
            Ok(d.get_changes(have)
                .into_iter()
                .map(|c| c.raw_bytes().to_vec())
                .collect())
        })
    }

    /// The whole document, compacted (for bootstrapping another replica).
    pub fn export_document(&self, household: HouseholdId) -> Result<Vec<u8>> {
        self.read(household, |d| Ok(d.save()))
    }

    /// Apply changes received for a household (new or known), in one transaction: decoded
    /// and checked first, deduplicated by hash, index and conflicts updated. Garbage,
    /// changes with missing dependencies, or a document that is not this household's are
    /// refused and leave the store as it was.
    pub fn apply_changes(
        &self,
        household: HouseholdId,
        changes: &[Vec<u8>],
    ) -> Result<ApplyOutcome> {
        let decoded = decode_changes(changes)?;
        let mut w = self.writer();
        let Writer { conn, cache, .. } = &mut *w;
        let tx = conn.transaction()?;
        let result = contained(|| {
            apply_remote(
                &tx,
                cache,
                &self.actor,
                self.station,
                household,
                decoded,
                self.compaction.by_count(),
            )
        });
        match result.and_then(|outcome| tx.commit().map(|()| outcome).map_err(Error::from)) {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                cache.evict(&household);
                Err(e)
            }
        }
    }

    /// Households stored here that this app version cannot read (written by a newer app):
    /// they sync, but are not indexed or shown until the app is updated.
    pub fn unreadable_households(&self) -> Result<Vec<HouseholdId>> {
        let r = lock(&self.reader);
        let mut st =
            r.prepare("SELECT doc_id FROM documents WHERE unreadable = 1 ORDER BY doc_id")?;
        let ids = st
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        ids.iter().map(|s| HouseholdId::parse(s)).collect()
    }

    /// Households with changes the server has not acknowledged.
    pub fn unsynced_households(&self) -> Result<Vec<HouseholdId>> {
        let r = lock(&self.reader);
        let mut st =
            r.prepare("SELECT doc_id FROM documents WHERE unsynced = 1 ORDER BY doc_id")?;
        let ids = st
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        ids.iter().map(|s| HouseholdId::parse(s)).collect()
    }

    /// The heads the server is known to have for a household (empty if none).
    pub fn server_heads(&self, household: HouseholdId) -> Result<Vec<ChangeHash>> {
        let r = lock(&self.reader);
        let bytes: Option<Vec<u8>> = r
            .query_row(
                "SELECT server_heads FROM documents WHERE doc_id = ?1",
                [household.to_string()],
                |row| row.get(0),
            )
            .optional()?;
        bytes_to_hashes(&bytes.ok_or(Error::NotFound("household"))?)
    }

    /// Record what the server acknowledged; the document stays unsynced while it has local
    /// changes beyond those heads.
    pub fn set_server_heads(&self, household: HouseholdId, heads: &[ChangeHash]) -> Result<()> {
        let mut w = self.writer();
        let Writer { conn, cache, .. } = &mut *w;
        let doc = load(conn, cache, household, &self.actor)?;
        let unsynced = !doc.get_changes(heads).is_empty()
            || heads.iter().any(|h| doc.get_change_by_hash(h).is_none());
        conn.execute(
            "UPDATE documents SET server_heads = ?2, unsynced = ?3 WHERE doc_id = ?1",
            params![household.to_string(), hashes_to_bytes(heads), unsynced],
        )?;
        Ok(())
    }

    // ----- maintenance --------------------------------------------------------------------

    /// Recreate the whole query index from the documents.
    pub fn rebuild_index(&self) -> Result<()> {
        let mut w = self.writer();
        let Writer { conn, cache, .. } = &mut *w;
        let ids: Vec<String> = conn
            .prepare(
                "SELECT doc_id FROM documents
                 WHERE kind IN ('household', 'activity', 'resource', 'survey')",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let tx = conn.transaction()?;
        for table in [
            "ix_households",
            "ix_persons",
            "ix_categories",
            "ix_care_levels",
            "ix_visits",
            "ix_visit_workers",
            "ix_follow_ups",
            "ix_cards",
            "ix_conflicts",
            "ix_text_src",
            "ix_activities",
            "ix_resources",
            "ix_attendance",
            "ix_referrals",
            "ix_surveys",
            "ix_responses",
            "ix_survey_answers",
            "ix_text_pending",
        ] {
            tx.execute(&format!("DELETE FROM {table}"), [])?;
        }
        tx.execute("INSERT INTO ix_text(ix_text) VALUES ('delete-all')", [])?;
        for id in ids {
            let hid = HouseholdId::parse(&id)?;
            let doc = load(&tx, cache, hid, &self.actor)?;
            index::update_received(&tx, doc, hid, &doc::verify::Scope::Everything)?;
        }
        let station = doc::station::station_doc_id(self.station);
        index::clear_station(&tx)?;
        if let Ok(doc) = load(&tx, cache, station, &self.actor) {
            index::update_station(&tx, doc)?;
        }
        // A migration's request for this (schemas 8 and 11) is answered in the same transaction.
        tx.execute("DELETE FROM meta WHERE key = 'rebuild_index'", [])?;
        tx.commit()?;
        Ok(())
    }

    /// Every index row as text, sorted: two replicas with equal documents have equal dumps
    /// (texts typed into are indexed first, as for a search).
    #[doc(hidden)]
    pub fn index_dump(&self) -> Result<Vec<String>> {
        self.flush_search_index_if_pending()?;
        let r = lock(&self.reader);
        query::dump(&r)
    }

    /// SQLite's own structural check (`PRAGMA integrity_check`); `Ok(())` when sound.
    pub fn integrity_check(&self) -> Result<()> {
        let w = self.writer();
        let result: String = w
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if result == "ok" {
            Ok(())
        } else {
            Err(Error::Damaged)
        }
    }

    /// How many documents are loaded in memory now.
    pub fn cached_documents(&self) -> usize {
        self.writer().cache.len()
    }

    /// Drop every loaded document (the next access reloads from disk).
    pub fn clear_cache(&self) {
        self.writer().cache.clear();
    }

    /// What one document takes on disk: its snapshot's bytes and its changes since then
    /// (how many, their bytes). For benchmarks and tests of compaction (ADR 0038).
    #[doc(hidden)]
    pub fn document_storage(&self, id: HouseholdId) -> Result<DocumentStorage> {
        self.with_reader(|r| {
            r.query_row(
                "SELECT coalesce(length(snapshot), 0), pending_compaction, pending_bytes
                 FROM documents WHERE doc_id = ?1",
                [id.to_string()],
                |r| {
                    Ok(DocumentStorage {
                        snapshot_bytes: r.get::<_, i64>(0)? as u64,
                        pending_changes: r.get::<_, i64>(1)? as u64,
                        pending_bytes: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .optional()?
            .ok_or(Error::NotFound("household"))
        })
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let r = lock(&self.reader);
        f(&r)
    }
}

/// The cached document, loading it from its snapshot and change rows when absent.
fn load<'c>(
    conn: &Connection,
    cache: &'c mut DocCache,
    id: HouseholdId,
    actor: &ActorId,
) -> Result<&'c mut Automerge> {
    if cache.get_mut(&id).is_none() {
        let doc = load_from_disk(conn, id, actor)?;
        return Ok(cache.insert(id, doc));
    }
    cache.get_mut(&id).ok_or(Error::NotFound("household"))
}

fn load_from_disk(conn: &Connection, id: HouseholdId, actor: &ActorId) -> Result<Automerge> {
    let snapshot: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT snapshot FROM documents WHERE doc_id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    let Some(snapshot) = snapshot else {
        return Err(Error::NotFound("household"));
    };
    let mut doc = match snapshot {
        // A snapshot received in a bootstrap is kept as it came: maybe a zstd frame.
        Some(bytes) => {
            let bytes = crate::protocol::decode_snapshot(&bytes).map_err(|_| Error::Damaged)?;
            contained(|| doc::load_document(&bytes, actor))?
        }
        None => doc::new_document(actor),
    };
    let mut st = conn.prepare_cached("SELECT bytes FROM changes WHERE doc_id = ?1 ORDER BY id")?;
    let mut rows = st.query([id.to_string()])?;
    let mut changes = Vec::new();
    while let Some(row) = rows.next()? {
        let bytes: Vec<u8> = row.get(0)?;
        changes.push(contained(|| {
            Change::from_bytes(bytes).map_err(|_| Error::Damaged)
        })?);
    }
    contained(|| doc.apply_changes(changes).map_err(Error::from))?;
    Ok(doc)
}

/// Run automerge on bytes that may be hostile: a panic inside becomes an error.
fn contained<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(Error::MalformedDocument(
        "document library panicked on input".into(),
    )))
}

/// Persist a change made on this device: change row, index, unsynced mark, compaction.
fn persist_local(
    conn: &mut Connection,
    doc: &mut Automerge,
    household: HouseholdId,
    hash: ChangeHash,
    scope: Scope,
    compaction: Compaction,
    new_document: Option<doc::DocKind>,
) -> Result<()> {
    let change = doc
        .get_change_by_hash(&hash)
        .ok_or(Error::MalformedDocument("change vanished".into()))?;
    let tx = conn.transaction()?;
    if let Some(kind) = new_document {
        tx.execute(
            "INSERT INTO documents (doc_id, kind, unsynced) VALUES (?1, ?2, 1)",
            params![household.to_string(), kind.as_str()],
        )?;
    }
    tx.prepare_cached("INSERT INTO changes (doc_id, hash, bytes, local) VALUES (?1, ?2, ?3, 1)")?
        .execute(params![
            household.to_string(),
            &hash.0[..],
            change.raw_bytes()
        ])?;
    let tail = tx
        .prepare_cached(
            "UPDATE documents SET pending_compaction = pending_compaction + 1,
                 pending_bytes = pending_bytes + ?2, unsynced = 1, push_error = NULL
             WHERE doc_id = ?1 RETURNING pending_compaction, pending_bytes, length(snapshot)",
        )?
        .query_row(
            params![household.to_string(), change.raw_bytes().len() as i64],
            compaction::tail_of,
        )?;
    index::update(&tx, doc, household, scope)?;
    status::record_local_write(&tx, household, scope, hash)?;
    if compaction.due(&tail) {
        compact(&tx, doc, household)?;
    }
    tx.commit()?;
    Ok(())
}

/// Decode change bytes from outside; any garbage refuses the whole batch.
pub(crate) fn decode_changes(changes: &[Vec<u8>]) -> Result<Vec<Change>> {
    changes
        .iter()
        // automerge's decoder panics on some malformed bytes (docs/fuzzing.md, finding 3).
        .map(|b| {
            contained(|| {
                Change::from_bytes(b.clone()).map_err(|e| Error::MalformedDocument(e.to_string()))
            })
        })
        .collect()
}

/// Apply changes from elsewhere to one household inside the caller's transaction: dedup by
/// hash, refuse missing dependencies or a foreign document, store the change rows, reindex.
/// On error the caller rolls back and evicts the document from the cache.
pub(crate) fn apply_remote(
    tx: &rusqlite::Transaction<'_>,
    cache: &mut DocCache,
    actor: &ActorId,
    station: StationId,
    household: HouseholdId,
    changes: Vec<Change>,
    compaction: Compaction,
) -> Result<ApplyOutcome> {
    let existed = match load(tx, cache, household, actor) {
        Ok(_) => true,
        Err(Error::NotFound(_)) => {
            cache.insert(household, doc::new_document(actor));
            false
        }
        Err(e) => return Err(e),
    };
    let doc = cache
        .get_mut(&household)
        .ok_or(Error::NotFound("household"))?;
    let mut fresh: Vec<Change> = Vec::new();
    let mut duplicates = 0;
    for c in changes {
        if doc.get_change_by_hash(&c.hash()).is_some() || fresh.iter().any(|f| f.hash() == c.hash())
        {
            duplicates += 1;
        } else {
            fresh.push(c);
        }
    }
    if fresh.is_empty() {
        if !existed {
            cache.evict(&household);
        }
        return Ok(ApplyOutcome {
            applied: 0,
            duplicates,
        });
    }
    // The station's own document (card batches and leases) travels under the station id.
    let is_station = household.as_uuid() == station.as_uuid();
    // What the changes can change, found before they are applied (where their objects
    // sit): the index reads and writes those records again, not the whole household. (The
    // station document is indexed whole.)
    let scope = if existed && !is_station {
        contained(|| {
            let decoded = doc::verify::decode(&fresh);
            let writes = doc::verify::writes(&decoded);
            let paths = doc::verify::paths(doc, &writes);
            Ok(doc::verify::touched_for_index(doc, &writes, &paths))
        })
        .unwrap_or(doc::verify::Scope::Everything)
    } else {
        doc::verify::Scope::Everything
    };
    let before = doc.get_heads();
    contained(|| doc.apply_changes(fresh.clone()).map_err(Error::from))?;
    let missing = doc.get_missing_deps(&[]);
    if !missing.is_empty() {
        return Err(Error::MissingDependencies(missing.len()));
    }
    // The caller evicts the document on an error: a change that fails here is in it.
    doc::check_applied(doc, &before, &fresh)?;
    if is_station && doc::station::station_header(doc)? != station {
        return Err(Error::NotAHousehold("station document id does not match"));
    }
    let kind = if is_station {
        "station"
    } else {
        let (kind, id, _) = doc::document_header(doc)?;
        if id != household {
            return Err(Error::NotAHousehold("document id does not match"));
        }
        kind.as_str()
    };
    if !existed {
        tx.execute(
            "INSERT INTO documents (doc_id, kind, unsynced) VALUES (?1, ?2, 0)",
            params![household.to_string(), kind],
        )?;
    } else if !is_station {
        // A document never changes its kind: a household cannot become station work (seen
        // by the whole station) nor the other way round. The server refuses it as well.
        let stored: Option<String> = tx
            .prepare_cached("SELECT kind FROM documents WHERE doc_id = ?1")?
            .query_row([household.to_string()], |r| r.get(0))
            .optional()?;
        if stored.as_deref().is_some_and(|s| s != kind) {
            return Err(Error::NotAHousehold("a document's kind changed"));
        }
    }
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO changes (doc_id, hash, bytes, local) VALUES (?1, ?2, ?3, 0) ON CONFLICT DO NOTHING",
        )?;
        for c in &fresh {
            ins.execute(params![
                household.to_string(),
                &c.hash().0[..],
                c.raw_bytes()
            ])?;
        }
    }
    let bytes: usize = fresh.iter().map(|c| c.raw_bytes().len()).sum();
    let tail = tx
        .prepare_cached(
            "UPDATE documents SET pending_compaction = pending_compaction + ?2,
                 pending_bytes = pending_bytes + ?3
             WHERE doc_id = ?1 RETURNING pending_compaction, pending_bytes, length(snapshot)",
        )?
        .query_row(
            params![household.to_string(), fresh.len() as i64, bytes as i64],
            compaction::tail_of,
        )?;
    if is_station {
        index::update_station(tx, doc)?;
    } else {
        index::update_received(tx, doc, household, &scope)?;
    }
    if compaction.due(&tail) {
        compact(tx, doc, household)?;
    }
    Ok(ApplyOutcome {
        applied: fresh.len(),
        duplicates,
    })
}

impl Drop for Store {
    /// Fold the WAL into the database file on close, so a store at rest is one file: a
    /// damaged WAL could otherwise make SQLite's recovery drop acknowledged writes silently.
    fn drop(&mut self) {
        let w = self.writer();
        if let Err(e) = w.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
            tracing::warn!(error = %e, "checkpoint on close failed");
        }
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Store>();
}

impl Store {
    /// Read helpers for query.rs.
    pub(crate) fn reader_query<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.with_reader(f)
    }
}
