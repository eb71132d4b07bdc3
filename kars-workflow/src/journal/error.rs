//! `JournalError`, the one error type of the journal boundary, and `Corruption`, what was damaged.

use std::fmt;
use std::path::PathBuf;

use crate::{InstanceId, InstanceIdError};

/// Why a journal operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Another writer appended first: the stored version is not the expected one.
    #[error(
        "another writer advanced instance `{id}` to version {actual} (this append expected version {expected})\n\
         help: re-read the instance, apply the new records, and append again"
    )]
    Conflict {
        /// The instance.
        id: InstanceId,
        /// The version the append expected.
        expected: u64,
        /// The version actually stored.
        actual: u64,
    },
    /// The journal is damaged before its tail, so acknowledged records would be lost.
    #[error(
        "the journal of instance `{id}` is corrupt at byte {offset}: {reason}\n\
         help: the damage is not a torn last write, so kars refuses to drop records silently; \
         restore the file from a backup or move it aside"
    )]
    Corrupt {
        /// The instance.
        id: InstanceId,
        /// The byte offset in the journal where the damage starts.
        offset: u64,
        /// What is damaged.
        reason: Corruption,
    },
    /// The instance does not exist.
    #[error("instance `{id}` does not exist\nhelp: create it first")]
    NotFound {
        /// The instance.
        id: InstanceId,
    },
    /// The instance exists already.
    #[error("instance `{id}` already exists")]
    AlreadyExists {
        /// The instance.
        id: InstanceId,
    },
    /// The file system failed.
    #[error("journal i/o failed on `{}`: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A record or header is over the store's size limit.
    #[error("{} for instance `{id}` is {len} bytes, over the limit of {max} bytes", what(*index))]
    TooLarge {
        /// The instance.
        id: InstanceId,
        /// The record's position within the append, or `None` for the header.
        index: Option<usize>,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: u32,
    },
    /// The string is not a valid instance id (for hosts that turn names into ids with `?`).
    #[error("{0}")]
    InvalidId(#[from] InstanceIdError),
}

fn what(index: Option<usize>) -> String {
    match index {
        Some(i) => format!("record {i} of the append"),
        None => "the header".to_owned(),
    }
}

impl JournalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// What part of a journal failed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The file does not start with the journal magic.
    BadMagic,
    /// The file is in a format version this build does not read.
    UnsupportedFormat {
        /// The version found.
        found: u32,
    },
    /// The file is shorter than its own header says.
    ShortFileHeader,
    /// The file header's checksum does not match.
    FileHeaderChecksum,
    /// A frame's length and checksum fields do not match their checksum.
    FrameHeaderChecksum {
        /// The record index of the frame.
        index: u64,
    },
    /// A frame's payload does not match its checksum and later data follows it.
    PayloadChecksum {
        /// The record index of the frame.
        index: u64,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => f.write_str("the file does not start with the kars journal magic `KARSJRNL`"),
            Self::UnsupportedFormat { found } => {
                write!(f, "the file is in journal format version {found}, and this build reads version 1")
            }
            Self::ShortFileHeader => f.write_str("the file is shorter than its header"),
            Self::FileHeaderChecksum => f.write_str("the file header fails its checksum"),
            Self::FrameHeaderChecksum { index } => {
                write!(f, "the frame of record {index} has a damaged length or checksum field")
            }
            Self::PayloadChecksum { index } => {
                write!(f, "record {index} fails its checksum and later records follow it")
            }
        }
    }
}
