//! `FileStore::repair`: the one way past a corrupt journal, with a backup made first.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::files::{self, Access};
use super::format::{Problem, Stop};
use super::{FileStore, JournalError, RepairReport};
use crate::InstanceId;

impl FileStore {
    /// Repairs instance `id`'s journal: copies the whole file to a new backup next to it, then
    /// cuts the journal at its first damaged or torn frame, keeping every record before it.
    ///
    /// This is the only way past [`JournalError::Corrupt`], and it loses the damaged record
    /// and every record after it (they stay in the backup). The backup is named
    /// `<id>.journal.bak-<n>` with the smallest `n` not taken, so an earlier backup is never
    /// overwritten; it is created 0600 and synced before the journal is cut. A sound journal
    /// is left alone and no backup is made. Repair takes the journal's exclusive lock, so it
    /// is safe while other handles use the instance: they see the shorter journal.
    ///
    /// # Errors
    /// [`JournalError::ReadOnly`] on a read-only store, [`JournalError::NotFound`],
    /// [`JournalError::Symlink`], [`JournalError::Locked`]; [`JournalError::Corrupt`] if the
    /// file header itself is damaged (nothing can be kept: restore the file from a backup);
    /// [`JournalError::StoredTooLarge`] for a frame over the size limit (it is not damage;
    /// raise the limit instead); [`JournalError::Io`].
    pub fn repair(&self, id: &InstanceId) -> Result<RepairReport, JournalError> {
        self.refuse_if_read_only(id)?;
        let (mut file, path) = self.open_locked(id, Access::ReadWrite)?;
        let len = file.metadata().map_err(|e| JournalError::io(&path, e))?.len();
        let (_, scan) = self.scan_all(id, &mut file, &path, len, None)?;
        let damage = match scan.stop {
            Stop::End => None,
            Stop::Torn => None,
            Stop::Problem(Problem::Damaged(damage)) => Some(damage),
            Stop::Problem(problem @ Problem::TooLarge { .. }) => return Err(self.problem(id, scan.end, problem)),
        };
        let mut report = RepairReport {
            id: id.clone(),
            records_kept: scan.version,
            cut_at: scan.end,
            bytes_removed: len - scan.end,
            damage,
            backup: None,
        };
        if report.bytes_removed == 0 {
            return Ok(report);
        }
        let backup = self.back_up(&mut file, &path)?;
        file.set_len(scan.end).map_err(|e| JournalError::io(&path, e))?;
        if self.fsync() {
            file.sync_data().map_err(|e| JournalError::io(&path, e))?;
        }
        self.forget(id);
        report.backup = Some(backup);
        Ok(report)
    }

    /// Copies the locked journal at `path` to a new, synced backup file and returns its path.
    fn back_up(&self, file: &mut File, path: &Path) -> Result<PathBuf, JournalError> {
        let (mut copy, backup) = new_backup(path)?;
        let copied =
            file.seek(SeekFrom::Start(0)).and_then(|_| io::copy(file, &mut copy)).and_then(|_| match self.fsync() {
                true => copy.sync_all(),
                false => Ok(()),
            });
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&backup);
            return Err(JournalError::io(&backup, e));
        }
        self.sync_dir()?;
        Ok(backup)
    }
}

/// Creates `<path>.bak-<n>` for the smallest `n` whose file does not exist yet.
fn new_backup(path: &Path) -> Result<(File, PathBuf), JournalError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".bak-");
    for n in 1u32.. {
        let mut candidate = name.clone();
        candidate.push(n.to_string());
        let candidate = PathBuf::from(candidate);
        match files::create_private(&candidate) {
            Ok(file) => return Ok((file, candidate)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(JournalError::io(&candidate, e)),
        }
    }
    let err = io::Error::new(io::ErrorKind::AlreadyExists, "every backup name is taken");
    Err(JournalError::io(path, err))
}
