//! Real forges (cargo feature `forge`): [`GitHubVcs`] and [`GitLabVcs`] open, read and merge
//! pull (merge) requests over the forges' REST APIs; [`GitHubActions`] and
//! [`GitLabPipelines`] run deploys, rollbacks and checks as GitHub Actions `workflow_dispatch`
//! runs or GitLab pipelines, polled to completion.
//!
//! All of them speak HTTP through one blocking client (ureq with rustls), map the forges'
//! documented answers onto [`AdapterError`](super::AdapterError) (a moved head, a conflict,
//! missing approvals: permanent, with the forge's reason; 5xx, timeouts: transient; rate
//! limits: [`Throttled`](super::AdapterError::Throttled) with the wait the forge asked for),
//! follow `Link: rel="next"` pagination on the API's own origin only, and carry the effect's
//! idempotency key where a retry can find it again (a marker in the pull request's
//! description, the dispatch's inputs). The token never appears in an error, a log line or
//! `Debug` output.

mod actions;
mod config;
mod github;
mod github_api;
mod gitlab;
mod http;
mod pipelines;
mod rules;
mod token;

pub use actions::{Dispatch, GitHubActions};
pub use config::ForgeConfig;
pub use github::GitHubVcs;
pub use gitlab::GitLabVcs;
pub use pipelines::GitLabPipelines;
pub use rules::{MergeMethod, MergeRules};
pub use token::{ForgeConfigError, ForgeToken};

/// The marker that carries an idempotency key in a pull request's description: an HTML
/// comment, invisible in the rendered text.
fn key_marker(kind: &str, key: &str) -> String {
    format!("<!-- kars-{kind}-key: {key} -->")
}

/// Keys travel in descriptions, markers and inputs: printable ASCII without `-->`.
fn check_key(adapter: &'static str, op: &'static str, key: &str) -> Result<(), super::AdapterError> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) || key.contains("-->") {
        return Err(super::AdapterError::permanent(
            adapter,
            op,
            Some(key),
            "the idempotency key must be printable ASCII without spaces or `-->` to travel in a pull request's description",
        ));
    }
    Ok(())
}

/// What a CI run is told: the action (`deploy`, `rollback`, `run_checks`), the environment
/// and the check suite (empty when the effect names none).
struct RunInputs {
    action: &'static str,
    environment: String,
    suite: String,
}

impl RunInputs {
    /// The inputs of `op`; a pull-request effect is refused (`runner` runs deploys, rollbacks
    /// and checks; `instead` says what the driver needs for it).
    fn of(
        op: &crate::driver::Operation,
        adapter: &'static str,
        what: &'static str,
        runner: &str,
        instead: &str,
    ) -> Result<Self, super::AdapterError> {
        use crate::effect::EffectKind;
        let (action, environment, suite) = match &op.kind {
            EffectKind::Deploy { environment, .. } => ("deploy", environment.to_string(), String::new()),
            EffectKind::Rollback { environment, .. } => ("rollback", environment.to_string(), String::new()),
            EffectKind::RunChecks { suite, environment } => {
                ("run_checks", environment.as_ref().map(ToString::to_string).unwrap_or_default(), suite.to_string())
            }
            other => {
                return Err(super::AdapterError::permanent(
                    adapter,
                    what,
                    Some(&op.key),
                    format!("{runner} deploys, rollbacks and checks, not `{other}`\nhelp: give the driver {instead}"),
                ));
            }
        };
        Ok(Self { action, environment, suite })
    }
}
