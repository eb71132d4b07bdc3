//! Mermaid both ways: render a spec as a mermaid flowchart, and import a flowchart as a spec.
//!
//! [`render`] writes a `flowchart` with a subgraph per phase (or per role, see [`Lanes`]),
//! every node with its id, label and shape, every edge with its label, every node style and
//! every style class (`classDef` and `class`).
//! [`import`] reads a `.mmd` text or the first ```` ```mermaid ```` block of a markdown text and
//! builds a spec skeleton that passes [`crate::check`]. `import(render(spec))` gives back the
//! spec's graph: node ids, labels, edges and their labels, phases, styles and classes.
//!
//! Escaping rules are in the `text` module's docs; in short, labels are written plain where
//! mermaid reads them back unchanged and quoted with entity codes (`#quot;`, `#124;`, ...)
//! otherwise.

mod cursor;
mod error;
mod flowchart;
mod import;
mod parse;
mod render;
mod text;

pub use error::{ImportError, ImportErrorKind, ImportWarning, WarningKind};
pub use flowchart::{FlowClass, FlowEdge, FlowNode, Flowchart, Location, Shape, Stroke, Subgraph};
pub use import::{ImportOutcome, PLACEHOLDER_OUTCOME, PLACEHOLDER_ROLE, import, to_yaml};
pub use parse::{Parsed, parse};
pub use render::{render, render_state};

use std::collections::BTreeMap;

use crate::id::NodeId;

/// How [`render`] draws a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Adds a second, italic label line with roles, gates, deadlines, retry bounds, actions and
    /// outcomes, and the mapped outcomes to decision edge labels.
    pub annotate: bool,
    /// What the subgraphs group.
    pub lanes: Lanes,
    /// Which shapes the node kinds get.
    pub shapes: Shapes,
}

/// What the subgraphs of a rendering group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lanes {
    /// A subgraph per phase, as the spec declares them.
    #[default]
    Phases,
    /// A subgraph per role (a node's first role, or a decision's deciding role), in the order
    /// of `roles:`; nodes without a role go to a last `automatic` lane.
    Roles,
}

/// Which shapes the node kinds get.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Shapes {
    /// Decisions `{}`, everything else `[]`: the shapes of the KARS seed flowchart. Forks and
    /// joins are rectangles too; [`import`] finds them again by the graph (several unlabelled
    /// ways out, and where those branches meet).
    #[default]
    Plain,
    /// As `Plain`, and start and end nodes as stadiums `([])`, waits as hexagons `{{}}`,
    /// parallel nodes as trapezoids `[/ \]` (widening: the branches spread) and joins as
    /// inverted trapezoids `[\ /]` (narrowing: the branches meet).
    ByKind,
}

/// The state of a running instance, drawn by [`render_state`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateView {
    /// The nodes the instance is at: one per running branch (a single one outside forks).
    pub current: Vec<NodeId>,
    /// The nodes passed this cycle, in order.
    pub visited: Vec<NodeId>,
    /// What the instance waits for (`gate opens Mon 09:45`), shown on each current node that
    /// `waiting_at` does not list; with no current node, shown in a note.
    pub waiting: Option<String>,
    /// What each branch waits for, by its current node, when branches wait for different
    /// things (`QA sign-off`, `gate opens Tue 09:00`); shown on that node instead of `waiting`.
    pub waiting_at: BTreeMap<NodeId, String>,
}
