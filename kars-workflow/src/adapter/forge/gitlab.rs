//! `GitLabVcs`: merge requests, approvals, pipelines and `sha`-guarded merges over GitLab's
//! REST API (gitlab.com or self-managed).

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use ureq::http::Method;

use super::http::{Api, Auth, encode, forge_message};
use kars_spec::spec::MergeRequirements;

use super::rules::{approval_unmet, refuse_unmet};
use super::{ForgeConfig, ForgeConfigError, MergeMethod, MergeRules, check_key, key_marker};
use crate::adapter::{
    AdapterError, BranchHead, BranchSelector, MergeOutcome, MergeRequest, OpenPullRequest, PullRequest, ReviewState,
    Vcs,
};
use crate::driver::{Forge, Roster};
use crate::event::Actor;
use crate::requirements::CheckState;

const ADAPTER: &str = "gitlab";
/// How long to wait when GitLab is still checking mergeability, or a pipeline still runs.
const CHECKING_WAIT: Duration = Duration::from_secs(3);
const PIPELINE_WAIT: Duration = Duration::from_secs(30);

/// A merge request as GitLab lists and shows it (unknown fields ignored).
#[derive(Debug, Clone, Deserialize)]
struct Mr {
    iid: u64,
    state: String,
    #[serde(default)]
    description: Option<String>,
    source_branch: String,
    sha: String,
    #[serde(default)]
    detailed_merge_status: Option<String>,
    #[serde(default)]
    has_conflicts: bool,
    #[serde(default)]
    head_pipeline: Option<Pipeline>,
}

impl Mr {
    fn has_marker(&self, marker: &str) -> bool {
        self.description.as_deref().is_some_and(|d| d.contains(marker))
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Pipeline {
    id: u64,
    status: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Approvals {
    #[serde(default)]
    approvals_left: u32,
    #[serde(default)]
    approved_by: Vec<Approver>,
}

/// One approval: `{ "user": { "username": … } }`.
#[derive(Debug, Clone, Deserialize)]
struct Approver {
    #[serde(default)]
    user: Option<Username>,
}

#[derive(Debug, Clone, Deserialize)]
struct Username {
    username: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Job {
    name: String,
    status: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Branch {
    commit: Commit,
}

#[derive(Debug, Clone, Deserialize)]
struct Commit {
    id: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Merged {
    #[serde(default)]
    merge_commit_sha: Option<String>,
    #[serde(default)]
    squash_commit_sha: Option<String>,
}

/// A [`Vcs`] on a GitLab project, with the same contract as
/// [`GitHubVcs`](super::GitHubVcs): the key in the merge request's description (found again
/// by a retry), every open merge request of the source checked before any merges, `sha`
/// guarded merges, and a merge retried after a lost answer finds its merge request merged.
///
/// GitLab's own answers: `detailed_merge_status` `checking`/`unchecked` is
/// [`AdapterError::Throttled`]; `approvals_left` above zero, fewer approvers than
/// [`MergeRules::approvals`], a role of [`MergeRules::approved_by`] no approver holds
/// (usernames resolved by the instance's roster), or a named check that failed is
/// [`AdapterError::Unmet`], every unmet requirement listed; named checks are jobs of the
/// head pipeline (`success`; a pipeline still running, with approvals in order, is
/// throttled). On the merge call, 405 (not
/// mergeable now), 406 (conflict), 409 (`SHA does not match HEAD of source branch`) and 422
/// are permanent with GitLab's message; 429 honours `Retry-After`. `MergeMethod::Squash`
/// sets `squash`; `MergeMethod::Rebase` is refused (GitLab rebases with its own call and the
/// project's merge method).
#[derive(Debug)]
pub struct GitLabVcs {
    api: Api,
    project: String,
    rules: MergeRules,
}

impl GitLabVcs {
    /// The adapter for `config` (`repository` as `GROUP/…/PROJECT`).
    ///
    /// # Errors
    /// [`ForgeConfigError`] for a malformed project path or API root.
    pub fn new(config: ForgeConfig) -> Result<Self, ForgeConfigError> {
        let parts = config.check(2, 20, "`GROUP/PROJECT` (subgroups allowed)")?;
        let api = Api::new(ADAPTER, &config.api, config.token, Auth::PrivateToken, config.timeout);
        Ok(Self { api, project: format!("/projects/{}", encode(&parts.join("/"))), rules: config.rules })
    }

    /// HTTP requests sent so far.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.api.requests()
    }

    fn url(&self, path: &str) -> String {
        self.api.url(&format!("{}{path}", self.project))
    }

    fn mrs(
        &self,
        op: &'static str,
        key: Option<&str>,
        state: &str,
        source: Option<&str>,
        target: &str,
    ) -> Result<Vec<Mr>, AdapterError> {
        let mut url = self.url(&format!("/merge_requests?state={state}&target_branch={}&per_page=100", encode(target)));
        if let Some(source) = source {
            url.push_str(&format!("&source_branch={}", encode(source)));
        }
        self.api.get_all(op, key, &url)
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        key: Option<&str>,
        path: &str,
    ) -> Result<T, AdapterError> {
        let url = self.url(path);
        let reply = self.api.send(op, key, Method::GET, &url, None)?;
        self.api.expect_ok(op, key, &reply, &url)?;
        self.api.parse(op, key, &reply.body, &url)
    }

    fn branch_head(&self, op: &'static str, key: Option<&str>, branch: &str) -> Result<Option<String>, AdapterError> {
        let url = self.url(&format!("/repository/branches/{}", encode(branch)));
        let reply = self.api.send(op, key, Method::GET, &url, None)?;
        if reply.status == 404 && reply.rate_limited.is_none() {
            return Ok(None);
        }
        self.api.expect_ok(op, key, &reply, &url)?;
        Ok(Some(self.api.parse::<Branch>(op, key, &reply.body, &url)?.commit.id))
    }

    fn target_head(&self, key: &str, to: &str) -> Result<String, AdapterError> {
        self.branch_head("merge", Some(key), to)?.ok_or_else(|| {
            AdapterError::permanent(ADAPTER, "merge", Some(key), format!("the target branch `{to}` does not exist"))
        })
    }

    /// Reads merge request `iid` and refuses it unless it may merge now; `None` if this key
    /// merged it already.
    fn ready(
        &self,
        rules: &MergeRules,
        reviewers: &Roster,
        key: &str,
        iid: u64,
        marker: &str,
    ) -> Result<Option<Mr>, AdapterError> {
        const OP: &str = "merge";
        let refuse = |detail: String| AdapterError::permanent(ADAPTER, OP, Some(key), detail);
        let mr: Mr = self.get(OP, Some(key), &format!("/merge_requests/{iid}"))?;
        match mr.state.as_str() {
            "merged" if mr.has_marker(marker) => return Ok(None),
            "merged" => return Err(refuse(format!("merge request !{iid} was merged by someone else meanwhile"))),
            "opened" => {}
            other => return Err(refuse(format!("merge request !{iid} is `{other}`"))),
        }
        let status = mr.detailed_merge_status.as_deref().unwrap_or("unchecked");
        if matches!(status, "checking" | "unchecked" | "approvals_syncing" | "preparing") {
            let detail = format!("GitLab is still checking whether merge request !{iid} can merge (`{status}`)");
            return Err(AdapterError::throttled(ADAPTER, OP, Some(key), detail, CHECKING_WAIT));
        }
        if mr.has_conflicts || status == "conflict" {
            return Err(refuse(format!("merge request !{iid} has conflicts\nhelp: resolve them on GitLab")));
        }
        let approvals: Approvals = self.get(OP, Some(key), &format!("/merge_requests/{iid}/approvals"))?;
        let approvers: Vec<Actor> = approvals
            .approved_by
            .iter()
            .map(|a| {
                let login = a.user.as_ref().map_or("", |u| u.username.as_str());
                reviewers.reviewer(Forge::GitLab, login).unwrap_or_else(|| Actor::new(login, vec![]))
            })
            .collect();
        let given = u32::try_from(approvers.len()).unwrap_or(u32::MAX);
        // GitLab's own approval rules count too: what they leave is needed on top.
        let needed = rules.approvals.max(given.saturating_add(approvals.approvals_left));
        let unmet = approval_unmet(&MergeRules { approvals: needed, ..rules.clone() }, &approvers);
        let jobs = self.job_states(rules, key, &mr)?;
        let pending = jobs.iter().find(|(_, state, _)| matches!(state, CheckState::Pending | CheckState::Missing));
        if let (true, Some((name, state, how))) = (unmet.is_empty(), pending) {
            let detail = match state {
                CheckState::Missing => format!("merge request !{iid} has no pipeline on `{}` yet", mr.sha),
                _ => format!("job `{name}` of merge request !{iid} is `{how}`"),
            };
            return Err(AdapterError::throttled(ADAPTER, OP, Some(key), detail, PIPELINE_WAIT));
        }
        refuse_unmet(ADAPTER, OP, key, &format!("merge request !{iid}"), unmet, jobs)?;
        Ok(Some(mr))
    }

    /// Where each named check of the rules stands: a job of the head pipeline (`Missing`
    /// while there is no pipeline, or the pipeline has no job of that name), with GitLab's
    /// word for it.
    fn job_states(
        &self,
        rules: &MergeRules,
        key: &str,
        mr: &Mr,
    ) -> Result<Vec<(String, CheckState, String)>, AdapterError> {
        const OP: &str = "merge";
        if rules.checks.is_empty() {
            return Ok(Vec::new());
        }
        let Some(pipeline) = &mr.head_pipeline else {
            return Ok(rules.checks.iter().map(|n| (n.clone(), CheckState::Missing, "missing".to_owned())).collect());
        };
        let url = self.url(&format!("/pipelines/{}/jobs?per_page=100", pipeline.id));
        let jobs: Vec<Job> = self.api.get_all(OP, Some(key), &url)?;
        let mut states = Vec::with_capacity(rules.checks.len());
        for name in &rules.checks {
            let (state, how) = match jobs.iter().find(|j| &j.name == name) {
                None => (CheckState::Failed, format!("absent from pipeline `{}`", pipeline.id)),
                Some(job) => match job.status.as_str() {
                    "success" => (CheckState::Passed, job.status.clone()),
                    "created" | "pending" | "running" | "waiting_for_resource" | "preparing" | "scheduled" => {
                        (CheckState::Pending, job.status.clone())
                    }
                    _ => (CheckState::Failed, format!("{}` in pipeline `{}", job.status, pipeline.status)),
                },
            };
            states.push((name.clone(), state, how));
        }
        Ok(states)
    }

    fn mark(&self, key: &str, mr: &Mr, marker: &str) -> Result<(), AdapterError> {
        if mr.has_marker(marker) {
            return Ok(());
        }
        let description = match mr.description.as_deref() {
            Some(d) if !d.is_empty() => format!("{d}\n\n{marker}"),
            _ => marker.to_owned(),
        };
        let url = self.url(&format!("/merge_requests/{}", mr.iid));
        let reply =
            self.api.send("merge", Some(key), Method::PUT, &url, Some(&json!({ "description": description })))?;
        self.api.expect_ok("merge", Some(key), &reply, &url)
    }

    fn merge_one(&self, rules: &MergeRules, key: &str, mr: &Mr) -> Result<Option<String>, AdapterError> {
        const OP: &str = "merge";
        let iid = mr.iid;
        let body = json!({
            "sha": mr.sha,
            "squash": rules.method == MergeMethod::Squash,
            "merge_commit_message": format!("Merge branch '{}' (!{iid})\n\nKars-Idempotency-Key: {key}", mr.source_branch),
        });
        let url = self.url(&format!("/merge_requests/{iid}/merge"));
        let reply = self.api.send(OP, Some(key), Method::PUT, &url, Some(&body))?;
        let message = forge_message(&reply.body);
        let refuse = |detail: String| Err(AdapterError::permanent(ADAPTER, OP, Some(key), detail));
        match reply.status {
            200..=299 => {
                let merged: Merged = self.api.parse(OP, Some(key), &reply.body, &url)?;
                Ok(merged.merge_commit_sha.or(merged.squash_commit_sha))
            }
            _ if reply.rate_limited.is_some() => Err(self.api.status_error(OP, Some(key), &reply, &url)),
            405 => refuse(format!("merge request !{iid} cannot merge now: {message}")),
            406 => refuse(format!("merge request !{iid} has conflicts: {message}")),
            409 => refuse(format!(
                "the head of merge request !{iid} moved from `{}`: {message}\nhelp: review the new commits and approve again",
                mr.sha
            )),
            422 => refuse(format!("GitLab refused to merge merge request !{iid}: {message}")),
            _ => Err(self.api.status_error(OP, Some(key), &reply, &url)),
        }
    }

    fn opened(request: &OpenPullRequest, mr: &Mr) -> PullRequest {
        PullRequest {
            id: mr.iid.to_string(),
            from: request.from.clone(),
            to: request.to.clone(),
            sources: vec![BranchHead { branch: mr.source_branch.clone(), commit: mr.sha.clone() }],
        }
    }
}

impl Vcs for GitLabVcs {
    fn open_pull_request(&self, request: &OpenPullRequest) -> Result<PullRequest, AdapterError> {
        const OP: &str = "open_pull_request";
        let key = request.key.as_str();
        check_key(ADAPTER, OP, key)?;
        let BranchSelector::Name(from) = &request.from else {
            return Err(AdapterError::permanent(
                ADAPTER,
                OP,
                Some(key),
                format!(
                    "a merge request from the pattern `{}` cannot be opened on GitLab\nhelp: developers open one per branch there; a `merge_pull_request` action merges them",
                    request.from
                ),
            ));
        };
        let marker = key_marker("pr", key);
        let earlier = self.mrs(OP, Some(key), "all", Some(from), &request.to)?;
        if let Some(mr) = earlier.iter().find(|m| m.has_marker(&marker)) {
            return Ok(Self::opened(request, mr));
        }
        let body = json!({
            "source_branch": from,
            "target_branch": request.to,
            "title": request.title,
            "description": format!("Opened by kars.\n\n{marker}"),
        });
        let url = self.url("/merge_requests");
        let reply = self.api.send(OP, Some(key), Method::POST, &url, Some(&body))?;
        match reply.status {
            200..=299 => Ok(Self::opened(request, &self.api.parse(OP, Some(key), &reply.body, &url)?)),
            // "Another open merge request already exists for this source branch": adopt it.
            409 => {
                let open = self.mrs(OP, Some(key), "opened", Some(from), &request.to)?;
                open.first().map(|mr| Self::opened(request, mr)).ok_or_else(|| {
                    AdapterError::permanent(
                        ADAPTER,
                        OP,
                        Some(key),
                        format!("GitLab refused to open a merge request from `{from}`: {}", forge_message(&reply.body)),
                    )
                })
            }
            400 | 422 if reply.rate_limited.is_none() => Err(AdapterError::permanent(
                ADAPTER,
                OP,
                Some(key),
                format!(
                    "GitLab refused to open a merge request from `{from}` to `{}`: {}",
                    request.to,
                    forge_message(&reply.body)
                ),
            )),
            _ => Err(self.api.status_error(OP, Some(key), &reply, &url)),
        }
    }

    fn review_state(&self, id: &str) -> Result<ReviewState, AdapterError> {
        const OP: &str = "review_state";
        let iid: u64 = id.parse().map_err(|_| {
            AdapterError::permanent(ADAPTER, OP, None, format!("`{id}` is not a GitLab merge request iid"))
        })?;
        let mr: Mr = self.get(OP, None, &format!("/merge_requests/{iid}"))?;
        match mr.state.as_str() {
            "merged" => return Ok(ReviewState::Merged),
            "opened" | "locked" => {}
            _ => return Ok(ReviewState::Closed),
        }
        let approvals: Approvals = self.get(OP, None, &format!("/merge_requests/{iid}/approvals"))?;
        let given = u32::try_from(approvals.approved_by.len()).unwrap_or(u32::MAX);
        Ok(if approvals.approvals_left == 0 && given >= self.rules.approvals.max(1) {
            ReviewState::Approved
        } else {
            ReviewState::Open
        })
    }

    fn merge(&self, request: &MergeRequest) -> Result<MergeOutcome, AdapterError> {
        self.merge_with(request, &self.rules, &Roster::default())
    }

    fn merge_requiring(
        &self,
        request: &MergeRequest,
        requires: &MergeRequirements,
        reviewers: &Roster,
    ) -> Result<MergeOutcome, AdapterError> {
        self.merge_with(request, &self.rules.with(requires), reviewers)
    }

    fn head(&self, branch: &str) -> Result<Option<String>, AdapterError> {
        self.branch_head("head", None, branch)
    }
}

impl GitLabVcs {
    /// Merges under `rules` (the adapter's, or a spec's on top of them), with `reviewers`
    /// saying whose username an approval is.
    fn merge_with(
        &self,
        request: &MergeRequest,
        rules: &MergeRules,
        reviewers: &Roster,
    ) -> Result<MergeOutcome, AdapterError> {
        const OP: &str = "merge";
        let key = request.key.as_str();
        check_key(ADAPTER, OP, key)?;
        if rules.method == MergeMethod::Rebase {
            return Err(AdapterError::permanent(
                ADAPTER,
                OP,
                Some(key),
                "GitLab merges by the project's merge method; `rebase` cannot be asked for per merge\nhelp: use `merge` or `squash`, and set fast-forward merges in the project",
            ));
        }
        let marker = key_marker("merge", key);
        let open: Vec<Mr> = match &request.from {
            BranchSelector::Name(from) => {
                // Every state in one listing: a merge request this key merged already (a retry
                // after a lost answer) wins over one opened since.
                let mrs = self.mrs(OP, Some(key), "all", Some(from), &request.to)?;
                if let Some(mr) = mrs.iter().find(|m| m.state == "merged" && m.has_marker(&marker)) {
                    let head = self.target_head(key, &request.to)?;
                    let merged = vec![BranchHead { branch: mr.source_branch.clone(), commit: mr.sha.clone() }];
                    return Ok(MergeOutcome { head, merged, replayed: true });
                }
                let open: Vec<Mr> = mrs.into_iter().filter(|m| m.state == "opened").collect();
                if open.is_empty() {
                    return Err(AdapterError::permanent(
                        ADAPTER,
                        OP,
                        Some(key),
                        format!(
                            "there is no open merge request from `{from}` to `{}`\nhelp: open one (an `open_pull_request` action) before merging",
                            request.to
                        ),
                    ));
                }
                open
            }
            BranchSelector::Pattern(_) => self
                .mrs(OP, Some(key), "opened", None, &request.to)?
                .into_iter()
                .filter(|m| request.from.matches(&m.source_branch))
                .collect(),
        };
        if open.is_empty() {
            // A pattern that matches no open merge request merges nothing.
            return Ok(MergeOutcome { head: self.target_head(key, &request.to)?, merged: Vec::new(), replayed: false });
        }
        let mut ready = Vec::new();
        for mr in &open {
            ready.extend(self.ready(rules, reviewers, key, mr.iid, &marker)?);
        }
        let mut merged = Vec::new();
        let mut head = None;
        for mr in &ready {
            self.mark(key, mr, &marker)?;
            head = self.merge_one(rules, key, mr)?;
            merged.push(BranchHead { branch: mr.source_branch.clone(), commit: mr.sha.clone() });
        }
        let head = match head {
            Some(head) => head,
            None => self.target_head(key, &request.to)?,
        };
        Ok(MergeOutcome { head, merged, replayed: ready.is_empty() })
    }
}
