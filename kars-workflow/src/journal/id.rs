//! `InstanceId`: a validated instance name that is safe as a file name on every platform.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::JournalError;

/// The longest instance id, in bytes.
pub const MAX_INSTANCE_ID_LEN: usize = 128;

/// Names Windows reserves for devices, whatever the extension.
const RESERVED: &[&str] = &["con", "prn", "aux", "nul"];

/// The name of a workflow instance (`kars-release`, `kars-release.2026`).
///
/// Ids are 1 to [`MAX_INSTANCE_ID_LEN`] bytes of ASCII letters, digits, `-`, `_` and `.`, start
/// with a letter or digit, contain no `..`, and are not a Windows device name, so an id is
/// always a safe file name and never a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    /// Validates `id` and wraps it.
    ///
    /// # Errors
    /// [`JournalError::InvalidId`] naming the rule the id breaks.
    pub fn new(id: impl Into<String>) -> Result<Self, JournalError> {
        let id = id.into();
        match rule_broken(&id) {
            None => Ok(Self(id)),
            Some(rule) => Err(JournalError::InvalidId { id: id.escape_debug().to_string(), rule }),
        }
    }

    /// The id as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn rule_broken(id: &str) -> Option<&'static str> {
    let Some(first) = id.bytes().next() else {
        return Some("it is empty");
    };
    if id.len() > MAX_INSTANCE_ID_LEN {
        return Some("it is longer than 128 bytes");
    }
    if !first.is_ascii_alphanumeric() {
        return Some("it must start with an ASCII letter or digit");
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Some("it may only contain ASCII letters, digits, `-`, `_` and `.`");
    }
    if id.contains("..") {
        return Some("it must not contain `..`");
    }
    let stem = id.split('.').next().unwrap_or(id).to_ascii_lowercase();
    let numbered_device = (stem.starts_with("com") || stem.starts_with("lpt"))
        && stem.len() == 4
        && stem.as_bytes().get(3).is_some_and(u8::is_ascii_digit);
    if RESERVED.contains(&stem.as_str()) || numbered_device {
        return Some("it is a device name that Windows reserves");
    }
    None
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for InstanceId {
    type Err = JournalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for InstanceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for InstanceId {
    fn borrow(&self) -> &str {
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
        let s = String::deserialize(deserializer)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_safe_names() {
        for ok in ["a", "kars-release", "kars_release.2026-W48", "0", &"x".repeat(128)] {
            assert!(InstanceId::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_paths_and_odd_names() {
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "a..b",
            "-x",
            "a b",
            "é",
            "nul",
            "CON.txt",
            "com1",
            &"x".repeat(129),
        ] {
            let err = InstanceId::new(bad).unwrap_err();
            assert!(matches!(err, JournalError::InvalidId { .. }), "{bad}: {err}");
        }
        assert!(InstanceId::new("console").is_ok());
        assert!(InstanceId::new("com").is_ok());
    }

    #[test]
    fn the_message_names_the_rule() {
        let err = InstanceId::new("a/b").unwrap_err().to_string();
        assert!(err.starts_with("instance id `a/b` is invalid: it may only contain"), "{err}");
    }
}
