//! Time rules: along every forward path, gates do not go back in time and no deadline falls
//! before a gate that must open first.
//!
//! Forward paths are the edges left after removing the back edges of a depth-first search from
//! the start (the edges into the start, and loops such as a fix/retest round). What remains is
//! acyclic; the reverse post-order of the same search is a topological order of it.

use crate::calendar::WeekTime;

use super::graph::Topology;
use super::{Cx, node_path};
use crate::diagnostic::{Code, Diagnostic, Location};

pub(super) fn check(cx: &mut Cx<'_>) {
    let spec = cx.spec;
    let topo = Topology::of(spec);
    let Some(start) = topo.start else { return };
    let n = spec.nodes.len();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(f, t, _) in &topo.edges {
        if let Some(list) = succ.get_mut(f) {
            list.push(t);
        }
    }
    let (order, forward) = forward_edges(&succ, start);
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (from, to) in forward {
        if let Some(list) = next.get_mut(from) {
            list.push(to);
        }
    }
    let gate = |i: usize| spec.nodes.get_index(i).and_then(|(_, node)| node.gate);
    // The latest gate strictly before each node, with the node it is on.
    let mut before: Vec<Option<(WeekTime, usize)>> = vec![None; n];
    for &v in &order {
        let mine = gate(v);
        let here = before.get(v).copied().flatten();
        let (id, node) = match spec.nodes.get_index(v) {
            Some(entry) => entry,
            None => continue,
        };
        if let (Some(g), Some((earlier, on))) = (mine, here)
            && g < earlier
        {
            let other = spec.nodes.get_index(on).map(|(id, _)| id);
            if let Some(other) = other {
                cx.push(
                    Diagnostic::error(
                        Code::GateOrder,
                        format!("gate `{g}` on `{id}` is earlier than `{earlier}` on `{other}`, which comes before it"),
                    )
                    .at_path(node_path(id).key("gate"))
                    .with_label(Location::path(node_path(other).key("gate")), "this gate opens first")
                    .help("gates are times within the cycle; use `+1w` for a time in the following week"),
                );
            }
        }
        let latest = match (mine, here) {
            (Some(g), Some((e, on))) => Some(if g >= e { (g, v) } else { (e, on) }),
            (Some(g), None) => Some((g, v)),
            (None, h) => h,
        };
        if let (Some(deadline), Some((g, on))) = (&node.deadline, latest)
            && deadline.by < g
        {
            let by = deadline.by;
            let (what, label_on) = if on == v {
                ("its own gate".to_owned(), node_path(id))
            } else {
                let other = spec.nodes.get_index(on).map(|(id, _)| id.as_str()).unwrap_or("?");
                (
                    format!("the gate on `{other}`, which comes before it"),
                    node_path(spec.nodes.get_index(on).map_or(id, |(id, _)| id)),
                )
            };
            cx.push(
                Diagnostic::error(
                    Code::DeadlineBeforeGate,
                    format!("deadline `{by}` on `{id}` is earlier than `{g}`, {what}"),
                )
                .at_path(node_path(id).key("deadline").key("by"))
                .label("this deadline would always be missed")
                .with_label(Location::path(label_on.key("gate")), "this gate opens later")
                .help("move the deadline after the gate, or use `+1w` for a time in the following week"),
            );
        }
        for &to in next.get(v).into_iter().flatten() {
            if let Some(slot) = before.get_mut(to) {
                *slot = match (*slot, latest) {
                    (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
                    (a, b) => a.or(b),
                };
            }
        }
    }
}

/// A depth-first search from `start` (iterative): the reachable nodes in reverse post-order,
/// and the edges that are not back edges.
fn forward_edges(succ: &[Vec<usize>], start: usize) -> (Vec<usize>, Vec<(usize, usize)>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        White,
        Gray,
        Black,
    }
    let mut color = vec![Color::White; succ.len()];
    let mut post = Vec::new();
    let mut forward = Vec::new();
    let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
    if let Some(c) = color.get_mut(start) {
        *c = Color::Gray;
    }
    while let Some(&mut (v, ref mut next)) = stack.last_mut() {
        let children = succ.get(v).map_or(&[][..], Vec::as_slice);
        if let Some(&w) = children.get(*next) {
            *next += 1;
            match color.get(w).copied() {
                Some(Color::White) => {
                    forward.push((v, w));
                    if let Some(c) = color.get_mut(w) {
                        *c = Color::Gray;
                    }
                    stack.push((w, 0));
                }
                Some(Color::Black) => forward.push((v, w)),
                _ => {}
            }
        } else {
            if let Some(c) = color.get_mut(v) {
                *c = Color::Black;
            }
            post.push(v);
            stack.pop();
        }
    }
    post.reverse();
    (post, forward)
}
