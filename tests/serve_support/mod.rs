//! A `kars serve` on an ephemeral port for the API, webhook and browser tests: the KARS
//! release spec, a file journal in a temporary directory, a virtual clock that moves only when
//! a test says so, one API token per roster person, and a small HTTP/1.1 client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use kars::serve::{AdapterFactory, App, AppParts, Settings, SpecSource};
use kars::workflow::adapter::RecordingNotifier;
use kars::workflow::driver::{Adapters, ClockMode, Operation, OperationsFn, VirtualClock};
use kars::workflow::journal::{FileStore, Store};
use kars::workflow::service::VirtualTimer;
use kars::workflow::{ActionOutcome, InstanceId};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const SPEC: &str = include_str!("../../workflows/kars-release.yaml");
pub const PEOPLE: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank"];

/// The token of `person` (tests only: a real one comes from `kars serve new-token`).
pub fn token(person: &str) -> String {
    format!("test-token-of-{person}-0123456789abcdef")
}

/// A local Toronto time (`2026-11-23 09:00`) as UTC.
pub fn local(s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    kars::spec::calendar::resolve_local(chrono_tz::America::Toronto, naive)
}

/// Settings with a token for every person on the roster and for `mallory`, who is not on it.
pub fn token_settings() -> Settings {
    let mut settings = Settings::default();
    for person in PEOPLE.iter().chain(&["mallory"]) {
        settings = settings.with_token_hash(person.parse().unwrap(), &kars::serve::hash_token(&token(person))).unwrap();
    }
    settings
}

/// Actions whose spec names who reports them (deploys, checks, rollbacks) wait for a person
/// or a webhook; merges, pull requests succeed at once.
pub fn adapters() -> AdapterFactory {
    Arc::new(|_, _| {
        Adapters::new(RecordingNotifier::new()).with_operations(OperationsFn(|op: &Operation| {
            Ok(match op.node.as_str() {
                "H" | "Y" | "AB" | "AD" => None,
                _ => Some(ActionOutcome::Succeeded),
            })
        }))
    })
}

/// Who a request says it is.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    /// No credentials.
    Nobody,
    /// `Authorization: Bearer` with the person's token.
    Token(&'a str),
    /// A raw bearer token.
    RawToken(&'a str),
    /// `X-Forwarded-User`.
    Proxy(&'a str),
}

/// A response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// The problem's kind, without `urn:kars:problem:`.
    pub fn problem(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.body);
        self.json()["type"].as_str().unwrap().trim_start_matches("urn:kars:problem:").to_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Reply { status, headers, body }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A server on an ephemeral port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub timer: VirtualTimer,
    pub clock: Arc<VirtualClock>,
    pub dir: tempfile::TempDir,
    pub app: App<Arc<FileStore>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), kars::serve::ServeError>>>,
}

impl TestServer {
    /// Starts a server at Monday 2026-11-23 08:00 Toronto.
    pub async fn start(settings: Settings) -> Self {
        Self::start_at(settings, local("2026-11-23 08:00"), tempfile::tempdir().unwrap()).await
    }

    /// Starts a server at `at` over the journals in `dir`.
    pub async fn start_at(settings: Settings, at: DateTime<Utc>, dir: tempfile::TempDir) -> Self {
        Self::start_spec(settings, at, dir, SPEC.to_owned()).await
    }

    /// Starts a server at `at` over the journals in `dir`, hosting `spec` (a KARS variant).
    pub async fn start_spec(settings: Settings, at: DateTime<Utc>, dir: tempfile::TempDir, spec: String) -> Self {
        Self::start_with(settings, at, dir, spec, adapters()).await
    }

    /// Starts a server at `at` over the journals in `dir`, hosting `spec` with `adapters`.
    pub async fn start_with(
        settings: Settings,
        at: DateTime<Utc>,
        dir: tempfile::TempDir,
        spec: String,
        adapters: AdapterFactory,
    ) -> Self {
        let clock = Arc::new(VirtualClock::new(at));
        let timer = VirtualTimer::new(Arc::clone(&clock));
        let parts = AppParts {
            store: Arc::new(FileStore::create_dir(dir.path()).unwrap()),
            clock: clock.clone(),
            timer: Arc::new(timer.clone()),
            mode: ClockMode::Rehearsal,
            specs: vec![SpecSource { origin: "kars-release.yaml".to_owned(), text: spec }],
            settings,
            adapters,
        };
        let app = App::start(parts).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(kars::serve::serve(app.clone(), listener, async move {
            let _ = stopped.await;
        }));
        Self { addr, timer, clock, dir, app, stop: Some(stop), task: Some(task) }
    }

    /// Stops the server gracefully; returns the journal directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        self.dir
    }

    /// Moves the clock to a local Toronto time, then waits until every hosted instance's loop
    /// has run the timers due by then and their effects.
    pub async fn advance_to(&self, at: &str) {
        let at = local(at);
        self.timer.advance_to(at);
        let list = self.get(Who::Token("carol"), "/api/instances").await.json();
        for instance in list["instances"].as_array().unwrap() {
            let id = instance["id"].as_str().unwrap();
            for attempt in 0..2000 {
                let s = self.status(id).await;
                let due = s["next_timer"].as_str().is_some_and(|t| t.parse::<DateTime<Utc>>().unwrap() <= at);
                if !due && s["pending_effects"] == 0 && s["effects_in_flight"] == 0 {
                    break;
                }
                assert!(attempt < 1999, "instance `{id}` did not settle at {at}: {s}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }

    /// The instance's version as the journal on disk says (read with a fresh store).
    pub fn journal_version(&self, id: &str) -> u64 {
        let store = FileStore::open_read_only(self.dir.path()).unwrap();
        store.version(&InstanceId::new(id).unwrap()).unwrap()
    }

    fn auth(who: Who<'_>) -> Vec<(&'static str, String)> {
        match who {
            Who::Nobody => Vec::new(),
            Who::Token(p) => vec![("Authorization", format!("Bearer {}", token(p)))],
            Who::RawToken(t) => vec![("Authorization", format!("Bearer {t}"))],
            Who::Proxy(login) => vec![("X-Forwarded-User", login.to_owned())],
        }
    }

    pub async fn get(&self, who: Who<'_>, path: &str) -> Reply {
        request(self.addr, "GET", path, &Self::auth(who), b"").await
    }

    pub async fn post(&self, who: Who<'_>, path: &str, body: &Value) -> Reply {
        self.post_with(who, path, body, &[]).await
    }

    pub async fn post_with(&self, who: Who<'_>, path: &str, body: &Value, extra: &[(&'static str, String)]) -> Reply {
        let mut headers = Self::auth(who);
        headers.push(("Content-Type", "application/json".to_owned()));
        headers.extend(extra.iter().cloned());
        request(self.addr, "POST", path, &headers, body.to_string().as_bytes()).await
    }

    /// Starts instance `id` as frank (the team lead).
    pub async fn start_instance(&self, id: &str) -> Value {
        let reply = self
            .post(Who::Token("frank"), "/api/instances", &serde_json::json!({ "workflow": "kars-release", "id": id }))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.json()
    }

    pub async fn status(&self, id: &str) -> Value {
        let reply = self.get(Who::Token("carol"), &format!("/api/instances/{id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }

    /// Acts as `person`.
    pub async fn act(&self, person: &str, id: &str, node: &str, outcome: Option<&str>) -> Reply {
        let body = serde_json::json!({ "node": node, "outcome": outcome });
        self.post(Who::Token(person), &format!("/api/instances/{id}/act"), &body).await
    }

    /// Acts as `person` and asserts it was accepted.
    pub async fn accepted(&self, person: &str, id: &str, node: &str, outcome: Option<&str>) -> Value {
        let reply = self.act(person, id, node, outcome).await;
        assert_eq!(reply.status, 200, "{person} on {node}: {}", reply.body);
        reply.json()
    }

    /// Waits (on real time, 20 s at most) until the instance is at `node` with no effect left
    /// to perform: effects and timers run in the background loop.
    pub async fn until_at(&self, id: &str, node: &str) -> Value {
        for _ in 0..2000 {
            let status = self.status(id).await;
            if status["node"] == node && status["pending_effects"] == 0 && status["effects_in_flight"] == 0 {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("instance `{id}` never reached `{node}`: {}", self.status(id).await);
    }
}
