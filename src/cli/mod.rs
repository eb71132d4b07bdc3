//! Command-line parsing and dispatch; each subcommand lives in its own module.
//!
//! Exit codes: 0 success, 1 an invalid spec or a refused action, 2 usage or IO errors.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod schema;

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
    /// Print the JSON Schema of the spec format.
    Schema(schema::Args),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Schema(args) => schema::run(&args),
    }
}
