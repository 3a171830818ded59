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
