//! Shared test support: stores in temporary directories with a fixed key and a clock that
//! ticks one millisecond per call, so runs are repeatable.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use doorstep_core::*;

pub const KEY: [u8; 32] = [0x5a; 32];

pub fn ticking_clock(start: i64) -> Clock {
    let t = Arc::new(AtomicI64::new(start));
    Arc::new(move || Timestamp(t.fetch_add(1, Ordering::SeqCst)))
}

pub fn options(path: &Path, worker: WorkerId, station: StationId) -> StoreOptions {
    let mut o = StoreOptions::new(path, StoreKey::Raw(KEY), worker, station);
    o.clock = ticking_clock(1_764_000_000_000);
    o
}

pub fn open(dir: &Path, name: &str, station: StationId) -> Store {
    Store::open(options(&dir.join(name), WorkerId::new(), station)).expect("open store")
}

pub fn household(store: &Store, code: &str) -> HouseholdId {
    store
        .create_household(&NewHousehold {
            code: code.into(),
            village: "石桥村".into(),
            address: "石桥村三组12号".into(),
            phones: vec!["13800138000".into()],
            tags: vec!["低保".into()],
            summary: "祖孙二人生活，父母外出务工。".into(),
            ..Default::default()
        })
        .expect("create household")
}

pub fn visit(store: &Store, hh: HouseholdId, date: &str) -> VisitId {
    store
        .start_visit(
            hh,
            &NewVisit {
                kind: VisitKind::Home,
                date: Date::parse(date).unwrap(),
                started_at: Timestamp(1_764_000_000_000),
                gps: None,
                other_workers: vec![],
                present: vec![],
            },
        )
        .expect("start visit")
}

/// Send `from`'s changes that `to` lacks, for every household of `from`.
pub fn push(from: &Store, to: &Store) {
    for h in from.household_ids().unwrap() {
        let have = to.heads(h).unwrap_or_default();
        let changes = from.export_changes(h, &have).unwrap();
        if !changes.is_empty() {
            to.apply_changes(h, &changes).unwrap();
        }
    }
}

pub fn sync_pair(a: &Store, b: &Store) {
    push(a, b);
    push(b, a);
}
