//! Replays the history of the bench's clean KARS week N times: `week/replay the clean week's
//! history` as a callgrind target (the same week as `week_loop`, driven by
//! `benches/shared/week.rs`).
//!
//! `cargo build --release --example replay_loop`, then
//! `valgrind --tool=callgrind --toggle-collect='replay_loop::timed' target/release/examples/replay_loop 300`
//! and the same with 100: the difference of the two totals divided by 200 is the instructions
//! per replay.

use kars::workflow::{Instance, InstanceId, Workflow};
use std::sync::Arc;
// The bench's allocator, so that the figures compare with the bench's.
#[path = "../benches/shared/counting.rs"]
#[allow(dead_code)]
mod counting;
#[path = "../benches/shared/week.rs"]
#[allow(dead_code)]
mod week;
const SPEC: &str = include_str!("../workflows/kars-release.yaml");
/// What is counted: N replays, each instance dropped.
#[inline(never)]
fn timed(workflow: &Arc<Workflow>, history: &kars::workflow::History, n: u32) {
    for _ in 0..n {
        let i = Instance::replay(Arc::clone(workflow), history).expect("replays");
        drop(std::hint::black_box(i));
    }
}
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args().nth(1).map_or(Ok(1000), |s| s.parse())?;
    let spec = kars::spec::load(SPEC, "kars-release.yaml")?;
    let workflow = Arc::new(Workflow::compile(&spec)?);
    let (steps, _) = week::clean_week(&workflow);
    let mut driven = week::Driven::start(&workflow, &InstanceId::new("team-0")?, week::monday());
    while driven.step(&steps) {}
    let instance = driven.finished();
    timed(&workflow, instance.history(), n);
    Ok(())
}
