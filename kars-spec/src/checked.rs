//! The checked spec: a [`Spec`] that passed validation, with its resolved zone and fingerprint.

use std::fmt;
use std::sync::OnceLock;

use chrono_tz::Tz;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, Report};
use crate::id::NodeId;
use crate::spec::Spec;

/// A spec that passed every check. Only [`crate::load`] and [`crate::check`] make one.
#[derive(Debug, Clone)]
pub struct CheckedSpec {
    spec: Spec,
    zone: Tz,
    /// Computed on first use: checking a spec (an editor, `kars check`) never needs it.
    fingerprint: OnceLock<Fingerprint>,
    warnings: Report,
    forks: IndexMap<NodeId, Fork>,
}

/// A `parallel` node's block, as validation found it: where its branches meet and what lies
/// between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fork {
    /// The `join` node every branch reaches.
    pub join: NodeId,
    /// The nodes of the block: every node a branch can reach before the join (nested forks,
    /// their blocks and joins included; `end` nodes, the fork and its join excluded), in spec
    /// order. A `join: first` cancels the branches still at these nodes.
    pub inside: Vec<NodeId>,
}

impl CheckedSpec {
    pub(crate) fn new(spec: Spec, zone: Tz, warnings: Vec<Diagnostic>, forks: IndexMap<NodeId, Fork>) -> Self {
        Self { spec, zone, fingerprint: OnceLock::new(), warnings: Report::new(String::new(), warnings), forks }
    }

    /// The same spec with its warnings located in `origin`.
    pub(crate) fn with_warnings(mut self, origin: &str, warnings: Vec<Diagnostic>) -> Self {
        self.warnings = Report::new(origin, warnings);
        self
    }

    /// The warnings found while checking: the spec is valid, but these are probably not what
    /// its author meant.
    #[must_use]
    pub fn warnings(&self) -> &[Diagnostic] {
        self.warnings.diagnostics()
    }

    /// The warnings as a [`Report`] that renders them with their file name and excerpts.
    #[must_use]
    pub fn warning_report(&self) -> &Report {
        &self.warnings
    }

    /// The spec's data.
    #[must_use]
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The workflow's time zone.
    #[must_use]
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// A stable hash of the spec's content, recorded in histories so that replaying against a
    /// changed spec is detected.
    #[must_use]
    pub fn fingerprint(&self) -> Fingerprint {
        *self.fingerprint.get_or_init(|| Fingerprint::of(&self.spec))
    }

    /// Every `parallel` node with its block, in spec order: the pairing of forks and joins.
    /// Validation guarantees each fork has exactly one join, each join exactly one fork, and
    /// that a branch leaves the block only through the join or an `end` node.
    #[must_use]
    pub fn forks(&self) -> &IndexMap<NodeId, Fork> {
        &self.forks
    }

    /// The block of the `parallel` node `fork`, or `None` when it is not a parallel node.
    #[must_use]
    pub fn fork(&self, fork: &NodeId) -> Option<&Fork> {
        self.forks.get(fork)
    }

    /// The `parallel` node whose branches meet at `join`, or `None` when it is not a join.
    #[must_use]
    pub fn fork_of_join(&self, join: &NodeId) -> Option<&NodeId> {
        self.forks.iter().find(|(_, f)| &f.join == join).map(|(id, _)| id)
    }

    /// Gives the data back.
    #[must_use]
    pub fn into_spec(self) -> Spec {
        self.spec
    }
}

/// A 64-bit FNV-1a hash of a spec's canonical JSON form: equal specs, equal fingerprints,
/// on every platform and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    /// The fingerprint of `spec`.
    #[must_use]
    pub fn of(spec: &Spec) -> Self {
        Self::of_value(spec)
    }

    /// The same hash of any plain-data value's JSON (a part of a spec, say).
    #[must_use]
    pub fn of_value<T: Serialize + ?Sized>(value: &T) -> Self {
        // Serializing plain data to JSON cannot fail: every map key is a string. The JSON is
        // streamed into the hash rather than collected first.
        let mut hasher = Fnv(0xcbf2_9ce4_8422_2325);
        let _ = serde_json::to_writer(&mut hasher, value);
        Self(hasher.0)
    }
}

/// A 64-bit FNV-1a hasher fed through `io::Write`.
struct Fnv(u64);

impl std::io::Write for Fnv {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &byte in buf {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_fnv1a_of_the_canonical_json() {
        let yaml = include_str!("../../workflows/kars-release.yaml");
        let spec: Spec = serde_saphyr::from_str(yaml).unwrap();
        let json = serde_json::to_vec(&spec).unwrap();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in json {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        assert_eq!(Fingerprint::of(&spec), Fingerprint(hash));
    }
}
