//! Field management: `metadata.managedFields` on every write, and server-side apply.
//!
//! Every write records who set which fields. An ordinary write (create, update, JSON, merge or
//! strategic patch) is an `Update` by its field manager — the `fieldManager` parameter, or the
//! program name of the User-Agent — which takes every field it changed. A server-side apply
//! (`PATCH` with `application/apply-patch+yaml`) declares the fields its manager wants: they are
//! merged into the object along the schema, the fields the manager stopped declaring are removed
//! when nobody else owns them, and changing a field another manager owns is a conflict unless
//! forced.
//!
//! The layers, from the bottom: [`path`] and [`fieldset`] (paths, sets, the FieldsV1
//! encoding), [`schema`] (how each part of an object merges), [`typed`] (walks over values:
//! field sets, compare, merge, removal), [`apply`] (ownership rules), [`managed`] (the entries
//! as stored), [`conflicts`] (the 409), [`lastapplied`] (the client-side apply upgrade path).
//! [`FieldManager`] puts them in the order kube-apiserver runs them.
//!
//! ```
//! use server::fieldmanager::FieldManager;
//! // An untyped schema: every map is granular, and its keys are owned along with their values.
//! let schema = apimodel::Schema::default();
//! let fm = FieldManager::new(&schema, "example.com/v1", "Widget", None, false);
//! let config = serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget",
//!     "metadata": {"name": "w"}, "spec": {"size": 1}});
//! let applied = fm.apply(None, &config, "me", false).unwrap();
//! let fields = &applied["metadata"]["managedFields"][0]["fieldsV1"];
//! assert_eq!(*fields, serde_json::json!({"f:spec": {".": {}, "f:size": {}}}));
//! ```

pub mod apply;
pub mod conflicts;
pub mod fieldset;
mod gojson;
pub mod lastapplied;
pub mod managed;
pub mod path;
pub mod schema;
pub mod typed;

#[cfg(test)]
mod tests;

use crate::http::{ApiError, FieldError, FieldErrorKind};
use apimodel::Schema;
use chrono::{DateTime, Utc};
use fieldset::FieldSet;
use managed::{ManagedFields, ManagerId, MAX_UPDATE_MANAGERS};
use path::PathElement;
use serde_json::{Map, Value};

/// The Content-Type of server-side apply patches.
pub const APPLY_PATCH_CONTENT_TYPE: &str = "application/apply-patch+yaml";

/// The longest `fieldManager` accepted.
const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// Manager of the fields an object had before anything tracked them, recorded at the first
/// apply so that the applier conflicts with them instead of silently taking them.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Field management for writes through one endpoint (resource version and subresource).
pub struct FieldManager<'a> {
    ty: schema::Type<'a>,
    api_version: String,
    kind: String,
    subresource: String,
    ignored: FieldSet,
    unowned: FieldSet,
}

impl<'a> FieldManager<'a> {
    /// Field management for objects of `schema`, written through `api_version` (`group/version`)
    /// and `subresource` (`Some("status")` or `None`). With a status subresource, writes to the
    /// main resource own no part of `status`, and writes to `status` own no part of `spec`.
    pub fn new(schema: &'a Schema, api_version: &str, kind: &str, subresource: Option<&str>, status_subresource: bool) -> Self {
        let field = |name: &str| [PathElement::Field(name.to_string())];
        let ignored = match subresource {
            Some("status") => FieldSet::from_paths([field("spec").as_slice()]),
            _ if status_subresource => FieldSet::from_paths([field("status").as_slice()]),
            _ => FieldSet::new(),
        };
        FieldManager {
            ty: schema::Type::Root(schema),
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            subresource: subresource.unwrap_or_default().to_string(),
            ignored,
            unowned: managed::unowned_fields(),
        }
    }

    fn updater(&self) -> apply::Updater<'_> {
        apply::Updater { ty: self.ty, version: &self.api_version, ignored: &self.ignored, unowned: &self.unowned }
    }

    /// The empty object a create starts from.
    fn empty_object(&self) -> Value {
        let mut map = Map::new();
        map.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        map.insert("kind".into(), Value::String(self.kind.clone()));
        Value::Object(map)
    }

    /// Records an ordinary write (create when `live` is `None`) by `manager` in
    /// `new.metadata.managedFields`.
    ///
    /// The request's own `managedFields` are used as the starting point when they are valid
    /// and not empty (that is how clients edit them), `[]` clears them, and anything else falls
    /// back to the live object's. Writes to a subresource always start from the live object's.
    /// An existing object without managedFields stays untracked until its first apply.
    pub fn update(&self, live: Option<&Value>, new: &mut Value, manager: &str) {
        self.update_at(live, new, manager, Utc::now())
    }

    fn update_at(&self, live: Option<&Value>, new: &mut Value, manager: &str, now: DateTime<Utc>) {
        let mut managed = self.starting_point(live, new);
        object_meta(new).remove("managedFields");
        let creating = live.is_none_or(|l| meta_field(l, "uid").is_none());
        if managed.is_empty() && !creating {
            // An object nobody tracks stays untracked on updates (until its first apply).
            return;
        }
        let empty = self.empty_object();
        let live = live.unwrap_or(&empty);
        let manager = if manager.is_empty() { "unknown" } else { manager };
        let id = ManagerId::update(manager, &self.api_version, &self.subresource);
        self.updater().record_update(live, new, &mut managed, &id, now);
        managed.cap_update_managers(MAX_UPDATE_MANAGERS);
        set_managed_fields(new, &managed);
    }

    /// Where an update's managedFields start (empty when the request resets them).
    fn starting_point(&self, live: Option<&Value>, new: &Value) -> ManagedFields {
        let from_live = || live.and_then(|l| ManagedFields::decode(meta_field(l, "managedFields")).ok()).unwrap_or_default();
        if !self.subresource.is_empty() {
            return from_live();
        }
        let requested = meta_field(new, "managedFields");
        if is_reset(requested) {
            return ManagedFields::default();
        }
        match ManagedFields::decode(requested) {
            Ok(managed) if !managed.is_empty() => managed,
            _ => from_live(),
        }
    }

    /// Applies `config` as `manager` to `live` (`None`: the object does not exist yet) and
    /// returns the object to store, managedFields included.
    pub fn apply(&self, live: Option<&Value>, config: &Value, manager: &str, force: bool) -> Result<Value, ApiError> {
        self.apply_at(live, config, manager, force, Utc::now())
    }

    fn apply_at(&self, live: Option<&Value>, config: &Value, manager: &str, force: bool, now: DateTime<Utc>) -> Result<Value, ApiError> {
        self.check_type(config)?;
        let empty = self.empty_object();
        let live = live.unwrap_or(&empty);
        let managed = ManagedFields::decode(meta_field(live, "managedFields"))
            .map_err(|e| internal_error(format!("failed to decode managed fields: {e}")))?;
        if meta_field(config, "managedFields").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let errors = typed::validate(config, self.ty);
        if !errors.is_empty() {
            let listed = match errors.as_slice() {
                [one] => one.clone(),
                many => format!("errors:\n  {}", many.join("\n  ")),
            };
            return Err(internal_error(format!("failed to create typed patch object ({}): {listed}", self.describe_object(config))));
        }
        let outcome = match self.apply_tracked(live, config, manager, force, managed.clone(), now) {
            Err(conflicts) if manager == lastapplied::KUBECTL && !force => {
                // kubectl taking over from client-side apply: conflicts on what the last
                // client-side configuration already said are not conflicts.
                match lastapplied::forgiven_fields(live, self.ty, &self.api_version) {
                    Some(forgiven) => {
                        let remaining = conflicts.without(&forgiven);
                        if remaining.is_empty() {
                            self.apply_tracked(live, config, manager, true, managed, now)
                        } else {
                            Err(remaining)
                        }
                    }
                    None => Err(conflicts),
                }
            }
            other => other,
        };
        let (mut object, managed) = outcome.map_err(|c| c.to_api_error())?;
        if manager == lastapplied::KUBECTL {
            lastapplied::refresh(&mut object, config);
        }
        typed::drop_disallowed_nulls(&mut object, self.ty);
        set_managed_fields(&mut object, &managed);
        Ok(object)
    }

    /// One apply with its bookkeeping: attribute untracked fields first, merge, take ownership,
    /// stamp the time when the object changed, cap the update entries.
    fn apply_tracked(
        &self,
        live: &Value,
        config: &Value,
        manager: &str,
        force: bool,
        mut managed: ManagedFields,
        now: DateTime<Utc>,
    ) -> Result<(Value, ManagedFields), conflicts::Conflicts> {
        let updater = self.updater();
        if managed.is_empty() {
            let before = ManagerId::update(BEFORE_FIRST_APPLY, &self.api_version, &self.subresource);
            updater.record_update(&self.empty_object(), live, &mut managed, &before, now);
        }
        let id = ManagerId::apply(manager, &self.subresource);
        let merged = updater.apply(live, config, &mut managed, &id, force)?;
        let object = match merged {
            Some(object) => {
                if let Some(entry) = managed.get_mut(&id) {
                    entry.time = Some(now);
                }
                object
            }
            None => live.clone(),
        };
        managed.cap_update_managers(MAX_UPDATE_MANAGERS);
        Ok((object, managed))
    }

    /// The applied configuration must be of this endpoint's version and kind.
    fn check_type(&self, config: &Value) -> Result<(), ApiError> {
        let api_version = config.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
        if api_version != self.api_version || kind != self.kind {
            return Err(ApiError::bad_request(format!("invalid object type: {}", describe_gvk(api_version, kind))));
        }
        Ok(())
    }

    /// `namespace/name; group/version, Kind=Kind`, as kube names the object in apply errors.
    fn describe_object(&self, config: &Value) -> String {
        let namespace = meta_field(config, "namespace").and_then(Value::as_str).unwrap_or("");
        let name = meta_field(config, "name").and_then(Value::as_str).unwrap_or("");
        format!("{namespace}/{name}; {}", describe_gvk(&self.api_version, &self.kind))
    }
}

/// Keeps the managedFields timestamps of `old` in `new` when the two differ only by those
/// timestamps, so that a write that changes nothing is not stored (and does not bump the
/// resourceVersion) just because a manager's time moved.
pub fn keep_timestamps_of_noop(old: &Value, new: &mut Value) {
    let (Some(Value::Array(before)), Some(Value::Array(after))) = (meta_field(old, "managedFields"), meta_field(new, "managedFields"))
    else {
        return;
    };
    if before.len() != after.len() || after.is_empty() {
        return;
    }
    let without_time = |e: &Value| {
        let mut e = e.clone();
        if let Some(m) = e.as_object_mut() {
            m.remove("time");
        }
        e
    };
    let times_moved = before.iter().zip(after).any(|(a, b)| a.get("time") != b.get("time"));
    if !times_moved || before.iter().zip(after).any(|(a, b)| without_time(a) != without_time(b)) || !equal_but_managed_fields(old, new) {
        return;
    }
    let restored = Value::Array(before.clone());
    object_meta(new).insert("managedFields".into(), restored);
}

/// Whether two objects are equal apart from `metadata.managedFields`.
fn equal_but_managed_fields(a: &Value, b: &Value) -> bool {
    fn equal_without(a: &Map<String, Value>, b: &Map<String, Value>, skip: &str) -> bool {
        let count = |m: &Map<String, Value>| m.keys().filter(|k| *k != skip).count();
        count(a) == count(b) && a.iter().filter(|(k, _)| *k != skip).all(|(k, v)| b.get(k) == Some(v))
    }
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            let meta = |m: &Map<String, Value>| m.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
            equal_without(a, b, "metadata") && equal_without(&meta(a), &meta(b), "managedFields")
        }
        _ => a == b,
    }
}

/// The manager of an ordinary write: the `fieldManager` parameter, else the User-Agent's program
/// name (up to the first `/`, printable characters only, at most 128 bytes).
pub fn manager_for_update(field_manager: Option<&str>, user_agent: Option<&str>) -> String {
    if let Some(m) = field_manager.filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let program = user_agent.unwrap_or("").split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in program.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// Which request options a write validates (they name the options kind in errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOptions {
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH, with whether it is an apply and whether `force` was given.
    Patch {
        /// The patch is a server-side apply.
        apply: bool,
        /// The `force` parameter is present.
        force_given: bool,
    },
}

impl WriteOptions {
    /// The options kind kube-apiserver names in errors (`CreateOptions`, …).
    pub fn kind(self) -> &'static str {
        match self {
            WriteOptions::Create => "CreateOptions",
            WriteOptions::Update => "UpdateOptions",
            WriteOptions::Patch { .. } => "PatchOptions",
        }
    }
}

/// Validates `fieldManager` (and `force` for patches) as kube-apiserver does: required for
/// apply, at most 128 bytes of printable characters; `force` only for apply.
pub fn validate_options(options: WriteOptions, field_manager: Option<&str>) -> Result<(), ApiError> {
    let errors = option_errors(options, field_manager);
    if errors.is_empty() {
        return Ok(());
    }
    Err(options_invalid(options.kind(), &errors))
}

/// The field errors of [`validate_options`], in kube-apiserver's order, for a caller that adds
/// its own (`dryRun`, `fieldValidation`) before answering.
pub fn option_errors(options: WriteOptions, field_manager: Option<&str>) -> Vec<FieldError> {
    let manager = field_manager.unwrap_or("");
    let mut errors = Vec::new();
    match options {
        WriteOptions::Patch { apply: false, force_given: true } => {
            errors.push(FieldError::new(FieldErrorKind::Forbidden, "force", None, "may not be specified for non-apply patch"));
        }
        WriteOptions::Patch { apply: true, .. } if manager.is_empty() => {
            errors.push(FieldError::new(FieldErrorKind::Required, "fieldManager", None, "is required for apply patch"));
        }
        _ => {}
    }
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errors.push(FieldError::new(
            FieldErrorKind::TooLong,
            "fieldManager",
            None,
            format!("may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes"),
        ));
    }
    for (i, c) in manager.char_indices().filter(|(_, c)| c.is_control()) {
        errors.push(FieldError::new(
            FieldErrorKind::Invalid,
            "fieldManager",
            Some(format!("{manager:?}")),
            format!("invalid character U+{:04X} (at position {i})", c as u32),
        ));
    }
    errors
}

/// kube-apiserver's 422 for invalid request options: `<Kind>.meta.k8s.io "" is invalid: …`,
/// without a name in the details.
pub fn options_invalid(kind: &'static str, errors: &[FieldError]) -> ApiError {
    let mut error = ApiError::invalid("meta.k8s.io", kind, "", errors);
    if let Some(details) = error.details.as_mut() {
        details.name = None;
    }
    error
}

/// Decodes an apply body: YAML, of which JSON is a subset. It must be an object.
pub fn parse_apply_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let value = crate::http::yaml::parse(bytes).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(Map::new())),
        other => Err(ApiError::bad_request(format!(
            "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            }
        ))),
    }
}

/// `apiVersion` and `kind` as Go prints a GroupVersionKind (`group/version, Kind=Kind`).
fn describe_gvk(api_version: &str, kind: &str) -> String {
    let (group, version) = match api_version.matches('/').count() {
        0 => ("", api_version),
        1 => api_version.split_once('/').expect("one slash"),
        _ => ("", ""),
    };
    format!("{group}/{version}, Kind={kind}")
}

/// A 500 carrying kube-apiserver's message (it reports these failures without a reason).
fn internal_error(message: String) -> ApiError {
    ApiError::new(500, "", message)
}

fn meta_field<'v>(object: &'v Value, field: &str) -> Option<&'v Value> {
    object.get("metadata")?.get(field)
}

fn object_meta(object: &mut Value) -> &mut Map<String, Value> {
    crate::engine::object::metadata_mut(object)
}

/// `[]` and `[{}]` reset managedFields (kube's way to let clients drop them).
fn is_reset(requested: Option<&Value>) -> bool {
    match requested {
        Some(Value::Array(items)) => items.is_empty() || (items.len() == 1 && items[0].as_object().is_some_and(Map::is_empty)),
        _ => false,
    }
}

fn set_managed_fields(object: &mut Value, managed: &ManagedFields) {
    let meta = object_meta(object);
    match managed.encode() {
        Some(encoded) => {
            meta.insert("managedFields".into(), encoded);
            meta.sort_keys();
        }
        None => {
            meta.remove("managedFields");
        }
    }
}
