//! Console accounts through the admin CLI's real binary (ADR 0020), on an encrypted data
//! directory that a real server on 127.0.0.1 serves at the same time: `account add-county`
//! with its stations, `grant`, `revoke` and `list`, their refusals (unknown station or login,
//! a supervisor's account, a short password: nothing made); a county account's read of a
//! case file listed by `household accesses`; a station revoked from the CLI gone from the
//! console at the next page.
#![allow(clippy::unwrap_used)]

mod console_support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use console_support::client::Browser;
use doorstep_core::transport::{enroll, HttpTransport};
use doorstep_core::*;
use doorstep_server::store::key::ServerKey;
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, ServerConfig, SqliteStore};

const BIN: &str = env!("CARGO_BIN_EXE_doorstep-server");
const PASSWORD: &str = "a long county passphrase";

fn cli(data: &Path, key: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .env_remove("DOORSTEP_KEY_FILE")
        .env_remove("DOORSTEP_KEY_ENV")
        .env_remove("DOORSTEP_DATABASE")
        .args(args)
        .args(["--data", data.to_str().unwrap()])
        .args(["--key-file", key.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn refused(out: Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn county_accounts_are_made_granted_listed_and_revoked_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_file = dir.path().join("server.key");
    let key = ServerKey::generate().unwrap();
    key.write_new_file(&key_file).unwrap();
    let store = Arc::new(SqliteStore::open_encrypted(&data, &key).unwrap());
    let a = store.create_station("石桥镇社工站", now_ms()).unwrap();
    let b = store.create_station("河口镇社工站", now_ms()).unwrap();
    let c = store.create_station("青山镇社工站", now_ms()).unwrap();
    let w01 = store.add_worker(a, "W01", now_ms()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = doorstep_server::serve(store.clone(), listener, ServerConfig::default())
        .await
        .unwrap();
    // A phone of station A records a household and syncs it.
    let (_, code) = credentials::enroll_device(store.as_ref(), w01, now_ms()).unwrap();
    let e = enroll(&server.url(), &code).await.unwrap();
    let mut options = StoreOptions::new(
        dir.path().join("w01.db"),
        StoreKey::Raw([7; 32]),
        e.worker,
        e.station,
    );
    options.device = Some(e.device);
    let phone = Store::open(options).unwrap();
    let household = phone
        .create_household(&NewHousehold {
            code: "HH-000001".into(),
            ..Default::default()
        })
        .unwrap();
    let transport = HttpTransport::new(&server.url(), &e.token, Duration::from_secs(30)).unwrap();
    transport.sync(&phone).await.unwrap();

    let run = |args: &[&str], stdin: &str| cli(&data, &key_file, args, stdin);
    let (a_s, b_s, c_s) = (a.to_string(), b.to_string(), c.to_string());
    let password = format!("{PASSWORD}\n");

    // Refused, and nothing made: an unknown station, a short password, a bad login, no station.
    let err = refused(run(
        &[
            "account",
            "add-county",
            "--login",
            "li.county",
            "--station",
            &format!("{a_s},{}", StationId::new()),
        ],
        &password,
    ));
    assert!(err.contains("no such station"), "{err}");
    let err = refused(run(
        &[
            "account",
            "add-county",
            "--login",
            "li.county",
            "--station",
            &a_s,
        ],
        "short\n",
    ));
    assert!(err.contains("at least 10 characters"), "{err}");
    let err = refused(run(
        &[
            "account",
            "add-county",
            "--login",
            "li county",
            "--station",
            &a_s,
        ],
        &password,
    ));
    assert!(err.contains("a login is"), "{err}");
    refused(run(
        &["account", "add-county", "--login", "li.county"],
        &password,
    ));
    assert_eq!(ok(run(&["account", "list"], "")), "", "nothing was made");

    // A county account reading A and B; a supervisor of A.
    let county = ok(run(
        &[
            "account",
            "add-county",
            "--login",
            "li.county",
            "--station",
            &a_s,
            "--station",
            &b_s,
        ],
        &password,
    ))
    .trim()
    .to_owned();
    let supervisor = ok(run(
        &["account", "add", "--login", "zhang", "--station", &a_s],
        &password,
    ))
    .trim()
    .to_owned();
    let mut ab = [a_s.clone(), b_s.clone()];
    ab.sort();
    assert_eq!(
        ok(run(&["account", "list"], "")),
        format!(
            "li.county\tcounty\t{}\t{county}\nzhang\tsupervisor\t{a_s}\t{supervisor}\n",
            ab.join(",")
        )
    );

    // Grant and revoke C; a supervisor's account and an unknown login are refused.
    let grant = |login: &str, station: &str| {
        run(
            &["account", "grant", "--login", login, "--station", station],
            "",
        )
    };
    let revoke = |login: &str, station: &str| {
        run(
            &["account", "revoke", "--login", login, "--station", station],
            "",
        )
    };
    assert_eq!(ok(grant("li.county", &c_s)), "granted\n");
    assert_eq!(
        ok(grant("li.county", &c_s)),
        "already granted: nothing changed\n"
    );
    assert!(refused(grant("zhang", &b_s)).contains("supervisor"));
    assert!(refused(grant("nobody", &b_s)).contains("no console account"));
    assert!(refused(grant("li.county", &StationId::new().to_string())).contains("no such station"));
    assert!(ok(run(&["account", "list"], "")).contains(&c_s));
    assert_eq!(ok(revoke("li.county", &c_s)), "revoked\n");
    assert_eq!(
        ok(revoke("li.county", &c_s)),
        "not granted: nothing changed\n"
    );
    assert!(refused(revoke("zhang", &a_s)).contains("supervisor"));
    assert!(!ok(run(&["account", "list"], "")).contains(&c_s));

    // The county account reads A's case file over HTTP; `household accesses` lists it.
    let mut browser = Browser::new(server.url());
    let (status, _, _) = browser.login("li.county", PASSWORD).await;
    assert_eq!(status, 303);
    let page_path = format!("/console/s/{a}/households/{household}");
    let (status, page, _) = browser.get(&page_path).await;
    assert_eq!(status, 200, "{page}");
    let accesses = ok(run(
        &[
            "household",
            "accesses",
            "--station",
            &a_s,
            "--household",
            &household.to_string(),
        ],
        "",
    ));
    assert!(
        accesses
            .lines()
            .any(|l| l.ends_with(&format!("\tconsole\t{county}\t-\thousehold"))),
        "{accesses}"
    );

    // A revoked from the CLI: the next page of A is not found, like an unknown station's.
    assert_eq!(ok(revoke("li.county", &a_s)), "revoked\n");
    let (status, body, _) = browser.get(&page_path).await;
    assert_eq!((status, body.as_str()), (404, "not found\n"));
    let (status, _, _) = browser.get(&format!("/console/s/{b}")).await;
    assert_eq!(status, 200, "B still granted");
    server.shutdown().await;
}
