//! Performing effects through the adapters, one attempt at a time, with bounded retries that
//! are scheduled rather than slept: the only code in the crate that calls an adapter.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kars_spec::NodeId;
use kars_spec::spec::Recipient;

use super::clock::Clock;
use super::ops::{Adapters, Operation, RetryPolicy};
use super::record::{EffectStatus, Failure};
use super::roster::Roster;
use crate::adapter::{AdapterError, Audience, BranchSelector, MergeRequest, Notification, OpenPullRequest};
use crate::effect::{Effect, EffectKey, EffectKind};
use crate::error::EngineError;
use crate::event::ActionOutcome;

/// Something the driver did or saw while performing effects, for the host's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// The effect's idempotency key.
    pub key: EffectKey,
    /// The node that caused the effect.
    pub node: NodeId,
    /// What happened.
    pub kind: LogKind,
}

/// What a [`LogEntry`] reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LogKind {
    /// A call failed transiently; it is tried again after the backoff ([`Attempt::Retry`]).
    Retrying {
        /// The failed attempt (from 1).
        attempt: u32,
        /// The error.
        error: AdapterError,
    },
    /// A call failed permanently or ran out of retries. For a waiting action a `failed` result
    /// is reported to the instance; a notification is given up (the effect is acknowledged).
    Failed {
        /// The last error.
        error: AdapterError,
    },
    /// The effect was performed.
    Performed(EffectStatus),
    /// The instance refused the action's result (it had moved on, for instance after a
    /// deadline escalation).
    ResultRefused {
        /// Why.
        error: Box<EngineError>,
    },
}

/// How an effect ended: its status (journaled in its `done` acknowledgement), the result to
/// report to the instance (for waiting actions), and what happened on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectOutcome {
    /// How it ended.
    pub status: EffectStatus,
    /// The result a waiting action reports to the instance, if any.
    pub result: Option<ActionOutcome>,
    /// Retries and failures on the way, and the final entry.
    pub log: Vec<LogEntry>,
}

/// What one attempt at an effect came to.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Attempt {
    /// The effect ended (performed, or failed for good): acknowledge it with
    /// [`Driver::complete_effect`](super::Driver::complete_effect).
    Finished(EffectOutcome),
    /// A transient failure: try again (attempt `next`) at `at`, with the same idempotency key.
    Retry {
        /// When to try again: the backoff of [`RetryPolicy`] after this attempt, or the wait
        /// the service asked for ([`AdapterError::retry_after`]) if longer.
        at: DateTime<Utc>,
        /// The number of the next attempt (from 2).
        next: u32,
        /// What happened ([`LogKind::Retrying`]).
        log: Vec<LogEntry>,
    },
}

/// Performs effects through the adapters, one attempt at a time: the only code in the crate
/// that calls an adapter. It holds no driver, so a host calls it without holding the instance
/// (see [`Driver::take_due_effects`](super::Driver::take_due_effects)); it reads no clock
/// either: the caller says when each attempt happens and waits for a retry as it likes.
#[derive(Clone)]
pub struct EffectRunner {
    adapters: Arc<Adapters>,
    channels: Arc<BTreeMap<String, String>>,
    retry: RetryPolicy,
    /// The roster when the runner was made: whose forge login a review is.
    roster: Arc<Roster>,
}

impl std::fmt::Debug for EffectRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EffectRunner").field("retry", &self.retry).finish_non_exhaustive()
    }
}

impl EffectRunner {
    pub(super) fn new(
        adapters: Arc<Adapters>,
        channels: Arc<BTreeMap<String, String>>,
        retry: RetryPolicy,
        roster: Arc<Roster>,
    ) -> Self {
        Self { adapters, channels, retry, roster }
    }

    /// Attempt number `attempt` (from 1) at `effect`, at `now`: calls its adapter once (a
    /// notification, each of its recipients once). A transient failure with attempts left asks
    /// for a retry at `now` plus the backoff; anything else finishes the effect. Never fails:
    /// a permanent failure, or running out of attempts, finishes with a failed status (and a
    /// `failed` result for a waiting action).
    pub fn attempt(&self, effect: &Effect, attempt: u32, now: DateTime<Utc>) -> Attempt {
        let attempt = attempt.max(1);
        let entry = |kind| LogEntry { at: now, key: effect.key.clone(), node: effect.node.clone(), kind };
        match self.call(effect) {
            Ok(result) => {
                let status = match result {
                    Some(o) => EffectStatus::Reported(o),
                    None if matches!(effect.kind, EffectKind::Notify { .. }) => EffectStatus::Sent,
                    None => EffectStatus::Handed,
                };
                let log = vec![entry(LogKind::Performed(status.clone()))];
                Attempt::Finished(EffectOutcome { status, result, log })
            }
            Err(error) if error.is_transient() && attempt < self.retry.max_attempts.max(1) => {
                // A service's own "come back in" wins over a shorter backoff.
                let delay = self.retry.delay(attempt).max(error.retry_after().unwrap_or_default());
                let wait = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                let at = now.checked_add_signed(wait).unwrap_or(now);
                Attempt::Retry { at, next: attempt + 1, log: vec![entry(LogKind::Retrying { attempt, error })] }
            }
            Err(error) => {
                let status = EffectStatus::Failed(Failure::from(&error));
                let result = effect.kind.awaits_result().then_some(ActionOutcome::Failed);
                Attempt::Finished(EffectOutcome { status, result, log: vec![entry(LogKind::Failed { error })] })
            }
        }
    }

    /// Performs `effect` to the end, waiting on `clock` between attempts (it blocks for the
    /// backoff: for synchronous hosts, and for hosts that run each effect on its own task).
    pub fn perform(&self, effect: &Effect, clock: &impl Clock) -> EffectOutcome {
        let mut attempt = 1;
        let mut log = Vec::new();
        loop {
            match self.attempt(effect, attempt, clock.now()) {
                Attempt::Finished(mut outcome) => {
                    log.append(&mut outcome.log);
                    outcome.log = log;
                    return outcome;
                }
                Attempt::Retry { at, next, log: mut more } => {
                    log.append(&mut more);
                    clock.sleep_until(at);
                    attempt = next;
                }
            }
        }
    }

    /// One call of `effect`'s adapter: the result to report (`None`: sent, or handed over).
    fn call(&self, effect: &Effect) -> Result<Option<ActionOutcome>, AdapterError> {
        let key = effect.key.as_str();
        let adapters = &*self.adapters;
        match &effect.kind {
            EffectKind::Notify { to, message } => {
                // Every recipient is tried; a retry repeats the delivered ones under the same
                // keys, which the notifier drops. A transient failure wins over a permanent
                // one, so that the retry happens.
                let mut failure: Option<AdapterError> = None;
                for recipient in to.iter() {
                    let (audience, suffix) = match recipient {
                        Recipient::Channel(id) => {
                            let address = self.channels.get(id.as_str()).cloned().unwrap_or_else(|| format!("#{id}"));
                            (Audience::Channel(address), format!("channel:{id}"))
                        }
                        Recipient::Role(role) => (Audience::Role(role.to_string()), format!("role:{role}")),
                    };
                    let n = Notification { key: format!("{key}/{suffix}"), to: audience, message: message.to_string() };
                    if let Err(e) = adapters.notifier.notify(&n)
                        && failure.as_ref().is_none_or(|f| !f.is_transient())
                    {
                        failure = Some(e);
                    }
                }
                failure.map_or(Ok(None), Err)
            }
            EffectKind::OpenPullRequest { from, to } if adapters.vcs.is_some() => {
                let request = OpenPullRequest {
                    key: key.to_owned(),
                    from: selector(from),
                    to: to.to_string(),
                    title: format!("{}: {from} -> {to}", effect.release),
                };
                match &adapters.vcs {
                    Some(vcs) => vcs.open_pull_request(&request).map(|_| Some(ActionOutcome::Succeeded)),
                    None => Ok(None),
                }
            }
            EffectKind::MergePullRequest { from, to, requires } if adapters.vcs.is_some() => {
                let request = MergeRequest { key: key.to_owned(), from: selector(from), to: to.to_string() };
                let merged = match (&adapters.vcs, requires) {
                    (Some(vcs), Some(requires)) => vcs.merge_requiring(&request, requires, &self.roster),
                    (Some(vcs), None) => vcs.merge(&request),
                    (None, _) => return Ok(None),
                };
                merged.map(|_| Some(ActionOutcome::Succeeded))
            }
            kind => {
                let op = Operation {
                    key: key.to_owned(),
                    release: effect.release.clone(),
                    node: effect.node.clone(),
                    kind: kind.clone(),
                };
                let awaits = kind.awaits_result();
                adapters.operations.run(&op).map(|o| if awaits { o } else { None })
            }
        }
    }
}

/// A branch name, or a pattern when it has a `*`.
fn selector(branch: &str) -> BranchSelector {
    if branch.contains('*') {
        BranchSelector::Pattern(branch.to_owned())
    } else {
        BranchSelector::Name(branch.to_owned())
    }
}
