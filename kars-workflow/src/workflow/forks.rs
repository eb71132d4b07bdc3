//! Parallel blocks: which branch region every node lies in and each fork's join, computed once
//! at compile time from the block structure (a spec without `parallel` nodes gets empty tables).
//!
//! A region is the part of the graph one branch of one fork runs through; region 0 is the top
//! level, outside every fork. A `parallel` node lies in the region around its block, each of
//! its out-edges opens a region of its own, and the join its branches meet at lies in the
//! region around the block again. A node reached from two regions breaks the structure: a
//! branch would leave its block other than through its join or an `end` (which any branch,
//! and the level around, may share).

use kars_spec::spec::{JoinRule, NodeKind};

use super::{CompiledDeadline, CompiledNode, CompiledRetry, Jump, NodeIndex, OutEdge};
use crate::error::CompileError;

/// The region outside every fork.
pub(crate) const TOP: u16 = 0;
/// `Region::fork` of the top region.
const NO_FORK: u16 = u16::MAX;

/// One `parallel` node and the join its branches meet at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CompiledFork {
    /// The `parallel` node.
    pub(crate) node: NodeIndex,
    /// The `join` node.
    pub(crate) join: NodeIndex,
    /// How many branches start (the parallel node's out-edges).
    pub(crate) branches: u16,
    /// When the join passes on.
    pub(crate) rule: JoinRule,
}

/// One branch region: inside `parent`, opened by fork `fork`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    pub(crate) parent: u16,
    pub(crate) fork: u16,
}

/// The block structure of a workflow.
#[derive(Debug, Clone, Default)]
pub(crate) struct Blocks {
    pub(crate) forks: Vec<CompiledFork>,
    pub(crate) regions: Vec<Region>,
    /// Per node, its region; empty when the workflow has no forks.
    pub(crate) region_of: Box<[u16]>,
}

impl Blocks {
    /// The region `node` lies in (the top level for a workflow without forks).
    pub(crate) fn region(&self, node: NodeIndex) -> u16 {
        self.region_of.get(node.get()).copied().unwrap_or(TOP)
    }

    /// Whether region `inner` lies within region `outer` (or is it).
    pub(crate) fn within(&self, mut inner: u16, outer: u16) -> bool {
        // Regions are made parent first, so a walk up ends at the top in at most their count.
        for _ in 0..=self.regions.len() {
            if inner == outer {
                return true;
            }
            if inner == TOP {
                return false;
            }
            inner = self.regions.get(usize::from(inner)).map_or(TOP, |r| r.parent);
        }
        false
    }

    /// Whether `node` lies inside one of fork `fork`'s branches (at any depth).
    pub(crate) fn inside_fork(&self, node: NodeIndex, fork: u16) -> bool {
        let mut region = self.region(node);
        for _ in 0..=self.regions.len() {
            if region == TOP {
                return false;
            }
            let Some(r) = self.regions.get(usize::from(region)) else { return false };
            if r.fork == fork {
                return true;
            }
            region = r.parent;
        }
        false
    }

    /// The fork whose `parallel` node is `node`.
    pub(crate) fn fork_at(&self, node: NodeIndex) -> Option<u16> {
        self.forks.iter().position(|f| f.node == node).and_then(|i| u16::try_from(i).ok())
    }

    /// The fork whose join is `node`.
    pub(crate) fn fork_joined_at(&self, node: NodeIndex) -> Option<u16> {
        self.forks.iter().position(|f| f.join == node).and_then(|i| u16::try_from(i).ok())
    }
}

/// What the analysis reads of the compiled workflow.
pub(super) struct Graph<'a> {
    pub(super) nodes: &'a [CompiledNode],
    pub(super) edges: &'a [OutEdge],
    pub(super) start: NodeIndex,
    pub(super) start_id: &'a kars_spec::NodeId,
    pub(super) deadlines: &'a [CompiledDeadline],
    pub(super) retries: &'a [CompiledRetry],
    /// Per node, its `join:` rule.
    pub(super) rules: &'a [JoinRule],
}

impl Graph<'_> {
    fn kind(&self, node: NodeIndex) -> Option<NodeKind> {
        self.nodes.get(node.get()).map(|n| n.kind)
    }

    fn id(&self, node: NodeIndex) -> kars_spec::NodeId {
        // Indices come from the compiled tables; the start's id stands in for a bad one.
        self.nodes.get(node.get()).map_or_else(|| self.start_id.clone(), |n| n.id.clone())
    }

    fn out(&self, node: NodeIndex) -> &[OutEdge] {
        let Some(n) = self.nodes.get(node.get()) else { return &[] };
        let start = n.out_start as usize;
        self.edges.get(start..start + usize::from(n.out_len)).unwrap_or(&[])
    }

    /// Where the escalations of `node` (its deadline, its retry bound) jump to.
    fn gotos(&self, node: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        let compiled = self.nodes.get(node.get());
        let deadline = compiled.and_then(|n| n.deadline).and_then(|d| self.deadlines.get(usize::from(d)));
        let retry = compiled.and_then(|n| n.retry).and_then(|r| self.retries.get(usize::from(r)));
        let jumps = [deadline.map(|d| d.escalation.then), retry.map(|r| r.escalation.then)];
        jumps.into_iter().flatten().filter_map(|j| match j {
            Jump::Goto(to) => Some(to),
            Jump::Stay | Jump::End(_) => None,
        })
    }
}

/// The block structure of `graph`, or why it is not one.
pub(super) fn analyse(graph: &Graph<'_>) -> Result<Blocks, CompileError> {
    let forking = graph.nodes.iter().any(|n| matches!(n.kind, NodeKind::Parallel | NodeKind::Join));
    if !forking {
        return Ok(Blocks::default());
    }
    let mut region: Vec<Option<u16>> = vec![None; graph.nodes.len()];
    let mut regions = vec![Region { parent: TOP, fork: NO_FORK }];
    let mut forks: Vec<(NodeIndex, Option<NodeIndex>, u16)> = Vec::new();
    let mut stack = vec![graph.start];
    if let Some(r) = region.get_mut(graph.start.get()) {
        *r = Some(TOP);
    }
    let too_many = |what| CompileError::TooMany { what, max: 65_534 };
    while let Some(u) = stack.pop() {
        let here = region.get(u.get()).copied().flatten().unwrap_or(TOP);
        let mut targets: Vec<(NodeIndex, u16)> = Vec::new();
        if graph.kind(u) == Some(NodeKind::Parallel) {
            let fork = u16::try_from(forks.len()).map_err(|_| too_many("parallel nodes"))?;
            let out = graph.out(u);
            forks.push((u, None, u16::try_from(out.len()).map_err(|_| too_many("branches"))?));
            for edge in out {
                let opened = u16::try_from(regions.len()).map_err(|_| too_many("branches"))?;
                regions.push(Region { parent: here, fork });
                targets.push((edge.to, opened));
            }
        } else {
            targets.extend(graph.out(u).iter().map(|e| (e.to, here)));
        }
        for to in graph.gotos(u) {
            if graph.kind(to) == Some(NodeKind::Join) {
                return Err(CompileError::LeavesBranch { node: graph.id(to) });
            }
            targets.push((to, here));
        }
        for (v, from) in targets {
            // A back edge to the start ends the cycle, from any branch (as an `end` does).
            if v == graph.start {
                continue;
            }
            let into = if graph.kind(v) == Some(NodeKind::Join) {
                let Some(r) = regions.get(usize::from(from)).filter(|_| from != TOP).copied() else {
                    return Err(CompileError::JoinOutsideFork { join: graph.id(v) });
                };
                let Some(fork) = forks.get_mut(usize::from(r.fork)) else {
                    return Err(CompileError::JoinOutsideFork { join: graph.id(v) });
                };
                match fork.1 {
                    None => fork.1 = Some(v),
                    Some(j) if j == v => {}
                    Some(j) => {
                        return Err(CompileError::TwoJoins {
                            fork: graph.id(fork.0),
                            first: graph.id(j),
                            second: graph.id(v),
                        });
                    }
                }
                r.parent
            } else {
                from
            };
            match region.get_mut(v.get()) {
                Some(slot @ None) => {
                    *slot = Some(into);
                    stack.push(v);
                }
                Some(Some(r)) if *r == into => {}
                // An `end` ends the whole cycle from wherever it is reached: several branches
                // (and the level around them) may share one. It keeps its first region, which
                // nothing reads: a token never waits at an end.
                Some(Some(_)) if graph.kind(v) == Some(NodeKind::End) => {}
                _ => return Err(CompileError::LeavesBranch { node: graph.id(v) }),
            }
        }
    }
    let mut compiled = Vec::with_capacity(forks.len());
    for (node, join, branches) in forks {
        let Some(join) = join else {
            return Err(CompileError::ForkWithoutJoin { fork: graph.id(node) });
        };
        if compiled.iter().any(|f: &CompiledFork| f.join == join) {
            return Err(CompileError::LeavesBranch { node: graph.id(join) });
        }
        let rule = graph.rules.get(join.get()).copied().unwrap_or_default();
        compiled.push(CompiledFork { node, join, branches, rule });
    }
    // Nodes the start never reaches (validation reports them) count as top level.
    let region_of = region.into_iter().map(|r| r.unwrap_or(TOP)).collect();
    Ok(Blocks { forks: compiled, regions, region_of })
}
