//! `doorstep-server`: the sync server and its admin commands.
// A command-line tool prints its results.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use doorstep_core::{DeviceId, StationId, WorkerId};
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, ServerConfig, SqliteStore};

/// Doorstep sync server: devices of a township social-work station sync their household
/// case files through it.
#[derive(Parser, Debug)]
#[command(name = "doorstep-server", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the sync API (POST /v1/sync, POST /v1/enroll, GET /healthz, GET /metrics).
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

fn open(data: &std::path::Path) -> Result<SqliteStore, String> {
    SqliteStore::open(data).map_err(|e| format!("cannot open {}: {e}", data.display()))
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve {
            data,
            listen,
            cache_documents,
        } => {
            let store = Arc::new(open(&data)?);
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let config = ServerConfig {
                cache_documents,
                ..ServerConfig::default()
            };
            let server = doorstep_server::api::serve_until_signal(store, listener, config)
                .await
                .map_err(|e| e.to_string())?;
            server.wait().await.map_err(|e| e.to_string())
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
        Command::Backup { data, to } => {
            open(&data)?.backup(&to).map_err(|e| e.to_string())?;
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
        } => doorstep_server::demo::run(listen, data, !no_serve)
            .await
            .map_err(|e| e.to_string()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
