//! Golden files for every generated artefact, and error goldens for invalid specs.
//!
//! Each `tests/golden/<case>/spec.yaml` is generated and compared with the files in
//! `tests/golden/<case>/expected/`. Each `tests/invalid/<case>.yaml` must fail with exactly the
//! diagnostics in `<case>.err`. Refresh both after an intended change with
//! `UPDATE_GOLDEN=1 cargo test -p codegen --test golden` and review the diff.

use std::path::{Path, PathBuf};

fn update() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// Generates from a directory holding the case's spec.
fn generate(spec_dir: &Path) -> Result<codegen::Artifacts, codegen::Diagnostics> {
    let raw = codegen::spec::load(spec_dir)?;
    let model = codegen::model::build(&raw)?;
    Ok(codegen::generate_all(&model, "spec.yaml"))
}

fn case_spec_dir(case: &Path) -> PathBuf {
    // Load only spec.yaml: expected/ holds JSON that must not be read as spec. One directory per
    // call: tests run in parallel, and a copy being rewritten while another test reads it made
    // them fail at random.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("codegen-golden-{}-{call}-{}", std::process::id(), case.file_name().unwrap().to_string_lossy());
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(case.join("spec.yaml"), dir.join("spec.yaml")).unwrap();
    dir
}

#[test]
fn generated_artefacts_match_goldens() {
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(root().join("golden")).unwrap() {
        let case = entry.unwrap().path();
        let artifacts = generate(&case_spec_dir(&case)).unwrap_or_else(|d| panic!("{}: {d}", case.display()));
        let expected_dir = case.join("expected");
        if update() {
            let _ = std::fs::remove_dir_all(&expected_dir);
        }
        for (name, bytes) in &artifacts.files {
            let bytes = &readable(name, bytes);
            let path = expected_dir.join(name);
            if update() {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, bytes).unwrap();
            } else if std::fs::read(&path).ok().as_ref() != Some(bytes) {
                failures.push(path.display().to_string());
            }
        }
        // Files that are no longer generated count as stale too.
        if !update() {
            for file in walk(&expected_dir) {
                let name = file.strip_prefix(&expected_dir).unwrap().to_string_lossy().to_string();
                if !artifacts.files.contains_key(&name) {
                    failures.push(format!("{} (no longer generated)", file.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "stale goldens (run UPDATE_GOLDEN=1 cargo test -p codegen --test golden):\n{}", failures.join("\n"));
}

/// JSON documents are stored pretty-printed so that golden diffs are readable; the exact wire
/// bytes are still pinned, through the hashes in the OpenAPI v3 index.
fn readable(name: &str, bytes: &[u8]) -> Vec<u8> {
    if !name.ends_with(".json") {
        return bytes.to_vec();
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).expect("generated JSON parses");
    let mut pretty = serde_json::to_vec_pretty(&value).unwrap();
    pretty.push(b'\n');
    pretty
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn generation_is_deterministic() {
    let case = case_spec_dir(&root().join("golden/bar"));
    let first = generate(&case).unwrap();
    for _ in 0..3 {
        assert_eq!(generate(&case).unwrap(), first);
    }
}

#[test]
fn invalid_specs_report_every_mistake_with_its_location() {
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("invalid")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let dir =
            std::env::temp_dir().join(format!("codegen-invalid-{}-{}", std::process::id(), path.file_stem().unwrap().to_string_lossy()));
        std::fs::create_dir_all(&dir).unwrap();
        let name = path.file_name().unwrap();
        std::fs::copy(&path, dir.join(name)).unwrap();
        let diagnostics = match generate(&dir) {
            Ok(_) => panic!("{} should fail", path.display()),
            Err(d) => d,
        };
        // Paths are shown relative to the case so the golden does not depend on temp dirs.
        let rendered = diagnostics.to_string().replace(&format!("{}/", dir.display()), "");
        let err_path = path.with_extension("err");
        if update() {
            std::fs::write(&err_path, &rendered).unwrap();
        } else {
            let expected = std::fs::read_to_string(&err_path).unwrap_or_default();
            assert_eq!(rendered, expected, "{} (refresh with UPDATE_GOLDEN=1)", err_path.display());
        }
        checked += 1;
    }
    assert!(checked >= 3, "expected invalid-spec cases, found {checked}");
}
