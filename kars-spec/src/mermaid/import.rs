//! Importing a mermaid flowchart as a kars spec skeleton that passes `kars check`.
//!
//! How the graph becomes a spec:
//! - subgraphs become phases with their ids and titles; a node belongs to the innermost
//!   subgraph that mentions it (mermaid's own rule), so nested subgraphs are flattened and an
//!   outer subgraph left without nodes of its own is dropped (with a warning);
//! - the root (the node no edge from another node leads to; the first node mentioned when every
//!   node is on a cycle; then the first with one way out if that one is a `{}` decision) is the
//!   `start`; when that node branches, a `start` node is added before
//!   it (edges back to it then go to the added start), and when there are several roots, a
//!   `start` and a decision `which` that picks a root are added (each with a warning);
//! - a node with no way out is an `end` with outcome `done`; a node with an edge back to the
//!   start gets outcome `done` too;
//! - a `{}` node with two or more ways out is a `decision` decided by the placeholder role;
//!   its unlabelled (or repeated) branch labels are filled with the target's id;
//! - any other node with two or more ways out, none of them labelled (`W --> X & Y`), is a
//!   `parallel` node (a fork), and the first node that all its branches reach (an `end` aside)
//!   is its `join`; when that reading does not pass `kars check` (the branches never meet, or
//!   leave their block), such nodes become decisions instead, with a warning, as does a node
//!   with labelled ways out that is not drawn `{}`;
//! - a `{{}}` node is a `wait`; every other node is a `task` for the placeholder role `owner`;
//! - `style` lines become node styles; `classDef` becomes a class in `classes:` with the nodes
//!   that `class` lines and `:::` give it;
//! - the time zone is `UTC`, with a comment in the YAML asking to set the team's zone.

use std::collections::HashMap;

use indexmap::IndexMap;

use super::error::{ImportError, ImportErrorKind, ImportWarning, WarningKind};
use super::flowchart::{Flowchart, Location, Shape};
use super::parse::parse;
use crate::id::{ClassId, NodeId, PhaseId, RoleId};
use crate::spec::{Class, DecidedBy, Edge, Node, NodeKind, Phase, Role, Spec};

/// The placeholder role every imported task and decision is given.
pub const PLACEHOLDER_ROLE: &str = "owner";
/// The outcome given to imported ends and to nodes that lead back to the start.
pub const PLACEHOLDER_OUTCOME: &str = "done";

/// An imported spec with the warnings met on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOutcome {
    /// The spec skeleton.
    pub spec: Spec,
    /// What was ignored or changed, with lines.
    pub warnings: Vec<ImportWarning>,
}

/// Imports a mermaid flowchart (a `.mmd` text, or the first ```` ```mermaid ```` block of a
/// markdown text) as a spec skeleton; see the module docs for how nodes become kinds.
///
/// ```
/// let outcome = kars_spec::mermaid::import("flowchart LR\n  A[Plan] --> B{Ok?}\n  B -->|Yes| C[Ship]\n  B -->|No| A\n").unwrap();
/// assert_eq!(outcome.spec.nodes.len(), 3);
/// assert!(kars_spec::check(outcome.spec).is_ok());
/// ```
///
/// # Errors
/// Returns an [`ImportError`] with the line and column of the first problem: a statement that
/// cannot be read, an unsupported construct (circle, cross or two-way links, edge ids,
/// `@{}` shapes, edges to subgraphs) or an id kars does not accept (`end`, `1A`, ...).
pub fn import(text: &str) -> Result<ImportOutcome, ImportError> {
    let parsed = parse(text)?;
    let (title, description) = (parsed.title, parsed.description);
    let mut warnings = parsed.warnings.clone();
    let mut spec = to_spec(&parsed.flowchart, title.clone(), description.clone(), Forks::Read, &mut warnings)?;
    let forked = spec.nodes.values().any(|n| n.kind == NodeKind::Parallel);
    if forked && crate::check(spec.clone()).is_err() {
        // The forks do not make a valid block: read every branching node as a decision.
        warnings = parsed.warnings;
        spec = to_spec(&parsed.flowchart, title, description, Forks::AsDecisions, &mut warnings)?;
    }
    warnings.sort_by_key(|w| (w.at.line, w.at.column));
    Ok(ImportOutcome { spec, warnings })
}

/// Whether nodes with several unlabelled ways out are read as forks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Forks {
    /// As `parallel` nodes, with their joins.
    Read,
    /// As decisions (the fallback when the forks do not check).
    AsDecisions,
}

/// The nodes that are forks (several ways out, none labelled, not drawn `{}`) and their joins:
/// for each fork, the first node in breadth-first order from its first branch that every
/// branch reaches without passing the fork, `end` nodes (no way out) aside.
fn forks_and_joins<'c>(
    chart: &'c Flowchart,
    outs: &HashMap<&str, Vec<usize>>,
    start: Option<&str>,
) -> HashMap<String, NodeKind> {
    let mut kinds = HashMap::new();
    for (id, flow) in &chart.nodes {
        let out = outs.get(id.as_str()).map_or(&[][..], Vec::as_slice);
        let unlabelled = out.iter().all(|&i| chart.edges.get(i).is_some_and(|e| e.label.is_none()));
        if out.len() < 2 || !unlabelled || flow.shape == Shape::Rhombus || start == Some(id.as_str()) {
            continue;
        }
        let reach = |first: &'c str| branch_nodes(chart, outs, id, first);
        let branches: Vec<Vec<&str>> = targets(chart, outs, id).into_iter().map(reach).collect();
        let sets: Vec<std::collections::HashSet<&str>> = branches.iter().map(|b| b.iter().copied().collect()).collect();
        let join = branches.first().and_then(|first| {
            first
                .iter()
                .copied()
                .find(|v| outs.get(v).is_some_and(|o| !o.is_empty()) && sets.iter().all(|b| b.contains(v)))
        });
        if let Some(join) = join {
            kinds.insert(id.clone(), NodeKind::Parallel);
            kinds.entry(join.to_owned()).or_insert(NodeKind::Join);
        }
    }
    kinds
}

fn node_id(id: &str, chart: &Flowchart) -> Result<NodeId, ImportError> {
    let at = chart.nodes.get(id).map(|n| n.at).unwrap_or_default();
    NodeId::new(id).map_err(|source| ImportError::new(at, ImportErrorKind::BadId { source }))
}

fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.starts_with(|c: char| c.is_ascii_lowercase()) { out } else { "imported".to_owned() }
}

/// Where each cycle begins: the single entry node itself, or added nodes before the entries.
enum Entry {
    /// The entry node is the start.
    Node(String),
    /// A start is added before the entry node, which branches.
    Before { start: String, node: String },
    /// A start and a decision that picks one root are added before several roots.
    Roots { start: String, decision: String, roots: Vec<String> },
}

/// A node id for an added node: `base`, or `base` with the first number that is free.
fn free_id(chart: &Flowchart, base: &str, taken: &[&str]) -> String {
    let free = |id: &str| !chart.nodes.contains_key(id) && !taken.contains(&id);
    if free(base) {
        return base.to_owned();
    }
    (2..).map(|n| format!("{base}{n}")).find(|id| free(id)).unwrap_or_else(|| base.to_owned())
}

/// The roots (nodes no edge from another node leads to), or the first node when every node is
/// on a cycle; a single entry that does not branch is the start. When every node is on a cycle
/// and the first is a `{}` decision, the first node with one way out is the start.
fn entry(chart: &Flowchart, outs: &HashMap<&str, Vec<usize>>, warnings: &mut Vec<ImportWarning>) -> Entry {
    let led_to: std::collections::HashSet<&str> =
        chart.edges.iter().filter(|e| e.from != e.to).map(|e| e.to.as_str()).collect();
    let roots: Vec<&String> = chart.nodes.keys().filter(|id| !led_to.contains(id.as_str())).collect();
    let first = chart.nodes.keys().next().cloned().unwrap_or_default();
    let at = |id: &str| chart.nodes.get(id).map(|n| n.at).unwrap_or_default();
    match roots.as_slice() {
        [] | [_] => {
            let node = roots.first().map_or(first, |r| (*r).clone());
            let count = outs.get(node.as_str()).map_or(0, Vec::len);
            if count <= 1 {
                return Entry::Node(node);
            }
            // Every node is on a cycle and the first is a drawn decision, which never begins a
            // cycle (kars draws its own decisions `{}`): the first node with one way out does.
            let drawn_decision = chart.nodes.get(node.as_str()).is_some_and(|n| n.shape == Shape::Rhombus);
            if roots.is_empty()
                && drawn_decision
                && let Some(single) = chart.nodes.keys().find(|id| outs.get(id.as_str()).is_some_and(|o| o.len() == 1))
            {
                return Entry::Node(single.clone());
            }
            let start = free_id(chart, "start", &[]);
            warnings.push(ImportWarning {
                at: at(&node),
                kind: WarningKind::StartBeforeBranch { start: start.clone(), node: node.clone(), count },
            });
            Entry::Before { start, node }
        }
        [root, ..] => {
            let start = free_id(chart, "start", &[]);
            let decision = free_id(chart, "which", &[start.as_str()]);
            let roots: Vec<String> = roots.iter().map(|r| (*r).clone()).collect();
            warnings.push(ImportWarning {
                at: at(root),
                kind: WarningKind::StartBeforeRoots {
                    start: start.clone(),
                    decision: decision.clone(),
                    roots: roots.clone(),
                },
            });
            Entry::Roots { start, decision, roots }
        }
    }
}

/// A node with the import's defaults.
fn skeleton(label: String, kind: NodeKind, owner: &RoleId) -> Node {
    Node {
        roles: if kind == NodeKind::Task { vec![owner.clone()] } else { Vec::new() },
        decided_by: (kind == NodeKind::Decision).then(|| DecidedBy {
            role: Some(owner.clone()),
            outcome_of: None,
            map: Default::default(),
        }),
        ..Node::new(label, kind)
    }
}

fn plain_id(id: &str) -> Result<NodeId, ImportError> {
    NodeId::new(id).map_err(|source| ImportError::new(Location::default(), ImportErrorKind::BadId { source }))
}

/// The targets of the edges that leave `id`.
fn targets<'c>(chart: &'c Flowchart, outs: &HashMap<&str, Vec<usize>>, id: &str) -> Vec<&'c str> {
    outs.get(id).into_iter().flatten().filter_map(|&i| chart.edges.get(i)).map(|e| e.to.as_str()).collect()
}

/// The nodes reachable from `first` without passing `fork`, in breadth-first order.
fn branch_nodes<'c>(
    chart: &'c Flowchart,
    outs: &HashMap<&str, Vec<usize>>,
    fork: &str,
    first: &'c str,
) -> Vec<&'c str> {
    let mut seen = vec![first];
    let mut known: std::collections::HashSet<&str> = std::collections::HashSet::from([first]);
    let mut at = 0;
    while let Some(&v) = seen.get(at) {
        at += 1;
        for w in targets(chart, outs, v) {
            if w != fork && known.insert(w) {
                seen.push(w);
            }
        }
    }
    seen
}

fn to_spec(
    chart: &Flowchart,
    title: Option<String>,
    description: Option<String>,
    read_forks: Forks,
    warnings: &mut Vec<ImportWarning>,
) -> Result<Spec, ImportError> {
    let owner = RoleId::new(PLACEHOLDER_ROLE)
        .map_err(|source| ImportError::new(Default::default(), ImportErrorKind::BadId { source }))?;
    let mut outs: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in chart.edges.iter().enumerate() {
        outs.entry(e.from.as_str()).or_default().push(i);
    }
    let entry = entry(chart, &outs, warnings);
    // The node that is the start, and the node whose incoming edges begin the next cycle.
    let (start, first) = match &entry {
        Entry::Node(node) => (Some(node.as_str()), Some(node.as_str())),
        Entry::Before { node, .. } => (None, Some(node.as_str())),
        Entry::Roots { .. } => (None, None),
    };
    let forks = match read_forks {
        Forks::Read => forks_and_joins(chart, &outs, start),
        Forks::AsDecisions => HashMap::new(),
    };
    let mut labels: Vec<Option<String>> = chart.edges.iter().map(|e| e.label.clone()).collect();
    let mut nodes = IndexMap::new();
    let mut edges = Vec::with_capacity(chart.edges.len() + 4);
    match &entry {
        Entry::Node(_) => {}
        Entry::Before { start, node } => {
            nodes.insert(plain_id(start)?, skeleton("Start".to_owned(), NodeKind::Start, &owner));
            edges.push(Edge { from: plain_id(start)?, to: node_id(node, chart)?, label: None });
        }
        Entry::Roots { start, decision, roots } => {
            nodes.insert(plain_id(start)?, skeleton("Start".to_owned(), NodeKind::Start, &owner));
            nodes.insert(plain_id(decision)?, skeleton("Which way?".to_owned(), NodeKind::Decision, &owner));
            edges.push(Edge { from: plain_id(start)?, to: plain_id(decision)?, label: None });
            for root in roots {
                edges.push(Edge { from: plain_id(decision)?, to: node_id(root, chart)?, label: Some(root.clone()) });
            }
        }
    }
    for (id, flow) in &chart.nodes {
        let out = outs.get(id.as_str()).map_or(&[][..], Vec::as_slice);
        let fork_kind = forks.get(id.as_str()).copied();
        let kind = if start == Some(id.as_str()) {
            NodeKind::Start
        } else if out.is_empty() {
            NodeKind::End
        } else if fork_kind == Some(NodeKind::Parallel) {
            NodeKind::Parallel
        } else if out.len() > 1 {
            if flow.shape != Shape::Rhombus {
                warnings.push(ImportWarning {
                    at: flow.at,
                    kind: WarningKind::BranchingNode { id: id.clone(), count: out.len() },
                });
            }
            NodeKind::Decision
        } else if flow.shape == Shape::Rhombus {
            warnings.push(ImportWarning { at: flow.at, kind: WarningKind::LoneDecision { id: id.clone() } });
            NodeKind::Task
        } else if let Some(kind) = fork_kind {
            kind
        } else if flow.shape == Shape::Hexagon {
            NodeKind::Wait
        } else {
            NodeKind::Task
        };
        if kind == NodeKind::Decision {
            fill_labels(chart, out, &mut labels, warnings);
        }
        let back_to_start = out.iter().any(|&i| chart.edges.get(i).is_some_and(|e| Some(e.to.as_str()) == first));
        let outcome = (kind == NodeKind::End || (back_to_start && kind != NodeKind::Start))
            .then(|| PLACEHOLDER_OUTCOME.to_owned());
        let node = Node {
            style: chart.styles.get(id).cloned().unwrap_or_default(),
            outcome,
            ..skeleton(flow.label.clone(), kind, &owner)
        };
        nodes.insert(node_id(id, chart)?, node);
    }
    let mut phases = IndexMap::new();
    for sub in &chart.subgraphs {
        if sub.nodes.is_empty() {
            warnings.push(ImportWarning { at: sub.at, kind: WarningKind::EmptyPhase { id: sub.id.clone() } });
            continue;
        }
        let id = PhaseId::new(sub.id.clone())
            .map_err(|source| ImportError::new(sub.at, ImportErrorKind::BadId { source }))?;
        let members = sub.nodes.iter().map(|n| node_id(n, chart)).collect::<Result<Vec<_>, _>>()?;
        phases.insert(id, Phase { title: sub.title.clone(), nodes: members });
    }
    // Added nodes join the phase of the node they lead to, so no node is left out of the phases.
    let added: Option<(Vec<&str>, &str)> = match &entry {
        Entry::Node(_) => None,
        Entry::Before { start, node } => Some((vec![start.as_str()], node.as_str())),
        Entry::Roots { start, decision, roots } => {
            roots.first().map(|root| (vec![start.as_str(), decision.as_str()], root.as_str()))
        }
    };
    if let Some((ids, anchor)) = added
        && let Some(phase) = phases.values_mut().find(|p: &&mut Phase| p.nodes.iter().any(|n| n.as_str() == anchor))
    {
        let ids = ids.into_iter().map(plain_id).collect::<Result<Vec<_>, _>>()?;
        phase.nodes.splice(0..0, ids);
    }
    // With an added start, edges back to the first node begin the next cycle at the start.
    let back_to = match &entry {
        Entry::Before { start, node } => Some((node.as_str(), plain_id(start)?)),
        _ => None,
    };
    for (e, label) in chart.edges.iter().zip(labels) {
        let to = match &back_to {
            Some((node, start)) if e.to == *node => start.clone(),
            _ => node_id(&e.to, chart)?,
        };
        edges.push(Edge { from: node_id(&e.from, chart)?, to, label });
    }
    let mut classes = IndexMap::new();
    for (name, class) in &chart.classes {
        let id = ClassId::new(name.clone())
            .map_err(|source| ImportError::new(class.at, ImportErrorKind::BadId { source }))?;
        let members = class.nodes.iter().map(|n| node_id(n, chart)).collect::<Result<Vec<_>, _>>()?;
        classes.insert(id, Class { style: class.style.clone(), nodes: members });
    }
    let mut roles = IndexMap::new();
    roles.insert(
        owner,
        Role {
            title: "Owner".to_owned(),
            responsibilities: vec!["placeholder from the import: replace with the team's real roles".to_owned()],
        },
    );
    let mut spec = Spec::new(title.as_deref().map_or_else(|| "imported".to_owned(), slug), "UTC");
    (spec.title, spec.description, spec.direction) = (title, description, chart.direction);
    (spec.roles, spec.phases, spec.classes, spec.nodes, spec.edges) = (roles, phases, classes, nodes, edges);
    Ok(spec)
}

/// Gives a decision's unlabelled or repeated branches distinct labels.
fn fill_labels(chart: &Flowchart, out: &[usize], labels: &mut [Option<String>], warnings: &mut Vec<ImportWarning>) {
    let mut used: Vec<String> = Vec::new();
    for &i in out {
        let Some(edge) = chart.edges.get(i) else { continue };
        let current = labels.get(i).cloned().flatten();
        if let Some(l) = current.filter(|l| !used.contains(l)) {
            used.push(l);
            continue;
        }
        let taken = |l: &String| {
            used.contains(l) || out.iter().any(|&j| j != i && labels.get(j).cloned().flatten().as_ref() == Some(l))
        };
        let mut label = edge.to.clone();
        let mut n = 2;
        while taken(&label) {
            label = format!("{} {n}", edge.to);
            n += 1;
        }
        used.push(label.clone());
        warnings.push(ImportWarning {
            at: edge.at,
            kind: WarningKind::LabelAdded { from: edge.from.clone(), to: edge.to.clone(), label: label.clone() },
        });
        if let Some(slot) = labels.get_mut(i) {
            *slot = Some(label);
        }
    }
}

/// Writes an imported spec as YAML, with comments that say what to fill in.
///
/// The YAML loads back into the same [`Spec`].
#[must_use]
pub fn to_yaml(spec: &Spec) -> String {
    let body = serde_saphyr::to_string(spec).unwrap_or_default();
    let mut out = String::from(
        "# Imported from a mermaid flowchart by `kars import`: a skeleton to complete.\n\
         # Every task is given the placeholder role `owner` and every end the outcome `done`;\n\
         # add the real roles, gates, deadlines and actions, then run `kars check`.\n",
    );
    for line in body.lines() {
        if line.starts_with("timezone:") {
            out.push_str("# Set this to your team's IANA time zone, for example America/Toronto.\n");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::mermaid::{RenderOptions, render};

    #[test]
    fn back_edges_and_branches_get_outcomes_and_labels() {
        let outcome = import("flowchart TB\n A --> B\n B --> C & D\n C --> A\n").expect("imports");
        let node = |id: &str| outcome.spec.nodes.get(id).expect("node");
        assert_eq!(node("A").kind, NodeKind::Start);
        assert_eq!(node("B").kind, NodeKind::Decision);
        assert_eq!(node("C").outcome.as_deref(), Some(PLACEHOLDER_OUTCOME));
        assert_eq!(node("D").kind, NodeKind::End);
        let labels: Vec<_> =
            outcome.spec.edges.iter().filter(|e| e.from.as_str() == "B").map(|e| e.label.clone()).collect();
        assert_eq!(labels, [Some("C".to_owned()), Some("D".to_owned())]);
        assert!(outcome.warnings.iter().any(|w| matches!(w.kind, WarningKind::BranchingNode { .. })));
    }

    fn kinds(outcome: &ImportOutcome) -> Vec<(String, NodeKind)> {
        outcome.spec.nodes.iter().map(|(id, n)| (id.to_string(), n.kind)).collect()
    }

    #[test]
    fn unlabelled_ways_out_that_meet_again_are_a_fork_and_its_join() {
        let text = "flowchart TB\n A --> W\n W --> X & Y\n X --> Z\n Y --> Z\n Z --> E\n";
        let outcome = import(text).expect("imports");
        use NodeKind as K;
        let want = [("A", K::Start), ("W", K::Parallel), ("X", K::Task), ("Y", K::Task), ("Z", K::Join), ("E", K::End)];
        let want: Vec<(String, NodeKind)> = want.iter().map(|(id, k)| ((*id).to_owned(), *k)).collect();
        assert_eq!(kinds(&outcome), want);
        assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
        assert!(outcome.spec.edges.iter().all(|e| e.label.is_none()), "no labels are invented");
        let checked = crate::check(outcome.spec).expect("checks");
        let fork = checked.fork(&NodeId::new("W").expect("id")).expect("W is a fork");
        assert_eq!(fork.join.as_str(), "Z");
    }

    #[test]
    fn nested_forks_and_a_branch_that_ends_import_as_forks() {
        let text = "flowchart TB\n A --> F\n F --> G & B\n G --> C & D\n C --> H\n D --> H\n H --> J\n B --> Q{Ok?}\n Q -->|yes| J\n Q -->|no| X\n J --> A\n";
        let outcome = import(text).expect("imports");
        let kind = |id: &str| outcome.spec.nodes.get(id).map(|n| n.kind);
        assert_eq!((kind("F"), kind("G")), (Some(NodeKind::Parallel), Some(NodeKind::Parallel)));
        assert_eq!(
            (kind("H"), kind("J"), kind("X")),
            (Some(NodeKind::Join), Some(NodeKind::Join), Some(NodeKind::End))
        );
        let checked = crate::check(outcome.spec).expect("checks");
        assert_eq!(checked.forks().len(), 2);
    }

    #[test]
    fn ways_out_that_never_meet_or_leave_their_block_stay_decisions() {
        // Never meet: each branch ends on its own.
        let outcome = import("flowchart TB\n A --> W\n W --> X & Y\n").expect("imports");
        assert_eq!(outcome.spec.nodes.get("W").map(|n| n.kind), Some(NodeKind::Decision));
        assert!(outcome.warnings.iter().any(|w| matches!(w.kind, WarningKind::BranchingNode { .. })));
        // Meet at Z, but Y also jumps past it to E: not a block, so a decision.
        let text = "flowchart TB\n A --> W\n W --> X & Y\n X --> Z\n Y --> Z & E\n Z --> E\n E --> F\n";
        let outcome = import(text).expect("imports");
        assert_eq!(outcome.spec.nodes.get("W").map(|n| n.kind), Some(NodeKind::Decision));
        assert_eq!(outcome.spec.nodes.get("Z").map(|n| n.kind), Some(NodeKind::Task));
        assert!(crate::check(outcome.spec).is_ok());
    }

    proptest! {
        /// The YAML of any imported spec loads back into the same spec.
        #[test]
        fn yaml_loads_back(labels in proptest::collection::vec("\\PC{1,12}", 1..5)) {
            let mut spec = import("flowchart TB\n A --> B\n").expect("imports").spec;
            for (i, label) in labels.iter().enumerate() {
                if let Some(node) = spec.nodes.get_index_mut(i % 2).map(|(_, n)| n) {
                    node.label.clone_from(label);
                }
            }
            let text = render(&spec, &RenderOptions::default());
            let again = import(&text).expect("rendering imports").spec;
            let yaml = to_yaml(&again);
            let back: Spec = serde_saphyr::from_str(&yaml).expect("yaml loads");
            prop_assert_eq!(back, again);
        }
    }
}
