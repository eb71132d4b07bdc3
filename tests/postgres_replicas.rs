//! Three replicas (library `Worker`s on their own connections, in threads) drive many
//! instances through a week of due timers on a virtual clock; each history is contiguous and
//! byte for byte the history a single process writes on a `MemoryStore` from the same inputs,
//! and every effect key reaches the recording adapter.
//!
//! N is 600 instances of five timers and five notifications each (3,000 drives, 3,000
//! effects): what three replicas finish in about fifteen seconds on the shared two-core
//! machine the suite runs on (500 took 8.5 s, 1,500 took 58 s: the cost grows faster than N
//! there). The 10,000 is out of reach of a test on that machine (a debug run at load
//! average 12 to 17 did 19,900 of its 50,000 effects in 26 minutes, and 600 took 106 s at
//! that load); set `KARS_REPLICAS_INSTANCES` to run it bigger.
#![cfg(feature = "postgres")]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kars::workflow::InstanceId;
use kars::workflow::adapter::RecordingNotifier;
use kars::workflow::driver::{Adapters, Driver, DriverConfig, Parts, Program, VirtualClock};
use kars::workflow::journal::{MemoryStore, PgStore, Store};
use kars::workflow::worker::{Host, Worker, WorkerConfig};

#[path = "support/postgres.rs"]
#[allow(dead_code)]
mod support;
use support::TestDb;

/// Five days of a timer and a notification each.
const SPEC: &str = include_str!("fixtures/postgres/week.yaml");

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The week's instants: the start, then each gate (the instants the timers are due at).
fn steps() -> Vec<DateTime<Utc>> {
    [
        "2026-11-23T10:00:00Z",
        "2026-11-24T10:00:00Z",
        "2026-11-25T10:00:00Z",
        "2026-11-26T10:00:00Z",
        "2026-11-27T10:00:00Z",
    ]
    .iter()
    .map(|s| at(s))
    .collect()
}

fn ids() -> Vec<InstanceId> {
    let n: usize = std::env::var("KARS_REPLICAS_INSTANCES").ok().and_then(|n| n.parse().ok()).unwrap_or(600);
    (0..n).map(|i| InstanceId::new(format!("week-{i:05}")).unwrap()).collect()
}

/// Creates every instance at Monday 08:00 on `store` (no effect: the first gate is ahead).
fn create_all<S: Store + Clone>(store: &S, program: &Program, clock: &Arc<VirtualClock>, ids: &[InstanceId]) {
    for id in ids {
        let parts = Parts {
            store: store.clone(),
            clock: Arc::clone(clock),
            adapters: Adapters::new(RecordingNotifier::new()),
            config: DriverConfig::default(),
        };
        Driver::create(parts, program, id, None).unwrap();
    }
}

/// The single-process run: one driver per instance on a `MemoryStore`, ticked and its effects
/// performed at each step.
fn reference(program: &Program, ids: &[InstanceId]) -> (Arc<MemoryStore>, Vec<String>) {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(VirtualClock::new(at("2026-11-23T08:00:00Z")));
    create_all(&store, program, &clock, ids);
    let notifier = Arc::new(RecordingNotifier::new());
    for step in steps() {
        clock.set(step);
        for id in ids {
            let parts = Parts {
                store: Arc::clone(&store),
                clock: Arc::clone(&clock),
                adapters: Adapters::new(Arc::clone(&notifier)),
                config: DriverConfig::default(),
            };
            let mut driver = Driver::open(parts, program, id).unwrap();
            driver.tick().unwrap();
            driver.run_effects().unwrap();
        }
    }
    (store, notifier.delivered().into_iter().map(|n| n.key).collect())
}

#[test]
fn three_replicas_drive_a_week_of_timers_to_the_single_process_histories_losing_no_effect() {
    let Some(db) = TestDb::new("replicas") else { return };
    let program = Program::new(&kars::spec::load(SPEC, "week.yaml").unwrap()).unwrap();
    let ids = ids();
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let clock = Arc::new(VirtualClock::new(at("2026-11-23T08:00:00Z")));
    create_all(&store, &program, &clock, &ids);

    let notifier = Arc::new(RecordingNotifier::new());
    let stop = Arc::new(AtomicBool::new(false));
    let replicas: Vec<_> = (0..3)
        .map(|_| {
            let store = PgStore::connect(&db.url, &db.config().with_pool_size(2)).unwrap();
            let (notifier, program) = (Arc::clone(&notifier), program.clone());
            let host: Arc<Host> = Arc::new(move |_journal| {
                Ok((program.clone(), Adapters::new(Arc::clone(&notifier)), DriverConfig::default()))
            });
            let config = WorkerConfig { lease: Duration::from_secs(30), batch: 8, poll: Duration::from_millis(10) };
            let worker = Worker::new(store, config, Arc::clone(&clock), host);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut drove = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let worked = worker.run_once().unwrap();
                    for w in &worked {
                        w.outcome.as_ref().unwrap_or_else(|e| panic!("{}: {e}", w.instance));
                    }
                    drove += worked.len();
                    if worked.is_empty() {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                drove
            })
        })
        .collect();

    // The clock moves to the next step once nothing is due on it: no timer at or before it,
    // no effect pending, no lease held.
    let s = &db.schema;
    for step in steps() {
        clock.set(step);
        let due = format!(
            "SELECT count(*) FROM \"{s}\".instances i WHERE i.owner IS NOT NULL OR i.next_wake <= '{}' \
             OR EXISTS (SELECT 1 FROM \"{s}\".outbox o WHERE o.instance = i.instance AND o.done_version IS NULL)",
            step.to_rfc3339()
        );
        let mut waited = Duration::ZERO;
        while db.column_i64(&due) != [0] {
            assert!(waited < Duration::from_secs(120), "step {step}: still due: {:?}", db.column_i64(&due));
            std::thread::sleep(Duration::from_millis(20));
            waited += Duration::from_millis(20);
        }
    }
    stop.store(true, Ordering::SeqCst);
    let drove: Vec<usize> = replicas.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(drove.iter().filter(|n| **n > 0).count() >= 2, "the work was shared: {drove:?}");

    let (memory, reference_keys) = reference(&program, &ids);
    for id in &ids {
        // Contiguous: the store hands out exactly `version` records, sequences 0..version.
        let sequences = db.column_i64(&format!(
            "SELECT sequence FROM \"{s}\".records WHERE instance = '{}' ORDER BY sequence",
            id.as_str()
        ));
        let expected: Vec<i64> = (0..sequences.len() as i64).collect();
        assert_eq!(sequences, expected, "{id}: contiguous sequence numbers");
        let (pg, mem) = (store.read(id).unwrap(), memory.read(id).unwrap());
        assert_eq!(pg.records.len(), sequences.len(), "{id}: the read returns every record");
        assert_eq!(pg.header, mem.header, "{id}: header");
        assert_eq!(pg.records, mem.records, "{id}: the history the single process writes");
    }
    let keys: Vec<String> = notifier.delivered().into_iter().map(|n| n.key).collect();
    let unique: BTreeSet<&String> = keys.iter().collect();
    let reference_keys: BTreeSet<&String> = reference_keys.iter().collect();
    assert_eq!(reference_keys.len(), 5 * ids.len(), "five notifications per instance");
    assert_eq!(unique, reference_keys, "every effect key reached the adapter, none lost");
    assert_eq!(keys.len(), unique.len(), "without a failure, each key once");
    eprintln!("{} instances, {} effects, drives per replica {drove:?}", ids.len(), keys.len());
}
