//! The PostgreSQL store against a real server: the `Store` semantics, racing appenders,
//! migrations, a commit whose reply is lost, and connections terminated under load.
#![cfg(feature = "postgres")]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use kars::workflow::InstanceId;
use kars::workflow::journal::postgres::{PgError, SCHEMA_VERSION};
use kars::workflow::journal::{JournalError, PgStore, Store};

#[path = "support/postgres.rs"]
#[allow(dead_code)]
mod support;
use support::{TestDb, pg_error};

fn id(s: &str) -> InstanceId {
    InstanceId::new(s).unwrap()
}

#[test]
fn the_store_semantics_hold() {
    let Some(db) = TestDb::new("semantics") else { return };
    let store = PgStore::connect(&db.url, &db.config().with_max_record_len(64)).unwrap();
    let a = id("a");
    store.create(&a, b"header-a").unwrap();
    assert!(matches!(store.create(&a, b"again"), Err(JournalError::AlreadyExists { .. })));
    assert_eq!(store.append(&a, 0, &[b"r0", b"r1"]).unwrap(), 2);
    assert_eq!(store.append(&a, 2, &[]).unwrap(), 2, "an empty append checks the version");
    let err = store.append(&a, 1, &[b"late"]).unwrap_err();
    assert!(matches!(err, JournalError::Conflict { expected: 1, actual: 2, .. }), "{err:?}");
    assert!(matches!(store.append(&a, 0, &[]), Err(JournalError::Conflict { actual: 2, .. })));
    let big = vec![b'x'; 65];
    let err = store.append(&a, 2, &[b"ok", &big]).unwrap_err();
    assert!(matches!(err, JournalError::TooLarge { index: Some(1), len: 65, max: 64, .. }), "{err:?}");
    assert!(matches!(store.create(&id("b"), &big), Err(JournalError::TooLarge { index: None, .. })));
    let stored = store.read(&a).unwrap();
    assert_eq!(stored.header, b"header-a");
    assert_eq!(stored.records, [b"r0".to_vec(), b"r1".to_vec()]);
    assert_eq!(stored.version, 2);
    assert_eq!(store.version(&a).unwrap(), 2);
    assert!(matches!(store.read(&id("nope")), Err(JournalError::NotFound { .. })));
    assert!(matches!(store.append(&id("nope"), 0, &[b"x"]), Err(JournalError::NotFound { .. })));
    store.create(&id("B-2"), b"").unwrap();
    store.create(&id("0"), b"").unwrap();
    assert_eq!(store.list().unwrap(), [id("0"), id("B-2"), id("a")], "sorted as the file store sorts");
    // A second store over the same schema sees the same instances.
    let other = PgStore::connect(&db.url, &db.config()).unwrap();
    assert_eq!(other.read(&a).unwrap(), stored);
    // The rows: one per record, keyed (instance, sequence) from 0.
    let sequences = db.column_i64(&format!("SELECT sequence FROM \"{}\".records ORDER BY sequence", db.schema));
    assert_eq!(sequences, [0, 1]);
}

#[test]
fn a_page_of_records_is_the_slice_of_the_whole_journal() {
    let Some(db) = TestDb::new("pages") else { return };
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let (a, memory) = (id("a"), kars::workflow::journal::MemoryStore::new());
    let records: Vec<Vec<u8>> = (0..23).map(|i| format!("record {i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    for s in [&store as &dyn Store, &memory] {
        s.create(&a, b"header").unwrap();
        s.append(&a, 0, &refs).unwrap();
    }
    for after in [0, 1, 7, 22, 23, 24, u64::MAX] {
        for limit in [0, 1, 5, 23, 1000, usize::MAX] {
            let page = store.read_page(&a, after, limit).unwrap();
            let from = usize::try_from(after).unwrap_or(usize::MAX).min(records.len());
            let want: Vec<Vec<u8>> = records[from..].iter().take(limit).cloned().collect();
            assert_eq!((page.records, page.version), (want, 23), "after {after}, limit {limit}");
            // The trait's default (the whole journal, sliced) gives the same page.
            assert_eq!(memory.read_page(&a, after, limit).unwrap(), store.read_page(&a, after, limit).unwrap());
        }
    }
    assert!(matches!(store.read_page(&id("nope"), 0, 10), Err(JournalError::NotFound { .. })));
}

#[test]
fn racing_appenders_over_many_connections_win_one_version_each_without_gaps() {
    let Some(db) = TestDb::new("racing") else { return };
    let x = id("race");
    PgStore::connect(&db.url, &db.config()).unwrap().create(&x, b"h").unwrap();
    const WRITERS: usize = 8;
    const TARGET: u64 = 240;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            // A store (and pool) per writer: every writer on its own connection.
            let store = PgStore::connect(&db.url, &db.config().with_pool_size(1)).unwrap();
            let (barrier, x) = (Arc::clone(&barrier), x.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let (mut won, mut conflicts) = (Vec::new(), 0u32);
                let mut seen = store.version(&x).unwrap();
                while seen < TARGET {
                    let record = format!("{w}:{seen}");
                    match store.append(&x, seen, &[record.as_bytes()]) {
                        Ok(v) => {
                            assert_eq!(v, seen + 1);
                            won.push((v, record));
                            seen = v;
                        }
                        Err(JournalError::Conflict { actual, expected, .. }) => {
                            assert_eq!(expected, seen);
                            assert!(actual > seen, "a conflict reports a newer version");
                            conflicts += 1;
                            seen = actual;
                        }
                        Err(e) => panic!("writer {w}: {e}"),
                    }
                }
                (won, conflicts)
            })
        })
        .collect();
    let mut winners = std::collections::BTreeMap::new();
    let mut conflicts = 0;
    for handle in handles {
        let (won, lost) = handle.join().unwrap();
        conflicts += lost;
        for (version, record) in won {
            assert!(winners.insert(version, record).is_none(), "two writers won version {version}");
        }
    }
    assert!(conflicts > 0, "the writers never raced");
    let versions: Vec<u64> = winners.keys().copied().collect();
    assert_eq!(versions, (1..=TARGET).collect::<Vec<_>>(), "every version won exactly once, no gaps");
    let stored = PgStore::connect(&db.url, &db.config()).unwrap().read(&x).unwrap();
    let expected: Vec<Vec<u8>> = winners.values().map(|r| r.as_bytes().to_vec()).collect();
    assert_eq!(stored.records, expected, "each version holds its winner's record");
}

#[test]
fn migrations_are_recorded_once_and_a_newer_schema_is_refused() {
    let Some(db) = TestDb::new("migrations") else { return };
    // Four processes' worth of stores opening a fresh schema at once: each migration once.
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let (url, config) = (db.url.clone(), db.config());
            std::thread::spawn(move || PgStore::connect(&url, &config).map(|s| s.migrations().to_vec()))
        })
        .collect();
    for handle in opened {
        let migrations = handle.join().unwrap().unwrap();
        let versions: Vec<i32> = migrations.iter().map(|m| m.version).collect();
        assert_eq!(versions, [1, 2]);
        let names: Vec<&str> = migrations.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["journal", "claim-indexes"]);
    }
    let table = format!("\"{}\".kars_migrations", db.schema);
    let recorded = db.column_i64(&format!("SELECT version::bigint FROM {table} ORDER BY version"));
    assert_eq!(recorded, [1, i64::from(SCHEMA_VERSION)]);
    let tables =
        db.column_i64(&format!("SELECT count(*) FROM information_schema.tables WHERE table_schema = '{}'", db.schema));
    assert_eq!(tables, [4], "kars_migrations, instances, records, outbox");

    // A newer build migrated further: this one refuses the schema, and changes nothing.
    db.exec(&format!("INSERT INTO {table} (version, name) VALUES (3, 'from-the-future')"));
    let err = PgStore::connect(&db.url, &db.config()).unwrap_err();
    assert!(
        matches!(pg_error(&err), PgError::SchemaTooNew { found: 3, supported: 2, schema } if *schema == db.schema),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "schema `{}` is at kars database schema version 3, and this build knows versions up to 2\n\
             help: upgrade kars to a build that knows version 3; an older build never writes a newer schema",
            db.schema
        )
    );
    // A schema whose migration 1 is something else is not kars's.
    db.exec(&format!("DELETE FROM {table}; INSERT INTO {table} (version, name) VALUES (1, 'other')"));
    let err = PgStore::connect(&db.url, &db.config()).unwrap_err();
    assert!(matches!(pg_error(&err), PgError::MigrationMismatch { version: 1, .. }), "{err:?}");
    // Bad schema names never reach SQL.
    let err = PgStore::connect(&db.url, &db.config().with_schema("x; DROP TABLE y")).unwrap_err();
    assert!(matches!(pg_error(&err), PgError::BadSchemaName { .. }), "{err:?}");
}

/// A schema that a build of schema version 1 left gets migration 2 (the claim indexes) when a
/// writing store opens it, its rows as they were.
#[test]
fn a_version_1_schema_is_migrated_to_the_claim_indexes() {
    let Some(db) = TestDb::new("migrate_v1") else { return };
    let store = PgStore::connect(&db.url, &db.config()).unwrap();
    let x = id("x");
    store.create(&x, b"h").unwrap();
    store.append(&x, 0, &[b"one"]).unwrap();
    // Back to what migration 1 made.
    let s = &db.schema;
    db.exec(&format!(
        "DROP INDEX \"{s}\".instances_claim_order; DROP INDEX \"{s}\".outbox_pending_by_instance; \
         CREATE INDEX outbox_pending ON \"{s}\".outbox (emitted_at) WHERE done_version IS NULL; \
         DELETE FROM \"{s}\".kars_migrations WHERE version = 2"
    ));
    let indexes = |names: &str| {
        db.column_i64(&format!("SELECT count(*) FROM pg_indexes WHERE schemaname = '{s}' AND indexname IN ({names})"))
    };
    assert_eq!(indexes("'instances_claim_order', 'outbox_pending_by_instance'"), [0]);

    let upgraded = PgStore::connect(&db.url, &db.config()).unwrap();
    let versions: Vec<i32> = upgraded.migrations().iter().map(|m| m.version).collect();
    assert_eq!(versions, [1, SCHEMA_VERSION]);
    assert_eq!(indexes("'instances_claim_order', 'outbox_pending_by_instance'"), [2]);
    assert_eq!(indexes("'outbox_pending'"), [0], "replaced");
    assert_eq!(upgraded.read(&x).unwrap().records, [b"one".to_vec()]);
}

/// What the proxy does to the next `COMMIT` it sees.
const PASS: u8 = 0;
/// Forwards the `COMMIT`, then closes the connection instead of forwarding the reply: the
/// commit happened, and the client cannot know.
const LOSE_REPLY: u8 = 1;
/// Closes the connection instead of forwarding the `COMMIT`: the transaction rolls back.
const LOSE_COMMIT: u8 = 2;

/// A TCP proxy to the test database that can lose one `COMMIT` or its reply.
struct Proxy {
    port: u16,
    mode: Arc<AtomicU8>,
}

impl Proxy {
    fn start(db: &TestDb) -> Self {
        let config: tokio_postgres::Config = db.url.parse().unwrap();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let host = config.get_hosts().first().cloned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = Self { port: listener.local_addr().unwrap().port(), mode: Arc::new(AtomicU8::new(PASS)) };
        let mode = Arc::clone(&proxy.mode);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let server: Box<dyn Duplex> = match &host {
                    Some(tokio_postgres::config::Host::Unix(dir)) => {
                        let path = dir.join(format!(".s.PGSQL.{port}"));
                        Box::new(std::os::unix::net::UnixStream::connect(path).unwrap())
                    }
                    Some(tokio_postgres::config::Host::Tcp(h)) => {
                        Box::new(TcpStream::connect((h.as_str(), port)).unwrap())
                    }
                    None => Box::new(TcpStream::connect(("127.0.0.1", port)).unwrap()),
                };
                pump(client, server, Arc::clone(&mode));
            }
        });
        proxy
    }

    /// The proxy's connection string (database and user of the test database).
    fn url(&self, db: &TestDb) -> String {
        let config: tokio_postgres::Config = db.url.parse().unwrap();
        let mut url = format!("host=127.0.0.1 port={}", self.port);
        if let Some(name) = config.get_dbname() {
            url.push_str(&format!(" dbname={name}"));
        }
        if let Some(user) = config.get_user() {
            url.push_str(&format!(" user={user}"));
        }
        url
    }
}

trait Duplex: Read + Write + Send {
    fn split(&self) -> Box<dyn Duplex>;
    fn close(&self);
}

impl Duplex for TcpStream {
    fn split(&self) -> Box<dyn Duplex> {
        Box::new(self.try_clone().unwrap())
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Duplex for std::os::unix::net::UnixStream {
    fn split(&self) -> Box<dyn Duplex> {
        Box::new(self.try_clone().unwrap())
    }
    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

/// Copies bytes both ways, applying the mode to the first `COMMIT` seen.
fn pump(client: TcpStream, server: Box<dyn Duplex>, mode: Arc<AtomicU8>) {
    let drop_next_reply = Arc::new(AtomicBool::new(false));
    let (mut client_in, mut server_out) = (client.try_clone().unwrap(), server.split());
    let (client_close, server_close) = (client.try_clone().unwrap(), server.split());
    let flag = Arc::clone(&drop_next_reply);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = client_in.read(&mut buf) {
            let is_commit = buf[..n].windows(6).any(|w| w == b"COMMIT");
            if is_commit {
                match mode.swap(PASS, Ordering::SeqCst) {
                    LOSE_REPLY => flag.store(true, Ordering::SeqCst),
                    LOSE_COMMIT => break,
                    _ => {}
                }
            }
            if server_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        client_close.close();
        server_close.close();
    });
    let (mut server_in, mut client_out) = (server, client);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = server_in.read(&mut buf) {
            if drop_next_reply.load(Ordering::SeqCst) {
                break;
            }
            if client_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        client_out.close();
        server_in.close();
    });
}

#[test]
fn a_commit_whose_outcome_was_lost_is_resolved_by_re_reading_never_appended_twice() {
    let Some(db) = TestDb::new("lost_commit") else { return };
    let proxy = Proxy::start(&db);
    let through_proxy = PgStore::connect(&proxy.url(&db), &db.config().with_pool_size(1)).unwrap();
    let direct = PgStore::connect(&db.url, &db.config()).unwrap();
    let x = id("x");
    through_proxy.create(&x, b"h").unwrap();

    // The commit lands and its reply is lost: the store finds its records and succeeds.
    proxy.mode.store(LOSE_REPLY, Ordering::SeqCst);
    assert_eq!(through_proxy.append(&x, 0, &[b"one", b"two"]).unwrap(), 2);
    assert_eq!(proxy.mode.load(Ordering::SeqCst), PASS, "the proxy lost a reply");
    assert_eq!(direct.read(&x).unwrap().records, [b"one".to_vec(), b"two".to_vec()], "appended once");

    // The commit never reaches the server: the store finds the version unchanged, appends again.
    proxy.mode.store(LOSE_COMMIT, Ordering::SeqCst);
    assert_eq!(through_proxy.append(&x, 2, &[b"three"]).unwrap(), 3);
    assert_eq!(proxy.mode.load(Ordering::SeqCst), PASS, "the proxy lost a commit");
    assert_eq!(direct.read(&x).unwrap().records, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);

    // Each case lost one connection and appended once: the pool and the server agree.
    assert_eq!(direct.version(&x).unwrap(), 3);
    let rows = db.column_i64(&format!("SELECT count(*) FROM \"{}\".records", db.schema));
    assert_eq!(rows, [3]);
}

#[test]
fn the_store_recovers_when_its_connections_are_terminated() {
    let Some(db) = TestDb::new("terminated") else { return };
    let name = format!("kars-test-terminated-{}", std::process::id());
    let store = PgStore::connect(&db.url, &db.config().with_application_name(&name).with_pool_size(4)).unwrap();
    let x = id("x");
    store.create(&x, b"h").unwrap();
    store.append(&x, 0, &[b"0"]).unwrap();
    assert!(db.terminate(&name) >= 1, "the store holds a connection");
    assert_eq!(store.read(&x).unwrap().version, 1, "a read after the kill reconnects");

    // Appends go on while every connection of the store is killed again and again.
    let writer = {
        let (store, x) = (store.clone(), x.clone());
        std::thread::spawn(move || {
            let mut version = 1;
            while version < 150 {
                let record = version.to_string();
                version = store.append(&x, version, &[record.as_bytes()]).unwrap_or_else(|e| panic!("{e}"));
            }
        })
    };
    let mut killed = 0;
    while !writer.is_finished() {
        killed += db.terminate(&name);
        std::thread::sleep(Duration::from_millis(100));
    }
    writer.join().unwrap();
    assert!(killed > 0, "no connection was terminated during the appends");
    let records = store.read(&x).unwrap().records;
    let expected: Vec<Vec<u8>> = (0..150u64).map(|v| v.to_string().into_bytes()).collect();
    assert_eq!(records, expected, "nothing lost, nothing twice");
}

#[test]
fn sync_calls_work_inside_a_tokio_runtime_and_async_calls_too() {
    let Some(db) = TestDb::new("in_runtime") else { return };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // The blocking `postgres` crate panics here ("cannot start a runtime from within a
        // runtime"); this store hands the job to its own runtime.
        let store = PgStore::connect(&db.url, &db.config()).unwrap();
        let x = id("x");
        store.create(&x, b"h").unwrap();
        assert_eq!(store.append(&x, 0, &[b"sync"]).unwrap(), 1);
        assert_eq!(store.append_async(&x, 1, vec![b"async".to_vec()]).await.unwrap(), 2);
        assert_eq!(store.read_async(&x).await.unwrap().records.len(), 2);
        assert_eq!(store.list_async().await.unwrap(), [x]);
        drop(store); // dropping the store inside a runtime must not panic either
    });
}
