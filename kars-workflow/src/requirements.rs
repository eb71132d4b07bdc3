//! What a merge needs on a forge (a spec's `requires:` on a `merge_pull_request` action) held
//! against what the forge reports about the pull request: [`MergeEvidence`] in, every
//! [`Unmet`] requirement out, as data. Pure and deterministic: the engine's
//! [`crate::Instance::may_with`], the forge adapters and the simulator all judge by
//! [`unmet`].

use std::collections::BTreeMap;
use std::fmt;

use kars_spec::RoleId;
use kars_spec::spec::MergeRequirements;
use serde::{Deserialize, Serialize};

use crate::event::Actor;

/// What the forge reports about a pull request, with reviewers resolved to people: what
/// [`crate::Instance::may_with`] judges a merge's `requires:` by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeEvidence {
    /// The approving reviews (the latest review of each reviewer), one per reviewer: the
    /// person the host resolved the forge login to, with that person's roles. A reviewer
    /// who is not on the roster is an actor without roles: the approval counts towards
    /// `approvals`, never towards `approved_by`.
    #[serde(default)]
    pub approvals: Vec<Actor>,
    /// The checks the forge reports on the pull request's head, by name; a name that is not
    /// here has not reported.
    #[serde(default)]
    pub checks: BTreeMap<String, CheckState>,
}

/// Where a named check stands on a pull request's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// It concluded well (GitHub's `success`, `neutral` or `skipped`; GitLab's `success`).
    Passed,
    /// It is queued or running.
    Pending,
    /// It concluded otherwise (failed, cancelled, timed out).
    Failed,
    /// Nothing of that name has reported on the head.
    Missing,
}

impl CheckState {
    /// `passed`, `pending`, `failed` or `missing`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Missing => "missing",
        }
    }
}

impl fmt::Display for CheckState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A requirement of a merge that the pull request does not meet, as data (journaled with a
/// refused merge, rendered only for people).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Unmet {
    /// Fewer approving reviews than `requires: approvals`.
    Approvals {
        /// How many are needed.
        needed: u32,
        /// How many there are.
        given: u32,
    },
    /// No approving review by a person who holds a role of `requires: approved_by`.
    RoleApproval {
        /// The role.
        role: RoleId,
    },
    /// A check of `requires: checks` has not passed on the head.
    Check {
        /// The check's name.
        name: String,
        /// Where it stands (never [`CheckState::Passed`]).
        state: CheckState,
    },
}

impl Unmet {
    /// Whether the forge is still working on it (a check queued, running or not reported
    /// yet): asking again later may find it met without anyone acting.
    #[must_use]
    pub fn is_pending(&self) -> bool {
        matches!(self, Unmet::Check { state: CheckState::Pending | CheckState::Missing, .. })
    }
}

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unmet::Approvals { needed, given } => write!(f, "{given} of the {needed} approvals it needs"),
            Unmet::RoleApproval { role } => write!(f, "no approval by a holder of role `{role}`"),
            Unmet::Check { name, state: CheckState::Pending } => write!(f, "check `{name}` is still running"),
            Unmet::Check { name, state: CheckState::Missing } => write!(f, "check `{name}` has not reported"),
            Unmet::Check { name, state } => write!(f, "check `{name}` {state}"),
        }
    }
}

/// The unmet requirements, in the order the spec writes them, joined for a sentence
/// (`1 of the 2 approvals it needs; check `ci` failed`).
#[must_use]
pub fn describe(unmet: &[Unmet]) -> String {
    unmet.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// What `requires` asks for that `evidence` does not show: approvals first, then each
/// `approved_by` role, then each named check, in the spec's order. Empty: every requirement
/// is met. A requirement the spec leaves out asks for nothing (a forge adapter adds its own
/// defaults on top).
#[must_use]
pub fn unmet(requires: &MergeRequirements, evidence: &MergeEvidence) -> Vec<Unmet> {
    let mut out = Vec::new();
    let given = u32::try_from(evidence.approvals.len()).unwrap_or(u32::MAX);
    if let Some(needed) = requires.approvals
        && given < needed
    {
        out.push(Unmet::Approvals { needed, given });
    }
    for role in &requires.approved_by {
        if !evidence.approvals.iter().any(|a| a.roles().contains(role)) {
            out.push(Unmet::RoleApproval { role: role.clone() });
        }
    }
    for name in &requires.checks {
        let state = evidence.checks.get(name).copied().unwrap_or(CheckState::Missing);
        if state != CheckState::Passed {
            out.push(Unmet::Check { name: name.clone(), state });
        }
    }
    out
}

/// The requirements of several merge actions together: the most approvals any asks for,
/// and every role and check any names (each once, in order).
#[must_use]
pub(crate) fn combine<'a>(all: impl Iterator<Item = &'a MergeRequirements>) -> Option<MergeRequirements> {
    let mut combined: Option<MergeRequirements> = None;
    for r in all {
        let c = combined.get_or_insert_with(MergeRequirements::default);
        c.approvals = match (c.approvals, r.approvals) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for role in &r.approved_by {
            if !c.approved_by.contains(role) {
                c.approved_by.push(role.clone());
            }
        }
        for check in &r.checks {
            if !c.checks.contains(check) {
                c.checks.push(check.clone());
            }
        }
    }
    combined
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(r: &str) -> RoleId {
        RoleId::new(r).unwrap()
    }

    fn requires() -> MergeRequirements {
        MergeRequirements {
            approvals: Some(2),
            approved_by: vec![role("team_lead")],
            checks: vec!["ci".into(), "lint".into()],
            method: None,
        }
    }

    #[test]
    fn everything_unmet_is_listed_in_the_spec_order() {
        let evidence = MergeEvidence {
            approvals: vec![Actor::new("bob", vec![role("developer")])],
            checks: BTreeMap::from([("ci".to_owned(), CheckState::Failed)]),
        };
        let unmet = unmet(&requires(), &evidence);
        assert_eq!(
            unmet,
            vec![
                Unmet::Approvals { needed: 2, given: 1 },
                Unmet::RoleApproval { role: role("team_lead") },
                Unmet::Check { name: "ci".into(), state: CheckState::Failed },
                Unmet::Check { name: "lint".into(), state: CheckState::Missing },
            ]
        );
        assert_eq!(
            describe(&unmet),
            "1 of the 2 approvals it needs; no approval by a holder of role `team_lead`; check `ci` failed; check `lint` has not reported"
        );
        assert!(!unmet[2].is_pending() && unmet[3].is_pending());
    }

    #[test]
    fn a_role_holder_among_the_approvers_meets_it() {
        let evidence = MergeEvidence {
            approvals: vec![
                Actor::new("frank", vec![role("team_lead"), role("developer")]),
                Actor::new("outsider", vec![]),
            ],
            checks: BTreeMap::from([("ci".to_owned(), CheckState::Passed), ("lint".to_owned(), CheckState::Passed)]),
        };
        assert_eq!(unmet(&requires(), &evidence), Vec::new());
        assert_eq!(unmet(&MergeRequirements::default(), &MergeEvidence::default()), Vec::new());
    }

    #[test]
    fn combined_requirements_take_the_strictest() {
        let a = MergeRequirements { approvals: Some(1), checks: vec!["ci".into()], ..Default::default() };
        let b = MergeRequirements {
            approvals: Some(2),
            approved_by: vec![role("qa")],
            checks: vec!["ci".into(), "e2e".into()],
            method: None,
        };
        let c = combine([&a, &b].into_iter()).unwrap();
        assert_eq!(c.approvals, Some(2));
        assert_eq!(c.approved_by, vec![role("qa")]);
        assert_eq!(c.checks, vec!["ci".to_owned(), "e2e".to_owned()]);
        assert_eq!(combine(std::iter::empty()), None);
    }

    #[test]
    fn unmet_requirements_are_tagged_json() {
        let json = serde_json::to_string(&Unmet::Check { name: "ci".into(), state: CheckState::Pending }).unwrap();
        assert_eq!(json, r#"{"check":{"name":"ci","state":"pending"}}"#);
        let json = serde_json::to_string(&Unmet::RoleApproval { role: role("team_lead") }).unwrap();
        assert_eq!(json, r#"{"role_approval":{"role":"team_lead"}}"#);
    }
}
