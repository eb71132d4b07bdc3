//! The `Vcs` trait: pull requests, merges and branch heads, and the data they take and return.

use std::fmt;

use serde::{Deserialize, Serialize};

use kars_spec::spec::MergeRequirements;

use super::AdapterError;
use crate::driver::Roster;

/// One branch by name, or every branch a pattern matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchSelector {
    /// An exact branch name (`kars-dev`).
    Name(String),
    /// A glob with exactly one `*` (`feature/*`); `*` matches any characters, `/` included.
    Pattern(String),
}

impl BranchSelector {
    /// Whether `branch` is selected (for a pattern without exactly one `*`: never).
    #[must_use]
    pub fn matches(&self, branch: &str) -> bool {
        match self {
            Self::Name(name) => name == branch,
            Self::Pattern(pattern) => match pattern.split_once('*') {
                Some((prefix, suffix)) if !suffix.contains('*') => {
                    branch.len() >= prefix.len() + suffix.len()
                        && branch.starts_with(prefix)
                        && branch.ends_with(suffix)
                }
                _ => false,
            },
        }
    }
}

impl fmt::Display for BranchSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(s) | Self::Pattern(s) => f.write_str(s),
        }
    }
}

/// A commit at the tip of a branch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BranchHead {
    /// The branch name.
    pub branch: String,
    /// The commit id (hex).
    pub commit: String,
}

/// A request to open a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OpenPullRequest {
    /// The effect's idempotency key: the same key returns the same pull request.
    pub key: String,
    /// The source branch or pattern.
    pub from: BranchSelector,
    /// The target branch.
    pub to: String,
    /// A one-line title.
    pub title: String,
}

/// An opened pull request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PullRequest {
    /// The VCS's id for it.
    pub id: String,
    /// The source branch or pattern.
    pub from: BranchSelector,
    /// The target branch.
    pub to: String,
    /// The source branches and their heads when it was opened.
    pub sources: Vec<BranchHead>,
}

/// Where a pull request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReviewState {
    /// Waiting for review.
    Open,
    /// Approved, not merged.
    Approved,
    /// A reviewer asked for changes.
    ChangesRequested,
    /// Its changes are in the target branch.
    Merged,
    /// Closed without merging.
    Closed,
}

/// A request to merge a branch or pattern into a branch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MergeRequest {
    /// The effect's idempotency key: a repeated merge with the same key is a no-op that returns
    /// the first outcome.
    pub key: String,
    /// The source branch or pattern.
    pub from: BranchSelector,
    /// The target branch.
    pub to: String,
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MergeOutcome {
    /// The target's head after the merge.
    pub head: String,
    /// The source branches merged, with the heads that were merged (empty if all were in already).
    pub merged: Vec<BranchHead>,
    /// Whether this is the recorded outcome of an earlier call with the same key.
    pub replayed: bool,
}

/// Version control: pull requests, merges, branch heads.
pub trait Vcs {
    /// Opens a pull request from `request.from` to `request.to`, or returns the one opened
    /// earlier with the same key.
    ///
    /// # Errors
    /// Permanent if a named branch is missing; transient if the VCS is unavailable.
    fn open_pull_request(&self, request: &OpenPullRequest) -> Result<PullRequest, AdapterError>;

    /// The review state of pull request `id`.
    ///
    /// # Errors
    /// Permanent if there is no such pull request.
    fn review_state(&self, id: &str) -> Result<ReviewState, AdapterError>;

    /// Merges `request.from` into `request.to` (a merge commit per source, never a fast
    /// forward), or returns the recorded outcome of an earlier merge with the same key.
    ///
    /// # Errors
    /// Permanent if the target or a named source branch is missing or the merge conflicts;
    /// transient if the target moved during the merge or the VCS is unavailable.
    fn merge(&self, request: &MergeRequest) -> Result<MergeOutcome, AdapterError>;

    /// [`Vcs::merge`] with what the spec says the merge needs (`requires:` on a
    /// `merge_pull_request` action) over the adapter's own rules; `reviewers` is the
    /// instance's roster, which says whose forge login an approving review is (for
    /// `approved_by` roles). Adapters without reviews or checks (the local git adapter, the
    /// fakes) merge as [`Vcs::merge`] does.
    ///
    /// # Errors
    /// As [`Vcs::merge`]; forge adapters also refuse a pull request that misses a requirement
    /// with [`AdapterError::Unmet`], listing each.
    fn merge_requiring(
        &self,
        request: &MergeRequest,
        requires: &MergeRequirements,
        reviewers: &Roster,
    ) -> Result<MergeOutcome, AdapterError> {
        let _ = (requires, reviewers);
        self.merge(request)
    }

    /// The commit at the tip of `branch`, or `None` if there is no such branch.
    ///
    /// # Errors
    /// Permanent for an invalid branch name; transient if the VCS is unavailable.
    fn head(&self, branch: &str) -> Result<Option<String>, AdapterError>;
}

impl<V: Vcs + ?Sized> Vcs for &V {
    fn open_pull_request(&self, request: &OpenPullRequest) -> Result<PullRequest, AdapterError> {
        (**self).open_pull_request(request)
    }
    fn review_state(&self, id: &str) -> Result<ReviewState, AdapterError> {
        (**self).review_state(id)
    }
    fn merge(&self, request: &MergeRequest) -> Result<MergeOutcome, AdapterError> {
        (**self).merge(request)
    }
    fn merge_requiring(
        &self,
        request: &MergeRequest,
        requires: &MergeRequirements,
        reviewers: &Roster,
    ) -> Result<MergeOutcome, AdapterError> {
        (**self).merge_requiring(request, requires, reviewers)
    }
    fn head(&self, branch: &str) -> Result<Option<String>, AdapterError> {
        (**self).head(branch)
    }
}

impl<V: Vcs + ?Sized> Vcs for std::sync::Arc<V> {
    fn open_pull_request(&self, request: &OpenPullRequest) -> Result<PullRequest, AdapterError> {
        (**self).open_pull_request(request)
    }
    fn review_state(&self, id: &str) -> Result<ReviewState, AdapterError> {
        (**self).review_state(id)
    }
    fn merge(&self, request: &MergeRequest) -> Result<MergeOutcome, AdapterError> {
        (**self).merge(request)
    }
    fn merge_requiring(
        &self,
        request: &MergeRequest,
        requires: &MergeRequirements,
        reviewers: &Roster,
    ) -> Result<MergeOutcome, AdapterError> {
        (**self).merge_requiring(request, requires, reviewers)
    }
    fn head(&self, branch: &str) -> Result<Option<String>, AdapterError> {
        (**self).head(branch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_have_one_star() {
        let p = BranchSelector::Pattern("feature/*".into());
        assert!(p.matches("feature/a"));
        assert!(p.matches("feature/a/b"));
        assert!(p.matches("feature/"));
        assert!(!p.matches("fix/a"));
        assert!(!p.matches("feature"));
        let s = BranchSelector::Pattern("*-hotfix".into());
        assert!(s.matches("x-hotfix") && !s.matches("x-hotfix2"));
        assert!(!BranchSelector::Pattern("a*b*".into()).matches("ab"));
        assert!(!BranchSelector::Pattern("plain".into()).matches("plain"));
        assert!(BranchSelector::Name("kars-dev".into()).matches("kars-dev"));
    }
}
