//! The simulator: determinism, replay, the story a team reads, and the JSON timeline's shape.

use std::sync::Arc;

use chrono::NaiveDate;
use kars::spec::CheckedSpec;
use kars::workflow::sim::{self, Entry, Model, SimConfig, SimHistory, Summary};
use kars::workflow::{Instance, Workflow};

fn kars() -> CheckedSpec {
    let yaml = include_str!("../workflows/kars-release.yaml");
    kars::spec::load(yaml, "workflows/kars-release.yaml").expect("the bundled spec is valid")
}

fn kars_model(spec: &CheckedSpec) -> Model {
    let yaml = include_str!("../workflows/kars-release.model.yaml");
    Model::load(spec, yaml, "workflows/kars-release.model.yaml").expect("the bundled model is valid")
}

fn date(s: &str) -> NaiveDate {
    s.parse().expect("test dates are valid")
}

fn json_lines(spec: &CheckedSpec, model: &Model, config: &SimConfig) -> Vec<String> {
    let workflow = Arc::new(Workflow::compile(spec).expect("compiles"));
    let zone = workflow.zone();
    let mut lines = Vec::new();
    let mut observer = |e: &Entry<'_>| lines.push(e.to_json(zone).to_string());
    let run = sim::simulate(workflow, model, config, &mut observer).expect("the simulation runs");
    lines.push(serde_json::json!({ "summary": Summary::of(&run.weeks) }).to_string());
    lines
}

#[test]
fn same_seed_same_run_byte_for_byte() {
    let spec = kars();
    let model = kars_model(&spec);
    let config = SimConfig { weeks: 26, seed: 42, start: date("2026-03-02"), history: SimHistory::Keep };
    let first = json_lines(&spec, &model, &config);
    let second = json_lines(&spec, &model, &config);
    assert_eq!(first, second);
    let other = json_lines(&spec, &model, &SimConfig { seed: 43, ..config });
    assert_ne!(first, other, "another seed tells another story");
}

#[test]
fn replaying_the_history_rebuilds_the_instance() {
    let spec = kars();
    let workflow = Arc::new(Workflow::compile(&spec).unwrap());
    let model = kars_model(&spec);
    let config = SimConfig { weeks: 52, seed: 9, start: date("2026-01-05"), history: SimHistory::Keep };
    let run = sim::simulate(Arc::clone(&workflow), &model, &config, &mut ()).unwrap();
    let replayed = Instance::replay(workflow, run.instance.history()).expect("the history replays");
    assert!(replayed == run.instance, "replay gives the same state and history");
    assert_eq!(run.weeks.len(), 52);
    assert_eq!(run.policy_disagreements, 0);
}

#[test]
fn a_quarter_reads_as_a_story() {
    let spec = kars();
    let workflow = Arc::new(Workflow::compile(&spec).unwrap());
    let zone = workflow.zone();
    let model = kars_model(&spec);
    let config = SimConfig { weeks: 13, seed: 7, start: date("2026-11-23"), history: SimHistory::Keep };
    let run = sim::simulate(workflow, &model, &config, &mut ()).unwrap();
    let mut text: String = run.weeks.iter().map(|w| format!("{}\n", w.story(zone))).collect();
    text.push_str(&format!("\n{}\n", Summary::of(&run.weeks)));
    insta::assert_snapshot!(text);
}

#[test]
fn json_lines_carry_the_documented_fields() {
    let spec = kars();
    let model = kars_model(&spec);
    let lines = json_lines(
        &spec,
        &model,
        &SimConfig { weeks: 2, seed: 1, start: date("2026-11-23"), history: SimHistory::Keep },
    );
    let (summary, entries) = lines.split_last().unwrap();
    for line in entries {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in ["week", "kind", "at", "local"] {
            assert!(v.get(key).is_some(), "`{key}` missing in {line}");
        }
        let at = chrono::DateTime::parse_from_rfc3339(v["at"].as_str().unwrap()).unwrap();
        let local = chrono::DateTime::parse_from_rfc3339(v["local"].as_str().unwrap()).unwrap();
        assert_eq!(at, local, "`at` and `local` are the same instant");
        assert!(v["at"].as_str().unwrap().ends_with('Z'));
        assert!(matches!(local.offset().local_minus_utc(), -18000 | -14400), "Toronto offsets: {line}");
    }
    let first: serde_json::Value = serde_json::from_str(&entries[0]).unwrap();
    assert_eq!(first["kind"], "cycle_started");
    assert_eq!(first["week"], "2026-W48");
    let completed = entries.iter().find(|l| l.contains("\"kind\":\"completed\"") && l.contains("\"actor\"")).unwrap();
    let completed: serde_json::Value = serde_json::from_str(completed).unwrap();
    assert!(completed["role"].is_string() && completed["node"].is_string());
    let summary: serde_json::Value = serde_json::from_str(summary).unwrap();
    assert_eq!(summary["summary"]["weeks"], 2);
}

#[test]
fn defaults_run_any_valid_workflow() {
    let spec = kars::spec::load(include_str!("simulate/dst-gate.yaml"), "dst-gate.yaml").unwrap();
    let workflow = Arc::new(Workflow::compile(&spec).unwrap());
    let model = Model::defaults(&spec);
    let run = sim::simulate(
        workflow,
        &model,
        &SimConfig { weeks: 60, seed: 5, start: date("2026-01-05"), history: SimHistory::Keep },
        &mut (),
    )
    .expect("a workflow without a model file still simulates");
    assert!(run.weeks.iter().all(|w| w.outcome == "done"));
}

#[test]
fn the_readme_shows_the_real_output_of_its_main_command() {
    let readme = include_str!("../README.md");
    let command = "cargo run --release -- simulate workflows/kars-release.yaml --weeks 13 --start 2026-11-23 --seed 7";
    assert!(readme.contains(command), "the README's main command changed; update this test");
    let shown = readme
        .split("The first command prints (same seed, same bytes):\n\n```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README shows the main command's output");
    let args = ["simulate", "workflows/kars-release.yaml", "--weeks", "13", "--start", "2026-11-23", "--seed", "7"];
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kars"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("kars runs");
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), shown);
}

/// A run that reaches the end of the engine's calendar stops with an error instead of looping
/// (time no longer moves on there) or overflowing a date.
#[test]
fn runs_past_the_engine_calendar_stop_with_an_error() {
    let spec = kars();
    let model = Model::defaults(&spec);
    let workflow = Arc::new(Workflow::compile(&spec).expect("compiles"));
    for start in [date("8999-12-01"), date("9999-12-01"), NaiveDate::MAX] {
        let config = SimConfig { weeks: 10, seed: 1, start, history: SimHistory::Keep };
        let err = sim::simulate(Arc::clone(&workflow), &model, &config, &mut ()).unwrap_err();
        assert!(matches!(err, sim::SimError::OutOfRange { .. }), "{start}: {err}");
        assert!(err.to_string().contains("past the latest instant the engine works with"), "{err}");
    }
    let early = SimConfig { weeks: 2, seed: 1, start: NaiveDate::MIN, history: SimHistory::Keep };
    assert_eq!(sim::simulate(workflow, &model, &early, &mut ()).unwrap().weeks.len(), 2);
}

/// Releasing each week's history changes nothing a run reports, and keeps the instance's
/// history down to the records since the last week ended.
#[test]
fn releasing_history_changes_only_memory() {
    let spec = kars();
    let model = kars_model(&spec);
    let keep = SimConfig { weeks: 30, seed: 11, start: date("2026-02-02"), history: SimHistory::Keep };
    let release = SimConfig { history: SimHistory::Release, ..keep.clone() };
    assert_eq!(json_lines(&spec, &model, &keep), json_lines(&spec, &model, &release));
    let workflow = Arc::new(Workflow::compile(&spec).unwrap());
    let kept = sim::simulate(Arc::clone(&workflow), &model, &keep, &mut ()).unwrap();
    let released = sim::simulate(workflow, &model, &release, &mut ()).unwrap();
    assert_eq!(kept.weeks, released.weeks);
    assert_eq!(kept.instance.state(), released.instance.state());
    assert!(released.instance.history().len() < 50, "{}", released.instance.history().len());
    assert_eq!(released.instance.history().next_seq(), kept.instance.history().next_seq());
}

/// An observer that asks to stop ends the run at once with `SimError::Stopped`, having seen
/// no entry after it asked.
#[test]
fn an_observer_can_stop_the_run() {
    struct StopAfter {
        seen: usize,
        limit: usize,
    }
    impl sim::Observer for StopAfter {
        fn entry(&mut self, _: &Entry<'_>) {
            self.seen += 1;
        }
        fn stop(&self) -> bool {
            self.seen >= self.limit
        }
    }
    let spec = kars();
    let workflow = Arc::new(Workflow::compile(&spec).expect("compiles"));
    let config = SimConfig { weeks: 100_000, seed: 1, start: date("2026-11-23"), history: SimHistory::Release };
    let mut observer = StopAfter { seen: 0, limit: 10 };
    let err = sim::simulate(workflow, &Model::defaults(&spec), &config, &mut observer).unwrap_err();
    assert!(matches!(err, sim::SimError::Stopped { .. }), "{err}");
    // One step may emit several entries before the next check.
    assert!((10..40).contains(&observer.seen), "{}", observer.seen);
}

/// A workflow nobody on the team can move on stops with what it waits for and a hint about the
/// roster, within weeks of virtual time, instead of ticking calendar windows to the end of the
/// engine's calendar.
#[test]
fn a_run_nobody_can_move_on_stops_with_why_and_a_hint() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/simulate/distinct-from-one-developer.yaml");
    let spec = kars::spec::load(&std::fs::read_to_string(path).unwrap(), path).unwrap();
    let model = Model::defaults(&spec);
    let workflow = Arc::new(Workflow::compile(&spec).expect("compiles"));
    let config = SimConfig { weeks: 52, seed: 1, start: date("2026-01-05"), history: SimHistory::Release };
    let err = sim::simulate(workflow, &model, &config, &mut ()).unwrap_err();
    let sim::SimError::NoProgress { release, at, .. } = &err else { panic!("{err}") };
    assert_eq!(release.as_str(), "2026-W02");
    assert!(*at < "2026-04-01T00:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap(), "{err}");
    let text = err.to_string();
    assert!(text.contains("task `R` waits for one of the roles `developer`"), "{text}");
    assert!(text.contains("check the roles held by the team (`team:`) and `distinct_from`"), "{text}");
}

/// The bundled spec where merges into kars-dev need an approval, the team lead's among them,
/// and `ci` green: the simulator plays the forge for them.
fn kars_requiring_reviews() -> CheckedSpec {
    let yaml = include_str!("../workflows/kars-release.yaml").replace(
        "action: { merge_pull_request: { from: feature, to: dev } }",
        "action: { merge_pull_request: { from: feature, to: dev, requires: { approvals: 1, approved_by: [team_lead], checks: [ci] } } }",
    );
    kars::spec::load(&yaml, "kars-release.yaml").expect("the edited spec is valid")
}

#[test]
fn a_quarter_with_merge_requirements_shows_merges_held_by_the_forge() {
    let spec = kars_requiring_reviews();
    let text = "version: 1\nmerges_per_week: 6\nforge: { approval: 0.7, check_failure: 0.2 }\n";
    let model = Model::load(&spec, text, "forge.model.yaml").unwrap();
    let config = SimConfig { weeks: 13, seed: 7, start: date("2026-11-23"), history: SimHistory::Keep };
    let lines = json_lines(&spec, &model, &config);
    assert_eq!(lines, json_lines(&spec, &model, &config), "the forge is seeded like the rest");
    let summary: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let summary = &summary["summary"];
    let (unmet, delayed) = (summary["merges_unmet"].as_u64().unwrap(), summary["merges_delayed"].as_u64().unwrap());
    assert!(unmet > 0 && delayed > 0, "{summary}");
    // The bot's merges wait for reviews and checks, and say what for.
    let waits: Vec<&String> = lines.iter().filter(|l| l.contains(r#""kind":"delayed""#)).collect();
    assert!(waits.iter().any(|l| l.contains("no approval by a holder of role `team_lead`")), "{waits:?}");
    assert!(waits.iter().any(|l| l.contains("check `ci` is still running")), "{waits:?}");
    // Refusals name what was missing: a check that failed or a review that did not approve.
    let refused: Vec<&String> =
        lines.iter().filter(|l| l.contains(r#""kind":"refused""#) && l.contains("lacks")).collect();
    assert_eq!(refused.len() as u64, unmet, "{refused:?}");
    assert!(refused.iter().any(|l| l.contains("check `ci` failed")), "{refused:?}");
    // G merges by the same rules: a week whose G found something missing reports it failed.
    assert!(
        lines.iter().any(|l| l.contains(r#""node":"G""#) && l.contains(r#""kind":"refused""#)),
        "no merge action was refused in a quarter"
    );
    // The plain spec draws nothing for the forge: no such counts, no such entries.
    let plain = json_lines(&kars(), &kars_model(&kars()), &config);
    assert!(plain.iter().all(|l| !l.contains("merges_unmet") && !l.contains(r#""kind":"delayed""#)));
}
