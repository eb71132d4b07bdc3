//! The simulation loop: one instance on a virtual clock that jumps to the next planned act or
//! timer, with seeded people doing the work.
//!
//! The loop is the engine's documented call order: drain effects (and plan their results),
//! drain notices (and plan the work they make ready), then jump the clock to whichever comes
//! first, the instance's `poll_timeout()` or the next planned act. At equal instants timers run
//! first, so a deadline at 15:00 fires before a sign-off planned for 15:00.

use std::rc::Rc;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use kars_spec::calendar::resolve_local;
use kars_spec::spec::NodeKind;
use kars_spec::{NodeId, RoleId};

use super::hours::MinuteRange;
use super::model::{Model, at_visit};
use super::report::{Entry, EntryKind, Observer, WeekReport};
use super::rng::SimRng;
use crate::EngineError;
use crate::effect::{EffectKind, NoticeKind, ReleaseId};
use crate::event::{ActionOutcome, Event, InstanceId, MergeRequest};
use crate::gate;
use crate::instance::{Instance, Options};
use crate::workflow::{CompiledEdge, Decider, NodeIndex, Workflow};

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// How many cycles (weeks) to run to their end.
    pub weeks: u32,
    /// The seed: the same seed, model and spec give the same run, byte for byte.
    pub seed: u64,
    /// The first day; the instance starts at its local midnight.
    pub start: NaiveDate,
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
    branches: Vec<(String, Vec<f64>)>,
    failure: f64,
}

#[derive(Debug, Clone)]
enum Act {
    Work { node: NodeIndex, person: usize, outcome: Option<String>, authorized: bool, tries: u8 },
    Result { node: NodeIndex, outcome: ActionOutcome, deploy: bool },
    Merge { source: String, target: String, person: usize },
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
    current: Option<NodeIndex>,
    visits: u16,
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
    release: Rc<ReleaseId>,
    monday: NaiveDate,
    cycle: Cycle,
    /// Who completed the node the instance is about to report complete.
    acting: Option<(NodeIndex, usize, Option<String>)>,
    disagreements: u32,
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
        instance.reserve_history(per_week.saturating_mul(config.weeks.min(20_000) as usize));
        let plans = workflow
            .nodes
            .iter()
            .map(|n| NodePlan {
                duration: model.node_durations.get(&n.id).copied(),
                branches: model.branches.get(&n.id).cloned().unwrap_or_default(),
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
            release: Rc::new(ReleaseId::of(config.start)),
            monday: config.start,
            cycle: Cycle { completed_by: vec![None; workflow.nodes.len()], ..Cycle::default() },
            acting: None,
            disagreements: 0,
            model,
            workflow,
        }
    }

    fn run(mut self, weeks: u32, observer: &mut dyn Observer) -> Result<SimRun, SimError> {
        // Reports grow as weeks end; a huge `weeks` must not reserve memory up front.
        let mut reports = Vec::with_capacity(usize::try_from(weeks).unwrap_or(usize::MAX).min(1024));
        while (reports.len() as u64) < u64::from(weeks) {
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
                (None, None) => {
                    let waiting = self.instance.waiting(self.now).to_string();
                    return Err(SimError::NoProgress {
                        release: ReleaseId::clone(&self.release),
                        at: self.now,
                        waiting,
                    });
                }
            }
        }
        Ok(SimRun { weeks: reports, instance: self.instance, policy_disagreements: self.disagreements })
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
            if effect.kind.awaits_result()
                && let Some(node) = self.workflow.node_index(effect.node.as_str())
            {
                let plan = &self.plans[node.get()];
                let range = plan.duration.unwrap_or(self.model.action);
                let failure = plan.failure;
                let minutes = self.sample(range);
                let outcome = if self.rng.chance(failure) { ActionOutcome::Failed } else { ActionOutcome::Succeeded };
                let deploy = matches!(effect.kind, EffectKind::Deploy { .. });
                self.plan(self.now + Duration::minutes(i64::from(minutes)), Act::Result { node, outcome, deploy });
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
            if let NoticeKind::CycleStarted { monday } = notice.kind {
                self.release = Rc::new(ReleaseId::of(monday));
                self.monday = monday;
                self.cycle =
                    Cycle { completed_by: vec![None; workflow.nodes.len()], started_at: Some(at), ..Cycle::default() };
                observer.entry(&Entry { kind: EntryKind::CycleStarted, ..Entry::empty(&self.release, at) });
                self.plan_merges(at);
                continue;
            }
            let release = Rc::clone(&self.release);
            let base = Entry::empty(&release, at);
            match notice.kind {
                NoticeKind::NodeEntered { node, attempt } => {
                    self.cycle.current = Some(node);
                    self.cycle.visits = attempt;
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
                            let role = role_for(&workflow, node, &actor.roles);
                            (Some(actor.name.as_str()), role, outcome.as_deref())
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
                    self.cycle.current = None;
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
        }
    }

    /// Plans the work of a task or role decision whose gate is open.
    fn ready(&mut self, node: NodeIndex, at: DateTime<Utc>) {
        let workflow = Arc::clone(&self.workflow);
        let compiled = workflow.node(node);
        let zone = workflow.zone();
        match (compiled.kind, &compiled.decider) {
            (NodeKind::Task, _) => {
                let range = self.plans[node.get()].duration.unwrap_or(self.model.task);
                let mut minutes = self.sample(range);
                if self.rng.chance(self.model.late) {
                    minutes += self.sample(self.model.late_extra);
                }
                let done_at = self.model.hours.add(at, minutes, zone);
                let exclude: Vec<&str> = compiled
                    .distinct_from
                    .iter()
                    .filter_map(|(other, _)| self.cycle.completed_by.get(other.get()).copied().flatten())
                    .map(|p| self.model.team.people[p].actor.name.as_str())
                    .collect();
                let person = self
                    .model
                    .team
                    .pick(&compiled.roles, &exclude, &mut self.rng)
                    .or_else(|| self.model.team.pick(&compiled.roles, &[], &mut self.rng));
                let outcome = compiled.outcomes.first().map(|l| workflow.label(*l).to_owned());
                if self.rng.chance(self.model.unauthorized)
                    && let Some(outsider) = self.model.team.outsider(&compiled.roles, &mut self.rng)
                {
                    let halfway = at + (done_at - at) / 2;
                    let act =
                        Act::Work { node, person: outsider, outcome: outcome.clone(), authorized: false, tries: 0 };
                    self.plan(halfway, act);
                }
                if let Some(person) = person {
                    self.plan(done_at, Act::Work { node, person, outcome, authorized: true, tries: 0 });
                }
            }
            (NodeKind::Decision, Some(Decider::Role(role))) => {
                let minutes = self.sample(self.plans[node.get()].duration.unwrap_or(self.model.decision));
                let done_at = self.model.hours.add(at, minutes, zone);
                let visit = usize::from(self.cycle.visits.max(1) - 1);
                let branch = self.pick_branch(node, visit);
                let roles = std::slice::from_ref(role);
                if let Some(person) = self.model.team.pick(roles, &[], &mut self.rng) {
                    self.plan(done_at, Act::Work { node, person, outcome: branch, authorized: true, tries: 0 });
                }
            }
            _ => {}
        }
    }

    fn pick_branch(&mut self, node: NodeIndex, visit: usize) -> Option<String> {
        let roll = self.rng.next_f64();
        let branches = &self.plans[node.get()].branches;
        let mut acc = 0.0;
        for (label, chances) in branches {
            acc += at_visit(chances, visit);
            if roll < acc {
                return Some(label.clone());
            }
        }
        branches.last().map(|(l, _)| l.clone())
    }

    fn plan_merges(&mut self, at: DateTime<Utc>) {
        if self.merge_sources.is_empty() || self.merge_targets.is_empty() {
            return;
        }
        let zone = self.workflow.zone();
        let week_end = resolve_local(zone, (self.monday + Duration::days(7)).and_time(NaiveTime::MIN));
        let span = (week_end - at).num_minutes().max(1);
        for n in 0..self.model.merges_per_week {
            let offset = self.rng.range_u32(0, u32::try_from(span - 1).unwrap_or(0));
            let src = self.rng.range_u32(0, last_index(self.merge_sources.len())) as usize;
            let dst = self.rng.range_u32(0, last_index(self.merge_targets.len())) as usize;
            let (prefix, suffix) = &self.merge_sources[src];
            let source = format!("{prefix}{}-{}{suffix}", self.release.as_str().to_ascii_lowercase(), n + 1);
            let target = self.merge_targets[dst].clone();
            let person = self.rng.range_u32(0, last_index(self.model.team.people.len())) as usize;
            self.plan(at + Duration::minutes(i64::from(offset)), Act::Merge { source, target, person });
        }
    }

    fn perform(&mut self, planned: Planned, observer: &mut dyn Observer) {
        let now = self.now;
        match planned.act {
            Act::Work { node, person, outcome, authorized, tries } => {
                if self.cycle.current != Some(node) {
                    return; // The token moved on (a deadline jump, a slip): the work is moot.
                }
                let workflow = Arc::clone(&self.workflow);
                let Some(id) = workflow.node_id(node) else { return };
                let actor = self.model.team.people[person].actor.clone();
                let event = Event::Complete { node: id.clone(), actor, outcome: outcome.clone() };
                self.acting = Some((node, person, outcome.clone()));
                match self.instance.handle_event(event, now) {
                    Ok(()) => {}
                    Err(error) => {
                        self.acting = None;
                        self.cycle.refused += 1;
                        if observer.wants_entries() {
                            let text = error.to_string();
                            let actor = &self.model.team.people[person].actor;
                            observer.entry(&Entry {
                                kind: EntryKind::Refused,
                                node: Some(id),
                                actor: Some(actor.name.as_str()),
                                role: actor.roles.first(),
                                outcome: outcome.as_deref(),
                                detail: Some(&text),
                                ..Entry::empty(&self.release, now)
                            });
                        }
                        if authorized && tries < 3 {
                            self.retry_work(node, person, outcome, tries, &error);
                        }
                    }
                }
            }
            Act::Result { node, outcome, deploy } => {
                if self.cycle.current != Some(node) {
                    return;
                }
                let Some(id) = self.workflow.node_id(node).cloned() else { return };
                let text = match outcome {
                    ActionOutcome::Succeeded => "succeeded",
                    ActionOutcome::Failed => "failed",
                };
                self.acting = None;
                if self.instance.handle_event(Event::ActionResult { node: id.clone(), outcome }, now).is_ok() {
                    if deploy && outcome == ActionOutcome::Succeeded {
                        self.cycle.production_at = Some(now);
                    }
                    observer.entry(&Entry {
                        kind: EntryKind::Result,
                        node: Some(&id),
                        outcome: Some(text),
                        ..Entry::empty(&self.release, now)
                    });
                }
            }
            Act::Merge { source, target, person } => {
                let request = MergeRequest { source, target };
                let permission = self.instance.may(&request, now);
                let actor = self
                    .model
                    .team
                    .people
                    .get(person)
                    .map(|p| p.actor.clone())
                    .unwrap_or_else(|| crate::Actor::new("bot", vec![]));
                let MergeRequest { source, target } = request;
                let detail = if observer.wants_entries() { format!("{source} -> {target}") } else { String::new() };
                let name = actor.name.clone();
                let result = self.instance.handle_event(Event::Merge { source, target, actor }, now);
                if permission.allowed != result.is_ok() {
                    self.disagreements += 1;
                }
                self.cycle.merges += 1;
                if result.is_err() {
                    self.cycle.merges_refused += 1;
                    self.cycle.refused += 1;
                }
                if observer.wants_entries() {
                    let (kind, text) = match result {
                        Ok(()) => (EntryKind::Merged, detail),
                        Err(error) => (EntryKind::Refused, format!("{detail}: {error}")),
                    };
                    observer.entry(&Entry {
                        kind,
                        actor: Some(name.as_str()),
                        detail: Some(&text),
                        ..Entry::empty(&self.release, now)
                    });
                }
            }
        }
    }

    /// An authorized person was refused: try again when the reason allows.
    fn retry_work(&mut self, node: NodeIndex, person: usize, outcome: Option<String>, tries: u8, error: &EngineError) {
        let workflow = Arc::clone(&self.workflow);
        let compiled = workflow.node(node);
        let next = tries + 1;
        match error {
            EngineError::WindowForbids { until, .. } => {
                let at = until.unwrap_or(self.now + Duration::hours(1)).max(self.now + Duration::minutes(1));
                let at = self.model.hours.add(at, 0, workflow.zone());
                self.plan(at, Act::Work { node, person, outcome, authorized: true, tries: next });
            }
            EngineError::GateNotOpen { opens_at, .. } => {
                self.plan(*opens_at, Act::Work { node, person, outcome, authorized: true, tries: next });
            }
            EngineError::SeparationOfDuties { .. } => {
                let name = self.model.team.people[person].actor.name.clone();
                if let Some(other) = self.model.team.pick(&compiled.roles, &[name.as_str()], &mut self.rng) {
                    let at = self.now + Duration::minutes(5);
                    self.plan(at, Act::Work { node, person: other, outcome, authorized: true, tries: next });
                }
            }
            _ => {}
        }
    }

    fn sample(&mut self, range: MinuteRange) -> u32 {
        self.rng.range_u32(range.min, range.max)
    }
}

/// The role an actor used on a node: the first of the node's roles the actor holds.
fn role_for<'a>(workflow: &'a Workflow, node: NodeIndex, roles: &[RoleId]) -> Option<&'a RoleId> {
    let compiled = workflow.node(node);
    match &compiled.decider {
        Some(Decider::Role(role)) => Some(role),
        _ => compiled.roles.iter().find(|r| roles.contains(r)),
    }
}

/// The outcomes of the nodes whose out-edge leads back to the start (`released` for KARS).
fn completion_outcomes(workflow: &Workflow) -> Vec<String> {
    let mut outcomes: Vec<String> = Vec::new();
    for (i, node) in workflow.nodes.iter().enumerate() {
        let index = NodeIndex(i as u16);
        if workflow.out_edges(index).iter().any(|e| e.to == workflow.start)
            && let Some(outcome) = node.outcome
        {
            let text = workflow.label(outcome).to_owned();
            if !outcomes.contains(&text) {
                outcomes.push(text);
            }
        }
    }
    outcomes
}

/// The branch patterns the merge bot draws sources from (prefix, suffix around `*`), and the
/// branches the windows guard.
/// The last index of a list of `len` items, for picking one at random (0 for an empty list;
/// callers check before indexing).
fn last_index(len: usize) -> u32 {
    u32::try_from(len.saturating_sub(1)).unwrap_or(u32::MAX)
}

fn merge_branches(workflow: &Workflow) -> (Vec<(String, String)>, Vec<String>) {
    use crate::workflow::BranchMatcher;
    let sources = workflow
        .branches
        .iter()
        .filter_map(|b| match b {
            BranchMatcher::Pattern { prefix, suffix } => Some((prefix.clone(), suffix.clone())),
            BranchMatcher::Name(_) => None,
        })
        .collect();
    let mut targets: Vec<String> = Vec::new();
    for window in &workflow.windows {
        for slot in window.merges_into.iter() {
            if let Some(BranchMatcher::Name(name)) = workflow.branches.get(usize::from(*slot))
                && !targets.contains(name)
            {
                targets.push(name.clone());
            }
        }
    }
    if targets.is_empty() {
        targets = workflow
            .branches
            .iter()
            .filter_map(|b| match b {
                BranchMatcher::Name(name) => Some(name.clone()),
                BranchMatcher::Pattern { .. } => None,
            })
            .collect();
    }
    (sources, targets)
}
