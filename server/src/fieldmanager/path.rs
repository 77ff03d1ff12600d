//! Field paths: the elements that name one field of an object (`.spec`, `[name="web"]`,
//! `[="a"]`), their total order, how they print in conflict messages, and their `f:`/`k:`/`v:`/`i:`
//! keys in the FieldsV1 encoding.
//!
//! The order and the printed forms are observable (conflict messages list fields in set order),
//! so they follow the conventions of Kubernetes' structured-merge-diff library: field names sort
//! before list keys, keys before values, values before indexes; numbers compare numerically
//! whether they are integers or floats.

use super::gojson;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::fmt;

/// One step of a path into an object.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A field of a map or struct (`f:name`).
    Field(String),
    /// An item of a list of type `map`, by its key fields sorted by name (`k:{"name":"x"}`).
    Key(Vec<(String, Value)>),
    /// An item of a list of type `set`, by its value (`v:"x"`).
    Value(Value),
    /// An item of a list by position (`i:0`); never produced by our schemas, kept when read.
    Index(usize),
}

/// A path from the object's root.
pub type Path = Vec<PathElement>;

impl PathElement {
    /// The element's key in FieldsV1 (`f:spec`, `k:{"name":"a"}`, `v:"x"`, `i:3`).
    pub fn to_fields_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut out = String::from("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    gojson::write_string(name, &mut out);
                    out.push(':');
                    gojson::write_value(value, &mut out);
                }
                out.push('}');
                out
            }
            PathElement::Value(value) => format!("v:{}", gojson::to_string(value)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a FieldsV1 key. `Ok(None)` is a key of an unknown kind, which readers skip (as
    /// kube-apiserver does, so newer encodings do not break older servers).
    pub fn from_fields_key(key: &str) -> Result<Option<PathElement>, String> {
        let Some((kind, rest)) = key.split_once(':') else {
            return Err(format!("missing colon: {key}"));
        };
        if kind.len() != 1 {
            return Err(format!("missing colon: {key}"));
        }
        match kind {
            "f" => Ok(Some(PathElement::Field(rest.to_string()))),
            "v" => serde_json::from_str(rest).map(|v| Some(PathElement::Value(v))).map_err(|e| format!("invalid value in {key}: {e}")),
            "k" => {
                let map: Map<String, Value> = serde_json::from_str(rest).map_err(|e| format!("invalid key in {key}: {e}"))?;
                let mut fields: Vec<(String, Value)> = map.into_iter().collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(Some(PathElement::Key(fields)))
            }
            "i" => rest.parse().map(|i| Some(PathElement::Index(i))).map_err(|e| format!("invalid index in {key}: {e}")),
            _ => Ok(None),
        }
    }

    /// The field name, when this is a field.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            PathElement::Field(name) => Some(name),
            _ => None,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => compare_key_fields(a, b),
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

/// Prints as in kube's conflict messages: `.name`, `[name="a",port=80]`, `[="x"]`, `[3]`.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", value_to_string(v))).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value_to_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A whole path as printed in conflict messages (`.spec.ports[port=80].name`).
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(|pe| pe.to_string()).collect()
}

fn compare_key_fields(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    for ((ak, av), (bk, bv)) in a.iter().zip(b) {
        let order = ak.cmp(bk).then_with(|| compare_values(av, bv));
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// A total order on JSON values: numbers (integers and floats compared numerically), then
/// strings, booleans, lists, maps and null.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                let order = compare_values(i, j);
                if order != Ordering::Equal {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((xk, xv), (yk, yv)) in xs.iter().zip(&ys) {
                let order = xk.cmp(yk).then_with(|| compare_values(xv, yv));
                if order != Ordering::Equal {
                    return order;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn compare_numbers(x: &serde_json::Number, y: &serde_json::Number) -> Ordering {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a.cmp(&b);
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return a.cmp(&b);
    }
    let (a, b) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// Value equality as the merge sees it: like `==`, except that an integer equals a float of the
/// same value (YAML and JSON clients disagree about `1` and `1.0`).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(i, j)| values_equal(i, j)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w))),
        _ => a == b,
    }
}

/// A value as kube prints it inside a path: strings quoted Go-style, numbers and booleans bare.
fn value_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => gojson::go_quote(s),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => gojson::go_float_v(n.as_f64().unwrap_or(0.0)),
        },
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => format!("[{}]", items.iter().map(value_to_string).collect::<Vec<_>>().join(",")),
        Value::Object(map) => map.iter().map(|(k, v)| format!("{k}={}", value_to_string(v))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_keys_round_trip() {
        let cases = [
            (PathElement::Field("spec".into()), "f:spec"),
            (PathElement::Key(vec![("name".into(), json!("a")), ("port".into(), json!(80))]), r#"k:{"name":"a","port":80}"#),
            (PathElement::Value(json!("x<y")), r#"v:"x\u003cy""#),
            (PathElement::Index(3), "i:3"),
        ];
        for (pe, key) in cases {
            assert_eq!(pe.to_fields_key(), key);
            assert_eq!(PathElement::from_fields_key(key).unwrap(), Some(pe));
        }
        // Key fields are sorted by name when read, whatever order the writer used.
        let read = PathElement::from_fields_key(r#"k:{"port":80,"name":"a"}"#).unwrap().unwrap();
        assert_eq!(read.to_fields_key(), r#"k:{"name":"a","port":80}"#);
        assert_eq!(PathElement::from_fields_key("z:whatever").unwrap(), None);
        assert!(PathElement::from_fields_key("nocolon").is_err());
    }

    #[test]
    fn printed_as_in_conflict_messages() {
        let path = vec![
            PathElement::Field("spec".into()),
            PathElement::Field("ports".into()),
            PathElement::Key(vec![("port".into(), json!(80)), ("protocol".into(), json!("TCP"))]),
            PathElement::Field("finalizers".into()),
            PathElement::Value(json!("a")),
        ];
        assert_eq!(path_string(&path), r#".spec.ports[port=80,protocol="TCP"].finalizers[="a"]"#);
    }

    #[test]
    fn order_is_fields_keys_values_indexes() {
        let mut elements = [
            PathElement::Index(0),
            PathElement::Value(json!("b")),
            PathElement::Value(json!(2)),
            PathElement::Key(vec![("name".into(), json!("a"))]),
            PathElement::Field("z".into()),
            PathElement::Field("a".into()),
        ];
        elements.sort();
        let keys: Vec<String> = elements.iter().map(PathElement::to_fields_key).collect();
        assert_eq!(keys, ["f:a", "f:z", r#"k:{"name":"a"}"#, "v:2", r#"v:"b""#, "i:0"]);
        assert_eq!(PathElement::Value(json!(1)), PathElement::Value(json!(1.0)));
    }
}
