//! The engine's inputs: [`Event`]s from people and the host, the [`Actor`] behind them, and the
//! [`InstanceId`] that names an instance.

use std::fmt;
use std::str::FromStr;

use kars_spec::{NodeId, RoleId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who acts: a name and the roles the host authenticated for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The actor's name, as the audit trail shows it (`carol`).
    pub name: String,
    /// The roles the actor holds; the engine trusts the host on these.
    #[serde(default)]
    pub roles: Vec<RoleId>,
}

impl Actor {
    /// An actor with a name and roles.
    #[must_use]
    pub fn new(name: impl Into<String>, roles: Vec<RoleId>) -> Self {
        Self { name: name.into(), roles }
    }

    pub(crate) fn holds_any(&self, roles: &[RoleId]) -> bool {
        roles.iter().any(|r| self.roles.contains(r))
    }
}

/// The result the host reports for a waiting action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    /// The action did what it should.
    Succeeded,
    /// The action failed; the token still moves on, and decisions may read the failure.
    Failed,
}

/// An input to an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// A person completes a task or takes a role decision (then `outcome` is the branch label).
    Complete {
        /// The task or decision.
        node: NodeId,
        /// Who acts.
        actor: Actor,
        /// The task outcome (when the task declares outcomes) or the decision's branch label.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<String>,
    },
    /// The host reports the result of a waiting action.
    ActionResult {
        /// The action node.
        node: NodeId,
        /// How it went.
        outcome: ActionOutcome,
    },
    /// The host's merge bot records a merge; refused while a window forbids it.
    Merge {
        /// The source branch (`feature/login`).
        source: String,
        /// The target branch (`kars-dev`).
        target: String,
        /// Who merges.
        actor: Actor,
    },
}

impl Event {
    /// The node the event names, if it names one.
    #[must_use]
    pub fn node(&self) -> Option<&NodeId> {
        match self {
            Event::Complete { node, .. } | Event::ActionResult { node, .. } => Some(node),
            Event::Merge { .. } => None,
        }
    }
}

/// A merge the host's bot asks about with [`crate::Instance::may`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRequest {
    /// The source branch (`feature/login`).
    pub source: String,
    /// The target branch (`kars-dev`).
    pub target: String,
}

/// Why a string is not an instance id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("instance id `{id}` is not valid: use 1 to 64 of A-Z, a-z, 0-9, `-`, `_` and `.`")]
pub struct InstanceIdError {
    /// The rejected id.
    pub id: String,
}

/// The name of one running instance (`kars-release`); part of every effect key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    /// Validates and wraps an instance id.
    ///
    /// # Errors
    /// Returns [`InstanceIdError`] when the id is empty, longer than 64 bytes or has a
    /// character other than ASCII letters, digits, `-`, `_` and `.` (a `/` would break effect keys).
    pub fn new(id: impl Into<String>) -> Result<Self, InstanceIdError> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok { Ok(Self(id)) } else { Err(InstanceIdError { id }) }
    }

    /// The id as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for InstanceId {
    type Err = InstanceIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for InstanceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for InstanceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for InstanceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_checked() {
        assert!(InstanceId::new("kars-release.1").is_ok());
        assert!(InstanceId::new("").is_err());
        assert!(InstanceId::new("a/b").is_err());
        assert!(InstanceId::new("x".repeat(65)).is_err());
        assert!(serde_json::from_str::<InstanceId>("\"a b\"").is_err());
    }

    #[test]
    fn events_round_trip_through_json() {
        let event = Event::Complete {
            node: NodeId::new("N").unwrap(),
            actor: Actor::new("carol", vec![RoleId::new("qa").unwrap()]),
            outcome: Some("Yes".into()),
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(json, r#"{"complete":{"node":"N","actor":{"name":"carol","roles":["qa"]},"outcome":"Yes"}}"#);
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
    }
}
