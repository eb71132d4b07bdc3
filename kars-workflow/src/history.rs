//! The audit trail: every accepted or refused input, with the instants the engine resolved while
//! handling it, so that [`crate::Instance::replay`] rebuilds the same instance without
//! recomputing anything under other time-zone rules.

use chrono::{DateTime, NaiveDate, Utc};
use kars_spec::Fingerprint;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::event::{Event, InstanceId};
use crate::workflow::NodeIndex;

mod held;

pub use held::{History, HistoryError, Records};

/// Who and what a history belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryHeader {
    /// The fingerprint of the spec the instance runs.
    pub fingerprint: Fingerprint,
    /// The workflow's name (shared with the compiled workflow).
    #[serde(with = "crate::shared::arc_str")]
    pub workflow: std::sync::Arc<str>,
    /// The instance.
    pub instance: InstanceId,
    /// When the instance started.
    pub started_at: DateTime<Utc>,
}

/// One input and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The position in the history, from 0.
    pub seq: u64,
    /// The instant the host passed in.
    pub at: DateTime<Utc>,
    /// The input.
    pub input: Input,
    /// Accepted, or refused with the reason.
    pub verdict: Verdict,
    /// The instants and dates the engine resolved while handling the input, in order (most
    /// inputs resolve none).
    #[serde(default, skip_serializing_if = "<[Resolved]>::is_empty")]
    pub resolved: Box<[Resolved]>,
}

/// An input to an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// [`crate::Instance::start`].
    Start,
    /// [`crate::Instance::handle_event`].
    Event(Event),
    /// [`crate::Instance::handle_timeout`] (recorded only when a timer was due).
    Timeout,
    /// [`crate::Instance::upgrade`]: a move to the spec with fingerprint `to`.
    Upgrade {
        /// The new spec's fingerprint.
        to: Fingerprint,
        /// When it takes effect.
        when: crate::instance::UpgradeWhen,
    },
}

/// What became of an input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The input was accepted.
    Accepted,
    /// The input was refused and changed nothing.
    Refused(Box<EngineError>),
}

impl Verdict {
    pub(crate) fn describe(&self) -> String {
        match self {
            Verdict::Accepted => "accepted".to_owned(),
            Verdict::Refused(e) => format!("refused ({e})"),
        }
    }

    /// Whether two verdicts agree: both accepted, or both refused for the same kind of reason.
    /// Refusal details such as a window's closing instant depend on time-zone rules, so replay
    /// compares only the kind.
    pub(crate) fn agrees(&self, other: &Verdict) -> bool {
        match (self, other) {
            (Verdict::Accepted, Verdict::Accepted) => true,
            (Verdict::Refused(a), Verdict::Refused(b)) => std::mem::discriminant(&**a) == std::mem::discriminant(&**b),
            _ => false,
        }
    }
}

/// An instant or date the engine computed from the calendar and the zone, kept so that replay
/// uses it instead of computing it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolved {
    /// A cycle started; its Monday in the zone.
    Cycle {
        /// The cycle's Monday.
        monday: NaiveDate,
    },
    /// A deadline armed at cycle start.
    Deadline {
        /// The node.
        node: NodeIndex,
        /// Its instant.
        at: DateTime<Utc>,
    },
    /// A gate armed on arrival.
    Gate {
        /// The node.
        node: NodeIndex,
        /// When it opens.
        at: DateTime<Utc>,
    },
    /// The Monday 00:00 after the ending cycle's week, earliest start of the next cycle.
    NextCycle {
        /// The instant.
        at: DateTime<Utc>,
    },
    /// The last occurrence of every calendar window edge at or before the input, and the next
    /// instant one occurs.
    Calendar {
        /// Last occurrences, in the workflow's calendar-edge order (shared: instances that
        /// refresh their calendar in the same stretch between edges share one list).
        #[serde(with = "crate::shared::arc_slice")]
        last: std::sync::Arc<[DateTime<Utc>]>,
        /// The next edge.
        next: Option<DateTime<Utc>>,
    },
    /// What happened to parallel branches (kept so that the history says it, and checked
    /// again on replay).
    Branch(BranchEvent),
}

/// What happened to a parallel branch while an input was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BranchEvent {
    /// A `parallel` node started a branch.
    Started {
        /// The `parallel` node.
        fork: NodeIndex,
        /// The branch's first node.
        node: NodeIndex,
    },
    /// A branch arrived at a `join: all` join that still waits for others.
    Arrived {
        /// The join.
        join: NodeIndex,
    },
    /// A join passed on: every branch arrived (`join: all`) or the first did (`join: first`).
    Joined {
        /// The join.
        join: NodeIndex,
    },
    /// A branch was cancelled.
    Cancelled {
        /// The node the branch was at (or was about to start at).
        node: NodeIndex,
        /// Why.
        reason: CancelReason,
    },
}

/// Why a parallel branch was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CancelReason {
    /// Another branch ended the cycle (an `end` node, a back edge to the start, a retry
    /// bound that ends the cycle).
    End {
        /// The node that ended it.
        by: NodeIndex,
    },
    /// Another branch reached a `join: first` join.
    JoinFirst {
        /// The join.
        join: NodeIndex,
    },
    /// A deadline's escalation jumped (`then: goto`) or ended the cycle (`then: end`).
    Escalation {
        /// The node whose deadline it was.
        by: NodeIndex,
    },
}
