//! The serializable state of one instance: indices and small tables, no strings on the hot path.

use chrono::{DateTime, NaiveDate, Utc};
use kars_spec::Fingerprint;
use serde::{Deserialize, Serialize};

use crate::workflow::{LabelIndex, NodeIndex, Workflow};

/// Where the single token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Token {
    /// A cycle is running and the token is at `node`.
    At { node: NodeIndex, phase: Phase },
    /// The cycle ended; the next starts at `next_start`.
    Between { next_start: DateTime<Utc> },
}

/// What the token at a node is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Phase {
    /// Waiting for the node's gate.
    Gated { opens_at: DateTime<Utc> },
    /// Waiting for the node's work: a task, a role decision or an action's result.
    Ready,
    /// Unable to move on (see [`crate::WaitingFor::Stalled`]).
    Stalled,
}

/// A deadline armed at cycle start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeadlineSlot {
    pub(crate) at: DateTime<Utc>,
    pub(crate) fired: bool,
}

/// A finished cycle, kept compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CycleSummary {
    pub(crate) monday: NaiveDate,
    pub(crate) outcome: LabelIndex,
    pub(crate) deadline_misses: u16,
    pub(crate) retry_rounds: u16,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) ended_at: DateTime<Utc>,
}

/// The state of an instance: everything that decides what it does next.
///
/// Opaque; compare states with `==` (replay and restore give equal states) and serialize them
/// inside a [`crate::Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The latest input instant seen; earlier inputs count as this instant.
    pub(crate) clock: DateTime<Utc>,
    /// How many cycles have started.
    pub(crate) cycle: u32,
    pub(crate) monday: NaiveDate,
    pub(crate) cycle_started: DateTime<Utc>,
    pub(crate) token: Token,
    /// Per node: entries this cycle (low 15 bits) and completed-this-cycle (top bit).
    pub(crate) nodes: Box<[u16]>,
    pub(crate) deadlines: Box<[DeadlineSlot]>,
    /// Retry loops whose escalation ran this cycle, one bit per retry.
    pub(crate) exhausted: u64,
    /// Recorded outcomes read by decisions (`u16::MAX` for none).
    pub(crate) outcomes: Box<[u16]>,
    /// Who completed the nodes some task must be kept apart from.
    pub(crate) actors: Box<[Option<Box<str>>]>,
    /// When the nodes that open or close windows completed this cycle.
    pub(crate) watched: Box<[Option<DateTime<Utc>>]>,
    /// The last occurrence of every calendar window edge.
    pub(crate) calendar: Box<[DateTime<Utc>]>,
    /// The next calendar window edge.
    pub(crate) calendar_next: Option<DateTime<Utc>>,
    pub(crate) open_windows: u64,
    pub(crate) misses: u16,
    pub(crate) retry_rounds: u16,
    pub(crate) finished: Vec<CycleSummary>,
    /// What upgrades did; `None` (one pointer) for an instance never upgraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) upgrades: Option<Box<Upgrades>>,
}

/// The state an upgraded instance keeps about its spec versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Upgrades {
    /// The spec in force, once an upgrade moved the instance off the one it started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) in_force: Option<Fingerprint>,
    /// The spec scheduled to take effect when the next cycle starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) upcoming: Option<Fingerprint>,
    /// Outcome labels of finished cycles that the spec in force no longer has; a
    /// [`CycleSummary::outcome`] past the workflow's labels indexes this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) retired: Vec<Box<str>>,
}

pub(crate) const DONE: u16 = 0x8000;
pub(crate) const NO_OUTCOME: u16 = u16::MAX;

impl State {
    pub(crate) fn new(workflow: &Workflow, now: DateTime<Utc>) -> Self {
        let epoch = crate::gate::EARLIEST;
        Self {
            clock: now,
            cycle: 0,
            monday: now.date_naive(),
            cycle_started: now,
            token: Token::Between { next_start: now },
            nodes: vec![0; workflow.nodes.len()].into_boxed_slice(),
            deadlines: vec![DeadlineSlot { at: epoch, fired: false }; workflow.deadlines.len()].into_boxed_slice(),
            exhausted: 0,
            outcomes: vec![NO_OUTCOME; usize::from(workflow.outcome_slots)].into_boxed_slice(),
            actors: vec![None; usize::from(workflow.actor_slots)].into_boxed_slice(),
            watched: vec![None; usize::from(workflow.watch_slots)].into_boxed_slice(),
            calendar: vec![epoch; workflow.calendar_edges.len()].into_boxed_slice(),
            calendar_next: None,
            open_windows: 0,
            misses: 0,
            retry_rounds: 0,
            finished: Vec::new(),
            upgrades: None,
        }
    }

    /// Whether every instant and date lies in the engine's range (checked on restore).
    pub(crate) fn sane(&self) -> bool {
        use crate::gate::{date_in_range, in_range};
        let token = match self.token {
            Token::At { phase: Phase::Gated { opens_at }, .. } => in_range(opens_at),
            Token::At { .. } => true,
            Token::Between { next_start } => in_range(next_start),
        };
        token
            && in_range(self.clock)
            && in_range(self.cycle_started)
            && date_in_range(self.monday)
            && self.deadlines.iter().all(|d| in_range(d.at))
            && self.watched.iter().flatten().all(|w| in_range(*w))
            && self.calendar.iter().all(|c| in_range(*c))
            && self.calendar_next.is_none_or(in_range)
            && self.finished.iter().all(|c| date_in_range(c.monday) && in_range(c.started_at) && in_range(c.ended_at))
    }

    /// Whether the tables fit `workflow` and every index is in range (checked on restore).
    pub(crate) fn fits(&self, workflow: &Workflow) -> bool {
        let labels = workflow.labels.len() + self.retired().len();
        let node_ok = |n: NodeIndex| n.get() < workflow.nodes.len();
        self.nodes.len() == workflow.nodes.len()
            && self.deadlines.len() == workflow.deadlines.len()
            && self.outcomes.len() == usize::from(workflow.outcome_slots)
            && self.actors.len() == usize::from(workflow.actor_slots)
            && self.watched.len() == usize::from(workflow.watch_slots)
            && self.calendar.len() == workflow.calendar_edges.len()
            && self.outcomes.iter().all(|&o| o == NO_OUTCOME || usize::from(o) < labels)
            && self.finished.iter().all(|c| usize::from(c.outcome.0) < labels)
            && match self.token {
                Token::At { node, .. } => node_ok(node),
                Token::Between { .. } => true,
            }
    }

    /// The retired outcome labels ([`Upgrades::retired`]).
    pub(crate) fn retired(&self) -> &[Box<str>] {
        self.upgrades.as_ref().map_or(&[], |u| &u.retired)
    }

    /// The upgrade bookkeeping, made on first use.
    pub(crate) fn upgrades_mut(&mut self) -> &mut Upgrades {
        self.upgrades.get_or_insert_with(Box::default)
    }

    /// The spec scheduled for the next cycle.
    pub(crate) fn upcoming(&self) -> Option<Fingerprint> {
        self.upgrades.as_ref().and_then(|u| u.upcoming)
    }

    /// The spec in force when an upgrade moved the instance.
    pub(crate) fn in_force(&self) -> Option<Fingerprint> {
        self.upgrades.as_ref().and_then(|u| u.in_force)
    }

    pub(crate) fn visits(&self, node: NodeIndex) -> u16 {
        self.nodes.get(node.get()).map_or(0, |v| v & !DONE)
    }

    pub(crate) fn done(&self, node: NodeIndex) -> bool {
        self.nodes.get(node.get()).is_some_and(|v| v & DONE != 0)
    }

    /// Counts an entry; returns the entry number this cycle.
    pub(crate) fn enter(&mut self, node: NodeIndex) -> u16 {
        match self.nodes.get_mut(node.get()) {
            Some(v) => {
                let visits = ((*v & !DONE) + 1).min(!DONE);
                *v = visits | (*v & DONE);
                visits
            }
            None => 0,
        }
    }

    pub(crate) fn mark_done(&mut self, node: NodeIndex) {
        if let Some(v) = self.nodes.get_mut(node.get()) {
            *v |= DONE;
        }
    }

    pub(crate) fn current(&self) -> Option<NodeIndex> {
        match self.token {
            Token::At { node, .. } => Some(node),
            Token::Between { .. } => None,
        }
    }
}
