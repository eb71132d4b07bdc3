//! Who can act now: each person on the roster with the engine's verdict on their acting on
//! the node the instance waits at (role, `distinct_from`, gate, window), by a dry run of the
//! engine's own checks ([`Instance::check`](crate::Instance::check)).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kars_spec::{NodeId, PersonId};

use super::Roster;
use crate::error::EngineError;
use crate::event::{ActionOutcome, Actor, Event, Reporter};
use crate::instance::{Instance, WaitingFor};

/// One person's verdict: may they act on the node now, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanAct {
    /// The person, as on the roster.
    pub person: PersonId,
    /// The node they would act on.
    pub node: NodeId,
    /// `Ok` if the engine would accept their acting now, else its refusal.
    pub verdict: Result<(), EngineError>,
}

impl CanAct {
    /// Whether the person may act now.
    #[must_use]
    pub fn allowed(&self) -> bool {
        self.verdict.is_ok()
    }

    /// Whether the refusal is about the person (a role they lack, a node they completed that
    /// this one must be kept apart from), rather than about the moment (a gate, a window).
    #[must_use]
    pub fn refused_for_who_they_are(&self) -> bool {
        matches!(self.verdict, Err(EngineError::Unauthorized { .. } | EngineError::SeparationOfDuties { .. }))
    }
}

/// Each person on `roster`, in roster order, with the engine's verdict on their acting at
/// `now` on the node `instance` waits at: completing a task (with its first declared outcome,
/// if it asks for one), taking a decision (its first branch), or reporting an action's result
/// (for actions whose `reported_by` names roles). Empty when no person acts next (a gate, the
/// next cycle, an action its adapter reports). While parallel branches run, every branch's node
/// in turn (by node), each with the whole roster.
#[must_use]
pub fn who_can_act(instance: &Instance, roster: &Roster, now: DateTime<Utc>) -> Vec<CanAct> {
    let waiting = instance.waiting(now);
    let reasons = std::iter::once(waiting.reason).chain(waiting.branches.into_iter().map(|b| b.reason));
    reasons.flat_map(|reason| can_act_on(instance, roster, reason, now)).collect()
}

/// The roster's verdicts on acting on what one token waits for.
fn can_act_on(instance: &Instance, roster: &Roster, reason: WaitingFor, now: DateTime<Utc>) -> Vec<CanAct> {
    type Make = Box<dyn Fn(NodeId, Actor) -> Event>;
    let (node, make): (NodeId, Make) = match reason {
        WaitingFor::Task { node, outcomes, .. } => {
            let outcome: Option<Arc<str>> = outcomes.into_iter().next().map(Into::into);
            (node, Box::new(move |node, actor| Event::Complete { node, actor, outcome: outcome.clone() }))
        }
        WaitingFor::Decision { node, branches, .. } => {
            let outcome: Option<Arc<str>> = branches.into_iter().next().map(Into::into);
            (node, Box::new(move |node, actor| Event::Complete { node, actor, outcome: outcome.clone() }))
        }
        WaitingFor::ActionResult { node, reporters } if !reporters.is_empty() => (
            node,
            Box::new(|node, actor| Event::ActionResult {
                node,
                outcome: ActionOutcome::Succeeded,
                reporter: Reporter::Person(actor),
            }),
        ),
        _ => return Vec::new(),
    };
    roster
        .people()
        .filter_map(|(person, _)| {
            let actor = roster.actor(person.as_str()).ok()?;
            let verdict = instance.check(&make(node.clone(), actor), now);
            Some(CanAct { person: person.clone(), node: node.clone(), verdict })
        })
        .collect()
}
