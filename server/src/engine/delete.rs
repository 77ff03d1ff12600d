//! DELETE of one object and of a collection. Objects with finalizers are only marked
//! (`deletionTimestamp`); the last finalizer's removal deletes them (see `write`).

use super::object::{self, meta_str, metadata_mut};
use super::write::finalizers;
use super::{body_encoding, decode_body, read_body, Call};
use crate::http::{respond, ApiError};
use crate::storage::{self, KeyValue};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

/// What deleting one object did.
enum Deleted {
    /// Removed from storage; the last state.
    Gone(Value),
    /// Marked for deletion, waiting for finalizers; the new state.
    Pending(Value),
}

impl Call {
    /// `DeleteOptions` from the body (optional).
    async fn delete_options(&self, body: Body) -> Result<Value, ApiError> {
        let bytes = read_body(body).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        let encoding =
            body_encoding(&self.headers).ok_or_else(|| ApiError::unsupported_media_type(&["application/json", "application/yaml"]))?;
        let options = decode_body(&bytes, encoding, "DeleteOptions")?;
        if !options.is_object() {
            return Err(ApiError::bad_request("the body of a delete request must be a DeleteOptions object"));
        }
        if let Some(p) = options.get("propagationPolicy").and_then(Value::as_str) {
            if !["Orphan", "Background", "Foreground"].contains(&p) {
                return Err(ApiError::bad_request(format!(
                    "propagationPolicy: Unsupported value: {p:?}: supported values: \"Background\", \"Foreground\", \"Orphan\""
                )));
            }
        }
        Ok(options)
    }

    pub(super) async fn delete(&self, body: Body) -> Result<Response, ApiError> {
        let negotiated = self.negotiated()?;
        let options = self.delete_options(body).await?;
        let dry_run = self.dry_run(Some(&options))?;
        let name = self.name.clone().unwrap_or_default();
        let key = self.key(&name);
        for _ in 0..16 {
            let current = self.storage().get(&key).await.map_err(|e| self.storage_error(e, &name))?;
            let current = current.ok_or_else(|| ApiError::not_found(self.group(), self.plural(), &name))?;
            let object = self.decode_stored(&current)?;
            self.check_preconditions(&options, &object, &name)?;
            match self.delete_one(&key, &current, object, dry_run).await {
                Ok(Deleted::Gone(object)) => {
                    let uid = meta_str(&object, "uid").unwrap_or_default();
                    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"name": name, "group": self.group(), "kind": self.plural(), "uid": uid}});
                    return Ok(respond(StatusCode::OK, &status, negotiated.encoding, self.pretty()));
                }
                Ok(Deleted::Pending(object)) => return self.render_object(StatusCode::OK, &object, negotiated),
                Err(None) => continue,
                Err(Some(e)) => return Err(e),
            }
        }
        Err(ApiError::stale(self.group(), self.plural(), &name))
    }

    fn check_preconditions(&self, options: &Value, object: &Value, name: &str) -> Result<(), ApiError> {
        let Some(pre) = options.get("preconditions") else { return Ok(()) };
        let kind = self.kind();
        if let Some(uid) = pre.get("uid").and_then(Value::as_str) {
            let actual = meta_str(object, "uid").unwrap_or_default();
            if uid != actual {
                return Err(ApiError::conflict(self.group(), kind, name, &format!("the UID in the precondition ({uid}) does not match the UID in record ({actual}). The object might have been deleted and then recreated")));
            }
        }
        if let Some(rv) = pre.get("resourceVersion").and_then(Value::as_str) {
            let actual = meta_str(object, "resourceVersion").unwrap_or_default();
            if rv != actual {
                return Err(ApiError::conflict(self.group(), kind, name, &format!("the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({actual}). The object might have been modified")));
            }
        }
        Ok(())
    }

    /// Deletes or marks one object. `Err(None)` means another writer got in first: retry.
    async fn delete_one(&self, key: &str, current: &KeyValue, mut object: Value, dry_run: bool) -> Result<Deleted, Option<ApiError>> {
        let name = meta_str(&object, "name").unwrap_or_default().to_string();
        if !finalizers(&object).is_empty() {
            if object.get("metadata").and_then(|m| m.get("deletionTimestamp")).is_some() {
                return Ok(Deleted::Pending(object));
            }
            let generation = object.get("metadata").and_then(|m| m.get("generation")).and_then(Value::as_i64).unwrap_or(0);
            let meta = metadata_mut(&mut object);
            meta.insert("deletionTimestamp".into(), Value::String(object::now_timestamp()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            meta.insert("generation".into(), json!(generation + 1));
            meta.remove("resourceVersion");
            object::canonicalize(&mut object);
            if dry_run {
                object::set_resource_version(&mut object, current.mod_revision);
                return Ok(Deleted::Pending(object));
            }
            let bytes = Bytes::from(serde_json::to_vec(&object).map_err(|e| Some(ApiError::internal(e)))?);
            return match self.storage().update(key, bytes, current.mod_revision).await {
                Ok(kv) => Ok(Deleted::Pending(self.decode_stored(&kv).map_err(Some)?)),
                Err(storage::Error::Conflict { .. }) => Err(None),
                Err(e) => Err(Some(self.storage_error(e, &name))),
            };
        }
        if dry_run {
            return Ok(Deleted::Gone(object));
        }
        match self.storage().delete(key, Some(current.mod_revision)).await {
            Ok(_) => Ok(Deleted::Gone(object)),
            Err(storage::Error::Conflict { .. }) => Err(None),
            Err(storage::Error::NotFound) => Err(Some(ApiError::not_found(self.group(), self.plural(), &name))),
            Err(e) => Err(Some(self.storage_error(e, &name))),
        }
    }

    /// Deletes every object matching the selectors; answers with the list of what was deleted.
    pub(super) async fn delete_collection(&self, body: Body) -> Result<Response, ApiError> {
        let negotiated = self.negotiated()?;
        let options = self.delete_options(body).await?;
        let dry_run = self.dry_run(Some(&options))?;
        let (labels, fields) = self.selectors()?;
        let page = self.read_page(&labels, &fields).await?;
        let mut deleted = Vec::new();
        for object in &page.items {
            let name = meta_str(object, "name").unwrap_or_default().to_string();
            let namespace = meta_str(object, "namespace").map(str::to_string);
            let key = object::object_key(self.group(), self.plural(), namespace.as_deref(), &name);
            for _ in 0..16 {
                let Some(current) = self.storage().get(&key).await.map_err(|e| self.storage_error(e, &name))? else { break };
                let object = self.decode_stored(&current)?;
                match self.delete_one(&key, &current, object, dry_run).await {
                    Ok(Deleted::Gone(o) | Deleted::Pending(o)) => {
                        deleted.push(o);
                        break;
                    }
                    Err(None) => continue,
                    Err(Some(e)) if e.code == 404 => break,
                    Err(Some(e)) => return Err(e),
                }
            }
        }
        let list = self.list_object(super::read::Page { items: deleted, revision: page.revision, continue_token: None, remaining: None });
        Ok(respond(StatusCode::OK, &list, negotiated.encoding, self.pretty()))
    }
}
