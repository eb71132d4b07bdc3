//! Clocks: [`SystemClock`] reads the real time and sleeps; [`VirtualClock`] jumps, for tests,
//! simulations and commands that take `--now`.

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

/// Where the driver gets the time from, and how it waits for the next timer or retry.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Returns once `at` has come (immediately if it has already): a real clock sleeps, a
    /// virtual one jumps.
    fn sleep_until(&self, at: DateTime<Utc>);
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
    fn sleep_until(&self, at: DateTime<Utc>) {
        (**self).sleep_until(at);
    }
}

impl<C: Clock + ?Sized> Clock for Box<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
    fn sleep_until(&self, at: DateTime<Utc>) {
        (**self).sleep_until(at);
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
    fn sleep_until(&self, at: DateTime<Utc>) {
        (**self).sleep_until(at);
    }
}

/// The operating system's clock (UTC), and `std::thread::sleep`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    // This is the one place in the library that reads the real clock (chrono is built without
    // its `clock` feature, so the time comes from `SystemTime`).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from(std::time::SystemTime::now())
    }

    fn sleep_until(&self, at: DateTime<Utc>) {
        // Sleep in slices of at most a minute so that a suspended laptop or a clock change is
        // noticed instead of oversleeping by the whole gap.
        loop {
            let left = at - self.now();
            let Ok(left) = left.to_std() else { return };
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(std::time::Duration::from_secs(60)));
        }
    }
}

/// A clock that only moves when told to: [`VirtualClock::set`], or a `sleep_until` that jumps.
///
/// It never goes backwards: setting an earlier instant or sleeping until the past is a no-op.
#[derive(Debug)]
pub struct VirtualClock {
    now: Mutex<DateTime<Utc>>,
}

impl VirtualClock {
    /// A clock that reads `now` until moved.
    #[must_use]
    pub fn new(now: DateTime<Utc>) -> Self {
        Self { now: Mutex::new(now) }
    }

    /// Moves the clock forward to `at` (never back).
    pub fn set(&self, at: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        if at > *now {
            *now = at;
        }
    }

    /// Moves the clock forward by `by` (a negative duration does nothing).
    pub fn advance(&self, by: chrono::Duration) {
        let now = self.now();
        if let Some(at) = now.checked_add_signed(by) {
            self.set(at);
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sleep_until(&self, at: DateTime<Utc>) {
        self.set(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtual_clock_jumps_forward_only() {
        let t0: DateTime<Utc> = "2026-11-23T13:00:00Z".parse().unwrap();
        let clock = VirtualClock::new(t0);
        clock.sleep_until(t0 + chrono::Duration::hours(2));
        assert_eq!(clock.now(), t0 + chrono::Duration::hours(2));
        clock.set(t0);
        clock.advance(chrono::Duration::minutes(-5));
        assert_eq!(clock.now(), t0 + chrono::Duration::hours(2));
        clock.advance(chrono::Duration::minutes(5));
        assert_eq!(clock.now(), t0 + chrono::Duration::minutes(125));
    }

    #[test]
    fn the_system_clock_does_not_sleep_for_the_past() {
        let clock = SystemClock;
        let before = clock.now();
        clock.sleep_until(before - chrono::Duration::hours(1));
        assert!(clock.now() >= before);
    }
}
