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
            tags: vec!["household.dibao".into()],
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
                companions: vec![],
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

/// A store whose signing key is derived from `seed` (so a test can relay its changes to
/// another store with its author's signature, as the server does).
pub fn open_signing(dir: &Path, name: &str, station: StationId, seed: [u8; 32]) -> Store {
    let mut o = options(&dir.join(name), WorkerId::new(), station);
    o.signing_seed = Some(seed);
    Store::open(o).expect("open store")
}

/// Who wrote what a test response relays: an actor, its owner and the owner's key (the
/// phone checks that a signature of the owner covers every change it receives).
pub struct Author {
    pub actor: automerge::ActorId,
    pub key: protocol::DeviceKey,
    pub worker: WorkerId,
    pub device: DeviceId,
}

impl Author {
    pub fn new(n: u8) -> Author {
        Author {
            actor: automerge::ActorId::from([n; 16]),
            key: protocol::DeviceKey::from_seed(&[n; 32]),
            worker: WorkerId::new(),
            device: DeviceId::new(),
        }
    }

    /// The author of a store opened with signing seed `seed`.
    pub fn of(store: &Store, seed: [u8; 32]) -> Author {
        Author {
            actor: automerge::ActorId::from(store.actor_id()),
            key: protocol::DeviceKey::from_seed(&seed),
            worker: store.worker(),
            device: store.device(),
        }
    }

    pub fn signer(&self) -> protocol::Signer {
        protocol::Signer {
            actor: self.actor.to_bytes().to_vec(),
            device: self.device,
            worker: self.worker,
            key: self.key.public(),
        }
    }

    /// This author's signature over the newest of its changes among `changes` (what a
    /// server relays with them), if it made any.
    pub fn sign_newest<'c>(
        &self,
        doc: HouseholdId,
        changes: impl IntoIterator<Item = &'c automerge::Change>,
    ) -> Option<protocol::AuthorSignature> {
        let newest = changes
            .into_iter()
            .filter(|c| c.actor_id() == &self.actor)
            .max_by_key(|c| c.seq())?;
        Some(protocol::AuthorSignature {
            actor: self.actor.to_bytes().to_vec(),
            signature: self.key.sign(doc.as_uuid(), &newest.hash()),
        })
    }
}

/// What a server sends with `store`'s changes of `hh` so that another phone accepts them:
/// the store's owner (to pin) and its signature over its newest change of `hh`.
pub fn vouch(
    store: &Store,
    seed: [u8; 32],
    hh: HouseholdId,
) -> (protocol::Signer, protocol::AuthorSignature) {
    let author = Author::of(store, seed);
    let doc = automerge::Automerge::load(&store.export_document(hh).unwrap()).unwrap();
    let signature = author
        .sign_newest(hh, doc.get_changes(&[]).iter())
        .expect("the store wrote to the household");
    (author.signer(), signature)
}
