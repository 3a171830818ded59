#![no_main]
//! Fuzz target `enroll`: the body is `doorstep_tests::fuzzing::enroll` (see docs/fuzzing.md).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    doorstep_tests::fuzzing::enroll(data);
});
