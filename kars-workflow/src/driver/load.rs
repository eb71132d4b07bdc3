//! Reading an instance's journal back: the header, the entries, and the replayed instance —
//! one read and one replay, by the engine ([`Instance::replay_with`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use super::record::{Done, Entry, JOURNAL_FORMAT, JournalHeader, OLDEST_JOURNAL_FORMAT, RosterChange, SpecText};
use super::roster::Roster;
use super::{DriverError, Program};
use crate::InstanceId;
use crate::effect::{Effect, EffectKey, Notice};
use crate::history::{History, Record};
use crate::instance::{Instance, Options};
use crate::journal::Store;
use crate::workflow::Workflow;
use kars_spec::Fingerprint;

/// An [`Entry`] by reference, serialized the same way (so commits do not clone records).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum EntryRef<'a> {
    Input(&'a Record),
    Done(&'a Done),
    Roster(&'a RosterChange),
    Spec(&'a super::record::SpecVersion),
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
    /// Every spec text the journal stores, oldest first: the header's (when the host stored
    /// it), then each upgrade's.
    #[must_use]
    pub fn spec_texts(&self) -> Vec<(Fingerprint, &SpecText)> {
        let first = self.header.spec.as_ref().map(|s| (self.header.history.fingerprint, s));
        first
            .into_iter()
            .chain(self.entries.iter().filter_map(|e| match e {
                Entry::Spec(v) => Some((v.fingerprint, &v.spec)),
                _ => None,
            }))
            .collect()
    }

    /// The fingerprint of the newest spec the instance moved to (in force, or scheduled for
    /// the next cycle): the last accepted upgrade's, else the one it started with. A spec
    /// entry whose upgrade record a crash tore off does not count.
    #[must_use]
    pub fn newest_spec(&self) -> Fingerprint {
        self.entries
            .iter()
            .rev()
            .find_map(|e| match e {
                Entry::Input(record) => accepted_upgrade(record),
                _ => None,
            })
            .unwrap_or(self.header.history.fingerprint)
    }

    /// The text of [`Journaled::newest_spec`], when the journal stores it: what a host that
    /// keeps no spec files opens the instance with.
    #[must_use]
    pub fn newest_spec_text(&self) -> Option<&SpecText> {
        let newest = self.newest_spec();
        self.spec_texts().into_iter().rev().find(|(f, _)| *f == newest).map(|(_, s)| s)
    }

    /// The roster in force after the last entry: the header's (or, for format 1, the spec's
    /// `team:` that `program` was compiled from), then every journaled change in order.
    #[must_use]
    pub fn roster(&self, program: &Program) -> Roster {
        let mut roster = self.header.roster.clone().unwrap_or_else(|| program.default_roster.clone());
        // A spec entry's team applies with its upgrade record, never alone.
        let mut offered: Option<(Fingerprint, &Roster)> = None;
        for entry in &self.entries {
            match entry {
                Entry::Roster(change) => roster.clone_from(&change.roster),
                Entry::Spec(version) => offered = version.roster.as_ref().map(|r| (version.fingerprint, r)),
                Entry::Input(record) => {
                    if let Some(to) = accepted_upgrade(record)
                        && let Some((_, team)) = offered.take().filter(|(f, _)| *f == to)
                    {
                        roster.clone_from(team);
                    }
                }
                Entry::Done(_) => {}
            }
        }
        roster
    }
}

/// The spec an accepted upgrade record moves to.
fn accepted_upgrade(record: &Record) -> Option<Fingerprint> {
    match (&record.input, &record.verdict) {
        (crate::history::Input::Upgrade { to, .. }, crate::history::Verdict::Accepted) => Some(*to),
        _ => None,
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
    let entries = decode(id, 0, &stored.records)?;
    Ok(Journaled { id: id.clone(), header, entries, version: stored.version })
}

/// A page of the journal of instance `id`: at most `limit` entries after the first `after`
/// (versions `after + 1` on), decoded, and the journal's version; the records outside the page
/// are not decoded (nor read, on a store that reads ranges). The header is not read: use it
/// on an instance whose journal was opened before (a history page of a hosted instance).
///
/// # Errors
/// [`DriverError::Journal`] if it cannot be read, [`DriverError::BadRecord`] if an entry of
/// the page was not written by a driver of a format this build reads.
pub fn read_entries<S: Store + ?Sized>(
    store: &S,
    id: &InstanceId,
    after: u64,
    limit: usize,
) -> Result<(Vec<Entry>, u64), DriverError> {
    let page = store.read_page(id, after, limit)?;
    let entries = decode(id, usize::try_from(after).unwrap_or(usize::MAX), &page.records)?;
    Ok((entries, page.version))
}

/// Decodes `records`, the first of which is record `first` of instance `id`'s journal.
fn decode(id: &InstanceId, first: usize, records: &[Vec<u8>]) -> Result<Vec<Entry>, DriverError> {
    records
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            serde_json::from_slice::<Entry>(bytes).map_err(|e| DriverError::BadRecord {
                id: id.clone(),
                index: first.saturating_add(i),
                detail: e.to_string(),
            })
        })
        .collect()
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
    /// Every spec version the journal ran under, with the one it started with.
    pub versions: Versions,
}

/// The spec versions of a journal, by fingerprint: the one it started with and every one an
/// upgrade moved it to.
#[derive(Debug, Clone, Default)]
pub struct Versions {
    map: std::collections::BTreeMap<Fingerprint, Arc<Workflow>>,
    first: Option<Fingerprint>,
    latest: Option<Fingerprint>,
}

impl Versions {
    /// The compiled workflow of version `fingerprint`.
    #[must_use]
    pub fn get(&self, fingerprint: Fingerprint) -> Option<&Arc<Workflow>> {
        self.map.get(&fingerprint)
    }

    /// The version the instance started with.
    #[must_use]
    pub fn first(&self) -> Option<&Arc<Workflow>> {
        self.first.and_then(|f| self.map.get(&f))
    }

    /// The newest version (in force, or scheduled for the next cycle).
    #[must_use]
    pub fn latest(&self) -> Option<&Arc<Workflow>> {
        self.latest.and_then(|f| self.map.get(&f))
    }

    /// Every version's fingerprint, in no particular order.
    pub fn fingerprints(&self) -> impl Iterator<Item = Fingerprint> + '_ {
        self.map.keys().copied()
    }

    /// The versions of a new instance: the one it starts with.
    pub(super) fn starting(workflow: &Arc<Workflow>) -> Self {
        let mut versions = Self { first: Some(workflow.fingerprint()), ..Self::default() };
        versions.insert(Arc::clone(workflow));
        versions
    }

    pub(super) fn insert(&mut self, workflow: Arc<Workflow>) {
        self.latest = Some(workflow.fingerprint());
        self.map.entry(workflow.fingerprint()).or_insert(workflow);
    }

    /// The versions `journal` names, compiled from the texts it stores; `program` (the host's
    /// spec) stands for any version whose fingerprint it has.
    fn collect(program: &Program, journal: &Journaled) -> Result<Self, DriverError> {
        let mut versions = Self::default();
        let compile = |spec: &super::record::SpecText, index: Option<usize>| -> Result<Arc<Workflow>, DriverError> {
            let bad = |detail: String| match index {
                Some(index) => DriverError::BadRecord { id: journal.id.clone(), index, detail },
                None => DriverError::BadHeader { id: journal.id.clone(), detail },
            };
            let checked =
                kars_spec::load(&spec.text, &spec.origin).map_err(|r| bad(format!("its spec does not load: {r}")))?;
            Workflow::compile(&checked).map(Arc::new).map_err(|e| bad(format!("its spec does not compile: {e}")))
        };
        let first = journal.header.history.fingerprint;
        if first == program.workflow.fingerprint() {
            versions.insert(Arc::clone(&program.workflow));
        } else if let Some(spec) = &journal.header.spec {
            let workflow = compile(spec, None)?;
            if workflow.fingerprint() == first {
                versions.insert(workflow);
            }
        }
        versions.first = Some(first);
        versions.latest = Some(first);
        for (index, entry) in journal.entries.iter().enumerate() {
            let Entry::Spec(version) = entry else { continue };
            if version.fingerprint == program.workflow.fingerprint() {
                versions.insert(Arc::clone(&program.workflow));
            } else {
                let workflow = compile(&version.spec, Some(index))?;
                if workflow.fingerprint() != version.fingerprint {
                    let detail = format!(
                        "its spec text has fingerprint `{}`, not `{}`",
                        workflow.fingerprint(),
                        version.fingerprint
                    );
                    return Err(DriverError::BadRecord { id: journal.id.clone(), index, detail });
                }
                versions.insert(workflow);
            }
        }
        versions.latest = Some(journal.newest_spec());
        Ok(versions)
    }
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
    Ok(Account { instance: loaded.instance, caused, roster: loaded.roster, versions: loaded.versions })
}

/// What [`load`] rebuilt.
pub(super) struct Loaded {
    pub(super) header: JournalHeader,
    pub(super) instance: Instance,
    pub(super) version: u64,
    pub(super) journaled: u64,
    pub(super) acked: BTreeSet<EffectKey>,
    pub(super) roster: Roster,
    pub(super) versions: Versions,
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
    let versions = Versions::collect(program, journal)?;
    let latest = versions.latest.unwrap_or(header.history.fingerprint);
    if latest != current {
        return Err(DriverError::SpecChanged { id: id.clone(), recorded: latest, current });
    }
    let Some(first) = versions.first().cloned() else {
        return Err(DriverError::SpecChanged { id: id.clone(), recorded: header.history.fingerprint, current });
    };
    let mut records = Vec::new();
    // The journal position of each record, for an error that names one.
    let mut positions = Vec::new();
    let mut acked = BTreeSet::new();
    for (index, entry) in entries.iter().enumerate() {
        match entry {
            Entry::Input(record) => {
                records.push(record.clone());
                positions.push(index);
            }
            Entry::Done(done) => {
                acked.insert(done.key.clone());
            }
            Entry::Roster(_) | Entry::Spec(_) => {}
        }
    }
    let roster = journal.roster(program);
    let workflow = first;
    let (instance, journaled) = if records.is_empty() {
        // The start was never journaled (a crash right after `create`): start again; the
        // engine is deterministic, so this is the start that was lost.
        let h = &header.history;
        (Instance::start_with(workflow, h.instance.clone(), h.started_at, options), 0)
    } else {
        let journaled = records.len() as u64;
        // A record out of order is a journal that was edited or mixed up: say which.
        let history = History::from_records(header.history.clone(), 0, records).map_err(|e| {
            let index = positions.get(e.position).copied().unwrap_or(e.position);
            DriverError::BadRecord { id: id.clone(), index, detail: e.to_string() }
        })?;
        let resolve = |f: Fingerprint| versions.get(f).cloned();
        let instance = Instance::replay_versions(workflow, &history, options, &resolve, after)
            .map_err(|e| DriverError::Replay { id: id.clone(), source: Box::new(e) })?;
        (instance, journaled)
    };
    Ok(Loaded { header: header.clone(), instance, version: *version, journaled, acked, roster, versions })
}
