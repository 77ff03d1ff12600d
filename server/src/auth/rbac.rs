//! Standalone RBAC: Roles, ClusterRoles, RoleBindings and ClusterRoleBindings in
//! rbac.authorization.k8s.io/v1 form, read from `--authorization-policy-file` (a YAML stream,
//! `kind: List` allowed), evaluated with kube's semantics — the rule matching of
//! `rbac/v1helpers` and the binding walk of `DefaultRuleResolver.VisitRulesFor`: cluster role
//! bindings first, then the role bindings of the request's namespace; the first rule that
//! allows wins; RBAC never denies, it only has no opinion.
//!
//! A built-in policy is always present, as kube-apiserver bootstraps one: `cluster-admin`
//! bound to `system:masters`, `system:discovery` (discovery, OpenAPI, health and version for
//! every authenticated user), `system:public-info-viewer` (health and version for everyone,
//! which only matters with `--anonymous-auth=true`), and the aggregated `admin`, `edit` and
//! `view` roles, empty until the file adds ClusterRoles labelled
//! `rbac.authorization.k8s.io/aggregate-to-<role>: "true"`. The file may redefine any of them.

use super::authz::Decision;
use super::requestinfo::RequestInfo;
use super::user::{UserInfo, SERVICE_ACCOUNT_PREFIX};
use super::AuthError;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The API group of RBAC objects.
pub const GROUP: &str = "rbac.authorization.k8s.io";
const API_VERSION: &str = "rbac.authorization.k8s.io/v1";

/// One rule of a role.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyRule {
    /// Verbs, or `*`.
    #[serde(default, deserialize_with = "nullable")]
    pub verbs: Vec<String>,
    /// API groups (`""` is the core group), or `*`.
    #[serde(default, deserialize_with = "nullable")]
    pub api_groups: Vec<String>,
    /// Resources, `resource/subresource`, `*/subresource`, or `*`.
    #[serde(default, deserialize_with = "nullable")]
    pub resources: Vec<String>,
    /// Object names the rule is limited to; empty means all.
    #[serde(default, deserialize_with = "nullable")]
    pub resource_names: Vec<String>,
    /// Non-resource paths; a trailing `*` matches any suffix.
    #[serde(default, deserialize_with = "nullable", rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

/// Who a binding binds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    /// `rbac.authorization.k8s.io` for users and groups, empty for service accounts.
    #[serde(default, deserialize_with = "nullable")]
    pub api_group: String,
    /// The user, group or service account name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// A service account's namespace (defaults to the binding's).
    #[serde(default, deserialize_with = "nullable")]
    pub namespace: String,
}

/// The role a binding grants.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleRef {
    /// Always `rbac.authorization.k8s.io`.
    #[serde(default, deserialize_with = "nullable")]
    pub api_group: String,
    /// `Role` or `ClusterRole`.
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    /// The role's name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    namespace: String,
    #[serde(default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoleObject {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    /// Read separately (it allows any field); named here so it is not unknown.
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Value,
    #[serde(default, deserialize_with = "nullable")]
    rules: Vec<PolicyRule>,
    #[serde(default)]
    aggregation_rule: Option<AggregationRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BindingObject {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    /// Read separately (it allows any field); named here so it is not unknown.
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Value,
    #[serde(default, deserialize_with = "nullable")]
    subjects: Vec<Subject>,
    role_ref: RoleRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AggregationRule {
    #[serde(default, deserialize_with = "nullable")]
    cluster_role_selectors: Vec<LabelSelector>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LabelSelector {
    #[serde(default, deserialize_with = "nullable")]
    match_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    match_expressions: Vec<SelectorRequirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SelectorRequirement {
    key: String,
    operator: String,
    #[serde(default, deserialize_with = "nullable")]
    values: Vec<String>,
}

impl LabelSelector {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| match r.operator.as_str() {
                "In" => labels.get(&r.key).is_some_and(|v| r.values.contains(v)),
                "NotIn" => labels.get(&r.key).is_none_or(|v| !r.values.contains(v)),
                "Exists" => labels.contains_key(&r.key),
                "DoesNotExist" => !labels.contains_key(&r.key),
                _ => false,
            })
    }
}

#[derive(Debug, Clone)]
struct ClusterRole {
    labels: BTreeMap<String, String>,
    rules: Vec<PolicyRule>,
    aggregation: Option<AggregationRule>,
}

#[derive(Debug, Clone)]
struct Binding {
    name: String,
    subjects: Vec<Subject>,
    role_ref: RoleRef,
}

/// A loaded RBAC policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    cluster_roles: BTreeMap<String, ClusterRole>,
    roles: BTreeMap<(String, String), Vec<PolicyRule>>,
    cluster_role_bindings: BTreeMap<String, Binding>,
    /// By namespace, then name.
    role_bindings: BTreeMap<String, BTreeMap<String, Binding>>,
}

/// The policy every server starts with.
const BUILTIN: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: cluster-admin}
rules:
- {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
- {nonResourceURLs: ["*"], verbs: ["*"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: cluster-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:masters"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:discovery"}
rules:
- nonResourceURLs: [/api, /api/*, /apis, /apis/*, /healthz, /livez, /openapi, /openapi/*, /readyz, /version, /version/]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:discovery"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:discovery"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:authenticated"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:public-info-viewer"}
rules:
- nonResourceURLs: [/healthz, /livez, /readyz, /version, /version/]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:public-info-viewer"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:public-info-viewer"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:authenticated"}
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:unauthenticated"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: admin}
aggregationRule:
  clusterRoleSelectors:
  - matchLabels: {rbac.authorization.k8s.io/aggregate-to-admin: "true"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: edit}
aggregationRule:
  clusterRoleSelectors:
  - matchLabels: {rbac.authorization.k8s.io/aggregate-to-edit: "true"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: view}
aggregationRule:
  clusterRoleSelectors:
  - matchLabels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
"#;

impl Policy {
    /// The built-in policy alone.
    pub fn builtin() -> Policy {
        let mut policy = Policy::default();
        policy.add_documents(BUILTIN, "built-in policy").expect("the built-in policy is valid");
        policy.aggregate();
        policy
    }

    /// The built-in policy with the objects of `--authorization-policy-file` added (replacing
    /// built-in objects of the same kind and name).
    pub fn load(path: &Path) -> Result<Policy, AuthError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AuthError(format!("--authorization-policy-file: cannot read {}: {e}", path.display())))?;
        Policy::parse(&text, &path.display().to_string())
    }

    /// Like [`Policy::load`], from text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Policy, AuthError> {
        let mut policy = Policy::default();
        policy.add_documents(BUILTIN, "built-in policy").expect("the built-in policy is valid");
        policy.add_documents(text, source)?;
        policy.aggregate();
        policy.warn_dangling_references();
        Ok(policy)
    }

    /// Adds every object of a YAML stream, reporting all errors at once.
    fn add_documents(&mut self, text: &str, source: &str) -> Result<(), AuthError> {
        let mut errors = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut objects = Vec::new();
        for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            match Value::deserialize(document) {
                Ok(Value::Null) => {}
                Ok(Value::Object(map)) if map.get("kind").and_then(Value::as_str) == Some("List") => match map.get("items") {
                    Some(Value::Array(items)) => {
                        objects.extend(items.iter().enumerate().map(|(i, item)| (format!("document {} item {i}", index + 1), item.clone())))
                    }
                    Some(Value::Null) | None => {}
                    Some(_) => errors.push(format!("{source}: document {}: items: must be a list", index + 1)),
                },
                Ok(value) => objects.push((format!("document {}", index + 1), value)),
                Err(e) => {
                    errors.push(format!("{source}: {e}"));
                    // The stream cannot be read past a syntax error.
                    break;
                }
            }
        }
        for (place, value) in objects {
            if let Err(e) = self.add_object(&value, &mut seen) {
                let kind = value.get("kind").and_then(Value::as_str).unwrap_or("object");
                let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
                errors.extend(e.into_iter().map(|m| format!("{source}: {place} ({kind} {name:?}): {m}")));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AuthError(errors.join("\n")))
        }
    }

    fn add_object(&mut self, value: &Value, seen: &mut std::collections::BTreeSet<(String, String, String)>) -> Result<(), Vec<String>> {
        let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
        if !matches!(kind, "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding") {
            return Err(vec![format!("kind: Unsupported value: {kind:?}: supported values: \"Role\", \"ClusterRole\", \"RoleBinding\", \"ClusterRoleBinding\", \"List\"")]);
        }
        if api_version != API_VERSION {
            return Err(vec![format!("apiVersion: Unsupported value: {api_version:?}: supported values: \"{API_VERSION}\"")]);
        }
        let namespaced = matches!(kind, "Role" | "RoleBinding");
        let mut errors = Vec::new();
        let typed = |e: serde_path_to_error::Error<serde_json::Error>| vec![format!("{}: {}", e.path(), e.inner())];
        let metadata = match value.get("metadata") {
            Some(m) => Metadata::deserialize(m).map_err(|e| vec![format!("metadata: {e}")])?,
            None => Metadata::default(),
        };
        if metadata.name.is_empty() {
            errors.push("metadata.name: Required value: name or generateName is required".to_string());
        }
        if namespaced && metadata.namespace.is_empty() {
            errors.push("metadata.namespace: Required value".to_string());
        }
        let key = (kind.to_string(), if namespaced { metadata.namespace.clone() } else { String::new() }, metadata.name.clone());
        if !seen.insert(key) {
            errors.push("metadata.name: Duplicate value: defined twice in this file".to_string());
        }
        match kind {
            "Role" | "ClusterRole" => {
                let object: RoleObject = serde_path_to_error::deserialize(value).map_err(typed)?;
                for (i, rule) in object.rules.iter().enumerate() {
                    errors.extend(validate_rule(rule, namespaced).into_iter().map(|e| format!("rules[{i}].{e}")));
                }
                if namespaced && object.aggregation_rule.is_some() {
                    errors.push("aggregationRule: Forbidden: only ClusterRoles aggregate".into());
                }
                for (i, selector) in object.aggregation_rule.iter().flat_map(|a| &a.cluster_role_selectors).enumerate() {
                    for (j, r) in selector.match_expressions.iter().enumerate() {
                        if !matches!(r.operator.as_str(), "In" | "NotIn" | "Exists" | "DoesNotExist") {
                            errors.push(format!(
                                "aggregationRule.clusterRoleSelectors[{i}].matchExpressions[{j}].operator: Unsupported value: {:?}",
                                r.operator
                            ));
                        }
                    }
                }
                if !errors.is_empty() {
                    return Err(errors);
                }
                if namespaced {
                    self.roles.insert((metadata.namespace, metadata.name), object.rules);
                } else {
                    self.cluster_roles.insert(
                        metadata.name,
                        ClusterRole { labels: metadata.labels, rules: object.rules, aggregation: object.aggregation_rule },
                    );
                }
            }
            _ => {
                let object: BindingObject = serde_path_to_error::deserialize(value).map_err(typed)?;
                let role_ref = &object.role_ref;
                if !role_ref.api_group.is_empty() && role_ref.api_group != GROUP {
                    errors.push(format!("roleRef.apiGroup: Unsupported value: {:?}: supported values: \"{GROUP}\"", role_ref.api_group));
                }
                let kinds: &[&str] = if namespaced { &["Role", "ClusterRole"] } else { &["ClusterRole"] };
                if !kinds.contains(&role_ref.kind.as_str()) {
                    let supported = kinds.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ");
                    errors.push(format!("roleRef.kind: Unsupported value: {:?}: supported values: {supported}", role_ref.kind));
                }
                if role_ref.name.is_empty() {
                    errors.push("roleRef.name: Required value".into());
                }
                for (i, subject) in object.subjects.iter().enumerate() {
                    errors.extend(validate_subject(subject, namespaced).into_iter().map(|e| format!("subjects[{i}].{e}")));
                }
                if !errors.is_empty() {
                    return Err(errors);
                }
                let binding = Binding { name: metadata.name.clone(), subjects: object.subjects, role_ref: object.role_ref };
                if namespaced {
                    self.role_bindings.entry(metadata.namespace).or_default().insert(metadata.name, binding);
                } else {
                    self.cluster_role_bindings.insert(metadata.name, binding);
                }
            }
        }
        Ok(())
    }

    /// Fills aggregated ClusterRoles with the rules of the ClusterRoles their selectors
    /// match, as kube's aggregation controller does, until nothing changes (aggregated roles
    /// may themselves be aggregated).
    fn aggregate(&mut self) {
        for _ in 0..16 {
            let mut changed = false;
            let snapshot = self.cluster_roles.clone();
            for (name, role) in self.cluster_roles.iter_mut() {
                let Some(aggregation) = &role.aggregation else { continue };
                let mut rules: Vec<PolicyRule> = Vec::new();
                for (other_name, other) in &snapshot {
                    if other_name == name || !aggregation.cluster_role_selectors.iter().any(|s| s.matches(&other.labels)) {
                        continue;
                    }
                    for rule in &other.rules {
                        if !rules.contains(rule) {
                            rules.push(rule.clone());
                        }
                    }
                }
                if rules != role.rules {
                    role.rules = rules;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    fn warn_dangling_references(&self) {
        let bindings = self
            .cluster_role_bindings
            .values()
            .map(|b| ("", b))
            .chain(self.role_bindings.iter().flat_map(|(ns, bs)| bs.values().map(move |b| (ns.as_str(), b))));
        for (namespace, binding) in bindings {
            if let Err(e) = self.rules_of(&binding.role_ref, namespace) {
                tracing::warn!(binding = %binding.name, %namespace, "RBAC policy: {e}; the binding grants nothing");
            }
        }
    }

    fn rules_of(&self, role_ref: &RoleRef, namespace: &str) -> Result<&[PolicyRule], String> {
        match role_ref.kind.as_str() {
            "Role" => self
                .roles
                .get(&(namespace.to_string(), role_ref.name.clone()))
                .map(Vec::as_slice)
                .ok_or_else(|| format!("role.{GROUP} {:?} not found", role_ref.name)),
            "ClusterRole" => self
                .cluster_roles
                .get(&role_ref.name)
                .map(|r| r.rules.as_slice())
                .ok_or_else(|| format!("clusterrole.{GROUP} {:?} not found", role_ref.name)),
            other => Err(format!("unsupported role reference kind: {other:?}")),
        }
    }

    /// Whether the policy allows `user` to make `request`; with the reason kube's RBAC
    /// authorizer gives when it does not (bindings whose role is missing).
    pub fn authorize(&self, user: &UserInfo, request: &RequestInfo) -> (Decision, String) {
        let mut errors: Vec<String> = Vec::new();
        let mut visit = |bindings: &mut dyn Iterator<Item = &Binding>, namespace: &str| -> bool {
            for binding in bindings {
                if !binding.subjects.iter().any(|s| applies_to(user, s, namespace)) {
                    continue;
                }
                match self.rules_of(&binding.role_ref, namespace) {
                    Ok(rules) if rules.iter().any(|r| rule_allows(request, r)) => return true,
                    Ok(_) => {}
                    Err(e) => errors.push(e),
                }
            }
            false
        };
        if visit(&mut self.cluster_role_bindings.values(), "") {
            return (Decision::Allow, String::new());
        }
        if !request.namespace.is_empty() {
            if let Some(bindings) = self.role_bindings.get(&request.namespace) {
                if visit(&mut bindings.values(), &request.namespace) {
                    return (Decision::Allow, String::new());
                }
            }
        }
        let reason = if errors.is_empty() { String::new() } else { format!("RBAC: {}", aggregate_errors(&errors)) };
        (Decision::NoOpinion, reason)
    }
}

/// `utilerrors.NewAggregate(errs).Error()`: one error alone, several de-duplicated in brackets.
fn aggregate_errors(errors: &[String]) -> String {
    if errors.len() == 1 {
        return errors[0].clone();
    }
    let mut seen: Vec<&str> = Vec::new();
    for e in errors {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    if seen.len() == 1 {
        seen[0].to_string()
    } else {
        format!("[{}]", seen.join(", "))
    }
}

fn validate_rule(rule: &PolicyRule, namespaced: bool) -> Vec<String> {
    let mut errors = Vec::new();
    if rule.verbs.is_empty() {
        errors.push("verbs: Required value: verbs must contain at least one value".to_string());
    }
    if !rule.non_resource_urls.is_empty() {
        if namespaced {
            errors.push(format!(
                "nonResourceURLs: Invalid value: {:?}: namespaced rules cannot apply to non-resource URLs",
                rule.non_resource_urls
            ));
        }
        if !rule.api_groups.is_empty() || !rule.resources.is_empty() || !rule.resource_names.is_empty() {
            errors.push(format!(
                "nonResourceURLs: Invalid value: {:?}: rules cannot apply to both regular resources and non-resource URLs",
                rule.non_resource_urls
            ));
        }
        return errors;
    }
    if rule.api_groups.is_empty() {
        errors.push("apiGroups: Required value: resource rules must supply at least one api group".to_string());
    }
    if rule.resources.is_empty() {
        errors.push("resources: Required value: resource rules must supply at least one resource".to_string());
    }
    errors
}

fn validate_subject(subject: &Subject, namespaced: bool) -> Vec<String> {
    let mut errors = Vec::new();
    if subject.name.is_empty() {
        errors.push("name: Required value".to_string());
    }
    match subject.kind.as_str() {
        "User" | "Group" => {
            if !subject.api_group.is_empty() && subject.api_group != GROUP {
                errors.push(format!("apiGroup: Unsupported value: {:?}: supported values: \"{GROUP}\"", subject.api_group));
            }
        }
        "ServiceAccount" => {
            if !subject.api_group.is_empty() {
                errors.push(format!("apiGroup: Unsupported value: {:?}: supported values: \"\"", subject.api_group));
            }
            if subject.namespace.is_empty() && !namespaced {
                errors.push("namespace: Required value".to_string());
            }
        }
        other => errors.push(format!("kind: Unsupported value: {other:?}: supported values: \"ServiceAccount\", \"User\", \"Group\"")),
    }
    errors
}

/// Whether a binding subject names the user (`appliesToUser`).
fn applies_to(user: &UserInfo, subject: &Subject, namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.in_group(&subject.name),
        "ServiceAccount" => {
            let sa_namespace = if subject.namespace.is_empty() { namespace } else { &subject.namespace };
            !sa_namespace.is_empty() && user.name == format!("{SERVICE_ACCOUNT_PREFIX}{sa_namespace}:{}", subject.name)
        }
        _ => false,
    }
}

/// Whether one rule allows the request (`RuleAllows`).
pub fn rule_allows(request: &RequestInfo, rule: &PolicyRule) -> bool {
    if request.is_resource_request {
        let combined =
            if request.subresource.is_empty() { request.resource.clone() } else { format!("{}/{}", request.resource, request.subresource) };
        verb_matches(rule, &request.verb)
            && rule.api_groups.iter().any(|g| g == "*" || *g == request.api_group)
            && resource_matches(rule, &combined, &request.subresource)
            && (rule.resource_names.is_empty() || rule.resource_names.contains(&request.name))
    } else {
        verb_matches(rule, &request.verb) && rule.non_resource_urls.iter().any(|u| non_resource_url_matches(u, &request.path))
    }
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        r == "*"
            || r == combined
            || (!subresource.is_empty() && r.len() == subresource.len() + 2 && r.starts_with("*/") && r.ends_with(subresource))
    })
}

fn non_resource_url_matches(rule_url: &str, path: &str) -> bool {
    rule_url == "*" || rule_url == path || (rule_url.ends_with('*') && path.starts_with(rule_url.trim_end_matches('*')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    const POLICY: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: foo-reader}
rules:
- apiGroups: [hello.zeng.dev]
  resources: [foos]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: readers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: foo-reader}
subjects:
- {kind: Group, name: readers}
- {kind: ServiceAccount, name: reader, namespace: tools}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: foo-editor, namespace: team}
rules:
- apiGroups: [hello.zeng.dev]
  resources: [foos]
  verbs: ["*"]
- apiGroups: [hello.zeng.dev]
  resources: [foos/status]
  verbs: [update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: editors, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: foo-editor}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
- {kind: ServiceAccount, name: builder}
---
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: one-foo}
  rules:
  - {apiGroups: [hello.zeng.dev], resources: [foos], resourceNames: [special], verbs: [get, update, list]}
  - {apiGroups: ["*"], resources: ["*/scale"], verbs: [get]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: one-foo, namespace: team}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: one-foo}
  subjects: [{kind: User, name: bob}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: metrics}
rules:
- nonResourceURLs: [/metrics, /debug/*]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: metrics}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: metrics}
subjects: [{kind: User, name: bob}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: foo-view
  labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
rules:
- {apiGroups: [hello.zeng.dev], resources: [foos, bars], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: viewers, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: User, name: victor}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: everything-for-root}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: User, name: root}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: dangling, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: missing}
subjects: [{kind: User, name: dora}]
"#;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo::new(name, groups.iter().copied()).with_authenticated_group()
    }

    #[test]
    fn kube_rbac_semantics() {
        let policy = Policy::parse(POLICY, "test").unwrap();
        let team = "/apis/hello.zeng.dev/v1/namespaces/team/foos";
        let other = "/apis/hello.zeng.dev/v1/namespaces/other/foos";
        #[rustfmt::skip]
        let cases: &[(&str, &[&str], &str, &str, bool)] = &[
            // Group subjects and verbs of a cluster role binding, in every namespace.
            ("rita", &["readers"], "GET", team, true),
            ("rita", &["readers"], "GET", other, true),
            ("rita", &["readers"], "GET", "/apis/hello.zeng.dev/v1/foos", true),
            ("rita", &["readers"], "GET", "/apis/hello.zeng.dev/v1/namespaces/team/foos?watch=true", true),
            ("rita", &["readers"], "GET", "/apis/hello.zeng.dev/v1/namespaces/team/foos/x", true),
            ("rita", &["readers"], "POST", team, false),
            ("rita", &["readers"], "DELETE", team, false),
            ("rita", &["readers"], "GET", "/apis/hello.zeng.dev/v1/namespaces/team/foos/x/status", false),
            ("rita", &["readers"], "GET", "/apis/other.group/v1/namespaces/team/foos", false),
            ("rita", &["readers"], "GET", "/apis/hello.zeng.dev/v1/namespaces/team/bars", false),
            ("rita", &[], "GET", team, false),
            // A user in a role binding: only that namespace; "*" verbs; subresources need their own rule.
            ("alice", &[], "POST", team, true),
            ("alice", &[], "DELETE", team, true),
            ("alice", &[], "DELETE", "/apis/hello.zeng.dev/v1/namespaces/team/foos/x", true),
            ("alice", &[], "PATCH", "/apis/hello.zeng.dev/v1/namespaces/team/foos/x/status", true),
            ("alice", &[], "GET", "/apis/hello.zeng.dev/v1/namespaces/team/foos/x/status", false),
            ("alice", &[], "GET", "/apis/hello.zeng.dev/v1/namespaces/team/foos/x/scale", false),
            ("alice", &[], "POST", other, false),
            ("alice", &[], "GET", "/apis/hello.zeng.dev/v1/foos", false),
            // resourceNames: named requests only (not create, not unnamed lists).
            ("bob", &[], "GET", "/apis/hello.zeng.dev/v1/namespaces/team/foos/special", true),
            ("bob", &[], "PUT", "/apis/hello.zeng.dev/v1/namespaces/team/foos/special", true),
            ("bob", &[], "GET", "/apis/hello.zeng.dev/v1/namespaces/team/foos/ordinary", false),
            ("bob", &[], "DELETE", "/apis/hello.zeng.dev/v1/namespaces/team/foos/special", false),
            ("bob", &[], "GET", team, false),
            ("bob", &[], "GET", "/apis/hello.zeng.dev/v1/namespaces/team/foos?fieldSelector=metadata.name%3Dspecial", true),
            ("bob", &[], "POST", team, false),
            ("bob", &[], "GET", "/apis/hello.zeng.dev/v1/namespaces/other/foos/special", false),
            // "*/scale" matches any resource's scale subresource, in any group.
            ("bob", &[], "GET", "/apis/hello.zeng.dev/v1/namespaces/team/foos/x/scale", true),
            ("bob", &[], "GET", "/apis/apps/v1/namespaces/team/deployments/x/scale", true),
            ("bob", &[], "GET", "/apis/apps/v1/namespaces/team/deployments/x/status", false),
            // Non-resource URLs, exact and with a trailing *.
            ("bob", &[], "GET", "/metrics", true),
            ("bob", &[], "GET", "/debug/pprof/heap", true),
            ("bob", &[], "POST", "/metrics", false),
            ("bob", &[], "GET", "/metricsz", false),
            // Built-in discovery for authenticated users; public info for everyone.
            ("bob", &[], "GET", "/apis", true),
            ("bob", &[], "GET", "/apis/hello.zeng.dev/v1", true),
            ("bob", &[], "GET", "/openapi/v3/apis/hello.zeng.dev/v1", true),
            ("bob", &[], "GET", "/version", true),
            ("bob", &[], "GET", "/logs", false),
            ("system:anonymous", &["system:unauthenticated"], "GET", "/version", true),
            ("system:anonymous", &["system:unauthenticated"], "GET", "/healthz", true),
            ("system:anonymous", &["system:unauthenticated"], "GET", "/apis", false),
            ("system:anonymous", &["system:unauthenticated"], "GET", team, false),
            // Service accounts: explicit namespace, or the binding's.
            ("system:serviceaccount:tools:reader", &[], "GET", team, true),
            ("system:serviceaccount:other:reader", &[], "GET", team, false),
            ("system:serviceaccount:team:builder", &[], "POST", team, true),
            ("system:serviceaccount:tools:builder", &[], "POST", team, false),
            // Aggregation into the built-in view role.
            ("victor", &[], "GET", team, true),
            ("victor", &[], "GET", "/apis/hello.zeng.dev/v1/namespaces/team/bars/b", true),
            ("victor", &[], "DELETE", "/apis/hello.zeng.dev/v1/namespaces/team/bars/b", false),
            ("victor", &[], "GET", other, false),
            // cluster-admin and system:masters.
            ("root", &[], "DELETE", "/apis/anything/v9/widgets", true),
            ("root", &[], "GET", "/whatever", true),
            ("someone", &["system:masters"], "DELETE", other, true),
            // A binding to a missing role grants nothing.
            ("dora", &[], "GET", team, false),
        ];
        for &(name, groups, method, target, allowed) in cases {
            let (path, query) = target.split_once('?').map(|(p, q)| (p, Some(q))).unwrap_or((target, None));
            let request = RequestInfo::parse(&method.parse::<Method>().unwrap(), path, query).unwrap();
            let (decision, reason) = policy.authorize(&user(name, groups), &request);
            assert_eq!(decision == Decision::Allow, allowed, "{name} {groups:?} {method} {target}: {decision:?} {reason}");
            assert_ne!(decision, Decision::Deny, "RBAC never denies");
        }
    }

    #[test]
    fn missing_roles_are_the_reason() {
        let policy = Policy::parse(POLICY, "test").unwrap();
        let request = RequestInfo::parse(&Method::GET, "/apis/hello.zeng.dev/v1/namespaces/team/foos", None).unwrap();
        let (_, reason) = policy.authorize(&user("dora", &[]), &request);
        assert_eq!(reason, "RBAC: role.rbac.authorization.k8s.io \"missing\" not found");
        let (_, reason) = policy.authorize(&user("erin", &[]), &request);
        assert_eq!(reason, "");
    }

    #[test]
    fn builtin_policy_alone_lets_only_masters_touch_resources() {
        let policy = Policy::builtin();
        let request = RequestInfo::parse(&Method::DELETE, "/apis/hello.zeng.dev/v1/namespaces/team/foos", None).unwrap();
        assert_eq!(policy.authorize(&user("admin", &["system:masters"]), &request).0, Decision::Allow);
        assert_eq!(policy.authorize(&user("alice", &["dev"]), &request).0, Decision::NoOpinion);
    }

    #[test]
    fn every_error_is_reported_with_its_place() {
        let bad = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r}
rules:
- {apiGroups: [""], resources: [pods], verbs: []}
- {nonResourceURLs: [/x], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
subjects: [{kind: Robot, name: r2}, {kind: ServiceAccount, name: sa}]
---
apiVersion: rbac.authorization.k8s.io/v1beta1
kind: ClusterRole
metadata: {name: old}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: typo}
rules:
- {apiGroups: [""], resource: [pods], verbs: [get]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
"#;
        let err = Policy::parse(bad, "policy.yaml").unwrap_err().0;
        let expected = [
            "policy.yaml: document 1 (Role \"r\"): metadata.namespace: Required value",
            "policy.yaml: document 1 (Role \"r\"): rules[0].verbs: Required value: verbs must contain at least one value",
            "policy.yaml: document 1 (Role \"r\"): rules[1].nonResourceURLs: Invalid value: [\"/x\"]: namespaced rules cannot apply to non-resource URLs",
            "policy.yaml: document 2 (ClusterRoleBinding \"b\"): roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
            "policy.yaml: document 2 (ClusterRoleBinding \"b\"): subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
            "policy.yaml: document 2 (ClusterRoleBinding \"b\"): subjects[1].namespace: Required value",
            "policy.yaml: document 3 (ClusterRole \"old\"): apiVersion: Unsupported value: \"rbac.authorization.k8s.io/v1beta1\": supported values: \"rbac.authorization.k8s.io/v1\"",
        ];
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(&lines[..expected.len()], &expected, "{err}");
        assert!(
            lines[expected.len()].starts_with(
                "policy.yaml: document 4 (ClusterRole \"typo\"): rules[0].resource: unknown field `resource`, expected one of"
            ),
            "{err}"
        );
        assert!(
            lines[expected.len() + 1].starts_with("policy.yaml: document 5 (ConfigMap \"cm\"): kind: Unsupported value: \"ConfigMap\""),
            "{err}"
        );
        assert_eq!(lines.len(), expected.len() + 2, "{err}");
    }

    #[test]
    fn duplicates_in_the_file_are_errors_but_builtins_may_be_replaced() {
        let twice = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: a}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: a}\n";
        assert!(Policy::parse(twice, "f").unwrap_err().0.contains("Duplicate value"));
        let no_discovery =
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: \"system:discovery\"}\nrules: []\n";
        let policy = Policy::parse(no_discovery, "f").unwrap();
        let request = RequestInfo::parse(&Method::GET, "/apis", None).unwrap();
        assert_eq!(policy.authorize(&user("bob", &[]), &request).0, Decision::NoOpinion);
    }
}
