//! Remapping an instance's state onto another spec version: tables are indexed by spec order,
//! so every entry moves by node id, deadline, slot or label text; whatever cannot move is a
//! reason ([`UpgradeBlocker`]) the move cannot happen in the middle of a cycle.

use std::collections::HashMap;

use super::state::{DONE, NO_OUTCOME, Stamp, State, Token};
use super::upgrade::UpgradeBlocker;
use crate::workflow::{CompiledDeadline, LabelIndex, NodeIndex, Workflow};

/// Remaps finished cycles' outcome labels to `new`'s table; labels it lacks are retired.
fn relabel_finished(old: &Workflow, new: &Workflow, state: &mut State) {
    let old_retired = state.upgrades.as_mut().map(|u| std::mem::take(&mut u.retired)).unwrap_or_default();
    let old_text = |label: LabelIndex| -> Box<str> {
        let i = usize::from(label.0);
        match i.checked_sub(old.labels.len()) {
            None => old.label(label).into(),
            Some(r) => old_retired.get(r).cloned().unwrap_or_default(),
        }
    };
    let new_index: HashMap<&str, u16> =
        new.labels.iter().enumerate().filter_map(|(i, l)| Some((&**l, u16::try_from(i).ok()?))).collect();
    let mut retired: Vec<Box<str>> = Vec::new();
    for cycle in &mut state.finished {
        let text = old_text(cycle.outcome);
        let index = match new_index.get(&*text) {
            Some(&i) => i,
            None => {
                let at = retired.iter().position(|r| *r == text).unwrap_or_else(|| {
                    retired.push(text);
                    retired.len() - 1
                });
                u16::try_from(new.labels.len() + at).unwrap_or(u16::MAX)
            }
        };
        cycle.outcome = LabelIndex(index);
    }
    if !retired.is_empty() {
        state.upgrades_mut().retired = retired;
    }
}

/// A state for `new` with fresh tables and what outlives a cycle taken from `state`: the clock,
/// the cycle count and dates, this cycle's counters, the upgrade bookkeeping and the finished
/// cycles (their outcomes relabelled for `new`).
pub(super) fn carried_over(old: &Workflow, new: &Workflow, state: &State) -> State {
    let mut fresh = State::new(new, state.clock);
    fresh.cycle = state.cycle;
    fresh.monday = state.monday;
    fresh.cycle_started = state.cycle_started;
    fresh.token = state.token;
    fresh.misses = state.misses;
    fresh.retry_rounds = state.retry_rounds;
    fresh.upgrades.clone_from(&state.upgrades);
    fresh.finished.clone_from(&state.finished);
    relabel_finished(old, new, &mut fresh);
    fresh
}

/// The state of `state` remapped onto `new` in the middle of a cycle, or every reason it
/// cannot be.
pub(super) fn migrate(old: &Workflow, new: &Workflow, state: &State) -> Result<State, Vec<UpgradeBlocker>> {
    let mut blockers = Vec::new();
    let running = matches!(state.token, Token::At { .. });
    if old.zone != new.zone && running {
        blockers.push(UpgradeBlocker::ZoneChanged);
    }
    if old.prints.windows != new.prints.windows {
        blockers.push(UpgradeBlocker::WindowsChanged);
    }
    let mut fresh = carried_over(old, new, state);
    fresh.calendar_next = state.calendar_next;
    fresh.open_windows = state.open_windows;
    if fresh.calendar().len() == state.calendar().len() {
        fresh.calendar_mut().copy_from_slice(state.calendar());
    }
    token(old, new, state, &mut fresh, &mut blockers);
    visits(old, new, state, &mut fresh, &mut blockers);
    if running {
        deadlines(old, new, state, &mut fresh, &mut blockers);
    }
    slots(old, new, state, &mut fresh, &mut blockers);
    if blockers.is_empty() {
        debug_assert!(fresh.fits(new), "a remapped state fits its workflow");
        Ok(fresh)
    } else {
        Err(blockers)
    }
}

/// Where `node` of `old` is in `new`.
fn moved(old: &Workflow, new: &Workflow, node: NodeIndex) -> Option<NodeIndex> {
    old.nodes.get(node.get()).and_then(|n| new.node_index(n.id.as_str()))
}

/// The token stays at the same node, which must do the same in `new`.
fn token(old: &Workflow, new: &Workflow, state: &State, fresh: &mut State, blockers: &mut Vec<UpgradeBlocker>) {
    fresh.token = match state.token {
        Token::Between { next_start } => Token::Between { next_start },
        Token::Branches => {
            let nodes = state.tokens().map(|(n, _)| old.node(n).id.clone()).collect();
            blockers.push(UpgradeBlocker::BranchesRunning { nodes });
            state.token
        }
        Token::At { node, phase } => match moved(old, new, node) {
            None => {
                blockers.push(UpgradeBlocker::CurrentNodeRemoved { node: old.node(node).id.clone() });
                state.token
            }
            Some(to) => {
                if old.prints.nodes.get(node.get()) != new.prints.nodes.get(to.get()) {
                    blockers.push(UpgradeBlocker::CurrentNodeChanged { node: old.node(node).id.clone() });
                }
                Token::At { node: to, phase }
            }
        },
    };
}

/// Visits and completions this cycle move by node id; a visited node must still exist.
fn visits(old: &Workflow, new: &Workflow, state: &State, fresh: &mut State, blockers: &mut Vec<UpgradeBlocker>) {
    for (i, &visits) in state.nodes().iter().enumerate() {
        if visits & !DONE == 0 && visits & DONE == 0 {
            continue;
        }
        let Ok(index) = u16::try_from(i) else { continue };
        let node = NodeIndex(index);
        match moved(old, new, node).and_then(|to| fresh.nodes_mut().get_mut(to.get())) {
            Some(slot) => *slot = visits,
            // The current node's removal is said once, by `token`.
            None if state.token_at(node).is_some() => {}
            None => blockers.push(UpgradeBlocker::VisitedNodeRemoved { node: old.node(node).id.clone() }),
        }
    }
}

/// Deadlines are armed when a cycle starts: while one runs they must stay as they are.
fn deadlines(old: &Workflow, new: &Workflow, state: &State, fresh: &mut State, blockers: &mut Vec<UpgradeBlocker>) {
    let armed: Vec<(&str, &CompiledDeadline, &Stamp)> =
        old.deadlines.iter().zip(state.deadlines().iter()).map(|(d, s)| (old.node(d.node).id.as_str(), d, s)).collect();
    for (slot, deadline) in new.deadlines.iter().enumerate() {
        let id = new.node(deadline.node).id.as_str();
        match armed.iter().find(|(old_id, d, _)| *old_id == id && d.by == deadline.by) {
            Some((_, _, s)) => {
                if let Some(d) = fresh.deadlines_mut().get_mut(slot) {
                    *d = **s;
                }
            }
            None => blockers.push(UpgradeBlocker::DeadlineChanged { node: new.node(deadline.node).id.clone() }),
        }
    }
    for (id, old_deadline, _) in &armed {
        let kept = new.deadlines.iter().any(|d| new.node(d.node).id.as_str() == *id && d.by == old_deadline.by);
        let said =
            blockers.iter().any(|b| matches!(b, UpgradeBlocker::DeadlineChanged { node } if node.as_str() == *id));
        if !kept && !said {
            blockers.push(UpgradeBlocker::DeadlineChanged { node: old.node(old_deadline.node).id.clone() });
        }
    }
}

/// Per-node slots: exhausted retries, recorded outcomes, completing actors, completions.
fn slots(old: &Workflow, new: &Workflow, state: &State, fresh: &mut State, blockers: &mut Vec<UpgradeBlocker>) {
    for node in &old.nodes {
        let Some(to) = new.node_index(node.id.as_str()) else { continue };
        let target = new.node(to);
        if let Some(r) = node.retry
            && state.exhausted & (1u64 << (r % 64)) != 0
        {
            match target.retry {
                Some(nr) => fresh.exhausted |= 1u64 << (nr % 64),
                None => blockers.push(UpgradeBlocker::RetryRemoved { node: node.id.clone() }),
            }
        }
        if let (Some(from), Some(into)) = (node.outcome_slot, target.outcome_slot) {
            let recorded = state.outcomes().get(usize::from(from)).copied().unwrap_or(NO_OUTCOME);
            if recorded != NO_OUTCOME {
                let text = old.label(LabelIndex(recorded));
                match new.labels.iter().position(|l| &**l == text).and_then(|p| u16::try_from(p).ok()) {
                    Some(p) => {
                        if let Some(o) = fresh.outcomes_mut().get_mut(usize::from(into)) {
                            *o = p;
                        }
                    }
                    None => {
                        blockers.push(UpgradeBlocker::OutcomeLost { node: node.id.clone(), outcome: text.to_owned() });
                    }
                }
            }
        }
        if let (Some(from), Some(into)) = (node.actor_slot, target.actor_slot)
            && let (Some(actor), Some(o)) =
                (state.actors.get(usize::from(from)), fresh.actors.get_mut(usize::from(into)))
        {
            o.clone_from(actor);
        }
        if let (Some(from), Some(into)) = (node.watch_slot, target.watch_slot)
            && let (Some(when), Some(o)) =
                (state.watched().get(usize::from(from)), fresh.watched_mut().get_mut(usize::from(into)))
        {
            *o = *when;
        }
    }
}
