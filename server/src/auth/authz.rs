//! Authorization: `--authorization-mode`, a comma-separated chain of `AlwaysAllow`,
//! `AlwaysDeny`, `RBAC` and `Webhook`, asked in order as kube's union authorizer does — the
//! first to allow or deny decides; reasons of those without an opinion are kept for the 403.
//! Members of `system:masters` are allowed everything before any mode is asked, as in
//! kube-apiserver.

use super::rbac::Policy;
use super::requestinfo::RequestInfo;
use super::user::{UserInfo, SYSTEM_MASTERS};
use super::webhook::SubjectAccessReviewAuthorizer;
use crate::http::{ApiError, Details};

/// An authorizer's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The request may go on.
    Allow,
    /// The request is refused, whatever later authorizers would say.
    Deny,
    /// Ask the next authorizer; refused if none allows.
    NoOpinion,
}

/// What is being authorized: who, and what they ask for.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// The authenticated user.
    pub user: &'a UserInfo,
    /// The parsed request.
    pub request: &'a RequestInfo,
}

/// One `--authorization-mode`.
#[derive(Debug)]
pub enum Mode {
    /// Every request is allowed.
    AlwaysAllow,
    /// Every request is refused (kube's `AlwaysDeny` has no opinion, so later modes may allow).
    AlwaysDeny,
    /// The policy of `--authorization-policy-file` (and the built-in one).
    Rbac(Policy),
    /// SubjectAccessReviews to `--authorization-kubeconfig`.
    Webhook(SubjectAccessReviewAuthorizer),
}

impl Mode {
    /// The flag value naming the mode.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::AlwaysAllow => "AlwaysAllow",
            Mode::AlwaysDeny => "AlwaysDeny",
            Mode::Rbac(_) => "RBAC",
            Mode::Webhook(_) => "Webhook",
        }
    }
}

/// The outcome of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Allowed, denied, or nobody had an opinion.
    pub decision: Decision,
    /// Why not, as the authorizers explained (joined with newlines).
    pub reason: String,
    /// Authorizers that could not decide (a webhook that did not answer).
    pub error: Option<String>,
}

/// The chain of modes.
#[derive(Debug)]
pub struct Authorizer {
    modes: Vec<Mode>,
}

impl Authorizer {
    /// Asks `modes` in order.
    pub fn new(modes: Vec<Mode>) -> Self {
        Authorizer { modes }
    }

    /// The modes, in order.
    pub fn modes(&self) -> &[Mode] {
        &self.modes
    }

    /// Decides a request.
    pub async fn authorize(&self, attributes: &Attributes<'_>) -> Verdict {
        if attributes.user.in_group(SYSTEM_MASTERS) {
            return Verdict { decision: Decision::Allow, reason: String::new(), error: None };
        }
        let (mut reasons, mut errors) = (Vec::new(), Vec::new());
        for mode in &self.modes {
            let (decision, reason) = match mode {
                Mode::AlwaysAllow => (Decision::Allow, String::new()),
                Mode::AlwaysDeny => (Decision::NoOpinion, "Everything is forbidden.".to_string()),
                Mode::Rbac(policy) => policy.authorize(attributes.user, attributes.request),
                Mode::Webhook(webhook) => match webhook.authorize(attributes).await {
                    Ok(answer) => answer,
                    Err(e) => {
                        errors.push(e);
                        (Decision::NoOpinion, String::new())
                    }
                },
            };
            match decision {
                Decision::Allow | Decision::Deny => {
                    return Verdict { decision, reason, error: None };
                }
                Decision::NoOpinion => {
                    if !reason.is_empty() {
                        reasons.push(reason);
                    }
                }
            }
        }
        Verdict { decision: Decision::NoOpinion, reason: reasons.join("\n"), error: (!errors.is_empty()).then(|| errors.join(", ")) }
    }
}

/// The 403 `Status` kube-apiserver answers a refused request with
/// (`responsewriters.Forbidden`).
pub fn forbidden(attributes: &Attributes<'_>, reason: &str) -> ApiError {
    let (user, request) = (attributes.user, attributes.request);
    let what = if !request.is_resource_request {
        format!("User {:?} cannot {} path {:?}", user.name, request.verb, request.path)
    } else {
        let resource =
            if request.subresource.is_empty() { request.resource.clone() } else { format!("{}/{}", request.resource, request.subresource) };
        if request.namespace.is_empty() {
            format!(
                "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
                user.name, request.verb, resource, request.api_group
            )
        } else {
            format!(
                "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
                user.name, request.verb, resource, request.api_group, request.namespace
            )
        }
    };
    let what = if reason.is_empty() { what } else { format!("{what}: {reason}") };
    // `apierrors.NewForbidden(groupResource, name, err)`.
    let (group, resource) = if request.is_resource_request { (request.api_group.as_str(), request.resource.as_str()) } else { ("", "") };
    let qualified = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
    let message = if qualified.is_empty() {
        format!("forbidden: {what}")
    } else if request.name.is_empty() {
        format!("{qualified} is forbidden: {what}")
    } else {
        format!("{qualified} {:?} is forbidden: {what}", request.name)
    };
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    ApiError::new(403, "Forbidden", message).with_details(Details {
        group: some(group),
        kind: some(resource),
        name: if request.is_resource_request { some(&request.name) } else { None },
        ..Details::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn message(user: &str, method: Method, target: &str, reason: &str) -> serde_json::Value {
        let (path, query) = target.split_once('?').map(|(p, q)| (p, Some(q))).unwrap_or((target, None));
        let request = RequestInfo::parse(&method, path, query).unwrap();
        forbidden(&Attributes { user: &UserInfo::new(user, Vec::<String>::new()), request: &request }, reason).to_json()
    }

    #[test]
    fn forbidden_messages_match_kube_apiserver() {
        // The capture in shared/reference/kube-apiserver-1.32/err-403-anonymous.json.
        assert_eq!(
            serde_json::to_string(&message("system:anonymous", Method::GET, "/apis/hello.zeng.dev/v1/namespaces/default/foos", ""))
                .unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"foos.hello.zeng.dev is forbidden: User \"system:anonymous\" cannot list resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"default\"","reason":"Forbidden","details":{"group":"hello.zeng.dev","kind":"foos"},"code":403}"#
        );
        let get = message("alice", Method::GET, "/apis/hello.zeng.dev/v1/namespaces/default/foos/x/status", "");
        assert_eq!(get["message"], "foos.hello.zeng.dev \"x\" is forbidden: User \"alice\" cannot get resource \"foos/status\" in API group \"hello.zeng.dev\" in the namespace \"default\"");
        assert_eq!(get["details"], serde_json::json!({"name": "x", "group": "hello.zeng.dev", "kind": "foos"}));
        let cluster = message("alice", Method::DELETE, "/apis/hello.zeng.dev/v1/clusterfoos/y", "");
        assert_eq!(cluster["message"], "clusterfoos.hello.zeng.dev \"y\" is forbidden: User \"alice\" cannot delete resource \"clusterfoos\" in API group \"hello.zeng.dev\" at the cluster scope");
        let all = message("alice", Method::GET, "/apis/hello.zeng.dev/v1/foos?watch=1", "");
        assert_eq!(all["message"], "foos.hello.zeng.dev is forbidden: User \"alice\" cannot watch resource \"foos\" in API group \"hello.zeng.dev\" at the cluster scope");
        let core = message("alice", Method::GET, "/api/v1/namespaces/default/pods", "");
        assert_eq!(
            core["message"],
            "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        assert_eq!(core["details"], serde_json::json!({"kind": "pods"}));
        let path = message("system:anonymous", Method::GET, "/apis", "");
        assert_eq!(
            serde_json::to_string(&path).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"system:anonymous\" cannot get path \"/apis\"","reason":"Forbidden","details":{},"code":403}"#
        );
        let with_reason = message(
            "dora",
            Method::GET,
            "/apis/hello.zeng.dev/v1/namespaces/team/foos",
            "RBAC: role.rbac.authorization.k8s.io \"missing\" not found",
        );
        assert_eq!(with_reason["message"], "foos.hello.zeng.dev is forbidden: User \"dora\" cannot list resource \"foos\" in API group \"hello.zeng.dev\" in the namespace \"team\": RBAC: role.rbac.authorization.k8s.io \"missing\" not found");
    }

    #[tokio::test]
    async fn the_chain_stops_at_the_first_opinion() {
        let request = RequestInfo::parse(&Method::GET, "/apis/hello.zeng.dev/v1/namespaces/default/foos", None).unwrap();
        let alice = UserInfo::new("alice", ["system:authenticated"]);
        let attributes = Attributes { user: &alice, request: &request };
        let verdict = Authorizer::new(vec![Mode::AlwaysDeny, Mode::Rbac(Policy::builtin())]).authorize(&attributes).await;
        assert_eq!(verdict, Verdict { decision: Decision::NoOpinion, reason: "Everything is forbidden.".into(), error: None });
        let verdict = Authorizer::new(vec![Mode::Rbac(Policy::builtin()), Mode::AlwaysAllow]).authorize(&attributes).await;
        assert_eq!(verdict.decision, Decision::Allow);
        let masters = UserInfo::new("root", ["system:masters"]);
        let verdict = Authorizer::new(vec![Mode::AlwaysDeny]).authorize(&Attributes { user: &masters, request: &request }).await;
        assert_eq!(verdict.decision, Decision::Allow);
    }
}
