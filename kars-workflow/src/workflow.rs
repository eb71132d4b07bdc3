//! The compiled workflow: an index-based graph built once from a checked spec and shared by
//! every instance (`Arc<Workflow>`).
//!
//! Ids are resolved once to small indices ([`NodeIndex`], [`LabelIndex`], [`WindowIndex`]);
//! out-edges are index slices; branch labels and outcomes are interned. Nothing here reads a
//! clock: week times stay week times until an instance resolves them in its cycle.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use chrono_tz::Tz;
use kars_spec::calendar::WeekTime;
use kars_spec::spec::{Action, Escalation, NodeKind, Recipient, Then, WindowEdge};
use kars_spec::{BranchId, CheckedSpec, EnvironmentId, Fingerprint, NodeId, RoleId, WindowId};
use serde::{Deserialize, Serialize};

use crate::error::CompileError;
use crate::template::Template;

mod forks;

pub(crate) use forks::Blocks;

/// The most nodes a workflow may have.
pub const MAX_NODES: usize = u16::MAX as usize - 1;
/// The most windows a workflow may have (window state is a 64-bit set).
pub const MAX_WINDOWS: usize = 64;

/// The position of a node in its workflow (spec order, see [`Workflow::node_ids`]); valid only for the workflow it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeIndex(pub(crate) u16);

impl NodeIndex {
    /// The index as a `usize`.
    #[must_use]
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

/// An interned label: a branch label, a task or action outcome, or a cycle outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabelIndex(pub(crate) u16);

/// The position of a window in the workflow's window table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WindowIndex(pub(crate) u8);

impl WindowIndex {
    /// The index as a `usize`.
    #[must_use]
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

/// How a decision is taken.
#[derive(Debug, Clone)]
pub(crate) enum Decider {
    /// An actor with this role picks a branch label.
    Role(RoleId),
    /// The recorded outcome in outcome slot `slot` is mapped to a branch label.
    OutcomeOf { slot: u16, map: Box<[(LabelIndex, LabelIndex)]> },
}

/// An action with its branches and environments resolved, message not yet expanded.
#[derive(Debug, Clone)]
pub(crate) enum CompiledAction {
    Notify { to: Arc<[Recipient]>, message: Template },
    OpenPullRequest { from: Arc<str>, to: Arc<str> },
    MergePullRequest { from: Arc<str>, to: Arc<str>, requires: Option<Arc<kars_spec::spec::MergeRequirements>> },
    Deploy { environment: EnvironmentId, url: Option<Arc<str>> },
    Rollback { environment: EnvironmentId, url: Option<Arc<str>> },
    RunChecks { suite: Arc<str>, environment: Option<EnvironmentId> },
}

impl CompiledAction {
    /// Whether the token waits for the host to report a result.
    pub(crate) fn waits(&self) -> bool {
        !matches!(self, CompiledAction::Notify { .. })
    }
}

/// Where an escalation sends the token.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Jump {
    Stay,
    Goto(NodeIndex),
    End(LabelIndex),
}

/// An escalation: notify effects, then a jump.
#[derive(Debug, Clone)]
pub(crate) struct CompiledEscalation {
    pub(crate) notify: Arc<[Recipient]>,
    /// The spec's message, or the default `{release}: `{node}` escalated`.
    pub(crate) message: Template,
    pub(crate) then: Jump,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledDeadline {
    pub(crate) node: NodeIndex,
    pub(crate) by: WeekTime,
    pub(crate) escalation: CompiledEscalation,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRetry {
    pub(crate) max_attempts: u32,
    pub(crate) escalation: CompiledEscalation,
}

/// One compiled node.
#[derive(Debug, Clone)]
pub(crate) struct CompiledNode {
    pub(crate) id: NodeId,
    pub(crate) label: String,
    pub(crate) kind: NodeKind,
    pub(crate) roles: Box<[RoleId]>,
    pub(crate) outcomes: Box<[LabelIndex]>,
    /// `(node, completed_by slot)` pairs the actor must differ from.
    pub(crate) distinct_from: Box<[(NodeIndex, u16)]>,
    pub(crate) action: Option<CompiledAction>,
    pub(crate) decider: Option<Decider>,
    pub(crate) gate: Option<WeekTime>,
    /// What the gate does on a holiday.
    pub(crate) on_holiday: kars_spec::dates::OnHoliday,
    pub(crate) deadline: Option<u16>,
    pub(crate) retry: Option<u16>,
    /// Where the node's outcome is kept, when some decision reads it.
    pub(crate) outcome_slot: Option<u16>,
    /// Where the node's completing actor is kept, when some task must differ from it.
    pub(crate) actor_slot: Option<u16>,
    /// Where the node's completion instant is kept, when a window opens or closes on it.
    pub(crate) watch_slot: Option<u16>,
    /// The cycle outcome when a back edge or an end leaves through this node.
    pub(crate) outcome: Option<LabelIndex>,
    pub(crate) out_start: u32,
    pub(crate) out_len: u16,
}

/// One out-edge: its target and, for decisions, its branch label.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutEdge {
    pub(crate) to: NodeIndex,
    pub(crate) label: Option<LabelIndex>,
}

/// A branch name or a one-`*` pattern.
#[derive(Debug, Clone)]
pub(crate) enum BranchMatcher {
    Name(String),
    Pattern { prefix: String, suffix: String },
}

impl BranchMatcher {
    pub(crate) fn matches(&self, branch: &str) -> bool {
        match self {
            BranchMatcher::Name(name) => name == branch,
            BranchMatcher::Pattern { prefix, suffix } => {
                branch.len() >= prefix.len() + suffix.len() && branch.starts_with(prefix) && branch.ends_with(suffix)
            }
        }
    }
}

/// One edge of a compiled window.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CompiledEdge {
    /// A recurring calendar time; `slot` indexes the instance's last-occurrence table.
    At { time: WeekTime, slot: u16 },
    /// A node's completion in the running cycle; `slot` indexes the watched-completion table.
    After { node: NodeIndex, slot: u16 },
    /// Once, at a local date and time; `slot` indexes the instance's last-occurrence table.
    On { at: chrono::NaiveDateTime, slot: u16 },
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledWindow {
    pub(crate) id: WindowId,
    pub(crate) title: Option<String>,
    pub(crate) opens: CompiledEdge,
    pub(crate) closes: CompiledEdge,
    pub(crate) allow_from: Box<[u16]>,
    pub(crate) merges_into: Box<[u16]>,
}

/// A workflow compiled from a [`CheckedSpec`]: cheap to share between instances.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub(crate) name: Arc<str>,
    pub(crate) fingerprint: Fingerprint,
    /// What the spec does, hashed whole and per part, for upgrades.
    pub(crate) prints: crate::instance::upgrade::Prints,
    pub(crate) zone: Tz,
    /// How often a cycle starts.
    pub(crate) cadence: kars_spec::cadence::Cadence,
    pub(crate) nodes: Vec<CompiledNode>,
    pub(crate) edges: Vec<OutEdge>,
    pub(crate) labels: Vec<Arc<str>>,
    pub(crate) start: NodeIndex,
    pub(crate) windows: Vec<CompiledWindow>,
    pub(crate) branches: Vec<BranchMatcher>,
    pub(crate) deadlines: Vec<CompiledDeadline>,
    pub(crate) retries: Vec<CompiledRetry>,
    pub(crate) calendar_edges: Vec<crate::gate::CalendarEdge>,
    /// Days nobody works.
    pub(crate) holidays: Vec<kars_spec::dates::Holiday>,
    pub(crate) outcome_slots: u16,
    pub(crate) actor_slots: u16,
    pub(crate) watch_slots: u16,
    pub(crate) pause_mask: u64,
    pub(crate) succeeded: LabelIndex,
    pub(crate) failed: LabelIndex,
    pub(crate) exhausted: LabelIndex,
    pub(crate) completed: LabelIndex,
    /// The outcome of a cycle a holiday skipped (`on_holiday: skip_cycle`).
    pub(crate) skipped: LabelIndex,
    /// The parallel blocks: forks, their joins and every node's branch region (empty tables
    /// for a workflow without `parallel` nodes).
    pub(crate) blocks: Blocks,
    index: HashMap<NodeId, NodeIndex>,
    fallback: CompiledNode,
}

impl Workflow {
    /// Compiles a checked spec into an index-based graph.
    ///
    /// # Errors
    /// Returns a [`CompileError`] when the spec breaks a rule the engine relies on (no start
    /// node, a reference to an unknown node, a node other than a decision or a parallel node
    /// with other than one out-edge, parallel branches that do not meet at exactly one join or
    /// leave their block, more than [`MAX_NODES`] nodes or [`MAX_WINDOWS`] windows). A
    /// validated spec never does.
    ///
    /// ```
    /// let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../workflows/kars-release.yaml")).unwrap();
    /// let workflow = kars_workflow::Workflow::compile(&kars_spec::load(&yaml, "kars-release.yaml").unwrap()).unwrap();
    /// assert_eq!(workflow.node_count(), 33);
    /// assert_eq!(workflow.node_index("AG").and_then(|i| workflow.node_id(i)).map(|id| id.as_str()), Some("AG"));
    /// ```
    pub fn compile(checked: &CheckedSpec) -> Result<Self, CompileError> {
        crate::workflow::compile::compile(checked)
    }

    /// The workflow's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fingerprint of the spec it was compiled from.
    #[must_use]
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The fingerprint of what the spec does ([`kars_spec::change::behaviour_fingerprint`]):
    /// equal for two specs that differ only in labels, titles, messages, the team and the like.
    #[must_use]
    pub fn behaviour_fingerprint(&self) -> Fingerprint {
        self.prints.behaviour
    }

    /// The days nobody works (the spec's `holidays:`).
    #[must_use]
    pub fn holidays(&self) -> &[kars_spec::dates::Holiday] {
        &self.holidays
    }

    /// How often a cycle starts (every week unless the spec says otherwise).
    #[must_use]
    pub fn cadence(&self) -> kars_spec::cadence::Cadence {
        self.cadence
    }

    /// The zone of every wall-clock time in the workflow.
    #[must_use]
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// How many nodes the workflow has.
    #[must_use]
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The start node.
    #[must_use]
    pub fn start(&self) -> NodeIndex {
        self.start
    }

    /// The index of a node id, if the workflow has it.
    #[must_use]
    pub fn node_index(&self, id: &str) -> Option<NodeIndex> {
        self.index.get(id).copied()
    }

    /// The id of a node; `None` for an index from another workflow.
    #[must_use]
    pub fn node_id(&self, node: NodeIndex) -> Option<&NodeId> {
        self.nodes.get(node.get()).map(|n| &n.id)
    }

    /// The label of a node (with real line breaks).
    #[must_use]
    pub fn node_label(&self, node: NodeIndex) -> Option<&str> {
        self.nodes.get(node.get()).map(|n| n.label.as_str())
    }

    /// The kind of a node.
    #[must_use]
    pub fn node_kind(&self, node: NodeIndex) -> Option<NodeKind> {
        self.nodes.get(node.get()).map(|n| n.kind)
    }

    /// The text of an interned label.
    #[must_use]
    pub fn label(&self, label: LabelIndex) -> &str {
        self.labels.get(usize::from(label.0)).map_or("", |l| l)
    }

    /// A branch label or outcome, shared (what an event's outcome copies).
    pub(crate) fn shared_label(&self, label: LabelIndex) -> Option<Arc<str>> {
        self.labels.get(usize::from(label.0)).cloned()
    }

    /// The id of a window.
    #[must_use]
    pub fn window_id(&self, window: WindowIndex) -> Option<&WindowId> {
        self.windows.get(window.get()).map(|w| &w.id)
    }

    /// Every node id, in spec order (the order of [`NodeIndex`]).
    pub fn node_ids(&self) -> impl Iterator<Item = &NodeId> {
        self.nodes.iter().map(|n| &n.id)
    }

    pub(crate) fn node(&self, node: NodeIndex) -> &CompiledNode {
        // Node indices are made by `compile` or checked by `restore`/`replay`; an out-of-range
        // index (a bug) degrades to a copy of the start node instead of panicking.
        self.nodes.get(node.get()).unwrap_or(&self.fallback)
    }

    pub(crate) fn out_edges(&self, node: NodeIndex) -> &[OutEdge] {
        let n = self.node(node);
        let start = n.out_start as usize;
        self.edges.get(start..start + usize::from(n.out_len)).unwrap_or(&[])
    }

    /// The interned label with this text, if the workflow has one.
    #[must_use]
    pub fn label_index(&self, text: &str) -> Option<LabelIndex> {
        self.labels.iter().position(|l| &**l == text).and_then(|i| u16::try_from(i).ok()).map(LabelIndex)
    }

    pub(crate) fn labels_of(&self, labels: impl Iterator<Item = LabelIndex>) -> Vec<String> {
        labels.map(|l| self.label(l).to_owned()).collect()
    }
}

impl fmt::Display for NodeIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

pub(crate) mod compile {
    //! Turning a [`CheckedSpec`] into a [`Workflow`].

    use super::*;

    struct Interner {
        labels: Vec<Arc<str>>,
        index: HashMap<Box<str>, LabelIndex>,
    }

    impl Interner {
        fn intern(&mut self, text: &str) -> Result<LabelIndex, CompileError> {
            if let Some(&l) = self.index.get(text) {
                return Ok(l);
            }
            let l = LabelIndex(
                u16::try_from(self.labels.len()).map_err(|_| CompileError::TooMany { what: "labels", max: 65_535 })?,
            );
            self.labels.push(text.into());
            self.index.insert(text.into(), l);
            Ok(l)
        }
    }

    fn slot(counter: &mut u16, what: &'static str) -> Result<u16, CompileError> {
        let s = *counter;
        *counter = counter.checked_add(1).ok_or(CompileError::TooMany { what, max: 65_535 })?;
        Ok(s)
    }

    pub(crate) fn compile(checked: &CheckedSpec) -> Result<Workflow, CompileError> {
        let spec = checked.spec();
        if spec.nodes.len() > MAX_NODES {
            return Err(CompileError::TooMany { what: "nodes", max: MAX_NODES });
        }
        if spec.windows.len() > MAX_WINDOWS {
            return Err(CompileError::TooMany { what: "windows", max: MAX_WINDOWS });
        }
        let mut index = HashMap::with_capacity(spec.nodes.len());
        for (i, id) in spec.nodes.keys().enumerate() {
            // Bounded by MAX_NODES above.
            index.insert(id.clone(), NodeIndex(u16::try_from(i).unwrap_or(u16::MAX)));
        }
        let lookup = |id: &NodeId, place: &'static str| -> Result<NodeIndex, CompileError> {
            index.get(id).copied().ok_or_else(|| CompileError::UnknownNode { node: id.clone(), place })
        };
        let mut starts = spec.nodes.iter().filter(|(_, n)| n.kind == NodeKind::Start).map(|(id, _)| id);
        let start = match (starts.next(), starts.next()) {
            (Some(id), None) => lookup(id, "start")?,
            (None, _) => return Err(CompileError::NoStart),
            (Some(first), Some(second)) => {
                return Err(CompileError::ManyStarts { first: first.clone(), second: second.clone() });
            }
        };
        let mut labels = Interner { labels: Vec::new(), index: HashMap::new() };
        let succeeded = labels.intern("succeeded")?;
        let failed = labels.intern("failed")?;
        let exhausted = labels.intern("exhausted")?;
        let completed = labels.intern("completed")?;
        let skipped = labels.intern("skipped")?;

        // Slots: which nodes some other part of the spec reads back.
        let (mut outcome_slots, mut actor_slots, mut watch_slots) = (0u16, 0u16, 0u16);
        let mut outcome_slot: HashMap<NodeIndex, u16> = HashMap::new();
        let mut actor_slot: HashMap<NodeIndex, u16> = HashMap::new();
        let mut watch_slot: HashMap<NodeIndex, u16> = HashMap::new();
        for node in spec.nodes.values() {
            if let Some(of) = node.decided_by.as_ref().and_then(|d| d.outcome_of.as_ref()) {
                let i = lookup(of, "decided_by.outcome_of")?;
                if let std::collections::hash_map::Entry::Vacant(e) = outcome_slot.entry(i) {
                    e.insert(slot(&mut outcome_slots, "outcome slots")?);
                }
            }
            for other in &node.distinct_from {
                let i = lookup(other, "distinct_from")?;
                if let std::collections::hash_map::Entry::Vacant(e) = actor_slot.entry(i) {
                    e.insert(slot(&mut actor_slots, "distinct_from slots")?);
                }
            }
        }
        let branch_ids: Vec<&BranchId> = spec.branches.keys().collect();
        let branch_of = |id: &BranchId| -> Result<u16, CompileError> {
            branch_ids
                .iter()
                .position(|b| *b == id)
                .and_then(|i| u16::try_from(i).ok())
                .ok_or_else(|| CompileError::UnknownBranch { branch: id.clone() })
        };
        let branch_text = |id: &BranchId| -> String {
            spec.branches
                .get(id)
                .and_then(|b| b.name.clone().or_else(|| b.pattern.clone()))
                .unwrap_or_else(|| id.to_string())
        };
        let branches = spec
            .branches
            .iter()
            .map(|(id, b)| match (&b.name, &b.pattern) {
                (Some(name), _) => BranchMatcher::Name(name.clone()),
                (None, Some(pattern)) => match pattern.split_once('*') {
                    Some((prefix, suffix)) => {
                        BranchMatcher::Pattern { prefix: prefix.to_owned(), suffix: suffix.to_owned() }
                    }
                    None => BranchMatcher::Name(pattern.clone()),
                },
                (None, None) => BranchMatcher::Name(id.to_string()),
            })
            .collect();

        let mut calendar_edges = Vec::new();
        let mut windows = Vec::with_capacity(spec.windows.len());
        let mut pause_mask = 0u64;
        for (w, (id, window)) in spec.windows.iter().enumerate() {
            let mut edge = |e: &WindowEdge| -> Result<CompiledEdge, CompileError> {
                Ok(match e {
                    WindowEdge::At(time) => {
                        let slot = u16::try_from(calendar_edges.len())
                            .map_err(|_| CompileError::TooMany { what: "window edges", max: 65_535 })?;
                        calendar_edges.push(crate::gate::CalendarEdge::Weekly(*time));
                        CompiledEdge::At { time: *time, slot }
                    }
                    WindowEdge::On(at) => {
                        let slot = u16::try_from(calendar_edges.len())
                            .map_err(|_| CompileError::TooMany { what: "window edges", max: 65_535 })?;
                        calendar_edges.push(crate::gate::CalendarEdge::Dated(at.0));
                        CompiledEdge::On { at: at.0, slot }
                    }
                    WindowEdge::After(node) => {
                        let node = lookup(node, "windows.after")?;
                        let slot = match watch_slot.get(&node) {
                            Some(&s) => s,
                            None => {
                                let s = slot(&mut watch_slots, "window slots")?;
                                watch_slot.insert(node, s);
                                s
                            }
                        };
                        CompiledEdge::After { node, slot }
                    }
                })
            };
            let opens = edge(&window.opens)?;
            let closes = edge(&window.closes)?;
            if window.pause_tasks {
                pause_mask |= 1 << w;
            }
            windows.push(CompiledWindow {
                id: id.clone(),
                title: window.title.clone(),
                opens,
                closes,
                allow_from: window.allow_merges_from.iter().map(&branch_of).collect::<Result<_, _>>()?,
                merges_into: window.merges_into.iter().map(&branch_of).collect::<Result<_, _>>()?,
            });
        }

        let environment =
            |id: &EnvironmentId| -> Option<String> { spec.environments.get(id).and_then(|e| e.url.clone()) };
        let escalation = |e: &Escalation, labels: &mut Interner| -> Result<CompiledEscalation, CompileError> {
            let then = match &e.then {
                None => Jump::Stay,
                Some(Then::Goto(id)) => {
                    let i = lookup(id, "escalate.then.goto")?;
                    if i == start {
                        return Err(CompileError::GotoStart { node: id.clone() });
                    }
                    Jump::Goto(i)
                }
                Some(Then::End(outcome)) => Jump::End(labels.intern(outcome)?),
            };
            let message = Template::new(e.message.as_deref().unwrap_or("{release}: `{node}` escalated"));
            Ok(CompiledEscalation { notify: e.notify.as_slice().into(), message, then })
        };

        let mut edges = Vec::with_capacity(spec.edges.len());
        let mut nodes = Vec::with_capacity(spec.nodes.len());
        let mut deadlines = Vec::new();
        let mut retries = Vec::new();
        for (i, (id, node)) in spec.nodes.iter().enumerate() {
            let me = NodeIndex(u16::try_from(i).unwrap_or(u16::MAX));
            let out_start =
                u32::try_from(edges.len()).map_err(|_| CompileError::TooMany { what: "edges", max: 1 << 31 })?;
            for edge in spec.edges.iter().filter(|e| &e.from == id) {
                let to = lookup(&edge.to, "edges.to")?;
                let label = edge.label.as_deref().map(|l| labels.intern(l)).transpose()?;
                edges.push(OutEdge { to, label });
            }
            let out_len = u16::try_from(edges.len() - out_start as usize)
                .map_err(|_| CompileError::TooMany { what: "out-edges of a node", max: 65_535 })?;
            match node.kind {
                NodeKind::End if out_len != 0 => {
                    return Err(CompileError::OutEdges { node: id.clone(), count: usize::from(out_len) });
                }
                NodeKind::Decision => {
                    let labelled = edges.get(out_start as usize..).unwrap_or(&[]).iter().all(|e| e.label.is_some());
                    if out_len < 2 || !labelled {
                        return Err(CompileError::Branches { node: id.clone() });
                    }
                }
                NodeKind::End => {}
                NodeKind::Parallel if out_len == 0 => {
                    return Err(CompileError::OutEdges { node: id.clone(), count: 0 });
                }
                NodeKind::Parallel => {}
                _ if out_len != 1 => {
                    return Err(CompileError::OutEdges { node: id.clone(), count: usize::from(out_len) });
                }
                _ => {}
            }
            let decider = match (&node.kind, &node.decided_by) {
                (NodeKind::Decision, Some(d)) => match (&d.role, &d.outcome_of) {
                    (Some(role), _) => Some(Decider::Role(role.clone())),
                    (None, Some(of)) => {
                        let node = lookup(of, "decided_by.outcome_of")?;
                        let slot = outcome_slot.get(&node).copied().unwrap_or(0);
                        let map = d
                            .map
                            .iter()
                            .map(|(from, to)| Ok((labels.intern(from)?, labels.intern(to)?)))
                            .collect::<Result<_, CompileError>>()?;
                        Some(Decider::OutcomeOf { slot, map })
                    }
                    (None, None) => return Err(CompileError::NoDecider { node: id.clone() }),
                },
                (NodeKind::Decision, None) => return Err(CompileError::NoDecider { node: id.clone() }),
                _ => None,
            };
            let action = node
                .action
                .as_ref()
                .map(|a| match a {
                    Action::Notify(n) => {
                        CompiledAction::Notify { to: n.to.as_slice().into(), message: Template::new(&n.message) }
                    }
                    Action::OpenPullRequest(p) => CompiledAction::OpenPullRequest {
                        from: branch_text(&p.from).into(),
                        to: branch_text(&p.to).into(),
                    },
                    Action::MergePullRequest(p) => CompiledAction::MergePullRequest {
                        from: branch_text(&p.from).into(),
                        to: branch_text(&p.to).into(),
                        requires: p.requires.clone().map(Arc::new),
                    },
                    Action::Deploy(e) => CompiledAction::Deploy {
                        environment: e.environment.clone(),
                        url: environment(&e.environment).map(Into::into),
                    },
                    Action::Rollback(e) => CompiledAction::Rollback {
                        environment: e.environment.clone(),
                        url: environment(&e.environment).map(Into::into),
                    },
                    Action::RunChecks(c) => {
                        CompiledAction::RunChecks { suite: c.suite.as_str().into(), environment: c.environment.clone() }
                    }
                })
                // An action node without an action does nothing and moves on, like a notify.
                .or_else(|| {
                    (node.kind == NodeKind::Action)
                        .then(|| CompiledAction::Notify { to: Arc::from([]), message: Template::new("") })
                });
            let deadline = match &node.deadline {
                Some(d) => {
                    let s = u16::try_from(deadlines.len())
                        .map_err(|_| CompileError::TooMany { what: "deadlines", max: 65_535 })?;
                    deadlines.push(CompiledDeadline {
                        node: me,
                        by: d.by,
                        escalation: escalation(&d.escalate, &mut labels)?,
                    });
                    Some(s)
                }
                None => None,
            };
            let retry = match &node.retry {
                Some(r) => {
                    let s =
                        u16::try_from(retries.len()).map_err(|_| CompileError::TooMany { what: "retries", max: 64 })?;
                    if retries.len() >= 64 {
                        return Err(CompileError::TooMany { what: "retries", max: 64 });
                    }
                    retries.push(CompiledRetry {
                        max_attempts: r.max_attempts,
                        escalation: escalation(&r.on_exhausted, &mut labels)?,
                    });
                    Some(s)
                }
                None => None,
            };
            nodes.push(CompiledNode {
                id: id.clone(),
                label: node.label.clone(),
                kind: node.kind,
                roles: if node.kind == NodeKind::Action {
                    reporters(spec, id).into_boxed_slice()
                } else {
                    node.roles.clone().into_boxed_slice()
                },
                outcomes: node.outcomes.iter().map(|o| labels.intern(o)).collect::<Result<_, _>>()?,
                distinct_from: node
                    .distinct_from
                    .iter()
                    .map(|other| {
                        let o = lookup(other, "distinct_from")?;
                        Ok((o, actor_slot.get(&o).copied().unwrap_or(0)))
                    })
                    .collect::<Result<_, CompileError>>()?,
                action,
                decider,
                gate: node.gate,
                on_holiday: node.on_holiday.unwrap_or_default(),
                deadline,
                retry,
                outcome_slot: outcome_slot.get(&me).copied(),
                actor_slot: actor_slot.get(&me).copied(),
                watch_slot: watch_slot.get(&me).copied(),
                outcome: node.outcome.as_deref().map(|o| labels.intern(o)).transpose()?,
                out_start,
                out_len,
            });
        }
        let Some(fallback) = nodes.get(start.get()).cloned() else {
            return Err(CompileError::NoStart);
        };
        let rules: Vec<kars_spec::spec::JoinRule> = spec.nodes.values().map(|n| n.join.unwrap_or_default()).collect();
        let blocks = forks::analyse(&forks::Graph {
            nodes: &nodes,
            edges: &edges,
            start,
            start_id: &fallback.id,
            deadlines: &deadlines,
            retries: &retries,
            rules: &rules,
        })?;
        Ok(Workflow {
            fallback,
            name: spec.name.as_str().into(),
            fingerprint: checked.fingerprint(),
            prints: crate::instance::upgrade::Prints::of(spec),
            zone: checked.zone(),
            cadence: spec.cadence.unwrap_or_default(),
            holidays: spec.holidays.clone(),
            nodes,
            edges,
            labels: labels.labels,
            start,
            windows,
            branches,
            deadlines,
            retries,
            calendar_edges,
            outcome_slots,
            actor_slots,
            watch_slots,
            pause_mask,
            succeeded,
            failed,
            exhausted,
            completed,
            skipped,
            blocks,
            index,
        })
    }
}

/// The roles that may report a waiting action's result by hand: its `reported_by`, or else the
/// roles of the nearest task or role decision before it, following the action's single way in
/// back through other actions and waits. Empty when there is none (then only the host's
/// adapters report it).
fn reporters(spec: &kars_spec::Spec, id: &NodeId) -> Vec<RoleId> {
    if let Some(node) = spec.nodes.get(id)
        && !node.reported_by.is_empty()
    {
        return node.reported_by.clone();
    }
    let mut at = id;
    for _ in 0..spec.nodes.len() {
        let mut ins = spec.edges.iter().filter(|e| e.to == *at);
        let (Some(edge), None) = (ins.next(), ins.next()) else { return Vec::new() };
        let Some(node) = spec.nodes.get(&edge.from) else { return Vec::new() };
        match node.kind {
            NodeKind::Task => return node.roles.clone(),
            NodeKind::Decision => {
                return node.decided_by.as_ref().and_then(|d| d.role.clone()).into_iter().collect();
            }
            NodeKind::Action | NodeKind::Wait | NodeKind::Parallel | NodeKind::Join => at = &edge.from,
            NodeKind::Start | NodeKind::End => return Vec::new(),
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kars() -> Workflow {
        let yaml =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../workflows/kars-release.yaml")).unwrap();
        Workflow::compile(&kars_spec::load(&yaml, "kars-release.yaml").unwrap()).unwrap()
    }

    #[test]
    fn compiles_the_bundled_spec_to_indices() {
        let w = kars();
        assert_eq!(w.node_count(), 33);
        assert_eq!(w.node_id(w.start()).map(NodeId::as_str), Some("A"));
        let n = w.node_index("N").unwrap();
        let labels: Vec<&str> = w.out_edges(n).iter().filter_map(|e| e.label).map(|l| w.label(l)).collect();
        assert_eq!(labels, ["No", "Yes"]);
        // AA reads Y's outcome; W and F must differ from U and E; the freeze watches J and AG.
        assert!(w.node(w.node_index("Y").unwrap()).outcome_slot.is_some());
        assert!(w.node(w.node_index("U").unwrap()).actor_slot.is_some());
        assert!(w.node(w.node_index("E").unwrap()).actor_slot.is_some());
        assert!(w.node(w.node_index("J").unwrap()).watch_slot.is_some());
        assert!(w.node(w.node_index("AG").unwrap()).watch_slot.is_some());
        assert_eq!(w.calendar_edges.len(), 2);
        assert_eq!(w.pause_mask, 0b10);
        assert_eq!(w.node_index("Nope"), None);
        assert_eq!(w.node_id(NodeIndex(999)), None);
        // An index from elsewhere degrades instead of panicking.
        assert_eq!(w.node(NodeIndex(999)).id.as_str(), "A");
    }
}
