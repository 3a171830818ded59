//! The server's data at rest (issue 15, ADR 0014): planted personal data pushed through a
//! real sync is found by a byte search in a plaintext control and in none of the encrypted
//! server's files (database, WAL, backup); files are 0600; a wrong key is refused with a
//! clear message and changes nothing; key rotation, backup → restore → serve and the
//! migration of a plaintext data directory work through the real binary; PostgreSQL
//! connects over TLS with sslmode=verify-full and refuses a server its CA did not sign.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use doorstep_core::transport::{enroll, HttpTransport};
use doorstep_core::*;
use doorstep_server::store::key::ServerKey;
use doorstep_server::store::{ServerStore, StoreError};
use doorstep_server::{credentials, now_ms, ServerConfig, SqliteStore};

const BIN: &str = env!("CARGO_BIN_EXE_doorstep-server");

/// What a data-protection officer looks for with grep.
const NAME: &str = "欧阳晓梅";
const ID_NUMBER: &str = "110101201001141234";
const NOTE: &str = "继父酒后打骂孩子，邻居报告夜间哭声";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn planted_in(bytes: &[u8]) -> Vec<&'static str> {
    [NAME, ID_NUMBER, NOTE]
        .into_iter()
        .filter(|p| contains(bytes, p.as_bytes()))
        .collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file of a directory, by name, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// A device that records the planted household offline, then syncs it to `url`.
async fn push_planted(url: &str, code: &str, dir: &Path) -> (Store, HttpTransport, HouseholdId) {
    let e = enroll(url, code).await.unwrap();
    let mut options = StoreOptions::new(
        dir.join("device.db"),
        StoreKey::Raw([7; 32]),
        e.worker,
        e.station,
    );
    options.device = Some(e.device);
    let store = Store::open(options).unwrap();
    let hh = store
        .create_household(&NewHousehold {
            code: "HH-000001".into(),
            village: "石桥村".into(),
            ..Default::default()
        })
        .unwrap();
    store
        .add_person(
            hh,
            &NewPerson {
                id_number: Some(ID_NUMBER.into()),
                ..NewPerson::named(NAME, "女儿")
            },
        )
        .unwrap();
    let visit = store
        .start_visit(
            hh,
            &NewVisit {
                kind: VisitKind::Home,
                date: Date::parse("2026-11-29").unwrap(),
                started_at: Timestamp::now(),
                gps: None,
                other_workers: vec![],
                present: vec![],
                companions: vec![],
            },
        )
        .unwrap();
    store
        .splice_section(hh, visit, Section::Concerns, 0, 0, NOTE)
        .unwrap();
    let transport = HttpTransport::new(url, &e.token, Duration::from_secs(10)).unwrap();
    transport.sync(&store).await.unwrap();
    assert!(store.unsynced_households().unwrap().is_empty());
    (store, transport, hh)
}

/// A server on `dir` (encrypted with `key`, or the plaintext control), the planted
/// household synced into it, and a backup: what each file holds while the server runs.
async fn plant_and_look(
    dir: &Path,
    key: Option<&ServerKey>,
) -> (BTreeMap<&'static str, Vec<u8>>, HouseholdId) {
    let data = dir.join("data");
    let store = Arc::new(match key {
        Some(k) => SqliteStore::open_encrypted(&data, k).unwrap(),
        None => SqliteStore::open(&data).unwrap(),
    });
    let station = store.create_station("石桥镇社工站", now_ms()).unwrap();
    let worker = store.add_worker(station, "W01", now_ms()).unwrap();
    let (_, code) = credentials::enroll_device(store.as_ref(), worker, now_ms()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = doorstep_server::serve(store.clone(), listener, ServerConfig::default())
        .await
        .unwrap();
    let (_device, _, hh) = push_planted(&server.url(), &code, dir).await;
    let backup = dir.join("backup.db");
    store.backup(&backup).unwrap();
    let db = data.join("server.db");
    let files = BTreeMap::from([
        ("server.db", read(&db)),
        ("server.db-wal", read(&with_suffix(&db, "-wal"))),
        ("backup", read(&backup)),
    ]);
    #[cfg(unix)]
    {
        assert_eq!(mode(&data), 0o700, "data directory");
        for f in [
            db.clone(),
            with_suffix(&db, "-wal"),
            with_suffix(&db, "-shm"),
            backup,
        ] {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
    server.shutdown().await;
    (files, hh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_personal_data_is_in_a_plaintext_server_and_in_no_byte_of_an_encrypted_one() {
    // The control: without a key, grep finds the child's name, ID number and the note.
    let plain = tempfile::tempdir().unwrap();
    let (files, _) = plant_and_look(plain.path(), None).await;
    let mut live = files["server.db"].clone();
    live.extend_from_slice(&files["server.db-wal"]);
    assert_eq!(
        planted_in(&live),
        [NAME, ID_NUMBER, NOTE],
        "plaintext database + WAL"
    );
    assert_eq!(
        planted_in(&files["backup"]),
        [NAME, ID_NUMBER, NOTE],
        "plaintext backup"
    );

    // Encrypted: in none of the files, and none of them even says it is SQLite.
    let enc = tempfile::tempdir().unwrap();
    let key = ServerKey::generate().unwrap();
    let (files, hh) = plant_and_look(enc.path(), Some(&key)).await;
    assert!(
        !files["server.db-wal"].is_empty(),
        "the WAL held the sync's pages"
    );
    for (name, bytes) in &files {
        assert!(!bytes.is_empty(), "{name} is empty");
        assert_eq!(planted_in(bytes), Vec::<&str>::new(), "{name}");
        assert!(!contains(bytes, b"SQLite format 3"), "{name}");
        assert!(!contains(bytes, "石桥".as_bytes()), "{name}");
    }
    // After the server stopped (WAL folded into the file) as well.
    let db = read(&enc.path().join("data").join("server.db"));
    assert_eq!(planted_in(&db), Vec::<&str>::new());

    // And the data is all there for the key's holder.
    let store = SqliteStore::open_encrypted(&enc.path().join("data"), &key).unwrap();
    assert!(store.load_document(hh).unwrap().is_some());
}

#[test]
fn a_wrong_key_is_refused_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = ServerKey::generate().unwrap();
    {
        let store = SqliteStore::open_encrypted(&data, &key).unwrap();
        let station = store.create_station("站", now_ms()).unwrap();
        for i in 0..200 {
            store
                .add_worker(station, &format!("W{i:03}"), now_ms())
                .unwrap();
        }
    }
    let before = snapshot(&data);
    let wrong = ServerKey::generate().unwrap();
    let err = SqliteStore::open_encrypted(&data, &wrong).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey(_)), "{err}");
    assert!(err.to_string().starts_with("wrong key:"), "{err}");
    let err = SqliteStore::open(&data).unwrap_err();
    assert!(matches!(err, StoreError::KeyRequired(_)), "{err}");
    assert_eq!(snapshot(&data), before, "a refused open changed the files");
    // The right key still opens it, with its data.
    SqliteStore::open_encrypted(&data, &key).unwrap();

    // Not a database at all; a plaintext database given a key.
    let text = dir.path().join("text");
    std::fs::create_dir(&text).unwrap();
    std::fs::write(text.join("server.db"), "这不是数据库。".repeat(2000)).unwrap();
    let err = SqliteStore::open_encrypted(&text, &key).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase(_)), "{err}");
    let plain = dir.path().join("plain");
    drop(SqliteStore::open(&plain).unwrap());
    let err = SqliteStore::open_encrypted(&plain, &key).unwrap_err();
    assert!(matches!(err, StoreError::NotEncrypted(_)), "{err}");
    assert!(err.to_string().contains("doorstep-server encrypt"), "{err}");

    // Damage (the key is right): one page of many fails its check, told apart from a
    // wrong key. (Page 1, past its 16-byte salt: the page every open reads.)
    let damaged = dir.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    let mut bytes = before["server.db"].clone();
    assert!(bytes.len() >= 4 * 4096, "database of {} bytes", bytes.len());
    bytes[200] ^= 0xff;
    std::fs::write(damaged.join("server.db"), &bytes).unwrap();
    let err = SqliteStore::open_encrypted(&damaged, &key).unwrap_err();
    assert!(matches!(err, StoreError::Damaged(_)), "{err}");
    assert!(err.to_string().contains("restore a backup"), "{err}");
}

// ---- the binary

fn cli_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.env_remove("DOORSTEP_KEY_FILE")
        .env_remove("DOORSTEP_KEY_ENV")
        .env_remove("DOORSTEP_DATABASE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args).output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn err(out: Output) -> String {
    assert!(
        !out.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let e = String::from_utf8(out.stderr).unwrap();
    assert!(!e.contains("panicked"), "{e}");
    e
}

fn cli(args: &[&str]) -> String {
    ok(cli_with(&[], args))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(data: &str, key_file: &str, port: u16) -> Child {
    let mut child = Command::new(BIN)
        .env_remove("DOORSTEP_KEY_ENV")
        .args(["serve", "--data", data, "--key-file", key_file])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        // Tests run side by side: the default metrics address (127.0.0.1:9091) would clash.
        .args(["--metrics-listen", "off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start");
}

fn stop(mut child: Child) {
    // SIGTERM would be gentler; SIGKILL also shows the WAL is enough to recover.
    child.kill().unwrap();
    child.wait().unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_binary_refuses_missing_wrong_and_loose_keys_with_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("server.key");
    cli(&["key", "generate", "--out", s(&key)]);
    #[cfg(unix)]
    assert_eq!(mode(&key), 0o600);
    let e = err(cli_with(&[], &["key", "generate", "--out", s(&key)]));
    assert!(e.contains("exists"), "{e}");

    // No key at all: nothing is created, and the message says what to do.
    let e = err(cli_with(
        &[],
        &["station", "create", "--data", s(&data), "--name", "站"],
    ));
    assert!(
        e.contains("--key-file") && e.contains("key generate"),
        "{e}"
    );
    assert!(!data.join("server.db").exists());

    cli(&[
        "station",
        "create",
        "--data",
        s(&data),
        "--key-file",
        s(&key),
        "--name",
        "站",
    ]);
    let before = snapshot(&data);

    // A wrong key: refused at start, the files unchanged.
    let other = dir.path().join("other.key");
    cli(&["key", "generate", "--out", s(&other)]);
    let port = free_port();
    let e = err(cli_with(
        &[],
        &[
            "serve",
            "--data",
            s(&data),
            "--key-file",
            s(&other),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
    ));
    assert!(e.contains("wrong key"), "{e}");
    assert_eq!(snapshot(&data), before);

    // The key in an environment variable works; a malformed one is refused without echo.
    let hex = std::fs::read_to_string(&key).unwrap();
    let out = cli_with(
        &[("DOORSTEP_KEY_ENV", "MY_KEY"), ("MY_KEY", hex.trim())],
        &[
            "worker",
            "add",
            "--data",
            s(&data),
            "--station",
            "00000000-0000-7000-8000-000000000000",
            "--label",
            "W",
        ],
    );
    let e = err(out);
    assert!(e.contains("station not found"), "{e}");
    let e = err(cli_with(
        &[("MY_KEY", "not-a-key-SECRETISH")],
        &["new-epoch", "--data", s(&data), "--key-env", "MY_KEY"],
    ));
    assert!(
        e.contains("64 hexadecimal digits") && !e.contains("SECRETISH"),
        "{e}"
    );

    // A key file others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = err(cli_with(
            &[],
            &["new-epoch", "--data", s(&data), "--key-file", s(&key)],
        ));
        assert!(e.contains("chmod 600") && !e.contains(hex.trim()), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_eq!(snapshot(&data), before);
    cli(&["new-epoch", "--data", s(&data), "--key-file", s(&key)]);
}

#[test]
fn key_rotation_moves_the_database_to_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let old = dir.path().join("old.key");
    let new = dir.path().join("new.key");
    cli(&["key", "generate", "--out", s(&old)]);
    let station = cli(&[
        "station",
        "create",
        "--data",
        s(&data),
        "--key-file",
        s(&old),
        "--name",
        "站",
    ]);
    let station = station.trim();

    // Refused while a server has the database open.
    let port = free_port();
    let server = serve(s(&data), s(&old), port);
    let e = err(cli_with(
        &[],
        &[
            "key",
            "rotate",
            "--data",
            s(&data),
            "--key-file",
            s(&old),
            "--new-key-file",
            s(&new),
        ],
    ));
    assert!(e.contains("in use"), "{e}");
    stop(server);

    let out = cli(&[
        "key",
        "rotate",
        "--data",
        s(&data),
        "--key-file",
        s(&old),
        "--new-key-file",
        s(&new),
    ]);
    assert!(out.contains("--key-file"), "{out}");
    #[cfg(unix)]
    assert_eq!(mode(&new), 0o600);
    // The new key opens it with its data; the old one no longer does.
    cli(&[
        "worker",
        "add",
        "--data",
        s(&data),
        "--key-file",
        s(&new),
        "--station",
        station,
        "--label",
        "W01",
    ]);
    let e = err(cli_with(
        &[],
        &[
            "worker",
            "add",
            "--data",
            s(&data),
            "--key-file",
            s(&old),
            "--station",
            station,
            "--label",
            "W02",
        ],
    ));
    assert!(e.contains("wrong key"), "{e}");
    let new_key = ServerKey::from_file(&new).unwrap();
    let old_key = ServerKey::from_file(&old).unwrap();
    assert!(matches!(
        SqliteStore::open_encrypted(&data, &old_key),
        Err(StoreError::WrongKey(_))
    ));
    SqliteStore::open_encrypted(&data, &new_key).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_serve_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("server.key");
    let backup_key = dir.path().join("backup.key");
    cli(&["key", "generate", "--out", s(&key)]);
    cli(&["key", "generate", "--out", s(&backup_key)]);
    let k = ["--key-file", s(&key)];
    let station = cli(&[
        &["station", "create", "--data", s(&data), "--name", "站"][..],
        &k,
    ]
    .concat());
    let station = station.trim();
    let worker = cli(&[
        &[
            "worker",
            "add",
            "--data",
            s(&data),
            "--station",
            station,
            "--label",
            "W01",
        ][..],
        &k,
    ]
    .concat());
    let code = |worker: &str, data: &Path| {
        let out = cli(&[
            &[
                "device",
                "enroll",
                "--data",
                s(data),
                "--worker",
                worker.trim(),
            ][..],
            &k,
        ]
        .concat());
        out.lines()
            .find_map(|l| l.strip_prefix("code"))
            .unwrap()
            .trim()
            .to_owned()
    };
    let first = code(&worker, &data);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let server = serve(s(&data), s(&key), port);
    let device_dir = tempfile::tempdir().unwrap();
    let (_a, _ta, hh) = push_planted(&url, &first, device_dir.path()).await;

    // Backed up while serving, with a key of its own.
    let file = dir.path().join("backup.db");
    let out = cli(&[
        &[
            "backup",
            "--data",
            s(&data),
            "--to",
            s(&file),
            "--backup-key-file",
            s(&backup_key),
        ][..],
        &k,
    ]
    .concat());
    assert!(out.contains("backup written"), "{out}");
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    assert_eq!(planted_in(&read(&file)), Vec::<&str>::new());
    let e = err(cli_with(
        &[],
        &[&["backup", "--data", s(&data), "--to", s(&file)][..], &k].concat(),
    ));
    assert!(e.contains("exists"), "{e}");
    stop(server);

    // The data key does not open the backup; the backup key does.
    let restored = dir.path().join("restored");
    let e = err(cli_with(
        &[],
        &[
            &["restore", "--from", s(&file), "--data", s(&restored)][..],
            &k,
        ]
        .concat(),
    ));
    assert!(e.contains("wrong key"), "{e}");
    assert!(!restored.join("server.db").exists());
    let out = cli(&[
        &[
            "restore",
            "--from",
            s(&file),
            "--data",
            s(&restored),
            "--backup-key-file",
            s(&backup_key),
        ][..],
        &k,
    ]
    .concat());
    assert!(out.contains("new epoch"), "{out}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&restored), 0o700);
        assert_eq!(mode(&restored.join("server.db")), 0o600);
    }
    assert_eq!(
        planted_in(&read(&restored.join("server.db"))),
        Vec::<&str>::new()
    );
    // Never over an existing database.
    let e = err(cli_with(
        &[],
        &[
            &[
                "restore",
                "--from",
                s(&file),
                "--data",
                s(&restored),
                "--backup-key-file",
                s(&backup_key),
            ][..],
            &k,
        ]
        .concat(),
    ));
    assert!(e.contains("move it aside"), "{e}");

    // The restored server serves: a new device gets the household with its data.
    let second = code(&worker, &restored);
    let port = free_port();
    let server = serve(s(&restored), s(&key), port);
    let url = format!("http://127.0.0.1:{port}");
    let e = enroll(&url, &second).await.unwrap();
    let store = Store::open(StoreOptions::new(
        device_dir.path().join("b.db"),
        StoreKey::Raw([8; 32]),
        e.worker,
        e.station,
    ))
    .unwrap();
    HttpTransport::new(&url, &e.token, Duration::from_secs(10))
        .unwrap()
        .sync(&store)
        .await
        .unwrap();
    let h = store.household(hh).unwrap();
    assert_eq!(h.persons[0].name, NAME);
    assert_eq!(h.persons[0].id_number.as_deref(), Some(ID_NUMBER));
    stop(server);
}

#[test]
fn a_plaintext_data_directory_is_refused_then_encrypted_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let old_backup = dir.path().join("old-backup.db");
    let station = {
        let store = SqliteStore::open(&data).unwrap();
        let station = store.create_station(NAME, now_ms()).unwrap();
        store.backup(&old_backup).unwrap();
        station
    };
    assert_eq!(planted_in(&read(&old_backup)), [NAME], "a plaintext backup");
    assert_eq!(planted_in(&read(&data.join("server.db"))), [NAME]);
    let key = dir.path().join("server.key");
    cli(&["key", "generate", "--out", s(&key)]);
    let k = ["--key-file", s(&key)];
    let e = err(cli_with(
        &[],
        &[&["new-epoch", "--data", s(&data)][..], &k].concat(),
    ));
    assert!(
        e.contains("plaintext") && e.contains("doorstep-server encrypt"),
        "{e}"
    );

    let out = cli(&[&["encrypt", "--data", s(&data)][..], &k].concat());
    assert!(out.contains("now encrypted"), "{out}");
    let files = snapshot(&data);
    assert_eq!(files.keys().collect::<Vec<_>>(), ["server.db"], "leftovers");
    assert_eq!(planted_in(&files["server.db"]), Vec::<&str>::new());
    #[cfg(unix)]
    assert_eq!(mode(&data.join("server.db")), 0o600);
    let e = err(cli_with(
        &[],
        &[&["encrypt", "--data", s(&data)][..], &k].concat(),
    ));
    assert!(e.contains("already encrypted"), "{e}");
    cli(&[
        &[
            "worker",
            "add",
            "--data",
            s(&data),
            "--station",
            &station.to_string(),
            "--label",
            "W01",
        ][..],
        &k,
    ]
    .concat());

    // A plaintext backup of the old server is restored encrypted.
    let restored = dir.path().join("restored");
    ok(cli_with(
        &[],
        &[
            &["restore", "--from", s(&old_backup), "--data", s(&restored)][..],
            &k,
        ]
        .concat(),
    ));
    assert_eq!(
        planted_in(&read(&restored.join("server.db"))),
        Vec::<&str>::new()
    );
    cli(&[
        &[
            "worker",
            "add",
            "--data",
            s(&restored),
            "--station",
            &station.to_string(),
            "--label",
            "W02",
        ][..],
        &k,
    ]
    .concat());
}
#[test]
fn the_demo_needs_no_set_up_and_encrypts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = cli(&["demo", "--no-serve", "--data", s(&data)]);
    assert!(out.contains("encrypted"), "{out}");
    #[cfg(unix)]
    assert_eq!(mode(&data.join("server.key")), 0o600);
    let db = read(&data.join("server").join("server.db"));
    assert!(!db.is_empty() && !contains(&db, b"SQLite format 3"));
}

// ---- PostgreSQL over TLS

/// The test database and the CA that signed its certificate (scripts/postgres.sh), or
/// `None` outside CI when none is configured.
fn postgres_tls() -> Option<(String, PathBuf)> {
    let url = std::env::var("DOORSTEP_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty());
    let ca = std::env::var("DOORSTEP_TEST_POSTGRES_CA")
        .ok()
        .filter(|u| !u.is_empty());
    match (url, ca) {
        (Some(url), Some(ca)) => Some((url, PathBuf::from(ca))),
        _ if std::env::var_os("CI").is_some() => panic!(
            "DOORSTEP_TEST_POSTGRES and DOORSTEP_TEST_POSTGRES_CA must be set in CI (scripts/postgres.sh)"
        ),
        _ => {
            eprintln!("DOORSTEP_TEST_POSTGRES(_CA) not set: PostgreSQL TLS tests skipped (eval \"$(scripts/postgres.sh)\")");
            None
        }
    }
}

fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// Whether a connection made with Doorstep's TLS settings runs over TLS.
fn connection_uses_tls(url: &str, ca: Option<&Path>) -> Result<bool, String> {
    use doorstep_server::store::pg_tls;
    let settings = pg_tls::split_settings(url, ca).map_err(|e| e.to_string())?;
    let (tls, mode) = pg_tls::connector(&settings).map_err(|e| e.to_string())?;
    let mut config: postgres::Config = settings
        .conn
        .parse()
        .map_err(|e: postgres::Error| e.to_string())?;
    config.ssl_mode(mode);
    let mut client = config
        .connect(tls)
        .map_err(|e| doorstep_server::store::StoreError::from(e).to_string())?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[test]
fn postgres_verify_full_connects_over_tls_and_a_wrong_ca_is_refused() {
    let Some((url, ca)) = postgres_tls() else {
        return;
    };
    use doorstep_server::store::postgres::PostgresStore;

    // verify-full against the test CA: over TLS, and the store works.
    let full = with_params(&url, "sslmode=verify-full");
    assert_eq!(connection_uses_tls(&full, Some(&ca)), Ok(true));
    let schema = format!("tls_{}", uuid::Uuid::new_v4().simple());
    let store = PostgresStore::open_with_ca(&full, Some(&schema), 2, Some(&ca)).unwrap();
    store.create_station("站", now_ms()).unwrap();
    // The CA may also come in the URL, as with libpq.
    let in_url = with_params(&full, &format!("sslrootcert={}", ca.display()));
    assert_eq!(connection_uses_tls(&in_url, None), Ok(true));
    // `localhost` is in the certificate too.
    let by_name = full.replace("127.0.0.1", "localhost");
    assert_eq!(connection_uses_tls(&by_name, Some(&ca)), Ok(true));

    // A CA that did not sign the server's certificate: refused, for verify-ca too.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("other-ca.crt");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-days", "1", "-subj", "/CN=Someone else's CA"])
        .arg("-keyout")
        .arg(other.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for mode in ["verify-full", "verify-ca"] {
        let e = connection_uses_tls(
            &with_params(&url, &format!("sslmode={mode}")),
            Some(&other_ca),
        )
        .unwrap_err();
        assert!(
            e.contains("certificate") || e.contains("UnknownIssuer"),
            "{mode}: {e}"
        );
    }
    let e = PostgresStore::open_with_ca(&full, Some(&schema), 2, Some(&other_ca)).unwrap_err();
    assert!(
        e.to_string().contains("certificate") || e.to_string().contains("UnknownIssuer"),
        "{e}"
    );
    // verify-full without any CA: a clear message, no connection.
    let e = PostgresStore::open(&full, Some(&schema), 2).unwrap_err();
    assert!(e.to_string().contains("--database-ca-file"), "{e}");

    // The other modes: require is TLS (unauthenticated), disable is not.
    assert_eq!(
        connection_uses_tls(&with_params(&url, "sslmode=require"), None),
        Ok(true)
    );
    assert_eq!(
        connection_uses_tls(&with_params(&url, "sslmode=disable"), None),
        Ok(false)
    );
}
