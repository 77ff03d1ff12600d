//! Fuzz target `apply_patch`: see `specapi_fuzz::targets::apply_patch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| specapi_fuzz::targets::apply_patch(data));
