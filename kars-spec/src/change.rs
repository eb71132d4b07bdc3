//! What changed between two versions of a spec, and whether a change can alter what a running
//! instance does.
//!
//! A change is *cosmetic* when no instance can behave differently because of it: titles,
//! labels, descriptions, styles and style classes, phases (the picture's subgraphs), message texts,
//! responsibilities, channel names and purposes, the team (the roster, which a running
//! instance keeps apart) and who may manage it, labels on edges that leave no decision (a
//! parallel node's edges), and writing out the default `join: all`. Every other change is
//! *behavioural*: nodes, kinds (`parallel` and `join` included), join rules, edges, decision
//! labels, gates, deadlines, roles on nodes, windows, retry bounds, actions, branches,
//! environments, the zone.
//!
//! [`behaviour_fingerprint`] hashes only what is behavioural (in spec order, since order
//! decides the engine's indices); two specs with the same behaviour fingerprint compile to
//! the same engine tables. [`compare`] lists the changes one by one for people to read.

use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::checked::Fingerprint;
use crate::id::NodeId;
use crate::spec::{Edge, NodeKind, Spec};

/// One difference between two specs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "part")]
#[non_exhaustive]
pub enum Change {
    /// The workflow's name, title or description.
    Heading,
    /// The zone every wall-clock time is in.
    Timezone,
    /// The team (the roster) or who may manage it.
    Team,
    /// A role's title or responsibilities; or a role added or removed.
    Role {
        /// The role.
        id: String,
        /// Added, removed, or changed.
        how: How,
    },
    /// A channel, branch, environment or window.
    Item {
        /// `channel`, `branch`, `environment`, `window`.
        section: Section,
        /// Its id.
        id: String,
        /// Added, removed, or changed.
        how: How,
    },
    /// The picture only: the direction, the phases (subgraphs) or the style classes.
    Picture,
    /// A node.
    Node {
        /// The node.
        id: NodeId,
        /// Added, removed, or changed.
        how: How,
    },
    /// An edge (`from --> to`).
    Edge {
        /// The source.
        from: NodeId,
        /// The target.
        to: NodeId,
        /// Added, removed, or changed (its label).
        how: How,
    },
    /// Only the order of nodes, windows or branches: it decides the engine's tables.
    Order,
}

/// A spec section whose items have ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// `channels:`.
    Channel,
    /// `branches:`.
    Branch,
    /// `environments:`.
    Environment,
    /// `windows:`.
    Window,
}

/// How an item changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// New in the new spec.
    Added,
    /// Gone from the new spec.
    Removed,
    /// Changed in a way no instance can notice (a label, a title, a message).
    Cosmetic,
    /// Changed in what it does.
    Behavioural,
}

impl Change {
    /// Whether the change can alter what an instance does.
    #[must_use]
    pub fn is_behavioural(&self) -> bool {
        match self {
            Change::Heading | Change::Team | Change::Picture | Change::Role { .. } => false,
            Change::Timezone | Change::Order => true,
            Change::Item { section, how, .. } => *section != Section::Channel && *how != How::Cosmetic,
            Change::Node { how, .. } | Change::Edge { how, .. } => *how != How::Cosmetic,
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Channel => "channel",
            Section::Branch => "branch",
            Section::Environment => "environment",
            Section::Window => "window",
        })
    }
}

impl fmt::Display for How {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            How::Added => "added",
            How::Removed => "removed",
            How::Cosmetic => "relabelled",
            How::Behavioural => "changed",
        })
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Heading => f.write_str("the workflow's name, title or description changed"),
            Change::Timezone => f.write_str("the time zone changed"),
            Change::Team => f.write_str("the team changed"),
            Change::Role { id, how } => write!(f, "role `{id}` {how}"),
            Change::Item { section, id, how } => write!(f, "{section} `{id}` {how}"),
            Change::Picture => f.write_str("the picture's direction, phases or classes changed"),
            Change::Node { id, how } => write!(f, "node `{id}` {how}"),
            Change::Edge { from, to, how } => write!(f, "edge `{from} --> {to}` {how}"),
            Change::Order => f.write_str("the order of nodes, windows or branches changed"),
        }
    }
}

/// The spec with every cosmetic field emptied: what [`behaviour_fingerprint`] hashes.
#[must_use]
pub fn behaviour(spec: &Spec) -> Spec {
    let mut s = spec.clone();
    s.name.clear();
    s.title = None;
    s.description = None;
    s.direction = crate::spec::Direction::default();
    s.team.clear();
    s.team_managed_by.clear();
    s.phases.clear();
    s.classes.clear();
    for role in s.roles.values_mut() {
        role.title.clear();
        role.responsibilities.clear();
    }
    for channel in s.channels.values_mut() {
        channel.name.clear();
        channel.purpose = None;
    }
    for env in s.environments.values_mut() {
        env.title = None;
    }
    for window in s.windows.values_mut() {
        window.title = None;
    }
    for node in s.nodes.values_mut() {
        // `join: all` is the default: writing it or not does the same.
        if node.join == Some(crate::spec::JoinRule::All) {
            node.join = None;
        }
        node.label.clear();
        node.description = None;
        node.style.clear();
        if let Some(crate::spec::Action::Notify(notify)) = &mut node.action {
            notify.message.clear();
        }
        if let Some(deadline) = &mut node.deadline {
            deadline.escalate.message = None;
        }
        if let Some(retry) = &mut node.retry {
            retry.on_exhausted.message = None;
        }
    }
    let decisions: Vec<NodeId> =
        s.nodes.iter().filter(|(_, n)| n.kind == NodeKind::Decision).map(|(id, _)| id.clone()).collect();
    for edge in &mut s.edges {
        if !decisions.contains(&edge.from) {
            edge.label = None;
        }
    }
    s
}

/// The fingerprint of what `spec` does: equal for two specs that differ only cosmetically.
#[must_use]
pub fn behaviour_fingerprint(spec: &Spec) -> Fingerprint {
    Fingerprint::of(&behaviour(spec))
}

/// Every change from `old` to `new`, in spec order: heading, zone, team, roles, channels,
/// branches, environments, windows, picture, nodes, edges.
#[must_use]
pub fn compare(old: &Spec, new: &Spec) -> Vec<Change> {
    let (bo, bn) = (behaviour(old), behaviour(new));
    let mut changes = Vec::new();
    if (&old.name, &old.title, &old.description) != (&new.name, &new.title, &new.description) {
        changes.push(Change::Heading);
    }
    if old.timezone != new.timezone {
        changes.push(Change::Timezone);
    }
    if old.team != new.team || old.team_managed_by != new.team_managed_by {
        changes.push(Change::Team);
    }
    keyed(
        &old.roles,
        &new.roles,
        &bo.roles,
        &bn.roles,
        |id, how| Change::Role { id: id.to_string(), how },
        &mut changes,
    );
    let item = |section| move |id: &dyn fmt::Display, how| Change::Item { section, id: id.to_string(), how };
    keyed(&old.channels, &new.channels, &bo.channels, &bn.channels, item(Section::Channel), &mut changes);
    keyed(&old.branches, &new.branches, &bo.branches, &bn.branches, item(Section::Branch), &mut changes);
    let envs = (&old.environments, &new.environments, &bo.environments, &bn.environments);
    keyed(envs.0, envs.1, envs.2, envs.3, item(Section::Environment), &mut changes);
    keyed(&old.windows, &new.windows, &bo.windows, &bn.windows, item(Section::Window), &mut changes);
    if old.direction != new.direction || old.phases != new.phases || old.classes != new.classes {
        changes.push(Change::Picture);
    }
    keyed(&old.nodes, &new.nodes, &bo.nodes, &bn.nodes, |id, how| node_change(id, how), &mut changes);
    edges(old, new, &bo, &bn, &mut changes);
    // Maps compare without their order; the fingerprint hashes them in order.
    if changes.iter().all(|c| !c.is_behavioural()) && Fingerprint::of(&bo) != Fingerprint::of(&bn) {
        changes.push(Change::Order);
    }
    changes
}

fn node_change(id: &dyn fmt::Display, how: How) -> Change {
    // The id came from a spec's keys, so it is valid.
    match NodeId::new(id.to_string()) {
        Ok(id) => Change::Node { id, how },
        Err(_) => Change::Order,
    }
}

/// Compares two id-keyed sections: added, removed, then changed in the old order.
fn keyed<K, V>(
    old: &IndexMap<K, V>,
    new: &IndexMap<K, V>,
    old_behaviour: &IndexMap<K, V>,
    new_behaviour: &IndexMap<K, V>,
    make: impl Fn(&dyn fmt::Display, How) -> Change,
    changes: &mut Vec<Change>,
) where
    K: std::hash::Hash + Eq + fmt::Display,
    V: PartialEq,
{
    for (id, value) in old {
        match new.get(id) {
            None => changes.push(make(id, How::Removed)),
            Some(other) if other != value => {
                let behavioural = old_behaviour.get(id) != new_behaviour.get(id);
                changes.push(make(id, if behavioural { How::Behavioural } else { How::Cosmetic }));
            }
            Some(_) => {}
        }
    }
    for id in new.keys().filter(|id| !old.contains_key(*id)) {
        changes.push(make(id, How::Added));
    }
}

fn edges(old: &Spec, new: &Spec, bo: &Spec, bn: &Spec, changes: &mut Vec<Change>) {
    let find = |edges: &[Edge], e: &Edge| edges.iter().position(|x| x.from == e.from && x.to == e.to);
    for (i, edge) in old.edges.iter().enumerate() {
        let change = |how| Change::Edge { from: edge.from.clone(), to: edge.to.clone(), how };
        match find(&new.edges, edge) {
            None => changes.push(change(How::Removed)),
            Some(j) if new.edges.get(j) != Some(edge) => {
                let behavioural = bo.edges.get(i).map(|e| &e.label) != bn.edges.get(j).map(|e| &e.label);
                changes.push(change(if behavioural { How::Behavioural } else { How::Cosmetic }));
            }
            Some(_) => {}
        }
    }
    for edge in new.edges.iter().filter(|e| find(&old.edges, e).is_none()) {
        changes.push(Change::Edge { from: edge.from.clone(), to: edge.to.clone(), how: How::Added });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled() -> Spec {
        let yaml = include_str!("../../workflows/kars-release.yaml");
        crate::load(yaml, "kars-release.yaml").map(crate::CheckedSpec::into_spec).unwrap()
    }

    #[test]
    fn labels_messages_and_the_team_are_cosmetic() {
        let old = bundled();
        let mut new = old.clone();
        let (id, node) = new.nodes.get_index_mut(2).unwrap();
        node.label.push_str(" (renamed)");
        let id = id.clone();
        new.team.clear();
        let changes = compare(&old, &new);
        assert_eq!(changes, vec![Change::Team, Change::Node { id, how: How::Cosmetic }]);
        assert!(changes.iter().all(|c| !c.is_behavioural()));
        assert_eq!(behaviour_fingerprint(&old), behaviour_fingerprint(&new));
        assert_ne!(Fingerprint::of(&old), Fingerprint::of(&new));
    }

    #[test]
    fn a_moved_gate_and_a_new_edge_are_behavioural() {
        let old = bundled();
        let mut new = old.clone();
        let (id, node) = new.nodes.iter_mut().find(|(_, n)| n.gate.is_some()).unwrap();
        node.gate = Some("tue 11:00".parse().unwrap());
        let id = id.clone();
        let changes = compare(&old, &new);
        assert_eq!(changes, vec![Change::Node { id, how: How::Behavioural }]);
        assert_ne!(behaviour_fingerprint(&old), behaviour_fingerprint(&new));
    }

    #[test]
    fn a_style_class_is_the_picture_only() {
        let old = bundled();
        let mut new = old.clone();
        let node = new.nodes.keys().next().cloned().unwrap();
        let style = [("fill".to_owned(), "#ffcdd2".to_owned())].into_iter().collect();
        new.classes.insert("risky".parse().unwrap(), crate::spec::Class { style, nodes: vec![node] });
        assert_eq!(compare(&old, &new), vec![Change::Picture]);
        assert_eq!(behaviour_fingerprint(&old), behaviour_fingerprint(&new));
    }

    fn hotfix() -> Spec {
        let yaml = include_str!("../../workflows/hotfix.yaml");
        crate::load(yaml, "hotfix.yaml").map(crate::CheckedSpec::into_spec).unwrap()
    }

    #[test]
    fn a_join_rule_is_behavioural_and_its_default_is_not() {
        let old = hotfix();
        let (id, _) = old.nodes.iter().find(|(_, n)| n.kind == NodeKind::Join && n.join.is_none()).unwrap();
        let id = id.clone();
        let mut first = old.clone();
        first.nodes.get_mut(&id).unwrap().join = Some(crate::spec::JoinRule::First);
        assert_eq!(compare(&old, &first), vec![Change::Node { id: id.clone(), how: How::Behavioural }]);
        assert_ne!(behaviour_fingerprint(&old), behaviour_fingerprint(&first));
        let mut all = old.clone();
        all.nodes.get_mut(&id).unwrap().join = Some(crate::spec::JoinRule::All);
        assert_eq!(compare(&old, &all), vec![Change::Node { id, how: How::Cosmetic }]);
        assert_eq!(behaviour_fingerprint(&old), behaviour_fingerprint(&all));
    }

    #[test]
    fn a_fork_instead_of_a_decision_is_behavioural() {
        let old = hotfix();
        let mut new = old.clone();
        let (id, node) = new.nodes.iter_mut().find(|(_, n)| n.kind == NodeKind::Parallel).unwrap();
        node.kind = NodeKind::Decision;
        let id = id.clone();
        assert_eq!(compare(&old, &new), vec![Change::Node { id: id.clone(), how: How::Behavioural }]);
        // A label on a fork's edge is only drawn.
        let mut labelled = old.clone();
        let edge = labelled.edges.iter_mut().find(|e| e.from == id).unwrap();
        edge.label = Some("qa".to_owned());
        let (from, to) = (edge.from.clone(), edge.to.clone());
        assert_eq!(compare(&old, &labelled), vec![Change::Edge { from, to, how: How::Cosmetic }]);
    }

    #[test]
    fn reordering_nodes_is_behavioural_order() {
        let old = bundled();
        let mut new = old.clone();
        new.nodes.swap_indices(3, 4);
        assert_eq!(compare(&old, &new), vec![Change::Order]);
    }
}
