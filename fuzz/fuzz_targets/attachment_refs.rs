#![no_main]
//! Fuzz target `attachment_refs`: the body is `doorstep_tests::fuzzing::attachment_refs` (see docs/fuzzing.md).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    doorstep_tests::fuzzing::attachment_refs(data);
});
