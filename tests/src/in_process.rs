//! An in-process server and devices for suites that send many requests (the forgery suites):
//! `SyncService::sync` called directly with an enrolled device's credentials, real store
//! files, and a seeded generator.

use doorstep_core::StationId;
use doorstep_core::{Durability, Store, StoreKey, StoreOptions};
use doorstep_server::credentials;
use doorstep_server::store::{DeviceAuth, ServerStore};
use doorstep_server::sync::SyncService;
use doorstep_server::SqliteStore;
use uuid::Uuid;

/// A number from the environment, if set (a test knob such as a seed or a request count).
pub fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
    )
}

/// xorshift64: a seeded stream a failure names (print the seed).
#[derive(Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    pub fn uuid(&mut self) -> Uuid {
        let hi = u128::from(self.next_u64());
        let lo = u128::from(self.next_u64());
        uuid::Builder::from_random_bytes(((hi << 64) | lo).to_be_bytes()).into_uuid()
    }
}

/// A new worker of `station` (in `team`, if given) with one enrolled device.
pub fn enrol(
    store: &SqliteStore,
    station: StationId,
    label: &str,
    team: Option<&str>,
) -> DeviceAuth {
    let worker = store.add_worker(station, label, 0).unwrap();
    if let Some(team) = team {
        let team = doorstep_core::TeamName::new(team).unwrap();
        store.set_team(worker, Some(&team), 0).unwrap();
    }
    let (_, code) = credentials::enroll_device(store, worker, 0).unwrap();
    credentials::redeem_code(store, &code, 0)
        .unwrap()
        .unwrap()
        .0
}

/// The device store of an enrolled device, in `dir`.
pub fn device_store(dir: &std::path::Path, name: &str, auth: &DeviceAuth) -> Store {
    let mut o = StoreOptions::new(
        dir.join(name),
        StoreKey::Raw([9; 32]),
        auth.worker,
        auth.station,
    );
    o.device = Some(auth.device);
    o.durability = Durability::Relaxed;
    Store::open(o).unwrap()
}

/// Sync a device with the service until nothing more is to come.
pub fn sync_in_process(service: &SyncService<SqliteStore>, auth: &DeviceAuth, store: &Store) {
    for _ in 0..100 {
        let req = store.build_sync_request(1 << 20).unwrap();
        let resp = service.sync(auth, &req).unwrap();
        if !store.apply_response(&resp).unwrap().more {
            return;
        }
    }
    panic!("sync did not finish");
}
