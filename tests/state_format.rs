//! The instance snapshot format across the change that keeps a state's tables in two blocks
//! (2026-12-02): snapshots written before it, at eight points of the clean KARS week
//! (`tests/fixtures/snapshots-2026-12-02.jsonl`, written by the commit before the change
//! with the bench's drive), read back, write back byte for byte, restore to the instance
//! today's engine reaches at the same point, and today's engine writes the same bytes.

use std::sync::Arc;

use kars::workflow::{Instance, InstanceId, Snapshot, Workflow};

#[path = "../benches/shared/week.rs"]
#[allow(dead_code)]
mod week;

const SPEC: &str = include_str!("../workflows/kars-release.yaml");
const SNAPSHOTS: &str = include_str!("fixtures/snapshots-2026-12-02.jsonl");

/// How many steps of the clean week each line of the fixture was taken after (the last: the
/// whole week, the next cycle started).
const STOPS: [usize; 8] = [0, 3, 8, 12, 16, 20, 23, usize::MAX];

fn workflow() -> Arc<Workflow> {
    let spec = kars::spec::load(SPEC, "kars-release.yaml").expect("the bundled spec loads");
    Arc::new(Workflow::compile(&spec).expect("compiles"))
}

#[test]
fn snapshots_written_before_the_two_blocks_read_write_and_restore_unchanged() {
    let workflow = workflow();
    let (steps, _) = week::clean_week(&workflow);
    let id = InstanceId::new("kars-release").expect("id");
    let lines: Vec<&str> = SNAPSHOTS.lines().collect();
    assert_eq!(lines.len(), STOPS.len(), "one line per stop");
    let mut watched_seen = false;
    for (line, stop) in lines.into_iter().zip(STOPS) {
        let mut driven = week::Driven::start(&workflow, &id, week::monday());
        for _ in 0..stop.min(steps.len()) {
            assert!(driven.step(&steps), "the script has {stop} steps");
        }
        let today = serde_json::to_string(&driven.instance().snapshot()).expect("serializes");
        assert_eq!(today, line, "today's engine writes the snapshot after {stop} steps as before");
        let read: Snapshot = serde_json::from_str(line).expect("an old snapshot reads");
        assert_eq!(serde_json::to_string(&read).expect("serializes"), line, "and writes back unchanged");
        let restored = Instance::restore(Arc::clone(&workflow), read).expect("restores");
        assert!(&restored == driven.instance(), "the restored instance is the one driven to step {stop}");
        watched_seen |= line.contains(r#""watched":["20"#);
    }
    assert!(watched_seen, "some snapshot holds a watched node's completion");
}

#[test]
fn a_fired_deadline_and_every_table_read_back_in_place() {
    // The fixture's deadline never fired and its last window never opened: flip them in the
    // text, so that every table's every field is read back where it was.
    let line = SNAPSHOTS.lines().nth(6).expect("a mid-week snapshot");
    let edited = line.replacen(r#""fired":false"#, r#""fired":true"#, 1).replacen(
        r#""watched":["2026-11-26T22:00:00Z",null]"#,
        r#""watched":["2026-11-26T22:00:00Z","2026-11-27T01:00:00Z"]"#,
        1,
    );
    assert_ne!(edited, line, "the fixture holds the fields this test edits");
    let read: Snapshot = serde_json::from_str(&edited).expect("reads");
    assert_eq!(serde_json::to_string(&read).expect("serializes"), edited);
    let restored = Instance::restore(workflow(), read).expect("restores");
    let again = serde_json::to_string(&restored.snapshot()).expect("serializes");
    assert_eq!(again, edited, "the restored instance holds every table as read");
}
