//! The bench's clean KARS week, shared by `benches/suite.rs` ("week/..."),
//! `examples/week_loop.rs` (the same drive under a profiler) and `tests/week_budget.rs` (the
//! week's memory and allocation budget): the script worked out on a probe instance, and the
//! drive of one instance through it. The bench and the examples count memory with
//! `counting.rs`.

use std::hint::black_box;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kars::spec::{NodeId, RoleId};
use kars::workflow::{ActionOutcome, Actor, EngineError, Event, Instance, InstanceId, Workflow};

#[path = "../../examples/shared/kars_week.rs"]
mod kars_week;

/// One input of the clean week, as the README's embedding example gives it: a person completes
/// a task, or the host wakes the instance at `poll_timeout()`.
pub enum Step {
    Complete(Event),
    Timeout,
}

/// The roles each person of the bundled spec's `team:` holds.
fn holder(person: &str) -> Actor {
    let roles: &[&str] = match person {
        "alice" | "bob" => &["developer"],
        "carol" => &["qa"],
        "dave" => &["devops"],
        "erin" => &["product_manager"],
        _ => &["team_lead", "developer"],
    };
    Actor::new(person, roles.iter().map(|r| RoleId::new(*r).expect("role id")).collect::<Vec<_>>())
}

/// Acknowledges every effect that waits for a result, at `now`, as the README does.
fn acknowledge(instance: &mut Instance, now: DateTime<Utc>) {
    while let Some(effect) = instance.poll_effect() {
        if effect.kind.awaits_result() {
            let event = Event::result_of(&effect, ActionOutcome::Succeeded);
            instance.handle_event(event, now).expect("the action waits for its result");
        }
    }
}

/// The instant a clean week starts: Monday 09:00 in Toronto.
pub fn monday() -> DateTime<Utc> {
    "2026-11-23T14:00:00Z".parse().expect("an RFC 3339 instant")
}

/// The clean week as the README drives it, worked out once on a probe instance: every task of
/// `kars_week::CLEAN_WEEK` completed by a holder of its role as soon as the engine accepts it,
/// every action acknowledged, and the clock jumped to `poll_timeout()` whenever the token
/// waits for a gate (or a window), until the next cycle starts. Returns the steps and the
/// number of nodes entered in that week.
pub fn clean_week(workflow: &Arc<Workflow>) -> (Vec<Step>, usize) {
    let mut probe = Instance::start(Arc::clone(workflow), InstanceId::new("probe").expect("id"), monday());
    probe.set_notice_capacity(4096);
    let mut now = monday();
    let mut steps = Vec::new();
    acknowledge(&mut probe, now);
    let wake = |probe: &mut Instance, now: &mut DateTime<Utc>, steps: &mut Vec<Step>| {
        *now = probe.poll_timeout().expect("a timer is armed");
        probe.handle_timeout(*now);
        acknowledge(probe, *now);
        steps.push(Step::Timeout);
    };
    for (_, node, person, outcome) in kars_week::CLEAN_WEEK {
        let event = Event::Complete {
            node: NodeId::new(node).expect("node id"),
            actor: holder(person),
            outcome: outcome.map(Into::into),
        };
        // The token waits for a gate (at this node or one before it) or a window: sleep.
        for _ in 0..64 {
            match probe.handle_event(event.clone(), now) {
                Ok(()) => break,
                Err(
                    EngineError::GateNotOpen { .. }
                    | EngineError::WindowForbids { .. }
                    | EngineError::NotAwaiting { .. },
                ) => wake(&mut probe, &mut now, &mut steps),
                Err(e) => panic!("the clean week's `{node}` was refused: {e}"),
            }
        }
        assert!(probe.visits(probe.workflow().node_index(node).expect("node")) > 0, "`{node}` was reached");
        acknowledge(&mut probe, now);
        steps.push(Step::Complete(event));
    }
    while probe.cycle() == 1 {
        wake(&mut probe, &mut now, &mut steps);
    }
    let mut entered = 0;
    while let Some(notice) = probe.poll_notice() {
        entered += usize::from(matches!(notice.kind, kars::workflow::NoticeKind::NodeEntered { .. }));
    }
    (steps, entered)
}

/// The clock of a week being driven, and how far its script has gone.
pub struct Driven {
    instance: Instance,
    now: DateTime<Utc>,
    next: usize,
}

impl Driven {
    pub fn start(workflow: &Arc<Workflow>, id: &InstanceId, now: DateTime<Utc>) -> Self {
        let mut instance = Instance::start(Arc::clone(workflow), id.clone(), now);
        acknowledge(&mut instance, now);
        Self { instance, now, next: 0 }
    }

    /// The instance being driven (for `tests/state_format.rs`; the bench never looks).
    #[allow(dead_code)]
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Plays one step; false once the script is done.
    pub fn step(&mut self, steps: &[Step]) -> bool {
        let Some(step) = steps.get(self.next) else {
            return false;
        };
        self.next += 1;
        match step {
            Step::Timeout => {
                self.now = self.instance.poll_timeout().expect("a timer is armed");
                self.instance.handle_timeout(self.now);
            }
            Step::Complete(event) => self.instance.handle_event(event.clone(), self.now).expect("accepted"),
        }
        acknowledge(&mut self.instance, self.now);
        true
    }

    /// Asserts that the week finished: the cycle ended and the next one started.
    pub fn finished(self) -> Instance {
        assert_eq!(self.instance.cycle(), 2, "the instance finished its week");
        self.instance
    }
}

/// One instance's whole week, start to finish (kept out of line so that a profiler can count
/// it: `valgrind --tool=callgrind --toggle-collect=suite::week::one_week`).
#[inline(never)]
pub fn one_week(workflow: &Arc<Workflow>, id: &InstanceId, start: DateTime<Utc>, steps: &[Step]) {
    let mut week = Driven::start(workflow, id, start);
    while week.step(steps) {}
    drop(black_box(week.finished()));
}
