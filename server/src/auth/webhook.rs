//! Delegation to kube-apiserver, as k8s.io/apiserver's delegating authenticator and authorizer
//! do it: bearer tokens are checked with `TokenReview`s (`--authentication-kubeconfig`), and
//! requests are authorized with `SubjectAccessReview`s (`--authorization-kubeconfig`). Answers
//! are cached for a short time (errors never are), so a busy client costs one review per TTL.

use super::authz::{Attributes, Decision};
use super::client::RestClient;
use super::user::UserInfo;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries a cache holds before expired ones are dropped (and, if still full, all of them).
const CACHE_CAPACITY: usize = 10_000;

/// A small map whose entries expire.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> Default for TtlCache<K, V> {
    fn default() -> Self {
        TtlCache { entries: Mutex::new(HashMap::new()) }
    }
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// The live value for `key`.
    pub fn get(&self, key: &K) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some((expires, value)) if *expires > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for `ttl` (not at all for a zero TTL).
    pub fn insert(&self, key: K, value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_CAPACITY {
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (now + ttl, value));
    }
}

/// `--authentication-kubeconfig`: bearer tokens reviewed by kube-apiserver.
#[derive(Debug)]
pub struct TokenReviewAuthenticator {
    client: RestClient,
    ttl: Duration,
    /// Keyed by the token's SHA-256, so the cache holds no tokens.
    cache: TtlCache<[u8; 32], Option<UserInfo>>,
    reviews: AtomicU64,
}

impl TokenReviewAuthenticator {
    /// Reviews through `client`, caching answers (authenticated or not) for `ttl`.
    pub fn new(client: RestClient, ttl: Duration) -> Self {
        TokenReviewAuthenticator { client, ttl, cache: TtlCache::default(), reviews: AtomicU64::new(0) }
    }

    /// How many reviews were sent (for tests and metrics).
    pub fn reviews_sent(&self) -> u64 {
        self.reviews.load(Ordering::Relaxed)
    }

    /// The user a token belongs to; `Ok(None)` when kube-apiserver does not know it, an error
    /// when it could not be asked or explained why not.
    pub async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, String> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(answer) = self.cache.get(&key) {
            return Ok(answer);
        }
        self.reviews.fetch_add(1, Ordering::Relaxed);
        let review = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "metadata": {"creationTimestamp": null},
            "spec": {"token": token},
        });
        let (status, answer) = self.client.post_json("/apis/authentication.k8s.io/v1/tokenreviews", &review).await?;
        if !(200..300).contains(&status) {
            return Err(format!("TokenReview failed with HTTP {status}: {}", message_of(&answer)));
        }
        let result = &answer["status"];
        if result["authenticated"].as_bool() != Some(true) {
            if let Some(error) = result["error"].as_str().filter(|e| !e.is_empty()) {
                // An explained failure is not cached: it may be transient on the other side.
                return Err(error.to_string());
            }
            self.cache.insert(key, None, self.ttl);
            return Ok(None);
        }
        let user = &result["user"];
        let strings =
            |v: &Value| v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default();
        let extra: BTreeMap<String, Vec<String>> =
            user["extra"].as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), strings(v))).collect()).unwrap_or_default();
        let info = UserInfo {
            name: user["username"].as_str().unwrap_or_default().to_string(),
            uid: user["uid"].as_str().unwrap_or_default().to_string(),
            groups: strings(&user["groups"]),
            extra,
        };
        if info.name.is_empty() {
            return Err("TokenReview authenticated a token without a user name".into());
        }
        self.cache.insert(key, Some(info.clone()), self.ttl);
        Ok(Some(info))
    }
}

/// `--authorization-mode=Webhook`: every request is authorized by kube-apiserver.
#[derive(Debug)]
pub struct SubjectAccessReviewAuthorizer {
    client: RestClient,
    authorized_ttl: Duration,
    unauthorized_ttl: Duration,
    /// Keyed by the review's spec.
    cache: TtlCache<String, (Decision, String)>,
    reviews: AtomicU64,
}

impl SubjectAccessReviewAuthorizer {
    /// Reviews through `client`; allowed answers are cached for `authorized_ttl`, others for
    /// `unauthorized_ttl`.
    pub fn new(client: RestClient, authorized_ttl: Duration, unauthorized_ttl: Duration) -> Self {
        SubjectAccessReviewAuthorizer { client, authorized_ttl, unauthorized_ttl, cache: TtlCache::default(), reviews: AtomicU64::new(0) }
    }

    /// How many reviews were sent.
    pub fn reviews_sent(&self) -> u64 {
        self.reviews.load(Ordering::Relaxed)
    }

    /// Asks kube-apiserver: allowed, denied, or no opinion (with its reason).
    pub async fn authorize(&self, attributes: &Attributes<'_>) -> Result<(Decision, String), String> {
        let spec = review_spec(attributes);
        let key = spec.to_string();
        if let Some(answer) = self.cache.get(&key) {
            return Ok(answer);
        }
        self.reviews.fetch_add(1, Ordering::Relaxed);
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "metadata": {"creationTimestamp": null},
            "spec": spec,
            "status": {"allowed": false},
        });
        let (status, answer) = self.client.post_json("/apis/authorization.k8s.io/v1/subjectaccessreviews", &review).await?;
        if !(200..300).contains(&status) {
            return Err(format!("SubjectAccessReview failed with HTTP {status}: {}", message_of(&answer)));
        }
        let result = &answer["status"];
        let reason = result["reason"].as_str().unwrap_or_default().to_string();
        if let Some(error) = result["evaluationError"].as_str().filter(|e| !e.is_empty()) {
            tracing::debug!(%error, "SubjectAccessReview evaluation error");
        }
        let decision = if result["allowed"].as_bool() == Some(true) {
            Decision::Allow
        } else if result["denied"].as_bool() == Some(true) {
            Decision::Deny
        } else {
            Decision::NoOpinion
        };
        let ttl = if decision == Decision::Allow { self.authorized_ttl } else { self.unauthorized_ttl };
        self.cache.insert(key, (decision, reason.clone()), ttl);
        Ok((decision, reason))
    }
}

/// A `SubjectAccessReviewSpec` for the request, empty fields left out as kube does.
pub fn review_spec(attributes: &Attributes<'_>) -> Value {
    let (user, request) = (attributes.user, attributes.request);
    let mut spec = Map::new();
    let put = |map: &mut Map<String, Value>, key: &str, value: &str| {
        if !value.is_empty() {
            map.insert(key.to_string(), Value::String(value.to_string()));
        }
    };
    if request.is_resource_request {
        let mut resource = Map::new();
        put(&mut resource, "namespace", &request.namespace);
        put(&mut resource, "verb", &request.verb);
        put(&mut resource, "group", &request.api_group);
        put(&mut resource, "version", &request.api_version);
        put(&mut resource, "resource", &request.resource);
        put(&mut resource, "subresource", &request.subresource);
        put(&mut resource, "name", &request.name);
        spec.insert("resourceAttributes".into(), Value::Object(resource));
    } else {
        let mut non_resource = Map::new();
        put(&mut non_resource, "path", &request.path);
        put(&mut non_resource, "verb", &request.verb);
        spec.insert("nonResourceAttributes".into(), Value::Object(non_resource));
    }
    put(&mut spec, "user", &user.name);
    if !user.groups.is_empty() {
        spec.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        spec.insert("extra".into(), json!(user.extra));
    }
    put(&mut spec, "uid", &user.uid);
    Value::Object(spec)
}

fn message_of(answer: &Value) -> String {
    answer["message"].as_str().map(str::to_string).unwrap_or_else(|| answer.to_string().chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::requestinfo::RequestInfo;

    #[test]
    fn cache_entries_expire() {
        let cache: TtlCache<&str, u32> = TtlCache::default();
        cache.insert("a", 1, Duration::from_millis(30));
        cache.insert("b", 2, Duration::ZERO);
        assert_eq!(cache.get(&"a"), Some(1));
        assert_eq!(cache.get(&"b"), None);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&"a"), None);
    }

    #[test]
    fn review_specs_match_kube() {
        let mut user = UserInfo::new("alice", ["dev", "system:authenticated"]);
        user.extra.insert("scopes".into(), vec!["a".into()]);
        let request = RequestInfo::parse(&http::Method::GET, "/apis/hello.zeng.dev/v1/namespaces/default/foos/x/status", None).unwrap();
        let spec = review_spec(&Attributes { user: &user, request: &request });
        assert_eq!(
            spec,
            json!({
                "resourceAttributes": {"namespace": "default", "verb": "get", "group": "hello.zeng.dev", "version": "v1", "resource": "foos", "subresource": "status", "name": "x"},
                "user": "alice", "groups": ["dev", "system:authenticated"], "extra": {"scopes": ["a"]}
            })
        );
        let request = RequestInfo::parse(&http::Method::GET, "/version", None).unwrap();
        let spec = review_spec(&Attributes { user: &UserInfo::new("bob", Vec::<String>::new()), request: &request });
        assert_eq!(spec, json!({"nonResourceAttributes": {"path": "/version", "verb": "get"}, "user": "bob"}));
    }
}
