//! YAML request bodies, and YAML output in the style kube-apiserver writes it (Go's yaml.v2
//! through sigs.k8s.io/yaml): two-space indentation, sequences not indented under their key,
//! keys in the object's order, strings that would read back as another type double-quoted,
//! multi-line strings as literal blocks.

use serde_json::Value;
use std::fmt::Write;

/// The deepest nesting the YAML reader (serde_yaml_ng) accepts.
pub const MAX_YAML_DEPTH: usize = 128;

/// Reads a YAML request body. A document that is JSON (kube's YAML decoder reads JSON too) is
/// read as JSON, with JSON's depth limit ([`crate::json::MAX_DEPTH`]) rather than the 128 levels
/// the YAML reader allows.
///
/// Flow collections (`[`, `{`) nested deeper than the reader accepts are refused before
/// reading: the reader (a port of libyaml) takes time proportional to the nesting for every
/// token, so 100,000 brackets would otherwise cost minutes.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        match crate::json::parse(bytes) {
            Ok(value) => return Ok(value),
            Err(e) if e.to_string().ends_with("exceeded max depth") => {
                return Err(format!("exceeded max depth of {}", crate::json::MAX_DEPTH))
            }
            Err(_) => {}
        }
    }
    if flow_depth(bytes) > MAX_YAML_DEPTH {
        return Err(format!("exceeded max depth of {MAX_YAML_DEPTH}"));
    }
    serde_yaml_ng::from_slice(bytes).map_err(|e| e.to_string())
}

/// How deep the flow collections of a YAML document nest, found without parsing it. Brackets
/// inside quoted scalars, comments and block scalars (`|`, `>`) do not count, nor do those
/// inside plain scalars (`a[b`): a bracket opens a collection only where a value can start.
/// Overcounting is possible only for unusual plain scalars; it would refuse a document the
/// reader could read, never accept one it could not.
fn flow_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut i = 0;
    let n = bytes.len();
    // The byte before the current one that is not a space, or b'\n' at the start of a line.
    let mut previous = b'\n';
    // While skipping the lines of a block scalar: the indentation of its header line.
    let mut block_scalar: Option<usize> = None;
    let mut line_indent = 0usize;
    let mut at_line_start = true;
    while i < n {
        let c = bytes[i];
        if at_line_start {
            let start = i;
            while i < n && bytes[i] == b' ' {
                i += 1;
            }
            line_indent = i - start;
            at_line_start = false;
            if let Some(header) = block_scalar {
                let blank = i >= n || bytes[i] == b'\n' || bytes[i] == b'\r';
                if blank || line_indent > header {
                    // Still inside the block scalar: skip the line.
                    while i < n && bytes[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                block_scalar = None;
            }
            previous = b'\n';
            continue;
        }
        let value_start = matches!(previous, b'\n' | b'[' | b'{' | b',' | b':' | b'-' | b'?') || bytes[i.saturating_sub(1)] == b' ';
        match c {
            b'\n' => {
                at_line_start = true;
                i += 1;
                continue;
            }
            b'#' if i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'\n') => {
                while i < n && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' if value_start => {
                let quote = c;
                i += 1;
                while i < n {
                    match bytes[i] {
                        b'\\' if quote == b'"' => i += 2,
                        b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
                        q if q == quote => break,
                        _ => i += 1,
                    }
                }
            }
            b'[' | b'{' if value_start => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'|' | b'>' if value_start && depth == 0 => {
                // A block scalar header: `|`, `>-`, `|2+`, maybe a comment after it.
                let mut j = i + 1;
                while j < n && matches!(bytes[j], b'-' | b'+' | b'0'..=b'9') {
                    j += 1;
                }
                while j < n && matches!(bytes[j], b' ' | b'\t') {
                    j += 1;
                }
                if j >= n || matches!(bytes[j], b'\n' | b'\r' | b'#') {
                    block_scalar = Some(line_indent);
                }
            }
            _ => {}
        }
        if c != b' ' && c != b'\t' {
            // A bracket inside a plain scalar opened nothing; nor does the next one.
            previous = if matches!(c, b'[' | b'{') && !value_start { b'a' } else { c };
        }
        i += 1;
    }
    deepest
}

/// Encodes a JSON value as YAML.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&scalar_text(scalar, 0));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, level: usize) {
    for (key, value) in map {
        indent(out, level);
        write_key(out, key, level);
        write_value_after_key(out, value, level);
    }
}

/// Writes `key:` after the indentation. A key longer than 128 bytes, or one written over several
/// lines, becomes an explicit key (`? key`, then `:` on a line of its own) as yaml.v2 writes it:
/// readers take an implicit key only on one line of at most 1024 characters.
fn write_key(out: &mut String, key: &str, level: usize) {
    let text = string_text(key, level + 2);
    if key.len() <= 128 && !text.contains('\n') {
        out.push_str(&text);
    } else {
        out.push_str("? ");
        out.push_str(&text);
        out.push('\n');
        indent(out, level);
    }
    out.push(':');
}

/// Writes what follows `key:` — inline for scalars and empty collections, on the next lines for
/// the rest (sequences at the key's own indentation, as yaml.v2 does).
fn write_value_after_key(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, m, level + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, level);
        }
        scalar => {
            out.push(' ');
            out.push_str(&scalar_text(scalar, level + 2));
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], level: usize) {
    for item in items {
        indent(out, level);
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => {
                // The first key sits on the dash's line; the others align with it.
                let mut first = true;
                for (key, value) in m {
                    if !first {
                        indent(out, level + 2);
                    }
                    first = false;
                    write_key(out, key, level + 2);
                    write_value_after_key(out, value, level + 2);
                }
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, level + 2);
            }
            scalar => {
                out.push_str(&scalar_text(scalar, level + 2));
                out.push('\n');
            }
        }
    }
}

fn scalar_text(value: &Value, level: usize) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string_text(s, level),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// How a string is written: plain, single-quoted, double-quoted, or as a literal block.
fn string_text(s: &str, level: usize) -> String {
    if s.is_empty() {
        return "\"\"".into();
    }
    // A literal block needs a line of content (line breaks alone read back as "") whose
    // indentation is not part of the string.
    let body = s.trim_end_matches('\n');
    if s.contains('\n') && !body.is_empty() && s.chars().all(|c| c == '\n' || !needs_escape(c)) && !first_content_line_indented(s) {
        // The chomping indicator says how many final line breaks belong to the string: none
        // (strip), one (clip) or all that follow (keep).
        let chomp = match s.len() - body.len() {
            0 => "|-",
            1 => "|",
            _ => "|+",
        };
        let mut block = chomp.to_string();
        for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
            block.push('\n');
            if !line.is_empty() {
                block.extend(std::iter::repeat_n(' ', level));
                block.push_str(line);
            }
        }
        return block;
    }
    if resolves_to_other_type(s) || s.chars().any(needs_escape) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// Whether the first line with content starts with a space: a literal block takes its
/// indentation from that line, so the space would be read as indentation, not content.
fn first_content_line_indented(s: &str) -> bool {
    s.split('\n').find(|line| !line.is_empty()).is_some_and(|line| line.starts_with(' '))
}

/// Characters a YAML reader does not take literally outside double quotes: control characters,
/// the Unicode line and paragraph separators (line breaks to YAML 1.1 readers such as Go's and
/// libyaml) and the byte order mark.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            '\u{feff}' => out.push_str("\\uFEFF"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether yaml.v2 would read the plain string as a bool, null, number or timestamp.
fn resolves_to_other_type(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON",
        "off", "Off", "OFF", "~", "null", "Null", "NULL", ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf", "+.Inf", "+.INF",
        ".nan", ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let digits = s.trim_start_matches(['+', '-']).replace('_', "");
    let number = !digits.is_empty()
        && (digits.parse::<f64>().is_ok()
            || digits.strip_prefix("0x").is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
            || digits.strip_prefix("0o").is_some_and(|o| !o.is_empty() && o.chars().all(|c| ('0'..='7').contains(&c)))
            || digits.strip_prefix("0b").is_some_and(|b| !b.is_empty() && b.chars().all(|c| c == '0' || c == '1'))
            // Sexagesimal numbers such as 1:20 (YAML 1.1).
            || (digits.contains(':') && digits.split(':').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '.'))));
    number || looks_like_timestamp(s)
}

/// YAML 1.1 timestamps: `2001-12-14`, `2001-12-14T21:59:43Z`, `2001-12-14 21:59:43.10 -5`.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && s[5..].split(|c: char| !c.is_ascii_digit()).next().is_some_and(|m| (1..=2).contains(&m.len()))
        && s.chars().all(|c| c.is_ascii_digit() || "-:.TtZz +".contains(c))
}

/// Whether the string can be written without quotes: it must not start with an indicator
/// character, nor contain what would end or comment a plain scalar.
fn plain_allowed(s: &str) -> bool {
    let first = s.chars().next().unwrap_or(' ');
    let last = s.chars().last().unwrap_or(' ');
    let dash_item = first == '-' && (s.len() == 1 || s[1..].starts_with(' '));
    // `---` and `...` at the start of a line mark documents.
    let document_marker = s.starts_with("---") || s.starts_with("...");
    !dash_item
        && !document_marker
        && !"?:,[]{}#&*!|>'\"%@`".contains(first)
        && first != ' '
        && last != ' '
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && !s.contains('\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_depth_ignores_brackets_that_open_nothing() {
        assert_eq!(flow_depth(b"a: [[1], {b: [2]}]\n"), 3);
        assert_eq!(flow_depth(b"a: '[[[['\nb: \"{{{{\"\nc: a[[[b\n# [[[[\n"), 0);
        assert_eq!(flow_depth(b"a: |\n  [[[[\n  {{{{\nb: [1]\n"), 1);
        assert_eq!(flow_depth(b"- [\n  [\n   []]]\n"), 3);
        let deep = format!("a: {}", "[".repeat(100_000));
        assert_eq!(flow_depth(deep.as_bytes()), 100_000);
        assert_eq!(parse(deep.as_bytes()).unwrap_err(), "exceeded max depth of 128");
    }
    use serde_json::json;

    #[test]
    fn literal_blocks_keep_every_final_line_break_and_leading_space() {
        // Found by the body_yaml fuzz target: "kept\n\n" came back as "kept\n", and "\n x" as "\nx".
        for s in ["kept\n\n", "\n", "\n\n", "a\nb", "a\nb\n", "\na", "\n x", "x\n  y", " x\ny"] {
            let v = json!({"k": s, "l": [s]});
            let back: Value = serde_yaml_ng::from_str(&to_yaml(&v)).unwrap();
            assert_eq!(back, v, "{s:?} written as\n{}", to_yaml(&v));
        }
        assert_eq!(to_yaml(&json!({"k": "a\n\n"})), "k: |+\n  a\n\n");
    }

    #[test]
    fn long_and_multi_line_keys_are_explicit() {
        // Found by the body_yaml fuzz target: a key with a line break was written as a literal
        // block, which cannot be a key.
        let long = "k".repeat(1100);
        for key in ["a\nb", "a\n\n", long.as_str(), "x\n y"] {
            for value in [json!("v"), json!({"n": 1}), json!([1, [2]]), json!({}), json!("l1\nl2")] {
                let v = json!({key: value.clone(), "list": [{key: value.clone(), "z": 0}]});
                let back: Value = serde_yaml_ng::from_str(&to_yaml(&v)).unwrap_or_else(|e| panic!("{e}\n{}", to_yaml(&v)));
                assert_eq!(back, v, "written as\n{}", to_yaml(&v));
            }
        }
        assert_eq!(to_yaml(&json!({"a\nb": 1})), "? |-\n  a\n  b\n: 1\n");
    }

    #[test]
    fn document_markers_are_quoted() {
        // Found by the body_yaml fuzz target: a key `--- x` at the start of a line began a
        // second document.
        for s in ["--- x", "---", "...", "... y", "----"] {
            let v = json!({s: s, "l": [s]});
            let back: Value = serde_yaml_ng::from_str(&to_yaml(&v)).unwrap_or_else(|e| panic!("{e}\n{}", to_yaml(&v)));
            assert_eq!(back, v);
        }
        assert_eq!(to_yaml(&json!({"a": "--- x"})), "a: '--- x'\n");
    }

    #[test]
    fn unicode_line_separators_and_bom_are_escaped() {
        // Found by the body_yaml fuzz target: a plain U+2028 read back as null.
        for s in ["\u{2028}", "a\u{2029}b", "\u{feff}x", "x\u{85}", "a\n\u{2028}\nb"] {
            let v = json!({"k": s});
            let back: Value = serde_yaml_ng::from_str(&to_yaml(&v)).unwrap();
            assert_eq!(back, v, "{s:?} written as\n{}", to_yaml(&v));
        }
        assert_eq!(to_yaml(&json!({"k": "a\u{2028}b"})), "k: \"a\\Lb\"\n");
    }

    #[test]
    fn writes_like_kube_apiserver() {
        let v = json!({
            "apiVersion": "hello.zeng.dev/v1",
            "metadata": {"creationTimestamp": "2026-11-25T15:18:45Z", "generation": 1, "labels": {}, "managedFields": [
                {"fieldsV1": {"f:spec": {".": {}}}, "manager": "m"}
            ], "resourceVersion": "198"},
            "spec": {"flag": "true", "list": [1, "two", []], "multi": "a\nb", "quote": "it's: here", "empty": ""}
        });
        assert_eq!(
            to_yaml(&v),
            "apiVersion: hello.zeng.dev/v1\nmetadata:\n  creationTimestamp: \"2026-11-25T15:18:45Z\"\n  generation: 1\n  labels: {}\n  managedFields:\n  - fieldsV1:\n      f:spec:\n        .: {}\n    manager: m\n  resourceVersion: \"198\"\nspec:\n  flag: \"true\"\n  list:\n  - 1\n  - two\n  - []\n  multi: |-\n    a\n    b\n  quote: 'it''s: here'\n  empty: \"\"\n"
        );
    }
}
