//! Spec upgrades of a running instance: cosmetic changes (a roster edit, a relabel) apply at
//! once, a moved gate applies from the next cycle, an upgrade that would strand the token is
//! refused with its reasons, a history across three spec versions replays to the live
//! instance, and a crash in the middle of an upgrade leaves one spec or the other.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use kars::workflow::adapter::{RecordingNotifier, RecordingVcs};
use kars::workflow::driver::{
    Adapters, Driver, DriverConfig, DriverError, Entry, Parts, Program, RecordingOperations, SpecText, UpgradeRequest,
    VirtualClock, read_journal,
};
use kars::workflow::journal::{FileStore, MemoryStore, Store};
use kars::workflow::{Actor, EngineError, Input, InstanceId, UpgradeBlocker, UpgradeWhen};

fn text(version: u8) -> SpecText {
    let path = format!("{}/tests/fixtures/upgrade/v{version}.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    SpecText { origin: format!("v{version}.yaml"), text }
}

fn program(version: u8) -> Program {
    let spec = text(version);
    Program::new(&kars::spec::load(&spec.text, &spec.origin).unwrap()).unwrap()
}

/// A local Toronto time as UTC.
fn local(s: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    kars::spec::calendar::resolve_local(chrono_tz::America::Toronto, naive)
}

fn id() -> InstanceId {
    InstanceId::new("weekly").unwrap()
}

fn parts<S: Store>(store: S, clock: &Arc<VirtualClock>) -> Parts<S, Arc<VirtualClock>> {
    let adapters = Adapters::new(RecordingNotifier::new())
        .with_vcs(RecordingVcs::new())
        .with_operations(RecordingOperations::new());
    Parts { store, clock: Arc::clone(clock), adapters, config: DriverConfig::default() }
}

fn start<S: Store>(store: S, clock: &Arc<VirtualClock>) -> Driver<S, Arc<VirtualClock>> {
    Driver::create(parts(store, clock), &program(1), &id(), Some(text(1))).unwrap()
}

fn request(version: u8, when: Option<UpgradeWhen>) -> UpgradeRequest {
    UpgradeRequest { spec: text(version), by: "lee".into(), when }
}

fn person(name: &str, roles: &[&str]) -> Actor {
    Actor::new(name, roles.iter().map(|r| r.parse().unwrap()).collect::<Vec<_>>())
}

fn act<S: Store>(driver: &mut Driver<S, Arc<VirtualClock>>, who: Actor, node: &str) -> Result<(), DriverError> {
    driver.act(who, node.parse().unwrap(), None).map(|_| ())
}

fn gate_of<S: Store>(driver: &Driver<S, Arc<VirtualClock>>) -> Option<DateTime<Utc>> {
    driver.instance().poll_timeout()
}

#[test]
fn a_roster_edit_mid_week_applies_at_once() {
    let clock = Arc::new(VirtualClock::new(local("2026-11-23 08:00")));
    let mut driver = start(Arc::new(MemoryStore::new()), &clock);
    assert!(driver.roster().actor("bo").is_err(), "bo is not on the first roster");
    clock.set(local("2026-11-23 09:00"));
    let plan = driver.plan_upgrade(&program(2));
    assert!(plan.cosmetic, "a roster edit and a relabel are cosmetic: {plan:?}");
    assert_eq!(plan.default_when(), UpgradeWhen::Now);
    let report = driver.upgrade(&program(2), &request(2, None)).unwrap();
    let kinds: Vec<&str> = report
        .appended
        .iter()
        .map(|a| match &a.entry {
            Entry::Spec(_) => "spec",
            Entry::Input(_) => "input",
            Entry::Roster(_) => "roster",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["spec", "input"], "one append: the text with the new team, then the upgrade");
    assert!(matches!(&report.appended[0].entry, Entry::Spec(v) if v.roster.is_some()));
    assert_eq!(driver.instance().workflow().fingerprint(), program(2).workflow().fingerprint());
    // bo is on the roster now and builds this very week.
    let bo = driver.roster().actor("bo").unwrap();
    clock.set(local("2026-11-24 09:30"));
    driver.tick().unwrap();
    act(&mut driver, bo, "B").unwrap();
    assert_eq!(driver.instance().current_node().map(|n| n.as_str()), Some("C"));
}

#[test]
fn a_moved_gate_applies_from_the_next_cycle() {
    let clock = Arc::new(VirtualClock::new(local("2026-11-23 08:00")));
    let mut driver = start(Arc::new(MemoryStore::new()), &clock);
    assert_eq!(gate_of(&driver), Some(local("2026-11-24 09:00")));
    clock.set(local("2026-11-23 10:00"));
    let plan = driver.plan_upgrade(&program(3));
    assert!(!plan.cosmetic);
    assert_eq!(plan.default_when(), UpgradeWhen::NextCycle);
    // The token waits at B's gate: moving it now would change what this cycle resolved.
    assert_eq!(plan.blockers, vec![UpgradeBlocker::CurrentNodeChanged { node: "B".parse().unwrap() }]);
    driver.upgrade(&program(3), &request(3, None)).unwrap();
    assert_eq!(driver.upcoming().map(|w| w.fingerprint()), Some(program(3).workflow().fingerprint()));
    // This week still opens on Tuesday 09:00 under the spec it started with.
    assert_eq!(gate_of(&driver), Some(local("2026-11-24 09:00")));
    clock.set(local("2026-11-24 09:00"));
    driver.tick().unwrap();
    let (ana, lee) = (person("ana", &["dev"]), person("lee", &["lead", "dev"]));
    act(&mut driver, ana.clone(), "B").unwrap();
    act(&mut driver, lee, "C").unwrap();
    act(&mut driver, ana, "D").unwrap();
    // The next cycle starts next Monday under the new spec: its gate is Wednesday 10:00.
    clock.set(local("2026-11-30 00:00"));
    driver.tick().unwrap();
    assert!(driver.upcoming().is_none());
    assert_eq!(driver.instance().workflow().fingerprint(), program(3).workflow().fingerprint());
    assert_eq!(gate_of(&driver), Some(local("2026-12-02 10:00")));
    let cycles = driver.instance().cycle_outcomes();
    assert_eq!(cycles.len(), 1);
    assert_eq!(cycles[0].outcome, "shipped");
}

#[test]
fn removing_the_current_node_refuses_an_immediate_upgrade() {
    let clock = Arc::new(VirtualClock::new(local("2026-11-24 09:30")));
    let mut driver = start(Arc::new(MemoryStore::new()), &clock);
    driver.tick().unwrap();
    act(&mut driver, person("ana", &["dev"]), "B").unwrap();
    assert_eq!(driver.instance().current_node().map(|n| n.as_str()), Some("C"));
    let before = driver.version();
    let refused = driver.upgrade(&program(4), &request(4, Some(UpgradeWhen::Now))).unwrap_err();
    let DriverError::Refused(error) = &refused else { panic!("not a refusal: {refused:?}") };
    let EngineError::UpgradeBlocked { blockers } = &**error else { panic!("not blocked: {error:?}") };
    assert!(blockers.contains(&UpgradeBlocker::CurrentNodeRemoved { node: "C".parse().unwrap() }), "{blockers:?}");
    assert_eq!(driver.version(), before, "a refused upgrade writes nothing");
    insta::assert_snapshot!(refused.to_string());
    // Scheduled for the next cycle instead, it is accepted.
    driver.upgrade(&program(4), &request(4, Some(UpgradeWhen::NextCycle))).unwrap();
    assert_eq!(driver.instance().current_node().map(|n| n.as_str()), Some("C"));
}

#[test]
fn a_history_across_three_versions_replays_to_the_live_instance() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(VirtualClock::new(local("2026-11-23 08:00")));
    let store = FileStore::create_dir(dir.path()).unwrap();
    let mut driver = start(store, &clock);
    clock.set(local("2026-11-23 09:00"));
    driver.upgrade(&program(2), &request(2, None)).unwrap();
    clock.set(local("2026-11-23 10:00"));
    driver.upgrade(&program(3), &request(3, None)).unwrap();
    let (ana, lee) = (person("ana", &["dev"]), person("lee", &["lead", "dev"]));
    for (at, who, node) in
        [("2026-11-24 09:10", &ana, "B"), ("2026-11-24 10:00", &lee, "C"), ("2026-11-24 11:00", &ana, "D")]
    {
        clock.set(local(at));
        driver.tick().unwrap();
        act(&mut driver, who.clone(), node).unwrap();
    }
    clock.set(local("2026-12-02 10:30"));
    driver.tick().unwrap();
    act(&mut driver, ana, "B").unwrap();
    let live = driver.instance().clone();
    drop(driver);
    // Reopened with the newest spec only: the older ones come from the journal.
    let store = FileStore::open(dir.path()).unwrap();
    let reopened = Driver::open(parts(store, &clock), &program(3), &id()).unwrap();
    assert_eq!(reopened.instance(), &live);
    assert_eq!(reopened.instance().state(), live.state());
    assert_eq!(reopened.versions().fingerprints().count(), 3);
    // Opening with an older spec is refused: the journal has moved on.
    let store = FileStore::open(dir.path()).unwrap();
    let stale = Driver::open(parts(store, &clock), &program(1), &id()).unwrap_err();
    assert!(matches!(stale, DriverError::SpecChanged { .. }), "{stale:?}");
}

#[test]
fn a_crash_in_the_middle_of_an_upgrade_leaves_one_spec_or_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(VirtualClock::new(local("2026-11-23 08:00")));
    let mut driver = start(FileStore::create_dir(dir.path()).unwrap(), &clock);
    clock.set(local("2026-11-23 09:00"));
    let before = std::fs::metadata(journal_file(dir.path())).unwrap().len();
    driver.upgrade(&program(2), &request(2, None)).unwrap();
    drop(driver);
    let after = std::fs::metadata(journal_file(dir.path())).unwrap().len();
    // Cut the upgrade's append at every byte: each cut reopens under v1, the whole under v2.
    let whole = std::fs::read(journal_file(dir.path())).unwrap();
    let step = usize::try_from((after - before) / 7).unwrap().max(1);
    for cut in (usize::try_from(before).unwrap()..whole.len()).step_by(step) {
        std::fs::write(journal_file(dir.path()), &whole[..cut]).unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let journal = read_journal(&store, &id()).unwrap();
        let upgraded =
            journal.entries.iter().any(|e| matches!(e, Entry::Input(r) if matches!(r.input, Input::Upgrade { .. })));
        assert!(!upgraded, "the upgrade record is the append's last: a cut before its end drops it");
        // The spec text may have survived the cut; without its upgrade it changes nothing, and
        // a host that opens with the journal's own texts picks the old one.
        assert_eq!(journal.newest_spec(), program(1).workflow().fingerprint());
        assert_eq!(journal.newest_spec_text().map(|t| t.origin.as_str()), Some("v1.yaml"));
        let reopened = Driver::open(parts(store, &clock), &program(1), &id()).unwrap();
        assert_eq!(reopened.instance().workflow().fingerprint(), program(1).workflow().fingerprint());
        assert!(reopened.roster().actor("bo").is_err(), "the old roster, not a mix");
    }
    std::fs::write(journal_file(dir.path()), &whole).unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let reopened = Driver::open(parts(store, &clock), &program(2), &id()).unwrap();
    assert_eq!(reopened.instance().workflow().fingerprint(), program(2).workflow().fingerprint());
    assert!(reopened.roster().actor("bo").is_ok(), "the new roster with the new spec");
}

/// The one journal file of the directory.
fn journal_file(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "journal"))
        .expect("a journal file")
}

/// One step of a random run.
#[derive(Debug, Clone)]
enum Step {
    /// Time passes by this many hours, and due timers run.
    Wait(u8),
    /// A person acts on a node (refusals are fine).
    Act(&'static str, &'static str),
    /// An upgrade to fixture version `1..=4`, at once or at the next cycle.
    Upgrade(u8, bool),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        (1u8..60).prop_map(Step::Wait),
        proptest::sample::select(vec![("ana", "B"), ("lee", "C"), ("ana", "D"), ("bo", "B"), ("lee", "B")])
            .prop_map(|(who, node)| Step::Act(who, node)),
        (1u8..=4, any::<bool>()).prop_map(|(v, now)| Step::Upgrade(v, now)),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..proptest::prelude::ProptestConfig::default() })]

    /// Whatever mix of work, waiting and upgrades (accepted or refused) a journal records, it
    /// reopens under its newest spec to the live instance.
    #[test]
    fn any_history_of_upgrades_replays_to_the_live_instance(steps in proptest::collection::vec(step(), 1..40)) {
        let clock = Arc::new(VirtualClock::new(local("2026-11-23 08:00")));
        let store = Arc::new(MemoryStore::new());
        let mut driver = start(Arc::clone(&store), &clock);
        let mut latest = 1;
        for step in steps {
            match step {
                Step::Wait(hours) => {
                    clock.advance(chrono::Duration::hours(i64::from(hours)));
                    driver.tick().unwrap();
                }
                Step::Act(who, node) => {
                    if let Ok(actor) = driver.roster().actor(who) {
                        let _ = act(&mut driver, actor, node);
                    }
                }
                Step::Upgrade(version, now) => {
                    let when = if now { UpgradeWhen::Now } else { UpgradeWhen::NextCycle };
                    if driver.upgrade(&program(version), &request(version, Some(when))).is_ok() {
                        latest = version;
                    }
                }
            }
        }
        let live = driver.instance().clone();
        let reopened = Driver::open(parts(Arc::clone(&store), &clock), &program(latest), &id()).unwrap();
        proptest::prop_assert_eq!(reopened.instance(), &live);
        proptest::prop_assert_eq!(reopened.roster(), driver.roster());
    }
}

/// A week finished after the next one began starts the next cycle inside the completing
/// input, under the spec scheduled for it, while the instance holds the only reference to the
/// spec it moves away from. The engine's transitions borrow the spec in force without cloning
/// its `Arc` (`Instance::with_spec`), and this is the path where a borrowed spec leaves its
/// place in the instance in the middle of an input (clean under valgrind's memcheck).
#[test]
fn a_late_week_moves_to_the_scheduled_spec_inside_the_completing_input() {
    let compile = |file: &str| {
        let path = format!("{}/tests/fixtures/upgrade/{file}", env!("CARGO_MANIFEST_DIR"));
        let yaml = std::fs::read_to_string(&path).unwrap();
        Arc::new(kars::workflow::Workflow::compile(&kars::spec::load(&yaml, file).unwrap()).unwrap())
    };
    let (v1, v2) = (compile("late-v1.yaml"), compile("late-v2.yaml"));
    let (v1_print, v2_print) = (v1.fingerprint(), v2.fingerprint());
    let ship = || kars::workflow::Event::Complete {
        node: "B".parse().unwrap(),
        actor: person("ana", &["dev"]),
        outcome: None,
    };
    let monday = local("2026-11-23 09:00");
    let mut instance = kars::workflow::Instance::start(v1, id(), monday);
    instance.upgrade(v2, UpgradeWhen::NextCycle, monday).unwrap();
    assert_eq!(instance.workflow().fingerprint(), v1_print, "v1 runs until the next cycle");
    assert_eq!(Arc::strong_count(instance.workflow()), 1, "the instance alone holds v1");

    // Tuesday of the next week: the first cycle ends late, and the second starts at once.
    let late = local("2026-12-01 10:00");
    instance.handle_event(ship(), late).unwrap();
    assert_eq!(instance.workflow().fingerprint(), v2_print, "the second cycle runs v2");
    assert_eq!(instance.cycle(), 2);
    assert_eq!(instance.current_node().map(|n| n.as_str()), Some("B"));

    // The next input releases v1; the instance goes on under v2.
    instance.handle_event(ship(), late).unwrap();
    let outcomes: Vec<String> = instance.cycle_outcomes().into_iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes, ["shipped", "released"], "each cycle ended under its own spec");
    let next_monday = local("2026-12-07 00:00");
    assert_eq!(instance.poll_timeout(), Some(next_monday), "the third cycle starts on its Monday");
    instance.handle_timeout(next_monday);
    assert_eq!((instance.cycle(), instance.workflow().fingerprint()), (3, v2_print));
}
