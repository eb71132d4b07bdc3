//! `kars instance list`: every instance of a journal directory or store, one line each, with
//! where it stands.

use kars::workflow::adapter::ConsoleNotifier;
use kars::workflow::driver::{Adapters, ClockMode, Driver, DriverConfig, Parts, read_journal};
use kars::workflow::journal::Store;

use super::store::{Access, Location, SchemaArg};
use super::{Done, Failure, clock_for, driver_failure, last_instant, stored_spec, usage};

/// One instance's line.
struct Line {
    id: String,
    workflow: String,
    clock: &'static str,
    release: String,
    version: String,
    at: String,
    stands: String,
}

/// Lists the instances at `location`; an instance that cannot be read is listed with why, and
/// named again on stderr.
pub fn run(location: &Location, schema: &SchemaArg) -> Result<Done, Failure> {
    let store = std::sync::Arc::new(location.open(schema, Access::Read)?);
    let ids = store.list().map_err(usage)?;
    let mut lines = Vec::with_capacity(ids.len());
    let mut warnings = Vec::new();
    for id in ids {
        match line(&store, &id) {
            Ok(line) => lines.push(line),
            Err(failure) => {
                let why = failure.message.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned();
                warnings.push(format!("warning: instance `{id}` cannot be read: {why}"));
                lines.push(Line {
                    id: id.to_string(),
                    workflow: "?".into(),
                    clock: "?",
                    release: "?".into(),
                    version: "?".into(),
                    at: "?".into(),
                    stands: format!("unreadable: {why}"),
                });
            }
        }
    }
    if lines.is_empty() {
        return Ok(Done { out: "no instances\n".to_owned(), warnings, committed: false });
    }
    Ok(Done { out: table(&lines), warnings, committed: false })
}

fn line<S: Store>(store: &std::sync::Arc<S>, id: &kars::workflow::InstanceId) -> Result<Line, Failure> {
    let journal = read_journal(&**store, id).map_err(driver_failure)?;
    let (_, program) = stored_spec(&journal)?;
    let mode = journal.header.clock;
    let parts = Parts {
        store: std::sync::Arc::clone(store),
        clock: clock_for(mode, None, last_instant(&journal), id.as_str())?,
        adapters: Adapters::new(ConsoleNotifier::new(std::io::sink())),
        config: DriverConfig::for_clock(mode),
    };
    let driver = Driver::open_read(parts, &program, journal).map_err(driver_failure)?;
    let instance = driver.instance();
    let waiting = instance.waiting(driver.clock().now().max(instance.latest_instant()));
    Ok(Line {
        id: id.to_string(),
        workflow: program.workflow().name().to_owned(),
        clock: match mode {
            ClockMode::System => "real",
            ClockMode::Rehearsal => "rehearsal",
        },
        release: waiting.release.to_string(),
        version: driver.version().to_string(),
        // While parallel branches run, every branch's node.
        at: match waiting.node.as_ref() {
            None => "-".to_owned(),
            Some(n) => std::iter::once(n)
                .chain(waiting.branches.iter().map(|b| &b.node))
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(","),
        },
        stands: waiting.short(),
    })
}

fn table(lines: &[Line]) -> String {
    let header = ["ID", "WORKFLOW", "CLOCK", "RELEASE", "VERSION", "AT", "STANDS"];
    let rows: Vec<[&str; 7]> =
        lines.iter().map(|l| [l.id.as_str(), &l.workflow, l.clock, &l.release, &l.version, &l.at, &l.stands]).collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut text = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}
