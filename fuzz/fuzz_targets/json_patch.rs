//! Fuzz target `json_patch`: see `specapi_fuzz::targets::json_patch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| specapi_fuzz::targets::json_patch(data));
