pub use doorstep_core::VERSION as CORE_VERSION;
