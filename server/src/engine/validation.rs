//! Schema validation and pruning of objects against the version's structural schema, and
//! validation of object metadata, with kube-apiserver's error wording and field paths.

use crate::http::{FieldError, FieldErrorKind};
use apimodel::{ListType, Schema, SchemaKind};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// What validation found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Field errors (HTTP 422).
    pub errors: Vec<FieldError>,
    /// Paths of unknown fields that were pruned (strict field validation rejects them, the
    /// default reports them as warnings).
    pub unknown: Vec<String>,
}

/// Prunes unknown fields from `object` (recording them) and validates it against `schema`.
pub fn prune_and_validate(object: &mut Value, schema: &Schema) -> Outcome {
    let mut outcome = Outcome::default();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in meta.keys().filter(|k| !super::object::OBJECT_META_FIELDS.contains(&k.as_str())).cloned().collect::<Vec<_>>() {
            meta.remove(&key);
            outcome.unknown.push(format!("metadata.{key}"));
        }
    }
    walk(object, schema, "", true, &mut outcome);
    outcome.unknown.sort();
    outcome
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// JSON type names as kube-openapi reports them.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as Go's `%#v`-like rendering in field errors.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "\"null\"".into(),
        other => other.to_string(),
    }
}

fn type_error(out: &mut Outcome, path: &str, want: &str, v: &Value) {
    let got = type_name(v);
    out.errors.push(FieldError::new(
        FieldErrorKind::TypeInvalid,
        path,
        Some(format!("{got:?}")),
        format!("{path} in body must be of type {want}: {got:?}"),
    ));
}

fn walk(value: &mut Value, schema: &Schema, path: &str, root: bool, out: &mut Outcome) {
    if value.is_null() {
        if !schema.nullable && !root {
            if let Some(want) = schema.type_name() {
                type_error(out, path, want, value);
            }
        }
        return;
    }
    match &schema.kind {
        SchemaKind::Object { properties, required, additional_properties, preserve_unknown_fields, embedded_resource, .. } => {
            let Value::Object(map) = value else { return type_error(out, path, "object", value) };
            if !preserve_unknown_fields && additional_properties.is_none() {
                let keep_meta = root || *embedded_resource;
                let unknown: Vec<String> = map
                    .keys()
                    .filter(|k| !properties.contains_key(*k) && !(keep_meta && ["apiVersion", "kind", "metadata"].contains(&k.as_str())))
                    .cloned()
                    .collect();
                for key in unknown {
                    map.remove(&key);
                    out.unknown.push(join(path, &key));
                }
            }
            // Structural defaulting, as for CRDs: a null in a non-nullable field is dropped, then
            // absent fields with a default get it. (Defaults were validated with the spec.)
            for (name, child_schema) in properties.iter() {
                if map.get(name).is_some_and(Value::is_null) && !child_schema.nullable {
                    map.remove(name);
                }
                if !map.contains_key(name) {
                    if let Some(default) = &child_schema.default {
                        map.insert(name.clone(), default.clone());
                    }
                }
            }
            // An embedded resource is a whole object: it names its kind and version.
            if *embedded_resource && !*preserve_unknown_fields {
                for field in ["apiVersion", "kind"] {
                    if map.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
                        out.errors.push(FieldError::new(
                            FieldErrorKind::Required,
                            join(path, field),
                            None,
                            format!("{field} must not be empty"),
                        ));
                    }
                }
            }
            for name in required {
                if !map.contains_key(name) {
                    out.errors.push(FieldError::new(FieldErrorKind::Required, join(path, name), None, ""));
                }
            }
            for (key, child) in map.iter_mut() {
                if root && ["apiVersion", "kind", "metadata"].contains(&key.as_str()) {
                    continue;
                }
                if let Some(child_schema) = properties.get(key) {
                    walk(child, child_schema, &join(path, key), false, out);
                } else if let Some(values) = additional_properties {
                    walk(child, values, &format!("{path}[{key}]"), false, out);
                }
            }
            bounds_object(map, schema, path, out);
        }
        SchemaKind::Array { items, list_type, list_map_keys } => {
            let Value::Array(list) = value else { return type_error(out, path, "array", value) };
            for (i, item) in list.iter_mut().enumerate() {
                walk(item, items, &format!("{path}[{i}]"), false, out);
            }
            uniqueness(list, *list_type, list_map_keys, path, out);
            if let Some(max) = schema.bounds.max_items {
                if list.len() as u64 > max {
                    out.errors.push(FieldError::new(
                        FieldErrorKind::TooMany,
                        path,
                        Some(list.len().to_string()),
                        format!("must have at most {max} items"),
                    ));
                }
            }
            if let Some(min) = schema.bounds.min_items {
                if (list.len() as u64) < min {
                    out.errors.push(FieldError::new(
                        FieldErrorKind::Invalid,
                        path,
                        Some(list.len().to_string()),
                        format!("{path} in body should have at least {min} items"),
                    ));
                }
            }
        }
        SchemaKind::String => match &*value {
            Value::String(s) => string_checks(s, schema, path, out),
            other => type_error(out, path, "string", other),
        },
        SchemaKind::Integer => match &*value {
            v @ Value::Number(_) if type_name(v) == "integer" => number_checks(v, schema, path, out),
            other => type_error(out, path, "integer", other),
        },
        SchemaKind::Number => match &*value {
            v @ Value::Number(_) => number_checks(v, schema, path, out),
            other => type_error(out, path, "number", other),
        },
        SchemaKind::Boolean => {
            if !value.is_boolean() {
                type_error(out, path, "boolean", value)
            }
        }
        SchemaKind::IntOrString => match &*value {
            Value::String(s) => string_checks(s, schema, path, out),
            v @ Value::Number(_) if type_name(v) == "integer" => number_checks(v, schema, path, out),
            other => type_error(out, path, "integer,string", other),
        },
        SchemaKind::Any { .. } => {}
    }
    if let Some(allowed) = &schema.enum_values {
        if !allowed.contains(&*value) {
            let list = allowed.iter().map(show).collect::<Vec<_>>().join(", ");
            out.errors.push(FieldError::new(FieldErrorKind::NotSupported, path, Some(show(value)), format!("supported values: {list}")));
        }
    }
}

fn string_checks(s: &str, schema: &Schema, path: &str, out: &mut Outcome) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema.bounds.max_length {
        if len > max {
            out.errors.push(FieldError::new(FieldErrorKind::TooLong, path, None, format!("may not be more than {max} bytes")));
        }
    }
    if let Some(min) = schema.bounds.min_length {
        if len < min {
            out.errors.push(FieldError::new(
                FieldErrorKind::Invalid,
                path,
                Some(format!("{s:?}")),
                format!("{path} in body should be at least {min} chars long"),
            ));
        }
    }
    if let Some(pattern) = &schema.bounds.pattern {
        // Patterns were checked to compile when the spec was built.
        if regex::Regex::new(pattern).is_ok_and(|re| !re.is_match(s)) {
            out.errors.push(FieldError::new(
                FieldErrorKind::Invalid,
                path,
                Some(format!("{s:?}")),
                format!("{path} in body should match '{pattern}'"),
            ));
        }
    }
    if let Some(format) = &schema.format {
        if !format_ok(format, s) {
            out.errors.push(FieldError::new(
                FieldErrorKind::Invalid,
                path,
                Some(format!("{s:?}")),
                format!("{path} in body must be of type {format}: {s:?}"),
            ));
        }
    }
}

/// The formats kube-apiserver checks for CRDs; unknown formats are accepted.
fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        "uuid" => uuid::Uuid::parse_str(s).is_ok() && s.len() == 36,
        "byte" => base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s).is_ok(),
        "int-or-string" => true,
        _ => true,
    }
}

fn number_checks(v: &Value, schema: &Schema, path: &str, out: &mut Outcome) {
    let Some(n) = v.as_f64() else { return };
    let b = &schema.bounds;
    if let Some(max) = b.maximum {
        if n > max || (b.exclusive_maximum && n == max) {
            let op = if b.exclusive_maximum { "less than" } else { "less than or equal to" };
            out.errors.push(FieldError::new(
                FieldErrorKind::Invalid,
                path,
                Some(v.to_string()),
                format!("{path} in body should be {op} {max}"),
            ));
        }
    }
    if let Some(min) = b.minimum {
        if n < min || (b.exclusive_minimum && n == min) {
            let op = if b.exclusive_minimum { "greater than" } else { "greater than or equal to" };
            out.errors.push(FieldError::new(
                FieldErrorKind::Invalid,
                path,
                Some(v.to_string()),
                format!("{path} in body should be {op} {min}"),
            ));
        }
    }
    if let Some(m) = b.multiple_of {
        if m != 0.0 && (n / m).fract() != 0.0 {
            out.errors.push(FieldError::new(
                FieldErrorKind::Invalid,
                path,
                Some(v.to_string()),
                format!("{path} in body should be a multiple of {m}"),
            ));
        }
    }
}

fn bounds_object(map: &Map<String, Value>, schema: &Schema, path: &str, out: &mut Outcome) {
    if let Some(max) = schema.bounds.max_properties {
        if map.len() as u64 > max {
            out.errors.push(FieldError::new(
                FieldErrorKind::TooMany,
                path,
                Some(map.len().to_string()),
                format!("must have at most {max} items"),
            ));
        }
    }
    if let Some(min) = schema.bounds.min_properties {
        if (map.len() as u64) < min {
            out.errors.push(FieldError::new(
                FieldErrorKind::Invalid,
                path,
                Some(map.len().to_string()),
                format!("{path} in body should have at least {min} properties"),
            ));
        }
    }
}

fn uniqueness(list: &[Value], list_type: Option<ListType>, keys: &[String], path: &str, out: &mut Outcome) {
    let mut seen: HashSet<String> = HashSet::new();
    match list_type {
        Some(ListType::Set) => {
            for (i, item) in list.iter().enumerate() {
                if !seen.insert(item.to_string()) {
                    out.errors.push(FieldError::new(FieldErrorKind::Duplicate, format!("{path}[{i}]"), Some(show(item)), ""));
                }
            }
        }
        Some(ListType::Map) => {
            for (i, item) in list.iter().enumerate() {
                let key: String =
                    keys.iter().map(|k| item.get(k).map(|v| v.to_string()).unwrap_or_default()).collect::<Vec<_>>().join("\u{0}");
                if !seen.insert(key) {
                    let shown: Vec<String> = keys.iter().map(|k| format!("{k:?}:{}", item.get(k).map(show).unwrap_or_default())).collect();
                    out.errors.push(FieldError::new(
                        FieldErrorKind::Duplicate,
                        format!("{path}[{i}]"),
                        Some(format!("map[string]interface {{}}{{{}}}", shown.join(", "))),
                        "",
                    ));
                }
            }
        }
        Some(ListType::Atomic) | None => {}
    }
}

/// kube's message for names that are not RFC 1123 subdomains.
const SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// An RFC 1123 label, as namespace names must be: at most 63 lower-case alphanumerics and `-`,
/// starting and ending with an alphanumeric.
pub fn is_dns_label(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && alnum(bytes[0])
        && alnum(bytes[bytes.len() - 1])
        && bytes.iter().all(|&b| alnum(b) || b == b'-')
}

/// Whether `s` is an RFC 1123 subdomain of at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Validates `metadata`: name, labels, annotations, finalizers.
pub fn validate_metadata(object: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let meta = object.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        errors.push(FieldError::new(FieldErrorKind::Required, "metadata.name", None, "name or generateName is required"));
    } else {
        if !is_dns_subdomain(name) {
            errors.push(FieldError::new(FieldErrorKind::Invalid, "metadata.name", Some(format!("{name:?}")), SUBDOMAIN_MESSAGE));
        }
        if name.len() > 253 {
            errors.push(FieldError::new(
                FieldErrorKind::Invalid,
                "metadata.name",
                Some(format!("{name:?}")),
                "must be no more than 253 characters",
            ));
        }
    }
    let _ = namespaced;
    if let Some(labels) = meta.and_then(|m| m.get("labels")) {
        match labels {
            Value::Object(map) => {
                for (k, v) in map {
                    if !is_qualified_name(k) {
                        errors.push(FieldError::new(FieldErrorKind::Invalid, "metadata.labels", Some(format!("{k:?}")), "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
                    }
                    match v.as_str() {
                        Some(s) if is_label_value(s) => {}
                        _ => errors.push(FieldError::new(FieldErrorKind::Invalid, "metadata.labels", Some(show(v)), "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")),
                    }
                }
            }
            Value::Null => {}
            _ => errors.push(FieldError::new(FieldErrorKind::TypeInvalid, "metadata.labels", None, "must be a map of strings")),
        }
    }
    if let Some(annotations) = meta.and_then(|m| m.get("annotations")) {
        match annotations {
            Value::Object(map) => {
                for (k, v) in map {
                    if !is_qualified_name(k) {
                        errors.push(FieldError::new(FieldErrorKind::Invalid, "metadata.annotations", Some(format!("{k:?}")), "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
                    }
                    if !v.is_string() {
                        errors.push(FieldError::new(
                            FieldErrorKind::TypeInvalid,
                            format!("metadata.annotations[{k}]"),
                            Some(show(v)),
                            "must be a string",
                        ));
                    }
                }
                let total: usize = map.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum();
                if total > 256 * 1024 {
                    errors.push(FieldError::new(
                        FieldErrorKind::TooLong,
                        "metadata.annotations",
                        None,
                        "may not be more than 262144 bytes",
                    ));
                }
            }
            Value::Null => {}
            _ => errors.push(FieldError::new(FieldErrorKind::TypeInvalid, "metadata.annotations", None, "must be a map of strings")),
        }
    }
    if let Some(finalizers) = meta.and_then(|m| m.get("finalizers")) {
        match finalizers {
            Value::Array(items) => {
                for (i, f) in items.iter().enumerate() {
                    if !f.as_str().is_some_and(is_qualified_name) {
                        errors.push(FieldError::new(FieldErrorKind::Invalid, format!("metadata.finalizers[{i}]"), Some(show(f)), "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
                    }
                }
            }
            Value::Null => {}
            _ => errors.push(FieldError::new(FieldErrorKind::TypeInvalid, "metadata.finalizers", None, "must be a list of strings")),
        }
    }
    errors
}

/// `prefix/name` where prefix is a DNS subdomain and name a 63-character qualified name.
pub fn is_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if prefix.is_some_and(|p| !is_dns_subdomain(p)) {
        return false;
    }
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// Empty, or a 63-character qualified name part.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || (is_qualified_name(s) && !s.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> Schema {
        serde_json::from_value(v).unwrap()
    }

    fn foo_schema() -> Schema {
        schema(json!({"kind": {"type": "object", "properties": {"spec": {"kind": {"type": "object", "properties": {
            "msg": {"kind": {"type": "string"}},
            "count": {"kind": {"type": "integer"}, "bounds": {"maximum": 10.0}},
            "tags": {"kind": {"type": "array", "items": {"kind": {"type": "string"}}, "list_type": "set"}},
            "mode": {"kind": {"type": "string"}, "enum_values": ["a", "b"]}
        }, "required": ["msg"]}}}}}))
    }

    fn messages(o: &Outcome) -> Vec<String> {
        o.errors.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn type_errors_use_kube_wording() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "Foo", "metadata": {"name": "a"}, "spec": {"msg": 42}});
        let o = prune_and_validate(&mut obj, &foo_schema());
        assert_eq!(messages(&o), vec!["spec.msg: Invalid value: \"integer\": spec.msg in body must be of type string: \"integer\""]);
        assert_eq!(o.errors[0].kind.reason(), "FieldValueTypeInvalid");
    }

    #[test]
    fn prunes_unknown_fields_and_reports_them() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "Foo", "metadata": {"name": "a", "bogus": 1}, "spec": {"msg": "m", "extra": true}, "top": 1});
        let o = prune_and_validate(&mut obj, &foo_schema());
        assert!(o.errors.is_empty());
        assert_eq!(o.unknown, vec!["metadata.bogus", "spec.extra", "top"]);
        assert_eq!(obj, json!({"apiVersion": "x/v1", "kind": "Foo", "metadata": {"name": "a"}, "spec": {"msg": "m"}}));
    }

    #[test]
    fn bounds_enum_required_and_sets() {
        let mut obj = json!({"spec": {"count": 11, "tags": ["a", "a"], "mode": "c"}});
        let o = prune_and_validate(&mut obj, &foo_schema());
        assert_eq!(
            messages(&o),
            vec![
                "spec.msg: Required value",
                "spec.count: Invalid value: 11: spec.count in body should be less than or equal to 10",
                "spec.tags[1]: Duplicate value: \"a\"",
                "spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"",
            ]
        );
    }

    #[test]
    fn defaults_fill_absent_and_non_nullable_null_fields() {
        let schema = schema(json!({"kind": {"type": "object", "properties": {"spec": {"kind": {"type": "object", "properties": {
            "replicas": {"kind": {"type": "integer"}, "default": 1},
            "mode": {"kind": {"type": "string"}, "default": "fast"},
            "note": {"kind": {"type": "string"}},
            "maybe": {"kind": {"type": "string"}, "nullable": true}
        }}}}}}));
        let mut obj = json!({"spec": {"mode": null, "note": null, "maybe": null}});
        let o = prune_and_validate(&mut obj, &schema);
        assert!(o.errors.is_empty(), "{:?}", o.errors);
        assert_eq!(obj, json!({"spec": {"replicas": 1, "mode": "fast", "maybe": null}}));
    }

    #[test]
    fn embedded_resources_need_kind_and_api_version() {
        let schema = schema(json!({"kind": {"type": "object", "properties": {"spec": {"kind": {"type": "object", "properties": {
            "template": {"kind": {"type": "object", "embedded_resource": true, "properties": {"spec": {"kind": {"type": "object"}}}}}
        }}}}}}));
        let mut obj = json!({"spec": {"template": {"kind": "Pod", "metadata": {"name": "x"}, "spec": {}}}});
        let o = prune_and_validate(&mut obj, &schema);
        assert_eq!(messages(&o), vec!["spec.template.apiVersion: Required value: apiVersion must not be empty"]);
        assert_eq!(obj["spec"]["template"]["metadata"]["name"], "x", "metadata of embedded resources is kept");
    }

    #[test]
    fn names_must_be_subdomains() {
        let errors = validate_metadata(&json!({"metadata": {"name": "Bad_Name"}}), true);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "metadata.name");
        assert!(errors[0].to_string().starts_with("metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"));
        assert!(validate_metadata(&json!({"metadata": {"name": "ok.name-1"}}), true).is_empty());
        assert!(is_qualified_name("example.com/my-label"));
        assert!(!is_qualified_name("-bad"));
    }
}
