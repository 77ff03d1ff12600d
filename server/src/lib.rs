//! A Kubernetes API server for the resources compiled from `spec/`.
//!
//! The server knows no resource by name: the `generated` crate supplies the model, documents and
//! routes, and this crate supplies what every resource needs — HTTP plumbing ([`http`]), the
//! generic registry ([`engine`]), patch engines ([`patch`]), storage backends ([`storage`]) and
//! TLS ([`tls`]).
//!
//! ```
//! use std::sync::Arc;
//! let app = server::app(server::AppState::new(Arc::new(server::storage::memory::MemoryStorage::default())));
//! # let _ = app;
//! ```

pub mod engine;
pub mod fieldmanager;
pub mod http;
pub mod patch;
pub mod storage;
pub mod serve;
pub mod tls;

use axum::Router;
use std::sync::Arc;

/// Everything the router needs.
#[derive(Clone)]
pub struct AppState {
    /// The registry all resource routes hand their requests to.
    pub engine: engine::ApiEngine,
}

impl AppState {
    /// State over a storage backend.
    pub fn new(storage: Arc<dyn storage::Storage>) -> Self {
        AppState { engine: engine::ApiEngine::new(storage) }
    }
}

/// The whole API as an axum router: discovery, OpenAPI, health, and every generated resource
/// route. Unknown paths get kube-apiserver's plain `404 page not found`.
pub fn app(state: AppState) -> Router {
    generated::routes(state.engine.clone())
        .merge(http::discovery::routes())
        .fallback(http::not_found_fallback)
        .layer(axum::middleware::from_fn(http::log_request))
}
