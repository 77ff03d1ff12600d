//! Objects as CEL values, typed by their schema the way kube-apiserver's `UnstructuredToVal`
//! does: declared properties under their escaped names, maps with their own keys, lists of
//! `x-kubernetes-list-type: set|map` compared without regard to order, `format: date-time|date`
//! as timestamps, `duration` as durations, `byte` as bytes, int-or-string as either.

use apimodel::{ListType, Schema, SchemaKind};
use cel::common::traits::{Adder, Container, Indexer, Iterable, Sizer, Zeroer};
use cel::common::types::{
    CelBool, CelBytes, CelDouble, CelDuration, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelTimestamp, Type, LIST_TYPE,
};
use cel::common::value::{BuiltinRef, StaticVal, Val};
use serde_json::Value;
use std::any::Any;
use std::collections::HashMap;

/// Names that CEL reserves, exposed as `__name__` (as kube's `cel.Escape`).
const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// A property name as CEL sees it, or `None` if it cannot be expressed (then the property is
/// not visible to rules, as in kube).
pub fn escape(name: &str) -> Option<String> {
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("__") {
            out.push_str("__underscores__");
            rest = &rest[2..];
            continue;
        }
        match c {
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

/// Whether rules can see values of this schema at all. Untyped nodes (kept by
/// `x-kubernetes-preserve-unknown-fields`) are not, nor lists and maps of them.
pub fn exposed(schema: &Schema) -> bool {
    match &schema.kind {
        SchemaKind::Any { .. } => false,
        SchemaKind::Array { items, .. } => exposed(items),
        SchemaKind::Object { additional_properties: Some(values), .. } => exposed(values),
        SchemaKind::Object { .. }
        | SchemaKind::String
        | SchemaKind::Integer
        | SchemaKind::Number
        | SchemaKind::Boolean
        | SchemaKind::IntOrString => true,
    }
}

/// The type name kube reports as the "value" of a failed rule (`spec: Invalid value: "object"`).
pub fn type_name(schema: &Schema) -> &'static str {
    schema.type_name().unwrap_or("")
}

/// `value` as a CEL value typed by `schema`. `resource` marks the root of a resource (or an
/// embedded one), where `apiVersion`, `kind` and `metadata.name`/`generateName` are visible too.
pub fn to_val(value: &Value, schema: &Schema, resource: bool) -> Box<dyn Val> {
    match (&schema.kind, value) {
        (_, Value::Null) => Box::new(CelNull),
        (SchemaKind::Object { properties, additional_properties, embedded_resource, .. }, Value::Object(map)) => {
            let mut out: HashMap<CelMapKey<'static>, Box<dyn Val>> = HashMap::with_capacity(map.len());
            if let Some(values) = additional_properties {
                for (k, v) in map {
                    out.insert(CelMapKey::from(k.clone()), to_val(v, values, values_embedded(values)));
                }
                return Box::new(CelMap::from(out));
            }
            for (k, v) in map {
                let Some(child) = properties.get(k) else { continue };
                if !exposed(child) {
                    continue;
                }
                if let Some(name) = escape(k) {
                    out.insert(CelMapKey::from(name), to_val(v, child, values_embedded(child)));
                }
            }
            if resource || *embedded_resource {
                for field in ["apiVersion", "kind"] {
                    if let Some(Value::String(s)) = map.get(field) {
                        out.insert(CelMapKey::from(field.to_string()), Box::new(CelString::from(s.clone())));
                    }
                }
                let mut meta: HashMap<CelMapKey<'static>, Box<dyn Val>> = HashMap::new();
                if let Some(Value::Object(m)) = map.get("metadata") {
                    for field in ["name", "generateName"] {
                        if let Some(Value::String(s)) = m.get(field) {
                            meta.insert(CelMapKey::from(field.to_string()), Box::new(CelString::from(s.clone())));
                        }
                    }
                    out.insert(CelMapKey::from("metadata"), Box::new(CelMap::from(meta)));
                }
            }
            Box::new(CelMap::from(out))
        }
        (SchemaKind::Array { items, list_type, list_map_keys }, Value::Array(list)) => {
            let elements: Vec<Box<dyn Val>> = list.iter().map(|item| to_val(item, items, values_embedded(items))).collect();
            let list_val = CelList::from(elements);
            match list_type {
                Some(ListType::Set) | Some(ListType::Map) => {
                    let _ = list_map_keys;
                    let mut keys: Vec<String> = list.iter().map(canonical).collect();
                    keys.sort_unstable();
                    Box::new(UnorderedList { list: list_val, sorted: keys })
                }
                Some(ListType::Atomic) | None => Box::new(list_val),
            }
        }
        (SchemaKind::String, Value::String(s)) => string_val(s, schema.format.as_deref()),
        (SchemaKind::Number, Value::Number(n)) => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        (SchemaKind::Any { .. }, v) | (SchemaKind::IntOrString, v) | (_, v) => plain(v),
    }
}

fn values_embedded(schema: &Schema) -> bool {
    matches!(schema.kind, SchemaKind::Object { embedded_resource: true, .. })
}

/// A JSON value by its own type: integers as int (double if out of range), as for int-or-string.
fn plain(value: &Value) -> Box<dyn Val> {
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Box::new(CelInt::from(i)),
            None => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => Box::new(CelString::from(s.clone())),
        Value::Array(items) => Box::new(CelList::from(items.iter().map(plain).collect::<Vec<_>>())),
        Value::Object(map) => {
            Box::new(CelMap::from(map.iter().map(|(k, v)| (CelMapKey::from(k.clone()), plain(v))).collect::<HashMap<_, _>>()))
        }
    }
}

/// A string by its format: timestamps, durations and bytes where kube converts them (and the
/// string itself where the value does not parse, which schema validation reports).
fn string_val(s: &str, format: Option<&str>) -> Box<dyn Val> {
    match format {
        Some("date-time") => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                return Box::new(CelTimestamp::from(t));
            }
        }
        Some("date") => {
            if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                let t = d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().fixed_offset();
                return Box::new(CelTimestamp::from(t));
            }
        }
        Some("duration") => {
            if let Some(d) = parse_duration(s) {
                return Box::new(CelDuration::from(d));
            }
        }
        Some("byte") => {
            if let Ok(bytes) = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s) {
                return Box::new(CelBytes::from(bytes));
            }
        }
        _ => {}
    }
    Box::new(CelString::from(s.to_string()))
}

/// A Go-style duration (`1h30m`, `1.5s`, `-300ms`), plus the `d` and `w` units OpenAPI's
/// `duration` format accepts.
pub fn parse_duration(s: &str) -> Option<chrono::Duration> {
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(chrono::Duration::zero());
    }
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.bytes().take_while(|b| !(b.is_ascii_digit() || *b == b'.')).count();
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            "w" => 7.0 * 86400e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        nanos += number * unit;
    }
    if !nanos.is_finite() || nanos > i64::MAX as f64 {
        return None;
    }
    let d = chrono::Duration::nanoseconds(nanos as i64);
    Some(if negative { -d } else { d })
}

/// A JSON value rendered with sorted object keys, so equal values render equally.
pub fn canonical(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&map[k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// A `set` or `map` list: a list in every respect, except that two of them are equal when they
/// hold the same items in any order (kube's `unstructuredSetList` / `unstructuredMapList`).
#[derive(Debug, Clone)]
pub struct UnorderedList {
    list: CelList<'static>,
    /// The items, canonically rendered and sorted: what equality compares.
    sorted: Vec<String>,
}

impl Val for UnorderedList {
    fn get_type(&self) -> &Type {
        <Self as Val>::cel_type()
    }

    fn cel_type() -> &'static Type {
        static TYPE: Type = LIST_TYPE;
        &TYPE
    }

    fn as_adder<'b, 'w>(&'b self) -> Option<&'b (dyn Adder + 'w)>
    where
        Self: 'w,
    {
        self.list.as_adder()
    }

    fn as_container(&self) -> Option<&dyn Container> {
        self.list.as_container()
    }

    fn as_indexer<'b, 'w>(&'b self) -> Option<&'b (dyn Indexer + 'w)>
    where
        Self: 'w,
    {
        self.list.as_indexer()
    }

    fn as_iterable<'b, 'w>(&'b self) -> Option<&'b (dyn Iterable + 'w)>
    where
        Self: 'w,
    {
        self.list.as_iterable()
    }

    fn as_sizer(&self) -> Option<&dyn Sizer> {
        self.list.as_sizer()
    }

    fn as_zeroer(&self) -> Option<&dyn Zeroer> {
        self.list.as_zeroer()
    }

    fn equals(&self, other: &dyn Val) -> bool {
        match other.as_any().and_then(|any| any.downcast_ref::<UnorderedList>()) {
            Some(other) => self.sorted == other.sorted,
            None => self.list.equals(other),
        }
    }

    fn clone_as_boxed<'w>(&self) -> Box<dyn Val + 'w> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }

    fn as_builtin<'b, 'w>(&'b self) -> BuiltinRef<'b, 'w>
    where
        Self: 'w,
    {
        BuiltinRef::List(&self.list)
    }
}

impl StaticVal for UnorderedList {}
