//! What a driver is built from and how it behaves: the compiled [`Program`], the
//! [`DriverConfig`] and its rules, the [`Parts`] and a new instance's [`Start`].

use std::collections::BTreeMap;
use std::sync::Arc;

use kars_spec::{CheckedSpec, RoleId};

use super::ops::{Adapters, RetryPolicy};
use super::record::{ClockMode, SpecText};
use super::roster::Roster;
#[cfg(doc)]
use super::{Driver, DriverError, read_journal};
use crate::error::CompileError;
#[cfg(doc)]
use crate::instance::Instance;
use crate::workflow::Workflow;

/// A compiled workflow with what the driver needs from the spec besides: channel addresses,
/// the default roster and who may change a roster.
#[derive(Debug, Clone)]
pub struct Program {
    pub(super) workflow: Arc<Workflow>,
    pub(super) channels: Arc<BTreeMap<String, String>>,
    pub(super) default_roster: Roster,
    pub(super) team_managed_by: Vec<RoleId>,
}

impl Program {
    /// Compiles `spec`.
    ///
    /// # Errors
    /// A [`CompileError`] when the spec breaks a rule the engine relies on.
    pub fn new(spec: &CheckedSpec) -> Result<Self, CompileError> {
        let workflow = Arc::new(Workflow::compile(spec)?);
        let channels = Arc::new(spec.spec().channels.iter().map(|(id, c)| (id.to_string(), c.name.clone())).collect());
        let default_roster = Roster::from_spec(spec.spec());
        let team_managed_by = spec.spec().team_managed_by.clone();
        Ok(Self { workflow, channels, default_roster, team_managed_by })
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

    /// The spec's `team:` as a roster.
    #[must_use]
    pub fn default_roster(&self) -> &Roster {
        &self.default_roster
    }

    /// The roles that may change a running instance's roster (the spec's `team_managed_by`).
    #[must_use]
    pub fn team_managed_by(&self) -> &[RoleId] {
        &self.team_managed_by
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

/// What the driver does when its clock reads earlier than the latest instant the instance
/// accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Earlier {
    /// Use the latest instant instead (a system clock stepped back a little).
    #[default]
    Hold,
    /// Refuse the call with [`DriverError::ClockBehind`] (a rehearsal's clock is a person's
    /// word, and time must not go backwards in the record).
    Refuse,
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
    /// A clock that reads earlier than the instance's latest instant.
    pub earlier: Earlier,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            refusals: Refusals::Discard,
            conflict_retries: 3,
            memory: HistoryInMemory::default(),
            earlier: Earlier::default(),
        }
    }
}

impl DriverConfig {
    /// The defaults for an instance whose clock is `mode`'s: a real clock stepped back holds
    /// at the latest recorded instant ([`Earlier::Hold`]); a rehearsal's clock is the caller's
    /// word and may never go back ([`Earlier::Refuse`]).
    #[must_use]
    pub fn for_clock(mode: ClockMode) -> Self {
        let earlier = match mode {
            ClockMode::System => Earlier::Hold,
            ClockMode::Rehearsal => Earlier::Refuse,
        };
        Self { earlier, ..Self::default() }
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

/// What a new instance's journal header holds besides the engine's start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Start {
    /// The spec's text, stored so that later commands need no spec file.
    pub spec: Option<SpecText>,
    /// A real instance or a rehearsal.
    pub clock: ClockMode,
    /// The roster; `None`: the spec's `team:`.
    pub roster: Option<Roster>,
}
