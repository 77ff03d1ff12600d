//! The cluster's authentication settings for extension API servers: kube-apiserver publishes
//! its client CA and its front proxy's CA, allowed names and header names in the
//! `kube-system/extension-apiserver-authentication` ConfigMap, which every extension server may
//! read (the `extension-apiserver-authentication-reader` Role). k8s.io/apiserver reads it for
//! flags left unset; so do we, once at start-up.

use super::RestClient;
use serde_json::Value;

/// Where kube-apiserver publishes the settings.
pub const CONFIGMAP_PATH: &str = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication";

/// What the ConfigMap says; every part is optional (a cluster without a front proxy has no
/// `requestheader-*` keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterAuthentication {
    /// `client-ca-file`: PEM of the CA that signs the cluster's client certificates.
    pub client_ca: Option<String>,
    /// `requestheader-client-ca-file`: PEM of the front proxy's CA.
    pub requestheader_client_ca: Option<String>,
    /// `requestheader-allowed-names`.
    pub allowed_names: Vec<String>,
    /// `requestheader-username-headers`.
    pub username_headers: Vec<String>,
    /// `requestheader-uid-headers` (kube 1.32 and later).
    pub uid_headers: Vec<String>,
    /// `requestheader-group-headers`.
    pub group_headers: Vec<String>,
    /// `requestheader-extra-headers-prefix`.
    pub extra_headers_prefixes: Vec<String>,
}

impl ClusterAuthentication {
    /// Reads the ConfigMap. A missing one (404) is an empty configuration, as in
    /// k8s.io/apiserver; being refused (403) or not reaching the cluster is an error.
    pub async fn fetch(client: &RestClient) -> Result<ClusterAuthentication, String> {
        let (status, answer) = client.get_json(CONFIGMAP_PATH).await?;
        match status {
            200 => ClusterAuthentication::from_configmap(&answer),
            404 => Ok(ClusterAuthentication::default()),
            _ => Err(format!(
                "reading kube-system/extension-apiserver-authentication: HTTP {status}: {}",
                answer["message"].as_str().unwrap_or("no message")
            )),
        }
    }

    /// Parses the ConfigMap's data: CA bundles as PEM text, lists as JSON arrays of strings.
    pub fn from_configmap(configmap: &Value) -> Result<ClusterAuthentication, String> {
        let data = &configmap["data"];
        let text = |key: &str| data[key].as_str().map(str::trim).filter(|s| !s.is_empty()).map(|s| format!("{s}\n"));
        let list = |key: &str| -> Result<Vec<String>, String> {
            match data[key].as_str().map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(Vec::new()),
                Some(json) => serde_json::from_str::<Vec<String>>(json)
                    .map_err(|e| format!("extension-apiserver-authentication: {key} is not a JSON list of strings: {e}")),
            }
        };
        Ok(ClusterAuthentication {
            client_ca: text("client-ca-file"),
            requestheader_client_ca: text("requestheader-client-ca-file"),
            allowed_names: list("requestheader-allowed-names")?,
            username_headers: list("requestheader-username-headers")?,
            uid_headers: list("requestheader-uid-headers")?,
            group_headers: list("requestheader-group-headers")?,
            extra_headers_prefixes: list("requestheader-extra-headers-prefix")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_kube_apiservers_configmap() {
        let configmap = json!({"kind": "ConfigMap", "data": {
            "client-ca-file": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "requestheader-allowed-names": "[\"front-proxy-client\"]",
            "requestheader-client-ca-file": "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----",
            "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]",
            "requestheader-group-headers": "[\"X-Remote-Group\"]",
            "requestheader-username-headers": "[\"X-Remote-User\"]"
        }});
        let parsed = ClusterAuthentication::from_configmap(&configmap).unwrap();
        assert_eq!(parsed.allowed_names, ["front-proxy-client"]);
        assert_eq!(parsed.username_headers, ["X-Remote-User"]);
        assert!(parsed.uid_headers.is_empty());
        assert!(parsed.requestheader_client_ca.unwrap().ends_with("-----END CERTIFICATE-----\n"));
        let bad = json!({"data": {"requestheader-group-headers": "X-Remote-Group"}});
        assert!(ClusterAuthentication::from_configmap(&bad).unwrap_err().contains("requestheader-group-headers"));
        assert_eq!(ClusterAuthentication::from_configmap(&json!({})).unwrap(), ClusterAuthentication::default());
    }
}
