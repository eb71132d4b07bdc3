//! Calendar arithmetic the engine needs beyond `kars_spec::calendar`: week times resolved
//! through a small per-thread memo, the last and next occurrence of a recurring week time, and
//! local-time formatting for messages and errors.

use std::cell::RefCell;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;
use kars_spec::calendar::{WeekTime, cycle_monday_of, resolve_local};

/// The earliest instant the engine works with: inputs before it count as it.
pub const EARLIEST: DateTime<Utc> = DateTime::from_naive_utc_and_offset(
    match NaiveDate::from_ymd_opt(1000, 1, 1) {
        Some(d) => d,
        None => NaiveDate::MIN,
    }
    .and_time(chrono::NaiveTime::MIN),
    Utc,
);

/// The latest instant the engine works with: inputs after it count as it. The bounds leave
/// room for week arithmetic (`+8w`, the weeks around a window edge) so that no date overflows.
pub const LATEST: DateTime<Utc> = DateTime::from_naive_utc_and_offset(
    match NaiveDate::from_ymd_opt(9000, 1, 1) {
        Some(d) => d,
        None => NaiveDate::MAX,
    }
    .and_time(chrono::NaiveTime::MIN),
    Utc,
);

/// `at`, moved into [`EARLIEST`]..=[`LATEST`].
#[must_use]
pub fn clamp(at: DateTime<Utc>) -> DateTime<Utc> {
    at.clamp(EARLIEST, LATEST)
}

/// Whether `at` lies within a year of the engine's range: where instants resolved from clamped
/// inputs fall (checked on recorded and restored instants, which a forger could set to anything).
#[must_use]
pub fn in_range(at: DateTime<Utc>) -> bool {
    let margin = Duration::days(366);
    (EARLIEST - margin..=LATEST + margin).contains(&at)
}

/// Whether a date lies within a year of the engine's range.
#[must_use]
pub fn date_in_range(date: NaiveDate) -> bool {
    in_range(date.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// How many resolved wall-clock times each thread remembers.
const MEMO_SLOTS: usize = 256;

/// One remembered resolution: the zone, the local time and the instant it resolved to.
type MemoSlot = Option<(Tz, NaiveDateTime, DateTime<Utc>)>;

thread_local! {
    /// A direct-mapped memo of [`resolve_local`]: every instance of a workflow resolves the same
    /// few week times (gates, deadlines, window edges, the next Monday) in the same weeks, and
    /// a time-zone lookup costs far more than a table probe. `resolve_local` is a pure
    /// function of its arguments, so the memo changes no result, only how often it is computed.
    static MEMO: RefCell<[MemoSlot; MEMO_SLOTS]> = const { RefCell::new([None; MEMO_SLOTS]) };
}

/// [`resolve_local`], remembered per thread.
#[must_use]
pub fn resolve_local_memo(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let minutes = local.and_utc().timestamp().div_euclid(60);
    let mixed = (minutes as u64 ^ (zone as u64).rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let slot = (mixed >> 56) as usize % MEMO_SLOTS;
    let hit = MEMO.with(|memo| match memo.try_borrow().ok().and_then(|m| m.get(slot).copied().flatten()) {
        Some((z, l, at)) if z == zone && l == local => Some(at),
        _ => None,
    });
    if let Some(at) = hit {
        return at;
    }
    let at = resolve_local(zone, local);
    MEMO.with(|memo| {
        if let Ok(mut m) = memo.try_borrow_mut()
            && let Some(s) = m.get_mut(slot)
        {
            *s = Some((zone, local, at));
        }
    });
    at
}

/// [`WeekTime::resolve`] through the memo: the instant of `time` in the cycle that starts on
/// `monday`.
#[must_use]
pub fn resolve(time: WeekTime, monday: NaiveDate, zone: Tz) -> DateTime<Utc> {
    resolve_local_memo(zone, time.local_in_cycle(monday))
}

/// The latest instant at or before `now` at which `time`'s weekday and time of day occur in
/// `zone` (its week offset is ignored): how a recurring window edge is found.
#[must_use]
pub fn last_occurrence(time: WeekTime, now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    let now = clamp(now);
    last_in(time, now, local_monday(now, zone), zone)
}

/// The Monday of the local week of `at` in `zone`.
fn local_monday(at: DateTime<Utc>, zone: Tz) -> NaiveDate {
    cycle_monday_of(at.with_timezone(&zone).date_naive())
}

/// [`last_occurrence`] with the clamped `now` and its local Monday already known.
fn last_in(time: WeekTime, now: DateTime<Utc>, monday: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let clock = time.time();
    let this = WeekTime::new(0, time.weekday(), clock.hour() as u8, clock.minute() as u8).unwrap_or(time);
    let mut earliest = now;
    for back in 0..3 {
        let at = resolve(this, monday - Duration::weeks(back), zone);
        if at <= now {
            return at;
        }
        earliest = at;
    }
    // Three weeks always hold an occurrence; kept total for safety.
    earliest - Duration::weeks(1)
}

/// A calendar edge of a window: every week at a week time, or once at a local date and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CalendarEdge {
    /// Every week.
    Weekly(WeekTime),
    /// Once.
    Dated(NaiveDateTime),
}

impl CalendarEdge {
    /// The latest occurrence at or before `now` ([`EARLIEST`] for a dated edge still ahead).
    pub(crate) fn last(self, now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        match self {
            CalendarEdge::Weekly(time) => last_occurrence(time, now, zone),
            CalendarEdge::Dated(local) => {
                Some(resolve_local_memo(zone, local)).filter(|at| *at <= now).unwrap_or(EARLIEST)
            }
        }
    }

    /// The first occurrence strictly after `now`, if any.
    pub(crate) fn next_after(self, now: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        match self {
            CalendarEdge::Weekly(time) => Some(next_occurrence_after(time, now, zone)),
            CalendarEdge::Dated(local) => Some(resolve_local_memo(zone, local)).filter(|at| *at > now),
        }
    }
}

/// One remembered [`edges_around`]: the table and zone it was for, the instants it holds for
/// (from the latest of the last occurrences up to, not including, the next), and the result.
struct EdgesMemo {
    zone: Tz,
    edges: Box<[CalendarEdge]>,
    from: DateTime<Utc>,
    last: Arc<[DateTime<Utc>]>,
    next: Option<DateTime<Utc>>,
    /// The last instant the result holds for: a second before `next` (where the computation,
    /// which looks for the next edge from `now + 1s`, would pass it).
    until: Option<DateTime<Utc>>,
}

impl EdgesMemo {
    fn new(
        zone: Tz,
        edges: &[CalendarEdge],
        from: DateTime<Utc>,
        last: Arc<[DateTime<Utc>]>,
        next: Option<DateTime<Utc>>,
    ) -> Self {
        let until = next.map(|n| n.checked_sub_signed(Duration::seconds(1)).unwrap_or(n));
        Self { zone, edges: edges.into(), from, last, next, until }
    }

    /// Whether [`compute_edges`] at `now` gives this result: `now` lies in the stretch, and
    /// `now + 1s` (where the computation looks for the next edge) does not pass its end.
    fn holds(&self, now: DateTime<Utc>) -> bool {
        self.from <= now && self.until.is_none_or(|u| now <= u)
    }
}

/// How many calendar tables and stretches each thread remembers.
const EDGES_SLOTS: usize = 8;

thread_local! {
    /// Remembered [`edges_around`] results. Between the latest last occurrence and the next
    /// occurrence no edge occurs, so every instant in that stretch has the same result: every
    /// instance of a workflow that refreshes its calendar in the same stretch (at its start,
    /// at a window edge) shares one computation. Like [`MEMO`], this changes no result.
    static EDGES: RefCell<(usize, Vec<EdgesMemo>)> = const { RefCell::new((0, Vec::new())) };
}

/// The last occurrence of every edge at or before `now`, and the first occurrence of any edge
/// strictly after it: [`last_occurrence`] and [`next_occurrence_after`] for a whole table,
/// remembered per thread for the stretch between edges (see [`EDGES`]).
pub(crate) fn edges_around(
    edges: &[CalendarEdge],
    now: DateTime<Utc>,
    zone: Tz,
) -> (Arc<[DateTime<Utc>]>, Option<DateTime<Utc>>) {
    let now = clamp(now);
    let hit = EDGES.with(|memo| {
        let memo = memo.try_borrow().ok()?;
        // The slot written last first: instances that refresh together meet the same stretch.
        let (cursor, slots) = &*memo;
        let newest = cursor.wrapping_sub(1) % EDGES_SLOTS;
        let (older, from_newest) = slots.split_at(newest.min(slots.len()));
        from_newest
            .iter()
            .chain(older)
            .find(|m| m.zone == zone && m.holds(now) && *m.edges == *edges)
            .map(|m| (Arc::clone(&m.last), m.next))
    });
    if let Some(found) = hit {
        return found;
    }
    let (last, next) = compute_edges(edges, now, zone);
    let last: Arc<[DateTime<Utc>]> = last.into();
    // Edges occur on whole seconds, so from a whole-second `now` the computed next edge (the
    // first at or after `now + 1s`) is the first after `now`: only then is the stretch known.
    if now.timestamp_subsec_nanos() != 0 {
        return (last, next);
    }
    let from = last.iter().copied().max().unwrap_or(EARLIEST).min(now);
    EDGES.with(|memo| {
        if let Ok(mut memo) = memo.try_borrow_mut() {
            let (cursor, slots) = &mut *memo;
            if slots.len() < EDGES_SLOTS {
                slots.push(EdgesMemo::new(zone, edges, from, Arc::clone(&last), next));
            } else if let Some(slot) = slots.get_mut(*cursor % EDGES_SLOTS) {
                // Reuse the slot's edge table: a run that never meets a stretch twice (a
                // simulation) then pays one allocation per refresh (the shared list).
                if *slot.edges == *edges {
                    let until = next.map(|n| n.checked_sub_signed(Duration::seconds(1)).unwrap_or(n));
                    (slot.zone, slot.from, slot.last, slot.next, slot.until) =
                        (zone, from, Arc::clone(&last), next, until);
                } else {
                    *slot = EdgesMemo::new(zone, edges, from, Arc::clone(&last), next);
                }
            }
            *cursor = cursor.wrapping_add(1);
        }
    });
    (last, next)
}

/// [`edges_around`] computed, with the local week looked up once for the last occurrences and
/// once for the next.
fn compute_edges(edges: &[CalendarEdge], now: DateTime<Utc>, zone: Tz) -> (Vec<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let monday = local_monday(now, zone);
    let last = edges
        .iter()
        .map(|e| match *e {
            CalendarEdge::Weekly(t) => last_in(t, now, monday, zone),
            dated => dated.last(now, zone),
        })
        .collect();
    let after = now + Duration::seconds(1);
    let after_monday = local_monday(after, zone);
    let next = edges
        .iter()
        .filter_map(|e| match *e {
            CalendarEdge::Weekly(t) => Some(next_in(t, after, after_monday, zone)),
            dated => dated.next_after(now, zone),
        })
        .min();
    (last, next)
}

/// The first instant strictly after `now` at which `time`'s weekday and time of day occur.
#[must_use]
pub fn next_occurrence_after(time: WeekTime, now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    let after = clamp(now) + Duration::seconds(1);
    next_in(time, after, local_monday(after, zone), zone)
}

/// `WeekTime::next_occurrence` through the memo: the first occurrence at or after `now`, whose
/// local Monday is known.
fn next_in(time: WeekTime, now: DateTime<Utc>, monday: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let clock = time.time();
    let this = WeekTime::new(0, time.weekday(), clock.hour() as u8, clock.minute() as u8).unwrap_or(time);
    for week in 0..3 {
        let at = resolve(this, monday + Duration::weeks(week), zone);
        if at >= now {
            return at;
        }
    }
    // Three weeks always contain an occurrence; kept total for safety.
    resolve(this, monday + Duration::weeks(3), zone)
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
    fn memo_agrees_with_the_calendar() {
        let times: Vec<WeekTime> = ["Saturday 00:00", "Monday 00:00 +1w", "Sunday 02:30", "Sunday 01:30"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        // DST weeks in Toronto (a gap on 2026-03-08, a fold on 2026-11-01) and quiet ones,
        // twice over so that the second round reads the memo.
        for _ in 0..2 {
            for monday in ["2026-03-02", "2026-03-09", "2026-10-26", "2026-11-02", "2026-11-23"] {
                let monday: NaiveDate = monday.parse().unwrap();
                for t in &times {
                    assert_eq!(resolve(*t, monday, Toronto), t.resolve(monday, Toronto));
                    let now = t.resolve(monday, Toronto) - Duration::hours(30);
                    assert_eq!(
                        next_occurrence_after(*t, now, Toronto),
                        t.next_occurrence(now + Duration::seconds(1), Toronto)
                    );
                }
            }
        }
    }

    #[test]
    fn remembered_edges_agree_with_computed_ones() {
        let edges = [
            CalendarEdge::Weekly("Friday 17:00".parse().unwrap()),
            CalendarEdge::Weekly("Monday 09:00 +1w".parse().unwrap()),
            CalendarEdge::Dated("2026-11-26T12:00:00".parse().unwrap()),
            CalendarEdge::Weekly("Sunday 02:30".parse().unwrap()),
        ];
        // Every 37 minutes over five weeks around a DST change, then the same instants again
        // (read from the memo), then backwards (stretches entered from their end).
        let start = utc("2026-10-20T00:00:00Z");
        let instants: Vec<_> = (0..5 * 7 * 24 * 60 / 37).map(|i| start + Duration::minutes(37 * i)).collect();
        let computed = |table: &[CalendarEdge], now| {
            let (last, next) = compute_edges(table, now, Toronto);
            (Arc::<[DateTime<Utc>]>::from(last), next)
        };
        for now in instants.iter().chain(&instants).chain(instants.iter().rev()) {
            for table in [&edges[..], &edges[..2], &edges[2..3]] {
                assert_eq!(edges_around(table, *now, Toronto), computed(table, *now), "at {now}");
            }
        }
        // Exactly at an edge, around it, and within its last second (where the computation,
        // which looks for the next edge from a second later, skips it).
        let friday = utc("2026-11-27T22:00:00Z");
        let near = [-1500, -1000, -500, -1, 0, 1, 500, 1000];
        for now in near.iter().chain(near.iter().rev()).map(|ms| friday + Duration::milliseconds(*ms)) {
            assert_eq!(edges_around(&edges, now, Toronto), computed(&edges, now), "at {now}");
        }
    }

    #[test]
    fn extreme_instants_are_clamped_not_overflowed() {
        let sat: WeekTime = "Saturday 00:00".parse().unwrap();
        assert!(in_range(last_occurrence(sat, DateTime::<Utc>::MAX_UTC, Toronto)));
        assert!(in_range(next_occurrence_after(sat, DateTime::<Utc>::MIN_UTC, Toronto)));
        assert_eq!(clamp(DateTime::<Utc>::MAX_UTC), LATEST);
        assert!(!date_in_range(NaiveDate::MAX));
    }

    #[test]
    fn formats_local_time_with_the_zone() {
        assert_eq!(format_local(utc("2026-11-30T14:45:00Z"), Toronto), "2026-11-30 09:45 EST");
        assert_eq!(format_local(utc("2026-03-09T13:45:00Z"), Toronto), "2026-03-09 09:45 EDT");
    }
}
