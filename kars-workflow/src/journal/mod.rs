//! The journal: crash-safe, append-only storage of instance histories as opaque byte records.
//!
//! A [`Store`] keeps, for each instance, one header (written once by [`Store::create`]) and an
//! ordered list of records (added by [`Store::append`]). The store does not know what the bytes
//! mean: the driver serializes the engine's history records (JSON) and replays them on start.
//! An instance's *version* is its number of records; every append names the version it expects,
//! so two writers (threads, processes, or service replicas sharing a database) can never both
//! advance the same instance: the loser gets [`JournalError::Conflict`] and re-reads. The trait
//! is shaped so that a PostgreSQL store (a row per record, a unique `(instance, version)` key)
//! can implement it without changing the engine or the driver.
//!
//! Two stores ship: [`FileStore`] (the default; one file per instance, fsync on commit) and
//! [`MemoryStore`] (tests).
//!
//! ```
//! use kars_workflow::InstanceId;
//! use kars_workflow::journal::{FileStore, JournalError, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = FileStore::create_dir(dir.path().join("journal"))?;
//! let id = InstanceId::new("kars-release")?;
//! store.create(&id, br#"{"spec":"kars-release"}"#)?;
//! let v = store.append(&id, 0, &[br#"{"started":"2026-W48"}"#])?;
//! assert_eq!(v, 1);
//! // A writer that has not seen version 1 loses.
//! assert!(matches!(store.append(&id, 0, &[b"late"]), Err(JournalError::Conflict { actual: 1, .. })));
//! // A read-only handle reads, and refuses to write.
//! let reader = FileStore::open_read_only(dir.path().join("journal"))?;
//! assert_eq!(reader.read(&id)?.records.len(), 1);
//! assert!(matches!(reader.append(&id, 1, &[b"x"]), Err(JournalError::ReadOnly { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Readers and writers of a [`FileStore`]
//!
//! - **Readers never write.** [`Store::read`], [`Store::version`] and [`Store::list`] open
//!   files read-only (`O_RDONLY`), take at most a shared lock, and change no byte, so they work
//!   on read-only files and directories. [`FileStore::open_read_only`] makes a handle that
//!   only reads.
//! - **Writers** ([`Store::create`], [`Store::append`], [`FileStore::repair`]) take an exclusive
//!   lock; a read-only handle refuses them with [`JournalError::ReadOnly`].
//! - **Lock waits are bounded** by [`FileStoreConfig::lock_timeout`] (5 s by default); then the
//!   call fails with [`JournalError::Locked`], naming the holder's process when Linux's
//!   `/proc/locks` says.
//! - **Files.** Journal files are opened with `O_NOFOLLOW`: a symbolic link is refused with
//!   [`JournalError::Symlink`] and its target is never opened. Journal and backup files are
//!   created 0600, directories made by [`FileStore::create_dir`] 0700.
//!   [`FileStore::open`] and [`FileStore::open_read_only`] never create a directory. A `create`
//!   interrupted by a crash can leave a `.<id>.<pid>-<n>.tmp` file; the next `create` of the
//!   same id removes it, and leaves alone the temporary file of a `create` still running
//!   (which holds a lock on it).
//! - **Byte caps.** [`FileStoreConfig::max_record_len`] bounds records and headers on write
//!   ([`JournalError::TooLarge`]) and on read ([`JournalError::StoredTooLarge`], before
//!   anything of the claimed size is allocated).
//!
//! # On-disk format of a [`FileStore`] journal (format version 1)
//!
//! One file per instance, `<dir>/<instance id>.journal`. All integers are little-endian and
//! every checksum is CRC-32C (Castagnoli, reflected, init and final xor `0xFFFF_FFFF`). Frame
//! checksums are stored masked as in LevelDB, `mask(c) = c.rotate_right(15) + 0xA282_EAD8`
//! (wrapping), so a run of zero bytes is never a valid frame.
//!
//! ```text
//! file header (written once, atomically: temporary file, fsync, hard link, directory fsync)
//!   magic           8 bytes   "KARSJRNL"
//!   format version  u32       1
//!   header length   u32       n
//!   header crc      u32       crc32c(format version ‖ header length ‖ header bytes)
//!   header bytes    n bytes   opaque (the caller's header)
//! then zero or more frames; frame i (0-based) holds record i and brings the version to i + 1
//!   length          u32       m
//!   payload crc     u32       mask(crc32c(payload))
//!   frame crc       u32       mask(crc32c(i as u64 ‖ length ‖ payload crc))
//!   payload         m bytes   opaque (one record)
//! ```
//!
//! The frame crc covers the frame's index, so a frame copied to another place is detected, and
//! it covers the length, so a damaged length is never mistaken for a short write. An append
//! writes all its frames with one `write` and, with [`Durability::Fsync`], one `fdatasync`
//! (group commit) before it returns: a returned version is durable.
//!
//! # Recovery rules
//!
//! A crash during an append can leave a *torn tail*: fewer bytes than a frame header, a frame
//! whose (checked) length runs past the end of the file, or a damaged region followed only by
//! zero bytes (space the file system allocated but never wrote). A torn tail holds only an
//! append that was never acknowledged. A reader ignores it and leaves it in place; a writer
//! cuts it off under the lock before appending and reports the cut as a [`TailCut`] through
//! [`FileStore::take_tail_cuts`] (the command line prints it on stderr).
//!
//! Any other damage is *corruption* and a hard [`JournalError::Corrupt`] naming the byte offset,
//! for readers and writers alike: a bad file header, a frame header whose crc fails with
//! non-zero bytes after it, and a complete frame whose payload fails its crc, even the last one
//! (a flipped byte, not a torn write: its record may have been acknowledged). Nothing is ever
//! dropped silently. [`FileStore::repair`] is the only way past corruption: it copies the file
//! to `<id>.journal.bak-<n>`, then cuts it at the first bad frame, and returns a
//! [`RepairReport`] (records kept, bytes removed, the backup's path).
//!
//! A power loss on a file system that may update a file's length before its data can leave an
//! unacknowledged last frame complete in length but not in content; that reads as corruption
//! too (an acknowledged frame was synced, so this never hides a lost record) and `repair` cuts it.

mod crc;
mod error;
mod file;
mod files;
mod format;
mod lock;
mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
mod repair;
mod report;

use std::fmt;

use crate::InstanceId;

pub use error::{Corruption, JournalError};
pub use file::{DEFAULT_LOCK_TIMEOUT, Durability, FileStore, FileStoreConfig};
pub use lock::LockHolder;
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PgStore, PgStoreConfig};
pub use report::{RepairReport, TailCut};

/// The byte-format version of [`FileStore`] files (the `u32` after the magic `KARSJRNL`) that
/// this build writes and reads; the layout is in this module's doc. It versions the framing and
/// checksums only: what the records mean is versioned by the driver's
/// [`JOURNAL_FORMAT`](crate::driver::JOURNAL_FORMAT). Every version is listed in the
/// repository's `CHANGELOG.md`.
pub const FILE_FORMAT: u32 = format::FORMAT_VERSION;

/// The largest record or header a store accepts by default: 16 MiB.
pub const DEFAULT_MAX_RECORD_LEN: u32 = 16 * 1024 * 1024;

/// An instance's stored history: its header, its records in order, and its version.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Stored {
    /// The header given to [`Store::create`].
    pub header: Vec<u8>,
    /// Every acknowledged record, oldest first.
    pub records: Vec<Vec<u8>>,
    /// The number of records; the version the next append must expect.
    pub version: u64,
}

/// A page of an instance's records ([`Store::read_page`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Page {
    /// The page's records, oldest first.
    pub records: Vec<Vec<u8>>,
    /// The instance's version (its number of records) when the page was read.
    pub version: u64,
}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page").field("records", &self.records.len()).field("version", &self.version).finish()
    }
}

impl fmt::Debug for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stored")
            .field("header_len", &self.header.len())
            .field("records", &self.records.len())
            .field("version", &self.version)
            .finish()
    }
}

/// Durable storage for instance histories.
///
/// Implementations are shared between threads (`&self` methods) and must give every method
/// the same meaning as [`FileStore`]: versions count records, an append succeeds only if the
/// stored version equals `expected_version`, and a successful append is durable.
pub trait Store: Send + Sync {
    /// Creates instance `id` with an opaque `header` and no records (version 0).
    ///
    /// # Errors
    /// [`JournalError::AlreadyExists`] if the instance exists, [`JournalError::TooLarge`] if the
    /// header is longer than the store's limit, [`JournalError::Io`] if storage fails; for a
    /// [`FileStore`], also [`JournalError::Symlink`] and [`JournalError::ReadOnly`].
    fn create(&self, id: &InstanceId, header: &[u8]) -> Result<(), JournalError>;

    /// Appends `records` (all or none) to instance `id` if its version is `expected_version`,
    /// and returns the new version (`expected_version + records.len()`).
    ///
    /// Appending no records checks the version and returns it.
    ///
    /// # Errors
    /// [`JournalError::Conflict`] if the version is not `expected_version`,
    /// [`JournalError::NotFound`], [`JournalError::TooLarge`] for an oversized record,
    /// [`JournalError::Corrupt`] for damage that is not a torn tail, [`JournalError::Io`];
    /// for a [`FileStore`], also [`JournalError::Locked`], [`JournalError::Symlink`],
    /// [`JournalError::ReadOnly`] and [`JournalError::StoredTooLarge`].
    fn append(&self, id: &InstanceId, expected_version: u64, records: &[&[u8]]) -> Result<u64, JournalError>;

    /// Reads instance `id`'s header and every acknowledged record.
    ///
    /// A torn tail (an unacknowledged append cut short) is ignored, never removed: reading
    /// changes nothing.
    ///
    /// # Errors
    /// [`JournalError::NotFound`], [`JournalError::Corrupt`] for damage that is not a torn
    /// tail, [`JournalError::Io`]; for a [`FileStore`], also [`JournalError::Locked`],
    /// [`JournalError::Symlink`] and [`JournalError::StoredTooLarge`].
    fn read(&self, id: &InstanceId) -> Result<Stored, JournalError>;

    /// The current version of instance `id` (its number of records).
    ///
    /// # Errors
    /// As [`Store::read`].
    fn version(&self, id: &InstanceId) -> Result<u64, JournalError> {
        self.read(id).map(|stored| stored.version)
    }

    /// Every stored instance id, sorted.
    ///
    /// # Errors
    /// [`JournalError::Io`] if the storage cannot be listed.
    fn list(&self) -> Result<Vec<InstanceId>, JournalError>;

    /// At most `limit` records of instance `id` after the first `after` (records `after + 1`
    /// to `after + limit`, by version), with the instance's version: a page of its history
    /// without the rest. The default reads the whole journal; a store that can read a range
    /// (PostgreSQL) reads only the page.
    ///
    /// # Errors
    /// As [`Store::read`].
    fn read_page(&self, id: &InstanceId, after: u64, limit: usize) -> Result<Page, JournalError> {
        let stored = self.read(id)?;
        let from = usize::try_from(after).unwrap_or(usize::MAX);
        let records = stored.records.into_iter().skip(from).take(limit).collect();
        Ok(Page { records, version: stored.version })
    }

    /// Whether this store keeps an effects outbox ([`Store::append_with_outbox`] uses its
    /// [`Outbox`]). The driver serializes effects for the outbox only when it does. Default:
    /// no (a [`FileStore`] rebuilds pending effects from the journal on open).
    fn keeps_outbox(&self) -> bool {
        false
    }

    /// [`Store::append`], and in the same atomic write the outbox rows of `outbox`: the
    /// effects the records emit (keyed by idempotency key) and the keys the records
    /// acknowledge. The default ignores the outbox: the journal alone says which effects are
    /// pending.
    ///
    /// # Errors
    /// As [`Store::append`].
    fn append_with_outbox(
        &self,
        id: &InstanceId,
        expected_version: u64,
        records: &[&[u8]],
        outbox: Outbox<'_>,
    ) -> Result<u64, JournalError> {
        let _ = outbox;
        self.append(id, expected_version, records)
    }
}

/// What an append emits and acknowledges, for a store with an effects outbox
/// ([`Store::append_with_outbox`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Outbox<'a> {
    /// The effects the appended records emit.
    pub emitted: &'a [OutboxEffect<'a>],
    /// The idempotency keys of the effects the appended records acknowledge (`done` entries).
    pub done: &'a [&'a str],
    /// When the instance's next timer is due once the records are appended, for a store that
    /// hands due instances to replicas.
    pub next_wake: NextWake,
}

/// When an instance's next timer is due, as an append leaves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NextWake {
    /// The append does not say (it changes no timer): the stored instant stays.
    #[default]
    Unchanged,
    /// The instance has no timer.
    Never,
    /// The next timer is due then.
    At(chrono::DateTime<chrono::Utc>),
}

impl From<Option<chrono::DateTime<chrono::Utc>>> for NextWake {
    fn from(at: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        at.map_or(Self::Never, Self::At)
    }
}

/// One effect for an outbox: its idempotency key and its JSON (the driver's
/// [`Effect`](crate::Effect)).
#[derive(Debug, Clone, Copy)]
pub struct OutboxEffect<'a> {
    /// The idempotency key.
    pub key: &'a str,
    /// The effect as JSON.
    pub effect: &'a [u8],
}

/// A pointer to a store is a store: `Arc<S>`, `Box<dyn Store>`, `&S`, and a handle that
/// derefs to the store it opened (the CLI's store of either kind).
impl<P> Store for P
where
    P: std::ops::Deref + Send + Sync,
    P::Target: Store,
{
    fn create(&self, id: &InstanceId, header: &[u8]) -> Result<(), JournalError> {
        (**self).create(id, header)
    }
    fn append(&self, id: &InstanceId, expected_version: u64, records: &[&[u8]]) -> Result<u64, JournalError> {
        (**self).append(id, expected_version, records)
    }
    fn read(&self, id: &InstanceId) -> Result<Stored, JournalError> {
        (**self).read(id)
    }
    fn version(&self, id: &InstanceId) -> Result<u64, JournalError> {
        (**self).version(id)
    }
    fn list(&self) -> Result<Vec<InstanceId>, JournalError> {
        (**self).list()
    }
    fn read_page(&self, id: &InstanceId, after: u64, limit: usize) -> Result<Page, JournalError> {
        (**self).read_page(id, after, limit)
    }
    fn keeps_outbox(&self) -> bool {
        (**self).keeps_outbox()
    }
    fn append_with_outbox(
        &self,
        id: &InstanceId,
        expected_version: u64,
        records: &[&[u8]],
        outbox: Outbox<'_>,
    ) -> Result<u64, JournalError> {
        (**self).append_with_outbox(id, expected_version, records, outbox)
    }
}

/// Checks every record of an append against `max`.
pub(crate) fn check_sizes(id: &InstanceId, records: &[&[u8]], max: u32) -> Result<(), JournalError> {
    for (index, record) in records.iter().enumerate() {
        if u32::try_from(record.len()).map_or(true, |len| len > max) {
            return Err(JournalError::TooLarge { id: id.clone(), index: Some(index), len: record.len(), max });
        }
    }
    Ok(())
}
