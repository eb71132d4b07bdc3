//! How a [`State`] reads and writes: each table on its own, in the field order the engine has
//! always written (the two blocks the state keeps its tables in are its own business, and
//! snapshots and journals written before them read back unchanged).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Branches, CycleSummary, DeadlineSlot, Stamp, State, Token, Upgrades};

/// A state's tables as snapshots hold them, one list each.
pub(crate) struct Tables {
    pub(crate) nodes: Vec<u16>,
    pub(crate) outcomes: Vec<u16>,
    pub(crate) deadlines: Vec<DeadlineSlot>,
    pub(crate) watched: Vec<Option<DateTime<Utc>>>,
    pub(crate) calendar: Vec<DateTime<Utc>>,
}

/// A state as written, borrowed.
#[derive(Serialize)]
struct Out<'a> {
    token: Token,
    clock: DateTime<Utc>,
    calendar_next: Option<DateTime<Utc>>,
    open_windows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    branches: Option<&'a Branches>,
    nodes: &'a [u16],
    outcomes: &'a [u16],
    #[serde(serialize_with = "actors")]
    actors: &'a [Option<Arc<str>>],
    #[serde(serialize_with = "watched")]
    watched: &'a [Stamp],
    #[serde(serialize_with = "deadlines")]
    deadlines: &'a [Stamp],
    exhausted: u64,
    monday: NaiveDate,
    cycle: u32,
    misses: u16,
    retry_rounds: u16,
    cycle_started: DateTime<Utc>,
    #[serde(serialize_with = "calendar")]
    calendar: &'a [Stamp],
    finished: &'a [CycleSummary],
    #[serde(skip_serializing_if = "Option::is_none")]
    upgrades: Option<&'a Upgrades>,
}

/// A state as read.
#[derive(Deserialize)]
struct In {
    token: Token,
    clock: DateTime<Utc>,
    calendar_next: Option<DateTime<Utc>>,
    open_windows: u64,
    #[serde(default)]
    branches: Option<Box<Branches>>,
    nodes: Vec<u16>,
    outcomes: Vec<u16>,
    #[serde(with = "crate::shared::opt_arc_str_slots")]
    actors: crate::shared::StrSlots,
    watched: Vec<Option<DateTime<Utc>>>,
    deadlines: Vec<DeadlineSlot>,
    exhausted: u64,
    monday: NaiveDate,
    cycle: u32,
    misses: u16,
    retry_rounds: u16,
    cycle_started: DateTime<Utc>,
    calendar: Vec<DateTime<Utc>>,
    finished: Vec<CycleSummary>,
    #[serde(default)]
    upgrades: Option<Box<Upgrades>>,
}

fn actors<S: Serializer>(value: &[Option<Arc<str>>], serializer: S) -> Result<S::Ok, S::Error> {
    crate::shared::opt_arc_str_slots::serialize(value, serializer)
}

fn watched<S: Serializer>(value: &[Stamp], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(value.iter().map(|s| s.get()))
}

fn deadlines<S: Serializer>(value: &[Stamp], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(value.iter().map(|s| DeadlineSlot { at: s.at, fired: s.set }))
}

fn calendar<S: Serializer>(value: &[Stamp], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(value.iter().map(|s| s.at))
}

impl Serialize for State {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Out {
            token: self.token,
            clock: self.clock,
            calendar_next: self.calendar_next,
            open_windows: self.open_windows,
            branches: self.branches.as_deref(),
            nodes: self.nodes(),
            outcomes: self.outcomes(),
            actors: &self.actors,
            watched: self.watched(),
            deadlines: self.deadlines(),
            exhausted: self.exhausted,
            monday: self.monday,
            cycle: self.cycle,
            misses: self.misses,
            retry_rounds: self.retry_rounds,
            cycle_started: self.cycle_started,
            calendar: self.calendar(),
            finished: &self.finished,
            upgrades: self.upgrades.as_deref(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let w = In::deserialize(deserializer)?;
        let state = State {
            token: w.token,
            clock: w.clock,
            calendar_next: w.calendar_next,
            open_windows: w.open_windows,
            branches: w.branches,
            counts: Box::default(),
            stamps: Box::default(),
            split: super::Split { nodes: 0, deadlines: 0, watched: 0 },
            actors: w.actors,
            exhausted: w.exhausted,
            monday: w.monday,
            cycle: w.cycle,
            misses: w.misses,
            retry_rounds: w.retry_rounds,
            cycle_started: w.cycle_started,
            finished: w.finished,
            upgrades: w.upgrades,
        };
        Ok(state.with_tables(Tables {
            nodes: w.nodes,
            outcomes: w.outcomes,
            deadlines: w.deadlines,
            watched: w.watched,
            calendar: w.calendar,
        }))
    }
}
