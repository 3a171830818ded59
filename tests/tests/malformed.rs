//! The malformed-input corpus (`tests/corpus/malformed/`, written once by
//! `cargo run -p doorstep-tests --bin make-corpus` and committed) replayed against a real
//! server on 127.0.0.1: every input gets the clean answer its manifest line names (a 4xx,
//! or a 200 whose per-document error codes refuse every pushed document) in bounded time;
//! the stored data is unchanged afterwards; and the server still serves a valid sync.
//!
//! Oversized bodies (over the 32 MiB limit) are made here rather than committed.
// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]
// The suite prints its figures.
#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use doorstep_core::protocol::{SyncRequest, SyncResponse, Unauthorized};
use doorstep_core::*;
use doorstep_server::store::{ServerStore, StoredDocument};
use doorstep_tests::*;

/// No input may take longer than this to answer (debug build, loaded CI machine).
const MAX_ANSWER: Duration = Duration::from_secs(20);

/// Everything the server stores about a station's documents, to compare before and after.
fn stored(server: &TestServer, station: StationId) -> (u64, Vec<(HouseholdId, StoredDocument)>) {
    let ids = server
        .store
        .list_documents(station, None, 100_000, None)
        .unwrap();
    let docs = ids
        .into_iter()
        .map(|id| (id, server.store.load_document(id).unwrap().unwrap()))
        .collect();
    (server.store.high_water(station).unwrap(), docs)
}

struct Line {
    file: String,
    endpoint: String,
    expect: String,
    what: String,
}

fn manifest(dir: &std::path::Path) -> Vec<Line> {
    std::fs::read_to_string(dir.join("MANIFEST.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            assert_eq!(f.len(), 4, "bad manifest line {l}");
            Line {
                file: f[0].into(),
                endpoint: f[1].into(),
                expect: f[2].into(),
                what: f[3].into(),
            }
        })
        .collect()
}

/// Check one answer against the manifest's expectation; `Err` says what is wrong.
fn judge(line: &Line, body: &[u8], status: u16, answer: &[u8]) -> Result<(), String> {
    let expect = line.expect.as_str();
    match expect {
        "clean" => {
            if status == 200 {
                SyncResponse::decode(answer).map_err(|e| format!("200 but undecodable: {e}"))?;
                Ok(())
            } else if status == 400 {
                Ok(())
            } else {
                Err(format!("status {status}, expected 200 or 400"))
            }
        }
        "ok" => {
            if status != 200 {
                return Err(format!("status {status}, expected 200"));
            }
            let resp =
                SyncResponse::decode(answer).map_err(|e| format!("200 but undecodable: {e}"))?;
            if !resp.errors.is_empty() || !resp.acks.is_empty() {
                return Err(format!("unexpected acks or errors: {resp:?}"));
            }
            Ok(())
        }
        e if e.starts_with("doc:") => {
            // doc:any: refused whatever the code (0 stands for any).
            let code: u8 = if e == "doc:any" {
                0
            } else {
                e[4..].parse().unwrap()
            };
            if status != 200 {
                return Err(format!("status {status}, expected 200 with code {code}"));
            }
            let req = SyncRequest::decode(body).unwrap();
            let pushed: BTreeSet<HouseholdId> = req.push.iter().map(|d| d.doc).collect();
            let resp =
                SyncResponse::decode(answer).map_err(|e| format!("200 but undecodable: {e}"))?;
            if !resp.acks.is_empty() {
                return Err(format!("{} documents acknowledged", resp.acks.len()));
            }
            let refused: BTreeSet<HouseholdId> = resp.errors.iter().map(|e| e.doc).collect();
            if refused != pushed || resp.errors.len() != pushed.len() {
                return Err(format!(
                    "{} documents pushed, {} errors for {} documents",
                    pushed.len(),
                    resp.errors.len(),
                    refused.len()
                ));
            }
            let codes: BTreeSet<String> = resp
                .errors
                .iter()
                .map(|e| format!("{:?}", e.code))
                .collect();
            let want = match code {
                0 => return Ok(()),
                1 => "NotFoundOrForbidden",
                2 => "Malformed",
                3 => "Invalid",
                4 => "MissingDependencies",
                _ => panic!("unknown code {code} in the manifest"),
            };
            if codes.len() != 1 || !codes.contains(want) {
                return Err(format!("codes {codes:?}, expected {want}"));
            }
            Ok(())
        }
        s => {
            let want: u16 = s.parse().unwrap();
            if status != want {
                return Err(format!("status {status}, expected {want}"));
            }
            if status == 401 {
                let u: Unauthorized = serde_json::from_slice(answer)
                    .map_err(|_| "401 without its JSON body".to_string())?;
                if u.wipe {
                    return Err("401 told the device to wipe".into());
                }
            }
            Ok(())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_input_gets_a_clean_answer_and_changes_nothing() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/malformed");
    let lines = manifest(&dir);
    assert!(lines.len() >= 80, "the corpus has {} inputs", lines.len());

    let server = TestServer::start().await;
    let station = server.station("站");
    let url = server.url();
    let a = server.device(station, "A", &url).await;
    let hh = a.new_household("HH-000001");
    let v = a.visit(hh);
    a.type_into(hh, v, Section::Concerns, "腐烂的输入不应改变任何记录。");
    a.new_household("HH-000002");
    a.sync().await;
    // The corpus is sent with the token of a second enrolled device of the same station.
    let r = server.device(station, "R", &url).await;
    let before = stored(&server, station);
    let epoch = server.store.epoch().unwrap();

    let client = reqwest::Client::builder()
        .timeout(MAX_ANSWER)
        .build()
        .unwrap();
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    let mut inputs = 0;
    let mut closed_early = 0;
    // How inputs that may get 200 or 400 were answered.
    let mut either: Vec<String> = Vec::new();
    let post = |endpoint: String, body: Vec<u8>| {
        let client = client.clone();
        let token = r.token.clone();
        let url = url.clone();
        async move {
            let mut req = client.post(format!("{url}/v1/{endpoint}")).body(body);
            if endpoint == "sync" {
                req = req.bearer_auth(token);
            }
            let started = Instant::now();
            let resp = req.send().await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => return Err(format!("no answer: {e}")),
            };
            let status = resp.status().as_u16();
            let answer = resp.bytes().await.map_err(|e| format!("body: {e}"))?;
            Ok((status, answer.to_vec(), started.elapsed()))
        }
    };
    for line in &lines {
        let body = std::fs::read(dir.join(&line.file)).unwrap();
        inputs += 1;
        match post(line.endpoint.clone(), body.clone()).await {
            Ok((status, answer, took)) => {
                *by_status.entry(status).or_default() += 1;
                if took > slowest.0 {
                    slowest = (took, line.file.clone());
                }
                if took > MAX_ANSWER {
                    failures.push(format!("{}: took {took:?}", line.file));
                }
                if let Err(why) = judge(line, &body, status, &answer) {
                    failures.push(format!("{} ({}): {why}", line.file, line.what));
                }
                if line.expect == "clean" {
                    either.push(format!("{} -> {status}", line.file));
                }
            }
            Err(e) => failures.push(format!("{} ({}): {e}", line.file, line.what)),
        }
    }
    // Bodies over the 32 MiB limit, made here rather than committed.
    for (what, len) in [
        ("oversized body, limit + 1", 32 * 1024 * 1024 + 1),
        ("oversized body, 40 MiB", 40 * 1024 * 1024),
    ] {
        inputs += 1;
        let line = Line {
            file: what.into(),
            endpoint: "sync".into(),
            expect: "413".into(),
            what: what.into(),
        };
        // The server answers 413 as soon as it sees the Content-Length and closes the
        // connection, possibly before the client has finished sending: the client may see
        // a broken connection instead of the 413. Either is a clean refusal; a status, when
        // one is seen, must be 413.
        let mut answered = false;
        for _ in 0..3 {
            match post("sync".into(), vec![0x28; len]).await {
                Ok((status, answer, took)) => {
                    *by_status.entry(status).or_default() += 1;
                    if took > slowest.0 {
                        slowest = (took, what.into());
                    }
                    if let Err(why) = judge(&line, &[], status, &answer) {
                        failures.push(format!("{what}: {why}"));
                    }
                    answered = true;
                    break;
                }
                Err(_) => continue,
            }
        }
        if !answered {
            closed_early += 1;
        }
    }

    // Nothing stored changed, the epoch is the same, and the server still serves.
    let after = stored(&server, station);
    assert_eq!(before.0, after.0, "the log grew");
    assert!(before == after, "stored documents changed");
    assert_eq!(server.store.epoch().unwrap(), epoch);
    let health = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    a.type_into(hh, v, Section::Concerns, "之后正常同步。");
    a.sync().await;
    r.sync().await;
    assert_converged(&[&a, &r]);
    assert_server_has(&server, &a);
    assert_eq!(
        r.section_text(hh, v, Section::Concerns),
        "腐烂的输入不应改变任何记录。之后正常同步。"
    );

    println!(
        "malformed figures: {inputs} inputs ({} from the corpus, 2 made here), answers by \
         status {by_status:?} (+{closed_early} oversized bodies refused by closing the \
         connection before the client saw the 413), slowest {:?} ({}), stored data \
         unchanged, valid sync after: ok",
        lines.len(),
        slowest.0,
        slowest.1
    );
    println!("  answered 200 or 400 as allowed: {}", either.join(", "));
    for f in &failures {
        println!("  FAILED {f}");
    }
    println!(
        "malformed: {} passed, {} failed",
        inputs - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{} inputs misanswered", failures.len());
    server.stop().await;
}
