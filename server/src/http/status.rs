//! The one error type of the HTTP layer, rendered as a Kubernetes `Status` exactly as
//! kube-apiserver words it.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;

/// A failed request, ready to be written as a `Status` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `Invalid`, …).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Which object, and field causes for `Invalid`.
    pub details: Option<Details>,
}

/// `Status.details`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Details {
    /// Object name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// API group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind or resource name (kube-apiserver uses the plural for storage errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Object uid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Field-level causes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<Cause>,
    /// Suggested retry delay.
    #[serde(rename = "retryAfterSeconds", skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
}

/// One `Status.details.causes` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, …
    pub reason: String,
    /// What is wrong with the field.
    pub message: String,
    /// Field path, e.g. `spec.msg`.
    pub field: String,
}

/// The wire form of a `Status`, fields in kube-apiserver's order.
#[derive(Serialize)]
struct StatusBody<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: serde_json::Map<String, serde_json::Value>,
    status: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Details>,
    code: u16,
}

impl ApiError {
    /// An error without details.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError { code, reason, message: message.into(), details: None }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Details) -> Self {
        self.details = Some(details);
        self
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 NotFound for an object, e.g. `foos.hello.zeng.dev "x" not found`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", qualified(plural, group)))
            .with_details(object_details(name, group, plural))
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", qualified(plural, group)))
            .with_details(object_details(name, group, plural))
    }

    /// 409 Conflict, `Operation cannot be fulfilled on <what> "<name>": <why>`. `what` is the
    /// qualified resource (`foos.hello.zeng.dev`) or kind (`Foo.hello.zeng.dev`) as kube words it.
    pub fn conflict(group: &str, what: &str, name: &str, why: &str) -> Self {
        Self::new(409, "Conflict", format!("Operation cannot be fulfilled on {} \"{name}\": {why}", qualified(what, group)))
            .with_details(object_details(name, group, what))
    }

    /// The usual optimistic-concurrency conflict.
    pub fn stale(group: &str, plural: &str, name: &str) -> Self {
        Self::conflict(group, plural, name, "the object has been modified; please apply your changes to the latest version and try again")
    }

    /// 422 Invalid with field causes; `kind` is the object's kind (`Foo`).
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        let summary = match errors {
            [one] => one.to_string(),
            many => format!("[{}]", many.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")),
        };
        let causes =
            errors.iter().map(|e| Cause { reason: e.kind.reason().into(), message: e.detail_message(), field: e.field.clone() }).collect();
        Self::new(422, "Invalid", format!("{} \"{name}\" is invalid: {summary}", qualified(kind, group)))
            .with_details(Details { causes, ..object_details(name, group, kind) })
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(405, "MethodNotAllowed", format!("the server does not allow this method on the requested resource ({method})"))
            .with_details(Details::default())
    }

    /// 415 UnsupportedMediaType listing what is accepted.
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: {}", accepted.join(", ")),
        )
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(supported: &[&str]) -> Self {
        Self::new(406, "NotAcceptable", format!("only the following media types are accepted: {}", supported.join(", ")))
    }

    /// 410 Expired (resource version too old, continue token expired).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> Self {
        Self::new(413, "RequestEntityTooLarge", format!("Request entity too large: limit is {limit}"))
    }

    /// 500 InternalError; the cause is logged, not sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(500, "InternalError", "Internal error occurred: the server could not complete the request").with_details(Details {
            causes: vec![Cause {
                reason: "UnexpectedServerResponse".into(),
                message: "the server could not complete the request".into(),
                field: String::new(),
            }],
            ..Details::default()
        })
    }

    /// 503 ServiceUnavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message).with_details(Details { retry_after_seconds: Some(1), ..Details::default() })
    }

    /// The `Status` object as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.body()).expect("Status serializes")
    }

    fn body(&self) -> StatusBody<'_> {
        StatusBody {
            kind: "Status",
            api_version: "v1",
            metadata: serde_json::Map::new(),
            status: "Failure",
            message: &self.message,
            reason: self.reason,
            details: self.details.as_ref(),
            code: self.code,
        }
    }
}

/// `plural.group`, or just `plural` for the core group.
fn qualified(name: &str, group: &str) -> String {
    if group.is_empty() {
        name.to_string()
    } else {
        format!("{name}.{group}")
    }
}

fn object_details(name: &str, group: &str, kind: &str) -> Details {
    Details { name: Some(name.to_string()), group: Some(group.to_string()), kind: Some(kind.to_string()), ..Details::default() }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).expect("Status serializes");
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (code, [(http::header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(seconds) = self.details.as_ref().and_then(|d| d.retry_after_seconds) {
            response.headers_mut().insert(http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// Kinds of field errors, as in k8s.io/apimachinery's `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// The value is not valid (`FieldValueInvalid`).
    Invalid,
    /// The value has the wrong type (`FieldValueTypeInvalid`).
    TypeInvalid,
    /// A required value is missing (`FieldValueRequired`).
    Required,
    /// The value is not one of the allowed ones (`FieldValueNotSupported`).
    NotSupported,
    /// The value appears twice (`FieldValueDuplicate`).
    Duplicate,
    /// The field may not be set (`FieldValueForbidden`).
    Forbidden,
    /// Too long or too many (`FieldValueTooLong` / `FieldValueTooMany`).
    TooLong,
    /// Too many items (`FieldValueTooMany`).
    TooMany,
}

impl FieldErrorKind {
    /// The `causes[].reason` string.
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
        }
    }

    fn label(self) -> &'static str {
        match self {
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid => "Invalid value",
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
        }
    }
}

/// One field error, rendered as `<field>: <Label>: <value>: <detail>` like kube's `field.Error`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// What kind of error.
    pub kind: FieldErrorKind,
    /// Field path (`spec.msg`, `spec.items[2].name`).
    pub field: String,
    /// The offending value, already rendered (`"integer"`, `"Bad_Name"`), if shown.
    pub value: Option<String>,
    /// Explanation.
    pub detail: String,
}

impl FieldError {
    /// A new field error.
    pub fn new(kind: FieldErrorKind, field: impl Into<String>, value: Option<String>, detail: impl Into<String>) -> Self {
        FieldError { kind, field: field.into(), value, detail: detail.into() }
    }

    /// The message without the field path (what `causes[].message` holds).
    pub fn detail_message(&self) -> String {
        let mut s = self.kind.label().to_string();
        if let Some(v) = &self.value {
            s.push_str(": ");
            s.push_str(v);
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.detail_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_kube_apiserver() {
        let body = serde_json::to_string(&ApiError::not_found("hello.zeng.dev", "foos", "missing").body()).unwrap();
        assert_eq!(
            body,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"foos.hello.zeng.dev \"missing\" not found","reason":"NotFound","details":{"name":"missing","group":"hello.zeng.dev","kind":"foos"},"code":404}"#
        );
    }

    #[test]
    fn invalid_matches_kube_apiserver() {
        let e = FieldError::new(
            FieldErrorKind::TypeInvalid,
            "spec.msg",
            Some("\"integer\"".into()),
            "spec.msg in body must be of type string: \"integer\"",
        );
        let body = serde_json::to_string(&ApiError::invalid("hello.zeng.dev", "Foo", "bad-type", &[e]).body()).unwrap();
        assert_eq!(
            body,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Foo.hello.zeng.dev \"bad-type\" is invalid: spec.msg: Invalid value: \"integer\": spec.msg in body must be of type string: \"integer\"","reason":"Invalid","details":{"name":"bad-type","group":"hello.zeng.dev","kind":"Foo","causes":[{"reason":"FieldValueTypeInvalid","message":"Invalid value: \"integer\": spec.msg in body must be of type string: \"integer\"","field":"spec.msg"}]},"code":422}"#
        );
    }
}
