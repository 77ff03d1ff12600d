//! Walks over values along their [`Type`]: checking an applied configuration, listing the
//! fields a value sets, comparing two values, merging a configuration into an object, and
//! removing a set of fields from an object.
//!
//! These are the building blocks of [`super::apply`]. Their edge rules are the observable part
//! of server-side apply, so they follow kube-apiserver's: an empty (or null) map or list on both
//! sides is compared and merged as a leaf, to keep "empty" and "absent" apart; a map's own path
//! is listed only when it is an undeclared key, empty, or null (a declared struct field is
//! implied by its children); and list items are identified by value (sets) or by key fields
//! (maps), never by position.

use super::fieldset::FieldSet;
use super::path::{values_equal, Path, PathElement};
use super::schema::{FieldType, ListKind, ScalarKind, Shape, Type};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The identity of a list item: its value in a set, its key fields in a map-list.
pub fn item_element(kind: ListKind<'_>, item_type: Type<'_>, item: &Value) -> Result<PathElement, String> {
    match kind {
        ListKind::Atomic => Err("invalid indexing of non-associative list".into()),
        ListKind::Set => match item {
            Value::Object(_) => Err("associative list without keys has an element that's a map type".into()),
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => Err("associative list without keys has an element that's an explicit null".into()),
            scalar => Ok(PathElement::Value(scalar.clone())),
        },
        ListKind::Map(keys) => {
            let map = match item {
                Value::Object(map) => map,
                Value::Null => return Err("associative list with keys may not have a null element".into()),
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let mut fields: Vec<(String, Value)> = Vec::new();
            for key in keys {
                // A missing key field takes its schema default; without one it is left out, and
                // the item is identified by the key fields it has.
                if let Some(v) = map.get(key).or_else(|| item_type.field_default(key)) {
                    fields.push((key.clone(), v.clone()));
                }
            }
            if !keys.is_empty() && fields.is_empty() {
                let quoted: Vec<String> = keys.iter().map(|k| super::gojson::go_quote(k)).collect();
                return Err(format!(
                    "associative list with keys has an element that omits all key fields [{}] (and doesn't have default values for any key fields)",
                    quoted.join(" ")
                ));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
    }
}

/// Checks an applied configuration against its type, as kube-apiserver does before merging:
/// undeclared fields, wrong scalar types, list items without identity, duplicate items. Each
/// error is `path: message`, paths printed as in conflict messages.
pub fn validate(value: &Value, ty: Type<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    validate_at(value, ty, &mut String::new(), &mut errors);
    errors
}

fn push_error(errors: &mut Vec<String>, path: &str, message: String) {
    errors.push(if path.is_empty() { message } else { format!("{path}: {message}") });
}

fn validate_at(value: &Value, ty: Type<'_>, path: &mut String, errors: &mut Vec<String>) {
    if value.is_null() {
        return;
    }
    match ty.shape(Some(value)) {
        Shape::Scalar(kind) => {
            if let Some(message) = scalar_error(kind, value) {
                push_error(errors, path, message);
            }
        }
        Shape::Map { .. } => {
            let Value::Object(map) = value else {
                return push_error(errors, path, format!("expected map, got {}", go_sharp_v(value)));
            };
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                let child = ty.field(key).ty();
                match child {
                    Some(child) => validate_at(&map[key.as_str()], child, path, errors),
                    None => push_error(errors, path, "field not declared in schema".into()),
                }
                path.truncate(len);
                // kube-apiserver stops at the first undeclared field of a map.
                if child.is_none() {
                    return;
                }
            }
        }
        Shape::List(kind) => {
            let Value::Array(items) = value else {
                return push_error(errors, path, format!("expected list, got {}", go_sharp_v(value)));
            };
            let item_type = ty.items();
            let mut seen: BTreeSet<PathElement> = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let pe = match kind {
                    ListKind::Atomic => PathElement::Index(i),
                    _ => match item_element(kind, item_type, item) {
                        Ok(pe) => pe,
                        Err(e) => return push_error(errors, path, format!("element {i}: {e}")),
                    },
                };
                if !matches!(kind, ListKind::Atomic) && !seen.insert(pe.clone()) {
                    push_error(errors, path, format!("duplicate entries for key {pe}"));
                }
                let len = path.len();
                path.push_str(&pe.to_string());
                validate_at(item, item_type, path, errors);
                path.truncate(len);
            }
        }
    }
}

fn scalar_error(kind: ScalarKind, value: &Value) -> Option<String> {
    let ok = match kind {
        ScalarKind::String => value.is_string(),
        ScalarKind::Numeric => value.is_number(),
        ScalarKind::Boolean => value.is_boolean(),
        ScalarKind::Any => !value.is_object() && !value.is_array(),
    };
    if ok {
        return None;
    }
    Some(match kind {
        ScalarKind::String => format!("expected string, got {}", go_sharp_v(value)),
        ScalarKind::Numeric => format!("expected numeric (int or float), got {}", go_type(value)),
        ScalarKind::Boolean => format!("expected boolean, got {}", go_sharp_v(value)),
        ScalarKind::Any => format!("expected any scalar, got {}", go_sharp_v(value)),
    })
}

/// How Go names the type of a decoded JSON value (`%T`).
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Roughly how kube-apiserver prints an unexpected value in a type error (Go's `%#v` of its
/// value wrapper).
fn go_sharp_v(value: &Value) -> String {
    fn inner(v: &Value) -> String {
        match v {
            Value::String(s) => super::gojson::go_quote(s),
            Value::Array(items) => format!("[]interface {{}}{{{}}}", items.iter().map(inner).collect::<Vec<_>>().join(", ")),
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let parts: Vec<String> = entries.iter().map(|(k, v)| format!("{}:{}", super::gojson::go_quote(k), inner(v))).collect();
                format!("map[string]interface {{}}{{{}}}", parts.join(", "))
            }
            Value::Null => "interface {}(nil)".into(),
            other => other.to_string(),
        }
    }
    format!("&value.valueUnstructured{{Value:{}}}", inner(value))
}

/// The fields a value sets: every leaf, every list item, every undeclared map key, and every
/// empty or null map value.
pub fn field_set(value: &Value, ty: Type<'_>) -> FieldSet {
    let mut set = FieldSet::new();
    field_set_at(value, ty, &mut Vec::new(), &mut set);
    set
}

fn field_set_at(value: &Value, ty: Type<'_>, path: &mut Path, set: &mut FieldSet) {
    match ty.shape(Some(value)) {
        Shape::Scalar(_) | Shape::Map { atomic: true } | Shape::List(ListKind::Atomic) => set.insert(path),
        Shape::Map { atomic: false } => {
            let Value::Object(map) = value else { return };
            for (key, child) in map {
                let field = ty.field(key);
                path.push(PathElement::Field(key.clone()));
                field_set_at(child, field.ty().unwrap_or(Type::Deduced), path, set);
                let empty = child.is_null() || child.as_object().is_some_and(Map::is_empty);
                if empty || !matches!(field, FieldType::Named(_)) {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Shape::List(kind) => {
            let Value::Array(items) = value else { return };
            let item_type = ty.items();
            let elements: Vec<Option<PathElement>> = items.iter().map(|item| item_element(kind, item_type, item).ok()).collect();
            let mut counts: BTreeMap<&PathElement, usize> = BTreeMap::new();
            for pe in elements.iter().flatten() {
                *counts.entry(pe).or_default() += 1;
            }
            for (item, pe) in items.iter().zip(&elements) {
                let Some(pe) = pe else { continue };
                path.push(pe.clone());
                // A duplicated item is owned as a whole: its fields cannot be told apart.
                if counts[pe] == 1 {
                    field_set_at(item, item_type, path, set);
                }
                set.insert(path);
                path.pop();
            }
        }
    }
}

/// What changed between two versions of an object, as field sets.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Comparison {
    /// Fields only in the new version.
    pub added: FieldSet,
    /// Leaves whose value changed.
    pub modified: FieldSet,
    /// Fields only in the old version.
    pub removed: FieldSet,
}

impl Comparison {
    /// Drops the given fields and everything below them (fields a write may not own, such as
    /// `status` on the main resource).
    pub fn exclude(&mut self, ignored: &FieldSet) {
        if ignored.is_empty() {
            return;
        }
        self.added = self.added.recursive_difference(ignored);
        self.modified = self.modified.recursive_difference(ignored);
        self.removed = self.removed.recursive_difference(ignored);
    }

    /// Fields added or modified.
    pub fn changed(&self) -> FieldSet {
        self.modified.union(&self.added)
    }
}

/// Compares two versions of a value (`None`: absent).
pub fn compare(old: Option<&Value>, new: Option<&Value>, ty: Type<'_>) -> Comparison {
    let mut out = Comparison::default();
    compare_at(old, new, ty, &mut Vec::new(), &mut out);
    out
}

fn compare_leaf(old: Option<&Value>, new: Option<&Value>, path: &Path, out: &mut Comparison) {
    match (old, new) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(a), Some(b)) if !values_equal(a, b) => out.modified.insert(path),
        _ => {}
    }
}

/// Whether a container is absent, null or empty on its side.
fn hollow(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

fn compare_at(old: Option<&Value>, new: Option<&Value>, ty: Type<'_>, path: &mut Path, out: &mut Comparison) {
    let shape = ty.shape(new.or(old));
    let container_ok = |v: Option<&Value>, list: bool| match v {
        None | Some(Value::Null) => true,
        Some(v) => {
            if list {
                v.is_array()
            } else {
                v.is_object()
            }
        }
    };
    match shape {
        Shape::Scalar(_) | Shape::Map { atomic: true } | Shape::List(ListKind::Atomic) => return compare_leaf(old, new, path, out),
        Shape::Map { atomic: false } => {
            // Both empty: a leaf, so that `{}` and absent differ. Mismatched types: a leaf too.
            if (hollow(old) && hollow(new)) || !container_ok(old, false) || !container_ok(new, false) {
                return compare_leaf(old, new, path, out);
            }
            let empty = Map::new();
            let (a, b) = (old.and_then(Value::as_object).unwrap_or(&empty), new.and_then(Value::as_object).unwrap_or(&empty));
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                path.push(PathElement::Field(key.clone()));
                compare_at(a.get(key), b.get(key), ty.field(key).ty().unwrap_or(Type::Deduced), path, out);
                path.pop();
            }
        }
        Shape::List(kind) => {
            if (hollow(old) && hollow(new)) || !container_ok(old, true) || !container_ok(new, true) {
                return compare_leaf(old, new, path, out);
            }
            compare_items(old, new, kind, ty.items(), path, out);
        }
    }
    match (old, new) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        _ => {}
    }
}

/// Items grouped by identity, in first-seen order (old side first).
type Grouped<'v> = Vec<(PathElement, Vec<&'v Value>, Vec<&'v Value>)>;

fn compare_items(old: Option<&Value>, new: Option<&Value>, kind: ListKind<'_>, item_type: Type<'_>, path: &mut Path, out: &mut Comparison) {
    let mut groups: Grouped<'_> = Vec::new();
    let mut index: BTreeMap<PathElement, usize> = BTreeMap::new();
    for (side, list) in [(0, old), (1, new)] {
        for item in list.and_then(Value::as_array).into_iter().flatten() {
            let Ok(pe) = item_element(kind, item_type, item) else { continue };
            let at = *index.entry(pe.clone()).or_insert_with(|| {
                groups.push((pe, Vec::new(), Vec::new()));
                groups.len() - 1
            });
            if side == 0 {
                groups[at].1.push(item);
            } else {
                groups[at].2.push(item);
            }
        }
    }
    for (pe, olds, news) in groups {
        path.push(pe);
        match (olds.len(), news.len()) {
            (0..=1, 0..=1) => compare_at(olds.first().copied(), news.first().copied(), item_type, path, out),
            // Duplicated items are compared as a whole.
            (a, b) if a >= 2 && b >= 2 => {
                if a != b || olds.iter().zip(&news).any(|(x, y)| !values_equal(x, y)) {
                    out.modified.insert(path);
                }
            }
            (a, _) if a >= 2 => {
                if let Some(first) = news.first() {
                    compare_at(None, Some(first), item_type, path, out);
                }
                out.removed.insert(path);
            }
            _ => {
                if let Some(first) = olds.first() {
                    compare_at(Some(first), None, item_type, path, out);
                }
                out.added.insert(path);
            }
        }
        path.pop();
    }
}

/// Merges `config` into `live`: the configuration wins for every leaf it sets, granular maps
/// and associative lists are merged item by item, atomic ones replaced. `None` means absent.
pub fn merge(live: Option<&Value>, config: Option<&Value>, ty: Type<'_>) -> Option<Value> {
    let keep_config = || config.or(live).cloned();
    match ty.shape(config.or(live)) {
        Shape::Scalar(_) | Shape::Map { atomic: true } | Shape::List(ListKind::Atomic) => keep_config(),
        Shape::Map { atomic: false } => {
            let objects = |v: Option<&Value>| matches!(v, None | Some(Value::Null | Value::Object(_)));
            if (hollow(live) && hollow(config)) || !objects(live) || !objects(config) {
                return keep_config();
            }
            let empty = Map::new();
            let (a, b) = (live.and_then(Value::as_object).unwrap_or(&empty), config.and_then(Value::as_object).unwrap_or(&empty));
            let mut out = Map::new();
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                if let Some(v) = merge(a.get(key), b.get(key), ty.field(key).ty().unwrap_or(Type::Deduced)) {
                    out.insert(key.clone(), v);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Shape::List(kind) => {
            let lists = |v: Option<&Value>| matches!(v, None | Some(Value::Null | Value::Array(_)));
            if (hollow(live) && hollow(config)) || !lists(live) || !lists(config) {
                return keep_config();
            }
            let empty = Vec::new();
            let (a, b) = (live.and_then(Value::as_array).unwrap_or(&empty), config.and_then(Value::as_array).unwrap_or(&empty));
            match merge_items(a, b, kind, ty.items()) {
                Some(items) if !items.is_empty() => Some(Value::Array(items)),
                Some(_) => None,
                // Items without identity cannot be merged; the configuration replaces the list.
                None => keep_config(),
            }
        }
    }
}

/// Merges associative lists. Items only in the live list keep their place among their
/// neighbours; the configuration's items come in the configuration's order, a shared item
/// moving to where the configuration puts it, a new one after the configuration's previous item.
fn merge_items(live: &[Value], config: &[Value], kind: ListKind<'_>, item_type: Type<'_>) -> Option<Vec<Value>> {
    let ids = |items: &[Value]| -> Option<Vec<PathElement>> { items.iter().map(|i| item_element(kind, item_type, i).ok()).collect() };
    let (live_ids, config_ids) = (ids(live)?, ids(config)?);
    // Where each identity first appears, and how often in the live list.
    let mut live_at: BTreeMap<&PathElement, (usize, usize)> = BTreeMap::new();
    for (i, pe) in live_ids.iter().enumerate() {
        live_at.entry(pe).or_insert((i, 0)).1 += 1;
    }
    let mut config_at: BTreeMap<&PathElement, usize> = BTreeMap::new();
    for (i, pe) in config_ids.iter().enumerate() {
        config_at.entry(pe).or_insert(i);
    }
    // A duplicated live item is not merged: the configuration's item replaces all of them.
    let live_item = |pe: &PathElement| match live_at.get(pe) {
        Some(&(i, 1)) => Some(&live[i]),
        _ => None,
    };
    let config_item = |pe: &PathElement| config_at.get(pe).map(|&i| &config[i]);
    let in_config = |pe: &PathElement| config_at.contains_key(pe);
    // Items of both lists, in the configuration's order: the order the merge must follow.
    let mut shared = config_ids.iter().filter(|pe| live_at.contains_key(pe));
    let mut next_shared = shared.next();
    let mut done: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::new();
    let merged = |pe: &PathElement| merge(live_item(pe), config_item(pe), item_type);
    let (mut l, mut r) = (0, 0);
    while l < live_ids.len() || r < config_ids.len() {
        if l < live_ids.len() && r < config_ids.len() {
            let pe = &live_ids[l];
            if *pe == config_ids[r] {
                out.extend(merged(pe));
                done.insert(pe);
                l += 1;
                r += 1;
                next_shared = shared.next();
                continue;
            }
            // A shared item that the configuration places later: it is emitted there.
            if in_config(pe) && next_shared.is_some_and(|n| n != pe) {
                l += 1;
                continue;
            }
        }
        if l < live_ids.len() {
            let pe = &live_ids[l];
            if !in_config(pe) {
                out.extend(merge(Some(&live[l]), None, item_type));
                l += 1;
                continue;
            } else if done.contains(pe) {
                l += 1;
            }
        }
        if r < config_ids.len() {
            let pe = &config_ids[r];
            if done.insert(pe) {
                out.extend(merged(pe));
            }
            r += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
    }
    Some(out)
}

/// Removes the fields of `set` from `value`. A map or list left empty by the removal becomes
/// null (the caller drops nulls the schema does not allow).
pub fn remove_fields(value: &Value, set: &FieldSet, ty: Type<'_>) -> Value {
    match (ty.shape(Some(value)), value) {
        (Shape::Map { atomic: false }, Value::Object(map)) if !map.is_empty() => {
            let mut out = Map::new();
            for (key, child) in map {
                let pe = PathElement::Field(key.clone());
                if set.has_member(&pe) {
                    continue;
                }
                let kept = match set.child(&pe) {
                    Some(below) => remove_fields(child, below, ty.field(key).ty().unwrap_or(Type::Deduced)),
                    None => child.clone(),
                };
                out.insert(key.clone(), kept);
            }
            if out.is_empty() {
                Value::Null
            } else {
                Value::Object(out)
            }
        }
        (Shape::List(kind @ (ListKind::Set | ListKind::Map(_))), Value::Array(items)) if !items.is_empty() => {
            let item_type = ty.items();
            let mut out = Vec::new();
            for item in items {
                let Ok(pe) = item_element(kind, item_type, item) else {
                    out.push(item.clone());
                    continue;
                };
                if set.has_member(&pe) {
                    continue;
                }
                out.push(match set.child(&pe) {
                    Some(below) => remove_fields(item, below, item_type),
                    None => item.clone(),
                });
            }
            if out.is_empty() {
                Value::Null
            } else {
                Value::Array(out)
            }
        }
        _ => value.clone(),
    }
}

/// `set` plus the declared (named) fields that have members below them. A set lists a struct
/// field only through its children; pruning must treat the field itself as owned too.
pub fn with_named_parents(set: &FieldSet, ty: Type<'_>) -> FieldSet {
    let mut out = FieldSet::new();
    for pe in set.members() {
        out.insert_member(pe.clone());
    }
    for (pe, child) in set.children() {
        let child_type = match pe {
            PathElement::Field(name) => {
                let field = ty.field(name);
                if matches!(field, FieldType::Named(_)) {
                    out.insert_member(pe.clone());
                }
                field.ty().unwrap_or(Type::Deduced)
            }
            PathElement::Key(_) => ty.items(),
            _ => Type::Deduced,
        };
        out.set_child(pe.clone(), with_named_parents(child, child_type));
    }
    out
}

/// Drops `null` values where the schema neither allows null nor has a default, as
/// kube-apiserver's custom resource decoding does; `metadata` never keeps nulls.
pub fn drop_disallowed_nulls(value: &mut Value, ty: Type<'_>) {
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_type = ty.field(&key).ty();
                let null_allowed = match child_type {
                    Some(Type::Node(s)) => s.nullable || s.default.is_some(),
                    Some(Type::Meta(_)) => false,
                    Some(Type::Deduced) | Some(Type::Root(_)) | None => true,
                };
                if map[&key].is_null() && !null_allowed {
                    map.remove(&key);
                } else if let Some(t) = child_type {
                    drop_disallowed_nulls(map.get_mut(&key).expect("key exists"), t);
                }
            }
        }
        Value::Array(items) => {
            let item_type = ty.items();
            items.iter_mut().for_each(|i| drop_disallowed_nulls(i, item_type));
        }
        _ => {}
    }
}
