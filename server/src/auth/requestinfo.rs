//! The request path parsed once into what authorization needs — verb, API group, version,
//! resource, subresource, namespace and name — exactly as k8s.io/apiserver's
//! `RequestInfoFactory.NewRequestInfo` does, so that RBAC rules and SubjectAccessReviews mean here
//! what they mean in kube-apiserver.

use http::Method;

/// What a request asks for. Resource requests are `/api/<version>/…` and
/// `/apis/<group>/<version>/…` with at least a resource; everything else (discovery, OpenAPI,
/// health, `/version`) is a non-resource request, authorized by its path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether this is a request for a resource (as opposed to a non-resource URL).
    pub is_resource_request: bool,
    /// The URL path, percent-decoded.
    pub path: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`,
    /// `proxy`; for non-resource requests the lower-case HTTP method.
    pub verb: String,
    /// `api` or `apis`.
    pub api_prefix: String,
    /// The API group; empty for the core group.
    pub api_group: String,
    /// The API version.
    pub api_version: String,
    /// The namespace; empty for cluster-scoped requests and requests across namespaces.
    pub namespace: String,
    /// The resource (plural).
    pub resource: String,
    /// The subresource (`status`, `scale`), if any.
    pub subresource: String,
    /// The object name; for list and watch also a `metadata.name=` field selector's value.
    pub name: String,
    /// The path segments from the resource on.
    pub parts: Vec<String>,
}

/// Verbs that may prefix a resource path: `/apis/<g>/<v>/watch/<resource>`.
const SPECIAL_VERBS: [&str; 2] = ["proxy", "watch"];
/// Special verbs whose paths have no subresource.
const SPECIAL_VERBS_NO_SUBRESOURCES: [&str; 1] = ["proxy"];
/// Subresources of namespaces, told apart from resources inside a namespace.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Kube's parse failure for a special verb without a resource (`/apis/<g>/<v>/watch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfoError(pub String);

impl std::fmt::Display for RequestInfoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl RequestInfo {
    /// Parses a request's method, path and query. The raw path is split at `/` first and each
    /// segment percent-decoded after, the way the router matches routes and decodes their
    /// parameters, so the two can never disagree about which segment is which.
    pub fn parse(method: &Method, path: &str, query: Option<&str>) -> Result<RequestInfo, RequestInfoError> {
        let mut info = RequestInfo { path: decode(path), verb: method.as_str().to_ascii_lowercase(), ..RequestInfo::default() };
        let trimmed = path.trim_matches('/');
        let mut parts: Vec<String> = if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').map(decode).collect() };
        if parts.len() < 3 || !matches!(parts[0].as_str(), "api" | "apis") {
            return Ok(info);
        }
        info.api_prefix = parts.remove(0);
        if info.api_prefix != "api" {
            // `/apis/<group>/<version>` is discovery: a resource request needs one more part.
            if parts.len() < 3 {
                return Ok(info);
            }
            info.api_group = parts.remove(0);
        }
        info.is_resource_request = true;
        info.api_version = parts.remove(0);

        if SPECIAL_VERBS.contains(&parts[0].as_str()) {
            if parts.len() < 2 {
                return Err(RequestInfoError(format!(
                    "unable to determine kind and namespace from url, {}{}",
                    path,
                    query.map(|q| format!("?{q}")).unwrap_or_default()
                )));
            }
            info.verb = parts.remove(0);
        } else {
            info.verb = match *method {
                Method::POST => "create",
                Method::GET | Method::HEAD => "get",
                Method::PUT => "update",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                _ => "",
            }
            .to_string();
        }

        if parts[0] == "namespaces" && parts.len() > 1 {
            info.namespace = parts[1].clone();
            // `/namespaces/<ns>/<resource>/…`, unless it is the namespace's own subresource.
            if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2].as_str()) {
                parts.drain(..2);
            }
        }
        if parts.len() >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.contains(&info.verb.as_str()) {
            info.subresource = parts[2].clone();
        }
        if parts.len() >= 2 {
            info.name = parts[1].clone();
        }
        if !parts.is_empty() {
            info.resource = parts[0].clone();
        }
        info.parts = parts;

        // A get without a name is a list or a watch.
        if info.name.is_empty() && info.verb == "get" {
            let list = ListQuery::parse(query);
            info.verb = if list.watch { "watch" } else { "list" }.to_string();
            if let Some(name) = list.name.filter(|n| is_valid_path_segment_name(n)) {
                info.name = name;
            }
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".to_string();
        }
        Ok(info)
    }
}

/// What of a list's query matters to authorization.
struct ListQuery {
    watch: bool,
    /// The `metadata.name` a field selector pins the list to.
    name: Option<String>,
}

impl ListQuery {
    fn parse(query: Option<&str>) -> ListQuery {
        let pairs: Vec<(String, String)> = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode_query(k), decode_query(v))
            })
            .collect();
        let first = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        // Decoded as the engine decodes it (kube's query conversion): anything but `0` and
        // `false` is a watch, so authorization and the engine agree on the verb.
        let watch = first("watch").is_some_and(crate::http::query_bool);
        let name = first("fieldSelector").and_then(exact_name);
        ListQuery { watch, name }
    }
}

/// The value a field selector requires `metadata.name` to equal, parsed as the engine parses
/// selectors (terms split at `,`, trimmed, ANDed), so that the name authorized is the only name
/// the engine can return. A selector that does not parse pins nothing.
fn exact_name(selector: &str) -> Option<String> {
    if selector.trim().is_empty() {
        return None;
    }
    let mut name = None;
    for term in selector.split(',') {
        let (field, value, equal) = if let Some((f, v)) = term.split_once("!=") {
            (f, v, false)
        } else if let Some((f, v)) = term.split_once("==") {
            (f, v, true)
        } else if let Some((f, v)) = term.split_once('=') {
            (f, v, true)
        } else {
            return None;
        };
        if equal && field.trim() == "metadata.name" && name.is_none() {
            name = Some(value.trim().to_string());
        }
    }
    name
}

/// `path.IsValidPathSegmentName`: not `.` or `..`, and neither `/` nor `%` inside.
fn is_valid_path_segment_name(name: &str) -> bool {
    name != "." && name != ".." && !name.contains('/') && !name.contains('%')
}

/// Percent-decodes a path (no `+` for space in paths).
fn decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes a query component (`+` is a space there).
fn decode_query(s: &str) -> String {
    decode(&s.replace('+', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (method, path?query, verb, group, version, namespace, resource, subresource, name,
    /// resource request?)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        bool,
    );

    #[test]
    fn parses_like_kube_apiserver() {
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // Non-resource requests.
            ("GET", "/", "get", "", "", "", "", "", "", false),
            ("GET", "/healthz", "get", "", "", "", "", "", "", false),
            ("HEAD", "/livez", "head", "", "", "", "", "", "", false),
            ("GET", "/version", "get", "", "", "", "", "", "", false),
            ("GET", "/api", "get", "", "", "", "", "", "", false),
            ("GET", "/api/v1", "get", "", "", "", "", "", "", false),
            ("GET", "/apis", "get", "", "", "", "", "", "", false),
            ("GET", "/apis/hello.zeng.dev", "get", "", "", "", "", "", "", false),
            ("GET", "/apis/hello.zeng.dev/v1", "get", "", "", "", "", "", "", false),
            ("GET", "/openapi/v3/apis/hello.zeng.dev/v1", "get", "", "", "", "", "", "", false),
            ("POST", "/other/path/entirely", "post", "", "", "", "", "", "", false),
            // Collections and items of a group.
            ("GET", "/apis/hello.zeng.dev/v1/foos", "list", "hello.zeng.dev", "v1", "", "foos", "", "", true),
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos", "list", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos?watch=true", "watch", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos?watch=1", "watch", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos?watch=false", "list", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos?watch=yes", "watch", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos/a", "get", "hello.zeng.dev", "v1", "default", "foos", "", "a", true),
            ("HEAD", "/apis/hello.zeng.dev/v1/namespaces/default/foos/a", "get", "hello.zeng.dev", "v1", "default", "foos", "", "a", true),
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos/a?watch=true", "get", "hello.zeng.dev", "v1", "default", "foos", "", "a", true),
            ("POST", "/apis/hello.zeng.dev/v1/namespaces/default/foos", "create", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            ("PUT", "/apis/hello.zeng.dev/v1/namespaces/default/foos/a", "update", "hello.zeng.dev", "v1", "default", "foos", "", "a", true),
            ("PATCH", "/apis/hello.zeng.dev/v1/namespaces/default/foos/a", "patch", "hello.zeng.dev", "v1", "default", "foos", "", "a", true),
            ("DELETE", "/apis/hello.zeng.dev/v1/namespaces/default/foos/a", "delete", "hello.zeng.dev", "v1", "default", "foos", "", "a", true),
            ("DELETE", "/apis/hello.zeng.dev/v1/namespaces/default/foos", "deletecollection", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            ("OPTIONS", "/apis/hello.zeng.dev/v1/namespaces/default/foos", "", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            // Subresources.
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos/a/status", "get", "hello.zeng.dev", "v1", "default", "foos", "status", "a", true),
            ("PUT", "/apis/hello.zeng.dev/v1/namespaces/default/foos/a/scale", "update", "hello.zeng.dev", "v1", "default", "foos", "scale", "a", true),
            ("PATCH", "/apis/hello.zeng.dev/v1/clusterthings/a/status", "patch", "hello.zeng.dev", "v1", "", "clusterthings", "status", "a", true),
            // Watch paths.
            ("GET", "/apis/hello.zeng.dev/v1/watch/foos", "watch", "hello.zeng.dev", "v1", "", "foos", "", "", true),
            ("GET", "/apis/hello.zeng.dev/v1/watch/namespaces/default/foos", "watch", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            ("GET", "/apis/hello.zeng.dev/v1/watch/namespaces/default/foos/a", "watch", "hello.zeng.dev", "v1", "default", "foos", "", "a", true),
            // Proxy has no subresource.
            ("GET", "/api/v1/proxy/namespaces/default/pods/p/extra/path", "proxy", "", "v1", "default", "pods", "", "p", true),
            // The core group and namespaces themselves.
            ("GET", "/api/v1/namespaces", "list", "", "v1", "", "namespaces", "", "", true),
            ("GET", "/api/v1/namespaces/default", "get", "", "v1", "default", "namespaces", "", "default", true),
            ("PUT", "/api/v1/namespaces/default/finalize", "update", "", "v1", "default", "namespaces", "finalize", "default", true),
            ("GET", "/api/v1/namespaces/default/status", "get", "", "v1", "default", "namespaces", "status", "default", true),
            ("GET", "/api/v1/namespaces/default/pods", "list", "", "v1", "default", "pods", "", "", true),
            ("GET", "/api/v1/nodes/n1", "get", "", "v1", "", "nodes", "", "n1", true),
            // A field selector on metadata.name names the object for list and watch.
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos?fieldSelector=metadata.name%3Da", "list", "hello.zeng.dev", "v1", "default", "foos", "", "a", true),
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos?fieldSelector=metadata.name%3D%3Da&watch=true", "watch", "hello.zeng.dev", "v1", "default", "foos", "", "a", true),
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos?fieldSelector=spec.x%3D1,metadata.name%3Da", "list", "hello.zeng.dev", "v1", "default", "foos", "", "a", true),
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos?fieldSelector=metadata.name!%3Da", "list", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos?fieldSelector=metadata.name%3Da,garbage", "list", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos?fieldSelector=metadata.name%3D..", "list", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            ("DELETE", "/apis/hello.zeng.dev/v1/namespaces/default/foos?fieldSelector=metadata.name%3Da", "deletecollection", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            // Segments are split before they are decoded, as the router does.
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/default/foos/a%2Fb", "get", "hello.zeng.dev", "v1", "default", "foos", "", "a/b", true),
            ("GET", "/apis/hello.zeng.dev/v1/namespaces/de%66ault/foos", "list", "hello.zeng.dev", "v1", "default", "foos", "", "", true),
            // Trailing and repeated slashes are trimmed at the ends as kube does.
            ("GET", "/apis/hello.zeng.dev/v1/foos/", "list", "hello.zeng.dev", "v1", "", "foos", "", "", true),
        ];
        for &(method, target, verb, group, version, namespace, resource, subresource, name, is_resource) in cases {
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target, None),
            };
            let info = RequestInfo::parse(&method.parse().unwrap(), path, query).unwrap_or_else(|e| panic!("{method} {target}: {e}"));
            let got = (
                info.verb.as_str(),
                info.api_group.as_str(),
                info.api_version.as_str(),
                info.namespace.as_str(),
                info.resource.as_str(),
                info.subresource.as_str(),
                info.name.as_str(),
                info.is_resource_request,
            );
            assert_eq!(got, (verb, group, version, namespace, resource, subresource, name, is_resource), "{method} {target}");
        }
    }

    #[test]
    fn special_verb_without_resource_is_an_error() {
        let err = RequestInfo::parse(&Method::GET, "/apis/hello.zeng.dev/v1/watch", None).unwrap_err();
        assert_eq!(err.0, "unable to determine kind and namespace from url, /apis/hello.zeng.dev/v1/watch");
    }

    #[test]
    fn non_resource_paths_are_decoded() {
        let info = RequestInfo::parse(&Method::GET, "/healthz%2Fx", None).unwrap();
        assert_eq!(info.path, "/healthz/x");
        assert!(!info.is_resource_request);
    }
}
