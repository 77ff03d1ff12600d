//! Create, update (PUT) and patch, sharing one admission path: decode, check identity, prune and
//! validate against the schema, set server-owned metadata, store with optimistic concurrency.

use super::object::{self, meta_str, metadata_mut};
use super::validation::{prune_and_validate, validate_metadata};
use super::{body_encoding, decode_body, read_body, Call};
use crate::fieldmanager::{self, FieldManager, WriteOptions};
use crate::http::negotiate::Negotiated;
use crate::http::{ApiError, FieldError, FieldErrorKind};
use crate::patch::{self, PatchDocument, PatchType};
use crate::storage::{self, KeyValue};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use serde_json::Value;

/// How unknown fields in a request are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldValidation {
    /// Dropped silently.
    Ignore,
    /// Dropped, with a `Warning` header each (the default).
    Warn,
    /// The request fails with 400.
    Strict,
}

impl FieldValidation {
    pub(super) fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// The outcome of admission: the object to store, and warnings for the response.
struct Admitted {
    object: Value,
    warnings: Vec<String>,
}

/// How many times an update without a resourceVersion precondition is retried when another
/// writer got in between.
const UPDATE_RETRIES: usize = 16;

/// How a write is recorded in `metadata.managedFields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tracking {
    /// An ordinary write: an `Update` by the request's field manager.
    Update,
    /// A server-side apply: the field manager already wrote the object's managedFields.
    Applied,
}

impl Call {
    /// Whether this version has a status subresource (then the main resource ignores `.status`).
    fn has_status_subresource(&self) -> bool {
        self.endpoint.version().subresources.status
    }

    /// Decodes a create/update body and checks apiVersion and kind.
    /// Also returns the warnings for duplicate JSON keys (under `fieldValidation=Warn`); under
    /// `Strict` they fail the request.
    async fn read_object(&self, body: Body, validation: FieldValidation) -> Result<(Value, Vec<String>), ApiError> {
        let kind = self.kind();
        let encoding =
            body_encoding(&self.headers).ok_or_else(|| ApiError::unsupported_media_type(&["application/json", "application/yaml"]))?;
        let bytes = read_body(body).await?;
        let object = decode_body(&bytes, encoding, kind)?;
        let object = self.check_type(object)?;
        let duplicates = match (encoding, validation) {
            (crate::http::negotiate::Encoding::Json, FieldValidation::Strict | FieldValidation::Warn) => {
                super::duplicates::duplicate_fields(&bytes)
            }
            _ => Vec::new(),
        };
        let messages: Vec<String> = duplicates.iter().map(|f| format!("duplicate field {f:?}")).collect();
        if validation == FieldValidation::Strict && !messages.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{kind} in version {:?} cannot be handled as a {kind}: strict decoding error: {}",
                self.endpoint.version,
                messages.join(", ")
            )));
        }
        Ok((object, messages))
    }

    /// Checks that a decoded value is an object of this endpoint's kind and version.
    fn check_type(&self, object: Value) -> Result<Value, ApiError> {
        let kind = self.kind();
        let Value::Object(map) = &object else {
            return Err(ApiError::bad_request(format!("the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}", json_kind(&object))));
        };
        let body_kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
        let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if body_kind.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{}'",
                serde_json::to_string(&object).unwrap_or_default()
            )));
        }
        if api_version.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Object 'apiVersion' is missing in '{}'",
                serde_json::to_string(&object).unwrap_or_default()
            )));
        }
        if api_version != self.endpoint.api_version() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                self.endpoint.api_version()
            )));
        }
        if body_kind != kind {
            let name = meta_str(&object, "name").unwrap_or("");
            let error = FieldError::new(FieldErrorKind::Invalid, "kind", Some(format!("{body_kind:?}")), format!("must be {kind}"));
            return Err(ApiError::invalid(self.group(), body_kind, name, &[error]));
        }
        Ok(object)
    }

    /// Makes the object's namespace agree with the path (filled in when empty).
    fn check_namespace(&self, object: &mut Value) -> Result<(), ApiError> {
        let meta = metadata_mut(object);
        match self.namespace() {
            Some(ns) => match meta.get("namespace").and_then(Value::as_str) {
                None | Some("") => {
                    meta.insert("namespace".into(), Value::String(ns.to_string()));
                }
                Some(body_ns) if body_ns != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                Some(_) => {}
            },
            None => {
                meta.remove("namespace");
            }
        }
        Ok(())
    }

    /// Prunes, validates (schema, metadata, then `x-kubernetes-validations` rules, with `old`
    /// the stored object on update), and turns unknown fields into warnings or a
    /// strict-decoding error.
    fn admit(&self, mut object: Value, validation: FieldValidation, old: Option<&Value>) -> Result<Admitted, ApiError> {
        let schema = &self.endpoint.version().schema;
        let outcome = prune_and_validate(&mut object, schema);
        let mut warnings = Vec::new();
        if !outcome.unknown.is_empty() {
            match validation {
                FieldValidation::Strict => {
                    let kind = self.kind();
                    let fields = outcome.unknown.iter().map(|f| format!("unknown field {f:?}")).collect::<Vec<_>>().join(", ");
                    return Err(ApiError::bad_request(format!(
                        "{kind} in version {:?} cannot be handled as a {kind}: strict decoding error: {fields}",
                        self.endpoint.version
                    )));
                }
                FieldValidation::Warn => warnings.extend(outcome.unknown.iter().map(|f| format!("unknown field {f:?}"))),
                FieldValidation::Ignore => {}
            }
        }
        let mut errors = validate_metadata(&object, self.endpoint.resource().namespaced());
        errors.extend(outcome.errors);
        let rules = super::cel::validate(schema, &object, old, &errors);
        errors.extend(rules.errors);
        warnings.extend(rules.warnings);
        if !errors.is_empty() {
            let name = meta_str(&object, "name").unwrap_or("").to_string();
            return Err(ApiError::invalid(self.group(), self.kind(), &name, &errors));
        }
        object::canonicalize(&mut object);
        // Objects are stored in the storage version; with conversion `None` only apiVersion
        // differs between versions.
        let storage_version = format!("{}/{}", self.group(), self.endpoint.resource().storage_version().name);
        object.as_object_mut().expect("checked to be an object").insert("apiVersion".into(), Value::String(storage_version));
        Ok(Admitted { object, warnings })
    }

    pub(super) async fn create(&self, body: Body) -> Result<Response, ApiError> {
        let negotiated = self.negotiated()?;
        let dry_run = self.dry_run(None)?;
        let validation = FieldValidation::parse(self.query.get("fieldValidation"))?;
        fieldmanager::validate_options(WriteOptions::Create, self.query.get("fieldManager"))?;
        let (object, duplicates) = self.read_object(body, validation).await?;
        let response = self.create_object(object, negotiated, dry_run, validation, Tracking::Update).await?;
        Ok(with_warnings(response, &duplicates))
    }

    /// Creates `object`: the body of a POST, or what an apply to a missing object produced.
    async fn create_object(
        &self,
        mut object: Value,
        negotiated: Negotiated,
        dry_run: bool,
        validation: FieldValidation,
        tracking: Tracking,
    ) -> Result<Response, ApiError> {
        self.check_namespace(&mut object)?;
        let generate = {
            let meta = metadata_mut(&mut object);
            if meta.get("resourceVersion").and_then(Value::as_str).is_some_and(|rv| !rv.is_empty()) {
                return Err(ApiError::bad_request("resourceVersion should not be set on objects to be created"));
            }
            for field in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "resourceVersion"] {
                meta.remove(field);
            }
            meta.insert("uid".into(), Value::String(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), Value::String(object::now_timestamp()));
            meta.insert("generation".into(), Value::from(1));
            let has_name = meta.get("name").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
            let prefix = meta.get("generateName").and_then(Value::as_str).filter(|p| !p.is_empty()).map(str::to_string);
            match (has_name, prefix) {
                (false, Some(prefix)) => {
                    meta.insert("name".into(), Value::String(object::generate_name(&prefix)));
                    Some(prefix)
                }
                _ => None,
            }
        };
        if self.has_status_subresource() {
            if let Some(map) = object.as_object_mut() {
                map.remove("status");
            }
        }
        let admitted = self.admit(object, validation, None)?;
        let mut object = admitted.object;
        if tracking == Tracking::Update {
            self.field_manager().update(None, &mut object, &self.update_manager());
        }
        let name = meta_str(&object, "name").unwrap_or_default().to_string();
        if dry_run {
            self.to_served_version(&mut object);
            let response = self.render_object(StatusCode::CREATED, &object, negotiated)?;
            return Ok(with_warnings(response, &admitted.warnings));
        }
        // A generated name can collide; kube-apiserver retries with a new suffix.
        let mut attempts = if generate.is_some() { 8 } else { 1 };
        let kv = loop {
            let name = meta_str(&object, "name").unwrap_or_default().to_string();
            let bytes = Bytes::from(serde_json::to_vec(&object).map_err(ApiError::internal)?);
            match self.storage().create(&self.key(&name), bytes).await {
                Err(storage::Error::AlreadyExists) if attempts > 1 => {
                    attempts -= 1;
                    let prefix = generate.as_deref().unwrap_or_default();
                    metadata_mut(&mut object).insert("name".into(), Value::String(object::generate_name(prefix)));
                    object::canonicalize(&mut object);
                }
                other => break other.map_err(|e| self.storage_error(e, &name))?,
            }
        };
        let _ = name;
        let stored = self.decode_stored(&kv)?;
        let response = self.render_object(StatusCode::CREATED, &stored, negotiated)?;
        Ok(with_warnings(response, &admitted.warnings))
    }

    pub(super) async fn update(&self, body: Body) -> Result<Response, ApiError> {
        let negotiated = self.negotiated()?;
        let dry_run = self.dry_run(None)?;
        let validation = FieldValidation::parse(self.query.get("fieldValidation"))?;
        fieldmanager::validate_options(WriteOptions::Update, self.query.get("fieldManager"))?;
        let (mut object, duplicates) = self.read_object(body, validation).await?;
        self.check_namespace(&mut object)?;
        self.check_name(&object)?;
        let precondition = meta_str(&object, "resourceVersion").filter(|rv| !rv.is_empty()).map(str::to_string);
        let mut tries = 0;
        loop {
            let current = self.current().await?;
            if let Some(rv) = &precondition {
                if rv != &current.mod_revision.to_string() {
                    return Err(ApiError::stale(self.group(), self.plural(), self.name.as_deref().unwrap_or_default()));
                }
            }
            match self.store_update(object.clone(), &current, validation, dry_run).await {
                Err(UpdateError::Conflict) if precondition.is_none() && tries < UPDATE_RETRIES => tries += 1,
                Err(UpdateError::Conflict) => {
                    return Err(ApiError::stale(self.group(), self.plural(), self.name.as_deref().unwrap_or_default()))
                }
                Err(UpdateError::Api(e)) => return Err(e),
                Ok((stored, mut warnings)) => {
                    warnings.extend(duplicates);
                    return Ok(with_warnings(self.render_object(StatusCode::OK, &stored, negotiated)?, &warnings));
                }
            }
        }
    }

    pub(super) async fn patch(&self, body: Body) -> Result<Response, ApiError> {
        let negotiated = self.negotiated()?;
        let dry_run = self.dry_run(None)?;
        let validation = FieldValidation::parse(self.query.get("fieldValidation"))?;
        let content_type = self.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let patch_type = PatchType::from_content_type(content_type).ok_or_else(|| ApiError::unsupported_media_type(PatchType::ACCEPTED))?;
        let bytes = read_body(body).await?;
        let apply = patch_type == PatchType::Apply;
        fieldmanager::validate_options(
            WriteOptions::Patch { apply, force_given: self.query.get("force").is_some() },
            self.query.get("fieldManager"),
        )?;
        let patch_doc = patch::parse(patch_type, &bytes)?;
        let schema = &self.endpoint.version().schema;
        let tracking = if apply { Tracking::Applied } else { Tracking::Update };
        let mut tries = 0;
        loop {
            let current = match self.current().await {
                // An apply creates what does not exist (not through a subresource).
                Err(e) if apply && e.code == 404 && self.subresource.is_none() => {
                    match self.create_by_apply(&patch_doc, negotiated, dry_run, validation).await {
                        Err(e) if e.reason == "AlreadyExists" && tries < UPDATE_RETRIES => {
                            tries += 1;
                            continue;
                        }
                        other => return other,
                    }
                }
                other => other?,
            };
            let current_object = self.decode_stored(&current)?;
            let patched = match &patch_doc {
                PatchDocument::Object(config) if apply => self.field_manager().apply(
                    Some(&current_object),
                    config,
                    self.query.get("fieldManager").unwrap_or_default(),
                    self.query.flag("force"),
                )?,
                _ => patch::apply(patch_type, &current_object, &patch_doc, schema)?,
            };
            let patched = self.check_type(patched)?;
            let mut patched = patched;
            self.check_namespace(&mut patched)?;
            self.check_name(&patched)?;
            // A resourceVersion in the patch is a precondition (kubectl diff sends one).
            let precondition = meta_str(&patched, "resourceVersion").filter(|rv| !rv.is_empty()).map(str::to_string);
            if let Some(rv) = &precondition {
                if rv != &current.mod_revision.to_string() {
                    return Err(ApiError::stale(self.group(), self.plural(), self.name.as_deref().unwrap_or_default()));
                }
            }
            match self.store_update_tracked(patched, &current, validation, dry_run, tracking).await {
                Err(UpdateError::Conflict) if tries < UPDATE_RETRIES => tries += 1,
                Err(UpdateError::Conflict) => {
                    return Err(ApiError::stale(self.group(), self.plural(), self.name.as_deref().unwrap_or_default()))
                }
                Err(UpdateError::Api(e)) => return Err(e),
                Ok((stored, warnings)) => return Ok(with_warnings(self.render_object(StatusCode::OK, &stored, negotiated)?, &warnings)),
            }
        }
    }

    /// The stored object addressed by the path, or 404.
    pub(super) async fn current(&self) -> Result<KeyValue, ApiError> {
        let name = self.name.as_deref().unwrap_or_default();
        self.storage()
            .get(&self.key(name))
            .await
            .map_err(|e| self.storage_error(e, name))?
            .ok_or_else(|| ApiError::not_found(self.group(), self.plural(), name))
    }

    /// Field management for writes through this endpoint.
    fn field_manager(&self) -> FieldManager<'static> {
        FieldManager::new(
            &self.endpoint.version().schema,
            &self.endpoint.api_version(),
            self.kind(),
            self.subresource,
            self.has_status_subresource(),
        )
    }

    /// The manager of an ordinary write: `fieldManager`, else the User-Agent's program name.
    fn update_manager(&self) -> String {
        let agent = self.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok());
        fieldmanager::manager_for_update(self.query.get("fieldManager"), agent)
    }

    /// Applies to an object that does not exist: the configuration merged into nothing is
    /// created (201).
    async fn create_by_apply(
        &self,
        patch_doc: &PatchDocument,
        negotiated: Negotiated,
        dry_run: bool,
        validation: FieldValidation,
    ) -> Result<Response, ApiError> {
        let PatchDocument::Object(config) = patch_doc else {
            return Err(ApiError::internal("apply patch is not an object"));
        };
        let object =
            self.field_manager().apply(None, config, self.query.get("fieldManager").unwrap_or_default(), self.query.flag("force"))?;
        let object = self.check_type(object)?;
        self.check_name(&object)?;
        self.create_object(object, negotiated, dry_run, validation, Tracking::Applied).await
    }

    fn check_name(&self, object: &Value) -> Result<(), ApiError> {
        let url_name = self.name.as_deref().unwrap_or_default();
        let body_name = meta_str(object, "name").unwrap_or("");
        if body_name != url_name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
            )));
        }
        Ok(())
    }

    /// Carries server-owned fields over from the stored object, admits the result and writes it
    /// with a compare-and-swap on the stored revision.
    pub(super) async fn store_update(
        &self,
        object: Value,
        current: &KeyValue,
        validation: FieldValidation,
        dry_run: bool,
    ) -> Result<(Value, Vec<String>), UpdateError> {
        self.store_update_tracked(object, current, validation, dry_run, Tracking::Update).await
    }

    /// [`Self::store_update`], recording the write in managedFields as `tracking` says.
    async fn store_update_tracked(
        &self,
        mut object: Value,
        current: &KeyValue,
        validation: FieldValidation,
        dry_run: bool,
        tracking: Tracking,
    ) -> Result<(Value, Vec<String>), UpdateError> {
        let old = self.decode_stored(current).map_err(UpdateError::Api)?;
        // An apply's managedFields must survive the status reset below.
        let applied_fields = (tracking == Tracking::Applied).then(|| object.get("metadata").and_then(|m| m.get("managedFields")).cloned());
        let status_write = self.subresource == Some("status");
        if status_write {
            // A status write changes only .status: everything else comes from the stored object.
            let status = object.get("status").cloned();
            object = old.clone();
            let map = object.as_object_mut().expect("stored objects are objects");
            match status {
                Some(s) => map.insert("status".into(), s),
                None => map.remove("status"),
            };
        } else if self.has_status_subresource() {
            let map = object.as_object_mut().expect("checked to be an object");
            match old.get("status") {
                Some(s) => map.insert("status".into(), s.clone()),
                None => map.remove("status"),
            };
        }
        let old_meta = old.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
        let deleting = old_meta.contains_key("deletionTimestamp");
        {
            let meta = metadata_mut(&mut object);
            for field in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
                match old_meta.get(field) {
                    Some(v) => meta.insert(field.into(), v.clone()),
                    None => meta.remove(field),
                };
            }
            meta.remove("resourceVersion");
            meta.remove("selfLink");
        }
        if deleting {
            let old_finalizers = finalizers(&old);
            let added: Vec<String> = finalizers(&object).into_iter().filter(|f| !old_finalizers.contains(f)).collect();
            if !added.is_empty() {
                let error = FieldError::new(
                    FieldErrorKind::Forbidden,
                    "metadata.finalizers",
                    None,
                    format!("no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"),
                );
                let name = self.name.clone().unwrap_or_default();
                return Err(UpdateError::Api(ApiError::invalid(self.group(), self.kind(), &name, &[error])));
            }
        }
        let admitted = self.admit(object, validation, Some(&old)).map_err(UpdateError::Api)?;
        let mut object = admitted.object;
        if !status_write && object::spec_changed(&old, &object, self.has_status_subresource()) {
            let generation = old.get("metadata").and_then(|m| m.get("generation")).and_then(Value::as_i64).unwrap_or(0);
            metadata_mut(&mut object).insert("generation".into(), Value::from(generation + 1));
            object::canonicalize(&mut object);
        }
        match applied_fields {
            Some(fields) => {
                let meta = metadata_mut(&mut object);
                match fields {
                    Some(fields) => meta.insert("managedFields".into(), fields),
                    None => meta.remove("managedFields"),
                };
                meta.sort_keys();
            }
            None => self.field_manager().update(Some(&old), &mut object, &self.update_manager()),
        }
        // An update that changes nothing is not written and keeps the resourceVersion.
        let mut unchanged = old.clone();
        metadata_mut(&mut unchanged).remove("resourceVersion");
        unchanged.as_object_mut().expect("object").insert("apiVersion".into(), object.get("apiVersion").cloned().unwrap_or(Value::Null));
        fieldmanager::keep_timestamps_of_noop(&unchanged, &mut object);
        if unchanged == object {
            return Ok((old, admitted.warnings));
        }
        if dry_run {
            object::set_resource_version(&mut object, current.mod_revision);
            self.to_served_version(&mut object);
            return Ok((object, admitted.warnings));
        }
        let name = self.name.clone().unwrap_or_default();
        let key = self.key(&name);
        // The last finalizer of an object being deleted is gone: the object goes away now.
        if deleting && finalizers(&object).is_empty() {
            return match self.storage().delete(&key, Some(current.mod_revision)).await {
                Ok((_, revision)) => {
                    object::set_resource_version(&mut object, revision);
                    self.to_served_version(&mut object);
                    Ok((object, admitted.warnings))
                }
                Err(storage::Error::Conflict { .. }) => Err(UpdateError::Conflict),
                Err(e) => Err(UpdateError::Api(self.storage_error(e, &name))),
            };
        }
        let bytes = Bytes::from(serde_json::to_vec(&object).map_err(|e| UpdateError::Api(ApiError::internal(e)))?);
        match self.storage().update(&key, bytes, current.mod_revision).await {
            Ok(kv) => Ok((self.decode_stored(&kv).map_err(UpdateError::Api)?, admitted.warnings)),
            Err(storage::Error::Conflict { .. }) => Err(UpdateError::Conflict),
            Err(e) => Err(UpdateError::Api(self.storage_error(e, &name))),
        }
    }
}

/// Why an update attempt failed.
pub(super) enum UpdateError {
    /// Another writer changed the object first; retry or report 409.
    Conflict,
    /// Anything else, final.
    Api(ApiError),
}

/// `metadata.finalizers` as strings.
pub(super) fn finalizers(object: &Value) -> Vec<String> {
    object
        .get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|fs| fs.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        _ => "null",
    }
}

/// Adds one `Warning: 299 - "…"` header per warning.
pub(super) fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            response.headers_mut().append(http::header::WARNING, v);
        }
    }
    response
}
