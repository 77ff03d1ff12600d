//! Rust types for every served version: `Foo`, `FooSpec`, …, and `FooList`, with serde and the
//! k8s-openapi traits (`Resource`, `Metadata`, `ListableResource`) so `kube::Api<Foo>` works.
//!
//! Types live in `<group>::<version>` modules, e.g. `generated::hello_zeng_dev::v1::Foo`.

use crate::ident::{camel, group_module, ident, snake};
use apimodel::{Model, Resource, Schema, SchemaKind, Scope, Version};
use proc_macro2::TokenStream;
use quote::quote;
use std::collections::{BTreeMap, HashSet};

/// The token stream of all type modules.
pub fn rust_types(model: &Model) -> TokenStream {
    // group module → version module → items
    let mut groups: BTreeMap<String, BTreeMap<String, Vec<TokenStream>>> = BTreeMap::new();
    for resource in &model.resources {
        for version in resource.versions.iter().filter(|v| v.served) {
            let items = groups.entry(resource.group.clone()).or_default().entry(version.name.clone()).or_default();
            items.push(resource_types(resource, version));
        }
    }
    let modules = groups.into_iter().map(|(group, versions)| {
        let gmod = ident(&group_module(&group));
        let gdoc = format!("Types of the API group `{group}`.");
        let vmods = versions.into_iter().map(|(version, items)| {
            let vmod = ident(&snake(&version));
            let vdoc = format!("Types of `{group}/{version}`.");
            quote! {
                #[doc = #vdoc]
                pub mod #vmod {
                    #(#items)*
                }
            }
        });
        quote! {
            #[doc = #gdoc]
            pub mod #gmod {
                #(#vmods)*
            }
        }
    });
    quote! { #(#modules)* }
}

/// Collects the structs of one resource version.
struct Types {
    items: Vec<TokenStream>,
    names: HashSet<String>,
}

impl Types {
    /// A struct name not used yet in this module.
    fn unique(&mut self, wanted: String) -> String {
        let mut name = wanted.clone();
        let mut n = 2;
        while !self.names.insert(name.clone()) {
            name = format!("{wanted}{n}");
            n += 1;
        }
        name
    }

    /// The Rust type of a value following `schema`; nested objects become structs named `hint`.
    fn type_of(&mut self, schema: &Schema, hint: &str) -> TokenStream {
        match &schema.kind {
            SchemaKind::Object { properties, additional_properties, preserve_unknown_fields, embedded_resource, .. } => {
                if !properties.is_empty() {
                    let name = self.unique(hint.to_string());
                    self.object_struct(&name, schema);
                    let id = ident(&name);
                    quote!(#id)
                } else if let Some(values) = additional_properties {
                    let inner = self.type_of(values, &format!("{hint}Value"));
                    quote!(::std::collections::BTreeMap<::std::string::String, #inner>)
                } else if *preserve_unknown_fields || *embedded_resource {
                    quote!(::serde_json::Value)
                } else {
                    quote!(::serde_json::Map<::std::string::String, ::serde_json::Value>)
                }
            }
            SchemaKind::Array { items, .. } => {
                let inner = self.type_of(items, &format!("{hint}Item"));
                quote!(::std::vec::Vec<#inner>)
            }
            SchemaKind::String => quote!(::std::string::String),
            SchemaKind::Integer => match schema.format.as_deref() {
                Some("int32") => quote!(i32),
                _ => quote!(i64),
            },
            SchemaKind::Number => quote!(f64),
            SchemaKind::Boolean => quote!(bool),
            SchemaKind::IntOrString => quote!(::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString),
            SchemaKind::Any { .. } => quote!(::serde_json::Value),
        }
    }

    /// Emits `struct name` for an object schema with properties.
    fn object_struct(&mut self, name: &str, schema: &Schema) {
        let SchemaKind::Object { properties, required, .. } = &schema.kind else { return };
        let mut fields = Vec::new();
        let mut can_default = true;
        let mut field_names = FieldNames::default();
        for (json, prop) in properties {
            let field = field_names.ident(json);
            let ty = self.type_of(prop, &format!("{name}{}", camel(json)));
            let doc = field_doc(prop);
            if required.contains(json) && !prop.nullable {
                if matches!(prop.kind, SchemaKind::IntOrString) {
                    can_default = false;
                }
                fields.push(quote! { #doc #[serde(rename = #json)] pub #field: #ty, });
            } else {
                fields.push(quote! {
                    #doc
                    #[serde(rename = #json, default, skip_serializing_if = "::std::option::Option::is_none")]
                    pub #field: ::std::option::Option<#ty>,
                });
            }
        }
        let id = ident(name);
        let doc = struct_doc(schema, name);
        let default = can_default.then(|| quote!(Default,));
        self.items.push(quote! {
            #doc
            #[derive(Clone, Debug, PartialEq, #default ::serde::Serialize, ::serde::Deserialize)]
            pub struct #id { #(#fields)* }
        });
    }
}

/// Field identifiers of one struct: JSON names that map to the same Rust name (`mirrorPercent`
/// and `mirror_percent`) get numbered suffixes, in spec order.
#[derive(Default)]
struct FieldNames {
    used: HashSet<String>,
}

impl FieldNames {
    fn ident(&mut self, json: &str) -> proc_macro2::Ident {
        let base = snake(json);
        let mut name = base.clone();
        let mut n = 2;
        while !self.used.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        ident(&name)
    }
}

fn field_doc(schema: &Schema) -> TokenStream {
    match &schema.description {
        Some(d) => quote!(#[doc = #d]),
        None => quote!(),
    }
}

fn struct_doc(schema: &Schema, name: &str) -> TokenStream {
    let d = schema.description.clone().unwrap_or_else(|| format!("`{name}` as declared by the spec."));
    quote!(#[doc = #d])
}

/// `Foo`, its nested types, `FooList` and the trait impls.
fn resource_types(resource: &Resource, version: &Version) -> TokenStream {
    let kind = &resource.names.kind;
    let mut types = Types { items: Vec::new(), names: HashSet::from([kind.clone(), resource.names.list_kind.clone()]) };
    // The root's own fields, except those every object has.
    let mut fields = Vec::new();
    let mut wire_fields = Vec::new();
    let mut wire_init = Vec::new();
    if let SchemaKind::Object { properties, required, .. } = &version.schema.kind {
        let mut field_names = FieldNames { used: HashSet::from(["metadata".to_string(), "api_version".to_string(), "kind".to_string()]) };
        for (json, prop) in properties {
            if ["apiVersion", "kind", "metadata"].contains(&json.as_str()) {
                continue;
            }
            let field = field_names.ident(json);
            let ty = types.type_of(prop, &format!("{kind}{}", camel(json)));
            let doc = field_doc(prop);
            let (ty, attrs) = if required.contains(json) && !prop.nullable {
                (ty, quote!(#[serde(rename = #json)]))
            } else {
                (
                    quote!(::std::option::Option<#ty>),
                    quote!(#[serde(rename = #json, default, skip_serializing_if = "::std::option::Option::is_none")]),
                )
            };
            fields.push(quote! { #doc #attrs pub #field: #ty, });
            wire_fields.push(quote! { #attrs #field: &'a #ty, });
            wire_init.push(quote! { #field: &self.#field, });
        }
    }
    let id = ident(kind);
    let list_id = ident(&resource.names.list_kind);
    let group = &resource.group;
    let ver = &version.name;
    let api_version = if group.is_empty() { ver.clone() } else { format!("{group}/{ver}") };
    let plural = &resource.names.plural;
    let list_kind = &resource.names.list_kind;
    let scope = match resource.scope {
        Scope::Namespaced => quote!(::k8s_openapi::NamespaceResourceScope),
        Scope::Cluster => quote!(::k8s_openapi::ClusterResourceScope),
    };
    let doc = version
        .schema
        .description
        .clone()
        .unwrap_or_else(|| format!("A `{kind}` of `{api_version}` ({} resource `{plural}`).", resource.scope.as_str()));
    let list_doc = format!("A list of `{kind}` objects.");
    let nested = &types.items;
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug, PartialEq, Default, ::serde::Deserialize)]
        pub struct #id {
            /// Standard object metadata.
            #[serde(default)]
            pub metadata: ::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            #(#fields)*
        }

        impl ::serde::Serialize for #id {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                // apiVersion and kind are constants of the type, written on the wire only.
                #[derive(::serde::Serialize)]
                struct Wire<'a> {
                    #[serde(rename = "apiVersion")]
                    api_version: &'static str,
                    kind: &'static str,
                    metadata: &'a ::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
                    #(#wire_fields)*
                }
                ::serde::Serialize::serialize(&Wire {
                    api_version: #api_version,
                    kind: #kind,
                    metadata: &self.metadata,
                    #(#wire_init)*
                }, serializer)
            }
        }

        impl ::k8s_openapi::Resource for #id {
            const API_VERSION: &'static str = #api_version;
            const GROUP: &'static str = #group;
            const KIND: &'static str = #kind;
            const VERSION: &'static str = #ver;
            const URL_PATH_SEGMENT: &'static str = #plural;
            type Scope = #scope;
        }

        impl ::k8s_openapi::Metadata for #id {
            type Ty = ::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
            fn metadata(&self) -> &Self::Ty {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut Self::Ty {
                &mut self.metadata
            }
        }

        impl ::k8s_openapi::ListableResource for #id {
            const LIST_KIND: &'static str = #list_kind;
        }

        #[doc = #list_doc]
        #[derive(Clone, Debug, PartialEq, Default, ::serde::Deserialize)]
        pub struct #list_id {
            /// Standard list metadata.
            #[serde(default)]
            pub metadata: ::k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta,
            /// The objects.
            #[serde(default)]
            pub items: ::std::vec::Vec<#id>,
        }

        impl ::serde::Serialize for #list_id {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                #[derive(::serde::Serialize)]
                struct Wire<'a> {
                    #[serde(rename = "apiVersion")]
                    api_version: &'static str,
                    kind: &'static str,
                    metadata: &'a ::k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta,
                    items: &'a [#id],
                }
                ::serde::Serialize::serialize(&Wire { api_version: #api_version, kind: #list_kind, metadata: &self.metadata, items: &self.items }, serializer)
            }
        }

        #(#nested)*
    }
}
