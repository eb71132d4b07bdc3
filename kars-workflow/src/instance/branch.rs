//! Parallel branches: a `parallel` node starts one token per out-edge, a join counts them in,
//! and a cycle's end or a `join: first` cancels the ones still running (each cancellation
//! recorded in the history).
//!
//! The transitions in `step.rs` move one token, the one in [`State::token`]; while branches
//! run, the branch being moved is taken out of [`State::branches`] into it ("focused") and
//! parked again when it waits. Branches a fork started that have not run yet wait in a
//! `pending` stack that lives only while one input is handled.
//!
//! [`State::token`]: super::State
//! [`State::branches`]: super::State

use chrono::{DateTime, Utc};

use super::Instance;
use super::state::{Branches, Phase, Token};
use super::step::Next;
use crate::effect::NoticeKind;
use crate::history::{BranchEvent, CancelReason};
use crate::workflow::{NodeIndex, Workflow};

/// Which tokens a cancellation reaches.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scope {
    /// Every branch (the cycle ends).
    All,
    /// The branches of one fork, at any depth.
    Fork(u16),
    /// The tokens in one branch region, at any depth (an escalation's jump).
    Region(u16),
}

impl Instance {
    /// A `parallel` node completed: its token becomes one branch per out-edge. The first
    /// branch runs now, the others are pushed on `pending` to run in edge order.
    pub(super) fn fork(
        &mut self,
        workflow: &Workflow,
        node: NodeIndex,
        pending: &mut Vec<NodeIndex>,
        at: DateTime<Utc>,
    ) -> Next {
        let edges = workflow.out_edges(node);
        let (Some(fork), Some(first)) = (workflow.blocks.fork_at(node), edges.first()) else {
            // `compile` gives every parallel node a fork and an out-edge.
            debug_assert!(false, "a parallel node without its fork");
            return Next::Wait;
        };
        let forks = workflow.blocks.forks.len();
        let branches = self.state.branches.get_or_insert_with(|| Branches::new(forks));
        if let Some(n) = branches.arrived.get_mut(usize::from(fork)) {
            *n = 0;
        }
        // The token that reached the fork is used up; its branches take over.
        self.state.token = Token::Branches;
        pending.extend(edges.iter().skip(1).rev().map(|e| e.to));
        for edge in edges {
            self.log_branch(BranchEvent::Started { fork: node, node: edge.to });
            self.notice(at, NoticeKind::BranchStarted { node: edge.to });
        }
        Next::Enter(first.to)
    }

    /// A branch arrived at `join`. It waits there (as a count) until its fork's rule lets the
    /// join pass on; then the token that passes on enters the join.
    pub(super) fn join(
        &mut self,
        workflow: &Workflow,
        join: NodeIndex,
        pending: &mut Vec<NodeIndex>,
        at: DateTime<Utc>,
    ) -> Next {
        let (Some(fork), Some(branches)) = (workflow.blocks.fork_joined_at(join), self.state.branches.as_mut()) else {
            // No fork runs: the join is an ordinary node (a state restored or upgraded here).
            return Next::Pass(join);
        };
        let Some(compiled) = workflow.blocks.forks.get(usize::from(fork)).copied() else {
            return Next::Pass(join);
        };
        self.state.token = Token::Branches;
        let Some(arrived) = branches.arrived.get_mut(usize::from(fork)) else {
            return Next::Pass(join);
        };
        *arrived += 1;
        match compiled.rule {
            kars_spec::spec::JoinRule::All if *arrived < compiled.branches => {
                self.log_branch(BranchEvent::Arrived { join });
                return Next::Wait;
            }
            kars_spec::spec::JoinRule::All => *arrived = 0,
            kars_spec::spec::JoinRule::First => {
                *arrived = 0;
                self.cancel(workflow, Scope::Fork(fork), CancelReason::JoinFirst { join }, pending, at);
            }
        }
        self.log_branch(BranchEvent::Joined { join });
        self.notice(at, NoticeKind::Joined { node: join });
        self.collapse(pending);
        Next::Pass(join)
    }

    /// Cancels the tokens (at rest and pending) that `scope` reaches, recording each, and
    /// resets the join counts of the forks inside it.
    pub(super) fn cancel(
        &mut self,
        workflow: &Workflow,
        scope: Scope,
        reason: CancelReason,
        pending: &mut Vec<NodeIndex>,
        at: DateTime<Utc>,
    ) {
        let blocks = &workflow.blocks;
        let reached = |node: NodeIndex| match scope {
            Scope::All => true,
            Scope::Fork(fork) => blocks.inside_fork(node, fork),
            Scope::Region(region) => blocks.within(blocks.region(node), region),
        };
        let Some(branches) = self.state.branches.as_mut() else { return };
        let mut cancelled: Vec<NodeIndex> = Vec::new();
        branches.live.retain(|l| {
            let hit = reached(l.node);
            if hit {
                cancelled.push(l.node);
            }
            !hit
        });
        // Pending branches were recorded as started: their cancellation is recorded too.
        pending.retain(|&node| {
            let hit = reached(node);
            if hit {
                cancelled.push(node);
            }
            !hit
        });
        for (f, n) in blocks.forks.iter().zip(branches.arrived.iter_mut()) {
            if reached(f.node) {
                *n = 0;
            }
        }
        for node in cancelled {
            self.log_branch(BranchEvent::Cancelled { node, reason });
            self.notice(at, NoticeKind::BranchCancelled { node });
        }
    }

    /// Drops the branch box once nothing runs in parallel any more: no token at rest, none
    /// pending and no join half-counted. The focused token then is the instance's one token.
    pub(super) fn collapse(&mut self, pending: &[NodeIndex]) {
        let idle = self.state.branches.as_ref().is_some_and(|b| b.live.is_empty() && b.arrived.iter().all(|&n| n == 0));
        if idle && pending.is_empty() {
            self.state.branches = None;
        }
    }

    /// The focused branch waits: it goes back into the box. Returns the next pending branch
    /// to run, if any.
    pub(super) fn park(&mut self, pending: &mut Vec<NodeIndex>) -> Option<NodeIndex> {
        let branches = self.state.branches.as_mut()?;
        if let Token::At { node, phase } = self.state.token {
            branches.park(node, phase);
        }
        self.state.token = Token::Branches;
        pending.pop()
    }

    /// The step budget ran out while branches were pending: each stalls where it would start.
    pub(super) fn stall_pending(&mut self, pending: &mut Vec<NodeIndex>, at: DateTime<Utc>) {
        while let Some(node) = self.park(pending) {
            self.state.token = Token::At { node, phase: Phase::Stalled };
            self.notice(at, NoticeKind::Stalled { node });
        }
    }

    /// Takes the branch at `node` out of the box to move it; a no-op without branches.
    #[inline]
    pub(super) fn focus(&mut self, node: NodeIndex) {
        if let (Token::Branches, Some(branches)) = (self.state.token, self.state.branches.as_mut())
            && let Some(live) = branches.take(node)
        {
            self.state.token = Token::At { node: live.node, phase: live.phase };
        }
    }
}
