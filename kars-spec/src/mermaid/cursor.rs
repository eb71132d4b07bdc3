//! The lexer: a cursor over one line of mermaid text that reads ids, shapes, labels and links.

use super::error::{ImportError, ImportErrorKind, ImportWarning, WarningKind};
use super::flowchart::{Location, Shape, Stroke};
use super::text::decode_label;

/// A cursor over the characters of one line.
pub(crate) struct Cursor {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

/// A label read from between delimiters: decoded, with whether it was a markdown string.
pub(crate) struct Label {
    pub text: String,
    pub markdown: bool,
}

/// A link between two node groups.
pub(crate) enum Link {
    /// A drawn edge.
    Edge { label: Option<String>, stroke: Stroke, arrow: bool, markdown: bool },
    /// `~~~`: layout only.
    Invisible,
}

fn is_id_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Cursor {
    pub(crate) fn new(line: usize, text: &str) -> Self {
        Self { chars: text.chars().collect(), pos: 0, line }
    }

    pub(crate) fn loc(&self) -> Location {
        Location { line: self.line, column: self.pos + 1 }
    }

    fn loc_at(&self, pos: usize) -> Location {
        Location { line: self.line, column: pos + 1 }
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    pub(crate) fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    pub(crate) fn bump(&mut self) {
        if self.pos < self.chars.len() {
            self.pos += 1;
        }
    }

    pub(crate) fn starts_with(&self, s: &str) -> bool {
        (self.pos..).zip(s.chars()).all(|(i, c)| self.chars.get(i) == Some(&c))
    }

    pub(crate) fn eat(&mut self, s: &str) -> bool {
        if self.starts_with(s) {
            self.pos += s.chars().count();
            true
        } else {
            false
        }
    }

    pub(crate) fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Reads an id-like word (letters, digits, `_`) without consuming anything else.
    pub(crate) fn word(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_id_char) {
            self.pos += 1;
        }
        self.text_from(start)
    }

    /// The id-like word at the cursor, not consumed.
    pub(crate) fn peek_word(&self) -> String {
        self.chars.get(self.pos..).unwrap_or_default().iter().take_while(|&&c| is_id_char(c)).collect()
    }

    /// The rest of the statement: up to `;` or the end of the line, skipping over quoted text.
    /// The `;` is not consumed.
    pub(crate) fn rest_of_statement(&mut self) -> String {
        let start = self.pos;
        let mut quoted = false;
        while let Some(c) = self.peek() {
            if c == '"' {
                quoted = !quoted;
            } else if c == ';' && !quoted {
                break;
            }
            self.pos += 1;
        }
        self.text_from(start)
    }

    /// The characters from `from` to the cursor.
    fn text_from(&self, from: usize) -> String {
        self.chars.get(from..self.pos).unwrap_or_default().iter().collect()
    }

    /// The text from `pos` to the end of the line, for error messages.
    pub(crate) fn snippet_from(&self, pos: usize) -> String {
        let s: String = self.chars.get(pos..).unwrap_or_default().iter().collect();
        s.trim_end().chars().take(60).collect()
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    fn err(&self, pos: usize, kind: ImportErrorKind) -> ImportError {
        ImportError::new(self.loc_at(pos), kind)
    }

    /// Reads a quoted string at the cursor (which is on the opening `"`).
    fn quoted(&mut self) -> Result<String, ImportError> {
        let open = self.pos;
        self.bump();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == '"' {
                let text: String = self.text_from(start);
                self.bump();
                return Ok(text);
            }
            self.pos += 1;
        }
        Err(self.err(open, ImportErrorKind::Unclosed { what: "quoted text", expected: "\"".into() }))
    }

    /// Reads label text up to the first of `closes`, quoted or not; returns the raw text and the
    /// index of the close that ended it (consumed).
    fn text_until(&mut self, closes: &[&str], what: &'static str) -> Result<(String, bool, usize), ImportError> {
        let open = self.pos;
        let save = self.pos;
        self.skip_ws();
        if self.peek() == Some('"') {
            let text = self.quoted()?;
            self.skip_ws();
            for (i, close) in closes.iter().enumerate() {
                if self.eat(close) {
                    return Ok((text, true, i));
                }
            }
            let expected = closes.join("` or `");
            return Err(self.err(self.pos, ImportErrorKind::Unclosed { what, expected }));
        }
        self.pos = save;
        while !self.at_end() {
            for (i, close) in closes.iter().enumerate() {
                if self.starts_with(close) {
                    let text: String = self.text_from(save);
                    self.eat(close);
                    return Ok((text, false, i));
                }
            }
            self.pos += 1;
        }
        Err(self.err(open, ImportErrorKind::Unclosed { what, expected: closes.join("` or `") }))
    }

    fn label(raw: &str, quoted: bool) -> Label {
        let trimmed = raw.trim();
        if quoted && let Some(inner) = trimmed.strip_prefix('`').and_then(|t| t.strip_suffix('`')) {
            return Label { text: decode_label(inner), markdown: true };
        }
        Label { text: decode_label(raw), markdown: false }
    }

    /// Reads a node shape with its label, if one starts at the cursor.
    pub(crate) fn shape(&mut self) -> Result<Option<(Shape, Label)>, ImportError> {
        const OPENERS: &[(&str, &[(&str, Shape)])] = &[
            ("(((", &[(")))", Shape::DoubleCircle)]),
            ("((", &[("))", Shape::Circle)]),
            ("([", &[("])", Shape::Stadium)]),
            ("(", &[(")", Shape::Round)]),
            ("[[", &[("]]", Shape::Subroutine)]),
            ("[(", &[(")]", Shape::Cylinder)]),
            ("[/", &[("/]", Shape::Parallelogram), ("\\]", Shape::Trapezoid)]),
            ("[\\", &[("\\]", Shape::ParallelogramAlt), ("/]", Shape::TrapezoidAlt)]),
            ("[", &[("]", Shape::Rect)]),
            ("{{", &[("}}", Shape::Hexagon)]),
            ("{", &[("}", Shape::Rhombus)]),
            (">", &[("]", Shape::Asymmetric)]),
        ];
        let save = self.pos;
        // Spaces between an id and `[`, `(` or `{` are tolerated; `>` must touch the id.
        self.skip_ws();
        let opens = matches!(self.peek(), Some('[' | '(' | '{')) || (self.pos == save && self.peek() == Some('>'));
        if !opens {
            self.pos = save;
            return Ok(None);
        }
        for (open, closes) in OPENERS {
            if self.eat(open) {
                let close_strs: Vec<&str> = closes.iter().map(|(c, _)| *c).collect();
                let (raw, quoted, which) = self.text_until(&close_strs, "node label")?;
                let shape = closes.get(which).map_or(Shape::Rect, |(_, s)| *s);
                return Ok(Some((shape, Self::label(&raw, quoted))));
            }
        }
        self.pos = save;
        Ok(None)
    }

    /// Reads a subgraph title in `[...]` at the cursor (on the `[`).
    pub(crate) fn bracket_title(&mut self) -> Result<Label, ImportError> {
        self.bump();
        let (raw, quoted, _) = self.text_until(&["]"], "subgraph title")?;
        Ok(Self::label(&raw, quoted))
    }

    /// Reads a quoted title at the cursor (on the `"`).
    pub(crate) fn quoted_title(&mut self) -> Result<Label, ImportError> {
        let raw = self.quoted()?;
        Ok(Self::label(&raw, true))
    }

    fn unsupported(&self, stmt_start: usize, at: usize, what: &'static str) -> ImportError {
        let snippet = self.snippet_from(stmt_start);
        let construct = snippet.split(';').next().unwrap_or_default().trim().to_owned();
        self.err(at, ImportErrorKind::Unsupported { construct, what })
    }

    /// Reads a link at the cursor; `stmt_start` is where the statement began (for messages).
    pub(crate) fn link(&mut self, stmt_start: usize) -> Result<Link, ImportError> {
        let start = self.pos;
        if !self.peek_word().is_empty() && self.chars.get(self.pos + self.peek_word().chars().count()) == Some(&'@') {
            return Err(self.unsupported(stmt_start, start, "edge ids"));
        }
        match self.peek() {
            Some('<') if matches!(self.peek_at(1), Some('-' | '=' | '.')) => {
                return Err(self.unsupported(stmt_start, start, "two-way links"));
            }
            Some('x' | 'o') if matches!(self.peek_at(1), Some('-' | '=' | '.')) => {
                return Err(self.unsupported(stmt_start, start, "circle and cross links"));
            }
            Some('~') => {
                let n = self.chars.get(self.pos..).unwrap_or_default().iter().take_while(|&&c| c == '~').count();
                if n >= 3 {
                    self.pos += n;
                    return Ok(Link::Invisible);
                }
                return Err(self.err(start, self.unexpected(start, "a link such as `-->`")));
            }
            _ => {}
        }
        let (run, stroke) = self.run(start)?;
        match self.peek() {
            Some('>') => {
                self.bump();
                let ok = match stroke {
                    Stroke::Normal | Stroke::Thick => run.chars().count() >= 2,
                    Stroke::Dotted => run.ends_with('-'),
                };
                if !ok {
                    return Err(self.err(start, self.unexpected(start, "a link such as `-->`")));
                }
                self.pipe_label(Link::Edge { label: None, stroke, arrow: true, markdown: false })
            }
            Some('x' | 'o') if !self.peek_at(1).is_some_and(is_id_char) => {
                Err(self.unsupported(stmt_start, start, "circle and cross links"))
            }
            _ if matches!(run.as_str(), "--" | "==" | "-.") => self.text_link(start, stroke),
            _ => {
                let ok = match stroke {
                    Stroke::Normal | Stroke::Thick => run.chars().count() >= 3,
                    Stroke::Dotted => run.starts_with('-') && run.ends_with('-'),
                };
                if !ok {
                    return Err(self.err(start, self.unexpected(start, "a link such as `-->`")));
                }
                self.pipe_label(Link::Edge { label: None, stroke, arrow: false, markdown: false })
            }
        }
    }

    /// Reads a run of `-`, `=` and `.` and classifies it.
    fn run(&mut self, start: usize) -> Result<(String, Stroke), ImportError> {
        let from = self.pos;
        while matches!(self.peek(), Some('-' | '=' | '.')) {
            self.pos += 1;
        }
        let run: String = self.text_from(from);
        let stroke = if !run.is_empty() && run.chars().all(|c| c == '-') {
            Stroke::Normal
        } else if !run.is_empty() && run.chars().all(|c| c == '=') {
            Stroke::Thick
        } else if run.contains('.') && !run.contains('=') && {
            let core = run.trim_start_matches('-').trim_end_matches('-');
            core.chars().all(|c| c == '.') && run.chars().filter(|&c| c == '-').count() <= 2
        } {
            Stroke::Dotted
        } else {
            return Err(self.err(start, self.unexpected(start, "a link such as `-->`")));
        };
        Ok((run, stroke))
    }

    /// Reads `-- text -->`, `== text ==>` or `-. text .->` after its opening run.
    fn text_link(&mut self, start: usize, stroke: Stroke) -> Result<Link, ImportError> {
        let closing = match stroke {
            Stroke::Normal => "--",
            Stroke::Thick => "==",
            Stroke::Dotted => ".-",
        };
        self.skip_ws();
        let text_start = self.pos;
        let (raw, quoted) = if self.peek() == Some('"') {
            let q = self.quoted()?;
            self.skip_ws();
            (q, true)
        } else {
            while !self.at_end() && !self.starts_with(closing) {
                self.pos += 1;
            }
            (self.text_from(text_start), false)
        };
        if !self.starts_with(closing) {
            return Err(
                self.err(start, ImportErrorKind::Unclosed { what: "link text", expected: format!("{closing}>") })
            );
        }
        let close_at = self.pos;
        let (run, close_stroke) = self.run(close_at)?;
        let arrow = self.eat(">");
        if matches!(self.peek(), Some('x' | 'o')) && !self.peek_at(1).is_some_and(is_id_char) {
            return Err(self.unsupported(start, start, "circle and cross links"));
        }
        let long_enough = run.chars().count() >= if arrow { 2 } else { 3 };
        if close_stroke != stroke || !long_enough {
            return Err(self.err(close_at, self.unexpected(close_at, "the end of the link text, such as `-->`")));
        }
        let label = Self::label(&raw, quoted);
        let text = (!label.text.is_empty()).then_some(label.text);
        self.pipe_label(Link::Edge { label: text, stroke, arrow, markdown: label.markdown })
    }

    /// Reads an optional `|label|` after a link.
    fn pipe_label(&mut self, link: Link) -> Result<Link, ImportError> {
        let save = self.pos;
        self.skip_ws();
        if self.peek() != Some('|') {
            self.pos = save;
            return Ok(link);
        }
        self.bump();
        let (raw, quoted, _) = self.text_until(&["|"], "link label")?;
        let label = Self::label(&raw, quoted);
        Ok(match link {
            Link::Edge { stroke, arrow, .. } => Link::Edge {
                label: (!label.text.is_empty()).then_some(label.text),
                stroke,
                arrow,
                markdown: label.markdown,
            },
            Link::Invisible => Link::Invisible,
        })
    }

    /// An "unexpected" error kind with the text from `pos` to the end of the statement.
    pub(crate) fn unexpected(&self, pos: usize, expected: &'static str) -> ImportErrorKind {
        let found = self.snippet_from(pos);
        let found = if found.is_empty() { "end of line".to_owned() } else { found };
        ImportErrorKind::Unexpected { found, expected }
    }

    /// Records a markdown-string warning when a label was one.
    pub(crate) fn warn_markdown(&self, markdown: bool, at: Location, warnings: &mut Vec<ImportWarning>) {
        if markdown {
            warnings.push(ImportWarning { at, kind: WarningKind::MarkdownString });
        }
    }
}
