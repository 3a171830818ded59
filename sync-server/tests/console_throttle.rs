//! Login throttling per client address as well as per login (ADR 0028), against a real
//! server on 127.0.0.1 behind a "proxy" it trusts (the test sends `X-Forwarded-For` as a
//! TLS proxy in front of the console would): an attacker who fails a supervisor's
//! password five times is refused from its address, the supervisor still signs in from
//! hers; an address that guesses across logins is refused for every login; an IPv6
//! client counts by its /64. The server log says that logins failed and were throttled,
//! and never the login name, the password or the address.
#![allow(clippy::unwrap_used)]

mod console_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use console_support::client::Browser;
use doorstep_server::console::{auth, ConsoleConfig};
use doorstep_server::store::ServerStore;
use doorstep_server::{now_ms, ServerConfig, SqliteStore};

const LOGIN: &str = "zhang.supervisor";
const OTHER: &str = "li.supervisor";
const PASSWORD: &str = "correct horse battery";
const WRONG: &str = "Tr0ub4dor&3-guess";
const ATTACKER: &str = "198.51.100.7";
const SUPERVISOR: &str = "203.0.113.9";

/// The server's log lines, kept in memory.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_signs_in_while_an_attackers_address_is_throttled() {
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_env_filter("info")
        .init();

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("server")).unwrap());
    let station = store.create_station("石桥镇社工站", now_ms()).unwrap();
    auth::add_account(store.as_ref(), station, LOGIN, PASSWORD, now_ms()).unwrap();
    auth::add_account(store.as_ref(), station, OTHER, PASSWORD, now_ms()).unwrap();
    let config = ServerConfig {
        console: Some(ConsoleConfig {
            secure_cookies: false,
            ..ConsoleConfig::default()
        }),
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..ServerConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = doorstep_server::serve(store.clone(), listener, config)
        .await
        .unwrap();
    let url = server.url();

    // Five wrong passwords for her login from the attacker's address: the sixth attempt
    // from there is refused, the right password included.
    let mut attacker = Browser::behind_proxy(url.clone(), ATTACKER);
    for _ in 0..auth::MAX_FAILURES {
        assert_eq!(attacker.login(LOGIN, WRONG).await.0, 401);
    }
    let (status, page, _) = attacker.login(LOGIN, PASSWORD).await;
    assert_eq!(status, 429);
    assert!(page.contains("登录失败次数过多"), "{page}");

    // She signs in from her own address, and a typo of hers there is an ordinary failure.
    let mut supervisor = Browser::behind_proxy(url.clone(), SUPERVISOR);
    assert_eq!(supervisor.login(LOGIN, WRONG).await.0, 401);
    let (status, _, set) = supervisor.login(LOGIN, PASSWORD).await;
    assert_eq!(status, 303, "{set:?}");
    assert_eq!(supervisor.get("/console").await.0, 200);

    // The attacker guesses across logins (unknown ones too): past MAX_CLIENT_FAILURES
    // from its address, every login is refused there — another account's right password
    // too — and still not from hers.
    let mut n = auth::MAX_FAILURES;
    let mut i = 0;
    while n < auth::MAX_CLIENT_FAILURES {
        let login = if i % 2 == 0 { OTHER } else { "admin" };
        let login = format!("{login}{}", i / 8);
        assert_eq!(attacker.login(&login, WRONG).await.0, 401, "{login}");
        n += 1;
        i += 1;
    }
    assert_eq!(attacker.login(OTHER, PASSWORD).await.0, 429);
    let mut colleague = Browser::behind_proxy(url.clone(), SUPERVISOR);
    assert_eq!(colleague.login(OTHER, PASSWORD).await.0, 303);

    // An IPv6 client counts by its /64: five failures from one address of it throttle the
    // login from another address of the same /64, not from another /64.
    let mut v6 = Browser::behind_proxy(url.clone(), "2001:db8:1:2::5");
    for _ in 0..auth::MAX_FAILURES {
        assert_eq!(v6.login(OTHER, WRONG).await.0, 401);
    }
    let mut same_64 = Browser::behind_proxy(url.clone(), "2001:db8:1:2:ffff::99");
    assert_eq!(same_64.login(OTHER, PASSWORD).await.0, 429);
    let mut other_64 = Browser::behind_proxy(url.clone(), "2001:db8:1:3::5");
    assert_eq!(other_64.login(OTHER, PASSWORD).await.0, 303);

    server.shutdown().await;
    let text = log.text();
    assert!(text.contains("console: login failed"), "{text}");
    assert!(
        text.contains("limit=\"login_from_client\"") || text.contains("limit=login_from_client"),
        "{text}"
    );
    assert!(
        text.contains("limit=\"client\"") || text.contains("limit=client"),
        "{text}"
    );
    for secret in [
        LOGIN, OTHER, "admin0", PASSWORD, WRONG, ATTACKER, SUPERVISOR, "2001:db8",
    ] {
        assert!(!text.contains(secret), "{secret} in the server log: {text}");
    }
}
