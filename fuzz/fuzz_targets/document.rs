#![no_main]
//! Fuzz target `document`: the body is `doorstep_tests::fuzzing::document` (see docs/fuzzing.md).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    doorstep_tests::fuzzing::document(data);
});
