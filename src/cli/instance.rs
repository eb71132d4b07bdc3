//! `kars instance`: run a workflow instance from a terminal or a cron job, with its journal in
//! a directory (`--journal DIR`) or in PostgreSQL (`--store URL`, feature `postgres`). `start` stores the spec's text and the roster in the journal, so the other
//! commands need no spec file.
//!
//! Trust: on a real instance (the default) the clock is the system's and the person acting is
//! the one whose operating-system login runs the command (their roster entry lists it under
//! `logins:`); `--now` is refused and `--actor` may only name oneself. A rehearsal
//! (`start --clock virtual`) takes `--now` and `--actor` as the caller's word, for tests, demos
//! and walkthroughs, and says so in `status` and `history`. Time never goes backwards in an
//! instance. A refused action prints the reason, writes nothing and exits 1; usage and IO
//! errors exit 2; a change that was committed but whose report could not be written (a closed
//! or full standard output) exits 3.

#[cfg(feature = "forge")]
use super::forge;
mod identity;
mod list;
mod status;
pub(super) mod store;
mod transcript;
mod upgrade;
#[cfg(feature = "postgres")]
mod worker;

#[cfg(feature = "postgres")]
pub use worker::{WorkerArgs, run as run_worker};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use kars::spec::mermaid::RenderOptions;
use kars::spec::{CheckedSpec, NodeId};
use kars::workflow::InstanceId;
use kars::workflow::adapter::{AdapterError, ConsoleNotifier, GitVcs};
use kars::workflow::driver::{
    Adapters, Clock, ClockMode, Driver, DriverConfig, DriverError, Entry, Journaled, Operation, Operations, Parts,
    Program, Report, Roster, SpecText, Start, SystemClock, VirtualClock, read_journal, replay_journal,
};
use kars::workflow::{ActionOutcome, Actor};
use store::{Access, CliStore, Location, SchemaArg};

use super::io::Output;
use super::{EXIT_INVALID, EXIT_UNREPORTED, EXIT_USAGE, Failure};

/// Arguments of `kars instance`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Start an instance of the spec in FILE; its journal goes to `--journal DIR` (or `--store URL`).
    Start(StartArgs),
    /// Every instance of a journal directory or store, with where each stands.
    List(ListArgs),
    /// Where the instance stands: the node, who can act, until when.
    Status(StatusArgs),
    /// Complete a task, take a decision, or report an action's result, as yourself.
    Act(ActArgs),
    /// Run the timers that are due (gates, deadlines, windows, the next cycle) and their effects.
    Tick(TickArgs),
    /// Everything that happened, in the workflow's local time, as recorded.
    History(HistoryArgs),
    /// Replace the instance's roster (a journaled change, by a role the spec's
    /// `team_managed_by` names).
    Team(TeamChangeArgs),
    /// Make a damaged journal readable again: back it up, then cut it at the first bad record.
    Repair(RepairArgs),
    /// Move the instance to a new version of its spec: cosmetic changes at once, behavioural
    /// ones from the next cycle (`--dry-run` shows the plan).
    Upgrade(upgrade::UpgradeArgs),
}

/// Where the instance is.
#[derive(Debug, clap::Args)]
struct Target {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    schema: SchemaArg,
    /// The instance.
    #[arg(long, value_name = "ID")]
    id: String,
}

/// The time to act at, for rehearsals.
#[derive(Debug, clap::Args)]
struct Now {
    /// Rehearsals only: the time, RFC 3339 (`2026-11-23T09:00:00-05:00`); never earlier than
    /// the last recorded instant. Real instances run on the system clock.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
}

/// Who acts.
#[derive(Debug, clap::Args)]
struct ActorArg {
    /// Rehearsals: the person on the roster who acts. Real instances: you, as your login says
    /// (naming anyone else is refused).
    #[arg(long, value_name = "NAME")]
    actor: Option<String>,
}

/// Where effects go.
#[derive(Debug, Clone, clap::Args)]
struct EffectArgs {
    /// Post notifications to this Slack-compatible webhook instead of standard output.
    #[cfg(feature = "webhook")]
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Open pull requests and merge in this git repository (otherwise the operator does).
    #[arg(long, value_name = "REPO")]
    git: Option<PathBuf>,
    #[cfg(feature = "forge")]
    #[command(flatten)]
    forge: forge::ForgeArgs,
}

/// `--team` where the roster cannot be given: accepted only to say how to change it.
#[derive(Debug, clap::Args)]
struct NoTeam {
    #[arg(long, value_name = "FILE", hide = true)]
    team: Option<PathBuf>,
}

/// Whose word the clock is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ClockArg {
    /// A real instance: the system clock, identities from logins.
    System,
    /// A rehearsal: `--now` and `--actor` are the caller's word.
    Virtual,
}

#[derive(Debug, clap::Args)]
struct StartArgs {
    /// The spec file.
    file: PathBuf,
    /// Where to keep it: `--journal DIR` (created if missing) or `--store URL`.
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    schema: SchemaArg,
    /// The instance id (default: the workflow's name).
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// A real instance (`system`, the default) or a rehearsal (`virtual`).
    #[arg(long, value_enum, default_value = "system")]
    clock: ClockArg,
    #[command(flatten)]
    now: Now,
    /// The roster: a YAML map from each person to their roles and logins (default: the
    /// spec's `team:`). Fixed with the instance; changed later with `kars instance team`.
    #[arg(long, value_name = "FILE")]
    team: Option<PathBuf>,
    #[command(flatten)]
    effects: EffectArgs,
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    now: Now,
    #[command(flatten)]
    team: NoTeam,
}

#[derive(Debug, clap::Args)]
struct ActArgs {
    #[command(flatten)]
    target: Target,
    /// The task, decision or waiting action.
    #[arg(long, value_name = "NODE")]
    node: String,
    #[command(flatten)]
    actor: ActorArg,
    /// The task's outcome, the decision's branch, or an action's result (`succeeded`, `failed`).
    #[arg(long, value_name = "LABEL")]
    outcome: Option<String>,
    #[command(flatten)]
    now: Now,
    #[command(flatten)]
    team: NoTeam,
    #[command(flatten)]
    effects: EffectArgs,
}

#[derive(Debug, clap::Args)]
struct TickArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    now: Now,
    #[command(flatten)]
    team: NoTeam,
    #[command(flatten)]
    effects: EffectArgs,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    location: Location,
    #[command(flatten)]
    schema: SchemaArg,
}

#[derive(Debug, clap::Args)]
struct HistoryArgs {
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
struct RepairArgs {
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
struct TeamChangeArgs {
    #[command(flatten)]
    target: Target,
    /// The new roster: a YAML map from each person to their roles and logins.
    #[arg(long, value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    actor: ActorArg,
    #[command(flatten)]
    now: Now,
}

/// Runs `kars instance`.
pub fn run(args: &Args) -> ExitCode {
    let result = match &args.command {
        Command::Start(a) => start(a),
        Command::List(a) => list::run(&a.location, &a.schema),
        Command::Status(a) => status(a),
        Command::Act(a) => act(a),
        Command::Tick(a) => tick(a),
        Command::History(a) => history(a),
        Command::Team(a) => team(a),
        Command::Repair(a) => repair(a),
        Command::Upgrade(a) => upgrade::upgrade(a),
    };
    match result {
        Ok(done) => done.emit(),
        Err(failure) => ExitCode::from(failure.print()),
    }
}

fn usage(message: impl std::fmt::Display) -> Failure {
    Failure::usage(message)
}

fn invalid(message: impl std::fmt::Display) -> Failure {
    Failure { code: EXIT_INVALID, message: format!("error: {message}") }
}

fn refused(message: impl std::fmt::Display) -> Failure {
    Failure { code: EXIT_INVALID, message: format!("refused: {message}") }
}

/// Journal and driver errors: refusals and spec problems exit 1, the rest 2.
fn driver_failure(e: DriverError) -> Failure {
    match e {
        DriverError::Refused(_) | DriverError::ClockBehind { .. } | DriverError::RosterLocked { .. } => refused(e),
        DriverError::SpecChanged { .. } | DriverError::Replay { .. } => invalid(e),
        other => usage(other),
    }
}

/// What a successful command prints: its standard output, its warnings, and whether it
/// changed the journal.
struct Done {
    out: String,
    warnings: Vec<String>,
    committed: bool,
}

impl Done {
    /// Writes the output once; a closed or full standard output is not a panic, and the exit
    /// code says whether the change was committed (see [`super::io::finish`]).
    fn emit(self) -> ExitCode {
        for warning in &self.warnings {
            super::io::errln!("{warning}");
        }
        let mut out = Output::stdout();
        out.print(&self.out);
        let unwritten = if self.committed { EXIT_UNREPORTED } else { EXIT_USAGE };
        super::io::finish(0, out.finish(), unwritten)
    }
}

/// A shared output buffer: effects write here while the driver runs, the command prints it after.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner)))
            .into_owned()
    }
}

/// Waiting actions handed to the operator: says what to do and how to report it.
struct Operator {
    out: Buffer,
    id: String,
    program: Program,
}

impl Operations for Operator {
    fn run(&self, op: &Operation) -> Result<Option<ActionOutcome>, AdapterError> {
        let what = transcript::describe_effect(&op.kind, &self.program);
        let mut out = self.out.clone();
        writeln!(
            out,
            "[operator] {what} for `{}`; report the result with `kars instance act --id {} --node {} --outcome succeeded` (or `failed`)",
            op.node, self.id, op.node
        )
        .map_err(|e| AdapterError::transient("operator", "run", Some(&op.key), e.to_string()))?;
        Ok(None)
    }
}

/// The time a command gives: `--now` for rehearsals, the system clock otherwise.
fn parse_now(now: &Now) -> Result<Option<DateTime<Utc>>, Failure> {
    let Some(text) = &now.now else { return Ok(None) };
    let at = DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|e| {
        usage(format!("`--now {text}` is not an RFC 3339 time ({e})\nhelp: write it like `2026-11-23T09:00:00-05:00`"))
    })?;
    if !kars::workflow::gate::in_range(at) {
        return Err(usage(format!(
            "`--now {text}` is outside the engine's calendar ({} to {})",
            kars::workflow::gate::EARLIEST.format("%Y-%m-%d"),
            kars::workflow::gate::LATEST.format("%Y-%m-%d")
        )));
    }
    Ok(Some(at))
}

/// The clock of an instance in `mode`. A rehearsal without `--now` stands still at `stands`
/// (its last recorded instant; at the start, the system's time): its clock is the caller's
/// word, never the system's.
fn clock_for(
    mode: ClockMode,
    now: Option<DateTime<Utc>>,
    stands: DateTime<Utc>,
    id: &str,
) -> Result<Box<dyn Clock>, Failure> {
    match (mode, now) {
        (ClockMode::System, None) => Ok(Box::new(SystemClock)),
        (ClockMode::System, Some(_)) => Err(refused(format!(
            "instance `{id}` is a real instance: it runs on the system clock, and `--now` is refused\nhelp: `--now` is for rehearsals, started with `kars instance start --clock virtual`"
        ))),
        (ClockMode::Rehearsal, Some(at)) => Ok(Box::new(VirtualClock::new(at))),
        (ClockMode::Rehearsal, None) => Ok(Box::new(VirtualClock::new(stands))),
    }
}

/// The latest instant a journal records (its start when it records no input).
fn last_instant(journal: &Journaled) -> DateTime<Utc> {
    journal
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Input(record) => Some(record.at),
            _ => None,
        })
        .max()
        .unwrap_or(journal.header.history.started_at)
}

fn instance_id(id: &str) -> Result<InstanceId, Failure> {
    InstanceId::new(id).map_err(usage)
}

fn load_spec(text: &str, origin: &str) -> Result<(CheckedSpec, Program), Failure> {
    let spec = kars::spec::load(text, origin).map_err(|r| Failure { code: EXIT_INVALID, message: r.to_string() })?;
    let program = Program::new(&spec).map_err(invalid)?;
    Ok((spec, program))
}

fn read_roster(path: &Path, spec: &CheckedSpec) -> Result<Roster, Failure> {
    let (text, origin) = read_text(path)?;
    Roster::from_yaml(&text, &origin, spec.spec()).map_err(invalid)
}

/// Reads a spec or team file (`-` for standard input), capped like every input.
fn read_text(path: &Path) -> Result<(String, String), Failure> {
    let input = super::io::read_text(path)?;
    Ok((input.text, input.origin))
}

fn adapters(effects: Option<&EffectArgs>, out: &Buffer, id: &str, program: &Program) -> Result<Adapters, Failure> {
    let operator = Operator { out: out.clone(), id: id.to_owned(), program: program.clone() };
    let mut adapters = Adapters::new(ConsoleNotifier::new(out.clone())).with_operations(operator);
    if let Some(effects) = effects {
        #[cfg(feature = "webhook")]
        if let Some(url) = &effects.webhook {
            adapters.notifier = Box::new(kars::workflow::adapter::WebhookNotifier::new(url.clone()));
        }
        if let Some(repo) = &effects.git {
            adapters = adapters.with_vcs(GitVcs::new(repo.clone()));
        }
        #[cfg(feature = "forge")]
        if let Some(forge) = forge::adapters(&effects.forge)? {
            adapters.vcs = Some(forge.vcs);
            if let Some(operations) = forge.operations {
                adapters.operations = operations;
            }
        }
    }
    Ok(adapters)
}

/// Refuses `--team` outside `start`.
fn no_team(team: &NoTeam) -> Result<(), Failure> {
    match &team.team {
        None => Ok(()),
        Some(_) => Err(refused(
            "the roster belongs to the instance: it is fixed at `kars instance start` and `--team` is refused here\nhelp: change it with `kars instance team --journal DIR --id ID --file TEAM.yaml`, as a holder of a role the spec's `team_managed_by` names",
        )),
    }
}

/// An opened instance with what the commands need around it.
struct Session {
    driver: Driver<CliStore, Box<dyn Clock>>,
    spec: CheckedSpec,
    out: Buffer,
    mode: ClockMode,
}

/// Opens `target` with the spec stored in its journal: one read, one replay.
fn open(target: &Target, now: &Now, effects: Option<&EffectArgs>, access: Access) -> Result<Session, Failure> {
    let store = target.location.open(&target.schema, access)?;
    let id = instance_id(&target.id)?;
    let now = parse_now(now)?;
    let journal = read_journal(&store, &id).map_err(driver_failure)?;
    let (spec, program) = stored_spec(&journal)?;
    let mode = journal.header.clock;
    let out = Buffer::default();
    let parts = Parts {
        store,
        clock: clock_for(mode, now, last_instant(&journal), id.as_str())?,
        adapters: adapters(effects, &out, id.as_str(), &program)?,
        config: DriverConfig::for_clock(mode),
    };
    let driver = Driver::open_read(parts, &program, journal).map_err(driver_failure)?;
    Ok(Session { driver, spec, out, mode })
}

/// The newest spec the journal stores (the one in force, or scheduled for the next cycle).
fn stored_spec(journal: &Journaled) -> Result<(CheckedSpec, Program), Failure> {
    let Some(stored) = journal.newest_spec_text() else {
        return Err(usage(format!(
            "the journal of instance `{}` holds no spec\nhelp: instances for the command line are started with `kars instance start`",
            journal.id
        )));
    };
    load_spec(&stored.text, &stored.origin)
}

/// The person acting: from the login on a real instance, `--actor` in a rehearsal.
fn who_acts(session: &Session, named: Option<&str>) -> Result<Actor, Failure> {
    let roster = session.driver.roster();
    match session.mode {
        ClockMode::System => {
            let login = identity::os_login().map_err(usage)?;
            let actor = roster.actor_for_login(&login).map_err(refused)?;
            match named {
                Some(name) if name != &**actor.name() => Err(refused(format!(
                    "you are `{}` (login `{login}`), and `--actor {name}` names someone else\nhelp: on a real instance people act as themselves; leave `--actor` out",
                    actor.name()
                ))),
                _ => Ok(actor),
            }
        }
        ClockMode::Rehearsal => match named {
            Some(name) => roster.actor(name).map_err(refused),
            None => identity::os_login()
                .ok()
                .and_then(|login| roster.actor_for_login(&login).ok())
                .ok_or_else(|| usage("`--actor NAME` says who acts in a rehearsal")),
        },
    }
}

fn start(args: &StartArgs) -> Result<Done, Failure> {
    // Everything is checked before anything is created.
    let (text, origin) = read_text(&args.file)?;
    let (spec, program) = load_spec(&text, &origin)?;
    let now = parse_now(&args.now)?;
    let mode = match args.clock {
        ClockArg::System => ClockMode::System,
        ClockArg::Virtual => ClockMode::Rehearsal,
    };
    let id = instance_id(args.id.as_deref().unwrap_or(&spec.spec().name))?;
    let clock = clock_for(mode, now, SystemClock.now(), id.as_str())?;
    let roster = match &args.team {
        Some(path) => Some(read_roster(path, &spec)?),
        None => None,
    };
    let store = args.location.create(&args.schema)?;
    let out = Buffer::default();
    let parts = Parts {
        store,
        clock,
        adapters: adapters(Some(&args.effects), &out, id.as_str(), &program)?,
        config: DriverConfig::for_clock(mode),
    };
    let start = Start { spec: Some(SpecText { origin, text }), clock: mode, roster };
    let (mut driver, mut report) = Driver::create_with(parts, &program, &id, start).map_err(driver_failure)?;
    report.absorb(driver.run_effects().map_err(driver_failure)?);
    let mut session = Session { driver, spec, out, mode };
    let mut text = format!("started instance `{id}` of workflow `{}` ({mode})\n", program.workflow().name());
    let warnings = render_report(&mut session, &report, &mut text);
    Ok(Done { out: text, warnings, committed: true })
}

fn status(args: &StatusArgs) -> Result<Done, Failure> {
    no_team(&args.team)?;
    let session = open(&args.target, &args.now, None, Access::Read)?;
    let out = status::render(&session.driver, session.mode);
    Ok(Done { out, warnings: Vec::new(), committed: false })
}

fn act(args: &ActArgs) -> Result<Done, Failure> {
    no_team(&args.team)?;
    let mut session = open(&args.target, &args.now, Some(&args.effects), Access::Write)?;
    let actor = who_acts(&session, args.actor.actor.as_deref())?;
    let node = NodeId::new(args.node.clone()).map_err(usage)?;
    let mut report = session.driver.act(actor, node, args.outcome.as_deref()).map_err(driver_failure)?;
    report.absorb(session.driver.run_effects().map_err(driver_failure)?);
    let mut text = String::new();
    let warnings = render_report(&mut session, &report, &mut text);
    Ok(Done { out: text, warnings, committed: report.committed() })
}

fn tick(args: &TickArgs) -> Result<Done, Failure> {
    no_team(&args.team)?;
    let mut session = open(&args.target, &args.now, Some(&args.effects), Access::Write)?;
    let mut report = session.driver.tick().map_err(driver_failure)?;
    report.absorb(session.driver.run_effects().map_err(driver_failure)?);
    let mut text = String::new();
    if !report.ran_timers() {
        text.push_str("no timer was due\n");
    }
    let warnings = render_report(&mut session, &report, &mut text);
    Ok(Done { out: text, warnings, committed: report.committed() })
}

fn team(args: &TeamChangeArgs) -> Result<Done, Failure> {
    let mut session = open(&args.target, &args.now, None, Access::Write)?;
    let roster = read_roster(&args.file, &session.spec)?;
    let actor = who_acts(&session, args.actor.actor.as_deref())?;
    let report = session.driver.change_roster(&actor, roster).map_err(driver_failure)?;
    let mut text = String::new();
    let warnings = render_report(&mut session, &report, &mut text);
    Ok(Done { out: text, warnings, committed: report.committed() })
}

/// `kars instance repair`: the only way past a damaged journal. The file is copied first.
fn repair(args: &RepairArgs) -> Result<Done, Failure> {
    let Some(dir) = args.target.location.directory() else {
        return Err(usage(
            "`kars instance repair` mends journal files; a `--store` database keeps its own integrity\nhelp: use `--journal DIR`",
        ));
    };
    let store = kars::workflow::journal::FileStore::open(dir).map_err(usage)?;
    let id = instance_id(&args.target.id)?;
    let report = store.repair(&id).map_err(usage)?;
    let committed = report.bytes_removed > 0;
    Ok(Done { out: format!("{report}\n"), warnings: Vec::new(), committed })
}

fn history(args: &HistoryArgs) -> Result<Done, Failure> {
    let store = args.target.location.open(&args.target.schema, Access::Read)?;
    let id = instance_id(&args.target.id)?;
    let journal = read_journal(&store, &id).map_err(driver_failure)?;
    let (_, program) = stored_spec(&journal)?;
    let account = replay_journal(&program, &journal).map_err(driver_failure)?;
    let mut text = format!(
        "instance `{id}` of workflow `{}`, {} instance\n",
        program.workflow().name(),
        match journal.header.clock {
            ClockMode::System => "a real",
            ClockMode::Rehearsal => "a rehearsal",
        }
    );
    let first = account.versions.first().cloned().unwrap_or_else(|| std::sync::Arc::clone(program.workflow()));
    let mut transcript = transcript::Transcript::new(&program, first, journal.header.history.started_at);
    transcript.versions(&account.versions);
    let mut acked = std::collections::BTreeSet::new();
    for (entry, caused) in journal.entries.iter().zip(&account.caused) {
        transcript.know(&caused.effects);
        let notices: Vec<_> = caused.notices.iter().collect();
        transcript.entry(entry, &notices);
        if let Entry::Done(done) = entry {
            acked.insert(done.key.clone());
        }
    }
    let last = journal.entries.iter().rev().find_map(|e| match e {
        Entry::Input(r) => Some(r.at),
        _ => None,
    });
    for caused in &account.caused {
        for effect in caused.effects.iter().filter(|e| !acked.contains(&e.key)) {
            transcript.pending(last.unwrap_or(journal.header.history.started_at), effect);
        }
    }
    text.push_str(&transcript.finish());
    Ok(Done { out: text, warnings: Vec::new(), committed: false })
}

/// Renders what a driver call did, what its effects printed, and where the instance stands;
/// returns the warnings for standard error.
fn render_report(session: &mut Session, report: &Report, text: &mut String) -> Vec<String> {
    let program = session.driver.program().clone();
    let started = session.driver.header().history.started_at;
    // The spec in force before the call: the one an upgrade in it moved from.
    let before = report
        .notices
        .iter()
        .find_map(|(_, n)| match n.kind {
            kars::workflow::NoticeKind::Upgraded { from, .. } => session.driver.versions().get(from).cloned(),
            _ => None,
        })
        .unwrap_or_else(|| std::sync::Arc::clone(session.driver.instance().workflow()));
    let mut transcript = transcript::Transcript::new(&program, before, started);
    transcript.versions(session.driver.versions());
    transcript.know(report.effects.iter().map(|run| &run.effect));
    for appended in &report.appended {
        let notices: Vec<_> = match &appended.entry {
            Entry::Input(record) => report.notices_of(record.seq).collect(),
            _ => Vec::new(),
        };
        transcript.entry(&appended.entry, &notices);
    }
    text.push_str(&transcript.finish());
    text.push_str(&session.out.take());
    let mut warnings = session.driver.store().tail_cuts();
    for entry in &report.log {
        use kars::workflow::driver::LogKind;
        match &entry.kind {
            LogKind::Retrying { attempt, error } => {
                warnings.push(format!("warning: effect {} attempt {attempt} failed, retrying: {error}", entry.key));
            }
            LogKind::Failed { error } => warnings.push(format!("warning: effect {} failed: {error}", entry.key)),
            LogKind::ResultRefused { error } => {
                warnings.push(format!("warning: the result of {} was refused: {error}", entry.key));
            }
            _ => {}
        }
    }
    text.push('\n');
    text.push_str(&status::render(&session.driver, session.mode));
    warnings
}

/// `kars render FILE --journal DIR --id ID`: the picture of where the instance stands.
fn render_state(
    spec: &CheckedSpec,
    options: &RenderOptions,
    (location, schema): (&Location, &SchemaArg),
    id: &str,
    now: &Now,
) -> Result<String, Failure> {
    let store = location.open(schema, Access::Read)?;
    let id = instance_id(id)?;
    let journal = read_journal(&store, &id).map_err(driver_failure)?;
    // The journal's own spec versions when it stores them; FILE otherwise. FILE must be one of
    // them: another spec is refused as `open` refuses it (the upgrade command moves it on).
    let texts: Vec<(kars::spec::Fingerprint, SpecText)> =
        journal.spec_texts().into_iter().map(|(f, s)| (f, s.clone())).collect();
    let (latest, program) = match journal.newest_spec_text() {
        Some(_) => stored_spec(&journal)?,
        None => (spec.clone(), Program::new(spec).map_err(invalid)?),
    };
    if spec.fingerprint() != latest.fingerprint() && texts.iter().all(|(f, _)| *f != spec.fingerprint()) {
        let recorded = latest.fingerprint();
        return Err(driver_failure(DriverError::SpecChanged { id, recorded, current: spec.fingerprint() }));
    }
    let mode = journal.header.clock;
    let parts = Parts {
        store,
        clock: clock_for(mode, parse_now(now)?, last_instant(&journal), id.as_str())?,
        adapters: Adapters::new(ConsoleNotifier::new(std::io::sink())),
        config: DriverConfig::for_clock(mode),
    };
    let driver = Driver::open_read(parts, &program, journal).map_err(driver_failure)?;
    let instance = driver.instance();
    let state = instance.state_view(driver.clock().now());
    // Draw the spec in force (an upgrade may be scheduled for the next cycle).
    let in_force = instance.workflow().fingerprint();
    let drawn = match texts.iter().rev().find(|(f, _)| *f == in_force) {
        Some((_, text)) if in_force != latest.fingerprint() => load_spec(&text.text, &text.origin)?.0,
        _ => latest,
    };
    Ok(kars::spec::mermaid::render_state(drawn.spec(), options, &state))
}

/// The `--journal` (or `--store`), `--id` and `--now` options of `kars render`.
#[derive(Debug, clap::Args)]
pub struct RenderTarget {
    /// Draw where this instance stands (with `--id`).
    #[arg(long, value_name = "DIR", requires = "id", conflicts_with = "store")]
    pub journal: Option<PathBuf>,
    /// Draw an instance kept in this PostgreSQL database (with `--id`).
    #[arg(long, value_name = "URL", requires = "id")]
    pub store: Option<String>,
    #[command(flatten)]
    schema: SchemaArg,
    /// The instance to draw (with `--journal` or `--store`).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    #[command(flatten)]
    now: Now,
}

impl RenderTarget {
    /// Renders the instance, if one was named.
    pub fn render(&self, spec: &CheckedSpec, options: &RenderOptions) -> Option<Result<String, Failure>> {
        let location = match (&self.journal, &self.store) {
            (Some(dir), _) => Location::journal(dir),
            (None, Some(url)) => Location::store(url),
            (None, None) => {
                return self
                    .id
                    .as_ref()
                    .map(|_| Err(usage("`--id` names an instance of `--journal DIR` or `--store URL`")));
            }
        };
        let id = self.id.as_ref()?;
        Some(render_state(spec, options, (&location, &self.schema), id, &self.now))
    }
}
