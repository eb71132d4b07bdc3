//! `DriverError`: why a driver command failed or an instance's journal cannot be opened.

use chrono::{DateTime, Utc};
use kars_spec::{Fingerprint, RoleId};

use crate::InstanceId;
use crate::error::EngineError;
use crate::journal::JournalError;

/// Why a driver command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The engine refused the input (wrong role, closed gate, a window, …); the instance is
    /// unchanged.
    #[error("{0}")]
    Refused(Box<EngineError>),
    /// The journal failed; the driver reloaded what is durable (compare the history to see
    /// whether the input was recorded).
    #[error("{0}")]
    Journal(#[from] JournalError),
    /// The journal was written for another spec.
    #[error(
        "instance `{id}` was started with spec fingerprint `{recorded}`, but the workflow given has fingerprint `{current}`\n\
         help: an instance keeps the spec it started with; finish it with that spec, or start a new instance for the changed spec"
    )]
    SpecChanged {
        /// The instance.
        id: InstanceId,
        /// The fingerprint in the journal.
        recorded: Fingerprint,
        /// The fingerprint of the workflow given.
        current: Fingerprint,
    },
    /// The journal's history does not replay.
    #[error("the journal of instance `{id}` does not replay: {source}")]
    Replay {
        /// The instance.
        id: InstanceId,
        /// What did not reproduce.
        source: Box<EngineError>,
    },
    /// The journal's header is not a driver header this build reads.
    #[error(
        "the journal header of instance `{id}` is not readable: {detail}\nhelp: was the journal written by another program or a newer kars?"
    )]
    BadHeader {
        /// The instance.
        id: InstanceId,
        /// What is wrong.
        detail: String,
    },
    /// A journal record is not a driver entry.
    #[error("record {index} of the journal of instance `{id}` is not readable: {detail}")]
    BadRecord {
        /// The instance.
        id: InstanceId,
        /// The record's position.
        index: usize,
        /// What is wrong.
        detail: String,
    },
    /// The string is not a valid instance id (for hosts that turn names into ids with `?`).
    #[error("{0}")]
    InvalidId(#[from] crate::InstanceIdError),
    /// The clock reads earlier than the latest instant the instance accepted, and the driver
    /// is told to refuse that ([`super::Earlier::Refuse`]).
    #[error(
        "instance `{id}` has recorded {} already; the time given, {}, is earlier\nhelp: time never goes backwards in an instance: give a time at or after the last one recorded",
        latest.to_rfc3339(), now.to_rfc3339()
    )]
    ClockBehind {
        /// The instance.
        id: InstanceId,
        /// The clock's time.
        now: DateTime<Utc>,
        /// The latest instant the instance accepted.
        latest: DateTime<Utc>,
    },
    /// The actor may not change the roster.
    #[error("{}", roster_locked(id, by, managed_by))]
    RosterLocked {
        /// The instance.
        id: InstanceId,
        /// Who tried.
        by: String,
        /// The roles that may.
        managed_by: Vec<RoleId>,
    },
    /// An earlier journal failure left the driver unable to tell what is durable.
    #[error(
        "the driver of instance `{id}` lost track of its journal after an earlier failure\nhelp: open the instance again"
    )]
    Broken {
        /// The instance.
        id: InstanceId,
    },
}

impl DriverError {
    /// The engine's refusal, if the input was refused.
    #[must_use]
    pub fn refusal(&self) -> Option<&EngineError> {
        match self {
            Self::Refused(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the error is the engine refusing the input (as opposed to a failure of the
    /// journal or the driver).
    #[must_use]
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused(_))
    }
}

fn roster_locked(id: &InstanceId, by: &str, managed_by: &[RoleId]) -> String {
    if managed_by.is_empty() {
        format!(
            "`{by}` may not change the roster of instance `{id}`: the spec lets nobody change a running instance's roster\nhelp: add `team_managed_by: [ROLE]` to the spec for the roles that may, or start a new instance with the new roster"
        )
    } else {
        let roles: Vec<String> = managed_by.iter().map(|r| format!("`{r}`")).collect();
        format!(
            "`{by}` may not change the roster of instance `{id}`, which needs one of the roles {}\nhelp: ask a holder of one of those roles",
            roles.join(", ")
        )
    }
}
