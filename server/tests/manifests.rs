//! `apiserver manifests`: the deploy manifests for one installation are valid Kubernetes
//! objects (checked with the `kubernetes-validate` Python package against Kubernetes 1.32's
//! schemas, installed with pip when missing), and the APIServices trust exactly the CA of the
//! serving certificate the Deployment mounts, for the Service's DNS name.

use base64::Engine as _;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const KUBERNETES_VERSION: &str = "1.32";

/// The `kubernetes-validate` command, installed with pip when missing; `None` (the test is
/// skipped, saying why) only when there is no pip to install it with.
fn kubernetes_validate() -> Option<PathBuf> {
    let found = || Command::new("kubernetes-validate").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found() {
        let pip = Command::new("python3").args(["-m", "pip", "--version"]).output();
        if !pip.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("SKIPPED: kubernetes-validate is not installed and there is no pip (python3 -m pip) to install it with");
            return None;
        }
        let install = Command::new("python3").args(["-m", "pip", "install", "--quiet", "kubernetes-validate"]).output().expect("run pip");
        assert!(install.status.success(), "pip install kubernetes-validate failed:\n{}", String::from_utf8_lossy(&install.stderr));
        assert!(found(), "pip installed kubernetes-validate, but the command is not on PATH");
    }
    Some(PathBuf::from("kubernetes-validate"))
}

fn validate(files: &[PathBuf]) {
    let Some(validator) = kubernetes_validate() else { return };
    let output =
        Command::new(validator).args(["--strict", "-k", KUBERNETES_VERSION]).args(files).output().expect("run kubernetes-validate");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "kubernetes-validate rejected the manifests:\n{text}");
    // Every object was checked (the tool says `passed` once per object).
    let objects: usize = files.iter().map(|f| documents(&std::fs::read_to_string(f).unwrap()).len()).sum();
    assert_eq!(text.matches(" passed ").count(), objects, "{text}");
}

fn documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(text).map(|d| Value::deserialize(d).unwrap()).filter(|v| !v.is_null()).collect()
}

fn manifests(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_apiserver")).arg("manifests").args(args).output().expect("run apiserver manifests")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn the_manifests_are_valid_and_the_apiservices_trust_the_serving_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (certs, out) = (dir.path().join("certs"), dir.path().join("out"));
    let args = ["--namespace", "ext", "--name", "foo-api", "--image", "registry.example/foo-api:1.0", "--cert-dir"];
    let output = manifests(&[&args[..], &[certs.to_str().unwrap(), "--output-dir", out.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let files = files_in(&out);
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        ["00-namespace.yaml", "01-rbac.yaml", "02-secret.yaml", "03-deployment.yaml", "04-service.yaml", "05-apiservices.yaml"]
    );

    // Valid against Kubernetes' schemas, and so is the committed copy.
    let committed = files_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated/deploy"));
    validate(&[files.clone(), committed].concat());

    let objects: Vec<Value> = files.iter().flat_map(|f| documents(&std::fs::read_to_string(f).unwrap())).collect();
    let find = |kind: &'static str| objects.iter().filter(move |o| o["kind"] == kind);
    let decode = |v: &Value| base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();

    // The Deployment runs the image in aggregated mode with the Secret's certificate.
    let deployment = find("Deployment").next().unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "foo-api");
    assert_eq!(pod["containers"][0]["image"], "registry.example/foo-api:1.0");
    let container_args: Vec<&str> = pod["containers"][0]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(container_args.contains(&"--aggregated"), "{container_args:?}");
    assert!(container_args.contains(&"--tls-cert-file=/etc/apiserver/serving/tls.crt"));
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "foo-api-serving");

    // Every APIService: the Service, a real caBundle, never insecureSkipTLSVerify.
    let secret = find("Secret").next().unwrap();
    let ca = decode(&secret["data"]["ca.crt"]);
    let apiservices: Vec<&Value> = find("APIService").collect();
    assert_eq!(apiservices.len(), generated::ENDPOINTS.iter().map(|e| e.api_version()).collect::<std::collections::BTreeSet<_>>().len());
    for apiservice in &apiservices {
        let spec = &apiservice["spec"];
        assert_eq!(spec["service"], serde_json::json!({"name": "foo-api", "namespace": "ext", "port": 443}));
        assert!(spec["insecureSkipTLSVerify"].is_null());
        assert_eq!(decode(&spec["caBundle"]), ca, "caBundle is the Secret's CA");
        assert_eq!(spec["groupPriorityMinimum"], 1000);
        assert!(spec["versionPriority"].as_u64().unwrap() > 0);
    }

    // The serving certificate verifies against that CA for foo-api.ext.svc, the name
    // kube-apiserver checks when it proxies to the Service.
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &ca[..]) {
        roots.add(cert.unwrap()).unwrap();
    }
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(std::sync::Arc::new(roots), provider).build().unwrap();
    let chain: Vec<CertificateDer> = rustls_pemfile::certs(&mut &decode(&secret["data"]["tls.crt"])[..]).map(|c| c.unwrap()).collect();
    for host in ["foo-api.ext.svc", "foo-api.ext.svc.cluster.local"] {
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &ServerName::try_from(host).unwrap(), &[], UnixTime::now())
            .unwrap_or_else(|e| panic!("the serving certificate does not verify for {host}: {e}"));
    }
    assert!(verifier
        .verify_server_cert(&chain[0], &chain[1..], &ServerName::try_from("other.ext.svc").unwrap(), &[], UnixTime::now())
        .is_err());
    let key = decode(&secret["data"]["tls.key"]);
    assert!(rustls_pemfile::private_key(&mut &key[..]).unwrap().is_some());

    // Run again: the same certificates, so applying again changes nothing; printed as one stream.
    let again = manifests(&[&args[..], &[certs.to_str().unwrap()]].concat());
    assert!(again.status.success());
    let stream = String::from_utf8(again.stdout).unwrap();
    let streamed = documents(&stream);
    assert_eq!(streamed, objects);
}

#[test]
fn bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = manifests(&["--namespace", "Not_A_Label", "--cert-dir", dir.path().to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("namespace \"Not_A_Label\" must be a DNS label"), "{stderr}");
}
