//! `x-kubernetes-validations`: the CEL rules of a schema, evaluated on create and update as
//! kube-apiserver's apiextensions `cel.Validator` does (Kubernetes 1.33 wording).
//!
//! - Each rule runs with `self` bound to the value at its schema node (skipped where that value
//!   is null or absent); rules under `items` and `additionalProperties` run once per element.
//! - Transition rules (those reading `oldSelf`) run only on update and only where the old
//!   object has a correlated value: the same property or map key, or for `listType: map` lists
//!   the item with the same keys. `optionalOldSelf: true` runs them anyway, with `oldSelf` an
//!   optional.
//! - A failure is a field error at the node's path (plus `fieldPath`), reason
//!   `FieldValueInvalid` or the rule's `reason`, message from `messageExpression`, `message`, or
//!   `failed rule: <rule>`. On update, failures of non-transition rules on values that did not
//!   change are warnings instead (validation ratcheting).
//! - Evaluation is bounded by an estimated cost (see [`PER_CALL_LIMIT`]), as kube bounds it by
//!   its runtime cost, and the rules do not run when the object already failed schema validation
//!   in a way that makes them unreliable.
//!
//! Programs are compiled once per expression text and shared (see `program`); the environment
//! (standard library, extensions and Kubernetes' libraries) is built once (see `env`).

mod env;
mod library;
mod program;
mod quantity;
mod url;
mod value;

use crate::http::{FieldError, FieldErrorKind};
use apimodel::{ListType, Schema, SchemaKind};
use cel::common::types::CelOptional;
use cel::{Context, ExecutionError};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The most one evaluation may cost (kube's `PerCallLimit`). Costs are estimated before
/// evaluating: the size of the expression times the size of the data it can loop over, raised to
/// the depth of its nested loops.
pub const PER_CALL_LIMIT: f64 = 1_000_000.0;

/// The most all the rules of one write may cost together (kube's `RuntimeCELCostBudget`).
pub const COST_BUDGET: f64 = 10_000_000.0;

/// kube's limit on an evaluated messageExpression (`MaxEvaluatedMessageExpressionSizeBytes`).
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// What the rules found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Failed rules (HTTP 422).
    pub errors: Vec<FieldError>,
    /// Failures on unchanged values of an update, reported as `Warning` headers instead.
    pub warnings: Vec<String>,
}

/// Evaluates the rules of `schema` over `object`; `old` is the stored object on update. `prior`
/// holds the errors schema validation found: some of them keep the rules from running, as in
/// kube-apiserver.
pub fn validate(schema: &Schema, object: &Value, old: Option<&Value>, prior: &[FieldError]) -> Outcome {
    validate_within(schema, object, old, prior, COST_BUDGET)
}

/// [`validate`] with a total cost budget.
fn validate_within(schema: &Schema, object: &Value, old: Option<&Value>, prior: &[FieldError], budget: f64) -> Outcome {
    let mut outcome = Outcome::default();
    if !has_rules(schema) {
        return outcome;
    }
    if prior.iter().any(|e| blocks_rules(e.kind)) {
        outcome.errors.push(FieldError::new(
            FieldErrorKind::Invalid,
            ROOT,
            Some("\"null\"".into()),
            "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
        ));
        return outcome;
    }
    let mut walker = Walker { remaining: budget, stopped: false, outcome };
    let ratchet = Ratchet { current: old.map(|o| (object, o)), parent: None };
    walker.node(schema, object, old, &Path::Root, true, ratchet);
    walker.outcome
}

/// Field errors of these kinds leave an object too broken for its rules (kube's
/// `hasBlockingErr`).
fn blocks_rules(kind: FieldErrorKind) -> bool {
    matches!(
        kind,
        FieldErrorKind::NotSupported
            | FieldErrorKind::Required
            | FieldErrorKind::TooLong
            | FieldErrorKind::TooMany
            | FieldErrorKind::TypeInvalid
    )
}

/// Whether any node of `schema` has rules.
pub fn has_rules(schema: &Schema) -> bool {
    !schema.validations.is_empty()
        || match &schema.kind {
            SchemaKind::Object { properties, additional_properties, .. } => {
                properties.values().any(has_rules) || additional_properties.as_deref().is_some_and(has_rules)
            }
            SchemaKind::Array { items, .. } => has_rules(items),
            _ => false,
        }
}

/// How kube renders the path of the resource root (a nil `field.Path`).
const ROOT: &str = "<nil>";

/// A field path as kube's `field.Path` renders it.
#[derive(Debug, Clone)]
enum Path {
    Root,
    At(String),
}

impl Path {
    fn render(&self) -> String {
        match self {
            Path::Root => ROOT.to_string(),
            Path::At(p) => p.clone(),
        }
    }

    fn child(&self, name: &str) -> Path {
        match self {
            Path::Root => Path::At(name.to_string()),
            Path::At(p) => Path::At(format!("{p}.{name}")),
        }
    }

    fn index(&self, i: usize) -> Path {
        match self {
            Path::Root => Path::At(format!("[{i}]")),
            Path::At(p) => Path::At(format!("{p}[{i}]")),
        }
    }

    fn key(&self, k: &str) -> Path {
        match self {
            Path::Root => Path::At(format!("[{k}]")),
            Path::At(p) => Path::At(format!("{p}[{k}]")),
        }
    }
}

/// The old and new values of a node that could be correlated, for ratcheting: kube's
/// `CorrelatedObject`, current and nearest correlated ancestor.
#[derive(Clone, Copy)]
struct Ratchet<'a> {
    current: Option<(&'a Value, &'a Value)>,
    parent: Option<(&'a Value, &'a Value)>,
}

impl<'a> Ratchet<'a> {
    const NONE: Ratchet<'static> = Ratchet { current: None, parent: None };

    /// Whether errors at this node are only warnings: its value (or, if it cannot be
    /// correlated, its nearest correlated ancestor's) did not change.
    fn unchanged(&self) -> bool {
        match (self.current, self.parent) {
            (Some((new, old)), _) | (None, Some((new, old))) => new == old,
            (None, None) => false,
        }
    }

    fn key(self, field: &str) -> Ratchet<'a> {
        let Some((new, old)) = self.current else { return self };
        if self.parent.is_none() && (field == "apiVersion" || field == "kind") {
            return Ratchet::NONE;
        }
        let pair = match (new.get(field), old.get(field)) {
            (Some(n), Some(o)) if new.is_object() && old.is_object() => Some((n, o)),
            _ => None,
        };
        Ratchet { current: pair, parent: Some((new, old)) }
    }

    fn index(self, new_item: &'a Value, old_item: Option<&'a Value>) -> Ratchet<'a> {
        let Some(current) = self.current else { return self };
        Ratchet { current: old_item.map(|o| (new_item, o)), parent: Some(current) }
    }
}

struct Walker {
    remaining: f64,
    stopped: bool,
    outcome: Outcome,
}

impl Walker {
    fn node(&mut self, schema: &Schema, value: &Value, old: Option<&Value>, path: &Path, resource: bool, ratchet: Ratchet<'_>) {
        if self.stopped || value.is_null() {
            return;
        }
        let old = old.filter(|o| !o.is_null());
        if !schema.validations.is_empty() {
            self.rules(schema, value, old, path, resource, ratchet);
            if self.stopped {
                return;
            }
        }
        match &schema.kind {
            SchemaKind::Object { properties, additional_properties, .. } => {
                let Value::Object(map) = value else { return };
                let old_map = old.and_then(Value::as_object);
                for (k, v) in map {
                    let (child, child_path) = match additional_properties {
                        Some(values) => (&**values, path.key(k)),
                        None => match properties.get(k) {
                            Some(child)
                                if value::exposed(child) && (!resource || !matches!(k.as_str(), "apiVersion" | "kind" | "metadata")) =>
                            {
                                (child, path.child(k))
                            }
                            _ => continue,
                        },
                    };
                    if !has_rules(child) {
                        continue;
                    }
                    let old_v = old_map.and_then(|m| m.get(k));
                    self.node(child, v, old_v, &child_path, embedded(child), ratchet.key(k));
                }
            }
            SchemaKind::Array { items, list_type, list_map_keys } => {
                let Value::Array(list) = value else { return };
                if !has_rules(items) || !value::exposed(items) {
                    return;
                }
                // Only `listType: map` items correlate with old ones (by their keys).
                let old_items: HashMap<String, &Value> = match (list_type, old.and_then(Value::as_array)) {
                    (Some(ListType::Map), Some(old_list)) => old_list.iter().map(|item| (map_key(item, list_map_keys), item)).collect(),
                    _ => HashMap::new(),
                };
                for (i, item) in list.iter().enumerate() {
                    let old_item = if old_items.is_empty() { None } else { old_items.get(&map_key(item, list_map_keys)).copied() };
                    self.node(items, item, old_item, &path.index(i), embedded(items), ratchet.index(item, old_item));
                    if self.stopped {
                        return;
                    }
                }
            }
            SchemaKind::String
            | SchemaKind::Integer
            | SchemaKind::Number
            | SchemaKind::Boolean
            | SchemaKind::IntOrString
            | SchemaKind::Any { .. } => {}
        }
    }

    /// Runs the rules of one node.
    fn rules(&mut self, schema: &Schema, value: &Value, old: Option<&Value>, path: &Path, resource: bool, ratchet: Ratchet<'_>) {
        if !value::exposed(schema) {
            return; // kube cannot type untyped nodes for CEL and skips their rules
        }
        let shown = Some(format!("{:?}", value::type_name(schema)));
        let invalid = |detail: String| FieldError::new(FieldErrorKind::Invalid, path.render(), shown.clone(), detail);
        if self.remaining <= 0.0 {
            self.outcome
                .errors
                .push(invalid("validation failed due to running out of cost budget, no further validation rules will be run".into()));
            self.stopped = true;
            return;
        }
        let data_size = DataSize::of(value).plus(old.map(DataSize::of));
        let env = env::env();
        let self_val = value::to_val(value, schema, resource);
        let old_val = old.map(|o| value::to_val(o, schema, resource));
        let mut activation = Context::with_env(Arc::clone(env));
        activation.add_variable_as_val("self", self_val.clone());
        if let Some(o) = &old_val {
            activation.add_variable_as_val("oldSelf", o.clone());
        }
        let mut optional_activation: Option<Context<'_, '_>> = None;
        for rule in &schema.validations {
            let compiled = program::compiled(&rule.rule);
            let program = match &compiled.program {
                Ok(p) => p,
                Err(e) => {
                    self.outcome.errors.push(invalid(format!("rule compile error: {e}")));
                    continue;
                }
            };
            let optional_old_self = rule.optional_old_self == Some(true);
            if compiled.uses_old_self && old_val.is_none() && !optional_old_self {
                continue;
            }
            let name = rule_name(rule);
            let cost = estimate(&compiled, data_size);
            if cost > PER_CALL_LIMIT {
                self.outcome.errors.push(invalid(format!(
                    "'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: {name}"
                )));
                self.stopped = true;
                return;
            }
            if cost > self.remaining {
                self.outcome
                    .errors
                    .push(invalid("validation failed due to running out of cost budget, no further validation rules will be run".into()));
                self.stopped = true;
                return;
            }
            self.remaining -= cost;
            let result = if optional_old_self {
                let ctx = optional_activation.get_or_insert_with(|| {
                    let mut ctx = Context::with_env(Arc::clone(env));
                    ctx.add_variable_as_val("self", self_val.clone());
                    let optional = match &old_val {
                        Some(o) => CelOptional::of(o.clone()),
                        None => CelOptional::none(),
                    };
                    ctx.add_variable_as_val("oldSelf", Box::new(optional));
                    ctx
                });
                program.execute(ctx)
            } else {
                program.execute(&activation)
            };
            match result {
                Ok(cel::Value::Bool(true)) => continue,
                Ok(_) => {}
                Err(e) => {
                    self.outcome.errors.push(invalid(runtime_error(&e, &name)));
                    continue;
                }
            }
            // The rule failed: say so at its path, in its words.
            let field = match rule.field_path.as_deref().filter(|p| !p.is_empty()) {
                None => path.render(),
                Some(fp) => match normalize_field_path(schema, fp) {
                    Ok(relative) => match path {
                        Path::Root => relative,
                        Path::At(p) => format!("{p}.{relative}"),
                    },
                    Err(_) => path.render(),
                },
            };
            let mut detail = None;
            if let Some(source) = rule.message_expression.as_deref().filter(|m| !m.trim().is_empty()) {
                match self.message(source, &activation, data_size) {
                    Message::Text(text) => detail = Some(text),
                    Message::Fallback => {}
                    Message::Stop(why) => {
                        let error = FieldError::new(FieldErrorKind::Invalid, field, shown.clone(), why);
                        self.report(error, compiled.uses_old_self, ratchet);
                        self.stopped = true;
                        return;
                    }
                }
            }
            let detail = detail.unwrap_or_else(|| default_message(rule));
            let error = error_for_reason(rule.reason.as_deref(), field, shown.clone(), detail);
            self.report(error, compiled.uses_old_self, ratchet);
        }
    }

    /// Records a failed rule: an error, or a warning where ratcheting forgives it.
    fn report(&mut self, error: FieldError, transition: bool, ratchet: Ratchet<'_>) {
        if !transition && ratchet.unchanged() {
            self.outcome.warnings.push(error.to_string());
        } else {
            self.outcome.errors.push(error);
        }
    }

    /// Evaluates a messageExpression (with the rule's non-optional activation, as kube does).
    fn message(&mut self, source: &str, activation: &Context<'_, '_>, data_size: DataSize) -> Message {
        let compiled = program::compiled(source);
        let Ok(program) = &compiled.program else { return Message::Fallback };
        let cost = estimate(&compiled, data_size);
        if cost > PER_CALL_LIMIT {
            return Message::Stop(format!(
                "no further validation rules will be run due to call cost exceeds limit for messageExpression: {source:?}"
            ));
        }
        if cost > self.remaining {
            return Message::Stop(
                "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run".into(),
            );
        }
        self.remaining -= cost;
        match program.execute(activation) {
            Ok(cel::Value::String(s)) => {
                let text = s.trim();
                if text.is_empty() || text.len() > MAX_MESSAGE_BYTES || text.contains('\n') {
                    Message::Fallback
                } else {
                    Message::Text(text.to_string())
                }
            }
            _ => Message::Fallback,
        }
    }
}

/// What a messageExpression gave.
enum Message {
    Text(String),
    /// It failed: the rule's message (or the default) is used.
    Fallback,
    /// It ran out of budget: this is the error, and validation stops.
    Stop(String),
}

fn embedded(schema: &Schema) -> bool {
    matches!(schema.kind, SchemaKind::Object { embedded_resource: true, .. })
}

/// The identity of a `listType: map` item: its key fields.
fn map_key(item: &Value, keys: &[String]) -> String {
    keys.iter().map(|k| item.get(k).map(value::canonical).unwrap_or_default()).collect::<Vec<_>>().join("\u{0}")
}

/// How much data an evaluation can walk: JSON nodes and string bytes.
#[derive(Debug, Clone, Copy)]
struct DataSize {
    nodes: f64,
    bytes: f64,
}

impl DataSize {
    fn of(value: &Value) -> DataSize {
        let mut size = DataSize { nodes: 1.0, bytes: 0.0 };
        match value {
            Value::Array(items) => items.iter().for_each(|v| size = size.plus(Some(DataSize::of(v)))),
            Value::Object(map) => map.iter().for_each(|(k, v)| {
                size.bytes += k.len() as f64;
                size = size.plus(Some(DataSize::of(v)));
            }),
            Value::String(s) => size.bytes += s.len() as f64,
            _ => {}
        }
        size
    }

    fn plus(self, other: Option<DataSize>) -> DataSize {
        let other = other.unwrap_or(DataSize { nodes: 0.0, bytes: 0.0 });
        DataSize { nodes: self.nodes + other.nodes, bytes: self.bytes + other.bytes }
    }
}

/// The estimated cost of one evaluation: linear in the data without loops, `nodes × size^depth`
/// with them, where size counts JSON nodes and string bytes (8 to a unit, or each byte when
/// the expression turns strings into lists or builds strings in a loop).
fn estimate(compiled: &program::Compiled, data: DataSize) -> f64 {
    let nodes = compiled.nodes as f64;
    let bytes_per_unit = if compiled.per_byte { 1.0 } else { 8.0 };
    let size = data.nodes + data.bytes / bytes_per_unit;
    if compiled.loop_depth == 0 {
        nodes + size
    } else {
        nodes * (size + 1.0).powi(compiled.loop_depth as i32)
    }
}

/// kube's `ruleErrorString`: the message if set, else the rule.
fn rule_name(rule: &apimodel::ValidationRule) -> String {
    match rule.message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        Some(message) => message.to_string(),
        None => rule.rule.trim().to_string(),
    }
}

/// kube's `ruleMessageOrDefault`.
fn default_message(rule: &apimodel::ValidationRule) -> String {
    match rule.message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        Some(message) => message.to_string(),
        None => format!("failed rule: {}", rule_name(rule)),
    }
}

/// kube's `fieldErrorForReason`.
fn error_for_reason(reason: Option<&str>, field: String, shown: Option<String>, detail: String) -> FieldError {
    match reason {
        Some("FieldValueForbidden") => FieldError::new(FieldErrorKind::Forbidden, field, None, detail),
        Some("FieldValueRequired") => FieldError::new(FieldErrorKind::Required, field, None, detail),
        Some("FieldValueDuplicate") => FieldError::new(FieldErrorKind::Duplicate, field, shown, ""),
        _ => FieldError::new(FieldErrorKind::Invalid, field, shown, detail),
    }
}

/// A runtime error of `rule` as kube words it, with cel-go's names for the errors.
fn runtime_error(error: &ExecutionError, rule: &str) -> String {
    let cause = match error {
        ExecutionError::NoSuchOverload(_)
        | ExecutionError::UnsupportedBinaryOperator(..)
        | ExecutionError::ValuesNotComparable(..)
        | ExecutionError::UnexpectedType { .. }
        | ExecutionError::UnsupportedTargetType { .. }
        | ExecutionError::NotSupportedAsMethod { .. }
        | ExecutionError::InvalidArgumentCount { .. }
        | ExecutionError::UnsupportedIndex(..) => {
            return format!(
                "'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {rule}"
            );
        }
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::IndexOutOfBounds(index) => format!("index out of bounds: {}", show_value(index)),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        ExecutionError::Overflow(..) => "integer overflow".into(),
        ExecutionError::UndeclaredReference(name) => format!("no such attribute(s): {name}"),
        ExecutionError::FunctionError { message, .. } => message.clone(),
        ExecutionError::UnsupportedKeyType(v) => format!("unsupported key type: {}", show_value(v)),
        ExecutionError::DuplicateKey(v) => format!("Failed with repeated key: {}", show_value(v)),
        other => other.to_string(),
    };
    format!("{cause} evaluating rule: {rule}")
}

fn show_value(v: &cel::Value) -> String {
    match v {
        cel::Value::Int(i) => i.to_string(),
        cel::Value::UInt(u) => u.to_string(),
        cel::Value::Float(f) => f.to_string(),
        cel::Value::String(s) => s.to_string(),
        cel::Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// A rule's `fieldPath`, relative to its node, as kube renders it (`foo.bar`, `foo[key]`); an
/// error if it does not name a property or map key of the node's schema.
fn normalize_field_path(schema: &Schema, field_path: &str) -> Result<String, String> {
    let names = program::split_field_path(field_path)?;
    let mut node = schema;
    let mut out = String::new();
    for name in names {
        match &node.kind {
            SchemaKind::Object { additional_properties: Some(values), .. } => {
                out.push_str(&format!("[{name}]"));
                node = values;
            }
            SchemaKind::Object { properties, .. } => {
                node = properties.get(&name).ok_or("does not refer to a valid field")?;
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&name);
            }
            _ => return Err("does not refer to a valid field".into()),
        }
    }
    Ok(out)
}

/// Checks every rule of `schema` the way kube-apiserver checks a CRD's rules when the CRD is
/// written: each rule and messageExpression compiles (with every function it calls known),
/// `fieldPath` names a field, `reason` is one kube knows, `optionalOldSelf` goes with `oldSelf`,
/// and transition rules sit where old values can be correlated. Compiles (and so caches) every
/// program. Returns one message per problem, located by schema path.
pub fn check(schema: &Schema) -> Vec<String> {
    let mut problems = Vec::new();
    check_node(schema, "openAPIV3Schema", true, &mut problems);
    problems
}

fn check_node(schema: &Schema, at: &str, correlatable: bool, problems: &mut Vec<String>) {
    for (i, rule) in schema.validations.iter().enumerate() {
        let here = format!("{at}.x-kubernetes-validations[{i}]");
        let compiled = program::compiled(&rule.rule);
        if rule.rule.trim().is_empty() {
            problems.push(format!("{here}.rule: Required value"));
        } else if let Err(e) = &compiled.program {
            problems.push(format!("{here}.rule: Invalid value: {:?}: {e}", rule.rule));
        }
        if let Some(source) = rule.message_expression.as_deref() {
            if let Err(e) = &program::compiled(source).program {
                problems.push(format!("{here}.messageExpression: Invalid value: {source:?}: messageExpression {e}"));
            }
        }
        if let Some(message) = rule.message.as_deref() {
            if message.contains('\n') {
                problems.push(format!("{here}.message: Invalid value: {message:?}: message must not contain line breaks"));
            }
        }
        if let Some(reason) = rule.reason.as_deref() {
            if !["FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"].contains(&reason) {
                problems.push(format!(
                    "{here}.reason: Unsupported value: {reason:?}: supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""
                ));
            }
        }
        if let Some(fp) = rule.field_path.as_deref().filter(|p| !p.is_empty()) {
            if let Err(e) = normalize_field_path(schema, fp) {
                problems.push(format!("{here}.fieldPath: Invalid value: {fp:?}: {e}"));
            }
        }
        if compiled.program.is_ok() {
            if rule.optional_old_self == Some(true) && !compiled.uses_old_self {
                problems.push(format!("{here}.optionalOldSelf: Forbidden: may not be set if rule does not use oldSelf"));
            }
            if compiled.uses_old_self && !correlatable {
                problems.push(format!(
                    "{here}.rule: Invalid value: {:?}: oldSelf cannot be used on the uncorrelatable portion of the schema within {at}",
                    rule.rule
                ));
            }
        }
    }
    match &schema.kind {
        SchemaKind::Object { properties, additional_properties, .. } => {
            for (name, child) in properties {
                check_node(child, &format!("{at}.properties[{name}]"), correlatable, problems);
            }
            if let Some(values) = additional_properties {
                check_node(values, &format!("{at}.additionalProperties"), correlatable, problems);
            }
        }
        SchemaKind::Array { items, list_type, .. } => {
            check_node(items, &format!("{at}.items"), correlatable && *list_type == Some(ListType::Map), problems);
        }
        _ => {}
    }
}

/// Compiles the rules of every served version of `model`, so that no request pays for it,
/// and returns the problems [`check`] finds, prefixed with the resource and version.
pub fn check_model(model: &apimodel::Model) -> Vec<String> {
    let mut problems = Vec::new();
    for resource in &model.resources {
        for version in &resource.versions {
            for problem in check(&version.schema) {
                problems.push(format!("{}/{} {}: {problem}", resource.group, version.name, resource.names.kind));
            }
        }
    }
    problems
}

/// Compiles every rule of the served spec once, before the first request, and logs what
/// [`check`] finds. (codegen already refused rules that do not parse; this also catches calls
/// to functions the environment lacks, which would otherwise fail each request that runs them.)
pub fn warm_up() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for problem in check_model(generated::model()) {
            tracing::warn!(%problem, "x-kubernetes-validations rule will fail at runtime");
        }
    });
}

#[cfg(test)]
mod tests;
