//! `kars serve` stops gracefully (feature `serve`): a write in flight when the shutdown signal
//! comes is finished and answered before the server returns, and it is in the journal; a
//! request past the time limit is answered 503 while its write still completes; and a start
//! past the time limit still hosts its instance (not left unserved until a restart). The store
//! holds a write in its `append` until the test lets it go, so the order is asserted with
//! channels, not timings.
#![cfg(feature = "serve")]

mod serve_support;

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};

use kars::serve::{App, AppParts, SpecSource};
use kars::workflow::driver::{Adapters, ClockMode, VirtualClock};
use kars::workflow::journal::{JournalError, MemoryStore, Store, Stored};
use kars::workflow::service::VirtualTimer;
use kars::workflow::{InstanceId, adapter::RecordingNotifier};
use serde_json::json;
use serve_support::{SPEC, request, token, token_settings};

/// A store whose appends wait while the gate is shut, saying when one is waiting.
#[derive(Clone)]
struct GatedStore {
    inner: Arc<MemoryStore>,
    shut: Arc<(Mutex<bool>, Condvar)>,
    waiting: Arc<Mutex<Option<mpsc::Sender<()>>>>,
}

impl GatedStore {
    fn set(&self, shut: bool) {
        *self.shut.0.lock().unwrap() = shut;
        self.shut.1.notify_all();
    }
}

impl Store for GatedStore {
    fn create(&self, id: &InstanceId, header: &[u8]) -> Result<(), JournalError> {
        self.inner.create(id, header)
    }
    fn append(&self, id: &InstanceId, expected: u64, records: &[&[u8]]) -> Result<u64, JournalError> {
        let mut shut = self.shut.0.lock().unwrap();
        if *shut && let Some(tx) = self.waiting.lock().unwrap().take() {
            tx.send(()).unwrap();
        }
        while *shut {
            shut = self.shut.1.wait(shut).unwrap();
        }
        drop(shut);
        self.inner.append(id, expected, records)
    }
    fn read(&self, id: &InstanceId) -> Result<Stored, JournalError> {
        self.inner.read(id)
    }
    fn list(&self) -> Result<Vec<InstanceId>, JournalError> {
        self.inner.list()
    }
}

type Server = tokio::task::JoinHandle<Result<(), kars::serve::ServeError>>;

/// A server over a gated store with instance `kars` started; its address, the store, the
/// server's task and its stop signal.
async fn gated_server(
    settings: kars::serve::Settings,
) -> (std::net::SocketAddr, GatedStore, Server, tokio::sync::oneshot::Sender<()>) {
    let store = GatedStore {
        inner: Arc::new(MemoryStore::new()),
        shut: Arc::new((Mutex::new(false), Condvar::new())),
        waiting: Arc::new(Mutex::new(None)),
    };
    let clock = Arc::new(VirtualClock::new(serve_support::local("2026-11-23 08:00")));
    let parts = AppParts {
        store: store.clone(),
        clock: clock.clone(),
        timer: Arc::new(VirtualTimer::new(clock)),
        mode: ClockMode::Rehearsal,
        specs: vec![SpecSource { origin: "kars-release.yaml".to_owned(), text: SPEC.to_owned() }],
        settings,
        adapters: Arc::new(|_, _| Adapters::new(RecordingNotifier::new())),
    };
    let app = App::start(parts).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kars::serve::serve(app, listener, async move {
        let _ = stopped.await;
    }));
    let start = json!({ "workflow": "kars-release", "id": "kars" }).to_string();
    assert_eq!(request(addr, "POST", "/api/instances", &auth("frank"), start.as_bytes()).await.status, 201);
    (addr, store, server, stop)
}

/// A JSON write's headers as `person`.
fn auth(person: &str) -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("Bearer {}", token(person))), ("Content-Type", "application/json".to_owned())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_flight_at_shutdown_is_finished_and_journaled() {
    let (addr, store, server, stop) = gated_server(token_settings()).await;
    let id = InstanceId::new("kars").unwrap();
    let before = store.version(&id).unwrap();

    // Erin's act reaches the journal's append and waits there; then the shutdown signal comes.
    let (tx, rx) = mpsc::channel();
    *store.waiting.lock().unwrap() = Some(tx);
    store.set(true);
    let act = tokio::spawn(async move {
        request(addr, "POST", "/api/instances/kars/act", &auth("erin"), br#"{"node":"B"}"#).await
    });
    tokio::task::spawn_blocking(move || rx.recv().unwrap()).await.unwrap();
    stop.send(()).unwrap();
    tokio::task::yield_now().await;
    assert!(!server.is_finished(), "the server returned with a write in flight");

    // Let the write go: it is answered, journaled, and only then does the server return.
    store.set(false);
    let reply = act.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    server.await.unwrap().unwrap();
    assert!(store.version(&id).unwrap() > before, "the write in flight was not journaled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_time_limit_is_answered_503_and_its_write_still_completes() {
    let mut settings = token_settings();
    settings.limits.request_seconds = 1;
    let (addr, store, server, stop) = gated_server(settings).await;
    let (tx, rx) = mpsc::channel();
    *store.waiting.lock().unwrap() = Some(tx);
    store.set(true);
    let act = tokio::spawn(async move {
        request(addr, "POST", "/api/instances/kars/act", &auth("erin"), br#"{"node":"B"}"#).await
    });
    tokio::task::spawn_blocking(move || rx.recv().unwrap()).await.unwrap();
    let reply = act.await.unwrap();
    assert_eq!((reply.status, reply.problem()), (503, "timeout".to_owned()), "{}", reply.body);
    // The write was handed to the journal: it completes, as the problem's detail says.
    store.set(false);
    let mut node = String::new();
    for _ in 0..2000 {
        let status = request(addr, "GET", "/api/instances/kars", &auth("carol"), b"").await.json();
        node = status["node"].as_str().unwrap_or_default().to_owned();
        if node == "C" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(node, "C");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_past_the_time_limit_still_hosts_its_instance() {
    let mut settings = token_settings();
    settings.limits.request_seconds = 1;
    let (addr, store, server, stop) = gated_server(settings).await;
    // The start's first append waits until after the request was answered 503: the handler is
    // dropped, and the journal exists all the same.
    let (tx, rx) = mpsc::channel();
    *store.waiting.lock().unwrap() = Some(tx);
    store.set(true);
    let start = json!({ "workflow": "kars-release", "id": "late" }).to_string();
    let started =
        tokio::spawn(async move { request(addr, "POST", "/api/instances", &auth("frank"), start.as_bytes()).await });
    tokio::task::spawn_blocking(move || rx.recv().unwrap()).await.unwrap();
    let reply = started.await.unwrap();
    assert_eq!((reply.status, reply.problem()), (503, "timeout".to_owned()), "{}", reply.body);
    store.set(false);
    // The instance is served (not only journaled, waiting for a restart), and a second start
    // is told it exists.
    let mut status = 0;
    for _ in 0..2000 {
        status = request(addr, "GET", "/api/instances/late", &auth("carol"), b"").await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(status, 200, "the started instance is not hosted");
    let again = json!({ "workflow": "kars-release", "id": "late" }).to_string();
    let reply = request(addr, "POST", "/api/instances", &auth("frank"), again.as_bytes()).await;
    assert_eq!((reply.status, reply.problem()), (409, "exists".to_owned()), "{}", reply.body);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
