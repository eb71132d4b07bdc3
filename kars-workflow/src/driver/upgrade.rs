//! Moving a journaled instance to a new spec version: the plan, then one append holding the
//! new spec's text (with its team, when that changed) and the engine's upgrade record. The
//! upgrade record decides: a crash that tears the append after the text leaves the instance
//! under the old spec and roster, never a mix.

use std::sync::Arc;

use kars_spec::Fingerprint;

use super::load::{EntryRef, Versions};
use super::record::{SpecText, SpecVersion};
use super::{Appended, Driver, DriverError, Entry, Program, Report};
use crate::driver::clock::Clock;
use crate::instance::{UpgradePlan, UpgradeWhen};
use crate::journal::{JournalError, Store};
use crate::workflow::Workflow;

/// Who asks for an upgrade and when it should take effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The new spec's text, journaled so that replay needs no file.
    pub spec: SpecText,
    /// Who upgrades: a person the host identified (never a name the caller typed).
    pub by: String,
    /// When it takes effect; `None`: at once when it is cosmetic, at the next cycle otherwise
    /// ([`UpgradePlan::default_when`]).
    pub when: Option<UpgradeWhen>,
}

impl<S: Store, C: Clock> Driver<S, C> {
    /// What moving to `next` would do, writing nothing: whether it is cosmetic, and why it
    /// could not take effect in the middle of the running cycle.
    #[must_use]
    pub fn plan_upgrade(&self, next: &Program) -> UpgradePlan {
        self.instance.plan_upgrade(&next.workflow)
    }

    /// Every spec version the instance ran under (the one it started with, and each upgrade's).
    #[must_use]
    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// The spec version scheduled for the next cycle, if any.
    #[must_use]
    pub fn upcoming(&self) -> Option<&Arc<Workflow>> {
        self.instance.upcoming()
    }

    /// Moves the instance to `next` (compiled from `request.spec`) at the clock's time, after
    /// the timers due by then. One append holds the spec's text, the upgrade and, when the new
    /// spec's team differs from the roster in force, the new roster; from then on the driver
    /// runs `next` (opening the journal again needs `next`, or its text from the journal).
    ///
    /// # Errors
    /// [`DriverError::Refused`] with [`crate::EngineError::UpgradeBlocked`] when
    /// [`UpgradeWhen::Now`] would invalidate the running cycle, or
    /// [`crate::EngineError::UpgradeUnchanged`] when the instance already runs `next`;
    /// [`DriverError::BadHeader`] when `request.spec` is not `next`'s text; journal failures.
    pub fn upgrade(&mut self, next: &Program, request: &UpgradeRequest) -> Result<Report, DriverError> {
        self.begin();
        self.sync()?;
        self.check_text(next, &request.spec)?;
        // Timers due by now run first, journaled as their own input.
        self.timers()?;
        let mut attempt = 0;
        loop {
            let now = self.now()?;
            self.staged.clear();
            let when = request.when.unwrap_or_else(|| self.instance.plan_upgrade(&next.workflow).default_when());
            if let Err(e) = self.instance.upgrade(Arc::clone(&next.workflow), when, now) {
                self.instance.discard_refused();
                return Err(DriverError::Refused(Box::new(e)));
            }
            self.stage_notices();
            let version = SpecVersion {
                at: now,
                by: request.by.clone(),
                fingerprint: next.workflow.fingerprint(),
                spec: request.spec.clone(),
                roster: (next.default_roster != self.roster).then(|| next.default_roster.clone()),
            };
            match self.append_upgrade(&version) {
                Ok(()) => {
                    self.program = next.clone();
                    self.versions.insert(Arc::clone(&next.workflow));
                    if let Some(roster) = version.roster {
                        self.roster = roster;
                    }
                    return Ok(self.finish());
                }
                Err(DriverError::Journal(JournalError::Conflict { .. })) if attempt < self.config.conflict_retries => {
                    attempt += 1;
                    self.reload()?;
                }
                Err(e) => {
                    self.reload()?;
                    return Err(e);
                }
            }
        }
    }

    /// Refuses a spec text that is not the program's.
    fn check_text(&self, next: &Program, spec: &SpecText) -> Result<(), DriverError> {
        let bad = |detail: String| DriverError::BadHeader { id: self.id.clone(), detail };
        let checked =
            kars_spec::load(&spec.text, &spec.origin).map_err(|r| bad(format!("the new spec does not load: {r}")))?;
        let fingerprint: Fingerprint = checked.fingerprint();
        if fingerprint != next.workflow.fingerprint() {
            return Err(bad(format!(
                "the new spec's text has fingerprint `{fingerprint}`, but the program was compiled from `{}`",
                next.workflow.fingerprint()
            )));
        }
        Ok(())
    }

    /// Appends the spec text (with the team) and the upgrade record in one append.
    fn append_upgrade(&mut self, version: &SpecVersion) -> Result<(), DriverError> {
        let bad = |e: serde_json::Error| DriverError::BadRecord {
            id: self.id.clone(),
            index: usize::try_from(self.version).unwrap_or(usize::MAX),
            detail: e.to_string(),
        };
        let records: Vec<crate::Record> = self.instance.history().since(self.journaled).collect();
        debug_assert_eq!(records.len(), 1, "the upgrade is the only unjournaled record");
        let mut entries = vec![Entry::Spec(version.clone())];
        entries.extend(records.into_iter().map(Entry::Input));
        let payloads = entries
            .iter()
            .map(|entry| {
                serde_json::to_vec(&match entry {
                    Entry::Spec(v) => EntryRef::Spec(v),
                    Entry::Input(r) => EntryRef::Input(r),
                    Entry::Roster(c) => EntryRef::Roster(c),
                    Entry::Done(d) => EntryRef::Done(d),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let from = self.version;
        self.version = self.store.append(&self.id, from, &refs)?;
        for (version, entry) in (from + 1..).zip(entries) {
            self.report.appended.push(Appended { version, entry });
        }
        self.report.notices.append(&mut self.staged);
        self.journaled = self.instance.history().next_seq();
        self.release_journaled();
        self.drain_effects();
        Ok(())
    }
}
