//! What the driver writes to the journal: a [`JournalHeader`] and [`Entry`] records, as JSON.
//!
//! # Format (version 2)
//!
//! The header is the JSON of [`JournalHeader`]: the format version, the engine's
//! [`HistoryHeader`] (spec fingerprint, workflow name, instance id, start instant), the
//! instance's [`ClockMode`] (a real instance or a rehearsal), its roster as fixed at the start,
//! and, when the host wants commands to run without the spec file (the `kars instance` command
//! line does), the spec's text. Each journal record is the JSON of one [`Entry`]:
//!
//! * `{"input": Record}` — one engine history record, exactly as [`crate::Instance::history`]
//!   holds it: the input (start, event or timeout), its verdict and the instants the engine
//!   resolved while handling it. The `input` entries, in order, are the [`crate::History`] that
//!   [`crate::Instance::replay`] rebuilds the instance from.
//! * `{"done": Done}` — the acknowledgement of an effect: its idempotency key, when, and how it
//!   ended. An effect that was emitted by a journaled input and has no `done` entry is run again
//!   (with the same key) when the journal is reopened.
//! * `{"roster": RosterChange}` — the roster replaced, by whom and when.
//! * `{"spec": SpecVersion}` — the text of a spec version the instance moves to, by whom and
//!   when, with the new team when it differs from the roster; the `input` entry of the upgrade
//!   (`{"upgrade": {"to": …, "when": …}}`) follows in the same append. A `spec` entry without
//!   its upgrade (an append torn by a crash) changes nothing: the upgrade record decides which
//!   spec, and which roster, is in force.
//!
//! Everything stored is typed data (kinds, ids, instants), never a rendered sentence: a refusal
//! is an [`crate::EngineError`] with ids, a failed effect a [`Failure`] with the adapter's own
//! words kept apart.
//!
//! Version 3 adds the `spec` entry and the upgrade input; it reads versions 1 and 2, which
//! have neither.
//!
//! Version 2 reads version 1 journals: their header has no clock mode (a rehearsal: version 1
//! took every time and actor from the command line) and no
//! roster (the spec's `team:`), their action results name no reporter
//! ([`crate::Reporter::Unrecorded`]) and their failures are one string ([`Failure::Text`]).
//!
//! Records are journaled, not recomputed inputs, because a record carries the instants the
//! engine resolved under the tz database of the day: replay must not resolve them again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::roster::Roster;
use crate::adapter::AdapterError;
use crate::effect::EffectKey;
use crate::event::ActionOutcome;
use crate::history::{HistoryHeader, Record};

/// The journal format version this build writes.
pub const JOURNAL_FORMAT: u32 = 3;

/// The oldest journal format version this build still reads.
pub const OLDEST_JOURNAL_FORMAT: u32 = 1;

/// Whose word the instance's clock is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockMode {
    /// A real instance: it runs on the system clock, and identities come from the host.
    #[default]
    System,
    /// A rehearsal (tests, demos, walkthroughs): the caller says what time it is and who acts.
    Rehearsal,
}

impl ClockMode {
    /// The mode of a format 1 journal.
    fn legacy() -> Self {
        ClockMode::Rehearsal
    }
}

impl std::fmt::Display for ClockMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClockMode::System => "real (system clock)",
            ClockMode::Rehearsal => "rehearsal (virtual clock)",
        })
    }
}

/// The header of an instance's journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalHeader {
    /// The format version ([`JOURNAL_FORMAT`]).
    pub format: u32,
    /// Who and what the history belongs to, with the spec's fingerprint.
    pub history: HistoryHeader,
    /// A real instance or a rehearsal. Format 1 had no such field: its instances took every
    /// time and actor from the command line, which is what a rehearsal is.
    #[serde(default = "ClockMode::legacy")]
    pub clock: ClockMode,
    /// The roster fixed at the start; `None` (format 1): the spec's `team:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster: Option<Roster>,
    /// The spec's text, when the host stores it with the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<SpecText>,
}

/// A spec's source text and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecText {
    /// The name to show in messages (the file it was read from).
    pub origin: String,
    /// The YAML text.
    pub text: String,
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Entry {
    /// An engine history record.
    Input(Record),
    /// An effect acknowledgement.
    Done(Done),
    /// The roster replaced.
    Roster(RosterChange),
    /// A spec version the instance moves to (its upgrade input follows).
    Spec(SpecVersion),
}

/// A journaled spec version: the text an upgrade moves the instance to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecVersion {
    /// When.
    pub at: DateTime<Utc>,
    /// Who upgraded (a person on the roster, or the host's name for itself).
    pub by: String,
    /// The spec's fingerprint.
    pub fingerprint: kars_spec::Fingerprint,
    /// The spec's text.
    pub spec: SpecText,
    /// The new spec's team, when it differs from the roster in force: it replaces the roster
    /// with the upgrade (only if the upgrade's input record follows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster: Option<Roster>,
}

/// A journaled roster change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterChange {
    /// When.
    pub at: DateTime<Utc>,
    /// Who changed it (a person on the roster before the change).
    pub by: String,
    /// The new roster.
    pub roster: Roster,
}

/// The acknowledgement of an effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Done {
    /// The effect's idempotency key.
    pub key: EffectKey,
    /// When the driver finished with it.
    pub at: DateTime<Utc>,
    /// How it ended.
    pub status: EffectStatus,
}

/// How an effect ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum EffectStatus {
    /// A notification was posted to every recipient.
    Sent,
    /// A waiting action ran and its result was reported (the result's input record follows
    /// in the same append).
    Reported(ActionOutcome),
    /// A waiting action was handed to the host, which reports its result later as an event.
    Handed,
    /// The effect failed for good (permanently, or after its retries); for a waiting action a
    /// `failed` result follows in the same append.
    Failed(Failure),
}

/// Why an effect failed for good, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Failure {
    /// A forge refused a merge whose pull request misses what the spec's `requires:` (over
    /// the adapter's defaults) asks for: permanent. Written first: untagged, it is the only
    /// form with `unmet`.
    Unmet {
        /// The adapter (`github`, `gitlab`).
        adapter: String,
        /// What it was doing (`merge`).
        operation: String,
        /// What the pull request lacks, as data.
        unmet: Vec<crate::requirements::Unmet>,
        /// The adapter's own words.
        detail: String,
    },
    /// An adapter call failed.
    Adapter {
        /// The adapter (`git`, `webhook`).
        adapter: String,
        /// What it was doing (`merge`, `notify`).
        operation: String,
        /// Whether the last failure was transient (the retries ran out) or permanent.
        transient: bool,
        /// The adapter's own words (a status line, a tool's message).
        detail: String,
    },
    /// A failure journaled by format 1: one line of text.
    Text {
        /// The text.
        error: String,
    },
}

impl From<&AdapterError> for Failure {
    fn from(e: &AdapterError) -> Self {
        match e {
            AdapterError::Unmet { adapter, operation, unmet, detail, .. } => Failure::Unmet {
                adapter: (*adapter).to_owned(),
                operation: (*operation).to_owned(),
                unmet: unmet.clone(),
                detail: detail.clone(),
            },
            AdapterError::Transient { adapter, operation, detail, .. }
            | AdapterError::Throttled { adapter, operation, detail, .. }
            | AdapterError::Permanent { adapter, operation, detail, .. } => Failure::Adapter {
                adapter: (*adapter).to_owned(),
                operation: (*operation).to_owned(),
                transient: e.is_transient(),
                detail: detail.clone(),
            },
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Adapter { adapter, operation, transient, detail } => {
                let after = if *transient { " (retries used up)" } else { "" };
                write!(f, "{adapter} could not {operation}{after}: {detail}")
            }
            Failure::Unmet { adapter, operation, detail, .. } => write!(f, "{adapter} could not {operation}: {detail}"),
            Failure::Text { error } => f.write_str(error.lines().next().unwrap_or_default()),
        }
    }
}

impl std::fmt::Display for EffectStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EffectStatus::Sent => f.write_str("sent"),
            EffectStatus::Reported(outcome) => write!(f, "done, {outcome}"),
            EffectStatus::Handed => f.write_str("handed to the operator"),
            EffectStatus::Failed(failure) => write!(f, "failed: {failure}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_tagged_json() {
        let done = Entry::Done(Done {
            key: EffectKey::from("kars/2026-W48/J/1"),
            at: "2026-11-26T22:30:00Z".parse().unwrap(),
            status: EffectStatus::Reported(ActionOutcome::Failed),
        });
        let json = serde_json::to_string(&done).unwrap();
        assert_eq!(
            json,
            r#"{"done":{"key":"kars/2026-W48/J/1","at":"2026-11-26T22:30:00Z","status":{"reported":"failed"}}}"#
        );
        assert_eq!(serde_json::from_str::<Entry>(&json).unwrap(), done);
    }

    #[test]
    fn format_1_failures_and_headers_still_read() {
        let old = r#"{"done":{"key":"k/1","at":"2026-11-26T22:30:00Z","status":{"failed":{"error":"git could not merge: conflict"}}}}"#;
        let Entry::Done(done) = serde_json::from_str::<Entry>(old).unwrap() else { panic!("not a done entry") };
        assert_eq!(done.status, EffectStatus::Failed(Failure::Text { error: "git could not merge: conflict".into() }));
        let new = EffectStatus::Failed(Failure::Adapter {
            adapter: "git".into(),
            operation: "merge".into(),
            transient: false,
            detail: "conflict".into(),
        });
        let json = serde_json::to_string(&new).unwrap();
        assert_eq!(json, r#"{"failed":{"adapter":"git","operation":"merge","transient":false,"detail":"conflict"}}"#);
        assert_eq!(serde_json::from_str::<EffectStatus>(&json).unwrap(), new);
    }

    #[test]
    fn a_refused_merge_keeps_what_it_lacked_as_data() {
        use crate::requirements::{CheckState, Unmet};
        let error = AdapterError::unmet(
            "github",
            "merge",
            Some("k/1"),
            "pull request #7",
            vec![
                Unmet::RoleApproval { role: kars_spec::RoleId::new("team_lead").unwrap() },
                Unmet::Check { name: "ci".into(), state: CheckState::Failed },
            ],
            &[],
        );
        assert!(!error.is_transient());
        let status = EffectStatus::Failed(Failure::from(&error));
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(
            json,
            r#"{"failed":{"adapter":"github","operation":"merge","unmet":[{"role_approval":{"role":"team_lead"}},{"check":{"name":"ci","state":"failed"}}],"detail":"pull request #7 does not meet what the merge requires: no approval by a holder of role `team_lead`; check `ci` failed"}}"#
        );
        assert_eq!(serde_json::from_str::<EffectStatus>(&json).unwrap(), status);
        assert_eq!(
            status.to_string(),
            "failed: github could not merge: pull request #7 does not meet what the merge requires: no approval by a holder of role `team_lead`; check `ci` failed"
        );
    }
}
