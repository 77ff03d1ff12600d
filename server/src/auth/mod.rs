//! Authentication and authorization, as kube-apiserver's handler chain does them: every
//! request is parsed into a [`RequestInfo`], its user is found by the [`authn`] chain (front
//! proxy headers, client certificate, bearer token, delegated TokenReview, anonymous), and
//! the [`authz`] chain (AlwaysAllow, RBAC, Webhook) decides whether that user may do it.
//! Failures are the Status bodies kube-apiserver sends: 401 `Unauthorized`, 403 with kube's
//! `… is forbidden: User "…" cannot …` message.
//!
//! [`Auth::disabled`] (what [`crate::AppState::new`] uses, for in-process tests) lets every
//! request through; the `apiserver` binary builds a secure [`Auth`] from its flags through
//! [`AuthOptions`]. See `docs/auth.md`.
//!
//! ```
//! use server::auth::AuthOptions;
//! // The binary's defaults: no anonymous requests, RBAC with the built-in policy.
//! let auth = AuthOptions::default().build().unwrap();
//! assert!(auth.is_enabled());
//! ```

pub mod authn;
pub mod authz;
pub mod client;
pub mod rbac;
pub mod requestheader;
pub mod requestinfo;
pub mod token;
pub mod user;
pub mod webhook;
pub mod x509;

pub use requestinfo::RequestInfo;
pub use user::UserInfo;
pub use x509::PeerCertificates;

use crate::http::ApiError;
use authn::{Authenticator, Failure};
use authz::{Attributes, Authorizer, Decision, Mode};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use requestheader::{RequestHeaderAuthenticator, RequestHeaderConfig};
use rustls::pki_types::CertificateDer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use x509::{CaPool, X509Authenticator};

/// A configuration error (a file that cannot be read, flags that do not fit together).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError(pub String);

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AuthError {}

/// The authentication and authorization settings, as the flags of the same names give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOptions {
    /// `--client-ca-file` (and the server's own CA, which signs the local admin's
    /// certificate): CA bundles whose client certificates authenticate users.
    pub client_ca_files: Vec<PathBuf>,
    /// `--token-auth-file`.
    pub token_auth_file: Option<PathBuf>,
    /// `--requestheader-client-ca-file`: the CA of front proxies.
    pub requestheader_client_ca_file: Option<PathBuf>,
    /// `--requestheader-username-headers`, `-uid-headers`, `-group-headers`,
    /// `-extra-headers-prefix`, `-allowed-names`.
    pub requestheader: RequestHeaderConfig,
    /// `--authentication-kubeconfig`: where TokenReviews go.
    pub authentication_kubeconfig: Option<PathBuf>,
    /// `--authentication-token-webhook-cache-ttl`.
    pub token_webhook_cache_ttl: Duration,
    /// `--anonymous-auth`.
    pub anonymous_auth: bool,
    /// `--authorization-mode`, in order.
    pub authorization_modes: Vec<String>,
    /// `--authorization-policy-file`: RBAC objects.
    pub authorization_policy_file: Option<PathBuf>,
    /// `--authorization-kubeconfig`: where SubjectAccessReviews go.
    pub authorization_kubeconfig: Option<PathBuf>,
    /// `--authorization-webhook-cache-authorized-ttl`.
    pub authorized_ttl: Duration,
    /// `--authorization-webhook-cache-unauthorized-ttl`.
    pub unauthorized_ttl: Duration,
    /// `--authorization-always-allow-paths`: paths every request may get, authenticated or
    /// not (a trailing `*` matches any suffix).
    pub always_allow_paths: Vec<String>,
}

/// How long delegated answers are cached by default (k8s.io/apiserver's delegating defaults).
pub const DEFAULT_WEBHOOK_CACHE_TTL: Duration = Duration::from_secs(10);

/// The authorization modes `--authorization-mode` accepts.
pub const MODES: [&str; 4] = ["AlwaysAllow", "AlwaysDeny", "RBAC", "Webhook"];

impl Default for AuthOptions {
    /// Secure defaults: no client CAs or tokens yet, anonymous requests refused, RBAC with the
    /// built-in policy (only `system:masters` may touch resources), health endpoints open.
    fn default() -> Self {
        AuthOptions {
            client_ca_files: Vec::new(),
            token_auth_file: None,
            requestheader_client_ca_file: None,
            requestheader: RequestHeaderConfig::default(),
            authentication_kubeconfig: None,
            token_webhook_cache_ttl: DEFAULT_WEBHOOK_CACHE_TTL,
            anonymous_auth: false,
            authorization_modes: vec!["RBAC".into()],
            authorization_policy_file: None,
            authorization_kubeconfig: None,
            authorized_ttl: DEFAULT_WEBHOOK_CACHE_TTL,
            unauthorized_ttl: DEFAULT_WEBHOOK_CACHE_TTL,
            always_allow_paths: vec!["/healthz".into(), "/readyz".into(), "/livez".into()],
        }
    }
}

impl AuthOptions {
    /// Reads every file the options name and checks that they fit together, reporting all
    /// problems at once.
    pub fn build(&self) -> Result<Auth, AuthError> {
        let mut errors = Vec::new();
        let mut note = |r: Result<(), AuthError>| {
            if let Err(e) = r {
                errors.push(e.0);
            }
        };

        // Authentication.
        let mut authenticator = Authenticator { anonymous: self.anonymous_auth, ..Authenticator::default() };
        let mut client_pools = Vec::new();
        for file in &self.client_ca_files {
            note(CaPool::from_file("--client-ca-file", file).map(|p| client_pools.push(p)));
        }
        if !client_pools.is_empty() {
            let roots: Vec<_> = client_pools.iter().flat_map(|p| p.roots().iter().cloned()).collect();
            let source = self.client_ca_files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ");
            note(
                CaPool::from_der(roots, &format!("--client-ca-file {source}"))
                    .map(|pool| authenticator.x509 = Some(X509Authenticator::new(pool))),
            );
        }
        match &self.requestheader_client_ca_file {
            Some(file) => {
                if self.requestheader.username_headers.iter().all(|h| h.trim().is_empty()) {
                    note(Err(AuthError(
                        "--requestheader-username-headers must name at least one header when --requestheader-client-ca-file is set".into(),
                    )));
                }
                note(CaPool::from_file("--requestheader-client-ca-file", file).map(|pool| {
                    authenticator.request_header = Some(RequestHeaderAuthenticator::new(pool, self.requestheader.clone()));
                }));
            }
            None if !self.requestheader.allowed_names.is_empty() => {
                note(Err(AuthError("--requestheader-allowed-names needs --requestheader-client-ca-file".into())));
            }
            None => {}
        }
        if let (Some(rh), Some(x509)) = (&authenticator.request_header, &authenticator.x509) {
            let shared = rh.pool().roots().iter().any(|r| x509.pool().roots().contains(r));
            if shared && !rh.has_allowed_names() {
                tracing::warn!(
                    "--requestheader-client-ca-file shares a CA with --client-ca-file and --requestheader-allowed-names is empty: \
                     every client certificate of that CA can claim any identity through the X-Remote-* headers"
                );
            }
        }
        if let Some(file) = &self.token_auth_file {
            note(token::TokenFile::load(file).map(|f| authenticator.token_file = Some(f)));
        }
        if let Some(file) = &self.authentication_kubeconfig {
            note(
                client::RestClient::from_kubeconfig("--authentication-kubeconfig", file)
                    .map(|c| authenticator.token_review = Some(webhook::TokenReviewAuthenticator::new(c, self.token_webhook_cache_ttl))),
            );
        }

        // Authorization.
        let mut modes = Vec::new();
        if self.authorization_modes.is_empty() {
            note(Err(AuthError("at least one --authorization-mode must be given".into())));
        }
        for (i, mode) in self.authorization_modes.iter().enumerate() {
            if self.authorization_modes[..i].contains(mode) {
                note(Err(AuthError(format!("--authorization-mode {mode:?} is given more than once"))));
                continue;
            }
            match mode.as_str() {
                "AlwaysAllow" => modes.push(Mode::AlwaysAllow),
                "AlwaysDeny" => modes.push(Mode::AlwaysDeny),
                "RBAC" => {
                    let policy = match &self.authorization_policy_file {
                        Some(file) => rbac::Policy::load(file),
                        None => Ok(rbac::Policy::builtin()),
                    };
                    note(policy.map(|p| modes.push(Mode::Rbac(p))));
                }
                "Webhook" => match &self.authorization_kubeconfig {
                    Some(file) => note(client::RestClient::from_kubeconfig("--authorization-kubeconfig", file).map(|c| {
                        modes.push(Mode::Webhook(webhook::SubjectAccessReviewAuthorizer::new(
                            c,
                            self.authorized_ttl,
                            self.unauthorized_ttl,
                        )))
                    })),
                    None => note(Err(AuthError("--authorization-mode=Webhook needs --authorization-kubeconfig".into()))),
                },
                other => note(Err(AuthError(format!(
                    "--authorization-mode {other:?} is not a valid mode; valid modes are {}",
                    MODES.join(", ")
                )))),
            }
        }
        let has = |m: &str| self.authorization_modes.iter().any(|x| x == m);
        if self.authorization_policy_file.is_some() && !has("RBAC") {
            note(Err(AuthError("--authorization-policy-file is only read with --authorization-mode=RBAC".into())));
        }
        if self.authorization_kubeconfig.is_some() && !has("Webhook") {
            note(Err(AuthError("--authorization-kubeconfig is only used with --authorization-mode=Webhook".into())));
        }
        if !errors.is_empty() {
            return Err(AuthError(errors.join("\n")));
        }
        Ok(Auth::new(authenticator, Authorizer::new(modes), self.always_allow_paths.clone()))
    }
}

/// The authentication and authorization of a server.
#[derive(Debug)]
pub struct Auth {
    enabled: Option<Enabled>,
}

#[derive(Debug)]
struct Enabled {
    authenticator: Authenticator,
    authorizer: Authorizer,
    always_allow_paths: Vec<String>,
}

impl Auth {
    /// No authentication and no authorization: every request goes through, without a user.
    /// For in-process tests; never what the binary runs.
    pub fn disabled() -> Auth {
        Auth { enabled: None }
    }

    /// Authentication by `authenticator`, authorization by `authorizer`; requests for
    /// `always_allow_paths` need neither.
    pub fn new(authenticator: Authenticator, authorizer: Authorizer, always_allow_paths: Vec<String>) -> Auth {
        Auth { enabled: Some(Enabled { authenticator, authorizer, always_allow_paths }) }
    }

    /// Whether requests are checked at all.
    pub fn is_enabled(&self) -> bool {
        self.enabled.is_some()
    }

    /// The authenticators, when enabled.
    pub fn authenticator(&self) -> Option<&Authenticator> {
        self.enabled.as_ref().map(|e| &e.authenticator)
    }

    /// The authorizer chain, when enabled.
    pub fn authorizer(&self) -> Option<&Authorizer> {
        self.enabled.as_ref().map(|e| &e.authorizer)
    }

    /// Every CA whose client certificates the TLS layer should accept: the client CAs and the
    /// front-proxy CAs. Which of them a certificate chains to is decided per request.
    pub fn client_ca_roots(&self) -> Vec<CertificateDer<'static>> {
        let Some(authn) = self.authenticator() else { return Vec::new() };
        let mut roots: Vec<CertificateDer<'static>> = Vec::new();
        let pools = authn.x509.iter().map(|x| x.pool()).chain(authn.request_header.iter().map(|r| r.pool()));
        for root in pools.flat_map(|p| p.roots().iter()) {
            if !roots.contains(root) {
                roots.push(root.clone());
            }
        }
        roots
    }

    /// Checks one request: on success its [`UserInfo`] and [`RequestInfo`] are in its
    /// extensions; otherwise the response to send instead.
    pub async fn check(&self, request: &mut Request) -> Result<(), Response> {
        let Some(enabled) = &self.enabled else { return Ok(()) };
        let uri = request.uri().clone();
        let info = RequestInfo::parse(request.method(), uri.path(), uri.query()).map_err(|e| internal_error(&uri, &e.to_string()))?;
        // Matched on the raw path: a percent-encoded path never reaches a route it decodes to.
        let always_allowed = !info.is_resource_request && enabled.always_allow_paths.iter().any(|p| path_matches(p, uri.path()));
        let peer = request.extensions().get::<PeerCertificates>().cloned();
        let user = match enabled.authenticator.authenticate(request.headers_mut(), peer.as_ref()).await {
            Ok(user) => user,
            Err(Failure::NoCredentials) if always_allowed => UserInfo::anonymous(),
            Err(Failure::NoCredentials) => {
                tracing::debug!(%uri, "no credentials");
                return Err(unauthorized());
            }
            Err(Failure::Rejected(reasons)) => {
                tracing::info!(%uri, reasons = %reasons.join("; "), "Unable to authenticate the request");
                return Err(unauthorized());
            }
        };
        if !always_allowed {
            let attributes = Attributes { user: &user, request: &info };
            let verdict = enabled.authorizer.authorize(&attributes).await;
            if verdict.decision != Decision::Allow {
                if let Some(error) = verdict.error {
                    tracing::warn!(%uri, user = %user.name, %error, "authorization failed");
                    return Err(internal_error(&uri, &error));
                }
                tracing::debug!(%uri, user = %user.name, verb = %info.verb, reason = %verdict.reason, "Forbidden");
                return Err(status_response(&authz::forbidden(&attributes, &verdict.reason), true));
            }
        }
        request.extensions_mut().insert(user);
        request.extensions_mut().insert(info);
        Ok(())
    }
}

/// The axum middleware: [`Auth::check`] before the routes.
pub async fn middleware(State(auth): State<Arc<Auth>>, mut request: Request, next: Next) -> Response {
    match auth.check(&mut request).await {
        Ok(()) => next.run(request).await,
        Err(response) => response,
    }
}

/// `--authorization-always-allow-paths` matching: exact, or a prefix before a trailing `*`.
fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

/// kube-apiserver's 401: `{"kind":"Status",…,"message":"Unauthorized","reason":"Unauthorized","code":401}`.
fn unauthorized() -> Response {
    status_response(&ApiError::new(401, "Unauthorized", "Unauthorized"), false)
}

/// A Status body exactly as kube-apiserver writes it (Go's JSON encoder ends it with a
/// newline), with its cache header and, for 403, `nosniff`.
fn status_response(error: &ApiError, nosniff: bool) -> Response {
    let mut body = serde_json::to_vec(&error.to_json()).unwrap_or_default();
    body.push(b'\n');
    let code = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (code, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(crate::http::NO_CACHE));
    if nosniff {
        headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    }
    response
}

/// kube's `responsewriters.InternalError`: plain text naming the request.
fn internal_error(uri: &http::Uri, error: &str) -> Response {
    let body = format!("Internal Server Error: {:?}: {error}\n", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_allow_paths() {
        assert!(path_matches("/healthz", "/healthz"));
        assert!(!path_matches("/healthz", "/healthz/etcd"));
        assert!(path_matches("/healthz/*", "/healthz/etcd"));
        assert!(!path_matches("/healthz", "/healthzz"));
    }

    #[test]
    fn flags_that_do_not_fit_are_all_reported() {
        let options = AuthOptions {
            authorization_modes: vec!["RBAC".into(), "Magic".into(), "RBAC".into(), "Webhook".into()],
            requestheader: RequestHeaderConfig { allowed_names: vec!["front-proxy".into()], ..RequestHeaderConfig::default() },
            ..AuthOptions::default()
        };
        let err = options.build().unwrap_err().0;
        assert_eq!(
            err.lines().collect::<Vec<_>>(),
            [
                "--requestheader-allowed-names needs --requestheader-client-ca-file",
                "--authorization-mode \"Magic\" is not a valid mode; valid modes are AlwaysAllow, AlwaysDeny, RBAC, Webhook",
                "--authorization-mode \"RBAC\" is given more than once",
                "--authorization-mode=Webhook needs --authorization-kubeconfig",
            ]
        );
        let stray = AuthOptions {
            authorization_modes: vec!["AlwaysAllow".into()],
            authorization_policy_file: Some("p.yaml".into()),
            ..AuthOptions::default()
        };
        assert_eq!(stray.build().unwrap_err().0, "--authorization-policy-file is only read with --authorization-mode=RBAC");
    }
}
