//! Adapters: the git VCS on a real temporary repository, the console notifier and the fakes.
//!
//! The webhook notifier's tests live beside it (`kars-workflow/src/adapter/webhook.rs`) and run
//! with `cargo test -p kars-workflow --features webhook`.

use std::path::{Path, PathBuf};
use std::process::Command;

use kars::workflow::adapter::{
    AdapterError, Audience, BranchSelector, ConsoleNotifier, FailurePlan, GitVcs, MergeRequest, Notification, Notifier,
    OpenPullRequest, RecordingNotifier, RecordingVcs, ReviewState, Vcs,
};

/// Runs git in `dir` and returns its trimmed output; the test fails if git does.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(args).env("LC_ALL", "C").output().expect("git runs");
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Commits `file` with `content` on `branch` (created from `base` if new) and returns the commit.
fn commit_on(repo: &Path, branch: &str, base: &str, file: &str, content: &str) -> String {
    let exists = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")])
        .output()
        .expect("git runs")
        .status
        .success();
    if exists {
        git(repo, &["checkout", "-q", branch]);
    } else {
        git(repo, &["checkout", "-q", "-b", branch, base]);
    }
    std::fs::write(repo.join(file), content).unwrap();
    git(repo, &["add", file]);
    git(repo, &["commit", "-q", "-m", &format!("{branch}: {file}")]);
    let head = git(repo, &["rev-parse", "HEAD"]);
    git(repo, &["checkout", "-q", "main"]);
    head
}

/// A repository with `main`, `kars-dev`, `kars-prod` and two feature branches; `main` is checked out.
fn repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.name", "Kars Test"]);
    git(&repo, &["config", "user.email", "kars@example.invalid"]);
    git(&repo, &["config", "commit.gpgsign", "false"]);
    std::fs::write(repo.join("README"), "kars\n").unwrap();
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
    git(&repo, &["branch", "kars-dev"]);
    git(&repo, &["branch", "kars-prod"]);
    commit_on(&repo, "feature/a", "kars-dev", "a.txt", "a\n");
    commit_on(&repo, "feature/b", "kars-dev", "b.txt", "b\n");
    (dir, repo)
}

fn merge(key: &str, from: BranchSelector, to: &str) -> MergeRequest {
    MergeRequest { key: key.into(), from, to: to.into() }
}

fn features() -> BranchSelector {
    BranchSelector::Pattern("feature/*".into())
}

fn parents(repo: &Path, commit: &str) -> usize {
    git(repo, &["rev-list", "--parents", "-n", "1", commit]).split(' ').count() - 1
}

#[test]
fn git_opens_a_pull_request_and_merges_each_feature_with_a_merge_commit() {
    let (_dir, repo) = repo();
    let vcs = GitVcs::new(&repo);
    let dev = git(&repo, &["rev-parse", "kars-dev"]);
    assert_eq!(vcs.head("kars-dev").unwrap().as_deref(), Some(dev.as_str()));
    assert_eq!(vcs.head("no-such-branch").unwrap(), None);

    let open =
        OpenPullRequest { key: "w48/G/pr".into(), from: features(), to: "kars-dev".into(), title: "Features".into() };
    let pr = vcs.open_pull_request(&open).unwrap();
    assert_eq!(pr.sources.iter().map(|s| s.branch.as_str()).collect::<Vec<_>>(), ["feature/a", "feature/b"]);
    assert_eq!(vcs.open_pull_request(&open).unwrap(), pr, "the same key gives the same pull request");
    assert_eq!(vcs.review_state(&pr.id).unwrap(), ReviewState::Open);

    let outcome = vcs.merge(&merge("w48/G/1", features(), "kars-dev")).unwrap();
    assert!(!outcome.replayed);
    assert_eq!(outcome.merged.iter().map(|s| s.branch.as_str()).collect::<Vec<_>>(), ["feature/a", "feature/b"]);
    assert_eq!(git(&repo, &["rev-parse", "kars-dev"]), outcome.head);
    assert_eq!(parents(&repo, &outcome.head), 2);
    assert_eq!(parents(&repo, &format!("{}^1", outcome.head)), 2, "one merge commit per feature");
    assert_eq!(git(&repo, &["ls-tree", "--name-only", "kars-dev"]), "README\na.txt\nb.txt");
    let message = git(&repo, &["log", "-1", "--format=%B", "kars-dev"]);
    assert!(message.starts_with("Merge branch 'feature/b' into kars-dev"), "{message}");
    assert!(message.contains("Kars-Idempotency-Key: w48/G/1"), "{message}");
    assert_eq!(vcs.review_state(&pr.id).unwrap(), ReviewState::Merged);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "", "the working tree is untouched");
}

#[test]
fn git_merge_is_idempotent_per_key() {
    let (_dir, repo) = repo();
    let vcs = GitVcs::new(&repo);
    let first = vcs.merge(&merge("k1", features(), "kars-dev")).unwrap();
    // New work lands on a feature after the first merge.
    commit_on(&repo, "feature/a", "kars-dev", "a2.txt", "more\n");
    let again = vcs.merge(&merge("k1", features(), "kars-dev")).unwrap();
    assert!(again.replayed);
    assert_eq!((again.head.as_str(), &again.merged), (first.head.as_str(), &first.merged));
    assert_eq!(git(&repo, &["rev-parse", "kars-dev"]), first.head, "a replayed key changes nothing");
    // A new key merges only what is new.
    let next = vcs.merge(&merge("k2", features(), "kars-dev")).unwrap();
    assert_eq!(next.merged.iter().map(|s| s.branch.as_str()).collect::<Vec<_>>(), ["feature/a"]);
    // A third key finds nothing to merge and creates no commit.
    let none = vcs.merge(&merge("k3", features(), "kars-dev")).unwrap();
    assert!(none.merged.is_empty() && !none.replayed);
    assert_eq!(none.head, next.head);
}

#[test]
fn git_never_fast_forwards() {
    let (_dir, repo) = repo();
    let vcs = GitVcs::new(&repo);
    vcs.merge(&merge("dev", features(), "kars-dev")).unwrap();
    // kars-prod is an ancestor of kars-dev, so a plain merge would fast-forward.
    let prod = git(&repo, &["rev-parse", "kars-prod"]);
    let out = vcs.merge(&merge("prod", BranchSelector::Name("kars-dev".into()), "kars-prod")).unwrap();
    assert_eq!(parents(&repo, &out.head), 2);
    assert_eq!(git(&repo, &["rev-parse", &format!("{}^1", out.head)]), prod);
}

#[test]
fn git_refuses_missing_branches_and_conflicts_without_moving_the_target() {
    let (_dir, repo) = repo();
    let vcs = GitVcs::new(&repo);
    let dev = git(&repo, &["rev-parse", "kars-dev"]);
    let err = vcs.merge(&merge("m", BranchSelector::Name("feature/zzz".into()), "kars-dev")).unwrap_err();
    assert!(!err.is_transient());
    assert_eq!(err.key(), Some("m"));
    assert!(err.to_string().contains("the source branch `feature/zzz` does not exist"), "{err}");
    let err = vcs.merge(&merge("m2", features(), "kars-qa")).unwrap_err();
    assert!(
        matches!(&err, AdapterError::Permanent { detail, .. } if detail == "the target branch `kars-qa` does not exist")
    );
    let err = vcs.merge(&merge("m3", BranchSelector::Name("--upload-pack=x".into()), "kars-dev")).unwrap_err();
    assert!(err.to_string().contains("is not a valid branch name"), "{err}");
    // A failed merge records nothing: the same key works once the branch exists.
    commit_on(&repo, "feature/zzz", "kars-dev", "z.txt", "z\n");
    assert_eq!(vcs.merge(&merge("m", BranchSelector::Name("feature/zzz".into()), "kars-dev")).unwrap().merged.len(), 1);

    commit_on(&repo, "fix/one", "kars-dev", "same.txt", "one\n");
    commit_on(&repo, "fix/two", "kars-dev", "same.txt", "two\n");
    let before = git(&repo, &["rev-parse", "kars-dev"]);
    assert_ne!(before, dev);
    let err = vcs.merge(&merge("fixes", BranchSelector::Pattern("fix/*".into()), "kars-dev")).unwrap_err();
    assert!(!err.is_transient());
    assert!(err.to_string().contains("merging `fix/two` into `kars-dev` conflicts in `same.txt`"), "{err}");
    assert_eq!(git(&repo, &["rev-parse", "kars-dev"]), before, "nothing moved");
}

#[test]
fn git_refuses_to_move_the_checked_out_branch_but_works_on_a_bare_repository() {
    let (dir, repo) = repo();
    git(&repo, &["checkout", "-q", "kars-dev"]);
    let err = GitVcs::new(&repo).merge(&merge("m", features(), "kars-dev")).unwrap_err();
    assert!(err.to_string().contains("`kars-dev` is checked out"), "{err}");

    let bare = dir.path().join("bare.git");
    git(dir.path(), &["clone", "-q", "--bare", repo.to_str().unwrap(), bare.to_str().unwrap()]);
    let vcs = GitVcs::new(&bare).with_identity("Kars Bot", "bot@example.invalid");
    let out = vcs.merge(&merge("m", features(), "kars-dev")).unwrap();
    assert_eq!(out.merged.len(), 2);
    assert_eq!(git(&bare, &["log", "-1", "--format=%an <%ae>", "kars-dev"]), "Kars Bot <bot@example.invalid>");
}

#[test]
fn git_reports_a_missing_program_as_permanent() {
    let (_dir, repo) = repo();
    let err = GitVcs::new(&repo).with_program("/nonexistent/git").head("kars-dev").unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("cannot run `/nonexistent/git`"), "{err}");
    let err = GitVcs::new(&repo).review_state("0123456789abcdef").unwrap_err();
    assert_eq!(err.to_string(), "git could not read a review state: there is no pull request `0123456789abcdef`");
}

fn note(key: &str, to: Audience, message: &str) -> Notification {
    Notification { key: key.into(), to, message: message.into() }
}

#[test]
fn console_notifier_writes_one_line_per_key() {
    let console = ConsoleNotifier::new(Vec::new());
    console.notify(&note("k1", Audience::Channel("#kars-releases".into()), "2026-W48 is approved")).unwrap();
    console.notify(&note("k1", Audience::Channel("#kars-releases".into()), "2026-W48 is approved")).unwrap();
    console.notify(&note("k2", Audience::Role("devops".into()), "deploy failed\nrolled back")).unwrap();
    let out = String::from_utf8(console.into_inner()).unwrap();
    assert_eq!(out, "[channel #kars-releases] 2026-W48 is approved\n[role devops] deploy failed\\nrolled back\n");
}

#[test]
fn recording_notifier_delivers_each_key_once_and_fails_on_demand() {
    let fake = RecordingNotifier::with_failures(FailurePlan::transient(2));
    let n = note("k", Audience::Channel("#c".into()), "hello");
    assert!(fake.notify(&n).unwrap_err().is_transient());
    assert!(fake.notify(&n).unwrap_err().is_transient());
    fake.notify(&n).unwrap();
    fake.notify(&n).unwrap();
    fake.notify(&note("k2", Audience::Role("qa".into()), "hi")).unwrap();
    assert_eq!(fake.delivered(), [n.clone(), note("k2", Audience::Role("qa".into()), "hi")]);
    let calls = fake.calls();
    assert_eq!(calls.len(), 5);
    assert_eq!(
        calls.iter().map(|c| (c.error.is_some(), c.duplicate)).collect::<Vec<_>>(),
        [(true, false), (true, false), (false, false), (false, true), (false, false)]
    );
    fake.set_failures(FailurePlan::permanent());
    let err = fake.notify(&note("k3", Audience::Channel("#c".into()), "x")).unwrap_err();
    assert!(!err.is_transient());
    assert_eq!(err.key(), Some("k3"));
    assert_eq!(fake.delivered().len(), 2);
}

#[test]
fn recording_vcs_merges_each_key_once() {
    let fake = RecordingVcs::new();
    fake.set_branch("kars-dev", "c0");
    fake.set_branch("feature/a", "ca");
    fake.set_branch("feature/b", "cb");
    let pr = fake
        .open_pull_request(&OpenPullRequest {
            key: "pr".into(),
            from: features(),
            to: "kars-dev".into(),
            title: "t".into(),
        })
        .unwrap();
    fake.set_review_state(&pr.id, ReviewState::Approved);
    assert_eq!(fake.review_state(&pr.id).unwrap(), ReviewState::Approved);
    fake.set_failures(FailurePlan::transient(1));
    assert!(fake.merge(&merge("m", features(), "kars-dev")).unwrap_err().is_transient());
    let first = fake.merge(&merge("m", features(), "kars-dev")).unwrap();
    assert_eq!(first.merged.len(), 2);
    assert_eq!(fake.head("kars-dev").unwrap().as_deref(), Some(first.head.as_str()));
    let again = fake.merge(&merge("m", features(), "kars-dev")).unwrap();
    assert!(again.replayed);
    assert_eq!(again.head, first.head);
    assert_eq!(fake.merges().len(), 1, "the log keeps one entry per key");
    assert_eq!(fake.review_state(&pr.id).unwrap(), ReviewState::Merged);
    let nothing = fake.merge(&merge("m2", features(), "kars-dev")).unwrap();
    assert!(nothing.merged.is_empty() && nothing.head == first.head);
    let err = fake.merge(&merge("m3", BranchSelector::Name("gone".into()), "kars-dev")).unwrap_err();
    assert!(!err.is_transient());
    assert_eq!(fake.merges().len(), 2);
    let ops: Vec<_> = fake.calls().iter().map(|c| (c.operation, c.duplicate, c.error.is_some())).collect();
    assert_eq!(
        ops,
        [
            ("open_pull_request", false, false),
            ("review_state", false, false),
            ("merge", false, true),
            ("merge", false, false),
            ("head", false, false),
            ("merge", true, false),
            ("review_state", false, false),
            ("merge", false, false),
            ("merge", false, true),
        ]
    );
}
