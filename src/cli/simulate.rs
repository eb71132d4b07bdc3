//! `kars simulate FILE --weeks N --seed S --start YYYY-MM-DD [--model FILE] [--format text|json]`,
//! and `kars simulate FILE --expect [EXPECT]` (see [`expect`]).

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::NaiveDate;
use kars::workflow::sim::{self, Entry, EntryKind, Model, Observer, SimConfig, SimError, SimHistory, Summary};
use kars::workflow::{Workflow, gate};

use super::io::{Output, eprint, finish, read_text};
use super::{EXIT_USAGE, Failure};

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

/// The first and last start days the engine's calendar ([`gate::EARLIEST`]..[`gate::LATEST`])
/// holds in every zone: a day after its first instant, so that a local midnight east of UTC is
/// still inside it, and the day before its last.
fn start_range() -> (NaiveDate, NaiveDate) {
    let first = gate::EARLIEST.date_naive().succ_opt().unwrap_or(NaiveDate::MIN);
    let last = gate::LATEST.date_naive().pred_opt().unwrap_or(NaiveDate::MAX);
    (first, last)
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let date =
        NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| format!("`{text}` is not a date; write YYYY-MM-DD"))?;
    let (first, last) = start_range();
    if date < first || date > last {
        return Err(format!(
            "`{text}` is outside the engine's calendar: the first day must lie from {first} to {last}\nhelp: the engine works with instants from {} to {}",
            gate::EARLIEST.format("%Y-%m-%d %H:%M UTC"),
            gate::LATEST.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    Ok(date)
}

pub fn run(args: &Args) -> ExitCode {
    let mut out = Output::stdout();
    let code = match simulate(args, &mut out) {
        Ok(code) => code,
        Err(failure) => failure.print(),
    };
    finish(code, out.finish(), EXIT_USAGE)
}

/// Reads the spec and the model, runs, and writes the report to `out`; a write error stops the
/// run early and is left in `out` for [`finish`]. Returns the exit code: 0, or 1 when an
/// expectation fails.
fn simulate(args: &Args, out: &mut Output) -> Result<u8, Failure> {
    let (spec, source_name) = super::read_spec(&args.file)?;
    let model_path = args.model.clone().or_else(|| beside(&args.file));
    let model = match &model_path {
        None => Model::defaults(&spec),
        Some(path) => {
            let input = read_text(path)?;
            Model::load(&spec, &input.text, &input.origin).map_err(Failure::invalid)?
        }
    };
    let workflow = Workflow::compile(&spec).map_err(|e| Failure::invalid(format!("{source_name}: {e}")))?;
    let workflow = Arc::new(workflow);
    if let Some(expect) = &args.expect {
        return expect::run(args, expect.as_deref(), &spec, &workflow, &model, model_path.as_deref(), out);
    }
    let Some(start) = args.start else {
        return Err(Failure {
            code: EXIT_USAGE,
            message: "error: give the first day with `--start YYYY-MM-DD`".into(),
        });
    };
    let zone = workflow.zone();
    // `--weeks` is calendar time: a cycle of a longer cadence spans several weeks.
    let every = u32::from(workflow.cadence().every.0.max(1));
    let cycles = args.weeks.div_ceil(every);
    let config = SimConfig { weeks: cycles, seed: args.seed, start, history: SimHistory::Release };
    let from_week = args.from_week.as_deref();
    let mut printer = Printer {
        out: &mut *out,
        zone,
        format: args.format,
        timeline: args.timeline,
        progress: std::io::stderr().is_terminal() && cycles >= 1000,
        weeks: cycles,
        ended: 0,
        from_week,
        shown: from_week.is_none(),
    };
    let run = sim::simulate(workflow, &model, &config, &mut printer);
    if printer.progress {
        eprint(format_args!("\n"));
    }
    let run = match run {
        // Standard output failed; `finish` reports it.
        Err(SimError::Stopped { .. }) => return Ok(0),
        run => run.map_err(Failure::invalid)?,
    };
    let first = match from_week {
        None => 0,
        Some(week) => match run.weeks.iter().position(|w| w.release.as_str() == week) {
            Some(i) => i,
            None => {
                let span = match (run.weeks.first(), run.weeks.last()) {
                    (Some(a), Some(b)) => format!(" ({} to {})", a.release, b.release),
                    _ => String::new(),
                };
                return Err(Failure {
                    code: EXIT_USAGE,
                    message: format!(
                        "error: `--from-week {week}` is not among the simulated weeks{span}\nhelp: write a release id like `2026-W07`, and give `--weeks` enough to reach it"
                    ),
                });
            }
        },
    };
    let mut summary = Summary::of(&run.weeks);
    summary.cycle_weeks = u8::try_from(every).unwrap_or(u8::MAX);
    // Write errors are kept by `out` and reported by `finish`.
    let _ = match args.format {
        Format::Json => serde_json::to_writer(&mut *out, &serde_json::json!({ "summary": summary }))
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        Format::Text => {
            if !args.timeline {
                let model = model_path.as_ref().map_or("defaults".to_owned(), |p| p.display().to_string());
                let span = if every > 1 {
                    format!("{} weeks ({cycles} cycles of {every} weeks)", args.weeks)
                } else {
                    format!("{} weeks", args.weeks)
                };
                let _ = writeln!(
                    out,
                    "{}: {span} from {}, seed {}, model {model}, times in {}",
                    spec.spec().name,
                    start,
                    args.seed,
                    zone.name()
                );
                let shown = run.weeks.get(first..).unwrap_or_default();
                let width = shown.iter().map(|w| w.outcome.chars().count()).max().unwrap_or(0).max(9);
                for week in shown {
                    let _ = writeln!(out, "{}", week.story_padded(zone, width));
                }
            }
            writeln!(out).and_then(|()| writeln!(out, "{summary}"))
        }
    };
    Ok(0)
}

/// Writes each entry as it happens (with `--format json` or `--timeline`) and counts the weeks
/// for the progress line; stops the run when standard output fails.
struct Printer<'a> {
    out: &'a mut Output,
    zone: chrono_tz::Tz,
    format: Format,
    timeline: bool,
    progress: bool,
    weeks: u32,
    ended: u32,
    /// `--from-week`: entries are printed from this week on.
    from_week: Option<&'a str>,
    shown: bool,
}

impl Observer for Printer<'_> {
    fn entry(&mut self, entry: &Entry<'_>) {
        self.shown = self.shown || self.from_week == Some(entry.release.as_str());
        // A failed write is kept by `out`, and `stop` ends the run.
        let _ = match self.format {
            _ if !self.shown => Ok(()),
            Format::Json => serde_json::to_writer(&mut *self.out, &entry.to_json(self.zone))
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(self.out)),
            Format::Text if self.timeline => writeln!(self.out, "{}", story_line(entry, self.zone)),
            Format::Text => Ok(()),
        };
        if entry.kind == EntryKind::CycleEnded {
            self.ended += 1;
            if self.progress && self.ended.is_multiple_of(500) {
                eprint(format_args!("\rsimulated {} of {} weeks", self.ended, self.weeks));
            }
        }
    }

    fn stop(&self) -> bool {
        self.out.has_failed()
    }
}

fn story_line(entry: &Entry<'_>, zone: chrono_tz::Tz) -> String {
    let local = kars::workflow::local_time(entry.at, zone);
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
        line.push_str(&format!(": {}", effect.kind));
    }
    if let Some(detail) = entry.detail {
        line.push_str(&format!(" — {detail}"));
    }
    line
}
