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

/// The most operations one JSON patch may have, as in kube-apiserver; more is a 413.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// How much a JSON patch's `copy` operations may add to the object, in bytes (kube-apiserver's
/// `--json-patch-max-copy-bytes` default, the same as the body limit): each copy can double the
/// object, so a short patch could otherwise ask for terabytes.
pub const MAX_JSON_PATCH_COPY_BYTES: usize = crate::engine::MAX_BODY_BYTES;

/// A parsed patch body.
#[derive(Debug, Clone)]
pub enum PatchDocument {
    /// RFC 6902 operations, as objects: like kube-apiserver, we check each operation only when
    /// applying it, so a bad one is a 422 about the object, after a 404 for a missing object.
    Json(Vec<serde_json::Map<String, Value>>),
    /// A merge or strategic merge patch object.
    Object(Value),
    /// A merge patch that is not an object: it replaces the whole object (and fails to decode).
    Replacement(Value),
}

/// Parses a patch body; malformed bodies are 400 BadRequest.
pub fn parse(patch_type: PatchType, body: &[u8]) -> Result<PatchDocument, ApiError> {
    match patch_type {
        // YAML (JSON is YAML too); merged with the live object by the field manager.
        PatchType::Apply => crate::fieldmanager::parse_apply_body(body).map(PatchDocument::Object),
        PatchType::Json => {
            let value = crate::json::parse(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            // Go's message for what does not decode into a list of operations.
            let not_ops =
                |kind: &str, into: &str| ApiError::bad_request(format!("json: cannot unmarshal {kind} into Go value of type {into}"));
            let Value::Array(items) = value else { return Err(not_ops(kind_of(&value), "jsonpatch.Patch")) };
            let mut ops = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Object(op) => ops.push(op),
                    // A null operation decodes to an empty one, which fails when applied.
                    Value::Null => ops.push(serde_json::Map::new()),
                    other => return Err(not_ops(kind_of(&other), "jsonpatch.Operation")),
                }
            }
            Ok(PatchDocument::Json(ops))
        }
        PatchType::Merge => match crate::json::parse(body) {
            Ok(value @ Value::Object(_)) => Ok(PatchDocument::Object(value)),
            Ok(value @ Value::Array(_)) => Ok(PatchDocument::Replacement(value)),
            // kube's merge patch library refuses other documents as a bad patch.
            Ok(_) | Err(_) => Err(ApiError::bad_request("Invalid JSON Patch")),
        },
        PatchType::Strategic => {
            let value = crate::json::parse(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            if !value.is_object() {
                return Err(ApiError::bad_request(format!(
                    "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    kind_of(&value)
                )));
            }
            Ok(PatchDocument::Object(value))
        }
    }
}

/// kube-apiserver's answer to every JSON patch that does not apply: 422 without details.
fn json_patch_failed(why: impl std::fmt::Display) -> ApiError {
    tracing::debug!(error = %why, "json patch failed");
    ApiError::new(422, "Invalid", "the server rejected our request due to an error in our request").with_details(Default::default())
}

/// Applies RFC 6902 operations one at a time, with kube-apiserver's bounds: at most
/// [`MAX_JSON_PATCH_OPERATIONS`] operations (413), and `copy` operations adding at most
/// [`MAX_JSON_PATCH_COPY_BYTES`] (422), counted before each copy is made.
fn apply_json_patch(current: &Value, ops: &[serde_json::Map<String, Value>]) -> Result<Value, ApiError> {
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(ApiError::too_large_because(format!(
            "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
            ops.len()
        )));
    }
    let mut doc = current.clone();
    let mut copied = 0usize;
    for op in ops {
        let op: json_patch::PatchOperation = serde_json::from_value(Value::Object(op.clone())).map_err(json_patch_failed)?;
        if let json_patch::PatchOperation::Copy(copy) = &op {
            let size = doc.pointer(copy.from.as_str()).map(encoded_len).unwrap_or(0);
            copied = copied.saturating_add(size);
            if copied > MAX_JSON_PATCH_COPY_BYTES {
                return Err(json_patch_failed(format!(
                    "Unable to copy, the accumulated size increase of copy is {copied}, exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}"
                )));
            }
        }
        json_patch::patch_unsafe(&mut doc, std::slice::from_ref(&op)).map_err(json_patch_failed)?;
    }
    Ok(doc)
}

/// The length of a value's compact JSON, without building it.
fn encoded_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
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
        (PatchType::Json, PatchDocument::Json(ops)) => apply_json_patch(current, ops),
        (PatchType::Merge, PatchDocument::Object(p)) => {
            let mut doc = current.clone();
            json_patch::merge(&mut doc, p);
            Ok(doc)
        }
        (PatchType::Merge, PatchDocument::Replacement(p)) => Ok(p.clone()),
        (PatchType::Strategic, PatchDocument::Object(p)) => {
            strategic::strategic_merge(current, p, Some(schema)).map_err(|e| ApiError::bad_request(e.message))
        }
        _ => Err(ApiError::internal("patch document does not match its type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_patch(ops: Value) -> Result<PatchDocument, ApiError> {
        parse(PatchType::Json, ops.to_string().as_bytes())
    }

    #[test]
    fn copies_that_grow_the_object_past_the_limit_fail() {
        // Forty copies of the document into itself, 1.5 KB of patch, asked for 2^40 times the
        // object's size: the json_patch fuzz target ran out of memory on it.
        let ops: Vec<Value> = (0..40).map(|i| json!({"op": "copy", "from": "", "path": format!("/c{i}")})).collect();
        let patch = json_patch(Value::Array(ops)).unwrap();
        let object = json!({"spec": {"msg": "x".repeat(100)}});
        let error = apply(PatchType::Json, &object, &patch, &Schema::default()).unwrap_err();
        assert_eq!((error.code, error.reason), (422, "Invalid"));

        // Copies within the limit still work.
        let ops: Vec<Value> = (0..10).map(|i| json!({"op": "copy", "from": "/spec", "path": format!("/c{i}")})).collect();
        let patched = apply(PatchType::Json, &object, &json_patch(Value::Array(ops)).unwrap(), &Schema::default()).unwrap();
        assert_eq!(patched["c9"], object["spec"]);
    }

    #[test]
    fn at_most_ten_thousand_operations() {
        let object = json!({"a": 1});
        let op = json!({"op": "test", "path": "/a", "value": 1});
        let patch = json_patch(Value::Array(vec![op.clone(); MAX_JSON_PATCH_OPERATIONS])).unwrap();
        assert!(apply(PatchType::Json, &object, &patch, &Schema::default()).is_ok());
        let patch = json_patch(Value::Array(vec![op; MAX_JSON_PATCH_OPERATIONS + 1])).unwrap();
        let error = apply(PatchType::Json, &object, &patch, &Schema::default()).unwrap_err();
        assert_eq!((error.code, error.reason), (413, "RequestEntityTooLarge"));
        assert!(error.message.contains("The allowed maximum operations in a JSON patch is 10000, got 10001"), "{}", error.message);
    }

    #[test]
    fn a_failed_operation_leaves_the_object_unpatched() {
        let object = json!({"a": 1});
        let patch = json_patch(json!([{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 2}])).unwrap();
        assert_eq!(apply(PatchType::Json, &object, &patch, &Schema::default()).unwrap_err().code, 422);
        assert_eq!(object, json!({"a": 1}));
    }
}
