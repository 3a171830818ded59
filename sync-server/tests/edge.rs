//! The HTTP edge against hostile clients, on a real server on 127.0.0.1 (issue 13): bodies
//! of unauthenticated requests are not read (memory stays bounded), stalled heads and bodies
//! are cut off by their timeouts, a flood of connections does not silence `/healthz`,
//! enrolment guesses are rate-limited per address and logged without the code, and
//! `/metrics` is only on its own listener.
//!
//! Loops are bounded in count and in time; every wait has a generous ceiling that only a
//! broken server reaches. Assertions are on behaviour (status, closed, bytes), never on how
//! fast something happened.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, ServerConfig, ServerHandle, SqliteStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Ceiling on any single wait: reached only if the server misbehaves.
const CEILING: Duration = Duration::from_secs(60);

struct Running {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    server: ServerHandle,
}

async fn start(config: ServerConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = doorstep_server::serve(store.clone(), listener, config)
        .await
        .unwrap();
    Running {
        _dir: dir,
        store,
        server,
    }
}

/// A one-time code for a new device of a new worker.
fn code(store: &SqliteStore) -> String {
    let station = store.create_station("站", now_ms()).unwrap();
    let worker = store.add_worker(station, "W01", now_ms()).unwrap();
    credentials::enroll_device(store, worker, now_ms())
        .unwrap()
        .1
}

/// Resident memory of this process (the server runs in it), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Raise this process's soft open-file limit towards `wanted`; returns the limit now.
fn raise_nofile(wanted: u64) -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= wanted {
        return soft;
    }
    let target = limit.maximum.map_or(wanted, |h| h.min(wanted));
    let raised = Rlimit {
        current: Some(target),
        maximum: limit.maximum,
    };
    if setrlimit(Resource::Nofile, raised).is_ok() {
        target
    } else {
        soft
    }
}

/// Read until the server closes the connection (EOF or reset), at most `ceiling`; returns
/// what was read and whether it was closed.
async fn read_until_closed(stream: &mut TcpStream, ceiling: Duration) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(ceiling, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if got.len() < 64 * 1024 {
                        got.extend_from_slice(&buf[..n]);
                    }
                }
            }
        }
    })
    .await
    .is_ok();
    (got, closed)
}

fn status_of(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

/// Read one response head (up to the blank line), at most `ceiling`.
async fn read_head(stream: &mut TcpStream, ceiling: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(ceiling, async {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&got).into_owned()
}

async fn metrics(server: &ServerHandle) -> String {
    let url = server.metrics_url().unwrap();
    reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing: {metrics}"))
}

async fn healthz(url: &str) -> u16 {
    reqwest::get(format!("{url}/healthz"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokenless_clients_stalling_in_large_bodies_do_not_grow_memory() {
    let config = ServerConfig {
        body_timeout: Duration::from_secs(2),
        header_timeout: Duration::from_secs(5),
        ..ServerConfig::default()
    };
    let r = start(config).await;
    let addr = r.server.addr;
    let url = r.server.url();
    assert_eq!(healthz(&url).await, 200);
    let baseline = rss();

    // Five kinds of token-less clients, 40 each. Each declares (or streams) a body of up to
    // 31 MiB, sends what the server will take of it (up to 8 MiB), then stalls. Before the
    // fix the server buffered every body: 40 × 8 MiB alone took > 300 MB.
    static CHUNK: [u8; MIB] = [b'x'; MIB];
    let declared = 31 * MIB;
    let kinds: [(&str, String, Option<u16>); 5] = [
        (
            "sync without a token",
            format!("POST /v1/sync HTTP/1.1\r\nHost: t\r\nContent-Length: {declared}\r\n\r\n"),
            Some(401),
        ),
        (
            "sync with an unknown token",
            format!(
                "POST /v1/sync HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
                 Content-Length: {declared}\r\n\r\n",
                "ab".repeat(48)
            ),
            Some(401),
        ),
        (
            "enrol with a large declared body",
            format!("POST /v1/enroll HTTP/1.1\r\nHost: t\r\nContent-Length: {declared}\r\n\r\n"),
            Some(413),
        ),
        (
            "enrol with a large chunked body",
            "POST /v1/enroll HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
            Some(413),
        ),
        (
            "enrol with a small body never finished",
            "POST /v1/enroll HTTP/1.1\r\nHost: t\r\nContent-Length: 60000\r\n\r\n".into(),
            Some(408),
        ),
    ];
    let (written_tx, mut written_rx) = tokio::sync::mpsc::channel::<()>(256);
    let mut clients = Vec::new();
    for (k, (_, head, _)) in kinds.iter().enumerate() {
        for _ in 0..40 {
            let head = head.clone();
            let written = written_tx.clone();
            clients.push(tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                s.write_all(head.as_bytes()).await.unwrap();
                let send = async {
                    match k {
                        3 => {
                            for _ in 0..8 {
                                s.write_all(format!("{MIB:x}\r\n").as_bytes()).await?;
                                s.write_all(&CHUNK).await?;
                                s.write_all(b"\r\n").await?;
                            }
                        }
                        4 => s.write_all(&CHUNK[..30_000]).await?,
                        _ => {
                            for _ in 0..8 {
                                s.write_all(&CHUNK).await?;
                            }
                        }
                    }
                    Ok::<(), std::io::Error>(())
                };
                // A server that stops reading makes the writes wait: give up on them.
                let _ = tokio::time::timeout(Duration::from_secs(10), send).await;
                let _ = written.send(()).await;
                // Stall: send nothing more, wait for the server to close.
                let (got, closed) = read_until_closed(&mut s, CEILING).await;
                (k, status_of(&got), closed)
            }));
        }
    }
    drop(written_tx);
    let mut written = 0;
    while tokio::time::timeout(CEILING, written_rx.recv())
        .await
        .ok()
        .flatten()
        .is_some()
    {
        written += 1;
    }
    assert_eq!(written, 200);

    // Everything is sent that will be; the clients stall. Memory stays bounded and the
    // server answers.
    let grown = rss().saturating_sub(baseline);
    eprintln!("server RSS grew by {} kB", grown / 1024);
    assert!(
        grown < 200 * MIB as u64,
        "server memory grew by {} MB",
        grown / MIB as u64
    );
    assert_eq!(healthz(&url).await, 200);

    // Every stalled client is cut off: at once when its body is refused unread, after the
    // body timeout when it is read. Those that were not writing when cut off read the
    // answer (a client still writing may see a reset instead).
    for c in clients {
        let (k, status, closed) = c.await.unwrap();
        let (what, _, expected) = &kinds[k];
        assert!(closed, "{what}: connection still open");
        if k == 4 {
            assert_eq!(status, *expected, "{what}");
        } else if let Some(s) = status {
            assert_eq!(Some(s), *expected, "{what}");
        }
    }
    let m = metrics(&r.server).await;
    assert_eq!(counter(&m, "doorstep_body_timeouts_total"), 40, "{m}");
    // No body of an unauthenticated sync was read.
    assert_eq!(counter(&m, "doorstep_bytes_received_total"), 0, "{m}");
    assert_eq!(counter(&m, "doorstep_unauthorized_total"), 80, "{m}");
    r.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_uploads_with_a_valid_token_share_a_memory_budget() {
    // A stolen or buggy phone's token must not let it do what token-less clients cannot:
    // large bodies wait for room in the body memory budget before they are read.
    let config = ServerConfig {
        body_memory: 8 * MIB,
        // Long enough for all 240 MB to arrive if nothing held them back.
        body_timeout: Duration::from_secs(8),
        ..ServerConfig::default()
    };
    let r = start(config).await;
    let addr = r.server.addr;
    let url = r.server.url();
    let token = doorstep_core::transport::enroll(&url, &code(&r.store))
        .await
        .unwrap()
        .token;
    assert_eq!(healthz(&url).await, 200);
    let baseline = rss();

    // 30 uploads declaring 31 MiB (within the 32 MiB limit) send up to 8 MiB each and
    // stall. Without the budget the server would hold 240 MB of them.
    static CHUNK: [u8; MIB] = [b'y'; MIB];
    let (written_tx, mut written_rx) = tokio::sync::mpsc::channel::<()>(64);
    let mut clients = Vec::new();
    for _ in 0..30 {
        let head = format!(
            "POST /v1/sync HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: {}\r\n\r\n",
            31 * MIB
        );
        let written = written_tx.clone();
        clients.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(head.as_bytes()).await.unwrap();
            let send = async {
                for _ in 0..8 {
                    s.write_all(&CHUNK).await?;
                }
                Ok::<(), std::io::Error>(())
            };
            let _ = tokio::time::timeout(Duration::from_secs(6), send).await;
            let _ = written.send(()).await;
            let (got, closed) = read_until_closed(&mut s, CEILING).await;
            (status_of(&got), closed)
        }));
    }
    drop(written_tx);
    let mut written = 0;
    while tokio::time::timeout(CEILING, written_rx.recv())
        .await
        .ok()
        .flatten()
        .is_some()
    {
        written += 1;
    }
    assert_eq!(written, 30);
    let grown = rss().saturating_sub(baseline);
    eprintln!("server RSS grew by {} kB", grown / 1024);
    assert!(
        grown < 100 * MIB as u64,
        "server memory grew by {} MB",
        grown / MIB as u64
    );
    assert_eq!(healthz(&url).await, 200);

    // None finishes its body: all are cut off by the body timeout, whether they were
    // being read or waiting for room.
    for c in clients {
        let (status, closed) = c.await.unwrap();
        assert!(closed, "an upload left open");
        if let Some(s) = status {
            assert_eq!(s, 408);
        }
    }
    let m = metrics(&r.server).await;
    assert_eq!(counter(&m, "doorstep_body_timeouts_total"), 30, "{m}");
    r.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_half_sent_heads_does_not_silence_healthz_and_is_closed() {
    // Each stalled connection takes a descriptor here and (until closed) one in the server.
    let limit = raise_nofile(4096);
    let n = (limit.saturating_sub(400) as usize / 2).min(1000);
    assert!(n >= 300, "open-file limit {limit} too low for this test");
    let config = ServerConfig {
        max_connections: 200,
        connection_reserve: 16,
        header_timeout: Duration::from_secs(3),
        ..ServerConfig::default()
    };
    let r = start(config).await;
    let addr = r.server.addr;
    let url = r.server.url();

    let mut stalled = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            .await
            .unwrap();
        stalled.push(s);
    }
    // While they stall: liveness still answers (from the reserve if the limit is full).
    let mut probe = TcpStream::connect(addr).await.unwrap();
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut probe, CEILING).await;
    assert!(head.starts_with("HTTP/1.1 200"), "healthz: {head:?}");
    assert_eq!(healthz(&url).await, 200);
    let m = metrics(&r.server).await;
    assert!(
        counter(&m, "doorstep_connections_over_limit_total") > 0,
        "{m}"
    );
    assert!(counter(&m, "doorstep_connections_open") <= 200, "{m}");

    // Every stalled connection is closed: those holding the limit's slots by the header
    // timeout, the others by the reserve (its own header timeout, or a newer connection).
    let waits: Vec<_> = stalled
        .into_iter()
        .map(|mut s| tokio::spawn(async move { read_until_closed(&mut s, CEILING).await.1 }))
        .collect();
    let mut closed = 0;
    for w in waits {
        closed += usize::from(w.await.unwrap());
    }
    assert_eq!(closed, n, "stalled connections left open");

    // And the server serves normally again; the slots are free (the gauge follows the
    // closes it has just seen: bounded retries).
    assert_eq!(healthz(&url).await, 200);
    let mut open = u64::MAX;
    for _ in 0..50 {
        open = counter(&metrics(&r.server).await, "doorstep_connections_open");
        if open <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(open <= 1, "{open} connections still counted open");
    r.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_body_with_a_bad_token_is_refused_before_it_is_sent() {
    let config = ServerConfig {
        body_limit: MIB,
        body_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    };
    let r = start(config).await;
    let addr = r.server.addr;
    let enrolment = doorstep_core::transport::enroll(&r.server.url(), &code(&r.store))
        .await
        .unwrap();

    // Declares 30 MiB, sends 1 KiB, then waits for the answer: it comes, so the server did
    // not wait for (or read) the body.
    let ask = |auth: String, expect_continue: bool| async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let expect = if expect_continue {
            "Expect: 100-continue\r\n"
        } else {
            ""
        };
        let head = format!(
            "POST /v1/sync HTTP/1.1\r\nHost: t\r\n{auth}{expect}Content-Length: {}\r\n\r\n",
            30 * MIB
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&[0u8; 1024]).await.unwrap();
        let (got, closed) = read_until_closed(&mut s, CEILING).await;
        (String::from_utf8_lossy(&got).into_owned(), closed)
    };
    let bad = format!("Authorization: Bearer {}\r\n", "cd".repeat(48));
    for (what, auth, expect_continue, status) in [
        ("no token", String::new(), false, 401),
        ("unknown token", bad.clone(), false, 401),
        ("unknown token, 100-continue", bad, true, 401),
        (
            "valid token, body over the limit",
            format!("Authorization: Bearer {}\r\n", enrolment.token),
            true,
            413,
        ),
    ] {
        let (got, closed) = ask(auth, expect_continue).await;
        assert_eq!(status_of(got.as_bytes()), Some(status), "{what}: {got:?}");
        // No "100 Continue" was sent: the client was never asked for the body.
        assert!(!got.contains(" 100 "), "{what}: {got:?}");
        assert!(closed, "{what}: connection left open");
    }

    // A valid token and a body within the limit that never finishes: read, then cut off by
    // the body timeout.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/sync HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        enrolment.token,
        512 * 1024
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[0u8; 100_000]).await.unwrap();
    let (got, closed) = read_until_closed(&mut s, CEILING).await;
    assert_eq!(
        status_of(&got),
        Some(408),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(closed);

    let m = metrics(&r.server).await;
    assert_eq!(counter(&m, "doorstep_bytes_received_total"), 0, "{m}");
    assert_eq!(counter(&m, "doorstep_unauthorized_total"), 3, "{m}");
    r.server.shutdown().await;
}

/// Log lines written by the server in this test binary.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        logs
    })
    .clone()
}

async fn enrol(url: &str, code: &str, forwarded_for: Option<&str>) -> (u16, Option<u64>) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/v1/enroll"))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "code": code }).to_string());
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    let resp = req.send().await.unwrap();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    (resp.status().as_u16(), retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_enrolment_codes_are_rate_limited_per_address_and_logged_without_the_code() {
    let logs = captured_logs();
    let config = ServerConfig {
        enrol_burst: 3,
        enrol_refill: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let r = start(config).await;
    let url = r.server.url();
    let good = code(&r.store);
    let wrong = "ZZZZ-QQQQ-9999";

    for _ in 0..3 {
        assert_eq!(enrol(&url, wrong, None).await.0, 401);
    }
    // The limit: wrong and right codes alike are refused from this address, unchecked.
    let (status, retry_after) = enrol(&url, wrong, None).await;
    assert_eq!(status, 429);
    let retry_after = retry_after.unwrap();
    assert!((1..=3).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(enrol(&url, &good, None).await.0, 429);
    // X-Forwarded-For from a client that is not a trusted proxy changes nothing.
    assert_eq!(enrol(&url, &good, Some("203.0.113.77")).await.0, 429);

    // A request that cannot be a code is refused as malformed, without a lookup: it is
    // logged and counted but neither limited nor limiting.
    let malformed = reqwest::Client::new()
        .post(format!("{url}/v1/enroll"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 400);

    let m = metrics(&r.server).await;
    assert_eq!(counter(&m, "doorstep_enrol_failures_total"), 4, "{m}");
    assert_eq!(counter(&m, "doorstep_enrol_rate_limited_total"), 3, "{m}");
    assert_eq!(counter(&m, "doorstep_enrolments_total"), 0, "{m}");

    // It recovers: after Retry-After the right code enrols (bounded tries).
    let mut enrolled = false;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(retry_after)).await;
        match enrol(&url, &good, None).await.0 {
            200 => {
                enrolled = true;
                break;
            }
            429 => continue,
            s => panic!("enrolment answered {s}"),
        }
    }
    assert!(enrolled, "still limited after five Retry-After periods");

    // Each refused attempt is logged with the address and a reason; never the code. (The
    // log is this test binary's: other tests' refusals are in it too, with other reasons.)
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let refused: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("enrolment refused"))
        .collect();
    for l in &refused {
        assert!(l.contains("client=") && l.contains("reason="), "{l}");
    }
    let unknown = refused
        .iter()
        .filter(|l| l.contains("client=127.0.0.1") && l.contains("unknown_code"))
        .count();
    assert!(unknown >= 3, "{text}");
    for secret in [wrong, "ZZZZQQQQ9999", good.as_str(), &good.replace('-', "")] {
        assert!(!text.contains(secret), "a code in the log: {text}");
    }
    r.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let config = ServerConfig {
        enrol_burst: 2,
        enrol_refill: Duration::from_secs(3600),
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..ServerConfig::default()
    };
    let r = start(config).await;
    let url = r.server.url();
    let good = code(&r.store);
    let attacker = "198.51.100.1, 203.0.113.10";
    for _ in 0..2 {
        assert_eq!(enrol(&url, "WRONG-WRONG", Some(attacker)).await.0, 401);
    }
    assert_eq!(enrol(&url, "WRONG-WRONG", Some(attacker)).await.0, 429);
    // A spoofed first hop does not escape: the proxy's (last) entry counts.
    assert_eq!(
        enrol(&url, "WRONG-WRONG", Some("192.0.2.99, 203.0.113.10"))
            .await
            .0,
        429
    );
    // Another client behind the same proxy is not affected.
    assert_eq!(enrol(&url, &good, Some("203.0.113.11")).await.0, 200);
    r.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_their_own_address_only() {
    let r = start(ServerConfig::default()).await;
    let url = r.server.url();
    let metrics_url = r.server.metrics_url().unwrap();
    assert_ne!(r.server.addr, r.server.metrics_addr.unwrap());
    assert!(r.server.metrics_addr.unwrap().ip().is_loopback());

    let public = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(public.status().as_u16(), 404);
    let private = reqwest::get(format!("{metrics_url}/metrics"))
        .await
        .unwrap();
    assert_eq!(private.status().as_u16(), 200);
    let text = private.text().await.unwrap();
    assert!(text.contains("doorstep_syncs_total 0"), "{text}");
    // The metrics listener serves nothing else.
    let sync = reqwest::Client::new()
        .post(format!("{metrics_url}/v1/sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status().as_u16(), 404);
    r.server.shutdown().await;

    // Switched off: no listener.
    let r = start(ServerConfig {
        metrics_listen: None,
        ..ServerConfig::default()
    })
    .await;
    assert!(r.server.metrics_addr.is_none());
    let public = reqwest::get(format!("{}/metrics", r.server.url()))
        .await
        .unwrap();
    assert_eq!(public.status().as_u16(), 404);
    r.server.shutdown().await;
}
