//! A catalogue of hostile requests, each with the HTTP code and Status `reason` kube-apiserver
//! 1.32 gives for a custom resource (an empty reason: the answer is not a Status, as kube's
//! plain `404 page not found`). Where we answer otherwise on purpose, the case says so and
//! `docs/differences.md` explains why.
//!
//! The in-process catalogue drives the router directly; after it, every stored object must be
//! byte-for-byte what it was. The listener's own defences (header size and time, body size
//! before reading, in-flight limits, request timeout, forged front-proxy headers) are tried on
//! the real binary and on the HTTPS listener. See `docs/hardening.md`.

mod support;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use server::storage::{ListOptions, Storage};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const V1: &str = "/apis/hello.zeng.dev/v1";
const FOOS: &str = "/apis/hello.zeng.dev/v1/namespaces/default/foos";
const KEEP: &str = "/apis/hello.zeng.dev/v1/namespaces/default/foos/keep";
const JSON: &str = "application/json";
const YAML: &str = "application/yaml";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";
/// The request body limit, as kube-apiserver's.
const LIMIT: usize = 3 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The shape of a case.

/// One hostile request.
struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

fn req(method: &'static str, path: impl Into<String>) -> Req {
    Req { method, path: path.into(), headers: Vec::new(), body: Body::empty() }
}

fn get(path: impl Into<String>) -> Req {
    req("GET", path)
}

/// A body of `content_type`.
fn send(method: &'static str, path: impl Into<String>, content_type: &str, body: impl Into<Bytes>) -> Req {
    req(method, path).header("content-type", content_type).body(body)
}

/// A JSON create.
fn post(body: impl Into<Bytes>) -> Req {
    send("POST", FOOS, JSON, body)
}

/// A create of `foo` (a JSON value), at `path`.
fn create(path: &str, foo: Value) -> Req {
    send("POST", path, JSON, foo.to_string())
}

fn patch(content_type: &str, body: impl Into<Bytes>) -> Req {
    send("PATCH", KEEP, content_type, body)
}

impl Req {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Body::from(body.into());
        self
    }

    /// A body streamed in chunks, without a length (as with `Transfer-Encoding: chunked`).
    fn chunked(mut self, chunk: Bytes, count: usize) -> Self {
        let chunks = futures::stream::iter((0..count).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
        self.body = Body::from_stream(chunks);
        self
    }
}

/// One entry of the catalogue: what is tried, and kube-apiserver's answer.
struct Case {
    what: &'static str,
    req: Req,
    code: u16,
    reason: &'static str,
    /// Where our answer is not kube-apiserver's on purpose: kube's answer, and why.
    differs: Option<&'static str>,
    /// A further check of the answer.
    check: Option<fn(&Reply)>,
}

fn case(what: &'static str, req: Req, code: u16, reason: &'static str) -> Case {
    Case { what, req, code, reason, differs: None, check: None }
}

impl Case {
    fn differs(mut self, why: &'static str) -> Self {
        self.differs = Some(why);
        self
    }

    fn check(mut self, check: fn(&Reply)) -> Self {
        self.check = Some(check);
        self
    }
}

/// An answer.
struct Reply {
    code: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).chars().take(600).collect()
    }

    fn status(&self) -> Option<Value> {
        serde_json::from_slice::<Value>(&self.body).ok().filter(|v| v["kind"] == "Status" || v["status"] == "Failure")
    }

    fn message(&self) -> String {
        self.status().and_then(|s| s["message"].as_str().map(str::to_string)).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Documents.

/// A Foo as JSON, with `spec` and extra `metadata` fields.
fn foo(name: &str, metadata: Value, spec: Value) -> Value {
    let mut meta = json!({"name": name});
    if let (Some(m), Some(extra)) = (meta.as_object_mut(), metadata.as_object()) {
        m.extend(extra.clone());
    }
    json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": meta, "spec": spec})
}

/// `levels` objects nested in one another: `{"a":{"a":…1…}}`.
fn nested(levels: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(levels), "}".repeat(levels))
}

/// A Foo whose `spec.<field>` holds `levels` nested objects: the document is `levels + 2` deep.
fn deep_foo(name: &str, field: &str, levels: usize) -> String {
    format!(r#"{{"apiVersion":"hello.zeng.dev/v1","kind":"Foo","metadata":{{"name":"{name}"}},"spec":{{"{field}":{}}}}}"#, nested(levels))
}

/// A Foo padded (in `spec.msg`) to exactly `size` bytes.
fn foo_of_size(name: &str, size: usize) -> String {
    let empty = foo(name, json!({}), json!({"msg": ""})).to_string();
    let padded = foo(name, json!({}), json!({"msg": "x".repeat(size - empty.len())})).to_string();
    assert_eq!(padded.len(), size);
    padded
}

/// A JSON patch of `n` operations.
fn json_patch_ops(n: usize, op: &Value) -> String {
    serde_json::to_string(&vec![op; n]).unwrap()
}

/// JSON patch operations each copying `spec` into itself: each doubles it.
fn doubling_copies(n: usize) -> String {
    serde_json::to_string(&(0..n).map(|i| json!({"op": "copy", "from": "/spec", "path": format!("/spec/c{i}")})).collect::<Vec<_>>())
        .unwrap()
}

/// A query of a list.
fn list(query: &str) -> Req {
    get(format!("{FOOS}?{query}"))
}

/// A YAML alias bomb: nine levels of nine references each.
fn billion_laughs() -> String {
    let mut doc = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"]) {
        doc.push_str(&format!("{name}: &{name} [{}]\n", vec![format!("*{prev}"); 9].join(",")));
    }
    doc
}

// ---------------------------------------------------------------------------------------------
// The catalogue.

/// What the catalogue needs to know about the stored object it attacks.
struct Fixture {
    uid: String,
}

/// A PUT of `keep` as stored, changed by `change`.
fn put_keep(change: impl FnOnce(&mut Value)) -> Req {
    let mut keep = foo("keep", json!({"labels": {"app": "keep"}}), json!({"msg": "keep"}));
    change(&mut keep);
    send("PUT", KEEP, JSON, keep.to_string())
}

fn catalogue(fixture: &Fixture) -> Vec<Case> {
    let good = foo("new", json!({}), json!({"msg": "hi"}));
    let uid = fixture.uid.clone();
    let mut cases = vec![
        // Malformed JSON: kube's decoder refuses it before anything else.
        case("empty body", post(""), 400, "BadRequest"),
        case("only whitespace", post("  \n\t "), 400, "BadRequest"),
        case("an unclosed object", post("{"), 400, "BadRequest"),
        case("a truncated document", post(r#"{"apiVersion":"#), 400, "BadRequest"),
        case("not JSON at all", post("not json"), 400, "BadRequest"),
        case("a trailing comma", post(r#"{"apiVersion":"hello.zeng.dev/v1","kind":"Foo",}"#), 400, "BadRequest"),
        case("single quotes", post("{'apiVersion':'hello.zeng.dev/v1'}"), 400, "BadRequest"),
        case("data after the document", post(r#"{"kind":"Foo"}garbage"#), 400, "BadRequest"),
        case("two documents", post(r#"{"kind":"Foo"}{"kind":"Foo"}"#), 400, "BadRequest"),
        case("a comment", post("// hello\n{}"), 400, "BadRequest"),
        case("NUL bytes", post(&b"\0\0\0\0"[..]), 400, "BadRequest"),
        case("invalid UTF-8 between tokens", post(&b"\xff\xfe{}"[..]), 400, "BadRequest"),
        case("a byte-order mark", post("\u{feff}{}"), 400, "BadRequest"),
        case("a control character in a string", post("{\"kind\":\"F\u{1}oo\"}"), 400, "BadRequest"),
        case("an unknown escape", post(r#"{"kind":"\q"}"#), 400, "BadRequest"),
        case("a short unicode escape", post(r#"{"kind":"\u12"}"#), 400, "BadRequest"),
        case("a number", post("123"), 400, "BadRequest"),
        case("a string", post(r#""Foo""#), 400, "BadRequest"),
        case("an array", post("[]"), 400, "BadRequest"),
        case("null", post("null"), 400, "BadRequest"),
        case("true", post("true"), 400, "BadRequest"),
        case("an empty object", post("{}"), 400, "BadRequest").check(|r| {
            assert_eq!(r.message(), "the object provided is unrecognized (must be of type Foo): Object 'Kind' is missing in '{}' ({})")
        }),
        case("no kind", post(r#"{"apiVersion":"hello.zeng.dev/v1","metadata":{"name":"x"}}"#), 400, "BadRequest"),
        case("no apiVersion", post(r#"{"kind":"Foo","metadata":{"name":"x"}}"#), 400, "BadRequest"),
        case("kind is a number", post(r#"{"apiVersion":"hello.zeng.dev/v1","kind":5}"#), 400, "BadRequest"),
        case("a number too large for a float", post(foo("big", json!({}), json!({})).to_string().replace("{}}", r#"{"n":1e999}}"#)), 400, "BadRequest"),
        // Depth: Go's decoder stops at 10,000 levels, with a 400; up to that, the document is
        // an ordinary (here: invalid) object, and nothing overflows.
        case("100,000 nested objects", post(deep_foo("deep", "msg", 99_998)), 400, "BadRequest").check(|r| {
            assert!(r.message().contains("json parse error: invalid character '{' exceeded max depth"), "{}", r.message())
        }),
        case("10,001 levels, one too many", post(deep_foo("deep", "msg", 9_999)), 400, "BadRequest"),
        case("3 MiB of unclosed arrays", post("[".repeat(LIMIT - 1)), 400, "BadRequest"),
        case("10,000 levels where a string belongs", post(deep_foo("deep", "msg", 9_998)), 422, "Invalid").check(|r| {
            assert!(r.message().starts_with("Foo.hello.zeng.dev \"deep\" is invalid: spec.msg: Invalid value: \"object\""), "{}", r.message())
        }),
        case("10,000 levels in an unknown field (dry run)", send("POST", format!("{FOOS}?dryRun=All"), JSON, deep_foo("deep", "deep", 9_998)), 201, "")
            .check(|r| assert_eq!(r.headers.get("warning").map(|w| w.to_str().unwrap()), Some("299 - \"unknown field \\\"spec.deep\\\"\""))),
        case("10,000 levels in a label", post(deep_foo("deep", "msg", 1).replace(r#""name":"deep""#, &format!(r#""name":"deep","labels":{}"#, nested(9_997)))), 400, "BadRequest"),
        case("10,000 levels of YAML-flow JSON", send("POST", FOOS, YAML, deep_foo("deep", "msg", 9_998)), 422, "Invalid"),
        case("100,000 levels of YAML", send("POST", FOOS, YAML, format!("a: {}", "[".repeat(100_000))), 400, "BadRequest"),
        case("200 levels of block YAML", send("POST", FOOS, YAML, yaml_block(200)), 400, "BadRequest")
            .differs("kube reads YAML up to 10,000 levels (then 422 here, spec.msg is no string); our YAML reader stops at 128"),
        // Sizes.
        case("a body one byte over 3 MiB", post(foo_of_size("big", LIMIT + 1)), 413, "RequestEntityTooLarge")
            .check(|r| assert_eq!(r.message(), "Request entity too large: limit is 3145728")),
        case("a body of exactly 3 MiB (dry run)", send("POST", format!("{FOOS}?dryRun=All"), JSON, foo_of_size("big", LIMIT)), 201, ""),
        case("a chunked body growing past 3 MiB", req("POST", FOOS).header("content-type", JSON).chunked(Bytes::from(vec![b' '; 64 * 1024]), 64), 413, "RequestEntityTooLarge"),
        case("a 4 MiB PUT", put_keep(|_| {}).body(foo_of_size("keep", 4 << 20)), 413, "RequestEntityTooLarge"),
        case("a 4 MiB merge patch", patch(MERGE, format!(r#"{{"spec":{{"msg":"{}"}}}}"#, "x".repeat(4 << 20))), 413, "RequestEntityTooLarge"),
        case("a 4 MiB DeleteOptions", send("DELETE", KEEP, JSON, format!(r#"{{"kind":"DeleteOptions","x":"{}"}}"#, "x".repeat(4 << 20))), 413, "RequestEntityTooLarge"),
        case("a JSON patch of 10,001 operations", patch(JSON_PATCH, json_patch_ops(10_001, &json!({"op": "test", "path": "/kind", "value": "Foo"}))), 413, "RequestEntityTooLarge")
            .check(|r| assert_eq!(r.message(), "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001")),
        case("JSON patch copies doubling the object", patch(JSON_PATCH, doubling_copies(40)), 422, "Invalid"),
        case("a label value of 64 characters", create(FOOS, foo("label", json!({"labels": {"a": "v".repeat(64)}}), json!({}))), 422, "Invalid"),
        case("a name of 254 characters", create(FOOS, foo(&"a".repeat(254), json!({}), json!({}))), 422, "Invalid"),
        case("annotations over 256 KiB", create(FOOS, foo("notes", json!({"annotations": {"a": "x".repeat(256 * 1024 + 1)}}), json!({}))), 422, "Invalid"),
        // Names and metadata in the body.
        case("a name with uppercase and underscore", create(FOOS, foo("Bad_Name", json!({}), json!({}))), 422, "Invalid"),
        case("an uppercase name", create(FOOS, foo("UPPER", json!({}), json!({}))), 422, "Invalid"),
        case("a name with a slash", create(FOOS, foo("a/b", json!({}), json!({}))), 422, "Invalid"),
        case("the name ..", create(FOOS, foo("..", json!({}), json!({}))), 422, "Invalid"),
        case("the name .", create(FOOS, foo(".", json!({}), json!({}))), 422, "Invalid"),
        case("a name with NUL", create(FOOS, foo("a\u{0}b", json!({}), json!({}))), 422, "Invalid"),
        case("a name in another script", create(FOOS, foo("fööbär", json!({}), json!({}))), 422, "Invalid"),
        case("a name starting with a dash", create(FOOS, foo("-dash", json!({}), json!({}))), 422, "Invalid"),
        case("no name and no generateName", create(FOOS, foo("", json!({}), json!({}))), 422, "Invalid"),
        case("an invalid generateName", create(FOOS, json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"generateName": "Bad_"}})), 422, "Invalid"),
        case("a name that is a number", create(FOOS, json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": 5}})), 400, "BadRequest"),
        case("metadata that is a string", create(FOOS, json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": "keep"})), 400, "BadRequest"),
        case("metadata that is a list", create(FOOS, json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": ["keep"]})), 400, "BadRequest"),
        case("labels that are a list", create(FOOS, foo("l", json!({"labels": ["a"]}), json!({}))), 400, "BadRequest"),
        case("a label value that is a number", create(FOOS, foo("l", json!({"labels": {"a": 1}}), json!({}))), 400, "BadRequest"),
        case("a label key with a space", create(FOOS, foo("l", json!({"labels": {"bad key": "x"}}), json!({}))), 422, "Invalid"),
        case("finalizers that are numbers", create(FOOS, foo("f", json!({"finalizers": [1]}), json!({}))), 400, "BadRequest"),
        case("a generation that is a string", create(FOOS, foo("g", json!({"generation": "1"}), json!({}))), 400, "BadRequest"),
        case("spec that is a string", create(FOOS, foo("s", json!({}), json!("spec"))), 422, "Invalid"),
        case("spec.msg that is a number", create(FOOS, foo("s", json!({}), json!({"msg": 1}))), 422, "Invalid"),
        case("another namespace in the body", create(FOOS, foo("ns", json!({"namespace": "other"}), json!({}))), 400, "BadRequest"),
        case("a resourceVersion on create", create(FOOS, foo("rv", json!({"resourceVersion": "5"}), json!({}))), 400, "BadRequest"),
        case("an existing name", create(FOOS, foo("keep", json!({}), json!({}))), 409, "AlreadyExists"),
        // Types.
        case("another kind", create(FOOS, json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Bar", "metadata": {"name": "b"}})), 422, "Invalid"),
        case("an unserved version", create(FOOS, json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "b"}})), 400, "BadRequest"),
        case("the core version", create(FOOS, json!({"apiVersion": "v1", "kind": "Foo", "metadata": {"name": "b"}})), 400, "BadRequest"),
        case("another group", create(FOOS, json!({"apiVersion": "evil.example.com/v1", "kind": "Foo", "metadata": {"name": "b"}})), 400, "BadRequest"),
        case("an empty kind", create(FOOS, json!({"apiVersion": "hello.zeng.dev/v1", "kind": "", "metadata": {"name": "b"}})), 400, "BadRequest"),
        // Content types.
        case("text/plain", send("POST", FOOS, "text/plain", good.to_string()), 415, "UnsupportedMediaType"),
        case("XML", send("POST", FOOS, "application/xml", "<Foo/>"), 415, "UnsupportedMediaType"),
        case("protobuf", send("POST", FOOS, "application/vnd.kubernetes.protobuf", "k8s\0"), 415, "UnsupportedMediaType"),
        case("a Content-Type that is no media type", send("POST", FOOS, ";;;", good.to_string()), 415, "UnsupportedMediaType"),
        case("a patch type on create", send("POST", FOOS, JSON_PATCH, "[]"), 415, "UnsupportedMediaType"),
        case("text/plain on update", send("PUT", KEEP, "text/plain", foo("keep", json!({}), json!({})).to_string()), 415, "UnsupportedMediaType"),
        case("plain JSON as a patch", patch(JSON, "{}"), 415, "UnsupportedMediaType"),
        case("a patch without Content-Type", req("PATCH", KEEP).body("{}"), 415, "UnsupportedMediaType"),
        case("Accept: XML", get(KEEP).header("accept", "application/xml"), 406, "NotAcceptable"),
        case("Accept: protobuf only", get(KEEP).header("accept", "application/vnd.kubernetes.protobuf"), 406, "NotAcceptable"),
        case("Accept: an unknown transformation", get(KEEP).header("accept", "application/json;as=Bogus;v=v1;g=meta.k8s.io"), 406, "NotAcceptable"),
        case("YAML that does not parse", send("POST", FOOS, YAML, "a: [\nb"), 400, "BadRequest"),
        case("YAML indented with tabs", send("POST", FOOS, YAML, "kind: Foo\nmetadata:\n\tname: x\n"), 400, "BadRequest"),
        case("a YAML alias bomb", send("POST", FOOS, YAML, billion_laughs()), 400, "BadRequest"),
        case("several YAML documents", send("POST", FOOS, YAML, "a: 1\n---\nb: 2\n"), 400, "BadRequest"),
        case("a YAML scalar", send("POST", FOOS, YAML, "hello"), 400, "BadRequest"),
        // Names and namespaces in the path.
        case("an uppercase name in the path", get(format!("{FOOS}/KEEP")), 404, "NotFound"),
        case("the name .. in the path", get(format!("{FOOS}/..")), 400, "BadRequest")
            .check(|r| assert_eq!(r.message(), "Name parameter invalid: \"..\": may not be '..'")),
        case("the name . in the path", get(format!("{FOOS}/.")), 400, "BadRequest"),
        case("an encoded .. in the path", get(format!("{FOOS}/%2E%2E")), 400, "BadRequest"),
        case("an encoded % in the name", get(format!("{FOOS}/a%25b")), 400, "BadRequest"),
        case("an encoded slash in the name", get(format!("{FOOS}/keep%2Fx")), 404, "NotFound"),
        case("a slash to another namespace's object", get(format!("{V1}/namespaces/other%2Ffoos%2Fkeep/foos/keep")), 404, ""),
        case("DELETE of ..", req("DELETE", format!("{FOOS}/..")), 400, "BadRequest"),
        case("PUT to ..", send("PUT", format!("{FOOS}/.."), JSON, foo("..", json!({}), json!({})).to_string()), 400, "BadRequest"),
        case("PATCH of ..", send("PATCH", format!("{FOOS}/.."), MERGE, "{}"), 400, "BadRequest"),
        case("NUL in the path", get(format!("{FOOS}/a%00b")), 404, "NotFound"),
        case("a name of 300 characters in the path", get(format!("{FOOS}/{}", "a".repeat(300))), 404, "NotFound"),
        case("unicode in the path", get(format!("{FOOS}/f%C3%B6o")), 404, "NotFound"),
        case("an uppercase namespace", get(format!("{V1}/namespaces/UPPER/foos/keep")), 404, "NotFound"),
        case("creating in an uppercase namespace", create(&format!("{V1}/namespaces/UPPER/foos"), foo("x", json!({}), json!({}))), 404, "NotFound")
            .check(|r| assert_eq!(r.message(), "namespaces \"UPPER\" not found")),
        case("creating in a namespace of 64 characters", create(&format!("{V1}/namespaces/{}/foos", "n".repeat(64)), foo("x", json!({}), json!({}))), 404, "NotFound"),
        case("creating in a namespace with a dot", create(&format!("{V1}/namespaces/a.b/foos"), foo("x", json!({}), json!({}))), 404, "NotFound"),
        case("creating in the namespace ..", create(&format!("{V1}/namespaces/../foos"), foo("x", json!({}), json!({}))), 404, "NotFound"),
        case("applying into an uppercase namespace", send("PATCH", format!("{V1}/namespaces/UPPER/foos/x?fieldManager=m"), APPLY, r#"{"apiVersion":"hello.zeng.dev/v1","kind":"Foo","metadata":{"name":"x"}}"#), 404, "NotFound"),
        case("listing an uppercase namespace", get(format!("{V1}/namespaces/UPPER/foos")), 200, ""),
        case("a subresource that does not exist", get(format!("{KEEP}/bogus")), 404, "NotFound"),
        case("status, which Foo does not have", get(format!("{KEEP}/status")), 404, "NotFound"),
        case("an unserved version", get(format!("/apis/hello.zeng.dev/v2/namespaces/default/foos")), 404, ""),
        case("an unknown resource", get(format!("{V1}/namespaces/default/bars")), 404, ""),
        case("PUT to the collection", send("PUT", FOOS, JSON, good.to_string()), 400, "BadRequest"),
        case("PATCH of the collection", send("PATCH", FOOS, MERGE, "{}"), 400, "BadRequest"),
        case("an invented method", req("BREW", FOOS), 405, "MethodNotAllowed"),
        case("OPTIONS", req("OPTIONS", KEEP), 405, "MethodNotAllowed"),
        case("POST to a watch", send("POST", format!("{V1}/watch/namespaces/default/foos"), JSON, good.to_string()), 405, "MethodNotAllowed"),
        // Selectors.
        case("an unclosed set", list("labelSelector=a%20in%20(b"), 400, "BadRequest"),
        case("two equals", list("labelSelector=a%3Db%3Dc"), 400, "BadRequest"),
        case("a lone !", list("labelSelector=!"), 400, "BadRequest"),
        case("a label value too long", list(&format!("labelSelector=a%3D{}", "v".repeat(64))), 400, "BadRequest"),
        case("a label key with a space", list("labelSelector=bad%20key%3Dx"), 400, "BadRequest"),
        case("a field not selectable", list("fieldSelector=spec.msg%3Dx"), 400, "BadRequest"),
        case("a field without an operator", list("fieldSelector=metadata.name"), 400, "BadRequest"),
        case("a field with !!", list("fieldSelector=metadata.name!!x"), 400, "BadRequest"),
        case("a field of pods", list("fieldSelector=status.phase%3DRunning"), 400, "BadRequest"),
        // Query values.
        case("limit=-1 (no limit)", list("limit=-1"), 200, "").check(|r| assert!(r.text().contains("\"keep\""))),
        case("limit=0 (no limit)", list("limit=0"), 200, ""),
        case("limit=abc", list("limit=abc"), 400, "BadRequest").check(|r| assert_eq!(r.message(), "strconv.ParseInt: parsing \"abc\": invalid syntax")),
        case("a limit beyond int64", list("limit=99999999999999999999"), 400, "BadRequest"),
        case("a fractional limit", list("limit=1.5"), 400, "BadRequest"),
        case("resourceVersion=abc", list("resourceVersion=abc"), 400, "BadRequest")
            .differs("kube-apiserver 1.32 answers 500 (kubernetes/kubernetes#139485)"),
        case("resourceVersion=-1", list("resourceVersion=-1"), 400, "BadRequest").differs("kube-apiserver 1.32 answers 500"),
        case("a resourceVersion from the future", list("resourceVersion=99999999999"), 504, "Timeout"),
        case("resourceVersionMatch without resourceVersion", list("resourceVersionMatch=Exact"), 422, "Invalid"),
        case("an unknown resourceVersionMatch", list("resourceVersionMatch=Bogus&resourceVersion=1"), 422, "Invalid"),
        case("Exact at resourceVersion 0", list("resourceVersionMatch=Exact&resourceVersion=0"), 422, "Invalid"),
        case("sendInitialEvents on a list", list("sendInitialEvents=true"), 422, "Invalid"),
        case("continue=garbage", list("limit=1&continue=garbage"), 400, "BadRequest"),
        case("a continue token climbing out of the resource", list(&format!("limit=1&continue={}", token(1, "/../../../secret\u{0}"))), 400, "BadRequest"),
        case("a continue token at revision 0", list(&format!("limit=1&continue={}", token(0, "/keep\u{0}"))), 400, "BadRequest"),
        case("continue with a resourceVersion", list(&format!("limit=1&resourceVersion=5&continue={}", token(1, "/keep\u{0}"))), 400, "BadRequest"),
        case("timeoutSeconds=x", list("timeoutSeconds=x"), 400, "BadRequest"),
        case("a watch with timeoutSeconds=x", list("watch=1&timeoutSeconds=x"), 400, "BadRequest"),
        case("a watch at resourceVersion=abc", list("watch=1&resourceVersion=abc"), 400, "BadRequest").differs("kube-apiserver 1.32 answers 500"),
        case("resourceVersionMatch on a watch", list("watch=1&resourceVersion=1&resourceVersionMatch=NotOlderThan"), 422, "Invalid"),
        case("a watch with a negative timeout ends at once", list("watch=1&timeoutSeconds=-1"), 200, ""),
        case("watch=bogus is a watch", list("watch=bogus&timeoutSeconds=-1"), 200, "").check(|r| assert!(!r.text().contains("FooList"), "a list: {}", r.text())),
        case("includeObject=Everything", list("includeObject=Everything").header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io"), 400, "BadRequest"),
        case("timeout=bogus", list("timeout=bogus"), 400, "BadRequest")
            .check(|r| assert_eq!(r.message(), "invalid timeout specified in the request URL - time: invalid duration \"bogus\"")),
        case("timeout without a unit", list("timeout=10"), 400, "BadRequest"),
        case("fieldValidation=bogus", send("POST", format!("{FOOS}?fieldValidation=bogus"), JSON, good.to_string()), 422, "Invalid").check(|r| {
            assert_eq!(r.message(), "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"bogus\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"")
        }),
        case("dryRun=bogus", send("POST", format!("{FOOS}?dryRun=bogus"), JSON, good.to_string()), 422, "Invalid").check(|r| {
            assert_eq!(r.message(), "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"bogus\"}: supported values: \"All\"")
        }),
        case("dryRun=All and dryRun=bogus", send("POST", format!("{FOOS}?dryRun=All&dryRun=bogus"), JSON, good.to_string()), 422, "Invalid"),
        case("dryRun=bogus on update", put_keep(|_| {}).path_query("dryRun=bogus"), 422, "Invalid"),
        case("a field manager of 129 bytes", send("POST", format!("{FOOS}?fieldManager={}", "m".repeat(129)), JSON, good.to_string()), 422, "Invalid"),
        case("a field manager with a control character", send("POST", format!("{FOOS}?fieldManager=a%07b"), JSON, good.to_string()), 422, "Invalid"),
        case("force on a merge patch", patch(MERGE, "{}").path_query("force=true"), 422, "Invalid"),
        case("an apply without field manager", patch(APPLY, "{}"), 422, "Invalid"),
        case("Strict with an unknown field", send("POST", format!("{FOOS}?fieldValidation=Strict"), JSON, foo("u", json!({}), json!({"bogus": 1})).to_string()), 400, "BadRequest"),
        case("Strict with a duplicate field", send("POST", format!("{FOOS}?fieldValidation=Strict"), JSON, r#"{"apiVersion":"hello.zeng.dev/v1","kind":"Foo","metadata":{"name":"d"},"spec":{"msg":"a","msg":"b"}}"#), 400, "BadRequest"),
        // Deletes.
        case("propagationPolicy=bogus", req("DELETE", format!("{KEEP}?propagationPolicy=bogus")), 422, "Invalid").check(|r| {
            assert_eq!(r.message(), "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"bogus\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"")
        }),
        case("a bogus propagationPolicy in the body", send("DELETE", KEEP, JSON, r#"{"propagationPolicy":"bogus"}"#), 422, "Invalid"),
        case("orphanDependents with propagationPolicy", req("DELETE", format!("{KEEP}?orphanDependents=true&propagationPolicy=Orphan")), 422, "Invalid"),
        case("gracePeriodSeconds=abc", req("DELETE", format!("{KEEP}?gracePeriodSeconds=abc")), 400, "BadRequest"),
        case("dryRun=bogus on delete", req("DELETE", format!("{KEEP}?dryRun=bogus")), 422, "Invalid"),
        case("DeleteOptions that are a list", send("DELETE", KEEP, JSON, "[]"), 400, "BadRequest"),
        case("DeleteOptions that do not parse", send("DELETE", KEEP, JSON, "{"), 400, "BadRequest"),
        case("a uid precondition that does not hold", send("DELETE", KEEP, JSON, r#"{"preconditions":{"uid":"not-the-uid"}}"#), 409, "Conflict"),
        case("a resourceVersion precondition that does not hold", send("DELETE", KEEP, JSON, r#"{"preconditions":{"resourceVersion":"999999"}}"#), 409, "Conflict"),
        case("deleting what does not exist", req("DELETE", format!("{FOOS}/missing")), 404, "NotFound"),
        case("deleting a collection with a bad selector", req("DELETE", format!("{FOOS}?labelSelector=a%20in%20(b")), 400, "BadRequest"),
        // Updates.
        case("another name in the body", put_keep(|f| f["metadata"]["name"] = json!("other")), 400, "BadRequest"),
        case("no name in the body", put_keep(|f| f["metadata"] = json!({})), 400, "BadRequest"),
        case("another namespace in the PUT body", put_keep(|f| f["metadata"]["namespace"] = json!("other")), 400, "BadRequest"),
        case("a stale resourceVersion", put_keep(|f| f["metadata"]["resourceVersion"] = json!("999999")), 409, "Conflict"),
        case("another uid", put_keep(|f| f["metadata"]["uid"] = json!("forged-uid")), 409, "Conflict").check(|r| {
            assert!(r.message().contains("Precondition failed: UID in precondition: forged-uid"), "{}", r.message())
        }),
        case("an update of what does not exist", send("PUT", format!("{FOOS}/missing"), JSON, foo("missing", json!({}), json!({})).to_string()), 404, "NotFound"),
        case("an update to another kind", put_keep(|f| f["kind"] = json!("Bar")), 422, "Invalid"),
        case("an update with an invalid label", put_keep(|f| f["metadata"]["labels"] = json!({"a": "bad value"})), 422, "Invalid"),
        // Merge patches.
        case("a merge patch renaming", patch(MERGE, r#"{"metadata":{"name":"other"}}"#), 400, "BadRequest"),
        case("a merge patch moving namespaces", patch(MERGE, r#"{"metadata":{"namespace":"other"}}"#), 400, "BadRequest"),
        case("a merge patch changing the uid", patch(MERGE, r#"{"metadata":{"uid":"forged-uid"}}"#), 422, "Invalid")
            .check(|r| assert!(r.message().ends_with("metadata.uid: Invalid value: \"forged-uid\": field is immutable"), "{}", r.message())),
        case("a merge patch that is a list", patch(MERGE, "[]"), 422, "Invalid"),
        case("a merge patch that is a string", patch(MERGE, r#""x""#), 400, "BadRequest"),
        case("a merge patch that is null", patch(MERGE, "null"), 400, "BadRequest"),
        case("a merge patch that does not parse", patch(MERGE, "{"), 400, "BadRequest"),
        case("a merge patch 100,000 levels deep", patch(MERGE, format!(r#"{{"spec":{{"msg":{}}}}}"#, nested(99_998))), 400, "BadRequest"),
        case("a merge patch 10,000 levels deep", patch(MERGE, format!(r#"{{"spec":{{"msg":{}}}}}"#, nested(9_998))), 422, "Invalid"),
        case("a merge patch of the wrong type", patch(MERGE, r#"{"spec":{"msg":1}}"#), 422, "Invalid"),
        case("a merge patch changing the kind", patch(MERGE, r#"{"kind":"Bar"}"#), 422, "Invalid"),
        case("a merge patch changing the version", patch(MERGE, r#"{"apiVersion":"hello.zeng.dev/v9"}"#), 422, "Invalid"),
        case("a merge patch making metadata a string", patch(MERGE, r#"{"metadata":"x"}"#), 422, "Invalid"),
        case("a merge patch with a stale resourceVersion", patch(MERGE, r#"{"metadata":{"resourceVersion":"999999"}}"#), 409, "Conflict"),
        case("a merge patch of what does not exist", send("PATCH", format!("{FOOS}/missing"), MERGE, "{}"), 404, "NotFound"),
        // JSON patches.
        case("an unknown operation", patch(JSON_PATCH, r#"[{"op":"bogus","path":"/spec/msg"}]"#), 422, "Invalid"),
        case("an operation without a path", patch(JSON_PATCH, r#"[{"op":"add","value":1}]"#), 422, "Invalid"),
        case("a test that fails", patch(JSON_PATCH, r#"[{"op":"test","path":"/spec/msg","value":"wrong"}]"#), 422, "Invalid")
            .check(|r| assert_eq!(r.message(), "the server rejected our request due to an error in our request")),
        case("a path that does not exist", patch(JSON_PATCH, r#"[{"op":"replace","path":"/spec/nothere/x","value":1}]"#), 422, "Invalid"),
        case("a pointer without a slash", patch(JSON_PATCH, r#"[{"op":"add","path":"spec","value":1}]"#), 422, "Invalid"),
        case("removing the name", patch(JSON_PATCH, r#"[{"op":"remove","path":"/metadata/name"}]"#), 400, "BadRequest"),
        case("moving a value into itself", patch(JSON_PATCH, r#"[{"op":"move","from":"/spec","path":"/spec/inner"}]"#), 422, "Invalid"),
        case("a JSON patch that is an object", patch(JSON_PATCH, r#"{"op":"add"}"#), 400, "BadRequest"),
        case("a JSON patch of numbers", patch(JSON_PATCH, "[1,2]"), 400, "BadRequest"),
        case("a null operation", patch(JSON_PATCH, "[null]"), 422, "Invalid"),
        case("a JSON patch that does not parse", patch(JSON_PATCH, "[{"), 400, "BadRequest"),
        case("a JSON patch 100,000 levels deep", patch(JSON_PATCH, format!(r#"[{{"op":"add","path":"/spec/msg","value":{}}}]"#, nested(99_998))), 400, "BadRequest"),
        case("adding 10,000 levels where a string belongs", patch(JSON_PATCH, format!(r#"[{{"op":"add","path":"/spec/msg","value":{}}}]"#, nested(9_998))), 422, "Invalid"),
        case("a bad operation on what does not exist", send("PATCH", format!("{FOOS}/missing"), JSON_PATCH, r#"[{"op":"bogus"}]"#), 404, "NotFound"),
        // Server-side apply.
        case("an apply body that does not parse", patch(APPLY, "a: [").path_query("fieldManager=m"), 400, "BadRequest"),
        case("an apply body that is a list", patch(APPLY, "- 1").path_query("fieldManager=m"), 400, "BadRequest"),
        case("an apply body 10,000 levels deep", patch(APPLY, format!(r#"{{"apiVersion":"hello.zeng.dev/v1","kind":"Foo","metadata":{{"name":"keep"}},"spec":{{"msg":{}}}}}"#, nested(9_997))).path_query("fieldManager=m"), 500, "")
            .check(|r| assert!(r.message().starts_with("failed to create typed patch object"), "kube's own 500: {}", r.message())),
        case("an apply body 100,000 levels deep", patch(APPLY, format!(r#"{{"spec":{{"msg":{}}}}}"#, nested(99_998))).path_query("fieldManager=m"), 400, "BadRequest"),
        // Strategic merge patches (kube answers 415 for every one on a custom resource; we
        // apply them, and refuse bad directives as kube does for built-in types).
        case("an unknown $patch directive", patch(STRATEGIC, r#"{"metadata":{"labels":{"$patch":"bogus"}}}"#), 400, "BadRequest")
            .differs("kube-apiserver answers 415 to strategic merge patches of custom resources"),
        case("$retainKeys that is no list", patch(STRATEGIC, r#"{"spec":{"$retainKeys":"msg"}}"#), 400, "BadRequest").differs("kube: 415"),
        case("$setElementOrder on a map", patch(STRATEGIC, r#"{"metadata":{"$setElementOrder/labels":[{"app":"x"}]}}"#), 400, "BadRequest").differs("kube: 415"),
        case("a strategic patch 100,000 levels deep", patch(STRATEGIC, format!(r#"{{"spec":{{"msg":{}}}}}"#, nested(99_998))), 400, "BadRequest").differs("kube: 415"),
        case("a strategic patch 10,000 levels deep", patch(STRATEGIC, format!(r#"{{"spec":{{"msg":{}}}}}"#, nested(9_998))), 422, "Invalid").differs("kube: 415"),
    ];
    // The uid precondition that holds, so that the forged one above is what fails.
    // (With a body, kube reads DeleteOptions from the body alone: a dryRun in the query would be
    // ignored and the object deleted.)
    cases.push(case(
        "a uid precondition that holds, with dry run",
        send("DELETE", KEEP, JSON, json!({"preconditions": {"uid": uid}, "dryRun": ["All"]}).to_string()),
        200,
        "",
    ));
    cases
}

/// A continue token in kube's format.
fn token(revision: u64, start: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!({"v": "meta.k8s.io/v1", "rv": revision, "start": start}).to_string())
}

/// A block-style YAML document `levels` deep under `spec.msg`.
fn yaml_block(levels: usize) -> String {
    let mut doc = String::from("apiVersion: hello.zeng.dev/v1\nkind: Foo\nmetadata:\n  name: deep\nspec:\n  msg:\n");
    for level in 0..levels {
        doc.push_str(&"  ".repeat(level + 2));
        doc.push_str("a:\n");
    }
    doc.push_str(&"  ".repeat(levels + 2));
    doc.push_str("b: 1\n");
    doc
}

impl Req {
    /// Adds `query` to the path.
    fn path_query(mut self, query: &str) -> Self {
        self.path = format!("{}{}{query}", self.path, if self.path.contains('?') { '&' } else { '?' });
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Running the catalogue in process.

async fn call(app: &axum::Router, req: Req) -> Reply {
    let mut request = Request::builder().method(req.method).uri(&req.path);
    for (name, value) in &req.headers {
        request = request.header(*name, value);
    }
    let response = app.clone().oneshot(request.body(req.body).unwrap()).await.unwrap();
    let code = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply { code, headers, body }
}

/// Everything stored, exactly.
async fn stored(storage: &dyn Storage) -> (u64, Vec<(String, Vec<u8>, u64)>) {
    let all = storage.list("/", ListOptions::default()).await.unwrap();
    (storage.current_revision().await.unwrap(), all.items.into_iter().map(|kv| (kv.key, kv.value.to_vec(), kv.mod_revision)).collect())
}

async fn run_catalogue() {
    let storage = Arc::new(server::storage::memory::MemoryStorage::default());
    let app = server::app(server::AppState::new(storage.clone()));
    let keep = call(&app, create(FOOS, foo("keep", json!({"labels": {"app": "keep"}}), json!({"msg": "keep"})))).await;
    assert_eq!(keep.code, 201, "{}", keep.text());
    let keep: Value = serde_json::from_slice(&keep.body).unwrap();
    let other = call(&app, create(&format!("{V1}/namespaces/other/foos"), foo("keep", json!({}), json!({"msg": "other"})))).await;
    assert_eq!(other.code, 201, "{}", other.text());
    let before = stored(storage.as_ref()).await;

    let fixture = Fixture { uid: keep["metadata"]["uid"].as_str().unwrap().to_string() };
    let cases = catalogue(&fixture);
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let (method, path) = (case.req.method, case.req.path.chars().take(120).collect::<String>());
        let started = Instant::now();
        let reply = call(&app, case.req).await;
        let reason = reply.status().and_then(|s| s["reason"].as_str().map(str::to_string)).unwrap_or_default();
        if (reply.code, reason.as_str()) != (case.code, case.reason) {
            let shown: String = reply.text().chars().take(300).collect();
            failures.push(format!(
                "{}: {method} {path}: want {} {:?}, got {} {reason:?}: {shown}",
                case.what, case.code, case.reason, reply.code
            ));
            continue;
        }
        if let Some(check) = case.check {
            if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&reply))) {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {why}", case.what));
            }
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{}: took {:?}", case.what, started.elapsed());
        let _ = case.differs;
    }
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(stored(storage.as_ref()).await, before, "the catalogue changed what is stored");
}

#[test]
fn hostile_requests_get_kube_apiserver_answers_and_change_nothing() {
    // Documents 10,000 levels deep need the stacks the binary's threads have.
    let runtime = server::runtime().unwrap();
    runtime.block_on(async { tokio::spawn(run_catalogue()).await.unwrap() });
}

// ---------------------------------------------------------------------------------------------
// The real binary: what only a socket can show.

/// A running `apiserver` with a front-proxy CA, two token users and small limits; killed when
/// dropped.
struct Binary {
    child: std::process::Child,
    address: String,
    dir: tempfile::TempDir,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Users of the token file: `worker` may edit foos, `mallory` may do nothing.
const TOKENS: &str = "worker-token,worker,2001\nmallory-token,mallory,2002\n";
const POLICY: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: foo-editor}
rules: [{apiGroups: [hello.zeng.dev], resources: [foos], verbs: [create, get, list, watch, update, patch, delete]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: workers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: foo-editor}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: worker}]
"#;

impl Binary {
    fn start(args: &[String]) -> Binary {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_apiserver"))
            .args(["--storage", "memory", "--secure-port", "0", "--data-dir"])
            .arg(dir.path())
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start the apiserver binary");
        let address = support::wait_until_serving(&mut child, &log, "");
        Binary { child, address, dir }
    }

    /// A TLS client: the admin of the kubeconfig (system:masters), or no certificate.
    fn tls(&self, admin: bool) -> Arc<rustls::ClientConfig> {
        let config = support::client_tls(self.dir.path());
        if admin {
            return Arc::new(config);
        }
        let ca = std::fs::read_to_string(self.dir.path().join("certs/ca.crt")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut ca.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap();
        Arc::new(builder.with_root_certificates(roots).with_no_client_auth())
    }

    /// An HTTP/1.1 connection over TLS, as raw bytes.
    async fn connect(&self, admin: bool) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(&self.address).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        tokio_rustls::TlsConnector::from(self.tls(admin)).connect(name, tcp).await.unwrap()
    }
}

/// A request written by hand: the head, then `body`.
fn head(method: &str, path: &str, headers: &[(&str, &str)], body_length: Option<usize>) -> String {
    let mut text = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: application/json\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(length) = body_length {
        text.push_str(&format!("content-length: {length}\r\n"));
    }
    text.push_str("\r\n");
    text
}

/// Sends a whole request on a fresh connection and reads the answer.
async fn exchange(binary: &Binary, admin: bool, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = binary.connect(admin).await;
    let length = (!body.is_empty() || method != "GET").then_some(body.len());
    stream
        .write_all(head(method, path, &headers.iter().copied().chain(Some(("connection", "close"))).collect::<Vec<_>>(), length).as_bytes())
        .await
        .unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    read_reply(&mut stream).await
}

/// Reads one HTTP/1.1 answer (the connection closes after it, or it has a length).
async fn read_reply(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Reply {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await.expect("an answer within 30 s").unwrap_or(0);
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
        if let Some(reply) = parse_reply(&bytes) {
            return reply;
        }
    }
    parse_reply(&bytes).unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(&bytes)))
}

/// An answer, once all of it (by Content-Length, or chunks up to the last) has arrived.
fn parse_reply(bytes: &[u8]) -> Option<Reply> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = String::from_utf8_lossy(&bytes[..end]).to_string();
    let mut lines = text.split("\r\n");
    let code = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.append(http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?, value.trim().parse().ok()?);
    }
    let rest = &bytes[end + 4..];
    let body = if let Some(length) = headers.get("content-length").and_then(|v| v.to_str().ok()?.parse::<usize>().ok()) {
        if rest.len() < length {
            return None;
        }
        rest[..length].to_vec()
    } else if headers.get("transfer-encoding").is_some() {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let line_end = at + rest[at..].windows(2).position(|w| w == b"\r\n")?;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[at..line_end]).ok()?.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            let start = line_end + 2;
            body.extend_from_slice(rest.get(start..start + size)?);
            at = start + size + 2;
        }
        body
    } else {
        return None;
    };
    Some(Reply { code, headers, body })
}

fn reason(reply: &Reply) -> String {
    reply.status().and_then(|s| s["reason"].as_str().map(str::to_string)).unwrap_or_default()
}

fn flag(name: &str, value: impl AsRef<std::ffi::OsStr>) -> String {
    format!("--{name}={}", value.as_ref().to_string_lossy())
}

/// A CA of front proxies that is not the server's, as PEM.
fn front_proxy_ca() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "front-proxy-ca");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_connections_to_the_binary() {
    let files = tempfile::tempdir().unwrap();
    let binary = Binary::start(&[
        flag("requestheader-client-ca-file", write(files.path(), "front-proxy-ca.crt", &front_proxy_ca())),
        flag("token-auth-file", write(files.path(), "tokens.csv", TOKENS)),
        flag("authorization-policy-file", write(files.path(), "policy.yaml", POLICY)),
        flag("max-mutating-requests-inflight", "1"),
        flag("max-requests-inflight", "1"),
        flag("request-timeout", "3s"),
    ]);
    let worker = [("authorization", "Bearer worker-token")];
    let masters = [("X-Remote-User", "admin"), ("X-Remote-Group", "system:masters")];
    let foo = foo("keep", json!({}), json!({"msg": "keep"})).to_string();
    let created = exchange(&binary, false, "POST", FOOS, &[worker[0], ("content-type", JSON)], &foo).await;
    assert_eq!(created.code, 201, "{}", created.text());

    // Forged front-proxy headers on connections that have no front-proxy certificate are
    // ignored: no credentials stay none (401), a token stays its user (403).
    let forged = exchange(&binary, false, "GET", FOOS, &masters, "").await;
    assert_eq!((forged.code, reason(&forged).as_str()), (401, "Unauthorized"), "{}", forged.text());
    let mallory = [("authorization", "Bearer mallory-token"), masters[0], masters[1], ("X-Remote-Extra-Scopes", "all")];
    let forged = exchange(&binary, false, "DELETE", &format!("{FOOS}/keep"), &mallory, "").await;
    assert_eq!((forged.code, reason(&forged).as_str()), (403, "Forbidden"), "{}", forged.text());
    assert!(forged.message().contains("User \"mallory\""), "{}", forged.message());
    // The admin's certificate, whatever the headers say, is the admin (and system:masters is
    // never refused a slot).
    let admin_as_mallory = exchange(&binary, true, "GET", &format!("{FOOS}/keep"), &[("X-Remote-User", "mallory")], "").await;
    assert_eq!(admin_as_mallory.code, 200, "{}", admin_as_mallory.text());

    // Headers over 1 MiB (and Go's 4 KiB of slack): 431, as Go's server answers (not a Status).
    let huge = "x".repeat((1 << 20) + 8192);
    let answer = exchange(&binary, false, "GET", FOOS, &[worker[0], ("x-padding", &huge)], "").await;
    assert_eq!((answer.code, reason(&answer).as_str()), (431, ""));
    // hyper's own bounds, tighter than Go's: 100 header fields, URIs of 64 KiB.
    let many: Vec<(String, String)> = (0..101).map(|i| (format!("x-h{i}"), "v".to_string())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(exchange(&binary, false, "GET", FOOS, &many, "").await.code, 431);
    let long_uri = format!("{FOOS}?labelSelector={}", "a".repeat(70_000));
    assert_eq!(exchange(&binary, false, "GET", &long_uri, &worker, "").await.code, 414);
    // Headers just under the limit are fine.
    let big = "x".repeat((1 << 20) - 4096);
    let answer = exchange(&binary, false, "GET", FOOS, &[worker[0], ("x-padding", &big)], "").await;
    assert_eq!(answer.code, 200, "{}", answer.text());

    // A body announced larger than 3 MiB is refused before it is sent.
    let mut stream = binary.connect(false).await;
    stream.write_all(head("POST", FOOS, &[worker[0], ("content-type", JSON)], Some(100 << 20)).as_bytes()).await.unwrap();
    let answer = read_reply(&mut stream).await;
    assert_eq!((answer.code, reason(&answer).as_str()), (413, "RequestEntityTooLarge"), "{}", answer.text());
    assert_eq!(answer.message(), "Request entity too large: limit is 3145728");

    // Documents at and past Go's depth limit, on the binary's own threads.
    let deep = exchange(&binary, false, "POST", FOOS, &[worker[0], ("content-type", JSON)], &deep_foo("deep", "msg", 9_998)).await;
    assert_eq!((deep.code, reason(&deep).as_str()), (422, "Invalid"), "{}", deep.text());
    let too_deep = exchange(&binary, false, "POST", FOOS, &[worker[0], ("content-type", JSON)], &deep_foo("deep", "msg", 99_998)).await;
    assert_eq!((too_deep.code, reason(&too_deep).as_str()), (400, "BadRequest"), "{}", too_deep.text());

    // A mutating request that trickles its body holds the only mutating slot: the next
    // mutating request of a user outside system:masters gets kube's 429; reads have their own
    // slot; the admin is never refused. --request-timeout (3 s) then ends the slow request
    // with kube's 504, which frees the slot.
    let mut slow = binary.connect(false).await;
    let started = Instant::now();
    slow.write_all(head("PATCH", &format!("{FOOS}/keep"), &[worker[0], ("content-type", MERGE)], Some(100)).as_bytes()).await.unwrap();
    slow.write_all(b"{").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = exchange(&binary, false, "PATCH", &format!("{FOOS}/keep"), &[worker[0], ("content-type", MERGE)], "{}").await;
    assert_eq!((refused.code, reason(&refused).as_str()), (429, ""), "{}", refused.text());
    assert_eq!(refused.body, b"Too many requests, please try again later.\n");
    assert_eq!(refused.headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("1"));
    assert_eq!(refused.headers.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-cache, private"));
    let read = exchange(&binary, false, "GET", &format!("{FOOS}/keep"), &worker, "").await;
    assert_eq!(read.code, 200, "{}", read.text());
    let admin = exchange(&binary, true, "PATCH", &format!("{FOOS}/keep?dryRun=All"), &[("content-type", MERGE)], "{}").await;
    assert_eq!(admin.code, 200, "{}", admin.text());
    let timed_out = read_reply(&mut slow).await;
    assert_eq!((timed_out.code, reason(&timed_out).as_str()), (504, "Timeout"), "{}", timed_out.text());
    assert_eq!(
        timed_out.text(),
        "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"Timeout: request did not complete within the allotted timeout\",\"reason\":\"Timeout\",\"details\":{},\"code\":504}\n"
    );
    assert_eq!(timed_out.headers.get("content-type").map(|v| v.to_str().unwrap()), Some("text/plain; charset=utf-8"));
    assert_eq!(timed_out.headers.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-cache, private"));
    assert!(started.elapsed() >= Duration::from_secs(3) && started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    // A shorter ?timeout= is honoured.
    let mut slow = binary.connect(false).await;
    let started = Instant::now();
    slow.write_all(head("PATCH", &format!("{FOOS}/keep?timeout=1s"), &[worker[0], ("content-type", MERGE)], Some(100)).as_bytes())
        .await
        .unwrap();
    assert_eq!(read_reply(&mut slow).await.code, 504);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let after = exchange(&binary, false, "PATCH", &format!("{FOOS}/keep"), &[worker[0], ("content-type", MERGE)], "{}").await;
    assert_eq!(after.code, 200, "the slot is free again: {}", after.text());
    // Watches take no slot and are not timed out by --request-timeout.
    let mut watch = binary.connect(false).await;
    watch.write_all(head("GET", &format!("{FOOS}?watch=1&timeoutSeconds=5"), &worker, None).as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let read = exchange(&binary, false, "GET", &format!("{FOOS}/keep"), &worker, "").await;
    assert_eq!(read.code, 200, "a watch holds no read slot: {}", read.text());
    let started = Instant::now();
    let mut events = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), watch.read_to_end(&mut events)).await;
    assert!(started.elapsed() >= Duration::from_secs(4), "the watch outlived --request-timeout: {:?}", started.elapsed());
    assert!(String::from_utf8_lossy(&events).contains("\"ADDED\""));

    // Nothing of the above changed the object but the worker's own patches (none changed it).
    let kept = exchange(&binary, true, "GET", &format!("{FOOS}/keep"), &[], "").await;
    let kept: Value = serde_json::from_slice(&kept.body).unwrap();
    assert_eq!(kept["spec"], json!({"msg": "keep"}));
}

/// A client that sends its request headers too slowly is dropped, without an answer.
#[tokio::test]
async fn slow_headers_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let certs = server::tls::self_signed(dir.path(), &["127.0.0.1".to_string()]).unwrap();
    let tls = server::tls::server_config(&certs).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = server::app(server::AppState::new(Arc::new(server::storage::memory::MemoryStorage::default())));
    let options = server::serve::ServeOptions { header_read_timeout: Duration::from_secs(1), ..Default::default() };
    tokio::spawn(server::serve::serve_tls_with(listener, tls, app, options, std::future::pending()));

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut certs.ca_pem.as_deref().unwrap_or(&certs.cert_pem).as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    let started = Instant::now();
    // One byte of the request line every 200 ms: never a whole head within a second.
    let mut closed = false;
    for byte in b"GET /healthz HTTP/1.1\r\nhost: x\r\n" {
        if stream.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(closed || matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the connection stayed open: {read:?} {:?}", String::from_utf8_lossy(&rest));
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
}
