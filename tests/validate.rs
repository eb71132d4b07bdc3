//! Validator tests: `check` on specs built in code, and property tests that random specs and
//! random bytes never panic and that reachability matches a reference computation.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kars::spec::diagnostic::Segment;
use kars::spec::spec::{DecidedBy, Direction, Edge, Node, NodeKind, Role, Spec};
use kars::spec::{Code, NodeId, RoleId, check, load, load_bytes};
use proptest::prelude::*;

fn node(label: &str, kind: NodeKind) -> Node {
    Node::new(label, kind)
}

fn id(s: &str) -> NodeId {
    s.parse().unwrap()
}

fn edge(from: &str, to: &str) -> Edge {
    Edge { from: id(from), to: id(to), label: None }
}

fn empty_spec() -> Spec {
    let mut spec = Spec::new("built", "Europe/Berlin");
    spec.direction = Direction::LR;
    spec.roles.insert("dev".parse::<RoleId>().unwrap(), Role { title: "Developer".into(), responsibilities: vec![] });
    spec
}

fn task(label: &str) -> Node {
    Node { roles: vec!["dev".parse().unwrap()], ..node(label, NodeKind::Task) }
}

fn end(label: &str) -> Node {
    Node { outcome: Some("done".into()), ..node(label, NodeKind::End) }
}

#[test]
fn a_spec_built_in_code_checks_and_keeps_its_zone() {
    let mut spec = empty_spec();
    spec.nodes.insert(id("A"), node("Start", NodeKind::Start));
    spec.nodes.insert(id("B"), task("Work"));
    spec.nodes.insert(id("C"), end("Done"));
    spec.edges = vec![edge("A", "B"), edge("B", "C")];
    let checked = check(spec).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(checked.zone(), chrono_tz::Europe::Berlin);
    assert!(checked.warnings().is_empty());
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut spec = empty_spec();
    spec.version = 3;
    spec.timezone = "Europe/Berln".into();
    spec.nodes.insert(id("A"), node("Start", NodeKind::Start));
    spec.nodes.insert(id("B"), node("Loop", NodeKind::Wait));
    spec.nodes.insert(id("C"), node("Also", NodeKind::Action));
    spec.edges = vec![edge("A", "B"), edge("B", "C"), edge("C", "B")];
    let report = check(spec).unwrap_err();
    let codes: BTreeSet<Code> = report.codes().into_iter().collect();
    let expected: BTreeSet<Code> =
        [Code::Version, Code::Zone, Code::FieldRequired, Code::TrapCycle].into_iter().collect();
    assert_eq!(codes, expected, "{report}");
    let text = report.to_string();
    assert!(text.contains("the cycle `B -> C -> B` has no way out"), "{text}");
    assert!(text.contains("did you mean `Europe/Berlin`?"), "{text}");
}

#[test]
fn an_automatic_loop_without_a_bound_is_named_with_its_path() {
    let mut spec = empty_spec();
    spec.nodes.insert(id("A"), node("Start", NodeKind::Start));
    spec.nodes.insert(id("B"), Node { gate: Some("Monday 09:00".parse().unwrap()), ..node("Wait", NodeKind::Wait) });
    spec.nodes.insert(
        id("N"),
        Node {
            decided_by: Some(DecidedBy { role: None, outcome_of: Some(id("O")), map: BTreeMap::new() }),
            ..node("Again?", NodeKind::Decision)
        },
    );
    let mut map = BTreeMap::new();
    map.insert("succeeded".to_owned(), "Yes".to_owned());
    map.insert("failed".to_owned(), "No".to_owned());
    spec.nodes.get_mut("N").unwrap().decided_by.as_mut().unwrap().map = map;
    spec.nodes.insert(
        id("O"),
        Node {
            action: Some(kars::spec::spec::Action::RunChecks(kars::spec::spec::Checks {
                suite: "smoke".into(),
                environment: None,
            })),
            ..node("Check", NodeKind::Action)
        },
    );
    spec.nodes.insert(id("P"), node("Settle", NodeKind::Wait));
    spec.nodes.insert(id("E"), end("Done"));
    spec.edges = vec![
        edge("A", "B"),
        edge("B", "O"),
        edge("O", "P"),
        edge("P", "N"),
        Edge { label: Some("Yes".into()), ..edge("N", "E") },
        Edge { label: Some("No".into()), ..edge("N", "O") },
    ];
    let report = check(spec).unwrap_err();
    assert_eq!(report.codes(), vec![Code::UnboundedCycle], "{report}");
    assert!(report.to_string().contains("the cycle `N -> O -> P -> N`"), "{report}");
}

#[test]
fn the_bundled_spec_rejects_a_gate_out_of_order() {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml")).unwrap();
    let broken = source.replace("gate: Friday 09:00", "gate: Thursday 09:00");
    let report = load(&broken, "kars-release.yaml").unwrap_err();
    assert_eq!(report.codes(), vec![Code::GateOrder], "{report}");
    assert!(
        report.to_string().contains("gate `Thursday 09:00` on `L` is earlier than `Thursday 17:00` on `J`"),
        "{report}"
    );
}

/// The weekend-freeze fixture: a task that can only be done while the freeze refuses work.
fn weekend_smoke() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/specs/warning/task_inside_pause_window.yaml"))
        .unwrap()
}

fn warning_codes(source: &str) -> Vec<Code> {
    let spec = load(source, "spec.yaml").unwrap_or_else(|r| panic!("{r}"));
    spec.warnings().iter().map(|d| d.code).collect()
}

#[test]
fn a_task_the_freeze_always_covers_is_a_warning() {
    assert_eq!(warning_codes(&weekend_smoke()), vec![Code::AlwaysPaused]);
    // The bound may come from a gate every way in passes instead of the task's own gate.
    let gated_before = weekend_smoke()
        .replace("    gate: Saturday 10:00\n", "")
        .replace("  E: {", "  G: { label: Saturday, kind: wait, gate: Saturday 09:00 }\n  E: {")
        .replace("{ from: S, to: T }", "{ from: S, to: G }\n  - { from: G, to: T }");
    assert_eq!(warning_codes(&gated_before), vec![Code::AlwaysPaused]);
    // A deadline that reaches into the next week is still inside the weekend that spans it.
    let late = weekend_smoke()
        .replace("gate: Saturday 10:00", "gate: Sunday 10:00")
        .replace("Sunday 18:00", "Monday 08:00 +1w");
    assert_eq!(warning_codes(&late), vec![Code::AlwaysPaused]);
}

#[test]
fn a_task_with_any_time_outside_the_freeze_is_not_warned_about() {
    let cases = [
        ("the deadline does not leave the task", weekend_smoke().replace(", then: { end: slipped }", "")),
        ("the deadline is after the freeze", weekend_smoke().replace("Sunday 18:00", "Monday 10:00 +1w")),
        ("the gate is before the freeze", weekend_smoke().replace("gate: Saturday 10:00", "gate: Friday 16:00")),
        ("the window does not pause tasks", weekend_smoke().replace("    pause_tasks: true\n", "")),
        ("the window closes after a node", weekend_smoke().replace("{ at: Monday 09:00 +1w }", "{ after: E }")),
        (
            "the escalation returns to a way back into the task",
            weekend_smoke()
                .replace("then: { end: slipped }", "then: { goto: R }")
                .replace("  E: {", "  R: { label: Retry, kind: wait }\n  E: {")
                .replace("{ from: T, to: E }", "{ from: T, to: E }\n  - { from: R, to: T }"),
        ),
    ];
    for (why, source) in cases {
        assert_eq!(warning_codes(&source), Vec::<Code>::new(), "{why}:\n{source}");
    }
}

#[test]
fn gate_order_follows_forward_paths_only() {
    // A retest loop goes back to an earlier gate, and `+1w` is later than every time of the
    // first week: neither is out of order.
    let source = r#"
version: 1
name: loop
timezone: America/Toronto
roles:
  qa: { title: QA }
nodes:
  S: { label: Start, kind: start }
  B: { label: Build, kind: task, roles: [qa], gate: Wednesday 10:00 }
  T: { label: Test, kind: task, roles: [qa], gate: Friday 09:00, outcomes: [pass, fail] }
  D: { label: Passed?, kind: decision, decided_by: { outcome_of: T, map: { pass: "Yes", fail: "No" } } }
  R: { label: Release, kind: task, roles: [qa], gate: Monday 10:00 +1w }
  E: { label: Done, kind: end, outcome: shipped }
edges:
  - { from: S, to: B }
  - { from: B, to: T }
  - { from: T, to: D }
  - { from: D, to: R, label: "Yes" }
  - { from: D, to: B, label: "No" }
  - { from: R, to: E }
"#;
    assert_eq!(warning_codes(source), Vec::<Code>::new());
    // The same release gate in the first week comes before the test on every path: an error.
    let report = load(&source.replace("Monday 10:00 +1w", "Monday 10:00"), "loop.yaml").unwrap_err();
    assert_eq!(report.codes(), vec![Code::GateOrder], "{report}");
}

// ---------------------------------------------------------------- properties

const KINDS: [NodeKind; 8] = [
    NodeKind::Start,
    NodeKind::End,
    NodeKind::Task,
    NodeKind::Action,
    NodeKind::Decision,
    NodeKind::Wait,
    NodeKind::Parallel,
    NodeKind::Join,
];

/// A random spec: up to 10 nodes of random kinds, random edges between them (some to a node
/// that does not exist), random labels, gates and `decided_by`.
fn arb_spec() -> impl Strategy<Value = Spec> {
    let nodes = prop::collection::vec((0..KINDS.len(), any::<bool>(), prop::option::of(0..7u32), any::<bool>()), 1..10);
    let edges = prop::collection::vec(
        (0..11usize, 0..11usize, prop::option::of(prop::sample::select(vec!["Yes", "No", ""]))),
        0..20,
    );
    (nodes, edges).prop_map(|(nodes, edges)| {
        let mut spec = empty_spec();
        let n = nodes.len();
        for (i, (kind, with_roles, gate_day, by_role)) in nodes.into_iter().enumerate() {
            let kind = KINDS[kind];
            let mut nd = node(&format!("Node {i}"), kind);
            if with_roles {
                nd.roles = vec!["dev".parse().unwrap()];
            }
            nd.gate = gate_day.map(|d| {
                format!("{} 09:00", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][d as usize]).parse().unwrap()
            });
            if kind == NodeKind::Decision {
                nd.decided_by = Some(if by_role {
                    DecidedBy { role: Some("dev".parse().unwrap()), outcome_of: None, map: BTreeMap::new() }
                } else {
                    DecidedBy { role: None, outcome_of: Some(id("N0")), map: BTreeMap::new() }
                });
            }
            if kind == NodeKind::End {
                nd.outcome = Some("done".into());
            }
            spec.nodes.insert(id(&format!("N{i}")), nd);
        }
        spec.edges = edges
            .into_iter()
            .map(|(f, t, label)| Edge {
                from: id(&format!("N{}", f.min(n))),
                to: id(&format!("N{}", t.min(n))),
                label: label.map(str::to_owned),
            })
            .collect();
        spec
    })
}

/// The nodes a breadth-first search along the edges cannot reach from the only start node;
/// `None` unless there is exactly one start.
fn reference_unreachable(spec: &Spec) -> Option<BTreeSet<String>> {
    let starts: Vec<&NodeId> = spec.nodes.iter().filter(|(_, n)| n.kind == NodeKind::Start).map(|(id, _)| id).collect();
    let [start] = starts.as_slice() else { return None };
    let mut seen: BTreeSet<&str> = BTreeSet::from([start.as_str()]);
    let mut queue = VecDeque::from([start.as_str()]);
    while let Some(v) = queue.pop_front() {
        for e in spec.edges.iter().filter(|e| e.from.as_str() == v) {
            if spec.nodes.contains_key(&e.to) && seen.insert(e.to.as_str()) {
                queue.push_back(e.to.as_str());
            }
        }
    }
    Some(spec.nodes.keys().filter(|id| !seen.contains(id.as_str())).map(|id| id.to_string()).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Checking any spec, or loading its YAML (JSON) form, never panics, and both agree on whether it is valid.
    #[test]
    fn random_specs_never_panic(spec in arb_spec()) {
        let json = serde_json::to_string(&spec).unwrap();
        let loaded = load(&json, "random.yaml");
        let checked = check(spec);
        prop_assert_eq!(loaded.is_ok(), checked.is_ok());
    }

    /// Loading any byte string returns a result and never panics.
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = load_bytes(&bytes, "random.bin");
    }

    /// Loading any YAML-looking text made of spec keys and punctuation never panics.
    #[test]
    fn random_yaml_never_panics(text in "(version|nodes|edges|A|B|kind|start|from|to|label|&a|\\*a|<<|[:\\-\\[\\]{},\"' \t\n#])*") {
        let _ = load(&text, "random.yaml");
    }

    /// The nodes reported unreachable are exactly those a plain BFS from the start misses.
    #[test]
    fn unreachable_nodes_match_a_reference_bfs(spec in arb_spec()) {
        let expected = reference_unreachable(&spec);
        let reported: BTreeSet<String> = match check(spec) {
            Ok(_) => BTreeSet::new(),
            Err(report) => report
                .diagnostics()
                .iter()
                .filter(|d| d.code == Code::Unreachable)
                .filter_map(|d| match d.location.as_ref()?.path.as_ref()?.0.as_slice() {
                    [_, Segment::Key(id)] => Some(id.clone()),
                    _ => None,
                })
                .collect(),
        };
        match expected {
            Some(expected) => prop_assert_eq!(reported, expected),
            None => prop_assert!(reported.is_empty()),
        }
    }
}

#[test]
fn a_merge_requirement_names_its_checks() {
    let yaml = include_str!("../workflows/kars-release.yaml").replace(
        "action: { merge_pull_request: { from: dev, to: prod } }",
        "action: { merge_pull_request: { from: dev, to: prod, requires: { approvals: 2, checks: [ci, \" \"] } } }",
    );
    let report = load(&yaml, "kars-release.yaml").unwrap_err().to_string();
    assert!(report.contains("a required check's name is empty"), "{report}");
    let yaml = yaml.replace("checks: [ci, \" \"]", "checks: [ci], method: squash");
    let spec = load(&yaml, "kars-release.yaml").unwrap_or_else(|r| panic!("{r}"));
    let node = &spec.spec().nodes[&id("X")];
    let Some(kars::spec::spec::Action::MergePullRequest(merge)) = &node.action else { panic!("X merges") };
    let requires = merge.requires.as_ref().unwrap();
    assert_eq!((requires.approvals, requires.checks.as_slice()), (Some(2), ["ci".to_owned()].as_slice()));
    assert_eq!(requires.method, Some(kars::spec::spec::MergeMethod::Squash));
    let typo = yaml.replace("method: squash", "methd: squash");
    assert!(load(&typo, "kars-release.yaml").is_err());
}
