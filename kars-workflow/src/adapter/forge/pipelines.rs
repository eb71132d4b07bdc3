//! `GitLabPipelines`: deploys, rollbacks and check suites as GitLab pipelines started through
//! the API, polled to completion.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use ureq::http::Method;

use super::http::{Api, Auth, encode};
use super::{ForgeConfig, ForgeConfigError, RunInputs, check_key};
use crate::adapter::AdapterError;
use crate::driver::{Operation, Operations};
use crate::event::ActionOutcome;

const ADAPTER: &str = "gitlab pipelines";
const OP: &str = "run";

#[derive(Debug, Deserialize)]
struct Pipeline {
    id: u64,
    status: String,
    #[serde(default)]
    name: Option<String>,
}

/// [`Operations`] that run each deploy, rollback and check suite as a pipeline of a GitLab
/// project on one ref, and report how it ended (`success`: succeeded; `failed`, `canceled`,
/// `skipped`: failed).
///
/// The pipeline gets the variables `KARS_KEY` (the effect's idempotency key), `KARS_RELEASE`,
/// `KARS_NODE`, `KARS_ACTION` (`deploy`, `rollback`, `run_checks`), `KARS_ENVIRONMENT` and
/// `KARS_SUITE`. The project's `.gitlab-ci.yml` must name its pipelines after the key
/// (`workflow: { name: $KARS_KEY }`): a call first looks for a pipeline with that name, so a
/// retry or a replay waits on the pipeline already started. The call blocks while it polls
/// (`poll` apart, at most `wait / poll` polls a call; then a throttled failure whose retry
/// waits on).
#[derive(Debug)]
pub struct GitLabPipelines {
    api: Api,
    project: String,
    git_ref: String,
    poll: Duration,
    wait: Duration,
}

impl GitLabPipelines {
    /// Pipelines of `config`'s project on `git_ref`, polled every 10 seconds for up to 30
    /// minutes a call.
    ///
    /// # Errors
    /// [`ForgeConfigError`] for a malformed project path or API root.
    pub fn new(config: ForgeConfig, git_ref: impl Into<String>) -> Result<Self, ForgeConfigError> {
        let parts = config.check(2, 20, "`GROUP/PROJECT` (subgroups allowed)")?;
        let api = Api::new(ADAPTER, &config.api, config.token, Auth::PrivateToken, config.timeout);
        Ok(Self {
            api,
            project: format!("/projects/{}", encode(&parts.join("/"))),
            git_ref: git_ref.into(),
            poll: Duration::from_secs(10),
            wait: Duration::from_secs(30 * 60),
        })
    }

    /// The same, polling every `poll` for up to `wait` a call.
    #[must_use]
    pub fn with_polling(mut self, poll: Duration, wait: Duration) -> Self {
        self.poll = poll;
        self.wait = wait;
        self
    }

    /// HTTP requests sent so far.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.api.requests()
    }

    fn url(&self, path: &str) -> String {
        self.api.url(&format!("{}{path}", self.project))
    }

    fn send_ok(
        &self,
        key: &str,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<String, AdapterError> {
        let reply = self.api.send(OP, Some(key), method, url, body)?;
        self.api.expect_ok(OP, Some(key), &reply, url)?;
        Ok(reply.body)
    }

    /// The pipeline named `key`, if GitLab lists one.
    fn find(&self, key: &str) -> Result<Option<u64>, AdapterError> {
        let url = self.url(&format!("/pipelines?name={}&per_page=20", encode(key)));
        let body = self.send_ok(key, Method::GET, &url, None)?;
        let pipelines: Vec<Pipeline> = self.api.parse(OP, Some(key), &body, &url)?;
        Ok(pipelines.iter().find(|p| p.name.as_deref() == Some(key)).map(|p| p.id))
    }

    fn start(&self, op: &Operation) -> Result<u64, AdapterError> {
        let key = op.key.as_str();
        let run = RunInputs::of(op, ADAPTER, OP, "GitLab pipelines run", "a forge `Vcs` for merge requests")?;
        let variable = |k: &str, v: &str| json!({ "key": k, "value": v });
        let body = json!({
            "ref": self.git_ref,
            "variables": [
                variable("KARS_KEY", key),
                variable("KARS_RELEASE", op.release.as_str()),
                variable("KARS_NODE", op.node.as_str()),
                variable("KARS_ACTION", run.action),
                variable("KARS_ENVIRONMENT", &run.environment),
                variable("KARS_SUITE", &run.suite),
            ],
        });
        let url = self.url("/pipeline");
        let body = self.send_ok(key, Method::POST, &url, Some(&body))?;
        Ok(self.api.parse::<Pipeline>(OP, Some(key), &body, &url)?.id)
    }
}

impl Operations for GitLabPipelines {
    fn run(&self, op: &Operation) -> Result<Option<ActionOutcome>, AdapterError> {
        let key = op.key.as_str();
        check_key(ADAPTER, OP, key)?;
        let id = match self.find(key)? {
            Some(id) => id,
            None => self.start(op)?,
        };
        let url = self.url(&format!("/pipelines/{id}"));
        let mut polls = (self.wait.as_millis() / self.poll.as_millis().max(1)).max(1);
        loop {
            let body = self.send_ok(key, Method::GET, &url, None)?;
            let pipeline: Pipeline = self.api.parse(OP, Some(key), &body, &url)?;
            match pipeline.status.as_str() {
                "success" => return Ok(Some(ActionOutcome::Succeeded)),
                "failed" | "canceled" | "skipped" => return Ok(Some(ActionOutcome::Failed)),
                _ => {}
            }
            polls = polls.saturating_sub(1);
            if polls == 0 {
                let detail = format!("pipeline {id} is still `{}`", pipeline.status);
                return Err(AdapterError::throttled(ADAPTER, OP, Some(key), detail, self.poll));
            }
            std::thread::sleep(self.poll);
        }
    }
}
