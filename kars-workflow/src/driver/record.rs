//! What the driver writes to the journal: a [`JournalHeader`] and [`Entry`] records, as JSON.
//!
//! # Format (version 1)
//!
//! The header is the JSON of [`JournalHeader`]: the format version, the engine's
//! [`HistoryHeader`] (spec fingerprint, workflow name, instance id, start instant) and, when the
//! host wants commands to run without the spec file (the `kars instance` command line does),
//! the spec's text. Each journal record is the JSON of one [`Entry`]:
//!
//! * `{"input": Record}` — one engine history record, exactly as [`crate::Instance::history`]
//!   holds it: the input (start, event or timeout), its verdict and the instants the engine
//!   resolved while handling it. The `input` entries, in order, are the [`crate::History`] that
//!   [`crate::Instance::replay`] rebuilds the instance from.
//! * `{"done": Done}` — the acknowledgement of an effect: its idempotency key, when, and how it
//!   ended. An effect that was emitted by a journaled input and has no `done` entry is run again
//!   (with the same key) when the journal is reopened.
//!
//! Records are journaled, not recomputed inputs, because a record carries the instants the
//! engine resolved under the tz database of the day: replay must not resolve them again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::effect::EffectKey;
use crate::event::ActionOutcome;
use crate::history::{HistoryHeader, Record};

/// The journal format version this build writes and reads.
pub const JOURNAL_FORMAT: u32 = 1;

/// The header of an instance's journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalHeader {
    /// The format version ([`JOURNAL_FORMAT`]).
    pub format: u32,
    /// Who and what the history belongs to, with the spec's fingerprint.
    pub history: HistoryHeader,
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
    Failed {
        /// The last error.
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_tagged_json() {
        let done = Entry::Done(Done {
            key: EffectKey("kars/2026-W48/J/1".into()),
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
}
