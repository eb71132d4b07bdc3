//! Checking an expectations file against a spec: every node, window, deadline and outcome it
//! names must exist, every expectation must have exactly one kind and the keys that kind takes.

use chrono::NaiveDate;
use kars_spec::calendar::WeekTime;
use kars_spec::spec::{Spec, Then};
use kars_spec::{CheckedSpec, NodeId, WindowId, did_you_mean};
use serde_saphyr::{Location, Spanned};

use super::ExpectError;
use super::file::{EXPECT_VERSION, ExpectFile, ExpectationFile};
use super::kinds::{Expectation, ExpectationKind, Expectations, Point, Quantile, Share};
use crate::sim::hours::parse_minutes;

/// The most seeds a file may name.
pub const MAX_SEEDS: usize = 1000;

/// The most simulated weeks a file may ask for, over all its seeds.
pub const MAX_TOTAL_WEEKS: u64 = 1_000_000;

const KINDS: &str =
    "`outcome`, `completes`, `deadline_missed`, `from`, `merges_follow_the_windows` or `cycles_end_with_an_outcome`";

impl Expectations {
    /// Reads an expectations file and checks it against `spec`.
    ///
    /// # Errors
    /// Returns [`ExpectError`] for YAML and shape errors and for anything the spec does not
    /// have, with the file, line and column.
    pub fn load(spec: &CheckedSpec, source: &str, origin: &str) -> Result<Expectations, ExpectError> {
        let file = ExpectFile::parse(source, origin)?;
        Self::check(spec, &file, origin)
    }

    /// Checks a parsed expectations file against `spec`.
    ///
    /// # Errors
    /// Returns the first [`ExpectError::Invalid`] found.
    pub fn check(spec: &CheckedSpec, file: &ExpectFile, origin: &str) -> Result<Expectations, ExpectError> {
        let c = Checker { spec: spec.spec(), origin };
        if file.version.value != EXPECT_VERSION {
            return Err(c.invalid(
                file.version.referenced,
                "version",
                format!("expectations version {} is not supported", file.version.value),
                Some("write `version: 1`".into()),
            ));
        }
        let run = &file.run;
        if run.seeds.value.is_empty() || run.seeds.value.len() > MAX_SEEDS {
            return Err(c.invalid(
                run.seeds.referenced,
                "run.seeds",
                format!("give between 1 and {MAX_SEEDS} seeds"),
                Some("several seeds, so that one lucky seed proves nothing: `seeds: [1, 2, 3, 4, 5]`".into()),
            ));
        }
        for (i, seed) in run.seeds.value.iter().enumerate() {
            if run.seeds.value[..i].contains(seed) {
                return Err(c.invalid(run.seeds.referenced, "run.seeds", format!("seed {seed} is listed twice"), None));
            }
        }
        let start = NaiveDate::parse_from_str(&run.start.value, "%Y-%m-%d").map_err(|_| {
            c.invalid(
                run.start.referenced,
                "run.start",
                format!("`{}` is not a date", run.start.value),
                Some("write YYYY-MM-DD, like `2026-01-05`".into()),
            )
        })?;
        let total = u64::from(run.weeks.value) * run.seeds.value.len() as u64;
        if run.weeks.value == 0 || total > MAX_TOTAL_WEEKS {
            return Err(c.invalid(
                run.weeks.referenced,
                "run.weeks",
                format!(
                    "{} weeks over {} seeds is not between 1 and {MAX_TOTAL_WEEKS} simulated weeks",
                    run.weeks.value,
                    run.seeds.value.len()
                ),
                None,
            ));
        }
        if file.expect.is_empty() {
            return Err(c.invalid(
                Location::UNKNOWN,
                "expect",
                "the file states no expectation".into(),
                Some(format!("add one under `expect:` with {KINDS}")),
            ));
        }
        let mut items = Vec::with_capacity(file.expect.len());
        for (name, e) in &file.expect {
            items.push(Expectation { name: name.clone(), kind: c.expectation(name, e)? });
        }
        let deploys = super::measure::deploy_nodes(c.spec);
        Ok(Expectations { seeds: run.seeds.value.clone(), start, weeks: run.weeks.value, items, deploys })
    }
}

struct Checker<'a> {
    spec: &'a Spec,
    origin: &'a str,
}

/// The keys an expectation has, with where they are.
fn present(e: &ExpectationFile) -> Vec<(&'static str, Location)> {
    fn at<T>(key: &'static str, v: &Option<Spanned<T>>) -> Option<(&'static str, Location)> {
        v.as_ref().map(|s| (key, s.referenced))
    }
    [
        at("outcome", &e.outcome),
        at("on_time", &e.on_time),
        at("completes", &e.completes),
        at("by", &e.by),
        at("deadline_missed", &e.deadline_missed),
        at("from", &e.from),
        at("to", &e.to),
        at("quantile", &e.quantile),
        at("within", &e.within),
        at("merges_follow_the_windows", &e.merges_follow_the_windows),
        at("cycles_end_with_an_outcome", &e.cycles_end_with_an_outcome),
        at("at_least", &e.at_least),
        at("at_most", &e.at_most),
    ]
    .into_iter()
    .flatten()
    .collect()
}

impl Checker<'_> {
    fn invalid(&self, at: Location, path: &str, message: String, help: Option<String>) -> ExpectError {
        ExpectError::Invalid {
            origin: self.origin.to_owned(),
            line: at.line(),
            column: at.column(),
            path: path.to_owned(),
            message,
            help,
        }
    }

    fn expectation(&self, name: &str, e: &ExpectationFile) -> Result<ExpectationKind, ExpectError> {
        let keys = present(e);
        let kinds = [
            "outcome",
            "completes",
            "deadline_missed",
            "from",
            "merges_follow_the_windows",
            "cycles_end_with_an_outcome",
        ];
        let found: Vec<&(&str, Location)> = keys.iter().filter(|(k, _)| kinds.contains(k)).collect();
        let path = format!("expect.{name}");
        let (kind, at) = match found.as_slice() {
            [one] => **one,
            [] => {
                let at = keys.first().map_or(Location::UNKNOWN, |(_, l)| *l);
                return Err(self.invalid(
                    at,
                    &path,
                    format!("expectation `{name}` does not say what it expects"),
                    Some(format!("give one of {KINDS}")),
                ));
            }
            [_, second, ..] => {
                return Err(self.invalid(
                    second.1,
                    &format!("{path}.{}", second.0),
                    format!("expectation `{name}` states both `{}` and `{}`", found[0].0, second.0),
                    Some("write one expectation per name".into()),
                ));
            }
        };
        let takes: &[&str] = match kind {
            "outcome" => &["outcome", "on_time", "at_least", "at_most"],
            "completes" => &["completes", "by", "at_least", "at_most"],
            "deadline_missed" => &["deadline_missed", "at_least", "at_most"],
            "from" => &["from", "to", "quantile", "within"],
            _ => &[kind],
        };
        if let Some((key, at)) = keys.iter().find(|(k, _)| !takes.contains(k)) {
            return Err(self.invalid(
                *at,
                &format!("{path}.{key}"),
                format!("`{key}` does not go with `{kind}`"),
                Some(format!("an expectation with `{kind}` takes {}", list(takes, "and"))),
            ));
        }
        let missing = |key: &str| {
            self.invalid(
                at,
                &path,
                format!("an expectation with `{kind}` needs `{key}`"),
                Some(format!("it takes {}", list(takes, "and"))),
            )
        };
        Ok(match kind {
            "outcome" => {
                let outcome = e.outcome.as_ref().ok_or_else(|| missing("outcome"))?;
                let outcomes = cycle_outcomes(self.spec);
                if !outcomes.contains(&outcome.value) {
                    let help = match did_you_mean(&outcome.value, outcomes.iter().map(String::as_str)) {
                        Some(close) => {
                            format!("did you mean `{close}`? the spec's cycles end {}", list(&outcomes, "or"))
                        }
                        None => format!("the spec's cycles end {}", list(&outcomes, "or")),
                    };
                    return Err(self.invalid(
                        outcome.referenced,
                        &format!("{path}.outcome"),
                        format!("no cycle of the spec ends `{}`", outcome.value),
                        Some(help),
                    ));
                }
                let on_time = e.on_time.as_ref().is_some_and(|b| b.value);
                ExpectationKind::Outcome { outcome: outcome.value.clone(), on_time, share: self.share(&path, e, at)? }
            }
            "completes" => {
                let node = e.completes.as_ref().ok_or_else(|| missing("completes"))?;
                let node = self.node(node, &format!("{path}.completes"))?;
                let by = e.by.as_ref().ok_or_else(|| missing("by"))?;
                let week_time: WeekTime = by.value.parse().map_err(|err| {
                    self.invalid(
                        by.referenced,
                        &format!("{path}.by"),
                        format!("{err}"),
                        Some("write a time of the cycle's week like `Friday 15:00` or `Monday 10:00 +1w`".into()),
                    )
                })?;
                ExpectationKind::CompletesBy { node, by: week_time, share: self.share(&path, e, at)? }
            }
            "deadline_missed" => {
                let written = e.deadline_missed.as_ref().ok_or_else(|| missing("deadline_missed"))?;
                let node = self.node(written, &format!("{path}.deadline_missed"))?;
                if self.spec.nodes.get(&node).is_some_and(|n| n.deadline.is_none()) {
                    let with: Vec<String> = self
                        .spec
                        .nodes
                        .iter()
                        .filter(|(_, n)| n.deadline.is_some())
                        .map(|(id, _)| id.to_string())
                        .collect();
                    return Err(self.invalid(
                        written.referenced,
                        &format!("{path}.deadline_missed"),
                        format!("node `{node}` has no deadline"),
                        Some(format!("nodes with a deadline: {}", list(&with, "and"))),
                    ));
                }
                ExpectationKind::DeadlineMissed { node, share: self.share(&path, e, at)? }
            }
            "from" => {
                let from = self.point(e.from.as_ref().ok_or_else(|| missing("from"))?, &format!("{path}.from"))?;
                let to = self.point(e.to.as_ref().ok_or_else(|| missing("to"))?, &format!("{path}.to"))?;
                let quantile = match &e.quantile {
                    None => Quantile::Max,
                    Some(q) => parse_quantile(&q.value).ok_or_else(|| {
                        self.invalid(
                            q.referenced,
                            &format!("{path}.quantile"),
                            format!("`{}` is not a quantile", q.value),
                            Some("write `p50`, `p90`, `p95`, `p99` or `max`".into()),
                        )
                    })?,
                };
                let within = e.within.as_ref().ok_or_else(|| missing("within"))?;
                let within_minutes = parse_minutes(&within.value).ok_or_else(|| {
                    self.invalid(
                        within.referenced,
                        &format!("{path}.within"),
                        format!("`{}` is not a duration", within.value),
                        Some("write minutes, hours and days like `90m`, `80h` or `3d12h`, up to 4 weeks".into()),
                    )
                })?;
                ExpectationKind::Span { from, to, quantile, within_minutes }
            }
            "merges_follow_the_windows" => {
                self.must_be_true(e.merges_follow_the_windows.as_ref(), &path, kind)?;
                ExpectationKind::MergesFollowTheWindows
            }
            _ => {
                self.must_be_true(e.cycles_end_with_an_outcome.as_ref(), &path, kind)?;
                ExpectationKind::CyclesEndWithAnOutcome
            }
        })
    }

    fn must_be_true(&self, flag: Option<&Spanned<bool>>, path: &str, kind: &str) -> Result<(), ExpectError> {
        match flag {
            Some(f) if !f.value => Err(self.invalid(
                f.referenced,
                &format!("{path}.{kind}"),
                format!("`{kind}: false` expects nothing"),
                Some(format!("write `{kind}: true`, or remove the expectation")),
            )),
            _ => Ok(()),
        }
    }

    fn share(&self, path: &str, e: &ExpectationFile, at: Location) -> Result<Share, ExpectError> {
        let (share, spanned, key) = match (&e.at_least, &e.at_most) {
            (Some(l), None) => (Share::AtLeast(l.value), l, "at_least"),
            (None, Some(m)) => (Share::AtMost(m.value), m, "at_most"),
            (Some(_), Some(m)) => {
                return Err(self.invalid(
                    m.referenced,
                    &format!("{path}.at_most"),
                    "give `at_least` or `at_most`, not both".into(),
                    Some("state the other bound as a second expectation".into()),
                ));
            }
            (None, None) => {
                return Err(self.invalid(
                    at,
                    path,
                    "a share needs a bound".into(),
                    Some("add `at_least: 0.9` or `at_most: 0.05` (shares of cycles, between 0 and 1)".into()),
                ));
            }
        };
        if !(0.0..=1.0).contains(&spanned.value) {
            return Err(self.invalid(
                spanned.referenced,
                &format!("{path}.{key}"),
                format!("{} is not a share of cycles", spanned.value),
                Some("write a number between 0 and 1: `0.9` is 90% of cycles".into()),
            ));
        }
        Ok(share)
    }

    fn node(&self, written: &Spanned<String>, path: &str) -> Result<NodeId, ExpectError> {
        let known = NodeId::new(&written.value).ok().filter(|id| self.spec.nodes.contains_key(id));
        known.ok_or_else(|| {
            let help = did_you_mean(&written.value, self.spec.nodes.keys().map(NodeId::as_str))
                .map(|c| format!("did you mean `{c}`?"));
            self.invalid(written.referenced, path, format!("the spec has no node `{}`", written.value), help)
        })
    }

    fn point(&self, written: &Spanned<String>, path: &str) -> Result<Point, ExpectError> {
        let text = written.value.trim();
        if text == "production" {
            return Ok(Point::Production);
        }
        let Some((window, edge)) = text.split_once(' ') else {
            return self
                .node(written, path)
                .map_err(|e| match e {
                    ExpectError::Invalid { origin, line, column, path, message, help } => {
                        let more = "a point is a node, `WINDOW opens`, `WINDOW closes` or `production`";
                        let help = Some(help.map_or(more.to_owned(), |h| format!("{h} ({more})")));
                        ExpectError::Invalid { origin, line, column, path, message, help }
                    }
                    other => other,
                })
                .map(Point::Node);
        };
        let id = WindowId::new(window.trim()).ok().filter(|id| self.spec.windows.contains_key(id));
        let Some(id) = id else {
            let windows: Vec<String> = self.spec.windows.keys().map(ToString::to_string).collect();
            let help = match did_you_mean(window.trim(), windows.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `{close}`? the spec has {}", windows_in(&windows)),
                None => format!("the spec has {}", windows_in(&windows)),
            };
            return Err(self.invalid(
                written.referenced,
                path,
                format!("the spec has no window `{}`", window.trim()),
                Some(help),
            ));
        };
        match edge.trim() {
            "opens" => Ok(Point::Opens(id)),
            "closes" => Ok(Point::Closes(id)),
            other => Err(self.invalid(
                written.referenced,
                path,
                format!("`{other}` is not what a window does"),
                Some(format!("write `{id} opens` or `{id} closes`")),
            )),
        }
    }
}

fn parse_quantile(text: &str) -> Option<Quantile> {
    if text == "max" {
        return Some(Quantile::Max);
    }
    let p: u8 = text.strip_prefix('p')?.parse().ok()?;
    (1..=99).contains(&p).then_some(Quantile::Percentile(p))
}

/// The outcomes a cycle of `spec` can end with: nodes' `outcome`, and escalations that end it.
pub(crate) fn cycle_outcomes(spec: &Spec) -> Vec<String> {
    let mut outcomes: Vec<String> = Vec::new();
    let mut add = |o: &str| {
        if !outcomes.iter().any(|x| x == o) {
            outcomes.push(o.to_owned());
        }
    };
    for node in spec.nodes.values() {
        if let Some(o) = &node.outcome {
            add(o);
        }
        let escalations = node.retry.iter().map(|r| &r.on_exhausted).chain(node.deadline.iter().map(|d| &d.escalate));
        for escalation in escalations {
            if let Some(Then::End(o)) = &escalation.then {
                add(o);
            }
        }
    }
    outcomes
}

/// Names in backticks, the last joined with `conjunction` (`and`, `or`).
fn list<S: AsRef<str>>(names: &[S], conjunction: &str) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{}`", n.as_ref())).collect();
    match quoted.as_slice() {
        [] => "(none)".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

/// `the window `a``, `the windows `a` and `b``, `no windows`.
fn windows_in(windows: &[String]) -> String {
    match windows.len() {
        0 => "no windows".to_owned(),
        1 => format!("the window {}", list(windows, "and")),
        _ => format!("the windows {}", list(windows, "and")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kars() -> CheckedSpec {
        kars_spec::load(include_str!("../../../../workflows/kars-release.yaml"), "kars-release.yaml").unwrap()
    }

    /// The module's documented example is a valid file for the bundled spec.
    #[test]
    fn the_documented_example_checks() {
        let doc = include_str!("mod.rs");
        let yaml: String = doc
            .split("//! ```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("//! ```").next())
            .unwrap()
            .lines()
            .map(|l| format!("{}\n", l.strip_prefix("//! ").unwrap_or("")))
            .collect();
        let checked = Expectations::load(&kars(), &yaml, "doc").unwrap();
        assert_eq!(checked.items.len(), 6);
        assert_eq!(checked.seeds.len(), 10);
    }

    #[test]
    fn cycle_outcomes_come_from_nodes_and_escalations() {
        assert_eq!(cycle_outcomes(kars().spec()), ["slipped", "incident", "released"]);
    }
}
