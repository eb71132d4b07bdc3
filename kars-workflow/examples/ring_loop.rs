//! The engine bench's single transition (`transition/complete (ring, history growing)`) as a
//! target for callgrind: N `Complete` events on the ring, 256 to an instance, each instance
//! dropped after its events, exactly as the bench times them (the events are cloned before).
//! With a second argument `refused`, the bench's refused event instead (`transition/refused`:
//! an actor without the role, a typed error and an audit record each).
//!
//! `cargo build --release -p kars-workflow --example ring_loop`, then
//! `valgrind --tool=callgrind --toggle-collect='ring_loop::timed' target/release/examples/ring_loop 60000`
//! and the same with 20000: the difference of the two totals divided by 40,000 is the
//! instructions per transition, with what freeing its record costs.

use std::hint::black_box;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kars_spec::{NodeId, RoleId};
use kars_workflow::{Actor, Event, Instance, InstanceId, Workflow};

/// The bench's ring.
const RING: &str = include_str!("../benches/ring.yaml");

/// What the bench times: the events handled, then the instance dropped.
#[inline(never)]
fn timed(mut instance: Instance, events: Vec<Event>, now: DateTime<Utc>) {
    for event in events {
        let _ = black_box(instance.handle_event(event, now));
    }
    drop(black_box(instance));
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args().nth(1).map_or(Ok(60_000), |s| s.parse())?;
    let ring = Arc::new(Workflow::compile(&kars_spec::load(RING, "ring.yaml")?)?);
    let start: DateTime<Utc> = "2026-11-23T14:00:00Z".parse()?;
    let (name, role) = match std::env::args().nth(2).as_deref() {
        Some("refused") => ("carol", "qa"),
        _ => ("alice", "dev"),
    };
    let event = Event::Complete {
        node: NodeId::new("T1")?,
        actor: Actor::new(name, vec![RoleId::new(role)?]),
        outcome: Some("again".into()),
    };
    let mut left = n;
    while left > 0 {
        let chunk = left.min(256);
        left -= chunk;
        let instance = Instance::start(Arc::clone(&ring), InstanceId::new("r")?, start);
        let events: Vec<Event> = (0..chunk).map(|_| event.clone()).collect();
        timed(instance, events, start);
    }
    Ok(())
}
