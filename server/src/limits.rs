//! Server-wide limits on requests, with kube-apiserver's flags, defaults and answers: how many
//! requests run at once (`--max-requests-inflight`, `--max-mutating-requests-inflight`) and how
//! long one may run (`--request-timeout`, shortened per request by `?timeout=`).
//!
//! Long-running requests — watches — are neither counted nor timed out, as in kube-apiserver:
//! their own `timeoutSeconds`, or `--min-request-timeout`, ends them. See `docs/hardening.md`.

use crate::auth::{RequestInfo, UserInfo};
use crate::http::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The limits, as the flags of the same names give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `--max-requests-inflight`: read-only requests (get, list) served at once; 0 = no limit.
    pub max_requests_inflight: usize,
    /// `--max-mutating-requests-inflight`: other requests served at once; 0 = no limit.
    pub max_mutating_requests_inflight: usize,
    /// `--request-timeout`: how long a request that is not a watch may take; 0 = no limit.
    pub request_timeout: Duration,
    /// `--min-request-timeout`: a watch without `timeoutSeconds` lasts between one and two
    /// times this.
    pub min_request_timeout: Duration,
}

impl Default for Limits {
    /// kube-apiserver's defaults: 400 read-only and 200 mutating requests at once, 60 s per
    /// request, watches of 30 to 60 minutes.
    fn default() -> Self {
        Limits {
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
            request_timeout: Duration::from_secs(60),
            min_request_timeout: Duration::from_secs(1800),
        }
    }
}

/// The limits in force: the numbers and the slots of requests in flight.
#[derive(Debug)]
pub struct Limiter {
    limits: Limits,
    read_only: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
}

impl Limiter {
    /// Enforces `limits`.
    pub fn new(limits: Limits) -> Limiter {
        let slots = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n)));
        Limiter { read_only: slots(limits.max_requests_inflight), mutating: slots(limits.max_mutating_requests_inflight), limits }
    }

    /// The limits enforced.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// Verbs that do not change anything (kube's `nonMutatingRequestVerbs`).
const READ_ONLY_VERBS: [&str; 3] = ["get", "list", "watch"];

/// kube-apiserver's long-running check: watches and proxies, and the streaming subresources.
pub fn is_long_running(info: &RequestInfo) -> bool {
    matches!(info.verb.as_str(), "watch" | "proxy")
        || matches!(info.subresource.as_str(), "attach" | "exec" | "proxy" | "log" | "portforward")
}

/// The request's [`RequestInfo`]: the one authentication stored, or parsed now.
fn request_info(request: &Request) -> Option<RequestInfo> {
    if let Some(info) = request.extensions().get::<RequestInfo>() {
        return Some(info.clone());
    }
    RequestInfo::parse(request.method(), request.uri().path(), request.uri().query()).ok()
}

/// The middleware of `--request-timeout`, outside authentication as in kube-apiserver: a request
/// that is not long-running gets at most the timeout (or its own shorter `?timeout=`), then a 504
/// in kube's words. The handler is dropped at that point; a write it had started may still
/// complete, as the message says.
pub async fn timeout(State(limiter): State<Arc<Limiter>>, mut request: Request, next: Next) -> Response {
    let Some(info) = request_info(&request) else { return next.run(request).await };
    let long_running = info.is_resource_request && is_long_running(&info);
    request.extensions_mut().insert(info);
    if long_running {
        return next.run(request).await;
    }
    let mut timeout = limiter.limits.request_timeout;
    let asked = request.uri().query().and_then(|q| crate::http::Query::parse(Some(q)).get("timeout").map(str::to_string));
    if let Some(asked) = asked.filter(|t| !t.is_empty()) {
        match parse_go_duration(&asked) {
            Ok(Some(d)) if !d.is_zero() && (timeout.is_zero() || d < timeout) => timeout = d,
            Ok(_) => {}
            Err(why) => return ApiError::bad_request(format!("invalid timeout specified in the request URL - {why}")).into_response(),
        }
    }
    if timeout.is_zero() {
        return next.run(request).await;
    }
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => timed_out(),
    }
}

/// A Go duration from a query: `Ok(None)` for a negative one (kube then uses its default),
/// else the message of Go's `time.ParseDuration`.
fn parse_go_duration(text: &str) -> Result<Option<Duration>, String> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    match crate::duration::parse_duration(unsigned) {
        Ok(d) if negative && !d.is_zero() => Ok(None),
        Ok(d) => Ok(Some(d)),
        Err(_) if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("time: missing unit in duration {text:?}"))
        }
        Err(_) => Err(format!("time: invalid duration {text:?}")),
    }
}

/// kube-apiserver's timeout answer, byte for byte: its timeout filter writes the bare `Status`
/// (no kind or apiVersion) with Go's JSON encoder and no Content-Type, which Go's server then
/// sniffs as plain text.
fn timed_out() -> Response {
    const BODY: &str = "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"Timeout: request did not complete within the allotted timeout\",\"reason\":\"Timeout\",\"details\":{},\"code\":504}\n";
    let mut response = (StatusCode::GATEWAY_TIMEOUT, BODY).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// The middleware of `--max-requests-inflight` and `--max-mutating-requests-inflight`, after
/// authentication as in kube-apiserver: when every slot of its kind is taken, a request gets 429
/// with `Retry-After: 1` — unless it is long-running (not counted) or its user is in
/// `system:masters` (never refused).
pub async fn inflight(State(limiter): State<Arc<Limiter>>, request: Request, next: Next) -> Response {
    let Some(info) = request_info(&request) else { return next.run(request).await };
    if info.is_resource_request && is_long_running(&info) {
        return next.run(request).await;
    }
    let slots = if READ_ONLY_VERBS.contains(&info.verb.as_str()) { &limiter.read_only } else { &limiter.mutating };
    let Some(slots) = slots else { return next.run(request).await };
    match slots.clone().try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) if request.extensions().get::<UserInfo>().is_some_and(|u| u.in_group(crate::auth::user::SYSTEM_MASTERS)) => {
            next.run(request).await
        }
        Err(_) => too_many_requests(),
    }
}

/// kube-apiserver's 429: Go's `http.Error` with a plain-text line, and `Retry-After: 1`.
fn too_many_requests() -> Response {
    let mut response = (StatusCode::TOO_MANY_REQUESTS, "Too many requests, please try again later.\n").into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_in_queries() {
        assert_eq!(parse_go_duration("10s"), Ok(Some(Duration::from_secs(10))));
        assert_eq!(parse_go_duration("-1s"), Ok(None));
        assert_eq!(parse_go_duration("0"), Ok(Some(Duration::ZERO)));
        assert_eq!(parse_go_duration("10"), Err("time: missing unit in duration \"10\"".into()));
        assert_eq!(parse_go_duration("bogus"), Err("time: invalid duration \"bogus\"".into()));
    }

    #[test]
    fn watches_are_long_running() {
        let info = |method: &http::Method, uri: &str| {
            let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
            RequestInfo::parse(method, path, Some(query)).unwrap()
        };
        assert!(is_long_running(&info(&http::Method::GET, "/apis/g/v1/namespaces/d/foos?watch=1")));
        assert!(is_long_running(&info(&http::Method::GET, "/apis/g/v1/watch/foos")));
        assert!(!is_long_running(&info(&http::Method::GET, "/apis/g/v1/namespaces/d/foos?watch=0")));
        assert!(!is_long_running(&info(&http::Method::POST, "/apis/g/v1/namespaces/d/foos")));
    }
}
