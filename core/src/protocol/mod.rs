//! The sync protocol, sans-IO: message types and their wire format. The store turns its
//! state into a request and applies a response; a transport (ours in `transport`, or the
//! app's own HTTP stack) carries the bytes. Nothing here opens a socket or reads a clock.

pub mod wire;

pub use wire::*;
