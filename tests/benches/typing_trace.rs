//! Typing cost against the length of the text (issue 14, ADR 0027): replay a long editing
//! trace into one section of a draft visit through `Store::splice_section`, one durable
//! edit (one SQLite transaction, `synchronous=FULL`) per patch of the trace, on an
//! encrypted store in a temporary directory. Reports CPU time (the thread's
//! `/proc/thread-self/schedstat`) and wall time per edit, p50 and p99, per bucket of
//! 1,000 edits, with the section's length at the end of each bucket. After each bucket it
//! searches for the words just typed, checks the visit is found (search is exact), and
//! reports how long that search took (it includes indexing whatever typing left pending).
//!
//! Run: `cargo bench -p doorstep-tests --bench typing_trace -- --trace PATH --edits 60000`
//! where PATH is josephg/editing-traces `sequential_traces/automerge-paper.json.gz`
//! (gzip or plain JSON; not in this repository). Without `--trace` it replays a seeded
//! synthetic trace of the same shape (`--seed N`): mostly typing at a cursor near the end,
//! some jumps to mid-text, backspaces, ASCII and Chinese. Under `cargo test --all-targets`
//! (no `--bench`) it runs 2,000 synthetic edits as a smoke test. `--compact-after N` and
//! `--compact-tail-percent P` set `StoreOptions::compact_after` (default 32) and
//! `compact_tail_percent` (default 200; 0 is the count-only rule of ADR 0011, before
//! ADR 0038), to tell the compaction's share of the tail percentiles. Each bucket also
//! reports its CPU p99.9 and maximum, how many edits compacted the document, and, after
//! the bucket, the document's stored tail and the wall time of loading it from disk (the
//! cache cleared, then `Store::household`, as opening the visit does; least of 5). At the
//! end it finalises the visit (which folds the tail) and loads the document again.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::Read;
use std::time::Instant;

use doorstep_core::*;

/// One patch: at `pos` (code points) delete `del` characters, then insert `ins`.
#[derive(Debug, Clone)]
struct Edit {
    pos: usize,
    del: usize,
    ins: String,
}

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn num(name: &str, default: usize) -> usize {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The patches of an editing-traces file, in order (each transaction's patches are
/// already in an order that applies one after another).
fn load_trace(path: &str) -> Vec<Edit> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let json = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        raw
    };
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let mut edits = Vec::new();
    for txn in v["txns"].as_array().expect("a trace has txns") {
        for p in txn["patches"].as_array().expect("a txn has patches") {
            edits.push(Edit {
                pos: p[0].as_u64().unwrap() as usize,
                del: p[1].as_u64().unwrap() as usize,
                ins: p[2].as_str().unwrap().to_owned(),
            });
        }
    }
    edits
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A synthetic trace shaped like a person typing a long note: one character per edit at a
/// cursor, about 1 in 12 edits a backspace, the cursor jumping to a random place now and
/// then and back to the end more often; 60 % Chinese, the rest ASCII, spaces and newlines.
fn synthetic(n: usize, seed: u64) -> Vec<Edit> {
    let mut rng = Rng(seed);
    let mut len = 0usize;
    let mut cursor = 0usize;
    let mut edits = Vec::with_capacity(n);
    while edits.len() < n {
        match rng.below(1000) {
            0..=2 => cursor = rng.below(len + 1),
            3..=12 => cursor = len,
            _ => {}
        }
        if rng.below(12) == 0 && cursor > 0 {
            cursor -= 1;
            len -= 1;
            edits.push(Edit {
                pos: cursor,
                del: 1,
                ins: String::new(),
            });
            continue;
        }
        let c = match rng.below(100) {
            0..=59 => char::from_u32(0x4e00 + rng.below(3000) as u32).unwrap(),
            60..=64 => '\n',
            65..=79 => ' ',
            _ => (b'a' + rng.below(26) as u8) as char,
        };
        edits.push(Edit {
            pos: cursor,
            del: 0,
            ins: c.to_string(),
        });
        cursor += 1;
        len += 1;
    }
    edits
}

/// This thread's CPU time so far, in nanoseconds (the scheduler's own account).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The wall time of loading a household's document from disk and reading it whole
/// (`Store::household`, as opening a visit does), the cache cleared first: the least of 5
/// tries, as the load is CPU-bound (the file is in the page cache) and the machine is
/// shared. The thread's `schedstat` advances only at the scheduler's ticks when nothing
/// blocks, too coarse for one load.
fn load_wall_ns(store: &Store, hh: HouseholdId) -> u64 {
    (0..5)
        .map(|_| {
            store.clear_cache();
            let t = Instant::now();
            store.household(hh).unwrap();
            t.elapsed().as_nanos() as u64
        })
        .min()
        .unwrap_or(0)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

/// Up to 6 characters of `text` ending at `at` (code points), trimmed: words just typed.
fn recent_words(text: &[char], at: usize) -> String {
    let end = at.min(text.len());
    let start = end.saturating_sub(6);
    text[start..end]
        .iter()
        .collect::<String>()
        .trim()
        .to_owned()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let trace = arg("--trace");
    let edits_wanted = num("--edits", if bench { 60_000 } else { 2_000 });
    let bucket = num("--bucket", 1_000).max(1);
    let mut edits = match &trace {
        Some(p) => load_trace(p),
        None => synthetic(edits_wanted, num("--seed", 14) as u64),
    };
    edits.truncate(edits_wanted);
    let source = trace
        .as_deref()
        .map(|p| format!("trace {p}"))
        .unwrap_or_else(|| format!("synthetic trace, seed {}", num("--seed", 14)));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typing.db");
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let mut options =
        StoreOptions::new(&path, StoreKey::Raw(key), WorkerId::new(), StationId::new());
    // The store's default unless asked: the p99 of an edit is the one in 32 that compacts.
    options.compact_after = num("--compact-after", options.compact_after as usize) as u32;
    options.compact_tail_percent = num(
        "--compact-tail-percent",
        options.compact_tail_percent as usize,
    ) as u32;
    let rule = format!(
        "compact_after {}, compact_tail_percent {}",
        options.compact_after, options.compact_tail_percent
    );
    let store = Store::open(options).unwrap();
    let hh = store
        .create_household(&NewHousehold {
            code: "HH-TYPING".into(),
            village: "石桥村".into(),
            address: "石桥村一组".into(),
            summary: "祖孙二人生活。".into(),
            ..Default::default()
        })
        .unwrap();
    let visit = store
        .start_visit(
            hh,
            &NewVisit {
                kind: VisitKind::Home,
                date: Date::parse("2026-12-07").unwrap(),
                started_at: Timestamp::now(),
                gps: None,
                other_workers: vec![],
                present: vec![],
                companions: vec![],
            },
        )
        .unwrap();
    let section = Section::PersonalSituation;

    println!("# typing_trace: {} edits, {source}, {rule}", edits.len());
    println!();
    println!(
        "| edits | chars at end | CPU p50 ms | CPU p99 ms | CPU p99.9 ms | CPU max ms | wall p50 ms | wall p99 ms | compactions | search after, wall ms | snapshot KiB | tail changes | tail KiB | load wall ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    // The text as the trace makes it, to choose what to search for.
    let mut text: Vec<char> = Vec::new();
    let (mut cpu, mut wall) = (Vec::with_capacity(bucket), Vec::with_capacity(bucket));
    let (mut all_cpu, mut all_wall) = (0u64, 0u64);
    let mut first_last: Vec<(u64, u64)> = Vec::new();
    let started = Instant::now();
    let mut compactions = 0;
    let mut pending = 0;
    for (i, e) in edits.iter().enumerate() {
        let c0 = thread_cpu_ns();
        let t0 = Instant::now();
        store
            .splice_section(hh, visit, section, e.pos, e.del, &e.ins)
            .unwrap_or_else(|err| panic!("edit {i} ({} chars): {err}", text.len()));
        let w = t0.elapsed().as_nanos() as u64;
        let c = thread_cpu_ns().saturating_sub(c0);
        cpu.push(c);
        wall.push(w);
        all_cpu += c;
        all_wall += w;
        text.splice(e.pos..e.pos + e.del, e.ins.chars());
        // Outside the timed part: did this edit fold the document's tail?
        let now_pending = store.document_storage(hh).unwrap().pending_changes;
        if now_pending < pending {
            compactions += 1;
        }
        pending = now_pending;
        if (i + 1) % bucket == 0 || i + 1 == edits.len() {
            // The words just typed must be found at once: search is exact.
            let needle = recent_words(&text, e.pos + e.ins.chars().count());
            let search_ms = if needle.is_empty() {
                "-".to_owned()
            } else {
                let t = Instant::now();
                let hits = store.search(&needle, 50).unwrap();
                let took = t.elapsed().as_nanos() as u64;
                assert!(
                    hits.iter().any(|h| h.record == visit.to_string()),
                    "search for the words just typed missed the visit after edit {i}"
                );
                ms(took)
            };
            // What opening the visit costs with the tail as it is now: load from disk.
            let stored = store.document_storage(hh).unwrap();
            let load = load_wall_ns(&store, hh);
            cpu.sort_unstable();
            wall.sort_unstable();
            let (c50, c99) = (percentile(&cpu, 0.5), percentile(&cpu, 0.99));
            first_last.push((c50, c99));
            println!(
                "| {}–{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {:.1} | {} |",
                i + 1 - cpu.len() + 1,
                i + 1,
                text.len(),
                ms(c50),
                ms(c99),
                ms(percentile(&cpu, 0.999)),
                ms(cpu.last().copied().unwrap_or(0)),
                ms(percentile(&wall, 0.5)),
                ms(percentile(&wall, 0.99)),
                compactions,
                search_ms,
                stored.snapshot_bytes as f64 / 1024.0,
                stored.pending_changes,
                stored.pending_bytes as f64 / 1024.0,
                ms(load),
            );
            cpu.clear();
            wall.clear();
            compactions = 0;
        }
    }
    let n = edits.len().max(1) as u64;
    println!();
    println!(
        "total: {} edits in {:.1} s wall; mean per edit {} ms CPU, {} ms wall; final text {} chars",
        edits.len(),
        started.elapsed().as_secs_f64(),
        ms(all_cpu / n),
        ms(all_wall / n),
        text.len()
    );
    if let (Some(first), Some(last)) = (first_last.first(), first_last.last()) {
        println!(
            "CPU p50 last bucket / first bucket: {:.2}x; p99: {:.2}x",
            last.0 as f64 / first.0.max(1) as f64,
            last.1 as f64 / first.1.max(1) as f64
        );
    }
    // The same document with its tail folded (finalising the visit compacts it): what the
    // tail adds to a load.
    let tail = store.document_storage(hh).unwrap();
    let with_tail = load_wall_ns(&store, hh);
    store.finalise_visit(hh, visit).unwrap();
    let folded = store.document_storage(hh).unwrap();
    let without = load_wall_ns(&store, hh);
    println!(
        "load at the end: {} ms with a tail of {} changes ({:.1} KiB) on a {:.1} KiB snapshot; \
         {} ms folded into one snapshot of {:.1} KiB",
        ms(with_tail),
        tail.pending_changes,
        tail.pending_bytes as f64 / 1024.0,
        tail.snapshot_bytes as f64 / 1024.0,
        ms(without),
        folded.snapshot_bytes as f64 / 1024.0
    );
    // The store's text equals the trace's: nothing was lost on the way.
    let stored = store
        .household(hh)
        .unwrap()
        .visits
        .iter()
        .find(|v| v.id == visit)
        .unwrap()
        .section(section)
        .to_owned();
    assert_eq!(
        stored,
        text.iter().collect::<String>(),
        "the section's text"
    );
}
