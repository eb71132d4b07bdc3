//! How a [`History`] holds its records: one compact slot per record, with the actors and
//! outcome words that events repeat interned once per history and the resolved instants of
//! every record in one buffer. A record is rebuilt ([`Record`]) when it is read.
//!
//! An accepted start, timeout, completion or action result at a node whose id is seven bytes
//! or fewer (every record of a clean week) takes one 40-byte slot of plain data and no
//! allocation of its own; anything else (a refused input, a merge, an upgrade, a longer node
//! id, a table past `u32::MAX` entries) is kept whole in a side table the slot points into.

use std::ops::Range;

use chrono::{DateTime, Utc};
use kars_spec::{NodeId, PackedId};

use super::{HistoryHeader, Input, Record, Resolved, Verdict};
use crate::effect::EffectKey;
use crate::event::{ActionOutcome, Event, Reporter};

mod names;
#[cfg(test)]
mod tests;
mod wire;

pub use wire::Records;

/// A history: the header and the records held, in order.
///
/// A whole history starts at record 0. A host that persisted the older records (the driver's
/// journal) may release them with [`crate::Instance::release_history`]; the history then holds
/// only the records from [`History::first_seq`] on, and replay needs the whole history read
/// back from the store.
///
/// Records are read by value ([`History::records`], [`History::record`], [`History::since`]):
/// the history keeps them compact and rebuilds each one it is asked for. Its JSON is the
/// header, `first_seq` (when not 0) and the records in order.
#[derive(Clone)]
// The header and the sequence number (read when a cycle starts and by queries) before the
// tables every input appends to, as laid out (see `State`).
#[repr(C)]
pub struct History {
    /// Who and what.
    pub header: HistoryHeader,
    first_seq: u64,
    slots: Vec<Slot>,
    /// The resolved instants of every compact slot, in record order, then those of the input
    /// being handled (the engine resolves into the tail; [`History::push`] takes them).
    resolved: Vec<Resolved>,
    /// The actors and outcome words the compact slots name, each once (an entry is one or
    /// the other, `names::Name`).
    names: Vec<names::Name>,
    /// The records kept whole, in record order: [`Held::Whole`] `i` is the `i`th of them.
    wholes: Vec<Whole>,
}

/// Why records do not make a history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "history record {position} has sequence number {found}, expected {expected}\n\
     help: a history's records are numbered in order without gaps, from its `first_seq`"
)]
pub struct HistoryError {
    /// The record's position among those given, from 0.
    pub position: usize,
    /// The sequence number it should have.
    pub expected: u64,
    /// The one it has.
    pub found: u64,
}

/// One record, compact: plain data (no drop glue), so the history's records are dropped,
/// released or moved without being walked.
#[derive(Clone, Copy)]
struct Slot {
    input: Held,
    at: DateTime<Utc>,
    /// Where the record's resolved instants end in `History::resolved`: they start where the
    /// previous slot's end (at 0 for the first). A [`Held::Whole`] keeps its own, so its end
    /// is its start.
    end: u32,
}

/// No interned word or actor.
const NONE: u32 = u32::MAX;

/// How many of the most recent names a new record looks among for its own.
const SCAN: usize = 64;

/// A record's input and verdict, compact: the common inputs (accepted, at a node whose id
/// packs into eight bytes) by index into the history's tables, anything else whole.
#[derive(Clone, Copy)]
enum Held {
    /// The accepted start.
    Start,
    /// An accepted timeout.
    Timeout,
    /// An accepted [`Event::Complete`]; `outcome` is [`NONE`] when there was none.
    Complete { node: PackedId<NodeId>, actor: u32, outcome: u32 },
    /// An accepted [`Event::ActionResult`] reported by the actor `person`, or unrecorded
    /// ([`NONE`]).
    Action { node: PackedId<NodeId>, outcome: ActionOutcome, person: u32 },
    /// An accepted [`Event::ActionResult`] reported with the key of the node's current visit,
    /// `{instance}/{release}/{node}/{visit}`: the engine accepts no other key, and the
    /// instance is the history's and the node the record's, so the rest is kept (any other
    /// key keeps its record whole).
    Keyed { node: PackedId<NodeId>, outcome: ActionOutcome, release: [u8; 8], visit: u16 },
    /// The record at this position of `History::wholes`.
    Whole(u32),
}

/// A record kept as it came.
#[derive(Clone)]
struct Whole {
    input: Input,
    verdict: Verdict,
    resolved: Box<[Resolved]>,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Slot>() <= 40, "a compact record fits in 40 bytes");

/// What an accepted verdict reads as.
static ACCEPTED: Verdict = Verdict::Accepted;

impl History {
    /// An empty whole history.
    #[must_use]
    pub fn new(header: HistoryHeader) -> Self {
        Self::starting_at(header, 0)
    }

    /// An empty history whose next record gets sequence number `first_seq`.
    fn starting_at(header: HistoryHeader, first_seq: u64) -> Self {
        Self { header, first_seq, slots: Vec::new(), resolved: Vec::new(), names: Vec::new(), wholes: Vec::new() }
    }

    /// A history of `records`, the first with sequence number `first_seq` (0 for a whole
    /// history) and each next one more.
    ///
    /// # Errors
    /// [`HistoryError`] when a record's `seq` is out of that order.
    pub fn from_records(
        header: HistoryHeader,
        first_seq: u64,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Self, HistoryError> {
        let mut history = Self::starting_at(header, first_seq);
        for (position, record) in records.into_iter().enumerate() {
            // Past `u64::MAX` no number is right (a forged history, not a long one).
            let expected = first_seq.checked_add(position as u64);
            if expected != Some(record.seq) {
                return Err(HistoryError { position, expected: expected.unwrap_or(u64::MAX), found: record.seq });
            }
            history.resolved.extend(Vec::from(record.resolved));
            history.push(record.at, record.input, record.verdict);
        }
        Ok(history)
    }

    /// The sequence number of the first record held (of the next record when none is held):
    /// 0 for a whole history, more once older records were released.
    #[must_use]
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The sequence number the next record gets: how many inputs the instance has recorded,
    /// held or released.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.first_seq.saturating_add(self.slots.len() as u64)
    }

    /// Whether the history holds every record from 0 on (nothing was released).
    #[must_use]
    pub fn is_whole(&self) -> bool {
        self.first_seq == 0
    }

    /// How many records are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no record is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The records held, in order.
    #[must_use]
    pub fn records(&self) -> Records<'_> {
        Records { history: self, range: 0..self.slots.len() }
    }

    /// The held record with sequence number `seq`, if it is held.
    #[must_use]
    pub fn record(&self, seq: u64) -> Option<Record> {
        let i = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        self.rebuild(i)
    }

    /// The last record held.
    #[must_use]
    pub fn last(&self) -> Option<Record> {
        self.rebuild(self.slots.len().checked_sub(1)?)
    }

    /// The held records with a sequence number at or after `seq` (for a journal that appends).
    /// Records before [`History::first_seq`] were released and are not returned: with `seq`
    /// below it, the result starts at `first_seq`; at or past [`History::next_seq`] it is empty.
    #[must_use]
    pub fn since(&self, seq: u64) -> Records<'_> {
        let offset = seq.saturating_sub(self.first_seq);
        let from = usize::try_from(offset).unwrap_or(usize::MAX).min(self.slots.len());
        Records { history: self, range: from..self.slots.len() }
    }

    /// Notes an instant or date resolved while handling the input being handled; the next
    /// [`History::push`] records it with that input. Inlined, so that the value is written
    /// once, into its place: passed to a call, it was written in 4-byte parts and read back
    /// in 16-byte ones, which the processor cannot forward from its stores.
    #[inline(always)]
    pub(crate) fn resolve(&mut self, resolved: Resolved) {
        if self.resolved.len() == self.resolved.capacity() {
            grow(&mut self.resolved, 8, 16);
        }
        self.resolved.push(resolved);
    }

    /// Where the resolved instants of the input being handled start.
    fn pending(&self) -> usize {
        self.slots.last().map_or(0, |s| s.end as usize)
    }

    /// Where the resolved instants of the held record at position `i` lie in `resolved`.
    fn span(&self, i: usize) -> Range<usize> {
        let start = match i.checked_sub(1) {
            Some(before) => self.slots.get(before).map_or(0, |s| s.end as usize),
            None => 0,
        };
        start..self.slots.get(i).map_or(start, |s| s.end as usize)
    }

    /// Appends a record: `input` at `at` with `verdict`, and the instants resolved since the
    /// last record ([`History::resolve`]).
    ///
    /// Kept out of line: the instance's accepted events call [`History::push_keyed`], which is
    /// inlined there; this one copy serves every other record.
    #[inline(never)]
    pub(crate) fn push(&mut self, at: DateTime<Utc>, input: Input, verdict: Verdict) {
        self.push_keyed(at, input, verdict, None);
    }

    /// [`History::push`] of an accepted action result whose effect key the instance knows to
    /// be this history's instance's, for the record's node, with `key`'s release and visit
    /// (checked against the key in debug builds): kept without reading the key back. Inlined
    /// into the instance's accepted-event path, so that the event is matched where it lies
    /// instead of moved into an `Input` in memory and read back in other-sized parts.
    #[inline(always)]
    pub(crate) fn push_keyed(
        &mut self,
        at: DateTime<Utc>,
        input: Input,
        verdict: Verdict,
        key: Option<([u8; 8], u16)>,
    ) {
        // Past `u32::MAX` resolved instants (hundreds of gigabytes), records are kept whole.
        let Ok(end) = u32::try_from(self.resolved.len()) else {
            return self.push_whole(at, input, verdict);
        };
        let accepted = matches!(verdict, Verdict::Accepted);
        debug_assert!(
            key.is_none_or(|(release, visit)| matches!(&input, Input::Event(Event::ActionResult { node, reporter: Reporter::Effect { key }, .. })
                if accepted && key.visit_of(self.header.instance.as_str(), node.as_str()).is_some_and(|(r, v)| r.as_bytes() == release && v == visit))),
            "the key the instance knows is the key the result carried"
        );
        let input = match input {
            Input::Start if accepted => Held::Start,
            Input::Timeout if accepted => Held::Timeout,
            Input::Event(Event::Complete { node, actor, outcome }) if accepted => {
                match (node.packed(), self.word_index(outcome.as_deref())) {
                    (Some(packed), Some(word)) => match self.actor_index(actor) {
                        Ok(actor) => Held::Complete { node: packed, actor, outcome: word },
                        Err(actor) => {
                            return self.push_whole(
                                at,
                                Input::Event(Event::Complete { node, actor, outcome }),
                                verdict,
                            );
                        }
                    },
                    _ => return self.push_whole(at, Input::Event(Event::Complete { node, actor, outcome }), verdict),
                }
            }
            Input::Event(Event::ActionResult { node, outcome, reporter }) if accepted => {
                let Some(packed) = node.packed() else {
                    return self.push_whole(at, Input::Event(Event::ActionResult { node, outcome, reporter }), verdict);
                };
                match reporter {
                    Reporter::Effect { key: carried } => match key.or_else(|| self.held_key(&carried, &node)) {
                        Some((release, visit)) => Held::Keyed { node: packed, outcome, release, visit },
                        None => {
                            let event =
                                Event::ActionResult { node, outcome, reporter: Reporter::Effect { key: carried } };
                            return self.push_whole(at, Input::Event(event), verdict);
                        }
                    },
                    Reporter::Unrecorded => Held::Action { node: packed, outcome, person: NONE },
                    Reporter::Person(actor) => match self.actor_index(actor) {
                        Ok(person) => Held::Action { node: packed, outcome, person },
                        Err(actor) => {
                            let event = Event::ActionResult { node, outcome, reporter: Reporter::Person(actor) };
                            return self.push_whole(at, Input::Event(event), verdict);
                        }
                    },
                }
            }
            other => return self.push_whole(at, other, verdict),
        };
        if self.slots.len() == self.slots.capacity() {
            grow(&mut self.slots, 4, 32);
        }
        self.slots.push(Slot { input, at, end });
    }

    /// Appends a record kept whole, with the instants resolved since the last record.
    #[cold]
    #[inline(never)]
    fn push_whole(&mut self, at: DateTime<Utc>, input: Input, verdict: Verdict) {
        let start = self.pending().min(self.resolved.len());
        // Most whole records (refused inputs) resolved nothing: no drain to set up.
        let resolved: Box<[Resolved]> =
            if start < self.resolved.len() { self.resolved.drain(start..).collect() } else { Box::default() };
        let end = u32::try_from(start).unwrap_or(u32::MAX);
        // Each whole record holds at least its input: more than `u32::MAX` of them do not fit
        // in memory.
        let index = u32::try_from(self.wholes.len()).unwrap_or(u32::MAX);
        self.wholes.push(Whole { input, verdict, resolved });
        self.slots.push(Slot { input: Held::Whole(index), at, end });
    }

    /// `key` as an action result's record holds it: its release and visit, when it is the key
    /// of a visit of `node` in this history's instance with an eight-byte release.
    fn held_key(&self, key: &EffectKey, node: &NodeId) -> Option<([u8; 8], u16)> {
        let (release, visit) = key.visit_of(self.header.instance.as_str(), node.as_str())?;
        Some((release.as_bytes().try_into().ok()?, visit))
    }

    /// The verdict of the held record at position `i`.
    pub(crate) fn verdict_at(&self, i: usize) -> &Verdict {
        match self.slots.get(i).map(|s| s.input) {
            Some(Held::Whole(w)) => self.whole(w).map_or(&ACCEPTED, |w| &w.verdict),
            _ => &ACCEPTED,
        }
    }

    /// The instant of the held record at position `i`.
    pub(crate) fn at_of(&self, i: usize) -> Option<DateTime<Utc>> {
        self.slots.get(i).map(|s| s.at)
    }

    /// The resolved instants of the held record at position `i`.
    pub(crate) fn resolved_at(&self, i: usize) -> &[Resolved] {
        match self.slots.get(i).map(|s| s.input) {
            Some(Held::Whole(w)) => self.whole(w).map_or(&[], |w| &w.resolved),
            Some(_) => self.resolved.get(self.span(i)).unwrap_or_default(),
            None => &[],
        }
    }

    /// The input of the held record at position `i`, rebuilt.
    pub(crate) fn input_at(&self, i: usize) -> Option<Input> {
        self.input_of(self.slots.get(i)?.input)
    }

    /// Whole record `i` (which `push_whole` gave out; the table is cut with the slots).
    fn whole(&self, i: u32) -> Option<&Whole> {
        let whole = self.wholes.get(i as usize);
        debug_assert!(whole.is_some(), "whole record {i} is held");
        whole
    }

    /// A compact input, rebuilt.
    fn input_of(&self, held: Held) -> Option<Input> {
        Some(match held {
            Held::Whole(w) => self.whole(w)?.input.clone(),
            Held::Start => Input::Start,
            Held::Timeout => Input::Timeout,
            Held::Complete { node, actor, outcome } => Input::Event(Event::Complete {
                node: node.into(),
                actor: self.actor(actor),
                outcome: self.word(outcome),
            }),
            Held::Action { node, outcome, person } => {
                let reporter = match person {
                    NONE => Reporter::Unrecorded,
                    person => Reporter::Person(self.actor(person)),
                };
                Input::Event(Event::ActionResult { node: node.into(), outcome, reporter })
            }
            Held::Keyed { node, outcome, release, visit } => {
                let node = NodeId::from(node);
                let release = std::str::from_utf8(&release).unwrap_or_default();
                let key = EffectKey::of_visit(self.header.instance.as_str(), release, node.as_str(), visit);
                Input::Event(Event::ActionResult { node, outcome, reporter: Reporter::Effect { key } })
            }
        })
    }

    /// The held record at position `i`, rebuilt.
    fn rebuild(&self, i: usize) -> Option<Record> {
        let input = self.input_at(i)?;
        let at = self.at_of(i)?;
        let resolved = self.resolved_at(i).into();
        let seq = self.first_seq.saturating_add(i as u64);
        Some(Record { seq, at, input, verdict: self.verdict_at(i).clone(), resolved })
    }

    /// Reserves room for `additional` more records.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.slots.reserve(additional);
    }

    /// Drops the held records before sequence number `until` (never past
    /// [`History::next_seq`]), numbering the rest as before.
    pub(crate) fn release_before(&mut self, until: u64) {
        let until = until.min(self.next_seq());
        if until <= self.first_seq {
            return;
        }
        let count = usize::try_from(until - self.first_seq).unwrap_or(usize::MAX).min(self.slots.len());
        self.first_seq = self.first_seq.saturating_add(count as u64);
        if count == self.slots.len() {
            // Nothing names the tables any more (and no input is being handled): give their
            // memory back.
            self.slots = Vec::new();
            self.resolved = Vec::new();
            self.names = Vec::new();
            self.wholes = Vec::new();
            return;
        }
        let cut = self.span(count).start.min(self.resolved.len());
        let gone = self.slots.drain(..count).filter(|s| matches!(s.input, Held::Whole(_))).count();
        self.resolved.drain(..cut);
        self.wholes.drain(..gone.min(self.wholes.len()));
        let cut = u32::try_from(cut).unwrap_or(u32::MAX);
        let gone = u32::try_from(gone).unwrap_or(u32::MAX);
        for slot in &mut self.slots {
            slot.end = slot.end.saturating_sub(cut);
            if let Held::Whole(i) = &mut slot.input {
                *i = i.saturating_sub(gone);
            }
        }
        if self.slots.capacity() > 4 * self.slots.len().max(8) {
            self.slots.shrink_to(2 * self.slots.len());
        }
        if self.resolved.capacity() > 4 * self.resolved.len().max(8) {
            self.resolved.shrink_to(2 * self.resolved.len());
        }
    }

    /// Drops the last record if it was refused and resolved nothing; returns whether it did.
    pub(crate) fn pop_refused(&mut self) -> bool {
        let Some(last) = self.slots.len().checked_sub(1) else {
            return false;
        };
        let refused = matches!(self.verdict_at(last), Verdict::Refused(_)) && self.resolved_at(last).is_empty();
        if refused && let Some(Slot { input: Held::Whole(_), .. }) = self.slots.pop() {
            self.wholes.pop();
        }
        refused
    }

    /// Heap bytes the history holds (an estimate: its buffers and the strings only it holds).
    pub(crate) fn heap(&self) -> usize {
        use std::mem::size_of;
        let whole = |w: &Whole| {
            std::mem::size_of_val(&*w.resolved)
                + match &w.verdict {
                    Verdict::Refused(_) => size_of::<crate::EngineError>(),
                    _ => 0,
                }
                + match &w.input {
                    Input::Event(Event::Complete { outcome, .. }) => outcome.as_ref().map_or(0, |o| o.len()),
                    Input::Event(Event::Merge { source, target, .. }) => source.len() + target.len(),
                    _ => 0,
                }
        };
        self.slots.capacity() * size_of::<Slot>()
            + self.resolved.capacity() * size_of::<Resolved>()
            + self.names.capacity() * size_of::<names::Name>()
            + self.wholes.capacity() * size_of::<Whole>()
            + self.wholes.iter().map(whole).sum::<usize>()
    }
}

/// Makes room in a full `v`: `first` places when it has none, then at least `second`, then
/// twice as many. A week records some 30 inputs, 16 resolved instants and 8 names; an instance
/// on Tuesday a handful of each.
#[cold]
#[inline(never)]
fn grow<T>(v: &mut Vec<T>, first: usize, second: usize) {
    let room = v.capacity();
    let more = match room {
        0 => first,
        _ if room < second => second - room,
        _ => room,
    };
    v.reserve_exact(more);
}
