//! `kars instance upgrade` through the real binary, on a journal written by the previous
//! format (2): the plan shown by `--dry-run` writes nothing, a cosmetic change applies at
//! once, a behavioural one waits for the next cycle while `status`, `history` and `render`
//! say which spec is in force, and only a role the spec's `team_managed_by` names upgrades.

use std::process::Command;

const SPEC: &str = include_str!("../workflows/kars-release.yaml");
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/journal-v2/kars-release.journal");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A copy of the format 2 fixture (a rehearsal at `D` on Tuesday 2026-11-24 09:05) and the
/// spec files the tests write beside it.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(FIXTURE, dir.path().join("kars-release.journal")).unwrap();
        Self { dir }
    }

    fn spec(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn journal(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("kars-release.journal")).unwrap()
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_kars")).args(args).env("NO_COLOR", "1").output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn instance(&self, sub: &str, args: &[&str]) -> Run {
        let dir = self.dir.path().to_str().unwrap();
        let mut all = vec!["instance", sub, "--journal", dir, "--id", "kars-release"];
        all.extend(args);
        self.run(&all)
    }
}

const LATER: &str = "2026-11-24T10:00:00-05:00";

/// The bundled spec with D relabelled: a cosmetic change.
fn relabelled() -> String {
    SPEC.replace("label: \"Developers Build\\nFeatures\"", "label: \"Developers Build\\nAll Features\"")
}

/// The bundled spec with D relabelled and its gate moved: a behavioural change.
fn regated() -> String {
    relabelled().replace("gate: Tuesday 09:00 }", "gate: Tuesday 11:00 }")
}

#[test]
fn a_dry_run_shows_the_plan_and_writes_nothing() {
    let f = Fixture::new();
    assert_ne!(relabelled(), SPEC, "the relabel applies to the bundled spec");
    let file = f.spec("v2.yaml", &relabelled());
    let before = f.journal();
    let run = f.instance("upgrade", &[&file, "--dry-run", "--actor", "frank", "--now", LATER]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(f.journal(), before, "a dry run writes nothing");
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn a_cosmetic_upgrade_applies_at_once_on_a_format_2_journal() {
    let f = Fixture::new();
    let file = f.spec("v2.yaml", &relabelled());
    let run = f.instance("upgrade", &[&file, "--actor", "frank", "--now", LATER]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("takes effect: now"), "{}", run.stdout);
    let status = f.instance("status", &[]);
    assert!(status.stdout.contains("(2 versions in the journal)"), "{}", status.stdout);
    assert!(!status.stdout.contains("next cycle:"), "{}", status.stdout);
    let history = f.instance("history", &[]);
    assert!(history.stdout.contains("frank stores spec"), "{}", history.stdout);
    assert!(history.stdout.contains("upgrade to spec"), "{}", history.stdout);
    // The instance goes on under the new spec.
    let act = f.instance("act", &["--node", "D", "--actor", "alice", "--now", LATER]);
    assert_eq!(act.code, 0, "{}", act.stderr);
    let render = f.run(&["render", &file, "--journal", f.dir.path().to_str().unwrap(), "--id", "kars-release"]);
    assert!(render.stdout.contains("All Features"), "{}", render.stdout);
}

#[test]
fn a_behavioural_upgrade_waits_for_the_next_cycle() {
    let f = Fixture::new();
    let file = f.spec("v3.yaml", &regated());
    let run = f.instance("upgrade", &[&file, "--actor", "frank", "--now", LATER]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("takes effect: at the next cycle"), "{}", run.stdout);
    let status = f.instance("status", &[]);
    assert!(status.stdout.contains("next cycle: spec `"), "{}", status.stdout);
    // The picture is the spec in force: D keeps its old label this week.
    let render = f.run(&["render", &file, "--journal", f.dir.path().to_str().unwrap(), "--id", "kars-release"]);
    assert_eq!(render.code, 0, "{}", render.stderr);
    assert!(!render.stdout.contains("All Features"), "{}", render.stdout);
    // Asked for now, while the token waits at D whose gate moves, it is refused with reasons.
    let v4 = f.spec("v4.yaml", &regated().replace("Tuesday 11:00", "Tuesday 12:00"));
    let now = f.instance("upgrade", &[&v4, "--when", "now", "--actor", "frank", "--now", LATER]);
    assert_eq!(now.code, 1, "{}", now.stdout);
    insta::assert_snapshot!(now.stderr);
}

#[test]
fn only_a_role_team_managed_by_names_upgrades() {
    let f = Fixture::new();
    let file = f.spec("v2.yaml", &relabelled());
    let before = f.journal();
    let run = f.instance("upgrade", &[&file, "--actor", "alice", "--now", LATER]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stderr.contains("`alice` may not upgrade"), "{}", run.stderr);
    assert_eq!(f.journal(), before);
}
