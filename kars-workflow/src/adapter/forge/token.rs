//! `ForgeToken`: an API token read from the environment or a file, never shown; and
//! `ForgeConfigError`, what can be wrong with a forge's configuration.

use std::fmt;
use std::path::{Path, PathBuf};

/// A forge's API token. `Debug` and `Display` print `ForgeToken(***)`; the only way to the
/// secret is the crate-private header builder, so it cannot end up in an error, a log line or
/// the journal by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ForgeToken(String);

impl fmt::Debug for ForgeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForgeToken(***)")
    }
}

/// Why a forge adapter could not be configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForgeConfigError {
    /// The environment variable is not set or empty.
    #[error("the environment variable `{var}` holds no forge token\nhelp: export `{var}` or pass a token file")]
    MissingVar {
        /// The variable's name.
        var: String,
    },
    /// The token file could not be read.
    #[error("cannot read the forge token file `{}`: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The repository is not `OWNER/NAME` (GitHub) or `GROUP/…/PROJECT` (GitLab).
    #[error("`{given}` is not a repository path\nhelp: write it as {expected}")]
    Repository {
        /// What was given.
        given: String,
        /// What the forge expects (`OWNER/REPO`).
        expected: &'static str,
    },
    /// The API base URL is not an `http://` or `https://` URL.
    #[error(
        "`{given}` is not an API base URL\nhelp: give the API root, such as `https://api.github.com` or `https://HOST/api/v3`"
    )]
    ApiUrl {
        /// What was given.
        given: String,
    },
    /// A plain `http://` API root on another machine: the token would cross the network in
    /// clear text.
    #[error(
        "`{given}` would send the forge token unencrypted\nhelp: use `https://`; plain `http://` is for a forge on this machine (`localhost`, `127.0.0.1`, `[::1]`)"
    )]
    PlainHttp {
        /// What was given.
        given: String,
    },
    /// The token holds characters an HTTP header cannot carry, or nothing.
    #[error("the forge token from {from} is empty or not printable ASCII\nhelp: the token is one line, without spaces")]
    Malformed {
        /// Where it came from (``the environment variable `X` `` or a file name).
        from: String,
    },
}

impl ForgeToken {
    /// A token from a string (trimmed).
    ///
    /// # Errors
    /// [`ForgeConfigError::Malformed`] for an empty token or one with spaces or control characters.
    pub fn new(token: &str, from: &str) -> Result<Self, ForgeConfigError> {
        let token = token.trim();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ForgeConfigError::Malformed { from: from.to_owned() });
        }
        Ok(Self(token.to_owned()))
    }

    /// The token in environment variable `var`.
    ///
    /// # Errors
    /// [`ForgeConfigError::MissingVar`] when unset or empty; [`ForgeConfigError::Malformed`].
    pub fn from_env(var: &str) -> Result<Self, ForgeConfigError> {
        match std::env::var(var) {
            Ok(value) if !value.trim().is_empty() => Self::new(&value, &format!("the environment variable `{var}`")),
            _ => Err(ForgeConfigError::MissingVar { var: var.to_owned() }),
        }
    }

    /// The token in the file at `path` (its first line, trimmed).
    ///
    /// # Errors
    /// [`ForgeConfigError::File`] when unreadable; [`ForgeConfigError::Malformed`].
    pub fn from_file(path: &Path) -> Result<Self, ForgeConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ForgeConfigError::File { path: path.to_owned(), source })?;
        Self::new(text.lines().next().unwrap_or_default(), &format!("`{}`", path.display()))
    }

    /// The secret, for the `Authorization` (or `PRIVATE-TOKEN`) header only.
    pub(super) fn secret(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows() {
        let token = ForgeToken::new(" ghp_s3cret\n", "a test").unwrap();
        assert_eq!(format!("{token:?}"), "ForgeToken(***)");
        assert_eq!(token.secret(), "ghp_s3cret");
        let err = ForgeToken::new("two words", "a test").unwrap_err().to_string();
        assert!(!err.contains("two") && err.contains("a test"), "{err}");
        let err = ForgeToken::from_env("KARS_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert!(err.to_string().contains("`KARS_TEST_SURELY_UNSET_VARIABLE`"), "{err}");
    }

    #[test]
    fn a_token_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "glpat-abc\nignored\n").unwrap();
        assert_eq!(ForgeToken::from_file(&path).unwrap().secret(), "glpat-abc");
        assert!(matches!(ForgeToken::from_file(&dir.path().join("none")), Err(ForgeConfigError::File { .. })));
    }
}
