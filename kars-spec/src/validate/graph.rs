//! Graph rules (petgraph): one start, one way on (only decisions and parallel nodes branch),
//! decisions' and forks' branches, reachability, dead ends, trap cycles and unbounded cycles.
//!
//! Two graphs are used. The *flow* graph holds every edge plus the jumps of escalations
//! (`then: { goto: X }`): it answers what can be reached. The *loop* graph holds the edges only,
//! without the back edges into the start (they end the cycle): its strongly connected
//! components are the loops a single cycle can spin in. Every traversal is iterative
//! (`kosaraju_scc` and explicit stacks), so a long chain of nodes cannot overflow the stack.

use std::collections::{BTreeSet, HashMap, VecDeque};

use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::{Cx, node_path, root};
use crate::diagnostic::{Code, Diagnostic, Location};
use crate::id::NodeId;
use crate::spec::{NodeKind, Spec, Then};

/// Indices of the spec's graph: node `i` is the `i`-th entry of `spec.nodes`.
pub(crate) struct Topology {
    /// `(from, to, edge index)` for every edge whose ends exist.
    pub(crate) edges: Vec<(usize, usize, usize)>,
    /// `(from, to)` for every escalation jump whose ends exist.
    pub(crate) gotos: Vec<(usize, usize)>,
    /// The start node, when there is exactly one.
    pub(crate) start: Option<usize>,
}

impl Topology {
    pub(crate) fn of(spec: &Spec) -> Self {
        let index = |id: &NodeId| spec.nodes.get_index_of(id);
        let edges =
            spec.edges.iter().enumerate().filter_map(|(i, e)| Some((index(&e.from)?, index(&e.to)?, i))).collect();
        let mut gotos = Vec::new();
        for (i, node) in spec.nodes.values().enumerate() {
            let escalations =
                node.deadline.iter().map(|d| &d.escalate).chain(node.retry.iter().map(|r| &r.on_exhausted));
            for escalation in escalations {
                if let Some(Then::Goto(target)) = &escalation.then
                    && let Some(t) = index(target)
                {
                    gotos.push((i, t));
                }
            }
        }
        let starts: Vec<usize> =
            spec.nodes.values().enumerate().filter(|(_, n)| n.kind == NodeKind::Start).map(|(i, _)| i).collect();
        let start = if starts.len() == 1 { starts.first().copied() } else { None };
        Self { edges, gotos, start }
    }

    /// Successor lists of the flow graph (edges and escalation jumps).
    pub(crate) fn flow_successors(&self, n: usize) -> Vec<Vec<usize>> {
        let mut succ = vec![Vec::new(); n];
        for (from, to) in self.edges.iter().map(|&(f, t, _)| (f, t)).chain(self.gotos.iter().copied()) {
            if let Some(list) = succ.get_mut(from) {
                list.push(to);
            }
        }
        succ
    }
}

/// The nodes reachable from `from` along `succ`.
pub(crate) fn reachable(succ: &[Vec<usize>], from: usize) -> Vec<bool> {
    let mut seen = vec![false; succ.len()];
    let mut queue = VecDeque::from([from]);
    if let Some(s) = seen.get_mut(from) {
        *s = true;
    }
    while let Some(n) = queue.pop_front() {
        for &m in succ.get(n).into_iter().flatten() {
            if let Some(s) = seen.get_mut(m)
                && !*s
            {
                *s = true;
                queue.push_back(m);
            }
        }
    }
    seen
}

pub(super) fn check(cx: &mut Cx<'_>) {
    let spec = cx.spec;
    let topo = Topology::of(spec);
    starts(cx);
    out_edges(cx);
    let Some(start) = topo.start else { return };
    let n = spec.nodes.len();
    let succ = topo.flow_successors(n);
    let seen = reachable(&succ, start);
    let start_id = spec.nodes.get_index(start).map(|(id, _)| id.as_str()).unwrap_or_default();
    let mut preds: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); n];
    for &(f, t, _) in &topo.edges {
        if let Some(p) = preds.get_mut(t) {
            p.insert(name(spec, f));
        }
    }
    for (i, id) in spec.nodes.keys().enumerate() {
        if !seen.get(i).copied().unwrap_or(true) {
            unreachable(cx, id, preds.get(i), start_id);
        }
    }
    let trapped = traps(cx, &topo, &succ, &seen, start);
    unbounded(cx, &topo, start, &trapped);
}

fn starts(cx: &mut Cx<'_>) {
    let starts: Vec<&NodeId> =
        cx.spec.nodes.iter().filter(|(_, n)| n.kind == NodeKind::Start).map(|(id, _)| id).collect();
    match starts.as_slice() {
        [] => cx.push(
            Diagnostic::error(Code::NoStart, "the workflow has no `start` node")
                .at_key(root().key("nodes"))
                .help("mark the node where each cycle begins with `kind: start`"),
        ),
        [_] => {}
        [first, rest @ ..] => {
            for other in rest {
                cx.push(
                    Diagnostic::error(Code::SeveralStarts, format!("node `{other}` is a second `start` node"))
                        .at_path(node_path(other).key("kind"))
                        .with_label(Location::path(node_path(first).key("kind")), "the first start node")
                        .help("a workflow has exactly one start node; make this one a `task`, `action` or `wait`"),
                );
            }
        }
    }
}

/// One way on (only decisions and parallel nodes branch), the branches and dead ends.
fn out_edges(cx: &mut Cx<'_>) {
    let spec = cx.spec;
    let mut by_source: HashMap<&str, Vec<(usize, Option<&str>)>> = HashMap::with_capacity(spec.nodes.len());
    let mut seen = BTreeSet::new();
    for (i, e) in spec.edges.iter().enumerate() {
        // An exact duplicate is reported once, as a duplicate edge.
        if seen.insert((e.from.as_str(), e.to.as_str(), e.label.as_deref())) {
            by_source.entry(e.from.as_str()).or_default().push((i, e.label.as_deref()));
        }
    }
    for (id, node) in &spec.nodes {
        let outs = by_source.remove(id.as_str()).unwrap_or_default();
        let edge_at = |i: usize| Location::path(root().key("edges").index(i));
        match node.kind {
            NodeKind::End => {
                for &(i, _) in &outs {
                    cx.push(
                        Diagnostic::error(Code::EndOutEdge, format!("end node `{id}` has an outgoing edge"))
                            .at(edge_at(i))
                            .help("the cycle ends at an `end` node; remove the edge, or make the node an `action`"),
                    );
                }
            }
            NodeKind::Decision => branches(cx, id, &outs),
            NodeKind::Parallel => parallel_branches(cx, id, &outs),
            _ if outs.len() > 1 => {
                let mut d = Diagnostic::error(
                    Code::SeveralOutEdges,
                    format!(
                        "node `{id}` has {} outgoing edges, but only a decision or a parallel node may branch",
                        outs.len()
                    ),
                )
                .at_key(node_path(id));
                for &(i, _) in &outs {
                    d = d.with_label(edge_at(i), "an outgoing edge");
                }
                cx.push(d.help(
                    "make the node a `decision` (one branch is taken) or a `parallel` node (every branch runs), or keep one edge",
                ));
            }
            _ => {}
        }
        if node.kind != NodeKind::End && outs.is_empty() {
            cx.push(
                Diagnostic::error(Code::DeadEnd, format!("node `{id}` is a dead end: no edge leaves it"))
                    .at_key(node_path(id))
                    .help("add an edge from it, or make it an `end` node with an `outcome`"),
            );
        }
    }
}

fn branches(cx: &mut Cx<'_>, id: &NodeId, outs: &[(usize, Option<&str>)]) {
    if outs.len() < 2 {
        cx.push(
            Diagnostic::error(
                Code::FewBranches,
                format!(
                    "decision `{id}` has {} branch{}, it needs at least two",
                    outs.len(),
                    if outs.len() == 1 { "" } else { "es" }
                ),
            )
            .at_key(node_path(id))
            .help("add labelled edges from it, or make it a `task` or `action`"),
        );
    }
    let mut labels: HashMap<&str, usize> = HashMap::new();
    for &(i, label) in outs {
        let at = root().key("edges").index(i);
        match label {
            None => cx.push(
                Diagnostic::error(Code::UnlabelledBranch, format!("a branch of decision `{id}` has no label"))
                    .at_path(at)
                    .help("add `label:`; the decider picks a branch by its label"),
            ),
            Some(l) => {
                if let Some(first) = labels.get(l) {
                    cx.push(
                        Diagnostic::error(
                            Code::DuplicateBranchLabel,
                            format!("decision `{id}` has two branches labelled `{l}`"),
                        )
                        .at_path(at.key("label"))
                        .with_label(Location::path(root().key("edges").index(*first).key("label")), "first used here")
                        .help("give each branch its own label"),
                    );
                } else {
                    labels.insert(l, i);
                }
            }
        }
    }
}

/// A fork's branches: two or more; their labels are only drawn.
fn parallel_branches(cx: &mut Cx<'_>, id: &NodeId, outs: &[(usize, Option<&str>)]) {
    if outs.len() < 2 {
        cx.push(
            Diagnostic::error(
                Code::FewParallelBranches,
                format!(
                    "parallel node `{id}` has {} branch{}, it needs at least two",
                    outs.len(),
                    if outs.len() == 1 { "" } else { "es" }
                ),
            )
            .at_key(node_path(id))
            .help("add edges from it, one per branch that runs at the same time, or make it a `wait`"),
        );
    }
    for &(i, label) in outs {
        if let Some(label) = label {
            cx.push(
                Diagnostic::warning(
                    Code::ParallelEdgeLabel,
                    format!("the branch of parallel node `{id}` is labelled `{label}`, but every branch runs"),
                )
                .at_path(root().key("edges").index(i).key("label"))
                .label("only drawn")
                .help("remove the label; `kars import` reads a node with labelled exits as a decision"),
            );
        }
    }
}

fn unreachable(cx: &mut Cx<'_>, id: &NodeId, preds: Option<&BTreeSet<&str>>, start: &str) {
    let preds = preds.cloned().unwrap_or_default();
    let label = if preds.is_empty() {
        "no edge leads here".to_owned()
    } else {
        format!("only reached from {}, which the start never reaches", crate::suggest::list(preds.iter().copied()))
    };
    cx.push(
        Diagnostic::error(Code::Unreachable, format!("node `{id}` is unreachable from the start node `{start}`"))
            .at_key(node_path(id))
            .label(label)
            .help(format!("add an edge to `{id}` from a node on the way from `{start}`, or remove it")),
    );
}

/// Nodes where a cycle ends: `end` nodes, sources of edges back to the start, and nodes
/// whose escalation ends the cycle.
fn exits(cx: &Cx<'_>, topo: &Topology, start: usize) -> Vec<bool> {
    let mut exit: Vec<bool> = cx
        .spec
        .nodes
        .values()
        .map(|n| {
            n.kind == NodeKind::End
                || n.deadline
                    .iter()
                    .map(|d| &d.escalate)
                    .chain(n.retry.iter().map(|r| &r.on_exhausted))
                    .any(|e| matches!(e.then, Some(Then::End(_))))
        })
        .collect();
    for &(f, t, _) in &topo.edges {
        if t == start
            && let Some(x) = exit.get_mut(f)
        {
            *x = true;
        }
    }
    exit
}

/// Reports cycles from which no exit can be reached; returns their nodes.
fn traps(cx: &mut Cx<'_>, topo: &Topology, succ: &[Vec<usize>], seen: &[bool], start: usize) -> BTreeSet<usize> {
    let n = succ.len();
    let exit = exits(cx, topo, start);
    // Reverse reachability from every exit.
    let mut pred = vec![Vec::new(); n];
    for (from, list) in succ.iter().enumerate() {
        for &to in list {
            if let Some(p) = pred.get_mut(to) {
                p.push(from);
            }
        }
    }
    let mut can_exit = vec![false; n];
    let mut queue: VecDeque<usize> = (0..n).filter(|&i| exit.get(i).copied().unwrap_or(false)).collect();
    for &i in &queue {
        if let Some(c) = can_exit.get_mut(i) {
            *c = true;
        }
    }
    while let Some(v) = queue.pop_front() {
        for &u in pred.get(v).into_iter().flatten() {
            if let Some(c) = can_exit.get_mut(u)
                && !*c
            {
                *c = true;
                queue.push_back(u);
            }
        }
    }
    let mut trapped = BTreeSet::new();
    let graph = digraph(n, succ.iter().enumerate().flat_map(|(f, l)| l.iter().map(move |&t| (f, t))));
    for scc in components(&graph, succ) {
        let stuck =
            scc.iter().all(|&v| !can_exit.get(v).copied().unwrap_or(true) && seen.get(v).copied().unwrap_or(false));
        if !stuck {
            continue;
        }
        let path = cycle_path(succ, &scc);
        let first = scc.first().copied().unwrap_or(0);
        let start_id = name(cx.spec, start);
        cx.push(
            Diagnostic::error(Code::TrapCycle, format!("the cycle `{}` has no way out", render_path(cx.spec, &path)))
                .at_key(node_path_of(cx.spec, first))
                .label(format!("no `end` node and no edge back to `{start_id}` can be reached from here"))
                .help(
                    "add a decision with a branch that leaves the loop, or a retry bound whose `then` ends the cycle",
                ),
        );
        trapped.extend(scc);
    }
    trapped
}

/// Reports loops with no human task, gate or retry bound.
fn unbounded(cx: &mut Cx<'_>, topo: &Topology, start: usize, trapped: &BTreeSet<usize>) {
    let spec = cx.spec;
    let n = spec.nodes.len();
    let mut succ = vec![Vec::new(); n];
    for &(f, t, _) in &topo.edges {
        if t != start
            && let Some(list) = succ.get_mut(f)
        {
            list.push(t);
        }
    }
    let graph = digraph(n, succ.iter().enumerate().flat_map(|(f, l)| l.iter().map(move |&t| (f, t))));
    for scc in components(&graph, &succ) {
        if scc.iter().any(|v| trapped.contains(v)) {
            continue;
        }
        let bounded = scc.iter().filter_map(|&v| spec.nodes.get_index(v)).any(|(_, node)| {
            node.kind == NodeKind::Task
                || node.decided_by.as_ref().is_some_and(|d| d.role.is_some())
                || node.gate.is_some()
                || node.retry.is_some()
        });
        if bounded {
            continue;
        }
        let path = cycle_path(&succ, &scc);
        let first = scc.first().copied().unwrap_or(0);
        cx.push(
            Diagnostic::error(
                Code::UnboundedCycle,
                format!(
                    "the cycle `{}` has no human task, gate or retry bound: it could spin forever",
                    render_path(spec, &path)
                ),
            )
            .at_key(node_path_of(spec, first))
            .help("add `retry: { max_attempts: N, on_exhausted: {...} }` to a node of the loop, or a task or gate"),
        );
    }
}

fn digraph(n: usize, edges: impl Iterator<Item = (usize, usize)>) -> DiGraph<(), ()> {
    let mut graph = DiGraph::with_capacity(n, 0);
    for _ in 0..n {
        graph.add_node(());
    }
    for (f, t) in edges {
        graph.add_edge(NodeIndex::new(f), NodeIndex::new(t), ());
    }
    graph
}

/// The non-trivial strongly connected components (more than one node, or a self-loop), each
/// sorted by declaration order, in the order of their first node.
fn components(graph: &DiGraph<(), ()>, succ: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = kosaraju_scc(graph)
        .into_iter()
        .map(|scc| {
            let mut v: Vec<usize> = scc.into_iter().map(NodeIndex::index).collect();
            v.sort_unstable();
            v
        })
        .filter(|scc| match scc.as_slice() {
            [single] => succ.get(*single).is_some_and(|l| l.contains(single)),
            _ => true,
        })
        .collect();
    out.sort_unstable();
    out
}

/// A shortest cycle through the component's first node, as a closed walk `[a, b, c, a]`.
fn cycle_path(succ: &[Vec<usize>], scc: &[usize]) -> Vec<usize> {
    let members: BTreeSet<usize> = scc.iter().copied().collect();
    let Some(&first) = scc.first() else { return Vec::new() };
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([first]);
    while let Some(v) = queue.pop_front() {
        for &w in succ.get(v).into_iter().flatten() {
            if !members.contains(&w) {
                continue;
            }
            if w == first {
                let mut path = vec![first, v];
                let mut at = v;
                while at != first {
                    at = parent.get(&at).copied().unwrap_or(first);
                    path.push(at);
                }
                // `path` is first <- ... in reverse; turn it into first -> ... -> first.
                path.reverse();
                return path;
            }
            if w != first && !parent.contains_key(&w) {
                parent.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![first, first]
}

fn name(spec: &Spec, i: usize) -> &str {
    spec.nodes.get_index(i).map(|(id, _)| id.as_str()).unwrap_or("?")
}

fn node_path_of(spec: &Spec, i: usize) -> crate::diagnostic::Path {
    root().key("nodes").key(name(spec, i))
}

fn render_path(spec: &Spec, path: &[usize]) -> String {
    path.iter().map(|&i| name(spec, i)).collect::<Vec<_>>().join(" -> ")
}
