//! The ceiling: a minimal axum server answering every GET with one fixed body (the bytes of a
//! stored Foo), served exactly as the apiserver serves (rustls with ring, hyper-util's
//! HTTP/1.1-or-2 connection builder, a multi-threaded tokio runtime with one worker per core).
//! What the apiserver reaches of its throughput is what its own work costs.
//!
//! It runs on its own runtime and threads, so the load generator's runtime does not serve it.

use crate::client::{tls_trusting, Endpoint};
use axum::Router;
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;

/// A running ceiling server; stopped when dropped.
pub struct Ceiling {
    /// Where it listens, and a client TLS configuration that trusts it.
    pub endpoint: Endpoint,
    /// The size of the body it answers with.
    pub body_bytes: usize,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The router: every path answers `body` as `application/json`.
pub fn app(body: Bytes) -> Router {
    Router::new().fallback(move || {
        let body = body.clone();
        async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
    })
}

impl Ceiling {
    /// Starts the ceiling server on 127.0.0.1 (a free port), answering with `body`.
    pub fn start(body: Bytes) -> Result<Ceiling, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .map_err(|e| e.to_string())?
            .self_signed(&key)
            .map_err(|e| e.to_string())?;
        let cert_der = cert.der().clone();
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| e.to_string())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone()], key_der)
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let body_bytes = body.len();
        let app = app(body);

        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<String, String>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ceiling".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("ceiling-worker").build() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let address = listener.local_addr().map(|a| a.to_string()).map_err(|e| e.to_string());
                    let _ = ready_tx.send(address);
                    let serve = async move {
                        loop {
                            let Ok((stream, _)) = listener.accept().await else { continue };
                            // As the apiserver does: without it, the last segment of a large
                            // answer waits for the client's delayed ACK (about 40 ms).
                            let _ = stream.set_nodelay(true);
                            let acceptor = acceptor.clone();
                            let app = app.clone();
                            tokio::spawn(async move {
                                let Ok(tls) = acceptor.accept(stream).await else { return };
                                let service = TowerToHyperService::new(app);
                                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                                let _ = builder.serve_connection_with_upgrades(TokioIo::new(tls), service).await;
                            });
                        }
                    };
                    tokio::select! {
                        _ = serve => {},
                        _ = stop_rx => {},
                    }
                });
                runtime.shutdown_background();
            })
            .map_err(|e| e.to_string())?;
        let address = ready_rx.recv().map_err(|_| "the ceiling server thread ended".to_string())??;
        Ok(Ceiling { endpoint: Endpoint { address, tls: tls_trusting(cert_der) }, body_bytes, stop: Some(stop_tx), thread: Some(thread) })
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
