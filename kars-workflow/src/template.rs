//! Message templates: `{release}`, `{workflow}`, `{node}`, `{label}` and `{deadline}`.
//!
//! A template is split once, when the workflow compiles, into text and the names it uses
//! ([`Template`]); expanding it then copies pieces into one string allocated at its final size.
//! A template without names is shared as written, and every expansion is remembered per
//! thread for a while ([`Template::shared`]), so the instances of one release share its
//! messages instead of each formatting and allocating its own.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use crate::effect::ReleaseId;
use crate::workflow::NodeIndex;

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
///
/// Equal when their text is: the id only tells templates apart in the per-thread memo.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    text: Box<str>,
    parts: Box<[Part]>,
    /// Unique per [`Template::new`] (clones keep it: same text, same node, same workflow).
    id: u64,
    /// The text, shared, when it names nothing to fill in.
    fixed: Option<Arc<str>>,
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Template {}

/// Template ids: 0 is never given out.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What a remembered expansion was for: the template (which fixes the workflow and its
/// text), the node whose id and label it used, the release and the deadline instant (`None`
/// for a template that does not use it). Every other input of an expansion follows from these.
struct Expanded {
    template: u64,
    node: NodeIndex,
    release: ReleaseId,
    deadline: Option<DateTime<Utc>>,
    text: Arc<str>,
}

/// How many expansions each thread remembers, in sets of two by template and node: more than
/// the messages a workflow sends at one stretch of its week, so that the instances advanced
/// together share them, and a lookup compares two entries.
const MESSAGE_SETS: usize = 8;

thread_local! {
    /// Remembered expansions. The memo changes no message: a hit is the text the same inputs
    /// expand to.
    static MESSAGES: RefCell<[Option<Expanded>; 2 * MESSAGE_SETS]> = const { RefCell::new([const { None }; 2 * MESSAGE_SETS]) };
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
        let fixed = parts.iter().all(|p| matches!(p, Part::Text { .. })).then(|| Arc::from(text));
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Self { text: text.into(), parts: parts.into_boxed_slice(), id, fixed }
    }

    /// The message for `node` of `release`: the text as written when it names nothing, else
    /// an expansion remembered on this thread, else `vars()` expanded (and remembered) with the
    /// deadline at `deadline` written by `write_deadline` (pass `None` when the template does
    /// not use it, see [`Template::uses_deadline`]; the deadline `vars()` gives is not read).
    /// Both closures run only when the memo does not hold the message.
    ///
    /// The caller vouches that `vars()` gives the values of `node` and `release` in the workflow
    /// this template was compiled for.
    pub(crate) fn shared<'a>(
        &self,
        node: NodeIndex,
        release: &ReleaseId,
        deadline: Option<DateTime<Utc>>,
        vars: impl FnOnce() -> Vars<'a>,
        write_deadline: impl FnOnce(DateTime<Utc>) -> String,
    ) -> Arc<str> {
        if let Some(fixed) = &self.fixed {
            return Arc::clone(fixed);
        }
        MESSAGES.with(|memo| {
            let render = || {
                let written = deadline.map(write_deadline);
                self.expand_shared(&Vars { deadline: written.as_deref(), ..vars() })
            };
            // Never taken twice (nothing below expands another message), but never a panic.
            let Ok(mut memo) = memo.try_borrow_mut() else {
                return render();
            };
            // Two ways per set, the newer first: a template's node keeps its set.
            let set = (self.id as usize).wrapping_add(3 * usize::from(node.0)) % MESSAGE_SETS;
            let (Some(newer), Some(older)) = (memo.get(2 * set), memo.get(2 * set + 1)) else {
                return render();
            };
            let same = |e: &Option<Expanded>| {
                e.as_ref()
                    .filter(|e| {
                        e.template == self.id && e.node == node && e.deadline == deadline && e.release == *release
                    })
                    .map(|e| Arc::clone(&e.text))
            };
            if let Some(text) = same(newer).or_else(|| same(older)) {
                return text;
            }
            let text = render();
            let entry =
                Expanded { template: self.id, node, release: release.clone(), deadline, text: Arc::clone(&text) };
            if let Some(ways) = memo.get_mut(2 * set..2 * set + 2) {
                ways.rotate_right(1);
                if let Some(newer) = ways.first_mut() {
                    *newer = Some(entry);
                }
            }
            text
        })
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

    /// [`Template::expand`] as a shared string: written on the stack and copied once into the
    /// shared allocation when it fits (as messages do), instead of a `String` copied again.
    fn expand_shared(&self, vars: &Vars<'_>) -> Arc<str> {
        const STACK: usize = 256;
        let len: usize = self.parts.iter().map(|p| self.piece(*p, vars).len()).sum();
        if len > STACK {
            return self.expand(vars).into();
        }
        let mut buf = [0u8; STACK];
        let mut at = 0;
        for part in self.parts.iter() {
            let piece = self.piece(*part, vars).as_bytes();
            if let Some(to) = buf.get_mut(at..at + piece.len()) {
                to.copy_from_slice(piece);
                if *part == Part::Label {
                    // Line breaks in a label become spaces (one byte for one).
                    to.iter_mut().filter(|b| **b == b'\n').for_each(|b| *b = b' ');
                }
            }
            at += piece.len();
        }
        debug_assert_eq!(at, len, "the expansion was sized exactly");
        let text = buf.get(..len).unwrap_or_default();
        debug_assert!(std::str::from_utf8(text).is_ok());
        // SAFETY: `text` is whole `&str` pieces copied end to end, with `\n` (one byte) made
        // ` ` (one byte) in some: valid UTF-8.
        Arc::from(unsafe { std::str::from_utf8_unchecked(text) })
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

    /// `shared` with the given inputs, the values filled in as `vars` says. As in a workflow,
    /// the label is the node's.
    fn shared(template: &Template, node: u16, release: &str, deadline: Option<&str>) -> Arc<str> {
        let label = if node == 1 { "QA\nsign-off" } else { "L" };
        let monday = chrono::NaiveDate::parse_from_str(release, "%Y-%m-%d").expect("a date");
        let release = ReleaseId::of(monday);
        // The deadline's instant stands for its text (as the engine formats one from the other).
        let at = deadline.map(|d| {
            let day: u32 = d.len().try_into().expect("short");
            chrono::NaiveDate::from_ymd_opt(2026, 1, day).expect("a day").and_time(chrono::NaiveTime::MIN).and_utc()
        });
        let id = format!("N{node}");
        let vars = || Vars { release: release.as_str(), workflow: "W", node: &id, label, deadline: None };
        template.shared(NodeIndex(node), &release, at, vars, |_| deadline.unwrap_or_default().to_owned())
    }

    #[test]
    fn shared_messages_are_the_expansion_of_their_own_inputs() {
        let template = Template::new("{release} {node}: {label} by {deadline}.");
        let a = shared(&template, 1, "2026-11-23", Some("Fri"));
        assert_eq!(&*a, "2026-W48 N1: QA sign-off by Fri.");
        // The same inputs: the same string, shared.
        let again = shared(&template, 1, "2026-11-23", Some("Fri"));
        assert!(Arc::ptr_eq(&a, &again));
        // Any input that differs expands anew.
        assert_eq!(&*shared(&template, 2, "2026-11-23", Some("Fri")), "2026-W48 N2: L by Fri.");
        assert_eq!(&*shared(&template, 1, "2026-11-30", Some("Fri")), "2026-W49 N1: QA sign-off by Fri.");
        assert_eq!(&*shared(&template, 1, "2026-11-23", Some("Friday")), "2026-W48 N1: QA sign-off by Friday.");
        assert_eq!(&*shared(&template, 1, "2026-11-23", None), "2026-W48 N1: QA sign-off by {deadline}.");
        // Another template with the same text is another entry, with the same text.
        let twin = Template::new("{release} {node}: {label} by {deadline}.");
        let b = shared(&twin, 1, "2026-11-23", Some("Fri"));
        assert_eq!(a, b);
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(template, twin);
        // More inputs than the memo holds: still the right text for each.
        for node in 0..6 * MESSAGE_SETS as u16 {
            let label = if node == 1 { "QA sign-off" } else { "L" };
            assert_eq!(
                &*shared(&template, node, "2026-11-23", None),
                format!("2026-W48 N{node}: {label} by {{deadline}}.")
            );
        }
    }

    #[test]
    fn shared_messages_without_names_and_long_ones() {
        let fixed = Template::new("Code freeze is lifted.");
        let a = shared(&fixed, 1, "2026-11-23", None);
        assert!(Arc::ptr_eq(&a, &shared(&fixed, 2, "2026-11-30", None)));
        assert_eq!(&*a, "Code freeze is lifted.");
        // Past the stack buffer, and with text that is not ASCII.
        let long = format!("{}é {{label}} {{release}}", "x".repeat(600));
        let template = Template::new(&long);
        assert_eq!(&*shared(&template, 1, "2026-11-23", None), format!("{}é QA sign-off 2026-W48", "x".repeat(600)));
        let short = Template::new("é{label}ü{release}");
        assert_eq!(&*shared(&short, 1, "2026-11-23", None), "éQA sign-offü2026-W48");
    }
}
