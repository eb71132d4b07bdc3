//! Expectations over simulated runs: a versioned YAML file beside the spec
//! (`NAME.expect.yaml`) states what must hold over the seeds and weeks it names, and
//! [`Expectations::evaluate`] measures each statement with its margin.
//!
//! ```yaml
//! version: 1
//! run: { seeds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], start: 2026-01-05, weeks: 52 }
//! expect:
//!   released_on_time: { outcome: released, on_time: true, at_least: 0.8 }
//!   sign_off_by_friday: { completes: Q, by: Friday 15:00, at_least: 0.9 }
//!   sign_off_deadline: { deadline_missed: Q, at_most: 0.1 }
//!   freeze_to_production: { from: code_freeze opens, to: production, quantile: p90, within: 90h }
//!   windows_keep_their_word: { merges_follow_the_windows: true }
//!   every_cycle_ends: { cycles_end_with_an_outcome: true }
//! ```
//!
//! The file is checked against the spec like a model file: unknown keys, nodes, windows,
//! outcomes and deadlines are errors with the file, line and column and a `help:` line.

mod check;
mod file;
mod kinds;
mod measure;
mod render;

use std::fmt;

pub use check::{MAX_SEEDS, MAX_TOTAL_WEEKS};
pub use file::{EXPECT_VERSION, ExpectFile, ExpectationFile, MAX_EXPECT_BYTES, RunFile};
pub use kinds::{Expectation, ExpectationKind, Expectations, Point, Quantile, Share};
pub use measure::{CycleRef, ExpectReport, ExpectResult, Measured, Stopped};

/// A problem in an expectations file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpectError {
    /// The YAML did not parse into an expectations file (syntax, unknown key, wrong type).
    #[error("{}: {message}", place(origin, *line, *column))]
    Syntax {
        /// The file name.
        origin: String,
        /// The line, from 1 (0 when unknown).
        line: u64,
        /// The column, from 1 (0 when unknown).
        column: u64,
        /// What the parser found.
        message: String,
    },
    /// The file is larger than [`MAX_EXPECT_BYTES`].
    #[error("{origin}: the expectations file is {size} bytes; the limit is {MAX_EXPECT_BYTES}")]
    TooLarge {
        /// The file name.
        origin: String,
        /// Its size.
        size: usize,
    },
    /// A value is out of range or names something the spec does not have.
    #[error("{}: at `{path}`: {message}{}", place(origin, *line, *column), help.as_ref().map(|h| format!("\nhelp: {h}")).unwrap_or_default())]
    Invalid {
        /// The file name.
        origin: String,
        /// The line, from 1 (0 when unknown).
        line: u64,
        /// The column, from 1 (0 when unknown).
        column: u64,
        /// The path in the document (`expect.sign_off.completes`).
        path: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        help: Option<String>,
    },
}

/// `file:line:column`, or the file alone when the place is unknown.
fn place(origin: &str, line: u64, column: u64) -> String {
    if line == 0 { origin.to_owned() } else { format!("{origin}:{line}:{column}") }
}

impl fmt::Display for CycleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {}, week {} ({})", self.seed, self.week, self.release)
    }
}
