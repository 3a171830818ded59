//! The sync protocol, sans-IO: message types and their wire format. The store turns its
//! state into a request and applies a response; a transport (ours in `transport`, or the
//! app's own HTTP stack) carries the bytes. Nothing here opens a socket or reads a clock.

pub mod blobs;
pub mod budget;
pub mod compact;
pub mod signing;
pub mod wire;

pub use signing::{ChangeSignature, DeviceKey};
pub use wire::*;

use crate::model::ids::{DeviceId, StationId, WorkerId};

/// Body of `POST /v1/enroll` (JSON).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnrollRequest {
    /// The one-time code the admin printed with `doorstep-server device enroll`.
    pub code: String,
}

/// Answer to a successful enrolment (JSON): the device's long-lived token and who it is.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Enrollment {
    pub token: String,
    pub device: DeviceId,
    pub worker: WorkerId,
    pub station: StationId,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment")
            .field("token", &"<redacted>")
            .field("device", &self.device)
            .field("worker", &self.worker)
            .field("station", &self.station)
            .finish()
    }
}

/// Body of a 401 answer (JSON): with `wipe`, the device was revoked and must erase its data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unauthorized {
    pub error: String,
    pub wipe: bool,
}

/// Media type of sync bodies.
pub const SYNC_CONTENT_TYPE: &str = "application/x-doorstep-sync";
