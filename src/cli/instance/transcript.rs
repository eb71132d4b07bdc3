//! A readable account of journal entries: every input with its recorded instant and verdict,
//! the transitions it caused (as the engine's replay or the driver's report gives them), the
//! effects with how they ended, and roster changes, in the workflow's local time. Nothing here
//! computes a gate or a deadline: the instants shown are the recorded ones.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::Arc;

use kars::workflow::Workflow;
use kars::workflow::driver::{Done, Entry, Program, RosterChange, SpecVersion, Versions};
use kars::workflow::{Effect, EffectKey, EffectKind, Event, Input, Notice, NoticeKind, Record, Verdict};

/// The one local-time format of the command line.
pub fn local(at: DateTime<Utc>, zone: Tz) -> String {
    kars::workflow::local_time(at, zone)
}

/// Renders entries line by line into a string.
pub struct Transcript<'a> {
    program: &'a Program,
    zone: Tz,
    /// The instance's start, the instant shown for entries this build cannot describe.
    started: DateTime<Utc>,
    /// The effects seen so far, to describe their acknowledgements.
    effects: HashMap<EffectKey, EffectKind>,
    out: String,
    /// The spec in force at the entry being rendered: notices name its nodes.
    workflow: Arc<Workflow>,
    /// Every spec version, to follow upgrades.
    versions: Versions,
}

impl<'a> Transcript<'a> {
    /// A transcript whose first entry runs under `workflow`.
    pub fn new(program: &'a Program, workflow: Arc<Workflow>, started: DateTime<Utc>) -> Self {
        Self {
            program,
            zone: workflow.zone(),
            started,
            effects: HashMap::new(),
            out: String::new(),
            workflow,
            versions: Versions::default(),
        }
    }

    /// The spec versions upgrades move to, so that later notices name the right nodes.
    pub fn versions(&mut self, versions: &Versions) {
        self.versions = versions.clone();
    }

    fn line(&mut self, at: DateTime<Utc>, depth: usize, text: &str) {
        use std::fmt::Write as _;
        let _ = writeln!(self.out, "{}  {}{text}", local(at, self.zone), "  ".repeat(depth));
    }

    /// Remembers effects so that their acknowledgements can say what they were.
    pub fn know(&mut self, effects: impl IntoIterator<Item = &'a Effect>) {
        for e in effects {
            self.effects.insert(e.key.clone(), e.kind.clone());
        }
    }

    /// An entry with what it caused.
    pub fn entry(&mut self, entry: &Entry, notices: &[&Notice]) {
        match entry {
            Entry::Input(record) => self.input(record, notices),
            Entry::Done(done) => self.done(done),
            Entry::Roster(change) => self.roster(change),
            Entry::Spec(version) => self.spec(version),
            other => {
                let text = format!("{other:?}");
                self.line(self.started, 0, &text);
            }
        }
    }

    fn input(&mut self, record: &Record, notices: &[&Notice]) {
        let text = describe_input(record);
        self.line(record.at, 0, &text);
        for notice in notices {
            if let NoticeKind::Upgraded { to, .. } = notice.kind
                && let Some(next) = self.versions.get(to)
            {
                self.workflow = Arc::clone(next);
                self.zone = next.zone();
            }
            // A completion is said by the input itself.
            if !matches!(notice.kind, NoticeKind::NodeCompleted { .. }) {
                let text = notice.kind.display(&self.workflow).to_string();
                self.line(notice.at, 1, &text);
            }
        }
    }

    fn spec(&mut self, version: &SpecVersion) {
        let text = format!("{} stores spec `{}` (from {})", version.by, version.fingerprint, version.spec.origin);
        self.line(version.at, 0, &text);
    }

    fn done(&mut self, done: &Done) {
        let what = self.effects.get(&done.key).map(|k| describe_effect(k, self.program));
        let text = match what {
            Some(what) => format!("effect {} ({what}): {}", done.key, done.status),
            None => format!("effect {}: {}", done.key, done.status),
        };
        self.line(done.at, 1, &text);
    }

    fn roster(&mut self, change: &RosterChange) {
        let people: Vec<String> = change
            .roster
            .members()
            .map(|(p, m)| {
                let roles: Vec<&str> = m.roles.iter().map(|r| r.as_str()).collect();
                format!("{p} [{}]", roles.join(", "))
            })
            .collect();
        let text = format!("{} changes the roster: {}", change.by, people.join("; "));
        self.line(change.at, 0, &text);
    }

    /// An effect emitted and not acknowledged yet.
    pub fn pending(&mut self, at: DateTime<Utc>, effect: &Effect) {
        let text =
            format!("effect {} ({}): not performed yet", effect.key, describe_effect(&effect.kind, self.program));
        self.line(at, 1, &text);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn describe_input(record: &Record) -> String {
    let text = match &record.input {
        Input::Start => "start".to_owned(),
        Input::Timeout => "tick".to_owned(),
        Input::Event(Event::Complete { node, actor, outcome }) => match outcome {
            Some(o) => format!("{} completes `{node}` with `{o}`", actor.name()),
            None => format!("{} completes `{node}`", actor.name()),
        },
        Input::Event(Event::ActionResult { node, outcome, reporter }) => {
            format!("result of `{node}`: {outcome}, reported by {reporter}")
        }
        Input::Event(Event::Merge { source, target, actor }) => {
            format!("{} merges `{source}` into `{target}`", actor.name())
        }
        Input::Upgrade { to, when } => format!("upgrade to spec `{to}`, {when}"),
    };
    match &record.verdict {
        Verdict::Accepted => text,
        Verdict::Refused(e) => format!("{text}: refused ({})", first_line(&e.to_string())),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// What an effect asks for, in words, with the program's channel addresses.
pub fn describe_effect(kind: &EffectKind, program: &Program) -> String {
    kind.display_with(|id| program.channel_address(id)).to_string()
}
