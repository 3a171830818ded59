//! The Doorstep sync server; the sync issue fills this binary.
fn main() {
    eprintln!("doorstep-server {}: not yet implemented (see the sync issue)", doorstep_core::VERSION);
    std::process::exit(2);
}
