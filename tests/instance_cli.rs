//! `kars instance` end to end: a whole KARS week driven through the binary as a rehearsal
//! (`--clock virtual`, so `--now` and `--actor` are the caller's word) on a temporary journal
//! directory, with the roster's people acting at the right times, DevOps reporting deploys,
//! refusals that write nothing, and snapshots of the session, the status, the history and the
//! rendered picture. The trust rules of real instances are in `tests/trust_cli.rs`.

use std::path::Path;
use std::process::Command;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml");

struct Session {
    journal: tempfile::TempDir,
    transcript: String,
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Session {
    fn new() -> Self {
        Self { journal: tempfile::tempdir().unwrap(), transcript: String::new() }
    }

    fn dir(&self) -> &Path {
        self.journal.path()
    }

    /// Runs `kars` with `args` (the journal option added after the subcommand).
    fn kars(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kars"));
        cmd.args(args).env("NO_COLOR", "1");
        let out = cmd.output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Runs `kars instance SUB --journal DIR [--id kars-release] ARGS --now NOW`, expects
    /// `code`, and adds the command and its output to the transcript.
    fn instance(&mut self, sub: &str, args: &[&str], now: &str, code: i32) -> Output {
        let dir = self.dir().to_str().unwrap().to_owned();
        let mut all = vec!["instance", sub];
        if sub == "start" {
            all.extend([SPEC, "--clock", "virtual"]);
        } else {
            all.extend(["--id", "kars-release"]);
        }
        all.extend(["--journal", &dir]);
        all.extend(args);
        all.extend(["--now", now]);
        let out = self.kars(&all);
        assert_eq!(out.code, code, "kars instance {sub} {args:?}: {}{}", out.stdout, out.stderr);
        let shown: Vec<&str> = [sub].into_iter().chain(args.iter().copied()).chain(["--now", now]).collect();
        self.transcript.push_str(&format!("$ kars instance {}\n", shown.join(" ")));
        self.transcript.push_str(&out.stdout);
        if !out.stderr.is_empty() {
            self.transcript.push_str(&format!("[stderr] {}", out.stderr));
        }
        self.transcript.push_str(&format!("[exit {}]\n\n", out.code));
        out
    }

    fn act(&mut self, now: &str, node: &str, actor: &str, outcome: Option<&str>) -> Output {
        let mut args = vec!["--node", node, "--actor", actor];
        if let Some(o) = outcome {
            args.extend(["--outcome", o]);
        }
        self.instance("act", &args, now, 0)
    }

    /// `actor` reports the result of waiting action `node`.
    fn report(&mut self, now: &str, node: &str, actor: &str, outcome: &str) -> Output {
        self.instance("act", &["--node", node, "--actor", actor, "--outcome", outcome], now, 0)
    }

    fn journal_bytes(&self) -> Vec<u8> {
        std::fs::read(self.dir().join("kars-release.journal")).unwrap()
    }
}

#[test]
fn a_kars_week_through_the_command_line() {
    let mut s = Session::new();
    s.instance("start", &[], "2026-11-23T08:00:00-05:00", 0);
    s.act("2026-11-23T09:00:00-05:00", "B", "erin", None);
    s.act("2026-11-23T09:30:00-05:00", "C", "frank", None);
    // Tuesday: D's gate opens at 09:00; a tick opens it.
    let early = s.instance("act", &["--node", "D", "--actor", "alice"], "2026-11-24T08:30:00-05:00", 1);
    assert!(early.stderr.contains("cannot start before its gate opens"), "{}", early.stderr);
    let tick = s.instance("tick", &[], "2026-11-24T09:05:00-05:00", 0);
    assert!(tick.stdout.contains("gate of `D` open"), "{}", tick.stdout);
    s.act("2026-11-24T10:00:00-05:00", "D", "alice", None);
    s.act("2026-11-25T10:00:00-05:00", "E", "alice", None);
    let review = s.instance(
        "act",
        &["--node", "F", "--actor", "alice", "--outcome", "approved"],
        "2026-11-25T13:00:00-05:00",
        1,
    );
    assert!(review.stderr.contains("they completed `E` this cycle"), "{}", review.stderr);
    let merge = s.act("2026-11-25T14:00:00-05:00", "F", "bob", Some("approved"));
    assert!(merge.stdout.contains("[operator] merge feature/* -> kars-dev"), "{}", merge.stdout);
    s.report("2026-11-25T14:20:00-05:00", "G", "bob", "succeeded");
    s.report("2026-11-25T14:40:00-05:00", "H", "dave", "succeeded");
    let freeze = s.act("2026-11-26T17:30:00-05:00", "I", "erin", None);
    assert!(
        freeze.stdout.contains("[channel #kars-releases] Code freeze for 2026-W48 is in effect"),
        "{}",
        freeze.stdout
    );
    s.act("2026-11-26T18:00:00-05:00", "K", "erin", None);
    s.act("2026-11-27T09:30:00-05:00", "L", "carol", None);
    s.act("2026-11-27T10:00:00-05:00", "M", "dave", None);
    s.act("2026-11-27T11:00:00-05:00", "N", "carol", Some("Yes"));
    // A developer cannot sign off for QA: exit 1, and the journal is not touched.
    let before = s.journal_bytes();
    let refused = s.instance("act", &["--node", "Q", "--actor", "alice"], "2026-11-27T14:00:00-05:00", 1);
    assert!(
        refused.stderr.starts_with("refused: `alice` may not act on `Q`, which needs one of the roles `qa`"),
        "{}",
        refused.stderr
    );
    assert_eq!(s.journal_bytes(), before);
    let stranger = s.instance("act", &["--node", "Q", "--actor", "mallory"], "2026-11-27T14:00:00-05:00", 1);
    assert!(stranger.stderr.contains("the people on the roster are `alice`, `bob`, `carol`, `dave`, `erin`, `frank`"));
    assert_eq!(s.journal_bytes(), before);
    s.act("2026-11-27T14:00:00-05:00", "Q", "carol", None);
    s.act("2026-11-27T14:30:00-05:00", "R", "erin", None);
    // The weekend: where it stands, as text and as a picture.
    let status = s.instance("status", &[], "2026-11-28T12:00:00-05:00", 0);
    insta::assert_snapshot!("status_weekend", status.stdout);
    let dir = s.dir().to_str().unwrap().to_owned();
    let render =
        s.kars(&["render", SPEC, "--journal", &dir, "--id", "kars-release", "--now", "2026-11-28T12:00:00-05:00"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    insta::assert_snapshot!("render_weekend", render.stdout);
    // Monday: the deploy.
    s.instance("tick", &[], "2026-11-30T09:46:00-05:00", 0);
    s.act("2026-11-30T09:50:00-05:00", "U", "dave", None);
    s.report("2026-11-30T09:52:00-05:00", "V", "dave", "succeeded");
    s.act("2026-11-30T09:55:00-05:00", "W", "frank", Some("approved"));
    s.instance("tick", &[], "2026-11-30T10:00:00-05:00", 0);
    s.report("2026-11-30T10:02:00-05:00", "X", "frank", "succeeded");
    s.report("2026-11-30T10:05:00-05:00", "Y", "dave", "succeeded");
    s.act("2026-11-30T10:10:00-05:00", "Z", "dave", None);
    s.report("2026-11-30T10:15:00-05:00", "AD", "dave", "succeeded");
    s.act("2026-11-30T10:30:00-05:00", "AE", "erin", None);
    let lifted = s.instance("tick", &[], "2026-11-30T11:00:00-05:00", 0);
    assert!(lifted.stdout.contains("cycle ended: released"), "{}", lifted.stdout);
    assert!(lifted.stdout.contains("release 2026-W49"), "{}", lifted.stdout);
    insta::assert_snapshot!("week_session", s.transcript);
    let history = s.kars(&["instance", "history", "--journal", &dir, "--id", "kars-release"]);
    assert_eq!(history.code, 0, "{}", history.stderr);
    insta::assert_snapshot!("week_history", history.stdout);
}

#[test]
fn a_failed_deploy_reported_by_the_operator_rolls_back() {
    let mut s = Session::new();
    s.instance("start", &[], "2026-11-30T09:00:00-05:00", 0);
    // Start on the Monday of the deploy week: walk to Y quickly is not possible, so check the
    // action path on H (deploy dev): a failed result still moves on (no decision reads it).
    s.act("2026-11-30T09:10:00-05:00", "B", "erin", None);
    s.act("2026-11-30T09:20:00-05:00", "C", "frank", None);
    s.instance("tick", &[], "2026-12-01T09:00:00-05:00", 0);
    s.act("2026-12-01T09:10:00-05:00", "D", "alice", None);
    s.act("2026-12-01T09:20:00-05:00", "E", "alice", None);
    s.act("2026-12-01T09:30:00-05:00", "F", "frank", Some("approved"));
    let bad =
        s.instance("act", &["--node", "G", "--actor", "bob", "--outcome", "maybe"], "2026-12-01T09:40:00-05:00", 1);
    assert!(bad.stderr.contains("`G` has no outcome `maybe`; valid: `succeeded`, `failed`"), "{}", bad.stderr);
    let missing = s.instance("act", &["--node", "G", "--actor", "bob"], "2026-12-01T09:40:00-05:00", 1);
    assert!(missing.stderr.contains("`G` needs an outcome; valid: `succeeded`, `failed`"), "{}", missing.stderr);
    let failed = s.report("2026-12-01T09:40:00-05:00", "G", "bob", "failed");
    assert!(failed.stdout.contains("result of `G`: failed"), "{}", failed.stdout);
    assert!(failed.stdout.contains("[operator] deploy `dev`"), "{}", failed.stdout);
}

#[test]
fn a_team_file_fixes_the_roster_at_the_start_and_only_a_team_change_replaces_it() {
    let mut s = Session::new();
    let team = s.dir().join("team.yaml");
    std::fs::write(&team, "zoe: [product_manager]\nfrank: [team_lead]\n").unwrap();
    let team = team.to_str().unwrap().to_owned();
    s.instance("start", &["--team", &team], "2026-11-23T08:00:00-05:00", 0);
    let erin = s.instance("act", &["--node", "B", "--actor", "erin"], "2026-11-23T09:00:00-05:00", 1);
    assert!(erin.stderr.contains("`erin` is not on the team roster"), "{}", erin.stderr);
    // `--team` after the start is refused and says how to change the roster.
    let late = s.instance("act", &["--node", "B", "--actor", "erin", "--team", &team], "2026-11-23T09:00:00-05:00", 1);
    assert!(late.stderr.contains("the roster belongs to the instance"), "{}", late.stderr);
    assert!(late.stderr.contains("kars instance team"), "{}", late.stderr);
    let zoe = s.instance("act", &["--node", "B", "--actor", "zoe"], "2026-11-23T09:00:00-05:00", 0);
    assert!(zoe.stdout.contains("zoe completes `B`"), "{}", zoe.stdout);
    // A roster change is journaled, by a role the spec's `team_managed_by` names.
    let next = s.dir().join("next.yaml");
    std::fs::write(&next, "zoe: [product_manager]\nfrank: [team_lead]\nyann: [developer]\n").unwrap();
    let next = next.to_str().unwrap().to_owned();
    let denied = s.instance("team", &["--file", &next, "--actor", "zoe"], "2026-11-23T09:10:00-05:00", 1);
    assert!(denied.stderr.contains("which needs one of the roles `team_lead`"), "{}", denied.stderr);
    let changed = s.instance("team", &["--file", &next, "--actor", "frank"], "2026-11-23T09:10:00-05:00", 0);
    assert!(changed.stdout.contains("frank changes the roster"), "{}", changed.stdout);
    s.act("2026-11-23T09:30:00-05:00", "C", "frank", None);
    s.instance("tick", &[], "2026-11-24T09:05:00-05:00", 0);
    s.act("2026-11-24T10:00:00-05:00", "D", "yann", None);
    let bad = s.dir().join("bad.yaml");
    std::fs::write(&bad, "zoe: [tester]\n").unwrap();
    let bad =
        s.instance("team", &["--file", bad.to_str().unwrap(), "--actor", "frank"], "2026-11-24T10:10:00-05:00", 1);
    assert!(bad.stderr.contains("`zoe` holds role `tester`, which the spec does not declare"), "{}", bad.stderr);
    let dir = s.dir().to_str().unwrap().to_owned();
    let history = s.kars(&["instance", "history", "--journal", &dir, "--id", "kars-release"]);
    assert!(
        history.stdout.contains("frank changes the roster: zoe [product_manager]; frank [team_lead]; yann [developer]"),
        "{}",
        history.stdout
    );
    assert!(history.stdout.contains("yann completes `D`"), "{}", history.stdout);
}

#[test]
fn usage_errors_and_changed_specs() {
    let mut s = Session::new();
    s.instance("start", &[], "2026-11-23T08:00:00-05:00", 0);
    let again = s.instance("start", &[], "2026-11-23T08:00:00-05:00", 2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    let bad_now = s.instance("status", &[], "Monday", 2);
    assert!(bad_now.stderr.contains("is not an RFC 3339 time"), "{}", bad_now.stderr);
    let nowhere = s.kars(&["instance", "status", "--journal", "/nonexistent/kars", "--id", "kars-release"]);
    assert_eq!(nowhere.code, 2);
    let dir = s.dir().to_str().unwrap().to_owned();
    let unknown = s.kars(&["instance", "status", "--journal", &dir, "--id", "other"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("instance `other` does not exist"), "{}", unknown.stderr);
    let escape = s.kars(&["instance", "status", "--journal", &dir, "--id", "../kars-release"]);
    assert_eq!(escape.code, 2);
    assert_eq!(
        escape.stderr.trim_end(),
        "error: instance id `../kars-release` is not valid: it must start with an ASCII letter or digit\n\
         help: instance ids are 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting with a letter or digit"
    );
    // `kars render` with a spec that changed since the instance started is refused.
    let changed = s.dir().join("changed.yaml");
    let text = std::fs::read_to_string(SPEC).unwrap().replace("is live in production.", "is live.");
    std::fs::write(&changed, text).unwrap();
    let render = s.kars(&["render", changed.to_str().unwrap(), "--journal", &dir, "--id", "kars-release"]);
    assert_eq!(render.code, 1, "{}", render.stdout);
    assert!(render.stderr.contains("was started with spec fingerprint"), "{}", render.stderr);
}

/// Runs git in `repo`; the test fails if git does.
fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Alice")
        .env("GIT_AUTHOR_EMAIL", "alice@example.invalid")
        .env("GIT_COMMITTER_NAME", "Alice")
        .env("GIT_COMMITTER_EMAIL", "alice@example.invalid")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn with_git_the_merge_runs_in_the_repository() {
    let mut s = Session::new();
    let repo = s.dir().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "kars").unwrap();
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "-q", "-m", "readme"]);
    git(&repo, &["branch", "kars-dev"]);
    git(&repo, &["checkout", "-q", "-b", "feature/login"]);
    std::fs::write(repo.join("login"), "login").unwrap();
    git(&repo, &["add", "login"]);
    git(&repo, &["commit", "-q", "-m", "login"]);
    git(&repo, &["checkout", "-q", "main"]);
    let repo_arg = repo.to_str().unwrap().to_owned();
    s.instance("start", &[], "2026-11-23T08:00:00-05:00", 0);
    s.act("2026-11-23T09:00:00-05:00", "B", "erin", None);
    s.act("2026-11-23T09:30:00-05:00", "C", "frank", None);
    s.act("2026-11-24T10:00:00-05:00", "D", "alice", None);
    s.act("2026-11-25T10:00:00-05:00", "E", "alice", None);
    let merged = s.instance(
        "act",
        &["--node", "F", "--actor", "bob", "--outcome", "approved", "--git", &repo_arg],
        "2026-11-25T14:00:00-05:00",
        0,
    );
    assert!(
        merged.stdout.contains("effect kars-release/2026-W48/G/1 (merge feature/* -> kars-dev): done, succeeded"),
        "{}",
        merged.stdout
    );
    assert!(merged.stdout.contains("[operator] deploy `dev`"), "{}", merged.stdout);
    let log = git(&repo, &["log", "--format=%s", "kars-dev"]);
    assert!(log.starts_with("Merge branch 'feature/login' into kars-dev"), "{log}");
}
