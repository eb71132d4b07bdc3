//! What users pay for, in one suite: load and validate the KARS spec, compile it, one engine
//! transition, a clean KARS week per instance (one instance after another, and 10,000 held in
//! memory and advanced round-robin), a simulated week, a simulated year, 10,000 simulated
//! weeks, the bundled expectations (a year over ten seeds), 10,000 concurrent instances (time
//! and memory), and journal appends and replay.
//!
//! Run with `cargo bench --bench suite`; figures are in README.md. Memory is measured with a
//! counting allocator: the bytes still allocated after 10,000 instances are built (at Tuesday,
//! and at the end of a finished week), divided by 10,000.

use std::hint::black_box;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kars::spec::{CheckedSpec, NodeId, RoleId};
use kars::workflow::journal::{Durability, FileStore, FileStoreConfig, Store};
use kars::workflow::sim::expect::Expectations;
use kars::workflow::sim::{self, Model, SimConfig, SimHistory};
use kars::workflow::{Actor, Event, History, Instance, InstanceId, Record, Workflow};

#[path = "shared/counting.rs"]
mod counting;
#[path = "shared/week.rs"]
mod week;
use week::{Driven, Step, clean_week, monday, one_week};

const SPEC: &str = include_str!("../workflows/kars-release.yaml");
const MODEL: &str = include_str!("../workflows/kars-release.model.yaml");

fn spec() -> CheckedSpec {
    kars::spec::load(SPEC, "kars-release.yaml").expect("the bundled spec is valid")
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("a valid instant")
}

fn complete(node: &str, name: &str, role: &str) -> Event {
    Event::Complete {
        node: NodeId::new(node).expect("node id"),
        actor: Actor::new(name, vec![RoleId::new(role).expect("role id")]),
        outcome: None,
    }
}

/// An instance in the middle of Tuesday's development: started, planned, assigned.
fn tuesday(workflow: &Arc<Workflow>, n: usize) -> Instance {
    let id = InstanceId::new(format!("team-{n}")).expect("id");
    let mut instance = Instance::start(Arc::clone(workflow), id, at("2026-11-23T05:00:00Z"));
    instance.handle_event(complete("B", "erin", "product_manager"), at("2026-11-23T14:00:00Z")).expect("B");
    instance.handle_event(complete("C", "frank", "team_lead"), at("2026-11-23T15:00:00Z")).expect("C");
    instance.handle_timeout(at("2026-11-24T14:00:00Z"));
    instance
}

fn spec_benches(c: &mut Criterion) {
    c.bench_function("spec/load+validate kars-release.yaml", |b| {
        b.iter(|| kars::spec::load(black_box(SPEC), "kars-release.yaml").expect("valid"));
    });
    let checked = spec();
    c.bench_function("spec/compile", |b| b.iter(|| Workflow::compile(black_box(&checked)).expect("compiles")));
}

fn engine_benches(c: &mut Criterion) {
    let workflow = Arc::new(Workflow::compile(&spec()).expect("compiles"));
    // One transition: developer D completes (role check, state, history record, entering E).
    c.bench_function("engine/one transition (complete D)", |b| {
        b.iter_batched(
            || (tuesday(&workflow, 0), complete("D", "alice", "developer")),
            |(mut instance, event)| {
                instance.handle_event(event, at("2026-11-24T15:00:00Z")).expect("D");
                instance
            },
            BatchSize::SmallInput,
        );
    });
}

fn simulation_benches(c: &mut Criterion) {
    let checked = spec();
    let workflow = Arc::new(Workflow::compile(&checked).expect("compiles"));
    let model = Model::load(&checked, MODEL, "kars-release.model.yaml").expect("valid model");
    let start = NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
    let mut group = c.benchmark_group("simulate");
    for (name, weeks) in [("one week", 1), ("a year (52 weeks)", 52)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let config = SimConfig { weeks, seed: 7, start, history: SimHistory::Keep };
                sim::simulate(Arc::clone(&workflow), &model, &config, &mut ()).expect("runs")
            });
        });
    }
    group.sample_size(10);
    group.bench_function("10,000 weeks", |b| {
        b.iter(|| {
            let config = SimConfig { weeks: 10_000, seed: 7, start, history: SimHistory::Keep };
            sim::simulate(Arc::clone(&workflow), &model, &config, &mut ()).expect("runs")
        });
    });
    group.finish();
}

/// `kars simulate workflows/kars-release.yaml --expect`: ten seeds of 52 weeks, measured.
fn expect_benches(c: &mut Criterion) {
    let checked = spec();
    let workflow = Arc::new(Workflow::compile(&checked).expect("compiles"));
    let model = Model::load(&checked, MODEL, "kars-release.model.yaml").expect("valid model");
    let yaml = include_str!("../workflows/kars-release.expect.yaml");
    let expectations = Expectations::load(&checked, yaml, "kars-release.expect.yaml").expect("valid expectations");
    let mut group = c.benchmark_group("expect");
    group.sample_size(20);
    group.bench_function("a year over ten seeds (520 cycles)", |b| {
        b.iter(|| black_box(expectations.evaluate(&workflow, &model)));
    });
    group.finish();
}

fn concurrency_benches(c: &mut Criterion) {
    let workflow = Arc::new(Workflow::compile(&spec()).expect("compiles"));
    let mut group = c.benchmark_group("concurrent");
    group.sample_size(10);
    group.bench_function("10,000 instances to Tuesday", |b| {
        b.iter(|| (0..10_000).map(|n| tuesday(&workflow, n)).collect::<Vec<_>>());
    });
    group.finish();
    let before = counting::live();
    let mut instances: Vec<Instance> = (0..10_000).map(|n| tuesday(&workflow, n)).collect();
    let bytes = counting::live().saturating_sub(before);
    println!(
        "memory: 10,000 live instances (each at Tuesday: started, 2 tasks done, 1 gate opened) hold {:.2} MB, {} bytes each",
        bytes as f64 / 1e6,
        bytes / instances.len()
    );
    for instance in &mut instances {
        let journaled = instance.history().next_seq();
        instance.release_history(journaled);
    }
    let bytes = counting::live().saturating_sub(before);
    println!(
        "memory: the same 10,000 instances with their journaled history released (as a journaling service holds them) hold {:.2} MB, {} bytes each",
        bytes as f64 / 1e6,
        bytes / instances.len()
    );
    let footprint = instances[0].footprint();
    println!(
        "memory: one instance: {} bytes inline, {} bytes of state on the heap, {} bytes without its history",
        footprint.inline,
        footprint.state_heap,
        footprint.without_history()
    );
}

fn records(history: &History) -> Vec<Vec<u8>> {
    history.records().map(|r| serde_json::to_vec(&r).expect("records serialize")).collect()
}

fn journal_benches(c: &mut Criterion) {
    let checked = spec();
    let workflow = Arc::new(Workflow::compile(&checked).expect("compiles"));
    let model = Model::load(&checked, MODEL, "kars-release.model.yaml").expect("valid model");
    let config = SimConfig {
        weeks: 52,
        seed: 7,
        start: NaiveDate::from_ymd_opt(2026, 1, 5).expect("date"),
        history: SimHistory::Keep,
    };
    let run = sim::simulate(Arc::clone(&workflow), &model, &config, &mut ()).expect("runs");
    let history = run.instance.history().clone();
    let encoded = records(&history);
    let header = serde_json::to_vec(&history.header).expect("header serializes");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("journal");
    for (n, (name, durability)) in
        [("append one record, fsync", Durability::Fsync), ("append one record, no fsync", Durability::None)]
            .into_iter()
            .enumerate()
    {
        let store = FileStore::open(dir.path())
            .expect("store")
            .with_config(FileStoreConfig::default().with_durability(durability));
        let id = InstanceId::new(format!("append-{n}")).expect("id");
        store.create(&id, &header).expect("create");
        let mut version = 0;
        let record = encoded[encoded.len() / 2].as_slice();
        group.bench_function(name, |b| {
            b.iter(|| {
                version = store.append(&id, version, &[record]).expect("append");
            });
        });
    }
    let store = FileStore::open(dir.path())
        .expect("store")
        .with_config(FileStoreConfig::default().with_durability(Durability::None));
    let id = InstanceId::new("year").expect("id");
    store.create(&id, &header).expect("create");
    let slices: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
    store.append(&id, 0, &slices).expect("append a year");
    let label = format!("read and replay a year ({} records)", encoded.len());
    group.bench_function(label.as_str(), |b| {
        b.iter(|| {
            let stored = store.read(&id).expect("read");
            let header = serde_json::from_slice(&stored.header).expect("header");
            let records = stored.records.iter().map(|r| serde_json::from_slice::<Record>(r).expect("record"));
            let history = History::from_records(header, 0, records).expect("in order");
            Instance::replay(Arc::clone(&workflow), &history).expect("replays")
        });
    });
    group.finish();
}

fn week_benches(c: &mut Criterion) {
    let workflow = Arc::new(Workflow::compile(&spec()).expect("compiles"));
    let (steps, entered) = clean_week(&workflow);
    println!("week: a clean KARS week enters {entered} nodes through {} inputs", steps.len());
    let id = InstanceId::new("kars-release").expect("id");
    let mut group = c.benchmark_group("week");
    group.sample_size(10);
    // One iteration is one instance's whole week (start, drive, drop); criterion runs well
    // over 100,000 of them one after another per measurement. The throughput is nodes entered.
    group.throughput(Throughput::Elements(entered as u64));
    let start = monday();
    group.bench_function("a clean KARS week per instance, 100,000 instances one after another", |b| {
        b.iter(|| one_week(&workflow, &id, start, &steps));
    });
    // One iteration is 10,000 instances started, then advanced one input each in turn until
    // every one has finished its week.
    const ROUND: usize = 10_000;
    group.throughput(Throughput::Elements((entered * ROUND) as u64));
    group.bench_function("10,000 instances round-robin, a clean KARS week each", |b| {
        b.iter(|| round_robin(&workflow, &steps, ROUND));
    });
    group.finish();
    let before = counting::live();
    let mut instances = round_robin(&workflow, &steps, ROUND);
    let bytes = counting::live().saturating_sub(before);
    println!(
        "memory: 10,000 live instances at the end of a finished week, history kept, hold {:.2} MB, {} bytes each",
        bytes as f64 / 1e6,
        bytes / ROUND
    );
    for instance in &mut instances {
        let journaled = instance.history().next_seq();
        instance.release_history(journaled);
    }
    let bytes = counting::live().saturating_sub(before);
    println!(
        "memory: the same 10,000 instances with their history released hold {:.2} MB, {} bytes each",
        bytes as f64 / 1e6,
        bytes / ROUND
    );
}

/// Starts `count` instances, then plays one step of each in turn until all finished the week.
fn round_robin(workflow: &Arc<Workflow>, steps: &[Step], count: usize) -> Vec<Instance> {
    let start = monday();
    let mut weeks: Vec<Driven> = (0..count)
        .map(|n| Driven::start(workflow, &InstanceId::new(format!("team-{n}")).expect("id"), start))
        .collect();
    for _ in 0..steps.len() {
        for week in &mut weeks {
            week.step(steps);
        }
    }
    weeks.into_iter().map(Driven::finished).collect()
}

criterion_group!(
    benches,
    spec_benches,
    engine_benches,
    week_benches,
    simulation_benches,
    expect_benches,
    concurrency_benches,
    journal_benches
);
criterion_main!(benches);
