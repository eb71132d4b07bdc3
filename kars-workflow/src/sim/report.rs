//! What a simulation tells: timeline entries as they happen, a report per week, and a summary.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use kars_spec::{NodeId, RoleId};
use serde::Serialize;

use crate::effect::{Effect, ReleaseId};

/// What a timeline entry reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntryKind {
    /// A cycle (week) started.
    CycleStarted,
    /// The token entered a node.
    Entered,
    /// A gate was armed; `detail` holds its local opening time.
    GateArmed,
    /// A gate opened.
    GateOpened,
    /// A node completed (with the actor, role and outcome for people's work).
    Completed,
    /// The host reported an action's result (`outcome`).
    Result,
    /// A deadline passed with its node not complete; its escalation ran.
    DeadlineMissed,
    /// A retry loop used up its attempts.
    RetryExhausted,
    /// A window opened (`detail` names it).
    WindowOpened,
    /// A window closed (`detail` names it).
    WindowClosed,
    /// The engine emitted an effect.
    Effect,
    /// The engine refused an input (`detail` says why).
    Refused,
    /// A merge from the team's merge bot landed (`detail`: `source -> target`).
    Merged,
    /// A merge waits for the forge: reviews or named checks its spec `requires:` have not
    /// come in yet (`detail` says which).
    Delayed,
    /// A cycle ended (`outcome`).
    CycleEnded,
}

/// One step of a simulation, borrowed for the observer's call.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The week's release id.
    pub release: &'a ReleaseId,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EntryKind,
    /// The node, if one is concerned.
    pub node: Option<&'a NodeId>,
    /// Who acted.
    pub actor: Option<&'a str>,
    /// In which role.
    pub role: Option<&'a RoleId>,
    /// The outcome, branch label or cycle outcome.
    pub outcome: Option<&'a str>,
    /// The effect, for [`EntryKind::Effect`].
    pub effect: Option<&'a Effect>,
    /// More detail: a refusal's reason, a window's id, a gate's local time.
    pub detail: Option<&'a str>,
}

impl<'a> Entry<'a> {
    /// An entry with only a release and an instant.
    #[must_use]
    pub fn empty(release: &'a ReleaseId, at: DateTime<Utc>) -> Self {
        Entry {
            release,
            at,
            kind: EntryKind::Entered,
            node: None,
            actor: None,
            role: None,
            outcome: None,
            effect: None,
            detail: None,
        }
    }

    /// The entry as one JSON object: `week`, `node`, `kind`, `at` (RFC 3339 UTC), `local` (RFC
    /// 3339 with the zone's offset), and `actor`, `role`, `outcome`, `effect`, `detail` where
    /// they apply.
    #[must_use]
    pub fn to_json(&self, zone: Tz) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("week".into(), self.release.as_str().into());
        if let Some(node) = self.node {
            map.insert("node".into(), node.as_str().into());
        }
        map.insert("kind".into(), serde_json::to_value(self.kind).unwrap_or_default());
        map.insert("at".into(), self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into());
        map.insert(
            "local".into(),
            self.at.with_timezone(&zone).to_rfc3339_opts(chrono::SecondsFormat::Secs, false).into(),
        );
        if let Some(actor) = self.actor {
            map.insert("actor".into(), actor.into());
        }
        if let Some(role) = self.role {
            map.insert("role".into(), role.as_str().into());
        }
        if let Some(outcome) = self.outcome {
            map.insert("outcome".into(), outcome.into());
        }
        if let Some(effect) = self.effect {
            map.insert("effect".into(), serde_json::to_value(effect).unwrap_or_default());
        }
        if let Some(detail) = self.detail {
            map.insert("detail".into(), detail.into());
        }
        serde_json::Value::Object(map)
    }
}

/// Receives every timeline entry of a simulation as it happens.
pub trait Observer {
    /// One entry.
    fn entry(&mut self, entry: &Entry<'_>);

    /// Whether the observer reads entries at all; when `false`, the simulator skips building
    /// them (the run and its reports are the same either way).
    fn wants_entries(&self) -> bool {
        true
    }

    /// Whether the run should stop now, with [`super::SimError::Stopped`]: checked between
    /// steps, so that a command whose output has gone (`kars simulate … | head -1`) stops at
    /// once instead of simulating every remaining week.
    fn stop(&self) -> bool {
        false
    }
}

/// Ignores the timeline (for benchmarks and summaries).
impl Observer for () {
    fn entry(&mut self, _: &Entry<'_>) {}

    fn wants_entries(&self) -> bool {
        false
    }
}

impl<F: FnMut(&Entry<'_>)> Observer for F {
    fn entry(&mut self, entry: &Entry<'_>) {
        self(entry);
    }
}

/// How one simulated week went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeekReport {
    /// The release id (`2026-W48`).
    pub release: ReleaseId,
    /// How the week ended (`released`, `slipped`, `incident`).
    pub outcome: String,
    /// When the cycle started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: DateTime<Utc>,
    /// The cycle ran its course: it ended through an edge back to the start (for KARS,
    /// `released`), not at an `end` node or through an escalation.
    pub completed: bool,
    /// Completed with no deadline missed, and finished on the day of its last gate (for KARS:
    /// deployed and the freeze lifted on the Monday it was planned for).
    pub on_time: bool,
    /// Deadlines missed.
    pub deadline_misses: u16,
    /// Entries into retry-bounded nodes (fix rounds).
    pub retry_rounds: u16,
    /// From the first window opened by a node (the code freeze) to the last successful deploy.
    #[serde(serialize_with = "minutes_opt")]
    pub freeze_to_production: Option<Duration>,
    /// Time the token waited at gates.
    #[serde(serialize_with = "minutes")]
    pub gate_wait: Duration,
    /// Gates the token reached after they had opened.
    pub gates_late: u16,
    /// Inputs the engine refused (unauthorized tries, window refusals, merges).
    pub refused: u16,
    /// Merges the merge bot attempted.
    pub merges: u16,
    /// Of those, refused by a window.
    pub merges_refused: u16,
    /// Merges (the bot's, and merge actions) refused because the pull request missed what
    /// the merge `requires:` (an approval, a role's approval, a named check).
    #[serde(skip_serializing_if = "is_zero")]
    pub merges_unmet: u16,
    /// Merges that waited for reviews or named checks on the forge.
    #[serde(skip_serializing_if = "is_zero")]
    pub merges_delayed: u16,
    /// Merges where the window's answer (`may()`) and the engine's verdict disagreed (0 unless
    /// the engine is broken; see [`crate::sim::SimRun::policy_disagreements`]).
    pub policy_disagreements: u16,
}

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

fn minutes<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(d.num_minutes())
}

fn minutes_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.num_minutes()),
        None => s.serialize_none(),
    }
}

fn hours(d: Duration) -> f64 {
    d.num_minutes() as f64 / 60.0
}

impl WeekReport {
    /// The week as one line of a story, with local times in `zone`, the outcome padded to
    /// nine characters.
    #[must_use]
    pub fn story(&self, zone: Tz) -> String {
        self.story_padded(zone, 9)
    }

    /// [`Self::story`] with the outcome padded to `width` characters: the longest outcome of
    /// the weeks shown, so that the columns after it line up.
    #[must_use]
    pub fn story_padded(&self, zone: Tz, width: usize) -> String {
        let local = |t: DateTime<Utc>| t.with_timezone(&zone).format("%a %d %b %H:%M").to_string();
        let mut line = format!("{}  {:<width$}", self.release, self.outcome);
        line.push_str(if self.on_time {
            " on time "
        } else if self.completed {
            " late    "
        } else {
            "         "
        });
        line.push_str(&format!(" {} → {}", local(self.started_at), local(self.ended_at)));
        if let Some(d) = self.freeze_to_production {
            line.push_str(&format!("  freeze→prod {:.1} h", hours(d)));
        }
        if self.retry_rounds > 0 {
            line.push_str(&format!("  fix rounds {}", self.retry_rounds));
        }
        if self.deadline_misses > 0 {
            line.push_str(&format!("  deadline missed ×{}", self.deadline_misses));
        }
        if self.refused > 0 {
            line.push_str(&format!("  refused {}", self.refused));
        }
        if self.merges_unmet > 0 {
            line.push_str(&format!("  merges lacking requirements {}", self.merges_unmet));
        }
        if self.merges_delayed > 0 {
            line.push_str(&format!("  merges waiting on the forge {}", self.merges_delayed));
        }
        line
    }
}

/// Minimum, mean and maximum of a measure, in hours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    /// How many values.
    pub count: u32,
    /// The smallest.
    pub min: f64,
    /// The mean.
    pub mean: f64,
    /// The largest.
    pub max: f64,
}

impl Stats {
    fn of(values: impl Iterator<Item = f64>) -> Option<Stats> {
        let mut stats = Stats { count: 0, min: f64::INFINITY, mean: 0.0, max: f64::NEG_INFINITY };
        let mut sum = 0.0;
        for v in values {
            stats.count += 1;
            sum += v;
            stats.min = stats.min.min(v);
            stats.max = stats.max.max(v);
        }
        (stats.count > 0).then(|| Stats { mean: sum / f64::from(stats.count), ..stats })
    }
}

fn is_weekly(weeks: &u8) -> bool {
    *weeks <= 1
}

/// What a whole simulation comes to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Cycles simulated (weeks, for a weekly cadence).
    pub weeks: u32,
    /// How many weeks a cycle spans (the spec's cadence; 1 unless set).
    #[serde(skip_serializing_if = "is_weekly")]
    pub cycle_weeks: u8,
    /// The first week's release id.
    pub first: Option<ReleaseId>,
    /// The last week's release id.
    pub last: Option<ReleaseId>,
    /// Weeks per outcome (`released`, `slipped`, `incident`).
    pub outcomes: BTreeMap<String, u32>,
    /// Weeks that ran their course on time (see [`WeekReport::on_time`]).
    pub on_time: u32,
    /// Weeks that missed a deadline.
    pub weeks_missing_a_deadline: u32,
    /// Weeks per number of fix rounds.
    pub retry_rounds: BTreeMap<u16, u32>,
    /// Hours from the code freeze to production, over the weeks that reached production.
    pub freeze_to_production_hours: Option<Stats>,
    /// Hours per week the token waited at gates.
    pub gate_wait_hours: Option<Stats>,
    /// Gates reached after they had opened.
    pub gates_late: u32,
    /// Inputs the engine refused.
    pub refused: u32,
    /// Merges attempted by the merge bot.
    pub merges: u32,
    /// Merges refused by a window.
    pub merges_refused: u32,
    /// Merges refused because the pull request missed what the merge `requires:`.
    #[serde(skip_serializing_if = "is_zero")]
    pub merges_unmet: u32,
    /// Merges that waited for reviews or named checks on the forge.
    #[serde(skip_serializing_if = "is_zero")]
    pub merges_delayed: u32,
}

impl Summary {
    /// Sums up week reports.
    #[must_use]
    pub fn of(weeks: &[WeekReport]) -> Summary {
        let mut outcomes = BTreeMap::new();
        let mut retry_rounds = BTreeMap::new();
        for w in weeks {
            *outcomes.entry(w.outcome.clone()).or_insert(0) += 1;
            *retry_rounds.entry(w.retry_rounds).or_insert(0) += 1;
        }
        let count = |f: &dyn Fn(&WeekReport) -> bool| weeks.iter().filter(|w| f(w)).count() as u32;
        let sum = |f: &dyn Fn(&WeekReport) -> u16| weeks.iter().map(|w| u32::from(f(w))).sum::<u32>();
        Summary {
            cycle_weeks: 1,
            weeks: weeks.len() as u32,
            first: weeks.first().map(|w| w.release.clone()),
            last: weeks.last().map(|w| w.release.clone()),
            outcomes,
            on_time: count(&|w| w.on_time),
            weeks_missing_a_deadline: count(&|w| w.deadline_misses > 0),
            retry_rounds,
            freeze_to_production_hours: Stats::of(weeks.iter().filter_map(|w| w.freeze_to_production).map(hours)),
            gate_wait_hours: Stats::of(weeks.iter().map(|w| hours(w.gate_wait))),
            gates_late: sum(&|w| w.gates_late),
            refused: sum(&|w| w.refused),
            merges: sum(&|w| w.merges),
            merges_refused: sum(&|w| w.merges_refused),
            merges_unmet: sum(&|w| w.merges_unmet),
            merges_delayed: sum(&|w| w.merges_delayed),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |n: u32| if self.weeks == 0 { 0.0 } else { 100.0 * f64::from(n) / f64::from(self.weeks) };
        let span = match (&self.first, &self.last) {
            (Some(a), Some(b)) => format!(" ({a} to {b})"),
            _ => String::new(),
        };
        if self.cycle_weeks > 1 {
            writeln!(f, "summary of {} cycles of {} weeks{span}", self.weeks, self.cycle_weeks)?;
        } else {
            writeln!(f, "summary of {} weeks{span}", self.weeks)?;
        }
        for (outcome, n) in &self.outcomes {
            writeln!(f, "  {:<28} {:>6}  {:>5.1}%", outcome, n, pct(*n))?;
        }
        writeln!(f, "  {:<28} {:>6}  {:>5.1}%", "on time", self.on_time, pct(self.on_time))?;
        writeln!(
            f,
            "  {:<28} {:>6}  {:>5.1}%",
            "weeks missing a deadline",
            self.weeks_missing_a_deadline,
            pct(self.weeks_missing_a_deadline)
        )?;
        let rounds: Vec<String> = self.retry_rounds.iter().map(|(r, n)| format!("{r}: {n}")).collect();
        writeln!(f, "  {:<28} {}", "fix rounds (rounds: weeks)", rounds.join(", "))?;
        if let Some(s) = self.freeze_to_production_hours {
            writeln!(
                f,
                "  {:<28} min {:.1} h, mean {:.1} h, max {:.1} h",
                "freeze to production", s.min, s.mean, s.max
            )?;
        }
        if let Some(s) = self.gate_wait_hours {
            writeln!(
                f,
                "  {:<28} min {:.1} h, mean {:.1} h, max {:.1} h",
                "gate waits per week", s.min, s.mean, s.max
            )?;
        }
        writeln!(f, "  {:<28} {:>6}", "gates open before arrival", self.gates_late)?;
        writeln!(f, "  {:<28} {:>6}", "refused actions", self.refused)?;
        write!(f, "  {:<28} {:>6}  (refused by a window: {})", "merge attempts", self.merges, self.merges_refused)?;
        if self.merges_unmet > 0 || self.merges_delayed > 0 {
            write!(
                f,
                "\n  {:<28} {:>6}  (waited for reviews or checks: {})",
                "merges lacking requirements", self.merges_unmet, self.merges_delayed
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week(outcome: &str, on_time: bool) -> WeekReport {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        WeekReport {
            release: ReleaseId::of(chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()),
            outcome: outcome.to_owned(),
            started_at: at("2026-11-22T13:00:00Z"),
            ended_at: at("2026-11-25T23:06:00Z"),
            completed: on_time,
            on_time,
            deadline_misses: 0,
            retry_rounds: 0,
            freeze_to_production: None,
            gate_wait: Duration::zero(),
            gates_late: 0,
            refused: 0,
            merges: 0,
            merges_refused: 0,
            policy_disagreements: 0,
            merges_unmet: 0,
            merges_delayed: 0,
        }
    }

    #[test]
    fn padded_stories_line_up_after_an_outcome_longer_than_nine() {
        let zone: Tz = "Australia/Sydney".parse().unwrap();
        let (short, long) = (week("shipped", true), week("rolled_back", false));
        let lines = [short.story_padded(zone, 11), long.story_padded(zone, 11)];
        let column = |line: &str| line.find('→').unwrap();
        assert_eq!(column(&lines[0]), column(&lines[1]), "{lines:#?}");
        assert_eq!(lines[0], "2026-W48  shipped     on time  Mon 23 Nov 00:00 → Thu 26 Nov 10:06");
        // The default pads to nine, as before.
        assert_eq!(short.story(zone), short.story_padded(zone, 9));
    }
}
