//! The fuzz targets' bodies, kept apart from libFuzzer so that they can also run as an ordinary
//! test: each `fuzz_targets/<name>.rs` is a one-line `fuzz_target!` calling [`targets`]`::<name>`,
//! and `server/tests/fuzz_corpus.rs` includes `targets.rs` to replay `corpus/<name>/` on stable.

pub mod targets;
