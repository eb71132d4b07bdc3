//! The driver: effects through fake adapters (transient, permanent, duplicate and crashed
//! calls), recovery from a crash at every journal write of a KARS week, spec changes, writer
//! conflicts, and the examples' flows.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveDateTime, Utc};
use kars::workflow::InstanceId;
use kars::workflow::adapter::{
    AdapterError, Audience, FailurePlan, MergeOutcome, MergeRequest, OpenPullRequest, PullRequest, RecordingNotifier,
    RecordingVcs, ReviewState, Vcs,
};
use kars::workflow::driver::{
    Adapters, Attempt, Driver, DriverConfig, DriverError, EffectStatus, Entry, HistoryInMemory, LogKind, Parts,
    Program, RecordingOperations, Refusals, RetryPolicy, Roster, Scripted, SpecText, VirtualClock, read_journal,
};
use kars::workflow::journal::{JournalError, MemoryStore, Store, Stored};
use kars::workflow::{ActionOutcome, Event};

#[path = "../examples/sync_console.rs"]
#[allow(dead_code)]
mod sync_console;

const SPEC: &str = include_str!("../workflows/kars-release.yaml");

fn program_of(yaml: &str) -> Program {
    Program::new(&kars::spec::load(yaml, "kars-release.yaml").unwrap()).unwrap()
}

fn program() -> Program {
    static PROGRAM: OnceLock<Program> = OnceLock::new();
    PROGRAM.get_or_init(|| program_of(SPEC)).clone()
}

fn roster() -> &'static Roster {
    static ROSTER: OnceLock<Roster> = OnceLock::new();
    ROSTER.get_or_init(|| Roster::from_spec(kars::spec::load(SPEC, "kars-release.yaml").unwrap().spec()))
}

/// A local Toronto time (`2026-11-23 09:00`) as UTC.
fn local(s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    kars::spec::calendar::resolve_local(chrono_tz::America::Toronto, naive)
}

fn id() -> InstanceId {
    InstanceId::new("kars").unwrap()
}

/// A store over a shared [`MemoryStore`] whose `n`th append (from 1, counted over all handles
/// sharing `appends`) fails as a crash would: nothing written, an error returned.
#[derive(Clone)]
struct CrashingStore {
    inner: Arc<MemoryStore>,
    appends: Arc<AtomicU64>,
    crash_at: u64,
}

impl CrashingStore {
    fn healthy(inner: &Arc<MemoryStore>, appends: &Arc<AtomicU64>) -> Self {
        Self { inner: Arc::clone(inner), appends: Arc::clone(appends), crash_at: 0 }
    }
}

impl Store for CrashingStore {
    fn create(&self, id: &InstanceId, header: &[u8]) -> Result<(), JournalError> {
        self.inner.create(id, header)
    }
    fn append(&self, id: &InstanceId, expected: u64, records: &[&[u8]]) -> Result<u64, JournalError> {
        let n = self.appends.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.crash_at {
            let source = std::io::Error::other("simulated crash");
            return Err(JournalError::Io { path: "memory".into(), source });
        }
        self.inner.append(id, expected, records)
    }
    fn read(&self, id: &InstanceId) -> Result<Stored, JournalError> {
        self.inner.read(id)
    }
    fn list(&self) -> Result<Vec<InstanceId>, JournalError> {
        self.inner.list()
    }
}

/// The fake world: shared across driver restarts, so its deduplicated logs span crashes.
struct World {
    notifier: Arc<RecordingNotifier>,
    vcs: Arc<RecordingVcs>,
    ops: Arc<RecordingOperations>,
    clock: Arc<VirtualClock>,
}

impl World {
    fn new(start: DateTime<Utc>) -> Self {
        let vcs = RecordingVcs::new();
        vcs.set_branch("kars-dev", "c1");
        vcs.set_branch("kars-prod", "c0");
        vcs.set_branch("feature/login", "c2");
        Self {
            notifier: Arc::new(RecordingNotifier::new()),
            vcs: Arc::new(vcs),
            ops: Arc::new(RecordingOperations::new()),
            clock: Arc::new(VirtualClock::new(start)),
        }
    }

    fn parts<S: Store>(&self, store: S, config: DriverConfig) -> Parts<S, Arc<VirtualClock>> {
        let adapters = Adapters::new(Arc::clone(&self.notifier))
            .with_vcs(Arc::clone(&self.vcs))
            .with_operations(Arc::clone(&self.ops));
        Parts { store, clock: Arc::clone(&self.clock), adapters, config }
    }

    /// Every key in the fakes' deduplicated logs, with how often it occurs there.
    fn dedup_logs(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.notifier.delivered().into_iter().map(|n| n.key).collect();
        keys.extend(self.vcs.merges().into_iter().map(|(r, _)| r.key));
        keys.extend(self.ops.performed().into_iter().map(|o| o.key));
        keys.extend(
            self.vcs
                .calls()
                .into_iter()
                .filter(|c| c.operation == "open_pull_request" && !c.duplicate && c.error.is_none())
                .filter_map(|c| c.key),
        );
        keys.sort();
        keys
    }
}

fn fast_retries() -> DriverConfig {
    DriverConfig {
        retry: RetryPolicy {
            max_attempts: 4,
            base: std::time::Duration::from_secs(1),
            cap: std::time::Duration::from_secs(4),
        },
        ..DriverConfig::default()
    }
}

/// One step of a scripted week.
#[derive(Clone)]
enum Step {
    /// Let time pass until then.
    Until(&'static str),
    /// At that time, a person on the roster completes a node (with an outcome).
    Act(&'static str, &'static str, &'static str, Option<&'static str>),
}

fn week(deploy_succeeds: bool) -> Vec<Step> {
    use Step::{Act, Until};
    let mut steps = vec![
        Act("2026-11-23 09:00", "B", "erin", None),
        Act("2026-11-23 09:30", "C", "frank", None),
        Act("2026-11-24 10:00", "D", "alice", None),
        Act("2026-11-25 10:00", "E", "alice", None),
        Act("2026-11-25 14:00", "F", "bob", Some("approved")),
        Act("2026-11-26 17:30", "I", "erin", None),
        Act("2026-11-26 18:00", "K", "erin", None),
        Act("2026-11-27 09:30", "L", "carol", None),
        Act("2026-11-27 10:00", "M", "dave", None),
        Act("2026-11-27 11:00", "N", "carol", Some("Yes")),
        Act("2026-11-27 14:00", "Q", "carol", None),
        Act("2026-11-27 14:30", "R", "erin", None),
        Act("2026-11-30 09:50", "U", "dave", None),
        Act("2026-11-30 09:55", "W", "frank", Some("approved")),
        Act("2026-11-30 10:10", "Z", "dave", None),
    ];
    if deploy_succeeds {
        steps.push(Act("2026-11-30 10:30", "AE", "erin", None));
    }
    steps.push(Until("2026-11-30 12:00"));
    steps
}

fn event(node: &str, person: &str, outcome: Option<&str>) -> Event {
    let roster = roster();
    Event::Complete {
        node: kars::spec::NodeId::new(node).unwrap(),
        actor: roster.actor(person).unwrap(),
        outcome: outcome.map(Into::into),
    }
}

/// Runs one step: time passes until the step's instant, then the act.
fn run_step<S: Store>(driver: &mut Driver<S, Arc<VirtualClock>>, step: &Step) -> Result<(), DriverError> {
    match step {
        Step::Until(at) => driver.run_until(local(at)).map(drop),
        Step::Act(at, node, person, outcome) => {
            driver.run_until(local(at))?;
            driver.handle_event(event(node, person, *outcome))?;
            driver.run_effects().map(drop)
        }
    }
}

fn run_week(world: &World, store: Arc<MemoryStore>, steps: &[Step]) -> Driver<Arc<MemoryStore>, Arc<VirtualClock>> {
    let mut driver = Driver::create(world.parts(store, fast_retries()), &program(), &id(), None).unwrap();
    for step in steps {
        run_step(&mut driver, step).unwrap();
    }
    driver
}

#[test]
fn a_clean_week_performs_every_effect_once() {
    let world = World::new(local("2026-11-23 08:00"));
    let driver = run_week(&world, Arc::new(MemoryStore::new()), &week(true));
    let instance = driver.instance();
    let cycles = instance.cycle_outcomes();
    assert_eq!(cycles.len(), 1);
    assert_eq!(cycles[0].outcome, "released");
    assert_eq!(instance.release().as_str(), "2026-W49");
    let delivered: Vec<(Audience, String)> = world.notifier.delivered().into_iter().map(|n| (n.to, n.key)).collect();
    assert_eq!(
        delivered,
        [
            (Audience::Channel("#kars-releases".into()), "kars/2026-W48/J/1/channel:releases".into()),
            (Audience::Channel("#kars-releases".into()), "kars/2026-W48/S/1/channel:releases".into()),
            (Audience::Channel("#kars-releases".into()), "kars/2026-W48/AF/1/channel:releases".into()),
            (Audience::Channel("#kars-releases".into()), "kars/2026-W48/AG/1/channel:releases".into()),
        ]
    );
    let merges: Vec<(String, String)> =
        world.vcs.merges().into_iter().map(|(r, _)| (r.from.to_string(), r.to)).collect();
    assert_eq!(merges, [("feature/*".into(), "kars-dev".into()), ("kars-dev".into(), "kars-prod".into())]);
    assert_eq!(world.vcs.pull_requests().len(), 1);
    let ops: Vec<String> = world.ops.performed().into_iter().map(|o| o.node.to_string()).collect();
    assert_eq!(ops, ["H", "Y", "AD"]);
    assert_eq!(driver.pending_effects().count(), 0);
    // The journal replays to the same instance.
    let store = Arc::clone(driver.store());
    let reopened = Driver::open(world.parts(store, fast_retries()), &program(), &id()).unwrap();
    assert_eq!(reopened.instance(), driver.instance());
    assert_eq!(reopened.pending_effects().count(), 0);
}

#[test]
fn transient_failures_are_retried_with_backoff_and_each_key_lands_once() {
    let world = World::new(local("2026-11-23 08:00"));
    world.notifier.set_failures(FailurePlan::transient(2));
    world.vcs.set_failures(FailurePlan::transient(3));
    world.ops.script("Y", Scripted::Flaky(2, ActionOutcome::Succeeded));
    let driver = run_week(&world, Arc::new(MemoryStore::new()), &week(true));
    assert_eq!(driver.instance().cycle_outcomes()[0].outcome, "released");
    let keys = world.dedup_logs();
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a key reached a deduplicated log twice: {keys:?}");
    let retries: Vec<(String, u32)> = driver
        .log()
        .iter()
        .filter_map(|e| match &e.kind {
            LogKind::Retrying { attempt, .. } => Some((e.node.to_string(), *attempt)),
            _ => None,
        })
        .collect();
    assert_eq!(
        retries,
        [
            ("G".into(), 1),
            ("G".into(), 2),
            ("G".into(), 3),
            ("J".into(), 1),
            ("J".into(), 2),
            ("Y".into(), 1),
            ("Y".into(), 2)
        ]
    );
    // Backoff goes through the clock: the J retries waited 1 s then 2 s after 17:30.
    let j_done = driver.log().iter().find(|e| e.node.as_str() == "J" && matches!(e.kind, LogKind::Performed(_)));
    assert_eq!(j_done.map(|e| e.at), Some(local("2026-11-26 17:30") + chrono::Duration::seconds(3)));
}

#[test]
fn a_failed_deploy_takes_the_rollback_path() {
    let world = World::new(local("2026-11-23 08:00"));
    world.ops.script("Y", Scripted::Broken);
    let driver = run_week(&world, Arc::new(MemoryStore::new()), &week(false));
    assert_eq!(driver.instance().cycle_outcomes()[0].outcome, "incident");
    let ops: Vec<String> = world.ops.performed().into_iter().map(|o| o.node.to_string()).collect();
    assert_eq!(ops, ["H", "AB"]);
    let incident: Vec<Audience> =
        world.notifier.delivered().into_iter().filter(|n| n.key.contains("/AC/")).map(|n| n.to).collect();
    assert_eq!(incident, [Audience::Channel("#kars-incidents".into()), Audience::Role("devops".into())]);
    // The failure is journaled: Y's acknowledgement says failed, and its result is `failed`.
    let journal = read_journal(&**driver.store(), &id()).unwrap();
    let y = journal.entries.iter().find_map(|e| match e {
        Entry::Done(d) if d.key.as_str() == "kars/2026-W48/Y/1" => Some(d.status.clone()),
        _ => None,
    });
    assert!(matches!(y, Some(EffectStatus::Failed(f)) if f.to_string().contains("injected permanent failure")));
}

#[test]
fn retries_run_out_into_a_failed_result() {
    let world = World::new(local("2026-11-23 08:00"));
    world.ops.script("Y", Scripted::Flaky(10, ActionOutcome::Succeeded));
    let driver = run_week(&world, Arc::new(MemoryStore::new()), &week(false));
    assert_eq!(driver.instance().cycle_outcomes()[0].outcome, "incident");
    let failed = driver.log().iter().filter(|e| matches!(e.kind, LogKind::Failed { .. })).count();
    assert_eq!(failed, 1);
}

#[test]
fn a_notification_that_fails_for_good_is_logged_and_the_week_goes_on() {
    let world = World::new(local("2026-11-23 08:00"));
    world.notifier.set_failures(FailurePlan::permanent());
    let driver = run_week(&world, Arc::new(MemoryStore::new()), &week(true));
    assert_eq!(driver.instance().cycle_outcomes()[0].outcome, "released");
    let failed: Vec<&str> =
        driver.log().iter().filter(|e| matches!(e.kind, LogKind::Failed { .. })).map(|e| e.node.as_str()).collect();
    assert_eq!(failed, ["J", "S", "AF", "AG"]);
    assert!(world.notifier.delivered().is_empty());
}

#[test]
fn results_reported_later_move_the_token() {
    let world = World::new(local("2026-11-23 08:00"));
    world.ops.script("H", Scripted::Later);
    let mut driver =
        Driver::create(world.parts(Arc::new(MemoryStore::new()), fast_retries()), &program(), &id(), None).unwrap();
    for step in &week(true)[..5] {
        run_step(&mut driver, step).unwrap();
    }
    assert_eq!(driver.instance().current_node().unwrap().as_str(), "H");
    let h: kars::workflow::EffectKey = serde_json::from_str("\"kars/2026-W48/H/1\"").unwrap();
    assert!(driver.is_acknowledged(&h));
    let dave = kars::workflow::Reporter::Person(roster().actor("dave").unwrap());
    driver.report(kars::spec::NodeId::new("H").unwrap(), ActionOutcome::Succeeded, dave.clone()).unwrap();
    assert_eq!(driver.instance().current_node().unwrap().as_str(), "I");
    // A second report is refused and (by default) leaves no trace in the journal, nor in memory.
    let version = driver.version();
    let recorded = driver.instance().history().next_seq();
    let err = driver.report(kars::spec::NodeId::new("H").unwrap(), ActionOutcome::Succeeded, dave).unwrap_err();
    assert!(err.is_refusal(), "{err}");
    assert_eq!(driver.store().version(&id()).unwrap(), version);
    assert_eq!(driver.instance().history().next_seq(), recorded);
    // The journaled records were released from memory (the default); the journal has them all.
    assert!(driver.instance().history().is_empty());
    let journaled = read_journal(driver.store().as_ref(), &id()).unwrap();
    let inputs: Vec<_> =
        journaled.entries.iter().filter_map(|e| if let Entry::Input(r) = e { Some(r) } else { None }).collect();
    assert_eq!(inputs.len() as u64, recorded);
    assert_eq!(inputs.last().map(|r| r.verdict.clone()), Some(kars::workflow::Verdict::Accepted));
}

#[test]
fn refusals_can_be_journaled_as_audit_records() {
    let world = World::new(local("2026-11-23 08:00"));
    let config = DriverConfig { refusals: Refusals::Journal, ..fast_retries() };
    let store = Arc::new(MemoryStore::new());
    let mut driver = Driver::create(world.parts(Arc::clone(&store), config), &program(), &id(), None).unwrap();
    let err = driver.handle_event(event("B", "alice", None)).unwrap_err();
    assert!(err.to_string().contains("`alice` may not act on `B`"), "{err}");
    assert_eq!(store.version(&id()).unwrap(), 2);
    let reopened = Driver::open(world.parts(store, config), &program(), &id()).unwrap();
    assert_eq!(reopened.instance(), driver.instance());
}

/// Crashes at every journal append of the week (an input before its effects, an
/// acknowledgement after its adapter call), reopens from the journal each time, and finishes
/// the week: the instance equals the one that never crashed, and every idempotency key reached
/// the fakes' deduplicated logs exactly once. With the default config, which releases
/// journaled records from memory.
#[test]
fn a_crash_at_every_journal_write_recovers_the_same_instance() {
    let config = fast_retries();
    assert_eq!(config.memory, HistoryInMemory::ReleaseJournaled);
    let reference = crash_at_every_journal_write(config);
    assert!(reference.instance().history().is_empty());
    assert!(reference.instance().history().next_seq() > 30);
}

/// The same with the whole history kept in memory: it equals the journal's.
#[test]
fn a_crash_at_every_journal_write_recovers_the_same_instance_and_history_when_kept() {
    let config = DriverConfig { memory: HistoryInMemory::Keep, ..fast_retries() };
    let reference = crash_at_every_journal_write(config);
    let history = reference.instance().history();
    assert_eq!(history.first_seq(), 0);
    let journaled = read_journal(reference.store().inner.as_ref(), &id()).unwrap();
    let inputs: Vec<_> =
        journaled.entries.into_iter().filter_map(|e| if let Entry::Input(r) = e { Some(r) } else { None }).collect();
    assert_eq!(history.records().collect::<Vec<_>>(), inputs);
}

/// Runs the crash test with `config`; returns the driver that never crashed.
fn crash_at_every_journal_write(config: DriverConfig) -> Driver<CrashingStore, Arc<VirtualClock>> {
    let steps = week(true);
    let reference_world = World::new(local("2026-11-23 08:00"));
    let counted = Arc::new(AtomicU64::new(0));
    let store = CrashingStore::healthy(&Arc::new(MemoryStore::new()), &counted);
    let mut reference = Driver::create(reference_world.parts(store, config), &program(), &id(), None).unwrap();
    for step in &steps {
        run_step(&mut reference, step).unwrap();
    }
    let appends = counted.load(Ordering::SeqCst);
    assert!(appends > 30, "{appends}");
    let reference_keys = reference_world.dedup_logs();

    for crash_at in 1..=appends {
        let world = World::new(local("2026-11-23 08:00"));
        let memory = Arc::new(MemoryStore::new());
        let counter = Arc::new(AtomicU64::new(0));
        let crashing = CrashingStore { inner: Arc::clone(&memory), appends: Arc::clone(&counter), crash_at };
        let reopen = || {
            let store = CrashingStore::healthy(&memory, &counter);
            Driver::open(world.parts(store, config), &program(), &id()).unwrap()
        };
        let mut crashed = false;
        let mut driver = match Driver::create(world.parts(crashing, config), &program(), &id(), None) {
            Ok(driver) => driver,
            Err(e) => {
                assert!(matches!(e, DriverError::Journal(_)), "crash {crash_at}: {e}");
                crashed = true;
                reopen()
            }
        };
        for step in &steps {
            let (until, act) = match step {
                Step::Until(at) => (local(at), None),
                Step::Act(at, node, person, outcome) => (local(at), Some(event(node, person, *outcome))),
            };
            // Time passes (repeatable: it resumes from the journal).
            while let Err(e) = driver.run_until(until) {
                assert!(matches!(e, DriverError::Journal(_)), "crash {crash_at}: {e}");
                crashed = true;
                drop(driver);
                driver = reopen();
            }
            let Some(act) = act else { continue };
            let before = driver.instance().history().next_seq();
            while let Err(e) = driver.handle_event(act.clone()) {
                assert!(matches!(e, DriverError::Journal(_)), "crash {crash_at}: {e}");
                crashed = true;
                drop(driver);
                driver = reopen();
                // An act whose input became durable before the crash is not repeated.
                if driver.instance().history().next_seq() > before {
                    driver.resume().unwrap();
                    break;
                }
            }
        }
        assert!(crashed, "append {crash_at} never happened");
        assert_eq!(driver.instance(), reference.instance(), "crash at append {crash_at}");
        assert_eq!(world.dedup_logs(), reference_keys, "crash at append {crash_at}");
    }
    reference
}

#[test]
fn reopening_between_every_step_changes_nothing() {
    let steps = week(true);
    let reference_world = World::new(local("2026-11-23 08:00"));
    let reference = run_week(&reference_world, Arc::new(MemoryStore::new()), &steps);
    let world = World::new(local("2026-11-23 08:00"));
    let store = Arc::new(MemoryStore::new());
    drop(Driver::create(world.parts(Arc::clone(&store), fast_retries()), &program(), &id(), None).unwrap());
    for step in &steps {
        let mut driver = Driver::open(world.parts(Arc::clone(&store), fast_retries()), &program(), &id()).unwrap();
        run_step(&mut driver, step).unwrap();
    }
    let driver = Driver::open(world.parts(store, fast_retries()), &program(), &id()).unwrap();
    assert_eq!(driver.instance(), reference.instance());
    assert_eq!(world.dedup_logs(), reference_world.dedup_logs());
}

#[test]
fn a_crash_between_the_call_and_its_acknowledgement_repeats_the_call_under_the_same_key() {
    let world = World::new(local("2026-11-23 08:00"));
    let memory = Arc::new(MemoryStore::new());
    let counter = Arc::new(AtomicU64::new(0));
    let mut driver =
        Driver::create(world.parts(CrashingStore::healthy(&memory, &counter), fast_retries()), &program(), &id(), None)
            .unwrap();
    for step in &week(true)[..4] {
        run_step(&mut driver, step).unwrap();
    }
    driver.run_until(local("2026-11-25 14:00")).unwrap();
    drop(driver);
    // F's completion is durable; G's merge runs, then the append of its acknowledgement fails.
    let crash_at = counter.load(Ordering::SeqCst) + 2; // F's input, then G's acknowledgement
    let crashing = CrashingStore { inner: Arc::clone(&memory), appends: Arc::clone(&counter), crash_at };
    let mut driver = Driver::open(world.parts(crashing, fast_retries()), &program(), &id()).unwrap();
    let report = driver.handle_event(event("F", "bob", Some("approved"))).unwrap();
    // The input is journaled; its effect (G's merge) is pending, not performed.
    let pending: Vec<String> = report.pending.iter().map(|e| e.key.to_string()).collect();
    assert_eq!(pending, ["kars/2026-W48/G/1"]);
    assert!(world.vcs.merges().is_empty());
    assert!(driver.run_effects().is_err());
    assert_eq!(world.vcs.merges().len(), 1);
    drop(driver);
    let mut driver =
        Driver::open(world.parts(CrashingStore::healthy(&memory, &counter), fast_retries()), &program(), &id())
            .unwrap();
    let pending: Vec<String> = driver.pending_effects().map(|e| e.key.to_string()).collect();
    assert_eq!(pending, ["kars/2026-W48/G/1"]);
    driver.resume().unwrap();
    assert_eq!(driver.instance().current_node().unwrap().as_str(), "I");
    let merge_calls: Vec<bool> =
        world.vcs.calls().into_iter().filter(|c| c.operation == "merge").map(|c| c.duplicate).collect();
    assert_eq!(merge_calls, [false, true]);
    assert_eq!(world.vcs.merges().len(), 1);
}

#[test]
fn a_changed_spec_is_refused_on_reopen() {
    let world = World::new(local("2026-11-23 08:00"));
    let store = Arc::new(MemoryStore::new());
    let spec = SpecText { origin: "kars-release.yaml".into(), text: SPEC.into() };
    let driver =
        Driver::create(world.parts(Arc::clone(&store), fast_retries()), &program(), &id(), Some(spec)).unwrap();
    drop(driver);
    let changed = program_of(&SPEC.replace("is live in production.", "is live."));
    let err = Driver::open(world.parts(Arc::clone(&store), fast_retries()), &changed, &id()).unwrap_err();
    assert!(matches!(err, DriverError::SpecChanged { .. }), "{err}");
    assert!(err.to_string().contains("was started with spec fingerprint"), "{err}");
    // The stored text is the spec it started with.
    let journal = read_journal(&*store, &id()).unwrap();
    assert_eq!(journal.header.spec.map(|s| s.text).as_deref(), Some(SPEC));
}

#[test]
fn a_stale_writer_reloads_and_handles_its_input_again() {
    let world = World::new(local("2026-11-23 08:00"));
    let store = Arc::new(MemoryStore::new());
    let mut a = Driver::create(world.parts(Arc::clone(&store), fast_retries()), &program(), &id(), None).unwrap();
    let mut b = Driver::open(world.parts(Arc::clone(&store), fast_retries()), &program(), &id()).unwrap();
    world.clock.set(local("2026-11-23 09:00"));
    a.handle_event(event("B", "erin", None)).unwrap();
    world.clock.set(local("2026-11-23 09:30"));
    b.handle_event(event("C", "frank", None)).unwrap();
    assert_eq!(b.instance().current_node().unwrap().as_str(), "D");
    let reopened = Driver::open(world.parts(store, fast_retries()), &program(), &id()).unwrap();
    assert_eq!(reopened.instance(), b.instance());
}

#[test]
fn bad_journals_are_reported_not_replayed() {
    let world = World::new(local("2026-11-23 08:00"));
    let store = Arc::new(MemoryStore::new());
    store.create(&id(), b"not json").unwrap();
    let err = Driver::open(world.parts(Arc::clone(&store), fast_retries()), &program(), &id()).unwrap_err();
    assert!(matches!(err, DriverError::BadHeader { .. }), "{err}");
    let other = InstanceId::new("other").unwrap();
    assert!(matches!(
        Driver::open(world.parts(Arc::clone(&store), fast_retries()), &program(), &other),
        Err(DriverError::Journal(JournalError::NotFound { .. }))
    ));
    let fresh = InstanceId::new("fresh").unwrap();
    drop(Driver::create(world.parts(Arc::clone(&store), fast_retries()), &program(), &fresh, None).unwrap());
    store.append(&fresh, 1, &[b"{\"input\": 3}"]).unwrap();
    let err = Driver::open(world.parts(Arc::clone(&store), fast_retries()), &program(), &fresh).unwrap_err();
    assert!(matches!(err, DriverError::BadRecord { index: 1, .. }), "{err}");
    // An input journaled twice (a journal edited or mixed up) is named, not replayed.
    let twice = InstanceId::new("twice").unwrap();
    drop(Driver::create(world.parts(Arc::clone(&store), fast_retries()), &program(), &twice, None).unwrap());
    let stored = store.read(&twice).unwrap();
    let start = stored.records.iter().position(|r| r.starts_with(br#"{"input""#)).expect("the start is journaled");
    let again = stored.records.len();
    store.append(&twice, again as u64, &[stored.records[start].as_slice()]).unwrap();
    let err = Driver::open(world.parts(store, fast_retries()), &program(), &twice).unwrap_err();
    assert!(matches!(err, DriverError::BadRecord { index, .. } if index == again), "{err}");
    assert!(err.to_string().contains("has sequence number 0, expected 1"), "{err}");
}

#[test]
fn the_sync_console_example_runs() {
    let driver = sync_console::run(std::io::sink()).unwrap();
    let instance = driver.instance();
    assert_eq!(instance.current_node().map(|n| n.as_str()), Some("K"));
    let done: Vec<&str> = driver.log().iter().map(|e| e.key.as_str()).collect();
    assert_eq!(done, ["kars-release/2026-W48/G/1", "kars-release/2026-W48/H/1", "kars-release/2026-W48/J/1"]);
}

/// The split API: an input journals its record and lists its effects without calling an
/// adapter; a runner performs one without the driver; a crash before `complete_effect` leaves
/// it pending after reopening, under the same key, and performing it again reaches the
/// adapter's deduplicated log once.
#[test]
fn an_effect_taken_and_performed_but_not_acknowledged_is_pending_again_after_reopening() {
    let world = World::new(local("2026-11-23 08:00"));
    let store = Arc::new(MemoryStore::new());
    let mut driver = Driver::create(world.parts(Arc::clone(&store), fast_retries()), &program(), &id(), None).unwrap();
    for step in &week(true)[..4] {
        run_step(&mut driver, step).unwrap();
    }
    driver.run_until(local("2026-11-25 14:00")).unwrap();
    let report = driver.handle_event(event("F", "bob", Some("approved"))).unwrap();
    assert!(report.effects.is_empty());
    assert_eq!(report.pending.len(), 1);
    let due = driver.take_due_effects();
    assert_eq!(due, report.pending);
    assert!(driver.take_due_effects().is_empty(), "an effect in flight is not handed out twice");
    let runner = driver.effect_runner();
    let Attempt::Finished(_) = runner.attempt(&due[0], 1, local("2026-11-25 14:00")) else {
        panic!("the merge succeeds at once")
    };
    assert_eq!(world.vcs.merges().len(), 1);
    drop(driver); // the crash: performed, not acknowledged
    let mut driver = Driver::open(world.parts(store, fast_retries()), &program(), &id()).unwrap();
    let again = driver.take_due_effects();
    assert_eq!(again.iter().map(|e| &e.key).collect::<Vec<_>>(), [&due[0].key]);
    let outcome = driver.effect_runner().perform(&again[0], driver.clock());
    let report = driver.complete_effect(&again[0].key, outcome).unwrap();
    assert_eq!(report.effects.len(), 1);
    assert!(driver.is_acknowledged(&due[0].key));
    assert_eq!(world.vcs.merges().len(), 1);
    let merge_calls: Vec<bool> =
        world.vcs.calls().into_iter().filter(|c| c.operation == "merge").map(|c| c.duplicate).collect();
    assert_eq!(merge_calls, [false, true]);
    // Acknowledging it again changes nothing.
    let version = driver.version();
    let outcome = driver.effect_runner().perform(&again[0], driver.clock());
    assert!(!driver.complete_effect(&again[0].key, outcome).unwrap().committed());
    assert_eq!(driver.version(), version);
}

/// `who_can_act` gives each person on the roster the engine's own verdict: at `F`
/// (`distinct_from: [E]`) alice, who completed `E`, is refused for separation of duties,
/// people without a reviewing role are refused as unauthorized, and the verdicts agree with
/// what acting does.
#[test]
fn who_can_act_applies_distinct_from() {
    use kars::workflow::EngineError;
    let world = World::new(local("2026-11-23 08:00"));
    let store = Arc::new(MemoryStore::new());
    let (mut driver, _) = Driver::open_or_create(
        world.parts(Arc::clone(&store), fast_retries()),
        &program(),
        &id(),
        kars::workflow::driver::Start::default(),
    )
    .unwrap();
    for step in &week(true)[..4] {
        run_step(&mut driver, step).unwrap();
    }
    driver.run_until(local("2026-11-25 11:00")).unwrap();
    let verdicts = driver.who_can_act(local("2026-11-25 11:00"));
    let allowed: Vec<&str> = verdicts.iter().filter(|v| v.allowed()).map(|v| v.person.as_str()).collect();
    assert_eq!(allowed, ["bob", "frank"]);
    let alice = verdicts.iter().find(|v| v.person.as_str() == "alice").unwrap();
    assert!(
        matches!(&alice.verdict, Err(EngineError::SeparationOfDuties { other, .. }) if other.as_str() == "E"),
        "{alice:?}"
    );
    assert!(verdicts.iter().filter(|v| !v.allowed()).all(|v| v.refused_for_who_they_are()));
    // The dry run recorded nothing, and acting agrees with it.
    let version = driver.version();
    assert_eq!(driver.version(), store.version(&id()).unwrap());
    let err = driver.handle_event(event("F", "alice", Some("approved"))).unwrap_err();
    assert_eq!(err.refusal(), alice.verdict.as_ref().err());
    assert_eq!(driver.version(), version);
    // Opening again through open_or_create finds the instance instead of starting a new one.
    drop(driver);
    let (reopened, report) = Driver::open_or_create(
        world.parts(store, fast_retries()),
        &program(),
        &id(),
        kars::workflow::driver::Start::default(),
    )
    .unwrap();
    assert!(!report.committed());
    assert_eq!(reopened.instance().current_node().unwrap().as_str(), "F");
}

/// A VCS whose first merge is throttled for 90 seconds (a rate limit's `Retry-After`).
struct ThrottledOnce {
    inner: Arc<RecordingVcs>,
    throttled: std::sync::atomic::AtomicBool,
}

impl Vcs for ThrottledOnce {
    fn open_pull_request(&self, request: &OpenPullRequest) -> Result<PullRequest, AdapterError> {
        self.inner.open_pull_request(request)
    }
    fn review_state(&self, id: &str) -> Result<ReviewState, AdapterError> {
        self.inner.review_state(id)
    }
    fn merge(&self, request: &MergeRequest) -> Result<MergeOutcome, AdapterError> {
        if !self.throttled.swap(true, Ordering::SeqCst) {
            let wait = std::time::Duration::from_secs(90);
            return Err(AdapterError::throttled("test", "merge", Some(&request.key), "rate limited", wait));
        }
        self.inner.merge(request)
    }
    fn head(&self, branch: &str) -> Result<Option<String>, AdapterError> {
        self.inner.head(branch)
    }
}

#[test]
fn a_throttled_call_is_retried_no_sooner_than_the_service_asked() {
    let world = World::new(local("2026-11-23 08:00"));
    let vcs = ThrottledOnce { inner: Arc::clone(&world.vcs), throttled: Default::default() };
    let adapters = Adapters::new(Arc::clone(&world.notifier)).with_vcs(vcs).with_operations(Arc::clone(&world.ops));
    let parts = Parts {
        store: Arc::new(MemoryStore::new()),
        clock: Arc::clone(&world.clock),
        adapters,
        config: fast_retries(),
    };
    let mut driver = Driver::create(parts, &program(), &id(), None).unwrap();
    for step in &week(true)[..4] {
        run_step(&mut driver, step).unwrap();
    }
    driver.run_until(local("2026-11-25 14:00")).unwrap();
    driver.handle_event(event("F", "bob", Some("approved"))).unwrap();
    let due = driver.take_due_effects();
    assert_eq!(due.len(), 1, "G's merge");
    let runner = driver.effect_runner();
    let now = local("2026-11-25 14:00");
    // The backoff would retry after 1 s; the service asked for 90 s.
    match runner.attempt(&due[0], 1, now) {
        Attempt::Retry { at, next, .. } => {
            assert_eq!(at, now + chrono::Duration::seconds(90));
            assert_eq!(next, 2);
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    match runner.attempt(&due[0], 2, now + chrono::Duration::seconds(90)) {
        Attempt::Finished(outcome) => assert_eq!(outcome.result, Some(ActionOutcome::Succeeded)),
        other => panic!("expected the merge, got {other:?}"),
    }
}

/// A driver that another writer overtook catches up with one version query and one reload,
/// and does nothing when it is current.
#[test]
fn catch_up_reloads_only_when_another_writer_moved_the_instance() {
    let world = World::new(local("2026-11-23 08:00"));
    let store = Arc::new(MemoryStore::new());
    let mut first = Driver::create(world.parts(Arc::clone(&store), fast_retries()), &program(), &id(), None).unwrap();
    let mut second = Driver::open(world.parts(Arc::clone(&store), fast_retries()), &program(), &id()).unwrap();
    assert!(!second.catch_up().unwrap());
    first.handle_event(event("B", "erin", None)).unwrap();
    assert_eq!(second.instance().current_node().unwrap().as_str(), "B");
    assert!(second.catch_up().unwrap());
    assert_eq!(second.version(), first.version());
    assert_eq!(second.instance(), first.instance());
    assert!(!second.catch_up().unwrap());
}
