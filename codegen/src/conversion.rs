//! `Conversion` documents (`specapi.dev/v1alpha1`): how the versions of one resource differ
//! beyond `apiVersion`, so that no conversion webhook is needed. See `docs/conversion.md`.
//!
//! ```yaml
//! apiVersion: specapi.dev/v1alpha1
//! kind: Conversion
//! metadata:
//!   name: gadgets.example.com        # the CustomResourceDefinition it is about
//! spec:
//!   versions:
//!   - name: v1alpha1                 # a version other than the storage version
//!     fields:
//!     - storage: .spec.size          # where the value is in the storage version
//!       served: .spec.replicas       # where it is in v1alpha1
//!     hook: gadget_v1alpha1          # optional: a function of the spec's conversions.rs
//! ```

use crate::diagnostics::Diagnostics;
use crate::model::split_json_path;
use crate::spec::RawDocument;
use apimodel::{FieldMove, Resource, Schema, SchemaKind};
use serde_json::Value;

/// The apiVersion of our extension documents.
pub const API_VERSION: &str = "specapi.dev/v1alpha1";
/// The kind of conversion documents.
pub const KIND: &str = "Conversion";
/// The file of the spec directory that holds conversion hooks.
pub const HOOKS_FILE: &str = "conversions.rs";

/// Applies one `Conversion` document to the resources it names, reporting every mistake.
/// `hooks_file` tells whether the spec has a [`HOOKS_FILE`].
pub fn apply(doc: &RawDocument, resources: &mut [Resource], has_hooks_file: bool, diagnostics: &mut Diagnostics) {
    let mut err = |path: &str, message: String| diagnostics.push(doc.error(path, message));
    let value = &doc.value;
    if value.get("apiVersion").and_then(Value::as_str) != Some(API_VERSION) {
        err(
            "apiVersion",
            format!("Unsupported value: {:?}: supported values: {API_VERSION:?}", value.get("apiVersion").unwrap_or(&Value::Null)),
        );
        return;
    }
    let Some(name) = value.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str) else {
        err("metadata.name", "Required value: the name of the CustomResourceDefinition this conversion is for".into());
        return;
    };
    let Some(resource) = resources.iter_mut().find(|r| r.qualified_name() == name) else {
        err("metadata.name", format!("Not found: {name:?}: no CustomResourceDefinition of the spec has this name"));
        return;
    };
    let Some(versions) = value.get("spec").and_then(|s| s.get("versions")).and_then(Value::as_array) else {
        err("spec.versions", "Required value: a list of versions".into());
        return;
    };
    let storage_schema = resource.storage_version().schema.clone();
    let storage_name = resource.storage_version().name.clone();
    let mut seen: Vec<String> = Vec::new();
    for (i, entry) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let Some(version_name) = entry.get("name").and_then(Value::as_str) else {
            err(&format!("{path}.name"), "Required value".into());
            continue;
        };
        if seen.iter().any(|s| s == version_name) {
            err(&format!("{path}.name"), format!("Duplicate value: {version_name:?}"));
            continue;
        }
        seen.push(version_name.to_string());
        if version_name == storage_name {
            err(
                &format!("{path}.name"),
                format!("Invalid value: {version_name:?}: the storage version converts to nothing; name the other versions"),
            );
            continue;
        }
        let Some(version) = resource.versions.iter_mut().find(|v| v.name == version_name) else {
            err(&format!("{path}.name"), format!("Not found: {version_name:?}: {name} has no such version"));
            continue;
        };
        let mut fields = Vec::new();
        match entry.get("fields") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (j, item) in items.iter().enumerate() {
                    let item_path = format!("{path}.fields[{j}]");
                    let storage = field_path(item.get("storage"), &format!("{item_path}.storage"), &storage_schema, &mut err);
                    let served = field_path(item.get("served"), &format!("{item_path}.served"), &version.schema, &mut err);
                    if let (Some(storage), Some(served)) = (storage, served) {
                        fields.push(FieldMove { storage, served });
                    }
                }
            }
            Some(_) => err(&format!("{path}.fields"), "must be a list of {storage, served} paths".into()),
        }
        let hook = match entry.get("hook") {
            None | Some(Value::Null) => None,
            Some(Value::String(h)) if is_rust_identifier(h) => {
                if !has_hooks_file {
                    err(
                        &format!("{path}.hook"),
                        format!("Invalid value: {h:?}: hooks are functions of {HOOKS_FILE} in the spec directory, which does not exist"),
                    );
                }
                Some(h.clone())
            }
            Some(other) => {
                err(&format!("{path}.hook"), format!("Invalid value: {other}: must be the name of a Rust function"));
                None
            }
        };
        let declares_nothing = entry.get("fields").and_then(Value::as_array).is_none_or(Vec::is_empty) && entry.get("hook").is_none();
        if declares_nothing {
            err(&path, "Required value: fields or hook (without either, the version converts by apiVersion alone: leave it out)".into());
        }
        version.conversion = apimodel::Conversion { fields, hook };
    }
}

/// Checks one `.a.b` path against `schema`: a simple dotted path outside `apiVersion`, `kind`
/// and `metadata`, naming a field the schema has (or may keep as an unknown field).
fn field_path(value: Option<&Value>, path: &str, schema: &Schema, err: &mut impl FnMut(&str, String)) -> Option<Vec<String>> {
    let Some(text) = value.and_then(Value::as_str) else {
        err(path, "Required value: a path such as .spec.size".into());
        return None;
    };
    let Some(parts) = split_json_path(text) else {
        err(path, format!("Invalid value: {text:?}: must be a dotted path of field names such as .spec.size"));
        return None;
    };
    if matches!(parts[0], "apiVersion" | "kind" | "metadata") {
        err(path, format!("Invalid value: {text:?}: apiVersion, kind and metadata are the same in every version"));
        return None;
    }
    let mut node = schema;
    for part in &parts {
        match &node.kind {
            SchemaKind::Object { preserve_unknown_fields: true, properties, .. } if !properties.contains_key(*part) => break,
            SchemaKind::Any { .. } => break,
            SchemaKind::Object { .. } => match node.child(part) {
                Some(child) => node = child,
                None => {
                    err(path, format!("Invalid value: {text:?}: the schema of this version has no field {part:?} there"));
                    return None;
                }
            },
            _ => {
                err(path, format!("Invalid value: {text:?}: {part:?} is inside a field that is not an object"));
                return None;
            }
        }
    }
    Some(parts.into_iter().map(str::to_string).collect())
}

fn is_rust_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
