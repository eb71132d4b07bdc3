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

/// Every `pattern` of the schema, with its JSON pointer.
fn patterns(value: &serde_json::Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                if key == "pattern"
                    && let Some(p) = v.as_str()
                {
                    out.push((format!("{at}/pattern"), p.to_owned()));
                }
                if key == "patternProperties"
                    && let Some(props) = v.as_object()
                {
                    out.extend(props.keys().map(|p| (format!("{at}/patternProperties"), p.clone())));
                }
                patterns(v, &format!("{at}/{key}"), out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                patterns(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Every pattern in the schema is ECMA-262, compiled by node's JavaScript engine as editors do
/// (yaml-language-server): an inline flag such as `(?i)` is an "Invalid group" there. And the
/// week-time pattern takes exactly what the spec's parser takes.
#[test]
fn every_schema_pattern_is_ecma_262_and_week_times_agree_with_the_parser() {
    let mut all = Vec::new();
    patterns(&kars::spec::json_schema(), "#", &mut all);
    assert!(all.len() >= 6, "{all:?}");
    let week = kars::spec::json_schema()["$defs"]["WeekTime"]["pattern"].as_str().unwrap().to_owned();
    let samples = [
        "Monday 09:00",
        "mon 9:00",
        "THURSDAY 17:00",
        "Thu 17:00 +1w",
        "Monday 09:45 +8w",
        "  Fri 23:59  ",
        "Mondays 09:00",
        "Monday 24:00",
        "Monday 9:0",
        "Monday 09:00 +9w",
        "Monday 09:00 +0w",
        "Moon 09:00",
        "Monday",
        "Monday 09:00 +1W",
        "Wednesday 10:00 +01w",
        "sun 00:00",
    ];
    let expected: Vec<bool> = samples.iter().map(|s| s.parse::<kars::spec::calendar::WeekTime>().is_ok()).collect();
    let script = format!(
        "const ps = {}; for (const [at, p] of ps) {{ try {{ new RegExp(p, 'u'); }} catch (e) {{ console.log('BAD ' + at + ' ' + e.message); }} }}\n\
         const week = new RegExp({}, 'u'); console.log(JSON.stringify({}.map(s => week.test(s))));",
        serde_json::to_string(&all).unwrap(),
        serde_json::to_string(&week).unwrap(),
        serde_json::to_string(&samples).unwrap()
    );
    let required = std::env::var("KARS_REQUIRE_MERMAID_JS").is_ok_and(|v| v == "1");
    let out = match std::process::Command::new("node").arg("-e").arg(&script).output() {
        Ok(out) => out,
        Err(e) if !required => {
            eprintln!("skipped: node is not available ({e}); set KARS_REQUIRE_MERMAID_JS=1 to fail instead");
            return;
        }
        Err(e) => panic!("node is required (KARS_REQUIRE_MERMAID_JS=1): {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("BAD "), "patterns that are not ECMA-262:\n{stdout}");
    let matched: Vec<bool> = serde_json::from_str(stdout.lines().last().unwrap_or("[]")).unwrap();
    for ((sample, js), rust) in samples.iter().zip(&matched).zip(&expected) {
        assert_eq!(js, rust, "`{sample}`: the schema says {js}, the parser says {rust}");
    }
}
