//! A small client for the kube-apiserver named in a kubeconfig (`--authentication-kubeconfig`,
//! `--authorization-kubeconfig`, `--kubeconfig`) or given by the pod's service account: enough
//! to POST a review, GET an object, and follow a watch. It speaks HTTP/1.1 over TLS (or plain
//! HTTP for `http://` servers), authenticating with the kubeconfig's client certificate or
//! bearer token, and retries a few times on connection errors, 429 and 5xx as
//! k8s.io/apiserver's webhooks do.

use super::AuthError;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long one attempt may take, as the delegating authenticator and authorizer allow.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per request.
const ATTEMPTS: u32 = 3;
/// Pause before the first retry; doubled after each.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Largest answer read.
const MAX_RESPONSE: usize = 4 << 20;
/// Largest line of a watch stream (one event).
const MAX_WATCH_LINE: usize = 4 << 20;
/// How often a `tokenFile` is read again: the kubelet rotates projected service-account
/// tokens, and client-go re-reads the file about this often.
const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(60);
/// Where a pod's service-account credentials are mounted.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How requests are authenticated with a bearer token.
#[derive(Clone)]
enum Bearer {
    /// `token` in the kubeconfig.
    Fixed(String),
    /// `tokenFile`: read again every [`TOKEN_FILE_REFRESH`].
    File { path: PathBuf, cached: Arc<std::sync::Mutex<(std::time::Instant, String)>> },
}

impl Bearer {
    fn file(path: PathBuf) -> Result<Bearer, String> {
        let token = read_token(&path)?;
        Ok(Bearer::File { path, cached: Arc::new(std::sync::Mutex::new((std::time::Instant::now(), token))) })
    }

    fn token(&self) -> String {
        match self {
            Bearer::Fixed(token) => token.clone(),
            Bearer::File { path, cached } => {
                let mut cached = cached.lock().unwrap_or_else(|e| e.into_inner());
                if cached.0.elapsed() >= TOKEN_FILE_REFRESH {
                    match read_token(path) {
                        Ok(token) => *cached = (std::time::Instant::now(), token),
                        // Keep the old token: it may still be valid, and the next request retries.
                        Err(e) => tracing::warn!(error = %e, "cannot re-read the token file"),
                    }
                }
                cached.1.clone()
            }
        }
    }
}

fn read_token(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map(|t| t.trim().to_string()).map_err(|e| format!("tokenFile {}: {e}", path.display()))
}

/// A client for one API server.
#[derive(Clone)]
pub struct RestClient {
    scheme_https: bool,
    /// `host:port` to connect to.
    address: String,
    /// The `Host` header.
    host_header: String,
    /// Path prefix of the server URL, without a trailing slash.
    base_path: String,
    server_name: ServerName<'static>,
    tls: Option<Arc<rustls::ClientConfig>>,
    bearer: Option<Bearer>,
    timeout: Duration,
    source: String,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient").field("server", &self.address).field("source", &self.source).finish()
    }
}

impl RestClient {
    /// A client for the current context of the kubeconfig at `path`. `flag` names the option
    /// in errors.
    pub fn from_kubeconfig(flag: &str, path: &Path) -> Result<RestClient, AuthError> {
        let err = |m: String| AuthError(format!("{flag} {}: {m}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let config: Value = serde_yaml_ng::from_str(&text).map_err(|e| err(format!("invalid YAML: {e}")))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        RestClient::from_kubeconfig_value(&config, &dir).map_err(err).map(|mut c| {
            c.source = format!("{flag} {}", path.display());
            c
        })
    }

    /// A client from a parsed kubeconfig; relative file names are resolved against `dir`.
    pub fn from_kubeconfig_value(config: &Value, dir: &Path) -> Result<RestClient, String> {
        let named = |list: &str, name: &str, field: &str| -> Result<Value, String> {
            config[list]
                .as_array()
                .and_then(|items| items.iter().find(|i| i["name"].as_str() == Some(name)))
                .map(|i| i[field].clone())
                .ok_or_else(|| format!("no {field} named {name:?}"))
        };
        let context = match config["current-context"].as_str().filter(|c| !c.is_empty()) {
            Some(name) => named("contexts", name, "context")?,
            None => match config["contexts"].as_array().map(Vec::as_slice) {
                Some([only]) => only["context"].clone(),
                _ => return Err("no current-context".into()),
            },
        };
        let cluster_name = context["cluster"].as_str().ok_or("the current context names no cluster")?;
        let cluster = named("clusters", cluster_name, "cluster")?;
        let user = match context["user"].as_str().filter(|u| !u.is_empty()) {
            Some(name) => named("users", name, "user")?,
            None => Value::Null,
        };
        let file = |p: &str| -> PathBuf {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                p
            } else {
                dir.join(p)
            }
        };
        // `<name>-data` (base64) or `<name>` (a file).
        let material = |section: &Value, name: &str| -> Result<Option<Vec<u8>>, String> {
            if let Some(data) = section[format!("{name}-data")].as_str().filter(|d| !d.is_empty()) {
                return base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .map(Some)
                    .map_err(|e| format!("{name}-data: invalid base64: {e}"));
            }
            match section[name].as_str().filter(|f| !f.is_empty()) {
                Some(f) => std::fs::read(file(f)).map(Some).map_err(|e| format!("{name} {f}: {e}")),
                None => Ok(None),
            }
        };

        let server = cluster["server"].as_str().ok_or("the cluster has no server")?;
        let uri: http::Uri = server.parse().map_err(|e| format!("invalid server URL {server:?}: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("server URL {server:?} must start with https:// or http://")),
        };
        let authority = uri.authority().ok_or_else(|| format!("server URL {server:?} has no host"))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let address = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let name = cluster["tls-server-name"].as_str().filter(|n| !n.is_empty()).unwrap_or(&host).to_string();
        let server_name = ServerName::try_from(name.clone()).map_err(|e| format!("invalid server name {name:?}: {e}"))?;

        let bearer = match (user["token"].as_str().filter(|t| !t.is_empty()), user["tokenFile"].as_str().filter(|t| !t.is_empty())) {
            (Some(token), _) => Some(Bearer::Fixed(token.to_string())),
            (None, Some(f)) => Some(Bearer::file(file(f))?),
            (None, None) => None,
        };

        let tls = if https {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?;
            let builder = if cluster["insecure-skip-tls-verify"].as_bool() == Some(true) {
                tracing::warn!(%server, "insecure-skip-tls-verify: the server's certificate is not verified");
                builder.dangerous().with_custom_certificate_verifier(Arc::new(NoServerVerification(provider)))
            } else {
                let ca = material(&cluster, "certificate-authority")?
                    .ok_or("the cluster has no certificate-authority (system trust stores are not used); set certificate-authority-data")?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_pemfile::certs(&mut &ca[..]) {
                    roots
                        .add(cert.map_err(|e| format!("certificate-authority: {e}"))?)
                        .map_err(|e| format!("certificate-authority: {e}"))?;
                }
                if roots.is_empty() {
                    return Err("certificate-authority: no certificates found".into());
                }
                builder.with_root_certificates(roots)
            };
            let config = match (material(&user, "client-certificate")?, material(&user, "client-key")?) {
                (Some(cert), Some(key)) => {
                    let chain: Vec<CertificateDer<'static>> =
                        rustls_pemfile::certs(&mut &cert[..]).collect::<Result<_, _>>().map_err(|e| format!("client-certificate: {e}"))?;
                    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key[..])
                        .map_err(|e| format!("client-key: {e}"))?
                        .ok_or("client-key: no private key found")?;
                    builder.with_client_auth_cert(chain, key).map_err(|e| format!("client certificate and key do not fit: {e}"))?
                }
                (None, None) => builder.with_no_client_auth(),
                _ => return Err("the user needs both client-certificate and client-key".into()),
            };
            Some(Arc::new(config))
        } else {
            None
        };
        Ok(RestClient {
            scheme_https: https,
            address,
            host_header: authority.as_str().to_string(),
            base_path: uri.path().trim_end_matches('/').to_string(),
            server_name,
            tls,
            bearer,
            timeout: DEFAULT_TIMEOUT,
            source: String::new(),
        })
    }

    /// The pod's own cluster, as client-go's in-cluster configuration finds it: the
    /// `KUBERNETES_SERVICE_HOST`/`_PORT` variables, and the service account's token and CA
    /// mounted in `dir` (normally [`SERVICE_ACCOUNT_DIR`]).
    pub fn in_cluster(dir: &Path) -> Result<RestClient, String> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST").ok().filter(|h| !h.is_empty());
        let port = std::env::var("KUBERNETES_SERVICE_PORT").ok().filter(|p| !p.is_empty());
        let (Some(host), Some(port)) = (host, port) else {
            return Err("not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set".into());
        };
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        let config = serde_json::json!({
            "current-context": "in-cluster",
            "clusters": [{"name": "in-cluster", "cluster": {"server": format!("https://{host}:{port}"), "certificate-authority": "ca.crt"}}],
            "users": [{"name": "service-account", "user": {"tokenFile": "token"}}],
            "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "service-account"}}],
        });
        let mut client =
            RestClient::from_kubeconfig_value(&config, dir).map_err(|e| format!("in-cluster configuration ({}): {e}", dir.display()))?;
        client.source = format!("the service account in {}", dir.display());
        Ok(client)
    }

    /// Where this client's settings came from (a flag and file), for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// GETs `path` and returns the status and the JSON answer, retrying connection failures,
    /// 429 and 5xx.
    pub async fn get_json(&self, path: &str) -> Result<(u16, Value), String> {
        self.json_request(http::Method::GET, path, None).await
    }

    /// POSTs `body` as JSON to `path` and returns the status and the JSON answer, retrying
    /// connection failures, 429 and 5xx.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<(u16, Value), String> {
        let bytes = Bytes::from(serde_json::to_vec(body).map_err(|e| e.to_string())?);
        self.json_request(http::Method::POST, path, Some(bytes)).await
    }

    /// Starts a watch (`path` with `watch=1`): on 200 the stream of its events, otherwise the
    /// status and the answer (a `Status`). Not retried: a watcher starts over by itself.
    pub async fn watch(&self, path: &str) -> Result<Result<WatchEvents, (u16, Value)>, String> {
        let connect = async {
            let (response, driver) = self.send_once(http::Method::GET, path, None).await?;
            let status = response.status().as_u16();
            if status != 200 {
                let answer = Limited::new(response.into_body(), MAX_RESPONSE).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                driver.abort();
                let value =
                    serde_json::from_slice(&answer).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer).into_owned()));
                return Ok(Err((status, value)));
            }
            Ok(Ok(WatchEvents { body: response.into_body(), buffer: Vec::new(), driver }))
        };
        tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| format!("{} {path}: no answer within {:?}", self.address, self.timeout))?
    }

    async fn json_request(&self, method: http::Method, path: &str, bytes: Option<Bytes>) -> Result<(u16, Value), String> {
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match tokio::time::timeout(self.timeout, self.request_once(method.clone(), path, bytes.clone())).await {
                Ok(Ok((status, answer))) if status != 429 && status < 500 => {
                    let value = serde_json::from_slice(&answer)
                        .map_err(|e| format!("{}: invalid JSON answer (HTTP {status}): {e}", self.address))?;
                    return Ok((status, value));
                }
                Ok(Ok((status, answer))) => last = format!("HTTP {status}: {}", String::from_utf8_lossy(&answer[..answer.len().min(512)])),
                Ok(Err(e)) => last = e,
                Err(_) => last = format!("no answer within {:?}", self.timeout),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(format!("{} {path}: {last}", self.address))
    }

    /// One request, its whole answer read.
    async fn request_once(&self, method: http::Method, path: &str, body: Option<Bytes>) -> Result<(u16, Bytes), String> {
        let (response, driver) = self.send_once(method, path, body).await?;
        let status = response.status().as_u16();
        let result = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map(|b| (status, b.to_bytes()))
            .map_err(|e| format!("reading the answer: {e}"));
        driver.abort();
        result
    }

    /// Sends one request on a fresh connection; returns the response (its body still to be
    /// read) and the task driving the connection, to abort when done.
    async fn send_once(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(http::Response<hyper::body::Incoming>, tokio::task::JoinHandle<()>), String> {
        let tcp = tokio::net::TcpStream::connect(&self.address).await.map_err(|e| format!("connecting to {}: {e}", self.address))?;
        let _ = tcp.set_nodelay(true);
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_path))
            .header(http::header::HOST, &self.host_header)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, concat!("specapi-apiserver/", env!("CARGO_PKG_VERSION")));
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        if let Some(bearer) = &self.bearer {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {}", bearer.token()));
        }
        let request = request.body(Full::new(body.unwrap_or_default())).map_err(|e| e.to_string())?;
        match (&self.tls, self.scheme_https) {
            (Some(tls), true) => {
                let stream = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(self.server_name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS handshake with {}: {e}", self.address))?;
                send(TokioIo::new(stream), request).await
            }
            _ => send(TokioIo::new(tcp), request).await,
        }
    }
}

async fn send<T>(
    io: T,
    request: http::Request<Full<Bytes>>,
) -> Result<(http::Response<hyper::body::Incoming>, tokio::task::JoinHandle<()>), String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    match sender.send_request(request).await {
        Ok(response) => Ok((response, driver)),
        Err(e) => {
            driver.abort();
            Err(e.to_string())
        }
    }
}

/// The events of a watch: one JSON object per line (`{"type": …, "object": …}`).
pub struct WatchEvents {
    body: hyper::body::Incoming,
    buffer: Vec<u8>,
    driver: tokio::task::JoinHandle<()>,
}

impl WatchEvents {
    /// The next event; `None` when the server ended the watch (its timeout), an error when the
    /// connection broke or the server sent something that is not an event.
    pub async fn next(&mut self) -> Option<Result<Value, String>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(serde_json::from_slice(&line).map_err(|e| format!("invalid watch event: {e}")));
            }
            match self.body.frame().await {
                None if self.buffer.iter().all(u8::is_ascii_whitespace) => return None,
                // The last event need not end with a newline.
                None => {
                    let line = std::mem::take(&mut self.buffer);
                    return Some(serde_json::from_slice(&line).map_err(|e| format!("invalid watch event: {e}")));
                }
                Some(Err(e)) => return Some(Err(format!("watch connection broke: {e}"))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                        if self.buffer.len() > MAX_WATCH_LINE {
                            return Some(Err(format!("a watch event is larger than {MAX_WATCH_LINE} bytes")));
                        }
                    }
                }
            }
        }
    }
}

impl Drop for WatchEvents {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// `insecure-skip-tls-verify`: any server certificate, but a real handshake signature.
#[derive(Debug)]
struct NoServerVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_current_context() {
        let config = json!({
            "current-context": "b",
            "clusters": [
                {"name": "one", "cluster": {"server": "https://10.0.0.1:6443", "insecure-skip-tls-verify": true}},
                {"name": "two", "cluster": {"server": "http://[::1]:8080/prefix/", "tls-server-name": "kubernetes"}}
            ],
            "users": [{"name": "u", "user": {"token": "abc"}}],
            "contexts": [{"name": "a", "context": {"cluster": "one", "user": "u"}}, {"name": "b", "context": {"cluster": "two", "user": "u"}}]
        });
        let client = RestClient::from_kubeconfig_value(&config, Path::new("/")).unwrap();
        assert_eq!(client.address, "[::1]:8080");
        assert_eq!(client.base_path, "/prefix");
        assert_eq!(client.bearer.as_ref().map(Bearer::token).as_deref(), Some("abc"));
        assert!(client.tls.is_none());
        let one = json!({"current-context": "a", "clusters": config["clusters"], "users": config["users"], "contexts": config["contexts"]});
        let client = RestClient::from_kubeconfig_value(&one, Path::new("/")).unwrap();
        assert_eq!(client.address, "10.0.0.1:6443");
        assert!(client.tls.is_some());
    }

    #[test]
    fn explains_what_is_missing() {
        let no_ca = json!({"current-context": "a", "clusters": [{"name": "c", "cluster": {"server": "https://h"}}], "contexts": [{"name": "a", "context": {"cluster": "c"}}]});
        let err = RestClient::from_kubeconfig_value(&no_ca, Path::new("/")).unwrap_err();
        assert!(err.contains("no certificate-authority"), "{err}");
        let missing = json!({"current-context": "x", "contexts": []});
        assert_eq!(RestClient::from_kubeconfig_value(&missing, Path::new("/")).unwrap_err(), "no context named \"x\"");
    }
}
