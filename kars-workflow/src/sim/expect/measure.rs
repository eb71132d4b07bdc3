//! Measuring expectations: one simulation per seed, the facts of each cycle gathered from the
//! timeline, and each expectation weighed over all cycles of all seeds.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc, Weekday};
use kars_spec::spec::Action;
use kars_spec::{NodeId, WindowId};

use super::kinds::{ExpectationKind, Expectations, Point, Quantile, Share};
use crate::effect::ReleaseId;
use crate::sim::report::{Entry, EntryKind};
use crate::sim::{Model, SimConfig, SimError, SimHistory, WeekReport, simulate};
use crate::workflow::Workflow;

/// What a check of expectations found.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectReport {
    /// The seeds, in the order they ran.
    pub seeds: Vec<u64>,
    /// The first day of every run.
    pub start: NaiveDate,
    /// Weeks per run.
    pub weeks: u32,
    /// Cycles measured over all seeds.
    pub cycles: u32,
    /// One result per expectation, in the file's order.
    pub results: Vec<ExpectResult>,
    /// Runs that stopped before their last week.
    pub stopped: Vec<Stopped>,
}

impl ExpectReport {
    /// Whether every expectation held and every run finished.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.stopped.is_empty() && self.results.iter().all(|r| r.passed)
    }
}

/// A run that stopped with an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    /// Its seed.
    pub seed: u64,
    /// The cycle it stopped in.
    pub at: CycleRef,
    /// Why.
    pub error: SimError,
}

/// One expectation weighed.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectResult {
    /// Its name in the file.
    pub name: String,
    /// What it states.
    pub kind: ExpectationKind,
    /// What the runs measured.
    pub measured: Measured,
    /// Whether it held.
    pub passed: bool,
    /// When it failed: the first cycle, in seed then week order, that went against it.
    pub first_broken: Option<CycleRef>,
}

/// A cycle of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleRef {
    /// The run's seed.
    pub seed: u64,
    /// The cycle's place in its run, from 1: replaying `week` weeks ends with it.
    pub week: u32,
    /// Its release id.
    pub release: ReleaseId,
}

/// What a run measured for one expectation.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Measured {
    /// `hits` of `cycles` cycles met the condition.
    Share {
        /// Cycles that met it.
        hits: u32,
        /// All cycles.
        cycles: u32,
    },
    /// The span at the quantile, over the cycles that reached both points.
    Span {
        /// The span in minutes, when any cycle reached both points.
        minutes: Option<i64>,
        /// Cycles that reached both points.
        cycles: u32,
    },
    /// `count` bad things out of `of`.
    Count {
        /// How many went wrong.
        count: u32,
        /// Out of how many.
        of: u32,
    },
}

/// The facts of one cycle that expectations read.
#[derive(Debug, Clone)]
struct CycleFacts {
    release: ReleaseId,
    /// Whether its `CycleStarted` entry came.
    started: bool,
    outcome: Option<String>,
    /// First completion of each tracked node.
    completed: Vec<Option<DateTime<Utc>>>,
    /// Whether each tracked deadline node missed its deadline.
    missed: Vec<bool>,
    /// First opening and closing of each tracked window.
    windows: Vec<WindowTimes>,
    production: Option<DateTime<Utc>>,
    on_time: bool,
    merges: u16,
    disagreements: u16,
}

/// When a window first opened and first closed in a cycle.
type WindowTimes = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The nodes and windows the expectations read, so the observer keeps only those.
struct Tracked {
    zone: chrono_tz::Tz,
    nodes: Vec<NodeId>,
    deadlines: Vec<NodeId>,
    windows: Vec<WindowId>,
    deploys: Vec<NodeId>,
}

impl Tracked {
    fn of(expectations: &Expectations, workflow: &Workflow) -> Tracked {
        let mut t = Tracked {
            zone: workflow.zone(),
            nodes: Vec::new(),
            deadlines: Vec::new(),
            windows: Vec::new(),
            deploys: expectations.deploys.clone(),
        };
        let point = |t: &mut Tracked, p: &Point| match p {
            Point::Node(n) if !t.nodes.contains(n) => t.nodes.push(n.clone()),
            Point::Opens(w) | Point::Closes(w) if !t.windows.contains(w) => t.windows.push(w.clone()),
            _ => {}
        };
        for e in &expectations.items {
            match &e.kind {
                ExpectationKind::CompletesBy { node, .. } => point(&mut t, &Point::Node(node.clone())),
                ExpectationKind::DeadlineMissed { node, .. } if !t.deadlines.contains(node) => {
                    t.deadlines.push(node.clone());
                }
                ExpectationKind::Span { from, to, .. } => {
                    point(&mut t, from);
                    point(&mut t, to);
                }
                _ => {}
            }
        }
        t
    }

    fn fresh(&self, release: ReleaseId) -> CycleFacts {
        CycleFacts {
            release,
            started: false,
            outcome: None,
            completed: vec![None; self.nodes.len()],
            missed: vec![false; self.deadlines.len()],
            windows: vec![(None, None); self.windows.len()],
            production: None,
            on_time: false,
            merges: 0,
            disagreements: 0,
        }
    }

    fn record(&self, cycles: &mut Vec<CycleFacts>, entry: &Entry<'_>) {
        // Entries before the first cycle starts (a window already open at the start) belong
        // to the first cycle; every later start begins a new one.
        if cycles.last().is_none_or(|c| entry.kind == EntryKind::CycleStarted && c.started) {
            cycles.push(self.fresh(entry.release.clone()));
        }
        let Some(cycle) = cycles.last_mut() else { return };
        if entry.kind == EntryKind::CycleStarted {
            cycle.started = true;
            return;
        }
        let position = |list: &[NodeId]| entry.node.and_then(|n| list.iter().position(|x| x == n));
        match entry.kind {
            EntryKind::Completed => {
                if let Some(i) = position(&self.nodes) {
                    cycle.completed[i].get_or_insert(entry.at);
                }
            }
            EntryKind::DeadlineMissed => {
                if let Some(i) = position(&self.deadlines) {
                    cycle.missed[i] = true;
                }
            }
            EntryKind::Result if entry.outcome == Some("succeeded") && position(&self.deploys).is_some() => {
                cycle.production = Some(entry.at);
            }
            EntryKind::WindowOpened | EntryKind::WindowClosed => {
                let found = entry.detail.and_then(|d| self.windows.iter().position(|w| w.as_str() == d));
                if let Some(i) = found {
                    let slot = &mut cycle.windows[i];
                    let slot = if entry.kind == EntryKind::WindowOpened { &mut slot.0 } else { &mut slot.1 };
                    slot.get_or_insert(entry.at);
                }
            }
            EntryKind::CycleEnded => cycle.outcome = entry.outcome.map(str::to_owned),
            _ => {}
        }
    }
}

impl Expectations {
    /// Runs one simulation per seed and weighs every expectation over all their cycles.
    ///
    /// Same workflow, model and expectations: the same report, every time.
    #[must_use]
    pub fn evaluate(&self, workflow: &Arc<Workflow>, model: &Model) -> ExpectReport {
        let tracked = Tracked::of(self, workflow);
        let mut runs: Vec<(u64, Vec<CycleFacts>)> = Vec::with_capacity(self.seeds.len());
        let mut stopped = Vec::new();
        for &seed in &self.seeds {
            let config = SimConfig { weeks: self.weeks, seed, start: self.start, history: SimHistory::Release };
            let mut cycles: Vec<CycleFacts> = Vec::with_capacity(self.weeks.min(10_000) as usize);
            let mut observer = |entry: &Entry<'_>| tracked.record(&mut cycles, entry);
            match simulate(Arc::clone(workflow), model, &config, &mut observer) {
                Ok(run) => merge_reports(&mut cycles, &run.weeks),
                Err(error) => {
                    // The week reports of a stopped run are lost: its cycles count as not on
                    // time, and the cycle it stopped in as one without an outcome.
                    let release = match &error {
                        SimError::Stalled { release, .. }
                        | SimError::OutOfRange { release, .. }
                        | SimError::NoProgress { release, .. }
                        | SimError::Stopped { release, .. } => release.clone(),
                    };
                    if cycles.last().is_none_or(|c| c.outcome.is_some()) {
                        cycles.push(tracked.fresh(release.clone()));
                    }
                    let at = CycleRef { seed, week: cycles.len() as u32, release };
                    stopped.push(Stopped { seed, at, error });
                }
            }
            runs.push((seed, cycles));
        }
        let cycles = runs.iter().map(|(_, c)| c.len() as u32).sum();
        let results = self.items.iter().map(|e| weigh(&e.name, &e.kind, &tracked, &runs)).collect();
        ExpectReport { seeds: self.seeds.clone(), start: self.start, weeks: self.weeks, cycles, results, stopped }
    }
}

/// The nodes whose action deploys: `production` is the last successful one in a cycle.
#[must_use]
pub(crate) fn deploy_nodes(spec: &kars_spec::Spec) -> Vec<NodeId> {
    spec.nodes.iter().filter(|(_, n)| matches!(n.action, Some(Action::Deploy(_)))).map(|(id, _)| id.clone()).collect()
}

/// Copies what only the week reports know (on time, merges) onto the cycles that ended.
fn merge_reports(cycles: &mut [CycleFacts], reports: &[WeekReport]) {
    for (cycle, report) in cycles.iter_mut().zip(reports) {
        debug_assert_eq!(cycle.release, report.release, "reports come one per ended cycle, in order");
        cycle.on_time = report.on_time;
        cycle.merges = report.merges;
        cycle.disagreements = report.policy_disagreements;
    }
}

/// The instant `by` falls on in the cycle of `release`, in `zone`.
fn due(release: &ReleaseId, by: kars_spec::calendar::WeekTime, zone: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let monday = monday_of(release);
    debug_assert!(monday.is_some(), "release ids are made from a Monday: {release}");
    Some(by.resolve(monday?, zone))
}

/// The Monday of a release id such as `2026-W48`.
fn monday_of(release: &ReleaseId) -> Option<NaiveDate> {
    let (year, week) = release.as_str().split_once("-W")?;
    NaiveDate::from_isoywd_opt(year.parse().ok()?, week.parse().ok()?, Weekday::Mon)
}

fn weigh(name: &str, kind: &ExpectationKind, tracked: &Tracked, runs: &[(u64, Vec<CycleFacts>)]) -> ExpectResult {
    let all = || runs.iter().flat_map(|(seed, cycles)| cycles.iter().enumerate().map(move |(i, c)| (*seed, i, c)));
    let first = |bad: &dyn Fn(&CycleFacts) -> bool| {
        all().find(|(_, _, c)| bad(c)).map(|(seed, i, c)| CycleRef {
            seed,
            week: i as u32 + 1,
            release: c.release.clone(),
        })
    };
    let cycles = all().count() as u32;
    let share = |condition: &dyn Fn(&CycleFacts) -> bool, bound: Share| {
        let hits = all().filter(|(_, _, c)| condition(c)).count() as u32;
        let value = if cycles == 0 { 0.0 } else { f64::from(hits) / f64::from(cycles) };
        let passed = cycles > 0
            && match bound {
                Share::AtLeast(b) => value >= b,
                Share::AtMost(b) => value <= b,
            };
        let first_broken = match (passed, bound) {
            (true, _) => None,
            (false, Share::AtLeast(_)) => first(&|c| !condition(c)),
            (false, Share::AtMost(_)) => first(&|c| condition(c)),
        };
        (Measured::Share { hits, cycles }, passed, first_broken)
    };
    let (measured, passed, first_broken) = match kind {
        ExpectationKind::Outcome { outcome, on_time, share: bound } => {
            share(&|c| c.outcome.as_deref() == Some(outcome.as_str()) && (!on_time || c.on_time), *bound)
        }
        ExpectationKind::CompletesBy { node, by, share: bound } => {
            let i = tracked.nodes.iter().position(|n| n == node);
            share(
                &|c| {
                    i.and_then(|i| c.completed[i])
                        .is_some_and(|at| due(&c.release, *by, tracked.zone).is_some_and(|due| at <= due))
                },
                *bound,
            )
        }
        ExpectationKind::DeadlineMissed { node, share: bound } => {
            let i = tracked.deadlines.iter().position(|n| n == node);
            share(&|c| i.is_some_and(|i| c.missed[i]), *bound)
        }
        ExpectationKind::Span { from, to, quantile, within_minutes } => {
            let span = |c: &CycleFacts| -> Option<i64> {
                let (a, b) = (instant(tracked, c, from)?, instant(tracked, c, to)?);
                (b >= a).then(|| (b - a).num_minutes())
            };
            let mut values: Vec<i64> = all().filter_map(|(_, _, c)| span(c)).collect();
            values.sort_unstable();
            let minutes = pick(&values, *quantile);
            let limit = i64::from(*within_minutes);
            let passed = minutes.is_some_and(|m| m <= limit);
            let first_broken = if passed { None } else { first(&|c| span(c).is_some_and(|m| m > limit)) };
            (Measured::Span { minutes, cycles: values.len() as u32 }, passed, first_broken)
        }
        ExpectationKind::MergesFollowTheWindows => {
            let count = all().map(|(_, _, c)| u32::from(c.disagreements)).sum();
            let of = all().map(|(_, _, c)| u32::from(c.merges)).sum();
            let passed = count == 0;
            let first_broken = if passed { None } else { first(&|c| c.disagreements > 0) };
            (Measured::Count { count, of }, passed, first_broken)
        }
        ExpectationKind::CyclesEndWithAnOutcome => {
            let open = |c: &CycleFacts| c.outcome.as_deref().is_none_or(str::is_empty);
            let count = all().filter(|(_, _, c)| open(c)).count() as u32;
            let passed = count == 0;
            let first_broken = if passed { None } else { first(&open) };
            (Measured::Count { count, of: cycles }, passed, first_broken)
        }
    };
    ExpectResult { name: name.to_owned(), kind: kind.clone(), measured, passed, first_broken }
}

fn instant(tracked: &Tracked, c: &CycleFacts, point: &Point) -> Option<DateTime<Utc>> {
    match point {
        Point::Node(n) => c.completed[tracked.nodes.iter().position(|x| x == n)?],
        Point::Opens(w) => c.windows[tracked.windows.iter().position(|x| x == w)?].0,
        Point::Closes(w) => c.windows[tracked.windows.iter().position(|x| x == w)?].1,
        Point::Production => c.production,
    }
}

/// The value at `quantile` of sorted `values` (nearest rank).
fn pick(values: &[i64], quantile: Quantile) -> Option<i64> {
    let last = values.len().checked_sub(1)?;
    let index = match quantile {
        Quantile::Max => last,
        Quantile::Percentile(p) => (values.len() * usize::from(p)).div_ceil(100).saturating_sub(1).min(last),
    };
    values.get(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::expect::Expectation;

    fn facts(release: &str, merges: u16, disagreements: u16) -> CycleFacts {
        let monday = NaiveDate::parse_from_str(release, "%Y-%m-%d").unwrap();
        CycleFacts {
            release: ReleaseId::of(monday),
            started: true,
            outcome: Some("done".into()),
            completed: Vec::new(),
            missed: Vec::new(),
            windows: Vec::new(),
            production: None,
            on_time: true,
            merges,
            disagreements,
        }
    }

    fn tracked() -> Tracked {
        Tracked {
            zone: chrono_tz::UTC,
            nodes: Vec::new(),
            deadlines: Vec::new(),
            windows: Vec::new(),
            deploys: Vec::new(),
        }
    }

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let values: Vec<i64> = (1..=10).collect();
        assert_eq!(pick(&values, Quantile::Percentile(90)), Some(9));
        assert_eq!(pick(&values, Quantile::Percentile(50)), Some(5));
        assert_eq!(pick(&values, Quantile::Percentile(1)), Some(1));
        assert_eq!(pick(&values, Quantile::Max), Some(10));
        assert_eq!(pick(&[], Quantile::Max), None);
        assert_eq!(pick(&[7], Quantile::Percentile(99)), Some(7));
    }

    /// The engine never disagrees with `may()` in a real run, so a failing run is built by hand:
    /// the first week with a disagreement, in seed order, is the one named.
    #[test]
    fn a_disagreement_breaks_merges_follow_the_windows() {
        let runs = vec![
            (4, vec![facts("2026-01-05", 3, 0), facts("2026-01-12", 2, 0)]),
            (9, vec![facts("2026-01-05", 1, 0), facts("2026-01-12", 4, 2)]),
        ];
        let kind = Expectation { name: "w".into(), kind: ExpectationKind::MergesFollowTheWindows };
        let result = weigh(&kind.name, &kind.kind, &tracked(), &runs);
        assert!(!result.passed);
        assert_eq!(result.measured, Measured::Count { count: 2, of: 10 });
        let broken = result.first_broken.unwrap();
        assert_eq!((broken.seed, broken.week, broken.release.as_str()), (9, 2, "2026-W03"));
        let clean = vec![(4, vec![facts("2026-01-05", 3, 0)])];
        assert!(weigh(&kind.name, &kind.kind, &tracked(), &clean).passed);
    }
}
