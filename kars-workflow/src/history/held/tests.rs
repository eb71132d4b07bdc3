//! The compact history gives back exactly the records it was given, by every way of reading
//! it, and writes the JSON a `Vec<Record>` history wrote.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use kars_spec::{Fingerprint, NodeId, RoleId};
use proptest::prelude::*;
use serde::Serialize;

use super::{History, SCAN};
use crate::effect::EffectKey;
use crate::error::EngineError;
use crate::event::{ActionOutcome, Actor, Event, InstanceId, Reporter};
use crate::history::{BranchEvent, CancelReason, HistoryHeader, Input, Record, Resolved, Verdict};
use crate::instance::UpgradeWhen;
use crate::workflow::NodeIndex;

fn header() -> HistoryHeader {
    HistoryHeader {
        fingerprint: Fingerprint(7),
        workflow: Arc::from("kars-release"),
        instance: InstanceId::new("team-1").unwrap(),
        started_at: Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0).unwrap(),
    }
}

/// The JSON form of a history before records were kept compact (the derive on
/// `{ header, first_seq, records: Vec<Record> }`).
#[derive(Serialize)]
struct Before<'a> {
    header: &'a HistoryHeader,
    #[serde(skip_serializing_if = "is_zero")]
    first_seq: u64,
    records: &'a [Record],
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..400 * 86_400, 0u32..3).prop_map(|(secs, nanos)| {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
            + chrono::Duration::seconds(secs)
            + chrono::Duration::nanoseconds(i64::from(nanos) * 1_000)
    })
}

fn node() -> impl Strategy<Value = NodeId> {
    prop::sample::select(vec!["A", "B", "Q", "AE", "Rollback"]).prop_map(|n| NodeId::new(n).unwrap())
}

/// Actors from a small cast, each built anew (as hosts do), some with equal names and other
/// roles, one with none.
fn actor() -> impl Strategy<Value = Actor> {
    let cast: Vec<(&str, &[&str])> = vec![
        ("erin", &["product_manager"]),
        ("dave", &["devops"]),
        ("dave", &["devops", "qa"]),
        ("frank", &["team_lead", "developer"]),
        ("carol", &[]),
        ("a-name-longer-than-thirty-two-bytes", &["qa"]),
        ("é", &["qa"]),
    ];
    prop::sample::select(cast)
        .prop_map(|(name, roles)| Actor::new(name, roles.iter().map(|r| RoleId::new(*r).unwrap()).collect::<Vec<_>>()))
}

fn outcome() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(vec!["approved", "Yes", "erin", "", "a word with spaces"]))
        .prop_map(|o| o.map(str::to_owned))
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        3 => Just(Verdict::Accepted),
        1 => node().prop_map(|node| Verdict::Refused(Box::new(EngineError::UnknownNode { node }))),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    let reporter = prop_oneof![
        "[a-z0-9/-]{1,30}".prop_map(|k| Reporter::Effect { key: EffectKey::from(k.as_str()) }),
        actor().prop_map(Reporter::Person),
        Just(Reporter::Unrecorded),
    ];
    let result = prop_oneof![Just(ActionOutcome::Succeeded), Just(ActionOutcome::Failed)];
    // The key of a visit of the event's node (what the engine accepts, held as its release and
    // visit), of another instance, another node or a release not eight bytes long (held
    // whole), with visits that read back and some that do not.
    let visit_key = (
        node(),
        prop::sample::select(vec!["team-1", "team-2", "team-1/x"]),
        prop::sample::select(vec!["2026-W48", "2027-W01", "+10000-W1", "x/yz-W01"]),
        prop::sample::select(vec!["0", "1", "12", "65535", "65536", "01", "deadline"]),
        prop::bool::weighted(0.8),
        result.clone(),
    )
        .prop_map(|(node, instance, release, visit, same_node, outcome)| {
            let named = if same_node { node.as_str() } else { "Other" };
            let key = EffectKey::from(format!("{instance}/{release}/{named}/{visit}").as_str());
            Event::ActionResult { node, outcome, reporter: Reporter::Effect { key } }
        });
    prop_oneof![
        4 => (node(), actor(), outcome()).prop_map(|(node, actor, outcome)| Event::Complete { node, actor, outcome: outcome.map(Into::into) }),
        3 => (node(), result, reporter).prop_map(|(node, outcome, reporter)| Event::ActionResult { node, outcome, reporter }),
        3 => visit_key,
        1 => ("[a-z/]{0,12}", "[a-z-]{1,8}", actor()).prop_map(|(source, target, actor)| Event::Merge { source, target, actor }),
    ]
}

fn resolved() -> impl Strategy<Value = Vec<Resolved>> {
    let index = (0u16..40).prop_map(NodeIndex);
    let one = prop_oneof![
        (0i64..400).prop_map(|d| Resolved::Cycle {
            monday: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap() + chrono::Duration::days(d)
        }),
        (index.clone(), instant()).prop_map(|(node, at)| Resolved::Deadline { node, at }),
        (index.clone(), instant()).prop_map(|(node, at)| Resolved::Gate { node, at }),
        instant().prop_map(|at| Resolved::NextCycle { at }),
        (prop::collection::vec(instant(), 0..4), prop::option::of(instant()))
            .prop_map(|(last, next)| Resolved::Calendar { last: last.into(), next }),
        (index.clone(), index.clone()).prop_map(|(fork, node)| Resolved::Branch(BranchEvent::Started { fork, node })),
        (index.clone(), index)
            .prop_map(|(node, by)| Resolved::Branch(BranchEvent::Cancelled { node, reason: CancelReason::End { by } })),
    ];
    prop::collection::vec(one, 0..4)
}

fn input() -> impl Strategy<Value = Input> {
    let when = prop_oneof![Just(UpgradeWhen::Now), Just(UpgradeWhen::NextCycle)];
    prop_oneof![
        8 => event().prop_map(Input::Event),
        2 => Just(Input::Timeout),
        1 => (any::<u64>(), when).prop_map(|(to, when)| Input::Upgrade { to: Fingerprint(to), when }),
    ]
}

/// A whole history's records: the start, then anything (a start later on too, refused or not).
fn records() -> impl Strategy<Value = Vec<Record>> {
    let first = (instant(), resolved()).prop_map(|(at, resolved)| (at, Input::Start, Verdict::Accepted, resolved));
    let rest = prop::collection::vec(
        (instant(), prop_oneof![10 => input(), 1 => Just(Input::Start)], verdict(), resolved()),
        0..40,
    );
    (first, rest).prop_map(|(first, rest)| {
        std::iter::once(first)
            .chain(rest)
            .enumerate()
            .map(|(seq, (at, input, verdict, resolved))| Record {
                seq: seq as u64,
                at,
                input,
                verdict,
                resolved: resolved.into(),
            })
            .collect()
    })
}

/// The history the engine builds: each record's instants resolved, then the input pushed.
fn pushed(records: &[Record]) -> History {
    let mut history = History::new(header());
    for r in records {
        for x in r.resolved.iter() {
            history.resolve(x.clone());
        }
        history.push(r.at, r.input.clone(), r.verdict.clone());
    }
    history
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn gives_back_what_it_was_given(records in records()) {
        let built = History::from_records(header(), 0, records.clone()).unwrap();
        let engine = pushed(&records);
        prop_assert_eq!(&built, &engine);
        for history in [&built, &engine] {
            prop_assert_eq!(history.len(), records.len());
            prop_assert_eq!(history.next_seq(), records.len() as u64);
            prop_assert_eq!(history.records().collect::<Vec<_>>(), records.clone());
            prop_assert_eq!(history.records().rev().collect::<Vec<_>>(), records.iter().rev().cloned().collect::<Vec<_>>());
            prop_assert_eq!(history.last(), records.last().cloned());
            for (i, r) in records.iter().enumerate() {
                prop_assert_eq!(history.record(i as u64), Some(r.clone()));
                prop_assert_eq!(history.verdict_at(i), &r.verdict);
                prop_assert_eq!(history.resolved_at(i), &*r.resolved);
            }
            prop_assert_eq!(history.record(records.len() as u64), None);
            let from = records.len() / 2;
            prop_assert_eq!(history.since(from as u64).collect::<Vec<_>>(), records[from..].to_vec());
        }
    }

    #[test]
    fn writes_the_json_it_wrote_before(records in records()) {
        let history = History::from_records(header(), 0, records.clone()).unwrap();
        let json = serde_json::to_string(&history).unwrap();
        let before = serde_json::to_string(&Before { header: &header(), first_seq: 0, records: &records }).unwrap();
        prop_assert_eq!(&json, &before);
        let back: History = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, history);
    }

    #[test]
    fn releases_and_goes_on(records in records(), cut in 0usize..50, next in records()) {
        let mut history = pushed(&records);
        let cut = cut.min(records.len());
        history.release_before(cut as u64);
        prop_assert_eq!(history.first_seq(), cut as u64);
        prop_assert_eq!(history.next_seq(), records.len() as u64);
        prop_assert_eq!(history.records().collect::<Vec<_>>(), records[cut..].to_vec());
        // What is pushed after a release is numbered on and reads back with its instants.
        let more: Vec<Record> = next
            .into_iter()
            .enumerate()
            .map(|(i, r)| Record { seq: (records.len() + i) as u64, ..r })
            .collect();
        for r in &more {
            for x in r.resolved.iter() {
                history.resolve(x.clone());
            }
            history.push(r.at, r.input.clone(), r.verdict.clone());
        }
        let expected: Vec<Record> = records[cut..].iter().chain(&more).cloned().collect();
        prop_assert_eq!(history.records().collect::<Vec<_>>(), expected.clone());
        // A released history's JSON says where it starts, and reads back the same.
        let json = serde_json::to_string(&history).unwrap();
        let before = serde_json::to_string(&Before { header: &header(), first_seq: cut as u64, records: &expected }).unwrap();
        prop_assert_eq!(&json, &before);
        prop_assert_eq!(serde_json::from_str::<History>(&json).unwrap(), history);
    }

    #[test]
    fn forgets_only_a_refusal_that_resolved_nothing(records in records()) {
        let mut history = pushed(&records);
        let last = records.last().unwrap();
        let forgettable = matches!(last.verdict, Verdict::Refused(_)) && last.resolved.is_empty();
        prop_assert_eq!(history.pop_refused(), forgettable);
        let kept = if forgettable { records.len() - 1 } else { records.len() };
        prop_assert_eq!(history.records().collect::<Vec<_>>(), records[..kept].to_vec());
        // What is pushed after it takes its place and reads back (a record kept whole
        // included: the popped one gave its place in the table of whole records back).
        let again = Record { seq: kept as u64, ..last.clone() };
        for x in again.resolved.iter() {
            history.resolve(x.clone());
        }
        history.push(again.at, again.input.clone(), again.verdict.clone());
        let expected: Vec<Record> = records[..kept].iter().cloned().chain([again]).collect();
        prop_assert_eq!(history.records().collect::<Vec<_>>(), expected);
    }
}

#[test]
fn records_out_of_order_are_refused() {
    let start = |seq| Record {
        seq,
        at: header().started_at,
        input: Input::Start,
        verdict: Verdict::Accepted,
        resolved: Box::default(),
    };
    let err = History::from_records(header(), 0, [start(0), start(2)]).unwrap_err();
    assert_eq!((err.position, err.expected, err.found), (1, 1, 2));
    assert_eq!(
        err.to_string(),
        "history record 1 has sequence number 2, expected 1\n\
         help: a history's records are numbered in order without gaps, from its `first_seq`"
    );
    // A forged history numbered past the last sequence number is refused, not wrapped.
    let at_end = |seq| Record { seq, ..start(0) };
    let err = History::from_records(header(), u64::MAX, [at_end(u64::MAX), at_end(u64::MAX)]).unwrap_err();
    assert_eq!(err.position, 1);
    let json = r#"{"header":{"fingerprint":7,"workflow":"w","instance":"i","started_at":"2026-11-23T14:00:00Z"},"first_seq":5,"records":[{"seq":6,"at":"2026-11-23T14:00:00Z","input":"start","verdict":"accepted"}]}"#;
    let err = serde_json::from_str::<History>(json).unwrap_err().to_string();
    assert!(err.contains("history record 0 has sequence number 6, expected 5"), "{err}");
}

/// More people than a record looks among: they are added again, and every record still reads
/// back as it was.
#[test]
fn strangers_past_the_scan_read_back() {
    let node = NodeId::new("B").unwrap();
    let people: Vec<Actor> = (0..SCAN * 2 + 5).map(|i| Actor::new(format!("p{i}"), vec![])).collect();
    let mut history = History::new(header());
    let mut records = Vec::new();
    for (seq, actor) in people.iter().chain(&people).enumerate() {
        let input = Input::Event(Event::Complete { node: node.clone(), actor: actor.clone(), outcome: None });
        history.push(header().started_at, input.clone(), Verdict::Accepted);
        records.push(Record {
            seq: seq as u64,
            at: header().started_at,
            input,
            verdict: Verdict::Accepted,
            resolved: Box::default(),
        });
    }
    assert_eq!(history.records().collect::<Vec<_>>(), records);
    // The first pass added each person once; the second found none of those older than the
    // scan, so the table holds at most one more entry per record than people.
    assert!(history.names.len() <= records.len());
    assert!(history.names.len() >= people.len());
}

#[test]
fn strings_compare_by_bytes_at_every_length() {
    for n in 0..40 {
        let a: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        assert!(super::names::same_str(&a, &a.clone()), "{n}");
        for at in 0..n {
            let mut b = a.clone().into_bytes();
            b[at] = b'Z';
            let b = String::from_utf8(b).unwrap();
            assert!(!super::names::same_str(&a, &b), "{n} {at}");
        }
        assert!(!super::names::same_str(&a, &format!("{a}x")));
    }
}
