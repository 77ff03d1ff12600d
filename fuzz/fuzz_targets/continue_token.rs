//! Fuzz target `continue_token`: see `specapi_fuzz::targets::continue_token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| specapi_fuzz::targets::continue_token(data));
