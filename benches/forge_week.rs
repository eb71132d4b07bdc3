//! What a KARS week of forge calls costs: the whole week driven through the GitHub adapter
//! against the local fake GitHub of `tests/fake_forge` (HTTP over loopback, JSON both ways,
//! one `mergeable: null` read per pull request). The request count is asserted in
//! `tests/forge_week.rs`; figures are in README.md.
//!
//! `cargo bench --bench forge_week --features forge`

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../tests/fake_forge/mod.rs"]
mod fake_forge;

use fake_forge::week::{World, released, run_week};

fn week(c: &mut Criterion) {
    c.bench_function("forge/kars_week_through_github", |b| {
        b.iter_with_large_drop(|| {
            let world = World::new();
            let driver = run_week(&world);
            released(&driver);
            (driver, world)
        });
    });
}

criterion_group!(benches, week);
criterion_main!(benches);
