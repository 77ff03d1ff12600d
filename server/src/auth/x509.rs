//! Client certificates: the chain a TLS connection presented (put into every request's
//! extensions by the listener), verified against a CA bundle (`--client-ca-file`,
//! `--requestheader-client-ca-file`), and the user it names: the subject's common name, with
//! its organizations as groups.
//!
//! The TLS layer only asks for certificates and checks them against the union of all trusted
//! CAs; which CA a certificate chains to — and so what it may do — is decided here, as
//! kube-apiserver's x509 authenticators do. A chain's verification by one CA bundle is
//! remembered for the rest of its connection (until the certificate expires), so a keep-alive
//! connection pays for the signature checks once, not on every request.

use super::user::UserInfo;
use super::AuthError;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The longest a successful verification is remembered, even for a certificate valid for longer.
const REMEMBER_VERIFIED: Duration = Duration::from_secs(10 * 60);
/// How long a failed verification is remembered (a certificate not yet valid may become so).
const REMEMBER_REFUSED: Duration = Duration::from_secs(10);

/// The certificate chain a client presented and the TLS handshake verified (end-entity
/// first), as a request extension, with what has been verified of it so far on its connection.
/// Absent when the client sent no certificate.
#[derive(Debug, Clone)]
pub struct PeerCertificates {
    chain: Arc<[CertificateDer<'static>]>,
    verified: Arc<Mutex<Vec<Verified>>>,
}

/// One CA bundle's verdict on a connection's chain.
#[derive(Debug)]
struct Verified {
    /// Which bundle ([`CaPool::id`]).
    pool: usize,
    /// When to verify again: for a success the certificate's expiry, at most
    /// [`REMEMBER_VERIFIED`] away; for a failure [`REMEMBER_REFUSED`].
    until: SystemTime,
    /// The end-entity's subject, or why the chain is refused.
    verdict: Result<Subject, String>,
}

impl PeerCertificates {
    /// A connection's chain, end-entity first.
    pub fn new(chain: Vec<CertificateDer<'static>>) -> Self {
        PeerCertificates { chain: chain.into(), verified: Arc::default() }
    }

    /// The chain, end-entity first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// Whether the chain is empty (the client sent no certificate).
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }

    /// Verifies the chain against `pool` (see [`CaPool::verify`]) and returns the end-entity's
    /// subject. The verdict is remembered for this connection: a success until the certificate
    /// expires (at most ten minutes), a failure for ten seconds.
    pub fn verified_subject(&self, pool: &CaPool) -> Result<Subject, String> {
        let now = SystemTime::now();
        let id = pool.id();
        {
            let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = verified.iter().find(|v| v.pool == id && now < v.until) {
                return v.verdict.clone();
            }
        }
        let leaf = self.chain.first().ok_or("no certificate")?;
        let (verdict, until) = match pool.verify(&self.chain).and_then(|()| subject(leaf)) {
            Ok(subject) => (Ok(subject), not_after(leaf).unwrap_or(now).min(now + REMEMBER_VERIFIED)),
            Err(e) => (Err(e), now + REMEMBER_REFUSED),
        };
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified.retain(|v| v.pool != id);
        verified.push(Verified { pool: id, until, verdict: verdict.clone() });
        verdict
    }
}

/// When a DER certificate stops being valid.
fn not_after(cert: &CertificateDer<'_>) -> Option<SystemTime> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let seconds = u64::try_from(parsed.validity().not_after.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// A bundle of trusted CA certificates and a verifier over them.
#[derive(Clone)]
pub struct CaPool {
    roots: Vec<CertificateDer<'static>>,
    verifier: Arc<dyn ClientCertVerifier>,
    source: String,
}

impl std::fmt::Debug for CaPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaPool").field("source", &self.source).field("roots", &self.roots.len()).finish()
    }
}

impl CaPool {
    /// Reads a PEM bundle of CA certificates. `flag` names the option in errors.
    pub fn from_file(flag: &str, path: &Path) -> Result<CaPool, AuthError> {
        let pem = std::fs::read(path).map_err(|e| AuthError(format!("{flag}: cannot read {}: {e}", path.display())))?;
        CaPool::from_pem(&pem, &format!("{flag} {}", path.display()))
    }

    /// Parses a PEM bundle of CA certificates; `source` names it in errors.
    pub fn from_pem(pem: &[u8], source: &str) -> Result<CaPool, AuthError> {
        let roots = rustls_pemfile::certs(&mut &pem[..])
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AuthError(format!("{source}: invalid PEM: {e}")))?;
        CaPool::from_der(roots, source)
    }

    /// A pool over DER certificates.
    pub fn from_der(roots: Vec<CertificateDer<'static>>, source: &str) -> Result<CaPool, AuthError> {
        if roots.is_empty() {
            return Err(AuthError(format!("{source}: no certificates found")));
        }
        let mut store = rustls::RootCertStore::empty();
        for root in &roots {
            store.add(root.clone()).map_err(|e| AuthError(format!("{source}: unusable CA certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .map_err(|e| AuthError(format!("{source}: {e}")))?;
        Ok(CaPool { roots, verifier, source: source.to_string() })
    }

    /// Identifies this bundle (and its clones) among others, for remembering verifications.
    fn id(&self) -> usize {
        Arc::as_ptr(&self.verifier) as *const () as usize
    }

    /// The CA certificates, for the TLS layer's trust store.
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// Verifies that `chain` (end-entity first, then intermediates) chains to one of the CAs,
    /// is valid now, and may be used for client authentication.
    pub fn verify(&self, chain: &[CertificateDer<'static>]) -> Result<(), String> {
        let (leaf, intermediates) = chain.split_first().ok_or("no certificate")?;
        self.verifier.verify_client_cert(leaf, intermediates, UnixTime::now()).map(|_| ()).map_err(|e| {
            let who = subject(leaf).map(|s| s.common_name).unwrap_or_default();
            format!("verifying certificate CN={who} against {} failed: {e}", self.source)
        })
    }
}

/// The parts of a certificate subject that name a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The common name (the last one, as Go's `pkix.Name` keeps).
    pub common_name: String,
    /// The organizations, in order.
    pub organizations: Vec<String>,
}

/// Reads the subject of a DER certificate.
pub fn subject(cert: &CertificateDer<'_>) -> Result<Subject, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| format!("invalid certificate: {e}"))?;
    let name = parsed.subject();
    let text = |a: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        a.as_str().map(str::to_string).map_err(|e| format!("invalid certificate subject: {e}"))
    };
    let common_name = name.iter_common_name().map(text).collect::<Result<Vec<_>, _>>()?.pop().unwrap_or_default();
    let organizations = name.iter_organization().map(text).collect::<Result<Vec<_>, _>>()?;
    Ok(Subject { common_name, organizations })
}

/// `--client-ca-file`: a certificate from one of these CAs authenticates its common name, in
/// the groups of its organizations.
#[derive(Debug, Clone)]
pub struct X509Authenticator {
    pool: CaPool,
}

impl X509Authenticator {
    /// An authenticator trusting `pool`.
    pub fn new(pool: CaPool) -> Self {
        X509Authenticator { pool }
    }

    /// The trusted CAs.
    pub fn pool(&self) -> &CaPool {
        &self.pool
    }

    /// `Ok(None)` without a certificate or with an empty common name; an error when the
    /// certificate does not chain to the pool.
    pub fn authenticate(&self, peer: Option<&PeerCertificates>) -> Result<Option<UserInfo>, String> {
        let Some(peer) = peer.filter(|p| !p.is_empty()) else { return Ok(None) };
        let subject = peer.verified_subject(&self.pool)?;
        if subject.common_name.is_empty() {
            return Ok(None);
        }
        Ok(Some(UserInfo::new(subject.common_name, subject.organizations)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

    fn ca(name: &str) -> (String, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        (params.self_signed(&key).unwrap().pem(), key)
    }

    fn leaf(ca: &(String, KeyPair), cn: &str, orgs: &[&str], usage: ExtendedKeyUsagePurpose) -> CertificateDer<'static> {
        let issuer = Issuer::from_ca_cert_pem(&ca.0, &ca.1).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        for o in orgs {
            params.distinguished_name.push(DnType::OrganizationName, *o);
        }
        params.extended_key_usages = vec![usage];
        params.signed_by(&key, &issuer).unwrap().der().clone()
    }

    fn peer(cert: CertificateDer<'static>) -> PeerCertificates {
        PeerCertificates::new(vec![cert])
    }

    #[test]
    fn common_name_and_organizations_name_the_user() {
        let trusted = ca("trusted");
        let auth = X509Authenticator::new(CaPool::from_pem(trusted.0.as_bytes(), "test").unwrap());
        // (rcgen writes one attribute per type, so one organization here; `subject` reads all.)
        let cert = leaf(&trusted, "alice", &["dev"], ExtendedKeyUsagePurpose::ClientAuth);
        let user = auth.authenticate(Some(&peer(cert))).unwrap().unwrap();
        assert_eq!((user.name.as_str(), user.groups.as_slice()), ("alice", &["dev".to_string()][..]));
        assert_eq!(auth.authenticate(None).unwrap(), None);
    }

    #[test]
    fn other_cas_server_certificates_and_empty_names_do_not_authenticate() {
        let trusted = ca("trusted");
        let other = ca("other");
        let auth = X509Authenticator::new(CaPool::from_pem(trusted.0.as_bytes(), "test").unwrap());
        assert!(auth.authenticate(Some(&peer(leaf(&other, "mallory", &["system:masters"], ExtendedKeyUsagePurpose::ClientAuth)))).is_err());
        assert!(auth.authenticate(Some(&peer(leaf(&trusted, "server", &[], ExtendedKeyUsagePurpose::ServerAuth)))).is_err());
        assert_eq!(auth.authenticate(Some(&peer(leaf(&trusted, "", &["g"], ExtendedKeyUsagePurpose::ClientAuth)))).unwrap(), None);
    }

    #[test]
    fn a_connection_remembers_each_bundles_verdict() {
        let trusted = ca("trusted");
        let other = ca("other");
        let trusting = CaPool::from_pem(trusted.0.as_bytes(), "trusted").unwrap();
        let refusing = CaPool::from_pem(other.0.as_bytes(), "other").unwrap();
        let connection = peer(leaf(&trusted, "alice", &["dev"], ExtendedKeyUsagePurpose::ClientAuth));
        for _ in 0..2 {
            assert_eq!(connection.verified_subject(&trusting).unwrap().common_name, "alice");
            assert!(connection.verified_subject(&refusing).unwrap_err().contains("against other failed"));
            // A clone of a bundle is the same bundle; the clone of a connection shares its memory.
            assert_eq!(connection.clone().verified_subject(&trusting.clone()).unwrap().organizations, vec!["dev".to_string()]);
        }
        assert_eq!(connection.verified.lock().unwrap().len(), 2);
    }

    #[test]
    fn empty_bundles_are_rejected() {
        assert_eq!(CaPool::from_pem(b"", "--client-ca-file x").unwrap_err().0, "--client-ca-file x: no certificates found");
    }
}
