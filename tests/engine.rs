//! Engine scenarios: each `tests/scenarios/*.script` is a timestamped script of events against a
//! spec; a virtual clock jumps to `poll_timeout()`, waiting actions are acknowledged as the
//! script says, and the whole trace of inputs, notices and effects (local times) is snapshotted.
//!
//! Script lines (times are local wall-clock times in the spec's zone, `YYYY-MM-DD HH:MM`):
//! - `spec FILE` (in `workflows/` or `tests/scenarios/`), `start TIME`;
//! - `fail NODE [N,M..]`: the host reports `failed` for that action (on those entries only);
//! - `at TIME complete NODE ACTOR ROLES [OUTCOME]` (`ROLES` comma-separated, `-` for none);
//! - `at TIME merge SOURCE TARGET ACTOR`, `at TIME may SOURCE TARGET`, `at TIME waiting`;
//! - `at TIME result NODE succeeded|failed` (an explicit report), `until TIME`.
//!
//! After every script the test also checks that replaying the history gives the same instance
//! and that a JSON snapshot restores to an equal one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use kars_spec::calendar::resolve_local;
use kars_spec::{NodeId, RoleId};
use kars_workflow::{
    ActionOutcome, Actor, EffectKind, EngineError, Event, Instance, InstanceId, MergeRequest, NoticeKind, Options,
    Recipient, Snapshot, Workflow,
};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn load_workflow(name: &str) -> Arc<Workflow> {
    let candidates = [root().join("workflows").join(name), root().join("tests/scenarios").join(name)];
    let path = candidates.iter().find(|p| p.exists()).unwrap_or_else(|| panic!("no spec {name}"));
    let yaml = std::fs::read_to_string(path).unwrap();
    let checked = kars_spec::load(&yaml, name).unwrap_or_else(|e| panic!("{e}"));
    Arc::new(Workflow::compile(&checked).unwrap())
}

struct Run {
    instance: Instance,
    zone: Tz,
    clock: DateTime<Utc>,
    fail: BTreeMap<String, Option<Vec<u16>>>,
    trace: String,
}

impl Run {
    fn local(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.zone).format("%a %Y-%m-%d %H:%M %Z").to_string()
    }

    fn parse_time(&self, date: &str, time: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M").unwrap();
        resolve_local(self.zone, naive)
    }

    fn line(&mut self, at: DateTime<Utc>, text: &str) {
        let local = self.local(at);
        writeln!(self.trace, "{local} | {text}").unwrap();
    }

    fn node(&self, index: kars_workflow::NodeIndex) -> String {
        self.instance.workflow().node_id(index).map(ToString::to_string).unwrap_or_default()
    }

    /// Prints pending notices and effects; acknowledges waiting actions, repeating until quiet.
    fn drain(&mut self, at: DateTime<Utc>) {
        loop {
            self.print_notices();
            let mut acks = Vec::new();
            while let Some(effect) = self.instance.poll_effect() {
                let what = match &effect.kind {
                    EffectKind::Notify { to, message } => {
                        let to: Vec<String> = to
                            .iter()
                            .map(|r| match r {
                                Recipient::Channel(c) => format!("#{c}"),
                                Recipient::Role(r) => format!("@{r}"),
                            })
                            .collect();
                        format!("notify {} \"{message}\"", to.join(" "))
                    }
                    EffectKind::OpenPullRequest { from, to } => format!("open pull request {from} -> {to}"),
                    EffectKind::MergePullRequest { from, to, .. } => format!("merge pull request {from} -> {to}"),
                    EffectKind::Deploy { environment, url } => {
                        format!("deploy {environment}{}", url.as_ref().map(|u| format!(" ({u})")).unwrap_or_default())
                    }
                    EffectKind::Rollback { environment, .. } => format!("rollback {environment}"),
                    EffectKind::RunChecks { suite, environment } => format!(
                        "run checks {suite}{}",
                        environment.as_ref().map(|e| format!(" on {e}")).unwrap_or_default()
                    ),
                    other => format!("{other:?}"),
                };
                self.line(at, &format!("  effect {} {what}", effect.key));
                if effect.kind.awaits_result() {
                    let index = self.instance.workflow().node_index(effect.node.as_str()).unwrap();
                    let entry = self.instance.visits(index);
                    let failed = match self.fail.get(effect.node.as_str()) {
                        Some(None) => true,
                        Some(Some(entries)) => entries.contains(&entry),
                        None => false,
                    };
                    acks.push(Event::result_of(
                        &effect,
                        if failed { ActionOutcome::Failed } else { ActionOutcome::Succeeded },
                    ));
                }
            }
            if acks.is_empty() {
                return;
            }
            for event in acks {
                self.input(at, event);
            }
        }
    }

    fn print_notices(&mut self) {
        while let Some(notice) = self.instance.poll_notice() {
            let workflow = Arc::clone(self.instance.workflow());
            let text = match notice.kind {
                NoticeKind::CycleStarted { monday } => {
                    format!("  cycle started: {}", kars_spec::calendar::release_id(monday))
                }
                NoticeKind::CycleEnded { outcome } => format!("  cycle ended: {}", workflow.label(outcome)),
                NoticeKind::NodeEntered { node, attempt } => {
                    let again = if attempt > 1 { format!(" (entry {attempt})") } else { String::new() };
                    format!("  enter {}{again}", self.node(node))
                }
                NoticeKind::NodeCompleted { .. } => continue,
                NoticeKind::GateArmed { node, opens_at } => {
                    format!("  gate {} armed for {}", self.node(node), self.local(opens_at))
                }
                NoticeKind::GateOpened { node } => format!("  gate {} open", self.node(node)),
                NoticeKind::DeadlineMissed { node } => format!("  deadline of {} missed", self.node(node)),
                NoticeKind::RetryExhausted { node } => format!("  retries of {} exhausted", self.node(node)),
                NoticeKind::WindowOpened { window } => {
                    format!("  window {} opened", workflow.window_id(window).unwrap())
                }
                NoticeKind::WindowClosed { window } => {
                    format!("  window {} closed", workflow.window_id(window).unwrap())
                }
                NoticeKind::MergeRecorded => "  merge recorded".to_owned(),
                NoticeKind::Stalled { node } => format!("  stalled at {}", self.node(node)),
                NoticeKind::BranchStarted { node } => format!("  branch starts at {}", self.node(node)),
                NoticeKind::BranchCancelled { node } => format!("  branch at {} cancelled", self.node(node)),
                NoticeKind::Joined { node } => format!("  branches joined at {}", self.node(node)),
                other => format!("  {other:?}"),
            };
            self.line(notice.at, &text);
        }
    }

    fn input(&mut self, at: DateTime<Utc>, event: Event) {
        let text = match &event {
            Event::Complete { node, actor, outcome } => format!(
                "> {} completes {node}{}",
                actor.name(),
                outcome.as_ref().map(|o| format!(" ({o})")).unwrap_or_default()
            ),
            Event::ActionResult { node, outcome, .. } => format!("> result of {node}: {outcome:?}"),
            Event::Merge { source, target, actor } => format!("> {} merges {source} into {target}", actor.name()),
        };
        self.line(at, &text);
        let result = self.instance.handle_event(event, at);
        self.print_notices();
        if let Err(e) = result {
            self.line(at, &format!("  REFUSED: {e}"));
        }
        self.drain(at);
    }

    fn advance(&mut self, to: DateTime<Utc>) {
        while let Some(wake) = self.instance.poll_timeout().filter(|w| *w <= to) {
            self.clock = wake;
            self.instance.handle_timeout(wake);
            self.drain(wake);
        }
        self.clock = self.clock.max(to);
    }
}

fn actor(name: &str, roles: &str) -> Actor {
    let roles = if roles == "-" { Vec::new() } else { roles.split(',').map(|r| RoleId::new(r).unwrap()).collect() };
    Actor::new(name, roles)
}

fn run_script(text: &str) -> (String, Instance) {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    let spec = lines.next().and_then(|l| l.strip_prefix("spec ")).expect("first line: spec FILE");
    let workflow = load_workflow(spec.trim());
    let zone = workflow.zone();
    let mut run: Option<Run> = None;
    let mut fail = BTreeMap::new();
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["fail", node] => {
                fail.insert((*node).to_owned(), None);
            }
            ["fail", node, entries] => {
                fail.insert((*node).to_owned(), Some(entries.split(',').map(|n| n.parse().unwrap()).collect()));
            }
            ["start", date, time] => {
                let naive = NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M").unwrap();
                let at = resolve_local(zone, naive);
                let options = Options { notice_capacity: 1024 };
                let instance =
                    Instance::start_with(Arc::clone(&workflow), InstanceId::new("kars").unwrap(), at, options);
                let mut r = Run { instance, zone, clock: at, fail: fail.clone(), trace: String::new() };
                let current = r.instance.current_node().map(ToString::to_string).unwrap_or_default();
                r.line(at, &format!("> start {} ({}), at {current}", r.instance.release(), spec.trim()));
                r.drain(at);
                run = Some(r);
            }
            ["until", date, time] => {
                let r = run.as_mut().expect("start first");
                let at = r.parse_time(date, time);
                r.advance(at);
            }
            ["at", date, time, rest @ ..] => {
                let r = run.as_mut().expect("start first");
                let at = r.parse_time(date, time);
                r.advance(at);
                match rest {
                    ["complete", node, name, roles, outcome @ ..] => {
                        let event = Event::Complete {
                            node: NodeId::new(*node).unwrap(),
                            actor: actor(name, roles),
                            outcome: outcome.first().map(|o| (*o).into()),
                        };
                        r.input(at, event);
                    }
                    ["result", node, outcome] => {
                        let outcome =
                            if *outcome == "failed" { ActionOutcome::Failed } else { ActionOutcome::Succeeded };
                        // The host's adapter reports the result of the effect it performed.
                        let at_node = r.instance.workflow().node_index(node).and_then(|i| r.instance.result_key_at(i));
                        let key = at_node
                            .or_else(|| r.instance.result_key())
                            .unwrap_or_else(|| serde_json::from_str("\"none\"").unwrap());
                        let reporter = kars::workflow::Reporter::Effect { key };
                        r.input(at, Event::ActionResult { node: NodeId::new(*node).unwrap(), outcome, reporter });
                    }
                    ["merge", source, target, name] => {
                        let event = Event::Merge {
                            source: (*source).to_owned(),
                            target: (*target).to_owned(),
                            actor: actor(name, "developer"),
                        };
                        r.input(at, event);
                    }
                    ["may", source, target] => {
                        let request = MergeRequest { source: (*source).to_owned(), target: (*target).to_owned() };
                        let p = r.instance.may(&request, at);
                        let until = p.until.map(|u| format!(" [until {}]", r.local(u))).unwrap_or_default();
                        let verdict = if p.allowed { "allowed" } else { "DENIED" };
                        r.line(at, &format!("? may {source} -> {target}: {verdict}: {}{until}", p.reason));
                    }
                    ["waiting"] => {
                        let w = r.instance.waiting(at);
                        r.line(at, &format!("? waiting: {w}"));
                    }
                    other => panic!("bad script line: {other:?}"),
                }
            }
            other => panic!("bad script line: {other:?}"),
        }
    }
    let r = run.expect("a start line");
    let mut trace = r.trace;
    let outcomes = r.instance.cycle_outcomes();
    writeln!(trace, "--- finished cycles").unwrap();
    for c in &outcomes {
        writeln!(
            trace,
            "{}: {} (deadline misses {}, retry rounds {})",
            c.release, c.outcome, c.deadline_misses, c.retry_rounds
        )
        .unwrap();
    }
    let waiting = r.instance.waiting(r.clock);
    writeln!(trace, "--- now waiting: {waiting}").unwrap();
    let refused: Vec<_> = r
        .instance
        .history()
        .records()
        .filter_map(|rec| match rec.verdict {
            kars_workflow::Verdict::Refused(e) => Some((rec.seq, rec.at, e)),
            kars_workflow::Verdict::Accepted => None,
        })
        .collect();
    if !refused.is_empty() {
        writeln!(trace, "--- refused attempts in the audit trail").unwrap();
        for (seq, at, e) in refused {
            writeln!(trace, "#{seq} {}: {e}", at.with_timezone(&zone).format("%a %Y-%m-%d %H:%M %Z")).unwrap();
        }
    }
    let branches = branch_records(&r.instance);
    if !branches.is_empty() {
        writeln!(trace, "--- parallel branches in the audit trail").unwrap();
        trace.push_str(&branches);
    }
    (trace, r.instance)
}

/// What the history records about parallel branches, one line each: `#seq what`.
fn branch_records(instance: &Instance) -> String {
    let workflow = instance.workflow();
    let node = |i: kars_workflow::NodeIndex| workflow.node_id(i).map(ToString::to_string).unwrap_or_default();
    let mut out = String::new();
    for record in instance.history().records() {
        for resolved in &record.resolved {
            let kars_workflow::Resolved::Branch(event) = resolved else { continue };
            let text = match *event {
                kars_workflow::BranchEvent::Started { fork, node: first } => {
                    format!("{} starts a branch at {}", node(fork), node(first))
                }
                kars_workflow::BranchEvent::Arrived { join } => format!("a branch arrived at {}", node(join)),
                kars_workflow::BranchEvent::Joined { join } => format!("{} joined", node(join)),
                kars_workflow::BranchEvent::Cancelled { node: at, reason } => {
                    let why = match reason {
                        kars_workflow::CancelReason::End { by } => format!("{} ended the cycle", node(by)),
                        kars_workflow::CancelReason::JoinFirst { join } => format!("{} is a join: first", node(join)),
                        kars_workflow::CancelReason::Escalation { by } => format!("the escalation of {}", node(by)),
                        other => format!("{other:?}"),
                    };
                    format!("branch at {} cancelled: {why}", node(at))
                }
                other => format!("{other:?}"),
            };
            writeln!(out, "#{} {text}", record.seq).unwrap();
        }
    }
    out
}

/// Replaying the history and restoring a JSON snapshot both give the live instance back.
fn check_replay_and_restore(instance: &Instance) {
    let workflow = Arc::clone(instance.workflow());
    let replayed = Instance::replay(Arc::clone(&workflow), instance.history()).unwrap();
    assert_eq!(replayed.state(), instance.state());
    assert_eq!(replayed.history(), instance.history());
    let json = serde_json::to_string(&instance.snapshot()).unwrap();
    let snapshot: Snapshot = serde_json::from_str(&json).unwrap();
    let restored = Instance::restore(workflow, snapshot).unwrap();
    assert_eq!(&restored, instance);
    let history_json = serde_json::to_string(instance.history()).unwrap();
    let history = serde_json::from_str(&history_json).unwrap();
    assert_eq!(&Instance::replay(Arc::clone(instance.workflow()), &history).unwrap(), instance);
}

#[test]
fn scenarios() {
    insta::glob!("scenarios/*.script", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let (trace, instance) = run_script(&text);
        check_replay_and_restore(&instance);
        insta::assert_snapshot!(trace);
    });
}

fn kars() -> Arc<Workflow> {
    load_workflow("kars-release.yaml")
}

fn toronto(s: &str) -> DateTime<Utc> {
    resolve_local(chrono_tz::America::Toronto, NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn complete(node: &str, name: &str, roles: &str, outcome: Option<&str>) -> Event {
    Event::Complete { node: NodeId::new(node).unwrap(), actor: actor(name, roles), outcome: outcome.map(Into::into) }
}

#[test]
fn the_first_cycle_is_the_iso_week_of_the_start() {
    // Sunday 2026-11-29 23:00 in Toronto is already Monday in UTC; the local week counts.
    let instance = Instance::start(kars(), InstanceId::new("k").unwrap(), toronto("2026-11-29 23:00"));
    assert_eq!(instance.release().as_str(), "2026-W48");
    assert_eq!(instance.current_node().map(NodeId::as_str), Some("B"));
    assert_eq!(instance.visited_this_cycle().iter().map(|n| n.as_str()).collect::<Vec<_>>(), ["A", "B"]);
}

#[test]
fn refusals_name_what_to_fix() {
    let mut instance = Instance::start(kars(), InstanceId::new("k").unwrap(), toronto("2026-11-23 08:00"));
    let at = toronto("2026-11-23 09:00");
    let err = instance.handle_event(complete("B", "alice", "developer", None), at).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`alice` may not act on `B`, which needs one of the roles `product_manager`, `team_lead`"
    );
    let err = instance.handle_event(complete("Q", "carol", "qa", None), at).unwrap_err();
    assert!(matches!(&err, EngineError::NotAwaiting { current: Some(c), .. } if c.as_str() == "B"), "{err}");
    assert_eq!(
        err.to_string(),
        "`Q` is not awaiting this event: the instance is at `B`, which waits for its task to be completed"
    );
    let err = instance.handle_event(complete("Nope", "carol", "qa", None), at).unwrap_err();
    assert_eq!(err.to_string(), "the workflow has no node `Nope`");
    let err = instance.handle_event(complete("B", "erin", "product_manager", Some("done")), at).unwrap_err();
    assert!(err.to_string().starts_with("`B` takes no outcome, but `done` was given"), "{err}");
    instance.handle_event(complete("B", "erin", "product_manager", None), at).unwrap();
    instance.handle_event(complete("C", "frank", "team_lead", None), at).unwrap();
    // D is gated until Tuesday 09:00.
    let err = instance.handle_event(complete("D", "alice", "developer", None), at).unwrap_err();
    assert_eq!(
        err,
        EngineError::GateNotOpen {
            node: NodeId::new("D").unwrap(),
            opens_at: utc("2026-11-24T14:00:00Z"),
            zone: chrono_tz::America::Toronto
        }
    );
    assert_eq!(
        err.to_string(),
        "`D` cannot start before its gate opens at 2026-11-24 09:00 EST (2026-11-24 14:00 UTC)"
    );
    // Five refusals and three acceptances, all in the audit trail.
    let refused = instance.history().records().filter(|r| matches!(r.verdict, kars_workflow::Verdict::Refused(_)));
    assert_eq!(refused.count(), 5);
    assert_eq!(instance.history().len(), 8);
}

#[test]
fn decisions_accept_only_declared_branches() {
    let mut instance = Instance::start(kars(), InstanceId::new("k").unwrap(), toronto("2026-11-27 08:00"));
    // Friday start: walk to N quickly (gates in the past open at once).
    for (node, name, roles, outcome) in [
        ("B", "erin", "product_manager", None),
        ("C", "frank", "team_lead", None),
        ("D", "alice", "developer", None),
        ("E", "alice", "developer", None),
        ("F", "bob", "developer", Some("approved")),
    ] {
        instance.handle_event(complete(node, name, roles, outcome), toronto("2026-11-27 08:00")).unwrap();
    }
    while let Some(e) = instance.poll_effect() {
        if e.kind.awaits_result() {
            let event = Event::result_of(&e, ActionOutcome::Succeeded);
            instance.handle_event(event, toronto("2026-11-27 08:00")).unwrap();
        }
    }
    assert_eq!(instance.current_node().map(NodeId::as_str), Some("I"));
    let at = toronto("2026-11-27 10:00");
    for (node, name, roles) in [("I", "erin", "product_manager"), ("K", "erin", "product_manager")] {
        instance.handle_event(complete(node, name, roles, None), at).unwrap();
    }
    instance.handle_event(complete("L", "carol", "qa", None), at).unwrap();
    instance.handle_event(complete("M", "dave", "devops", None), at).unwrap();
    let err = instance.handle_event(complete("N", "carol", "qa", Some("Maybe")), at).unwrap_err();
    assert_eq!(err.to_string(), "`N` has no outcome `Maybe`; valid: `No`, `Yes`");
    let err = instance.handle_event(complete("N", "carol", "qa", None), at).unwrap_err();
    assert_eq!(err.to_string(), "`N` needs an outcome; valid: `No`, `Yes`");
    let err = instance.handle_event(complete("N", "dave", "devops", Some("Yes")), at).unwrap_err();
    assert_eq!(err.to_string(), "`dave` may not act on `N`, which needs one of the roles `qa`");
    let waiting = instance.waiting(at);
    assert_eq!(waiting.to_string(), "2026-W48: decision `N` waits for role `qa` to pick `No`, `Yes`");
    instance.handle_event(complete("N", "carol", "qa", Some("Yes")), at).unwrap();
    let waiting = instance.waiting(at);
    assert_eq!(
        waiting.to_string(),
        "2026-W48: task `Q` waits for one of the roles `qa`; deadline 2026-11-27 15:00 EST"
    );
}

#[test]
fn dst_gates_follow_the_fold_and_gap_rule() {
    let workflow = load_workflow("dst-gate.yaml");
    // Spring forward: Sunday 2026-03-08 02:30 does not exist; the gate opens at 03:00 EDT.
    let mut spring = Instance::start(Arc::clone(&workflow), InstanceId::new("s").unwrap(), toronto("2026-03-02 08:00"));
    let gates = |i: &Instance| -> Vec<(String, DateTime<Utc>)> {
        i.history()
            .records()
            .flat_map(|r| r.resolved.into_vec())
            .filter_map(|r| match r {
                kars_workflow::Resolved::Gate { node, at } => {
                    Some((i.workflow().node_id(node).unwrap().to_string(), at))
                }
                _ => None,
            })
            .take(2)
            .collect()
    };
    spring.handle_timeout(toronto("2026-03-09 00:00"));
    assert_eq!(
        gates(&spring),
        [("Early".to_owned(), utc("2026-03-08T06:30:00Z")), ("Gap".to_owned(), utc("2026-03-08T07:00:00Z")),]
    );
    // Fall back: Sunday 2026-11-01 01:30 happens twice; the gate takes the first (EDT).
    let mut fall = Instance::start(workflow, InstanceId::new("f").unwrap(), toronto("2026-10-26 08:00"));
    fall.handle_timeout(toronto("2026-11-02 00:00"));
    assert_eq!(
        gates(&fall),
        [("Early".to_owned(), utc("2026-11-01T05:30:00Z")), ("Gap".to_owned(), utc("2026-11-01T07:30:00Z")),]
    );
}

#[test]
fn replay_refuses_another_spec_and_a_forged_verdict() {
    let mut instance = Instance::start(kars(), InstanceId::new("k").unwrap(), toronto("2026-11-23 08:00"));
    instance.handle_event(complete("B", "erin", "product_manager", None), toronto("2026-11-23 09:00")).unwrap();
    let other = load_workflow("dst-gate.yaml");
    let err = Instance::replay(other, instance.history()).unwrap_err();
    assert!(err.to_string().starts_with("the history does not replay: it was recorded with spec fingerprint"), "{err}");
    let history = instance.history();
    let mut records: Vec<_> = history.records().collect();
    if let kars_workflow::Input::Event(Event::Complete { actor, .. }) = &mut records[1].input {
        *actor = actor.with_roles(Vec::new());
    }
    let forged = kars_workflow::History::from_records(history.header.clone(), 0, records).unwrap();
    let err = Instance::replay(kars(), &forged).unwrap_err();
    assert!(
        matches!(err, EngineError::ReplayMismatch { seq: Some(1), mismatch: kars_workflow::Mismatch::Verdict { .. } }),
        "{err}"
    );
    let empty = kars_workflow::History::new(instance.history().header.clone());
    assert!(Instance::replay(kars(), &empty).is_err());
}

/// Automatic nodes that loop past the engine's step budget for one input stall the token
/// where the budget ran out (one `Stalled` notice), before the loop's retry bound: the input
/// is accepted, nothing spins, the next event is refused as not awaited, and the history
/// replays and restores to the same instance.
#[test]
fn an_automatic_loop_past_the_step_budget_stalls_the_token() {
    let workflow = load_workflow("automatic-loop.yaml");
    let start = toronto("2026-11-23 09:00");
    let mut instance = Instance::start(Arc::clone(&workflow), InstanceId::new("spin").unwrap(), start);
    instance.set_notice_capacity(1024);
    while instance.poll_notice().is_some() {}
    instance.handle_event(complete("B", "ana", "dev", Some("ok")), start).unwrap();
    let mut stalled = Vec::new();
    let mut entered = 0;
    while let Some(notice) = instance.poll_notice() {
        match notice.kind {
            NoticeKind::Stalled { node } => stalled.push(workflow.node_id(node).unwrap().to_string()),
            NoticeKind::NodeEntered { .. } => entered += 1,
            _ => {}
        }
    }
    // The budget is 4 nodes' worth per node of the spec, plus 16: 36 entries for 5 nodes.
    assert_eq!((entered, stalled.as_slice()), (36, ["C".to_owned()].as_slice()));
    let c = workflow.node_index("C").unwrap();
    assert!(instance.visits(c) < 1000, "the retry bound was not reached: {}", instance.visits(c));
    let waiting = instance.waiting(start);
    assert_eq!(waiting.node.as_ref().map(NodeId::as_str), Some("C"));
    assert!(matches!(waiting.reason, kars::workflow::WaitingFor::Stalled { .. }), "{:?}", waiting.reason);
    let err = instance.handle_event(complete("E", "ana", "dev", None), start).unwrap_err();
    assert!(matches!(err, EngineError::NotAwaiting { .. }), "{err:?}");
    check_replay_and_restore(&instance);
}

/// A host that journaled the records releases them: the numbering goes on, `since` reads
/// through the offset, the state is the same, replay refuses the partial history and replays
/// the whole one to the same state, and a snapshot of the released instance restores.
#[test]
fn released_history_keeps_the_numbering_and_the_state() {
    let mut live = Instance::start(kars(), InstanceId::new("k").unwrap(), toronto("2026-11-23 08:00"));
    let refused = live.handle_event(complete("B", "alice", "developer", None), toronto("2026-11-23 08:30"));
    assert!(refused.is_err());
    live.handle_event(complete("B", "erin", "product_manager", None), toronto("2026-11-23 09:00")).unwrap();
    let refused = live.handle_event(complete("C", "alice", "developer", None), toronto("2026-11-23 09:30"));
    assert!(refused.is_err());
    let mut whole = live.clone(); // what the journal holds
    let recorded = live.history().next_seq();
    assert_eq!(recorded, live.history().len() as u64);
    let whole_json = serde_json::to_string(live.history()).unwrap();
    assert!(!whole_json.contains("first_seq"), "{whole_json}");

    live.release_history(2);
    let history = live.history();
    assert_eq!((history.first_seq(), history.next_seq()), (2, recorded));
    assert_eq!(history.records().next().map(|r| r.seq), Some(2));
    assert_eq!(history.record(1), None, "released");
    assert_eq!(history.record(2).map(|r| r.seq), Some(2));
    assert!(history.since(0).eq(history.records()));
    assert!(history.since(2).eq(whole.history().since(2)));
    assert_eq!(history.since(3).next().map(|r| r.seq), Some(3));
    assert!(history.since(recorded).len() == 0 && history.since(recorded + 5).len() == 0);
    assert_eq!(live.state(), whole.state());
    live.release_history(1); // already released: nothing to do
    assert_eq!(live.history().first_seq(), 2);

    // Inputs go on numbering from where the released ones left off.
    for instance in [&mut live, &mut whole] {
        instance.handle_event(complete("C", "carol", "team_lead", None), toronto("2026-11-24 10:00")).unwrap();
    }
    assert_eq!(live.history().last().map(|r| r.seq), Some(recorded));
    assert!(live.history().records().eq(whole.history().since(2)));

    // A partial history does not replay; the whole one, read from the store, does.
    let err = Instance::replay(kars(), live.history()).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::ReplayMismatch { seq: None, mismatch: kars_workflow::Mismatch::Partial { first_seq: 2 } }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("it starts at record 2") && message.contains("replay needs it from record 0"),
        "{message}"
    );
    let replayed = Instance::replay(kars(), whole.history()).unwrap();
    assert_eq!(replayed.state(), live.state());

    // A snapshot of a released instance holds the records still held and restores.
    let json = serde_json::to_string(&live.snapshot()).unwrap();
    assert!(json.contains("\"first_seq\":2"), "{json}");
    let snapshot: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(snapshot.history().first_seq(), 2);
    let restored = Instance::restore(kars(), snapshot).unwrap();
    assert_eq!(restored, live);

    // Releasing everything (or past the end) empties the list and frees it.
    live.release_history(u64::MAX);
    assert_eq!((live.history().first_seq(), live.history().next_seq()), (recorded + 1, recorded + 1));
    assert!(live.history().is_empty());
    assert_eq!(live.footprint().history_heap, 0);
    live.handle_timeout(toronto("2026-11-24 11:00"));
    whole.handle_timeout(toronto("2026-11-24 11:00"));
    assert_eq!(live.state(), whole.state());
    assert_eq!(live.history().next_seq(), whole.history().next_seq());
}

#[test]
fn memory_per_instance_stays_small() {
    let instance = Instance::start(kars(), InstanceId::new("kars-release").unwrap(), toronto("2026-11-23 08:00"));
    let footprint = instance.footprint();
    // 524 B on Monday morning: 164 B of tables and the instance's own 360 B, of which 56 B
    // (the cycle's effect-key prefix and its earliest deadline) save some 2,200 instructions
    // a week; `tests/week_budget.rs` holds the budget of a whole week, history included.
    assert!(footprint.without_history() <= 544, "{footprint:?}");
}
