//! `generated/documents/` is a readable (pretty-printed) copy of every JSON document codegen
//! emitted for `spec/`. This test fails when the copy is stale; refresh it with
//! `UPDATE_GOLDEN=1 cargo test -p generated --test documents`.

use std::path::{Path, PathBuf};

fn copy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("documents")
}

fn pretty(bytes: &[u8]) -> Vec<u8> {
    let value: serde_json::Value = serde_json::from_slice(bytes).expect("generated documents are JSON");
    let mut out = serde_json::to_vec_pretty(&value).unwrap();
    out.push(b'\n');
    out
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn readable_copy_is_current() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let dir = copy_dir();
    if update {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut stale = Vec::new();
    let mut expected_files = Vec::new();
    for (name, bytes) in generated::DOCUMENTS.iter().filter(|(n, _)| n.ends_with(".json")) {
        let path = dir.join(name);
        expected_files.push(path.clone());
        let want = pretty(bytes);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &want).unwrap();
        } else if std::fs::read(&path).ok() != Some(want) {
            stale.push(path.display().to_string());
        }
    }
    for file in files_under(&dir) {
        if !expected_files.contains(&file) {
            stale.push(format!("{} (no longer generated)", file.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "generated/documents is stale; run UPDATE_GOLDEN=1 cargo test -p generated --test documents\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_served_version_has_its_documents() {
    for endpoint in generated::ENDPOINTS {
        let gv = endpoint.api_version();
        assert!(generated::document(&format!("discovery/apis/{gv}.json")).is_some(), "{gv}");
        assert!(generated::document(&format!("openapi/v3/apis/{gv}.json")).is_some(), "{gv}");
    }
    assert!(!generated::document("openapi/v2.pb").unwrap_or_default().is_empty());
}
