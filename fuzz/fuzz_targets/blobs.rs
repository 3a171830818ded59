#![no_main]
//! Fuzz target `blobs`: the body is `doorstep_tests::fuzzing::blobs` (see docs/fuzzing.md).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    doorstep_tests::fuzzing::blobs(data);
});
