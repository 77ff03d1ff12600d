//! The HTTPS listener: accepts TLS connections and serves the router over HTTP/2 or HTTP/1.1,
//! until asked to shut down.

use crate::auth::PeerCertificates;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The most bytes of request headers (request line included) a client may send, Go's
/// `DefaultMaxHeaderBytes` that kube-apiserver keeps.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// How the listener treats connections; [`Default`] is kube-apiserver's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// A client must send a request's headers within this time, or the connection is closed
    /// (kube-apiserver's `ReadHeaderTimeout`, 32 s). For HTTP/1.1 the clock also runs while an
    /// idle keep-alive connection waits for its next request.
    pub header_read_timeout: Duration,
    /// How long a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// `--http2-max-streams-per-connection`.
    pub http2_max_streams_per_connection: u32,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(32),
            tls_handshake_timeout: Duration::from_secs(10),
            http2_max_streams_per_connection: 1000,
        }
    }
}

/// Serves `app` on `listener` with TLS until `shutdown` completes, with the default
/// [`ServeOptions`].
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    serve_tls_with(listener, tls, app, ServeOptions::default(), shutdown).await
}

/// Serves `app` on `listener` with TLS until `shutdown` completes.
///
/// HTTP/2 is spoken when the client asks for it in the TLS handshake (ALPN), HTTP/1.1 otherwise.
/// Request headers are bounded as in kube-apiserver: [`MAX_HEADER_BYTES`] (HTTP/1.1: with Go's
/// 4 KiB of slack; HTTP/2: the header list size Go allows), else `431 Request Header Fields Too
/// Large`; and they must arrive within
/// [`ServeOptions::header_read_timeout`], so a client trickling bytes is dropped.
pub async fn serve_tls_with(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        // Go counts the request line and headers against MaxHeaderBytes with 4 KiB of slack.
        .max_header_size(MAX_HEADER_BYTES + 4096)
        .max_buf_size(MAX_HEADER_BYTES + 4096);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(options.http2_max_streams_per_connection)
        // Go's HTTP/2 server: the header bytes plus 32 bytes for each of ten typical fields.
        .max_header_list_size((MAX_HEADER_BYTES + 320) as u32);
    let (http1, http2) = (Arc::new(http1), Arc::new(http2));
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        // Without TCP_NODELAY the last segment of a large answer (a LIST) waits for the
        // client's delayed ACK: about 40 ms added to such requests (see docs/benchmarks.md).
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let (http1, http2) = (http1.clone(), http2.clone());
        let handshake_timeout = options.tls_handshake_timeout;
        connections.spawn(async move {
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            // The client certificate chain the handshake verified goes with every request of
            // the connection, for authentication to read.
            let certificates = tls.get_ref().1.peer_certificates().filter(|c| !c.is_empty()).map(|c| PeerCertificates::new(c.to_vec()));
            let service = TowerToHyperService::new(app.map_request(move |mut request: http::Request<hyper::body::Incoming>| {
                if let Some(certificates) = &certificates {
                    request.extensions_mut().insert(certificates.clone());
                }
                request
            }));
            // HTTP/2 when the client chose it in the handshake (ALPN), as Go's TLS server does;
            // HTTP/1.1 otherwise.
            let result = if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                http2.serve_connection(TokioIo::new(tls), service).await
            } else {
                http1.serve_connection(TokioIo::new(tls), service).with_upgrades().await
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down: no new connections, waiting for in-flight requests");
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} }).await;
    connections.abort_all();
}
