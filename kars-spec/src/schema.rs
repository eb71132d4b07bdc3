//! The JSON Schema of the spec format, generated from the serde types with schemars.
//!
//! The checked-in copy lives at `schema/kars-spec.schema.json`; regenerate it with
//! `cargo run -- schema > schema/kars-spec.schema.json`. A test fails when it is stale.

use crate::spec::Spec;

/// The JSON Schema (draft 2020-12) of a spec, for editors and other tools.
///
/// The schema checks shapes and id patterns; rules across fields (references, the graph,
/// time order) are only checked by [`crate::load`].
#[must_use]
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Spec);
    schema.to_value()
}
