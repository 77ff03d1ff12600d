//! Models shared by the generators' unit tests.

use crate::spec::{parse_documents, RawSpec};
use apimodel::Model;

/// The model of `spec/foo.yaml`.
pub fn foo_model() -> Model {
    model_of(include_str!("../../spec/foo.yaml"))
}

/// The model of one YAML text.
pub fn model_of(text: &str) -> Model {
    let documents = parse_documents("test.yaml", "test.yaml", text).expect("valid YAML");
    crate::model::build(&RawSpec { documents, ..Default::default() }).expect("valid spec")
}
