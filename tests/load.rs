//! Loader tests: every fixture under `tests/specs/` gives its snapshotted diagnostic, and
//! hostile inputs (huge, deep, alias bombs, binary) give clear errors instead of crashes.

use std::path::Path;

use kars::spec::{Code, MAX_INPUT_BYTES, Report, load, load_bytes};

/// The origin a fixture is reported under: its path from the crate root, with `/`.
fn origin(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
    let folder = path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or("?");
    format!("tests/specs/{folder}/{name}")
}

fn load_fixture(path: &Path) -> Result<kars::spec::CheckedSpec, Report> {
    let bytes = std::fs::read(path).expect("fixture is readable");
    load_bytes(&bytes, &origin(path))
}

#[test]
fn invalid_fixtures_give_their_diagnostics() {
    insta::glob!("specs/invalid/*.yaml", |path| {
        let report = match load_fixture(path) {
            Ok(_) => panic!("{} loaded, but it is in the invalid folder", path.display()),
            Err(report) => report,
        };
        assert!(report.has_errors(), "{report}");
        for d in report.diagnostics() {
            assert!(d.location.is_some(), "{}: diagnostic without a location: {}", path.display(), d.message);
        }
        insta::assert_snapshot!(report.to_string());
    });
}

#[test]
fn warning_fixtures_load_with_their_warnings() {
    insta::glob!("specs/warning/*.yaml", |path| {
        let spec = load_fixture(path).unwrap_or_else(|r| panic!("{r}"));
        assert!(!spec.warnings().is_empty(), "{} has no warning", path.display());
        insta::assert_snapshot!(spec.warning_report().to_string());
    });
}

#[test]
fn valid_fixtures_load_without_diagnostics() {
    insta::glob!("specs/valid/*.yaml", |path| {
        let spec = load_fixture(path).unwrap_or_else(|r| panic!("{r}"));
        assert!(spec.warnings().is_empty(), "{}", spec.warning_report());
    });
}

#[test]
fn the_bundled_spec_is_clean() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml");
    let source = std::fs::read_to_string(path).unwrap();
    let spec = load(&source, "workflows/kars-release.yaml").unwrap_or_else(|r| panic!("{r}"));
    assert!(spec.warnings().is_empty(), "{}", spec.warning_report());
    assert_eq!(spec.zone(), chrono_tz::America::Toronto);
}

fn single_code(result: Result<kars::spec::CheckedSpec, Report>) -> (Code, String) {
    let report = result.expect_err("the input is rejected");
    let codes = report.codes();
    assert_eq!(codes.len(), 1, "{report}");
    (codes[0], report.to_string())
}

#[test]
fn a_file_over_the_size_cap_is_refused_before_parsing() {
    let big = format!("version: 1\nname: \"{}\"\n", "x".repeat(10 * 1024 * 1024));
    let (code, text) = single_code(load_bytes(big.as_bytes(), "big.yaml"));
    assert_eq!(code, Code::InputTooLarge);
    assert!(text.contains("more than the limit of 1048576 bytes"), "{text}");
    let (code, _) = single_code(load(&big, "big.yaml"));
    assert_eq!(code, Code::InputTooLarge);
    // Just under the cap is parsed (and fails for another reason).
    let under = format!("version: 1\nname: \"{}\"\n", "x".repeat(MAX_INPUT_BYTES - 100));
    let (code, _) = single_code(load(&under, "under.yaml"));
    assert_ne!(code, Code::InputTooLarge);
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for deep in ["[".repeat(100_000), "- ".repeat(100_000) + "x", "{a: ".repeat(100_000), nested_block_maps(100_000)] {
        let (code, text) = single_code(load(&deep, "deep.yaml"));
        assert_eq!(code, Code::Limit, "{text}");
        assert!(text.contains("deeper than 32 levels"), "{text}");
    }
}

fn nested_block_maps(depth: usize) -> String {
    // `a:` lines, each indented one more space: depth d needs d*(d+1)/2 bytes, so cap the
    // indentation at what fits in the size limit and let flow style do the rest.
    let mut s = String::new();
    for i in 0..depth.min(1000) {
        s.push_str(&" ".repeat(i));
        s.push_str("a:\n");
    }
    s
}

#[test]
fn billion_laughs_is_refused() {
    let mut yaml = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        yaml.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let (code, text) = single_code(load(&yaml, "laughs.yaml"));
    assert_eq!(code, Code::Limit, "{text}");
    assert!(text.contains("aliases expand to more than"), "{text}");
    assert!(text.contains("laughs.yaml:"), "{text}");
    // Inside a field that accepts a list, the expansion itself hits the budget.
    let mut spec = String::from(
        "version: 1\nname: x\ntimezone: UTC\nnodes: {}\nedges: []\nroles:\n  r:\n    title: t\n    responsibilities: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        spec.push_str(&format!("  r{i}:\n    title: t\n    responsibilities: &a{i} [{refs}]\n"));
    }
    let (code, text) = single_code(load(&spec, "laughs.yaml"));
    assert_eq!(code, Code::Limit, "{text}");
}

#[test]
fn binary_input_names_the_bad_byte() {
    let (code, text) = single_code(load_bytes(&[0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0xff, 0x00], "a.out"));
    assert_eq!(code, Code::NotUtf8);
    assert!(text.contains("byte 0xff at offset 6"), "{text}");
    assert!(text.contains("a.out:1:7"), "{text}");
}

#[test]
fn errors_point_at_file_line_column_and_path() {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml")).unwrap();
    let broken = source.replace("decided_by: { role: qa }", "decided_by: { role: qe }");
    let report = load(&broken, "kars-release.yaml").unwrap_err();
    let d = &report.diagnostics()[0];
    assert_eq!(d.code, Code::UnknownRole);
    let location = d.location.as_ref().unwrap();
    assert_eq!(location.path.as_ref().unwrap().to_string(), "nodes.N.decided_by.role");
    let span = location.span.as_ref().unwrap();
    let line = source.lines().position(|l| l.contains("decided_by: { role: qa }")).unwrap() + 1;
    assert_eq!((span.line, span.column), (line, 25));
    assert_eq!(d.help, vec!["did you mean `qa`?".to_owned()]);
}

#[test]
fn check_without_source_still_names_paths() {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml")).unwrap();
    let mut spec = load(&source, "x").unwrap().into_spec();
    spec.edges.push(kars::spec::spec::Edge { from: "Q".parse().unwrap(), to: "Zed".parse().unwrap(), label: None });
    let report = kars::spec::check(spec).unwrap_err();
    let text = report.to_string();
    assert!(text.contains("error[K0401]: unknown node `Zed`"), "{text}");
    assert!(text.contains("--> at `edges.34.to`"), "{text}");
}
