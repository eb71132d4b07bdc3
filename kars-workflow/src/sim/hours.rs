//! Working time: durations, duration ranges (`30m..2h`) and working-hours arithmetic in a zone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use kars_spec::calendar::resolve_local;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration a model may name: 4 weeks, in minutes.
pub const MAX_MINUTES: u32 = 4 * 7 * 24 * 60;

/// A range of minutes, inclusive, written `30m..2h` (or one value, `45m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteRange {
    /// The shortest duration, in minutes.
    pub min: u32,
    /// The longest duration, in minutes.
    pub max: u32,
}

/// Why a duration or range did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a duration range; write `30m..2h`, `1h30m` or `2h..4h` (at most 4 weeks, the smaller first)")]
pub struct RangeError {
    /// The rejected text.
    pub input: String,
}

impl MinuteRange {
    /// A range from `min` to `max` minutes.
    ///
    /// # Errors
    /// Returns [`RangeError`] when `min > max` or `max` exceeds [`MAX_MINUTES`].
    pub fn new(min: u32, max: u32) -> Result<Self, RangeError> {
        if min > max || max > MAX_MINUTES {
            return Err(RangeError { input: format!("{}..{}", Minutes(min), Minutes(max)) });
        }
        Ok(Self { min, max })
    }
}

pub(crate) fn parse_minutes(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total: u32 = 0;
    let mut digits = String::new();
    let mut saw_unit = false;
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            if digits.len() > 6 {
                return None;
            }
        } else {
            let n: u32 = digits.parse().ok()?;
            digits.clear();
            let factor = match ch {
                'm' => 1,
                'h' => 60,
                'd' => 24 * 60,
                _ => return None,
            };
            total = total.checked_add(n.checked_mul(factor)?)?;
            saw_unit = true;
        }
    }
    (digits.is_empty() && saw_unit && total <= MAX_MINUTES).then_some(total)
}

impl FromStr for MinuteRange {
    type Err = RangeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || RangeError { input: input.to_owned() };
        let (lo, hi) = match input.split_once("..") {
            Some((lo, hi)) => (parse_minutes(lo).ok_or_else(err)?, parse_minutes(hi).ok_or_else(err)?),
            None => {
                let v = parse_minutes(input).ok_or_else(err)?;
                (v, v)
            }
        };
        Self::new(lo, hi).map_err(|_| err())
    }
}

/// Minutes written the way a model file writes them (`1h30m`).
struct Minutes(u32);

impl fmt::Display for Minutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m) = (self.0 / 60, self.0 % 60);
        match (h, m) {
            (0, m) => write!(f, "{m}m"),
            (h, 0) => write!(f, "{h}h"),
            (h, m) => write!(f, "{h}h{m}m"),
        }
    }
}

impl fmt::Display for MinuteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", Minutes(self.min))
        } else {
            write!(f, "{}..{}", Minutes(self.min), Minutes(self.max))
        }
    }
}

impl Serialize for MinuteRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MinuteRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// When people work: weekdays and a daily span of local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingHours {
    days: [bool; 7],
    from: NaiveTime,
    to: NaiveTime,
}

impl Default for WorkingHours {
    /// Monday to Friday, 09:00 to 17:00.
    fn default() -> Self {
        let mut days = [false; 7];
        days[..5].fill(true);
        Self { days, from: hm(9, 0), to: hm(17, 0) }
    }
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

impl WorkingHours {
    /// Working hours on `days` from `from` to `to` (local time, `from < to`).
    ///
    /// Returns `None` when no day is given or the span is empty.
    #[must_use]
    pub fn new(days: &[Weekday], from: NaiveTime, to: NaiveTime) -> Option<Self> {
        if days.is_empty() || from >= to {
            return None;
        }
        let mut set = [false; 7];
        for day in days {
            set[day.num_days_from_monday() as usize] = true;
        }
        Some(Self { days: set, from, to })
    }

    fn works_on(&self, local: NaiveDateTime) -> bool {
        self.days[local.weekday().num_days_from_monday() as usize]
    }

    /// The instant at which `minutes` of working time, started at `start`, are done.
    #[must_use]
    pub fn add(&self, start: DateTime<Utc>, minutes: u32, zone: Tz) -> DateTime<Utc> {
        self.add_around(start, minutes, zone, &[])
    }

    /// [`WorkingHours::add`] with `holidays` off.
    #[must_use]
    pub fn add_around(
        &self,
        start: DateTime<Utc>,
        minutes: u32,
        zone: Tz,
        holidays: &[kars_spec::dates::Holiday],
    ) -> DateTime<Utc> {
        let mut local = start.with_timezone(&zone).naive_local();
        let mut left = i64::from(minutes);
        // Each pass consumes the rest of one working day or skips to the next one; eight weeks
        // of passes bound the loop for any range a model allows, plus a year of holidays.
        for _ in 0..(8 * 7 * 2 + 366) {
            let day_start = local.date().and_time(self.from);
            let day_end = local.date().and_time(self.to);
            let holiday = holidays.iter().any(|h| h.contains(local.date()));
            if !self.works_on(local) || holiday || local >= day_end {
                local = (local.date() + Duration::days(1)).and_time(self.from);
                continue;
            }
            if local < day_start {
                local = day_start;
            }
            let room = (day_end - local).num_minutes();
            if left <= room {
                return resolve_local(zone, local + Duration::minutes(left)).max(start);
            }
            left -= room;
            local = (local.date() + Duration::days(1)).and_time(self.from);
        }
        resolve_local(zone, local).max(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::Toronto;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_print() {
        let r: MinuteRange = "30m..2h".parse().unwrap();
        assert_eq!((r.min, r.max), (30, 120));
        assert_eq!(r.to_string(), "30m..2h");
        assert_eq!("1h30m".parse::<MinuteRange>().unwrap(), MinuteRange { min: 90, max: 90 });
        assert!("2h..1h".parse::<MinuteRange>().is_err());
        assert!("2x".parse::<MinuteRange>().is_err());
        assert!("30".parse::<MinuteRange>().is_err());
        assert!("99999999h".parse::<MinuteRange>().is_err());
        assert!("".parse::<MinuteRange>().is_err());
    }

    #[test]
    fn working_time_skips_nights_and_weekends() {
        let hours = WorkingHours::default();
        // Friday 2026-11-27 16:00 local + 2h of work = Monday 2026-11-30 10:00 local (15:00Z).
        assert_eq!(hours.add(utc("2026-11-27T21:00:00Z"), 120, Toronto), utc("2026-11-30T15:00:00Z"));
        // Saturday start: work begins Monday 09:00.
        assert_eq!(hours.add(utc("2026-11-28T15:00:00Z"), 30, Toronto), utc("2026-11-30T14:30:00Z"));
        // Inside the day: plain addition.
        assert_eq!(hours.add(utc("2026-11-26T15:00:00Z"), 45, Toronto), utc("2026-11-26T15:45:00Z"));
    }
}
