//! JSON decoding with the limits and the words of kube-apiserver, whose decoders are Go's
//! `encoding/json` and its fork `sigs.k8s.io/json`.
//!
//! Every document is first checked by [`check`], a loop over the bytes with an explicit stack:
//! it refuses what Go's scanner refuses, with Go's message (`invalid character 'x' after object
//! key`, `unexpected end of JSON input`), and refuses containers nested deeper than
//! [`MAX_DEPTH`] (10,000, Go's limit) without recursing. Only then is the document built into a
//! [`Value`] by serde_json, with its own recursion limit (128) lifted: the depth is already known
//! to be at most 10,000.
//!
//! Building, validating, patching, storing and encoding a value recurse once per level, so
//! documents that deep need deep stacks: the binary runs requests on threads of
//! [`crate::THREAD_STACK_BYTES`] (see `docs/hardening.md`).
//!
//! ```
//! let error = server::json::parse(br#"{"a": tru}"#).unwrap_err();
//! assert_eq!(error.to_string(), "invalid character '}' in literal true (expecting 'e')");
//! let deep = format!("{}1{}", "[".repeat(10_001), "]".repeat(10_001));
//! assert_eq!(server::json::parse(deep.as_bytes()).unwrap_err().to_string(), "invalid character '[' exceeded max depth");
//! ```

use serde::Deserialize;
use serde_json::Value;

/// The deepest nesting of objects and arrays a document may have (Go's `maxNestingDepth`).
pub const MAX_DEPTH: usize = 10_000;

/// Why a document is not acceptable JSON, worded as Go's `encoding/json` words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(String);

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SyntaxError {}

/// Checks `bytes` as Go's scanner does, then builds the value.
pub fn parse(bytes: &[u8]) -> Result<Value, SyntaxError> {
    check(bytes)?;
    build(bytes)
}

/// Builds a value from bytes already known to be well formed and at most [`MAX_DEPTH`] deep
/// (what [`check`] accepted, or what this server stored).
pub fn build(bytes: &[u8]) -> Result<Value, SyntaxError> {
    // Go replaces invalid UTF-8 inside strings with U+FFFD where serde_json refuses it; outside
    // strings, any byte above 0x7F already failed the check.
    let text = String::from_utf8_lossy(bytes);
    let mut de = serde_json::Deserializer::from_str(&text);
    de.disable_recursion_limit();
    let value = Value::deserialize(&mut de).map_err(|e| SyntaxError(e.to_string()))?;
    de.end().map_err(|e| SyntaxError(e.to_string()))?;
    Ok(value)
}

/// What the scanner expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (top level, after `:`, after `,` in an array).
    Value,
    /// A value or `]` (just after `[`).
    ValueOrEnd,
    /// A key or `}` (just after `{`).
    KeyOrEnd,
    /// A key (after `,` in an object).
    Key,
    /// `:` after a key.
    Colon,
    /// `,` or the closing bracket after a value inside a container, or nothing at top level.
    AfterValue,
}

/// What a container on the stack is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Object,
    Array,
}

/// Checks that `bytes` is one JSON value, as Go's `encoding/json` scanner does, with its
/// messages. Nothing recurses: containers are kept on an explicit stack.
pub fn check(bytes: &[u8]) -> Result<(), SyntaxError> {
    let mut stack: Vec<Container> = Vec::new();
    let mut expect = Expect::Value;
    let mut i = 0;
    let n = bytes.len();
    let eof = || SyntaxError("unexpected end of JSON input".into());
    loop {
        // Whitespace between tokens.
        while i < n && matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        if i == n {
            return if expect == Expect::AfterValue && stack.is_empty() { Ok(()) } else { Err(eof()) };
        }
        let c = bytes[i];
        match expect {
            Expect::Value | Expect::ValueOrEnd => {
                if expect == Expect::ValueOrEnd && c == b']' {
                    stack.pop();
                    i += 1;
                    expect = Expect::AfterValue;
                    continue;
                }
                match c {
                    b'{' | b'[' => {
                        stack.push(if c == b'{' { Container::Object } else { Container::Array });
                        if stack.len() > MAX_DEPTH {
                            return Err(invalid(c, "exceeded max depth"));
                        }
                        i += 1;
                        expect = if c == b'{' { Expect::KeyOrEnd } else { Expect::ValueOrEnd };
                    }
                    b'"' => {
                        i = scan_string(bytes, i + 1)?;
                        expect = Expect::AfterValue;
                    }
                    b'-' | b'0'..=b'9' => {
                        i = scan_number(bytes, i)?;
                        expect = Expect::AfterValue;
                    }
                    b't' => {
                        i = scan_literal(bytes, i, "true")?;
                        expect = Expect::AfterValue;
                    }
                    b'f' => {
                        i = scan_literal(bytes, i, "false")?;
                        expect = Expect::AfterValue;
                    }
                    b'n' => {
                        i = scan_literal(bytes, i, "null")?;
                        expect = Expect::AfterValue;
                    }
                    _ => return Err(invalid(c, "looking for beginning of value")),
                }
            }
            Expect::KeyOrEnd | Expect::Key => match c {
                b'}' if expect == Expect::KeyOrEnd => {
                    stack.pop();
                    i += 1;
                    expect = Expect::AfterValue;
                }
                b'"' => {
                    i = scan_string(bytes, i + 1)?;
                    expect = Expect::Colon;
                }
                _ => return Err(invalid(c, "looking for beginning of object key string")),
            },
            Expect::Colon => {
                if c != b':' {
                    return Err(invalid(c, "after object key"));
                }
                i += 1;
                expect = Expect::Value;
            }
            Expect::AfterValue => match stack.last() {
                None => return Err(invalid(c, "after top-level value")),
                Some(Container::Object) => match c {
                    b',' => {
                        i += 1;
                        expect = Expect::Key;
                    }
                    b'}' => {
                        stack.pop();
                        i += 1;
                    }
                    _ => return Err(invalid(c, "after object key:value pair")),
                },
                Some(Container::Array) => match c {
                    b',' => {
                        i += 1;
                        expect = Expect::Value;
                    }
                    b']' => {
                        stack.pop();
                        i += 1;
                    }
                    _ => return Err(invalid(c, "after array element")),
                },
            },
        }
        if i > n {
            return Err(eof());
        }
    }
}

/// Scans a string from just after its opening quote; returns the index after the closing one.
fn scan_string(bytes: &[u8], mut i: usize) -> Result<usize, SyntaxError> {
    let eof = || SyntaxError("unexpected end of JSON input".into());
    loop {
        let c = *bytes.get(i).ok_or_else(eof)?;
        i += 1;
        match c {
            b'"' => return Ok(i),
            b'\\' => {
                let e = *bytes.get(i).ok_or_else(eof)?;
                i += 1;
                match e {
                    b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => {}
                    b'u' => {
                        for _ in 0..4 {
                            let h = *bytes.get(i).ok_or_else(eof)?;
                            if !h.is_ascii_hexdigit() {
                                return Err(invalid(h, "in \\u hexadecimal character escape"));
                            }
                            i += 1;
                        }
                    }
                    _ => return Err(invalid(e, "in string escape code")),
                }
            }
            c if c < 0x20 => return Err(invalid(c, "in string literal")),
            _ => {}
        }
    }
}

/// Scans a number starting at `i`; returns the index after it. What follows a complete number
/// is judged by the caller, as Go does (`01` is `0` followed by an unexpected `1`).
fn scan_number(bytes: &[u8], mut i: usize) -> Result<usize, SyntaxError> {
    let at = |i: usize| bytes.get(i).copied();
    let eof = || SyntaxError("unexpected end of JSON input".into());
    if at(i) == Some(b'-') {
        i += 1;
        match at(i) {
            None => return Err(eof()),
            Some(b'0'..=b'9') => {}
            Some(c) => return Err(invalid(c, "in numeric literal")),
        }
    }
    if at(i) == Some(b'0') {
        i += 1;
    } else {
        while matches!(at(i), Some(b'0'..=b'9')) {
            i += 1;
        }
    }
    if at(i) == Some(b'.') {
        i += 1;
        match at(i) {
            None => return Err(eof()),
            Some(b'0'..=b'9') => {}
            Some(c) => return Err(invalid(c, "after decimal point in numeric literal")),
        }
        while matches!(at(i), Some(b'0'..=b'9')) {
            i += 1;
        }
    }
    if matches!(at(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(at(i), Some(b'+' | b'-')) {
            i += 1;
        }
        match at(i) {
            None => return Err(eof()),
            Some(b'0'..=b'9') => {}
            Some(c) => return Err(invalid(c, "in exponent of numeric literal")),
        }
        while matches!(at(i), Some(b'0'..=b'9')) {
            i += 1;
        }
    }
    Ok(i)
}

/// Scans `true`, `false` or `null` starting at `i`.
fn scan_literal(bytes: &[u8], i: usize, word: &str) -> Result<usize, SyntaxError> {
    for (k, want) in word.bytes().enumerate().skip(1) {
        match bytes.get(i + k) {
            None => return Err(SyntaxError("unexpected end of JSON input".into())),
            Some(&c) if c == want => {}
            Some(&c) => return Err(invalid(c, &format!("in literal {word} (expecting {})", quote_char(want)))),
        }
    }
    Ok(i + word.len())
}

/// Go's `invalid character 'x' <context>`.
fn invalid(c: u8, context: &str) -> SyntaxError {
    SyntaxError(format!("invalid character {} {context}", quote_char(c)))
}

/// A byte as Go's scanner quotes it in errors: the byte read as the code point of the same
/// number, escaped as `strconv.Quote` would, between single quotes.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".to_string(),
        b'"' => "'\"'".to_string(),
        b'\\' => r"'\\'".to_string(),
        0x07 => r"'\a'".to_string(),
        0x08 => r"'\b'".to_string(),
        0x0c => r"'\f'".to_string(),
        b'\n' => r"'\n'".to_string(),
        b'\r' => r"'\r'".to_string(),
        b'\t' => r"'\t'".to_string(),
        0x0b => r"'\v'".to_string(),
        0x00..=0x1f | 0x7f => format!(r"'\x{c:02x}'"),
        // C1 controls, the no-break space and the soft hyphen are not printable for Go.
        0x80..=0xa0 | 0xad => format!(r"'\u{:04x}'", c as u32),
        _ => format!("'{}'", c as char),
    }
}

/// The start of a request body as kube-apiserver shows it in decoding errors: up to 30 bytes,
/// as text when the body starts with `{`, else in hexadecimal; ` ...` when cut.
pub fn summarize(bytes: &[u8]) -> String {
    const SHOWN: usize = 30;
    let cut = bytes.len() > SHOWN;
    let head = &bytes[..bytes.len().min(SHOWN)];
    let mut text = match bytes.first() {
        None => return "<empty>".to_string(),
        Some(b'{') => String::from_utf8_lossy(head).into_owned(),
        Some(_) => head.iter().map(|b| format!("{b:02x}")).collect(),
    };
    if cut {
        text.push_str(" ...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go 1.23's `json.Unmarshal` messages for the same inputs.
    #[test]
    fn messages_match_go() {
        let cases: &[(&str, &str)] = &[
            ("", "unexpected end of JSON input"),
            ("   ", "unexpected end of JSON input"),
            ("{", "unexpected end of JSON input"),
            (r#"{"apiVersion":"#, "unexpected end of JSON input"),
            ("x", "invalid character 'x' looking for beginning of value"),
            ("not json", "invalid character 'o' in literal null (expecting 'u')"),
            ("tru", "unexpected end of JSON input"),
            ("{a:1}", "invalid character 'a' looking for beginning of object key string"),
            (r#"{"a" 1}"#, "invalid character '1' after object key"),
            (r#"{"a":1 "b":2}"#, "invalid character '\"' after object key:value pair"),
            (r#"{"a":1,}"#, "invalid character '}' looking for beginning of object key string"),
            ("[1,]", "invalid character ']' looking for beginning of value"),
            ("[1 2]", "invalid character '2' after array element"),
            (r#"{"a":1}x"#, "invalid character 'x' after top-level value"),
            ("01", "invalid character '1' after top-level value"),
            ("-x", "invalid character 'x' in numeric literal"),
            ("1.x", "invalid character 'x' after decimal point in numeric literal"),
            ("1ex", "invalid character 'x' in exponent of numeric literal"),
            ("\"a\u{1}\"", r"invalid character '\x01' in string literal"),
            ("\"a\nb\"", r"invalid character '\n' in string literal"),
            (r#""\q""#, "invalid character 'q' in string escape code"),
            (r#""\u12g4""#, r"invalid character 'g' in \u hexadecimal character escape"),
            ("{'a':1}", r"invalid character '\'' looking for beginning of object key string"),
            ("// c\n{}", "invalid character '/' looking for beginning of value"),
            ("\u{0}", r"invalid character '\x00' looking for beginning of value"),
            ("\u{feff}{}", "invalid character 'ï' looking for beginning of value"),
        ];
        for (input, want) in cases {
            assert_eq!(check(input.as_bytes()).unwrap_err().to_string(), *want, "{input:?}");
        }
        for ok in ["{}", "[]", " 1 ", "-0.5e+3", r#"{"a":[true,false,null,"\u00e9\n"]}"#, "\"\u{7f}\""] {
            assert_eq!(check(ok.as_bytes()), Ok(()), "{ok:?}");
        }
        assert_eq!(check(&[b'"', 0xff, b'"']), Ok(()));
        assert_eq!(check(&[0xc3]).unwrap_err().to_string(), "invalid character 'Ã' looking for beginning of value");
        assert_eq!(check(&[0xa0]).unwrap_err().to_string(), r"invalid character '\u00a0' looking for beginning of value");
    }

    #[test]
    fn depth_is_limited_without_recursion() {
        let nested = |n: usize| format!("{}{}", r#"{"a":"#.repeat(n), "}".repeat(n)).replace(r#""a":}"#, r#""a":1}"#);
        let ok = nested(MAX_DEPTH);
        assert_eq!(check(ok.as_bytes()), Ok(()));
        let too_deep = nested(MAX_DEPTH + 1);
        assert_eq!(check(too_deep.as_bytes()).unwrap_err().to_string(), "invalid character '{' exceeded max depth");
        let huge = "[".repeat(1_000_000);
        assert_eq!(check(huge.as_bytes()).unwrap_err().to_string(), "invalid character '[' exceeded max depth");
        // Brackets inside strings do not count.
        let quoted = format!(r#"{{"a":"{}"}}"#, "[".repeat(MAX_DEPTH + 1));
        assert_eq!(check(quoted.as_bytes()), Ok(()));
    }

    #[test]
    fn invalid_utf8_in_strings_becomes_replacement_characters() {
        assert_eq!(parse(&[b'"', b'a', 0xff, b'"']).unwrap(), Value::String("a\u{fffd}".into()));
    }

    #[test]
    fn summaries_as_kube_apiserver_shows_them() {
        assert_eq!(summarize(b""), "<empty>");
        assert_eq!(summarize(br#"{"apiVersion":"#), r#"{"apiVersion":"#);
        assert_eq!(summarize(br#"{"apiVersion":"hello.zeng.dev/v1","kind":"Foo"}"#), r#"{"apiVersion":"hello.zeng.dev/ ..."#);
        assert_eq!(summarize(b"[]"), "5b5d");
    }
}
