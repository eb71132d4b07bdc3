//! The subset of GitHub's REST types the adapters read (unknown fields are ignored).

use serde::Deserialize;

/// `GET /repos/{owner}/{repo}/pulls/{number}` and the list's items.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Pull {
    pub number: u64,
    pub state: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(default)]
    pub merged_at: Option<String>,
    /// `null` while GitHub computes it; absent in lists.
    #[serde(default)]
    pub mergeable: Option<bool>,
    #[serde(default)]
    pub mergeable_state: Option<String>,
    pub head: Ref,
}

impl Pull {
    pub(super) fn is_merged(&self) -> bool {
        self.merged.unwrap_or(false) || self.merged_at.is_some()
    }

    pub(super) fn has_marker(&self, marker: &str) -> bool {
        self.body.as_deref().is_some_and(|b| b.contains(marker))
    }
}

/// A pull request's head.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Ref {
    #[serde(rename = "ref")]
    pub name: String,
    pub sha: String,
}

/// `GET /repos/{owner}/{repo}/pulls/{number}/reviews` items.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Review {
    #[serde(default)]
    pub user: Option<User>,
    pub state: String,
    #[serde(default)]
    pub commit_id: Option<String>,
}

/// A GitHub account.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct User {
    pub login: String,
}

/// `PUT /repos/{owner}/{repo}/pulls/{number}/merge`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Merged {
    #[serde(default)]
    pub sha: Option<String>,
}

/// `GET /repos/{owner}/{repo}/commits/{ref}/check-runs`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct CheckRuns {
    pub check_runs: Vec<CheckRun>,
}

/// One check run.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct CheckRun {
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
}

/// `GET /repos/{owner}/{repo}/commits/{ref}/status`: the combined commit statuses.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct CombinedStatus {
    pub statuses: Vec<Status>,
}

/// One commit status (the legacy statuses API many CI systems still post).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Status {
    pub context: String,
    pub state: String,
}

/// `GET /repos/{owner}/{repo}/branches/{branch}`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Branch {
    pub commit: Commit,
}

/// A commit, by sha.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Commit {
    pub sha: String,
}

/// Where the reviews leave a pull request: the latest review of each reviewer counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Verdict {
    /// Reviewers whose latest review approves.
    pub approvals: u32,
    /// Reviewers whose latest review asks for changes.
    pub changes_requested: Vec<String>,
    /// The commit the latest approval was given on.
    pub approved_commit: Option<String>,
    /// The logins whose latest review approves, in login order.
    pub approvers: Vec<String>,
}

impl Verdict {
    pub(super) fn of(reviews: &[Review]) -> Self {
        let mut latest: std::collections::BTreeMap<&str, &Review> = std::collections::BTreeMap::new();
        let mut approved_commit = None;
        for review in reviews {
            let who = review.user.as_ref().map_or("", |u| u.login.as_str());
            match review.state.as_str() {
                "APPROVED" => {
                    approved_commit.clone_from(&review.commit_id);
                    latest.insert(who, review);
                }
                "CHANGES_REQUESTED" | "DISMISSED" => {
                    latest.insert(who, review);
                }
                _ => {}
            }
        }
        let approvals = latest.values().filter(|r| r.state == "APPROVED").count();
        let changes_requested =
            latest.iter().filter(|(_, r)| r.state == "CHANGES_REQUESTED").map(|(w, _)| (*w).to_owned()).collect();
        let approvers = latest.iter().filter(|(_, r)| r.state == "APPROVED").map(|(w, _)| (*w).to_owned()).collect();
        Self { approvals: u32::try_from(approvals).unwrap_or(u32::MAX), changes_requested, approved_commit, approvers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(who: &str, state: &str, commit: &str) -> Review {
        Review { user: Some(User { login: who.into() }), state: state.into(), commit_id: Some(commit.into()) }
    }

    #[test]
    fn the_latest_review_of_each_reviewer_counts() {
        let v = Verdict::of(&[
            review("bob", "CHANGES_REQUESTED", "c1"),
            review("frank", "APPROVED", "c1"),
            review("bob", "COMMENTED", "c2"),
            review("bob", "APPROVED", "c2"),
        ]);
        assert_eq!(
            v,
            Verdict {
                approvals: 2,
                changes_requested: vec![],
                approved_commit: Some("c2".into()),
                approvers: vec!["bob".into(), "frank".into()],
            }
        );
        let v = Verdict::of(&[review("frank", "APPROVED", "c1"), review("frank", "DISMISSED", "c1")]);
        assert_eq!(v.approvals, 0);
        let v = Verdict::of(&[review("frank", "APPROVED", "c1"), review("bob", "CHANGES_REQUESTED", "c1")]);
        assert_eq!(v.changes_requested, ["bob"]);
    }
}
