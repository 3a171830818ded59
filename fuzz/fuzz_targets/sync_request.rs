#![no_main]
//! Fuzz target `sync_request`: the body is `doorstep_tests::fuzzing::sync_request` (see docs/fuzzing.md).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    doorstep_tests::fuzzing::sync_request(data);
});
