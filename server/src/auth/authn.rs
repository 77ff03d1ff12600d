//! Authentication: the authenticators in kube-apiserver's order — front-proxy request headers,
//! client certificate, bearer token (token file, then TokenReview) — tried until one knows the
//! user. As in kube's union authenticator, an authenticator that fails with an error does not
//! stop the others, but if none succeeds the errors make the request a 401, even when
//! anonymous requests are allowed: a bad token is never treated as no token.

use super::requestheader::RequestHeaderAuthenticator;
use super::token::TokenFile;
use super::user::UserInfo;
use super::webhook::TokenReviewAuthenticator;
use super::x509::{PeerCertificates, X509Authenticator};
use http::{header, HeaderMap};

/// The authenticators of a server.
#[derive(Debug, Default)]
pub struct Authenticator {
    /// `--requestheader-client-ca-file` and friends.
    pub request_header: Option<RequestHeaderAuthenticator>,
    /// `--client-ca-file`.
    pub x509: Option<X509Authenticator>,
    /// `--token-auth-file`.
    pub token_file: Option<TokenFile>,
    /// `--authentication-kubeconfig`.
    pub token_review: Option<TokenReviewAuthenticator>,
    /// `--anonymous-auth`.
    pub anonymous: bool,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No authenticator recognised any credentials, and anonymous requests are off.
    NoCredentials,
    /// Credentials were presented and rejected (the reasons are for the log, never the client).
    Rejected(Vec<String>),
}

impl Authenticator {
    /// Whether any bearer token authenticator is configured. Without one, an `Authorization`
    /// header is not looked at, as in kube-apiserver.
    fn reads_tokens(&self) -> bool {
        self.token_file.is_some() || self.token_review.is_some()
    }

    /// Finds the user behind a request. On success the credentials the request carried for
    /// this server (the bearer token, the front-proxy headers) are removed from `headers`, so
    /// that nothing after authentication can read or forward them; the front-proxy headers are
    /// removed in every case.
    pub async fn authenticate(&self, headers: &mut HeaderMap, peer: Option<&PeerCertificates>) -> Result<UserInfo, Failure> {
        let result = self.authenticate_inner(headers, peer).await;
        if let Some(rh) = &self.request_header {
            rh.clear_headers(headers);
        }
        result
    }

    async fn authenticate_inner(&self, headers: &mut HeaderMap, peer: Option<&PeerCertificates>) -> Result<UserInfo, Failure> {
        let mut errors = Vec::new();
        if let Some(rh) = &self.request_header {
            match rh.authenticate(headers, peer) {
                Ok(Some(user)) => return Ok(user.with_authenticated_group()),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        if let Some(x509) = &self.x509 {
            match x509.authenticate(peer) {
                Ok(Some(user)) => return Ok(user.with_authenticated_group()),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        if self.reads_tokens() {
            if let Some(token) = bearer_token(headers) {
                match self.authenticate_token(&token).await {
                    Ok(Some(user)) => {
                        headers.remove(header::AUTHORIZATION);
                        return Ok(user.with_authenticated_group());
                    }
                    Ok(None) => errors.push("invalid bearer token".to_string()),
                    Err(e) => errors.push(e),
                }
            }
        }
        if !errors.is_empty() {
            return Err(Failure::Rejected(errors));
        }
        if self.anonymous {
            return Ok(UserInfo::anonymous());
        }
        Err(Failure::NoCredentials)
    }

    /// The token authenticators, in order: the file, then TokenReview.
    async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, String> {
        if let Some(user) = self.token_file.as_ref().and_then(|f| f.authenticate(token)) {
            return Ok(Some(user));
        }
        match &self.token_review {
            Some(review) => review.authenticate(token).await,
            None => Ok(None),
        }
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive); none for other
/// schemes and empty tokens.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn bearer_tokens_are_read_as_kube_reads_them() {
        assert_eq!(bearer_token(&with_auth("Bearer abc")), Some("abc".into()));
        assert_eq!(bearer_token(&with_auth("bearer abc")), Some("abc".into()));
        assert_eq!(bearer_token(&with_auth("  Bearer abc  ")), Some("abc".into()));
        assert_eq!(bearer_token(&with_auth("Bearer abc def")), Some("abc".into()));
        assert_eq!(bearer_token(&with_auth("Bearer  abc")), None);
        assert_eq!(bearer_token(&with_auth("Bearer")), None);
        assert_eq!(bearer_token(&with_auth("Basic YWxpY2U6cHc=")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn bad_tokens_are_not_anonymous() {
        let authn = Authenticator {
            token_file: Some(TokenFile::parse("good,alice,1,dev", "t").unwrap()),
            anonymous: true,
            ..Authenticator::default()
        };
        let user = authn.authenticate(&mut with_auth("Bearer good"), None).await.unwrap();
        assert_eq!((user.name.as_str(), user.groups.as_slice()), ("alice", &["dev".to_string(), "system:authenticated".to_string()][..]));
        assert_eq!(
            authn.authenticate(&mut with_auth("Bearer bad"), None).await,
            Err(Failure::Rejected(vec!["invalid bearer token".into()]))
        );
        assert_eq!(authn.authenticate(&mut HeaderMap::new(), None).await.unwrap(), UserInfo::anonymous());
        let closed = Authenticator { anonymous: false, ..Authenticator::default() };
        assert_eq!(closed.authenticate(&mut with_auth("Bearer whatever"), None).await, Err(Failure::NoCredentials));
    }

    #[tokio::test]
    async fn accepted_tokens_are_removed_from_the_request() {
        let authn = Authenticator { token_file: Some(TokenFile::parse("good,alice,1", "t").unwrap()), ..Authenticator::default() };
        let mut headers = with_auth("Bearer good");
        authn.authenticate(&mut headers, None).await.unwrap();
        assert!(headers.get(header::AUTHORIZATION).is_none());
    }
}
