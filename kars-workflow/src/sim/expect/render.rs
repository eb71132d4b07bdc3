//! Expectation results in words: what was measured, against which bound, with what margin.

use std::fmt;

use super::kinds::{ExpectationKind, Share};
use super::measure::{ExpectResult, Measured};

fn percent(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn hours(minutes: i64) -> String {
    format!("{:.1} h", minutes as f64 / 60.0)
}

impl fmt::Display for ExpectResult {
    /// One line: `what was measured; the bound (margin)`. A positive margin is room to spare,
    /// a negative one how far the runs fell short.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = match &self.kind {
            ExpectationKind::Outcome { outcome, on_time: true, .. } => format!("cycles end `{outcome}` on time"),
            ExpectationKind::Outcome { outcome, .. } => format!("cycles end `{outcome}`"),
            ExpectationKind::CompletesBy { node, by, .. } => format!("`{node}` completes by {by}"),
            ExpectationKind::DeadlineMissed { node, .. } => format!("the deadline of `{node}` is missed"),
            ExpectationKind::Span { from, to, quantile, .. } => format!("{quantile} from {from} to {to}"),
            ExpectationKind::MergesFollowTheWindows => "merges where `may()` and the engine disagree".to_owned(),
            ExpectationKind::CyclesEndWithAnOutcome => "cycles without a recorded outcome".to_owned(),
        };
        match (&self.kind, self.measured) {
            (
                ExpectationKind::Outcome { share, .. }
                | ExpectationKind::CompletesBy { share, .. }
                | ExpectationKind::DeadlineMissed { share, .. },
                Measured::Share { hits, cycles },
            ) => {
                let value = if cycles == 0 { 0.0 } else { f64::from(hits) / f64::from(cycles) };
                let (word, bound, margin) = match *share {
                    Share::AtLeast(b) => ("at least", b, value - b),
                    Share::AtMost(b) => ("at most", b, b - value),
                };
                write!(
                    f,
                    "{subject} in {} of {cycles} cycles; expected {word} {} (margin {:+.1} points)",
                    percent(value),
                    percent(bound),
                    100.0 * margin
                )
            }
            (ExpectationKind::Span { within_minutes, .. }, Measured::Span { minutes, cycles }) => {
                let limit = i64::from(*within_minutes);
                match minutes {
                    Some(m) => write!(
                        f,
                        "{subject}: {} over {cycles} cycles; expected within {} (margin {}{})",
                        hours(m),
                        hours(limit),
                        if limit >= m { "+" } else { "-" },
                        hours((limit - m).abs())
                    ),
                    None => write!(f, "{subject}: no cycle reached both points; expected within {}", hours(limit)),
                }
            }
            (_, Measured::Count { count, of }) => {
                let unit =
                    if matches!(self.kind, ExpectationKind::MergesFollowTheWindows) { "merges" } else { "cycles" };
                write!(f, "{subject}: {count} of {of} {unit}; expected 0")
            }
            (_, measured) => {
                debug_assert!(false, "{measured:?} is measured for another kind of expectation");
                write!(f, "{subject}")
            }
        }
    }
}
