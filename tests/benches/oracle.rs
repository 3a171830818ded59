//! The existence oracle of issue 13, item 5, measured: a device pushes the same refused
//! change — one with 200,000 characters in it — at a household id of another station and
//! at an absent id, alternately, against a real server on 127.0.0.1; the figure is each
//! one's median and p90 answer time at the client. Both must answer "not found or
//! forbidden" (checked) and should cost the same: the server decodes and checks a push at
//! a foreign id against an empty document, exactly as at an absent one
//! (`sync-server/src/sync/push.rs`). Before that, the foreign id was refused before
//! decoding: 69 ms against 883 ms (issue 13).
//!
//! Run: `cargo bench -p doorstep-tests --bench oracle` (`-- --rounds 41`). Under `cargo
//! test --all-targets` (no `--bench`) it runs 3 rounds as a smoke test.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::ROOT;
use doorstep_core::protocol::*;
use doorstep_core::transport::enroll;
use doorstep_core::*;
use doorstep_server::store::DeviceAuth;
use doorstep_tests::raw_device::RawDevice;
use doorstep_tests::TestServer;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(if bench { 21 } else { 3 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(rounds));
}

async fn run(rounds: usize) {
    let server = TestServer::start().await;
    let (sa, sb) = (server.station("A站"), server.station("B站"));
    let code = server.enrolment_code(sa, "X");
    let e = enroll(&server.url(), &code).await.unwrap();
    let auth = DeviceAuth {
        device: e.device,
        worker: e.worker,
        station: e.station,
        revoked: false,
    };
    let x = RawDevice::new(auth, 0x0b);
    let url = server.url();
    let b1 = server.device(sb, "B1", &url).await;
    let foreign = b1.new_household("HH-B00001");
    b1.sync().await;

    let made = x
        .store
        .create_household(&NewHousehold {
            code: "HH-A00001".into(),
            ..Default::default()
        })
        .unwrap();
    let own = x.document(made);
    let big: String = "孩子情况良好无需干预"
        .chars()
        .cycle()
        .take(200_000)
        .collect();
    // Aimed at `target`, with a value no phone reads (refused wherever it goes).
    let request = |target: HouseholdId| {
        let mut doc = own.fork().with_actor(x.actor.clone());
        let mut tx = doc.transaction();
        tx.put(ROOT, "id", target.to_string()).unwrap();
        tx.put(ROOT, "kind", big.as_str()).unwrap();
        tx.commit();
        let changes = doc.get_changes(&[]);
        let mut req = x.request(made, &changes);
        req.push[0].doc = target;
        req.push[0].signatures = x.sign(target, &changes);
        req.encode()
    };
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        let client = client.clone();
        let url = format!("{}/v1/sync", server.url());
        let token = e.token.clone();
        async move {
            let t = Instant::now();
            let resp = client
                .post(url)
                .bearer_auth(token)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            let bytes = resp.bytes().await.unwrap();
            (t.elapsed(), SyncResponse::decode(&bytes).unwrap())
        }
    };
    let (mut at_foreign, mut at_absent) = (Vec::new(), Vec::new());
    for round in 0..rounds + 1 {
        let absent = HouseholdId::new();
        let (fa, fb) = (request(foreign), request(absent));
        // Alternate which goes first, so neither always meets a warm cache.
        let order = if round % 2 == 0 {
            [(foreign, fa), (absent, fb)]
        } else {
            [(absent, fb), (foreign, fa)]
        };
        for (id, body) in order {
            let (took, resp) = post(body).await;
            let code = resp.errors.iter().find(|e| e.doc == id).map(|e| e.code);
            assert_eq!(
                code,
                Some(DocErrorCode::NotFoundOrForbidden),
                "round {round}"
            );
            if round > 0 {
                // Round 0 warms up.
                if id == foreign {
                    at_foreign.push(took)
                } else {
                    at_absent.push(took)
                }
            }
        }
    }
    let profile = if cfg!(debug_assertions) {
        "DEBUG build (figures not meaningful)"
    } else {
        "release build"
    };
    println!("# existence oracle: {rounds} rounds, {profile}, 200,000-character change, refused");
    println!("| pushed at | median | p90 |");
    println!("|---|---|---|");
    for (what, mut v) in [
        ("another station's id", at_foreign),
        ("an absent id", at_absent),
    ] {
        v.sort();
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        println!("| {what} | {} | {} |", ms(q(0.5)), ms(q(0.9)));
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
