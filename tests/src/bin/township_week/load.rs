//! Server load: N enrolled devices, each with its own household, push one small edit and
//! pull what is new, K times, all at once against one server on loopback.
//!
//! The devices here are light protocol clients (the wire messages of `docs/protocol.md`
//! built with `doorstep_core::protocol`), not full stores: a thousand SQLCipher stores in
//! this process would compete with the server for the two cores. Their changes are real
//! Doorstep changes, made beforehand by one generator store per station.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use doorstep_core::protocol::{Cursor, DocChanges, SyncRequest, SyncResponse, SYNC_CONTENT_TYPE};
use doorstep_core::transport::{enroll, DEFAULT_BUDGET};
use doorstep_core::*;
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, SqliteStore};
use tokio::runtime::Runtime;

use super::report::{percentile, Report};
use super::server::{cpu_seconds, status_field, Server};
use super::trace::{address, phone, text, Rng};
use super::Res;

#[derive(Clone, Copy, Debug)]
pub struct LoadArgs {
    pub devices: usize,
    pub syncs: usize,
    pub per_station: usize,
    pub max_seconds: u64,
    pub cache_documents: usize,
    pub seed: u64,
}

struct LoadDevice {
    token: String,
    household: HouseholdId,
    creation: Vec<Vec<u8>>,
    deltas: Vec<Vec<Vec<u8>>>,
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

/// Run the load benchmark with `args.devices` devices and add its figures to `report`.
pub fn run_load(
    rt: &Runtime,
    binary: Option<&Path>,
    args: LoadArgs,
    report: &mut Report,
) -> Res<()> {
    let n = args.devices;
    let per_station = args.per_station.max(1);
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("server");
    let t_setup = Instant::now();

    // Stations, workers and one-time codes, written into the database before the server
    // starts (enrolling a thousand devices through the CLI would take minutes).
    let mut codes = Vec::with_capacity(n);
    let mut stations = Vec::new();
    {
        let store = SqliteStore::open(&data)?;
        for i in 0..n {
            if i % per_station == 0 {
                stations.push(store.create_station(&format!("站{}", stations.len()), now_ms())?);
            }
            let station = *stations.last().ok_or("no station")?;
            let w = store.add_worker(station, &format!("L{i:04}"), now_ms())?;
            codes.push(credentials::enroll_device(&store, w, now_ms())?.1);
        }
    }
    let server = Server::start(rt, &data, binary, args.cache_documents)?;
    let url = server.url.clone();

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

    // Real Doorstep changes: one generator store per station makes each device's household
    // and its K small edits (an address change each).
    let mut rng = Rng::new(args.seed);
    let mut devices: Vec<LoadDevice> = Vec::with_capacity(n);
    for (s, chunk) in enrolments.chunks(per_station).enumerate() {
        let first = &chunk[0];
        let mut opts = StoreOptions::new(
            tmp.path().join(format!("gen-{s}.db")),
            StoreKey::Raw([s as u8; 32]),
            first.worker,
            first.station,
        );
        opts.durability = Durability::Relaxed;
        let gen = Store::open(opts)?;
        for (j, e) in chunk.iter().enumerate() {
            let hid = gen.create_household(&NewHousehold {
                code: format!("LD-{:06}", s * per_station + j + 1),
                village: String::new(),
                address: address(&mut rng),
                gps: None,
                phones: vec![phone(&mut rng)],
                tags: vec![],
                summary: text(&mut rng, 100),
            })?;
            let creation = gen.export_changes(hid, &[])?;
            let mut deltas = Vec::with_capacity(args.syncs);
            for _ in 0..args.syncs {
                let before = gen.heads(hid)?;
                gen.edit_household(hid, &HouseholdEdit::Address(address(&mut rng)))?;
                deltas.push(gen.export_changes(hid, &before)?);
            }
            devices.push(LoadDevice {
                token: e.token.clone(),
                household: hid,
                creation,
                deltas,
                cursor: Cursor::default(),
            });
        }
    }

    // Each device's first sync (not measured): push its household, bootstrap its station.
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
                let mut push = vec![DocChanges {
                    doc: d.household,
                    changes: std::mem::take(&mut d.creation),
                }];
                loop {
                    let req = SyncRequest {
                        cursor: d.cursor,
                        budget: DEFAULT_BUDGET,
                        push: std::mem::take(&mut push),
                    };
                    let (resp, _, _) = post_sync(&client, &url, &d.token, &req).await?;
                    d.cursor = resp.cursor;
                    if !resp.more {
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
    let peak_reset = server.reset_peak();
    let cpu0 = server.cpu_seconds();
    let self_cpu0 = cpu_seconds("self").unwrap_or(f64::NAN);
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
                    let mut push = vec![DocChanges {
                        doc: d.household,
                        changes: std::mem::take(&mut d.deltas[k]),
                    }];
                    loop {
                        let req = SyncRequest {
                            cursor: d.cursor,
                            budget: DEFAULT_BUDGET,
                            push: std::mem::take(&mut push),
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
    let server_cpu = server.cpu_seconds() - cpu0;
    let client_cpu = cpu_seconds("self").unwrap_or(f64::NAN) - self_cpu0;
    let (peak, rss) = server.memory_kb();
    let server_proc = server.proc_name();
    let vm_peak = status_field(&server_proc, "VmPeak").unwrap_or(0);
    let is_child = server.is_child();
    server.stop(rt);

    let ok: Vec<&Sample> = samples.iter().filter(|s| s.ok).collect();
    let mut lat: Vec<f64> = ok.iter().map(|s| s.latency.as_secs_f64() * 1e3).collect();
    lat.sort_by(f64::total_cmp);
    let secs = wall.as_secs_f64();
    let key = format!("load_{n}");
    report.section(&key, &format!("Server load: {n} devices"));
    report.text(
        "server",
        "server",
        if is_child {
            "child process (release doorstep-server)"
        } else {
            "in-process (figures include the load clients)"
        },
    );
    report.int("devices", "devices (enrolled over HTTP)", n as u64);
    report.int(
        "stations",
        "stations (devices per station)",
        stations.len() as u64,
    );
    report.int("per_station", "devices per station", per_station as u64);
    report.int(
        "syncs_per_device",
        "syncs per device (one small edit each)",
        args.syncs as u64,
    );
    report.int(
        "server_cache_documents",
        "server document cache",
        args.cache_documents as u64,
    );
    report.secs("setup_s", "setup (not measured)", setup.as_secs_f64());
    report.int("requests", "sync requests answered 200", ok.len() as u64);
    report.int(
        "failed",
        "failed requests",
        (samples.len() - ok.len()) as u64,
    );
    report.secs("wall_s", "wall time, all devices", secs);
    report.float(
        "syncs_per_s",
        "throughput",
        ok.len() as f64 / secs.max(1e-9),
        "syncs/s",
    );
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
    report.secs("server_cpu_s", "server CPU in the window", server_cpu);
    report.ms(
        "server_cpu_per_sync_ms",
        "server CPU per sync",
        server_cpu * 1e3 / ok.len().max(1) as f64,
    );
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
    Ok(())
}

/// Diagnostic: resident memory of N loaded copies of one small household document, built
/// the way the server builds it (a new document + the pushed changes) and loaded from a
/// snapshot. Returns (kB per document applied, kB per document loaded).
pub fn doc_memory(copies: usize) -> Res<(f64, f64)> {
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
    store.edit_household(hid, &HouseholdEdit::Address(address(&mut rng)))?;
    let changes: Vec<automerge::Change> = store
        .export_changes(hid, &[])?
        .into_iter()
        .map(automerge::Change::from_bytes)
        .collect::<Result<_, _>>()?;
    let saved = store.export_document(hid)?;
    let rss = || status_field("self", "VmRSS").unwrap_or(0) as f64;
    let before = rss();
    let applied: Vec<automerge::Automerge> = (0..copies)
        .map(|_| {
            let mut d = automerge::Automerge::new();
            d.apply_changes(changes.iter().cloned()).map(|_| d)
        })
        .collect::<Result<_, _>>()?;
    let mid = rss();
    let loaded: Vec<automerge::Automerge> = (0..copies)
        .map(|_| automerge::Automerge::load(&saved))
        .collect::<Result<_, _>>()?;
    let after = rss();
    let saved_len: usize = applied.iter().map(|d| d.save().len()).sum();
    let after_save = rss();
    eprintln!(
        "doc memory: save() of every applied copy ({} B each) grew RSS by {:.1} kB per document",
        saved_len / copies.max(1),
        (after_save - after) / copies as f64
    );
    drop((applied, loaded));
    Ok((
        (mid - before) / copies as f64,
        (after - mid) / copies as f64,
    ))
}
