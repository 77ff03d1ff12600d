//! `metadata.managedFields`: reading the entries into sets per manager, writing them back in
//! kube-apiserver's order, and the bookkeeping around them (which metadata is never owned, the
//! cap on the number of `Update` entries).
//!
//! An entry is identified by manager name, operation, subresource and, for `Update` only, API
//! version: an applier keeps one entry whatever version it applies through, while updates
//! through different versions are recorded apart.

use super::fieldset::FieldSet;
use super::gojson;
use super::path::PathElement;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The kind of write an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply: the manager declared these fields.
    Apply,
    /// Any other write (create, update, patch): the manager changed these fields.
    Update,
}

impl Operation {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who manages a set of fields: the identity of one managedFields entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagerId {
    /// The manager's name (`fieldManager`, or derived from the User-Agent).
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// For `Update` entries, the API version written through; empty for `Apply`.
    pub api_version: String,
    /// `status` for writes to the status subresource, else empty.
    pub subresource: String,
}

/// Name of the entry that absorbs the oldest `Update` entries beyond the cap.
const ANCIENT_CHANGES: &str = "ancient-changes";

/// How many `Update` entries an object keeps before the oldest are merged.
pub const MAX_UPDATE_MANAGERS: usize = 10;

impl ManagerId {
    /// The entry of an update through `api_version`.
    pub fn update(manager: &str, api_version: &str, subresource: &str) -> Self {
        ManagerId {
            manager: manager.to_string(),
            operation: Operation::Update,
            api_version: api_version.to_string(),
            subresource: subresource.to_string(),
        }
    }

    /// The entry of an applier.
    pub fn apply(manager: &str, subresource: &str) -> Self {
        ManagerId {
            manager: manager.to_string(),
            operation: Operation::Apply,
            api_version: String::new(),
            subresource: subresource.to_string(),
        }
    }

    /// The identifier kube-apiserver keys managers by (JSON of the identifying fields, in its
    /// field order). Conflicts are sorted by it.
    pub fn identifier(&self) -> String {
        let mut out = String::from("{");
        let mut first = true;
        let mut field = |name: &str, value: &str| {
            if value.is_empty() {
                return;
            }
            if !first {
                out.push(',');
            }
            first = false;
            gojson::write_string(name, &mut out);
            out.push(':');
            gojson::write_string(value, &mut out);
        };
        field("manager", &self.manager);
        field("operation", self.operation.as_str());
        field("apiVersion", &self.api_version);
        field("subresource", &self.subresource);
        out.push('}');
        out
    }

    /// The manager as conflict messages name it: `"name"`, with the subresource and, for
    /// updates, the API version.
    pub fn describe(&self) -> String {
        let mut text = gojson::go_quote(&self.manager);
        if !self.subresource.is_empty() {
            text.push_str(&format!(" with subresource {}", gojson::go_quote(&self.subresource)));
        }
        if self.operation == Operation::Update {
            text.push_str(&format!(" using {}", self.api_version));
        }
        text
    }
}

/// The fields one manager owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The owned fields.
    pub set: FieldSet,
    /// The API version the fields are named in.
    pub api_version: String,
    /// When the manager last changed the object (absent on entries written without one).
    pub time: Option<DateTime<Utc>>,
}

/// All managers of an object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManagedFields {
    entries: BTreeMap<ManagerId, Entry>,
}

impl ManagedFields {
    /// Whether no manager owns anything.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// One manager's entry.
    pub fn get(&self, id: &ManagerId) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// One manager's entry, to change it.
    pub fn get_mut(&mut self, id: &ManagerId) -> Option<&mut Entry> {
        self.entries.get_mut(id)
    }

    /// Sets a manager's entry.
    pub fn insert(&mut self, id: ManagerId, entry: Entry) {
        self.entries.insert(id, entry);
    }

    /// Removes a manager's entry.
    pub fn remove(&mut self, id: &ManagerId) -> Option<Entry> {
        self.entries.remove(id)
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = (&ManagerId, &Entry)> {
        self.entries.iter()
    }

    /// Every entry, to change them.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&ManagerId, &mut Entry)> {
        self.entries.iter_mut()
    }

    /// Drops managers that own nothing.
    pub fn drop_empty(&mut self) {
        self.entries.retain(|_, e| !e.set.is_empty());
    }

    /// Reads `metadata.managedFields` (absent or null: no managers). Fails on an entry kube
    /// would not accept: unknown operation, no apiVersion, a fieldsType other than FieldsV1,
    /// or an unreadable field set.
    pub fn decode(value: Option<&Value>) -> Result<Self, String> {
        let mut out = ManagedFields::default();
        let items = match value {
            None | Some(Value::Null) => return Ok(out),
            Some(Value::Array(items)) => items,
            Some(other) => return Err(format!("managedFields must be a list, found {other}")),
        };
        for (i, item) in items.iter().enumerate() {
            let Value::Object(entry) = item else {
                return Err(format!("managed fields entry {i} is not an object"));
            };
            let text = |name: &str| entry.get(name).and_then(Value::as_str).unwrap_or("");
            let operation = match text("operation") {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                _ => return Err("operation must be `Apply` or `Update`".into()),
            };
            let api_version = text("apiVersion");
            if api_version.is_empty() {
                return Err("apiVersion must not be empty".into());
            }
            match text("fieldsType") {
                "FieldsV1" => {}
                "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
                other => return Err(format!("invalid fieldsType {other:?} in managed fields entry {i}")),
            }
            let set = match entry.get("fieldsV1") {
                None | Some(Value::Null) => FieldSet::new(),
                Some(fields) => FieldSet::from_fields_v1(fields).map_err(|e| format!("error decoding set: {e}"))?,
            };
            let time = match entry.get("time") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) => {
                    Some(DateTime::parse_from_rfc3339(t).map_err(|e| format!("invalid time {t:?}: {e}"))?.with_timezone(&Utc))
                }
                Some(other) => return Err(format!("invalid time {other}")),
            };
            let id = match operation {
                Operation::Apply => ManagerId::apply(text("manager"), text("subresource")),
                Operation::Update => ManagerId::update(text("manager"), api_version, text("subresource")),
            };
            out.entries.insert(id, Entry { set, api_version: api_version.to_string(), time });
        }
        Ok(out)
    }

    /// `metadata.managedFields` as kube-apiserver writes them: `Apply` entries first, then by
    /// time, manager, apiVersion and subresource; `None` when nothing is managed.
    pub fn encode(&self) -> Option<Value> {
        if self.entries.is_empty() {
            return None;
        }
        let mut entries: Vec<(&ManagerId, &Entry)> = self.entries.iter().collect();
        entries.sort_by(|(a, ea), (b, eb)| {
            let seconds = |e: &Entry| e.time.map(|t| t.timestamp()).unwrap_or(0);
            a.operation
                .cmp(&b.operation)
                .then(seconds(ea).cmp(&seconds(eb)))
                .then_with(|| a.manager.cmp(&b.manager))
                .then_with(|| ea.api_version.cmp(&eb.api_version))
                .then_with(|| a.subresource.cmp(&b.subresource))
        });
        let items = entries
            .into_iter()
            .map(|(id, entry)| {
                // Keys in sorted order, as custom resources are written.
                let mut map = Map::new();
                map.insert("apiVersion".into(), Value::String(entry.api_version.clone()));
                map.insert("fieldsType".into(), Value::String("FieldsV1".into()));
                map.insert("fieldsV1".into(), entry.set.to_fields_v1());
                if !id.manager.is_empty() {
                    map.insert("manager".into(), Value::String(id.manager.clone()));
                }
                map.insert("operation".into(), Value::String(id.operation.as_str().into()));
                if !id.subresource.is_empty() {
                    map.insert("subresource".into(), Value::String(id.subresource.clone()));
                }
                if let Some(t) = entry.time {
                    map.insert("time".into(), Value::String(t.to_rfc3339_opts(SecondsFormat::Secs, true)));
                }
                Value::Object(map)
            })
            .collect();
        Some(Value::Array(items))
    }

    /// Keeps at most `max` `Update` entries: the oldest are merged, per API version, into one
    /// `ancient-changes` entry, so objects written by many controllers stay small.
    pub fn cap_update_managers(&mut self, max: usize) {
        let mut updaters: Vec<ManagerId> = self.entries.keys().filter(|id| id.operation == Operation::Update).cloned().collect();
        if updaters.len() <= max {
            return;
        }
        let seconds = |e: Option<&Entry>| e.and_then(|e| e.time).map(|t| t.timestamp()).unwrap_or(0);
        updaters.sort_by(|a, b| {
            seconds(self.entries.get(a)).cmp(&seconds(self.entries.get(b))).then_with(|| a.identifier().cmp(&b.identifier()))
        });
        let mut length = updaters.len();
        let mut first_of_version: BTreeMap<String, ManagerId> = BTreeMap::new();
        for id in updaters {
            if length <= max {
                break;
            }
            let Some(entry) = self.entries.get(&id).cloned() else { continue };
            let bucket = ManagerId::update(ANCIENT_CHANGES, &entry.api_version, "");
            match first_of_version.get(&entry.api_version) {
                Some(first) => {
                    // The second old entry of a version opens the bucket with the first one.
                    if !self.entries.contains_key(&bucket) {
                        if let Some(moved) = self.entries.remove(first) {
                            self.entries.insert(bucket.clone(), moved);
                        }
                    }
                    let held = self.entries.get(&bucket).map(|b| b.set.clone()).unwrap_or_default();
                    self.entries.remove(&id);
                    self.entries
                        .insert(bucket, Entry { set: entry.set.union(&held), api_version: entry.api_version.clone(), time: entry.time });
                    length -= 1;
                }
                None => {
                    first_of_version.insert(entry.api_version.clone(), id);
                }
            }
        }
    }
}

/// Fields nobody owns: identity and server-set metadata. Taken out of every writer's set.
pub fn unowned_fields() -> FieldSet {
    let field = |name: &str| PathElement::Field(name.to_string());
    let mut set = FieldSet::new();
    for top in ["apiVersion", "kind", "metadata"] {
        set.insert(&[field(top)]);
    }
    for meta in
        ["name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation", "managedFields", "resourceVersion"]
    {
        set.insert(&[field("metadata"), field(meta)]);
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decode_encode_sorts_like_kube() {
        let raw = json!([
            {"manager": "b", "operation": "Update", "apiVersion": "g/v1", "time": "2024-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:b": {}}}},
            {"manager": "a", "operation": "Update", "apiVersion": "g/v1", "time": "2024-01-01T00:00:02Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:a": {}}}},
            {"manager": "z", "operation": "Apply", "apiVersion": "g/v1", "time": "2024-01-01T00:00:09+00:00", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:z": {}}}},
            {"manager": "s", "operation": "Update", "apiVersion": "g/v1", "subresource": "status", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}},
        ]);
        let managed = ManagedFields::decode(Some(&raw)).unwrap();
        let encoded = managed.encode().unwrap();
        let order: Vec<&str> = encoded.as_array().unwrap().iter().map(|e| e["manager"].as_str().unwrap()).collect();
        assert_eq!(order, ["z", "s", "a", "b"]);
        assert_eq!(encoded[0]["time"], "2024-01-01T00:00:09Z");
        assert_eq!(encoded[1].get("time"), None);
        assert_eq!(encoded[1]["subresource"], "status");
    }

    #[test]
    fn decode_rejects_what_kube_rejects() {
        for bad in [
            json!([{"manager": "a", "operation": "Replace", "apiVersion": "v1", "fieldsType": "FieldsV1"}]),
            json!([{"manager": "a", "operation": "Update", "fieldsType": "FieldsV1"}]),
            json!([{"manager": "a", "operation": "Update", "apiVersion": "v1"}]),
            json!([{"manager": "a", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV2"}]),
        ] {
            assert!(ManagedFields::decode(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn identifiers_and_descriptions() {
        let update = ManagerId::update("kubectl-edit", "g/v1", "status");
        assert_eq!(update.identifier(), r#"{"manager":"kubectl-edit","operation":"Update","apiVersion":"g/v1","subresource":"status"}"#);
        assert_eq!(update.describe(), r#""kubectl-edit" with subresource "status" using g/v1"#);
        assert_eq!(ManagerId::apply("a", "").describe(), r#""a""#);
    }

    #[test]
    fn oldest_updates_are_merged_beyond_the_cap() {
        let mut managed = ManagedFields::default();
        for i in 0..12 {
            let set = FieldSet::from_paths([[PathElement::Field(format!("f{i}"))].as_slice()]);
            let time = DateTime::from_timestamp(1_700_000_000 + i, 0);
            managed.insert(ManagerId::update(&format!("m{i:02}"), "g/v1", ""), Entry { set, api_version: "g/v1".into(), time });
        }
        managed.insert(
            ManagerId::apply("applier", ""),
            Entry { set: FieldSet::from_paths([[PathElement::Field("x".into())].as_slice()]), api_version: "g/v1".into(), time: None },
        );
        managed.cap_update_managers(MAX_UPDATE_MANAGERS);
        let updates: Vec<&ManagerId> = managed.iter().map(|(id, _)| id).filter(|id| id.operation == Operation::Update).collect();
        assert_eq!(updates.len(), 10);
        let bucket = managed.get(&ManagerId::update(ANCIENT_CHANGES, "g/v1", "")).unwrap();
        assert_eq!(bucket.set.paths().len(), 3);
        assert!(managed.get(&ManagerId::update("m02", "g/v1", "")).is_none());
        assert!(managed.get(&ManagerId::update("m03", "g/v1", "")).is_some());
    }
}
