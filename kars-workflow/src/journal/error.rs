//! `JournalError`, the one error type of the journal boundary, and `Corruption`, what was damaged.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::LockHolder;
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
    /// The journal is damaged (not merely torn at its tail), so reading on would lose or invent
    /// acknowledged records. Only [`FileStore::repair`](super::FileStore::repair) gets past it.
    #[error(
        "the journal of instance `{id}` is corrupt at byte {offset}: {reason}\n\
         help: this is not a torn last write, so no record is dropped silently; `kars instance repair` \
         (`FileStore::repair`) backs the file up and then cuts it at byte {offset}, losing the records from there on"
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
    /// A stored record or header is longer than this store's size limit: it is refused before
    /// anything of that size is allocated.
    #[error(
        "the journal of instance `{id}` holds {} of {len} bytes at byte {offset}, over the limit of {max} bytes\n\
         help: if the file is trusted, open it with a larger `max_record_len`",
        stored_what(*index)
    )]
    StoredTooLarge {
        /// The instance.
        id: InstanceId,
        /// The byte offset of the frame (or of the header's length field).
        offset: u64,
        /// The record index, or `None` for the header.
        index: Option<u64>,
        /// The length the file claims, in bytes.
        len: u64,
        /// The limit in bytes.
        max: u32,
    },
    /// Another handle or process held the journal's lock for longer than the lock timeout.
    #[error(
        "the journal of instance `{id}` is locked by {}; gave up after {:.1} s\n\
         help: wait for it to finish and retry, or raise the lock timeout (`FileStoreConfig::with_lock_timeout`)",
        holder.as_ref().map_or_else(|| "another process".to_owned(), ToString::to_string),
        waited.as_secs_f64()
    )]
    Locked {
        /// The instance.
        id: InstanceId,
        /// How long this call waited.
        waited: Duration,
        /// Who holds the lock, when the operating system says (Linux: `/proc/locks`).
        holder: Option<LockHolder>,
    },
    /// The journal's path is a symbolic link: it is refused and its target is never opened.
    #[error(
        "the journal of instance `{id}` at `{}` is a symbolic link, which kars does not follow\n\
         help: journal files must be regular files in the journal directory; replace the link with the file",
        path.display()
    )]
    Symlink {
        /// The instance.
        id: InstanceId,
        /// The link.
        path: PathBuf,
    },
    /// A write through a store opened with [`FileStore::open_read_only`](super::FileStore::open_read_only).
    #[error(
        "cannot change instance `{id}`: the journal directory `{}` was opened read-only",
        dir.display()
    )]
    ReadOnly {
        /// The instance.
        id: InstanceId,
        /// The journal directory.
        dir: PathBuf,
    },
    /// The journal directory does not exist.
    #[error(
        "there is no journal directory `{}`\n\
         help: check the path; a journal directory is created only when the first instance is created in it",
        dir.display()
    )]
    NoDirectory {
        /// The directory.
        dir: PathBuf,
    },
    /// The string is not a valid instance id (for hosts that turn names into ids with `?`).
    #[error("{0}")]
    InvalidId(#[from] InstanceIdError),
    /// The PostgreSQL store failed (feature `postgres`).
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Postgres(Box<super::postgres::PgError>),
}

#[cfg(feature = "postgres")]
impl From<super::postgres::PgError> for JournalError {
    fn from(e: super::postgres::PgError) -> Self {
        Self::Postgres(Box::new(e))
    }
}

fn what(index: Option<usize>) -> String {
    match index {
        Some(i) => format!("record {i} of the append"),
        None => "the header".to_owned(),
    }
}

fn stored_what(index: Option<u64>) -> String {
    match index {
        Some(i) => format!("record {i}"),
        None => "a header".to_owned(),
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
    /// A complete frame's payload does not match its checksum (a flipped byte, not a torn write).
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
                write!(f, "record {index} fails its checksum")
            }
        }
    }
}
