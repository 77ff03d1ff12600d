//! What the OpenAPI v2 and v3 generators share: the routes kube-apiserver publishes for a
//! CustomResourceDefinition version, their parameters, the translation of the structural schema
//! into the `Kind`/`KindList` definitions, the built-in definitions those reference, and
//! serialization that produces the same bytes as Go's `encoding/json`.
//!
//! The two documents differ only in how these pieces are rendered, which [`Dialect`] selects.
//! Everything here follows `apiextensions-apiserver/pkg/controller/openapi/builder` (routes and
//! kube-native properties), `kube-openapi/pkg/builder{,3}` (common parameters, responses) and
//! `apiextensions-apiserver/pkg/apiserver/schema` (structural schema → OpenAPI), so that a client
//! sees the document kube-apiserver would serve for the same CRD.

use apimodel::{ListType, MapType, Model, Resource, Schema, SchemaKind, ValidationRule, Version};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Which OpenAPI document a piece is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Swagger 2.0 (`/openapi/v2`).
    V2,
    /// OpenAPI 3.0 (`/openapi/v3/apis/<group>/<version>`).
    V3,
}

impl Dialect {
    /// The JSON pointer prefix definitions are referenced with.
    pub fn ref_prefix(self) -> &'static str {
        match self {
            Dialect::V2 => "#/definitions/",
            Dialect::V3 => "#/components/schemas/",
        }
    }

    /// A `$ref` to the named definition.
    pub fn reference(self, definition: &str) -> Value {
        json!({ "$ref": format!("{}{definition}", self.ref_prefix()) })
    }
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

/// The definition name of a kind: the group's DNS labels reversed, then version and kind
/// (`hello.zeng.dev`, `v1`, `Foo` → `dev.zeng.hello.v1.Foo`), as kube-openapi's
/// `ToRESTFriendlyName` names CRD types.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// The operation tag of a group-version (`helloZengDev_v1`).
pub fn tag(group: &str, version: &str) -> String {
    format!("{}_{}", operation_word(group.trim_end_matches(".k8s.io"), false), operation_word(version, false))
}

/// kube-apiserver's operation ID: the verb, then group, version and the rest of the route's
/// operation name, each camel-cased (`deletecollection` is split as `delete` + `Collection…`
/// because the verb table matches its shortest prefix).
fn operation_id(verb: &str, group: &str, version: &str, rest: &str) -> String {
    format!(
        "{verb}{}{}{}",
        operation_word(group.trim_end_matches(".k8s.io"), true),
        operation_word(version, true),
        operation_word(rest, true)
    )
}

/// `ToValidOperationID`: drops punctuation and capitalizes the letter after it.
fn operation_word(s: &str, capitalize_first: bool) -> String {
    let mut out = String::new();
    let mut capitalize = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_ascii_digit()) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.push(c);
            }
        } else {
            capitalize = true;
        }
    }
    out
}

/// `" a "` or `" an "` before a noun; nothing before plurals (`GetArticleForNoun`).
fn article_for(noun: &str) -> &'static str {
    if noun.ends_with('s') && !noun.ends_with("ss") {
        return " ";
    }
    match noun.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => " an ",
        _ => " a ",
    }
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

/// The content types of request bodies other than PATCH.
const JSON_YAML: [&str; 2] = ["application/json", "application/yaml"];

/// Content types accepted by PATCH. kube-apiserver leaves out strategic merge patch for custom
/// resources; our server implements it, and kubectl 1.29+ only uses it for `apply` when the
/// OpenAPI document advertises it, so it is listed (in the order built-in resources use).
pub const PATCH_CONTENT_TYPES: [&str; 4] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// The content type we add to PATCH operations beyond what kube-apiserver lists for CRDs.
pub const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";

const PRETTY_DESCRIPTION: &str = "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).";
const NAMESPACE_DESCRIPTION: &str = "object name and auth scope, such as for teams and projects";

/// HTTP methods, in the order a path item lists its operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    /// `get`
    Get,
    /// `put`
    Put,
    /// `post`
    Post,
    /// `delete`
    Delete,
    /// `patch`
    Patch,
}

impl Method {
    /// The key of the operation in a path item.
    pub fn key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::Delete => "delete",
            Method::Patch => "patch",
        }
    }
}

/// What a request or response body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// The resource's kind (`Foo`).
    Kind,
    /// The resource's list kind (`FooList`).
    List,
    /// `meta/v1` Status.
    Status,
    /// `autoscaling/v1` Scale.
    Scale,
    /// `meta/v1` Patch (the body of PATCH).
    Patch,
    /// `meta/v1` DeleteOptions.
    DeleteOptions,
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    /// The request body (v2 only; v3 has `requestBody`).
    Body,
    /// A path segment.
    Path,
    /// The query string.
    Query,
}

impl Location {
    /// The value of the parameter's `in`.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Body => "body",
            Location::Path => "path",
            Location::Query => "query",
        }
    }
}

/// One parameter of an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Name (`body` for the body).
    pub name: String,
    /// Where it goes.
    pub location: Location,
    /// Description; empty for bodies.
    pub description: String,
    /// JSON type of a path or query parameter (`string`, `integer`, `boolean`).
    pub ty: String,
    /// Whether it must be given.
    pub required: bool,
    /// What a body holds.
    pub body: Option<Payload>,
}

impl Param {
    fn query(name: &str, ty: &str, description: &str) -> Param {
        Param { name: name.into(), location: Location::Query, description: description.into(), ty: ty.into(), required: false, body: None }
    }

    fn path(name: &str, description: &str) -> Param {
        Param {
            name: name.into(),
            location: Location::Path,
            description: description.into(),
            ty: "string".into(),
            required: true,
            body: None,
        }
    }

    fn body(payload: Payload, required: bool) -> Param {
        Param {
            name: "body".into(),
            location: Location::Body,
            description: String::new(),
            ty: String::new(),
            required,
            body: Some(payload),
        }
    }

    /// kube-openapi sorts parameters by name, then by location.
    fn sort_key(&self) -> (&str, &str) {
        (&self.name, self.location.as_str())
    }
}

/// One operation of a path.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// HTTP method.
    pub method: Method,
    /// `x-kubernetes-action`.
    pub action: &'static str,
    /// `operationId`.
    pub id: String,
    /// `description`.
    pub description: String,
    /// Parameters not common to the whole path, body included, sorted.
    pub params: Vec<Param>,
    /// Accepted request content types.
    pub consumes: Vec<&'static str>,
    /// Responses other than the common 401, by status code.
    pub responses: Vec<(u16, &'static str, Payload)>,
}

impl Operation {
    /// The request body parameter, if the operation takes one.
    pub fn body(&self) -> Option<&Param> {
        self.params.iter().find(|p| p.location == Location::Body)
    }
}

/// One path with its operations.
#[derive(Debug, Clone, PartialEq)]
pub struct PathItem {
    /// The URL template (`/apis/hello.zeng.dev/v1/namespaces/{namespace}/foos/{name}`).
    pub path: String,
    /// Parameters every operation of the path takes (never the body), sorted.
    pub params: Vec<Param>,
    /// Operations, in method order.
    pub operations: Vec<Operation>,
}

/// The group, version and kind that name one resource version in a document.
#[derive(Debug, Clone, Copy)]
pub struct Gvk<'a> {
    /// API group.
    pub group: &'a str,
    /// Version name.
    pub version: &'a str,
    /// Kind.
    pub kind: &'a str,
}

/// Everything a document needs to know about one served resource version.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    /// The resource.
    pub resource: &'a Resource,
    /// The served version.
    pub version: &'a Version,
}

impl<'a> Served<'a> {
    /// Group, version and kind of the resource's objects.
    pub fn gvk(&self) -> Gvk<'a> {
        Gvk { group: &self.resource.group, version: &self.version.name, kind: &self.resource.names.kind }
    }

    /// The definition a payload is described by.
    pub fn definition(&self, payload: Payload) -> String {
        let names = &self.resource.names;
        match payload {
            Payload::Kind => definition_name(&self.resource.group, &self.version.name, &names.kind),
            Payload::List => definition_name(&self.resource.group, &self.version.name, &names.list_kind),
            Payload::Status => "io.k8s.apimachinery.pkg.apis.meta.v1.Status".into(),
            Payload::Scale => "io.k8s.api.autoscaling.v1.Scale".into(),
            Payload::Patch => "io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(),
            Payload::DeleteOptions => "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions".into(),
        }
    }

    /// The paths of this resource version, sorted, as kube-apiserver's CRD builder declares them:
    /// the cross-namespace list (namespaced resources only), the collection, the item, and the
    /// `/status` and `/scale` items when declared. CRDs get no `/watch/` paths.
    pub fn paths(&self) -> Vec<PathItem> {
        let r = self.resource;
        let (group, version, plural) = (&r.group, &self.version.name, &r.names.plural);
        let mut routes: Vec<(String, Operation)> = Vec::new();
        let mut root = format!("/apis/{group}/{version}/{plural}");
        if r.namespaced() {
            // The collection's list route, across namespaces.
            routes.push(self.route(&root, &MAIN_ROUTES[0], Some("ForAllNamespaces")));
            root = format!("/apis/{group}/{version}/namespaces/{{namespace}}/{plural}");
        }
        let mut table = MAIN_ROUTES.to_vec();
        if self.version.subresources.status {
            table.extend(subresource_routes("/{name}/status", Payload::Kind));
        }
        if self.version.subresources.scale.is_some() {
            table.extend(subresource_routes("/{name}/scale", Payload::Scale));
        }
        routes.extend(table.iter().map(|route| self.route(&root, route, None)));
        group_routes(routes)
    }

    /// One operation, as `buildRoute` declares it; `operation_suffix` replaces the part of the
    /// operation name after the kind (`ForAllNamespaces`).
    fn route(&self, root: &str, route: &Route, operation_suffix: Option<&str>) -> (String, Operation) {
        let Route { sub, method, action, verb: operation_verb, sample } = *route;
        let kind = &self.resource.names.kind;
        let subresource = sub.strip_prefix("/{name}/").unwrap_or("");
        let namespaced = if self.resource.namespaced() { "Namespaced" } else { "" };
        // The operation name without its verb; `Title`-cased subresource as Go's strings.Title.
        let rest = match operation_suffix {
            Some(suffix) => format!("{kind}{suffix}"),
            None => format!("{namespaced}{kind}{}", capitalize(subresource)),
        };
        let (verb, rest) = match operation_verb {
            // The verb table matches the shortest prefix, so `deletecollection` reads as
            // `delete` + `collection…`.
            "deletecollection" => ("delete".to_string(), format!("collection{rest}")),
            v => (v.to_string(), rest),
        };
        let id = operation_id(&verb, &self.resource.group, &self.version.name, &rest);

        let mut params = vec![Param::query("pretty", "string", PRETTY_DESCRIPTION)];
        let path = format!("{root}{sub}");
        if path.contains("{namespace}") {
            params.push(Param::path("namespace", NAMESPACE_DESCRIPTION));
        }
        if path.contains("{name}") {
            params.push(Param::path("name", &format!("name of the {kind}")));
        }
        let options = match action {
            "get" => "GetOptions",
            "list" | "deletecollection" => "ListOptions",
            "put" => "UpdateOptions",
            "patch" => "PatchOptions",
            "post" => "CreateOptions",
            "delete" => "DeleteOptions",
            other => unreachable!("no options for action {other}"),
        };
        params.extend(query_options(options));
        match method {
            Method::Post | Method::Put => params.push(Param::body(sample, true)),
            Method::Patch => params.push(Param::body(Payload::Patch, true)),
            Method::Delete if action == "delete" => params.push(Param::body(Payload::DeleteOptions, false)),
            Method::Get | Method::Delete => {}
        }

        let mut responses = vec![(200, "OK", sample)];
        match action {
            "post" => responses.extend([(201, "Created", sample), (202, "Accepted", sample)]),
            "delete" => responses.push((202, "Accepted", sample)),
            "put" => responses.push((201, "Created", sample)),
            _ => {}
        }
        let consumes = if method == Method::Patch { PATCH_CONTENT_TYPES.to_vec() } else { JSON_YAML.to_vec() };
        let description = self.description(subresource, operation_verb);
        (path, Operation { method, action, id, description, params, consumes, responses })
    }

    /// `descriptionFor`: "read status of the specified Foo", "delete collection of Foo", …
    fn description(&self, subresource: &str, verb: &str) -> String {
        let kind = &self.resource.names.kind;
        let article = match verb {
            "list" => " objects of kind ",
            "read" | "replace" | "patch" => " the specified ",
            "create" | "delete" => article_for(kind),
            _ => "",
        };
        let sub = if subresource.is_empty() { String::new() } else { format!(" {subresource} of") };
        match verb {
            "patch" => format!("partially update{sub}{article}{kind}"),
            "deletecollection" => {
                let sub = if sub.is_empty() { sub } else { format!("{sub} a") };
                format!("delete collection of{sub} {kind}")
            }
            _ => format!("{verb}{sub}{article}{kind}"),
        }
    }
}

/// One route of the CRD builder: where it hangs under the collection, its HTTP method, its
/// `x-kubernetes-action`, the verb its operation name and description start with, and what it
/// returns (and reads, for PUT and POST).
#[derive(Debug, Clone, Copy)]
struct Route {
    sub: &'static str,
    method: Method,
    action: &'static str,
    verb: &'static str,
    sample: Payload,
}

/// The routes of every resource, in the builder's order.
const MAIN_ROUTES: [Route; 7] = [
    Route { sub: "", method: Method::Get, action: "list", verb: "list", sample: Payload::List },
    Route { sub: "", method: Method::Post, action: "post", verb: "create", sample: Payload::Kind },
    Route { sub: "", method: Method::Delete, action: "deletecollection", verb: "deletecollection", sample: Payload::Status },
    Route { sub: "/{name}", method: Method::Get, action: "get", verb: "read", sample: Payload::Kind },
    Route { sub: "/{name}", method: Method::Put, action: "put", verb: "replace", sample: Payload::Kind },
    Route { sub: "/{name}", method: Method::Delete, action: "delete", verb: "delete", sample: Payload::Status },
    Route { sub: "/{name}", method: Method::Patch, action: "patch", verb: "patch", sample: Payload::Kind },
];

/// The routes of a `/status` or `/scale` subresource.
fn subresource_routes(sub: &'static str, sample: Payload) -> [Route; 3] {
    [
        Route { sub, method: Method::Get, action: "get", verb: "read", sample },
        Route { sub, method: Method::Put, action: "put", verb: "replace", sample },
        Route { sub, method: Method::Patch, action: "patch", verb: "patch", sample },
    ]
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Groups routes by path and hoists the parameters every operation of a path shares (except
/// the body) to the path, as kube-openapi's `findCommonParameters` does.
fn group_routes(routes: Vec<(String, Operation)>) -> Vec<PathItem> {
    let mut by_path: BTreeMap<String, Vec<Operation>> = BTreeMap::new();
    for (path, op) in routes {
        by_path.entry(path).or_default().push(op);
    }
    by_path
        .into_iter()
        .map(|(path, mut operations)| {
            let first = &operations[0];
            let mut common: Vec<Param> = first
                .params
                .iter()
                .filter(|p| p.location != Location::Body)
                .filter(|p| operations.iter().all(|op| op.params.iter().any(|q| q.name == p.name && q.location == p.location)))
                .cloned()
                .collect();
            common.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
            for op in &mut operations {
                op.params.retain(|p| !common.iter().any(|c| c.name == p.name && c.location == p.location));
                op.params.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
            }
            operations.sort_by_key(|op| op.method);
            PathItem { path, params: common, operations }
        })
        .collect()
}

/// The query parameters kube-apiserver derives from one of the `meta/v1` options structs
/// (`GetOptions`, `ListOptions`, …), with its descriptions, from `query-parameters.json`.
fn query_options(options: &str) -> Vec<Param> {
    static OPTIONS: LazyLock<BTreeMap<String, Vec<Param>>> = LazyLock::new(|| {
        let data: BTreeMap<String, Vec<Value>> =
            serde_json::from_str(include_str!("openapi_data/query-parameters.json")).expect("query-parameters.json is valid");
        data.into_iter()
            .map(|(options, params)| {
                let params = params
                    .iter()
                    .map(|p| {
                        Param::query(
                            p["name"].as_str().expect("name"),
                            p["type"].as_str().expect("type"),
                            p["description"].as_str().expect("description"),
                        )
                    })
                    .collect();
                (options, params)
            })
            .collect()
    });
    OPTIONS.get(options).cloned().unwrap_or_else(|| panic!("query-parameters.json lacks {options}"))
}

/// The served resource versions of a group-version, or of the whole model when `gv` is `None`,
/// in model order.
pub fn served<'a>(model: &'a Model, gv: Option<(&str, &str)>) -> Vec<Served<'a>> {
    model
        .resources
        .iter()
        .flat_map(|resource| resource.versions.iter().filter(|v| v.served).map(move |version| Served { resource, version }))
        .filter(|s| gv.is_none_or(|(g, v)| s.resource.group == g && s.version.name == v))
        .collect()
}

/// `x-kubernetes-group-version-kind` as an operation carries it: one object, in the key order
/// of the dialect (v2 documents are re-serialized from maps, so their keys are sorted).
pub fn operation_gvk(gvk: Gvk<'_>, dialect: Dialect) -> Value {
    match dialect {
        Dialect::V2 => json!({"group": gvk.group, "kind": gvk.kind, "version": gvk.version}),
        Dialect::V3 => json!({"group": gvk.group, "version": gvk.version, "kind": gvk.kind}),
    }
}

/// Responses of an operation: its own, then the common 401, keyed by status code. `render`
/// turns a description and payload into the response object of the dialect.
pub fn responses(op: &Operation, mut render: impl FnMut(&str, Payload) -> Value) -> Value {
    let mut out = Map::new();
    let mut sorted = op.responses.clone();
    sorted.sort_by_key(|r| r.0);
    for (code, description, payload) in sorted {
        out.insert(code.to_string(), render(description, payload));
    }
    out.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const OBJECT_METADATA_DESCRIPTION: &str =
    "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DESCRIPTION: &str =
    "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const EMBEDDED_API_VERSION_DESCRIPTION: &str = "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const EMBEDDED_KIND_DESCRIPTION: &str = "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// One schema node on its way to JSON. The fields are in the order kube-openapi serializes
/// `spec.Schema` (its `SchemaProps` struct order, then `$ref`, then the extensions sorted), so
/// documents come out byte for byte as kube-apiserver writes them.
#[derive(Debug, Default, Clone)]
struct Node {
    description: Option<String>,
    ty: Option<&'static str>,
    nullable: bool,
    format: Option<String>,
    default: Option<Value>,
    maximum: Option<f64>,
    exclusive_maximum: bool,
    minimum: Option<f64>,
    exclusive_minimum: bool,
    max_length: Option<u64>,
    min_length: Option<u64>,
    pattern: Option<String>,
    max_items: Option<u64>,
    min_items: Option<u64>,
    unique_items: bool,
    multiple_of: Option<f64>,
    enum_values: Vec<Value>,
    max_properties: Option<u64>,
    min_properties: Option<u64>,
    required: Vec<String>,
    items: Option<Value>,
    all_of: Vec<Value>,
    one_of: Vec<Value>,
    any_of: Vec<Value>,
    not: Option<Value>,
    /// `None` when the node declares no properties; sorted as Go maps serialize.
    properties: Option<BTreeMap<String, Value>>,
    additional_properties: Option<Value>,
    reference: Option<String>,
    extensions: BTreeMap<&'static str, Value>,
}

impl Node {
    fn property(&mut self, name: &str, schema: Value) {
        self.properties.get_or_insert_with(BTreeMap::new).insert(name.to_string(), schema);
    }

    /// Serializes the node. In v3, a `$ref` with siblings is wrapped in `allOf` (kube-openapi's
    /// `WrapRefs`), because OpenAPI 3.0 ignores siblings of `$ref`.
    fn into_json(mut self, dialect: Dialect) -> Value {
        if dialect == Dialect::V3 {
            if let Some(reference) = self.reference.take() {
                let ref_only = json!({ "$ref": reference });
                if self.clone().into_json(Dialect::V3).as_object().is_some_and(Map::is_empty) {
                    return ref_only;
                }
                self.all_of = vec![ref_only];
            }
        }
        let mut m = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                m.insert(key.to_string(), value);
            }
        };
        put("description", self.description.map(Value::from));
        put("type", self.ty.map(Value::from));
        put("nullable", self.nullable.then_some(Value::Bool(true)));
        put("format", self.format.map(Value::from));
        // A null default is Go's nil: not written.
        put("default", self.default.filter(|d| !d.is_null()));
        put("maximum", self.maximum.map(go_number));
        put("exclusiveMaximum", self.exclusive_maximum.then_some(Value::Bool(true)));
        put("minimum", self.minimum.map(go_number));
        put("exclusiveMinimum", self.exclusive_minimum.then_some(Value::Bool(true)));
        put("maxLength", self.max_length.map(Value::from));
        put("minLength", self.min_length.map(Value::from));
        put("pattern", self.pattern.map(Value::from));
        put("maxItems", self.max_items.map(Value::from));
        put("minItems", self.min_items.map(Value::from));
        put("uniqueItems", self.unique_items.then_some(Value::Bool(true)));
        put("multipleOf", self.multiple_of.map(go_number));
        put("enum", non_empty(self.enum_values));
        put("maxProperties", self.max_properties.map(Value::from));
        put("minProperties", self.min_properties.map(Value::from));
        put("required", non_empty(self.required.into_iter().map(Value::from).collect()));
        put("items", self.items);
        put("allOf", non_empty(self.all_of));
        put("oneOf", non_empty(self.one_of));
        put("anyOf", non_empty(self.any_of));
        put("not", self.not);
        put("properties", self.properties.filter(|p| !p.is_empty()).map(|p| Value::Object(p.into_iter().collect())));
        put("additionalProperties", self.additional_properties);
        put("$ref", self.reference.map(Value::from));
        for (key, value) in self.extensions {
            m.insert(key.to_string(), value);
        }
        Value::Object(m)
    }
}

fn non_empty(values: Vec<Value>) -> Option<Value> {
    (!values.is_empty()).then_some(Value::Array(values))
}

/// A float as Go's `encoding/json` writes it: integral values without a fraction.
fn go_number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        Value::from(f as i64)
    } else {
        Value::from(f)
    }
}

/// The `{"description": …, "$ref": …}` property that points to a built-in definition.
fn described_ref(description: &str, definition: &str, dialect: Dialect) -> Value {
    let node =
        Node { description: Some(description.into()), reference: Some(format!("{}{definition}", dialect.ref_prefix())), ..Node::default() };
    node.into_json(dialect)
}

fn type_meta_property(description: &str) -> Value {
    json!({"description": description, "type": "string"})
}

/// Translates one schema node, the way kube-apiserver publishes a structural schema:
/// `Unfold` (int-or-string gets its `anyOf`), in v2 `ToStructuralOpenAPIV2` (no junctors or
/// `nullable`; nullable and preserve-unknown-fields nodes lose their type and children), then
/// `ToKubeOpenAPI`, then `addEmbeddedProperties`; v2 also loses `default`. `example` is not part
/// of a structural schema, so kube-apiserver never publishes it, and neither do we.
fn translate(schema: &Schema, dialect: Dialect) -> Node {
    let v2 = dialect == Dialect::V2;
    let mut node = Node {
        description: schema.description.clone(),
        nullable: schema.nullable && !v2,
        format: schema.format.clone(),
        // kube-apiserver prunes defaults from v2 (`handler.PruneDefaults`), as its built-in
        // definitions have none there.
        default: schema.default.clone().filter(|_| !v2),
        maximum: schema.bounds.maximum,
        exclusive_maximum: schema.bounds.exclusive_maximum,
        minimum: schema.bounds.minimum,
        exclusive_minimum: schema.bounds.exclusive_minimum,
        max_length: schema.bounds.max_length,
        min_length: schema.bounds.min_length,
        pattern: schema.bounds.pattern.clone(),
        max_items: schema.bounds.max_items,
        min_items: schema.bounds.min_items,
        unique_items: schema.bounds.unique_items,
        multiple_of: schema.bounds.multiple_of,
        enum_values: schema.enum_values.clone().unwrap_or_default(),
        max_properties: schema.bounds.max_properties,
        min_properties: schema.bounds.min_properties,
        ..Node::default()
    };
    if !v2 {
        node.all_of = schema.composition.all_of.iter().map(canonical_value_validation).collect();
        node.any_of = schema.composition.any_of.iter().map(canonical_value_validation).collect();
        node.one_of = schema.composition.one_of.iter().map(canonical_value_validation).collect();
        node.not = schema.composition.not.as_ref().map(canonical_value_validation);
    }
    if !schema.validations.is_empty() {
        node.extensions.insert("x-kubernetes-validations", Value::Array(schema.validations.iter().map(validation_rule).collect()));
    }
    // Our strategic-merge-patch extensions (not accepted by kube-apiserver in CRDs); published
    // in both documents because kubectl computes strategic merge patches from them.
    if let Some(strategy) = &schema.patch_strategy {
        node.extensions.insert("x-kubernetes-patch-strategy", Value::from(strategy.as_str()));
    }
    if let Some(key) = &schema.patch_merge_key {
        node.extensions.insert("x-kubernetes-patch-merge-key", Value::from(key.as_str()));
    }

    // v2: nullable and preserve-unknown-fields values are published untyped and without
    // children, because kubectl's v2 validation rejects anything else there.
    let mut preserve_unknown = false;
    let mut embedded = false;
    match &schema.kind {
        SchemaKind::Object { properties, required, additional_properties, preserve_unknown_fields, embedded_resource, map_type } => {
            preserve_unknown = *preserve_unknown_fields;
            embedded = *embedded_resource;
            node.ty = Some("object");
            let drop_children = v2 && (schema.nullable || preserve_unknown);
            if !drop_children && !properties.is_empty() {
                for (name, property) in properties {
                    node.property(name, translate(property, dialect).into_json(dialect));
                }
            }
            node.required = required.clone();
            if v2 {
                // Nullable properties cannot be required in v2; a nullable map value clears them all.
                node.required.retain(|name| !properties.get(name).is_some_and(|p| p.nullable));
                if additional_properties.as_ref().is_some_and(|a| a.nullable) {
                    node.required.clear();
                }
            }
            node.additional_properties = additional_properties.as_ref().map(|values| translate(values, dialect).into_json(dialect));
            if let Some(map_type) = map_type {
                let value = match map_type {
                    MapType::Granular => "granular",
                    MapType::Atomic => "atomic",
                };
                node.extensions.insert("x-kubernetes-map-type", Value::from(value));
            }
        }
        SchemaKind::Array { items, list_type, list_map_keys } => {
            if !(v2 && schema.nullable) {
                node.ty = Some("array");
                node.items = Some(translate(items, dialect).into_json(dialect));
            }
            if !list_map_keys.is_empty() {
                node.extensions.insert("x-kubernetes-list-map-keys", json!(list_map_keys));
            }
            if let Some(list_type) = list_type {
                let value = match list_type {
                    ListType::Atomic => "atomic",
                    ListType::Set => "set",
                    ListType::Map => "map",
                };
                node.extensions.insert("x-kubernetes-list-type", Value::from(value));
            }
        }
        SchemaKind::String => node.ty = Some("string"),
        SchemaKind::Integer => node.ty = Some("integer"),
        SchemaKind::Number => node.ty = Some("number"),
        SchemaKind::Boolean => node.ty = Some("boolean"),
        SchemaKind::IntOrString => {
            node.extensions.insert("x-kubernetes-int-or-string", Value::Bool(true));
            if !v2 {
                unfold_int_or_string(&mut node);
            }
        }
        SchemaKind::Any { embedded_resource } => {
            preserve_unknown = true;
            embedded = *embedded_resource;
        }
    }
    if v2 && (schema.nullable || preserve_unknown) {
        node.ty = None;
    }
    if preserve_unknown {
        node.extensions.insert("x-kubernetes-preserve-unknown-fields", Value::Bool(true));
    }
    if embedded {
        node.extensions.insert("x-kubernetes-embedded-resource", Value::Bool(true));
        // v2 leaves preserve-unknown-fields objects alone: kubectl would otherwise reject the
        // unknown fields of the embedded object.
        if !(v2 && preserve_unknown) {
            node.property("apiVersion", type_meta_property(EMBEDDED_API_VERSION_DESCRIPTION));
            node.property("kind", type_meta_property(EMBEDDED_KIND_DESCRIPTION));
            node.property("metadata", described_ref(OBJECT_METADATA_DESCRIPTION, OBJECT_META, dialect));
            for name in ["kind", "apiVersion"] {
                if !node.required.iter().any(|r| r == name) {
                    node.required.push(name.into());
                }
            }
        }
    }
    node
}

/// `Unfold`: an int-or-string value gets `anyOf: [{type: integer}, {type: string}]`, or, when it
/// already has an `anyOf`, that pattern prepended to its `allOf` — unless one of the two is there.
fn unfold_int_or_string(node: &mut Node) {
    let pattern = vec![json!({"type": "integer"}), json!({"type": "string"})];
    let first_all_of_matches = node.all_of.first().and_then(|a| a.get("anyOf")).is_some_and(|a| a.as_array() == Some(&pattern));
    if node.any_of == pattern || first_all_of_matches {
        return;
    }
    if node.any_of.is_empty() {
        node.any_of = pattern;
    } else {
        node.all_of.insert(0, json!({ "anyOf": pattern }));
    }
}

/// A value validation under `allOf`/`anyOf`/`oneOf`/`not`, with its keys in the order
/// kube-openapi writes them (the model keeps these as the spec wrote them).
fn canonical_value_validation(value: &Value) -> Value {
    // kube-openapi's `SchemaProps` field order, as `Node::into_json` writes typed nodes.
    #[rustfmt::skip]
    const ORDER: [&str; 31] = [
        "description", "type", "nullable", "format", "title", "default", "maximum", "exclusiveMaximum", "minimum",
        "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "enum",
        "maxProperties", "minProperties", "required", "items", "allOf", "oneOf", "anyOf", "not", "properties",
        "additionalProperties", "patternProperties", "dependencies", "additionalItems",
    ];
    let Value::Object(m) = value else { return value.clone() };
    let mut out = Map::new();
    for key in ORDER {
        let Some(v) = m.get(key) else { continue };
        let v = match key {
            "items" | "not" | "additionalProperties" => canonical_value_validation(v),
            "allOf" | "oneOf" | "anyOf" => {
                Value::Array(v.as_array().map(|a| a.iter().map(canonical_value_validation).collect()).unwrap_or_default())
            }
            "properties" => {
                let sorted: BTreeMap<&String, Value> =
                    v.as_object().map(|p| p.iter().map(|(k, v)| (k, canonical_value_validation(v))).collect()).unwrap_or_default();
                Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            _ => v.clone(),
        };
        out.insert(key.to_string(), v);
    }
    let rest: BTreeMap<&String, &Value> = m.iter().filter(|(k, _)| !ORDER.contains(&k.as_str())).collect();
    out.extend(rest.into_iter().map(|(k, v)| (k.clone(), v.clone())));
    Value::Object(out)
}

/// One `x-kubernetes-validations` rule, in the field order of `apiextensions/v1.ValidationRule`.
fn validation_rule(rule: &ValidationRule) -> Value {
    let mut m = Map::new();
    m.insert("rule".into(), Value::from(rule.rule.as_str()));
    let optional = [
        ("message", rule.message.clone().map(Value::from)),
        ("messageExpression", rule.message_expression.clone().map(Value::from)),
        ("reason", rule.reason.clone().map(Value::from)),
        ("fieldPath", rule.field_path.clone().map(Value::from)),
        ("optionalOldSelf", rule.optional_old_self.map(Value::from)),
    ];
    for (key, value) in optional {
        if let Some(value) = value.filter(|v| v.as_str() != Some("")) {
            m.insert(key.into(), value);
        }
    }
    Value::Object(m)
}

/// `x-kubernetes-group-version-kind` on a definition: a list of one object with sorted keys.
fn definition_gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "kind": kind, "version": version}])
}

/// `x-kubernetes-selectable-fields`: the version's selectable fields without the leading dot.
/// kube-apiserver 1.32 writes the (possibly empty) list on both the kind and the list kind.
fn selectable_fields(version: &Version) -> Value {
    Value::Array(version.selectable_fields.iter().map(|path| json!({"fieldPath": path.trim_start_matches('.')})).collect())
}

/// The definition of the resource's kind (`dev.zeng.hello.v1.Foo`): the version's schema with
/// `apiVersion`, `kind` and `metadata` replaced by the standard ones (`buildKubeNative`).
pub fn kind_definition(served: Served<'_>, dialect: Dialect) -> Value {
    let Gvk { group, version, kind } = served.gvk();
    let schema = &served.version.schema;
    let mut node = translate(schema, dialect);
    if dialect == Dialect::V2 && node.extensions.contains_key("x-kubernetes-preserve-unknown-fields") {
        // Listed properties would make kubectl's v2 validation reject every other field.
        node = Node { ty: Some("object"), ..Node::default() };
    } else {
        node.property("metadata", described_ref(OBJECT_METADATA_DESCRIPTION, OBJECT_META, dialect));
        node.property("apiVersion", type_meta_property(API_VERSION_DESCRIPTION));
        node.property("kind", type_meta_property(KIND_DESCRIPTION));
    }
    node.extensions.insert("x-kubernetes-group-version-kind", definition_gvk(group, version, kind));
    node.extensions.insert("x-kubernetes-selectable-fields", selectable_fields(served.version));
    node.into_json(dialect)
}

/// The definition of the resource's list kind (`dev.zeng.hello.v1.FooList`), as
/// `buildListSchema` writes it.
pub fn list_definition(served: Served<'_>, dialect: Dialect) -> Value {
    let Gvk { group, version, kind } = served.gvk();
    let names = &served.resource.names;
    let mut node = Node {
        description: Some(format!("{} is a list of {kind}", names.list_kind)),
        ty: Some("object"),
        required: vec!["items".into()],
        ..Node::default()
    };
    let items = Node {
        description: Some(format!(
            "List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
            names.plural
        )),
        ty: Some("array"),
        items: Some(dialect.reference(&served.definition(Payload::Kind))),
        ..Node::default()
    };
    node.property("items", items.into_json(dialect));
    node.property("metadata", described_ref(LIST_METADATA_DESCRIPTION, LIST_META, dialect));
    node.property("apiVersion", type_meta_property(API_VERSION_DESCRIPTION));
    node.property("kind", type_meta_property(KIND_DESCRIPTION));
    node.extensions.insert("x-kubernetes-group-version-kind", definition_gvk(group, version, &names.list_kind));
    node.extensions.insert("x-kubernetes-selectable-fields", selectable_fields(served.version));
    node.into_json(dialect)
}

/// The definitions of a document: the kinds and list kinds of `served`, plus every built-in
/// definition (ObjectMeta, Status, Scale, …) reachable from them or from `paths`, sorted by
/// name. The built-ins are copied from kube-apiserver 1.32's own documents (`openapi_data/`);
/// the v3 form of `autoscaling/v1` Scale, absent from the captured v3 document (Foo has no
/// `/scale`), is its v2 text with the defaults openapi-gen adds in v3 and `$ref`s wrapped.
pub fn definitions(served: &[Served<'_>], paths: &Value, dialect: Dialect) -> Map<String, Value> {
    static V2: LazyLock<Map<String, Value>> = LazyLock::new(|| {
        serde_json::from_str(include_str!("openapi_data/builtin-definitions-v2.json")).expect("builtin-definitions-v2.json is valid")
    });
    static V3: LazyLock<Map<String, Value>> = LazyLock::new(|| {
        serde_json::from_str(include_str!("openapi_data/builtin-schemas-v3.json")).expect("builtin-schemas-v3.json is valid")
    });
    let builtins = match dialect {
        Dialect::V2 => &*V2,
        Dialect::V3 => &*V3,
    };
    let mut found: BTreeMap<String, Value> = BTreeMap::new();
    for s in served {
        found.insert(s.definition(Payload::Kind), kind_definition(*s, dialect));
        found.insert(s.definition(Payload::List), list_definition(*s, dialect));
    }
    let mut pending: Vec<String> = Vec::new();
    collect_refs(paths, dialect, &mut pending);
    for schema in found.values() {
        collect_refs(schema, dialect, &mut pending);
    }
    while let Some(name) = pending.pop() {
        if found.contains_key(&name) {
            continue;
        }
        let Some(schema) = builtins.get(&name) else { panic!("no built-in definition {name}") };
        collect_refs(schema, dialect, &mut pending);
        found.insert(name, schema.clone());
    }
    found.into_iter().collect()
}

/// Pushes the definition names `value` references.
fn collect_refs(value: &Value, dialect: Dialect, out: &mut Vec<String>) {
    match value {
        Value::Object(m) => {
            for (key, v) in m {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix(dialect.ref_prefix()) {
                            out.push(name.to_string());
                        }
                    }
                    _ => collect_refs(v, dialect, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, dialect, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------------------------

/// Serializes JSON exactly as Go's `encoding/json.Marshal` does (what kube-apiserver serves):
/// compact, keys in the order of the value, and `<`, `>`, `&`, U+2028 and U+2029 escaped as
/// `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`. The OpenAPI v3 index hashes these bytes.
///
/// (Floats whose shortest form needs an exponent are written as serde_json writes them, e.g.
/// `1e21` where Go writes `1e+21`; the documents we generate contain none.)
pub fn to_json_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    serde::Serialize::serialize(value, &mut serializer).expect("serializing a Value to memory cannot fail");
    out
}

/// serde_json's compact formatter plus Go's HTML-safe string escaping.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, fragment: &str) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use apimodel::{Names, PrinterColumn, Scope, Subresources};
    use indexmap::IndexMap;

    /// The reference responses of kube-apiserver 1.32 serving Foo, if present.
    pub fn reference(name: &str) -> Option<Vec<u8>> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/kube-apiserver-1.32").join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                eprintln!("note: {} is absent; skipping the comparison with kube-apiserver", path.display());
                None
            }
        }
    }

    fn string(description: &str) -> Schema {
        Schema { kind: SchemaKind::String, description: Some(description.into()), ..Schema::default() }
    }

    fn object(properties: Vec<(&str, Schema)>) -> Schema {
        let properties: IndexMap<String, Schema> = properties.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Schema {
            kind: SchemaKind::Object {
                properties,
                required: vec![],
                additional_properties: None,
                preserve_unknown_fields: false,
                embedded_resource: false,
                map_type: None,
            },
            ..Schema::default()
        }
    }

    /// The model of `foo-crd.yaml`, the CRD the reference responses were captured with.
    pub fn foo_model() -> Model {
        let spec = object(vec![("msg", string("Msg says hello world!")), ("msg1", string("Msg1 provides some verbose information"))]);
        let column = |name: &str, column_type: &str, json_path: &str, priority: i32| PrinterColumn {
            name: name.into(),
            column_type: column_type.into(),
            format: String::new(),
            description: String::new(),
            priority,
            json_path: json_path.into(),
        };
        Model {
            resources: vec![Resource {
                group: "hello.zeng.dev".into(),
                names: Names {
                    plural: "foos".into(),
                    singular: "foo".into(),
                    kind: "Foo".into(),
                    list_kind: "FooList".into(),
                    short_names: vec!["fo".into()],
                    categories: vec!["all".into()],
                },
                scope: Scope::Namespaced,
                versions: vec![Version {
                    name: "v1".into(),
                    served: true,
                    storage: true,
                    deprecated: false,
                    deprecation_warning: None,
                    schema: object(vec![("spec", spec)]),
                    subresources: Subresources::default(),
                    printer_columns: vec![
                        column("Message", "string", ".spec.msg", 0),
                        column("Message1", "string", ".spec.msg1", 1),
                        column("Age", "date", ".metadata.creationTimestamp", 0),
                    ],
                    selectable_fields: vec![],
                    conversion: Default::default(),
                }],
                source: "foo.yaml".into(),
            }],
        }
    }

    /// Foo with every schema feature, cluster-scoped, with both subresources.
    pub fn rich_model() -> Model {
        let mut model = foo_model();
        let resource = &mut model.resources[0];
        resource.scope = Scope::Cluster;
        let version = &mut resource.versions[0];
        version.subresources = Subresources {
            status: true,
            scale: Some(apimodel::Scale {
                spec_replicas_path: ".spec.replicas".into(),
                status_replicas_path: ".status.replicas".into(),
                label_selector_path: None,
            }),
        };
        version.selectable_fields = vec![".spec.msg".into()];
        let mut replicas = Schema { kind: SchemaKind::Integer, format: Some("int32".into()), ..Schema::default() };
        replicas.bounds.minimum = Some(0.0);
        replicas.default = Some(json!(1));
        let mut nullable = string("may be null");
        nullable.nullable = true;
        let port = Schema { kind: SchemaKind::IntOrString, ..Schema::default() };
        let mut items = object(vec![("name", string("the key")), ("port", port)]);
        if let SchemaKind::Object { required, .. } = &mut items.kind {
            required.push("name".into());
        }
        let mut list = Schema {
            kind: SchemaKind::Array { items: Box::new(items), list_type: Some(ListType::Map), list_map_keys: vec!["name".into()] },
            ..Schema::default()
        };
        list.patch_strategy = Some("merge".into());
        list.patch_merge_key = Some("name".into());
        let raw = Schema { kind: SchemaKind::Any { embedded_resource: false }, ..Schema::default() };
        let embedded = Schema {
            kind: SchemaKind::Object {
                properties: IndexMap::new(),
                required: vec![],
                additional_properties: None,
                preserve_unknown_fields: false,
                embedded_resource: true,
                map_type: None,
            },
            ..Schema::default()
        };
        let mut spec = object(vec![("replicas", replicas), ("note", nullable), ("ports", list), ("raw", raw), ("template", embedded)]);
        if let SchemaKind::Object { required, .. } = &mut spec.kind {
            required.extend(["replicas".to_string(), "note".to_string()]);
        }
        spec.validations = vec![ValidationRule {
            rule: "self.replicas < 10".into(),
            message: Some("too many".into()),
            message_expression: None,
            reason: None,
            field_path: None,
            optional_old_self: None,
        }];
        version.schema =
            object(vec![("spec", spec), ("status", object(vec![("replicas", Schema { kind: SchemaKind::Integer, ..Schema::default() })]))]);
        model
    }

    #[test]
    fn names_follow_kube_apiserver() {
        assert_eq!(definition_name("hello.zeng.dev", "v1", "Foo"), "dev.zeng.hello.v1.Foo");
        assert_eq!(definition_name("example", "v1beta1", "Bar"), "example.v1beta1.Bar");
        assert_eq!(tag("hello.zeng.dev", "v1"), "helloZengDev_v1");
        assert_eq!(tag("storage.k8s.io", "v1beta1"), "storage_v1beta1");
        assert_eq!(
            operation_id("delete", "hello.zeng.dev", "v1", "collectionNamespacedFoo"),
            "deleteHelloZengDevV1CollectionNamespacedFoo"
        );
        assert_eq!(operation_id("list", "my-group.io", "v2alpha1", "Foo"), "listMyGroupIoV2alpha1Foo");
        assert_eq!(article_for("Foo"), " a ");
        assert_eq!(article_for("Ingress"), " an ");
        assert_eq!(article_for("Bars"), " ");
    }

    #[test]
    fn routes_of_a_cluster_scoped_resource_with_subresources() {
        let model = rich_model();
        let served = served(&model, None);
        let paths = served[0].paths();
        let listed: Vec<(String, Vec<&str>)> =
            paths.iter().map(|p| (p.path.clone(), p.operations.iter().map(|o| o.id.as_str()).collect())).collect();
        assert_eq!(
            listed,
            vec![
                (
                    "/apis/hello.zeng.dev/v1/foos".to_string(),
                    vec!["listHelloZengDevV1Foo", "createHelloZengDevV1Foo", "deleteHelloZengDevV1CollectionFoo"]
                ),
                (
                    "/apis/hello.zeng.dev/v1/foos/{name}".to_string(),
                    vec!["readHelloZengDevV1Foo", "replaceHelloZengDevV1Foo", "deleteHelloZengDevV1Foo", "patchHelloZengDevV1Foo"]
                ),
                (
                    "/apis/hello.zeng.dev/v1/foos/{name}/scale".to_string(),
                    vec!["readHelloZengDevV1FooScale", "replaceHelloZengDevV1FooScale", "patchHelloZengDevV1FooScale"]
                ),
                (
                    "/apis/hello.zeng.dev/v1/foos/{name}/status".to_string(),
                    vec!["readHelloZengDevV1FooStatus", "replaceHelloZengDevV1FooStatus", "patchHelloZengDevV1FooStatus"]
                ),
            ]
        );
        let status = &paths[3];
        assert_eq!(status.operations[2].description, "partially update status of the specified Foo");
        assert_eq!(status.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["name", "pretty"]);
        let scale_put = &paths[2].operations[1];
        assert_eq!(scale_put.body().and_then(|b| b.body), Some(Payload::Scale));
        assert_eq!(scale_put.responses, vec![(200, "OK", Payload::Scale), (201, "Created", Payload::Scale)]);
    }

    #[test]
    fn schema_translation_differs_between_v2_and_v3_as_kube_apiserver_does() {
        let model = rich_model();
        let served = served(&model, None);
        let v3 = kind_definition(served[0], Dialect::V3);
        let spec = &v3["properties"]["spec"];
        assert_eq!(spec["required"], json!(["replicas", "note"]));
        assert_eq!(spec["properties"]["note"], json!({"description": "may be null", "type": "string", "nullable": true}));
        assert_eq!(spec["properties"]["replicas"], json!({"type": "integer", "format": "int32", "default": 1, "minimum": 0}));
        assert_eq!(
            spec["properties"]["ports"]["items"]["properties"]["port"],
            json!({"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true})
        );
        assert_eq!(spec["properties"]["raw"], json!({"x-kubernetes-preserve-unknown-fields": true}));
        assert_eq!(spec["properties"]["template"]["required"], json!(["kind", "apiVersion"]));
        assert_eq!(
            spec["properties"]["template"]["properties"]["metadata"]["allOf"],
            json!([{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}])
        );
        assert_eq!(spec["x-kubernetes-validations"], json!([{"rule": "self.replicas < 10", "message": "too many"}]));
        assert_eq!(spec["properties"]["ports"]["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(v3["x-kubernetes-selectable-fields"], json!([{"fieldPath": "spec.msg"}]));
        let keys: Vec<&String> = spec["properties"]["ports"].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "type",
                "items",
                "x-kubernetes-list-map-keys",
                "x-kubernetes-list-type",
                "x-kubernetes-patch-merge-key",
                "x-kubernetes-patch-strategy"
            ]
        );

        let v2 = kind_definition(served[0], Dialect::V2);
        let spec = &v2["properties"]["spec"];
        // v2 drops nullable (and the type of nullable values), and nullable fields from required.
        assert_eq!(spec["required"], json!(["replicas"]));
        assert_eq!(spec["properties"]["replicas"], json!({"type": "integer", "format": "int32", "minimum": 0}));
        assert_eq!(spec["properties"]["note"], json!({"description": "may be null"}));
        assert_eq!(spec["properties"]["ports"]["items"]["properties"]["port"], json!({"x-kubernetes-int-or-string": true}));
        assert_eq!(
            spec["properties"]["template"]["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
    }

    #[test]
    fn a_root_that_preserves_unknown_fields_is_published_bare_in_v2() {
        let mut model = foo_model();
        if let SchemaKind::Object { preserve_unknown_fields, .. } = &mut model.resources[0].versions[0].schema.kind {
            *preserve_unknown_fields = true;
        }
        let served = served(&model, None);
        let v2 = kind_definition(served[0], Dialect::V2);
        let gvk = json!([{"group": "hello.zeng.dev", "kind": "Foo", "version": "v1"}]);
        assert_eq!(v2, json!({"type": "object", "x-kubernetes-group-version-kind": gvk, "x-kubernetes-selectable-fields": []}));
        let v3 = kind_definition(served[0], Dialect::V3);
        assert_eq!(v3["x-kubernetes-preserve-unknown-fields"], true);
        assert!(v3["properties"]["metadata"].is_object());
    }

    #[test]
    fn go_json_escapes_html_characters() {
        let value = json!({"b": "<a & b>\u{2028}", "a": [1, 2.5, true, null]});
        assert_eq!(String::from_utf8(to_json_bytes(&value)).unwrap(), r#"{"b":"\u003ca \u0026 b\u003e\u2028","a":[1,2.5,true,null]}"#);
    }

    #[test]
    fn builtin_definitions_are_closed_under_refs() {
        let model = rich_model();
        let served = served(&model, None);
        for dialect in [Dialect::V2, Dialect::V3] {
            let paths: Vec<Value> = served[0]
                .paths()
                .iter()
                .flat_map(|p| {
                    p.operations
                        .iter()
                        .flat_map(|o| o.params.iter().filter_map(|p| p.body).map(|b| dialect.reference(&served[0].definition(b))))
                })
                .collect();
            let defs = definitions(&served, &Value::Array(paths), dialect);
            assert!(defs.contains_key("io.k8s.api.autoscaling.v1.ScaleStatus"));
            assert!(defs.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry"));
        }
    }
}
