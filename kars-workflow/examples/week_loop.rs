//! Drives N instances through a clean KARS week, one after another, exactly as the bench
//! `cargo bench --bench suite -- "week/a clean"` does: a target for profilers (instructions
//! per week), and the bytes one instance holds at the end of its week (history kept, then
//! released), counted by a counting allocator as the bench counts them.
//!
//! `cargo build --release -p kars-workflow --example week_loop`, then
//! `valgrind --tool=callgrind target/release/examples/week_loop 600` and the same with 200:
//! the difference of the two totals divided by 400 is the instructions per week (the start-up,
//! the spec load and the probe week cancel out).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use kars_spec::{NodeId, RoleId};
use kars_workflow::{ActionOutcome, Actor, EngineError, Event, Instance, InstanceId, NoticeKind, Workflow};

/// Counts live heap bytes, as the bench suite does.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's layout unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SPEC: &str = include_str!("../../workflows/kars-release.yaml");

/// `(node, person, outcome)` of the clean week, in order (as `examples/shared/kars_week.rs`).
const CLEAN_WEEK: [(&str, &str, Option<&str>); 16] = [
    ("B", "erin", None),
    ("C", "frank", None),
    ("D", "alice", None),
    ("E", "alice", None),
    ("F", "bob", Some("approved")),
    ("I", "erin", None),
    ("K", "erin", None),
    ("L", "carol", None),
    ("M", "dave", None),
    ("N", "carol", Some("Yes")),
    ("Q", "carol", None),
    ("R", "erin", None),
    ("U", "dave", None),
    ("W", "frank", Some("approved")),
    ("Z", "dave", None),
    ("AE", "erin", None),
];

/// One input of the clean week: a person completes a task, or the host wakes the instance at
/// `poll_timeout()`.
enum Step {
    Complete(Event),
    Timeout,
}

/// The roles each person of the bundled spec's `team:` holds.
fn holder(person: &str) -> Result<Actor, Box<dyn std::error::Error>> {
    let roles: &[&str] = match person {
        "alice" | "bob" => &["developer"],
        "carol" => &["qa"],
        "dave" => &["devops"],
        "erin" => &["product_manager"],
        _ => &["team_lead", "developer"],
    };
    let roles = roles.iter().map(|r| RoleId::new(*r)).collect::<Result<Vec<_>, _>>()?;
    Ok(Actor::new(person, roles))
}

/// Acknowledges every effect that waits for a result, at `now`.
fn acknowledge(instance: &mut Instance, now: DateTime<Utc>) -> Result<(), EngineError> {
    while let Some(effect) = instance.poll_effect() {
        if effect.kind.awaits_result() {
            instance.handle_event(Event::result_of(&effect, ActionOutcome::Succeeded), now)?;
        }
    }
    Ok(())
}

/// Monday 09:00 in Toronto.
fn monday() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T14:00:00Z").map_or(DateTime::UNIX_EPOCH, |t| t.with_timezone(&Utc))
}

/// The clean week worked out on a probe instance (as the bench does): the steps, and the
/// number of nodes entered.
fn clean_week(workflow: &Arc<Workflow>) -> Result<(Vec<Step>, usize), Box<dyn std::error::Error>> {
    let mut probe = Instance::start(Arc::clone(workflow), InstanceId::new("probe")?, monday());
    probe.set_notice_capacity(4096);
    let mut now = monday();
    let mut steps = Vec::new();
    acknowledge(&mut probe, now)?;
    fn wake(probe: &mut Instance, now: &mut DateTime<Utc>, steps: &mut Vec<Step>) -> Result<(), EngineError> {
        *now = probe.poll_timeout().unwrap_or(*now);
        probe.handle_timeout(*now);
        steps.push(Step::Timeout);
        acknowledge(probe, *now)
    }
    for (node, person, outcome) in CLEAN_WEEK {
        let event =
            Event::Complete { node: NodeId::new(node)?, actor: holder(person)?, outcome: outcome.map(str::to_owned) };
        for _ in 0..64 {
            match probe.handle_event(event.clone(), now) {
                Ok(()) => break,
                Err(
                    EngineError::GateNotOpen { .. }
                    | EngineError::WindowForbids { .. }
                    | EngineError::NotAwaiting { .. },
                ) => {
                    wake(&mut probe, &mut now, &mut steps)?;
                }
                Err(e) => return Err(format!("the clean week's `{node}` was refused: {e}").into()),
            }
        }
        acknowledge(&mut probe, now)?;
        steps.push(Step::Complete(event));
    }
    for _ in 0..64 {
        if probe.cycle() != 1 {
            break;
        }
        wake(&mut probe, &mut now, &mut steps)?;
    }
    let mut entered = 0;
    while let Some(notice) = probe.poll_notice() {
        entered += usize::from(matches!(notice.kind, NoticeKind::NodeEntered { .. }));
    }
    Ok((steps, entered))
}

/// One instance's whole week, start to finish; the instance at its end.
#[inline(never)]
fn one_week(
    workflow: &Arc<Workflow>,
    id: &InstanceId,
    start: DateTime<Utc>,
    steps: &[Step],
) -> Result<Instance, Box<dyn std::error::Error>> {
    let mut instance = Instance::start(Arc::clone(workflow), id.clone(), start);
    let mut now = start;
    acknowledge(&mut instance, now)?;
    for step in steps {
        match step {
            Step::Timeout => {
                now = instance.poll_timeout().ok_or("no timer armed")?;
                instance.handle_timeout(now);
            }
            Step::Complete(event) => instance.handle_event(event.clone(), now)?,
        }
        acknowledge(&mut instance, now)?;
    }
    if instance.cycle() != 2 {
        return Err("the instance did not finish its week".into());
    }
    Ok(instance)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args().nth(1).map_or(Ok(1000), |s| s.parse())?;
    let spec = kars_spec::load(SPEC, "kars-release.yaml")?;
    let workflow = Arc::new(Workflow::compile(&spec)?);
    let (steps, entered) = clean_week(&workflow)?;
    let id = InstanceId::new("kars-release")?;
    let start = monday();
    for _ in 0..n {
        drop(black_box(one_week(&workflow, &id, start, &steps)?));
    }
    let before = LIVE.load(Ordering::Relaxed);
    let mut instance = one_week(&workflow, &InstanceId::new("team-0")?, start, &steps)?;
    let kept = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let journaled = instance.history().next_seq();
    instance.release_history(journaled);
    let released = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    println!(
        "{n} clean weeks ({entered} nodes entered, {} inputs each); one instance at the end of its week holds {kept} B with its history ({} records), {released} B with it released",
        steps.len(),
        journaled
    );
    Ok(())
}
