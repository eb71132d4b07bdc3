//! Performing effects: handing them out ([`Driver::take_due_effects`]), a runner for them
//! ([`Driver::effect_runner`]), acknowledging them ([`Driver::complete_effect`]), and all three
//! in a row for synchronous hosts ([`Driver::run_effects`]).

use std::sync::Arc;

use super::{
    Clock, Done, Driver, DriverError, EffectOutcome, EffectRun, EffectRunner, LogEntry, LogKind, Report, Step,
};
use crate::effect::{Effect, EffectKey};
use crate::event::{Event, Reporter};
use crate::journal::Store;

impl<S: Store, C: Clock> Driver<S, C> {
    /// Journals what is not journaled yet (after an interrupted start) and performs every
    /// pending effect: [`Driver::run_effects`].
    ///
    /// # Errors
    /// As [`Driver::run_effects`].
    pub fn resume(&mut self) -> Result<Report, DriverError> {
        self.run_effects()
    }

    /// Performs every pending effect, one after the other, and whatever their results cause,
    /// acknowledging each in the journal: the convenience of a synchronous host (and the
    /// command line), which holds the driver meanwhile, retry waits included (on the clock).
    /// A host that must not hold the instance while an adapter works uses
    /// [`Driver::take_due_effects`], an [`EffectRunner`] and [`Driver::complete_effect`]
    /// instead (the `tokio` feature's service does).
    ///
    /// # Errors
    /// [`DriverError::Journal`] if the journal fails (the driver then holds what is durable;
    /// the effect runs again, under the same key, at the next call), [`DriverError::Broken`]
    /// after a failure it could not recover from.
    pub fn run_effects(&mut self) -> Result<Report, DriverError> {
        self.begin();
        self.sync()?;
        let runner = self.effect_runner();
        let mut report = std::mem::take(&mut self.report);
        loop {
            let due = self.take_due_effects();
            if due.is_empty() {
                break;
            }
            for effect in due {
                let outcome = runner.perform(&effect, &self.clock);
                report.absorb(self.complete_effect(&effect.key, outcome)?);
            }
        }
        report.pending = self.pending.iter().cloned().collect();
        Ok(report)
    }

    /// Hands out the pending effects to perform (in order), marking them in flight: they are
    /// not handed out again by this driver until [`Driver::complete_effect`] acknowledges them
    /// (or fails to). Perform them with an [`EffectRunner`] ([`Driver::effect_runner`])
    /// without holding the driver. An effect in flight when the process stops is not lost:
    /// unacknowledged, it is pending again when the journal is reopened, under the same key.
    pub fn take_due_effects(&mut self) -> Vec<Effect> {
        let mut due = Vec::with_capacity(self.pending.len());
        while let Some(effect) = self.pending.pop_front() {
            if self.acked.contains(&effect.key) || self.in_flight.contains_key(&effect.key) {
                continue;
            }
            self.in_flight.insert(effect.key.clone(), effect.clone());
            due.push(effect);
        }
        due
    }

    /// A runner for this driver's effects: its adapters, channels, retry policy and the roster
    /// in force (whose forge logins reviews are), shared (cheap to clone, and usable while
    /// another thread holds the driver).
    #[must_use]
    pub fn effect_runner(&self) -> EffectRunner {
        let roster = Arc::new(self.roster.clone());
        EffectRunner::new(Arc::clone(&self.adapters), Arc::clone(&self.program.channels), self.config.retry, roster)
    }

    /// Acknowledges the effect with `key`, which ended as `outcome`: journals its `done` entry
    /// together with its result for a waiting action (an [`Event::ActionResult`] reported by
    /// [`Reporter::Effect`]), in one append. An effect acknowledged already (by another
    /// process, say) is left alone: an empty report. The instance refusing the result (it has
    /// moved on) is logged ([`LogKind::ResultRefused`]), not an error.
    ///
    /// # Errors
    /// As [`Driver::run_effects`]; after a journal failure the effect is pending again.
    pub fn complete_effect(&mut self, key: &EffectKey, outcome: EffectOutcome) -> Result<Report, DriverError> {
        self.begin();
        self.sync()?;
        let effect = match self.in_flight.remove(key) {
            Some(effect) => effect,
            None => match self.pending.iter().position(|e| &e.key == key).and_then(|i| self.pending.remove(i)) {
                Some(effect) => effect,
                None => return Ok(self.finish()),
            },
        };
        if self.acked.contains(key) {
            return Ok(self.finish());
        }
        let kept = effect.clone();
        if let Err(e) = self.acknowledge(effect, outcome) {
            // Not lost: pending again (a reload after a journal failure re-queued it already).
            if !self.acked.contains(key) && !self.pending.iter().any(|p| &p.key == key) {
                self.pending.push_front(kept);
            }
            return Err(e);
        }
        Ok(self.finish())
    }

    fn acknowledge(&mut self, effect: Effect, outcome: EffectOutcome) -> Result<(), DriverError> {
        let EffectOutcome { status, result, log } = outcome;
        self.log.extend(log.iter().cloned());
        self.report.log.extend(log);
        let at = self.now()?;
        let done = Done { key: effect.key.clone(), at, status: status.clone() };
        let step = match result {
            Some(outcome) => Step::Event(Event::ActionResult {
                node: effect.node.clone(),
                outcome,
                reporter: Reporter::Effect { key: effect.key.clone() },
            }),
            None => Step::Nothing,
        };
        if let Some(error) = self.apply(&step, Some(&done))? {
            let kind = LogKind::ResultRefused { error: Box::new(error) };
            let entry = LogEntry { at, key: effect.key.clone(), node: effect.node.clone(), kind };
            self.log.push(entry.clone());
            self.report.log.push(entry);
        }
        self.report.effects.push(EffectRun { effect, status });
        Ok(())
    }
}
