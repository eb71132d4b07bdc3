//! `--forge github:OWNER/REPO` or `gitlab:GROUP/PROJECT` (cargo feature `forge`): pull
//! requests and merges on a real forge, and with `--forge-deploy` deploys, rollbacks and checks
//! as GitHub Actions runs or GitLab pipelines. The token comes from `KARS_FORGE_TOKEN` or
//! `--forge-token-file`, never from a flag's value (it would show in `ps` and shell history).

use std::path::PathBuf;
use std::time::Duration;

use kars::workflow::adapter::Vcs;
use kars::workflow::adapter::forge::{
    Dispatch, ForgeConfig, ForgeToken, GitHubActions, GitHubVcs, GitLabPipelines, GitLabVcs,
};
use kars::workflow::driver::Operations;

use super::Failure;

/// The environment variable the forge token is read from.
pub(crate) const TOKEN_VAR: &str = "KARS_FORGE_TOKEN";

/// The ref a run or pipeline starts on when `--forge-deploy` names none.
const DEFAULT_REF: &str = "main";

/// Which forge pull requests (and, with `--forge-deploy`, deploys) go to.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ForgeArgs {
    /// Open and merge pull requests on a forge: `github:OWNER/REPO` or `gitlab:GROUP/PROJECT`
    /// (the token comes from `KARS_FORGE_TOKEN` or `--forge-token-file`).
    #[arg(long, value_name = "KIND:REPO", conflicts_with = "git")]
    forge: Option<String>,
    /// The forge's API root (GitHub Enterprise Server: `https://HOST/api/v3`; self-managed
    /// GitLab: `https://HOST/api/v4`).
    #[arg(long, value_name = "URL", requires = "forge")]
    forge_api: Option<String>,
    /// Read the forge token from this file (its first line) instead of `KARS_FORGE_TOKEN`.
    #[arg(long, value_name = "FILE", requires = "forge")]
    forge_token_file: Option<PathBuf>,
    /// Run deploys, rollbacks and checks on the forge's CI. GitHub: the Actions workflow to
    /// dispatch and its ref, `deploy.yml@main` (the ref defaults to `main`); GitLab: the ref
    /// whose pipeline runs, `main`. The run is named after the effect's key, so a later
    /// command waits on it instead of starting another.
    #[arg(long, value_name = "WORKFLOW@REF", requires = "forge")]
    forge_deploy: Option<String>,
    /// How long one command waits for a run to finish before it leaves the run to a later
    /// command (which finds the same run by its key).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, requires = "forge_deploy")]
    forge_deploy_wait: u64,
}

/// The adapters `--forge` asks for.
pub(crate) struct Forge {
    /// Pull requests and merges.
    pub(crate) vcs: Box<dyn Vcs + Send + Sync>,
    /// Deploys, rollbacks and checks, with `--forge-deploy`.
    pub(crate) operations: Option<Box<dyn Operations + Send + Sync>>,
}

/// The forge's adapters, if `--forge` was given.
pub(crate) fn adapters(args: &ForgeArgs) -> Result<Option<Forge>, Failure> {
    let Some(forge) = &args.forge else { return Ok(None) };
    let token = match &args.forge_token_file {
        Some(path) => ForgeToken::from_file(path),
        None => ForgeToken::from_env(TOKEN_VAR),
    }
    .map_err(Failure::usage)?;
    let with_api = |config: ForgeConfig| match &args.forge_api {
        Some(api) => config.with_api(api.clone()),
        None => config,
    };
    let poll = Duration::from_secs(10).min(Duration::from_secs(args.forge_deploy_wait.max(1)));
    let wait = Duration::from_secs(args.forge_deploy_wait);
    let forge = match forge.split_once(':') {
        Some(("github", repo)) => {
            let config = with_api(ForgeConfig::github(repo, token));
            let operations = match &args.forge_deploy {
                Some(target) => {
                    let (workflow, git_ref) = split_target(target)?;
                    let dispatch = Dispatch { poll, wait, ..Dispatch::new(workflow, git_ref) };
                    let actions = GitHubActions::new(config.clone(), dispatch).map_err(Failure::usage)?;
                    Some(Box::new(actions) as Box<dyn Operations + Send + Sync>)
                }
                None => None,
            };
            Forge { vcs: Box::new(GitHubVcs::new(config).map_err(Failure::usage)?), operations }
        }
        Some(("gitlab", project)) => {
            let config = with_api(ForgeConfig::gitlab(project, token));
            let operations = match &args.forge_deploy {
                Some(git_ref) => {
                    if git_ref.contains('@') || git_ref.trim().is_empty() {
                        return Err(Failure::usage(format!(
                            "`--forge-deploy {git_ref}` is not a ref\nhelp: on GitLab, name the ref whose pipeline runs, for example `--forge-deploy main`"
                        )));
                    }
                    let pipelines = GitLabPipelines::new(config.clone(), git_ref.clone()).map_err(Failure::usage)?;
                    Some(Box::new(pipelines.with_polling(poll, wait)) as Box<dyn Operations + Send + Sync>)
                }
                None => None,
            };
            Forge { vcs: Box::new(GitLabVcs::new(config).map_err(Failure::usage)?), operations }
        }
        _ => {
            return Err(Failure::usage(format!(
                "`--forge {forge}` names no forge\nhelp: write `github:OWNER/REPO` or `gitlab:GROUP/PROJECT`"
            )));
        }
    };
    Ok(Some(forge))
}

/// `deploy.yml@main` as the workflow and its ref (`main` when none is named).
fn split_target(target: &str) -> Result<(&str, &str), Failure> {
    let (workflow, git_ref) = target.split_once('@').unwrap_or((target, DEFAULT_REF));
    if workflow.trim().is_empty() || git_ref.trim().is_empty() {
        return Err(Failure::usage(format!(
            "`--forge-deploy {target}` names no workflow\nhelp: on GitHub, name the Actions workflow file and its ref, for example `--forge-deploy deploy.yml@main`"
        )));
    }
    Ok((workflow, git_ref))
}
