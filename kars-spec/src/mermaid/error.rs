//! Import errors and warnings, each with the line and column it is about.

use std::fmt;

use super::flowchart::Location;
use crate::id::IdError;

/// Why a mermaid text cannot be imported; [`ImportError::at`] says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}", line = at.line, column = at.column)]
pub struct ImportError {
    /// Where the problem is.
    pub at: Location,
    /// What the problem is.
    pub kind: ImportErrorKind,
}

impl ImportError {
    pub(crate) fn new(at: Location, kind: ImportErrorKind) -> Self {
        Self { at, kind }
    }

    /// The error as a user sees it: the message, then the line of `text` it is about with a
    /// caret under the column. `origin` names the input (a file name).
    #[must_use]
    pub fn excerpt(&self, origin: &str, text: &str) -> String {
        let mut out = format!("error: {}\n --> {origin}:{}:{}\n", self.kind, self.at.line, self.at.column);
        let source = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        if let Some(line) = self.at.line.checked_sub(1).and_then(|i| source.lines().nth(i)) {
            let number = self.at.line.to_string();
            let pad = " ".repeat(number.len());
            let caret_pad: String = line
                .chars()
                .take(self.at.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("{pad} |\n{number} | {line}\n{pad} | {caret_pad}^\n"));
        }
        out
    }
}

/// What went wrong while importing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImportErrorKind {
    /// Neither a ```` ```mermaid ```` block nor a flowchart header was found.
    #[error(
        "no mermaid flowchart found\nhelp: give a `.mmd` file that starts with `flowchart TB` (or `graph TD`), or a markdown file with a ```mermaid block"
    )]
    NoFlowchart,
    /// The diagram is not a flowchart.
    #[error("`{found}` diagrams are not supported; only `flowchart` and `graph` are")]
    NotFlowchart {
        /// The diagram keyword found.
        found: String,
    },
    /// The header names an unknown direction.
    #[error("`{found}` is not a flowchart direction; use TB, TD, BT, LR or RL")]
    BadDirection {
        /// The direction text found.
        found: String,
    },
    /// A mermaid construct kars does not import.
    #[error("unsupported construct `{construct}` ({what})")]
    Unsupported {
        /// The text of the construct.
        construct: String,
        /// What it is, in words.
        what: &'static str,
    },
    /// A label, shape or quoted string is not closed on its line.
    #[error("unclosed {what}: expected `{expected}` before the end of the line")]
    Unclosed {
        /// What is open.
        what: &'static str,
        /// The closing text expected.
        expected: String,
    },
    /// Something else than the grammar allows at this point.
    #[error("unexpected `{found}`; expected {expected}")]
    Unexpected {
        /// The text found (up to the end of the statement).
        found: String,
        /// What would have been accepted, in words.
        expected: &'static str,
    },
    /// `end` with no open subgraph.
    #[error("`end` without an open `subgraph`")]
    StrayEnd,
    /// A subgraph is never closed.
    #[error("subgraph `{id}` is never closed; add an `end` line")]
    UnclosedSubgraph {
        /// The subgraph id.
        id: String,
    },
    /// A node or subgraph id that kars does not accept.
    #[error(
        "{source}\nhelp: kars ids start with an ASCII letter and use ASCII letters, digits and `_`; rename it here and in every line that mentions it"
    )]
    BadId {
        /// Why the id is refused.
        source: IdError,
    },
    /// An edge that starts or ends at a subgraph.
    #[error(
        "edge to or from subgraph `{id}`; kars edges join nodes\nhelp: point the edge at a node inside the subgraph"
    )]
    EdgeToSubgraph {
        /// The subgraph id.
        id: String,
    },
    /// The flowchart declares no node.
    #[error("the flowchart has no nodes")]
    Empty,
}

/// Something the importer changed or dropped; the skeleton is still produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportWarning {
    /// Where it is.
    pub at: Location,
    /// What it is.
    pub kind: WarningKind,
}

impl fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.at.line, self.at.column, self.kind)
    }
}

/// What an [`ImportWarning`] is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WarningKind {
    /// A statement kars has no use for (`click`, `linkStyle`, `accTitle`, ...).
    #[error("`{construct}` is ignored ({what})")]
    Ignored {
        /// The statement text.
        construct: String,
        /// Why, in words.
        what: &'static str,
    },
    /// A `---` link without an arrow head, read from left to right.
    #[error("link `{from} --- {to}` has no arrow head; it is read as `{from} --> {to}`")]
    OpenLink {
        /// The source.
        from: String,
        /// The target.
        to: String,
    },
    /// A markdown string label, read as plain text.
    #[error("markdown string label read as plain text")]
    MarkdownString,
    /// A nested subgraph: its nodes belong to it only.
    #[error("subgraph `{id}` is nested in `{parent}`; kars phases do not nest, so its nodes belong to `{id}` only")]
    NestedSubgraph {
        /// The inner subgraph.
        id: String,
        /// The enclosing subgraph.
        parent: String,
    },
    /// A subgraph without an id got one made from its title.
    #[error("subgraph `{title}` has no id; it is imported as phase `{id}`")]
    GeneratedPhaseId {
        /// The generated id.
        id: String,
        /// The title.
        title: String,
    },
    /// A phase left without nodes (all of them are in nested subgraphs) is dropped.
    #[error("subgraph `{id}` holds no node of its own and is not imported as a phase")]
    EmptyPhase {
        /// The subgraph id.
        id: String,
    },
    /// A `class`/`:::` names a class that no `classDef` defines.
    #[error("class `{class}` is not defined by any `classDef`; ignored")]
    UnknownClass {
        /// The class name.
        class: String,
    },
    /// A `style` line names a node that the flowchart never declares.
    #[error("`style` for unknown node `{id}` is ignored")]
    UnknownStyleTarget {
        /// The id.
        id: String,
    },
    /// A style property without `:`.
    #[error("style property `{property}` has no `:` and is ignored")]
    BadStyleProperty {
        /// The property text.
        property: String,
    },
    /// A non-decision node with several ways out became a decision: some of its ways out
    /// are labelled, or its ways out do not meet again at one node (a fork needs a join).
    #[error(
        "node `{id}` has {count} ways out that are labelled or never meet again at one node, so it is imported as a decision"
    )]
    BranchingNode {
        /// The node.
        id: String,
        /// How many edges leave it.
        count: usize,
    },
    /// A `{}` node with one way out cannot be a decision.
    #[error("decision `{id}` has a single way out; it is imported as a task")]
    LoneDecision {
        /// The node.
        id: String,
    },
    /// The first node has several ways out, and a kars start has one: a start node was added
    /// before it (edges back to the first node go to the added start: they begin the next cycle).
    #[error(
        "first node `{node}` has {count} ways out and a kars start has one; start node `{start}` is added before it"
    )]
    StartBeforeBranch {
        /// The added start node.
        start: String,
        /// The first node.
        node: String,
        /// How many edges leave it.
        count: usize,
    },
    /// The flowchart has several roots (nodes nothing leads to): a start node and a decision
    /// that picks one of them were added.
    #[error("the flowchart has {} roots ({}); start node `{start}` and decision `{decision}` are added before them", roots.len(), roots.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", "))]
    StartBeforeRoots {
        /// The added start node.
        start: String,
        /// The added decision.
        decision: String,
        /// The roots, in order of first mention.
        roots: Vec<String>,
    },
    /// A decision edge had no label (or a repeated one) and was given one.
    #[error("decision edge `{from} --> {to}` is labelled `{label}` (decision branches need distinct labels)")]
    LabelAdded {
        /// The source.
        from: String,
        /// The target.
        to: String,
        /// The label given.
        label: String,
    },
    /// The markdown code block is not closed.
    #[error("the ```mermaid block is not closed; read to the end of the file")]
    UnclosedFence,
}
