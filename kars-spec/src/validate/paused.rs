//! A task or decision that a `pause_tasks` window covers for its whole possible span (a
//! warning): nobody can ever act on it, so its deadline always escalates.
//!
//! The check only warns when it is certain, in cycle time (minutes from the cycle's Monday
//! 00:00, wall clock; the DST rule maps wall times to instants in the same order):
//! - the node can be acted on no earlier than `L`: its own gate, or the latest gate every way
//!   into it has passed, or the deadline whose escalation jumps to it;
//! - the node can be acted on no later than `U`: its deadline, when the deadline's escalation
//!   leaves it (`then: goto` a node from which it cannot be reached again this cycle, or
//!   `then: end`) and no other escalation jumps to it;
//! - one weekly occurrence of a window with calendar edges at both ends and `pause_tasks` holds
//!   the whole of `[L, U)`.
//!
//! An instance's first cycle may start after the deadline (the deadline is then recorded as
//! missed before the start and does not escalate); every later cycle is as described.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::Dfs;

use super::graph::Topology;
use super::{Cx, node_path, root};
use crate::calendar::WeekTime;
use crate::diagnostic::{Code, Diagnostic, Location};
use crate::id::{NodeId, WindowId};
use crate::spec::{Node, NodeKind, Spec, Then, Window, WindowEdge};

/// Minutes in a week.
const WEEK: u32 = 7 * 1440;

pub(super) fn check(cx: &mut Cx<'_>) {
    let spec = cx.spec;
    let pausing: Vec<(&WindowId, u32, u32)> =
        spec.windows.iter().filter_map(|(id, w)| weekly(w).map(|(o, c)| (id, o, c))).collect();
    if pausing.is_empty() {
        return;
    }
    let topo = Topology::of(spec);
    let Some(start) = topo.start else { return };
    let earliest = earliest_arrival(spec, &topo, start);
    let within_cycle = cycle_graph(spec, &topo);
    for (i, (id, node)) in spec.nodes.iter().enumerate() {
        if !is_human(node) {
            continue;
        }
        let Some(arrival) = earliest.get(i).copied().flatten() else { continue };
        let Some(deadline) = &node.deadline else { continue };
        let Some(then) = &deadline.escalate.then else { continue };
        if !left_for_good(spec, &within_cycle, id, i, then) {
            continue;
        }
        let from = arrival.max(node.gate.map_or(0, WeekTime::cycle_minutes));
        let until = deadline.by.cycle_minutes();
        // An empty span is a deadline before a gate (`K0704`).
        if from >= until {
            continue;
        }
        let Some((window, _, _)) = pausing.iter().find(|(_, o, c)| covers(*o, *c, from, until)) else { continue };
        let what = if node.kind == NodeKind::Decision { "decided" } else { "completed" };
        let mut d = Diagnostic::warning(
            Code::AlwaysPaused,
            format!("`{id}` can only be {what} while window `{window}` pauses tasks"),
        )
        .at_path(node_path(id).key("deadline").key("by"))
        .label("this deadline always passes with the work refused")
        .with_label(
            Location::path(root().key("windows").key(window.as_str()).key("pause_tasks")),
            "this window refuses the work",
        );
        if let Some(gate) = node.gate {
            d = d.with_label(Location::path(node_path(id).key("gate")), format!("`{gate}` is inside the window"));
        }
        cx.push(d.help("move the gate or the deadline out of the window, or drop `pause_tasks` from it"));
    }
}

/// A task, or a decision an actor takes.
fn is_human(node: &Node) -> bool {
    match node.kind {
        NodeKind::Task => true,
        NodeKind::Decision => node.decided_by.as_ref().is_some_and(|d| d.role.is_some()),
        _ => false,
    }
}

/// The opening and closing minute within the week of a `pause_tasks` window with calendar
/// edges at both ends; the closing minute is after the opening one (a week later when the
/// window spans the weekend). `None` for any other window, and for one that never opens
/// (both edges at the same time).
fn weekly(window: &Window) -> Option<(u32, u32)> {
    if !window.pause_tasks {
        return None;
    }
    let (WindowEdge::At(opens), WindowEdge::At(closes)) = (&window.opens, &window.closes) else { return None };
    // A window recurs every week: its edges' week offsets do not count.
    let o = opens.cycle_minutes() % WEEK;
    let c = closes.cycle_minutes() % WEEK;
    match o.cmp(&c) {
        std::cmp::Ordering::Less => Some((o, c)),
        std::cmp::Ordering::Greater => Some((o, c + WEEK)),
        std::cmp::Ordering::Equal => None,
    }
}

/// Whether one weekly occurrence `[o + kW, c + kW)` of a window holds all of `[from, until)`.
fn covers(o: u32, c: u32, from: u32, until: u32) -> bool {
    let (o, c, from, until, week) = (i64::from(o), i64::from(c), i64::from(from), i64::from(until), i64::from(WEEK));
    // The occurrence that opened last at or before `from` (the previous week's, before Monday).
    let opened = o + (from - o).div_euclid(week) * week;
    until <= opened + (c - o)
}

/// The earliest cycle minute at which each node can be entered: the least, over every way in,
/// of the latest gate passed on it (a fixpoint over all edges, back edges included, so loops
/// and irreducible graphs stay sound). A deadline's jump enters its target no earlier than the
/// deadline; a retry bound's jump no earlier than its node. `None`: never entered.
fn earliest_arrival(spec: &Spec, topo: &Topology, start: usize) -> Vec<Option<u32>> {
    let n = spec.nodes.len();
    let gate = |i: usize| spec.nodes.get_index(i).and_then(|(_, node)| node.gate).map_or(0, WeekTime::cycle_minutes);
    let index = |id: &NodeId| spec.nodes.get_index_of(id);
    let mut arrival: Vec<Option<u32>> = vec![None; n];
    if let Some(a) = arrival.get_mut(start) {
        *a = Some(0);
    }
    // Jumps that do not depend on where the token is: a deadline fires whenever its node is
    // not done.
    for node in spec.nodes.values() {
        if let Some(d) = &node.deadline
            && let Some(Then::Goto(target)) = &d.escalate.then
            && let Some(slot) = index(target).and_then(|t| arrival.get_mut(t))
        {
            let at = d.by.cycle_minutes();
            *slot = Some(slot.map_or(at, |s| s.min(at)));
        }
    }
    let mut moves: Vec<(usize, usize, bool)> = topo.edges.iter().map(|&(f, t, _)| (f, t, true)).collect();
    for (i, node) in spec.nodes.values().enumerate() {
        if let Some(r) = &node.retry
            && let Some(Then::Goto(target)) = &r.on_exhausted.then
            && let Some(t) = index(target)
        {
            // The jump is taken on entry, before the node's gate.
            moves.push((i, t, false));
        }
    }
    // Each round lowers at least one value, and values come from a finite set.
    loop {
        let mut changed = false;
        for &(f, t, through) in &moves {
            let Some(at_f) = arrival.get(f).copied().flatten() else { continue };
            let at = if through { at_f.max(gate(f)) } else { at_f };
            if let Some(slot) = arrival.get_mut(t)
                && slot.is_none_or(|s| at < s)
            {
                *slot = Some(at);
                changed = true;
            }
        }
        if !changed {
            return arrival;
        }
    }
}

/// The flow within one cycle: edges and retry jumps, without the edges into the start (they
/// begin the next cycle).
fn cycle_graph(spec: &Spec, topo: &Topology) -> DiGraph<(), ()> {
    let mut g = DiGraph::new();
    for _ in 0..spec.nodes.len() {
        g.add_node(());
    }
    let is_start = |i: usize| spec.nodes.get_index(i).is_some_and(|(_, n)| n.kind == NodeKind::Start);
    for (f, t) in topo.edges.iter().map(|&(f, t, _)| (f, t)).chain(topo.gotos.iter().copied()) {
        if !is_start(t) {
            g.add_edge(NodeIndex::new(f), NodeIndex::new(t), ());
        }
    }
    g
}

/// Whether the deadline's jump leaves node `i` for the rest of the cycle: no other escalation
/// jumps to it, and the jump's target cannot lead back to it.
fn left_for_good(spec: &Spec, g: &DiGraph<(), ()>, id: &NodeId, i: usize, then: &Then) -> bool {
    let jumped_to = spec.nodes.values().any(|n| {
        n.deadline
            .iter()
            .map(|d| &d.escalate)
            .chain(n.retry.iter().map(|r| &r.on_exhausted))
            .any(|e| matches!(&e.then, Some(Then::Goto(t)) if t == id))
    });
    if jumped_to {
        return false;
    }
    match then {
        Then::End(_) => true,
        Then::Goto(target) => {
            let Some(t) = spec.nodes.get_index_of(target) else { return false };
            if t == i {
                return false;
            }
            let mut dfs = Dfs::new(g, NodeIndex::new(t));
            while let Some(v) = dfs.next(g) {
                if v.index() == i {
                    return false;
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u32 = 60;
    const D: u32 = 1440;

    #[test]
    fn a_weekend_window_covers_a_saturday_span_in_any_week() {
        // Friday 17:00 to Monday 09:00.
        let (o, c) = (4 * D + 17 * H, WEEK + 9 * H);
        assert!(covers(o, c, 5 * D + 10 * H, 6 * D));
        assert!(covers(o, c, WEEK + 5 * D, WEEK + 6 * D), "the next week's occurrence");
        assert!(covers(o, c, 4 * D + 17 * H, WEEK + 9 * H), "the edges themselves");
        assert!(!covers(o, c, 4 * D + 16 * H, 5 * D), "starts before the window");
        assert!(!covers(o, c, 5 * D, WEEK + 9 * H + 1), "ends after it");
        assert!(!covers(o, c, 5 * D, 2 * WEEK), "spans two occurrences");
        assert!(covers(o, c, 10, 20), "Monday early morning is the previous occurrence");
    }

    #[test]
    fn a_midweek_window_covers_only_its_own_days() {
        // Wednesday 00:00 to Thursday 00:00.
        let (o, c) = (2 * D, 3 * D);
        assert!(covers(o, c, 2 * D + H, 2 * D + 2 * H));
        assert!(!covers(o, c, D, 2 * D + H));
        assert!(!covers(o, c, 10, 20));
    }
}
