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
