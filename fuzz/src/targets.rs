//! One function per fuzz target. Each hands its input to the server's own code — the functions
//! a request goes through, in the order the engine calls them — and panics only when the server
//! would misbehave: a panic inside the server, or a broken invariant checked here (each check
//! says why it must hold). Inputs the server would answer with a 4xx are fine and return early.
//!
//! This file is compiled twice: by the fuzz crate (`fuzz/src/lib.rs`), where libFuzzer calls
//! it, and by `server/tests/fuzz_corpus.rs`, which replays `fuzz/corpus/<target>/` through it on
//! the stable toolchain. It may therefore only use crates both can see (the server's
//! dependencies) and no `crate::` paths.

use apimodel::Schema;
use base64::Engine as _;
use generated::Endpoint;
use serde_json::{json, Value};
use server::engine::selectors::{FieldSelector, LabelSelector};
use server::engine::{cel, decode_body, duplicates, object, validation, ContinueToken};
use server::fieldmanager::FieldManager;
use server::http::negotiate::{self, Encoding};
use server::patch::{self, PatchDocument, PatchType};
use std::sync::OnceLock;

/// A fuzz target: one input, no result; it panics when the server misbehaves.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/Cargo.toml` names its binaries and `fuzz/corpus/` its folders.
pub const ALL: &[(&str, Target)] = &[
    ("body_json", body_json),
    ("body_yaml", body_yaml),
    ("json_patch", json_patch),
    ("merge_patch", merge_patch),
    ("strategic_patch", strategic_patch),
    ("apply_patch", apply_patch),
    ("label_selector", label_selector),
    ("field_selector", field_selector),
    ("continue_token", continue_token),
    ("accept_header", accept_header),
];

/// The body of a create or update (`POST`/`PUT` with `application/json`): decoded, checked for
/// duplicate keys, then admitted as a new object.
pub fn body_json(data: &[u8]) {
    // The server looks for duplicates only in bodies that decoded; the walk must stay harmless
    // on anything else too.
    duplicates::duplicate_fields(data);
    let Ok(object) = decode_body(data, Encoding::Json, kind()) else { return };
    // A decoded value has unique keys, so its own encoding has no duplicates.
    let encoded = serde_json::to_vec(&object).expect("values encode");
    assert!(duplicates::duplicate_fields(&encoded).is_empty(), "duplicates in re-encoded JSON");
    admit(None, object, Recording::Update);
}

/// The body of a create or update sent as `application/yaml`.
pub fn body_yaml(data: &[u8]) {
    let Ok(object) = decode_body(data, Encoding::Yaml, kind()) else { return };
    // Before pruning, the decoded object has any shape, as objects of resources that keep
    // unknown fields do.
    check_yaml_output(&object);
    admit(None, object, Recording::Update);
}

/// `PATCH` with `application/json-patch+json`. Input: the patch, or `<object> NUL <patch>` to
/// patch another stored object than [`stored_foo`].
pub fn json_patch(data: &[u8]) {
    patch_target(PatchType::Json, data);
}

/// `PATCH` with `application/merge-patch+json`; input as for [`json_patch`].
pub fn merge_patch(data: &[u8]) {
    patch_target(PatchType::Merge, data);
}

/// `PATCH` with `application/strategic-merge-patch+json`; input as for [`json_patch`]. The patch
/// is applied with Foo's schema, then once more with [`list_schema`], whose merge lists, sets,
/// list maps and `retainKeys`/`replace` strategies Foo does not have.
pub fn strategic_patch(data: &[u8]) {
    patch_target(PatchType::Strategic, data);
    let (original, patch) = split(data);
    if let Ok(PatchDocument::Object(p)) = patch::parse(PatchType::Strategic, patch) {
        let _ = patch::strategic::strategic_merge(&original, &p, Some(list_schema()));
    }
}

/// `PATCH` with `application/apply-patch+yaml` (server-side apply); input as for
/// [`json_patch`], the configuration being YAML. Applied to the object as `kubectl` (which
/// also takes over from client-side apply), forced as another manager, and as a create.
pub fn apply_patch(data: &[u8]) {
    let (live, body) = split(data);
    let Ok(PatchDocument::Object(config)) = patch::parse(PatchType::Apply, body) else { return };
    let manager = field_manager();
    for (name, force) in [("kubectl", false), ("fuzz", true)] {
        if let Ok(applied) = manager.apply(Some(&live), &config, name, force) {
            admit(Some(&live), applied, Recording::Applied);
        }
    }
    if let Ok(created) = manager.apply(None, &config, "fuzz", false) {
        admit(None, created, Recording::Applied);
    }
}

/// `labelSelector`: parsed, then matched against a few objects.
pub fn label_selector(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(selector) = LabelSelector::parse(&text) else { return };
    for object in sample_objects() {
        selector.matches(object);
    }
}

/// `fieldSelector`, with Foo's selectable fields and with a list that has some.
pub fn field_selector(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let extra = [".spec.msg".to_string(), ".spec.owner.name".to_string()];
    for selectable in [endpoint().version().selectable_fields.as_slice(), &extra] {
        let Ok(selector) = FieldSelector::parse(&text, true, selectable) else { continue };
        selector.exact_name();
        for object in sample_objects() {
            selector.matches(object);
        }
    }
}

/// `continue` of a list: the input as the token, and base64url-encoded as a token's payload
/// (which reaches the JSON inside far more often).
pub fn continue_token(data: &[u8]) {
    check_token(&String::from_utf8_lossy(data));
    check_token(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data));
}

fn check_token(token: &str) {
    let Ok(decoded) = ContinueToken::decode(token) else { return };
    // The list reads storage from `<prefix><after>`: no way out of the prefix.
    assert!(!decoded.after.contains(".."), "accepted a token with '..': {token}");
    // What the server hands out for a position, it must read back as the same position.
    let again = ContinueToken::decode(&decoded.encode()).expect("a re-encoded token decodes");
    assert_eq!(again, decoded);
}

/// `Accept` (and the `Content-Type` helpers that share its parser).
pub fn accept_header(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    negotiate::negotiate_object(Some(&text));
    let preferences = negotiate::accept_preferences(Some(&text));
    assert!(!preferences.is_empty() || !negotiate::parse_media_ranges(&text).is_empty(), "no range, not even */*");
    // Best first, and only acceptable ranges.
    assert!(preferences.iter().all(|r| r.q > 0.0 && r.q <= 1.0));
    assert!(preferences.windows(2).all(|w| w[0].q >= w[1].q));
    negotiate::content_type_essence(Some(&text));
    PatchType::from_content_type(Some(&text));
}

/// The Foo endpoint every target writes through.
fn endpoint() -> &'static Endpoint {
    generated::ENDPOINTS.iter().find(|e| e.resource().names.kind == "Foo").expect("spec/ declares Foo")
}

fn kind() -> &'static str {
    &endpoint().resource().names.kind
}

fn schema() -> &'static Schema {
    &endpoint().version().schema
}

fn field_manager() -> FieldManager<'static> {
    let e = endpoint();
    FieldManager::new(schema(), &e.api_version(), kind(), None, e.version().subresources.status)
}

/// A Foo as a read returns it: every server-owned field set, managed by two managers, with
/// lists (unknown to Foo, kept here for the strategic merge with [`list_schema`]).
fn stored_foo() -> &'static Value {
    static FOO: OnceLock<Value> = OnceLock::new();
    FOO.get_or_init(|| {
        json!({
            "apiVersion": "hello.zeng.dev/v1",
            "kind": "Foo",
            "metadata": {
                "annotations": {"note": "seed"},
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "finalizers": ["example.com/keep"],
                "generation": 3,
                "labels": {"app": "web", "tier": "front"},
                "managedFields": [
                    {"apiVersion": "hello.zeng.dev/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:msg": {}}},
                     "manager": "kubectl", "operation": "Apply", "time": "2025-01-01T00:00:00Z"},
                    {"apiVersion": "hello.zeng.dev/v1", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {".": {}, "f:msg1": {}}},
                     "manager": "kubectl-edit", "operation": "Update", "time": "2025-01-01T00:00:01Z"}
                ],
                "name": "foo",
                "namespace": "default",
                "resourceVersion": "42",
                "uid": "0b6d3c1e-6f0e-4e0c-9a53-2f0d0c7c5a11"
            },
            "spec": {
                "msg": "hello",
                "msg1": "world",
                "parts": [{"name": "a", "size": 1, "tags": ["x"]}, {"name": "b", "size": 2}],
                "tags": ["red", "blue"],
                "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443}],
                "zones": ["z1", "z2"],
                "settings": {"mode": "fast", "level": "high"},
                "payload": {"any": [1, {"thing": null}]}
            }
        })
    })
}

/// Foo's schema with list fields in `spec` of every patch strategy: a merge list keyed by
/// `name` (nested), a merge list of scalars, a list map, a set, a `retainKeys` map and a
/// `replace` map.
fn list_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let string = json!({"kind": {"type": "string"}});
        let integer = json!({"kind": {"type": "integer"}});
        let scalars = |strategy: &str| json!({"patch_strategy": strategy, "kind": {"type": "array", "items": string}});
        let part = |inner: Value| {
            json!({"kind": {"type": "object", "properties": {
                "name": string, "size": integer, "tags": scalars("merge"), "parts": inner
            }}})
        };
        let parts = |item: Value| json!({"patch_strategy": "merge", "patch_merge_key": "name", "kind": {"type": "array", "items": item}});
        let nested = parts(part(parts(part(json!({"kind": {"type": "any"}})))));
        let mut root: Value = serde_json::to_value(schema()).expect("schemas encode");
        let spec = &mut root["kind"]["properties"]["spec"]["kind"]["properties"];
        spec["parts"] = nested;
        spec["tags"] = scalars("merge");
        spec["ports"] = json!({"kind": {"type": "array", "list_type": "map", "list_map_keys": ["port"],
            "items": {"kind": {"type": "object", "properties": {"port": integer, "protocol": string}}}}});
        spec["zones"] = json!({"kind": {"type": "array", "list_type": "set", "items": string}});
        spec["settings"] = json!({"patch_strategy": "retainKeys", "kind": {"type": "object", "properties": {
            "mode": string, "level": string, "flags": scalars("merge")
        }}});
        spec["payload"] = json!({"patch_strategy": "replace", "kind": {"type": "object", "preserve_unknown_fields": true}});
        serde_json::from_value(root).expect("the list schema deserializes")
    })
}

/// Objects selectors are matched against.
fn sample_objects() -> &'static [Value] {
    static OBJECTS: OnceLock<Vec<Value>> = OnceLock::new();
    OBJECTS.get_or_init(|| {
        vec![
            stored_foo().clone(),
            json!({"metadata": {"name": "b", "labels": {"app": "db", "example.com/tier": "", "x": "1"}}, "spec": {"msg": 7, "owner": {"name": "o"}}}),
            json!({"metadata": {"labels": null}, "spec": null}),
            json!([]),
        ]
    })
}

/// Splits a structured input: `<object> NUL <rest>` patches the object before the first NUL
/// (NUL cannot occur in JSON or YAML text, so the split is unambiguous); inputs without NUL
/// patch [`stored_foo`]. An object part that is not a JSON object stands for `{}`.
fn split(data: &[u8]) -> (Value, &[u8]) {
    match data.iter().position(|b| *b == 0) {
        None => (stored_foo().clone(), data),
        Some(at) => {
            let object = serde_json::from_slice::<Value>(&data[..at]).ok().filter(Value::is_object).unwrap_or_else(|| json!({}));
            (object, &data[at + 1..])
        }
    }
}

fn patch_target(patch_type: PatchType, data: &[u8]) {
    let (original, body) = split(data);
    let Ok(document) = patch::parse(patch_type, body) else { return };
    let Ok(patched) = patch::apply(patch_type, &original, &document, schema()) else { return };
    admit(Some(&original), patched, Recording::Update);
}

/// How a write is recorded in managedFields.
#[derive(Clone, Copy, PartialEq)]
enum Recording {
    /// An update by its manager (create, update, JSON/merge/strategic patch).
    Update,
    /// An apply, whose managedFields the field manager already wrote.
    Applied,
}

/// The admission and storage steps every write shares, in the engine's order: prune and
/// validate against the schema, check metadata, run the CEL rules, sort keys, record the
/// manager, encode for storage and read back, and render the response as JSON and YAML.
fn admit(old: Option<&Value>, mut object: Value, recording: Recording) {
    // The engine turns anything but an object away before admission.
    if !object.is_object() {
        return;
    }
    let outcome = validation::prune_and_validate(&mut object, schema());
    let mut errors = validation::validate_metadata(&object, endpoint().resource().namespaced());
    errors.extend(outcome.errors);
    let rules = cel::validate(schema(), &object, old, &errors);
    if !errors.is_empty() || !rules.errors.is_empty() {
        return;
    }
    object::canonicalize(&mut object);
    if recording == Recording::Update {
        field_manager().update(old, &mut object, "fuzz");
    }
    // What is stored must read back, or the object could never be read (nor deleted) again.
    let stored = serde_json::to_vec(&object).expect("admitted objects encode");
    let read: Value = serde_json::from_slice(&stored).unwrap_or_else(|e| panic!("a stored object does not read back: {e}"));
    assert_eq!(read, object, "a stored object reads back different");
    server::http::encode(&read, Encoding::Json, true).expect("responses encode");
    check_yaml_output(&read);
}

/// The YAML the server writes for an object must read back as that object. (Responses are
/// always objects; a bare scalar at the top is never written.)
fn check_yaml_output(object: &Value) {
    if !object.is_object() {
        return;
    }
    let text = server::http::yaml::to_yaml(object);
    let read: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("written YAML does not parse: {e}\n{text}"));
    assert_eq!(&read, object, "written YAML reads back different:\n{text}");
}
