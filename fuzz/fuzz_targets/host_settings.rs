//! Parse and validate arbitrary bytes as host settings.
//!
//! The body is `bifrost_core::spec::fuzz_one`, which the normal test suite
//! also runs (bifrost-core/tests/integration/spec_inputs.rs), so the checked promises
//! are the same with or without a nightly toolchain.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bifrost_core::spec::fuzz_one(data);
});
