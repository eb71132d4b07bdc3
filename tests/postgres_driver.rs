//! The driver over the PostgreSQL store: the KARS week's scenarios give the same journal,
//! byte for byte, and the same effects as over the in-memory store, and the outbox holds every
//! effect with the append that acknowledged it.
#![cfg(feature = "postgres")]

use std::sync::Arc;

use kars::workflow::adapter::{RecordingNotifier, RecordingVcs};
use kars::workflow::driver::{
    Adapters, Driver, DriverConfig, Entry, Parts, RecordingOperations, RetryPolicy, Scripted, VirtualClock,
    read_journal,
};
use kars::workflow::journal::{MemoryStore, PgStore, Store};
use kars::workflow::{ActionOutcome, Event, InstanceId};

#[path = "support/postgres.rs"]
#[allow(dead_code)]
mod support;
use support::{TestDb, local, program, roster};

fn id() -> InstanceId {
    InstanceId::new("kars").unwrap()
}

/// The fakes, shared across driver restarts.
struct World {
    notifier: Arc<RecordingNotifier>,
    vcs: Arc<RecordingVcs>,
    ops: Arc<RecordingOperations>,
    clock: Arc<VirtualClock>,
}

impl World {
    fn new() -> Self {
        let vcs = RecordingVcs::new();
        vcs.set_branch("kars-dev", "c1");
        vcs.set_branch("kars-prod", "c0");
        vcs.set_branch("feature/login", "c2");
        Self {
            notifier: Arc::new(RecordingNotifier::new()),
            vcs: Arc::new(vcs),
            ops: Arc::new(RecordingOperations::new()),
            clock: Arc::new(VirtualClock::new(local("2026-11-23 08:00"))),
        }
    }

    fn parts<S: Store>(&self, store: S) -> Parts<S, Arc<VirtualClock>> {
        let adapters = Adapters::new(Arc::clone(&self.notifier))
            .with_vcs(Arc::clone(&self.vcs))
            .with_operations(Arc::clone(&self.ops));
        let retry = RetryPolicy {
            max_attempts: 4,
            base: std::time::Duration::from_secs(1),
            cap: std::time::Duration::from_secs(4),
        };
        Parts {
            store,
            clock: Arc::clone(&self.clock),
            adapters,
            config: DriverConfig { retry, ..DriverConfig::default() },
        }
    }

    /// What reached the fakes, by key.
    fn effects(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        (
            self.notifier.delivered().into_iter().map(|n| n.key).collect(),
            self.vcs.merges().into_iter().map(|(r, _)| r.key).collect(),
            self.ops.performed().into_iter().map(|o| o.key).collect(),
        )
    }
}

/// The KARS week: (local time, node, person, outcome); the deploy `AE` step only when it
/// succeeds.
fn week(deploy_succeeds: bool) -> Vec<(&'static str, &'static str, &'static str, Option<&'static str>)> {
    let mut steps = vec![
        ("2026-11-23 09:00", "B", "erin", None),
        ("2026-11-23 09:30", "C", "frank", None),
        ("2026-11-24 10:00", "D", "alice", None),
        ("2026-11-25 10:00", "E", "alice", None),
        ("2026-11-25 14:00", "F", "bob", Some("approved")),
        ("2026-11-26 17:30", "I", "erin", None),
        ("2026-11-26 18:00", "K", "erin", None),
        ("2026-11-27 09:30", "L", "carol", None),
        ("2026-11-27 10:00", "M", "dave", None),
        ("2026-11-27 11:00", "N", "carol", Some("Yes")),
        ("2026-11-27 14:00", "Q", "carol", None),
        ("2026-11-27 14:30", "R", "erin", None),
        ("2026-11-30 09:50", "U", "dave", None),
        ("2026-11-30 09:55", "W", "frank", Some("approved")),
        ("2026-11-30 10:10", "Z", "dave", None),
    ];
    if deploy_succeeds {
        steps.push(("2026-11-30 10:30", "AE", "erin", None));
    }
    steps
}

/// Runs the week on `store`; with `reopen_after`, drops the driver after that many steps and
/// opens the instance again from the store (another process taking over).
fn run_week<S: Store + Clone>(
    world: &World,
    store: S,
    deploy_succeeds: bool,
    reopen_after: Option<usize>,
) -> Driver<S, Arc<VirtualClock>> {
    let mut driver = Driver::create(world.parts(store.clone()), &program(), &id(), None).unwrap();
    for (i, (at, node, person, outcome)) in week(deploy_succeeds).into_iter().enumerate() {
        if reopen_after == Some(i) {
            drop(driver);
            driver = Driver::open(world.parts(store.clone()), &program(), &id()).unwrap();
        }
        driver.run_until(local(at)).unwrap();
        let event = Event::Complete {
            node: kars::spec::NodeId::new(node).unwrap(),
            actor: roster().actor(person).unwrap(),
            outcome: outcome.map(Into::into),
        };
        driver.handle_event(event).unwrap();
        driver.run_effects().unwrap();
    }
    driver.run_until(local("2026-11-30 12:00")).unwrap();
    driver
}

/// Runs the week over memory and over PostgreSQL and compares journals, effects and outbox.
fn same_as_in_memory(db: &TestDb, deploy_succeeds: bool, reopen_after: Option<usize>) -> String {
    let (memory_world, pg_world) = (World::new(), World::new());
    if !deploy_succeeds {
        memory_world.ops.script("Y", Scripted::Broken);
        pg_world.ops.script("Y", Scripted::Broken);
    }
    let memory = run_week(&memory_world, Arc::new(MemoryStore::new()), deploy_succeeds, None);
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let pg = run_week(&pg_world, store.clone(), deploy_succeeds, reopen_after);
    assert_eq!(pg.instance(), memory.instance());
    let (in_pg, in_memory) = (store.read(&id()).unwrap(), memory.store().read(&id()).unwrap());
    assert_eq!(in_pg.header, in_memory.header);
    assert_eq!(in_pg.records, in_memory.records, "the same journal, byte for byte");
    assert_eq!(pg_world.effects(), memory_world.effects(), "the same effects reached the adapters");

    // The outbox: every effect the journal acknowledges, emitted and marked done by appends.
    let journal = read_journal(&store, &id()).unwrap();
    let mut done: Vec<(String, u64)> = Vec::new();
    for (version, entry) in (1u64..).zip(&journal.entries) {
        if let Entry::Done(d) = entry {
            done.push((d.key.as_str().to_owned(), version));
        }
    }
    done.sort();
    let outbox = store.outbox(&id()).unwrap();
    let rows: Vec<(String, u64)> = outbox.iter().map(|r| (r.key.clone(), r.done_version.unwrap_or(0))).collect();
    assert_eq!(rows, done, "each outbox row is done by the append of its `done` entry");
    for row in &outbox {
        assert!(row.emitted_version < row.done_version.unwrap_or(0), "{row:?} done before it was emitted");
    }
    pg.instance().cycle_outcomes()[0].outcome.to_string()
}

#[test]
fn a_clean_week_over_postgres_is_the_week_in_memory() {
    let Some(db) = TestDb::new("driver_clean") else { return };
    assert_eq!(same_as_in_memory(&db, true, None), "released");
}

#[test]
fn a_failed_deploy_over_postgres_takes_the_rollback_path_as_in_memory() {
    let Some(db) = TestDb::new("driver_rollback") else { return };
    assert_eq!(same_as_in_memory(&db, false, None), "incident");
}

#[test]
fn another_process_reopening_the_instance_mid_week_changes_nothing() {
    let Some(db) = TestDb::new("driver_reopen") else { return };
    assert_eq!(same_as_in_memory(&db, true, Some(6)), "released");
}

#[test]
fn transient_failures_over_postgres_land_each_key_once() {
    let Some(db) = TestDb::new("driver_flaky") else { return };
    let world = World::new();
    world.notifier.set_failures(kars::workflow::adapter::FailurePlan::transient(2));
    world.ops.script("Y", Scripted::Flaky(2, ActionOutcome::Succeeded));
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let driver = run_week(&world, store.clone(), true, None);
    assert_eq!(driver.instance().cycle_outcomes()[0].outcome, "released");
    let (notes, merges, ops) = world.effects();
    let mut all: Vec<String> = notes.into_iter().chain(merges).chain(ops).collect();
    let count = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), count, "a key reached an adapter twice");
    assert!(store.outbox(&id()).unwrap().iter().all(|r| r.done_version.is_some()), "an effect left pending");
}
