//! The checked-in JSON Schema matches the spec types.

const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/kars-spec.schema.json");

fn generated() -> String {
    let mut text = serde_json::to_string_pretty(&kars::spec::json_schema()).unwrap();
    text.push('\n');
    text
}

#[test]
fn the_checked_in_schema_is_up_to_date() {
    let checked_in = std::fs::read_to_string(SCHEMA_PATH).unwrap_or_default();
    assert!(
        checked_in == generated(),
        "schema/kars-spec.schema.json is stale; regenerate it with\n    cargo run -- schema > schema/kars-spec.schema.json"
    );
}

#[test]
fn the_schema_describes_the_spec() {
    let schema = kars::spec::json_schema();
    assert_eq!(schema["title"], "kars workflow spec");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let required: Vec<&str> = schema["required"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    for field in ["version", "name", "timezone", "nodes", "edges"] {
        assert!(required.contains(&field), "{field} is not required: {required:?}");
    }
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["$defs"]["NodeId"]["pattern"], "^[A-Za-z][A-Za-z0-9_]*$");
}

#[test]
fn the_bundled_spec_points_at_the_schema() {
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml")).unwrap();
    assert!(yaml.starts_with("# yaml-language-server: $schema=../schema/kars-spec.schema.json"));
}
