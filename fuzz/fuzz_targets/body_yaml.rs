//! Fuzz target `body_yaml`: see `specapi_fuzz::targets::body_yaml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| specapi_fuzz::targets::body_yaml(data));
