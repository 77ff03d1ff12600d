//! OpenAPI v3 documents, one per served group-version, shaped as kube-apiserver publishes CRDs
//! (`/openapi/v3/apis/<group>/<version>`), and the `/openapi/v3` index that points at them.
//!
//! The only deliberate difference from kube-apiserver: PATCH operations also list
//! `application/strategic-merge-patch+json`, because our server implements strategic merge patch
//! for custom resources and kubectl 1.29+ picks the `apply` patch type from this document.

use super::openapi_common::{definitions, operation_gvk, responses, served, tag, Dialect, Location, Operation, Param, PathItem, Served};
use apimodel::Model;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};
use std::collections::BTreeMap;

/// Content types of responses, in the (sorted) order kube-apiserver lists them.
const PRODUCES: [&str; 2] = ["application/json", "application/yaml"];

/// Builds one OpenAPI 3.0 document per served group-version, keyed by `apis/<group>/<version>`.
pub fn openapi_v3(model: &Model) -> BTreeMap<String, Value> {
    let mut docs = BTreeMap::new();
    for group in model.groups() {
        for version in model.group_versions(group) {
            let served = served(model, Some((group, version)));
            docs.insert(format!("apis/{group}/{version}"), document(&served));
        }
    }
    docs
}

/// The `/openapi/v3` index: for each document, its URL with the uppercase hex SHA-512 of its
/// serialized bytes as `hash`, which kube-apiserver uses to let clients cache documents
/// forever. `docs` maps `apis/<group>/<version>` to the exact bytes served (see
/// [`super::openapi_common::to_json_bytes`]).
pub fn openapi_v3_index(docs: &BTreeMap<String, Vec<u8>>) -> Value {
    let paths: Map<String, Value> = docs
        .iter()
        .map(|(key, bytes)| {
            let hash: String = Sha512::digest(bytes).iter().map(|b| format!("{b:02X}")).collect();
            (key.clone(), json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}") }))
        })
        .collect();
    json!({ "paths": paths })
}

/// One group-version's document.
fn document(served: &[Served<'_>]) -> Value {
    let mut paths: BTreeMap<String, Value> = BTreeMap::new();
    for s in served {
        for item in s.paths() {
            paths.insert(item.path.clone(), path_item(*s, &item));
        }
    }
    let paths = Value::Object(paths.into_iter().collect());
    let schemas = definitions(served, &paths, Dialect::V3);
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

fn path_item(served: Served<'_>, item: &PathItem) -> Value {
    let mut m = Map::new();
    for op in &item.operations {
        m.insert(op.method.key().into(), operation(served, op));
    }
    if !item.params.is_empty() {
        m.insert("parameters".into(), item.params.iter().map(parameter).collect());
    }
    Value::Object(m)
}

fn operation(served: Served<'_>, op: &Operation) -> Value {
    let gvk = served.gvk();
    let mut m = Map::new();
    m.insert("tags".into(), json!([tag(gvk.group, gvk.version)]));
    m.insert("description".into(), json!(op.description));
    m.insert("operationId".into(), json!(op.id));
    let params: Vec<Value> = op.params.iter().filter(|p| p.location != Location::Body).map(parameter).collect();
    if !params.is_empty() {
        m.insert("parameters".into(), Value::Array(params));
    }
    if let Some(body) = op.body() {
        let schema = Dialect::V3.reference(&served.definition(body.body.expect("a body parameter has a payload")));
        // Content types are a Go map in kube-openapi, hence sorted.
        let mut consumes = op.consumes.clone();
        consumes.sort_unstable();
        let content: Map<String, Value> = consumes.iter().map(|ct| (ct.to_string(), json!({ "schema": schema }))).collect();
        let mut request = Map::new();
        request.insert("content".into(), Value::Object(content));
        if body.required {
            request.insert("required".into(), Value::Bool(true));
        }
        m.insert("requestBody".into(), Value::Object(request));
    }
    let responses = responses(op, |description, payload| {
        let schema = Dialect::V3.reference(&served.definition(payload));
        let content: Map<String, Value> = PRODUCES.iter().map(|ct| (ct.to_string(), json!({ "schema": schema }))).collect();
        json!({ "description": description, "content": content })
    });
    m.insert("responses".into(), responses);
    m.insert("x-kubernetes-action".into(), json!(op.action));
    m.insert("x-kubernetes-group-version-kind".into(), operation_gvk(gvk, Dialect::V3));
    Value::Object(m)
}

/// A v3 parameter: `schema` holds the type; `uniqueItems` is kube-openapi's marker for
/// "not repeatable".
fn parameter(param: &Param) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(param.name));
    m.insert("in".into(), json!(param.location.as_str()));
    m.insert("description".into(), json!(param.description));
    if param.required {
        m.insert("required".into(), Value::Bool(true));
    }
    m.insert("schema".into(), json!({"type": param.ty, "uniqueItems": true}));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::openapi_common::tests::{foo_model, reference, rich_model};
    use crate::generate::openapi_common::{to_json_bytes, STRATEGIC_MERGE_PATCH};

    /// Our document without the one deliberate addition, strategic merge patch on PATCH.
    fn without_strategic_merge_patch(mut doc: Value) -> Value {
        for item in doc["paths"].as_object_mut().unwrap().values_mut() {
            if let Some(content) = item.pointer_mut("/patch/requestBody/content") {
                assert!(
                    content.as_object_mut().unwrap().shift_remove(STRATEGIC_MERGE_PATCH).is_some(),
                    "PATCH advertises strategic merge patch"
                );
            }
        }
        doc
    }

    #[test]
    fn foo_document_is_byte_identical_to_kube_apiserver_but_for_strategic_merge_patch() {
        let docs = openapi_v3(&foo_model());
        assert_eq!(docs.keys().collect::<Vec<_>>(), ["apis/hello.zeng.dev/v1"]);
        let ours = without_strategic_merge_patch(docs["apis/hello.zeng.dev/v1"].clone());
        let Some(expected) = reference("openapi-v3-hello-v1.json") else { return };
        let expected_value: Value = serde_json::from_slice(&expected).unwrap();
        assert_eq!(ours, expected_value);
        // Same keys in the same order, same escaping: the same bytes, hence the same hash.
        assert_eq!(String::from_utf8(to_json_bytes(&ours)).unwrap(), String::from_utf8(expected).unwrap());
    }

    #[test]
    fn patch_operation_carries_what_kubectl_needs() {
        let docs = openapi_v3(&foo_model());
        let patch = &docs["apis/hello.zeng.dev/v1"]["paths"]["/apis/hello.zeng.dev/v1/namespaces/{namespace}/foos/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"], json!({"group": "hello.zeng.dev", "version": "v1", "kind": "Foo"}));
        assert!(patch["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "fieldValidation"));
        let content: Vec<&String> = patch["requestBody"]["content"].as_object().unwrap().keys().collect();
        assert_eq!(
            content,
            [
                "application/apply-patch+yaml",
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json"
            ]
        );
        let foo = &docs["apis/hello.zeng.dev/v1"]["components"]["schemas"]["dev.zeng.hello.v1.Foo"];
        assert_eq!(foo["x-kubernetes-group-version-kind"], json!([{"group": "hello.zeng.dev", "kind": "Foo", "version": "v1"}]));
        let meta = &docs["apis/hello.zeng.dev/v1"]["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"];
        assert_eq!(meta["properties"]["annotations"]["type"], "object");
    }

    #[test]
    fn index_hashes_the_served_bytes_like_kube_apiserver() {
        let Some(doc) = reference("openapi-v3-hello-v1.json") else { return };
        let docs = BTreeMap::from([("apis/hello.zeng.dev/v1".to_string(), doc)]);
        let index = openapi_v3_index(&docs);
        let Some(expected) = reference("openapi-v3-index.json") else { return };
        let expected: Value = serde_json::from_slice(&expected).unwrap();
        assert_eq!(index["paths"]["apis/hello.zeng.dev/v1"], expected["paths"]["apis/hello.zeng.dev/v1"]);
    }

    #[test]
    fn subresources_and_scale_schemas() {
        let docs = openapi_v3(&rich_model());
        let doc = &docs["apis/hello.zeng.dev/v1"];
        let scale = &doc["paths"]["/apis/hello.zeng.dev/v1/foos/{name}/scale"];
        assert_eq!(
            scale["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"
        );
        assert_eq!(scale["put"]["x-kubernetes-group-version-kind"]["kind"], "Foo");
        assert_eq!(scale["parameters"][0]["description"], "name of the Foo");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in ["io.k8s.api.autoscaling.v1.Scale", "io.k8s.api.autoscaling.v1.ScaleSpec", "io.k8s.api.autoscaling.v1.ScaleStatus"] {
            assert!(schemas.contains_key(name), "{name}");
        }
        assert!(doc["paths"]["/apis/hello.zeng.dev/v1/foos/{name}/status"]["patch"]["requestBody"]["content"][STRATEGIC_MERGE_PATCH]
            .is_object());
    }

    #[test]
    fn generation_is_deterministic() {
        let model = rich_model();
        let first = to_json_bytes(&openapi_v3(&model)["apis/hello.zeng.dev/v1"]);
        for _ in 0..3 {
            assert_eq!(to_json_bytes(&openapi_v3(&model)["apis/hello.zeng.dev/v1"]), first);
        }
    }
}
