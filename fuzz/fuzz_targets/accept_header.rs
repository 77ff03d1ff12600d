//! Fuzz target `accept_header`: see `specapi_fuzz::targets::accept_header`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| specapi_fuzz::targets::accept_header(data));
