//! The fast path of the loader: specs written in plain YAML (block and one-line flow
//! collections, one-line scalars) are read by a small parser into a borrowed tree and
//! deserialized from it, in about a tenth of the instructions of the full reader.
//!
//! It only ever accepts: on anything it does not read exactly as serde-saphyr does (see
//! [`parse`] for the subset), and on every error, it returns `None` and the loader reads the
//! text with serde-saphyr and the source map, which explain the problem. So the diagnostics a
//! user sees, the typed limit errors and the budgets are those of the full path, and a spec
//! the fast path accepts is the same [`Spec`] the full path would give (the tests below
//! compare both on every fixture).

mod de;
mod parse;

use serde::Deserialize;

use crate::spec::Spec;

/// The spec in `source`, when the fast path reads all of it without any doubt.
pub(crate) fn spec(source: &str) -> Option<Spec> {
    let tree = parse::parse(source).ok()?;
    Spec::deserialize(de::De(&tree)).ok()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                yaml_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }

    /// Every spec the fast path accepts is the spec serde-saphyr reads from the same text.
    #[test]
    fn accepts_only_what_serde_saphyr_reads_the_same() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in ["tests", "workflows", "examples"] {
            yaml_files(&root.join(dir), &mut files);
        }
        let mut fast = 0;
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else { continue };
            let Some(spec) = spec(&text) else { continue };
            fast += 1;
            let full: Spec = serde_saphyr::from_str_with_options(&text, crate::load::options())
                .unwrap_or_else(|e| panic!("{}: the fast path accepts what serde-saphyr refuses: {e}", file.display()));
            assert_eq!(spec, full, "{}", file.display());
        }
        eprintln!("the fast path read {fast} of {} files", files.len());
        assert!(fast > 20, "the fast path read {fast} of {} files", files.len());
        let release = std::fs::read_to_string(root.join("workflows/kars-release.yaml")).unwrap();
        assert!(spec(&release).is_some(), "the bundled spec takes the fast path");
        // Holidays are read through `deserialize_any`: dates must stay strings.
        let train = std::fs::read_to_string(root.join("workflows/mobile-train.yaml")).unwrap();
        assert!(spec(&train).is_some(), "a spec with holidays takes the fast path");
    }

    fn generic(text: &str) -> Option<serde_json::Value> {
        let tree = parse::parse(text).ok()?;
        serde_json::Value::deserialize(de::De(&tree)).ok()
    }

    proptest::proptest! {
        // About one random text in a hundred is read by the fast path: many cases.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// Whatever YAML-like text the fast path reads, serde-saphyr reads as the same value.
        #[test]
        fn the_fast_path_reads_what_serde_saphyr_reads(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "a", "b", "N", "x y", ":", ": ", "\n", "  ", "- ", "-", "{", "}", "[", "]", ", ", ",",
                "\"", "'", "#", " #c", "\\n", "1", "null", "~", "true", "&a ", "*a", "? ", "|", "---\n",
                "k: ", "\n  ", "\n- ", "é",
            ]), 1..40),
            keyed in proptest::bool::ANY,
        ) {
            // Half of the cases start as a mapping, so that the fast path reads more of them.
            let text = if keyed { format!("k: {}", parts.concat()) } else { parts.concat() };
            if let Some(fast) = generic(&text) {
                let full: serde_json::Value = serde_saphyr::from_str_with_options(&text, crate::load::options())
                    .unwrap_or_else(|e| panic!("{text:?}: the fast path reads what serde-saphyr refuses: {e}"));
                proptest::prop_assert_eq!(fast, full, "{:?}", text);
            }
        }
    }

    /// Scalars and layouts where YAML readers differ: the fast path reads them as
    /// serde-saphyr does, or leaves them to it.
    #[test]
    fn tricky_texts_read_as_serde_saphyr_reads() {
        let mut read = 0;
        for text in [
            "a: yes",
            "a: no",
            "a: on",
            "a: off",
            "a: y",
            "a: ~",
            "a: null",
            "a: Null",
            "a: NULL",
            "a: True",
            "a: TRUE",
            "a: False",
            "a: 0x10",
            "a: 0o17",
            "a: 1e3",
            "a: 1.5e3",
            "a: .5",
            "a: -.inf",
            "a: .nan",
            "a: .NaN",
            "a: 1_000",
            "a: +1",
            "a: 010",
            "a: -0",
            "a: 2026-12-25",
            "a: 12:30",
            "a: 1:30:00",
            "a: b # c",
            "a: b#c",
            "a: 'it''s'",
            "a: \"tab\\there\"",
            "a: \"\\u00e9\"",
            "a: \"\\x41\"",
            "a: [a, b, ]",
            "a: {b: c, }",
            "a: [a, [b]]",
            "a: {b: [c]}",
            "\"a\": b",
            "'a': b",
            "a : b",
            "a:  b",
            "- a\n- b",
            "a:\n  - b\n  - c",
            "a:\n- b\n- c",
            "a: - b",
            "a: b: c",
            "a: \"b\" c",
            "a: @b",
            "a: `b`",
            "a: %b",
            "a: !b",
            "a: &b c",
            "a: *b",
            "a: |\n  x",
            "a: >\n  x",
            "? a\n: b",
            "a: b\n  c",
            "a: -1",
            "a: :b",
            "a: b:",
            "a: [a: b]",
            "a: {b}",
            "a: 'a\n  b'",
            "a: \"a\n  b\"",
            "a: b\n\n",
            "a: b\n# c\n",
            "a:\n  b: c\n d: e",
            "a:\n  b: c\n  d: e",
            "a: 'x' # c",
            "a: [1, 2.5, -3]",
            "a: {x: 1}",
            "a:\n    - b\n    - c",
            "a: [\"a,b\", 'c']",
            "a: x - y",
            "a: -x",
            "a: - ",
            "a: \"\"",
            "a: ''",
            "a: \" \"",
            "a:\tb",
            "a: b\t",
            "a: 0.",
            "a: 1.",
            "a: 00",
            "a: 1e",
            "a: 0b1",
            "a: +.5",
            "a: {b: c}, d",
            "a: [b] c",
            "1: a",
            "true: a",
            "null: a",
            "a: 'b'c",
            "a: [a]b",
            "a:\n  - - b",
            "a:\n  - b: c\n    d: e",
            "- - a",
            "a: 12e03",
            "a: 9223372036854775808",
            "a: -9223372036854775809",
            "a: 18446744073709551616",
            "a: 1.0e+3",
            "a: 1E3",
            "a: \"\\/\"",
            "a: \"\\0\"",
            "a: \"\\N\"",
            "a: \"\\_\"",
            "a: \"\\L\"",
            "a: \"\\P\"",
            "a: \"\\e\"",
            "a: \"\\U0001F600\"",
        ] {
            if let Some(fast) = generic(text) {
                let full: Result<serde_json::Value, _> =
                    serde_saphyr::from_str_with_options(text, crate::load::options());
                match full {
                    Ok(full) => {
                        assert_eq!(fast, full, "{text:?}");
                        read += 1;
                    }
                    Err(e) => panic!("{text:?}: the fast path reads {fast} where serde-saphyr refuses: {e}"),
                }
            }
        }
        eprintln!("the fast path read {read} of the tricky texts");
        assert!(read >= 20, "the fast path read only {read} of the tricky texts");
    }
}
