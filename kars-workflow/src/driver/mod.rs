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
//! # Effects, at least once, never while the instance is held
//!
//! An input (an event, a timer) only journals its record: the call returns a [`Report`]
//! whose [`pending`](Report::pending) effects are still to perform, and no adapter runs while
//! the caller holds the driver. Performing is a separate step in three parts, so that a slow
//! or failing adapter delays only its own effect:
//!
//! 1. [`Driver::take_due_effects`] hands out the pending effects (marked in flight);
//! 2. an [`EffectRunner`] ([`Driver::effect_runner`]), which holds the adapters but not the
//!    driver, performs each: [`EffectRunner::attempt`] calls the adapter once and answers
//!    [`Attempt::Finished`] or [`Attempt::Retry`] `{ at }` (the bounded exponential backoff of
//!    [`RetryPolicy`], scheduled, not slept: the host waits as it likes, without the driver);
//! 3. [`Driver::complete_effect`] journals the `done` acknowledgement, and a waiting action's
//!    result (an [`Event::ActionResult`] reported by [`Reporter::Effect`]) in the same atomic
//!    append.
//!
//! [`Driver::run_effects`] does all three in a row for synchronous hosts and the command line
//! (its report lists the effects performed); the `tokio` feature's
//! `service` runs each effect on its own task. A permanent failure, or running out of
//! attempts, becomes a `failed` result for a waiting action — so a decision reading
//! `outcome_of` routes it, as the KARS deploy does to its rollback — and a logged,
//! acknowledged failure for a notification. Nothing panics and no effect is lost: when a
//! journal is opened, the history is replayed with [`Instance::replay`], and every effect it
//! emitted without a `done` entry is pending again with the same idempotency key. A crash
//! between an adapter call and its acknowledgement therefore repeats the call; adapters drop
//! the duplicate by key (see [`crate::adapter`]).
//!
//! # Refused inputs
//!
//! A refused input changes no state. By default ([`Refusals::Discard`]) it is not journaled
//! and the in-memory history forgets it too ([`Instance::discard_refused`]; timers due before
//! an event run as their own input first, so the refused record holds nothing else), as the
//! `kars instance` command line wants: nothing is written for a refused action.
//! [`Refusals::Journal`] keeps refused attempts in the journal as an audit trail, as typed
//! data ([`EngineError`] with ids), never as rendered text.
//!
//! # What a call did
//!
//! Every call that can change the journal returns a [`Report`]: the entries it appended with
//! their journal positions, the transitions they caused ([`crate::Notice`]s) and the effects
//! it performed with their status. A host renders that; it never reads the journal again to
//! find out. Opening reads the journal once and the engine replays it once
//! ([`Driver::open_read`] takes a journal the host already read, for example to compile the
//! spec stored in its header).
//!
//! # Time and people
//!
//! The driver asks its [`Clock`] for the time of every input. An instant earlier than the
//! latest the instance accepted is held at that latest one ([`Earlier::Hold`], for a system
//! clock stepped back) or refused ([`Earlier::Refuse`], for rehearsals whose clock is a
//! person's word): a journal never records time going backwards. The roster is the
//! instance's, journaled at its start ([`Start::roster`]) and changed only by
//! [`Driver::change_roster`], by a holder of a role the spec's `team_managed_by` names. The
//! host says who acts: an [`Actor`] it resolved from something the caller
//! cannot type (an OS login, a token), with [`Roster::actor_for_login`] or [`Roster::actor`].
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
//! webhook adapter uses a blocking HTTP client, so every step blocks anyway. A synchronous
//! host calls an input, then [`Driver::run_effects`] (or [`Driver::run_until`], which lets
//! time pass and performs everything). An async (tokio) host uses the `tokio` feature's
//! `kars_workflow::service`: the driver behind a mutex, its steps on `spawn_blocking`,
//! timers on the real clock with catch-up after downtime, wake-up on input, effects in the
//! background without the lock, and a graceful shutdown.
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

mod cache;
mod clock;
mod config;
mod effects;
mod error;
mod load;
mod open;
mod ops;
mod perform;
mod record;
mod report;
mod roster;
mod upgrade;
mod who;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kars_spec::NodeId;
use kars_spec::spec::NodeKind;

pub use cache::SpecCache;
pub use clock::{Clock, SystemClock, VirtualClock};
pub use config::{DriverConfig, Earlier, HistoryInMemory, Parts, Program, Refusals, Start};
pub use error::DriverError;
pub use load::{Account, Caused, Journaled, Versions, read_entries, read_journal, replay_journal};
pub use ops::{
    Adapters, ManualOperations, Operation, Operations, OperationsFn, RecordingOperations, RetryPolicy, Scripted,
};
pub use perform::{Attempt, EffectOutcome, EffectRunner, LogEntry, LogKind};
pub use record::{
    ClockMode, Done, EffectStatus, Entry, Failure, JOURNAL_FORMAT, JournalHeader, OLDEST_JOURNAL_FORMAT, RosterChange,
    SpecText, SpecVersion,
};
pub use report::{Appended, EffectRun, Report};
pub use roster::{Forge, Member, Roster, RosterError};
pub use upgrade::UpgradeRequest;
pub use who::{CanAct, who_can_act};

use crate::effect::{Effect, EffectKey};
use crate::error::EngineError;
use crate::event::{ActionOutcome, Actor, Event, InstanceId, Reporter};
use crate::instance::Instance;
use crate::journal::{JournalError, NextWake, Outbox, OutboxEffect, Store};

/// Each effect's idempotency key and JSON, for [`Outbox::emitted`].
fn outbox_effects(effects: &[Effect]) -> Result<Vec<(&str, Vec<u8>)>, serde_json::Error> {
    effects.iter().map(|e| Ok((e.key.as_str(), serde_json::to_vec(e)?))).collect()
}

/// How many undrained transition notices a driven instance keeps (they are drained after each
/// input into the call's [`Report`]).
const NOTICE_CAPACITY: usize = 256;

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
    adapters: Arc<Adapters>,
    config: DriverConfig,
    program: Program,
    id: InstanceId,
    header: JournalHeader,
    instance: Instance,
    roster: Roster,
    /// The journal's version (its number of records).
    version: u64,
    /// How many of the instance's history records are journaled (their sequence numbers are
    /// below this).
    journaled: u64,
    acked: BTreeSet<EffectKey>,
    pending: VecDeque<Effect>,
    /// Effects handed to a runner ([`Driver::take_due_effects`]) and not acknowledged yet.
    in_flight: BTreeMap<EffectKey, Effect>,
    log: Vec<LogEntry>,
    /// What the current call did.
    report: Report,
    /// Notices of inputs handled but not yet journaled.
    staged: Vec<(u64, crate::effect::Notice)>,
    broken: bool,
    /// Every spec version the instance ran under.
    versions: load::Versions,
}

impl<S: Store, C: Clock> std::fmt::Debug for Driver<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("pending", &self.pending.len())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl<S: Store, C: Clock> Driver<S, C> {
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
            self.queue_effect(effect);
        }
    }

    /// Queues one effect of a durable record, unless acknowledged or in flight.
    fn queue_effect(&mut self, effect: Effect) {
        if !self.acked.contains(&effect.key) && !self.in_flight.contains_key(&effect.key) {
            self.pending.push_back(effect);
        }
    }

    fn check(&self) -> Result<(), DriverError> {
        if self.broken { Err(DriverError::Broken { id: self.id.clone() }) } else { Ok(()) }
    }

    /// The time of the next input: the clock's, by the [`Earlier`] rule.
    fn now(&self) -> Result<DateTime<Utc>, DriverError> {
        let now = self.clock.now();
        let latest = self.instance.latest_instant();
        if now >= latest {
            return Ok(now);
        }
        match self.config.earlier {
            Earlier::Hold => Ok(latest),
            Earlier::Refuse => Err(DriverError::ClockBehind { id: self.id.clone(), now, latest }),
        }
    }

    /// Appends the unjournaled history records and `done`, then queues the new effects.
    fn commit(&mut self, done: Option<&Done>) -> Result<(), DriverError> {
        let bad = |e: serde_json::Error| DriverError::BadRecord {
            id: self.id.clone(),
            index: usize::try_from(self.version).unwrap_or(usize::MAX),
            detail: e.to_string(),
        };
        let records: Vec<crate::Record> = self.instance.history().since(self.journaled).collect();
        let mut payloads = Vec::with_capacity(records.len() + 1);
        for record in &records {
            payloads.push(serde_json::to_vec(&load::EntryRef::Input(record)).map_err(bad)?);
        }
        if let Some(done) = done {
            payloads.push(serde_json::to_vec(&load::EntryRef::Done(done)).map_err(bad)?);
        }
        // The effects these records emit travel with them, for a store that keeps an outbox
        // in the same transaction (`Store::append_with_outbox`); they are queued once durable.
        // After a failed append the instance is rebuilt from the journal, effects included.
        let emitted: Vec<Effect> = std::iter::from_fn(|| self.instance.poll_effect()).collect();
        if !payloads.is_empty() {
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            let from = self.version;
            let effects = if self.store.keeps_outbox() { outbox_effects(&emitted).map_err(bad)? } else { Vec::new() };
            let effect_refs: Vec<OutboxEffect<'_>> =
                effects.iter().map(|(key, json)| OutboxEffect { key, effect: json }).collect();
            let done_keys: Vec<&str> = done.iter().map(|d| d.key.as_str()).collect();
            // A real instance's timers are wall-clock instants a replica can wait for; a
            // rehearsal's are a person's word, and no replica drives them by the clock.
            let next_wake = match self.header.clock {
                ClockMode::System => self.instance.poll_timeout().into(),
                ClockMode::Rehearsal => NextWake::Unchanged,
            };
            let outbox = Outbox { emitted: &effect_refs, done: &done_keys, next_wake };
            self.version = self.store.append_with_outbox(&self.id, from, &refs, outbox)?;
            let entries = records.into_iter().map(Entry::Input).chain(done.cloned().map(Entry::Done));
            for (version, entry) in (from + 1..).zip(entries) {
                self.report.appended.push(Appended { version, entry });
            }
        }
        self.stage_notices();
        self.report.notices.append(&mut self.staged);
        self.journaled = self.instance.history().next_seq();
        self.release_journaled();
        if let Some(done) = done {
            self.acked.insert(done.key.clone());
        }
        for effect in emitted {
            self.queue_effect(effect);
        }
        self.drain_effects();
        Ok(())
    }

    /// Moves the instance's notices to the staged ones, with the sequence number of the record
    /// that caused them (the last one).
    fn stage_notices(&mut self) {
        let seq = self.instance.history().next_seq().saturating_sub(1);
        while let Some(notice) = self.instance.poll_notice() {
            self.staged.push((seq, notice));
        }
    }

    /// Handles `step` and journals it with `done`; returns the engine's refusal, if any.
    fn apply(&mut self, step: &Step, done: Option<&Done>) -> Result<Option<EngineError>, DriverError> {
        self.check()?;
        let mut attempt = 0;
        loop {
            let now = self.now()?;
            self.staged.clear();
            let refused = match step {
                Step::Event(event) => {
                    // Timers due run as their own input first, so that a refused event's
                    // record holds nothing but the refusal.
                    self.instance.handle_timeout(now);
                    self.stage_notices();
                    let refused = self.instance.handle_event(event.clone(), now).err();
                    self.stage_notices();
                    refused
                }
                Step::Timeout => {
                    self.instance.handle_timeout(now);
                    self.stage_notices();
                    None
                }
                Step::Nothing => None,
            };
            if refused.is_some() && self.config.refusals == Refusals::Discard {
                if !self.instance.discard_refused() {
                    // Cannot happen (see above); rebuild from what is durable all the same.
                    debug_assert!(false, "a refused record held resolved instants");
                    self.reload()?;
                }
                // Refused by a stale instance? Another writer advanced it: catch up, try again.
                if attempt < self.config.conflict_retries && self.store.version(&self.id)? != self.version {
                    attempt += 1;
                    self.reload()?;
                    continue;
                }
                if done.is_none() && self.is_synced() {
                    return Ok(refused);
                }
            }
            match self.commit(done) {
                Ok(()) => return Ok(refused),
                Err(DriverError::Journal(JournalError::Conflict { .. })) if attempt < self.config.conflict_retries => {
                    attempt += 1;
                    self.reload()?;
                    // Another process acknowledged this effect (and reported its result).
                    if done.is_some_and(|d| self.acked.contains(&d.key)) {
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

    /// Runs the timers due by now as their own input.
    fn timers(&mut self) -> Result<bool, DriverError> {
        let now = self.now()?;
        let due = self.instance.poll_timeout().is_some_and(|wake| wake <= now);
        if due {
            self.apply(&Step::Timeout, None)?;
        }
        Ok(due)
    }

    /// Starts a call: clears the report.
    fn begin(&mut self) {
        self.report = Report::default();
    }

    /// Ends a call: hands over the report, with the effects now pending.
    fn finish(&mut self) -> Report {
        self.report.pending = self.pending.iter().cloned().collect();
        std::mem::take(&mut self.report)
    }

    /// Journals what is not journaled yet (the start, after a crash during
    /// [`Driver::create`]).
    fn sync(&mut self) -> Result<(), DriverError> {
        if !self.is_synced() {
            self.apply(&Step::Nothing, None)?;
        }
        self.check()
    }

    /// Handles `event` at the clock's time (after the timers due by then) and journals it. The
    /// effects it causes are not performed: the report lists them
    /// ([`Report::pending`]); perform them with [`Driver::run_effects`] or an [`EffectRunner`].
    ///
    /// # Errors
    /// [`DriverError::Refused`] when the engine refuses the event (nothing changes and, with
    /// [`Refusals::Discard`], nothing is written for it); [`DriverError::ClockBehind`] for a
    /// clock behind the instance under [`Earlier::Refuse`]; journal failures as
    /// [`Driver::resume`].
    pub fn handle_event(&mut self, event: Event) -> Result<Report, DriverError> {
        self.begin();
        self.sync()?;
        let refused = self.apply(&Step::Event(event), None)?;
        match refused {
            Some(e) => Err(DriverError::Refused(Box::new(e))),
            None => Ok(self.finish()),
        }
    }

    /// `actor` acts on `node`: completes a task (with `outcome` when it asks for one), takes a
    /// decision (`outcome` is the branch), or reports a waiting action's result (`outcome` is
    /// `succeeded` or `failed`; the actor needs a role the node's `reported_by` names).
    ///
    /// # Errors
    /// As [`Driver::handle_event`]; an action result that is not `succeeded` or `failed` is
    /// refused as an unknown outcome.
    pub fn act(&mut self, actor: Actor, node: NodeId, outcome: Option<&str>) -> Result<Report, DriverError> {
        // The spec in force (an upgrade may be scheduled for the next cycle).
        let workflow = self.instance.workflow();
        let kind = workflow.node_index(node.as_str()).and_then(|i| workflow.node_kind(i));
        let event = if kind == Some(NodeKind::Action) {
            let parsed = outcome.and_then(|o| o.parse::<ActionOutcome>().ok());
            let Some(outcome_value) = parsed else {
                let error = EngineError::UnknownOutcome {
                    node,
                    given: outcome.map(str::to_owned),
                    valid: vec!["succeeded".to_owned(), "failed".to_owned()],
                };
                return Err(DriverError::Refused(Box::new(error)));
            };
            Event::ActionResult { node, outcome: outcome_value, reporter: Reporter::Person(actor) }
        } else {
            Event::Complete { node, actor, outcome: outcome.map(Into::into) }
        };
        self.handle_event(event)
    }

    /// Reports the result of a waiting action that the host ran itself (its [`Operations`]
    /// returned `Ok(None)`), saying who reports it.
    ///
    /// # Errors
    /// As [`Driver::handle_event`].
    pub fn report(&mut self, node: NodeId, outcome: ActionOutcome, reporter: Reporter) -> Result<Report, DriverError> {
        self.handle_event(Event::ActionResult { node, outcome, reporter })
    }

    /// Replaces the instance's roster, as `by`, who must hold a role the spec's
    /// `team_managed_by` names. The change is journaled; it is the only way a running
    /// instance's roster changes.
    ///
    /// # Errors
    /// [`DriverError::RosterLocked`] when `by` may not change it; journal failures.
    pub fn change_roster(&mut self, by: &Actor, roster: Roster) -> Result<Report, DriverError> {
        self.begin();
        self.check()?;
        if !by.holds_any(&self.program.team_managed_by) {
            return Err(DriverError::RosterLocked {
                id: self.id.clone(),
                by: by.name().to_string(),
                managed_by: self.program.team_managed_by.clone(),
            });
        }
        let mut attempt = 0;
        loop {
            let change = RosterChange { at: self.now()?, by: by.name().to_string(), roster: roster.clone() };
            let bytes = serde_json::to_vec(&load::EntryRef::Roster(&change)).map_err(|e| DriverError::BadRecord {
                id: self.id.clone(),
                index: usize::try_from(self.version).unwrap_or(usize::MAX),
                detail: e.to_string(),
            })?;
            match self.store.append(&self.id, self.version, &[&bytes]) {
                Ok(version) => {
                    self.version = version;
                    self.roster = roster;
                    self.report.appended.push(Appended { version, entry: Entry::Roster(change) });
                    return Ok(self.finish());
                }
                Err(JournalError::Conflict { .. }) if attempt < self.config.conflict_retries => {
                    attempt += 1;
                    self.reload()?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Runs the timers due by the clock's time (each at its own instant) and journals them;
    /// their effects are listed, not performed, as for [`Driver::handle_event`]. Whether any
    /// was due: [`Report::ran_timers`].
    ///
    /// # Errors
    /// As [`Driver::resume`].
    pub fn tick(&mut self) -> Result<Report, DriverError> {
        self.begin();
        self.sync()?;
        self.timers()?;
        Ok(self.finish())
    }

    /// Lets time pass until `until`: sleeps (or jumps) to each timer due by then, handles it at
    /// its instant, then sleeps until `until`.
    ///
    /// # Errors
    /// As [`Driver::resume`].
    pub fn run_until(&mut self, until: DateTime<Utc>) -> Result<Report, DriverError> {
        let mut report = self.resume()?;
        while let Some(wake) = self.instance.poll_timeout().filter(|w| *w <= until) {
            self.clock.sleep_until(wake);
            report.absorb(self.tick()?);
            report.absorb(self.run_effects()?);
            if self.instance.poll_timeout().is_some_and(|next| next <= wake) {
                break; // a timer that does not move on; never spin
            }
        }
        self.clock.sleep_until(until);
        Ok(report)
    }

    /// Sleeps until the next timer and handles it; an empty report if the instance has none.
    ///
    /// # Errors
    /// As [`Driver::resume`].
    pub fn wait(&mut self) -> Result<Report, DriverError> {
        let mut report = self.resume()?;
        if let Some(wake) = self.instance.poll_timeout() {
            self.clock.sleep_until(wake);
            report.absorb(self.tick()?);
            report.absorb(self.run_effects()?);
        }
        Ok(report)
    }

    /// Each person on the instance's roster with the engine's verdict on their acting now
    /// (`now`: the host's reading of the clock) on the node the instance waits at: see
    /// [`who_can_act`]. Alice, who completed `E`, is refused `F` when `F` is `distinct_from: [E]`.
    #[must_use]
    pub fn who_can_act(&self, now: DateTime<Utc>) -> Vec<CanAct> {
        who_can_act(&self.instance, &self.roster, now.max(self.instance.latest_instant()))
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

    /// The roster in force.
    #[must_use]
    pub fn roster(&self) -> &Roster {
        &self.roster
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

    /// How many effects a runner holds ([`Driver::take_due_effects`]) and has not acknowledged
    /// yet.
    #[must_use]
    pub fn effects_in_flight(&self) -> usize {
        self.in_flight.len()
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
