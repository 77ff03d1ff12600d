//! Deploy manifests for running the API as an extension API server behind kube-apiserver's
//! aggregator: Namespace, ServiceAccount and RBAC, the serving Secret, Deployment, Service, and
//! one APIService per served group-version. They are YAML, so they come from tera templates
//! (`deploy/*.tera`) filled from the [`Model`] and the installation's [`DeploySettings`].
//!
//! `generated/deploy/` holds the output for the default settings without TLS material
//! (checked by `generated/tests/deploy.rs`); `apiserver manifests` renders the full set.
//!
//! ```
//! use codegen::generate::deploy::{render, DeploySettings};
//! let model: apimodel::Model = serde_json::from_str(r#"{"resources":[]}"#).unwrap();
//! let manifests = render(&model, &DeploySettings::default()).unwrap();
//! assert!(manifests.iter().any(|m| m.file == "deployment.yaml"));
//! ```

use apimodel::Model;
use base64::Engine as _;
use serde::Serialize;
use std::collections::HashMap;

/// The group priority of every APIService: the value kube-apiserver gives the groups of
/// CustomResourceDefinitions, below every built-in group.
pub const GROUP_PRIORITY_MINIMUM: u32 = 1000;
/// The port the server listens on in its pod.
pub const CONTAINER_PORT: u16 = 6443;

/// What differs between installations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploySettings {
    /// The namespace everything runs in.
    pub namespace: String,
    /// The name of the ServiceAccount, Deployment, Service and Secret (and prefix of the rest).
    pub name: String,
    /// The container image of the server.
    pub image: String,
    /// The serving certificate: with it, the Secret is written and every APIService carries
    /// its CA as `caBundle`; without it, neither (the committed copy).
    pub tls: Option<DeployTls>,
}

impl Default for DeploySettings {
    fn default() -> Self {
        DeploySettings {
            namespace: "specapi-system".into(),
            name: "specapi-apiserver".into(),
            image: "localhost/specapi-apiserver:latest".into(),
            tls: None,
        }
    }
}

impl DeploySettings {
    /// The DNS name kube-apiserver verifies the serving certificate against:
    /// `<service>.<namespace>.svc`.
    pub fn service_host(&self) -> String {
        format!("{}.{}.svc", self.name, self.namespace)
    }

    /// Every name the serving certificate should carry.
    pub fn service_hosts(&self) -> Vec<String> {
        let (name, ns) = (&self.name, &self.namespace);
        vec![format!("{name}.{ns}.svc"), format!("{name}.{ns}.svc.cluster.local"), format!("{name}.{ns}"), name.clone()]
    }
}

/// PEM of a CA and of the serving certificate it signed, with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployTls {
    /// The CA certificate (PEM): the APIServices' `caBundle`.
    pub ca_pem: String,
    /// The serving certificate (PEM).
    pub cert_pem: String,
    /// The serving certificate's private key (PEM).
    pub key_pem: String,
}

/// One manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// File name, e.g. `deployment.yaml`; sorting by it does not matter, [`render`]'s order is
    /// the order to apply them in.
    pub file: String,
    /// The YAML text (one or more documents).
    pub text: String,
}

/// The templates, in the order their output is applied.
const TEMPLATES: [(&str, &str); 6] = [
    ("namespace.yaml", include_str!("deploy/namespace.yaml.tera")),
    ("rbac.yaml", include_str!("deploy/rbac.yaml.tera")),
    ("secret.yaml", include_str!("deploy/secret.yaml.tera")),
    ("deployment.yaml", include_str!("deploy/deployment.yaml.tera")),
    ("service.yaml", include_str!("deploy/service.yaml.tera")),
    ("apiservices.yaml", include_str!("deploy/apiservices.yaml.tera")),
];

#[derive(Serialize)]
struct Rule {
    group: String,
    resources: Vec<String>,
}

#[derive(Serialize)]
struct ApiServiceContext {
    group: String,
    version: String,
    group_priority_minimum: u32,
    version_priority: u32,
}

#[derive(Serialize)]
struct TlsContext {
    ca_b64: String,
    cert_b64: String,
    key_b64: String,
}

/// The manifests for `model` with `settings`, in the order to apply them. Fails only on
/// settings that cannot be names (the model is valid by construction).
pub fn render(model: &Model, settings: &DeploySettings) -> Result<Vec<Manifest>, String> {
    for (what, value) in [("namespace", &settings.namespace), ("name", &settings.name)] {
        if !is_dns_label(value) {
            return Err(format!("{what} {value:?} must be a DNS label: lower-case letters, digits and '-', at most 63"));
        }
    }
    if settings.image.is_empty() || settings.image.chars().any(char::is_whitespace) {
        return Err(format!("image {:?} must be a container image reference", settings.image));
    }

    let mut tera = tera::Tera::default();
    tera.register_filter("quote", quote);
    tera.add_raw_template("header.tera", include_str!("deploy/header.tera")).map_err(|e| e.to_string())?;
    for (name, text) in TEMPLATES {
        tera.add_raw_template(name, text).map_err(|e| format!("template {name}: {e:?}"))?;
    }

    let mut context = tera::Context::new();
    let mut specs: Vec<&str> = model.resources.iter().map(|r| r.source.as_str()).collect();
    specs.sort();
    specs.dedup();
    let specs = if specs.is_empty() {
        "an empty spec".to_string()
    } else {
        specs.iter().map(|s| format!("spec/{s}")).collect::<Vec<_>>().join(", ")
    };
    context.insert("specs", &specs);
    context.insert("namespace", &settings.namespace);
    context.insert("name", &settings.name);
    context.insert("image", &settings.image);
    context.insert("port", &CONTAINER_PORT);
    context.insert("service_host", &settings.service_host());
    context.insert("labels", &format!("{{app.kubernetes.io/name: {}, app.kubernetes.io/component: apiserver}}", settings.name));
    context.insert("selector", &format!("{{app.kubernetes.io/name: {}}}", settings.name));
    let (view, edit) = role_rules(model);
    context.insert("view_rules", &view);
    context.insert("edit_rules", &edit);
    context.insert("apiservices", &apiservices(model));
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let tls = settings.tls.as_ref().map(|t| TlsContext { ca_b64: b64(&t.ca_pem), cert_b64: b64(&t.cert_pem), key_b64: b64(&t.key_pem) });
    context.insert("tls", &tls);

    let mut manifests = Vec::new();
    for (name, _) in TEMPLATES {
        if name == "secret.yaml" && tls.is_none() {
            continue;
        }
        let text = tera.render(name, &context).map_err(|e| format!("rendering {name}: {e:?}"))?;
        let mut text = text.trim_end().to_string();
        text.push('\n');
        manifests.push(Manifest { file: name.to_string(), text });
    }
    Ok(manifests)
}

/// One APIService per group-version; within a group the version discovery prefers gets the
/// highest `versionPriority`, so the aggregator's discovery agrees with ours.
fn apiservices(model: &Model) -> Vec<ApiServiceContext> {
    let mut out = Vec::new();
    for group in model.groups() {
        let versions = model.group_versions(group);
        let count = versions.len() as u32;
        for (i, version) in versions.iter().enumerate() {
            out.push(ApiServiceContext {
                group: group.to_string(),
                version: version.to_string(),
                group_priority_minimum: GROUP_PRIORITY_MINIMUM,
                version_priority: (count - i as u32) * 10,
            });
        }
    }
    out
}

/// Rules for the view and edit aggregation roles: every namespaced resource by group, with the
/// subresources each role needs (view reads status and scale; edit writes scale).
fn role_rules(model: &Model) -> (Vec<Rule>, Vec<Rule>) {
    let (mut view, mut edit) = (Vec::<Rule>::new(), Vec::<Rule>::new());
    for group in model.groups() {
        let (mut v, mut e) = (Vec::new(), Vec::new());
        for resource in model.resources.iter().filter(|r| r.group == group && r.namespaced()) {
            let plural = &resource.names.plural;
            let served = resource.versions.iter().filter(|v| v.served);
            let status = served.clone().any(|v| v.subresources.status);
            let scale = served.clone().any(|v| v.subresources.scale.is_some());
            v.push(plural.clone());
            e.push(plural.clone());
            if status {
                v.push(format!("{plural}/status"));
            }
            if scale {
                v.push(format!("{plural}/scale"));
                e.push(format!("{plural}/scale"));
            }
        }
        if !v.is_empty() {
            view.push(Rule { group: group.to_string(), resources: v });
            edit.push(Rule { group: group.to_string(), resources: e });
        }
    }
    (view, edit)
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `quote`: a string as a double-quoted YAML scalar (JSON's quoting, which YAML reads).
fn quote(value: &tera::Value, _: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let text = value.as_str().ok_or_else(|| tera::Error::msg("quote needs a string"))?;
    Ok(tera::Value::String(serde_json::to_string(text).map_err(tera::Error::json)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        crate::test_support::model_of(include_str!("../../../tests/fixtures/spec-with-bar/widget.yaml"))
    }

    #[test]
    fn apiservices_follow_discovery_order() {
        let model = model();
        let services = apiservices(&model);
        for group in model.groups() {
            let versions: Vec<_> = services.iter().filter(|s| s.group == group).collect();
            let preferred = model.group_versions(group)[0];
            assert_eq!(versions[0].version, preferred);
            assert!(versions.windows(2).all(|w| w[0].version_priority > w[1].version_priority));
            assert!(versions.iter().all(|v| v.version_priority > 0));
        }
    }

    #[test]
    fn tls_material_is_optional_and_settings_are_checked() {
        let model = model();
        let plain = render(&model, &DeploySettings::default()).unwrap();
        assert!(!plain.iter().any(|m| m.file == "secret.yaml"));
        assert!(!plain.iter().any(|m| m.text.contains("caBundle:")));
        let tls = DeployTls { ca_pem: "CA".into(), cert_pem: "CERT".into(), key_pem: "KEY".into() };
        let full = render(&model, &DeploySettings { tls: Some(tls), ..DeploySettings::default() }).unwrap();
        let apiservices = &full.iter().find(|m| m.file == "apiservices.yaml").unwrap().text;
        assert!(apiservices.contains("caBundle: Q0E=\n"), "{apiservices}");
        assert!(!apiservices.contains("insecureSkipTLSVerify"));
        assert!(full.iter().any(|m| m.file == "secret.yaml" && m.text.contains("tls.key: S0VZ")));
        let bad = DeploySettings { namespace: "Not_A_Label".into(), ..DeploySettings::default() };
        assert!(render(&model, &bad).unwrap_err().contains("DNS label"));
    }
}
