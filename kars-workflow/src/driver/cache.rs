//! [`SpecCache`]: what a host made of a spec text (loaded and compiled), kept by the text, so
//! that a worker or a server that drives many instances of a few specs loads and compiles each
//! spec once instead of once per drive.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// Values made from spec texts, by the exact text (and its origin, which diagnostics name).
/// Bounded: past its capacity the oldest text is forgotten. A lookup compares texts, never a
/// hash or a fingerprint a journal claims, so a journal cannot pass its text off as another's.
#[derive(Debug)]
pub struct SpecCache<T> {
    slots: Mutex<VecDeque<Slot<T>>>,
    capacity: usize,
}

#[derive(Debug)]
struct Slot<T> {
    origin: String,
    text: String,
    value: T,
}

impl<T: Clone> SpecCache<T> {
    /// A cache of at most `capacity` texts (at least one).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { slots: Mutex::new(VecDeque::new()), capacity: capacity.max(1) }
    }

    /// The value made from `text` (read from `origin`): the kept one, else `make()`'s, kept
    /// when it succeeds. `make` runs without the cache locked: two threads that miss the same
    /// text at once both make it, and the cache keeps one.
    ///
    /// # Errors
    /// Whatever `make` returns; a failure is not kept.
    pub fn get_or_make<E>(&self, origin: &str, text: &str, make: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        if let Some(found) = self.find(origin, text) {
            return Ok(found);
        }
        let value = make()?;
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if !slots.iter().any(|s| s.origin == origin && s.text == text) {
            if slots.len() >= self.capacity {
                slots.pop_front();
            }
            slots.push_back(Slot { origin: origin.to_owned(), text: text.to_owned(), value: value.clone() });
        }
        debug_assert!(slots.len() <= self.capacity);
        Ok(value)
    }

    /// How many texts are kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether nothing is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn find(&self, origin: &str, text: &str) -> Option<T> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots
            .iter()
            .find(|s| s.text.len() == text.len() && s.origin == origin && s.text == text)
            .map(|s| s.value.clone())
    }
}

impl<T: Clone> Default for SpecCache<T> {
    /// A cache of 64 texts: more specs than a deployment serves, few enough to stay small.
    fn default() -> Self {
        Self::new(64)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn each_text_is_made_once_and_the_oldest_is_forgotten_past_the_capacity() {
        let cache = SpecCache::new(2);
        let made = Cell::new(0);
        let make = |v: u32| {
            made.set(made.get() + 1);
            Ok::<_, ()>(v)
        };
        assert_eq!(cache.get_or_make("a.yaml", "one", || make(1)), Ok(1));
        assert_eq!(cache.get_or_make("a.yaml", "one", || make(99)), Ok(1), "kept, not made again");
        assert_eq!(made.get(), 1);
        // Same text from another origin (diagnostics would name it): made again.
        assert_eq!(cache.get_or_make("b.yaml", "one", || make(2)), Ok(2));
        assert_eq!(cache.get_or_make("a.yaml", "two", || make(3)), Ok(3));
        assert_eq!(cache.len(), 2);
        // "one" from a.yaml was the oldest: forgotten, made again.
        assert_eq!(cache.get_or_make("a.yaml", "one", || make(4)), Ok(4));
        assert_eq!(made.get(), 4);
    }

    #[test]
    fn a_failure_is_not_kept() {
        let cache: SpecCache<u32> = SpecCache::default();
        assert_eq!(cache.get_or_make("a.yaml", "bad", || Err("invalid")), Err("invalid"));
        assert!(cache.is_empty());
        assert_eq!(cache.get_or_make("a.yaml", "bad", || Ok::<_, &str>(7)), Ok(7));
    }
}
