//! Command-line parsing and dispatch; each subcommand lives in its own module.
//!
//! Exit codes: 0 success, 1 an invalid spec or a refused action, 2 usage or IO errors.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod simulate;

/// The process exit code for an invalid spec or a refused action.
pub const EXIT_INVALID: u8 = 1;
/// The process exit code for usage and IO errors.
pub const EXIT_USAGE: u8 = 2;

/// kars: workflows as YAML specs, checked, drawn, simulated and run.
#[derive(Debug, Parser)]
#[command(name = "kars", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check specs: exit 0 when all are valid (warnings are printed), 1 when any is invalid.
    Check(check::Args),
    /// Simulate weeks of a workflow on a virtual clock with seeded people.
    Simulate(simulate::Args),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Simulate(args) => simulate::run(&args),
    }
}

/// Reads and checks a spec file (`-` for standard input), printing diagnostics on failure.
pub fn load_spec(path: &std::path::Path) -> Option<(kars::spec::CheckedSpec, String)> {
    let name = path.display().to_string();
    let text = if name == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
    } else {
        std::fs::read_to_string(path)
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read `{name}`: {e}");
            return None;
        }
    };
    match kars::spec::load(&text, &name) {
        Ok(spec) => Some((spec, name)),
        Err(report) => {
            eprintln!("{report}");
            None
        }
    }
}
