//! Fuzz target `body_json`: see `specapi_fuzz::targets::body_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| specapi_fuzz::targets::body_json(data));
