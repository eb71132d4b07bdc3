//! Performing one effect through the adapters, with bounded retries: the only code in the
//! crate that calls an adapter.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kars_spec::NodeId;
use kars_spec::spec::Recipient;

use super::clock::Clock;
use super::ops::{Adapters, Operation, RetryPolicy};
use super::record::{EffectStatus, Failure};
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
    /// A call failed transiently; the driver waits and tries again.
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

/// How the effect ended, and the result to report to the instance (for waiting actions).
pub(super) struct Performed {
    pub(super) status: EffectStatus,
    pub(super) result: Option<ActionOutcome>,
}

/// What an effect needs besides itself.
pub(super) struct Context<'a, C> {
    pub(super) adapters: &'a Adapters,
    pub(super) clock: &'a C,
    pub(super) retry: &'a RetryPolicy,
    pub(super) channels: &'a BTreeMap<String, String>,
    pub(super) log: &'a mut Vec<LogEntry>,
}

impl<C: Clock> Context<'_, C> {
    fn entry(&mut self, effect: &Effect, kind: LogKind) {
        let at = self.clock.now();
        self.log.push(LogEntry { at, key: effect.key.clone(), node: effect.node.clone(), kind });
    }

    /// Calls `call` until it succeeds, fails permanently or runs out of attempts.
    fn retrying<T>(
        &mut self,
        effect: &Effect,
        mut call: impl FnMut(&Adapters) -> Result<T, AdapterError>,
    ) -> Result<T, AdapterError> {
        let max = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match call(self.adapters) {
                Ok(value) => return Ok(value),
                Err(error) if error.is_transient() && attempt < max => {
                    self.entry(effect, LogKind::Retrying { attempt, error });
                    let wait = chrono::Duration::from_std(self.retry.delay(attempt)).unwrap_or(chrono::Duration::MAX);
                    let now = self.clock.now();
                    self.clock.sleep_until(now.checked_add_signed(wait).unwrap_or(now));
                    attempt += 1;
                }
                Err(error) => {
                    self.entry(effect, LogKind::Failed { error: error.clone() });
                    return Err(error);
                }
            }
        }
    }

    /// Performs `effect`; never fails: failures become the status and a `failed` result.
    pub(super) fn perform(&mut self, effect: &Effect) -> Performed {
        let key = effect.key.as_str();
        let outcome: Result<Option<ActionOutcome>, AdapterError> = match &effect.kind {
            EffectKind::Notify { to, message } => {
                let mut failure = None;
                for recipient in to {
                    let (audience, suffix) = match recipient {
                        Recipient::Channel(id) => {
                            let address = self.channels.get(id.as_str()).cloned().unwrap_or_else(|| format!("#{id}"));
                            (Audience::Channel(address), format!("channel:{id}"))
                        }
                        Recipient::Role(role) => (Audience::Role(role.to_string()), format!("role:{role}")),
                    };
                    let n = Notification { key: format!("{key}/{suffix}"), to: audience, message: message.clone() };
                    if let Err(e) = self.retrying(effect, |a| a.notifier.notify(&n)) {
                        failure = Some(e);
                    }
                }
                let status = match failure {
                    None => EffectStatus::Sent,
                    Some(e) => EffectStatus::Failed(Failure::from(&e)),
                };
                if status == EffectStatus::Sent {
                    self.entry(effect, LogKind::Performed(status.clone()));
                }
                return Performed { status, result: None };
            }
            EffectKind::OpenPullRequest { from, to } if self.adapters.vcs.is_some() => {
                let request = OpenPullRequest {
                    key: key.to_owned(),
                    from: selector(from),
                    to: to.clone(),
                    title: format!("{}: {from} -> {to}", effect.release),
                };
                self.retrying(effect, |a| match &a.vcs {
                    Some(vcs) => vcs.open_pull_request(&request).map(|_| Some(ActionOutcome::Succeeded)),
                    None => Ok(None),
                })
            }
            EffectKind::MergePullRequest { from, to } if self.adapters.vcs.is_some() => {
                let request = MergeRequest { key: key.to_owned(), from: selector(from), to: to.clone() };
                self.retrying(effect, |a| match &a.vcs {
                    Some(vcs) => vcs.merge(&request).map(|_| Some(ActionOutcome::Succeeded)),
                    None => Ok(None),
                })
            }
            kind => {
                let op = Operation {
                    key: key.to_owned(),
                    release: effect.release.clone(),
                    node: effect.node.clone(),
                    kind: kind.clone(),
                };
                let awaits = kind.awaits_result();
                self.retrying(effect, |a| a.operations.run(&op)).map(|o| if awaits { o } else { None })
            }
        };
        let performed = match outcome {
            Ok(Some(o)) => Performed { status: EffectStatus::Reported(o), result: Some(o) },
            Ok(None) => Performed { status: EffectStatus::Handed, result: None },
            Err(e) => {
                let status = EffectStatus::Failed(Failure::from(&e));
                let result = effect.kind.awaits_result().then_some(ActionOutcome::Failed);
                return Performed { status, result };
            }
        };
        self.entry(effect, LogKind::Performed(performed.status.clone()));
        performed
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
