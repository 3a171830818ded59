//! `doorstep-server`: the sync server and its admin commands.
// A command-line tool prints its results.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use doorstep_core::protocol::ErasureReason;
use doorstep_core::HouseholdId;
use doorstep_core::{CardBatchId, CardLeaseId, CardSerial, Date, DeviceId, StationId, WorkerId};
use doorstep_server::edge_args::EdgeArgs;
use doorstep_server::erasure::{self, Ledger};
use doorstep_server::redaction;
use doorstep_server::station_time::UtcOffset;
use doorstep_server::store::any::{AnyStore, OpenWith};
use doorstep_server::store::console::{self, ConsoleStore};
use doorstep_server::store::key::ServerKey;
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, ServerConfig, SqliteStore};
use doorstep_server::{vocabulary, workers};

/// Doorstep sync server: devices of a township social-work station sync their household
/// case files through it.
#[derive(Parser, Debug)]
#[command(name = "doorstep-server", version, about, long_about = None)]
struct Cli {
    /// PostgreSQL URL (postgres://user@host:port/db) to use instead of the SQLite file in
    /// --data; several server instances may share one database.
    #[arg(long, global = true, env = "DOORSTEP_DATABASE")]
    database: Option<String>,
    /// PostgreSQL schema to use (created if missing); default: the user's search path.
    #[arg(long, global = true)]
    schema: Option<String>,
    /// CA certificate (PEM) of the PostgreSQL server, for sslmode=verify-full / verify-ca in
    /// the URL (overrides sslrootcert=).
    #[arg(long, global = true, env = "DOORSTEP_DATABASE_CA_FILE")]
    database_ca_file: Option<PathBuf>,
    /// Key of the SQLite database (server.db is encrypted): a file holding 64 hex digits,
    /// mode 0600 (make one with `key generate`). Keep it off the data disk and its backups.
    #[arg(
        long,
        global = true,
        env = "DOORSTEP_KEY_FILE",
        conflicts_with = "key_env"
    )]
    key_file: Option<PathBuf>,
    /// Name of an environment variable holding the key (64 hex digits) instead of a file.
    #[arg(long, global = true, env = "DOORSTEP_KEY_ENV", value_name = "NAME")]
    key_env: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the sync API (POST /v1/sync, POST /v1/enroll, GET /healthz; GET /metrics on
    /// --metrics-listen).
    Serve {
        /// Data directory (holds server.db); created if missing.
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Memory for documents kept loaded, in MiB (estimated from each document's size;
        /// docs/operations.md, Sizing).
        #[arg(long, env = "DOORSTEP_CACHE_MIB", default_value_t = 256)]
        cache_mib: usize,
        /// Deprecated: size the cache with --cache-mib. Still honoured as a second bound
        /// (at most this many documents), with a warning.
        #[arg(long)]
        cache_documents: Option<usize>,
        /// Syncs worked on at once; more wait their turn (bounds threads and memory).
        #[arg(long, default_value_t = doorstep_server::api::DEFAULT_MAX_CONCURRENT_SYNCS)]
        max_concurrent_syncs: usize,
        /// Do not serve the station console under /console (docs/console.md).
        #[arg(long)]
        no_console: bool,
        #[command(flatten)]
        edge: EdgeArgs,
    },
    /// Console accounts (docs/console.md): a supervisor of one station, or a county account
    /// that reads the stations granted to it (ADR 0020).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// The console's read model.
    Console {
        #[command(subcommand)]
        command: ConsoleCommand,
    },
    /// Manage stations.
    Station {
        #[command(subcommand)]
        command: StationCommand,
    },
    /// Manage workers.
    Worker {
        #[command(subcommand)]
        command: WorkerCommand,
    },
    /// A station's categories (ADR 0018): add or relabel entries of its controlled
    /// vocabulary; list the vocabulary its phones use.
    Vocabulary {
        #[command(subcommand)]
        command: VocabularyCommand,
    },
    /// Enrol and revoke devices.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Erase a household from the server and, at their next sync, from every device; list
    /// the erasure ledger (docs/operations.md, "Erasing a household").
    Household {
        #[command(subcommand)]
        command: HouseholdCommand,
    },
    /// Contact cards (爱心联系卡): batches, leases to devices, lookups for supervisors.
    Cards {
        #[command(subcommand)]
        command: CardsCommand,
    },
    /// Attachments' bytes on the server (ADR 0023, 0029).
    Blobs {
        #[command(subcommand)]
        command: BlobsCommand,
    },
    /// Write a consistent, encrypted copy of the database to a file (safe while serving).
    Backup {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        /// Destination file (must not exist; created mode 0600).
        #[arg(long)]
        to: PathBuf,
        /// Encrypt the backup with this key file instead of the database's key.
        #[arg(long, conflicts_with = "backup_key_env")]
        backup_key_file: Option<PathBuf>,
        /// Encrypt the backup with the key in this environment variable.
        #[arg(long, value_name = "NAME")]
        backup_key_env: Option<String>,
    },
    /// Restore a backup into a data directory without a server.db, encrypted with the key
    /// (--key-file / --key-env), and start a new epoch (devices then re-push what it lacks).
    Restore {
        /// The backup file (encrypted with the key or --backup-key-*, or an older plaintext one).
        #[arg(long)]
        from: PathBuf,
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        /// The backup's key file, if not the database's key.
        #[arg(long, conflicts_with = "backup_key_env")]
        backup_key_file: Option<PathBuf>,
        /// The environment variable holding the backup's key.
        #[arg(long, value_name = "NAME")]
        backup_key_env: Option<String>,
    },
    /// Encrypt the plaintext server.db of an older server with the key (--key-file /
    /// --key-env), in place, with the server stopped.
    Encrypt {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
    },
    /// The database key: make one, rotate it.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Start a new epoch after restoring the data directory from a backup: devices then
    /// re-push whatever the restored server lacks.
    NewEpoch {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
    },
    /// The main job: start a server on embedded SQLite, let three field devices record a day
    /// offline, reconnect them and show what merged; then keep serving until Ctrl-C.
    Demo {
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Data directory (default: a new temporary one).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Exit after the demo instead of serving.
        #[arg(long)]
        no_serve: bool,
        #[command(flatten)]
        edge: EdgeArgs,
    },
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Write a new random 256-bit key to a new file (mode 0600).
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
    /// Re-encrypt server.db from the current key (--key-file / --key-env) to a new one, with
    /// the server stopped; then start the server with the new key file.
    Rotate {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        /// The new key file (made, mode 0600, if it does not exist).
        #[arg(long)]
        new_key_file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum CardsCommand {
    /// Register a printed batch PREFIX-first … PREFIX-last; prints the batch id.
    Batch {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        /// 1-8 letters printed before the number, e.g. HG.
        #[arg(long)]
        prefix: String,
        #[arg(long)]
        first: u32,
        #[arg(long)]
        last: u32,
    },
    /// Lease part of a batch to a device; it reaches the device on its next sync.
    Lease {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        #[arg(long)]
        batch: CardBatchId,
        #[arg(long)]
        device: DeviceId,
        #[arg(long)]
        first: u32,
        #[arg(long)]
        last: u32,
        /// Last day the lease may be used (YYYY-MM-DD).
        #[arg(long)]
        expires: Option<Date>,
    },
    /// Take a lease back.
    Return {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        #[arg(long)]
        lease: CardLeaseId,
    },
    /// Which household holds a card (every issuance of the serial).
    Find {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        /// As printed, e.g. HG-000123-4.
        #[arg(long)]
        serial: String,
    },
    /// Serials issued to more than one household: void all but one.
    Duplicates {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
    },
    /// Cards a worker issued over a period (dates inclusive, in the station time zone:
    /// Beijing time).
    Issued {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        /// The worker's label (e.g. W01) or id.
        #[arg(long)]
        worker: String,
        #[arg(long)]
        from: Date,
        #[arg(long)]
        to: Date,
    },
}

#[derive(Subcommand, Debug)]
enum AccountCommand {
    /// Add a console account for a station's supervisor; reads the password (at least 10
    /// characters) from the first line of standard input.
    Add {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        /// Login name: letters, digits, '.', '_' or '-'.
        #[arg(long)]
        login: String,
    },
    /// Add a county account that reads the stations given (and writes nothing); reads the
    /// password (at least 10 characters) from the first line of standard input.
    AddCounty {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        /// Login name: letters, digits, '.', '_' or '-'.
        #[arg(long)]
        login: String,
        /// A station it reads: repeat the option, or separate ids with commas.
        #[arg(
            long = "station",
            value_name = "STATION",
            required = true,
            value_delimiter = ','
        )]
        stations: Vec<StationId>,
    },
    /// Let a county account read one more station.
    Grant {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        login: String,
        #[arg(long)]
        station: StationId,
    },
    /// Take a station back from a county account; its next page of that station answers as
    /// for an unknown station.
    Revoke {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        login: String,
        #[arg(long)]
        station: StationId,
    },
    /// List the accounts, one line each: login, role (`supervisor` or `county`), the
    /// stations it reads (comma-separated ids; `-` for none), its id, and `disabled` if it
    /// is.
    List {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum ConsoleCommand {
    /// Read every household document again into the console's read model (all stations,
    /// or one).
    Rebuild {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: Option<StationId>,
    },
}

#[derive(Subcommand, Debug)]
enum BlobsCommand {
    /// Delete partial uploads untouched for longer than --older-than-days (their devices
    /// start them again from the first byte). `serve` does it at start and every 6 hours
    /// (--partial-upload-days); safe while serving.
    Sweep {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long, default_value_t = doorstep_server::blob_sweep::DEFAULT_PARTIAL_UPLOAD_DAYS)]
        older_than_days: u32,
    },
}

#[derive(Subcommand, Debug)]
enum HouseholdCommand {
    /// Erase a household: its document, history, cards, index rows and access log go from
    /// the server now and from every device of the station at its next sync; the ledger
    /// (DATA/erasures.jsonl) records ids, time, who and the reason code.
    Erase {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        #[arg(long)]
        household: HouseholdId,
        /// Why, as a code: subject-request (the person or guardian asked, PIPL Art. 47),
        /// created-in-error, retention-ended, other. Never free text: the ledger holds no
        /// personal data.
        #[arg(long)]
        reason: String,
        /// Who erases (an operator id, not a name); default `cli`.
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Redact inside a household's history: a wrong ID number, a note on the wrong child, a
    /// person who asked to be removed. The household's document becomes a new generation
    /// without them and without its old history, on the server now and on every device of
    /// the station at its next sync; the ledger (DATA/redactions.jsonl) records ids, field
    /// names, time, who and the reason code (docs/operations.md, "Redacting").
    Redact {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        #[arg(long)]
        household: HouseholdId,
        /// What to redact, repeatable: KIND/RECORD/FIELD (a field's every value, e.g.
        /// person/<id>/id_number, visit/<id>/concerns, household//address), KIND/RECORD
        /// (a whole record and what refers to it, its attachments included, e.g.
        /// person/<id>) or attachment/<id> (one attachment; its bytes go too).
        #[arg(long = "item", required = true)]
        items: Vec<String>,
        /// Why, as a code: subject-request, created-in-error, other (never free text).
        #[arg(long)]
        reason: String,
        /// Who redacts (an operator id, not a name); default `cli`.
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Retention: erase every household closed for longer than --closed-for-days (reason
    /// retention-ended), or list them with --dry-run. Run it daily (cron, a systemd timer).
    Retention {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        /// Days a household stays on the server after it was closed.
        #[arg(long)]
        closed_for_days: u32,
        /// One station (default: all).
        #[arg(long)]
        station: Option<StationId>,
        /// List what would be erased; erase nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Phone retention: every household closed for longer than --closed-for-days leaves
    /// every phone of its station at their next sync (after they hand in their edits to
    /// it); the server keeps it until `household retention` erases it. A retired household
    /// whose status is no longer closed comes back. --dry-run lists. Run it daily.
    Retire {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        /// Days a household stays on the phones after it was closed (or reopened).
        #[arg(long)]
        closed_for_days: u32,
        /// One station (default: all).
        #[arg(long)]
        station: Option<StationId>,
        /// List what would leave or come back; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Bring a household retired from the phones back to the phones of those who should
    /// see it (their next sync); its status stays closed until a worker sets it, and the
    /// phone period counts again from now.
    Reopen {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        #[arg(long)]
        household: HouseholdId,
    },
    /// Assign a household — or every household of a village, or a worker's whole caseload
    /// (when they leave) — to a worker and/or a team: their phones receive it at their next
    /// sync, and the phones of workers who no longer see it remove it (after handing in
    /// their edits to it).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["household", "village", "from_worker"])))]
    Assign {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        #[arg(long)]
        household: Option<HouseholdId>,
        /// Every household of the station whose case file names this village.
        #[arg(long)]
        village: Option<String>,
        /// Every household assigned to this worker (by name, not through their team).
        #[arg(long)]
        from_worker: Option<WorkerId>,
        #[arg(long, required_unless_present = "team")]
        worker: Option<WorkerId>,
        #[arg(long)]
        team: Option<String>,
        /// Who assigns (an operator id, not a name); default `cli`.
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Show whom a household is assigned to (worker, team, when, by whom).
    Assignment {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        household: HouseholdId,
    },
    /// List the households a worker sees (their scope), one id per line.
    Scope {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        worker: WorkerId,
    },
    /// Who read a household's case file, newest first: the console's reads and the
    /// openings on the phones (issue 16). One line each, ids only: when (ms; a phone's own
    /// clock), `console` or `device`, the account or worker id, the device id (`-` for the
    /// console), what (the page or export; `case_file` on a phone).
    Accesses {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        #[arg(long)]
        household: HouseholdId,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// List the erasure ledger (one line per erasure: when, station, household, reason, by).
    Erasures {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: Option<StationId>,
    },
}

#[derive(Subcommand, Debug)]
enum StationCommand {
    /// Create a station; prints its id.
    Create {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        /// Display name, e.g. 石桥镇社工站.
        #[arg(long)]
        name: String,
    },
    /// Show or set a station's time zone (ADR 0028): the console's dates, the monthly
    /// report's months, the CLI's card listings. UTC+08:00 (Beijing time) unless set.
    /// Setting it reads the station's documents into the console's read model again.
    Timezone {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        /// An offset from UTC: +08:00, -05:30, UTC (or Asia/Shanghai, which is +08:00).
        /// Without it, the station's zone is printed.
        #[arg(long, allow_hyphen_values = true)]
        offset: Option<String>,
    },
    /// Show or set the attachment kinds the station's phones download eagerly after a sync
    /// (ADR 0032), e.g. signatures; the others are fetched when the worker opens them. The
    /// setting reaches the station's phones at their next sync. None unless set.
    PinnedAttachments {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        /// Comma-separated kinds (photo, signature, document), or `none`. Without it, the
        /// station's setting is printed.
        #[arg(long)]
        kinds: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum WorkerCommand {
    /// Add a worker to a station; prints the worker id. The label reaches the station's
    /// phones at their next sync.
    Add {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        /// How phones and reports name the worker, e.g. "W01 / 张丽": 1-64 characters, one
        /// line. The station's phones receive it (no other station's do).
        #[arg(long)]
        label: String,
        /// What the worker sees: `worker` (their caseload: households assigned to them or
        /// their team, and those they create), `supervisor` (the whole station), `county`
        /// (console reports; no caseload on a phone).
        #[arg(long, default_value = "worker")]
        role: String,
        /// The worker's team (1-32 characters, e.g. a village's workers): they see the
        /// households assigned to it.
        #[arg(long)]
        team: Option<String>,
    },
    /// Change a worker's role; their phones receive what entered their scope and remove
    /// what left it at their next sync.
    Role {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        worker: WorkerId,
        /// worker, supervisor or county.
        #[arg(long)]
        role: String,
    },
    /// Put a worker in a team (or, with --none, in none); their phones follow at the next
    /// sync.
    Team {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        worker: WorkerId,
        #[arg(long, required_unless_present = "none")]
        team: Option<String>,
        #[arg(long, conflicts_with = "team")]
        none: bool,
    },
    /// Change a worker's label; the station's phones get it at their next sync.
    Label {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        worker: WorkerId,
        /// The new label (1-64 characters, one line).
        #[arg(long)]
        label: String,
    },
    /// List a station's workers, one per line: id, label, role and team (if any), tab-separated.
    List {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
    },
}

#[derive(Subcommand, Debug)]
enum VocabularyCommand {
    /// Add a category to a station's vocabulary, or change one's labels; the station's
    /// phones get it at their next sync. A new code starts with `local.`; a built-in code
    /// keeps its kind and parent and takes the station's labels.
    Add {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        /// Lowercase ASCII words joined by dots, e.g. local.flood_2026 (at most 64).
        #[arg(long)]
        code: String,
        /// The zh-CN label, e.g. 因灾困境儿童 (1-64 characters, one line).
        #[arg(long)]
        label_zh: String,
        /// The English label (optional; at most 64 characters).
        #[arg(long, default_value = "")]
        label_en: String,
        /// child, person, elderly (written on persons) or household (household tags).
        #[arg(long)]
        kind: String,
        /// The category it counts under, e.g. child.difficult (same kind).
        #[arg(long)]
        parent: Option<String>,
    },
    /// The vocabulary a station's phones use: a version line, then one entry per line
    /// (code, kind, parent, zh-CN label, English label, origin), tab-separated.
    List {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        /// Only the station's own entries and relabellings.
        #[arg(long)]
        station_only: bool,
    },
}

#[derive(Subcommand, Debug)]
enum DeviceCommand {
    /// Enrol a device for a worker; prints the device id and a one-time code (valid 7 days)
    /// that the app exchanges for its token.
    Enroll {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        worker: WorkerId,
    },
    /// Revoke a device: its next sync is refused and told to wipe local data.
    Revoke {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        device: DeviceId,
    },
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOORSTEP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The storage chosen on the command line (set once in `main`).
#[derive(Debug, Default, Clone)]
struct Storage {
    database: Option<String>,
    schema: Option<String>,
    database_ca_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    key_env: Option<String>,
}

static STORAGE: std::sync::OnceLock<Storage> = std::sync::OnceLock::new();

fn storage() -> Storage {
    STORAGE.get().cloned().unwrap_or_default()
}

const NO_KEY: &str = "server.db is encrypted and needs its key: make one with \
    `doorstep-server key generate --out /etc/doorstep/server.key` (keep it off the data disk \
    and out of its backups), then give --key-file PATH (or DOORSTEP_KEY_FILE), or \
    --key-env NAME for an environment variable holding it (docs/operations.md)";

/// A key from a file or an environment variable.
fn read_key(
    file: Option<&std::path::Path>,
    env: Option<&str>,
) -> Result<Option<ServerKey>, String> {
    match (file, env) {
        (Some(_), Some(_)) => Err("give a key file or a key environment variable, not both".into()),
        (Some(f), None) => ServerKey::from_file(f).map(Some).map_err(|e| e.to_string()),
        (None, Some(n)) => ServerKey::from_env(n).map(Some).map_err(|e| e.to_string()),
        (None, None) => Ok(None),
    }
}

/// The SQLite database's key (required).
fn data_key() -> Result<ServerKey, String> {
    let s = storage();
    read_key(s.key_file.as_deref(), s.key_env.as_deref())?.ok_or_else(|| NO_KEY.to_owned())
}

fn open(data: &std::path::Path) -> Result<AnyStore, String> {
    let s = storage();
    let key = match &s.database {
        Some(_) if s.key_file.is_some() || s.key_env.is_some() => {
            return Err(
                "--key-file / --key-env are for the SQLite data directory; with \
                 --database, encryption at rest is the PostgreSQL server's (docs/operations.md)"
                    .into(),
            )
        }
        Some(_) => None,
        None => {
            warn_if_key_inside(data, s.key_file.as_deref());
            Some(data_key()?)
        }
    };
    let with = OpenWith {
        key: key.as_ref(),
        database_ca: s.database_ca_file.as_deref(),
    };
    AnyStore::open_with(data, s.database.as_deref(), s.schema.as_deref(), with).map_err(|e| match s
        .database
    {
        Some(_) => format!("cannot open the database: {e}"),
        None => format!("cannot open {}: {e}", data.display()),
    })
}

/// A key file inside the data directory travels with every copy of it.
fn warn_if_key_inside(data: &std::path::Path, key_file: Option<&std::path::Path>) {
    let (Some(key), Ok(data)) = (key_file, data.canonicalize()) else {
        return;
    };
    if key.canonicalize().is_ok_and(|k| k.starts_with(&data)) {
        tracing::warn!(
            "the key file is inside the data directory: a copy of the directory carries its \
             key; keep the key elsewhere (docs/operations.md)"
        );
    }
}

/// Refuse SQLite-only commands on PostgreSQL.
fn sqlite_only(what: &str) -> Result<(), String> {
    match storage().database {
        Some(_) => Err(format!(
            "{what} is for the SQLite data directory; for PostgreSQL use its own tools \
             (docs/operations.md)"
        )),
        None => Ok(()),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    runtime_with_blocking(512)
}

/// A runtime whose blocking pool (where syncs run) has at most `threads` threads.
fn runtime_with_blocking(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// The password of a new console account: the first line of standard input.
fn read_password(login: &str) -> Result<String, String> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        eprint!("password for {login} (it is shown as you type; or pipe it in): ");
    }
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(password.trim_end_matches(['\r', '\n']).to_owned())
}

/// A county account by its login, for `account grant` / `revoke`.
fn county_account_id(store: &AnyStore, login: &str) -> Result<console::AccountId, String> {
    match store
        .account_by_login(login.trim())
        .map_err(|e| e.to_string())?
    {
        None => Err(format!("no console account with the login {login:?}")),
        Some(a) if a.role != console::AccountRole::County => Err(format!(
            "{login:?} is a station supervisor's account: only a county account is granted \
             stations"
        )),
        Some(a) => Ok(a.id),
    }
}

/// A station-grant failure in words.
fn grant_error(e: doorstep_server::store::StoreError) -> String {
    match e {
        doorstep_server::store::StoreError::NotFound(what) => format!("no such {what}"),
        other => other.to_string(),
    }
}

fn account_command(command: AccountCommand) -> Result<(), String> {
    use doorstep_server::console::auth;
    match command {
        AccountCommand::Add {
            data,
            station,
            login,
        } => {
            let store = open(&data)?;
            let password = read_password(&login)?;
            let id = auth::add_account(&store, station, login.trim(), &password, now_ms())
                .map_err(|e| e.to_string())?;
            println!("{id}");
        }
        AccountCommand::AddCounty {
            data,
            login,
            stations,
        } => {
            let store = open(&data)?;
            let password = read_password(&login)?;
            let id = auth::add_county_account(&store, login.trim(), &password, &stations, now_ms())
                .map_err(|e| match e {
                    auth::AuthError::Store(doorstep_server::store::StoreError::NotFound(_)) => {
                        "no such station: nothing was made".to_owned()
                    }
                    other => other.to_string(),
                })?;
            println!("{id}");
        }
        AccountCommand::Grant {
            data,
            login,
            station,
        } => {
            let store = open(&data)?;
            let id = county_account_id(&store, &login)?;
            let added = store
                .grant_station(id, station, now_ms())
                .map_err(grant_error)?;
            println!(
                "{}",
                if added {
                    "granted"
                } else {
                    "already granted: nothing changed"
                }
            );
        }
        AccountCommand::Revoke {
            data,
            login,
            station,
        } => {
            let store = open(&data)?;
            let id = county_account_id(&store, &login)?;
            let removed = store.revoke_station(id, station).map_err(grant_error)?;
            println!(
                "{}",
                if removed {
                    "revoked"
                } else {
                    "not granted: nothing changed"
                }
            );
        }
        AccountCommand::List { data } => {
            for l in open(&data)?.accounts().map_err(|e| e.to_string())? {
                let stations: Vec<String> = l.stations.iter().map(|s| s.to_string()).collect();
                println!(
                    "{}\t{}\t{}\t{}{}",
                    l.account.login,
                    l.account.role.as_str(),
                    if stations.is_empty() {
                        "-".to_owned()
                    } else {
                        stations.join(",")
                    },
                    l.account.id,
                    if l.account.disabled { "\tdisabled" } else { "" }
                );
            }
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    let _ = STORAGE.set(Storage {
        database: cli.database.clone(),
        schema: cli.schema.clone(),
        database_ca_file: cli.database_ca_file.clone(),
        key_file: cli.key_file.clone(),
        key_env: cli.key_env.clone(),
    });
    match cli.command {
        Command::Serve {
            data,
            listen,
            cache_mib,
            cache_documents,
            max_concurrent_syncs,
            no_console,
            edge,
        } => {
            // Opened before the async runtime starts: the PostgreSQL client blocks.
            let store = Arc::new(open(&data)?);
            // Erasures the database lacks (a restored backup, an erasure cut short).
            erasure::reapply(store.as_ref(), &Ledger::in_dir(&data)).map_err(|e| e.to_string())?;
            // Likewise redactions (ADR 0026).
            redaction::reapply(store.as_ref(), &Ledger::redactions_in(&data))
                .map_err(|e| e.to_string())?;
            // Workers' labels the station documents lack (stations from before labels, a
            // publication cut short): ADR 0017.
            workers::publish_all_labels(store.as_ref()).map_err(|e| e.to_string())?;
            // The sync slots bound the work; the pool's own bound is a backstop (a slot is
            // released just before its thread goes back to the pool).
            runtime_with_blocking(max_concurrent_syncs.max(1) * 2)?.block_on(async move {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
                if cache_documents.is_some() {
                    tracing::warn!(
                        "--cache-documents is deprecated: the cache is sized in bytes \
                         (--cache-mib); both bounds apply"
                    );
                }
                let mut config = ServerConfig {
                    cache_bytes: cache_mib.saturating_mul(1024 * 1024),
                    cache_documents,
                    max_concurrent_syncs,
                    ..ServerConfig::default()
                };
                if no_console {
                    config.console = None;
                }
                edge.apply(&mut config, Some(SocketAddr::from(([127, 0, 0, 1], 9091))));
                let server = doorstep_server::api::serve_until_signal(store, listener, config)
                    .await
                    .map_err(|e| e.to_string())?;
                server.wait().await.map_err(|e| e.to_string())
            })
        }
        Command::Account { command } => account_command(command),
        Command::Console {
            command: ConsoleCommand::Rebuild { data, station },
        } => {
            let store = open(&data)?;
            let stations = match station {
                Some(s) => vec![s],
                None => store
                    .stations()
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect(),
            };
            for s in stations {
                let r = doorstep_server::console::read_model::rebuild(&store, s)
                    .map_err(|e| e.to_string())?;
                println!(
                    "station {s}: {} documents read (households and station work), {} did not load",
                    r.documents, r.skipped
                );
            }
            Ok(())
        }
        Command::Station {
            command:
                StationCommand::Timezone {
                    data,
                    station,
                    offset,
                },
        } => {
            let store = open(&data)?;
            let Some(offset) = offset else {
                println!(
                    "{}",
                    store.station_zone(station).map_err(|e| e.to_string())?
                );
                return Ok(());
            };
            let zone = UtcOffset::parse(&offset).map_err(|e| e.to_string())?;
            store
                .set_station_zone(station, zone)
                .map_err(|e| e.to_string())?;
            // The read model keeps the day each need, inquiry, card and response was
            // recorded on, in the station's zone: read them again in the new one.
            let r = doorstep_server::console::read_model::rebuild(&store, station)
                .map_err(|e| e.to_string())?;
            println!(
                "station {station}: time zone {zone}; {} documents read again into the console's read model",
                r.documents
            );
            Ok(())
        }
        Command::Station {
            command:
                StationCommand::PinnedAttachments {
                    data,
                    station,
                    kinds,
                },
        } => {
            use doorstep_server::pinned;
            let store = open(&data)?;
            let names = |kinds: &[doorstep_core::AttachmentKind]| {
                if kinds.is_empty() {
                    "none".to_owned()
                } else {
                    kinds
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                }
            };
            let Some(kinds) = kinds else {
                let current = pinned::pinned_kinds(&store, station).map_err(|e| e.to_string())?;
                println!("{}", names(&current));
                return Ok(());
            };
            let kinds = pinned::parse_kinds(&kinds).map_err(|e| e.to_string())?;
            let changed =
                pinned::set_pinned_kinds(&store, station, &kinds).map_err(|e| e.to_string())?;
            println!(
                "station {station}: pinned attachment kinds {}{}",
                names(&kinds),
                if changed { "" } else { " (unchanged)" }
            );
            Ok(())
        }
        Command::Station {
            command: StationCommand::Create { data, name },
        } => {
            let id = open(&data)?
                .create_station(name.trim(), now_ms())
                .map_err(|e| e.to_string())?;
            println!("{id}");
            Ok(())
        }
        Command::Household {
            command:
                HouseholdCommand::Erase {
                    data,
                    station,
                    household,
                    reason,
                    by,
                },
        } => {
            let reason = ErasureReason::parse(reason.trim()).ok_or_else(|| {
                let codes: Vec<&str> = ErasureReason::ALL.iter().map(|r| r.as_str()).collect();
                format!("--reason must be one of: {}", codes.join(", "))
            })?;
            let store = open(&data)?;
            let ledger = Ledger::in_dir(&data);
            let record = erasure::erase(
                &store,
                &ledger,
                station,
                household,
                reason,
                by.trim(),
                now_ms(),
            )
            .map_err(|e| e.to_string())?;
            println!(
                "erased household {} of station {} ({}); its devices delete it at their next sync",
                record.doc,
                record.station,
                record.reason.as_str()
            );
            Ok(())
        }
        Command::Household {
            command:
                HouseholdCommand::Redact {
                    data,
                    station,
                    household,
                    items,
                    reason,
                    by,
                },
        } => {
            let reason = ErasureReason::parse(reason.trim()).ok_or_else(|| {
                let codes: Vec<&str> = ErasureReason::ALL.iter().map(|r| r.as_str()).collect();
                format!("--reason must be one of: {}", codes.join(", "))
            })?;
            let items = items
                .iter()
                .map(|i| doorstep_core::doc::generation::Redaction::parse(i.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    "--item is KIND/RECORD/FIELD, KIND/RECORD or attachment/<id> (e.g. \
                     person/<id>/id_number)"
                        .to_string()
                })?;
            let store = open(&data)?;
            let notice = redaction::redact(
                &store,
                &Ledger::redactions_in(&data),
                station,
                household,
                &items,
                reason,
                by.trim(),
                now_ms(),
            )
            .map_err(|e| e.to_string())?;
            println!(
                "redacted household {} of station {} ({}): generation {}, {} item(s); its devices \
                 replace their copy at their next sync",
                notice.doc,
                station,
                notice.reason.as_str(),
                notice.generation,
                notice.items.len()
            );
            Ok(())
        }
        Command::Household {
            command:
                HouseholdCommand::Assign {
                    data,
                    station,
                    household,
                    village,
                    from_worker,
                    worker,
                    team,
                    by,
                },
        } => {
            use doorstep_server::caseload::{self, Pick};
            let team = team
                .map(|t| doorstep_core::TeamName::new(&t))
                .transpose()
                .map_err(|e| e.to_string())?;
            let pick = match (household, village, from_worker) {
                (Some(h), _, _) => Pick::One(h),
                (_, Some(v), _) => Pick::Village(v),
                (_, _, Some(w)) => Pick::AssignedTo(w),
                _ => return Err("give --household, --village or --from-worker".into()),
            };
            let r = caseload::assign(
                &open(&data)?,
                station,
                &pick,
                worker,
                team.as_ref(),
                by.trim(),
                now_ms(),
            )
            .map_err(|e| e.to_string())?;
            match pick {
                Pick::One(h) => println!(
                    "household {h} assigned; {} worker(s) receive it and {} remove it at their next sync",
                    r.entered, r.left
                ),
                _ => println!(
                    "{} household(s) assigned; {} receive and {} remove, counted per worker and household, at their next sync{}",
                    r.households,
                    r.entered,
                    r.left,
                    match r.unreadable {
                        0 => String::new(),
                        n => format!("; {n} household(s) whose document does not read were skipped"),
                    }
                ),
            }
            Ok(())
        }
        Command::Household {
            command: HouseholdCommand::Assignment { data, household },
        } => {
            match open(&data)?
                .assignment(household)
                .map_err(|e| e.to_string())?
            {
                None => println!("household {household} is not assigned (supervisors only)"),
                Some(a) => println!(
                    "worker\t{}\nteam\t{}\nassigned_at\t{}\nassigned_by\t{}",
                    a.worker.map(|w| w.to_string()).unwrap_or_default(),
                    a.team.map(|t| t.as_str().to_owned()).unwrap_or_default(),
                    a.assigned_at,
                    a.assigned_by
                ),
            }
            Ok(())
        }
        Command::Household {
            command: HouseholdCommand::Scope { data, worker },
        } => {
            for id in open(&data)?
                .scope_documents(worker)
                .map_err(|e| e.to_string())?
            {
                println!("{id}");
            }
            Ok(())
        }
        Command::Household {
            command:
                HouseholdCommand::Retention {
                    data,
                    closed_for_days,
                    station,
                    dry_run,
                },
        } => {
            let store = open(&data)?;
            let expired = erasure::retention(
                &store,
                &Ledger::in_dir(&data),
                station,
                i64::from(closed_for_days) * 86_400_000,
                now_ms(),
                dry_run,
            )
            .map_err(|e| e.to_string())?;
            for e in &expired {
                println!("{}\t{}\tclosed {}", e.station, e.household, e.closed_at);
            }
            println!(
                "{} household(s) closed for more than {closed_for_days} days{}",
                expired.len(),
                if dry_run {
                    " (dry run: nothing erased)"
                } else {
                    " erased"
                }
            );
            Ok(())
        }
        Command::Household {
            command:
                HouseholdCommand::Retire {
                    data,
                    closed_for_days,
                    station,
                    dry_run,
                },
        } => {
            use doorstep_server::retirement::{sweep, Step};
            let store = open(&data)?;
            let swept = sweep(
                &store,
                station,
                i64::from(closed_for_days) * 86_400_000,
                now_ms(),
                dry_run,
            )
            .map_err(|e| e.to_string())?;
            let (mut retired, mut returned) = (0, 0);
            for s in &swept {
                match (s.step, s.closed_at) {
                    (Step::Retire, Some(at)) => {
                        retired += 1;
                        println!("{}\t{}\tretire\tclosed {at}", s.station, s.household);
                    }
                    _ => {
                        returned += 1;
                        println!("{}\t{}\treturn\tno longer closed", s.station, s.household);
                    }
                }
            }
            println!(
                "{retired} household(s) closed for more than {closed_for_days} days {}, \
                 {returned} {}",
                if dry_run {
                    "would leave the phones"
                } else {
                    "leave the phones"
                },
                if dry_run {
                    "would come back (dry run: nothing changed)"
                } else {
                    "come back"
                }
            );
            Ok(())
        }
        Command::Household {
            command:
                HouseholdCommand::Reopen {
                    data,
                    station,
                    household,
                },
        } => {
            let store = open(&data)?;
            let was_retired = store
                .retirement(household)
                .map_err(|e| e.to_string())?
                .is_some_and(|r| r.retired());
            let r = doorstep_server::retirement::reopen(&store, station, household, now_ms())
                .map_err(|e| e.to_string())?;
            if was_retired {
                println!(
                    "household {household} returns to the phones of {} worker(s) at their next sync",
                    r.entered
                );
            } else {
                println!("household {household} was not retired from the phones: nothing to do");
            }
            Ok(())
        }
        Command::Household {
            command:
                HouseholdCommand::Accesses {
                    data,
                    station,
                    household,
                    limit,
                },
        } => {
            use doorstep_server::store::console::{Accessor, ConsoleStore};
            let entries = open(&data)?
                .accesses(station, Some(household), limit)
                .map_err(|e| e.to_string())?;
            for e in entries {
                let (source, who, device) = match e.by {
                    Accessor::Console { account, .. } => {
                        ("console", account.to_string(), "-".to_owned())
                    }
                    Accessor::Device { worker, device, .. } => {
                        ("device", worker.to_string(), device.to_string())
                    }
                };
                println!("{}\t{source}\t{who}\t{device}\t{}", e.at, e.what);
            }
            Ok(())
        }
        Command::Household {
            command: HouseholdCommand::Erasures { data, station },
        } => {
            for r in open(&data)?.erasures(station).map_err(|e| e.to_string())? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    r.erased_at,
                    r.station,
                    r.doc,
                    r.reason.as_str(),
                    r.erased_by
                );
            }
            Ok(())
        }
        Command::Worker {
            command:
                WorkerCommand::Add {
                    data,
                    station,
                    label,
                    role,
                    team,
                },
        } => {
            let role = workers::role(&role).map_err(|e| e.to_string())?;
            let team = team
                .map(|t| doorstep_core::TeamName::new(&t))
                .transpose()
                .map_err(|e| e.to_string())?;
            let store = open(&data)?;
            let id = workers::add_worker(&store, station, &label, now_ms())
                .map_err(|e| e.to_string())?;
            // A new worker sees nothing yet: setting role and team writes no scope entry
            // unless the station already has households they now see.
            workers::set_access(&store, id, Some(role), team.as_ref().map(Some), now_ms())
                .map_err(|e| e.to_string())?;
            println!("{id}");
            Ok(())
        }
        Command::Worker {
            command: WorkerCommand::Role { data, worker, role },
        } => {
            let role = workers::role(&role).map_err(|e| e.to_string())?;
            let r = workers::set_access(&open(&data)?, worker, Some(role), None, now_ms())
                .map_err(|e| e.to_string())?;
            println!(
                "worker {worker} is now {role}; their phones receive {} and remove {} household(s) at their next sync",
                r.entered, r.left
            );
            Ok(())
        }
        Command::Worker {
            command:
                WorkerCommand::Team {
                    data,
                    worker,
                    team,
                    none: _,
                },
        } => {
            let team = team
                .map(|t| doorstep_core::TeamName::new(&t))
                .transpose()
                .map_err(|e| e.to_string())?;
            let r = workers::set_access(&open(&data)?, worker, None, Some(team.as_ref()), now_ms())
                .map_err(|e| e.to_string())?;
            println!(
                "worker {worker} moved; their phones receive {} and remove {} household(s) at their next sync",
                r.entered, r.left
            );
            Ok(())
        }
        Command::Worker {
            command:
                WorkerCommand::Label {
                    data,
                    worker,
                    label,
                },
        } => {
            // The label may be a name: the answer names ids only.
            let station =
                workers::set_label(&open(&data)?, worker, &label).map_err(|e| e.to_string())?;
            println!(
                "worker {worker} relabelled; the phones of station {station} get it at their \
                 next sync"
            );
            Ok(())
        }
        Command::Worker {
            command: WorkerCommand::List { data, station },
        } => {
            let store = open(&data)?;
            if !store.station_exists(station).map_err(|e| e.to_string())? {
                return Err(format!("no station {station}"));
            }
            for (worker, label) in store.worker_labels(station).map_err(|e| e.to_string())? {
                let access = store.worker_access(worker).map_err(|e| e.to_string())?;
                let (role, team) = access
                    .map(|a| (a.role.as_str(), a.team.map(|t| t.as_str().to_owned())))
                    .unwrap_or(("worker", None));
                match team {
                    Some(team) => println!("{worker}\t{label}\t{role}\t{team}"),
                    None => println!("{worker}\t{label}\t{role}"),
                }
            }
            Ok(())
        }
        Command::Vocabulary {
            command:
                VocabularyCommand::Add {
                    data,
                    station,
                    code,
                    label_zh,
                    label_en,
                    kind,
                    parent,
                },
        } => {
            let entry = doorstep_core::StationEntry {
                code: doorstep_core::CategoryCode::parse(&code).map_err(|e| e.to_string())?,
                kind: doorstep_core::CategoryKind::parse(&kind).map_err(|e| e.to_string())?,
                parent: parent
                    .as_deref()
                    .map(doorstep_core::CategoryCode::parse)
                    .transpose()
                    .map_err(|e| format!("--parent: {e}"))?,
                label_zh,
                label_en,
            };
            match vocabulary::set_entry(&open(&data)?, station, &entry)
                .map_err(|e| e.to_string())?
            {
                Some(version) => println!(
                    "{} written: station {station} vocabulary version {version}; its phones get \
                     it at their next sync",
                    entry.code
                ),
                None => println!("{} unchanged: the station already has it so", entry.code),
            }
            Ok(())
        }
        Command::Vocabulary {
            command:
                VocabularyCommand::List {
                    data,
                    station,
                    station_only,
                },
        } => {
            let v = vocabulary::station_vocabulary(&open(&data)?, station)
                .map_err(|e| e.to_string())?;
            println!(
                "# built-in version {}, station version {}",
                v.builtin_version, v.station_version
            );
            for e in v.entries() {
                let origin = match e.origin {
                    doorstep_core::EntryOrigin::BuiltIn => "built-in",
                    doorstep_core::EntryOrigin::StationOverride => "station-label",
                    doorstep_core::EntryOrigin::Station => "station",
                };
                if station_only && origin == "built-in" {
                    continue;
                }
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{origin}",
                    e.code,
                    e.kind.as_str(),
                    e.parent.as_ref().map(|p| p.as_str()).unwrap_or("-"),
                    e.label_zh,
                    e.label_en
                );
            }
            Ok(())
        }
        Command::Device {
            command: DeviceCommand::Enroll { data, worker },
        } => {
            let (device, code) = credentials::enroll_device(&open(&data)?, worker, now_ms())
                .map_err(|e| e.to_string())?;
            println!("device {device}\ncode   {code}");
            Ok(())
        }
        Command::Device {
            command: DeviceCommand::Revoke { data, device },
        } => {
            if open(&data)?
                .revoke_device(device, now_ms())
                .map_err(|e| e.to_string())?
            {
                println!("revoked {device}");
                Ok(())
            } else {
                Err(format!("no device {device}"))
            }
        }
        Command::Cards { command } => cards(command),
        Command::Blobs {
            command:
                BlobsCommand::Sweep {
                    data,
                    older_than_days,
                },
        } => {
            let swept =
                doorstep_server::blob_sweep::sweep(&open(&data)?, older_than_days, now_ms())
                    .map_err(|e| e.to_string())?;
            println!(
                "swept {} partial upload(s) untouched for over {older_than_days} day(s), {} byte(s)",
                swept.blobs, swept.bytes
            );
            Ok(())
        }
        Command::Backup {
            data,
            to,
            backup_key_file,
            backup_key_env,
        } => {
            sqlite_only("backup")?;
            let backup_key = read_key(backup_key_file.as_deref(), backup_key_env.as_deref())?;
            match open(&data)? {
                AnyStore::Sqlite(s) => match &backup_key {
                    Some(k) => s.backup_with_key(&to, Some(k)),
                    None => s.backup(&to),
                }
                .map_err(|e| e.to_string())?,
                AnyStore::Postgres(_) => return Err(
                    "use pg_dump or your database's backups for PostgreSQL (docs/operations.md)"
                        .into(),
                ),
            }
            println!(
                "backup written to {} (encrypted with the {} key)",
                to.display(),
                if backup_key.is_some() {
                    "backup"
                } else {
                    "database's"
                }
            );
            Ok(())
        }
        Command::Restore {
            from,
            data,
            backup_key_file,
            backup_key_env,
        } => {
            sqlite_only("restore")?;
            let key = data_key()?;
            let backup_key = read_key(backup_key_file.as_deref(), backup_key_env.as_deref())?
                .unwrap_or(key.clone());
            let epoch = SqliteStore::restore(&from, &backup_key, &data, &key)
                .map_err(|e| format!("cannot restore {}: {e}", from.display()))?;
            // The backup may predate erasures: the ledger beside the database re-applies them.
            let reapplied = erasure::reapply(&open(&data)?, &Ledger::in_dir(&data))
                .map_err(|e| e.to_string())?;
            if reapplied > 0 {
                println!(
                    "re-applied {reapplied} erasure(s) from the ledger that the backup predates"
                );
            }
            let redacted = redaction::reapply(&open(&data)?, &Ledger::redactions_in(&data))
                .map_err(|e| e.to_string())?;
            if redacted > 0 {
                println!(
                    "re-applied {redacted} redaction(s) from the ledger that the backup predates"
                );
            }
            println!(
                "restored {} into {} (encrypted); new epoch {epoch}: devices re-push what the \
                 backup lacks on their next sync",
                from.display(),
                data.display()
            );
            Ok(())
        }
        Command::Encrypt { data } => {
            sqlite_only("encrypt")?;
            let key = data_key()?;
            SqliteStore::encrypt_plaintext(&data, &key)
                .map_err(|e| format!("cannot encrypt {}: {e}", data.display()))?;
            println!(
                "{} is now encrypted; the plaintext file was overwritten with zeros and removed. \
                 Destroy plaintext backups made before now (docs/operations.md).",
                data.join("server.db").display()
            );
            Ok(())
        }
        Command::Key {
            command: KeyCommand::Generate { out },
        } => {
            ServerKey::generate()
                .and_then(|k| k.write_new_file(&out))
                .map_err(|e| e.to_string())?;
            println!("new key written to {} (mode 0600)", out.display());
            Ok(())
        }
        Command::Key {
            command: KeyCommand::Rotate { data, new_key_file },
        } => {
            sqlite_only("key rotate")?;
            let old = data_key()?;
            let new = if new_key_file.exists() {
                ServerKey::from_file(&new_key_file).map_err(|e| e.to_string())?
            } else {
                let k = ServerKey::generate().map_err(|e| e.to_string())?;
                k.write_new_file(&new_key_file).map_err(|e| e.to_string())?;
                k
            };
            if new == old {
                return Err("the new key is the same as the current one".into());
            }
            SqliteStore::rotate_key(&data, &old, &new)
                .map_err(|e| format!("cannot rotate the key of {}: {e}", data.display()))?;
            println!(
                "{} is now encrypted with {}: start the server with --key-file {}, then \
                 destroy the old key once no backup needs it (backups keep the key they were \
                 made with)",
                data.join("server.db").display(),
                new_key_file.display(),
                new_key_file.display()
            );
            Ok(())
        }
        Command::NewEpoch { data } => {
            let epoch = open(&data)?.new_epoch().map_err(|e| e.to_string())?;
            println!("epoch {epoch}");
            Ok(())
        }
        Command::Demo {
            listen,
            data,
            no_serve,
            edge,
        } => {
            let mut config = ServerConfig::default();
            edge.apply(&mut config, Some(SocketAddr::from(([127, 0, 0, 1], 0))));
            runtime()?
                .block_on(doorstep_server::demo::run(listen, data, !no_serve, config))
                .map_err(|e| e.to_string())
        }
    }
}

/// Cards as lines: serial, status, household id, the issuing worker's label with the end of
/// its id, the issue time in the station's time zone.
fn print_cards(
    labels: &[(WorkerId, String)],
    zone: UtcOffset,
    rows: &[doorstep_server::store::CardRow],
) {
    for c in rows {
        println!(
            "{}  {}  household {}  issued by {} on {} ({zone})",
            c.serial,
            c.status,
            c.household,
            worker_named(labels, c.issued_by),
            zone.time(c.issued_at)
        );
    }
    if rows.is_empty() {
        println!("none");
    }
}

/// `W01 (…3f9a1c2e)`: a worker's label and the last 8 hex digits of its id (the first ones
/// of a v7 id are its time of creation, alike for workers added together).
fn worker_named(labels: &[(WorkerId, String)], worker: WorkerId) -> String {
    let id = worker.to_string();
    let short = &id[id.len().saturating_sub(8)..];
    match labels.iter().find(|(w, _)| *w == worker) {
        Some((_, label)) => format!("{label} (…{short})"),
        None => format!("an unknown worker (…{short})"),
    }
}

/// A worker of the station named by its id or by its label.
fn station_worker(labels: &[(WorkerId, String)], named: &str) -> Result<WorkerId, String> {
    let named = named.trim();
    if let Ok(id) = WorkerId::parse(named) {
        return Ok(id);
    }
    let found: Vec<WorkerId> = labels
        .iter()
        .filter(|(_, label)| label.as_str() == named)
        .map(|(w, _)| *w)
        .collect();
    match found[..] {
        [one] => Ok(one),
        // The label is not repeated: labels may be names (the answer names ids only).
        [] => Err(
            "no worker of this station has that label: give the label exactly, or the \
             worker's id"
                .to_owned(),
        ),
        _ => Err(format!(
            "{} workers of this station have that label: give the id of one ({})",
            found.len(),
            found
                .iter()
                .map(WorkerId::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn cards(command: CardsCommand) -> Result<(), String> {
    use doorstep_server::cards as admin;
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match command {
        CardsCommand::Batch {
            data,
            station,
            prefix,
            first,
            last,
        } => {
            println!(
                "{}",
                admin::add_batch(&open(&data)?, station, &prefix, first, last)
                    .map_err(|x| e(&x))?
            );
        }
        CardsCommand::Lease {
            data,
            station,
            batch,
            device,
            first,
            last,
            expires,
        } => {
            println!(
                "{}",
                admin::add_lease(&open(&data)?, station, batch, first, last, device, expires)
                    .map_err(|x| e(&x))?
            );
        }
        CardsCommand::Return {
            data,
            station,
            lease,
        } => {
            admin::return_lease(&open(&data)?, station, lease).map_err(|x| e(&x))?;
            println!("returned {lease}");
        }
        CardsCommand::Find {
            data,
            station,
            serial,
        } => {
            let serial = CardSerial::parse(&serial).map_err(|x| e(&x))?.to_string();
            let store = open(&data)?;
            let labels = store.worker_labels(station).map_err(|x| e(&x))?;
            let zone = store.station_zone(station).map_err(|x| e(&x))?;
            print_cards(
                &labels,
                zone,
                &store.cards_by_serial(station, &serial).map_err(|x| e(&x))?,
            );
        }
        CardsCommand::Duplicates { data, station } => {
            let store = open(&data)?;
            let labels = store.worker_labels(station).map_err(|x| e(&x))?;
            let zone = store.station_zone(station).map_err(|x| e(&x))?;
            print_cards(
                &labels,
                zone,
                &store.duplicate_cards(station).map_err(|x| e(&x))?,
            );
        }
        CardsCommand::Issued {
            data,
            station,
            worker,
            from,
            to,
        } => {
            let store = open(&data)?;
            // Days in the station's time zone (ADR 0028), not UTC.
            let zone = store.station_zone(station).map_err(|x| e(&x))?;
            let start = zone.start_of(from);
            let end = to
                .add_days(1)
                .map(|d| zone.start_of(d) - 1)
                .map_err(|x| e(&x))?;
            let labels = store.worker_labels(station).map_err(|x| e(&x))?;
            let worker = station_worker(&labels, &worker)?;
            print_cards(
                &labels,
                zone,
                &store
                    .cards_issued_by(station, worker, start, end)
                    .map_err(|x| e(&x))?,
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo tells a story on stdout: only warnings from the server it runs, unless
    // DOORSTEP_LOG asks for more.
    init_tracing(if matches!(cli.command, Command::Demo { .. }) {
        "warn"
    } else {
        "info"
    });
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
