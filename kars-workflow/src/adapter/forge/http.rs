//! The forges' HTTP layer: one blocking ureq agent, the token header, JSON in and out,
//! `Link` pagination, and the status codes every forge call shares (auth, rate limits, 5xx).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use ureq::http::{self, Method};

use super::ForgeToken;
use crate::adapter::AdapterError;

/// How the token travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Auth {
    /// `Authorization: Bearer …` (GitHub).
    Bearer,
    /// `PRIVATE-TOKEN: …` (GitLab).
    PrivateToken,
}

/// A forge's REST API at a base URL.
#[derive(Debug)]
pub(super) struct Api {
    adapter: &'static str,
    base: String,
    token: ForgeToken,
    auth: Auth,
    agent: ureq::Agent,
    requests: AtomicU64,
}

/// An answer, whatever its status.
#[derive(Debug)]
pub(super) struct Reply {
    pub status: u16,
    pub body: String,
    /// The `Link: rel="next"` URL, if on the API's origin.
    pub next: Option<String>,
    /// How long a rate limit asks to wait (`Retry-After`, or the reset time), if this is one.
    pub rate_limited: Option<Duration>,
}

/// What [`Api::search`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Search<T> {
    /// Found on one of the pages.
    Found(T),
    /// Every page was read; it is not there.
    Absent,
    /// More pages were left than the search reads: it may be there.
    CutShort,
}

/// How long to wait on a secondary rate limit that names no time (GitHub: "at least one minute").
const SECONDARY_WAIT: Duration = Duration::from_secs(60);

impl Api {
    pub(super) fn new(adapter: &'static str, base: &str, token: ForgeToken, auth: Auth, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("kars/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { adapter, base: base.trim_end_matches('/').to_owned(), token, auth, agent, requests: AtomicU64::new(0) }
    }

    /// The base URL (no trailing `/`).
    pub(super) fn base(&self) -> &str {
        &self.base
    }

    /// Requests sent so far.
    pub(super) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `base` + `path` (which starts with `/`).
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends one request; network trouble is transient, a malformed URL permanent.
    pub(super) fn send(
        &self,
        op: &'static str,
        key: Option<&str>,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, AdapterError> {
        let mut builder = http::Request::builder().method(method).uri(url).header("Accept", "application/json");
        builder = match self.auth {
            Auth::Bearer => builder
                .header("Authorization", format!("Bearer {}", self.token.secret()))
                .header("X-GitHub-Api-Version", "2022-11-28"),
            Auth::PrivateToken => builder.header("PRIVATE-TOKEN", self.token.secret()),
        };
        let payload = body.map(serde_json::Value::to_string).unwrap_or_default();
        if body.is_some() {
            builder = builder.header("Content-Type", "application/json");
        }
        let request = builder.body(payload).map_err(|_| {
            AdapterError::permanent(self.adapter, op, key, format!("`{}` is not a valid API URL", self.shown(url)))
        })?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut response = self.agent.run(request).map_err(|e| self.transport(op, key, url, &e))?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let next = header("link").and_then(|link| next_link(&link)).filter(|u| self.same_origin(u));
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(MAX_WAIT_SECONDS)));
        let exhausted = header("x-ratelimit-remaining").is_some_and(|v| v.trim() == "0");
        // GitHub: `x-ratelimit-reset`; GitLab: `ratelimit-reset` (both epoch seconds).
        let reset = header("x-ratelimit-reset")
            .or_else(|| header("ratelimit-reset"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        let exhausted = exhausted || header("ratelimit-remaining").is_some_and(|v| v.trim() == "0");
        let body = response.body_mut().read_to_string().map_err(|e| self.transport(op, key, url, &e))?;
        let rate_limited = match status {
            429 => Some(retry_after.unwrap_or_else(|| until(reset).unwrap_or(SECONDARY_WAIT))),
            403 if retry_after.is_some() => retry_after,
            403 if exhausted => Some(until(reset).unwrap_or(SECONDARY_WAIT)),
            403 if body.to_ascii_lowercase().contains("rate limit") => Some(SECONDARY_WAIT),
            _ => None,
        };
        Ok(Reply { status, body, next, rate_limited })
    }

    /// GETs `url` and the `next` pages after it, at most `max_pages`, parsing each as `P` and
    /// asking `look` for what is sought, until it is found or the pages end.
    pub(super) fn search<P: DeserializeOwned, T>(
        &self,
        op: &'static str,
        key: Option<&str>,
        url: &str,
        max_pages: usize,
        mut look: impl FnMut(P) -> Option<T>,
    ) -> Result<Search<T>, AdapterError> {
        let mut url = url.to_owned();
        for _ in 0..max_pages {
            let reply = self.send(op, key, Method::GET, &url, None)?;
            self.expect_ok(op, key, &reply, &url)?;
            if let Some(found) = look(self.parse::<P>(op, key, &reply.body, &url)?) {
                return Ok(Search::Found(found));
            }
            match reply.next {
                Some(next) => url = next,
                None => return Ok(Search::Absent),
            }
        }
        Ok(Search::CutShort)
    }

    /// GETs `url` and every `next` page after it, collecting the arrays.
    pub(super) fn get_all<T: DeserializeOwned>(
        &self,
        op: &'static str,
        key: Option<&str>,
        url: &str,
    ) -> Result<Vec<T>, AdapterError> {
        let mut items = Vec::new();
        let mut url = url.to_owned();
        loop {
            let reply = self.send(op, key, Method::GET, &url, None)?;
            self.expect_ok(op, key, &reply, &url)?;
            items.extend(self.parse::<Vec<T>>(op, key, &reply.body, &url)?);
            match reply.next {
                Some(next) => url = next,
                None => return Ok(items),
            }
        }
    }

    /// Parses a JSON body; a body that does not parse is transient (a proxy's error page).
    pub(super) fn parse<T: DeserializeOwned>(
        &self,
        op: &'static str,
        key: Option<&str>,
        body: &str,
        url: &str,
    ) -> Result<T, AdapterError> {
        serde_json::from_str(body).map_err(|e| {
            AdapterError::transient(
                self.adapter,
                op,
                key,
                format!("`{}` answered JSON kars cannot read: {e}", self.shown(url)),
            )
        })
    }

    /// Fails unless 2xx, with the shared mapping of [`Api::status_error`].
    pub(super) fn expect_ok(
        &self,
        op: &'static str,
        key: Option<&str>,
        reply: &Reply,
        url: &str,
    ) -> Result<(), AdapterError> {
        if (200..300).contains(&reply.status) { Ok(()) } else { Err(self.status_error(op, key, reply, url)) }
    }

    /// The shared mapping of a non-2xx answer: rate limits throttled, 408/5xx transient,
    /// anything else permanent with the forge's message.
    pub(super) fn status_error(&self, op: &'static str, key: Option<&str>, reply: &Reply, url: &str) -> AdapterError {
        let status = reply.status;
        let shown = self.shown(url);
        let message = forge_message(&reply.body);
        if let Some(wait) = reply.rate_limited {
            let detail = format!("`{shown}` is rate limited (HTTP {status}): {message}");
            return AdapterError::throttled(self.adapter, op, key, detail, wait);
        }
        let detail = format!("`{shown}` answered HTTP {status}: {message}");
        match status {
            408 | 500..=599 => AdapterError::transient(self.adapter, op, key, detail),
            401 => AdapterError::permanent(
                self.adapter,
                op,
                key,
                format!("{detail}\nhelp: the forge refused the token; check it and its expiry"),
            ),
            403 | 404 => AdapterError::permanent(
                self.adapter,
                op,
                key,
                format!("{detail}\nhelp: check the repository name, the API URL and the token's permissions"),
            ),
            _ => AdapterError::permanent(self.adapter, op, key, detail),
        }
    }

    /// `url` as shown in errors: its path only when on the API base (no query).
    pub(super) fn shown(&self, url: &str) -> String {
        let url = url.split(['?', '#']).next().unwrap_or_default();
        url.strip_prefix(&self.base).map_or_else(|| url.to_owned(), str::to_owned)
    }

    fn same_origin(&self, url: &str) -> bool {
        url.starts_with(&format!("{}/", self.base)) || url.starts_with(&format!("{}?", self.base))
    }

    fn transport(&self, op: &'static str, key: Option<&str>, url: &str, e: &ureq::Error) -> AdapterError {
        let shown = self.shown(url);
        match e {
            ureq::Error::BadUri(_) => {
                AdapterError::permanent(self.adapter, op, key, format!("`{shown}` is not a valid API URL"))
            }
            ureq::Error::Timeout(_)
            | ureq::Error::Io(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled => {
                AdapterError::transient(self.adapter, op, key, format!("calling `{shown}` failed: {e}"))
            }
            _ => AdapterError::permanent(self.adapter, op, key, format!("calling `{shown}` failed: {e}")),
        }
    }
}

/// Seconds from now until the epoch second `reset` (at least one), if given. The forge names
/// an instant on the wall clock, so this edge reads the system's; nothing deterministic
/// depends on it (the driver schedules the retry on its own clock).
#[allow(clippy::disallowed_methods)]
fn until(reset: Option<u64>) -> Option<Duration> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    reset.map(|r| Duration::from_secs(r.saturating_sub(now).clamp(1, MAX_WAIT_SECONDS)))
}

/// The longest wait a rate limit may ask for (an hour, GitHub's primary window): a larger
/// value is a forge's mistake, and an unbounded one would overflow into an immediate retry.
const MAX_WAIT_SECONDS: u64 = 3600;

/// The `rel="next"` target of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

/// The forge's `message` (and GitHub's `errors[].message`), or a short excerpt of the body.
pub(super) fn forge_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Error {
        #[serde(default)]
        message: Option<serde_json::Value>,
        #[serde(default)]
        errors: Vec<serde_json::Value>,
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match serde_json::from_str::<Error>(body) {
        Ok(e) => {
            let mut parts: Vec<String> = e.message.iter().map(text).collect();
            parts.extend(e.errors.iter().map(|v| v.get("message").map_or_else(|| text(v), text)));
            if parts.is_empty() { "no message".to_owned() } else { parts.join("; ") }
        }
        Err(_) => body.chars().take(120).collect::<String>().trim().to_owned(),
    }
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved characters pass).
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_others() {
        let link = r#"<https://api.github.com/repos/o/r/pulls?page=2>; rel="next", <https://api.github.com/repos/o/r/pulls?page=5>; rel="last""#;
        assert_eq!(next_link(link).as_deref(), Some("https://api.github.com/repos/o/r/pulls?page=2"));
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="prev""#), None);
    }

    #[test]
    fn links_to_other_origins_are_not_followed() {
        let api = Api::new(
            "github",
            "https://ghe.example/api/v3/",
            ForgeToken::new("t", "t").unwrap(),
            Auth::Bearer,
            Duration::from_secs(1),
        );
        assert!(api.same_origin("https://ghe.example/api/v3/repos?page=2"));
        assert!(!api.same_origin("https://ghe.example/api/v3.evil/repos"));
        assert!(!api.same_origin("https://evil.example/api/v3/repos"));
        assert_eq!(api.shown("https://ghe.example/api/v3/repos/o/r?page=2"), "/repos/o/r");
    }

    #[test]
    fn messages_come_from_the_body() {
        let body =
            r#"{"message":"Validation Failed","errors":[{"message":"A pull request already exists for o:kars-dev."}]}"#;
        assert_eq!(forge_message(body), "Validation Failed; A pull request already exists for o:kars-dev.");
        assert_eq!(forge_message(r#"{"message":["405 Method Not Allowed"]}"#), r#"["405 Method Not Allowed"]"#);
        assert_eq!(encode("feature/a b"), "feature%2Fa%20b");
    }
}
