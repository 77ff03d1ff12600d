//! JSON and string formatting the way Go writes them, for the few places where kube-apiserver's
//! bytes are visible: FieldsV1 keys, manager identifiers, the last-applied annotation, and the
//! quoted values in conflict messages.
//!
//! Go's `encoding/json` differs from serde_json in three ways that matter here: map keys are
//! sorted, `<`, `>`, `&`, U+2028 and U+2029 are escaped as `\u003c`…, and floats with an integral
//! value print without a fraction (`100`, not `100.0`).

use serde_json::Value;

/// `value` as compact Go JSON.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

/// Appends `value` as compact Go JSON (object keys sorted).
pub fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (_, Some(u)) => out.push_str(&u.to_string()),
            _ => out.push_str(&go_float_json(n.as_f64().unwrap_or(0.0))),
        },
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_value(v, out);
            }
            out.push('}');
        }
    }
}

/// Appends a JSON string literal with Go's escaping (HTML-safe).
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as `encoding/json` writes it: no exponent between 1e-6 and 1e21.
pub fn go_float_json(f: f64) -> String {
    go_float(f, -6, 21)
}

/// A float as Go's `%v` prints it: no exponent between 1e-4 and 1e21.
pub fn go_float_v(f: f64) -> String {
    go_float(f, -4, 21)
}

/// Shortest representation, in exponent form outside `[10^min_exp, 10^max_exp)`, with Go's
/// exponent style (`1e+21`, `1e-07`).
fn go_float(f: f64, min_exp: i32, max_exp: i32) -> String {
    if f == 0.0 || !f.is_finite() {
        return if f == 0.0 { "0".into() } else { f.to_string() };
    }
    let exp = f.abs().log10().floor() as i32;
    if exp < min_exp || exp >= max_exp {
        let text = format!("{f:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        // Rust's Display is the shortest round-trip form without an exponent; Go drops ".0".
        let text = f.to_string();
        text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
    }
}

/// A string quoted as Go's `%q` does: escapes for quotes, backslashes and control characters.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_like_go() {
        let v = json!({"b": [1, 2.5, 100.0, 1e21], "a": "<x> & \u{2028}", "c": null});
        assert_eq!(to_string(&v), r#"{"a":"\u003cx\u003e \u0026 \u2028","b":[1,2.5,100,1e+21],"c":null}"#);
        assert_eq!(go_float_json(0.0000001), "1e-07");
        assert_eq!(go_float_v(0.00001), "1e-05");
        assert_eq!(go_float_v(0.5), "0.5");
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\x01é""#);
    }
}
