//! Answers built from stored bytes without decoding them.
//!
//! Objects are stored as compact JSON with every object's keys sorted and without
//! `metadata.resourceVersion` (see `docs/architecture.md`). A read in JSON differs from those
//! bytes in two places only: `apiVersion` names the served version, and `metadata` gains
//! `resourceVersion` at its sorted place. [`render`] writes exactly that by copying the stored
//! bytes around the two spots, which is what makes GET and LIST cheap: no parse into a tree, no
//! re-encoding, no freeing. It gives the same bytes as decoding, setting both fields and encoding
//! again (a test checks it on many objects). It is not a validator: it trusts values to be the
//! well-formed compact JSON serde_json wrote, and checks only the shape around the two spots
//! (the top-level object, `apiVersion` before `metadata`, `metadata` an object with plain keys);
//! anything else makes it decline, and the caller takes the decoding path.

/// Appends the served form of the stored object `stored` to `out`: `apiVersion` set to
/// `api_version` and `metadata.resourceVersion` to `revision`. Returns `false`, with `out` as it
/// was, when the bytes are not in the stored form (then decode them instead).
pub fn render(stored: &[u8], api_version: &str, revision: u64, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let ok = Renderer { c: Cursor { bytes: stored, at: 0 }, out }.object(api_version, revision).is_some();
    if !ok {
        out.truncate(start);
    }
    ok
}

/// A JSON string, as serde_json writes it.
pub fn string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// Appends the `PartialObjectMetadata` of the stored object `stored` to `out`:
/// `{"kind":"PartialObjectMetadata","apiVersion":<api_version>,"metadata":{…}}` with the
/// metadata fields in `order` (`resourceVersion` set to `revision`; fields not named are left
/// out) and each managedFields entry's fields in `entry_order`. Returns `false`, with `out` as it
/// was, when the bytes are not in the stored form.
pub fn partial_object_metadata(
    stored: &[u8],
    api_version: &str,
    revision: u64,
    order: &[&str],
    entry_order: &[&str],
    out: &mut Vec<u8>,
) -> bool {
    let start = out.len();
    let ok = write_partial_object_metadata(stored, api_version, revision, order, entry_order, out).is_some();
    if !ok {
        out.truncate(start);
    }
    ok
}

fn write_partial_object_metadata(
    stored: &[u8],
    api_version: &str,
    revision: u64,
    order: &[&str],
    entry_order: &[&str],
    out: &mut Vec<u8>,
) -> Option<()> {
    let mut top = Cursor { bytes: stored, at: 0 };
    let fields = top.fields()?;
    if top.at != stored.len() {
        return None;
    }
    let meta = fields.iter().find(|(k, _)| *k == b"metadata")?.1.clone();
    let meta = Cursor { bytes: &stored[..meta.end], at: meta.start }.fields()?;
    out.extend_from_slice(b"{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":");
    out.extend_from_slice(string(api_version).as_bytes());
    out.extend_from_slice(b",\"metadata\":{");
    let mut first = true;
    for name in order {
        let value = meta.iter().find(|(k, _)| *k == name.as_bytes()).map(|(_, r)| &stored[r.clone()]);
        if value.is_none() && *name != "resourceVersion" {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_key(out, name.as_bytes());
        match (*name, value) {
            ("resourceVersion", _) => {
                out.push(b'"');
                out.extend_from_slice(revision.to_string().as_bytes());
                out.push(b'"');
            }
            ("managedFields", Some(entries)) => reordered_entries(entries, entry_order, out)?,
            (_, Some(value)) => out.extend_from_slice(value),
            (_, None) => unreachable!("skipped above"),
        }
    }
    out.extend_from_slice(b"}}");
    Some(())
}

/// Writes `"key":` (a key without characters to escape).
fn write_key(out: &mut Vec<u8>, key: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(key);
    out.extend_from_slice(b"\":");
}

/// An array of objects, each with its fields in `order` (others left out); other elements as
/// they are.
fn reordered_entries(array: &[u8], order: &[&str], out: &mut Vec<u8>) -> Option<()> {
    let mut c = Cursor { bytes: array, at: 0 };
    c.expect(b'[')?;
    out.push(b'[');
    let mut first = true;
    while c.peek()? != b']' {
        if !first {
            c.expect(b',')?;
            out.push(b',');
        }
        first = false;
        if c.peek()? != b'{' {
            let start = c.at;
            c.skip_value()?;
            out.extend_from_slice(&array[start..c.at]);
            continue;
        }
        let fields = c.fields()?;
        out.push(b'{');
        let mut first_field = true;
        for name in order {
            let Some((_, range)) = fields.iter().find(|(k, _)| *k == name.as_bytes()) else { continue };
            if !first_field {
                out.push(b',');
            }
            first_field = false;
            write_key(out, name.as_bytes());
            out.extend_from_slice(&array[range.clone()]);
        }
        out.push(b'}');
    }
    out.push(b']');
    Some(())
}

struct Renderer<'a, 'o> {
    c: Cursor<'a>,
    out: &'o mut Vec<u8>,
}

impl<'a> Renderer<'a, '_> {
    /// The top-level object: replaces `apiVersion`'s value and descends into `metadata`.
    fn object(&mut self, api_version: &str, revision: u64) -> Option<()> {
        self.c.expect(b'{')?;
        self.out.push(b'{');
        let (mut saw_api_version, mut saw_metadata) = (false, false);
        let mut first = true;
        while let Some(key) = self.c.next_key(first)? {
            if !first {
                self.out.push(b',');
            }
            first = false;
            write_key(self.out, key);
            match key {
                b"apiVersion" => {
                    self.c.skip_value()?;
                    self.out.extend_from_slice(string(api_version).as_bytes());
                    saw_api_version = true;
                }
                b"metadata" => {
                    self.metadata(revision)?;
                    saw_metadata = true;
                    // Keys are sorted, so none after `metadata` is `apiVersion`: the rest of the
                    // object is copied as it is.
                    let rest = &self.c.bytes[self.c.at..];
                    if rest.last() != Some(&b'}') {
                        return None;
                    }
                    self.out.extend_from_slice(&rest[..rest.len() - 1]);
                    self.c.at = self.c.bytes.len() - 1;
                }
                _ => self.copy_value()?,
            }
        }
        self.out.push(b'}');
        // Trailing bytes, or a missing field that decoding would add at the end: decline.
        (self.c.at == self.c.bytes.len() && saw_api_version && saw_metadata).then_some(())
    }

    /// `metadata`: copied, with `resourceVersion` inserted (or replaced) at its sorted place.
    fn metadata(&mut self, revision: u64) -> Option<()> {
        const FIELD: &[u8] = b"resourceVersion";
        self.c.expect(b'{')?;
        self.out.push(b'{');
        let mut written = false;
        let mut first = true;
        let write = |out: &mut Vec<u8>, first: bool| {
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(b"\"resourceVersion\":\"");
            out.extend_from_slice(revision.to_string().as_bytes());
            out.push(b'"');
        };
        let mut first_in = true;
        while let Some(key) = self.c.next_key(first_in)? {
            first_in = false;
            if key == FIELD {
                self.c.skip_value()?;
                if !written {
                    write(self.out, first);
                    written = true;
                    first = false;
                }
                continue;
            }
            if !written && key > FIELD {
                write(self.out, first);
                written = true;
                first = false;
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            write_key(self.out, key);
            self.copy_value()?;
        }
        if !written {
            write(self.out, first);
        }
        self.out.push(b'}');
        Some(())
    }

    fn copy_value(&mut self) -> Option<()> {
        let start = self.c.at;
        self.c.skip_value()?;
        self.out.extend_from_slice(&self.c.bytes[start..self.c.at]);
        Some(())
    }
}

/// A position in compact JSON, and the moves the renderers need.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// The fields of the object at the cursor: each key and where its value is.
    fn fields(&mut self) -> Option<Vec<(&'a [u8], std::ops::Range<usize>)>> {
        self.expect(b'{')?;
        let mut fields = Vec::new();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(fields);
        }
        loop {
            let key = self.key()?;
            let start = self.at;
            self.skip_value()?;
            fields.push((key, start..self.at));
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(fields);
                }
                _ => return None,
            }
        }
    }

    /// The next key of the object being read, after the comma unless it is the `first`;
    /// `Some(None)` past the object's closing brace.
    fn next_key(&mut self, first: bool) -> Option<Option<&'a [u8]>> {
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(None);
        }
        if !first {
            self.expect(b',')?;
        }
        self.key().map(Some)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A key and its colon; the raw bytes between the quotes. Keys with escapes decline: their
    /// order by raw bytes may differ from their order as text.
    fn key(&mut self) -> Option<&'a [u8]> {
        let bytes: &'a [u8] = self.bytes;
        self.expect(b'"')?;
        let start = self.at;
        let length = memchr::memchr2(b'"', b'\\', &bytes[start..])?;
        if bytes[start + length] == b'\\' {
            return None;
        }
        self.at = start + length + 1;
        self.expect(b':')?;
        Some(&bytes[start..start + length])
    }

    /// Moves past one value (compact JSON: no whitespace between tokens).
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.skip_container(b'{', b'}'),
            b'[' => self.skip_container(b'[', b']'),
            _ => {
                let length = self.bytes[self.at..].iter().position(|b| matches!(b, b',' | b'}' | b']'))?;
                (length > 0).then(|| self.at += length)
            }
        }
    }

    /// Moves past an object or array. Outside strings the brackets of each kind balance on
    /// their own in well-formed JSON, so counting `open` and `close` alone finds the end.
    fn skip_container(&mut self, open: u8, close: u8) -> Option<()> {
        let mut depth = 0usize;
        loop {
            let found = memchr::memchr3(b'"', open, close, &self.bytes[self.at..])?;
            self.at += found;
            match self.bytes[self.at] {
                b'"' => self.skip_string()?,
                b if b == open => {
                    depth += 1;
                    self.at += 1;
                }
                _ => {
                    depth = depth.checked_sub(1)?;
                    self.at += 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
            }
        }
    }

    fn skip_string(&mut self) -> Option<()> {
        self.expect(b'"')?;
        loop {
            self.at += memchr::memchr2(b'"', b'\\', &self.bytes[self.at..])?;
            if self.bytes[self.at] == b'"' {
                self.at += 1;
                return Some(());
            }
            // A backslash: skip it and the byte it escapes.
            self.at += 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::object::{canonicalize, set_resource_version};
    use serde_json::{json, Value};

    /// What the decoding path answers for the same stored bytes.
    fn decoded(stored: &[u8], api_version: &str, revision: u64) -> Vec<u8> {
        let mut object: Value = serde_json::from_slice(stored).unwrap();
        set_resource_version(&mut object, revision);
        object.as_object_mut().unwrap().insert("apiVersion".into(), Value::String(api_version.into()));
        serde_json::to_vec(&object).unwrap()
    }

    fn stored(mut object: Value) -> Vec<u8> {
        canonicalize(&mut object);
        serde_json::to_vec(&object).unwrap()
    }

    fn rendered(stored: &[u8], api_version: &str, revision: u64) -> Option<Vec<u8>> {
        let mut out = b"prefix".to_vec();
        if !render(stored, api_version, revision, &mut out) {
            assert_eq!(out, b"prefix", "a declined render leaves the output as it was");
            return None;
        }
        Some(out[6..].to_vec())
    }

    #[test]
    fn renders_the_same_bytes_as_decoding() {
        let long = "x".repeat(5000);
        let objects = [
            json!({"apiVersion": "g/v1", "kind": "Foo", "metadata": {"name": "a", "namespace": "default"}, "spec": {"msg": "hi"}}),
            json!({"apiVersion": "g/v1", "kind": "Foo", "metadata": {}}),
            json!({"apiVersion": "g/v1", "kind": "Foo", "metadata": {"uid": "u", "selfLink": "s"}}),
            json!({"apiVersion": "g/v1", "kind": "Foo", "metadata": {"annotations": {"resourceVersion": "{\"}", "z\"}]": "\\"}}, "a": [1, 2.5, -3e-7, true, null]}),
            json!({"apiVersion": "g/v1", "kind": "Foo", "metadata": {"name": "é—💥", "labels": {"a": "b"}, "managedFields": [{"fieldsV1": {"f:spec": {"f:x": {}}}, "manager": "m"}], "uid": "1"}, "spec": {"nested": [[[{}]], {"k": [{"resourceVersion": 1}]}], "text": long, "ctl": "\u{1}\t\n\"\\/"}}),
            json!({"metadata": {"name": "n"}, "apiVersion": "old/v1", "zeta": {"metadata": {"x": 1}}, "kind": "Foo"}),
            json!({"apiVersion": "g/v1", "kind": "Foo", "metadata": {"name": "n", "resourceVersion": "7", "uid": "u"}}),
            json!({"apiVersion": "g/v1", "kind": "Foo", "metadata": {"name": "n", "resourceVersion": "7"}}),
            json!({"apiVersion": "g/v1", "kind": "Foo", "metadata": {"generation": 18446744073709551615u64, "deletionGracePeriodSeconds": -1}, "n": 1.0e300}),
        ];
        for object in objects {
            let bytes = stored(object);
            for (api_version, revision) in [("g/v1", 1u64), ("g/v2beta1", 123_456_789), ("", u64::MAX)] {
                let expected = decoded(&bytes, api_version, revision);
                assert_eq!(
                    rendered(&bytes, api_version, revision).map(String::from_utf8),
                    Some(Ok(String::from_utf8(expected).unwrap())),
                    "for {}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
    }

    #[test]
    fn partial_object_metadata_is_what_the_table_module_builds() {
        use crate::engine::table::{self, MANAGED_FIELDS_ORDER, META_ORDER};
        let objects = [
            json!({"apiVersion": "g/v1", "kind": "Foo", "metadata": {"name": "a", "namespace": "default", "uid": "u", "labels": {"x": "y"}, "creationTimestamp": "t", "generation": 3, "managedFields": [{"apiVersion": "g/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}, "manager": "m", "operation": "Update", "time": "t"}, {"manager": "n", "subresource": "status"}]}, "spec": {"msg": "hi"}}),
            json!({"apiVersion": "g/v1", "kind": "Foo", "metadata": {}}),
            json!({"apiVersion": "g/v1", "kind": "Foo", "metadata": {"finalizers": ["a/b"], "deletionTimestamp": "t", "deletionGracePeriodSeconds": 0, "ownerReferences": [{"uid": "o"}], "annotations": {"k": "\"}"}}}),
        ];
        for object in objects {
            let bytes = stored(object);
            let mut decoded: Value = serde_json::from_slice(&bytes).unwrap();
            set_resource_version(&mut decoded, 42);
            let expected = serde_json::to_string(&table::partial_object_metadata(decoded, false)).unwrap();
            let mut out = Vec::new();
            assert!(partial_object_metadata(&bytes, "meta.k8s.io/v1", 42, META_ORDER, MANAGED_FIELDS_ORDER, &mut out));
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
        let mut out = b"x".to_vec();
        assert!(!partial_object_metadata(b"{\"kind\":1}", "meta.k8s.io/v1", 1, META_ORDER, MANAGED_FIELDS_ORDER, &mut out));
        assert_eq!(out, b"x");
    }

    #[test]
    fn declines_what_is_not_in_the_stored_form() {
        for text in [
            "",
            "[]",
            "{",
            r#"{"apiVersion":"g/v1"}"#,
            r#"{"metadata":{}}"#,
            r#"{"apiVersion":"g/v1","metadata":{}} "#,
            r#"{"apiVersion":"g/v1","metadata":{"a\"b":1}}"#,
            r#"{"apiVersion":"g/v1","metadata":[]}"#,
            r#"{"apiVersion":"g/v1","metadata":{"name":"unterminated}}"#,
            r#"{"apiVersion":"g/v1","metadata":{"name":}}"#,
            r#"{"apiVersion":"g/v1","metadata":{},"kind":"Foo""#,
            r#"{"metadata":{},"apiVersion":"g/v1"}"#,
            r#"{"apiVersion":"g/v1","metadata":{"x":[[[]}}"#,
        ] {
            assert_eq!(rendered(text.as_bytes(), "g/v1", 1), None, "for {text}");
        }
    }
}
