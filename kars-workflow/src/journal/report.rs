//! What a [`FileStore`](super::FileStore) did to a file on its own: `TailCut` and `RepairReport`.

use std::fmt;
use std::path::PathBuf;

use super::Corruption;
use crate::InstanceId;

/// A torn tail that a writer cut off a journal before appending.
///
/// A torn tail is an incomplete last frame (or bytes never written, all zero) left by an append
/// that was interrupted before it was acknowledged, so cutting it loses no acknowledged record.
/// Writers report every cut through [`FileStore::take_tail_cuts`](super::FileStore::take_tail_cuts);
/// readers never cut.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TailCut {
    /// The instance.
    pub id: InstanceId,
    /// The byte offset where the torn tail started: the journal's length after the cut.
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes: u64,
}

impl fmt::Display for TailCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cut a torn tail of {} bytes at byte {} from the journal of instance `{}` \
             (an append that was interrupted before it was acknowledged)",
            self.bytes, self.offset, self.id
        )
    }
}

/// What [`FileStore::repair`](super::FileStore::repair) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// The instance.
    pub id: InstanceId,
    /// The records left in the journal (its version after the repair).
    pub records_kept: u64,
    /// The byte offset of the cut: the journal's length after the repair.
    pub cut_at: u64,
    /// How many bytes were removed from `cut_at` on (0 if the journal was sound).
    pub bytes_removed: u64,
    /// The damage found at `cut_at`, or `None` if the removed bytes were a torn tail.
    pub damage: Option<Corruption>,
    /// The copy of the whole journal made before anything was removed, or `None` if nothing was.
    pub backup: Option<PathBuf>,
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(backup) = &self.backup else {
            return write!(
                f,
                "the journal of instance `{}` is sound: {} records, nothing removed",
                self.id, self.records_kept
            );
        };
        write!(
            f,
            "kept {} records of instance `{}` and removed {} bytes from byte {} on (",
            self.records_kept, self.id, self.bytes_removed, self.cut_at
        )?;
        match &self.damage {
            Some(damage) => write!(f, "{damage}")?,
            None => f.write_str("a torn tail")?,
        }
        write!(f, "); the journal as it was is saved at `{}`", backup.display())
    }
}
