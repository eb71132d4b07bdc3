//! A PostgreSQL schema of its own for one test, dropped afterwards; skipped (with the reason
//! printed) when no server answers, unless `KARS_REQUIRE_POSTGRES=1` makes that a failure.

use tokio_postgres::NoTls;

/// The connection string of the test database.
pub fn url() -> String {
    std::env::var("KARS_TEST_DATABASE_URL").unwrap_or_else(|_| "host=/var/run/postgresql dbname=test".to_owned())
}

/// A test's schema, and an administrator's connection to look behind the store's back.
pub struct TestDb {
    pub url: String,
    pub schema: String,
    pub admin: tokio_postgres::Client,
    pub runtime: tokio::runtime::Runtime,
}

impl TestDb {
    /// A fresh schema `kars_test_<name>_<pid>`, or `None` (test skipped) without a server.
    pub fn new(name: &str) -> Option<Self> {
        let url = url();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let connected = runtime.block_on(tokio_postgres::connect(&url, NoTls));
        let (admin, connection) = match connected {
            Ok(pair) => pair,
            Err(e) => {
                assert!(
                    std::env::var("KARS_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "KARS_REQUIRE_POSTGRES=1 and no PostgreSQL answers at `{url}`: {e}"
                );
                eprintln!(
                    "skipping `{name}`: no PostgreSQL answers at `{url}` ({e}); set KARS_TEST_DATABASE_URL, \
                     or KARS_REQUIRE_POSTGRES=1 to fail instead"
                );
                return None;
            }
        };
        runtime.spawn(connection);
        let schema: String = format!("kars_test_{name}_{}", std::process::id()).chars().take(63).collect();
        let db = Self { url, schema, admin, runtime };
        db.exec(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", db.schema));
        Some(db)
    }

    /// Runs `sql` (statements without parameters) as the administrator.
    pub fn exec(&self, sql: &str) {
        self.runtime.block_on(self.admin.batch_execute(sql)).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The first column of every row of `sql`, as `i64`.
    pub fn column_i64(&self, sql: &str) -> Vec<i64> {
        let rows = self.runtime.block_on(self.admin.query(sql, &[])).unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.iter().map(|r| r.get::<_, i64>(0)).collect()
    }

    /// Terminates every connection whose `application_name` is `name`; how many there were.
    pub fn terminate(&self, name: &str) -> usize {
        let sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1";
        self.runtime.block_on(self.admin.query(sql, &[&name])).unwrap().len()
    }

    /// A store's configuration for this schema. Replicas claim an effect as soon as it is
    /// emitted (no grace for its writer): the tests emit effects without performing them.
    pub fn config(&self) -> kars::workflow::journal::PgStoreConfig {
        kars::workflow::journal::PgStoreConfig::default()
            .with_schema(&self.schema)
            .with_effect_grace(std::time::Duration::ZERO)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        // Dropped during a panic too: a failed drop must not hide the test's own message.
        let _ = self.runtime.block_on(self.admin.batch_execute(&sql));
    }
}

/// The PostgreSQL error inside `e` (a test failure when it is another kind).
pub fn pg_error(e: &kars::workflow::journal::JournalError) -> &kars::workflow::journal::postgres::PgError {
    match e {
        kars::workflow::journal::JournalError::Postgres(pg) => pg,
        other => panic!("not a PostgreSQL error: {other:?}"),
    }
}

/// The bundled KARS spec the store tests drive.
const SPEC: &str = include_str!("../../workflows/kars-release.yaml");

/// The KARS program, compiled once.
pub fn program() -> kars::workflow::driver::Program {
    static PROGRAM: std::sync::OnceLock<kars::workflow::driver::Program> = std::sync::OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            kars::workflow::driver::Program::new(&kars::spec::load(SPEC, "kars-release.yaml").unwrap()).unwrap()
        })
        .clone()
}

/// The KARS spec's own team as a roster.
pub fn roster() -> &'static kars::workflow::driver::Roster {
    static ROSTER: std::sync::OnceLock<kars::workflow::driver::Roster> = std::sync::OnceLock::new();
    ROSTER.get_or_init(|| {
        kars::workflow::driver::Roster::from_spec(kars::spec::load(SPEC, "kars-release.yaml").unwrap().spec())
    })
}

/// `2026-11-23 09:00` in Toronto, the KARS spec's zone.
pub fn local(s: &str) -> chrono::DateTime<chrono::Utc> {
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    kars::spec::calendar::resolve_local(chrono_tz::America::Toronto, naive)
}
