//! Values written as one string in a spec (`Thursday 17:00`, `2w`, `2026-12-18 17:00`): serde
//! through `Display` and `FromStr`, and a JSON Schema string with the parser's pattern.

/// Implements `Serialize` (its `Display`), `Deserialize` (its `FromStr`, the error's message on
/// failure) and `JsonSchema` (a string with `pattern`, `description` and `examples`) for `$ty`.
macro_rules! string_format {
    ($ty:ident, $pattern:expr, $description:literal, [$($example:literal),* $(,)?]) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "description": $description,
                    "examples": [$($example),*]
                })
            }
        }
    };
}

pub(crate) use string_format;
