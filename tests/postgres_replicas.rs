//! Three replicas (library `Worker`s on their own connections, in threads) drive many
//! instances through a week of due timers on a virtual clock; each history is contiguous and
//! byte for byte the history a single process writes on a `MemoryStore` from the same inputs,
//! and every effect key reaches the recording adapter.
//!
//! N is the 10,000 instances of five timers and five notifications each (50,000
//! drives, 50,000 effects; `KARS_REPLICAS_INSTANCES=N` for another N). On the shared two-core
//! machine the suite runs on, at load average 8 to 12 (other builds running), a debug run takes
//! 100 to 105 s: 10 to 11 s to create the instances (three writers), 14 to 21 s per virtual
//! day, 5 to 7 s to compare the histories; the single-process run (17 to 19 s) goes on beside
//! the replicas.
//! The time grows with N (1,000 took 11 s, 3,000 took 25 to 30 s). It used to grow faster than
//! N (500 took 8.5 s, 1,500 took 58 s, 10,000 did about 15 effects a second): every claim read
//! and sorted every instance and probed each one's outbox, which the indexes of schema
//! version 2 replaced. Commits do not wait for their flush to disk (`without_flush_wait`).
#![cfg(feature = "postgres")]
// It reports how long each phase took: on the wall clock.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
    let n: usize = std::env::var("KARS_REPLICAS_INSTANCES").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    (0..n).map(|i| InstanceId::new(format!("week-{i:05}")).unwrap()).collect()
}

/// `url` with `synchronous_commit=off` for its sessions: a commit returns before its WAL is
/// flushed to disk. What this test checks (ordering, fencing, delivery) does not depend on
/// the flush, which happens anyway, later; a server crash is not part of it (a restart is,
/// in `tests/postgres_restart.rs`, with flushed commits). A flush per commit costs 3.7 ms on
/// the shared two-core machine the suite runs on, and a week of 10,000 instances commits
/// about 160,000 times.
fn without_flush_wait(url: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options=-c%20synchronous_commit%3Doff")
    } else {
        format!("{url} options='-c synchronous_commit=off'")
    }
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
    let url = without_flush_wait(&db.url);
    let store = PgStore::connect(&url, &db.config()).unwrap();
    let clock = Arc::new(VirtualClock::new(at("2026-11-23T08:00:00Z")));
    // The single-process run needs nothing of the replicas': it runs beside them.
    let single = {
        let (program, ids) = (program.clone(), ids.clone());
        std::thread::spawn(move || {
            let begun = Instant::now();
            let run = reference(&program, &ids);
            eprintln!("the single-process run: {:.1?}", begun.elapsed());
            run
        })
    };
    let begun = Instant::now();
    // Three writers, each creating a third of the instances.
    std::thread::scope(|scope| {
        for part in ids.chunks(ids.len().div_ceil(3).max(1)) {
            let (store, program, clock) = (&store, &program, &clock);
            scope.spawn(move || create_all(store, program, clock, part));
        }
    });
    eprintln!("created {} instances in {:.1?}", ids.len(), begun.elapsed());

    let notifier = Arc::new(RecordingNotifier::new());
    let stop = Arc::new(AtomicBool::new(false));
    let replicas: Vec<_> = (0..3)
        .map(|_| {
            let store = PgStore::connect(&url, &db.config().with_pool_size(2)).unwrap();
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
    // no effect pending, no lease held (three counts from indexes, not a scan of every
    // instance with a probe of its outbox, which would compete with the replicas).
    let s = &db.schema;
    for step in steps() {
        let begun = Instant::now();
        clock.set(step);
        let due = format!(
            "SELECT (SELECT count(*) FROM \"{s}\".instances WHERE owner IS NOT NULL) \
             + (SELECT count(*) FROM \"{s}\".instances WHERE next_wake <= '{}') \
             + (SELECT count(*) FROM \"{s}\".outbox WHERE done_version IS NULL)",
            step.to_rfc3339()
        );
        while db.column_i64(&due) != [0] {
            assert!(begun.elapsed() < Duration::from_secs(300), "step {step}: still due: {:?}", db.column_i64(&due));
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("step {step}: {:.1?}", begun.elapsed());
    }
    stop.store(true, Ordering::SeqCst);
    let drove: Vec<usize> = replicas.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(drove.iter().filter(|n| **n > 0).count() >= 2, "the work was shared: {drove:?}");

    let (memory, reference_keys) = single.join().unwrap();
    let begun = Instant::now();
    // Every instance's sequence numbers, in one query.
    let query =
        format!("SELECT instance, array_agg(sequence ORDER BY sequence) FROM \"{s}\".records GROUP BY instance");
    let rows = db.runtime.block_on(db.admin.query(&query, &[])).unwrap();
    let mut sequences: BTreeMap<String, Vec<i64>> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for id in &ids {
        // Contiguous: the store hands out exactly `version` records, sequences 0..version.
        let sequences = sequences.remove(id.as_str()).unwrap_or_default();
        let expected: Vec<i64> = (0..sequences.len() as i64).collect();
        assert_eq!(sequences, expected, "{id}: contiguous sequence numbers");
        let (pg, mem) = (store.read(id).unwrap(), memory.read(id).unwrap());
        assert_eq!(pg.records.len(), sequences.len(), "{id}: the read returns every record");
        assert_eq!(pg.header, mem.header, "{id}: header");
        assert_eq!(pg.records, mem.records, "{id}: the history the single process writes");
    }
    assert!(sequences.is_empty(), "records of no instance of the run: {:?}", sequences.keys());
    eprintln!("compared {} histories in {:.1?}", ids.len(), begun.elapsed());
    let keys: Vec<String> = notifier.delivered().into_iter().map(|n| n.key).collect();
    let unique: BTreeSet<&String> = keys.iter().collect();
    let reference_keys: BTreeSet<&String> = reference_keys.iter().collect();
    assert_eq!(reference_keys.len(), 5 * ids.len(), "five notifications per instance");
    assert_eq!(unique, reference_keys, "every effect key reached the adapter, none lost");
    assert_eq!(keys.len(), unique.len(), "without a failure, each key once");
    eprintln!("{} instances, {} effects, drives per replica {drove:?}", ids.len(), keys.len());
}
