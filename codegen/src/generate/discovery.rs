//! Discovery documents: `/apis` (APIGroupList and aggregated APIGroupDiscoveryList v2/v2beta1),
//! `/apis/<group>` (APIGroup) and `/apis/<group>/<version>` (APIResourceList), shaped exactly as
//! kube-apiserver serves them for CustomResourceDefinitions.

use apimodel::{Model, Resource, Version};
use base64_lite::encode as b64;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The verbs of a CRD's main resource, in kube-apiserver's order for APIResourceList.
const VERBS_RESOURCE_LIST: [&str; 8] = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"];
/// The same verbs, in the (sorted) order of aggregated discovery.
const VERBS_AGGREGATED: [&str; 8] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
/// Verbs of the `status` and `scale` subresources.
const SUBRESOURCE_VERBS: [&str; 3] = ["get", "patch", "update"];

/// All discovery documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    /// `/apis` as APIGroupList.
    pub group_list: Value,
    /// `/apis` as APIGroupDiscoveryList, `apidiscovery.k8s.io/v2`.
    pub aggregated_v2: Value,
    /// `/apis` as APIGroupDiscoveryList, `apidiscovery.k8s.io/v2beta1`.
    pub aggregated_v2beta1: Value,
    /// `/apis/<group>` → APIGroup.
    pub groups: BTreeMap<String, Value>,
    /// `<group>/<version>` → APIResourceList.
    pub resource_lists: BTreeMap<String, Value>,
}

/// Builds every discovery document from the model.
pub fn discovery(model: &Model) -> Discovery {
    let mut groups = BTreeMap::new();
    let mut group_entries = Vec::new();
    let mut resource_lists = BTreeMap::new();
    let mut aggregated_items = Vec::new();
    for group in model.groups() {
        let versions = model.group_versions(group);
        if versions.is_empty() {
            continue;
        }
        let gv = |v: &str| json!({"groupVersion": format!("{group}/{v}"), "version": v});
        let entry = json!({
            "name": group,
            "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
            "preferredVersion": gv(versions[0]),
        });
        let mut api_group = json!({"kind": "APIGroup", "apiVersion": "v1"});
        api_group.as_object_mut().expect("object").extend(entry.as_object().expect("object").clone());
        groups.insert(group.to_string(), api_group);
        group_entries.push(entry);

        let mut aggregated_versions = Vec::new();
        for version in &versions {
            let served = model.resources_in(group, version);
            let resources: Vec<Value> = served.iter().flat_map(|(r, v)| resource_list_entries(r, v)).collect();
            resource_lists.insert(
                format!("{group}/{version}"),
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{group}/{version}"), "resources": resources}),
            );
            let resources: Vec<Value> = served.iter().map(|(r, v)| aggregated_entry(r, v)).collect();
            aggregated_versions.push(json!({"version": version, "resources": resources, "freshness": "Current"}));
        }
        aggregated_items.push(json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": aggregated_versions}));
    }
    let aggregated = |v: &str| json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{v}"), "metadata": {}, "items": aggregated_items});
    Discovery {
        group_list: json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": group_entries}),
        aggregated_v2: aggregated("v2"),
        aggregated_v2beta1: aggregated("v2beta1"),
        groups,
        resource_lists,
    }
}

/// kube-apiserver's `storageVersionHash`: the first 8 bytes of SHA-256 of
/// `<group>/<storage version>/<kind>`, base64-encoded.
pub fn storage_version_hash(resource: &Resource) -> String {
    let key = format!("{}/{}/{}", resource.group, resource.storage_version().name, resource.names.kind);
    let digest = Sha256::digest(key.as_bytes());
    b64(&digest[..8])
}

fn resource_list_entries(resource: &Resource, version: &Version) -> Vec<Value> {
    let names = &resource.names;
    let mut main = json!({
        "name": names.plural,
        "singularName": names.singular,
        "namespaced": resource.namespaced(),
        "kind": names.kind,
        "verbs": VERBS_RESOURCE_LIST,
    });
    let obj = main.as_object_mut().expect("object");
    if !names.short_names.is_empty() {
        obj.insert("shortNames".into(), json!(names.short_names));
    }
    if !names.categories.is_empty() {
        obj.insert("categories".into(), json!(names.categories));
    }
    obj.insert("storageVersionHash".into(), json!(storage_version_hash(resource)));
    let mut entries = vec![main];
    if version.subresources.status {
        entries.push(json!({
            "name": format!("{}/status", names.plural),
            "singularName": "",
            "namespaced": resource.namespaced(),
            "kind": names.kind,
            "verbs": SUBRESOURCE_VERBS,
        }));
    }
    if version.subresources.scale.is_some() {
        entries.push(json!({
            "name": format!("{}/scale", names.plural),
            "singularName": "",
            "namespaced": resource.namespaced(),
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": SUBRESOURCE_VERBS,
        }));
    }
    entries
}

fn aggregated_entry(resource: &Resource, version: &Version) -> Value {
    let names = &resource.names;
    let kind = json!({"group": resource.group, "version": version.name, "kind": names.kind});
    let mut entry = json!({
        "resource": names.plural,
        "responseKind": kind,
        "scope": resource.scope.as_str(),
        "singularResource": names.singular,
        "verbs": VERBS_AGGREGATED,
    });
    let obj = entry.as_object_mut().expect("object");
    if !names.short_names.is_empty() {
        obj.insert("shortNames".into(), json!(names.short_names));
    }
    if !names.categories.is_empty() {
        obj.insert("categories".into(), json!(names.categories));
    }
    let mut subresources = Vec::new();
    if version.subresources.status {
        subresources.push(json!({"subresource": "status", "responseKind": kind, "verbs": SUBRESOURCE_VERBS}));
    }
    if version.subresources.scale.is_some() {
        subresources.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": SUBRESOURCE_VERBS}));
    }
    if !subresources.is_empty() {
        obj.insert("subresources".into(), json!(subresources));
    }
    entry
}

/// Standard base64 (with padding) of a few bytes; not worth a dependency.
mod base64_lite {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::foo_model;

    #[test]
    fn storage_version_hash_matches_kube_apiserver() {
        let model = foo_model();
        assert_eq!(storage_version_hash(&model.resources[0]), "YAqgrOjs43I=");
    }

    #[test]
    fn matches_kube_apiserver_responses() {
        let d = discovery(&foo_model());
        // Captured from kube-apiserver 1.32 serving the same CRD (../shared/reference).
        let group_version: Value = serde_json::from_str(r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"hello.zeng.dev/v1","resources":[{"name":"foos","singularName":"foo","namespaced":true,"kind":"Foo","verbs":["delete","deletecollection","get","list","patch","create","update","watch"],"shortNames":["fo"],"categories":["all"],"storageVersionHash":"YAqgrOjs43I="}]}"#).unwrap();
        assert_eq!(d.resource_lists["hello.zeng.dev/v1"], group_version);
        let group: Value = serde_json::from_str(r#"{"kind":"APIGroup","apiVersion":"v1","name":"hello.zeng.dev","versions":[{"groupVersion":"hello.zeng.dev/v1","version":"v1"}],"preferredVersion":{"groupVersion":"hello.zeng.dev/v1","version":"v1"}}"#).unwrap();
        assert_eq!(d.groups["hello.zeng.dev"], group);
        let item: Value = serde_json::from_str(r#"{"metadata": {"name": "hello.zeng.dev", "creationTimestamp": null}, "versions": [{"version": "v1", "resources": [{"resource": "foos", "responseKind": {"group": "hello.zeng.dev", "version": "v1", "kind": "Foo"}, "scope": "Namespaced", "singularResource": "foo", "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"], "shortNames": ["fo"], "categories": ["all"]}], "freshness": "Current"}]}"#).unwrap();
        assert_eq!(d.aggregated_v2["items"][0], item);
        assert_eq!(d.aggregated_v2beta1["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        assert_eq!(serde_json::to_string(&d.groups["hello.zeng.dev"]).unwrap(), serde_json::to_string(&group).unwrap(), "key order");
    }
}
