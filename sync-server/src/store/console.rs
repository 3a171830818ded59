//! What the console stores beside the log (docs/console.md, ADR 0015): a read model of
//! every household document (maintained as changes are accepted, rebuildable from the
//! documents), accounts (supervisors', and county accounts with the stations granted to
//! them: ADR 0020) and sessions, failed logins, and the access log.
//! Every backend implements [`ConsoleStore`]; `conformance` checks both alike.

use doorstep_core::{DeviceId, HouseholdId, StationId, WorkerId};
use uuid::Uuid;

use super::StoreResult;
pub use crate::station_time::UtcOffset;

/// A console account's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub Uuid);

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A household as the console lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HouseholdRow {
    pub doc: HouseholdId,
    pub station: StationId,
    /// The document's last log sequence this row was read from.
    pub seq: u64,
    pub code: String,
    pub village: String,
    pub status: String,
    /// Household tags and person categories, deduplicated.
    pub categories: Vec<String>,
    pub visits: u64,
    /// `YYYY-MM-DD` of the latest visit.
    pub last_visit: Option<String>,
    pub open_needs: u64,
    pub conflicts: u64,
}

/// A visit as the console counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisitRow {
    pub doc: HouseholdId,
    pub visit: Uuid,
    pub date: String,
    pub kind: String,
    pub status: String,
    pub workers: Vec<WorkerId>,
}

/// A follow-up task as the console lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowUpRow {
    pub doc: HouseholdId,
    pub follow_up: Uuid,
    pub what: String,
    pub due: String,
    pub assignee: WorkerId,
    pub status: String,
}

/// One record the monthly report counts (see migration 3's `rm_facts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactRow {
    pub doc: HouseholdId,
    /// `visit`, `need`, `inquiry`, `card`, `response` (a needs-survey response, `dim1` its
    /// survey) or `referral` (a need referred to a resource: `item` the need, `dim1` the
    /// resource, `dim2` the need's status), of a household document; `activity` (of an
    /// activity document: `day` its date, `dim1` its type code, `dim2` how many attended,
    /// empty if not counted).
    pub fact: String,
    pub item: Uuid,
    /// `YYYY-MM-DD` in the station's time zone.
    pub day: String,
    pub dim1: String,
    pub dim2: String,
}

/// What the read model holds of one station-work document (ADR 0021) as of log sequence
/// `seq`: its kind, and for an activity its one `activity` fact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkRow {
    pub doc: HouseholdId,
    pub station: StationId,
    pub seq: u64,
    /// `activity`, `resource` or `survey`.
    pub kind: String,
    pub facts: Vec<FactRow>,
}

/// Everything the read model holds of one household document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadModelDoc {
    pub household: HouseholdRow,
    /// The text searched, one entry per record: the household's own (code, village,
    /// address, summary), each person's name, each visit's sections, each amendment,
    /// need, inquiry and follow-up (lower-cased). A refresh re-indexes only the entries
    /// whose text changed, so a household's history costs nothing when it is not touched.
    pub texts: Vec<SearchText>,
    pub visits: Vec<VisitRow>,
    pub follow_ups: Vec<FollowUpRow>,
    pub facts: Vec<FactRow>,
}

/// One searchable entry of a household: a record's texts, lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchText {
    /// Which record: `household`, or the record's kind and id (`visit:…`); unique within
    /// the household.
    pub item: String,
    /// Its texts, one per line.
    pub body: String,
}

impl SearchText {
    pub fn new(item: impl Into<String>, body: impl Into<String>) -> SearchText {
        SearchText {
            item: item.into(),
            body: body.into(),
        }
    }
}

impl ReadModelDoc {
    /// All of the household's texts, one per line, entries in order (what a backend that
    /// scans the text keeps in one column).
    pub fn search_text(&self) -> String {
        self.texts
            .iter()
            .map(|t| t.body.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Which households to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HouseholdFilter {
    pub village: Option<String>,
    /// A tag or person category the household has.
    pub category: Option<String>,
    pub status: Option<String>,
    /// Text the household's text holds (any length; lower-cased by the caller).
    pub text: Option<String>,
    pub limit: usize,
}

/// What a console account is (ADR 0020).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountRole {
    /// A station's supervisor: reads and acts on that station.
    Supervisor(StationId),
    /// A county account: reads the stations granted to it, writes nothing.
    County,
}

impl AccountRole {
    /// As stored and listed: `supervisor` or `county`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccountRole::Supervisor(_) => "supervisor",
            AccountRole::County => "county",
        }
    }
}

/// A console account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub role: AccountRole,
    pub login: String,
    pub password_hash: String,
    pub disabled: bool,
}

impl Account {
    /// The station a supervisor acts on; `None` for a county account, which writes nothing.
    pub fn supervised_station(&self) -> Option<StationId> {
        match self.role {
            AccountRole::Supervisor(s) => Some(s),
            AccountRole::County => None,
        }
    }
}

/// An account as the admin lists it: what it is and the stations it reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountListing {
    pub account: Account,
    /// A supervisor's station, or a county account's grants (by station id).
    pub stations: Vec<StationId>,
}

/// A supervisor's identity as a writer of documents: a worker and device of her station,
/// the actor bound to that device, and the Ed25519 seed of its key.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountSigner {
    pub worker: WorkerId,
    pub device: DeviceId,
    pub actor: Vec<u8>,
    pub seed: [u8; 32],
}

impl std::fmt::Debug for AccountSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSigner")
            .field("worker", &self.worker)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// A device of a station as the console lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRow {
    pub device: DeviceId,
    pub worker: WorkerId,
    /// When it exchanged its one-time code (`None`: not yet).
    pub enrolled_at: Option<i64>,
    /// Its one-time code is still waiting (and not expired at the time asked).
    pub code_waiting: bool,
    pub revoked_at: Option<i64>,
    /// A console account's writer identity (ADR 0015), not a phone.
    pub console: bool,
    /// When it last synced (recorded at most every few minutes).
    pub last_sync: Option<i64>,
}

/// A signed-in session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub account: Account,
    pub csrf: String,
    pub expires_at: i64,
}

/// One access log entry (ids only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessEntry {
    pub account: AccountId,
    /// The account's login (empty if the account is gone).
    pub login: String,
    pub what: String,
    pub target: Option<String>,
    pub at: i64,
}

/// Who read a household: a console account, or a worker on a phone (issue 16).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accessor {
    Console {
        account: AccountId,
        /// The account's login (empty if the account is gone).
        login: String,
    },
    Device {
        worker: WorkerId,
        /// The worker's label (empty if the worker is gone).
        label: String,
        device: DeviceId,
    },
}

/// One entry of the access log as the console lists it: the console's own reads and the
/// case files opened on the phones, together (ids, labels and times only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedAccess {
    pub by: Accessor,
    /// The console page or export (`household`, `export_csv`, …); `case_file` for a case
    /// file opened on a phone.
    pub what: String,
    /// What was read (a household id, mostly).
    pub target: Option<String>,
    /// When (for a phone, the phone's clock).
    pub at: i64,
}

/// Failed console logins in the throttling window (ADR 0028).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoginFailures {
    /// Of this login from this client.
    pub login_from_client: u64,
    /// From this client, of any login.
    pub client: u64,
    /// Of this login, from any client.
    pub login: u64,
}

/// `LoggedAccess::what` of a case file opened on a phone.
pub const CASE_FILE_ON_DEVICE: &str = "case_file";

/// The console's storage, in the same database as the log.
pub trait ConsoleStore {
    /// Replace what the read model holds of a document, unless it holds a newer state
    /// (a higher `seq`) already. True if it was written.
    fn put_read_model(&self, doc: &ReadModelDoc) -> StoreResult<bool> {
        Ok(self.put_read_models(std::slice::from_ref(doc))?[0])
    }
    /// [`put_read_model`](Self::put_read_model) for several documents in one transaction
    /// (those one sync committed; taken in id order, so two transactions never wait on
    /// each other's rows). One flag per document, in the order given.
    fn put_read_models(&self, docs: &[ReadModelDoc]) -> StoreResult<Vec<bool>>;
    /// Replace what the read model holds of a station-work document, unless it holds a
    /// newer state already or the document was erased. True if it was written.
    fn put_work(&self, row: &WorkRow) -> StoreResult<bool>;
    /// Forget a station's read model (before a rebuild).
    fn clear_read_model(&self, station: StationId) -> StoreResult<()>;
    /// The sequence each document of a station was last read at.
    fn read_model_seqs(&self, station: StationId) -> StoreResult<Vec<(HouseholdId, u64)>>;
    /// The station-work documents of a station of one kind (`activity`, `resource`,
    /// `survey`: `rm_work`), by id.
    fn work_documents(&self, station: StationId, kind: &str) -> StoreResult<Vec<HouseholdId>>;
    /// Households of a station, by code.
    fn households(
        &self,
        station: StationId,
        filter: &HouseholdFilter,
    ) -> StoreResult<Vec<HouseholdRow>>;
    /// Visits of a station dated between two days (inclusive, `YYYY-MM-DD`).
    fn visits_between(
        &self,
        station: StationId,
        from: &str,
        to: &str,
    ) -> StoreResult<Vec<VisitRow>>;
    /// Report facts of a station dated between two days (inclusive).
    fn facts_between(&self, station: StationId, from: &str, to: &str) -> StoreResult<Vec<FactRow>>;
    /// Follow-ups of a station (any status) due between two days (inclusive).
    fn follow_ups_due_between(
        &self,
        station: StationId,
        from: &str,
        to: &str,
    ) -> StoreResult<Vec<FollowUpRow>>;
    /// Open follow-ups of a station due on or before `until` (`YYYY-MM-DD`), earliest first.
    fn open_follow_ups(&self, station: StationId, until: &str) -> StoreResult<Vec<FollowUpRow>>;
    /// The labels of a station's workers.
    fn worker_labels(&self, station: StationId) -> StoreResult<Vec<(WorkerId, String)>>;
    /// All stations (id and name).
    fn stations(&self) -> StoreResult<Vec<(StationId, String)>>;
    /// The devices of a station, by worker label then device id.
    fn station_devices(&self, station: StationId, now_ms: i64) -> StoreResult<Vec<DeviceRow>>;

    /// A new account; `Conflict` if the login is taken, `NotFound` if the station is.
    fn add_account(
        &self,
        station: StationId,
        login: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> StoreResult<AccountId>;
    fn account_by_login(&self, login: &str) -> StoreResult<Option<Account>>;
    /// A new county account (ADR 0020) that reads `stations` (duplicates ignored);
    /// `Conflict` if the login is taken, `NotFound` if a station is unknown (then nothing
    /// is written).
    fn add_county_account(
        &self,
        login: &str,
        password_hash: &str,
        stations: &[StationId],
        now_ms: i64,
    ) -> StoreResult<AccountId>;
    /// Let a county account read a station; false if it could already. `NotFound` for an
    /// unknown account or station, `Conflict` for a supervisor's account (it has its one
    /// station).
    fn grant_station(
        &self,
        account: AccountId,
        station: StationId,
        now_ms: i64,
    ) -> StoreResult<bool>;
    /// Take a station back from a county account; false if it was not granted. `NotFound`
    /// for an unknown account, `Conflict` for a supervisor's.
    fn revoke_station(&self, account: AccountId, station: StationId) -> StoreResult<bool>;
    /// The stations an account reads (a supervisor's one, a county account's grants), with
    /// their names, by name then id. Empty for an unknown account.
    fn account_stations(&self, account: AccountId) -> StoreResult<Vec<(StationId, String)>>;
    /// Every account with its stations, by login.
    fn accounts(&self) -> StoreResult<Vec<AccountListing>>;
    /// Keep an account's writer identity unless it has one already; returns the one kept.
    fn set_account_signer(
        &self,
        account: AccountId,
        signer: &AccountSigner,
    ) -> StoreResult<AccountSigner>;
    fn account_signer(&self, account: AccountId) -> StoreResult<Option<AccountSigner>>;
    fn create_session(
        &self,
        session_hash: &str,
        account: AccountId,
        csrf: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> StoreResult<()>;
    /// The live session with this hash (expired ones are not returned).
    fn session(&self, session_hash: &str, now_ms: i64) -> StoreResult<Option<Session>>;
    fn delete_session(&self, session_hash: &str) -> StoreResult<()>;
    /// Record a failed login of `login` from `client` (a key of its address: ADR 0028) and
    /// return the failures since `since_ms`, this one included; older ones are forgotten.
    fn login_failed(
        &self,
        login: &str,
        client: &str,
        now_ms: i64,
        since_ms: i64,
    ) -> StoreResult<LoginFailures>;
    /// Failed logins since `since_ms`: of `login` from `client`, from `client`, of `login`.
    fn login_failures(
        &self,
        login: &str,
        client: &str,
        since_ms: i64,
    ) -> StoreResult<LoginFailures>;
    /// A station's time zone (ADR 0028; UTC+08:00 unless set). `NotFound` for no such
    /// station.
    fn station_zone(&self, station: StationId) -> StoreResult<UtcOffset>;
    /// Set a station's time zone. `NotFound` for no such station.
    fn set_station_zone(&self, station: StationId, zone: UtcOffset) -> StoreResult<()>;
    fn log_access(
        &self,
        account: AccountId,
        station: StationId,
        what: &str,
        target: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()>;
    /// A station's access log, newest first.
    fn access_log(&self, station: StationId, limit: usize) -> StoreResult<Vec<AccessEntry>>;
    /// The newest accesses of a station to one target (a household id), newest first.
    fn access_log_of(
        &self,
        station: StationId,
        target: &str,
        limit: usize,
    ) -> StoreResult<Vec<AccessEntry>>;
    /// The console's reads and the case files opened on the station's phones, together,
    /// newest first (by `at`): of one household, or (`None`) of the whole station.
    fn accesses(
        &self,
        station: StationId,
        household: Option<HouseholdId>,
        limit: usize,
    ) -> StoreResult<Vec<LoggedAccess>>;
}

/// Categories as stored: space-separated.
pub(crate) fn join_words(words: &[String]) -> String {
    words.join(" ")
}

pub(crate) fn split_words(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

macro_rules! delegate_console {
    ($( fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl ConsoleStore for super::any::AnyStore {
            $(
                fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        super::any::AnyStore::Sqlite(s) => s.$name($($arg),*),
                        super::any::AnyStore::Postgres(s) => s.$name($($arg),*),
                    }
                }
            )*
        }
    };
}

delegate_console! {
    fn put_read_models(&self, docs: &[ReadModelDoc]) -> StoreResult<Vec<bool>>;
    fn put_work(&self, row: &WorkRow) -> StoreResult<bool>;
    fn clear_read_model(&self, station: StationId) -> StoreResult<()>;
    fn read_model_seqs(&self, station: StationId) -> StoreResult<Vec<(HouseholdId, u64)>>;
    fn work_documents(&self, station: StationId, kind: &str) -> StoreResult<Vec<HouseholdId>>;
    fn households(&self, station: StationId, filter: &HouseholdFilter) -> StoreResult<Vec<HouseholdRow>>;
    fn visits_between(&self, station: StationId, from: &str, to: &str) -> StoreResult<Vec<VisitRow>>;
    fn open_follow_ups(&self, station: StationId, until: &str) -> StoreResult<Vec<FollowUpRow>>;
    fn facts_between(&self, station: StationId, from: &str, to: &str) -> StoreResult<Vec<FactRow>>;
    fn follow_ups_due_between(&self, station: StationId, from: &str, to: &str) -> StoreResult<Vec<FollowUpRow>>;
    fn worker_labels(&self, station: StationId) -> StoreResult<Vec<(WorkerId, String)>>;
    fn stations(&self) -> StoreResult<Vec<(StationId, String)>>;
    fn station_devices(&self, station: StationId, now_ms: i64) -> StoreResult<Vec<DeviceRow>>;
    fn add_account(&self, station: StationId, login: &str, password_hash: &str, now_ms: i64) -> StoreResult<AccountId>;
    fn account_by_login(&self, login: &str) -> StoreResult<Option<Account>>;
    fn add_county_account(&self, login: &str, password_hash: &str, stations: &[StationId], now_ms: i64) -> StoreResult<AccountId>;
    fn grant_station(&self, account: AccountId, station: StationId, now_ms: i64) -> StoreResult<bool>;
    fn revoke_station(&self, account: AccountId, station: StationId) -> StoreResult<bool>;
    fn account_stations(&self, account: AccountId) -> StoreResult<Vec<(StationId, String)>>;
    fn accounts(&self) -> StoreResult<Vec<AccountListing>>;
    fn set_account_signer(&self, account: AccountId, signer: &AccountSigner) -> StoreResult<AccountSigner>;
    fn account_signer(&self, account: AccountId) -> StoreResult<Option<AccountSigner>>;
    fn create_session(&self, session_hash: &str, account: AccountId, csrf: &str, now_ms: i64, expires_ms: i64) -> StoreResult<()>;
    fn session(&self, session_hash: &str, now_ms: i64) -> StoreResult<Option<Session>>;
    fn delete_session(&self, session_hash: &str) -> StoreResult<()>;
    fn login_failed(&self, login: &str, client: &str, now_ms: i64, since_ms: i64) -> StoreResult<LoginFailures>;
    fn login_failures(&self, login: &str, client: &str, since_ms: i64) -> StoreResult<LoginFailures>;
    fn station_zone(&self, station: StationId) -> StoreResult<UtcOffset>;
    fn set_station_zone(&self, station: StationId, zone: UtcOffset) -> StoreResult<()>;
    fn log_access(&self, account: AccountId, station: StationId, what: &str, target: Option<&str>, now_ms: i64) -> StoreResult<()>;
    fn access_log(&self, station: StationId, limit: usize) -> StoreResult<Vec<AccessEntry>>;
    fn access_log_of(&self, station: StationId, target: &str, limit: usize) -> StoreResult<Vec<AccessEntry>>;
    fn accesses(&self, station: StationId, household: Option<HouseholdId>, limit: usize) -> StoreResult<Vec<LoggedAccess>>;
}

/// An account from stored columns (`role` and `station_id` agree: the schema checks it).
pub(crate) fn account_from(
    id: &str,
    role: &str,
    station: Option<&str>,
    login: String,
    password_hash: String,
    disabled: bool,
) -> StoreResult<Account> {
    let bad = || super::StoreError::Database("malformed console account".into());
    let role = match (role, station) {
        ("supervisor", Some(s)) => AccountRole::Supervisor(StationId::parse(s).map_err(|_| bad())?),
        ("county", None) => AccountRole::County,
        _ => return Err(bad()),
    };
    Ok(Account {
        id: AccountId(Uuid::parse_str(id).map_err(|_| bad())?),
        role,
        login,
        password_hash,
        disabled,
    })
}

/// Stations in the order a list shows them: by name, then id.
pub(crate) fn by_name(mut stations: Vec<(StationId, String)>) -> Vec<(StationId, String)> {
    stations.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    stations
}

/// An account signer from stored columns.
pub(crate) fn signer_from(
    worker: &str,
    device: &str,
    actor: Vec<u8>,
    seed: &[u8],
) -> StoreResult<AccountSigner> {
    let bad = || super::StoreError::Database("malformed account signer".into());
    Ok(AccountSigner {
        worker: WorkerId::parse(worker).map_err(|_| bad())?,
        device: DeviceId::parse(device).map_err(|_| bad())?,
        actor,
        seed: seed.try_into().map_err(|_| bad())?,
    })
}

/// A logged access from stored columns (`source` 0: console, 1: device).
pub(crate) fn logged_access(
    source: i64,
    who: &str,
    name: String,
    device: &str,
    what: String,
    target: Option<String>,
    at: i64,
) -> StoreResult<LoggedAccess> {
    let bad = || super::StoreError::Database("malformed id in database".into());
    let by = if source == 0 {
        Accessor::Console {
            account: AccountId(Uuid::parse_str(who).map_err(|_| bad())?),
            login: name,
        }
    } else {
        Accessor::Device {
            worker: WorkerId::parse(who).map_err(|_| bad())?,
            label: name,
            device: DeviceId::parse(device).map_err(|_| bad())?,
        }
    };
    Ok(LoggedAccess {
        by,
        what,
        target,
        at,
    })
}

/// A device row from stored columns.
pub(crate) fn device_row(
    device: &str,
    worker: &str,
    enrolled_at: Option<i64>,
    code_waiting: bool,
    revoked_at: Option<i64>,
    console: bool,
    last_sync: Option<i64>,
) -> StoreResult<DeviceRow> {
    let bad = || super::StoreError::Database("malformed id in database".into());
    Ok(DeviceRow {
        device: DeviceId::parse(device).map_err(|_| bad())?,
        worker: WorkerId::parse(worker).map_err(|_| bad())?,
        enrolled_at,
        code_waiting,
        revoked_at,
        console,
        last_sync,
    })
}
