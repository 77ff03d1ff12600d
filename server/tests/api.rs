//! API semantics through the router (no socket): pagination over one snapshot, watch streams
//! with selectors, dry-run, finalizers, preconditions, and hostile parameters.

use axum::body::Body;
use futures::StreamExt;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const FOOS: &str = "/apis/hello.zeng.dev/v1/namespaces/default/foos";

struct Api {
    app: axum::Router,
    storage: Arc<server::storage::memory::MemoryStorage>,
}

impl Api {
    fn new() -> Self {
        let storage = Arc::new(server::storage::memory::MemoryStorage::default());
        Api { app: server::app(server::AppState::new(storage.clone())), storage }
    }

    async fn call(&self, method: &str, uri: &str, content_type: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if body.is_some() {
            request = request.header("content-type", content_type);
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
        let response = self.app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    async fn create(&self, name: &str, labels: Value) -> Value {
        let foo =
            json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": name, "labels": labels}, "spec": {"msg": name}});
        let (status, body) = self.call("POST", FOOS, "application/json", Some(foo)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, "", None).await
    }

    /// The body of a 200 GET of `uri` as `accept`. A `Content-Length`, when given, is the body's
    /// length; only compact Tables, written in pieces as they are sent, go without one.
    async fn raw(&self, uri: &str, accept: &str) -> Vec<u8> {
        let request = Request::get(uri).header("accept", accept).body(Body::empty()).unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let length: Option<usize> = response.headers().get("content-length").map(|v| v.to_str().unwrap().parse().unwrap());
        let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        if let Some(length) = length {
            assert_eq!(length, body.len(), "Content-Length of {uri}");
        }
        assert!(length.is_some() || accept.contains("as=Table"), "no Content-Length for {uri}");
        body
    }

    /// Asserts that the compact answer to `uri` as `accept` (written from the stored bytes, or
    /// kept by the list cache) is the `?pretty=true` one (built as a tree) re-encoded compactly,
    /// key order included; returns the compact body. A Table's ages are in whole seconds, so a
    /// second boundary between its two reads is retried, twice at most.
    async fn compact_matches_pretty(&self, uri: &str, accept: &str) -> Vec<u8> {
        let separator = if uri.contains('?') { '&' } else { '?' };
        let attempts = if accept.contains("as=Table") { 3 } else { 1 };
        for attempt in 1..=attempts {
            let compact = self.raw(uri, accept).await;
            let pretty = self.raw(&format!("{uri}{separator}pretty=true"), accept).await;
            let reencoded = serde_json::to_vec(&serde_json::from_slice::<Value>(&pretty).unwrap()).unwrap();
            if compact == reencoded {
                return compact;
            }
            if attempt == attempts {
                assert_eq!(String::from_utf8(compact).unwrap(), String::from_utf8(reencoded).unwrap(), "{uri} as {accept}");
            }
        }
        unreachable!("the last attempt returns or fails")
    }

    /// Opens a watch and returns a stream of parsed events.
    async fn watch(&self, uri: &str) -> impl futures::Stream<Item = Value> {
        let response = self.app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut buffer = Vec::new();
        response.into_body().into_data_stream().flat_map(move |chunk| {
            buffer.extend_from_slice(&chunk.unwrap());
            let mut events = Vec::new();
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                events.push(serde_json::from_slice::<Value>(&line).unwrap());
            }
            futures::stream::iter(events)
        })
    }
}

fn names(list: &Value) -> Vec<String> {
    list["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()).collect()
}

async fn next_event(stream: &mut (impl futures::Stream<Item = Value> + Unpin)) -> Value {
    tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("an event within 5s").expect("stream open")
}

#[tokio::test]
async fn pages_of_one_list_share_a_snapshot() {
    let api = Api::new();
    for i in 0..10 {
        api.create(&format!("foo-{i}"), json!({})).await;
    }
    let (_, page1) = api.get(&format!("{FOOS}?limit=4")).await;
    assert_eq!(names(&page1), ["foo-0", "foo-1", "foo-2", "foo-3"]);
    assert_eq!(page1["metadata"]["remainingItemCount"], 6);
    let snapshot = page1["metadata"]["resourceVersion"].clone();
    // Changes after the first page do not show in the rest of the list.
    api.call("DELETE", &format!("{FOOS}/foo-5"), "", None).await;
    api.create("foo-99", json!({})).await;
    let mut all = names(&page1);
    let mut token = page1["metadata"]["continue"].as_str().unwrap().to_string();
    while !token.is_empty() {
        let (status, page) = api.get(&format!("{FOOS}?limit=4&continue={token}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["metadata"]["resourceVersion"], snapshot);
        all.extend(names(&page));
        token = page["metadata"]["continue"].as_str().unwrap_or("").to_string();
    }
    assert_eq!(all, (0..10).map(|i| format!("foo-{i}")).collect::<Vec<_>>());
    // A fresh list sees the changes.
    let (_, now) = api.get(FOOS).await;
    assert!(names(&now).contains(&"foo-99".to_string()) && !names(&now).contains(&"foo-5".to_string()));
}

#[tokio::test]
async fn expired_and_garbage_continue_tokens() {
    let api = Api::new();
    for i in 0..3 {
        api.create(&format!("foo-{i}"), json!({})).await;
    }
    let (_, page1) = api.get(&format!("{FOOS}?limit=1")).await;
    let token = page1["metadata"]["continue"].as_str().unwrap().to_string();
    for i in 0..3 {
        api.call("PATCH", &format!("{FOOS}/foo-{i}"), "application/merge-patch+json", Some(json!({"spec": {"msg1": "x"}}))).await;
    }
    use server::storage::Storage;
    let current = api.storage.current_revision().await.unwrap();
    api.storage.compact(current).await.unwrap();
    let (status, body) = api.get(&format!("{FOOS}?limit=1&continue={token}")).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["reason"], "Expired");
    let (status, body) = api.get(&format!("{FOOS}?limit=1&continue=garbage")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().starts_with("invalid continue token"), "{body}");
}

#[tokio::test]
async fn hostile_parameters_are_400_and_change_nothing() {
    // More, with kube-apiserver's other answers (422, 200), in tests/hostile.rs.
    let api = Api::new();
    api.create("keep", json!({"a": "b"})).await;
    for query in [
        "labelSelector=a%20in%20b",
        "labelSelector=-bad%3Dx",
        "fieldSelector=spec.msg%3Dx",
        "fieldSelector=nonsense",
        "limit=abc",
        "continue=%00%01",
        "resourceVersion=abc",
        "watch=true&timeoutSeconds=x",
        "includeObject=Everything",
    ] {
        let accept_table = query.starts_with("includeObject");
        let uri = format!("{FOOS}?{query}");
        let request = Request::get(&uri)
            .header("accept", if accept_table { "application/json;as=Table;v=v1;g=meta.k8s.io" } else { "application/json" });
        let response = api.app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["kind"], "Status", "{query}");
        assert_eq!(body["reason"], "BadRequest", "{query}");
    }
    let (_, list) = api.get(FOOS).await;
    assert_eq!(names(&list), ["keep"]);
}

#[tokio::test]
async fn selectors_filter_lists() {
    let api = Api::new();
    api.create("a", json!({"tier": "front", "app": "x"})).await;
    api.create("b", json!({"tier": "back"})).await;
    api.create("c", json!({})).await;
    for (query, want) in [
        ("labelSelector=tier%3Dfront", vec!["a"]),
        ("labelSelector=tier%20in%20(front,back)", vec!["a", "b"]),
        ("labelSelector=tier%20notin%20(front)", vec!["b", "c"]),
        ("labelSelector=!tier", vec!["c"]),
        ("labelSelector=tier,app", vec!["a"]),
        ("fieldSelector=metadata.name%21%3Da", vec!["b", "c"]),
        ("fieldSelector=metadata.namespace%3Ddefault,metadata.name%3Dc", vec!["c"]),
    ] {
        let (status, list) = api.get(&format!("{FOOS}?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {list}");
        assert_eq!(names(&list), want, "{query}");
    }
}

#[tokio::test]
async fn watch_sends_changes_and_selector_transitions() {
    let api = Api::new();
    let created = api.create("w", json!({"app": "x"})).await;
    let rv = created["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let mut all = Box::pin(api.watch(&format!("{FOOS}?watch=true&resourceVersion={rv}")).await);
    let mut selected = Box::pin(api.watch(&format!("{FOOS}?watch=true&resourceVersion={rv}&labelSelector=app%3Dx")).await);
    api.call("PATCH", &format!("{FOOS}/w"), "application/merge-patch+json", Some(json!({"spec": {"msg": "changed"}}))).await;
    let event = next_event(&mut all).await;
    assert_eq!(event["type"], "MODIFIED");
    assert_eq!(event["object"]["spec"]["msg"], "changed");
    assert_eq!(next_event(&mut selected).await["type"], "MODIFIED");
    // The object stops matching the selector: that watcher sees it DELETED.
    api.call("PATCH", &format!("{FOOS}/w"), "application/merge-patch+json", Some(json!({"metadata": {"labels": {"app": "y"}}}))).await;
    assert_eq!(next_event(&mut all).await["type"], "MODIFIED");
    let gone = next_event(&mut selected).await;
    assert_eq!(gone["type"], "DELETED");
    assert_eq!(gone["object"]["metadata"]["labels"]["app"], "y");
    api.call("DELETE", &format!("{FOOS}/w"), "", None).await;
    assert_eq!(next_event(&mut all).await["type"], "DELETED");
}

#[tokio::test]
async fn watch_from_zero_starts_with_the_current_state_and_bookmarks_end_initial_events() {
    let api = Api::new();
    api.create("one", json!({})).await;
    api.create("two", json!({})).await;
    let mut stream = Box::pin(api.watch(&format!("{FOOS}?watch=true&resourceVersion=0&fieldSelector=metadata.name%3Dtwo")).await);
    let first = next_event(&mut stream).await;
    assert_eq!((first["type"].as_str(), first["object"]["metadata"]["name"].as_str()), (Some("ADDED"), Some("two")));
    let mut list_watch = Box::pin(
        api.watch(&format!("{FOOS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")).await,
    );
    assert_eq!(next_event(&mut list_watch).await["type"], "ADDED");
    assert_eq!(next_event(&mut list_watch).await["type"], "ADDED");
    let bookmark = next_event(&mut list_watch).await;
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
}

#[tokio::test]
async fn watch_from_a_compacted_revision_gets_410_expired() {
    let api = Api::new();
    let first = api.create("old", json!({})).await;
    for i in 0..3 {
        api.call("PATCH", &format!("{FOOS}/old"), "application/merge-patch+json", Some(json!({"spec": {"msg": i.to_string()}}))).await;
    }
    use server::storage::Storage;
    api.storage.compact(api.storage.current_revision().await.unwrap()).await.unwrap();
    let rv = first["metadata"]["resourceVersion"].as_str().unwrap();
    let mut stream = Box::pin(api.watch(&format!("{FOOS}?watch=true&resourceVersion={rv}")).await);
    let event = next_event(&mut stream).await;
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
}

#[tokio::test]
async fn dry_run_validates_but_stores_nothing() {
    let api = Api::new();
    let foo = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": "dry"}, "spec": {"msg": "x"}});
    let (status, body) = api.call("POST", &format!("{FOOS}?dryRun=All"), "application/json", Some(foo.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(body["metadata"]["uid"].is_string() && body["metadata"].get("resourceVersion").is_none(), "{body}");
    assert_eq!(api.get(&format!("{FOOS}/dry")).await.0, StatusCode::NOT_FOUND);
    let bad = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": "dry"}, "spec": {"msg": 1}});
    assert_eq!(api.call("POST", &format!("{FOOS}?dryRun=All"), "application/json", Some(bad)).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    api.create("real", json!({})).await;
    let (status, patched) =
        api.call("PATCH", &format!("{FOOS}/real?dryRun=All"), "application/merge-patch+json", Some(json!({"spec": {"msg": "dry"}}))).await;
    assert_eq!((status, patched["spec"]["msg"].as_str()), (StatusCode::OK, Some("dry")));
    assert_eq!(api.get(&format!("{FOOS}/real")).await.1["spec"]["msg"], "real");
    assert_eq!(api.call("DELETE", &format!("{FOOS}/real?dryRun=All"), "", None).await.0, StatusCode::OK);
    assert_eq!(api.get(&format!("{FOOS}/real")).await.0, StatusCode::OK);
    assert_eq!(api.call("POST", &format!("{FOOS}?dryRun=Some"), "application/json", Some(foo)).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let api = Api::new();
    let foo = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": "held", "finalizers": ["example.com/wait"]}, "spec": {"msg": "x"}});
    assert_eq!(api.call("POST", FOOS, "application/json", Some(foo)).await.0, StatusCode::CREATED);
    let (status, marked) = api.call("DELETE", &format!("{FOOS}/held"), "", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(marked["metadata"]["deletionTimestamp"].is_string(), "{marked}");
    assert_eq!(marked["metadata"]["generation"], 2);
    // Still there, and new finalizers may not be added.
    assert_eq!(api.get(&format!("{FOOS}/held")).await.0, StatusCode::OK);
    let (status, _) = api
        .call(
            "PATCH",
            &format!("{FOOS}/held"),
            "application/merge-patch+json",
            Some(json!({"metadata": {"finalizers": ["example.com/wait", "example.com/more"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) =
        api.call("PATCH", &format!("{FOOS}/held"), "application/merge-patch+json", Some(json!({"metadata": {"finalizers": null}}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(api.get(&format!("{FOOS}/held")).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_preconditions() {
    let api = Api::new();
    let created = api.create("pre", json!({})).await;
    let (status, body) =
        api.call("DELETE", &format!("{FOOS}/pre"), "application/json", Some(json!({"preconditions": {"resourceVersion": "999"}}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let uid = created["metadata"]["uid"].clone();
    let (status, body) = api.call("DELETE", &format!("{FOOS}/pre"), "application/json", Some(json!({"preconditions": {"uid": uid}}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "Success");
}

#[tokio::test]
async fn generation_and_no_op_updates() {
    let api = Api::new();
    let created = api.create("gen", json!({})).await;
    let rv = created["metadata"]["resourceVersion"].clone();
    // Metadata-only change: no generation bump.
    let (_, labelled) =
        api.call("PATCH", &format!("{FOOS}/gen"), "application/merge-patch+json", Some(json!({"metadata": {"labels": {"x": "y"}}}))).await;
    assert_eq!(labelled["metadata"]["generation"], 1);
    assert_ne!(labelled["metadata"]["resourceVersion"], rv);
    // Spec change: bump.
    let (_, changed) =
        api.call("PATCH", &format!("{FOOS}/gen"), "application/merge-patch+json", Some(json!({"spec": {"msg": "new"}}))).await;
    assert_eq!(changed["metadata"]["generation"], 2);
    // Nothing changes: nothing written, same resourceVersion.
    let (_, same) = api.call("PATCH", &format!("{FOOS}/gen"), "application/merge-patch+json", Some(json!({"spec": {"msg": "new"}}))).await;
    assert_eq!(same["metadata"]["resourceVersion"], changed["metadata"]["resourceVersion"]);
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_rejected() {
    let api = Api::new();
    let huge = "x".repeat(4 * 1024 * 1024);
    let foo = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": "big"}, "spec": {"msg": huge}});
    let (status, body) = api.call("POST", FOOS, "application/json", Some(foo)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", &body.to_string()[..200.min(body.to_string().len())]);
    let request = Request::post(FOOS).header("content-type", "application/yaml").body(Body::from("apiVersion: [unclosed")).unwrap();
    let response = api.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let request = Request::post(FOOS).header("content-type", "text/plain").body(Body::from("hello")).unwrap();
    assert_eq!(api.app.clone().oneshot(request).await.unwrap().status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (_, list) = api.get(FOOS).await;
    assert!(names(&list).is_empty());
}

#[tokio::test]
async fn duplicate_fields_follow_field_validation() {
    let api = Api::new();
    let body = r#"{"apiVersion":"hello.zeng.dev/v1","kind":"Foo","metadata":{"name":"dup"},"spec":{"msg":"a","msg":"b"}}"#;
    let send = |query: &'static str| {
        let request = Request::post(format!("{FOOS}{query}")).header("content-type", "application/json").body(Body::from(body)).unwrap();
        api.app.clone().oneshot(request)
    };
    let response = send("?fieldValidation=Strict").await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let status: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(status["message"], "Foo in version \"v1\" cannot be handled as a Foo: strict decoding error: duplicate field \"spec.msg\"");
    assert_eq!(api.get(&format!("{FOOS}/dup")).await.0, StatusCode::NOT_FOUND);
    let response = send("").await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let warnings: Vec<_> = response.headers().get_all("warning").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert_eq!(warnings, ["299 - \"duplicate field \\\"spec.msg\\\"\""]);
    // The last value wins, as in kube-apiserver.
    assert_eq!(api.get(&format!("{FOOS}/dup")).await.1["spec"]["msg"], "b");
}

#[tokio::test]
async fn get_honours_resource_version_and_match() {
    let api = Api::new();
    let created = api.create("rv", json!({})).await;
    let first = created["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    api.call("PATCH", &format!("{FOOS}/rv"), "application/merge-patch+json", Some(json!({"spec": {"msg": "second"}}))).await;
    // Exact: the object as it was.
    let (status, old) = api.get(&format!("{FOOS}/rv?resourceVersion={first}&resourceVersionMatch=Exact")).await;
    assert_eq!((status, old["spec"]["msg"].as_str()), (StatusCode::OK, Some("rv")), "{old}");
    // Not older than: the latest.
    let (status, latest) = api.get(&format!("{FOOS}/rv?resourceVersion={first}")).await;
    assert_eq!((status, latest["spec"]["msg"].as_str()), (StatusCode::OK, Some("second")));
    // From the future: 504 Timeout, as kube-apiserver.
    let (status, body) = api.get(&format!("{FOOS}/rv?resourceVersion=999999")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(api.get(&format!("{FOOS}/rv?resourceVersion=abc")).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(api.get(&format!("{FOOS}/rv?resourceVersionMatch=Exact")).await.0, StatusCode::BAD_REQUEST);
}

/// Reads, lists and Tables are written straight from the stored bytes when the answer is compact
/// JSON; `?pretty=true` takes the path that builds the answer as a tree. Both must be the same
/// document with the same key order.
#[tokio::test]
async fn answers_written_from_stored_bytes_match_the_encoded_ones() {
    let api = Api::new();
    api.create("plain", json!({})).await;
    api.create("labelled", json!({"app": "x", "tier": "back-end"})).await;
    let patch = json!({"metadata": {"finalizers": ["example.com/keep"], "annotations": {"note": "é}{]["}}, "spec": {"msg1": "second"}});
    let (status, _) = api.call("PATCH", &format!("{FOOS}/labelled?fieldManager=other"), "application/merge-patch+json", Some(patch)).await;
    assert_eq!(status, StatusCode::OK);
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io";
    let table_beta = "application/json;as=Table;v=v1beta1;g=meta.k8s.io";
    let cases = [
        (format!("{FOOS}/labelled"), "application/json"),
        (FOOS.to_string(), "application/json"),
        ("/apis/hello.zeng.dev/v1/foos".to_string(), "application/json"),
        (format!("{FOOS}?limit=1"), "application/json"),
        (FOOS.to_string(), table),
        (format!("{FOOS}?includeObject=Object"), table),
        (format!("{FOOS}?includeObject=None"), table_beta),
        (format!("{FOOS}?labelSelector=app%3Dx"), table),
    ];
    for (uri, accept) in cases {
        api.compact_matches_pretty(&uri, accept).await;
    }
}

/// Lists of 64 KiB and more reuse their rendered items while the listed objects are unchanged
/// (`engine::list_cache`). Every answer must still be what the tree-building path writes, and
/// must show every write: an update, a deletion, a new object; the list's resourceVersion moves
/// on even when only another namespace changed.
#[tokio::test]
async fn large_lists_show_every_write_and_match_the_encoded_ones() {
    let api = Api::new();
    let long = "x".repeat(700);
    for i in 0..120 {
        let foo = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
            "metadata": {"name": format!("big-{i:03}"), "labels": {"half": (i % 2).to_string()}}, "spec": {"msg": long}});
        let (status, body) = api.call("POST", FOOS, "application/json", Some(foo)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // JSON lists (compact from the cache the second time) against the tree-building path.
    let check = |uri: &'static str| {
        let api = &api;
        async move {
            api.compact_matches_pretty(uri, "application/json").await;
            serde_json::from_slice::<Value>(&api.compact_matches_pretty(uri, "application/json").await).unwrap()
        }
    };
    // Tables too, in each form; returns the rows' messages.
    let tables = |uri: &'static str| {
        let api = &api;
        async move {
            let forms = [
                ("", "application/json;as=Table;v=v1;g=meta.k8s.io"),
                ("?includeObject=Object", "application/json;as=Table;v=v1;g=meta.k8s.io"),
                ("?includeObject=None", "application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
            ];
            let mut messages = Vec::new();
            for (query, accept) in forms {
                let uri = format!("{uri}{query}");
                api.compact_matches_pretty(&uri, accept).await;
                let table: Value = serde_json::from_slice(&api.compact_matches_pretty(&uri, accept).await).unwrap();
                messages = table["rows"].as_array().unwrap().iter().map(|r| r["cells"][1].as_str().unwrap().to_string()).collect();
            }
            messages
        }
    };
    const HALF: &str = "/apis/hello.zeng.dev/v1/namespaces/default/foos?labelSelector=half%3D0";
    assert_eq!(tables(FOOS).await.len(), 120);
    let list = check(FOOS).await;
    assert_eq!(names(&list).len(), 120);
    assert_eq!(names(&check(HALF).await).len(), 60);

    let (status, patched) =
        api.call("PATCH", &format!("{FOOS}/big-007"), "application/merge-patch+json", Some(json!({"spec": {"msg": "changed"}}))).await;
    assert_eq!(status, StatusCode::OK);
    let list = check(FOOS).await;
    let item = list["items"].as_array().unwrap().iter().find(|i| i["metadata"]["name"] == "big-007").unwrap();
    assert_eq!(item["spec"]["msg"], "changed");
    assert_eq!(item["metadata"]["resourceVersion"], patched["metadata"]["resourceVersion"]);
    assert_eq!(list["metadata"]["resourceVersion"], patched["metadata"]["resourceVersion"]);
    assert_eq!(tables(FOOS).await.iter().filter(|m| *m == "changed").count(), 1);

    let (status, _) = api.call("DELETE", &format!("{FOOS}/big-000"), "", None).await;
    assert_eq!(status, StatusCode::OK);
    let list = check(FOOS).await;
    assert_eq!(names(&list).len(), 119);
    assert!(!names(&list).contains(&"big-000".to_string()));
    assert_eq!(tables(FOOS).await.len(), 119);
    assert_eq!(names(&check(HALF).await).len(), 59);
    api.create("big-new", json!({"half": "0"})).await;
    assert_eq!(names(&check(HALF).await).len(), 60);

    // A write elsewhere: the same items, a newer list resourceVersion.
    let before = check(FOOS).await;
    let other = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": "elsewhere"}, "spec": {"msg": "hi"}});
    let (status, created) = api.call("POST", "/apis/hello.zeng.dev/v1/namespaces/other/foos", "application/json", Some(other)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let after = check(FOOS).await;
    assert_eq!(after["items"], before["items"]);
    assert_eq!(after["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);
    assert_ne!(after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"]);
}
