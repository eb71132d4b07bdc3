//! Parallel branches in the spec: every fork pairs with its join (`CheckedSpec::forks`), random
//! well-nested forks check clean, and an edge that takes a branch out of its block is reported
//! with a fork code.

use std::collections::{BTreeMap, BTreeSet};

use kars::spec::spec::{DecidedBy, Direction, Edge, JoinRule, Node, NodeKind, Role, Spec};
use kars::spec::{Code, NodeId, check, load};
use proptest::prelude::*;

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("readable")
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn fork_table(spec: &kars::spec::CheckedSpec) -> BTreeMap<String, (String, BTreeSet<String>)> {
    spec.forks()
        .iter()
        .map(|(id, f)| (id.to_string(), (f.join.to_string(), f.inside.iter().map(ToString::to_string).collect())))
        .collect()
}

#[test]
fn the_hotfix_forks_pair_with_their_joins() {
    let spec = load(&read("workflows/hotfix.yaml"), "workflows/hotfix.yaml").unwrap_or_else(|r| panic!("{r}"));
    assert!(spec.warnings().is_empty(), "{}", spec.warning_report());
    let table = fork_table(&spec);
    let inner = ids(&["Scan", "Scanned", "Review", "Reviewed"]);
    let mut outer = ids(&["Verify", "Verified", "Rework", "Security", "SecurityOk", "NotesOpen", "Notes"]);
    outer.extend(inner.iter().cloned());
    assert_eq!(
        table,
        BTreeMap::from([
            ("SignOffs".to_owned(), ("AllSignedOff".to_owned(), outer)),
            ("Security".to_owned(), ("SecurityOk".to_owned(), inner)),
        ])
    );
    let join = |s: &str| NodeId::new(s).expect("id");
    assert_eq!(spec.fork_of_join(&join("SecurityOk")), Some(&join("Security")));
    assert_eq!(spec.fork_of_join(&join("Merge")), None);
    assert_eq!(spec.spec().nodes[&join("SecurityOk")].join, Some(JoinRule::First));
}

#[test]
fn nested_forks_pair_innermost_first() {
    let path = "tests/specs/valid/parallel_nested.yaml";
    let spec = load(&read(path), path).unwrap_or_else(|r| panic!("{r}"));
    let table = fork_table(&spec);
    assert_eq!(table["G"], ("H".to_owned(), ids(&["C", "D"])));
    assert_eq!(table["F"], ("J".to_owned(), ids(&["B", "G", "C", "D", "H", "Q", "R"])));
}

// ---------------------------------------------------------------- random well-nested forks

/// A step of a generated sequence.
#[derive(Debug, Clone)]
enum Item {
    /// A task.
    Task,
    /// A task and a decision that may send it back: a retry loop inside the branch.
    Retry,
    /// A decision whose second branch ends the cycle at an `end` node of its own.
    Exit,
    /// A fork with its branches (each a non-empty sequence) and its join rule.
    Fork(Vec<Vec<Item>>, bool),
}

fn items() -> impl Strategy<Value = Vec<Item>> {
    let leaf = prop_oneof![3 => Just(Item::Task), 1 => Just(Item::Retry), 1 => Just(Item::Exit)];
    let item = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            2 => inner.clone(),
            1 => (prop::collection::vec(prop::collection::vec(inner, 1..3), 2..4), any::<bool>())
                .prop_map(|(branches, first)| Item::Fork(branches, first)),
        ]
    });
    prop::collection::vec(item, 1..5)
}

/// A generated spec and what its forks should be.
#[derive(Debug, Clone)]
struct Built {
    spec: Spec,
    /// Fork id to (join id, block).
    forks: BTreeMap<String, (String, BTreeSet<String>)>,
    /// Every task inside a block, with its innermost fork.
    tasks: Vec<(String, String)>,
}

struct Builder {
    spec: Spec,
    next: usize,
    forks: BTreeMap<String, (String, BTreeSet<String>)>,
    tasks: Vec<(String, String)>,
    /// The blocks being built, innermost last: (fork id, nodes so far).
    open: Vec<(String, BTreeSet<String>)>,
}

impl Builder {
    fn add(&mut self, kind: NodeKind) -> String {
        let id = format!("N{}", self.next);
        self.next += 1;
        let mut node = Node::new(id.clone(), kind);
        match kind {
            NodeKind::Task => node.roles = vec!["dev".parse().expect("role")],
            NodeKind::Decision => {
                node.decided_by = Some(DecidedBy {
                    role: Some("dev".parse().expect("role")),
                    outcome_of: None,
                    map: BTreeMap::new(),
                });
            }
            NodeKind::End => node.outcome = Some("done".to_owned()),
            _ => {}
        }
        self.spec.nodes.insert(NodeId::new(id.clone()).expect("id"), node);
        if kind != NodeKind::End {
            for (_, block) in &mut self.open {
                block.insert(id.clone());
            }
            if kind == NodeKind::Task
                && let Some((fork, _)) = self.open.last()
            {
                self.tasks.push((id.clone(), fork.clone()));
            }
        }
        id
    }

    fn edge(&mut self, from: &str, to: &str, label: Option<&str>) {
        let id = |s: &str| NodeId::new(s).expect("id");
        self.spec.edges.push(Edge { from: id(from), to: id(to), label: label.map(str::to_owned) });
    }

    /// Builds `items` after `from`; returns the last node, whose way on the caller adds.
    fn seq(&mut self, items: &[Item], from: &str, label: Option<&str>) -> String {
        let mut at = from.to_owned();
        let mut label = label.map(str::to_owned);
        for item in items {
            at = match item {
                Item::Task => {
                    let t = self.add(NodeKind::Task);
                    self.edge(&at, &t, label.take().as_deref());
                    t
                }
                Item::Retry => {
                    let t = self.add(NodeKind::Task);
                    self.edge(&at, &t, label.take().as_deref());
                    let d = self.add(NodeKind::Decision);
                    self.edge(&t, &d, None);
                    self.edge(&d, &t, Some("again"));
                    label = Some("on".to_owned());
                    d
                }
                Item::Exit => {
                    let d = self.add(NodeKind::Decision);
                    self.edge(&at, &d, label.take().as_deref());
                    let e = self.add(NodeKind::End);
                    self.edge(&d, &e, Some("stop"));
                    label = Some("on".to_owned());
                    d
                }
                Item::Fork(branches, first) => {
                    let p = self.add(NodeKind::Parallel);
                    self.edge(&at, &p, label.take().as_deref());
                    self.open.push((p.clone(), BTreeSet::new()));
                    let mut lasts = Vec::new();
                    for branch in branches {
                        lasts.push(self.seq(branch, &p, None));
                    }
                    let (_, block) = self.open.pop().expect("opened above");
                    let j = self.add(NodeKind::Join);
                    if *first && let Some(node) = self.spec.nodes.get_mut(j.as_str()) {
                        node.join = Some(JoinRule::First);
                    }
                    for last in lasts {
                        let label = (self.spec.nodes[last.as_str()].kind == NodeKind::Decision).then_some("on");
                        self.edge(&last, &j, label);
                    }
                    self.forks.insert(p, (j.clone(), block));
                    j
                }
            };
        }
        // A sequence that ends on a decision: its `on` branch is the edge the caller adds.
        at
    }
}

fn build(items: &[Item]) -> Built {
    let mut spec = Spec::new("forks", "Europe/Berlin");
    spec.direction = Direction::TB;
    spec.roles.insert("dev".parse().expect("role"), Role { title: "Developer".into(), responsibilities: vec![] });
    let mut b = Builder { spec, next: 0, forks: BTreeMap::new(), tasks: Vec::new(), open: Vec::new() };
    let start = b.add(NodeKind::Start);
    let last = b.seq(items, &start, None);
    let done = b.add(NodeKind::End);
    let label = (b.spec.nodes[last.as_str()].kind == NodeKind::Decision).then_some("on");
    b.edge(&last, &done, label);
    Built { spec: b.spec, forks: b.forks, tasks: b.tasks }
}

#[test]
fn deeply_nested_forks_check_without_recursion() {
    let mut item = Item::Task;
    for _ in 0..300 {
        item = Item::Fork(vec![vec![item], vec![Item::Task]], false);
    }
    let built = build(&[item]);
    let checked = check(built.spec.clone()).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(checked.forks().len(), 300);
    assert_eq!(fork_table(&checked), built.forks);
}

fn fork_codes(report: &kars::spec::Report) -> Vec<Code> {
    let fork = [
        Code::ForkWithoutJoin,
        Code::BranchLeavesBlock,
        Code::BranchesMeet,
        Code::LoopAcrossJoin,
        Code::JoinWithoutFork,
    ];
    report.codes().into_iter().filter(|c| fork.contains(c)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Well-nested forks (branches with tasks, retry loops, exits to `end` and nested forks)
    /// always check clean, `CheckedSpec::forks` gives each fork its join and its block, and
    /// the engine compiles them.
    #[test]
    fn well_nested_forks_check_and_pair(items in items()) {
        let built = build(&items);
        let checked = check(built.spec.clone()).map_err(|r| TestCaseError::fail(format!("{r}\n{:#?}", built.spec.edges)))?;
        prop_assert!(checked.warnings().is_empty(), "{}", checked.warning_report());
        prop_assert_eq!(fork_table(&checked), built.forks);
        // What validation accepts, the engine compiles: both read the same block structure.
        let compiled = kars::workflow::Workflow::compile(&checked);
        prop_assert!(compiled.is_ok(), "{:?}\n{:#?}", compiled.err(), built.spec.edges);
    }

    /// Sending a task inside a block to any node outside that block (but an `end`) is reported
    /// with a fork code (K0211 to K0215).
    #[test]
    fn an_edge_out_of_a_block_is_reported(items in items(), pick in any::<prop::sample::Index>(), to in any::<prop::sample::Index>()) {
        let built = build(&items);
        prop_assume!(!built.tasks.is_empty());
        let (task, fork) = built.tasks[pick.index(built.tasks.len())].clone();
        let (join, block) = &built.forks[&fork];
        let targets: Vec<&NodeId> = built
            .spec
            .nodes
            .iter()
            .filter(|(id, n)| n.kind != NodeKind::End && !block.contains(id.as_str()) && id.as_str() != join)
            .map(|(id, _)| id)
            .collect();
        let target = targets[to.index(targets.len())].clone();
        let mut spec = built.spec.clone();
        let edge = spec.edges.iter_mut().find(|e| e.from.as_str() == task).expect("a task has one way on");
        edge.to = target.clone();
        let report = check(spec).err();
        prop_assert!(report.is_some(), "{task} -> {target} checks");
        let report = report.expect("checked above");
        prop_assert!(!fork_codes(&report).is_empty(), "{task} -> {target}: {report}");
    }
}
