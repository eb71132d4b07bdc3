//! Calendar time: `weekday HH:MM` week times, IANA zones, release cycles and the DST rule.
//!
//! A [`WeekTime`] such as `Thursday 17:00` or `Monday 09:45 +1w` is wall-clock time in the
//! workflow's zone, counted from the start of a release cycle. A cycle starts on the Monday
//! (00:00 local) of its ISO week; `+1w` moves a time into the following week, which is how a
//! weekly release says "the Monday after".
//!
//! # The DST rule
//! Wall-clock times are turned into instants by [`resolve_local`]:
//! - a time that exists once is that instant;
//! - a time in a **fold** (it happens twice when clocks fall back) is its **first** occurrence;
//! - a time in a **gap** (it never happens when clocks spring forward) is the **first valid
//!   instant after the gap**, that is the transition itself: 02:30 on the spring-forward
//!   Sunday in America/Toronto resolves to 03:00 EDT.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// The largest week offset a [`WeekTime`] may carry (`+8w`).
pub const MAX_WEEK_OFFSET: u8 = 8;

/// Why a string is not a week time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WeekTimeError {
    /// The string does not have the `weekday HH:MM [+Nw]` shape.
    #[error("`{input}` is not a week time; write `weekday HH:MM`, for example `Thursday 17:00` or `Monday 09:45 +1w`")]
    Shape {
        /// The rejected text.
        input: String,
    },
    /// The weekday is not a weekday name.
    #[error("`{word}` is not a weekday; write Monday..Sunday or Mon..Sun")]
    Weekday {
        /// The rejected word.
        word: String,
    },
    /// The clock time is out of range.
    #[error("`{clock}` is not a time of day; write HH:MM on a 24-hour clock, 00:00 to 23:59")]
    Clock {
        /// The rejected clock text.
        clock: String,
    },
    /// The week offset is out of range.
    #[error("week offset `{offset}` is out of range; write +1w to +{MAX_WEEK_OFFSET}w")]
    Offset {
        /// The rejected offset text.
        offset: String,
    },
}

/// A wall-clock time within a release cycle: a weekday, a time of day and a week offset.
///
/// Ordered by its position in the cycle, so `Friday 15:00 < Monday 09:45 +1w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeekTime {
    week: u8,
    weekday: Weekday,
    hour: u8,
    minute: u8,
}

impl WeekTime {
    /// Builds a week time.
    ///
    /// # Errors
    /// Returns [`WeekTimeError`] when the hour, minute or week offset is out of range.
    pub fn new(week: u8, weekday: Weekday, hour: u8, minute: u8) -> Result<Self, WeekTimeError> {
        if hour > 23 || minute > 59 {
            return Err(WeekTimeError::Clock { clock: format!("{hour:02}:{minute:02}") });
        }
        if week > MAX_WEEK_OFFSET {
            return Err(WeekTimeError::Offset { offset: format!("+{week}w") });
        }
        Ok(Self { week, weekday, hour, minute })
    }

    /// The week offset from the cycle's first week (0 for the same week).
    #[must_use]
    pub fn week(self) -> u8 {
        self.week
    }

    /// The weekday.
    #[must_use]
    pub fn weekday(self) -> Weekday {
        self.weekday
    }

    /// The wall-clock time of day.
    #[must_use]
    pub fn time(self) -> NaiveTime {
        // Both fields were range-checked in `new`, so this never falls back.
        NaiveTime::from_hms_opt(u32::from(self.hour), u32::from(self.minute), 0).unwrap_or(NaiveTime::MIN)
    }

    /// Minutes from the cycle's Monday 00:00, ignoring DST: the order of times in a cycle.
    #[must_use]
    pub fn cycle_minutes(self) -> u32 {
        u32::from(self.week) * 7 * 1440
            + self.weekday.num_days_from_monday() * 1440
            + u32::from(self.hour) * 60
            + u32::from(self.minute)
    }

    /// The local date and time of this week time in the cycle that starts on `cycle_monday`.
    #[must_use]
    pub fn local_in_cycle(self, cycle_monday: NaiveDate) -> NaiveDateTime {
        let days = i64::from(self.week) * 7 + i64::from(self.weekday.num_days_from_monday());
        (cycle_monday + Duration::days(days)).and_time(self.time())
    }

    /// The instant of this week time in the cycle that starts on `cycle_monday`, in `zone`,
    /// with the module's DST rule.
    #[must_use]
    pub fn resolve(self, cycle_monday: NaiveDate, zone: Tz) -> DateTime<Utc> {
        resolve_local(zone, self.local_in_cycle(cycle_monday))
    }

    /// The first instant at or after `now` at which this weekday and time of day occur, in
    /// `zone` (the week offset is ignored): how a recurring calendar window finds its next edge.
    #[must_use]
    pub fn next_occurrence(self, now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        let local_today = now.with_timezone(&zone).date_naive();
        let monday = cycle_monday_of(local_today);
        let this = WeekTime { week: 0, ..self };
        for week in 0..3 {
            let at = this.resolve(monday + Duration::weeks(week), zone);
            if at >= now {
                return at;
            }
        }
        // Three weeks always contain an occurrence; kept total for safety.
        this.resolve(monday + Duration::weeks(3), zone)
    }
}

impl PartialOrd for WeekTime {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for WeekTime {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.cycle_minutes().cmp(&other.cycle_minutes())
    }
}

impl fmt::Display for WeekTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:02}:{:02}", weekday_name(self.weekday), self.hour, self.minute)?;
        if self.week > 0 {
            write!(f, " +{}w", self.week)?;
        }
        Ok(())
    }
}

impl FromStr for WeekTime {
    type Err = WeekTimeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let shape = || WeekTimeError::Shape { input: input.to_owned() };
        let mut words = input.split_whitespace();
        let (Some(day), Some(clock)) = (words.next(), words.next()) else {
            return Err(shape());
        };
        let offset = words.next();
        if words.next().is_some() {
            return Err(shape());
        }
        let weekday = parse_weekday(day).ok_or_else(|| WeekTimeError::Weekday { word: day.to_owned() })?;
        let (hour, minute) = parse_clock(clock).ok_or_else(|| WeekTimeError::Clock { clock: clock.to_owned() })?;
        let week = match offset {
            None => 0,
            Some(text) => text
                .strip_prefix('+')
                .and_then(|t| t.strip_suffix('w'))
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|n| (1..=MAX_WEEK_OFFSET).contains(n))
                .ok_or_else(|| WeekTimeError::Offset { offset: text.to_owned() })?,
        };
        Self::new(week, weekday, hour, minute)
    }
}

crate::textual::string_format!(
    WeekTime,
    week_time_pattern(),
    "Wall-clock time in the workflow's zone within a release cycle: `weekday HH:MM`, with `+Nw` for a later week (`Monday 09:45 +1w`).",
    ["Thursday 17:00", "Monday 09:45 +1w"]
);

/// The weekday words the parser takes, short and long, in any case.
const DAYS: [(&str, &str, Weekday); 7] = [
    ("mon", "monday", Weekday::Mon),
    ("tue", "tuesday", Weekday::Tue),
    ("wed", "wednesday", Weekday::Wed),
    ("thu", "thursday", Weekday::Thu),
    ("fri", "friday", Weekday::Fri),
    ("sat", "saturday", Weekday::Sat),
    ("sun", "sunday", Weekday::Sun),
];

/// The JSON Schema pattern of a week time, built from [`DAYS`] so that it takes exactly what
/// the parser takes. It is valid ECMA-262 (what JavaScript-based editors compile): no inline
/// flags, case-insensitivity spelled out as `[Mm]` classes.
fn week_time_pattern() -> String {
    const _: () = assert!(MAX_WEEK_OFFSET <= 9, "the pattern writes the offset as one digit");
    let any_case =
        |word: &str| -> String { word.chars().map(|c| format!("[{}{c}]", c.to_ascii_uppercase())).collect() };
    let days: Vec<String> = DAYS
        .iter()
        .map(|(short, long, _)| {
            let rest = long.strip_prefix(short).unwrap_or_default();
            format!("{}({})?", any_case(short), any_case(rest))
        })
        .collect();
    format!("^\\s*({})\\s+([01]?[0-9]|2[0-3]):[0-5][0-9](\\s+\\+0*[1-{MAX_WEEK_OFFSET}]w)?\\s*$", days.join("|"))
}

fn parse_weekday(word: &str) -> Option<Weekday> {
    DAYS.iter()
        .find(|(short, long, _)| word.eq_ignore_ascii_case(short) || word.eq_ignore_ascii_case(long))
        .map(|d| d.2)
}

fn parse_clock(clock: &str) -> Option<(u8, u8)> {
    let (h, m) = clock.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = (h.parse::<u8>().ok()?, m.parse::<u8>().ok()?);
    (h <= 23 && m <= 59).then_some((h, m))
}

/// The English name of a weekday, as kars writes it.
#[must_use]
pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// The Monday of the ISO week that contains `date`: the first day of a release cycle.
#[must_use]
pub fn cycle_monday_of(date: NaiveDate) -> NaiveDate {
    date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
}

/// The release id of the cycle that starts in the ISO week of `date`, such as `2026-W48`.
#[must_use]
pub fn release_id(date: NaiveDate) -> String {
    let week = date.iso_week();
    format!("{}-W{:02}", week.year(), week.week())
}

/// Turns a wall-clock time in `zone` into an instant with the module's DST rule: a fold takes
/// its first occurrence, a gap the first valid instant after it.
#[must_use]
pub fn resolve_local(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, second) => first.min(second).with_timezone(&Utc),
        LocalResult::None => gap_end(zone, local),
    }
}

/// The transition instant that ends the gap containing `local`.
fn gap_end(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    // Walk forward a minute at a time to the first valid local minute (gaps are at most a day
    // in the tz database), then back a second at a time for zones with odd historic offsets.
    let mut minute = local;
    for _ in 0..=(2 * 1440) {
        minute += Duration::minutes(1);
        if let Some(valid) = earliest(zone, minute) {
            let mut best = valid;
            let mut probe = minute;
            for _ in 0..60 {
                probe -= Duration::seconds(1);
                match earliest(zone, probe) {
                    Some(t) if probe > local => best = t,
                    _ => break,
                }
            }
            return best;
        }
    }
    // No valid time within two days: treat the wall clock as UTC rather than fail.
    Utc.from_utc_datetime(&local)
}

fn earliest(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    zone.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc))
}

/// Why a zone name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not an IANA time zone{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
pub struct ZoneError {
    /// The rejected name.
    pub name: String,
    /// A close zone name, when one is found.
    pub suggestion: Option<String>,
}

/// Parses an IANA zone name, case-sensitively as the tz database spells it.
///
/// # Errors
/// Returns [`ZoneError`] with a suggestion when the name is not in the tz database.
pub fn parse_zone(name: &str) -> Result<Tz, ZoneError> {
    name.parse::<Tz>().map_err(|_| {
        let lower = name.to_ascii_lowercase();
        let suggestion = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|tz| tz.name())
            .find(|candidate| candidate.to_ascii_lowercase() == lower)
            .or_else(|| fixed_offset_suggestion(name))
            .map(str::to_owned);
        ZoneError { name: name.to_owned(), suggestion }
    })
}

/// For a legacy fixed-offset zone name (`EST`, `MST`, `Etc/GMT+5`), the IANA zone a team most
/// likely means; `None` for real geographic zones and for UTC.
#[must_use]
pub fn fixed_offset_suggestion(name: &str) -> Option<&'static str> {
    Some(match name {
        "EST" | "EDT" | "EST5EDT" | "Etc/GMT+5" => "America/New_York",
        "CST" | "CDT" | "CST6CDT" | "Etc/GMT+6" => "America/Chicago",
        "MST" | "MDT" | "MST7MDT" | "Etc/GMT+7" => "America/Denver",
        "PST" | "PDT" | "PST8PDT" | "Etc/GMT+8" => "America/Los_Angeles",
        "HST" | "Etc/GMT+10" => "Pacific/Honolulu",
        "CET" | "MET" | "Etc/GMT-1" => "Europe/Paris",
        "EET" | "Etc/GMT-2" => "Europe/Athens",
        "WET" | "Etc/GMT" | "GMT" => "Europe/London",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::Toronto;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_orders_week_times() {
        let t: WeekTime = "Thursday 17:00".parse().unwrap();
        assert_eq!(t.to_string(), "Thursday 17:00");
        let m: WeekTime = "mon 9:45 +1w".parse().unwrap();
        assert_eq!(m.to_string(), "Monday 09:45 +1w");
        assert!(t < m);
        assert!("Friday 15:00".parse::<WeekTime>().unwrap() < m);
        assert!(matches!("Fryday 15:00".parse::<WeekTime>(), Err(WeekTimeError::Weekday { .. })));
        assert!(matches!("Friday 24:00".parse::<WeekTime>(), Err(WeekTimeError::Clock { .. })));
        assert!(matches!("Friday 3pm".parse::<WeekTime>(), Err(WeekTimeError::Clock { .. })));
        assert!(matches!("Friday 15:00 +9w".parse::<WeekTime>(), Err(WeekTimeError::Offset { .. })));
        assert!(matches!("Friday".parse::<WeekTime>(), Err(WeekTimeError::Shape { .. })));
    }

    #[test]
    fn resolves_in_the_cycle_of_a_monday() {
        let monday = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let gate: WeekTime = "Thursday 17:00".parse().unwrap();
        assert_eq!(gate.resolve(monday, Toronto), utc("2026-11-26T22:00:00Z"));
        let deploy: WeekTime = "Monday 10:00 +1w".parse().unwrap();
        assert_eq!(deploy.resolve(monday, Toronto), utc("2026-11-30T15:00:00Z"));
        assert_eq!(release_id(monday), "2026-W48");
        assert_eq!(cycle_monday_of(NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()), monday);
    }

    #[test]
    fn spring_forward_gap_opens_at_the_transition() {
        // 2026-03-08 02:30 does not exist in Toronto; clocks jump from 02:00 EST to 03:00 EDT.
        let local = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap().and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(resolve_local(Toronto, local), utc("2026-03-08T07:00:00Z"));
    }

    #[test]
    fn fall_back_fold_takes_the_first_occurrence() {
        // 2026-11-01 01:30 happens twice in Toronto: first in EDT (05:30Z), then in EST (06:30Z).
        let local = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap().and_hms_opt(1, 30, 0).unwrap();
        assert_eq!(resolve_local(Toronto, local), utc("2026-11-01T05:30:00Z"));
    }

    #[test]
    fn next_occurrence_wraps_the_week() {
        let sat: WeekTime = "Saturday 00:00".parse().unwrap();
        // Thursday 2026-11-26 12:00 local -> Saturday 2026-11-28 00:00 local (05:00Z).
        assert_eq!(sat.next_occurrence(utc("2026-11-26T17:00:00Z"), Toronto), utc("2026-11-28T05:00:00Z"));
        let mon: WeekTime = "Monday 00:00".parse().unwrap();
        assert_eq!(mon.next_occurrence(utc("2026-11-28T05:00:00Z"), Toronto), utc("2026-11-30T05:00:00Z"));
    }

    #[test]
    fn zones_are_checked_with_suggestions() {
        assert!(parse_zone("America/Toronto").is_ok());
        let err = parse_zone("america/toronto").unwrap_err();
        assert_eq!(err.suggestion.as_deref(), Some("America/Toronto"));
        assert!(parse_zone("Mars/Olympus").unwrap_err().suggestion.is_none());
        assert_eq!(fixed_offset_suggestion("EST"), Some("America/New_York"));
    }
}
