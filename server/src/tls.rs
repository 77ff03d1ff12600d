//! TLS for the API: a self-signed CA and a serving certificate kept in `--cert-dir` (created on
//! first start, reused after), or the files given by `--tls-cert-file`/`--tls-private-key-file`;
//! and the kubeconfig written for the local user.

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File names inside the certificate directory.
const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVING_CERT: &str = "apiserver.crt";
const SERVING_KEY: &str = "apiserver.key";

/// The PEM material the server needs.
#[derive(Debug, Clone)]
pub struct ServingCertificates {
    /// Serving certificate chain (PEM).
    pub cert_pem: String,
    /// Serving private key (PEM).
    pub key_pem: String,
    /// The CA that clients should trust (PEM), when we made it.
    pub ca_pem: Option<String>,
}

/// Errors setting up TLS, with the file involved.
#[derive(Debug)]
pub struct TlsError(pub String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|e| TlsError(format!("cannot read {}: {e}", path.display())))
}

fn write_private(path: &Path, contents: &str) -> Result<(), TlsError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(|e| TlsError(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(contents.as_bytes()).map_err(|e| TlsError(format!("cannot write {}: {e}", path.display())))
}

/// Loads the given certificate files.
pub fn load(cert_file: &Path, key_file: &Path) -> Result<ServingCertificates, TlsError> {
    Ok(ServingCertificates { cert_pem: read(cert_file)?, key_pem: read(key_file)?, ca_pem: None })
}

/// Loads the self-signed CA and serving certificate from `dir`, creating what is missing.
pub fn self_signed(dir: &Path, hosts: &[String]) -> Result<ServingCertificates, TlsError> {
    std::fs::create_dir_all(dir).map_err(|e| TlsError(format!("cannot create {}: {e}", dir.display())))?;
    let err = |what: &str, e: rcgen::Error| TlsError(format!("{what}: {e}"));
    let (ca_cert_path, ca_key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let (ca_pem, ca_key) = if ca_cert_path.exists() && ca_key_path.exists() {
        let key = KeyPair::from_pem(&read(&ca_key_path)?).map_err(|e| err(&format!("invalid key {}", ca_key_path.display()), e))?;
        (read(&ca_cert_path)?, key)
    } else {
        let key = KeyPair::generate().map_err(|e| err("generating the CA key", e))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| err("CA parameters", e))?;
        params.distinguished_name.push(DnType::CommonName, "specapi-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let cert = params.self_signed(&key).map_err(|e| err("signing the CA", e))?;
        std::fs::write(&ca_cert_path, cert.pem()).map_err(|e| TlsError(format!("cannot write {}: {e}", ca_cert_path.display())))?;
        write_private(&ca_key_path, &key.serialize_pem())?;
        (cert.pem(), key)
    };
    let (cert_path, key_path) = (dir.join(SERVING_CERT), dir.join(SERVING_KEY));
    if cert_path.exists() && key_path.exists() {
        return Ok(ServingCertificates {
            cert_pem: format!("{}{}", read(&cert_path)?, ca_pem),
            key_pem: read(&key_path)?,
            ca_pem: Some(ca_pem),
        });
    }
    let issuer =
        Issuer::from_ca_cert_pem(&ca_pem, &ca_key).map_err(|e| err(&format!("invalid CA certificate {}", ca_cert_path.display()), e))?;
    let key = KeyPair::generate().map_err(|e| err("generating the serving key", e))?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| err("serving parameters", e))?;
    params.distinguished_name.push(DnType::CommonName, "specapi-apiserver");
    for host in hosts {
        params.subject_alt_names.push(match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.clone().try_into().map_err(|e| err(&format!("invalid host name {host:?}"), e))?),
        });
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params.signed_by(&key, &issuer).map_err(|e| err("signing the serving certificate", e))?;
    std::fs::write(&cert_path, cert.pem()).map_err(|e| TlsError(format!("cannot write {}: {e}", cert_path.display())))?;
    write_private(&key_path, &key.serialize_pem())?;
    Ok(ServingCertificates { cert_pem: format!("{}{}", cert.pem(), ca_pem), key_pem: key.serialize_pem(), ca_pem: Some(ca_pem) })
}

/// Issues a client certificate for `user` in `groups` from the CA in `dir` (as created by
/// [`self_signed`]). Returns (certificate PEM, key PEM).
pub fn client_certificate(dir: &Path, user: &str, groups: &[&str]) -> Result<(String, String), TlsError> {
    let err = |what: &str, e: rcgen::Error| TlsError(format!("{what}: {e}"));
    let ca_key_path = dir.join(CA_KEY);
    let ca_key = KeyPair::from_pem(&read(&ca_key_path)?).map_err(|e| err(&format!("invalid key {}", ca_key_path.display()), e))?;
    let ca_pem = read(&dir.join(CA_CERT))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key).map_err(|e| err("invalid CA certificate", e))?;
    let key = KeyPair::generate().map_err(|e| err("generating the client key", e))?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| err("client parameters", e))?;
    params.distinguished_name.push(DnType::CommonName, user);
    for group in groups {
        params.distinguished_name.push(DnType::OrganizationName, *group);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params.signed_by(&key, &issuer).map_err(|e| err("signing the client certificate", e))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The CA certificate in a certificate directory made by [`self_signed`]: the server's own
/// CA, which signs the local admin's client certificate.
pub fn ca_cert_path(dir: &Path) -> PathBuf {
    dir.join(CA_CERT)
}

/// A rustls server configuration offering HTTP/2 and HTTP/1.1, without client certificates.
pub fn server_config(certs: &ServingCertificates) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    server_config_with_client_cas(certs, &[])
}

/// Like [`server_config`], and asks clients for a certificate from one of `client_cas`
/// (the `--client-ca-file` and `--requestheader-client-ca-file` CAs). A certificate is not
/// required — bearer tokens and anonymous requests need none — but one that is presented must
/// chain to those CAs, or the handshake fails. Which CA it chains to, and so what it
/// authenticates, is decided per request by [`crate::auth`], which reads the chain from the
/// request's [`crate::auth::PeerCertificates`] extension.
pub fn server_config_with_client_cas(
    certs: &ServingCertificates,
    client_cas: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = rustls_pemfile::certs(&mut certs.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("invalid certificate PEM: {e}")))?;
    let key = rustls_pemfile::private_key(&mut certs.key_pem.as_bytes())
        .map_err(|e| TlsError(format!("invalid private key PEM: {e}")))?
        .ok_or_else(|| TlsError("no private key found in the key file".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = if client_cas.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for ca in client_cas {
            roots.add(ca.clone()).map_err(|e| TlsError(format!("unusable client CA certificate: {e}")))?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError(format!("client certificate verifier: {e}")))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| TlsError(format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Writes a kubeconfig for `server` (an `https://` URL), atomically. It trusts `ca_pem` (or
/// skips verification when the serving certificate came from elsewhere) and authenticates with
/// the client certificate `client` = (cert PEM, key PEM).
pub fn write_kubeconfig(path: &PathBuf, server: &str, ca_pem: Option<&str>, client: (&str, &str)) -> Result<(), TlsError> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let cluster = match ca_pem {
        Some(ca) => format!("    certificate-authority-data: {}\n", b64(ca)),
        None => "    insecure-skip-tls-verify: true\n".to_string(),
    };
    let (cert, key) = (b64(client.0), b64(client.1));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n{cluster}    server: {server}\n  name: specapi\ncontexts:\n- context:\n    cluster: specapi\n    namespace: default\n    user: admin\n  name: specapi\ncurrent-context: specapi\nusers:\n- name: admin\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n"
    );
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| TlsError(format!("cannot create {}: {e}", parent.display())))?;
    }
    let tmp = path.with_extension("tmp");
    write_private(&tmp, &text)?;
    std::fs::rename(&tmp, path).map_err(|e| TlsError(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reuses_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let first = self_signed(dir.path(), &hosts).unwrap();
        let second = self_signed(dir.path(), &hosts).unwrap();
        assert_eq!(first.cert_pem, second.cert_pem);
        assert_eq!(first.ca_pem, second.ca_pem);
        assert!(server_config(&first).is_ok());
        // A lost serving certificate is re-issued by the same CA.
        std::fs::remove_file(dir.path().join(SERVING_CERT)).unwrap();
        let third = self_signed(dir.path(), &hosts).unwrap();
        assert_eq!(third.ca_pem, first.ca_pem);
        assert_ne!(third.cert_pem, first.cert_pem);
    }
}
