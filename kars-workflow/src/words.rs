//! Effects and notices in words: `Display` for [`EffectKind`], and [`NoticeKind::display`]
//! (a notice names nodes by index, so it needs the workflow). Data is stored as data; these
//! sentences are rendered from it, and changing one never changes a file format.

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use kars_spec::spec::Recipient;

use crate::effect::{EffectKind, NoticeKind, ReleaseId};
use crate::workflow::{NodeIndex, Workflow};

/// The one local-time format of kars' words: `Mon 2026-11-23 09:00 EST`.
#[must_use]
pub fn local_time(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%a %Y-%m-%d %H:%M %Z").to_string()
}

/// An [`EffectKind`] in words, naming channels through `address` (a channel's address, such
/// as `#kars-releases`): see [`EffectKind::display_with`].
pub struct EffectWords<'a, F> {
    kind: &'a EffectKind,
    address: F,
}

impl EffectKind {
    /// The effect in words, naming each channel by what `address` gives for its id (the
    /// driver's [`Program::channel_address`](crate::driver::Program::channel_address)).
    /// `Display` names a channel `#id`.
    pub fn display_with<F: Fn(&str) -> String>(&self, address: F) -> EffectWords<'_, F> {
        EffectWords { kind: self, address }
    }
}

impl<F: Fn(&str) -> String> fmt::Display for EffectWords<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            EffectKind::Notify { to, message } => {
                let to: Vec<String> = to
                    .iter()
                    .map(|r| match r {
                        Recipient::Channel(c) => (self.address)(c.as_str()),
                        Recipient::Role(r) => format!("@{r}"),
                    })
                    .collect();
                write!(f, "notify {} \"{}\"", to.join(", "), message.replace('\n', " "))
            }
            EffectKind::OpenPullRequest { from, to } => write!(f, "open a pull request {from} -> {to}"),
            EffectKind::MergePullRequest { from, to, .. } => write!(f, "merge {from} -> {to}"),
            EffectKind::Deploy { environment, url } => {
                write!(f, "deploy `{environment}`")?;
                match url {
                    Some(u) => write!(f, " ({u})"),
                    None => Ok(()),
                }
            }
            EffectKind::Rollback { environment, .. } => write!(f, "roll back `{environment}`"),
            EffectKind::RunChecks { suite, environment } => {
                write!(f, "run the `{suite}` checks")?;
                match environment {
                    Some(e) => write!(f, " on `{e}`"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl fmt::Display for EffectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.display_with(|id| format!("#{id}")).fmt(f)
    }
}

/// A [`NoticeKind`] in words: see [`NoticeKind::display`].
pub struct NoticeWords<'a> {
    kind: NoticeKind,
    workflow: &'a Workflow,
}

impl NoticeKind {
    /// The notice in words, with `workflow`'s node ids, labels and window ids, and instants in
    /// its zone (`gate of `D` opens Tue 2026-11-24 09:00 EST`).
    #[must_use]
    pub fn display(self, workflow: &Workflow) -> NoticeWords<'_> {
        NoticeWords { kind: self, workflow }
    }
}

impl fmt::Display for NoticeWords<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let workflow = self.workflow;
        let node = |index: NodeIndex| workflow.node_id(index).map_or_else(|| index.to_string(), ToString::to_string);
        let window = |w| workflow.window_id(w).map(ToString::to_string).unwrap_or_default();
        match self.kind {
            NoticeKind::Upgraded { from, to } => write!(f, "spec `{from}` gives way to spec `{to}`"),
            NoticeKind::HolidaySkip { node: n } => {
                write!(f, "the gate of `{}` falls on a holiday: the cycle is skipped", node(n))
            }
            NoticeKind::CycleStarted { monday } => write!(f, "cycle {} started", ReleaseId::of(monday)),
            NoticeKind::CycleEnded { outcome } => write!(f, "cycle ended: {}", workflow.label(outcome)),
            NoticeKind::NodeEntered { node: n, attempt } if attempt > 1 => {
                write!(f, "at `{}` (entry {attempt})", node(n))
            }
            NoticeKind::NodeEntered { node: n, .. } => write!(f, "at `{}`", node(n)),
            NoticeKind::NodeCompleted { node: n } => write!(f, "`{}` completed", node(n)),
            NoticeKind::GateArmed { node: n, opens_at } => {
                write!(f, "gate of `{}` opens {}", node(n), local_time(opens_at, workflow.zone()))
            }
            NoticeKind::GateOpened { node: n } => write!(f, "gate of `{}` open", node(n)),
            NoticeKind::DeadlineMissed { node: n } => write!(f, "`{}` missed its deadline", node(n)),
            NoticeKind::DeadlineMissedBeforeStart { node: n } => {
                write!(f, "the deadline of `{}` had passed before the instance started (no escalation)", node(n))
            }
            NoticeKind::RetryExhausted { node: n } => write!(f, "`{}` used up its attempts", node(n)),
            NoticeKind::WindowOpened { window: w } => write!(f, "window `{}` opened", window(w)),
            NoticeKind::WindowClosed { window: w } => write!(f, "window `{}` closed", window(w)),
            NoticeKind::MergeRecorded => f.write_str("merge recorded"),
            NoticeKind::Stalled { node: n } => write!(f, "`{}` is stalled", node(n)),
            NoticeKind::BranchStarted { node: n } => write!(f, "branch started at `{}`", node(n)),
            NoticeKind::BranchCancelled { node: n } => write!(f, "branch at `{}` cancelled", node(n)),
            NoticeKind::Joined { node: n } => write!(f, "branches joined at `{}`", node(n)),
        }
    }
}

impl crate::Waiting {
    /// What the instance waits for in a few words, for the current node of a drawing or a
    /// list (`waits for qa`, `gate opens Fri 2026-11-27 09:00 EST`); while parallel branches
    /// run, the first branch's.
    #[must_use]
    pub fn short(&self) -> String {
        self.reason.short()
    }
}

impl crate::Instance {
    /// Where the instance stands at `now`, for drawing on its flowchart
    /// ([`kars_spec::mermaid::render_state`]): the node of every running branch, the nodes
    /// passed this cycle, and what each branch waits for.
    #[must_use]
    pub fn state_view(&self, now: chrono::DateTime<chrono::Utc>) -> kars_spec::mermaid::StateView {
        let waiting = self.waiting(now.max(self.latest_instant()));
        let current: Vec<kars_spec::NodeId> =
            waiting.node.iter().cloned().chain(waiting.branches.iter().map(|b| b.node.clone())).collect();
        let visited = self.visited_this_cycle().into_iter().filter(|n| !current.contains(n)).cloned().collect();
        // One text per branch while branches run; the one token's text otherwise.
        let waiting_at = match &waiting.node {
            Some(first) if !waiting.branches.is_empty() => std::iter::once((first.clone(), waiting.short()))
                .chain(waiting.branches.iter().map(|b| (b.node.clone(), b.reason.short())))
                .collect(),
            _ => std::collections::BTreeMap::new(),
        };
        kars_spec::mermaid::StateView { current, visited, waiting: Some(waiting.short()), waiting_at }
    }
}

impl crate::WaitingFor {
    /// What one token waits for in a few words (see [`crate::Waiting::short`]).
    #[must_use]
    pub fn short(&self) -> String {
        use crate::WaitingFor;
        match self {
            WaitingFor::Task { roles, .. } => {
                let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                format!("waits for {}", roles.join(" or "))
            }
            WaitingFor::Decision { role, .. } => format!("{role} decides"),
            WaitingFor::Gate { opens_local, .. } => format!("gate opens {opens_local}"),
            WaitingFor::ActionResult { .. } => "waits for its result".to_owned(),
            WaitingFor::NextCycle { starts_local, .. } => format!("next cycle {starts_local}"),
            WaitingFor::Stalled { .. } => "stalled".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_read_as_words() {
        let kind = EffectKind::RunChecks { suite: "smoke".into(), environment: None };
        assert_eq!(kind.to_string(), "run the `smoke` checks");
        let kind = EffectKind::MergePullRequest { from: "feature/*".into(), to: "kars-dev".into(), requires: None };
        assert_eq!(kind.to_string(), "merge feature/* -> kars-dev");
        let notify: EffectKind = serde_json::from_str(
            r#"{"notify":{"to":[{"channel":"releases"},{"role":"devops"}],"message":"two\nlines"}}"#,
        )
        .unwrap();
        assert_eq!(notify.to_string(), "notify #releases, @devops \"two lines\"");
        assert_eq!(
            notify.display_with(|id| format!("#kars-{id}")).to_string(),
            "notify #kars-releases, @devops \"two lines\""
        );
    }
}
