//! The township-week benchmark (`shared/workload.md`): one station, W devices, H households;
//! a week offline, then every device reconnects at once. Measures bytes, round trips, wall
//! time, server CPU and memory, checks convergence against an independent automerge merge,
//! and compares with the lower bound and with automerge's own sync protocol.
//!
//! ```text
//! cargo build --release -p doorstep-server          # the server runs as a child process
//! cargo run --release -p doorstep-tests --bin township-week [-- --json out.json]
//! cargo run --release -p doorstep-tests --bin township-week -- --generate --seed 7 --households 500
//! cargo run --release -p doorstep-tests --bin township-week -- --load 100,1000
//! cargo run --release -p doorstep-tests --bin township-week -- --load 100,1000 --database postgres://…
//! cargo run --release -p doorstep-tests --bin township-week -- --load 100 --load-households 1,4,16,64 --server-cache 256
//! ```
// A benchmark reports its figures on stdout; setup failures end it with their message.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

#[path = "township_week/bound.rs"]
mod bound;
#[path = "township_week/load.rs"]
mod load;
#[path = "township_week/pg.rs"]
mod pg;
#[path = "township_week/reference.rs"]
mod reference;
#[path = "township_week/replay.rs"]
mod replay;
#[path = "township_week/report.rs"]
mod report;
#[path = "township_week/server.rs"]
mod server;
#[path = "township_week/trace.rs"]
mod trace;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use doorstep_core::protocol::budget::round_trips_forced_by;
use doorstep_core::Durability;

use reference::OwnChanges;
use replay::Pass;
use report::{percentile, Report};
use server::Server;
use trace::Trace;

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Township-week benchmark of Doorstep sync (see shared/workload.md).
#[derive(Parser, Debug)]
#[command(name = "township-week")]
struct Args {
    /// The reference trace [default: <workspace>/../shared/workload/township-week.jsonl.zst].
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Use the built-in generator instead of the trace (for scaling runs).
    #[arg(long)]
    generate: bool,
    #[arg(long, default_value_t = 20250303)]
    seed: u64,
    #[arg(long, default_value_t = 2000)]
    households: usize,
    #[arg(long, default_value_t = 8)]
    devices: usize,
    /// Visits per device.
    #[arg(long, default_value_t = 40)]
    visits: usize,
    /// Profile edits per device.
    #[arg(long, default_value_t = 5)]
    profile_edits: usize,
    /// Write the figures as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run the server load benchmark with these device counts (e.g. 100,1000) instead.
    #[arg(long, value_delimiter = ',')]
    load: Vec<usize>,
    /// Load: syncs per device.
    #[arg(long, default_value_t = 10)]
    load_syncs: usize,
    /// Load: devices per station.
    #[arg(long, default_value_t = 8)]
    load_per_station: usize,
    /// Load: households per device, one run per value (e.g. 1,4,16,64: the documents grow
    /// at a fixed --server-cache; a summary table compares the runs' memory).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    load_households: Vec<usize>,
    /// Load: each device's worker sees only their own households (a caseload, ADR 0019)
    /// instead of the whole station (all workers in one team, as before scopes).
    #[arg(long)]
    load_scoped: bool,
    /// Load: run the server on PostgreSQL at this URL (postgres://user@host:port/db), in a
    /// fresh schema per run, dropped after it; default: SQLite in a temporary directory.
    #[arg(long)]
    database: Option<String>,
    /// Load: the server's `--max-concurrent-syncs` [default: the server's own default].
    #[arg(long)]
    server_concurrency: Option<usize>,
    /// Load: stop starting new syncs after this many seconds.
    #[arg(long, default_value_t = 60)]
    load_seconds: u64,
    /// The server's document cache in MiB (`serve --cache-mib`) [default: the server's].
    #[arg(long)]
    server_cache_mib: Option<usize>,
    /// Bound the server's document cache by a count too (`serve --cache-documents`,
    /// deprecated; the load tables before ADR 0039 ran with 1,024 or 256).
    #[arg(long)]
    server_cache: Option<usize>,
    /// The doorstep-server binary [default: next to this executable].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Run the server inside this process (CPU and memory then include the devices).
    #[arg(long)]
    in_process: bool,
    /// Skip the automerge sync-protocol comparison (the independent merge still runs).
    #[arg(long)]
    skip_automerge: bool,
    /// Time each step of the devices' syncs (prepare / HTTP / apply): the same requests as
    /// `HttpTransport::sync`, through an instrumented copy of its loop.
    #[arg(long)]
    breakdown: bool,
    /// Diagnostic: memory of this many loaded copies of a small household document.
    #[arg(long)]
    doc_memory: Option<usize>,
    /// Give every household this many earlier visits (each with its note, finalised),
    /// made before the week and synced in the setup: the history it carries.
    #[arg(long, default_value_t = 0)]
    history_visits: usize,
    /// Every device asks for this response budget (bytes) instead of choosing it from its
    /// link (e.g. 4194304: the transport's constant before ADR 0039).
    #[arg(long)]
    budget: Option<u32>,
    /// Give up (and fail) if not converged after this many passes.
    #[arg(long, default_value_t = 6)]
    max_passes: usize,
    /// Serve without the console and its read model (`serve --no-console`), to see what
    /// the read model costs the reconnect.
    #[arg(long)]
    no_console: bool,
}

/// Households W01 creates between its setup pushes.
const SETUP_PUSH_HOUSEHOLDS: usize = 1_000;

fn default_trace() -> PathBuf {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/workload/township-week.jsonl.zst");
    p.canonicalize().unwrap_or(p)
}

fn machine(report: &mut Report) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let n = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .unwrap_or_default()
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).trim().to_owned();
    let dirty = git(&["status", "--porcelain"]).lines().count();
    report.section("machine", "Machine");
    report.text(
        "commit",
        "workspace commit",
        format!("{commit} (+{dirty} uncommitted paths in the working tree)"),
    );
    report.int("nproc", "CPUs (nproc)", n as u64);
    report.text("cpu", "CPU model", cpu);
    report.text(
        "loadavg_start",
        "load average at start (1/5/15 min)",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("township-week: NOT CONVERGED");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("township-week: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Res<bool> {
    let week = args.load.is_empty() && args.doc_memory.is_none();
    let trace = if week { Some(load_trace(args)?) } else { None };
    // One worker thread per device (a device blocked in a store call holds its worker), two
    // for the HTTP client's own tasks.
    let devices = trace.as_ref().map_or(args.devices, |t| t.devices.len());
    let workers = (devices + 2).max(4);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    let binary = if args.in_process {
        None
    } else {
        match args.server_bin.clone().or_else(server::default_binary) {
            Some(b) => Some(b),
            None => {
                eprintln!(
                    "doorstep-server binary not found next to this executable; serving in-process \
                     (build it with `cargo build --release -p doorstep-server` to measure the server alone)"
                );
                None
            }
        }
    };
    let mut report = Report::default();
    machine(&mut report);
    report.int(
        "runtime_workers",
        "tokio worker threads (bench)",
        workers as u64,
    );

    if let Some(n) = args.doc_memory {
        let steps = load::doc_memory(n)?;
        report.section(
            "doc_memory",
            "Memory of one small household document (diagnostic)",
        );
        report.int("copies", "copies", n as u64);
        for (i, (label, kb)) in steps.iter().enumerate() {
            report.float(
                &format!("step_{i}_kb"),
                &format!("{label}, kB each"),
                *kb,
                "kB",
            );
        }
    }
    let ok = if args.doc_memory.is_some() {
        true
    } else if args.load.is_empty() {
        let trace = trace.ok_or("no trace")?;
        run_week(args, trace, &rt, binary.as_deref(), &mut report)?
    } else {
        let mut outcomes = Vec::new();
        for &n in &args.load {
            for &h in &args.load_households {
                eprintln!("load: {n} devices, {h} households each ...");
                outcomes.push(load::run_load(
                    &rt,
                    binary.as_deref(),
                    &load::LoadArgs {
                        devices: n,
                        syncs: args.load_syncs,
                        per_station: args.load_per_station,
                        households: h,
                        scoped: args.load_scoped,
                        max_seconds: args.load_seconds,
                        cache_mib: args.server_cache_mib,
                        cache_documents: args.server_cache,
                        seed: args.seed,
                        postgres: args.database.clone(),
                        server_args: args
                            .server_concurrency
                            .map(|c| vec!["--max-concurrent-syncs".to_owned(), c.to_string()])
                            .unwrap_or_default(),
                    },
                    &mut report,
                )?);
            }
        }
        if outcomes.len() > 1 {
            load_summary(&outcomes, &mut report);
        }
        true
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    report.section("end", "End of run");
    report.text(
        "loadavg_end",
        "load average at end (1/5/15 min)",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report.json())?)?;
        eprintln!("figures written to {}", path.display());
    }
    Ok(ok)
}

/// One row per load run: throughput, latency and the server's memory as devices and
/// documents grow.
fn load_summary(outcomes: &[load::LoadOutcome], report: &mut Report) {
    report.section(
        "load_summary",
        "Server load: summary (devices, documents, cache → syncs/s, p50 / p99, RSS after setup / peak in window / end, database)",
    );
    for (i, o) in outcomes.iter().enumerate() {
        let mb = |kb: u64| kb as f64 / 1024.0;
        report.text(
            &format!("run_{i}"),
            &format!(
                "{} devices, {} documents, cache {}",
                o.devices, o.documents, o.cache
            ),
            format!(
                "{:.0} syncs/s, {:.0} / {:.0} ms, {:.0} / {:.0} / {:.0} MB, {}",
                o.syncs_per_s,
                o.p50_ms,
                o.p99_ms,
                mb(o.rss_after_setup_kb),
                mb(o.peak_kb),
                mb(o.rss_end_kb),
                o.db_bytes
                    .map_or("?".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6)),
            ),
        );
    }
}

fn load_trace(args: &Args) -> Res<Trace> {
    if args.generate {
        trace::generate(trace::GenParams {
            seed: args.seed,
            households: args.households,
            devices: args.devices,
            visits: args.visits,
            profile_edits: args.profile_edits,
        })
    } else {
        trace::load(&args.trace.clone().unwrap_or_else(default_trace))
    }
}

/// Link estimate (computed, not measured): round trips × 300 ms + bytes at 100 kbit/s.
fn link_secs(round_trips: u64, bytes: u64) -> f64 {
    round_trips as f64 * 0.3 + bytes as f64 * 8.0 / 100_000.0
}

fn run_week(
    args: &Args,
    trace: Trace,
    rt: &tokio::runtime::Runtime,
    binary: Option<&Path>,
    report: &mut Report,
) -> Res<bool> {
    let t_all = Instant::now();
    let w = trace.devices.len();
    let h_count = trace.households.len();
    let touched = trace.touched();
    let changed: std::collections::BTreeSet<usize> = touched.iter().flatten().copied().collect();
    report.section("workload", "Workload");
    report.text("source", "source", trace.source.clone());
    if let Some(sha) = &trace.sha256 {
        report.text("sha256", "SHA-256 of the decompressed trace", sha.clone());
        report.int(
            "decompressed_bytes",
            "decompressed size",
            trace.decompressed_bytes as u64,
        );
    }
    report.text(
        "sha256_matches",
        "matches township-week.jsonl.sha256",
        match trace.sha_matches() {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "not checked",
        },
    );
    report.text("params", "trace parameters", trace.params.to_string());
    report.int("households", "households (H)", h_count as u64);
    report.int("devices", "devices (W)", w as u64);
    report.int("actions", "user actions", trace.action_count() as u64);
    report.int(
        "new_visits",
        "new_visit actions",
        trace.count(|o| matches!(o, trace::Op::NewVisit { .. })) as u64,
    );
    report.int(
        "note_inserts",
        "note_insert actions",
        trace.count(|o| matches!(o, trace::Op::NoteInsert { .. })) as u64,
    );
    report.int(
        "profile_edits",
        "profile actions",
        trace.count(|o| {
            matches!(
                o,
                trace::Op::Phone(_)
                    | trace::Op::Address(_)
                    | trace::Op::HeadTagAdd(_)
                    | trace::Op::MemberAdd(_)
            )
        }) as u64,
    );
    report.int(
        "note_chars",
        "note characters typed",
        trace.note_chars() as u64,
    );
    report.int(
        "households_changed",
        "households touched in the week (trace)",
        changed.len() as u64,
    );
    let multi = (0..h_count)
        .filter(|h| touched.iter().filter(|t| t.contains(h)).count() > 1)
        .count();
    report.int(
        "households_changed_by_2plus",
        "households touched by 2+ devices",
        multi as u64,
    );

    // ----- server and devices
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("server");
    let codes = replay::prepare_station(&data, w)?;
    let server = Server::start_with(
        rt,
        &data,
        binary,
        &server::ServerOpts {
            cache_mib: args.server_cache_mib,
            cache_documents: args.server_cache,
            extra: if args.no_console {
                vec!["--no-console".to_owned()]
            } else {
                Vec::new()
            },
            ..server::ServerOpts::default()
        },
    )?;
    eprintln!(
        "server at {} ({})",
        server.url,
        if server.is_child() {
            "child process"
        } else {
            "in-process"
        }
    );
    let dev_dir = tmp.path().join("devices");
    std::fs::create_dir_all(&dev_dir)?;
    let mut devs = replay::enroll_devices(rt, &server.url, &codes, &dev_dir, Durability::Relaxed)?;
    if let Some(b) = args.budget {
        for d in &mut devs {
            d.transport = d.transport.clone().with_budget(b);
        }
    }

    // ----- setup (not measured): device 0 creates the households, everyone bootstraps
    eprintln!("setup: creating {h_count} households on W01 ...");
    let first_ms = trace
        .devices
        .iter()
        .flatten()
        .map(|a| a.time_ms)
        .min()
        .unwrap_or(0);
    let t = Instant::now();
    // W01 pushes every `SETUP_PUSH_HOUSEHOLDS` households as it goes: one push of 8,000 new
    // documents outlasted the server's 60 s request timeout on this loaded 2-core machine.
    let mut world = replay::World {
        households: Vec::with_capacity(trace.households.len()),
        heads: Vec::with_capacity(trace.households.len()),
        changes: 0,
    };
    let mut early_push = doorstep_core::transport::SyncReport::default();
    let mut early_push_s = 0.0;
    let chunks: Vec<_> = trace.households.chunks(SETUP_PUSH_HOUSEHOLDS).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let w = replay::create_households(&devs[0], chunk, first_ms - 7 * 86_400_000)?;
        world.households.extend(w.households);
        world.heads.extend(w.heads);
        world.changes += w.changes;
        if i + 1 < chunks.len() {
            let p = Instant::now();
            let r = devs[0].sync(rt)?;
            early_push_s += p.elapsed().as_secs_f64();
            early_push.bytes_up += r.bytes_up;
            early_push.round_trips += r.round_trips;
        }
    }
    let history_changes = if args.history_visits > 0 {
        eprintln!(
            "setup: {} earlier visits per household ...",
            args.history_visits
        );
        replay::add_history(
            &devs[0],
            &world,
            args.history_visits,
            first_ms - 7 * 86_400_000,
            args.seed,
        )?
    } else {
        0
    };
    let create_s = t.elapsed().as_secs_f64() - early_push_s;
    let t = Instant::now();
    let mut push0 = devs[0].sync(rt)?;
    let push0_s = t.elapsed().as_secs_f64() + early_push_s;
    push0.bytes_up += early_push.bytes_up;
    push0.round_trips += early_push.round_trips;
    let t = Instant::now();
    let mut boot_down = 0u64;
    let mut boot_rt = 0u64;
    for d in &devs[1..] {
        let r = d.sync(rt)?;
        boot_down += r.bytes_down;
        boot_rt += u64::from(r.round_trips);
    }
    let boot_s = t.elapsed().as_secs_f64();
    devs[0].sync(rt)?;
    let ids = world.households.clone();
    eprintln!("setup: checking initial convergence ...");
    let pre_dev = replay::all_device_heads(&devs, &ids)?;
    let pre_srv = replay::server_heads(&data, &ids)?;
    let pre_divergent = replay::divergent(&pre_dev, &pre_srv);
    if pre_divergent > 0 {
        return Err(format!("setup did not converge on {pre_divergent} households").into());
    }
    let pre_heads = pre_srv;
    let initial: Vec<Vec<u8>> = ids
        .iter()
        .map(|h| devs[0].store.export_document(*h))
        .collect::<Result<_, _>>()?;
    for d in &mut devs {
        d.reopen(Durability::Full)?;
    }
    report.section("setup", "Setup (not measured in the figures below)");
    report.text(
        "durability",
        "durability during setup",
        "Relaxed (synchronous=OFF) for creating households and bootstrapping; every store reopened with Full before the week",
    );
    report.int(
        "changes",
        "changes made by W01 (household + one per person)",
        world.changes as u64,
    );
    report.int(
        "history_visits",
        "earlier visits per household (--history-visits)",
        args.history_visits as u64,
    );
    report.int(
        "history_changes",
        "changes made by W01 for them",
        history_changes as u64,
    );
    report.secs("create_s", "W01 creates the households", create_s);
    report.secs("push_s", "W01 pushes them", push0_s);
    report.bytes("push_bytes_up", "W01 push, bytes up", push0.bytes_up);
    report.int(
        "push_round_trips",
        "W01 push, round trips",
        u64::from(push0.round_trips),
    );
    report.secs(
        "bootstrap_s",
        "other devices bootstrap (one after another)",
        boot_s,
    );
    report.bytes(
        "bootstrap_bytes_down",
        "bootstrap bytes down (all devices)",
        boot_down,
    );
    report.int(
        "bootstrap_round_trips",
        "bootstrap round trips (all devices)",
        boot_rt,
    );
    let initial_bytes: usize = initial.iter().map(Vec::len).sum();
    report.bytes(
        "initial_documents_bytes",
        "all household documents, saved (automerge)",
        initial_bytes as u64,
    );

    // ----- offline week (measured per device)
    report.section(
        "offline_week",
        "Offline week (per device, every action durable: Durability::Full)",
    );
    let mut all_kinds: std::collections::BTreeMap<&'static str, Vec<f64>> = Default::default();
    let mut total_calls = 0usize;
    let mut week_walls = Vec::new();
    for d in &devs {
        eprintln!(
            "week: {} replays {} actions ...",
            d.label,
            trace.devices[d.index].len()
        );
        let s = replay::replay(d, &trace.devices[d.index], &world)?;
        report.text(
            &format!("{}_wall", d.label),
            &format!(
                "{}: {} actions, {} durable calls",
                d.label, s.actions, s.calls
            ),
            format!(
                "{:.2} s ({:.2} ms per call)",
                s.wall.as_secs_f64(),
                s.wall.as_secs_f64() * 1e3 / s.calls.max(1) as f64
            ),
        );
        week_walls.push(s.wall.as_secs_f64());
        total_calls += s.calls;
        for (k, v) in s.per_kind {
            all_kinds
                .entry(k)
                .or_default()
                .extend(v.iter().map(|d| d.as_secs_f64() * 1e3));
        }
    }
    report.int(
        "durable_calls",
        "durable store calls, all devices",
        total_calls as u64,
    );
    report.secs(
        "wall_max_s",
        "slowest device",
        week_walls.iter().copied().fold(0.0, f64::max),
    );
    report.secs(
        "wall_sum_s",
        "all devices, one after another",
        week_walls.iter().sum(),
    );
    for (k, mut v) in all_kinds {
        v.sort_by(f64::total_cmp);
        report.text(
            &format!("call_{k}"),
            &format!("{k}: n, mean / p50 / p99"),
            format!(
                "{}, {:.2} / {:.2} / {:.2} ms",
                v.len(),
                v.iter().sum::<f64>() / v.len().max(1) as f64,
                percentile(&v, 50.0),
                percentile(&v, 99.0)
            ),
        );
    }

    // ----- after the week, before reconnecting: what each device holds
    eprintln!("capturing the devices' week (documents, new changes) ...");
    let mut after: Vec<HashMap<usize, Vec<u8>>> = Vec::new();
    let mut own: Vec<OwnChanges> = Vec::new();
    let mut pending = Vec::new();
    for d in &devs {
        let mut docs = HashMap::new();
        let mut mine = Vec::new();
        for &h in &touched[d.index] {
            // An action can be a no-op (a tag the head already has): count real changes.
            let changes = d.store.export_changes(ids[h], &pre_heads[h])?;
            if !changes.is_empty() {
                docs.insert(h, d.store.export_document(ids[h])?);
                mine.push((h, changes));
            }
        }
        after.push(docs);
        own.push(mine);
        pending.push(replay::pending_push(&d.store)?);
    }
    let changed_docs: Vec<usize> = own.iter().map(Vec::len).collect();
    let unsynced_ok = devs.iter().zip(&changed_docs).all(|(d, n)| {
        d.store
            .unsynced_households()
            .map(|u| u.len() == *n)
            .unwrap_or(false)
    });
    let lb = reference::lower_bound(&own)?;

    // ----- reconnect: passes until every device and the server agree
    eprintln!("reconnect ...");
    let peak_reset = server.reset_peak();
    let (before_peak, _) = server.memory_kb();
    let mut passes: Vec<Pass> = Vec::new();
    let mut converged = false;
    let mut final_heads = Vec::new();
    let mut divergent_after = Vec::new();
    while passes.len() < args.max_passes {
        let p = replay::pass(rt, &devs, &server, args.breakdown)?;
        eprintln!(
            "pass {}: {:.2} s, {} B up, {} B down, round trips {:?}",
            passes.len() + 1,
            p.wall.as_secs_f64(),
            p.bytes_up(),
            p.bytes_down(),
            p.devices
                .iter()
                .map(|d| d.report.round_trips)
                .collect::<Vec<_>>()
        );
        passes.push(p);
        let dh = replay::all_device_heads(&devs, &ids)?;
        let sh = replay::server_heads(&data, &ids)?;
        let n = replay::divergent(&dh, &sh);
        divergent_after.push(n);
        if n == 0 {
            converged = true;
            final_heads = sh;
            break;
        }
    }
    let (peak_kb, rss_kb) = server.memory_kb();
    let cache = server.cache_stats(rt);
    // One more pass with nothing new anywhere: what does a no-op sync cost?
    let idle_pending: usize = devs
        .iter()
        .map(|d| replay::pending_push(&d.store).map(|p| p.documents))
        .sum::<Res<usize>>()?;
    let idle = replay::pass(rt, &devs, &server, args.breakdown)?;

    let bytes_up: u64 = passes.iter().map(Pass::bytes_up).sum();
    let bytes_down: u64 = passes.iter().map(Pass::bytes_down).sum();
    let bytes = bytes_up + bytes_down;
    let rts: u64 = passes.iter().map(Pass::round_trips).sum();
    let critical: u64 = passes.iter().map(Pass::max_round_trips).sum();
    let wall: f64 = passes.iter().map(|p| p.wall.as_secs_f64()).sum();
    let server_cpu: f64 = passes.iter().map(|p| p.server_cpu).sum();
    let slowest_device_link = (0..w)
        .map(|d| {
            let rt: u64 = passes
                .iter()
                .map(|p| u64::from(p.devices[d].report.round_trips))
                .sum();
            let b: u64 = passes
                .iter()
                .map(|p| p.devices[d].report.bytes_up + p.devices[d].report.bytes_down)
                .sum();
            link_secs(rt, b)
        })
        .fold(0.0, f64::max);

    report.section(
        "reconnect",
        "Reconnect (all devices start at once; a pass = every device syncs until done)",
    );
    report.text(
        "server",
        "server",
        if server.is_child() {
            "child process `doorstep-server serve` (release), SQLite, loopback"
        } else {
            "in-process (CPU and memory include the devices)"
        },
    );
    report.text(
        "concurrency",
        "device concurrency",
        format!("one tokio task per device on a {workers}-worker multi-thread runtime (store calls block their worker; every device has one)", workers = (w + 2).max(4)),
    );
    for (i, p) in passes.iter().enumerate() {
        report.text(
            &format!("pass{}", i + 1),
            &format!("pass {}: wall, up, down, round trips per device", i + 1),
            format!(
                "{:.2} s, {} B, {} B, {:?}",
                p.wall.as_secs_f64(),
                p.bytes_up(),
                p.bytes_down(),
                p.devices
                    .iter()
                    .map(|d| d.report.round_trips)
                    .collect::<Vec<_>>()
            ),
        );
        report.text(
            &format!("pass{}_budget", i + 1),
            &format!(
                "pass {}: response budgets each device asked for, per round trip (KiB; {})",
                i + 1,
                if args.budget.is_some() {
                    "fixed by --budget"
                } else {
                    "its link's rate × 4 s"
                }
            ),
            format!(
                "{:?}",
                p.devices
                    .iter()
                    .map(|d| d
                        .report
                        .budgets
                        .iter()
                        .map(|b| b / 1024)
                        .collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            ),
        );
        report.text(
            &format!("pass{}_pulled", i + 1),
            &format!(
                "pass {}: change and snapshot bytes each device pulled (KiB, the budget's unit)",
                i + 1
            ),
            format!(
                "{:?}",
                p.devices
                    .iter()
                    .map(|d| d.report.pulled_bytes / 1024)
                    .collect::<Vec<_>>()
            ),
        );
        let forced: Vec<u64> = p
            .devices
            .iter()
            .map(|d| round_trips_forced_by(d.report.pulled_bytes, &d.report.budgets))
            .collect();
        let beyond: u64 = p
            .devices
            .iter()
            .zip(&forced)
            .map(|(d, f)| u64::from(d.report.round_trips).saturating_sub(*f))
            .sum();
        report.text(
            &format!("pass{}_forced", i + 1),
            &format!(
                "pass {}: round trips the budgets force per device (pulled ÷ the budgets asked, rounded up); beyond them, all devices",
                i + 1
            ),
            format!("{forced:?}; {beyond}"),
        );
        report.text(
            &format!("pass{}_device_wall", i + 1),
            &format!("pass {}: sync time per device", i + 1),
            format!(
                "{:?} s",
                p.devices
                    .iter()
                    .map(|d| (d.wall.as_secs_f64() * 100.0).round() / 100.0)
                    .collect::<Vec<_>>()
            ),
        );
        report.text(
            &format!("pass{}_cpu", i + 1),
            &format!(
                "pass {}: CPU of server / of the bench process (devices)",
                i + 1
            ),
            format!("{:.2} s / {:.2} s", p.server_cpu, p.bench_cpu),
        );
        let pulled: u64 = p.devices.iter().map(|d| d.report.pulled as u64).sum();
        // In-process, the bench's CPU includes the server's: no per-change figure then.
        if pulled > 0 && server.is_child() {
            report.text(
                &format!("pass{}_device_cpu_per_change", i + 1),
                &format!(
                    "pass {}: devices' CPU per pulled change (bench process CPU / changes pulled)",
                    i + 1
                ),
                format!(
                    "{:.3} ms ({pulled} changes)",
                    p.bench_cpu * 1e3 / pulled as f64
                ),
            );
        }
        if p.devices.iter().all(|d| d.breakdown.is_some()) {
            let sum = |k: usize| -> f64 {
                p.devices
                    .iter()
                    .filter_map(|d| d.breakdown.map(|b| b[k].as_secs_f64()))
                    .sum()
            };
            report.text(
                &format!("pass{}_breakdown", i + 1),
                &format!(
                    "pass {}: Σ devices prepare / HTTP (server + wire + queue) / apply",
                    i + 1
                ),
                format!("{:.2} s / {:.2} s / {:.2} s", sum(0), sum(1), sum(2)),
            );
            report.text(
                &format!("pass{}_breakdown_devices", i + 1),
                &format!("pass {}: per device (prepare, HTTP, apply) s", i + 1),
                format!(
                    "{:?}",
                    p.devices
                        .iter()
                        .filter_map(|d| d.breakdown)
                        .map(|b| b.map(|x| (x.as_secs_f64() * 100.0).round() / 100.0))
                        .collect::<Vec<_>>()
                ),
            );
        }
        report.text(
            &format!("pass{}_pulled", i + 1),
            &format!("pass {}: changes pulled per device", i + 1),
            format!(
                "{:?}",
                p.devices
                    .iter()
                    .map(|d| d.report.pulled)
                    .collect::<Vec<_>>()
            ),
        );
        report.int(
            &format!("pass{}_divergent", i + 1),
            &format!("pass {}: households still divergent after it", i + 1),
            divergent_after[i] as u64,
        );
    }
    report.int("passes", "passes until converged", passes.len() as u64);
    report.bytes("bytes_up", "bytes up (request bodies)", bytes_up);
    report.bytes("bytes_down", "bytes down (response bodies)", bytes_down);
    report.bytes("bytes_total", "bytes total", bytes);
    report.int("round_trips", "round trips, all devices", rts);
    report.int(
        "critical_path_round_trips",
        "round trips, critical path (Σ passes of max per device)",
        critical,
    );
    report.secs(
        "wall_s",
        "wall time, all start → all converged (Σ passes; convergence checks excluded)",
        wall,
    );
    report.secs(
        "server_cpu_s",
        "server CPU time in the passes (/proc/<pid>/stat utime+stime)",
        server_cpu,
    );
    report.kb(
        "server_peak_kb",
        "server peak RSS in the window (VmHWM after reset)",
        peak_kb,
    );
    report.bool(
        "server_peak_reset",
        "VmHWM reset at window start (clear_refs)",
        peak_reset,
    );
    report.kb(
        "server_rss_before_kb",
        "server RSS at window start",
        before_peak,
    );
    report.kb(
        "server_rss_after_kb",
        "server RSS after convergence",
        rss_kb,
    );
    if let Some((docs, bytes, peak)) = cache {
        report.text(
            "server_cache",
            "server document cache after convergence: documents, estimated bytes, peak since start",
            format!(
                "{docs}, {:.1} MiB, {:.1} MiB",
                bytes as f64 / 1048576.0,
                peak as f64 / 1048576.0
            ),
        );
    }
    report.secs(
        "link_estimate_s",
        "300 ms link estimate (computed: critical-path RTs × 300 ms + all bytes at 100 kbit/s)",
        link_secs(critical, bytes),
    );
    report.secs(
        "link_slowest_device_s",
        "slowest device on its own 300 ms / 100 kbit/s link (computed)",
        slowest_device_link,
    );
    report.text(
        "push_documents",
        "documents in each device's first push (changed / pushed)",
        format!(
            "{:?} / {:?}",
            changed_docs,
            pending.iter().map(|p| p.documents).collect::<Vec<_>>()
        ),
    );
    report.int(
        "push_changes",
        "changes pushed (all devices)",
        pending.iter().map(|p| p.changes as u64).sum(),
    );
    report.bytes(
        "push_change_bytes",
        "raw change bytes pushed (before zstd)",
        pending.iter().map(|p| p.change_bytes as u64).sum(),
    );
    report.bool(
        "unsynced_equals_changed",
        "unsynced households = changed households, every device",
        unsynced_ok,
    );
    report.int(
        "idle_documents_pushed",
        "idle pass: documents pushed",
        idle_pending as u64,
    );
    report.int(
        "idle_changes_pulled",
        "idle pass: changes pulled",
        idle.devices.iter().map(|d| d.report.pulled as u64).sum(),
    );
    report.bytes(
        "idle_bytes",
        "idle pass: bytes up + down, all devices",
        idle.bytes_up() + idle.bytes_down(),
    );
    report.int(
        "idle_round_trips",
        "idle pass: round trips, all devices",
        idle.round_trips(),
    );

    // ----- lower bound
    report.section(
        "lower_bound",
        "Lower bound (new changes only, zstd level 3, one round trip per device)",
    );
    let text_all: String = trace
        .devices
        .iter()
        .flatten()
        .filter_map(|a| match &a.op {
            trace::Op::NoteInsert { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    report.bytes(
        "note_text_zstd",
        "for scale: all note text alone, zstd level 3",
        zstd::bulk::compress(text_all.as_bytes(), 3)?.len() as u64,
    );
    report.int(
        "changes",
        "new changes (all devices)",
        lb.changes.iter().map(|&c| c as u64).sum(),
    );
    report.bytes("raw_up", "raw change bytes up", lb.raw_up.iter().sum());
    report.bytes("bytes_up", "bytes up", lb.up.iter().sum());
    report.bytes("bytes_down", "bytes down", lb.down.iter().sum());
    report.bytes("bytes_total", "bytes total", lb.total());
    report.int("round_trips", "round trips, all devices", w as u64);
    report.int("critical_path_round_trips", "round trips, critical path", 1);
    report.secs(
        "link_estimate_s",
        "300 ms link estimate (computed)",
        link_secs(1, lb.total()),
    );
    report.ratio(
        "doorstep_bytes_ratio",
        "Doorstep bytes / lower bound",
        bytes as f64 / lb.total() as f64,
    );

    eprintln!("bundle lower bound ...");
    let plain = bound::plain_bundle_bound(&trace)?;
    let bundled = bound::doorstep_bundled(&initial, &own)?;
    report.section(
        "bundle_bound",
        "Bundle lower bound (issue 14): the trace's user actions as plain automerge changes, each document's new changes as one Automerge::bundle, zstd 3, up once and down once",
    );
    report.int(
        "changes",
        "plain changes (all devices)",
        plain.changes as u64,
    );
    report.bytes(
        "raw_change_bytes",
        "plain changes, raw bytes",
        plain.raw_change_bytes,
    );
    report.bytes("bytes_up", "bytes up", plain.up.iter().sum());
    report.bytes("bytes_down", "bytes down", plain.down.iter().sum());
    report.bytes("bytes_total", "bytes total", plain.total());
    report.ratio(
        "doorstep_bytes_ratio",
        "Doorstep bytes / bundle lower bound",
        bytes as f64 / plain.total() as f64,
    );
    report.ratio(
        "own_bound_ratio",
        "Doorstep's own lower bound (change chunks) / bundle lower bound",
        lb.total() as f64 / plain.total() as f64,
    );
    report.int(
        "doorstep_changes",
        "Doorstep's changes (all devices)",
        bundled.changes as u64,
    );
    report.bytes(
        "doorstep_raw_change_bytes",
        "Doorstep's changes, raw bytes",
        bundled.raw_change_bytes,
    );
    report.bytes(
        "doorstep_bundled_total",
        "Doorstep's changes bundled the same way, bytes total",
        bundled.total(),
    );
    report.ratio(
        "data_model_ratio",
        "of which the data model: Doorstep bundled / bundle lower bound",
        bundled.total() as f64 / plain.total() as f64,
    );
    report.ratio(
        "encoding_ratio",
        "and the encoding: Doorstep's own lower bound / Doorstep bundled",
        lb.total() as f64 / bundled.total() as f64,
    );

    eprintln!("minimal server run ...");
    let minimal =
        reference::minimal_server(&tmp.path().join("minimal"), None, &initial, &ids, &own, &lb)?;
    // The same work on storage encrypted as the real server's (issue 15): the yardstick
    // above stores children's data in plaintext, which the real server may not.
    let key = doorstep_server::store::key::ServerKey::generate()?;
    let minimal_encrypted = reference::minimal_server(
        &tmp.path().join("minimal-encrypted"),
        Some(&key),
        &initial,
        &ids,
        &own,
        &lb,
    )?;
    report.section(
        "minimal_server",
        "Minimal server on the lower-bound data (in-process, one thread)",
    );
    report.text(
        "what",
        "work",
        "decompress each upload, decode + apply its changes to the documents (loaded once from SqliteStore), commit them in one transaction per device, compress each download",
    );
    report.secs("cpu_s", "CPU time (/proc/thread-self/stat)", minimal.cpu);
    report.secs("wall_s", "wall time", minimal.wall.as_secs_f64());
    report.int(
        "documents",
        "documents loaded",
        minimal.documents_loaded as u64,
    );
    report.int("changes", "changes applied", minimal.changes_applied as u64);
    report.ratio(
        "doorstep_cpu_ratio",
        "Doorstep server CPU / minimal server CPU",
        server_cpu / minimal.cpu,
    );
    report.secs(
        "encrypted_cpu_s",
        "CPU time, the same work on a SQLCipher store (as the real server's)",
        minimal_encrypted.cpu,
    );
    report.ratio(
        "doorstep_cpu_ratio_encrypted",
        "Doorstep server CPU / minimal server CPU on a SQLCipher store",
        server_cpu / minimal_encrypted.cpu,
    );

    // ----- convergence oracle and automerge's sync protocol
    eprintln!(
        "independent merge{} ...",
        if args.skip_automerge {
            ""
        } else {
            " and automerge sync"
        }
    );
    let oracle = if converged {
        Some(reference::oracle(
            &initial,
            &after,
            &pre_heads,
            &final_heads,
            !args.skip_automerge,
        )?)
    } else {
        None
    };
    if let (Some(o), false) = (&oracle, args.skip_automerge) {
        let am_bytes: u64 = o.passes.iter().map(|p| p.bytes).sum();
        let am_critical: u64 = o
            .passes
            .iter()
            .map(|p| p.device_chain.iter().copied().max().unwrap_or(0))
            .sum();
        report.section(
            "automerge_sync",
            "automerge sync protocol (per document, device ↔ server copy, in-process)",
        );
        report.text(
            "how",
            "method",
            "automerge 0.12 generate/receive_sync_message, one sync::State pair per device and document, states resumed from the pre-week shared heads; pass 1: devices one after another, device speaks first; pass 2: server speaks first",
        );
        for (i, p) in o.passes.iter().enumerate() {
            report.text(
                &format!("pass{}", i + 1),
                &format!("pass {}: messages, bytes, documents with messages", i + 1),
                format!("{}, {} B, {}", p.messages, p.bytes, p.documents_touched),
            );
            report.text(
                &format!("pass{}_unchanged", i + 1),
                &format!(
                    "pass {}: messages, bytes for documents no one changed",
                    i + 1
                ),
                format!("{}, {} B", p.unchanged_doc_messages, p.unchanged_doc_bytes),
            );
            report.text(
                &format!("pass{}_chain", i + 1),
                &format!(
                    "pass {}: longest per-document chain per device (round trips)",
                    i + 1
                ),
                format!("{:?}", p.device_chain),
            );
        }
        report.bytes(
            "bytes_total",
            "bytes total (sync messages, no envelope)",
            am_bytes,
        );
        report.int(
            "round_trips",
            "request/response pairs, all documents",
            o.passes.iter().map(|p| p.round_trips).sum(),
        );
        report.int(
            "critical_path_round_trips",
            "critical path (documents pipelined on one connection)",
            am_critical,
        );
        report.secs(
            "link_estimate_s",
            "300 ms link estimate (computed)",
            link_secs(am_critical, am_bytes),
        );
        report.secs(
            "wall_s",
            "time to run (with the merge check)",
            o.wall.as_secs_f64(),
        );
        report.ratio(
            "doorstep_bytes_ratio",
            "Doorstep bytes / automerge sync bytes",
            bytes as f64 / am_bytes as f64,
        );
    }

    report.section("convergence", "Convergence");
    let merge_ok = oracle.as_ref().is_some_and(|o| o.merge_mismatches == 0);
    report.bool(
        "converged",
        "every device and the server hold identical heads",
        converged,
    );
    report.int(
        "merge_mismatches",
        "households where the independent merge differs",
        oracle
            .as_ref()
            .map_or(h_count as u64, |o| o.merge_mismatches as u64),
    );
    if let (Some(o), false) = (&oracle, args.skip_automerge) {
        report.int(
            "automerge_sync_mismatches",
            "households where automerge sync ended elsewhere",
            o.am_mismatches as u64,
        );
    }
    let log_warnings = server
        .log
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map_or(0, |l| {
            l.lines()
                .filter(|x| x.contains("WARN") || x.contains("ERROR"))
                .count()
        });
    report.int(
        "server_log_warnings",
        "server log lines at WARN/ERROR",
        log_warnings as u64,
    );

    report.section("targets", "Targets (issue \"Benchmarks\")");
    let ratio = bytes as f64 / lb.total() as f64;
    report.text(
        "bytes",
        "bytes ≤ 1.2× lower bound",
        format!(
            "{} ({ratio:.2}×)",
            if ratio <= 1.2 { "met" } else { "MISSED" }
        ),
    );
    let max_rt = passes.iter().map(Pass::max_round_trips).max().unwrap_or(0);
    let rt_ok = max_rt <= 1 && passes.len() <= 2;
    report.text(
        "round_trips",
        "one round trip per device per pass, two passes",
        format!(
            "{} ({} passes, at most {max_rt} round trips for a device in a pass)",
            if rt_ok { "met" } else { "MISSED" },
            passes.len()
        ),
    );
    let zero_ok = unsynced_ok
        && pending
            .iter()
            .zip(&changed_docs)
            .all(|(p, n)| p.documents == *n)
        && idle_pending == 0
        && idle.devices.iter().all(|d| d.report.pulled == 0);
    report.text(
        "unchanged_zero",
        "unchanged documents cost zero bytes",
        format!(
            "{} (only changed documents pushed; idle pass: {} B per device, no document in it)",
            if zero_ok { "met" } else { "MISSED" },
            (idle.bytes_up() + idle.bytes_down()) / w.max(1) as u64
        ),
    );
    let cpu_ratio = server_cpu / minimal.cpu;
    report.text(
        "server_cpu",
        "server CPU within 2× of the minimal server",
        format!(
            "{} ({cpu_ratio:.2}×; {:.2}× of the minimal server on a SQLCipher store)",
            if cpu_ratio <= 2.0 { "met" } else { "MISSED" },
            server_cpu / minimal_encrypted.cpu
        ),
    );
    report.secs(
        "total_run_s",
        "whole benchmark run",
        t_all.elapsed().as_secs_f64(),
    );
    server.stop(rt);
    Ok(converged && merge_ok)
}
