//! `kars serve` as a library (the `serve` feature): an HTTP service on axum and tokio holding
//! every instance of a store, each in its own [`Service`] loop (timers on the clock, effects in
//! the background), with a JSON API, signed webhooks in, a live page, health, readiness and
//! Prometheus metrics. The reference embedding: a Rust service that hosts kars copies this.
//!
//! - Identity never comes from a request body: an API token (the config holds its SHA-256), or
//!   the headers of a single-sign-on proxy trusted by address ([`auth`]); the page signs in to
//!   an HttpOnly, SameSite=Strict session cookie and posts forms with a CSRF token.
//! - Every write names the person acting; the engine decides, and a refusal is a problem
//!   document ([`problem`]) carrying the engine's reason; a refusal writes nothing.
//! - Generic over the [`Store`]: a journal directory, or PostgreSQL shared by several replicas
//!   ([`Sharing::Shared`]: each request catches up with what other replicas wrote). Replicas
//!   started with [`App::start_sharing_work`] (feature `postgres`) share the timers and
//!   effects of real instances through leases instead of each running every instance's loop.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use kars::serve::{App, AppParts, Settings};
//! use kars::workflow::driver::{ClockMode, SystemClock};
//! use kars::workflow::journal::FileStore;
//! use kars::workflow::service::SystemTimer;
//! let text = std::fs::read_to_string("workflows/kars-release.yaml")?;
//! let parts = AppParts {
//!     store: Arc::new(FileStore::create_dir("journal")?),
//!     clock: Arc::new(SystemClock),
//!     timer: Arc::new(SystemTimer),
//!     mode: ClockMode::System,
//!     specs: vec![kars::serve::SpecSource { origin: "kars-release.yaml".into(), text }],
//!     settings: Settings::default(),
//!     adapters: kars::serve::console_adapters(),
//! };
//! let app = App::start(parts).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! kars::serve::serve(app, listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod config;
pub mod github_hook;
pub mod openapi;
pub mod problem;
pub mod webhook;

mod api;
mod hosted;
mod layers;
mod metrics;
mod page;
mod query;
mod status;
#[cfg(feature = "postgres")]
mod work;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kars_spec::CheckedSpec;
use kars_workflow::InstanceId;
use kars_workflow::adapter::ConsoleNotifier;
use kars_workflow::driver::{Adapters, Clock, ClockMode, DriverError, Program};
use kars_workflow::journal::{JournalError, Store};
use kars_workflow::service::{Service, Sleep, Timer};
use tokio::sync::{RwLock, watch};
use tokio::task::JoinSet;

pub use auth::{Principal, hash_token, new_token};
pub use config::{ConfigError, ConfigFile, Limits, Scheme, Sender, Settings, Sharing};
pub use problem::Problem;
#[cfg(feature = "postgres")]
pub use work::SharedWork;

use hosted::Hosted;

/// The clock every instance of a server runs on.
pub type SharedClock = Arc<dyn Clock + Send + Sync>;

/// Makes the adapters of an instance (notifier, VCS, operations).
pub type AdapterFactory = Arc<dyn Fn(&InstanceId, &Program) -> Adapters + Send + Sync>;

/// Adapters that print notifications to standard output and leave waiting actions (merges,
/// deploys, checks) to people and webhooks, who report their results through the API.
#[must_use]
pub fn console_adapters() -> AdapterFactory {
    Arc::new(|_, _| Adapters::new(ConsoleNotifier::new(std::io::stdout())))
}

/// A spec the server may start instances of.
#[derive(Debug, Clone)]
pub struct SpecSource {
    /// Where it came from (shown in messages; stored in the journal).
    pub origin: String,
    /// Its YAML text.
    pub text: String,
}

/// What a server is made of.
pub struct AppParts<S> {
    /// Where journals live.
    pub store: S,
    /// The time: [`kars_workflow::driver::SystemClock`] for real instances.
    pub clock: SharedClock,
    /// How loops wait for instants of `clock`.
    pub timer: Arc<dyn Timer>,
    /// Whether instances started here are real ([`ClockMode::System`]) or rehearsals.
    pub mode: ClockMode,
    /// The specs that `POST /api/instances` may start (by workflow name).
    pub specs: Vec<SpecSource>,
    /// What the server trusts.
    pub settings: Settings,
    /// The adapters of each instance.
    pub adapters: AdapterFactory,
}

/// Why a server cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A spec given is invalid.
    #[error("{0}")]
    Spec(String),
    /// Two specs name the same workflow.
    #[error("two specs name workflow `{name}`\nhelp: give each workflow once")]
    DuplicateWorkflow {
        /// The workflow.
        name: String,
    },
    /// An instance in the store cannot be opened.
    #[error("instance `{id}` cannot be opened: {source}")]
    Open {
        /// The instance.
        id: InstanceId,
        /// Why.
        source: DriverError,
    },
    /// The store cannot be listed.
    #[error("{0}")]
    Journal(#[from] JournalError),
    /// The listener failed.
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
    /// An instance's loop stopped on an error.
    #[error("{0}")]
    Loop(DriverError),
}

/// A spec, checked and compiled.
pub(crate) struct Workflow {
    pub source: SpecSource,
    pub spec: Arc<CheckedSpec>,
    pub program: Program,
}

pub(crate) struct Inner<S: ServeStore> {
    pub store: S,
    pub clock: SharedClock,
    timer: Arc<dyn Timer>,
    pub mode: ClockMode,
    pub workflows: BTreeMap<String, Workflow>,
    pub settings: Settings,
    adapters: AdapterFactory,
    /// Whether an embedded worker fires the timers and performs the effects of real instances
    /// (none of their loops runs here); rehearsals keep their loop.
    shares_work: bool,
    /// That worker, while it runs.
    #[cfg(feature = "postgres")]
    work: std::sync::Mutex<Option<work::Running>>,
    pub instances: RwLock<BTreeMap<InstanceId, Arc<Hosted<S>>>>,
    loops: tokio::sync::Mutex<JoinSet<Result<(), DriverError>>>,
    stop: watch::Sender<bool>,
    /// Set when the listener stops accepting: live-update streams end.
    pub closing: watch::Sender<bool>,
    /// Held while an instance is created, so two starts of one id cannot race.
    pub starting: tokio::sync::Mutex<()>,
    pub ready: AtomicBool,
    pub metrics: metrics::Metrics,
    pub sessions: auth::Sessions,
    pub replays: webhook::Replays,
    /// The specs stored in journals, loaded and compiled once each (by their text).
    pub programs: Arc<kars_workflow::driver::SpecCache<(Arc<kars_spec::CheckedSpec>, Program)>>,
}

/// A running server's state: cheap to clone into handlers.
pub struct App<S: ServeStore> {
    inner: Arc<Inner<S>>,
}

impl<S: ServeStore> Clone for App<S> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<S: ServeStore> std::fmt::Debug for App<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

/// A [`Timer`] shared by every loop.
struct SharedTimer(Arc<dyn Timer>);

impl Timer for SharedTimer {
    fn sleep_until(&self, at: chrono::DateTime<chrono::Utc>) -> Sleep {
        self.0.sleep_until(at)
    }
}

/// The bounds a server's store meets.
pub trait ServeStore: Store + Clone + Send + Sync + 'static {}
impl<T: Store + Clone + Send + Sync + 'static> ServeStore for T {}

impl<S: ServeStore> App<S> {
    /// Compiles the specs, opens every instance in the store and starts its loop.
    ///
    /// # Errors
    /// [`ServeError`]: an invalid spec, an instance that does not open, a store that cannot
    /// be listed.
    pub async fn start(parts: AppParts<S>) -> Result<Self, ServeError> {
        let app = Self::open(parts, false).await?;
        app.inner.ready.store(true, Ordering::SeqCst);
        Ok(app)
    }

    /// As [`start`](Self::start), for one replica of several on a PostgreSQL store: the
    /// settings say [`Sharing::Shared`], and instead of a loop per real instance, one embedded
    /// [`Worker`](kars_workflow::worker::Worker) on a thread of its own claims the instances
    /// that are due under leases, shared with the other replicas (and `kars worker`s), so that
    /// each timer is fired and each effect performed by one replica (again, under the same
    /// key, only after a replica failed). [`App::shutdown`] stops it, its leases released.
    /// Rehearsals, which no worker drives, keep their loop.
    ///
    /// # Errors
    /// As [`start`](Self::start), and [`ServeError::Io`] when the worker's thread cannot start.
    #[cfg(feature = "postgres")]
    pub async fn start_sharing_work(mut parts: AppParts<S>, work: SharedWork) -> Result<Self, ServeError> {
        parts.settings.sharing = Sharing::Shared;
        let app = Self::open(parts, true).await?;
        let running = work::start(&app.inner, work)?;
        *app.inner.work.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(running);
        app.inner.ready.store(true, Ordering::SeqCst);
        Ok(app)
    }

    /// The id of this replica's embedded worker, as its leases name it (see
    /// [`start_sharing_work`](Self::start_sharing_work)); `None` without one.
    #[must_use]
    pub fn replica(&self) -> Option<String> {
        #[cfg(feature = "postgres")]
        if let Some(running) = &*self.inner.work.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            return Some(running.replica().to_owned());
        }
        None
    }

    /// Compiles the specs, opens every instance in the store and hosts it; not ready yet.
    async fn open(parts: AppParts<S>, shares_work: bool) -> Result<Self, ServeError> {
        let mut workflows = BTreeMap::new();
        for source in parts.specs {
            let spec = kars_spec::load(&source.text, &source.origin).map_err(|r| ServeError::Spec(r.to_string()))?;
            let program = Program::new(&spec).map_err(|e| ServeError::Spec(e.to_string()))?;
            let name = spec.spec().name.clone();
            if workflows.contains_key(&name) {
                return Err(ServeError::DuplicateWorkflow { name });
            }
            workflows.insert(name, Workflow { source, spec: Arc::new(spec), program });
        }
        let (stop, _) = watch::channel(false);
        let inner = Inner {
            store: parts.store,
            clock: parts.clock,
            timer: parts.timer,
            mode: parts.mode,
            workflows,
            settings: parts.settings,
            adapters: parts.adapters,
            shares_work,
            #[cfg(feature = "postgres")]
            work: std::sync::Mutex::new(None),
            instances: RwLock::new(BTreeMap::new()),
            loops: tokio::sync::Mutex::new(JoinSet::new()),
            stop,
            closing: watch::Sender::new(false),
            starting: tokio::sync::Mutex::new(()),
            ready: AtomicBool::new(false),
            metrics: metrics::Metrics::default(),
            sessions: auth::Sessions::default(),
            replays: webhook::Replays::default(),
            programs: Arc::default(),
        };
        let app = Self { inner: Arc::new(inner) };
        let store = app.inner.store.clone();
        let ids = tokio::task::spawn_blocking(move || store.list())
            .await
            .map_err(|e| ServeError::Io(std::io::Error::other(e.to_string())))??;
        for id in ids {
            let hosted = hosted::open(&app, id.clone()).await.map_err(|source| ServeError::Open { id, source })?;
            app.host(hosted).await;
        }
        Ok(app)
    }

    /// The axum router of the whole service.
    pub fn router(&self) -> axum::Router {
        api::router(self.clone())
    }

    /// Adds a driven instance and starts its loop (unless the worker drives it).
    async fn host(&self, (driver, spec): hosted::Opened<S>) -> Arc<Hosted<S>> {
        let worked = self.inner.shares_work && driver.header().clock == ClockMode::System;
        let service = Service::new(driver, SharedTimer(Arc::clone(&self.inner.timer)));
        let hosted = Arc::new(Hosted::new(service.handle(), spec));
        if !worked {
            let mut stopped = self.inner.stop.subscribe();
            self.inner.loops.lock().await.spawn(service.run(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }));
        }
        let id = hosted.handle.read(|d| d.id().clone()).await;
        self.inner.instances.write().await.insert(id, Arc::clone(&hosted));
        hosted
    }

    /// Opens and hosts instance `id` of the store if another replica started it; `None` when
    /// the store has no such instance.
    pub(crate) async fn adopt(&self, id: &str) -> Result<Option<Arc<Hosted<S>>>, DriverError> {
        let Ok(id) = InstanceId::new(id) else { return Ok(None) };
        let _guard = self.inner.starting.lock().await;
        if let Some(hosted) = self.instance(id.as_str()).await {
            return Ok(Some(hosted));
        }
        let store = self.inner.store.clone();
        let probe = id.clone();
        match hosted::blocking(move || store.version(&probe)).await {
            Ok(_) => {}
            Err(JournalError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let opened = hosted::open(self, id).await?;
        Ok(Some(self.host(opened).await))
    }

    /// The instance `id`, if hosted.
    pub(crate) async fn instance(&self, id: &str) -> Option<Arc<Hosted<S>>> {
        self.inner.instances.read().await.get(id).cloned()
    }

    /// Stops every loop: effects already calling an adapter finish and are journaled. The
    /// embedded worker, if any, finishes the instance in hand and gives up the others it
    /// claimed, so that other replicas take them at once.
    ///
    /// # Errors
    /// [`ServeError::Loop`] for the first loop that stopped on an error.
    pub async fn shutdown(&self) -> Result<(), ServeError> {
        self.inner.ready.store(false, Ordering::SeqCst);
        self.inner.stop.send_replace(true);
        #[cfg(feature = "postgres")]
        {
            let running = self.inner.work.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            if let Some(running) = running {
                running.stop().await?;
            }
        }
        let mut loops = self.inner.loops.lock().await;
        let mut first = Ok(());
        while let Some(joined) = loops.join_next().await {
            if let Ok(Err(e)) = joined
                && first.is_ok()
            {
                first = Err(ServeError::Loop(e));
            }
        }
        first
    }
}

/// Serves `app` on `listener` until `shutdown` resolves: stops accepting, lets requests in
/// flight finish (their journal writes complete), then stops the instance loops.
///
/// # Errors
/// [`ServeError::Io`] when the listener fails; [`ServeError::Loop`] from [`App::shutdown`].
pub async fn serve<S: ServeStore>(
    app: App<S>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let router = app.router();
    let closing = app.clone();
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.inner.ready.store(false, Ordering::SeqCst);
            closing.inner.closing.send_replace(true);
        })
        .await?;
    app.shutdown().await
}
