//! Fuzz target `label_selector`: see `specapi_fuzz::targets::label_selector`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| specapi_fuzz::targets::label_selector(data));
