//! `kars worker`: one replica against a PostgreSQL store (feature `postgres`), driving the
//! real instances that are due (timers, pending effects) with the same adapters as
//! `kars instance`, until interrupted (or once, with `--once`).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use kars::workflow::driver::{DriverError, SystemClock};
use kars::workflow::journal::{PgStore, PgStoreConfig};
use kars::workflow::worker::{Host, Worker, WorkerConfig};

use super::{Buffer, EffectArgs, Failure, adapters, config_for, stored_spec, usage};

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
    let store = PgStore::connect(&args.store, &config).map_err(usage)?;
    let out = Buffer::default();
    let host: Arc<Host> = {
        let (out, effects) = (out.clone(), args.effects.clone());
        Arc::new(move |journal| {
            let (_, program) = stored_spec(journal).map_err(|f| DriverError::BadHeader {
                id: journal.id.clone(),
                detail: f.message.trim_start_matches("error: ").to_owned(),
            })?;
            let adapters =
                adapters(Some(&effects), &out, journal.id.as_str(), &program).map_err(|f| DriverError::BadHeader {
                    id: journal.id.clone(),
                    detail: f.message.trim_start_matches("error: ").to_owned(),
                })?;
            Ok((program, adapters, config_for(journal.header.clock)))
        })
    };
    let worker = Worker::new(store, WorkerConfig::default(), SystemClock, host);
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
    // Stopped by a signal: the leases of the instance in hand expire after `lease`, and
    // another replica takes them over.
    let stop = AtomicBool::new(false);
    worker.run(&stop).map_err(usage)
}
