//! The `kars` command line: check, render, import, simulate and drive workflow instances.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    match cli::Cli::try_parse() {
        Ok(args) => cli::run(args),
        Err(error) => cli::parse_failed(&error),
    }
}
