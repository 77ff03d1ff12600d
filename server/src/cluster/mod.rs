//! Aggregated mode: the server runs behind kube-apiserver's aggregator, as an extension API
//! server of a cluster (`--aggregated`, see `docs/aggregation.md`).
//!
//! The cluster's kube-apiserver is reached with `--kubeconfig` or, without it, with the pod's
//! service account ([`connect`]). From it the server learns:
//! - who the front proxy is and which client CA the cluster uses ([`authentication`]: the
//!   `kube-system/extension-apiserver-authentication` ConfigMap), as k8s.io/apiserver's
//!   delegated authentication does;
//! - which namespaces exist ([`namespaces`]): writes into missing or terminating namespaces are
//!   refused with kube's answers, and the objects of deleted namespaces are removed.

pub mod authentication;
pub mod namespaces;

use crate::auth::client::{RestClient, SERVICE_ACCOUNT_DIR};
use std::path::Path;

/// A client for the cluster: from `kubeconfig` when given, else the pod's service account
/// (client-go's in-cluster configuration).
pub fn connect(kubeconfig: Option<&Path>) -> Result<RestClient, String> {
    match kubeconfig {
        Some(path) => RestClient::from_kubeconfig("--kubeconfig", path).map_err(|e| e.0),
        None => RestClient::in_cluster(Path::new(SERVICE_ACCOUNT_DIR))
            .map_err(|e| format!("--aggregated without --kubeconfig uses the pod's service account: {e}")),
    }
}

/// Percent-encodes a path segment (names from requests are not trusted to be DNS labels).
pub(crate) fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
