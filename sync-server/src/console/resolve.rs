//! A supervisor settles a conflict (ADR 0015): the decision is written into the household
//! document by her own automerge actor, bound on the server to a device of hers exactly as
//! a phone's actor is (ADR 0012), signed with her Ed25519 key, and pushed through the same
//! `SyncService::sync` as a phone's changes, so it passes the same validator, provenance
//! and finality checks, lands in the station's log, and reaches every phone at its next
//! sync.

use doorstep_core::protocol::{
    AuthorSignature, Cursor, DeviceKey, DocChanges, Phase, SignerKey, SyncRequest,
};
use doorstep_core::read_model::resolve_conflict;
use doorstep_core::{
    EntityKind, EntityRef, FieldRef, HouseholdId, Provenance, ResolutionId, Timestamp,
};

use crate::credentials::{hash_secret, new_token};
use crate::snapshot;
use crate::store::console::{Account, AccountSigner};
use crate::store::{DeviceAuth, ServerStore, StoreError};
use crate::sync::{SyncError, SyncService};

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no such household")]
    NotFound,
    #[error("bad field")]
    BadField,
    #[error("the conflict is no longer as shown: look again")]
    Changed,
    #[error("the decision was refused: {0}")]
    Refused(String),
    #[error("the stored document does not load")]
    Unloadable,
    #[error("a county account reads only")]
    ReadOnly,
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("sync: {0}")]
    Sync(#[from] SyncError),
}

/// A field as the console's forms name it: `kind:key:field` (`household::code`).
pub fn field_path(f: &FieldRef) -> String {
    format!(
        "{}:{}:{}",
        f.entity.kind().name(),
        f.entity.key().unwrap_or_default(),
        f.field
    )
}

pub fn parse_field_path(s: &str) -> Result<FieldRef, ResolveError> {
    let mut parts = s.splitn(3, ':');
    let (Some(kind), Some(key), Some(field)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ResolveError::BadField);
    };
    let kind = EntityKind::from_name(kind).ok_or(ResolveError::BadField)?;
    let key = (!key.is_empty()).then_some(key);
    let entity = EntityRef::from_parts(kind, key).map_err(|_| ResolveError::BadField)?;
    if doorstep_core::model::policy::policy(kind, field).is_none() {
        return Err(ResolveError::BadField);
    }
    Ok(FieldRef::new(entity, field))
}

/// A short digest of a shown value: the form sends it back so a decision is never applied
/// to a value the supervisor did not see.
pub fn value_digest(v: Option<&str>) -> String {
    let h = hash_secret(&format!("{}:{}", v.is_some() as u8, v.unwrap_or("")));
    h[..16].to_owned()
}

/// The supervisor's writer identity, made on her first decision: a worker and a device of
/// her station (the device's one-time code expired at creation, so it can never enrol), a
/// fresh actor bound to that device, and a fresh Ed25519 key.
pub fn signer_of<S: ServerStore>(
    store: &S,
    account: &Account,
) -> Result<AccountSigner, ResolveError> {
    if let Some(s) = store.account_signer(account.id)? {
        return Ok(s);
    }
    let now = crate::now_ms();
    // Published like any worker's label, so phones name the decider (a login is 1-64
    // ASCII characters: cut to the label's length).
    let label: String = format!("主管 {}", account.login)
        .chars()
        .take(doorstep_core::MAX_WORKER_LABEL_CHARS)
        .collect();
    let station = account.supervised_station().ok_or(ResolveError::ReadOnly)?;
    let worker = crate::workers::add_worker(store, station, &label, now).map_err(|e| match e {
        crate::workers::WorkerAdminError::Store(e) => ResolveError::Store(e),
        other => ResolveError::Refused(other.to_string()),
    })?;
    // The supervisor decides for the whole station (ADR 0019).
    store.set_role(worker, doorstep_core::Role::Supervisor, now)?;
    let device = store.enroll_device(worker, &hash_secret(&new_token()), 0)?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|_| ResolveError::Refused("no randomness".into()))?;
    let key = DeviceKey::from_seed(&seed);
    let actor = automerge::ActorId::random().to_bytes().to_vec();
    if !store.bind_signer(device, &actor, &key.public(), now)? {
        return Err(ResolveError::Refused("actor not bound".into()));
    }
    Ok(store.set_account_signer(
        account.id,
        &AccountSigner {
            worker,
            device,
            actor,
            seed,
        },
    )?)
}

/// Settle one conflict of a household of the account's station by choosing the value
/// whose digest is `chosen_digest` among the field's concurrent values.
pub fn resolve<S: ServerStore>(
    store: &S,
    sync: &SyncService<S>,
    account: &Account,
    doc_id: HouseholdId,
    field: &FieldRef,
    chosen_digest: &str,
) -> Result<ResolutionId, ResolveError> {
    // Only a station's supervisor decides (ADR 0020); the console refuses a county account
    // before it gets here.
    let station = account.supervised_station().ok_or(ResolveError::ReadOnly)?;
    if store.document_station(doc_id)? != Some(station) {
        return Err(ResolveError::NotFound);
    }
    let stored = store.load_document(doc_id)?.ok_or(ResolveError::NotFound)?;
    let mut doc = std::panic::catch_unwind(|| snapshot::load_stored(&stored))
        .map_err(|_| ResolveError::Unloadable)?
        .map_err(|_| ResolveError::Unloadable)?;
    let file =
        doorstep_core::read_model::read_case_file(&doc).map_err(|_| ResolveError::NotFound)?;
    let conflict = file
        .conflicts
        .iter()
        .find(|c| &c.field == field)
        .ok_or(ResolveError::Changed)?;
    let chosen = conflict
        .values
        .iter()
        .find(|v| value_digest(v.value.as_deref()) == chosen_digest)
        .ok_or(ResolveError::Changed)?
        .value
        .clone();
    let signer = signer_of(store, account)?;
    let p = Provenance {
        worker: signer.worker,
        device: signer.device,
        at: Timestamp(crate::now_ms()),
    };
    let actor = automerge::ActorId::from(signer.actor.clone());
    let decision = resolve_conflict(&mut doc, &actor, field, chosen.as_deref(), &p)
        .map_err(|e| ResolveError::Refused(e.to_string()))?;
    let key = DeviceKey::from_seed(&signer.seed);
    let request = SyncRequest {
        // Pull nothing back: the cursor is already at the end of the log.
        cursor: Cursor {
            epoch: store.epoch()?,
            seq: store.high_water(station)?,
            phase: Phase::Log,
        },
        budget: 0,
        push: vec![DocChanges {
            doc: doc_id,
            changes: decision.changes,
            signatures: vec![AuthorSignature {
                actor: signer.actor.clone(),
                signature: key.sign(doc_id.as_uuid(), &decision.head),
            }],
        }],
        signer: Some(SignerKey {
            actor: signer.actor.clone(),
            key: key.public(),
        }),
        accesses: Vec::new(),
    };
    let auth = DeviceAuth {
        device: signer.device,
        worker: signer.worker,
        station,
        revoked: false,
    };
    let resp = sync.sync(&auth, &request)?;
    if let Some(e) = resp.errors.first() {
        return Err(ResolveError::Refused(e.code.as_str().to_owned()));
    }
    if !resp.acks.iter().any(|a| a.doc == doc_id) {
        return Err(ResolveError::Refused("not acknowledged".into()));
    }
    Ok(decision.resolution)
}
