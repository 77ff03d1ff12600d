//! Generators: each reads the [`apimodel::Model`] and emits one artifact.

pub mod discovery;
pub mod openapi_common;
pub mod openapi_v2;
pub mod openapi_v2_pb;
pub mod openapi_v3;
pub mod registry;
pub mod rust_types;
