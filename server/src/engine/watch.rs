//! Watch: a chunked stream of `{"type": …, "object": …}` lines, one per event, flushed as it
//! happens. Selectors are applied to both the old and the new state, so an object that stops
//! matching is sent as DELETED and one that starts matching as ADDED, as kube-apiserver does.

use super::selectors::{FieldSelector, LabelSelector};
use super::table::{self, IncludeObject};
use super::Call;
use crate::http::negotiate::Shape;
use crate::http::ApiError;
use crate::storage::{Event, KeyValue, ListOptions, Revision};
use axum::body::Body;
use axum::response::Response;
use futures::StreamExt;
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;

/// How often a watcher that allows bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(10);
/// Events buffered between the storage stream and a client connection.
const CLIENT_BUFFER: usize = 1024;

/// What a watch sends each event's object as.
#[derive(Clone, Copy)]
struct Render {
    shape: Shape,
    include: IncludeObject,
}

impl Call {
    pub(super) async fn watch(&self) -> Result<Response, ApiError> {
        let negotiated = self.negotiated()?;
        let include = IncludeObject::parse(self.query.get("includeObject")).map_err(ApiError::bad_request)?;
        let render = Render { shape: negotiated.shape, include };
        let (labels, mut fields) = self.selectors()?;
        if let Some(name) = &self.name {
            // `/watch/…/<name>` is a watch of the collection for that one name.
            fields = FieldSelector::parse(&format!("metadata.name={name}"), true, &[]).map_err(ApiError::bad_request)?;
        }
        let prefix = super::object::list_prefix(self.group(), self.plural(), self.namespace());
        let rv = self.query.get("resourceVersion").filter(|s| !s.is_empty());
        let send_initial = self.query.flag("sendInitialEvents");
        if self.query.get("resourceVersionMatch").is_some_and(|m| !m.is_empty()) && self.query.get("sendInitialEvents").is_none() {
            let error = crate::http::FieldError::new(
                crate::http::FieldErrorKind::Forbidden,
                "resourceVersionMatch",
                None,
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            );
            return Err(crate::fieldmanager::options_invalid("ListOptions", &[error]));
        }
        let bookmarks = self.query.flag("allowWatchBookmarks");
        if send_initial && (self.query.get("resourceVersionMatch") != Some("NotOlderThan") || !bookmarks) {
            return Err(ApiError::new(
                422,
                "Invalid",
                "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled or resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true",
            ));
        }
        // Without `timeoutSeconds`, kube-apiserver spreads watch lifetimes between one and two
        // times --min-request-timeout; a negative one ends the watch at once. Watches are not
        // bound by --request-timeout.
        let min = self.engine.min_request_timeout;
        let timeout = match self.query.int("timeoutSeconds")? {
            None | Some(0) => min + min.mul_f64(rand::random::<f64>()),
            Some(n) if n < 0 => Duration::ZERO,
            Some(n) => Duration::from_secs(n.unsigned_abs()),
        };

        // Where the stream starts, and which objects are sent first as ADDED.
        let mut initial: Vec<KeyValue> = Vec::new();
        let filtering = !labels.is_empty() || !fields.is_empty();
        let mut keep_matching = |items: Vec<KeyValue>| -> Result<(), ApiError> {
            for kv in items {
                if !filtering || self.decode_stored(&kv).is_ok_and(|o| labels.matches(&o) && fields.matches(&o)) {
                    initial.push(kv);
                }
            }
            Ok(())
        };
        let start: Revision = match rv {
            None | Some("0") => {
                let list = self.storage().list(&prefix, ListOptions::default()).await.map_err(|e| self.storage_error(e, ""))?;
                keep_matching(list.items)?;
                list.revision
            }
            Some(rv) => {
                let rv: Revision = rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))?;
                if send_initial {
                    let list = self.storage().list(&prefix, ListOptions::default()).await.map_err(|e| self.storage_error(e, ""))?;
                    keep_matching(list.items)?;
                    list.revision.max(rv)
                } else {
                    rv
                }
            }
        };
        let stream = self.storage().watch(&prefix, start).await;
        let (tx, rx) = mpsc::channel::<Vec<u8>>(CLIENT_BUFFER);
        let call = self.clone_for_stream();
        let stream = match stream {
            Ok(s) => s,
            Err(crate::storage::Error::Compacted { oldest }) => {
                // kube-apiserver answers 200 and sends one ERROR event with a 410 Status.
                let status = ApiError::expired(format!("too old resource version: {start} ({oldest})"));
                let line = event_line("ERROR", &status.to_json());
                return Ok(stream_response(futures::stream::iter(vec![line])));
            }
            Err(e) => return Err(self.storage_error(e, "")),
        };
        tokio::spawn(async move {
            let mut first = true;
            let mut last_rv = start;
            let send = |line: Vec<u8>| {
                let tx = tx.clone();
                async move { tx.send(line).await.is_ok() }
            };
            for kv in initial {
                let Some(line) = call.line("ADDED", &kv, render, first) else { continue };
                first = false;
                if !send(line).await {
                    return;
                }
            }
            if send_initial {
                let bookmark = bookmark_object(&call, start, true);
                if !send(event_line("BOOKMARK", &bookmark)).await {
                    return;
                }
            }
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            let mut stream = stream;
            let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = &mut deadline => return,
                    _ = ticker.tick(), if bookmarks => {
                        if !send(event_line("BOOKMARK", &bookmark_object(&call, last_rv, false))).await { return; }
                    }
                    next = stream.next() => {
                        let Some(next) = next else { return };
                        let event = match next {
                            Ok(event) => event,
                            Err(_) => {
                                let status = ApiError::expired("The resourceVersion for the provided watch is too old.");
                                let _ = send(event_line("ERROR", &status.to_json())).await;
                                return;
                            }
                        };
                        last_rv = event.revision();
                        if let Some((kind, object)) = call.transform(event, &labels, &fields) {
                            let Some(line) = call.line(kind, &object, render, first) else { continue };
                            first = false;
                            if !send(line).await { return; }
                        }
                    }
                }
            }
        });
        let body = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|line| (line, rx)) });
        Ok(stream_response(body))
    }

    /// A copy of what the streaming task needs (the request itself is gone by then).
    fn clone_for_stream(&self) -> Call {
        Call {
            engine: self.engine.clone(),
            endpoint: self.endpoint,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            subresource: self.subresource,
            watch_path: self.watch_path,
            query: self.query.clone(),
            headers: self.headers.clone(),
            method: self.method.clone(),
        }
    }

    /// The event type and object (as stored, with the revision it is sent with) a storage event
    /// becomes for this watcher, if any. Objects are decoded only to check selectors.
    fn transform(&self, event: Event, labels: &LabelSelector, fields: &FieldSelector) -> Option<(&'static str, KeyValue)> {
        let filtering = !labels.is_empty() || !fields.is_empty();
        let matches = |kv: &KeyValue| !filtering || self.decode_stored(kv).is_ok_and(|o| labels.matches(&o) && fields.matches(&o));
        match event {
            Event::Put { current, prev } => {
                let old_matched = prev.as_ref().is_some_and(&matches);
                match (old_matched, matches(&current)) {
                    (false, true) => Some(("ADDED", current)),
                    (true, true) => Some(("MODIFIED", current)),
                    (true, false) => Some(("DELETED", current)),
                    (false, false) => None,
                }
            }
            Event::Delete { mut prev, revision } => {
                if !matches(&prev) {
                    return None;
                }
                // A deleted object is sent with the revision of its deletion.
                prev.mod_revision = revision;
                Some(("DELETED", prev))
            }
        }
    }

    /// One event line. Plain objects are written straight from the stored bytes (no decoding),
    /// which keeps the cost per watcher small when many watch the same collection. `None` for
    /// an object that cannot be decoded.
    fn line(&self, kind: &str, stored: &KeyValue, render: Render, first: bool) -> Option<Vec<u8>> {
        if render.shape == Shape::Object && self.serves_stored_bytes() {
            let mut line = Vec::with_capacity(stored.value.len() + 64);
            line.extend_from_slice(b"{\"type\":");
            line.extend_from_slice(super::stored_json::string(kind).as_bytes());
            line.extend_from_slice(b",\"object\":");
            if super::stored_json::render(&stored.value, &self.endpoint.api_version(), stored.mod_revision, &mut line) {
                line.extend_from_slice(b"}\n");
                return Some(line);
            }
        }
        let object = self.decode_stored(stored).ok()?;
        Some(event_line(kind, &self.render(&object, render, first)))
    }

    /// The event's object in the negotiated form. Tables carry column definitions only in the
    /// first event, as kube-apiserver sends them.
    fn render(&self, object: &Value, render: Render, first: bool) -> Value {
        match render.shape {
            Shape::Object => object.clone(),
            Shape::Table { beta } => {
                let row = table::row(self.endpoint, object.clone(), render.include, beta, chrono::Utc::now());
                let rv = super::object::meta_str(object, "resourceVersion").unwrap_or_default();
                let mut t = table::table(self.endpoint, vec![row], json!({"resourceVersion": rv}), beta);
                if !first {
                    t["columnDefinitions"] = Value::Null;
                    t.as_object_mut().expect("table").remove("columnDefinitions");
                }
                t
            }
            Shape::Metadata { beta } => table::partial_object_metadata(object.clone(), beta),
        }
    }
}

/// A BOOKMARK's object: only kind, apiVersion and resourceVersion.
fn bookmark_object(call: &Call, revision: Revision, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": revision.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": call.kind(), "apiVersion": call.endpoint.api_version(), "metadata": meta})
}

fn event_line(kind: &str, object: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).expect("serializes");
    line.push(b'\n');
    line
}

fn stream_response<S>(stream: S) -> Response
where
    S: futures::Stream<Item = Vec<u8>> + Send + 'static,
{
    let body = Body::from_stream(stream.map(Ok::<_, std::convert::Infallible>));
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(crate::http::NO_CACHE));
    response.headers_mut().insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    response
}
