//! A Kubernetes API server for the resources compiled from `spec/`.
//!
//! The server knows no resource by name: the `generated` crate supplies the model, documents and
//! routes, and this crate supplies what every resource needs — HTTP plumbing ([`http`]), the
//! generic registry ([`engine`]), patch engines ([`patch`]), storage backends ([`storage`]),
//! TLS ([`tls`]), authentication and authorization ([`auth`]), the cluster it is aggregated
//! into ([`cluster`]) and its deploy manifests ([`manifests`]).
//!
//! ```
//! use std::sync::Arc;
//! let app = server::app(server::AppState::new(Arc::new(server::storage::memory::MemoryStorage::default())));
//! # let _ = app;
//! ```

pub mod auth;
pub mod cluster;
pub mod duration;
pub mod engine;
pub mod fieldmanager;
pub mod http;
pub mod json;
pub mod limits;
pub mod manifests;
pub mod patch;
pub mod serve;
pub mod storage;
pub mod tls;

use axum::Router;
use std::sync::Arc;

/// Stack size of the threads that serve requests. Documents may nest [`json::MAX_DEPTH`]
/// (10,000) levels, as in kube-apiserver, and decoding, validating, patching and encoding them
/// recurse once per level: a few KiB per level in a debug build, under 1 KiB optimized. The
/// memory is reserved, not used, until a document that deep arrives.
pub const THREAD_STACK_BYTES: usize = 256 << 20;

/// The multi-threaded runtime the binary serves with: every thread (workers and blocking pool)
/// gets [`THREAD_STACK_BYTES`] of stack. Code that drives [`app`] itself with deeply nested
/// documents must run it on such threads too (`tokio::spawn` onto this runtime).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(THREAD_STACK_BYTES).build()
}

/// Everything the router needs.
#[derive(Clone)]
pub struct AppState {
    /// The registry all resource routes hand their requests to.
    pub engine: engine::ApiEngine,
    /// Who may do what; [`auth::Auth::disabled`] unless set with [`AppState::with_auth`].
    pub auth: Arc<auth::Auth>,
    /// Requests in flight and their duration; kube-apiserver's defaults unless set with
    /// [`AppState::with_limits`].
    pub limiter: Arc<limits::Limiter>,
}

impl AppState {
    /// State over a storage backend, with authentication and authorization off (every
    /// request is allowed): for in-process tests. The binary adds [`AppState::with_auth`].
    pub fn new(storage: Arc<dyn storage::Storage>) -> Self {
        AppState {
            engine: engine::ApiEngine::new(storage),
            auth: Arc::new(auth::Auth::disabled()),
            limiter: Arc::new(limits::Limiter::new(limits::Limits::default())),
        }
    }

    /// Enforces `limits` instead of kube-apiserver's defaults.
    pub fn with_limits(mut self, limits: limits::Limits) -> Self {
        self.engine = self.engine.with_min_request_timeout(limits.min_request_timeout);
        self.limiter = Arc::new(limits::Limiter::new(limits));
        self
    }

    /// Keeps at most `bytes` of rendered list items for reuse (`--list-cache-bytes`).
    pub fn with_list_cache_bytes(mut self, bytes: usize) -> Self {
        self.engine = self.engine.with_list_cache_bytes(bytes);
        self
    }

    /// Checks every request with `auth`.
    pub fn with_auth(mut self, auth: auth::Auth) -> Self {
        self.auth = Arc::new(auth);
        self
    }

    /// Asks `admission` about the namespace before every create and update of a namespaced
    /// object (aggregated mode: [`cluster::namespaces::NamespaceLifecycle`]).
    pub fn with_namespace_admission(mut self, admission: Arc<dyn engine::namespaces::NamespaceAdmission>) -> Self {
        self.engine = self.engine.with_namespace_admission(admission);
        self
    }
}

/// The whole API as an axum router: discovery, OpenAPI, health, and every generated resource
/// route. Unknown paths get kube-apiserver's plain `404 page not found` (or, below a served
/// object, a `NotFound` Status).
pub fn app(state: AppState) -> Router {
    generated::routes(state.engine.clone())
        .merge(http::discovery::routes())
        .fallback(http::fallback)
        // Each layer wraps those above it, so they read innermost first, in kube-apiserver's
        // order: the in-flight limits; authentication and authorization (before any route,
        // unknown paths included: a stranger learns nothing, not even which paths exist); the
        // request timeout; the request log; Cache-Control on every answer.
        .layer(axum::middleware::from_fn_with_state(state.limiter.clone(), limits::inflight))
        .layer(axum::middleware::from_fn_with_state(state.auth.clone(), auth::middleware))
        .layer(axum::middleware::from_fn_with_state(state.limiter.clone(), limits::timeout))
        .layer(axum::middleware::from_fn(http::log_request))
        .layer(axum::middleware::map_response(http::cache_control))
}
