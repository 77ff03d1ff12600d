//! Authentication and authorization through the real server binary over HTTPS: client
//! certificates, token files, anonymous requests, front-proxy headers, RBAC from a policy file,
//! and delegation to a stub kube-apiserver (TokenReview, SubjectAccessReview, their caches).
//! Answers are compared with kube-apiserver's own (`shared/reference/kube-apiserver-1.32`), and
//! a few flows go through kubectl with per-user kubeconfigs.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FOOS: &str = "/apis/hello.zeng.dev/v1/namespaces/default/foos";
const KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";

fn reference(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/kube-apiserver-1.32").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn foo(name: &str) -> Value {
    json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": name}, "spec": {"msg": name}})
}

// ---------------------------------------------------------------------------------------------
// A small PKI.

/// A certificate authority of the test.
struct Ca {
    pem: String,
    key: KeyPair,
}

/// A certificate and its key, PEM.
#[derive(Clone)]
struct Identity {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca { pem: params.self_signed(&key).unwrap().pem(), key }
    }

    /// The CA of a running server (`<data-dir>/certs`).
    fn of_server(server: &Server) -> Ca {
        let certs = server.dir.path().join("certs");
        Ca {
            pem: std::fs::read_to_string(certs.join("ca.crt")).unwrap(),
            key: KeyPair::from_pem(&std::fs::read_to_string(certs.join("ca.key")).unwrap()).unwrap(),
        }
    }

    fn issue(&self, cn: &str, org: Option<&str>, usage: ExtendedKeyUsagePurpose, ip_san: bool) -> Identity {
        let issuer = Issuer::from_ca_cert_pem(&self.pem, &self.key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(org) = org {
            params.distinguished_name.push(DnType::OrganizationName, org);
        }
        if ip_san {
            params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        }
        params.extended_key_usages = vec![usage];
        Identity { cert: params.signed_by(&key, &issuer).unwrap().pem(), key: key.serialize_pem() }
    }

    fn client(&self, cn: &str, org: Option<&str>) -> Identity {
        self.issue(cn, org, ExtendedKeyUsagePurpose::ClientAuth, false)
    }

    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}

// ---------------------------------------------------------------------------------------------
// The server under test.

/// A running `apiserver`, killed when dropped.
struct Server {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts the binary with `args` on a free port, in-memory storage, a fresh data dir.
    async fn start(args: &[String]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_apiserver"))
            .args(["--storage", "memory", "--secure-port", "0", "--data-dir"])
            .arg(dir.path())
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start the apiserver binary");
        let mut server = Server { child, address: String::new(), dir, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&server.log).unwrap_or_default();
            if let Some(at) = text.find("Serving on https://") {
                server.address = text[at + "Serving on https://".len()..].lines().next().unwrap().trim().to_string();
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("the server exited with {status}:\n{text}");
            }
            assert!(Instant::now() < deadline, "the server did not start:\n{text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.path("certs/ca.crt")).unwrap()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The admin of the kubeconfig the server wrote.
    fn admin(&self) -> Client {
        let config: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(self.path("kubeconfig")).unwrap()).unwrap();
        let field = |f: &str| {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(config["users"][0]["user"][f].as_str().unwrap()).unwrap())
                .unwrap()
        };
        self.with_cert(&Identity { cert: field("client-certificate-data"), key: field("client-key-data") })
    }

    fn anonymous(&self) -> Client {
        Client { address: self.address.clone(), tls: client_tls(&self.ca_pem(), None), token: None }
    }

    fn with_cert(&self, identity: &Identity) -> Client {
        Client { address: self.address.clone(), tls: client_tls(&self.ca_pem(), Some(identity)), token: None }
    }

    fn with_token(&self, token: &str) -> Client {
        Client { token: Some(token.to_string()), ..self.anonymous() }
    }

    /// A kubeconfig for kubectl with a client certificate or a token.
    fn kubeconfig(&self, name: &str, identity: Option<&Identity>, token: Option<&str>) -> PathBuf {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut user = serde_json::Map::new();
        if let Some(id) = identity {
            user.insert("client-certificate-data".into(), b64(&id.cert).into());
            user.insert("client-key-data".into(), b64(&id.key).into());
        }
        if let Some(token) = token {
            user.insert("token".into(), token.into());
        }
        let config = json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": format!("https://{}", self.address), "certificate-authority-data": b64(&self.ca_pem())}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}],
        });
        let path = self.path(&format!("{name}.kubeconfig"));
        std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
        path
    }
}

fn client_tls(ca_pem: &str, identity: Option<&Identity>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder =
        rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap().with_root_certificates(roots);
    Arc::new(match identity {
        Some(id) => {
            let chain = rustls_pemfile::certs(&mut id.cert.as_bytes()).map(|c| c.unwrap()).collect();
            let key = rustls_pemfile::private_key(&mut id.key.as_bytes()).unwrap().unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    })
}

/// One identity talking to one server, a connection per request.
#[derive(Clone)]
struct Client {
    address: String,
    tls: Arc<rustls::ClientConfig>,
    token: Option<String>,
}

/// An answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or_default().to_string()
    }
}

impl Client {
    async fn try_send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Result<Reply, String> {
        let tcp = tokio::net::TcpStream::connect(&self.address).await.map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let stream = tokio_rustls::TlsConnector::from(self.tls.clone()).connect(name, tcp).await.map_err(|e| e.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let mut request =
            http::Request::builder().method(method).uri(path).header("host", self.address.as_str()).header("accept", "application/json");
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let body = match body {
            Some(b) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(serde_json::to_vec(b).unwrap()))
            }
            None => Full::new(Bytes::new()),
        };
        let response = sender.send_request(request.body(body).unwrap()).await.map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes().to_vec();
        Ok(Reply { status: parts.status.as_u16(), headers: parts.headers, body })
    }

    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
        self.try_send(method.clone(), path, headers, body).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], None).await
    }

    async fn create(&self, name: &str) -> Reply {
        self.send(Method::POST, FOOS, &[], Some(&foo(name))).await
    }
}

/// Asserts a 403 with kube-apiserver's message and headers.
fn assert_forbidden(reply: &Reply, message: &str) {
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(reply.message(), message);
    assert_eq!(reply.json()["reason"], "Forbidden");
    assert_eq!(reply.headers.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"));
    assert_eq!(reply.headers.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-cache, private"));
}

/// Asserts kube-apiserver's 401, byte for byte.
fn assert_unauthorized(reply: &Reply) {
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(reply.body, reference("err-401-bad-token.json"), "{}", reply.text());
    assert_eq!(reply.headers.get("content-type").map(|v| v.to_str().unwrap()), Some("application/json"));
    assert_eq!(reply.headers.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-cache, private"));
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("HOME", kubeconfig.parent().unwrap())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {KUBECTL}: {e}"));
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn flag(name: &str, value: impl AsRef<std::ffi::OsStr>) -> String {
    format!("--{name}={}", value.as_ref().to_string_lossy())
}

// ---------------------------------------------------------------------------------------------

const POLICY: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: foo-reader, namespace: default}
rules:
- {apiGroups: [hello.zeng.dev], resources: [foos], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: carol-reads, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: foo-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: carol}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: foo-editor}
rules:
- {apiGroups: [hello.zeng.dev], resources: [foos], verbs: [create, get, list, update, patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: editors}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: foo-editor}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: editors}]
"#;

const TOKENS: &str = "tina-token,tina,1001,\"editors,testers\"\ntom-token,tom,1002\n";

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_tokens_and_rbac() {
    let pki = tempfile::tempdir().unwrap();
    let users = Ca::new("users-ca");
    let args = [
        flag("client-ca-file", users.write(pki.path(), "users-ca.crt")),
        flag("token-auth-file", write(pki.path(), "tokens.csv", TOKENS)),
        flag("authorization-policy-file", write(pki.path(), "policy.yaml", POLICY)),
    ];
    let server = Server::start(&args).await;
    let admin = server.admin();
    let carol_id = users.client("carol", Some("readers"));
    let carol = server.with_cert(&carol_id);
    let dave = server.with_cert(&users.client("dave", None));
    let tina = server.with_token("tina-token");

    // The local admin (system:masters, from the server's own CA) may do anything.
    assert_eq!(admin.create("first").await.status, 201);

    // carol's certificate: get/list/watch Foos in default, through a RoleBinding.
    let list = carol.get(FOOS).await;
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(list.json()["items"][0]["metadata"]["name"], "first");
    assert_eq!(carol.get(&format!("{FOOS}/first")).await.status, 200);
    assert_eq!(carol.get(&format!("{FOOS}?watch=true&timeoutSeconds=1")).await.status, 200);
    assert_forbidden(
        &carol.get("/apis/hello.zeng.dev/v1/namespaces/other/foos").await,
        "foos.hello.zeng.dev is forbidden: User \"carol\" cannot list resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"other\"",
    );
    let denied = carol.create("by-carol").await;
    assert_forbidden(&denied, "foos.hello.zeng.dev is forbidden: User \"carol\" cannot create resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\"");
    assert_eq!(denied.json()["details"], json!({"group": "hello.zeng.dev", "kind": "foos"}));
    let delete = carol.send(Method::DELETE, &format!("{FOOS}/first"), &[], None).await;
    assert_forbidden(&delete, "foos.hello.zeng.dev \"first\" is forbidden: User \"carol\" cannot delete resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\"");
    assert_eq!(delete.json()["details"], json!({"name": "first", "group": "hello.zeng.dev", "kind": "foos"}));
    assert_forbidden(
        &carol.get("/apis/hello.zeng.dev/v1/foos").await,
        "foos.hello.zeng.dev is forbidden: User \"carol\" cannot list resource \"foos\" in API group \"hello.zeng.dev\" at the cluster scope",
    );
    // Discovery, OpenAPI and version: every authenticated user (the built-in system:discovery).
    for path in ["/api", "/apis", "/apis/hello.zeng.dev/v1", "/openapi/v2", "/version"] {
        assert_eq!(carol.get(path).await.status, 200, "{path}");
    }
    // dave's certificate is valid but nothing is bound to him.
    assert_forbidden(&dave.get(FOOS).await, "foos.hello.zeng.dev is forbidden: User \"dave\" cannot list resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\"");

    // Token file users: tina is in group editors (create, no delete), tom in nothing.
    assert_eq!(tina.create("second").await.status, 201);
    assert_forbidden(
        &tina.send(Method::DELETE, &format!("{FOOS}/second"), &[], None).await,
        "foos.hello.zeng.dev \"second\" is forbidden: User \"tina\" cannot delete resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\"",
    );
    assert_forbidden(&server.with_token("tom-token").get(FOOS).await, "foos.hello.zeng.dev is forbidden: User \"tom\" cannot list resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\"");

    // A bad token, no credentials at all: kube-apiserver's 401, byte for byte. Health stays open.
    assert_unauthorized(&server.with_token("wrong-token").get(FOOS).await);
    assert_unauthorized(&server.anonymous().get(FOOS).await);
    assert_unauthorized(&server.anonymous().get("/version").await);
    assert_unauthorized(&server.anonymous().get("/no/such/path").await);
    for path in ["/healthz", "/livez", "/readyz"] {
        let reply = server.anonymous().get(path).await;
        assert_eq!((reply.status, reply.text().as_str()), (200, "ok"), "{path}");
    }
    // A bad token is a 401 even on the health endpoints, as in kube-apiserver.
    assert_unauthorized(&server.with_token("wrong-token").get("/healthz").await);

    // Forged identity headers count for nothing without a front-proxy certificate.
    let forged = [("X-Remote-User", "admin"), ("X-Remote-Group", "system:masters")];
    assert_unauthorized(&server.anonymous().send(Method::GET, FOOS, &forged, None).await);
    assert_forbidden(
        &carol.send(Method::POST, FOOS, &forged, Some(&foo("forged"))).await,
        "foos.hello.zeng.dev is forbidden: User \"carol\" cannot create resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\"",
    );

    // A certificate from a CA the server does not trust does not get through the handshake.
    let stranger = server.with_cert(&Ca::new("stranger-ca").client("mallory", Some("system:masters")));
    assert!(stranger.try_send(Method::GET, FOOS, &[], None).await.is_err());

    // The same through kubectl, with per-user kubeconfigs.
    let carol_config = server.kubeconfig("carol", Some(&carol_id), None);
    let (ok, out, err) = kubectl(&carol_config, &["get", "foos", "-o", "name"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["foo.hello.zeng.dev/first", "foo.hello.zeng.dev/second"]);
    let manifest = write(server.dir.path(), "third.json", &foo("third").to_string());
    let (ok, _, err) = kubectl(&carol_config, &["create", "-f", manifest.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("Error from server (Forbidden): error when creating") && err.contains("foos.hello.zeng.dev is forbidden: User \"carol\" cannot create resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\""),
        "{err}"
    );
    let (ok, out, err) = kubectl(&server.kubeconfig("tina", None, Some("tina-token")), &["create", "-f", manifest.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "foo.hello.zeng.dev/third created");
    let (ok, _, err) = kubectl(&server.kubeconfig("bad", None, Some("wrong-token")), &["get", "foos"]);
    assert!(!ok);
    assert!(err.contains("error: You must be logged in to the server (Unauthorized)"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_defaults_are_secure_and_keep_the_local_admin() {
    let server = Server::start(&[]).await;
    assert_eq!(server.admin().create("mine").await.status, 201);
    assert_eq!(server.admin().get(FOOS).await.status, 200);
    assert_unauthorized(&server.anonymous().get(FOOS).await);
    assert_unauthorized(&server.anonymous().get("/apis").await);
    assert_eq!(server.anonymous().get("/healthz").await.status, 200);
    // Another certificate from the server's own CA authenticates, but only system:masters
    // may touch resources under the built-in policy.
    let eve = server.with_cert(&Ca::of_server(&server).client("eve", Some("dev")));
    assert_forbidden(&eve.get(FOOS).await, "foos.hello.zeng.dev is forbidden: User \"eve\" cannot list resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\"");
    assert_eq!(eve.get("/apis").await.status, 200);
    // Bearer tokens are not read at all without a token authenticator.
    assert_unauthorized(&server.with_token("anything").get(FOOS).await);
    // The local kubeconfig works for kubectl as before.
    let (ok, out, err) = kubectl(&server.path("kubeconfig"), &["get", "foos", "-o", "name"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "foo.hello.zeng.dev/mine");
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_requests_only_when_enabled() {
    let pki = tempfile::tempdir().unwrap();
    let policy = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: public-foos, namespace: public}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: foo-lister}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:unauthenticated"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: foo-lister}
rules: [{apiGroups: [hello.zeng.dev], resources: [foos], verbs: [list]}]
"#;
    let args = [
        "--anonymous-auth=true".to_string(),
        flag("token-auth-file", write(pki.path(), "tokens.csv", TOKENS)),
        flag("authorization-policy-file", write(pki.path(), "policy.yaml", policy)),
    ];
    let server = Server::start(&args).await;
    let anonymous = server.anonymous();
    assert_eq!(anonymous.get("/apis/hello.zeng.dev/v1/namespaces/public/foos").await.status, 200);
    // kube-apiserver's answer to the same request, byte for byte.
    let denied = anonymous.get(FOOS).await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.body, reference("err-403-anonymous.json"), "{}", denied.text());
    assert_forbidden(
        &anonymous.send(Method::POST, "/apis/hello.zeng.dev/v1/namespaces/public/foos", &[], Some(&foo("x"))).await,
        "foos.hello.zeng.dev is forbidden: User \"system:anonymous\" cannot create resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"public\"",
    );
    // system:public-info-viewer, but not system:discovery.
    assert_eq!(anonymous.get("/version").await.status, 200);
    let apis = anonymous.get("/apis").await;
    assert_forbidden(&apis, "forbidden: User \"system:anonymous\" cannot get path \"/apis\"");
    assert_eq!(apis.json()["details"], json!({}));
    // A bad token is still a bad token, not an anonymous request.
    assert_unauthorized(&server.with_token("wrong-token").get("/apis/hello.zeng.dev/v1/namespaces/public/foos").await);
    // And a good one is its user, not anonymous (who may list in public; tina may not).
    assert_forbidden(
        &server.with_token("tina-token").get("/apis/hello.zeng.dev/v1/namespaces/public/foos").await,
        "foos.hello.zeng.dev is forbidden: User \"tina\" cannot list resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"public\"",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn front_proxy_headers_need_a_front_proxy_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let users = Ca::new("users-ca");
    let proxies = Ca::new("front-proxy-ca");
    let policy = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-reads, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: foo-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: foo-reader}
rules: [{apiGroups: [hello.zeng.dev], resources: [foos], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: proxied-editors}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: proxied-editors}]
"#;
    let args = [
        flag("client-ca-file", users.write(pki.path(), "users-ca.crt")),
        flag("requestheader-client-ca-file", proxies.write(pki.path(), "front-proxy-ca.crt")),
        flag("requestheader-allowed-names", "front-proxy-client,aggregator"),
        flag("token-auth-file", write(pki.path(), "tokens.csv", TOKENS)),
        flag("authorization-policy-file", write(pki.path(), "policy.yaml", policy)),
    ];
    let server = Server::start(&args).await;
    let proxy = server.with_cert(&proxies.client("front-proxy-client", None));
    let alice = [("X-Remote-User", "alice")];

    // The proxy speaks for alice: what alice may do, and no more.
    assert_eq!(proxy.send(Method::GET, FOOS, &alice, None).await.status, 200);
    assert_forbidden(
        &proxy.send(Method::POST, FOOS, &alice, Some(&foo("a"))).await,
        "foos.hello.zeng.dev is forbidden: User \"alice\" cannot create resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\"",
    );
    // Groups come from the proxy too (several headers, each one group).
    let bob = [("x-remote-user", "bob"), ("X-Remote-Group", "viewers"), ("X-Remote-Group", "proxied-editors")];
    assert_eq!(proxy.send(Method::POST, FOOS, &bob, Some(&foo("by-bob"))).await.status, 201);
    let masters = [("X-Remote-User", "root"), ("X-Remote-Group", "system:masters")];
    assert_eq!(proxy.send(Method::DELETE, &format!("{FOOS}/by-bob"), &masters, None).await.status, 200);

    // A proxy certificate without a user header is nobody: the proxy is not a user itself.
    assert_unauthorized(&proxy.get(FOOS).await);
    // A certificate of the proxies' CA with a name not in --requestheader-allowed-names.
    let rogue = server.with_cert(&proxies.client("rogue", None));
    assert_unauthorized(&rogue.send(Method::GET, FOOS, &masters, None).await);
    // No certificate: the headers are ignored.
    assert_unauthorized(&server.anonymous().send(Method::GET, FOOS, &masters, None).await);
    assert_unauthorized(&server.with_token("wrong-token").send(Method::GET, FOOS, &masters, None).await);
    // A user certificate: the user it names, whatever the headers claim.
    let carol = server.with_cert(&users.client("carol", None));
    assert_forbidden(
        &carol.send(Method::GET, FOOS, &masters, None).await,
        "foos.hello.zeng.dev is forbidden: User \"carol\" cannot list resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\"",
    );
    let tom = server.with_token("tom-token");
    assert_forbidden(
        &tom.send(Method::GET, FOOS, &masters, None).await,
        "foos.hello.zeng.dev is forbidden: User \"tom\" cannot list resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\"",
    );
    // The admin stays the admin (alice could not create).
    assert_eq!(server.admin().send(Method::POST, FOOS, &alice, Some(&foo("by-admin"))).await.status, 201);
}

// ---------------------------------------------------------------------------------------------
// A stub kube-apiserver for delegated authentication and authorization.

#[derive(Default)]
struct Stub {
    token_reviews: Mutex<Vec<String>>,
    access_reviews: Mutex<Vec<Value>>,
}

const STUB_CLIENT_TOKEN: &str = "stub-client-token";

fn stub_caller_ok(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {STUB_CLIENT_TOKEN}"))
}

async fn token_review(State(stub): State<Arc<Stub>>, headers: HeaderMap, Json(review): Json<Value>) -> (http::StatusCode, Json<Value>) {
    if !stub_caller_ok(&headers) {
        return (http::StatusCode::UNAUTHORIZED, Json(json!({"kind": "Status", "code": 401, "message": "Unauthorized"})));
    }
    assert_eq!((review["apiVersion"].as_str(), review["kind"].as_str()), (Some("authentication.k8s.io/v1"), Some("TokenReview")));
    let token = review["spec"]["token"].as_str().unwrap_or_default().to_string();
    stub.token_reviews.lock().unwrap().push(token.clone());
    let status = match token.as_str() {
        "wendy-token" => {
            json!({"authenticated": true, "user": {"username": "wendy", "uid": "w-1", "groups": ["webhook-users"], "extra": {"scopes": ["read"]}}})
        }
        "walt-token" => json!({"authenticated": true, "user": {"username": "walt", "groups": ["system:authenticated"]}}),
        "fred-token" => json!({"authenticated": true, "user": {"username": "fred"}}),
        "expired-token" => json!({"authenticated": false, "error": "token expired"}),
        _ => json!({"authenticated": false}),
    };
    (
        http::StatusCode::CREATED,
        Json(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": review["spec"], "status": status})),
    )
}

async fn access_review(State(stub): State<Arc<Stub>>, headers: HeaderMap, Json(review): Json<Value>) -> (http::StatusCode, Json<Value>) {
    if !stub_caller_ok(&headers) {
        return (http::StatusCode::UNAUTHORIZED, Json(json!({"kind": "Status", "code": 401, "message": "Unauthorized"})));
    }
    let spec = review["spec"].clone();
    stub.access_reviews.lock().unwrap().push(spec.clone());
    let user = spec["user"].as_str().unwrap_or_default();
    let verb = spec["resourceAttributes"]["verb"].as_str().unwrap_or_default();
    let status = match user {
        "wendy" if matches!(verb, "get" | "list") => json!({"allowed": true}),
        "walt" => json!({"allowed": false, "denied": true, "reason": "walt is banned"}),
        "fred" => {
            return (http::StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"kind": "Status", "code": 500, "message": "etcd is on fire"})))
        }
        _ => json!({"allowed": false, "reason": "no rule allows it"}),
    };
    (
        http::StatusCode::CREATED,
        Json(json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec, "status": status})),
    )
}

/// Starts the stub over HTTPS; returns its state and a kubeconfig for it.
async fn start_stub(dir: &Path) -> (Arc<Stub>, PathBuf) {
    let ca = Ca::new("stub-ca");
    let serving = ca.issue("kube-apiserver", None, ExtendedKeyUsagePurpose::ServerAuth, true);
    let certs = server::tls::ServingCertificates { cert_pem: serving.cert, key_pem: serving.key, ca_pem: None };
    let tls = server::tls::server_config(&certs).unwrap();
    let stub = Arc::new(Stub::default());
    let app = Router::new()
        .route("/apis/authentication.k8s.io/v1/tokenreviews", post(token_review))
        .route("/apis/authorization.k8s.io/v1/subjectaccessreviews", post(access_review))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(server::serve::serve_tls(listener, tls, app, std::future::pending()));
    let b64 = base64::engine::general_purpose::STANDARD.encode(&ca.pem);
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: kube\nclusters:\n- name: kube\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority-data: {b64}\nusers:\n- name: delegator\n  user:\n    token: {STUB_CLIENT_TOKEN}\ncontexts:\n- name: kube\n  context: {{cluster: kube, user: delegator}}\n"
    );
    (stub, write(dir, "kube.kubeconfig", &kubeconfig))
}

#[tokio::test(flavor = "multi_thread")]
async fn delegated_token_review_and_subject_access_review() {
    let pki = tempfile::tempdir().unwrap();
    let (stub, kube) = start_stub(pki.path()).await;
    let proxies = Ca::new("front-proxy-ca");
    let args = [
        flag("authentication-kubeconfig", &kube),
        flag("authorization-kubeconfig", &kube),
        "--authorization-mode=RBAC,Webhook".to_string(),
        "--authentication-token-webhook-cache-ttl=2s".to_string(),
        "--authorization-webhook-cache-authorized-ttl=2s".to_string(),
        "--authorization-webhook-cache-unauthorized-ttl=2s".to_string(),
        flag("requestheader-client-ca-file", proxies.write(pki.path(), "front-proxy-ca.crt")),
        flag("requestheader-uid-headers", "X-Remote-Uid"),
    ];
    let server = Server::start(&args).await;
    let reviews = |token: &str| stub.token_reviews.lock().unwrap().iter().filter(|t| *t == token).count();
    let access_reviews = || stub.access_reviews.lock().unwrap().len();
    assert_eq!(server.admin().create("first").await.status, 201);
    assert_eq!(access_reviews(), 0, "system:masters needs no review");

    // wendy's token is reviewed once, and her list authorized once, then both are cached.
    let wendy = server.with_token("wendy-token");
    for _ in 0..3 {
        let reply = wendy.get(FOOS).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    assert_eq!(reviews("wendy-token"), 1);
    assert_eq!(access_reviews(), 1);
    assert_eq!(
        stub.access_reviews.lock().unwrap()[0],
        json!({
            "resourceAttributes": {"namespace": "default", "verb": "list", "group": "hello.zeng.dev", "version": "v1", "resource": "foos"},
            "user": "wendy", "groups": ["webhook-users", "system:authenticated"], "extra": {"scopes": ["read"]}, "uid": "w-1"
        })
    );
    assert_eq!(wendy.get(&format!("{FOOS}/first")).await.status, 200);
    assert_eq!(access_reviews(), 2, "a different request is a different review");

    // No opinion from RBAC or the webhook: 403 with the webhook's reason.
    assert_forbidden(
        &wendy.create("by-wendy").await,
        "foos.hello.zeng.dev is forbidden: User \"wendy\" cannot create resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\": no rule allows it",
    );
    // An explicit denial, cached too.
    let walt = server.with_token("walt-token");
    for _ in 0..2 {
        assert_forbidden(&walt.get(FOOS).await, "foos.hello.zeng.dev is forbidden: User \"walt\" cannot list resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\": walt is banned");
    }
    let walt_reviews = stub.access_reviews.lock().unwrap().iter().filter(|s| s["user"] == "walt").count();
    assert_eq!(walt_reviews, 1);

    // Unknown tokens are 401, and the "not authenticated" answer is cached as well.
    assert_unauthorized(&server.with_token("nobody-token").get(FOOS).await);
    assert_unauthorized(&server.with_token("nobody-token").get(FOOS).await);
    assert_eq!(reviews("nobody-token"), 1);
    assert_unauthorized(&server.with_token("expired-token").get(FOOS).await);

    // A webhook that fails: 500, as kube-apiserver answers an authorizer error.
    let failed = server.with_token("fred-token").get(FOOS).await;
    assert_eq!(failed.status, 500, "{}", failed.text());
    assert!(failed.text().starts_with("Internal Server Error: \"/apis/hello.zeng.dev/v1/namespaces/default/foos\": "), "{}", failed.text());

    // A front proxy passes the user on; the webhook sees it, extras and uid included.
    let proxy = server.with_cert(&proxies.client("aggregator", None));
    let headers = [
        ("X-Remote-User", "wendy"),
        ("X-Remote-Uid", "w-9"),
        ("X-Remote-Group", "webhook-users"),
        ("X-Remote-Extra-Scopes", "write"),
        ("X-Remote-Extra-Example.com%2Fid", "7"),
    ];
    assert_eq!(proxy.send(Method::GET, "/apis/hello.zeng.dev/v1/namespaces/team/foos", &headers, None).await.status, 200);
    let last = stub.access_reviews.lock().unwrap().last().unwrap().clone();
    assert_eq!(last["user"], "wendy");
    assert_eq!(last["uid"], "w-9");
    assert_eq!(last["groups"], json!(["webhook-users", "system:authenticated"]));
    assert_eq!(last["extra"], json!({"example.com/id": ["7"], "scopes": ["write"]}));
    assert_eq!(last["resourceAttributes"]["namespace"], "team");

    // After the TTLs, both are asked again.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let before = access_reviews();
    assert_eq!(wendy.get(FOOS).await.status, 200);
    assert_eq!(reviews("wendy-token"), 2);
    assert_eq!(access_reviews(), before + 1);
    assert!(!server.log_text().contains("panicked"), "{}", server.log_text());
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_that_do_not_fit_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_apiserver"))
        .args(["--storage", "memory", "--secure-port", "0", "--data-dir"])
        .arg(dir.path())
        .args([
            "--authorization-mode=RBAC,Webhook",
            "--token-auth-file=/nonexistent/tokens.csv",
            "--requestheader-allowed-names=front-proxy-client",
        ])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for message in [
        "--requestheader-allowed-names needs --requestheader-client-ca-file",
        "--token-auth-file: cannot read /nonexistent/tokens.csv",
        "--authorization-mode=Webhook needs --authorization-kubeconfig",
    ] {
        assert!(stderr.contains(message), "{message:?} not in:\n{stderr}");
    }
    let policy = write(
        dir.path(),
        "policy.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\nrules: [{verbs: [get]}]\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_apiserver"))
        .args(["--storage", "memory", "--secure-port", "0", "--data-dir"])
        .arg(dir.path())
        .arg(flag("authorization-policy-file", &policy))
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "document 1 (ClusterRole \"x\"): rules[0].apiGroups: Required value: resource rules must supply at least one api group"
        ),
        "{stderr}"
    );
}
