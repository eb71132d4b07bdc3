//! `kars check FILE...`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `kars check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Spec files to check; `-` reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: &Args) -> ExitCode {
    let mut invalid = false;
    for file in &args.files {
        let source = match std::fs::read_to_string(file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", file.display());
                return ExitCode::from(super::EXIT_USAGE);
            }
        };
        match kars::spec::load(&source, &file.display().to_string()) {
            Ok(_) => println!("{}: ok", file.display()),
            Err(report) => {
                eprintln!("{report}");
                invalid = true;
            }
        }
    }
    if invalid { ExitCode::from(super::EXIT_INVALID) } else { ExitCode::SUCCESS }
}
