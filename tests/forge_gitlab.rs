//! The GitLab adapter against the GitLab flavour of the fake forge: the same contract as the
//! GitHub adapter, with GitLab's statuses (`checking`, `approvals_left`, 405/406/409, 429).

#![cfg(feature = "forge")]

mod fake_forge;

use std::time::Duration;

use fake_forge::gitlab::{self, GitLab};
use fake_forge::{FakeForge, Fault, TIMEOUT, TOKEN};
use kars::workflow::adapter::forge::{ForgeConfig, ForgeToken, GitLabVcs, MergeMethod, MergeRules};
use kars::workflow::adapter::{AdapterError, BranchSelector, MergeRequest, OpenPullRequest, ReviewState, Vcs};

fn adapter(fake: &FakeForge<GitLab>, rules: MergeRules) -> GitLabVcs {
    let token = ForgeToken::new(TOKEN, "a test").unwrap();
    let config =
        ForgeConfig::gitlab(gitlab::PROJECT, token).with_api(fake.url()).with_rules(rules).with_timeout(TIMEOUT);
    GitLabVcs::new(config).unwrap()
}

fn open(key: &str) -> OpenPullRequest {
    OpenPullRequest {
        key: key.into(),
        from: BranchSelector::Name("kars-dev".into()),
        to: "kars-prod".into(),
        title: "2026-W48: dev -> prod".into(),
    }
}

fn dev_to_prod(key: &str) -> MergeRequest {
    MergeRequest { key: key.into(), from: BranchSelector::Name("kars-dev".into()), to: "kars-prod".into() }
}

fn text(err: &AdapterError) -> String {
    let text = format!("{err} {err:?}");
    assert!(!text.contains(TOKEN), "the token leaked: {text}");
    text
}

/// The dev → prod merge request opened through the adapter and approved by frank.
fn approved(rules: MergeRules) -> (FakeForge<GitLab>, GitLabVcs, u64) {
    let fake = gitlab::start(100);
    let vcs = adapter(&fake, rules);
    let iid: u64 = vcs.open_pull_request(&open("kars/2026-W48/V/1")).unwrap().id.parse().unwrap();
    fake.with(|g| g.mr_mut(iid).approved_by.push("frank".into()));
    (fake, vcs, iid)
}

#[test]
fn a_merge_request_is_opened_once_per_key_even_when_the_answer_is_lost() {
    let fake = gitlab::start(100);
    let vcs = adapter(&fake, MergeRules::default());
    fake.fault("create_mr", Fault::LoseAnswer);
    assert!(vcs.open_pull_request(&open("k/V")).unwrap_err().is_transient());
    let first = vcs.open_pull_request(&open("k/V")).unwrap();
    assert_eq!(vcs.open_pull_request(&open("k/V")).unwrap(), first);
    assert_eq!(fake.count("create_mr"), 1);
    assert!(fake.with(|g| g.mr(1).description.contains("<!-- kars-pr-key: k/V -->")));
    // Another key adopts the open one (GitLab's 409 "already exists").
    assert_eq!(vcs.open_pull_request(&open("k/V2")).unwrap().id, first.id);
    assert!(fake.seen().iter().all(|s| s.authorized && s.path.starts_with("/projects/keydatalab%2Fkars/")));
}

#[test]
fn a_guarded_merge_lost_in_transit_is_found_merged_by_the_retry() {
    let (fake, vcs, iid) = approved(MergeRules { method: MergeMethod::Squash, ..MergeRules::default() });
    fake.fault("merge", Fault::LoseAnswer);
    assert!(vcs.merge(&dev_to_prod("k/X")).unwrap_err().is_transient());
    let outcome = vcs.merge(&dev_to_prod("k/X")).unwrap();
    assert!(outcome.replayed);
    assert_eq!(fake.count("merge"), 1);
    assert_eq!(fake.with(|g| g.mr(iid).squashed), Some(true));
    assert_eq!(vcs.review_state(&iid.to_string()).unwrap(), ReviewState::Merged);
}

#[test]
fn gitlab_statuses_map_to_the_workflow() {
    let (fake, vcs, iid) = approved(MergeRules::default());
    assert_eq!(vcs.review_state(&iid.to_string()).unwrap(), ReviewState::Approved);
    // Still checking: ask again shortly.
    fake.with(|g| g.mr_mut(iid).checking = 1);
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)), "{}", text(&err));
    // 429 with Retry-After.
    fake.fault("list_mrs", Fault::SecondaryRateLimit { retry_after: 5 });
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(err.is_transient(), "{}", text(&err));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    // Approvals left.
    fake.with(|g| g.mr_mut(iid).approvals_required = 2);
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("1 of the 2 approvals it needs"), "{err}");
    assert_eq!(err.unmet_requirements(), [kars::workflow::Unmet::Approvals { needed: 2, given: 1 }]);
    fake.with(|g| g.mr_mut(iid).approved_by.push("bob".into()));
    // The head moves between the read and the merge: 409.
    fake.fault("merge", Fault::MoveHead);
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("SHA does not match HEAD"), "{err}");
    // A conflict.
    fake.with(|g| g.mr_mut(iid).conflict = true);
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("has conflicts"), "{err}");
    fake.with(|g| g.mr_mut(iid).conflict = false);
    assert!(vcs.merge(&dev_to_prod("k/X")).is_ok());
}

#[test]
fn named_checks_are_jobs_of_the_head_pipeline() {
    let (fake, vcs, iid) = approved(MergeRules { checks: vec!["test".into()], ..MergeRules::default() });
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(err.retry_after().is_some() && text(&err).contains("no pipeline"), "{err}");
    fake.with(|g| {
        g.mr_mut(iid).pipeline = Some((77, vec![("lint".into(), "success".into()), ("test".into(), "running".into())]))
    });
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(err.retry_after().is_some() && text(&err).contains("`running`"), "{err}");
    fake.with(|g| g.mr_mut(iid).pipeline.as_mut().unwrap().1[1].1 = "failed".into());
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("`failed`"), "{err}");
    fake.with(|g| g.mr_mut(iid).pipeline.as_mut().unwrap().1[1].1 = "success".into());
    assert!(vcs.merge(&dev_to_prod("k/X")).is_ok());
}

#[test]
fn a_pattern_merges_every_matching_merge_request_across_pages() {
    let fake = gitlab::start(2);
    let vcs = adapter(&fake, MergeRules::default());
    fake.with(|g| {
        for branch in ["feature/a", "feature/b", "feature/c", "fix/d"] {
            g.push(branch);
            let iid = g.open_mr(branch, "kars-dev");
            g.mr_mut(iid).approved_by.push("bob".into());
        }
    });
    let request =
        MergeRequest { key: "k/G".into(), from: BranchSelector::Pattern("feature/*".into()), to: "kars-dev".into() };
    let outcome = vcs.merge(&request).unwrap();
    assert_eq!(outcome.merged.len(), 3);
    assert_eq!(fake.with(|g| g.mrs.iter().filter(|m| m.state == "merged").count()), 3);
    assert!(fake.seen().iter().any(|s| s.query.contains("page=2")));
    assert_eq!(vcs.head("feature/a").unwrap(), fake.with(|g| g.branches.get("feature/a").cloned()));
    assert_eq!(vcs.head("nope").unwrap(), None);
    let rebase = adapter(&fake, MergeRules { method: MergeMethod::Rebase, ..MergeRules::default() });
    assert!(!rebase.merge(&request).unwrap_err().is_transient());
}

fn deploy(key: &str) -> kars::workflow::driver::Operation {
    kars::workflow::driver::Operation {
        key: key.into(),
        release: kars::workflow::ReleaseId::of(chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()),
        node: kars::spec::NodeId::new("Y").unwrap(),
        kind: kars::workflow::EffectKind::Deploy {
            environment: kars::spec::EnvironmentId::new("production").unwrap(),
            url: None,
        },
    }
}

#[test]
fn a_deploy_runs_as_a_pipeline_once_per_key_and_reports_how_it_ended() {
    use kars::workflow::ActionOutcome;
    use kars::workflow::adapter::forge::GitLabPipelines;
    use kars::workflow::driver::Operations;
    let fake = gitlab::start(100);
    fake.with(|g| g.pipeline_polls = 2);
    let token = ForgeToken::new(TOKEN, "a test").unwrap();
    let config = ForgeConfig::gitlab(gitlab::PROJECT, token).with_api(fake.url()).with_timeout(TIMEOUT);
    let ops =
        GitLabPipelines::new(config, "main").unwrap().with_polling(Duration::from_millis(5), Duration::from_secs(5));
    fake.fault("create_pipeline", Fault::LoseAnswer);
    assert!(ops.run(&deploy("kars/2026-W48/Y/1")).unwrap_err().is_transient());
    assert_eq!(ops.run(&deploy("kars/2026-W48/Y/1")).unwrap(), Some(ActionOutcome::Succeeded));
    assert_eq!(fake.count("create_pipeline"), 1);
    let pipeline = fake.with(|g| g.pipelines[0].clone());
    assert_eq!(pipeline.variables["KARS_KEY"], "kars/2026-W48/Y/1");
    assert_eq!(pipeline.variables["KARS_RELEASE"], "2026-W48");
    assert_eq!(pipeline.variables["KARS_ACTION"], "deploy");
    assert_eq!(pipeline.variables["KARS_ENVIRONMENT"], "production");
    fake.with(|g| g.pipeline_status = "failed".into());
    assert_eq!(ops.run(&deploy("kars/2026-W48/Y/2")).unwrap(), Some(ActionOutcome::Failed));
    assert_eq!(fake.count("create_pipeline"), 2);
}

#[test]
fn a_roles_approval_counts_only_from_a_username_the_roster_gives_a_holder() {
    use kars::spec::spec::MergeRequirements;
    let spec = kars::spec::load(include_str!("../workflows/kars-release.yaml"), "kars-release.yaml").unwrap();
    let team = "frank: { roles: [team_lead], gitlab: fkeller }\nbob: { roles: [developer], gitlab: bob }\n";
    let roster = kars::workflow::driver::Roster::from_yaml(team, "team.yaml", spec.spec()).unwrap();
    let lead = kars::spec::RoleId::new("team_lead").unwrap();
    let requires = MergeRequirements { approved_by: vec![lead.clone()], ..Default::default() };
    let (fake, vcs, iid) = approved(MergeRules::default());
    let err = vcs.merge_requiring(&dev_to_prod("k/X"), &requires, &roster).unwrap_err();
    assert!(!err.is_transient(), "{}", text(&err));
    assert_eq!(err.unmet_requirements(), [kars::workflow::Unmet::RoleApproval { role: lead }]);
    fake.with(|g| g.mr_mut(iid).approved_by.push("fkeller".into()));
    assert!(vcs.merge_requiring(&dev_to_prod("k/X"), &requires, &roster).is_ok());
    assert_eq!(fake.count("merge"), 1);
}
