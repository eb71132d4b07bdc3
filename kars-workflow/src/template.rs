//! Message templates: `{release}`, `{workflow}`, `{node}`, `{label}` and `{deadline}`.
//!
//! A template is split once, when the workflow compiles, into text and the names it uses
//! ([`Template`]); expanding it then copies pieces into one string allocated at its final size.

/// The values a template may use.
pub(crate) struct Vars<'a> {
    pub(crate) release: &'a str,
    pub(crate) workflow: &'a str,
    pub(crate) node: &'a str,
    pub(crate) label: &'a str,
    pub(crate) deadline: Option<&'a str>,
}

/// One piece of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Text copied as written: a byte range of [`Template::text`].
    Text {
        from: usize,
        to: usize,
    },
    Release,
    Workflow,
    Node,
    /// The label with its line breaks as spaces.
    Label,
    /// The deadline; without one, the `{deadline}` as written (the byte range of the text).
    Deadline {
        from: usize,
        to: usize,
    },
}

/// A message template, split into text and known `{name}`s. Unknown names and an unclosed
/// brace stay text, so the reader sees what was not filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    text: Box<str>,
    parts: Box<[Part]>,
}

impl Template {
    /// Splits `text`.
    pub(crate) fn new(text: &str) -> Self {
        let (bytes, len) = (text.as_bytes(), text.len());
        let mut parts = Vec::new();
        let mut start = 0;
        let mut at = 0;
        while let Some(open) = bytes.get(at..).and_then(|rest| rest.iter().position(|b| *b == b'{')) {
            let open = at + open;
            let Some(close) = bytes.get(open..).and_then(|rest| rest.iter().position(|b| *b == b'}')) else {
                break;
            };
            let close = open + close;
            let name = text.get(open + 1..close).unwrap_or("");
            let part = match name {
                "release" => Some(Part::Release),
                "workflow" => Some(Part::Workflow),
                "node" => Some(Part::Node),
                "label" => Some(Part::Label),
                "deadline" => Some(Part::Deadline { from: open, to: close + 1 }),
                _ => None,
            };
            if let Some(part) = part {
                if start < open {
                    parts.push(Part::Text { from: start, to: open });
                }
                parts.push(part);
                start = close + 1;
            }
            at = close + 1;
        }
        if start < len {
            parts.push(Part::Text { from: start, to: len });
        }
        Self { text: text.into(), parts: parts.into_boxed_slice() }
    }

    /// Whether the template uses `{deadline}` (formatting one is the costly part).
    pub(crate) fn uses_deadline(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Deadline { .. }))
    }

    /// The template as written.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    fn piece<'a>(&'a self, part: Part, vars: &Vars<'a>) -> &'a str {
        let range = |from: usize, to: usize| self.text.get(from..to).unwrap_or("");
        match part {
            Part::Text { from, to } => range(from, to),
            Part::Release => vars.release,
            Part::Workflow => vars.workflow,
            Part::Node => vars.node,
            Part::Label => vars.label,
            Part::Deadline { from, to } => vars.deadline.unwrap_or_else(|| range(from, to)),
        }
    }

    /// The template with every known name filled in: one allocation of the final size.
    pub(crate) fn expand(&self, vars: &Vars<'_>) -> String {
        let len = self.parts.iter().map(|p| self.piece(*p, vars).len()).sum();
        let mut out = String::with_capacity(len);
        for part in self.parts.iter() {
            let piece = self.piece(*part, vars);
            if *part == Part::Label && piece.contains('\n') {
                // Line breaks in a label become spaces (one byte for one).
                out.extend(piece.chars().map(|c| if c == '\n' { ' ' } else { c }));
            } else {
                out.push_str(piece);
            }
        }
        debug_assert_eq!(out.len(), len, "the expansion was sized exactly");
        out
    }
}

/// Expands every known `{name}` in `template`; unknown names and a `{deadline}` for a node
/// without one are left as written, so the reader sees what was not filled in.
#[cfg(test)]
pub(crate) fn expand(template: &str, vars: &Vars<'_>) -> String {
    Template::new(template).expand(vars)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_names_and_keeps_the_rest() {
        let vars = Vars {
            release: "2026-W48",
            workflow: "kars-release",
            node: "Q",
            label: "QA Sign-Off\n3:00 PM EST",
            deadline: None,
        };
        assert_eq!(
            expand("{release} {workflow} {node}: {label} by {deadline} {other} {", &vars),
            "2026-W48 kars-release Q: QA Sign-Off 3:00 PM EST by {deadline} {other} {"
        );
        let with = Vars { deadline: Some("2026-11-27 15:00 EST"), ..vars };
        assert_eq!(expand("by {deadline}.", &with), "by 2026-11-27 15:00 EST.");
        assert_eq!(expand("é{release}ü", &with), "é2026-W48ü");
        let lines = Vars { label: "\nA\n\nB\n", ..vars };
        assert_eq!(expand("[{label}] {label", &lines), "[ A  B ] {label");
    }

    #[test]
    fn splits_once_and_keeps_what_it_does_not_know() {
        let vars = Vars { release: "R", workflow: "W", node: "N", label: "L", deadline: None };
        for (template, expanded) in [
            ("", ""),
            ("{release}", "R"),
            ("{{release}}", "{{release}}"),
            ("{x}{node}{", "{x}N{"),
            ("}{workflow}{label}", "}WL"),
            ("{deadline}", "{deadline}"),
            ("a{b", "a{b"),
        ] {
            let split = Template::new(template);
            assert_eq!(split.expand(&vars), expanded, "{template:?}");
            assert_eq!(split.as_str(), template);
        }
        assert!(Template::new("by {deadline}").uses_deadline());
        assert!(!Template::new("by {deadline").uses_deadline());
    }
}
