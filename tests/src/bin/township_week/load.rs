//! Server load: N enrolled devices, each with its own households, push one small edit and
//! pull what is new, K times, all at once against one server on loopback, on SQLite or on
//! PostgreSQL (a fresh schema per run).
//!
//! The devices here are light protocol clients (the wire messages of `docs/protocol.md`
//! built with `doorstep_core::protocol`), not full stores: a thousand SQLCipher stores in
//! this process would compete with the server for the two cores. Their changes are real
//! Doorstep changes, made beforehand by one generator store per station.
//!
//! With several households per device, a device's K edits go to its households in turn, so
//! the documents touched in the window grow with the households and, past the server's
//! document cache, are loaded from the database: the run then shows whether the server's
//! memory follows its cache or the number of documents.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use doorstep_core::protocol::{
    AuthorSignature, Cursor, DeviceKey, DocChanges, SignerKey, SyncRequest, SyncResponse,
    SYNC_CONTENT_TYPE,
};
use doorstep_core::transport::enroll;
use doorstep_core::*;
use doorstep_server::store::any::AnyStore;
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms};
use tokio::runtime::Runtime;

use super::pg;
use super::report::{percentile, Report};
use super::server::{cpu_seconds, status_field, Server, ServerOpts};
use super::trace::{address, phone, text, Rng};
use super::Res;

/// Download budget of the window's syncs: the transport's constant before ADR 0039, kept so
/// the load tables stay comparable (a small sync moves far less).
const WINDOW_BUDGET: u32 = 4 * 1024 * 1024;
/// Download budget of the setup's first syncs (a bootstrap of a large station then takes
/// several requests).
const SETUP_BUDGET: u32 = 256 * 1024;

#[derive(Clone, Debug)]
pub struct LoadArgs {
    pub devices: usize,
    pub syncs: usize,
    pub per_station: usize,
    /// Households per device (the station holds devices-per-station times this).
    pub households: usize,
    /// Each worker sees only their own households (else the whole station).
    pub scoped: bool,
    pub max_seconds: u64,
    pub cache_mib: Option<usize>,
    pub cache_documents: Option<usize>,
    pub seed: u64,
    /// PostgreSQL URL: run the server on a fresh schema there (dropped afterwards).
    pub postgres: Option<String>,
    /// More `serve` flags for the child server.
    pub server_args: Vec<String>,
}

/// The figures of one run that the summary table repeats.
#[derive(Clone, Debug, Default)]
pub struct LoadOutcome {
    pub devices: usize,
    pub documents: usize,
    /// The server's cache bounds, as `serve` was given them.
    pub cache: String,
    pub syncs_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub rss_after_setup_kb: u64,
    pub peak_kb: u64,
    pub rss_end_kb: u64,
    pub db_bytes: Option<u64>,
}

struct LoadDevice {
    token: String,
    /// Its actor and key, registered with its first request (ADR 0012).
    signer: Option<SignerKey>,
    creation: Vec<DocChanges>,
    deltas: Vec<DocChanges>,
    cursor: Cursor,
}

#[derive(Debug, Default)]
struct Sample {
    latency: Duration,
    up: u64,
    down: u64,
    ok: bool,
    pulled: usize,
}

async fn post_sync(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    req: &SyncRequest,
) -> Result<(SyncResponse, u64, u64), String> {
    let body = req.encode();
    let up = body.len() as u64;
    let resp = client
        .post(format!("{url}/v1/sync"))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, SYNC_CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let down = bytes.len() as u64;
    let r = SyncResponse::decode(&bytes).map_err(|e| e.to_string())?;
    if !r.errors.is_empty() {
        return Err(format!("{} documents refused", r.errors.len()));
    }
    Ok((r, up, down))
}

/// Bytes of the SQLite database files (`server.db`, its WAL and shared memory).
fn sqlite_bytes(data: &Path) -> u64 {
    std::fs::read_dir(data)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("server.db"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The store's write transactions and the writes grouped into them so far, from the
/// server's `/metrics` (SQLite's group commit; `None` for a backend without them).
/// The cache bounds `serve` was given, as a reader of the report needs them.
pub fn cache_label(mib: Option<usize>, documents: Option<usize>) -> String {
    let bytes = match mib {
        Some(m) => format!("{m} MiB"),
        None => "the server's default MiB".to_owned(),
    };
    match documents {
        Some(n) => format!("{bytes}, at most {n} documents"),
        None => bytes,
    }
}

async fn store_writes(client: &reqwest::Client, metrics: Option<&str>) -> Option<(u64, u64)> {
    let text = client
        .get(format!("{}/metrics", metrics?))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let counter = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    };
    Some((
        counter("doorstep_store_transactions_total ")?,
        counter("doorstep_store_writes_total ")?,
    ))
}

/// Run the load benchmark with `args.devices` devices and add its figures to `report`.
pub fn run_load(
    rt: &Runtime,
    binary: Option<&Path>,
    args: &LoadArgs,
    report: &mut Report,
) -> Res<LoadOutcome> {
    let n = args.devices;
    let per_station = args.per_station.max(1);
    let per_device = args.households.max(1);
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("server");
    std::fs::create_dir_all(&data)?;
    let t_setup = Instant::now();
    let postgres = args
        .postgres
        .as_ref()
        .map(|url| (url.clone(), pg::fresh_schema(&format!("{n}x{per_device}"))));

    // Stations, workers and one-time codes, written into the database before the server
    // starts (enrolling a thousand devices through the CLI would take minutes).
    let mut codes = Vec::with_capacity(n);
    let mut stations = Vec::new();
    {
        let store = match &postgres {
            Some((url, schema)) => AnyStore::open(&data, Some(url), Some(schema))?,
            None => {
                let key = super::server::data_key(&data)?;
                let with = doorstep_server::store::any::OpenWith {
                    key: Some(&key),
                    ..Default::default()
                };
                AnyStore::open_with(&data, None, None, with)?
            }
        };
        for i in 0..n {
            if i % per_station == 0 {
                stations.push(store.create_station(&format!("站{}", stations.len()), now_ms())?);
            }
            let station = *stations.last().ok_or("no station")?;
            let w = store.add_worker(station, &format!("L{i:04}"), now_ms())?;
            if !args.scoped {
                store.set_team(w, Some(&doorstep_core::TeamName::new("station")?), now_ms())?;
            }
            codes.push(credentials::enroll_device(&store, w, now_ms())?.1);
        }
    }
    // A thousand enrolments from one address, 32 at a time, are not guesses: the limit on
    // enrolment attempts per address (the edge, issue 13) would answer them 429.
    let mut extra = args.server_args.clone();
    extra.extend([
        "--enrol-failures-per-minute".to_owned(),
        "1000000".to_owned(),
    ]);
    let opts = ServerOpts {
        cache_mib: args.cache_mib,
        cache_documents: args.cache_documents,
        postgres: postgres.clone(),
        extra,
    };
    let server = Server::start_with(rt, &data, binary, &opts)?;
    let url = server.url.clone();
    let postmaster = match &postgres {
        Some((pg_url, _)) => pg::postmaster_pid(pg_url).ok(),
        None => None,
    };

    // Enrol over HTTP, 32 at a time.
    let enrolments = rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(32));
        let mut handles = Vec::new();
        for code in &codes {
            let (sem, url, code) = (sem.clone(), url.clone(), code.clone());
            handles.push(tokio::spawn(async move {
                let _permit = sem.acquire().await;
                enroll(&url, &code).await
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await);
        }
        out
    });
    let enrolments = enrolments
        .into_iter()
        .map(|r| r.map_err(|e| e.to_string())?.map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, String>>()?;

    // Real Doorstep changes: each device's own store (its device id, a key the bench knows)
    // makes its households and its K small edits (an address change each, to its households
    // in turn); the bench signs them as the device would.
    let mut rng = Rng::new(args.seed);
    let mut devices: Vec<LoadDevice> = Vec::with_capacity(n);
    let mut code_no = 0usize;
    for chunk in enrolments.chunks(per_station) {
        for e in chunk {
            let seed = *e.device.as_uuid().as_bytes();
            let seed: [u8; 32] = std::array::from_fn(|i| seed[i % 16] ^ (i as u8));
            let mut opts = StoreOptions::new(
                tmp.path().join(format!("gen-{}.db", e.device)),
                StoreKey::Raw([7; 32]),
                e.worker,
                e.station,
            );
            opts.durability = Durability::Relaxed;
            opts.device = Some(e.device);
            opts.signing_seed = Some(seed);
            let gen = Store::open(opts)?;
            let key = DeviceKey::from_seed(&seed);
            let actor = gen.actor_id();
            let signed = |doc: HouseholdId, changes: Vec<Vec<u8>>| -> Res<DocChanges> {
                let newest = changes
                    .iter()
                    .map(|b| automerge::Change::from_bytes(b.clone()))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .filter(|c| c.actor_id().to_bytes() == actor.as_slice())
                    .max_by_key(|c| c.seq());
                Ok(DocChanges {
                    signatures: newest
                        .map(|c| AuthorSignature {
                            actor: actor.clone(),
                            signature: key.sign(doc.as_uuid(), &c.hash()),
                        })
                        .into_iter()
                        .collect(),
                    doc,
                    changes,
                })
            };
            let mut creation = Vec::with_capacity(per_device);
            let mut hids = Vec::with_capacity(per_device);
            for _ in 0..per_device {
                code_no += 1;
                let hid = gen.create_household(&NewHousehold {
                    code: format!("LD-{code_no:07}"),
                    village: String::new(),
                    address: address(&mut rng),
                    gps: None,
                    phones: vec![phone(&mut rng)],
                    tags: vec![],
                    summary: text(&mut rng, 100),
                })?;
                creation.push(signed(hid, gen.export_changes(hid, &[])?)?);
                hids.push(hid);
            }
            let mut deltas = Vec::with_capacity(args.syncs);
            for k in 0..args.syncs {
                let hid = hids[k % per_device];
                let before = gen.heads(hid)?;
                gen.edit_household(hid, &HouseholdEdit::Address(address(&mut rng)))?;
                deltas.push(signed(hid, gen.export_changes(hid, &before)?)?);
            }
            devices.push(LoadDevice {
                signer: Some(SignerKey {
                    actor: actor.clone(),
                    key: key.public(),
                }),
                token: e.token.clone(),
                creation,
                deltas,
                cursor: Cursor::default(),
            });
        }
    }

    // Each device's first syncs (not measured): push its households, bootstrap its station.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let devices: Vec<LoadDevice> = rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(16));
        let mut handles = Vec::new();
        for mut d in devices {
            let (sem, client, url) = (sem.clone(), client.clone(), url.clone());
            handles.push(tokio::spawn(async move {
                let _permit = sem.acquire().await;
                // At most 8 households per request, as a device's budgeted push would, and
                // a small download budget: the setup's own high-water mark (16 bootstraps
                // of a whole station at once) would otherwise hide the window's memory.
                let mut creation = std::mem::take(&mut d.creation);
                loop {
                    let rest = creation.split_off(creation.len().min(8));
                    let req = SyncRequest {
                        signer: d.signer.clone(),
                        cursor: d.cursor,
                        budget: SETUP_BUDGET,
                        push: std::mem::replace(&mut creation, rest),
                        accesses: Vec::new(),
                    };
                    let (resp, _, _) = post_sync(&client, &url, &d.token, &req).await?;
                    d.cursor = resp.cursor;
                    if !resp.more && creation.is_empty() {
                        return Ok::<LoadDevice, String>(d);
                    }
                }
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.map_err(|e| e.to_string())??);
        }
        Ok::<_, String>(out)
    })?;
    let setup = t_setup.elapsed();

    let rss_after_setup = server.memory_kb().1;
    let threads_after_setup = status_field(&server.proc_name(), "Threads").unwrap_or(0);

    // The measured window: every device starts at once and syncs K times. A sampler
    // records the server's thread count (each request runs on a blocking-pool thread).
    let (setup_peak, _) = server.memory_kb();
    let stop_sampler = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop_sampler.clone();
        let proc_name = server.proc_name();
        std::thread::spawn(move || {
            let mut max_threads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                max_threads = max_threads.max(status_field(&proc_name, "Threads").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(20));
            }
            max_threads
        })
    };
    let writes0 = rt.block_on(store_writes(&client, server.metrics_url.as_deref()));
    let peak_reset = server.reset_peak();
    let cpu0 = server.cpu_seconds();
    let self_cpu0 = cpu_seconds("self").unwrap_or(f64::NAN);
    let db_cpu0 = postmaster.map(pg::children_cpu);
    let deadline = Duration::from_secs(args.max_seconds);
    let barrier = Arc::new(tokio::sync::Barrier::new(n + 1));
    let (wall, samples) = rt.block_on(async {
        let mut handles = Vec::new();
        for mut d in devices {
            let (b, client, url) = (barrier.clone(), client.clone(), url.clone());
            handles.push(tokio::spawn(async move {
                b.wait().await;
                let start = Instant::now();
                let mut samples = Vec::new();
                for k in 0..d.deltas.len() {
                    if start.elapsed() > deadline {
                        break;
                    }
                    let mut push = vec![std::mem::take(&mut d.deltas[k])];
                    loop {
                        let req = SyncRequest {
                            signer: None,
                            cursor: d.cursor,
                            budget: WINDOW_BUDGET,
                            push: std::mem::take(&mut push),
                            accesses: Vec::new(),
                        };
                        let t = Instant::now();
                        let r = post_sync(&client, &url, &d.token, &req).await;
                        let latency = t.elapsed();
                        match r {
                            Ok((resp, up, down)) => {
                                d.cursor = resp.cursor;
                                samples.push(Sample {
                                    latency,
                                    up,
                                    down,
                                    ok: true,
                                    pulled: resp.pull.iter().map(|p| p.changes.len()).sum(),
                                });
                                if !resp.more {
                                    break;
                                }
                            }
                            Err(_) => {
                                samples.push(Sample {
                                    latency,
                                    ..Sample::default()
                                });
                                break;
                            }
                        }
                    }
                }
                samples
            }));
        }
        barrier.wait().await;
        let t0 = Instant::now();
        let mut all = Vec::new();
        for h in handles {
            if let Ok(s) = h.await {
                all.extend(s);
            }
        }
        (t0.elapsed(), all)
    });
    stop_sampler.store(true, std::sync::atomic::Ordering::Relaxed);
    let max_threads = sampler.join().unwrap_or(0);
    let writes1 = rt.block_on(store_writes(&client, server.metrics_url.as_deref()));
    let server_cpu = server.cpu_seconds() - cpu0;
    let client_cpu = cpu_seconds("self").unwrap_or(f64::NAN) - self_cpu0;
    let db_cpu = match (postmaster, &db_cpu0) {
        (Some(pm), Some(before)) => Some(pg::cpu_between(before, &pg::children_cpu(pm))),
        _ => None,
    };
    let db_pss = postmaster.map(pg::children_pss_kb);
    let (peak, rss) = server.memory_kb();
    let server_proc = server.proc_name();
    let vm_peak = status_field(&server_proc, "VmPeak").unwrap_or(0);
    let is_child = server.is_child();
    let (db_bytes, pg_settings) = match &postgres {
        Some((pg_url, schema)) => (
            pg::schema_bytes(pg_url, schema).ok(),
            pg::settings(pg_url).ok(),
        ),
        None => (Some(sqlite_bytes(&data)), None),
    };
    server.stop(rt);
    let schema_dropped = match &postgres {
        Some((pg_url, schema)) => pg::drop_schema(pg_url, schema).is_ok(),
        None => false,
    };

    let ok: Vec<&Sample> = samples.iter().filter(|s| s.ok).collect();
    let mut lat: Vec<f64> = ok.iter().map(|s| s.latency.as_secs_f64() * 1e3).collect();
    lat.sort_by(f64::total_cmp);
    let secs = wall.as_secs_f64();
    let documents = n * per_device;
    let backend = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let key = match (postgres.is_some(), per_device) {
        (false, 1) => format!("load_{n}"),
        (false, h) => format!("load_{n}_h{h}"),
        (true, 1) => format!("load_pg_{n}"),
        (true, h) => format!("load_pg_{n}_h{h}"),
    };
    report.section(
        &key,
        &format!("Server load: {n} devices, {documents} households, {backend}"),
    );
    report.text(
        "server",
        "server",
        if is_child {
            "child process (release doorstep-server)"
        } else {
            "in-process (figures include the load clients)"
        },
    );
    report.text("backend", "database", backend);
    if let Some((_, schema)) = &postgres {
        report.text(
            "pg_schema",
            "PostgreSQL schema (fresh for this run)",
            schema.clone(),
        );
        report.bool(
            "pg_schema_dropped",
            "schema dropped after the run",
            schema_dropped,
        );
        if let Some(s) = pg_settings {
            report.text("pg_settings", "PostgreSQL settings", s);
        }
    }
    if !args.server_args.is_empty() {
        report.text(
            "server_args",
            "further serve flags",
            args.server_args.join(" "),
        );
    }
    report.int("devices", "devices (enrolled over HTTP)", n as u64);
    report.int(
        "stations",
        "stations (devices per station)",
        stations.len() as u64,
    );
    report.int("per_station", "devices per station", per_station as u64);
    report.text(
        "scope",
        "what each device receives",
        if args.scoped {
            "its worker's caseload (its own households)"
        } else {
            "the whole station"
        },
    );
    report.int(
        "households_per_device",
        "households per device",
        per_device as u64,
    );
    report.int(
        "documents",
        "household documents on the server",
        documents as u64,
    );
    report.int(
        "syncs_per_device",
        "syncs per device (one small edit each, to its households in turn)",
        args.syncs as u64,
    );
    report.text(
        "server_cache",
        "server document cache",
        cache_label(args.cache_mib, args.cache_documents),
    );
    report.secs("setup_s", "setup (not measured)", setup.as_secs_f64());
    report.bytes(
        "setup_budget",
        "setup: first syncs' download budget (window: 4 MiB, the transport's constant before ADR 0039)",
        u64::from(SETUP_BUDGET),
    );
    report.int("requests", "sync requests answered 200", ok.len() as u64);
    report.int(
        "failed",
        "failed requests",
        (samples.len() - ok.len()) as u64,
    );
    report.secs("wall_s", "wall time, all devices", secs);
    let syncs_per_s = ok.len() as f64 / secs.max(1e-9);
    report.float("syncs_per_s", "throughput", syncs_per_s, "syncs/s");
    report.ms("latency_p50_ms", "latency p50", percentile(&lat, 50.0));
    report.ms("latency_p99_ms", "latency p99", percentile(&lat, 99.0));
    report.ms("latency_max_ms", "latency max", percentile(&lat, 100.0));
    report.bytes(
        "bytes_up",
        "bytes up (all requests)",
        ok.iter().map(|s| s.up).sum(),
    );
    report.bytes(
        "bytes_down",
        "bytes down (all responses)",
        ok.iter().map(|s| s.down).sum(),
    );
    report.float(
        "changes_pulled_per_sync",
        "changes pulled per sync (mean)",
        ok.iter().map(|s| s.pulled).sum::<usize>() as f64 / ok.len().max(1) as f64,
        "",
    );
    if let (Some((tx0, w0)), Some((tx1, w1))) = (writes0, writes1) {
        let (tx, w) = (tx1.saturating_sub(tx0), w1.saturating_sub(w0));
        report.int(
            "store_transactions",
            "store write transactions in the window (SQLite: one fsync each)",
            tx,
        );
        report.float(
            "store_writes_per_transaction",
            "store writes per transaction (group commit)",
            w as f64 / tx.max(1) as f64,
            "",
        );
    }
    report.secs("server_cpu_s", "server CPU in the window", server_cpu);
    report.ms(
        "server_cpu_per_sync_ms",
        "server CPU per sync",
        server_cpu * 1e3 / ok.len().max(1) as f64,
    );
    if let Some(c) = db_cpu {
        report.secs(
            "db_cpu_s",
            "PostgreSQL CPU in the window (all its processes)",
            c,
        );
        report.ms(
            "db_cpu_per_sync_ms",
            "PostgreSQL CPU per sync",
            c * 1e3 / ok.len().max(1) as f64,
        );
    }
    report.secs(
        "client_cpu_s",
        "load clients' CPU in the window",
        client_cpu,
    );
    report.kb(
        "server_peak_kb",
        "server peak RSS in the window (VmHWM)",
        peak,
    );
    report.bool("peak_reset", "VmHWM reset at window start", peak_reset);
    report.kb(
        "server_setup_peak_kb",
        "server peak RSS before the window",
        setup_peak,
    );
    report.kb("server_rss_end_kb", "server RSS at the end", rss);
    report.kb(
        "server_rss_after_setup_kb",
        "server RSS after setup (enrolment, first syncs)",
        rss_after_setup,
    );
    report.int(
        "server_threads_after_setup",
        "server threads after setup",
        threads_after_setup,
    );
    report.int(
        "server_threads_max",
        "server threads, most seen in the window (sampled every 20 ms)",
        max_threads,
    );
    report.kb("server_vm_peak_kb", "server peak virtual memory", vm_peak);
    if let Some(kb) = db_pss {
        report.kb(
            "db_pss_kb",
            "PostgreSQL processes' memory at the end (sum of PSS)",
            kb,
        );
    }
    if let Some(b) = db_bytes {
        report.bytes(
            "db_bytes",
            if postgres.is_some() {
                "database size (the schema's tables, indexes, TOAST)"
            } else {
                "database size (server.db + WAL)"
            },
            b,
        );
    }
    Ok(LoadOutcome {
        devices: n,
        documents,
        cache: cache_label(args.cache_mib, args.cache_documents),
        syncs_per_s,
        p50_ms: percentile(&lat, 50.0),
        p99_ms: percentile(&lat, 99.0),
        rss_after_setup_kb: rss_after_setup,
        peak_kb: peak,
        rss_end_kb: rss,
        db_bytes,
    })
}

/// Diagnostic: resident memory of N copies of one small household document, step by step
/// through what the server does with a document (build it from the pushed changes, look up
/// pushed changes, read it, apply a later edit, take its heads, save it for a snapshot), and
/// of N copies loaded from its snapshot. Returns (step, kB per document) for each step.
pub fn doc_memory(copies: usize) -> Res<Vec<(String, f64)>> {
    use automerge::ReadDoc;
    let tmp = tempfile::tempdir()?;
    let mut opts = StoreOptions::new(
        tmp.path().join("d.db"),
        StoreKey::Raw([1; 32]),
        WorkerId::new(),
        StationId::new(),
    );
    opts.durability = Durability::Relaxed;
    let store = Store::open(opts)?;
    let mut rng = Rng::new(1);
    let hid = store.create_household(&NewHousehold {
        code: "LD-000001".into(),
        village: String::new(),
        address: address(&mut rng),
        gps: None,
        phones: vec![phone(&mut rng)],
        tags: vec![],
        summary: text(&mut rng, 100),
    })?;
    let decode = |raw: Vec<Vec<u8>>| -> Res<Vec<automerge::Change>> {
        Ok(raw
            .into_iter()
            .map(automerge::Change::from_bytes)
            .collect::<Result<_, _>>()?)
    };
    let creation = decode(store.export_changes(hid, &[])?)?;
    let before = store.heads(hid)?;
    store.edit_household(hid, &HouseholdEdit::Address(address(&mut rng)))?;
    let edit = decode(store.export_changes(hid, &before)?)?;
    let saved = store.export_document(hid)?;
    let rss = || status_field("self", "VmRSS").unwrap_or(0) as f64;
    let per = |a: f64, b: f64| (b - a) / copies as f64;
    let mut out = Vec::new();

    let r0 = rss();
    let mut docs: Vec<automerge::Automerge> = (0..copies)
        .map(|_| {
            let mut d = automerge::Automerge::new();
            d.apply_changes(creation.iter().cloned()).map(|_| d)
        })
        .collect::<Result<_, _>>()?;
    let r1 = rss();
    out.push((
        "new document + apply its creation changes".to_owned(),
        per(r0, r1),
    ));

    let mut found = 0usize;
    for d in &docs {
        for c in &edit {
            found += usize::from(d.get_change_by_hash(&c.hash()).is_some());
        }
        // What validation reads: the header and every record's creation provenance.
        for key in d.keys(automerge::ROOT) {
            if let Ok(Some((automerge::Value::Object(_), obj))) = d.get(automerge::ROOT, &key) {
                for rec in d.keys(&obj) {
                    let _ = d.get(&obj, &rec);
                }
            }
        }
        let _ = doorstep_core::doc::card_issuances(d);
    }
    let r2 = rss();
    out.push((
        format!("+ look up the pushed change by hash, read header and records ({found} found)"),
        per(r1, r2),
    ));

    for d in &mut docs {
        d.apply_changes(edit.iter().cloned())?;
        let _ = d.get_missing_deps(&[]);
        let _ = d.get_heads();
    }
    let r3 = rss();
    out.push((
        "+ apply a later edit, missing deps, heads".to_owned(),
        per(r2, r3),
    ));

    let saved_len: usize = docs.iter().map(|d| d.save().len()).sum();
    let r4 = rss();
    out.push((
        format!(
            "+ save() for a snapshot ({} B each)",
            saved_len / copies.max(1)
        ),
        per(r3, r4),
    ));
    out.push(("all steps".to_owned(), per(r0, r4)));

    // `copies` copies of a saved household loaded, kept alive (no later measurement reuses
    // memory an earlier one freed): (label, kB per copy).
    let mut kept = Vec::new();
    let mut measure = |what: String, saved: &[u8]| -> Res<(String, f64)> {
        let r7 = rss();
        let loaded: Vec<automerge::Automerge> = (0..copies)
            .map(|_| automerge::Automerge::load(saved))
            .collect::<Result<_, _>>()?;
        let r8 = rss();
        let s = loaded.first().map(|d| d.stats());
        let label =
            format!(
            "{what}, loaded ({} ops, {} changes, {} B saved, estimated {} B by the server's cache)",
            s.as_ref().map_or(0, |s| s.num_ops),
            s.as_ref().map_or(0, |s| s.num_changes),
            saved.len(),
            loaded.first().map_or(0, doorstep_server::sync::estimated_bytes),
        );
        kept.push(loaded);
        Ok((label, per(r7, r8)))
    };
    out.push(measure("from its snapshot instead".into(), &saved)?);
    // The same household grown by edits: how memory follows the operations, for the server
    // cache's estimate (ADR 0039).
    for _ in 0..4 {
        for _ in 0..100 {
            store.edit_household(hid, &HouseholdEdit::Address(address(&mut rng)))?;
        }
        out.push(measure("grown".into(), &store.export_document(hid)?)?);
    }
    // The same household with a history: visits of ~600 characters each (as
    // `--history-visits` gives), where most operations are characters of text.
    for _ in 0..4 {
        for _ in 0..5 {
            super::replay::earlier_visit(&store, hid, Timestamp::now(), &mut rng)?;
        }
        let visits = store.household(hid)?.visits.len();
        out.push(measure(
            format!("with {visits} visits"),
            &store.export_document(hid)?,
        )?);
    }
    drop((docs, kept));
    Ok(out)
}
