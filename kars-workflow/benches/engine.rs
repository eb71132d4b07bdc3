//! Engine benchmarks: one `Complete` transition (role check, state update, history record),
//! the same transition while 2, 4 or 8 parallel branches run, a whole simulated KARS week,
//! replaying that week, and the memory an instance holds.
//!
//! Run with `cargo bench -p kars-workflow --bench engine -- --quick`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use kars_spec::{NodeId, RoleId};
use kars_workflow::{ActionOutcome, Actor, Event, Instance, InstanceId, Workflow};

/// A decision that hands the token back to itself (`again`) until someone says `stop`: every
/// `Complete` is one transition (role check, branch, re-entry, history record).
const RING: &str = include_str!("ring.yaml");

fn compile(yaml: &str) -> Arc<Workflow> {
    let checked = kars_spec::load(yaml, "bench.yaml").expect("valid bench spec");
    Arc::new(Workflow::compile(&checked).expect("compiles"))
}

fn kars() -> Arc<Workflow> {
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../workflows/kars-release.yaml"))
        .expect("bundled spec");
    compile(&yaml)
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("instant")
}

fn complete(node: &str, name: &str, role: &str, outcome: Option<&str>) -> Event {
    Event::Complete {
        node: NodeId::new(node).expect("node id"),
        actor: Actor::new(name, vec![RoleId::new(role).expect("role id")]),
        outcome: outcome.map(Into::into),
    }
}

/// The clean KARS week of 2026-W48 (UTC instants), with every waiting action acknowledged.
fn week(workflow: &Arc<Workflow>) -> Instance {
    let steps: [(&str, &str, &str, &str, Option<&str>); 16] = [
        ("2026-11-23T14:00:00Z", "B", "erin", "product_manager", None),
        ("2026-11-23T14:30:00Z", "C", "frank", "team_lead", None),
        ("2026-11-24T15:00:00Z", "D", "alice", "developer", None),
        ("2026-11-25T15:00:00Z", "E", "alice", "developer", None),
        ("2026-11-25T19:00:00Z", "F", "bob", "developer", Some("approved")),
        ("2026-11-26T22:30:00Z", "I", "erin", "product_manager", None),
        ("2026-11-26T23:00:00Z", "K", "erin", "product_manager", None),
        ("2026-11-27T14:30:00Z", "L", "carol", "qa", None),
        ("2026-11-27T15:00:00Z", "M", "dave", "devops", None),
        ("2026-11-27T16:00:00Z", "N", "carol", "qa", Some("Yes")),
        ("2026-11-27T19:00:00Z", "Q", "carol", "qa", None),
        ("2026-11-27T19:30:00Z", "R", "erin", "product_manager", None),
        ("2026-11-30T14:50:00Z", "U", "dave", "devops", None),
        ("2026-11-30T14:55:00Z", "W", "frank", "team_lead", Some("approved")),
        ("2026-11-30T15:10:00Z", "Z", "dave", "devops", None),
        ("2026-11-30T15:30:00Z", "AE", "erin", "product_manager", None),
    ];
    let mut instance =
        Instance::start(Arc::clone(workflow), InstanceId::new("kars").expect("id"), at("2026-11-23T13:00:00Z"));
    for (when, node, name, role, outcome) in steps {
        let when = at(when);
        while let Some(wake) = instance.poll_timeout().filter(|w| *w <= when) {
            instance.handle_timeout(wake);
            ack(&mut instance, wake);
        }
        instance.handle_event(complete(node, name, role, outcome), when).expect("accepted");
        ack(&mut instance, when);
    }
    let end = at("2026-11-30T17:00:00Z");
    while let Some(wake) = instance.poll_timeout().filter(|w| *w <= end) {
        instance.handle_timeout(wake);
        ack(&mut instance, wake);
    }
    assert_eq!(instance.cycle_outcomes().len(), 1, "the week ends released");
    instance
}

fn ack(instance: &mut Instance, now: DateTime<Utc>) {
    while let Some(effect) = instance.poll_effect() {
        if effect.kind.awaits_result() {
            let event = Event::result_of(&effect, ActionOutcome::Succeeded);
            instance.handle_event(event, now).expect("acknowledged");
        }
    }
}

/// Times `iters` completions, 256 per instance; `reserve` reserves the history's room first.
#[allow(clippy::disallowed_methods)] // A benchmark measures wall time; the engine never reads it.
fn chunked(ring: &Arc<Workflow>, event: &Event, start: DateTime<Utc>, iters: u64, reserve: bool) -> StdDuration {
    let mut total = StdDuration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(256);
        left -= n;
        let mut instance = Instance::start(Arc::clone(ring), InstanceId::new("r").expect("id"), start);
        if reserve {
            instance.reserve_history(256);
        }
        let events: Vec<Event> = (0..n).map(|_| event.clone()).collect();
        let began = std::time::Instant::now();
        for event in events {
            let _ = black_box(instance.handle_event(event, start));
        }
        // The instance (its history and what it holds) is dropped inside the timing: what a
        // record costs includes freeing it, whenever that happens.
        drop(black_box(instance));
        total += began.elapsed();
    }
    total
}

/// A fork of `n` branches, each a decision that hands its branch back to itself (`again`) until
/// someone says `stop`, then a join: every `Complete` moves one branch while the others wait.
fn branches(n: usize) -> Arc<Workflow> {
    let mut nodes = String::new();
    let mut edges = String::from("  - { from: S, to: F }\n  - { from: J, to: E }\n");
    for i in 1..=n {
        nodes.push_str(&format!(
            "  B{i}: {{ label: Branch {i} again?, kind: decision, decided_by: {{ role: dev }} }}\n"
        ));
        edges.push_str(&format!(
            "  - {{ from: F, to: B{i} }}\n  - {{ from: B{i}, to: B{i}, label: again }}\n  - {{ from: B{i}, to: J, label: stop }}\n"
        ));
    }
    compile(&format!(
        "version: 1\nname: branches\ntimezone: America/Toronto\nroles: {{ dev: {{ title: Dev }} }}\nnodes:\n  S: {{ label: Start, kind: start }}\n  F: {{ label: Fork, kind: parallel }}\n{nodes}  J: {{ label: Join, kind: join }}\n  E: {{ label: Done, kind: end, outcome: done }}\nedges:\n{edges}"
    ))
}

/// Times `iters` completions spread round-robin over `events`, 256 per instance (history
/// reserved).
#[allow(clippy::disallowed_methods)] // A benchmark measures wall time; the engine never reads it.
fn chunked_round(workflow: &Arc<Workflow>, events: &[Event], start: DateTime<Utc>, iters: u64) -> StdDuration {
    let mut total = StdDuration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(256);
        left -= n;
        let mut instance = Instance::start(Arc::clone(workflow), InstanceId::new("r").expect("id"), start);
        instance.reserve_history(256);
        let batch: Vec<Event> = events.iter().cycle().take(usize::try_from(n).unwrap_or(256)).cloned().collect();
        let began = std::time::Instant::now();
        for event in batch {
            let _ = black_box(instance.handle_event(event, start));
        }
        drop(black_box(instance));
        total += began.elapsed();
    }
    total
}

fn benches(c: &mut Criterion) {
    let ring = compile(RING);
    let start = at("2026-11-23T13:00:00Z");
    let dev = complete("T1", "alice", "dev", Some("again"));

    // One transition: each timed iteration is exactly one `handle_event` on a long-lived
    // instance. Instances live for 256 events each so that the history's memory is recycled
    // by the allocator instead of freshly faulted in (which would measure the kernel).
    c.bench_function("transition/complete (ring, history reserved)", |b| {
        b.iter_custom(|iters| chunked(&ring, &dev, start, iters, true));
    });
    c.bench_function("transition/complete (ring, history growing)", |b| {
        b.iter_custom(|iters| chunked(&ring, &dev, start, iters, false));
    });

    // The same transition while parallel branches run: the event's node picks its branch,
    // which is taken out of the branch list, moved and put back.
    for n in [2usize, 4, 8] {
        let workflow = branches(n);
        let events: Vec<Event> = (1..=n).map(|i| complete(&format!("B{i}"), "alice", "dev", Some("again"))).collect();
        c.bench_function(&format!("transition/complete ({n} parallel branches, history reserved)"), |b| {
            b.iter_custom(|iters| chunked_round(&workflow, &events, start, iters));
        });
    }

    // A refused event (wrong role): the checks, the error and the audit record.
    let wrong = complete("T1", "carol", "qa", Some("again"));
    c.bench_function("transition/refused (wrong role)", |b| {
        b.iter_custom(|iters| chunked(&ring, &wrong, start, iters, true));
    });

    let kars = kars();
    c.bench_function("week/kars clean week (start to next cycle)", |b| b.iter(|| black_box(week(&kars))));

    let lived = week(&kars);
    c.bench_function("week/replay the clean week's history", |b| {
        b.iter(|| black_box(Instance::replay(Arc::clone(&kars), lived.history()).expect("replays")))
    });

    let probe = Instance::start(Arc::clone(&kars), InstanceId::new("kars-release").expect("id"), start);
    let footprint = probe.footprint();
    eprintln!(
        "memory/kars instance at start: size_of::<Instance>() = {} bytes, state heap = {} bytes, \
         history inline = {} bytes -> {} bytes without its history; history heap = {} bytes",
        footprint.inline,
        footprint.state_heap,
        footprint.history_inline,
        footprint.without_history(),
        footprint.history_heap
    );
    let lived_fp = lived.footprint();
    eprintln!(
        "memory/kars instance after a week: {} bytes without its history; history = {} records, ~{} bytes heap",
        lived_fp.without_history(),
        lived.history().len(),
        lived_fp.history_heap
    );
}

criterion_group!(engine, benches);
criterion_main!(engine);
