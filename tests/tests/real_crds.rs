//! Real-world CRDs as a spec: a server built from every CRD in `../shared/crds/` (one of the two
//! Argo Workflows files; they define the same CRD) serves each of them. For every served version
//! of every CRD it creates an example object, reads it back equal, finds it in a list, shows it
//! in a Table with the CRD's printer columns, explains the type, and answers an object of the
//! wrong shape with kube-apiserver's 422.
//!
//! Examples are made from each version's schema (required fields, enums, bounds, formats,
//! patterns and the first `oneOf`/`anyOf` alternative); `tests/fixtures/real-crd-examples.json`
//! holds the few that need a hand-written spec (CEL rules the generator cannot satisfy).
//!
//! The server is built without the typed Rust resources (the server never uses them), in
//! `target/real-crds`; the first build takes several minutes.

use apimodel::{Resource, Schema, SchemaKind, Version};
use e2e::{build_server, describe, target_dir, workspace_root, BuildOptions, Server, Table};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

const V: &str = "1.33";

/// The spec directory: every CRD file but the minimal Argo Workflows one.
fn spec_dir() -> PathBuf {
    let source = workspace_root().join("../shared/crds");
    let dir = target_dir().join("real-crds-spec");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && !name.starts_with("argo-workflows-minimal") {
            let target = dir.join(&name);
            let bytes = std::fs::read(&path).unwrap();
            // Rewritten only when different, so Cargo does not rebuild for nothing.
            if std::fs::read(&target).ok().as_deref() != Some(&bytes[..]) {
                std::fs::write(&target, &bytes).unwrap();
            }
        }
    }
    dir
}

/// A value the schema accepts, as small as possible: required fields only.
fn example(schema: &Schema, depth: usize) -> Value {
    if let Some(e) = &schema.example {
        return e.clone();
    }
    if let Some(first) = schema.enum_values.as_ref().and_then(|v| v.first()) {
        return first.clone();
    }
    if let Some(d) = &schema.default {
        return d.clone();
    }
    let b = &schema.bounds;
    match &schema.kind {
        SchemaKind::Object { properties, required, embedded_resource, additional_properties, .. } => {
            let mut map = Map::new();
            if *embedded_resource {
                map.insert("apiVersion".into(), json!("v1"));
                map.insert("kind".into(), json!("ConfigMap"));
                map.insert("metadata".into(), json!({"name": "embedded"}));
            }
            let mut wanted: Vec<String> = required.clone();
            // The first alternative of a oneOf/anyOf that names required fields.
            for alternative in schema.composition.one_of.iter().chain(&schema.composition.any_of).take(1) {
                if let Some(names) = alternative.get("required").and_then(Value::as_array) {
                    wanted.extend(names.iter().filter_map(Value::as_str).map(str::to_string));
                }
            }
            for name in wanted {
                if map.contains_key(&name) || depth > 40 {
                    continue;
                }
                if let Some(child) = properties.get(&name) {
                    map.insert(name, example(child, depth + 1));
                }
            }
            let min = b.min_properties.unwrap_or(0) as usize;
            if map.len() < min {
                for (name, child) in properties {
                    if map.len() >= min {
                        break;
                    }
                    if !map.contains_key(name) {
                        map.insert(name.clone(), example(child, depth + 1));
                    }
                }
                if let Some(values) = additional_properties {
                    while map.len() < min {
                        map.insert(format!("key{}", map.len()), example(values, depth + 1));
                    }
                }
            }
            Value::Object(map)
        }
        SchemaKind::Array { items, .. } => {
            let n = b.min_items.unwrap_or(0) as usize;
            Value::Array((0..n).map(|_| example(items, depth + 1)).collect())
        }
        SchemaKind::String => Value::String(string_example(schema)),
        SchemaKind::Integer | SchemaKind::IntOrString => {
            let mut n = match b.minimum {
                Some(m) if b.exclusive_minimum => m.floor() as i64 + 1,
                Some(m) => m.ceil() as i64,
                None => 1,
            };
            if let Some(max) = b.maximum {
                n = n.min(max.floor() as i64 - i64::from(b.exclusive_maximum));
            }
            json!(n)
        }
        SchemaKind::Number => json!(b.minimum.map(|m| if b.exclusive_minimum { m + 0.5 } else { m }).unwrap_or(1.0)),
        SchemaKind::Boolean => json!(false),
        SchemaKind::Any { embedded_resource: true } => json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "embedded"}}),
        SchemaKind::Any { .. } => json!({}),
    }
}

/// A string for the format, fitting the pattern and lengths when one of a few candidates does.
fn string_example(schema: &Schema) -> String {
    let by_format = match schema.format.as_deref().unwrap_or("") {
        "date-time" => "2026-01-01T00:00:00Z",
        "date" => "2026-01-01",
        "duration" => "1m",
        "uri" | "url" => "https://example.com/path",
        "email" => "someone@example.com",
        "hostname" => "example.com",
        "ipv4" | "ip" => "10.0.0.1",
        "ipv6" => "fd00::1",
        "cidr" => "10.0.0.0/8",
        "uuid" => "123e4567-e89b-12d3-a456-426614174000",
        "byte" => "ZXhhbXBsZQ==",
        _ => "example",
    };
    let b = &schema.bounds;
    let fits = |s: &str| {
        let length = s.chars().count() as u64;
        b.min_length.is_none_or(|m| length >= m)
            && b.max_length.is_none_or(|m| length <= m)
            && b.pattern.as_deref().is_none_or(|p| regex::Regex::new(p).is_ok_and(|r| r.is_match(s)))
    };
    let candidates = [
        by_format,
        "example",
        "a",
        "1",
        "1m",
        "1s",
        "10s",
        "v1",
        "a1",
        "example.com",
        "example-1",
        "Example",
        "EXAMPLE",
        "10.0.0.1",
        "https://example.com",
        "1.0.0",
        "/path",
        "key=value",
        "example.com/name",
        "100Mi",
        "1Gi",
        "0",
        "true",
    ];
    if let Some(found) = candidates.iter().find(|c| fits(c)) {
        return found.to_string();
    }
    let mut s = by_format.to_string();
    while b.min_length.is_some_and(|m| (s.len() as u64) < m) {
        s.push('a');
    }
    s
}

/// The hand-written specs, by `<plural>.<group>/<version>`.
fn overrides() -> Map<String, Value> {
    let path = workspace_root().join("tests/fixtures/real-crd-examples.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn collection(resource: &Resource, version: &Version) -> String {
    match resource.namespaced() {
        true => format!("/apis/{}/{}/namespaces/default/{}", resource.group, version.name, resource.names.plural),
        false => format!("/apis/{}/{}/{}", resource.group, version.name, resource.names.plural),
    }
}

/// Strips what changes on every read (nothing should) and compares.
fn same_object(a: &Value, b: &Value) -> bool {
    a == b
}

#[test]
fn every_real_crd_is_served() {
    let dir = spec_dir();
    let raw = codegen::spec::load(&dir).unwrap_or_else(|d| panic!("{d}"));
    let model = codegen::model::build(&raw).unwrap_or_else(|d| panic!("{d}"));
    let binary = build_server(&BuildOptions { target_dir: Some(target_dir().join("real-crds")), spec_dir: Some(dir) });
    let server = Server::start_binary(&binary);
    let overrides = overrides();
    let mut failures = Vec::new();
    let mut served = 0;

    for resource in &model.resources {
        for version in resource.versions.iter().filter(|v| v.served) {
            served += 1;
            let id = format!("{}/{}", resource.qualified_name(), version.name);
            let api_version = format!("{}/{}", resource.group, version.name);
            let name = format!("example-{}", version.name);
            let mut object = match example(&version.schema, 0) {
                Value::Object(map) => map,
                other => panic!("{id}: the root example is {other}"),
            };
            if let Some(spec) = overrides.get(&id) {
                object.insert("spec".into(), spec.clone());
            }
            object.insert("apiVersion".into(), json!(api_version));
            object.insert("kind".into(), json!(resource.names.kind));
            object.insert("metadata".into(), json!({"name": name}));
            let object = Value::Object(object);
            let path = collection(resource, version);

            // Create, then read back what the create answered.
            let out = server.create_raw(&path, &object.to_string());
            if !out.status.success() {
                failures.push(format!("{id}: create failed: {}\n  sent: {object}", describe("create", &out)));
                continue;
            }
            let created: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            let read = server.get_raw_json(&format!("{path}/{name}"));
            if !same_object(&created, &read) {
                failures.push(format!("{id}: read back differs from the create answer:\n  created {created}\n  read    {read}"));
            }
            let list = server.get_raw_json(&path);
            if !list["items"].as_array().is_some_and(|items| items.iter().any(|i| i["metadata"]["name"] == name.as_str())) {
                failures.push(format!("{id}: the list lacks {name}"));
            }

            // Table: the CRD's printer columns, all of them with -o wide.
            let resource_arg = format!("{}.{}.{}", resource.names.plural, version.name, resource.group);
            let mut args = vec!["get", resource_arg.as_str(), name.as_str(), "-o", "wide"];
            if resource.namespaced() {
                args.extend(["-n", "default"]);
            }
            let out = server.kubectl(V, &args);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut expected: Vec<String> = vec!["NAME".into()];
            if version.printer_columns.is_empty() {
                expected.push("AGE".into());
            }
            expected.extend(version.printer_columns.iter().map(|c| c.name.to_uppercase()));
            if !out.status.success() {
                failures.push(format!("{id}: {}", describe("kubectl get -o wide", &out)));
            } else {
                // Headers may contain spaces; compare the header line with the names joined.
                let header = text.lines().next().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
                if header != expected.join(" ").split_whitespace().collect::<Vec<_>>().join(" ") {
                    failures.push(format!("{id}: table header {header:?}, expected {:?}", expected.join(" ")));
                }
                let table = Table::parse(&text);
                if table.row_where("NAME", &name).is_none() {
                    failures.push(format!("{id}: no row for {name}:\n{text}"));
                }
            }

            // kubectl explain, for this version.
            let out = server.kubectl(V, &["explain", &resource.names.plural, &format!("--api-version={api_version}")]);
            let text = String::from_utf8_lossy(&out.stdout);
            if !out.status.success()
                || !text.contains(&format!("KIND:       {}", resource.names.kind))
                || !text.contains(&format!("VERSION:    {}", version.name))
            {
                failures.push(format!("{id}: {}", describe("kubectl explain", &out)));
            }

            // An object of the wrong shape: kube-apiserver's 422 for a type mismatch.
            let object_field = match &version.schema.kind {
                SchemaKind::Object { properties, .. } => properties
                    .iter()
                    .find(|(k, s)| !matches!(k.as_str(), "metadata" | "apiVersion" | "kind") && matches!(s.kind, SchemaKind::Object { .. }))
                    .map(|(k, _)| k.clone()),
                _ => None,
            };
            if let Some(field) = object_field {
                let bad =
                    json!({"apiVersion": api_version, "kind": resource.names.kind, "metadata": {"name": "bad"}, field.clone(): "text"});
                let out = server.create_raw(&path, &bad.to_string());
                let stderr = String::from_utf8_lossy(&out.stderr);
                let message = format!("{field}: Invalid value: \"string\": {field} in body must be of type object: \"string\"");
                // kubectl prints a 422 with causes as `The <Kind> "<name>" is invalid: <causes>`.
                let head = format!("The {} \"bad\" is invalid: ", resource.names.kind);
                if out.status.success() || !stderr.contains(&head) || !stderr.contains(&message) {
                    failures
                        .push(format!("{id}: a {field} of the wrong type: expected {head}…{message}\n{}", describe("create bad", &out)));
                }
            }
        }
    }
    assert!(served >= 70, "the corpus serves over 70 versions; {served} found");
    assert!(failures.is_empty(), "{} of {served} served versions failed:\n\n{}", failures.len(), failures.join("\n\n"));
}
