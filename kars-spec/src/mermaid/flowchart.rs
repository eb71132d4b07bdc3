//! The parsed mermaid flowchart: nodes, subgraphs, edges and styles as mermaid itself sees them.

use std::collections::BTreeMap;

use indexmap::IndexMap;

use crate::spec::Direction;

/// A place in the imported text: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// The 1-based line, counted in the whole input (a markdown file's lines included).
    pub line: usize,
    /// The 1-based column, in characters.
    pub column: usize,
}

/// A mermaid node shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Shape {
    /// `A[text]`, also a node written without a shape.
    Rect,
    /// `A(text)`.
    Round,
    /// `A([text])`.
    Stadium,
    /// `A[[text]]`.
    Subroutine,
    /// `A[(text)]`.
    Cylinder,
    /// `A((text))`.
    Circle,
    /// `A(((text)))`.
    DoubleCircle,
    /// `A>text]`.
    Asymmetric,
    /// `A{text}`: a decision.
    Rhombus,
    /// `A{{text}}`.
    Hexagon,
    /// `A[/text/]`.
    Parallelogram,
    /// `A[\text\]`.
    ParallelogramAlt,
    /// `A[/text\]`.
    Trapezoid,
    /// `A[\text/]`.
    TrapezoidAlt,
}

impl Shape {
    /// The opening and closing delimiters mermaid uses for the shape.
    #[must_use]
    pub fn delimiters(self) -> (&'static str, &'static str) {
        match self {
            Shape::Rect => ("[", "]"),
            Shape::Round => ("(", ")"),
            Shape::Stadium => ("([", "])"),
            Shape::Subroutine => ("[[", "]]"),
            Shape::Cylinder => ("[(", ")]"),
            Shape::Circle => ("((", "))"),
            Shape::DoubleCircle => ("(((", ")))"),
            Shape::Asymmetric => (">", "]"),
            Shape::Rhombus => ("{", "}"),
            Shape::Hexagon => ("{{", "}}"),
            Shape::Parallelogram => ("[/", "/]"),
            Shape::ParallelogramAlt => ("[\\", "\\]"),
            Shape::Trapezoid => ("[/", "\\]"),
            Shape::TrapezoidAlt => ("[\\", "/]"),
        }
    }
}

/// A node as the flowchart declares it (the last declaration wins, as in mermaid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowNode {
    /// The label with entities decoded and `<br/>` turned into line breaks; the id when the
    /// node is never given a text.
    pub label: String,
    /// The shape.
    pub shape: Shape,
    /// Where the node is first mentioned.
    pub at: Location,
}

/// How an edge is drawn; kars keeps only its direction and label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    /// `-->`, `---`.
    Normal,
    /// `==>`, `===`.
    Thick,
    /// `-.->`, `-.-`.
    Dotted,
}

/// A directed edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEdge {
    /// The source node id.
    pub from: String,
    /// The target node id.
    pub to: String,
    /// The edge label, decoded like node labels.
    pub label: Option<String>,
    /// How it is drawn.
    pub stroke: Stroke,
    /// Whether it has an arrow head (`---` has none; kars still reads it left to right).
    pub arrow: bool,
    /// Where the edge's link starts.
    pub at: Location,
}

/// A subgraph with the nodes mermaid assigns to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subgraph {
    /// The subgraph id (generated from the title when the text gives none).
    pub id: String,
    /// The title, when the text gives one apart from the id.
    pub title: Option<String>,
    /// The member nodes in order of first mention. As in mermaid, a node belongs to the first
    /// subgraph that closes after mentioning it, so a node of a nested subgraph belongs to the
    /// innermost one only.
    pub nodes: Vec<String>,
    /// The index (in [`Flowchart::subgraphs`]) of the enclosing subgraph, if nested.
    pub parent: Option<usize>,
    /// Where the `subgraph` keyword is.
    pub at: Location,
}

/// A parsed flowchart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flowchart {
    /// The flowchart direction.
    pub direction: Direction,
    /// Nodes in order of first mention.
    pub nodes: IndexMap<String, FlowNode>,
    /// Subgraphs in order of their `subgraph` line.
    pub subgraphs: Vec<Subgraph>,
    /// Edges in order.
    pub edges: Vec<FlowEdge>,
    /// Node styles from `style` lines (they win over classes when mermaid draws).
    pub styles: IndexMap<String, BTreeMap<String, String>>,
    /// Classes from `classDef` lines, in order, with the nodes `class` lines and `:::` give
    /// them.
    pub classes: IndexMap<String, FlowClass>,
}

/// A `classDef` with the nodes that have the class.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlowClass {
    /// The style properties.
    pub style: BTreeMap<String, String>,
    /// The nodes with the class, in order of their first `class` or `:::`; none for `default`,
    /// which mermaid gives every node.
    pub nodes: Vec<String>,
    /// Where the (last) `classDef` is.
    pub at: Location,
}
