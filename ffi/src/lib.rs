//! Doorstep bindings for Kotlin, Swift and Python; the FFI issue fills this crate.
pub use doorstep_core::VERSION as CORE_VERSION;
