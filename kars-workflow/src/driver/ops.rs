//! The host's side of waiting actions: the [`Operations`] trait (deploy, roll back, run checks,
//! and any waiting action no other adapter handles), the [`Adapters`] a driver performs
//! effects through, and the bounded exponential backoff of [`RetryPolicy`].

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kars_spec::NodeId;

use crate::adapter::{AdapterError, Notifier, Vcs};
use crate::effect::{EffectKind, ReleaseId};
use crate::event::ActionOutcome;

/// A waiting action handed to [`Operations::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The effect's idempotency key: the same key means the same operation.
    pub key: String,
    /// The release it belongs to.
    pub release: ReleaseId,
    /// The action node.
    pub node: NodeId,
    /// What to do: `Deploy`, `Rollback`, `RunChecks`, or a pull request when the driver has no
    /// [`Vcs`].
    pub kind: EffectKind,
}

/// Deploys, rollbacks and check runs: the host's operations.
///
/// `run` either returns the outcome (`Ok(Some(..))`: the driver reports it to the instance at
/// once) or accepts the job (`Ok(None)`: the host reports the result later with
/// [`crate::Event::ActionResult`], for example from a CI webhook or an operator's command).
pub trait Operations {
    /// Starts (or, for a key seen before, looks up) `operation`.
    ///
    /// # Errors
    /// An [`AdapterError`]: transient if a retry may succeed. A permanent error (or running out
    /// of retries) is reported to the instance as a `failed` result.
    fn run(&self, operation: &Operation) -> Result<Option<ActionOutcome>, AdapterError>;
}

impl<O: Operations + ?Sized> Operations for &O {
    fn run(&self, operation: &Operation) -> Result<Option<ActionOutcome>, AdapterError> {
        (**self).run(operation)
    }
}

impl<O: Operations + ?Sized> Operations for Box<O> {
    fn run(&self, operation: &Operation) -> Result<Option<ActionOutcome>, AdapterError> {
        (**self).run(operation)
    }
}

impl<O: Operations + ?Sized> Operations for std::sync::Arc<O> {
    fn run(&self, operation: &Operation) -> Result<Option<ActionOutcome>, AdapterError> {
        (**self).run(operation)
    }
}

/// [`Operations`] that accept every job and leave its result to be reported later.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ManualOperations;

impl Operations for ManualOperations {
    fn run(&self, _operation: &Operation) -> Result<Option<ActionOutcome>, AdapterError> {
        Ok(None)
    }
}

/// [`Operations`] from a closure: `OperationsFn(|op: &Operation| Ok(Some(ActionOutcome::Succeeded)))`.
#[derive(Debug, Clone, Copy)]
pub struct OperationsFn<F>(pub F);

impl<F> Operations for OperationsFn<F>
where
    F: Fn(&Operation) -> Result<Option<ActionOutcome>, AdapterError>,
{
    fn run(&self, operation: &Operation) -> Result<Option<ActionOutcome>, AdapterError> {
        (self.0)(operation)
    }
}

/// The adapters a driver performs effects through.
///
/// Without a [`Vcs`], pull-request effects go to the [`Operations`] like deploys do.
pub struct Adapters {
    /// Posts notifications.
    pub notifier: Box<dyn Notifier + Send + Sync>,
    /// Opens and merges pull requests, if the host has a VCS adapter.
    pub vcs: Option<Box<dyn Vcs + Send + Sync>>,
    /// Runs deploys, rollbacks and checks.
    pub operations: Box<dyn Operations + Send + Sync>,
}

impl Adapters {
    /// Adapters with `notifier`, no VCS and [`ManualOperations`].
    #[must_use]
    pub fn new(notifier: impl Notifier + Send + Sync + 'static) -> Self {
        Self { notifier: Box::new(notifier), vcs: None, operations: Box::new(ManualOperations) }
    }

    /// Uses `vcs` for pull requests and merges.
    #[must_use]
    pub fn with_vcs(mut self, vcs: impl Vcs + Send + Sync + 'static) -> Self {
        self.vcs = Some(Box::new(vcs));
        self
    }

    /// Uses `operations` for deploys, rollbacks and checks.
    #[must_use]
    pub fn with_operations(mut self, operations: impl Operations + Send + Sync + 'static) -> Self {
        self.operations = Box::new(operations);
        self
    }
}

impl std::fmt::Debug for Adapters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapters").field("vcs", &self.vcs.is_some()).finish_non_exhaustive()
    }
}

/// How transient adapter failures are retried: up to `max_attempts` calls in all, waiting
/// `base`, `2 × base`, `4 × base`, … between them, never more than `cap`. No jitter, so runs
/// on a virtual clock are reproducible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in all, the first included (0 counts as 1).
    pub max_attempts: u32,
    /// The first wait.
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, waiting 1 s, 2 s, 4 s, 8 s (cap 60 s).
    fn default() -> Self {
        Self { max_attempts: 5, base: Duration::from_secs(1), cap: Duration::from_secs(60) }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (from 1).
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base.checked_mul(factor).unwrap_or(self.cap).min(self.cap)
    }
}

/// What a [`RecordingOperations`] answers for a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripted {
    /// Returns this outcome at once.
    Outcome(ActionOutcome),
    /// Accepts the job; the result comes later.
    Later,
    /// Fails transiently this many times, then returns the outcome.
    Flaky(u32, ActionOutcome),
    /// Fails permanently.
    Broken,
}

/// An [`Operations`] fake for tests: answers per node as scripted (default: succeeded),
/// records every call and keeps a log deduplicated by key.
#[derive(Debug, Default)]
pub struct RecordingOperations {
    state: Mutex<OpsState>,
}

#[derive(Debug, Default)]
struct OpsState {
    script: BTreeMap<String, Scripted>,
    calls: Vec<(String, bool)>,
    done: BTreeMap<String, Option<ActionOutcome>>,
    log: Vec<Operation>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RecordingOperations {
    /// Operations that succeed at once for every node.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `answer` for `node` from now on.
    pub fn script(&self, node: &str, answer: Scripted) {
        lock(&self.state).script.insert(node.to_owned(), answer);
    }

    /// Every call so far: the key, and whether it was a duplicate of a key done before.
    #[must_use]
    pub fn calls(&self) -> Vec<(String, bool)> {
        lock(&self.state).calls.clone()
    }

    /// The operations performed: one per key, in order of first success.
    #[must_use]
    pub fn performed(&self) -> Vec<Operation> {
        lock(&self.state).log.clone()
    }
}

impl Operations for RecordingOperations {
    fn run(&self, op: &Operation) -> Result<Option<ActionOutcome>, AdapterError> {
        const NAME: &str = "recording operations";
        let mut state = lock(&self.state);
        if let Some(outcome) = state.done.get(&op.key).copied() {
            state.calls.push((op.key.clone(), true));
            return Ok(outcome);
        }
        state.calls.push((op.key.clone(), false));
        let answer = state.script.get(op.node.as_str()).copied();
        let outcome = match answer {
            None => Some(ActionOutcome::Succeeded),
            Some(Scripted::Outcome(o)) => Some(o),
            Some(Scripted::Later) => None,
            Some(Scripted::Broken) => {
                return Err(AdapterError::permanent(NAME, "run", Some(&op.key), "injected permanent failure"));
            }
            Some(Scripted::Flaky(n, o)) => {
                if n > 0 {
                    state.script.insert(op.node.as_str().to_owned(), Scripted::Flaky(n - 1, o));
                    return Err(AdapterError::transient(NAME, "run", Some(&op.key), "injected transient failure"));
                }
                Some(o)
            }
        };
        state.done.insert(op.key.clone(), outcome);
        state.log.push(op.clone());
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy { max_attempts: 10, base: Duration::from_millis(100), cap: Duration::from_secs(1) };
        let waits: Vec<u128> = (1..=6).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.delay(200), Duration::from_secs(1));
    }
}
