//! Moving a running instance to another version of its spec: at once when nothing the
//! running cycle resolved becomes invalid, otherwise when the next cycle starts.
//!
//! An upgrade is an input like an event: [`Instance::upgrade`] records it in the history
//! (`Input::Upgrade` with the new spec's fingerprint and when it takes effect), and replay
//! applies it again at the same record, with the workflow the host resolves that fingerprint
//! to ([`Instance::replay_versions`]). The engine's tables are indexed by spec order, so a
//! move remaps them by node id, window and label text; a cycle that started under one spec
//! finishes under it unless the move is immediate.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kars_spec::{Fingerprint, NodeId};
use serde::{Deserialize, Serialize};

use super::Instance;
use super::remap::{carried_over, migrate};
use super::state::Token;
use crate::error::EngineError;
use crate::history::{Input, Verdict};
use crate::workflow::{LabelIndex, Workflow};

/// When an upgrade takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeWhen {
    /// At once: the running cycle goes on under the new spec (refused when that would
    /// invalidate what the cycle resolved; see [`UpgradeBlocker`]).
    Now,
    /// When the next cycle starts; the running cycle finishes under the spec it started with.
    NextCycle,
}

impl fmt::Display for UpgradeWhen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpgradeWhen::Now => "now",
            UpgradeWhen::NextCycle => "at the next cycle",
        })
    }
}

/// Why an upgrade cannot take effect in the middle of the running cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UpgradeBlocker {
    /// The token is at a node the new spec does not have.
    CurrentNodeRemoved {
        /// The node.
        node: NodeId,
    },
    /// The node the token is at does something else in the new spec (its kind, roles, gate,
    /// action, outcomes, deadline or retry bound).
    CurrentNodeChanged {
        /// The node.
        node: NodeId,
    },
    /// A node the running cycle already went through is gone.
    VisitedNodeRemoved {
        /// The node.
        node: NodeId,
    },
    /// A deadline was added, moved or removed: deadlines are armed when a cycle starts.
    DeadlineChanged {
        /// The node the deadline is on.
        node: NodeId,
    },
    /// The windows or branches changed: which windows are open was resolved under the old ones.
    WindowsChanged,
    /// The zone changed: the cycle's instants were resolved in the old one.
    ZoneChanged,
    /// A retry loop that ran out this cycle has no retry bound any more.
    RetryRemoved {
        /// The node.
        node: NodeId,
    },
    /// Parallel branches run: their tokens are not moved between spec versions.
    BranchesRunning {
        /// The nodes the branches are at.
        nodes: Vec<NodeId>,
    },
    /// An outcome recorded this cycle, which a decision reads, is no longer declared.
    OutcomeLost {
        /// The node whose outcome it is.
        node: NodeId,
        /// The outcome.
        outcome: String,
    },
}

impl fmt::Display for UpgradeBlocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradeBlocker::CurrentNodeRemoved { node } => {
                write!(f, "the instance is at `{node}`, which the new spec removes")
            }
            UpgradeBlocker::CurrentNodeChanged { node } => {
                write!(f, "the instance is at `{node}`, which the new spec changes")
            }
            UpgradeBlocker::VisitedNodeRemoved { node } => {
                write!(f, "this cycle went through `{node}`, which the new spec removes")
            }
            UpgradeBlocker::DeadlineChanged { node } => {
                write!(f, "the deadline on `{node}` changes, and this cycle's deadlines were armed when it started")
            }
            UpgradeBlocker::WindowsChanged => f.write_str("the windows or branches change"),
            UpgradeBlocker::ZoneChanged => f.write_str("the time zone changes"),
            UpgradeBlocker::RetryRemoved { node } => {
                write!(f, "the retry loop at `{node}` ran out this cycle and the new spec removes its bound")
            }
            UpgradeBlocker::BranchesRunning { nodes } => {
                let nodes: Vec<String> = nodes.iter().map(|n| format!("`{n}`")).collect();
                write!(
                    f,
                    "parallel branches run (at {}), and their tokens are not moved to another spec",
                    nodes.join(", ")
                )
            }
            UpgradeBlocker::OutcomeLost { node, outcome } => {
                write!(f, "`{node}` recorded the outcome `{outcome}` this cycle, which the new spec no longer declares")
            }
        }
    }
}

/// The message of [`EngineError::UpgradeBlocked`].
pub(crate) fn blocked_text(blockers: &[UpgradeBlocker]) -> String {
    let mut text = String::from("the upgrade cannot take effect in the middle of this cycle:");
    for b in blockers {
        text.push_str("\n  - ");
        text.push_str(&b.to_string());
    }
    text.push_str("\nhelp: schedule it for the next cycle; the running cycle finishes under the spec it started with");
    text
}

/// What an upgrade to another spec would do, before anything happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradePlan {
    /// The spec in force.
    pub from: Fingerprint,
    /// The new spec.
    pub to: Fingerprint,
    /// The new spec does the same as the one in force (only labels, titles, messages, the
    /// team and the like differ): it can take effect at once and changes no state.
    pub cosmetic: bool,
    /// Why it cannot take effect in the middle of the running cycle; empty when it can.
    pub blockers: Vec<UpgradeBlocker>,
}

impl UpgradePlan {
    /// When an upgrade should take effect unless the host says otherwise: at once when it is
    /// cosmetic or when no cycle is running, at the next cycle otherwise.
    #[must_use]
    pub fn default_when(&self) -> UpgradeWhen {
        if self.cosmetic { UpgradeWhen::Now } else { UpgradeWhen::NextCycle }
    }
}

/// What a spec does, hashed per part: computed once when a workflow is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prints {
    /// The whole spec's behaviour ([`kars_spec::change::behaviour_fingerprint`]).
    pub(crate) behaviour: Fingerprint,
    /// Each node's behaviour, in node order.
    pub(crate) nodes: Vec<Fingerprint>,
    /// The windows and branches.
    pub(crate) windows: Fingerprint,
}

impl Prints {
    pub(crate) fn of(spec: &kars_spec::Spec) -> Self {
        let b = kars_spec::change::behaviour(spec);
        Self {
            behaviour: Fingerprint::of(&b),
            nodes: b.nodes.values().map(Fingerprint::of_value).collect(),
            windows: Fingerprint::of_value(&(&b.windows, &b.branches)),
        }
    }
}

impl Instance {
    /// What moving to `next` would do, recording nothing: whether it is cosmetic and, if not,
    /// why it could not take effect in the middle of the running cycle.
    #[must_use]
    pub fn plan_upgrade(&self, next: &Workflow) -> UpgradePlan {
        let from = self.workflow.fingerprint;
        let cosmetic = self.workflow.prints.behaviour == next.prints.behaviour;
        let blockers = match migrate(&self.workflow, next, &self.state) {
            Ok(_) => Vec::new(),
            Err(blockers) => blockers,
        };
        UpgradePlan { from, to: next.fingerprint, cosmetic, blockers }
    }

    /// The spec version scheduled to take effect when the next cycle starts.
    #[must_use]
    pub fn upcoming(&self) -> Option<&Arc<Workflow>> {
        self.moves.as_ref()?.upcoming.as_ref()
    }

    /// Moves the instance to `next` at `now` (timers due by then run first): at once, or when
    /// the next cycle starts. Recorded in the history like an event, refused or not; a later
    /// upgrade replaces a scheduled one.
    ///
    /// # Errors
    /// [`EngineError::UpgradeUnchanged`] when the instance already runs (or has scheduled)
    /// `next`; [`EngineError::UpgradeBlocked`] when `when` is [`UpgradeWhen::Now`] and the
    /// move would invalidate what the running cycle resolved.
    pub fn upgrade(&mut self, next: Arc<Workflow>, when: UpgradeWhen, now: DateTime<Utc>) -> Result<(), EngineError> {
        let at = now;
        let now = crate::gate::clamp(now).max(self.state.clock);
        let spec = Arc::as_ptr(&self.workflow);
        self.catch_up(now);
        self.settle_spec(spec);
        let to = next.fingerprint;
        let result = self.apply_upgrade(next, when, now);
        if result.is_ok() {
            self.state.clock = now;
        }
        let verdict = match &result {
            Ok(()) => Verdict::Accepted,
            Err(e) => Verdict::Refused(Box::new(e.clone())),
        };
        self.push_record(at, Input::Upgrade { to, when }, verdict);
        result
    }

    fn apply_upgrade(&mut self, next: Arc<Workflow>, when: UpgradeWhen, now: DateTime<Utc>) -> Result<(), EngineError> {
        let scheduled = self.upcoming().map(|w| w.fingerprint);
        let unchanged = match when {
            UpgradeWhen::Now => next.fingerprint == self.workflow.fingerprint && scheduled.is_none(),
            UpgradeWhen::NextCycle => scheduled.unwrap_or(self.workflow.fingerprint) == next.fingerprint,
        };
        if unchanged {
            return Err(EngineError::UpgradeUnchanged { fingerprint: next.fingerprint });
        }
        match when {
            UpgradeWhen::Now => {
                let state = migrate(&self.workflow, &next, &self.state)
                    .map_err(|blockers| EngineError::UpgradeBlocked { blockers })?;
                self.state = state;
                let upgrades = self.state.upgrades_mut();
                upgrades.in_force = Some(next.fingerprint);
                upgrades.upcoming = None;
                self.notice(
                    now,
                    crate::effect::NoticeKind::Upgraded { from: self.workflow.fingerprint, to: next.fingerprint },
                );
                self.workflow = next;
                self.cancel_upcoming();
                self.refresh_deadline_wake();
                // Windows are the same (or a blocker said so); their edges are re-read in the
                // new spec's order.
                self.refresh_windows(now);
            }
            UpgradeWhen::NextCycle if next.fingerprint == self.workflow.fingerprint => {
                // Back to the spec in force: the scheduled move is called off.
                self.cancel_upcoming();
                self.state.upgrades_mut().upcoming = None;
            }
            UpgradeWhen::NextCycle => {
                self.state.upgrades_mut().upcoming = Some(next.fingerprint);
                self.moves.get_or_insert_default().upcoming = Some(next);
            }
        }
        Ok(())
    }

    /// Calls off the spec scheduled for the next cycle.
    fn cancel_upcoming(&mut self) {
        if let Some(moves) = &mut self.moves {
            moves.upcoming = None;
        }
        self.trim_moves();
    }

    /// Called as a cycle starts: the scheduled spec takes effect, with fresh per-cycle tables.
    pub(crate) fn take_upcoming(&mut self, at: DateTime<Utc>) {
        let Some(next) = self.moves.as_mut().and_then(|m| m.upcoming.take()) else { return };
        debug_assert!(matches!(self.state.token, Token::Between { .. }), "a spec moves in between cycles only");
        let mut state = carried_over(&self.workflow, &next, &self.state);
        let upgrades = state.upgrades_mut();
        upgrades.upcoming = None;
        upgrades.in_force = Some(next.fingerprint);
        self.state = state;
        self.notice(at, crate::effect::NoticeKind::Upgraded { from: self.workflow.fingerprint, to: next.fingerprint });
        // Kept, not dropped: a `with_spec` borrow of it may be alive (see there).
        let old = std::mem::replace(&mut self.workflow, next);
        let moves = self.moves.get_or_insert_default();
        debug_assert!(moves.retired.is_none(), "one input takes at most one upcoming spec");
        moves.retired = Some(old);
        self.refresh_deadline_wake();
        self.refresh_calendar(at);
    }

    /// The text of a finished cycle's outcome: a label of the workflow, or one retired by an
    /// upgrade.
    pub(crate) fn outcome_text(&self, label: LabelIndex) -> &str {
        let index = usize::from(label.0);
        match index.checked_sub(self.workflow.labels.len()) {
            None => self.workflow.label(label),
            Some(retired) => self.state.retired().get(retired).map_or("", |l| l),
        }
    }
}
