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
//! let store = FileStore::open(dir.path())?;
//! let id = InstanceId::new("kars-release")?;
//! store.create(&id, br#"{"spec":"kars-release"}"#)?;
//! let v = store.append(&id, 0, &[br#"{"started":"2026-W48"}"#])?;
//! assert_eq!(v, 1);
//! // A writer that has not seen version 1 loses.
//! assert!(matches!(store.append(&id, 0, &[b"late"]), Err(JournalError::Conflict { actual: 1, .. })));
//! assert_eq!(store.read(&id)?.records.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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
//! A crash can leave a *torn tail*: an incomplete last frame, a last frame whose payload crc
//! fails and which runs exactly to the end of the file, or a damaged region followed only by
//! zero bytes (space the file system allocated but never wrote). A torn tail holds only an
//! append that was never acknowledged, so it is cut off (the file is truncated under the lock)
//! and never reported as an error. Any other damage — a bad file header, a frame crc that fails
//! with non-zero bytes after it, a payload crc that fails with a later frame after it — is
//! corruption *before* the tail and is a hard [`JournalError::Corrupt`]: acknowledged records
//! are never dropped silently.

mod crc;
mod error;
mod file;
mod format;
mod memory;

use std::fmt;

use crate::InstanceId;

pub use error::{Corruption, JournalError};
pub use file::{Durability, FileStore, FileStoreConfig};
pub use memory::MemoryStore;

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
    /// header is longer than the store's limit, [`JournalError::Io`] if storage fails.
    fn create(&self, id: &InstanceId, header: &[u8]) -> Result<(), JournalError>;

    /// Appends `records` (all or none) to instance `id` if its version is `expected_version`,
    /// and returns the new version (`expected_version + records.len()`).
    ///
    /// Appending no records checks the version and returns it.
    ///
    /// # Errors
    /// [`JournalError::Conflict`] if the version is not `expected_version`,
    /// [`JournalError::NotFound`], [`JournalError::TooLarge`] for an oversized record,
    /// [`JournalError::Corrupt`] for damage before the tail, [`JournalError::Io`].
    fn append(&self, id: &InstanceId, expected_version: u64, records: &[&[u8]]) -> Result<u64, JournalError>;

    /// Reads instance `id`'s header and every acknowledged record.
    ///
    /// # Errors
    /// [`JournalError::NotFound`], [`JournalError::Corrupt`] for damage before the tail,
    /// [`JournalError::Io`].
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
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
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
}

/// Checks every record of an append against `max`.
fn check_sizes(id: &InstanceId, records: &[&[u8]], max: u32) -> Result<(), JournalError> {
    for (index, record) in records.iter().enumerate() {
        if u32::try_from(record.len()).map_or(true, |len| len > max) {
            return Err(JournalError::TooLarge { id: id.clone(), index: Some(index), len: record.len(), max });
        }
    }
    Ok(())
}
