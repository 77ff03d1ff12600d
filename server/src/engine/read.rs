//! GET of one object and LIST of a collection, with selectors, pagination and every output form.

use super::list_cache::{self, Cached};
use super::object::list_prefix;
use super::selectors::{FieldSelector, LabelSelector};
use super::stored_json;
use super::table::{self, IncludeObject};
use super::Call;
use crate::http::negotiate::{Encoding, Negotiated, Shape};
use crate::http::{bytes_response, chunks_response, respond, stream_response, ApiError, FieldError, FieldErrorKind};
use crate::storage::{KeyValue, ListOptions, Revision};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// kube-apiserver's message for a continue token whose snapshot was compacted.
const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// A decoded continue token: the snapshot revision and the last key returned (relative to the
/// list prefix). Public so that the fuzz targets in `fuzz/` can decode untrusted tokens as a
/// list request does.
#[derive(Debug, PartialEq)]
pub struct ContinueToken {
    /// The revision of the snapshot the list reads.
    pub revision: Revision,
    /// The last key returned, relative to the list prefix (`/name` or `/namespace/name`).
    pub after: String,
}

impl ContinueToken {
    /// Encodes in kube-apiserver's format: base64url of `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\u0000"}`.
    pub fn encode(&self) -> String {
        let body = json!({"v": "meta.k8s.io/v1", "rv": self.revision, "start": format!("{}\u{0}", self.after)});
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string())
    }

    /// Decodes the `continue` parameter of a list; the error is kube-apiserver's message.
    pub fn decode(token: &str) -> Result<Self, String> {
        let invalid = |why: String| format!("invalid continue token: continue key is not valid: {why}");
        let bytes =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).map_err(|e| invalid(e.to_string()))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if value.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
            return Err("invalid continue token: continue key is not valid: unrecognized version".into());
        }
        let revision = value
            .get("rv")
            .and_then(Value::as_u64)
            .filter(|r| *r > 0)
            .ok_or_else(|| invalid("incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into()))?;
        let start = value.get("start").and_then(Value::as_str).ok_or_else(|| invalid("no start key".into()))?;
        let after = start.strip_suffix('\u{0}').unwrap_or(start);
        if after.contains("..") || after.starts_with('/') && after.len() == 1 {
            return Err(invalid("path traversal".into()));
        }
        Ok(ContinueToken { revision, after: after.to_string() })
    }
}

/// A page of objects read for a list or a deletecollection: the matching objects as stored, and
/// the list's metadata.
pub(crate) struct Page {
    pub items: Vec<KeyValue>,
    pub meta: ListMeta,
}

/// What a list says about itself besides its items.
pub(crate) struct ListMeta {
    pub revision: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

impl Call {
    pub(super) async fn get(&self) -> Result<Response, ApiError> {
        let negotiated = self.negotiated()?;
        let name = self.name.as_deref().unwrap_or_default();
        let key = self.key(name);
        let kv = match self.read_revision()? {
            // `Exact`: the object as it was at that revision.
            Some((revision, true)) => {
                let page = self.storage().list(&key, ListOptions { revision: Some(revision), ..Default::default() }).await.map_err(
                    |e| match e {
                        crate::storage::Error::Compacted { oldest } => {
                            ApiError::expired(format!("too old resource version: {revision} ({oldest})"))
                        }
                        other => self.storage_error(other, name),
                    },
                )?;
                page.items.into_iter().find(|kv| kv.key == key)
            }
            // Not older than the revision: the latest is, unless the revision is in the future.
            Some((revision, false)) => {
                let current = self.storage().current_revision().await.map_err(|e| self.storage_error(e, name))?;
                if revision > current {
                    return Err(too_large_resource_version(revision, current));
                }
                self.storage().get(&key).await.map_err(|e| self.storage_error(e, name))?
            }
            None => self.storage().get(&key).await.map_err(|e| self.storage_error(e, name))?,
        };
        let kv = kv.ok_or_else(|| ApiError::not_found(self.group(), self.plural(), name))?;
        if self.plain_json(negotiated) {
            let mut body = Vec::with_capacity(kv.value.len() + 32);
            if stored_json::render(&kv.value, &self.endpoint.api_version(), kv.mod_revision, &mut body) {
                return Ok(bytes_response(StatusCode::OK, body, "application/json"));
            }
        }
        let object = self.decode_stored(&kv)?;
        self.render_object(StatusCode::OK, &object, negotiated)
    }

    /// Whether the answer is objects as compact JSON, which [`stored_json::render`] writes
    /// straight from the stored bytes.
    pub(super) fn plain_json(&self, negotiated: Negotiated) -> bool {
        negotiated.shape == Shape::Object && negotiated.encoding == Encoding::Json && !self.pretty() && self.serves_stored_bytes()
    }

    /// `resourceVersion` and `resourceVersionMatch` of a GET: `None` for the latest (absent or
    /// `0`), else the revision and whether it must match exactly.
    fn read_revision(&self) -> Result<Option<(Revision, bool)>, ApiError> {
        let rv = self.query.get("resourceVersion").filter(|s| !s.is_empty());
        let exact = match self.query.get("resourceVersionMatch").filter(|s| !s.is_empty()) {
            None | Some("NotOlderThan") => false,
            Some("Exact") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
                )))
            }
        };
        match rv {
            None if exact => Err(ApiError::bad_request(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            )),
            None | Some("0") if !exact => Ok(None),
            Some("0") => Err(ApiError::bad_request(
                "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            )),
            Some(rv) => rv
                .parse::<Revision>()
                .map(|r| Some((r, exact)))
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}"))),
            None => Ok(None),
        }
    }

    pub(super) fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = LabelSelector::parse(self.query.get("labelSelector").unwrap_or("")).map_err(ApiError::bad_request)?;
        let resource = self.endpoint.resource();
        let fields = FieldSelector::parse(
            self.query.get("fieldSelector").unwrap_or(""),
            resource.namespaced(),
            &self.endpoint.version().selectable_fields,
        )
        .map_err(ApiError::bad_request)?;
        Ok((labels, fields))
    }

    /// Reads one page of matching objects, honouring `limit`, `continue`, `resourceVersion` and
    /// `resourceVersionMatch`.
    pub(super) async fn read_page(&self, labels: &LabelSelector, fields: &FieldSelector) -> Result<Page, ApiError> {
        let prefix = list_prefix(self.group(), self.plural(), self.namespace());
        // kube-apiserver has no upper bound for `limit` (it pages), and a negative or zero
        // limit means none.
        let limit = self.query.int("limit")?.filter(|l| *l > 0).map(|l| usize::try_from(l).unwrap_or(usize::MAX));
        self.query.int("timeoutSeconds")?;
        let rv_param = self.query.get("resourceVersion").filter(|s| !s.is_empty());
        let rv_match = self.query.get("resourceVersionMatch").filter(|s| !s.is_empty());
        let token = self.query.get("continue").filter(|s| !s.is_empty());
        self.check_list_options(rv_param, rv_match, token.is_some())?;
        let mut revision: Option<Revision> = None;
        let mut after: Option<String> = None;
        if let Some(token) = token {
            if rv_param.is_some_and(|rv| rv != "0") {
                return Err(ApiError::bad_request("specifying resource version is not allowed when using continue"));
            }
            let token = ContinueToken::decode(token).map_err(ApiError::bad_request)?;
            revision = Some(token.revision);
            after = Some(format!("{prefix}{}", token.after.trim_start_matches('/')));
        } else {
            let parsed = match rv_param {
                None => None,
                Some(rv) => Some(rv.parse::<Revision>().map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))?),
            };
            if let (Some("Exact"), Some(rv)) = (rv_match, parsed) {
                revision = Some(rv);
            }
            if let (Some(rv), None) = (parsed, revision) {
                let current = self.storage().current_revision().await.map_err(|e| self.storage_error(e, ""))?;
                if rv > current {
                    return Err(too_large_resource_version(rv, current));
                }
            }
        }
        let filtering = !labels.is_empty() || !fields.is_empty();
        let mut items = Vec::new();
        let mut snapshot = revision;
        let mut last_key: Option<String> = None;
        let mut remaining;
        // Keep reading pages of the same snapshot until `limit` objects matched or the range ends.
        loop {
            let want = limit.map(|l| l - items.len());
            let page = self
                .storage()
                .list(&prefix, ListOptions { start_after: after.clone(), limit: want, revision: snapshot })
                .await
                .map_err(|e| match e {
                    crate::storage::Error::Compacted { .. } if self.query.get("continue").is_some() => ApiError::expired(CONTINUE_EXPIRED),
                    crate::storage::Error::Compacted { oldest } => {
                        ApiError::expired(format!("too old resource version: {} ({oldest})", revision.unwrap_or(0)))
                    }
                    other => self.storage_error(other, ""),
                })?;
            snapshot = Some(page.revision);
            remaining = page.remaining;
            let exhausted = page.remaining == 0;
            let read_nothing = page.items.is_empty();
            for kv in page.items {
                last_key = Some(kv.key.clone());
                if filtering {
                    let object = self.decode_stored(&kv)?;
                    if !(labels.matches(&object) && fields.matches(&object)) {
                        continue;
                    }
                }
                items.push(kv);
            }
            after = last_key.clone();
            if exhausted || limit.is_none_or(|l| items.len() >= l) || read_nothing {
                break;
            }
        }
        let revision = snapshot.unwrap_or(0);
        let continue_token = (remaining > 0).then(|| {
            let key = last_key.clone().unwrap_or_default();
            ContinueToken { revision, after: key.strip_prefix(&prefix).map(|k| format!("/{k}")).unwrap_or(key) }.encode()
        });
        let remaining = (continue_token.is_some() && !filtering).then_some(remaining);
        Ok(Page { items, meta: ListMeta { revision, continue_token, remaining } })
    }

    /// kube-apiserver's `ValidateListOptions`: one 422 `ListOptions.meta.k8s.io "" is invalid`
    /// for every misuse of `resourceVersionMatch` and `sendInitialEvents` in a list.
    fn check_list_options(&self, rv: Option<&str>, rv_match: Option<&str>, continuing: bool) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        if let Some(m) = rv_match {
            if rv.is_none() {
                errors.push(FieldError::new(
                    FieldErrorKind::Forbidden,
                    "resourceVersionMatch",
                    None,
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if continuing {
                errors.push(FieldError::new(
                    FieldErrorKind::Forbidden,
                    "resourceVersionMatch",
                    None,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            if m != "Exact" && m != "NotOlderThan" {
                errors.push(FieldError::new(
                    FieldErrorKind::NotSupported,
                    "resourceVersionMatch",
                    Some(format!("{m:?}")),
                    "supported values: \"Exact\", \"NotOlderThan\", \"\"",
                ));
            }
            if m == "Exact" && rv == Some("0") {
                errors.push(FieldError::new(
                    FieldErrorKind::Forbidden,
                    "resourceVersionMatch",
                    None,
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ));
            }
        }
        if self.query.get("sendInitialEvents").is_some() {
            errors.push(FieldError::new(
                FieldErrorKind::Forbidden,
                "sendInitialEvents",
                None,
                "sendInitialEvents is allowed for watch only",
            ));
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(crate::fieldmanager::options_invalid("ListOptions", &errors)),
        }
    }

    pub(super) async fn list(&self) -> Result<Response, ApiError> {
        let negotiated = self.negotiated()?;
        let (labels, fields) = self.selectors()?;
        let page = self.read_page(&labels, &fields).await?;
        if self.plain_json(negotiated) {
            if let Some(chunks) = self.list_json(&page).await {
                return Ok(chunks_response(StatusCode::OK, chunks, "application/json"));
            }
        }
        if let (Shape::Table { beta }, Encoding::Json, false) = (negotiated.shape, negotiated.encoding, self.pretty()) {
            let include = IncludeObject::parse(self.query.get("includeObject")).map_err(ApiError::bad_request)?;
            return self.table_json(&page, include, beta).await;
        }
        let objects = self.decode_all(&page.items)?;
        let body = match negotiated.shape {
            Shape::Object => self.list_object(objects, &page.meta),
            Shape::Table { beta } => {
                let include = IncludeObject::parse(self.query.get("includeObject")).map_err(ApiError::bad_request)?;
                let now = chrono::Utc::now();
                let rows = objects.into_iter().map(|o| table::row(self.endpoint, o, include, beta, now)).collect();
                table::table(self.endpoint, rows, typed_list_meta(&page.meta), beta)
            }
            Shape::Metadata { beta } => {
                let items: Vec<Value> = objects.into_iter().map(|o| table::partial_object_metadata(o, beta)).collect();
                let api_version = if beta { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" };
                json!({"kind": "PartialObjectMetadataList", "apiVersion": api_version, "metadata": typed_list_meta(&page.meta), "items": items})
            }
        };
        Ok(respond(StatusCode::OK, &body, negotiated.encoding, self.pretty()))
    }

    /// What the list cache knows this list by, rendered as `form`.
    fn cache_query(&self, form: String) -> list_cache::Query {
        list_cache::Query {
            form,
            prefix: list_prefix(self.group(), self.plural(), self.namespace()),
            label_selector: self.query.get("labelSelector").unwrap_or_default().to_string(),
            field_selector: self.query.get("fieldSelector").unwrap_or_default().to_string(),
        }
    }

    /// A Table of the page as compact JSON, written without building it as a tree: the same
    /// bytes as encoding [`table::table`]. The rows, all but their ages, come from the list
    /// cache when the same objects were listed before.
    async fn table_json(&self, page: &Page, include: IncludeObject, beta: bool) -> Result<Response, ApiError> {
        let form = format!("Table {} {} {include:?}", self.endpoint.api_version(), table::api_version(beta));
        let query = self.cache_query(form);
        let render = || self.table_rows(page, include, beta).ok().map(|rows| Cached::Table(Arc::new(rows)));
        let rows = match self.engine.list_cache.get(&query, &page.items, render).await {
            Some(Cached::Table(rows)) => rows,
            // Not renderable: rendering again gives the error.
            _ => Arc::new(self.table_rows(page, include, beta)?),
        };
        let head = Bytes::from(table::table_head(self.endpoint, &typed_list_meta(&page.meta), beta));
        let pieces =
            std::iter::once(head).chain(rows.pieces(chrono::Utc::now(), TABLE_PIECE)).chain(std::iter::once(Bytes::from_static(b"]}")));
        Ok(stream_response(StatusCode::OK, pieces, "application/json"))
    }

    /// The rows of a Table of the page, ages not yet printed. Each object is decoded for its
    /// cells only; its metadata (or the object itself) is written from the stored bytes.
    fn table_rows(&self, page: &Page, include: IncludeObject, beta: bool) -> Result<table::Rows, ApiError> {
        let api_version = self.endpoint.api_version();
        let mut rows = table::Rows::default();
        for (i, kv) in page.items.iter().enumerate() {
            if i > 0 {
                rows.text().push(b',');
            }
            let object = self.decode_stored(kv)?;
            rows.open_row(&table::cell_parts(self.endpoint, &object)).map_err(ApiError::internal)?;
            let out = rows.text();
            let written = match include {
                IncludeObject::None => true,
                IncludeObject::Metadata => {
                    out.extend_from_slice(br#","object":"#);
                    let api = table::api_version(beta);
                    stored_json::partial_object_metadata(
                        &kv.value,
                        api,
                        kv.mod_revision,
                        table::META_ORDER,
                        table::MANAGED_FIELDS_ORDER,
                        out,
                    )
                }
                IncludeObject::Object if self.serves_stored_bytes() => {
                    out.extend_from_slice(br#","object":"#);
                    stored_json::render(&kv.value, &api_version, kv.mod_revision, out)
                }
                IncludeObject::Object => {
                    out.extend_from_slice(br#","object":"#);
                    false
                }
            };
            if !written {
                let row = match include {
                    IncludeObject::Metadata => table::partial_object_metadata(object, beta),
                    _ => object,
                };
                serde_json::to_writer(&mut *out, &row).map_err(ApiError::internal)?;
            }
            out.push(b'}');
        }
        Ok(rows)
    }

    /// Decodes stored objects into their served form.
    pub(super) fn decode_all(&self, items: &[KeyValue]) -> Result<Vec<Value>, ApiError> {
        items.iter().map(|kv| self.decode_stored(kv)).collect()
    }

    /// `<Kind>List` with keys sorted, as kube-apiserver writes custom resource lists.
    pub(super) fn list_object(&self, items: Vec<Value>, meta: &ListMeta) -> Value {
        let mut list = Map::new();
        list.insert("apiVersion".into(), Value::String(self.endpoint.api_version()));
        list.insert("items".into(), Value::Array(items));
        list.insert("kind".into(), Value::String(self.endpoint.resource().names.list_kind.clone()));
        list.insert("metadata".into(), list_meta(meta));
        Value::Object(list)
    }

    /// The same list as [`Self::list_object`] encodes to, written from the stored bytes, in
    /// two pieces: the start of the list with its items (reused from the list cache when the
    /// same objects were listed before), and the rest; `None` if an object is not in the stored
    /// form.
    async fn list_json(&self, page: &Page) -> Option<Vec<Bytes>> {
        let api_version = self.endpoint.api_version();
        let query = self.cache_query(api_version.clone());
        let render = || render_items(&api_version, &page.items).map(|items| Cached::Json(Bytes::from(items)));
        let Cached::Json(items) = self.engine.list_cache.get(&query, &page.items, render).await? else { return None };
        let mut rest = Vec::with_capacity(160);
        rest.extend_from_slice(b"],\"kind\":");
        rest.extend_from_slice(stored_json::string(&self.endpoint.resource().names.list_kind).as_bytes());
        rest.extend_from_slice(b",\"metadata\":");
        rest.extend_from_slice(list_meta(&page.meta).to_string().as_bytes());
        rest.push(b'}');
        Some(vec![items, Bytes::from(rest)])
    }
}

/// The size of the pieces a Table answer is written in.
const TABLE_PIECE: usize = 256 * 1024;

/// `{"apiVersion":…,"items":[` and the items, from their stored bytes; `None` if one is not in
/// the stored form.
fn render_items(api_version: &str, items: &[KeyValue]) -> Option<Vec<u8>> {
    let size: usize = items.iter().map(|kv| kv.value.len() + 32).sum();
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(b"{\"apiVersion\":");
    out.extend_from_slice(stored_json::string(api_version).as_bytes());
    out.extend_from_slice(b",\"items\":[");
    for (i, kv) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if !stored_json::render(&kv.value, api_version, kv.mod_revision, &mut out) {
            return None;
        }
    }
    Some(out)
}

/// `ListMeta` of a custom resource list, keys sorted.
fn list_meta(meta: &ListMeta) -> Value {
    let mut map = Map::new();
    map.insert("continue".into(), Value::String(meta.continue_token.clone().unwrap_or_default()));
    if let Some(n) = meta.remaining {
        map.insert("remainingItemCount".into(), json!(n));
    }
    map.insert("resourceVersion".into(), Value::String(meta.revision.to_string()));
    Value::Object(map)
}

/// kube-apiserver's answer to a resourceVersion newer than any it has: 504, retry shortly.
fn too_large_resource_version(requested: Revision, current: Revision) -> ApiError {
    ApiError::new(504, "Timeout", format!("Too large resource version: {requested}, current: {current}"))
        .with_details(crate::http::Details { retry_after_seconds: Some(1), ..Default::default() })
}

/// `ListMeta` in Go's field order, for typed lists (Table, PartialObjectMetadataList).
fn typed_list_meta(page: &ListMeta) -> Value {
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), Value::String(page.revision.to_string()));
    if let Some(token) = &page.continue_token {
        meta.insert("continue".into(), Value::String(token.clone()));
    }
    if let Some(n) = page.remaining {
        meta.insert("remainingItemCount".into(), json!(n));
    }
    Value::Object(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_in_kube_format() {
        let token = ContinueToken { revision: 213, after: "/gen-gn646".into() };
        // The token kube-apiserver 1.32 gave for the same position.
        assert_eq!(token.encode(), "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MjEzLCJzdGFydCI6Ii9nZW4tZ242NDZcdTAwMDAifQ");
        assert_eq!(ContinueToken::decode(&token.encode()).unwrap(), token);
        assert!(ContinueToken::decode("garbage").unwrap_err().starts_with("invalid continue token: continue key is not valid: "));
    }
}
