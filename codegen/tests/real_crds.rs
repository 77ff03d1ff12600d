//! Every real-world CRD in `../shared/crds/` must load, pass the model checks and generate.
//! (Compiling and serving them is covered by the end-to-end tests.)

use std::path::{Path, PathBuf};

fn crds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/crds")
}

#[test]
fn real_world_crds_generate() {
    let dir = crds_dir();
    assert!(dir.exists(), "real-world CRDs not found at {}", dir.display());
    let mut failures = Vec::new();
    let mut count = 0;
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let docs = match codegen::spec::parse_documents(&name, &name, &text) {
            Ok(d) => d,
            Err(d) => {
                failures.push(d.to_string());
                continue;
            }
        };
        let raw = codegen::spec::RawSpec { documents: docs, files: vec![] };
        match codegen::model::build(&raw) {
            Ok(model) => {
                count += model.resources.len();
                let artifacts = codegen::generate_all(&model, &name);
                assert!(artifacts.files.contains_key("resources.rs"));
            }
            Err(d) => failures.push(d.to_string()),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(count >= 44, "expected 44 CRDs, got {count}");
}
