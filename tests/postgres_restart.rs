//! A PostgreSQL restart in the middle of a run: three replicas (`Worker::run`, listener and
//! heartbeat included) drive instances through a week of timers on a virtual clock; the server
//! is restarted while they work; they reconnect (each replica's listener too) and finish with
//! nothing lost: every history is contiguous and complete, every effect key reached the
//! adapter at least once.
//!
//! One test in a file of its own: a restart breaks every connection to the server, other
//! tests' too. Cargo runs test binaries one after another, so a suite run is safe; a test run
//! by hand beside others is not. The restart goes through `pg_ctlcluster` on this machine's
//! cluster (the one under `/etc/postgresql`); without it (or without the right to run it) the
//! test is skipped with the reason, or fails under `KARS_REQUIRE_POSTGRES=1`. Whatever
//! happens, the server is left running.
#![cfg(feature = "postgres")]
// It waits for a server to come back: on the wall clock.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kars::workflow::InstanceId;
use kars::workflow::adapter::RecordingNotifier;
use kars::workflow::driver::{Adapters, Driver, DriverConfig, Parts, Program, VirtualClock};
use kars::workflow::journal::{PgStore, Store};
use kars::workflow::worker::{Host, Worker, WorkerConfig};

#[path = "support/postgres.rs"]
#[allow(dead_code)]
mod support;
use support::TestDb;

/// Five days of a timer and a notification each (as `tests/postgres_replicas.rs`).
const SPEC: &str = include_str!("fixtures/postgres/week.yaml");

const INSTANCES: usize = 200;
const REPLICAS: usize = 3;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The days the timers are due, Monday to Friday.
fn steps() -> Vec<DateTime<Utc>> {
    (23..=27).map(|day| at(&format!("2026-11-{day}T10:00:00Z"))).collect()
}

/// This machine's PostgreSQL cluster, as `pg_ctlcluster` names it: (version, name).
fn cluster() -> Result<(String, String), String> {
    let dirs = |path: &str| -> Result<Vec<String>, String> {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .map_err(|e| format!("cannot list `{path}`: {e}"))?
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    };
    let version = dirs("/etc/postgresql")?.pop().ok_or("no cluster under `/etc/postgresql`")?;
    let name = dirs(&format!("/etc/postgresql/{version}"))?
        .into_iter()
        .find(|n| n == "main")
        .ok_or(format!("no cluster `main` under `/etc/postgresql/{version}`"))?;
    Ok((version, name))
}

/// `pg_ctlcluster` on the cluster (`args`: options, then the action); its failure in words.
fn pg_ctl(cluster: &(String, String), args: &[&str]) -> Result<(), String> {
    let (action, options) = args.split_last().expect("an action");
    let mut command = Command::new("pg_ctlcluster");
    command.arg("--skip-systemctl-redirect").args(options).arg(&cluster.0).arg(&cluster.1).arg(action);
    let output = command.output().map_err(|e| format!("cannot run `pg_ctlcluster`: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`pg_ctlcluster {} {} {}` failed ({}): {}",
            cluster.0,
            cluster.1,
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Starts the server again when the test ends, however it ends.
struct Running((String, String));

impl Drop for Running {
    fn drop(&mut self) {
        if pg_ctl(&self.0, &["status"]).is_err()
            && let Err(e) = pg_ctl(&self.0, &["start"])
        {
            eprintln!("could not start PostgreSQL again: {e}");
        }
    }
}

/// Skips the test with `reason`, or fails it under `KARS_REQUIRE_POSTGRES=1`.
fn skip(reason: &str) {
    assert!(std::env::var("KARS_REQUIRE_POSTGRES").as_deref() != Ok("1"), "KARS_REQUIRE_POSTGRES=1: {reason}");
    eprintln!("skipping the restart test: {reason}");
}

/// Waits up to `limit` for `done`.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// Looks behind the store's back on a fresh connection each time (the restart ends the
/// connection `TestDb` holds), and drops the test's schema at the end.
struct Admin {
    runtime: tokio::runtime::Runtime,
    schema: String,
}

impl Drop for Admin {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        let _ = self.column(&sql);
    }
}

impl Admin {
    fn new(schema: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Self { runtime, schema: schema.to_owned() }
    }

    /// The first column of `sql`'s rows as text, on a fresh connection; `None` while the
    /// server does not answer.
    fn column(&self, sql: &str) -> Option<Vec<String>> {
        self.runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&support::url(), tokio_postgres::NoTls).await.ok()?;
            let task = tokio::spawn(connection);
            let rows = client.query(sql, &[]).await.ok();
            drop(client);
            let _ = task.await;
            Some(rows?.iter().map(|r| r.get::<_, String>(0)).collect())
        })
    }
}

#[test]
fn replicas_reconnect_after_a_server_restart_and_lose_nothing() {
    let Some(db) = TestDb::new("restart") else { return };
    let cluster = match cluster().and_then(|c| pg_ctl(&c, &["status"]).map(|()| c)) {
        Ok(cluster) => cluster,
        Err(reason) => return skip(&format!("cannot control the local server: {reason}")),
    };
    let _running = Running(cluster.clone());
    let program = Program::new(&kars::spec::load(SPEC, "week.yaml").unwrap()).unwrap();
    let ids: Vec<InstanceId> = (0..INSTANCES).map(|i| InstanceId::new(format!("r-{i:04}")).unwrap()).collect();
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let clock = Arc::new(VirtualClock::new(at("2026-11-23T08:00:00Z")));
    for id in &ids {
        let parts = Parts {
            store: store.clone(),
            clock: Arc::clone(&clock),
            adapters: Adapters::new(RecordingNotifier::new()),
            config: DriverConfig::default(),
        };
        Driver::create(parts, &program, id, None).unwrap();
    }

    let notifier = Arc::new(RecordingNotifier::new());
    let stop = Arc::new(AtomicBool::new(false));
    let name = |r: usize| format!("kars-restart-{}-{r}", std::process::id());
    let replicas: Vec<_> = (0..REPLICAS)
        .map(|r| {
            let config = db.config().with_pool_size(2).with_application_name(name(r));
            let store = PgStore::connect(&db.url, &config).unwrap();
            let (notifier, program) = (Arc::clone(&notifier), program.clone());
            let host: Arc<Host> = Arc::new(move |_journal| {
                Ok((program.clone(), Adapters::new(Arc::clone(&notifier)), DriverConfig::default()))
            });
            // A short lease: an instance whose drive failed in the outage is paused for a lease.
            let config = WorkerConfig { lease: Duration::from_secs(3), batch: 8, poll: Duration::from_millis(200) };
            let worker = Worker::new(store, config, Arc::clone(&clock), host);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || worker.run(&stop))
        })
        .collect();

    let admin = Admin::new(&db.schema);
    let listening = |r: usize| {
        let sql = format!(
            "SELECT query FROM pg_stat_activity WHERE application_name = '{}' AND query LIKE 'LISTEN%'",
            name(r)
        );
        admin.column(&sql).is_some_and(|rows| !rows.is_empty())
    };
    assert!(eventually(Duration::from_secs(20), || (0..REPLICAS).all(listening)), "every replica listens");
    let started = || admin.column("SELECT pg_postmaster_start_time()::text");
    let before = started().expect("the server answers");

    let s = &db.schema;
    let due = |step: DateTime<Utc>| {
        format!(
            "SELECT count(*)::text FROM \"{s}\".instances i WHERE i.owner IS NOT NULL OR i.next_wake <= '{}' \
             OR EXISTS (SELECT 1 FROM \"{s}\".outbox o WHERE o.instance = i.instance AND o.done_version IS NULL)",
            step.to_rfc3339()
        )
    };
    let done_keys = || {
        admin
            .column(&format!("SELECT count(*)::text FROM \"{s}\".outbox WHERE done_version IS NOT NULL"))
            .map(|rows| rows[0].parse::<usize>().unwrap())
    };
    let mut restarted = false;
    for (k, step) in steps().into_iter().enumerate() {
        clock.set(step);
        if k == 1 {
            // In the middle of the second step's work: some of its effects done, not all.
            let first = INSTANCES;
            assert!(
                eventually(Duration::from_secs(60), || done_keys().is_some_and(|n| n > first + 10)),
                "the replicas started on the second step"
            );
            let in_flight = done_keys().unwrap();
            if let Err(reason) = pg_ctl(&cluster, &["--mode=fast", "restart"]) {
                stop.store(true, Ordering::SeqCst);
                return skip(&reason);
            }
            restarted = true;
            eprintln!("restarted with {} of {} second-step effects done", in_flight - first, INSTANCES);
        }
        let idle = || admin.column(&due(step)).is_some_and(|rows| rows == ["0"]);
        assert!(eventually(Duration::from_secs(120), idle), "step {step}: still due: {:?}", admin.column(&due(step)));
    }
    assert!(restarted);
    let after = started().expect("the server answers");
    assert_ne!(before, after, "the server restarted");
    // The listeners came back on their own (their connections died with the server).
    assert!(eventually(Duration::from_secs(20), || (0..REPLICAS).all(listening)), "every replica listens again");

    stop.store(true, Ordering::SeqCst);
    for replica in replicas {
        replica.join().unwrap().unwrap();
    }

    let reference_done = store.read(&ids[0]).unwrap().version;
    for id in &ids {
        let sequences = admin
            .column(&format!(
                "SELECT sequence::text AS s FROM \"{s}\".records WHERE instance = '{}' ORDER BY sequence",
                id.as_str()
            ))
            .unwrap();
        let expected: Vec<String> = (0..sequences.len()).map(|i| i.to_string()).collect();
        assert_eq!(sequences, expected, "{id}: contiguous sequence numbers");
        let stored = store.read(id).unwrap();
        assert_eq!(stored.records.len(), sequences.len(), "{id}: the read returns every record");
        let finished = store.outbox(id).unwrap();
        assert_eq!(finished.len(), 5, "{id}: five notifications emitted");
        assert!(finished.iter().all(|row| row.done_version.is_some()), "{id}: every effect acknowledged");
        assert_eq!(stored.version, reference_done, "{id}: finished like the others");
    }
    // A notification's key is its effect's key and its recipient: `{effect key}/channel:ops`.
    let performed: BTreeSet<String> = notifier
        .delivered()
        .into_iter()
        .map(|n| n.key.rsplit_once('/').map(|(effect, _)| effect.to_owned()).unwrap_or(n.key))
        .collect();
    let emitted: BTreeSet<String> =
        ids.iter().flat_map(|id| store.outbox(id).unwrap().into_iter().map(|row| row.key)).collect();
    assert_eq!(emitted.len(), 5 * INSTANCES, "one key per notification");
    let lost: Vec<&String> = emitted.difference(&performed).collect();
    assert!(lost.is_empty(), "every effect key reached the adapter at least once; not: {lost:?}");
    assert_eq!(performed, emitted, "no key the run did not emit");
}
