//! The `/scale` subresource: the object seen as an `autoscaling/v1` `Scale`, through the spec's
//! `specReplicasPath`, `statusReplicasPath` and `labelSelectorPath`. Writes change only the
//! replicas at `specReplicasPath`.

use super::object::meta_str;
use super::write::{FieldValidation, UpdateError};
use super::{body_encoding, decode_body, read_body, Call};
use crate::http::{respond, ApiError, FieldError, FieldErrorKind};
use crate::patch::{self, PatchType};
use apimodel::Scale;
use axum::body::Body;
use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

/// `.spec.replicas` → `["spec", "replicas"]`.
fn path(json_path: &str) -> Vec<&str> {
    json_path.trim_start_matches('.').split('.').filter(|s| !s.is_empty()).collect()
}

fn get_at<'a>(object: &'a Value, json_path: &str) -> Option<&'a Value> {
    path(json_path).iter().try_fold(object, |v, k| v.get(*k))
}

fn set_at(object: &mut Value, json_path: &str, value: Value) {
    let parts = path(json_path);
    let mut node = object;
    for (i, key) in parts.iter().enumerate() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let map = node.as_object_mut().expect("made an object");
        if i + 1 == parts.len() {
            map.insert((*key).to_string(), value);
            return;
        }
        node = map.entry((*key).to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The Scale view of an object.
fn to_scale(object: &Value, scale: &Scale) -> Value {
    let meta = object.get("metadata").cloned().unwrap_or(Value::Null);
    let mut scale_meta = Map::new();
    for key in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = meta.get(key) {
            scale_meta.insert(key.into(), v.clone());
        }
    }
    let spec_replicas = get_at(object, &scale.spec_replicas_path).and_then(Value::as_i64).unwrap_or(0);
    let status_replicas = get_at(object, &scale.status_replicas_path).and_then(Value::as_i64).unwrap_or(0);
    let mut status = json!({"replicas": status_replicas});
    if let Some(selector) = scale.label_selector_path.as_deref().and_then(|p| get_at(object, p)).and_then(Value::as_str) {
        status["selector"] = Value::String(selector.to_string());
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta, "spec": {"replicas": spec_replicas}, "status": status})
}

impl Call {
    pub(super) async fn scale(&self, body: Body) -> Result<Response, ApiError> {
        let negotiated = self.negotiated()?;
        let Some(scale) = self.endpoint.version().subresources.scale.clone() else {
            return Err(ApiError::method_not_allowed(self.method.as_str()));
        };
        let name = self.name.clone().unwrap_or_default();
        if self.method == Method::GET {
            let current = self.current().await?;
            let object = self.decode_stored(&current)?;
            return Ok(respond(StatusCode::OK, &to_scale(&object, &scale), negotiated.encoding, self.pretty()));
        }
        let dry_run = self.dry_run(None)?;
        let validation = FieldValidation::parse(self.query.get("fieldValidation"))?;
        let bytes = read_body(body).await?;
        let patch_doc = if self.method == Method::PATCH {
            let content_type = self.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            // Server-side apply of a Scale is not supported yet: say so rather than fail inside.
            let scale_types = &["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"];
            let patch_type = PatchType::from_content_type(content_type)
                .filter(|t| *t != PatchType::Apply)
                .ok_or_else(|| ApiError::unsupported_media_type(scale_types))?;
            Some((patch_type, patch::parse(patch_type, &bytes)?))
        } else {
            None
        };
        let put_body = match &patch_doc {
            Some(_) => None,
            None => {
                let encoding = body_encoding(&self.headers)
                    .ok_or_else(|| ApiError::unsupported_media_type(&["application/json", "application/yaml"]))?;
                Some(decode_body(&bytes, encoding, "Scale")?)
            }
        };
        for _ in 0..16 {
            let current = self.current().await?;
            let mut object = self.decode_stored(&current)?;
            let current_scale = to_scale(&object, &scale);
            let wanted = match (&patch_doc, &put_body) {
                (Some((patch_type, doc)), _) => patch::apply(*patch_type, &current_scale, doc, &apimodel::Schema::default())?,
                (None, Some(body)) => body.clone(),
                (None, None) => unreachable!("either a patch or a body"),
            };
            if let Some(rv) = meta_str(&wanted, "resourceVersion").filter(|rv| !rv.is_empty()) {
                if rv != current.mod_revision.to_string() {
                    return Err(ApiError::stale(self.group(), self.plural(), &name));
                }
            }
            let replicas = match wanted.get("spec").and_then(|s| s.get("replicas")) {
                Some(Value::Number(n)) if n.as_i64().is_some_and(|r| (0..=i32::MAX as i64).contains(&r)) => n.as_i64().unwrap_or(0),
                other => {
                    let shown = other.map(|v| v.to_string()).unwrap_or_else(|| "null".into());
                    let error =
                        FieldError::new(FieldErrorKind::Invalid, "spec.replicas", Some(shown), "must be greater than or equal to 0");
                    return Err(ApiError::invalid("autoscaling", "Scale", &name, &[error]));
                }
            };
            set_at(&mut object, &scale.spec_replicas_path, json!(replicas));
            match self.store_update(object, &current, validation, dry_run).await {
                Ok((stored, _)) => return Ok(respond(StatusCode::OK, &to_scale(&stored, &scale), negotiated.encoding, self.pretty())),
                Err(UpdateError::Conflict) => continue,
                Err(UpdateError::Api(e)) => return Err(e),
            }
        }
        Err(ApiError::stale(self.group(), self.plural(), &name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view_and_write_back() {
        let scale = Scale {
            spec_replicas_path: ".spec.replicas".into(),
            status_replicas_path: ".status.replicas".into(),
            label_selector_path: Some(".status.selector".into()),
        };
        let mut object = json!({"metadata": {"name": "a", "namespace": "n", "resourceVersion": "3", "labels": {"x": "y"}}, "spec": {"replicas": 2}, "status": {"replicas": 1, "selector": "app=a"}});
        assert_eq!(
            to_scale(&object, &scale),
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "a", "namespace": "n", "resourceVersion": "3"}, "spec": {"replicas": 2}, "status": {"replicas": 1, "selector": "app=a"}})
        );
        set_at(&mut object, ".spec.replicas", json!(5));
        assert_eq!(object["spec"]["replicas"], 5);
        let mut empty = json!({});
        set_at(&mut empty, ".spec.deep.replicas", json!(1));
        assert_eq!(empty, json!({"spec": {"deep": {"replicas": 1}}}));
    }
}
