//! Drives N instances through a clean KARS week, one after another, with exactly the drive of
//! the bench `cargo bench --bench suite -- "week/a clean"` (the same module,
//! `benches/shared/week.rs`): a target for profilers (instructions per week), and the bytes
//! one instance holds at the end of its week (history kept, then released), counted by the
//! bench's counting allocator.
//!
//! `cargo build --release --example week_loop`, then
//! `valgrind --tool=callgrind target/release/examples/week_loop 600` and the same with 200:
//! the difference of the two totals divided by 400 is the instructions per week (the start-up,
//! the spec load and the probe week cancel out). `week_loop N round-robin` holds N instances
//! and plays one step of each in turn, as the bench "week/10,000 instances round-robin" does:
//! under `valgrind --tool=cachegrind --cache-sim=yes`, the difference of the last-level misses
//! of two N is what a cold instance's week misses.

use std::sync::Arc;

use kars::workflow::{Instance, InstanceId, Workflow};

#[path = "../benches/shared/counting.rs"]
mod counting;
#[path = "../benches/shared/week.rs"]
#[allow(dead_code)]
mod week;

const SPEC: &str = include_str!("../workflows/kars-release.yaml");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args().nth(1).map_or(Ok(1000), |s| s.parse())?;
    let round_robin = std::env::args().nth(2).is_some_and(|mode| mode == "round-robin");
    let spec = kars::spec::load(SPEC, "kars-release.yaml")?;
    let workflow = Arc::new(Workflow::compile(&spec)?);
    let (steps, entered) = week::clean_week(&workflow);
    let id = InstanceId::new("kars-release")?;
    let start = week::monday();
    if round_robin {
        // The bench's "10,000 instances round-robin": N instances held, one step of each in
        // turn (for a cache simulator: the misses an instance's step pays when it is cold).
        let mut weeks: Vec<week::Driven> = (0..n)
            .map(|i| Ok(week::Driven::start(&workflow, &InstanceId::new(format!("team-{i}"))?, start)))
            .collect::<Result<_, kars::workflow::InstanceIdError>>()?;
        for _ in 0..steps.len() {
            for week in &mut weeks {
                week.step(&steps);
            }
        }
        drop(weeks.into_iter().map(week::Driven::finished).collect::<Vec<_>>());
    } else {
        for _ in 0..n {
            week::one_week(&workflow, &id, start, &steps);
        }
    }
    // One more, kept: what it holds at the end of its week.
    let before = counting::live();
    let mut driven = week::Driven::start(&workflow, &InstanceId::new("team-0")?, start);
    while driven.step(&steps) {}
    let mut instance: Instance = driven.finished();
    let kept = counting::live().saturating_sub(before);
    let journaled = instance.history().next_seq();
    instance.release_history(journaled);
    let released = counting::live().saturating_sub(before);
    println!(
        "{n} clean weeks ({entered} nodes entered, {} inputs each); one instance at the end of its week holds {kept} B with its history ({journaled} records), {released} B with it released",
        steps.len(),
    );
    Ok(())
}
