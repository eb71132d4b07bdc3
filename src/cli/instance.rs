//! `kars instance`: run a workflow instance from a terminal or a cron job, with its journal in
//! a directory. `start` stores the spec's text in the journal, so the other commands need no
//! spec file; the team roster (the spec's `team:`, or `--team FILE`) says who holds which role.
//!
//! Every command takes `--now RFC3339` (default: the real clock). A refused action prints the
//! reason, writes nothing and exits 1; usage and IO errors exit 2. Notifications go to standard
//! output (or `--webhook URL`), pull requests and merges to `--git REPO` when given, and every
//! other waiting action (deploys, rollbacks, checks) is reported by the operator with
//! `kars instance act --node NODE --outcome succeeded|failed`.

mod transcript;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use kars::spec::mermaid::{RenderOptions, StateView};
use kars::spec::spec::NodeKind;
use kars::spec::{CheckedSpec, NodeId};
use kars::workflow::InstanceId;
use kars::workflow::adapter::{AdapterError, ConsoleNotifier, GitVcs};
use kars::workflow::driver::{
    Adapters, Clock, Driver, DriverConfig, DriverError, JournalHeader, Operation, Operations, Parts, Program, Roster,
    SpecText, SystemClock, VirtualClock, read_journal,
};
use kars::workflow::journal::FileStore;
use kars::workflow::{ActionOutcome, Event, Waiting, WaitingFor};

use super::{EXIT_INVALID, EXIT_USAGE};

/// Arguments of `kars instance`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Start an instance of the spec in FILE; its journal goes to `--journal DIR`.
    Start(StartArgs),
    /// Where the instance stands: the node, who can act, until when.
    Status(StatusArgs),
    /// Complete a task or take a decision as `--actor`, or report an action's result.
    Act(ActArgs),
    /// Run the timers that are due (gates, deadlines, windows, the next cycle) and their effects.
    Tick(TickArgs),
    /// Everything that happened, in the workflow's local time.
    History(HistoryArgs),
}

/// Where the instance is.
#[derive(Debug, clap::Args)]
struct Target {
    /// The journal directory.
    #[arg(long, value_name = "DIR")]
    journal: PathBuf,
    /// The instance.
    #[arg(long, value_name = "ID")]
    id: String,
}

/// The time to act at.
#[derive(Debug, clap::Args)]
struct Now {
    /// The current time, RFC 3339 (`2026-11-23T09:00:00-05:00`); default: the real clock.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
}

/// Where effects go.
#[derive(Debug, clap::Args)]
struct EffectArgs {
    /// Post notifications to this Slack-compatible webhook instead of standard output.
    #[cfg(feature = "webhook")]
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Open pull requests and merge in this git repository (otherwise the operator does).
    #[arg(long, value_name = "REPO")]
    git: Option<PathBuf>,
}

/// The team roster.
#[derive(Debug, clap::Args)]
struct TeamArgs {
    /// A YAML map from each person to their roles (default: the spec's `team:`).
    #[arg(long, value_name = "FILE")]
    team: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct StartArgs {
    /// The spec file.
    file: PathBuf,
    /// The journal directory (created if missing).
    #[arg(long, value_name = "DIR")]
    journal: PathBuf,
    /// The instance id (default: the workflow's name).
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    #[command(flatten)]
    now: Now,
    #[command(flatten)]
    team: TeamArgs,
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
    team: TeamArgs,
}

#[derive(Debug, clap::Args)]
struct ActArgs {
    #[command(flatten)]
    target: Target,
    /// The task, decision or waiting action.
    #[arg(long, value_name = "NODE")]
    node: String,
    /// Who acts (a person on the team roster); optional when reporting an action's result.
    #[arg(long, value_name = "NAME")]
    actor: Option<String>,
    /// The task's outcome, the decision's branch, or an action's result (`succeeded`, `failed`).
    #[arg(long, value_name = "LABEL")]
    outcome: Option<String>,
    #[command(flatten)]
    now: Now,
    #[command(flatten)]
    team: TeamArgs,
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
    team: TeamArgs,
    #[command(flatten)]
    effects: EffectArgs,
}

#[derive(Debug, clap::Args)]
struct HistoryArgs {
    #[command(flatten)]
    target: Target,
}

/// Runs `kars instance`.
pub fn run(args: &Args) -> ExitCode {
    let result = match &args.command {
        Command::Start(a) => start(a),
        Command::Status(a) => status(a),
        Command::Act(a) => act(a),
        Command::Tick(a) => tick(a),
        Command::History(a) => history(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, message }) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}

/// A failed command: the exit code and what to print.
pub struct Failure {
    code: u8,
    message: String,
}

fn usage(message: impl std::fmt::Display) -> Failure {
    Failure { code: EXIT_USAGE, message: format!("error: {message}") }
}

fn refused(message: impl std::fmt::Display) -> Failure {
    Failure { code: EXIT_INVALID, message: format!("refused: {message}") }
}

/// Journal and driver errors: refusals and spec problems exit 1, the rest 2.
fn driver_failure(e: DriverError) -> Failure {
    match e {
        DriverError::Refused(_) => refused(e),
        DriverError::SpecChanged { .. } | DriverError::Replay { .. } => {
            Failure { code: EXIT_INVALID, message: format!("error: {e}") }
        }
        other => usage(other),
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

fn parse_now(now: &Now) -> Result<Box<dyn Clock>, Failure> {
    match &now.now {
        None => Ok(Box::new(SystemClock)),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| Box::new(VirtualClock::new(t.with_timezone(&Utc))) as Box<dyn Clock>)
            .map_err(|e| {
                usage(format!(
                    "`--now {text}` is not an RFC 3339 time ({e})\nhelp: write it like `2026-11-23T09:00:00-05:00`"
                ))
            }),
    }
}

fn instance_id(id: &str) -> Result<InstanceId, Failure> {
    InstanceId::new(id).map_err(usage)
}

fn load_spec(text: &str, origin: &str) -> Result<(CheckedSpec, Program), Failure> {
    let spec = kars::spec::load(text, origin).map_err(|r| Failure { code: EXIT_INVALID, message: r.to_string() })?;
    let program = Program::new(&spec).map_err(|e| Failure { code: EXIT_INVALID, message: format!("error: {e}") })?;
    Ok((spec, program))
}

fn roster(team: &TeamArgs, spec: &CheckedSpec) -> Result<Roster, Failure> {
    match &team.team {
        None => Ok(Roster::from_spec(spec.spec())),
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| usage(format!("cannot read `{}`: {e}", path.display())))?;
            Roster::from_yaml(&text, &path.display().to_string(), spec.spec())
                .map_err(|e| Failure { code: EXIT_INVALID, message: format!("error: {e}") })
        }
    }
}

fn adapters(effects: Option<&EffectArgs>, out: &Buffer, id: &str, program: &Program) -> Adapters {
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
    }
    adapters
}

/// An opened instance with what the commands need around it.
struct Opened {
    driver: Driver<FileStore, Box<dyn Clock>>,
    spec: CheckedSpec,
    out: Buffer,
}

fn store_at(dir: &Path, create: bool) -> Result<FileStore, Failure> {
    if !create && !dir.is_dir() {
        return Err(usage(format!("there is no journal directory `{}`", dir.display())));
    }
    FileStore::open(dir).map_err(usage)
}

/// Opens `target` with the spec stored in its journal.
fn open(target: &Target, now: &Now, effects: Option<&EffectArgs>) -> Result<Opened, Failure> {
    let store = store_at(&target.journal, false)?;
    let id = instance_id(&target.id)?;
    let journal = read_journal(&store, &id).map_err(driver_failure)?;
    let Some(stored) = &journal.header.spec else {
        return Err(usage(format!(
            "the journal of instance `{id}` holds no spec\nhelp: instances for the command line are started with `kars instance start`"
        )));
    };
    let (spec, program) = load_spec(&stored.text, &stored.origin)?;
    let out = Buffer::default();
    let parts = Parts {
        store,
        clock: parse_now(now)?,
        adapters: adapters(effects, &out, &target.id, &program),
        config: DriverConfig::default(),
    };
    let driver = Driver::open(parts, &program, &id).map_err(driver_failure)?;
    Ok(Opened { driver, spec, out })
}

fn start(args: &StartArgs) -> Result<(), Failure> {
    let (text, origin) = super::read_input(&args.file)
        .map_err(|_| Failure { code: EXIT_USAGE, message: format!("error: cannot read `{}`", args.file.display()) })?;
    let (spec, program) = load_spec(&text, &origin)?;
    let team = roster(&args.team, &spec)?;
    let id = instance_id(args.id.as_deref().unwrap_or(&spec.spec().name))?;
    let store = store_at(&args.journal, true)?;
    let out = Buffer::default();
    let parts = Parts {
        store,
        clock: parse_now(&args.now)?,
        adapters: adapters(Some(&args.effects), &out, id.as_str(), &program),
        config: DriverConfig::default(),
    };
    let stored = SpecText { origin, text };
    let driver = Driver::create(parts, &program, &id, Some(stored)).map_err(driver_failure)?;
    let mut opened = Opened { driver, spec, out };
    println!("started instance `{id}` of workflow `{}`", program.workflow().name());
    report(&mut opened, 0, &team)
}

fn status(args: &StatusArgs) -> Result<(), Failure> {
    let opened = open(&args.target, &args.now, None)?;
    let team = roster(&args.team, &opened.spec)?;
    print_status(&opened, &team);
    Ok(())
}

fn act(args: &ActArgs) -> Result<(), Failure> {
    let mut opened = open(&args.target, &args.now, Some(&args.effects))?;
    let team = roster(&args.team, &opened.spec)?;
    let node = NodeId::new(args.node.clone()).map_err(usage)?;
    let workflow = Arc::clone(opened.driver.program().workflow());
    let kind = workflow.node_index(node.as_str()).and_then(|i| workflow.node_kind(i));
    let actor = args.actor.as_deref().map(|name| team.actor(name).map_err(refused)).transpose()?;
    let event = if kind == Some(NodeKind::Action) {
        let outcome = match args.outcome.as_deref() {
            Some("succeeded") => ActionOutcome::Succeeded,
            Some("failed") => ActionOutcome::Failed,
            Some(other) => {
                return Err(refused(format!(
                    "`{other}` is not an action result\nhelp: report `--outcome succeeded` or `--outcome failed` for action `{node}`"
                )));
            }
            None => return Err(usage(format!("action `{node}` needs `--outcome succeeded` or `--outcome failed`"))),
        };
        Event::ActionResult { node, outcome }
    } else {
        let Some(actor) = actor else {
            return Err(usage(format!("`--actor NAME` is required to act on `{node}`")));
        };
        Event::Complete { node, actor, outcome: args.outcome.clone() }
    };
    let from = opened.driver.version();
    opened.driver.handle_event(event).map_err(driver_failure)?;
    report(&mut opened, from, &team)
}

fn tick(args: &TickArgs) -> Result<(), Failure> {
    let mut opened = open(&args.target, &args.now, Some(&args.effects))?;
    let team = roster(&args.team, &opened.spec)?;
    let from = opened.driver.version();
    let ran = opened.driver.tick().map_err(driver_failure)?;
    if !ran {
        println!("no timer was due");
    }
    report(&mut opened, from, &team)
}

fn history(args: &HistoryArgs) -> Result<(), Failure> {
    let store = store_at(&args.target.journal, false)?;
    let id = instance_id(&args.target.id)?;
    let journal = read_journal(&store, &id).map_err(driver_failure)?;
    let Some(stored) = &journal.header.spec else {
        return Err(usage(format!("the journal of instance `{id}` holds no spec")));
    };
    let (_, program) = load_spec(&stored.text, &stored.origin)?;
    if program.workflow().fingerprint() != journal.header.history.fingerprint {
        return Err(driver_failure(DriverError::SpecChanged {
            id,
            recorded: journal.header.history.fingerprint,
            current: program.workflow().fingerprint(),
        }));
    }
    print_transcript(&program, &journal.header, &journal.entries, 0);
    Ok(())
}

fn print_transcript(program: &Program, header: &JournalHeader, entries: &[kars::workflow::driver::Entry], from: usize) {
    let zone = program.workflow().zone();
    for lines in transcript::transcript(program, header, entries).iter().skip(from) {
        for line in lines {
            println!("{}", line.render(zone));
        }
    }
}

/// Prints what the command journaled (from version `from`), what its effects printed, and
/// where the instance stands now; reports journal failures that happened while effects ran.
fn report(opened: &mut Opened, from: u64, team: &Roster) -> Result<(), Failure> {
    let journal = read_journal(opened.driver.store(), opened.driver.id()).map_err(driver_failure)?;
    let program = opened.driver.program().clone();
    print_transcript(&program, &journal.header, &journal.entries, usize::try_from(from).unwrap_or(usize::MAX));
    print!("{}", opened.out.take());
    for entry in opened.driver.take_log() {
        use kars::workflow::driver::LogKind;
        match &entry.kind {
            LogKind::Retrying { attempt, error } => {
                eprintln!("warning: effect {} attempt {attempt} failed, retrying: {error}", entry.key);
            }
            LogKind::Failed { error } => eprintln!("warning: effect {} failed: {error}", entry.key),
            LogKind::ResultRefused { error } => eprintln!("warning: the result of {} was refused: {error}", entry.key),
            _ => {}
        }
    }
    println!();
    print_status(opened, team);
    Ok(())
}

fn print_status(opened: &Opened, team: &Roster) {
    let driver = &opened.driver;
    let instance = driver.instance();
    let workflow = instance.workflow();
    let zone = workflow.zone();
    let now = driver.clock().now();
    let local = |at: DateTime<Utc>| at.with_timezone(&zone).format("%a %Y-%m-%d %H:%M %Z").to_string();
    let waiting = instance.waiting(now);
    println!("instance `{}` of workflow `{}`, release {}", driver.id(), workflow.name(), waiting.release);
    println!("now:        {}", local(now));
    if let Some(node) = &waiting.node {
        let label = workflow.node_index(node.as_str()).and_then(|i| workflow.node_label(i)).unwrap_or_default();
        println!("at:         `{node}` {}", label.replace('\n', " "));
    }
    println!("waiting:    {}", waiting_text(&waiting));
    println!("who:        {}", who(&waiting, team, driver.id().as_str()));
    if let Some(d) = &waiting.deadline {
        let missed = if d.missed { " (missed)" } else { "" };
        println!("deadline:   {}{missed}", local(d.at));
    }
    if let Some(w) = &waiting.paused_by {
        println!("paused by:  window `{w}` (tasks and decisions wait until it closes)");
    }
    match instance.poll_timeout() {
        Some(at) if at <= now => println!("next timer: {} (due: run `kars instance tick`)", local(at)),
        Some(at) => println!("next timer: {}", local(at)),
        None => {}
    }
    let pending = driver.pending_effects().count();
    if pending > 0 {
        println!("pending:    {pending} effect(s) not yet performed (the next `act` or `tick` runs them)");
    }
    for cycle in instance.cycle_outcomes().iter().rev().take(3) {
        println!("finished:   {} {} at {}", cycle.release, cycle.outcome, local(cycle.ended_at));
    }
}

fn waiting_text(waiting: &Waiting) -> String {
    let text = waiting.to_string();
    // The release is printed on the first line already.
    text.split_once(": ").map_or(text.clone(), |(_, rest)| rest.to_owned())
}

fn who(waiting: &Waiting, team: &Roster, id: &str) -> String {
    let people = |roles: &[kars::spec::RoleId]| {
        let list: Vec<String> = team
            .people()
            .filter(|(_, held)| held.iter().any(|r| roles.contains(r)))
            .map(|(person, _)| person.to_string())
            .collect();
        if list.is_empty() { "nobody on the roster holds the role".to_owned() } else { list.join(", ") }
    };
    match &waiting.reason {
        WaitingFor::Task { node, roles, outcomes } if outcomes.is_empty() => {
            format!("{} (`kars instance act --id {id} --node {node} --actor NAME`)", people(roles))
        }
        WaitingFor::Task { node, roles, outcomes } => {
            format!(
                "{} (`kars instance act --id {id} --node {node} --actor NAME --outcome {}`)",
                people(roles),
                outcomes.join("|")
            )
        }
        WaitingFor::Decision { node, role, branches } => format!(
            "{} (`kars instance act --id {id} --node {node} --actor NAME --outcome {}`)",
            people(std::slice::from_ref(role)),
            branches.join("|")
        ),
        WaitingFor::ActionResult { node } => {
            format!("the operator (`kars instance act --id {id} --node {node} --outcome succeeded|failed`)")
        }
        WaitingFor::Gate { .. } | WaitingFor::NextCycle { .. } => {
            "nobody: time moves it on (`kars instance tick`)".to_owned()
        }
        WaitingFor::Stalled { .. } => "nobody: the instance is stalled".to_owned(),
        _ => "nobody".to_owned(),
    }
}

/// `kars render FILE --journal DIR --id ID`: the picture of where the instance stands.
fn render_state(
    spec: &CheckedSpec,
    options: &RenderOptions,
    journal: &Path,
    id: &str,
    now: &Now,
) -> Result<String, Failure> {
    let program = Program::new(spec).map_err(|e| Failure { code: EXIT_INVALID, message: format!("error: {e}") })?;
    let store = store_at(journal, false)?;
    let id = instance_id(id)?;
    let parts = Parts {
        store,
        clock: parse_now(now)?,
        adapters: Adapters::new(ConsoleNotifier::new(std::io::sink())),
        config: DriverConfig::default(),
    };
    let driver = Driver::open(parts, &program, &id).map_err(driver_failure)?;
    let instance = driver.instance();
    let waiting = instance.waiting(driver.clock().now());
    let current: Vec<NodeId> = waiting.node.iter().cloned().collect();
    let visited: Vec<NodeId> =
        instance.visited_this_cycle().into_iter().filter(|n| !current.contains(n)).cloned().collect();
    let state = StateView { current, visited, waiting: Some(short_waiting(&waiting)) };
    Ok(kars::spec::mermaid::render_state(spec.spec(), options, &state))
}

/// The waiting text on the current node of a rendering.
fn short_waiting(waiting: &Waiting) -> String {
    match &waiting.reason {
        WaitingFor::Task { roles, .. } => {
            let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            format!("waits for {}", roles.join(" or "))
        }
        WaitingFor::Decision { role, .. } => format!("{role} decides"),
        WaitingFor::Gate { opens_local, .. } => format!("gate opens {opens_local}"),
        WaitingFor::ActionResult { .. } => "waits for its result".to_owned(),
        WaitingFor::NextCycle { starts_local, .. } => format!("next cycle {starts_local}"),
        WaitingFor::Stalled { .. } => "stalled".to_owned(),
        _ => "waiting".to_owned(),
    }
}

/// The `--journal`, `--id` and `--now` options of `kars render`.
#[derive(Debug, clap::Args)]
pub struct RenderTarget {
    /// Draw where this instance stands (with `--id`).
    #[arg(long, value_name = "DIR", requires = "id")]
    pub journal: Option<PathBuf>,
    /// The instance to draw (with `--journal`).
    #[arg(long, value_name = "ID", requires = "journal")]
    pub id: Option<String>,
    #[command(flatten)]
    now: Now,
}

impl RenderTarget {
    /// Renders the instance, if one was named.
    pub fn render(&self, spec: &CheckedSpec, options: &RenderOptions) -> Option<Result<String, Failure>> {
        let (journal, id) = (self.journal.as_ref()?, self.id.as_ref()?);
        Some(render_state(spec, options, journal, id, &self.now))
    }
}

impl Failure {
    /// Prints the failure and gives its exit code.
    pub fn exit(self) -> ExitCode {
        eprintln!("{}", self.message);
        ExitCode::from(self.code)
    }
}
