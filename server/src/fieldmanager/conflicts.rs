//! Apply conflicts: fields the applier would change that another manager owns, and the
//! `409 Conflict` Status kube-apiserver answers with, one cause per field.

use super::fieldset::FieldSet;
use super::managed::ManagerId;
use super::path::{path_string, Path};
use crate::http::{status::Cause, status::Details, ApiError};

/// One field another manager owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The owner.
    pub manager: ManagerId,
    /// The field.
    pub path: Path,
}

/// All conflicts of one apply, grouped by manager (in identifier order), each manager's fields
/// in set order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conflicts(pub Vec<Conflict>);

impl Conflicts {
    /// Conflicts from each manager's conflicting fields.
    pub fn from_sets(mut sets: Vec<(ManagerId, FieldSet)>) -> Self {
        sets.sort_by_cached_key(|(id, _)| id.identifier());
        let conflicts = sets
            .into_iter()
            .flat_map(|(manager, set)| set.paths().into_iter().map(move |path| Conflict { manager: manager.clone(), path }))
            .collect();
        Conflicts(conflicts)
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The conflicting fields.
    pub fn fields(&self) -> FieldSet {
        FieldSet::from_paths(self.0.iter().map(|c| c.path.as_slice()))
    }

    /// The conflicts whose field is not in `allowed`.
    pub fn without(&self, allowed: &FieldSet) -> Conflicts {
        Conflicts(self.0.iter().filter(|c| !allowed.has(&c.path)).cloned().collect())
    }

    /// The message kube-apiserver words: one line for a single conflict, else a list per
    /// manager.
    pub fn message(&self) -> String {
        if let [one] = self.0.as_slice() {
            return format!("Apply failed with 1 conflict: conflict with {}: {}", one.manager.describe(), path_string(&one.path));
        }
        let mut lines: Vec<String> = Vec::new();
        let mut current: Option<&ManagerId> = None;
        for c in &self.0 {
            if current != Some(&c.manager) {
                lines.push(format!("conflicts with {}:", c.manager.describe()));
                current = Some(&c.manager);
            }
            lines.push(format!("- {}", path_string(&c.path)));
        }
        format!("Apply failed with {} conflicts: {}", self.0.len(), lines.join("\n"))
    }

    /// The `409 Conflict` Status.
    pub fn to_api_error(&self) -> ApiError {
        let causes = self
            .0
            .iter()
            .map(|c| Cause {
                reason: "FieldManagerConflict".into(),
                message: format!("conflict with {}", c.manager.describe()),
                field: path_string(&c.path),
            })
            .collect();
        ApiError::new(409, "Conflict", self.message()).with_details(Details { causes, ..Details::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::super::path::PathElement;
    use super::*;

    fn set(paths: &[&[&str]]) -> FieldSet {
        let paths: Vec<Path> = paths.iter().map(|p| p.iter().map(|n| PathElement::Field(n.to_string())).collect()).collect();
        FieldSet::from_paths(paths.iter().map(|p| p.as_slice()))
    }

    #[test]
    fn one_conflict_as_kube_words_it() {
        let conflicts = Conflicts::from_sets(vec![(ManagerId::apply("manager-a", ""), set(&[&["spec", "msg"]]))]);
        let body = conflicts.to_api_error().to_json();
        let want = serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Apply failed with 1 conflict: conflict with \"manager-a\": .spec.msg","reason":"Conflict","details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"manager-a\"","field":".spec.msg"}]},"code":409});
        assert_eq!(body, want);
    }

    #[test]
    fn many_conflicts_are_grouped_by_manager() {
        let conflicts = Conflicts::from_sets(vec![
            (ManagerId::update("kubectl-edit", "g/v1", ""), set(&[&["spec", "b"]])),
            (ManagerId::apply("alpha", ""), set(&[&["spec", "a"], &["spec", "c"]])),
        ]);
        assert_eq!(conflicts.message(), "Apply failed with 3 conflicts: conflicts with \"alpha\":\n- .spec.a\n- .spec.c\nconflicts with \"kubectl-edit\" using g/v1:\n- .spec.b");
        assert_eq!(conflicts.without(&set(&[&["spec", "a"]])).0.len(), 2);
    }
}
