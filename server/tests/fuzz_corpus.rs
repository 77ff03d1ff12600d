//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets' own code, so
//! every input that once crashed the server, and every seed, stays a regression test on the
//! stable toolchain, without libFuzzer. `scripts/fuzz.sh` does the fuzzing; see
//! `docs/fuzzing.md`.

#[path = "../../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longer than any input may take here (an unoptimised build); the fuzzer's own limit is
/// tighter.
const SLOW: Duration = Duration::from_secs(10);

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
}

#[test]
fn every_corpus_input_passes_its_target() {
    let mut failures = Vec::new();
    for (name, target) in targets::ALL {
        let dir = corpus_dir(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: the corpus of {name} is empty", dir.display());
        for file in files {
            let input = std::fs::read(&file).expect("corpus file reads");
            let started = Instant::now();
            let outcome = std::panic::catch_unwind(|| target(&input));
            let took = started.elapsed();
            match outcome {
                Err(_) => failures.push(format!("{}: panicked (message above)", file.display())),
                Ok(()) if took > SLOW => failures.push(format!("{}: took {took:?}", file.display())),
                Ok(()) => {}
            }
        }
    }
    assert!(failures.is_empty(), "corpus inputs failing their fuzz target:\n{}", failures.join("\n"));
}

#[test]
fn every_fuzz_target_has_a_corpus_and_a_binary() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in targets::ALL {
        assert!(corpus_dir(name).is_dir(), "fuzz/corpus/{name} is missing");
        assert!(manifest.contains(&format!("name = \"{name}\"")), "fuzz/Cargo.toml has no binary {name}");
    }
}
