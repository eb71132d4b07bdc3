//! Cadences longer than a week: a two-week train across the end of daylight saving time and
//! across New Year, an instance started in its cycle's second week, and a property over
//! cadences of one to four weeks, random anchors and start days: every cycle starts on its
//! cadence boundary and every gate opens at its wall-clock time in that cycle.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use kars::spec::NodeId;
use kars::spec::cadence::Cadence;
use kars::spec::dates::{OnHoliday, is_working_day};
use kars::workflow::sim::{Model, SimConfig, SimHistory, simulate};
use kars::workflow::{Actor, Event, Instance, InstanceId, MergeRequest, Resolved, Workflow};

const TRAIN: &str = include_str!("../workflows/mobile-train.yaml");
const BERLIN: Tz = chrono_tz::Europe::Berlin;

fn workflow(yaml: &str) -> Arc<Workflow> {
    Arc::new(Workflow::compile(&kars::spec::load(yaml, "mobile-train.yaml").unwrap()).unwrap())
}

fn berlin(s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    kars::spec::calendar::resolve_local(BERLIN, naive)
}

fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&BERLIN).format("%a %Y-%m-%d %H:%M %Z").to_string()
}

/// One step of a clean train at `node`: done by whoever holds its role (QA green at once), or
/// else a wake-up at the next timer. Whether the node was done.
fn step(instance: &mut Instance, node: &NodeId, trace: &mut Vec<String>) -> bool {
    let people = [("ada", "developer"), ("cleo", "qa"), ("dora", "release_manager")];
    let now = instance.latest_instant();
    let done = people.iter().any(|(who, role)| {
        let actor = Actor::new(*who, vec![role.parse().unwrap()]);
        let outcome = (node.as_str() == "D").then(|| "yes".into());
        instance.handle_event(Event::Complete { node: node.clone(), actor, outcome }, now).is_ok()
    });
    if done {
        trace.push(format!("{}  {node} done", local(now)));
    } else {
        let at = instance.poll_timeout().unwrap();
        trace.push(format!("{}  {node} waits, wakes", local(at)));
        instance.handle_timeout(at);
    }
    done
}

/// One clean train: every task done as soon as its gate opens, QA green at once.
fn train(instance: &mut Instance, trace: &mut Vec<String>) {
    for _ in 0..40 {
        let Some(node) = instance.current_node().cloned() else {
            // Between cycles: jump to the next one.
            let at = instance.poll_timeout().unwrap();
            trace.push(format!("{}  next cycle", local(at)));
            instance.handle_timeout(at);
            continue;
        };
        if step(instance, &node, trace) && node.as_str() == "H" {
            // The announce action and the cycle's end follow at once.
            let at = instance.poll_timeout().unwrap();
            trace.push(format!("{}  next cycle due", local(at)));
            return;
        }
    }
    panic!("the train did not finish: {trace:#?}");
}

#[test]
fn a_two_week_train_across_the_end_of_summer_time() {
    // 2026-10-12 is a boundary (40 weeks after the anchor); summer time ends on 2026-10-25.
    let mut instance = Instance::start(workflow(TRAIN), InstanceId::new("train").unwrap(), berlin("2026-10-12 08:00"));
    assert_eq!(instance.release().as_str(), "2026-W42");
    let mut trace = Vec::new();
    train(&mut instance, &mut trace);
    train(&mut instance, &mut trace);
    let releases: Vec<String> = instance.cycle_outcomes().iter().map(|c| c.release.to_string()).collect();
    assert_eq!(releases, ["2026-W42", "2026-W44"]);
    insta::assert_snapshot!(trace.join("\n"));
}

#[test]
fn a_two_week_train_across_new_year() {
    // 2025-12-22 is a boundary (two weeks before the anchor).
    let mut instance = Instance::start(workflow(TRAIN), InstanceId::new("train").unwrap(), berlin("2025-12-22 08:00"));
    let mut trace = Vec::new();
    train(&mut instance, &mut trace);
    train(&mut instance, &mut trace);
    let releases: Vec<String> = instance.cycle_outcomes().iter().map(|c| c.release.to_string()).collect();
    assert_eq!(releases, ["2025-W52", "2026-W02"]);
    insta::assert_snapshot!(trace.join("\n"));
}

#[test]
fn an_instance_started_in_its_cycles_second_week_waits_for_the_next() {
    let instance = Instance::start(workflow(TRAIN), InstanceId::new("train").unwrap(), berlin("2026-10-21 08:00"));
    assert_eq!(instance.current_node(), None, "no cycle runs with its first week's gates past");
    assert_eq!(instance.poll_timeout(), Some(berlin("2026-10-26 00:00")));
    // Started in the first week, it starts at once (its past gates open when reached).
    let instance = Instance::start(workflow(TRAIN), InstanceId::new("train").unwrap(), berlin("2026-10-13 08:00"));
    assert_eq!(instance.current_node().map(|n| n.as_str()), Some("B"));
    assert_eq!(instance.release().as_str(), "2026-W42");
}

/// The spec with another cadence and other holidays (`(first day, extra days)` each).
fn with_cadence(every: u8, anchor: NaiveDate, holidays: &[(NaiveDate, i64)]) -> String {
    let fixture = "holidays:\n  - { from: 2026-12-21, to: 2027-01-01 }  # company break\n  - 2027-03-26                            # Good Friday\n  - 2027-03-29                            # Easter Monday\n";
    assert!(TRAIN.contains(fixture), "the fixture's holidays moved");
    let mut list = String::new();
    if !holidays.is_empty() {
        list.push_str("holidays:\n");
    }
    for (from, extra) in holidays {
        list.push_str(&format!("  - {{ from: {from}, to: {} }}\n", *from + Duration::days(*extra)));
    }
    TRAIN
        .replace(
            "cadence: { every: 2w, anchor: 2026-01-05 }",
            &format!("cadence: {{ every: {every}w, anchor: {anchor} }}"),
        )
        .replace(fixture, &list)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..proptest::prelude::ProptestConfig::default() })]

    /// Whatever the cadence (one to four weeks), its anchor and the holidays, every cycle starts
    /// on a cadence boundary (in the first week of its cycle), and every gate resolves to its
    /// wall-clock time in the cycle it opens in, or to that time on the next working day when
    /// its rule says so.
    #[test]
    fn cycles_start_on_their_boundary_and_gates_at_their_wall_time(
        every in 1u8..=4,
        anchor_weeks in -60i64..60,
        start_days in 0i64..400,
        seed in 0u64..1000,
        holidays in proptest::collection::vec((0i64..200, 0i64..6), 0..6),
    ) {
        let anchor = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap() + Duration::weeks(anchor_weeks);
        let start = NaiveDate::from_ymd_opt(2026, 2, 1).unwrap() + Duration::days(start_days);
        let holidays: Vec<(NaiveDate, i64)> =
            holidays.into_iter().map(|(d, n)| (start + Duration::days(d), n)).collect();
        let yaml = with_cadence(every, anchor, &holidays);
        let checked = kars::spec::load(&yaml, "train.yaml").unwrap();
        let workflow = Arc::new(Workflow::compile(&checked).unwrap());
        let model = Model::defaults(&checked);
        let config = SimConfig { weeks: 6, seed, start, history: SimHistory::Keep };
        let run = simulate(Arc::clone(&workflow), &model, &config, &mut ()).unwrap();
        let cadence = Cadence { every: kars::spec::cadence::Weeks(every), anchor: Some(anchor) };
        let cycles = run.instance.cycle_outcomes();
        proptest::prop_assert!(cycles.len() >= 6);
        for cycle in &cycles {
            let started = cycle.started_at.with_timezone(&BERLIN).date_naive();
            let monday = cadence.cycle_monday(started);
            proptest::prop_assert_eq!(cycle.release.as_str(), format!("{}-W{:02}", monday.iso_week().year(), monday.iso_week().week()));
            proptest::prop_assert!(started < monday + Duration::days(7), "cycle {} started {started}", cycle.release);
        }
        let spec = checked.spec();
        let mut monday = None;
        for record in run.instance.history().records() {
            for resolved in &record.resolved {
                match resolved {
                    Resolved::Cycle { monday: m } => {
                        proptest::prop_assert_eq!(cadence.cycle_monday(*m), *m, "not a boundary");
                        monday = Some(*m);
                    }
                    Resolved::Gate { node, at } => {
                        let id = workflow.node_id(*node).unwrap();
                        let gate = spec.nodes[id].gate.unwrap();
                        let mut wall = gate.local_in_cycle(monday.unwrap());
                        // `on_holiday: next_working_day`: the same time on the next working day.
                        if spec.nodes[id].on_holiday == Some(OnHoliday::NextWorkingDay)
                            && spec.holidays.iter().any(|h| h.contains(wall.date()))
                        {
                            wall += Duration::days(1);
                            while !is_working_day(wall.date(), &spec.holidays) {
                                wall += Duration::days(1);
                            }
                        }
                        proptest::prop_assert_eq!(at.with_timezone(&BERLIN).naive_local(), wall);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The bundled two-week train checks, renders and simulates through the command line; a
/// quarter is 13 weeks of time: seven two-week cycles.
#[test]
fn the_bundled_train_checks_renders_and_simulates() {
    let kars = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kars")).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/mobile-train.yaml");
    assert!(kars(&["check", file]).contains("ok"));
    assert!(kars(&["render", file]).starts_with("flowchart TB"));
    let run = kars(&["simulate", file, "--weeks", "13", "--start", "2026-10-12"]);
    assert!(run.starts_with("mobile-train: 13 weeks (7 cycles of 2 weeks) from 2026-10-12"), "{run}");
    assert!(run.contains("summary of 7 cycles of 2 weeks (2026-W42 to 2027-W01)"), "{run}");
}

/// The company break skips the year-end train: its branch cut moves to the first working day
/// after the break (`next_working_day`), and its store submission, due in the break
/// (`skip_cycle`), ends the cycle as `skipped`; the next train starts at once, in its first
/// week. Easter Monday moves a branch cut to the Tuesday, across the change to summer time.
#[test]
fn holidays_move_a_gate_or_skip_the_cycle() {
    let mut instance = Instance::start(workflow(TRAIN), InstanceId::new("train").unwrap(), berlin("2026-12-21 08:00"));
    let waiting = instance.waiting(berlin("2026-12-21 08:00"));
    let kars::workflow::WaitingFor::Gate { node, opens_at, .. } = &waiting.reason else { panic!("{waiting}") };
    assert_eq!((node.as_str(), *opens_at), ("B", berlin("2027-01-04 10:00")), "B waits for the first working day");
    let mut trace = Vec::new();
    train_until_skipped(&mut instance, &mut trace);
    let outcomes: Vec<(String, String)> =
        instance.cycle_outcomes().iter().map(|c| (c.release.to_string(), c.outcome.clone())).collect();
    assert_eq!(outcomes, [("2026-W52".to_owned(), "skipped".to_owned())]);
    assert_eq!(instance.release().as_str(), "2027-W01", "the next train started at once");
    insta::assert_snapshot!(trace.join("\n"));

    let easter = Instance::start(workflow(TRAIN), InstanceId::new("train").unwrap(), berlin("2027-03-29 08:00"));
    assert_eq!(easter.release().as_str(), "2027-W13");
    let waiting = easter.waiting(berlin("2027-03-29 08:00"));
    let kars::workflow::WaitingFor::Gate { opens_at, .. } = &waiting.reason else { panic!("{waiting}") };
    assert_eq!(local(*opens_at), "Tue 2027-03-30 10:00 CEST");
}

/// Drives a train until its cycle ends, whatever the outcome.
fn train_until_skipped(instance: &mut Instance, trace: &mut Vec<String>) {
    let first = instance.release();
    for _ in 0..40 {
        if instance.release() != first || instance.cycle_outcomes().len() == 1 {
            return;
        }
        let Some(node) = instance.current_node().cloned() else { return };
        step(instance, &node, trace);
    }
    panic!("the train did not end: {trace:#?}");
}

/// A dated window: the stores' holiday freeze forbids merges into `main` from 2026-12-18 17:00
/// to 2026-12-28 09:00, except from `hotfix/*`, and only then.
#[test]
fn a_dated_freeze_window_opens_once_and_closes_once() {
    let instance = Instance::start(workflow(TRAIN), InstanceId::new("train").unwrap(), berlin("2026-12-07 08:00"));
    let merge = |source: &str| MergeRequest { source: source.into(), target: "main".into() };
    assert!(instance.may(&merge("feature/x"), berlin("2026-12-18 16:59")).allowed);
    let frozen = instance.may(&merge("feature/x"), berlin("2026-12-18 17:00"));
    assert!(!frozen.allowed, "{frozen:?}");
    assert_eq!(frozen.until, Some(berlin("2026-12-28 09:00")));
    assert!(instance.may(&merge("hotfix/crash"), berlin("2026-12-20 12:00")).allowed);
    assert!(instance.may(&merge("feature/x"), berlin("2026-12-28 09:00")).allowed);
    assert!(instance.may(&merge("feature/x"), berlin("2027-12-20 12:00")).allowed, "a dated window does not recur");
}
