//! The README's complete spec is a real one: it loads without warnings, simulates a year with
//! the default model, and renders to mermaid.

use std::sync::Arc;

use chrono::NaiveDate;
use kars::spec::mermaid::{RenderOptions, render};
use kars::workflow::Workflow;
use kars::workflow::sim::{self, Model, SimConfig, SimHistory};

fn readme_spec() -> &'static str {
    let readme = include_str!("../README.md");
    readme
        .split("### A complete spec")
        .nth(1)
        .and_then(|section| section.split("```yaml\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a complete spec")
}

#[test]
fn the_readme_spec_loads_simulates_and_renders() {
    let spec = kars::spec::load(readme_spec(), "README.md").unwrap_or_else(|report| panic!("{report}"));
    assert!(spec.warnings().is_empty(), "{}", spec.warning_report());
    assert_eq!(spec.zone().name(), "Europe/Berlin");
    let workflow = Arc::new(Workflow::compile(&spec).expect("compiles"));
    let config = SimConfig {
        weeks: 52,
        seed: 1,
        start: NaiveDate::from_ymd_opt(2026, 3, 2).expect("date"),
        history: SimHistory::Keep,
    };
    let run = sim::simulate(workflow, &Model::defaults(&spec), &config, &mut ()).expect("a year simulates");
    assert_eq!(run.weeks.len(), 52);
    assert!(run.weeks.iter().any(|w| w.outcome == "shipped" && w.completed));
    let mermaid = render(spec.spec(), &RenderOptions::default());
    assert!(mermaid.contains("Ship{Ship it?}") && mermaid.contains("Ship -->|No| Fix"), "{mermaid}");
}

#[test]
fn the_readme_model_file_loads_against_the_kars_spec() {
    let readme = include_str!("../README.md");
    let model = readme
        .split("A model file")
        .nth(1)
        .and_then(|section| section.split("```yaml\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README shows a model file");
    let spec = kars::spec::load(include_str!("../workflows/kars-release.yaml"), "kars-release.yaml").unwrap();
    Model::load(&spec, model, "README.md").unwrap_or_else(|e| panic!("{e}"));
}
