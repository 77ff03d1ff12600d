//! Sets of field paths, the unit of ownership, and their FieldsV1 encoding.
//!
//! A set is a tree: at each level, `members` are the elements whose path is in the set, and
//! `children` the elements under which deeper paths are. A path can be both a member and have
//! children: a map that one manager created (`f:labels` with `.`) and whose keys it also set.
//!
//! FieldsV1 writes each level as a JSON object keyed by element (`f:name`, `k:{…}`, `v:…`,
//! `i:N`); a member is `{}`, a member with children carries `".": {}` beside them.

use super::path::{Path, PathElement};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A set of paths. Empty children are never kept, so two equal sets are structurally equal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        FieldSet::default()
    }

    /// A set of the given paths.
    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a [PathElement]>) -> Self {
        let mut set = FieldSet::new();
        for p in paths {
            set.insert(p);
        }
        set
    }

    /// Whether the set has no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds a path (the empty path is ignored: the root is never owned).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether the path is in the set.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Whether `pe` is a member at this level.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    /// The paths under `pe` (relative to it); empty when there are none.
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    /// Members at this level.
    pub fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    /// Children at this level.
    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    /// Adds `pe` as a member at this level.
    pub fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    /// Sets the paths under `pe`, dropping them when empty.
    pub fn set_child(&mut self, pe: PathElement, child: FieldSet) {
        if child.is_empty() {
            self.children.remove(&pe);
        } else {
            self.children.insert(pe, child);
        }
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.intersection(&other.members).cloned().collect();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                out.set_child(pe.clone(), child.intersection(theirs));
            }
        }
        out
    }

    /// Paths of `self` that are not in `other`. Removing a path leaves the paths below it.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, child) in &self.children {
            match other.children.get(pe) {
                Some(theirs) => out.set_child(pe.clone(), child.difference(theirs)),
                None => out.set_child(pe.clone(), child.clone()),
            }
        }
        out
    }

    /// Paths of `self` that are neither in `other` nor below one of its paths.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            match other.children.get(pe) {
                Some(theirs) => out.set_child(pe.clone(), child.recursive_difference(theirs)),
                None => out.set_child(pe.clone(), child.clone()),
            }
        }
        out
    }

    /// Every path, members of a level before the paths below it, each group in element order
    /// (the order conflicts are reported in).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for pe in &self.members {
            let mut p = prefix.clone();
            p.push(pe.clone());
            out.push(p);
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Reads a FieldsV1 object.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, String> {
        Ok(Self::read_level(value)?.0)
    }

    /// One level: the set below it, and whether the level's own path is a member (`"."`, or
    /// nothing below it at all).
    fn read_level(value: &Value) -> Result<(FieldSet, bool), String> {
        let Value::Object(map) = value else {
            return Err(format!("expected an object in fieldsV1, found {value}"));
        };
        let mut set = FieldSet::new();
        let mut dot = false;
        for (key, child) in map {
            if key == "." {
                dot = true;
                continue;
            }
            let Some(pe) = PathElement::from_fields_key(key)? else {
                continue;
            };
            let (below, member) = Self::read_level(child)?;
            if member {
                set.members.insert(pe.clone());
            }
            set.set_child(pe, below);
        }
        let member = dot || set.is_empty();
        Ok((set, member))
    }

    /// Writes the set as a FieldsV1 object, keys sorted as kube-apiserver writes custom
    /// resources.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.write_level(false))
    }

    fn write_level(&self, include_self: bool) -> Map<String, Value> {
        let mut entries: Vec<(String, Value)> = Vec::new();
        if include_self && !self.is_empty() {
            entries.push((".".into(), Value::Object(Map::new())));
        }
        for pe in &self.members {
            if !self.children.contains_key(pe) {
                entries.push((pe.to_fields_key(), Value::Object(Map::new())));
            }
        }
        for (pe, child) in &self.children {
            entries.push((pe.to_fields_key(), Value::Object(child.write_level(self.members.contains(pe)))));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    fn set(paths: &[&[&str]]) -> FieldSet {
        let paths: Vec<Path> = paths.iter().map(|p| p.iter().map(|n| f(n)).collect()).collect();
        FieldSet::from_paths(paths.iter().map(|p| p.as_slice()))
    }

    #[test]
    fn fields_v1_round_trip() {
        let fields = json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}}, "f:spec": {".": {}, "f:msg": {}, "f:ports": {"k:{\"port\":80}": {".": {}, "f:port": {}}}}});
        let s = FieldSet::from_fields_v1(&fields).unwrap();
        assert!(s.has(&[f("spec")]));
        assert!(!s.has(&[f("metadata")]));
        assert!(s.has(&[f("metadata"), f("labels"), f("a")]));
        assert_eq!(s.to_fields_v1(), fields);
        assert!(FieldSet::from_fields_v1(&json!({"f:spec": 1})).is_err());
        // A key of an unknown kind is skipped; what is left of its level is a member.
        assert_eq!(FieldSet::from_fields_v1(&json!({"f:a": {"x:y": {}}})).unwrap(), set(&[&["a"]]));
    }

    #[test]
    fn set_algebra() {
        let a = set(&[&["spec"], &["spec", "a"], &["spec", "b"]]);
        let b = set(&[&["spec", "b"], &["spec", "c"]]);
        assert_eq!(a.union(&b), set(&[&["spec"], &["spec", "a"], &["spec", "b"], &["spec", "c"]]));
        assert_eq!(a.intersection(&b), set(&[&["spec", "b"]]));
        assert_eq!(a.difference(&b), set(&[&["spec"], &["spec", "a"]]));
        // Removing `spec` itself leaves what is below it, unless the difference is recursive.
        assert_eq!(a.difference(&set(&[&["spec"]])), set(&[&["spec", "a"], &["spec", "b"]]));
        assert!(a.recursive_difference(&set(&[&["spec"]])).is_empty());
        let order: Vec<String> = a.paths().iter().map(|p| super::super::path::path_string(p)).collect();
        assert_eq!(order, [".spec", ".spec.a", ".spec.b"]);
    }
}
