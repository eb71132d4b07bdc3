//! The driver: runs an [`Instance`] against the world — performs its effects through the
//! [adapters](crate::adapter), feeds their results back as events, sleeps until its timers on a
//! [`Clock`], and keeps everything in a [journal](crate::journal) so that a crash loses nothing.
//!
//! # Write-ahead
//!
//! Every input (event or timeout) is handled in memory first — the engine does no IO, so this
//! is only a computation — and the history record it produced is appended to the journal
//! (with the version the driver last saw) *before* any of the input's effects runs. If the
//! append fails the in-memory instance is thrown away and rebuilt from the journal, so what
//! the driver holds is always what is durable. The journal format is described at
//! [`Entry`]: `input` entries are the engine's own history records, `done` entries
//! acknowledge effects, and the [`JournalHeader`] holds the spec fingerprint and instance id.
//!
//! Once a record is durable the driver no longer needs it in memory: with
//! [`HistoryInMemory::ReleaseJournaled`] (the default, set in [`DriverConfig::memory`]) it
//! releases it ([`Instance::release_history`]), so a service running many instances holds
//! their state only. [`Driver::instance`]'s history then starts at
//! [`History::first_seq`](crate::History::first_seq); the whole history is read back from the
//! journal ([`read_journal`]), and reopening replays it as before.
//! [`HistoryInMemory::Keep`] keeps every record in memory.
//!
//! # Effects, at least once
//!
//! After an input is durable its effects run in order. Each effect is acknowledged with a
//! `done` entry; a waiting action's result (an [`Event::ActionResult`]) is appended in the
//! same atomic append as its acknowledgement. Transient adapter failures are retried with the
//! bounded exponential backoff of [`RetryPolicy`] (the waits go through the clock); a
//! permanent failure, or running out of attempts, becomes a `failed` result for a waiting
//! action — so a decision reading `outcome_of` routes it, as the KARS deploy does to its
//! rollback — and a logged, acknowledged failure for a notification. Nothing panics and no
//! effect is lost: when a journal is opened, the history is replayed with
//! [`Instance::replay`], and every effect it emitted without a `done` entry is run again with
//! the same idempotency key. A crash between an adapter call and its acknowledgement therefore
//! repeats the call; adapters drop the duplicate by key (see [`crate::adapter`]).
//!
//! # Refused inputs
//!
//! A refused input changes no state. By default ([`Refusals::Discard`]) it is not journaled
//! and the in-memory history forgets it too (the driver reloads from the journal), as the
//! `kars instance` command line wants: nothing is written for a refused action.
//! [`Refusals::Journal`] keeps refused attempts in the journal as an audit trail.
//!
//! # Concurrency
//!
//! Every append names the version the driver expects. If another process advanced the
//! instance ([`crate::journal::JournalError::Conflict`]), the driver reloads and handles the
//! input again, up to [`DriverConfig::conflict_retries`] times, then reports the conflict.
//!
//! # Instance ids
//!
//! The engine, the journal and the driver share one [`InstanceId`]: 1 to 64 ASCII letters,
//! digits, `-`, `_`, `.`, starting with a letter or digit, without `..`, and not a Windows
//! device name, so it is both part of every effect key and a safe file name.
//!
//! # Sync and async
//!
//! [`Driver`] is synchronous: the journal fsyncs, the git adapter runs a process and the
//! webhook adapter uses a blocking HTTP client, so every step blocks anyway. An async (tokio)
//! host keeps the driver behind a mutex and runs each step (`handle_event`, `tick`) with
//! `tokio::task::spawn_blocking`, and waits for the next timer with `tokio::time::sleep`
//! until [`Driver::next_wake`] (see `examples/async_service.rs`). Driving the sans-IO
//! [`Instance`] directly from async code would mean re-implementing the journal and retry
//! logic above with async IO; `spawn_blocking` keeps one implementation.
//!
//! ```
//! use std::sync::Arc;
//! use kars_workflow::adapter::RecordingNotifier;
//! use kars_workflow::driver::{Adapters, Driver, DriverConfig, Parts, Program, VirtualClock};
//! use kars_workflow::InstanceId;
//! use kars_workflow::journal::MemoryStore;
//!
//! let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../workflows/kars-release.yaml"))?;
//! let program = Program::new(&kars_spec::load(&yaml, "kars-release.yaml")?)?;
//! let parts = Parts {
//!     store: MemoryStore::new(),
//!     clock: VirtualClock::new("2026-11-23T13:00:00Z".parse()?),
//!     adapters: Adapters::new(RecordingNotifier::new()),
//!     config: DriverConfig::default(),
//! };
//! let mut driver = Driver::create(parts, &program, &InstanceId::new("kars")?, None)?;
//! assert_eq!(driver.instance().current_node().map(|n| n.as_str()), Some("B"));
//! // Jump to Tuesday 09:00 Toronto: D's gate opens.
//! driver.run_until("2026-11-24T14:00:00Z".parse()?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod clock;
mod error;
mod load;
mod ops;
mod perform;
mod record;
mod roster;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kars_spec::{CheckedSpec, NodeId};

pub use clock::{Clock, SystemClock, VirtualClock};
pub use error::DriverError;
pub use load::{Journaled, read_journal};
pub use ops::{
    Adapters, ManualOperations, Operation, Operations, OperationsFn, RecordingOperations, RetryPolicy, Scripted,
};
pub use perform::{LogEntry, LogKind};
pub use record::{Done, EffectStatus, Entry, JOURNAL_FORMAT, JournalHeader, SpecText};
pub use roster::{Roster, RosterError};

use crate::effect::{Effect, EffectKey};
use crate::error::{CompileError, EngineError};
use crate::event::{ActionOutcome, Event, InstanceId};
use crate::instance::Instance;
use crate::journal::{JournalError, Store};
use crate::workflow::Workflow;

/// A compiled workflow with what the driver needs from the spec besides: channel addresses.
#[derive(Debug, Clone)]
pub struct Program {
    workflow: Arc<Workflow>,
    channels: BTreeMap<String, String>,
}

impl Program {
    /// Compiles `spec`.
    ///
    /// # Errors
    /// A [`CompileError`] when the spec breaks a rule the engine relies on.
    pub fn new(spec: &CheckedSpec) -> Result<Self, CompileError> {
        let workflow = Arc::new(Workflow::compile(spec)?);
        let channels = spec.spec().channels.iter().map(|(id, c)| (id.to_string(), c.name.clone())).collect();
        Ok(Self { workflow, channels })
    }

    /// The compiled workflow.
    #[must_use]
    pub fn workflow(&self) -> &Arc<Workflow> {
        &self.workflow
    }

    /// The address of channel `id` (`#kars-releases`); `#id` for a channel the spec does not
    /// declare.
    #[must_use]
    pub fn channel_address(&self, id: &str) -> String {
        self.channels.get(id).cloned().unwrap_or_else(|| format!("#{id}"))
    }
}

/// What to do with an input the engine refuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Refusals {
    /// Write nothing, and forget the attempt in memory too.
    #[default]
    Discard,
    /// Journal the refused attempt as an audit record.
    Journal,
}

/// What the driver keeps of the instance's history in memory once it is journaled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HistoryInMemory {
    /// Keep every record: [`Driver::instance`]'s history is whole, as replay gives it.
    Keep,
    /// Release each record once it is durable in the journal
    /// ([`Instance::release_history`]): the instance holds only its state, and
    /// [`Driver::instance`]'s history only the records not yet journaled (between commands,
    /// none). The whole history stays in the journal ([`read_journal`]); reopening replays it.
    #[default]
    ReleaseJournaled,
}

/// How a driver behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverConfig {
    /// Retries of transient adapter failures.
    pub retry: RetryPolicy,
    /// Refused inputs: journaled or not.
    pub refusals: Refusals,
    /// How many times an input is handled again after another writer advanced the instance.
    pub conflict_retries: u32,
    /// Journaled history records: kept in memory or released.
    pub memory: HistoryInMemory,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            refusals: Refusals::Discard,
            conflict_retries: 3,
            memory: HistoryInMemory::default(),
        }
    }
}

/// What a driver is built from.
#[derive(Debug)]
pub struct Parts<S, C> {
    /// The journal.
    pub store: S,
    /// The clock.
    pub clock: C,
    /// The adapters effects go through.
    pub adapters: Adapters,
    /// The configuration.
    pub config: DriverConfig,
}

/// An input for [`Driver::apply`].
enum Step {
    Event(Event),
    Timeout,
    Nothing,
}

/// A journaled instance that performs its effects: see the [module docs](self).
pub struct Driver<S: Store, C: Clock> {
    store: S,
    clock: C,
    adapters: Adapters,
    config: DriverConfig,
    program: Program,
    id: InstanceId,
    header: JournalHeader,
    instance: Instance,
    /// The journal's version (its number of records).
    version: u64,
    /// How many of the instance's history records are journaled (their sequence numbers are
    /// below this).
    journaled: u64,
    acked: BTreeSet<EffectKey>,
    pending: VecDeque<Effect>,
    log: Vec<LogEntry>,
    broken: bool,
}

impl<S: Store, C: Clock> std::fmt::Debug for Driver<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<S: Store, C: Clock> Driver<S, C> {
    /// Starts instance `id` of `program` at the clock's time: creates its journal (with `spec`
    /// in the header when given), journals the start and runs its first effects.
    ///
    /// # Errors
    /// [`DriverError::Journal`] if the instance exists or the journal fails.
    pub fn create(
        parts: Parts<S, C>,
        program: &Program,
        id: &InstanceId,
        spec: Option<SpecText>,
    ) -> Result<Self, DriverError> {
        let now = parts.clock.now();
        let instance = Instance::start(Arc::clone(&program.workflow), id.clone(), now);
        let header = JournalHeader { format: JOURNAL_FORMAT, history: instance.history().header.clone(), spec };
        let bytes = serde_json::to_vec(&header)
            .map_err(|e| DriverError::BadHeader { id: id.clone(), detail: e.to_string() })?;
        parts.store.create(id, &bytes)?;
        let mut driver = Self::assemble(parts, program, id.clone(), header, instance);
        driver.resume()?;
        Ok(driver)
    }

    /// Opens instance `id` from its journal: replays its history and finds the effects that
    /// were emitted but not acknowledged (they run at the next command, or [`Driver::resume`]).
    ///
    /// # Errors
    /// [`DriverError::SpecChanged`] when the journal was written for another spec;
    /// [`DriverError::Journal`], [`DriverError::BadHeader`], [`DriverError::BadRecord`] or
    /// [`DriverError::Replay`] when the journal cannot be read back.
    pub fn open(parts: Parts<S, C>, program: &Program, id: &InstanceId) -> Result<Self, DriverError> {
        let loaded = load::load(&parts.store, program, id)?;
        let mut driver = Self::assemble(parts, program, id.clone(), loaded.header.clone(), loaded.instance);
        driver.install(loaded.version, loaded.journaled, loaded.acked);
        Ok(driver)
    }

    fn assemble(
        parts: Parts<S, C>,
        program: &Program,
        id: InstanceId,
        header: JournalHeader,
        instance: Instance,
    ) -> Self {
        let Parts { store, clock, adapters, config } = parts;
        Self {
            store,
            clock,
            adapters,
            config,
            program: program.clone(),
            id,
            header,
            instance,
            version: 0,
            journaled: 0,
            acked: BTreeSet::new(),
            pending: VecDeque::new(),
            log: Vec::new(),
            broken: false,
        }
    }

    fn install(&mut self, version: u64, journaled: u64, acked: BTreeSet<EffectKey>) {
        self.version = version;
        self.journaled = journaled;
        self.acked = acked;
        self.release_journaled();
        self.pending.clear();
        if self.is_synced() {
            self.drain_effects();
        }
    }

    fn is_synced(&self) -> bool {
        self.journaled == self.instance.history().next_seq()
    }

    /// Drops the journaled records from memory, when configured to.
    fn release_journaled(&mut self) {
        if self.config.memory == HistoryInMemory::ReleaseJournaled {
            self.instance.release_history(self.journaled);
        }
    }

    /// Moves the instance's effects to the pending queue (those of durable records only).
    fn drain_effects(&mut self) {
        while let Some(effect) = self.instance.poll_effect() {
            if !self.acked.contains(&effect.key) {
                self.pending.push_back(effect);
            }
        }
    }

    /// Rebuilds everything from the journal; on failure the driver is broken.
    fn reload(&mut self) -> Result<(), DriverError> {
        match load::load(&self.store, &self.program, &self.id) {
            Ok(loaded) => {
                self.instance = loaded.instance;
                self.header = loaded.header;
                self.install(loaded.version, loaded.journaled, loaded.acked);
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    fn check(&self) -> Result<(), DriverError> {
        if self.broken { Err(DriverError::Broken { id: self.id.clone() }) } else { Ok(()) }
    }

    /// Appends the unjournaled history records and `done`, then queues the new effects.
    fn commit(&mut self, done: Option<&Done>) -> Result<(), DriverError> {
        let bad = |e: serde_json::Error| DriverError::BadRecord {
            id: self.id.clone(),
            index: usize::try_from(self.version).unwrap_or(usize::MAX),
            detail: e.to_string(),
        };
        let mut payloads = Vec::new();
        for record in self.instance.history().since(self.journaled) {
            payloads.push(serde_json::to_vec(&load::EntryRef::Input(record)).map_err(bad)?);
        }
        if let Some(done) = done {
            payloads.push(serde_json::to_vec(&load::EntryRef::Done(done)).map_err(bad)?);
        }
        if !payloads.is_empty() {
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            self.version = self.store.append(&self.id, self.version, &refs)?;
        }
        self.journaled = self.instance.history().next_seq();
        self.release_journaled();
        if let Some(done) = done {
            self.acked.insert(done.key.clone());
        }
        self.drain_effects();
        Ok(())
    }

    /// Handles `step` and journals it with `done`; returns the engine's refusal, if any.
    fn apply(&mut self, step: Step, done: Option<Done>) -> Result<Option<EngineError>, DriverError> {
        self.check()?;
        let mut attempt = 0;
        loop {
            let now = self.clock.now();
            let refused = match &step {
                Step::Event(event) => self.instance.handle_event(event.clone(), now).err(),
                Step::Timeout => {
                    self.instance.handle_timeout(now);
                    None
                }
                Step::Nothing => None,
            };
            if refused.is_some() && self.config.refusals == Refusals::Discard {
                let seen = self.version;
                self.reload()?;
                // Refused by a stale instance: another writer advanced it; try again.
                if self.version != seen && attempt < self.config.conflict_retries {
                    attempt += 1;
                    continue;
                }
            }
            match self.commit(done.as_ref()) {
                Ok(()) => return Ok(refused),
                Err(DriverError::Journal(JournalError::Conflict { .. })) if attempt < self.config.conflict_retries => {
                    attempt += 1;
                    self.reload()?;
                    // Another process acknowledged this effect (and reported its result).
                    if done.as_ref().is_some_and(|d| self.acked.contains(&d.key)) {
                        return Ok(None);
                    }
                }
                Err(e) => {
                    self.reload()?;
                    return Err(e);
                }
            }
        }
    }

    /// Journals what is not journaled yet (after an interrupted start) and runs every pending
    /// effect: the ones a crash left unacknowledged, and whatever their results cause.
    ///
    /// # Errors
    /// [`DriverError::Journal`] if the journal fails (the driver then holds what is durable),
    /// [`DriverError::Broken`] after a failure it could not recover from.
    pub fn resume(&mut self) -> Result<(), DriverError> {
        if !self.is_synced() {
            self.apply(Step::Nothing, None)?;
        }
        self.check()?;
        while let Some(effect) = self.pending.pop_front() {
            if self.acked.contains(&effect.key) {
                continue;
            }
            let performed = {
                let mut cx = perform::Context {
                    adapters: &self.adapters,
                    clock: &self.clock,
                    retry: &self.config.retry,
                    channels: &self.program.channels,
                    log: &mut self.log,
                };
                cx.perform(&effect)
            };
            let done = Done { key: effect.key.clone(), at: self.clock.now(), status: performed.status };
            let step = match performed.result {
                Some(outcome) => Step::Event(Event::ActionResult { node: effect.node.clone(), outcome }),
                None => Step::Nothing,
            };
            if let Some(error) = self.apply(step, Some(done))? {
                let at = self.clock.now();
                let kind = LogKind::ResultRefused { error: Box::new(error) };
                self.log.push(LogEntry { at, key: effect.key.clone(), node: effect.node.clone(), kind });
            }
        }
        Ok(())
    }

    /// Handles `event` at the clock's time, journals it, and runs the effects it causes.
    ///
    /// # Errors
    /// [`DriverError::Refused`] when the engine refuses the event (nothing changes and, with
    /// [`Refusals::Discard`], nothing is written); journal failures as [`Driver::resume`].
    pub fn handle_event(&mut self, event: Event) -> Result<(), DriverError> {
        self.resume()?;
        let refused = self.apply(Step::Event(event), None)?;
        self.resume()?;
        match refused {
            Some(e) => Err(DriverError::Refused(Box::new(e))),
            None => Ok(()),
        }
    }

    /// Reports the result of a waiting action that the host ran itself (its [`Operations`]
    /// returned `Ok(None)`).
    ///
    /// # Errors
    /// As [`Driver::handle_event`].
    pub fn report(&mut self, node: NodeId, outcome: ActionOutcome) -> Result<(), DriverError> {
        self.handle_event(Event::ActionResult { node, outcome })
    }

    /// Runs the timers due by the clock's time (each at its own instant) and their effects;
    /// returns whether any was due.
    ///
    /// # Errors
    /// As [`Driver::resume`].
    pub fn tick(&mut self) -> Result<bool, DriverError> {
        self.resume()?;
        let due = self.instance.poll_timeout().is_some_and(|wake| wake <= self.clock.now());
        if due {
            self.apply(Step::Timeout, None)?;
            self.resume()?;
        }
        Ok(due)
    }

    /// Lets time pass until `until`: sleeps (or jumps) to each timer due by then, handles it at
    /// its instant, then sleeps until `until`.
    ///
    /// # Errors
    /// As [`Driver::resume`].
    pub fn run_until(&mut self, until: DateTime<Utc>) -> Result<(), DriverError> {
        self.resume()?;
        while let Some(wake) = self.instance.poll_timeout().filter(|w| *w <= until) {
            self.clock.sleep_until(wake);
            self.tick()?;
            if self.instance.poll_timeout().is_some_and(|next| next <= wake) {
                break; // a timer that does not move on; never spin
            }
        }
        self.clock.sleep_until(until);
        Ok(())
    }

    /// Sleeps until the next timer and handles it; `false` if the instance has none.
    ///
    /// # Errors
    /// As [`Driver::resume`].
    pub fn wait(&mut self) -> Result<bool, DriverError> {
        self.resume()?;
        match self.instance.poll_timeout() {
            Some(wake) => {
                self.clock.sleep_until(wake);
                self.tick()
            }
            None => Ok(false),
        }
    }

    /// The next instant a timer is due (see [`Instance::poll_timeout`]).
    #[must_use]
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.instance.poll_timeout()
    }

    /// The instance, as durable in the journal (between commands). With
    /// [`HistoryInMemory::ReleaseJournaled`] (the default) its history holds no journaled
    /// records; [`History::next_seq`](crate::History::next_seq) still counts them, and
    /// [`read_journal`] reads them back.
    #[must_use]
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// The instance's id.
    #[must_use]
    pub fn id(&self) -> &InstanceId {
        &self.id
    }

    /// The journal header (with the spec text, when stored).
    #[must_use]
    pub fn header(&self) -> &JournalHeader {
        &self.header
    }

    /// The compiled workflow and channels.
    #[must_use]
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The journal's version (its number of records) as this driver last wrote or read it.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The effects emitted by durable inputs and not yet performed.
    pub fn pending_effects(&self) -> impl Iterator<Item = &Effect> {
        self.pending.iter()
    }

    /// Whether the effect with `key` was acknowledged.
    #[must_use]
    pub fn is_acknowledged(&self, key: &EffectKey) -> bool {
        self.acked.contains(key)
    }

    /// The log of effect attempts, retries, failures and refused results so far.
    #[must_use]
    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    /// Takes the log, leaving it empty.
    pub fn take_log(&mut self) -> Vec<LogEntry> {
        std::mem::take(&mut self.log)
    }
}
