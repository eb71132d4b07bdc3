//! PostgreSQL store throughput: appends per second, one record per transaction and 100, and
//! several writers on their own instances at once.
//!
//! Run with `cargo bench -p kars-workflow --features postgres --bench postgres`, against
//! `KARS_TEST_DATABASE_URL` (default: the local socket, database `test`); it works in a schema
//! of its own (`kars_bench_<pid>`) and drops it. Without a server it prints why and measures
//! nothing.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kars_workflow::InstanceId;
use kars_workflow::journal::{PgStore, PgStoreConfig, Store};

/// A record about the size of a serialized history event.
fn record(i: u64) -> Vec<u8> {
    format!(r#"{{"at":"2026-11-26T17:00:00Z","event":"task_completed","node":"N{i}","actor":"alice"}}"#).into_bytes()
}

#[path = "support/postgres.rs"]
mod support;
use support::{Schema, url};

fn appends(c: &mut Criterion) {
    let schema = Schema { name: format!("kars_bench_{}", std::process::id()) };
    let config = PgStoreConfig::default().with_schema(&schema.name);
    let store = match PgStore::connect(&url(), &config) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("skipping the PostgreSQL benches: {e}");
            return;
        }
    };
    let mut group = c.benchmark_group("postgres_append");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for batch in [1u64, 100] {
        let id = InstanceId::new(format!("bench-{batch}")).expect("valid id");
        store.create(&id, b"{}").expect("create");
        let records: Vec<Vec<u8>> = (0..batch).map(record).collect();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let mut version = 0;
        group.throughput(Throughput::Elements(batch));
        group.bench_function(format!("batch_of_{batch}"), |b| {
            b.iter(|| version = store.append(&id, black_box(version), &refs).expect("append"));
        });
    }
    // Four writers, each on its own instance and connection, one record per transaction.
    const WRITERS: u64 = 4;
    let ids: Vec<InstanceId> =
        (0..WRITERS).map(|w| InstanceId::new(format!("writer-{w}")).expect("valid id")).collect();
    for id in &ids {
        store.create(id, b"{}").expect("create");
    }
    let mut versions = vec![0u64; ids.len()];
    group.throughput(Throughput::Elements(WRITERS));
    group.bench_function("4_writers_batch_of_1", |b| {
        b.iter(|| {
            std::thread::scope(|scope| {
                for (id, version) in ids.iter().zip(versions.iter_mut()) {
                    let store = &store;
                    scope.spawn(move || {
                        let payload = record(*version);
                        *version = store.append(id, *version, &[&payload]).expect("append");
                    });
                }
            });
        });
    });
    group.finish();
}

criterion_group!(benches, appends);
criterion_main!(benches);
