//! Admin operations on contact cards: batches and leases are written into the station
//! document (so they reach every device of the station on its next sync), and supervisors
//! look cards up in the server's card index.

use automerge::Automerge;
use doorstep_core::doc::station;
use doorstep_core::{CardBatchId, CardLeaseId, Date, DeviceId, StationId, Timestamp};

use crate::store::{ServerStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CardAdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Rule(#[from] doorstep_core::Error),
    #[error("the device does not belong to this station")]
    WrongStation,
    #[error(transparent)]
    StoredDocument(#[from] crate::snapshot::SnapshotError),
}

/// Apply an admin edit to the station document (`station_doc::edit`: its change is appended
/// to the station log, retried if another writer got there first).
fn edit_station<S: ServerStore, T>(
    store: &S,
    station: StationId,
    edit: impl FnMut(&mut Automerge) -> doorstep_core::Result<T>,
) -> Result<T, CardAdminError> {
    crate::station_doc::edit(store, station, edit)
}

/// Register a printed batch `PREFIX-first` … `PREFIX-last` for a station.
pub fn add_batch<S: ServerStore>(
    store: &S,
    station: StationId,
    prefix: &str,
    first: u32,
    last: u32,
) -> Result<CardBatchId, CardAdminError> {
    edit_station(store, station, |doc| {
        station::add_batch(doc, prefix, first, last, Timestamp::now())
    })
}

/// Lease part of a batch to one of the station's devices.
pub fn add_lease<S: ServerStore>(
    store: &S,
    station: StationId,
    batch: CardBatchId,
    first: u32,
    last: u32,
    device: DeviceId,
    expires: Option<Date>,
) -> Result<CardLeaseId, CardAdminError> {
    match store.device(device)? {
        Some(d) if d.station == station => {}
        _ => return Err(CardAdminError::WrongStation),
    }
    edit_station(store, station, |doc| {
        station::add_lease(doc, batch, first, last, device, expires, Timestamp::now())
    })
}

/// Take a lease back (its unissued serials return to stock).
pub fn return_lease<S: ServerStore>(
    store: &S,
    station: StationId,
    lease: CardLeaseId,
) -> Result<(), CardAdminError> {
    edit_station(store, station, |doc| {
        station::return_lease(doc, lease, Timestamp::now())
    })
}
