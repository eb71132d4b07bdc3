//! What a merge on a forge needs: approvals, named checks, and how it merges (the adapter's
//! defaults, which a spec's `requires:` overrides per merge).

use kars_spec::RoleId;
pub use kars_spec::spec::MergeMethod;
use kars_spec::spec::MergeRequirements;
use serde::{Deserialize, Serialize};

use crate::adapter::AdapterError;
use crate::event::Actor;
use crate::requirements::{CheckState, MergeEvidence, Unmet};

/// What a pull request needs before the adapter merges it. The forge's own branch protection
/// still applies on top; these rules let kars refuse early, with a reason the workflow routes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MergeRules {
    /// Approving reviews needed (the latest review of each reviewer counts). With at least
    /// one, the merge is guarded by the commit the latest approval was given on: a head that
    /// moved since is refused.
    pub approvals: u32,
    /// Roles that must each have approved: an approving review by a login the instance's
    /// roster gives to a holder of the role (`github:`/`gitlab:` on their entry).
    pub approved_by: Vec<RoleId>,
    /// Check runs (by name) that must have completed with `success`, `neutral` or `skipped`
    /// on the head.
    pub checks: Vec<String>,
    /// How to merge.
    pub method: MergeMethod,
}

impl Default for MergeRules {
    /// One approval, no named checks, a merge commit.
    fn default() -> Self {
        Self { approvals: 1, approved_by: Vec::new(), checks: Vec::new(), method: MergeMethod::Merge }
    }
}

impl MergeRules {
    /// These rules with what a spec's `requires:` says on top (each field it gives wins).
    #[must_use]
    pub fn with(&self, requires: &MergeRequirements) -> Self {
        Self {
            approvals: requires.approvals.unwrap_or(self.approvals),
            approved_by: if requires.approved_by.is_empty() {
                self.approved_by.clone()
            } else {
                requires.approved_by.clone()
            },
            checks: if requires.checks.is_empty() { self.checks.clone() } else { requires.checks.clone() },
            method: requires.method.unwrap_or(self.method),
        }
    }
}

/// The approvals `rules` ask for that `approvals` (each approving reviewer, resolved to a
/// roster person where the roster knows the login) do not give: the count, then each role.
pub(super) fn approval_unmet(rules: &MergeRules, approvals: &[Actor]) -> Vec<Unmet> {
    let requires = MergeRequirements {
        approvals: Some(rules.approvals),
        approved_by: rules.approved_by.clone(),
        ..Default::default()
    };
    crate::requirements::unmet(&requires, &MergeEvidence { approvals: approvals.to_vec(), checks: Default::default() })
}

/// What a pull request lacks, `unmet` (its approvals) and every named check that has not
/// passed in `checks` (name, state, the forge's own word for it): `Ok` when nothing, else the
/// refusal that names `pull_request` and says how each failed check concluded.
pub(super) fn refuse_unmet(
    adapter: &'static str,
    operation: &'static str,
    key: &str,
    pull_request: &str,
    mut unmet: Vec<Unmet>,
    checks: Vec<(String, CheckState, String)>,
) -> Result<(), AdapterError> {
    let mut said = Vec::new();
    for (name, state, how) in checks {
        if state == CheckState::Failed {
            said.push(format!("check `{name}` concluded `{how}`"));
        }
        if state != CheckState::Passed {
            unmet.push(Unmet::Check { name, state });
        }
    }
    if unmet.is_empty() {
        return Ok(());
    }
    Err(AdapterError::unmet(adapter, operation, Some(key), pull_request, unmet, &said))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_requirement_wins_field_by_field() {
        let adapter = MergeRules { approvals: 1, checks: vec!["ci".into()], ..MergeRules::default() };
        let lead = RoleId::new("team_lead").unwrap();
        let spec = MergeRequirements {
            approvals: Some(2),
            approved_by: vec![lead.clone()],
            method: Some(MergeMethod::Squash),
            ..MergeRequirements::default()
        };
        assert_eq!(
            adapter.with(&spec),
            MergeRules {
                approvals: 2,
                approved_by: vec![lead],
                checks: vec!["ci".into()],
                method: MergeMethod::Squash
            }
        );
        assert_eq!(adapter.with(&MergeRequirements::default()), adapter);
    }
}
