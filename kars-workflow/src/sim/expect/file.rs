//! The expectations file as written: serde types with the place of every value, and the YAML
//! reader with its budgets.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::ExpectError;

/// The expectations file format version.
pub const EXPECT_VERSION: u32 = 1;

/// The largest expectations file kars reads, in bytes.
pub const MAX_EXPECT_BYTES: usize = 256 * 1024;

/// An expectations file as written, before it is checked against a spec.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectFile {
    /// The format version; `1`.
    pub version: Spanned<u32>,
    /// What to simulate: seeds, the first day and the number of weeks per seed.
    pub run: RunFile,
    /// The expectations by name, in the order they are reported.
    pub expect: IndexMap<String, ExpectationFile>,
}

/// The runs an expectations file measures over.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    /// One run per seed; several, so that one lucky seed proves nothing.
    pub seeds: Spanned<Vec<u64>>,
    /// The first day of every run, `YYYY-MM-DD` in the spec's zone.
    pub start: Spanned<String>,
    /// Weeks (cycles) per seed.
    pub weeks: Spanned<u32>,
}

/// One expectation as written: exactly one of the kind keys (`outcome`, `completes`,
/// `deadline_missed`, `from`, `merges_follow_the_windows`, `cycles_end_with_an_outcome`) with
/// its companions.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectationFile {
    /// The share of cycles that end with this outcome (`released`).
    #[serde(default)]
    pub outcome: Option<Spanned<String>>,
    /// With `outcome`: count only cycles that also ran on time.
    #[serde(default)]
    pub on_time: Option<Spanned<bool>>,
    /// The share of cycles in which this node completes by `by`.
    #[serde(default)]
    pub completes: Option<Spanned<String>>,
    /// With `completes`: a time of the cycle's week (`Friday 15:00`, `Monday 10:00 +1w`), in
    /// the spec's zone.
    #[serde(default)]
    pub by: Option<Spanned<String>>,
    /// The share of cycles in which this node's deadline is missed.
    #[serde(default)]
    pub deadline_missed: Option<Spanned<String>>,
    /// The start of a span: a node (its first completion in the cycle), `WINDOW opens`,
    /// `WINDOW closes` or `production` (the cycle's last successful deploy).
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// The end of the span, in the same words as `from`.
    #[serde(default)]
    pub to: Option<Spanned<String>>,
    /// With `from`/`to`: which cycle to bound: `p50`, `p90`, `p95`, `p99` or `max`.
    #[serde(default)]
    pub quantile: Option<Spanned<String>>,
    /// With `from`/`to`: the bound, a duration like `80h` or `3d12h`.
    #[serde(default)]
    pub within: Option<Spanned<String>>,
    /// `true`: every merge a window allows lands and every one it forbids is refused (the
    /// answer of `may()` and the engine's verdict never disagree).
    #[serde(default)]
    pub merges_follow_the_windows: Option<Spanned<bool>>,
    /// `true`: every cycle ends with a recorded outcome.
    #[serde(default)]
    pub cycles_end_with_an_outcome: Option<Spanned<bool>>,
    /// For shares: the least share of cycles, between 0 and 1.
    #[serde(default)]
    pub at_least: Option<Spanned<f64>>,
    /// For shares: the greatest share of cycles, between 0 and 1.
    #[serde(default)]
    pub at_most: Option<Spanned<f64>>,
}

impl ExpectFile {
    /// Parses an expectations file; `origin` names it in errors.
    ///
    /// # Errors
    /// Returns [`ExpectError::Syntax`] with the line and column for YAML errors, unknown keys
    /// and values of the wrong type, and [`ExpectError::TooLarge`] past [`MAX_EXPECT_BYTES`].
    pub fn parse(source: &str, origin: &str) -> Result<ExpectFile, ExpectError> {
        if source.len() > MAX_EXPECT_BYTES {
            return Err(ExpectError::TooLarge { origin: origin.to_owned(), size: source.len() });
        }
        let options = crate::sim::yaml::options();
        serde_saphyr::from_str_with_options(source, options).map_err(|e| syntax_error(&e, origin))
    }
}

/// A YAML or shape error as `file:line:column: message`.
fn syntax_error(error: &serde_saphyr::Error, origin: &str) -> ExpectError {
    let message = crate::sim::yaml::parser_message(error, "expectations files");
    let message = match message.strip_prefix("invalid ") {
        Some("u32" | "u64") => "expected a whole number here".to_owned(),
        Some("f64") => "expected a number here".to_owned(),
        Some("bool") => "expected `true` or `false` here".to_owned(),
        _ => message,
    };
    let (line, column) = crate::sim::yaml::location(error).unwrap_or((0, 0));
    ExpectError::Syntax { origin: origin.to_owned(), line, column, message }
}
