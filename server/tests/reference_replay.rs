//! Replays the requests kube-apiserver 1.32 answered for the same Foo CRD
//! (`../shared/reference/kube-apiserver-1.32/`) against our router, in capture order, and
//! compares status codes, content types and bodies after normalising what is volatile (uids,
//! timestamps, resourceVersions, generated name suffixes, ages).
//!
//! Deliberate differences are listed in `docs/differences.md` and skipped here by name.

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/kube-apiserver-1.32")
}

/// One captured exchange.
struct Capture {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    status: u16,
    content_type: Option<String>,
    warnings: Vec<String>,
    response: Vec<u8>,
}

/// Parses `NAME.http` (request and response head) and `NAME.json` (response body).
fn load(name: &str) -> Capture {
    let dir = reference_dir();
    let http = std::fs::read_to_string(dir.join(format!("{name}.http"))).unwrap_or_else(|e| panic!("{name}.http: {e}"));
    let response = std::fs::read(dir.join(format!("{name}.json"))).unwrap_or_default();
    let split = http.rfind("\nHTTP/").expect("a response line");
    let (request, head) = (&http[..split], &http[split + 1..]);
    let mut lines = request.lines();
    let first = lines.next().unwrap().trim_start_matches("> ");
    let (method, path) = first.split_once(' ').unwrap();
    // Arguments are `> arg: X` lines; a multi-line argument continues on following lines.
    let mut args: Vec<String> = Vec::new();
    for line in lines {
        if let Some(arg) = line.strip_prefix("> arg: ") {
            args.push(arg.to_string());
        } else if let Some(last) = args.last_mut() {
            last.push('\n');
            last.push_str(line);
        }
    }
    let mut headers = Vec::new();
    let mut body = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-H" => {
                let (k, v) = args[i + 1].split_once(": ").unwrap();
                headers.push((k.to_string(), v.to_string()));
                i += 2;
            }
            "-d" | "--data-binary" => {
                body = Some(args[i + 1].trim_end_matches('\n').to_string());
                i += 2;
            }
            _ => i += 1,
        }
    }
    let mut head_lines = head.lines();
    let status: u16 = head_lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut content_type = None;
    let mut warnings = Vec::new();
    for line in head_lines {
        if let Some((k, v)) = line.split_once(": ") {
            match k.to_ascii_lowercase().as_str() {
                "content-type" => content_type = Some(v.to_string()),
                "warning" => warnings.push(v.to_string()),
                _ => {}
            }
        }
    }
    Capture { method: method.to_string(), path: path.to_string(), headers, body, status, content_type, warnings, response }
}

/// Replaces volatile values so two servers' answers can be compared.
fn normalize(value: &mut Value) {
    let age = regex::Regex::new(r"^\d+[smhdy]$").unwrap();
    let generated = regex::Regex::new(r"^gen-[a-z0-9]{5}$").unwrap();
    fn walk(v: &mut Value, age: &regex::Regex, generated: &regex::Regex) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    match k.as_str() {
                        "uid" | "creationTimestamp" | "time" | "resourceVersion" | "deletionTimestamp" if child.is_string() => {
                            *child = Value::String(format!("<{k}>"))
                        }
                        _ => walk(child, age, generated),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, age, generated)),
            Value::String(s) if age.is_match(s) => *s = "<age>".into(),
            Value::String(s) if generated.is_match(s) => *s = "gen-<random>".into(),
            _ => {}
        }
    }
    walk(value, &age, &generated);
}

/// Removes `managedFields` (until every write maintains them).
fn strip_managed_fields(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("managedFields");
            map.values_mut().for_each(strip_managed_fields);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_managed_fields),
        _ => {}
    }
}

/// Whether managedFields are compared (they are maintained by the field manager).
const COMPARE_MANAGED_FIELDS: bool = true;

struct Replay {
    app: axum::Router,
    /// kube-apiserver's resourceVersions and uids → ours, learned from the responses so far, so
    /// that replayed bodies carrying a resourceVersion or uid precondition mean the same object.
    versions: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// Records the pairs of resourceVersions (and uids) found at the same place in both answers.
fn learn_versions(want: &Value, got: &Value, map: &mut std::collections::HashMap<String, String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                if let Some(gv) = g.get(k) {
                    match (k.as_str(), wv, gv) {
                        ("resourceVersion" | "uid", Value::String(a), Value::String(b)) => {
                            map.insert(a.clone(), b.clone());
                        }
                        _ => learn_versions(wv, gv, map),
                    }
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => w.iter().zip(g).for_each(|(a, b)| learn_versions(a, b, map)),
        _ => {}
    }
}

impl Replay {
    fn new() -> Self {
        let storage = Arc::new(server::storage::memory::MemoryStorage::default());
        Replay { app: server::app(server::AppState::new(storage)), versions: Default::default() }
    }

    async fn send(&self, capture: &Capture) -> (u16, Option<String>, Vec<String>, Vec<u8>) {
        let mut request = Request::builder().method(capture.method.as_str()).uri(capture.path.as_str());
        request = request.header("user-agent", "anchor-capture/v1.0 (linux/amd64)");
        for (k, v) in &capture.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let body = capture.body.clone().map(|mut text| {
            let versions = self.versions.lock().unwrap();
            for (theirs, ours) in versions.iter() {
                for sep in ["\": \"", "\":\""] {
                    for field in ["resourceVersion", "uid"] {
                        text = text.replace(&format!("{field}{sep}{theirs}\""), &format!("{field}{sep}{ours}\""));
                    }
                }
            }
            Body::from(text)
        });
        let body = body.unwrap_or_else(Body::empty);
        let response = self.app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        let warnings = response.headers().get_all("warning").iter().map(|v| v.to_str().unwrap().to_string()).collect();
        let bytes = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, content_type, warnings, bytes)
    }

    /// Replays one capture and asserts we answer the same.
    async fn check(&self, name: &str) {
        let capture = load(name);
        let (status, content_type, warnings, body) = self.send(&capture).await;
        let shown = String::from_utf8_lossy(&body).to_string();
        assert_eq!(status, capture.status, "{name}: status; body: {shown}");
        assert_eq!(content_type, capture.content_type, "{name}: content-type");
        assert_eq!(warnings, capture.warnings, "{name}: warnings");
        let parse = |bytes: &[u8]| -> Result<Value, String> {
            if content_type.as_deref() == Some("application/yaml") {
                serde_yaml_ng::from_slice(bytes).map_err(|e| e.to_string())
            } else {
                serde_json::from_slice(bytes).map_err(|e| e.to_string())
            }
        };
        match (parse(&capture.response), parse(&body)) {
            (Ok(mut want), Ok(mut got)) => {
                learn_versions(&want, &got, &mut self.versions.lock().unwrap());
                normalize(&mut want);
                normalize(&mut got);
                if !COMPARE_MANAGED_FIELDS {
                    strip_managed_fields(&mut want);
                    strip_managed_fields(&mut got);
                }
                assert!(got == want, "{name}: body\n ours: {got}\nkube: {want}");
            }
            _ => assert_eq!(shown.trim_end(), String::from_utf8_lossy(&capture.response).trim_end(), "{name}: body (text)"),
        }
    }
}

#[tokio::test]
async fn replays_kube_apiserver_captures() {
    if !reference_dir().exists() {
        panic!("reference captures not found at {}", reference_dir().display());
    }
    let replay = Replay::new();
    // The order the captures were taken in (their resourceVersions tell it).
    for name in [
        "create",
        "get",
        "get-protobuf",
        "table-get",
        "get-pretty",
        "get-yaml",
        "get-curl-useragent-autopretty",
        "create-yaml",
        "create-generatename",
        "list",
        "list-all-namespaces",
        "partial-metadata-list",
        "table-list",
        "table-list-includeObject-Object",
        "table-v1beta1",
        "err-400-malformed-json",
        "err-400-namespace-mismatch",
        "err-400-put-on-collection",
        "err-400-unknown-field-strict",
        "err-400-bad-fieldselector",
        "err-404-notfound",
        "err-404-unknown-resource",
        "err-409-alreadyexists",
        "err-422-invalid-name",
        "err-422-invalid-type",
        "err-422-wrong-kind",
        "update-put",
        "err-409-conflict-stale-rv",
        "warn-unknown-field-default",
        "err-422-json-patch-test-failed",
        "patch-json",
        "patch-merge",
        "list-fieldselector",
        "list-labelselector",
        "patch-merge-missing-404",
        "err-406-not-acceptable",
        "dryrun-create",
        "delete",
        "err-404-delete-missing",
        "apis-group",
        "apis-group-version",
    ] {
        replay.check(name).await;
    }
}
