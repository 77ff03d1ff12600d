//! Stage 2: checking the raw documents and building the [`apimodel::Model`].
//!
//! Every rule a CustomResourceDefinition must follow to be served is checked here, and every
//! failure becomes a located [`Diagnostic`]; nothing stops at the first mistake.

use crate::diagnostics::Diagnostics;
use crate::spec::{RawDocument, RawSpec};
use apimodel::schema::{Bounds, Composition};
use apimodel::{
    ListType, MapType, Model, Names, PrinterColumn, Resource, Scale, Schema, SchemaKind, Scope, Subresources, ValidationRule, Version,
};
use indexmap::IndexMap;
use serde_json::Value;

/// Checks every document and builds the model, or returns every mistake found.
pub fn build(spec: &RawSpec) -> Result<Model, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let mut resources: Vec<Resource> = Vec::new();
    for doc in &spec.documents {
        let mut ctx = Ctx { doc, diagnostics: Diagnostics::default() };
        if let Some(resource) = ctx.resource() {
            if ctx.diagnostics.is_empty() {
                if let Some(existing) = resources.iter().find(|r| r.group == resource.group && r.names.plural == resource.names.plural) {
                    ctx.err(
                        "spec.names.plural",
                        format!("resource {} is already declared in {}", resource.qualified_name(), existing.source),
                    );
                } else if let Some(existing) = resources.iter().find(|r| r.group == resource.group && r.names.kind == resource.names.kind) {
                    ctx.err(
                        "spec.names.kind",
                        format!("kind {} of group {} is already declared in {}", resource.names.kind, resource.group, existing.source),
                    );
                } else {
                    resources.push(resource);
                }
            }
        }
        diagnostics.extend(ctx.diagnostics);
    }
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    resources.sort_by(|a, b| (&a.group, &a.names.plural).cmp(&(&b.group, &b.names.plural)));
    Ok(Model { resources })
}

struct Ctx<'a> {
    doc: &'a RawDocument,
    diagnostics: Diagnostics,
}

impl<'a> Ctx<'a> {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        let d = self.doc.error(path, message);
        self.diagnostics.push(d);
    }

    fn get(&self, path: &str) -> Option<&'a Value> {
        let mut v = &self.doc.value;
        for part in path.split('.') {
            v = v.get(part)?;
        }
        Some(v)
    }

    /// A required string field.
    fn string(&mut self, path: &str) -> Option<String> {
        match self.get(path) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                self.err(path, "Required value");
                None
            }
            Some(other) => {
                self.err(path, format!("must be a string, not {}", json_type(other)));
                None
            }
        }
    }

    fn opt_string(&mut self, value: Option<&Value>, path: &str) -> Option<String> {
        match value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.err(path, format!("must be a string, not {}", json_type(other)));
                None
            }
        }
    }

    fn opt_bool(&mut self, value: Option<&Value>, path: &str) -> Option<bool> {
        match value {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.err(path, format!("must be a boolean, not {}", json_type(other)));
                None
            }
        }
    }

    fn string_list(&mut self, value: Option<&Value>, path: &str) -> Vec<String> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(s) => Some(s.clone()),
                    other => {
                        self.err(&format!("{path}[{i}]"), format!("must be a string, not {}", json_type(other)));
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.err(path, format!("must be a list of strings, not {}", json_type(other)));
                Vec::new()
            }
        }
    }

    fn resource(&mut self) -> Option<Resource> {
        let api_version = self.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = self.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind != "CustomResourceDefinition" {
            self.err("kind", format!("Unsupported value: {kind:?}: supported values: \"CustomResourceDefinition\""));
            return None;
        }
        if api_version != "apiextensions.k8s.io/v1" {
            self.err("apiVersion", format!("Unsupported value: {api_version:?}: supported values: \"apiextensions.k8s.io/v1\""));
        }
        let group = self.string("spec.group").unwrap_or_default();
        if !group.is_empty() && !is_dns_subdomain(&group) {
            self.err("spec.group", format!("Invalid value: {group:?}: must be a lowercase DNS subdomain"));
        }
        let names = self.names();
        let scope = match self.get("spec.scope").and_then(Value::as_str) {
            Some("Namespaced") => Scope::Namespaced,
            Some("Cluster") => Scope::Cluster,
            Some(other) => {
                self.err("spec.scope", format!("Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""));
                Scope::Namespaced
            }
            None => {
                self.err("spec.scope", "Required value");
                Scope::Namespaced
            }
        };
        if let (Some(names), Some(name)) = (&names, self.get("metadata.name").and_then(Value::as_str)) {
            let expected = format!("{}.{}", names.plural, group);
            if name != expected {
                self.err("metadata.name", format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group ({expected:?})"));
            }
        }
        let versions = self.versions();
        Some(Resource { group, names: names?, scope, versions, source: self.doc.relative.clone() })
    }

    fn names(&mut self) -> Option<Names> {
        let plural = self.string("spec.names.plural");
        let kind = self.string("spec.names.kind");
        let names = self.get("spec.names");
        let singular = self.opt_string(names.and_then(|n| n.get("singular")), "spec.names.singular");
        let list_kind = self.opt_string(names.and_then(|n| n.get("listKind")), "spec.names.listKind");
        let short_names = self.string_list(names.and_then(|n| n.get("shortNames")), "spec.names.shortNames");
        let categories = self.string_list(names.and_then(|n| n.get("categories")), "spec.names.categories");
        let (plural, kind) = (plural?, kind?);
        let singular = singular.unwrap_or_else(|| kind.to_lowercase());
        for (field, value) in [("spec.names.plural", &plural), ("spec.names.singular", &singular)] {
            if !is_dns_label(value) {
                self.err(field, format!("Invalid value: {value:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"));
            }
        }
        for (i, s) in short_names.iter().enumerate() {
            if !is_dns_label(s) {
                self.err(
                    &format!("spec.names.shortNames[{i}]"),
                    format!("Invalid value: {s:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"),
                );
            }
        }
        if !is_kind(&kind) {
            self.err(
                "spec.names.kind",
                format!("Invalid value: {kind:?}: must start with an upper-case letter and contain only letters and digits"),
            );
        }
        let list_kind = list_kind.unwrap_or_else(|| format!("{kind}List"));
        if list_kind == kind {
            self.err("spec.names.listKind", "Invalid value: listKind must differ from kind");
        }
        Some(Names { plural, singular, kind, list_kind, short_names, categories })
    }

    fn versions(&mut self) -> Vec<Version> {
        let raw = match self.get("spec.versions") {
            Some(Value::Array(v)) if !v.is_empty() => v,
            _ => {
                self.err("spec.versions", "Required value: must have at least one version");
                return Vec::new();
            }
        };
        let mut versions = Vec::new();
        for (i, v) in raw.iter().enumerate() {
            let path = format!("spec.versions[{i}]");
            if let Some(version) = self.version(v, &path) {
                if versions.iter().any(|other: &Version| other.name == version.name) {
                    self.err(&format!("{path}.name"), format!("Duplicate value: {:?}", version.name));
                }
                versions.push(version);
            }
        }
        let storage = versions.iter().filter(|v| v.storage).count();
        if storage != 1 && !versions.is_empty() {
            self.err("spec.versions", format!("Invalid value: must have exactly one version marked as storage version, found {storage}"));
        }
        versions
    }

    fn version(&mut self, v: &Value, path: &str) -> Option<Version> {
        let name = self.opt_string(v.get("name"), &format!("{path}.name"));
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            self.err(&format!("{path}.name"), "Required value");
            return None;
        };
        if !is_dns_label(&name) {
            self.err(&format!("{path}.name"), format!("Invalid value: {name:?}: must be a lowercase RFC 1123 label"));
        }
        let served = self.opt_bool(v.get("served"), &format!("{path}.served")).unwrap_or(false);
        let storage = self.opt_bool(v.get("storage"), &format!("{path}.storage")).unwrap_or(false);
        let deprecated = self.opt_bool(v.get("deprecated"), &format!("{path}.deprecated")).unwrap_or(false);
        let deprecation_warning = self.opt_string(v.get("deprecationWarning"), &format!("{path}.deprecationWarning"));
        let schema_path = format!("{path}.schema.openAPIV3Schema");
        let schema = match v.get("schema").and_then(|s| s.get("openAPIV3Schema")) {
            Some(raw) => {
                let schema = self.schema(raw, &schema_path, true);
                if !matches!(schema.kind, SchemaKind::Object { .. }) {
                    self.err(&format!("{schema_path}.type"), "Unsupported value: the root of the schema must be of type object");
                }
                schema
            }
            None => {
                self.err(&schema_path, "Required value: schemas are required");
                Schema::default()
            }
        };
        let subresources = self.subresources(v.get("subresources"), &format!("{path}.subresources"), &schema);
        let printer_columns = self.printer_columns(v.get("additionalPrinterColumns"), &format!("{path}.additionalPrinterColumns"), &schema);
        let selectable_fields = self.selectable_fields(v.get("selectableFields"), &format!("{path}.selectableFields"), &schema);
        Some(Version { name, served, storage, deprecated, deprecation_warning, schema, subresources, printer_columns, selectable_fields })
    }

    fn subresources(&mut self, v: Option<&Value>, path: &str, schema: &Schema) -> Subresources {
        let Some(v) = v.filter(|v| !v.is_null()) else { return Subresources::default() };
        let status = v.get("status").is_some_and(|s| !s.is_null());
        let scale = match v.get("scale").filter(|s| !s.is_null()) {
            None => None,
            Some(s) => {
                let spec_path = format!("{path}.scale.specReplicasPath");
                let status_path = format!("{path}.scale.statusReplicasPath");
                let spec_replicas_path = self.opt_string(s.get("specReplicasPath"), &spec_path).unwrap_or_default();
                let status_replicas_path = self.opt_string(s.get("statusReplicasPath"), &status_path).unwrap_or_default();
                let label_selector_path = self.opt_string(s.get("labelSelectorPath"), &format!("{path}.scale.labelSelectorPath"));
                for (p, value, prefix) in [(&spec_path, &spec_replicas_path, ".spec."), (&status_path, &status_replicas_path, ".status.")] {
                    if !value.starts_with(prefix) || split_json_path(value).is_none() {
                        self.err(p, format!("Invalid value: {value:?}: should be a json path under {prefix}"));
                    } else if let Some(node) = resolve(schema, value) {
                        if !matches!(node.kind, SchemaKind::Integer) {
                            self.err(p, format!("Invalid value: {value:?}: must point to an integer field"));
                        }
                    }
                }
                Some(Scale { spec_replicas_path, status_replicas_path, label_selector_path })
            }
        };
        Subresources { status, scale }
    }

    fn printer_columns(&mut self, v: Option<&Value>, path: &str, schema: &Schema) -> Vec<PrinterColumn> {
        let Some(Value::Array(columns)) = v else { return Vec::new() };
        let mut out: Vec<PrinterColumn> = Vec::new();
        for (i, c) in columns.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let name = self.opt_string(c.get("name"), &format!("{p}.name")).unwrap_or_default();
            let column_type = self.opt_string(c.get("type"), &format!("{p}.type")).unwrap_or_default();
            let json_path = self.opt_string(c.get("jsonPath"), &format!("{p}.jsonPath")).unwrap_or_default();
            let format = self.opt_string(c.get("format"), &format!("{p}.format")).unwrap_or_default();
            let description = self.opt_string(c.get("description"), &format!("{p}.description")).unwrap_or_default();
            let priority = match c.get("priority") {
                None | Some(Value::Null) => 0,
                Some(Value::Number(n)) if n.as_i64().is_some_and(|n| (0..=i32::MAX as i64).contains(&n)) => n.as_i64().unwrap_or(0) as i32,
                Some(other) => {
                    self.err(&format!("{p}.priority"), format!("Invalid value: {other}: must be a non-negative integer"));
                    0
                }
            };
            // kube-apiserver accepts repeated column names (real CRDs have them).
            if name.is_empty() {
                self.err(&format!("{p}.name"), "Required value");
            }
            if !["integer", "number", "string", "boolean", "date"].contains(&column_type.as_str()) {
                self.err(
                    &format!("{p}.type"),
                    format!(
                        "Unsupported value: {column_type:?}: supported values: \"boolean\", \"date\", \"integer\", \"number\", \"string\""
                    ),
                );
            }
            if !format.is_empty()
                && !["int32", "int64", "float", "double", "byte", "date", "date-time", "password"].contains(&format.as_str())
            {
                self.err(&format!("{p}.format"), format!("Unsupported value: {format:?}"));
            }
            if json_path.is_empty() {
                self.err(&format!("{p}.jsonPath"), "Required value");
            } else {
                match crate::jsonpath::parse(&json_path) {
                    Err(why) => self.err(&format!("{p}.jsonPath"), format!("Invalid value: {json_path:?}: {why}")),
                    Ok(steps) => {
                        // The leading plain fields must exist in the schema (or in metadata).
                        let fields: Vec<&str> = steps
                            .iter()
                            .map_while(|s| match s {
                                crate::jsonpath::Step::Field(f) => Some(f.as_str()),
                                _ => None,
                            })
                            .collect();
                        let prefix = format!(".{}", fields.join("."));
                        if !fields.is_empty()
                            && fields[0] != "metadata"
                            && resolve(schema, &prefix).is_none()
                            && !reaches_open_schema(schema, &prefix)
                        {
                            self.err(&format!("{p}.jsonPath"), format!("Invalid value: {json_path:?}: no such field in the schema"));
                        }
                    }
                }
            }
            out.push(PrinterColumn { name, column_type, format, description, priority, json_path });
        }
        out
    }

    fn selectable_fields(&mut self, v: Option<&Value>, path: &str, schema: &Schema) -> Vec<String> {
        let Some(Value::Array(fields)) = v else { return Vec::new() };
        let mut out = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            let p = format!("{path}[{i}].jsonPath");
            let Some(json_path) = self.opt_string(f.get("jsonPath"), &p) else {
                self.err(&p, "Required value");
                continue;
            };
            match resolve(schema, &json_path) {
                Some(node) if matches!(node.kind, SchemaKind::String | SchemaKind::Integer | SchemaKind::Boolean) => out.push(json_path),
                Some(_) => self.err(&p, format!("Invalid value: {json_path:?}: must point to a field of type string, boolean or integer")),
                None => self.err(&p, format!("Invalid value: {json_path:?}: is an invalid path: no such field in the schema")),
            }
        }
        out
    }

    /// Converts one schema node, checking it is structural. `root` is the openAPIV3Schema node.
    fn schema(&mut self, raw: &Value, path: &str, root: bool) -> Schema {
        let Value::Object(map) = raw else {
            self.err(path, format!("must be an object, not {}", json_type(raw)));
            return Schema::default();
        };
        for key in map.keys() {
            if !KNOWN_KEYWORDS.contains(&key.as_str()) {
                let message = match key.as_str() {
                    "$ref" => "Forbidden: $ref is not supported in CustomResourceDefinition schemas".to_string(),
                    "definitions" | "dependencies" | "patternProperties" | "additionalItems" | "id" | "$schema" => {
                        format!("Forbidden: {key} is not supported")
                    }
                    _ => format!("unknown schema keyword {key:?}"),
                };
                self.err(&format!("{path}.{key}"), message);
            }
        }
        let p = |k: &str| format!("{path}.{k}");
        let ty = self.opt_string(map.get("type"), &p("type"));
        let preserve =
            self.opt_bool(map.get("x-kubernetes-preserve-unknown-fields"), &p("x-kubernetes-preserve-unknown-fields")).unwrap_or(false);
        let embedded = self.opt_bool(map.get("x-kubernetes-embedded-resource"), &p("x-kubernetes-embedded-resource")).unwrap_or(false);
        let int_or_string = self.opt_bool(map.get("x-kubernetes-int-or-string"), &p("x-kubernetes-int-or-string")).unwrap_or(false);
        let kind = match ty.as_deref() {
            Some("string") if int_or_string => SchemaKind::IntOrString,
            Some("object") => {
                let mut properties = IndexMap::new();
                match map.get("properties") {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(props)) => {
                        for (name, child) in props {
                            let child = self.schema(child, &format!("{path}.properties.{name}"), false);
                            properties.insert(name.clone(), child);
                        }
                    }
                    Some(other) => self.err(&p("properties"), format!("must be an object, not {}", json_type(other))),
                }
                let additional_properties = match map.get("additionalProperties") {
                    None | Some(Value::Null) => None,
                    Some(Value::Bool(true)) => {
                        Some(Box::new(Schema { kind: SchemaKind::Any { embedded_resource: false }, ..Schema::default() }))
                    }
                    Some(Value::Bool(false)) => {
                        self.err(&p("additionalProperties"), "Forbidden: additionalProperties: false is not allowed in structural schemas");
                        None
                    }
                    Some(child) => Some(Box::new(self.schema(child, &p("additionalProperties"), false))),
                };
                if additional_properties.is_some() && !properties.is_empty() {
                    self.err(&p("additionalProperties"), "Forbidden: additionalProperties and properties are mutual exclusive");
                }
                let required = self.string_list(map.get("required"), &p("required"));
                let map_type = match self.opt_string(map.get("x-kubernetes-map-type"), &p("x-kubernetes-map-type")).as_deref() {
                    None => None,
                    Some("granular") => Some(MapType::Granular),
                    Some("atomic") => Some(MapType::Atomic),
                    Some(other) => {
                        self.err(
                            &p("x-kubernetes-map-type"),
                            format!("Unsupported value: {other:?}: supported values: \"atomic\", \"granular\""),
                        );
                        None
                    }
                };
                SchemaKind::Object {
                    properties,
                    required,
                    additional_properties,
                    preserve_unknown_fields: preserve,
                    embedded_resource: embedded,
                    map_type,
                }
            }
            Some("array") => {
                let items = match map.get("items") {
                    Some(Value::Object(_)) => self.schema(&map["items"], &p("items"), false),
                    Some(Value::Array(_)) => {
                        self.err(&p("items"), "Forbidden: items must be a schema object and not an array");
                        Schema::default()
                    }
                    _ => {
                        self.err(&p("items"), "Required value: must be specified");
                        Schema::default()
                    }
                };
                let list_type = match self.opt_string(map.get("x-kubernetes-list-type"), &p("x-kubernetes-list-type")).as_deref() {
                    None => None,
                    Some("atomic") => Some(ListType::Atomic),
                    Some("set") => Some(ListType::Set),
                    Some("map") => Some(ListType::Map),
                    Some(other) => {
                        self.err(
                            &p("x-kubernetes-list-type"),
                            format!("Unsupported value: {other:?}: supported values: \"atomic\", \"map\", \"set\""),
                        );
                        None
                    }
                };
                let list_map_keys = self.string_list(map.get("x-kubernetes-list-map-keys"), &p("x-kubernetes-list-map-keys"));
                if list_type == Some(ListType::Map) {
                    if list_map_keys.is_empty() {
                        self.err(&p("x-kubernetes-list-map-keys"), "Required value: must not be empty if x-kubernetes-list-type is map");
                    }
                    if !matches!(items.kind, SchemaKind::Object { .. }) {
                        self.err(&p("items.type"), "Invalid value: must be object if parent array's x-kubernetes-list-type is map");
                    }
                } else if !list_map_keys.is_empty() {
                    self.err(&p("x-kubernetes-list-map-keys"), "Forbidden: may only be used with x-kubernetes-list-type map");
                }
                SchemaKind::Array { items: Box::new(items), list_type, list_map_keys }
            }
            Some("string") => SchemaKind::String,
            Some("integer") => SchemaKind::Integer,
            Some("number") => SchemaKind::Number,
            Some("boolean") => SchemaKind::Boolean,
            Some(other) => {
                self.err(&p("type"), format!("Unsupported value: {other:?}: supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""));
                SchemaKind::default()
            }
            None if int_or_string => SchemaKind::IntOrString,
            None if preserve => SchemaKind::Any { embedded_resource: embedded },
            None => {
                if root {
                    self.err(&p("type"), "Required value: must not be empty at the root");
                } else {
                    self.err(&p("type"), "Required value: must not be empty for specified object fields");
                }
                SchemaKind::default()
            }
        };
        // kube-apiserver lets `type: string` stand beside x-kubernetes-int-or-string (real CRDs
        // do this) and validates such a value as int-or-string.
        if int_or_string && ty.as_deref().is_some_and(|t| t != "string") {
            self.err(&p("type"), "Forbidden: must be empty when x-kubernetes-int-or-string is true");
        }
        if embedded && !matches!(kind, SchemaKind::Object { .. }) {
            self.err(&p("x-kubernetes-embedded-resource"), "Forbidden: must be used with type object");
        }
        let validations = match map.get("x-kubernetes-validations") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => match serde_json::from_value::<Vec<ValidationRule>>(v.clone()) {
                Ok(rules) => rules,
                Err(e) => {
                    self.err(&p("x-kubernetes-validations"), format!("invalid rule list: {e}"));
                    Vec::new()
                }
            },
        };
        for (i, rule) in validations.iter().enumerate() {
            self.check_rule(rule, &format!("{}[{i}]", p("x-kubernetes-validations")));
        }
        let number = |ctx: &mut Self, key: &str| -> Option<f64> {
            match map.get(key) {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => n.as_f64(),
                Some(other) => {
                    ctx.err(&format!("{path}.{key}"), format!("must be a number, not {}", json_type(other)));
                    None
                }
            }
        };
        let count = |ctx: &mut Self, key: &str| -> Option<u64> {
            match map.get(key) {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
                Some(other) => {
                    ctx.err(&format!("{path}.{key}"), format!("must be a non-negative integer, not {other}"));
                    None
                }
            }
        };
        let bounds = Bounds {
            pattern: self.opt_string(map.get("pattern"), &p("pattern")),
            min_length: count(self, "minLength"),
            max_length: count(self, "maxLength"),
            minimum: number(self, "minimum"),
            maximum: number(self, "maximum"),
            exclusive_minimum: self.opt_bool(map.get("exclusiveMinimum"), &p("exclusiveMinimum")).unwrap_or(false),
            exclusive_maximum: self.opt_bool(map.get("exclusiveMaximum"), &p("exclusiveMaximum")).unwrap_or(false),
            multiple_of: number(self, "multipleOf"),
            min_items: count(self, "minItems"),
            max_items: count(self, "maxItems"),
            unique_items: self.opt_bool(map.get("uniqueItems"), &p("uniqueItems")).unwrap_or(false),
            min_properties: count(self, "minProperties"),
            max_properties: count(self, "maxProperties"),
        };
        if bounds.unique_items {
            self.err(&p("uniqueItems"), "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic");
        }
        if let Some(pattern) = &bounds.pattern {
            if let Err(e) = regex::Regex::new(pattern) {
                self.err(&p("pattern"), format!("Invalid value: {pattern:?}: {e}"));
            }
        }
        let list = |ctx: &mut Self, key: &str| -> Vec<Value> {
            match map.get(key) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items.clone(),
                Some(other) => {
                    ctx.err(&format!("{path}.{key}"), format!("must be a list of schemas, not {}", json_type(other)));
                    Vec::new()
                }
            }
        };
        let composition = Composition {
            all_of: list(self, "allOf"),
            any_of: list(self, "anyOf"),
            one_of: list(self, "oneOf"),
            not: map.get("not").cloned(),
        };
        let enum_values = match map.get("enum") {
            None | Some(Value::Null) => None,
            Some(Value::Array(values)) => Some(values.clone()),
            Some(other) => {
                self.err(&p("enum"), format!("must be a list, not {}", json_type(other)));
                None
            }
        };
        Schema {
            kind,
            description: self.opt_string(map.get("description"), &p("description")),
            nullable: self.opt_bool(map.get("nullable"), &p("nullable")).unwrap_or(false),
            default: map.get("default").cloned(),
            example: map.get("example").cloned(),
            enum_values,
            format: self.opt_string(map.get("format"), &p("format")).filter(|f| !f.is_empty()),
            bounds,
            composition,
            validations,
            patch_strategy: self.opt_string(map.get("x-kubernetes-patch-strategy"), &p("x-kubernetes-patch-strategy")),
            patch_merge_key: self.opt_string(map.get("x-kubernetes-patch-merge-key"), &p("x-kubernetes-patch-merge-key")),
        }
    }
}

impl Ctx<'_> {
    /// Checks one `x-kubernetes-validations` rule as kube-apiserver does when a CRD is written,
    /// as far as parsing goes: the rule and its messageExpression must be valid CEL, the reason
    /// one kube knows. (The server checks the functions they call when it starts.)
    fn check_rule(&mut self, rule: &ValidationRule, at: &str) {
        let syntax = |source: &str| {
            cel::Program::compile(source)
                .err()
                .map(|e| e.to_string().lines().filter(|l| l.starts_with("ERROR")).collect::<Vec<_>>().join("; "))
        };
        if rule.rule.trim().is_empty() {
            self.err(&format!("{at}.rule"), "Required value");
        } else if let Some(e) = syntax(&rule.rule) {
            self.err(&format!("{at}.rule"), format!("Invalid value: {:?}: compilation failed: {e}", rule.rule));
        }
        if let Some(e) = rule.message_expression.as_deref().and_then(syntax) {
            self.err(
                &format!("{at}.messageExpression"),
                format!(
                    "Invalid value: {:?}: messageExpression compilation failed: {e}",
                    rule.message_expression.as_deref().unwrap_or_default()
                ),
            );
        }
        if let Some(reason) = rule.reason.as_deref() {
            if !["FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"].contains(&reason) {
                self.err(
                    &format!("{at}.reason"),
                    format!("Unsupported value: {reason:?}: supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""),
                );
            }
        }
    }
}

/// Schema keywords a CRD schema may use.
const KNOWN_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "properties",
    "additionalProperties",
    "items",
    "required",
    "enum",
    "default",
    "example",
    "nullable",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "externalDocs",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
    "x-kubernetes-patch-strategy",
    "x-kubernetes-patch-merge-key",
];

/// Splits `.spec.msg` into `["spec", "msg"]`; `None` unless it is a simple dotted path.
pub fn split_json_path(path: &str) -> Option<Vec<&str>> {
    let rest = path.strip_prefix('.')?;
    let parts: Vec<&str> = rest.split('.').collect();
    parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')).then_some(parts)
}

/// The schema node a simple JSON path points at.
fn resolve<'s>(schema: &'s Schema, json_path: &str) -> Option<&'s Schema> {
    let parts = split_json_path(json_path)?;
    schema.at_path(&parts)
}

/// Whether the path walks into a part of the schema that keeps unknown fields (so it may exist).
fn reaches_open_schema(schema: &Schema, json_path: &str) -> bool {
    let Some(parts) = split_json_path(json_path) else { return false };
    let mut node = schema;
    for part in parts {
        match &node.kind {
            SchemaKind::Object { preserve_unknown_fields: true, properties, .. } if !properties.contains_key(part) => return true,
            SchemaKind::Any { .. } => return true,
            _ => match node.child(part) {
                Some(child) => node = child,
                None => return false,
            },
        }
    }
    true
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// RFC 1123 label: lower-case alphanumerics and '-', at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_kind(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_documents;

    fn build_str(text: &str) -> Result<Model, Diagnostics> {
        let documents = parse_documents("t.yaml", "t.yaml", text).unwrap();
        build(&RawSpec { documents, files: vec![] })
    }

    const FOO: &str = include_str!("../../spec/foo.yaml");

    #[test]
    fn builds_foo() {
        let model = build_str(FOO).unwrap();
        let foo = &model.resources[0];
        assert_eq!(foo.qualified_name(), "foos.hello.zeng.dev");
        assert_eq!(foo.names.list_kind, "FooList");
        assert_eq!(foo.names.short_names, vec!["fo"]);
        let v1 = foo.storage_version();
        assert_eq!(v1.printer_columns.len(), 3);
        assert_eq!(v1.printer_columns[1].priority, 1);
        let msg = v1.schema.at_path(&["spec", "msg"]).unwrap();
        assert_eq!(msg.kind, SchemaKind::String);
        assert_eq!(msg.description.as_deref(), Some("Msg says hello world!"));
    }

    #[test]
    fn reports_every_mistake_with_its_line() {
        let text = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: things.example.com
spec:
  group: example.com
  scope: Everywhere
  names:
    plural: things
    kind: Thing
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size:
                type: integr
              other: {}
";
        let err = build_str(text).unwrap_err();
        let rendered: Vec<String> = err.0.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            rendered,
            vec![
                "t.yaml:7: spec.scope: Unsupported value: \"Everywhere\": supported values: \"Cluster\", \"Namespaced\"",
                "t.yaml:23: spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.size.type: Unsupported value: \"integr\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\"",
                "t.yaml:24: spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.other.type: Required value: must not be empty for specified object fields",
            ]
        );
    }

    #[test]
    fn json_paths() {
        assert_eq!(split_json_path(".spec.msg"), Some(vec!["spec", "msg"]));
        assert_eq!(split_json_path("spec.msg"), None);
        assert_eq!(split_json_path(".spec[0]"), None);
    }
}
