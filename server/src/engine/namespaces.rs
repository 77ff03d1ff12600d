//! What the engine does about the namespaces of a cluster it is aggregated into (see
//! `docs/aggregation.md`): it asks a [`NamespaceAdmission`] before writing into a namespace, as
//! kube-apiserver's `NamespaceLifecycle` admission plugin does, and removes the objects of a
//! namespace that goes away ([`ApiEngine::delete_namespace_contents`]), as kube's namespace
//! controller does through the API.

use super::object::{self, metadata_mut};
use super::write::finalizers;
use super::ApiEngine;
use crate::http::{ApiError, Cause, Details};
use crate::storage::{self, ListOptions};
use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// A namespace as the cluster knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceState {
    /// It exists and takes new objects.
    Active,
    /// It is being deleted (phase `Terminating`): existing objects may change, no new ones.
    Terminating,
    /// There is no such namespace.
    Missing,
}

/// Tells the engine what state a namespace is in: the cluster's namespaces in aggregated mode.
#[async_trait]
pub trait NamespaceAdmission: Send + Sync + 'static {
    /// The state of `namespace`, or why it could not be found out.
    async fn namespace_state(&self, namespace: &str) -> Result<NamespaceState, String>;
}

/// The kind of write being admitted, as kube's admission operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
    Create,
    Update,
}

/// What happens to the objects of a namespace that goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceCleanup {
    /// The namespace is terminating: every object is deleted as a DELETE would — objects with
    /// finalizers are only marked (`deletionTimestamp`) and go when their finalizers do. This
    /// is what kube's namespace controller asks of every namespaced API (a deletecollection).
    HonourFinalizers,
    /// The namespace is gone: every object is removed from storage, finalizers or not. Nothing
    /// could finish them any more (writes into a missing namespace are refused).
    Purge,
}

/// What a cleanup did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupOutcome {
    /// Objects removed from storage.
    pub deleted: usize,
    /// Objects left waiting for their finalizers (marked now or before).
    pub pending: usize,
}

/// kube's 404 for a write into a namespace that does not exist (the error of the plugin's live
/// GET of the namespace, passed through): `namespaces "<ns>" not found`.
pub fn namespace_not_found(namespace: &str) -> ApiError {
    ApiError::new(404, "NotFound", format!("namespaces \"{namespace}\" not found")).with_details(Details {
        name: Some(namespace.to_string()),
        kind: Some("namespaces".into()),
        ..Details::default()
    })
}

/// kube's 403 for a create in a terminating namespace: admission's Forbidden about the object,
/// with the `NamespaceTerminating` cause.
pub fn namespace_terminating(group: &str, plural: &str, name: &str, namespace: &str) -> ApiError {
    let resource = if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") };
    let message =
        format!("{resource} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated");
    ApiError::new(403, "Forbidden", message).with_details(Details {
        name: Some(name.to_string()),
        group: Some(group.to_string()),
        kind: Some(plural.to_string()),
        causes: vec![Cause {
            reason: "NamespaceTerminating".into(),
            message: format!("namespace {namespace} is being terminated"),
            field: "metadata.namespace".into(),
        }],
        ..Details::default()
    })
}

impl super::Call {
    /// The NamespaceLifecycle check before a create or an update of a namespaced object:
    /// creates need an active namespace, updates an existing one; deletes are never checked.
    /// `object` names the object in the Forbidden message (its name, else its generateName, as
    /// kube's admission does before a name is generated).
    pub(super) async fn admit_namespace(&self, operation: Operation, object: &Value) -> Result<(), ApiError> {
        let (Some(admission), Some(namespace)) = (&self.engine.namespaces, self.namespace()) else { return Ok(()) };
        let state = admission.namespace_state(namespace).await.map_err(ApiError::internal)?;
        match (state, operation) {
            (NamespaceState::Missing, _) => Err(namespace_not_found(namespace)),
            (NamespaceState::Terminating, Operation::Create) => {
                let name = object::meta_str(object, "name")
                    .filter(|n| !n.is_empty())
                    .or_else(|| object::meta_str(object, "generateName").filter(|n| !n.is_empty()))
                    .unwrap_or("Unknown");
                Err(namespace_terminating(self.group(), self.plural(), name, namespace))
            }
            _ => Ok(()),
        }
    }
}

/// Objects read per storage request while cleaning up.
const PAGE: usize = 500;

impl ApiEngine {
    /// Deletes every object of every namespaced resource in `namespace`, through storage, as
    /// `how` says.
    pub async fn delete_namespace_contents(&self, namespace: &str, how: NamespaceCleanup) -> Result<CleanupOutcome, storage::Error> {
        let mut outcome = CleanupOutcome::default();
        for resource in generated::model().resources.iter().filter(|r| r.namespaced()) {
            let prefix = object::list_prefix(&resource.group, &resource.names.plural, Some(namespace));
            let mut start_after = None;
            loop {
                let page =
                    self.storage.list(&prefix, ListOptions { start_after: start_after.clone(), limit: Some(PAGE), revision: None }).await?;
                for kv in &page.items {
                    if self.delete_stored(&kv.key, how).await? {
                        outcome.deleted += 1;
                    } else {
                        outcome.pending += 1;
                    }
                }
                match page.items.last() {
                    Some(last) if page.remaining > 0 => start_after = Some(last.key.clone()),
                    _ => break,
                }
            }
        }
        Ok(outcome)
    }

    /// Deletes one stored object; `false` when it stays, waiting for finalizers.
    async fn delete_stored(&self, key: &str, how: NamespaceCleanup) -> Result<bool, storage::Error> {
        loop {
            let Some(current) = self.storage.get(key).await? else { return Ok(true) };
            let mut stored: Value = match serde_json::from_slice(&current.value) {
                Ok(v) => v,
                // Unreadable: nothing can finalize it either.
                Err(_) => Value::Null,
            };
            let keep = how == NamespaceCleanup::HonourFinalizers && stored.is_object() && !finalizers(&stored).is_empty();
            let result = if !keep {
                self.storage.delete(key, Some(current.mod_revision)).await.map(|_| true)
            } else if stored.get("metadata").and_then(|m| m.get("deletionTimestamp")).is_some() {
                return Ok(false);
            } else {
                // Marked as a DELETE marks it (see delete.rs).
                let generation = stored.get("metadata").and_then(|m| m.get("generation")).and_then(Value::as_i64).unwrap_or(0);
                let meta = metadata_mut(&mut stored);
                meta.insert("deletionTimestamp".into(), Value::String(object::now_timestamp()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                meta.insert("generation".into(), json!(generation + 1));
                object::canonicalize(&mut stored);
                let bytes = Bytes::from(serde_json::to_vec(&stored).expect("JSON values serialize"));
                self.storage.update(key, bytes, current.mod_revision).await.map(|_| false)
            };
            match result {
                Err(storage::Error::Conflict { .. }) => continue,
                Err(storage::Error::NotFound) => return Ok(true),
                other => return other,
            }
        }
    }

    /// The namespaces that hold at least one object of a namespaced resource.
    pub async fn namespaces_in_use(&self) -> Result<BTreeSet<String>, storage::Error> {
        let mut namespaces = BTreeSet::new();
        for resource in generated::model().resources.iter().filter(|r| r.namespaced()) {
            let prefix = object::resource_prefix(&resource.group, &resource.names.plural);
            // One read of the whole resource: stores count what is left after a page by walking
            // it, so paging would cost more, and the values are shared buffers, not copies.
            let all = self.storage.list(&prefix, ListOptions::default()).await?;
            for kv in &all.items {
                if let Some(namespace) = kv.key[prefix.len()..].split('/').next().filter(|n| !n.is_empty()) {
                    if !namespaces.contains(namespace) {
                        namespaces.insert(namespace.to_string());
                    }
                }
            }
        }
        Ok(namespaces)
    }
}
