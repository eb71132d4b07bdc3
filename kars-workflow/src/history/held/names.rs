//! The names a history's compact records refer to: each actor and outcome word once, found
//! again by value (hosts build a new `Actor` for each event), among the most recent only.

use std::sync::Arc;

use super::{History, NONE, SCAN, grow};
use crate::event::Actor;

impl History {
    /// The index of `actor` in the names, added when new (the actor back when the table is
    /// full).
    pub(super) fn actor_index(&mut self, actor: Actor) -> Result<u32, Actor> {
        // Recent names first, and only so many: past that an actor is added again (the table
        // is a saving, not a set), so a stream of strangers costs no more than a few.
        let from = self.names.len().saturating_sub(SCAN);
        let recent = self.names.get(from..).unwrap_or_default();
        if let Some(i) = recent.iter().rposition(|a| same_actor(a, &actor)) {
            return u32::try_from(from + i).map_err(|_| actor);
        }
        self.add(actor)
    }

    /// The index of `word` in the names, added when new ([`NONE`] for no word); `None` when
    /// the table is full.
    pub(super) fn word_index(&mut self, word: Option<&str>) -> Option<u32> {
        let Some(word) = word else {
            return Some(NONE);
        };
        let from = self.names.len().saturating_sub(SCAN);
        let recent = self.names.get(from..).unwrap_or_default();
        if let Some(i) = recent.iter().rposition(|a| same_str(&a.name, word)) {
            return u32::try_from(from + i).ok();
        }
        // A word's roles are never read: share the last entry's rather than allocate.
        let roles = self.names.last().map_or_else(|| Arc::from(Vec::new()), |a| Arc::clone(&a.roles));
        self.add(Actor { name: word.into(), roles }).ok()
    }

    /// Adds a name; its index, or the name back when the table is full.
    fn add(&mut self, name: Actor) -> Result<u32, Actor> {
        let Some(i) = u32::try_from(self.names.len()).ok().filter(|&i| i != NONE) else {
            return Err(name);
        };
        if self.names.len() == self.names.capacity() {
            grow(&mut self.names, 8, 16);
        }
        self.names.push(name);
        Ok(i)
    }

    /// Actor `i` (which `actor_index` gave out; the table is never cut while a slot names it).
    pub(super) fn actor(&self, i: u32) -> Actor {
        let actor = self.names.get(i as usize);
        debug_assert!(actor.is_some(), "name {i} is an actor");
        actor.cloned().unwrap_or_else(|| Actor::new("", Vec::new()))
    }

    /// Word `i`, or none for [`NONE`].
    pub(super) fn word(&self, i: u32) -> Option<Arc<str>> {
        if i == NONE {
            return None;
        }
        let word = self.names.get(i as usize);
        debug_assert!(word.is_some(), "name {i} is a word");
        word.map(|w| Arc::clone(&w.name))
    }
}

/// Whether two actors are the same person with the same roles: by pointer where the host
/// shared the strings, else by bytes (names and role ids are short: compared without a call).
fn same_actor(a: &Actor, b: &Actor) -> bool {
    same_str(&a.name, &b.name)
        && (Arc::ptr_eq(&a.roles, &b.roles)
            || (a.roles.len() == b.roles.len()
                && a.roles.iter().zip(b.roles.iter()).all(|(x, y)| same_str(x.as_str(), y.as_str()))))
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
