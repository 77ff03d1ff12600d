//! The patch engines: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge
//! patch driven by the schema's patch strategies and merge keys.
//!
//! kube-apiserver answers 415 to strategic merge patches on custom resources; we accept them
//! (see `docs/differences.md`).

pub mod strategic;

use crate::http::ApiError;
use apimodel::Schema;
use serde_json::Value;

/// Most operations one JSON patch may have (kube-apiserver's `maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Most bytes the `copy` operations of one JSON patch may add together (kube-apiserver's
/// `JSONPatchMaxCopyBytes`, the largest request body). Without a bound, each copy of the
/// document into itself doubles it: a patch of a few kilobytes would exhaust memory.
pub const MAX_JSON_PATCH_COPY_BYTES: usize = crate::engine::MAX_BODY_BYTES;

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
            if ops.len() > MAX_JSON_PATCH_OPERATIONS {
                return Err(ApiError::new(
                    413,
                    "RequestEntityTooLarge",
                    format!(
                        "Request entity too large: The allowed number of operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
                        ops.len()
                    ),
                ));
            }
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
            apply_json_patch(&mut doc, ops).map_err(|e| {
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

/// Applies JSON patch operations one by one, counting the bytes `copy` operations add, and
/// fails once they exceed [`MAX_JSON_PATCH_COPY_BYTES`]. On failure `doc` is left half patched:
/// the caller patches a copy and drops it.
fn apply_json_patch(doc: &mut Value, ops: &[json_patch::PatchOperation]) -> Result<(), String> {
    let mut copied = 0usize;
    for op in ops {
        if let json_patch::PatchOperation::Copy(copy) = op {
            let budget = MAX_JSON_PATCH_COPY_BYTES - copied;
            // A missing `from` adds nothing; the operation then fails below.
            let size = doc.pointer(copy.from.as_str()).map_or(Some(0), |v| encoded_size_within(v, budget));
            match size {
                Some(size) => copied += size,
                None => return Err(format!("the copy operations add more than {MAX_JSON_PATCH_COPY_BYTES} bytes")),
            }
        }
        json_patch::patch_unsafe(doc, std::slice::from_ref(op)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The length of `value` encoded as JSON, or `None` when it is longer than `budget` (found
/// without encoding more than `budget` bytes).
fn encoded_size_within(value: &Value, budget: usize) -> Option<usize> {
    struct Counter {
        written: usize,
        budget: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.written += buf.len();
            if self.written > self.budget {
                return Err(std::io::Error::other("over budget"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { written: 0, budget };
    serde_json::to_writer(&mut counter, value).ok().map(|()| counter.written)
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
        let op = json!({"op": "test", "path": "/a", "value": 1});
        assert!(json_patch(Value::Array(vec![op.clone(); MAX_JSON_PATCH_OPERATIONS])).is_ok());
        let error = json_patch(Value::Array(vec![op; MAX_JSON_PATCH_OPERATIONS + 1])).unwrap_err();
        assert_eq!((error.code, error.reason), (413, "RequestEntityTooLarge"));
        assert!(error.message.contains("The allowed number of operations in a JSON patch is 10000, got 10001"), "{}", error.message);
    }

    #[test]
    fn a_failed_operation_leaves_the_object_unpatched() {
        let object = json!({"a": 1});
        let patch = json_patch(json!([{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 2}])).unwrap();
        assert_eq!(apply(PatchType::Json, &object, &patch, &Schema::default()).unwrap_err().code, 422);
        assert_eq!(object, json!({"a": 1}));
    }
}
