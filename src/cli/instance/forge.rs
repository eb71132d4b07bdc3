//! `--forge github:OWNER/REPO` or `gitlab:GROUP/PROJECT` (cargo feature `forge`): pull
//! requests and merges on a real forge. The token comes from `KARS_FORGE_TOKEN` or
//! `--forge-token-file`, never from a flag's value (it would show in `ps` and shell history).

use std::path::PathBuf;

use kars::workflow::adapter::Vcs;
use kars::workflow::adapter::forge::{ForgeConfig, ForgeToken, GitHubVcs, GitLabVcs};

use super::usage;
use crate::cli::Failure;

/// The environment variable the forge token is read from.
pub(super) const TOKEN_VAR: &str = "KARS_FORGE_TOKEN";

/// Which forge pull requests go to.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct ForgeArgs {
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
}

/// The forge's [`Vcs`], if `--forge` was given.
pub(super) fn vcs(args: &ForgeArgs) -> Result<Option<Box<dyn Vcs + Send + Sync>>, Failure> {
    let Some(forge) = &args.forge else { return Ok(None) };
    let token = match &args.forge_token_file {
        Some(path) => ForgeToken::from_file(path),
        None => ForgeToken::from_env(TOKEN_VAR),
    }
    .map_err(usage)?;
    let vcs: Box<dyn Vcs + Send + Sync> = match forge.split_once(':') {
        Some(("github", repo)) => {
            let mut config = ForgeConfig::github(repo, token);
            if let Some(api) = &args.forge_api {
                config = config.with_api(api.clone());
            }
            Box::new(GitHubVcs::new(config).map_err(usage)?)
        }
        Some(("gitlab", project)) => {
            let mut config = ForgeConfig::gitlab(project, token);
            if let Some(api) = &args.forge_api {
                config = config.with_api(api.clone());
            }
            Box::new(GitLabVcs::new(config).map_err(usage)?)
        }
        _ => {
            return Err(usage(format!(
                "`--forge {forge}` names no forge\nhelp: write `github:OWNER/REPO` or `gitlab:GROUP/PROJECT`"
            )));
        }
    };
    Ok(Some(vcs))
}
