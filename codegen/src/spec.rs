//! Stage 1: reading `spec/`. Every YAML (or JSON) document becomes a [`RawDocument`]: its JSON
//! value plus a [`LineIndex`] from field paths to source lines, so later stages can say where a
//! mistake is.
//!
//! Values are read with `serde_yaml_ng` (a maintained fork of serde_yaml that resolves scalars as
//! Kubernetes' YAML reader does); lines come from `saphyr-parser`'s event stream, which carries a
//! position for every node. See `docs/yaml.md`.

use crate::diagnostics::{Diagnostic, Diagnostics};
use saphyr_parser::{Event, Parser};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Everything read from the spec directory.
#[derive(Debug, Default)]
pub struct RawSpec {
    /// Documents in file-name order, then in order within a file.
    pub documents: Vec<RawDocument>,
    /// Files that were read (for `rerun-if-changed`).
    pub files: Vec<PathBuf>,
}

/// One YAML document.
#[derive(Debug)]
pub struct RawDocument {
    /// File name as shown in diagnostics.
    pub file: String,
    /// File name relative to the spec directory.
    pub relative: String,
    /// The document as JSON.
    pub value: serde_json::Value,
    /// Field path → line.
    pub lines: LineIndex,
}

/// Maps field paths (`spec.versions[0].name`) to 1-based source lines.
#[derive(Debug, Default, Clone)]
pub struct LineIndex(HashMap<String, usize>);

impl LineIndex {
    /// The line of `path`, or of its nearest ancestor that has one.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(line) = self.0.get(p) {
                return Some(*line);
            }
            if p.is_empty() {
                return None;
            }
            p = parent_path(p);
        }
    }
}

fn parent_path(path: &str) -> &str {
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    &path[..cut]
}

impl RawDocument {
    /// A diagnostic located at `path` in this document.
    pub fn error(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic { file: self.file.clone(), line: self.lines.line_of(path), path: path.to_string(), message: message.into() }
    }
}

/// Reads every `.yaml`, `.yml` and `.json` file below `dir` (recursively, sorted by path).
pub fn load(dir: &Path) -> Result<RawSpec, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let mut files = Vec::new();
    collect_files(dir, &mut files, &mut diagnostics);
    files.sort();
    let mut spec = RawSpec::default();
    for path in files {
        let shown = path.display().to_string();
        let relative = path.strip_prefix(dir).unwrap_or(&path).display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse_documents(&shown, &relative, &text) {
                Ok(docs) => spec.documents.extend(docs),
                Err(d) => diagnostics.push(d),
            },
            Err(e) => diagnostics.push(Diagnostic { file: shown, line: None, path: String::new(), message: format!("cannot read: {e}") }),
        }
        spec.files.push(path);
    }
    if spec.files.is_empty() && diagnostics.is_empty() {
        diagnostics.push(Diagnostic {
            file: dir.display().to_string(),
            line: None,
            path: String::new(),
            message: "no .yaml, .yml or .json files: the spec declares no resources".into(),
        });
    }
    if diagnostics.is_empty() {
        Ok(spec)
    } else {
        Err(diagnostics)
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>, diagnostics: &mut Diagnostics) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            diagnostics.push(Diagnostic {
                file: dir.display().to_string(),
                line: None,
                path: String::new(),
                message: format!("cannot read directory: {e}"),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out, diagnostics);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
            out.push(path);
        }
    }
}

/// Parses all documents of one file. Empty documents (e.g. after a trailing `---`) are skipped.
pub fn parse_documents(file: &str, relative: &str, text: &str) -> Result<Vec<RawDocument>, Diagnostic> {
    let syntax_error = |line: Option<usize>, message: String| Diagnostic { file: file.to_string(), line, path: String::new(), message };
    let mut indexes = line_indexes(text).map_err(|(line, msg)| syntax_error(Some(line), format!("invalid YAML: {msg}")))?;
    let mut documents = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value: serde_json::Value = serde::Deserialize::deserialize(de).map_err(|e| {
            let line = e.location().map(|l| l.line());
            syntax_error(line, format!("invalid YAML: {e}"))
        })?;
        let lines = if i < indexes.len() { std::mem::take(&mut indexes[i]) } else { LineIndex::default() };
        if value.is_null() {
            continue;
        }
        documents.push(RawDocument { file: file.to_string(), relative: relative.to_string(), value, lines });
    }
    Ok(documents)
}

/// One [`LineIndex`] per document, built from the parser's event stream.
fn line_indexes(text: &str) -> Result<Vec<LineIndex>, (usize, String)> {
    enum Frame {
        Map { path: String, key: Option<String> },
        Seq { path: String, next: usize },
    }
    let mut docs = Vec::new();
    let mut current = LineIndex::default();
    let mut stack: Vec<Frame> = Vec::new();
    // Computes the path of the node that starts now, and advances the parent frame.
    fn enter(stack: &mut [Frame]) -> Option<String> {
        match stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                Some(p)
            }
            Some(Frame::Map { path, key }) => key.take().map(|k| if path.is_empty() { k } else { format!("{path}.{k}") }),
        }
    }
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| (e.marker().line(), e.info().to_string()))?;
        let line = span.start.line();
        match event {
            Event::DocumentStart(_) => {
                current = LineIndex::default();
                stack.clear();
            }
            Event::DocumentEnd => docs.push(std::mem::take(&mut current)),
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A map used as a key has no path of its own: give it an unreachable one.
                let path = enter(&mut stack).unwrap_or_else(|| "\u{0}".into());
                current.0.entry(path.clone()).or_insert(line);
                if matches!(event, Event::MappingStart(..)) {
                    stack.push(Frame::Map { path, key: None });
                } else {
                    stack.push(Frame::Seq { path, next: 0 });
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map { path, key }) = stack.last_mut() {
                    if key.is_none() {
                        // This scalar is a key: the field's line is the key's line.
                        let k = value.to_string();
                        let full = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                        current.0.entry(full).or_insert(line);
                        *key = Some(k);
                        continue;
                    }
                }
                if let Some(p) = enter(&mut stack) {
                    current.0.entry(p).or_insert(line);
                }
            }
            Event::Alias(_) => {
                enter(&mut stack);
            }
            _ => {}
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
apiVersion: v1
kind: Thing
spec:
  versions:
  - name: v1
    served: true
  - name: v2
---
# second
kind: Other
";

    #[test]
    fn indexes_lines_per_document() {
        let docs = parse_documents("x.yaml", "x.yaml", TEXT).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].lines.line_of("kind"), Some(2));
        assert_eq!(docs[0].lines.line_of("spec.versions[0].served"), Some(6));
        assert_eq!(docs[0].lines.line_of("spec.versions[1].name"), Some(7));
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(docs[0].lines.line_of("spec.versions[1].schema.type"), Some(7));
        assert_eq!(docs[1].lines.line_of("kind"), Some(10));
        assert_eq!(docs[1].value["kind"], "Other");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let err = parse_documents("bad.yaml", "bad.yaml", "a: b\nc: [d\n").unwrap_err();
        assert_eq!(err.file, "bad.yaml");
        assert!(err.line.is_some(), "{err}");
        assert!(err.message.starts_with("invalid YAML"), "{err}");
    }
}
