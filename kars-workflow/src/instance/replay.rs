//! Replay: rebuilding an instance from its history, using the recorded instants instead of
//! resolving week times again.

use std::collections::VecDeque;
use std::sync::Arc;

use super::Instance;
use crate::error::{EngineError, Mismatch};
use crate::history::{History, Input, Resolved};
use crate::workflow::Workflow;

/// The recorded instants of the input being replayed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cursor {
    queue: VecDeque<Resolved>,
    mismatch: bool,
}

impl Cursor {
    fn of(resolved: &[Resolved]) -> Box<Self> {
        Box::new(Self { queue: resolved.iter().cloned().collect(), mismatch: false })
    }
}

/// What watches a replay: called after each record with the record and the instance.
type Observer<'a> = dyn FnMut(&crate::history::Record, &mut Instance) + 'a;

/// Whether a recorded value lies in the engine's range; a forged history could hold any.
fn sane(r: &Resolved) -> bool {
    use crate::gate::{date_in_range, in_range};
    match r {
        Resolved::Cycle { monday } => date_in_range(*monday),
        Resolved::Deadline { at, .. } | Resolved::Gate { at, .. } | Resolved::NextCycle { at } => in_range(*at),
        Resolved::Calendar { last, next } => last.iter().all(|l| in_range(*l)) && next.is_none_or(in_range),
        Resolved::Branch(_) => true,
    }
}

impl Instance {
    /// While replaying, the next recorded instant if it is the kind asked for; `None` (and a
    /// mismatch noted) otherwise. Live, always `None`.
    pub(crate) fn recorded(&mut self, fits: impl Fn(&Resolved) -> bool) -> Option<Resolved> {
        let cursor = self.replay.as_mut()?;
        match cursor.queue.pop_front() {
            Some(r) if fits(&r) && sane(&r) => Some(r),
            _ => {
                cursor.mismatch = true;
                None
            }
        }
    }

    /// Records what happened to a parallel branch; while replaying, checks that the history
    /// says the same at this point (a mismatch fails the replay).
    pub(crate) fn log_branch(&mut self, event: crate::history::BranchEvent) {
        if let Some(cursor) = self.replay.as_mut() {
            match cursor.queue.pop_front() {
                Some(Resolved::Branch(recorded)) if recorded == event => {}
                _ => cursor.mismatch = true,
            }
        }
        self.history.resolve(Resolved::Branch(event));
    }

    /// Rebuilds an instance from its history: the same inputs at the same instants, with the
    /// recorded gate, deadline, cycle and calendar instants. The result equals the live instance.
    ///
    /// # Errors
    /// Returns [`EngineError::ReplayMismatch`] when the history was recorded with another spec
    /// (fingerprint), does not begin with the start (a history whose older records were
    /// released by [`Instance::release_history`] gives [`Mismatch::Partial`]: read it whole from
    /// the store), or an input's recorded verdict or resolved instants do not reproduce.
    pub fn replay(workflow: Arc<Workflow>, history: &History) -> Result<Self, EngineError> {
        Self::replay_observed(workflow, history, super::Options::default(), &|_| None, None)
    }

    /// [`Instance::replay`] that lets the caller watch: `after(record, instance)` runs after
    /// each record is replayed, so an observer drains the notices (turned on by `options`)
    /// and effects that record caused. This is how a host shows a history with its
    /// transitions without driving a second instance: the recorded instants are used, never
    /// resolved again.
    ///
    /// # Errors
    /// As [`Instance::replay`].
    pub fn replay_with(
        workflow: Arc<Workflow>,
        history: &History,
        options: super::Options,
        after: impl FnMut(&crate::history::Record, &mut Instance),
    ) -> Result<Self, EngineError> {
        Self::replay_versions(workflow, history, options, &|_| None, after)
    }

    /// [`Instance::replay_with`] for a history that moved between spec versions
    /// ([`Instance::upgrade`]): `workflow` is the spec the instance started with, and
    /// `versions` gives the workflow of each fingerprint an upgrade record names. Each part of
    /// the history replays under the spec that was in force for it.
    ///
    /// # Errors
    /// As [`Instance::replay`]; [`Mismatch::UnknownVersion`] when `versions` does not resolve
    /// a fingerprint an upgrade names (or resolves it to another spec).
    pub fn replay_versions(
        workflow: Arc<Workflow>,
        history: &History,
        options: super::Options,
        versions: &dyn Fn(kars_spec::Fingerprint) -> Option<Arc<Workflow>>,
        mut after: impl FnMut(&crate::history::Record, &mut Instance),
    ) -> Result<Self, EngineError> {
        Self::replay_observed(workflow, history, options, versions, Some(&mut after))
    }

    /// The replay; records are rebuilt whole only for an observer (without one, each input is
    /// rebuilt and handed to the engine, as a live host would).
    fn replay_observed(
        workflow: Arc<Workflow>,
        history: &History,
        options: super::Options,
        versions: &dyn Fn(kars_spec::Fingerprint) -> Option<Arc<Workflow>>,
        mut after: Option<&mut Observer<'_>>,
    ) -> Result<Self, EngineError> {
        let mismatch = |seq: Option<u64>, mismatch: Mismatch| EngineError::ReplayMismatch { seq, mismatch };
        if history.header.fingerprint != workflow.fingerprint {
            let m = Mismatch::Fingerprint { recorded: history.header.fingerprint, workflow: workflow.fingerprint };
            return Err(mismatch(None, m));
        }
        if !history.is_whole() {
            return Err(mismatch(None, Mismatch::Partial { first_seq: history.first_seq() }));
        }
        if !matches!(history.input_at(0), Some(Input::Start)) {
            return Err(mismatch(Some(0), Mismatch::NoStart));
        }
        let started = history.header.started_at;
        let cursor = Some(Cursor::of(history.resolved_at(0)));
        let mut instance = Self::begin(workflow, history.header.instance.clone(), started, cursor, options);
        instance.check_replayed(0)?;
        if let (Some(after), Some(record)) = (after.as_mut(), history.record(0)) {
            after(&record, &mut instance);
        }
        for i in 1..history.len() {
            let seq = i as u64;
            let (Some(input), Some(at)) = (history.input_at(i), history.at_of(i)) else {
                break;
            };
            // An observer gets the record as it was; the engine gets the input.
            let observed = after.is_some().then(|| history.record(seq)).flatten();
            instance.replay = Some(Cursor::of(history.resolved_at(i)));
            let before = instance.history.len();
            match input {
                Input::Start => return Err(mismatch(Some(seq), Mismatch::NoStart)),
                // The verdict is compared below through the rebuilt record.
                Input::Event(event) => {
                    let _ = instance.handle_event(event, at);
                }
                Input::Timeout => instance.handle_timeout(at),
                Input::Upgrade { to, when } => {
                    let Some(next) = versions(to).filter(|w| w.fingerprint == to) else {
                        return Err(mismatch(Some(seq), Mismatch::UnknownVersion { fingerprint: to }));
                    };
                    let _ = instance.upgrade(next, when, at);
                }
            }
            let recorded = history.verdict_at(i);
            if instance.history.len() == before {
                let m = Mismatch::Verdict { recorded: recorded.describe(), replayed: "no timer due".into() };
                return Err(mismatch(Some(seq), m));
            }
            let replayed = instance.history.verdict_at(before);
            if !replayed.agrees(recorded) {
                let m = Mismatch::Verdict { recorded: recorded.describe(), replayed: replayed.describe() };
                return Err(mismatch(Some(seq), m));
            }
            instance.check_replayed(seq)?;
            if let (Some(after), Some(record)) = (after.as_mut(), observed) {
                after(&record, &mut instance);
            }
        }
        instance.replay = None;
        Ok(instance)
    }

    fn check_replayed(&mut self, seq: u64) -> Result<(), EngineError> {
        let cursor = self.replay.take();
        if cursor.is_some_and(|c| c.mismatch || !c.queue.is_empty()) {
            return Err(EngineError::ReplayMismatch { seq: Some(seq), mismatch: Mismatch::Resolution });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Verdict;

    #[test]
    fn verdicts_agree_by_kind() {
        let node = kars_spec::NodeId::new("B").unwrap();
        let a = Verdict::Refused(Box::new(EngineError::UnknownNode { node: node.clone() }));
        let b = Verdict::Refused(Box::new(EngineError::UnknownNode { node }));
        assert!(a.agrees(&b));
        assert!(!a.agrees(&Verdict::Accepted));
        assert!(Verdict::Accepted.agrees(&Verdict::Accepted));
    }
}
