//! The store's operations, as async functions over the pool: create, append (with the
//! resolution of a commit whose outcome was lost), read, list.

use std::time::Duration;

use deadpool_postgres::{Client, Pool};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::error::{PgError, PgOperation};
use super::lease::Lease;
use super::sql::Sql;
use super::{OutboxRow, OwnedOutbox};
use crate::InstanceId;
use crate::journal::{JournalError, NextWake, Page, Stored};

/// How many times an operation that lost its connection is tried again (each on a fresh
/// connection), and the pause before each try: about ten seconds in all, long enough for a
/// server restart or a failover.
const RETRY_PAUSES: [Duration; 9] = [
    Duration::from_millis(20),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(3),
    Duration::from_secs(3),
];

/// What the operations share: the pool and the statements.
#[derive(Debug)]
pub(super) struct Shared {
    pub pool: Pool,
    pub sql: Sql,
    pub max_record_len: u32,
    /// The channel appends notify replicas on, unless notifications are off.
    pub notify: Option<String>,
    /// How to open a connection outside the pool (the listener's).
    pub pg: tokio_postgres::Config,
    /// How long an effect is left to the writer that emitted it before replicas claim it.
    pub effect_grace: Duration,
}

pub(super) fn query(operation: PgOperation) -> impl Fn(tokio_postgres::Error) -> PgError {
    move |source| PgError::Query { operation, source }
}

pub(super) fn version_of(id: &InstanceId, stored: i64) -> Result<u64, PgError> {
    u64::try_from(stored).map_err(|_| PgError::BadStoredValue { id: id.clone(), what: "a negative version" })
}

pub(super) fn to_i64(id: &InstanceId, value: u64) -> Result<i64, PgError> {
    i64::try_from(value).map_err(|_| PgError::BadStoredValue { id: id.clone(), what: "a version past 2^63" })
}

impl Shared {
    pub async fn client(&self, operation: PgOperation) -> Result<Client, PgError> {
        self.pool.get().await.map_err(|e| {
            // The pool's words, then the client's and the operating system's below them.
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !detail.contains(&text) {
                    detail.push_str(": ");
                    detail.push_str(&text);
                }
                source = cause.source();
            }
            PgError::Pool { operation, detail }
        })
    }

    /// Runs `op` again on a fresh connection while it fails by losing its connection.
    pub(super) async fn retrying<T, F, Fut>(&self, mut op: F) -> Result<T, JournalError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, JournalError>>,
    {
        let mut pauses = RETRY_PAUSES.iter();
        loop {
            match op().await {
                Err(JournalError::Postgres(e)) if e.is_connection_loss() => match pauses.next() {
                    Some(pause) => tokio::time::sleep(*pause).await,
                    None => return Err(JournalError::Postgres(e)),
                },
                other => return other,
            }
        }
    }

    /// Runs `sql` (a statement of [`Sql`], prepared once per connection) with `params` on a
    /// pooled connection, once; its rows.
    async fn rows_once(
        &self,
        op: PgOperation,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, JournalError> {
        let client = self.client(op).await?;
        let stmt = client.prepare_cached(sql).await.map_err(query(op))?;
        Ok(client.query(&stmt, params).await.map_err(query(op))?)
    }

    /// As `rows_once`, for a statement that returns no rows: how many it changed.
    async fn execute_once(
        &self,
        op: PgOperation,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, JournalError> {
        let client = self.client(op).await?;
        let stmt = client.prepare_cached(sql).await.map_err(query(op))?;
        Ok(client.execute(&stmt, params).await.map_err(query(op))?)
    }

    /// `sql`'s rows, run again on a fresh connection while it loses its connection (a
    /// statement that is safe to run twice).
    pub(super) async fn rows(
        &self,
        op: PgOperation,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, JournalError> {
        self.retrying(|| self.rows_once(op, sql, params)).await
    }

    /// How many rows `sql` changed, run again on a fresh connection while it loses its
    /// connection (a statement that is safe to run twice).
    pub(super) async fn execute(
        &self,
        op: PgOperation,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, JournalError> {
        self.retrying(|| self.execute_once(op, sql, params)).await
    }

    pub async fn create(&self, id: &InstanceId, header: &[u8]) -> Result<(), JournalError> {
        let max = self.max_record_len;
        if u32::try_from(header.len()).map_or(true, |len| len > max) {
            return Err(JournalError::TooLarge { id: id.clone(), index: None, len: header.len(), max });
        }
        let mut attempts = 0u32;
        let params: [&(dyn ToSql + Sync); 2] = [&id.as_str(), &header];
        let inserted = self
            .retrying(|| {
                attempts += 1;
                self.execute_once(PgOperation::Create, &self.sql.create, &params)
            })
            .await?;
        // A retry after a lost connection may find its own insert: the same header, no records.
        if inserted == 1 || (attempts > 1 && self.read(id).await.is_ok_and(|s| s.version == 0 && s.header == header)) {
            return Ok(());
        }
        Err(JournalError::AlreadyExists { id: id.clone() })
    }

    /// Appends `records` if the version is `expected`, with the outbox rows. A failure that
    /// lost the connection leaves the commit's outcome unknown: the instance is re-read and
    /// compared, and the append is tried again only if it did not happen.
    pub async fn append(
        &self,
        id: &InstanceId,
        expected: u64,
        records: &[Vec<u8>],
        outbox: &OwnedOutbox,
        lease: Option<&Lease>,
    ) -> Result<u64, JournalError> {
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        crate::journal::check_sizes(id, &refs, self.max_record_len)?;
        if records.is_empty() {
            let version = self.version(id).await?;
            return if version == expected {
                Ok(version)
            } else {
                Err(JournalError::Conflict { id: id.clone(), expected, actual: version })
            };
        }
        let mut pauses = RETRY_PAUSES.iter();
        // Whether an attempt failed in a way that leaves its commit's outcome unknown.
        let mut ambiguous = false;
        loop {
            match self.try_append(id, expected, &refs, outbox, lease).await {
                Ok(version) => return Ok(version),
                Err(JournalError::Postgres(e)) if e.is_connection_loss() => {
                    ambiguous = true;
                    let Some(pause) = pauses.next() else {
                        return Err(PgError::OutcomeUnknown { id: id.clone(), expected }.into());
                    };
                    tokio::time::sleep(*pause).await;
                    match self.resolve(id, expected, records).await {
                        Ok(Resolution::Committed(version)) => return Ok(version),
                        Ok(Resolution::NotCommitted) => {}
                        Ok(Resolution::Conflict) => {
                            let actual = self.version(id).await?;
                            return Err(JournalError::Conflict { id: id.clone(), expected, actual });
                        }
                        // Still unknown: the next attempt (or its refusal) will tell.
                        Err(JournalError::Postgres(e)) if e.is_connection_loss() => {}
                        Err(e) => return Err(e),
                    }
                }
                // A refusal (another version, a lost lease) after an attempt whose outcome was
                // lost may be that attempt's own commit.
                Err(refused) if ambiguous && is_refusal(&refused) => {
                    let resolution = self.resolve(id, expected, records).await;
                    return settle(id, expected, refused, resolution);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_append(
        &self,
        id: &InstanceId,
        expected: u64,
        records: &[&[u8]],
        outbox: &OwnedOutbox,
        lease: Option<&Lease>,
    ) -> Result<u64, JournalError> {
        let op = PgOperation::Append;
        let expected_i = to_i64(id, expected)?;
        let count = to_i64(id, records.len() as u64)?;
        let id_str = id.as_str();
        let client = self.client(op).await?;
        let (set_wake, wake) = match outbox.next_wake {
            NextWake::Unchanged => (false, None),
            NextWake::Never => (true, None),
            NextWake::At(at) => (true, Some(at)),
        };
        // A hint for replicas that something may be due (a new timer, a new effect); sent on
        // commit, and the same notification twice in one transaction is sent once.
        let notify = self.notify.is_some() && (outbox.next_wake != NextWake::Unchanged || !outbox.keys.is_empty());
        let channel = self.notify.as_deref().unwrap_or_default();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &id_str,
            &expected_i,
            &count,
            &set_wake,
            &wake,
            &records,
            &outbox.keys,
            &outbox.effects,
            &outbox.done,
            &channel,
            &notify,
        ];
        let fence = match lease {
            None => None,
            Some(lease) => Some((to_i64(id, lease.epoch)?, lease.owner.as_str())),
        };
        let sql = match &fence {
            None => &self.sql.append,
            Some((epoch, owner)) => {
                params.push(epoch);
                params.push(owner);
                &self.sql.append_fenced
            }
        };
        let stmt = client.prepare_cached(sql).await.map_err(query(op))?;
        // One transaction (READ COMMITTED) of one statement (see `Sql::append`): the
        // compare-and-set on the version (and the lease), the records, the outbox rows and the
        // hint, written only if the version (and the lease) matched. `BEGIN`, the statement and
        // `COMMIT` are pipelined (tokio-postgres sends each request when its future is first
        // polled, and `join!` polls them in order): one round trip. A failed statement makes
        // the `COMMIT` a rollback, and its error is the append's.
        let (begun, bumped, committed) = tokio::join!(
            client.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED"),
            client.query_opt(&stmt, &params),
            client.batch_execute("COMMIT"),
        );
        begun.map_err(query(op))?;
        let bumped = bumped.map_err(query(op))?;
        committed.map_err(query(op))?;
        let Some(row) = bumped else {
            // Nothing was written: why (another version, or the lease is not this one's).
            let stmt = client.prepare_cached(&self.sql.lease_of).await.map_err(query(op))?;
            let row = client.query_opt(&stmt, &[&id.as_str()]).await.map_err(query(op))?;
            let Some(row) = row else { return Err(JournalError::NotFound { id: id.clone() }) };
            let actual = version_of(id, row.get(0))?;
            if let Some(lease) = lease {
                let (epoch, owner, live): (i64, Option<String>, bool) = (row.get(1), row.get(2), row.get(3));
                let held = to_i64(id, lease.epoch)? == epoch && owner.as_deref() == Some(lease.owner.as_str()) && live;
                if !held {
                    return Err(PgError::LeaseLost { id: id.clone(), epoch: lease.epoch }.into());
                }
            }
            return Err(JournalError::Conflict { id: id.clone(), expected, actual });
        };
        Ok(version_of(id, row.get(0))?)
    }

    /// What became of an append whose commit outcome was lost: its records are stored (at
    /// the versions it expected), or the version is still the expected one, or another
    /// writer's records are there.
    async fn resolve(&self, id: &InstanceId, expected: u64, records: &[Vec<u8>]) -> Result<Resolution, JournalError> {
        let op = PgOperation::Resolve;
        let rows = self.rows_once(op, &self.sql.version, &[&id.as_str()]).await?;
        let Some(row) = rows.first() else { return Err(JournalError::NotFound { id: id.clone() }) };
        let version = version_of(id, row.get(0))?;
        let count = records.len() as u64;
        if version == expected {
            return Ok(Resolution::NotCommitted);
        }
        if version < expected.saturating_add(count) {
            return Ok(Resolution::Conflict);
        }
        let (from, count_i) = (to_i64(id, expected)?, to_i64(id, count)?);
        let rows = self.rows_once(op, &self.sql.records_from, &[&id.as_str(), &from, &count_i]).await?;
        let stored: Vec<Vec<u8>> = rows.iter().map(|r| r.get(0)).collect();
        Ok(if stored == records { Resolution::Committed(expected + count) } else { Resolution::Conflict })
    }

    /// At most `limit` records after the first `after`, with the version: records are never
    /// rewritten, so those below the version read first are all there.
    pub async fn read_page(&self, id: &InstanceId, after: u64, limit: usize) -> Result<Page, JournalError> {
        let version = self.version(id).await?;
        let count = version.saturating_sub(after).min(u64::try_from(limit).unwrap_or(u64::MAX));
        if count == 0 {
            return Ok(Page { records: Vec::new(), version });
        }
        let (from, count_i) = (to_i64(id, after)?, to_i64(id, count)?);
        let rows = self.rows(PgOperation::Read, &self.sql.records_from, &[&id.as_str(), &from, &count_i]).await?;
        let records: Vec<Vec<u8>> = rows.iter().map(|r| r.get(0)).collect();
        if records.len() as u64 != count {
            return Err(PgError::BadStoredValue { id: id.clone(), what: "fewer records than its version" }.into());
        }
        Ok(Page { records, version })
    }

    pub async fn version(&self, id: &InstanceId) -> Result<u64, JournalError> {
        match self.rows(PgOperation::Read, &self.sql.version, &[&id.as_str()]).await?.first() {
            Some(row) => Ok(version_of(id, row.get(0))?),
            None => Err(JournalError::NotFound { id: id.clone() }),
        }
    }

    pub async fn read(&self, id: &InstanceId) -> Result<Stored, JournalError> {
        // One statement, one snapshot: the header, the version and its records agree.
        let rows = self.rows(PgOperation::Read, &self.sql.read, &[&id.as_str()]).await?;
        let Some(row) = rows.first() else { return Err(JournalError::NotFound { id: id.clone() }) };
        let version = version_of(id, row.get(1))?;
        let records: Vec<Vec<u8>> = row.get(2);
        if records.len() as u64 != version {
            return Err(PgError::BadStoredValue { id: id.clone(), what: "fewer records than its version" }.into());
        }
        Ok(Stored { header: row.get(0), records, version })
    }

    pub async fn list(&self) -> Result<Vec<InstanceId>, JournalError> {
        let rows = self.rows(PgOperation::List, &self.sql.list, &[]).await?;
        let mut ids = rows.iter().map(|r| InstanceId::new(r.get::<_, &str>(0))).collect::<Result<Vec<_>, _>>()?;
        ids.sort();
        Ok(ids)
    }

    pub async fn outbox(&self, id: &InstanceId) -> Result<Vec<OutboxRow>, JournalError> {
        let rows = self.rows(PgOperation::Read, &self.sql.outbox, &[&id.as_str()]).await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxRow {
                    key: r.get(0),
                    emitted_version: version_of(id, r.get(1))?,
                    done_version: r.get::<_, Option<i64>>(2).map(|v| version_of(id, v)).transpose()?,
                })
            })
            .collect()
    }
}

/// Whether an append was refused: another version was there, or its lease was lost.
fn is_refusal(error: &JournalError) -> bool {
    match error {
        JournalError::Conflict { .. } => true,
        JournalError::Postgres(e) => matches!(**e, PgError::LeaseLost { .. }),
        _ => false,
    }
}

/// What an append that was `refused` (a conflict, a lost lease) after an earlier attempt lost
/// its commit's outcome amounts to, given what re-reading the instance found: that attempt's
/// commit (the append succeeded), the refusal (nothing of it was written), or, when the
/// re-read failed too, an unknown outcome, never a claim that nothing was written.
fn settle(
    id: &InstanceId,
    expected: u64,
    refused: JournalError,
    resolution: Result<Resolution, JournalError>,
) -> Result<u64, JournalError> {
    match resolution {
        Ok(Resolution::Committed(version)) => Ok(version),
        Ok(Resolution::NotCommitted | Resolution::Conflict) => Err(refused),
        Err(_) => Err(PgError::OutcomeUnknown { id: id.clone(), expected }.into()),
    }
}

/// What an append whose commit outcome was lost became.
#[derive(Debug)]
enum Resolution {
    /// Its records are stored: it committed, and this is the new version.
    Committed(u64),
    /// The version is still the expected one: it did not commit.
    NotCommitted,
    /// Another writer's records are there.
    Conflict,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> InstanceId {
        InstanceId::new("i").expect("an id")
    }

    fn lease_lost() -> JournalError {
        PgError::LeaseLost { id: id(), epoch: 3 }.into()
    }

    fn reread_failed() -> Result<Resolution, JournalError> {
        Err(PgError::OutcomeUnknown { id: id(), expected: 0 }.into())
    }

    #[test]
    fn a_refusal_after_a_lost_commit_says_what_the_re_read_found() {
        assert_eq!(settle(&id(), 4, lease_lost(), Ok(Resolution::Committed(6))).ok(), Some(6), "it was ours");
        for resolution in [Resolution::NotCommitted, Resolution::Conflict] {
            let refused = settle(&id(), 4, lease_lost(), Ok(resolution));
            assert!(refused.as_ref().is_err_and(is_refusal), "{refused:?}");
            assert!(!matches!(refused, Err(JournalError::Conflict { .. })), "{refused:?}");
        }
        let conflict = JournalError::Conflict { id: id(), expected: 4, actual: 5 };
        assert!(matches!(settle(&id(), 4, conflict, Ok(Resolution::Conflict)), Err(JournalError::Conflict { .. })));
    }

    #[test]
    fn a_lost_lease_after_a_lost_commit_and_a_failed_re_read_is_an_unknown_outcome() {
        let settled = settle(&id(), 4, lease_lost(), reread_failed());
        let Err(JournalError::Postgres(e)) = settled else { panic!("{settled:?}") };
        assert!(matches!(*e, PgError::OutcomeUnknown { expected: 4, .. }), "{e:?}");
        assert!(e.to_string().contains("is unknown"), "{e}");
        assert!(!e.to_string().contains("nothing was written"), "{e}");
    }
}
