//! `kars render FILE`: a spec as a mermaid flowchart on standard output.

use std::path::PathBuf;
use std::process::ExitCode;

use kars::spec::mermaid::{Lanes, RenderOptions, Shapes};

use super::io::{Output, finish};

/// Arguments of `kars render`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The spec file; `-` reads standard input.
    file: PathBuf,
    /// Add roles, gates, deadlines, retry bounds, actions and join rules to the labels.
    #[arg(long)]
    annotate: bool,
    /// Group nodes by phase (the spec's subgraphs) or by role.
    #[arg(long, value_enum, default_value_t = LanesArg::Phases)]
    lanes: LanesArg,
    /// Node shapes: `plain` (decisions `{}`, the rest `[]`, like the source flowchart) or
    /// `by-kind` (also start/end stadiums, wait hexagons, fork and join trapezoids).
    #[arg(long, value_enum, default_value_t = ShapesArg::Plain)]
    shapes: ShapesArg,
    /// Draw a running instance over the spec: where it stands, what it visited, what it waits for.
    #[command(flatten)]
    instance: super::instance::RenderTarget,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LanesArg {
    Phases,
    Roles,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ShapesArg {
    Plain,
    ByKind,
}

pub fn run(args: &Args) -> ExitCode {
    let (spec, _) = match super::read_spec(&args.file) {
        Ok(loaded) => loaded,
        Err(failure) => return ExitCode::from(failure.print()),
    };
    let options = RenderOptions {
        annotate: args.annotate,
        lanes: match args.lanes {
            LanesArg::Phases => Lanes::Phases,
            LanesArg::Roles => Lanes::Roles,
        },
        shapes: match args.shapes {
            ShapesArg::Plain => Shapes::Plain,
            ShapesArg::ByKind => Shapes::ByKind,
        },
    };
    let text = match args.instance.render(&spec, &options) {
        None => kars::spec::mermaid::render(spec.spec(), &options),
        Some(Ok(text)) => text,
        Some(Err(failure)) => return ExitCode::from(failure.print()),
    };
    let mut out = Output::stdout();
    out.print(&text);
    finish(0, out.finish(), super::EXIT_USAGE)
}
