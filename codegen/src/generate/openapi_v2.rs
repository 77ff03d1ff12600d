//! OpenAPI v2 (Swagger 2.0) document for every served group-version, shaped as kube-apiserver
//! publishes CRDs at `/openapi/v2` (kubectl 1.27 and 1.28 fetch it, as protobuf, before every
//! create/apply; see [`super::openapi_v2_pb`]).
//!
//! kube-apiserver serves one document for the whole cluster; ours holds only our resources: their
//! paths, the `Kind`/`KindList` definitions, and the built-in definitions those reference. As
//! kube-openapi does, parameters shared by operations are moved to the top-level `parameters`
//! section under content-hashed names (`pretty-tJGM1-ng`), so they get the same names as in
//! kube-apiserver's document.
//!
//! Deliberate differences from kube-apiserver: `info` is the per-CRD `Kubernetes CRD Swagger`
//! title instead of the cluster's version, and PATCH operations also consume
//! `application/strategic-merge-patch+json`, which our server implements for custom resources.

use super::openapi_common::{
    definitions, operation_gvk, responses, served, tag, to_json_bytes, Dialect, Location, Operation, Param, PathItem, Served,
};
use apimodel::Model;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Content types of responses.
const PRODUCES: [&str; 2] = ["application/json", "application/yaml"];

/// Builds the `/openapi/v2` document.
pub fn openapi_v2(model: &Model) -> Value {
    let served = served(model, None);
    let mut shared = SharedParameters::default();
    let mut paths: BTreeMap<String, Value> = BTreeMap::new();
    for s in &served {
        for item in s.paths() {
            paths.insert(item.path.clone(), path_item(*s, &item, &mut shared));
        }
    }
    let paths = Value::Object(paths.into_iter().collect());
    let definitions = definitions(&served, &paths, Dialect::V2);

    let mut doc = Map::new();
    doc.insert("swagger".into(), json!("2.0"));
    doc.insert("info".into(), json!({"title": "Kubernetes CRD Swagger", "version": "v0.1.0"}));
    doc.insert("paths".into(), paths);
    if !definitions.is_empty() {
        doc.insert("definitions".into(), Value::Object(definitions));
    }
    if !shared.by_name.is_empty() {
        doc.insert("parameters".into(), Value::Object(shared.by_name.into_iter().collect()));
    }
    // kube-apiserver's document declares bearer tokens; clients such as kubectl ignore it.
    doc.insert(
        "securityDefinitions".into(),
        json!({"BearerToken": {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"}}),
    );
    doc.insert("security".into(), json!([{"BearerToken": []}]));
    Value::Object(doc)
}

/// The top-level `parameters` section, filled as operations are rendered.
#[derive(Default)]
struct SharedParameters {
    by_name: BTreeMap<String, Value>,
}

impl SharedParameters {
    /// Replaces `param` by a `$ref` to a shared copy, as kube-openapi's `deduplicateParameters`
    /// does for every parameter except those that name the kind: `name` (its description does),
    /// `fieldValidation` and `dryRun` (kubectl looks for them inline), and bodies whose schema
    /// is the kind. The shared name is `<name>-<first 6 bytes of FNV-64 of its JSON, base64url>`.
    fn share(&mut self, param: Value) -> Value {
        let name = param["name"].as_str().unwrap_or("param").to_string();
        let location = param["in"].as_str().unwrap_or_default();
        let generic_body = param["schema"]["$ref"].as_str().is_some_and(|r| r.starts_with("#/definitions/io.k8s.apimachinery"));
        let keep_inline = match location {
            "query" | "path" if name == "name" => true,
            "query" => name == "fieldValidation" || name == "dryRun",
            "body" => !generic_body,
            _ => false,
        };
        if keep_inline {
            return param;
        }
        let shared = format!("{name}-{}", fnv64_base64(&to_json_bytes(&param)));
        self.by_name.insert(shared.clone(), param);
        json!({ "$ref": format!("#/parameters/{shared}") })
    }
}

/// FNV-1 (not 1a) 64-bit hash, first 6 bytes, URL-safe base64: kube-openapi's `base64Hash`.
fn fnv64_base64(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        hash ^= u64::from(*b);
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let six = &hash.to_be_bytes()[..6];
    let mut out = String::with_capacity(8);
    for chunk in six.chunks(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for i in 0..4 {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn path_item(served: Served<'_>, item: &PathItem, shared: &mut SharedParameters) -> Value {
    let mut m = Map::new();
    for op in &item.operations {
        m.insert(op.method.key().into(), operation(served, op, shared));
    }
    if !item.params.is_empty() {
        m.insert("parameters".into(), item.params.iter().map(|p| shared.share(parameter(served, p))).collect());
    }
    Value::Object(m)
}

fn operation(served: Served<'_>, op: &Operation, shared: &mut SharedParameters) -> Value {
    let gvk = served.gvk();
    let mut m = Map::new();
    m.insert("description".into(), json!(op.description));
    m.insert("consumes".into(), json!(op.consumes));
    m.insert("produces".into(), json!(PRODUCES));
    m.insert("schemes".into(), json!(["https"]));
    m.insert("tags".into(), json!([tag(gvk.group, gvk.version)]));
    m.insert("operationId".into(), json!(op.id));
    if !op.params.is_empty() {
        m.insert("parameters".into(), op.params.iter().map(|p| shared.share(parameter(served, p))).collect());
    }
    let responses = responses(
        op,
        |description, payload| json!({"description": description, "schema": Dialect::V2.reference(&served.definition(payload))}),
    );
    m.insert("responses".into(), responses);
    m.insert("x-kubernetes-action".into(), json!(op.action));
    m.insert("x-kubernetes-group-version-kind".into(), operation_gvk(gvk, Dialect::V2));
    Value::Object(m)
}

/// A v2 parameter, with keys in the order Go's `spec.Parameter` marshals them (which the
/// shared names hash).
fn parameter(served: Served<'_>, param: &Param) -> Value {
    let mut m = Map::new();
    match param.location {
        Location::Body => {
            m.insert("name".into(), json!(param.name));
            m.insert("in".into(), json!("body"));
            if param.required {
                m.insert("required".into(), Value::Bool(true));
            }
            let payload = param.body.expect("a body parameter has a payload");
            m.insert("schema".into(), Dialect::V2.reference(&served.definition(payload)));
        }
        Location::Path | Location::Query => {
            m.insert("uniqueItems".into(), Value::Bool(true));
            m.insert("type".into(), json!(param.ty));
            m.insert("description".into(), json!(param.description));
            m.insert("name".into(), json!(param.name));
            m.insert("in".into(), json!(param.location.as_str()));
            if param.required {
                m.insert("required".into(), Value::Bool(true));
            }
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::openapi_common::tests::{foo_model, reference, rich_model};
    use crate::generate::openapi_common::STRATEGIC_MERGE_PATCH;

    fn reference_doc() -> Option<Value> {
        reference("openapi-v2.json").map(|bytes| serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn foo_paths_equal_kube_apiserver_but_for_strategic_merge_patch() {
        let mut ours = openapi_v2(&foo_model());
        for item in ours["paths"].as_object_mut().unwrap().values_mut() {
            if let Some(consumes) = item.pointer_mut("/patch/consumes") {
                let list = consumes.as_array_mut().unwrap();
                let before = list.len();
                list.retain(|c| c != STRATEGIC_MERGE_PATCH);
                assert_eq!(list.len(), before - 1, "PATCH consumes strategic merge patch");
            }
        }
        let Some(expected) = reference_doc() else { return };
        let expected_paths: Map<String, Value> = expected["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with("/apis/hello.zeng.dev/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(ours["paths"], Value::Object(expected_paths.clone()));
        assert_eq!(to_json_bytes(&ours["paths"]), to_json_bytes(&Value::Object(expected_paths)), "key order");
        // Every shared parameter we reference exists under the same name in kube-apiserver's document.
        for (name, param) in ours["parameters"].as_object().unwrap() {
            assert_eq!(&expected["parameters"][name], param, "{name}");
        }
    }

    #[test]
    fn foo_definitions_equal_kube_apiserver() {
        let ours = openapi_v2(&foo_model());
        let Some(expected) = reference_doc() else { return };
        let definitions = ours["definitions"].as_object().unwrap();
        assert!(definitions.contains_key("dev.zeng.hello.v1.Foo"));
        assert!(definitions.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        for (name, definition) in definitions {
            assert_eq!(definition, &expected["definitions"][name], "{name}");
            assert_eq!(to_json_bytes(definition), to_json_bytes(&expected["definitions"][name]), "key order of {name}");
        }
        assert_eq!(ours["securityDefinitions"], expected["securityDefinitions"]);
        assert_eq!(ours["security"], expected["security"]);
        let keys: Vec<&String> = ours.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["swagger", "info", "paths", "definitions", "parameters", "securityDefinitions", "security"]);
    }

    #[test]
    fn shared_parameter_names_hash_like_kube_openapi() {
        let pretty = json!({"uniqueItems": true, "type": "string", "description": "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).", "name": "pretty", "in": "query"});
        assert_eq!(fnv64_base64(&to_json_bytes(&pretty)), "tJGM1-ng");
    }

    #[test]
    fn subresources_of_a_cluster_scoped_resource() {
        let doc = openapi_v2(&rich_model());
        let scale = &doc["paths"]["/apis/hello.zeng.dev/v1/foos/{name}/scale"];
        assert_eq!(
            scale["put"]["parameters"][0],
            json!({"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/io.k8s.api.autoscaling.v1.Scale"}})
        );
        assert_eq!(scale["patch"]["consumes"][2], STRATEGIC_MERGE_PATCH);
        assert_eq!(scale["parameters"][0]["description"], "name of the Foo");
        assert!(doc["definitions"]["io.k8s.api.autoscaling.v1.ScaleSpec"].is_object());
        assert_eq!(doc["paths"]["/apis/hello.zeng.dev/v1/foos/{name}/status"]["get"]["description"], "read status of the specified Foo");
        assert!(doc["paths"].get("/apis/hello.zeng.dev/v1/namespaces/{namespace}/foos").is_none());
    }
}
