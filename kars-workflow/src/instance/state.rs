//! The serializable state of one instance: indices and small tables, no strings on the hot path.

use chrono::{DateTime, NaiveDate, Utc};
use kars_spec::Fingerprint;
use serde::{Deserialize, Serialize};

use crate::workflow::{LabelIndex, NodeIndex, Workflow};

mod wire;

pub(crate) use wire::Tables;

/// Where the token is.
///
/// One `Copy` value for the common case of one token: a workflow without `parallel` nodes
/// never leaves `At`/`Between`, and its state pays for parallel branches only the one pointer
/// of [`State::branches`] (always `None`). Once a fork starts branches, the tokens live in
/// that box and `token` says so (`Branches`); while a transition runs, the branch it moves is
/// taken out of the box into `token` (`At`) and put back when it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Token {
    /// A cycle is running and the token is at `node`.
    At { node: NodeIndex, phase: Phase },
    /// The cycle ended; the next starts at `next_start`.
    Between { next_start: DateTime<Utc> },
    /// Parallel branches run: every token is in [`State::branches`].
    Branches,
}

/// The tokens of the parallel branches that run, boxed so that an instance that never forks
/// pays one pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Branches {
    /// Every branch's token, sorted by node: with block structure no two branches are ever at
    /// one node, so an event's node picks its branch.
    pub(crate) live: Vec<Live>,
    /// Per fork of the workflow: how many of its branches have arrived at its join.
    pub(crate) arrived: Box<[u16]>,
}

/// One branch's token at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Live {
    pub(crate) node: NodeIndex,
    pub(crate) phase: Phase,
}

impl Branches {
    pub(crate) fn new(forks: usize) -> Box<Self> {
        Box::new(Self { live: Vec::with_capacity(4), arrived: vec![0; forks].into_boxed_slice() })
    }

    /// Puts a token back, keeping the list sorted by node.
    pub(crate) fn park(&mut self, node: NodeIndex, phase: Phase) {
        let at = self.live.partition_point(|l| l.node < node);
        debug_assert!(self.live.get(at).is_none_or(|l| l.node != node), "two branches at one node");
        self.live.insert(at, Live { node, phase });
    }

    /// Takes the token at `node` out of the list.
    pub(crate) fn take(&mut self, node: NodeIndex) -> Option<Live> {
        let at = self.live.binary_search_by_key(&node, |l| l.node).ok()?;
        Some(self.live.remove(at))
    }
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

/// A deadline armed at cycle start, as snapshots write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeadlineSlot {
    pub(crate) at: DateTime<Utc>,
    pub(crate) fired: bool,
}

/// An instant a state table keeps, with a flag: a deadline's instant and whether it fired, a
/// watched node's completion this cycle (`set`) or none (`set` false, `at` the earliest
/// instant), a calendar edge's last occurrence (`set` unused, false).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) at: DateTime<Utc>,
    pub(crate) set: bool,
}

impl Stamp {
    /// No instant: a watched node not completed this cycle.
    pub(crate) const NONE: Self = Self { at: crate::gate::EARLIEST, set: false };

    /// A calendar edge's last occurrence.
    pub(crate) fn edge(at: DateTime<Utc>) -> Self {
        Self { at, set: false }
    }

    /// A watched node's completion, if it completed this cycle.
    pub(crate) fn watched(at: Option<DateTime<Utc>>) -> Self {
        at.map_or(Self::NONE, |at| Self { at, set: true })
    }

    /// The instant, when set.
    pub(crate) fn get(self) -> Option<DateTime<Utc>> {
        self.set.then_some(self.at)
    }
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
#[derive(Debug, Clone, PartialEq, Eq)]
// Laid out by use (`repr(C)` keeps the order): what every input reads first, then the tables,
// then what only a cycle's start or end reads, so that an input of an instance that is not in
// the cache touches fewer lines (a host holding thousands of instances pays for each). The
// per-node and per-slot tables live in two blocks (`counts`, `stamps`) rather than one each:
// two allocations instead of five, and the lines an input reads lie together. Serde writes
// the fields in this order, each table on its own as before (`wire.rs`; readers take any
// order, see CHANGELOG.md).
#[repr(C)]
pub struct State {
    pub(crate) token: Token,
    /// The latest input instant seen; earlier inputs count as this instant.
    pub(crate) clock: DateTime<Utc>,
    /// The next calendar window edge.
    pub(crate) calendar_next: Option<DateTime<Utc>>,
    pub(crate) open_windows: u64,
    /// The parallel branches' tokens while a fork runs (see [`Token`]); `None` otherwise.
    pub(crate) branches: Option<Box<Branches>>,
    /// Per node: entries this cycle (low 15 bits) and completed-this-cycle (top bit)
    /// ([`State::nodes`]); then per outcome slot, the recorded outcome read by decisions
    /// (`NO_OUTCOME` for none; [`State::outcomes`]).
    counts: Box<[u16]>,
    /// Per deadline: its instant and whether it fired ([`State::deadlines`]); then per
    /// watched node: when it completed this cycle ([`State::watched`]); then per calendar
    /// window edge: its last occurrence ([`State::calendar`]).
    stamps: Box<[Stamp]>,
    /// Where the blocks split: the nodes in `counts`, the deadlines and the watched nodes in
    /// `stamps`.
    split: Split,
    /// Who completed the nodes some task must be kept apart from (the name the event carried,
    /// shared).
    pub(crate) actors: crate::shared::StrSlots,
    /// Retry loops whose escalation ran this cycle, one bit per retry.
    pub(crate) exhausted: u64,
    pub(crate) monday: NaiveDate,
    /// How many cycles have started.
    pub(crate) cycle: u32,
    pub(crate) misses: u16,
    pub(crate) retry_rounds: u16,
    pub(crate) cycle_started: DateTime<Utc>,
    pub(crate) finished: Vec<CycleSummary>,
    /// What upgrades did; `None` (one pointer) for an instance never upgraded.
    pub(crate) upgrades: Option<Box<Upgrades>>,
}

/// How many entries of [`State`]'s blocks each table takes (the last table of a block takes
/// the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Split {
    nodes: u32,
    deadlines: u32,
    watched: u32,
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

/// A table's length as a [`State`] keeps it (no table holds `u32::MAX` entries: a workflow's
/// are bounded by its spec, a snapshot's are checked against its workflow).
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl State {
    pub(crate) fn new(workflow: &Workflow, now: DateTime<Utc>) -> Self {
        let outcomes = usize::from(workflow.outcome_slots);
        let (watched, edges) = (usize::from(workflow.watch_slots), workflow.calendar_edges.len());
        let mut counts = vec![0; workflow.nodes.len() + outcomes];
        counts.get_mut(workflow.nodes.len()..).into_iter().flatten().for_each(|o| *o = NO_OUTCOME);
        let stamps = vec![Stamp::NONE; workflow.deadlines.len() + watched + edges];
        Self {
            clock: now,
            cycle: 0,
            monday: now.date_naive(),
            cycle_started: now,
            token: Token::Between { next_start: now },
            branches: None,
            counts: counts.into_boxed_slice(),
            stamps: stamps.into_boxed_slice(),
            split: Split {
                nodes: len32(workflow.nodes.len()),
                deadlines: len32(workflow.deadlines.len()),
                watched: len32(watched),
            },
            exhausted: 0,
            actors: vec![None; usize::from(workflow.actor_slots)].into_boxed_slice(),
            calendar_next: None,
            open_windows: 0,
            misses: 0,
            retry_rounds: 0,
            finished: Vec::new(),
            upgrades: None,
        }
    }

    /// A state of these tables, as a snapshot holds them (checked by [`State::fits`] and
    /// [`State::sane`] against the workflow on restore).
    pub(crate) fn with_tables(mut self, tables: Tables) -> Self {
        let Tables { nodes, outcomes, deadlines, watched, calendar } = tables;
        self.split =
            Split { nodes: len32(nodes.len()), deadlines: len32(deadlines.len()), watched: len32(watched.len()) };
        self.counts = nodes.into_iter().chain(outcomes).collect();
        self.stamps = deadlines
            .into_iter()
            .map(|d| Stamp { at: d.at, set: d.fired })
            .chain(watched.into_iter().map(Stamp::watched))
            .chain(calendar.into_iter().map(Stamp::edge))
            .collect();
        self
    }

    /// Per node: entries this cycle (low 15 bits) and completed-this-cycle ([`DONE`]).
    #[inline]
    pub(crate) fn nodes(&self) -> &[u16] {
        self.counts.get(..self.split.nodes as usize).unwrap_or_default()
    }

    /// [`State::nodes`], to change.
    #[inline]
    pub(crate) fn nodes_mut(&mut self) -> &mut [u16] {
        let n = self.split.nodes as usize;
        self.counts.get_mut(..n).unwrap_or_default()
    }

    /// Per outcome slot: the recorded outcome ([`NO_OUTCOME`] for none).
    #[inline]
    pub(crate) fn outcomes(&self) -> &[u16] {
        self.counts.get(self.split.nodes as usize..).unwrap_or_default()
    }

    /// [`State::outcomes`], to change.
    #[inline]
    pub(crate) fn outcomes_mut(&mut self) -> &mut [u16] {
        let n = self.split.nodes as usize;
        self.counts.get_mut(n..).unwrap_or_default()
    }

    /// Where the watched nodes and the calendar edges start in `stamps`.
    #[inline]
    fn stamp_split(&self) -> (usize, usize) {
        let watched = self.split.deadlines as usize;
        (watched, watched.saturating_add(self.split.watched as usize))
    }

    /// Per deadline: its instant and whether it fired (`set`).
    #[inline]
    pub(crate) fn deadlines(&self) -> &[Stamp] {
        self.stamps.get(..self.stamp_split().0).unwrap_or_default()
    }

    /// [`State::deadlines`], to change.
    #[inline]
    pub(crate) fn deadlines_mut(&mut self) -> &mut [Stamp] {
        let (watched, _) = self.stamp_split();
        self.stamps.get_mut(..watched).unwrap_or_default()
    }

    /// Per watched node: when it completed this cycle, if it did.
    #[inline]
    pub(crate) fn watched(&self) -> &[Stamp] {
        let (watched, calendar) = self.stamp_split();
        self.stamps.get(watched..calendar).unwrap_or_default()
    }

    /// [`State::watched`], to change.
    #[inline]
    pub(crate) fn watched_mut(&mut self) -> &mut [Stamp] {
        let (watched, calendar) = self.stamp_split();
        self.stamps.get_mut(watched..calendar).unwrap_or_default()
    }

    /// Per calendar window edge: its last occurrence.
    #[inline]
    pub(crate) fn calendar(&self) -> &[Stamp] {
        self.stamps.get(self.stamp_split().1..).unwrap_or_default()
    }

    /// [`State::calendar`], to change.
    #[inline]
    pub(crate) fn calendar_mut(&mut self) -> &mut [Stamp] {
        let (_, calendar) = self.stamp_split();
        self.stamps.get_mut(calendar..).unwrap_or_default()
    }

    /// Heap bytes of the tables.
    pub(crate) fn tables_heap(&self) -> usize {
        std::mem::size_of_val(&*self.counts)
            + std::mem::size_of_val(&*self.stamps)
            + std::mem::size_of_val(&*self.actors)
            + self.actors.iter().flatten().map(|a| a.len()).sum::<usize>()
    }

    /// Whether every instant and date lies in the engine's range (checked on restore).
    pub(crate) fn sane(&self) -> bool {
        use crate::gate::{date_in_range, in_range};
        let phase_ok = |phase: Phase| match phase {
            Phase::Gated { opens_at } => in_range(opens_at),
            Phase::Ready | Phase::Stalled => true,
        };
        let token = match self.token {
            Token::At { phase, .. } => phase_ok(phase),
            Token::Between { next_start } => in_range(next_start),
            Token::Branches => true,
        };
        token
            && self.branches.as_ref().is_none_or(|b| b.live.iter().all(|l| phase_ok(l.phase)))
            && in_range(self.clock)
            && in_range(self.cycle_started)
            && date_in_range(self.monday)
            && self.stamps.iter().all(|d| in_range(d.at))
            && self.calendar_next.is_none_or(in_range)
            && self.finished.iter().all(|c| date_in_range(c.monday) && in_range(c.started_at) && in_range(c.ended_at))
    }

    /// Whether the tables fit `workflow` and every index is in range (checked on restore).
    /// Branch tokens must be at distinct nodes in order, and no fork's arrivals may reach
    /// its branch count.
    pub(crate) fn fits(&self, workflow: &Workflow) -> bool {
        let labels = workflow.labels.len() + self.retired().len();
        let node_ok = |n: NodeIndex| n.get() < workflow.nodes.len();
        self.nodes().len() == workflow.nodes.len()
            && self.deadlines().len() == workflow.deadlines.len()
            && self.outcomes().len() == usize::from(workflow.outcome_slots)
            && self.actors.len() == usize::from(workflow.actor_slots)
            && self.watched().len() == usize::from(workflow.watch_slots)
            && self.calendar().len() == workflow.calendar_edges.len()
            && self.split.deadlines as usize + self.split.watched as usize <= self.stamps.len()
            && self.outcomes().iter().all(|&o| o == NO_OUTCOME || usize::from(o) < labels)
            && self.finished.iter().all(|c| usize::from(c.outcome.0) < labels)
            && match self.token {
                Token::At { node, .. } => node_ok(node) && self.branches.is_none(),
                Token::Between { .. } => self.branches.is_none(),
                Token::Branches => self.branches.as_ref().is_some_and(|b| b.fits(workflow)),
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

    /// Node `node`'s count: the node indices of the workflow the state fits come first in
    /// `counts` (one bounds check on the hot path, not two).
    #[inline]
    fn node(&self, node: NodeIndex) -> Option<u16> {
        debug_assert!(node.get() < self.split.nodes as usize, "node {node:?} is the workflow's");
        self.counts.get(node.get()).copied()
    }

    /// [`State::node`], to change.
    #[inline]
    fn node_mut(&mut self, node: NodeIndex) -> Option<&mut u16> {
        debug_assert!(node.get() < self.split.nodes as usize, "node {node:?} is the workflow's");
        self.counts.get_mut(node.get())
    }

    pub(crate) fn visits(&self, node: NodeIndex) -> u16 {
        self.node(node).map_or(0, |v| v & !DONE)
    }

    pub(crate) fn done(&self, node: NodeIndex) -> bool {
        self.node(node).is_some_and(|v| v & DONE != 0)
    }

    /// Counts an entry; returns the entry number this cycle.
    pub(crate) fn enter(&mut self, node: NodeIndex) -> u16 {
        match self.node_mut(node) {
            Some(v) => {
                let visits = ((*v & !DONE) + 1).min(!DONE);
                *v = visits | (*v & DONE);
                visits
            }
            None => 0,
        }
    }

    pub(crate) fn mark_done(&mut self, node: NodeIndex) {
        if let Some(v) = self.node_mut(node) {
            *v |= DONE;
        }
    }

    /// The node of the token, or of the first branch (by node) while branches run.
    pub(crate) fn current(&self) -> Option<NodeIndex> {
        match self.token {
            Token::At { node, .. } => Some(node),
            Token::Between { .. } => None,
            Token::Branches => self.branches.as_ref().and_then(|b| b.live.first()).map(|l| l.node),
        }
    }

    /// Every token of the running cycle with what it does, by node: one without parallel
    /// branches, none between cycles.
    pub(crate) fn tokens(&self) -> impl Iterator<Item = (NodeIndex, Phase)> + '_ {
        let single = match self.token {
            Token::At { node, phase } => Some((node, phase)),
            Token::Between { .. } | Token::Branches => None,
        };
        single.into_iter().chain(self.branches.iter().flat_map(|b| b.live.iter().map(|l| (l.node, l.phase))))
    }

    /// What the token at `node` does, if a token is there.
    pub(crate) fn token_at(&self, node: NodeIndex) -> Option<Phase> {
        match (self.token, &self.branches) {
            (Token::At { node: at, phase }, _) if at == node => Some(phase),
            (_, Some(b)) => {
                b.live.binary_search_by_key(&node, |l| l.node).ok().and_then(|i| b.live.get(i)).map(|l| l.phase)
            }
            _ => None,
        }
    }
}

impl Branches {
    /// Whether the branch tokens and join counts fit `workflow` (checked on restore).
    fn fits(&self, workflow: &Workflow) -> bool {
        let forks = &workflow.blocks.forks;
        !self.live.is_empty()
            && self.live.iter().all(|l| l.node.get() < workflow.nodes.len())
            && self.live.windows(2).all(|w| matches!(w, [a, b] if a.node < b.node))
            && self.arrived.len() == forks.len()
            && self.arrived.iter().zip(forks).all(|(&n, f)| n < f.branches)
    }
}
