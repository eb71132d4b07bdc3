//! What the command line reads and writes, run through the real binary: a closed or full
//! standard output never panics and gives a documented exit code, every input is capped with
//! a message naming its real size, and `simulate --start` stays inside the engine's calendar.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SPEC: &str = "workflows/kars-release.yaml";
const FLOWCHART: &str = "tests/fixtures/mermaid/kars-release-workflow.md";
const CAP_SENTENCE: &str = "more than the limit of 1048576 bytes (1 MiB)";

/// The five commands that write standard output, with arguments that succeed.
const COMMANDS: [&[&str]; 5] = [
    &["check", SPEC],
    &["render", SPEC],
    &["import", FLOWCHART],
    &["simulate", SPEC, "--start", "2026-11-23", "--weeks", "3"],
    &["schema"],
];

struct Run {
    code: Option<i32>,
    stderr: String,
}

impl Run {
    /// Never a panic: exit 101 is Rust's panic code.
    fn assert_no_panic(&self, args: &[&str]) {
        assert!(!self.stderr.contains("panicked"), "kars {args:?}: {}", self.stderr);
        assert_ne!(self.code, Some(101), "kars {args:?}: {}", self.stderr);
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn kars(args: &[&str], stdin: Stdio, stdout: Stdio) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_kars"))
        .args(args)
        .current_dir(root())
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("kars runs");
    let run = Run { code: out.status.code(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() };
    run.assert_no_panic(args);
    run
}

/// Standard output is a pipe whose read end is closed before kars starts: every write fails
/// with `EPIPE`.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    Stdio::from(writer)
}

#[cfg(target_os = "linux")]
fn dev_full() -> Stdio {
    Stdio::from(std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full"))
}

fn stdout_piped_run(args: &[&str]) -> (Run, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kars")).args(args).current_dir(root()).output().expect("kars runs");
    let run = Run { code: out.status.code(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() };
    run.assert_no_panic(args);
    (run, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn every_command_succeeds_with_these_arguments() {
    for args in COMMANDS {
        let (run, stdout) = stdout_piped_run(args);
        assert_eq!(run.code, Some(0), "kars {args:?}: {}", run.stderr);
        assert!(!stdout.is_empty(), "kars {args:?} writes standard output");
    }
}

/// `kars … | head -1`: the reader went away; kars stops quietly with the exit code it would
/// have had.
#[test]
fn a_closed_pipe_exits_quietly_with_the_commands_own_code() {
    for args in COMMANDS {
        let run = kars(args, Stdio::null(), closed_pipe());
        assert_eq!(run.code, Some(0), "kars {args:?}: {}", run.stderr);
        assert_eq!(run.stderr, "", "kars {args:?}");
    }
    let args = ["check", SPEC, "tests/specs/invalid/version.yaml"];
    let run = kars(&args, Stdio::null(), closed_pipe());
    assert_eq!(run.code, Some(1), "an invalid spec still exits 1: {}", run.stderr);
    assert!(run.stderr.contains("version.yaml"), "{}", run.stderr);
}

#[test]
fn a_long_simulation_into_a_closed_pipe_stops_quietly() {
    let args = ["simulate", SPEC, "--start", "2026-11-23", "--weeks", "2000", "--format", "json"];
    let run = kars(&args, Stdio::null(), closed_pipe());
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""));
}

/// `kars … >/dev/full`: one line on standard error, exit 2 (nothing was changed).
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_reported_once_with_exit_2() {
    for args in COMMANDS {
        let run = kars(args, Stdio::null(), dev_full());
        assert_eq!(run.code, Some(2), "kars {args:?}: {}", run.stderr);
        let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(
            errors,
            ["error: cannot write to standard output: No space left on device (os error 28)"],
            "kars {args:?}"
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn an_endless_device_is_refused_at_the_cap() {
    for args in [
        &["render", "/dev/zero"][..],
        &["import", "/dev/zero"],
        &["check", "/dev/zero"],
        &["simulate", "/dev/zero", "--start", "2026-11-23"],
        &["simulate", SPEC, "--start", "2026-11-23", "--model", "/dev/zero"],
    ] {
        let run = kars(args, Stdio::null(), Stdio::null());
        assert_eq!(run.code, Some(1), "kars {args:?}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("the input is {CAP_SENTENCE}")), "kars {args:?}: {}", run.stderr);
        assert!(run.stderr.contains("/dev/zero"), "kars {args:?}: {}", run.stderr);
    }
}

/// A 20 MB file (sparse: it takes no disk) is refused from its size, which the message names.
#[test]
fn a_large_file_is_refused_with_its_real_size() {
    let dir = tempfile::tempdir().unwrap();
    let big: PathBuf = dir.path().join("big.yaml");
    std::fs::File::create(&big).unwrap().set_len(20 * 1024 * 1024).unwrap();
    let path = big.to_str().unwrap();
    let sentence = format!("the file is 20971520 bytes, {CAP_SENTENCE}");
    for args in [
        &["check", path][..],
        &["render", path],
        &["import", path],
        &["simulate", SPEC, "--start", "2026-11-23", "--model", path],
    ] {
        let run = kars(args, Stdio::null(), Stdio::null());
        assert_eq!(run.code, Some(1), "kars {args:?}: {}", run.stderr);
        assert!(run.stderr.contains(&sentence), "kars {args:?}: {}", run.stderr);
    }
    let run = kars(&["check", path], Stdio::null(), Stdio::null());
    assert!(run.stderr.starts_with("error[K0101]: "), "a spec keeps the loader's code: {}", run.stderr);
    // Standard input redirected from the file: its size is known too.
    let run = kars(&["check", "-"], Stdio::from(std::fs::File::open(&big).unwrap()), Stdio::null());
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains(&sentence), "{}", run.stderr);
}

#[test]
fn a_flowchart_that_is_not_utf8_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("utf16.mmd");
    std::fs::write(&file, b"\xff\xfef\x00l\x00").unwrap();
    let run = kars(&["import", file.to_str().unwrap()], Stdio::null(), Stdio::null());
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("is not UTF-8 text: byte 0xff at offset 0 is not valid UTF-8"), "{}", run.stderr);
}

/// A file that cannot be read is reported in one line, once.
#[test]
fn a_missing_file_is_reported_once() {
    for args in [
        &["render", "no/such.yaml"][..],
        &["import", "no/such.yaml"],
        &["simulate", "no/such.yaml", "--start", "2026-11-23"],
        &["simulate", SPEC, "--start", "2026-11-23", "--model", "no/such.yaml"],
    ] {
        let run = kars(args, Stdio::null(), Stdio::null());
        assert_eq!(run.code, Some(2), "kars {args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: cannot read `no/such.yaml`: "), "kars {args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "kars {args:?}: {}", run.stderr);
    }
}

#[test]
fn simulate_refuses_a_start_outside_the_engine_calendar() {
    for start in ["0001-01-01", "0999-12-31", "1000-01-01", "9000-01-01", "9999-12-31"] {
        let run = kars(&["simulate", SPEC, "--start", start], Stdio::null(), Stdio::null());
        assert_eq!(run.code, Some(2), "--start {start}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "`{start}` is outside the engine's calendar: the first day must lie from 1000-01-02 to 8999-12-31"
            )),
            "--start {start}: {}",
            run.stderr
        );
    }
    let (run, stdout) = stdout_piped_run(&["simulate", SPEC, "--start", "1000-01-02", "--weeks", "1"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(stdout.contains("1 weeks from 1000-01-02"), "{stdout}");
}

/// `kars --help` writes standard output too: a closed pipe exits 0, a full disk 2.
#[test]
fn help_into_a_closed_pipe_or_a_full_disk() {
    let run = kars(&["--help"], Stdio::null(), closed_pipe());
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""));
    #[cfg(target_os = "linux")]
    {
        let run = kars(&["--help"], Stdio::null(), dev_full());
        assert_eq!(run.code, Some(2));
        assert_eq!(run.stderr, "error: cannot write to standard output: No space left on device (os error 28)\n");
    }
}
