//! `GitHubVcs`: pull requests, reviews, check runs and `sha`-guarded merges over GitHub's REST
//! API (github.com or GitHub Enterprise Server).

use std::time::Duration;

use serde_json::json;
use ureq::http::Method;

use super::github_api::{Branch, CheckRuns, CombinedStatus, Merged, Pull, Review, Verdict};
use super::http::{Api, Auth, Search, encode, forge_message};
use kars_spec::spec::MergeRequirements;

use super::rules::{approval_unmet, refuse_unmet};
use super::{ForgeConfig, ForgeConfigError, MergeRules, check_key, key_marker};
use crate::adapter::{
    AdapterError, BranchHead, BranchSelector, MergeOutcome, MergeRequest, OpenPullRequest, PullRequest, ReviewState,
    Vcs,
};
use crate::driver::{Forge, Roster};
use crate::event::Actor;
use crate::requirements::CheckState;

const ADAPTER: &str = "github";
/// How long to wait when GitHub is still computing `mergeable`, or a named check still runs.
const COMPUTING_WAIT: Duration = Duration::from_secs(3);
const CHECKS_WAIT: Duration = Duration::from_secs(30);
/// Pages of 100 commit statuses read to find a named context.
const MAX_STATUS_PAGES: usize = 10;

/// A [`Vcs`] on a GitHub repository.
///
/// * **Open**: the effect's key travels in the description as an HTML comment
///   (`<!-- kars-pr-key: KEY -->`); a call finds the pull request an earlier call with the
///   same key opened (also when that call's answer was lost) before opening one. A pull
///   request from the same head to the same base opened by someone else is adopted (GitHub
///   allows one open pull request per head and base). Only named branches: developers open
///   pull requests from pattern branches (`feature/*`) themselves.
/// * **Merge**: every open pull request from the source (a name, or every head a pattern
///   matches) into the target is read first: `mergeable: null` (GitHub still computing) is
///   [`AdapterError::Throttled`]; a conflict, changes requested or a head that moved after
///   its latest approval is permanent with that reason; missing approvals
///   ([`MergeRules::approvals`], the latest review of each reviewer counting), a role with no
///   approval by a holder ([`MergeRules::approved_by`], logins resolved by the instance's
///   roster) or a failed named check (a check run, or else a commit status of that context)
///   is [`AdapterError::Unmet`], every unmet requirement listed; a named check still running
///   (with approvals in order) is [`AdapterError::Throttled`]. In each case nothing is merged. Then each is marked with the merge's key (`<!-- kars-merge-key: KEY
///   -->`) and merged with `sha` set to the approved head and the rules' `merge_method`;
///   GitHub's 405 (not mergeable), 409 (head moved) and 422 are permanent with GitHub's
///   message. A retry whose first call merged finds the pull request merged with its key and
///   succeeds (`replayed`). A pattern that matches no open pull request merges nothing.
/// * **Rate limits** (403 or 429 with `Retry-After`, `x-ratelimit-remaining: 0` with
///   `x-ratelimit-reset`, or a secondary limit's message) are [`AdapterError::Throttled`];
///   timeouts and 5xx transient; other answers permanent.
#[derive(Debug)]
pub struct GitHubVcs {
    api: Api,
    repo_path: String,
    owner: String,
    rules: MergeRules,
}

impl GitHubVcs {
    /// The adapter for `config` (`repository` as `OWNER/REPO`).
    ///
    /// # Errors
    /// [`ForgeConfigError`] for a repository that is not `OWNER/REPO` or an API root that is
    /// not an HTTP(S) URL.
    pub fn new(config: ForgeConfig) -> Result<Self, ForgeConfigError> {
        let parts = config.check(2, 2, "`OWNER/REPO`")?;
        let api = Api::new(ADAPTER, &config.api, config.token, Auth::Bearer, config.timeout);
        let repo_path = format!("/repos/{}/{}", parts[0], parts[1]);
        Ok(Self { api, repo_path, owner: parts[0].clone(), rules: config.rules })
    }

    /// HTTP requests sent so far (for measuring what a week costs).
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.api.requests()
    }

    /// The API root in use.
    #[must_use]
    pub fn api(&self) -> &str {
        self.api.base()
    }

    fn url(&self, path: &str) -> String {
        self.api.url(&format!("{}{path}", self.repo_path))
    }

    /// Pull requests into `base` in `state` (`open`, `closed`, `all`), from `head` if given,
    /// newest first, every page.
    fn pulls(
        &self,
        op: &'static str,
        key: Option<&str>,
        state: &str,
        head: Option<&str>,
        base: &str,
    ) -> Result<Vec<Pull>, AdapterError> {
        let mut url = self.url(&format!("/pulls?state={state}&base={}&per_page=100", encode(base)));
        if let Some(head) = head {
            url.push_str(&format!("&head={}", encode(&format!("{}:{head}", self.owner))));
        }
        self.api.get_all(op, key, &url)
    }

    fn pull(&self, op: &'static str, key: Option<&str>, number: u64) -> Result<Pull, AdapterError> {
        let url = self.url(&format!("/pulls/{number}"));
        let reply = self.api.send(op, key, Method::GET, &url, None)?;
        self.api.expect_ok(op, key, &reply, &url)?;
        self.api.parse(op, key, &reply.body, &url)
    }

    fn branch_head(&self, op: &'static str, key: Option<&str>, branch: &str) -> Result<Option<String>, AdapterError> {
        let url = self.url(&format!("/branches/{}", encode(branch)));
        let reply = self.api.send(op, key, Method::GET, &url, None)?;
        if reply.status == 404 && reply.rate_limited.is_none() {
            return Ok(None);
        }
        self.api.expect_ok(op, key, &reply, &url)?;
        Ok(Some(self.api.parse::<Branch>(op, key, &reply.body, &url)?.commit.sha))
    }

    fn target_head(&self, op: &'static str, key: &str, to: &str) -> Result<String, AdapterError> {
        self.branch_head(op, Some(key), to)?.ok_or_else(|| {
            AdapterError::permanent(ADAPTER, op, Some(key), format!("the target branch `{to}` does not exist"))
        })
    }

    /// Reads pull request `number` and refuses it unless it may merge now: the commit to
    /// guard the merge with, or `None` if this key merged it already.
    fn ready(
        &self,
        rules: &MergeRules,
        reviewers: &Roster,
        key: &str,
        number: u64,
        marker: &str,
    ) -> Result<Option<(Pull, String)>, AdapterError> {
        const OP: &str = "merge";
        let refuse = |detail: String| AdapterError::permanent(ADAPTER, OP, Some(key), detail);
        let pull = self.pull(OP, Some(key), number)?;
        if pull.is_merged() {
            return if pull.has_marker(marker) {
                Ok(None)
            } else {
                Err(refuse(format!("pull request #{number} was merged by someone else meanwhile")))
            };
        }
        if pull.state != "open" {
            return Err(refuse(format!("pull request #{number} was closed meanwhile")));
        }
        match pull.mergeable {
            None => {
                let detail = format!("GitHub is still computing whether pull request #{number} can merge");
                return Err(AdapterError::throttled(ADAPTER, OP, Some(key), detail, COMPUTING_WAIT));
            }
            Some(false) => {
                let state = pull.mergeable_state.as_deref().unwrap_or("unknown");
                return Err(refuse(format!(
                    "pull request #{number} cannot merge (GitHub's mergeable state is `{state}`)\nhelp: resolve its conflicts on GitHub"
                )));
            }
            Some(true) => {}
        }
        let reviews: Vec<Review> =
            self.api.get_all(OP, Some(key), &self.url(&format!("/pulls/{number}/reviews?per_page=100")))?;
        let verdict = Verdict::of(&reviews);
        if let Some(who) = verdict.changes_requested.first() {
            return Err(refuse(format!("pull request #{number} has changes requested by `{who}`")));
        }
        let approvals: Vec<Actor> = verdict
            .approvers
            .iter()
            .map(|login| reviewers.reviewer(Forge::GitHub, login).unwrap_or_else(|| Actor::new(login.as_str(), vec![])))
            .collect();
        let unmet = approval_unmet(rules, &approvals);
        let needed = rules.approvals;
        let guard = match (&verdict.approved_commit, needed) {
            (Some(approved), 1..) => approved.clone(),
            _ => pull.head.sha.clone(),
        };
        if unmet.is_empty() && guard != pull.head.sha {
            return Err(refuse(format!(
                "the head of pull request #{number} moved to `{}` after it was approved on `{guard}`\nhelp: review the new commits and approve again",
                pull.head.sha
            )));
        }
        let checks = self.check_states(rules, key, &guard)?;
        let pending = checks.iter().find(|(_, state, _)| matches!(state, CheckState::Pending | CheckState::Missing));
        if let (true, Some((name, state, how))) = (unmet.is_empty(), pending) {
            let detail = match state {
                CheckState::Missing => {
                    format!("check `{name}` has not reported on pull request #{number} (`{guard}`) yet")
                }
                _ => format!("check `{name}` on pull request #{number} is `{how}`"),
            };
            return Err(AdapterError::throttled(ADAPTER, OP, Some(key), detail, CHECKS_WAIT));
        }
        refuse_unmet(ADAPTER, OP, key, &format!("pull request #{number}"), unmet, checks)?;
        Ok(Some((pull, guard)))
    }

    /// Where each named check of the rules stands on `sha`, with the forge's word for it: a
    /// check run of that name, or else a commit status of that context (read only when a
    /// name has no check run).
    fn check_states(
        &self,
        rules: &MergeRules,
        key: &str,
        sha: &str,
    ) -> Result<Vec<(String, CheckState, String)>, AdapterError> {
        const OP: &str = "merge";
        let mut states = Vec::with_capacity(rules.checks.len());
        for name in &rules.checks {
            // The runs of that name only, newest first: a commit with many checks cannot push
            // the one that matters off the first page.
            let path = format!("/commits/{sha}/check-runs?check_name={}&per_page=1", encode(name));
            let runs: CheckRuns = self.get_json(OP, key, &path)?;
            if let Some(run) = runs.check_runs.iter().find(|r| &r.name == name) {
                let (state, how) = if run.status != "completed" {
                    (CheckState::Pending, run.status.clone())
                } else {
                    let conclusion = run.conclusion.clone().unwrap_or_else(|| "none".to_owned());
                    let passed = matches!(conclusion.as_str(), "success" | "neutral" | "skipped");
                    (if passed { CheckState::Passed } else { CheckState::Failed }, conclusion)
                };
                states.push((name.clone(), state, how));
                continue;
            }
            // No check run of that name: a commit status of that context, on any page.
            let url = self.url(&format!("/commits/{sha}/status?per_page=100"));
            let found = self.api.search(OP, Some(key), &url, MAX_STATUS_PAGES, |combined: CombinedStatus| {
                combined.statuses.into_iter().find(|s| &s.context == name).map(|s| s.state)
            })?;
            let (state, how) = match found {
                Search::Found(state) if state == "success" => (CheckState::Passed, state),
                Search::Found(state) if state == "pending" => (CheckState::Pending, state),
                Search::Found(state) => (CheckState::Failed, state),
                Search::Absent | Search::CutShort => (CheckState::Missing, "missing".to_owned()),
            };
            states.push((name.clone(), state, how));
        }
        Ok(states)
    }

    /// GETs `path` (under the repository) and parses its JSON.
    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        key: &str,
        path: &str,
    ) -> Result<T, AdapterError> {
        let url = self.url(path);
        let reply = self.api.send(op, Some(key), Method::GET, &url, None)?;
        self.api.expect_ok(op, Some(key), &reply, &url)?;
        self.api.parse(op, Some(key), &reply.body, &url)
    }

    /// Adds the merge marker to the description, so a retry knows this key merged it.
    fn mark(&self, key: &str, pull: &Pull, marker: &str) -> Result<(), AdapterError> {
        if pull.has_marker(marker) {
            return Ok(());
        }
        let body = match pull.body.as_deref() {
            Some(b) if !b.is_empty() => format!("{b}\n\n{marker}"),
            _ => marker.to_owned(),
        };
        let url = self.url(&format!("/pulls/{}", pull.number));
        let reply = self.api.send("merge", Some(key), Method::PATCH, &url, Some(&json!({ "body": body })))?;
        self.api.expect_ok("merge", Some(key), &reply, &url)
    }

    /// `PUT …/merge` with the `sha` guard: the merge commit (the target's new head), if told.
    fn merge_one(&self, rules: &MergeRules, key: &str, pull: &Pull, sha: &str) -> Result<Option<String>, AdapterError> {
        const OP: &str = "merge";
        let number = pull.number;
        let body = json!({
            "sha": sha,
            "merge_method": rules.method.as_str(),
            "commit_title": format!("Merge pull request #{number} from {}", pull.head.name),
            "commit_message": format!("Kars-Idempotency-Key: {key}"),
        });
        let url = self.url(&format!("/pulls/{number}/merge"));
        let reply = self.api.send(OP, Some(key), Method::PUT, &url, Some(&body))?;
        let message = forge_message(&reply.body);
        let refuse = |detail: String| Err(AdapterError::permanent(ADAPTER, OP, Some(key), detail));
        match reply.status {
            200..=299 => Ok(self.api.parse::<Merged>(OP, Some(key), &reply.body, &url)?.sha),
            _ if reply.rate_limited.is_some() => Err(self.api.status_error(OP, Some(key), &reply, &url)),
            405 => refuse(format!("pull request #{number} is not mergeable: {message}")),
            409 => refuse(format!(
                "the head of pull request #{number} moved from `{sha}`: {message}\nhelp: review the new commits and approve again"
            )),
            422 => refuse(format!("GitHub refused to merge pull request #{number}: {message}")),
            _ => Err(self.api.status_error(OP, Some(key), &reply, &url)),
        }
    }

    fn opened(request: &OpenPullRequest, pull: &Pull) -> PullRequest {
        PullRequest {
            id: pull.number.to_string(),
            from: request.from.clone(),
            to: request.to.clone(),
            sources: vec![BranchHead { branch: pull.head.name.clone(), commit: pull.head.sha.clone() }],
        }
    }
}

impl Vcs for GitHubVcs {
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
                    "a pull request from the pattern `{}` cannot be opened on GitHub\nhelp: developers open one per branch there; a `merge_pull_request` action merges them",
                    request.from
                ),
            ));
        };
        let marker = key_marker("pr", key);
        let earlier = self.pulls(OP, Some(key), "all", Some(from), &request.to)?;
        if let Some(pull) = earlier.iter().find(|p| p.has_marker(&marker)) {
            return Ok(Self::opened(request, pull));
        }
        let body = json!({
            "title": request.title,
            "head": from,
            "base": request.to,
            "body": format!("Opened by kars.\n\n{marker}"),
        });
        let url = self.url("/pulls");
        let reply = self.api.send(OP, Some(key), Method::POST, &url, Some(&body))?;
        match reply.status {
            200..=299 => Ok(Self::opened(request, &self.api.parse(OP, Some(key), &reply.body, &url)?)),
            422 if reply.body.contains("already exists") => {
                let open = self.pulls(OP, Some(key), "open", Some(from), &request.to)?;
                open.first().map(|pull| Self::opened(request, pull)).ok_or_else(|| {
                    AdapterError::transient(
                        ADAPTER,
                        OP,
                        Some(key),
                        format!("GitHub says a pull request from `{from}` to `{}` exists but lists none", request.to),
                    )
                })
            }
            422 if reply.rate_limited.is_none() => Err(AdapterError::permanent(
                ADAPTER,
                OP,
                Some(key),
                format!(
                    "GitHub refused to open a pull request from `{from}` to `{}`: {}",
                    request.to,
                    forge_message(&reply.body)
                ),
            )),
            _ => Err(self.api.status_error(OP, Some(key), &reply, &url)),
        }
    }

    fn review_state(&self, id: &str) -> Result<ReviewState, AdapterError> {
        const OP: &str = "review_state";
        let number: u64 = id.parse().map_err(|_| {
            AdapterError::permanent(ADAPTER, OP, None, format!("`{id}` is not a GitHub pull request number"))
        })?;
        let pull = self.pull(OP, None, number)?;
        if pull.is_merged() {
            return Ok(ReviewState::Merged);
        }
        if pull.state != "open" {
            return Ok(ReviewState::Closed);
        }
        let reviews: Vec<Review> =
            self.api.get_all(OP, None, &self.url(&format!("/pulls/{number}/reviews?per_page=100")))?;
        let verdict = Verdict::of(&reviews);
        Ok(if !verdict.changes_requested.is_empty() {
            ReviewState::ChangesRequested
        } else if verdict.approvals >= self.rules.approvals.max(1) {
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

impl GitHubVcs {
    /// Merges under `rules` (the adapter's, or a spec's on top of them), with `reviewers`
    /// saying whose login an approval is.
    fn merge_with(
        &self,
        request: &MergeRequest,
        rules: &MergeRules,
        reviewers: &Roster,
    ) -> Result<MergeOutcome, AdapterError> {
        const OP: &str = "merge";
        let key = request.key.as_str();
        check_key(ADAPTER, OP, key)?;
        let marker = key_marker("merge", key);
        let open: Vec<Pull> = match &request.from {
            BranchSelector::Name(from) => {
                // Every state in one listing: a pull request this key merged already (a retry
                // after a lost answer) wins over one opened since.
                let pulls = self.pulls(OP, Some(key), "all", Some(from), &request.to)?;
                if let Some(pull) = pulls.iter().find(|p| p.is_merged() && p.has_marker(&marker)) {
                    let head = self.target_head(OP, key, &request.to)?;
                    let merged = vec![BranchHead { branch: pull.head.name.clone(), commit: pull.head.sha.clone() }];
                    return Ok(MergeOutcome { head, merged, replayed: true });
                }
                let open: Vec<Pull> = pulls.into_iter().filter(|p| p.state == "open").collect();
                if open.is_empty() {
                    return Err(AdapterError::permanent(
                        ADAPTER,
                        OP,
                        Some(key),
                        format!(
                            "there is no open pull request from `{from}` to `{}`\nhelp: open one (an `open_pull_request` action) before merging",
                            request.to
                        ),
                    ));
                }
                open
            }
            BranchSelector::Pattern(_) => self
                .pulls(OP, Some(key), "open", None, &request.to)?
                .into_iter()
                .filter(|p| request.from.matches(&p.head.name))
                .collect(),
        };
        if open.is_empty() {
            // A pattern that matches no open pull request merges nothing.
            let head = self.target_head(OP, key, &request.to)?;
            return Ok(MergeOutcome { head, merged: Vec::new(), replayed: false });
        }
        // Every pull request is checked before any is merged: a refusal merges nothing.
        let mut ready = Vec::new();
        for pull in &open {
            ready.extend(self.ready(rules, reviewers, key, pull.number, &marker)?);
        }
        let mut merged = Vec::new();
        let mut head = None;
        for (pull, sha) in &ready {
            self.mark(key, pull, &marker)?;
            head = self.merge_one(rules, key, pull, sha)?;
            merged.push(BranchHead { branch: pull.head.name.clone(), commit: sha.clone() });
        }
        let head = match head {
            Some(head) => head,
            None => self.target_head(OP, key, &request.to)?,
        };
        let replayed = ready.is_empty();
        Ok(MergeOutcome { head, merged, replayed })
    }
}
