//! Creating and opening a driver: one journal read and one engine replay, then what is
//! pending is queued; reloading after a conflict or a failure does the same.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::Driver;
use super::clock::Clock;
use super::record::{JOURNAL_FORMAT, JournalHeader, SpecText};
use super::{DriverError, Journaled, NOTICE_CAPACITY, Parts, Program, Report, Roster, Start, load, read_journal};
use crate::effect::EffectKey;
use crate::event::InstanceId;
use crate::instance::Instance;
use crate::journal::{JournalError, Store};

impl<S: Store, C: Clock> Driver<S, C> {
    /// Starts instance `id` of `program` at the clock's time: creates its journal (with `spec`
    /// in the header when given) and journals the start; its first effects are pending
    /// ([`Driver::run_effects`] performs them). A real
    /// instance with the spec's roster; see [`Driver::create_with`].
    ///
    /// # Errors
    /// [`DriverError::Journal`] if the instance exists or the journal fails.
    pub fn create(
        parts: Parts<S, C>,
        program: &Program,
        id: &InstanceId,
        spec: Option<SpecText>,
    ) -> Result<Self, DriverError> {
        Self::create_with(parts, program, id, Start { spec, ..Start::default() }).map(|(driver, _)| driver)
    }

    /// Starts instance `id` of `program` at the clock's time with the header `start`, and
    /// returns what the start did (its record; its first effects, pending).
    ///
    /// # Errors
    /// [`DriverError::Journal`] if the instance exists or the journal fails.
    pub fn create_with(
        parts: Parts<S, C>,
        program: &Program,
        id: &InstanceId,
        start: Start,
    ) -> Result<(Self, Report), DriverError> {
        let now = parts.clock.now();
        let options = crate::instance::Options { notice_capacity: NOTICE_CAPACITY };
        let instance = Instance::start_with(Arc::clone(&program.workflow), id.clone(), now, options);
        let roster = start.roster.unwrap_or_else(|| program.default_roster.clone());
        let header = JournalHeader {
            format: JOURNAL_FORMAT,
            history: instance.history().header.clone(),
            clock: start.clock,
            roster: Some(roster.clone()),
            spec: start.spec,
        };
        let bytes = serde_json::to_vec(&header)
            .map_err(|e| DriverError::BadHeader { id: id.clone(), detail: e.to_string() })?;
        parts.store.create(id, &bytes)?;
        let mut driver = Self::assemble(parts, program, id.clone(), header, instance, roster);
        driver.versions = load::Versions::starting(&program.workflow);
        driver.begin();
        driver.sync()?;
        let report = driver.finish();
        Ok((driver, report))
    }

    /// Opens instance `id` from its journal: reads it once, replays its history once, and
    /// finds the effects that were emitted but not acknowledged (they run at the next call,
    /// or [`Driver::resume`]).
    ///
    /// # Errors
    /// [`DriverError::SpecChanged`] when the journal was written for another spec;
    /// [`DriverError::Journal`], [`DriverError::BadHeader`], [`DriverError::BadRecord`] or
    /// [`DriverError::Replay`] when the journal cannot be read back.
    pub fn open(parts: Parts<S, C>, program: &Program, id: &InstanceId) -> Result<Self, DriverError> {
        let journal = read_journal(&parts.store, id)?;
        Self::open_read(parts, program, journal)
    }

    /// Opens an instance from a journal the host has read already with [`read_journal`] (to
    /// compile the spec its header stores, say): replays it without reading it again.
    ///
    /// # Errors
    /// As [`Driver::open`], but for reading.
    pub fn open_read(parts: Parts<S, C>, program: &Program, journal: Journaled) -> Result<Self, DriverError> {
        let id = journal.id.clone();
        let load::Loaded { header, instance, version, journaled, acked, roster, versions } =
            load::load(program, journal)?;
        let mut driver = Self::assemble(parts, program, id, header, instance, roster);
        driver.versions = versions;
        driver.settle(version, journaled, acked);
        Ok(driver)
    }

    /// Opens instance `id` if its journal exists, else starts it with `start` (as
    /// [`Driver::create_with`]): what a service does at boot. The report is the start's (empty
    /// when the instance existed).
    ///
    /// # Errors
    /// As [`Driver::open`] and [`Driver::create_with`]; should another process create the
    /// instance between the read and the create, [`JournalError::AlreadyExists`] (call again).
    pub fn open_or_create(
        parts: Parts<S, C>,
        program: &Program,
        id: &InstanceId,
        start: Start,
    ) -> Result<(Self, Report), DriverError> {
        match read_journal(&parts.store, id) {
            Ok(journal) => Self::open_read(parts, program, journal).map(|driver| (driver, Report::default())),
            Err(DriverError::Journal(JournalError::NotFound { .. })) => Self::create_with(parts, program, id, start),
            Err(e) => Err(e),
        }
    }

    fn assemble(
        parts: Parts<S, C>,
        program: &Program,
        id: InstanceId,
        header: JournalHeader,
        mut instance: Instance,
        roster: Roster,
    ) -> Self {
        instance.set_notice_capacity(NOTICE_CAPACITY);
        let Parts { store, clock, adapters, config } = parts;
        Self {
            store,
            clock,
            adapters: Arc::new(adapters),
            config,
            program: program.clone(),
            id,
            header,
            instance,
            roster,
            version: 0,
            journaled: 0,
            acked: BTreeSet::new(),
            pending: VecDeque::new(),
            in_flight: BTreeMap::new(),
            log: Vec::new(),
            report: Report::default(),
            staged: Vec::new(),
            broken: false,
            versions: load::Versions::default(),
        }
    }

    pub(super) fn install(&mut self, loaded: load::Loaded) {
        let load::Loaded { header, instance, version, journaled, acked, roster, versions } = loaded;
        self.instance = instance;
        self.versions = versions;
        self.instance.set_notice_capacity(NOTICE_CAPACITY);
        self.header = header;
        self.roster = roster;
        self.settle(version, journaled, acked);
    }

    /// Takes the journal's position after a load, and queues the unacknowledged effects.
    fn settle(&mut self, version: u64, journaled: u64, acked: BTreeSet<EffectKey>) {
        // What replay recomputed was reported when it first happened.
        while self.instance.poll_notice().is_some() {}
        self.version = version;
        self.journaled = journaled;
        self.acked = acked;
        self.release_journaled();
        self.pending.clear();
        if self.is_synced() {
            self.drain_effects();
        }
    }

    /// Catches up with writes another process made (a second replica on a shared store, the
    /// command line on the same journal): when the store's version differs from the driver's,
    /// rebuilds from the journal. Whether it did.
    ///
    /// # Errors
    /// [`DriverError::Journal`] when the store cannot be read; a journal that no longer loads
    /// leaves the driver broken, as after any failed reload.
    pub fn catch_up(&mut self) -> Result<bool, DriverError> {
        if self.store.version(&self.id)? == self.version {
            return Ok(false);
        }
        self.reload()?;
        Ok(true)
    }

    /// Rebuilds everything from the journal (one read, one replay); on failure the driver is
    /// broken.
    pub(super) fn reload(&mut self) -> Result<(), DriverError> {
        let loaded = read_journal(&self.store, &self.id).and_then(|journal| load::load(&self.program, journal));
        match loaded {
            Ok(loaded) => {
                self.install(loaded);
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }
}
