//! The names a history's compact records refer to: each actor and outcome word once, found
//! again by value (hosts build a new `Actor` for each event), among the most recent only.

use std::sync::Arc;

use super::{History, NONE, SCAN, grow};
use crate::event::Actor;

/// An entry of the names table: an actor, or an outcome word.
#[derive(Clone)]
pub(super) enum Name {
    /// An actor some record names.
    Actor(Actor),
    /// An outcome word some record names.
    Word(Arc<str>),
}

impl History {
    /// The index of `actor` in the names, added when new (the actor back when the table is
    /// full).
    pub(super) fn actor_index(&mut self, actor: Actor) -> Result<u32, Actor> {
        // Recent names first, and only so many: past that an actor is added again (the table
        // is a saving, not a set), so a stream of strangers costs no more than a few.
        let from = self.names.len().saturating_sub(SCAN);
        let recent = self.names.get(from..).unwrap_or_default();
        if let Some(i) = recent.iter().rposition(|n| matches!(n, Name::Actor(a) if same_actor(a, &actor))) {
            return u32::try_from(from + i).map_err(|_| actor);
        }
        match self.next_name() {
            Some(i) => {
                self.names.push(Name::Actor(actor));
                Ok(i)
            }
            None => Err(actor),
        }
    }

    /// The index of `word` in the names, added when new ([`NONE`] for no word); `None` when
    /// the table is full.
    pub(super) fn word_index(&mut self, word: Option<&str>) -> Option<u32> {
        let Some(word) = word else {
            return Some(NONE);
        };
        let from = self.names.len().saturating_sub(SCAN);
        let recent = self.names.get(from..).unwrap_or_default();
        if let Some(i) = recent.iter().rposition(|n| matches!(n, Name::Word(w) if same_str(w, word))) {
            return u32::try_from(from + i).ok();
        }
        let i = self.next_name()?;
        self.names.push(Name::Word(word.into()));
        Some(i)
    }

    /// The index the next name takes, with room made for it; `None` when the table is full.
    fn next_name(&mut self) -> Option<u32> {
        let i = u32::try_from(self.names.len()).ok().filter(|&i| i != NONE)?;
        if self.names.len() == self.names.capacity() {
            grow(&mut self.names, 8, 16);
        }
        Some(i)
    }

    /// Actor `i` (which `actor_index` gave out; the table is never cut while a slot names it).
    pub(super) fn actor(&self, i: u32) -> Actor {
        match self.names.get(i as usize) {
            Some(Name::Actor(actor)) => actor.clone(),
            _ => {
                debug_assert!(false, "name {i} is an actor");
                Actor::new("", Vec::new())
            }
        }
    }

    /// Word `i`, or none for [`NONE`].
    pub(super) fn word(&self, i: u32) -> Option<Arc<str>> {
        match self.names.get(i as usize) {
            Some(Name::Word(word)) => Some(Arc::clone(word)),
            _ => {
                debug_assert!(i == NONE, "name {i} is a word");
                None
            }
        }
    }
}

/// Whether two actors are the same person with the same roles: by pointer where the host
/// shared the actor, else by bytes (names and role ids are short: compared without a call).
fn same_actor(a: &Actor, b: &Actor) -> bool {
    a.ptr_eq(b)
        || (same_str(a.name(), b.name())
            && a.roles().len() == b.roles().len()
            && a.roles().iter().zip(b.roles()).all(|(x, y)| same_str(x.as_str(), y.as_str())))
}

/// String equality, with a pointer check first and short strings compared in place.
#[inline]
pub(super) fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if std::ptr::eq(a.as_ptr(), b.as_ptr()) || a.is_empty() {
        return true;
    }
    // Names and role ids are short: two overlapping loads cover 4 to 16 bytes.
    let n = a.len();
    match n {
        4..=7 => word32(a, 0) == word32(b, 0) && word32(a, n - 4) == word32(b, n - 4),
        8..=16 => word64(a, 0) == word64(b, 0) && word64(a, n - 8) == word64(b, n - 8),
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        _ => a == b,
    }
}

/// The four bytes of `s` at `at` as a word (0 past the end).
#[inline]
fn word32(s: &[u8], at: usize) -> u32 {
    s.get(at..at + 4).and_then(|w| <[u8; 4]>::try_from(w).ok()).map_or(0, u32::from_ne_bytes)
}

/// The eight bytes of `s` at `at` as a word (0 past the end).
#[inline]
fn word64(s: &[u8], at: usize) -> u64 {
    s.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()).map_or(0, u64::from_ne_bytes)
}
