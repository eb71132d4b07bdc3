//! Synchronous embedding: a journaled driver with the console notifier runs the first days of
//! a KARS week on a virtual clock. `run` is the README's embedding example.

use std::error::Error;
use std::io::Write;

use kars::workflow::InstanceId;
use kars::workflow::adapter::ConsoleNotifier;
use kars::workflow::driver::{
    Adapters, Clock, Driver, DriverConfig, OperationsFn, Parts, Program, Roster, VirtualClock,
};
use kars::workflow::journal::MemoryStore;
use kars::workflow::{ActionOutcome, Event};

/// Starts `kars-release` on Monday 2026-11-23 08:00 (Toronto) and acts until Thursday's review;
/// notifications are written to `out`, deploys and merges succeed at once.
pub fn run(out: impl Write + Send + Sync + 'static) -> Result<Driver<MemoryStore, VirtualClock>, Box<dyn Error>> {
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/kars-release.yaml"))?;
    let spec = kars::spec::load(&yaml, "kars-release.yaml")?;
    let (program, team) = (Program::new(&spec)?, Roster::from_spec(spec.spec()));
    let ops = OperationsFn(|_: &_| Ok(Some(ActionOutcome::Succeeded)));
    let adapters = Adapters::new(ConsoleNotifier::new(out)).with_operations(ops);
    let clock = VirtualClock::new("2026-11-23T13:00:00Z".parse()?);
    let parts = Parts { store: MemoryStore::new(), clock, adapters, config: DriverConfig::default() };
    let mut driver = Driver::create(parts, &program, &InstanceId::new("kars-release")?, None)?;
    let script = [
        ("2026-11-23T14:00:00Z", "B", "erin", None),
        ("2026-11-23T14:30:00Z", "C", "frank", None),
        ("2026-11-24T15:00:00Z", "D", "alice", None),
        ("2026-11-25T15:00:00Z", "E", "alice", None),
        ("2026-11-25T19:00:00Z", "F", "bob", Some("approved")),
        ("2026-11-26T22:30:00Z", "I", "erin", None),
    ];
    for (at, node, who, outcome) in script {
        driver.run_until(at.parse()?)?;
        let (node, actor, outcome) = (node.parse()?, team.actor(who)?, outcome.map(Into::into));
        // The input is journaled; its effects are performed next (the driver is ours alone).
        driver.handle_event(Event::Complete { node, actor, outcome })?;
        driver.run_effects()?;
    }
    Ok(driver)
}

fn main() -> Result<(), Box<dyn Error>> {
    let driver = run(std::io::stdout())?;
    for entry in driver.log() {
        println!("{} {}: {:?}", entry.at, entry.key, entry.kind);
    }
    println!("{}", driver.instance().waiting(driver.clock().now()));
    Ok(())
}
