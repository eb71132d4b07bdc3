//! What `kars serve` trusts: API token hashes, the single-sign-on proxy's addresses, webhook
//! senders and their secrets, and the request limits. [`ConfigFile`] is the YAML file's shape;
//! [`Settings`] is what the server runs with, resolved once at start (secrets read from the
//! environment or files, token hashes checked).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::HeaderName;
use kars_spec::PersonId;
use serde::Deserialize;

/// The config file's format version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The YAML does not parse into a config.
    #[error("config `{origin}` is not valid: {detail}")]
    Parse {
        /// The file.
        origin: String,
        /// What the parser said.
        detail: String,
    },
    /// The config's `version:` is not one this build reads.
    #[error("config `{origin}` has `version: {found}`, and this build reads version {CONFIG_VERSION}")]
    Version {
        /// The file.
        origin: String,
        /// The version found.
        found: u32,
    },
    /// A token hash is not 64 lowercase hex digits.
    #[error(
        "the token hash for `{person}` is not a SHA-256 hex digest (64 lowercase hex digits)\nhelp: make one with `kars serve hash-token` and paste its output"
    )]
    BadHash {
        /// The person the hash belongs to.
        person: PersonId,
    },
    /// The proxy's identity header is not a header name, or names other credentials.
    #[error(
        "`proxy: {{ header: {name} }}` cannot carry the proxy's identity\nhelp: name the one header the proxy sets to the signed-in login, for example `x-forwarded-user` (not `authorization` or `cookie`)"
    )]
    ProxyHeader {
        /// The name given.
        name: String,
    },
    /// A webhook sender's secret cannot be read.
    #[error("the secret of webhook sender `{sender}` cannot be read: {detail}")]
    Secret {
        /// The sender.
        sender: String,
        /// Why.
        detail: String,
    },
    /// A webhook sender's secret is too short to be a secret.
    #[error(
        "the secret of webhook sender `{sender}` has {len} bytes; at least 16 are needed\nhelp: generate one with `kars serve new-token`"
    )]
    ShortSecret {
        /// The sender.
        sender: String,
        /// Its length.
        len: usize,
    },
}

/// The config file (`kars serve --config FILE`), YAML.
///
/// ```yaml
/// version: 1
/// tokens:                      # per-person API tokens: only their SHA-256 hashes
///   - { person: carol, sha256: 5e88…42d8 }
/// proxy:                       # trust the identity header from these peers only
///   peers: [127.0.0.1]
///   header: x-forwarded-user   # the one header the proxy sets (the default)
/// webhooks:                    # senders of signed webhooks, each acting as a roster person
///   ci: { person: dave, secret_env: KARS_WEBHOOK_CI }
///   github: { person: dave, secret_file: /etc/kars/github.secret, scheme: github }
///   gitlab: { person: dave, secret_env: KARS_GITLAB_HOOK_TOKEN, scheme: gitlab }
/// limits: { body_bytes: 65536, request_seconds: 10 }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The format version: 1.
    pub version: u32,
    /// API tokens.
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    /// The single-sign-on proxy.
    #[serde(default)]
    pub proxy: Option<ProxyConfig>,
    /// Webhook senders by name (the name is in the URL: `POST /hooks/{sender}`).
    #[serde(default)]
    pub webhooks: BTreeMap<String, SenderEntry>,
    /// Request limits.
    #[serde(default)]
    pub limits: Limits,
}

/// One API token: the person it signs in as, and its SHA-256.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// The roster person.
    pub person: PersonId,
    /// The token's SHA-256, lowercase hex.
    pub sha256: String,
}

/// The trusted single-sign-on proxy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// The addresses the proxy connects from; identity headers from any other peer are
    /// ignored.
    pub peers: Vec<IpAddr>,
    /// The one header the proxy sets to the signed-in login or e-mail address, and overwrites
    /// on every request (default `x-forwarded-user`). No other header is read.
    #[serde(default)]
    pub header: Option<String>,
}

/// A webhook sender in the config file; its secret comes from the environment or a file,
/// never from the config itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderEntry {
    /// The roster person the sender reports as.
    pub person: PersonId,
    /// The environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// The file holding the secret (trailing whitespace is dropped).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// How the sender signs: `kars` (the default: `X-Kars-Timestamp` and `X-Kars-Signature`
    /// over `TIMESTAMP.BODY`, a `{instance, node, outcome}` body), `github` (a GitHub
    /// webhook: `X-Hub-Signature-256` over the body, `workflow_run` events whose run is titled
    /// with a deploy's idempotency key) or `gitlab` (a GitLab webhook: the secret itself in
    /// `X-Gitlab-Token`, `Pipeline Hook` events whose pipeline carries a deploy's idempotency
    /// key in its `KARS_KEY` variable).
    #[serde(default)]
    pub scheme: Scheme,
}

/// How a webhook sender signs and what it sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// kars's own: a timestamped HMAC and a report body.
    #[default]
    Kars,
    /// GitHub's: `X-Hub-Signature-256` over the body, deliveries told apart by
    /// `X-GitHub-Delivery`; `workflow_run` events report the deploy they ran.
    Github,
    /// GitLab's: the secret token itself in `X-Gitlab-Token`, deliveries told apart by
    /// `Idempotency-Key` (or `X-Gitlab-Event-UUID`); `Pipeline Hook` events report the deploy
    /// their pipeline ran.
    Gitlab,
}

/// Request limits.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The largest request body accepted, in bytes.
    pub body_bytes: usize,
    /// How long a request may take, in seconds (live-update streams excepted).
    pub request_seconds: u64,
    /// How far a webhook's timestamp may be from the server's clock, in seconds.
    pub webhook_skew_seconds: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { body_bytes: 64 * 1024, request_seconds: 10, webhook_skew_seconds: 300 }
    }
}

impl Limits {
    /// The request timeout.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_seconds)
    }
}

/// A webhook sender, resolved: the person it reports as and its secret.
#[derive(Clone)]
pub struct Sender {
    /// The roster person.
    pub person: PersonId,
    /// The HMAC-SHA256 key.
    pub(crate) key: ring::hmac::Key,
    /// The SHA-256 of the secret, lowercase hex: what a token sent as is (GitLab's
    /// `X-Gitlab-Token`) is compared with, hashed, in constant time.
    pub(crate) secret_sha256: String,
    /// How it signs.
    pub scheme: Scheme,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("person", &self.person).finish_non_exhaustive()
    }
}

impl Sender {
    /// A sender reporting as `person`, signing with `secret`.
    ///
    /// # Errors
    /// [`ConfigError::ShortSecret`] for a secret under 16 bytes.
    pub fn new(name: &str, person: PersonId, secret: &[u8]) -> Result<Self, ConfigError> {
        if secret.len() < 16 {
            return Err(ConfigError::ShortSecret { sender: name.to_owned(), len: secret.len() });
        }
        let secret_sha256 = sha256_hex(secret);
        Ok(Self {
            person,
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
            secret_sha256,
            scheme: Scheme::Kars,
        })
    }

    /// The same sender, signing by `scheme`.
    #[must_use]
    pub fn with_scheme(self, scheme: Scheme) -> Self {
        Self { scheme, ..self }
    }
}

/// The SHA-256 of `bytes`, lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    super::auth::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// What the server trusts, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Token SHA-256 (lowercase hex) to the person it signs in as.
    pub tokens: BTreeMap<String, PersonId>,
    /// Peers whose identity header ([`Settings::proxy_header`]) is trusted.
    pub proxy_peers: Vec<IpAddr>,
    /// The one header the proxy sets to the signed-in login (default `x-forwarded-user`).
    pub proxy_header: HeaderName,
    /// Webhook senders by name.
    pub senders: BTreeMap<String, Sender>,
    /// Request limits.
    pub limits: Limits,
    /// Whether other processes write to the store too.
    pub sharing: Sharing,
}

/// Whether the server is the only writer of its store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sharing {
    /// This server alone writes (a journal directory): what it holds in memory is current.
    #[default]
    Exclusive,
    /// Other replicas write to the same store (PostgreSQL): every request on an instance first
    /// catches up with the store's version, and an instance another replica started is opened
    /// on first use.
    Shared,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tokens: BTreeMap::new(),
            proxy_peers: Vec::new(),
            proxy_header: HeaderName::from_static(super::auth::USER_HEADER),
            senders: BTreeMap::new(),
            limits: Limits::default(),
            sharing: Sharing::default(),
        }
    }
}

impl Settings {
    /// The same settings with the proxy's identity header `name`.
    ///
    /// # Errors
    /// [`ConfigError::ProxyHeader`] for a name that is no header name, or one that carries
    /// other credentials (`authorization`, `cookie`).
    pub fn with_proxy_header(mut self, name: &str) -> Result<Self, ConfigError> {
        let header = HeaderName::from_bytes(name.trim().as_bytes())
            .ok()
            .filter(|h| *h != axum::http::header::AUTHORIZATION && *h != axum::http::header::COOKIE)
            .ok_or_else(|| ConfigError::ProxyHeader { name: name.to_owned() })?;
        self.proxy_header = header;
        Ok(self)
    }

    /// The same settings with `sharing`.
    #[must_use]
    pub fn with_sharing(mut self, sharing: Sharing) -> Self {
        self.sharing = sharing;
        self
    }

    /// Adds a token by its hash ([`super::auth::hash_token`]).
    ///
    /// # Errors
    /// [`ConfigError::BadHash`] when `sha256` is not 64 lowercase hex digits.
    pub fn with_token_hash(mut self, person: PersonId, sha256: &str) -> Result<Self, ConfigError> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(ConfigError::BadHash { person });
        }
        self.tokens.insert(sha256.to_owned(), person);
        Ok(self)
    }
}

impl ConfigFile {
    /// Parses a config file's text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] and [`ConfigError::Version`].
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let file: Self = serde_saphyr::from_str(text)
            .map_err(|e| ConfigError::Parse { origin: origin.to_owned(), detail: e.to_string() })?;
        if file.version != CONFIG_VERSION {
            return Err(ConfigError::Version { origin: origin.to_owned(), found: file.version });
        }
        Ok(file)
    }

    /// Resolves the file: checks token hashes, reads webhook secrets.
    ///
    /// # Errors
    /// [`ConfigError::BadHash`], [`ConfigError::Secret`], [`ConfigError::ShortSecret`].
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let mut settings = Settings { limits: self.limits, ..Settings::default() };
        for token in &self.tokens {
            settings = settings.with_token_hash(token.person.clone(), &token.sha256)?;
        }
        if let Some(proxy) = &self.proxy {
            settings.proxy_peers = proxy.peers.iter().map(IpAddr::to_canonical).collect();
            if let Some(header) = &proxy.header {
                settings = settings.with_proxy_header(header)?;
            }
        }
        for (name, entry) in &self.webhooks {
            let secret = read_secret(name, entry)?;
            let sender = Sender::new(name, entry.person.clone(), secret.as_bytes())?.with_scheme(entry.scheme);
            settings.senders.insert(name.clone(), sender);
        }
        Ok(settings)
    }
}

fn read_secret(name: &str, entry: &SenderEntry) -> Result<String, ConfigError> {
    let fail = |detail: String| ConfigError::Secret { sender: name.to_owned(), detail };
    match (&entry.secret_env, &entry.secret_file) {
        (Some(var), None) => std::env::var(var).map_err(|e| fail(format!("environment variable `{var}`: {e}"))),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|s| s.trim_end().to_owned())
            .map_err(|e| fail(format!("file `{}`: {e}", path.display()))),
        _ => Err(fail("give exactly one of `secret_env:` and `secret_file:`".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_resolves_hashes_and_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("ci.secret");
        std::fs::write(&secret, "0123456789abcdef0123\n").unwrap();
        let yaml = format!(
            "version: 1\ntokens:\n  - {{ person: carol, sha256: {} }}\nproxy: {{ peers: [\"::ffff:127.0.0.1\"], header: X-Auth-Request-Email }}\nwebhooks:\n  ci: {{ person: dave, secret_file: {} }}\n",
            "a".repeat(64),
            secret.display()
        );
        let settings = ConfigFile::from_yaml(&yaml, "serve.yaml").unwrap().resolve().unwrap();
        assert_eq!(settings.tokens.get(&"a".repeat(64)).map(PersonId::as_str), Some("carol"));
        assert_eq!(settings.proxy_peers, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(settings.proxy_header, "x-auth-request-email");
        let cookie = ConfigFile::from_yaml("version: 1\nproxy: { peers: [127.0.0.1], header: Cookie }\n", "s.yaml");
        assert!(matches!(cookie.unwrap().resolve(), Err(ConfigError::ProxyHeader { .. })));
        assert_eq!(settings.senders["ci"].person.as_str(), "dave");
        assert_eq!(settings.senders["ci"].scheme, Scheme::Kars);
    }

    #[test]
    fn a_sender_names_its_scheme() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("gitlab.secret");
        std::fs::write(&secret, "gitlab-token-0123456789\n").unwrap();
        let yaml = format!(
            "version: 1\nwebhooks:\n  gitlab: {{ person: dave, secret_file: {}, scheme: gitlab }}\n",
            secret.display()
        );
        let settings = ConfigFile::from_yaml(&yaml, "serve.yaml").unwrap().resolve().unwrap();
        let sender = &settings.senders["gitlab"];
        assert_eq!(sender.scheme, Scheme::Gitlab);
        // The token GitLab sends is compared with the secret as read (trailing newline dropped).
        assert_eq!(sender.secret_sha256, sha256_hex(b"gitlab-token-0123456789"));
        let unknown = "version: 1\nwebhooks:\n  x: { person: dave, secret_env: X, scheme: bitbucket }\n";
        assert!(matches!(ConfigFile::from_yaml(unknown, "s.yaml"), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn bad_hashes_versions_and_short_secrets_are_refused() {
        let bad = ConfigFile::from_yaml("version: 1\ntokens: [{ person: carol, sha256: abc }]\n", "s.yaml").unwrap();
        assert!(matches!(bad.resolve(), Err(ConfigError::BadHash { .. })));
        assert!(matches!(ConfigFile::from_yaml("version: 2\n", "s.yaml"), Err(ConfigError::Version { found: 2, .. })));
        assert!(matches!(
            Sender::new("ci", "dave".parse().unwrap(), b"short"),
            Err(ConfigError::ShortSecret { len: 5, .. })
        ));
    }
}
