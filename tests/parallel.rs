//! Parallel branches: property tests over random block-structured specs, valid by
//! construction: tasks, decision loops with a retry bound, decisions that may end the cycle,
//! gated waits and waiting actions, nested in `parallel` blocks (joined `all` or `first`) up to
//! three deep. A driver acts on a randomly chosen waiting branch (or lets time pass) until the
//! first cycle ends.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use kars_spec::calendar::resolve_local;
use kars_spec::{NodeId, RoleId};
use kars_workflow::{
    ActionOutcome, Actor, BranchEvent, Event, Instance, InstanceId, NoticeKind, Options, Reporter, Resolved, Snapshot,
    WaitingFor, Workflow,
};
use proptest::prelude::*;

/// One step of a block.
#[derive(Debug, Clone)]
enum Item {
    /// A task for `dev` (0) or `qa` (1), with a notify-only deadline or not.
    Task { role: u8, deadline: bool },
    /// Test, decide, fix and test again, at most `attempts` entries of the test; then the
    /// retry bound ends the cycle as `slipped`.
    Check { attempts: u32 },
    /// A decision that goes on or ends the cycle (`incident`).
    Stop,
    /// A wait with a gate on Monday morning.
    Gate,
    /// An action that waits for its result.
    Action,
    /// A fork: one branch per list, meeting at a join (`first` or `all`).
    Fork { branches: Vec<Vec<Item>>, first: bool },
}

fn leaf() -> impl Strategy<Value = Item> {
    prop_oneof![
        4 => (0u8..2, proptest::bool::weighted(0.3)).prop_map(|(role, deadline)| Item::Task { role, deadline }),
        2 => (1u32..4).prop_map(|attempts| Item::Check { attempts }),
        1 => Just(Item::Stop),
        1 => Just(Item::Gate),
        2 => Just(Item::Action),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        (prop::collection::vec(prop::collection::vec(inner, 1..3), 2..4), proptest::bool::weighted(0.3))
            .prop_map(|(branches, first)| Item::Fork { branches, first })
    })
}

fn blocks() -> impl Strategy<Value = Vec<Item>> {
    prop::collection::vec(item(), 1..4)
}

/// Writes the spec YAML of a block list, remembering every fork.
#[derive(Default)]
struct Builder {
    nodes: String,
    edges: String,
    count: usize,
    /// Join id -> (branches, `join: first`).
    joins: BTreeMap<String, (u16, bool)>,
    /// Parallel id -> branches.
    forks: BTreeMap<String, u16>,
    /// Gates written so far.
    gates: usize,
}

impl Builder {
    fn id(&mut self) -> String {
        self.count += 1;
        format!("N{}", self.count)
    }

    fn edge(&mut self, from: &(String, Option<&'static str>), to: &str) {
        match from.1 {
            Some(label) => writeln!(self.edges, "  - {{ from: {}, to: {to}, label: {label} }}", from.0),
            None => writeln!(self.edges, "  - {{ from: {}, to: {to} }}", from.0),
        }
        .unwrap();
    }

    /// Adds `item` after `from`; returns the node (and label) the next edge leaves from.
    fn item(&mut self, item: &Item, from: (String, Option<&'static str>)) -> (String, Option<&'static str>) {
        match item {
            Item::Task { role, deadline } => {
                let id = self.id();
                let role = if *role == 0 { "dev" } else { "qa" };
                let deadline = if *deadline {
                    ", deadline: { by: Wednesday 12:00, escalate: { notify: [{ channel: ops }] } }"
                } else {
                    ""
                };
                writeln!(self.nodes, "  {id}: {{ label: {id}, kind: task, roles: [{role}]{deadline} }}").unwrap();
                self.edge(&from, &id);
                (id, None)
            }
            Item::Check { attempts } => {
                let (test, decide, fix) = (self.id(), self.id(), self.id());
                writeln!(
                    self.nodes,
                    "  {test}: {{ label: {test}, kind: task, roles: [qa], retry: {{ max_attempts: {attempts}, on_exhausted: {{ notify: [{{ channel: ops }}], then: {{ end: slipped }} }} }} }}"
                )
                .unwrap();
                writeln!(self.nodes, "  {decide}: {{ label: {decide}, kind: decision, decided_by: {{ role: qa }} }}")
                    .unwrap();
                writeln!(self.nodes, "  {fix}: {{ label: {fix}, kind: task, roles: [dev] }}").unwrap();
                self.edge(&from, &test);
                self.edge(&(test.clone(), None), &decide);
                self.edge(&(decide.clone(), Some("Fail")), &fix);
                self.edge(&(fix, None), &test);
                (decide, Some("Pass"))
            }
            Item::Stop => {
                let (decide, end) = (self.id(), self.id());
                writeln!(self.nodes, "  {decide}: {{ label: {decide}, kind: decision, decided_by: {{ role: dev }} }}")
                    .unwrap();
                writeln!(self.nodes, "  {end}: {{ label: {end}, kind: end, outcome: incident }}").unwrap();
                self.edge(&from, &decide);
                self.edge(&(decide.clone(), Some("Stop")), &end);
                (decide, Some("Go"))
            }
            Item::Gate => {
                // Gates along a path never go back in time: each gate written opens 10 minutes
                // after the one before (Monday from 10:10).
                self.gates += 1;
                let id = self.id();
                let (hour, minute) = (10 + self.gates * 10 / 60, self.gates * 10 % 60);
                writeln!(self.nodes, "  {id}: {{ label: {id}, kind: wait, gate: Monday {hour}:{minute:02} }}").unwrap();
                self.edge(&from, &id);
                (id, None)
            }
            Item::Action => {
                let id = self.id();
                writeln!(
                    self.nodes,
                    "  {id}: {{ label: {id}, kind: action, action: {{ run_checks: {{ suite: smoke }} }} }}"
                )
                .unwrap();
                self.edge(&from, &id);
                (id, None)
            }
            Item::Fork { branches, first } => {
                let (fork, join) = (self.id(), self.id());
                writeln!(self.nodes, "  {fork}: {{ label: {fork}, kind: parallel }}").unwrap();
                let rule = if *first { ", join: first" } else { "" };
                writeln!(self.nodes, "  {join}: {{ label: {join}, kind: join{rule} }}").unwrap();
                self.edge(&from, &fork);
                let count = u16::try_from(branches.len()).unwrap();
                self.forks.insert(fork.clone(), count);
                self.joins.insert(join.clone(), (count, *first));
                for branch in branches {
                    let mut at = (fork.clone(), None);
                    for item in branch {
                        at = self.item(item, at);
                    }
                    self.edge(&at, &join);
                }
                (join, None)
            }
        }
    }

    fn spec(mut self, items: &[Item]) -> (String, Self) {
        let mut at = ("A".to_owned(), None);
        for item in items {
            at = self.item(item, at);
        }
        self.edge(&at, "Done");
        let yaml = format!(
            "version: 1\nname: parallel-props\ntimezone: America/Toronto\nroles:\n  dev: {{ title: Developer }}\n  qa: {{ title: QA }}\nchannels:\n  ops: {{ name: \"#ops\" }}\nnodes:\n  A: {{ label: Start, kind: start }}\n  Done: {{ label: Done, kind: end, outcome: released }}\n{}edges:\n{}",
            self.nodes, self.edges
        );
        (yaml, self)
    }
}

fn toronto(s: &str) -> DateTime<Utc> {
    resolve_local(chrono_tz::America::Toronto, NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
}

fn actor(role: &RoleId) -> Actor {
    Actor::new(format!("{role}-person"), vec![role.clone()])
}

/// The event that acts on what one token waits for, if a person or the host can.
fn act(instance: &Instance, reason: &WaitingFor, choice: u8) -> Option<Event> {
    match reason {
        WaitingFor::Task { node, roles, .. } => {
            Some(Event::Complete { node: node.clone(), actor: actor(&roles[0]), outcome: None })
        }
        WaitingFor::Decision { node, role, branches } => {
            let bad = branches.iter().any(|b| b == "Stop") && choice.is_multiple_of(12)
                || branches.iter().any(|b| b == "Fail") && choice.is_multiple_of(3);
            let pick = match (branches.iter().any(|b| b == "Stop"), bad) {
                (true, true) => "Stop",
                (true, false) => "Go",
                (false, true) => "Fail",
                (false, false) => "Pass",
            };
            Some(Event::Complete { node: node.clone(), actor: actor(role), outcome: Some(pick.into()) })
        }
        WaitingFor::ActionResult { node, .. } => {
            let index = instance.workflow().node_index(node.as_str())?;
            let key = instance.result_key_at(index)?;
            Some(Event::ActionResult {
                node: node.clone(),
                outcome: ActionOutcome::Succeeded,
                reporter: Reporter::Effect { key },
            })
        }
        _ => None,
    }
}

/// Restoring a JSON snapshot and replaying the history both give `instance` back.
fn round_trips(instance: &Instance) -> Result<(), TestCaseError> {
    let workflow = Arc::clone(instance.workflow());
    let json = serde_json::to_string(&instance.snapshot()).unwrap();
    let snapshot: Snapshot = serde_json::from_str(&json).unwrap();
    let restored = Instance::restore(Arc::clone(&workflow), snapshot).unwrap();
    prop_assert_eq!(&restored, instance);
    let replayed = Instance::replay(workflow, instance.history()).unwrap();
    prop_assert_eq!(&replayed, instance);
    Ok(())
}

fn run(items: &[Item], choices: &[u8]) -> Result<(), TestCaseError> {
    let (yaml, built) = Builder::default().spec(items);
    let checked =
        kars_spec::load(&yaml, "parallel-props.yaml").map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
    let workflow = Arc::new(Workflow::compile(&checked).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?);
    let mut now = toronto("2026-11-23 08:00");
    let options = Options { notice_capacity: 1 << 14 };
    let mut instance = Instance::start_with(workflow, InstanceId::new("props").unwrap(), now, options);
    let mut ended = 0;
    let mut choices = choices.iter().copied().cycle();
    for step in 0..2_000 {
        while instance.poll_effect().is_some() {}
        while let Some(notice) = instance.poll_notice() {
            if matches!(notice.kind, NoticeKind::CycleEnded { .. }) {
                ended += 1;
            }
        }
        if !instance.cycle_outcomes().is_empty() {
            break;
        }
        // Block structure: tokens at distinct nodes, one reason each.
        let waiting = instance.waiting(now);
        let nodes = instance.current_nodes();
        prop_assert!(!nodes.is_empty(), "a running cycle has a token");
        prop_assert!(nodes.windows(2).all(|w| w[0] != w[1]), "two branches at one node: {nodes:?}");
        prop_assert_eq!(waiting.reasons().count(), nodes.len());
        let choice = choices.next().unwrap_or(0);
        let actionable = waiting.reasons().filter(|r| act(&instance, r, choice).is_some()).count();
        // No deadlock: someone can act, or a timer is armed.
        prop_assert!(actionable > 0 || instance.poll_timeout().is_some(), "deadlock at {waiting}\n{yaml}");
        if step % 7 == 3 {
            round_trips(&instance)?;
        }
        let timer = instance.poll_timeout();
        if actionable == 0 || (choice.is_multiple_of(5) && timer.is_some()) {
            now = now.max(timer.unwrap_or(now));
            instance.handle_timeout(now);
            continue;
        }
        // Time passes first (a gate may open, a deadline escalate, another branch's join or end
        // may cancel a branch); then one of the branches still waiting is acted on.
        now += Duration::minutes(i64::from(choice % 45));
        instance.handle_timeout(now);
        if !instance.cycle_outcomes().is_empty() {
            continue;
        }
        let events: Vec<Event> = instance.waiting(now).reasons().filter_map(|r| act(&instance, r, choice)).collect();
        let Some(event) = events.get(usize::from(choice) % events.len().max(1)).cloned() else { continue };
        let result = instance.handle_event(event.clone(), now);
        prop_assert!(result.is_ok(), "{event:?} refused: {result:?}\n{yaml}");
    }
    prop_assert_eq!(instance.cycle_outcomes().len(), 1, "the first cycle ends\n{}", yaml);
    prop_assert_eq!(ended, 1, "the cycle ends exactly once");
    prop_assert!(instance.current_nodes().is_empty(), "no token outlives its cycle");
    // Every branch token ends or joins: each branch started is accounted for by its fork's
    // own token going on, an arrival at a join or a recorded cancellation.
    let (mut started, mut arrived, mut cancelled, mut joined) = (BTreeMap::<String, u32>::new(), 0u32, 0u32, 0u32);
    let workflow = Arc::clone(instance.workflow());
    let id = |i| workflow.node_id(i).map(ToString::to_string).unwrap_or_default();
    for record in instance.history().records() {
        for resolved in &record.resolved {
            match resolved {
                Resolved::Branch(BranchEvent::Started { fork, .. }) => *started.entry(id(*fork)).or_default() += 1,
                Resolved::Branch(BranchEvent::Arrived { .. }) => arrived += 1,
                Resolved::Branch(BranchEvent::Cancelled { .. }) => cancelled += 1,
                Resolved::Branch(BranchEvent::Joined { join }) => {
                    prop_assert!(built.joins.contains_key(&id(*join)));
                    joined += 1;
                }
                _ => {}
            }
        }
    }
    let mut activations = 0u32;
    let mut branches = 0u32;
    for (fork, count) in &started {
        let k = u32::from(built.forks[fork]);
        prop_assert_eq!(count % k, 0, "every branch of `{}` starts", fork);
        activations += count / k;
        branches += count;
    }
    prop_assert_eq!(branches, activations + arrived + cancelled, "tokens lost or duplicated ({} joins)", joined);
    round_trips(&instance)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// On every random block-structured spec, every branch ends or joins, nothing deadlocks,
    /// the first cycle ends exactly once, and replay and snapshots give the live instance back.
    #[test]
    fn parallel_blocks_run_to_one_end(items in blocks(), choices in prop::collection::vec(any::<u8>(), 1..64)) {
        run(&items, &choices)?;
    }
}

/// Validation refuses a broken block structure with its located diagnostic before the engine
/// sees it; `Workflow::compile` keeps typed errors for the same cases as a backstop
/// (`CompileError::{LeavesBranch, TwoJoins, ForkWithoutJoin, JoinOutsideFork}`), which only a
/// `CheckedSpec` validation passed can reach.
#[test]
fn broken_block_structures_are_refused_before_they_compile() {
    for (name, says) in [
        ("leaves-branch.yaml", "the branch to `X` reaches no join"),
        ("two-joins.yaml", "do not all reach one join"),
        ("no-join.yaml", "never reach a join"),
    ] {
        let path = format!("{}/tests/fixtures/parallel/{name}", env!("CARGO_MANIFEST_DIR"));
        let yaml = std::fs::read_to_string(path).unwrap();
        let report = kars_spec::load(&yaml, name).err().unwrap_or_else(|| panic!("{name} checks"));
        let text = report.to_string();
        assert!(text.contains("error[K0211]") && text.contains(says), "{name}: {text}");
    }
}

fn checked(path: &str) -> kars_spec::CheckedSpec {
    let yaml = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    kars_spec::load(&yaml, path).unwrap_or_else(|e| panic!("{e}"))
}

/// The simulated team works on both branches of a fork at once: QA moves on while the security
/// review waits for its gate, and the whole run replays.
#[test]
fn simulated_people_work_on_branches_side_by_side() {
    use kars_workflow::sim::{self, EntryKind, Model, SimConfig, SimHistory};
    let spec = checked("tests/scenarios/parallel-review.yaml");
    let workflow = Arc::new(Workflow::compile(&spec).unwrap());
    let model = Model::defaults(&spec);
    let config = SimConfig { weeks: 8, seed: 11, start: "2026-11-23".parse().unwrap(), history: SimHistory::Keep };
    let mut completed: Vec<(String, String, DateTime<Utc>)> = Vec::new();
    let mut observer = |e: &sim::Entry<'_>| {
        if matches!(e.kind, EntryKind::Completed)
            && let Some(node) = e.node
        {
            completed.push((e.release.to_string(), node.to_string(), e.at));
        }
    };
    let run = sim::simulate(Arc::clone(&workflow), &model, &config, &mut observer).unwrap();
    assert_eq!(run.weeks.len(), 8);
    let replayed = Instance::replay(workflow, run.instance.history()).unwrap();
    assert!(replayed == run.instance, "the simulated history replays");
    // In some week QA passed while the security review still waited (before it completed).
    let at = |week: &str, node: &str| completed.iter().find(|(w, n, _)| w == week && n == node).map(|(_, _, at)| *at);
    let overlapping = run.weeks.iter().filter(|w| {
        let week = w.release.to_string();
        matches!((at(&week, "QAOk"), at(&week, "Sec")), (Some(qa), Some(sec)) if qa < sec)
    });
    assert!(overlapping.count() > 0, "QA never moved on while security waited: {completed:?}");
}

/// A person does one task at a time: with one developer for two branches, the second task is
/// done at least a whole task's minimum duration after the first.
#[test]
fn a_simulated_person_does_one_task_at_a_time() {
    use kars_workflow::sim::{self, EntryKind, Model, SimConfig, SimHistory};
    let spec = checked("tests/fixtures/parallel/one-developer.yaml");
    let workflow = Arc::new(Workflow::compile(&spec).unwrap());
    let model = Model::defaults(&spec);
    let config = SimConfig { weeks: 12, seed: 5, start: "2026-11-23".parse().unwrap(), history: SimHistory::Keep };
    let mut done: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    let mut observer = |e: &sim::Entry<'_>| {
        if matches!(e.kind, EntryKind::Completed)
            && e.node.is_some_and(|n| n.as_str() == "Code" || n.as_str() == "Docs")
        {
            done.entry(e.release.to_string()).or_default().push(e.at);
        }
    };
    let run = sim::simulate(workflow, &model, &config, &mut observer).unwrap();
    assert_eq!(run.weeks.len(), 12);
    assert_eq!(done.len(), 12);
    for (week, times) in &done {
        let [first, second] = times.as_slice() else { panic!("{week}: {times:?}") };
        assert!(*second - *first >= Duration::minutes(30), "{week}: alice did two tasks at once: {times:?}");
    }
}

/// An upgrade `now` while branches run is refused with a blocker that names them; one for the
/// next cycle is scheduled and takes effect when the cycle has ended.
#[test]
fn upgrades_wait_for_running_branches() {
    use kars_workflow::{EngineError, UpgradeBlocker, UpgradeWhen};
    let path = "tests/scenarios/parallel-review.yaml";
    let yaml = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let old = Arc::new(Workflow::compile(&kars_spec::load(&yaml, path).unwrap()).unwrap());
    let changed = yaml.replace("Release, kind: task, roles: [lead]", "Release, kind: task, roles: [lead, dev]");
    let new = Arc::new(Workflow::compile(&kars_spec::load(&changed, path).unwrap()).unwrap());
    let monday = toronto("2026-11-23 08:00");
    let mut instance = Instance::start(old, InstanceId::new("up").unwrap(), monday);
    let build = Event::Complete {
        node: NodeId::new("Build").unwrap(),
        actor: actor(&RoleId::new("dev").unwrap()),
        outcome: None,
    };
    instance.handle_event(build, monday).unwrap();
    assert_eq!(instance.current_nodes().iter().map(|n| n.as_str()).collect::<Vec<_>>(), ["QA", "Sec"]);
    let plan = instance.plan_upgrade(&new);
    let nodes = vec![NodeId::new("QA").unwrap(), NodeId::new("Sec").unwrap()];
    assert!(plan.blockers.contains(&UpgradeBlocker::BranchesRunning { nodes }), "{:?}", plan.blockers);
    let refused = instance.upgrade(Arc::clone(&new), UpgradeWhen::Now, monday).unwrap_err();
    let EngineError::UpgradeBlocked { .. } = &refused else { panic!("{refused:?}") };
    assert!(refused.to_string().contains("parallel branches run (at `QA`, `Sec`)"), "{refused}");
    instance.upgrade(Arc::clone(&new), UpgradeWhen::NextCycle, monday).unwrap();
    let versions = |f: kars_spec::Fingerprint| (f == new.fingerprint()).then(|| Arc::clone(&new));
    let first = Arc::clone(instance.workflow());
    let replayed = Instance::replay_versions(first, instance.history(), Options::default(), &versions, |_, _| {});
    assert!(replayed.unwrap() == instance, "the refused and the scheduled upgrade replay");
}

/// A snapshot taken while branches run round-trips; one whose branches do not fit the
/// workflow (a node out of range, two branches out of order, a join counted full, branch
/// tokens without the branch list) is refused instead of trusted.
#[test]
fn snapshots_with_branches_are_checked_on_restore() {
    use kars_workflow::{EngineError, Mismatch};
    let path = "tests/scenarios/parallel-review.yaml";
    let workflow = Arc::new(Workflow::compile(&checked(path)).unwrap());
    let monday = toronto("2026-11-23 08:00");
    let mut instance = Instance::start(Arc::clone(&workflow), InstanceId::new("snap").unwrap(), monday);
    let build = Event::Complete {
        node: NodeId::new("Build").unwrap(),
        actor: actor(&RoleId::new("dev").unwrap()),
        outcome: None,
    };
    instance.handle_event(build, monday).unwrap();
    round_trips(&instance).unwrap();
    let good = serde_json::to_value(instance.snapshot()).unwrap();
    assert_eq!(good["state"]["token"], "branches");
    let tamper = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut json = good.clone();
        edit(&mut json);
        let snapshot: Snapshot = serde_json::from_value(json).unwrap();
        match Instance::restore(Arc::clone(&workflow), snapshot) {
            Err(EngineError::SnapshotMismatch { mismatch: Mismatch::Shape }) => {}
            other => panic!("a broken snapshot was restored: {other:?}"),
        }
    };
    tamper(&|j| j["state"]["branches"]["live"][0]["node"] = 999.into());
    tamper(&|j| {
        let live = j["state"]["branches"]["live"].as_array_mut().unwrap();
        live.reverse();
    });
    tamper(&|j| j["state"]["branches"]["arrived"][0] = 2.into());
    tamper(&|j| j["state"]["branches"]["arrived"] = serde_json::json!([]));
    tamper(&|j| {
        j["state"].as_object_mut().unwrap().remove("branches");
    });
}
