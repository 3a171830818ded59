//! A device that can also write raw automerge changes and sign them as the real app would:
//! a real store (its typed API makes valid households) whose signing key the test knows,
//! so a test can play an honest phone or an attacker holding an enrolled phone. Shared by
//! the server's tests (`#[path]`-included) and the cross-crate stories.

use automerge::{ActorId, Automerge, Change};
use doorstep_core::protocol::{
    AuthorSignature, DeviceKey, DocChanges, SignerKey, SyncRequest, SyncResponse,
};
use doorstep_core::{Durability, HouseholdId, Store, StoreKey, StoreOptions};
use doorstep_server::store::{DeviceAuth, ServerStore};
use doorstep_server::sync::SyncService;

/// An enrolled device with a store and a known signing key.
#[derive(Debug)]
pub struct RawDevice {
    pub auth: DeviceAuth,
    pub store: Store,
    pub key: DeviceKey,
    pub actor: ActorId,
    _dir: tempfile::TempDir,
}

impl RawDevice {
    /// A device for `auth` with a fresh store whose key comes from `seed`.
    pub fn new(auth: DeviceAuth, seed: u8) -> RawDevice {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut o = StoreOptions::new(
            dir.path().join("raw.db"),
            StoreKey::Raw([seed; 32]),
            auth.worker,
            auth.station,
        );
        o.device = Some(auth.device);
        o.durability = Durability::Relaxed;
        o.signing_seed = Some([seed; 32]);
        let store = Store::open(o).expect("open a store");
        let actor = ActorId::from(store.actor_id());
        RawDevice {
            auth,
            store,
            key: DeviceKey::from_seed(&[seed; 32]),
            actor,
            _dir: dir,
        }
    }

    /// The store's copy of a household as an automerge document that writes as this
    /// device's actor (raw edits on it are this device's changes).
    pub fn document(&self, household: HouseholdId) -> Automerge {
        let changes = self
            .store
            .export_changes(household, &[])
            .expect("export the household");
        let mut doc = Automerge::new();
        for bytes in changes {
            doc.apply_changes([Change::from_bytes(bytes).expect("a change")])
                .expect("apply");
        }
        doc.with_actor(self.actor.clone())
    }

    /// Signatures as the app makes them: over this device's newest change among `changes`.
    pub fn sign(&self, doc: HouseholdId, changes: &[Change]) -> Vec<AuthorSignature> {
        changes
            .iter()
            .filter(|c| *c.actor_id() == self.actor)
            .max_by_key(|c| c.seq())
            .map(|c| AuthorSignature {
                actor: self.actor.to_bytes().to_vec(),
                signature: self.key.sign(doc.as_uuid(), &c.hash()),
            })
            .into_iter()
            .collect()
    }

    /// A request that registers this device's key and pushes `changes` of `doc`, signed.
    pub fn request(&self, doc: HouseholdId, changes: &[Change]) -> SyncRequest {
        SyncRequest {
            budget: 4 * 1024 * 1024,
            push: vec![DocChanges {
                doc,
                changes: changes.iter().map(|c| c.raw_bytes().to_vec()).collect(),
                signatures: self.sign(doc, changes),
            }],
            signer: Some(self.signer()),
            ..SyncRequest::default()
        }
    }

    /// This device's registration.
    pub fn signer(&self) -> SignerKey {
        SignerKey {
            actor: self.actor.to_bytes().to_vec(),
            key: self.key.public(),
        }
    }

    /// Sync the store with an in-process service until it is done.
    pub fn sync<S: ServerStore>(&self, service: &SyncService<S>) {
        for _ in 0..100 {
            let req = self.store.build_sync_request(4 << 20).expect("a request");
            let resp: SyncResponse = service.sync(&self.auth, &req).expect("a sync");
            if !self.store.apply_response(&resp).expect("apply").more {
                return;
            }
        }
        panic!("sync did not finish");
    }
}
