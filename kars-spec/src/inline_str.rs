//! [`InlineStr`]: text kept inside the value when it is short and shared when it is not.
//!
//! Ids and effect keys are cloned on every path an input takes (into effects, errors, history
//! records), and most are short (`A`, `qa`, `alice`, `kars/2026-W48/E/1`). Text of up to `N`
//! bytes is copied like an integer: no allocation when it is made, no atomic reference count
//! when it is cloned or dropped. Longer text is an `Arc<str>`, cloned by a reference count.

use std::fmt;
use std::sync::Arc;

/// Text of up to `N` bytes inline (`N` at most 255: a larger one does not compile), longer
/// text shared.
///
/// With `N = 7` it is as big as an `Arc<str>` (16 bytes): the inline form fits beside the
/// pointer, whose niche tells the two apart. Equality, order and hashing are those of the
/// text.
#[derive(Clone)]
pub struct InlineStr<const N: usize>(Repr<N>);

#[derive(Clone)]
enum Repr<const N: usize> {
    /// `bytes[..len]` is the text, copied from whole `&str`s, so valid UTF-8; the rest is 0.
    Inline { len: u8, bytes: [u8; N] },
    /// Longer than `N` bytes (so never text that fits inline).
    Shared(Arc<str>),
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<InlineStr<7>>() == 16, "an InlineStr<7> is as big as an Arc<str>");

impl<const N: usize> InlineStr<N> {
    /// The text `s`, inline when it fits.
    #[inline]
    #[must_use]
    pub fn new(s: &str) -> Self {
        Self::join(&[s])
    }

    /// The text `s`, moving the string's buffer into the shared form when it is long.
    #[must_use]
    pub fn from_string(s: String) -> Self {
        if s.len() <= N { Self::new(&s) } else { Self(Repr::Shared(s.into())) }
    }

    /// The concatenation of `parts`, inline when it fits: built without an intermediate
    /// string.
    #[must_use]
    pub fn join(parts: &[&str]) -> Self {
        const { assert!(N <= u8::MAX as usize, "an InlineStr keeps at most 255 bytes inline") };
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > N {
            return Self(Repr::Shared(parts.concat().into()));
        }
        Self::written([0u8; N], 0, parts, total)
    }

    /// `prefix` followed by `parts`, inline when it fits: an inline prefix is copied as its
    /// whole fixed-size array (a few vector moves, no call), so a key built from a prefix
    /// kept for the purpose costs only its last parts.
    #[must_use]
    pub fn join_after(prefix: &Self, parts: &[&str]) -> Self {
        const { assert!(N <= u8::MAX as usize, "an InlineStr keeps at most 255 bytes inline") };
        let rest: usize = parts.iter().map(|p| p.len()).sum();
        match &prefix.0 {
            Repr::Inline { len, bytes } if usize::from(*len) + rest <= N => {
                Self::written(*bytes, usize::from(*len), parts, usize::from(*len) + rest)
            }
            _ => {
                let mut text = String::with_capacity(prefix.as_str().len() + rest);
                text.push_str(prefix.as_str());
                parts.iter().for_each(|p| text.push_str(p));
                Self::from_string(text)
            }
        }
    }

    /// `prefix`, then the id `id`, then the `tail` parts: [`InlineStr::join_after`] for a key
    /// made of a kept prefix, a short id and a few bytes (an effect key's `{node}/{visit}`).
    /// The id's seven bytes are copied as one word (its bytes past its length are zero, as an
    /// inline text's must be) and the tail byte by byte, so no part costs a call to `memcpy`.
    #[must_use]
    #[inline]
    pub fn join_packed_after<T>(prefix: &Self, id: crate::PackedId<T>, tail: &[&str]) -> Self {
        let (len, tail_len) = (usize::from(id.len), tail.iter().map(|t| t.len()).sum::<usize>());
        if let Repr::Inline { len: at, bytes } = &prefix.0 {
            let at = usize::from(*at);
            let total = at + len + tail_len;
            // Room for the id's whole word (then for the tail): the rest stays the prefix's
            // zeros.
            if at + 7 <= N && total <= N {
                let mut out = *bytes;
                if let Some(word) = out.get_mut(at..at + 7) {
                    word.copy_from_slice(&id.bytes);
                }
                let mut to = at + len;
                for &b in tail.iter().flat_map(|t| t.as_bytes()) {
                    if let Some(slot) = out.get_mut(to) {
                        *slot = b;
                    }
                    to += 1;
                }
                debug_assert_eq!(to, total);
                // `total <= N <= 255`.
                return Self(Repr::Inline { len: total as u8, bytes: out });
            }
        }
        let id_text = std::str::from_utf8(id.bytes.get(..len).unwrap_or_default()).unwrap_or_default();
        let text: String = std::iter::once(id_text).chain(tail.iter().copied()).collect();
        Self::join_after(prefix, &[&text])
    }

    /// `bytes[..at]` (already text) followed by `parts`, `total <= N` bytes in all.
    #[inline]
    fn written(mut bytes: [u8; N], mut at: usize, parts: &[&str], total: usize) -> Self {
        debug_assert!(total <= N && at + parts.iter().map(|p| p.len()).sum::<usize>() == total);
        for part in parts {
            let part = part.as_bytes();
            match part {
                // Separators and short ids: a store instead of a call to `memcpy`.
                [byte] => {
                    if let Some(slot) = bytes.get_mut(at) {
                        *slot = *byte;
                    }
                }
                _ => {
                    if let Some(to) = bytes.get_mut(at..at + part.len()) {
                        to.copy_from_slice(part);
                    }
                }
            }
            at += part.len();
        }
        // `total <= N <= 255`.
        Self(Repr::Inline { len: total as u8, bytes })
    }

    /// The length and bytes of text kept inline (`None` for shared text): the parts
    /// [`InlineStr::from_parts`] takes back.
    #[inline]
    pub(crate) fn parts(&self) -> Option<(u8, [u8; N])> {
        match &self.0 {
            Repr::Inline { len, bytes } => Some((*len, *bytes)),
            Repr::Shared(_) => None,
        }
    }

    /// Text from the parts [`InlineStr::parts`] gave (the only source of them: they are
    /// valid UTF-8 of `len` bytes, zero past it).
    #[inline]
    pub(crate) fn from_parts(len: u8, bytes: [u8; N]) -> Self {
        debug_assert!(
            usize::from(len) <= N
                && bytes.get(usize::from(len)..).is_some_and(|rest| rest.iter().all(|&b| b == 0))
                && bytes.get(..usize::from(len)).is_some_and(|text| std::str::from_utf8(text).is_ok()),
            "parts of an inline text"
        );
        Self(Repr::Inline { len, bytes })
    }

    /// The text.
    #[inline]
    #[must_use]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let text = bytes.get(..usize::from(*len)).unwrap_or_default();
                debug_assert!(std::str::from_utf8(text).is_ok());
                // SAFETY: `join` copied these bytes from whole `&str`s, one after another (see
                // `Repr::Inline`), and nothing else writes them.
                unsafe { std::str::from_utf8_unchecked(text) }
            }
            Repr::Shared(s) => s,
        }
    }
}

impl<const N: usize> PartialEq for InlineStr<N> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            // The lengths, then the bytes (those past the length are 0 in both).
            (Repr::Inline { len: a, bytes: x }, Repr::Inline { len: b, bytes: y }) => a == b && x == y,
            // Text that fits inline is never shared, so the two differ.
            (Repr::Inline { .. }, Repr::Shared(_)) | (Repr::Shared(_), Repr::Inline { .. }) => false,
            (Repr::Shared(a), Repr::Shared(b)) => Arc::ptr_eq(a, b) || a == b,
        }
    }
}

impl<const N: usize> Eq for InlineStr<N> {}

impl<const N: usize> PartialOrd for InlineStr<N> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> Ord for InlineStr<N> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl<const N: usize> std::hash::Hash for InlineStr<N> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes, so types that lend their text as `Borrow<str>` may use it.
        self.as_str().hash(state);
    }
}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_inline_and_long_text_shared() {
        for s in ["", "A", "qa", "alice", "1234567", "12345678", "product_manager", "é", "日本語"] {
            let short = InlineStr::<7>::new(s);
            assert_eq!(short.as_str(), s);
            assert_eq!(matches!(short.0, Repr::Inline { .. }), s.len() <= 7, "{s}");
            assert!(short == InlineStr::from_string(s.to_owned()), "{s}");
            assert!(short == short.clone());
            assert_eq!(format!("{short:?}"), format!("{s:?}"));
        }
        assert!(InlineStr::<7>::new("AB") != InlineStr::new("A"));
        assert!(InlineStr::<7>::new("A\0") != InlineStr::new("A"));
        assert!(InlineStr::<7>::new("12345678") != InlineStr::new("12345679"));
        assert!(InlineStr::<7>::new("a") < InlineStr::new("b"));
        assert!(InlineStr::<7>::new("zzzzzzzz") > InlineStr::new("a"));
    }

    #[test]
    fn joined_parts_read_as_their_concatenation() {
        let parts = ["kars-release", "/", "2026-W48", "/", "AB", "/", "12"];
        let inline = InlineStr::<38>::join(&parts);
        assert_eq!(inline.as_str(), "kars-release/2026-W48/AB/12");
        assert!(matches!(inline.0, Repr::Inline { .. }));
        assert!(inline == InlineStr::new("kars-release/2026-W48/AB/12"));
        let long = InlineStr::<8>::join(&parts);
        assert_eq!(long.as_str(), "kars-release/2026-W48/AB/12");
        assert!(matches!(long.0, Repr::Shared(_)));
        assert!(long == InlineStr::new("kars-release/2026-W48/AB/12"));
    }

    #[test]
    fn joined_after_a_prefix_reads_as_the_concatenation() {
        let prefix = InlineStr::<38>::join(&["kars-release", "/", "2026-W48", "/"]);
        let key = InlineStr::join_after(&prefix, &["AB", "/", "12"]);
        assert_eq!(key.as_str(), "kars-release/2026-W48/AB/12");
        assert!(matches!(key.0, Repr::Inline { .. }));
        assert!(key == InlineStr::new("kars-release/2026-W48/AB/12"));
        assert_eq!(InlineStr::join_after(&prefix, &[]).as_str(), prefix.as_str());
        // Past N bytes with an inline prefix, and after a shared prefix: shared, same text.
        let long = InlineStr::join_after(&prefix, &["a-node-id-long-enough", "/", "1"]);
        assert_eq!(long.as_str(), "kars-release/2026-W48/a-node-id-long-enough/1");
        assert!(matches!(long.0, Repr::Shared(_)));
        let shared = InlineStr::<8>::new("kars-release/");
        assert_eq!(InlineStr::join_after(&shared, &["x"]).as_str(), "kars-release/x");
        // Text that fits inline is never shared, whatever the prefix was.
        let short = InlineStr::<8>::join_after(&InlineStr::new("ab"), &["cd"]);
        assert!(matches!(short.0, Repr::Inline { .. }) && short == InlineStr::new("abcd"));
    }

    proptest::proptest! {
        /// The packed-id fast path builds the very value the general join does: same text,
        /// same representation (inline bytes zero past the length, or shared).
        #[test]
        fn a_packed_id_joins_as_its_text_does(
            prefix in "[a-z0-9/-]{0,40}",
            id in "[A-Za-z][A-Za-z0-9_]{0,6}",
            tail in "/[0-9]{1,5}|/[a-z]{1,9}|",
        ) {
            let prefix = InlineStr::<38>::new(&prefix);
            // Mermaid's keywords (`end`, `click`) are not ids: nothing to join.
            let Ok(node) = crate::NodeId::new(id.clone()) else { return Ok(()) };
            let packed = node.packed().expect("seven bytes or fewer");
            let (sep, rest) = tail.split_at(tail.len().min(1));
            let fast = InlineStr::join_packed_after(&prefix, packed, &[sep, rest]);
            let general = InlineStr::join_after(&prefix, &[&id, &tail]);
            proptest::prop_assert_eq!(fast.as_str(), general.as_str());
            proptest::prop_assert!(fast == general, "same representation");
            proptest::prop_assert_eq!(matches!(fast.0, Repr::Inline { .. }), matches!(general.0, Repr::Inline { .. }));
        }
    }
}
