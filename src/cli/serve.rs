//! `kars serve SPEC... --listen ADDR (--journal DIR | --store URL [--schema NAME]) [--config FILE]`:
//! the HTTP service ([`kars::serve`]) on the system clock with a journal directory or a
//! PostgreSQL store (feature `postgres`, shared by replicas, which share the timers and
//! effects through leases as `kars worker` does); `kars serve hash-token` and
//! `kars serve new-token` make the token hashes its config holds.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use kars::serve::{App, AppParts, ConfigFile, Settings, Sharing, SpecSource};
use kars::workflow::adapter::{ConsoleNotifier, GitVcs};
use kars::workflow::driver::{Adapters, ClockMode, SystemClock};
use kars::workflow::service::SystemTimer;

use super::Failure;
use super::instance::store::{Location, SchemaArg};

/// Arguments of `kars serve`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Read a token on standard input and print its SHA-256, for the config's `tokens:`.
    HashToken,
    /// Print a new random token (give it to its person) and its SHA-256 (for the config).
    NewToken,
    /// Print the OpenAPI document of the JSON API.
    Openapi,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The specs whose instances may be started (`POST /api/instances`); instances already in
    /// the journal run with the spec stored in them.
    #[arg(value_name = "SPEC")]
    specs: Vec<PathBuf>,
    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The journal directory (created if missing).
    #[arg(long, value_name = "DIR", conflicts_with = "store")]
    journal: Option<PathBuf>,
    /// A PostgreSQL database instead of a journal directory (built with the `postgres`
    /// feature): `postgres://user@host/db` or `host=/var/run/postgresql dbname=db`. Several
    /// servers may share it (replicas behind one address).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    #[command(flatten)]
    schema: SchemaArg,
    /// Database connections of `--store` (requests beyond it wait for one).
    #[arg(long, value_name = "N", default_value_t = 16, requires = "store")]
    pool: usize,
    /// How long an effect that a writer without a lease emitted waits before a replica claims
    /// it, in seconds (default 0: the API's writes perform nothing themselves; raise it when
    /// `kars instance act --store`, which performs its effects at once, writes to the same
    /// schema).
    #[arg(long, value_name = "SECONDS", value_parser = seconds, requires = "store")]
    effect_grace: Option<Duration>,
    /// The config file: token hashes, proxy addresses, webhook senders, limits (YAML).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Open pull requests and merge in this git repository (otherwise merges wait for a
    /// result reported through the API by a role the action's `reported_by` names).
    #[arg(long, value_name = "REPO")]
    git: Option<PathBuf>,
    #[cfg(feature = "forge")]
    #[command(flatten)]
    forge: super::forge::ForgeArgs,
}

/// Runs `kars serve`.
pub fn run(args: &Args) -> ExitCode {
    let result = match &args.command {
        Some(Command::HashToken) => hash_token(),
        Some(Command::NewToken) => new_token(),
        Some(Command::Openapi) => {
            println!("{:#}", kars::serve::openapi::document());
            Ok(())
        }
        None => serve(&args.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => ExitCode::from(failure.print()),
    }
}

fn usage(message: impl std::fmt::Display) -> Failure {
    Failure::usage(message)
}

fn hash_token() -> Result<(), Failure> {
    let mut token = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut token)
        .map_err(|e| usage(format!("cannot read standard input: {e}")))?;
    if token.trim().is_empty() {
        return Err(usage("no token on standard input\nhelp: `printf %s \"$TOKEN\" | kars serve hash-token`"));
    }
    println!("{}", kars::serve::hash_token(&token));
    Ok(())
}

fn new_token() -> Result<(), Failure> {
    let token = kars::serve::new_token().map_err(usage)?;
    println!("token:  {token}");
    println!("sha256: {}", kars::serve::hash_token(&token));
    Ok(())
}

fn serve(args: &RunArgs) -> Result<(), Failure> {
    let location = match (&args.journal, &args.store) {
        (Some(_), _) if args.schema.given() => {
            return Err(usage("`--schema` names a schema of `--store URL`; a journal directory has none"));
        }
        (Some(dir), _) => Location::journal(dir),
        (None, Some(url)) => Location::store(url),
        (None, None) => {
            return Err(usage("say where the instances live: `--journal DIR` or `--store URL` (PostgreSQL)"));
        }
    };
    let settings = match &args.config {
        Some(path) => {
            let input = super::io::read_text(path)?;
            ConfigFile::from_yaml(&input.text, &input.origin).and_then(|c| c.resolve()).map_err(Failure::invalid)?
        }
        None => Settings::default(),
    };
    if settings.tokens.is_empty() && settings.proxy_peers.is_empty() {
        super::io::errln!(
            "warning: no API tokens and no proxy in the config: nobody can sign in (see `kars serve new-token`)"
        );
    }
    let mut specs = Vec::with_capacity(args.specs.len());
    for path in &args.specs {
        // Checked (with warnings printed) like every command's spec.
        let (_, origin) = super::read_spec(path)?;
        let input = super::io::read_text(path)?;
        specs.push(SpecSource { origin, text: input.text });
    }
    let grace = args.effect_grace.unwrap_or(Duration::ZERO);
    let store = location.create_pooled(&args.schema, args.pool.max(1), Some(grace))?;
    let sharing = if store.shared() { Sharing::Shared } else { Sharing::Exclusive };
    #[cfg(feature = "postgres")]
    let work = match &store {
        super::instance::store::CliStore::Postgres(pg) => {
            Some(kars::serve::SharedWork { store: pg.clone(), config: kars::workflow::worker::WorkerConfig::default() })
        }
        super::instance::store::CliStore::File(_) => None,
    };
    let settings = settings.with_sharing(sharing);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let parts = AppParts {
            store: Arc::new(store),
            clock: Arc::new(SystemClock),
            timer: Arc::new(SystemTimer),
            mode: ClockMode::System,
            specs,
            settings,
            adapters: adapters(args)?,
        };
        #[cfg(feature = "postgres")]
        let app = match work {
            Some(work) => App::start_sharing_work(parts, work).await,
            None => App::start(parts).await,
        };
        #[cfg(not(feature = "postgres"))]
        let app = App::start(parts).await;
        let app = app.map_err(Failure::invalid)?;
        if let Some(replica) = app.replica() {
            super::io::errln!("kars serve: replica `{replica}` shares the timers and effects of the store's instances");
        }
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| usage(format!("cannot listen on `{}`: {e}", args.listen)))?;
        let local = listener.local_addr().map_err(usage)?;
        super::io::errln!("kars serve: listening on http://{local} ({}); Ctrl-C stops", location.describe());
        kars::serve::serve(app, listener, shutdown_signal()).await.map_err(usage)
    })
}

/// Notifications to standard output; merges in `--git` when given, or on `--forge` (deploys
/// too with `--forge-deploy`).
fn adapters(args: &RunArgs) -> Result<kars::serve::AdapterFactory, Failure> {
    #[cfg(feature = "forge")]
    if super::forge::adapters(&args.forge)?.is_some() {
        // Checked once here (flags, token); each instance gets adapters of its own.
        let forge = args.forge.clone();
        return Ok(Arc::new(move |id, _| {
            let adapters = Adapters::new(ConsoleNotifier::new(std::io::stdout()));
            match super::forge::adapters(&forge) {
                Ok(Some(f)) => {
                    let adapters = Adapters { vcs: Some(f.vcs), ..adapters };
                    match f.operations {
                        Some(operations) => Adapters { operations, ..adapters },
                        None => adapters,
                    }
                }
                // The token file went away since the start: merges wait, and the log says why.
                Ok(None) => adapters,
                Err(failure) => {
                    super::io::errln!("kars serve: instance `{id}` has no forge: {}", failure.message);
                    adapters
                }
            }
        }));
    }
    Ok(match args.git.clone() {
        None => kars::serve::console_adapters(),
        Some(repo) => Arc::new(move |_, _| {
            Adapters::new(ConsoleNotifier::new(std::io::stdout())).with_vcs(GitVcs::new(repo.clone()))
        }),
    })
}

/// `--effect-grace 2.5`: a number of seconds, zero or more.
fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..1e9).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("`{text}` is not a number of seconds (e.g. `0` or `2.5`)")),
    }
}

/// Ctrl-C, or SIGTERM (what a service manager sends).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
