//! Duplicate JSON object keys in a request body, which `fieldValidation=Strict` rejects and the
//! default (`Warn`) reports — parsing into a map keeps only the last value, so they are found by
//! walking the document once more, before it is decoded.
//!
//! The walk keeps the current path as a stack of segments and renders a path only for a
//! duplicate, and only for the first few: rendering every path, or every duplicate's, costs the
//! depth times the key length per key, which a 3 MiB body can make quadratic (gigabytes).

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// Most duplicate keys reported for one body (the first ones, in document order).
pub const MAX_REPORTED: usize = 100;

/// Longest path reported, in bytes; longer ones are cut and end with `...`.
pub const MAX_PATH_BYTES: usize = 1024;

/// Paths (`spec.msg`, `spec.items[1].name`) of keys that appear twice in one JSON object: at
/// most [`MAX_REPORTED`], each at most [`MAX_PATH_BYTES`] long. Malformed JSON yields the
/// duplicates before the error (decoding reports the error). Called on bodies already checked
/// to be at most [`crate::json::MAX_DEPTH`] deep, so serde's own depth limit is lifted.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut walk = Walk { path: Vec::new(), found: Vec::new() };
    let mut de = serde_json::Deserializer::from_slice(body);
    de.disable_recursion_limit();
    let _ = Node(&mut walk).deserialize(&mut de);
    walk.found
}

/// One step of a path: an object key or a list index.
enum Segment {
    Key(String),
    Index(usize),
}

struct Walk {
    path: Vec<Segment>,
    found: Vec<String>,
}

impl Walk {
    /// The current path, as kube writes field paths, cut at [`MAX_PATH_BYTES`].
    fn render(&self) -> String {
        let mut out = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(key) if out.is_empty() => out.push_str(key),
                Segment::Key(key) => {
                    out.push('.');
                    out.push_str(key);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
            if out.len() > MAX_PATH_BYTES {
                let mut cut = MAX_PATH_BYTES;
                while !out.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.truncate(cut);
                out.push_str("...");
                break;
            }
        }
        out
    }
}

/// The walk over one value.
struct Node<'a>(&'a mut Walk);

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let walk = self.0;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let repeated = !seen.insert(key.clone());
            walk.path.push(Segment::Key(key));
            if repeated && walk.found.len() < MAX_REPORTED {
                let path = walk.render();
                walk.found.push(path);
            }
            let value = map.next_value_seed(Node(&mut *walk));
            walk.path.pop();
            value?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let walk = self.0;
        let mut i = 0;
        loop {
            walk.path.push(Segment::Index(i));
            let item = seq.next_element_seed(Node(&mut *walk));
            walk.path.pop();
            if item?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_repeated_keys_with_their_paths() {
        let body = br#"{"spec":{"msg":"a","msg":"b","items":[{"n":1,"n":2}]},"kind":"Foo","kind":"Foo"}"#;
        assert_eq!(duplicate_fields(body), vec!["spec.msg", "spec.items[0].n", "kind"]);
        assert!(duplicate_fields(br#"{"a":{"b":1},"c":{"b":2}}"#).is_empty());
        assert!(duplicate_fields(b"{not json").is_empty());
        assert_eq!(duplicate_fields(br#"[[{}], {"x": [0, {"y": 1, "y": 2}]}]"#), vec!["[1].x[1].y"]);
    }

    #[test]
    fn reports_few_short_paths_in_linear_time() {
        // The body_json fuzz target ran out of memory on a body like this one (2 MB): every
        // duplicate's path repeated the 1.2 MB of keys above it.
        let key = "k".repeat(20_000);
        let mut body = String::new();
        for _ in 0..60 {
            body.push_str(&format!("{{\"{key}\":"));
        }
        body.push('{');
        body.push_str(&vec!["\"a\":0"; 150_000].join(","));
        body.push('}');
        body.push_str(&"}".repeat(60));
        let started = std::time::Instant::now();
        let found = duplicate_fields(body.as_bytes());
        assert_eq!(found.len(), MAX_REPORTED);
        assert!(found.iter().all(|p| p.len() == MAX_PATH_BYTES + 3 && p.ends_with("...")));
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    }
}
