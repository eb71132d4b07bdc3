//! `kars::testing` (feature `testing`): its strategies give valid inputs that cover DST weeks,
//! and `each_cycle` hands over every cycle, whole and in order.
#![cfg(feature = "testing")]

use chrono::{Datelike, NaiveDate, Weekday};
use kars::spec::CheckedSpec;
use kars::testing::{self, CycleError, SimConfig, SimHistory};
use kars::workflow::sim::EntryKind;
use proptest::prelude::*;

fn kars() -> CheckedSpec {
    kars::spec::load(include_str!("../workflows/kars-release.yaml"), "kars-release.yaml").expect("valid")
}

fn date(s: &str) -> NaiveDate {
    s.parse().expect("test dates are valid")
}

#[test]
fn dst_weeks_are_the_real_transition_weeks() {
    // Toronto springs forward on Sunday 2026-03-08 and falls back on Sunday 2026-11-01.
    assert_eq!(testing::dst_weeks(chrono_tz::America::Toronto, 2026..=2026), [date("2026-03-02"), date("2026-10-26")]);
    // Sydney's seasons are the other way round: back on 2026-04-05, forward on 2026-10-04.
    assert_eq!(testing::dst_weeks(chrono_tz::Australia::Sydney, 2026..=2026), [date("2026-03-30"), date("2026-09-28")]);
    assert!(testing::dst_weeks(chrono_tz::Asia::Kolkata, 2020..=2030).is_empty());
}

#[test]
fn each_cycle_stops_at_the_first_error_and_names_its_week() {
    let spec = kars();
    let model = kars::workflow::sim::Model::defaults(&spec);
    let config = SimConfig { weeks: 6, seed: 3, start: date("2026-03-02"), history: SimHistory::Release };
    let mut seen = Vec::new();
    let result = testing::each_cycle(&spec, &model, &config, |cycle| {
        seen.push(cycle.week);
        if cycle.week == 3 { Err("stop here") } else { Ok(()) }
    });
    assert_eq!(seen, [1, 2, 3]);
    match result {
        Err(CycleError::Check { week: 3, release, error: "stop here" }) => assert_eq!(release, "2026-W12"),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    /// Start dates fall in the years asked for, in every zone, DST weeks included.
    #[test]
    fn start_dates_stay_in_their_years((zone, day) in testing::zones().prop_flat_map(|z| (Just(z), testing::start_dates(z, 2027..=2028)))) {
        prop_assert!((2027..=2028).contains(&day.year()), "{day} for {zone}");
    }

    /// With any model and roster, every cycle handed over has exactly one start and one end,
    /// in that order, and its report's release and outcome match its timeline.
    #[test]
    fn each_cycle_hands_over_whole_cycles(
        seed in testing::seeds(),
        start in testing::start_dates(chrono_tz::America::Toronto, 2026..=2027),
        model in testing::models(&kars()),
        team in testing::roster_changes(&kars()),
    ) {
        let config = SimConfig { weeks: 10, seed, start, history: SimHistory::Release };
        let mut weeks = 0;
        let count = testing::each_cycle(&team, &model, &config, |cycle| {
            weeks += 1;
            prop_assert_eq!(cycle.week, weeks);
            prop_assert_eq!(&cycle.release, &cycle.report.release.to_string());
            let starts: Vec<usize> = cycle.steps.iter().enumerate().filter(|(_, s)| s.kind == EntryKind::CycleStarted).map(|(i, _)| i).collect();
            let ends: Vec<usize> = cycle.steps.iter().enumerate().filter(|(_, s)| s.kind == EntryKind::CycleEnded).map(|(i, _)| i).collect();
            prop_assert_eq!(starts.len(), 1);
            prop_assert_eq!(ends.len(), 1);
            prop_assert!(starts[0] < ends[0]);
            prop_assert_eq!(cycle.steps[ends[0]].outcome.as_deref(), Some(cycle.report.outcome.as_str()));
            prop_assert_eq!(cycle.monday().weekday(), Weekday::Mon);
            Ok(())
        })?;
        prop_assert_eq!(count, 10);
    }
}
