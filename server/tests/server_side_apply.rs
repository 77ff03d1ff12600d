//! Server-side apply and managedFields through the router: the apply requests kube-apiserver
//! 1.32 answered (`../shared/reference/kube-apiserver-1.32/`), replayed in capture order and
//! compared with managedFields included, and kubectl's migration from client-side to
//! server-side apply as kubectl 1.33 performed it against kube-apiserver.

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

const FOO: &str = "/apis/hello.zeng.dev/v1/namespaces/default/foos/kubectl-foo";

fn reference(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/kube-apiserver-1.32").join(name)
}

/// A request and kube-apiserver's answer, read from `NAME.http` and `NAME.json`.
struct Exchange {
    method: String,
    path: String,
    content_type: Option<String>,
    body: Option<String>,
    status: u16,
    answer: Value,
}

fn load(name: &str) -> Exchange {
    let http = std::fs::read_to_string(reference(&format!("{name}.http"))).unwrap();
    let answer = serde_json::from_slice(&std::fs::read(reference(&format!("{name}.json"))).unwrap()).unwrap();
    let (request, response) = http.split_at(http.rfind("\nHTTP/").unwrap());
    let mut lines = request.lines();
    let (method, path) = lines.next().unwrap().trim_start_matches("> ").split_once(' ').unwrap();
    // `> arg: X` lines are curl arguments; a multi-line argument continues on plain lines.
    let mut args: Vec<String> = Vec::new();
    for line in lines {
        match line.strip_prefix("> arg: ") {
            Some(arg) => args.push(arg.to_string()),
            None => {
                let last = args.last_mut().unwrap();
                last.push('\n');
                last.push_str(line);
            }
        }
    }
    let mut exchange = Exchange { method: method.into(), path: path.into(), content_type: None, body: None, status: 0, answer };
    for pair in args.windows(2) {
        match pair[0].as_str() {
            "-H" => exchange.content_type = pair[1].strip_prefix("Content-Type: ").map(str::to_string),
            "-d" | "--data-binary" => exchange.body = Some(pair[1].trim_end_matches('\n').to_string()),
            _ => {}
        }
    }
    exchange.status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    exchange
}

/// Replaces what differs between two servers on the same history.
fn normalize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match key.as_str() {
                    "uid" | "creationTimestamp" | "time" | "resourceVersion" if child.is_string() => *child = json!(format!("<{key}>")),
                    _ => normalize(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

struct Server {
    app: axum::Router,
}

impl Server {
    fn new() -> Self {
        let storage = Arc::new(server::storage::memory::MemoryStorage::default());
        Server { app: server::app(server::AppState::new(storage)) }
    }

    async fn send(&self, method: &str, path: &str, content_type: Option<&str>, body: Option<String>, agent: &str) -> (u16, Value) {
        let mut request = Request::builder().method(method).uri(path).header("user-agent", agent);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = self.app.clone().oneshot(request.body(body.map(Body::from).unwrap_or_else(Body::empty)).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes))))
    }

    async fn replay(&self, name: &str) {
        let exchange = load(name);
        let (status, mut got) = self
            .send(
                &exchange.method,
                &exchange.path,
                exchange.content_type.as_deref(),
                exchange.body.clone(),
                "anchor-capture/v1.0 (linux/amd64)",
            )
            .await;
        let mut want = exchange.answer;
        normalize(&mut want);
        normalize(&mut got);
        assert_eq!(status, exchange.status, "{name}: {got}");
        assert_eq!(got, want, "{name}");
    }
}

#[tokio::test]
async fn replays_kube_apiserver_apply_captures() {
    let server = Server::new();
    for name in [
        "create",
        "apply-create",
        "apply-update-same-manager",
        "err-422-apply-no-fieldmanager",
        "err-409-apply-conflict",
        "apply-force",
        "apply-json-body",
    ] {
        server.replay(name).await;
    }
}

/// The managedFields of an answer, without times, ordered by operation and manager (the
/// order kube-apiserver uses when times are equal; here everything happens in one second).
fn managed_fields(object: &Value) -> Value {
    let mut fields = object["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    for entry in &mut fields {
        entry.as_object_mut().unwrap().remove("time");
    }
    fields.sort_by_key(|e| (e["operation"].to_string(), e["manager"].to_string()));
    Value::Array(fields)
}

fn entry(manager: &str, operation: &str, fields: Value) -> Value {
    json!({"apiVersion": "hello.zeng.dev/v1", "fieldsType": "FieldsV1", "fieldsV1": fields, "manager": manager, "operation": operation})
}

/// `kubectl create`, `kubectl apply` (client-side), then `kubectl apply --server-side` as
/// kubectl 1.33 sends it (`kubectl-1.33/10-apply-server-side.v8.log`): the first server-side
/// apply shares fields with the client-side managers and refreshes the last-applied annotation,
/// kubectl keeps the annotation under its own `kubectl-last-applied` apply, moves the
/// client-side manager's fields to itself with a JSON patch of managedFields, and applies again.
#[tokio::test]
async fn kubectl_moves_from_client_side_to_server_side_apply() {
    let server = Server::new();
    let agent = "kubectl.1.33/v1.33.1 (linux/amd64) kubernetes/8adc0f0";
    let config = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": "kubectl-foo", "namespace": "default"}, "spec": {"msg": "applied update", "msg1": "verbose hello from kubectl"}});
    let created = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": "kubectl-foo", "namespace": "default"}, "spec": {"msg": "hello from kubectl", "msg1": "verbose hello from kubectl"}});
    let (status, _) = server
        .send(
            "POST",
            "/apis/hello.zeng.dev/v1/namespaces/default/foos?fieldManager=kubectl-create&fieldValidation=Strict",
            Some("application/json"),
            Some(created.to_string()),
            agent,
        )
        .await;
    assert_eq!(status, 201);
    let client_side = "{\"apiVersion\":\"hello.zeng.dev/v1\",\"kind\":\"Foo\",\"metadata\":{\"annotations\":{},\"name\":\"kubectl-foo\",\"namespace\":\"default\"},\"spec\":{\"msg\":\"applied update\",\"msg1\":\"verbose hello from kubectl\"}}\n";
    let patch = json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": client_side}}, "spec": {"msg": "applied update"}});
    let (status, _) = server
        .send(
            "PATCH",
            &format!("{FOO}?fieldManager=kubectl-client-side-apply&fieldValidation=Strict"),
            Some("application/merge-patch+json"),
            Some(patch.to_string()),
            agent,
        )
        .await;
    assert_eq!(status, 200);

    let apply = |manager: &str, force_param: bool| {
        format!("{FOO}?fieldManager={manager}&fieldValidation=Strict{}", if force_param { "&force=false" } else { "" })
    };
    let (status, first) =
        server.send("PATCH", &apply("kubectl", true), Some("application/apply-patch+yaml"), Some(config.to_string()), agent).await;
    assert_eq!(status, 200, "{first}");
    let csa_fields = json!({"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}, "f:spec": {"f:msg": {}}});
    assert_eq!(
        managed_fields(&first),
        json!([
            entry("kubectl", "Apply", json!({"f:spec": {"f:msg": {}, "f:msg1": {}}})),
            entry("kubectl-client-side-apply", "Update", csa_fields),
            entry("kubectl-create", "Update", json!({"f:spec": {".": {}, "f:msg1": {}}})),
        ])
    );
    // Nothing but ownership changed, so the applier's entry has no time.
    assert_eq!(first["metadata"]["managedFields"][0].get("time"), None);
    let refreshed = "{\"apiVersion\":\"hello.zeng.dev/v1\",\"kind\":\"Foo\",\"metadata\":{\"name\":\"kubectl-foo\",\"namespace\":\"default\"},\"spec\":{\"msg\":\"applied update\",\"msg1\":\"verbose hello from kubectl\"}}\n";
    assert_eq!(first["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"], refreshed);

    let annotation_only = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": refreshed}, "name": "kubectl-foo", "namespace": "default"}});
    let (status, second) = server
        .send(
            "PATCH",
            &apply("kubectl-last-applied", false),
            Some("application/apply-patch+yaml"),
            Some(annotation_only.to_string()),
            agent,
        )
        .await;
    assert_eq!(status, 200, "{second}");
    let last_applied_fields = json!({"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}});
    assert_eq!(managed_fields(&second)[1], entry("kubectl-last-applied", "Apply", last_applied_fields.clone()));

    // kubectl's client-side rewrite of managedFields, with the resourceVersion it read.
    let rv = second["metadata"]["resourceVersion"].clone();
    let upgraded = json!([
        {"manager": "kubectl", "operation": "Apply", "apiVersion": "hello.zeng.dev/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}, "f:spec": {"f:msg": {}, "f:msg1": {}}}},
        {"manager": "kubectl-last-applied", "operation": "Apply", "apiVersion": "hello.zeng.dev/v1", "fieldsType": "FieldsV1", "fieldsV1": last_applied_fields},
        {"manager": "kubectl-create", "operation": "Update", "apiVersion": "hello.zeng.dev/v1", "time": "2026-11-25T15:18:59Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {".": {}, "f:msg1": {}}}},
    ]);
    let ops = json!([{"op": "replace", "path": "/metadata/managedFields", "value": upgraded}, {"op": "replace", "path": "/metadata/resourceVersion", "value": rv}]);
    let (status, third) = server
        .send(
            "PATCH",
            &format!("{FOO}?fieldManager=kubectl&fieldValidation=Strict"),
            Some("application/json-patch+json"),
            Some(ops.to_string()),
            agent,
        )
        .await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(managed_fields(&third).as_array().unwrap().len(), 3, "{third}");
    assert_eq!(third["metadata"]["managedFields"][2]["time"], "2026-11-25T15:18:59Z");

    let (status, last) =
        server.send("PATCH", &apply("kubectl", true), Some("application/apply-patch+yaml"), Some(config.to_string()), agent).await;
    assert_eq!(status, 200, "{last}");
    assert_eq!(
        managed_fields(&last),
        json!([
            entry("kubectl", "Apply", json!({"f:spec": {"f:msg": {}, "f:msg1": {}}})),
            entry(
                "kubectl-last-applied",
                "Apply",
                json!({"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}})
            ),
            entry("kubectl-create", "Update", json!({"f:spec": {".": {}, "f:msg1": {}}})),
        ])
    );
    // The object did not change (only kubectl's ownership did): no time on its entry.
    assert_eq!(last["metadata"]["managedFields"][0].get("time"), None);
    assert_eq!(last["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"], refreshed);
}
