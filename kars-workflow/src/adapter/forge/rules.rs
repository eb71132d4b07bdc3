//! What a merge on a forge needs: approvals, named checks, and how it merges.

use serde::{Deserialize, Serialize};

/// How a forge merges a pull request (GitHub's `merge_method`; on GitLab, `squash` sets
/// `squash: true` and `rebase` is refused, since GitLab rebases with a separate call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeMethod {
    /// A merge commit (`git merge --no-ff`), as the local git adapter does.
    #[default]
    Merge,
    /// One squashed commit.
    Squash,
    /// The commits replayed onto the target.
    Rebase,
}

impl MergeMethod {
    /// GitHub's name for it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merge => "merge",
            Self::Squash => "squash",
            Self::Rebase => "rebase",
        }
    }
}

/// What a pull request needs before the adapter merges it. The forge's own branch protection
/// still applies on top; these rules let kars refuse early, with a reason the workflow routes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MergeRules {
    /// Approving reviews needed (the latest review of each reviewer counts). With at least
    /// one, the merge is guarded by the commit the latest approval was given on: a head that
    /// moved since is refused.
    pub approvals: u32,
    /// Check runs (by name) that must have completed with `success`, `neutral` or `skipped`
    /// on the head.
    pub checks: Vec<String>,
    /// How to merge.
    pub method: MergeMethod,
}

impl Default for MergeRules {
    /// One approval, no named checks, a merge commit.
    fn default() -> Self {
        Self { approvals: 1, checks: Vec::new(), method: MergeMethod::Merge }
    }
}
