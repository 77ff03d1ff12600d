//! The HTTPS client: one HTTP/1.1 connection per worker over rustls, with the CA and admin
//! client certificate from the kubeconfig the server writes.

use base64::Engine as _;
use bytes::Bytes;
use http::{header, Method};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// Where a server listens and how to talk TLS to it.
#[derive(Clone)]
pub struct Endpoint {
    /// `host:port`.
    pub address: String,
    /// Trusts the server's CA and presents its client certificate, if any.
    pub tls: Arc<rustls::ClientConfig>,
}

/// One request, built once and sent as often as needed.
#[derive(Clone, Debug)]
pub struct Request {
    /// The HTTP method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// `Accept`, when not plain JSON.
    pub accept: Option<&'static str>,
    /// `Content-Type` of the body, when there is one.
    pub content_type: Option<&'static str>,
    /// The body (empty for reads).
    pub body: Bytes,
}

impl Request {
    /// A `GET` of `path`.
    pub fn get(path: impl Into<String>) -> Request {
        Request { method: Method::GET, path: path.into(), accept: None, content_type: None, body: Bytes::new() }
    }

    /// A request with a JSON-like body of `content_type`.
    pub fn with_body(method: Method, path: impl Into<String>, content_type: &'static str, body: impl Into<Bytes>) -> Request {
        Request { method, path: path.into(), accept: None, content_type: Some(content_type), body: body.into() }
    }
}

/// A complete answer.
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The whole body; empty when it was only counted (see [`Connection::send_keeping`]).
    pub body: Bytes,
    /// The body's length in bytes.
    pub length: u64,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `"<status>: <start of body>"`, for error reports.
    pub fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).into_owned();
        format!("HTTP {}: {text}", self.status)
    }
}

/// One kept-alive HTTP/1.1 connection over TLS.
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Endpoint {
    /// Opens a connection (TCP, TLS handshake, HTTP/1.1).
    pub async fn connect(&self) -> Result<Connection, String> {
        let tcp = tokio::net::TcpStream::connect(&self.address).await.map_err(|e| format!("connect {}: {e}", self.address))?;
        let _ = tcp.set_nodelay(true);
        let host = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("an IP address is a server name");
        let stream =
            tokio_rustls::TlsConnector::from(self.tls.clone()).connect(host, tcp).await.map_err(|e| format!("TLS handshake: {e}"))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { sender })
    }

    /// Sends one request on a fresh connection.
    pub async fn send_once(&self, request: &Request) -> Result<Response, String> {
        self.connect().await?.send(request).await
    }
}

fn build(request: &Request) -> http::Request<Full<Bytes>> {
    let mut builder = http::Request::builder().method(request.method.clone()).uri(&request.path).header(header::HOST, "127.0.0.1");
    builder = builder.header(header::ACCEPT, request.accept.unwrap_or("application/json"));
    if let Some(content_type) = request.content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(Full::new(request.body.clone())).expect("a valid request")
}

impl Connection {
    /// Sends `request` and reads the whole answer.
    pub async fn send(&mut self, request: &Request) -> Result<Response, String> {
        self.send_keeping(request, true).await
    }

    /// Sends `request` and reads the whole answer, keeping the body only when `keep` is set or
    /// the status is not 2xx; otherwise its bytes are counted as they arrive and dropped. The
    /// load generator shares the machine with the server: joining a 6 MB list's pieces into one
    /// buffer that nobody reads would take CPU from the server being measured.
    pub async fn send_keeping(&mut self, request: &Request, keep: bool) -> Result<Response, String> {
        self.sender.ready().await.map_err(|e| format!("connection: {e}"))?;
        let response = self.sender.send_request(build(request)).await.map_err(|e| format!("request: {e}"))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        if keep || !(200..300).contains(&status) {
            let body = body.collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
            return Ok(Response { status, length: body.len() as u64, body });
        }
        let mut length = 0;
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame.map_err(|e| format!("body: {e}"))?.data_ref() {
                length += data.len() as u64;
            }
        }
        Ok(Response { status, body: Bytes::new(), length })
    }

    /// Sends `request` and returns the status and the body as a stream (for watches).
    pub async fn stream(&mut self, request: &Request) -> Result<(u16, hyper::body::Incoming), String> {
        self.sender.ready().await.map_err(|e| format!("connection: {e}"))?;
        let response = self.sender.send_request(build(request)).await.map_err(|e| format!("request: {e}"))?;
        Ok((response.status().as_u16(), response.into_body()))
    }
}

/// A rustls client configuration with the ring provider, trusting `roots`.
fn builder() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().expect("TLS 1.2 and 1.3 are supported")
}

/// TLS settings from a kubeconfig the apiserver wrote: its CA, and the admin client certificate.
pub fn tls_from_kubeconfig(path: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let config: Value = serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let field = |pointer: &str| -> Result<Vec<u8>, String> {
        let text = config.pointer(pointer).and_then(Value::as_str).ok_or_else(|| format!("{}: no {pointer}", path.display()))?;
        base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("{}: {pointer}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &field("/clusters/0/cluster/certificate-authority-data")?[..]) {
        roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let chain = rustls_pemfile::certs(&mut &field("/users/0/user/client-certificate-data")?[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key = rustls_pemfile::private_key(&mut &field("/users/0/user/client-key-data")?[..])
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{}: no client key", path.display()))?;
    let config = builder().with_root_certificates(roots).with_client_auth_cert(chain, key).map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

/// TLS settings that trust exactly `cert` (DER), without a client certificate.
pub fn tls_trusting(cert: rustls::pki_types::CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("a certificate rustls made");
    Arc::new(builder().with_root_certificates(roots).with_no_client_auth())
}
