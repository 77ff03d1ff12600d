//! Fuzz target `merge_patch`: see `specapi_fuzz::targets::merge_patch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| specapi_fuzz::targets::merge_patch(data));
