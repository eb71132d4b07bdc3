//! Read-only opens of a PostgreSQL store (`PgStore::connect_read_only`, and the commands that
//! only look: `kars instance list/status/history --store URL`) write nothing: no schema is
//! created, none migrated; a schema that is missing, older or newer is named in the error.
#![cfg(feature = "postgres")]

use std::process::Command;

use kars::workflow::InstanceId;
use kars::workflow::journal::postgres::{PgError, SCHEMA_VERSION};
use kars::workflow::journal::{PgStore, Store};

#[path = "support/postgres.rs"]
#[allow(dead_code)]
mod support;
use support::{TestDb, pg_error};

#[test]
fn a_read_only_open_checks_the_schema_version_and_writes_nothing() {
    let Some(db) = TestDb::new("read_only") else { return };
    let schemas = format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{}'", db.schema);

    // Missing: refused, and still missing.
    let err = PgStore::connect_read_only(&db.url, &db.config()).unwrap_err();
    assert!(matches!(pg_error(&err), PgError::SchemaMissing { schema } if *schema == db.schema), "{err:?}");
    assert!(err.to_string().contains("a read-only command creates none"), "{err}");
    assert_eq!(db.column_i64(&schemas), [0], "a read-only open created nothing");

    // At this build's version: reads work, writes are refused by the server.
    let writer = PgStore::connect(&db.url, &db.config()).unwrap();
    let x = InstanceId::new("x").unwrap();
    writer.create(&x, b"h").unwrap();
    writer.append(&x, 0, &[b"one"]).unwrap();
    let reader = PgStore::connect_read_only(&db.url, &db.config()).unwrap();
    assert_eq!(reader.migrations().last().map(|m| m.version), Some(SCHEMA_VERSION));
    assert_eq!(reader.read(&x).unwrap().records, [b"one".to_vec()]);
    assert_eq!(reader.list().unwrap(), std::slice::from_ref(&x));
    let refused = reader.append(&x, 1, &[b"two"]).unwrap_err();
    assert!(refused.to_string().contains("read-only transaction (SQLSTATE 25006)"), "{refused}");
    assert_eq!(writer.version(&x).unwrap(), 1);

    // Older (a migration not applied yet): refused, not migrated.
    let table = format!("\"{}\".kars_migrations", db.schema);
    let versions = format!("SELECT count(*) FROM {table}");
    db.exec(&format!("DELETE FROM {table} WHERE version = {SCHEMA_VERSION}"));
    let err = PgStore::connect_read_only(&db.url, &db.config()).unwrap_err();
    assert!(
        matches!(pg_error(&err), PgError::SchemaTooOld { found, supported, .. }
            if *found == SCHEMA_VERSION - 1 && *supported == SCHEMA_VERSION),
        "{err:?}"
    );
    assert_eq!(db.column_i64(&versions), [i64::from(SCHEMA_VERSION) - 1], "nothing migrated");

    // Newer: refused.
    db.exec(&format!(
        "INSERT INTO {table} (version, name) VALUES ({SCHEMA_VERSION}, 'journal'), ({}, 'from-the-future')",
        SCHEMA_VERSION + 1
    ));
    let err = PgStore::connect_read_only(&db.url, &db.config()).unwrap_err();
    assert!(matches!(pg_error(&err), PgError::SchemaTooNew { .. }), "{err:?}");
}

#[test]
fn instance_list_on_a_missing_schema_says_so_and_creates_nothing() {
    let Some(db) = TestDb::new("read_only_cli") else { return };
    for args in
        [vec!["instance", "list"], vec!["instance", "status", "--id", "x"], vec!["instance", "history", "--id", "x"]]
    {
        let out = Command::new(env!("CARGO_BIN_EXE_kars"))
            .args(&args)
            .args(["--store", db.url.as_str(), "--schema", db.schema.as_str()])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(&format!("schema `{}` holds no kars instances", db.schema)), "{args:?}: {stderr}");
    }
    let schemas = format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{}'", db.schema);
    assert_eq!(db.column_i64(&schemas), [0], "no schema created");
}
