//! `GitHubActions`: deploys, rollbacks and check suites as GitHub Actions `workflow_dispatch`
//! runs, polled to completion.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use ureq::http::Method;

use super::http::{Api, Auth, Search, encode};
use super::{ForgeConfig, ForgeConfigError, RunInputs, check_key};
use crate::adapter::AdapterError;
use crate::driver::{Operation, Operations};
use crate::effect::ReleaseId;
use crate::event::ActionOutcome;

const ADAPTER: &str = "github actions";
const OP: &str = "run";
/// Pages of 100 runs a search for one key reads before it gives up (without dispatching).
const MAX_RUN_PAGES: usize = 20;

#[derive(Debug, Deserialize)]
struct Runs {
    workflow_runs: Vec<Run>,
}

#[derive(Debug, Deserialize)]
struct Run {
    id: u64,
    #[serde(default)]
    display_title: Option<String>,
    status: String,
    #[serde(default)]
    conclusion: Option<String>,
}

/// How a [`GitHubActions`] dispatches and waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    /// The workflow file (`deploy.yml`) or its id.
    pub workflow: String,
    /// The branch or tag the workflow runs on (`main`).
    pub git_ref: String,
    /// The wait between two polls of the run.
    pub poll: Duration,
    /// How long one call waits for the run to complete (in polls: `wait / poll`) before it
    /// reports a throttled failure (the driver's retry finds the same run by its key and
    /// waits on).
    pub wait: Duration,
}

impl Dispatch {
    /// `workflow` on `git_ref`, polled every 10 seconds for up to 30 minutes a call.
    #[must_use]
    pub fn new(workflow: impl Into<String>, git_ref: impl Into<String>) -> Self {
        Self {
            workflow: workflow.into(),
            git_ref: git_ref.into(),
            poll: Duration::from_secs(10),
            wait: Duration::from_secs(30 * 60),
        }
    }
}

/// [`Operations`] that run each deploy, rollback and check suite as a `workflow_dispatch` of
/// one GitHub Actions workflow, and report its conclusion (`success`: succeeded; anything
/// else: failed).
///
/// The dispatch's inputs are strings: `kars_key` (the effect's idempotency key), `release`,
/// `node`, `action` (`deploy`, `rollback`, `run_checks`), `environment` and `suite` (empty
/// when not given). The workflow must declare them and name its runs after the key
/// (`run-name: ${{ inputs.kars_key }}`): a call first looks for a run with that title, so a
/// retry or a replay after a crash waits on the run already dispatched instead of deploying
/// twice. Pull-request effects are refused (give the driver a [`Vcs`](crate::adapter::Vcs)).
/// The call blocks while it polls.
#[derive(Debug)]
pub struct GitHubActions {
    api: Api,
    repo_path: String,
    dispatch: Dispatch,
}

impl GitHubActions {
    /// Operations on `config`'s repository (`OWNER/REPO`; its merge rules are not used).
    ///
    /// # Errors
    /// [`ForgeConfigError`] for a malformed repository or API root.
    pub fn new(config: ForgeConfig, dispatch: Dispatch) -> Result<Self, ForgeConfigError> {
        let parts = config.check(2, 2, "`OWNER/REPO`")?;
        let api = Api::new(ADAPTER, &config.api, config.token, Auth::Bearer, config.timeout);
        Ok(Self { api, repo_path: format!("/repos/{}/{}", parts[0], parts[1]), dispatch })
    }

    /// HTTP requests sent so far.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.api.requests()
    }

    fn url(&self, path: &str) -> String {
        self.api.url(&format!("{}{path}", self.repo_path))
    }

    /// The run titled `key`, if GitHub lists one: the workflow's dispatched runs created since
    /// the week before the release's Monday, newest first, every page.
    ///
    /// A search cut short (more than [`MAX_RUN_PAGES`] pages) is an error, never "not found":
    /// not finding the run means dispatching it, and a second dispatch is a second deploy.
    fn find(&self, op: &Operation) -> Result<Option<u64>, AdapterError> {
        let key = op.key.as_str();
        let url = self.url(&format!(
            "/actions/workflows/{}/runs?event=workflow_dispatch&per_page=100{}",
            encode(&self.dispatch.workflow),
            created_since(&op.release).map(|day| format!("&created=%3E%3D{day}")).unwrap_or_default()
        ));
        let search = self.api.search(OP, Some(key), &url, MAX_RUN_PAGES, |runs: Runs| {
            runs.workflow_runs.into_iter().find(|r| r.display_title.as_deref() == Some(key)).map(|r| r.id)
        })?;
        match search {
            Search::Found(id) => return Ok(Some(id)),
            Search::Absent => return Ok(None),
            Search::CutShort => {}
        }
        Err(AdapterError::permanent(
            ADAPTER,
            OP,
            Some(key),
            format!(
                "more than {MAX_RUN_PAGES} pages of `{}` runs since this release's week: kars cannot tell whether this deploy was dispatched already and does not dispatch it again\nhelp: look for a run titled `{key}` in the repository's Actions tab, then report the result with `kars instance act --node {} --outcome succeeded` (or `failed`)",
                self.dispatch.workflow, op.node
            ),
        ))
    }

    fn start(&self, op: &Operation) -> Result<(), AdapterError> {
        let key = op.key.as_str();
        let run = RunInputs::of(op, ADAPTER, OP, "GitHub Actions runs", "a forge `Vcs` for pull requests")?;
        let body = json!({
            "ref": self.dispatch.git_ref,
            "inputs": {
                "kars_key": key,
                "release": op.release.to_string(),
                "node": op.node.to_string(),
                "action": run.action,
                "environment": run.environment,
                "suite": run.suite,
            },
        });
        let url = self.url(&format!("/actions/workflows/{}/dispatches", encode(&self.dispatch.workflow)));
        let reply = self.api.send(OP, Some(key), Method::POST, &url, Some(&body))?;
        self.api.expect_ok(OP, Some(key), &reply, &url)
    }

    /// Polls a call may make: `wait` divided by `poll`, at least one.
    fn polls(&self) -> u128 {
        (self.dispatch.wait.as_millis() / self.dispatch.poll.as_millis().max(1)).max(1)
    }

    /// Polls run `id` until it completes or `polls` polls are spent.
    fn wait(&self, key: &str, id: u64, mut polls: u128) -> Result<ActionOutcome, AdapterError> {
        let url = self.url(&format!("/actions/runs/{id}"));
        loop {
            let reply = self.api.send(OP, Some(key), Method::GET, &url, None)?;
            self.api.expect_ok(OP, Some(key), &reply, &url)?;
            let run: Run = self.api.parse(OP, Some(key), &reply.body, &url)?;
            if run.status == "completed" {
                return Ok(match run.conclusion.as_deref() {
                    Some("success") => ActionOutcome::Succeeded,
                    _ => ActionOutcome::Failed,
                });
            }
            polls = polls.saturating_sub(1);
            if polls == 0 {
                let detail = format!("run {id} is still `{}`", run.status);
                return Err(AdapterError::throttled(ADAPTER, OP, Some(key), detail, self.dispatch.poll));
            }
            std::thread::sleep(self.dispatch.poll);
        }
    }
}

impl Operations for GitHubActions {
    fn run(&self, op: &Operation) -> Result<Option<ActionOutcome>, AdapterError> {
        let key = op.key.as_str();
        check_key(ADAPTER, OP, key)?;
        let mut polls = self.polls();
        let id = match self.find(op)? {
            Some(id) => id,
            None => {
                self.start(op)?;
                // GitHub lists a dispatched run after a moment.
                loop {
                    if let Some(id) = self.find(op)? {
                        break id;
                    }
                    polls = polls.saturating_sub(1);
                    if polls == 0 {
                        let detail = "the dispatched run has not appeared".to_owned();
                        return Err(AdapterError::transient(ADAPTER, OP, Some(key), detail));
                    }
                    std::thread::sleep(self.dispatch.poll);
                }
            }
        };
        self.wait(key, id, polls.max(1)).map(Some)
    }
}

/// The day from which a release's runs are searched: a week before its Monday, so that a
/// run dispatched in any zone that week is listed. `None` for an id that is no ISO week
/// (searching every run is slower, never wrong).
fn created_since(release: &ReleaseId) -> Option<chrono::NaiveDate> {
    let (year, week) = release.as_str().split_once("-W")?;
    let monday = chrono::NaiveDate::from_isoywd_opt(year.parse().ok()?, week.parse().ok()?, chrono::Weekday::Mon)?;
    monday.checked_sub_days(chrono::Days::new(7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_searched_from_the_week_before_the_release() {
        let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(created_since(&ReleaseId::of(day(2026, 11, 23).unwrap())), day(2026, 11, 16));
        assert_eq!(created_since(&ReleaseId::of(day(2027, 1, 4).unwrap())), day(2026, 12, 28));
    }
}
