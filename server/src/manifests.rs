//! `apiserver manifests`: the deploy manifests of this API (rendered by codegen from the model
//! the server was built with) for one installation, with the TLS material only an installation
//! has: a CA and a serving certificate for the Service, created in a certificate directory and
//! reused after, put in the serving Secret and, as `caBundle`, in every APIService.

pub use codegen::generate::deploy::{DeploySettings, DeployTls, Manifest};
use std::path::Path;

/// The manifests for `settings` (its `tls` ignored) with the certificates of `cert_dir`.
pub fn render(settings: &DeploySettings, cert_dir: &Path) -> Result<Vec<Manifest>, String> {
    let certs = crate::tls::service_certificates(cert_dir, &settings.service_hosts()).map_err(|e| e.to_string())?;
    let ca_pem = certs.ca_pem.ok_or("the certificate directory has no CA")?;
    let tls = DeployTls { ca_pem, cert_pem: certs.cert_pem, key_pem: certs.key_pem };
    codegen::generate::deploy::render(generated::model(), &DeploySettings { tls: Some(tls), ..settings.clone() })
}

/// The manifests as one YAML stream, in order (for `kubectl apply -f -`).
pub fn stream(manifests: &[Manifest]) -> String {
    manifests.iter().map(|m| m.text.as_str()).collect::<Vec<_>>().join("---\n")
}

/// Writes each manifest into `dir` as `NN-<file>` (numbered in apply order).
pub fn write(manifests: &[Manifest], dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (i, manifest) in manifests.iter().enumerate() {
        let path = dir.join(format!("{i:02}-{}", manifest.file));
        std::fs::write(&path, &manifest.text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
