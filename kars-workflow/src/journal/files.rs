//! The journal's file-system rules: no symbolic links followed, private modes, and temporary
//! files that a later `create` can tell from one in progress.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::lock::{self, LockFailure, LockKind};

/// How a journal file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// `O_RDONLY`: readers.
    Read,
    /// `O_RDWR`: writers.
    ReadWrite,
}

/// A file's identity (device and inode on Unix), so a replaced file is noticed.
pub(crate) type FileIdentity = Option<(u64, u64)>;

#[cfg(unix)]
pub(crate) fn identity(meta: &fs::Metadata) -> FileIdentity {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
pub(crate) fn identity(_: &fs::Metadata) -> FileIdentity {
    None
}

fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options
}

/// Opens an existing journal file without following a symbolic link (`O_NOFOLLOW`): a link
/// fails to open, so its target is never touched.
pub(crate) fn open(path: &Path, access: Access) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(access == Access::ReadWrite);
    no_follow(&mut options).open(path)
}

/// Whether `path` is a symbolic link (to explain why an open failed).
pub(crate) fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink())
}

/// Creates a new file readable and writable by its owner only (0600); fails if `path` exists,
/// even as a dangling symbolic link.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    no_follow(&mut options).open(path)
}

/// Creates `dir` and any missing parents, each private to its owner (0700).
pub(crate) fn create_dir_private(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The name of a temporary file for instance `id`: `.<id>.<pid>-<n>.tmp`.
pub(crate) fn temp_path(dir: &Path, id: &str, n: u64) -> PathBuf {
    dir.join(format!(".{id}.{}-{n}.tmp", std::process::id()))
}

/// Whether `name` is a temporary file of instance `id` (the part between the id and `.tmp` is
/// digits and dashes, so no other id's files match, as ids of other instances add a dot).
fn is_temp_of(name: &str, id: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_prefix(id))
        .and_then(|n| n.strip_prefix('.'))
        .and_then(|n| n.strip_suffix(".tmp"))
        .is_some_and(|middle| !middle.is_empty() && middle.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
}

/// Removes the temporary files of instance `id` that an interrupted `create` left behind.
///
/// A `create` holds an exclusive lock on its temporary file from just after creating it until
/// it has removed it, so a temporary file whose lock can be taken is a leftover: its creator
/// died (the kernel dropped the lock) or is an older build. A `create` in progress keeps its
/// lock, and its file is left alone. The lock is checked on the file found at the name, and the
/// name is removed only while it still names that file. Cleaning is best effort: a file that
/// cannot be removed is left for the next `create`.
pub(crate) fn remove_leftovers(dir: &Path, id: &str) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_str().is_some_and(|name| is_temp_of(name, id)) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = open(&path, Access::Read) else { continue };
        if lock::lock(&file, LockKind::Exclusive, std::time::Duration::ZERO).is_err() {
            continue; // A create in progress.
        }
        if same_file(&path, &file) {
            let _ = fs::remove_file(&path);
        }
    }
    Ok(())
}

/// Whether `path` (not followed) still names the open `file`.
pub(crate) fn same_file(path: &Path, file: &File) -> bool {
    match (fs::symlink_metadata(path), file.metadata()) {
        (Ok(at_path), Ok(open)) => identity(&at_path).is_some() && identity(&at_path) == identity(&open),
        _ => false,
    }
}

/// Creates a temporary file for instance `id` and takes its lock, so that a concurrent
/// [`remove_leftovers`] leaves it alone. Retries if the name is taken or the file was removed
/// by a cleaner between its creation and the lock.
pub(crate) fn create_temp(dir: &Path, id: &str, mut next: impl FnMut() -> u64) -> io::Result<(File, PathBuf)> {
    let mut last = None;
    for _ in 0..8 {
        let path = temp_path(dir, id, next());
        let file = match create_private(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        // A cleaner holds the lock only while it removes the file, so this wait is short.
        match lock::lock(&file, LockKind::Exclusive, std::time::Duration::from_secs(5)) {
            Ok(()) => {}
            Err(LockFailure::Io(e)) => return Err(e),
            Err(LockFailure::TimedOut { .. }) => {
                last = Some(io::Error::new(io::ErrorKind::WouldBlock, "a temporary file stayed locked"));
                continue;
            }
        }
        if same_file(&path, &file) {
            return Ok((file, path));
        }
        last = Some(io::Error::new(io::ErrorKind::NotFound, "a temporary file was removed while being created"));
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary file could be created")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_files_are_matched_to_their_instance_only() {
        assert!(is_temp_of(".b.123-0.tmp", "b"));
        assert!(is_temp_of(".b.2.123-0.tmp", "b.2"));
        assert!(!is_temp_of(".b.2.123-0.tmp", "b"), "belongs to `b.2`");
        assert!(!is_temp_of(".b.1-2.123-0.tmp", "b"), "belongs to `b.1-2`");
        assert!(!is_temp_of("b.journal", "b"));
        assert!(!is_temp_of(".b..tmp", "b"));
        assert!(!is_temp_of(".bc.1-0.tmp", "b"));
    }
}
