//! Calendar dates in a spec: holidays (days and ranges), window edges on a date and time, and
//! what a gate does when it falls on a holiday.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Weekday};
use serde::{Deserialize, Serialize};

/// A holiday: one local date, or a range of dates (both ends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Holiday {
    /// One day: `2026-12-25`.
    Day(#[schemars(with = "String", extend("format" = "date"))] NaiveDate),
    /// Several days: `{ from: 2026-12-24, to: 2027-01-01 }`.
    Range {
        /// The first day.
        #[schemars(with = "String", extend("format" = "date"))]
        from: NaiveDate,
        /// The last day (included).
        #[schemars(with = "String", extend("format" = "date"))]
        to: NaiveDate,
    },
}

/// A local date written `2026-12-25`, with a message that says so when it is not one.
pub(crate) fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|e| format!("`{text}` is not a date like `2026-12-25` ({e})"))
}

/// Deserializes a [`NaiveDate`] through [`parse_date`] (`#[serde(deserialize_with)]`).
pub(crate) fn deserialize_date<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_date(&text).map_err(serde::de::Error::custom)
}

/// Deserializes an optional [`NaiveDate`] through [`parse_date`].
pub(crate) fn deserialize_optional_date<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<NaiveDate>, D::Error> {
    deserialize_date(deserializer).map(Some)
}

impl<'de> Deserialize<'de> for Holiday {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        const SHAPE: &str = "a holiday: a date (`2026-12-25`) or a range (`{ from: 2026-12-24, to: 2027-01-01 }`)";
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Holiday;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(SHAPE)
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Holiday, E> {
                parse_date(text).map(Holiday::Day).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Holiday, A::Error> {
                let (mut from, mut to) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "from" => &mut from,
                        "to" => &mut to,
                        other => return Err(serde::de::Error::unknown_field(other, &["from", "to"])),
                    };
                    let text = map.next_value::<String>()?;
                    *slot = Some(parse_date(&text).map_err(serde::de::Error::custom)?);
                }
                match (from, to) {
                    (Some(from), Some(to)) => Ok(Holiday::Range { from, to }),
                    (None, _) => Err(serde::de::Error::missing_field("from")),
                    (_, None) => Err(serde::de::Error::missing_field("to")),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Holiday {
    /// The first and last day.
    #[must_use]
    pub fn span(self) -> (NaiveDate, NaiveDate) {
        match self {
            Holiday::Day(day) => (day, day),
            Holiday::Range { from, to } => (from, to),
        }
    }

    /// Whether `date` is one of its days.
    #[must_use]
    pub fn contains(self, date: NaiveDate) -> bool {
        let (from, to) = self.span();
        from <= date && date <= to
    }
}

/// Whether `date` is a working day: Monday to Friday and no holiday.
#[must_use]
pub fn is_working_day(date: NaiveDate, holidays: &[Holiday]) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !holidays.iter().any(|h| h.contains(date))
}

/// What a gate does when the day it would open on is a holiday.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnHoliday {
    /// Opens as if there were no holiday (the default).
    #[default]
    Keep,
    /// Opens at the same time of day on the next working day (Monday to Friday, no holiday).
    NextWorkingDay,
    /// The cycle ends there with the outcome `skipped`; the next one starts as usual.
    SkipCycle,
}

impl fmt::Display for OnHoliday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnHoliday::Keep => "keep",
            OnHoliday::NextWorkingDay => "next_working_day",
            OnHoliday::SkipCycle => "skip_cycle",
        })
    }
}

/// A wall-clock date and time in the spec's zone: `2026-12-18 17:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalDateTime(pub NaiveDateTime);

/// Why a date and time does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a date and time like `2026-12-18 17:00`")]
pub struct LocalDateTimeError {
    /// The text given.
    pub given: String,
}

impl FromStr for LocalDateTime {
    type Err = LocalDateTimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M")
            .map(Self)
            .map_err(|_| LocalDateTimeError { given: s.to_owned() })
    }
}

impl fmt::Display for LocalDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d %H:%M"))
    }
}

crate::textual::string_format!(
    LocalDateTime,
    "^\\s*[0-9]{4}-[0-9]{2}-[0-9]{2} ([01]?[0-9]|2[0-3]):[0-5][0-9]\\s*$",
    "A wall-clock date and time in the workflow's zone: `2026-12-18 17:00`.",
    ["2026-12-18 17:00"]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holidays_and_working_days() {
        let christmas: Holiday = serde_json::from_str("\"2026-12-25\"").unwrap();
        let break_: Holiday = serde_json::from_str(r#"{"from":"2026-12-24","to":"2027-01-01"}"#).unwrap();
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert!(christmas.contains(day("2026-12-25")));
        assert!(break_.contains(day("2027-01-01")) && !break_.contains(day("2027-01-02")));
        assert!(!is_working_day(day("2026-12-28"), &[break_]));
        assert!(!is_working_day(day("2027-01-02"), &[break_]), "a Saturday");
        assert!(is_working_day(day("2027-01-04"), &[break_]));
    }

    #[test]
    fn local_date_times_parse_and_print() {
        let at: LocalDateTime = "2026-12-18 17:00".parse().unwrap();
        assert_eq!(at.to_string(), "2026-12-18 17:00");
        assert!("2026-12-18".parse::<LocalDateTime>().is_err());
        assert!("2026-12-18 25:00".parse::<LocalDateTime>().is_err());
    }
}
