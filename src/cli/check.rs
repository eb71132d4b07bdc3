//! `kars check FILE...`: load and validate specs, print diagnostics rustc-style on stderr.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::io::{Output, finish};
use super::{EXIT_INVALID, EXIT_USAGE};

/// Arguments of `kars check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Spec files to check; `-` reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Treat warnings as errors: a spec with any warning (a role nobody on the team holds, a
    /// `distinct_from` the team cannot satisfy, ...) is invalid (exit 1).
    #[arg(long)]
    strict: bool,
}

/// Checks every file; exit 0 when all are valid, 1 when any is invalid (too large, not UTF-8,
/// or failing a rule), 2 when a file cannot be read or the report cannot be written (the other
/// files are still checked).
pub fn run(args: &Args) -> ExitCode {
    let mut out = Output::stdout();
    let mut worst = 0;
    for file in &args.files {
        let code = match super::read_spec(file) {
            Ok((spec, origin)) if args.strict && !spec.warnings().is_empty() => {
                let count = spec.warnings().len();
                super::io::errln!("error: `{origin}` has {count} warning(s), which `--strict` makes errors");
                EXIT_INVALID
            }
            Ok((_, origin)) => {
                // A failed write is kept by `out` and reported by `finish`.
                let _ = writeln!(out, "{origin}: ok");
                0
            }
            Err(failure) => failure.print(),
        };
        // An unreadable file (`EXIT_USAGE`, 2) outranks an invalid one (`EXIT_INVALID`, 1).
        worst = worst.max(code);
    }
    finish(worst, out.finish(), EXIT_USAGE)
}
