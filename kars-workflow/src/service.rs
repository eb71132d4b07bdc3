//! A ready-made tokio loop that holds one instance's [`Driver`] for an async service (the
//! `tokio` feature).
//!
//! [`Service::run`] owns the loop: on start it handles every timer already due (catch-up after
//! downtime, each timer at its own instant), then sleeps until the next timer, or until an
//! input arrives through a [`Handle`], or until the shutdown signal. Effects run in the
//! background, each on its own task: an attempt runs on tokio's blocking pool *without* the
//! driver's lock, a retry waits on the [`Timer`] (not on a thread), and only the
//! acknowledgement takes the lock ([`Driver::complete_effect`]). A slow or failing adapter
//! therefore delays its own effect only: status reads and acts go on meanwhile.
//!
//! Every step that writes the journal runs under the lock on the blocking pool (the journal
//! fsyncs). On shutdown the loop stops taking effects, abandons retries that are waiting, lets
//! attempts already calling an adapter finish and journals their acknowledgements, then
//! returns. An effect abandoned is not lost: unacknowledged, it is pending again when the
//! journal is next opened, under the same key.
//!
//! Time comes from the driver's [`Clock`]; waiting for an instant goes through a [`Timer`]:
//! [`SystemTimer`] sleeps on tokio's timer against the system clock, [`VirtualTimer`] waits
//! until a test (or a simulation) moves a [`VirtualClock`].
//!
//! ```no_run
//! # async fn demo(driver: kars_workflow::driver::Driver<kars_workflow::journal::FileStore, kars_workflow::driver::SystemClock>) -> Result<(), kars_workflow::driver::DriverError> {
//! use kars_workflow::service::{Service, SystemTimer};
//! let service = Service::new(driver, SystemTimer);
//! let handle = service.handle(); // clone it into request handlers
//! let loop_ = tokio::spawn(service.run(async { /* e.g. ctrl-c */ }));
//! let node = handle.read(|d| d.instance().current_node().cloned()).await;
//! # let _ = (node, loop_);
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kars_spec::NodeId;
use tokio::sync::{Mutex, Notify, watch};
use tokio::task::JoinSet;

use crate::driver::{Attempt, Clock, Driver, DriverError, EffectRunner, LogEntry, Report, SystemClock, VirtualClock};
use crate::effect::Effect;
use crate::event::{Actor, Event};
use crate::journal::Store;

/// A boxed future a [`Timer`] returns.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How the loop waits for an instant of the driver's clock.
pub trait Timer: Send + Sync + 'static {
    /// Resolves once `at` has come (at once if it has).
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep;
}

/// Waits on tokio's timer against the [`SystemClock`]: in slices of at most a minute, reading
/// the clock again after each, so that a suspended machine or a clock change is noticed.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemTimer;

impl Timer for SystemTimer {
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep {
        Box::pin(async move {
            loop {
                let Ok(left) = (at - SystemClock.now()).to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(std::time::Duration::from_secs(60))).await;
            }
        })
    }
}

/// Waits until a [`VirtualClock`] reaches the instant: time moves only when the test calls
/// [`VirtualTimer::advance_to`], so a service can be run across days in no time, and a
/// downtime simulated by moving the clock while the service is stopped.
#[derive(Debug, Clone)]
pub struct VirtualTimer {
    clock: Arc<VirtualClock>,
    moved: Arc<watch::Sender<()>>,
}

impl VirtualTimer {
    /// A timer over `clock` (give the driver the same clock).
    #[must_use]
    pub fn new(clock: Arc<VirtualClock>) -> Self {
        Self { clock, moved: Arc::new(watch::Sender::new(())) }
    }

    /// Moves the clock forward to `at` and wakes whoever waits for an instant by then.
    pub fn advance_to(&self, at: DateTime<Utc>) {
        self.clock.set(at);
        self.moved.send_replace(());
    }
}

impl Timer for VirtualTimer {
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep {
        let clock = Arc::clone(&self.clock);
        let mut moved = self.moved.subscribe();
        Box::pin(async move {
            while clock.now() < at {
                if moved.changed().await.is_err() {
                    // The timer is gone: time will not move again.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

struct Shared<S: Store, C: Clock> {
    driver: Arc<Mutex<Driver<S, C>>>,
    wake: Notify,
    timer: Arc<dyn Timer>,
    clock: C,
}

/// The loop of one instance: see the [module docs](self).
pub struct Service<S: Store, C: Clock> {
    shared: Arc<Shared<S, C>>,
}

/// A cheap, cloneable way in to a running [`Service`]: inputs (which wake the loop) and reads.
pub struct Handle<S: Store, C: Clock> {
    shared: Arc<Shared<S, C>>,
}

impl<S: Store, C: Clock> Clone for Handle<S, C> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<S: Store, C: Clock> std::fmt::Debug for Handle<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl<S: Store, C: Clock> std::fmt::Debug for Service<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

/// Runs `f` on the driver, under the lock, on the blocking pool (the journal fsyncs).
async fn with_driver<S, C, T>(
    driver: &Arc<Mutex<Driver<S, C>>>,
    f: impl FnOnce(&mut Driver<S, C>) -> T + Send + 'static,
) -> T
where
    S: Store + Send + 'static,
    C: Clock + Send + 'static,
    T: Send + 'static,
{
    let mut guard = Arc::clone(driver).lock_owned().await;
    blocking(move || f(&mut guard)).await
}

/// Runs `f` on the blocking pool; a panic in `f` resumes here.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: the runtime is shutting down, and this task with it.
        Err(_) => std::future::pending().await,
    }
}

impl<S, C> Service<S, C>
where
    S: Store + Send + 'static,
    C: Clock + Clone + Send + Sync + 'static,
{
    /// A service holding `driver`, waiting for instants with `timer` (which must follow the
    /// driver's clock: [`SystemTimer`] for [`SystemClock`], a [`VirtualTimer`] over the same
    /// [`VirtualClock`]).
    #[must_use]
    pub fn new(driver: Driver<S, C>, timer: impl Timer) -> Self {
        let clock = driver.clock().clone();
        let shared =
            Shared { driver: Arc::new(Mutex::new(driver)), wake: Notify::new(), timer: Arc::new(timer), clock };
        Self { shared: Arc::new(shared) }
    }

    /// A handle for inputs and reads; clone it into request handlers.
    #[must_use]
    pub fn handle(&self) -> Handle<S, C> {
        Handle { shared: Arc::clone(&self.shared) }
    }

    /// Runs the loop until `shutdown` resolves (see the [module docs](self)).
    ///
    /// # Errors
    /// A [`DriverError`] the driver cannot recover from ([`DriverError::Broken`], or a journal
    /// failure that persists through retries with backoff); what is durable stays durable,
    /// and reopening the journal resumes where it stopped.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), DriverError> {
        let shared = self.shared;
        let (stop, stopped) = watch::channel(false);
        let mut effects: JoinSet<Result<(), DriverError>> = JoinSet::new();
        // Consecutive journal failures of a step, and of acknowledgements: backed off, then
        // given up on (the host restarts the service, which reopens the journal).
        let mut failures: u32 = 0;
        let mut acknowledge_failures: u32 = 0;
        tokio::pin!(shutdown);
        let result = loop {
            // Timers due (all of them after a downtime), and the effects to perform now.
            let step = with_driver(&shared.driver, |d| {
                d.tick().map(|_| (d.take_due_effects(), d.next_wake(), d.effect_runner()))
            })
            .await;
            let next = match step {
                Ok((due, next, runner)) => {
                    failures = 0;
                    for effect in due {
                        effects.spawn(perform(Arc::clone(&shared), runner.clone(), effect, stopped.clone()));
                    }
                    next
                }
                Err(e @ DriverError::Broken { .. }) => break Err(e),
                Err(e) => {
                    failures += 1;
                    if failures > 5 {
                        break Err(e);
                    }
                    // Back off: 1 s, 2 s, 4 s, … on the driver's clock.
                    let wait = chrono::Duration::seconds(1 << failures.min(6));
                    Some(shared.clock.now() + wait)
                }
            };
            let sleep: Sleep = match next {
                Some(at) => shared.timer.sleep_until(at),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                () = shared.wake.notified() => {}
                () = sleep => {}
                Some(joined) = effects.join_next(), if !effects.is_empty() => {
                    match joined {
                        Ok(Ok(())) => acknowledge_failures = 0,
                        Ok(Err(e @ DriverError::Broken { .. })) => break Err(e),
                        // A journal failure while acknowledging: the effect is pending again,
                        // and the next turn hands it out again after a backoff.
                        Ok(Err(e)) => {
                            acknowledge_failures += 1;
                            if acknowledge_failures > 5 {
                                break Err(e);
                            }
                            let wait = chrono::Duration::seconds(1 << acknowledge_failures.min(6));
                            tokio::select! {
                                () = &mut shutdown => break Ok(()),
                                () = shared.timer.sleep_until(shared.clock.now() + wait) => {}
                            }
                        }
                        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        Err(_) => {}
                    }
                }
            }
        };
        // Graceful: abandon waiting retries, let running attempts finish and be journaled.
        stop.send_replace(true);
        while effects.join_next().await.is_some() {}
        result
    }
}

/// Performs one effect to the end without the driver's lock, then acknowledges it under the
/// lock and wakes the loop (its result may emit more effects).
async fn perform<S, C>(
    shared: Arc<Shared<S, C>>,
    runner: EffectRunner,
    effect: Effect,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), DriverError>
where
    S: Store + Send + 'static,
    C: Clock + Clone + Send + Sync + 'static,
{
    let effect = Arc::new(effect);
    let mut attempt = 1;
    let mut log: Vec<LogEntry> = Vec::new();
    let mut outcome = loop {
        let now = shared.clock.now();
        let (runner_, effect_) = (runner.clone(), Arc::clone(&effect));
        match blocking(move || runner_.attempt(&effect_, attempt, now)).await {
            Attempt::Finished(outcome) => break outcome,
            Attempt::Retry { at, next, log: more } => {
                log.extend(more);
                tokio::select! {
                    () = shared.timer.sleep_until(at) => {}
                    _ = stopped.wait_for(|stop| *stop) => return Ok(()),
                }
                attempt = next;
            }
        }
    };
    log.append(&mut outcome.log);
    outcome.log = log;
    let key = effect.key.clone();
    with_driver(&shared.driver, move |d| d.complete_effect(&key, outcome)).await?;
    shared.wake.notify_one();
    Ok(())
}

impl<S, C> Handle<S, C>
where
    S: Store + Send + 'static,
    C: Clock + Clone + Send + Sync + 'static,
{
    /// `actor` acts on `node` ([`Driver::act`]); wakes the loop to perform what it causes.
    ///
    /// # Errors
    /// As [`Driver::act`].
    pub async fn act(&self, actor: Actor, node: NodeId, outcome: Option<String>) -> Result<Report, DriverError> {
        let report = with_driver(&self.shared.driver, move |d| d.act(actor, node, outcome.as_deref())).await;
        self.shared.wake.notify_one();
        report
    }

    /// Handles `event` ([`Driver::handle_event`]); wakes the loop.
    ///
    /// # Errors
    /// As [`Driver::handle_event`].
    pub async fn handle_event(&self, event: Event) -> Result<Report, DriverError> {
        let report = with_driver(&self.shared.driver, move |d| d.handle_event(event)).await;
        self.shared.wake.notify_one();
        report
    }

    /// Runs `f` with the driver held, on the blocking pool (for anything that writes, like
    /// [`Driver::change_roster`] or [`Driver::upgrade`]); wakes the loop afterwards.
    pub async fn with<T: Send + 'static>(&self, f: impl FnOnce(&mut Driver<S, C>) -> T + Send + 'static) -> T {
        let value = with_driver(&self.shared.driver, f).await;
        self.shared.wake.notify_one();
        value
    }

    /// Reads the driver (status, who can act): memory only, so it runs in place, and waits
    /// only for a journal write in progress, never for an adapter.
    pub async fn read<T>(&self, f: impl FnOnce(&Driver<S, C>) -> T) -> T {
        let guard = self.shared.driver.lock().await;
        f(&guard)
    }

    /// The driver's clock's time.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Wakes the loop (after the host changed something it should look at).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }
}
