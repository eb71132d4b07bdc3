//! Expectations files (`kars simulate FILE --expect`): mistakes give a file:line:column message
//! with the fix, each kind of expectation passes and fails on a purpose-built spec, and the
//! bundled spec keeps its promises while the freeze gate on `I` breaks them.

use std::sync::Arc;

use kars::spec::CheckedSpec;
use kars::workflow::Workflow;
use kars::workflow::sim::Model;
use kars::workflow::sim::expect::{ExpectReport, Expectations};

fn load_spec(path: &str) -> CheckedSpec {
    let text = std::fs::read_to_string(path).expect("fixture specs are readable");
    kars::spec::load(&text, path).unwrap_or_else(|report| panic!("{report}"))
}

fn kars() -> CheckedSpec {
    load_spec("workflows/kars-release.yaml")
}

fn model_for(spec: &CheckedSpec, path: &str) -> Model {
    let text = std::fs::read_to_string(path).expect("model files are readable");
    Model::load(spec, &text, path).unwrap_or_else(|e| panic!("{e}"))
}

/// Checks `expect` (YAML) against `spec` with `model` and measures it.
fn measure(spec: &CheckedSpec, model: &Model, expect: &str) -> ExpectReport {
    let expectations = Expectations::load(spec, expect, "test.expect.yaml").unwrap_or_else(|e| panic!("{e}"));
    let workflow = Arc::new(Workflow::compile(spec).expect("compiles"));
    expectations.evaluate(&workflow, model)
}

#[test]
fn expectation_files_with_mistakes_say_what_to_fix() {
    let spec = kars();
    insta::glob!("expect/invalid/*.yaml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = format!("invalid/{}", path.file_name().unwrap().to_string_lossy());
        let error = Expectations::load(&spec, &text, &name).expect_err("every fixture has a mistake");
        insta::assert_snapshot!(error.to_string());
    });
}

#[test]
fn the_bundled_spec_keeps_its_expectations() {
    let spec = kars();
    let model = model_for(&spec, "workflows/kars-release.model.yaml");
    let report = measure(&spec, &model, include_str!("../workflows/kars-release.expect.yaml"));
    let failed: Vec<String> = report.results.iter().filter(|r| !r.passed).map(|r| format!("{}: {r}", r.name)).collect();
    assert!(report.passed(), "{failed:#?}");
    assert_eq!(report.cycles, 520);
    assert_eq!(report.results.len(), 8);
}

/// The fixture is the bundled spec with the freeze gate moved from `J` back onto `I` and
/// nothing else, so that it follows the bundled spec as it changes.
#[test]
fn the_gate_on_i_fixture_is_the_bundled_spec_with_the_gate_moved() {
    let bundled = std::fs::read_to_string("workflows/kars-release.yaml").unwrap();
    let fixture = std::fs::read_to_string("tests/expect/specs/freeze-gate-on-i.yaml").unwrap();
    let body = |text: &str| text[text.find("version: 1").unwrap()..].to_owned();
    let moved = body(&bundled)
        .replacen(
            "    roles: [product_manager]\n    gate: Thursday 09:00\n",
            "    roles: [product_manager]\n    gate: Thursday 17:00\n",
            1,
        )
        .replacen("    kind: action\n    gate: Thursday 17:00\n", "    kind: action\n", 1);
    assert_ne!(moved, body(&bundled), "the bundled spec still has both gates where the fixture expects them");
    assert_eq!(body(&fixture), moved);
}

#[test]
fn the_freeze_gate_on_i_breaks_the_sign_off_expectations() {
    let spec = load_spec("tests/expect/specs/freeze-gate-on-i.yaml");
    let model = model_for(&spec, "workflows/kars-release.model.yaml");
    let report = measure(&spec, &model, include_str!("../workflows/kars-release.expect.yaml"));
    let failed: Vec<&str> = report.results.iter().filter(|r| !r.passed).map(|r| r.name.as_str()).collect();
    assert!(failed.contains(&"sign_off_by_friday"), "{failed:?}");
    assert!(failed.contains(&"sign_off_deadline"), "{failed:?}");
    assert!(!report.passed());
}

fn steady() -> (CheckedSpec, Model) {
    let spec = load_spec("tests/expect/specs/steady.yaml");
    let model = model_for(&spec, "tests/expect/specs/steady.model.yaml");
    (spec, model)
}

/// One expectation over three seeds of twelve weeks of `steady.yaml`.
fn one(expectation: &str) -> ExpectReport {
    let (spec, model) = steady();
    let yaml = format!(
        "version: 1\nrun: {{ seeds: [1, 2, 3], start: 2026-02-02, weeks: 12 }}\nexpect:\n  it: {expectation}\n"
    );
    measure(&spec, &model, &yaml)
}

#[test]
fn each_kind_of_expectation_passes_and_fails() {
    // (expectation, whether it holds on steady.yaml)
    let cases = [
        ("{ outcome: done, at_least: 1.0 }", true),
        ("{ outcome: done, at_most: 0.5 }", false),
        ("{ outcome: done, on_time: true, at_least: 0.1 }", false),
        ("{ outcome: done, on_time: true, at_most: 0 }", true),
        ("{ completes: Build, by: Tuesday 10:00, at_least: 1.0 }", true),
        ("{ completes: Build, by: Tuesday 09:20, at_least: 0.5 }", false),
        ("{ completes: Ship, by: Monday 09:00 +1w, at_least: 1.0 }", true),
        ("{ deadline_missed: Check, at_least: 1.0 }", true),
        ("{ deadline_missed: Check, at_most: 0.5 }", false),
        ("{ deadline_missed: Build, at_most: 0 }", true),
        ("{ from: freeze opens, to: production, within: 2h }", true),
        ("{ from: freeze opens, to: production, quantile: p50, within: 20m }", false),
        ("{ from: Build, to: Check, quantile: p90, within: 1h }", true),
        ("{ from: Build, to: freeze closes, within: 10m }", false),
        ("{ merges_follow_the_windows: true }", true),
        ("{ cycles_end_with_an_outcome: true }", true),
    ];
    for (expectation, holds) in cases {
        let report = one(expectation);
        let result = &report.results[0];
        assert_eq!(result.passed, holds, "{expectation}: {result}");
        assert_eq!(report.cycles, 36, "{expectation}");
        assert_eq!(result.first_broken.is_some(), !holds, "{expectation}: a failure names the week that broke it");
        if let Some(cycle) = &result.first_broken {
            assert_eq!(cycle.seed, 1, "{expectation}: {cycle}");
        }
    }
}

#[test]
fn a_span_that_no_cycle_reaches_fails_and_says_so() {
    let result = one("{ from: production, to: Build, within: 1h }").results[0].clone();
    assert!(!result.passed);
    assert_eq!(
        result.to_string(),
        "max from production to `Build`: no cycle reached both points; expected within 1.0 h"
    );
}

#[test]
fn measures_and_margins_read_as_sentences() {
    let lines: Vec<String> = [
        "{ outcome: done, at_least: 0.9 }",
        "{ completes: Build, by: Tuesday 09:20, at_least: 0.5 }",
        "{ deadline_missed: Check, at_most: 0.5 }",
        "{ from: Build, to: Check, quantile: p90, within: 1h }",
        "{ merges_follow_the_windows: true }",
        "{ cycles_end_with_an_outcome: true }",
    ]
    .iter()
    .map(|e| {
        let report = one(e);
        let r = &report.results[0];
        let broken = r.first_broken.as_ref().map(|c| format!("\n  first broken: {c}")).unwrap_or_default();
        format!("{}: {r}{broken}", if r.passed { "pass" } else { "FAIL" })
    })
    .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

/// A run that stops (here at the end of the engine's calendar) leaves a cycle without an
/// outcome: the report fails and names the run and the week.
#[test]
fn a_run_that_stops_breaks_cycles_end_with_an_outcome() {
    let (spec, model) = steady();
    let yaml = "version: 1\nrun: { seeds: [1, 2], start: 8999-12-04, weeks: 8 }\nexpect:\n  ends: { cycles_end_with_an_outcome: true }\n";
    let report = measure(&spec, &model, yaml);
    assert!(!report.passed());
    assert_eq!(report.stopped.len(), 2);
    let result = &report.results[0];
    assert!(!result.passed, "{result}");
    let broken = result.first_broken.as_ref().expect("names the week");
    assert_eq!(broken.seed, 1);
    assert_eq!(broken, &report.stopped[0].at);
}

/// Same files, same report: evaluating twice gives equal results.
#[test]
fn the_same_files_give_the_same_report() {
    let spec = load_spec("tests/expect/specs/freeze-gate-on-i.yaml");
    let model = model_for(&spec, "workflows/kars-release.model.yaml");
    let yaml = include_str!("../workflows/kars-release.expect.yaml");
    assert_eq!(measure(&spec, &model, yaml), measure(&spec, &model, yaml));
}
