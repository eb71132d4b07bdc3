//! The engine's inputs: [`Event`]s from people and the host, the [`Actor`] behind them, and the
//! [`InstanceId`] that names an instance.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use kars_spec::{NodeId, RoleId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who acts: a name and the roles the host authenticated for them.
///
/// One shared value: cloning an actor (or an event that holds one) copies one pointer and
/// counts one reference, and two clones of one actor compare equal by that pointer. A host
/// that keeps its people's actors (a service's sessions) hands the engine clones. Its JSON
/// is `{"name": .., "roles": [..]}`.
#[derive(Clone, Deserialize)]
#[serde(from = "ActorData")]
pub struct Actor(Arc<ActorData>);

/// An actor's name and roles (and its JSON). The name is shared with the records and the
/// state that name the actor.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActorData {
    #[serde(with = "crate::shared::arc_str")]
    name: Arc<str>,
    #[serde(default)]
    roles: Box<[RoleId]>,
}

impl From<ActorData> for Actor {
    fn from(data: ActorData) -> Self {
        Self(Arc::new(data))
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The shared data in place (serde's own `Arc` support needs its `rc` feature).
        self.0.serialize(serializer)
    }
}

impl Actor {
    /// An actor with a name and roles (`Actor::new("carol", vec![qa])`; a `String`, an
    /// `Arc<str>`, a `Vec<RoleId>` or a `Box<[RoleId]>` are taken as they are).
    #[must_use]
    pub fn new(name: impl Into<Arc<str>>, roles: impl Into<Box<[RoleId]>>) -> Self {
        Self(Arc::new(ActorData { name: name.into(), roles: roles.into() }))
    }

    /// The actor's name, as the audit trail shows it (`carol`).
    #[must_use]
    #[inline]
    pub fn name(&self) -> &Arc<str> {
        &self.0.name
    }

    /// The roles the actor holds; the engine trusts the host on these.
    #[must_use]
    #[inline]
    pub fn roles(&self) -> &[RoleId] {
        &self.0.roles
    }

    /// The same actor with `roles` instead of its own.
    #[must_use]
    pub fn with_roles(&self, roles: impl Into<Box<[RoleId]>>) -> Self {
        Self::new(Arc::clone(self.name()), roles)
    }

    /// Whether the actor holds at least one of `roles`.
    #[must_use]
    pub fn holds_any(&self, roles: &[RoleId]) -> bool {
        roles.iter().any(|r| self.0.roles.contains(r))
    }

    /// Whether `self` and `other` are one shared value (clones of one actor): equal without
    /// reading their names.
    #[must_use]
    #[inline]
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl PartialEq for Actor {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other) || (self.0.name == other.0.name && self.0.roles == other.0.roles)
    }
}

impl Eq for Actor {}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Actor").field("name", &self.0.name).field("roles", &self.0.roles).finish()
    }
}

/// Who reports a waiting action's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Reporter {
    /// The host's adapter performed the action's effect (the one with this idempotency key)
    /// and reports what came of it. The key must be the one the instance emitted for the
    /// node's current visit: a late result of an earlier visit is refused.
    Effect {
        /// The effect's idempotency key.
        key: crate::effect::EffectKey,
    },
    /// A person reports the result; they must hold one of the node's `reported_by` roles.
    Person(Actor),
    /// A record journaled before reporters were recorded (journal format 1). Accepted when an
    /// old history is replayed; refused as a new input.
    #[default]
    Unrecorded,
}

impl fmt::Display for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reporter::Effect { key } => write!(f, "effect `{key}`"),
            Reporter::Person(actor) => f.write_str(actor.name()),
            Reporter::Unrecorded => f.write_str("(not recorded)"),
        }
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
        /// The task outcome (when the task declares outcomes) or the decision's branch label;
        /// shared, so that a host that sends the same outcome again copies a pointer
        /// (`Some("approved".into())`).
        #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::shared::opt_arc_str")]
        outcome: Option<Arc<str>>,
    },
    /// The result of a waiting action, and who reports it.
    ActionResult {
        /// The action node.
        node: NodeId,
        /// How it went.
        outcome: ActionOutcome,
        /// Who reports it: the host's adapter that performed the effect, or a person whose
        /// roles the node's `reported_by` must include.
        #[serde(default)]
        reporter: Reporter,
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

impl fmt::Display for ActionOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ActionOutcome {
    /// `succeeded` or `failed`, as the spec's `map` keys and the command line write it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ActionOutcome::Succeeded => "succeeded",
            ActionOutcome::Failed => "failed",
        }
    }
}

/// A word that is not an action result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an action result\nhelp: an action result is `succeeded` or `failed`")]
pub struct ActionOutcomeError(pub String);

impl FromStr for ActionOutcome {
    type Err = ActionOutcomeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "succeeded" => Ok(ActionOutcome::Succeeded),
            "failed" => Ok(ActionOutcome::Failed),
            other => Err(ActionOutcomeError(other.to_owned())),
        }
    }
}

impl Event {
    /// The result of `effect`, reported by the host's adapter that performed it.
    #[must_use]
    pub fn result_of(effect: &crate::effect::Effect, outcome: ActionOutcome) -> Self {
        Event::ActionResult {
            node: effect.node.clone(),
            outcome,
            reporter: Reporter::Effect { key: effect.key.clone() },
        }
    }

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

/// The longest instance id, in bytes: the id is part of every effect key and a file name.
pub const MAX_INSTANCE_ID_LEN: usize = 64;

/// Names Windows reserves for devices, whatever the extension.
const RESERVED_DEVICES: &[&str] = &["con", "prn", "aux", "nul"];

/// Why a string is not an instance id: the rejected id and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "instance id `{}` is not valid: {rule}\n\
     help: instance ids are 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit",
    id.escape_debug()
)]
#[non_exhaustive]
pub struct InstanceIdError {
    /// The rejected id.
    pub id: String,
    /// The rule it breaks.
    pub rule: InstanceIdRule,
}

/// A rule of [`InstanceId`] that a string breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InstanceIdRule {
    /// The id is empty.
    Empty,
    /// The id is longer than [`MAX_INSTANCE_ID_LEN`] bytes.
    TooLong,
    /// The id does not start with an ASCII letter or digit.
    BadStart,
    /// The id has a character other than ASCII letters, digits, `-`, `_` and `.`.
    BadCharacter,
    /// The id contains `..`.
    DoubleDot,
    /// The id is a device name that Windows reserves (`con`, `nul.txt`, `com1`, …).
    DeviceName,
}

impl fmt::Display for InstanceIdRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "it is empty",
            Self::TooLong => "it is longer than 64 bytes",
            Self::BadStart => "it must start with an ASCII letter or digit",
            Self::BadCharacter => "it may only contain ASCII letters, digits, `-`, `_` and `.`",
            Self::DoubleDot => "it must not contain `..`",
            Self::DeviceName => "it is a device name that Windows reserves",
        })
    }
}

/// The name of one running instance (`kars-release`, `kars-release.2026`); part of every effect
/// key and the name of the instance's journal file.
///
/// Ids are 1 to [`MAX_INSTANCE_ID_LEN`] bytes of ASCII letters, digits, `-`, `_` and `.`, start
/// with a letter or digit, contain no `..`, and are not a Windows device name, so an id is
/// always a safe file name and never a path, and never breaks an effect key.
///
/// An id of up to 22 bytes is kept inside the value (24 bytes, as a `String` takes): made and
/// cloned without an allocation; a longer one is shared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(kars_spec::InlineStr<22>);

impl InstanceId {
    /// Validates and wraps an instance id.
    ///
    /// ```
    /// use kars_workflow::{InstanceId, InstanceIdRule};
    ///
    /// assert_eq!(InstanceId::new("kars-release.2026")?.as_str(), "kars-release.2026");
    /// assert_eq!(InstanceId::new("../etc").unwrap_err().rule, InstanceIdRule::BadStart);
    /// # Ok::<(), kars_workflow::InstanceIdError>(())
    /// ```
    ///
    /// # Errors
    /// Returns [`InstanceIdError`] naming the rule the id breaks (see [`InstanceIdRule`]).
    pub fn new(id: impl Into<String>) -> Result<Self, InstanceIdError> {
        let id = id.into();
        match rule_broken(&id) {
            None => Ok(Self(kars_spec::InlineStr::from_string(id))),
            Some(rule) => Err(InstanceIdError { id, rule }),
        }
    }

    /// The id as a string slice.
    #[must_use]
    #[inline]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// `sim`, the id the simulator uses when the workflow's name is not a valid id.
    pub(crate) fn sim() -> Self {
        Self(kars_spec::InlineStr::new("sim"))
    }
}

fn rule_broken(id: &str) -> Option<InstanceIdRule> {
    let Some(&first) = id.as_bytes().first() else {
        return Some(InstanceIdRule::Empty);
    };
    if id.len() > MAX_INSTANCE_ID_LEN {
        return Some(InstanceIdRule::TooLong);
    }
    if !first.is_ascii_alphanumeric() {
        return Some(InstanceIdRule::BadStart);
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Some(InstanceIdRule::BadCharacter);
    }
    if id.contains("..") {
        return Some(InstanceIdRule::DoubleDot);
    }
    // Windows reserves the device names with any extension: `nul.txt` is the device too. The
    // names are three or four bytes: lowered on the stack.
    let stem = id.split_once('.').map_or(id, |(stem, _)| stem).as_bytes();
    let mut lower = [0u8; 4];
    let stem = match lower.get_mut(..stem.len()) {
        Some(to) => {
            to.copy_from_slice(stem);
            to.make_ascii_lowercase();
            &*to
        }
        None => &[],
    };
    let numbered_device = match stem {
        [a, b, c, digit] => matches!(&[*a, *b, *c], b"com" | b"lpt") && digit.is_ascii_digit(),
        _ => false,
    };
    if RESERVED_DEVICES.iter().any(|d| d.as_bytes() == stem) || numbered_device {
        return Some(InstanceIdRule::DeviceName);
    }
    None
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
        self.as_str()
    }
}

impl Borrow<str> for InstanceId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Serialize for InstanceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
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
    fn accepts_safe_names() {
        for ok in ["a", "0", "kars-release", "kars_release.2026-W48", "console", "com", "com10", "lpt", &"x".repeat(64)]
        {
            assert!(InstanceId::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_paths_and_odd_names_by_rule() {
        use InstanceIdRule::*;
        let long = "x".repeat(MAX_INSTANCE_ID_LEN + 1);
        let cases: &[(&str, InstanceIdRule)] = &[
            ("", Empty),
            (&long, TooLong),
            (".", BadStart),
            ("..", BadStart),
            (".hidden", BadStart),
            ("-x", BadStart),
            ("_x", BadStart),
            ("../x", BadStart),
            ("é", BadStart),
            ("a/b", BadCharacter),
            ("a\\b", BadCharacter),
            ("a b", BadCharacter),
            ("a\nb", BadCharacter),
            ("aé", BadCharacter),
            ("a..b", DoubleDot),
            ("a..", DoubleDot),
            ("nul", DeviceName),
            ("NUL", DeviceName),
            ("CON.txt", DeviceName),
            ("aux.tar.gz", DeviceName),
            ("prn", DeviceName),
            ("com1", DeviceName),
            ("LPT9.log", DeviceName),
        ];
        for (bad, rule) in cases {
            let err = InstanceId::new(*bad).unwrap_err();
            assert_eq!((err.id.as_str(), err.rule), (*bad, *rule), "{err}");
        }
        for near in ["console", "com", "com10", "lpt", "nul1", "auxiliary", "prn-2", "conn.txt"] {
            assert!(InstanceId::new(near).is_ok(), "`{near}` is no device name");
        }
        assert!(serde_json::from_str::<InstanceId>("\"a b\"").is_err());
        assert!(serde_json::from_str::<InstanceId>("\"nul\"").is_err());
        assert_eq!(serde_json::from_str::<InstanceId>("\"kars\"").unwrap().as_str(), "kars");
    }

    #[test]
    fn the_message_names_the_rule() {
        let err = InstanceId::new("-x").unwrap_err().to_string();
        assert_eq!(
            err,
            "instance id `-x` is not valid: it must start with an ASCII letter or digit\n\
             help: instance ids are 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit"
        );
        let err = InstanceId::new("a/b").unwrap_err().to_string();
        assert!(err.starts_with("instance id `a/b` is not valid: it may only contain"), "{err}");
        let err = InstanceId::new("a\u{1b}[2J").unwrap_err().to_string();
        assert!(err.starts_with("instance id `a\\u{1b}[2J` is not valid"), "control characters are escaped: {err}");
    }

    #[test]
    fn the_simulator_fallback_is_valid() {
        assert_eq!(InstanceId::new("sim"), Ok(InstanceId::sim()));
    }

    #[test]
    fn ids_borrow_as_str() {
        let ids: std::collections::BTreeSet<InstanceId> = ["b", "a"].into_iter().map(|s| s.parse().unwrap()).collect();
        assert!(ids.contains("a"));
        assert_eq!(ids.iter().next().map(AsRef::as_ref), Some("a"));
        assert_eq!(InstanceId::new("k").unwrap().to_string(), "k");
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
