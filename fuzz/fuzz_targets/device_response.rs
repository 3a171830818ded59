#![no_main]
//! Fuzz target `device_response`: the body is `doorstep_tests::fuzzing::device_response` (see docs/fuzzing.md).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    doorstep_tests::fuzzing::device_response(data);
});
