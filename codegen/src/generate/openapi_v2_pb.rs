//! Protobuf encoding of an OpenAPI v2 document as gnostic's `openapi.v2.Document` message
//! (`github.com/google/gnostic-models/openapiv2/OpenAPIv2.proto`), which kubectl 1.27 and 1.28
//! download (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) before every
//! create or apply.
//!
//! kube-apiserver produces it by parsing its JSON document with gnostic (`ParseDocument`) and
//! marshalling the result. We do the same walk directly from the JSON value: each message is a
//! table of `(field number, JSON key, encoding)` in field-number order, which is the order Go's
//! protobuf writes fields; maps become repeated `Named*` messages in document order, and
//! one-ofs are chosen the way gnostic's parser resolves them. Values gnostic keeps as text —
//! vendor extensions (`x-…`), `default`, `enum` and `example` — are `Any { yaml }` holding the
//! value as `gopkg.in/yaml.v3` writes it, which the private `yaml` module reproduces.
//!
//! Encoding kube-apiserver 1.32's whole JSON document gives exactly its protobuf response (see
//! the test).

use prost::encoding::{encode_key, encode_varint, WireType};
use serde_json::{Map, Value};

/// Encodes a Swagger 2.0 JSON document as a gnostic `openapi.v2.Document`.
pub fn encode(doc: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    message(&mut out, doc, DOCUMENT);
    out
}

/// How the value under one JSON key becomes one protobuf field.
#[derive(Clone, Copy)]
enum Field {
    /// `string`.
    Str(&'static str),
    /// `bool`.
    Bool(&'static str),
    /// `double`.
    Double(&'static str),
    /// `int64`.
    Int(&'static str),
    /// `repeated string`.
    Strings(&'static str),
    /// `Any` (YAML text of the value).
    Any(&'static str),
    /// `repeated Any`.
    Anys(&'static str),
    /// A nested message; present whenever the key is, even if empty.
    Msg(&'static str, Encoder),
    /// `repeated` nested messages from a JSON array.
    Msgs(&'static str, Encoder),
    /// `repeated NamedAny vendor_extension`: every `x-` key of the object, in order.
    Extensions,
}

/// Encodes the fields of one message from a JSON value.
type Encoder = fn(&mut Vec<u8>, &Value);

use Field::{Any, Anys, Bool, Double, Extensions, Int, Msg, Msgs, Str, Strings};

/// A message described by a field table.
type Table = &'static [(u32, Field)];

const DOCUMENT: Table = &[
    (1, Str("swagger")),
    (2, Msg("info", |o, v| message(o, v, INFO))),
    (3, Str("host")),
    (4, Str("basePath")),
    (5, Strings("schemes")),
    (6, Strings("consumes")),
    (7, Strings("produces")),
    (8, Msg("paths", paths)),
    (9, Msg("definitions", |o, v| named_map(o, v, 1, |_| true, schema))),
    (10, Msg("parameters", |o, v| named_map(o, v, 1, |_| true, parameter))),
    (11, Msg("responses", |o, v| named_map(o, v, 1, |_| true, |o, v| message(o, v, RESPONSE)))),
    (12, Msgs("security", security_requirement)),
    (13, Msg("securityDefinitions", |o, v| named_map(o, v, 1, |_| true, security_definitions_item))),
    (14, Msgs("tags", |o, v| message(o, v, TAG))),
    (15, Msg("externalDocs", |o, v| message(o, v, EXTERNAL_DOCS))),
    (16, Extensions),
];

const INFO: Table = &[
    (1, Str("title")),
    (2, Str("version")),
    (3, Str("description")),
    (4, Str("termsOfService")),
    (5, Msg("contact", |o, v| message(o, v, CONTACT))),
    (6, Msg("license", |o, v| message(o, v, LICENSE))),
    (7, Extensions),
];

const CONTACT: Table = &[(1, Str("name")), (2, Str("url")), (3, Str("email")), (4, Extensions)];
const LICENSE: Table = &[(1, Str("name")), (2, Str("url")), (3, Extensions)];
const EXTERNAL_DOCS: Table = &[(1, Str("description")), (2, Str("url")), (3, Extensions)];
const TAG: Table =
    &[(1, Str("name")), (2, Str("description")), (3, Msg("externalDocs", |o, v| message(o, v, EXTERNAL_DOCS))), (4, Extensions)];
const JSON_REFERENCE: Table = &[(1, Str("$ref")), (2, Str("description"))];

const PATH_ITEM: Table = &[
    (1, Str("$ref")),
    (2, Msg("get", |o, v| message(o, v, OPERATION))),
    (3, Msg("put", |o, v| message(o, v, OPERATION))),
    (4, Msg("post", |o, v| message(o, v, OPERATION))),
    (5, Msg("delete", |o, v| message(o, v, OPERATION))),
    (6, Msg("options", |o, v| message(o, v, OPERATION))),
    (7, Msg("head", |o, v| message(o, v, OPERATION))),
    (8, Msg("patch", |o, v| message(o, v, OPERATION))),
    (9, Msgs("parameters", parameters_item)),
    (10, Extensions),
];

const OPERATION: Table = &[
    (1, Strings("tags")),
    (2, Str("summary")),
    (3, Str("description")),
    (4, Msg("externalDocs", |o, v| message(o, v, EXTERNAL_DOCS))),
    (5, Str("operationId")),
    (6, Strings("produces")),
    (7, Strings("consumes")),
    (8, Msgs("parameters", parameters_item)),
    (9, Msg("responses", responses)),
    (10, Strings("schemes")),
    (11, Bool("deprecated")),
    (12, Msgs("security", security_requirement)),
    (13, Extensions),
];

const BODY_PARAMETER: Table =
    &[(1, Str("description")), (2, Str("name")), (3, Str("in")), (4, Bool("required")), (5, Msg("schema", schema)), (6, Extensions)];

/// The fields every non-body parameter, header and items object shares, after their first
/// fields: `type` … `multipleOf` (numbered from `first`), as gnostic's messages lay them out.
macro_rules! simple_schema {
    ($($head:expr),* ; $first:expr ; $($tail:expr),*) => {
        &[
            $($head,)*
            ($first, Str("type")),
            ($first + 1, Str("format")),
            ($first + 2, Msg("items", |o, v| message(o, v, PRIMITIVES_ITEMS))),
            ($first + 3, Str("collectionFormat")),
            ($first + 4, Any("default")),
            ($first + 5, Double("maximum")),
            ($first + 6, Bool("exclusiveMaximum")),
            ($first + 7, Double("minimum")),
            ($first + 8, Bool("exclusiveMinimum")),
            ($first + 9, Int("maxLength")),
            ($first + 10, Int("minLength")),
            ($first + 11, Str("pattern")),
            ($first + 12, Int("maxItems")),
            ($first + 13, Int("minItems")),
            ($first + 14, Bool("uniqueItems")),
            ($first + 15, Anys("enum")),
            ($first + 16, Double("multipleOf")),
            $($tail,)*
        ]
    };
}

const HEADER_PARAMETER: Table =
    simple_schema!((1, Bool("required")), (2, Str("in")), (3, Str("description")), (4, Str("name")); 5; (22, Extensions));
const PATH_PARAMETER: Table =
    simple_schema!((1, Bool("required")), (2, Str("in")), (3, Str("description")), (4, Str("name")); 5; (22, Extensions));
const QUERY_PARAMETER: Table = simple_schema!((1, Bool("required")), (2, Str("in")), (3, Str("description")), (4, Str("name")), (5, Bool("allowEmptyValue")); 6; (23, Extensions));
const FORM_DATA_PARAMETER: Table = simple_schema!((1, Bool("required")), (2, Str("in")), (3, Str("description")), (4, Str("name")), (5, Bool("allowEmptyValue")); 6; (23, Extensions));
const PRIMITIVES_ITEMS: Table = simple_schema!(; 1; (18, Extensions));
const HEADER: Table = simple_schema!(; 1; (18, Str("description")), (19, Extensions));

const RESPONSE: Table = &[
    (1, Str("description")),
    (2, Msg("schema", schema_item)),
    (3, Msg("headers", |o, v| named_map(o, v, 1, |_| true, |o, v| message(o, v, HEADER)))),
    (4, Msg("examples", |o, v| named_map(o, v, 1, |_| true, any))),
    (5, Extensions),
];

const SCHEMA: Table = &[
    (1, Str("$ref")),
    (2, Str("format")),
    (3, Str("title")),
    (4, Str("description")),
    (5, Any("default")),
    (6, Double("multipleOf")),
    (7, Double("maximum")),
    (8, Bool("exclusiveMaximum")),
    (9, Double("minimum")),
    (10, Bool("exclusiveMinimum")),
    (11, Int("maxLength")),
    (12, Int("minLength")),
    (13, Str("pattern")),
    (14, Int("maxItems")),
    (15, Int("minItems")),
    (16, Bool("uniqueItems")),
    (17, Int("maxProperties")),
    (18, Int("minProperties")),
    (19, Strings("required")),
    (20, Anys("enum")),
    (21, Msg("additionalProperties", additional_properties_item)),
    (22, Msg("type", type_item)),
    (23, Msg("items", items_item)),
    (24, Msgs("allOf", schema)),
    (25, Msg("properties", |o, v| named_map(o, v, 1, |_| true, schema))),
    (26, Str("discriminator")),
    (27, Bool("readOnly")),
    (28, Msg("xml", |o, v| message(o, v, XML))),
    (29, Msg("externalDocs", |o, v| message(o, v, EXTERNAL_DOCS))),
    (30, Any("example")),
    (31, Extensions),
];

const FILE_SCHEMA: Table = &[
    (1, Str("format")),
    (2, Str("title")),
    (3, Str("description")),
    (4, Any("default")),
    (5, Strings("required")),
    (6, Str("type")),
    (7, Bool("readOnly")),
    (8, Msg("externalDocs", |o, v| message(o, v, EXTERNAL_DOCS))),
    (9, Any("example")),
    (10, Extensions),
];

const XML: Table =
    &[(1, Str("name")), (2, Str("namespace")), (3, Str("prefix")), (4, Bool("attribute")), (5, Bool("wrapped")), (6, Extensions)];

const API_KEY_SECURITY: Table = &[(1, Str("type")), (2, Str("name")), (3, Str("in")), (4, Str("description")), (5, Extensions)];
const BASIC_AUTHENTICATION_SECURITY: Table = &[(1, Str("type")), (2, Str("description")), (3, Extensions)];
const OAUTH2_IMPLICIT_SECURITY: Table = &[
    (1, Str("type")),
    (2, Str("flow")),
    (3, Msg("scopes", oauth2_scopes)),
    (4, Str("authorizationUrl")),
    (5, Str("description")),
    (6, Extensions),
];
const OAUTH2_TOKEN_SECURITY: Table = &[
    (1, Str("type")),
    (2, Str("flow")),
    (3, Msg("scopes", oauth2_scopes)),
    (4, Str("tokenUrl")),
    (5, Str("description")),
    (6, Extensions),
];
const OAUTH2_ACCESS_CODE_SECURITY: Table = &[
    (1, Str("type")),
    (2, Str("flow")),
    (3, Msg("scopes", oauth2_scopes)),
    (4, Str("authorizationUrl")),
    (5, Str("tokenUrl")),
    (6, Str("description")),
    (7, Extensions),
];

fn schema(out: &mut Vec<u8>, v: &Value) {
    message(out, v, SCHEMA)
}

/// `Paths`: vendor extensions (1), then every `/…` key as a `NamedPathItem` (2).
fn paths(out: &mut Vec<u8>, v: &Value) {
    extensions(out, v, 1);
    named_map(out, v, 2, |k| k.starts_with('/'), |o, v| message(o, v, PATH_ITEM));
}

/// `Responses`: status codes and `default` as `NamedResponseValue` (1), then extensions (2).
fn responses(out: &mut Vec<u8>, v: &Value) {
    let is_code = |k: &str| k == "default" || (k.len() == 3 && k.bytes().all(|b| b.is_ascii_digit()));
    named_map(out, v, 1, is_code, |o, v| {
        // oneof ResponseValue { Response response = 1; JsonReference json_reference = 2; }
        if v.get("$ref").is_some() {
            nested(o, 2, |o| message(o, v, JSON_REFERENCE));
        } else {
            nested(o, 1, |o| message(o, v, RESPONSE));
        }
    });
    extensions(out, v, 2);
}

/// oneof ParametersItem { Parameter parameter = 1; JsonReference json_reference = 2; }
fn parameters_item(out: &mut Vec<u8>, v: &Value) {
    if v.get("$ref").is_some() {
        nested(out, 2, |o| message(o, v, JSON_REFERENCE));
    } else {
        nested(out, 1, |o| parameter(o, v));
    }
}

/// oneof Parameter { BodyParameter = 1; NonBodyParameter = 2 }, and within the latter
/// oneof { Header = 1; FormData = 2; Query = 3; Path = 4 }, chosen by `in`, which is what makes
/// exactly one of gnostic's alternatives parse.
fn parameter(out: &mut Vec<u8>, v: &Value) {
    let (field, table) = match v.get("in").and_then(Value::as_str) {
        Some("body") => return nested(out, 1, |o| message(o, v, BODY_PARAMETER)),
        Some("header") => (1, HEADER_PARAMETER),
        Some("formData") => (2, FORM_DATA_PARAMETER),
        Some("path") => (4, PATH_PARAMETER),
        _ => (3, QUERY_PARAMETER),
    };
    nested(out, 2, |o| nested(o, field, |o| message(o, v, table)));
}

/// oneof SchemaItem { Schema schema = 1; FileSchema file_schema = 2; }: a `file` type parses as
/// both, and gnostic keeps the later alternative.
fn schema_item(out: &mut Vec<u8>, v: &Value) {
    if v.get("type").and_then(Value::as_str) == Some("file") {
        nested(out, 2, |o| message(o, v, FILE_SCHEMA));
    } else {
        nested(out, 1, |o| schema(o, v));
    }
}

/// oneof AdditionalPropertiesItem { Schema schema = 1; bool boolean = 2; } (a one-of member is
/// written even when false).
fn additional_properties_item(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Bool(b) => {
            encode_key(2, WireType::Varint, out);
            encode_varint(u64::from(*b), out);
        }
        _ => nested(out, 1, |o| schema(o, v)),
    }
}

/// `TypeItem { repeated string value = 1; }` from a type name or a list of them.
fn type_item(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => string(out, 1, s),
        _ => strings(out, 1, v),
    }
}

/// `ItemsItem { repeated Schema schema = 1; }`: gnostic accepts a single schema.
fn items_item(out: &mut Vec<u8>, v: &Value) {
    if v.is_object() {
        nested(out, 1, |o| schema(o, v));
    }
}

/// `SecurityRequirement`: a map of scheme names to `StringArray { repeated string value = 1 }`.
fn security_requirement(out: &mut Vec<u8>, v: &Value) {
    named_map(out, v, 1, |_| true, |o, v| strings(o, 1, v));
}

fn oauth2_scopes(out: &mut Vec<u8>, v: &Value) {
    // NamedString { string name = 1; string value = 2; }
    for (name, value) in v.as_object().into_iter().flatten() {
        nested(out, 1, |o| {
            string(o, 1, name);
            string(o, 2, value.as_str().unwrap_or_default());
        });
    }
}

/// oneof SecurityDefinitionsItem, chosen by `type` and, for OAuth2, `flow`.
fn security_definitions_item(out: &mut Vec<u8>, v: &Value) {
    let ty = v.get("type").and_then(Value::as_str);
    let flow = v.get("flow").and_then(Value::as_str);
    let (field, table) = match (ty, flow) {
        (Some("basic"), _) => (1, BASIC_AUTHENTICATION_SECURITY),
        (Some("oauth2"), Some("implicit")) => (3, OAUTH2_IMPLICIT_SECURITY),
        (Some("oauth2"), Some("password")) => (4, OAUTH2_TOKEN_SECURITY),
        (Some("oauth2"), Some("application")) => (5, OAUTH2_TOKEN_SECURITY),
        (Some("oauth2"), _) => (6, OAUTH2_ACCESS_CODE_SECURITY),
        _ => (2, API_KEY_SECURITY),
    };
    nested(out, field, |o| message(o, v, table));
}

/// `Any { string yaml = 2; }` (gnostic never fills the `google.protobuf.Any value`).
fn any(out: &mut Vec<u8>, v: &Value) {
    string(out, 2, &yaml::to_yaml(v));
}

/// Encodes the fields of `table` found in `v` (an object; anything else encodes nothing).
fn message(out: &mut Vec<u8>, v: &Value, table: Table) {
    let Some(object) = v.as_object() else { return };
    for &(number, field) in table {
        match field {
            Extensions => extensions(out, v, number),
            Str(key) => string(out, number, object.get(key).and_then(Value::as_str).unwrap_or_default()),
            Bool(key) => {
                if object.get(key).and_then(Value::as_bool) == Some(true) {
                    encode_key(number, WireType::Varint, out);
                    encode_varint(1, out);
                }
            }
            Double(key) => {
                // proto3 skips zero (but not negative zero).
                if let Some(d) = object.get(key).and_then(Value::as_f64).filter(|d| d.to_bits() != 0) {
                    encode_key(number, WireType::SixtyFourBit, out);
                    out.extend_from_slice(&d.to_le_bytes());
                }
            }
            Int(key) => {
                if let Some(i) = object.get(key).and_then(as_int).filter(|i| *i != 0) {
                    encode_key(number, WireType::Varint, out);
                    encode_varint(i as u64, out);
                }
            }
            Strings(key) => {
                if let Some(list) = object.get(key) {
                    strings(out, number, list);
                }
            }
            Any(key) => {
                if let Some(value) = object.get(key) {
                    nested(out, number, |o| any(o, value));
                }
            }
            Anys(key) => {
                for value in object.get(key).and_then(Value::as_array).into_iter().flatten() {
                    nested(out, number, |o| any(o, value));
                }
            }
            Msg(key, encoder) => {
                if let Some(value) = object.get(key) {
                    nested(out, number, |o| encoder(o, value));
                }
            }
            Msgs(key, encoder) => {
                for value in object.get(key).and_then(Value::as_array).into_iter().flatten() {
                    nested(out, number, |o| encoder(o, value));
                }
            }
        }
    }
}

/// gnostic reads integers from their text, so `5.0` counts as 5.
fn as_int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

/// `repeated NamedAny vendor_extension` from the `x-` keys of `v`.
fn extensions(out: &mut Vec<u8>, v: &Value, number: u32) {
    named_map(out, v, number, |k| k.starts_with("x-"), any);
}

/// A map as `repeated Named* { string name = 1; T value = 2; }`, in document order, keeping the
/// keys `keep` accepts.
fn named_map(out: &mut Vec<u8>, v: &Value, number: u32, keep: fn(&str) -> bool, value: Encoder) {
    let empty = Map::new();
    for (name, item) in v.as_object().unwrap_or(&empty) {
        if keep(name) {
            nested(out, number, |o| {
                string(o, 1, name);
                nested(o, 2, |o| value(o, item));
            });
        }
    }
}

/// A length-delimited field holding whatever `body` writes.
fn nested(out: &mut Vec<u8>, number: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    body(&mut inner);
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(inner.len() as u64, out);
    out.extend_from_slice(&inner);
}

/// A `string` field; proto3 leaves out empty strings.
fn string(out: &mut Vec<u8>, number: u32, s: &str) {
    if !s.is_empty() {
        encode_key(number, WireType::LengthDelimited, out);
        encode_varint(s.len() as u64, out);
        out.extend_from_slice(s.as_bytes());
    }
}

/// `repeated string` from a JSON array (every element, empty ones included).
fn strings(out: &mut Vec<u8>, number: u32, list: &Value) {
    for s in list.as_array().into_iter().flatten().filter_map(Value::as_str) {
        encode_key(number, WireType::LengthDelimited, out);
        encode_varint(s.len() as u64, out);
        out.extend_from_slice(s.as_bytes());
    }
}

/// A JSON value written as `gopkg.in/yaml.v3`'s `Marshal` writes the node gnostic parsed from it
/// (with styles cleared): block style, 4-space indentation except that content under a `- `
/// item is indented by 2, empty collections as `[]`/`{}`, unlimited line width, and strings
/// plain when that reads back as the same string, else single-quoted, double-quoted or `|`
/// literal, following the emitter's rules (`yaml_emitter_analyze_scalar`,
/// `yaml_emitter_select_scalar_style`). Numbers keep their JSON text.
pub(crate) mod yaml {
    use serde_json::Value;

    const BEST_INDENT: i32 = 4;

    /// The YAML text of `value`, ending in a line break.
    pub fn to_yaml(value: &Value) -> String {
        let mut e = Emitter { out: String::new(), column: 0, indent: -1, whitespace: true, indention: true };
        e.node(value, Context::Root);
        // Document end.
        e.indent = -1;
        e.write_indent();
        e.out
    }

    /// Where a node sits, which decides its indentation and some scalar styles.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Context {
        Root,
        SequenceItem,
        MappingValue,
        SimpleKey,
        ComplexKey,
    }

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Style {
        Plain,
        SingleQuoted,
        DoubleQuoted,
        Literal,
    }

    /// The emitter state yaml.v3 keeps while writing (column, current indentation, whether
    /// the last character written was whitespace or indentation).
    struct Emitter {
        out: String,
        column: i32,
        indent: i32,
        whitespace: bool,
        indention: bool,
    }

    impl Emitter {
        fn node(&mut self, value: &Value, context: Context) {
            match value {
                Value::Array(items) if items.is_empty() => self.empty_flow("[", "]"),
                Value::Object(map) if map.is_empty() => self.empty_flow("{", "}"),
                Value::Array(items) => {
                    let saved = self.indent;
                    self.increase_indent(false, context);
                    for item in items {
                        self.write_indent();
                        self.indicator("-", true, false, true);
                        self.node(item, Context::SequenceItem);
                    }
                    self.indent = saved;
                }
                Value::Object(map) => {
                    let saved = self.indent;
                    self.increase_indent(false, context);
                    for (key, item) in map {
                        self.write_indent();
                        let analysis = Analysis::of(key);
                        // A simple key is one line of at most 128 bytes.
                        if !analysis.multiline && key.len() <= 128 {
                            self.scalar(key, true, Context::SimpleKey);
                            self.indicator(":", false, false, false);
                        } else {
                            self.indicator("?", true, false, true);
                            self.scalar(key, true, Context::ComplexKey);
                            self.write_indent();
                            self.indicator(":", true, false, true);
                        }
                        self.node(item, Context::MappingValue);
                    }
                    self.indent = saved;
                }
                Value::String(s) => self.scalar(s, true, context),
                Value::Number(n) => self.scalar(&n.to_string(), false, context),
                Value::Bool(b) => self.scalar(if *b { "true" } else { "false" }, false, context),
                Value::Null => self.scalar("null", false, context),
            }
        }

        /// `yaml_emitter_increase_indent`: the first level is column 0 (scalars: 4); under a
        /// sequence item, 2 more; elsewhere the next multiple of 4.
        fn increase_indent(&mut self, flow: bool, context: Context) {
            self.indent = if self.indent < 0 {
                if flow {
                    BEST_INDENT
                } else {
                    0
                }
            } else if context == Context::SequenceItem {
                self.indent + 2
            } else {
                BEST_INDENT * ((self.indent + BEST_INDENT) / BEST_INDENT)
            };
        }

        fn empty_flow(&mut self, open: &str, close: &str) {
            self.indicator(open, true, true, false);
            self.indicator(close, false, false, false);
        }

        /// A scalar. `is_string` is false for numbers, booleans and null, whose tags match
        /// what their plain text resolves to; a string whose plain text would read back as
        /// something else (`"true"`, `"1"`, `""`) must be quoted.
        fn scalar(&mut self, value: &str, is_string: bool, context: Context) {
            let analysis = Analysis::of(value);
            let simple_key = context == Context::SimpleKey;
            let mut style = if value.contains('\n') {
                Style::Literal
            } else if is_string && resolves_to_non_string(value) {
                Style::DoubleQuoted
            } else {
                Style::Plain
            };
            if simple_key && analysis.multiline {
                style = Style::DoubleQuoted;
            }
            if style == Style::Plain && (!analysis.block_plain_allowed || (value.is_empty() && simple_key)) {
                style = Style::SingleQuoted;
            }
            if style == Style::SingleQuoted && !analysis.single_quoted_allowed {
                style = Style::DoubleQuoted;
            }
            if style == Style::Literal && (!analysis.block_allowed || simple_key) {
                style = Style::DoubleQuoted;
            }
            let saved = self.indent;
            self.increase_indent(true, context);
            match style {
                Style::Plain => self.plain(value),
                Style::SingleQuoted => self.single_quoted(value),
                Style::DoubleQuoted => self.double_quoted(value),
                Style::Literal => self.literal(value),
            }
            self.indent = saved;
        }

        fn put(&mut self, c: char) {
            self.out.push(c);
            self.column += 1;
        }

        fn put_break(&mut self) {
            self.out.push('\n');
            self.column = 0;
            self.indention = true;
        }

        /// `write_break`: a `\n` is a line break; other break characters are written as is.
        fn write_break(&mut self, c: char) {
            if c == '\n' {
                self.put_break();
            } else {
                self.out.push(c);
                self.column = 0;
                self.indention = true;
            }
        }

        fn write_indent(&mut self) {
            let indent = self.indent.max(0);
            if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
                self.put_break();
            }
            while self.column < indent {
                self.put(' ');
            }
            self.whitespace = true;
        }

        fn indicator(&mut self, indicator: &str, need_whitespace: bool, is_whitespace: bool, is_indention: bool) {
            if need_whitespace && !self.whitespace {
                self.put(' ');
            }
            for c in indicator.chars() {
                self.put(c);
            }
            self.whitespace = is_whitespace;
            self.indention = self.indention && is_indention;
        }

        fn plain(&mut self, value: &str) {
            if !value.is_empty() && !self.whitespace {
                self.put(' ');
            }
            // Plain scalars never hold line breaks (the analysis forbids it), and lines are
            // never folded at unlimited width.
            for c in value.chars() {
                self.put(c);
            }
            if !value.is_empty() {
                self.whitespace = false;
            }
            self.indention = false;
        }

        fn single_quoted(&mut self, value: &str) {
            self.indicator("'", true, false, false);
            let mut breaks = false;
            for c in value.chars() {
                if is_break(c) {
                    if !breaks && c == '\n' {
                        self.put_break();
                    }
                    self.write_break(c);
                    breaks = true;
                } else {
                    if breaks {
                        self.write_indent();
                    }
                    if c == '\'' {
                        self.put('\'');
                    }
                    self.put(c);
                    if c != ' ' {
                        self.indention = false;
                    }
                    breaks = false;
                }
            }
            self.indicator("'", false, false, false);
            self.whitespace = false;
            self.indention = false;
        }

        fn double_quoted(&mut self, value: &str) {
            self.indicator("\"", true, false, false);
            let starts_with_bom = value.starts_with('\u{feff}');
            for c in value.chars() {
                if !is_printable(c) || starts_with_bom || is_break(c) || c == '"' || c == '\\' {
                    self.put('\\');
                    let short = match c {
                        '\0' => Some('0'),
                        '\u{7}' => Some('a'),
                        '\u{8}' => Some('b'),
                        '\t' => Some('t'),
                        '\n' => Some('n'),
                        '\u{b}' => Some('v'),
                        '\u{c}' => Some('f'),
                        '\r' => Some('r'),
                        '\u{1b}' => Some('e'),
                        '"' => Some('"'),
                        '\\' => Some('\\'),
                        '\u{85}' => Some('N'),
                        '\u{a0}' => Some('_'),
                        '\u{2028}' => Some('L'),
                        '\u{2029}' => Some('P'),
                        _ => None,
                    };
                    match short {
                        Some(s) => self.put(s),
                        None => {
                            let code = u32::from(c);
                            let escaped = if code <= 0xff {
                                format!("x{code:02X}")
                            } else if code <= 0xffff {
                                format!("u{code:04X}")
                            } else {
                                format!("U{code:08X}")
                            };
                            escaped.chars().for_each(|c| self.put(c));
                        }
                    }
                } else {
                    self.put(c);
                }
            }
            self.indicator("\"", false, false, false);
            self.whitespace = false;
            self.indention = false;
        }

        fn literal(&mut self, value: &str) {
            self.indicator("|", true, false, false);
            // Block scalar hints: an explicit indentation when the text starts with a space or
            // break, and the chomping of trailing breaks.
            let mut chars = value.chars();
            if value.starts_with(' ') || value.chars().next().is_some_and(is_break) {
                self.indicator(&BEST_INDENT.to_string(), false, false, false);
            }
            let last = chars.next_back();
            let before_last = chars.next_back();
            let chomp = match (last, before_last) {
                (None, _) => Some("-"),
                (Some(c), _) if !is_break(c) => Some("-"),
                (Some(_), None) => Some("+"),
                (Some(_), Some(c)) if is_break(c) => Some("+"),
                _ => None,
            };
            if let Some(chomp) = chomp {
                self.indicator(chomp, false, false, false);
            }
            self.whitespace = true;
            let mut breaks = true;
            for c in value.chars() {
                if is_break(c) {
                    self.write_break(c);
                    breaks = true;
                } else {
                    if breaks {
                        self.write_indent();
                    }
                    self.put(c);
                    self.indention = false;
                    breaks = false;
                }
            }
        }
    }

    fn is_break(c: char) -> bool {
        matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
    }

    fn is_blank(c: char) -> bool {
        c == ' ' || c == '\t'
    }

    /// YAML's printable set as yaml.v3 checks it (4-byte UTF-8 characters are not printable).
    fn is_printable(c: char) -> bool {
        matches!(u32::from(c), 0x0a | 0x20..=0x7e | 0xa0..=0xd7ff | 0xe000..=0xfffd) && c != '\u{feff}'
    }

    /// What `yaml_emitter_analyze_scalar` finds out about a scalar (in block context).
    struct Analysis {
        multiline: bool,
        block_plain_allowed: bool,
        single_quoted_allowed: bool,
        block_allowed: bool,
    }

    impl Analysis {
        fn of(value: &str) -> Analysis {
            if value.is_empty() {
                return Analysis { multiline: false, block_plain_allowed: true, single_quoted_allowed: true, block_allowed: false };
            }
            let chars: Vec<char> = value.chars().collect();
            let mut block_indicators = value.starts_with("---") || value.starts_with("...");
            let (mut line_breaks, mut special_characters, mut tab_characters) = (false, false, false);
            let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) = (false, false, false, false);
            let (mut break_space, mut space_break) = (false, false);
            let (mut previous_space, mut previous_break) = (false, false);
            let mut preceded_by_whitespace = true;
            for (i, &c) in chars.iter().enumerate() {
                let followed_by_whitespace = chars.get(i + 1).is_none_or(|&n| is_blank(n));
                let last = i + 1 == chars.len();
                if i == 0 {
                    match c {
                        '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' => {
                            block_indicators = true
                        }
                        '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                        _ => {}
                    }
                } else {
                    match c {
                        ':' if followed_by_whitespace => block_indicators = true,
                        '#' if preceded_by_whitespace => block_indicators = true,
                        _ => {}
                    }
                }
                if c == '\t' {
                    tab_characters = true;
                } else if !is_printable(c) {
                    special_characters = true;
                }
                if c == ' ' {
                    leading_space |= i == 0;
                    trailing_space |= last;
                    break_space |= previous_break;
                    previous_space = true;
                    previous_break = false;
                } else if is_break(c) {
                    line_breaks = true;
                    leading_break |= i == 0;
                    trailing_break |= last;
                    space_break |= previous_space;
                    previous_space = false;
                    previous_break = true;
                } else {
                    previous_space = false;
                    previous_break = false;
                }
                preceded_by_whitespace = is_blank(c) || is_break(c) || c == '\0';
            }
            let mut a = Analysis { multiline: line_breaks, block_plain_allowed: true, single_quoted_allowed: true, block_allowed: true };
            if leading_space || leading_break || trailing_space || trailing_break || line_breaks || block_indicators {
                a.block_plain_allowed = false;
            }
            if trailing_space {
                a.block_allowed = false;
            }
            if break_space || space_break || tab_characters || special_characters {
                a.block_plain_allowed = false;
                a.single_quoted_allowed = false;
            }
            if space_break || special_characters {
                a.block_allowed = false;
            }
            a
        }
    }

    /// Whether yaml.v3's resolver reads this plain text as anything but a string: null, a
    /// boolean, a number (decimal, `0x`, `0o`, `0b`, legacy octal, YAML floats), a timestamp.
    fn resolves_to_non_string(s: &str) -> bool {
        const SPECIAL: &[&str] = &[
            "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", ".nan", ".NaN", ".NAN", ".inf", ".Inf",
            ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", "<<",
        ];
        if SPECIAL.contains(&s) {
            return true;
        }
        match s.as_bytes()[0] {
            b'.' => s.parse::<f64>().is_ok(),
            b'+' | b'-' | b'0'..=b'9' => {
                if is_timestamp(s) {
                    return true;
                }
                let plain = s.replace('_', "");
                go_parse_int(&plain) || (is_yaml_float(&plain) && plain.parse::<f64>().is_ok_and(f64::is_finite))
            }
            _ => false,
        }
    }

    /// Go's `strconv.ParseInt(s, 0, 64)` or `ParseUint(s, 0, 64)` succeeding.
    fn go_parse_int(s: &str) -> bool {
        let (negative, digits) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let lower = digits.to_ascii_lowercase();
        let (radix, body) = if let Some(rest) = lower.strip_prefix("0x") {
            (16, rest)
        } else if let Some(rest) = lower.strip_prefix("0o") {
            (8, rest)
        } else if let Some(rest) = lower.strip_prefix("0b") {
            (2, rest)
        } else if lower.len() > 1 && lower.starts_with('0') {
            (8, &lower[1..])
        } else {
            (10, lower.as_str())
        };
        if body.is_empty() {
            return false;
        }
        match u64::from_str_radix(body, radix) {
            Ok(n) if negative => n <= 1 << 63,
            Ok(_) => true,
            Err(_) => false,
        }
    }

    /// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
    fn is_yaml_float(s: &str) -> bool {
        let s = s.strip_prefix(['-', '+']).unwrap_or(s);
        let (mantissa, exponent) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let mantissa_ok = match mantissa.split_once('.') {
            Some(("", frac)) => digits(frac),
            Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
            None => digits(mantissa),
        };
        let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
        mantissa_ok && exponent_ok
    }

    /// The timestamp forms yaml.v3 resolves: `YYYY-M-D`, optionally followed by `T`/`t` and
    /// `h:m:s[.frac](Z|±hh:mm)`, or by a space and `h:m:s[.frac]`.
    fn is_timestamp(s: &str) -> bool {
        fn number(s: &str, min_len: usize, max_len: usize) -> Option<(u32, &str)> {
            let len = s.bytes().take_while(u8::is_ascii_digit).count();
            if len < min_len || len > max_len {
                return None;
            }
            Some((s[..len].parse().ok()?, &s[len..]))
        }
        let parse = || -> Option<()> {
            let (year, rest) = number(s, 4, 4)?;
            let (month, rest) = number(rest.strip_prefix('-')?, 1, 2)?;
            let (day, rest) = number(rest.strip_prefix('-')?, 1, 2)?;
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            if !(1..=12).contains(&month) || day == 0 || day > days[month as usize - 1] {
                return None;
            }
            if rest.is_empty() {
                return Some(());
            }
            let (zoned, rest) = match rest.as_bytes()[0] {
                b'T' | b't' => (true, &rest[1..]),
                b' ' => (false, &rest[1..]),
                _ => return None,
            };
            let (hour, rest) = number(rest, 1, 2)?;
            let (minute, rest) = number(rest.strip_prefix(':')?, 1, 2)?;
            let (second, mut rest) = number(rest.strip_prefix(':')?, 1, 2)?;
            if hour > 23 || minute > 59 || second > 59 {
                return None;
            }
            if let Some(frac) = rest.strip_prefix('.') {
                let len = frac.bytes().take_while(u8::is_ascii_digit).count();
                if len == 0 {
                    return None;
                }
                rest = &frac[len..];
            }
            if !zoned {
                return rest.is_empty().then_some(());
            }
            if rest == "Z" {
                return Some(());
            }
            let offset = rest.strip_prefix(['+', '-'])?;
            let (_, rest) = number(offset, 2, 2)?;
            let (_, rest) = number(rest.strip_prefix(':')?, 2, 2)?;
            rest.is_empty().then_some(())
        };
        parse().is_some()
    }

    #[cfg(test)]
    mod tests {
        use super::to_yaml;
        use serde_json::json;

        #[test]
        fn writes_what_yaml_v3_writes() {
            let cases = [
                (json!("list"), "list\n"),
                (json!(""), "\"\"\n"),
                (json!("*"), "'*'\n"),
                (json!("true"), "\"true\"\n"),
                (json!("1.5"), "\"1.5\"\n"),
                (json!("2024-01-02"), "\"2024-01-02\"\n"),
                (json!("s/mime"), "s/mime\n"),
                (json!("it's"), "it's\n"),
                (json!("a: b"), "'a: b'\n"),
                (json!("tab\there"), "\"tab\\there\"\n"),
                (json!("two\nlines"), "|-\n    two\n    lines\n"),
                (json!("ends\n"), "|\n    ends\n"),
                (json!(true), "true\n"),
                (json!(null), "null\n"),
                (json!(12), "12\n"),
                (json!([]), "[]\n"),
                (json!({}), "{}\n"),
                (json!(["containerPort", "protocol"]), "- containerPort\n- protocol\n"),
                (json!({"group": "", "kind": "Binding", "version": "v1"}), "group: \"\"\nkind: Binding\nversion: v1\n"),
                (
                    json!([{"group": "hello.zeng.dev", "kind": "Foo", "version": "v1"}]),
                    "- group: hello.zeng.dev\n  kind: Foo\n  version: v1\n",
                ),
                (
                    json!([{"discriminator": "type", "fields-to-discriminateBy": {"exempt": "Exempt", "limited": "Limited"}}]),
                    "- discriminator: type\n  fields-to-discriminateBy:\n    exempt: Exempt\n    limited: Limited\n",
                ),
                (json!({"keys": ["a", "b"], "m": {"x": []}}), "keys:\n    - a\n    - b\nm:\n    x: []\n"),
                (json!([["a", "b"], "c"]), "- - a\n  - b\n- c\n"),
                (json!({"rule": "self.a\n|| self.b"}), "rule: |-\n    self.a\n    || self.b\n"),
            ];
            for (value, expected) in cases {
                assert_eq!(to_yaml(&value), expected, "{value}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::openapi_common::tests::{foo_model, reference};
    use crate::generate::openapi_v2::openapi_v2;

    #[test]
    fn encodes_kube_apiservers_document_to_its_exact_protobuf_response() {
        let (Some(json), Some(expected)) = (reference("openapi-v2.json"), reference("openapi-v2-protobuf.json")) else { return };
        let doc: Value = serde_json::from_slice(&json).unwrap();
        let ours = encode(&doc);
        assert!(expected.len() > 1_000_000, "the reference is the whole cluster's document");
        if ours != expected {
            let at = ours.iter().zip(&expected).position(|(a, b)| a != b).unwrap_or(ours.len().min(expected.len()));
            let window = |b: &[u8]| String::from_utf8_lossy(&b[at.saturating_sub(80)..(at + 80).min(b.len())]).into_owned();
            panic!(
                "first difference at byte {at} of {}/{}:\nours:     {:?}\nexpected: {:?}",
                ours.len(),
                expected.len(),
                window(&ours),
                window(&expected)
            );
        }
    }

    #[test]
    fn an_empty_document_is_empty() {
        assert!(encode(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn encodes_our_document() {
        let bytes = encode(&openapi_v2(&foo_model()));
        // Document.swagger = "2.0", then Info.
        assert_eq!(&bytes[..5], b"\x0a\x032.0");
        assert_eq!(bytes[5], 0x12);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("- group: hello.zeng.dev\n  kind: Foo\n  version: v1\n"));
        assert!(text.contains("application/strategic-merge-patch+json"));
    }
}
