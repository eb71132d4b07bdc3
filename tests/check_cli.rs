//! `kars check` and `kars schema` as a user runs them: exit codes, stdout and stderr.

use std::io::Write as _;
use std::process::{Command, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn kars(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kars"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kars runs");
    if let Some(input) = stdin {
        // kars stops reading a stream past its size cap, so a failed write is expected there.
        let _ = child.stdin.take().unwrap().write_all(input);
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn the_bundled_spec_passes() {
    let run = kars(&["check", "workflows/kars-release.yaml"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "workflows/kars-release.yaml: ok\n");
    assert_eq!(run.stderr, "");
}

#[test]
fn an_invalid_spec_exits_1_with_diagnostics_on_stderr() {
    let run = kars(&["check", "workflows/kars-release.yaml", "tests/specs/invalid/many_errors.yaml"], None);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "workflows/kars-release.yaml: ok\n");
    insta::assert_snapshot!(run.stderr);
}

#[test]
fn warnings_are_printed_but_the_spec_passes() {
    let run = kars(&["check", "tests/specs/warning/fixed_offset_zone.yaml"], None);
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout, "tests/specs/warning/fixed_offset_zone.yaml: ok\n");
    insta::assert_snapshot!(run.stderr);
}

#[test]
fn a_missing_file_exits_2_and_the_others_are_still_checked() {
    let run = kars(&["check", "no/such/spec.yaml", "tests/specs/invalid/version.yaml"], None);
    assert_eq!(run.code, 2);
    insta::assert_snapshot!(run.stderr);
}

#[test]
fn a_directory_is_an_io_error() {
    let run = kars(&["check", "tests/specs"], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.starts_with("error: cannot read `tests/specs`:"), "{}", run.stderr);
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let run = kars(&["check", "-"], Some(b"version: 1\nname: x\ntimezone: UTC\nnodes: {}\nedges: []\n"));
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stderr);
    let valid = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/specs/valid/minimal.yaml")).unwrap();
    let run = kars(&["check", "-"], Some(&valid));
    assert_eq!((run.code, run.stdout.as_str()), (0, "<stdin>: ok\n"), "{}", run.stderr);
}

#[test]
fn a_huge_stream_is_refused_without_reading_it_all() {
    let big = vec![b'#'; 3 * 1024 * 1024];
    let run = kars(&["check", "-"], Some(&big));
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("error[K0101]"), "{}", run.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let run = kars(&["check"], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("Usage"), "{}", run.stderr);
}

#[test]
fn schema_prints_the_checked_in_schema() {
    let run = kars(&["schema"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/kars-spec.schema.json")).unwrap();
    assert_eq!(run.stdout, checked_in);
}

/// Checks that know the team warn; `--strict` makes a warning an error, and the bundled spec
/// passes it.
#[test]
fn strict_turns_team_warnings_into_errors() {
    let warned = kars(&["check", "tests/specs/warning/distinct_from_one_person.yaml"], None);
    assert_eq!(warned.code, 0, "{}", warned.stderr);
    assert!(warned.stderr.contains("warning[K0514]: only `ana` can complete both `W` and `R`"), "{}", warned.stderr);
    let strict = kars(&["check", "--strict", "tests/specs/warning/distinct_from_one_person.yaml"], None);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert!(strict.stderr.contains("which `--strict` makes errors"), "{}", strict.stderr);
    assert_eq!(strict.stdout, "");
    let bundled = kars(&["check", "--strict", "workflows/kars-release.yaml"], None);
    assert_eq!(bundled.code, 0, "{}", bundled.stderr);
}
