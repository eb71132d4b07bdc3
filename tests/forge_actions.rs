//! Deploys through GitHub Actions against the fake GitHub: a `workflow_dispatch` carrying the
//! release and the idempotency key, polled to completion, dispatched once per key.

#![cfg(feature = "forge")]

mod fake_forge;

use std::time::Duration;

use fake_forge::github::{self, GitHub};
use fake_forge::{FakeForge, Fault, TIMEOUT, TOKEN};
use kars::workflow::adapter::forge::{Dispatch, ForgeConfig, ForgeToken, GitHubActions};
use kars::workflow::driver::{Operation, Operations};
use kars::workflow::{ActionOutcome, EffectKind, ReleaseId};

fn actions(fake: &FakeForge<GitHub>) -> GitHubActions {
    let token = ForgeToken::new(TOKEN, "a test").unwrap();
    let config = ForgeConfig::github("keydatalab/kars", token).with_api(fake.url()).with_timeout(TIMEOUT);
    let dispatch = Dispatch {
        poll: Duration::from_millis(5),
        wait: Duration::from_secs(5),
        ..Dispatch::new("deploy.yml", "main")
    };
    GitHubActions::new(config, dispatch).unwrap()
}

fn deploy(key: &str) -> Operation {
    Operation {
        key: key.into(),
        release: ReleaseId::of(chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()),
        node: kars::spec::NodeId::new("Y").unwrap(),
        kind: EffectKind::Deploy { environment: kars::spec::EnvironmentId::new("production").unwrap(), url: None },
    }
}

#[test]
fn a_deploy_is_dispatched_with_its_key_and_polled_to_its_conclusion() {
    let fake = github::start(100);
    fake.with(|g| g.run_polls = 2);
    let ops = actions(&fake);
    assert_eq!(ops.run(&deploy("kars/2026-W48/Y/1")).unwrap(), Some(ActionOutcome::Succeeded));
    let run = fake.with(|g| g.runs[0].clone());
    assert_eq!(run.workflow, "deploy.yml");
    assert_eq!(run.inputs["kars_key"], "kars/2026-W48/Y/1");
    assert_eq!(run.inputs["release"], "2026-W48");
    assert_eq!(run.inputs["environment"], "production");
    assert_eq!(run.inputs["action"], "deploy");
    assert_eq!(fake.count("get_run"), 3);
    // The same key again (a replay): the run is found, nothing is dispatched.
    assert_eq!(ops.run(&deploy("kars/2026-W48/Y/1")).unwrap(), Some(ActionOutcome::Succeeded));
    assert_eq!(fake.count("dispatch"), 1);
}

#[test]
fn a_failed_run_is_a_failed_deploy_and_a_lost_dispatch_is_not_repeated() {
    let fake = github::start(100);
    fake.with(|g| g.run_conclusion = "failure".into());
    let ops = actions(&fake);
    fake.fault("dispatch", Fault::LoseAnswer);
    let err = ops.run(&deploy("kars/2026-W48/Y/1")).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(ops.run(&deploy("kars/2026-W48/Y/1")).unwrap(), Some(ActionOutcome::Failed));
    assert_eq!(fake.count("dispatch"), 1);
    // A pull request is not a deploy.
    let mut op = deploy("k/V");
    op.kind = EffectKind::OpenPullRequest { from: "kars-dev".into(), to: "kars-prod".into() };
    assert!(!ops.run(&op).unwrap_err().is_transient());
}

#[test]
fn a_run_longer_than_the_wait_is_throttled_and_waited_on_by_the_retry() {
    let fake = github::start(100);
    fake.with(|g| g.run_polls = 1000);
    let token = ForgeToken::new(TOKEN, "a test").unwrap();
    let config = ForgeConfig::github("keydatalab/kars", token).with_api(fake.url()).with_timeout(TIMEOUT);
    let dispatch = Dispatch {
        poll: Duration::from_millis(5),
        wait: Duration::from_millis(30),
        ..Dispatch::new("deploy.yml", "main")
    };
    let ops = GitHubActions::new(config, dispatch).unwrap();
    let err = ops.run(&deploy("k/Y")).unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_millis(5)), "{err}");
    fake.with(|g| g.run_polls = 0);
    assert_eq!(ops.run(&deploy("k/Y")).unwrap(), Some(ActionOutcome::Succeeded));
    assert_eq!(fake.count("dispatch"), 1);
}

/// Runs of other keys dispatched after ours, so that ours is on a later page.
fn newer_runs(fake: &FakeForge<GitHub>, workflow: &str, n: usize) {
    fake.with(|g| {
        for i in 0..n {
            let id = 20_000 + g.runs.len() as u64;
            g.runs.push(github::Run {
                id,
                workflow: workflow.into(),
                inputs: serde_json::json!({ "kars_key": format!("other/{i}") }),
                status: "completed".into(),
                conclusion: Some("success".into()),
                polls: 0,
            });
        }
    });
}

#[test]
fn a_retry_finds_its_run_on_a_later_page_and_does_not_dispatch_again() {
    // Pages of 10 runs: ours is the oldest of 36 (page 4).
    let fake = github::start(10);
    let ops = actions(&fake);
    fake.fault("dispatch", Fault::LoseAnswer);
    let err = ops.run(&deploy("kars/2026-W48/Y/1")).unwrap_err();
    assert!(err.is_transient(), "{err}");
    newer_runs(&fake, "deploy.yml", 30);
    // Runs of another workflow are not searched.
    newer_runs(&fake, "nightly.yml", 5);
    assert_eq!(ops.run(&deploy("kars/2026-W48/Y/1")).unwrap(), Some(ActionOutcome::Succeeded));
    assert_eq!(fake.count("dispatch"), 1);
    assert_eq!(fake.count("list_runs"), 1 + 4, "the lost dispatch's search, then four pages");
    // The search names the workflow and the week before the release's Monday.
    let seen: Vec<String> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/runs"))
        .map(|s| format!("{}?{}", s.path, s.query))
        .collect();
    assert!(seen[0].contains("/actions/workflows/deploy.yml/runs?"), "{seen:?}");
    assert!(seen[0].contains("created=%3E%3D2026-11-16"), "{seen:?}");
}

#[test]
fn a_search_cut_short_refuses_instead_of_dispatching_a_second_deploy() {
    // Pages of one run and more runs than the search reads: the key cannot be ruled out.
    let fake = github::start(1);
    newer_runs(&fake, "deploy.yml", 25);
    let ops = actions(&fake);
    let err = ops.run(&deploy("kars/2026-W48/Y/1")).unwrap_err();
    assert!(!err.is_transient(), "{err}");
    let text = err.to_string();
    assert!(text.contains("cannot tell whether this deploy was dispatched"), "{text}");
    assert!(text.contains("kars instance act --node Y --outcome succeeded"), "{text}");
    assert_eq!(fake.count("dispatch"), 0);
}
