//! A readable account of an instance's journal: every input, the transitions it caused
//! (re-derived by driving a fresh instance with notices on), the effects it emitted and their
//! acknowledgements, in the workflow's local time.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use kars::spec::spec::Recipient;
use kars::workflow::driver::{EffectStatus, Entry, JournalHeader, Program};
use kars::workflow::{EffectKind, Event, Input, Instance, NoticeKind, Options, Record, Verdict, Workflow};

/// One line: when, how deep (0 = an input, 1 = what followed), and the text.
pub struct Line {
    pub at: DateTime<Utc>,
    pub depth: usize,
    pub text: String,
}

impl Line {
    pub fn render(&self, zone: Tz) -> String {
        let local = self.at.with_timezone(&zone).format("%a %Y-%m-%d %H:%M %Z");
        format!("{local}  {}{}", "  ".repeat(self.depth), self.text)
    }
}

/// The lines of `entries`, grouped per entry (`result[i]` belongs to `entries[i]`).
pub fn transcript(program: &Program, header: &JournalHeader, entries: &[Entry]) -> Vec<Vec<Line>> {
    let workflow = program.workflow();
    let mut instance: Option<Instance> = None;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut lines = Vec::new();
        match entry {
            Entry::Input(record) => {
                lines.push(Line { at: record.at, depth: 0, text: describe_input(record) });
                match (&mut instance, &record.input) {
                    (None, _) => {
                        let h = &header.history;
                        let options = Options { notice_capacity: 4096 };
                        instance =
                            Some(Instance::start_with(Arc::clone(workflow), h.instance.clone(), h.started_at, options));
                    }
                    (Some(i), Input::Event(event)) => {
                        // The verdict is the recorded one; replaying gives the same.
                        let _ = i.handle_event(event.clone(), record.at);
                    }
                    (Some(i), Input::Timeout) => i.handle_timeout(record.at),
                    (Some(_), Input::Start) => {}
                }
                if let Some(i) = &mut instance {
                    follow(i, program, &mut lines);
                }
            }
            Entry::Done(done) => {
                let status = match &done.status {
                    EffectStatus::Sent => "sent".to_owned(),
                    EffectStatus::Reported(outcome) => format!("done, {}", outcome_text(*outcome)),
                    EffectStatus::Handed => "handed to the operator".to_owned(),
                    EffectStatus::Failed { error } => format!("failed: {}", first_line(error)),
                    other => format!("{other:?}"),
                };
                lines.push(Line { at: done.at, depth: 1, text: format!("effect {}: {status}", done.key) });
            }
            other => lines.push(Line { at: header.history.started_at, depth: 1, text: format!("{other:?}") }),
        }
        out.push(lines);
    }
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn outcome_text(outcome: kars::workflow::ActionOutcome) -> &'static str {
    match outcome {
        kars::workflow::ActionOutcome::Succeeded => "succeeded",
        kars::workflow::ActionOutcome::Failed => "failed",
    }
}

fn describe_input(record: &Record) -> String {
    let text = match &record.input {
        Input::Start => "start".to_owned(),
        Input::Timeout => "tick".to_owned(),
        Input::Event(Event::Complete { node, actor, outcome }) => match outcome {
            Some(o) => format!("{} completes `{node}` with `{o}`", actor.name),
            None => format!("{} completes `{node}`", actor.name),
        },
        Input::Event(Event::ActionResult { node, outcome }) => {
            format!("result of `{node}`: {}", outcome_text(*outcome))
        }
        Input::Event(Event::Merge { source, target, actor }) => {
            format!("{} merges `{source}` into `{target}`", actor.name)
        }
    };
    match &record.verdict {
        Verdict::Accepted => text,
        Verdict::Refused(e) => format!("{text}: refused ({})", first_line(&e.to_string())),
    }
}

/// Adds the transitions and effects `instance` produced since it was last drained.
fn follow(instance: &mut Instance, program: &Program, lines: &mut Vec<Line>) {
    let workflow = Arc::clone(instance.workflow());
    while let Some(notice) = instance.poll_notice() {
        if let Some(text) = describe_notice(&workflow, notice.kind) {
            lines.push(Line { at: notice.at, depth: 1, text });
        }
    }
    let at = instance.history().records.last().map_or(instance.history().header.started_at, |r| r.at);
    while let Some(effect) = instance.poll_effect() {
        lines.push(Line {
            at,
            depth: 1,
            text: format!("effect {}: {}", effect.key, describe_effect(&effect.kind, program)),
        });
    }
}

fn node(workflow: &Workflow, index: kars::workflow::NodeIndex) -> String {
    workflow.node_id(index).map_or_else(|| index.to_string(), ToString::to_string)
}

fn describe_notice(workflow: &Workflow, kind: NoticeKind) -> Option<String> {
    let zone = workflow.zone();
    let local = |at: DateTime<Utc>| at.with_timezone(&zone).format("%a %Y-%m-%d %H:%M %Z").to_string();
    Some(match kind {
        NoticeKind::CycleStarted { monday } => {
            format!("cycle {} started", kars::workflow::ReleaseId::of(monday))
        }
        NoticeKind::CycleEnded { outcome } => format!("cycle ended: {}", workflow.label(outcome)),
        NoticeKind::NodeEntered { node: n, attempt } if attempt > 1 => {
            format!("at `{}` (entry {attempt})", node(workflow, n))
        }
        NoticeKind::NodeEntered { node: n, .. } => format!("at `{}`", node(workflow, n)),
        NoticeKind::NodeCompleted { .. } => return None,
        NoticeKind::GateArmed { node: n, opens_at } => {
            format!("gate of `{}` opens {}", node(workflow, n), local(opens_at))
        }
        NoticeKind::GateOpened { node: n } => format!("gate of `{}` open", node(workflow, n)),
        NoticeKind::DeadlineMissed { node: n } => format!("`{}` missed its deadline", node(workflow, n)),
        NoticeKind::RetryExhausted { node: n } => format!("`{}` used up its attempts", node(workflow, n)),
        NoticeKind::WindowOpened { window } => {
            format!("window `{}` opened", workflow.window_id(window).map(ToString::to_string).unwrap_or_default())
        }
        NoticeKind::WindowClosed { window } => {
            format!("window `{}` closed", workflow.window_id(window).map(ToString::to_string).unwrap_or_default())
        }
        NoticeKind::MergeRecorded => "merge recorded".to_owned(),
        NoticeKind::Stalled { node: n } => format!("`{}` is stalled", node(workflow, n)),
        other => format!("{other:?}"),
    })
}

/// What an effect asks for, in words.
pub fn describe_effect(kind: &EffectKind, program: &Program) -> String {
    match kind {
        EffectKind::Notify { to, message } => {
            let to: Vec<String> = to
                .iter()
                .map(|r| match r {
                    Recipient::Channel(c) => program.channel_address(c.as_str()),
                    Recipient::Role(r) => format!("@{r}"),
                })
                .collect();
            format!("notify {} \"{}\"", to.join(", "), message.replace('\n', " "))
        }
        EffectKind::OpenPullRequest { from, to } => format!("open a pull request {from} -> {to}"),
        EffectKind::MergePullRequest { from, to } => format!("merge {from} -> {to}"),
        EffectKind::Deploy { environment, url } => {
            format!("deploy `{environment}`{}", url.as_ref().map(|u| format!(" ({u})")).unwrap_or_default())
        }
        EffectKind::Rollback { environment, .. } => format!("roll back `{environment}`"),
        EffectKind::RunChecks { suite, environment } => format!(
            "run the `{suite}` checks{}",
            environment.as_ref().map(|e| format!(" on `{e}`")).unwrap_or_default()
        ),
        other => format!("{other:?}"),
    }
}
