//! `kars simulate FILE --expect [EXPECT]`: checks an expectations file over the runs it names,
//! prints each expectation with its measure and margin, and for each failure the first seed and
//! week that broke it with the command that replays that week.

use std::path::Path;
use std::sync::Arc;

use kars::spec::CheckedSpec;
use kars::workflow::Workflow;
use kars::workflow::sim::Model;
use kars::workflow::sim::expect::{CycleRef, ExpectReport, Expectations};

use super::Args;
use crate::cli::io::{Output, read_text};
use crate::cli::{EXIT_INVALID, EXIT_USAGE, Failure};

/// Reads and checks the expectations, runs them and writes the report to `out`; the exit
/// code is 0 when every expectation holds, 1 when one fails.
pub fn run(
    args: &Args,
    expect: Option<&Path>,
    spec: &CheckedSpec,
    workflow: &Arc<Workflow>,
    model: &Model,
    model_path: Option<&Path>,
    out: &mut Output,
) -> Result<u8, Failure> {
    let Some(path) = expect.map(Path::to_path_buf).or_else(|| super::sibling(&args.file, "expect")) else {
        return Err(Failure {
            code: EXIT_USAGE,
            message: format!(
                "error: `{}` has no file name to find its expectations beside\nhelp: name the file: `--expect FILE`",
                args.file.display()
            ),
        });
    };
    let input = read_text(&path).map_err(|e| {
        let mut failure = Failure::from(e);
        if expect.is_none() {
            failure.message.push_str(
                "\nhelp: `--expect` without a value reads `NAME.expect.yaml` beside the spec; or write `--expect FILE`",
            );
        }
        failure
    })?;
    let expectations = Expectations::load(spec, &input.text, &input.origin).map_err(Failure::invalid)?;
    let report = expectations.evaluate(workflow, model);
    let replay = Replay { spec: &args.file, model: args.model.as_deref(), start: report.start };
    out.print(&render(spec, &path, model_path, &report, &replay, workflow.zone().name()));
    Ok(if report.passed() { 0 } else { EXIT_INVALID })
}

/// What a replay command needs.
struct Replay<'a> {
    spec: &'a Path,
    /// The model, when it was named with `--model` (otherwise the replay finds the same one).
    model: Option<&'a Path>,
    start: chrono::NaiveDate,
}

impl Replay<'_> {
    /// The command that prints the timeline of exactly `cycle`: the run of its seed from the
    /// same start, stopped after its week, shown from its week on.
    fn command(&self, cycle: &CycleRef) -> String {
        let mut line = format!("kars simulate {}", quote(self.spec));
        if let Some(model) = self.model {
            line.push_str(&format!(" --model {}", quote(model)));
        }
        line.push_str(&format!(
            " --seed {} --start {} --weeks {} --timeline --from-week {}",
            cycle.seed, self.start, cycle.week, cycle.release
        ));
        line
    }
}

/// A path as a shell word: bare when it is plain, else in single quotes.
fn quote(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c));
    if plain { text } else { format!("'{}'", text.replace('\'', r"'\''")) }
}

fn render(
    spec: &CheckedSpec,
    expect: &Path,
    model: Option<&Path>,
    report: &ExpectReport,
    replay: &Replay<'_>,
    zone: &str,
) -> String {
    let mut out = String::new();
    let model = model.map_or("defaults".to_owned(), |p| p.display().to_string());
    let seeds: Vec<String> = report.seeds.iter().map(u64::to_string).collect();
    out.push_str(&format!(
        "{}: expectations {}, seeds {}, {} weeks each from {}, model {model}, times in {zone}\n",
        spec.spec().name,
        expect.display(),
        seeds.join(" "),
        report.weeks,
        report.start,
    ));
    for stopped in &report.stopped {
        out.push_str(&format!(
            "error  seed {} stopped in week {} ({}): {}\n",
            stopped.seed,
            stopped.at.week,
            stopped.at.release,
            stopped.error.to_string().replace('\n', "\n       ")
        ));
        out.push_str(&format!("       replay: {}\n", replay.command(&stopped.at)));
    }
    for result in &report.results {
        out.push_str(&format!("{}  {}: {result}\n", if result.passed { "pass" } else { "FAIL" }, result.name));
        if let Some(cycle) = &result.first_broken {
            out.push_str(&format!("      first broken: {cycle}\n"));
            out.push_str(&format!("      replay: {}\n", replay.command(cycle)));
        }
    }
    let failed = report.results.iter().filter(|r| !r.passed).count();
    out.push_str(&format!(
        "\n{} expectations over {} cycles: {} passed, {failed} failed",
        report.results.len(),
        report.cycles,
        report.results.len() - failed
    ));
    if !report.stopped.is_empty() {
        out.push_str(&format!("; {} runs stopped early", report.stopped.len()));
    }
    out.push('\n');
    out
}
