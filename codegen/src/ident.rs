//! Every conversion from a spec name to a Rust name goes through here.

use proc_macro2::{Ident, Span};

/// Rust keywords that need the raw form (`r#type`) or, for the few that cannot be raw, a suffix.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn", "for", "if", "impl",
    "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait",
    "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof",
    "unsized", "virtual", "yield", "try", "gen",
];

/// Words that cannot be raw identifiers.
const NOT_RAW: &[&str] = &["crate", "self", "Self", "super", "_"];

/// Splits a JSON name into words: camelCase humps, digits runs, and any non-alphanumeric separators.
fn words(name: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let chars: Vec<char> = name.chars().collect();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        // A new word starts at an upper-case letter after a lower-case letter or digit
        // ("fooBar"), or at the last capital of an acronym ("HTTPServer" → HTTP, Server).
        // A plural acronym ("podIPs") keeps its trailing `s`.
        let after_next = chars.get(i + 2).copied().unwrap_or(' ');
        let plural_acronym = next == 's' && !after_next.is_ascii_lowercase();
        let boundary = c.is_ascii_uppercase()
            && !current.is_empty()
            && (prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next.is_ascii_lowercase() && !plural_acronym));
        if boundary {
            words.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// `fooBar-baz` → `foo_bar_baz`, made a valid identifier.
pub fn snake(name: &str) -> String {
    let joined = words(name).iter().map(|w| w.to_ascii_lowercase()).collect::<Vec<_>>().join("_");
    sanitize(joined, "field")
}

/// `fooBar-baz` → `FooBarBaz`, made a valid identifier.
pub fn camel(name: &str) -> String {
    let joined: String = words(name)
        .iter()
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + &cs.as_str().to_ascii_lowercase_if_all_caps(),
                None => String::new(),
            }
        })
        .collect();
    sanitize(joined, "Type")
}

trait LowerIfCaps {
    fn to_ascii_lowercase_if_all_caps(&self) -> String;
}

impl LowerIfCaps for str {
    /// Keeps `Spec` as is, but turns the tail of an acronym (`HTTP` → `Http`) to lower case.
    fn to_ascii_lowercase_if_all_caps(&self) -> String {
        if self.chars().all(|c| !c.is_ascii_lowercase()) {
            self.to_ascii_lowercase()
        } else {
            self.to_string()
        }
    }
}

/// Prefixes names that start with a digit and fills empty ones.
fn sanitize(name: String, empty: &str) -> String {
    if name.is_empty() {
        empty.to_string()
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

/// An identifier token, raw (`r#type`) for keywords, suffixed with `_` where raw is not allowed.
pub fn ident(name: &str) -> Ident {
    if NOT_RAW.contains(&name) {
        Ident::new(&format!("{name}_"), Span::call_site())
    } else if KEYWORDS.contains(&name) {
        Ident::new_raw(name, Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}

/// Module name of an API group: `hello.zeng.dev` → `hello_zeng_dev`.
pub fn group_module(group: &str) -> String {
    snake(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        let cases = [
            ("msg", "msg", "Msg"),
            ("msg1", "msg1", "Msg1"),
            ("fooBar", "foo_bar", "FooBar"),
            ("XMLHttpRequest", "xml_http_request", "XmlHttpRequest"),
            ("apiVersion", "api_version", "ApiVersion"),
            ("x-kubernetes-int", "x_kubernetes_int", "XKubernetesInt"),
            ("$ref", "ref", "Ref"),
            ("3d", "_3d", "_3d"),
            ("podIPs", "pod_ips", "PodIPs"),
            ("", "field", "Type"),
            ("hello.zeng.dev", "hello_zeng_dev", "HelloZengDev"),
        ];
        for (name, s, c) in cases {
            assert_eq!(snake(name), s, "snake({name:?})");
            assert_eq!(camel(name), c, "camel({name:?})");
        }
    }

    #[test]
    fn keywords_become_raw_or_suffixed() {
        assert_eq!(ident("type").to_string(), "r#type");
        assert_eq!(ident("self").to_string(), "self_");
        assert_eq!(ident("msg").to_string(), "msg");
    }
}
