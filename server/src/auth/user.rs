//! Who is asking: the identity every authenticator produces and every authorizer reads, as
//! k8s.io/apiserver's `user.Info`.

use std::collections::BTreeMap;

/// The user name of requests without credentials, when anonymous requests are enabled.
pub const ANONYMOUS: &str = "system:anonymous";
/// The group of every authenticated user.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// The group of the anonymous user.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group that every authorization mode allows everything (kube's `SystemPrivilegedGroup`).
pub const SYSTEM_MASTERS: &str = "system:masters";
/// The user name prefix of service accounts: `system:serviceaccount:<namespace>:<name>`.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// An authenticated (or anonymous) user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name, unique among users.
    pub name: String,
    /// A unique id that changes when a user of the same name is recreated; often empty.
    pub uid: String,
    /// The groups the user belongs to.
    pub groups: Vec<String>,
    /// Extra attributes the authenticator provided (scopes, credential ids, …).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with a name and groups.
    pub fn new(name: impl Into<String>, groups: impl IntoIterator<Item = impl Into<String>>) -> Self {
        UserInfo { name: name.into(), groups: groups.into_iter().map(Into::into).collect(), ..UserInfo::default() }
    }

    /// The anonymous user: `system:anonymous` in `system:unauthenticated`.
    pub fn anonymous() -> Self {
        UserInfo::new(ANONYMOUS, [ALL_UNAUTHENTICATED])
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Adds `system:authenticated` unless the user is anonymous or already carries
    /// `system:authenticated` or `system:unauthenticated` (kube's `AuthenticatedGroupAdder`).
    pub fn with_authenticated_group(mut self) -> Self {
        if self.name != ANONYMOUS && !self.in_group(ALL_AUTHENTICATED) && !self.in_group(ALL_UNAUTHENTICATED) {
            self.groups.push(ALL_AUTHENTICATED.to_string());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticated_group_is_added_once_and_never_to_anonymous() {
        let alice = UserInfo::new("alice", ["dev"]).with_authenticated_group();
        assert_eq!(alice.groups, ["dev", ALL_AUTHENTICATED]);
        assert_eq!(alice.clone().with_authenticated_group(), alice);
        assert_eq!(UserInfo::anonymous().with_authenticated_group().groups, [ALL_UNAUTHENTICATED]);
    }
}
