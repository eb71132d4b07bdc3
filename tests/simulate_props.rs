//! Property tests over simulated years: random seeds, models, zones, start dates between 2020
//! and 2035 and runs of 1 to 520 weeks, checked against the timeline and an independent
//! computation of wall-clock times with chrono.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use kars::spec::CheckedSpec;
use kars::spec::calendar::WeekTime;
use kars::workflow::sim::{self, Entry, EntryKind, Model, SimConfig, SimHistory};
use kars::workflow::{EffectKind, Instance, Workflow};
use proptest::prelude::*;

/// One timeline entry, owned.
#[derive(Debug, Clone)]
struct Step {
    release: String,
    at: DateTime<Utc>,
    kind: EntryKind,
    node: Option<String>,
    role: Option<String>,
    outcome: Option<String>,
    detail: Option<String>,
    prod_merge: bool,
}

struct Run {
    steps: Vec<Step>,
    zone: Tz,
    spec: CheckedSpec,
}

const ZONES: &[&str] = &[
    "America/Toronto",
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Asia/Kolkata",
    "America/Sao_Paulo",
];

fn kars_in(zone: &str) -> CheckedSpec {
    let yaml = include_str!("../workflows/kars-release.yaml")
        .replace("timezone: America/Toronto", &format!("timezone: {zone}"));
    kars::spec::load(&yaml, "kars-release.yaml").expect("the bundled spec is valid in any zone")
}

fn simulate(spec: CheckedSpec, model: &Model, config: &SimConfig) -> (Run, sim::SimRun, Arc<Workflow>) {
    let workflow = Arc::new(Workflow::compile(&spec).expect("compiles"));
    let zone = workflow.zone();
    let mut steps = Vec::new();
    let mut observer = |e: &Entry<'_>| {
        steps.push(Step {
            release: e.release.to_string(),
            at: e.at,
            kind: e.kind,
            node: e.node.map(ToString::to_string),
            role: e.role.map(ToString::to_string),
            outcome: e.outcome.map(str::to_owned),
            detail: e.detail.map(str::to_owned),
            prod_merge: e
                .effect
                .is_some_and(|f| matches!(&f.kind, EffectKind::MergePullRequest { to, .. } if &**to == "kars-prod")),
        });
    };
    let run = sim::simulate(Arc::clone(&workflow), model, config, &mut observer).expect("the simulation runs");
    (Run { steps, zone, spec }, run, workflow)
}

fn monday_of(release: &str) -> NaiveDate {
    let (year, week) = release.split_once("-W").expect("release ids look like 2026-W48");
    NaiveDate::from_isoywd_opt(year.parse().unwrap(), week.parse().unwrap(), Weekday::Mon).expect("a real ISO week")
}

fn local(run: &Run, at: DateTime<Utc>) -> NaiveDateTime {
    at.with_timezone(&run.zone).naive_local()
}

/// The instant a wall-clock time resolves to by the documented DST rule, computed with chrono
/// alone: a fold takes its first occurrence, a gap the first valid instant after it.
fn expected_instant(zone: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    if let Some(t) = zone.from_local_datetime(&wall).earliest() {
        return t.with_timezone(&Utc);
    }
    // In a gap: scan forward second by second over at most a day for the first valid wall time.
    let mut probe = wall;
    loop {
        probe += Duration::seconds(1);
        if let Some(t) = zone.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
    }
}

fn model_strategy() -> impl Strategy<Value = String> {
    (0.0..0.6f64, 0.0..0.6f64, 0.0..0.3f64, 0.0..0.3f64, 0.0..0.1f64, 0u32..6).prop_map(
        |(first_fail, refail, deploy_fail, late, unauthorized, merges)| {
            format!(
                "version: 1\nbranches:\n  N: {{ \"No\": [{first_fail}, {refail}] }}\naction_failures: {{ Y: {deploy_fail} }}\nlate: {{ probability: {late}, extra: 1h..8h }}\nunauthorized: {unauthorized}\nmerges_per_week: {merges}\n"
            )
        },
    )
}

fn config_strategy() -> impl Strategy<Value = (SimConfig, usize)> {
    (1u32..=520, any::<u64>(), 0i64..(16 * 365), 0..ZONES.len()).prop_map(|(weeks, seed, day, zone)| {
        let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + Duration::days(day);
        (SimConfig { weeks, seed, start, history: SimHistory::Keep }, zone)
    })
}

fn run_case(model: &str, config: &SimConfig, zone: usize) -> (Run, sim::SimRun, Arc<Workflow>) {
    let spec = kars_in(ZONES[zone]);
    let model = Model::load(&spec, model, "generated").expect("generated models are valid");
    simulate(spec, &model, config)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Production is never merged before Monday 10:00 local time of the week after the cycle
    /// starts, and never without a team lead's review (`W`) earlier in the same cycle.
    #[test]
    fn production_merges_wait_for_monday_and_review((config, zone) in config_strategy(), model in model_strategy()) {
        let (run, _, _) = run_case(&model, &config, zone);
        let mut reviewed: HashMap<String, bool> = HashMap::new();
        for s in &run.steps {
            if s.kind == EntryKind::Completed && s.node.as_deref() == Some("W") {
                prop_assert_eq!(s.role.as_deref(), Some("team_lead"));
                reviewed.insert(s.release.clone(), true);
            }
            if s.kind == EntryKind::CycleStarted {
                reviewed.remove(&s.release);
            }
            if s.prod_merge {
                let monday = monday_of(&s.release) + Duration::days(7);
                let ten = expected_instant(run.zone, monday.and_hms_opt(10, 0, 0).unwrap());
                prop_assert!(s.at >= ten, "{} merged to production at {} (local {}), before {}", s.release, s.at, local(&run, s.at), ten);
                prop_assert!(reviewed.get(&s.release).copied().unwrap_or(false), "{} merged to production without review", s.release);
            }
        }
    }

    /// No feature merge lands while the code freeze is open, and only hotfixes land on a
    /// weekend (Saturday or Sunday, local time).
    #[test]
    fn freeze_and_weekend_hold((config, zone) in config_strategy(), model in model_strategy()) {
        let (run, sim_run, _) = run_case(&model, &config, zone);
        prop_assert_eq!(sim_run.policy_disagreements, 0);
        let mut frozen = false;
        for s in &run.steps {
            match (s.kind, s.detail.as_deref()) {
                (EntryKind::WindowOpened, Some("code_freeze")) => frozen = true,
                (EntryKind::WindowClosed, Some("code_freeze")) => frozen = false,
                (EntryKind::Merged, Some(detail)) => {
                    let source = detail.split(" -> ").next().unwrap_or_default();
                    let weekend = matches!(local(&run, s.at).weekday(), Weekday::Sat | Weekday::Sun);
                    prop_assert!(!(frozen && source.starts_with("feature/")), "feature merge in the freeze: {detail} at {}", s.at);
                    prop_assert!(!weekend || source.starts_with("hotfix/"), "non-hotfix merge on a weekend: {detail} at {}", local(&run, s.at));
                }
                _ => {}
            }
        }
    }

    /// QA signs off (`Q`) before Friday 15:00 local time, or the deadline escalation is in the
    /// timeline exactly once for that week, before the sign-off (a deadline fires at its instant),
    /// unless the deadline had passed before the instance started (then it never escalates).
    #[test]
    fn sign_off_or_exactly_one_escalation((config, zone) in config_strategy(), model in model_strategy()) {
        let (run, _, _) = run_case(&model, &config, zone);
        let mut weeks: Vec<(String, Option<DateTime<Utc>>, u32)> = Vec::new();
        let started = run.steps.first().map(|s| s.at);
        for s in &run.steps {
            match s.kind {
                EntryKind::CycleStarted => weeks.push((s.release.clone(), None, 0)),
                EntryKind::Completed if s.node.as_deref() == Some("Q") => {
                    if let Some(w) = weeks.last_mut() { w.1.get_or_insert(s.at); }
                }
                EntryKind::DeadlineMissed => {
                    prop_assert_eq!(s.node.as_deref(), Some("Q"));
                    if let Some(w) = weeks.last_mut() { w.2 += 1; prop_assert!(w.1.is_none(), "escalated after the sign-off"); }
                }
                _ => {}
            }
        }
        for (release, signed, escalations) in &weeks {
            let due = expected_instant(run.zone, (monday_of(release) + Duration::days(4)).and_hms_opt(15, 0, 0).unwrap());
            prop_assert!(*escalations <= 1, "{release}: {escalations} escalations");
            if started.is_some_and(|at| due < at) {
                prop_assert_eq!(*escalations, 0, "{} escalated a deadline that passed before the start", release);
                continue;
            }
            match signed {
                Some(at) if *at < due => prop_assert_eq!(*escalations, 0, "{} signed off at {} yet escalated", release, at),
                Some(_) => prop_assert_eq!(*escalations, 1, "{} signed off late without an escalation", release),
                None => {}
            }
        }
    }

    /// Every week ends exactly one way (released, incident or slipped), and the next week
    /// starts when it ends or on its Monday, whichever is later.
    #[test]
    fn every_week_ends_once_and_the_next_starts((config, zone) in config_strategy(), model in model_strategy()) {
        let (run, sim_run, _) = run_case(&model, &config, zone);
        prop_assert_eq!(sim_run.weeks.len() as u32, config.weeks);
        let mut open: Option<String> = None;
        let mut last_end: Option<(String, DateTime<Utc>)> = None;
        for s in &run.steps {
            match s.kind {
                EntryKind::CycleStarted => {
                    prop_assert!(open.is_none(), "{} started before {:?} ended", s.release, open);
                    if let Some((previous, ended)) = &last_end {
                        let monday = expected_instant(run.zone, (monday_of(previous) + Duration::days(7)).and_hms_opt(0, 0, 0).unwrap());
                        prop_assert_eq!(s.at, (*ended).max(monday));
                    }
                    open = Some(s.release.clone());
                }
                EntryKind::CycleEnded => {
                    prop_assert!(matches!(s.outcome.as_deref(), Some("released" | "incident" | "slipped")), "{:?}", s.outcome);
                    let ended = open.take();
                    prop_assert_eq!(ended.as_deref(), Some(s.release.as_str()));
                    last_end = Some((s.release.clone(), s.at));
                }
                _ => {}
            }
        }
    }

    /// Each gate the token waits at opens at its wall-clock time in the spec's zone, on every
    /// date and in every zone, DST weeks included.
    #[test]
    fn gates_open_at_their_wall_clock_time((config, zone) in config_strategy(), model in model_strategy()) {
        let (run, _, _) = run_case(&model, &config, zone);
        let gates: HashMap<String, WeekTime> = run.spec.spec().nodes.iter().filter_map(|(id, n)| n.gate.map(|g| (id.to_string(), g))).collect();
        let mut waiting: Option<String> = None;
        for s in &run.steps {
            match s.kind {
                EntryKind::GateArmed => {
                    let opens = DateTime::parse_from_rfc3339(s.detail.as_deref().unwrap()).unwrap();
                    waiting = (opens > s.at).then(|| s.node.clone().unwrap());
                }
                EntryKind::GateOpened if waiting.as_deref() == s.node.as_deref() => {
                    let node = s.node.clone().unwrap();
                    let wall = gates[&node].local_in_cycle(monday_of(&s.release));
                    prop_assert_eq!(s.at, expected_instant(run.zone, wall), "gate of {} in {}", node, s.release);
                    waiting = None;
                }
                _ => {}
            }
        }
    }

    /// Replaying the recorded history rebuilds the instance the run ended with.
    #[test]
    fn replay_reproduces_the_run((config, zone) in config_strategy(), model in model_strategy()) {
        let config = SimConfig { weeks: config.weeks.min(104), ..config };
        let (_, sim_run, workflow) = run_case(&model, &config, zone);
        let replayed = Instance::replay(workflow, sim_run.instance.history()).expect("replays");
        prop_assert!(replayed == sim_run.instance);
    }

    /// Gates inside DST gaps open at the first valid instant after the gap, and gates inside
    /// folds at their first occurrence, over years of weeks of a spec built for it.
    #[test]
    fn gates_in_gaps_and_folds(seed in any::<u64>(), day in 0i64..(12 * 365)) {
        let spec = kars::spec::load(include_str!("simulate/dst-gate.yaml"), "dst-gate.yaml").unwrap();
        let model = Model::defaults(&spec);
        let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + Duration::days(day);
        let (run, _, _) = simulate(spec, &model, &SimConfig { weeks: 60, seed, start, history: SimHistory::Keep });
        let mut checked = 0;
        for s in run.steps.iter().filter(|s| s.kind == EntryKind::GateArmed) {
            let opens = DateTime::parse_from_rfc3339(s.detail.as_deref().unwrap()).unwrap().with_timezone(&Utc);
            let gate: WeekTime = if s.node.as_deref() == Some("G") { "Sunday 02:30".parse().unwrap() } else { "Sunday 01:30".parse().unwrap() };
            prop_assert_eq!(opens, expected_instant(run.zone, gate.local_in_cycle(monday_of(&s.release))));
            checked += 1;
        }
        prop_assert!(checked > 0);
    }
}

/// The DST spec's gates resolve as documented on the real 2026 transition dates in Toronto.
#[test]
fn dst_gates_on_the_2026_transitions() {
    let spec = kars::spec::load(include_str!("simulate/dst-gate.yaml"), "dst-gate.yaml").unwrap();
    let model = Model::defaults(&spec);
    let (run, _, _) = simulate(
        spec,
        &model,
        &SimConfig {
            weeks: 45,
            seed: 1,
            start: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            history: SimHistory::Keep,
        },
    );
    let armed: Vec<(String, String)> = run
        .steps
        .iter()
        .filter(|s| s.kind == EntryKind::GateArmed)
        .map(|s| (s.node.clone().unwrap(), s.detail.clone().unwrap()))
        .collect();
    // Spring forward: Sunday 2026-03-08 02:30 does not exist; the gate opens at 03:00 EDT.
    assert!(armed.contains(&("G".into(), "2026-03-08T03:00:00-04:00".into())), "{armed:?}");
    // Fall back: Sunday 2026-11-01 01:30 happens twice; the gate opens at the first, in EDT.
    assert!(armed.contains(&("H".into(), "2026-11-01T01:30:00-04:00".into())), "{armed:?}");
}
