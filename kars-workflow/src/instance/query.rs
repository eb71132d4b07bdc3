//! Read-only questions: what the instance waits for ("why blocked?"), whether a merge may
//! happen now, and what the finished cycles looked like.

use std::fmt;

use chrono::{DateTime, Utc};
use kars_spec::{NodeId, RoleId, WindowId};
use serde::{Deserialize, Serialize};

use super::Instance;
use super::state::{Phase, Stamp, Token};
use crate::effect::ReleaseId;
use crate::event::MergeRequest;
use crate::gate::format_local;
use crate::policy::{Permission, merge_refusal, open_mask};
use crate::requirements::{self, MergeEvidence};
use crate::workflow::{CompiledAction, Decider, NodeIndex};
use kars_spec::spec::MergeRequirements;

/// What an instance waits for, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The running (or last) cycle's release.
    pub release: ReleaseId,
    /// The node the token is at; `None` between cycles.
    pub node: Option<NodeId>,
    /// What would move the token on.
    pub reason: WaitingFor,
    /// The current node's deadline, if it has one.
    pub deadline: Option<DeadlineView>,
    /// A window that pauses human work right now, if any.
    pub paused_by: Option<WindowId>,
    /// While parallel branches run: what each branch after the first (by node) waits for.
    /// `node`, `reason` and `deadline` above are the first branch's. Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<BranchWaiting>,
}

/// What one parallel branch waits for (see [`Waiting::branches`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchWaiting {
    /// The node the branch is at.
    pub node: NodeId,
    /// What would move it on.
    pub reason: WaitingFor,
    /// The node's deadline, if it has one.
    pub deadline: Option<DeadlineView>,
}

impl Waiting {
    /// Every waiting token's reason: the first branch's (or the one token's), then the other
    /// branches', by node.
    pub fn reasons(&self) -> impl Iterator<Item = &WaitingFor> {
        std::iter::once(&self.reason).chain(self.branches.iter().map(|b| &b.reason))
    }
}

/// What would move the token on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WaitingFor {
    /// A task completion by an actor with one of `roles`.
    Task {
        /// The task.
        node: NodeId,
        /// Roles that may complete it.
        roles: Vec<RoleId>,
        /// Outcomes the actor must choose from (empty: none asked).
        outcomes: Vec<String>,
    },
    /// A decision by an actor with `role`, picking one of `branches`.
    Decision {
        /// The decision.
        node: NodeId,
        /// The role that decides.
        role: RoleId,
        /// The branch labels.
        branches: Vec<String>,
    },
    /// A gate.
    Gate {
        /// The gated node.
        node: NodeId,
        /// When it opens.
        opens_at: DateTime<Utc>,
        /// The same instant in the workflow's zone.
        opens_local: String,
    },
    /// An action's result: from the host's adapter, or reported by a person.
    ActionResult {
        /// The action node.
        node: NodeId,
        /// The roles that may report it by hand (its `reported_by`, or the roles before it).
        reporters: Vec<RoleId>,
    },
    /// The next cycle.
    NextCycle {
        /// When it starts.
        starts_at: DateTime<Utc>,
        /// The same instant in the workflow's zone.
        starts_local: String,
    },
    /// Nothing can move the token: a decision found no branch for the recorded outcome, or
    /// automatic nodes looped without waiting. The next cycle does not start by itself.
    Stalled {
        /// The node.
        node: NodeId,
    },
}

/// A node's deadline as seen from [`Waiting`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineView {
    /// The instant.
    pub at: DateTime<Utc>,
    /// The same instant in the workflow's zone.
    pub local: String,
    /// Whether it already passed and escalated.
    pub missed: bool,
}

/// A finished cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleReport {
    /// The release.
    pub release: ReleaseId,
    /// How it ended (`released`, `slipped`, `incident`).
    pub outcome: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: DateTime<Utc>,
    /// How many deadlines it missed.
    pub deadline_misses: u16,
    /// How many times it entered retry-bounded nodes.
    pub retry_rounds: u16,
}

impl fmt::Display for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.release)?;
        write_reason(f, &self.reason)?;
        if let Some(d) = &self.deadline {
            write!(f, "; deadline {}{}", d.local, if d.missed { " (missed)" } else { "" })?;
        }
        for branch in &self.branches {
            f.write_str("; and ")?;
            write_reason(f, &branch.reason)?;
            if let Some(d) = &branch.deadline {
                write!(f, " (deadline {}{})", d.local, if d.missed { ", missed" } else { "" })?;
            }
        }
        if let Some(w) = &self.paused_by {
            write!(f, "; window `{w}` pauses work now")?;
        }
        Ok(())
    }
}

impl fmt::Display for WaitingFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_reason(f, self)
    }
}

/// One reason in words (`task `C` waits for one of the roles `team_lead``).
fn write_reason(f: &mut fmt::Formatter<'_>, reason: &WaitingFor) -> fmt::Result {
    let list = |items: &[String]| items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ");
    match reason {
        WaitingFor::Task { node, roles, outcomes } => {
            let roles: Vec<String> = roles.iter().map(ToString::to_string).collect();
            write!(f, "task `{node}` waits for one of the roles {}", list(&roles))?;
            if !outcomes.is_empty() {
                write!(f, " (outcome: {})", list(outcomes))?;
            }
            Ok(())
        }
        WaitingFor::Decision { node, role, branches } => {
            write!(f, "decision `{node}` waits for role `{role}` to pick {}", list(branches))
        }
        WaitingFor::Gate { node, opens_local, .. } => write!(f, "`{node}` waits for its gate at {opens_local}"),
        WaitingFor::ActionResult { node, .. } => write!(f, "action `{node}` waits for its result"),
        WaitingFor::NextCycle { starts_local, .. } => write!(f, "the next cycle starts at {starts_local}"),
        WaitingFor::Stalled { node } => write!(f, "`{node}` is stalled and cannot move on"),
    }
}

impl Instance {
    /// The release of the running (or last) cycle.
    #[must_use]
    pub fn release(&self) -> ReleaseId {
        self.release.clone()
    }

    /// How many cycles have started (the running one included).
    #[must_use]
    pub fn cycle(&self) -> u32 {
        self.state.cycle
    }

    /// The node the token is at (while parallel branches run, the first branch's, by node);
    /// `None` between cycles.
    #[must_use]
    pub fn current_node(&self) -> Option<&NodeId> {
        self.state.current().and_then(|n| self.workflow.node_id(n))
    }

    /// Every node a token is at, by node: one without parallel branches, none between cycles.
    #[must_use]
    pub fn current_nodes(&self) -> Vec<&NodeId> {
        self.state.tokens().filter_map(|(n, _)| self.workflow.node_id(n)).collect()
    }

    /// Whether a token (of any branch) is at `node`.
    #[must_use]
    pub fn is_at(&self, node: NodeIndex) -> bool {
        self.state.token_at(node).is_some()
    }

    /// The nodes entered in the running (or last) cycle, in spec order: for the mermaid overlay.
    #[must_use]
    pub fn visited_this_cycle(&self) -> Vec<&NodeId> {
        self.workflow
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| self.state.nodes().get(*i).is_some_and(|v| *v != 0))
            .map(|(_, n)| &n.id)
            .collect()
    }

    /// How many times `node` was entered in the running (or last) cycle.
    #[must_use]
    pub fn visits(&self, node: NodeIndex) -> u16 {
        self.state.visits(node)
    }

    /// Every finished cycle, oldest first.
    #[must_use]
    pub fn cycle_outcomes(&self) -> Vec<CycleReport> {
        self.state
            .finished
            .iter()
            .map(|c| CycleReport {
                release: ReleaseId::of(c.monday),
                outcome: self.outcome_text(c.outcome).to_owned(),
                started_at: c.started_at,
                ended_at: c.ended_at,
                deadline_misses: c.deadline_misses,
                retry_rounds: c.retry_rounds,
            })
            .collect()
    }

    /// What the instance waits for at `now`: "why blocked?". While parallel branches run, the
    /// first branch (by node) fills `node`, `reason` and `deadline`, the others
    /// [`Waiting::branches`].
    #[must_use]
    pub fn waiting(&self, now: DateTime<Utc>) -> Waiting {
        let zone = self.workflow.zone;
        let mut tokens = self.state.tokens().map(|(node, phase)| self.branch_waiting(node, phase));
        let (node, reason, deadline) = match (self.state.token, tokens.next()) {
            (Token::Between { next_start }, _) => {
                let starts_local = format_local(next_start, zone);
                (None, WaitingFor::NextCycle { starts_at: next_start, starts_local }, None)
            }
            (_, Some(first)) => (Some(first.node), first.reason, first.deadline),
            (_, None) => {
                // A running cycle always has a token; a broken state reads as stalled.
                debug_assert!(false, "a running cycle without a token");
                let start = self.workflow.node(self.workflow.start).id.clone();
                (Some(start.clone()), WaitingFor::Stalled { node: start }, None)
            }
        };
        let branches = tokens.collect();
        let open = self.open_windows_at(now);
        let paused = open & self.workflow.pause_mask;
        let paused_by = (paused != 0)
            .then(|| self.workflow.windows.get(paused.trailing_zeros() as usize).map(|w| w.id.clone()))
            .flatten();
        Waiting { release: self.release(), node, reason, deadline, paused_by, branches }
    }

    /// What the token at `node` waits for.
    fn branch_waiting(&self, node: NodeIndex, phase: Phase) -> BranchWaiting {
        let zone = self.workflow.zone;
        let compiled = self.workflow.node(node);
        let id = compiled.id.clone();
        let reason = match phase {
            Phase::Gated { opens_at } => {
                WaitingFor::Gate { node: id.clone(), opens_at, opens_local: format_local(opens_at, zone) }
            }
            Phase::Stalled => WaitingFor::Stalled { node: id.clone() },
            Phase::Ready => match &compiled.decider {
                Some(Decider::Role(role)) => WaitingFor::Decision {
                    node: id.clone(),
                    role: role.clone(),
                    branches: self.workflow.labels_of(self.workflow.out_edges(node).iter().filter_map(|e| e.label)),
                },
                Some(Decider::OutcomeOf { .. }) => WaitingFor::Stalled { node: id.clone() },
                None if compiled.action.is_some() => {
                    WaitingFor::ActionResult { node: id.clone(), reporters: compiled.roles.to_vec() }
                }
                None => WaitingFor::Task {
                    node: id.clone(),
                    roles: compiled.roles.to_vec(),
                    outcomes: self.workflow.labels_of(compiled.outcomes.iter().copied()),
                },
            },
        };
        let deadline = compiled
            .deadline
            .and_then(|s| self.state.deadlines().get(usize::from(s)))
            .map(|d| DeadlineView { at: d.at, local: format_local(d.at, zone), missed: d.set });
        BranchWaiting { node: id, reason, deadline }
    }

    /// The windows open at `now`, computed afresh for the calendar (a query may look ahead of
    /// the last input).
    fn open_windows_at(&self, now: DateTime<Utc>) -> u64 {
        let zone = self.workflow.zone;
        let calendar: Vec<Stamp> =
            self.workflow.calendar_edges.iter().map(|e| Stamp::edge(e.last(now, zone))).collect();
        open_mask(&self.workflow, &calendar, self.state.watched())
    }

    /// May the host's merge bot merge `request.source` into `request.target` at `now`?
    ///
    /// Denied while an open window covers the target and does not allow the source; the
    /// answer names the window and when it closes (for a window that closes when a node
    /// completes, the node, and its gate's instant when it has one ahead). What a merge needs
    /// on the forge (a spec's `requires:`) is not judged here: [`Instance::may_with`] does,
    /// with what the forge reports.
    #[must_use]
    pub fn may(&self, request: &MergeRequest, now: DateTime<Utc>) -> Permission {
        let open = self.open_windows_at(now);
        let (refused, allowed_by) = merge_refusal(&self.workflow, open, &request.source, &request.target);
        let subject = format!("merges from `{}` into `{}`", request.source, request.target);
        match refused {
            Some(index) => {
                let (until, until_node) = self.window_until(index, now);
                let window = self.workflow.windows.get(index);
                let name = window.map(|w| w.id.clone());
                let title = window.and_then(|w| w.title.as_deref()).map(|t| format!(" ({t})")).unwrap_or_default();
                let when = match (&until_node, until) {
                    (Some(node), Some(at)) => {
                        format!("until `{node}` completes (its gate opens {})", format_local(at, self.workflow.zone))
                    }
                    (Some(node), None) => format!("until `{node}` completes"),
                    (None, Some(at)) => format!("until {}", format_local(at, self.workflow.zone)),
                    (None, None) => "while it is open".to_owned(),
                };
                let reason =
                    format!("window `{}`{title} forbids {subject} {when}", name.as_ref().map_or("?", |n| n.as_str()));
                Permission { allowed: false, window: name, reason, until, unmet: Vec::new() }
            }
            None => {
                let window = allowed_by.and_then(|i| self.workflow.windows.get(i)).map(|w| w.id.clone());
                let reason = match &window {
                    Some(w) => format!("window `{w}` is open but allows {subject}"),
                    None => format!("no open window restricts {subject}"),
                };
                Permission { allowed: true, window, reason, until: None, unmet: Vec::new() }
            }
        }
    }

    /// [`Instance::may`], and what the merge needs on the forge: the `requires:` of every
    /// `merge_pull_request` action from a branch that selects `request.source` into
    /// `request.target` (taken together: the most approvals any asks for, every role and check
    /// any names), held against `evidence`, what the forge reports about the pull request with
    /// its reviewers resolved to people by the host.
    ///
    /// A window that forbids the merge answers first, as [`Instance::may`] does. Otherwise a
    /// requirement the evidence does not meet refuses the merge: [`Permission::unmet`] lists
    /// each as data, and the reason says them in words. A merge no action with `requires:`
    /// covers is judged by the windows alone. Like [`Instance::may`], it reads no clock and
    /// changes nothing.
    #[must_use]
    pub fn may_with(&self, request: &MergeRequest, evidence: &MergeEvidence, now: DateTime<Utc>) -> Permission {
        let permission = self.may(request, now);
        if !permission.allowed {
            return permission;
        }
        let Some(requires) = self.merge_requirements(&request.source, &request.target) else {
            return permission;
        };
        let unmet = requirements::unmet(&requires, evidence);
        if unmet.is_empty() {
            return Permission {
                reason: format!("{}; the pull request meets what the merge requires", permission.reason),
                ..permission
            };
        }
        let reason = format!(
            "the merge from `{}` into `{}` requires what the pull request lacks: {}",
            request.source,
            request.target,
            requirements::describe(&unmet)
        );
        Permission { allowed: false, reason, until: None, unmet, ..permission }
    }

    /// What the spec's merges from `source` into `target` need on the forge, taken together;
    /// `None` when no such merge says.
    #[must_use]
    pub fn merge_requirements(&self, source: &str, target: &str) -> Option<MergeRequirements> {
        let matching = self.workflow.nodes.iter().filter_map(|node| match &node.action {
            Some(CompiledAction::MergePullRequest { from, to, requires: Some(requires) })
                if &**to == target && selects(from, source) =>
            {
                Some(&**requires)
            }
            _ => None,
        });
        requirements::combine(matching)
    }
}

/// Whether a spec branch (a name, or a pattern with one `*`) selects `branch`.
fn selects(spec_branch: &str, branch: &str) -> bool {
    match spec_branch.split_once('*') {
        Some((prefix, suffix)) => {
            branch.len() >= prefix.len() + suffix.len() && branch.starts_with(prefix) && branch.ends_with(suffix)
        }
        None => spec_branch == branch,
    }
}
