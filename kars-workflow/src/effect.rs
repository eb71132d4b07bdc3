//! The engine's outputs: [`Effect`]s the host performs, and small [`Notice`]s that let an
//! observer (the simulator, a dashboard) follow every transition.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use kars_spec::spec::Recipient;
use kars_spec::{EnvironmentId, NodeId};
use serde::{Deserialize, Serialize};

use crate::workflow::{LabelIndex, NodeIndex, WindowIndex};

/// The release a cycle ships: its ISO week, such as `2026-W48`. Shared: a clone is a
/// reference count (an instance hands the same id to every effect of a cycle).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReleaseId(std::sync::Arc<str>);

impl Serialize for ReleaseId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ReleaseId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Self(s.into()))
    }
}

impl ReleaseId {
    /// The release id of the cycle whose Monday is `monday`.
    ///
    /// Remembered per thread for the last few Mondays: every instance of a cycle then shares
    /// one id (a clone is a reference count), and the ISO week is worked out once.
    #[must_use]
    pub fn of(monday: NaiveDate) -> Self {
        thread_local! {
            /// A direct-mapped memo by day: `Self::compute` is a pure function of the date.
            static MEMO: std::cell::RefCell<[Option<(NaiveDate, ReleaseId)>; 8]> =
                const { std::cell::RefCell::new([const { None }; 8]) };
        }
        use chrono::Datelike;
        let slot = (monday.num_days_from_ce().rem_euclid(8)) as usize;
        let hit = MEMO.with(|memo| {
            let memo = memo.try_borrow().ok()?;
            match memo.get(slot) {
                Some(Some((day, id))) if *day == monday => Some(id.clone()),
                _ => None,
            }
        });
        if let Some(id) = hit {
            return id;
        }
        let id = Self::compute(monday);
        MEMO.with(|memo| {
            if let Ok(mut memo) = memo.try_borrow_mut()
                && let Some(s) = memo.get_mut(slot)
            {
                *s = Some((monday, id.clone()));
            }
        });
        id
    }

    fn compute(monday: NaiveDate) -> Self {
        use chrono::Datelike;
        let week = monday.iso_week();
        let (year, number) = (week.year(), week.week());
        // `kars_spec::calendar::release_id` without the formatting machinery for four-digit
        // years (every instant the engine works with), the same text.
        let Ok(year @ 1000..=9999) = u32::try_from(year) else {
            return Self(kars_spec::calendar::release_id(monday).into());
        };
        let digit = |n: u32| b'0' + (n % 10) as u8;
        let text = [digit(year / 1000), digit(year / 100), digit(year / 10), digit(year), b'-', b'W'];
        let mut id = String::with_capacity(8);
        id.push_str(std::str::from_utf8(&text).unwrap_or_default());
        id.push(char::from(digit(number / 10)));
        id.push(char::from(digit(number)));
        Self(id.into())
    }

    /// The id as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stable idempotency key: `{instance}/{release}/{node}/{n}` for the `n`th entry of a node in
/// a cycle, `{instance}/{release}/{node}/deadline` and `.../exhausted` for escalations. The
/// same inputs always give the same keys, so a host can deduplicate retried effects.
///
/// Shared: a clone (the key a host reports a result with) copies a pointer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EffectKey(#[serde(with = "crate::shared::arc_str")] pub(crate) Arc<str>);

impl EffectKey {
    /// The key as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EffectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something the host must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    /// The idempotency key.
    pub key: EffectKey,
    /// The release (cycle) it belongs to.
    pub release: ReleaseId,
    /// The node that caused it.
    pub node: NodeId,
    /// What to do.
    pub kind: EffectKind,
}

/// What an effect asks the host to do.
///
/// The strings and lists that come from the spec are shared with the compiled workflow: an
/// effect copies pointers, not text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EffectKind {
    /// Post a message; the engine does not wait for it.
    Notify {
        /// Channels and roles to tell.
        #[serde(with = "crate::shared::arc_slice")]
        to: Arc<[Recipient]>,
        /// The message, templates expanded.
        message: String,
    },
    /// Open a pull request; report the result with [`crate::Event::ActionResult`].
    OpenPullRequest {
        /// The source branch name or pattern (`kars-dev`).
        #[serde(with = "crate::shared::arc_str")]
        from: Arc<str>,
        /// The target branch name (`kars-prod`).
        #[serde(with = "crate::shared::arc_str")]
        to: Arc<str>,
    },
    /// Merge the pull request between two branches; report the result.
    MergePullRequest {
        /// The source branch name or pattern (`feature/*`).
        #[serde(with = "crate::shared::arc_str")]
        from: Arc<str>,
        /// The target branch name.
        #[serde(with = "crate::shared::arc_str")]
        to: Arc<str>,
        /// What the spec says the merge needs on a forge.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::shared::opt_arc")]
        requires: Option<Arc<kars_spec::spec::MergeRequirements>>,
    },
    /// Deploy an environment; report the result.
    Deploy {
        /// The environment.
        environment: EnvironmentId,
        /// Its URL, when the spec gives one.
        #[serde(default, with = "crate::shared::opt_arc_str")]
        url: Option<Arc<str>>,
    },
    /// Roll an environment back; report the result.
    Rollback {
        /// The environment.
        environment: EnvironmentId,
        /// Its URL, when the spec gives one.
        #[serde(default, with = "crate::shared::opt_arc_str")]
        url: Option<Arc<str>>,
    },
    /// Run a check suite; report the result.
    RunChecks {
        /// The suite (`smoke`).
        #[serde(with = "crate::shared::arc_str")]
        suite: Arc<str>,
        /// The environment it runs against.
        environment: Option<EnvironmentId>,
    },
}

impl EffectKind {
    /// Whether the instance waits for the host to report this effect's result.
    #[must_use]
    pub fn awaits_result(&self) -> bool {
        !matches!(self, EffectKind::Notify { .. })
    }
}

/// One transition an observer may want to see, with the instant it happened.
///
/// Notices are small and `Copy`; resolve their indices with [`crate::Workflow::node_id`],
/// [`crate::Workflow::label`] and [`crate::Workflow::window_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// When it happened (a timer's own instant when it fired late).
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: NoticeKind,
}

/// What a [`Notice`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NoticeKind {
    /// The instance moved to another spec version ([`crate::Instance::upgrade`]): notices
    /// before this one name the nodes and labels of spec `from`, later ones those of `to`.
    Upgraded {
        /// The spec that was in force.
        from: kars_spec::Fingerprint,
        /// The spec in force now.
        to: kars_spec::Fingerprint,
    },
    /// A gate with `on_holiday: skip_cycle` fell on a holiday: the cycle ends as `skipped`.
    HolidaySkip {
        /// The gated node.
        node: NodeIndex,
    },
    /// A cycle started; its Monday names the release.
    CycleStarted {
        /// The cycle's Monday.
        monday: NaiveDate,
    },
    /// A cycle ended with an outcome.
    CycleEnded {
        /// The outcome (`released`, `slipped`, `incident`).
        outcome: LabelIndex,
    },
    /// The token entered a node (`attempt` counts entries this cycle, from 1).
    NodeEntered {
        /// The node.
        node: NodeIndex,
        /// The entry count this cycle.
        attempt: u16,
    },
    /// A node completed.
    NodeCompleted {
        /// The node.
        node: NodeIndex,
    },
    /// A gate was armed at a resolved instant.
    GateArmed {
        /// The gated node.
        node: NodeIndex,
        /// When it opens.
        opens_at: DateTime<Utc>,
    },
    /// A gate opened.
    GateOpened {
        /// The gated node.
        node: NodeIndex,
    },
    /// A node missed its deadline; its escalation ran.
    DeadlineMissed {
        /// The node.
        node: NodeIndex,
    },
    /// A deadline had passed before the instance started: recorded as missed, without an
    /// escalation (nobody could have met it).
    DeadlineMissedBeforeStart {
        /// The node.
        node: NodeIndex,
    },
    /// A retry loop used up its attempts; its escalation ran.
    RetryExhausted {
        /// The node that starts the loop.
        node: NodeIndex,
    },
    /// A window opened.
    WindowOpened {
        /// The window.
        window: WindowIndex,
    },
    /// A window closed.
    WindowClosed {
        /// The window.
        window: WindowIndex,
    },
    /// A merge was recorded.
    MergeRecorded,
    /// A `parallel` node started a branch at `node`.
    BranchStarted {
        /// The branch's first node.
        node: NodeIndex,
    },
    /// A parallel branch at `node` was cancelled (see [`crate::history::CancelReason`]).
    BranchCancelled {
        /// The node the branch was at.
        node: NodeIndex,
    },
    /// A join passed on.
    Joined {
        /// The join.
        node: NodeIndex,
    },
    /// The token could not move on (no branch for a recorded outcome, or a loop of automatic
    /// nodes that never waits); see [`crate::Waiting`].
    Stalled {
        /// The node.
        node: NodeIndex,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_ids_match_the_calendar_text() {
        for date in ["2026-11-23", "2026-01-01", "2020-12-31", "1000-01-06", "9000-01-01", "0999-12-31", "2027-01-04"] {
            let date: NaiveDate = date.parse().unwrap();
            assert_eq!(ReleaseId::of(date).as_str(), kars_spec::calendar::release_id(date));
        }
        assert_eq!(ReleaseId::of("2026-11-23".parse().unwrap()).as_str(), "2026-W48");
        assert_eq!(ReleaseId::of("2026-01-01".parse().unwrap()).as_str(), "2026-W01");
    }

    /// The shared strings serialize as the `String`s they replaced: the JSON of effects (and so
    /// of journals' outboxes) is unchanged, and it reads back.
    #[test]
    fn shared_strings_keep_the_json() {
        use kars_spec::RoleId;
        let release = ReleaseId::of("2026-11-23".parse().unwrap());
        let effect = |node: &str, kind: EffectKind| Effect {
            key: EffectKey(format!("kars/2026-W48/{node}/1").into()),
            release: release.clone(),
            node: NodeId::new(node).unwrap(),
            kind,
        };
        let requires = kars_spec::spec::MergeRequirements {
            approvals: Some(1),
            approved_by: vec![RoleId::new("qa").unwrap()],
            checks: vec!["ci".to_owned()],
            method: None,
        };
        let effects = [
            effect(
                "S",
                EffectKind::Notify {
                    to: vec![Recipient::Role(RoleId::new("qa").unwrap())].into(),
                    message: "hi".into(),
                },
            ),
            effect("V", EffectKind::OpenPullRequest { from: "kars-dev".into(), to: "kars-prod".into() }),
            effect(
                "W",
                EffectKind::MergePullRequest {
                    from: "feature/*".into(),
                    to: "kars-dev".into(),
                    requires: Some(requires.into()),
                },
            ),
            effect("X", EffectKind::MergePullRequest { from: "a".into(), to: "b".into(), requires: None }),
            effect(
                "Y",
                EffectKind::Deploy {
                    environment: EnvironmentId::new("production").unwrap(),
                    url: Some("https://x".into()),
                },
            ),
            effect("Z", EffectKind::Rollback { environment: EnvironmentId::new("production").unwrap(), url: None }),
            effect("AD", EffectKind::RunChecks { suite: "smoke".into(), environment: None }),
        ];
        let json = serde_json::to_string(&effects).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"[{"key":"kars/2026-W48/S/1","release":"2026-W48","node":"S","kind":{"notify":{"to":[{"role":"qa"}],"message":"hi"}}},"#,
                r#"{"key":"kars/2026-W48/V/1","release":"2026-W48","node":"V","kind":{"open_pull_request":{"from":"kars-dev","to":"kars-prod"}}},"#,
                r#"{"key":"kars/2026-W48/W/1","release":"2026-W48","node":"W","kind":{"merge_pull_request":{"from":"feature/*","to":"kars-dev","requires":{"approvals":1,"approved_by":["qa"],"checks":["ci"]}}}},"#,
                r#"{"key":"kars/2026-W48/X/1","release":"2026-W48","node":"X","kind":{"merge_pull_request":{"from":"a","to":"b"}}},"#,
                r#"{"key":"kars/2026-W48/Y/1","release":"2026-W48","node":"Y","kind":{"deploy":{"environment":"production","url":"https://x"}}},"#,
                r#"{"key":"kars/2026-W48/Z/1","release":"2026-W48","node":"Z","kind":{"rollback":{"environment":"production","url":null}}},"#,
                r#"{"key":"kars/2026-W48/AD/1","release":"2026-W48","node":"AD","kind":{"run_checks":{"suite":"smoke","environment":null}}}]"#,
            )
        );
        assert_eq!(serde_json::from_str::<Vec<Effect>>(&json).unwrap(), effects);
        // As an `Option<String>` did, a missing URL reads as none.
        let kind: EffectKind = serde_json::from_str(r#"{"deploy":{"environment":"production"}}"#).unwrap();
        assert_eq!(kind, EffectKind::Deploy { environment: EnvironmentId::new("production").unwrap(), url: None });
    }
}
