//! Model tests: random event sequences (random actors, roles, nodes, outcomes, merges and
//! times) against the bundled KARS spec and a corner-case spec, checked against a reference
//! model of what the engine may do, plus replay and snapshot round-trips.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use kars_spec::spec::Spec;
use kars_spec::{NodeId, RoleId};
use kars_workflow::{
    ActionOutcome, Actor, Event, Input, Instance, InstanceId, NoticeKind, Options, Snapshot, Verdict, WaitingFor,
    Workflow,
};
use proptest::prelude::*;

const NAMES: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
const ROLES: [&str; 7] = ["developer", "qa", "devops", "product_manager", "team_lead", "a", "b"];
const OUTCOMES: [&str; 8] = ["Yes", "No", "approved", "ok", "bad", "pass", "fail", "bogus"];
const BRANCHES: [&str; 8] = ["feature/x", "fix/y", "hotfix/z", "kars-dev", "kars-prod", "main", "feat/a", "hot/b"];

/// One random input, resolved against the live instance when it runs, so that a good share of
/// them are valid and the token travels deep into the workflow.
#[derive(Debug, Clone)]
enum Op {
    /// Let time pass (minutes) and handle the timeout if one is due.
    Advance(u32),
    /// Jump straight to the next timeout.
    NextTimeout,
    /// Complete a node: the current one (`None`) or any node by position (unknown past the end).
    Complete { node: Option<usize>, name: usize, roles: u8, fit: bool, outcome: Option<usize>, valid: bool },
    /// Report an action result for the current node or any node.
    Result { node: Option<usize>, failed: bool },
    /// A merge between two branches.
    Merge { source: usize, target: usize },
    /// Go back in time (the engine clamps).
    Rewind(u32),
    /// Jump to the end (or the start) of representable time, which the engine clamps.
    Far(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u32..1440).prop_map(Op::Advance),
        2 => Just(Op::NextTimeout),
        8 => (
            proptest::option::weighted(0.15, 0usize..40),
            0usize..NAMES.len(),
            any::<u8>(),
            proptest::bool::weighted(0.8),
            proptest::option::of(0usize..OUTCOMES.len()),
            proptest::bool::weighted(0.8),
        )
            .prop_map(|(node, name, roles, fit, outcome, valid)| Op::Complete { node, name, roles, fit, outcome, valid }),
        2 => (proptest::option::weighted(0.2, 0usize..40), proptest::bool::weighted(0.3))
            .prop_map(|(node, failed)| Op::Result { node, failed }),
        1 => (0usize..BRANCHES.len(), 0usize..BRANCHES.len()).prop_map(|(source, target)| Op::Merge { source, target }),
        1 => (0u32..600).prop_map(Op::Rewind),
        1 => proptest::bool::weighted(0.02).prop_map(Op::Far),
    ]
}

fn load(name: &str) -> (Arc<Workflow>, Spec) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = [root.join("workflows").join(name), root.join("tests/scenarios").join(name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap();
    let checked = kars_spec::load(&std::fs::read_to_string(path).unwrap(), name).unwrap();
    let workflow = Arc::new(Workflow::compile(&checked).unwrap());
    (workflow, checked.into_spec())
}

/// The reference model: what the spec allows, and counts the engine must stay within.
struct Model {
    /// Actions waiting for a result, to acknowledge when the case auto-acknowledges.
    awaiting: Vec<NodeId>,
    spec: Spec,
    /// Entries per node in the running cycle, from the notices.
    entries: BTreeMap<String, u32>,
    /// Deadline misses per node in the running cycle.
    misses: BTreeMap<String, u32>,
    keys: HashSet<String>,
    /// Notices dropped so far; after a drop the counts resync at the next cycle start.
    dropped: u64,
    synced: bool,
}

impl Model {
    fn roles_for(&self, node: &str) -> Vec<RoleId> {
        let n = &self.spec.nodes[node];
        match n.decided_by.as_ref().and_then(|d| d.role.clone()) {
            Some(role) => vec![role],
            None => n.roles.clone(),
        }
    }

    /// Reads the notices of one step and checks the per-cycle bounds.
    fn observe(&mut self, instance: &mut Instance) {
        let workflow = Arc::clone(instance.workflow());
        if instance.notices_dropped() != self.dropped {
            // A jump across centuries overflowed the queue: counts resync at the next cycle.
            self.dropped = instance.notices_dropped();
            self.synced = false;
        }
        while let Some(notice) = instance.poll_notice() {
            match notice.kind {
                NoticeKind::CycleStarted { .. } => {
                    self.entries.clear();
                    self.misses.clear();
                    self.synced = true;
                }
                _ if !self.synced => {}
                NoticeKind::NodeEntered { node, attempt } => {
                    let id = workflow.node_id(node).unwrap().to_string();
                    let count = self.entries.entry(id.clone()).or_default();
                    *count += 1;
                    assert_eq!(u32::from(attempt), *count, "entry count of `{id}`");
                    if let Some(retry) = &self.spec.nodes[id.as_str()].retry {
                        assert!(
                            *count <= retry.max_attempts,
                            "`{id}` entered {count} times, max {}",
                            retry.max_attempts
                        );
                    }
                }
                NoticeKind::DeadlineMissed { node } => {
                    let id = workflow.node_id(node).unwrap().to_string();
                    let count = self.misses.entry(id.clone()).or_default();
                    *count += 1;
                    assert_eq!(*count, 1, "the deadline of `{id}` fired twice in a cycle");
                }
                _ => {}
            }
        }
        while let Some(effect) = instance.poll_effect() {
            assert!(self.keys.insert(effect.key.to_string()), "effect key {} repeated", effect.key);
            if effect.kind.awaits_result() {
                self.awaiting.push(effect.node);
            }
        }
    }
}

/// Runs `ops`; with `acks`, waiting actions are acknowledged right away (bit `k % 8` of the mask
/// fails the `k`th acknowledgement), which lets cycles run to their end more often.
fn run(spec_file: &str, start_day: i64, start_minute: i64, ops: &[Op], acks: Option<u8>) {
    let (workflow, spec) = load(spec_file);
    let node_ids: Vec<String> = spec.nodes.keys().map(ToString::to_string).collect();
    let start: DateTime<Utc> = "2026-01-05T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        + Duration::days(start_day)
        + Duration::minutes(start_minute);
    let options = Options { notice_capacity: 4096 };
    let mut instance = Instance::start_with(Arc::clone(&workflow), InstanceId::new("m").unwrap(), start, options);
    let mut model = Model {
        awaiting: Vec::new(),
        spec,
        entries: BTreeMap::new(),
        misses: BTreeMap::new(),
        keys: HashSet::new(),
        dropped: 0,
        synced: true,
    };
    model.observe(&mut instance);
    let mut now = start;
    let mut acked = 0u32;
    // The latest instant the engine has seen: earlier inputs count as it.
    let mut high = start;
    for op in ops {
        if let Some(mask) = acks {
            while let Some(node) = model.awaiting.pop() {
                let failed = mask & (1 << (acked % 8)) != 0;
                acked += 1;
                let outcome = if failed { ActionOutcome::Failed } else { ActionOutcome::Succeeded };
                // The token may have moved on (a deadline jump); a refusal is fine here.
                let reporter = adapter(&instance);
                let _ = instance.handle_event(Event::ActionResult { node, outcome, reporter }, now);
                model.observe(&mut instance);
            }
        }
        let event = match op {
            Op::Advance(minutes) => {
                now = now.checked_add_signed(Duration::minutes(i64::from(*minutes))).unwrap_or(now);
                instance.handle_timeout(now);
                high = high.max(kars_workflow::gate::clamp(now));
                model.observe(&mut instance);
                continue;
            }
            Op::NextTimeout => {
                if let Some(at) = instance.poll_timeout() {
                    now = now.max(at);
                    instance.handle_timeout(now);
                    high = high.max(kars_workflow::gate::clamp(now));
                    model.observe(&mut instance);
                }
                continue;
            }
            Op::Rewind(minutes) => {
                now = now.checked_sub_signed(Duration::minutes(i64::from(*minutes))).unwrap_or(now);
                continue;
            }
            Op::Far(forward) => {
                now = if *forward { DateTime::<Utc>::MAX_UTC } else { DateTime::<Utc>::MIN_UTC };
                continue;
            }
            Op::Complete { node, name, roles, fit, outcome, valid } => {
                let waiting = instance.waiting(now);
                let node = match node {
                    None => instance.current_node().map(ToString::to_string).unwrap_or_else(|| "B".into()),
                    Some(i) => node_ids.get(*i).cloned().unwrap_or_else(|| "Unknown".into()),
                };
                let mut actor_roles: Vec<RoleId> = (0..ROLES.len())
                    .filter(|i| roles & (1 << i) != 0)
                    .map(|i| RoleId::new(ROLES[i]).unwrap())
                    .collect();
                let valid_outcomes: Vec<String> = match &waiting.reason {
                    WaitingFor::Task { roles, outcomes, .. } => {
                        if *fit {
                            actor_roles.extend(roles.iter().take(1).cloned());
                        }
                        outcomes.clone()
                    }
                    WaitingFor::Decision { role, branches, .. } => {
                        if *fit {
                            actor_roles.push(role.clone());
                        }
                        branches.clone()
                    }
                    _ => Vec::new(),
                };
                let outcome = match (valid, outcome) {
                    (true, Some(i)) if !valid_outcomes.is_empty() => {
                        Some(valid_outcomes[i % valid_outcomes.len()].as_str().into())
                    }
                    (true, _) if valid_outcomes.is_empty() => None,
                    (_, o) => o.map(|i| OUTCOMES[i].into()),
                };
                let Ok(node) = NodeId::new(node) else { continue };
                Event::Complete { node, actor: Actor::new(NAMES[*name], actor_roles), outcome }
            }
            Op::Result { node, failed } => {
                let node = match node {
                    None => instance.current_node().map(ToString::to_string).unwrap_or_else(|| "G".into()),
                    Some(i) => node_ids.get(*i).cloned().unwrap_or_else(|| "Unknown".into()),
                };
                let outcome = if *failed { ActionOutcome::Failed } else { ActionOutcome::Succeeded };
                Event::ActionResult { node: NodeId::new(node).unwrap(), outcome, reporter: adapter(&instance) }
            }
            Op::Merge { source, target } => Event::Merge {
                source: BRANCHES[*source].to_owned(),
                target: BRANCHES[*target].to_owned(),
                actor: Actor::new("bot", Vec::new()),
            },
        };
        // Let due timers run first, so that a refusal can be checked to change nothing (unless a
        // jump across centuries left more timers than one input runs).
        instance.handle_timeout(now);
        model.observe(&mut instance);
        high = high.max(kars_workflow::gate::clamp(now));
        let settled = instance.poll_timeout().is_none_or(|t| t > high);
        let before = instance.state().clone();
        let result = instance.handle_event(event.clone(), now);
        match &result {
            Err(_) if settled => assert_eq!(&before, instance.state(), "a refused {event:?} changed the state"),
            Err(_) => {}
            Ok(()) => {
                if let Event::Complete { node, actor, .. } = &event {
                    let needed = model.roles_for(node.as_str());
                    assert!(
                        needed.iter().any(|r| actor.roles().contains(r)),
                        "`{}` completed `{node}` without one of {needed:?}",
                        actor.name()
                    );
                }
            }
        }
        let last = instance.history().last().unwrap();
        assert_eq!(last.input, Input::Event(event));
        assert_eq!(matches!(last.verdict, Verdict::Accepted), result.is_ok());
        model.observe(&mut instance);
    }
    // Replay gives the live instance back, and so does a JSON snapshot.
    let replayed = Instance::replay(Arc::clone(&workflow), instance.history()).unwrap();
    assert_eq!(replayed.state(), instance.state());
    assert_eq!(replayed.history(), instance.history());
    let json = serde_json::to_string(&instance.snapshot()).unwrap();
    let restored = Instance::restore(Arc::clone(&workflow), serde_json::from_str::<Snapshot>(&json).unwrap()).unwrap();
    assert_eq!(restored, instance);
    // The restored instance carries on exactly like the live one.
    let mut a = instance;
    let mut b = restored;
    let later = now.checked_add_signed(Duration::days(9)).unwrap_or(now);
    a.handle_timeout(later);
    b.handle_timeout(later);
    assert_eq!(a, b);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// Against the KARS spec, no event sequence panics, lets an actor without a needed role
    /// act, enters a retry node more often than allowed, fires a deadline twice in a cycle,
    /// repeats an effect key, changes state when refused, or fails to replay and restore.
    #[test]
    fn kars_spec_invariants_hold(
        day in 0i64..365,
        minute in 0i64..1440,
        ops in proptest::collection::vec(op(), 1..160),
        acks in proptest::option::weighted(0.7, any::<u8>()),
    ) {
        run("kars-release.yaml", day, minute, &ops, acks);
    }

    /// The same invariants hold on a spec with automatic decisions, a retry without `then`,
    /// jumping deadlines, a pausing lunch window and a node-bound freeze in another zone.
    #[test]
    fn edge_spec_invariants_hold(
        day in 0i64..365,
        minute in 0i64..1440,
        ops in proptest::collection::vec(op(), 1..80),
        acks in proptest::option::of(any::<u8>()),
    ) {
        run("model-edge.yaml", day, minute, &ops, acks);
    }
}

/// A snapshot from another spec, or with tables that do not fit, is refused, not trusted.
#[test]
fn restore_refuses_foreign_or_damaged_snapshots() {
    let (kars, _) = load("kars-release.yaml");
    let (edge, _) = load("model-edge.yaml");
    let at: DateTime<Utc> = "2026-11-23T13:00:00Z".parse().unwrap();
    let instance = Instance::start(Arc::clone(&kars), InstanceId::new("x").unwrap(), at);
    assert!(Instance::restore(edge, instance.snapshot()).is_err());
    let mut json: serde_json::Value = serde_json::to_value(instance.snapshot()).unwrap();
    json["state"]["nodes"] = serde_json::json!([1, 2, 3]);
    let damaged: Snapshot = serde_json::from_value(json).unwrap();
    let err = Instance::restore(kars, damaged).unwrap_err();
    assert_eq!(err.to_string(), "the snapshot cannot be restored: its tables do not fit the workflow");
}

/// A forged history (impossible recorded instants, wrong kinds) is refused, never trusted.
#[test]
fn replay_refuses_forged_instants() {
    let (kars, _) = load("kars-release.yaml");
    let at: DateTime<Utc> = "2026-11-23T13:00:00Z".parse().unwrap();
    let instance = Instance::start(Arc::clone(&kars), InstanceId::new("x").unwrap(), at);
    // The start record, its resolved instants changed by `edit`.
    let forge = |edit: &dyn Fn(&mut Vec<kars_workflow::Resolved>)| {
        let history = instance.history();
        let mut records: Vec<_> = history.records().collect();
        let mut resolved = records[0].resolved.to_vec();
        edit(&mut resolved);
        records[0].resolved = resolved.into();
        kars_workflow::History::from_records(history.header.clone(), 0, records).unwrap()
    };
    let forged = forge(&|resolved| {
        for r in resolved {
            if let kars_workflow::Resolved::Cycle { monday } = r {
                *monday = chrono::NaiveDate::MAX;
            }
        }
    });
    assert!(Instance::replay(Arc::clone(&kars), &forged).is_err());
    let shuffled = forge(&|resolved| resolved.reverse());
    assert!(Instance::replay(Arc::clone(&kars), &shuffled).is_err());
    let extra = forge(&|resolved| resolved.push(kars_workflow::Resolved::NextCycle { at }));
    assert!(Instance::replay(kars, &extra).is_err());
}

/// The host's adapter reporting the result of the effect the instance waits for (a key that
/// matches nothing when it waits for none: the engine refuses that).
fn adapter(instance: &Instance) -> kars::workflow::Reporter {
    let key = instance.result_key().unwrap_or_else(|| serde_json::from_str("\"none\"").unwrap());
    kars::workflow::Reporter::Effect { key }
}
