//! The validated resource model: what `spec/` says, after codegen has parsed and checked it.
//!
//! `codegen` builds a [`Model`] from the CustomResourceDefinition documents in `spec/` and every
//! generator reads only this model. The same types are embedded (as JSON) in the `generated`
//! crate, so the server reads exactly the facts the generators used — nothing is re-derived.
//!
//! ```
//! use apimodel::{Model, Scope};
//! let model: Model = serde_json::from_str(r#"{"resources":[]}"#).unwrap();
//! assert!(model.resources.is_empty());
//! assert_eq!(Scope::Namespaced.as_str(), "Namespaced");
//! ```

pub mod schema;

pub use schema::{ListType, MapType, Schema, SchemaKind, ValidationRule};
use serde::{Deserialize, Serialize};

/// Every resource the spec declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Model {
    /// One entry per CustomResourceDefinition, in a stable order (group, then plural).
    pub resources: Vec<Resource>,
}

/// One resource (a CustomResourceDefinition) with all of its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// API group, e.g. `hello.zeng.dev`.
    pub group: String,
    /// Names the resource is known by.
    pub names: Names,
    /// Namespaced or cluster-wide.
    pub scope: Scope,
    /// Versions in the order the spec lists them.
    pub versions: Vec<Version>,
    /// The spec file this resource came from, relative to the spec directory.
    pub source: String,
}

/// Names of a resource, as in a CRD's `spec.names`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Names {
    /// Lower-case plural used in URLs (`foos`).
    pub plural: String,
    /// Lower-case singular (`foo`).
    pub singular: String,
    /// CamelCase kind (`Foo`).
    pub kind: String,
    /// CamelCase kind of lists (`FooList`).
    pub list_kind: String,
    /// Short names for kubectl (`fo`).
    pub short_names: Vec<String>,
    /// Categories such as `all`.
    pub categories: Vec<String>,
}

/// Whether objects live in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Objects live in a namespace.
    Namespaced,
    /// Objects are cluster-wide.
    Cluster,
}

impl Scope {
    /// The spelling used in CRDs and discovery.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Namespaced => "Namespaced",
            Scope::Cluster => "Cluster",
        }
    }
}

/// One version of a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// Version name (`v1`, `v1beta1`).
    pub name: String,
    /// Whether the version is served over HTTP.
    pub served: bool,
    /// Whether objects are stored in this version (exactly one per resource).
    pub storage: bool,
    /// Whether the version is deprecated.
    pub deprecated: bool,
    /// The warning sent to clients of a deprecated version, if the spec overrides the default.
    pub deprecation_warning: Option<String>,
    /// The structural schema of the whole object.
    pub schema: Schema,
    /// Subresources this version serves.
    pub subresources: Subresources,
    /// `additionalPrinterColumns`, in spec order.
    pub printer_columns: Vec<PrinterColumn>,
    /// `selectableFields` JSON paths (e.g. `.spec.color`).
    pub selectable_fields: Vec<String>,
}

/// Subresources declared for a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Subresources {
    /// `/status` is served and `.status` is ignored on the main resource.
    pub status: bool,
    /// `/scale`, when declared.
    pub scale: Option<Scale>,
}

/// The `/scale` subresource mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scale {
    /// JSON path of the desired replicas, e.g. `.spec.replicas`.
    pub spec_replicas_path: String,
    /// JSON path of the observed replicas, e.g. `.status.replicas`.
    pub status_replicas_path: String,
    /// JSON path of the label selector string, if any.
    pub label_selector_path: Option<String>,
}

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrinterColumn {
    /// Column header (`Message`).
    pub name: String,
    /// OpenAPI type of the column: string, integer, number, boolean or date.
    pub column_type: String,
    /// OpenAPI format hint, empty if none.
    pub format: String,
    /// Human description; empty means kube-apiserver's default wording.
    pub description: String,
    /// 0 = always shown, higher = only with `-o wide`.
    pub priority: i32,
    /// The simple JSON path the cell is read from (`.spec.msg`).
    pub json_path: String,
}

impl Model {
    /// Finds a resource by group and plural name.
    pub fn resource(&self, group: &str, plural: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.group == group && r.names.plural == plural)
    }

    /// API groups in the order discovery lists them (sorted by name, each listed once).
    pub fn groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = self.resources.iter().map(|r| r.group.as_str()).collect();
        groups.sort();
        groups.dedup();
        groups
    }

    /// Served versions of a group, highest priority first (Kubernetes version ordering).
    pub fn group_versions(&self, group: &str) -> Vec<&str> {
        let mut versions: Vec<&str> = self
            .resources
            .iter()
            .filter(|r| r.group == group)
            .flat_map(|r| r.versions.iter().filter(|v| v.served).map(|v| v.name.as_str()))
            .collect();
        versions.sort_by(|a, b| version_priority(a).cmp(&version_priority(b)).then(a.cmp(b)));
        versions.dedup();
        versions
    }

    /// Resources of a group that serve the given version.
    pub fn resources_in(&self, group: &str, version: &str) -> Vec<(&Resource, &Version)> {
        self.resources.iter().filter(|r| r.group == group).filter_map(|r| r.served_version(version).map(|v| (r, v))).collect()
    }
}

impl Resource {
    /// The version objects are stored in.
    pub fn storage_version(&self) -> &Version {
        self.versions.iter().find(|v| v.storage).expect("the model guarantees exactly one storage version")
    }

    /// A served version by name.
    pub fn served_version(&self, name: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.served && v.name == name)
    }

    /// `plural.group`, the name of the CRD and of the resource in Status messages.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.names.plural, self.group)
    }

    /// Whether objects live in namespaces.
    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }
}

/// Sort key of a Kubernetes version string: GA before beta before alpha, higher numbers first,
/// then versions that do not follow the `vNalphaM` pattern. Mirrors kube's version priority.
pub fn version_priority(version: &str) -> (u8, i64, i64) {
    let parsed = (|| {
        let rest = version.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() || digits.starts_with('0') {
            return None;
        }
        let major: i64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((0u8, -major, 0i64));
        }
        for (level, word) in [(1u8, "beta"), (2u8, "alpha")] {
            if let Some(n) = tail.strip_prefix(word) {
                if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && !n.starts_with('0') {
                    return Some((level, -major, -(n.parse::<i64>().ok()?)));
                }
            }
        }
        None
    })();
    parsed.unwrap_or((3, 0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_priority_orders_like_kubernetes() {
        let mut versions = vec!["v1alpha1", "foo1", "v2", "v1beta1", "v1", "v11alpha2", "v10beta3", "v12alpha1"];
        versions.sort_by(|a, b| version_priority(a).cmp(&version_priority(b)).then(a.cmp(b)));
        assert_eq!(versions, vec!["v2", "v1", "v10beta3", "v1beta1", "v12alpha1", "v11alpha2", "v1alpha1", "foo1"]);
    }
}
