//! `kars check FILE...`: load and validate specs, print diagnostics rustc-style on stderr.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `kars check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Spec files to check; `-` reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Reads at most one byte more than the loader accepts, so a huge file or an endless stream
/// is refused without being read whole.
fn read_capped(reader: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let cap = u64::try_from(kars::spec::MAX_INPUT_BYTES).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(cap).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Checks every file; exit 0 when all are valid, 1 when any is invalid, 2 when a file cannot
/// be read (the other files are still checked).
pub fn run(args: &Args) -> ExitCode {
    let mut invalid = false;
    let mut unreadable = false;
    for file in &args.files {
        let (origin, bytes) = if file.as_os_str() == "-" {
            ("<stdin>".to_owned(), read_capped(std::io::stdin().lock()))
        } else {
            (file.display().to_string(), std::fs::File::open(file).and_then(read_capped))
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("error: cannot read `{origin}`: {e}");
                unreadable = true;
                continue;
            }
        };
        match kars::spec::load_bytes(&bytes, &origin) {
            Ok(spec) => {
                if !spec.warnings().is_empty() {
                    eprint!("{}", spec.warning_report());
                }
                println!("{origin}: ok");
            }
            Err(report) => {
                eprint!("{report}");
                invalid = true;
            }
        }
    }
    if unreadable {
        ExitCode::from(super::EXIT_USAGE)
    } else if invalid {
        ExitCode::from(super::EXIT_INVALID)
    } else {
        ExitCode::SUCCESS
    }
}
