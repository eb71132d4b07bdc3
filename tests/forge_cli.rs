//! `kars instance … --forge github:OWNER/REPO --forge-api URL`: the merge of a rehearsal's
//! week goes to the fake GitHub, with the token from `KARS_FORGE_TOKEN` or a file.

#![cfg(all(feature = "forge", feature = "cli"))]

mod fake_forge;

use std::process::Command;

use fake_forge::{TOKEN, github};

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml");

/// Runs `kars ARGS` with `KARS_FORGE_TOKEN` set to `token` (or unset): exit code, stdout, stderr.
fn kars(args: &[&str], token: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kars"));
    cmd.args(args).env("NO_COLOR", "1").env_remove("KARS_FORGE_TOKEN");
    if let Some(token) = token {
        cmd.env("KARS_FORGE_TOKEN", token);
    }
    let out = cmd.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn act(
    journal: &str,
    now: &str,
    node: &str,
    actor: &str,
    extra: &[&str],
    token: Option<&str>,
) -> (i32, String, String) {
    let mut args =
        vec!["instance", "act", "--id", "kars-release", "--journal", journal, "--node", node, "--actor", actor];
    args.extend(extra);
    args.extend(["--now", now]);
    kars(&args, token)
}

#[test]
fn a_rehearsal_merges_on_the_forge_it_is_told() {
    let fake = github::start(100);
    let (dir, pull) = week_to_review(&fake);
    let journal = dir.path().to_str().unwrap();
    let forge = ["--outcome", "approved", "--forge", "github:keydatalab/kars", "--forge-api", fake.url()];
    // Without a token: a usage error that names the variable, and nothing journaled.
    let (code, _, err) = act(journal, "2026-11-25T14:00:00-05:00", "F", "bob", &forge, None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`KARS_FORGE_TOKEN`"), "{err}");
    let bad = ["--outcome", "approved", "--forge", "bitbucket:x/y"];
    let (code, _, err) = act(journal, "2026-11-25T14:00:00-05:00", "F", "bob", &bad, Some(TOKEN));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("names no forge"), "{err}");
    // With the token in a file.
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut with_file = forge.to_vec();
    with_file.extend(["--forge-token-file", token_file.to_str().unwrap()]);
    let (code, out, err) = act(journal, "2026-11-25T14:00:00-05:00", "F", "bob", &with_file, None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("(merge feature/* -> kars-dev): done, succeeded"), "{out}");
    assert!(fake.with(|g| g.pull(pull).merged));
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN));
}

/// Starts a rehearsal and acts up to the code review (F), with an approved pull request on
/// the fake; returns the journal's directory and the pull request's number.
fn week_to_review(fake: &fake_forge::FakeForge<github::GitHub>) -> (tempfile::TempDir, u64) {
    let pull = fake.with(|g| {
        g.push("feature/login");
        let n = g.open_pull("feature/login", "kars-dev");
        g.review(n, "bob", "APPROVED");
        n
    });
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().to_str().unwrap();
    let start =
        ["instance", "start", SPEC, "--clock", "virtual", "--journal", journal, "--now", "2026-11-23T08:00:00-05:00"];
    let (code, out, err) = kars(&start, None);
    assert_eq!(code, 0, "{out}{err}");
    for (now, node, actor) in [
        ("2026-11-23T09:00:00-05:00", "B", "erin"),
        ("2026-11-23T09:30:00-05:00", "C", "frank"),
        ("2026-11-24T10:00:00-05:00", "D", "alice"),
        ("2026-11-25T10:00:00-05:00", "E", "alice"),
    ] {
        let (code, out, err) = act(journal, now, node, actor, &[], None);
        assert_eq!(code, 0, "{out}{err}");
    }
    (dir, pull)
}

#[test]
fn a_rehearsal_deploys_through_the_forges_ci_when_told() {
    let fake = github::start(100);
    fake.with(|g| g.run_polls = 1);
    let (dir, _) = week_to_review(&fake);
    let journal = dir.path().to_str().unwrap();
    // An empty workflow is refused before anything runs.
    let bad = ["--outcome", "approved", "--forge", "github:keydatalab/kars", "--forge-deploy", "@main"];
    let (code, _, err) = act(journal, "2026-11-25T14:00:00-05:00", "F", "bob", &bad, Some(TOKEN));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("names no workflow"), "{err}");
    let forge = [
        "--outcome",
        "approved",
        "--forge",
        "github:keydatalab/kars",
        "--forge-api",
        fake.url(),
        "--forge-deploy",
        "deploy.yml@main",
    ];
    let (code, out, err) = act(journal, "2026-11-25T14:00:00-05:00", "F", "bob", &forge, Some(TOKEN));
    assert_eq!(code, 0, "{out}{err}");
    // The merge went to the pull request, the deploy to dev to one Actions run keyed by the effect.
    assert!(out.contains("(merge feature/* -> kars-dev): done, succeeded"), "{out}");
    let runs = fake.with(|g| g.runs.clone());
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].workflow, "deploy.yml");
    assert_eq!(runs[0].inputs["action"], "deploy");
    assert_eq!(runs[0].inputs["environment"], "dev");
    assert_eq!(runs[0].inputs["node"], "H");
    let key = runs[0].inputs["kars_key"].as_str().unwrap().to_owned();
    assert!(key.contains("/H/"), "{key}");
    let (code, status, err) = kars(&["instance", "status", "--id", "kars-release", "--journal", journal], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("result of `H`: succeeded, reported by effect `kars-release/2026-W48/H/1`"), "{out}");
    assert!(out.contains("(deploy `dev` (https://kars-dev.keydatalab.ca)): done, succeeded"), "{out}");
    assert!(
        status.contains("at:         `I` Product Manager Reviews Features"),
        "the deploy's result was journaled:\n{status}"
    );
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN));
}
