//! The trust rules of `kars instance`, each the fix of a defect a hostile user found, run
//! through the real binary: identities come from the login that runs the command, the roster
//! belongs to the instance, a real instance runs on the system clock, a rehearsal's clock
//! never goes backwards, reporting a result is an act by a role, a deadline missed before the
//! start does not escalate, and a closed or full standard output never panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn kars(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_kars")).args(args).env("NO_COLOR", "1").output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The login that runs the tests: what a real instance acts as.
fn me() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

struct Journal {
    dir: tempfile::TempDir,
}

impl Journal {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("kars-release.journal")).unwrap()
    }

    fn instance(&self, sub: &str, args: &[&str]) -> Run {
        let mut all = vec!["instance", sub, "--journal", self.path()];
        if sub != "start" {
            all.extend(["--id", "kars-release"]);
        }
        all.extend(args);
        kars(&all)
    }
}

/// A real instance whose roster maps the test's login to `person` with `roles`.
fn real(journal: &Journal, person: &str, roles: &str) -> Run {
    let team = format!(
        "{person}: {{ roles: [{roles}], logins: [{}] }}\ncarol: {{ roles: [qa], logins: [carol] }}\nfrank: {{ roles: [team_lead], logins: [frank] }}\n",
        me()
    );
    let team = journal.file("team.yaml", &team);
    journal.instance("start", &[SPEC, "--team", team.to_str().unwrap()])
}

#[test]
fn a_real_instance_acts_as_the_login_that_runs_the_command() {
    let j = Journal::new();
    let start = real(&j, "erin", "product_manager");
    assert_eq!(start.code, 0, "{}", start.stderr);
    assert!(start.stdout.contains("(real (system clock))"), "{}", start.stdout);
    // Finding 1: a team file given later cannot grant a role.
    let mallory = j.file("mallory.yaml", "mallory: [product_manager]\n");
    let before = j.bytes();
    let forged = j.instance("act", &["--node", "B", "--team", mallory.to_str().unwrap()]);
    assert_eq!(forged.code, 1, "{}", forged.stderr);
    assert!(forged.stderr.contains("the roster belongs to the instance"), "{}", forged.stderr);
    // `--actor` naming someone else is refused: people act as themselves.
    let other = j.instance("act", &["--node", "B", "--actor", "carol"]);
    assert_eq!(other.code, 1);
    assert!(other.stderr.contains(&format!("you are `erin` (login `{}`)", me())), "{}", other.stderr);
    assert_eq!(j.bytes(), before, "refusals write nothing");
    // Finding 2 and 3: `--now` is refused on a real instance.
    let ahead = j.instance("act", &["--node", "B", "--now", "2027-11-23T09:00:00-05:00"]);
    assert_eq!(ahead.code, 1);
    assert!(ahead.stderr.contains("is a real instance: it runs on the system clock"), "{}", ahead.stderr);
    let tick = j.instance("tick", &["--now", "9999-01-01T00:00:00Z"]);
    assert_eq!(tick.code, 2, "outside the engine's calendar: {}", tick.stderr);
    assert_eq!(j.bytes(), before);
    // Acting as oneself works; the history names the person the login maps to.
    let act = j.instance("act", &["--node", "B"]);
    assert_eq!(act.code, 0, "{}", act.stderr);
    assert!(act.stdout.contains("erin completes `B`"), "{}", act.stdout);
    let history = j.instance("history", &[]);
    assert!(history.stdout.contains("a real instance"), "{}", history.stdout);
    assert!(history.stdout.contains("erin completes `B`"), "{}", history.stdout);
}

#[test]
fn a_login_that_is_not_on_the_roster_cannot_act() {
    let j = Journal::new();
    let team = j.file("team.yaml", "erin: { roles: [product_manager], logins: [erin-not-me] }\n");
    assert_eq!(j.instance("start", &[SPEC, "--team", team.to_str().unwrap()]).code, 0);
    let act = j.instance("act", &["--node", "B"]);
    assert_eq!(act.code, 1);
    assert!(act.stderr.contains(&format!("login `{}` is not on the instance's roster", me())), "{}", act.stderr);
    assert!(act.stderr.contains("`erin`: `erin-not-me`"), "{}", act.stderr);
}

#[test]
fn a_rehearsal_clock_never_goes_backwards() {
    let j = Journal::new();
    let start = j.instance("start", &[SPEC, "--clock", "virtual", "--now", "2026-11-23T08:00:00-05:00"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    assert!(start.stdout.contains("rehearsal (virtual clock)"), "{}", start.stdout);
    let act = j.instance("act", &["--node", "B", "--actor", "erin", "--now", "2026-11-23T09:00:00-05:00"]);
    assert_eq!(act.code, 0, "{}", act.stderr);
    let before = j.bytes();
    // Finding 3: a backdated input is refused and names the last recorded instant.
    let back = j.instance("act", &["--node", "C", "--actor", "frank", "--now", "2020-01-01T09:00:00Z"]);
    assert_eq!(back.code, 1);
    assert!(back.stderr.contains("has recorded 2026-11-23T14:00:00+00:00 already"), "{}", back.stderr);
    assert_eq!(j.bytes(), before);
    let status = j.instance("status", &["--now", "2026-11-23T09:30:00-05:00"]);
    assert!(status.stdout.contains("clock:      rehearsal (virtual clock)"), "{}", status.stdout);
    // Without `--now` a rehearsal's clock stands at its last recorded instant.
    let still = j.instance("status", &[]);
    assert!(still.stdout.contains("now:        Mon 2026-11-23 09:00 EST"), "{}", still.stdout);
}

#[test]
fn reporting_a_result_is_an_act_by_a_role_and_is_recorded() {
    let j = Journal::new();
    let at = |t: &str| format!("2026-11-{t}-05:00");
    assert_eq!(j.instance("start", &[SPEC, "--clock", "virtual", "--now", &at("23T08:00:00")]).code, 0);
    for (node, actor, outcome, time) in [
        ("B", "erin", None, "23T09:00:00"),
        ("C", "frank", None, "23T09:30:00"),
        ("D", "alice", None, "24T10:00:00"),
        ("E", "alice", None, "25T10:00:00"),
        ("F", "bob", Some("approved"), "25T14:00:00"),
        ("G", "bob", Some("succeeded"), "25T14:10:00"),
    ] {
        let mut args = vec!["--node", node, "--actor", actor];
        args.extend(outcome.map(|o| ["--outcome", o]).into_iter().flatten());
        let now = at(time);
        args.extend(["--now", &now]);
        let run = j.instance("act", &args);
        assert_eq!(run.code, 0, "{node}: {}", run.stderr);
    }
    // Finding 4: H (deploy dev) is reported by DevOps only.
    let before = j.bytes();
    let alice =
        j.instance("act", &["--node", "H", "--actor", "alice", "--outcome", "succeeded", "--now", &at("25T14:20:00")]);
    assert_eq!(alice.code, 1, "{}", alice.stdout);
    assert!(
        alice.stderr.contains("`alice` may not act on `H`, which needs one of the roles `devops`"),
        "{}",
        alice.stderr
    );
    assert_eq!(j.bytes(), before);
    let dave =
        j.instance("act", &["--node", "H", "--actor", "dave", "--outcome", "succeeded", "--now", &at("25T14:20:00")]);
    assert_eq!(dave.code, 0, "{}", dave.stderr);
    let history = j.instance("history", &[]);
    assert!(history.stdout.contains("result of `H`: succeeded, reported by dave"), "{}", history.stdout);
    assert!(history.stdout.contains("result of `G`: succeeded, reported by bob"), "{}", history.stdout);
}

#[test]
fn a_deadline_that_passed_before_the_start_is_recorded_once_without_escalation() {
    let j = Journal::new();
    // Friday 16:00: QA's sign-off deadline (Friday 15:00) has passed.
    let start = j.instance("start", &[SPEC, "--clock", "virtual", "--now", "2026-11-27T16:00:00-05:00"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    assert!(start.stdout.contains("the deadline of `Q` had passed before the instance started"), "{}", start.stdout);
    let tick = j.instance("tick", &["--now", "2026-11-27T16:05:00-05:00"]);
    assert!(!tick.stdout.contains("escalat"), "{}", tick.stdout);
    let history = j.instance("history", &[]);
    assert_eq!(history.stdout.matches("had passed before the instance started").count(), 1, "{}", history.stdout);
    assert!(!history.stdout.contains("missed its deadline"), "{}", history.stdout);
    let status = j.instance("status", &["--now", "2026-11-27T16:05:00-05:00"]);
    assert!(!status.stdout.contains("Q` missed"), "{}", status.stdout);
}

#[test]
fn bad_inputs_to_start_create_nothing_and_say_so_once() {
    let j = Journal::new();
    let journal = j.dir.path().join("new");
    let journal = journal.to_str().unwrap();
    let garbage = kars(&["instance", "start", SPEC, "--journal", journal, "--clock", "virtual", "--now", "garbage"]);
    assert_eq!(garbage.code, 2);
    assert!(!Path::new(journal).exists(), "a refused start created the journal directory");
    let missing = kars(&["instance", "start", "/nonexistent/spec.yaml", "--journal", journal]);
    assert_eq!(missing.code, 2);
    assert_eq!(missing.stderr.lines().filter(|l| l.starts_with("error")).count(), 1, "{}", missing.stderr);
    let zero = kars(&["instance", "start", SPEC, "--journal", journal, "--team", "/dev/zero"]);
    assert_eq!(zero.code, 1, "{}", zero.stderr);
    assert!(zero.stderr.contains("1 MiB"), "{}", zero.stderr);
    let team = j.file("team.yaml", "- zoe\n");
    let parse = kars(&["instance", "start", SPEC, "--journal", journal, "--team", team.to_str().unwrap()]);
    assert_eq!(parse.code, 1);
    assert!(!parse.stderr.contains("untagged"), "{}", parse.stderr);
    assert!(!Path::new(journal).exists());
    let now = kars(&["instance", "start", SPEC, "--journal", journal, "--now", "2026-11-23T08:00:00Z"]);
    assert_eq!(now.code, 1);
    assert!(now.stderr.contains("`--now` is for rehearsals"), "{}", now.stderr);
}

#[test]
fn a_closed_or_full_stdout_never_panics_and_the_code_says_if_the_change_was_committed() {
    let j = Journal::new();
    let start = j.instance("start", &[SPEC, "--clock", "virtual", "--now", "2026-11-23T08:00:00-05:00"]);
    assert_eq!(start.code, 0);
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let before = j.bytes().len();
    let out = Command::new(env!("CARGO_BIN_EXE_kars"))
        .args(["instance", "act", "--journal", j.path(), "--id", "kars-release", "--node", "B", "--actor", "erin"])
        .args(["--now", "2026-11-23T09:00:00-05:00"])
        .stdout(Stdio::from(full))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("cannot write to standard output"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(j.bytes().len() > before, "the change was committed");
    for sub in ["status", "history"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kars"))
            .args(["instance", sub, "--journal", j.path(), "--id", "kars-release"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{sub}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{sub}");
    }
}

/// A journal written by kars 0.1 (journal format 1), checked in: it still reads, replays and
/// goes on. Format 1 took every time and actor from the command line, so it reads as a
/// rehearsal; its action results name no reporter.
#[test]
fn a_format_1_journal_still_reads_and_goes_on() {
    let j = Journal::new();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/journal-v1/kars-release.journal");
    std::fs::copy(fixture, j.dir.path().join("kars-release.journal")).unwrap();
    let history = j.instance("history", &[]);
    assert_eq!(history.code, 0, "{}", history.stderr);
    assert!(history.stdout.contains("a rehearsal instance"), "{}", history.stdout);
    assert!(history.stdout.contains("result of `G`: succeeded, reported by (not recorded)"), "{}", history.stdout);
    assert!(history.stdout.contains("bob completes `F` with `approved`"), "{}", history.stdout);
    let status = j.instance("status", &["--now", "2026-11-25T15:00:00-05:00"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("at:         `H`"), "{}", status.stdout);
    // The 0.1 spec stored in the journal has no `reported_by`: H's reporters are the roles of
    // the task before it on its single way in (F: developer or team lead).
    let report = j.instance(
        "act",
        &["--node", "H", "--actor", "bob", "--outcome", "succeeded", "--now", "2026-11-25T15:00:00-05:00"],
    );
    assert_eq!(report.code, 0, "{}", report.stderr);
    let history = j.instance("history", &[]);
    assert!(history.stdout.contains("result of `H`: succeeded, reported by bob"), "{}", history.stdout);
}

/// A rehearsal with a few records, for the journal tests below.
fn rehearsal() -> Journal {
    let j = Journal::new();
    assert_eq!(j.instance("start", &[SPEC, "--clock", "virtual", "--now", "2026-11-23T08:00:00-05:00"]).code, 0);
    let act = j.instance("act", &["--node", "B", "--actor", "erin", "--now", "2026-11-23T09:00:00-05:00"]);
    assert_eq!(act.code, 0, "{}", act.stderr);
    j
}

/// Finding 7: a full-length last record whose checksum fails is corruption, not a torn tail:
/// read commands refuse it and leave the file alone; `repair` backs the file up and cuts it.
#[test]
fn a_flipped_byte_in_the_last_record_is_corruption_until_repaired() {
    let j = rehearsal();
    let path = j.dir.path().join("kars-release.journal");
    let mut bytes = j.bytes();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    for sub in ["history", "status"] {
        let run = j.instance(sub, &[]);
        assert_eq!(run.code, 2, "{sub}: {}", run.stdout);
        assert!(run.stderr.contains("is corrupt at byte"), "{sub}: {}", run.stderr);
        assert!(run.stderr.contains("kars instance repair"), "{sub}: {}", run.stderr);
    }
    assert_eq!(j.bytes(), bytes, "readers never write");
    let repair = j.instance("repair", &[]);
    assert_eq!(repair.code, 0, "{}", repair.stderr);
    assert!(repair.stdout.contains("kars-release.journal.bak-1"), "{}", repair.stdout);
    assert_eq!(std::fs::read(j.dir.path().join("kars-release.journal.bak-1")).unwrap(), bytes);
    let history = j.instance("history", &[]);
    assert_eq!(history.code, 0, "{}", history.stderr);
    assert!(!history.stdout.contains("erin completes `B`"), "the damaged record is gone: {}", history.stdout);
}

/// A torn tail (an append cut short) is ignored by readers and cut by the next writer, which
/// says so on stderr.
#[test]
fn a_torn_tail_is_left_alone_by_readers_and_cut_by_a_writer_that_says_so() {
    let j = rehearsal();
    let path = j.dir.path().join("kars-release.journal");
    let mut bytes = j.bytes();
    bytes.extend_from_slice(&[0x40, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&path, &bytes).unwrap();
    let status = j.instance("status", &["--now", "2026-11-23T09:10:00-05:00"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_eq!(j.bytes(), bytes);
    let act = j.instance("act", &["--node", "C", "--actor", "frank", "--now", "2026-11-23T09:30:00-05:00"]);
    assert_eq!(act.code, 0, "{}", act.stderr);
    assert!(act.stderr.contains("cut a torn tail of 7 bytes"), "{}", act.stderr);
}

/// Finding 8: a read-only journal (file 0444, directory 0555) read by another user.
#[test]
fn read_commands_work_on_a_read_only_journal_of_another_user() {
    if Command::new("setpriv").arg("--version").output().is_err() || me() != "root" {
        eprintln!("skipped: needs root and setpriv to run as another user");
        return;
    }
    let j = rehearsal();
    let dir = j.dir.path();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("kars-release.journal"), std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let before = j.bytes();
    for sub in ["status", "history"] {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_kars"), "instance", sub])
            .args(["--journal", j.path(), "--id", "kars-release"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{sub}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(j.bytes(), before);
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}
