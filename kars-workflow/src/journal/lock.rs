//! Bounded waits for a journal file's lock, and who holds it when a wait times out.
//!
//! Journal files are locked with `flock` (std's `File::lock`): a lock belongs to an open file,
//! so two handles in one process exclude each other as two processes do, a shared lock can be
//! taken on a file opened read-only, and the kernel drops a lock when its holder dies. `flock`
//! cannot name its holder itself, but Linux lists every lock with the pid that took it in
//! `/proc/locks`; that is read only when a wait times out, so the journal files stay free of
//! lock metadata and readers never need to write anything.

use std::fmt;
use std::fs::{File, TryLockError};
use std::time::{Duration, Instant};

/// Who holds a journal's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// The process id, as the operating system reports it.
    pub pid: u32,
    /// The process's command name (`/proc/PID/comm`), when readable.
    pub command: Option<String>,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "process {}", self.pid)?;
        if let Some(command) = &self.command {
            write!(f, " (`{command}`)")?;
        }
        if self.pid == std::process::id() {
            f.write_str(", this process")?;
        }
        Ok(())
    }
}

/// The lock a journal operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// Readers: many at once, none while a writer holds the lock.
    Shared,
    /// Writers: alone.
    Exclusive,
}

/// Why a lock was not taken.
#[derive(Debug)]
pub(crate) enum LockFailure {
    /// The timeout passed; `holder` holds the lock when known.
    TimedOut { waited: Duration, holder: Option<LockHolder> },
    /// The operating system refused.
    Io(std::io::Error),
}

/// Takes `kind` of lock on `file`, polling for at most `timeout`.
///
/// The poll sleeps 1 ms, then twice as long each time up to 25 ms, so a lock freed during the
/// wait is taken within 25 ms and an idle wait costs about 40 wake-ups a second.
// A lock wait is file-system IO in the journal, not engine logic: it measures real time.
#[allow(clippy::disallowed_methods)]
pub(crate) fn lock(file: &File, kind: LockKind, timeout: Duration) -> Result<(), LockFailure> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let attempt = match kind {
            LockKind::Shared => file.try_lock_shared(),
            LockKind::Exclusive => file.try_lock(),
        };
        match attempt {
            Ok(()) => return Ok(()),
            Err(TryLockError::Error(e)) => return Err(LockFailure::Io(e)),
            Err(TryLockError::WouldBlock) => {}
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(LockFailure::TimedOut { waited, holder: holder_of(file) });
        }
        std::thread::sleep(pause.min(timeout - waited));
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// The first process `/proc/locks` lists as holding a lock on `file`.
#[cfg(target_os = "linux")]
fn holder_of(file: &File) -> Option<LockHolder> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let (major, minor, ino) = (dev_major(meta.dev()), dev_minor(meta.dev()), meta.ino());
    // A lock that changes hands while the table is read can be missing from one reading:
    // look a few times before saying nobody is named.
    let pid = (0..3).find_map(|attempt| {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        holders(&locks, major, minor, ino).next()
    })?;
    let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|c| c.trim_end().to_owned());
    Some(LockHolder { pid, command })
}

#[cfg(not(target_os = "linux"))]
fn holder_of(_: &File) -> Option<LockHolder> {
    None
}

/// The major number of a Linux device number (glibc's `gnu_dev_major`).
#[cfg(target_os = "linux")]
fn dev_major(dev: u64) -> u64 {
    ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)
}

/// The minor number of a Linux device number (glibc's `gnu_dev_minor`).
#[cfg(target_os = "linux")]
fn dev_minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & !0xff)
}

/// The pids of granted locks on inode `ino` of device `major:minor` in a `/proc/locks` text.
///
/// A line reads `1: FLOCK  ADVISORY  WRITE 1234 fe:00:5816360 0 EOF` (device numbers in hex,
/// the inode in decimal); lines with `->` are waiters, not holders.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn holders(locks: &str, major: u64, minor: u64, ino: u64) -> impl Iterator<Item = u32> + '_ {
    locks.lines().filter_map(move |line| {
        let mut fields = line.split_whitespace().skip(1);
        let (_class, _kind, _mode) = (fields.next()?, fields.next()?, fields.next()?);
        let pid = fields.next()?.parse::<u32>().ok().filter(|&pid| pid > 0)?;
        let mut file = fields.next()?.split(':');
        let maj = u64::from_str_radix(file.next()?, 16).ok()?;
        let min = u64::from_str_radix(file.next()?, 16).ok()?;
        let inode = file.next()?.parse::<u64>().ok()?;
        (maj == major && min == minor && inode == ino).then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_read_from_proc_locks() {
        let text = "1: FLOCK  ADVISORY  WRITE 16309 fe:00:5816360 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 17000 fe:00:5816360 0 EOF\n\
                    2: FLOCK  ADVISORY  READ 16186 fe:00:10133507 0 EOF\n\
                    3: OFDLCK ADVISORY  READ -1 fe:00:5816360 0 EOF\n\
                    4: POSIX  ADVISORY  WRITE 200 08:01:5816360 0 EOF\n";
        assert_eq!(holders(text, 0xfe, 0, 5_816_360).collect::<Vec<_>>(), [16309]);
        assert_eq!(holders(text, 8, 1, 5_816_360).collect::<Vec<_>>(), [200]);
        assert_eq!(holders(text, 0xfe, 0, 1).count(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn device_numbers_split_as_glibc_does() {
        // makedev(254, 0) and makedev(259, 65536 + 3).
        assert_eq!((dev_major(0xfe00), dev_minor(0xfe00)), (254, 0));
        let dev = (259u64 & 0xfff) << 8 | (65_539u64 & 0xff) | ((65_539u64 & !0xff) << 12);
        assert_eq!((dev_major(dev), dev_minor(dev)), (259, 65_539));
    }
}
