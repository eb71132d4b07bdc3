//! Replicas (`kars_workflow::worker::Worker`) sharing a PostgreSQL store: three workers perform
//! the pending effects of many instances, each key once, each instance by one replica at a
//! time, and release their leases.
#![cfg(feature = "postgres")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kars::workflow::adapter::{RecordingNotifier, RecordingVcs};
use kars::workflow::driver::{Adapters, Driver, DriverConfig, Parts, RecordingOperations, VirtualClock};
use kars::workflow::journal::{PgStore, Store};
use kars::workflow::worker::{Host, Worker, WorkerConfig};
use kars::workflow::{Event, InstanceId};

#[path = "support/postgres.rs"]
#[allow(dead_code)]
mod support;
use support::{TestDb, local, program, roster};

/// The fakes every replica shares, as one world would.
struct World {
    notifier: Arc<RecordingNotifier>,
    vcs: Arc<RecordingVcs>,
    ops: Arc<RecordingOperations>,
}

impl World {
    fn adapters(&self) -> Adapters {
        Adapters::new(Arc::clone(&self.notifier)).with_vcs(Arc::clone(&self.vcs)).with_operations(Arc::clone(&self.ops))
    }
}

/// Drives instance `id` to Thursday 17:30, where `I` is completed and the `J` notification is
/// left pending (in the outbox, not performed).
fn setup(store: &PgStore, world: &World, clock: &Arc<VirtualClock>, id: &InstanceId) {
    let parts = || Parts {
        store: store.clone(),
        clock: Arc::clone(clock),
        adapters: world.adapters(),
        config: DriverConfig::default(),
    };
    let mut driver = Driver::create(parts(), &program(), id, None).unwrap();
    let steps = [
        ("2026-11-23 09:00", "B", "erin"),
        ("2026-11-23 09:30", "C", "frank"),
        ("2026-11-24 10:00", "D", "alice"),
        ("2026-11-25 10:00", "E", "alice"),
        ("2026-11-25 14:00", "F", "bob"),
        ("2026-11-26 17:30", "I", "erin"),
    ];
    for (at, node, person) in steps {
        clock.set(local(at));
        // Read afresh: a running replica may have performed an effect since the last step.
        driver = Driver::open(parts(), &program(), id).unwrap();
        driver.tick().unwrap();
        driver.run_effects().unwrap();
        let outcome = (node == "F").then(|| "approved".into());
        let event = Event::Complete { node: node.parse().unwrap(), actor: roster().actor(person).unwrap(), outcome };
        // A running replica may hold an effect of this instance (the one this driver just
        // performed too): until it acknowledges, the node is not awaited. Read afresh, again.
        let mut tries = 0;
        while let Err(e) = driver.handle_event(event.clone()) {
            tries += 1;
            assert!(tries < 100, "{id}: {e}");
            std::thread::sleep(std::time::Duration::from_millis(50));
            driver = Driver::open(parts(), &program(), id).unwrap();
            driver.run_effects().unwrap();
        }
        if node != "I" {
            driver.run_effects().unwrap();
        }
    }
    assert!(driver.pending_effects().count() > 0, "an effect is left pending");
}

#[test]
fn three_replicas_perform_every_pending_effect_once_and_release_their_leases() {
    let Some(db) = TestDb::new("workers") else { return };
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let setup_world = World {
        notifier: Arc::new(RecordingNotifier::new()),
        vcs: Arc::new(RecordingVcs::new()),
        ops: Arc::new(RecordingOperations::new()),
    };
    setup_world.vcs.set_branch("kars-dev", "c1");
    setup_world.vcs.set_branch("kars-prod", "c0");
    setup_world.vcs.set_branch("feature/login", "c2");
    let clock = Arc::new(VirtualClock::new(local("2026-11-23 08:00")));
    let ids: Vec<InstanceId> = (0..12).map(|i| InstanceId::new(format!("team-{i:02}")).unwrap()).collect();
    for id in &ids {
        setup(&store, &setup_world, &clock, id);
    }
    let pending = format!("SELECT count(*) FROM \"{}\".outbox WHERE done_version IS NULL", db.schema);
    assert_eq!(db.column_i64(&pending), [12], "one pending notification per instance");

    // The replicas perform on their own shared world; only the pending effects remain.
    let world = Arc::new(World {
        notifier: Arc::new(RecordingNotifier::new()),
        vcs: Arc::new(RecordingVcs::new()),
        ops: Arc::new(RecordingOperations::new()),
    });
    let replicas: Vec<_> = (0..3)
        .map(|_| {
            let store = PgStore::connect(&db.url, &db.config().with_pool_size(2)).unwrap();
            let world = Arc::clone(&world);
            let host: Arc<Host> = Arc::new(move |_journal| Ok((program(), world.adapters(), DriverConfig::default())));
            let config = WorkerConfig { lease: Duration::from_secs(30), batch: 2, poll: Duration::from_millis(20) };
            let worker = Worker::new(store, config, Arc::clone(&clock), host);
            let ids = ids.clone();
            let checker = PgStore::connect(&db.url, &db.config().with_pool_size(1)).unwrap();
            std::thread::spawn(move || {
                let store = checker;
                let mut mine = Vec::new();
                for _ in 0..500 {
                    for worked in worker.run_once().unwrap() {
                        worked.outcome.as_ref().unwrap_or_else(|e| panic!("{}: {e}", worked.instance));
                        mine.push(worked.instance.to_string());
                    }
                    let all_done =
                        ids.iter().all(|id| store.outbox(id).unwrap().iter().all(|row| row.done_version.is_some()));
                    if all_done {
                        break;
                    }
                }
                (worker.replica().to_string(), mine)
            })
        })
        .collect();
    let mut by_replica = BTreeMap::new();
    for replica in replicas {
        let (id, worked) = replica.join().unwrap();
        by_replica.insert(id, worked);
    }
    assert_eq!(by_replica.len(), 3, "three distinct replica ids");
    assert_eq!(db.column_i64(&pending), [0], "every pending effect was performed and acknowledged");

    // Every instance's J notification reached the adapter exactly once.
    let mut keys: Vec<String> = world.notifier.delivered().into_iter().map(|n| n.key).collect();
    keys.sort();
    let expected: Vec<String> = ids.iter().map(|id| format!("{id}/2026-W48/J/1/channel:releases")).collect();
    assert_eq!(keys, expected);
    let owners = format!("SELECT count(*) FROM \"{}\".instances WHERE owner IS NOT NULL", db.schema);
    assert_eq!(db.column_i64(&owners), [0], "every lease released");
    // The journals say the same: one `done` per key.
    for id in &ids {
        let stored = store.read(id).unwrap();
        let j_done = stored
            .records
            .iter()
            .filter(|r| r.starts_with(br#"{"done""#) && String::from_utf8_lossy(r).contains(r#"/J/1","#))
            .count();
        assert_eq!(j_done, 1, "{id}: J acknowledged once");
    }
}

/// A notifier that takes its time: the replica holding the lease stalls mid-effect.
struct Slow(Arc<RecordingNotifier>, Duration);

impl kars::workflow::adapter::Notifier for Slow {
    fn notify(&self, n: &kars::workflow::adapter::Notification) -> Result<(), kars::workflow::adapter::AdapterError> {
        std::thread::sleep(self.1);
        self.0.notify(n)
    }
}

#[test]
fn a_replica_that_stalls_mid_effect_loses_the_instance_and_its_late_ack_changes_nothing() {
    let Some(db) = TestDb::new("worker_takeover") else { return };
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let setup_world = World {
        notifier: Arc::new(RecordingNotifier::new()),
        vcs: Arc::new(RecordingVcs::new()),
        ops: Arc::new(RecordingOperations::new()),
    };
    setup_world.vcs.set_branch("kars-dev", "c1");
    setup_world.vcs.set_branch("kars-prod", "c0");
    setup_world.vcs.set_branch("feature/login", "c2");
    let clock = Arc::new(VirtualClock::new(local("2026-11-23 08:00")));
    let id = InstanceId::new("kars").unwrap();
    setup(&store, &setup_world, &clock, &id);
    let recorded = Arc::new(RecordingNotifier::new());

    // Replica A claims with a short lease and stalls in the notifier past it (no heartbeat).
    let slow = {
        let (recorded, clock) = (Arc::clone(&recorded), Arc::clone(&clock));
        let host: Arc<Host> = Arc::new(move |_journal| {
            let notifier = Slow(Arc::clone(&recorded), Duration::from_millis(900));
            Ok((program(), Adapters::new(notifier), DriverConfig::default()))
        });
        let config = WorkerConfig { lease: Duration::from_millis(300), batch: 1, poll: Duration::from_millis(20) };
        Worker::new(PgStore::connect(&db.url, &db.config()).unwrap(), config, clock, host)
    };
    let stalled = std::thread::spawn(move || slow.run_once().unwrap());

    // Replica B takes the instance over once A's lease expired on the database's clock.
    let claimed = format!("SELECT count(*) FROM \"{}\".instances WHERE owner IS NOT NULL", db.schema);
    while db.column_i64(&claimed) != [1] {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(400));
    let fast = {
        let recorded = Arc::clone(&recorded);
        let host: Arc<Host> =
            Arc::new(move |_journal| Ok((program(), Adapters::new(Arc::clone(&recorded)), DriverConfig::default())));
        Worker::new(PgStore::connect(&db.url, &db.config()).unwrap(), WorkerConfig::default(), Arc::clone(&clock), host)
    };
    let taken = fast.run_once().unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].epoch, 2, "B's claim raised the epoch");
    assert!(taken[0].outcome.is_ok(), "{:?}", taken[0].outcome);

    // A wakes up, performs (a duplicate, by key) and its acknowledgement is refused.
    let late = stalled.join().unwrap();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].epoch, 1);
    let err = late[0].outcome.as_ref().unwrap_err().to_string();
    assert!(err.contains("no longer holds the lease on instance `kars` (epoch 1)"), "{err}");

    let stored = store.read(&id).unwrap();
    let j_done = stored
        .records
        .iter()
        .filter(|r| r.starts_with(br#"{"done""#) && String::from_utf8_lossy(r).contains(r#"/J/1","#))
        .count();
    assert_eq!(j_done, 1, "one acknowledgement, B's");
    let calls: Vec<(Option<String>, bool)> = recorded.calls().into_iter().map(|c| (c.key, c.duplicate)).collect();
    let key = Some("kars/2026-W48/J/1/channel:releases".to_owned());
    assert_eq!(calls, [(key.clone(), false), (key, true)], "at least once, the duplicate with the same key");
}

/// Waits up to `limit` (in steps of 20 ms) for `done`; whether it came.
fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    while waited < limit {
        if done() {
            return true;
        }
        std::thread::sleep(step);
        waited += step;
    }
    done()
}

#[test]
fn an_idle_worker_wakes_on_the_notify_hint_and_after_its_connections_are_terminated() {
    let Some(db) = TestDb::new("worker_notify") else { return };
    // The setup's appends send no hint: the worker sleeps through the setup (and cannot take
    // an effect from under its driver), and the hint below wakes it once the setup is done.
    let setup_store = PgStore::connect(&db.url, &db.config().with_notify(false)).unwrap();
    let channel: String = format!("kars_{}", db.schema).chars().take(63).collect();
    let hint = || db.exec(&format!("SELECT pg_notify('{channel}', '')"));
    let setup_world = World {
        notifier: Arc::new(RecordingNotifier::new()),
        vcs: Arc::new(RecordingVcs::new()),
        ops: Arc::new(RecordingOperations::new()),
    };
    setup_world.vcs.set_branch("kars-dev", "c1");
    setup_world.vcs.set_branch("kars-prod", "c0");
    setup_world.vcs.set_branch("feature/login", "c2");
    let clock = Arc::new(VirtualClock::new(local("2026-11-23 08:00")));

    // A worker that would poll only once a minute: only the hint can wake it in time.
    let name = format!("kars-test-worker-notify-{}", std::process::id());
    let recorded = Arc::new(RecordingNotifier::new());
    let worker = {
        // The setup's VCS and operations: should the hint wake the worker while the setup still
        // drives the week, a merge or deploy it takes over ends as the setup's would.
        let (recorded, vcs, ops) = (Arc::clone(&recorded), Arc::clone(&setup_world.vcs), Arc::clone(&setup_world.ops));
        let host: Arc<Host> = Arc::new(move |_journal| {
            let adapters =
                Adapters::new(Arc::clone(&recorded)).with_vcs(Arc::clone(&vcs)).with_operations(Arc::clone(&ops));
            Ok((program(), adapters, DriverConfig::default()))
        });
        let config = WorkerConfig { lease: Duration::from_secs(30), batch: 4, poll: Duration::from_secs(60) };
        let store = PgStore::connect(&db.url, &db.config().with_application_name(&name)).unwrap();
        // Its own clock, before every timer: it claims for the pending effect only, never a
        // timer that the setup's driver is about to fire itself.
        Worker::new(store, config, Arc::new(VirtualClock::new(local("2026-11-23 08:00"))), host)
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let running = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || worker.run(&stop))
    };
    std::thread::sleep(Duration::from_millis(500)); // idle: nothing is due yet
    let delivered = |id: &str| {
        let key = format!("{id}/2026-W48/J/1/channel:releases");
        let recorded = Arc::clone(&recorded);
        move || recorded.delivered().iter().any(|n| n.key == key)
    };

    setup(&setup_store, &setup_world, &clock, &InstanceId::new("first").unwrap());
    hint();
    assert!(eventually(Duration::from_secs(20), delivered("first")), "the hint woke the worker");

    // Every connection of the worker's store, the listening one included, is terminated.
    assert!(db.terminate(&name) >= 2, "a pooled connection and the listener");
    std::thread::sleep(Duration::from_millis(500));
    setup(&setup_store, &setup_world, &clock, &InstanceId::new("second").unwrap());
    hint();
    assert!(eventually(Duration::from_secs(20), delivered("second")), "the listener reconnected");

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    running.join().unwrap().unwrap();
    let held = format!("SELECT count(*) FROM \"{}\".instances WHERE owner IS NOT NULL", db.schema);
    assert_eq!(db.column_i64(&held), [0], "a stopped worker holds no lease");
}
