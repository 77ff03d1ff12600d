//! The bridge from client-side `kubectl apply` to server-side apply, for the manager named
//! `kubectl` only (what `kubectl apply --server-side` uses by default).
//!
//! Objects that client-side apply manages carry the `kubectl.kubernetes.io/last-applied-configuration`
//! annotation, and their fields are owned by `Update` managers (`kubectl-client-side-apply`,
//! `kubectl-create`). When kubectl first applies them server-side, conflicts on fields whose
//! live value still equals the last client-side configuration are forgiven (the user is applying
//! the same intent), and while the annotation exists it is kept equal to the latest applied
//! configuration, so that switching back to client-side apply computes the right patch.

use super::fieldset::FieldSet;
use super::gojson;
use super::schema::Type;
use super::typed;
use serde_json::Value;

/// The annotation client-side apply keeps its configuration in.
pub const ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager whose applies take part in the upgrade.
pub const KUBECTL: &str = "kubectl";

/// kube-apiserver's limit on the total size of an object's annotations.
const ANNOTATIONS_SIZE_LIMIT: usize = 256 * 1024;

/// The annotation's value on `object`, when present and not empty.
fn annotation(object: &Value) -> Option<&str> {
    object.get("metadata")?.get("annotations")?.get(ANNOTATION)?.as_str().filter(|s| !s.is_empty())
}

/// The conflicting fields an apply by `kubectl` may take over: those of the last client-side
/// configuration whose value the live object still has. `None` when the object has no usable
/// annotation (then nothing is forgiven).
pub fn forgiven_fields(live: &Value, ty: Type<'_>, api_version: &str) -> Option<FieldSet> {
    let last: Value = serde_json::from_str(annotation(live)?).ok()?;
    if last.get("apiVersion").and_then(Value::as_str) != Some(api_version) {
        return None;
    }
    if !typed::validate(&last, ty).is_empty() {
        return None;
    }
    let set = typed::field_set(&last, ty);
    let differences = typed::compare(Some(&last), Some(live), ty);
    Some(set.difference(&differences.modified).difference(&differences.added).difference(&differences.removed))
}

/// Keeps the annotation of `object` (if it has one) equal to the applied configuration, written
/// as kubectl writes it: compact JSON with sorted keys and a final newline, without the
/// annotation itself. Dropped if it would make the annotations too large.
pub fn refresh(object: &mut Value, config: &Value) {
    if annotation(object).is_none() {
        return;
    }
    let mut applied = config.clone();
    if let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
        match meta.get_mut("annotations") {
            Some(Value::Object(annotations)) => {
                annotations.remove(ANNOTATION);
            }
            Some(_) => {
                meta.remove("annotations");
            }
            None => {}
        }
    }
    let mut text = gojson::to_string(&applied);
    text.push('\n');
    let Some(annotations) = object.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) else { return };
    annotations.insert(ANNOTATION.to_string(), Value::String(text));
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum();
    if size > ANNOTATIONS_SIZE_LIMIT {
        annotations.remove(ANNOTATION);
    }
}
