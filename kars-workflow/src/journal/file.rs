//! `FileStore`: one append-only, checksummed file per instance, locked and fsynced on commit.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::files::{self, Access, FileIdentity, identity};
use super::format::{self, Problem, ReadError, Scan, Stop};
use super::lock::{self, LockFailure, LockKind};
use super::{DEFAULT_MAX_RECORD_LEN, JournalError, Store, Stored, TailCut, check_sizes};
use crate::InstanceId;

/// The extension of journal files.
const EXTENSION: &str = "journal";

/// When an append counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `fdatasync` before an append returns, and `fsync` of the directory when a journal is
    /// created: an acknowledged append survives a crash of the process or the machine.
    #[default]
    Fsync,
    /// No syncing: an acknowledged append survives a crash of the process but maybe not of the
    /// machine. For tests and benchmarks.
    None,
}

/// How a [`FileStore`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileStoreConfig {
    /// When an append counts as done.
    pub durability: Durability,
    /// The largest record or header accepted, in bytes, on write and on read.
    pub max_record_len: u32,
    /// How long an operation waits for a journal's lock before it fails with
    /// [`JournalError::Locked`].
    pub lock_timeout: Duration,
}

/// The default [`FileStoreConfig::lock_timeout`]: 5 seconds.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for FileStoreConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Fsync,
            max_record_len: DEFAULT_MAX_RECORD_LEN,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }
}

impl FileStoreConfig {
    /// This configuration with another durability.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// This configuration with another record size limit.
    #[must_use]
    pub fn with_max_record_len(mut self, max_record_len: u32) -> Self {
        self.max_record_len = max_record_len;
        self
    }

    /// This configuration with another lock timeout (`Duration::ZERO`: try once, never wait).
    #[must_use]
    pub fn with_lock_timeout(mut self, lock_timeout: Duration) -> Self {
        self.lock_timeout = lock_timeout;
        self
    }
}

/// What this handle last saw at the end of a journal: a hint that spares a rescan.
///
/// It is trusted only while the file has the same identity and length, which holds because a
/// journal only grows by appends and only shrinks by cuts at or before its valid end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tail {
    pub(super) file: FileIdentity,
    pub(super) end: u64,
    pub(super) version: u64,
}

/// Distinguishes temporary files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The default [`Store`]: a directory with one append-only file per instance.
///
/// Writers ([`Store::create`], [`Store::append`], [`FileStore::repair`]) take an exclusive
/// lock on the instance's file (`flock` on Unix, `LockFileEx` on Windows), re-read the version
/// under the lock and write only if it is the expected one, so several threads, handles or
/// processes may share the directory. Readers ([`Store::read`], [`Store::version`],
/// [`Store::list`]) open files read-only, take a shared lock, and never change a byte: they
/// work on read-only files and directories. Every wait for a lock is bounded by
/// [`FileStoreConfig::lock_timeout`]. Locks are advisory: other programs must not write the
/// files. The format and the recovery rules are in the [module documentation](super).
///
/// A handle remembers where each journal it has checked ends, so an append scans only the
/// bytes added since (by any writer): damage to bytes it has already checked is found by the
/// next read or by a new handle, which scan the whole file.
#[derive(Debug)]
pub struct FileStore {
    pub(super) dir: PathBuf,
    pub(super) config: FileStoreConfig,
    pub(super) read_only: bool,
    tails: Mutex<HashMap<InstanceId, Tail>>,
    cuts: Mutex<Vec<TailCut>>,
}

impl FileStore {
    /// Opens the existing journal directory `dir` for reading and writing, with the default
    /// config (change it with [`FileStore::with_config`]).
    ///
    /// # Errors
    /// [`JournalError::NoDirectory`] if `dir` does not exist, [`JournalError::Io`] if it is not
    /// a directory or cannot be inspected.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::at(dir.as_ref(), false)
    }

    /// Opens the existing journal directory `dir` for reading only: reads work on read-only
    /// files and directories, and every write fails with [`JournalError::ReadOnly`].
    ///
    /// # Errors
    /// As [`FileStore::open`].
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::at(dir.as_ref(), true)
    }

    /// Creates the journal directory `dir` (and missing parents) private to its owner (mode
    /// 0700), or opens it if it exists (its mode is left as it is), for reading and writing.
    ///
    /// # Errors
    /// [`JournalError::Io`] if the directory cannot be created or is not a directory.
    pub fn create_dir(dir: impl AsRef<Path>) -> Result<Self, JournalError> {
        let dir = dir.as_ref();
        files::create_dir_private(dir).map_err(|e| JournalError::io(dir, e))?;
        Self::at(dir, false)
    }

    fn at(dir: &Path, read_only: bool) -> Result<Self, JournalError> {
        let meta = fs::metadata(dir).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => JournalError::NoDirectory { dir: dir.to_path_buf() },
            _ => JournalError::io(dir, e),
        })?;
        if !meta.is_dir() {
            let err = io::Error::new(io::ErrorKind::NotADirectory, "the journal path is not a directory");
            return Err(JournalError::io(dir, err));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            config: FileStoreConfig::default(),
            read_only,
            tails: Mutex::new(HashMap::new()),
            cuts: Mutex::new(Vec::new()),
        })
    }

    /// This store with `config`.
    #[must_use]
    pub fn with_config(mut self, config: FileStoreConfig) -> Self {
        self.config = config;
        self
    }

    /// The journal directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> FileStoreConfig {
        self.config
    }

    /// Whether this store was opened with [`FileStore::open_read_only`].
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The file that holds instance `id`'s journal.
    #[must_use]
    pub fn path_of(&self, id: &InstanceId) -> PathBuf {
        self.dir.join(format!("{id}.{EXTENSION}"))
    }

    /// The torn tails this handle's writers cut since the last call, oldest first.
    ///
    /// A host shows them to a person (the command line prints them on stderr): a cut loses no
    /// acknowledged record, but it means an earlier append was interrupted. Cuts are kept
    /// until taken; there is at most one per interrupted append.
    #[must_use]
    pub fn take_tail_cuts(&self) -> Vec<TailCut> {
        std::mem::take(&mut *self.cuts.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(super) fn fsync(&self) -> bool {
        self.config.durability == Durability::Fsync
    }

    pub(super) fn refuse_if_read_only(&self, id: &InstanceId) -> Result<(), JournalError> {
        if self.read_only {
            return Err(JournalError::ReadOnly { id: id.clone(), dir: self.dir.clone() });
        }
        Ok(())
    }

    /// Opens `id`'s journal without following a symbolic link and takes its lock: shared for
    /// [`Access::Read`], exclusive for [`Access::ReadWrite`].
    pub(super) fn open_locked(&self, id: &InstanceId, access: Access) -> Result<(File, PathBuf), JournalError> {
        let path = self.path_of(id);
        let file = files::open(&path, access).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                JournalError::NotFound { id: id.clone() }
            } else if files::is_symlink(&path) {
                JournalError::Symlink { id: id.clone(), path: path.clone() }
            } else {
                JournalError::io(&path, e)
            }
        })?;
        let kind = match access {
            Access::Read => LockKind::Shared,
            Access::ReadWrite => LockKind::Exclusive,
        };
        match lock::lock(&file, kind, self.config.lock_timeout) {
            Ok(()) => Ok((file, path)),
            Err(LockFailure::TimedOut { waited, holder }) => {
                Err(JournalError::Locked { id: id.clone(), waited, holder })
            }
            Err(LockFailure::Io(e)) => Err(JournalError::io(&path, e)),
        }
    }

    fn cached(&self, id: &InstanceId) -> Option<Tail> {
        self.tails.lock().unwrap_or_else(PoisonError::into_inner).get(id).copied()
    }

    fn remember(&self, id: &InstanceId, tail: Tail) {
        self.tails.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), tail);
    }

    pub(super) fn forget(&self, id: &InstanceId) {
        self.tails.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    /// Reads the file header and scans every frame of a locked journal of `len` bytes.
    pub(super) fn scan_all(
        &self,
        id: &InstanceId,
        file: &mut File,
        path: &Path,
        len: u64,
        records: Option<&mut Vec<Vec<u8>>>,
    ) -> Result<(Vec<u8>, Scan), JournalError> {
        let max = self.config.max_record_len;
        file.seek(SeekFrom::Start(0)).map_err(|e| JournalError::io(path, e))?;
        let header = format::read_file_header(&*file, len, max).map_err(|e| self.read_error(id, path, e))?;
        let start = format::frames_start(header.len());
        let scan = format::scan_frames(&*file, start, len, 0, max, records).map_err(|e| JournalError::io(path, e))?;
        Ok((header, scan))
    }

    fn read_error(&self, id: &InstanceId, path: &Path, error: ReadError) -> JournalError {
        match error {
            ReadError::Io(e) => JournalError::io(path, e),
            ReadError::At(offset, problem) => self.problem(id, offset, problem),
        }
    }

    pub(super) fn problem(&self, id: &InstanceId, offset: u64, problem: Problem) -> JournalError {
        match problem {
            Problem::Damaged(reason) => JournalError::Corrupt { id: id.clone(), offset, reason },
            Problem::TooLarge { index, len } => {
                JournalError::StoredTooLarge { id: id.clone(), offset, index, len, max: self.config.max_record_len }
            }
        }
    }

    /// Fails on a scan that stopped at a problem; a torn tail is not one.
    fn check(&self, id: &InstanceId, scan: &Scan) -> Result<(), JournalError> {
        match &scan.stop {
            Stop::End | Stop::Torn => Ok(()),
            Stop::Problem(problem) => {
                // What this handle remembered about the file is not to be trusted any more.
                self.forget(id);
                Err(self.problem(id, scan.end, problem.clone()))
            }
        }
    }

    /// Finds the valid end and version of a locked journal, scanning only what this handle has
    /// not seen. Returns it with the file's length: bytes past the end are a torn tail.
    fn tail(&self, id: &InstanceId, file: &mut File, path: &Path) -> Result<(Tail, u64), JournalError> {
        let meta = file.metadata().map_err(|e| JournalError::io(path, e))?;
        let (len, ident) = (meta.len(), identity(&meta));
        let scan = match self.cached(id) {
            Some(tail) if tail.file == ident && tail.end == len => return Ok((tail, len)),
            Some(tail) if tail.file == ident && tail.end < len => {
                file.seek(SeekFrom::Start(tail.end)).map_err(|e| JournalError::io(path, e))?;
                let max = self.config.max_record_len;
                format::scan_frames(&*file, tail.end, len, tail.version, max, None)
                    .map_err(|e| JournalError::io(path, e))?
            }
            _ => self.scan_all(id, file, path, len, None)?.1,
        };
        self.check(id, &scan)?;
        let tail = Tail { file: ident, end: scan.end, version: scan.version };
        self.remember(id, tail);
        Ok((tail, len))
    }

    /// Cuts the torn tail of a journal locked for writing and reports the cut.
    fn cut_torn_tail(&self, id: &InstanceId, file: &File, path: &Path, end: u64, len: u64) -> Result<(), JournalError> {
        if len > end {
            file.set_len(end).map_err(|e| JournalError::io(path, e))?;
            if self.fsync() {
                file.sync_data().map_err(|e| JournalError::io(path, e))?;
            }
            let cut = TailCut { id: id.clone(), offset: end, bytes: len - end };
            self.cuts.lock().unwrap_or_else(PoisonError::into_inner).push(cut);
        }
        Ok(())
    }

    pub(super) fn sync_dir(&self) -> Result<(), JournalError> {
        #[cfg(unix)]
        if self.fsync() {
            File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| JournalError::io(&self.dir, e))?;
        }
        Ok(())
    }
}

impl Store for FileStore {
    fn create(&self, id: &InstanceId, header: &[u8]) -> Result<(), JournalError> {
        self.refuse_if_read_only(id)?;
        let max = self.config.max_record_len;
        if u32::try_from(header.len()).map_or(true, |len| len > max) {
            return Err(JournalError::TooLarge { id: id.clone(), index: None, len: header.len(), max });
        }
        let path = self.path_of(id);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(JournalError::Symlink { id: id.clone(), path });
            }
            Ok(_) => return Err(JournalError::AlreadyExists { id: id.clone() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(JournalError::io(&path, e)),
        }
        files::remove_leftovers(&self.dir, id.as_ref()).map_err(|e| JournalError::io(&self.dir, e))?;
        // Write the whole header to a locked temporary file, make it durable, then link it into
        // place: the journal appears complete or not at all, and only one of two racing
        // creators wins. The lock tells a later create that the temporary file is not a leftover.
        let (mut file, temp) =
            files::create_temp(&self.dir, id.as_ref(), || TEMP_COUNTER.fetch_add(1, Ordering::Relaxed))
                .map_err(|e| JournalError::io(&self.dir, e))?;
        let written = file.write_all(&format::encode_file_header(header)).and_then(|()| match self.fsync() {
            true => file.sync_all(),
            false => Ok(()),
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(JournalError::io(&temp, e));
        }
        let linked = fs::hard_link(&temp, &path);
        let _ = fs::remove_file(&temp);
        drop(file);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(JournalError::AlreadyExists { id: id.clone() });
            }
            Err(e) => return Err(JournalError::io(&path, e)),
        }
        self.forget(id);
        self.sync_dir()
    }

    fn append(&self, id: &InstanceId, expected_version: u64, records: &[&[u8]]) -> Result<u64, JournalError> {
        self.refuse_if_read_only(id)?;
        check_sizes(id, records, self.config.max_record_len)?;
        let (mut file, path) = self.open_locked(id, Access::ReadWrite)?;
        let (tail, len) = self.tail(id, &mut file, &path)?;
        self.cut_torn_tail(id, &file, &path, tail.end, len)?;
        if tail.version != expected_version {
            return Err(JournalError::Conflict { id: id.clone(), expected: expected_version, actual: tail.version });
        }
        if records.is_empty() {
            return Ok(tail.version);
        }
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.len() + format::FRAME_HEADER).sum());
        format::encode_frames(&mut buf, tail.version, records);
        let written = (|| {
            file.seek(SeekFrom::Start(tail.end))?;
            file.write_all(&buf)?;
            if self.fsync() {
                file.sync_data()?;
            }
            Ok::<_, io::Error>(())
        })();
        if let Err(e) = written {
            // Best effort: drop this handle's own partial write now.
            let _ = file.set_len(tail.end);
            self.forget(id);
            return Err(JournalError::io(&path, e));
        }
        let version = tail.version + records.len() as u64;
        self.remember(id, Tail { file: tail.file, end: tail.end + buf.len() as u64, version });
        Ok(version)
    }

    fn read(&self, id: &InstanceId) -> Result<Stored, JournalError> {
        let (mut file, path) = self.open_locked(id, Access::Read)?;
        let meta = file.metadata().map_err(|e| JournalError::io(&path, e))?;
        let mut records = Vec::new();
        let (header, scan) = self.scan_all(id, &mut file, &path, meta.len(), Some(&mut records))?;
        self.check(id, &scan)?;
        self.remember(id, Tail { file: identity(&meta), end: scan.end, version: scan.version });
        Ok(Stored { header, records, version: scan.version })
    }

    fn version(&self, id: &InstanceId) -> Result<u64, JournalError> {
        let (mut file, path) = self.open_locked(id, Access::Read)?;
        Ok(self.tail(id, &mut file, &path)?.0.version)
    }

    fn list(&self) -> Result<Vec<InstanceId>, JournalError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| JournalError::io(&self.dir, e))?;
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| JournalError::io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(EXTENSION)?.strip_suffix('.')) else {
                continue;
            };
            if let Ok(id) = InstanceId::new(stem) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }
}
