//! `ForgeConfig`: which repository on which forge, with which token and merge rules.

use std::time::Duration;

use super::{ForgeConfigError, ForgeToken, MergeRules};

/// Where a forge adapter works.
#[derive(Debug, Clone)]
pub struct ForgeConfig {
    /// `OWNER/REPO` on GitHub; `GROUP/…/PROJECT` on GitLab.
    pub repository: String,
    /// The API root: `https://api.github.com`, GitHub Enterprise Server's
    /// `https://HOST/api/v3`, `https://gitlab.com/api/v4` or a self-managed GitLab's.
    pub api: String,
    /// The token (never shown).
    pub token: ForgeToken,
    /// What a merge needs, and how it merges.
    pub rules: MergeRules,
    /// How long one HTTP request may take in all.
    pub timeout: Duration,
}

impl ForgeConfig {
    /// GitHub.com's API root.
    pub const GITHUB_API: &str = "https://api.github.com";
    /// GitLab.com's API root.
    pub const GITLAB_API: &str = "https://gitlab.com/api/v4";
    /// The default timeout of one request: 30 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// `repository` on GitHub.com with the default rules and timeout.
    #[must_use]
    pub fn github(repository: impl Into<String>, token: ForgeToken) -> Self {
        Self::at(repository, Self::GITHUB_API, token)
    }

    /// `repository` on GitLab.com with the default rules and timeout.
    #[must_use]
    pub fn gitlab(repository: impl Into<String>, token: ForgeToken) -> Self {
        Self::at(repository, Self::GITLAB_API, token)
    }

    fn at(repository: impl Into<String>, api: &str, token: ForgeToken) -> Self {
        Self {
            repository: repository.into(),
            api: api.to_owned(),
            token,
            rules: MergeRules::default(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// The same on another API root (GitHub Enterprise Server, self-managed GitLab, a test
    /// server).
    #[must_use]
    pub fn with_api(mut self, api: impl Into<String>) -> Self {
        self.api = api.into();
        self
    }

    /// The same with these merge rules.
    #[must_use]
    pub fn with_rules(mut self, rules: MergeRules) -> Self {
        self.rules = rules;
        self
    }

    /// The same with this request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the API root and splits the repository into its `/`-separated parts (at least
    /// `min` of them, at most `max`).
    pub(super) fn check(
        &self,
        min: usize,
        max: usize,
        expected: &'static str,
    ) -> Result<Vec<String>, ForgeConfigError> {
        let api = self.api.trim_end_matches('/');
        let host = api.strip_prefix("https://").or_else(|| api.strip_prefix("http://")).unwrap_or_default();
        if host.is_empty() || host.starts_with('/') || api.contains(['?', '#', ' ']) {
            return Err(ForgeConfigError::ApiUrl { given: self.api.clone() });
        }
        if api.starts_with("http://") {
            // The host without its port and path; `[::1]` keeps its brackets.
            let authority = host.split('/').next().unwrap_or_default();
            let name = match authority.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default(),
                None => authority.split(':').next().unwrap_or_default(),
            };
            if !matches!(name.to_ascii_lowercase().as_str(), "localhost" | "127.0.0.1" | "::1") {
                return Err(ForgeConfigError::PlainHttp { given: self.api.clone() });
            }
        }
        let parts: Vec<String> = self.repository.split('/').map(str::to_owned).collect();
        let good = |p: &String| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if parts.len() < min || parts.len() > max || !parts.iter().all(good) {
            return Err(ForgeConfigError::Repository { given: self.repository.clone(), expected });
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_and_api_roots_are_checked() {
        let token = ForgeToken::new("t", "a test").unwrap();
        let c = ForgeConfig::github("keydatalab/kars", token.clone());
        assert_eq!(c.check(2, 2, "`OWNER/REPO`").unwrap(), ["keydatalab", "kars"]);
        for bad in ["kars", "a/b/c", "a/../b", "a b/c", "/kars"] {
            let c = ForgeConfig::github(bad, token.clone());
            assert!(matches!(c.check(2, 2, "x"), Err(ForgeConfigError::Repository { .. })), "{bad}");
        }
        for bad in ["api.github.com", "https://", "ftp://x", "https://x/?q"] {
            let c = ForgeConfig::github("o/r", token.clone()).with_api(bad);
            assert!(matches!(c.check(2, 2, "x"), Err(ForgeConfigError::ApiUrl { .. })), "{bad}");
        }
        assert!(ForgeConfig::gitlab("g/sub/p", token.clone()).check(2, 20, "x").is_ok());
        for (api, plain) in [
            ("http://ghe.example.com/api/v3", true),
            ("http://127.0.0.1:8080/api/v3", false),
            ("http://localhost:9/api", false),
            ("http://[::1]:9/api", false),
            ("http://localhost.evil.example/api", true),
            ("https://ghe.example.com/api/v3", false),
        ] {
            let c = ForgeConfig::github("o/r", token.clone()).with_api(api);
            assert_eq!(matches!(c.check(2, 2, "x"), Err(ForgeConfigError::PlainHttp { .. })), plain, "{api}");
        }
    }
}
