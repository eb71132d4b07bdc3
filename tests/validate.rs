//! Validator tests: `check` on specs built in code, and property tests that random specs and
//! random bytes never panic and that reachability matches a reference computation.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kars::spec::diagnostic::Segment;
use kars::spec::spec::{DecidedBy, Direction, Edge, Node, NodeKind, Role, Spec};
use kars::spec::{Code, NodeId, RoleId, check, load, load_bytes};
use proptest::prelude::*;

fn node(label: &str, kind: NodeKind) -> Node {
    Node {
        label: label.to_owned(),
        kind,
        description: None,
        style: BTreeMap::new(),
        roles: Vec::new(),
        reported_by: Vec::new(),
        outcomes: Vec::new(),
        distinct_from: Vec::new(),
        action: None,
        decided_by: None,
        gate: None,
        deadline: None,
        retry: None,
        outcome: None,
    }
}

fn id(s: &str) -> NodeId {
    s.parse().unwrap()
}

fn edge(from: &str, to: &str) -> Edge {
    Edge { from: id(from), to: id(to), label: None }
}

fn empty_spec() -> Spec {
    let mut spec = Spec {
        version: 1,
        name: "built".into(),
        title: None,
        description: None,
        timezone: "Europe/Berlin".into(),
        direction: Direction::LR,
        roles: Default::default(),
        team: Default::default(),
        team_managed_by: Vec::new(),
        channels: Default::default(),
        branches: Default::default(),
        environments: Default::default(),
        windows: Default::default(),
        phases: Default::default(),
        nodes: Default::default(),
        edges: Vec::new(),
    };
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

// ---------------------------------------------------------------- properties

const KINDS: [NodeKind; 6] =
    [NodeKind::Start, NodeKind::End, NodeKind::Task, NodeKind::Action, NodeKind::Decision, NodeKind::Wait];

/// A random spec: up to 10 nodes of random kinds, random edges between them (some to a node
/// that does not exist), random labels, gates and `decided_by`.
fn arb_spec() -> impl Strategy<Value = Spec> {
    let nodes = prop::collection::vec((0..6usize, any::<bool>(), prop::option::of(0..7u32), any::<bool>()), 1..10);
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
