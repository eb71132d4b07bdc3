//! Command-line parsing and dispatch; each subcommand lives in its own module.
//!
//! Exit codes: 0 success, 1 an invalid spec or a refused action, 2 usage or IO errors (nothing
//! committed), 3 a change committed whose report could not be written.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod import;
mod instance;
mod render;
mod schema;
mod simulate;

/// The process exit code for an invalid spec or a refused action.
pub const EXIT_INVALID: u8 = 1;
/// The process exit code for usage and IO errors.
pub const EXIT_USAGE: u8 = 2;
/// The process exit code for a change that was committed but whose report could not be
/// written (standard output closed or full).
pub const EXIT_UNREPORTED: u8 = 3;

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
    /// Draw a spec as a mermaid flowchart on standard output.
    Render(render::Args),
    /// Turn a mermaid flowchart (`.mmd` or markdown) into a YAML spec skeleton on standard output.
    Import(import::Args),
    /// Simulate weeks of a workflow on a virtual clock with seeded people.
    Simulate(simulate::Args),
    /// Run a workflow instance from a terminal or a cron job: start, status, act, tick, history.
    Instance(instance::Args),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::Render(args) => render::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Instance(args) => instance::run(&args),
    }
}

/// Reads a file, or standard input for `-`; returns the text and the name to show in messages.
fn read_input(file: &std::path::Path) -> Result<(String, String), ExitCode> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        return match std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
            Ok(_) => Ok((text, "<stdin>".to_owned())),
            Err(e) => {
                eprintln!("error: cannot read standard input: {e}");
                Err(ExitCode::from(EXIT_USAGE))
            }
        };
    }
    match std::fs::read_to_string(file) {
        Ok(text) => Ok((text, file.display().to_string())),
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", file.display());
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// Reads and checks a spec (`-` for standard input), printing its warnings or diagnostics on
/// stderr; on failure, the exit code (2 when it cannot be read, 1 when it is invalid).
fn load_spec(file: &std::path::Path) -> Result<(kars::spec::CheckedSpec, String), ExitCode> {
    let (text, name) = read_input(file)?;
    match kars::spec::load(&text, &name) {
        Ok(spec) => {
            if !spec.warnings().is_empty() {
                eprint!("{}", spec.warning_report());
            }
            Ok((spec, name))
        }
        Err(report) => {
            eprint!("{report}");
            Err(ExitCode::from(EXIT_INVALID))
        }
    }
}
