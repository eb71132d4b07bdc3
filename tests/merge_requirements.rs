//! What a merge needs on the forge, judged by the engine: `Instance::may_with` holds the
//! `requires:` of the spec's matching merge actions against what the forge reports, after
//! the windows, and says what is missing as data.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use kars::spec::RoleId;
use kars::spec::calendar::resolve_local;
use kars::workflow::{Actor, CheckState, Instance, InstanceId, MergeEvidence, MergeRequest, Unmet, Workflow};

/// The bundled spec with feature merges into kars-dev requiring two approvals, the team
/// lead's among them, and `ci` green; a second merge action from `fix/*` asks for `lint`.
fn instance() -> Instance {
    let yaml = include_str!("../workflows/kars-release.yaml").replace(
        "action: { merge_pull_request: { from: feature, to: dev } }",
        "action: { merge_pull_request: { from: feature, to: dev, requires: { approvals: 2, approved_by: [team_lead], checks: [ci] } } }",
    );
    let spec = kars::spec::load(&yaml, "kars-release.yaml").unwrap();
    let workflow = Arc::new(Workflow::compile(&spec).unwrap());
    Instance::start(workflow, InstanceId::new("kars").unwrap(), toronto("2026-11-23 08:00"))
}

fn toronto(s: &str) -> DateTime<Utc> {
    resolve_local(chrono_tz::America::Toronto, NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
}

fn role(r: &str) -> RoleId {
    RoleId::new(r).unwrap()
}

fn feature() -> MergeRequest {
    MergeRequest { source: "feature/login".into(), target: "kars-dev".into() }
}

fn evidence(approvers: &[(&str, &[&str])], checks: &[(&str, CheckState)]) -> MergeEvidence {
    MergeEvidence {
        approvals: approvers
            .iter()
            .map(|(n, roles)| Actor::new(*n, roles.iter().map(|r| role(r)).collect::<Vec<_>>()))
            .collect(),
        checks: checks.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect::<BTreeMap<_, _>>(),
    }
}

#[test]
fn a_merge_missing_what_its_action_requires_is_refused_with_each_reason() {
    let instance = instance();
    let tuesday = toronto("2026-11-24 11:00");
    // `may` alone judges the windows: no window is open on Tuesday.
    assert!(instance.may(&feature(), tuesday).allowed);
    let nothing = instance.may_with(&feature(), &MergeEvidence::default(), tuesday);
    assert!(!nothing.allowed);
    assert_eq!(
        nothing.unmet,
        [
            Unmet::Approvals { needed: 2, given: 0 },
            Unmet::RoleApproval { role: role("team_lead") },
            Unmet::Check { name: "ci".into(), state: CheckState::Missing },
        ]
    );
    assert_eq!(
        nothing.reason,
        "the merge from `feature/login` into `kars-dev` requires what the pull request lacks: 0 of the 2 approvals it needs; no approval by a holder of role `team_lead`; check `ci` has not reported"
    );
    // Two developers approved and `ci` runs: the team lead and the check are still missing.
    let developers = evidence(&[("alice", &["developer"]), ("bob", &["developer"])], &[("ci", CheckState::Pending)]);
    let partly = instance.may_with(&feature(), &developers, tuesday);
    assert_eq!(
        partly.unmet,
        [
            Unmet::RoleApproval { role: role("team_lead") },
            Unmet::Check { name: "ci".into(), state: CheckState::Pending }
        ]
    );
    assert!(partly.unmet[1].is_pending() && !partly.unmet[0].is_pending());
    // The team lead and a developer approved, `ci` passed: allowed, and the reason says both.
    let met =
        evidence(&[("frank", &["team_lead", "developer"]), ("bob", &["developer"])], &[("ci", CheckState::Passed)]);
    let allowed = instance.may_with(&feature(), &met, tuesday);
    assert!(allowed.allowed && allowed.unmet.is_empty(), "{allowed:?}");
    assert_eq!(
        allowed.reason,
        "no open window restricts merges from `feature/login` into `kars-dev`; the pull request meets what the merge requires"
    );
    // A failed check is unmet however many approve.
    let failed = evidence(&[("frank", &["team_lead"]), ("bob", &["developer"])], &[("ci", CheckState::Failed)]);
    assert_eq!(
        instance.may_with(&feature(), &failed, tuesday).unmet,
        [Unmet::Check { name: "ci".into(), state: CheckState::Failed }]
    );
}

#[test]
fn windows_answer_first_and_merges_no_action_covers_are_judged_by_windows_alone() {
    let instance = instance();
    let saturday = toronto("2026-11-28 11:00");
    let met = evidence(&[("frank", &["team_lead"]), ("bob", &["developer"])], &[("ci", CheckState::Passed)]);
    let frozen = instance.may_with(&feature(), &met, saturday);
    assert!(!frozen.allowed && frozen.unmet.is_empty(), "{frozen:?}");
    assert_eq!(frozen, instance.may(&feature(), saturday), "the window's answer, unchanged");
    // `fix/*` into kars-dev: no merge action with `requires:` covers it.
    let fix = MergeRequest { source: "fix/typo".into(), target: "kars-dev".into() };
    let tuesday = toronto("2026-11-24 11:00");
    assert_eq!(instance.may_with(&fix, &MergeEvidence::default(), tuesday), instance.may(&fix, tuesday));
    assert_eq!(instance.merge_requirements("fix/typo", "kars-dev"), None);
    let required = instance.merge_requirements("feature/a", "kars-dev").unwrap();
    assert_eq!((required.approvals, required.checks.len()), (Some(2), 1));
    assert_eq!(instance.merge_requirements("feature/a", "kars-prod"), None);
}

#[test]
fn the_permission_json_leaves_out_an_empty_unmet_list() {
    let instance = instance();
    let tuesday = toronto("2026-11-24 11:00");
    let plain = serde_json::to_value(instance.may(&feature(), tuesday)).unwrap();
    assert!(plain.get("unmet").is_none(), "{plain}");
    let refused = serde_json::to_value(instance.may_with(&feature(), &MergeEvidence::default(), tuesday)).unwrap();
    assert_eq!(refused["unmet"][1], serde_json::json!({ "role_approval": { "role": "team_lead" } }));
}
