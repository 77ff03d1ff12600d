//! Codegen: turns the CustomResourceDefinition documents in `spec/` into a compiled API.
//!
//! Three stages, each with its own module:
//! 1. [`spec::load`] reads every YAML document and indexes field paths to lines;
//! 2. [`model::build`] checks them and builds the [`apimodel::Model`], reporting every mistake
//!    at once as located [`Diagnostics`];
//! 3. the [`generate`] modules each turn the model into one artifact (Rust types, discovery,
//!    OpenAPI v2/v3, table printers and routes).
//!
//! A `build.rs` is one line:
//!
//! ```no_run
//! // build.rs
//! codegen::compile("../spec").unwrap_or_else(|d| panic!("{d}"));
//! ```
//!
//! or, to choose where output goes:
//!
//! ```no_run
//! codegen::configure().out_dir("/tmp/out").compile("../spec").unwrap();
//! ```

pub mod diagnostics;
pub mod generate;
pub mod ident;
pub mod jsonpath;
pub mod model;
pub mod spec;
#[cfg(test)]
pub(crate) mod test_support;

pub use diagnostics::{Diagnostic, Diagnostics};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Runs codegen on `spec_dir` with the default settings, writing into `$OUT_DIR`.
pub fn compile(spec_dir: impl AsRef<Path>) -> Result<(), Diagnostics> {
    configure().compile(spec_dir)
}

/// Starts a [`Builder`] with the default settings.
pub fn configure() -> Builder {
    Builder::default()
}

/// Codegen settings.
#[derive(Debug, Default, Clone)]
pub struct Builder {
    out_dir: Option<PathBuf>,
    emit_rerun: Option<bool>,
}

impl Builder {
    /// Where generated files go (default: `$OUT_DIR`).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` lines (default: when run by Cargo).
    pub fn emit_rerun_if_changed(mut self, emit: bool) -> Self {
        self.emit_rerun = Some(emit);
        self
    }

    /// Loads, checks and generates; writes each output file only when its content changed.
    pub fn compile(self, spec_dir: impl AsRef<Path>) -> Result<(), Diagnostics> {
        let spec_dir = spec_dir.as_ref();
        let emit_rerun = self.emit_rerun.unwrap_or_else(|| std::env::var_os("CARGO").is_some());
        if emit_rerun {
            // Cargo scans a directory recursively for changes, so new files count too.
            println!("cargo:rerun-if-changed={}", spec_dir.display());
        }
        let out_dir = match self.out_dir.or_else(|| std::env::var_os("OUT_DIR").map(PathBuf::from)) {
            Some(dir) => dir,
            None => {
                return Err(Diagnostics(vec![Diagnostic {
                    file: String::new(),
                    line: None,
                    path: String::new(),
                    message: "OUT_DIR is not set: call out_dir() or run from a build script".into(),
                }]))
            }
        };
        let raw = spec::load(spec_dir)?;
        let model = model::build(&raw)?;
        let artifacts = generate_all(&model, &spec_dir.display().to_string());
        for (name, bytes) in &artifacts.files {
            write_if_changed(&out_dir.join(name), bytes).map_err(|e| {
                Diagnostics(vec![Diagnostic {
                    file: out_dir.join(name).display().to_string(),
                    line: None,
                    path: String::new(),
                    message: format!("cannot write: {e}"),
                }])
            })?;
        }
        Ok(())
    }
}

/// Everything codegen emits, by file name relative to the output directory.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Artifacts {
    /// File name → content.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Artifacts {
    /// The JSON documents (everything but Rust sources, the model and binary encodings).
    pub fn documents(&self) -> impl Iterator<Item = (&String, &Vec<u8>)> {
        self.files.iter().filter(|(name, _)| name.ends_with(".json") && *name != "model.json")
    }
}

/// Runs every generator on the model. `spec_name` appears in the `@generated` header.
pub fn generate_all(model: &apimodel::Model, spec_name: &str) -> Artifacts {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // Documents are emitted as the server sends them: compact, escaped as Go's encoding/json
    // does, so hashes and ETags match what clients receive.
    let json = |v: &serde_json::Value| generate::openapi_common::to_json_bytes(v);
    files.insert("model.json".into(), serde_json::to_vec(model).expect("the model serializes"));

    let d = generate::discovery::discovery(model);
    files.insert("discovery/apis.json".into(), json(&d.group_list));
    files.insert("discovery/aggregated-v2.json".into(), json(&d.aggregated_v2));
    files.insert("discovery/aggregated-v2beta1.json".into(), json(&d.aggregated_v2beta1));
    for (group, doc) in &d.groups {
        files.insert(format!("discovery/apis/{group}.json"), json(doc));
    }
    for (gv, doc) in &d.resource_lists {
        files.insert(format!("discovery/apis/{gv}.json"), json(doc));
    }

    let v2 = generate::openapi_v2::openapi_v2(model);
    files.insert("openapi/v2.json".into(), json(&v2));
    files.insert("openapi/v2.pb".into(), generate::openapi_v2_pb::encode(&v2));
    let mut v3_bytes = BTreeMap::new();
    for (path, doc) in generate::openapi_v3::openapi_v3(model) {
        let bytes = json(&doc);
        files.insert(format!("openapi/v3/{path}.json"), bytes.clone());
        v3_bytes.insert(path, bytes);
    }
    files.insert("openapi/v3.json".into(), json(&generate::openapi_v3::openapi_v3_index(&v3_bytes)));

    let document_names: Vec<String> = files.keys().filter(|n| *n != "model.json").cloned().collect();
    let header = format!("// @generated by codegen from {spec_name}; do not edit.\n\n");
    files.insert("resources.rs".into(), rust_file(&header, generate::rust_types::rust_types(model)));
    files.insert("registry.rs".into(), rust_file(&header, generate::registry::registry(model, &document_names)));
    Artifacts { files }
}

/// Formats a token stream with prettyplease.
fn rust_file(header: &str, tokens: proc_macro2::TokenStream) -> Vec<u8> {
    let file: syn::File = syn::parse2(tokens).expect("generators emit valid Rust");
    let mut text = header.to_string();
    text.push_str(&prettyplease::unparse(&file));
    text.into_bytes()
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes)
}
