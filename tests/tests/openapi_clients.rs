//! The OpenAPI v3 document we serve, as client generators see it: it validates with
//! `openapi-spec-validator` (but for the one quirk kube-apiserver's own document has), and
//! `openapi-generator-cli` generates a Python client from it that works against the server.
//!
//! Both tools come from PyPI into a virtual environment under the target directory (once);
//! openapi-generator-cli runs its bundled jar with the machine's Java 17.

use e2e::{describe, target_dir, workspace_root, Server};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGES: &[&str] = &[
    "openapi-generator-cli==7.26.0",
    "openapi-spec-validator==0.9.0",
    "urllib3",
    "pydantic>=2",
    "python-dateutil",
    "typing-extensions",
    "pyyaml",
];

/// A virtual environment with the tools and what the generated client imports.
fn venv() -> PathBuf {
    let dir = target_dir().join("openapi-venv");
    let ready = dir.join("ready");
    if ready.is_file() {
        return dir;
    }
    let run = |command: &mut Command, what: &str| {
        let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(out.status.success(), "{}", describe(what, &out));
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir), "python3 -m venv");
    run(Command::new(dir.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check"]).args(PACKAGES), "pip install");
    std::fs::write(&ready, PACKAGES.join("\n")).unwrap();
    dir
}

/// `openapi-spec-validator --validation-errors all <file>`: whether it passed, and its error
/// lines without the file name.
fn validate(venv: &Path, file: &Path) -> (bool, Vec<String>) {
    let out = Command::new(venv.join("bin/openapi-spec-validator")).args(["--validation-errors", "all"]).arg(file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}: ", file.display());
    let errors =
        text.lines().filter_map(|l| l.strip_prefix(&prefix)).filter(|l| l.starts_with("Validation Error")).map(str::to_string).collect();
    (out.status.success(), errors)
}

/// Removes `default` from every schema that also has `allOf` (kube writes `default: {}` next to
/// a `$ref` to a type with required fields, which validators check the default against).
fn without_defaults_beside_all_of(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("allOf") {
                map.remove("default");
            }
            map.values_mut().for_each(without_defaults_beside_all_of);
        }
        Value::Array(items) => items.iter_mut().for_each(without_defaults_beside_all_of),
        _ => {}
    }
}

#[test]
fn openapi_v3_validates_and_generates_a_working_python_client() {
    let venv = venv();
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let ours = work.path().join("foo-v3.json");
    std::fs::write(&ours, server.get_raw("/openapi/v3/apis/hello.zeng.dev/v1")).unwrap();

    // The validator finds in ours exactly what it finds in kube-apiserver's document for the
    // same CRD: the `default: {}` beside OwnerReference's `$ref`.
    let kube = workspace_root().join("../shared/reference/kube-apiserver-1.32/openapi-v3-hello-v1.json");
    let (kube_ok, kube_errors) = validate(&venv, &kube);
    let (ours_ok, our_errors) = validate(&venv, &ours);
    assert!(!kube_ok && !kube_errors.is_empty(), "kube's document is expected to have the quirk: {kube_errors:?}");
    assert_eq!((ours_ok, &our_errors), (kube_ok, &kube_errors), "the validator's verdict on ours and on kube-apiserver's document");
    // Without that quirk ours validates.
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&ours).unwrap()).unwrap();
    without_defaults_beside_all_of(&mut doc);
    let cleaned = work.path().join("foo-v3-cleaned.json");
    std::fs::write(&cleaned, serde_json::to_vec(&doc).unwrap()).unwrap();
    let (ok, errors) = validate(&venv, &cleaned);
    assert!(ok && errors.is_empty(), "without the quirk the document should validate: {errors:?}");

    // A Python client generated from the document as served (the generator is not strict about
    // the quirk) creates, reads, lists, replaces, patches and deletes Foos.
    let client = work.path().join("client");
    let out = Command::new(venv.join("bin/openapi-generator-cli"))
        .args(["generate", "-g", "python", "--package-name", "fooclient", "--skip-validate-spec", "-i"])
        .arg(&ours)
        .arg("-o")
        .arg(&client)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe("openapi-generator-cli generate", &out));
    let script = workspace_root().join("tests/openapi/use_client.py");
    let out = Command::new(venv.join("bin/python")).arg(&script).arg(&client).arg(server.kubeconfig()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("all steps passed"), "{}", describe("the generated client", &out));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok: ")).count(), 9, "{stdout}");
}
