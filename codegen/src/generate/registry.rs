//! The registry the server is driven by: one [`Endpoint`] per served resource version with its
//! table printer, the axum routes of every resource, and the list of emitted documents.
//!
//! [`Endpoint`]: ../../generated/struct.Endpoint.html

use crate::ident::snake;
use apimodel::{Model, Scope};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The token stream of `registry.rs`. `documents` names the emitted document files (relative to
/// `OUT_DIR`), which the generated crate embeds.
pub fn registry(model: &Model, documents: &[String]) -> TokenStream {
    let mut endpoints = Vec::new();
    let mut printers = Vec::new();
    let mut routes = Vec::new();
    let mut index = 0usize;
    for (r, resource) in model.resources.iter().enumerate() {
        for version in resource.versions.iter().filter(|v| v.served) {
            let printer = format_ident!("{}_{}_{}_cells", snake(&resource.group), snake(&resource.names.plural), snake(&version.name));
            let cells = version.printer_columns.iter().map(|c| {
                // The model only holds paths that parse.
                let steps = crate::jsonpath::parse(&c.json_path).unwrap_or_default();
                let first = crate::jsonpath::first_result(&steps);
                quote!(#first.cloned().unwrap_or(::serde_json::Value::Null))
            });
            let doc = format!("Printer-column cells of `{}/{}`, in spec order.", resource.qualified_name(), version.name);
            printers.push(quote! {
                #[doc = #doc]
                #[allow(unused_variables)]
                fn #printer(object: &::serde_json::Value) -> ::std::vec::Vec<::serde_json::Value> {
                    ::std::vec![#(#cells),*]
                }
            });
            let v = &version.name;
            endpoints.push(quote! {
                crate::Endpoint { resource: #r, version: #v, table_cells: #printer }
            });
            routes.extend(resource_routes(&resource.group, v, &resource.names.plural, resource.scope, index, &version.subresources));
            index += 1;
        }
    }
    let docs = documents.iter().map(|name| {
        let path = format!("/{name}");
        quote!((#name, include_bytes!(concat!(env!("OUT_DIR"), #path))))
    });
    quote! {
        /// Every served resource version, in model order.
        pub static ENDPOINTS: &[crate::Endpoint] = &[#(#endpoints),*];

        /// The documents codegen emitted, by name (`discovery/apis.json`, `openapi/v2.json`, …).
        pub static DOCUMENTS: &[(&str, &[u8])] = &[#(#docs),*];

        /// The validated model as JSON, read by [`crate::model`].
        pub(crate) static MODEL_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/model.json"));

        #(#printers)*

        /// The axum routes of every served resource, each handing its requests to `engine`.
        pub fn routes<E: crate::Engine>(engine: E) -> ::axum::Router {
            ::axum::Router::new() #(#routes)*
        }
    }
}

/// The shapes of resource paths; each becomes a route with the matching extractor.
#[derive(Clone, Copy)]
enum Shape {
    /// `/apis/g/v/plural` (all namespaces, or a cluster-scoped collection).
    Collection,
    /// `/apis/g/v/namespaces/{namespace}/plural`.
    NamespacedCollection,
    /// `/apis/g/v/plural/{name}`.
    Item,
    /// `/apis/g/v/namespaces/{namespace}/plural/{name}`.
    NamespacedItem,
}

fn resource_routes(
    group: &str,
    version: &str,
    plural: &str,
    scope: Scope,
    endpoint: usize,
    sub: &apimodel::Subresources,
) -> Vec<TokenStream> {
    let base = format!("/apis/{group}/{version}");
    let mut out = Vec::new();
    let mut add =
        |path: String, shape: Shape, subresource: Option<&str>, watch: bool| out.push(route(&path, shape, subresource, watch, endpoint));
    let mut subresources: Vec<&str> = Vec::new();
    if sub.status {
        subresources.push("status");
    }
    if sub.scale.is_some() {
        subresources.push("scale");
    }
    match scope {
        Scope::Namespaced => {
            add(format!("{base}/{plural}"), Shape::Collection, None, false);
            add(format!("{base}/namespaces/{{namespace}}/{plural}"), Shape::NamespacedCollection, None, false);
            add(format!("{base}/namespaces/{{namespace}}/{plural}/{{name}}"), Shape::NamespacedItem, None, false);
            for s in &subresources {
                add(format!("{base}/namespaces/{{namespace}}/{plural}/{{name}}/{s}"), Shape::NamespacedItem, Some(s), false);
            }
            add(format!("{base}/watch/{plural}"), Shape::Collection, None, true);
            add(format!("{base}/watch/namespaces/{{namespace}}/{plural}"), Shape::NamespacedCollection, None, true);
            add(format!("{base}/watch/namespaces/{{namespace}}/{plural}/{{name}}"), Shape::NamespacedItem, None, true);
        }
        Scope::Cluster => {
            add(format!("{base}/{plural}"), Shape::Collection, None, false);
            add(format!("{base}/{plural}/{{name}}"), Shape::Item, None, false);
            for s in &subresources {
                add(format!("{base}/{plural}/{{name}}/{s}"), Shape::Item, Some(s), false);
            }
            add(format!("{base}/watch/{plural}"), Shape::Collection, None, true);
            add(format!("{base}/watch/{plural}/{{name}}"), Shape::Item, None, true);
        }
    }
    out
}

fn route(path: &str, shape: Shape, subresource: Option<&str>, watch: bool, endpoint: usize) -> TokenStream {
    let subresource = match subresource {
        Some(s) => quote!(::std::option::Option::Some(#s)),
        None => quote!(::std::option::Option::None),
    };
    let (extract, namespace, name) = match shape {
        Shape::Collection => (quote!(), quote!(None), quote!(None)),
        Shape::NamespacedCollection => {
            (quote!(::axum::extract::Path(namespace): ::axum::extract::Path<::std::string::String>,), quote!(Some(namespace)), quote!(None))
        }
        Shape::Item => {
            (quote!(::axum::extract::Path(name): ::axum::extract::Path<::std::string::String>,), quote!(None), quote!(Some(name)))
        }
        Shape::NamespacedItem => (
            quote!(::axum::extract::Path((namespace, name)): ::axum::extract::Path<(::std::string::String, ::std::string::String)>,),
            quote!(Some(namespace)),
            quote!(Some(name)),
        ),
    };
    quote! {
        .route(#path, ::axum::routing::any({
            let engine = engine.clone();
            move |#extract request: ::axum::extract::Request| async move {
                let target = crate::Target {
                    endpoint: &ENDPOINTS[#endpoint],
                    namespace: #namespace,
                    name: #name,
                    subresource: #subresource,
                    watch_path: #watch,
                };
                engine.serve(target, request).await
            }
        }))
    }
}
