//! `FileStore`: one append-only, checksummed file per instance, locked and fsynced on commit.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::format::{self, Scan};
use super::{DEFAULT_MAX_RECORD_LEN, JournalError, Store, Stored, check_sizes};
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
    /// The largest record or header accepted, in bytes.
    pub max_record_len: u32,
}

impl Default for FileStoreConfig {
    fn default() -> Self {
        Self { durability: Durability::Fsync, max_record_len: DEFAULT_MAX_RECORD_LEN }
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
}

/// What this handle last saw at the end of a journal: a hint that spares a rescan.
///
/// It is trusted only while the file has the same identity and length, which holds because a
/// journal only grows by appends and only shrinks by cutting a torn tail past its valid end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tail {
    file: FileIdentity,
    end: u64,
    version: u64,
}

/// A file's identity (device and inode on Unix), so a replaced file is noticed.
type FileIdentity = Option<(u64, u64)>;

#[cfg(unix)]
fn identity(meta: &fs::Metadata) -> FileIdentity {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(_: &fs::Metadata) -> FileIdentity {
    None
}

/// Distinguishes temporary files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The default [`Store`]: a directory with one append-only file per instance.
///
/// Appends take an exclusive lock on the instance's file (`flock` on Unix, `LockFileEx` on
/// Windows), re-read the version under the lock and write only if it is the expected one, so
/// several threads, handles or processes may share the directory. Locks are advisory: other
/// programs must not write the files. Reads also take the lock, because they cut torn tails.
/// The format is described in the [module documentation](super).
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    config: FileStoreConfig,
    tails: Mutex<HashMap<InstanceId, Tail>>,
}

impl FileStore {
    /// Opens (and creates, if missing) the journal directory `dir` with the default config.
    ///
    /// # Errors
    /// [`JournalError::Io`] if the directory cannot be created or is not a directory.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::with_config(dir, FileStoreConfig::default())
    }

    /// Opens (and creates, if missing) the journal directory `dir` with `config`.
    ///
    /// # Errors
    /// [`JournalError::Io`] if the directory cannot be created or is not a directory.
    pub fn with_config(dir: impl AsRef<Path>, config: FileStoreConfig) -> Result<Self, JournalError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| JournalError::io(&dir, e))?;
        let meta = fs::metadata(&dir).map_err(|e| JournalError::io(&dir, e))?;
        if !meta.is_dir() {
            let err = io::Error::new(io::ErrorKind::NotADirectory, "the journal path is not a directory");
            return Err(JournalError::io(&dir, err));
        }
        Ok(Self { dir, config, tails: Mutex::new(HashMap::new()) })
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

    /// The file that holds instance `id`'s journal.
    #[must_use]
    pub fn path_of(&self, id: &InstanceId) -> PathBuf {
        self.dir.join(format!("{id}.{EXTENSION}"))
    }

    fn fsync(&self) -> bool {
        self.config.durability == Durability::Fsync
    }

    /// Opens `id`'s journal for reading and writing and takes its exclusive lock.
    fn open_locked(&self, id: &InstanceId) -> Result<(File, PathBuf), JournalError> {
        let path = self.path_of(id);
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                JournalError::NotFound { id: id.clone() }
            } else {
                JournalError::io(&path, e)
            }
        })?;
        file.lock().map_err(|e| JournalError::io(&path, e))?;
        Ok((file, path))
    }

    fn cached(&self, id: &InstanceId) -> Option<Tail> {
        self.tails.lock().unwrap_or_else(PoisonError::into_inner).get(id).copied()
    }

    fn remember(&self, id: &InstanceId, tail: Tail) {
        self.tails.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), tail);
    }

    fn forget(&self, id: &InstanceId) {
        self.tails.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    /// Finds the valid end and version of a locked journal, scanning only what this handle has
    /// not seen, and cuts a torn tail.
    fn tail(&self, id: &InstanceId, file: &mut File, path: &Path) -> Result<Tail, JournalError> {
        let meta = file.metadata().map_err(|e| JournalError::io(path, e))?;
        let (len, ident) = (meta.len(), identity(&meta));
        let scan =
            match self.cached(id) {
                Some(tail) if tail.file == ident && tail.end == len => return Ok(tail),
                Some(tail) if tail.file == ident && tail.end < len => {
                    let mut buf = Vec::new();
                    file.seek(SeekFrom::Start(tail.end)).map_err(|e| JournalError::io(path, e))?;
                    file.read_to_end(&mut buf).map_err(|e| JournalError::io(path, e))?;
                    format::scan_frames(&buf, tail.end, tail.version, |_| {})
                        .map_err(|(offset, reason)| JournalError::Corrupt { id: id.clone(), offset, reason })?
                }
                _ => {
                    let buf = read_all(file, path)?;
                    let (_, start) = format::parse_file_header(&buf)
                        .map_err(|(offset, reason)| JournalError::Corrupt { id: id.clone(), offset, reason })?;
                    format::scan_frames(&buf[start..], start as u64, 0, |_| {})
                        .map_err(|(offset, reason)| JournalError::Corrupt { id: id.clone(), offset, reason })?
                }
            };
        self.cut_torn_tail(file, path, scan)?;
        let tail = Tail { file: ident, end: scan.end, version: scan.version };
        self.remember(id, tail);
        Ok(tail)
    }

    fn cut_torn_tail(&self, file: &File, path: &Path, scan: Scan) -> Result<(), JournalError> {
        if scan.torn {
            file.set_len(scan.end).map_err(|e| JournalError::io(path, e))?;
            if self.fsync() {
                file.sync_data().map_err(|e| JournalError::io(path, e))?;
            }
        }
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), JournalError> {
        #[cfg(unix)]
        if self.fsync() {
            File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| JournalError::io(&self.dir, e))?;
        }
        Ok(())
    }
}

fn read_all(file: &mut File, path: &Path) -> Result<Vec<u8>, JournalError> {
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(|e| JournalError::io(path, e))?;
    file.read_to_end(&mut buf).map_err(|e| JournalError::io(path, e))?;
    Ok(buf)
}

impl Store for FileStore {
    fn create(&self, id: &InstanceId, header: &[u8]) -> Result<(), JournalError> {
        let max = self.config.max_record_len;
        if u32::try_from(header.len()).map_or(true, |len| len > max) {
            return Err(JournalError::TooLarge { id: id.clone(), index: None, len: header.len(), max });
        }
        let path = self.path_of(id);
        if path.exists() {
            return Err(JournalError::AlreadyExists { id: id.clone() });
        }
        // Write the whole header to a temporary file, make it durable, then link it into place:
        // the journal appears complete or not at all, and only one of two racing creators wins.
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = self.dir.join(format!(".{id}.{}-{n}.tmp", std::process::id()));
        let written = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
            file.write_all(&format::encode_file_header(header))?;
            if self.fsync() {
                file.sync_all()?;
            }
            Ok::<_, io::Error>(())
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(JournalError::io(&temp, e));
        }
        let linked = fs::hard_link(&temp, &path);
        let _ = fs::remove_file(&temp);
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
        check_sizes(id, records, self.config.max_record_len)?;
        let (mut file, path) = self.open_locked(id)?;
        let tail = self.tail(id, &mut file, &path)?;
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
            // Best effort: drop the partial write now; the next open would cut it anyway.
            let _ = file.set_len(tail.end);
            self.forget(id);
            return Err(JournalError::io(&path, e));
        }
        let version = tail.version + records.len() as u64;
        self.remember(id, Tail { file: tail.file, end: tail.end + buf.len() as u64, version });
        Ok(version)
    }

    fn read(&self, id: &InstanceId) -> Result<Stored, JournalError> {
        let (mut file, path) = self.open_locked(id)?;
        let buf = read_all(&mut file, &path)?;
        let corrupt = |(offset, reason)| JournalError::Corrupt { id: id.clone(), offset, reason };
        let (header, start) = format::parse_file_header(&buf).map_err(corrupt)?;
        let mut records = Vec::new();
        let scan =
            format::scan_frames(&buf[start..], start as u64, 0, |p| records.push(p.to_vec())).map_err(corrupt)?;
        self.cut_torn_tail(&file, &path, scan)?;
        let meta = file.metadata().map_err(|e| JournalError::io(&path, e))?;
        self.remember(id, Tail { file: identity(&meta), end: scan.end, version: scan.version });
        Ok(Stored { header: header.to_vec(), records, version: scan.version })
    }

    fn version(&self, id: &InstanceId) -> Result<u64, JournalError> {
        let (mut file, path) = self.open_locked(id)?;
        Ok(self.tail(id, &mut file, &path)?.version)
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
