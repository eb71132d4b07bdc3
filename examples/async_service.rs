//! Async embedding: a tokio service runs the synchronous driver's steps on `spawn_blocking`
//! (the journal, git and HTTP block) and waits for timers with `tokio::time::sleep`. A virtual
//! clock runs the KARS week an hour per real millisecond.

use std::error::Error;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kars::workflow::InstanceId;
use kars::workflow::adapter::RecordingNotifier;
use kars::workflow::driver::{
    Adapters, Clock, Driver, DriverConfig, DriverError, OperationsFn, Parts, Program, Roster, VirtualClock,
};
use kars::workflow::journal::MemoryStore;
use kars::workflow::{ActionOutcome, Event};

#[path = "shared/kars_week.rs"]
mod kars_week;

type Service = Driver<MemoryStore, Arc<VirtualClock>>;
type Shared = Arc<Mutex<Service>>;

/// How many virtual milliseconds pass per real millisecond.
const SPEED: i64 = 3_600_000;

/// Runs one blocking driver step on tokio's blocking pool.
async fn step<T: Send + 'static>(driver: &Shared, f: impl FnOnce(&mut Service) -> T + Send + 'static) -> T {
    let driver = Arc::clone(driver);
    let run = move || f(&mut driver.lock().unwrap_or_else(PoisonError::into_inner));
    match tokio::task::spawn_blocking(run).await {
        Ok(value) => value,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Sleeps (scaled) until `at` on the virtual clock, then moves the clock there. A service on
/// the real clock sleeps `at - now` instead.
async fn sleep_until(clock: &VirtualClock, at: DateTime<Utc>) {
    let wait = (at - clock.now()).num_milliseconds().max(0) / SPEED;
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
    clock.set(at);
}

/// Handles the timers due before `until`, each at its own instant.
async fn run_timers(driver: &Shared, clock: &VirtualClock, until: DateTime<Utc>) -> Result<(), DriverError> {
    while let Some(wake) = step(driver, |d| d.next_wake()).await.filter(|w| *w <= until) {
        sleep_until(clock, wake).await;
        step(driver, |d| {
            d.tick()?;
            d.run_effects()
        })
        .await?;
    }
    sleep_until(clock, until).await;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml"))?;
    let spec = kars::spec::load(&yaml, "kars-release.yaml")?;
    let (program, team) = (Program::new(&spec)?, Roster::from_spec(spec.spec()));
    let clock = Arc::new(VirtualClock::new("2026-11-23T13:00:00Z".parse()?));
    let notifier = Arc::new(RecordingNotifier::new());
    let ops = OperationsFn(|_: &_| Ok(Some(ActionOutcome::Succeeded)));
    let adapters = Adapters::new(Arc::clone(&notifier)).with_operations(ops);
    let parts =
        Parts { store: MemoryStore::new(), clock: Arc::clone(&clock), adapters, config: DriverConfig::default() };
    let id = InstanceId::new("kars-release")?;
    let driver: Shared = Arc::new(Mutex::new(Driver::create(parts, &program, &id, None)?));
    for (at, node, who, outcome) in kars_week::CLEAN_WEEK {
        run_timers(&driver, &clock, at.parse()?).await?;
        let event = Event::Complete { node: node.parse()?, actor: team.actor(who)?, outcome: outcome.map(Into::into) };
        step(&driver, move |d| {
            d.handle_event(event)?;
            d.run_effects()
        })
        .await?;
        println!("{at}  {who} completed {node}");
    }
    run_timers(&driver, &clock, "2026-11-30T17:00:00Z".parse()?).await?;
    for n in notifier.delivered() {
        println!("posted to {}: {}", n.to, n.message);
    }
    let outcomes = step(&driver, |d| d.instance().cycle_outcomes()).await;
    for cycle in outcomes {
        println!("{} ended {}", cycle.release, cycle.outcome);
    }
    Ok(())
}
