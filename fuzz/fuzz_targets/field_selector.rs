//! Fuzz target `field_selector`: see `specapi_fuzz::targets::field_selector`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| specapi_fuzz::targets::field_selector(data));
