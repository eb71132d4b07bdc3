//! What a merge on a forge needs: approvals, named checks, and how it merges (the adapter's
//! defaults, which a spec's `requires:` overrides per merge).

pub use kars_spec::spec::MergeMethod;
use kars_spec::spec::MergeRequirements;
use serde::{Deserialize, Serialize};

/// What a pull request needs before the adapter merges it. The forge's own branch protection
/// still applies on top; these rules let kars refuse early, with a reason the workflow routes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MergeRules {
    /// Approving reviews needed (the latest review of each reviewer counts). With at least
    /// one, the merge is guarded by the commit the latest approval was given on: a head that
    /// moved since is refused.
    pub approvals: u32,
    /// Check runs (by name) that must have completed with `success`, `neutral` or `skipped`
    /// on the head.
    pub checks: Vec<String>,
    /// How to merge.
    pub method: MergeMethod,
}

impl Default for MergeRules {
    /// One approval, no named checks, a merge commit.
    fn default() -> Self {
        Self { approvals: 1, checks: Vec::new(), method: MergeMethod::Merge }
    }
}

impl MergeRules {
    /// These rules with what a spec's `requires:` says on top (each field it gives wins).
    #[must_use]
    pub fn with(&self, requires: &MergeRequirements) -> Self {
        Self {
            approvals: requires.approvals.unwrap_or(self.approvals),
            checks: if requires.checks.is_empty() { self.checks.clone() } else { requires.checks.clone() },
            method: requires.method.unwrap_or(self.method),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_requirement_wins_field_by_field() {
        let adapter = MergeRules { approvals: 1, checks: vec!["ci".into()], method: MergeMethod::Merge };
        let spec = MergeRequirements { approvals: Some(2), checks: Vec::new(), method: Some(MergeMethod::Squash) };
        assert_eq!(
            adapter.with(&spec),
            MergeRules { approvals: 2, checks: vec!["ci".into()], method: MergeMethod::Squash }
        );
        assert_eq!(adapter.with(&MergeRequirements::default()), adapter);
    }
}
