//! `kars import FILE`: a mermaid flowchart (`.mmd`, or markdown with a mermaid block) as a YAML
//! spec skeleton on standard output; warnings go to standard error.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `kars import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A `.mmd` file or a markdown file (its first mermaid block is read); `-` reads standard input.
    file: PathBuf,
}

pub fn run(args: &Args) -> ExitCode {
    let (source, origin) = match super::read_input(&args.file) {
        Ok(read) => read,
        Err(code) => return code,
    };
    match kars::spec::mermaid::import(&source) {
        Ok(outcome) => {
            for warning in &outcome.warnings {
                eprintln!("warning: {origin}: {warning}");
            }
            print!("{}", kars::spec::mermaid::to_yaml(&outcome.spec));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprint!("{}", error.excerpt(&origin, &source));
            ExitCode::from(super::EXIT_INVALID)
        }
    }
}
