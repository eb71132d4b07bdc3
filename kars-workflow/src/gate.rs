//! Calendar arithmetic the engine needs beyond `kars_spec::calendar`: the last occurrence of a
//! recurring week time, and local-time formatting for messages and errors.

use chrono::{DateTime, Duration, Timelike, Utc};
use chrono_tz::Tz;
use kars_spec::calendar::{WeekTime, cycle_monday_of};

/// The latest instant at or before `now` at which `time`'s weekday and time of day occur in
/// `zone` (its week offset is ignored): how a recurring window edge is found.
#[must_use]
pub fn last_occurrence(time: WeekTime, now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    let clock = time.time();
    let this = WeekTime::new(0, time.weekday(), clock.hour() as u8, clock.minute() as u8).unwrap_or(time);
    let monday = cycle_monday_of(now.with_timezone(&zone).date_naive());
    let mut earliest = now;
    for back in 0..3 {
        let at = this.resolve(monday - Duration::weeks(back), zone);
        if at <= now {
            return at;
        }
        earliest = at;
    }
    // Three weeks always hold an occurrence; kept total for safety.
    earliest - Duration::weeks(1)
}

/// The first instant strictly after `now` at which `time`'s weekday and time of day occur.
#[must_use]
pub fn next_occurrence_after(time: WeekTime, now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    time.next_occurrence(now + Duration::seconds(1), zone)
}

/// `at` as wall-clock time in `zone`, with the zone's abbreviation: `2026-11-30 09:45 EST`.
#[must_use]
pub fn format_local(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::Toronto;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn last_occurrence_looks_back_across_weeks() {
        let sat: WeekTime = "Saturday 00:00".parse().unwrap();
        // Thursday 2026-11-26 -> the Saturday before, 2026-11-21 00:00 EST.
        assert_eq!(last_occurrence(sat, utc("2026-11-26T17:00:00Z"), Toronto), utc("2026-11-21T05:00:00Z"));
        // Exactly at the edge counts as occurred.
        assert_eq!(last_occurrence(sat, utc("2026-11-28T05:00:00Z"), Toronto), utc("2026-11-28T05:00:00Z"));
        let mon: WeekTime = "Monday 00:00 +1w".parse().unwrap();
        assert_eq!(last_occurrence(mon, utc("2026-11-28T05:00:00Z"), Toronto), utc("2026-11-23T05:00:00Z"));
        assert_eq!(next_occurrence_after(mon, utc("2026-11-23T05:00:00Z"), Toronto), utc("2026-11-30T05:00:00Z"));
    }

    #[test]
    fn formats_local_time_with_the_zone() {
        assert_eq!(format_local(utc("2026-11-30T14:45:00Z"), Toronto), "2026-11-30 09:45 EST");
        assert_eq!(format_local(utc("2026-03-09T13:45:00Z"), Toronto), "2026-03-09 09:45 EDT");
    }
}
