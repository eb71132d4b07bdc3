//! The GitHub adapter against the fake GitHub of `tests/fake_forge`: each documented answer
//! maps to the failure the workflow routes (permanent with GitHub's reason, transient, or
//! throttled with the wait GitHub asked for), retries after lost answers find the work done,
//! and the token never shows.

#![cfg(feature = "forge")]

mod fake_forge;

use std::time::Duration;

use fake_forge::github::{self, GitHub};
use fake_forge::{FakeForge, Fault, TIMEOUT, TOKEN};
use kars::workflow::adapter::forge::{ForgeConfig, ForgeToken, GitHubVcs, MergeMethod, MergeRules};
use kars::workflow::adapter::{AdapterError, BranchSelector, MergeRequest, OpenPullRequest, ReviewState, Vcs};
use kars::workflow::{CheckState, Unmet};

fn adapter(fake: &FakeForge<GitHub>, rules: MergeRules) -> GitHubVcs {
    let token = ForgeToken::new(TOKEN, "a test").unwrap();
    let config = ForgeConfig::github(format!("{}/{}", github::OWNER, github::REPO), token)
        .with_api(fake.url())
        .with_rules(rules)
        .with_timeout(TIMEOUT);
    GitHubVcs::new(config).unwrap()
}

fn open(key: &str) -> OpenPullRequest {
    OpenPullRequest {
        key: key.into(),
        from: BranchSelector::Name("kars-dev".into()),
        to: "kars-prod".into(),
        title: "2026-W48: dev -> prod".into(),
    }
}

fn merge(key: &str, from: BranchSelector, to: &str) -> MergeRequest {
    MergeRequest { key: key.into(), from, to: to.into() }
}

fn dev_to_prod(key: &str) -> MergeRequest {
    merge(key, BranchSelector::Name("kars-dev".into()), "kars-prod")
}

/// Every error's text, checked not to hold the token.
fn text(err: &AdapterError) -> String {
    let text = format!("{err} {err:?}");
    assert!(!text.contains(TOKEN), "the token leaked: {text}");
    text
}

/// A fake with the dev → prod pull request opened through the adapter and approved by frank.
fn approved(rules: MergeRules) -> (FakeForge<GitHub>, GitHubVcs, u64) {
    let fake = github::start(100);
    let vcs = adapter(&fake, rules);
    let pr = vcs.open_pull_request(&open("kars/2026-W48/V/1")).unwrap();
    let number: u64 = pr.id.parse().unwrap();
    fake.with(|g| g.review(number, "frank", "APPROVED"));
    (fake, vcs, number)
}

#[test]
fn a_pull_request_is_opened_once_per_key_with_the_key_in_its_description() {
    let fake = github::start(100);
    let vcs = adapter(&fake, MergeRules::default());
    let first = vcs.open_pull_request(&open("kars/2026-W48/V/1")).unwrap();
    let again = vcs.open_pull_request(&open("kars/2026-W48/V/1")).unwrap();
    assert_eq!(first, again);
    assert_eq!(first.sources[0].branch, "kars-dev");
    assert_eq!(fake.count("create_pull"), 1);
    let body = fake.with(|g| g.pull(1).body.clone());
    assert!(body.contains("<!-- kars-pr-key: kars/2026-W48/V/1 -->"), "{body}");
    assert!(fake.seen().iter().all(|s| s.authorized));
    assert!(fake.seen().iter().all(|s| s.path.starts_with("/repos/keydatalab/kars/")));
}

#[test]
fn an_open_whose_answer_was_lost_is_found_by_the_retry() {
    let fake = github::start(100);
    let vcs = adapter(&fake, MergeRules::default());
    fake.fault("create_pull", Fault::LoseAnswer);
    let err = vcs.open_pull_request(&open("kars/2026-W48/V/1")).unwrap_err();
    assert!(err.is_transient(), "{}", text(&err));
    let pr = vcs.open_pull_request(&open("kars/2026-W48/V/1")).unwrap();
    assert_eq!(pr.id, "1");
    assert_eq!(fake.with(|g| g.pulls.len()), 1);
    assert_eq!(fake.count("create_pull"), 1);
}

#[test]
fn a_pull_request_someone_opened_is_adopted_and_patterns_are_refused() {
    let fake = github::start(100);
    let vcs = adapter(&fake, MergeRules::default());
    let theirs = fake.with(|g| g.open_pull("kars-dev", "kars-prod"));
    assert_eq!(vcs.open_pull_request(&open("k/1")).unwrap().id, theirs.to_string());
    let mut request = open("k/2");
    request.from = BranchSelector::Pattern("feature/*".into());
    let err = vcs.open_pull_request(&request).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("pattern `feature/*`"), "{err}");
    // A missing branch: GitHub's 422 is permanent with its reason.
    request.from = BranchSelector::Name("nope".into());
    let err = vcs.open_pull_request(&request).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("Validation Failed"), "{err}");
}

#[test]
fn a_merge_is_guarded_by_the_approved_head_and_uses_the_rules_method() {
    let rules = MergeRules { method: MergeMethod::Squash, ..MergeRules::default() };
    let (fake, vcs, number) = approved(rules);
    let approved_head = fake.with(|g| g.pull(number).head_sha.clone());
    let outcome = vcs.merge(&dev_to_prod("kars/2026-W48/X/1")).unwrap();
    assert!(!outcome.replayed);
    assert_eq!(outcome.merged.len(), 1);
    assert_eq!(outcome.merged[0].commit, approved_head);
    let pull = fake.with(|g| g.pull(number).clone());
    assert!(pull.merged && pull.merge_method.as_deref() == Some("squash"));
    assert_eq!(Some(outcome.head), fake.with(|g| g.branches.get("kars-prod").cloned()));
    assert!(pull.body.contains("<!-- kars-merge-key: kars/2026-W48/X/1 -->"), "{}", pull.body);
    assert_eq!(vcs.review_state(&number.to_string()).unwrap(), ReviewState::Merged);
}

#[test]
fn a_merge_whose_answer_was_lost_is_found_merged_by_the_retry() {
    let (fake, vcs, number) = approved(MergeRules::default());
    fake.fault("merge", Fault::LoseAnswer);
    let err = vcs.merge(&dev_to_prod("kars/2026-W48/X/1")).unwrap_err();
    assert!(err.is_transient(), "{}", text(&err));
    assert!(fake.with(|g| g.pull(number).merged));
    let outcome = vcs.merge(&dev_to_prod("kars/2026-W48/X/1")).unwrap();
    assert!(outcome.replayed);
    assert_eq!(outcome.merged[0].branch, "kars-dev");
    assert_eq!(fake.count("merge"), 1);
    // An answer cut mid-way after the work: transient too, and found by the retry.
    let number: u64 = vcs.open_pull_request(&open("kars/2026-W49/V/1")).unwrap().id.parse().unwrap();
    fake.with(|g| g.review(number, "frank", "APPROVED"));
    fake.fault("merge", Fault::DropAnswer);
    let err = vcs.merge(&dev_to_prod("kars/2026-W49/X/1")).unwrap_err();
    assert!(err.is_transient(), "{}", text(&err));
    // Someone opens a new pull request before the retry: the retry still finds its own.
    fake.with(|g| {
        g.push("kars-dev");
        let newer = g.open_pull("kars-dev", "kars-prod");
        g.review(newer, "frank", "APPROVED");
    });
    assert!(vcs.merge(&dev_to_prod("kars/2026-W49/X/1")).unwrap().replayed);
    assert_eq!(fake.count("merge"), 2);
    // Another key merges the newer one; then there is none left: permanent, with what to do.
    assert!(!vcs.merge(&dev_to_prod("kars/2026-W50/X/1")).unwrap().replayed);
    let err = vcs.merge(&dev_to_prod("kars/2026-W51/X/1")).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("no open pull request from `kars-dev`"), "{err}");
}

#[test]
fn mergeable_null_while_github_computes_means_ask_again_shortly() {
    let fake = github::start(100);
    fake.with(|g| g.computing_reads = 1);
    let vcs = adapter(&fake, MergeRules::default());
    let number: u64 = vcs.open_pull_request(&open("k/V")).unwrap().id.parse().unwrap();
    fake.with(|g| g.review(number, "frank", "APPROVED"));
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)), "{}", text(&err));
    assert!(text(&err).contains("still computing"));
    assert!(vcs.merge(&dev_to_prod("k/X")).is_ok());
}

#[test]
fn rate_limits_are_throttled_with_the_wait_github_asks_for() {
    let (fake, vcs, _) = approved(MergeRules::default());
    fake.fault("list_pulls", Fault::SecondaryRateLimit { retry_after: 7 });
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)), "{}", text(&err));
    fake.fault("get_pull", Fault::PrimaryRateLimit { reset_in: 120 });
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    let wait = err.retry_after().unwrap();
    assert!(wait >= Duration::from_secs(118) && wait <= Duration::from_secs(120), "{wait:?}: {}", text(&err));
    assert!(vcs.merge(&dev_to_prod("k/X")).is_ok());
}

#[test]
fn server_errors_are_transient_and_a_bad_token_is_permanent_without_showing_it() {
    let (fake, vcs, _) = approved(MergeRules::default());
    fake.fault("reviews", Fault::ServerError);
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(err.is_transient() && err.retry_after().is_none(), "{}", text(&err));
    let token = ForgeToken::new("wrong-token", "a test").unwrap();
    let config = ForgeConfig::github("keydatalab/kars", token).with_api(fake.url()).with_timeout(TIMEOUT);
    let wrong = GitHubVcs::new(config).unwrap();
    let err = wrong.head("kars-dev").unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("HTTP 401"), "{err}");
    assert!(!text(&err).contains("wrong-token"));
    assert_eq!(format!("{wrong:?}").matches("***").count(), 1, "{wrong:?}");
    assert!(!format!("{wrong:?}").contains("wrong-token"));
}

#[test]
fn a_head_that_moved_after_approval_is_refused_before_and_at_the_merge() {
    let (fake, vcs, number) = approved(MergeRules::default());
    fake.with(|g| g.push("kars-dev"));
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("after it was approved"), "{err}");
    fake.with(|g| g.review(number, "frank", "APPROVED"));
    // The head moves between the adapter's read and its merge: GitHub's 409.
    fake.fault("merge", Fault::MoveHead);
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("Head branch was modified"), "{err}");
    assert!(!fake.with(|g| g.pull(number).merged));
}

#[test]
fn conflicts_missing_approvals_and_requested_changes_are_permanent_with_the_reason() {
    let (fake, vcs, number) = approved(MergeRules { approvals: 2, ..MergeRules::default() });
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("1 of the 2 approvals it needs"), "{err}");
    assert_eq!(err.unmet_requirements(), [Unmet::Approvals { needed: 2, given: 1 }]);
    fake.with(|g| g.review(number, "bob", "CHANGES_REQUESTED"));
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(text(&err).contains("changes requested by `bob`"), "{err}");
    assert_eq!(vcs.review_state(&number.to_string()).unwrap(), ReviewState::ChangesRequested);
    fake.with(|g| {
        g.review(number, "bob", "APPROVED");
        g.pull_mut(number).conflict = true;
    });
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("mergeable state is `dirty`"), "{err}");
    assert_eq!(fake.count("merge"), 0);
}

#[test]
fn named_checks_must_conclude_well_on_the_approved_head() {
    let rules = MergeRules { checks: vec!["ci".into()], ..MergeRules::default() };
    let (fake, vcs, number) = approved(rules);
    let sha = fake.with(|g| g.pull(number).head_sha.clone());
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(err.retry_after().is_some() && text(&err).contains("has not reported"), "{err}");
    fake.with(|g| g.checks.insert(sha.clone(), vec![("ci".into(), "in_progress".into(), None)]));
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(err.retry_after().is_some() && text(&err).contains("`in_progress`"), "{err}");
    fake.with(|g| g.checks.insert(sha.clone(), vec![("ci".into(), "completed".into(), Some("failure".into()))]));
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("concluded `failure`"), "{err}");
    assert_eq!(err.unmet_requirements(), [Unmet::Check { name: "ci".into(), state: CheckState::Failed }]);
    fake.with(|g| g.checks.get_mut(&sha).unwrap().push(("ci".into(), "completed".into(), Some("success".into()))));
    assert!(vcs.merge(&dev_to_prod("k/X")).is_ok());
}

#[test]
fn a_named_check_without_a_check_run_is_read_from_the_commit_statuses() {
    let rules = MergeRules { checks: vec!["jenkins".into()], ..MergeRules::default() };
    let (fake, vcs, number) = approved(rules);
    let sha = fake.with(|g| g.pull(number).head_sha.clone());
    fake.with(|g| g.statuses.insert(sha.clone(), vec![("jenkins".into(), "pending".into())]));
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(err.retry_after().is_some() && text(&err).contains("`pending`"), "{err}");
    fake.with(|g| g.statuses.insert(sha.clone(), vec![("jenkins".into(), "error".into())]));
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("concluded `error`"), "{err}");
    fake.with(|g| g.statuses.insert(sha.clone(), vec![("jenkins".into(), "success".into())]));
    assert!(vcs.merge(&dev_to_prod("k/X")).is_ok());
}

#[test]
fn a_pattern_merges_every_matching_pull_request_across_pages() {
    let fake = github::start(2);
    let vcs = adapter(&fake, MergeRules { approvals: 3, ..MergeRules::default() });
    let numbers: Vec<u64> = fake.with(|g| {
        let mut numbers = Vec::new();
        for branch in ["feature/a", "feature/b", "feature/c", "fix/d"] {
            g.push(branch);
            let n = g.open_pull(branch, "kars-dev");
            // Three approvals: the reviews span two pages.
            for who in ["bob", "frank", "alice"] {
                g.review(n, who, "APPROVED");
            }
            numbers.push(n);
        }
        numbers
    });
    let feature = BranchSelector::Pattern("feature/*".into());
    let outcome = vcs.merge(&merge("kars/2026-W48/G/1", feature.clone(), "kars-dev")).unwrap();
    let mut branches: Vec<String> = outcome.merged.iter().map(|b| b.branch.clone()).collect();
    branches.sort();
    assert_eq!(branches, ["feature/a", "feature/b", "feature/c"]);
    assert!(!fake.with(|g| g.pull(numbers[3]).merged));
    assert!(fake.seen().iter().any(|s| s.query.contains("page=2")), "pagination was not followed");
    // Nothing left to merge: a pattern merges nothing, and says so.
    let outcome = vcs.merge(&merge("kars/2026-W48/G/2", feature, "kars-dev")).unwrap();
    assert!(outcome.merged.is_empty());
}

#[test]
fn heads_are_read_and_missing_branches_are_none() {
    let fake = github::start(100);
    fake.with(|g| g.push("feature/login"));
    let vcs = adapter(&fake, MergeRules::default());
    assert_eq!(vcs.head("feature/login").unwrap(), fake.with(|g| g.branches.get("feature/login").cloned()));
    assert_eq!(vcs.head("nope").unwrap(), None);
    assert!(!vcs.review_state("12").unwrap_err().is_transient());
}

#[test]
fn named_checks_are_found_past_the_first_page() {
    let rules = MergeRules { checks: vec!["ci".into(), "jenkins".into()], ..MergeRules::default() };
    let (fake, vcs, number) = approved(rules);
    let sha = fake.with(|g| g.pull(number).head_sha.clone());
    fake.with(|g| {
        g.page_cap = 2;
        // `ci` is the oldest of six check runs; `jenkins` the last of seven statuses.
        let mut runs = vec![("ci".to_owned(), "completed".to_owned(), Some("success".to_owned()))];
        runs.extend((0..5).map(|i| (format!("lint-{i}"), "completed".to_owned(), Some("failure".to_owned()))));
        g.checks.insert(sha.clone(), runs);
        let mut statuses: Vec<(String, String)> = (0..6).map(|i| (format!("deploy-{i}"), "failure".into())).collect();
        statuses.push(("jenkins".into(), "failure".into()));
        g.statuses.insert(sha.clone(), statuses);
    });
    let err = vcs.merge(&dev_to_prod("k/X")).unwrap_err();
    assert!(!err.is_transient() && text(&err).contains("check `jenkins`") && text(&err).contains("`failure`"), "{err}");
    fake.with(|g| g.statuses.get_mut(&sha).unwrap().last_mut().unwrap().1 = "success".into());
    assert!(vcs.merge(&dev_to_prod("k/X")).is_ok());
    assert_eq!(fake.count("status"), 2 * 4, "two merges, four pages of statuses each");
}

/// The bundled spec's roles, and a roster that knows frank (the team lead) on GitHub as
/// `frank-k` and bob (a developer) as `bob`.
fn roster() -> kars::workflow::driver::Roster {
    let spec = kars::spec::load(include_str!("../workflows/kars-release.yaml"), "kars-release.yaml").unwrap();
    let team = "frank: { roles: [team_lead, developer], github: frank-k }\nbob: { roles: [developer], github: bob }\n";
    kars::workflow::driver::Roster::from_yaml(team, "team.yaml", spec.spec()).unwrap()
}

#[test]
fn a_roles_approval_counts_only_from_a_login_the_roster_gives_a_holder() {
    use kars::spec::spec::MergeRequirements;
    let (fake, vcs, number) = approved(MergeRules::default());
    let lead = kars::spec::RoleId::new("team_lead").unwrap();
    let requires =
        MergeRequirements { approved_by: vec![lead.clone()], checks: vec!["ci".into()], ..Default::default() };
    let sha = fake.with(|g| g.pull(number).head_sha.clone());
    fake.with(|g| g.checks.insert(sha, vec![("ci".into(), "completed".into(), Some("failure".into()))]));
    // `frank` approved, but the roster's frank is `frank-k` on GitHub: no team lead approved,
    // and `ci` failed; both are listed, and nothing merges.
    let err = vcs.merge_requiring(&dev_to_prod("k/X"), &requires, &roster()).unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert_eq!(
        err.unmet_requirements(),
        [Unmet::RoleApproval { role: lead.clone() }, Unmet::Check { name: "ci".into(), state: CheckState::Failed }]
    );
    assert!(
        text(&err).contains(
            "no approval by a holder of role `team_lead`; check `ci` failed (check `ci` concluded `failure`)"
        ),
        "{err}"
    );
    // A developer's approval is not the team lead's.
    fake.with(|g| g.review(number, "bob", "APPROVED"));
    let requires = MergeRequirements { approved_by: vec![lead.clone()], ..Default::default() };
    let err = vcs.merge_requiring(&dev_to_prod("k/X"), &requires, &roster()).unwrap_err();
    assert_eq!(err.unmet_requirements(), [Unmet::RoleApproval { role: lead }]);
    // The team lead approves under the login the roster knows (GitHub ignores case): merged.
    fake.with(|g| g.review(number, "Frank-K", "APPROVED"));
    assert!(vcs.merge_requiring(&dev_to_prod("k/X"), &requires, &roster()).is_ok());
    assert!(fake.with(|g| g.pull(number).merged));
}
