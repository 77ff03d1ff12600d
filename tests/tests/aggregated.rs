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

// ---------------------------------------------------------------------------------------------
// kubectl → front proxy → the real binary in aggregated mode.

/// The server binary started with `--aggregated --kubeconfig <stub>`; killed when dropped.
struct AggregatedServer {
    child: std::process::Child,
    address: String,
    dir: tempfile::TempDir,
}

impl Drop for AggregatedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AggregatedServer {
    async fn start(stub: &StubCluster) -> AggregatedServer {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new(e2e::server_binary())
            .args(["--aggregated", "--storage", "memory", "--secure-port", "0", "--data-dir"])
            .arg(dir.path())
            .arg("--kubeconfig")
            .arg(&stub.kubeconfig)
            .env("RUST_LOG", "info")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start the apiserver binary");
        let mut server = AggregatedServer { child, address: String::new(), dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = server.log();
            if let Some(at) = text.find("Serving on https://") {
                server.address = text[at + "Serving on https://".len()..].lines().next().unwrap().trim().to_string();
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("the server exited with {status}:\n{text}");
            }
            assert!(Instant::now() < deadline, "the server did not start:\n{text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("certs/ca.crt")).unwrap()
    }
}

/// kubectl against the proxy as one user.
struct Kubectl {
    version: &'static str,
    kubeconfig: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl Kubectl {
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(e2e::kubectl_path(self.version));
        command.arg("--kubeconfig").arg(&self.kubeconfig).args(args).env("KUBECACHEDIR", self.dir.join(format!("cache-{}", self.version)));
        command.stdin(std::process::Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.command(args).output().expect("run kubectl");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "kubectl.{} {} failed:\n{out}\n{err}", self.version, args.join(" "));
        out
    }

    /// Fails, and says `message` (kubectl's `Error from server (…): …` line).
    fn refused(&self, args: &[&str], message: &str) {
        let (ok, out, err) = self.run(args);
        assert!(!ok, "kubectl.{} {} should have failed:\n{out}", self.version, args.join(" "));
        assert!(err.contains(message), "kubectl.{} {}: expected {message:?} in\n{err}", self.version, args.join(" "));
    }
}

fn manifest(dir: &std::path::Path, name: &str, namespace: &str, msg: &str) -> String {
    let path = dir.join(format!("{namespace}-{name}-{msg}.yaml"));
    let text =
        format!("apiVersion: hello.zeng.dev/v1\nkind: Foo\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  msg: {msg}\n");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn forbidden(user: &str, verb: &str, name: Option<&str>) -> String {
    let what = match name {
        Some(name) => format!("foos.hello.zeng.dev \"{name}\""),
        None => "foos.hello.zeng.dev".to_string(),
    };
    format!(
        "{what} is forbidden: User \"{user}\" cannot {verb} resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\""
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_through_an_aggregator() {
    let dir = tempfile::tempdir().unwrap();
    let stub = StubCluster::start(dir.path()).await;
    // The cluster's front proxy: the server learns its CA and name from the ConfigMap only.
    let front_proxy_ca = support::Ca::new("front-proxy-ca");
    stub.cluster.publish_front_proxy(&front_proxy_ca, None);
    // kube-apiserver's answers: alice may do anything, bob only read, eve nothing; everyone
    // authenticated may use discovery.
    *stub.cluster.access_rule.lock().unwrap() = Box::new(|spec: &Value| {
        let user = spec["user"].as_str().unwrap_or_default();
        let verb = spec["resourceAttributes"]["verb"].as_str();
        let allowed = matches!((user, verb), (_, None) | ("alice", _) | ("bob", Some("get" | "list" | "watch")));
        json!({"allowed": allowed})
    });
    let server = AggregatedServer::start(&stub).await;
    let mut users: std::collections::HashMap<String, (String, Vec<String>)> =
        [("alice-token", "alice"), ("bob-token", "bob"), ("eve-token", "eve")]
            .into_iter()
            .map(|(token, user)| {
                (token.to_string(), (user.to_string(), vec!["developers".to_string(), "system:authenticated".to_string()]))
            })
            .collect();
    // The aggregator's availability check speaks as system:kube-aggregator in system:masters.
    users.insert("aggregator-token".into(), ("system:kube-aggregator".into(), vec!["system:masters".into()]));
    let proxy = support::FrontProxy::start(&server.address, &server.ca_pem(), &front_proxy_ca.client("front-proxy-client"), users).await;
    let files = dir.path().to_path_buf();
    let (alice_config, bob_config, eve_config) = (
        proxy.kubeconfig(&files, "alice", "alice-token"),
        proxy.kubeconfig(&files, "bob", "bob-token"),
        proxy.kubeconfig(&files, "eve", "eve-token"),
    );

    // A proxy certificate of another CA is refused at the handshake; a proxy of the right CA
    // with a name the ConfigMap does not allow is nobody (401).
    let rogue_proxy = support::FrontProxy::start(
        &server.address,
        &server.ca_pem(),
        &front_proxy_ca.client("rogue"),
        [("t".to_string(), ("alice".to_string(), vec![]))].into(),
    )
    .await;
    let rogue = Kubectl { version: e2e::NEWEST_KUBECTL, kubeconfig: rogue_proxy.kubeconfig(&files, "rogue", "t"), dir: files.clone() };
    // (kubectl words the 401 differently from version to version.)
    rogue.refused(&["get", "foos"], "error: You must be logged in to the server");

    // kube-aggregator's availability check: GET /apis/<group>/<version> must answer 2xx.
    let aggregator = Kubectl {
        version: e2e::NEWEST_KUBECTL,
        kubeconfig: proxy.kubeconfig(&files, "aggregator", "aggregator-token"),
        dir: files.clone(),
    };
    let discovery: Value = serde_json::from_str(&aggregator.ok(&["get", "--raw", "/apis/hello.zeng.dev/v1"])).unwrap();
    assert_eq!(discovery["kind"], "APIResourceList");
    assert!(
        stub.cluster.access_reviews.lock().unwrap().iter().all(|r| r["user"] != "system:kube-aggregator"),
        "system:masters needs no review"
    );

    let versions: Vec<&'static str> = e2e::KUBECTL_VERSIONS.to_vec();
    for version in versions {
        let v = version.replace('.', "-");
        let alice = Kubectl { version, kubeconfig: alice_config.clone(), dir: files.clone() };
        let bob = Kubectl { version, kubeconfig: bob_config.clone(), dir: files.clone() };
        let eve = Kubectl { version, kubeconfig: eve_config.clone(), dir: files.clone() };
        let (mine, theirs) = (format!("a-{v}"), format!("b-{v}"));

        // alice: every verb.
        assert_eq!(
            alice.ok(&["create", "-f", &manifest(&files, &mine, "default", "one")]).trim(),
            format!("foo.hello.zeng.dev/{mine} created")
        );
        assert_eq!(alice.ok(&["get", "foo", &mine, "-o", "jsonpath={.spec.msg}"]), "one");
        assert!(alice.ok(&["get", "foos"]).lines().any(|l| l.starts_with(&format!("{mine} "))));
        let mut watch = alice
            .command(&["get", "foos", "-w", "-o", "jsonpath={.metadata.name}={.spec.msg}{\"\\n\"}"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = watch_lines(watch.stdout.take().unwrap());
        eventually_lines(&lines, &format!("{mine}=one")).await;
        assert_eq!(
            alice.ok(&["replace", "-f", &manifest(&files, &mine, "default", "two")]).trim(),
            format!("foo.hello.zeng.dev/{mine} replaced")
        );
        eventually_lines(&lines, &format!("{mine}=two")).await;
        assert_eq!(
            alice.ok(&["patch", "foo", &mine, "--type=merge", "-p", "{\"spec\":{\"msg\":\"three\"}}"]).trim(),
            format!("foo.hello.zeng.dev/{mine} patched")
        );
        eventually_lines(&lines, &format!("{mine}=three")).await;
        let _ = watch.kill();
        let _ = watch.wait();
        assert_eq!(alice.ok(&["delete", "foo", &mine]).trim(), format!("foo.hello.zeng.dev \"{mine}\" deleted"));
        alice.ok(&["create", "-f", &manifest(&files, &theirs, "default", "one")]);

        // bob: reads, and kube's 403 for every write.
        assert_eq!(bob.ok(&["get", "foo", &theirs, "-o", "jsonpath={.spec.msg}"]), "one");
        assert!(bob.ok(&["get", "foos", "-o", "name"]).contains(&format!("foo.hello.zeng.dev/{theirs}")));
        let (ok, out, err) = bob.run(&["get", "--raw", "/apis/hello.zeng.dev/v1/namespaces/default/foos?watch=true&timeoutSeconds=1"]);
        assert!(ok && out.contains("\"ADDED\""), "{out}\n{err}");
        let created = format!(
            "Error from server (Forbidden): error when creating \"{}\": {}",
            manifest(&files, "new", "default", "x"),
            forbidden("bob", "create", None)
        );
        bob.refused(&["create", "-f", &manifest(&files, "new", "default", "x")], &created);
        let replace = manifest(&files, &theirs, "default", "bobs");
        bob.refused(
            &["replace", "-f", &replace],
            &format!("Error from server (Forbidden): error when replacing \"{replace}\": {}", forbidden("bob", "update", Some(&theirs))),
        );
        bob.refused(
            &["patch", "foo", &theirs, "--type=merge", "-p", "{\"spec\":{\"msg\":\"bobs\"}}"],
            &format!("Error from server (Forbidden): {}", forbidden("bob", "patch", Some(&theirs))),
        );
        bob.refused(&["delete", "foo", &theirs], &format!("Error from server (Forbidden): {}", forbidden("bob", "delete", Some(&theirs))));

        // eve: not even reads.
        eve.refused(&["get", "foo", &theirs], &format!("Error from server (Forbidden): {}", forbidden("eve", "get", Some(&theirs))));
        eve.refused(&["get", "foos"], &format!("Error from server (Forbidden): {}", forbidden("eve", "list", None)));
        eve.refused(
            &["get", "--raw", "/apis/hello.zeng.dev/v1/namespaces/default/foos?watch=true"],
            &format!("Error from server (Forbidden): {}", forbidden("eve", "watch", None)),
        );
        alice.ok(&["delete", "foo", &theirs]);
    }

    // The SubjectAccessReviews carried the user and groups the proxy named.
    let reviews = stub.cluster.access_reviews.lock().unwrap().clone();
    let bobs = reviews.iter().find(|r| r["user"] == "bob").expect("a review of bob's requests");
    assert_eq!(bobs["groups"], json!(["developers", "system:authenticated"]));

    // Namespaces through kubectl: none, terminating, and the objects of a deleted one.
    let alice = Kubectl { version: e2e::NEWEST_KUBECTL, kubeconfig: alice_config.clone(), dir: files.clone() };
    let missing = manifest(&files, "x", "nope", "one");
    alice.refused(
        &["create", "-f", &missing],
        &format!("Error from server (NotFound): error when creating \"{missing}\": namespaces \"nope\" not found"),
    );
    stub.cluster.add_namespace("doomed");
    stub.cluster.add_namespace("team");
    alice.ok(&["create", "-f", &manifest(&files, "kept", "team", "one")]);
    stub.cluster.terminate("doomed");
    let late = manifest(&files, "x", "doomed", "one");
    let expected = format!(
        "Error from server (Forbidden): error when creating \"{late}\": foos.hello.zeng.dev \"x\" is forbidden: unable to create new content in namespace doomed because it is being terminated"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, _, err) = alice.run(&["create", "-f", &late]);
        if !ok && err.contains(&expected) {
            break;
        }
        assert!(Instant::now() < deadline, "expected {expected:?}, got: {err}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stub.cluster.remove("team");
    // (A list: kubectl 1.33 follows a NotFound GET with a GET of the namespace, which a real
    // aggregator answers itself and this proxy does not.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while !alice.ok(&["get", "foos", "-n", "team", "-o", "name"]).trim().is_empty() {
        assert!(Instant::now() < deadline, "the object of the deleted namespace is still there\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.log().contains("namespace deleted: removed its objects"), "{}", server.log());
}

/// Collects a child's stdout lines on a thread.
fn watch_lines(stdout: std::process::ChildStdout) -> Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::BufRead;
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

async fn eventually_lines(lines: &Arc<std::sync::Mutex<Vec<String>>>, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !lines.lock().unwrap().iter().any(|l| l == wanted) {
        assert!(Instant::now() < deadline, "the watch did not print {wanted:?}: {:?}", lines.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
