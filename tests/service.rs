//! The tokio service (`tokio` feature): a slow adapter delays only its own effect, and the loop
//! catches up after a downtime across a deadline and gates. Time is virtual
//! ([`VirtualTimer`]): it moves only when a test says so.
#![cfg(feature = "tokio")]

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, NaiveDateTime, Utc};
use kars::workflow::adapter::{AdapterError, Audience, RecordingNotifier};
use kars::workflow::driver::{
    Adapters, Driver, DriverConfig, Entry, LogKind, Operation, OperationsFn, Parts, Program, Roster, Start,
    VirtualClock, read_journal,
};
use kars::workflow::journal::MemoryStore;
use kars::workflow::service::{Service, VirtualTimer};
use kars::workflow::{ActionOutcome, Event, Input, InstanceId, NoticeKind};

const SPEC: &str = include_str!("../workflows/kars-release.yaml");

fn program() -> Program {
    static PROGRAM: OnceLock<Program> = OnceLock::new();
    PROGRAM.get_or_init(|| Program::new(&kars::spec::load(SPEC, "kars-release.yaml").unwrap()).unwrap()).clone()
}

fn roster() -> Roster {
    Roster::from_spec(kars::spec::load(SPEC, "kars-release.yaml").unwrap().spec())
}

/// A local Toronto time (`2026-11-23 09:00`) as UTC.
fn local(s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    kars::spec::calendar::resolve_local(chrono_tz::America::Toronto, naive)
}

fn complete(node: &str, person: &str, outcome: Option<&str>) -> Event {
    Event::Complete {
        node: node.parse().unwrap(),
        actor: roster().actor(person).unwrap(),
        outcome: outcome.map(Into::into),
    }
}

type Store = Arc<MemoryStore>;

/// Drives the instance synchronously: at each instant, time passes (timers and effects),
/// then the act and its effects.
fn drive(driver: &mut Driver<Store, Arc<VirtualClock>>, steps: &[(&str, &str, &str, Option<&str>)]) {
    for (at, node, person, outcome) in steps {
        driver.run_until(local(at)).unwrap();
        driver.handle_event(complete(node, person, *outcome)).unwrap();
        driver.run_effects().unwrap();
    }
}

/// Waits (on real time, generously: 20 s) until `done` holds; the condition is the assertion,
/// the bound only keeps a broken build from hanging.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// G's merge goes to an operator whose call blocks until the test releases it. While it
/// blocks, a status read and an act on the same instance complete: the loop does not hold the
/// instance while an adapter works. The order is asserted with channels, not timings.
/// A journal in memory, a virtual clock at Monday 08:00, a recording notifier, and operations
/// that succeed: what the catch-up and shutdown tests open and reopen a driver on.
struct World {
    clock: Arc<VirtualClock>,
    notifier: Arc<RecordingNotifier>,
    store: Store,
    id: InstanceId,
}

impl World {
    fn new() -> Self {
        Self {
            clock: Arc::new(VirtualClock::new(local("2026-11-23 08:00"))),
            notifier: Arc::new(RecordingNotifier::new()),
            store: Arc::new(MemoryStore::new()),
            id: InstanceId::new("kars").unwrap(),
        }
    }

    fn parts(&self) -> Parts<Store, Arc<VirtualClock>> {
        Parts {
            store: Arc::clone(&self.store),
            clock: Arc::clone(&self.clock),
            adapters: Adapters::new(Arc::clone(&self.notifier))
                .with_operations(OperationsFn(|_: &Operation| Ok(Some(ActionOutcome::Succeeded)))),
            config: DriverConfig::default(),
        }
    }
}

#[tokio::test]
async fn a_slow_adapter_delays_only_its_own_effect() {
    let clock = Arc::new(VirtualClock::new(local("2026-11-23 08:00")));
    let (entered_tx, entered_rx) = mpsc::channel::<String>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let returned = Arc::new(Mutex::new(Vec::<String>::new()));
    let returned_in_ops = Arc::clone(&returned);
    let ops = OperationsFn(move |op: &Operation| -> Result<Option<ActionOutcome>, AdapterError> {
        if op.node.as_str() == "G" {
            entered_tx.send(op.key.clone()).unwrap();
            release_rx.lock().unwrap().recv().unwrap();
        }
        returned_in_ops.lock().unwrap().push(op.node.to_string());
        Ok(Some(ActionOutcome::Succeeded))
    });
    let adapters = Adapters::new(RecordingNotifier::new()).with_operations(ops);
    let parts = Parts {
        store: Arc::new(MemoryStore::new()),
        clock: Arc::clone(&clock),
        adapters,
        config: DriverConfig::default(),
    };
    let id = InstanceId::new("kars").unwrap();
    let (mut driver, _) = Driver::open_or_create(parts, &program(), &id, Start::default()).unwrap();
    drive(
        &mut driver,
        &[
            ("2026-11-23 09:00", "B", "erin", None),
            ("2026-11-23 09:30", "C", "frank", None),
            ("2026-11-24 10:00", "D", "alice", None),
            ("2026-11-25 10:00", "E", "alice", None),
        ],
    );
    driver.run_until(local("2026-11-25 14:00")).unwrap();
    // F's completion is journaled; G's merge is left to the service.
    let report = driver.handle_event(complete("F", "bob", Some("approved"))).unwrap();
    assert_eq!(report.pending.len(), 1);

    let timer = VirtualTimer::new(Arc::clone(&clock));
    let service = Service::new(driver, timer);
    let handle = service.handle();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.run(async {
        let _ = stop_rx.await;
    }));

    // The operator's call for G has started and blocks.
    let key = tokio::task::spawn_blocking(move || entered_rx.recv().unwrap()).await.unwrap();
    assert_eq!(key, "kars/2026-W48/G/1");
    // A status read completes meanwhile.
    let at = handle.read(|d| d.instance().current_node().map(ToString::to_string)).await;
    assert_eq!(at.as_deref(), Some("G"));
    // So does an act on the same instance: bob, a developer, reports G's result himself.
    let bob = roster().actor("bob").unwrap();
    let report = handle.act(bob, "G".parse().unwrap(), Some("succeeded".to_owned())).await.unwrap();
    assert!(report.committed());
    assert!(returned.lock().unwrap().is_empty(), "the call for G was still blocked");
    let at = handle.read(|d| d.instance().current_node().map(ToString::to_string)).await;
    assert_eq!(at.as_deref(), Some("H"));

    // Released, the merge ends; its result comes too late and is logged as refused.
    release_tx.send(()).unwrap();
    eventually("H's deploy ran and the instance reached I", || returned.lock().unwrap().iter().any(|n| n == "H")).await;
    let h = handle.clone();
    let mut at_i = false;
    for _ in 0..2000 {
        at_i = h.read(|d| d.instance().current_node().is_some_and(|n| n.as_str() == "I")).await;
        if at_i {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(at_i);
    stop_tx.send(()).unwrap();
    running.await.unwrap().unwrap();
    let refused = handle
        .read(|d| {
            d.log()
                .iter()
                .any(|e| e.key.as_str() == "kars/2026-W48/G/1" && matches!(e.kind, LogKind::ResultRefused { .. }))
        })
        .await;
    assert!(refused, "G's late result was refused");
    assert!(handle.read(|d| d.is_acknowledged(&serde_json::from_str("\"kars/2026-W48/G/1\"").unwrap())).await);
}

/// The service is stopped at `Q` on Friday 11:00 (QA sign-off, deadline Friday 15:00) and
/// started at 15:30: on start it handles the missed deadline and performs its escalation.
/// People act; the loop wakes and performs `S`'s notification. Stopped again until Monday
/// 09:50 and started: it opens `T`'s gate (Monday 00:00) and `U`'s (09:45), each at its own
/// instant, and waits at `U`. Time never moves while it runs: the timer is virtual.
#[tokio::test]
async fn the_loop_catches_up_after_downtime_across_a_deadline_and_gates() {
    let world = World::new();
    let (clock, notifier, id) = (Arc::clone(&world.clock), Arc::clone(&world.notifier), world.id.clone());
    let parts = || world.parts();
    let (mut driver, _) = Driver::open_or_create(parts(), &program(), &id, Start::default()).unwrap();
    drive(
        &mut driver,
        &[
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
        ],
    );
    assert_eq!(driver.instance().current_node().unwrap().as_str(), "Q");
    let version = driver.version();
    drop(driver);

    // Downtime until Friday 15:30, past Q's deadline.
    let timer = VirtualTimer::new(Arc::clone(&clock));
    timer.advance_to(local("2026-11-27 15:30"));
    let (driver, _) = Driver::open_or_create(parts(), &program(), &id, Start::default()).unwrap();
    let service = Service::new(driver, timer.clone());
    let handle = service.handle();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.run(async {
        let _ = stop_rx.await;
    }));
    let escalated = |n: &RecordingNotifier| n.delivered().iter().any(|d| d.key.contains("/Q/"));
    eventually("Q's escalation was posted", || escalated(&notifier)).await;
    let to: Vec<Audience> = notifier.delivered().into_iter().filter(|d| d.key.contains("/Q/")).map(|d| d.to).collect();
    assert_eq!(to, [Audience::Role("product_manager".into()), Audience::Channel("#kars-releases".into())]);
    // People act while it runs; each act wakes the loop, which performs S's notification.
    handle.handle_event(complete("Q", "carol", None)).await.unwrap();
    handle.handle_event(complete("R", "erin", None)).await.unwrap();
    eventually("S's notification was posted", || notifier.delivered().iter().any(|d| d.key.contains("/S/"))).await;
    assert_eq!(handle.now(), local("2026-11-27 15:30"), "a virtual timer does not move time");
    stop_tx.send(()).unwrap();
    running.await.unwrap().unwrap();
    let at_t = handle.read(|d| d.instance().current_node().map(ToString::to_string)).await;
    assert_eq!(at_t.as_deref(), Some("T"));
    drop(handle);

    // Downtime until Monday 09:50, past T's and U's gates.
    timer.advance_to(local("2026-11-30 09:50"));
    let (driver, _) = Driver::open_or_create(parts(), &program(), &id, Start::default()).unwrap();
    let service = Service::new(driver, timer.clone());
    let handle = service.handle();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.run(async {
        let _ = stop_rx.await;
    }));
    let mut at = None;
    for _ in 0..2000 {
        at = handle.read(|d| d.instance().current_node().map(ToString::to_string)).await;
        if at.as_deref() == Some("U") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(at.as_deref(), Some("U"));
    stop_tx.send(()).unwrap();
    running.await.unwrap().unwrap();

    // The journal since Friday 11:00: the deadline and both gates, at their own instants.
    let journal = read_journal(world.store.as_ref(), &id).unwrap();
    let account = kars::workflow::driver::replay_journal(&program(), &journal).unwrap();
    let workflow = program().workflow().clone();
    let node = |n| workflow.node_id(n).map(ToString::to_string).unwrap_or_default();
    let mut seen = Vec::new();
    for (entry, caused) in journal.entries.iter().zip(&account.caused).skip(usize::try_from(version).unwrap()) {
        let Entry::Input(record) = entry else { continue };
        if record.input != Input::Timeout {
            continue;
        }
        for notice in &caused.notices {
            match notice.kind {
                NoticeKind::DeadlineMissed { node: n } => seen.push(format!("deadline {} {}", node(n), notice.at)),
                NoticeKind::GateOpened { node: n } => seen.push(format!("gate {} {}", node(n), notice.at)),
                _ => {}
            }
        }
    }
    assert_eq!(
        seen,
        [
            format!("deadline Q {}", local("2026-11-27 15:00")),
            format!("gate T {}", local("2026-11-30 00:00")),
            format!("gate U {}", local("2026-11-30 09:45")),
        ]
    );
}

/// Shutdown does not wait for a retry: J's announcement fails transiently and waits for its
/// retry (on a virtual timer that never moves); the loop stops when told, nothing is
/// acknowledged, and reopening the journal finds J pending under the same key. Retried with
/// the notifier healthy again, it is delivered once.
#[tokio::test]
async fn shutdown_abandons_a_waiting_retry_and_the_effect_stays_pending() {
    use kars::workflow::adapter::FailurePlan;
    let world = World::new();
    let (clock, notifier, id) = (Arc::clone(&world.clock), Arc::clone(&world.notifier), world.id.clone());
    let parts = || world.parts();
    let (mut driver, _) = Driver::open_or_create(parts(), &program(), &id, Start::default()).unwrap();
    drive(
        &mut driver,
        &[
            ("2026-11-23 09:00", "B", "erin", None),
            ("2026-11-23 09:30", "C", "frank", None),
            ("2026-11-24 10:00", "D", "alice", None),
            ("2026-11-25 10:00", "E", "alice", None),
            ("2026-11-25 14:00", "F", "bob", Some("approved")),
        ],
    );
    driver.run_until(local("2026-11-26 17:30")).unwrap();
    let report = driver.handle_event(complete("I", "erin", None)).unwrap();
    let keys: Vec<String> = report.pending.iter().map(|e| e.key.to_string()).collect();
    assert_eq!(keys, ["kars/2026-W48/J/1"]);
    notifier.set_failures(FailurePlan::transient(1));

    let service = Service::new(driver, VirtualTimer::new(Arc::clone(&clock)));
    let handle = service.handle();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.run(async {
        let _ = stop_rx.await;
    }));
    eventually("J's first attempt failed", || !notifier.calls().is_empty()).await;
    stop_tx.send(()).unwrap();
    running.await.unwrap().unwrap();
    assert!(notifier.delivered().is_empty());
    let key: kars::workflow::EffectKey = serde_json::from_str("\"kars/2026-W48/J/1\"").unwrap();
    assert!(!handle.read(|d| d.is_acknowledged(&key)).await);
    drop(handle);

    let (mut driver, _) = Driver::open_or_create(parts(), &program(), &id, Start::default()).unwrap();
    let pending: Vec<String> = driver.pending_effects().map(|e| e.key.to_string()).collect();
    assert_eq!(pending, ["kars/2026-W48/J/1"]);
    let report = driver.run_effects().unwrap();
    assert_eq!(report.effects.len(), 1);
    let delivered: Vec<String> = notifier.delivered().into_iter().map(|n| n.key).collect();
    assert_eq!(delivered, ["kars/2026-W48/J/1/channel:releases"]);
}
