//! `kars simulate FILE --expect [EXPECT]` as a team runs it in CI: exit codes, the report, and
//! replay commands that really show the week that broke an expectation.

use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn kars(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_kars"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("kars runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const GATE_ON_I: [&str; 6] = [
    "simulate",
    "tests/expect/specs/freeze-gate-on-i.yaml",
    "--model",
    "workflows/kars-release.model.yaml",
    "--expect",
    "workflows/kars-release.expect.yaml",
];

#[test]
fn the_bundled_spec_passes_its_expectations_file_found_beside_it() {
    let run = kars(&["simulate", "workflows/kars-release.yaml", "--expect"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "");
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn the_freeze_gate_on_i_fails_and_names_the_week() {
    let run = kars(&GATE_ON_I);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("FAIL  sign_off_by_friday:"), "{}", run.stdout);
    insta::assert_snapshot!(run.stdout);
}

/// Same files, same output, byte for byte.
#[test]
fn the_same_files_give_the_same_bytes() {
    let first = kars(&GATE_ON_I);
    let second = kars(&GATE_ON_I);
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(first.code, second.code);
}

/// The replay command printed under a failed expectation shows exactly the week that broke it,
/// and that week does break it: the sign-off deadline is missed in its timeline.
#[test]
fn the_replay_command_shows_the_week_that_broke_the_expectation() {
    let run = kars(&GATE_ON_I);
    let block = run.stdout.split("FAIL  sign_off_deadline:").nth(1).expect("sign_off_deadline fails");
    let first = block.lines().find_map(|l| l.trim().strip_prefix("first broken: ")).expect("names the week");
    let command = block.lines().find_map(|l| l.trim().strip_prefix("replay: kars ")).expect("prints a replay command");
    let release = first.rsplit_once('(').and_then(|(_, r)| r.strip_suffix(')')).expect("a release id in parentheses");
    let args: Vec<&str> = command.split_whitespace().collect();
    let replay = kars(&args);
    assert_eq!(replay.code, 0, "{command}: {}", replay.stderr);
    let lines: Vec<&str> = replay.stdout.lines().take_while(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "{}", replay.stdout);
    assert!(lines.iter().all(|l| l.starts_with(release)), "only {release} is shown:\n{}", replay.stdout);
    assert!(lines.first().is_some_and(|l| l.contains("CycleStarted")), "the whole week, from its start");
    assert!(lines.iter().any(|l| l.contains("CycleEnded")), "the whole week, to its end");
    assert!(lines.iter().any(|l| l.contains("DeadlineMissed  Q")), "{release} misses the sign-off deadline");
}

#[test]
fn a_mistake_in_the_expectations_file_exits_1_with_its_place() {
    let run = kars(&["simulate", "workflows/kars-release.yaml", "--expect", "tests/expect/invalid/unknown_node.yaml"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: tests/expect/invalid/unknown_node.yaml:4:26: at `expect.sign_off.completes`: the spec has no node `q`\nhelp: did you mean `Q`?\n"
    );
}

#[test]
fn no_expectations_file_beside_the_spec_exits_2_with_help() {
    let run = kars(&["simulate", "tests/expect/specs/steady.yaml", "--expect"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.starts_with("error: cannot read `tests/expect/specs/steady.expect.yaml`"), "{}", run.stderr);
    assert!(run.stderr.contains("help: `--expect` without a value reads `NAME.expect.yaml`"), "{}", run.stderr);
}

#[test]
fn run_settings_come_from_the_expectations_file_only() {
    let run = kars(&["simulate", "workflows/kars-release.yaml", "--seed", "3", "--expect"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
    let run = kars(&["simulate", "workflows/kars-release.yaml"]);
    assert_eq!(run.code, 2, "without --expect, --start is required: {}", run.stderr);
    assert!(run.stderr.contains("--start"), "{}", run.stderr);
}

#[test]
fn from_week_must_be_a_simulated_week() {
    let args = ["simulate", "workflows/kars-release.yaml", "--start", "2026-01-05", "--weeks", "3"];
    let run = kars(&[&args[..], &["--from-week", "2026-W09"]].concat());
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "error: `--from-week 2026-W09` is not among the simulated weeks (2026-W02 to 2026-W04)\nhelp: write a release id like `2026-W07`, and give `--weeks` enough to reach it\n"
    );
    let run = kars(&[&args[..], &["--from-week", "2026-W03"]].concat());
    assert_eq!(run.code, 0);
    let stories: Vec<&str> = run.stdout.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    assert_eq!(stories.len(), 2, "{}", run.stdout);
    assert!(stories[0].starts_with("2026-W03") && stories[1].starts_with("2026-W04"), "{}", run.stdout);
}

fn readme_section() -> &'static str {
    let readme = include_str!("../README.md");
    readme
        .split("## Test your own workflow")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the README has the section")
}

fn blocks<'a>(text: &'a str, fence: &str) -> Vec<&'a str> {
    text.split(&format!("```{fence}\n")).skip(1).filter_map(|rest| rest.split("```").next()).collect()
}

/// The README's expectations file is the bundled one without its comments, its command is real
/// and its failing excerpt is what that command prints; its Rust is the example's, verbatim.
#[test]
fn the_readme_section_shows_real_files_and_output() {
    let section = readme_section();
    let bundled: String = include_str!("../workflows/kars-release.expect.yaml")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{}\n", l.split(" #").next().unwrap_or(l).trim_end()))
        .collect();
    assert_eq!(blocks(section, "yaml")[0], bundled);
    let command = blocks(section, "sh")[0].trim();
    assert_eq!(command, format!("kars {}", GATE_ON_I.join(" ")));
    let run = kars(&GATE_ON_I);
    for line in blocks(section, "text")[0].lines() {
        assert!(run.stdout.lines().any(|l| l == line), "`{line}` is not in the real output:\n{}", run.stdout);
    }
    let example = include_str!("../examples/test_your_workflow.rs");
    assert!(example.contains(blocks(section, "rs")[0]), "the README's property is not the example's");
}
