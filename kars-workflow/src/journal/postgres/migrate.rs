//! The schema's versioned migrations, shipped in the crate and applied on open under an
//! advisory lock, each recorded in the `kars_migrations` table.

use deadpool_postgres::Client;

use super::error::{PgError, PgOperation};
use super::schema::Schema;

/// One migration: the schema version it brings the database to, a name, and its SQL (with
/// `{schema}` standing for the quoted schema name).
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration this build ships, oldest first; versions count from 1 without gaps.
const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "journal", sql: include_str!("migrations/0001_journal.sql") },
    Migration { version: 2, name: "claim-indexes", sql: include_str!("migrations/0002_claim_indexes.sql") },
];

/// The database schema version this build writes and reads: the newest migration it ships.
pub const SCHEMA_VERSION: i32 = 2;

/// A migration recorded in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// The schema version it brought the database to.
    pub version: i32,
    /// Its name.
    pub name: String,
}

fn query(e: tokio_postgres::Error) -> PgError {
    PgError::Query { operation: PgOperation::Migrate, source: e }
}

/// Brings `schema` to [`SCHEMA_VERSION`] in one transaction under an advisory lock (so two
/// processes opening a store at once apply each migration once), or refuses a schema that a
/// newer build migrated further.
pub(super) async fn migrate(client: &mut Client, schema: &Schema) -> Result<Vec<AppliedMigration>, PgError> {
    let tx = client.transaction().await.map_err(query)?;
    let lock = format!("kars.migrate.{}", schema.name());
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1)::bigint)", &[&lock]).await.map_err(query)?;
    let q = schema.quoted();
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {q};
         CREATE TABLE IF NOT EXISTS {q}.kars_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(query)?;
    let rows = tx
        .query(&format!("SELECT version, name FROM {q}.kars_migrations ORDER BY version"), &[])
        .await
        .map_err(query)?;
    let mut applied: Vec<AppliedMigration> =
        rows.iter().map(|row| AppliedMigration { version: row.get(0), name: row.get(1) }).collect();
    verify(&applied, schema)?;
    let insert = format!("INSERT INTO {q}.kars_migrations (version, name) VALUES ($1, $2)");
    let newest = applied.last().map_or(0, |m| m.version);
    for migration in MIGRATIONS.iter().filter(|m| m.version > newest) {
        tx.batch_execute(&migration.sql.replace("{schema}", q)).await.map_err(query)?;
        tx.execute(&insert, &[&migration.version, &migration.name]).await.map_err(query)?;
        applied.push(AppliedMigration { version: migration.version, name: migration.name.to_owned() });
    }
    tx.commit().await.map_err(query)?;
    Ok(applied)
}

/// Checks, without writing, that `schema` is at exactly [`SCHEMA_VERSION`] with the migrations
/// this build ships: a read-only open neither creates nor migrates a schema.
pub(super) async fn check(client: &Client, schema: &Schema) -> Result<Vec<AppliedMigration>, PgError> {
    let q = schema.quoted();
    let table = format!("{q}.kars_migrations");
    let exists: bool = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await.map_err(query)?.get(0);
    if !exists {
        return Err(PgError::SchemaMissing { schema: schema.name().to_owned() });
    }
    let rows =
        client.query(&format!("SELECT version, name FROM {table} ORDER BY version"), &[]).await.map_err(query)?;
    let applied: Vec<AppliedMigration> =
        rows.iter().map(|row| AppliedMigration { version: row.get(0), name: row.get(1) }).collect();
    verify(&applied, schema)?;
    let found = applied.last().map_or(0, |m| m.version);
    if found < SCHEMA_VERSION {
        return Err(PgError::SchemaTooOld { schema: schema.name().to_owned(), found, supported: SCHEMA_VERSION });
    }
    Ok(applied)
}

/// Refuses a schema a newer build migrated further, or whose migrations are not the ones this
/// build ships under their versions.
fn verify(applied: &[AppliedMigration], schema: &Schema) -> Result<(), PgError> {
    if let Some(newest) = applied.last().filter(|m| m.version > SCHEMA_VERSION) {
        return Err(PgError::SchemaTooNew {
            schema: schema.name().to_owned(),
            found: newest.version,
            supported: SCHEMA_VERSION,
        });
    }
    for recorded in applied {
        let shipped = MIGRATIONS.iter().find(|m| m.version == recorded.version);
        if shipped.is_none_or(|m| m.name != recorded.name) {
            return Err(PgError::MigrationMismatch {
                schema: schema.name().to_owned(),
                version: recorded.version,
                found: recorded.name.clone(),
                expected: shipped.map_or_else(|| "nothing".to_owned(), |m| m.name.to_owned()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_from_one_without_gaps_up_to_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(m.version).unwrap(), i + 1, "{}", m.name);
            assert!(m.sql.contains("{schema}."), "{} names no schema", m.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }
}
