//! One hosted instance: its service handle, its spec (for drawing), and a signal that it
//! changed (for live pages); opening an instance from the store and creating a new one.

use std::sync::Arc;

use kars_spec::CheckedSpec;
use kars_workflow::InstanceId;
use kars_workflow::driver::{
    Driver, DriverConfig, DriverError, Journaled, Parts, Program, SpecText, Start, read_journal,
};
use kars_workflow::service::Handle;
use tokio::sync::watch;

use super::{App, Inner, ServeStore, SharedClock, Workflow};
use kars_workflow::driver::ClockMode;

/// A driver and the spec it was opened with.
pub(crate) type Opened<S> = (Driver<S, SharedClock>, Arc<CheckedSpec>);

/// A hosted instance.
pub(crate) struct Hosted<S: ServeStore> {
    pub handle: Handle<S, SharedClock>,
    pub spec: Arc<CheckedSpec>,
    /// The journal version after the latest write made through this server.
    pub changed: watch::Sender<u64>,
}

impl<S: ServeStore> Hosted<S> {
    pub fn new(handle: Handle<S, SharedClock>, spec: Arc<CheckedSpec>) -> Self {
        Self { handle, spec, changed: watch::Sender::new(0) }
    }

    /// Tells live pages that the instance is at `version`.
    pub fn announce(&self, version: u64) {
        self.changed.send_replace(version);
    }
}

fn parts<S: ServeStore>(
    inner: &Inner<S>,
    id: &InstanceId,
    program: &Program,
    mode: ClockMode,
) -> Parts<S, SharedClock> {
    Parts {
        store: inner.store.clone(),
        clock: Arc::clone(&inner.clock),
        adapters: (inner.adapters)(id, program),
        config: DriverConfig::for_clock(mode),
    }
}

/// Runs `f` on the blocking pool (journals fsync); a panic in `f` resumes here.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: the runtime is shutting down, and this task with it.
        Err(_) => std::future::pending().await,
    }
}

/// Opens instance `id` of the store with the spec stored in its journal.
pub(crate) async fn open<S: ServeStore>(app: &App<S>, id: InstanceId) -> Result<Opened<S>, DriverError> {
    let inner = Arc::clone(&app.inner);
    blocking(move || {
        let journal: Journaled = read_journal(&inner.store, &id)?;
        let (spec, program) = stored_program(&journal, &inner.programs)?;
        let mode = journal.header.clock;
        let driver = Driver::open_read(parts(&inner, &id, &program, mode), &program, journal)?;
        Ok((driver, spec))
    })
    .await
}

/// The spec a journal holds, compiled: the newest an upgrade moved the instance to (the one it
/// started with if none).
pub(crate) fn stored_program(
    journal: &Journaled,
    programs: &Programs,
) -> Result<(Arc<CheckedSpec>, Program), DriverError> {
    let id = &journal.id;
    let Some(stored) = journal.newest_spec_text() else {
        return Err(DriverError::BadHeader {
            id: id.clone(),
            detail: "the journal holds no spec; `kars serve` hosts instances it or `kars instance start` started"
                .to_owned(),
        });
    };
    programs.get_or_make(&stored.origin, &stored.text, || {
        let spec = kars_spec::load(&stored.text, &stored.origin)
            .map_err(|r| DriverError::BadHeader { id: id.clone(), detail: r.to_string() })?;
        let program =
            Program::new(&spec).map_err(|e| DriverError::BadHeader { id: id.clone(), detail: e.to_string() })?;
        Ok((Arc::new(spec), program))
    })
}

/// The compiled specs of a server, by their text.
pub(crate) type Programs = kars_workflow::driver::SpecCache<(Arc<CheckedSpec>, Program)>;

/// Creates instance `id` of `flow` with the spec's team as its roster.
pub(crate) async fn create<S: ServeStore>(
    app: &App<S>,
    flow: &Workflow,
    id: InstanceId,
) -> Result<Opened<S>, DriverError> {
    let inner = Arc::clone(&app.inner);
    let (program, spec) = (flow.program.clone(), Arc::clone(&flow.spec));
    let text = SpecText { origin: flow.source.origin.clone(), text: flow.source.text.clone() };
    blocking(move || {
        let start = Start { spec: Some(text), clock: inner.mode, roster: None };
        let (driver, _) = Driver::create_with(parts(&inner, &id, &program, inner.mode), &program, &id, start)?;
        Ok((driver, spec))
    })
    .await
}
