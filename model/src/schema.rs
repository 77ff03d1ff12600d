//! The structural schema of a resource version, as a closed type.
//!
//! A CRD's `openAPIV3Schema` becomes a tree of [`Schema`] nodes. The node's shape (object, array,
//! scalar, int-or-string, anything) is the exhaustive [`SchemaKind`] enum; value validations that
//! apply to every shape sit beside it on [`Schema`].

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One node of a structural schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Schema {
    /// What kind of value this node holds.
    pub kind: SchemaKind,
    /// Documentation shown by `kubectl explain` and in generated Rust docs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether `null` is accepted (and kept) for this value.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nullable: bool,
    /// Default applied when the field is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Example value, kept for OpenAPI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<Value>,
    /// Allowed values, when restricted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<Value>>,
    /// Format name (`date-time`, `int32`, `byte`, …), empty when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Bounds and patterns.
    #[serde(default, skip_serializing_if = "Bounds::is_empty")]
    pub bounds: Bounds,
    /// `allOf`/`anyOf`/`oneOf`/`not` value validations, kept as written (they carry no types).
    #[serde(default, skip_serializing_if = "Composition::is_empty")]
    pub composition: Composition,
    /// `x-kubernetes-validations` CEL rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validations: Vec<ValidationRule>,
    /// `x-kubernetes-patch-strategy` (our extension for strategic merge patch): `merge`,
    /// `replace`, `retainKeys`, or `merge,retainKeys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_strategy: Option<String>,
    /// `x-kubernetes-patch-merge-key` (our extension for strategic merge patch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_merge_key: Option<String>,
}

/// The shape of a schema node. Every generator matches on this exhaustively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SchemaKind {
    /// A JSON object with declared properties and/or a map of values.
    Object {
        /// Declared properties in spec order.
        #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
        properties: IndexMap<String, Schema>,
        /// Required property names.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        required: Vec<String>,
        /// Schema of the values of a map (`additionalProperties`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        additional_properties: Option<Box<Schema>>,
        /// `x-kubernetes-preserve-unknown-fields`: unknown fields are kept, not pruned.
        #[serde(default, skip_serializing_if = "is_false")]
        preserve_unknown_fields: bool,
        /// `x-kubernetes-embedded-resource`: the object is a full Kubernetes object.
        #[serde(default, skip_serializing_if = "is_false")]
        embedded_resource: bool,
        /// `x-kubernetes-map-type`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        map_type: Option<MapType>,
    },
    /// A JSON array.
    Array {
        /// Schema of every item.
        items: Box<Schema>,
        /// `x-kubernetes-list-type`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        list_type: Option<ListType>,
        /// `x-kubernetes-list-map-keys` for `list_type: map`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        list_map_keys: Vec<String>,
    },
    /// A string.
    String,
    /// An integer (format `int32` or `int64` or none).
    Integer,
    /// A number.
    Number,
    /// A boolean.
    Boolean,
    /// `x-kubernetes-int-or-string`: an integer or a string.
    IntOrString,
    /// No type: any JSON value (`x-kubernetes-preserve-unknown-fields` without a type).
    Any {
        /// `x-kubernetes-embedded-resource` on an untyped node.
        #[serde(default, skip_serializing_if = "is_false")]
        embedded_resource: bool,
    },
}

impl Default for SchemaKind {
    fn default() -> Self {
        SchemaKind::Any { embedded_resource: false }
    }
}

/// Numeric, length and pattern bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // each field is the JSON-Schema keyword of the same name
pub struct Bounds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub exclusive_minimum: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub exclusive_maximum: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_of: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique_items: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_properties: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_properties: Option<u64>,
}

impl Bounds {
    /// True when no bound is set.
    pub fn is_empty(&self) -> bool {
        self == &Bounds::default()
    }
}

/// Logical combinations of value validations, kept as the spec wrote them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // each field is the JSON-Schema keyword of the same name
pub struct Composition {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub all_of: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_of: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Value>,
}

impl Composition {
    /// True when there is no combination.
    pub fn is_empty(&self) -> bool {
        self == &Composition::default()
    }
}

/// `x-kubernetes-list-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ListType {
    /// The list is replaced as a whole.
    Atomic,
    /// Items are unique scalars.
    Set,
    /// Items are objects identified by `list_map_keys`.
    Map,
}

/// `x-kubernetes-map-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MapType {
    /// Each key is owned separately.
    Granular,
    /// The map is replaced as a whole.
    Atomic,
}

/// One `x-kubernetes-validations` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)] // each field is the CRD field of the same name
pub struct ValidationRule {
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional_old_self: Option<bool>,
}

impl Schema {
    /// The declared property of an object node, if any.
    pub fn property(&self, name: &str) -> Option<&Schema> {
        match &self.kind {
            SchemaKind::Object { properties, .. } => properties.get(name),
            _ => None,
        }
    }

    /// The schema a child value of this node follows: a declared property or a map value for
    /// objects, the item schema for arrays. `None` when the child is unknown here.
    pub fn child(&self, key: &str) -> Option<&Schema> {
        match &self.kind {
            SchemaKind::Object { properties, additional_properties, .. } => properties.get(key).or(additional_properties.as_deref()),
            SchemaKind::Array { items, .. } => Some(items),
            _ => None,
        }
    }

    /// Follows a dotted path of property names (`spec.msg`).
    pub fn at_path<'a>(&'a self, path: &[&str]) -> Option<&'a Schema> {
        path.iter().try_fold(self, |node, key| node.child(key))
    }

    /// The JSON type name OpenAPI uses for this node, if it has one.
    pub fn type_name(&self) -> Option<&'static str> {
        match self.kind {
            SchemaKind::Object { .. } => Some("object"),
            SchemaKind::Array { .. } => Some("array"),
            SchemaKind::String => Some("string"),
            SchemaKind::Integer => Some("integer"),
            SchemaKind::Number => Some("number"),
            SchemaKind::Boolean => Some("boolean"),
            SchemaKind::IntOrString | SchemaKind::Any { .. } => None,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
