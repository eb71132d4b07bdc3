//! `ConsoleNotifier`: writes each notification as a line to any `io::Write`.

use std::collections::HashSet;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use super::{AdapterError, Notification, Notifier};

/// A [`Notifier`] that writes one line per notification (`[channel #kars-releases] message`)
/// to a writer, and drops a key it has already written (within this process).
///
/// Line breaks in a message are written as `\n` so each notification stays one line.
#[derive(Debug)]
pub struct ConsoleNotifier<W> {
    inner: Mutex<Inner<W>>,
}

#[derive(Debug)]
struct Inner<W> {
    out: W,
    seen: HashSet<String>,
}

impl ConsoleNotifier<io::Stdout> {
    /// A notifier that writes to standard output.
    #[must_use]
    pub fn stdout() -> Self {
        Self::new(io::stdout())
    }
}

impl<W: Write> ConsoleNotifier<W> {
    /// A notifier that writes to `out`.
    #[must_use]
    pub fn new(out: W) -> Self {
        Self { inner: Mutex::new(Inner { out, seen: HashSet::new() }) }
    }

    /// The writer back.
    #[must_use]
    pub fn into_inner(self) -> W {
        self.inner.into_inner().unwrap_or_else(PoisonError::into_inner).out
    }
}

impl<W: Write> Notifier for ConsoleNotifier<W> {
    fn notify(&self, n: &Notification) -> Result<(), AdapterError> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.seen.contains(&n.key) {
            return Ok(());
        }
        let message = n.message.replace('\\', "\\\\").replace('\r', "\\r").replace('\n', "\\n");
        writeln!(inner.out, "[{}] {message}", n.to)
            .and_then(|()| inner.out.flush())
            .map_err(|e| AdapterError::transient("console", "notify", Some(&n.key), format!("writing failed: {e}")))?;
        inner.seen.insert(n.key.clone());
        Ok(())
    }
}
