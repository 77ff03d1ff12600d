//! OpenAPI v3 documents, one per served group-version, shaped as kube-apiserver publishes CRDs.

use apimodel::Model;
use serde_json::Value;
use std::collections::BTreeMap;

/// Builds one OpenAPI 3.0 document per served group-version, keyed by `apis/<group>/<version>`.
pub fn openapi_v3(model: &Model) -> BTreeMap<String, Value> {
    let _ = model;
    BTreeMap::new()
}

/// Builds the `/openapi/v3` index (placeholder until the generator lands).
pub fn openapi_v3_index(docs: &BTreeMap<String, Vec<u8>>) -> Value {
    let _ = docs;
    serde_json::json!({"paths": {}})
}
