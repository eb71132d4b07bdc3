//! Replicas sharing a PostgreSQL store: instances driven per second and timer lateness (p50,
//! p99) with 1, 2 and 4 `Worker`s, each on its own pool, in threads of one process.
//!
//! Run with `cargo bench -p kars-workflow --features postgres --bench postgres_replicas`
//! against `KARS_TEST_DATABASE_URL` (default: the local socket, database `test`); each run works
//! in a schema of its own (`kars_bench_replicas_<pid>_<n>`) and drops it. Without a server it
//! prints why and measures nothing.
//!
//! Not criterion: lateness is a distribution over the timers of one run (its 99th percentile
//! is the figure), and a run's drain rate is one measurement of many instances at once;
//! criterion times a closure called again and again and reports neither.
//!
//! - **Driven per second**: `INSTANCES` instances whose timer is due when the replicas start;
//!   the time until every one has fired its timer and performed its notification.
//! - **Lateness**: `INSTANCES` instances whose timers come due spread over `SPREAD` on a clock
//!   that runs `SPEED` times faster than the wall's (one program per due minute); lateness is
//!   the wall time from a timer's due instant to its notification. Replicas find due timers by
//!   polling (`POLL`), so lateness is at most about one poll plus the drive.
#![allow(clippy::disallowed_methods)] // It measures the wall clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use kars_workflow::InstanceId;
use kars_workflow::adapter::{AdapterError, Notification, Notifier};
use kars_workflow::driver::{Adapters, Clock, Driver, DriverConfig, Parts, Program};
use kars_workflow::journal::{PgStore, PgStoreConfig};
use kars_workflow::worker::{Host, Worker, WorkerConfig};

#[path = "support/postgres.rs"]
mod support;
use support::{Schema, url};

const INSTANCES: usize = 400;
/// Virtual seconds per wall second of the lateness run's clock.
const SPEED: f64 = 600.0;
/// How many due minutes (programs) the lateness run spreads its timers over: 40 virtual
/// minutes, four wall seconds at `SPEED`.
const SPREAD: u32 = 40;
const POLL: Duration = Duration::from_millis(200);

/// A spec whose one timer is due on Monday at 10:00 plus `minute` minutes, then a notification.
fn program(minute: u32) -> Program {
    let yaml = format!(
        r##"version: 1
name: bench
timezone: UTC
channels:
  ops: {{ name: "#ops" }}
nodes:
  Start: {{ label: Start, kind: start }}
  W: {{ label: W, kind: wait, gate: Monday 10:{minute:02} }}
  N: {{ label: N, kind: action, action: {{ notify: {{ to: [{{ channel: ops }}], message: "due {{release}}" }} }} }}
  Done: {{ label: Done, kind: end, outcome: done }}
edges:
  - {{ from: Start, to: W }}
  - {{ from: W, to: N }}
  - {{ from: N, to: Done }}
"##
    );
    Program::new(&kars_spec::load(&yaml, "bench.yaml").expect("a valid bench spec")).expect("a valid program")
}

/// A clock that starts at `base` and runs `speed` times faster than the wall's.
#[derive(Debug, Clone)]
struct Scaled {
    base: DateTime<Utc>,
    start: Instant,
    speed: f64,
}

impl Scaled {
    /// The wall instant at which this clock shows `at`.
    fn wall(&self, at: DateTime<Utc>) -> Instant {
        let ahead = (at - self.base).to_std().unwrap_or_default();
        self.start + ahead.div_f64(self.speed)
    }
}

impl Clock for Scaled {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.start.elapsed().mul_f64(self.speed);
        self.base + TimeDelta::from_std(elapsed).expect("a short run")
    }

    fn sleep_until(&self, at: DateTime<Utc>) {
        std::thread::sleep(self.wall(at).saturating_duration_since(Instant::now()));
    }
}

/// Records when each notification was performed, by key.
#[derive(Debug, Default)]
struct Timed(Mutex<HashMap<String, Instant>>);

impl Notifier for Timed {
    fn notify(&self, n: &Notification) -> Result<(), AdapterError> {
        self.0.lock().expect("not poisoned").entry(n.key.clone()).or_insert_with(Instant::now);
        Ok(())
    }
}

fn monday(minute: u32) -> DateTime<Utc> {
    let at = format!("2026-11-23T10:{minute:02}:00Z");
    at.parse().expect("an instant")
}

/// One run: `replicas` workers drive `INSTANCES` instances whose programs `minute_of` picks,
/// on a clock from Monday 10:00 at `speed`; returns the wall time from the start to the last
/// notification, and each notification's lateness.
fn run(replicas: usize, name: &str, speed: f64, minute_of: impl Fn(usize) -> u32) -> Option<(Duration, Vec<Duration>)> {
    let schema = Schema { name: format!("kars_bench_replicas_{}_{name}_{replicas}", std::process::id()) };
    let config = PgStoreConfig::default().with_schema(&schema.name);
    let store = match PgStore::connect(&url(), &config) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("skipping the replica benches: {e}");
            return None;
        }
    };
    let minutes: std::collections::BTreeSet<u32> = (0..INSTANCES).map(&minute_of).collect();
    let programs: HashMap<u32, Program> = minutes.into_iter().map(|m| (m, program(m))).collect();
    let created = Scaled { base: monday(0) - TimeDelta::hours(1), start: Instant::now(), speed: 1.0 };
    let mut due = HashMap::new();
    for i in 0..INSTANCES {
        let id = InstanceId::new(format!("b-{i:05}")).expect("an id");
        let minute = minute_of(i);
        let parts = Parts {
            store: store.clone(),
            clock: created.clone(),
            adapters: Adapters::new(Timed::default()),
            config: DriverConfig::default(),
        };
        Driver::create(parts, &programs[&minute], &id, None).expect("create");
        due.insert(id, minute);
    }
    let due = Arc::new(due);
    let programs = Arc::new(programs);
    let timed = Arc::new(Timed::default());
    let clock = Scaled { base: monday(0), start: Instant::now(), speed };
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..replicas)
        .map(|_| {
            let store = PgStore::connect(&url(), &config.clone().with_pool_size(2)).expect("connect");
            let (timed, programs, due) = (Arc::clone(&timed), Arc::clone(&programs), Arc::clone(&due));
            let host: Arc<Host> = Arc::new(move |journal| {
                let program = programs[&due[&journal.id]].clone();
                Ok((program, Adapters::new(Arc::clone(&timed)), DriverConfig::default()))
            });
            let config = WorkerConfig { poll: POLL, ..WorkerConfig::default() };
            let worker = Worker::new(store, config, clock.clone(), host);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || worker.run(&stop))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    while timed.0.lock().expect("not poisoned").len() < INSTANCES && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().expect("a worker thread").expect("a worker run");
    }
    let performed = timed.0.lock().expect("not poisoned").clone();
    assert_eq!(performed.len(), INSTANCES, "every timer fired within the run's five minutes");
    // Keys name their instance: `{instance}/{release}/{node}/{n}`.
    let mut lateness = Vec::with_capacity(INSTANCES);
    let mut last = clock.start;
    for (key, at) in performed {
        let id = key.split('/').next().and_then(|id| InstanceId::new(id).ok()).expect("a key that names its instance");
        let due_at = clock.wall(monday(due[&id]));
        lateness.push(at.saturating_duration_since(due_at));
        last = last.max(at);
    }
    lateness.sort();
    Some((last - clock.start, lateness))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks nothing here.
    println!("replicas  driven/s (burst of {INSTANCES})  lateness p50  p99 (timers over {SPREAD} minutes at {SPEED}x)");
    for replicas in [1, 2, 4] {
        let Some((drain, _)) = run(replicas, "burst", 1.0, |_| 0) else { return };
        let Some((_, lateness)) = run(replicas, "spread", SPEED, |i| 1 + (i as u32 % SPREAD)) else { return };
        println!(
            "{replicas:>8}  {:>25.0}  {:>10.0?}  {:>4.0?}",
            INSTANCES as f64 / drain.as_secs_f64(),
            percentile(&lateness, 0.50),
            percentile(&lateness, 0.99),
        );
    }
}
