//! `doorstep-server`: the sync server and its admin commands.
// A command-line tool prints its results.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use doorstep_core::{CardBatchId, CardLeaseId, CardSerial, Date, DeviceId, StationId, WorkerId};
use doorstep_server::edge_args::EdgeArgs;
use doorstep_server::store::any::AnyStore;
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, ServerConfig};

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
        /// Documents kept loaded in memory.
        #[arg(long, default_value_t = 1024)]
        cache_documents: usize,
        /// Syncs worked on at once; more wait their turn (bounds threads and memory).
        #[arg(long, default_value_t = doorstep_server::api::DEFAULT_MAX_CONCURRENT_SYNCS)]
        max_concurrent_syncs: usize,
        #[command(flatten)]
        edge: EdgeArgs,
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
    /// Enrol and revoke devices.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Contact cards (爱心联系卡): batches, leases to devices, lookups for supervisors.
    Cards {
        #[command(subcommand)]
        command: CardsCommand,
    },
    /// Write a consistent copy of the database to a file (safe while serving).
    Backup {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        /// Destination file (must not exist).
        #[arg(long)]
        to: PathBuf,
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
    /// Cards a worker issued over a period (dates inclusive, UTC).
    Issued {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        #[arg(long)]
        worker: WorkerId,
        #[arg(long)]
        from: Date,
        #[arg(long)]
        to: Date,
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
}

#[derive(Subcommand, Debug)]
enum WorkerCommand {
    /// Add a worker to a station; prints the worker id.
    Add {
        #[arg(long, default_value = "doorstep-data")]
        data: PathBuf,
        #[arg(long)]
        station: StationId,
        /// A short label shown in reports, e.g. W01 (avoid full names).
        #[arg(long)]
        label: String,
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

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOORSTEP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The storage chosen on the command line (set once in `main`).
static DATABASE: std::sync::OnceLock<(Option<String>, Option<String>)> = std::sync::OnceLock::new();

fn open(data: &std::path::Path) -> Result<AnyStore, String> {
    let (database, schema) = DATABASE.get().cloned().unwrap_or_default();
    AnyStore::open(data, database.as_deref(), schema.as_deref()).map_err(|e| match database {
        Some(_) => format!("cannot open the database: {e}"),
        None => format!("cannot open {}: {e}", data.display()),
    })
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

fn run(cli: Cli) -> Result<(), String> {
    let _ = DATABASE.set((cli.database.clone(), cli.schema.clone()));
    match cli.command {
        Command::Serve {
            data,
            listen,
            cache_documents,
            max_concurrent_syncs,
            edge,
        } => {
            // Opened before the async runtime starts: the PostgreSQL client blocks.
            let store = Arc::new(open(&data)?);
            // The sync slots bound the work; the pool's own bound is a backstop (a slot is
            // released just before its thread goes back to the pool).
            runtime_with_blocking(max_concurrent_syncs.max(1) * 2)?.block_on(async move {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
                let mut config = ServerConfig {
                    cache_documents,
                    max_concurrent_syncs,
                    ..ServerConfig::default()
                };
                edge.apply(&mut config, Some(SocketAddr::from(([127, 0, 0, 1], 9091))));
                let server = doorstep_server::api::serve_until_signal(store, listener, config)
                    .await
                    .map_err(|e| e.to_string())?;
                server.wait().await.map_err(|e| e.to_string())
            })
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
        Command::Worker {
            command:
                WorkerCommand::Add {
                    data,
                    station,
                    label,
                },
        } => {
            let id = open(&data)?
                .add_worker(station, label.trim(), now_ms())
                .map_err(|e| e.to_string())?;
            println!("{id}");
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
        Command::Backup { data, to } => {
            match open(&data)? {
                AnyStore::Sqlite(s) => s.backup(&to).map_err(|e| e.to_string())?,
                AnyStore::Postgres(_) => return Err(
                    "use pg_dump or your database's backups for PostgreSQL (docs/operations.md)"
                        .into(),
                ),
            }
            println!("backup written to {}", to.display());
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

fn print_cards(rows: &[doorstep_server::store::CardRow]) {
    for c in rows {
        println!(
            "{}  {}  household {}  worker {}  at {}",
            c.serial, c.status, c.household, c.issued_by, c.issued_at
        );
    }
    if rows.is_empty() {
        println!("none");
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
            print_cards(
                &open(&data)?
                    .cards_by_serial(station, &serial)
                    .map_err(|x| e(&x))?,
            );
        }
        CardsCommand::Duplicates { data, station } => {
            print_cards(&open(&data)?.duplicate_cards(station).map_err(|x| e(&x))?);
        }
        CardsCommand::Issued {
            data,
            station,
            worker,
            from,
            to,
        } => {
            let start = from.to_days() * 86_400_000;
            let end = (to.to_days() + 1) * 86_400_000 - 1;
            print_cards(
                &open(&data)?
                    .cards_issued_by(station, worker, start, end)
                    .map_err(|x| e(&x))?,
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    init_tracing();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
