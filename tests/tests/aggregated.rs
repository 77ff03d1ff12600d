//! Aggregated mode: the server as an extension API server behind kube-apiserver.
//!
//! - Namespace rules against a stub kube-apiserver (`support`), through the router: creates
//!   only in existing, active namespaces (kube's exact 404 and 403 Status), the cache of
//!   namespace lookups, and the removal of the objects of terminating and deleted namespaces.
//! - The whole path kubectl takes through an aggregator: kubectl → a front proxy (this test,
//!   holding a front-proxy client certificate) → the real server binary with `--aggregated`,
//!   which reads the front proxy's CA from the stub's extension-apiserver-authentication
//!   ConfigMap and asks the stub's SubjectAccessReview whether each user may do each verb.

mod support;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use server::cluster::namespaces::NamespaceLifecycle;
use server::storage::Storage;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::StubCluster;
use tower::ServiceExt;

fn foos(namespace: &str) -> String {
    format!("/apis/hello.zeng.dev/v1/namespaces/{namespace}/foos")
}

fn foo(name: &str, finalizers: &[&str]) -> Value {
    json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": name, "finalizers": finalizers}, "spec": {"msg": name}})
}

/// The router of a server aggregated into `stub`, over memory storage.
struct Api {
    app: axum::Router,
    engine: server::engine::ApiEngine,
    storage: Arc<server::storage::memory::MemoryStorage>,
    namespaces: Arc<NamespaceLifecycle>,
}

impl Api {
    fn new(stub: &StubCluster, ttl: Duration) -> Api {
        Api::over(Arc::new(server::storage::memory::MemoryStorage::default()), stub, ttl)
    }

    /// Another server over the same storage: a fresh namespace cache.
    fn restarted(&self, stub: &StubCluster) -> Api {
        Api::over(self.storage.clone(), stub, Duration::from_secs(60))
    }

    fn over(storage: Arc<server::storage::memory::MemoryStorage>, stub: &StubCluster, ttl: Duration) -> Api {
        let namespaces = Arc::new(NamespaceLifecycle::with_ttls(stub.client(), ttl, ttl));
        let state = server::AppState::new(storage.clone()).with_namespace_admission(namespaces.clone());
        let engine = state.engine.clone();
        Api { app: server::app(state), engine, storage, namespaces }
    }

    /// Starts the namespace controller.
    fn run_controller(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.namespaces.clone().run(self.engine.clone()))
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
        (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())))
    }

    async fn create(&self, namespace: &str, object: Value) -> (StatusCode, Value) {
        self.call("POST", &foos(namespace), "application/json", Some(object)).await
    }

    async fn stored(&self, namespace: &str, name: &str) -> Option<Value> {
        let kv = self.storage.get(&format!("/hello.zeng.dev/foos/{namespace}/{name}")).await.unwrap()?;
        Some(serde_json::from_slice(&kv.value).unwrap())
    }

    /// Puts an object straight into storage, as if created before its namespace went away.
    async fn plant(&self, namespace: &str, name: &str) {
        let mut object = foo(name, &[]);
        object["metadata"]["namespace"] = json!(namespace);
        self.storage.create(&format!("/hello.zeng.dev/foos/{namespace}/{name}"), object.to_string().into()).await.unwrap();
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_need_an_existing_active_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let stub = StubCluster::start(dir.path()).await;
    let api = Api::new(&stub, Duration::from_secs(60));

    let (status, body) = api.create("default", foo("a", &[])).await;
    assert_eq!(status, 201, "{body}");

    // kube-apiserver's answer, byte for byte in content: the error of the plugin's GET.
    let (status, body) = api.create("nope", foo("a", &[])).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "namespaces \"nope\" not found", "reason": "NotFound", "details": {"name": "nope", "kind": "namespaces"}, "code": 404})
    );
    // Also for a dry run, and for server-side apply creating an object.
    assert_eq!(api.call("POST", &format!("{}?dryRun=All", foos("nope")), "application/json", Some(foo("a", &[]))).await.0, 404);
    let apply = api.call("PATCH", &format!("{}/a?fieldManager=m", foos("nope")), "application/apply-patch+yaml", Some(foo("a", &[]))).await;
    assert_eq!((apply.0, apply.1["message"].clone()), (StatusCode::NOT_FOUND, json!("namespaces \"nope\" not found")));
    // Reads are not checked: an empty list, as kube-apiserver answers.
    let (status, list) = api.call("GET", &foos("nope"), "", None).await;
    assert_eq!((status, list["items"].clone()), (StatusCode::OK, json!([])));

    // Found and not found are both cached: one GET each for all of the above.
    assert_eq!(stub.cluster.gets_of("default"), 1);
    assert_eq!(stub.cluster.gets_of("nope"), 1);
    api.create("default", foo("b", &[])).await;
    assert_eq!(stub.cluster.gets_of("default"), 1);

    // A terminating namespace takes no new objects: kube's 403 with the NamespaceTerminating
    // cause. The name is the object's, or its generateName before one is generated.
    stub.cluster.add_namespace("doomed");
    assert_eq!(api.create("doomed", foo("early", &["example.com/keep"])).await.0, 201);
    stub.cluster.terminate("doomed");
    let api = api.restarted(&stub);
    let (status, body) = api.create("doomed", foo("late", &[])).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "foos.hello.zeng.dev \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated",
            "reason": "Forbidden",
            "details": {"name": "late", "group": "hello.zeng.dev", "kind": "foos", "causes": [{"reason": "NamespaceTerminating", "message": "namespace doomed is being terminated", "field": "metadata.namespace"}]},
            "code": 403})
    );
    let generated = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"generateName": "gen-"}});
    let (_, body) = api.create("doomed", generated).await;
    assert_eq!(
        body["message"],
        "foos.hello.zeng.dev \"gen-\" is forbidden: unable to create new content in namespace doomed because it is being terminated"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_need_an_existing_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let stub = StubCluster::start(dir.path()).await;
    let api = Api::new(&stub, Duration::from_secs(60));
    stub.cluster.add_namespace("closing");
    assert_eq!(api.create("closing", foo("kept", &["example.com/keep"])).await.0, 201);
    api.plant("limbo", "stray").await;
    stub.cluster.terminate("closing");
    let api = api.restarted(&stub);

    // Terminating: updates go through (finalizers must be able to finish).
    let patch = json!({"metadata": {"labels": {"seen": "yes"}}});
    let (status, body) = api.call("PATCH", &format!("{}/kept", foos("closing")), "application/merge-patch+json", Some(patch.clone())).await;
    assert_eq!(status, 200, "{body}");
    // Missing: 404 for the namespace, once the object is known to exist.
    let (status, body) = api.call("PATCH", &format!("{}/stray", foos("limbo")), "application/merge-patch+json", Some(patch.clone())).await;
    assert_eq!((status, body["message"].clone()), (StatusCode::NOT_FOUND, json!("namespaces \"limbo\" not found")));
    let (status, body) = api.call("PATCH", &format!("{}/absent", foos("limbo")), "application/merge-patch+json", Some(patch)).await;
    assert_eq!((status, body["message"].clone()), (StatusCode::NOT_FOUND, json!("foos.hello.zeng.dev \"absent\" not found")));
    // Deletes are never refused.
    assert_eq!(api.call("DELETE", &format!("{}/stray", foos("limbo")), "", None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_of_terminating_and_deleted_namespaces_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let stub = StubCluster::start(dir.path()).await;
    for ns in ["team-a", "team-b", "team-c"] {
        stub.cluster.add_namespace(ns);
    }
    let api = Api::new(&stub, Duration::from_millis(300));
    for ns in ["team-a", "team-b", "team-c", "default"] {
        assert_eq!(api.create(ns, foo("plain", &[])).await.0, 201);
        assert_eq!(api.create(ns, foo("guarded", &["example.com/keep"])).await.0, 201);
    }
    // Left behind by a namespace deleted while the server was down.
    api.plant("ghost", "orphan").await;
    let controller = api.run_controller();

    // The first list finds "ghost" missing (confirmed by a GET) and removes what it held.
    eventually("the orphan of a namespace deleted earlier to be removed", || async { api.stored("ghost", "orphan").await.is_none() }).await;
    assert!(stub.cluster.gets_of("ghost") >= 1);
    eventually("the watch to start", || async { stub.cluster.watches.load(std::sync::atomic::Ordering::SeqCst) > 0 }).await;

    // Terminating: deleted as a deletecollection would, finalizers honoured.
    stub.cluster.terminate("team-a");
    eventually("team-a's plain object to go", || async { api.stored("team-a", "plain").await.is_none() }).await;
    let guarded = api.stored("team-a", "guarded").await.expect("an object with a finalizer stays");
    assert!(guarded["metadata"]["deletionTimestamp"].is_string(), "{guarded}");
    // Its finalizer removed, it goes.
    let (status, body) = api
        .call(
            "PATCH",
            &format!("{}/guarded", foos("team-a")),
            "application/merge-patch+json",
            Some(json!({"metadata": {"finalizers": null}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(api.stored("team-a", "guarded").await.is_none());
    // And nothing new gets in.
    assert_eq!(api.create("team-a", foo("late", &[])).await.0, 403);

    // Gone: everything goes, finalizers or not.
    stub.cluster.remove("team-b");
    eventually("team-b to be emptied", || async {
        api.stored("team-b", "plain").await.is_none() && api.stored("team-b", "guarded").await.is_none()
    })
    .await;
    // The watch told the cache too: no GET needed to refuse.
    let gets = stub.cluster.gets_of("team-b");
    assert_eq!(api.create("team-b", foo("late", &[])).await.0, 404);
    assert_eq!(stub.cluster.gets_of("team-b"), gets);

    // A namespace created again is usable at once (the watch's ADDED replaces "not found").
    stub.cluster.add_namespace("team-b");
    eventually("team-b to take objects again", || async { api.create("team-b", foo("again", &[])).await.0 == 201 }).await;

    // Other namespaces are untouched.
    for ns in ["team-c", "default"] {
        assert!(api.stored(ns, "plain").await.is_some() && api.stored(ns, "guarded").await.is_some(), "{ns}");
    }
    controller.abort();
}
