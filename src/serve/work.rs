//! Replicas of `kars serve` on one PostgreSQL store sharing the work (feature `postgres`):
//! each runs one embedded [`Worker`] instead of a loop per real instance, so that a due timer
//! is fired, and an effect performed, by the one replica that claimed the instance under a
//! lease ([`kars_workflow::worker`]: fencing epochs, `FOR UPDATE SKIP LOCKED`, the outbox).
//!
//! People's inputs still go through any replica's API: a write catches up with the store,
//! checks the expected version and appends without a lease; the effects it emits wait in the
//! outbox, and an append's `NOTIFY` wakes every replica's worker, one of which claims the
//! instance and performs them. The worker runs the spec stored in each journal it drives
//! (loaded and compiled once per spec text, shared with the server's own opens) and asks the server's [`AdapterFactory`](super::AdapterFactory) for the adapters. After each
//! instance it drove, the replica's own copy catches up and its live pages are told.
//!
//! Rehearsals keep their loop on every replica that hosts them: no worker drives a clock that
//! is a person's word.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use kars_workflow::driver::{DriverConfig, Journaled};
use kars_workflow::journal::PgStore;
use kars_workflow::worker::{Host, Worked, Worker, WorkerConfig};

use super::{Inner, ServeError, ServeStore, hosted};

/// What a replica needs to take its share of the work on a shared PostgreSQL store: see
/// [`App::start_sharing_work`](super::App::start_sharing_work).
#[derive(Debug, Clone)]
pub struct SharedWork {
    /// The store the worker claims instances on: the server's own (a clone shares its
    /// connections). Its [effect grace](kars_workflow::journal::PgStoreConfig::with_effect_grace)
    /// is how long an effect that the API (or `kars instance act`) emitted waits before a
    /// replica claims it: zero for `kars serve`, whose writes perform nothing themselves.
    pub store: PgStore,
    /// The leases, batches and polling of the worker.
    pub config: WorkerConfig,
}

/// The worker of a running server, on a thread of its own.
pub(crate) struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    replica: String,
}

impl Running {
    /// The replica's id, as the leases name it.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Stops the worker: the instance in hand is finished and released, the rest of its batch
    /// given up at once, so that other replicas take them.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        self.stop.store(true, Ordering::SeqCst);
        let Some(thread) = self.thread.take() else { return Ok(()) };
        match hosted::blocking(move || thread.join()).await {
            Ok(()) => Ok(()),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for Running {
    /// A server dropped without [`App::shutdown`](super::App::shutdown): the worker stops
    /// after the instance in hand, unwaited.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts the worker of the server `inner` on its own thread.
pub(crate) fn start<S: ServeStore>(inner: &Arc<Inner<S>>, work: SharedWork) -> Result<Running, ServeError> {
    let (adapters, programs) = (Arc::clone(&inner.adapters), Arc::clone(&inner.programs));
    let host: Arc<Host> = Arc::new(move |journal: &Journaled| {
        let (_, program) = hosted::stored_program(journal, &programs)?;
        let adapters = adapters(&journal.id, &program);
        Ok((program, adapters, DriverConfig::for_clock(journal.header.clock)))
    });
    let worker = Worker::new(work.store, work.config, Arc::clone(&inner.clock), host);
    let replica = worker.replica().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let (server, runtime, stopped) = (Arc::downgrade(inner), tokio::runtime::Handle::current(), Arc::clone(&stop));
    let poll = work.config.poll;
    let thread = std::thread::Builder::new().name("kars-serve-worker".to_owned()).spawn(move || {
        let drove = |worked: &Worked| refresh(&server, &runtime, worked);
        while !stopped.load(Ordering::SeqCst) {
            // Fails only when listening for hints cannot start (the database away): tried
            // again after a poll, as a replica outlives an outage.
            if worker.run_with(&stopped, &drove).is_ok() {
                break;
            }
            let mut waited = Duration::ZERO;
            while waited < poll && !stopped.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                waited += Duration::from_millis(50);
            }
        }
    })?;
    Ok(Running { stop, thread: Some(thread), replica })
}

/// After the worker drove an instance: this server's copy of it catches up with the writes,
/// and its live pages are told.
fn refresh<S: ServeStore>(server: &Weak<Inner<S>>, runtime: &tokio::runtime::Handle, worked: &Worked) {
    let Some(inner) = server.upgrade() else { return };
    let id = worked.instance.clone();
    runtime.spawn(async move {
        let Some(hosted) = inner.instances.read().await.get(id.as_str()).cloned() else { return };
        // A failed catch-up is tried again by the next request on the instance.
        let caught = hosted.handle.with(|d| d.catch_up().ok().filter(|moved| *moved).map(|_| d.version())).await;
        if let Some(version) = caught {
            hosted.announce(version);
        }
    });
}
