//! What a driver call did: the journal entries it appended (with their positions), the
//! transitions they caused, and the effects it performed with their status. A host prints or
//! logs this instead of reading the journal again.

use crate::effect::{Effect, Notice};

use super::perform::LogEntry;
use super::record::{EffectStatus, Entry};
use crate::history::{Input, Record};

/// One journal entry a call appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The entry's position in the journal, from 1 (the journal's version once it was
    /// appended).
    pub version: u64,
    /// The entry.
    pub entry: Entry,
}

/// An effect a call performed.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectRun {
    /// The effect.
    pub effect: Effect,
    /// How it ended (acknowledged in the journal).
    pub status: EffectStatus,
}

/// What a driver call did, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The journal entries appended.
    pub appended: Vec<Appended>,
    /// The transitions of the inputs appended, each with the sequence number of its input's
    /// history record.
    pub notices: Vec<(u64, Notice)>,
    /// The effects performed.
    pub effects: Vec<EffectRun>,
    /// Retries, failures and refused results while performing effects.
    pub log: Vec<LogEntry>,
    /// The effects emitted by durable inputs and not performed yet, in order, when the call
    /// ended: what an effect runner performs next ([`Driver::take_due_effects`](super::Driver::take_due_effects)).
    pub pending: Vec<Effect>,
}

impl Report {
    /// Whether the call changed the journal.
    #[must_use]
    pub fn committed(&self) -> bool {
        !self.appended.is_empty()
    }

    /// The transitions caused by the input with history sequence number `seq`.
    pub fn notices_of(&self, seq: u64) -> impl Iterator<Item = &Notice> {
        self.notices.iter().filter(move |(s, _)| *s == seq).map(|(_, n)| n)
    }

    /// Appends what a later call did (`other`); the pending effects become `other`'s.
    pub fn absorb(&mut self, other: Report) {
        self.appended.extend(other.appended);
        self.notices.extend(other.notices);
        self.effects.extend(other.effects);
        self.log.extend(other.log);
        self.pending = other.pending;
    }
}

impl Report {
    /// Whether the call ran a timer (a gate, a deadline, a window edge, the next cycle).
    #[must_use]
    pub fn ran_timers(&self) -> bool {
        self.appended.iter().any(|a| matches!(&a.entry, Entry::Input(Record { input: Input::Timeout, .. })))
    }
}
