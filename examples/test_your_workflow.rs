//! A property test of your own workflow, the way you would write one in your `tests/` folder:
//! random seeds, start dates (the DST weeks of your zone included), models and rosters, and an
//! invariant checked on every simulated cycle.
//!
//! ```sh
//! cargo run --example test_your_workflow --features testing -- workflows/kars-release.yaml
//! ```
//!
//! In your own crate, put the `proptest!` block in `tests/workflow.rs` and add
//! `kars = { version = "0.1", features = ["testing"] }` and `proptest` to `[dev-dependencies]`.

use std::process::ExitCode;

use chrono::Duration;
use kars::spec::CheckedSpec;
use kars::spec::calendar::resolve_local;
use kars::testing::{self, Cycle, SimConfig, SimHistory};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

// --- the property: this is what goes in your tests/workflow.rs ---------------------------------

/// QA signs off (`Q`) before the product manager approves the release (`R`), and production
/// (`Y`) is never deployed before Monday 10:00 of the week after the cycle's week.
fn sign_off_then_approval_then_monday_deploy(cycle: &Cycle) -> Result<(), TestCaseError> {
    if let (Some(signed), Some(approved)) = (cycle.completed("Q"), cycle.completed("R")) {
        prop_assert!(
            signed <= approved,
            "approved at {} before the sign-off at {}",
            cycle.local(approved),
            cycle.local(signed)
        );
    }
    if let Some(deployed) = cycle.completed("Y") {
        let monday_ten = (cycle.monday() + Duration::days(7)).and_hms_opt(10, 0, 0).expect("10:00 is a time");
        let earliest = resolve_local(cycle.zone, monday_ten);
        prop_assert!(deployed >= earliest, "deployed at {}, before {}", cycle.local(deployed), cycle.local(earliest));
    }
    Ok(())
}

fn check_spec(spec: &CheckedSpec, runner: &mut TestRunner) -> Result<(), String> {
    let cases = (
        testing::seeds(),
        testing::start_dates(spec.zone(), 2026..=2030),
        testing::models(spec),
        testing::roster_changes(spec),
    );
    runner
        .run(&cases, |(seed, start, model, team)| {
            let config = SimConfig { weeks: 26, seed, start, history: SimHistory::Release };
            testing::each_cycle(&team, &model, &config, sign_off_then_approval_then_monday_deploy)?;
            Ok(())
        })
        .map_err(|failure| failure.to_string())
}

// --- running it from `cargo run --example` ------------------------------------------------------

fn main() -> ExitCode {
    let path = std::env::args().nth(1).unwrap_or_else(|| "workflows/kars-release.yaml".to_owned());
    let spec = match std::fs::read_to_string(&path) {
        Ok(yaml) => match kars::spec::load(&yaml, &path) {
            Ok(spec) => spec,
            Err(report) => {
                eprint!("{report}");
                return ExitCode::FAILURE;
            }
        },
        Err(e) => {
            eprintln!("error: cannot read `{path}`: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cases = 32;
    let mut runner = TestRunner::new(ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() });
    match check_spec(&spec, &mut runner) {
        Ok(()) => {
            println!("{path}: the property held in {cases} random cases of 26 weeks");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("{path}: {failure}");
            ExitCode::FAILURE
        }
    }
}
