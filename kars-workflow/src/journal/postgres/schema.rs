//! `Schema`: a validated PostgreSQL schema name, quoted once for every statement.

use super::error::PgError;

/// The schema a [`PgStore`](super::PgStore) keeps its tables in: 1 to 63 lowercase ASCII
/// letters, digits and `_`, starting with a letter or `_` (so it needs no escaping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    name: String,
    quoted: String,
}

impl Schema {
    /// The default schema, `kars`.
    pub const DEFAULT: &'static str = "kars";

    /// Validates `name`.
    ///
    /// # Errors
    /// [`PgError::BadSchemaName`] for anything but a plain lowercase identifier.
    pub fn new(name: &str) -> Result<Self, PgError> {
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !first_ok || !rest_ok || name.len() > 63 || name.starts_with("pg_") {
            return Err(PgError::BadSchemaName { name: name.to_owned() });
        }
        Ok(Self { name: name.to_owned(), quoted: format!("\"{name}\"") })
    }

    /// The name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name quoted as an SQL identifier.
    #[must_use]
    pub fn quoted(&self) -> &str {
        &self.quoted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_lowercase_identifiers() {
        for good in ["kars", "_t", "kars_test_42"] {
            assert_eq!(Schema::new(good).unwrap().quoted(), format!("\"{good}\""));
        }
        for bad in ["", "Kars", "1abc", "a-b", "a\"b", "pg_catalog", &"a".repeat(64)] {
            assert!(matches!(Schema::new(bad), Err(PgError::BadSchemaName { .. })), "{bad}");
        }
    }
}
