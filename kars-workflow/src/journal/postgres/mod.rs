//! `PgStore`: instance histories in PostgreSQL (feature `postgres`).
//!
//! # Tables (database schema version 2)
//!
//! In a schema of its own (`kars` by default, [`PgStoreConfig::with_schema`]):
//!
//! - `kars_migrations (version, name, applied_at)`: the migrations applied, one row each;
//! - `instances (instance, header, version, created_at, updated_at)`: one row per instance;
//! - `records (instance, sequence, payload)`, primary key `(instance, sequence)`: record
//!   `sequence` (from 0) brings the instance to version `sequence + 1`;
//! - `outbox (instance, key, effect, emitted_version, emitted_at, done_version, done_at)`,
//!   primary key `(instance, key)`: each effect the driver's records emit, keyed by its
//!   idempotency key, written by the append that emitted it and marked done by the append
//!   that acknowledged it.
//!
//! Claims read indexes, not tables (migration 2): `instances_claim_order` holds the instances
//! with a timer in the order replicas claim them, `outbox_pending_by_instance` the effects not
//! acknowledged; a claim reads about a batch of rows however many instances there are.
//!
//! # Guarantees
//!
//! - **Migrations** ship in the crate and are applied by [`PgStore::connect`] in one
//!   transaction under an advisory lock, each recorded in `kars_migrations`; a schema that a
//!   newer build migrated further is refused with [`PgError::SchemaTooNew`], never written.
//! - **One append, one transaction** (READ COMMITTED) of one statement, sent with its `BEGIN`
//!   and `COMMIT` in one round trip: a compare-and-set of the instance's version
//!   (`UPDATE … WHERE version = $expected`), and from its row only the records and the outbox
//!   rows. Racing appenders queue on the instance's row lock; exactly one wins each version.
//! - **A lost commit is resolved, never repeated.** When the connection drops during an
//!   append (so the commit may or may not have happened), the store re-reads the instance on a
//!   fresh connection: its records at the expected versions mean it committed (the append
//!   succeeds), the expected version means it did not (the append is tried again), anything
//!   else is a [`JournalError::Conflict`].
//! - **Reconnects.** Broken connections are replaced by the pool; a read that loses its
//!   connection is tried again a few times before it fails.
//!
//! # Sync and async callers
//!
//! The store owns a small tokio runtime on threads of its own, where the client and the pool
//! live. The synchronous [`Store`] methods hand their job to that runtime and wait on a
//! channel, so they work from any thread, inside a tokio runtime too (the `service`'s
//! `spawn_blocking` threads), where the blocking `postgres` crate would panic. Async callers
//! use the `*_async` methods, which await the job without blocking their runtime.

mod error;
mod lease;
mod listen;
mod maintain;
mod migrate;
mod ops;
mod schema;
mod sql;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

pub use error::{PgError, PgOperation, RuntimeFailure};
pub use lease::{FencedStore, Lease, ReplicaId};
pub use listen::Wakeups;
pub use maintain::Maintenance;
pub use migrate::{AppliedMigration, SCHEMA_VERSION};
pub use schema::Schema;

use super::{DEFAULT_MAX_RECORD_LEN, JournalError, Outbox, Page, Store, Stored};
use crate::InstanceId;
use ops::Shared;

/// How a [`PgStore`] connects and where it keeps its tables.
#[derive(Debug, Clone)]
pub struct PgStoreConfig {
    schema: String,
    pool_size: usize,
    connect_timeout: Duration,
    application_name: String,
    max_record_len: u32,
    notify: bool,
    effect_grace: Duration,
}

impl Default for PgStoreConfig {
    fn default() -> Self {
        Self {
            schema: Schema::DEFAULT.to_owned(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            application_name: "kars".to_owned(),
            max_record_len: DEFAULT_MAX_RECORD_LEN,
            notify: true,
            effect_grace: Duration::from_secs(5),
        }
    }
}

impl PgStoreConfig {
    /// The schema to keep the tables in (default `kars`); see [`Schema::new`].
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The most connections the store opens at once (default 8; at least 1).
    #[must_use]
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long connecting may take before it fails (default 5 s).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The `application_name` the connections show in `pg_stat_activity` (default `kars`).
    #[must_use]
    pub fn with_application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Whether appends send replicas a `NOTIFY` hint (default yes). Turn it off behind a
    /// pooler that drops notifications: replicas poll all the same.
    #[must_use]
    pub fn with_notify(mut self, notify: bool) -> Self {
        self.notify = notify;
        self
    }

    /// How long an effect that a writer without a lease emitted (`kars instance act`, which
    /// performs the effects it emits at once) is left to it before replicas claim the instance
    /// to perform it (default 5 s): a replica woken by the same append would otherwise perform
    /// it too. Effects stay at least once: one whose writer stopped is performed by a replica
    /// after this grace. An effect emitted under a replica's lease that has since ended has no
    /// grace.
    #[must_use]
    pub fn with_effect_grace(mut self, grace: Duration) -> Self {
        self.effect_grace = grace;
        self
    }

    /// The largest record or header accepted (default
    /// [`DEFAULT_MAX_RECORD_LEN`]).
    #[must_use]
    pub fn with_max_record_len(mut self, max: u32) -> Self {
        self.max_record_len = max;
        self
    }
}

/// An outbox row, as [`PgStore::outbox`] reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// The effect's idempotency key.
    pub key: String,
    /// The version of the append that emitted it.
    pub emitted_version: u64,
    /// The version of the append that acknowledged it, if one did.
    pub done_version: Option<u64>,
}

/// An [`Outbox`] with owned data, to send to the store's runtime.
#[derive(Debug, Default)]
struct OwnedOutbox {
    keys: Vec<String>,
    effects: Vec<String>,
    done: Vec<String>,
    next_wake: super::NextWake,
}

impl OwnedOutbox {
    fn new(outbox: Outbox<'_>) -> Self {
        Self {
            keys: outbox.emitted.iter().map(|e| e.key.to_owned()).collect(),
            effects: outbox.emitted.iter().map(|e| String::from_utf8_lossy(e.effect).into_owned()).collect(),
            done: outbox.done.iter().map(|k| (*k).to_owned()).collect(),
            next_wake: outbox.next_wake,
        }
    }
}

/// How [`PgStore::open`] treats the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// Create it or bring it to this build's version.
    Migrate,
    /// Check its version, write nothing.
    ReadOnly,
}

/// The store's private runtime; shut down without blocking when the last handle goes, so
/// that dropping a store inside another runtime does not panic.
#[derive(Debug)]
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A [`Store`] in PostgreSQL: see the [module docs](self). Cheap to clone (handles share the
/// pool and the runtime).
#[derive(Debug, Clone)]
pub struct PgStore {
    shared: Arc<Shared>,
    handle: tokio::runtime::Handle,
    schema: Schema,
    migrations: Arc<Vec<AppliedMigration>>,
    // Last, so the pool's connections go before their runtime does.
    #[expect(dead_code, reason = "held only: the runtime lives as long as a handle")]
    runtime: Arc<Runtime>,
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((auth, host)) = rest.split_once('@') {
            let user = auth.split(':').next().unwrap_or_default();
            return format!("{scheme}://{user}@{host}");
        }
        return url.to_owned();
    }
    url.split_whitespace()
        .map(|kv| if kv.starts_with("password=") { "password=…" } else { kv })
        .collect::<Vec<_>>()
        .join(" ")
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host/db` or
    /// `host=/var/run/postgresql dbname=db`), applies the migrations this build ships to the
    /// configured schema, and returns the store.
    ///
    /// # Errors
    /// [`PgError::BadUrl`], [`PgError::BadSchemaName`], [`PgError::Pool`] when the server does
    /// not answer, [`PgError::SchemaTooNew`] for a schema a newer build migrated,
    /// [`PgError::MigrationMismatch`], [`PgError::Query`]; all inside [`JournalError::Postgres`].
    pub fn connect(url: &str, config: &PgStoreConfig) -> Result<Self, JournalError> {
        Self::open(url, config, Open::Migrate)
    }

    /// Connects to the database at `url` to read only: nothing is created or migrated (the
    /// sessions are read-only on the server too), and the schema must be at exactly the
    /// version this build ships. For commands that only look (`kars instance list`, `status`,
    /// `history`).
    ///
    /// # Errors
    /// As [`PgStore::connect`], and [`PgError::SchemaMissing`] for a schema without kars
    /// tables, [`PgError::SchemaTooOld`] for one a writing open would migrate.
    pub fn connect_read_only(url: &str, config: &PgStoreConfig) -> Result<Self, JournalError> {
        Self::open(url, config, Open::ReadOnly)
    }

    fn open(url: &str, config: &PgStoreConfig, open: Open) -> Result<Self, JournalError> {
        let schema = Schema::new(&config.schema)?;
        let mut pg =
            tokio_postgres::Config::from_str(url).map_err(|source| PgError::BadUrl { url: redact(url), source })?;
        pg.connect_timeout(config.connect_timeout);
        pg.application_name(&config.application_name);
        if open == Open::ReadOnly {
            pg.options("-c default_transaction_read_only=on");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kars-postgres")
            .enable_all()
            .build()
            .map_err(|_| PgError::Runtime(RuntimeFailure::Start))?;
        let handle = runtime.handle().clone();
        let runtime = Arc::new(Runtime(Some(runtime)));
        let manager =
            Manager::from_config(pg.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = {
            // The pool's timeouts need a runtime context to be built in.
            let _entered = handle.enter();
            Pool::builder(manager)
                .max_size(config.pool_size)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .create_timeout(Some(config.connect_timeout))
                .wait_timeout(Some(config.connect_timeout * 6))
                .build()
                .map_err(|e| PgError::Pool { operation: PgOperation::Connect, detail: e.to_string() })?
        };
        let notify = config.notify.then(|| listen::channel(&schema));
        let shared = Arc::new(Shared {
            pool,
            sql: sql::Sql::new(&schema),
            max_record_len: config.max_record_len,
            notify,
            pg,
            effect_grace: config.effect_grace,
        });
        let migrations = {
            let (shared, schema) = (Arc::clone(&shared), schema.clone());
            run(&handle, async move {
                let mut client = shared.client(PgOperation::Connect).await?;
                Ok(match open {
                    Open::Migrate => migrate::migrate(&mut client, &schema).await?,
                    Open::ReadOnly => migrate::check(&client, &schema).await?,
                })
            })?
        };
        Ok(Self { shared, handle, schema, migrations: Arc::new(migrations), runtime })
    }

    /// The schema the tables are in.
    #[must_use]
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The migrations recorded in the schema when the store was opened, oldest first.
    #[must_use]
    pub fn migrations(&self) -> &[AppliedMigration] {
        &self.migrations
    }

    /// Instance `id`'s outbox rows, by key.
    ///
    /// # Errors
    /// [`JournalError::Postgres`].
    pub fn outbox(&self, id: &InstanceId) -> Result<Vec<OutboxRow>, JournalError> {
        let (shared, id) = (Arc::clone(&self.shared), id.clone());
        run(&self.handle, async move { shared.outbox(&id).await })
    }

    /// [`Store::create`] for async callers.
    ///
    /// # Errors
    /// As [`Store::create`].
    pub async fn create_async(&self, id: &InstanceId, header: Vec<u8>) -> Result<(), JournalError> {
        let (shared, id) = (Arc::clone(&self.shared), id.clone());
        spawn(&self.handle, async move { shared.create(&id, &header).await }).await
    }

    /// [`Store::append`] for async callers.
    ///
    /// # Errors
    /// As [`Store::append`].
    pub async fn append_async(
        &self,
        id: &InstanceId,
        expected_version: u64,
        records: Vec<Vec<u8>>,
    ) -> Result<u64, JournalError> {
        let (shared, id) = (Arc::clone(&self.shared), id.clone());
        spawn(&self.handle, async move {
            shared.append(&id, expected_version, &records, &OwnedOutbox::default(), None).await
        })
        .await
    }

    /// [`Store::read`] for async callers.
    ///
    /// # Errors
    /// As [`Store::read`].
    pub async fn read_async(&self, id: &InstanceId) -> Result<Stored, JournalError> {
        let (shared, id) = (Arc::clone(&self.shared), id.clone());
        spawn(&self.handle, async move { shared.read(&id).await }).await
    }

    /// [`Store::list`] for async callers.
    ///
    /// # Errors
    /// As [`Store::list`].
    pub async fn list_async(&self) -> Result<Vec<InstanceId>, JournalError> {
        let shared = Arc::clone(&self.shared);
        spawn(&self.handle, async move { shared.list().await }).await
    }
}

/// Runs `job` on the store's runtime and awaits it (from any runtime).
async fn spawn<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    job: impl Future<Output = Result<T, JournalError>> + Send + 'static,
) -> Result<T, JournalError> {
    handle.spawn(job).await.map_err(|_| PgError::Runtime(RuntimeFailure::Stopped))?
}

/// Runs `job` on the store's runtime and blocks this thread until it answers. Safe from any
/// thread, a tokio worker's included (it never enters a runtime; it waits on a channel).
fn run<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    job: impl Future<Output = Result<T, JournalError>> + Send + 'static,
) -> Result<T, JournalError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        // The caller stopped waiting only if it is gone; nothing to tell then.
        let _ = tx.send(job.await);
    });
    rx.recv().map_err(|_| PgError::Runtime(RuntimeFailure::Stopped))?
}

impl Store for PgStore {
    fn create(&self, id: &InstanceId, header: &[u8]) -> Result<(), JournalError> {
        let (shared, id, header) = (Arc::clone(&self.shared), id.clone(), header.to_vec());
        run(&self.handle, async move { shared.create(&id, &header).await })
    }

    fn append(&self, id: &InstanceId, expected_version: u64, records: &[&[u8]]) -> Result<u64, JournalError> {
        self.append_with_outbox(id, expected_version, records, Outbox::default())
    }

    fn read(&self, id: &InstanceId) -> Result<Stored, JournalError> {
        let (shared, id) = (Arc::clone(&self.shared), id.clone());
        run(&self.handle, async move { shared.read(&id).await })
    }

    fn version(&self, id: &InstanceId) -> Result<u64, JournalError> {
        let (shared, id) = (Arc::clone(&self.shared), id.clone());
        run(&self.handle, async move { shared.version(&id).await })
    }

    fn list(&self) -> Result<Vec<InstanceId>, JournalError> {
        let shared = Arc::clone(&self.shared);
        run(&self.handle, async move { shared.list().await })
    }

    fn read_page(&self, id: &InstanceId, after: u64, limit: usize) -> Result<Page, JournalError> {
        let (shared, id) = (Arc::clone(&self.shared), id.clone());
        run(&self.handle, async move { shared.read_page(&id, after, limit).await })
    }

    fn keeps_outbox(&self) -> bool {
        true
    }

    fn append_with_outbox(
        &self,
        id: &InstanceId,
        expected_version: u64,
        records: &[&[u8]],
        outbox: Outbox<'_>,
    ) -> Result<u64, JournalError> {
        let (shared, id) = (Arc::clone(&self.shared), id.clone());
        let records: Vec<Vec<u8>> = records.iter().map(|r| r.to_vec()).collect();
        let outbox = OwnedOutbox::new(outbox);
        run(&self.handle, async move { shared.append(&id, expected_version, &records, &outbox, None).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redact("postgres://kars:s3cret@db:5432/kars"), "postgres://kars@db:5432/kars");
        assert_eq!(redact("host=db password=s3cret dbname=kars"), "host=db password=… dbname=kars");
    }
}
