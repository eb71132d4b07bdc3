//! Command-line parsing and dispatch; each subcommand lives in its own module, reading its
//! inputs through [`io::read_bytes`] / [`io::read_text`] (capped at [`io::MAX_INPUT_BYTES`]) and
//! writing standard output through [`io::Output`].
//!
//! Exit codes:
//! - 0: success;
//! - 1 ([`EXIT_INVALID`]): an invalid spec, model or flowchart, an input past the size cap or not
//!   UTF-8, a refused action;
//! - 2 ([`EXIT_USAGE`]): a usage error, an input that cannot be read, or standard output that
//!   cannot be written (a full disk); nothing was changed;
//! - 3 ([`EXIT_UNREPORTED`]): the change was committed (journaled) but its report could not be
//!   written to standard output: do not retry it, read the state with `kars instance status`.
//!
//! Errors print once, on standard error. A closed pipe on standard output (`kars … | head -1`)
//! is not an error: the command stops writing, prints nothing more, and exits with the code it
//! would have had. The reader chose to stop reading, which is a normal use, so a message would
//! be noise in every such pipeline; keeping the command's own code means that a script with
//! `set -o pipefail` still sees an invalid spec (1), and that a committed change still says 0.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
#[cfg(feature = "forge")]
mod forge;
mod import;
mod instance;
mod io;
mod render;
mod schema;
#[cfg(feature = "serve")]
mod serve;
mod simulate;

/// The process exit code for an invalid spec or a refused action.
pub const EXIT_INVALID: u8 = 1;
/// The process exit code for usage and IO errors: nothing was changed.
pub const EXIT_USAGE: u8 = 2;
/// The process exit code for a change that was committed but whose report could not be
/// written to standard output.
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
    /// Run one replica against a PostgreSQL store: drive the instances that are due.
    #[cfg(feature = "postgres")]
    Worker(instance::WorkerArgs),
    /// Serve instances over HTTP: a JSON API, signed webhooks, a live page (feature `serve`).
    #[cfg(feature = "serve")]
    Serve(serve::Args),
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
        #[cfg(feature = "postgres")]
        Command::Worker(args) => instance::run_worker(&args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(&args),
    }
}

/// Prints clap's help, version or usage error and gives its exit code (0 for `--help` and
/// `--version`, 2 for a usage error). Help that cannot be written, other than to a closed
/// pipe, exits 2 with one line on standard error, as for any command.
pub fn parse_failed(error: &clap::Error) -> ExitCode {
    let code = u8::try_from(error.exit_code()).unwrap_or(EXIT_USAGE);
    match error.print() {
        Ok(()) => ExitCode::from(code),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(code),
        Err(e) => {
            io::errln!("error: cannot write to standard output: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Why a command stopped: the text to print on standard error, once, and the exit code.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// A usage error (exit 2); `message` is prefixed with `error: `.
    pub fn usage(message: impl std::fmt::Display) -> Self {
        Self { code: EXIT_USAGE, message: format!("error: {message}") }
    }

    /// An invalid input (exit 1); `message` is prefixed with `error: `.
    pub fn invalid(message: impl std::fmt::Display) -> Self {
        Self { code: EXIT_INVALID, message: format!("error: {message}") }
    }

    /// An invalid spec (exit 1): its diagnostics, printed as they are.
    pub fn report(report: &kars::spec::Report) -> Self {
        Self { code: EXIT_INVALID, message: report.to_string().trim_end().to_owned() }
    }

    /// Prints the failure on standard error and gives its exit code.
    pub fn print(self) -> u8 {
        io::errln!("{}", self.message);
        self.code
    }
}

impl From<io::ReadError> for Failure {
    fn from(e: io::ReadError) -> Self {
        Self { code: e.exit_code(), message: format!("error: {e}") }
    }
}

/// Reads and checks a spec (`-` for standard input) and prints its warnings on stderr;
/// returns it with the name to show in messages.
///
/// The bytes go to [`kars::spec::load_bytes`], so a file that is not UTF-8 gets the loader's
/// located diagnostic; a file past the cap gets the loader's `K0101` diagnostic with its real
/// size.
///
/// # Errors
/// A [`Failure`]: exit 2 when the file cannot be read, 1 when it is too large or invalid.
pub fn read_spec(file: &std::path::Path) -> Result<(kars::spec::CheckedSpec, String), Failure> {
    let input = match io::read_bytes(file) {
        Ok(input) => input,
        Err(io::ReadError::TooLarge { origin, size }) => return Err(Failure::report(&too_large(origin, size))),
        Err(e) => return Err(e.into()),
    };
    let spec = kars::spec::load_bytes(&input.bytes, &input.origin).map_err(|r| Failure::report(&r))?;
    if !spec.warnings().is_empty() {
        io::eprint(format_args!("{}", spec.warning_report()));
    }
    Ok((spec, input.origin))
}

/// The loader's `K0101` diagnostic for a spec past the cap, with its real size when known.
fn too_large(origin: String, size: io::Size) -> kars::spec::Report {
    use kars::spec::diagnostic::{Code, Diagnostic};
    let diagnostic = Diagnostic::error(Code::InputTooLarge, size.too_large())
        .help("a workflow spec is a few kilobytes; is this the right file?");
    kars::spec::Report::new(origin, vec![diagnostic])
}
