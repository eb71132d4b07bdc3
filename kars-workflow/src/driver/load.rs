//! Reading an instance's journal back: the header, the entries, and the replayed instance —
//! one read and one replay, by the engine ([`Instance::replay_with`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use super::record::{Done, Entry, JOURNAL_FORMAT, JournalHeader, OLDEST_JOURNAL_FORMAT, RosterChange};
use super::roster::Roster;
use super::{DriverError, Program};
use crate::InstanceId;
use crate::effect::{Effect, EffectKey, Notice};
use crate::history::{History, Record};
use crate::instance::{Instance, Options};
use crate::journal::Store;

/// An [`Entry`] by reference, serialized the same way (so commits do not clone records).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum EntryRef<'a> {
    Input(&'a Record),
    Done(&'a Done),
    Roster(&'a RosterChange),
}

/// An instance's journal, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journaled {
    /// The instance.
    pub id: InstanceId,
    /// The header.
    pub header: JournalHeader,
    /// Every entry, in order.
    pub entries: Vec<Entry>,
    /// The journal's version.
    pub version: u64,
}

impl Journaled {
    /// The roster in force after the last entry: the header's (or, for format 1, the spec's
    /// `team:` that `program` was compiled from), then every journaled change in order.
    #[must_use]
    pub fn roster(&self, program: &Program) -> Roster {
        let start = self.header.roster.clone().unwrap_or_else(|| program.default_roster.clone());
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Roster(change) => Some(&change.roster),
                _ => None,
            })
            .fold(start, |_, r| r.clone())
    }
}

/// Reads and decodes the journal of instance `id` without replaying it (to show its history,
/// or to get the spec text stored in its header before compiling it). Reading writes nothing.
///
/// # Errors
/// [`DriverError::Journal`] if it cannot be read, [`DriverError::BadHeader`] or
/// [`DriverError::BadRecord`] if it was not written by a driver of a format this build reads.
pub fn read_journal<S: Store + ?Sized>(store: &S, id: &InstanceId) -> Result<Journaled, DriverError> {
    let stored = store.read(id)?;
    let header: JournalHeader = serde_json::from_slice(&stored.header)
        .map_err(|e| DriverError::BadHeader { id: id.clone(), detail: e.to_string() })?;
    if !(OLDEST_JOURNAL_FORMAT..=JOURNAL_FORMAT).contains(&header.format) {
        let detail = format!(
            "format version {} (this build reads versions {OLDEST_JOURNAL_FORMAT} to {JOURNAL_FORMAT})",
            header.format
        );
        return Err(DriverError::BadHeader { id: id.clone(), detail });
    }
    if header.history.instance != *id {
        let detail = format!("it names instance `{}`", header.history.instance);
        return Err(DriverError::BadHeader { id: id.clone(), detail });
    }
    let entries = stored
        .records
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            serde_json::from_slice::<Entry>(bytes).map_err(|e| DriverError::BadRecord {
                id: id.clone(),
                index,
                detail: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Journaled { id: id.clone(), header, entries, version: stored.version })
}

/// What each journal entry caused when replayed: the transitions (notices) and effects of an
/// input record; nothing for the other entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Caused {
    /// The transitions, in order.
    pub notices: Vec<Notice>,
    /// The effects the input emitted, in order.
    pub effects: Vec<Effect>,
}

/// A journal replayed with what each entry caused: see [`replay_journal`].
#[derive(Debug)]
pub struct Account {
    /// The instance as the journal leaves it.
    pub instance: Instance,
    /// `caused[i]` belongs to `journal.entries[i]`.
    pub caused: Vec<Caused>,
    /// The roster in force.
    pub roster: Roster,
}

/// Replays `journal` once, recording what each entry caused, so a host can show the whole
/// history with its transitions, in the instants that were recorded.
///
/// # Errors
/// [`DriverError::SpecChanged`] when the journal was written for another spec,
/// [`DriverError::Replay`] when it does not replay.
pub fn replay_journal(program: &Program, journal: &Journaled) -> Result<Account, DriverError> {
    let mut caused = vec![Caused::default(); journal.entries.len()];
    // Input records are matched to their entries by sequence number.
    let positions: Vec<usize> =
        journal.entries.iter().enumerate().filter_map(|(i, e)| matches!(e, Entry::Input(_)).then_some(i)).collect();
    let loaded = replay(program, journal, Options { notice_capacity: 4096 }, |record, instance| {
        let Some(slot) =
            usize::try_from(record.seq).ok().and_then(|s| positions.get(s)).and_then(|&p| caused.get_mut(p))
        else {
            return;
        };
        while let Some(notice) = instance.poll_notice() {
            slot.notices.push(notice);
        }
        while let Some(effect) = instance.poll_effect() {
            slot.effects.push(effect);
        }
    })?;
    Ok(Account { instance: loaded.instance, caused, roster: loaded.roster })
}

/// What [`load`] rebuilt.
pub(super) struct Loaded {
    pub(super) header: JournalHeader,
    pub(super) instance: Instance,
    pub(super) version: u64,
    pub(super) journaled: u64,
    pub(super) acked: BTreeSet<EffectKey>,
    pub(super) roster: Roster,
}

/// Checks and replays a journal already read against `program`.
pub(super) fn load(program: &Program, journal: Journaled) -> Result<Loaded, DriverError> {
    replay(program, &journal, Options::default(), |_, _| {})
}

fn replay(
    program: &Program,
    journal: &Journaled,
    options: Options,
    after: impl FnMut(&Record, &mut Instance),
) -> Result<Loaded, DriverError> {
    let Journaled { id, header, entries, version } = journal;
    let current = program.workflow.fingerprint();
    if header.history.fingerprint != current {
        return Err(DriverError::SpecChanged { id: id.clone(), recorded: header.history.fingerprint, current });
    }
    let mut records = Vec::new();
    let mut acked = BTreeSet::new();
    for entry in entries {
        match entry {
            Entry::Input(record) => records.push(record.clone()),
            Entry::Done(done) => {
                acked.insert(done.key.clone());
            }
            Entry::Roster(_) => {}
        }
    }
    let roster = journal.roster(program);
    let workflow = Arc::clone(&program.workflow);
    let (instance, journaled) = if records.is_empty() {
        // The start was never journaled (a crash right after `create`): start again; the
        // engine is deterministic, so this is the start that was lost.
        let h = &header.history;
        (Instance::start_with(workflow, h.instance.clone(), h.started_at, options), 0)
    } else {
        let journaled = records.len() as u64;
        let history = History { header: header.history.clone(), first_seq: 0, records };
        let instance = Instance::replay_with(workflow, &history, options, after)
            .map_err(|e| DriverError::Replay { id: id.clone(), source: Box::new(e) })?;
        (instance, journaled)
    };
    Ok(Loaded { header: header.clone(), instance, version: *version, journaled, acked, roster })
}
