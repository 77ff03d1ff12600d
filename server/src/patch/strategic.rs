//! Strategic merge patch (`application/strategic-merge-patch+json`), driven by the schema.
//!
//! This is Kubernetes' strategic merge patch as kube-apiserver applies it
//! (`k8s.io/apimachinery/pkg/util/strategicpatch`), except that the merge strategy and merge
//! key of a field come from our [`Schema`] (`patch_strategy` / `patch_merge_key`, i.e.
//! `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`) instead of Go struct tags.
//!
//! # Semantics
//!
//! * **Maps** merge recursively. A `null` value deletes the key. A map field whose strategy
//!   is `replace` is replaced by the patch map.
//! * **Lists** are replaced wholesale unless the field's strategy contains `merge`:
//!   * a merge list of objects matches items by the merge key: matched items are merged
//!     recursively, new items are appended;
//!   * a merge list of scalars is the union of both lists, without duplicates.
//!
//!   After a merge, the items the patch names come in patch order and the items only the
//!   original has keep their relative order. The two sequences are interleaved as kube's
//!   `mergeSortedSlice` does: a server-only item goes before a patch item only when the
//!   original list had it before that item, so new items come before the server-only items
//!   that have not been placed yet. `$setElementOrder` orders the same way, with its list in
//!   place of the patch list.
//! * **Implicit strategies** (our extension for CRDs, applied only when `patch_strategy`
//!   names neither `merge` nor `replace`): a list with `x-kubernetes-list-type: map` and
//!   exactly one `x-kubernetes-list-map-keys` entry merges with that key; a list with
//!   `x-kubernetes-list-type: set` merges as a set of scalars. The single list-map key also
//!   serves as the merge key of an explicit `merge` list that has no `patch_merge_key`.
//! * **Fields without schema** (unknown fields, `x-kubernetes-preserve-unknown-fields`)
//!   behave as JSON merge patch: maps merge, lists are replaced. Directives still work.
//!
//! # Directives
//!
//! * `$patch: replace` in a map replaces the whole map with the rest of the patch map; as a
//!   list item (`{"$patch": "replace"}`) of a merge list of objects it replaces the list with
//!   the other patch items.
//! * `$patch: delete` in a map turns the map into `{}` (or leaves the field out when there
//!   was none); a merge-list item `{"<key>": "x", "$patch": "delete"}` removes every item
//!   whose merge key is `x`.
//! * `$patch: merge` in a map is the default and changes nothing.
//! * `$retainKeys: [..]` removes every key of the original map not in the list, after
//!   checking that the patch sets no key outside it.
//! * `$setElementOrder/<field>: [..]` fixes the order of the merged list `<field>`.
//! * `$deleteFromPrimitiveList/<field>: [..]` removes these values from the list `<field>`.
//!
//! Directive keys never reach the result: values that have no counterpart in the original
//! (new keys, new list items, replacements) are built by applying them to an empty value,
//! which strips directives and drops `null` map entries.
//!
//! Errors use kube's wording, including its Go rendering of values (`map[name:a]`).
//!
//! # Deviations from kube
//!
//! * kube copies some patch values into the result as they are, directives and `null`s
//!   included: items appended to a merge list, lists of fields without `merge` strategy,
//!   the body of a `$patch: replace` map, `$retainKeys`/`$setElementOrder` inside new maps.
//!   Here they are always applied to an empty value first (see above).
//! * `$patch: replace` for a map field the original lacks adds the rest of the map; kube
//!   drops the field. `$patch: merge` in a map is accepted; kube rejects it as an unknown
//!   patch type. An unknown `$patch` in a new map is an error; kube drops the map silently.
//! * Fields the schema does not know are merged as JSON merge patch; kube's struct-driven
//!   lookup fails with `unable to find api field`.
//! * All JSON numbers are one item type (kube tells `int64` from `float64` apart and refuses
//!   to merge lists mixing them).
//! * `$setElementOrder` of a list that is empty or absent on both sides yields an empty list
//!   (kube: `no elements in any of the given slices`); directive items at the end of the
//!   patch list do not make the order check fail.
//! * `$deleteFromPrimitiveList/<field>: null` and delete lists aimed at a non-list are no-ops;
//!   kube deletes the field, respectively merges or rejects.
//! * kube's ordering under `$setElementOrder` after `$patch: delete` depends on how its merge
//!   reuses the original list's storage; that observable order is reproduced deliberately
//!   (see `merge_for_set_element_order`). Elsewhere the same in-place effects only matter for
//!   originals that already contain duplicates, where this module uses the original order.

use apimodel::{ListType, Schema, SchemaKind};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};

/// The key of the `$patch` directive.
const DIRECTIVE_MARKER: &str = "$patch";
/// The key of the `$retainKeys` directive.
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
/// The prefix of `$setElementOrder/<field>` keys.
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";
/// The prefix of `$deleteFromPrimitiveList/<field>` keys.
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";

/// Why a strategic merge patch could not be applied (the request is invalid).
#[derive(Debug, Clone, PartialEq)]
pub struct StrategicMergeError {
    /// Human-readable reason, in Kubernetes' wording where it has one.
    pub message: String,
}

impl StrategicMergeError {
    fn new(message: impl Into<String>) -> Self {
        StrategicMergeError { message: message.into() }
    }
}

impl fmt::Display for StrategicMergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StrategicMergeError {}

type Result<T> = std::result::Result<T, StrategicMergeError>;

/// Applies the strategic merge `patch` to `original`, the schema of both being `schema`
/// (`None`: no schema, plain JSON-merge-patch behaviour with directives).
///
/// Both documents must be JSON objects (`original` may also be `null`, meaning `{}`).
/// The inputs are not modified; the patched document is returned.
pub fn strategic_merge(original: &Value, patch: &Value, schema: Option<&Schema>) -> std::result::Result<Value, StrategicMergeError> {
    let patch = patch.as_object().ok_or_else(bad_json_document)?;
    let original = match original {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        _ => return Err(bad_json_document()),
    };
    merge_map(original, patch, schema).map(Value::Object)
}

// ---------------------------------------------------------------------------------------------
// Patch metadata from the schema
// ---------------------------------------------------------------------------------------------

/// How a field's value is combined with the patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    /// No strategy: maps merge, lists are replaced.
    Default,
    /// `merge`: maps merge, lists merge.
    Merge,
    /// `replace`: the patch value replaces the original.
    Replace,
}

/// The patch metadata of one field, resolved from its schema node.
#[derive(Debug, Clone, Copy)]
struct FieldMeta<'s> {
    strategy: Strategy,
    merge_key: Option<&'s str>,
}

impl FieldMeta<'_> {
    /// Metadata of a field the schema knows nothing about.
    const UNKNOWN: FieldMeta<'static> = FieldMeta { strategy: Strategy::Default, merge_key: None };
}

/// Resolves the strategy and merge key of a field from its schema node.
fn field_meta(schema: Option<&Schema>) -> Result<FieldMeta<'_>> {
    let Some(schema) = schema else {
        return Ok(FieldMeta::UNKNOWN);
    };
    let explicit = explicit_strategy(schema.patch_strategy.as_deref())?;
    let (list_type, list_map_keys) = match &schema.kind {
        SchemaKind::Array { list_type, list_map_keys, .. } => (*list_type, list_map_keys.as_slice()),
        _ => (None, &[][..]),
    };
    let list_map_key = match (list_type, list_map_keys) {
        (Some(ListType::Map), [key]) => Some(key.as_str()),
        _ => None,
    };
    let strategy = match explicit {
        Some(strategy) => strategy,
        None if list_map_key.is_some() || list_type == Some(ListType::Set) => Strategy::Merge,
        None => Strategy::Default,
    };
    let merge_key = schema.patch_merge_key.as_deref().or(list_map_key);
    Ok(FieldMeta { strategy, merge_key })
}

/// Parses `x-kubernetes-patch-strategy`: at most two comma-separated strategies, one of which
/// must be `retainKeys` when there are two. `retainKeys` needs nothing at apply time (the
/// `$retainKeys` directive is honoured wherever it appears), so only `merge`/`replace` count.
fn explicit_strategy(value: Option<&str>) -> Result<Option<Strategy>> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let other = match parts.as_slice() {
        [single] => *single,
        ["retainKeys", other] | [other, "retainKeys"] => *other,
        _ => return Err(StrategicMergeError::new(format!("unexpected patch strategy: [{}]", parts.join(" ")))),
    };
    Ok(match other {
        "merge" => Some(Strategy::Merge),
        "replace" => Some(Strategy::Replace),
        _ => None,
    })
}

/// The schema of the items of a list node.
fn item_schema(schema: Option<&Schema>) -> Option<&Schema> {
    match &schema?.kind {
        SchemaKind::Array { items, .. } => Some(items),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Maps
// ---------------------------------------------------------------------------------------------

/// Merges the patch map into `original` (kube's `mergeMap`).
fn merge_map(mut original: Map<String, Value>, patch: &Map<String, Value>, schema: Option<&Schema>) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        match directive.as_str() {
            Some("replace") => {
                let mut rest = patch.clone();
                rest.shift_remove(DIRECTIVE_MARKER);
                return merge_map(Map::new(), &rest, schema);
            }
            Some("delete") => return Ok(Map::new()),
            Some("merge") => {}
            _ => return Err(unknown_patch_type(directive, patch)),
        }
    }

    apply_retain_keys(&mut original, patch)?;
    let ordered_fields = apply_set_element_orders(&mut original, patch, schema)?;

    // Keys to remove are collected and removed in one pass at the end: removing from an
    // ordered map one key at a time costs the map's length each.
    let mut removed = HashSet::new();
    let mut deletions = Vec::new();
    for (key, value) in patch {
        if key == DIRECTIVE_MARKER || key == RETAIN_KEYS_DIRECTIVE || key.starts_with(SET_ELEMENT_ORDER_PREFIX) {
            continue;
        }
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            let field = directive_field(key, DELETE_FROM_PRIMITIVE_LIST_PREFIX, bad_primitive_list_format)?;
            deletions.push((field, value));
            continue;
        }
        if ordered_fields.contains(&key.as_str()) {
            continue;
        }
        if !merge_field(&mut original, key, value, schema.and_then(|s| s.child(key)))? {
            removed.insert(key.as_str());
        }
    }
    if !removed.is_empty() {
        original.retain(|key, _| !removed.contains(key.as_str()));
    }

    for (field, values) in deletions {
        delete_from_primitive_list(&mut original, field, values);
    }
    Ok(original)
}

/// Applies the patch value of one key of a map. Returns `false` when the key must go: the
/// caller removes it (keys of one patch map are distinct, so no later step of the same merge
/// sees it).
fn merge_field(original: &mut Map<String, Value>, key: &str, patch: &Value, schema: Option<&Schema>) -> Result<bool> {
    if patch.is_null() {
        return Ok(false);
    }
    let merged = match original.get_mut(key) {
        Some(existing) => merge_value(std::mem::take(existing), patch, key, schema)?,
        None => materialize(patch, schema)?,
    };
    match merged {
        Some(value) => {
            original.insert(key.to_owned(), value);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Combines an existing value with its (non-null) patch. `None` means the key goes away.
fn merge_value(original: Value, patch: &Value, key: &str, schema: Option<&Schema>) -> Result<Option<Value>> {
    match (original, patch) {
        (Value::Object(original), Value::Object(patch)) => {
            let base = match field_meta(schema)?.strategy {
                Strategy::Replace => Map::new(),
                Strategy::Default | Strategy::Merge => original,
            };
            Ok(Some(Value::Object(merge_map(base, patch, schema)?)))
        }
        (Value::Array(original), Value::Array(patch)) => {
            let meta = field_meta(schema)?;
            Ok(Some(Value::Array(merge_list(original, patch, meta, key, item_schema(schema))?)))
        }
        // Scalars, or a change of type: the patch value wins.
        (_, patch) => materialize(patch, schema),
    }
}

/// Builds the value a patch value stands for when there is nothing to merge it into: maps
/// lose their `null` entries and directives, lists lose their directive items. `None` when
/// the value is itself a `$patch: delete` map.
fn materialize(patch: &Value, schema: Option<&Schema>) -> Result<Option<Value>> {
    match patch {
        Value::Object(map) => {
            if map.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some("delete") {
                return Ok(None);
            }
            Ok(Some(Value::Object(merge_map(Map::new(), map, schema)?)))
        }
        Value::Array(items) => Ok(Some(Value::Array(materialize_list(items, item_schema(schema))?))),
        scalar => Ok(Some(scalar.clone())),
    }
}

/// Materializes every item of a list, dropping items that carry a `$patch` directive (they
/// have no meaning without an original list).
fn materialize_list(items: &[Value], item_schema: Option<&Schema>) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items.iter().filter(|item| !has_directive_marker(item)) {
        out.extend(materialize(item, item_schema)?);
    }
    Ok(out)
}

/// Whether a value is a map carrying `$patch`.
fn has_directive_marker(value: &Value) -> bool {
    value.as_object().is_some_and(|map| map.contains_key(DIRECTIVE_MARKER))
}

/// The field a `<prefix>/<field>` directive key names.
fn directive_field<'k>(key: &'k str, prefix: &str, malformed: fn() -> StrategicMergeError) -> Result<&'k str> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field),
        _ => Err(malformed()),
    }
}

/// `$retainKeys`: drops the keys of `original` that are not listed, after checking that the
/// patch only sets listed keys.
fn apply_retain_keys(original: &mut Map<String, Value>, patch: &Map<String, Value>) -> Result<()> {
    let Some(retain) = patch.get(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let retained: HashSet<&str> = retain.as_array().ok_or_else(bad_retain_keys_format)?.iter().filter_map(Value::as_str).collect();
    let is_retained = |key: &str| retained.contains(key);
    let sets_unlisted_key = patch.iter().any(|(key, value)| {
        !value.is_null()
            && key != RETAIN_KEYS_DIRECTIVE
            && key != DIRECTIVE_MARKER
            && !key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            && !key.starts_with(SET_ELEMENT_ORDER_PREFIX)
            && !is_retained(key)
    });
    if sets_unlisted_key {
        return Err(bad_retain_keys_format());
    }
    original.retain(|key, _| is_retained(key));
    Ok(())
}

/// `$deleteFromPrimitiveList/<field>`: removes every listed value from the list `<field>`.
/// Nothing happens when the field is absent or not a list.
fn delete_from_primitive_list(original: &mut Map<String, Value>, field: &str, values: &Value) {
    if let (Some(Value::Array(list)), Value::Array(doomed)) = (original.get_mut(field), values) {
        let doomed: HashSet<Hashed<'_>> = doomed.iter().map(Hashed).collect();
        list.retain(|item| !doomed.contains(&Hashed(item)));
    }
}

// ---------------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------------

/// How list items are told apart when merging and ordering.
#[derive(Debug, Clone, Copy)]
enum Identity<'k> {
    /// By the whole value (lists of scalars).
    Whole,
    /// By the value of the merge key (lists of maps).
    Key(&'k str),
}

impl Identity<'_> {
    /// The identity of an item; a map without the key is identified by `null`.
    fn of(self, item: &Value) -> Value {
        match self {
            Identity::Whole => item.clone(),
            Identity::Key(key) => item.get(key).cloned().unwrap_or(Value::Null),
        }
    }

    /// The identities of all items of a list.
    fn all(self, items: &[Value]) -> Vec<Value> {
        items.iter().map(|item| self.of(item)).collect()
    }
}

/// A value as a hash key, equal to another exactly when the values are `==` (maps regardless of
/// key order). Lists are matched through hash maps of these: comparing every item with every
/// other is quadratic, minutes of CPU for lists of some ten thousand items.
#[derive(Clone, Copy)]
struct Hashed<'v>(&'v Value);

impl PartialEq for Hashed<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Hashed<'_> {}

impl Hash for Hashed<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_value(self.0, state);
    }
}

/// [`Hashed`], owning its value.
struct HashedValue(Value);

impl PartialEq for HashedValue {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for HashedValue {}

impl Hash for HashedValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_value(&self.0, state);
    }
}

fn hash_value<H: Hasher>(value: &Value, state: &mut H) {
    std::mem::discriminant(value).hash(state);
    match value {
        Value::Null => {}
        Value::Bool(b) => b.hash(state),
        Value::Number(n) => n.hash(state),
        Value::String(s) => s.hash(state),
        Value::Array(items) => {
            items.len().hash(state);
            items.iter().for_each(|item| hash_value(item, state));
        }
        Value::Object(map) => {
            // Equal maps may list their keys in another order: entries are hashed apart and
            // combined by a sum, which does not depend on the order.
            let sum = map.iter().fold(0u64, |sum, (key, value)| {
                let mut entry = std::collections::hash_map::DefaultHasher::new();
                key.hash(&mut entry);
                hash_value(value, &mut entry);
                sum.wrapping_add(entry.finish())
            });
            map.len().hash(state);
            sum.hash(state);
        }
    }
}

/// The first position of every identity in a list of identities.
fn first_positions(order: &[Value]) -> HashMap<Hashed<'_>, usize> {
    let mut positions = HashMap::with_capacity(order.len());
    for (i, id) in order.iter().enumerate() {
        positions.entry(Hashed(id)).or_insert(i);
    }
    positions
}

/// The JSON type of every item of a list, as far as merging cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Null,
    Bool,
    Number,
    String,
    List,
    Map,
}

impl ItemKind {
    fn of(value: &Value) -> ItemKind {
        match value {
            Value::Null => ItemKind::Null,
            Value::Bool(_) => ItemKind::Bool,
            Value::Number(_) => ItemKind::Number,
            Value::String(_) => ItemKind::String,
            Value::Array(_) => ItemKind::List,
            Value::Object(_) => ItemKind::Map,
        }
    }
}

/// The common item type of two lists (`None` when both are empty). Lists of lists and lists
/// mixing types cannot be merged.
fn common_item_kind(original: &[Value], patch: &[Value]) -> Result<Option<ItemKind>> {
    let mut kinds = original.iter().chain(patch).map(ItemKind::of);
    let Some(first) = kinds.next() else {
        return Ok(None);
    };
    if first == ItemKind::List {
        return Err(StrategicMergeError::new("lists of lists are not supported"));
    }
    if kinds.any(|kind| kind != first) {
        return Err(StrategicMergeError::new(format!(
            "list element types are not identical: [{} {}]",
            go_format_list(original),
            go_format_list(patch)
        )));
    }
    Ok(Some(first))
}

/// Combines an existing list with its patch according to the field's metadata (kube's
/// `mergeSliceHandler` / `mergeSlice`).
fn merge_list(original: Vec<Value>, patch: &[Value], meta: FieldMeta<'_>, field: &str, item_schema: Option<&Schema>) -> Result<Vec<Value>> {
    if meta.strategy != Strategy::Merge {
        return materialize_list(patch, item_schema);
    }
    Ok(merge_list_unordered(original, patch, meta, field, item_schema)?.into_ordered())
}

/// A merged list before its final ordering.
struct MergedList<'k> {
    /// Surviving original items (merged with their patch items) in original order, then the
    /// new items in patch order.
    items: Vec<Value>,
    /// How items are told apart.
    identity: Identity<'k>,
    /// Identities the patch names, in patch order.
    patch_order: Vec<Value>,
    /// Identities of the original items after deletions: where server-only items belong.
    server_order: Vec<Value>,
    /// How many original items `$patch: delete` items removed.
    deleted: usize,
}

impl MergedList<'_> {
    /// Orders the items: those the patch names in patch order, interleaved with the
    /// server-only ones in their original order (kube's `normalizeElementOrder`).
    fn into_ordered(self) -> Vec<Value> {
        order_merged_list(self.items, &self.patch_order, &self.server_order, self.identity)
    }
}

/// Merges two lists of a `merge` field, leaving the ordering to the caller.
fn merge_list_unordered<'k>(
    original: Vec<Value>,
    patch: &[Value],
    meta: FieldMeta<'k>,
    field: &str,
    item_schema: Option<&Schema>,
) -> Result<MergedList<'k>> {
    match common_item_kind(&original, patch)? {
        Some(ItemKind::Map) => {
            let key =
                meta.merge_key.ok_or_else(|| StrategicMergeError::new(format!("cannot merge lists without merge key for {field}")))?;
            merge_keyed_list(original, patch, key, item_schema)
        }
        _ => Ok(merge_scalar_list(original, patch)),
    }
}

/// Merges a list of scalars: the union of both lists without duplicates.
fn merge_scalar_list(original: Vec<Value>, patch: &[Value]) -> MergedList<'static> {
    let mut items: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    let mut seen = HashSet::with_capacity(original.len() + patch.len());
    for item in original.iter().chain(patch) {
        if seen.insert(Hashed(item)) {
            items.push(item.clone());
        }
    }
    MergedList { items, identity: Identity::Whole, patch_order: patch.to_vec(), server_order: original, deleted: 0 }
}

/// Merges a list of maps by merge key, honouring `$patch` items.
fn merge_keyed_list<'k>(mut original: Vec<Value>, patch: &[Value], key: &'k str, item_schema: Option<&Schema>) -> Result<MergedList<'k>> {
    let identity = Identity::Key(key);
    let original_len = original.len();
    let mut replace = false;
    let mut patch_items = Vec::with_capacity(patch.len());
    let mut doomed = HashSet::new();
    for item in patch {
        let map = as_map(item)?;
        let Some(directive) = map.get(DIRECTIVE_MARKER) else {
            patch_items.push(map);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                doomed.insert(Hashed(map.get(key).ok_or_else(|| no_merge_key(map, key))?));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(StrategicMergeError::new("merging lists cannot yet be specified in the patch")),
            _ => return Err(unknown_patch_type(directive, map)),
        }
    }
    if !doomed.is_empty() {
        original.retain(|existing| existing.get(key).is_none_or(|id| !doomed.contains(&Hashed(id))));
    }

    if replace {
        // The other patch items (without their directives) become the list.
        let mut items = Vec::with_capacity(patch_items.len());
        for map in patch_items {
            require_merge_key(map, key)?;
            items.push(Value::Object(merge_map(Map::new(), map, item_schema)?));
        }
        let server_order = identity.all(&items);
        return Ok(MergedList { items, identity, patch_order: Vec::new(), server_order, deleted: 0 });
    }

    let deleted = original_len - original.len();
    let server_order = identity.all(&original);
    let mut items = original;
    // Positions of the items having each merge key value, in order. An item keeps its value
    // when merged (the patch item has the same one), except that a `null` value removes the
    // key: entries are checked against the item before use.
    let mut positions: HashMap<HashedValue, Vec<usize>> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(id) = item.get(key) {
            positions.entry(HashedValue(id.clone())).or_default().push(i);
        }
    }
    for map in &patch_items {
        let id = map.get(key).ok_or_else(|| no_merge_key(map, key))?;
        let found = positions.get(&HashedValue(id.clone())).and_then(|at| at.iter().copied().find(|&i| items[i].get(key) == Some(id)));
        match found {
            Some(index) => {
                let existing = match std::mem::take(&mut items[index]) {
                    Value::Object(existing) => existing,
                    _ => Map::new(),
                };
                items[index] = Value::Object(merge_map(existing, map, item_schema)?);
            }
            None => {
                let item = Value::Object(merge_map(Map::new(), map, item_schema)?);
                if item.get(key) == Some(id) {
                    positions.entry(HashedValue(id.clone())).or_default().push(items.len());
                }
                items.push(item);
            }
        }
    }
    for item in &items {
        require_merge_key(as_map(item)?, key)?;
    }
    let patch_order = patch_items.iter().map(|map| map.get(key).cloned().unwrap_or(Value::Null)).collect();
    Ok(MergedList { items, identity, patch_order, server_order, deleted })
}

/// Orders merged items: those named in `patch_order` sorted by it, interleaved with the
/// others (server-only) sorted by `server_order`.
fn order_merged_list(items: Vec<Value>, patch_order: &[Value], server_order: &[Value], identity: Identity<'_>) -> Vec<Value> {
    let patch_positions = first_positions(patch_order);
    let server_positions = first_positions(server_order);
    let (from_patch, server_only): (Vec<Value>, Vec<Value>) =
        items.into_iter().partition(|item| patch_positions.contains_key(&Hashed(&identity.of(item))));
    let from_patch = sort_by_reference(from_patch, &patch_positions, identity);
    let server_only = sort_by_reference(server_only, &server_positions, identity);
    interleave(server_only, from_patch, &server_positions, identity)
}

/// Stable sort of `items` by the position of their identity in an order (unknown ones last).
fn sort_by_reference(mut items: Vec<Value>, positions: &HashMap<Hashed<'_>, usize>, identity: Identity<'_>) -> Vec<Value> {
    items.sort_by_cached_key(|item| position_of(positions, item, identity).unwrap_or(usize::MAX));
    items
}

/// The first position of an item's identity in an order.
fn position_of(positions: &HashMap<Hashed<'_>, usize>, item: &Value, identity: Identity<'_>) -> Option<usize> {
    positions.get(&Hashed(&identity.of(item))).copied()
}

/// Merges two sorted lists, keeping the relative order within each: a server-only item goes
/// first when the original list has it before the patch item it competes with; otherwise
/// (including when either is new) the patch item goes first (kube's `mergeSortedSlice`).
fn interleave(
    server_only: Vec<Value>,
    from_patch: Vec<Value>,
    server_positions: &HashMap<Hashed<'_>, usize>,
    identity: Identity<'_>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(server_only.len() + from_patch.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = from_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => {
                let l = position_of(server_positions, l, identity);
                let r = position_of(server_positions, r, identity);
                matches!((l, r), (Some(l), Some(r)) if l < r)
            }
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// $setElementOrder
// ---------------------------------------------------------------------------------------------

/// Processes every `$setElementOrder/<field>` directive of a patch map: merges `<field>` and
/// orders it. Returns the fields handled, which the main merge loop then skips.
fn apply_set_element_orders<'p>(
    original: &mut Map<String, Value>,
    patch: &'p Map<String, Value>,
    schema: Option<&Schema>,
) -> Result<HashSet<&'p str>> {
    let mut handled = HashSet::new();
    for (key, order) in patch {
        if key.starts_with(SET_ELEMENT_ORDER_PREFIX) {
            let field = directive_field(key, SET_ELEMENT_ORDER_PREFIX, bad_set_element_order_format)?;
            apply_set_element_order(original, patch, field, order, schema.and_then(|s| s.child(field)))?;
            handled.insert(field);
        }
    }
    Ok(handled)
}

/// Merges the list `field` of the patch into the original and orders the result by `order`:
/// the items it names come in its order, the others keep their original order and are
/// interleaved as after a merge (kube's `mergePatchIntoOriginal`).
fn apply_set_element_order(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    field: &str,
    order: &Value,
    field_schema: Option<&Schema>,
) -> Result<()> {
    let order = order.as_array().ok_or_else(|| bad_arg_type("[]interface {}", order))?;
    let meta = field_meta(field_schema)?;
    let original_list = optional_list(original.get(field))?;
    let patch_list = optional_list(patch.get(field))?;
    check_patch_follows_order(patch_list.unwrap_or_default(), order, meta.merge_key)?;
    if original_list.is_none() && patch_list.is_none() {
        return Ok(());
    }

    let identity = list_identity(original_list, patch_list, meta.merge_key)?;
    let items = item_schema(field_schema);
    let (merged, server_order) = merge_for_set_element_order(original_list, patch_list, meta, field, items, identity)?;
    if let Identity::Key(key) = identity {
        for item in merged.iter().chain(order) {
            require_merge_key(as_map(item)?, key)?;
        }
    }
    let ordered = order_merged_list(merged, &identity.all(order), &server_order, identity);
    original.insert(field.to_owned(), Value::Array(ordered));
    Ok(())
}

/// How the items of a list are told apart: by merge key for maps, by value otherwise.
fn list_identity<'k>(original: Option<&[Value]>, patch: Option<&[Value]>, merge_key: Option<&'k str>) -> Result<Identity<'k>> {
    let kind = common_item_kind(original.unwrap_or_default(), patch.unwrap_or_default())?;
    Ok(match (kind, merge_key) {
        (Some(ItemKind::Map), Some(key)) => Identity::Key(key),
        _ => Identity::Whole,
    })
}

/// Merges the list `field` for a `$setElementOrder` directive. Returns the merged items and
/// the order in which server-only items are placed.
///
/// kube merges keyed lists in place, inside the storage of the original list, and then places
/// server-only items by what that storage holds: the items that survived `$patch: delete`,
/// followed by as many of the newly added items as there were deletions (they reuse the freed
/// slots). A server-only item thus goes before those new items rather than after them. This
/// observable ordering (exercised by kube's own tests) is reproduced here.
fn merge_for_set_element_order(
    original: Option<&[Value]>,
    patch: Option<&[Value]>,
    meta: FieldMeta<'_>,
    field: &str,
    item_schema: Option<&Schema>,
    identity: Identity<'_>,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let original_order = identity.all(original.unwrap_or_default());
    Ok(match (original, patch) {
        (Some(original), Some(patch)) if meta.strategy == Strategy::Merge => {
            let merged = merge_list_unordered(original.to_vec(), patch, meta, field, item_schema)?;
            let server_order = if merged.deleted == 0 {
                original_order
            } else {
                let visible = (merged.server_order.len() + merged.deleted).min(merged.items.len());
                merged.identity.all(&merged.items[..visible])
            };
            (merged.items, server_order)
        }
        (_, Some(patch)) => (materialize_list(patch, item_schema)?, original_order),
        (original, None) => (original.unwrap_or_default().to_vec(), original_order),
    })
}

/// A value that must be a list when present.
fn optional_list(value: Option<&Value>) -> Result<Option<&[Value]>> {
    match value {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.as_slice())),
        Some(other) => Err(bad_arg_type("[]interface {}", other)),
    }
}

/// Checks that the patch list names its items in the order of the `$setElementOrder` list
/// (ignoring deletions and directive items), and names no item missing from it.
fn check_patch_follows_order(patch: &[Value], order: &[Value], merge_key: Option<&str>) -> Result<()> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut named = Vec::with_capacity(patch.len());
    for item in patch {
        if merge_key.is_some() {
            let map = as_map(item)?;
            if map.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some("delete") {
                continue;
            }
        }
        if !has_directive_marker(item) {
            named.push(item);
        }
    }
    let mut next = 0;
    for expected in order {
        let Some(item) = named.get(next) else { break };
        if same_list_item(item, expected, merge_key)? {
            next += 1;
        }
    }
    if next < named.len() {
        return Err(StrategicMergeError::new(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            go_format_list(patch),
            go_format_list(order)
        )));
    }
    Ok(())
}

/// Whether two list items denote the same element (by merge key when there is one).
fn same_list_item(left: &Value, right: &Value, merge_key: Option<&str>) -> Result<bool> {
    let Some(key) = merge_key else {
        return Ok(left == right);
    };
    let (left, right) = (as_map(left)?, as_map(right)?);
    let left = left.get(key).ok_or_else(|| no_merge_key(left, key))?;
    let right = right.get(key).ok_or_else(|| no_merge_key(right, key))?;
    Ok(left == right)
}

// ---------------------------------------------------------------------------------------------
// Errors and Go-style rendering
// ---------------------------------------------------------------------------------------------

/// A list item that must be a map.
fn as_map(value: &Value) -> Result<&Map<String, Value>> {
    value.as_object().ok_or_else(|| bad_arg_type("map[string]interface {}", value))
}

/// Fails unless the map has the merge key.
fn require_merge_key(map: &Map<String, Value>, key: &str) -> Result<()> {
    if map.contains_key(key) {
        Ok(())
    } else {
        Err(no_merge_key(map, key))
    }
}

fn bad_json_document() -> StrategicMergeError {
    StrategicMergeError::new("invalid JSON document")
}

fn bad_retain_keys_format() -> StrategicMergeError {
    StrategicMergeError::new("invalid patch format of retainKeys")
}

fn bad_set_element_order_format() -> StrategicMergeError {
    StrategicMergeError::new("invalid patch format of setElementOrder list")
}

fn bad_primitive_list_format() -> StrategicMergeError {
    StrategicMergeError::new("invalid patch format of primitive list")
}

fn no_merge_key(map: &Map<String, Value>, key: &str) -> StrategicMergeError {
    StrategicMergeError::new(format!("map: {} does not contain declared merge key: {key}", go_format_map(map)))
}

fn bad_arg_type(expected: &str, actual: &Value) -> StrategicMergeError {
    StrategicMergeError::new(format!("expected a {expected}, but received a {}", go_type_name(actual)))
}

fn unknown_patch_type(directive: &Value, map: &Map<String, Value>) -> StrategicMergeError {
    let directive = match directive {
        Value::String(s) => s.clone(),
        other => format!("%!s({}={})", go_type_name(other), go_format(other)),
    };
    StrategicMergeError::new(format!("unknown patch type: {directive} in map: {}", go_format_map(map)))
}

/// The Go type a decoded JSON value has in kube (`reflect.TypeOf`).
fn go_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Renders a value as Go's `%v` does for decoded JSON (`map[a:1 b:[x y]]`).
fn go_format(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_format_number(n),
        Value::String(s) => s.clone(),
        Value::Array(items) => go_format_list(items),
        Value::Object(map) => go_format_map(map),
    }
}

fn go_format_list(items: &[Value]) -> String {
    let parts: Vec<String> = items.iter().map(go_format).collect();
    format!("[{}]", parts.join(" "))
}

fn go_format_map(map: &Map<String, Value>) -> String {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let parts: Vec<String> = entries.iter().map(|(k, v)| format!("{k}:{}", go_format(v))).collect();
    format!("map[{}]", parts.join(" "))
}

/// Integers as they are; floats like Go's `%v` (shortest form, exponent outside 1e-4..1e21).
fn go_format_number(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if !(n.is_i64() || n.is_u64()) && f != 0.0 && (f.abs() < 1e-4 || f.abs() >= 1e21) => {
            let formatted = format!("{f:e}");
            match formatted.split_once('e') {
                Some((mantissa, exponent)) => {
                    let (sign, digits) = match exponent.strip_prefix('-') {
                        Some(digits) => ('-', digits),
                        None => ('+', exponent),
                    };
                    format!("{mantissa}e{sign}{digits:0>2}")
                }
                None => formatted,
            }
        }
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    //! Cases modelled on Kubernetes' strategic merge patch tests (`strategicpatch/patch_test.go`),
    //! rewritten against a schema of our own.

    use super::*;
    use serde_json::json;

    /// A schema node from its serde form.
    fn schema(value: Value) -> Schema {
        serde_json::from_value(value).expect("test schema deserializes")
    }

    fn string() -> Value {
        json!({"kind": {"type": "string"}})
    }

    fn integer() -> Value {
        json!({"kind": {"type": "integer"}})
    }

    /// A list node with an optional strategy and merge key.
    fn list(items: Value, strategy: Option<&str>, merge_key: Option<&str>) -> Value {
        let mut node = json!({"kind": {"type": "array", "items": items}});
        if let Some(strategy) = strategy {
            node["patch_strategy"] = json!(strategy);
        }
        if let Some(key) = merge_key {
            node["patch_merge_key"] = json!(key);
        }
        node
    }

    /// A list with `x-kubernetes-list-type` (and map keys).
    fn typed_list(items: Value, list_type: &str, keys: &[&str]) -> Value {
        json!({"kind": {"type": "array", "items": items, "list_type": list_type, "list_map_keys": keys}})
    }

    /// A part: a named item with nested lists, `depth` levels deep.
    fn part(depth: usize) -> Value {
        let mut properties = json!({
            "name": string(),
            "size": integer(),
            "color": string(),
            "tags": list(string(), Some("merge"), None),
        });
        if depth > 0 {
            properties["parts"] = list(part(depth - 1), Some("merge"), Some("name"));
            properties["spares"] = list(part(depth - 1), None, None);
        }
        json!({"kind": {"type": "object", "properties": properties}})
    }

    /// The schema every case runs against.
    fn widget() -> Schema {
        let settings = json!({
            "patch_strategy": "retainKeys",
            "kind": {"type": "object", "properties": {
                "mode": string(),
                "level": string(),
                "extra": string(),
                "flags": list(string(), Some("merge"), None),
            }},
        });
        let port = json!({"kind": {"type": "object", "properties": {
            "port": integer(),
            "protocol": string(),
            "hosts": list(string(), Some("merge"), None),
        }}});
        let route = json!({"kind": {"type": "object", "properties": {"host": string(), "path": string()}}});
        let mut pinned = typed_list(json!({"kind": {"type": "object"}}), "map", &["id"]);
        pinned["patch_strategy"] = json!("replace");
        schema(json!({"kind": {"type": "object", "properties": {
            "name": string(),
            "size": integer(),
            "color": string(),
            "parts": list(part(2), Some("merge"), Some("name")),
            "spares": list(part(1), None, None),
            "tags": list(string(), Some("merge"), None),
            "sizes": list(integer(), None, None),
            "labels": {"kind": {"type": "object", "additional_properties": string()}},
            "payload": {"patch_strategy": "replace", "kind": {"type": "object", "preserve_unknown_fields": true}},
            "settings": settings,
            "slots": list(part(1), Some("merge,retainKeys"), Some("name")),
            "ports": typed_list(port, "map", &["port"]),
            "routes": typed_list(route, "map", &["host", "path"]),
            "pinned": pinned,
            "zones": typed_list(string(), "set", &[]),
            "broken": list(integer(), Some("merge,replace"), None),
            "anything": {"kind": {"type": "any"}},
        }}}))
    }

    /// What a case expects.
    enum Want {
        /// This exact document (key order included).
        Doc(Value),
        /// An error whose message contains this text.
        Error(&'static str),
    }

    struct Case {
        name: &'static str,
        original: Value,
        patch: Value,
        want: Want,
    }

    fn ok(name: &'static str, original: Value, patch: Value, want: Value) -> Case {
        Case { name, original, patch, want: Want::Doc(want) }
    }

    fn err(name: &'static str, original: Value, patch: Value, message: &'static str) -> Case {
        Case { name, original, patch, want: Want::Error(message) }
    }

    fn map_cases() -> Vec<Case> {
        vec![
            ok(
                "adds a new field",
                json!({"name": "w", "size": 1}),
                json!({"color": "red"}),
                json!({"name": "w", "size": 1, "color": "red"}),
            ),
            ok(
                "changes a field and deletes another with null",
                json!({"name": "w", "size": 1, "color": "red"}),
                json!({"size": 2, "color": null}),
                json!({"name": "w", "size": 2}),
            ),
            ok("null for an absent field adds nothing", json!({"name": "w"}), json!({"color": null}), json!({"name": "w"})),
            ok(
                "empty patch changes nothing",
                json!({"name": "w", "labels": {"a": "1"}}),
                json!({}),
                json!({"name": "w", "labels": {"a": "1"}}),
            ),
            ok("null original counts as empty", Value::Null, json!({"name": "w", "color": null}), json!({"name": "w"})),
            ok(
                "nested map deletes and adds keys",
                json!({"labels": {"tier": "web", "env": "dev"}}),
                json!({"labels": {"env": null, "team": "core"}}),
                json!({"labels": {"tier": "web", "team": "core"}}),
            ),
            ok(
                "a new nested map loses its nulls",
                json!({}),
                json!({"anything": {"keep": "x", "gone": null}}),
                json!({"anything": {"keep": "x"}}),
            ),
            ok("a new map of nulls only becomes empty", json!({}), json!({"labels": {"a": null}}), json!({"labels": {}})),
            ok(
                "nulls stored in the original survive",
                json!({"anything": {"k": null}, "color": null}),
                json!({"name": "w"}),
                json!({"anything": {"k": null}, "color": null, "name": "w"}),
            ),
            ok(
                "nulls inside a new list of scalars are kept",
                json!({}),
                json!({"anything": ["a", null, "b"]}),
                json!({"anything": ["a", null, "b"]}),
            ),
            ok(
                "nulls inside the maps of a new list are dropped",
                json!({}),
                json!({"spares": [{"name": "s", "color": null}]}),
                json!({"spares": [{"name": "s"}]}),
            ),
            ok(
                "a change of type replaces the value",
                json!({"anything": "text"}),
                json!({"anything": {"now": "map", "x": null}}),
                json!({"anything": {"now": "map"}}),
            ),
            ok(
                "$patch: replace at the top replaces the document",
                json!({"name": "w", "size": 1}),
                json!({"$patch": "replace", "color": "blue"}),
                json!({"color": "blue"}),
            ),
            ok(
                "$patch: delete at the top empties the document",
                json!({"name": "w", "labels": {"a": "1"}}),
                json!({"$patch": "delete", "name": "x"}),
                json!({}),
            ),
            ok(
                "$patch: replace alone empties a map",
                json!({"labels": {"a": "1"}}),
                json!({"labels": {"$patch": "replace"}}),
                json!({"labels": {}}),
            ),
            ok(
                "$patch: replace keeps only the patch's keys",
                json!({"labels": {"a": "1", "b": "2"}}),
                json!({"labels": {"$patch": "replace", "c": "3"}}),
                json!({"labels": {"c": "3"}}),
            ),
            ok(
                "$patch: delete empties an existing map",
                json!({"name": "w", "labels": {"a": "1"}}),
                json!({"labels": {"$patch": "delete"}}),
                json!({"name": "w", "labels": {}}),
            ),
            ok(
                "$patch: delete of an absent map adds nothing",
                json!({"name": "w"}),
                json!({"labels": {"$patch": "delete"}}),
                json!({"name": "w"}),
            ),
            ok(
                "$patch: replace of an absent map adds the rest",
                json!({}),
                json!({"labels": {"$patch": "replace", "a": "1"}}),
                json!({"labels": {"a": "1"}}),
            ),
            ok(
                "$patch: merge is the default",
                json!({"labels": {"a": "1"}}),
                json!({"labels": {"$patch": "merge", "b": "2"}}),
                json!({"labels": {"a": "1", "b": "2"}}),
            ),
            err(
                "an unknown $patch value is rejected",
                json!({"labels": {"a": "1"}}),
                json!({"labels": {"$patch": "squash", "b": "2"}}),
                "unknown patch type: squash in map: map[$patch:squash b:2]",
            ),
            err(
                "a non-string $patch value is rejected",
                json!({}),
                json!({"$patch": 1}),
                "unknown patch type: %!s(int64=1) in map: map[$patch:1]",
            ),
            ok(
                "the replace strategy replaces a map field",
                json!({"payload": {"a": 1, "b": {"c": 2}}}),
                json!({"payload": {"b": {"d": 3}}}),
                json!({"payload": {"b": {"d": 3}}}),
            ),
            ok(
                "fields without schema merge like a JSON merge patch",
                json!({"anything": {"list": [1, 2], "m": {"x": 1, "y": 2}}}),
                json!({"anything": {"list": [3], "m": {"y": null, "z": 3}}}),
                json!({"anything": {"list": [3], "m": {"x": 1, "z": 3}}}),
            ),
        ]
    }

    fn plain_list_cases() -> Vec<Case> {
        vec![
            ok("a list without strategy is replaced", json!({"sizes": [1, 2, 3]}), json!({"sizes": [3, 4]}), json!({"sizes": [3, 4]})),
            ok(
                "a replaced list of maps loses its directive items",
                json!({"spares": [{"name": "a", "size": 1}]}),
                json!({"spares": [{"$patch": "replace"}, {"name": "b"}]}),
                json!({"spares": [{"name": "b"}]}),
            ),
            ok(
                "$deleteFromPrimitiveList works on a list without strategy",
                json!({"sizes": [5, 6, 7, 6]}),
                json!({"$deleteFromPrimitiveList/sizes": [6]}),
                json!({"sizes": [5, 7]}),
            ),
        ]
    }

    fn primitive_merge_cases() -> Vec<Case> {
        vec![
            ok(
                "merging scalars gives the union",
                json!({"tags": ["a", "b"]}),
                json!({"tags": ["b", "c"]}),
                json!({"tags": ["a", "b", "c"]}),
            ),
            ok(
                "the patch order wins for the items it names",
                json!({"tags": ["a", "b", "c"]}),
                json!({"tags": ["c", "a", "b"]}),
                json!({"tags": ["c", "a", "b"]}),
            ),
            ok(
                "server-only scalars keep their place",
                json!({"tags": ["a", "b", "c"]}),
                json!({"tags": ["c", "a"]}),
                json!({"tags": ["b", "c", "a"]}),
            ),
            ok(
                "new scalars come before the server-only ones",
                json!({"tags": ["a", "b"]}),
                json!({"tags": ["z"]}),
                json!({"tags": ["z", "a", "b"]}),
            ),
            ok(
                "$deleteFromPrimitiveList removes every copy and ignores absent values",
                json!({"tags": ["a", "b", "a", "c"]}),
                json!({"$deleteFromPrimitiveList/tags": ["a", "zz"]}),
                json!({"tags": ["b", "c"]}),
            ),
            ok(
                "$deleteFromPrimitiveList of an absent list adds nothing",
                json!({"name": "w"}),
                json!({"$deleteFromPrimitiveList/tags": ["a"]}),
                json!({"name": "w"}),
            ),
            ok(
                "add, delete and order scalars in one patch",
                json!({"tags": ["a", "b", "c", "e"]}),
                json!({"$setElementOrder/tags": ["a", "b", "d"], "$deleteFromPrimitiveList/tags": ["c"], "tags": ["d"]}),
                json!({"tags": ["a", "b", "d", "e"]}),
            ),
            ok(
                "$setElementOrder alone reorders the scalars it names",
                json!({"tags": ["a", "b", "c"]}),
                json!({"$setElementOrder/tags": ["c", "x", "a"]}),
                json!({"tags": ["b", "c", "a"]}),
            ),
            err(
                "$setElementOrder must agree with the patch list",
                json!({"tags": ["a", "b", "c"]}),
                json!({"$setElementOrder/tags": ["a", "b", "c"], "tags": ["c", "a"]}),
                "doesn't match $setElementOrder list",
            ),
            ok(
                "list-type set merges as a set",
                json!({"zones": ["a", "b"]}),
                json!({"zones": ["b", "c"]}),
                json!({"zones": ["a", "b", "c"]}),
            ),
        ]
    }

    fn keyed_merge_cases() -> Vec<Case> {
        vec![
            ok(
                "matched items merge and new ones are added",
                json!({"parts": [{"name": "a", "size": 1}, {"name": "b", "size": 2}]}),
                json!({"parts": [{"name": "b", "color": "red"}, {"name": "c", "size": 3}]}),
                json!({"parts": [{"name": "a", "size": 1}, {"name": "b", "size": 2, "color": "red"}, {"name": "c", "size": 3}]}),
            ),
            ok(
                "the patch order wins for the items it names",
                json!({"parts": [{"name": "a"}, {"name": "b", "size": 2}, {"name": "c"}]}),
                json!({"parts": [{"name": "c", "size": 3}, {"name": "a", "size": 1}, {"name": "b", "color": "x"}]}),
                json!({"parts": [{"name": "c", "size": 3}, {"name": "a", "size": 1}, {"name": "b", "size": 2, "color": "x"}]}),
            ),
            ok(
                "server-only items are placed by their original position",
                json!({"parts": [{"name": "a"}, {"name": "b", "size": 2}, {"name": "c"}]}),
                json!({"parts": [{"name": "c", "color": "red"}, {"name": "a", "color": "blue"}]}),
                json!({"parts": [{"name": "b", "size": 2}, {"name": "c", "color": "red"}, {"name": "a", "color": "blue"}]}),
            ),
            ok(
                "a null in a patch item deletes that field",
                json!({"parts": [{"name": "a", "size": 1, "color": "red"}]}),
                json!({"parts": [{"name": "a", "color": null}]}),
                json!({"parts": [{"name": "a", "size": 1}]}),
            ),
            ok(
                "$patch: delete removes the item, and a missing one is ignored",
                json!({"parts": [{"name": "a"}, {"name": "b"}]}),
                json!({"parts": [{"name": "a", "$patch": "delete"}, {"name": "zz", "$patch": "delete"}]}),
                json!({"parts": [{"name": "b"}]}),
            ),
            ok(
                "$patch: delete removes every duplicate",
                json!({"parts": [{"name": "a", "size": 1}, {"name": "a", "size": 2}, {"name": "b"}, {"name": "c"}, {"name": "c"}]}),
                json!({"parts": [{"name": "a", "$patch": "delete"}, {"name": "c", "$patch": "delete"}]}),
                json!({"parts": [{"name": "b"}]}),
            ),
            ok(
                "adding and deleting in one patch",
                json!({"parts": [{"name": "a"}, {"name": "b"}]}),
                json!({"parts": [{"name": "c"}, {"name": "a", "$patch": "delete"}]}),
                json!({"parts": [{"name": "c"}, {"name": "b"}]}),
            ),
            ok(
                "a $patch: replace item replaces the list",
                json!({"parts": [{"name": "a"}, {"name": "b"}]}),
                json!({"parts": [{"$patch": "replace"}, {"name": "c", "size": 1}]}),
                json!({"parts": [{"name": "c", "size": 1}]}),
            ),
            ok(
                "a lone $patch: replace item empties the list",
                json!({"parts": [{"name": "a"}]}),
                json!({"parts": [{"$patch": "replace"}]}),
                json!({"parts": []}),
            ),
            err(
                "a $patch: merge item is rejected",
                json!({"parts": [{"name": "a"}]}),
                json!({"parts": [{"name": "a", "$patch": "merge"}]}),
                "merging lists cannot yet be specified in the patch",
            ),
            err(
                "an unknown $patch item is rejected",
                json!({"parts": [{"name": "a"}]}),
                json!({"parts": [{"name": "a", "$patch": "explode"}]}),
                "unknown patch type: explode in map: map[$patch:explode name:a]",
            ),
            err(
                "a patch item without the merge key is rejected",
                json!({"parts": [{"name": "a", "size": 1}]}),
                json!({"parts": [{"size": 2}]}),
                "map: map[size:2] does not contain declared merge key: name",
            ),
            err(
                "a delete item without the merge key is rejected",
                json!({"parts": [{"name": "a"}]}),
                json!({"parts": [{"$patch": "delete"}]}),
                "map: map[$patch:delete] does not contain declared merge key: name",
            ),
            err(
                "an original item without the merge key is rejected",
                json!({"parts": [{"size": 1}]}),
                json!({"parts": [{"name": "a"}]}),
                "map: map[size:1] does not contain declared merge key: name",
            ),
            ok(
                "a new merge list loses its directive items",
                json!({}),
                json!({"parts": [{"name": "a"}, {"name": "b", "$patch": "delete"}, {"$patch": "replace"}]}),
                json!({"parts": [{"name": "a"}]}),
            ),
            ok(
                "merge lists nest",
                json!({"parts": [{"name": "a", "parts": [{"name": "x", "size": 1}, {"name": "y"}]}]}),
                json!({"parts": [{"name": "a", "parts": [{"name": "x", "color": "red"}, {"name": "z"}]}]}),
                json!({"parts": [{"name": "a", "parts": [{"name": "x", "size": 1, "color": "red"}, {"name": "z"}, {"name": "y"}]}]}),
            ),
            ok(
                "a list without strategy inside a merge list is replaced",
                json!({"parts": [{"name": "a", "spares": [{"name": "s1"}, {"name": "s2"}]}]}),
                json!({"parts": [{"name": "a", "spares": [{"name": "s3"}]}]}),
                json!({"parts": [{"name": "a", "spares": [{"name": "s3"}]}]}),
            ),
            ok(
                "$setElementOrder orders a keyed list around server-only items",
                json!({"parts": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
                json!({"$setElementOrder/parts": [{"name": "c"}, {"name": "a"}], "parts": [{"name": "a", "size": 9}]}),
                json!({"parts": [{"name": "b"}, {"name": "c"}, {"name": "a", "size": 9}]}),
            ),
            ok(
                "$setElementOrder may name items nobody has",
                json!({"parts": [{"name": "a"}, {"name": "c"}]}),
                json!({"$setElementOrder/parts": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
                       "parts": [{"name": "c", "size": 3}, {"name": "a", "size": 1}]}),
                json!({"parts": [{"name": "c", "size": 3}, {"name": "a", "size": 1}]}),
            ),
            ok(
                "$setElementOrder after a deletion puts server-only items before new ones",
                json!({"parts": [{"name": "a"}, {"name": "b", "size": 1}, {"name": "d", "size": 2}]}),
                json!({"$setElementOrder/parts": [{"name": "b"}, {"name": "c"}],
                       "parts": [{"name": "c"}, {"name": "a", "$patch": "delete"}]}),
                json!({"parts": [{"name": "b", "size": 1}, {"name": "d", "size": 2}, {"name": "c"}]}),
            ),
            ok(
                "$setElementOrder for a list only the patch has",
                json!({}),
                json!({"$setElementOrder/parts": [{"name": "b"}, {"name": "a"}], "parts": [{"name": "b"}, {"name": "a"}]}),
                json!({"parts": [{"name": "b"}, {"name": "a"}]}),
            ),
            err(
                "$setElementOrder items need the merge key",
                json!({"parts": [{"name": "a"}]}),
                json!({"$setElementOrder/parts": [{"size": 1}]}),
                "map: map[size:1] does not contain declared merge key: name",
            ),
            err(
                "a list mixing item types cannot merge",
                json!({"tags": ["a"]}),
                json!({"tags": [1]}),
                "list element types are not identical: [[a] [1]]",
            ),
            err("lists of lists cannot merge", json!({"tags": [["a"]]}), json!({"tags": [["b"]]}), "lists of lists are not supported"),
            err(
                "a merge list of maps needs a merge key",
                json!({"tags": [{"a": 1}]}),
                json!({"tags": [{"a": 2}]}),
                "cannot merge lists without merge key for tags",
            ),
        ]
    }

    fn retain_keys_cases() -> Vec<Case> {
        vec![
            ok(
                "$retainKeys clears the fields it does not list",
                json!({"settings": {"mode": "fast", "level": "3", "extra": "e"}}),
                json!({"settings": {"$retainKeys": ["mode", "level"], "level": "4"}}),
                json!({"settings": {"mode": "fast", "level": "4"}}),
            ),
            err(
                "$retainKeys must list every field the patch sets",
                json!({"settings": {"mode": "fast"}}),
                json!({"settings": {"$retainKeys": ["mode"], "level": "4"}}),
                "invalid patch format of retainKeys",
            ),
            ok(
                "$retainKeys ignores nulls and list directives",
                json!({"settings": {"mode": "fast", "level": "3", "flags": ["a", "b"]}}),
                json!({"settings": {"$retainKeys": ["flags"], "mode": null,
                    "$deleteFromPrimitiveList/flags": ["a"], "$setElementOrder/flags": ["b"]}}),
                json!({"settings": {"flags": ["b"]}}),
            ),
            err(
                "$retainKeys must be a list",
                json!({"settings": {"mode": "fast"}}),
                json!({"settings": {"$retainKeys": "mode"}}),
                "invalid patch format of retainKeys",
            ),
            ok(
                "$retainKeys inside the items of a merge list",
                json!({"slots": [{"name": "a", "size": 1, "color": "red"}, {"name": "b", "size": 2}]}),
                json!({"slots": [{"name": "a", "$retainKeys": ["name", "color"], "color": "blue"}]}),
                json!({"slots": [{"name": "a", "color": "blue"}, {"name": "b", "size": 2}]}),
            ),
            ok(
                "a retainKeys field without the directive merges as usual",
                json!({"settings": {"mode": "fast"}}),
                json!({"settings": {"level": "2"}}),
                json!({"settings": {"mode": "fast", "level": "2"}}),
            ),
        ]
    }

    fn list_type_cases() -> Vec<Case> {
        vec![
            ok(
                "list-type map with one key merges by that key",
                json!({"ports": [{"port": 80, "protocol": "TCP"}, {"port": 443}]}),
                json!({"ports": [{"port": 443, "protocol": "TCP"}, {"port": 8080}]}),
                json!({"ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}, {"port": 8080}]}),
            ),
            err(
                "list-type map items need their key",
                json!({"ports": [{"port": 80}]}),
                json!({"ports": [{"protocol": "UDP"}]}),
                "map: map[protocol:UDP] does not contain declared merge key: port",
            ),
            ok(
                "merge lists nest inside list-type map items",
                json!({"ports": [{"port": 80, "hosts": ["x"]}]}),
                json!({"ports": [{"port": 80, "hosts": ["y"]}]}),
                json!({"ports": [{"port": 80, "hosts": ["y", "x"]}]}),
            ),
            ok(
                "list-type map with two keys is replaced",
                json!({"routes": [{"host": "a", "path": "/"}]}),
                json!({"routes": [{"host": "b", "path": "/x"}]}),
                json!({"routes": [{"host": "b", "path": "/x"}]}),
            ),
            ok(
                "an explicit replace strategy beats list-type map",
                json!({"pinned": [{"id": "1"}]}),
                json!({"pinned": [{"id": "2"}]}),
                json!({"pinned": [{"id": "2"}]}),
            ),
        ]
    }

    fn malformed_cases() -> Vec<Case> {
        vec![
            err(
                "$setElementOrder without a field name",
                json!({"tags": ["a"]}),
                json!({"$setElementOrder": ["a"]}),
                "invalid patch format of setElementOrder list",
            ),
            err(
                "$deleteFromPrimitiveList with a wrong separator",
                json!({"tags": ["a"]}),
                json!({"$deleteFromPrimitiveList-tags": ["a"]}),
                "invalid patch format of primitive list",
            ),
            err(
                "$setElementOrder must be a list",
                json!({"tags": ["a"]}),
                json!({"$setElementOrder/tags": "a"}),
                "expected a []interface {}, but received a string",
            ),
            err("the patch must be an object", json!({}), json!([1]), "invalid JSON document"),
            err("the original must be an object", json!("text"), json!({}), "invalid JSON document"),
            err(
                "a schema with two list strategies is rejected",
                json!({"broken": [1]}),
                json!({"broken": [2]}),
                "unexpected patch strategy: [merge replace]",
            ),
        ]
    }

    /// Fails when a directive key made it into a result.
    fn assert_no_directive_keys(value: &Value, case: &str) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let directive = key == DIRECTIVE_MARKER
                        || key == RETAIN_KEYS_DIRECTIVE
                        || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
                        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX);
                    assert!(!directive, "{case}: directive key {key} in result {value}");
                    assert_no_directive_keys(child, case);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| assert_no_directive_keys(item, case)),
            _ => {}
        }
    }

    fn run(cases: Vec<Case>, schema: Option<&Schema>) {
        let mut failures = Vec::new();
        for case in cases {
            let got = strategic_merge(&case.original, &case.patch, schema);
            match (&case.want, got) {
                (Want::Doc(want), Ok(got)) => {
                    assert_no_directive_keys(&got, case.name);
                    // Compare the text so that key order counts too.
                    let (want_text, got_text) = (serde_json::to_string(want), serde_json::to_string(&got));
                    if want_text.ok() != got_text.ok() {
                        failures.push(format!("{}:\n  want {want}\n  got  {got}", case.name));
                    }
                }
                (Want::Error(want), Err(got)) if got.message.contains(want) => {}
                (Want::Doc(_), Err(got)) => failures.push(format!("{}: unexpected error: {got}", case.name)),
                (Want::Error(want), got) => failures.push(format!("{}: want error containing {want:?}, got {got:?}", case.name)),
            }
        }
        assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
    }

    #[test]
    fn maps() {
        run(map_cases(), Some(&widget()));
    }

    #[test]
    fn lists_without_strategy() {
        run(plain_list_cases(), Some(&widget()));
    }

    #[test]
    fn primitive_merge_lists() {
        run(primitive_merge_cases(), Some(&widget()));
    }

    #[test]
    fn keyed_merge_lists() {
        run(keyed_merge_cases(), Some(&widget()));
    }

    #[test]
    fn retain_keys() {
        run(retain_keys_cases(), Some(&widget()));
    }

    #[test]
    fn list_types() {
        run(list_type_cases(), Some(&widget()));
    }

    #[test]
    fn malformed_patches() {
        run(malformed_cases(), Some(&widget()));
    }

    #[test]
    fn without_schema() {
        run(
            vec![
                ok(
                    "maps merge, lists are replaced, directives still apply",
                    json!({"a": {"b": 1, "c": [1, 2]}, "d": [{"name": "x"}]}),
                    json!({"a": {"$patch": "merge", "b": null, "c": [3]},
                           "d": [{"name": "y", "$patch": "delete"}, {"name": "z"}]}),
                    json!({"a": {"c": [3]}, "d": [{"name": "z"}]}),
                ),
                ok(
                    "$setElementOrder reorders a list",
                    json!({"l": [1, 2, 3]}),
                    json!({"$setElementOrder/l": [3, 2, 1]}),
                    json!({"l": [3, 2, 1]}),
                ),
                ok(
                    "$retainKeys applies",
                    json!({"m": {"a": 1, "b": 2}}),
                    json!({"m": {"$retainKeys": ["b"], "b": 3}}),
                    json!({"m": {"b": 3}}),
                ),
                ok("unknown $-keys are plain data", json!({}), json!({"$ref": "x"}), json!({"$ref": "x"})),
            ],
            None,
        );
    }

    #[test]
    fn inputs_are_untouched() {
        let original = json!({"parts": [{"name": "a", "size": 1}], "labels": {"a": "1"}});
        let patch = json!({"parts": [{"name": "a", "size": null}], "labels": {"$patch": "replace"}});
        let (original_copy, patch_copy) = (original.clone(), patch.clone());
        let result = strategic_merge(&original, &patch, Some(&widget())).unwrap();
        assert_eq!(result, json!({"parts": [{"name": "a"}], "labels": {}}));
        assert_eq!((original, patch), (original_copy, patch_copy));
    }

    #[test]
    fn error_displays_its_message() {
        let error = strategic_merge(&json!({}), &json!(null), None).unwrap_err();
        assert_eq!(error.to_string(), "invalid JSON document");
        let _: &dyn std::error::Error = &error;
    }

    #[test]
    fn go_rendering_of_values() {
        let value = json!({"b": [1, "x", null], "a": {"c": true}, "f": 1.5, "g": 1e-7});
        assert_eq!(go_format(&value), "map[a:map[c:true] b:[1 x <nil>] f:1.5 g:1e-07]");
    }

    #[test]
    fn large_lists_merge_in_linear_time() {
        // The strategic_patch fuzz target timed out on lists of 20,000 items: every step matched
        // each item against every other. Here 50,000 items must take well under a second in a
        // release build (a few seconds unoptimised).
        let n = 50_000;
        let parts: Vec<Value> = (0..n).map(|i| json!({"name": format!("p{i}"), "size": i})).collect();
        let tags: Vec<Value> = (0..n).map(|i| json!(format!("t{i}"))).collect();
        let labels: Map<String, Value> = (0..n).map(|i| (format!("l{i}"), json!("v"))).collect();
        let original = json!({"parts": parts, "tags": tags, "zones": tags, "labels": labels});
        let reversed: Vec<Value> = (0..n).rev().map(|i| json!({"name": format!("p{i}"), "size": 0})).collect();
        let order: Vec<Value> = (0..n).rev().map(|i| json!({"name": format!("p{i}")})).collect();
        let patch = json!({
            "parts": reversed[..n / 2].to_vec(),
            "$setElementOrder/parts": order,
            "tags": (0..n).map(|i| json!(format!("u{i}"))).collect::<Vec<_>>(),
            "$deleteFromPrimitiveList/tags": tags.iter().step_by(2).cloned().collect::<Vec<_>>(),
            "zones": tags.iter().rev().cloned().collect::<Vec<_>>(),
            "labels": (0..n).step_by(2).map(|i| (format!("l{i}"), Value::Null)).collect::<Map<_, _>>(),
        });
        let started = std::time::Instant::now();
        let merged = strategic_merge(&original, &patch, Some(&widget())).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
        let parts = merged["parts"].as_array().unwrap();
        assert_eq!(parts.len(), n);
        assert_eq!(parts[0], json!({"name": format!("p{}", n - 1), "size": 0}));
        assert_eq!(parts[n - 1], json!({"name": "p0", "size": 0}));
        assert_eq!(merged["tags"].as_array().unwrap().len(), n + n / 2);
        assert_eq!(merged["zones"].as_array().unwrap().len(), n);
        assert_eq!(merged["labels"].as_object().unwrap().len(), n / 2);
    }
}
