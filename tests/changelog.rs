//! Every format version the code writes has an entry in `CHANGELOG.md`'s format history.
//!
//! The versions are the real constants, read through the public API, so raising one (say
//! `JOURNAL_FORMAT` to 2) fails this test until `CHANGELOG.md` has a `#### Journal format 2`
//! heading with a `Reads:` line. To add a format, add a row to [`FORMATS`] and a section to the
//! changelog.

/// A versioned format: where its history lives in the changelog and the version the code writes.
struct Format {
    /// The `### ...` section of the format history.
    section: &'static str,
    /// The heading of one version, without the number: `#### {heading} {version}`.
    heading: &'static str,
    /// The constant, as a reader finds it in the code.
    constant: &'static str,
    /// Its value in this build.
    version: u32,
}

const FORMATS: &[Format] = &[
    Format {
        section: "Spec format",
        heading: "Spec format",
        constant: "kars::spec::spec::FORMAT_VERSION",
        version: kars::spec::spec::FORMAT_VERSION,
    },
    Format {
        section: "Journal format",
        heading: "Journal format",
        constant: "kars::workflow::driver::JOURNAL_FORMAT",
        version: kars::workflow::driver::JOURNAL_FORMAT,
    },
    Format {
        section: "File store format",
        heading: "File store format",
        constant: "kars::workflow::journal::FILE_FORMAT",
        version: kars::workflow::journal::FILE_FORMAT,
    },
    Format {
        section: "JSON Schema",
        heading: "JSON Schema for spec format",
        constant: "kars::spec::spec::FORMAT_VERSION (the schema is versioned with the spec format)",
        version: kars::spec::spec::FORMAT_VERSION,
    },
    Format {
        section: "Model file format",
        heading: "Model file format",
        constant: "kars::workflow::sim::model::MODEL_VERSION",
        version: kars::workflow::sim::model::MODEL_VERSION,
    },
    #[cfg(feature = "serve")]
    Format {
        section: "Serve config format",
        heading: "Serve config format",
        constant: "kars::serve::config::CONFIG_VERSION",
        version: kars::serve::config::CONFIG_VERSION,
    },
    #[cfg(feature = "serve")]
    Format {
        section: "Webhook signature",
        heading: "Webhook signature",
        constant: "kars::serve::webhook::SIGNATURE_VERSION",
        version: kars::serve::webhook::SIGNATURE_VERSION,
    },
];

/// The lines of the markdown section that starts with the heading line `heading`, up to the next
/// heading of the same or a higher level.
fn section<'a>(lines: &[&'a str], heading: &str) -> Option<Vec<&'a str>> {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let start = lines.iter().position(|line| line.trim_end() == heading)?;
    let body = lines[start + 1..]
        .iter()
        .take_while(|line| {
            let hashes = line.chars().take_while(|&c| c == '#').count();
            !(hashes > 0 && hashes <= level && line[hashes..].starts_with(' '))
        })
        .copied()
        .collect();
    Some(body)
}

/// What is wrong with `changelog` for `format`, as messages that say what to add.
fn problems(changelog: &str, format: &Format) -> Vec<String> {
    let lines: Vec<&str> = changelog.lines().collect();
    let Some(history) = section(&lines, "## Format history") else {
        return vec!["CHANGELOG.md has no `## Format history` section\nhelp: add it after the releases".to_owned()];
    };
    let section_heading = format!("### {}", format.section);
    let Some(own) = section(&history, &section_heading) else {
        return vec![format!(
            "CHANGELOG.md's format history has no `{section_heading}` section\nhelp: add it under `## Format history`"
        )];
    };
    let mut out = Vec::new();
    for version in 1..=format.version {
        let heading = format!("#### {} {version}", format.heading);
        match section(&own, &heading) {
            None => out.push(format!(
                "CHANGELOG.md has no entry for {} {version} ({} is {})\n\
                 help: add a heading `{heading}` under `{section_heading}` in `## Format history`, \
                 say what changed, and add a line `- Reads: ...` naming the versions a reader of \
                 {version} still reads",
                format.heading.to_lowercase(),
                format.constant,
                format.version,
            )),
            Some(body) if !body.iter().any(|line| line.starts_with("- Reads:")) => out.push(format!(
                "CHANGELOG.md's entry `{heading}` does not say what its reader reads\n\
                 help: add a line `- Reads: ...` under `{heading}`"
            )),
            Some(_) => {}
        }
    }
    let prefix = format!("#### {} ", format.heading);
    for line in &own {
        let newer = line
            .strip_prefix(&prefix)
            .and_then(|rest| rest.trim().parse::<u32>().ok())
            .is_some_and(|n| n > format.version);
        if newer {
            out.push(format!(
                "CHANGELOG.md has an entry `{}` but the code writes {} ({} is {})\n\
                 help: raise the constant in the same change, or remove the entry",
                line.trim_end(),
                format.version,
                format.constant,
                format.version,
            ));
        }
    }
    out
}

#[test]
fn every_format_version_has_a_changelog_entry() {
    let changelog = include_str!("../CHANGELOG.md");
    let all: Vec<String> = FORMATS.iter().flat_map(|format| problems(changelog, format)).collect();
    assert!(all.is_empty(), "\n{}\n", all.join("\n\n"));
}

#[test]
fn the_changelog_has_a_postgresql_schema_section() {
    let changelog = include_str!("../CHANGELOG.md");
    let lines: Vec<&str> = changelog.lines().collect();
    let history = section(&lines, "## Format history").expect("a format history");
    let postgres = section(&history, "### PostgreSQL schema").expect("a `### PostgreSQL schema` section");
    assert!(postgres.iter().any(|line| line.contains("kars_migrations")), "{postgres:?}");
}

/// The PostgreSQL schema's version (feature `postgres`) is listed like the other formats.
#[cfg(feature = "postgres")]
#[test]
fn the_postgresql_schema_version_has_a_changelog_entry() {
    let version = u32::try_from(kars::workflow::journal::postgres::SCHEMA_VERSION).unwrap();
    let format = Format {
        section: "PostgreSQL schema",
        heading: "PostgreSQL schema",
        constant: "kars::workflow::journal::postgres::SCHEMA_VERSION",
        version,
    };
    let all = problems(include_str!("../CHANGELOG.md"), &format);
    assert!(all.is_empty(), "\n{}\n", all.join("\n\n"));
}

/// A constant raised without an entry is reported with the heading to add; an entry with no
/// `Reads:` line and an entry ahead of the code are reported too.
#[test]
fn a_raised_constant_without_an_entry_says_what_to_add() {
    let changelog = "\
# Changelog
## [Unreleased]
## Format history
### Journal format
#### Journal format 1
- Reads: 1.
#### Journal format 3
- Reads: 1, 3.
### Spec format
#### Spec format 1
No reads line.
";
    let journal =
        |version| Format { section: "Journal format", heading: "Journal format", constant: "JOURNAL_FORMAT", version };
    assert_eq!(problems(changelog, &journal(1)).len(), 1, "format 3 is ahead of the code");
    let raised = problems(changelog, &journal(2));
    assert_eq!(raised.len(), 2, "{raised:?}");
    assert!(raised[0].starts_with("CHANGELOG.md has no entry for journal format 2 (JOURNAL_FORMAT is 2)"));
    assert!(raised[0].contains("help: add a heading `#### Journal format 2` under `### Journal format`"));
    assert!(problems(changelog, &journal(3)).iter().any(|p| p.contains("no entry for journal format 2")));

    let spec = Format { section: "Spec format", heading: "Spec format", constant: "FORMAT_VERSION", version: 1 };
    let unread = problems(changelog, &spec);
    assert_eq!(unread.len(), 1);
    assert!(unread[0].contains("`#### Spec format 1` does not say what its reader reads"), "{unread:?}");

    let model = Format { section: "Model file format", heading: "Model file format", constant: "M", version: 1 };
    assert!(problems(changelog, &model)[0].contains("no `### Model file format` section"));
}
