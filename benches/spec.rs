//! Load + validate of the bundled release spec (goal: under 500 µs).

use criterion::{Criterion, criterion_group, criterion_main};

fn load_and_validate(c: &mut Criterion) {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml"))
        .expect("the bundled spec is readable");
    c.bench_function("load kars-release.yaml", |b| {
        b.iter(|| kars::spec::load(std::hint::black_box(&source), "kars-release.yaml").expect("valid"));
    });
    let spec = kars::spec::load(&source, "kars-release.yaml").expect("valid").into_spec();
    c.bench_function("check kars-release spec", |b| {
        b.iter(|| kars::spec::check(std::hint::black_box(spec.clone())).expect("valid"));
    });
}

criterion_group!(benches, load_and_validate);
criterion_main!(benches);
