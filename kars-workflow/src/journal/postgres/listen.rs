//! Wake-ups for replicas: a connection of its own that `LISTEN`s on the store's channel and
//! turns each notification into a hint, reconnecting when it drops (and waking the replica
//! then, since notifications sent meanwhile are lost). Only a hint: replicas poll anyway.

use std::sync::mpsc;
use std::time::Duration;

use tokio_postgres::{AsyncMessage, NoTls};

use super::schema::Schema;
use super::{JournalError, PgStore};

/// The notification channel of a schema (at most 63 bytes, as PostgreSQL identifiers).
pub(super) fn channel(schema: &Schema) -> String {
    format!("kars_{}", schema.name()).chars().take(63).collect()
}

/// Hints that something may be due, from [`PgStore::listen`]. Dropping it stops listening.
#[derive(Debug)]
pub struct Wakeups {
    rx: mpsc::Receiver<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Wakeups {
    /// Waits up to `timeout` for a hint; whether one came. Hints that arrived meanwhile are
    /// taken together (one wake-up for many appends).
    pub fn wait(&self, timeout: Duration) -> bool {
        let woke = match self.rx.recv_timeout(timeout) {
            Ok(()) => true,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Notifications off (a transaction-mode pooler): nothing will ever come, and
                // the wait still lasts its time rather than spinning on the database.
                std::thread::sleep(timeout);
                false
            }
        };
        while self.rx.try_recv().is_ok() {}
        woke
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PgStore {
    /// Starts listening for the hints appends send (unless the store was opened with
    /// notifications off, when it never wakes early). The first hint comes at once, and one
    /// after every reconnect.
    ///
    /// # Errors
    /// None today; a connection that fails is retried in the background.
    pub fn listen(&self) -> Result<Wakeups, JournalError> {
        let (tx, rx) = mpsc::channel();
        let (pg, channel) = (self.shared.pg.clone(), self.shared.notify.clone());
        let task = self.handle.spawn(async move {
            let Some(channel) = channel else { return };
            let mut pause = Duration::from_millis(100);
            loop {
                if let Ok((client, mut connection)) = pg.connect(NoTls).await {
                    let (hint, mut hints) = tokio::sync::mpsc::unbounded_channel();
                    // The connection delivers notifications only while it is polled.
                    let conn = tokio::spawn(async move {
                        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            if matches!(message, AsyncMessage::Notification(_)) && hint.send(()).is_err() {
                                break;
                            }
                        }
                    });
                    if client.batch_execute(&format!("LISTEN \"{channel}\"")).await.is_ok() {
                        pause = Duration::from_millis(100);
                        // Listening (again): whatever was notified while not listening is lost.
                        if tx.send(()).is_err() {
                            conn.abort();
                            return;
                        }
                        while hints.recv().await.is_some() {
                            if tx.send(()).is_err() {
                                conn.abort();
                                return;
                            }
                        }
                    }
                    conn.abort();
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        });
        Ok(Wakeups { rx, task })
    }
}
