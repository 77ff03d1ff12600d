//! A Kubernetes API server for the resources compiled from `spec/`.
//!
//! The server knows no resource by name: the `generated` crate supplies the model, documents and
//! routes, and this crate supplies what every resource needs — HTTP plumbing ([`http`]), the
//! generic registry ([`engine`]), patch engines ([`patch`]), storage backends ([`storage`]),
//! TLS ([`tls`]) and authentication and authorization ([`auth`]).
//!
//! ```
//! use std::sync::Arc;
//! let app = server::app(server::AppState::new(Arc::new(server::storage::memory::MemoryStorage::default())));
//! # let _ = app;
//! ```

pub mod auth;
pub mod duration;
pub mod engine;
pub mod fieldmanager;
pub mod http;
pub mod patch;
pub mod serve;
pub mod storage;
pub mod tls;

use axum::Router;
use std::sync::Arc;

/// Everything the router needs.
#[derive(Clone)]
pub struct AppState {
    /// The registry all resource routes hand their requests to.
    pub engine: engine::ApiEngine,
    /// Who may do what; [`auth::Auth::disabled`] unless set with [`AppState::with_auth`].
    pub auth: Arc<auth::Auth>,
}

impl AppState {
    /// State over a storage backend, with authentication and authorization off (every
    /// request is allowed): for in-process tests. The binary adds [`AppState::with_auth`].
    pub fn new(storage: Arc<dyn storage::Storage>) -> Self {
        AppState { engine: engine::ApiEngine::new(storage), auth: Arc::new(auth::Auth::disabled()) }
    }

    /// Checks every request with `auth`.
    pub fn with_auth(mut self, auth: auth::Auth) -> Self {
        self.auth = Arc::new(auth);
        self
    }
}

/// The whole API as an axum router: discovery, OpenAPI, health, and every generated resource
/// route. Unknown paths get kube-apiserver's plain `404 page not found`.
pub fn app(state: AppState) -> Router {
    generated::routes(state.engine.clone())
        .merge(http::discovery::routes())
        .fallback(http::not_found_fallback)
        // Authentication and authorization run before any route, unknown paths included (a
        // stranger learns nothing, not even which paths exist), inside the request log.
        .layer(axum::middleware::from_fn_with_state(state.auth.clone(), auth::middleware))
        .layer(axum::middleware::from_fn(http::log_request))
}
