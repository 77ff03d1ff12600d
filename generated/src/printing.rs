//! Runtime support for the generated table printers: the few JSONPath operations codegen compiles
//! printer-column paths into (see `codegen::jsonpath`).

use serde_json::Value;
use std::cmp::Ordering;

/// Element `n` of an array; negative `n` counts from the end.
pub fn index(value: &Value, n: i64) -> Option<&Value> {
    let items = value.as_array()?;
    let i = if n < 0 { items.len().checked_sub(n.unsigned_abs() as usize)? } else { n as usize };
    items.get(i)
}

/// Array elements or object values, in order (`[*]`).
pub fn children(value: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match value {
        Value::Array(items) => Box::new(items.iter()),
        Value::Object(map) => Box::new(map.values()),
        _ => Box::new(std::iter::empty()),
    }
}

/// Array elements (what a filter tests).
pub fn elements(value: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match value {
        Value::Array(items) => Box::new(items.iter()),
        _ => Box::new(std::iter::empty()),
    }
}

/// Every member called `name`, at any depth, in document order (`..name`).
pub fn descendants<'a>(value: &'a Value, name: &'a str) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
    let own = value.as_object().and_then(|m| m.get(name));
    Box::new(own.into_iter().chain(children(value).flat_map(move |child| descendants(child, name))))
}

/// Filter comparison operators.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Compares a member (absent: never matches) with a literal; numbers numerically, strings
/// lexically, other values only for (in)equality.
pub fn compare(member: Option<&Value>, op: Op, literal: &Value) -> bool {
    let Some(member) = member else { return false };
    let ordering = match (member, literal) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (a, b) if a == b => Some(Ordering::Equal),
        _ => None,
    };
    match op {
        Op::Eq => ordering == Some(Ordering::Equal),
        Op::Ne => ordering != Some(Ordering::Equal),
        Op::Lt => ordering == Some(Ordering::Less),
        Op::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => ordering == Some(Ordering::Greater),
        Op::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn helpers() {
        let v = json!({"a": [1, 2, 3], "b": {"name": "x", "c": [{"name": "y"}]}});
        assert_eq!(index(&v["a"], -1), Some(&json!(3)));
        assert_eq!(index(&v["a"], 5), None);
        assert_eq!(children(&v["a"]).count(), 3);
        let names: Vec<_> = descendants(&v, "name").collect();
        assert_eq!(names, vec![&json!("x"), &json!("y")]);
        assert!(compare(Some(&json!(2)), Op::Ge, &json!(2.0)));
        assert!(compare(Some(&json!("Ready")), Op::Eq, &json!("Ready")));
        assert!(!compare(None, Op::Ne, &json!("x")));
    }
}
