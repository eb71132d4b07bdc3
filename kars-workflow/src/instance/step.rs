//! The transitions: arriving at a node, leaving it, ending and starting cycles, and the timers
//! (gates, deadlines, calendar window edges, the next cycle).
//!
//! Each transition returns what comes next ([`Next`]) instead of recursing, so a chain of
//! automatic nodes is a loop with a budget: a spec whose automatic nodes loop without ever
//! waiting stalls the token instead of spinning.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use kars_spec::dates::OnHoliday;
use kars_spec::spec::NodeKind;

use super::Instance;
use super::branch::Scope;
use super::state::{NO_OUTCOME, Phase, Stamp, Token};
use crate::effect::{Effect, EffectKey, EffectKind, NoticeKind, ReleaseId};
use crate::gate::{format_local, resolve_local_memo};
use crate::history::{CancelReason, Resolved};
use crate::template::{Template, Vars};
use crate::workflow::{CompiledAction, CompiledEscalation, Decider, Jump, LabelIndex, NodeIndex, Workflow};

/// What happens after a transition.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Next {
    /// Enter a node.
    Enter(NodeIndex),
    /// End the cycle with an outcome.
    End(LabelIndex),
    /// Nothing more until an input (for the token that moves; other branches may still run).
    Wait,
    /// A `parallel` node completed: start its branches.
    Fork(NodeIndex),
    /// Enter a join that passes on (not counted as a branch's arrival).
    Pass(NodeIndex),
}

/// The last part of an effect key: the entry count, or what escalated.
#[derive(Debug, Clone, Copy)]
enum KeySuffix<'a> {
    Entry(u16),
    Word(&'a str),
}

/// The most timers one input runs; the rest run on the next input (`poll_timeout` stays due).
const TIMER_BUDGET: usize = 10_000;

impl Instance {
    /// The earliest pending timer, if any (inlined, as [`Instance::next_token_wake`] is).
    #[inline(always)]
    pub(crate) fn next_wake(&self) -> Option<DateTime<Utc>> {
        sooner(self.state.calendar_next, self.next_token_wake())
    }

    /// The earliest pending timer other than a calendar window edge. Inlined, so that the
    /// instant stays in registers: returned through memory, it was written in 4-byte parts
    /// and read back in 8-byte ones, which the processor cannot forward from its stores.
    #[inline(always)]
    fn next_token_wake(&self) -> Option<DateTime<Utc>> {
        // One token (the common case) is matched directly; branches are walked only when they run.
        let token = match self.state.token {
            Token::Between { next_start } => return Some(next_start),
            Token::At { phase: Phase::Gated { opens_at }, .. } => Some(opens_at),
            Token::At { .. } => None,
            Token::Branches => self.branch_gate_wake(),
        };
        debug_assert_eq!(
            self.deadline_wake,
            earliest_deadline(&self.workflow, &self.state),
            "the kept deadline follows the deadlines"
        );
        sooner(token, self.deadline_wake)
    }

    /// The earliest gate a running branch waits for.
    #[cold]
    #[inline(never)]
    fn branch_gate_wake(&self) -> Option<DateTime<Utc>> {
        let gated = self.state.branches.iter().flat_map(|b| b.live.iter());
        gated.filter_map(|live| if let Phase::Gated { opens_at } = live.phase { Some(opens_at) } else { None }).min()
    }

    /// Keeps [`Instance::deadline_wake`]: after deadlines are armed or fire, nodes with a
    /// deadline complete, or the state or spec is replaced.
    pub(crate) fn refresh_deadline_wake(&mut self) {
        self.deadline_wake = earliest_deadline(&self.workflow, &self.state);
    }

    /// The first token (by node) whose gate opens at `due`.
    fn gate_due(&self, due: DateTime<Utc>) -> Option<NodeIndex> {
        self.state.tokens().find(|(_, phase)| *phase == Phase::Gated { opens_at: due }).map(|(node, _)| node)
    }

    /// Runs every timer due by `now`, earliest first; at equal instants calendar edges, then
    /// the next cycle, then the gate, then deadlines in spec order. Window edges passed in one
    /// go (the host slept past several) are reported by their net change only.
    #[inline]
    pub(crate) fn catch_up(&mut self, now: DateTime<Utc>) {
        let first = self.next_wake();
        // Most inputs find no timer due: answered here, without the call.
        if first.is_some_and(|at| at <= now) {
            self.catch_up_from(now, first);
        }
    }

    /// [`Instance::catch_up`] when the caller already knows the next timer (`first`).
    pub(crate) fn catch_up_from(&mut self, now: DateTime<Utc>, first: Option<DateTime<Utc>>) {
        debug_assert_eq!(first, self.next_wake(), "the first timer is the next one");
        if first.is_none_or(|at| at > now) {
            return;
        }
        let mut known = first;
        for _ in 0..TIMER_BUDGET {
            let Some(due) = known.take().or_else(|| self.next_wake()).filter(|at| *at <= now) else {
                return;
            };
            // A timer already past when it was armed (a deadline before the instance started)
            // fires at the latest instant seen, never before it.
            let at = due.max(self.state.clock);
            self.state.clock = at;
            if self.state.calendar_next == Some(due) {
                // Window edges only change which windows are open: skip straight to the next
                // instant that matters (another timer, or `now`), so a long sleep costs one step.
                let until = self.next_token_wake().filter(|t| *t <= now).unwrap_or(now).max(at);
                self.refresh_calendar(until);
                continue;
            }
            if let Token::Between { next_start } = self.state.token
                && next_start == due
            {
                let next = self.start_cycle(at);
                // Under the spec now in force: the cycle may have started under an upgraded one.
                self.with_spec(|this, workflow| this.run(workflow, next, at));
                continue;
            }
            // Gates due at one instant open by node order, one branch at a time.
            if let Some(node) = self.gate_due(due) {
                self.focus(node);
                self.state.token = Token::At { node, phase: Phase::Ready };
                self.notice(at, NoticeKind::GateOpened { node });
                self.with_spec(|this, workflow| {
                    let next = this.activate(workflow, node, at);
                    this.run(workflow, next, at);
                });
                continue;
            }
            let slot = self
                .workflow
                .deadlines
                .iter()
                .zip(self.state.deadlines().iter())
                .position(|(c, d)| !d.set && d.at == due && !self.state.done(c.node));
            match slot {
                Some(slot) => self.fire_deadline(slot, at),
                // Unreachable: `next_wake` only returns instants of the timers above.
                None => return,
            }
        }
    }

    /// Follows automatic transitions until the token waits; with parallel branches, until
    /// every branch the transitions reach waits.
    pub(crate) fn run(&mut self, workflow: &Workflow, mut next: Next, at: DateTime<Utc>) {
        let mut budget = 4 * workflow.nodes.len() + 16;
        // The node this run entered last: what ended the cycle, for cancelled branches.
        let mut entered: Option<NodeIndex> = None;
        // One token under the caller's workflow, the common case: without the bookkeeping
        // that forks and upgrades need, which `run_general` takes over at the first of them.
        while self.state.branches.is_none() {
            next = match next {
                Next::Wait => return,
                Next::Enter(node) | Next::Pass(node) => {
                    if budget == 0 {
                        self.stall(node, at);
                        return;
                    }
                    budget -= 1;
                    entered = Some(node);
                    self.arrive(workflow, node, at)
                }
                Next::End(outcome) => {
                    let next = self.end_cycle(outcome, at);
                    if !std::ptr::eq(workflow, &*self.workflow) {
                        let upgraded = Some(std::sync::Arc::clone(&self.workflow));
                        return self.run_general(workflow, next, at, Run { budget, upgraded, entered });
                    }
                    next
                }
                Next::Fork(_) => break,
            };
        }
        self.run_general(workflow, next, at, Run { budget, upgraded: None, entered });
    }

    /// [`Instance::run`] from where its single-token loop stopped: a fork, running branches or
    /// a cycle started under an upgraded spec.
    #[cold]
    #[inline(never)]
    fn run_general(&mut self, workflow: &Workflow, mut next: Next, at: DateTime<Utc>, run: Run) {
        let Run { mut budget, mut upgraded, mut entered } = run;
        // Branches a fork started that have not run yet (allocated only by a fork).
        let mut pending: Vec<NodeIndex> = Vec::new();
        loop {
            next = match next {
                Next::Wait if self.state.branches.is_none() => return,
                Next::Wait => match self.park(&mut pending) {
                    Some(first) => Next::Enter(first),
                    None => return,
                },
                Next::End(outcome) => {
                    if self.state.branches.is_some() {
                        let by = entered.or(self.state.current()).unwrap_or(workflow.start);
                        let current = upgraded.as_deref().unwrap_or(workflow);
                        self.cancel(current, Scope::All, CancelReason::End { by }, &mut pending, at);
                        self.state.branches = None;
                    }
                    let next = self.end_cycle(outcome, at);
                    if !std::ptr::eq(upgraded.as_deref().unwrap_or(workflow), &*self.workflow) {
                        upgraded = Some(std::sync::Arc::clone(&self.workflow));
                    }
                    next
                }
                Next::Fork(node) => self.fork(upgraded.as_deref().unwrap_or(workflow), node, &mut pending, at),
                Next::Enter(node) | Next::Pass(node) => {
                    if budget == 0 {
                        self.stall(node, at);
                        if self.state.branches.is_some() {
                            self.stall_pending(&mut pending, at);
                        }
                        return;
                    }
                    budget -= 1;
                    let current = upgraded.as_deref().unwrap_or(workflow);
                    entered = Some(node);
                    // Only while branches run is a join an arrival to count (one token: no lookup).
                    let joins = self.state.branches.is_some()
                        && matches!(next, Next::Enter(_))
                        && current.node(node).kind == NodeKind::Join;
                    if joins { self.join(current, node, &mut pending, at) } else { self.arrive(current, node, at) }
                }
            };
        }
    }

    fn stall(&mut self, node: NodeIndex, at: DateTime<Utc>) {
        self.state.token = Token::At { node, phase: Phase::Stalled };
        self.notice(at, NoticeKind::Stalled { node });
    }

    fn arrive(&mut self, workflow: &Workflow, node: NodeIndex, at: DateTime<Utc>) -> Next {
        let compiled = workflow.node(node);
        if let Some(retry) = compiled.retry.and_then(|r| workflow.retries.get(usize::from(r)).map(|c| (r, c))) {
            let (slot, retry) = retry;
            if u32::from(self.state.visits(node)) >= retry.max_attempts {
                let bit = 1u64 << (slot % 64);
                if self.state.exhausted & bit == 0 {
                    self.state.exhausted |= bit;
                    self.notice(at, NoticeKind::RetryExhausted { node });
                    self.escalate(node, &retry.escalation, "exhausted", at);
                }
                return match retry.escalation.then {
                    Jump::Goto(to) => Next::Enter(to),
                    Jump::End(outcome) => Next::End(outcome),
                    // "Carry on" would re-enter the loop: the cycle ends instead.
                    Jump::Stay => Next::End(workflow.exhausted),
                };
            }
            self.state.retry_rounds = self.state.retry_rounds.saturating_add(1);
        }
        let attempt = self.state.enter(node);
        self.notice(at, NoticeKind::NodeEntered { node, attempt });
        self.state.token = Token::At { node, phase: Phase::Ready };
        if let Some(gate) = compiled.gate {
            if compiled.on_holiday == OnHoliday::SkipCycle && on_holiday(gate, self.state.monday, &workflow.holidays) {
                self.notice(at, NoticeKind::HolidaySkip { node });
                return Next::End(workflow.skipped);
            }
            let opens_at = self.resolve_gate(node, gate);
            self.notice(at, NoticeKind::GateArmed { node, opens_at });
            if at < opens_at {
                self.state.token = Token::At { node, phase: Phase::Gated { opens_at } };
                return Next::Wait;
            }
            self.notice(at, NoticeKind::GateOpened { node });
        }
        self.activate(workflow, node, at)
    }

    /// The node's gate (if any) is open: do its work or wait for it.
    fn activate(&mut self, workflow: &Workflow, node: NodeIndex, at: DateTime<Utc>) -> Next {
        let compiled = workflow.node(node);
        match compiled.kind {
            NodeKind::Start | NodeKind::Wait | NodeKind::Join => self.leave(workflow, node, None, at),
            NodeKind::Parallel => {
                self.complete(workflow, node, at);
                Next::Fork(node)
            }
            NodeKind::Task => Next::Wait,
            NodeKind::End => {
                if compiled.action.is_some() {
                    self.emit_action(workflow, node);
                }
                self.complete(workflow, node, at);
                Next::End(compiled.outcome.unwrap_or(workflow.completed))
            }
            NodeKind::Action => {
                let waits = compiled.action.as_ref().is_some_and(CompiledAction::waits);
                self.emit_action(workflow, node);
                if waits { Next::Wait } else { self.leave(workflow, node, None, at) }
            }
            NodeKind::Decision => match &compiled.decider {
                Some(Decider::OutcomeOf { slot, map, .. }) => {
                    let recorded = self.state.outcomes().get(usize::from(*slot)).copied().unwrap_or(NO_OUTCOME);
                    let branch = map.iter().find(|(from, _)| from.0 == recorded).map(|(_, to)| *to);
                    match branch {
                        Some(label) => self.leave(workflow, node, Some(label), at),
                        None => {
                            self.stall(node, at);
                            Next::Wait
                        }
                    }
                }
                _ => Next::Wait,
            },
        }
    }

    /// Completes `node` and takes its out-edge (the one labelled `label` for decisions).
    pub(crate) fn leave(
        &mut self,
        workflow: &Workflow,
        node: NodeIndex,
        label: Option<LabelIndex>,
        at: DateTime<Utc>,
    ) -> Next {
        self.complete(workflow, node, at);
        let edges = workflow.out_edges(node);
        let edge = match label {
            Some(label) => edges.iter().find(|e| e.label == Some(label)),
            None => edges.first(),
        };
        match edge {
            Some(edge) if edge.to == workflow.start => {
                Next::End(workflow.node(node).outcome.unwrap_or(workflow.completed))
            }
            Some(edge) => Next::Enter(edge.to),
            None => {
                self.stall(node, at);
                Next::Wait
            }
        }
    }

    #[inline(always)]
    fn complete(&mut self, workflow: &Workflow, node: NodeIndex, at: DateTime<Utc>) {
        self.state.mark_done(node);
        if workflow.node(node).deadline.is_some() {
            self.refresh_deadline_wake();
        }
        self.notice(at, NoticeKind::NodeCompleted { node });
        if let Some(slot) = workflow.node(node).watch_slot {
            self.watched_completed(slot, at);
        }
    }

    /// A node a window watches completed at `at`: the window may open or close.
    #[cold]
    #[inline(never)]
    fn watched_completed(&mut self, slot: u16, at: DateTime<Utc>) {
        if let Some(w) = self.state.watched_mut().get_mut(usize::from(slot)) {
            *w = Stamp::watched(Some(at));
        }
        self.refresh_windows(at);
    }

    fn end_cycle(&mut self, outcome: LabelIndex, at: DateTime<Utc>) -> Next {
        // One summary a week: grow by exactly one rather than doubling.
        self.state.finished.reserve_exact(1);
        self.state.finished.push(super::state::CycleSummary {
            monday: self.state.monday,
            outcome,
            deadline_misses: self.state.misses,
            retry_rounds: self.state.retry_rounds,
            started_at: self.state.cycle_started,
            ended_at: at,
        });
        self.notice(at, NoticeKind::CycleEnded { outcome });
        // Node-bound windows close with the cycle.
        self.state.watched_mut().iter_mut().for_each(|w| *w = Stamp::NONE);
        self.refresh_windows(at);
        let (zone, cadence, monday) = (self.workflow.zone, self.workflow.cadence, self.state.monday);
        let monday_start = self.resolve_next_cycle(|| {
            let target = next_cycle_monday(cadence, monday, at.with_timezone(&zone).date_naive());
            resolve_local_memo(zone, target.and_time(chrono::NaiveTime::MIN))
        });
        let next_start = at.max(monday_start);
        self.state.token = Token::Between { next_start };
        if at >= next_start { self.start_cycle(at) } else { Next::Wait }
    }

    /// When an instance started at `now` starts its first cycle: `None` for at once (always
    /// for a weekly cadence), else the next cadence boundary (recorded), when `now` lies past
    /// the first week of its cycle and the gates of that week have passed.
    pub(crate) fn first_start(&mut self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (zone, cadence) = (self.workflow.zone, self.workflow.cadence);
        if cadence.every.0 <= 1 {
            return None;
        }
        let at = self.resolve_next_cycle(|| {
            let date = now.with_timezone(&zone).date_naive();
            let latest = cadence.cycle_monday(date);
            if date < latest.checked_add_signed(Duration::days(7)).unwrap_or(latest) {
                now
            } else {
                resolve_local_memo(zone, cadence.next_monday(latest).and_time(chrono::NaiveTime::MIN))
            }
        });
        (at > now).then_some(at)
    }

    pub(crate) fn start_cycle(&mut self, at: DateTime<Utc>) -> Next {
        self.take_upcoming(at);
        let zone = self.workflow.zone;
        let cadence = self.workflow.cadence;
        let monday = self.resolve_cycle(|| cadence.cycle_monday(at.with_timezone(&zone).date_naive()));
        let state = &mut self.state;
        state.cycle = state.cycle.saturating_add(1);
        state.monday = monday;
        self.release = ReleaseId::of(monday);
        self.key_prefix = EffectKey::prefix(self.history.header.instance.as_str(), self.release.as_str());
        state.cycle_started = at;
        state.nodes_mut().iter_mut().for_each(|v| *v = 0);
        state.exhausted = 0;
        state.outcomes_mut().iter_mut().for_each(|o| *o = NO_OUTCOME);
        state.actors.iter_mut().for_each(|a| *a = None);
        state.watched_mut().iter_mut().for_each(|w| *w = Stamp::NONE);
        state.misses = 0;
        state.retry_rounds = 0;
        self.with_spec(|this, workflow| this.arm_deadlines(workflow, monday, at))
    }

    /// Arms the deadlines of the cycle that starts at `at` (its Monday `monday`) and reports
    /// the start; where the cycle begins.
    fn arm_deadlines(&mut self, workflow: &Workflow, monday: NaiveDate, at: DateTime<Utc>) -> Next {
        let zone = workflow.zone;
        // The instance's first cycle may start after some of its deadlines: those are missed
        // before the start, recorded once, and do not escalate.
        let first = self.state.cycle == 1;
        let started = at;
        let mut missed_before_start = 0u64;
        for (slot, deadline) in workflow.deadlines.iter().enumerate() {
            let at = self.resolve_deadline(deadline.node, || crate::gate::resolve(deadline.by, monday, zone));
            let passed = first && at < started;
            if let Some(d) = self.state.deadlines_mut().get_mut(slot) {
                *d = Stamp { at, set: passed };
            }
            if passed {
                missed_before_start |= 1 << slot.min(63);
                self.state.misses = self.state.misses.saturating_add(1);
            }
        }
        self.refresh_deadline_wake();
        self.notice(at, NoticeKind::CycleStarted { monday });
        if missed_before_start != 0 {
            for (slot, deadline) in workflow.deadlines.iter().enumerate().take(64) {
                if missed_before_start & (1 << slot) != 0 {
                    self.notice(at, NoticeKind::DeadlineMissedBeforeStart { node: deadline.node });
                }
            }
        }
        Next::Enter(workflow.start)
    }

    fn fire_deadline(&mut self, slot: usize, at: DateTime<Utc>) {
        self.with_spec(|this, workflow| this.fire_deadline_of(workflow, slot, at));
    }

    fn fire_deadline_of(&mut self, workflow: &Workflow, slot: usize, at: DateTime<Utc>) {
        let (Some(deadline), Some(state)) = (workflow.deadlines.get(slot), self.state.deadlines_mut().get_mut(slot))
        else {
            return;
        };
        state.set = true;
        self.refresh_deadline_wake();
        self.state.misses = self.state.misses.saturating_add(1);
        self.notice(at, NoticeKind::DeadlineMissed { node: deadline.node });
        self.escalate(deadline.node, &deadline.escalation, "deadline", at);
        let next = match deadline.escalation.then {
            Jump::Stay => Next::Wait,
            Jump::Goto(to) => Next::Enter(to),
            Jump::End(outcome) => Next::End(outcome),
        };
        if self.state.branches.is_some() && !matches!(next, Next::Wait) {
            // With branches, the jump moves the tokens of the deadline's own region (compile
            // keeps `goto` targets there); when none runs in it, only the notification goes.
            let by = deadline.node;
            let scope = match next {
                Next::End(_) => Scope::All,
                _ => Scope::Region(workflow.blocks.region(by)),
            };
            if let Scope::Region(region) = scope
                && !self.state.tokens().any(|(n, _)| workflow.blocks.within(workflow.blocks.region(n), region))
            {
                return;
            }
            self.cancel(workflow, scope, CancelReason::Escalation { by }, &mut Vec::new(), at);
            self.collapse(&[]);
        }
        self.run(workflow, next, at);
    }

    /// Recomputes the calendar window edges at `at` (recorded) and the open windows.
    pub(crate) fn refresh_calendar(&mut self, at: DateTime<Utc>) {
        if self.workflow.calendar_edges.is_empty() {
            return;
        }
        let zone = self.workflow.zone;
        // The last occurrences go straight into the state.
        let next = self.with_spec(|this, workflow| {
            this.resolve_calendar(|| crate::gate::edges_around(&workflow.calendar_edges, at, zone))
        });
        // A recorded `next` that is not later than `at` would stop time; move it on.
        self.state.calendar_next = match at.checked_add_signed(Duration::seconds(1)) {
            Some(after) => next.map(|n| n.max(after)),
            None => None,
        };
        self.refresh_windows(at);
    }

    /// Recomputes which windows are open and reports the changes.
    pub(crate) fn refresh_windows(&mut self, at: DateTime<Utc>) {
        let open = crate::policy::open_mask(&self.workflow, self.state.calendar(), self.state.watched());
        let changed = open ^ self.state.open_windows;
        self.state.open_windows = open;
        if changed == 0 {
            return;
        }
        for i in 0..self.workflow.windows.len().min(64) {
            if changed & (1 << i) != 0 {
                let window = crate::workflow::WindowIndex(i as u8);
                let kind = if open & (1 << i) != 0 {
                    NoticeKind::WindowOpened { window }
                } else {
                    NoticeKind::WindowClosed { window }
                };
                self.notice(at, kind);
            }
        }
    }

    /// The key of the effect that node `node`'s current visit performs (its action).
    pub(crate) fn action_key(&self, node: NodeIndex) -> EffectKey {
        self.effect_key(node, KeySuffix::Entry(self.state.visits(node)))
    }

    /// `{instance}/{release}/{node}/{suffix}` of the running cycle, built without the
    /// formatting machinery after the prefix the instance keeps (and, for a key that fits
    /// inline, without an allocation).
    fn effect_key(&self, node: NodeIndex, suffix: KeySuffix<'_>) -> EffectKey {
        debug_assert_eq!(
            self.key_prefix,
            EffectKey::prefix(self.history.header.instance.as_str(), self.release.as_str()),
            "the key prefix follows the release"
        );
        let id = &self.workflow.node(node).id;
        match (suffix, id.packed()) {
            (KeySuffix::Entry(n), Some(packed)) => EffectKey::of_visit_packed(&self.key_prefix, packed, n),
            (KeySuffix::Entry(n), None) => EffectKey::of_visit_after(&self.key_prefix, id.as_str(), n),
            (KeySuffix::Word(word), _) => EffectKey::after(&self.key_prefix, &[id.as_str(), "/", word]),
        }
    }

    /// Whether `key` is the key of the effect node `node`'s current visit performs: what
    /// [`Instance::action_key`] builds, compared piece by piece without building it (half
    /// the instructions of reading the key back with [`EffectKey::visit_of`], which the
    /// history needs because it does not know the visit).
    pub(crate) fn is_action_key(&self, key: &EffectKey, node: NodeIndex) -> bool {
        let mut digits = [0u8; 5];
        let parts = [
            self.key_prefix.as_str(),
            self.workflow.node(node).id.as_str(),
            "/",
            crate::effect::decimal(self.state.visits(node), &mut digits),
        ];
        let mut rest = key.as_str().as_bytes();
        for part in parts {
            match rest.strip_prefix(part.as_bytes()) {
                Some(after) => rest = after,
                None => return false,
            }
        }
        rest.is_empty()
    }

    /// `template` filled in for `node` in the running cycle: shared with the instances of the
    /// same release that expanded it on this thread (see [`Template::shared`]).
    fn expand(&self, release: &ReleaseId, node: NodeIndex, template: &Template) -> std::sync::Arc<str> {
        let compiled = self.workflow.node(node);
        // Formatting a local time is the costly part: only for templates that use it.
        let deadline = compiled
            .deadline
            .filter(|_| template.uses_deadline())
            .and_then(|slot| self.state.deadlines().get(usize::from(slot)))
            .map(|d| d.at);
        let vars = || Vars {
            release: release.as_str(),
            workflow: &self.workflow.name,
            node: compiled.id.as_str(),
            label: &compiled.label,
            deadline: None,
        };
        template.shared(node, release, deadline, vars, |at| format_local(at, self.workflow.zone))
    }

    /// Queues the effect of `node`'s action; `workflow` is the one in force (passed in so that
    /// the hot path does not touch the shared count of `self.workflow`).
    fn emit_action(&mut self, workflow: &Workflow, node: NodeIndex) {
        debug_assert!(std::ptr::eq(workflow, &*self.workflow), "the workflow in force");
        let compiled = workflow.node(node);
        let Some(action) = &compiled.action else {
            return;
        };
        let release = self.release.clone();
        let kind = match action {
            CompiledAction::Notify { to, message } => {
                if to.is_empty() {
                    return;
                }
                EffectKind::Notify { to: to.clone(), message: self.expand(&release, node, message) }
            }
            CompiledAction::OpenPullRequest { from, to } => {
                EffectKind::OpenPullRequest { from: from.clone(), to: to.clone() }
            }
            CompiledAction::MergePullRequest { from, to, requires } => {
                EffectKind::MergePullRequest { from: from.clone(), to: to.clone(), requires: requires.clone() }
            }
            CompiledAction::Deploy { environment, url } => {
                EffectKind::Deploy { environment: environment.clone(), url: url.clone() }
            }
            CompiledAction::Rollback { environment, url } => {
                EffectKind::Rollback { environment: environment.clone(), url: url.clone() }
            }
            CompiledAction::RunChecks { suite, environment } => {
                EffectKind::RunChecks { suite: suite.clone(), environment: environment.clone() }
            }
        };
        let key = self.effect_key(node, KeySuffix::Entry(self.state.visits(node)));
        self.effects.push_back(Effect { key, release, node: compiled.id.clone(), kind });
    }

    fn escalate(&mut self, node: NodeIndex, escalation: &CompiledEscalation, suffix: &str, _at: DateTime<Utc>) {
        if escalation.notify.is_empty() {
            return;
        }
        let release = self.release.clone();
        let message = self.expand(&release, node, &escalation.message);
        let key = self.effect_key(node, KeySuffix::Word(suffix));
        let kind = EffectKind::Notify { to: escalation.notify.clone(), message };
        self.effects.push_back(Effect { key, release, node: self.workflow.node(node).id.clone(), kind });
    }

    fn resolve_gate(&mut self, node: NodeIndex, gate: kars_spec::calendar::WeekTime) -> DateTime<Utc> {
        let (monday, zone) = (self.state.monday, self.workflow.zone);
        let recorded = self.recorded(|r| matches!(r, Resolved::Gate { node: n, .. } if *n == node));
        let at = match recorded {
            Some(Resolved::Gate { at, .. }) => at,
            _ => {
                let mut local = gate.local_in_cycle(monday);
                if self.workflow.node(node).on_holiday == OnHoliday::NextWorkingDay {
                    local = next_working(local, &self.workflow.holidays);
                }
                resolve_local_memo(zone, local)
            }
        };
        self.history.resolve(Resolved::Gate { node, at });
        at
    }

    fn resolve_deadline(&mut self, node: NodeIndex, compute: impl FnOnce() -> DateTime<Utc>) -> DateTime<Utc> {
        let recorded = self.recorded(|r| matches!(r, Resolved::Deadline { node: n, .. } if *n == node));
        let at = match recorded {
            Some(Resolved::Deadline { at, .. }) => at,
            _ => compute(),
        };
        self.history.resolve(Resolved::Deadline { node, at });
        at
    }

    fn resolve_next_cycle(&mut self, compute: impl FnOnce() -> DateTime<Utc>) -> DateTime<Utc> {
        let at = match self.recorded(|r| matches!(r, Resolved::NextCycle { .. })) {
            Some(Resolved::NextCycle { at }) => at,
            _ => compute(),
        };
        self.history.resolve(Resolved::NextCycle { at });
        at
    }

    fn resolve_cycle(&mut self, compute: impl FnOnce() -> chrono::NaiveDate) -> chrono::NaiveDate {
        let monday = match self.recorded(|r| matches!(r, Resolved::Cycle { .. })) {
            Some(Resolved::Cycle { monday }) => monday,
            _ => compute(),
        };
        self.history.resolve(Resolved::Cycle { monday });
        monday
    }

    fn resolve_calendar(
        &mut self,
        compute: impl FnOnce() -> (std::sync::Arc<[DateTime<Utc>]>, Option<DateTime<Utc>>),
    ) -> Option<DateTime<Utc>> {
        let edges = self.workflow.calendar_edges.len();
        let (last, next) = match self.recorded(|r| matches!(r, Resolved::Calendar { last, .. } if last.len() == edges))
        {
            Some(Resolved::Calendar { last, next }) => (last, next),
            _ => compute(),
        };
        for (slot, value) in self.state.calendar_mut().iter_mut().zip(last.iter()) {
            *slot = Stamp::edge(*value);
        }
        self.history.resolve(Resolved::Calendar { last, next });
        next
    }
}

/// The Monday the cycle after the one that started on `monday` starts on, when it ends on the
/// local date `ended`: the next cadence boundary; if the cycle ran past it, the latest boundary
/// when it ended in that cycle's first week (the next cycle starts at once, as a weekly
/// release that runs into Monday does), otherwise the boundary after (a cycle never starts
/// with its first week's gates already past).
fn next_cycle_monday(cadence: kars_spec::cadence::Cadence, monday: NaiveDate, ended: NaiveDate) -> NaiveDate {
    let latest = cadence.cycle_monday(ended);
    if latest <= monday {
        cadence.next_monday(monday)
    } else if ended < latest.checked_add_signed(Duration::days(7)).unwrap_or(latest) {
        latest
    } else {
        cadence.next_monday(latest)
    }
}

/// Whether `gate`'s day in the cycle of `monday` is a holiday (no zone needed: a date).
fn on_holiday(gate: kars_spec::calendar::WeekTime, monday: NaiveDate, holidays: &[kars_spec::dates::Holiday]) -> bool {
    let day = gate.local_in_cycle(monday).date();
    holidays.iter().any(|h| h.contains(day))
}

/// `local` if its day is no holiday; otherwise the same time on the next working day (Monday to
/// Friday, no holiday), looking at most a year ahead.
fn next_working(local: chrono::NaiveDateTime, holidays: &[kars_spec::dates::Holiday]) -> chrono::NaiveDateTime {
    if !holidays.iter().any(|h| h.contains(local.date())) {
        return local;
    }
    let mut day = local;
    for _ in 0..366 {
        day += Duration::days(1);
        if kars_spec::dates::is_working_day(day.date(), holidays) {
            return day;
        }
    }
    local
}

/// The earlier of two optional instants (either, when only one is set).
#[inline(always)]
fn sooner(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The earliest deadline of `state` that has not fired, of a node not completed this cycle.
pub(crate) fn earliest_deadline(workflow: &Workflow, state: &super::State) -> Option<DateTime<Utc>> {
    workflow
        .deadlines
        .iter()
        .zip(state.deadlines().iter())
        .filter(|(slot, d)| !d.set && !state.done(slot.node))
        .map(|(_, d)| d.at)
        .min()
}

/// Where [`Instance::run`]'s single-token loop left off, for `run_general`.
struct Run {
    /// Nodes the run may still enter before it stalls.
    budget: usize,
    /// Set when a new cycle started under an upgraded spec.
    upgraded: Option<std::sync::Arc<Workflow>>,
    /// The node the run entered last.
    entered: Option<NodeIndex>,
}
