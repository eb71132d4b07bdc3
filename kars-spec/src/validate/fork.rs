//! Fork rules: the branches of each `parallel` node meet at exactly one `join` and stay inside
//! their block until then; every join belongs to exactly one fork.
//!
//! The graph here holds the edges without those into the start, plus escalation jumps
//! (`then: { goto: X }`): a jump moves a branch like an edge does. For a fork `F`:
//!
//! 1. Its join `J`: each branch is walked from one of `F`'s out-edges up to the first joins it
//!    can reach (an `end` stops a walk: it ends the whole cycle; a nested fork is jumped over to
//!    its own join). `J` is the join every branch reaches (the nearest one when several are).
//! 2. Its block: every node reachable from `F`'s out-edges without passing `F` or `J`, stopping
//!    at `end` nodes. Each node of the block must be strictly dominated by `F` (petgraph's
//!    forward dominators from the start): otherwise something outside reaches it without
//!    passing the fork, a branch jumped out of the block or a path from outside jumped in.
//!    No node of the block may follow `J` (be reachable from `J` without passing `F`): that is
//!    a loop from after the join back into a branch, or a branch that skips its join. Inside
//!    the block, no edge goes back to the start or to `F`, the only joins are those of nested
//!    forks, and `J` is reached from the block or `F` only.
//! 3. Its branches stay apart: the walks of step 1 (with nested forks jumped over) share no
//!    node before `J`.
//!
//! Loops around a whole fork (from after `J` back to `F` or before it) are allowed: the fork
//! runs again.
//!
//! Forks are resolved innermost first (deepest in the dominator tree first): a nested fork lies
//! in the block of its outer fork, so it is strictly dominated by it. No step recurses, so deep
//! nesting cannot overflow the stack.

use std::collections::{BTreeSet, HashMap, VecDeque};

use indexmap::IndexMap;
use petgraph::algo::dominators::{Dominators, simple_fast};
use petgraph::graph::{DiGraph, NodeIndex};

use super::graph::Topology;
use super::{Cx, node_path, root};
use crate::checked::Fork;
use crate::diagnostic::{Code, Diagnostic, Location};
use crate::id::NodeId;
use crate::spec::NodeKind;

/// Checks every fork and join; returns each resolved fork with its join and block, in spec
/// order (forks whose rules failed are left out).
pub(super) fn check(cx: &mut Cx<'_>) -> IndexMap<NodeId, Fork> {
    let spec = cx.spec;
    let forks: Vec<usize> =
        spec.nodes.values().enumerate().filter(|(_, n)| n.kind == NodeKind::Parallel).map(|(i, _)| i).collect();
    let joins: Vec<usize> =
        spec.nodes.values().enumerate().filter(|(_, n)| n.kind == NodeKind::Join).map(|(i, _)| i).collect();
    if forks.is_empty() && joins.is_empty() {
        return IndexMap::new();
    }
    let topo = Topology::of(spec);
    let Some(start) = topo.start else { return IndexMap::new() };
    let mut shape = Shape::new(cx, &topo, start);
    // Innermost first: a nested fork lies deeper in the dominator tree than the fork whose
    // block holds it, so it is resolved when the outer walk meets it, without recursion.
    let depth = shape.depths();
    let mut order = forks.clone();
    order.sort_by_key(|&f| std::cmp::Reverse(depth.get(f).copied().flatten()));
    for f in order {
        shape.resolve(cx, f);
    }
    shape.orphans(cx, &joins);
    let mut out = IndexMap::new();
    for &f in &forks {
        if let Some(Some(block)) = shape.memo.get(&f)
            && let (Some((id, _)), Some((join, _))) = (spec.nodes.get_index(f), spec.nodes.get_index(block.join))
        {
            let inside =
                block.inside.iter().filter_map(|&v| spec.nodes.get_index(v).map(|(id, _)| id.clone())).collect();
            out.insert(id.clone(), Fork { join: join.clone(), inside });
        }
    }
    out
}

/// A resolved fork: its join and the nodes of its block (nested blocks included), in spec order.
struct Block {
    join: usize,
    inside: Vec<usize>,
}

/// The graph as the fork rules see it.
struct Shape {
    kinds: Vec<NodeKind>,
    /// Successors: edges not into the start, and escalation jumps; no duplicates.
    succ: Vec<Vec<usize>>,
    /// Predecessors along `succ`.
    pred: Vec<Vec<usize>>,
    /// Nodes with an edge into the start (the edge ends the cycle).
    to_start: Vec<bool>,
    start: usize,
    dominators: Dominators<NodeIndex>,
    /// Dominator-tree intervals (see [`Shape::intervals`]); `None` for unreachable nodes.
    interval: Vec<Option<(usize, usize)>>,
    /// Each resolved fork's block, or `None` when a rule failed (already reported).
    memo: HashMap<usize, Option<Block>>,
}

impl Shape {
    fn new(cx: &Cx<'_>, topo: &Topology, start: usize) -> Self {
        let n = cx.spec.nodes.len();
        let kinds = cx.spec.nodes.values().map(|node| node.kind).collect();
        let mut succ = vec![Vec::new(); n];
        let mut to_start = vec![false; n];
        let flow = topo.edges.iter().map(|&(f, t, _)| (f, t)).chain(topo.gotos.iter().copied());
        for (f, t) in flow {
            if t == start {
                if let Some(x) = to_start.get_mut(f) {
                    *x = true;
                }
            } else if let Some(list) = succ.get_mut(f)
                && !list.contains(&t)
            {
                list.push(t);
            }
        }
        let mut pred = vec![Vec::new(); n];
        let mut graph: DiGraph<(), ()> = DiGraph::with_capacity(n, 0);
        for _ in 0..n {
            graph.add_node(());
        }
        for (f, list) in succ.iter().enumerate() {
            for &t in list {
                graph.add_edge(NodeIndex::new(f), NodeIndex::new(t), ());
                if let Some(p) = pred.get_mut(t) {
                    p.push(f);
                }
            }
        }
        let dominators = simple_fast(&graph, NodeIndex::new(start));
        let interval = Self::intervals(&dominators, n, start);
        Self { kinds, succ, pred, to_start, start, dominators, interval, memo: HashMap::new() }
    }

    fn kind(&self, v: usize) -> Option<NodeKind> {
        self.kinds.get(v).copied()
    }

    fn successors(&self, v: usize) -> &[usize] {
        self.succ.get(v).map_or(&[], Vec::as_slice)
    }

    /// Whether every path from the start to `v` passes `f`, and `v` is not `f`. Nodes the start
    /// does not reach (reported elsewhere) count as dominated, so they add nothing here.
    fn strictly_dominated(&self, f: usize, v: usize) -> bool {
        match (self.interval.get(f).copied().flatten(), self.interval.get(v).copied().flatten()) {
            (Some((f_in, f_out)), Some((v_in, v_out))) => f_in < v_in && v_out < f_out,
            (_, None) => v != f,
            (None, Some(_)) => false,
        }
    }

    /// The entry and exit numbers of each node in a depth-first walk of the dominator tree:
    /// `f` strictly dominates `v` when `v`'s interval lies inside `f`'s. Iterative.
    fn intervals(dominators: &Dominators<NodeIndex>, n: usize, start: usize) -> Vec<Option<(usize, usize)>> {
        let mut children = vec![Vec::new(); n];
        for v in 0..n {
            if let Some(up) = dominators.immediate_dominator(NodeIndex::new(v))
                && let Some(list) = children.get_mut(up.index())
            {
                list.push(v);
            }
        }
        let mut interval = vec![None; n];
        let mut clock = 0;
        let mut stack = vec![(start, 0usize)];
        let mut entered = vec![0; n];
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if *next == 0 {
                if let Some(e) = entered.get_mut(v) {
                    *e = clock;
                }
                clock += 1;
            }
            match children.get(v).and_then(|c| c.get(*next)).copied() {
                Some(child) => {
                    *next += 1;
                    stack.push((child, 0));
                }
                None => {
                    if let Some(slot) = interval.get_mut(v) {
                        *slot = Some((entered.get(v).copied().unwrap_or(0), clock));
                    }
                    clock += 1;
                    stack.pop();
                }
            }
        }
        interval
    }

    /// Resolves (and reports) fork `f` once.
    fn resolve(&mut self, cx: &mut Cx<'_>, f: usize) {
        if self.memo.contains_key(&f) {
            return;
        }
        let block = self.block(cx, f);
        self.memo.insert(f, block);
    }

    /// The join of fork `f` when it is resolved and valid. A fork not resolved yet is not
    /// nested in the one being resolved (nested forks come first), so it counts as invalid.
    fn join_of(&self, f: usize) -> Option<usize> {
        match self.memo.get(&f) {
            Some(Some(block)) => Some(block.join),
            _ => None,
        }
    }

    /// Each node's depth in the dominator tree (the start is 0); `None` when unreachable.
    /// Iterative: climbs to the nearest known depth and fills the path on the way back.
    fn depths(&self) -> Vec<Option<usize>> {
        let n = self.kinds.len();
        let mut depth: Vec<Option<usize>> = vec![None; n];
        if let Some(d) = depth.get_mut(self.start) {
            *d = Some(0);
        }
        for v in 0..n {
            let mut path = Vec::new();
            let mut at = v;
            let base = loop {
                if let Some(d) = depth.get(at).copied().flatten() {
                    break Some(d);
                }
                match self.dominators.immediate_dominator(NodeIndex::new(at)) {
                    Some(up) if path.len() <= n => {
                        path.push(at);
                        at = up.index();
                    }
                    _ => break None,
                }
            };
            if let Some(base) = base {
                for (i, &p) in path.iter().rev().enumerate() {
                    if let Some(d) = depth.get_mut(p) {
                        *d = Some(base + i + 1);
                    }
                }
            }
        }
        depth
    }

    /// Whether `f` is reachable from the start at all (unreachable forks are reported elsewhere).
    fn reached(&self, f: usize) -> bool {
        f == self.start || self.dominators.immediate_dominator(NodeIndex::new(f)).is_some()
    }

    fn block(&self, cx: &mut Cx<'_>, f: usize) -> Option<Block> {
        if self.to_start.get(f).copied().unwrap_or(false) {
            let fork = name(cx, f);
            cx.push(
                Diagnostic::error(Code::BranchLeavesBlock, format!("a branch of fork `{fork}` goes back to the start"))
                    .at_key(node_path_of(cx, f))
                    .with_label(edge_location(cx, f, self.start), "this branch ends the cycle at once")
                    .help("a branch ends the cycle at an `end` node, or goes on through the join"),
            );
            return None;
        }
        let branches = self.successors(f).to_vec();
        if branches.len() < 2 || !self.reached(f) {
            // Too few branches (K0216), duplicate edges (K0210) and unreachable forks (K0204)
            // are reported by the graph rules.
            return None;
        }
        // 1. The walks of the branches up to their first joins.
        let walks: Vec<Walk> = branches.iter().map(|&s| self.walk(f, s, None)).collect();
        let join = self.pick_join(cx, f, &branches, &walks)?;
        // 2. The block.
        let (inside, parent) = self.inside(f, join);
        let mut ok = self.block_rules(cx, f, join, &inside, &parent);
        // 3. The branches stay apart.
        let walks: Vec<Walk> = branches.iter().map(|&s| self.walk(f, s, Some(join))).collect();
        ok &= self.apart(cx, f, join, &walks);
        ok.then(|| Block { join, inside: inside.into_iter().collect() })
    }

    /// Walks one branch from `s`: stops at joins (other than the joins of nested forks, which
    /// it jumps to), `end` nodes, `f` and `stop`. Returns what it visited and the joins it met.
    fn walk(&self, f: usize, s: usize, stop: Option<usize>) -> Walk {
        let mut walk = Walk { parent: HashMap::new(), order: Vec::new(), joins: Vec::new() };
        let mut queue = VecDeque::from([s]);
        walk.parent.insert(s, f);
        while let Some(v) = queue.pop_front() {
            if v == f || Some(v) == stop {
                continue;
            }
            walk.order.push(v);
            let next: Vec<usize> = match self.kind(v) {
                Some(NodeKind::Join) => {
                    walk.joins.push(v);
                    continue;
                }
                Some(NodeKind::End) => continue,
                Some(NodeKind::Parallel) => match self.join_of(v) {
                    Some(inner) => {
                        if walk.parent.contains_key(&inner) {
                            continue;
                        }
                        walk.parent.insert(inner, v);
                        walk.order.push(inner);
                        self.successors(inner).to_vec()
                    }
                    None => continue,
                },
                _ => self.successors(v).to_vec(),
            };
            for w in next {
                if let std::collections::hash_map::Entry::Vacant(e) = walk.parent.entry(w) {
                    e.insert(v);
                    queue.push_back(w);
                }
            }
        }
        walk
    }

    /// The join every branch reaches; reports when there is none.
    fn pick_join(&self, cx: &mut Cx<'_>, f: usize, branches: &[usize], walks: &[Walk]) -> Option<usize> {
        let fork = name(cx, f);
        let common: Vec<usize> = walks
            .first()
            .map(|w| w.joins.iter().copied().filter(|j| walks.iter().all(|other| other.joins.contains(j))).collect())
            .unwrap_or_default();
        // The walk is breadth first: the first common join of the first branch is the nearest.
        if let Some(&join) = common.first() {
            return Some(join);
        }
        let mut d = if walks.iter().all(|w| w.joins.is_empty()) {
            Diagnostic::error(Code::ForkWithoutJoin, format!("the branches of fork `{fork}` never reach a join"))
                .at_key(node_path_of(cx, f))
                .label("its branches start here")
        } else {
            Diagnostic::error(Code::ForkWithoutJoin, format!("the branches of fork `{fork}` do not all reach one join"))
                .at_key(node_path_of(cx, f))
                .label("its branches start here")
        };
        for (&s, walk) in branches.iter().zip(walks) {
            let at = edge_location(cx, f, s);
            let text = match walk.joins.as_slice() {
                [] => format!("the branch to `{}` reaches no join", name(cx, s)),
                joins => format!(
                    "the branch to `{}` reaches {}",
                    name(cx, s),
                    joins
                        .iter()
                        .map(|&j| format!("`{}` (`{}`)", name(cx, j), render_path(cx, &walk.path_to(j))))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            };
            d = d.with_label(at, text);
        }
        cx.push(d.help(format!(
            "lead every branch of `{fork}` to one node of `kind: join`; a branch may also stop at an `end` node"
        )));
        None
    }

    /// The block of `f` with join `join`: every node reachable from `f`'s out-edges without
    /// passing `f` or `join`, `end` nodes excluded; with the BFS parent of each.
    fn inside(&self, f: usize, join: usize) -> (BTreeSet<usize>, HashMap<usize, usize>) {
        let mut inside = BTreeSet::new();
        let mut parent = HashMap::new();
        let mut queue: VecDeque<usize> = VecDeque::new();
        for &s in self.successors(f) {
            if s != join && s != f && parent.insert(s, f).is_none() {
                queue.push_back(s);
            }
        }
        while let Some(v) = queue.pop_front() {
            if self.kind(v) == Some(NodeKind::End) {
                continue;
            }
            inside.insert(v);
            for &w in self.successors(v) {
                if w != join && w != f && !parent.contains_key(&w) {
                    parent.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        (inside, parent)
    }

    /// The nodes reachable from `from`'s successors without passing `f`, with BFS parents.
    fn after(&self, f: usize, from: usize) -> HashMap<usize, usize> {
        let mut parent = HashMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(v) = queue.pop_front() {
            for &w in self.successors(v) {
                if w != f && w != from && !parent.contains_key(&w) {
                    parent.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        parent
    }

    /// Step 2 of the module docs; returns whether every rule held.
    fn block_rules(
        &self,
        cx: &mut Cx<'_>,
        f: usize,
        join: usize,
        inside: &BTreeSet<usize>,
        parent: &HashMap<usize, usize>,
    ) -> bool {
        let fork = name(cx, f);
        let join_name = name(cx, join);
        let into = |cx: &Cx<'_>, v: usize| render_path(cx, &path_from(parent, f, v));
        let mut ok = true;
        let follows = self.after(f, join);
        // The joins of nested forks whose fork is inside this block.
        let mut nested = BTreeSet::new();
        for &v in inside {
            if self.kind(v) == Some(NodeKind::Parallel)
                && let Some(j) = self.join_of(v)
            {
                nested.insert(j);
            }
        }
        for &v in inside {
            let here = name(cx, v);
            let dominated = self.strictly_dominated(f, v);
            if !dominated {
                ok = false;
                let outside = self.outside_path(f, v);
                cx.push(
                    Diagnostic::error(
                        Code::BranchLeavesBlock,
                        format!("`{here}` is inside the block of fork `{fork}` but is also reached without passing `{fork}`"),
                    )
                    .at_key(node_path_of(cx, v))
                    .label(format!("a branch reaches it: `{}`", into(cx, v)))
                    .with_label(Location::key(node_path_of(cx, self.start)), format!("and so does `{}`", render_path(cx, &outside)))
                    .help(format!(
                        "a branch leaves its block only through its join `{join_name}` or an `end` node, and nothing enters it but `{fork}`"
                    )),
                );
            } else if follows.contains_key(&v) {
                ok = false;
                let after = path_from(&follows, join, v);
                cx.push(
                    Diagnostic::error(
                        Code::LoopAcrossJoin,
                        format!("`{here}` is inside the block of fork `{fork}` and also follows its join `{join_name}`"),
                    )
                    .at_key(node_path_of(cx, v))
                    .label(format!("inside: `{}`; after the join: `{}`", into(cx, v), render_path(cx, &after)))
                    .help(format!(
                        "a loop may not cross the join: loop back to `{fork}` or before it to run the whole fork again, or loop inside one branch"
                    )),
                );
            }
            if self.to_start.get(v).copied().unwrap_or(false) {
                ok = false;
                cx.push(
                    Diagnostic::error(
                        Code::BranchLeavesBlock,
                        format!("a branch of fork `{fork}` goes back to the start from `{here}`"),
                    )
                    .at_key(node_path_of(cx, v))
                    .label(format!("the branch: `{}`", into(cx, v)))
                    .help(format!(
                        "a branch ends the cycle at an `end` node, or goes on through the join `{join_name}`"
                    )),
                );
            }
            if dominated && self.successors(v).contains(&f) {
                ok = false;
                cx.push(
                    Diagnostic::error(
                        Code::BranchLeavesBlock,
                        format!("a branch of fork `{fork}` leads back to `{fork}`"),
                    )
                    .at_key(node_path_of(cx, v))
                    .label(format!("the loop: `{} -> {fork}`", into(cx, v)))
                    .help("loop inside one branch, or from after the join back to the fork to run it again"),
                );
            }
            if self.kind(v) == Some(NodeKind::Join) && !nested.contains(&v) {
                ok = false;
                cx.push(
                    Diagnostic::error(
                        Code::BranchLeavesBlock,
                        format!(
                            "a branch of fork `{fork}` reaches the join `{here}`, which is not its join `{join_name}`"
                        ),
                    )
                    .at_key(node_path_of(cx, v))
                    .label(format!("the branch: `{}`", into(cx, v)))
                    .help(format!("lead the branch to `{join_name}`, or end it at an `end` node")),
                );
            }
        }
        for &p in self.pred.get(join).map_or(&[][..], Vec::as_slice) {
            if p != f && !inside.contains(&p) {
                ok = false;
                let from = name(cx, p);
                cx.push(
                    Diagnostic::error(
                        Code::BranchLeavesBlock,
                        format!(
                            "the join `{join_name}` of fork `{fork}` is also reached from `{from}`, outside its block"
                        ),
                    )
                    .at(edge_location(cx, p, join))
                    .help(format!("only the branches of `{fork}` lead to `{join_name}`")),
                );
            }
        }
        ok
    }

    /// Step 3: no node is on two branches. Returns whether it held.
    fn apart(&self, cx: &mut Cx<'_>, f: usize, join: usize, walks: &[Walk]) -> bool {
        let fork = name(cx, f);
        let mut owner: HashMap<usize, usize> = HashMap::new();
        let mut reported = BTreeSet::new();
        for (b, walk) in walks.iter().enumerate() {
            for &v in &walk.order {
                if v == join || self.kind(v) == Some(NodeKind::End) {
                    continue;
                }
                match owner.get(&v) {
                    Some(&a) if a != b => {
                        if !reported.insert(v) {
                            continue;
                        }
                        let first = walks.get(a).map(|w| render_path(cx, &w.path_to(v))).unwrap_or_default();
                        let second = render_path(cx, &walk.path_to(v));
                        let here = name(cx, v);
                        cx.push(
                            Diagnostic::error(
                                Code::BranchesMeet,
                                format!(
                                    "two branches of fork `{fork}` meet at `{here}` before their join `{}`",
                                    name(cx, join)
                                ),
                            )
                            .at_key(node_path_of(cx, v))
                            .label(format!("`{first}` and `{second}`"))
                            .help(format!(
                                "each branch runs apart until the join: make `{here}` a `join`, or give each branch its own node"
                            )),
                        );
                    }
                    Some(_) => {}
                    None => {
                        owner.insert(v, b);
                    }
                }
            }
        }
        reported.is_empty()
    }

    /// A shortest path from the start to `v` that does not pass `f`.
    fn outside_path(&self, f: usize, v: usize) -> Vec<usize> {
        let mut parent = HashMap::new();
        let mut queue = VecDeque::from([self.start]);
        while let Some(u) = queue.pop_front() {
            if u == v {
                break;
            }
            for &w in self.successors(u) {
                if w != f && w != self.start && !parent.contains_key(&w) {
                    parent.insert(w, u);
                    queue.push_back(w);
                }
            }
        }
        path_from(&parent, self.start, v)
    }

    /// Joins that no fork resolved to, and joins several forks resolved to.
    fn orphans(&self, cx: &mut Cx<'_>, joins: &[usize]) {
        let mut claimed: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut failed = false;
        for (&f, resolution) in &self.memo {
            match resolution {
                Some(block) => claimed.entry(block.join).or_default().push(f),
                _ => failed = true,
            }
        }
        for &j in joins {
            let here = name(cx, j);
            match claimed.get_mut(&j).map(|forks| {
                forks.sort_unstable();
                forks.as_slice()
            }) {
                None if !failed && self.reached(j) => cx.push(
                    Diagnostic::error(Code::JoinWithoutFork, format!("join `{here}` is the join of no fork"))
                        .at_key(node_path_of(cx, j))
                        .label("no `parallel` node's branches meet here")
                        .help("make it a `wait` (or another kind), or start its branches at a `parallel` node"),
                ),
                Some([first, second, ..]) => {
                    let (a, b) = (name(cx, *first), name(cx, *second));
                    cx.push(
                        Diagnostic::error(
                            Code::JoinWithoutFork,
                            format!("join `{here}` is the join of both fork `{a}` and fork `{b}`"),
                        )
                        .at_key(node_path_of(cx, j))
                        .help("a nested fork needs its own join inside the branch that starts it"),
                    );
                }
                _ => {}
            }
        }
    }
}

/// One branch's walk.
struct Walk {
    /// The BFS parent of each visited node (the fork for the branch's first node).
    parent: HashMap<usize, usize>,
    /// The visited nodes, in BFS order.
    order: Vec<usize>,
    /// The joins met, in BFS order.
    joins: Vec<usize>,
}

impl Walk {
    /// The path from the fork to `v`.
    fn path_to(&self, v: usize) -> Vec<usize> {
        let mut path = vec![v];
        let mut at = v;
        while let Some(&p) = self.parent.get(&at) {
            path.push(p);
            if !self.parent.contains_key(&p) || path.len() > self.parent.len() + 1 {
                break;
            }
            at = p;
        }
        path.reverse();
        path
    }
}

/// The path from `from` to `v` along BFS parents.
fn path_from(parent: &HashMap<usize, usize>, from: usize, v: usize) -> Vec<usize> {
    let mut path = vec![v];
    let mut at = v;
    while at != from {
        match parent.get(&at) {
            Some(&p) if path.len() <= parent.len() + 1 => {
                path.push(p);
                at = p;
            }
            _ => break,
        }
    }
    path.reverse();
    path
}

fn name<'s>(cx: &Cx<'s>, i: usize) -> &'s str {
    cx.spec.nodes.get_index(i).map(|(id, _)| id.as_str()).unwrap_or("?")
}

fn node_path_of(cx: &Cx<'_>, i: usize) -> crate::diagnostic::Path {
    cx.spec.nodes.get_index(i).map_or_else(|| root().key("nodes"), |(id, _)| node_path(id))
}

fn render_path(cx: &Cx<'_>, path: &[usize]) -> String {
    path.iter().map(|&i| name(cx, i)).collect::<Vec<_>>().join(" -> ")
}

/// The first edge from `from` to `to`, or the node `from` when the step is an escalation jump.
fn edge_location(cx: &Cx<'_>, from: usize, to: usize) -> Location {
    let (f, t) = (name(cx, from), name(cx, to));
    match cx.spec.edges.iter().position(|e| e.from.as_str() == f && e.to.as_str() == t) {
        Some(i) => Location::path(root().key("edges").index(i)),
        None => Location::key(node_path_of(cx, from)),
    }
}
