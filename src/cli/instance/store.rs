//! Where `kars instance` keeps instances: a journal directory (`--journal DIR`) or a
//! PostgreSQL database (`--store URL`, feature `postgres`), behind one [`Store`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use kars::workflow::journal::{FileStore, Store};

use super::{Failure, usage};

/// `--journal DIR` or `--store URL`: exactly one.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Location {
    /// The journal directory.
    #[arg(long, value_name = "DIR")]
    journal: Option<PathBuf>,
    /// A PostgreSQL database instead of a journal directory: `postgres://user@host/db` or
    /// `host=/var/run/postgresql dbname=db` (built with the `postgres` feature). Its tables go
    /// in the schema `--schema` names.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

/// The schema of a `--store` database.
#[derive(Debug, Clone, clap::Args)]
pub struct SchemaArg {
    /// The PostgreSQL schema of `--store` (default `kars`).
    #[arg(long, value_name = "NAME", requires = "store")]
    schema: Option<String>,
}

/// How a command uses the store.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `status`, `history`, `list`, `render`: never write (works on read-only files).
    Read,
    /// `act`, `tick`, `team`, `repair`.
    Write,
}

/// An opened store of either kind.
#[derive(Debug)]
pub enum CliStore {
    /// A journal directory.
    File(FileStore),
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(kars::workflow::journal::PgStore),
}

impl SchemaArg {
    #[cfg(feature = "serve")]
    /// Whether `--schema` was given (it only means something with `--store`).
    pub fn given(&self) -> bool {
        self.schema.is_some()
    }
}

impl Location {
    /// A location for a journal directory (`kars render --journal`).
    pub fn journal(dir: &Path) -> Self {
        Self { journal: Some(dir.to_owned()), store: None }
    }

    /// A location for a store URL (`kars render --store`).
    pub fn store(url: &str) -> Self {
        Self { journal: None, store: Some(url.to_owned()) }
    }

    /// The journal directory, for commands that only work on one.
    pub fn directory(&self) -> Option<&Path> {
        self.journal.as_deref()
    }

    /// Opens the existing store.
    pub fn open(&self, schema: &SchemaArg, access: Access) -> Result<CliStore, Failure> {
        match (&self.journal, &self.store) {
            (Some(dir), _) => match access {
                Access::Read => FileStore::open_read_only(dir),
                Access::Write => FileStore::open(dir),
            }
            .map(CliStore::File)
            .map_err(usage),
            (None, Some(url)) => connect(url, schema, COMMAND_POOL, None, access),
            (None, None) => Err(usage("say where the instances are: `--journal DIR` or `--store URL`")),
        }
    }

    /// Opens the store, creating a journal directory if missing (`kars instance start`).
    pub fn create(&self, schema: &SchemaArg) -> Result<CliStore, Failure> {
        self.create_pooled(schema, COMMAND_POOL, None)
    }

    /// As [`Location::create`], with up to `pool_size` database connections (`kars serve`,
    /// whose requests run concurrently), and on a database the effect grace its replicas give
    /// writers without a lease (`None`: the store's default).
    pub fn create_pooled(
        &self,
        schema: &SchemaArg,
        pool_size: usize,
        effect_grace: Option<Duration>,
    ) -> Result<CliStore, Failure> {
        match (&self.journal, &self.store) {
            (Some(dir), _) => FileStore::create_dir(dir).map(CliStore::File).map_err(usage),
            (None, Some(url)) => connect(url, schema, pool_size, effect_grace, Access::Write),
            (None, None) => Err(usage("say where the instances are: `--journal DIR` or `--store URL`")),
        }
    }

    #[cfg(feature = "serve")]
    /// Where the instances are, for messages (a database URL without its password).
    pub fn describe(&self) -> String {
        match (&self.journal, &self.store) {
            (Some(dir), _) => format!("journal in `{}`", dir.display()),
            (None, Some(url)) => format!("store `{}`", redact(url)),
            (None, None) => "no store".to_owned(),
        }
    }
}

/// Database connections of a one-shot command.
const COMMAND_POOL: usize = 2;

#[cfg(feature = "serve")]
/// `url` with any password left out.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((auth, host)) = rest.split_once('@')
    {
        let user = auth.split(':').next().unwrap_or_default();
        return format!("{scheme}://{user}@{host}");
    }
    url.split_whitespace().filter(|kv| !kv.starts_with("password=")).collect::<Vec<_>>().join(" ")
}

#[cfg(feature = "postgres")]
fn connect(
    url: &str,
    schema: &SchemaArg,
    pool_size: usize,
    effect_grace: Option<Duration>,
    access: Access,
) -> Result<CliStore, Failure> {
    use kars::workflow::journal::{PgStore, PgStoreConfig};
    let mut config = PgStoreConfig::default().with_pool_size(pool_size);
    if let Some(name) = &schema.schema {
        config = config.with_schema(name);
    }
    if let Some(grace) = effect_grace {
        config = config.with_effect_grace(grace);
    }
    match access {
        // A command that only looks writes nothing: no schema created, no migration.
        Access::Read => PgStore::connect_read_only(url, &config),
        Access::Write => PgStore::connect(url, &config),
    }
    .map(CliStore::Postgres)
    .map_err(usage)
}

#[cfg(not(feature = "postgres"))]
fn connect(
    _url: &str,
    _schema: &SchemaArg,
    _pool_size: usize,
    _effect_grace: Option<Duration>,
    _access: Access,
) -> Result<CliStore, Failure> {
    Err(usage(
        "this kars was built without PostgreSQL, so `--store` is not available\nhelp: build with `--features postgres`, or use `--journal DIR`",
    ))
}

impl CliStore {
    #[cfg(feature = "serve")]
    /// Whether other processes may write to it while a server runs on it.
    pub fn shared(&self) -> bool {
        match self {
            Self::File(_) => false,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => true,
        }
    }

    /// The torn tails a writer cut (journal directories only), as warnings for stderr.
    pub fn tail_cuts(&self) -> Vec<String> {
        match self {
            Self::File(store) => store.take_tail_cuts().into_iter().map(|cut| format!("warning: {cut}")).collect(),
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Vec::new(),
        }
    }
}

/// The store it opened, whichever kind: a [`Store`] through the journal's impl for pointers.
impl std::ops::Deref for CliStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::File(store) => store,
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store,
        }
    }
}
