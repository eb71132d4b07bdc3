//! Journal throughput: appends per second with and without fsync, and replaying a long journal.
//!
//! Run with `cargo bench -p kars-workflow --bench journal`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kars_workflow::InstanceId;
use kars_workflow::journal::{Durability, FileStore, FileStoreConfig, Store};

/// A record about the size of a serialized history event.
fn record(i: u64) -> Vec<u8> {
    format!(r#"{{"at":"2026-11-26T17:00:00Z","event":"task_completed","node":"N{i}","actor":"alice"}}"#).into_bytes()
}

fn store(dir: &std::path::Path, durability: Durability) -> FileStore {
    FileStore::open(dir).expect("bench directory").with_config(FileStoreConfig::default().with_durability(durability))
}

fn appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for (name, durability) in [("fsync", Durability::Fsync), ("no_sync", Durability::None)] {
        for batch in [1u64, 100] {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = store(dir.path(), durability);
            let id = InstanceId::new("bench").expect("valid id");
            store.create(&id, b"{}").expect("create");
            let records: Vec<Vec<u8>> = (0..batch).map(record).collect();
            let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            let mut version = 0;
            group.throughput(Throughput::Elements(batch));
            group.bench_function(format!("{name}/batch_of_{batch}"), |b| {
                b.iter(|| version = store.append(&id, black_box(version), &refs).expect("append"));
            });
        }
    }
    group.finish();
}

fn replay(c: &mut Criterion) {
    const RECORDS: u64 = 100_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), Durability::None);
    let id = InstanceId::new("long").expect("valid id");
    store.create(&id, b"{}").expect("create");
    let records: Vec<Vec<u8>> = (0..RECORDS).map(record).collect();
    let mut version = 0;
    for chunk in records.chunks(1000) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        version = store.append(&id, version, &refs).expect("append");
    }
    let mut group = c.benchmark_group("replay");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(RECORDS));
    group.bench_function("read_100k_records", |b| {
        b.iter(|| {
            let stored = FileStore::open(dir.path()).expect("open").read(&id).expect("read");
            assert_eq!(stored.version, RECORDS);
            black_box(stored)
        });
    });
    group.bench_function("version_of_100k_records_cold", |b| {
        b.iter(|| FileStore::open(dir.path()).expect("open").version(&id).expect("version"));
    });
    group.finish();
}

criterion_group!(benches, appends, replay);
criterion_main!(benches);
