//! The engine's outputs: [`Effect`]s the host performs, and small [`Notice`]s that let an
//! observer (the simulator, a dashboard) follow every transition.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use kars_spec::spec::Recipient;
use kars_spec::{EnvironmentId, InlineStr, NodeId};
use serde::{Deserialize, Serialize};

use crate::workflow::{LabelIndex, NodeIndex, WindowIndex};

/// The release a cycle ships: its ISO week, such as `2026-W48`. An id of the usual eight
/// bytes is kept inside the value (a clone copies 16 bytes, with no reference count); any
/// other text is shared.
#[derive(Clone)]
pub struct ReleaseId(Release);

#[derive(Clone)]
enum Release {
    /// Eight bytes: `YYYY-Www` as `ReleaseId::of` writes it, or any eight-byte text read
    /// back (a copy of a whole `&str`, so valid UTF-8).
    Week([u8; 8]),
    Other(Arc<str>),
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<ReleaseId>() == 16, "a ReleaseId is as big as an Arc<str>");

impl From<&str> for ReleaseId {
    fn from(s: &str) -> Self {
        match <[u8; 8]>::try_from(s.as_bytes()) {
            Ok(week) => Self(Release::Week(week)),
            Err(_) => Self(Release::Other(s.into())),
        }
    }
}

impl PartialEq for ReleaseId {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Release::Week(a), Release::Week(b)) => a == b,
            // Eight-byte text is never shared.
            (Release::Week(_), Release::Other(_)) | (Release::Other(_), Release::Week(_)) => false,
            (Release::Other(a), Release::Other(b)) => a == b,
        }
    }
}

impl Eq for ReleaseId {}

impl PartialOrd for ReleaseId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ReleaseId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for ReleaseId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReleaseId").field(&self.as_str()).finish()
    }
}

impl Serialize for ReleaseId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReleaseId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Self::from(s.as_str()))
    }
}

impl ReleaseId {
    /// The release id of the cycle whose Monday is `monday`.
    ///
    /// Remembered per thread for the last few Mondays, so that the ISO week of a cycle is
    /// worked out once however many instances start it (~140 instructions a call without).
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
            return Self::from(kars_spec::calendar::release_id(monday).as_str());
        };
        let digit = |n: u32| b'0' + (n % 10) as u8;
        Self(Release::Week([
            digit(year / 1000),
            digit(year / 100),
            digit(year / 10),
            digit(year),
            b'-',
            b'W',
            digit(number / 10),
            digit(number),
        ]))
    }

    /// The id as a string slice.
    #[must_use]
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Release::Week(text) => {
                debug_assert!(std::str::from_utf8(text).is_ok());
                // SAFETY: `Release::Week` holds ASCII digits, `-` and `W` (`compute`) or a
                // copy of a whole eight-byte `&str` (`From<&str>`): valid UTF-8 either way.
                unsafe { std::str::from_utf8_unchecked(text) }
            }
            Release::Other(text) => text,
        }
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stable idempotency key: `{instance}/{release}/{node}/{n}` for the `n`th entry of a node in
/// a cycle, `{instance}/{release}/{node}/deadline` and `.../exhausted` for escalations. The
/// same inputs always give the same keys, so a host can deduplicate retried effects.
///
/// A key of up to 38 bytes (an instance id of up to some 20) is kept inside the value: made
/// without an allocation, cloned (the key a host reports a result with) by copying 40 bytes;
/// a longer one is shared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EffectKey(InlineStr<KEY_INLINE>);

/// How many bytes of an effect key are kept inline.
const KEY_INLINE: usize = 38;

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<EffectKey>() == 40, "an effect key takes 40 bytes");

impl EffectKey {
    /// The key as a string slice.
    #[must_use]
    #[inline]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The key whose text is the concatenation of `parts`.
    pub(crate) fn join(parts: &[&str]) -> Self {
        Self(InlineStr::join(parts))
    }

    /// `{instance}/{release}/{node}/{visit}`: the key of the effect of `node`'s `visit`th
    /// entry in a cycle.
    pub(crate) fn of_visit(instance: &str, release: &str, node: &str, visit: u16) -> Self {
        let mut digits = [0u8; 5];
        Self::join(&[instance, "/", release, "/", node, "/", decimal(visit, &mut digits)])
    }

    /// `{instance}/{release}/`: what every key of one cycle of one instance starts with, kept
    /// by the instance so that [`EffectKey::after`] costs only the key's last parts.
    pub(crate) fn prefix(instance: &str, release: &str) -> Self {
        Self::join(&[instance, "/", release, "/"])
    }

    /// The key whose text is `prefix` followed by `parts`.
    #[inline]
    pub(crate) fn after(prefix: &Self, parts: &[&str]) -> Self {
        Self(InlineStr::join_after(&prefix.0, parts))
    }

    /// [`EffectKey::of_visit`] after its [`EffectKey::prefix`].
    #[inline]
    pub(crate) fn of_visit_after(prefix: &Self, node: &str, visit: u16) -> Self {
        let mut digits = [0u8; 5];
        Self::after(prefix, &[node, "/", decimal(visit, &mut digits)])
    }

    /// [`EffectKey::of_visit_after`] for a node id of seven bytes or fewer (every node of the
    /// bundled spec): the same key, without a call to `memcpy`.
    #[inline]
    pub(crate) fn of_visit_packed(prefix: &Self, node: kars_spec::PackedId<kars_spec::NodeId>, visit: u16) -> Self {
        let mut digits = [0u8; 5];
        Self(InlineStr::join_packed_after(&prefix.0, node, &["/", decimal(visit, &mut digits)]))
    }

    /// The release and visit of this key when it is [`EffectKey::of_visit`] of `instance`
    /// and `node`: the inverse of that function.
    pub(crate) fn visit_of(&self, instance: &str, node: &str) -> Option<(&str, u16)> {
        let text = self.as_str();
        // The visit is what follows the last `/`: at most five digits, read from the end.
        let bytes = text.as_bytes();
        let digits = bytes.iter().rev().take(6).position(|&b| b == b'/')?;
        let slash = bytes.len().checked_sub(digits + 1)?;
        let visit = bytes.get(slash + 1..)?;
        // Only the decimal `decimal` writes reads back the same: digits, no leading zero.
        let n = match visit {
            [] | [b'0', _, ..] => return None,
            text => text.iter().try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))?,
        };
        let release =
            text.get(..slash)?.strip_suffix(node)?.strip_suffix('/')?.strip_prefix(instance)?.strip_prefix('/')?;
        Some((release, u16::try_from(n).ok()?))
    }
}

/// `n` in decimal, written into `buf`.
pub(crate) fn decimal(mut n: u16, buf: &mut [u8; 5]) -> &str {
    // Most visits are the first few: no digits to write or check.
    const SMALL: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    if let Some(small) = SMALL.get(usize::from(n)) {
        return small;
    }
    let mut start = buf.len();
    loop {
        start -= 1;
        if let Some(b) = buf.get_mut(start) {
            *b = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    std::str::from_utf8(buf.get(start..).unwrap_or_default()).unwrap_or_default()
}

impl From<&str> for EffectKey {
    /// The key with this text (as a host reads it back from its store).
    fn from(text: &str) -> Self {
        Self(InlineStr::new(text))
    }
}

impl fmt::Display for EffectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EffectKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EffectKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = EffectKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<EffectKey, E> {
                Ok(EffectKey::from(s))
            }
        }
        deserializer.deserialize_str(Visitor)
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
        /// The message, templates expanded (shared: the instances of one release that send it
        /// on one thread share one string, and a message without `{names}` is the spec's).
        #[serde(with = "crate::shared::arc_str")]
        message: Arc<str>,
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

    #[test]
    fn decimal_writes_every_count() {
        let mut buf = [0u8; 5];
        for n in [0u16, 1, 9, 10, 11, 99, 100, 12_345, u16::MAX] {
            assert_eq!(decimal(n, &mut buf), n.to_string());
        }
    }

    #[test]
    fn visit_keys_read_back_their_parts() {
        for (instance, release, node, visit) in [
            ("kars-release", "2026-W48", "E", 1u16),
            ("a", "2026-W01", "AB", 12_345),
            ("team/with/slashes", "+10000-W1", "N", 0),
            ("an-instance-id-long-enough-to-be-shared", "2026-W48", "QaSignOff", u16::MAX),
        ] {
            let key = EffectKey::of_visit(instance, release, node, visit);
            assert_eq!(key.as_str(), format!("{instance}/{release}/{node}/{visit}"));
            assert_eq!(key.visit_of(instance, node), Some((release, visit)), "{key}");
            assert_eq!(key.visit_of(instance, "F"), None);
            assert_eq!(key.visit_of("other", node), None);
            assert_eq!(EffectKey::from(key.as_str()), key);
            assert_eq!(EffectKey::of_visit_after(&EffectKey::prefix(instance, release), node, visit), key);
        }
        for other in [
            "k/2026-W48/E/01",
            "k/2026-W48/E/+1",
            "k/2026-W48/E/",
            "k/2026-W48/E/deadline",
            "k/2026-W48/E/65536",
            "k/E/1",
            "k2026-W48/E/1",
        ] {
            assert_eq!(EffectKey::from(other).visit_of("k", "E"), None, "{other}");
        }
    }

    /// The shared strings serialize as the `String`s they replaced: the JSON of effects (and so
    /// of journals' outboxes) is unchanged, and it reads back.
    #[test]
    fn shared_strings_keep_the_json() {
        use kars_spec::RoleId;
        let release = ReleaseId::of("2026-11-23".parse().unwrap());
        let effect = |node: &str, kind: EffectKind| Effect {
            key: EffectKey::from(format!("kars/2026-W48/{node}/1").as_str()),
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
