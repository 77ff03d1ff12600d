//! Front-proxy authentication (`--requestheader-*`): a proxy — kube-apiserver's aggregator —
//! that has already authenticated the user passes the identity in headers (`X-Remote-User`,
//! `X-Remote-Group`, `X-Remote-Extra-<key>`). The headers are believed only on a connection
//! whose client certificate chains to `--requestheader-client-ca-file` and, when
//! `--requestheader-allowed-names` is set, has one of those common names. Anywhere else they
//! are ignored — and removed before the request goes further, so nothing downstream can
//! mistake them for an identity.

use super::user::UserInfo;
use super::x509::{CaPool, PeerCertificates};
use http::HeaderMap;
use std::collections::BTreeMap;

/// Which headers carry the identity, and who may send them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeaderConfig {
    /// Headers holding the user name; the first non-empty one wins.
    pub username_headers: Vec<String>,
    /// Headers holding the user's uid; the first non-empty one wins.
    pub uid_headers: Vec<String>,
    /// Headers holding groups; every value of every one is a group.
    pub group_headers: Vec<String>,
    /// Prefixes of headers holding extra attributes; the rest of the name, lower-cased and
    /// percent-decoded, is the key.
    pub extra_headers_prefixes: Vec<String>,
    /// Common names allowed to act as the proxy; empty allows any certificate of the CA.
    pub allowed_names: Vec<String>,
}

impl Default for RequestHeaderConfig {
    /// The headers the aggregator sends (the values kube-apiserver is usually started with).
    fn default() -> Self {
        RequestHeaderConfig {
            username_headers: vec!["X-Remote-User".into()],
            uid_headers: Vec::new(),
            group_headers: vec!["X-Remote-Group".into()],
            extra_headers_prefixes: vec!["X-Remote-Extra-".into()],
            allowed_names: Vec::new(),
        }
    }
}

/// The front-proxy authenticator.
#[derive(Debug, Clone)]
pub struct RequestHeaderAuthenticator {
    pool: CaPool,
    username_headers: Vec<String>,
    uid_headers: Vec<String>,
    group_headers: Vec<String>,
    extra_prefixes: Vec<String>,
    allowed_names: Vec<String>,
}

impl RequestHeaderAuthenticator {
    /// Trusts proxies with certificates from `pool`.
    pub fn new(pool: CaPool, config: RequestHeaderConfig) -> Self {
        let lower = |v: Vec<String>| v.into_iter().map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect();
        RequestHeaderAuthenticator {
            pool,
            username_headers: lower(config.username_headers),
            uid_headers: lower(config.uid_headers),
            group_headers: lower(config.group_headers),
            extra_prefixes: lower(config.extra_headers_prefixes),
            allowed_names: config.allowed_names,
        }
    }

    /// The proxies' CAs.
    pub fn pool(&self) -> &CaPool {
        &self.pool
    }

    /// Whether any proxy name is restricted.
    pub fn has_allowed_names(&self) -> bool {
        !self.allowed_names.is_empty()
    }

    /// `Ok(None)` without a client certificate or without a user name header; an error when
    /// the certificate is not a proxy's.
    pub fn authenticate(&self, headers: &HeaderMap, peer: Option<&PeerCertificates>) -> Result<Option<UserInfo>, String> {
        let Some(peer) = peer.filter(|p| !p.is_empty()) else { return Ok(None) };
        let subject = peer.verified_subject(&self.pool)?;
        if !self.allowed_names.is_empty() {
            let cn = subject.common_name;
            if !self.allowed_names.contains(&cn) {
                return Err(format!("x509: subject with cn={cn} is not in the allowed list"));
            }
        }
        let first = |names: &[String]| {
            names.iter().find_map(|n| {
                headers.get_all(n.as_str()).iter().filter_map(|v| v.to_str().ok()).find(|v| !v.is_empty()).map(str::to_string)
            })
        };
        let Some(name) = first(&self.username_headers) else { return Ok(None) };
        let uid = first(&self.uid_headers).unwrap_or_default();
        let groups = self
            .group_headers
            .iter()
            .flat_map(|n| headers.get_all(n.as_str()).iter())
            .filter_map(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect();
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (header, value) in headers {
            let Some(prefix) = self.extra_prefixes.iter().find(|p| header.as_str().starts_with(p.as_str())) else { continue };
            let key = unescape_extra_key(&header.as_str()[prefix.len()..]);
            if let Ok(value) = value.to_str() {
                extra.entry(key).or_default().push(value.to_string());
            }
        }
        Ok(Some(UserInfo { name, uid, groups, extra }))
    }

    /// Removes every identity header, whoever sent it.
    pub fn clear_headers(&self, headers: &mut HeaderMap) {
        for name in self.username_headers.iter().chain(&self.uid_headers).chain(&self.group_headers) {
            headers.remove(name.as_str());
        }
        if self.extra_prefixes.is_empty() {
            return;
        }
        let extra: Vec<_> =
            headers.keys().filter(|h| self.extra_prefixes.iter().any(|p| h.as_str().starts_with(p.as_str()))).cloned().collect();
        for name in extra {
            headers.remove(name);
        }
    }
}

/// Extra keys are percent-encoded by the proxy (kube 1.11+); one that does not decode is kept
/// as sent.
fn unescape_extra_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => return key.to_string(),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
    use rustls::pki_types::CertificateDer;

    fn ca() -> (String, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "front-proxy-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        (params.self_signed(&key).unwrap().pem(), key)
    }

    fn client(ca: &(String, KeyPair), cn: &str) -> PeerCertificates {
        let issuer = Issuer::from_ca_cert_pem(&ca.0, &ca.1).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let der: CertificateDer<'static> = params.signed_by(&key, &issuer).unwrap().der().clone();
        PeerCertificates::new(vec![der])
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        map
    }

    #[test]
    fn trusted_proxies_pass_the_identity() {
        let proxy_ca = ca();
        let config = RequestHeaderConfig {
            uid_headers: vec!["X-Remote-Uid".into()],
            allowed_names: vec!["front-proxy-client".into()],
            ..RequestHeaderConfig::default()
        };
        let auth = RequestHeaderAuthenticator::new(CaPool::from_pem(proxy_ca.0.as_bytes(), "test").unwrap(), config);
        let request = headers(&[
            ("x-remote-user", "alice"),
            ("X-Remote-Uid", "u-1"),
            ("x-remote-group", "dev"),
            ("x-remote-group", "system:authenticated"),
            ("x-remote-extra-scopes", "a"),
            ("x-remote-extra-scopes", "b"),
            ("x-remote-extra-example.com%2fkey", "v"),
            ("x-remote-extra-bad%zz", "w"),
        ]);
        let user = auth.authenticate(&request, Some(&client(&proxy_ca, "front-proxy-client"))).unwrap().unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.uid, "u-1");
        assert_eq!(user.groups, ["dev", "system:authenticated"]);
        assert_eq!(user.extra["scopes"], ["a", "b"]);
        assert_eq!(user.extra["example.com/key"], ["v"]);
        assert_eq!(user.extra["bad%zz"], ["w"]);
        // No user header: nothing to say.
        assert_eq!(
            auth.authenticate(&headers(&[("x-remote-group", "dev")]), Some(&client(&proxy_ca, "front-proxy-client"))).unwrap(),
            None
        );
        // Clearing removes every identity header.
        let mut cleared = request.clone();
        auth.clear_headers(&mut cleared);
        assert!(cleared.is_empty(), "{cleared:?}");
    }

    #[test]
    fn headers_are_ignored_without_a_proxy_certificate() {
        let proxy_ca = ca();
        let other_ca = ca();
        let config = RequestHeaderConfig { allowed_names: vec!["front-proxy-client".into()], ..RequestHeaderConfig::default() };
        let auth = RequestHeaderAuthenticator::new(CaPool::from_pem(proxy_ca.0.as_bytes(), "test").unwrap(), config);
        let forged = headers(&[("x-remote-user", "admin"), ("x-remote-group", "system:masters")]);
        assert_eq!(auth.authenticate(&forged, None).unwrap(), None);
        assert!(auth.authenticate(&forged, Some(&client(&other_ca, "front-proxy-client"))).is_err());
        assert_eq!(
            auth.authenticate(&forged, Some(&client(&proxy_ca, "someone-else"))).unwrap_err(),
            "x509: subject with cn=someone-else is not in the allowed list"
        );
    }
}
