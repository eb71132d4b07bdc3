//! `kars worker`: one replica against a PostgreSQL store (feature `postgres`), driving the
//! real instances that are due (timers, pending effects) with the same adapters as
//! `kars instance`, until interrupted (or once, with `--once`).
//!
//! SIGTERM or Ctrl-C stops it gracefully: the instance in hand is finished and released, the
//! rest of its batch given up, so other replicas take them at once instead of after the lease.
//! A second signal exits at once (the leases then expire as after a crash).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kars::workflow::driver::{DriverConfig, DriverError, SpecCache, SystemClock};
use kars::workflow::journal::{PgStore, PgStoreConfig};
use kars::workflow::worker::{Host, Worker, WorkerConfig};

use super::{Buffer, EffectArgs, Failure, adapters, stored_spec, usage};

/// Arguments of `kars worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The PostgreSQL database the instances are in (as `kars instance --store`).
    #[arg(long, value_name = "URL")]
    store: String,
    /// The PostgreSQL schema (default `kars`).
    #[arg(long, value_name = "NAME")]
    schema: Option<String>,
    /// Claim and drive what is due once, then exit (for cron and tests).
    #[arg(long)]
    once: bool,
    /// How long a claim holds without a heartbeat, in seconds (default 30); a replica that
    /// stops is replaced after at most this.
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    lease: Option<Duration>,
    /// How many due instances one claim takes at most (default 16).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    batch: Option<u32>,
    /// How often an idle replica polls for due instances, in seconds (default 1).
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    poll: Option<Duration>,
    /// How long an effect that a writer without a lease emitted (`kars instance act`, which
    /// performs its effects itself) is left to it before this replica performs it, in seconds
    /// (default 5).
    #[arg(long, value_name = "SECONDS", value_parser = seconds_or_none)]
    effect_grace: Option<Duration>,
    #[command(flatten)]
    effects: EffectArgs,
}

/// Runs `kars worker`.
pub fn run(args: &WorkerArgs) -> ExitCode {
    match work(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => ExitCode::from(failure.print()),
    }
}

fn work(args: &WorkerArgs) -> Result<(), Failure> {
    let mut config = PgStoreConfig::default();
    if let Some(schema) = &args.schema {
        config = config.with_schema(schema);
    }
    if let Some(grace) = args.effect_grace {
        config = config.with_effect_grace(grace);
    }
    let store = PgStore::connect(&args.store, &config).map_err(usage)?;
    let out = Buffer::default();
    let host: Arc<Host> = {
        let (out, effects) = (out.clone(), args.effects.clone());
        // Each spec text is loaded and compiled once, not once per drive.
        let programs = SpecCache::default();
        Arc::new(move |journal| {
            let program = match journal.newest_spec_text() {
                Some(stored) => {
                    programs.get_or_make(&stored.origin, &stored.text, || stored_spec(journal).map(|(_, p)| p))
                }
                None => stored_spec(journal).map(|(_, p)| p),
            }
            .map_err(|f| DriverError::BadHeader {
                id: journal.id.clone(),
                detail: f.message.trim_start_matches("error: ").to_owned(),
            })?;
            let adapters =
                adapters(Some(&effects), &out, journal.id.as_str(), &program).map_err(|f| DriverError::BadHeader {
                    id: journal.id.clone(),
                    detail: f.message.trim_start_matches("error: ").to_owned(),
                })?;
            Ok((program, adapters, DriverConfig::for_clock(journal.header.clock)))
        })
    };
    let mut worker_config = WorkerConfig::default();
    worker_config.lease = args.lease.unwrap_or(worker_config.lease);
    worker_config.poll = args.poll.unwrap_or(worker_config.poll);
    worker_config.batch = args.batch.unwrap_or(worker_config.batch);
    // Installed before the replica is announced: a signal after that line stops gracefully.
    static STOP: AtomicBool = AtomicBool::new(false);
    if !args.once {
        on_signals(&STOP)?;
    }
    let worker = Worker::new(store, worker_config, SystemClock, host);
    super::super::io::errln!("kars worker: replica `{}`", worker.replica());
    if args.once {
        for worked in worker.run_once().map_err(usage)? {
            match &worked.outcome {
                Ok(_) => println!("drove `{}` (lease epoch {})", worked.instance, worked.epoch),
                Err(e) => super::super::io::errln!("warning: instance `{}`: {e}", worked.instance),
            }
        }
        print!("{}", out.take());
        return Ok(());
    }
    worker.run(&STOP).map_err(usage)?;
    super::super::io::errln!("kars worker: replica `{}` stopped, its leases released", worker.replica());
    Ok(())
}

/// `--lease 2.5`: a positive number of seconds.
fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("`{text}` is not a positive number of seconds (e.g. `30` or `2.5`)")),
    }
}

/// As `seconds`, and `0` (none).
fn seconds_or_none(text: &str) -> Result<Duration, String> {
    if text.parse::<f64>().is_ok_and(|s| s == 0.0) { Ok(Duration::ZERO) } else { seconds(text) }
}

/// Sets `stop` on the first SIGTERM or Ctrl-C (SIGINT); exits on the second.
fn on_signals(stop: &'static AtomicBool) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(format!("cannot start the signal handler: {e}")))?;
    #[cfg(unix)]
    let mut signals = {
        use tokio::signal::unix::{SignalKind, signal};
        let _guard = runtime.enter();
        let listen = |kind| signal(kind).map_err(|e| usage(format!("cannot listen for signals: {e}")));
        (listen(SignalKind::terminate())?, listen(SignalKind::interrupt())?)
    };
    std::thread::spawn(move || {
        runtime.block_on(async move {
            for round in 0..2 {
                #[cfg(unix)]
                tokio::select! {
                    _ = signals.0.recv() => {}
                    _ = signals.1.recv() => {}
                }
                #[cfg(not(unix))]
                let _ = tokio::signal::ctrl_c().await;
                if round == 0 {
                    super::super::io::errln!(
                        "kars worker: stopping (finishing the instance in hand; a second signal exits at once)"
                    );
                    stop.store(true, Ordering::SeqCst);
                }
            }
            std::process::exit(130);
        });
    });
    Ok(())
}
