//! An instance's status as JSON: where it is, what it waits for and why, who can act (each
//! person with the engine's verdict), the deadline, the next timer, and this week's path; and
//! the mermaid drawing with the instance overlay.

use chrono::{DateTime, Utc};
use kars_spec::CheckedSpec;
use kars_spec::mermaid::RenderOptions;
use kars_spec::spec::NodeKind;
use kars_workflow::WaitingFor;
use kars_workflow::driver::Driver;
use serde_json::{Value, json};

use super::{ServeStore, SharedClock};

/// The status document of `driver` at `now`.
pub(crate) fn status<S: ServeStore>(driver: &Driver<S, SharedClock>, now: DateTime<Utc>) -> Value {
    let instance = driver.instance();
    let workflow = instance.workflow();
    let now = now.max(instance.latest_instant());
    let waiting = instance.waiting(now);
    let label = waiting
        .node
        .as_ref()
        .and_then(|n| workflow.node_index(n.as_str()))
        .and_then(|i| workflow.node_label(i))
        .map(|l| l.replace('\n', " "));
    let kind = waiting
        .node
        .as_ref()
        .and_then(|n| workflow.node_index(n.as_str()))
        .and_then(|i| workflow.node_kind(i))
        .map(node_kind);
    let who: Vec<Value> = driver
        .who_can_act(now)
        .iter()
        .map(|v| {
            json!({
                "person": v.person,
                "node": v.node,
                "allowed": v.allowed(),
                "refused": v.verdict.as_ref().err().map(|e| json!({ "detail": e.to_string(), "reason": e })),
            })
        })
        .collect();
    let path: Vec<&str> = instance.visited_this_cycle().into_iter().map(|n| n.as_str()).collect();
    let finished: Vec<Value> = instance
        .cycle_outcomes()
        .iter()
        .rev()
        .take(5)
        .map(|c| json!({ "release": c.release.to_string(), "outcome": c.outcome, "ended_at": c.ended_at }))
        .collect();
    let branches: Vec<Value> = waiting
        .branches
        .iter()
        .map(|b| {
            let index = workflow.node_index(b.node.as_str());
            json!({
                "node": b.node,
                "label": index.and_then(|i| workflow.node_label(i)).map(|l| l.replace('\n', " ")),
                "kind": index.and_then(|i| workflow.node_kind(i)).map(node_kind),
                "waiting": { "text": b.reason.to_string(), "for": b.reason, "short": b.reason.short() },
                "outcomes": outcomes(&b.reason),
                "deadline": b.deadline,
            })
        })
        .collect();
    let mut document = json!({
        "id": driver.id(),
        "workflow": workflow.name(),
        "version": driver.version(),
        "clock": driver.header().clock,
        "now": now,
        "release": waiting.release.to_string(),
        "node": waiting.node,
        "label": label,
        "kind": kind,
        "waiting": {
            "text": waiting.to_string(),
            "for": waiting.reason,
            "short": waiting.short(),
        },
        "outcomes": outcomes(&waiting.reason),
        "who_can_act": who,
        "deadline": waiting.deadline,
        "paused_by": waiting.paused_by,
        "next_timer": instance.poll_timeout(),
        "next_timer_local": instance.poll_timeout().map(|at| kars_workflow::local_time(at, workflow.zone())),
        "path": path,
        "pending_effects": driver.pending_effects().count(),
        "effects_in_flight": driver.effects_in_flight(),
        "finished": finished,
    });
    // Only while parallel branches run: the branches after the first (by node).
    if !branches.is_empty()
        && let Some(map) = document.as_object_mut()
    {
        map.insert("branches".to_owned(), Value::Array(branches));
    }
    document
}

fn node_kind(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Start => "start",
        NodeKind::Task => "task",
        NodeKind::Decision => "decision",
        NodeKind::Action => "action",
        NodeKind::Wait => "wait",
        NodeKind::End => "end",
        NodeKind::Parallel => "parallel",
        NodeKind::Join => "join",
    }
}

/// The outcomes a person may give at the current node (empty: none asked for).
pub(crate) fn outcomes(reason: &WaitingFor) -> Vec<String> {
    match reason {
        WaitingFor::Task { outcomes, .. } => outcomes.clone(),
        WaitingFor::Decision { branches, .. } => branches.clone(),
        WaitingFor::ActionResult { .. } => vec!["succeeded".to_owned(), "failed".to_owned()],
        _ => Vec::new(),
    }
}

/// The mermaid flowchart of `spec` with where `driver` stands drawn on it.
pub(crate) fn mermaid<S: ServeStore>(
    driver: &Driver<S, SharedClock>,
    spec: &CheckedSpec,
    now: DateTime<Utc>,
) -> String {
    let instance = driver.instance();
    let state = instance.state_view(now);
    kars_spec::mermaid::render_state(spec.spec(), &RenderOptions::default(), &state)
}
