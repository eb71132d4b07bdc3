//! Command-line parsing and dispatch; each subcommand lives in its own module.
//!
//! Exit codes: 0 success, 1 an invalid spec or a refused action, 2 usage or IO errors.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod import;
mod instance;
mod render;

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
    /// Draw a spec as a mermaid flowchart on standard output.
    Render(render::Args),
    /// Turn a mermaid flowchart (`.mmd` or markdown) into a YAML spec skeleton on standard output.
    Import(import::Args),
    /// Run a workflow instance from a terminal or a cron job: start, status, act, tick, history.
    Instance(instance::Args),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Render(args) => render::run(&args),
        Command::Import(args) => import::run(&args),
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
