//! Rendering a spec as a mermaid flowchart, optionally annotated, by role lanes, or with the
//! state of a running instance drawn over it.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::text::{is_safe_style, label_text, needs_colon_guard, quoted_inner};
use super::{Lanes, RenderOptions, Shapes, StateView};
use crate::calendar::WeekTime;
use crate::id::NodeId;
use crate::spec::{Action, JoinRule, Node, NodeKind, Recipient, Spec};

const INDENT: &str = "    ";

/// Renders `spec` as a mermaid flowchart. The output is deterministic: the same spec and
/// options give the same bytes.
///
/// ```
/// use kars_spec::mermaid::{render, RenderOptions};
/// let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../workflows/kars-release.yaml")).unwrap();
/// let spec = kars_spec::load(&yaml, "kars-release.yaml").unwrap();
/// let text = render(spec.spec(), &RenderOptions::default());
/// assert!(text.starts_with("flowchart TB\n"));
/// assert!(text.contains("    N -->|No| O\n"));
/// ```
#[must_use]
pub fn render(spec: &Spec, options: &RenderOptions) -> String {
    Renderer { spec, options, state: None }.run()
}

/// Renders `spec` like [`render`], with an instance drawn over it: the current nodes (one per
/// running branch) highlighted (class `kars_current`, and each one's waiting text added to its
/// label), the visited
/// nodes (class `kars_visited`) and the edges between visited or current nodes (`linkStyle`).
#[must_use]
pub fn render_state(spec: &Spec, options: &RenderOptions, state: &StateView) -> String {
    Renderer { spec, options, state: Some(state) }.run()
}

struct Renderer<'a> {
    spec: &'a Spec,
    options: &'a RenderOptions,
    state: Option<&'a StateView>,
}

impl Renderer<'_> {
    fn run(&self) -> String {
        let mut out = format!("flowchart {}\n", self.spec.direction.as_str());
        let groups = match self.options.lanes {
            Lanes::Phases => self.phase_groups(),
            Lanes::Roles => self.role_groups(),
        };
        let grouped: HashSet<&str> = groups.iter().flat_map(|g| g.nodes.iter().map(NodeId::as_str)).collect();
        for (id, node) in &self.spec.nodes {
            if !grouped.contains(id.as_str()) {
                self.node_line(&mut out, INDENT, id, node);
            }
        }
        if let Some(note) = self.waiting_note() {
            out.push_str(&note);
        }
        for group in &groups {
            out.push('\n');
            match &group.title {
                Some(title) => {
                    let guard = needs_colon_guard(&[&group.id, title]);
                    let _ = writeln!(out, "{INDENT}subgraph {}[\"{}\"]", group.id, quoted_inner(title, guard));
                }
                None => {
                    let _ = writeln!(out, "{INDENT}subgraph {}", group.id);
                }
            }
            for id in &group.nodes {
                if let Some(node) = self.spec.nodes.get(id) {
                    self.node_line(&mut out, "        ", id, node);
                }
            }
            let _ = writeln!(out, "{INDENT}end");
        }
        if !self.spec.edges.is_empty() {
            out.push('\n');
        }
        for edge in &self.spec.edges {
            let label = self.edge_label(edge);
            match label {
                Some(label) => {
                    let guard = needs_colon_guard(&[edge.from.as_str(), edge.to.as_str(), &label]);
                    let _ = writeln!(out, "{INDENT}{} -->|{}| {}", edge.from, label_text(&label, guard), edge.to);
                }
                None => {
                    let _ = writeln!(out, "{INDENT}{} --> {}", edge.from, edge.to);
                }
            }
        }
        let mut styles = String::new();
        for (id, node) in &self.spec.nodes {
            let props: Vec<String> = node
                .style
                .iter()
                .filter(|(k, v)| is_safe_style(k, v))
                .map(|(k, v)| format!("{k}:{}", v.trim()))
                .collect();
            if !props.is_empty() {
                let _ = writeln!(styles, "{INDENT}style {id} {}", props.join(","));
            }
        }
        for (class, c) in &self.spec.classes {
            let props: Vec<String> =
                c.style.iter().filter(|(k, v)| is_safe_style(k, v)).map(|(k, v)| format!("{k}:{}", v.trim())).collect();
            // Mermaid needs a property on a `classDef`.
            if props.is_empty() {
                continue;
            }
            let _ = writeln!(styles, "{INDENT}classDef {class} {}", props.join(","));
            if !c.nodes.is_empty() {
                let nodes: Vec<&str> = c.nodes.iter().map(NodeId::as_str).collect();
                let _ = writeln!(styles, "{INDENT}class {} {class}", nodes.join(","));
            }
        }
        if !styles.is_empty() {
            out.push('\n');
            out.push_str(&styles);
        }
        if let Some(state) = self.state {
            self.overlay(&mut out, state);
        }
        out
    }

    fn node_line(&self, out: &mut String, indent: &str, id: &NodeId, node: &Node) {
        let shape = match (node.kind, self.options.shapes) {
            (NodeKind::Decision, _) => ("{", "}"),
            (NodeKind::Start | NodeKind::End, Shapes::ByKind) => ("([", "])"),
            (NodeKind::Wait, Shapes::ByKind) => ("{{", "}}"),
            (NodeKind::Parallel, Shapes::ByKind) => ("[/", "\\]"),
            (NodeKind::Join, Shapes::ByKind) => ("[\\", "/]"),
            _ => ("[", "]"),
        };
        let mut extras: Vec<(String, &str)> = Vec::new();
        if self.options.annotate {
            let note = annotation(self.spec, node);
            if !note.is_empty() {
                extras.push((note, "i"));
            }
        }
        if let Some(state) = self.state
            && let Some(waiting) = state.waiting_at.get(id).or(state.waiting.as_ref())
            && state.current.contains(id)
        {
            extras.push((format!("⏳ {waiting}"), "b"));
        }
        let text = if extras.is_empty() {
            label_text(&node.label, needs_colon_guard(&[id.as_str(), &node.label]))
        } else {
            let guard =
                needs_colon_guard(&[id.as_str(), &node.label]) || extras.iter().any(|(e, _)| e.contains("style"));
            let mut text = format!("\"{}", quoted_inner(&node.label, guard));
            for (extra, tag) in &extras {
                let _ = write!(text, "<br/><{tag}>{}</{tag}>", quoted_inner(extra, guard));
            }
            text.push('"');
            text
        };
        let _ = writeln!(out, "{indent}{id}{}{text}{}", shape.0, shape.1);
    }

    fn edge_label(&self, edge: &crate::spec::Edge) -> Option<String> {
        let label = edge.label.clone()?;
        if !self.options.annotate {
            return Some(label);
        }
        let decided = self.spec.nodes.get(&edge.from).and_then(|n| n.decided_by.as_ref());
        let outcomes: Vec<&str> = decided
            .map(|d| d.map.iter().filter(|(_, branch)| **branch == label).map(|(o, _)| o.as_str()).collect())
            .unwrap_or_default();
        if outcomes.is_empty() { Some(label) } else { Some(format!("{label} · {}", outcomes.join(", "))) }
    }

    fn phase_groups(&self) -> Vec<Group> {
        let mut seen: HashSet<&str> = HashSet::new();
        self.spec
            .phases
            .iter()
            .map(|(id, phase)| Group {
                id: id.to_string(),
                title: phase.title.clone(),
                nodes: phase
                    .nodes
                    .iter()
                    .filter(|n| self.spec.nodes.contains_key(*n) && seen.insert(n.as_str()))
                    .cloned()
                    .collect(),
            })
            .collect()
    }

    fn role_groups(&self) -> Vec<Group> {
        let mut lanes: Vec<(Option<String>, Group)> = Vec::new();
        let mut taken: HashSet<String> = self.spec.nodes.keys().map(ToString::to_string).collect();
        let mut lane_id = |base: &str| {
            let mut id = base.to_owned();
            while taken.contains(&id) {
                id.push('_');
            }
            taken.insert(id.clone());
            id
        };
        for (role, info) in &self.spec.roles {
            let id = lane_id(&format!("role_{}", role.as_str().replace('-', "_")));
            lanes.push((Some(role.to_string()), Group { id, title: Some(info.title.clone()), nodes: Vec::new() }));
        }
        for (id, node) in &self.spec.nodes {
            let role = node.roles.first().or_else(|| node.decided_by.as_ref().and_then(|d| d.role.as_ref()));
            let key = role.map(ToString::to_string);
            let pos = match lanes.iter().position(|(r, _)| *r == key) {
                Some(pos) => pos,
                None => {
                    let (lane, title) = match &key {
                        Some(r) => (lane_id(&format!("role_{}", r.replace('-', "_"))), r.clone()),
                        None => (lane_id("automatic"), "automatic".to_owned()),
                    };
                    lanes.push((key, Group { id: lane, title: Some(title), nodes: Vec::new() }));
                    lanes.len() - 1
                }
            };
            if let Some((_, group)) = lanes.get_mut(pos) {
                group.nodes.push(id.clone());
            }
        }
        // The automatic lane goes last.
        lanes.sort_by_key(|(role, _)| role.is_none());
        lanes.into_iter().map(|(_, g)| g).filter(|g| !g.nodes.is_empty()).collect()
    }

    /// A note node for the waiting text when no node is current.
    fn waiting_note(&self) -> Option<String> {
        let state = self.state?;
        let waiting = state.waiting.as_ref()?;
        if state.current.iter().any(|c| self.spec.nodes.contains_key(c)) {
            return None;
        }
        let mut id = "kars_waiting".to_owned();
        while self.spec.nodes.keys().any(|n| n.as_str() == id) || self.spec.phases.keys().any(|p| p.as_str() == id) {
            id.push('_');
        }
        let text = format!("⏳ {waiting}");
        let guard = needs_colon_guard(&[&id, &text]);
        Some(format!("{INDENT}{id}([\"{}\"])\n", quoted_inner(&text, guard)))
    }

    fn overlay(&self, out: &mut String, state: &StateView) {
        let known = |ids: &[NodeId]| -> Vec<String> {
            let mut list: Vec<String> = Vec::new();
            for id in ids {
                if self.spec.nodes.contains_key(id) && !list.contains(&id.to_string()) {
                    list.push(id.to_string());
                }
            }
            list
        };
        let current = known(&state.current);
        let visited: Vec<String> = known(&state.visited).into_iter().filter(|v| !current.contains(v)).collect();
        let on_path = |id: &NodeId| current.iter().chain(&visited).any(|v| v == id.as_str());
        let links: Vec<String> = self
            .spec
            .edges
            .iter()
            .enumerate()
            .filter(|(_, e)| on_path(&e.from) && on_path(&e.to))
            .map(|(i, _)| i.to_string())
            .collect();
        out.push('\n');
        let _ = writeln!(out, "{INDENT}classDef kars_visited fill:#eceff1,stroke:#607d8b,color:#37474f");
        let _ = writeln!(out, "{INDENT}classDef kars_current fill:#fff59d,stroke:#f57f17,stroke-width:3px");
        if !visited.is_empty() {
            let _ = writeln!(out, "{INDENT}class {} kars_visited", visited.join(","));
        }
        if !current.is_empty() {
            let _ = writeln!(out, "{INDENT}class {} kars_current", current.join(","));
        }
        if !links.is_empty() {
            let _ = writeln!(out, "{INDENT}linkStyle {} stroke:#f57f17,stroke-width:3px", links.join(","));
        }
    }
}

struct Group {
    id: String,
    title: Option<String>,
    nodes: Vec<NodeId>,
}

fn short(t: WeekTime) -> String {
    let day = crate::calendar::weekday_name(t.weekday());
    let day: String = day.chars().take(3).collect();
    let time = t.time().format("%H:%M");
    if t.week() > 0 { format!("{day} {time} +{}w", t.week()) } else { format!("{day} {time}") }
}

fn recipients(spec: &Spec, to: &[Recipient]) -> String {
    to.iter()
        .map(|r| match r {
            Recipient::Channel(c) => spec.channels.get(c).map_or_else(|| format!("channel {c}"), |ch| ch.name.clone()),
            Recipient::Role(r) => r.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The second label line of an annotated node: who, when, how often.
fn annotation(spec: &Spec, node: &Node) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !node.roles.is_empty() {
        parts.push(node.roles.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
    }
    if let Some(d) = &node.decided_by {
        if let Some(role) = &d.role {
            parts.push(format!("decided by {role}"));
        }
        if let Some(of) = &d.outcome_of {
            parts.push(format!("by the outcome of {of}"));
        }
    }
    if let Some(action) = &node.action {
        parts.push(match action {
            Action::Notify(n) => format!("notify {}", recipients(spec, &n.to)),
            Action::OpenPullRequest(p) => format!("open PR {} → {}", p.from, p.to),
            Action::MergePullRequest(p) => format!("merge {} → {}", p.from, p.to),
            Action::Deploy(e) => format!("deploy {}", e.environment),
            Action::Rollback(e) => format!("roll back {}", e.environment),
            Action::RunChecks(c) => format!("run {}", c.suite),
        });
    }
    if let Some(gate) = node.gate {
        parts.push(format!("from {}", short(gate)));
    }
    if let Some(deadline) = &node.deadline {
        parts.push(format!("by {}", short(deadline.by)));
    }
    if let Some(retry) = &node.retry {
        parts.push(format!("at most {}×", retry.max_attempts));
    }
    match node.kind {
        NodeKind::Parallel => parts.push("every branch at once".to_owned()),
        NodeKind::Join => parts.push(match node.join.unwrap_or_default() {
            JoinRule::All => "waits for every branch".to_owned(),
            JoinRule::First => "first branch wins, the others are cancelled".to_owned(),
        }),
        _ => {}
    }
    if let Some(outcome) = &node.outcome {
        parts.push(format!("→ {outcome}"));
    }
    parts.join(" · ")
}
