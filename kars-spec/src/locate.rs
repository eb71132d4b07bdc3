//! The source map: one walk over the YAML parser's events that indexes every node by its path.
//!
//! Why a separate walk: serde gives the spec's data but forgets where each value came from,
//! and validation works on that data. So before deserializing, [`SourceMap::build`] reads the
//! event stream of `serde_saphyr::granit_parser` once and records, for every path
//! (`nodes.N.decided_by.role`, `edges.3.to`), where its key and its value start and end. Any
//! diagnostic that carries a path can then be given a line, a column and a source excerpt, and
//! any serde error that carries a line and column can be given a path.
//!
//! The same walk rejects what serde-saphyr would accept or treat as a plain syntax error but a
//! user deserves a precise message for: an empty file, several documents, tabs used for
//! indentation, nesting deeper than [`MAX_DEPTH`], more than [`MAX_NODES`] nodes or
//! [`MAX_ALIASES`] aliases, aliases that would expand to more than [`MAX_NODES`] nodes or
//! [`MAX_EXPANDED_BYTES`] of text (it sums the size of each anchor without expanding
//! anything), and scalars longer than [`MAX_SCALAR_BYTES`]. The walk is iterative
//! (an explicit stack), and the parser's own nesting limits are set, so deep input cannot
//! overflow the stack.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Marker, Parser, ScanError};

use crate::diagnostic::{Code, Diagnostic, Location, Path, SourceSpan};

/// The deepest nesting of mappings and sequences a spec may have.
pub const MAX_DEPTH: usize = 32;
/// The most YAML nodes (scalars, mappings, sequences) a spec may have.
pub const MAX_NODES: usize = 100_000;
/// The most aliases (`*name`) a spec may use.
pub const MAX_ALIASES: usize = 1_000;
/// The longest single scalar, in bytes.
pub const MAX_SCALAR_BYTES: usize = 64 * 1024;
/// The most scalar text that aliases may replay in total, in bytes.
pub const MAX_EXPANDED_BYTES: usize = 4 * 1024 * 1024;

/// A position in the source: line from 1, column from 0, character index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    col: usize,
    index: usize,
}

impl From<&Marker> for Pos {
    fn from(m: &Marker) -> Self {
        Self { line: m.line(), col: m.col(), index: m.index() }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    path: Path,
    key: Option<(Pos, Pos)>,
    value: (Pos, Pos),
    collection: bool,
}

/// Where every path of a document is, and the source lines to quote.
#[derive(Debug)]
pub(crate) struct SourceMap<'s> {
    source: &'s str,
    line_starts: Vec<usize>,
    entries: Vec<Entry>,
    by_path: HashMap<Path, usize>,
}

enum Frame {
    Map { path: Path, pending_key: Option<(String, (Pos, Pos))>, entry: Option<usize>, is_key: bool },
    Seq { path: Path, next: usize, entry: Option<usize>, is_key: bool },
}

impl<'s> SourceMap<'s> {
    /// Walks `source` once.
    pub(crate) fn build(source: &'s str) -> Result<Self, Box<Diagnostic>> {
        let mut map = SourceMap {
            source,
            line_starts: std::iter::once(0)
                .chain(source.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1))
                .collect(),
            entries: Vec::new(),
            by_path: HashMap::new(),
        };
        let options = serde_saphyr::granit_parser::options! {
            flow_nesting_limit: MAX_DEPTH + 1,
            block_nesting_limit: MAX_DEPTH + 1,
            emit_comments: false,
        };
        let parser = Parser::new_from_str_with_options(source, options);
        let mut stack: Vec<Frame> = Vec::new();
        let mut documents = 0usize;
        let mut nodes = 0usize;
        let mut aliases = 0usize;
        let mut root_is_null = false;
        let mut expansion = Expansion::default();
        for item in parser {
            let (event, span) = item.map_err(|e| Box::new(map.scan_error(&e)))?;
            let start = Pos::from(&span.start);
            let end = Pos::from(&span.end);
            match event {
                Event::DocumentStart(..) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(Box::new(Diagnostic::error(
                            Code::SeveralDocuments,
                            "the file holds more than one YAML document",
                        )
                        .at(map.location_at(start, end, None))
                        .label("a second document starts here")
                        .help("a spec is a single document: remove this `---` and what follows, or split the file")));
                    }
                }
                Event::Scalar(text, style, anchor, _) => {
                    expansion.scalar(anchor, text.len());
                    nodes += 1;
                    map.check_nodes(nodes, start, end)?;
                    if text.len() > MAX_SCALAR_BYTES {
                        return Err(Box::new(
                            Diagnostic::error(
                                Code::Limit,
                                format!(
                                    "a scalar of {} bytes is longer than the limit of {MAX_SCALAR_BYTES} bytes",
                                    text.len()
                                ),
                            )
                            .at(map.location_at(start, start, None)),
                        ));
                    }
                    if stack.is_empty() {
                        root_is_null = matches!(style, serde_saphyr::granit_parser::ScalarStyle::Plain)
                            && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL");
                    }
                    map.leaf(&mut stack, Some(text.into_owned()), (start, end));
                }
                Event::Alias(anchor) => {
                    if !expansion.alias(anchor) {
                        return Err(Box::new(
                            Diagnostic::error(
                                Code::Limit,
                                format!(
                                    "aliases expand to more than {MAX_NODES} nodes or {MAX_EXPANDED_BYTES} bytes of text"
                                ),
                            )
                            .at(map.location_at(start, end, None))
                            .label("the limit is passed at this alias")
                            .help("a spec rarely needs aliases; write the values out"),
                        ));
                    }
                    nodes += 1;
                    aliases += 1;
                    map.check_nodes(nodes, start, end)?;
                    if aliases > MAX_ALIASES {
                        return Err(Box::new(
                            Diagnostic::error(Code::Limit, format!("the spec uses more than {MAX_ALIASES} aliases"))
                                .at(map.location_at(start, end, None))
                                .help("a spec rarely needs aliases; write the values out"),
                        ));
                    }
                    map.leaf(&mut stack, None, (start, end));
                }
                Event::MappingStart(_, anchor, _) | Event::SequenceStart(_, anchor, _) => {
                    expansion.open(anchor);
                    nodes += 1;
                    map.check_nodes(nodes, start, end)?;
                    if stack.len() >= MAX_DEPTH {
                        return Err(Box::new(
                            Diagnostic::error(
                                Code::Limit,
                                format!("the spec nests mappings and sequences deeper than {MAX_DEPTH} levels"),
                            )
                            .at(map.location_at(start, start, None)),
                        ));
                    }
                    let is_map = matches!(event, Event::MappingStart(..));
                    map.open(&mut stack, is_map, (start, end));
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    expansion.close();
                    map.close(&mut stack, end);
                }
                _ => {}
            }
        }
        if documents == 0 || (root_is_null && map.entries.len() <= 1) {
            return Err(Box::new(
                Diagnostic::error(Code::Empty, "the file is empty")
                    .at(map.point(1, 1))
                    .label("no YAML document here")
                    .help("a spec starts with `version: 1`, then `name`, `timezone`, `nodes` and `edges`"),
            ));
        }
        Ok(map)
    }

    fn check_nodes(&self, nodes: usize, start: Pos, end: Pos) -> Result<(), Box<Diagnostic>> {
        if nodes > MAX_NODES {
            return Err(Box::new(
                Diagnostic::error(Code::Limit, format!("the spec has more than {MAX_NODES} YAML nodes"))
                    .at(self.location_at(start, end, None)),
            ));
        }
        Ok(())
    }

    /// The path and key position of a node that is about to be recorded.
    fn place(stack: &mut [Frame], value: (Pos, Pos)) -> Placement {
        match stack.last_mut() {
            None => Placement::Value { path: Path::root(), key: None },
            Some(Frame::Map { path, pending_key, .. }) => match pending_key.take() {
                None => Placement::Key(value),
                Some((key, key_pos)) => Placement::Value { path: path.clone().key(key), key: Some(key_pos) },
            },
            Some(Frame::Seq { path, next, .. }) => {
                let index = *next;
                *next += 1;
                Placement::Value { path: path.clone().index(index), key: None }
            }
        }
    }

    fn leaf(&mut self, stack: &mut [Frame], text: Option<String>, value: (Pos, Pos)) {
        match Self::place(stack, value) {
            Placement::Key(pos) => {
                if let Some(Frame::Map { pending_key, .. }) = stack.last_mut() {
                    *pending_key = Some((text.unwrap_or_else(|| "*alias".to_owned()), pos));
                }
            }
            Placement::Value { path, key } => {
                self.record(path, key, value);
            }
        }
    }

    fn open(&mut self, stack: &mut Vec<Frame>, is_map: bool, value: (Pos, Pos)) {
        let (path, entry, is_key) = match Self::place(stack, value) {
            Placement::Key(_) => (Path::root().key("?"), None, true),
            Placement::Value { path, key } => {
                let entry = self.record(path.clone(), key, value);
                if let Some(e) = entry.and_then(|i| self.entries.get_mut(i)) {
                    e.collection = true;
                }
                (path, entry, false)
            }
        };
        stack.push(if is_map {
            Frame::Map { path, pending_key: None, entry, is_key }
        } else {
            Frame::Seq { path, next: 0, entry, is_key }
        });
    }

    fn close(&mut self, stack: &mut Vec<Frame>, end: Pos) {
        let (entry, is_key) = match stack.pop() {
            Some(Frame::Map { entry, is_key, .. } | Frame::Seq { entry, is_key, .. }) => (entry, is_key),
            None => return,
        };
        if let Some(e) = entry.and_then(|i| self.entries.get_mut(i)) {
            e.value.1 = end;
        }
        if is_key && let Some(Frame::Map { pending_key, .. }) = stack.last_mut() {
            *pending_key = Some(("?".to_owned(), (end, end)));
        }
    }

    fn record(&mut self, path: Path, key: Option<(Pos, Pos)>, value: (Pos, Pos)) -> Option<usize> {
        let index = self.entries.len();
        // The first occurrence wins the path; a later duplicate key (which the deserializer
        // reports) is still indexed by position.
        if !self.by_path.contains_key(&path) {
            self.by_path.insert(path.clone(), index);
        }
        self.entries.push(Entry { path, key, value, collection: false });
        Some(index)
    }

    fn scan_error(&self, e: &ScanError) -> Diagnostic {
        let pos = Pos::from(e.marker());
        let info = e.info();
        let location = self.location_at(pos, pos, None);
        if info.contains("tab") {
            // Point at the first tab of the line's indentation when there is one.
            let line = self.line_text(pos.line);
            let tab = line.chars().take_while(|c| c.is_whitespace()).position(|c| c == '\t');
            let at = tab.map_or(pos, |col| Pos { col, ..pos });
            Diagnostic::error(Code::TabIndentation, "a tab is used for indentation")
                .at(self.location_at(at, at, None))
                .label("tab here")
                .help("YAML indents with spaces only; replace the tabs with spaces")
        } else if info.contains("recursion limit") {
            Diagnostic::error(
                Code::Limit,
                format!("the spec nests mappings and sequences deeper than {MAX_DEPTH} levels"),
            )
            .at(location)
        } else {
            Diagnostic::error(Code::Syntax, format!("invalid YAML: {info}")).at(location)
        }
    }

    /// The text of line `line` (from 1), without its line break.
    fn line_text(&self, line: usize) -> &'s str {
        let Some(&start) = self.line_starts.get(line.wrapping_sub(1)) else { return "" };
        let rest = self.source.get(start..).unwrap_or("");
        let text = rest.split('\n').next().unwrap_or("");
        text.strip_suffix('\r').unwrap_or(text)
    }

    fn span(&self, start: Pos, end: Pos) -> SourceSpan {
        let line_text = self.line_text(start.line);
        let line_chars = line_text.chars().count();
        let width = if end == start {
            1
        } else if end.line == start.line && end.index > start.index {
            end.index - start.index
        } else {
            line_chars.saturating_sub(start.col).max(1)
        };
        // Trim the underline of a mapping or sequence to its first line's content.
        let width = width.min(line_chars.saturating_sub(start.col).max(1));
        SourceSpan { line: start.line, column: start.col + 1, width, line_text: line_text.to_owned() }
    }

    fn location_at(&self, start: Pos, end: Pos, path: Option<Path>) -> Location {
        Location { path, at_key: false, span: Some(self.span(start, end)) }
    }

    /// Fills in the line, column and excerpt of a location that has a path. A path that is not
    /// in the document (a missing field) points at the nearest ancestor that is.
    pub(crate) fn resolve(&self, location: &mut Location) {
        if location.span.is_some() {
            return;
        }
        let Some(path) = &location.path else { return };
        let mut probe = path.0.as_slice();
        loop {
            if let Some(entry) = self.by_path.get(&Path(probe.to_vec())).and_then(|&i| self.entries.get(i)) {
                let exact = probe.len() == path.0.len();
                // A mapping or sequence is shown by its key; so is a missing field's parent.
                let (start, end) = match entry.key {
                    Some(key) if location.at_key || !exact || entry.collection => key,
                    _ => entry.value,
                };
                location.span = Some(self.span(start, end));
                return;
            }
            match probe.split_last() {
                Some((_, parent)) => probe = parent,
                None => return,
            }
        }
    }

    /// The location of the serde error at `line` and `column` (both from 1): the deepest path
    /// whose key or value starts there, or else whose value contains it.
    pub(crate) fn locate(&self, line: usize, column: usize) -> Location {
        let col0 = column.saturating_sub(1);
        let starts_here = |p: &Pos| p.line == line && p.col == col0;
        let exact = self
            .entries
            .iter()
            .filter_map(|e| {
                if e.key.is_some_and(|k| starts_here(&k.0)) {
                    Some((e, true))
                } else if starts_here(&e.value.0) {
                    Some((e, false))
                } else {
                    None
                }
            })
            .max_by_key(|(e, _)| e.path.0.len());
        if let Some((entry, at_key)) = exact {
            let (start, end) = if at_key { entry.key.unwrap_or(entry.value) } else { entry.value };
            return Location { path: Some(entry.path.clone()), at_key, span: Some(self.span(start, end)) };
        }
        let inside = |e: &&Entry| {
            let (s, t) = e.value;
            (s.line, s.col) <= (line, col0) && (line, col0) <= (t.line, t.col)
        };
        let path = self.entries.iter().filter(inside).max_by_key(|e| e.path.0.len()).map(|e| e.path.clone());
        let pos = Pos { line, col: col0, index: 0 };
        self.location_at(pos, pos, path)
    }

    /// The location of a 0-based character position that the parser did not index.
    pub(crate) fn point(&self, line: usize, column: usize) -> Location {
        let pos = Pos { line, col: column.saturating_sub(1), index: 0 };
        self.location_at(pos, pos, None)
    }
}

/// How much data a subtree stands for once its aliases are expanded: nodes and scalar bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    nodes: usize,
    bytes: usize,
}

impl Size {
    fn add(&mut self, other: Size) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Tracks the expanded size of every anchor and of everything aliases replay, without
/// expanding anything: the guard against "billion laughs".
#[derive(Debug, Default)]
struct Expansion {
    anchors: HashMap<usize, Size>,
    open: Vec<(usize, Size)>,
    replayed: Size,
}

impl Expansion {
    fn add(&mut self, size: Size) {
        if let Some((_, top)) = self.open.last_mut() {
            top.add(size);
        }
    }

    fn scalar(&mut self, anchor: usize, bytes: usize) {
        let size = Size { nodes: 1, bytes };
        if anchor != 0 {
            self.anchors.insert(anchor, size);
        }
        self.add(size);
    }

    fn open(&mut self, anchor: usize) {
        self.open.push((anchor, Size { nodes: 1, bytes: 0 }));
    }

    fn close(&mut self) {
        if let Some((anchor, size)) = self.open.pop() {
            if anchor != 0 {
                self.anchors.insert(anchor, size);
            }
            self.add(size);
        }
    }

    /// Accounts for one alias; false when the replayed total passes the limits.
    fn alias(&mut self, anchor: usize) -> bool {
        let size = self.anchors.get(&anchor).copied().unwrap_or(Size { nodes: 1, bytes: 0 });
        self.add(size);
        self.replayed.add(size);
        self.replayed.nodes <= MAX_NODES && self.replayed.bytes <= MAX_EXPANDED_BYTES
    }
}

enum Placement {
    Key((Pos, Pos)),
    Value { path: Path, key: Option<(Pos, Pos)> },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(map: &SourceMap<'_>, path: Path) -> (usize, usize) {
        let mut location = Location::path(path);
        map.resolve(&mut location);
        let span = location.span.unwrap();
        (span.line, span.column)
    }

    #[test]
    fn indexes_block_and_flow_paths() {
        let src =
            "a: 1\nnodes:\n  N: { decided_by: { role: qa } }\nedges:\n  - { from: A, to: B }\n  - from: B\n    to: C\n";
        let map = SourceMap::build(src).unwrap();
        let n = Path::root().key("nodes").key("N");
        assert_eq!(at(&map, n.clone().key("decided_by").key("role")), (3, 28));
        assert_eq!(at(&map, Path::root().key("edges").index(0).key("to")), (5, 20));
        assert_eq!(at(&map, Path::root().key("edges").index(1).key("to")), (7, 9));
        // A missing field points at its parent's key.
        assert_eq!(at(&map, n.key("label")), (3, 3));
        let found = map.locate(7, 9);
        assert_eq!(found.path.unwrap().to_string(), "edges.1.to");
    }

    #[test]
    fn rejects_several_documents_and_empty_input() {
        assert_eq!(SourceMap::build("a: 1\n---\nb: 2\n").unwrap_err().code, Code::SeveralDocuments);
        assert_eq!(SourceMap::build("").unwrap_err().code, Code::Empty);
        assert_eq!(SourceMap::build("# only a comment\n").unwrap_err().code, Code::Empty);
        assert_eq!(SourceMap::build("---\n...\n").unwrap_err().code, Code::Empty);
    }

    #[test]
    fn deep_nesting_is_a_limit_not_a_crash() {
        for src in ["[".repeat(100_000), "- ".repeat(100_000), "{a: ".repeat(100_000)] {
            assert_eq!(SourceMap::build(&src).unwrap_err().code, Code::Limit);
        }
    }
}
