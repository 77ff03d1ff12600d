//! HTTP plumbing shared by every endpoint: Status errors, content negotiation, query parsing and
//! response encoding. Resource handlers live in [`crate::engine`]; discovery, OpenAPI, version
//! and health endpoints in [`discovery`].

pub mod discovery;
pub mod negotiate;
pub mod status;
pub mod yaml;

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use negotiate::Encoding;
use serde_json::Value;
pub use status::{ApiError, Cause, Details, FieldError, FieldErrorKind};

/// `Cache-Control` that kube-apiserver sends on API responses.
pub const NO_CACHE: &str = "no-cache, private";

/// Query parameters, in order, decoded. Repeated names keep their first value.
#[derive(Debug, Clone, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        Query(raw.map(|q| form_urlencoded_pairs(q)).unwrap_or_default())
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A boolean parameter as kube reads it (`true`, `1`; absent = false).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1" | "True" | "TRUE"))
    }
}

fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` as space; invalid escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether to indent JSON: `?pretty=true`, or a command-line HTTP client as User-Agent, as
/// kube-apiserver decides.
pub fn wants_pretty(query: &Query, headers: &HeaderMap) -> bool {
    if let Some(p) = query.get("pretty") {
        return matches!(p, "true" | "1");
    }
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    agent.starts_with("curl") || agent.starts_with("Wget")
}

/// Encodes a value as JSON (optionally indented) or YAML.
pub fn encode(value: &Value, encoding: Encoding, pretty: bool) -> Result<(Vec<u8>, &'static str), ApiError> {
    match encoding {
        Encoding::Json if pretty => {
            let mut bytes = serde_json::to_vec_pretty(value).map_err(ApiError::internal)?;
            bytes.push(b'\n');
            Ok((bytes, "application/json"))
        }
        Encoding::Json => Ok((serde_json::to_vec(value).map_err(ApiError::internal)?, "application/json")),
        Encoding::Yaml => Ok((yaml::to_yaml(value).into_bytes(), "application/yaml")),
    }
}

/// A response with an encoded value and kube-apiserver's cache header.
pub fn respond(status: StatusCode, value: &Value, encoding: Encoding, pretty: bool) -> Response {
    match encode(value, encoding, pretty) {
        Ok((body, content_type)) => bytes_response(status, body, content_type),
        Err(e) => e.into_response(),
    }
}

/// A response with a ready body.
pub fn bytes_response(status: StatusCode, body: Vec<u8>, content_type: &str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    response
}

/// The `404 page not found` plain-text answer for paths no route serves, as kube-apiserver's
/// mux gives.
pub async fn not_found_fallback() -> Response {
    let mut response = (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("fieldSelector=metadata.name%3Dfoo&labelSelector=a+in+(b,c)&watch=1&bad=%zz"));
        assert_eq!(q.get("fieldSelector"), Some("metadata.name=foo"));
        assert_eq!(q.get("labelSelector"), Some("a in (b,c)"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}

/// Logs each request's method, path, status and latency at debug level.
pub async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::debug!(%method, %uri, status = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    response
}
