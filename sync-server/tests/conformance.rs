//! The storage conformance suite against the SQLite backend (a fresh file per check).

use doorstep_server::store::conformance;
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
