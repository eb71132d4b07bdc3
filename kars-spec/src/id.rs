//! Validated identifier newtypes: node, phase, class, role, channel, branch, environment, window and person ids.

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::inline_str::InlineStr;

/// How many bytes of an id are kept inline (see [`InlineStr`]).
type IdText = InlineStr<7>;

/// Words that mermaid reads as syntax, so they cannot be node or phase ids.
pub const MERMAID_KEYWORDS: &[&str] = &[
    "end",
    "subgraph",
    "graph",
    "flowchart",
    "style",
    "classDef",
    "class",
    "click",
    "linkStyle",
    "direction",
    "callback",
    "call",
    "href",
    "default",
    "interpolate",
    "accTitle",
    "accDescr",
];

/// The longest id kars accepts, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The string is empty.
    #[error("{kind} id is empty")]
    Empty {
        /// Which kind of id was expected.
        kind: &'static str,
    },
    /// The string is longer than [`MAX_ID_LEN`].
    #[error("{kind} id `{id}` is longer than {max} bytes", max = MAX_ID_LEN)]
    TooLong {
        /// Which kind of id was expected.
        kind: &'static str,
        /// The rejected id.
        id: String,
    },
    /// The string has a character the id grammar does not allow.
    #[error("{kind} id `{id}` has the character {ch:?}, which is not allowed ({rule})")]
    BadChar {
        /// Which kind of id was expected.
        kind: &'static str,
        /// The rejected id.
        id: String,
        /// The first offending character.
        ch: char,
        /// The grammar, in words.
        rule: &'static str,
    },
    /// The string is a mermaid keyword.
    #[error("{kind} id `{id}` is a mermaid keyword; mermaid would read it as syntax (try `{suggestion}`)")]
    Keyword {
        /// Which kind of id was expected.
        kind: &'static str,
        /// The rejected id.
        id: String,
        /// A capitalised spelling that mermaid accepts.
        suggestion: String,
    },
}

/// The grammar of graph ids (nodes and phases): they appear verbatim in mermaid.
const GRAPH_RULE: &str = "graph ids start with an ASCII letter and continue with ASCII letters, digits or `_`";
/// The grammar of name ids (roles, channels, branches, environments, windows, people).
const NAME_RULE: &str =
    "names start with a lowercase ASCII letter and continue with lowercase letters, digits, `_` or `-`";

fn check_graph_id(kind: &'static str, s: &str) -> Result<(), IdError> {
    check_common(kind, s)?;
    for (i, ch) in s.char_indices() {
        let ok = if i == 0 { ch.is_ascii_alphabetic() } else { ch.is_ascii_alphanumeric() || ch == '_' };
        if !ok {
            return Err(IdError::BadChar { kind, id: s.to_owned(), ch, rule: GRAPH_RULE });
        }
    }
    if MERMAID_KEYWORDS.contains(&s) {
        let mut suggestion = s.to_owned();
        if let Some(first) = suggestion.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        return Err(IdError::Keyword { kind, id: s.to_owned(), suggestion });
    }
    Ok(())
}

/// The grammar of class ids (mermaid `classDef` names).
const CLASS_RULE: &str =
    "class names start with an ASCII letter or `_` and continue with ASCII letters, digits, `_` or `-`";

fn check_class_id(kind: &'static str, s: &str) -> Result<(), IdError> {
    check_common(kind, s)?;
    for (i, ch) in s.char_indices() {
        let ok = if i == 0 {
            ch.is_ascii_alphabetic() || ch == '_'
        } else {
            ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-')
        };
        if !ok {
            return Err(IdError::BadChar { kind, id: s.to_owned(), ch, rule: CLASS_RULE });
        }
    }
    // `default` is the class mermaid gives every node; the other keywords read as syntax.
    if s != "default" && MERMAID_KEYWORDS.contains(&s) {
        let mut suggestion = s.to_owned();
        if let Some(first) = suggestion.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        return Err(IdError::Keyword { kind, id: s.to_owned(), suggestion });
    }
    Ok(())
}

fn check_name_id(kind: &'static str, s: &str) -> Result<(), IdError> {
    check_common(kind, s)?;
    for (i, ch) in s.char_indices() {
        let ok = if i == 0 {
            ch.is_ascii_lowercase()
        } else {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-'
        };
        if !ok {
            return Err(IdError::BadChar { kind, id: s.to_owned(), ch, rule: NAME_RULE });
        }
    }
    Ok(())
}

fn check_common(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { kind, id: s.to_owned() });
    }
    Ok(())
}

/// An id of seven bytes or fewer as a plain `Copy` value of eight bytes, with no drop glue:
/// what a table holding many ids keeps ([`NodeId::packed`] and the like), given back as the id
/// with `From`. Only an id makes one, so it is always a valid id of type `T`.
pub struct PackedId<T> {
    pub(crate) len: u8,
    pub(crate) bytes: [u8; 7],
    id: PhantomData<fn() -> T>,
}

impl<T> Clone for PackedId<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for PackedId<T> {}

impl<T> PartialEq for PackedId<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.bytes == other.bytes
    }
}

impl<T> Eq for PackedId<T> {}

impl<T> fmt::Debug for PackedId<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(IdText::from_parts(self.len, self.bytes).as_str(), f)
    }
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $check:ident, $pattern:literal) => {
        $(#[$meta])*
        ///
        /// An id of up to seven bytes is kept inside the value: cloning it copies 16 bytes,
        /// with no allocation and no reference count; a longer one is shared.
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(IdText);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.as_str()).finish()
            }
        }

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                // As `str` hashes, which `Borrow<str>` requires.
                self.as_str().hash(state);
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl $name {
            /// Validates `id` and wraps it.
            ///
            /// # Errors
            /// Returns an [`IdError`] that says which character or rule the id breaks.
            pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
                let id = id.into();
                $check($kind, &id)?;
                Ok(Self(IdText::from_string(id)))
            }

            /// [`Self::new`] from a borrowed string: no allocation for a short id, one (the
            /// shared text) for a long one.
            fn from_ref(id: &str) -> Result<Self, IdError> {
                $check($kind, id)?;
                Ok(Self(IdText::new(id)))
            }

            /// The id as a string slice.
            #[must_use]
            #[inline]
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// The id as a `Copy` value, when it is seven bytes or fewer (see [`PackedId`]).
            #[must_use]
            #[inline]
            pub fn packed(&self) -> Option<PackedId<Self>> {
                let (len, bytes) = self.0.parts()?;
                Some(PackedId { len, bytes, id: PhantomData })
            }
        }

        impl From<PackedId<$name>> for $name {
            /// The id a [`PackedId`] was made from.
            #[inline]
            fn from(packed: PackedId<$name>) -> Self {
                Self(IdText::from_parts(packed.len, packed.bytes))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_ref(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        // What `String` says, so diagnostics stay the same.
                        f.write_str("a string")
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        $name::from_ref(s).map_err(E::custom)
                    }
                }
                deserializer.deserialize_string(Visitor)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "maxLength": MAX_ID_LEN,
                    "description": concat!("A ", $kind, " id.")
                })
            }
        }
    };
}

id_type!(
    /// The id of a node: the mermaid node id (`A`, `AA`, `QaSignOff`).
    NodeId, "node", check_graph_id, "^[A-Za-z][A-Za-z0-9_]*$"
);
id_type!(
    /// The id of a phase: the mermaid subgraph id (`FridayQA`).
    PhaseId, "phase", check_graph_id, "^[A-Za-z][A-Za-z0-9_]*$"
);
id_type!(
    /// The id of a mermaid style class (`critical`; `default` styles every node).
    ClassId, "class", check_class_id, "^[A-Za-z_][A-Za-z0-9_-]*$"
);
id_type!(
    /// The id of a role (`qa`, `product_manager`).
    RoleId, "role", check_name_id, "^[a-z][a-z0-9_-]*$"
);
id_type!(
    /// The id of a notification channel (`releases`).
    ChannelId, "channel", check_name_id, "^[a-z][a-z0-9_-]*$"
);
id_type!(
    /// The id of a VCS branch or branch pattern (`dev`, `feature`).
    BranchId, "branch", check_name_id, "^[a-z][a-z0-9_-]*$"
);
id_type!(
    /// The id of a deployment environment (`dev`, `production`).
    EnvironmentId, "environment", check_name_id, "^[a-z][a-z0-9_-]*$"
);
id_type!(
    /// The id of a calendar or freeze window (`code_freeze`).
    WindowId, "window", check_name_id, "^[a-z][a-z0-9_-]*$"
);
id_type!(
    /// The id of a person on the team roster (`alice`).
    PersonId, "person", check_name_id, "^[a-z][a-z0-9_-]*$"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_pack_into_eight_bytes_and_back() {
        assert_eq!(std::mem::size_of::<PackedId<NodeId>>(), 8);
        for id in ["A", "QaSign", "Release", "Q_1a"] {
            let node = NodeId::new(id).unwrap();
            let packed = node.packed().unwrap();
            assert_eq!(NodeId::from(packed), node, "{id}");
            assert_eq!(format!("{packed:?}"), format!("{id:?}"));
        }
        assert_eq!(NodeId::new("a").unwrap().packed(), NodeId::new("a").unwrap().packed());
        assert_ne!(NodeId::new("a").unwrap().packed(), NodeId::new("b").unwrap().packed());
        // Eight bytes or more are shared text, which does not pack.
        assert!(NodeId::new("Releases").unwrap().packed().is_none());
        assert!(RoleId::new("qa").unwrap().packed().is_some());
    }

    #[test]
    fn graph_ids_follow_mermaid_rules() {
        assert!(NodeId::new("AA").is_ok());
        assert!(NodeId::new("Qa_1").is_ok());
        assert!(matches!(NodeId::new(""), Err(IdError::Empty { .. })));
        assert!(matches!(NodeId::new("1A"), Err(IdError::BadChar { ch: '1', .. })));
        assert!(matches!(NodeId::new("a b"), Err(IdError::BadChar { ch: ' ', .. })));
        let err = NodeId::new("end").unwrap_err();
        assert_eq!(err.to_string(), "node id `end` is a mermaid keyword; mermaid would read it as syntax (try `End`)");
        assert!(NodeId::new("End").is_ok());
        assert!(matches!(NodeId::new("x".repeat(65)), Err(IdError::TooLong { .. })));
    }

    #[test]
    fn name_ids_are_lowercase() {
        assert!(RoleId::new("product_manager").is_ok());
        assert!(ChannelId::new("kars-releases").is_ok());
        let err = RoleId::new("QA").unwrap_err();
        assert!(err.to_string().starts_with("role id `QA` has the character 'Q'"), "{err}");
    }

    #[test]
    fn ids_deserialize_through_new() {
        let ok: Result<NodeId, _> = serde_json::from_str("\"B\"");
        assert_eq!(ok.unwrap().as_str(), "B");
        let bad: Result<NodeId, _> = serde_json::from_str("\"subgraph\"");
        assert!(bad.unwrap_err().to_string().contains("mermaid keyword"));
    }
}
