//! Fuzz target `strategic_patch`: see `specapi_fuzz::targets::strategic_patch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| specapi_fuzz::targets::strategic_patch(data));
