//! A parser for the plain subset of YAML that specs are written in, to a borrowed tree.
//!
//! It reads block mappings and sequences, one-line flow mappings and sequences, plain scalars
//! on one line, and one-line quoted scalars with the common escapes. Anything else (anchors,
//! aliases, tags, block scalars, multi-line scalars, several documents, tabs, empty values,
//! duplicate keys, scalars that YAML could read as something other than a string, nesting or
//! sizes near a loader limit) makes it give up with [`Bail`], and the loader takes the full
//! path, which explains every problem. So it never has to be right about an error: only about
//! what it accepts, which the tests in `fastpath/mod.rs` compare with serde-saphyr on every fixture.
//!
//! The parser recurses once per nesting level and gives up past [`DEPTH`], far below the
//! stack's reach; it looks at each byte a bounded number of times.

use std::borrow::Cow;

use crate::locate::{MAX_DEPTH, MAX_NODES, MAX_SCALAR_BYTES};

/// The fast path declined this input; the full loader reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bail;

/// The deepest nesting the fast path reads (the full loader's limit, with a margin).
const DEPTH: usize = MAX_DEPTH - 4;
/// The most nodes the fast path reads (the full loader's limit, with a margin).
const NODES: usize = MAX_NODES / 4;

/// A YAML node of the subset.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'s> {
    /// A quoted scalar, escapes undone: always a string.
    Str(Cow<'s, str>),
    /// A plain scalar: a string, a number, a boolean or null, as the target type asks.
    Plain(&'s str),
    /// A mapping, in document order; keys are `Str`.
    Map(Vec<(Cow<'s, str>, Node<'s>)>),
    /// A sequence.
    Seq(Vec<Node<'s>>),
}

/// Parses `source` as one block mapping at column 0.
pub(crate) fn parse(source: &str) -> Result<Node<'_>, Bail> {
    if source.bytes().any(|b| matches!(b, b'\t' | b'\r')) || source.starts_with('\u{feff}') {
        // Tabs, carriage returns and a byte-order mark need the full reader's care.
        return Err(Bail);
    }
    let mut p = Parser { s: source.as_bytes(), src: source, pos: 0, nodes: 0 };
    p.skip_blank_lines();
    if p.at_end() || p.indent() != 0 {
        return Err(Bail);
    }
    let root = p.block_map(0, 0)?;
    p.skip_blank_lines();
    if !p.at_end() {
        return Err(Bail);
    }
    Ok(root)
}

struct Parser<'s> {
    s: &'s [u8],
    src: &'s str,
    pos: usize,
    nodes: usize,
}

impl<'s> Parser<'s> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.s.get(self.pos + offset).copied()
    }

    fn count(&mut self) -> Result<(), Bail> {
        self.nodes += 1;
        if self.nodes > NODES { Err(Bail) } else { Ok(()) }
    }

    /// Skips empty lines and comment lines; leaves `pos` at the start of a content line.
    fn skip_blank_lines(&mut self) {
        loop {
            let start = self.pos;
            while self.peek() == Some(b' ') {
                self.pos += 1;
            }
            match self.peek() {
                None => return,
                Some(b'\n') => self.pos += 1,
                Some(b'#') => self.skip_line(),
                Some(_) => {
                    self.pos = start;
                    return;
                }
            }
        }
    }

    fn skip_line(&mut self) {
        match self.s.get(self.pos..).and_then(|rest| rest.iter().position(|&b| b == b'\n')) {
            Some(i) => self.pos += i + 1,
            None => self.pos = self.s.len(),
        }
    }

    /// The indentation of the line that starts at `pos`.
    fn indent(&self) -> usize {
        self.s.get(self.pos..).map_or(0, |rest| rest.iter().take_while(|&&b| b == b' ').count())
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// After a value: spaces, an optional comment, then the line break (or the end).
    fn end_of_line(&mut self) -> Result<(), Bail> {
        let before = self.pos;
        self.skip_spaces();
        match self.peek() {
            None => Ok(()),
            Some(b'\n') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'#') if self.pos > before => {
                self.skip_line();
                Ok(())
            }
            Some(_) => Err(Bail),
        }
    }

    /// A block mapping whose entries start at column `indent`; `pos` is at its first key.
    fn block_map(&mut self, indent: usize, depth: usize) -> Result<Node<'s>, Bail> {
        if depth > DEPTH {
            return Err(Bail);
        }
        self.count()?;
        let mut entries: Vec<(Cow<'s, str>, Node<'s>)> = Vec::with_capacity(8);
        loop {
            let key = self.key(false)?;
            // `key:` then a space, or the end of the line.
            self.pos += 1;
            let value = match self.peek() {
                None | Some(b'\n') => self.nested(indent, depth)?,
                Some(b' ') => {
                    self.skip_spaces();
                    match self.peek() {
                        None | Some(b'\n' | b'#') => self.nested(indent, depth)?,
                        Some(_) => {
                            let value = self.value(depth, false)?;
                            self.end_of_line()?;
                            value
                        }
                    }
                }
                Some(_) => return Err(Bail),
            };
            entries.push((key, value));
            self.skip_blank_lines();
            if self.at_end() {
                break;
            }
            let next = self.indent();
            if next < indent {
                break;
            }
            if next > indent {
                return Err(Bail);
            }
            self.pos += next;
            if self.peek() == Some(b'-') {
                // A sequence at the mapping's indentation belongs to an outer key.
                self.pos -= next;
                break;
            }
        }
        check_unique(&entries)?;
        Ok(Node::Map(entries))
    }

    /// The block value of a key whose line ends after the colon: the more indented lines below
    /// (or a sequence at the key's own indentation).
    fn nested(&mut self, indent: usize, depth: usize) -> Result<Node<'s>, Bail> {
        self.skip_line_rest()?;
        self.skip_blank_lines();
        let next = self.indent();
        if self.at_end() || next < indent {
            return Err(Bail);
        }
        self.pos += next;
        let is_seq = self.peek() == Some(b'-') && matches!(self.peek_at(1), Some(b' ' | b'\n') | None);
        if next == indent && !is_seq {
            // `key:` with nothing under it is null: the full loader explains what is expected.
            return Err(Bail);
        }
        if is_seq { self.block_seq(next, depth + 1) } else { self.block_map(next, depth + 1) }
    }

    /// The rest of a line that holds nothing more than a comment.
    fn skip_line_rest(&mut self) -> Result<(), Bail> {
        self.skip_spaces();
        match self.peek() {
            None => Ok(()),
            Some(b'\n') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'#') => {
                self.skip_line();
                Ok(())
            }
            Some(_) => Err(Bail),
        }
    }

    /// A block sequence whose `-` are at column `indent`; `pos` is at the first `-`.
    fn block_seq(&mut self, indent: usize, depth: usize) -> Result<Node<'s>, Bail> {
        if depth > DEPTH {
            return Err(Bail);
        }
        self.count()?;
        let mut items = Vec::with_capacity(4);
        loop {
            // At `-`, followed by a space or a line break.
            self.pos += 1;
            self.skip_spaces();
            let item = match self.peek() {
                None | Some(b'\n' | b'#') => return Err(Bail),
                Some(b'-') => return Err(Bail),
                Some(_) => {
                    let column = self.pos - self.line_start();
                    if self.looks_like_key() {
                        self.block_map(column, depth + 1)?
                    } else {
                        let value = self.value(depth, false)?;
                        self.end_of_line()?;
                        value
                    }
                }
            };
            items.push(item);
            self.skip_blank_lines();
            if self.at_end() {
                break;
            }
            let next = self.indent();
            if next < indent {
                break;
            }
            if next > indent {
                return Err(Bail);
            }
            let is_item =
                self.peek_at(next) == Some(b'-') && matches!(self.peek_at(next + 1), Some(b' ' | b'\n') | None);
            if !is_item {
                break;
            }
            self.pos += next;
        }
        Ok(Node::Seq(items))
    }

    fn line_start(&self) -> usize {
        self.s.get(..self.pos).and_then(|before| before.iter().rposition(|&b| b == b'\n')).map_or(0, |i| i + 1)
    }

    /// Whether the text at `pos` is `key:` followed by a space or the end of the line.
    fn looks_like_key(&mut self) -> bool {
        let start = self.pos;
        let found = self.key(false).is_ok();
        self.pos = start;
        found
    }

    /// A mapping key, plain or quoted, on one line; leaves `pos` at the colon after it.
    fn key(&mut self, flow: bool) -> Result<Cow<'s, str>, Bail> {
        self.count()?;
        let text = match self.peek() {
            Some(b'"' | b'\'') => {
                let text = self.quoted()?;
                self.skip_spaces();
                text
            }
            _ => {
                let text = self.plain(flow)?;
                if is_null(text) || text == "<<" {
                    return Err(Bail);
                }
                Cow::Borrowed(text)
            }
        };
        if self.peek() != Some(b':') || !matches!(self.peek_at(1), Some(b' ' | b'\n') | None) {
            return Err(Bail);
        }
        Ok(text)
    }

    /// A flow mapping or sequence that closes on the same line.
    fn flow(&mut self, depth: usize) -> Result<Node<'s>, Bail> {
        if depth > DEPTH {
            return Err(Bail);
        }
        self.count()?;
        let is_map = self.peek() == Some(b'{');
        let close = if is_map { b'}' } else { b']' };
        self.pos += 1;
        // Flow collections in specs are short: one allocation of four covers most.
        let mut entries: Vec<(Cow<'s, str>, Node<'s>)> = if is_map { Vec::with_capacity(4) } else { Vec::new() };
        let mut items = if is_map { Vec::new() } else { Vec::with_capacity(4) };
        loop {
            self.skip_spaces();
            if self.peek() == Some(close) {
                self.pos += 1;
                break;
            }
            if is_map {
                let key = self.key(true)?;
                if self.peek_at(1) != Some(b' ') {
                    return Err(Bail);
                }
                self.pos += 2;
                self.skip_spaces();
                let value = self.value(depth, true)?;
                entries.push((key, value));
            } else {
                items.push(self.value(depth, true)?);
            }
            self.skip_spaces();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(Bail),
            }
        }
        if is_map {
            check_unique(&entries)?;
            Ok(Node::Map(entries))
        } else {
            Ok(Node::Seq(items))
        }
    }

    /// A value that starts on this line, a flow collection or a scalar, in a flow collection (`in_flow`: `,`, `]` and `}` end a
    /// plain scalar) or not. A plain scalar followed by `:` is a mapping this parser leaves to
    /// the full one (`[a: b]`, a single-pair mapping in a sequence, or a key on a value line).
    fn value(&mut self, depth: usize, in_flow: bool) -> Result<Node<'s>, Bail> {
        match self.peek() {
            Some(b'{' | b'[') => self.flow(depth + 1),
            Some(b'"' | b'\'') => {
                self.count()?;
                Ok(Node::Str(self.quoted()?))
            }
            _ => {
                self.count()?;
                let text = self.plain(in_flow)?;
                if self.peek() == Some(b':') {
                    return Err(Bail);
                }
                Ok(Node::Plain(text))
            }
        }
    }

    /// A plain scalar on one line. It ends at `: `, ` #` or the line's end, and in a flow
    /// collection also at `,`, `[`, `]`, `{`, `}`. Trailing spaces are not part of it.
    fn plain(&mut self, flow: bool) -> Result<&'s str, Bail> {
        let start = self.pos;
        match self.peek() {
            None | Some(b'\n' | b' ') => return Err(Bail),
            Some(
                b'-' | b'?' | b':' | b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'"' | b'\'' | b'&' | b'*' | b'!' | b'|'
                | b'>' | b'%' | b'@' | b'`',
            ) => return Err(Bail),
            Some(_) => {}
        }
        let mut end = start;
        while let Some(c) = self.peek() {
            match c {
                b'\n' => break,
                b':' if matches!(self.peek_at(1), Some(b' ' | b'\n') | None) => break,
                b':' if flow && matches!(self.peek_at(1), Some(b',' | b'[' | b']' | b'{' | b'}')) => break,
                b'#' if self.s.get(self.pos.wrapping_sub(1)) == Some(&b' ') => break,
                b',' | b'[' | b']' | b'{' | b'}' if flow => break,
                b' ' => {}
                _ => end = self.pos + 1,
            }
            self.pos += 1;
        }
        // Leave `pos` just after the text so that `end_of_line` sees the trailing spaces.
        self.pos = end;
        if end - start > MAX_SCALAR_BYTES / 4 {
            return Err(Bail);
        }
        self.src.get(start..end).ok_or(Bail)
    }

    /// A quoted scalar on one line, with its escapes undone.
    fn quoted(&mut self) -> Result<Cow<'s, str>, Bail> {
        let quote = self.peek().ok_or(Bail)?;
        self.pos += 1;
        let start = self.pos;
        let rest = self.s.get(start..).ok_or(Bail)?;
        let line = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = rest.get(..line).ok_or(Bail)?;
        let close = line.iter().position(|&b| b == quote || (quote == b'"' && b == b'\\'));
        let text = match close {
            // No escape: borrow.
            Some(i) if line.get(i) == Some(&quote) && (quote == b'"' || line.get(i + 1) != Some(&b'\'')) => {
                self.pos = start + i + 1;
                Cow::Borrowed(self.src.get(start..start + i).ok_or(Bail)?)
            }
            Some(_) => Cow::Owned(self.unescape(quote, line.len())?),
            None => return Err(Bail),
        };
        if text.len() > MAX_SCALAR_BYTES / 4 {
            return Err(Bail);
        }
        Ok(text)
    }

    /// Undoes the escapes of a quoted scalar that has some; `pos` is after the opening quote.
    fn unescape(&mut self, quote: u8, line_len: usize) -> Result<String, Bail> {
        let start = self.pos;
        let line = self.src.get(start..start + line_len).ok_or(Bail)?;
        let mut out = String::with_capacity(line.len());
        let mut chars = line.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' if quote == b'\'' => {
                    if line.get(i + 1..i + 2) == Some("'") {
                        chars.next();
                        out.push('\'');
                    } else {
                        self.pos = start + i + 1;
                        return Ok(out);
                    }
                }
                '"' if quote == b'"' => {
                    self.pos = start + i + 1;
                    return Ok(out);
                }
                '\\' if quote == b'"' => {
                    let (_, e) = chars.next().ok_or(Bail)?;
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        '\\' => '\\',
                        '"' => '"',
                        '/' => '/',
                        ' ' => ' ',
                        _ => return Err(Bail),
                    });
                }
                c => out.push(c),
            }
        }
        Err(Bail)
    }
}

/// Whether a plain scalar is null: serde-saphyr reads it as `None` or refuses it as a string.
pub(crate) fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Whether a plain scalar reads as a string when the target takes any type: not null, a
/// boolean (YAML 1.1's `yes`/`on` too), a number, a date-time or a sexagesimal. A calendar
/// date (`2026-12-25`) is a string.
pub(crate) fn is_string(text: &str) -> bool {
    let Some(&first) = text.as_bytes().first() else { return false };
    if first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.' | b'~' | b'=' | b'<') {
        return is_date(text);
    }
    !matches!(text.to_ascii_lowercase().as_str(), "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n")
}

fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10 && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
}

/// Duplicate keys are an error the full loader reports.
fn check_unique(entries: &[(Cow<'_, str>, Node<'_>)]) -> Result<(), Bail> {
    if entries.len() <= 16 {
        for (i, (key, _)) in entries.iter().enumerate() {
            if entries.iter().skip(i + 1).any(|(other, _)| other == key) {
                return Err(Bail);
            }
        }
        return Ok(());
    }
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    if entries.iter().all(|(key, _)| seen.insert(key.as_ref())) { Ok(()) } else { Err(Bail) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_block_and_flow_collections() {
        let src = "# c\na: 1\nb: { x: \"q\\n\", y: [p, 'it''s'] }\nc:\n  - from: A\n    to: B # c\n  - [z]\nd:\n- e\n";
        let tree = parse(src).unwrap();
        let Node::Map(entries) = tree else { panic!() };
        assert_eq!(entries[0], (Cow::Borrowed("a"), Node::Plain("1")));
        let s = Node::Plain;
        assert_eq!(
            entries[1].1,
            Node::Map(vec![
                (Cow::Borrowed("x"), Node::Str(Cow::Owned("q\n".into()))),
                (Cow::Borrowed("y"), Node::Seq(vec![s("p"), Node::Str(Cow::Owned("it's".into()))])),
            ])
        );
        assert_eq!(
            entries[2].1,
            Node::Seq(vec![
                Node::Map(vec![(Cow::Borrowed("from"), s("A")), (Cow::Borrowed("to"), s("B"))]),
                Node::Seq(vec![s("z")]),
            ])
        );
        assert_eq!(entries[3].1, Node::Seq(vec![s("e")]));
    }

    #[test]
    fn declines_what_it_does_not_read() {
        for src in [
            "",
            "a: &x 1\nb: *x\n",
            "a:\n",
            "a: b\n  c\n",
            "a: 1\na: 2\n",
            "a: \"open\n",
            "---\na: 1\n",
            "a: |\n  x\n",
            "a: [b,\n c]\n",
            "a:\tb\n",
            "- a\n",
            "a: b: c\n",
            "<<: {a: 1}\n",
            "a: {b}\n",
            "~: 1\n",
            "a: {b:\n c}\n",
        ] {
            assert_eq!(parse(src), Err(Bail), "{src:?}");
        }
    }

    #[test]
    fn plain_scalars_that_are_not_strings() {
        for text in ["1", "-1", "0x1f", ".inf", "~", "null", "True", "yes", "off", "12:30", "2026-12-25T10:00"] {
            assert!(!is_string(text), "{text}");
        }
        for text in ["A", "Tuesday 09:00", "2026-12-25", "feature/*", "kars-dev"] {
            assert!(is_string(text), "{text}");
        }
    }
}
