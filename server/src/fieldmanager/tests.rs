//! Scenario tests: sequences of applies and updates by several managers over a small schema,
//! with the object and the managedFields expected at the end. The scenarios restate, in our own
//! terms, the situations Kubernetes' structured-merge-diff tests cover: appliers sharing and
//! fighting over fields, applies after updates, set and map lists, atomic parts, removal of what
//! an applier stops declaring, conflicts and force.

use super::*;
use serde_json::json;

/// A schema from a compact OpenAPI-like JSON (only what the merge reads).
fn schema(v: &Value) -> Schema {
    use apimodel::{ListType, MapType, SchemaKind};
    let text = |k: &str| v.get(k).and_then(Value::as_str);
    let kind = match text("type") {
        Some("object") => SchemaKind::Object {
            properties: v
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.iter().map(|(k, s)| (k.clone(), schema(s))).collect())
                .unwrap_or_default(),
            required: vec![],
            additional_properties: v.get("additionalProperties").map(|s| Box::new(schema(s))),
            preserve_unknown_fields: v.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true)),
            embedded_resource: false,
            map_type: match text("x-kubernetes-map-type") {
                Some("atomic") => Some(MapType::Atomic),
                Some("granular") => Some(MapType::Granular),
                _ => None,
            },
        },
        Some("array") => SchemaKind::Array {
            items: Box::new(schema(&v["items"])),
            list_type: match text("x-kubernetes-list-type") {
                Some("atomic") => Some(ListType::Atomic),
                Some("set") => Some(ListType::Set),
                Some("map") => Some(ListType::Map),
                _ => None,
            },
            list_map_keys: v
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|ks| ks.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
        },
        Some("string") => SchemaKind::String,
        Some("integer") => SchemaKind::Integer,
        Some("number") => SchemaKind::Number,
        Some("boolean") => SchemaKind::Boolean,
        _ => SchemaKind::Any { embedded_resource: false },
    };
    Schema { kind, default: v.get("default").cloned(), nullable: v.get("nullable") == Some(&json!(true)), ..Schema::default() }
}

/// The schema most scenarios use.
fn test_schema() -> Schema {
    let string = json!({"type": "string"});
    schema(&json!({"type": "object", "properties": {
        "set": {"type": "array", "x-kubernetes-list-type": "set", "items": string},
        "atomicList": {"type": "array", "items": string},
        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"], "items": {"type": "object", "properties": {
            "name": string, "value": {"type": "integer"}, "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": string},
        }}},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"], "items": {"type": "object", "properties": {
            "port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}, "name": string,
        }}},
        "labels": {"type": "object", "additionalProperties": string},
        "atomicMap": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": string},
        "struct": {"type": "object", "properties": {"name": string, "a": string, "b": string, "inner": {"type": "object", "properties": {"x": string}}}},
        "blob": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "status": {"type": "object", "properties": {"phase": string}},
    }}))
}

/// One step of a scenario.
enum Step {
    /// An apply of the given fields (identity metadata is added).
    Apply(&'static str, Value),
    /// A forced apply.
    Force(&'static str, Value),
    /// An apply expected to fail with this conflict message.
    Conflicts(&'static str, Value, &'static str),
    /// An update to exactly the given fields.
    Update(&'static str, Value),
}

struct Scenario {
    name: &'static str,
    steps: Vec<Step>,
    /// The object at the end, without identity metadata.
    object: Value,
    /// `(manager, operation, fieldsV1)` at the end, in any order.
    managed: Vec<(&'static str, &'static str, Value)>,
}

/// Adds what every object has.
fn with_identity(fields: &Value) -> Value {
    let mut object = json!({"apiVersion": "t.io/v1", "kind": "T", "metadata": {"name": "x"}});
    for (k, v) in fields.as_object().unwrap() {
        object[k] = v.clone();
    }
    object
}

fn run(fm: &FieldManager<'_>, scenario: &Scenario) {
    let name = scenario.name;
    let mut live: Option<Value> = None;
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    for (i, step) in scenario.steps.iter().enumerate() {
        match step {
            Step::Apply(manager, fields) | Step::Force(manager, fields) => {
                let force = matches!(step, Step::Force(..));
                let applied = fm
                    .apply_at(live.as_ref(), &with_identity(fields), manager, force, now)
                    .unwrap_or_else(|e| panic!("{name}: step {i}: {}", e.message));
                live = Some(applied);
            }
            Step::Conflicts(manager, fields, message) => {
                let error = fm.apply_at(live.as_ref(), &with_identity(fields), manager, false, now).expect_err(name);
                assert_eq!(error.code, 409, "{name}: step {i}");
                assert_eq!(error.message, *message, "{name}: step {i}");
            }
            Step::Update(manager, fields) => {
                let mut new = with_identity(fields);
                fm.update_at(live.as_ref(), &mut new, manager, now);
                // Stored objects have a uid: later writes are updates, not creates.
                new["metadata"]["uid"] = json!("uid-1");
                live = Some(new);
            }
        }
    }
    let mut object = live.unwrap();
    let managed = object["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    let map = object.as_object_mut().unwrap();
    for identity in ["apiVersion", "kind", "metadata"] {
        map.remove(identity);
    }
    assert_eq!(object, scenario.object, "{name}: object");
    let mut got: Vec<(String, String, Value)> = managed
        .iter()
        .map(|e| (e["manager"].as_str().unwrap().to_string(), e["operation"].as_str().unwrap().to_string(), e["fieldsV1"].clone()))
        .collect();
    let mut want: Vec<(String, String, Value)> =
        scenario.managed.iter().map(|(m, o, f)| (m.to_string(), o.to_string(), f.clone())).collect();
    got.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    want.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(got, want, "{name}: managedFields");
}

fn scenarios() -> Vec<Scenario> {
    use Step::*;
    vec![
        Scenario {
            name: "an applier growing its set owns every item",
            steps: vec![Apply("a", json!({"set": ["x", "z"]})), Apply("a", json!({"set": ["x", "y", "z", "w"]}))],
            object: json!({"set": ["x", "y", "z", "w"]}),
            managed: vec![("a", "Apply", json!({"f:set": {"v:\"w\"": {}, "v:\"x\"": {}, "v:\"y\"": {}, "v:\"z\"": {}}}))],
        },
        Scenario {
            name: "items another writer added keep their place between the applier's",
            steps: vec![
                Apply("a", json!({"set": ["p", "r"]})),
                Update("ctl", json!({"set": ["p", "q", "r", "s"]})),
                Apply("a", json!({"set": ["p", "p2", "r", "r2"]})),
            ],
            object: json!({"set": ["p", "q", "p2", "r", "s", "r2"]}),
            managed: vec![
                ("a", "Apply", json!({"f:set": {"v:\"p\"": {}, "v:\"p2\"": {}, "v:\"r\"": {}, "v:\"r2\"": {}}})),
                ("ctl", "Update", json!({"f:set": {"v:\"q\"": {}, "v:\"s\"": {}}})),
            ],
        },
        Scenario {
            name: "an item set by both an updater and the applier is shared",
            steps: vec![
                Apply("a", json!({"set": ["p", "r"]})),
                Update("ctl", json!({"set": ["p", "q", "r", "s"]})),
                Apply("a", json!({"set": ["p", "q", "r"]})),
            ],
            object: json!({"set": ["p", "q", "r", "s"]}),
            managed: vec![
                ("a", "Apply", json!({"f:set": {"v:\"p\"": {}, "v:\"q\"": {}, "v:\"r\"": {}}})),
                ("ctl", "Update", json!({"f:set": {"v:\"q\"": {}, "v:\"s\"": {}}})),
            ],
        },
        Scenario {
            name: "the applier's order wins, a reorder by an updater owns nothing",
            steps: vec![
                Apply("a", json!({"set": ["w", "x", "y"]})),
                Update("ctl", json!({"set": ["y", "x", "w"]})),
                Apply("a", json!({"set": ["x", "w", "y"]})),
            ],
            object: json!({"set": ["x", "w", "y"]}),
            managed: vec![("a", "Apply", json!({"f:set": {"v:\"w\"": {}, "v:\"x\"": {}, "v:\"y\"": {}}}))],
        },
        Scenario {
            name: "an item dropped by its only applier is removed, one shared with another applier stays",
            steps: vec![Apply("a", json!({"set": ["x", "y", "z"]})), Apply("b", json!({"set": ["z"]})), Apply("a", json!({"set": ["x"]}))],
            object: json!({"set": ["x", "z"]}),
            managed: vec![("a", "Apply", json!({"f:set": {"v:\"x\"": {}}})), ("b", "Apply", json!({"f:set": {"v:\"z\"": {}}}))],
        },
        Scenario {
            name: "map-list items merge by key, each applier owning its own",
            steps: vec![
                Apply("a", json!({"items": [{"name": "one", "value": 1}]})),
                Apply("b", json!({"items": [{"name": "two", "value": 2}]})),
            ],
            object: json!({"items": [{"name": "one", "value": 1}, {"name": "two", "value": 2}]}),
            managed: vec![
                ("a", "Apply", json!({"f:items": {"k:{\"name\":\"one\"}": {".": {}, "f:name": {}, "f:value": {}}}})),
                ("b", "Apply", json!({"f:items": {"k:{\"name\":\"two\"}": {".": {}, "f:name": {}, "f:value": {}}}})),
            ],
        },
        Scenario {
            name: "a different value under another applier's key conflicts; forced, the value moves",
            steps: vec![
                Apply("a", json!({"items": [{"name": "one", "value": 1}]})),
                Conflicts(
                    "b",
                    json!({"items": [{"name": "one", "value": 2}]}),
                    "Apply failed with 1 conflict: conflict with \"a\": .items[name=\"one\"].value",
                ),
                Force("b", json!({"items": [{"name": "one", "value": 2}]})),
            ],
            object: json!({"items": [{"name": "one", "value": 2}]}),
            managed: vec![
                ("a", "Apply", json!({"f:items": {"k:{\"name\":\"one\"}": {".": {}, "f:name": {}}}})),
                ("b", "Apply", json!({"f:items": {"k:{\"name\":\"one\"}": {".": {}, "f:name": {}, "f:value": {}}}})),
            ],
        },
        Scenario {
            name: "re-applying after an updater changed the applier's field conflicts with the updater",
            steps: vec![
                Apply("a", json!({"struct": {"name": "n", "a": "1"}})),
                Update("ctl", json!({"struct": {"name": "n", "a": "2"}})),
                Conflicts(
                    "a",
                    json!({"struct": {"name": "n", "a": "1"}}),
                    "Apply failed with 1 conflict: conflict with \"ctl\" using t.io/v1: .struct.a",
                ),
            ],
            object: json!({"struct": {"name": "n", "a": "2"}}),
            managed: vec![("a", "Apply", json!({"f:struct": {"f:name": {}}})), ("ctl", "Update", json!({"f:struct": {"f:a": {}}}))],
        },
        Scenario {
            name: "an applier's first apply conflicts with whoever created the field; force takes it",
            steps: vec![
                Update("creator", json!({"struct": {"a": "1", "b": "1"}})),
                Conflicts(
                    "a",
                    json!({"struct": {"a": "2", "b": "2"}}),
                    "Apply failed with 2 conflicts: conflicts with \"creator\" using t.io/v1:\n- .struct.a\n- .struct.b",
                ),
                Force("a", json!({"struct": {"a": "2"}})),
            ],
            object: json!({"struct": {"a": "2", "b": "1"}}),
            managed: vec![
                ("a", "Apply", json!({"f:struct": {"f:a": {}}})),
                ("creator", "Update", json!({"f:struct": {".": {}, "f:b": {}}})),
            ],
        },
        Scenario {
            name: "two appliers agreeing on a value share it without conflict",
            steps: vec![Apply("a", json!({"struct": {"a": "same"}})), Apply("b", json!({"struct": {"a": "same"}}))],
            object: json!({"struct": {"a": "same"}}),
            managed: vec![("a", "Apply", json!({"f:struct": {"f:a": {}}})), ("b", "Apply", json!({"f:struct": {"f:a": {}}}))],
        },
        Scenario {
            name: "a field dropped by its only owner is removed",
            steps: vec![Apply("a", json!({"struct": {"a": "1", "b": "2"}})), Apply("a", json!({"struct": {"a": "1"}}))],
            object: json!({"struct": {"a": "1"}}),
            managed: vec![("a", "Apply", json!({"f:struct": {"f:a": {}}}))],
        },
        Scenario {
            name: "a field dropped by the applier after an updater set it too stays",
            steps: vec![
                Update("ctl", json!({"struct": {"name": "n", "b": "v"}})),
                Force("a", json!({"struct": {"name": "n", "b": "v"}})),
                Apply("a", json!({"struct": {"name": "n"}})),
            ],
            object: json!({"struct": {"name": "n", "b": "v"}}),
            managed: vec![
                ("a", "Apply", json!({"f:struct": {"f:name": {}}})),
                ("ctl", "Update", json!({"f:struct": {".": {}, "f:b": {}, "f:name": {}}})),
            ],
        },
        Scenario {
            name: "a whole struct dropped by its only applier goes away",
            steps: vec![
                Apply("a", json!({"struct": {"inner": {"x": "1"}}, "labels": {"k": "v"}})),
                Apply("a", json!({"labels": {"k": "v"}})),
            ],
            object: json!({"labels": {"k": "v"}}),
            managed: vec![("a", "Apply", json!({"f:labels": {"f:k": {}}}))],
        },
        Scenario {
            name: "a nested item keeps what other managers own when its applier drops it",
            steps: vec![
                Apply("one", json!({"items": [{"name": "a"}, {"name": "b", "tags": ["c"]}]})),
                Apply("two", json!({"items": [{"name": "b", "tags": ["d"]}]})),
                Update("ctl", json!({"items": [{"name": "a"}, {"name": "b", "tags": ["c", "d", "e"]}]})),
                Apply("one", json!({"items": [{"name": "a"}]})),
            ],
            object: json!({"items": [{"name": "a"}, {"name": "b", "tags": ["d", "e"]}]}),
            managed: vec![
                ("one", "Apply", json!({"f:items": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}}}})),
                ("two", "Apply", json!({"f:items": {"k:{\"name\":\"b\"}": {".": {}, "f:name": {}, "f:tags": {"v:\"d\"": {}}}}})),
                ("ctl", "Update", json!({"f:items": {"k:{\"name\":\"b\"}": {"f:tags": {"v:\"e\"": {}}}}})),
            ],
        },
        Scenario {
            name: "granular map keys are owned one by one",
            steps: vec![Apply("a", json!({"labels": {"x": "1"}})), Apply("b", json!({"labels": {"y": "2"}}))],
            object: json!({"labels": {"x": "1", "y": "2"}}),
            managed: vec![("a", "Apply", json!({"f:labels": {"f:x": {}}})), ("b", "Apply", json!({"f:labels": {"f:y": {}}}))],
        },
        Scenario {
            name: "an atomic map is one field, replaced as a whole",
            steps: vec![
                Apply("a", json!({"atomicMap": {"x": "1"}})),
                Conflicts("b", json!({"atomicMap": {"y": "2"}}), "Apply failed with 1 conflict: conflict with \"a\": .atomicMap"),
                Force("b", json!({"atomicMap": {"y": "2"}})),
            ],
            object: json!({"atomicMap": {"y": "2"}}),
            managed: vec![("b", "Apply", json!({"f:atomicMap": {}}))],
        },
        Scenario {
            name: "lists without a list type are atomic",
            steps: vec![
                Apply("a", json!({"atomicList": ["1", "2"]})),
                Conflicts("b", json!({"atomicList": ["3"]}), "Apply failed with 1 conflict: conflict with \"a\": .atomicList"),
            ],
            object: json!({"atomicList": ["1", "2"]}),
            managed: vec![("a", "Apply", json!({"f:atomicList": {}}))],
        },
        Scenario {
            name: "a missing key field takes its default",
            steps: vec![
                Apply("a", json!({"ports": [{"port": 80, "name": "http"}]})),
                Apply("b", json!({"ports": [{"port": 80, "protocol": "UDP", "name": "dns"}]})),
            ],
            object: json!({"ports": [{"port": 80, "name": "http"}, {"port": 80, "protocol": "UDP", "name": "dns"}]}),
            managed: vec![
                ("a", "Apply", json!({"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}}}})),
                (
                    "b",
                    "Apply",
                    json!({"f:ports": {"k:{\"port\":80,\"protocol\":\"UDP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}}}}),
                ),
            ],
        },
        Scenario {
            name: "untyped maps merge key by key",
            steps: vec![Apply("a", json!({"blob": {"m": {"x": 1}, "l": [1]}})), Apply("b", json!({"blob": {"m": {"y": 2}}}))],
            object: json!({"blob": {"m": {"x": 1, "y": 2}, "l": [1]}}),
            managed: vec![
                ("a", "Apply", json!({"f:blob": {"f:l": {}, "f:m": {".": {}, "f:x": {}}}})),
                ("b", "Apply", json!({"f:blob": {"f:m": {".": {}, "f:y": {}}}})),
            ],
        },
        Scenario {
            name: "updates by one manager accumulate in one entry; others lose what it changes",
            steps: vec![
                Update("creator", json!({"struct": {"a": "1"}, "labels": {"k": "v"}})),
                Update("editor", json!({"struct": {"a": "2"}, "labels": {"k": "v"}})),
                Update("editor", json!({"struct": {"a": "2"}, "labels": {"k": "v", "j": "w"}})),
            ],
            object: json!({"struct": {"a": "2"}, "labels": {"k": "v", "j": "w"}}),
            managed: vec![
                ("creator", "Update", json!({"f:labels": {".": {}, "f:k": {}}, "f:struct": {}})),
                ("editor", "Update", json!({"f:labels": {"f:j": {}}, "f:struct": {"f:a": {}}})),
            ],
        },
        Scenario {
            name: "removing a field takes it from its owner",
            steps: vec![Update("creator", json!({"labels": {"k": "v", "j": "w"}})), Update("editor", json!({"labels": {"k": "v"}}))],
            object: json!({"labels": {"k": "v"}}),
            managed: vec![("creator", "Update", json!({"f:labels": {".": {}, "f:k": {}}}))],
        },
        Scenario {
            name: "an empty map is a field of its own, an empty set owns no item",
            steps: vec![Apply("a", json!({"labels": {}, "set": []}))],
            object: json!({"labels": {}, "set": []}),
            managed: vec![("a", "Apply", json!({"f:labels": {}}))],
        },
    ]
}

#[test]
fn scenarios_from_structured_merge_diff() {
    let schema = test_schema();
    let fm = FieldManager::new(&schema, "t.io/v1", "T", None, false);
    for scenario in scenarios() {
        run(&fm, &scenario);
    }
}

#[test]
fn status_is_not_owned_through_the_main_resource_with_a_status_subresource() {
    let schema = test_schema();
    let main = FieldManager::new(&schema, "t.io/v1", "T", None, true);
    let config = with_identity(&json!({"struct": {"a": "1"}, "status": {"phase": "Ready"}}));
    let applied = main.apply(None, &config, "a", false).unwrap();
    assert_eq!(applied["metadata"]["managedFields"][0]["fieldsV1"], json!({"f:struct": {"f:a": {}}}));

    let status = FieldManager::new(&schema, "t.io/v1", "T", Some("status"), true);
    let mut written = applied.clone();
    written["metadata"]["uid"] = json!("u");
    let live = written.clone();
    written["status"] = json!({"phase": "Done"});
    status.update(Some(&live), &mut written, "ctl");
    let entries = written["metadata"]["managedFields"].as_array().unwrap();
    let ctl = entries.iter().find(|e| e["manager"] == "ctl").unwrap();
    assert_eq!(ctl["subresource"], "status");
    assert_eq!(ctl["fieldsV1"], json!({"f:status": {"f:phase": {}}}));
}

#[test]
fn apply_errors_are_worded_as_kube_words_them() {
    let schema = test_schema();
    let fm = FieldManager::new(&schema, "t.io/v1", "T", None, false);
    let bad_kind = json!({"apiVersion": "t.io/v2", "kind": "T", "metadata": {"name": "x"}});
    assert_eq!(fm.apply(None, &bad_kind, "a", false).unwrap_err().message, "invalid object type: t.io/v2, Kind=T");
    let with_managed = with_identity(&json!({"metadata": {"name": "x", "managedFields": []}}));
    assert_eq!(fm.apply(None, &with_managed, "a", false).unwrap_err().message, "metadata.managedFields must be nil");
    let unknown = with_identity(&json!({"struct": {"nope": 1}, "set": ["a", "a"]}));
    let error = fm.apply(None, &unknown, "a", false).unwrap_err();
    assert_eq!(error.code, 500);
    assert_eq!(error.message, "failed to create typed patch object (/x; t.io/v1, Kind=T): errors:\n  .set: duplicate entries for key [=\"a\"]\n  .struct.nope: field not declared in schema");
    let keyless = with_identity(&json!({"items": [{"value": 1}]}));
    assert!(fm.apply(None, &keyless, "a", false).unwrap_err().message.ends_with(".items: element 0: associative list with keys has an element that omits all key fields [\"name\"] (and doesn't have default values for any key fields)"));

    let error = validate_options(WriteOptions::Patch { apply: true, force_given: false }, None).unwrap_err().to_json();
    assert_eq!(
        error,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch","reason":"Invalid","details":{"group":"meta.k8s.io","kind":"PatchOptions","causes":[{"reason":"FieldValueRequired","message":"Required value: is required for apply patch","field":"fieldManager"}]},"code":422})
    );
    let forced = validate_options(WriteOptions::Patch { apply: false, force_given: true }, Some("m")).unwrap_err();
    assert_eq!(forced.message, "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch");
}

#[test]
fn untracked_objects_stay_untracked_until_applied() {
    let schema = test_schema();
    let fm = FieldManager::new(&schema, "t.io/v1", "T", None, false);
    let mut live = with_identity(&json!({"struct": {"a": "1"}}));
    live["metadata"]["uid"] = json!("u");
    // An update of an object without managedFields records nothing.
    let mut updated = with_identity(&json!({"struct": {"a": "2"}}));
    fm.update(Some(&live), &mut updated, "editor");
    assert_eq!(updated["metadata"].get("managedFields"), None);
    // `managedFields: []` clears them on an update.
    let mut tracked = live.clone();
    fm.update(None, &mut tracked, "creator");
    tracked["metadata"]["managedFields"] = json!([]);
    fm.update(Some(&live), &mut tracked, "editor");
    assert_eq!(tracked["metadata"].get("managedFields"), None);
    // The first apply attributes what exists to `before-first-apply`, and conflicts with it.
    let config = with_identity(&json!({"struct": {"a": "3"}}));
    let error = fm.apply(Some(&live), &config, "a", false).unwrap_err();
    assert_eq!(error.message, "Apply failed with 1 conflict: conflict with \"before-first-apply\" using t.io/v1: .struct.a");
}

#[test]
fn kubectl_applies_forgive_what_client_side_apply_last_applied() {
    let schema = test_schema();
    let fm = FieldManager::new(&schema, "t.io/v1", "T", None, false);
    let last = "{\"apiVersion\":\"t.io/v1\",\"kind\":\"T\",\"metadata\":{\"annotations\":{},\"name\":\"x\"},\"struct\":{\"a\":\"1\",\"b\":\"1\"}}\n";
    let mut live = with_identity(&json!({"struct": {"a": "1", "b": "changed-since"}}));
    live["metadata"]["annotations"] = json!({lastapplied::ANNOTATION: last});
    fm.update(None, &mut live, "kubectl-client-side-apply");
    live["metadata"]["uid"] = json!("u");
    // `a` still has the last applied value: taken over without conflict. `b` does not.
    let config = with_identity(&json!({"struct": {"a": "2", "b": "2"}}));
    let error = fm.apply(Some(&live), &config, "kubectl", false).unwrap_err();
    assert_eq!(error.message, "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using t.io/v1: .struct.b");
    let config = with_identity(&json!({"struct": {"a": "2"}}));
    let applied = fm.apply(Some(&live), &config, "kubectl", false).unwrap();
    assert_eq!(applied["struct"]["a"], "2");
    // The annotation follows what kubectl applies.
    let annotation = applied["metadata"]["annotations"][lastapplied::ANNOTATION].as_str().unwrap();
    assert_eq!(annotation, "{\"apiVersion\":\"t.io/v1\",\"kind\":\"T\",\"metadata\":{\"name\":\"x\"},\"struct\":{\"a\":\"2\"}}\n");
    // Other managers get no such help.
    assert_eq!(fm.apply(Some(&live), &config, "other", false).unwrap_err().code, 409);
}

#[test]
fn timestamps_alone_do_not_make_a_change() {
    let old = json!({"metadata": {"managedFields": [{"manager": "a", "time": "2024-01-01T00:00:00Z"}]}, "spec": 1});
    let mut same = json!({"metadata": {"managedFields": [{"manager": "a", "time": "2024-06-01T00:00:00Z"}]}, "spec": 1});
    keep_timestamps_of_noop(&old, &mut same);
    assert_eq!(same, old);
    let mut changed = json!({"metadata": {"managedFields": [{"manager": "a", "time": "2024-06-01T00:00:00Z"}]}, "spec": 2});
    keep_timestamps_of_noop(&old, &mut changed);
    assert_eq!(changed["metadata"]["managedFields"][0]["time"], "2024-06-01T00:00:00Z");
}

#[test]
fn managers_from_user_agents() {
    assert_eq!(manager_for_update(None, Some("anchor-capture/v1.0 (linux/amd64)")), "anchor-capture");
    assert_eq!(manager_for_update(Some("mine"), Some("kubectl/v1.33")), "mine");
    assert_eq!(manager_for_update(Some(""), Some("kubectl.1.33/v1.33.1 (linux/amd64) kubernetes/8adc0f0")), "kubectl.1.33");
    assert_eq!(manager_for_update(None, None), "");
    assert_eq!(manager_for_update(None, Some(&"x".repeat(200))).len(), 128);
}
