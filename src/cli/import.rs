//! `kars import FILE`: a mermaid flowchart (`.mmd`, or markdown with a mermaid block) as a YAML
//! spec skeleton on standard output; warnings go to standard error.

use std::path::PathBuf;
use std::process::ExitCode;

use super::io::{Output, errln, finish, read_text};
use super::{EXIT_INVALID, EXIT_USAGE, Failure};

/// Arguments of `kars import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A `.mmd` file or a markdown file (its first mermaid block is read); `-` reads standard input.
    file: PathBuf,
}

pub fn run(args: &Args) -> ExitCode {
    let input = match read_text(&args.file) {
        Ok(input) => input,
        Err(e) => return ExitCode::from(Failure::from(e).print()),
    };
    match kars::spec::mermaid::import(&input.text) {
        Ok(outcome) => {
            for warning in &outcome.warnings {
                errln!("warning: {}: {warning}", input.origin);
            }
            let mut out = Output::stdout();
            out.print(&kars::spec::mermaid::to_yaml(&outcome.spec));
            finish(0, out.finish(), EXIT_USAGE)
        }
        Err(error) => {
            super::io::eprint(format_args!("{}", error.excerpt(&input.origin, &input.text)));
            ExitCode::from(EXIT_INVALID)
        }
    }
}
