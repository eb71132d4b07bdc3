//! `PgError`: why the PostgreSQL store failed, as data (the operation, the server's error).

use std::fmt;

use crate::InstanceId;

/// What the PostgreSQL store was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PgOperation {
    /// Taking a connection from the pool (connecting, when none is idle).
    Connect,
    /// Applying the schema's migrations.
    Migrate,
    /// Creating an instance.
    Create,
    /// Appending records.
    Append,
    /// Reading an instance.
    Read,
    /// Listing instances.
    List,
    /// Re-reading an instance after a commit whose outcome the client did not see.
    Resolve,
    /// Claiming, renewing or releasing leases.
    Claim,
}

impl fmt::Display for PgOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "open a connection",
            Self::Migrate => "migrate the schema",
            Self::Create => "create an instance",
            Self::Append => "append",
            Self::Read => "read an instance",
            Self::List => "list instances",
            Self::Resolve => "re-read an append whose commit outcome was lost",
            Self::Claim => "claim, renew or release leases",
        })
    }
}

/// Why the PostgreSQL store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The connection string does not parse.
    #[error(
        "`{url}` is not a PostgreSQL connection string: {source}\n\
         help: use `postgres://user@host:5432/db` or `host=/var/run/postgresql dbname=db`"
    )]
    BadUrl {
        /// The connection string, without its password.
        url: String,
        /// The client's parse error.
        source: tokio_postgres::Error,
    },
    /// The schema name is not a plain lowercase SQL identifier.
    #[error(
        "`{name}` is not a usable schema name\n\
         help: use 1 to 63 lowercase ASCII letters, digits and `_`, starting with a letter or `_`"
    )]
    BadSchemaName {
        /// The name given.
        name: String,
    },
    /// The database holds a schema written by a newer kars.
    #[error(
        "schema `{schema}` is at kars database schema version {found}, and this build knows versions up to {supported}\n\
         help: upgrade kars to a build that knows version {found}; an older build never writes a newer schema"
    )]
    SchemaTooNew {
        /// The schema.
        schema: String,
        /// The newest version recorded in its migrations table.
        found: i32,
        /// The newest version this build ships.
        supported: i32,
    },
    /// A read-only open found no kars tables in the schema.
    #[error(
        "schema `{schema}` holds no kars instances (no `kars_migrations` table), and a read-only command creates none\n\
         help: check `--schema` and the database; a writing command (`kars instance start`, `kars worker`) creates the schema"
    )]
    SchemaMissing {
        /// The schema.
        schema: String,
    },
    /// A read-only open found a schema an older build made, which it would have to migrate.
    #[error(
        "schema `{schema}` is at kars database schema version {found}, older than this build's {supported}, and a read-only command migrates nothing\n\
         help: run a writing command (`kars instance tick`, `kars worker`) with this build once to migrate it"
    )]
    SchemaTooOld {
        /// The schema.
        schema: String,
        /// The newest version recorded in its migrations table (0: none).
        found: i32,
        /// The version this build reads.
        supported: i32,
    },
    /// A migration recorded in the database is not the one this build ships under that version.
    #[error(
        "schema `{schema}` records migration {version} as `{found}`, and this build ships `{expected}` under that version\n\
         help: this schema was not made by kars, or by a modified build; point kars at another schema"
    )]
    MigrationMismatch {
        /// The schema.
        schema: String,
        /// The migration's version.
        version: i32,
        /// The name recorded.
        found: String,
        /// The name this build ships.
        expected: String,
    },
    /// Taking a connection from the pool failed (the server does not answer, or refused).
    #[error(
        "cannot reach PostgreSQL to {operation}: {detail}\nhelp: check that the server runs and the connection string"
    )]
    Pool {
        /// What the store was doing.
        operation: PgOperation,
        /// The pool's error, in its own words.
        detail: String,
    },
    /// A statement failed.
    #[error("PostgreSQL failed to {operation}: {}", describe(source))]
    Query {
        /// What the store was doing.
        operation: PgOperation,
        /// The client's error (with the server's SQLSTATE when it has one).
        source: tokio_postgres::Error,
    },
    /// A commit's outcome was lost with the connection, and re-reading the instance to learn
    /// it failed too: the append may or may not be durable.
    #[error(
        "the outcome of an append to instance `{id}` at version {expected} is unknown: the connection was lost during the commit and re-reading failed\n\
         help: re-read the instance; its version says whether the append happened"
    )]
    OutcomeUnknown {
        /// The instance.
        id: InstanceId,
        /// The version the append expected.
        expected: u64,
    },
    /// A replica's write under a lease it no longer holds (it expired on the database's clock,
    /// or another replica claimed the instance since): nothing was written.
    #[error(
        "this replica no longer holds the lease on instance `{id}` (epoch {epoch}): nothing was written\n\
         help: another replica took the instance over; claim it again to go on"
    )]
    LeaseLost {
        /// The instance.
        id: InstanceId,
        /// The epoch of the lost lease.
        epoch: u64,
    },
    /// A stored value the store cannot read back (a negative version, say).
    #[error("instance `{id}` holds {what}, which kars never writes\nhelp: the schema was changed by hand; restore it")]
    BadStoredValue {
        /// The instance.
        id: InstanceId,
        /// What is wrong.
        what: &'static str,
    },
    /// The store's private runtime could not start, or stopped.
    #[error("the PostgreSQL store's runtime {0}")]
    Runtime(RuntimeFailure),
}

/// The client's error in words: the server's message and SQLSTATE when it sent one (the
/// client's own text for those is only "db error").
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

/// How the store's private runtime failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeFailure {
    /// It could not start (the operating system refused a thread).
    Start,
    /// It stopped before answering (the store is being dropped, or a job panicked).
    Stopped,
}

impl fmt::Display for RuntimeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Start => "could not start",
            Self::Stopped => "stopped before answering",
        })
    }
}

impl PgError {
    /// Whether the failure lost the connection rather than being refused by the server or the
    /// client: the cases where a commit's outcome is unknown, and the only ones worth trying
    /// again on a fresh connection.
    pub(super) fn is_connection_loss(&self) -> bool {
        match self {
            Self::Query { source, .. } => lost_connection(source),
            Self::Pool { .. } => true,
            _ => false,
        }
    }
}

/// Whether `error` says the connection is gone: closed, failed at the socket, or the server
/// said so with SQLSTATE class 08 (connection exception) or 57 (operator intervention:
/// `pg_terminate_backend`, a shutdown, sent just before it closes the connection). A client
/// error of another kind (a value that does not convert, an unexpected message) is not.
fn lost_connection(error: &tokio_postgres::Error) -> bool {
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        return code.starts_with("08") || code.starts_with("57");
    }
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        if e.is::<std::io::Error>() {
            return true;
        }
        cause = e.source();
    }
    error.is_closed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lost_connection_is_retried() {
        // A client error without SQLSTATE that is not about the connection (here: a parse
        // error) is not a connection loss.
        let Err(client_error) = "host=/x port=nope".parse::<tokio_postgres::Config>() else { panic!("a bad port") };
        assert!(client_error.as_db_error().is_none());
        assert!(!PgError::Query { operation: PgOperation::Read, source: client_error }.is_connection_loss());
        // A socket that does not answer is.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let connected =
            runtime.block_on(tokio_postgres::connect("host=/nonexistent/kars port=1 dbname=x", tokio_postgres::NoTls));
        let Err(refused) = connected else { panic!("no server there") };
        assert!(PgError::Query { operation: PgOperation::Connect, source: refused }.is_connection_loss());
        let stale = PgError::LeaseLost { id: InstanceId::new("x").expect("an id"), epoch: 1 };
        assert!(!stale.is_connection_loss());
    }
}
