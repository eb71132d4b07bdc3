//! A fake forge for tests: a local HTTP server (axum on its own tokio thread) that implements
//! the documented subset of GitHub's (and GitLab's) REST API with their status codes, bodies
//! and headers, and plays failure plans: `mergeable: null` reads, rate limits with
//! `Retry-After`, answers lost after the work was done (the client times out), heads that move
//! just before a merge, 5xx.

#![allow(dead_code)]

pub mod github;
pub mod gitlab;
pub mod week;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};

/// The token the fake accepts.
pub const TOKEN: &str = "fake-forge-token-s3cret";

/// How long a "lost" answer is held back: longer than the adapters' test timeout.
pub const LOST: Duration = Duration::from_millis(1500);
/// The adapters' request timeout in these tests.
pub const TIMEOUT: Duration = Duration::from_millis(500);

/// A failure the fake plays on the next request of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 403 with `Retry-After` and GitHub's secondary-rate-limit message (GitLab: 429).
    SecondaryRateLimit { retry_after: u64 },
    /// 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` this many seconds ahead.
    PrimaryRateLimit { reset_in: u64 },
    /// 502 Bad Gateway.
    ServerError,
    /// The work is done, then the answer comes too late: the client times out.
    LoseAnswer,
    /// The work is done, then the connection is cut in the middle of the answer.
    DropAnswer,
    /// Before the request is handled, the pull request's head branch gets a new commit.
    MoveHead,
}

/// A request the fake saw: method, path (without query) and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorized: bool,
}

/// What the routes of one forge flavour answer.
pub trait Flavour: Send + 'static {
    /// The route name of a request (`merge`, `list_pulls`), for fault plans.
    fn route(&self, method: &Method, path: &str) -> &'static str;
    /// The status of a rate-limited answer (GitHub: 403; GitLab: 429).
    fn rate_limit_status(&self) -> u16 {
        403
    }
    /// Moves the head of the pull request a request is about.
    fn move_head(&mut self, path: &str);
    /// Answers a request; `base` is the server's URL, for `Link` headers.
    fn answer(&mut self, base: &str, method: &Method, path: &str, query: &[(String, String)], body: &[u8]) -> Answer;
}

/// An answer before faults apply.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

impl Answer {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self { status, headers: Vec::new(), body }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

pub struct Shared<F> {
    pub forge: F,
    pub faults: VecDeque<(&'static str, Fault)>,
    pub seen: Vec<Seen>,
    pub base: String,
    pub auth_header: (&'static str, String),
}

/// A running fake forge.
pub struct FakeForge<F: Flavour> {
    shared: Arc<Mutex<Shared<F>>>,
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<F: Flavour> FakeForge<F> {
    /// Serves `forge` on 127.0.0.1, with the API root at `prefix` (`/api/v3`).
    pub fn start(forge: F, prefix: &str, auth_header: (&'static str, String)) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}{prefix}", listener.local_addr().unwrap());
        let shared = Arc::new(Mutex::new(Shared {
            forge,
            faults: VecDeque::new(),
            seen: Vec::new(),
            base: url.clone(),
            auth_header,
        }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::clone(&shared);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(handle::<F>).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Self { shared, url, stop: Some(stop) }
    }

    /// The API root.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Plays `fault` on the next request of `route`.
    pub fn fault(&self, route: &'static str, fault: Fault) {
        lock(&self.shared).faults.push_back((route, fault));
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared).seen.clone()
    }

    /// Requests of `route` so far.
    pub fn count(&self, route: &str) -> usize {
        let shared = lock(&self.shared);
        shared.seen.iter().filter(|s| shared.forge.route(&s.method.parse().unwrap(), &s.path) == route).count()
    }

    /// A probe of the forge's state that outlives this borrow (for stores that crash on cue).
    pub fn watch<R>(&self, f: impl Fn(&F) -> R + Send + Sync + 'static) -> impl Fn() -> R + Send + Sync + 'static {
        let shared = Arc::clone(&self.shared);
        move || f(&lock(&shared).forge)
    }

    /// Runs `f` on the forge's state.
    pub fn with<R>(&self, f: impl FnOnce(&mut F) -> R) -> R {
        f(&mut lock(&self.shared).forge)
    }
}

impl<F: Flavour> Drop for FakeForge<F> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}

async fn handle<F: Flavour>(
    State(shared): State<Arc<Mutex<Shared<F>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let raw_path = uri.path().to_owned();
    let query_text = uri.query().unwrap_or_default().to_owned();
    let query: Vec<(String, String)> = query_text
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    let (answer, lose, cut) = {
        let mut shared = lock(&shared);
        let base = shared.base.clone();
        let prefix = base.split_once("//").map_or("", |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
        let path = raw_path.strip_prefix(&format!("/{prefix}")).unwrap_or(&raw_path).to_owned();
        let (name, expected) = shared.auth_header.clone();
        let authorized = headers.get(name).and_then(|v| v.to_str().ok()) == Some(expected.as_str());
        shared.seen.push(Seen { method: method.to_string(), path: path.clone(), query: query_text, authorized });
        let route = shared.forge.route(&method, &path);
        let fault = shared.faults.iter().position(|(r, _)| *r == route).and_then(|i| shared.faults.remove(i));
        let mut lose = false;
        let mut cut = false;
        let answer = match fault.map(|(_, f)| f) {
            _ if !authorized => Answer::json(401, serde_json::json!({ "message": "Bad credentials" })),
            Some(Fault::SecondaryRateLimit { retry_after }) => Answer::json(
                shared.forge.rate_limit_status(),
                serde_json::json!({ "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again." }),
            )
            .with_header("retry-after", retry_after.to_string()),
            Some(Fault::PrimaryRateLimit { reset_in }) => {
                #[allow(clippy::disallowed_methods)] // GitHub's reset is a wall-clock instant.
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                Answer::json(403, serde_json::json!({ "message": "API rate limit exceeded for user ID 1." }))
                    .with_header("x-ratelimit-remaining", "0")
                    .with_header("x-ratelimit-reset", (now + reset_in).to_string())
            }
            Some(Fault::ServerError) => Answer::json(502, serde_json::json!({ "message": "Server Error" })),
            Some(Fault::DropAnswer) => {
                cut = true;
                shared.forge.answer(&base, &method, &path, &query, &body)
            }
            Some(Fault::LoseAnswer) => {
                lose = true;
                shared.forge.answer(&base, &method, &path, &query, &body)
            }
            Some(Fault::MoveHead) => {
                shared.forge.move_head(&path);
                shared.forge.answer(&base, &method, &path, &query, &body)
            }
            None => shared.forge.answer(&base, &method, &path, &query, &body),
        };
        (answer, lose, cut)
    };
    if lose {
        tokio::time::sleep(LOST).await;
    }
    let mut response = Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap())
        .header("content-type", "application/json");
    for (name, value) in &answer.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    let text = answer.body.to_string();
    if cut {
        // Half the answer, then the body fails: the server aborts the connection mid-answer.
        let half = text.as_bytes()[..text.len() / 2].to_vec();
        let parts: Vec<Result<Vec<u8>, std::io::Error>> =
            vec![Ok(half), Err(std::io::Error::other("the fake forge cuts the connection"))];
        return response.body(Body::from_stream(futures_util::stream::iter(parts))).unwrap();
    }
    response.body(Body::from(text)).unwrap()
}

/// One page of `items` (`page` from 1) and the `Link` header for the others.
pub fn paginate(
    base: &str,
    path: &str,
    query: &[(String, String)],
    items: Vec<serde_json::Value>,
    cap: usize,
) -> Answer {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let per_page = get("per_page").and_then(|v| v.parse().ok()).unwrap_or(30usize).min(cap).max(1);
    let page = get("page").and_then(|v| v.parse().ok()).unwrap_or(1usize).max(1);
    let pages = items.len().div_ceil(per_page).max(1);
    let shown: Vec<_> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut answer = Answer::json(200, serde_json::Value::Array(shown));
    let link_to = |p: usize| {
        let mut q: Vec<String> = query
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| {
                format!("{k}={}", percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC))
            })
            .collect();
        q.push(format!("page={p}"));
        format!("{base}{path}?{}", q.join("&"))
    };
    let mut links = Vec::new();
    if page < pages {
        links.push(format!("<{}>; rel=\"next\"", link_to(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", link_to(pages)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", link_to(page - 1)));
    }
    if !links.is_empty() {
        answer = answer.with_header("link", links.join(", "));
    }
    answer
}
