//! Reading an instance's journal back: the header, the entries, and the replayed instance.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use super::record::{Done, Entry, JOURNAL_FORMAT, JournalHeader};
use super::{DriverError, Program};
use crate::InstanceId;
use crate::effect::EffectKey;
use crate::history::{History, Record};
use crate::instance::Instance;
use crate::journal::Store;

/// An [`Entry`] by reference, serialized the same way (so commits do not clone records).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum EntryRef<'a> {
    Input(&'a Record),
    Done(&'a Done),
}

/// An instance's journal, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journaled {
    /// The header.
    pub header: JournalHeader,
    /// Every entry, in order.
    pub entries: Vec<Entry>,
    /// The journal's version.
    pub version: u64,
}

/// Reads and decodes the journal of instance `id` without replaying it (to show its history,
/// or to get the spec text stored in its header before compiling it).
///
/// # Errors
/// [`DriverError::Journal`] if it cannot be read, [`DriverError::BadHeader`] or
/// [`DriverError::BadRecord`] if it was not written by a driver of this format.
pub fn read_journal<S: Store + ?Sized>(store: &S, id: &InstanceId) -> Result<Journaled, DriverError> {
    let stored = store.read(id)?;
    let header: JournalHeader = serde_json::from_slice(&stored.header)
        .map_err(|e| DriverError::BadHeader { id: id.clone(), detail: e.to_string() })?;
    if header.format != JOURNAL_FORMAT {
        let detail = format!("format version {} (this build reads {JOURNAL_FORMAT})", header.format);
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
    Ok(Journaled { header, entries, version: stored.version })
}

/// What [`load`] rebuilt.
pub(super) struct Loaded {
    pub(super) header: JournalHeader,
    pub(super) instance: Instance,
    pub(super) version: u64,
    pub(super) journaled: u64,
    pub(super) acked: BTreeSet<EffectKey>,
}

/// Reads, checks and replays the journal of `id` against `program`.
pub(super) fn load<S: Store + ?Sized>(store: &S, program: &Program, id: &InstanceId) -> Result<Loaded, DriverError> {
    let Journaled { header, entries, version } = read_journal(store, id)?;
    let current = program.workflow.fingerprint();
    if header.history.fingerprint != current {
        return Err(DriverError::SpecChanged { id: id.clone(), recorded: header.history.fingerprint, current });
    }
    let mut records = Vec::new();
    let mut acked = BTreeSet::new();
    for entry in entries {
        match entry {
            Entry::Input(record) => records.push(record),
            Entry::Done(done) => {
                acked.insert(done.key);
            }
        }
    }
    let workflow = Arc::clone(&program.workflow);
    let (instance, journaled) = if records.is_empty() {
        // The start was never journaled (a crash right after `create`): start again; the
        // engine is deterministic, so this is the start that was lost.
        let h = &header.history;
        (Instance::start(workflow, h.instance.clone(), h.started_at), 0)
    } else {
        let journaled = records.len() as u64;
        let history = History { header: header.history.clone(), first_seq: 0, records };
        let instance = Instance::replay(workflow, &history)
            .map_err(|e| DriverError::Replay { id: id.clone(), source: Box::new(e) })?;
        (instance, journaled)
    };
    Ok(Loaded { header, instance, version, journaled, acked })
}
