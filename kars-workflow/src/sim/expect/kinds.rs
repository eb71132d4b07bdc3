//! What a checked expectations file states: the runs, and each expectation as typed data.

use std::fmt;

use chrono::NaiveDate;
use kars_spec::calendar::WeekTime;
use kars_spec::{NodeId, WindowId};

/// A checked expectations file: what to simulate and what must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectations {
    /// One run per seed, in this order.
    pub seeds: Vec<u64>,
    /// The first day of every run.
    pub start: NaiveDate,
    /// Weeks per run.
    pub weeks: u32,
    /// The expectations, in the file's order.
    pub items: Vec<Expectation>,
    /// The spec's deploy nodes: `production` is the last successful one in a cycle.
    pub(crate) deploys: Vec<NodeId>,
}

/// One named expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// Its name in the file.
    pub name: String,
    /// What it states.
    pub kind: ExpectationKind,
}

/// What an expectation states.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ExpectationKind {
    /// A share of cycles ends with `outcome` (and on time, when `on_time`).
    Outcome {
        /// The cycle outcome (`released`).
        outcome: String,
        /// Count only cycles that ran on time.
        on_time: bool,
        /// The bound on the share.
        share: Share,
    },
    /// A share of cycles completes `node` by a time of the cycle's week.
    CompletesBy {
        /// The node.
        node: NodeId,
        /// The time of the week, in the spec's zone.
        by: WeekTime,
        /// The bound on the share.
        share: Share,
    },
    /// A share of cycles misses `node`'s deadline.
    DeadlineMissed {
        /// The node with the deadline.
        node: NodeId,
        /// The bound on the share.
        share: Share,
    },
    /// The time from one point of a cycle to another stays within a bound.
    Span {
        /// Where the span starts.
        from: Point,
        /// Where it ends.
        to: Point,
        /// Which cycle is bounded.
        quantile: Quantile,
        /// The bound, in minutes.
        within_minutes: u32,
    },
    /// The windows' answers (`may()`) and the engine's verdicts on merges never disagree.
    MergesFollowTheWindows,
    /// Every cycle ends with a recorded outcome.
    CyclesEndWithAnOutcome,
}

/// A bound on a share of cycles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Share {
    /// At least this share (0 to 1).
    AtLeast(f64),
    /// At most this share (0 to 1).
    AtMost(f64),
}

/// A point in a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Point {
    /// The node's first completion in the cycle.
    Node(NodeId),
    /// The window's first opening in the cycle.
    Opens(WindowId),
    /// The window's first closing in the cycle.
    Closes(WindowId),
    /// The cycle's last successful deploy.
    Production,
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Point::Node(node) => write!(f, "`{node}`"),
            Point::Opens(window) => write!(f, "`{window}` opens"),
            Point::Closes(window) => write!(f, "`{window}` closes"),
            Point::Production => f.write_str("production"),
        }
    }
}

/// Which cycle of a sorted list a span bound applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantile {
    /// The nearest-rank percentile (1 to 99).
    Percentile(u8),
    /// The longest.
    Max,
}

impl fmt::Display for Quantile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantile::Percentile(p) => write!(f, "p{p}"),
            Quantile::Max => f.write_str("max"),
        }
    }
}
