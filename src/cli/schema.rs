//! `kars schema`: print the spec format's JSON Schema.

use std::io::Write as _;
use std::process::ExitCode;

use super::io::{Output, finish};

/// Arguments of `kars schema`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Prints the schema as pretty JSON with a trailing newline, the form checked in at
/// `schema/kars-spec.schema.json`.
pub fn run(_args: &Args) -> ExitCode {
    let text = serde_json::to_string_pretty(&kars::spec::json_schema()).unwrap_or_default();
    let mut out = Output::stdout();
    let _ = writeln!(out, "{text}");
    finish(0, out.finish(), super::EXIT_USAGE)
}
