//! Diagnostics: stable codes, severities, locations (path, line, column) and rustc-style rendering.
//!
//! Every problem the loader or the validator finds is a [`Diagnostic`]. A [`Report`] gathers all
//! of them for one source, renders them like rustc does (`-->` file:line:col, the source line,
//! a caret underline, `help:`) and exposes them as data for tools.
//!
//! The codes are stable: once published, a code keeps its meaning. The table lives on [`Code`]
//! and in `kars-spec/CODES.md`.

use std::fmt::{self, Write as _};

/// The severity of a diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The spec is rejected.
    Error,
    /// The spec is accepted, but probably not what its author meant.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! codes {
    ($($(#[$meta:meta])* $name:ident = $code:literal,)*) => {
        /// A stable diagnostic code. `K01xx` are input and YAML problems, `K02xx` graph
        /// problems, `K03xx` decisions, `K04xx` unknown references, `K05xx` field and kind
        /// consistency, `K06xx` phases, `K07xx` time and zone problems.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $($(#[$meta])* $name,)*
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The code as written in messages (`K0101`).
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => $code,)*
                }
            }
        }
    };
}

codes! {
    /// `K0101` the input is larger than [`crate::MAX_INPUT_BYTES`].
    InputTooLarge = "K0101",
    /// `K0102` the input is not UTF-8 text.
    NotUtf8 = "K0102",
    /// `K0103` the input holds no YAML document (empty, blank or comments only).
    Empty = "K0103",
    /// `K0104` the input holds more than one YAML document.
    SeveralDocuments = "K0104",
    /// `K0105` YAML syntax error.
    Syntax = "K0105",
    /// `K0106` a tab is used for indentation.
    TabIndentation = "K0106",
    /// `K0107` a resource limit was hit: nesting depth, node count, aliases or scalar sizes.
    Limit = "K0107",
    /// `K0108` a mapping has the same key twice (this is how duplicate ids show).
    DuplicateKey = "K0108",
    /// `K0109` a key that the format does not know.
    UnknownField = "K0109",
    /// `K0110` a required key is missing.
    MissingField = "K0110",
    /// `K0111` a value of the wrong type or shape: an invalid id, a bad week time, an unknown
    /// kind, a string where a number belongs.
    InvalidValue = "K0111",
    /// `K0201` the format `version` is not 1.
    Version = "K0201",
    /// `K0202` there is no `start` node.
    NoStart = "K0202",
    /// `K0203` there is more than one `start` node.
    SeveralStarts = "K0203",
    /// `K0204` a node cannot be reached from the start node.
    Unreachable = "K0204",
    /// `K0205` a node that is not an `end` node has no way on.
    DeadEnd = "K0205",
    /// `K0206` a cycle with no way out: no end and no edge back to the start can be reached.
    TrapCycle = "K0206",
    /// `K0207` a cycle with no human task, gate or retry bound: it could spin forever.
    UnboundedCycle = "K0207",
    /// `K0208` a node other than a decision or a parallel node has more than one outgoing edge.
    SeveralOutEdges = "K0208",
    /// `K0209` an `end` node has an outgoing edge.
    EndOutEdge = "K0209",
    /// `K0210` the same edge is listed twice.
    DuplicateEdge = "K0210",
    /// `K0211` the branches of a `parallel` node do not all reach one `join`.
    ForkWithoutJoin = "K0211",
    /// `K0212` a branch leaves its fork's block other than through its join or an `end` node:
    /// a node inside the block is also reached without passing the fork, or a branch reaches
    /// another join, its own fork or the start.
    BranchLeavesBlock = "K0212",
    /// `K0213` two branches of one fork meet before their join.
    BranchesMeet = "K0213",
    /// `K0214` a node inside a fork's block also follows its join: a loop from after the join
    /// goes back into a branch, or a branch skips past the join.
    LoopAcrossJoin = "K0214",
    /// `K0215` a `join` that is the join of no fork, or of several.
    JoinWithoutFork = "K0215",
    /// `K0216` a `parallel` node with fewer than two outgoing edges.
    FewParallelBranches = "K0216",
    /// `K0217` (warning) a label on an edge that leaves a `parallel` node.
    ParallelEdgeLabel = "K0217",
    /// `K0301` a decision has fewer than two branches.
    FewBranches = "K0301",
    /// `K0302` a decision branch has no label.
    UnlabelledBranch = "K0302",
    /// `K0303` two branches of a decision have the same label.
    DuplicateBranchLabel = "K0303",
    /// `K0304` `decided_by` needs exactly one of `role` and `outcome_of`, and `map` goes with
    /// `outcome_of` only.
    DecidedBy = "K0304",
    /// `K0305` `outcome_of` names a node that records no outcome.
    OutcomeOf = "K0305",
    /// `K0306` a `map` value is not a branch label of the decision.
    MapTarget = "K0306",
    /// `K0307` a branch label is not reachable from the `map`.
    MapMissingBranch = "K0307",
    /// `K0308` a `map` key is not an outcome the `outcome_of` node can record.
    MapUnknownOutcome = "K0308",
    /// `K0401` a reference to a node that does not exist.
    UnknownNode = "K0401",
    /// `K0402` a reference to a role that does not exist.
    UnknownRole = "K0402",
    /// `K0403` a reference to a channel that does not exist.
    UnknownChannel = "K0403",
    /// `K0404` a reference to a branch that does not exist.
    UnknownBranch = "K0404",
    /// `K0405` a reference to an environment that does not exist.
    UnknownEnvironment = "K0405",
    /// `K0501` a field that this node kind does not use.
    FieldNotAllowed = "K0501",
    /// `K0502` a field that this node kind requires is missing.
    FieldRequired = "K0502",
    /// `K0503` a branch needs exactly one of `name` and `pattern`.
    BranchShape = "K0503",
    /// `K0504` a branch pattern needs exactly one `*`.
    BranchPattern = "K0504",
    /// `K0505` a retry bound below 1.
    RetryBound = "K0505",
    /// `K0506` a message template uses an unknown placeholder or an unclosed `{`.
    Template = "K0506",
    /// `K0507` an empty label, title or message.
    EmptyText = "K0507",
    /// `K0508` a style key or value mermaid cannot take.
    Style = "K0508",
    /// `K0509` a notification with no recipients.
    NoRecipients = "K0509",
    /// `K0510` `distinct_from` names a node no actor completes, or the node itself.
    DistinctFrom = "K0510",
    /// `K0511` (warning) an `outcome` that no path uses.
    UnusedOutcome = "K0511",
    /// `K0512` a login that is not a valid operating-system login name, or one listed for two
    /// people.
    Login = "K0512",
    /// `K0513` (warning) a task or decision that nobody on the team holds a role for.
    NobodyOnTheTeam = "K0513",
    /// `K0514` (warning) a `distinct_from` that the team cannot satisfy: one person is the only
    /// one who can complete both nodes.
    DistinctFromUnsatisfiable = "K0514",
    /// `K0515` (warning) a task or decision that a `pause_tasks` window covers from the earliest
    /// time it can be acted on to its deadline, which then escalates every cycle.
    AlwaysPaused = "K0515",
    /// `K0516` a `github:` or `gitlab:` login that is not a forge login name, or one listed for
    /// two people.
    ForgeLogin = "K0516",
    /// `K0517` (warning) a merge whose `requires: approved_by` names a role that nobody on the
    /// team both holds and has a `github:` or `gitlab:` login for: a forge adapter can never
    /// count that role's approval.
    NoForgeApprover = "K0517",
    /// `K0601` a node is listed in two phases.
    NodeInTwoPhases = "K0601",
    /// `K0602` a phase id is also a node id (mermaid shares the namespace).
    PhaseIdCollision = "K0602",
    /// `K0603` (warning) a node is in no phase while phases exist.
    NodeInNoPhase = "K0603",
    /// `K0701` the time zone is not an IANA zone.
    Zone = "K0701",
    /// `K0702` (warning) a fixed-offset zone that ignores daylight saving time.
    FixedOffsetZone = "K0702",
    /// `K0703` a gate is earlier in the cycle than a gate on a node before it.
    GateOrder = "K0703",
    /// `K0704` a deadline is earlier than the latest gate on the way to its node.
    DeadlineBeforeGate = "K0704",
    /// `K0710` the cadence's anchor is not a Monday.
    CadenceAnchor = "K0710",
    /// `K0711` (warning) a gate or deadline lies in a week past the cycle's cadence: the next
    /// cycle has started by then.
    PastCadence = "K0711",
    /// `K0712` a holiday range ends before it starts.
    HolidayRange = "K0712",
    /// `K0713` a window with dated edges closes before it opens.
    DatedWindowOrder = "K0713",
    /// `K0714` (warning) `on_holiday` on a node without a gate does nothing.
    OnHolidayWithoutGate = "K0714",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a path into the document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index, from 0.
    Index(usize),
}

/// A path into the document, such as `nodes.N.decided_by.role` or `edges.3.to`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path(pub Vec<Segment>);

impl Path {
    /// The document root.
    #[must_use]
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path with a key appended.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.0.push(Segment::Key(key.into()));
        self
    }

    /// This path with an index appended.
    #[must_use]
    pub fn index(mut self, index: usize) -> Self {
        self.0.push(Segment::Index(index));
        self
    }

    /// Whether this is the root.
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_char('.')?;
            }
            match segment {
                Segment::Key(key) => f.write_str(key)?,
                Segment::Index(index) => write!(f, "{index}")?,
            }
        }
        Ok(())
    }
}

/// Where a diagnostic points: a path in the document and, when the source is known, the line,
/// column and the text of that line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The path in the document (`nodes.N.decided_by.role`); `None` for problems found before
    /// the document could be read as a tree (bad bytes, syntax errors).
    pub path: Option<Path>,
    /// Whether the diagnostic points at the mapping key of `path` rather than its value.
    pub at_key: bool,
    /// The position in the source, when there is a source.
    pub span: Option<SourceSpan>,
}

impl Location {
    /// A location known only by its path (a spec built in code has no source).
    #[must_use]
    pub fn path(path: Path) -> Self {
        Self { path: Some(path), at_key: false, span: None }
    }

    /// A location at the key of `path`.
    #[must_use]
    pub fn key(path: Path) -> Self {
        Self { path: Some(path), at_key: true, span: None }
    }
}

/// A position in the source text, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpan {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
    /// How many characters to underline on that line (at least 1 when rendered).
    pub width: usize,
    /// The text of the line, without its line break.
    pub line_text: String,
}

/// A secondary location with its own message (``this gate comes before it``).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Where it points.
    pub location: Location,
    /// What it says.
    pub message: String,
}

/// One problem found in a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The stable code.
    pub code: Code,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in one lowercase line with names in backticks.
    pub message: String,
    /// Where, when known.
    pub location: Option<Location>,
    /// The text shown under the caret of the main location.
    pub label: Option<String>,
    /// Other places that explain the problem.
    pub labels: Vec<Label>,
    /// How to fix it (`did you mean `qa`?`).
    pub help: Vec<String>,
}

impl Diagnostic {
    /// An error.
    #[must_use]
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            severity: Severity::Error,
            message: message.into(),
            location: None,
            label: None,
            labels: Vec::new(),
            help: Vec::new(),
        }
    }

    /// A warning.
    #[must_use]
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, ..Self::error(code, message) }
    }

    /// Sets the location.
    #[must_use]
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Points at the value at `path`.
    #[must_use]
    pub fn at_path(self, path: Path) -> Self {
        self.at(Location::path(path))
    }

    /// Points at the key of `path`.
    #[must_use]
    pub fn at_key(self, path: Path) -> Self {
        self.at(Location::key(path))
    }

    /// Sets the text under the caret.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds a secondary location.
    #[must_use]
    pub fn with_label(mut self, location: Location, message: impl Into<String>) -> Self {
        self.labels.push(Label { location, message: message.into() });
        self
    }

    /// Adds a help line.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    /// Adds a help line when there is one.
    #[must_use]
    pub fn help_opt(self, help: Option<String>) -> Self {
        match help {
            Some(h) => self.help(h),
            None => self,
        }
    }

    /// Whether this is an error.
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic rustc-style; `origin` names the file.
    #[must_use]
    pub fn render(&self, origin: &str) -> String {
        let mut out = String::new();
        render_into(&mut out, self, origin);
        out
    }
}

/// The widest part of a source line an excerpt shows, in characters.
const MAX_EXCERPT_CHARS: usize = 100;

fn render_into(out: &mut String, d: &Diagnostic, origin: &str) {
    let _ = writeln!(out, "{}[{}]: {}", d.severity, d.code, d.message);
    let spans: Vec<&SourceSpan> = std::iter::once(d.location.as_ref())
        .chain(d.labels.iter().map(|l| Some(&l.location)))
        .flatten()
        .filter_map(|l| l.span.as_ref())
        .collect();
    let gutter = spans.iter().map(|s| s.line.to_string().len()).max().unwrap_or(0).max(1);
    let pad = " ".repeat(gutter);
    match &d.location {
        Some(location) => {
            let _ = writeln!(out, "{pad}--> {}", arrow(origin, location));
            if let Some(span) = &location.span {
                excerpt(out, &pad, span, d.label.as_deref());
            } else if let Some(label) = &d.label {
                let _ = writeln!(out, "{pad} = {label}");
            }
        }
        None if !origin.is_empty() => {
            let _ = writeln!(out, "{pad}--> {origin}");
        }
        None => {}
    }
    for label in &d.labels {
        let _ = writeln!(out, "{pad}::: {}", arrow(origin, &label.location));
        match &label.location.span {
            Some(span) => excerpt(out, &pad, span, Some(&label.message)),
            None => {
                let _ = writeln!(out, "{pad} = {}", label.message);
            }
        }
    }
    for help in &d.help {
        let _ = writeln!(out, "{pad} = help: {help}");
    }
}

fn arrow(origin: &str, location: &Location) -> String {
    let mut s = String::new();
    if !origin.is_empty() {
        s.push_str(origin);
    }
    if let Some(span) = &location.span {
        let _ = write!(s, ":{}:{}", span.line, span.column);
    }
    if let Some(path) = location.path.as_ref().filter(|p| !p.is_root()) {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "at `{path}`");
    }
    s
}

fn excerpt(out: &mut String, pad: &str, span: &SourceSpan, label: Option<&str>) {
    let (text, caret_col, width) = display_line(&span.line_text, span.column, span.width);
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{:>w$} | {text}", span.line, w = pad.len());
    let mut marker = " ".repeat(caret_col);
    marker.push_str(&"^".repeat(width.max(1)));
    if let Some(label) = label {
        marker.push(' ');
        marker.push_str(label);
    }
    let _ = writeln!(out, "{pad} | {}", marker.trim_end());
}

/// The line as shown (tabs expanded, control characters replaced, cropped around the column),
/// the caret's column in it (from 0) and the underline width.
fn display_line(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    let start_char = column.saturating_sub(1).min(chars.len());
    // Crop long lines to a window around the column.
    let first = start_char.saturating_sub(MAX_EXCERPT_CHARS / 2);
    let last = (first + MAX_EXCERPT_CHARS).min(chars.len());
    let mut shown = String::new();
    let mut caret = 0;
    let mut caret_end = None;
    if first > 0 {
        shown.push_str("...");
    }
    let end_char = start_char.saturating_add(width.max(1));
    for (i, &ch) in chars.iter().enumerate().take(last).skip(first) {
        if i == start_char {
            caret = shown.chars().count();
        }
        match ch {
            '\t' => shown.push_str("    "),
            c if c.is_control() => shown.push('\u{fffd}'),
            c => shown.push(c),
        }
        if i + 1 == end_char {
            caret_end = Some(shown.chars().count());
        }
    }
    if start_char >= last {
        caret = shown.chars().count();
    }
    if last < chars.len() {
        shown.push_str("...");
    }
    let width = caret_end.map_or(1, |e| e.saturating_sub(caret).max(1));
    (shown, caret, width)
}

/// Every diagnostic found in one source, errors and warnings, in the order found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    origin: String,
    diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// A report about `origin` (a file name; empty for a spec built in code).
    #[must_use]
    pub fn new(origin: impl Into<String>, diagnostics: Vec<Diagnostic>) -> Self {
        Self { origin: origin.into(), diagnostics }
    }

    /// The file the report is about; empty for a spec built in code.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Every diagnostic.
    #[must_use]
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning)
    }

    /// Whether any diagnostic is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Whether the report holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// The codes of every diagnostic, in order: handy in tests.
    #[must_use]
    pub fn codes(&self) -> Vec<Code> {
        self.diagnostics.iter().map(|d| d.code).collect()
    }

    pub(crate) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_char('\n')?;
            }
            f.write_str(&d.render(&self.origin))?;
        }
        let errors = self.errors().count();
        let warnings = self.warnings().count();
        if errors + warnings > 0 {
            f.write_char('\n')?;
            let what = if self.origin.is_empty() { "the spec".to_owned() } else { format!("`{}`", self.origin) };
            let plural = |n: usize, word: &str| if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") };
            if errors > 0 {
                write!(f, "error: {what} is invalid: {}", plural(errors, "error"))?;
                if warnings > 0 {
                    write!(f, ", {}", plural(warnings, "warning"))?;
                }
            } else {
                write!(f, "warning: {what}: {}", plural(warnings, "warning"))?;
            }
            f.write_char('\n')?;
        }
        Ok(())
    }
}

impl std::error::Error for Report {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(s.len() == 5 && s.starts_with('K') && s[1..].bytes().all(|b| b.is_ascii_digit()), "{s}");
            assert!(seen.insert(s), "duplicate code {s}");
        }
    }

    #[test]
    fn renders_an_excerpt_with_a_caret() {
        let d = Diagnostic::error(Code::UnknownNode, "edge to unknown node `Z`")
            .at(Location {
                path: Some(Path::root().key("edges").index(3).key("to")),
                at_key: false,
                span: Some(SourceSpan { line: 12, column: 20, width: 1, line_text: "  - { from: A, to: Z }".into() }),
            })
            .label("no such node")
            .help("did you mean `B`?");
        assert_eq!(
            d.render("spec.yaml"),
            "error[K0401]: edge to unknown node `Z`\n  --> spec.yaml:12:20 at `edges.3.to`\n   |\n12 |   - { from: A, to: Z }\n   |                    ^ no such node\n   = help: did you mean `B`?\n"
        );
    }

    #[test]
    fn crops_long_lines_and_expands_tabs() {
        let line = format!("\t{}x", "a".repeat(300));
        let (shown, caret, width) = display_line(&line, 302, 1);
        assert!(shown.starts_with("...") && shown.ends_with('x'), "{shown}");
        assert_eq!(shown.chars().nth(caret), Some('x'));
        assert_eq!(width, 1);
        let (shown, caret, _) = display_line("\tb", 2, 1);
        assert_eq!((shown.as_str(), caret), ("    b", 4));
    }
}
