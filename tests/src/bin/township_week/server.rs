//! The sync server under test: preferably the release `doorstep-server` binary as a child
//! process (so its CPU time and peak memory are its own), else in this process.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use doorstep_server::store::any::{AnyStore, OpenWith};
use doorstep_server::store::key::ServerKey;
use doorstep_server::{ServerConfig, ServerHandle};
use tokio::runtime::Runtime;

use super::Res;

/// CPU time (user + system) of a process or thread, from `/proc/<which>/stat`, in seconds.
/// `which` is a pid, `self` or `thread-self`.
pub fn cpu_seconds(which: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{which}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is field 3, utime 14, stime 15.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A numeric line of `/proc/<which>/status` (`VmHWM`, `VmRSS` in kB; `Threads`).
pub fn status_field(which: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{which}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Reset the peak resident set (`VmHWM`) of a process to its current RSS.
pub fn reset_peak(which: &str) -> bool {
    std::fs::write(format!("/proc/{which}/clear_refs"), "5").is_ok()
}

enum Kind {
    Child(Child),
    InProcess(Option<ServerHandle>),
}

/// How to start the server: its cache, its database (SQLite in the data directory unless a
/// PostgreSQL URL and schema are given) and any further `serve` flags.
#[derive(Clone, Debug, Default)]
pub struct ServerOpts {
    /// The cache's memory in MiB (`serve --cache-mib`); `None`: the server's default.
    pub cache_mib: Option<usize>,
    /// The deprecated document bound (`serve --cache-documents`), if any.
    pub cache_documents: Option<usize>,
    /// PostgreSQL URL and schema (`serve --database URL --schema NAME`).
    pub postgres: Option<(String, String)>,
    /// More `serve` arguments, e.g. `--max-concurrent-syncs 16` (child process only).
    pub extra: Vec<String>,
}

/// A running server on 127.0.0.1 over a SQLite data directory or a PostgreSQL schema.
pub struct Server {
    pub url: String,
    /// Where `/metrics` is served (its own listener, not the public address).
    pub metrics_url: Option<String>,
    pub log: Option<PathBuf>,
    kind: Kind,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("url", &self.url)
            .field("child", &self.is_child())
            .finish()
    }
}

/// The release server binary next to this executable (`target/release/doorstep-server`).
/// The key file of a SQLite data directory (`<data>.key` beside it, as in production: not
/// inside the data), made on first use: the server's database is encrypted.
pub fn key_file(data: &Path) -> Res<PathBuf> {
    let path = data.with_extension("key");
    if !path.exists() {
        ServerKey::generate()?.write_new_file(&path)?;
    }
    Ok(path)
}

/// The key of a SQLite data directory (see [`key_file`]).
pub fn data_key(data: &Path) -> Res<ServerKey> {
    Ok(ServerKey::from_file(&key_file(data)?)?)
}

pub fn default_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.join("doorstep-server");
    bin.is_file().then_some(bin)
}

impl Server {
    /// Start `binary serve` as a child process, or (without a binary) serve in-process,
    /// with a choice of database and further flags.
    pub fn start_with(
        rt: &Runtime,
        data: &Path,
        binary: Option<&Path>,
        opts: &ServerOpts,
    ) -> Res<Server> {
        match binary {
            Some(bin) => Self::start_child(rt, data, bin, opts),
            None => Self::start_in_process(rt, data, opts),
        }
    }

    fn start_child(rt: &Runtime, data: &Path, bin: &Path, opts: &ServerOpts) -> Res<Server> {
        // A wrapper for profiling, e.g. TW_SERVER_PREFIX="valgrind --tool=callgrind".
        let prefix: Vec<String> = std::env::var("TW_SERVER_PREFIX")
            .map(|p| p.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        // Pick a free port, then hand it to the child (a tiny race, fine on loopback).
        let port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let metrics_port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log_path = data.join("server.log");
        let log = std::fs::File::create(&log_path)?;
        let level = std::env::var("DOORSTEP_LOG").unwrap_or_else(|_| "warn".into());
        let mut cmd = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        match &opts.postgres {
            Some((url, schema)) => {
                cmd.arg("--database").arg(url).arg("--schema").arg(schema);
            }
            None => {
                cmd.arg("--key-file").arg(key_file(data)?);
            }
        }
        let child = cmd
            .arg("serve")
            .arg("--data")
            .arg(data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .args(
                opts.cache_mib
                    .map(|m| ["--cache-mib".to_owned(), m.to_string()])
                    .into_iter()
                    .flatten(),
            )
            .args(
                opts.cache_documents
                    .map(|n| ["--cache-documents".to_owned(), n.to_string()])
                    .into_iter()
                    .flatten(),
            )
            .args(&opts.extra)
            // More `serve` flags, e.g. TW_SERVER_ARGS="--request-timeout-secs 3600" with a
            // profiler in TW_SERVER_PREFIX.
            .args(
                std::env::var("TW_SERVER_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .env("DOORSTEP_LOG", level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut server = Server {
            url: format!("http://127.0.0.1:{port}"),
            metrics_url: Some(format!("http://127.0.0.1:{metrics_port}")),
            log: Some(log_path),
            kind: Kind::Child(child),
        };
        server.wait_ready(rt)?;
        Ok(server)
    }

    fn start_in_process(rt: &Runtime, data: &Path, opts: &ServerOpts) -> Res<Server> {
        let (url, schema) = match &opts.postgres {
            Some((u, s)) => (Some(u.as_str()), Some(s.as_str())),
            None => (None, None),
        };
        let key = match url {
            Some(_) => None,
            None => Some(data_key(data)?),
        };
        let with = OpenWith {
            key: key.as_ref(),
            ..OpenWith::default()
        };
        let store = Arc::new(AnyStore::open_with(data, url, schema, with)?);
        let (cache_mib, cache_documents) = (opts.cache_mib, opts.cache_documents);
        let handle = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let mut config = ServerConfig {
                cache_documents,
                ..ServerConfig::default()
            };
            if let Some(m) = cache_mib {
                config.cache_bytes = m.saturating_mul(1024 * 1024);
            }
            doorstep_server::serve(store, listener, config).await
        })?;
        Ok(Server {
            url: handle.url(),
            metrics_url: handle.metrics_url(),
            log: None,
            kind: Kind::InProcess(Some(handle)),
        })
    }

    fn wait_ready(&mut self, rt: &Runtime) -> Res<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/healthz", self.url);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Kind::Child(c) = &mut self.kind {
                if let Some(status) = c.try_wait()? {
                    return Err(
                        format!("server exited at start: {status}; see {:?}", self.log).into(),
                    );
                }
            }
            let ok = rt.block_on(async {
                matches!(client.get(&url).send().await, Ok(r) if r.status().is_success())
            });
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("server did not become ready in 120 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_child(&self) -> bool {
        matches!(self.kind, Kind::Child(_))
    }

    /// `/proc` name of the server process (`self` when in-process).
    pub fn proc_name(&self) -> String {
        match &self.kind {
            Kind::Child(c) => c.id().to_string(),
            Kind::InProcess(_) => "self".into(),
        }
    }

    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.proc_name()).unwrap_or(f64::NAN)
    }

    pub fn reset_peak(&self) -> bool {
        reset_peak(&self.proc_name())
    }

    /// (peak RSS since the last reset, current RSS), kB.
    pub fn memory_kb(&self) -> (u64, u64) {
        let p = self.proc_name();
        (
            status_field(&p, "VmHWM").unwrap_or(0),
            status_field(&p, "VmRSS").unwrap_or(0),
        )
    }

    /// The document cache's gauges from `/metrics`: documents, estimated bytes, their peak
    /// since start (`None` if the server does not say).
    pub fn cache_stats(&self, rt: &Runtime) -> Option<(u64, u64, u64)> {
        let url = format!("{}/metrics", self.metrics_url.as_deref()?);
        let text = rt.block_on(async { reqwest::get(url).await.ok()?.text().await.ok() })?;
        let gauge = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        };
        Some((
            gauge("doorstep_cache_documents")?,
            gauge("doorstep_cache_bytes")?,
            gauge("doorstep_cache_peak_bytes")?,
        ))
    }

    /// Stop: SIGTERM to the child we started (by pid), then wait; in-process: shut down.
    pub fn stop(mut self, rt: &Runtime) {
        match &mut self.kind {
            Kind::Child(c) => {
                let pid = c.id().to_string();
                let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    match c.try_wait() {
                        Ok(Some(_)) | Err(_) => break,
                        Ok(None) if Instant::now() > deadline => {
                            let _ = c.kill();
                            let _ = c.wait();
                            break;
                        }
                        Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }
            Kind::InProcess(h) => {
                if let Some(h) = h.take() {
                    rt.block_on(h.shutdown());
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Kind::Child(c) = &mut self.kind {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
