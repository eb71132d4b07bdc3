//! `WebhookNotifier`: posts Slack-compatible JSON to an incoming-webhook URL (feature `webhook`).

use std::time::Duration;

use super::{AdapterError, Audience, Notification, Notifier};

const ADAPTER: &str = "webhook";
const OP: &str = "notify";

/// A [`Notifier`] that POSTs `{"text": message, "channel": "#channel"}` (Slack's incoming
/// webhook format, also read by Mattermost and Rocket.Chat) to a URL.
///
/// A role is sent as `{"text": "@role: message"}` without a channel. Every request carries the
/// idempotency key as an `Idempotency-Key` header, so a receiver that honours it drops
/// duplicates. Timeouts, connection failures, 408, 429 and 5xx answers are transient; other
/// answers outside 2xx are permanent. Redirects are not followed. Errors name the URL's host
/// only: a webhook URL's path usually holds its secret.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    url: String,
    agent: ureq::Agent,
}

impl WebhookNotifier {
    /// The default timeout of a whole request: 10 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A notifier posting to `url` with the default timeout.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_timeout(url, Self::DEFAULT_TIMEOUT)
    }

    /// A notifier posting to `url`, giving up on a request after `timeout`.
    #[must_use]
    pub fn with_timeout(url: impl Into<String>, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("kars/", env!("CARGO_PKG_VERSION")))
            .build();
        Self { url: url.into(), agent: config.into() }
    }

    /// The URL notifications go to.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// `url` without its path, query and user info, which may hold the webhook's secret token
/// (`https://hooks.slack.com/services/T0/B0/secret` becomes `https://hooks.slack.com/…`).
fn redacted(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if scheme.is_empty() { format!("{host}/…") } else { format!("{scheme}://{host}/…") }
}

/// The JSON body for `n`.
fn body(n: &Notification) -> serde_json::Value {
    match &n.to {
        Audience::Channel(channel) => serde_json::json!({ "text": n.message, "channel": channel }),
        Audience::Role(role) => serde_json::json!({ "text": format!("@{role}: {}", n.message) }),
    }
}

impl Notifier for WebhookNotifier {
    fn notify(&self, n: &Notification) -> Result<(), AdapterError> {
        let key = Some(n.key.as_str());
        if n.key.is_empty() || !n.key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            let detail = "the idempotency key must be printable ASCII to travel in the `Idempotency-Key` header";
            return Err(AdapterError::permanent(ADAPTER, OP, key, detail));
        }
        let body = body(n).to_string();
        let sent = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", &n.key)
            .send(body.as_str());
        let url = redacted(&self.url);
        let response = sent.map_err(|e| classify(key, &url, e))?;
        let status = response.status().as_u16();
        match status {
            200..=299 => Ok(()),
            408 | 429 | 500..=599 => {
                Err(AdapterError::transient(ADAPTER, OP, key, format!("`{url}` answered HTTP {status}")))
            }
            _ => Err(AdapterError::permanent(
                ADAPTER,
                OP,
                key,
                format!("`{url}` answered HTTP {status}\nhelp: check the webhook URL and its permissions"),
            )),
        }
    }
}

/// A transport error: network trouble is transient, a bad URL or TLS setup permanent.
fn classify(key: Option<&str>, url: &str, e: ureq::Error) -> AdapterError {
    let detail = match &e {
        // The message would repeat the whole URL, secret included.
        ureq::Error::BadUri(_) => format!("`{url}` is not a valid URL"),
        _ => format!("posting to `{url}` failed: {e}"),
    };
    match e {
        ureq::Error::Timeout(_)
        | ureq::Error::Io(_)
        | ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::Protocol(_)
        | ureq::Error::BodyStalled => AdapterError::transient(ADAPTER, OP, key, detail),
        _ => AdapterError::permanent(ADAPTER, OP, key, detail),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::thread::JoinHandle;

    use super::*;

    /// A request as the test server saw it.
    #[derive(Debug)]
    struct Seen {
        request_line: String,
        headers: Vec<(String, String)>,
        body: serde_json::Value,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
    }

    /// Serves one request on 127.0.0.1, answering with `status`, and returns what it received.
    fn serve_once(status: u16) -> (String, JoinHandle<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/kars", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            let len: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let mut stream = reader.into_inner();
            write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").unwrap();
            stream.flush().unwrap();
            Seen {
                request_line: request_line.trim_end().to_owned(),
                headers,
                body: serde_json::from_slice(&body).unwrap(),
            }
        });
        (url, handle)
    }

    fn note(key: &str, to: Audience) -> Notification {
        Notification { key: key.into(), to, message: "2026-W48 is approved".into() }
    }

    #[test]
    fn posts_slack_json_with_the_idempotency_key() {
        let (url, server) = serve_once(200);
        WebhookNotifier::new(&url)
            .notify(&note("kars/2026-W48/S", Audience::Channel("#kars-releases".into())))
            .unwrap();
        let seen = server.join().unwrap();
        assert_eq!(seen.request_line, "POST /hooks/kars HTTP/1.1");
        assert_eq!(seen.header("Idempotency-Key"), Some("kars/2026-W48/S"));
        assert_eq!(seen.header("Content-Type"), Some("application/json"));
        assert_eq!(seen.body, serde_json::json!({ "text": "2026-W48 is approved", "channel": "#kars-releases" }));
    }

    #[test]
    fn a_role_is_named_in_the_text() {
        let (url, server) = serve_once(204);
        WebhookNotifier::new(&url).notify(&note("k", Audience::Role("devops".into()))).unwrap();
        assert_eq!(server.join().unwrap().body, serde_json::json!({ "text": "@devops: 2026-W48 is approved" }));
    }

    #[test]
    fn server_errors_are_transient_and_client_errors_permanent() {
        for (status, transient) in [(500, true), (503, true), (429, true), (400, false), (404, false)] {
            let (url, server) = serve_once(status);
            let err = WebhookNotifier::new(&url).notify(&note("k", Audience::Channel("#c".into()))).unwrap_err();
            assert_eq!(err.is_transient(), transient, "HTTP {status}: {err}");
            assert!(err.to_string().contains(&format!("answered HTTP {status}")), "{err}");
            server.join().unwrap();
        }
    }

    #[test]
    fn network_failures_are_transient() {
        // A port nobody listens on: the connection is refused.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let err = WebhookNotifier::new(format!("http://127.0.0.1:{port}/"))
            .notify(&note("k", Audience::Channel("#c".into())));
        assert!(err.unwrap_err().is_transient());
        // A server that accepts and never answers: the request times out.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let notifier = WebhookNotifier::with_timeout(url, Duration::from_millis(200));
        let err = notifier.notify(&note("k", Audience::Channel("#c".into()))).unwrap_err();
        assert!(err.is_transient(), "{err}");
        drop(listener);
    }

    #[test]
    fn errors_do_not_reveal_the_secret_path() {
        assert_eq!(redacted("https://hooks.slack.com/services/T0/B0/secret"), "https://hooks.slack.com/…");
        assert_eq!(redacted("http://user:pw@127.0.0.1:8080/x?token=1"), "http://127.0.0.1:8080/…");
        let (url, server) = serve_once(403);
        let err = WebhookNotifier::new(format!("{url}/secret-token")).notify(&note("k", Audience::Role("qa".into())));
        let err = err.unwrap_err().to_string();
        assert!(!err.contains("secret-token") && err.contains("answered HTTP 403"), "{err}");
        server.join().unwrap();
    }

    #[test]
    fn keys_that_cannot_be_a_header_are_refused() {
        let err =
            WebhookNotifier::new("http://127.0.0.1:9/").notify(&note("a\nb", Audience::Role("qa".into()))).unwrap_err();
        assert!(!err.is_transient());
        assert!(err.to_string().contains("`Idempotency-Key` header"), "{err}");
        let err = WebhookNotifier::new("not a url").notify(&note("k", Audience::Role("qa".into()))).unwrap_err();
        assert!(!err.is_transient(), "{err}");
    }
}
