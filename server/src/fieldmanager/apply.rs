//! The structured merge: recording which manager changed what on an ordinary write, and
//! applying a configuration (merge it in, drop what the applier stopped declaring, check
//! ownership).
//!
//! Ownership moves with changes: whoever changes or removes a field takes it from its previous
//! owners. An ordinary write always may (it was explicit about the values). An apply may only
//! with `force`; otherwise those fields are conflicts. Two appliers that set a field to the same
//! value share it, since nothing changed.

use super::conflicts::Conflicts;
use super::fieldset::FieldSet;
use super::managed::{Entry, ManagedFields, ManagerId};
use super::schema::Type;
use super::typed::{self, Comparison};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Merges and tracks ownership for one resource version.
pub struct Updater<'a> {
    /// The object's type.
    pub ty: Type<'a>,
    /// The version written through (`group/version`).
    pub version: &'a str,
    /// Fields this endpoint may not own (`status` on the main resource when there is a status
    /// subresource, `spec` on the status subresource).
    pub ignored: &'a FieldSet,
    /// Fields nobody owns (identity and server-set metadata).
    pub unowned: &'a FieldSet,
}

impl Updater<'_> {
    /// Compares `live` and `new` and takes every changed or removed field away from the other
    /// managers (all of them but `writer`). Without `force`, changed fields another manager
    /// owns are conflicts instead.
    fn take_ownership(
        &self,
        live: &Value,
        new: &Value,
        managers: &mut ManagedFields,
        writer: Option<&ManagerId>,
        force: bool,
    ) -> Result<Comparison, Conflicts> {
        let mut comparison = typed::compare(Some(live), Some(new), self.ty);
        comparison.exclude(self.ignored);
        let changed = comparison.changed();
        let mut conflicts = Vec::new();
        for (id, entry) in managers.iter() {
            if Some(id) == writer {
                continue;
            }
            let taken = entry.set.intersection(&changed);
            if !taken.is_empty() {
                conflicts.push((id.clone(), taken));
            }
        }
        if !force && !conflicts.is_empty() {
            return Err(Conflicts::from_sets(conflicts));
        }
        for (id, entry) in managers.iter_mut() {
            if Some(id) == writer {
                continue;
            }
            // Plain (not recursive) differences: a removed map entry leaves the owner of the
            // map owning the map.
            entry.set = entry.set.difference(&changed).difference(&comparison.removed);
        }
        managers.drop_empty();
        Ok(comparison)
    }

    /// Records an ordinary write by `manager`: it now owns every field it added or changed, in
    /// addition to what it owned, and others lose what it changed or removed. The entry's time
    /// moves only when the write changed something the manager can own.
    pub fn record_update(&self, live: &Value, new: &Value, managers: &mut ManagedFields, manager: &ManagerId, now: DateTime<Utc>) {
        let comparison = self.take_ownership(live, new, managers, None, true).expect("forced writes have no conflicts");
        let set = comparison.changed().recursive_difference(self.ignored).difference(self.unowned);
        if set.is_empty() {
            return;
        }
        let merged = match managers.get(manager) {
            Some(previous) => previous.set.union(&set),
            None => set,
        };
        managers.insert(manager.clone(), Entry { set: merged, api_version: self.version.to_string(), time: Some(now) });
    }

    /// Applies `config` as `manager` on `live`. The manager's fields become exactly those of the
    /// configuration; fields it applied before and no longer does are removed from the object,
    /// unless another manager owns them. Returns the new object, or `None` when nothing but
    /// ownership changed. The manager's entry time is left to the caller.
    pub fn apply(
        &self,
        live: &Value,
        config: &Value,
        managers: &mut ManagedFields,
        manager: &ManagerId,
        force: bool,
    ) -> Result<Option<Value>, Conflicts> {
        let merged = typed::merge(Some(live), Some(config), self.ty).unwrap_or_else(|| Value::Object(Default::default()));
        let last = managers.get(manager).map(|e| e.set.clone());
        let set = typed::field_set(config, self.ty).recursive_difference(self.ignored);
        let time = managers.get(manager).and_then(|e| e.time);
        managers.insert(manager.clone(), Entry { set, api_version: self.version.to_string(), time });
        let merged = match last {
            Some(last) if !last.is_empty() => self.prune(merged, managers, &last),
            _ => merged,
        };
        self.take_ownership(live, &merged, managers, Some(manager), force)?;
        // Identity metadata is nobody's, appliers included.
        if let Some(entry) = managers.get_mut(manager) {
            entry.set = entry.set.difference(self.unowned);
            if entry.set.is_empty() {
                managers.remove(manager);
            }
        }
        Ok((!super::path::values_equal(live, &merged)).then_some(merged))
    }

    /// Removes from `merged` what the applier applied last time (`last`) and not this time,
    /// keeping what any manager (the applier's new configuration included) still owns, and
    /// what the applier never owned.
    fn prune(&self, merged: Value, managers: &ManagedFields, last: &FieldSet) -> Value {
        let ty = self.ty;
        let named = |set: &FieldSet| typed::with_named_parents(set, ty);
        let last = named(last);
        let pruned = typed::remove_fields(&merged, &last, ty);
        let merged_set = named(&typed::field_set(&merged, ty));
        // Put back what someone owns.
        let owned = managers.iter().fold(FieldSet::new(), |acc, (_, e)| acc.union(&e.set));
        let keep = named(&typed::field_set(&pruned, ty)).union(&named(&owned));
        let pruned = typed::remove_fields(&merged, &merged_set.difference(&keep), ty);
        // Put back what was removed without having been the applier's (identity metadata,
        // fields of updaters that were never applied).
        let pruned_set = named(&typed::field_set(&pruned, ty));
        typed::remove_fields(&merged, &merged_set.difference(&pruned_set).intersection(&last), ty)
    }
}
