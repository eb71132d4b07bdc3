//! Property testing your own workflow: [proptest](mod@proptest) strategies for seeds, start dates (DST weeks
//! of your zone included), zones, simulation models and roster changes, and [`each_cycle`], which
//! runs a simulation and hands each cycle's timeline to a closure.
//!
//! Enable with the `testing` feature (`kars = { version = "0.1", features = ["testing"] }` under
//! `[dev-dependencies]`). A property over your own spec reads like this:
//!
//! ```
//! use kars::testing::{self, SimConfig, SimHistory};
//! use proptest::prelude::*;
//!
//! let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml")).unwrap();
//! let spec = kars::spec::load(&yaml, "kars-release.yaml").unwrap();
//! let zone = spec.zone();
//! let cases = (testing::seeds(), testing::start_dates(zone, 2026..=2027), testing::models(&spec));
//! let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 4, failure_persistence: None, ..ProptestConfig::default() });
//! // QA signs off (`Q`) before the product manager approves the release (`R`), in every cycle.
//! runner
//!     .run(&cases, |(seed, start, model)| {
//!         let config = SimConfig { weeks: 8, seed, start, history: SimHistory::Release };
//!         testing::each_cycle(&spec, &model, &config, |cycle| {
//!             if let (Some(signed), Some(approved)) = (cycle.completed("Q"), cycle.completed("R")) {
//!                 prop_assert!(signed <= approved, "{}: approved before the sign-off", cycle.release);
//!             }
//!             Ok(())
//!         })?;
//!         Ok(())
//!     })
//!     .unwrap();
//! ```

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use indexmap::IndexMap;
use kars_spec::calendar::cycle_monday_of;
use kars_spec::spec::{Action, NodeKind, Person};
use kars_spec::{CheckedSpec, NodeId, PersonId, RoleId};
use kars_workflow::sim::{self, Entry, EntryKind, Model, ModelFile, WeekReport};
use kars_workflow::{CompileError, Workflow};
use proptest::prelude::*;

pub use kars_workflow::sim::{SimConfig, SimError, SimHistory};

/// Any seed.
pub fn seeds() -> impl Strategy<Value = u64> {
    any::<u64>()
}

/// Zones with and without daylight saving time, in both hemispheres, with whole, half and
/// three-quarter hour offsets.
pub const ZONES: &[Tz] = &[
    chrono_tz::America::Toronto,
    chrono_tz::America::Los_Angeles,
    chrono_tz::America::Sao_Paulo,
    chrono_tz::Europe::London,
    chrono_tz::Europe::Berlin,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Asia::Kathmandu,
    chrono_tz::Australia::Sydney,
    chrono_tz::Australia::Adelaide,
    chrono_tz::Pacific::Auckland,
    chrono_tz::UTC,
];

/// One of [`ZONES`].
pub fn zones() -> impl Strategy<Value = Tz> {
    proptest::sample::select(ZONES)
}

/// The Mondays of the weeks in `years` in which `zone` changes its offset (DST starts or
/// ends), in order; empty for zones without DST.
#[must_use]
pub fn dst_weeks(zone: Tz, years: RangeInclusive<i32>) -> Vec<NaiveDate> {
    let offset = |day: NaiveDate| {
        let noon = day.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN)).and_utc();
        zone.offset_from_utc_datetime(&noon.naive_utc()).fix()
    };
    let (Some(first), Some(last)) =
        (NaiveDate::from_ymd_opt(*years.start(), 1, 1), NaiveDate::from_ymd_opt(*years.end(), 12, 31))
    else {
        return Vec::new();
    };
    let mut weeks = Vec::new();
    let mut day = first;
    let mut before = offset(day);
    while day < last {
        day += Duration::days(1);
        let now = offset(day);
        if now != before {
            let monday = cycle_monday_of(day - Duration::days(1));
            if weeks.last() != Some(&monday) {
                weeks.push(monday);
            }
            before = now;
        }
    }
    weeks
}

/// Start dates in `years`: any day half of the time, and the other half a Monday of a week in
/// which `zone` changes its offset (see [`dst_weeks`]), or the week before one, so that runs
/// cross the transition.
pub fn start_dates(zone: Tz, years: RangeInclusive<i32>) -> impl Strategy<Value = NaiveDate> {
    let first = NaiveDate::from_ymd_opt(*years.start(), 1, 1).unwrap_or(NaiveDate::MIN);
    let last = NaiveDate::from_ymd_opt(*years.end(), 12, 31).unwrap_or(first);
    let days = (last - first).num_days().max(0);
    let any_day = (0..=days).prop_map(move |d| first + Duration::days(d)).boxed();
    let mut dst = dst_weeks(zone, years);
    dst.extend(dst.clone().iter().map(|m| *m - Duration::days(7)));
    dst.sort_unstable();
    if dst.is_empty() {
        return any_day;
    }
    prop_oneof![any_day, proptest::sample::select(dst)].boxed()
}

/// Simulation models for `spec`: lateness, unauthorized tries, merges per week, failure
/// chances of the actions that report a result, and branch chances of people's decisions
/// (per visit, so that loops retry more or less often).
pub fn models(spec: &CheckedSpec) -> impl Strategy<Value = Model> + use<> {
    let spec = spec.clone();
    let actions: Vec<NodeId> = spec
        .spec()
        .nodes
        .iter()
        .filter(|(_, n)| n.kind == NodeKind::Action && !matches!(n.action, Some(Action::Notify(_)) | None))
        .map(|(id, _)| id.clone())
        .collect();
    let decisions: Vec<(NodeId, String)> = spec
        .spec()
        .nodes
        .iter()
        .filter(|(_, n)| n.kind == NodeKind::Decision && n.decided_by.as_ref().is_some_and(|d| d.role.is_some()))
        .filter_map(|(id, _)| {
            let label = spec.spec().edges.iter().find(|e| &e.from == id)?.label.clone()?;
            Some((id.clone(), label))
        })
        .collect();
    let failures = proptest::collection::vec(0.0..0.3f64, actions.len());
    let branches = proptest::collection::vec((0.0..0.6f64, 0.0..0.6f64), decisions.len());
    (0.0..0.2f64, 0.0..0.1f64, 0u32..8, failures, branches).prop_filter_map(
        "the model fits the spec",
        move |(late, unauthorized, merges, failures, branches)| {
            let mut file = ModelFile { version: sim::model::MODEL_VERSION, ..ModelFile::default() };
            file.late = Some(sim::model::LateFile { probability: late, extra: "1h..6h".parse().ok()? });
            file.unauthorized = Some(unauthorized);
            file.merges_per_week = Some(merges);
            file.action_failures = actions.iter().cloned().zip(failures).collect();
            for ((node, label), (first, later)) in decisions.iter().zip(branches) {
                file.branches.insert(node.clone(), IndexMap::from([(label.clone(), vec![first, later])]));
            }
            Model::check(&spec, &file, "generated").ok()
        },
    )
}

/// The spec with its roster changed: some people leave, up to two join with some of the
/// spec's roles. Roles nobody holds any more are filled by the simulator with made-up people.
pub fn roster_changes(spec: &CheckedSpec) -> impl Strategy<Value = CheckedSpec> + use<> {
    let spec = spec.clone();
    let people = spec.spec().team.len();
    let roles: Vec<RoleId> = spec.spec().roles.keys().cloned().collect();
    let role_count = roles.len();
    let leave = proptest::collection::vec(any::<bool>(), people);
    let join = proptest::collection::vec(proptest::collection::vec(any::<bool>(), role_count), 0..=2);
    (leave, join).prop_filter_map("the changed roster is valid", move |(leave, join)| {
        let mut changed = spec.spec().clone();
        let mut keep = leave.into_iter();
        changed.team.retain(|_, _| !keep.next().unwrap_or(false));
        for (n, holds) in join.into_iter().enumerate() {
            let picked: Vec<RoleId> = roles.iter().zip(holds).filter(|(_, h)| *h).map(|(r, _)| r.clone()).collect();
            let id = PersonId::new(format!("newcomer{}", n + 1)).ok()?;
            changed.team.insert(id, Person { roles: picked, ..Person::default() });
        }
        kars_spec::check(changed).ok()
    })
}

/// One timeline entry, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EntryKind,
    /// The node concerned.
    pub node: Option<NodeId>,
    /// Who acted.
    pub actor: Option<String>,
    /// In which role.
    pub role: Option<RoleId>,
    /// The outcome, branch label or cycle outcome.
    pub outcome: Option<String>,
    /// A refusal's reason, a window's id, a gate's local opening time.
    pub detail: Option<String>,
}

impl Step {
    fn of(entry: &Entry<'_>) -> Step {
        Step {
            at: entry.at,
            kind: entry.kind,
            node: entry.node.cloned(),
            actor: entry.actor.map(str::to_owned),
            role: entry.role.cloned(),
            outcome: entry.outcome.map(str::to_owned),
            detail: entry.detail.map(str::to_owned),
        }
    }
}

/// One cycle (week) of a simulation: its timeline and its report.
#[derive(Debug, Clone, PartialEq)]
pub struct Cycle {
    /// The release id (`2026-W48`).
    pub release: String,
    /// Its place in the run, from 1.
    pub week: u32,
    /// The spec's zone, for local times.
    pub zone: Tz,
    /// Every step, from the cycle's start to its end, in order.
    pub steps: Vec<Step>,
    /// What the simulator reports of it (outcome, on time, deadline misses, ...).
    pub report: WeekReport,
}

impl Cycle {
    /// The first completion of `node` in this cycle.
    #[must_use]
    pub fn completed(&self, node: &str) -> Option<DateTime<Utc>> {
        self.steps
            .iter()
            .find(|s| s.kind == EntryKind::Completed && s.node.as_ref().is_some_and(|n| n.as_str() == node))
            .map(|s| s.at)
    }

    /// `at` in the spec's zone.
    #[must_use]
    pub fn local(&self, at: DateTime<Utc>) -> DateTime<Tz> {
        at.with_timezone(&self.zone)
    }

    /// The Monday of the cycle's week (a cycle starts on its Monday, or later when the one
    /// before ran over).
    #[must_use]
    pub fn monday(&self) -> NaiveDate {
        cycle_monday_of(self.local(self.report.started_at).date_naive())
    }
}

/// Why [`each_cycle`] stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum CycleError<E> {
    /// The spec did not compile.
    Compile(CompileError),
    /// The simulation stopped.
    Sim(SimError),
    /// The closure returned an error for a cycle.
    Check {
        /// The cycle's release id.
        release: String,
        /// Its place in the run, from 1.
        week: u32,
        /// The closure's error.
        error: E,
    },
}

impl<E: fmt::Display> fmt::Display for CycleError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CycleError::Compile(e) => write!(f, "the spec does not compile: {e}"),
            CycleError::Sim(e) => write!(f, "the simulation stopped: {e}"),
            CycleError::Check { release, week, error } => write!(f, "week {week} ({release}): {error}"),
        }
    }
}

/// With proptest's `impl From<E: Error> for TestCaseError`, `each_cycle(...)?` works inside a
/// proptest body, and the failure names the week.
impl<E: fmt::Debug + fmt::Display> std::error::Error for CycleError<E> {}

/// Simulates `spec` with `model` and `config`, then calls `check` with each cycle in order,
/// stopping at the first error. Returns the number of cycles checked.
///
/// # Errors
/// [`CycleError::Compile`] when the spec does not compile, [`CycleError::Sim`] when the
/// simulation stops early, [`CycleError::Check`] with the first error `check` returns.
pub fn each_cycle<E>(
    spec: &CheckedSpec,
    model: &Model,
    config: &SimConfig,
    mut check: impl FnMut(&Cycle) -> Result<(), E>,
) -> Result<u32, CycleError<E>> {
    let workflow = Arc::new(Workflow::compile(spec).map_err(CycleError::Compile)?);
    let zone = workflow.zone();
    let mut timelines: Vec<Vec<Step>> = Vec::new();
    let mut observer = |entry: &Entry<'_>| {
        // Steps before the first cycle starts (a window already open at the start) belong to
        // the first cycle; every later start begins a new one.
        let started = |steps: &Vec<Step>| steps.iter().any(|s| s.kind == EntryKind::CycleStarted);
        if timelines.last().is_none_or(|steps| entry.kind == EntryKind::CycleStarted && started(steps)) {
            timelines.push(Vec::new());
        }
        if let Some(steps) = timelines.last_mut() {
            steps.push(Step::of(entry));
        }
    };
    let run = sim::simulate(workflow, model, config, &mut observer).map_err(CycleError::Sim)?;
    let mut checked = 0;
    for (i, (steps, report)) in timelines.into_iter().zip(run.weeks).enumerate() {
        let week = i as u32 + 1;
        let cycle = Cycle { release: report.release.to_string(), week, zone, steps, report };
        check(&cycle).map_err(|error| CycleError::Check { release: cycle.release.clone(), week, error })?;
        checked += 1;
    }
    Ok(checked)
}
