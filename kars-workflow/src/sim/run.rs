//! The simulation loop: one instance on a virtual clock that jumps to the next planned act or
//! timer, with seeded people doing the work.
//!
//! The loop is the engine's documented call order: drain effects (and plan their results),
//! drain notices (and plan the work they make ready), then jump the clock to whichever comes
//! first, the instance's `poll_timeout()` or the next planned act. At equal instants timers run
//! first, so a deadline at 15:00 fires before a sign-off planned for 15:00.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use kars_spec::NodeId;
use kars_spec::calendar::resolve_local;

use super::hours::MinuteRange;
use super::model::Model;
use super::report::{Entry, EntryKind, Observer, WeekReport};
use super::rng::SimRng;
use crate::effect::{EffectKind, NoticeKind, ReleaseId};
use crate::event::{ActionOutcome, InstanceId};
use crate::gate;
use crate::instance::{Instance, Options};
use crate::workflow::{CompiledEdge, NodeIndex, Workflow};

mod act;
mod forge;
mod shape;

use shape::{completion_outcomes, merge_branches, role_for};

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// How many cycles (weeks) to run to their end.
    pub weeks: u32,
    /// The seed: the same seed, model and spec give the same run, byte for byte.
    pub seed: u64,
    /// The first day; the instance starts at its local midnight.
    pub start: NaiveDate,
    /// Whether the run keeps the instance's history in memory.
    pub history: SimHistory,
}

/// What a simulation keeps of its instance's history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SimHistory {
    /// Keep every record, so that [`SimRun::instance`] can be replayed and inspected; memory
    /// grows with the run (about 10 KB a simulated week).
    #[default]
    Keep,
    /// Release each week's records when the week ends ([`Instance::release_history`]): memory
    /// stays flat however long the run; [`SimRun::instance`] then holds only the last records.
    Release,
}

/// Why a simulation stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The token cannot move on (see [`crate::WaitingFor::Stalled`]).
    #[error("release {release} stalled at `{node}`: nothing can move the token on")]
    Stalled {
        /// The release.
        release: ReleaseId,
        /// The node.
        node: NodeId,
    },
    /// The run reached the end of the engine's calendar ([`crate::gate::LATEST`]), where time no
    /// longer moves on.
    #[error(
        "release {release} reached {at}, past the latest instant the engine works with ({})\nhelp: start earlier or simulate fewer weeks",
        crate::gate::LATEST
    )]
    OutOfRange {
        /// The release.
        release: ReleaseId,
        /// The virtual time it stopped at.
        at: DateTime<Utc>,
    },
    /// Nothing is planned and no timer is armed: the workflow waits for something the
    /// simulator cannot do.
    #[error(
        "release {release} is stuck at {at}: {waiting}\nhelp: no simulated person can do it; check the roles held by the team (`team:`) and `distinct_from`"
    )]
    NoProgress {
        /// The release.
        release: ReleaseId,
        /// The virtual time it stopped at.
        at: DateTime<Utc>,
        /// What the instance waits for ([`crate::Waiting`] in words).
        waiting: String,
    },
    /// The observer asked to stop ([`Observer::stop`]): where its entries go is gone.
    #[error("release {release}: the simulation was stopped at {at}")]
    Stopped {
        /// The release.
        release: ReleaseId,
        /// The virtual time it stopped at.
        at: DateTime<Utc>,
    },
}

/// A finished simulation.
#[derive(Debug, Clone)]
pub struct SimRun {
    /// One report per simulated week, in order.
    pub weeks: Vec<WeekReport>,
    /// The instance as it stands at the end, with its whole history (replay it to check).
    pub instance: Instance,
    /// How often the merge bot's `may()` answer disagreed with the engine's verdict on the
    /// merge itself (always 0 unless the engine is broken; property tests check it).
    pub policy_disagreements: u32,
}

/// What a node needs from the model, resolved once per run.
#[derive(Debug, Clone, Default)]
struct NodePlan {
    duration: Option<MinuteRange>,
    branches: Vec<(Arc<str>, Vec<f64>)>,
    failure: f64,
}

#[derive(Debug, Clone)]
enum Act {
    Work {
        node: NodeIndex,
        person: usize,
        outcome: Option<Arc<str>>,
        authorized: bool,
        tries: u8,
    },
    /// An action's result; `unmet` holds what a forge merge found missing (then `Failed`).
    Result {
        node: NodeIndex,
        outcome: ActionOutcome,
        deploy: bool,
        unmet: Vec<crate::requirements::Unmet>,
    },
    /// The merge bot's merge; `pr` is the pull request on the forge when the merge `requires:`
    /// reviews or checks (drawn at the first try).
    Merge {
        source: String,
        target: String,
        person: usize,
        pr: Option<Box<forge::ForgePr>>,
    },
}

#[derive(Debug, Clone)]
struct Planned {
    at: DateTime<Utc>,
    seq: u64,
    act: Act,
}

/// What the loop tracks of the running cycle.
#[derive(Debug, Clone, Default)]
struct Cycle {
    /// Per node, its entry count this cycle as last entered (what a decision's chances use).
    attempts: Vec<u16>,
    completed_by: Vec<Option<usize>>,
    started_at: Option<DateTime<Utc>>,
    last_gate_day: Option<NaiveDate>,
    retry_rounds: u16,
    freeze_at: Option<DateTime<Utc>>,
    production_at: Option<DateTime<Utc>>,
    gate_wait_minutes: i64,
    gates_late: u16,
    deadline_misses: u16,
    refused: u16,
    merges: u16,
    merges_refused: u16,
    /// Merges refused because the pull request missed what the merge `requires:`.
    merges_unmet: u16,
    /// Merges that waited for reviews or checks on the forge.
    merges_delayed: u16,
    /// When this cycle's `open_pull_request` effects opened each (source, target).
    opened: Vec<(String, String, DateTime<Utc>)>,
    disagreements: u16,
}

impl Cycle {
    fn new(nodes: usize, started_at: Option<DateTime<Utc>>) -> Self {
        Cycle { attempts: vec![0; nodes], completed_by: vec![None; nodes], started_at, ..Cycle::default() }
    }
}

/// Runs `workflow` for `config.weeks` cycles with `model`'s people, telling `observer` every
/// step.
///
/// # Errors
/// Returns [`SimError`] when the workflow stalls or waits for something no simulated person or
/// system provides, or when the run would pass the end of the engine's calendar.
pub fn simulate(
    workflow: Arc<Workflow>,
    model: &Model,
    config: &SimConfig,
    observer: &mut dyn Observer,
) -> Result<SimRun, SimError> {
    if config.start >= gate::LATEST.date_naive() {
        let at = config.start.and_time(NaiveTime::MIN).and_utc();
        return Err(SimError::OutOfRange { release: ReleaseId::of(config.start), at });
    }
    Sim::new(workflow, model, config).run(config.weeks, observer)
}

struct Sim<'m> {
    workflow: Arc<Workflow>,
    history: SimHistory,
    model: &'m Model,
    plans: Vec<NodePlan>,
    merge_sources: Vec<(String, String)>,
    /// The outcomes of the nodes with an edge back to the start: a cycle that ran its course.
    completions: Vec<String>,
    merge_targets: Vec<String>,
    instance: Instance,
    rng: SimRng,
    queue: Vec<Planned>,
    seq: u64,
    now: DateTime<Utc>,
    release: ReleaseId,
    monday: NaiveDate,
    cycle: Cycle,
    /// Who completed the node the instance is about to report complete.
    acting: Option<(NodeIndex, usize, Option<Arc<str>>)>,
    disagreements: u32,
    /// When the token last moved (a node entered, a cycle started).
    moved_at: DateTime<Utc>,
    /// Per person, the node they are planned to work on and until when: with parallel
    /// branches a person does one task at a time (unused for a workflow without forks).
    busy: Vec<Option<(NodeIndex, DateTime<Utc>)>>,
}

/// How long the token may stand still before the run counts as stuck: longer than any wait a
/// spec can write (the rest of its cadence before a cycle starts, then a gate at most `+8w`
/// after its cycle's Monday), so only a workflow that nobody on the team can move on trips it,
/// even while calendar windows keep time moving.
fn stuck_after(workflow: &Workflow) -> chrono::Duration {
    let rest_of_cadence = i64::from(workflow.cadence().every.0.saturating_sub(1));
    chrono::Duration::weeks(i64::from(kars_spec::calendar::MAX_WEEK_OFFSET) + rest_of_cadence + 2)
}

impl<'m> Sim<'m> {
    fn new(workflow: Arc<Workflow>, model: &'m Model, config: &SimConfig) -> Self {
        let zone = workflow.zone();
        let start = resolve_local(zone, config.start.and_time(NaiveTime::MIN));
        let id = InstanceId::new(workflow.name()).unwrap_or_else(|_| InstanceId::sim());
        let mut instance = Instance::start_with(Arc::clone(&workflow), id, start, Options { notice_capacity: 1 << 12 });
        // About one history record per node and a few timers a week; capped so that a huge
        // `weeks` does not reserve memory up front.
        let per_week = workflow.node_count() + 8;
        if config.history == SimHistory::Keep {
            instance.reserve_history(per_week.saturating_mul(config.weeks.min(20_000) as usize));
        }
        let plans = workflow
            .nodes
            .iter()
            .map(|n| NodePlan {
                duration: model.node_durations.get(&n.id).copied(),
                branches: model
                    .branches
                    .get(&n.id)
                    .map(|b| {
                        // The workflow's own label where it has one: events then share it.
                        let shared = |l: &str| workflow.label_index(l).and_then(|i| workflow.shared_label(i));
                        b.iter().map(|(l, c)| (shared(l).unwrap_or_else(|| l.as_str().into()), c.clone())).collect()
                    })
                    .unwrap_or_default(),
                failure: model.action_failures.get(&n.id).copied().unwrap_or(0.0),
            })
            .collect();
        let (merge_sources, merge_targets) = merge_branches(&workflow);
        let completions = completion_outcomes(&workflow);
        Sim {
            plans,
            merge_sources,
            merge_targets,
            completions,
            instance,
            rng: SimRng::new(config.seed),
            queue: Vec::with_capacity(8),
            seq: 0,
            now: start,
            release: ReleaseId::of(config.start),
            monday: config.start,
            cycle: Cycle::new(workflow.nodes.len(), None),
            busy: vec![None; model.team.people.len()],
            acting: None,
            disagreements: 0,
            moved_at: start,
            history: config.history,
            model,
            workflow,
        }
    }

    fn run(mut self, weeks: u32, observer: &mut dyn Observer) -> Result<SimRun, SimError> {
        // Reports grow as weeks end; a huge `weeks` must not reserve memory up front.
        let mut reports = Vec::with_capacity(usize::try_from(weeks).unwrap_or(usize::MAX).min(1024));
        while (reports.len() as u64) < u64::from(weeks) {
            if observer.stop() {
                return Err(SimError::Stopped { release: ReleaseId::clone(&self.release), at: self.now });
            }
            // The engine clamps instants to its calendar, so past its end no timer moves time on.
            if self.now > gate::LATEST {
                return Err(SimError::OutOfRange { release: ReleaseId::clone(&self.release), at: self.now });
            }
            // Notices first: they say what happened, in order; the effects come from those steps.
            self.drain_notices(observer, &mut reports, weeks)?;
            self.drain_effects(observer);
            if (reports.len() as u64) >= u64::from(weeks) {
                break;
            }
            // Calendar windows keep timers coming: a token nobody can move would otherwise
            // tick on to the end of the engine's calendar.
            if self.now - self.moved_at > stuck_after(&self.workflow) {
                return Err(self.no_progress());
            }
            let timer = self.instance.poll_timeout();
            let next = self.next_planned();
            match (timer, next) {
                (Some(t), Some(i)) if t <= self.queue[i].at => self.tick(t),
                (_, Some(i)) => {
                    let planned = self.queue.swap_remove(i);
                    self.now = self.now.max(planned.at);
                    self.perform(planned, observer);
                }
                (Some(t), None) => self.tick(t),
                (None, None) => return Err(self.no_progress()),
            }
        }
        Ok(SimRun { weeks: reports, instance: self.instance, policy_disagreements: self.disagreements })
    }

    /// The run is stuck: what the instance waits for, in words.
    fn no_progress(&self) -> SimError {
        let waiting = self.instance.waiting(self.now).to_string();
        SimError::NoProgress { release: ReleaseId::clone(&self.release), at: self.now, waiting }
    }

    fn tick(&mut self, at: DateTime<Utc>) {
        self.now = self.now.max(at);
        self.instance.handle_timeout(self.now);
    }

    fn next_planned(&self) -> Option<usize> {
        self.queue.iter().enumerate().min_by_key(|(_, p)| (p.at, p.seq)).map(|(i, _)| i)
    }

    fn plan(&mut self, at: DateTime<Utc>, act: Act) {
        self.seq += 1;
        self.queue.push(Planned { at, seq: self.seq, act });
    }

    fn drain_effects(&mut self, observer: &mut dyn Observer) {
        while let Some(effect) = self.instance.poll_effect() {
            observer.entry(&Entry {
                release: &self.release,
                at: self.now,
                kind: EntryKind::Effect,
                node: Some(&effect.node),
                effect: Some(&effect),
                ..Entry::empty(&self.release, self.now)
            });
            if let EffectKind::OpenPullRequest { from, to } = &effect.kind {
                self.cycle.opened.push((from.to_string(), to.to_string(), self.now));
            }
            if effect.kind.awaits_result()
                && let Some(node) = self.workflow.node_index(effect.node.as_str())
            {
                let plan = &self.plans[node.get()];
                let range = plan.duration.unwrap_or(self.model.action);
                let failure = plan.failure;
                let minutes = self.sample(range);
                let outcome = if self.rng.chance(failure) { ActionOutcome::Failed } else { ActionOutcome::Succeeded };
                let deploy = matches!(effect.kind, EffectKind::Deploy { .. });
                let at = self.now + Duration::minutes(i64::from(minutes));
                match &effect.kind {
                    EffectKind::MergePullRequest { from, to, requires: Some(requires) } => {
                        self.forge_merge(node, from, to, requires, at, outcome, observer);
                    }
                    _ => self.plan(at, Act::Result { node, outcome, deploy, unmet: Vec::new() }),
                }
            }
        }
    }

    fn drain_notices(
        &mut self,
        observer: &mut dyn Observer,
        reports: &mut Vec<WeekReport>,
        weeks: u32,
    ) -> Result<(), SimError> {
        let workflow = Arc::clone(&self.workflow);
        while let Some(notice) = self.instance.poll_notice() {
            if (reports.len() as u64) >= u64::from(weeks) {
                continue;
            }
            let at = notice.at;
            if matches!(notice.kind, NoticeKind::CycleStarted { .. } | NoticeKind::NodeEntered { .. }) {
                self.moved_at = self.moved_at.max(at);
            }
            if let NoticeKind::CycleStarted { monday } = notice.kind {
                self.release = ReleaseId::of(monday);
                self.monday = monday;
                self.cycle = Cycle::new(workflow.nodes.len(), Some(at));
                observer.entry(&Entry { kind: EntryKind::CycleStarted, ..Entry::empty(&self.release, at) });
                self.plan_merges(at);
                continue;
            }
            // A copy: an ISO-week id is kept inline.
            let release = self.release.clone();
            let base = Entry::empty(&release, at);
            match notice.kind {
                NoticeKind::NodeEntered { node, attempt } => {
                    if let Some(a) = self.cycle.attempts.get_mut(node.get()) {
                        *a = attempt;
                    }
                    if workflow.node(node).retry.is_some() {
                        self.cycle.retry_rounds += 1;
                    }
                    observer.entry(&Entry { kind: EntryKind::Entered, node: workflow.node_id(node), ..base });
                    if workflow.node(node).gate.is_none() {
                        self.ready(node, at);
                    }
                }
                NoticeKind::GateArmed { node, opens_at } => {
                    self.cycle.last_gate_day = Some(opens_at.with_timezone(&workflow.zone()).date_naive());
                    if opens_at > at {
                        self.cycle.gate_wait_minutes += (opens_at - at).num_minutes();
                    } else if opens_at < at {
                        self.cycle.gates_late += 1;
                    }
                    if observer.wants_entries() {
                        let local = opens_at.with_timezone(&workflow.zone()).to_rfc3339();
                        observer.entry(&Entry {
                            kind: EntryKind::GateArmed,
                            node: workflow.node_id(node),
                            detail: Some(&local),
                            ..base
                        });
                    }
                }
                NoticeKind::GateOpened { node } => {
                    observer.entry(&Entry { kind: EntryKind::GateOpened, node: workflow.node_id(node), ..base });
                    self.ready(node, at);
                }
                NoticeKind::NodeCompleted { node } => {
                    let acting = self.acting.take().filter(|(n, _, _)| *n == node);
                    let (actor, role, outcome) = match &acting {
                        Some((_, person, outcome)) => {
                            if let Some(slot) = self.cycle.completed_by.get_mut(node.get()) {
                                *slot = Some(*person);
                            }
                            let actor = &self.model.team.people[*person].actor;
                            let role = role_for(&workflow, node, actor.roles());
                            (Some(&**actor.name()), role, outcome.as_deref())
                        }
                        None => (None, None, None),
                    };
                    observer.entry(&Entry {
                        kind: EntryKind::Completed,
                        node: workflow.node_id(node),
                        actor,
                        role,
                        outcome,
                        ..base
                    });
                }
                NoticeKind::DeadlineMissed { node } => {
                    self.cycle.deadline_misses += 1;
                    observer.entry(&Entry { kind: EntryKind::DeadlineMissed, node: workflow.node_id(node), ..base });
                }
                NoticeKind::RetryExhausted { node } => {
                    observer.entry(&Entry { kind: EntryKind::RetryExhausted, node: workflow.node_id(node), ..base });
                }
                NoticeKind::WindowOpened { window } => {
                    let compiled = &workflow.windows[window.get()];
                    if matches!(compiled.opens, CompiledEdge::After { .. }) && self.cycle.freeze_at.is_none() {
                        self.cycle.freeze_at = Some(at);
                    }
                    observer.entry(&Entry {
                        kind: EntryKind::WindowOpened,
                        detail: Some(compiled.id.as_str()),
                        ..base
                    });
                }
                NoticeKind::WindowClosed { window } => {
                    let id = workflow.windows[window.get()].id.as_str();
                    observer.entry(&Entry { kind: EntryKind::WindowClosed, detail: Some(id), ..base });
                }
                NoticeKind::CycleEnded { outcome } => {
                    let outcome = workflow.label(outcome);
                    observer.entry(&Entry { kind: EntryKind::CycleEnded, outcome: Some(outcome), ..base });
                    reports.push(self.week_report(outcome, at));
                    if self.history == SimHistory::Release {
                        let next = self.instance.history().next_seq();
                        self.instance.release_history(next);
                    }
                }
                NoticeKind::Stalled { node } => {
                    let node = workflow.node_id(node).cloned().unwrap_or_else(|| workflow.nodes[0].id.clone());
                    return Err(SimError::Stalled { release: ReleaseId::clone(&self.release), node });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn week_report(&self, outcome: &str, ended_at: DateTime<Utc>) -> WeekReport {
        let c = &self.cycle;
        let freeze_to_production = match (c.freeze_at, c.production_at) {
            (Some(f), Some(p)) if p >= f => Some(p - f),
            _ => None,
        };
        let ended_day = ended_at.with_timezone(&self.workflow.zone()).date_naive();
        WeekReport {
            release: ReleaseId::clone(&self.release),
            outcome: outcome.to_owned(),
            started_at: c.started_at.unwrap_or(ended_at),
            ended_at,
            completed: self.completions.iter().any(|o| o == outcome),
            on_time: self.completions.iter().any(|o| o == outcome)
                && c.deadline_misses == 0
                && c.last_gate_day.is_none_or(|d| ended_day <= d),
            deadline_misses: c.deadline_misses,
            retry_rounds: c.retry_rounds,
            freeze_to_production,
            gate_wait: Duration::minutes(c.gate_wait_minutes),
            gates_late: c.gates_late,
            refused: c.refused,
            merges: c.merges,
            merges_refused: c.merges_refused,
            merges_unmet: c.merges_unmet,
            merges_delayed: c.merges_delayed,
            policy_disagreements: c.disagreements,
        }
    }

    fn sample(&mut self, range: MinuteRange) -> u32 {
        self.rng.range_u32(range.min, range.max)
    }
}
