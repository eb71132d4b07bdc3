//! `Worker` (feature `postgres`): one replica sharing a [`PgStore`] with others. It claims the
//! instances that are due (a timer at or before the now of the clock it drives with, an effect not
//! acknowledged) under a lease, drives each (its timers, then its effects) through a
//! [`FencedStore`] so that nothing is written once the lease is lost, and releases it with the
//! instance's next wake-up. A heartbeat renews the leases while it works; a replica that stops
//! (crashed, paused, cut off) stops renewing, its leases expire on the database's clock, and
//! another replica claims the instances; its late writes are refused
//! ([`PgError::LeaseLost`](crate::journal::postgres::PgError::LeaseLost)).
//!
//! Between claims a worker waits for a hint (a `NOTIFY` that an append sends when it sets a
//! timer or emits an effect; see [`PgStore::listen`]) or [`WorkerConfig::poll`], whichever
//! comes first: hints are lost while the listening connection is down, so polling never stops,
//! and a reconnect wakes the worker too.
//!
//! The effects of an instance whose replica stopped midway run again on the next replica under
//! the same idempotency keys (at least once); adapters drop the duplicates by key.
//!
//! Once a lease (every third heartbeat), a running worker tries [`PgStore::maintain`]: the
//! replica that gets the advisory lock frees the leases that expired; the others skip it.
//!
//! Rehearsals (`ClockMode::Rehearsal`) are not driven: their clock is a person's word. A
//! claimed rehearsal (one left with an effect pending) is held until its lease expires.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::InstanceId;
use crate::driver::ClockMode;
use crate::driver::{
    Adapters, Clock, Driver, DriverConfig, DriverError, Journaled, Parts, Program, Report, read_journal,
};
use crate::journal::postgres::{FencedStore, Lease, ReplicaId};
use crate::journal::{JournalError, PgStore};

/// What a host gives a worker for each claimed instance: its program, adapters and driver
/// configuration, from its journal (whose header may hold the spec's text).
pub type Host = dyn Fn(&Journaled) -> Result<(Program, Adapters, DriverConfig), DriverError> + Send + Sync;

/// How a worker claims and holds instances.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// How long a claim holds without a heartbeat (default 30 s); renewed every third of it.
    pub lease: Duration,
    /// How many instances one claim takes at most (default 16).
    pub batch: u32,
    /// How long [`Worker::run`] sleeps when nothing was due (default 1 s).
    pub poll: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self { lease: Duration::from_secs(30), batch: 16, poll: Duration::from_secs(1) }
    }
}

/// What a worker did with one claimed instance.
#[derive(Debug)]
pub struct Worked {
    /// The instance.
    pub instance: InstanceId,
    /// The lease it held.
    pub epoch: u64,
    /// What the driver did, or why it failed (a lost lease among others).
    pub outcome: Result<Report, DriverError>,
}

/// One replica: see the [module docs](self).
pub struct Worker<C: Clock + Clone> {
    store: PgStore,
    replica: ReplicaId,
    config: WorkerConfig,
    clock: C,
    host: Arc<Host>,
}

impl<C: Clock + Clone> std::fmt::Debug for Worker<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("replica", &self.replica).field("config", &self.config).finish_non_exhaustive()
    }
}

impl<C: Clock + Clone> Worker<C> {
    /// A replica with a fresh [`ReplicaId`] over `store`, driving instances on `clock` with
    /// what `host` gives for each.
    pub fn new(store: PgStore, config: WorkerConfig, clock: C, host: Arc<Host>) -> Self {
        Self { store, replica: ReplicaId::fresh(), config, clock, host }
    }

    /// This replica's id.
    #[must_use]
    pub fn replica(&self) -> &ReplicaId {
        &self.replica
    }

    /// Claims one batch of due instances, drives each and releases it; returns what it did
    /// (empty: nothing was due).
    ///
    /// # Errors
    /// [`JournalError`] when claiming fails; a failure of one instance is in its [`Worked`].
    pub fn run_once(&self) -> Result<Vec<Worked>, JournalError> {
        self.run_batch(&AtomicBool::new(false))
    }

    /// As [`run_once`](Self::run_once), but once `stop` is set the instances of the batch not
    /// yet driven are given up ([`PgStore::abandon`]) instead: the instance in hand is
    /// finished and released, the others are free for another replica at once.
    fn run_batch(&self, stop: &AtomicBool) -> Result<Vec<Worked>, JournalError> {
        // Due by the clock the drivers tick with: an instance claimed earlier would fire nothing.
        let now = Some(self.clock.now());
        let leases = self.store.claim_due_by(&self.replica, self.config.batch, self.config.lease, now)?;
        let mut worked = Vec::with_capacity(leases.len());
        for lease in leases {
            if stop.load(Ordering::SeqCst) {
                // Not driven: a failed abandon leaves the lease to expire, as a crash would.
                let _ = self.store.abandon(&lease);
                continue;
            }
            let epoch = lease.epoch;
            let instance = lease.instance.clone();
            let outcome = self.drive(lease);
            worked.push(Worked { instance, epoch, outcome });
        }
        Ok(worked)
    }

    /// Runs until `stop` is set: claims, drives, sleeps [`WorkerConfig::poll`] when nothing was
    /// due, with a heartbeat thread renewing the leases meanwhile. Leases are released as each
    /// instance is done; once `stop` is set the instance in hand is finished and the rest of
    /// the batch given up, so a graceful stop leaves no lease behind.
    ///
    /// # Errors
    /// [`JournalError`] when listening cannot start; a failed claim is tried again.
    pub fn run(&self, stop: &AtomicBool) -> Result<(), JournalError> {
        self.run_with(stop, &|_| {})
    }

    /// As [`run`](Self::run), telling `worked` what the replica did with each instance it
    /// drove, once its lease is released (a host that also holds the instances in memory, as
    /// `kars serve` does, catches up with the writes).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub fn run_with(&self, stop: &AtomicBool, worked: &(dyn Fn(&Worked) + Sync)) -> Result<(), JournalError> {
        let beating = AtomicBool::new(true);
        std::thread::scope(|scope| {
            let (store, replica, lease, beating) = (&self.store, &self.replica, self.config.lease, &beating);
            scope.spawn(move || {
                let mut beats = 0u32;
                while beating.load(Ordering::SeqCst) {
                    sleep_unless(lease / 3, beating);
                    // A failed heartbeat is not fatal: the writes check the lease themselves.
                    let _ = store.renew(replica, lease);
                    beats = beats.wrapping_add(1);
                    if beats.is_multiple_of(3) && beating.load(Ordering::SeqCst) {
                        // Once a lease, one replica at a time; a failed pass is tried again.
                        let _ = store.maintain();
                    }
                }
            });
            let result = (|| {
                let wakeups = self.store.listen()?;
                while !stop.load(Ordering::SeqCst) {
                    // A claim that failed (the database away longer than the store retries)
                    // is tried again after the wait: a replica outlives an outage.
                    let batch = self.run_batch(stop).unwrap_or_default();
                    batch.iter().for_each(worked);
                    if batch.is_empty() {
                        // Until a hint (an append that may have made something due, or the
                        // listener reconnecting), the poll interval, or a stop.
                        let mut waited = Duration::ZERO;
                        let step = self.config.poll.min(Duration::from_millis(100));
                        while waited < self.config.poll && !stop.load(Ordering::SeqCst) && !wakeups.wait(step) {
                            waited += step;
                        }
                    }
                }
                Ok(())
            })();
            beating.store(false, Ordering::SeqCst);
            result
        })
    }

    fn drive(&self, lease: Lease) -> Result<Report, DriverError> {
        let fenced: FencedStore = self.store.fenced(lease.clone());
        let result = (|| {
            let journal = read_journal(&fenced, &lease.instance)?;
            if journal.header.clock == ClockMode::Rehearsal {
                // A rehearsal's clock is a person's word: no replica drives it. It is paused
                // for a lease, so it is not claimed again at once.
                return Ok((Report::default(), None));
            }
            let (program, adapters, config) = (self.host)(&journal)?;
            let parts = Parts { store: fenced.clone(), clock: self.clock.clone(), adapters, config };
            let mut driver = Driver::open_read(parts, &program, journal)?;
            let mut report = driver.tick()?;
            report.absorb(driver.run_effects()?);
            Ok((report, Some((driver.next_wake(), driver.version()))))
        })();
        match result {
            Ok((report, Some((next, seen)))) => {
                self.store.release(&lease, next, seen)?;
                Ok(report)
            }
            Ok((report, None)) => {
                self.store.abandon_for(&lease, self.config.lease)?;
                Ok(report)
            }
            Err(e) => {
                // Claimed again after a lease's pause (its state is durable); a pause, unlike
                // the lease, is not renewed by this replica's heartbeat. A failed abandon leaves
                // the lease to expire, as a crash would.
                let _ = self.store.abandon_for(&lease, self.config.lease);
                Err(e)
            }
        }
    }
}

/// A flag to sleep on: true while the sleep may go on.
trait Running {
    fn running(&self) -> bool;
}

impl Running for AtomicBool {
    fn running(&self) -> bool {
        self.load(Ordering::SeqCst)
    }
}

/// Sleeps `total` in short steps, returning early once `flag` says stop.
fn sleep_unless(total: Duration, flag: &dyn Running) {
    let step = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < total && flag.running() {
        std::thread::sleep(step.min(total - slept));
        slept += step;
    }
}
