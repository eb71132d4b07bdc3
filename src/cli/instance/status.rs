//! Where an instance stands, in words: the node, what it waits for, who can act and how, the
//! deadline, the next timer, and the last cycles.

use std::fmt::Write as _;

use kars::workflow::driver::{CanAct, ClockMode, Driver};
use kars::workflow::journal::Store;
use kars::workflow::{Waiting, WaitingFor};

use super::transcript::local;

/// The status of the driven instance at the clock's time.
pub fn render<S: Store>(driver: &Driver<S, Box<dyn kars::workflow::driver::Clock>>, mode: ClockMode) -> String {
    let mut out = String::new();
    let instance = driver.instance();
    let workflow = instance.workflow();
    let zone = workflow.zone();
    let now = driver.clock().now().max(instance.latest_instant());
    let waiting = instance.waiting(now);
    let id = driver.id().as_str();
    let _ = writeln!(out, "instance `{id}` of workflow `{}`, release {}", workflow.name(), waiting.release);
    let _ = writeln!(out, "clock:      {mode}");
    let versions = driver.versions().fingerprints().count();
    let history = if versions > 1 { format!("{versions} versions in the journal") } else { "as started".to_owned() };
    let _ = writeln!(out, "spec:       `{}` ({history})", workflow.fingerprint());
    if let Some(next) = driver.upcoming() {
        let _ = writeln!(out, "next cycle: spec `{}` takes effect when the next cycle starts", next.fingerprint());
    }
    let _ = writeln!(out, "now:        {}", local(now, zone));
    if let Some(node) = &waiting.node {
        let label = workflow.node_index(node.as_str()).and_then(|i| workflow.node_label(i)).unwrap_or_default();
        let _ = writeln!(out, "at:         `{node}` {}", label.replace('\n', " "));
    }
    let _ = writeln!(out, "waiting:    {}", waiting_text(&waiting));
    let verdicts = driver.who_can_act(now);
    let _ = writeln!(out, "who:        {}", who(&waiting.reason, &verdicts, id, mode));
    if let Some(d) = &waiting.deadline {
        let missed = if d.missed { " (missed)" } else { "" };
        let _ = writeln!(out, "deadline:   {}{missed}", local(d.at, zone));
    }
    // While parallel branches run: each other branch, by node.
    for branch in &waiting.branches {
        let label = workflow.node_index(branch.node.as_str()).and_then(|i| workflow.node_label(i)).unwrap_or_default();
        let _ = writeln!(out, "branch at:  `{}` {}", branch.node, label.replace('\n', " "));
        let _ = writeln!(out, "  waiting:  {}", branch.reason);
        let _ = writeln!(out, "  who:      {}", who(&branch.reason, &verdicts, id, mode));
        if let Some(d) = &branch.deadline {
            let missed = if d.missed { " (missed)" } else { "" };
            let _ = writeln!(out, "  deadline: {}{missed}", local(d.at, zone));
        }
    }
    if let Some(w) = &waiting.paused_by {
        let _ = writeln!(out, "paused by:  window `{w}` (tasks and decisions wait until it closes)");
    }
    match instance.poll_timeout() {
        Some(at) if at <= now => {
            let _ = writeln!(out, "next timer: {} (due: run `kars instance tick`)", local(at, zone));
        }
        Some(at) => {
            let _ = writeln!(out, "next timer: {}", local(at, zone));
        }
        None => {}
    }
    let pending = driver.pending_effects().count();
    if pending > 0 {
        let _ = writeln!(out, "pending:    {pending} effect(s) not yet performed (the next `act` or `tick` runs them)");
    }
    for cycle in instance.cycle_outcomes().iter().rev().take(3) {
        let _ = writeln!(out, "finished:   {} {} at {}", cycle.release, cycle.outcome, local(cycle.ended_at, zone));
    }
    out
}

fn waiting_text(waiting: &Waiting) -> String {
    let text = waiting.to_string();
    // The release is printed on the first line already.
    text.split_once(": ").map_or(text.clone(), |(_, rest)| rest.to_owned())
}

fn who(reason: &WaitingFor, verdicts: &[CanAct], id: &str, mode: ClockMode) -> String {
    // The verdicts on this token's node (all of them without parallel branches).
    let node = reason_node(reason);
    let verdicts: Vec<&CanAct> = verdicts.iter().filter(|v| node.is_none_or(|n| v.node == *n)).collect();
    // The engine's verdict per person: those it would accept, or refuses only for the moment
    // (a window, a gate), may act; those refused for who they are (a role they lack, a node
    // they completed that this one must be kept apart from) may not.
    let people = |_: &[kars::spec::RoleId]| {
        let may: Vec<&str> =
            verdicts.iter().filter(|v| !v.refused_for_who_they_are()).map(|v| v.person.as_str()).collect();
        let apart: Vec<String> = verdicts
            .iter()
            .filter_map(|v| match &v.verdict {
                Err(kars::workflow::EngineError::SeparationOfDuties { other, .. }) => {
                    Some(format!("{} (completed `{other}`)", v.person))
                }
                _ => None,
            })
            .collect();
        let mut text = if may.is_empty() { "nobody on the roster may act".to_owned() } else { may.join(", ") };
        if !apart.is_empty() {
            text.push_str(&format!("; not {}", apart.join(", ")));
        }
        text
    };
    let actor = match mode {
        ClockMode::System => "",
        ClockMode::Rehearsal => " --actor NAME",
    };
    match reason {
        WaitingFor::Task { node, roles, outcomes } if outcomes.is_empty() => {
            format!("{} (`kars instance act --id {id} --node {node}{actor}`)", people(roles))
        }
        WaitingFor::Task { node, roles, outcomes } => {
            format!(
                "{} (`kars instance act --id {id} --node {node}{actor} --outcome {}`)",
                people(roles),
                outcomes.join("|")
            )
        }
        WaitingFor::Decision { node, role, branches } => format!(
            "{} (`kars instance act --id {id} --node {node}{actor} --outcome {}`)",
            people(std::slice::from_ref(role)),
            branches.join("|")
        ),
        WaitingFor::ActionResult { node, reporters } => {
            let by = if reporters.is_empty() { "its adapter".to_owned() } else { people(reporters) };
            format!("{by} (`kars instance act --id {id} --node {node}{actor} --outcome succeeded|failed`)")
        }
        WaitingFor::Gate { .. } | WaitingFor::NextCycle { .. } => {
            "nobody: time moves it on (`kars instance tick`)".to_owned()
        }
        WaitingFor::Stalled { .. } => "nobody: the instance is stalled".to_owned(),
        _ => "nobody".to_owned(),
    }
}

/// The node a token waits at, if the reason names one.
fn reason_node(reason: &WaitingFor) -> Option<&kars::spec::NodeId> {
    match reason {
        WaitingFor::Task { node, .. }
        | WaitingFor::Decision { node, .. }
        | WaitingFor::Gate { node, .. }
        | WaitingFor::ActionResult { node, .. }
        | WaitingFor::Stalled { node } => Some(node),
        _ => None,
    }
}
