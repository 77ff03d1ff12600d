//! The type of each value, as the structured merge sees it: which fields a map declares,
//! whether maps and lists are atomic or granular, and how list items are identified.
//!
//! For a custom resource, kube-apiserver merges along the CRD's schema with `metadata` replaced
//! by the built-in `ObjectMeta` (labels and annotations are granular maps, finalizers a set,
//! ownerReferences a map keyed by `uid`), `apiVersion` and `kind` as strings, lists atomic unless
//! `x-kubernetes-list-type` says otherwise, and untyped parts (`x-kubernetes-preserve-unknown-fields`)
//! deduced from the value: maps granular, lists atomic.
//!
//! One addition of ours: a list with our `x-kubernetes-patch-strategy: merge` extension and no
//! `x-kubernetes-list-type` is a map keyed by its `x-kubernetes-patch-merge-key` (a set without
//! one), as kube's schema converter treats the same markers on built-in types.

use apimodel::{ListType, MapType, Schema, SchemaKind};
use serde_json::Value;

/// Where a value sits in the object.
#[derive(Debug, Clone, Copy)]
pub enum Type<'a> {
    /// The object itself: `apiVersion`, `kind` and `metadata` beside the schema's properties.
    Root(&'a Schema),
    /// A node of the resource's schema.
    Node(&'a Schema),
    /// A part of `ObjectMeta`.
    Meta(Meta),
    /// No schema: the value decides (maps granular, lists atomic, anything else a scalar).
    Deduced,
}

/// The parts of `ObjectMeta` that need their own merge behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    /// `metadata` itself.
    ObjectMeta,
    /// A string field.
    Str,
    /// An integer field.
    Int,
    /// `labels`, `annotations`: granular maps of strings.
    StringMap,
    /// `finalizers`: a set of strings.
    Finalizers,
    /// `ownerReferences`: a list keyed by `uid`.
    OwnerReferences,
    /// One owner reference: replaced as a whole.
    OwnerReference,
    /// A boolean field of an owner reference.
    Bool,
    /// `managedFields`: atomic (and never applied).
    ManagedFields,
}

/// What kind of scalar a leaf must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarKind {
    /// A string.
    String,
    /// An integer or a float.
    Numeric,
    /// A boolean.
    Boolean,
    /// Any scalar (int-or-string, untyped).
    Any,
}

/// How a list's items are identified.
#[derive(Debug, Clone, Copy)]
pub enum ListKind<'a> {
    /// Replaced as a whole.
    Atomic,
    /// Scalar items identified by value.
    Set,
    /// Map items identified by these key fields.
    Map(&'a [String]),
}

/// The shape of a value of some type.
#[derive(Debug, Clone, Copy)]
pub enum Shape<'a> {
    /// A leaf.
    Scalar(ScalarKind),
    /// A map or struct; atomic ones are replaced as a whole.
    Map {
        /// `x-kubernetes-map-type: atomic` (or an atomic struct).
        atomic: bool,
    },
    /// A list.
    List(ListKind<'a>),
}

/// How a key of a map is typed.
#[derive(Debug, Clone, Copy)]
pub enum FieldType<'a> {
    /// A declared property (a "named field": not owned by merely having children).
    Named(Type<'a>),
    /// An entry of a map with declared value type.
    Entry(Type<'a>),
    /// Not declared in the schema.
    Unknown,
}

impl<'a> FieldType<'a> {
    /// The type, whether declared or an entry.
    pub fn ty(self) -> Option<Type<'a>> {
        match self {
            FieldType::Named(t) | FieldType::Entry(t) => Some(t),
            FieldType::Unknown => None,
        }
    }
}

/// `uid`, the key of `ownerReferences` (a static so `ListKind` can borrow it).
fn owner_reference_keys() -> &'static [String] {
    static KEYS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| vec!["uid".to_string()])
}

impl<'a> Type<'a> {
    /// The shape of `value` under this type (deduced types look at the value).
    pub fn shape(&self, value: Option<&Value>) -> Shape<'a> {
        match self {
            Type::Root(_) => Shape::Map { atomic: false },
            Type::Node(schema) => match &schema.kind {
                SchemaKind::Object { map_type, .. } => Shape::Map { atomic: *map_type == Some(MapType::Atomic) },
                SchemaKind::Array { list_type, list_map_keys, .. } => Shape::List(list_kind(schema, *list_type, list_map_keys)),
                SchemaKind::String => Shape::Scalar(ScalarKind::String),
                SchemaKind::Integer | SchemaKind::Number => Shape::Scalar(ScalarKind::Numeric),
                SchemaKind::Boolean => Shape::Scalar(ScalarKind::Boolean),
                SchemaKind::IntOrString => Shape::Scalar(ScalarKind::Any),
                SchemaKind::Any { .. } => deduced_shape(value),
            },
            Type::Meta(meta) => match meta {
                Meta::ObjectMeta | Meta::StringMap => Shape::Map { atomic: false },
                Meta::OwnerReference => Shape::Map { atomic: true },
                Meta::Str => Shape::Scalar(ScalarKind::String),
                Meta::Int => Shape::Scalar(ScalarKind::Numeric),
                Meta::Bool => Shape::Scalar(ScalarKind::Boolean),
                Meta::Finalizers => Shape::List(ListKind::Set),
                Meta::OwnerReferences => Shape::List(ListKind::Map(owner_reference_keys())),
                Meta::ManagedFields => Shape::List(ListKind::Atomic),
            },
            Type::Deduced => deduced_shape(value),
        }
    }

    /// How the key `name` of a map of this type is typed.
    pub fn field(&self, name: &str) -> FieldType<'a> {
        match self {
            Type::Root(schema) => match name {
                "apiVersion" | "kind" => FieldType::Named(Type::Meta(Meta::Str)),
                "metadata" => FieldType::Named(Type::Meta(Meta::ObjectMeta)),
                _ => object_field(schema, name),
            },
            Type::Node(schema) => {
                let found = object_field(schema, name);
                // Embedded resources carry apiVersion, kind and metadata even when undeclared.
                let embedded =
                    matches!(schema.kind, SchemaKind::Object { embedded_resource: true, .. } | SchemaKind::Any { embedded_resource: true });
                match found {
                    FieldType::Named(_) => found,
                    _ if embedded && matches!(name, "apiVersion" | "kind") => FieldType::Named(Type::Meta(Meta::Str)),
                    _ if embedded && name == "metadata" => FieldType::Named(Type::Meta(Meta::ObjectMeta)),
                    _ => found,
                }
            }
            Type::Meta(Meta::ObjectMeta) => match name {
                "name" | "generateName" | "namespace" | "selfLink" | "uid" | "resourceVersion" | "creationTimestamp"
                | "deletionTimestamp" => FieldType::Named(Type::Meta(Meta::Str)),
                "generation" | "deletionGracePeriodSeconds" => FieldType::Named(Type::Meta(Meta::Int)),
                "labels" | "annotations" => FieldType::Named(Type::Meta(Meta::StringMap)),
                "finalizers" => FieldType::Named(Type::Meta(Meta::Finalizers)),
                "ownerReferences" => FieldType::Named(Type::Meta(Meta::OwnerReferences)),
                "managedFields" => FieldType::Named(Type::Meta(Meta::ManagedFields)),
                _ => FieldType::Unknown,
            },
            Type::Meta(Meta::StringMap) => FieldType::Entry(Type::Meta(Meta::Str)),
            Type::Meta(Meta::OwnerReference) => match name {
                "apiVersion" | "kind" | "name" | "uid" => FieldType::Named(Type::Meta(Meta::Str)),
                "controller" | "blockOwnerDeletion" => FieldType::Named(Type::Meta(Meta::Bool)),
                _ => FieldType::Unknown,
            },
            Type::Meta(_) => FieldType::Unknown,
            Type::Deduced => FieldType::Entry(Type::Deduced),
        }
    }

    /// The type of a list's items.
    pub fn items(&self) -> Type<'a> {
        match self {
            Type::Node(Schema { kind: SchemaKind::Array { items, .. }, .. }) => Type::Node(items),
            Type::Meta(Meta::Finalizers) => Type::Meta(Meta::Str),
            Type::Meta(Meta::OwnerReferences) => Type::Meta(Meta::OwnerReference),
            _ => Type::Deduced,
        }
    }

    /// The default of the field `name` of items of this (map) type: a list-map item missing a
    /// key field takes the field's default as its key.
    pub fn field_default(&self, name: &str) -> Option<&'a Value> {
        match self {
            Type::Node(schema) => schema.property(name).and_then(|p| p.default.as_ref()),
            _ => None,
        }
    }

    /// Whether `name` is a declared field of this type (named fields are implicitly owned
    /// along with what is below them when pruning).
    pub fn is_named_field(&self, name: &str) -> bool {
        matches!(self.field(name), FieldType::Named(_))
    }
}

fn deduced_shape(value: Option<&Value>) -> Shape<'static> {
    match value {
        Some(Value::Object(_)) => Shape::Map { atomic: false },
        Some(Value::Array(_)) => Shape::List(ListKind::Atomic),
        _ => Shape::Scalar(ScalarKind::Any),
    }
}

fn object_field<'a>(schema: &'a Schema, name: &str) -> FieldType<'a> {
    match &schema.kind {
        SchemaKind::Object { properties, additional_properties, preserve_unknown_fields, .. } => {
            if let Some(p) = properties.get(name) {
                FieldType::Named(Type::Node(p))
            } else if let Some(values) = additional_properties {
                FieldType::Entry(Type::Node(values))
            } else if *preserve_unknown_fields {
                FieldType::Entry(Type::Deduced)
            } else {
                FieldType::Unknown
            }
        }
        SchemaKind::Any { .. } => FieldType::Entry(Type::Deduced),
        _ => FieldType::Unknown,
    }
}

fn list_kind<'a>(schema: &'a Schema, list_type: Option<ListType>, keys: &'a [String]) -> ListKind<'a> {
    match list_type {
        Some(ListType::Atomic) => ListKind::Atomic,
        Some(ListType::Set) => ListKind::Set,
        Some(ListType::Map) => ListKind::Map(keys),
        None if schema.patch_strategy.as_deref().is_some_and(|s| s.split(',').any(|p| p == "merge")) => match &schema.patch_merge_key {
            Some(key) => ListKind::Map(std::slice::from_ref(key)),
            None => ListKind::Set,
        },
        None => ListKind::Atomic,
    }
}
