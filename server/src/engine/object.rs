//! Helpers on objects as JSON values: storage keys, metadata access, canonical key order and
//! the server-set metadata fields.

use serde_json::{Map, Value};

/// The storage key prefix of a resource: `/<group>/<plural>/`.
pub fn resource_prefix(group: &str, plural: &str) -> String {
    format!("/{group}/{plural}/")
}

/// The key prefix of a list: one namespace, or the whole resource.
pub fn list_prefix(group: &str, plural: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("/{group}/{plural}/{ns}/"),
        None => resource_prefix(group, plural),
    }
}

/// The storage key of one object.
pub fn object_key(group: &str, plural: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("/{group}/{plural}/{ns}/{name}"),
        None => format!("/{group}/{plural}/{name}"),
    }
}

/// Every field of ObjectMeta, in Go's struct order: anything else in `metadata` is unknown
/// (validation prunes it), and typed metadata (PartialObjectMetadata) is written in this order.
pub const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// `metadata` of an object, created if missing.
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    let root = object.as_object_mut().expect("objects are JSON objects");
    let meta = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("just made an object")
}

/// A string field of `metadata`.
pub fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// How Go's `encoding/json` names the kind of a JSON value in type errors.
pub fn go_json_kind(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    }
}

/// Why `metadata` would not decode into kube's `ObjectMeta`, in Go's words: a field of the
/// wrong JSON type (`null` is fine anywhere, as for Go). Unknown fields are not errors here;
/// pruning reports them.
pub fn object_meta_type_error(object: &Value) -> Option<String> {
    let meta = match object.get("metadata") {
        None | Some(Value::Null) => return None,
        Some(Value::Object(meta)) => meta,
        Some(other) => return Some(format!("json: cannot unmarshal {} into Go value of type v1.ObjectMeta", go_json_kind(other))),
    };
    let wrong = |value: &Value, field: &str, go_type: &str| {
        Some(format!("json: cannot unmarshal {} into Go struct field ObjectMeta.{field} of type {go_type}", go_json_kind(value)))
    };
    for (field, value) in meta {
        if value.is_null() {
            continue;
        }
        match field.as_str() {
            "name" | "generateName" | "namespace" | "selfLink" | "uid" | "resourceVersion" | "creationTimestamp" | "deletionTimestamp" => {
                if !value.is_string() {
                    return wrong(value, field, "string");
                }
            }
            "generation" | "deletionGracePeriodSeconds" => match value {
                Value::Number(n) if n.is_i64() => {}
                // Go shows a number that does not fit the integer (1.5, 1e30).
                Value::Number(n) => {
                    return Some(format!("json: cannot unmarshal number {n} into Go struct field ObjectMeta.{field} of type int64"))
                }
                other => return wrong(other, field, "int64"),
            },
            "labels" | "annotations" => match value {
                Value::Object(map) => {
                    if let Some(v) = map.values().find(|v| !v.is_string() && !v.is_null()) {
                        return Some(format!(
                            "json: cannot unmarshal {} into Go struct field ObjectMeta.{field} of type string",
                            go_json_kind(v)
                        ));
                    }
                }
                other => {
                    return Some(format!(
                        "json: cannot unmarshal {} into Go struct field ObjectMeta.{field} of type map[string]string",
                        go_json_kind(other)
                    ))
                }
            },
            "finalizers" => match value {
                Value::Array(items) => {
                    if let Some(v) = items.iter().find(|v| !v.is_string() && !v.is_null()) {
                        return Some(format!(
                            "json: cannot unmarshal {} into Go struct field ObjectMeta.{field} of type string",
                            go_json_kind(v)
                        ));
                    }
                }
                other => {
                    return Some(format!(
                        "json: cannot unmarshal {} into Go struct field ObjectMeta.{field} of type []string",
                        go_json_kind(other)
                    ))
                }
            },
            "ownerReferences" | "managedFields" => match value {
                Value::Array(items) => {
                    let go_type = if field == "ownerReferences" { "v1.OwnerReference" } else { "v1.ManagedFieldsEntry" };
                    if let Some(v) = items.iter().find(|v| !v.is_object() && !v.is_null()) {
                        return Some(format!(
                            "json: cannot unmarshal {} into Go struct field ObjectMeta.{field} of type {go_type}",
                            go_json_kind(v)
                        ));
                    }
                }
                other => {
                    let go_type = if field == "ownerReferences" { "[]v1.OwnerReference" } else { "[]v1.ManagedFieldsEntry" };
                    return Some(format!(
                        "json: cannot unmarshal {} into Go struct field ObjectMeta.{field} of type {go_type}",
                        go_json_kind(other)
                    ));
                }
            },
            _ => {}
        }
    }
    None
}

/// Sorts every object's keys, recursively: kube-apiserver writes custom resources with sorted
/// keys, and storing them that way lets reads send stored bytes as they are.
pub fn canonicalize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.sort_keys();
            for v in map.values_mut() {
                canonicalize(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(canonicalize),
        _ => {}
    }
}

/// Sets `metadata.resourceVersion`, keeping `metadata`'s keys sorted.
pub fn set_resource_version(object: &mut Value, revision: u64) {
    let meta = metadata_mut(object);
    meta.insert("resourceVersion".into(), Value::String(revision.to_string()));
    meta.sort_keys();
}

/// The current time as kube writes timestamps (RFC 3339, seconds, `Z`).
pub fn now_timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Characters kube uses for generated name suffixes (no vowels, no ambiguous digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `generateName` plus five random characters, the prefix cut so the name fits in 63.
pub fn generate_name(prefix: &str) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let prefix = if prefix.len() > 58 { &prefix[..58] } else { prefix };
    let suffix: String = (0..5).map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char).collect();
    format!("{prefix}{suffix}")
}

/// Whether two objects differ outside `metadata` (and outside `status` when `ignore_status`):
/// the condition for bumping `metadata.generation`.
pub fn spec_changed(old: &Value, new: &Value, ignore_status: bool) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if ignore_status {
            m.remove("status");
        }
        m
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_order_and_resource_version() {
        let mut v = json!({"spec": {"b": 1, "a": [{"z": 1, "y": 2}]}, "metadata": {"uid": "u", "name": "n"}, "apiVersion": "x"});
        canonicalize(&mut v);
        set_resource_version(&mut v, 7);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"apiVersion":"x","metadata":{"name":"n","resourceVersion":"7","uid":"u"},"spec":{"a":[{"y":2,"z":1}],"b":1}}"#
        );
    }

    #[test]
    fn generated_names() {
        let n = generate_name("gen-");
        assert_eq!(n.len(), 9);
        assert!(n.starts_with("gen-"));
        assert_eq!(generate_name(&"a".repeat(70)).len(), 63);
    }

    #[test]
    fn generation_bumps_on_spec_only() {
        let old = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"x": 1}, "status": {"s": 1}});
        assert!(!spec_changed(&old, &json!({"metadata": {}, "spec": {"x": 1}, "status": {"s": 1}}), true));
        assert!(!spec_changed(&old, &json!({"spec": {"x": 1}, "status": {"s": 2}}), true));
        assert!(spec_changed(&old, &json!({"spec": {"x": 1}, "status": {"s": 2}}), false));
        assert!(spec_changed(&old, &json!({"spec": {"x": 2}, "status": {"s": 1}}), true));
    }
}
