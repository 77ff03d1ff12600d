//! The generic registry: serves create, get, list, watch, update, patch, delete and
//! deletecollection for any resource the spec declares, driven by the generated model.
//!
//! Each verb is a module; they share [`Call`], the decoded request, and the helpers here for
//! reading bodies, translating storage errors and rendering objects in the negotiated form.

pub mod cel;
pub mod conversion;
mod delete;
pub mod duplicates;
pub mod list_cache;
pub mod namespaces;
pub mod object;
mod read;
mod scale;
pub mod selectors;
pub mod stored_json;
pub mod table;
pub mod validation;
mod watch;
mod write;

pub use read::ContinueToken;

use crate::http::negotiate::{self, Encoding, Negotiated, Shape};
use crate::http::{respond, wants_pretty, ApiError, Query};
use crate::storage::{self, Storage};
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use generated::{Endpoint, Target};
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;

/// Largest request body accepted, as kube-apiserver's default (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The engine: shared by every route, cheap to clone.
#[derive(Clone)]
pub struct ApiEngine {
    storage: Arc<dyn Storage>,
    /// A watch without `timeoutSeconds` lasts between one and two times this
    /// (`--min-request-timeout`).
    min_request_timeout: std::time::Duration,
    /// Asked before writes into a namespace (aggregated mode); `None`: any namespace will do.
    namespaces: Option<Arc<dyn namespaces::NamespaceAdmission>>,
    /// Rendered items of recent large lists (`--list-cache-bytes`).
    list_cache: Arc<list_cache::ListCache>,
}

impl ApiEngine {
    /// An engine over the given storage.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        cel::warm_up();
        ApiEngine {
            storage,
            min_request_timeout: crate::limits::Limits::default().min_request_timeout,
            namespaces: None,
            list_cache: Arc::new(list_cache::ListCache::new(list_cache::DEFAULT_BUDGET)),
        }
    }

    /// Keeps at most `bytes` of rendered list items for reuse (`--list-cache-bytes`; 0: none).
    pub fn with_list_cache_bytes(mut self, bytes: usize) -> Self {
        self.list_cache = Arc::new(list_cache::ListCache::new(bytes));
        self
    }

    /// Sets `--min-request-timeout`.
    pub fn with_min_request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.min_request_timeout = timeout;
        self
    }

    /// Creates and updates of namespaced objects first ask `admission` about their namespace,
    /// as kube-apiserver's NamespaceLifecycle admission plugin does.
    pub fn with_namespace_admission(mut self, admission: Arc<dyn namespaces::NamespaceAdmission>) -> Self {
        self.namespaces = Some(admission);
        self
    }
}

impl generated::Engine for ApiEngine {
    async fn serve(&self, target: Target, request: Request) -> Response {
        if let Some(response) = refuse_path(&target) {
            return response;
        }
        let (parts, body) = request.into_parts();
        let call = Call {
            engine: self.clone(),
            endpoint: target.endpoint,
            namespace: target.namespace,
            name: target.name,
            subresource: target.subresource,
            watch_path: target.watch_path,
            query: Query::parse(parts.uri.query()),
            headers: parts.headers,
            method: parts.method,
        };
        let warning = deprecation_warning(target.endpoint);
        let response = match call.dispatch(body).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        match warning {
            Some(w) => write::with_warnings(response, &[w]),
            None => response,
        }
    }
}

/// What kube-apiserver answers for names in the path that cannot be keys. The router decodes
/// each path segment after splitting the path, so `a%2Fb` arrives as the name `a/b`; Go decodes
/// the whole path first, so kube-apiserver sees the name `a` and a subresource `b` that does
/// not exist: 404. Names its storage refuses to key (`.`, `..`, containing `%`) are 400.
fn refuse_path(target: &Target) -> Option<Response> {
    if target.namespace.as_deref().is_some_and(|ns| ns.contains('/')) {
        return Some(crate::http::page_not_found());
    }
    let name = target.name.as_deref().filter(|_| !target.watch_path)?;
    let resource = target.endpoint.resource();
    if let Some((first, _)) = name.split_once('/') {
        return Some(ApiError::not_found(&resource.group, &resource.names.plural, first).into_response());
    }
    let why = match name {
        "." | ".." => format!("may not be '{name}'"),
        _ if name.contains('%') => "may not contain '%'".to_string(),
        _ => return None,
    };
    Some(ApiError::bad_request(format!("Name parameter invalid: {name:?}: {why}")).into_response())
}

/// The `Warning` kube-apiserver sends for every request to a deprecated version: the spec's
/// `deprecationWarning`, or `<group>/<version> <Kind> is deprecated; use <group>/<newer> <Kind>`
/// naming the highest-priority served, non-deprecated version newer than this one.
fn deprecation_warning(endpoint: &Endpoint) -> Option<String> {
    let version = endpoint.version();
    if !version.deprecated {
        return None;
    }
    if let Some(w) = &version.deprecation_warning {
        return Some(w.clone());
    }
    let resource = endpoint.resource();
    let (group, kind) = (&resource.group, &resource.names.kind);
    let mut message = format!("{group}/{} {kind} is deprecated", version.name);
    let newer = resource
        .versions
        .iter()
        .filter(|v| v.served && !v.deprecated && apimodel::version_priority(&v.name) < apimodel::version_priority(&version.name))
        .min_by(|a, b| apimodel::version_priority(&a.name).cmp(&apimodel::version_priority(&b.name)));
    if let Some(newer) = newer {
        message.push_str(&format!("; use {group}/{} {kind}", newer.name));
    }
    Some(message)
}

/// One decoded request.
pub(crate) struct Call {
    engine: ApiEngine,
    endpoint: &'static Endpoint,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<&'static str>,
    watch_path: bool,
    query: Query,
    headers: HeaderMap,
    method: Method,
}

impl Call {
    async fn dispatch(self, body: Body) -> Result<Response, ApiError> {
        let resource = self.endpoint.resource();
        // A namespaced resource listed across namespaces has no namespace; any other
        // collection or item of a namespaced resource has one from the path.
        let item = self.name.is_some();
        if self.watch_path {
            return match self.method {
                Method::GET => self.watch().await,
                ref m => Err(ApiError::method_not_allowed(m.as_str())),
            };
        }
        match (&self.method, item, self.subresource) {
            (&Method::GET, true, None | Some("status")) => self.get().await,
            (&Method::GET, false, None) if self.query.flag("watch") => self.watch().await,
            (&Method::GET, false, None) => self.list().await,
            (&Method::POST, false, None) if self.namespace.is_some() || !resource.namespaced() => self.create(body).await,
            (&Method::PUT, true, None | Some("status")) => self.update(body).await,
            (&Method::PATCH, true, None | Some("status")) => self.patch(body).await,
            (&Method::DELETE, true, None) => self.delete(body).await,
            (&Method::DELETE, false, None) if self.namespace.is_some() || !resource.namespaced() => self.delete_collection(body).await,
            (&Method::PUT | &Method::PATCH, false, _) => Err(ApiError::bad_request("name must be provided")),
            (&Method::GET | &Method::PUT | &Method::PATCH, true, Some("scale")) => self.scale(body).await,
            (m, _, _) => Err(ApiError::method_not_allowed(m.as_str())),
        }
    }

    fn group(&self) -> &'static str {
        &self.endpoint.resource().group
    }

    fn plural(&self) -> &'static str {
        &self.endpoint.resource().names.plural
    }

    fn kind(&self) -> &'static str {
        &self.endpoint.resource().names.kind
    }

    fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    fn key(&self, name: &str) -> String {
        object::object_key(self.group(), self.plural(), self.namespace(), name)
    }

    fn storage(&self) -> &dyn Storage {
        self.engine.storage.as_ref()
    }

    /// The response form the client asked for, or 406.
    fn negotiated(&self) -> Result<Negotiated, ApiError> {
        let accept = self.headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok());
        negotiate::negotiate_object(accept).ok_or_else(|| ApiError::not_acceptable(negotiate::OBJECT_MEDIA_TYPES))
    }

    fn pretty(&self) -> bool {
        wants_pretty(&self.query, &self.headers)
    }

    /// Storage failures as API errors about the object `name`.
    fn storage_error(&self, error: storage::Error, name: &str) -> ApiError {
        match error {
            storage::Error::NotFound => ApiError::not_found(self.group(), self.plural(), name),
            storage::Error::AlreadyExists => ApiError::already_exists(self.group(), self.plural(), name),
            storage::Error::Conflict { .. } => ApiError::stale(self.group(), self.plural(), name),
            storage::Error::Compacted { oldest } => ApiError::expired(format!("too old resource version: (oldest available {oldest})")),
            storage::Error::FutureRevision { current } => {
                ApiError::new(504, "Timeout", format!("Too large resource version: requested is newer than current {current}"))
            }
            storage::Error::Unavailable(why) => ApiError::unavailable(format!("storage is unavailable: {why}")),
        }
    }

    /// The object as stored, plus its resourceVersion, as the served version.
    fn decode_stored(&self, kv: &storage::KeyValue) -> Result<Value, ApiError> {
        let mut object = crate::json::build(&kv.value).map_err(|e| ApiError::internal(format!("corrupt object at {}: {e}", kv.key)))?;
        object::set_resource_version(&mut object, kv.mod_revision);
        conversion::to_served(self.endpoint, &mut object).map_err(|e| ApiError::internal(format!("converting {}: {e}", kv.key)))?;
        Ok(object)
    }

    /// The bytes to store for `object` (of the served version): converted to the storage
    /// version, keys sorted, compact JSON.
    fn encode_for_storage(&self, object: &Value) -> Result<bytes::Bytes, ApiError> {
        let mut stored = object.clone();
        conversion::to_storage(self.endpoint, &mut stored).map_err(ApiError::internal)?;
        object::canonicalize(&mut stored);
        Ok(bytes::Bytes::from(serde_json::to_vec(&stored).map_err(ApiError::internal)?))
    }

    /// Sets `apiVersion` to the served version (the object already has its shape).
    fn to_served_version(&self, object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), Value::String(self.endpoint.api_version()));
        }
    }

    /// Whether stored bytes are this endpoint's objects but for `apiVersion` and
    /// `resourceVersion`, which [`stored_json`] writes in.
    fn serves_stored_bytes(&self) -> bool {
        self.endpoint.resource().converts_by_api_version_only()
    }

    /// Renders one object in the negotiated form.
    fn render_object(&self, status: StatusCode, object: &Value, negotiated: Negotiated) -> Result<Response, ApiError> {
        let body = match negotiated.shape {
            Shape::Object => object.clone(),
            Shape::Table { beta } => {
                let include = table::IncludeObject::parse(self.query.get("includeObject")).map_err(ApiError::bad_request)?;
                let rv = object::meta_str(object, "resourceVersion").unwrap_or_default();
                let row = table::row(self.endpoint, object.clone(), include, beta, chrono::Utc::now());
                table::table(self.endpoint, vec![row], serde_json::json!({"resourceVersion": rv}), beta)
            }
            Shape::Metadata { beta } => table::partial_object_metadata(object.clone(), beta),
        };
        Ok(respond(status, &body, negotiated.encoding, self.pretty()))
    }

    /// Every `dryRun` value: the query's, then those of a DeleteOptions body.
    fn dry_run_values(&self, from_body: Option<&Value>) -> Vec<String> {
        let mut values: Vec<String> = self.query.0.iter().filter(|(k, _)| k == "dryRun").map(|(_, v)| v.clone()).collect();
        if let Some(Value::Array(items)) = from_body.and_then(|b| b.get("dryRun")) {
            values.extend(items.iter().filter_map(|v| v.as_str().map(str::to_string)));
        }
        values
    }

    /// Whether the request is a dry run; `dryRun` values other than `All` are kube's 422 about
    /// the options kind `kind` (`UpdateOptions`, …).
    fn dry_run(&self, kind: &'static str, from_body: Option<&Value>) -> Result<bool, ApiError> {
        let values = self.dry_run_values(from_body);
        match write::dry_run_error(&values) {
            Some(error) => Err(crate::fieldmanager::options_invalid(kind, &[error])),
            None => Ok(!values.is_empty()),
        }
    }
}

/// Reads a request body up to [`MAX_BODY_BYTES`], as kube-apiserver does: a body that says
/// it is larger (Content-Length) is refused before any of it is read, and one that turns out
/// larger while streaming (chunked) is refused as soon as it passes the limit, so no more than
/// the limit is ever buffered.
pub(crate) async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    if axum::body::HttpBody::size_hint(&body).lower() > MAX_BODY_BYTES as u64 {
        return Err(ApiError::too_large(MAX_BODY_BYTES));
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|e| {
        let too_large =
            std::error::Error::source(&e).is_some_and(|s| s.to_string().contains("length limit")) || e.to_string().contains("length limit");
        if too_large {
            ApiError::too_large(MAX_BODY_BYTES)
        } else {
            ApiError::bad_request(format!("unable to read the request body: {e}"))
        }
    })
}

/// Encoding of a request body from its Content-Type (none means JSON, as in kube-apiserver);
/// `None` for a type we do not decode, or one that is not a media type at all.
pub(crate) fn body_encoding(headers: &HeaderMap) -> Option<Encoding> {
    let Some(header) = headers.get(http::header::CONTENT_TYPE) else { return Some(Encoding::Json) };
    let header = header.to_str().ok()?;
    if header.trim().is_empty() {
        return Some(Encoding::Json);
    }
    match negotiate::content_type_essence(Some(header)).as_str() {
        "application/json" => Some(Encoding::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Some(Encoding::Yaml),
        _ => None,
    }
}

/// Decodes a JSON or YAML request body into a value, as kube-apiserver's decoders accept it
/// (JSON nested at most [`crate::json::MAX_DEPTH`] deep); `what` names the expected kind in
/// errors, which kube-apiserver words as here.
pub fn decode_body(bytes: &[u8], encoding: Encoding, what: &str) -> Result<Value, ApiError> {
    let unrecognized = |why: String| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {what}): {why} ({})",
            crate::json::summarize(bytes)
        ))
    };
    match encoding {
        Encoding::Json => crate::json::parse(bytes).map_err(|e| unrecognized(format!("couldn't get version/kind; json parse error: {e}"))),
        Encoding::Yaml => crate::http::yaml::parse(bytes).map_err(|e| unrecognized(format!("error converting YAML to JSON: yaml: {e}"))),
    }
}
