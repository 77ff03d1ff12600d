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

    /// A boolean parameter as kube-apiserver's query decoding reads it: absent, `0` and `false`
    /// (any case) are false; anything else, the empty value included, is true.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(query_bool)
    }

    /// An integer parameter as kube-apiserver's query decoding reads it (Go's
    /// `strconv.ParseInt`): `None` when absent or empty, 400 with Go's message when it is not an
    /// int64.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(text) => text.parse::<i64>().map(Some).map_err(|_| {
                let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
                let why =
                    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) { "value out of range" } else { "invalid syntax" };
                ApiError::bad_request(format!("strconv.ParseInt: parsing {text:?}: {why}"))
            }),
        }
    }
}

/// A boolean query value as kube-apiserver converts it: false only for `0` and `false` (any
/// case).
pub fn query_bool(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
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
    with_type((status, body).into_response(), content_type)
}

/// `response` with its `Content-Type` and `Cache-Control: no-cache, private`.
fn with_type(mut response: Response, content_type: &str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    response
}

/// A response whose body is `chunks` one after the other, sent without joining them (shared
/// bytes, such as a cached list's items, are not copied), with its `Content-Length`.
pub fn chunks_response(status: StatusCode, chunks: Vec<bytes::Bytes>, content_type: &str) -> Response {
    let body = Chunks { remaining: chunks.iter().map(|c| c.len() as u64).sum(), chunks: chunks.into() };
    with_type((status, axum::body::Body::new(body)).into_response(), content_type)
}

/// A response whose body is the pieces `pieces` yields, taken as the connection can send them
/// (its length is not known ahead, so HTTP/1.1 sends it chunked, as kube-apiserver does with
/// large answers).
pub fn stream_response(status: StatusCode, pieces: impl Iterator<Item = bytes::Bytes> + Send + 'static, content_type: &str) -> Response {
    let body = futures::stream::iter(pieces.map(Ok::<_, std::convert::Infallible>));
    with_type((status, axum::body::Body::from_stream(body)).into_response(), content_type)
}

/// A body of ready chunks of known total length.
struct Chunks {
    chunks: std::collections::VecDeque<bytes::Bytes>,
    remaining: u64,
}

impl axum::body::HttpBody for Chunks {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        let next = self.chunks.pop_front();
        if let Some(chunk) = &next {
            self.remaining -= chunk.len() as u64;
        }
        std::task::Poll::Ready(next.map(|chunk| Ok(http_body::Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// The `404 page not found` plain-text answer for paths no route serves, as kube-apiserver's
/// mux gives.
pub async fn not_found_fallback() -> Response {
    page_not_found()
}

/// The plain-text `404 page not found`.
pub fn page_not_found() -> Response {
    let mut response = (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

/// The answer for paths no route serves: kube-apiserver's handler of a custom resource answers
/// every path below it, so an object's subresource that is not served (`/foos/x/bogus`) is a
/// `NotFound` Status about the object; anything else is the plain `404 page not found`.
pub async fn fallback(request: axum::extract::Request) -> Response {
    let uri = request.uri();
    let Ok(info) = crate::auth::RequestInfo::parse(request.method(), uri.path(), uri.query()) else { return page_not_found() };
    let served = generated::ENDPOINTS.iter().any(|e| {
        let resource = e.resource();
        resource.group == info.api_group && e.version == info.api_version && resource.names.plural == info.resource
    });
    if info.is_resource_request && served && !info.name.is_empty() && !info.subresource.is_empty() {
        return ApiError::not_found(&info.api_group, &info.resource, &info.name).into_response();
    }
    page_not_found()
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
        for (value, want) in [("true", true), ("1", true), ("", true), ("bogus", true), ("0", false), ("f", true), ("fALSE", false)] {
            assert_eq!(query_bool(value), want, "{value:?}");
        }
        let numbers = Query::parse(Some("limit=abc&big=99999999999999999999&ok=-5&empty="));
        assert_eq!(numbers.int("limit").unwrap_err().message, "strconv.ParseInt: parsing \"abc\": invalid syntax");
        assert_eq!(numbers.int("big").unwrap_err().message, "strconv.ParseInt: parsing \"99999999999999999999\": value out of range");
        assert_eq!((numbers.int("ok").unwrap(), numbers.int("empty").unwrap(), numbers.int("absent").unwrap()), (Some(-5), None, None));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}

/// kube-apiserver's outermost filter: every answer that does not say otherwise is
/// `Cache-Control: no-cache, private` — the plain 404, the 429 and the 504 of the limits too.
pub async fn cache_control(mut response: Response) -> Response {
    if !response.headers().contains_key(header::CACHE_CONTROL) {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    }
    response
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
