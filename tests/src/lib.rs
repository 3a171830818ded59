//! Test harness for cross-crate stories: a real `doorstep-server` on 127.0.0.1 (port 0)
//! over a real SQLite data directory, devices with their own encrypted store files, and a
//! fault-injecting proxy between them.
// Harness code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

pub mod fuzzing;
pub mod in_process;
pub mod pages;
pub mod proxy;
pub mod raw_device;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use doorstep_core::transport::{enroll, HttpTransport, SyncReport};
use doorstep_core::*;
use doorstep_server::store::key::ServerKey;
use doorstep_server::store::ServerStore;
use doorstep_server::{credentials, now_ms, ServerConfig, ServerHandle, SqliteStore};

/// A sync server on loopback with its data directory (encrypted, as in production).
#[derive(Debug)]
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    /// The database's key (its backups are encrypted with it too).
    pub key: ServerKey,
    /// The same key's bytes (for reading the database's pages: `pages`).
    pub key_bytes: [u8; 32],
    handle: Option<ServerHandle>,
    pub addr: std::net::SocketAddr,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(ServerConfig::default()).await
    }

    /// [`TestServer::start`] with these limits.
    pub async fn start_with(config: ServerConfig) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut key_bytes = [0u8; 32];
        key_bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key_bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let key = ServerKey::from_bytes(key_bytes);
        let store = Arc::new(SqliteStore::open_encrypted(dir.path(), &key).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let handle = doorstep_server::serve(store.clone(), listener, config)
            .await
            .unwrap();
        let addr = handle.addr;
        TestServer {
            dir,
            store,
            key,
            key_bytes,
            handle: Some(handle),
            addr,
        }
    }

    async fn listen(store: Arc<SqliteStore>, addr: &str) -> (ServerHandle, std::net::SocketAddr) {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let handle = doorstep_server::serve(store, listener, ServerConfig::default())
            .await
            .unwrap();
        let addr = handle.addr;
        (handle, addr)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Crash the server (requests in flight are dropped) and start it again on the same data.
    pub async fn crash_and_restart(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
        // Reopen the database as a fresh process would (and `doorstep-server serve` does).
        self.store = Arc::new(SqliteStore::open_encrypted(self.dir.path(), &self.key).unwrap());
        self.reapply_erasures();
        doorstep_server::workers::publish_all_labels(self.store.as_ref()).unwrap();
        let (handle, addr) = Self::listen(self.store.clone(), "127.0.0.1:0").await;
        self.handle = Some(handle);
        self.addr = addr;
    }

    /// Disaster recovery: the server dies, its database is replaced by a backup, and it
    /// starts again with a new epoch (what `doorstep-server new-epoch` does).
    pub async fn restore_backup(&mut self, backup: &std::path::Path) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
        // Let in-flight blocking work release the old database before it is replaced.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let db = self.dir.path().join("server.db");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        std::fs::copy(backup, &db).unwrap();
        self.store = Arc::new(SqliteStore::open_encrypted(self.dir.path(), &self.key).unwrap());
        self.store.new_epoch().unwrap();
        self.reapply_erasures();
        let (handle, addr) = Self::listen(self.store.clone(), "127.0.0.1:0").await;
        self.handle = Some(handle);
        self.addr = addr;
    }

    /// The erasure ledger of the data directory.
    pub fn ledger(&self) -> doorstep_server::erasure::Ledger {
        doorstep_server::erasure::Ledger::in_dir(self.dir.path())
    }

    /// What `doorstep-server serve` and `restore` do on the database they open: apply the
    /// ledger's erasures it lacks.
    fn reapply_erasures(&self) {
        doorstep_server::erasure::reapply(self.store.as_ref(), &self.ledger()).unwrap();
        doorstep_server::redaction::reapply(self.store.as_ref(), &self.redaction_ledger()).unwrap();
    }

    /// Erase a household as `doorstep-server household erase` does.
    pub fn erase(
        &self,
        station: StationId,
        household: HouseholdId,
        reason: protocol::ErasureReason,
    ) -> doorstep_server::store::ErasureRecord {
        doorstep_server::erasure::erase(
            self.store.as_ref(),
            &self.ledger(),
            station,
            household,
            reason,
            "test",
            now_ms(),
        )
        .unwrap()
    }

    /// The redaction ledger of the data directory.
    pub fn redaction_ledger(&self) -> doorstep_server::erasure::Ledger {
        doorstep_server::erasure::Ledger::redactions_in(self.dir.path())
    }

    /// Redact inside a household as `doorstep-server household redact` does.
    pub fn redact(
        &self,
        station: StationId,
        household: HouseholdId,
        items: &[&str],
    ) -> protocol::RedactionNotice {
        let items: Vec<_> = items
            .iter()
            .map(|i| doorstep_core::doc::generation::Redaction::parse(i).unwrap())
            .collect();
        doorstep_server::redaction::redact(
            self.store.as_ref(),
            &self.redaction_ledger(),
            station,
            household,
            &items,
            protocol::ErasureReason::SubjectRequest,
            "test",
            now_ms(),
        )
        .unwrap()
    }

    /// The server database's pages, WAL included, decrypted.
    pub fn pages(&self) -> Vec<Vec<u8>> {
        pages::store_files(&self.dir.path().join("server.db"), &self.key_bytes)
    }

    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }

    pub fn station(&self, name: &str) -> StationId {
        self.store.create_station(name, now_ms()).unwrap()
    }

    /// Enrol a new device for a new worker of `station`; returns its one-time code.
    pub fn enrolment_code(&self, station: StationId, label: &str) -> String {
        let worker = self.store.add_worker(station, label, now_ms()).unwrap();
        // Colleagues share a caseload unless a story says otherwise (ADR 0019).
        self.store
            .set_team(worker, Some(&shared_team()), now_ms())
            .unwrap();
        credentials::enroll_device(self.store.as_ref(), worker, now_ms())
            .unwrap()
            .1
    }

    /// A device enrolled over HTTP at `url` (the server's, or a proxy's).
    pub async fn device(&self, station: StationId, label: &str, url: &str) -> Device {
        let code = self.enrolment_code(station, label);
        Device::enroll(&self.url(), url, &code, label).await
    }

    /// A device of a new worker with this role and team (ADR 0019), enrolled at the server.
    pub async fn device_as(
        &self,
        station: StationId,
        label: &str,
        role: doorstep_core::Role,
        team: Option<&str>,
    ) -> Device {
        let worker = self.store.add_worker(station, label, now_ms()).unwrap();
        let team = team.map(|t| doorstep_core::TeamName::new(t).unwrap());
        self.store.set_role(worker, role, now_ms()).unwrap();
        self.store
            .set_team(worker, team.as_ref(), now_ms())
            .unwrap();
        let code = credentials::enroll_device(self.store.as_ref(), worker, now_ms())
            .unwrap()
            .1;
        Device::enroll(&self.url(), &self.url(), &code, label).await
    }
}

/// The team every worker the harness enrols is in: colleagues share the station's caseload
/// unless a story assigns households otherwise (ADR 0019).
pub fn shared_team() -> doorstep_core::TeamName {
    doorstep_core::TeamName::new("station").unwrap_or_else(|_| unreachable!("a valid name"))
}

/// A field device: its own encrypted store file and a transport to a URL.
#[derive(Debug)]
pub struct Device {
    pub label: String,
    pub store: Store,
    pub transport: HttpTransport,
    pub token: String,
    /// The device id the server enrolled (also the store's device id).
    pub device_id: DeviceId,
    pub path: PathBuf,
    /// The store's raw key (for reading its pages: `pages`).
    pub key: [u8; 32],
    _dir: tempfile::TempDir,
}

impl Device {
    pub async fn enroll(enroll_url: &str, sync_url: &str, code: &str, label: &str) -> Device {
        let e = enroll(enroll_url, code).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{label}.db"));
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let mut options = StoreOptions::new(&path, StoreKey::Raw(key), e.worker, e.station);
        options.device = Some(e.device);
        let store = Store::open(options).unwrap();
        let transport = HttpTransport::new(sync_url, &e.token, Duration::from_secs(10)).unwrap();
        Device {
            label: label.into(),
            store,
            transport,
            token: e.token,
            device_id: e.device,
            path,
            key,
            _dir: dir,
        }
    }

    /// Point the device at another URL (a proxy, a restarted server).
    pub fn retarget(&mut self, url: &str) {
        self.transport = HttpTransport::new(url, &self.token, Duration::from_secs(10)).unwrap();
    }

    pub async fn sync(&self) -> SyncReport {
        self.transport
            .sync(&self.store)
            .await
            .unwrap_or_else(|e| panic!("{} sync failed: {e}", self.label))
    }

    /// The store's pages, WAL included, decrypted.
    pub fn pages(&self) -> Vec<Vec<u8>> {
        pages::store_files(&self.path, &self.key)
    }

    pub async fn try_sync(&self) -> Result<SyncReport, Error> {
        self.transport.sync(&self.store).await
    }

    pub fn new_household(&self, code: &str) -> HouseholdId {
        self.store
            .create_household(&NewHousehold {
                code: code.into(),
                village: "石桥村".into(),
                address: "石桥村一组".into(),
                summary: "祖孙二人生活。".into(),
                ..Default::default()
            })
            .unwrap()
    }

    pub fn visit(&self, hh: HouseholdId) -> VisitId {
        self.store
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
            .unwrap()
    }

    /// Append text to a section, a few characters per durable edit.
    pub fn type_into(&self, hh: HouseholdId, v: VisitId, section: Section, text: &str) {
        let mut pos = self.section_text(hh, v, section).chars().count();
        let chars: Vec<char> = text.chars().collect();
        for chunk in chars.chunks(5) {
            let piece: String = chunk.iter().collect();
            self.store
                .splice_section(hh, v, section, pos, 0, &piece)
                .unwrap();
            pos += chunk.len();
        }
    }

    pub fn section_text(&self, hh: HouseholdId, v: VisitId, section: Section) -> String {
        self.store
            .household(hh)
            .unwrap()
            .visits
            .iter()
            .find(|x| x.id == v)
            .unwrap()
            .section(section)
            .to_owned()
    }
}

/// Every device holds the same heads, documents and index rows for every household.
pub fn assert_converged(devices: &[&Device]) {
    let ids = devices[0].store.household_ids().unwrap();
    for d in devices {
        assert_eq!(
            d.store.household_ids().unwrap(),
            ids,
            "{} has other households",
            d.label
        );
    }
    for h in &ids {
        let heads = devices[0].store.heads(*h).unwrap();
        let doc = devices[0].store.household(*h).unwrap();
        for d in &devices[1..] {
            assert_eq!(
                d.store.heads(*h).unwrap(),
                heads,
                "{} heads differ",
                d.label
            );
            assert_eq!(
                d.store.household(*h).unwrap(),
                doc,
                "{} document differs",
                d.label
            );
        }
    }
    let dump = devices[0].store.index_dump().unwrap();
    for d in &devices[1..] {
        assert_eq!(
            d.store.index_dump().unwrap(),
            dump,
            "{} index differs",
            d.label
        );
    }
    // The index kept up change by change is the one built from the documents.
    devices[0].store.rebuild_index().unwrap();
    assert_eq!(
        devices[0].store.index_dump().unwrap(),
        dump,
        "{}'s index differs from one rebuilt from its documents",
        devices[0].label
    );
}

/// The server holds exactly the heads the devices hold.
pub fn assert_server_has(server: &TestServer, device: &Device) {
    for h in device.store.household_ids().unwrap() {
        let stored = server
            .store
            .load_document(h)
            .unwrap()
            .expect("server has the document");
        let doc = doorstep_server::snapshot::load_stored(&stored).unwrap();
        assert_eq!(
            doc.get_heads(),
            device.store.heads(h).unwrap(),
            "server heads differ for a household"
        );
    }
}
