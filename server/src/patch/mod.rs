//! The patch engines: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge
//! patch driven by the schema's patch strategies and merge keys.
//!
//! kube-apiserver answers 415 to strategic merge patches on custom resources; we accept them
//! (see `docs/differences.md`).

pub mod strategic;

use crate::http::ApiError;
use apimodel::Schema;
use serde_json::Value;

/// A patch format, chosen by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply, merged by [`crate::fieldmanager`].
    Apply,
}

impl PatchType {
    /// Content types accepted by PATCH, as listed in 415 errors.
    pub const ACCEPTED: &'static [&'static str] = &[
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ];

    /// The patch type of a Content-Type header.
    pub fn from_content_type(header: Option<&str>) -> Option<Self> {
        match crate::http::negotiate::content_type_essence(header).as_str() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            crate::fieldmanager::APPLY_PATCH_CONTENT_TYPE => Some(PatchType::Apply),
            _ => None,
        }
    }
}

/// A parsed patch body.
#[derive(Debug, Clone)]
pub enum PatchDocument {
    /// RFC 6902 operations.
    Json(json_patch::Patch),
    /// A merge or strategic merge patch object.
    Object(Value),
}

/// Parses a patch body; malformed bodies are 400 BadRequest.
pub fn parse(patch_type: PatchType, body: &[u8]) -> Result<PatchDocument, ApiError> {
    match patch_type {
        // YAML (JSON is YAML too); merged with the live object by the field manager.
        PatchType::Apply => crate::fieldmanager::parse_apply_body(body).map(PatchDocument::Object),
        PatchType::Json => {
            let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let ops: json_patch::Patch =
                serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            Ok(PatchDocument::Json(ops))
        }
        PatchType::Merge | PatchType::Strategic => {
            let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !value.is_object() {
                return Err(ApiError::bad_request(format!(
                    "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    kind_of(&value)
                )));
            }
            Ok(PatchDocument::Object(value))
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        Value::Object(_) => "object",
    }
}

/// Applies a patch to the current object.
pub fn apply(patch_type: PatchType, current: &Value, patch: &PatchDocument, schema: &Schema) -> Result<Value, ApiError> {
    match (patch_type, patch) {
        (PatchType::Json, PatchDocument::Json(ops)) => {
            let mut doc = current.clone();
            json_patch::patch(&mut doc, ops).map_err(|e| {
                tracing::debug!(error = %e, "json patch failed");
                // kube-apiserver reports every JSON patch failure this way, without details.
                ApiError::new(422, "Invalid", "the server rejected our request due to an error in our request")
                    .with_details(Default::default())
            })?;
            Ok(doc)
        }
        (PatchType::Merge, PatchDocument::Object(p)) => {
            let mut doc = current.clone();
            json_patch::merge(&mut doc, p);
            Ok(doc)
        }
        (PatchType::Strategic, PatchDocument::Object(p)) => {
            strategic::strategic_merge(current, p, Some(schema)).map_err(|e| ApiError::bad_request(e.message))
        }
        _ => Err(ApiError::internal("patch document does not match its type")),
    }
}
