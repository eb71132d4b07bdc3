//! What the simulated people and systems do: plan work when it becomes ready, act at the
//! planned instant, and try again when the engine says why it refused.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use kars_spec::calendar::resolve_local;
use kars_spec::spec::NodeKind;

use super::forge::ForgePr;
use super::shape::last_index;
use super::{Act, Entry, EntryKind, Observer, Planned, Sim};
use crate::EngineError;
use crate::event::{ActionOutcome, Event, MergeRequest, Reporter};
use crate::sim::model::at_visit;
use crate::workflow::{Decider, NodeIndex};
use kars_spec::spec::MergeRequirements;

impl Sim<'_> {
    /// Plans the work of a task or role decision whose gate is open.
    pub(super) fn ready(&mut self, node: NodeIndex, at: DateTime<Utc>) {
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
                let exclude: Vec<&str> = compiled
                    .distinct_from
                    .iter()
                    .filter_map(|(other, _)| self.cycle.completed_by.get(other.get()).copied().flatten())
                    .map(|p| self.model.team.people[p].actor.name().as_ref())
                    .collect();
                let person = self
                    .model
                    .team
                    .pick(&compiled.roles, &exclude, &mut self.rng)
                    .or_else(|| self.model.team.pick(&compiled.roles, &[], &mut self.rng));
                let outcome = compiled.outcomes.first().and_then(|l| workflow.shared_label(*l));
                if self.rng.chance(self.model.unauthorized)
                    && let Some(outsider) = self.model.team.outsider(&compiled.roles, &mut self.rng)
                {
                    let done_at = self.model.hours.add_around(at, minutes, zone, self.workflow.holidays());
                    let halfway = at + (done_at - at) / 2;
                    let act =
                        Act::Work { node, person: outsider, outcome: outcome.clone(), authorized: false, tries: 0 };
                    self.plan(halfway, act);
                }
                if let Some(person) = person {
                    let done_at = self.work_until(person, node, at, minutes);
                    self.plan(done_at, Act::Work { node, person, outcome, authorized: true, tries: 0 });
                }
            }
            (NodeKind::Decision, Some(Decider::Role(role))) => {
                let minutes = self.sample(self.plans[node.get()].duration.unwrap_or(self.model.decision));
                let attempt = self.cycle.attempts.get(node.get()).copied().unwrap_or(1);
                let visit = usize::from(attempt.max(1) - 1);
                let branch = self.pick_branch(node, visit);
                let roles = std::slice::from_ref(role);
                if let Some(person) = self.model.team.pick(roles, &[], &mut self.rng) {
                    let done_at = self.work_until(person, node, at, minutes);
                    self.plan(done_at, Act::Work { node, person, outcome: branch, authorized: true, tries: 0 });
                }
            }
            _ => {}
        }
    }

    /// When `person`, ready to start on `node` at `at`, is done with `minutes` of work: with
    /// parallel branches a person finishes the task they are on (at a node still waiting)
    /// before starting the next. A workflow without forks never waits for a person.
    fn work_until(&mut self, person: usize, node: NodeIndex, at: DateTime<Utc>, minutes: u32) -> DateTime<Utc> {
        let (zone, holidays) = (self.workflow.zone(), self.workflow.holidays());
        if self.workflow.blocks.forks.is_empty() {
            return self.model.hours.add_around(at, minutes, zone, holidays);
        }
        let start = match self.busy.get(person).copied().flatten() {
            Some((other, until)) if other != node && until > at && self.instance.is_at(other) => until,
            _ => at,
        };
        let done_at = self.model.hours.add_around(start, minutes, zone, holidays);
        if let Some(slot) = self.busy.get_mut(person) {
            *slot = Some((node, done_at));
        }
        done_at
    }

    fn pick_branch(&mut self, node: NodeIndex, visit: usize) -> Option<Arc<str>> {
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

    pub(super) fn plan_merges(&mut self, at: DateTime<Utc>) {
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
            self.plan(at + Duration::minutes(i64::from(offset)), Act::Merge { source, target, person, pr: None });
        }
    }

    pub(super) fn perform(&mut self, planned: Planned, observer: &mut dyn Observer) {
        let now = self.now;
        match planned.act {
            Act::Work { node, person, outcome, authorized, tries } => {
                if !self.instance.is_at(node) {
                    return; // The token moved on (a deadline jump, a slip, a cancelled branch): moot.
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
                                actor: Some(&**actor.name()),
                                role: actor.roles().first(),
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
            Act::Result { node, outcome, deploy, unmet } => {
                if !self.instance.is_at(node) {
                    return;
                }
                let Some(id) = self.workflow.node_id(node).cloned() else { return };
                if !unmet.is_empty() {
                    self.cycle.merges_unmet = self.cycle.merges_unmet.saturating_add(1);
                    if observer.wants_entries() {
                        let text = format!("the pull request lacks {}", crate::requirements::describe(&unmet));
                        observer.entry(&Entry {
                            kind: EntryKind::Refused,
                            node: Some(&id),
                            detail: Some(&text),
                            ..Entry::empty(&self.release, now)
                        });
                    }
                }
                let text = match outcome {
                    ActionOutcome::Succeeded => "succeeded",
                    ActionOutcome::Failed => "failed",
                };
                self.acting = None;
                // The simulated host's adapter reports what came of the effect it performed.
                let Some(key) = self.instance.result_key_at(node) else { return };
                let event = Event::ActionResult { node: id.clone(), outcome, reporter: Reporter::Effect { key } };
                if self.instance.handle_event(event, now).is_ok() {
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
            Act::Merge { source, target, person, pr } => {
                let request = MergeRequest { source, target };
                if let Some(requires) = self.instance.merge_requirements(&request.source, &request.target)
                    && self.forge_holds(request.clone(), person, pr, &requires, observer)
                {
                    return;
                }
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
                let name = actor.name().clone();
                let result = self.instance.handle_event(Event::Merge { source, target, actor }, now);
                if permission.allowed != result.is_ok() {
                    self.disagreements += 1;
                    self.cycle.disagreements = self.cycle.disagreements.saturating_add(1);
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
                        actor: Some(&*name),
                        detail: Some(&text),
                        ..Entry::empty(&self.release, now)
                    });
                }
            }
        }
    }

    /// The merge bot's merge of a pull request whose merge `requires:` reviews or checks:
    /// `true` when the forge holds it (it waits for the next review or check, or is refused
    /// for good), `false` when the engine's `may_with` lets it through to the windows.
    fn forge_holds(
        &mut self,
        request: MergeRequest,
        person: usize,
        pr: Option<Box<ForgePr>>,
        requires: &MergeRequirements,
        observer: &mut dyn Observer,
    ) -> bool {
        let now = self.now;
        let mut pr = pr.unwrap_or_else(|| Box::new(self.open_pull_request(requires, now)));
        let permission = self.instance.may_with(&request, &pr.evidence_at(now), now);
        if permission.unmet.is_empty() {
            return false;
        }
        let detail = |what: &str| {
            format!(
                "{} -> {}: {what} {}",
                request.source,
                request.target,
                crate::requirements::describe(&permission.unmet)
            )
        };
        if let Some(next) = pr.next_after(now) {
            // Auto-merge: the bot tries again when the forge's answer changes.
            if !pr.delayed {
                pr.delayed = true;
                self.cycle.merges_delayed = self.cycle.merges_delayed.saturating_add(1);
                if observer.wants_entries() {
                    let text = detail("waits for");
                    let entry =
                        Entry { kind: EntryKind::Delayed, detail: Some(&text), ..Entry::empty(&self.release, now) };
                    observer.entry(&entry);
                }
            }
            let MergeRequest { source, target } = request;
            self.plan(next, Act::Merge { source, target, person, pr: Some(pr) });
            return true;
        }
        self.cycle.merges += 1;
        self.cycle.merges_unmet = self.cycle.merges_unmet.saturating_add(1);
        self.cycle.refused += 1;
        if observer.wants_entries() {
            let name = self.model.team.people.get(person).map(|p| p.actor.name().clone());
            let text = detail("the pull request lacks");
            observer.entry(&Entry {
                kind: EntryKind::Refused,
                actor: name.as_deref(),
                detail: Some(&text),
                ..Entry::empty(&self.release, now)
            });
        }
        true
    }

    /// The merge action `node` from `from` into `to`, whose spec `requires:` reviews or checks,
    /// emitted now; its adapter is first called at `at`. The pull request opened with this
    /// cycle's `open_pull_request` of the same branches (or when the cycle started); the
    /// adapter waits while named checks run, and is refused for anything else missing.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forge_merge(
        &mut self,
        node: NodeIndex,
        from: &str,
        to: &str,
        requires: &MergeRequirements,
        at: DateTime<Utc>,
        outcome: ActionOutcome,
        observer: &mut dyn Observer,
    ) {
        let opened = self
            .cycle
            .opened
            .iter()
            .rev()
            .find(|(f, t, _)| f == from && t == to)
            .map(|(_, _, at)| *at)
            .or(self.cycle.started_at)
            .unwrap_or(self.now);
        let pr = self.open_pull_request(requires, opened);
        let (done, unmet, delayed) = self.adapter_merge(requires, &pr, at);
        if delayed {
            self.cycle.merges_delayed = self.cycle.merges_delayed.saturating_add(1);
            if observer.wants_entries() {
                let waiting = crate::requirements::unmet(requires, &pr.evidence_at(at));
                let text = format!("{from} -> {to}: waits for {}", crate::requirements::describe(&waiting));
                let id = self.workflow.node_id(node);
                let entry = Entry {
                    kind: EntryKind::Delayed,
                    node: id,
                    detail: Some(&text),
                    ..Entry::empty(&self.release, self.now)
                };
                observer.entry(&entry);
            }
        }
        let outcome = if unmet.is_empty() { outcome } else { ActionOutcome::Failed };
        self.plan(done, Act::Result { node, outcome, deploy: false, unmet });
    }

    /// An authorized person was refused: try again when the reason allows.
    fn retry_work(
        &mut self,
        node: NodeIndex,
        person: usize,
        outcome: Option<Arc<str>>,
        tries: u8,
        error: &EngineError,
    ) {
        let workflow = Arc::clone(&self.workflow);
        let compiled = workflow.node(node);
        let next = tries + 1;
        match error {
            EngineError::WindowForbids { until, .. } => {
                let at = until.unwrap_or(self.now + Duration::hours(1)).max(self.now + Duration::minutes(1));
                let at = self.model.hours.add_around(at, 0, workflow.zone(), workflow.holidays());
                self.plan(at, Act::Work { node, person, outcome, authorized: true, tries: next });
            }
            EngineError::GateNotOpen { opens_at, .. } => {
                self.plan(*opens_at, Act::Work { node, person, outcome, authorized: true, tries: next });
            }
            EngineError::SeparationOfDuties { .. } => {
                let name = self.model.team.people[person].actor.name().clone();
                if let Some(other) = self.model.team.pick(&compiled.roles, &[&*name], &mut self.rng) {
                    let at = self.now + Duration::minutes(5);
                    self.plan(at, Act::Work { node, person: other, outcome, authorized: true, tries: next });
                }
            }
            _ => {}
        }
    }
}
