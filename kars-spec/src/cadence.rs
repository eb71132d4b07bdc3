//! How often a cycle starts: every N ISO weeks from an anchor Monday.
//!
//! A cycle spans `every` weeks starting on a *boundary*: a Monday a whole number of cadences
//! away from the anchor. Week times in the spec count from the cycle's first Monday (`+1w` is
//! the cycle's second week). When a cycle ends, the next starts at the next boundary, or at
//! once when the cycle ran past it (its Monday is then the latest boundary).

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// The longest cadence, in weeks.
pub const MAX_CADENCE_WEEKS: u8 = 8;

/// The anchor of a cadence that names none: Monday 2026-01-05, the first Monday of ISO week
/// 2026-W02. Any Monday works for a weekly cadence.
pub const DEFAULT_ANCHOR: NaiveDate = match NaiveDate::from_ymd_opt(2026, 1, 5) {
    Some(date) => date,
    None => NaiveDate::MIN,
};

/// `cadence:` in a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cadence {
    /// How many weeks a cycle spans: `1w` (the default) to `8w`.
    pub every: Weeks,
    /// A Monday on which a cycle starts; the others are whole cadences away (default
    /// 2026-01-05).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::dates::deserialize_optional_date"
    )]
    #[schemars(with = "Option<String>", extend("format" = "date"))]
    pub anchor: Option<NaiveDate>,
}

impl Default for Cadence {
    fn default() -> Self {
        Self { every: Weeks(1), anchor: None }
    }
}

impl Cadence {
    /// The anchor Monday (see [`DEFAULT_ANCHOR`]).
    #[must_use]
    pub fn anchor(&self) -> NaiveDate {
        self.anchor.unwrap_or(DEFAULT_ANCHOR)
    }

    /// The first Monday of the cycle that `date` falls in.
    #[must_use]
    pub fn cycle_monday(&self, date: NaiveDate) -> NaiveDate {
        // Day numbers rather than date arithmetic (each step of which converts to and from
        // year and ordinal): the same answer in a few integer operations.
        let monday = i64::from(date.num_days_from_ce()) - i64::from(date.weekday().num_days_from_monday());
        let every = i64::from(self.every.0.max(1));
        let into = match every {
            1 => 0,
            _ => (monday - i64::from(self.anchor().num_days_from_ce())).div_euclid(7).rem_euclid(every),
        };
        // Only a date within days of chrono's first one has a Monday before it.
        i32::try_from(monday - 7 * into).ok().and_then(NaiveDate::from_num_days_from_ce_opt).unwrap_or(date)
    }

    /// The first Monday of the cycle after the one that starts on `monday`.
    #[must_use]
    pub fn next_monday(&self, monday: NaiveDate) -> NaiveDate {
        monday.checked_add_signed(Duration::weeks(i64::from(self.every.0.max(1)))).unwrap_or(monday)
    }

    /// Whether the anchor is a Monday.
    #[must_use]
    pub fn anchored_on_monday(&self) -> bool {
        self.anchor().weekday() == Weekday::Mon
    }
}

/// A whole number of weeks, written `2w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weeks(pub u8);

/// Why a cadence length does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cadence `{given}` is not 1w to {MAX_CADENCE_WEEKS}w")]
pub struct WeeksError {
    /// The text given.
    pub given: String,
}

impl FromStr for Weeks {
    type Err = WeeksError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || WeeksError { given: s.to_owned() };
        let n: u8 = s.trim().strip_suffix('w').ok_or_else(error)?.parse().map_err(|_| error())?;
        if (1..=MAX_CADENCE_WEEKS).contains(&n) { Ok(Self(n)) } else { Err(error()) }
    }
}

impl fmt::Display for Weeks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}w", self.0)
    }
}

crate::textual::string_format!(
    Weeks,
    format!("^\\s*0*[1-{MAX_CADENCE_WEEKS}]w\\s*$"),
    "A whole number of weeks: `1w` to `8w`.",
    ["1w", "2w"]
);

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn boundaries_are_whole_cadences_from_the_anchor() {
        let two = Cadence { every: Weeks(2), anchor: Some(date("2026-01-05")) };
        assert_eq!(two.cycle_monday(date("2026-01-05")), date("2026-01-05"));
        assert_eq!(two.cycle_monday(date("2026-01-18")), date("2026-01-05"));
        assert_eq!(two.cycle_monday(date("2026-01-19")), date("2026-01-19"));
        // Before the anchor too, and across a year end.
        assert_eq!(two.cycle_monday(date("2025-12-31")), date("2025-12-22"));
        assert_eq!(two.next_monday(date("2025-12-22")), date("2026-01-05"));
        let weekly = Cadence::default();
        assert_eq!(weekly.cycle_monday(date("2026-11-26")), date("2026-11-23"));
    }

    #[test]
    fn weeks_parse_and_print() {
        assert_eq!("2w".parse::<Weeks>(), Ok(Weeks(2)));
        assert!("0w".parse::<Weeks>().is_err());
        assert!("9w".parse::<Weeks>().is_err());
        assert!("2".parse::<Weeks>().is_err());
        assert_eq!(Weeks(3).to_string(), "3w");
    }

    /// The date arithmetic `cycle_monday` replaced, as the reference.
    fn cycle_monday_by_dates(cadence: &Cadence, date: NaiveDate) -> NaiveDate {
        let monday = date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
        let weeks = (monday - cadence.anchor()).num_days().div_euclid(7);
        let into = weeks.rem_euclid(i64::from(cadence.every.0.max(1)));
        monday - Duration::weeks(into)
    }

    proptest::proptest! {
        #[test]
        fn cycle_monday_is_the_date_arithmetic(
            day in -800_000i32..4_000_000,
            anchor in -800_000i32..4_000_000,
            every in 0u8..=MAX_CADENCE_WEEKS,
            anchored in proptest::bool::ANY,
        ) {
            let date = NaiveDate::from_num_days_from_ce_opt(day).unwrap();
            let anchor = anchored.then(|| NaiveDate::from_num_days_from_ce_opt(anchor).unwrap());
            let cadence = Cadence { every: Weeks(every), anchor };
            proptest::prop_assert_eq!(cadence.cycle_monday(date), cycle_monday_by_dates(&cadence, date));
        }
    }
}
