//! Shared by the tests that run the real binary over HTTPS: waiting for it to serve, and a TLS
//! client built from the kubeconfig it writes.

use serde_json::Value;
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Waits until the server's log says `Serving on https://ADDRESS` and returns ADDRESS; panics
/// (with the log and `context`) if it exits first or takes over a minute.
pub fn wait_until_serving(child: &mut Child, log: &Path, context: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(at) = text.find("Serving on https://") {
            let rest = &text[at + "Serving on https://".len()..];
            return rest.lines().next().unwrap().trim().to_string();
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited with {status}{context}:\n{text}");
        }
        assert!(Instant::now() < deadline, "the server did not start{context}:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client trusting the CA of `<dir>/kubeconfig` and presenting its client certificate; one
/// that trusts nothing while the kubeconfig is not written yet.
pub fn client_tls(dir: &Path) -> rustls::ClientConfig {
    use base64::Engine;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap();
    let Ok(text) = std::fs::read_to_string(dir.join("kubeconfig")) else {
        return builder.with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth();
    };
    let config: Value = serde_yaml_ng::from_str(&text).unwrap();
    let field = |section: &str, name: &str| -> Vec<u8> {
        let entry = &config[format!("{section}s")][0][section];
        base64::engine::general_purpose::STANDARD.decode(entry[name].as_str().unwrap()).unwrap()
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &field("cluster", "certificate-authority-data")[..]) {
        roots.add(cert.unwrap()).unwrap();
    }
    let chain = rustls_pemfile::certs(&mut &field("user", "client-certificate-data")[..]).map(|c| c.unwrap()).collect();
    let key = rustls_pemfile::private_key(&mut &field("user", "client-key-data")[..]).unwrap().unwrap();
    builder.with_root_certificates(roots).with_client_auth_cert(chain, key).unwrap()
}
