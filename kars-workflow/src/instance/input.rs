//! Events: the checks that decide whether an event is accepted, in a fixed order (known node,
//! awaiting it, gate open, no pausing window, role, separation of duties, outcome), then the
//! transition it causes.

use chrono::{DateTime, Utc};
use kars_spec::spec::NodeKind;
use kars_spec::{NodeId, RoleId};

use super::Instance;
use super::state::{Phase, Token};
use crate::effect::NoticeKind;
use crate::error::{EngineError, Expecting, Forbidden};
use crate::event::{ActionOutcome, Actor, Event, Reporter};
use crate::workflow::{CompiledAction, CompiledEdge, Decider, LabelIndex, NodeIndex, Workflow};

impl Instance {
    /// Checks `event` and makes the transition it causes.
    ///
    /// For an action result reported with its effect's key, returns the release and visit that key
    /// names when the release takes eight bytes (the history keeps the record as those rather
    /// than reading the key back; taken when the key is checked, as the result may end the
    /// cycle and start the next).
    pub(crate) fn apply(&mut self, event: &Event, now: DateTime<Utc>) -> Result<Option<([u8; 8], u16)>, EngineError> {
        match event {
            Event::Complete { node, actor, outcome } => {
                self.complete_event(node, actor, outcome.as_deref(), now).map(|()| None)
            }
            Event::ActionResult { node, outcome, reporter } => self.action_result(node, *outcome, reporter, now),
            Event::Merge { source, target, .. } => {
                let (refused, _) =
                    crate::policy::merge_refusal(&self.workflow, self.state.open_windows, source, target);
                if let Some(window) = refused {
                    let subject = Forbidden::Merge { source: source.clone(), target: target.clone() };
                    return Err(self.window_error(window, subject, now));
                }
                self.notice(now, NoticeKind::MergeRecorded);
                Ok(None)
            }
        }
    }

    fn lookup(&self, node: &NodeId) -> Result<NodeIndex, EngineError> {
        // Most events name the node the token is at: one string comparison instead of a hash.
        if let Token::At { node: current, .. } = self.state.token
            && self.workflow.node(current).id == *node
        {
            return Ok(current);
        }
        self.workflow.node_index(node.as_str()).ok_or_else(|| EngineError::UnknownNode { node: node.clone() })
    }

    /// What the instance waits for now (at its first branch, by node), for `NotAwaiting`
    /// errors.
    pub(crate) fn expecting(&self) -> Expecting {
        match (self.state.token, self.state.current()) {
            (Token::Between { .. }, _) => Expecting::NextCycle,
            (_, Some(node)) => self.expecting_at(node),
            // A fork's branches are never all gone while its cycle runs.
            (_, None) => Expecting::Stalled,
        }
    }

    /// What the token at `node` waits for.
    pub(crate) fn expecting_at(&self, node: NodeIndex) -> Expecting {
        match self.state.token_at(node) {
            None => Expecting::NextCycle,
            Some(Phase::Gated { .. }) => Expecting::Gate,
            Some(Phase::Stalled) => Expecting::Stalled,
            Some(Phase::Ready) => self.ready_for(node),
        }
    }

    /// What a token ready at `node` waits for: set by the node's kind.
    #[inline]
    fn ready_for(&self, node: NodeIndex) -> Expecting {
        let compiled = self.workflow.node(node);
        match (compiled.kind, &compiled.decider) {
            (NodeKind::Decision, Some(Decider::OutcomeOf { .. })) => Expecting::AutomaticDecision,
            (NodeKind::Decision, _) => Expecting::Decision,
            (NodeKind::Action, _) => Expecting::ActionResult,
            _ => Expecting::Task,
        }
    }

    fn not_awaiting(&self, node: &NodeId) -> EngineError {
        // A node some branch is at names itself; otherwise the first branch's node.
        let at = self.workflow.node_index(node.as_str()).filter(|i| self.state.token_at(*i).is_some());
        let current = at.or(self.state.current()).and_then(|n| self.workflow.node_id(n)).cloned();
        let expecting = at.map_or_else(|| self.expecting(), |i| self.expecting_at(i));
        EngineError::NotAwaiting { node: node.clone(), current, expecting }
    }

    /// Whether the one token is ready at `index` and waits there for one of `want`: the
    /// common case of [`Instance::awaiting`], answered without the branch list or the call.
    #[inline]
    fn ready_at(&self, index: NodeIndex, want: &[Expecting]) -> bool {
        matches!(self.state.token, Token::At { node, phase: Phase::Ready } if node == index)
            && want.contains(&self.ready_for(index))
    }

    /// Checks that a token is at `index`, its gate is open and it expects `want`.
    fn awaiting(&self, node: &NodeId, index: NodeIndex, want: &[Expecting]) -> Result<(), EngineError> {
        match self.state.token_at(index) {
            Some(Phase::Gated { opens_at }) => {
                Err(EngineError::GateNotOpen { node: node.clone(), opens_at, zone: self.workflow.zone })
            }
            Some(Phase::Ready) if want.contains(&self.expecting_at(index)) => Ok(()),
            _ => Err(self.not_awaiting(node)),
        }
    }

    fn complete_event(
        &mut self,
        node: &NodeId,
        actor: &Actor,
        outcome: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let index = self.lookup(node)?;
        let want = [Expecting::Task, Expecting::Decision];
        if !self.ready_at(index, &want) {
            self.awaiting(node, index, &want)?;
        }
        let paused = self.state.open_windows & self.workflow.pause_mask;
        if paused != 0 {
            let window = paused.trailing_zeros() as usize;
            return Err(self.window_error(window, Forbidden::Work { node: node.clone() }, now));
        }
        self.with_spec(|this, workflow| this.complete_checked(workflow, index, node, actor, outcome, now))
    }

    /// [`Instance::complete_event`] once the node awaits the completion: the role, the
    /// separation of duties and the outcome checks, then the move.
    fn complete_checked(
        &mut self,
        workflow: &Workflow,
        index: NodeIndex,
        node: &NodeId,
        actor: &Actor,
        outcome: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let compiled = workflow.node(index);
        let roles: &[RoleId] = match &compiled.decider {
            Some(Decider::Role(role)) => std::slice::from_ref(role),
            _ => &compiled.roles,
        };
        if !actor.holds_any(roles) {
            return Err(EngineError::Unauthorized {
                node: node.clone(),
                actor: String::from(&**actor.name()),
                needed: roles.to_vec(),
            });
        }
        for &(other, slot) in compiled.distinct_from.iter() {
            let by = self.state.actors.get(usize::from(slot)).and_then(Option::as_deref);
            if by == Some(&**actor.name()) {
                let other = workflow.node(other).id.clone();
                return Err(EngineError::SeparationOfDuties {
                    node: node.clone(),
                    actor: String::from(&**actor.name()),
                    other,
                });
            }
        }
        let label = if compiled.kind == NodeKind::Decision {
            let edges = workflow.out_edges(index);
            let found = outcome.and_then(|o| edges.iter().filter_map(|e| e.label).find(|l| workflow.label(*l) == o));
            match found {
                Some(l) => Some(l),
                None => {
                    let valid = workflow.labels_of(edges.iter().filter_map(|e| e.label));
                    return Err(EngineError::UnknownOutcome {
                        node: node.clone(),
                        given: outcome.map(str::to_owned),
                        valid,
                    });
                }
            }
        } else {
            match (outcome, compiled.outcomes.is_empty()) {
                (None, true) => None,
                (Some(o), false) => match compiled.outcomes.iter().find(|l| workflow.label(**l) == o) {
                    Some(l) => Some(*l),
                    None => return Err(self.outcome_error(node, Some(o), &compiled.outcomes)),
                },
                (given, _) => return Err(self.outcome_error(node, given, &compiled.outcomes)),
            }
        };
        // Accepted: record who and what, then move on.
        if let Some(slot) = compiled.actor_slot.and_then(|s| self.state.actors.get_mut(usize::from(s))) {
            *slot = Some(std::sync::Arc::clone(actor.name()));
        }
        if let (Some(l), Some(slot)) = (label, compiled.outcome_slot)
            && let Some(o) = self.state.outcomes_mut().get_mut(usize::from(slot))
        {
            *o = l.0;
        }
        let branch = if compiled.kind == NodeKind::Decision { label } else { None };
        self.focus(index);
        let next = self.leave(workflow, index, branch, now);
        self.run(workflow, next, now);
        Ok(())
    }

    fn outcome_error(&self, node: &NodeId, given: Option<&str>, valid: &[LabelIndex]) -> EngineError {
        EngineError::UnknownOutcome {
            node: node.clone(),
            given: given.map(str::to_owned),
            valid: self.workflow.labels_of(valid.iter().copied()),
        }
    }

    fn action_result(
        &mut self,
        node: &NodeId,
        outcome: ActionOutcome,
        reporter: &Reporter,
        now: DateTime<Utc>,
    ) -> Result<Option<([u8; 8], u16)>, EngineError> {
        let index = self.lookup(node)?;
        if !self.ready_at(index, &[Expecting::ActionResult]) {
            self.awaiting(node, index, &[Expecting::ActionResult])?;
        }
        self.with_spec(|this, workflow| this.result_checked(workflow, index, node, outcome, reporter, now))
    }

    /// [`Instance::action_result`] once the node awaits a result: the action and reporter
    /// checks, then the move. The key an accepted result carried, as release and visit.
    fn result_checked(
        &mut self,
        workflow: &Workflow,
        index: NodeIndex,
        node: &NodeId,
        outcome: ActionOutcome,
        reporter: &Reporter,
        now: DateTime<Utc>,
    ) -> Result<Option<([u8; 8], u16)>, EngineError> {
        let compiled = workflow.node(index);
        if !compiled.action.as_ref().is_some_and(CompiledAction::waits) {
            return Err(self.not_awaiting(node));
        }
        let mut key_parts = None;
        match reporter {
            Reporter::Effect { key } if !self.is_action_key(key, index) => {
                let expected = self.action_key(index);
                return Err(EngineError::StaleResult { node: node.clone(), key: key.clone(), expected });
            }
            Reporter::Effect { .. } => {
                key_parts =
                    <[u8; 8]>::try_from(self.release.as_str().as_bytes()).ok().map(|r| (r, self.state.visits(index)));
            }
            // For an action, the compiled roles are the roles that may report its result.
            Reporter::Person(actor) if !actor.holds_any(&compiled.roles) => {
                return Err(EngineError::Unauthorized {
                    node: node.clone(),
                    actor: String::from(&**actor.name()),
                    needed: compiled.roles.to_vec(),
                });
            }
            Reporter::Person(_) => {}
            Reporter::Unrecorded if self.replay.is_some() => {}
            Reporter::Unrecorded => return Err(EngineError::NoReporter { node: node.clone() }),
        }
        let label = match outcome {
            ActionOutcome::Succeeded => workflow.succeeded,
            ActionOutcome::Failed => workflow.failed,
        };
        if let Some(o) = compiled.outcome_slot.and_then(|s| self.state.outcomes_mut().get_mut(usize::from(s))) {
            *o = label.0;
        }
        self.focus(index);
        let next = self.leave(workflow, index, None, now);
        self.run(workflow, next, now);
        Ok(key_parts)
    }

    /// A `WindowForbids` error for window `index`, with when (or on what) it closes.
    pub(crate) fn window_error(&self, index: usize, subject: Forbidden, now: DateTime<Utc>) -> EngineError {
        let (until, until_node) = self.window_until(index, now);
        let window = self.workflow.windows.get(index).map(|w| w.id.clone());
        match window {
            Some(window) => EngineError::WindowForbids { window, subject, until, until_node, zone: self.workflow.zone },
            None => EngineError::NotAwaiting {
                node: self.workflow.node(self.workflow.start).id.clone(),
                current: None,
                expecting: self.expecting(),
            },
        }
    }

    /// When window `index` closes: the next calendar edge, or the closing node and, if it has
    /// a gate still ahead, that gate's instant in the running cycle.
    pub(crate) fn window_until(&self, index: usize, now: DateTime<Utc>) -> (Option<DateTime<Utc>>, Option<NodeId>) {
        let Some(window) = self.workflow.windows.get(index) else {
            return (None, None);
        };
        match window.closes {
            CompiledEdge::At { time, .. } => {
                (Some(crate::gate::next_occurrence_after(time, now, self.workflow.zone)), None)
            }
            CompiledEdge::On { at, .. } => {
                (Some(crate::gate::resolve_local_memo(self.workflow.zone, at)).filter(|t| *t > now), None)
            }
            CompiledEdge::After { node, .. } => {
                let compiled = self.workflow.node(node);
                let armed = match self.state.token_at(node) {
                    Some(Phase::Gated { opens_at }) => Some(opens_at),
                    _ => None,
                };
                let gate = armed
                    .or_else(|| compiled.gate.map(|g| crate::gate::resolve(g, self.state.monday, self.workflow.zone)))
                    .filter(|at| *at > now);
                (gate, Some(compiled.id.clone()))
            }
        }
    }
}
