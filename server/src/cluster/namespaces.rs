//! The cluster's namespaces, for kube-apiserver's two namespace rules in an extension server:
//!
//! - **Admission** (kube's `NamespaceLifecycle` plugin): a create needs an active namespace
//!   (missing: 404 `namespaces "<ns>" not found`; terminating: 403 `… is forbidden: unable to
//!   create new content in namespace <ns> because it is being terminated`), an update an
//!   existing one. The state comes from `GET /api/v1/namespaces/<ns>` and is cached briefly,
//!   found and not found alike; the watch below keeps the cache current.
//! - **Cleanup** (kube's namespace controller): a list and watch of `/api/v1/namespaces`; when a
//!   namespace starts terminating, its objects are deleted as a deletecollection would
//!   (finalizers honoured); when it is gone, they are removed outright. Every re-list also
//!   removes the objects of namespaces that disappeared while nobody watched (each one checked
//!   with a GET first, so a namespace created after the list was read is left alone).

use crate::auth::client::RestClient;
use crate::auth::webhook::TtlCache;
use crate::engine::namespaces::{NamespaceAdmission, NamespaceCleanup, NamespaceState};
use crate::engine::ApiEngine;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a namespace that exists is remembered.
pub const FOUND_TTL: Duration = Duration::from_secs(10);
/// How long a namespace that does not exist is remembered: short, so one created by other means
/// than those the watch sees in time is usable at once.
pub const NOT_FOUND_TTL: Duration = Duration::from_secs(2);
/// How long a watch lasts before the namespaces are listed again (kube's reflectors pick 5–10
/// minutes).
const WATCH_SECONDS: u64 = 300;
/// The longest pause between attempts when the cluster cannot be reached.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The state a namespace object describes.
pub fn state_of(namespace: &Value) -> NamespaceState {
    let terminating = namespace["status"]["phase"].as_str() == Some("Terminating") || !namespace["metadata"]["deletionTimestamp"].is_null();
    if terminating {
        NamespaceState::Terminating
    } else {
        NamespaceState::Active
    }
}

/// The cluster's namespaces: admission for the engine, and the controller that cleans up.
#[derive(Debug)]
pub struct NamespaceLifecycle {
    client: RestClient,
    cache: TtlCache<String, NamespaceState>,
    found_ttl: Duration,
    not_found_ttl: Duration,
    lookups: AtomicU64,
}

impl NamespaceLifecycle {
    /// Namespaces of the cluster `client` reaches, with the default cache times.
    pub fn new(client: RestClient) -> Self {
        NamespaceLifecycle::with_ttls(client, FOUND_TTL, NOT_FOUND_TTL)
    }

    /// With chosen cache times (tests use short ones).
    pub fn with_ttls(client: RestClient, found_ttl: Duration, not_found_ttl: Duration) -> Self {
        NamespaceLifecycle { client, cache: TtlCache::default(), found_ttl, not_found_ttl, lookups: AtomicU64::new(0) }
    }

    /// How many namespace GETs were sent (for tests and metrics).
    pub fn lookups_sent(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    fn remember(&self, name: &str, state: NamespaceState) {
        let ttl = if state == NamespaceState::Missing { self.not_found_ttl } else { self.found_ttl };
        self.cache.insert(name.to_string(), state, ttl);
    }

    /// Asks the cluster, bypassing the cache (and filling it).
    pub async fn lookup(&self, name: &str) -> Result<NamespaceState, String> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let path = format!("/api/v1/namespaces/{}", super::path_segment(name));
        let (status, answer) = self.client.get_json(&path).await?;
        let state = match status {
            200 => state_of(&answer),
            404 => NamespaceState::Missing,
            _ => return Err(format!("GET {path}: HTTP {status}: {}", answer["message"].as_str().unwrap_or("no message"))),
        };
        self.remember(name, state);
        Ok(state)
    }

    /// Runs the controller for `engine` until the task is dropped: list, clean up, watch, and
    /// again, with a growing pause while the cluster cannot be reached.
    pub async fn run(self: Arc<Self>, engine: ApiEngine) {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.list_and_watch(&engine).await {
                Ok(()) => backoff = Duration::from_secs(1),
                Err(e) => {
                    tracing::warn!(error = %e, "watching the cluster's namespaces failed; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One round: list, clean up what the list shows, then follow the watch until it ends.
    async fn list_and_watch(&self, engine: &ApiEngine) -> Result<(), String> {
        let (status, list) = self.client.get_json("/api/v1/namespaces").await?;
        if status != 200 {
            return Err(format!("listing namespaces: HTTP {status}: {}", list["message"].as_str().unwrap_or("no message")));
        }
        let mut revision = list["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string();
        let mut listed = BTreeSet::new();
        for item in list["items"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let Some(name) = item["metadata"]["name"].as_str() else { continue };
            listed.insert(name.to_string());
            self.observe(engine, name, state_of(item)).await;
        }
        // Namespaces we hold objects in that the cluster did not list: gone while nobody
        // watched, or created since the list was read. Only a GET can tell.
        let in_use = engine.namespaces_in_use().await.map_err(|e| format!("reading storage: {e}"))?;
        for name in in_use.difference(&listed) {
            match self.lookup(name).await {
                Ok(state) => self.observe(engine, name, state).await,
                Err(e) => tracing::warn!(namespace = %name, error = %e, "cannot tell whether the namespace still exists"),
            }
        }

        let path = format!("/api/v1/namespaces?watch=1&allowWatchBookmarks=true&timeoutSeconds={WATCH_SECONDS}&resourceVersion={revision}");
        let mut events = match self.client.watch(&path).await? {
            Ok(events) => events,
            // Too old: list again.
            Err((410, _)) => return Ok(()),
            Err((status, answer)) => {
                return Err(format!("watching namespaces: HTTP {status}: {}", answer["message"].as_str().unwrap_or("no message")))
            }
        };
        loop {
            // kube-apiserver ends the watch after WATCH_SECONDS; a connection that went quiet for
            // longer than that is dead without having said so.
            let event = match tokio::time::timeout(Duration::from_secs(WATCH_SECONDS + 30), events.next()).await {
                Ok(Some(event)) => event?,
                Ok(None) => break,
                Err(_) => return Err("the namespace watch went quiet".into()),
            };
            let object = &event["object"];
            match event["type"].as_str().unwrap_or_default() {
                kind @ ("ADDED" | "MODIFIED" | "DELETED") => {
                    let Some(name) = object["metadata"]["name"].as_str() else { continue };
                    let state = if kind == "DELETED" { NamespaceState::Missing } else { state_of(object) };
                    self.observe(engine, name, state).await;
                }
                "BOOKMARK" => {}
                "ERROR" if object["code"].as_u64() == Some(410) => return Ok(()),
                "ERROR" => return Err(format!("watching namespaces: {}", object["message"].as_str().unwrap_or("error event"))),
                other => return Err(format!("watching namespaces: unexpected event type {other:?}")),
            }
            if let Some(rv) = object["metadata"]["resourceVersion"].as_str() {
                revision = rv.to_string();
            }
        }
        tracing::debug!(%revision, "the namespace watch ended; listing again");
        Ok(())
    }

    /// Records what the cluster says about a namespace and acts on it.
    async fn observe(&self, engine: &ApiEngine, name: &str, state: NamespaceState) {
        self.remember(name, state);
        let how = match state {
            NamespaceState::Active => return,
            NamespaceState::Terminating => NamespaceCleanup::HonourFinalizers,
            NamespaceState::Missing => NamespaceCleanup::Purge,
        };
        match engine.delete_namespace_contents(name, how).await {
            Ok(outcome) if outcome.deleted > 0 || outcome.pending > 0 => tracing::info!(
                namespace = %name,
                deleted = outcome.deleted,
                waiting_for_finalizers = outcome.pending,
                "namespace {}: removed its objects",
                if state == NamespaceState::Missing { "deleted" } else { "terminating" }
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(namespace = %name, error = %e, "cannot remove the objects of the namespace"),
        }
    }
}

#[async_trait]
impl NamespaceAdmission for NamespaceLifecycle {
    async fn namespace_state(&self, namespace: &str) -> Result<NamespaceState, String> {
        if let Some(state) = self.cache.get(&namespace.to_string()) {
            return Ok(state);
        }
        self.lookup(namespace).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phases() {
        assert_eq!(state_of(&json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}})), NamespaceState::Active);
        assert_eq!(state_of(&json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}})), NamespaceState::Terminating);
        // The deletion timestamp comes with the phase, but either one means terminating.
        assert_eq!(state_of(&json!({"metadata": {"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z"}})), NamespaceState::Terminating);
        assert_eq!(super::super::path_segment("a-b.c"), "a-b.c");
        assert_eq!(super::super::path_segment("a/b?"), "a%2Fb%3F");
    }
}
