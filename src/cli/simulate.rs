//! `kars simulate FILE --weeks N --seed S --start YYYY-MM-DD [--model FILE] [--format text|json]`,
//! and `kars simulate FILE --expect [EXPECT]` (see [`expect`]).

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::NaiveDate;
use kars::workflow::Workflow;
use kars::workflow::sim::{self, Entry, EntryKind, Model, SimConfig, SimHistory, Summary};

mod expect;

/// Arguments of `kars simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workflow spec.
    file: PathBuf,
    /// How many weeks (cycles) to run.
    #[arg(long, default_value_t = 13, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    weeks: u32,
    /// The random seed: the same seed gives the same run, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The first day (YYYY-MM-DD, local to the spec's zone); the instance starts at its midnight.
    #[arg(long, value_parser = parse_date, required_unless_present = "expect")]
    start: Option<NaiveDate>,
    /// A model file (durations, failure chances, lateness); by default `NAME.model.yaml` beside
    /// the spec when it exists, else built-in defaults.
    #[arg(long)]
    model: Option<PathBuf>,
    /// `text`: a story per week and a summary; `json`: one JSON object per line, summary last.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// With `text`: print every step of every week, not only one line per week.
    #[arg(long)]
    timeline: bool,
    /// Print only from this week on (a release id like `2026-W07`); the run before it still
    /// happens, so the week is the one the whole run produced.
    #[arg(long, value_name = "RELEASE")]
    from_week: Option<String>,
    /// Check the expectations in EXPECT (by default `NAME.expect.yaml` beside the spec) over
    /// the seeds and weeks it names; exit 1 when any fails.
    #[arg(
        long,
        value_name = "EXPECT",
        num_args = 0..=1,
        conflicts_with_all = ["weeks", "seed", "start", "format", "timeline", "from_week"]
    )]
    expect: Option<Option<PathBuf>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

/// `NAME.model.yaml` beside `NAME.yaml`, when it exists.
fn beside(spec: &std::path::Path) -> Option<PathBuf> {
    let candidate = sibling(spec, "model")?;
    candidate.is_file().then_some(candidate)
}

/// `NAME.KIND.yaml` beside `NAME.yaml`.
fn sibling(spec: &std::path::Path, kind: &str) -> Option<PathBuf> {
    let stem = spec.file_stem()?.to_str()?;
    Some(spec.with_file_name(format!("{stem}.{kind}.yaml")))
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| format!("`{text}` is not a date; write YYYY-MM-DD"))
}

/// The model: `--model`, else `NAME.model.yaml` beside the spec, else the defaults; with the
/// path it came from.
fn load_model(spec: &kars::spec::CheckedSpec, args: &Args) -> Result<(Model, Option<PathBuf>), ExitCode> {
    let model_path = args.model.clone().or_else(|| beside(&args.file));
    let model = match &model_path {
        None => Model::defaults(spec),
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: cannot read `{}`: {e}", path.display());
                    return Err(ExitCode::from(super::EXIT_USAGE));
                }
            };
            match Model::load(spec, &text, &path.display().to_string()) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Err(ExitCode::from(super::EXIT_INVALID));
                }
            }
        }
    };
    Ok((model, model_path))
}

pub fn run(args: &Args) -> ExitCode {
    let (spec, source_name) = match super::load_spec(&args.file) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let (model, model_path) = match load_model(&spec, args) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let workflow = match Workflow::compile(&spec) {
        Ok(w) => Arc::new(w),
        Err(e) => {
            eprintln!("error: {source_name}: {e}");
            return ExitCode::from(super::EXIT_INVALID);
        }
    };
    if let Some(expect) = &args.expect {
        return expect::run(args, expect.as_deref(), &spec, &workflow, &model, model_path.as_deref());
    }
    let Some(start) = args.start else {
        eprintln!("error: give the first day with `--start YYYY-MM-DD`");
        return ExitCode::from(super::EXIT_USAGE);
    };
    let zone = workflow.zone();
    let config = SimConfig { weeks: args.weeks, seed: args.seed, start, history: SimHistory::Release };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let progress = std::io::stderr().is_terminal() && args.weeks >= 1000;
    let mut ended = 0u32;
    let mut write_error = None;
    let format = args.format;
    let timeline = args.timeline;
    let from_week = args.from_week.as_deref();
    let mut shown = from_week.is_none();
    let mut observer = |entry: &Entry<'_>| {
        shown = shown || from_week == Some(entry.release.as_str());
        if write_error.is_some() || !shown {
            return;
        }
        let result: std::io::Result<()> = match format {
            Format::Json => serde_json::to_writer(&mut out, &entry.to_json(zone))
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out)),
            Format::Text if timeline => writeln!(out, "{}", story_line(entry, zone)),
            Format::Text => Ok(()),
        };
        if let Err(e) = result {
            write_error = Some(e);
        }
        if entry.kind == EntryKind::CycleEnded {
            ended += 1;
            if progress && ended.is_multiple_of(500) {
                eprint!("\rsimulated {ended} of {} weeks", config.weeks);
            }
        }
    };
    let run = sim::simulate(workflow, &model, &config, &mut observer);
    if progress {
        eprintln!();
    }
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_INVALID);
        }
    };
    if let Some(week) = from_week
        && !run.weeks.iter().any(|w| w.release.as_str() == week)
    {
        let span = match (run.weeks.first(), run.weeks.last()) {
            (Some(a), Some(b)) => format!(" ({} to {})", a.release, b.release),
            _ => String::new(),
        };
        eprintln!("error: `--from-week {week}` is not among the simulated weeks{span}");
        eprintln!("help: write a release id like `2026-W07`, and give `--weeks` enough to reach it");
        return ExitCode::from(super::EXIT_USAGE);
    }
    let summary = Summary::of(&run.weeks);
    let result = match args.format {
        Format::Json => serde_json::to_writer(&mut out, &serde_json::json!({ "summary": summary }))
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        Format::Text => {
            let mut r = Ok(());
            if !timeline {
                let model = model_path.as_ref().map_or("defaults".to_owned(), |p| p.display().to_string());
                writeln!(
                    out,
                    "{}: {} weeks from {}, seed {}, model {model}, times in {}",
                    spec.spec().name,
                    args.weeks,
                    start,
                    args.seed,
                    zone.name()
                )
                .ok();
                let first = from_week.and_then(|w| run.weeks.iter().position(|r| r.release.as_str() == w));
                for week in &run.weeks[first.unwrap_or(0)..] {
                    r = r.and(writeln!(out, "{}", week.story(zone)));
                }
            }
            r.and(writeln!(out)).and(writeln!(out, "{summary}"))
        }
    };
    if let Err(e) = result.and(out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write the output: {e}");
        return ExitCode::from(super::EXIT_USAGE);
    }
    ExitCode::SUCCESS
}

fn story_line(entry: &Entry<'_>, zone: chrono_tz::Tz) -> String {
    let local = entry.at.with_timezone(&zone).format("%a %Y-%m-%d %H:%M %Z");
    let mut line = format!("{}  {local}  {:<15}", entry.release, format!("{:?}", entry.kind));
    if let Some(node) = entry.node {
        line.push_str(&format!(" {node}"));
    }
    if let Some(actor) = entry.actor {
        line.push_str(&format!(" by {actor}"));
        if let Some(role) = entry.role {
            line.push_str(&format!(" ({role})"));
        }
    }
    if let Some(outcome) = entry.outcome {
        line.push_str(&format!(" → {outcome}"));
    }
    if let Some(effect) = entry.effect {
        line.push_str(&format!(" {}", serde_json::to_string(&effect.kind).unwrap_or_default()));
    }
    if let Some(detail) = entry.detail {
        line.push_str(&format!(" — {detail}"));
    }
    line
}
