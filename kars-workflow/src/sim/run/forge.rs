//! The simulated forge: a pull request whose merge `requires:` reviews or checks gets
//! reviewers (holders of the `approved_by` roles first, then anyone, up to `approvals`) who
//! review in working time and approve or not, and named checks that conclude after a while,
//! passed or failed. The engine judges it all ([`crate::requirements::unmet`],
//! [`crate::Instance::may_with`]); this file only draws what the forge would report when.
//!
//! Nothing here draws from the random stream for a merge without `requires:`, so a spec
//! without them simulates exactly as before.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use kars_spec::spec::MergeRequirements;

use super::Sim;
use crate::event::Actor;
use crate::requirements::{self, CheckState, MergeEvidence, Unmet};

/// A pull request as the simulated forge will report it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ForgePr {
    /// Each review: when, by whom, and whether it approves.
    reviews: Vec<(DateTime<Utc>, Actor, bool)>,
    /// Each named check: when it concludes and whether it passes.
    checks: Vec<(String, DateTime<Utc>, bool)>,
    /// Whether a merge of it has waited for the forge already.
    pub(super) delayed: bool,
}

impl ForgePr {
    /// What the forge reports at `at`.
    pub(super) fn evidence_at(&self, at: DateTime<Utc>) -> MergeEvidence {
        let approvals = self.reviews.iter().filter(|(t, _, ok)| *ok && *t <= at).map(|(_, a, _)| a.clone()).collect();
        let checks = self
            .checks
            .iter()
            .map(|(name, t, passed)| {
                let state = match (*t <= at, *passed) {
                    (false, _) => CheckState::Pending,
                    (true, true) => CheckState::Passed,
                    (true, false) => CheckState::Failed,
                };
                (name.clone(), state)
            })
            .collect::<BTreeMap<_, _>>();
        MergeEvidence { approvals, checks }
    }

    /// The next instant after `at` when what the forge reports changes (a review or a check
    /// concludes).
    pub(super) fn next_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let reviews = self.reviews.iter().map(|(t, _, _)| *t);
        let checks = self.checks.iter().map(|(_, t, _)| *t);
        reviews.chain(checks).filter(|t| *t > at).min()
    }

    /// When the last check still running at `at` concludes.
    pub(super) fn checks_done_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.checks.iter().map(|(_, t, _)| *t).filter(|t| *t > at).max()
    }
}

impl Sim<'_> {
    /// A pull request opened at `opened` under `requires`: its reviewers, their reviews, and
    /// its named checks.
    pub(super) fn open_pull_request(&mut self, requires: &MergeRequirements, opened: DateTime<Utc>) -> ForgePr {
        let forge = self.model.forge;
        let workflow = std::sync::Arc::clone(&self.workflow);
        let (zone, holidays) = (workflow.zone(), workflow.holidays());
        let mut reviewers: Vec<usize> = Vec::new();
        for role in &requires.approved_by {
            let picked: Vec<&str> =
                reviewers.iter().map(|p| self.model.team.people[*p].actor.name().as_ref()).collect();
            let roles = std::slice::from_ref(role);
            let person = self
                .model
                .team
                .pick(roles, &picked, &mut self.rng)
                .or_else(|| self.model.team.pick(roles, &[], &mut self.rng));
            if let Some(person) = person
                && !reviewers.contains(&person)
            {
                reviewers.push(person);
            }
        }
        let wanted = usize::try_from(requires.approvals.unwrap_or(0)).unwrap_or(usize::MAX);
        while reviewers.len() < wanted.min(self.model.team.people.len()) {
            let picked: Vec<&str> =
                reviewers.iter().map(|p| self.model.team.people[*p].actor.name().as_ref()).collect();
            match self.model.team.pick_any(&picked, &mut self.rng) {
                Some(person) => reviewers.push(person),
                None => break,
            }
        }
        let mut reviews = Vec::with_capacity(reviewers.len());
        for person in reviewers {
            let minutes = self.sample(forge.review);
            let at = self.model.hours.add_around(opened, minutes, zone, holidays);
            let approves = self.rng.chance(forge.approval);
            reviews.push((at, self.model.team.people[person].actor.clone(), approves));
        }
        let mut checks = Vec::with_capacity(requires.checks.len());
        for name in &requires.checks {
            let minutes = self.sample(forge.checks);
            let passes = !self.rng.chance(forge.check_failure);
            checks.push((name.clone(), opened + Duration::minutes(i64::from(minutes)), passes));
        }
        ForgePr { reviews, checks, delayed: false }
    }

    /// When a forge adapter merging `pr` under `requires`, first called at `at`, is done, and
    /// what it found unmet (empty: it merged). Like the real adapters, it asks again while
    /// named checks still run and the approvals are in order (the merge is delayed), and is
    /// refused by anything else it finds unmet.
    pub(super) fn adapter_merge(
        &self,
        requires: &MergeRequirements,
        pr: &ForgePr,
        mut at: DateTime<Utc>,
    ) -> (DateTime<Utc>, Vec<Unmet>, bool) {
        let mut delayed = false;
        loop {
            let unmet = requirements::unmet(requires, &pr.evidence_at(at));
            let approvals_met = unmet.iter().all(|u| matches!(u, Unmet::Check { .. }));
            match pr.checks_done_after(at) {
                Some(done) if approvals_met && unmet.iter().any(Unmet::is_pending) => {
                    delayed = true;
                    at = done;
                }
                _ => return (at, unmet, delayed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(minutes)
    }

    #[test]
    fn the_forge_reports_what_has_happened_by_then() {
        let lead = Actor::new("frank", vec![kars_spec::RoleId::new("team_lead").unwrap()]);
        let pr = ForgePr {
            reviews: vec![(at(60), lead.clone(), true), (at(90), Actor::new("bob", vec![]), false)],
            checks: vec![("ci".into(), at(30), true), ("e2e".into(), at(120), false)],
            delayed: false,
        };
        let early = pr.evidence_at(at(10));
        assert!(early.approvals.is_empty());
        assert_eq!(early.checks["ci"], CheckState::Pending);
        let later = pr.evidence_at(at(120));
        assert_eq!(later.approvals, vec![lead]);
        assert_eq!(later.checks["ci"], CheckState::Passed);
        assert_eq!(later.checks["e2e"], CheckState::Failed);
        assert_eq!(pr.next_after(at(30)), Some(at(60)));
        assert_eq!(pr.next_after(at(120)), None);
        assert_eq!(pr.checks_done_after(at(30)), Some(at(120)));
    }
}
