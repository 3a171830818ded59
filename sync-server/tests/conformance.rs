//! The storage conformance suite against every backend: SQLite always (a fresh file per
//! check), PostgreSQL when DOORSTEP_TEST_POSTGRES names a database (a fresh schema per
//! check). In CI (`CI` set) the PostgreSQL run is required, never skipped.

use doorstep_server::store::conformance;
use doorstep_server::store::postgres::PostgresStore;
use doorstep_server::SqliteStore;

#[test]
fn sqlite_backend_conforms() {
    let dir = tempfile::tempdir().expect("temp dir");
    let n = std::sync::atomic::AtomicUsize::new(0);
    let factory = || {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        SqliteStore::open(&dir.path().join(format!("s{i}"))).expect("open store")
    };
    conformance::run_all(&factory);
}

/// The test database URL, or `None` outside CI when none is configured.
pub fn postgres_url() -> Option<String> {
    match std::env::var("DOORSTEP_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("DOORSTEP_TEST_POSTGRES must be set in CI (scripts/test.sh starts PostgreSQL)")
        }
        _ => {
            eprintln!("DOORSTEP_TEST_POSTGRES not set: PostgreSQL conformance skipped (run scripts/test.sh)");
            None
        }
    }
}

#[test]
fn postgres_backend_conforms() {
    let Some(url) = postgres_url() else { return };
    let factory = || {
        let schema = format!("conf_{}", uuid::Uuid::new_v4().simple());
        PostgresStore::open(&url, Some(&schema), 4).expect("open PostgreSQL store")
    };
    conformance::run_all(&factory);
}

/// Server schema 8 on a store made by schema 7: each household's console search row is
/// found by its rowid afterwards, so a refresh replaces the old text (which a scan used
/// to find) and leaves exactly one row per household.
#[test]
fn sqlite_schema_8_keys_search_rows_of_an_older_store() {
    use doorstep_server::store::console::{ConsoleStore, HouseholdFilter};
    use doorstep_server::store::ServerStore;
    let dir = tempfile::tempdir().expect("temp dir");
    let (station, docs) = {
        let s = SqliteStore::open(dir.path()).expect("open store");
        let station = s.create_station("站", 1).unwrap();
        let worker = s.add_worker(station, "W01", 1).unwrap();
        let docs: Vec<_> = (0..5)
            .map(|i| {
                let d = conformance::read_model_doc(
                    station,
                    worker,
                    &format!("HH-{i:06}"),
                    "石桥村",
                    &[],
                    &format!("旧的说明{i}"),
                    3,
                );
                assert!(s.put_read_model(&d).unwrap());
                d
            })
            .collect();
        (station, docs)
    };
    // Back to schema 7: the column did not exist and rows were found by `doc_id`.
    {
        let c = rusqlite::Connection::open(dir.path().join("server.db")).unwrap();
        c.execute_batch(
            "ALTER TABLE rm_households DROP COLUMN search_row; PRAGMA user_version = 7;",
        )
        .unwrap();
    }
    let s = SqliteStore::open(dir.path()).expect("upgrade to schema 8");
    let count = |sql: &str| -> i64 {
        let c = rusqlite::Connection::open(dir.path().join("server.db")).unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    };
    assert_eq!(
        count("SELECT count(*) FROM rm_households WHERE search_row IS NULL"),
        0,
        "every household found its search row"
    );
    let mut newer = docs[2].clone();
    newer.household.seq = 9;
    newer.search_text = "新的说明".into();
    assert!(s.put_read_model(&newer).unwrap());
    let found = |q: &str| -> Vec<String> {
        s.households(
            station,
            &HouseholdFilter {
                text: Some(q.into()),
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .map(|h| h.code)
        .collect()
    };
    assert!(found("旧的说明2").is_empty(), "the old text is gone");
    assert_eq!(found("新的说明"), ["HH-000002"]);
    assert_eq!(
        found("旧的说明4"),
        ["HH-000004"],
        "the others are untouched"
    );
    assert_eq!(count("SELECT count(*) FROM rm_search"), 5);
}
