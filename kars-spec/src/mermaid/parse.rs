//! The parser: finds the flowchart in a `.mmd` or markdown text and reads its statements into a
//! [`Flowchart`], the way mermaid itself assigns nodes to subgraphs.

use std::collections::{BTreeMap, HashSet};

use indexmap::IndexMap;

use super::cursor::{Cursor, Link};
use super::error::{ImportError, ImportErrorKind, ImportWarning, WarningKind};
use super::flowchart::{FlowClass, FlowEdge, FlowNode, Flowchart, Location, Shape, Subgraph};
use crate::id::{NodeId, PhaseId};
use crate::spec::Direction;

/// A parsed flowchart with what the parser noticed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The flowchart.
    pub flowchart: Flowchart,
    /// The markdown document's `# ` heading, or the front matter's `title:`.
    pub title: Option<String>,
    /// The markdown paragraph between the heading and the diagram.
    pub description: Option<String>,
    /// Constructs that were ignored or changed.
    pub warnings: Vec<ImportWarning>,
}

/// Parses the flowchart of a `.mmd` text, or of the first ```` ```mermaid ```` block of a
/// markdown text.
///
/// Node ids must be valid kars node ids (see [`NodeId`]); subgraph ids valid [`PhaseId`]s.
///
/// # Errors
/// Returns an [`ImportError`] with the line and column of the first statement that cannot be
/// read, of an unsupported construct, or of an id kars does not accept.
pub fn parse(text: &str) -> Result<Parsed, ImportError> {
    let source = extract(text);
    let mut parser = Parser { warnings: source.warnings, ..Parser::default() };
    let mut seen_header = false;
    for (line_no, line) in &source.lines {
        let mut cur = Cursor::new(*line_no, line);
        cur.skip_ws();
        if !seen_header {
            if cur.at_end() || cur.starts_with("%%") {
                continue;
            }
            parser.chart.direction = header(&mut cur)?;
            seen_header = true;
        }
        parser.line(&mut cur)?;
    }
    if !seen_header {
        return Err(ImportError::new(source.first, ImportErrorKind::NoFlowchart));
    }
    let title = source.title;
    let description = source.description;
    let (flowchart, warnings) = parser.finish()?;
    Ok(Parsed { flowchart, title, description, warnings })
}

/// The lines of the diagram with their line numbers in the whole input.
struct Source {
    lines: Vec<(usize, String)>,
    title: Option<String>,
    description: Option<String>,
    warnings: Vec<ImportWarning>,
    first: Location,
}

fn is_fence_open(line: &str) -> bool {
    let t = line.trim_start();
    let rest = t.strip_prefix("```").or_else(|| t.strip_prefix("~~~"));
    rest.is_some_and(|r| r.trim_start_matches(['`', '~']).trim().starts_with("mermaid"))
}

fn extract(text: &str) -> Source {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let all: Vec<&str> = text.lines().collect();
    let mut src = Source {
        lines: Vec::new(),
        title: None,
        description: None,
        warnings: Vec::new(),
        first: Location { line: 1, column: 1 },
    };
    if let Some(open) = all.iter().position(|l| is_fence_open(l)) {
        let (title, description) = markdown_heading(all.get(..open).unwrap_or_default());
        src.title = title;
        src.description = description;
        let fence: String = all[open].trim_start().chars().take_while(|&c| c == '`' || c == '~').collect();
        let body = all.get(open + 1..).unwrap_or_default();
        let close = body.iter().position(|l| l.trim_start().starts_with(&fence) && l.trim().len() == fence.len());
        if close.is_none() {
            src.warnings
                .push(ImportWarning { at: Location { line: open + 1, column: 1 }, kind: WarningKind::UnclosedFence });
        }
        let end = close.unwrap_or(body.len());
        src.first = Location { line: open + 2, column: 1 };
        src.lines = body[..end].iter().enumerate().map(|(i, l)| (open + 2 + i, (*l).to_owned())).collect();
    } else {
        src.lines = all.iter().enumerate().map(|(i, l)| (i + 1, (*l).to_owned())).collect();
    }
    skip_front_matter(&mut src);
    src
}

/// Drops a `---` front matter block at the top of the diagram, keeping its `title:`.
fn skip_front_matter(src: &mut Source) {
    let Some(first) = src.lines.iter().position(|(_, l)| !l.trim().is_empty()) else { return };
    if src.lines[first].1.trim() != "---" {
        return;
    }
    let Some(len) = src.lines[first + 1..].iter().position(|(_, l)| l.trim() == "---") else { return };
    for (_, l) in &src.lines[first + 1..first + 1 + len] {
        if let Some(t) = l.trim().strip_prefix("title:") {
            let t = t.trim().trim_matches(['"', '\'']).trim();
            if !t.is_empty() {
                src.title = Some(t.to_owned());
            }
        }
    }
    src.lines.drain(..first + len + 2);
}

fn markdown_heading(lines: &[&str]) -> (Option<String>, Option<String>) {
    let Some(h) = lines.iter().position(|l| l.starts_with("# ")) else { return (None, None) };
    let title = lines[h].trim_start_matches('#').trim();
    let para: Vec<&str> = lines[h + 1..]
        .iter()
        .map(|l| l.trim())
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let desc = (!para.is_empty()).then(|| para.join(" "));
    ((!title.is_empty()).then(|| title.to_owned()), desc)
}

/// Reads `flowchart TB` / `graph LR`.
fn header(cur: &mut Cursor) -> Result<Direction, ImportError> {
    let at = cur.loc();
    let mut kw = String::new();
    while let Some(c) = cur.peek().filter(|c| !c.is_whitespace() && *c != ';') {
        kw.push(c);
        cur.bump();
    }
    if !matches!(kw.as_str(), "flowchart" | "graph" | "flowchart-elk") {
        // A word such as `sequenceDiagram` is another mermaid diagram; anything else is not mermaid.
        let diagram = kw.starts_with(|c: char| c.is_ascii_alphabetic())
            && kw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !diagram {
            return Err(ImportError::new(at, ImportErrorKind::NoFlowchart));
        }
        return Err(ImportError::new(at, ImportErrorKind::NotFlowchart { found: kw }));
    }
    cur.skip_ws();
    let at = cur.loc();
    let mut dir = String::new();
    while let Some(c) = cur.peek().filter(|c| !c.is_whitespace() && *c != ';') {
        dir.push(c);
        cur.bump();
    }
    Ok(match dir.as_str() {
        "" | "TB" => Direction::TB,
        "TD" => Direction::TD,
        "BT" | "^" => Direction::BT,
        "LR" | ">" => Direction::LR,
        "RL" | "<" => Direction::RL,
        "v" => Direction::TB,
        _ => return Err(ImportError::new(at, ImportErrorKind::BadDirection { found: dir })),
    })
}

struct Open {
    index: usize,
    raw: Vec<String>,
    seen: HashSet<String>,
}

#[derive(Default)]
struct Parser {
    chart: Flowchart,
    warnings: Vec<ImportWarning>,
    open: Vec<Open>,
    assigned: HashSet<String>,
    class_defs: IndexMap<String, (BTreeMap<String, String>, Location)>,
    node_classes: Vec<(String, String, Location)>,
    styles: Vec<(String, BTreeMap<String, String>, Location)>,
}

impl Parser {
    fn warn(&mut self, at: Location, kind: WarningKind) {
        self.warnings.push(ImportWarning { at, kind });
    }

    fn line(&mut self, cur: &mut Cursor) -> Result<(), ImportError> {
        loop {
            cur.skip_ws();
            if cur.at_end() || cur.starts_with("%%") {
                return Ok(());
            }
            if cur.eat(";") {
                continue;
            }
            self.statement(cur)?;
            cur.skip_ws();
            if !(cur.at_end() || cur.starts_with("%%") || cur.eat(";")) {
                let pos = cur.pos();
                return Err(ImportError::new(cur.loc(), cur.unexpected(pos, "`;` or the end of the line")));
            }
        }
    }

    fn statement(&mut self, cur: &mut Cursor) -> Result<(), ImportError> {
        let at = cur.loc();
        let start = cur.pos();
        let word = cur.peek_word();
        let next = cur.peek_at(word.chars().count());
        let keyword_end = next.is_none_or(|c| c.is_whitespace() || c == ';');
        match word.as_str() {
            "subgraph" if keyword_end => {
                cur.word();
                self.subgraph(cur, at)
            }
            "end" if keyword_end => {
                cur.word();
                self.end(at)
            }
            "style" if keyword_end => {
                cur.word();
                self.style(cur, at)
            }
            "classDef" if keyword_end => {
                cur.word();
                self.class_def(cur, at)
            }
            "class" if keyword_end => {
                cur.word();
                self.class(cur, at)
            }
            "click" | "linkStyle" | "direction" | "accTitle" | "accDescr" | "callback" | "title"
                if keyword_end || next == Some(':') =>
            {
                let construct = cur.rest_of_statement().trim().to_owned();
                let what = match word.as_str() {
                    "click" | "callback" => "interactions are not part of a kars spec",
                    "linkStyle" => "edge styles are not kept",
                    "direction" => "subgraph directions are layout only",
                    _ => "accessibility texts and titles are not kept",
                };
                self.warn(at, WarningKind::Ignored { construct, what });
                Ok(())
            }
            _ => self.chain(cur, start),
        }
    }

    fn subgraph(&mut self, cur: &mut Cursor, at: Location) -> Result<(), ImportError> {
        cur.skip_ws();
        let id_at = cur.loc();
        let (id, title) = if cur.peek() == Some('"') {
            let label = cur.quoted_title()?;
            (None, Some(label.text))
        } else {
            let word = cur.word();
            cur.skip_ws();
            if cur.peek() == Some('[') && !word.is_empty() {
                let label = cur.bracket_title()?;
                (Some(word), Some(label.text))
            } else if !word.is_empty() && (cur.at_end() || cur.peek() == Some(';')) {
                (Some(word), None)
            } else {
                // `subgraph Some words`: mermaid uses the words as the title and makes an id.
                let text = cur.rest_of_statement();
                let full = format!("{word}{}{text}", if word.is_empty() { "" } else { " " });
                let title = super::text::decode_label(full.trim());
                if title.is_empty() {
                    let pos = cur.pos();
                    return Err(ImportError::new(id_at, cur.unexpected(pos, "a subgraph id or title")));
                }
                (None, Some(title))
            }
        };
        let id = match id {
            Some(id) => {
                PhaseId::new(id.clone())
                    .map_err(|source| ImportError::new(id_at, ImportErrorKind::BadId { source }))?;
                id
            }
            None => {
                let title = title.clone().unwrap_or_default();
                let id = self.make_phase_id(&title);
                self.warn(at, WarningKind::GeneratedPhaseId { id: id.clone(), title });
                id
            }
        };
        let parent = self.open.last().map(|o| o.index);
        if let Some(p) = parent {
            let parent_id = self.chart.subgraphs.get(p).map(|s| s.id.clone()).unwrap_or_default();
            self.warn(at, WarningKind::NestedSubgraph { id: id.clone(), parent: parent_id });
        }
        let title = title.filter(|t| !t.is_empty());
        self.chart.subgraphs.push(Subgraph { id, title, nodes: Vec::new(), parent, at });
        self.open.push(Open { index: self.chart.subgraphs.len() - 1, raw: Vec::new(), seen: HashSet::new() });
        Ok(())
    }

    fn make_phase_id(&self, title: &str) -> String {
        let mut base: String = title
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut cs = w.chars();
                cs.next().map(|f| f.to_ascii_uppercase().to_string() + cs.as_str()).unwrap_or_default()
            })
            .collect();
        if !base.starts_with(|c: char| c.is_ascii_alphabetic()) {
            base.insert_str(0, "Phase");
        }
        base.truncate(56);
        let taken = |id: &str| self.chart.subgraphs.iter().any(|s| s.id == id) || self.chart.nodes.contains_key(id);
        let mut id = base.clone();
        let mut n = 2;
        while taken(&id) || PhaseId::new(id.clone()).is_err() {
            id = format!("{base}{n}");
            n += 1;
        }
        id
    }

    fn end(&mut self, at: Location) -> Result<(), ImportError> {
        let open = self.open.pop().ok_or_else(|| ImportError::new(at, ImportErrorKind::StrayEnd))?;
        let mut members = Vec::new();
        for id in open.raw {
            if self.assigned.insert(id.clone()) {
                members.push(id);
            }
        }
        if let Some(sub) = self.chart.subgraphs.get_mut(open.index) {
            sub.nodes = members;
        }
        Ok(())
    }

    fn props(&mut self, text: &str, at: Location) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for prop in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match prop.split_once(':') {
                Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
                    map.insert(k.trim().to_owned(), v.trim().to_owned());
                }
                _ => self.warn(at, WarningKind::BadStyleProperty { property: prop.to_owned() }),
            }
        }
        map
    }

    fn style(&mut self, cur: &mut Cursor, at: Location) -> Result<(), ImportError> {
        cur.skip_ws();
        let id_at = cur.loc();
        let id = cur.word();
        if id.is_empty() {
            let pos = cur.pos();
            return Err(ImportError::new(id_at, cur.unexpected(pos, "a node id after `style`")));
        }
        let text = cur.rest_of_statement();
        let props = self.props(&text, at);
        self.styles.push((id, props, id_at));
        Ok(())
    }

    fn class_def(&mut self, cur: &mut Cursor, at: Location) -> Result<(), ImportError> {
        cur.skip_ws();
        let text = cur.rest_of_statement();
        let text = text.trim();
        let (names, props) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let props = self.props(props, at);
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            self.class_defs.insert(name.to_owned(), (props.clone(), at));
        }
        Ok(())
    }

    fn class(&mut self, cur: &mut Cursor, at: Location) -> Result<(), ImportError> {
        cur.skip_ws();
        let text = cur.rest_of_statement();
        let text = text.trim();
        let (ids, class) = text.rsplit_once(char::is_whitespace).unwrap_or((text, ""));
        for id in ids.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            self.node_classes.push((id.to_owned(), class.trim().to_owned(), at));
        }
        Ok(())
    }

    /// A node, edge or chain statement: `A & B --> C -->|x| D`.
    fn chain(&mut self, cur: &mut Cursor, start: usize) -> Result<(), ImportError> {
        let mut prev = self.group(cur, start)?;
        loop {
            cur.skip_ws();
            if cur.at_end() || cur.peek() == Some(';') || cur.starts_with("%%") {
                return Ok(());
            }
            let at = cur.loc();
            let link = cur.link(start)?;
            cur.skip_ws();
            let next = self.group(cur, start)?;
            match link {
                Link::Invisible => {
                    let construct = cur.snippet_from(start);
                    self.warn(at, WarningKind::Ignored { construct, what: "invisible links are layout only" });
                }
                Link::Edge { label, stroke, arrow, markdown } => {
                    cur.warn_markdown(markdown, at, &mut self.warnings);
                    for from in &prev {
                        for to in &next {
                            if !arrow {
                                self.warn(at, WarningKind::OpenLink { from: from.clone(), to: to.clone() });
                            }
                            self.chart.edges.push(FlowEdge {
                                from: from.clone(),
                                to: to.clone(),
                                label: label.clone(),
                                stroke,
                                arrow,
                                at,
                            });
                        }
                    }
                }
            }
            prev = next;
        }
    }

    fn group(&mut self, cur: &mut Cursor, start: usize) -> Result<Vec<String>, ImportError> {
        let mut ids = vec![self.node(cur, start)?];
        loop {
            cur.skip_ws();
            if !cur.eat("&") {
                return Ok(ids);
            }
            cur.skip_ws();
            ids.push(self.node(cur, start)?);
        }
    }

    fn node(&mut self, cur: &mut Cursor, start: usize) -> Result<String, ImportError> {
        let at = cur.loc();
        let id = cur.word();
        if id.is_empty() {
            let pos = cur.pos();
            return Err(ImportError::new(at, cur.unexpected(pos, "a node id")));
        }
        if cur.peek() == Some('@') {
            let what = if cur.peek_at(1) == Some('{') { "`@{ ... }` node shapes" } else { "edge ids" };
            let construct = cur.snippet_from(start);
            return Err(ImportError::new(at, ImportErrorKind::Unsupported { construct, what }));
        }
        NodeId::new(id.clone()).map_err(|source| ImportError::new(at, ImportErrorKind::BadId { source }))?;
        let shape = cur.shape()?;
        if cur.eat(":::") {
            let class_at = cur.loc();
            let class = cur.word();
            if class.is_empty() {
                let pos = cur.pos();
                return Err(ImportError::new(class_at, cur.unexpected(pos, "a class name after `:::`")));
            }
            self.node_classes.push((id.clone(), class, class_at));
        }
        if let Some(open) = self.open.last_mut()
            && open.seen.insert(id.clone())
        {
            open.raw.push(id.clone());
        }
        let entry = self.chart.nodes.entry(id.clone()).or_insert_with(|| FlowNode {
            label: id.clone(),
            shape: Shape::Rect,
            at,
        });
        if let Some((shape, label)) = shape {
            entry.shape = shape;
            entry.label = label.text;
            cur.warn_markdown(label.markdown, at, &mut self.warnings);
        }
        Ok(id)
    }

    fn finish(mut self) -> Result<(Flowchart, Vec<ImportWarning>), ImportError> {
        if let Some(open) = self.open.last() {
            let sub = self.chart.subgraphs.get(open.index);
            let id = sub.map(|s| s.id.clone()).unwrap_or_default();
            let at = sub.map(|s| s.at).unwrap_or_default();
            return Err(ImportError::new(at, ImportErrorKind::UnclosedSubgraph { id }));
        }
        let subgraph_ids: HashSet<&str> = self.chart.subgraphs.iter().map(|s| s.id.as_str()).collect();
        for edge in &self.chart.edges {
            for end in [&edge.from, &edge.to] {
                if subgraph_ids.contains(end.as_str()) {
                    return Err(ImportError::new(edge.at, ImportErrorKind::EdgeToSubgraph { id: end.clone() }));
                }
            }
        }
        let mut styles: IndexMap<String, BTreeMap<String, String>> = IndexMap::new();
        let mut classes: IndexMap<String, FlowClass> = std::mem::take(&mut self.class_defs)
            .into_iter()
            .map(|(name, (style, at))| (name, FlowClass { style, nodes: Vec::new(), at }))
            .collect();
        for (id, class, at) in std::mem::take(&mut self.node_classes) {
            if !self.chart.nodes.contains_key(&id) {
                self.warn(at, WarningKind::UnknownStyleTarget { id });
                continue;
            }
            match classes.get_mut(&class) {
                // `default` already applies to every node.
                Some(_) if class == "default" => {}
                Some(c) => {
                    if !c.nodes.contains(&id) {
                        c.nodes.push(id);
                    }
                }
                None => self.warn(at, WarningKind::UnknownClass { class }),
            }
        }
        self.chart.classes = classes;
        for (id, props, at) in std::mem::take(&mut self.styles) {
            if self.chart.nodes.contains_key(&id) {
                styles.entry(id).or_default().extend(props);
            } else {
                self.warn(at, WarningKind::UnknownStyleTarget { id });
            }
        }
        styles.retain(|_, s| !s.is_empty());
        // Keep the styles in node order, so the output does not depend on statement order.
        let nodes = &self.chart.nodes;
        styles.sort_by_key(|id, _| nodes.get_index_of(id));
        self.chart.styles = styles;
        if self.chart.nodes.is_empty() {
            return Err(ImportError::new(Location { line: 1, column: 1 }, ImportErrorKind::Empty));
        }
        Ok((self.chart, self.warnings))
    }
}
