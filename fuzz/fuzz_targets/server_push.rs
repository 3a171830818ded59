#![no_main]
//! Fuzz target `server_push`: the body is `doorstep_tests::fuzzing::server_push` (see docs/fuzzing.md).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    doorstep_tests::fuzzing::server_push(data);
});
