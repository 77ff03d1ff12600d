//! Conversion between the versions of a resource.
//!
//! Objects are stored in the storage version. Reading one in another version moves the fields
//! its `Conversion` lists from their storage-version place to their place in that version, then
//! runs its Rust hook if it has one; writing runs the same steps backwards. Without a
//! `Conversion` only `apiVersion` changes (kube-apiserver's conversion strategy `None`). An
//! object stored by an older spec in a version that is no longer the storage version is brought
//! to the storage version first. See `docs/conversion.md`.

use apimodel::{FieldMove, Resource, Version};
use generated::Endpoint;
use serde_json::{Map, Value};

/// Converts a stored object (in the version its `apiVersion` names) to `endpoint`'s version.
pub fn to_served(endpoint: &Endpoint, object: &mut Value) -> Result<(), String> {
    let resource = endpoint.resource();
    let storage = resource.storage_version();
    let stored_in = stored_version(resource, object).unwrap_or(&storage.name).to_string();
    if stored_in != endpoint.version {
        if stored_in != storage.name {
            let version = resource.version(&stored_in).expect("stored_version only names versions of the resource");
            backward(endpoint, version, &storage.name, object)?;
        }
        if endpoint.version != storage.name {
            forward(endpoint, endpoint.version(), &storage.name, object)?;
        }
    }
    set_api_version(object, &endpoint.api_version());
    Ok(())
}

/// Converts an object of `endpoint`'s version to the storage version.
pub fn to_storage(endpoint: &Endpoint, object: &mut Value) -> Result<(), String> {
    let resource = endpoint.resource();
    let storage = resource.storage_version();
    if endpoint.version != storage.name {
        backward(endpoint, endpoint.version(), &storage.name, object)?;
    }
    set_api_version(object, &format!("{}/{}", resource.group, storage.name));
    Ok(())
}

/// The version a stored object is in, when its `apiVersion` names one of the resource's.
fn stored_version<'r>(resource: &'r Resource, object: &Value) -> Option<&'r str> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let (group, version) = api_version.rsplit_once('/')?;
    (group == resource.group).then(|| resource.version(version).map(|v| v.name.as_str()))?
}

/// Storage version → `version`: the field moves, then the hook.
fn forward(endpoint: &Endpoint, version: &Version, storage: &str, object: &mut Value) -> Result<(), String> {
    for FieldMove { storage, served } in &version.conversion.fields {
        move_field(object, storage, served)?;
    }
    run_hook(endpoint, version, object, storage, &version.name)
}

/// `version` → storage version: the hook, then the field moves in reverse.
fn backward(endpoint: &Endpoint, version: &Version, storage: &str, object: &mut Value) -> Result<(), String> {
    run_hook(endpoint, version, object, &version.name, storage)?;
    for FieldMove { storage, served } in version.conversion.fields.iter().rev() {
        move_field(object, served, storage)?;
    }
    Ok(())
}

fn run_hook(endpoint: &Endpoint, version: &Version, object: &mut Value, from: &str, to: &str) -> Result<(), String> {
    if version.conversion.hook.is_none() {
        return Ok(());
    }
    // Hooks are compiled into the endpoints of served versions.
    let hook = generated::ENDPOINTS
        .iter()
        .find(|e| e.resource == endpoint.resource && e.version == version.name)
        .and_then(|e| e.conversion_hook)
        .ok_or_else(|| format!("version {} is not served, so its conversion hook is not compiled in", version.name))?;
    hook(object, from, to).map_err(|e| format!("converting from {from} to {to}: {e}"))
}

/// Moves the value at `from` to `to` (field names from the root), creating objects on the way
/// and removing objects the move left empty. Nothing happens when there is no value at `from`.
fn move_field(object: &mut Value, from: &[String], to: &[String]) -> Result<(), String> {
    let Some(value) = take(object, from) else { return Ok(()) };
    let (last, parents) = to.split_last().ok_or("an empty path")?;
    let mut node = object;
    for name in parents {
        let map = node.as_object_mut().ok_or_else(|| format!(".{} is not an object", to.join(".")))?;
        node = map.entry(name.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
    let map = node.as_object_mut().ok_or_else(|| format!("the parent of .{} is not an object", to.join(".")))?;
    map.insert(last.clone(), value);
    Ok(())
}

/// Removes and returns the value at `path`, then removes the objects on the path it left empty.
fn take(node: &mut Value, path: &[String]) -> Option<Value> {
    let (first, rest) = path.split_first()?;
    let map = node.as_object_mut()?;
    if rest.is_empty() {
        return map.remove(first);
    }
    let child = map.get_mut(first)?;
    let value = take(child, rest)?;
    if child.as_object().is_some_and(Map::is_empty) {
        map.remove(first);
    }
    Some(value)
}

fn set_api_version(object: &mut Value, api_version: &str) {
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(api_version.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    #[test]
    fn moves_create_and_clean_up_parents() {
        let mut object = json!({"spec": {"scaling": {"size": 3}, "other": 1}});
        move_field(&mut object, &path("spec.scaling.size"), &path("spec.replicas")).unwrap();
        assert_eq!(object, json!({"spec": {"other": 1, "replicas": 3}}));
        move_field(&mut object, &path("spec.replicas"), &path("spec.scaling.size")).unwrap();
        assert_eq!(object, json!({"spec": {"other": 1, "scaling": {"size": 3}}}));
        // Nothing to move: nothing changes.
        move_field(&mut object, &path("spec.missing"), &path("spec.elsewhere")).unwrap();
        assert_eq!(object, json!({"spec": {"other": 1, "scaling": {"size": 3}}}));
        // An empty object that was there before stays.
        let mut object = json!({"spec": {"a": {}, "b": 1}});
        move_field(&mut object, &path("spec.b"), &path("status.b")).unwrap();
        assert_eq!(object, json!({"spec": {"a": {}}, "status": {"b": 1}}));
        // A scalar in the way is an error (the request fails; the object was a working copy).
        let mut object = json!({"spec": {"a": 1, "b": "x"}});
        assert!(move_field(&mut object, &path("spec.a"), &path("spec.b.c")).is_err());
    }
}
