//! A stub kube-apiserver for the aggregated-mode tests, over HTTPS: namespaces (GET, LIST,
//! WATCH, changed by the test), the `kube-system/extension-apiserver-authentication` ConfigMap,
//! and TokenReview and SubjectAccessReview answered by rules the test gives. Also a small PKI.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use futures::StreamExt;
use http::{HeaderMap, StatusCode};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A certificate authority of the test.
pub struct Ca {
    pub pem: String,
    key: KeyPair,
}

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Identity {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca { pem: params.self_signed(&key).unwrap().pem(), key }
    }

    fn issue(&self, cn: &str, usage: ExtendedKeyUsagePurpose, localhost: bool) -> Identity {
        let issuer = Issuer::from_ca_cert_pem(&self.pem, &self.key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        if localhost {
            params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        }
        params.extended_key_usages = vec![usage];
        Identity { cert: params.signed_by(&key, &issuer).unwrap().pem(), key: key.serialize_pem() }
    }

    /// A client certificate with common name `cn`.
    pub fn client(&self, cn: &str) -> Identity {
        self.issue(cn, ExtendedKeyUsagePurpose::ClientAuth, false)
    }

    /// A serving certificate for 127.0.0.1.
    pub fn server(&self, cn: &str) -> Identity {
        self.issue(cn, ExtendedKeyUsagePurpose::ServerAuth, true)
    }
}

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// How the stub answers a SubjectAccessReview spec: the review's `status`.
pub type AccessRule = Box<dyn Fn(&Value) -> Value + Send + Sync>;

/// The stub's state.
pub struct Cluster {
    namespaces: Mutex<BTreeMap<String, Value>>,
    /// Every namespace event so far (a watch from revision R replays those after R).
    history: Mutex<Vec<(u64, Value)>>,
    revision: AtomicUsize,
    events: tokio::sync::broadcast::Sender<(u64, Value)>,
    /// `GET /api/v1/namespaces/<name>` requests, by name.
    pub namespace_gets: Mutex<HashMap<String, usize>>,
    pub watches: AtomicUsize,
    pub configmap: Mutex<Option<Value>>,
    /// Token → TokenReview user.
    pub tokens: Mutex<HashMap<String, Value>>,
    pub access_rule: Mutex<AccessRule>,
    pub access_reviews: Mutex<Vec<Value>>,
    /// The bearer token the server must present.
    pub caller_token: String,
}

impl Cluster {
    fn bump(&self) -> u64 {
        self.revision.fetch_add(1, Ordering::SeqCst) as u64 + 1
    }

    fn emit(&self, kind: &str, object: Value, revision: u64) {
        let event = json!({"type": kind, "object": object});
        self.history.lock().unwrap().push((revision, event.clone()));
        let _ = self.events.send((revision, event));
    }

    /// Creates (or re-creates) an active namespace.
    pub fn add_namespace(&self, name: &str) {
        let revision = self.bump();
        let object = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "uid": format!("uid-{name}-{revision}"), "resourceVersion": revision.to_string(), "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"}
        });
        self.namespaces.lock().unwrap().insert(name.to_string(), object.clone());
        self.emit("ADDED", object, revision);
    }

    /// Starts deleting a namespace: deletionTimestamp and phase Terminating.
    pub fn terminate(&self, name: &str) {
        let revision = self.bump();
        let object = {
            let mut namespaces = self.namespaces.lock().unwrap();
            let object = namespaces.get_mut(name).expect("a namespace of the stub");
            object["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
            object["metadata"]["resourceVersion"] = json!(revision.to_string());
            object["status"]["phase"] = json!("Terminating");
            object.clone()
        };
        self.emit("MODIFIED", object, revision);
    }

    /// Removes a namespace.
    pub fn remove(&self, name: &str) {
        let revision = self.bump();
        let mut object = self.namespaces.lock().unwrap().remove(name).expect("a namespace of the stub");
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        self.emit("DELETED", object, revision);
    }

    pub fn gets_of(&self, name: &str) -> usize {
        self.namespace_gets.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    /// The kube-system/extension-apiserver-authentication ConfigMap of a cluster whose front
    /// proxy has a certificate of `front_proxy_ca` named `front-proxy-client`.
    pub fn publish_front_proxy(&self, front_proxy_ca: &Ca, client_ca: Option<&Ca>) {
        let mut data = json!({
            "requestheader-client-ca-file": front_proxy_ca.pem,
            "requestheader-allowed-names": "[\"front-proxy-client\"]",
            "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]",
            "requestheader-group-headers": "[\"X-Remote-Group\"]",
            "requestheader-username-headers": "[\"X-Remote-User\"]",
        });
        if let Some(ca) = client_ca {
            data["client-ca-file"] = json!(ca.pem);
        }
        *self.configmap.lock().unwrap() = Some(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
            "data": data
        }));
    }
}

fn status(code: u16, reason: &str, message: &str, details: Value) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "details": details, "code": code});
    (StatusCode::from_u16(code).unwrap(), Json(body)).into_response()
}

fn caller_ok(cluster: &Cluster, headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {}", cluster.caller_token))
}

fn unauthorized() -> Response {
    status(401, "Unauthorized", "Unauthorized", json!({}))
}

async fn list_or_watch(State(cluster): State<Arc<Cluster>>, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    if !caller_ok(&cluster, &headers) {
        return unauthorized();
    }
    let watching = matches!(query.get("watch").map(String::as_str), Some("1" | "true"));
    if !watching {
        let items: Vec<Value> = cluster.namespaces.lock().unwrap().values().cloned().collect();
        let revision = cluster.revision.load(Ordering::SeqCst);
        return Json(
            json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": revision.to_string()}, "items": items}),
        )
        .into_response();
    }
    cluster.watches.fetch_add(1, Ordering::SeqCst);
    let after: u64 = query.get("resourceVersion").and_then(|r| r.parse().ok()).unwrap_or(0);
    // Subscribe first, then replay: nothing falls between the two.
    let live = cluster.events.subscribe();
    let past: Vec<(u64, Value)> = cluster.history.lock().unwrap().iter().filter(|(r, _)| *r > after).cloned().collect();
    let last_past = past.last().map(|(r, _)| *r).unwrap_or(after);
    let replay = futures::stream::iter(past);
    let live = tokio_stream_from(live).filter(move |(r, _)| futures::future::ready(*r > last_past));
    let lines = replay.chain(live).map(|(_, event)| Ok::<_, std::io::Error>(format!("{event}\n")));
    Response::builder().header("content-type", "application/json").body(Body::from_stream(lines)).unwrap()
}

/// A broadcast receiver as a stream (ends when the sender is gone).
fn tokio_stream_from(receiver: tokio::sync::broadcast::Receiver<(u64, Value)>) -> impl futures::Stream<Item = (u64, Value)> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(item) => return Some((item, receiver)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    })
}

async fn get_namespace(State(cluster): State<Arc<Cluster>>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if !caller_ok(&cluster, &headers) {
        return unauthorized();
    }
    *cluster.namespace_gets.lock().unwrap().entry(name.clone()).or_default() += 1;
    match cluster.namespaces.lock().unwrap().get(&name) {
        Some(object) => Json(object.clone()).into_response(),
        None => status(404, "NotFound", &format!("namespaces \"{name}\" not found"), json!({"name": name, "kind": "namespaces"})),
    }
}

async fn get_configmap(State(cluster): State<Arc<Cluster>>, headers: HeaderMap) -> Response {
    if !caller_ok(&cluster, &headers) {
        return unauthorized();
    }
    match cluster.configmap.lock().unwrap().clone() {
        Some(configmap) => Json(configmap).into_response(),
        None => status(
            404,
            "NotFound",
            "configmaps \"extension-apiserver-authentication\" not found",
            json!({"name": "extension-apiserver-authentication", "kind": "configmaps"}),
        ),
    }
}

async fn token_review(State(cluster): State<Arc<Cluster>>, headers: HeaderMap, Json(review): Json<Value>) -> Response {
    if !caller_ok(&cluster, &headers) {
        return unauthorized();
    }
    let token = review["spec"]["token"].as_str().unwrap_or_default();
    let status = match cluster.tokens.lock().unwrap().get(token) {
        Some(user) => json!({"authenticated": true, "user": user}),
        None => json!({"authenticated": false}),
    };
    let answer = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": review["spec"], "status": status});
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn access_review(State(cluster): State<Arc<Cluster>>, headers: HeaderMap, Json(review): Json<Value>) -> Response {
    if !caller_ok(&cluster, &headers) {
        return unauthorized();
    }
    let spec = review["spec"].clone();
    cluster.access_reviews.lock().unwrap().push(spec.clone());
    let status = (cluster.access_rule.lock().unwrap())(&spec);
    let answer = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec, "status": status});
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// A running stub: its state, and a kubeconfig for it.
pub struct StubCluster {
    pub cluster: Arc<Cluster>,
    pub kubeconfig: std::path::PathBuf,
}

impl StubCluster {
    /// Starts the stub on a free port with namespaces `default` and `kube-system`; writes its
    /// kubeconfig into `dir`.
    pub async fn start(dir: &std::path::Path) -> StubCluster {
        let ca = Ca::new("stub-cluster-ca");
        let serving = ca.server("kube-apiserver");
        let certs = server::tls::ServingCertificates { cert_pem: serving.cert, key_pem: serving.key, ca_pem: None };
        let tls = server::tls::server_config(&certs).unwrap();
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let cluster = Arc::new(Cluster {
            namespaces: Mutex::new(BTreeMap::new()),
            history: Mutex::new(Vec::new()),
            revision: AtomicUsize::new(100),
            events,
            namespace_gets: Mutex::new(HashMap::new()),
            watches: AtomicUsize::new(0),
            configmap: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
            access_rule: Mutex::new(Box::new(|_| json!({"allowed": false}))),
            access_reviews: Mutex::new(Vec::new()),
            caller_token: "extension-server-token".into(),
        });
        cluster.add_namespace("default");
        cluster.add_namespace("kube-system");
        let app = Router::new()
            .route("/api/v1/namespaces", get(list_or_watch))
            .route("/api/v1/namespaces/{name}", get(get_namespace))
            .route("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication", get(get_configmap))
            .route("/apis/authentication.k8s.io/v1/tokenreviews", post(token_review))
            .route("/apis/authorization.k8s.io/v1/subjectaccessreviews", post(access_review))
            .with_state(cluster.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(server::serve::serve_tls(listener, tls, app, std::future::pending()));
        let kubeconfig = dir.join("cluster.kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: cluster\nclusters:\n- name: cluster\n  cluster:\n    server: {url}\n    certificate-authority-data: {}\nusers:\n- name: extension\n  user:\n    token: {}\ncontexts:\n- name: cluster\n  context: {{cluster: cluster, user: extension}}\n",
            b64(&ca.pem),
            cluster.caller_token
        );
        std::fs::write(&kubeconfig, text).unwrap();
        StubCluster { cluster, kubeconfig }
    }

    /// A client for the stub, as the server builds it.
    pub fn client(&self) -> server::auth::client::RestClient {
        server::auth::client::RestClient::from_kubeconfig("--kubeconfig", &self.kubeconfig).unwrap()
    }
}

/// A front proxy playing kube-apiserver's aggregator: it authenticates kubectl's bearer token
/// itself, then forwards the request to the extension server on a connection with its
/// front-proxy client certificate, the user in `X-Remote-User` and `X-Remote-Group` and no
/// `Authorization` header. Responses (watches too) stream back as they come.
pub struct FrontProxy {
    pub url: String,
    pub ca: Ca,
}

struct ProxyState {
    upstream: String,
    tls: Arc<rustls::ClientConfig>,
    /// Token → (user, groups).
    users: HashMap<String, (String, Vec<String>)>,
}

/// Headers that belong to one connection, or that only the proxy may set.
const NOT_FORWARDED: [&str; 7] = ["authorization", "host", "connection", "keep-alive", "transfer-encoding", "te", "upgrade"];

impl FrontProxy {
    /// Starts the proxy for the server at `upstream` (`host:port`, its serving CA `upstream_ca`),
    /// presenting `identity`.
    pub async fn start(
        upstream: &str,
        upstream_ca: &str,
        identity: &Identity,
        users: HashMap<String, (String, Vec<String>)>,
    ) -> FrontProxy {
        let ca = Ca::new("front-proxy-serving-ca");
        let serving = ca.server("front-proxy");
        let certs = server::tls::ServingCertificates { cert_pem: serving.cert, key_pem: serving.key, ca_pem: None };
        let server_tls = server::tls::server_config(&certs).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut upstream_ca.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let chain = rustls_pemfile::certs(&mut identity.cert.as_bytes()).map(|c| c.unwrap()).collect();
        let key = rustls_pemfile::private_key(&mut identity.key.as_bytes()).unwrap().unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client_tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
        client_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let state = Arc::new(ProxyState { upstream: upstream.to_string(), tls: Arc::new(client_tls), users });
        let app = Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        tokio::spawn(server::serve::serve_tls(listener, server_tls, app, std::future::pending()));
        FrontProxy { url, ca }
    }

    /// A kubeconfig for kubectl, talking to the proxy with `token`.
    pub fn kubeconfig(&self, dir: &std::path::Path, user: &str, token: &str) -> std::path::PathBuf {
        let path = dir.join(format!("{user}.kubeconfig"));
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u, namespace: default}}\n",
            self.url,
            b64(&self.ca.pem)
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

async fn forward(State(proxy): State<Arc<ProxyState>>, request: axum::extract::Request) -> Response {
    let token =
        request.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
    let Some((user, groups)) = proxy.users.get(token).cloned() else {
        return status(401, "Unauthorized", "Unauthorized", json!({}));
    };
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let mut out = http::Request::builder().method(parts.method).uri(path).header("host", &proxy.upstream);
    for (name, value) in &parts.headers {
        let lower = name.as_str().to_ascii_lowercase();
        if NOT_FORWARDED.contains(&lower.as_str()) || lower.starts_with("x-remote-") {
            continue;
        }
        out = out.header(name, value);
    }
    out = out.header("X-Remote-User", user);
    for group in groups {
        out = out.header("X-Remote-Group", group);
    }
    let out = out.body(body).unwrap();
    let answer = async {
        let tcp = tokio::net::TcpStream::connect(&proxy.upstream).await.map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = tokio_rustls::TlsConnector::from(proxy.tls.clone()).connect(name, tcp).await.map_err(|e| e.to_string())?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        sender.send_request(out).await.map_err(|e| e.to_string())
    };
    match answer.await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            for header in NOT_FORWARDED {
                parts.headers.remove(header);
            }
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => status(503, "ServiceUnavailable", &format!("error trying to reach service: {e}"), json!({})),
    }
}
