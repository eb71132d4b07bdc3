//! The engine's errors: [`CompileError`] when a spec cannot be compiled, [`EngineError`] when an
//! input is refused or a history does not replay.

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use kars_spec::{BranchId, Fingerprint, NodeId, RoleId, WindowId};

use crate::effect::EffectKey;
use crate::gate::format_local;
use serde::{Deserialize, Serialize};

/// Why a checked spec could not be compiled. A spec that passed validation never gives one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The spec has no `start` node.
    #[error("the workflow has no `start` node\nhelp: give exactly one node `kind: start`")]
    NoStart,
    /// The spec has more than one `start` node.
    #[error("the workflow has two `start` nodes, `{first}` and `{second}`\nhelp: keep exactly one")]
    ManyStarts {
        /// The first start node.
        first: NodeId,
        /// Another start node.
        second: NodeId,
    },
    /// A reference names a node the spec does not declare.
    #[error("`{place}` names node `{node}`, which the workflow does not declare")]
    UnknownNode {
        /// The missing node.
        node: NodeId,
        /// Where it was named.
        place: &'static str,
    },
    /// A window names a branch the spec does not declare.
    #[error("a window names branch `{branch}`, which the workflow does not declare")]
    UnknownBranch {
        /// The missing branch.
        branch: BranchId,
    },
    /// A node that is neither a decision nor an end does not have exactly one out-edge.
    #[error("node `{node}` has {count} outgoing edges; only decisions branch and ends have none")]
    OutEdges {
        /// The node.
        node: NodeId,
        /// How many edges leave it.
        count: usize,
    },
    /// A decision has fewer than two out-edges or an unlabelled one.
    #[error("decision `{node}` needs at least two outgoing edges, each with a label")]
    Branches {
        /// The decision.
        node: NodeId,
    },
    /// A decision has neither `decided_by.role` nor `decided_by.outcome_of`.
    #[error("decision `{node}` says nobody decides it\nhelp: set `decided_by.role` or `decided_by.outcome_of`")]
    NoDecider {
        /// The decision.
        node: NodeId,
    },
    /// An escalation jumps to the start node, which only back edges may enter.
    #[error("an escalation jumps to the start node `{node}`\nhelp: use `then: {{ end: OUTCOME }}` to end the cycle")]
    GotoStart {
        /// The start node.
        node: NodeId,
    },
    /// A `join` node is reached from outside every parallel block.
    #[error(
        "join `{join}` is reached outside any parallel block\nhelp: a join ends the block a `parallel` node starts"
    )]
    JoinOutsideFork {
        /// The join.
        join: NodeId,
    },
    /// The branches of a `parallel` node never meet at a join.
    #[error(
        "the branches of parallel `{fork}` never meet at a join\nhelp: lead every branch to one `join` node (or to an `end`)"
    )]
    ForkWithoutJoin {
        /// The parallel node.
        fork: NodeId,
    },
    /// The branches of a `parallel` node meet at two joins.
    #[error(
        "the branches of parallel `{fork}` meet at two joins, `{first}` and `{second}`\nhelp: lead every branch of a parallel node to one join"
    )]
    TwoJoins {
        /// The parallel node.
        fork: NodeId,
        /// One join.
        first: NodeId,
        /// Another join.
        second: NodeId,
    },
    /// A node is reached from two places of the block structure: from inside and outside a
    /// parallel branch, or from two branches.
    #[error(
        "node `{node}` is reached from two parallel branches, or from inside and outside one\nhelp: a branch leaves its block only through its join or an `end`; escalations jump within their branch"
    )]
    LeavesBranch {
        /// The node.
        node: NodeId,
    },
    /// The spec is larger than the engine's index types allow.
    #[error("the workflow has more {what} than the engine supports ({max})")]
    TooMany {
        /// What there are too many of.
        what: &'static str,
        /// The limit.
        max: usize,
    },
}

/// What the instance was doing when an event did not fit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Expecting {
    /// A task completion.
    Task,
    /// A role decision.
    Decision,
    /// A decision taken automatically from an earlier outcome.
    AutomaticDecision,
    /// A result for a waiting action.
    ActionResult,
    /// A gate to open.
    Gate,
    /// The next cycle to start.
    NextCycle,
    /// Nothing: the instance is stalled (see [`crate::Waiting`]).
    Stalled,
}

impl fmt::Display for Expecting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expecting::Task => "waits for its task to be completed",
            Expecting::Decision => "waits for a decision",
            Expecting::AutomaticDecision => "is decided automatically",
            Expecting::ActionResult => "waits for its action's result",
            Expecting::Gate => "waits for its gate to open",
            Expecting::NextCycle => "waits for the next cycle to start",
            Expecting::Stalled => "is stalled",
        })
    }
}

/// Why a replay or a restore did not reproduce the recorded instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mismatch {
    /// The history or snapshot was made with another spec.
    Fingerprint {
        /// The fingerprint recorded.
        recorded: Fingerprint,
        /// The workflow's fingerprint.
        workflow: Fingerprint,
    },
    /// The history does not begin with the instance's start.
    NoStart,
    /// A recorded input was accepted but is refused now, or the other way round.
    Verdict {
        /// What was recorded (`accepted` or the refusal).
        recorded: String,
        /// What replaying gave.
        replayed: String,
    },
    /// The recorded resolved instants do not match what the engine asked for.
    Resolution,
    /// A snapshot's tables do not fit the workflow.
    Shape,
    /// The history starts after record 0: its older records were released (see
    /// [`crate::Instance::release_history`]), and replay needs them all.
    Partial {
        /// The sequence number of the first record the history holds.
        first_seq: u64,
    },
    /// The history moves to a spec version the replay was not given.
    UnknownVersion {
        /// The version's fingerprint.
        fingerprint: Fingerprint,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Fingerprint { recorded, workflow } => write!(
                f,
                "it was recorded with spec fingerprint `{recorded}` but the workflow's is `{workflow}`\nhelp: replay with the spec the instance ran"
            ),
            Mismatch::NoStart => f.write_str("it does not begin with the instance's start"),
            Mismatch::Verdict { recorded, replayed } => {
                write!(f, "the recorded result was {recorded} but replaying gives {replayed}")
            }
            Mismatch::Resolution => {
                f.write_str("its recorded gate, deadline or calendar instants do not fit the workflow")
            }
            Mismatch::Shape => f.write_str("its tables do not fit the workflow"),
            Mismatch::Partial { first_seq } => write!(
                f,
                "it starts at record {first_seq} (the records before were released) and replay needs it from record 0\nhelp: read the whole history from the store it was journaled to"
            ),
            Mismatch::UnknownVersion { fingerprint } => write!(
                f,
                "it upgrades to spec `{fingerprint}`, which the replay was not given\nhelp: give replay every spec version the instance ran (the driver keeps them in the journal)"
            ),
        }
    }
}

/// Why the engine refused an input, or could not rebuild an instance.
///
/// Refused inputs change no state; they are still kept in the [`crate::History`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EngineError {
    /// The actor holds none of the roles the node needs (for an action: the roles that may
    /// report its result).
    #[error("{}", unauthorized_text(actor, node, needed))]
    Unauthorized {
        /// The node.
        node: NodeId,
        /// The actor's name.
        actor: String,
        /// The roles that may act.
        needed: Vec<RoleId>,
    },
    /// The actor completed a node this one must be kept apart from.
    #[error(
        "`{actor}` may not complete `{node}`: they completed `{other}` this cycle and `{node}` needs someone else\nhelp: ask another holder of the role"
    )]
    SeparationOfDuties {
        /// The node.
        node: NodeId,
        /// The actor's name.
        actor: String,
        /// The node the actor completed earlier this cycle.
        other: NodeId,
    },
    /// The node is not the one awaiting this kind of event.
    #[error("`{node}` is not awaiting this event: {}", at_node(current.as_ref(), expecting))]
    NotAwaiting {
        /// The node the event named.
        node: NodeId,
        /// The node the instance is at, if a cycle is running.
        current: Option<NodeId>,
        /// What the instance waits for instead.
        expecting: Expecting,
    },
    /// The node's gate has not opened yet.
    #[error(
        "`{node}` cannot start before its gate opens at {} ({} UTC)",
        format_local(*opens_at, *zone),
        opens_at.format("%Y-%m-%d %H:%M")
    )]
    GateNotOpen {
        /// The gated node.
        node: NodeId,
        /// When the gate opens.
        opens_at: DateTime<Utc>,
        /// The workflow's zone, in which the message shows the instant.
        #[serde(with = "zone_name")]
        zone: Tz,
    },
    /// An open window forbids the input.
    #[error("window `{window}` forbids {subject} until {}", until_text(until.map(|at| format_local(at, *zone)), until_node.as_ref()))]
    WindowForbids {
        /// The window.
        window: WindowId,
        /// What is forbidden.
        subject: Forbidden,
        /// When the window closes, when that is known.
        until: Option<DateTime<Utc>>,
        /// The node whose completion closes the window, for node-bound windows.
        until_node: Option<NodeId>,
        /// The workflow's zone, in which the message shows the instant.
        #[serde(with = "zone_name")]
        zone: Tz,
    },
    /// A waiting action's result names an effect other than the one the node's current visit
    /// emitted: a late result of an earlier visit, or of another instance.
    #[error(
        "the result for `{node}` comes from effect `{key}`, but `{node}` waits for effect `{expected}`\nhelp: a late or repeated result changes nothing; report the result of the current effect"
    )]
    StaleResult {
        /// The action node.
        node: NodeId,
        /// The effect the result names.
        key: EffectKey,
        /// The effect the node waits for.
        expected: EffectKey,
    },
    /// A new action result that does not say who reports it.
    #[error(
        "the result for `{node}` does not say who reports it\nhelp: report it as a person (`Reporter::Person`) or as the adapter that performed the effect (`Reporter::Effect`)"
    )]
    NoReporter {
        /// The action node.
        node: NodeId,
    },
    /// A decision branch or task outcome that the node does not declare, or a missing one.
    #[error("{}", outcome_text(node, given.as_deref(), valid))]
    UnknownOutcome {
        /// The node.
        node: NodeId,
        /// The outcome given, if any.
        given: Option<String>,
        /// The outcomes the node accepts; empty when it takes none.
        valid: Vec<String>,
    },
    /// The event names a node the workflow does not have.
    #[error("the workflow has no node `{node}`")]
    UnknownNode {
        /// The node named.
        node: NodeId,
    },
    /// A history does not replay to the same instance.
    #[error("the history does not replay{}: {mismatch}", seq.map(|s| format!(" at record {s}")).unwrap_or_default())]
    ReplayMismatch {
        /// The record where it diverged, if one did.
        seq: Option<u64>,
        /// How it diverged.
        mismatch: Mismatch,
    },
    /// A snapshot does not fit the workflow.
    #[error("the snapshot cannot be restored: {mismatch}")]
    SnapshotMismatch {
        /// How it does not fit.
        mismatch: Mismatch,
    },
    /// An upgrade to the spec the instance already runs (or has scheduled).
    #[error("the instance already runs spec `{fingerprint}`")]
    UpgradeUnchanged {
        /// The spec's fingerprint.
        fingerprint: Fingerprint,
    },
    /// An upgrade asked to take effect now would invalidate the running cycle.
    #[error("{}", crate::instance::upgrade::blocked_text(blockers))]
    UpgradeBlocked {
        /// Every reason, in the order found.
        blockers: Vec<crate::instance::UpgradeBlocker>,
    },
}

/// What a window forbids, as data: the message is rendered from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Forbidden {
    /// A merge from `source` into `target`.
    Merge {
        /// The source branch.
        source: String,
        /// The target branch.
        target: String,
    },
    /// Work on a task or decision (a `pause_tasks` window).
    Work {
        /// The node.
        node: NodeId,
    },
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Forbidden::Merge { source, target } => write!(f, "merges from `{source}` into `{target}`"),
            Forbidden::Work { node } => write!(f, "work on `{node}`"),
        }
    }
}

/// Serializes a zone as its IANA name.
mod zone_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(zone: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(zone.name())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(|_| serde::de::Error::custom(format_args!("`{name}` is not an IANA time zone")))
    }
}

fn ticks<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "(none)".to_owned();
    }
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

fn unauthorized_text(actor: &str, node: &NodeId, needed: &[RoleId]) -> String {
    if needed.is_empty() {
        format!(
            "`{actor}` may not report the result of `{node}`: no role may report it by hand\nhelp: add `reported_by: [ROLE]` to node `{node}` in the spec"
        )
    } else {
        format!("`{actor}` may not act on `{node}`, which needs one of the roles {}", ticks(needed))
    }
}

fn at_node(current: Option<&NodeId>, expecting: &Expecting) -> String {
    match current {
        Some(node) => format!("the instance is at `{node}`, which {expecting}"),
        None => format!("the instance {expecting}"),
    }
}

fn until_text(until: Option<String>, node: Option<&NodeId>) -> String {
    match (node, until) {
        (Some(node), Some(at)) => format!("`{node}` completes (its gate opens {at})"),
        (Some(node), None) => format!("`{node}` completes"),
        (None, Some(at)) => at,
        (None, None) => "it closes".to_owned(),
    }
}

fn outcome_text(node: &NodeId, given: Option<&str>, valid: &[String]) -> String {
    match (given, valid.is_empty()) {
        (Some(g), true) => format!("`{node}` takes no outcome, but `{g}` was given\nhelp: leave `outcome` out"),
        (Some(g), false) => format!("`{node}` has no outcome `{g}`; valid: {}", ticks(valid)),
        (None, _) => format!("`{node}` needs an outcome; valid: {}", ticks(valid)),
    }
}
