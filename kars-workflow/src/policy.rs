//! Freeze and blackout windows: which are open, which merges they refuse, and the
//! [`Permission`] a merge bot gets from [`crate::Instance::may`].
//!
//! A window edge has a *last occurrence*: for `at: Saturday 00:00` the latest such instant at or
//! before now, for `after: J` the instant `J` completed in the running cycle. A window is open
//! when its opening edge has occurred and its closing edge has not occurred since.

use chrono::{DateTime, Utc};
use kars_spec::WindowId;
use serde::{Deserialize, Serialize};

use crate::instance::Stamp;
use crate::workflow::{CompiledEdge, CompiledWindow, Workflow};

/// The answer to "may this merge happen now?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// Whether the merge is allowed.
    pub allowed: bool,
    /// The window that decided: the one that forbids it, or an open one that allows it.
    pub window: Option<WindowId>,
    /// Why, in a sentence.
    pub reason: String,
    /// When the forbidding window closes, when that is known.
    pub until: Option<DateTime<Utc>>,
    /// What the merge's `requires:` asks for that the forge's evidence does not show (only
    /// from [`crate::Instance::may_with`]; empty otherwise and when every requirement is met).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmet: Vec<crate::requirements::Unmet>,
}

fn edge_last(edge: CompiledEdge, calendar: &[Stamp], watched: &[Stamp]) -> Option<DateTime<Utc>> {
    match edge {
        CompiledEdge::At { slot, .. } => calendar.get(usize::from(slot)).map(|s| s.at),
        CompiledEdge::After { slot, .. } => watched.get(usize::from(slot)).and_then(|s| s.get()),
        // A dated edge still ahead has not happened ([`crate::gate::EARLIEST`]).
        CompiledEdge::On { slot, .. } => {
            calendar.get(usize::from(slot)).map(|s| s.at).filter(|at| *at > crate::gate::EARLIEST)
        }
    }
}

/// Whether `window` is open given the last calendar occurrences and the watched completions.
pub(crate) fn is_open(window: &CompiledWindow, calendar: &[Stamp], watched: &[Stamp]) -> bool {
    match (edge_last(window.opens, calendar, watched), edge_last(window.closes, calendar, watched)) {
        (Some(opened), Some(closed)) => opened > closed,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The set of open windows, one bit per window.
pub(crate) fn open_mask(workflow: &Workflow, calendar: &[Stamp], watched: &[Stamp]) -> u64 {
    workflow
        .windows
        .iter()
        .enumerate()
        .filter(|(_, w)| is_open(w, calendar, watched))
        .fold(0, |mask, (i, _)| mask | (1u64 << i))
}

/// The first open window that refuses a merge from `source` into `target`, and whether some
/// open window covered the target but allowed the source.
pub(crate) fn merge_refusal(
    workflow: &Workflow,
    open: u64,
    source: &str,
    target: &str,
) -> (Option<usize>, Option<usize>) {
    let matches = |ids: &[u16], branch: &str| {
        ids.iter().any(|&b| workflow.branches.get(usize::from(b)).is_some_and(|m| m.matches(branch)))
    };
    let mut allowed_by = None;
    for (i, window) in workflow.windows.iter().enumerate() {
        if open & (1u64 << i) == 0 {
            continue;
        }
        let covers = window.merges_into.is_empty() || matches(&window.merges_into, target);
        if !covers {
            continue;
        }
        if matches(&window.allow_from, source) {
            allowed_by.get_or_insert(i);
        } else {
            return (Some(i), allowed_by);
        }
    }
    (None, allowed_by)
}

#[cfg(test)]
mod tests {
    use crate::workflow::BranchMatcher;

    #[test]
    fn branch_patterns_match_one_star() {
        let p = BranchMatcher::Pattern { prefix: "feature/".into(), suffix: String::new() };
        assert!(p.matches("feature/login"));
        assert!(p.matches("feature/"));
        assert!(!p.matches("hotfix/x"));
        let s = BranchMatcher::Pattern { prefix: "rel-".into(), suffix: "-x".into() };
        assert!(s.matches("rel-1-x"));
        assert!(!s.matches("rel-x"));
        assert!(BranchMatcher::Name("kars-dev".into()).matches("kars-dev"));
    }
}
