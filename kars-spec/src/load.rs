//! The loader: bytes or text to a [`Spec`], within explicit budgets, with located diagnostics.
//!
//! Order of work, each step only on what the previous accepted:
//! 1. the size cap ([`MAX_INPUT_BYTES`]) and UTF-8, before any parsing;
//! 2. the fast path ([`crate::fastpath`]): a spec in plain YAML is parsed once, straight into
//!    a [`Spec`], and goes on to step 5. Anything it does not read, and every error, goes on
//!    to step 3, so diagnostics and limits are always those of the full path;
//! 3. one walk over the YAML events ([`crate::locate`]) that indexes every path and rejects
//!    empty input, several documents, tabs, deep nesting, alias bombs and oversized scalars.
//!    It runs first when the text holds a `&` (anchors, hence aliases, are possible) and
//!    otherwise only when there is something to locate;
//! 4. serde-saphyr deserializes the [`Spec`] with budgets on depth, nodes, aliases and anchor
//!    replay, duplicate keys as errors and `deny_unknown_fields` on every struct;
//! 5. the validator, whose diagnostics carry paths that the source map (built now if step 3
//!    did not) turns into lines, columns and excerpts.

use serde_saphyr::{DuplicateKeyPolicy, Error as YamlError, MergeKeyPolicy};

use crate::diagnostic::{Code, Diagnostic, Location, Path, Report, Segment, SourceSpan};
use crate::fastpath;
use crate::locate::{MAX_ALIASES, MAX_DEPTH, MAX_NODES, SourceMap};
use crate::spec::Spec;
use crate::suggest;
use crate::{CheckedSpec, validate};

/// The largest spec kars reads: 1 MiB. The bundled release spec is under 10 KiB.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// Checks the size and encoding of `bytes`, then loads them like [`crate::load`].
///
/// # Errors
/// Returns a [`Report`] when the input is too large, not UTF-8, not a valid spec, or fails a
/// validation rule.
pub fn load_bytes(bytes: &[u8], origin: &str) -> Result<CheckedSpec, Report> {
    check_size(bytes.len(), origin)?;
    let source = std::str::from_utf8(bytes).map_err(|e| Report::new(origin, vec![not_utf8(bytes, &e)]))?;
    load_str(source, origin)
}

fn check_size(len: usize, origin: &str) -> Result<(), Report> {
    if len > MAX_INPUT_BYTES {
        return Err(Report::new(
            origin,
            vec![
                Diagnostic::error(
                    Code::InputTooLarge,
                    format!("the file is {len} bytes, more than the limit of {MAX_INPUT_BYTES} bytes (1 MiB)"),
                )
                .help("a workflow spec is a few kilobytes; is this the right file?"),
            ],
        ));
    }
    Ok(())
}

fn not_utf8(bytes: &[u8], e: &std::str::Utf8Error) -> Diagnostic {
    let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
    let prefix = String::from_utf8_lossy(valid);
    let line = prefix.matches('\n').count() + 1;
    let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
    let before = prefix.get(line_start..).unwrap_or("");
    let column = before.chars().count() + 1;
    let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
    let utf16 = bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]);
    Diagnostic::error(
        Code::NotUtf8,
        format!("the file is not UTF-8 text: byte 0x{byte:02x} at offset {} is not valid UTF-8", e.valid_up_to()),
    )
    .at(Location {
        path: None,
        at_key: false,
        span: Some(SourceSpan { line, column, width: 1, line_text: before.to_owned() }),
    })
    .help(if utf16 {
        "the file looks like UTF-16; save it as UTF-8"
    } else {
        "kars reads specs as UTF-8 text; is this a binary file?"
    })
}

/// Loads `source`: the body of [`crate::load`].
pub(crate) fn load_str(source: &str, origin: &str) -> Result<CheckedSpec, Report> {
    check_size(source.len(), origin)?;
    // A spec in plain YAML is read once by the fast path; anything else, and every error,
    // takes the full path below, whose diagnostics and limits are the reference.
    if let Some(spec) = fastpath::spec(source) {
        return check(spec, source, origin, None);
    }
    let map = |source| SourceMap::build(source).map_err(|d| Report::new(origin, vec![*d]));
    // Anchors need a `&`. Without one no alias can expand, so the guard walk is only needed
    // to explain errors: the common case (a valid spec) parses once.
    let early = if source.contains('&') { Some(map(source)?) } else { None };
    let spec: Spec = match serde_saphyr::from_str_with_options(source, options()) {
        Ok(spec) => spec,
        Err(e) => {
            // The walk's own checks (empty, several documents, tabs, depth) explain best.
            let map = match early {
                Some(m) => m,
                None => map(source)?,
            };
            return Err(Report::new(origin, vec![from_yaml_error(&e, &map)]));
        }
    };
    check(spec, source, origin, early)
}

/// Validates a parsed spec; locates its diagnostics with `early`, or a source map built now
/// when there are some to locate.
fn check(spec: Spec, source: &str, origin: &str, early: Option<SourceMap<'_>>) -> Result<CheckedSpec, Report> {
    let checked = validate::validate(spec);
    let needs_map = match &checked {
        Ok(c) => !c.warnings().is_empty(),
        Err(_) => true,
    };
    let map = match early {
        Some(m) => Some(m),
        None if needs_map => Some(SourceMap::build(source).map_err(|d| Report::new(origin, vec![*d]))?),
        None => None,
    };
    match (checked, map) {
        (Ok(checked), None) => Ok(checked.with_warnings(origin, Vec::new())),
        (Ok(checked), Some(map)) => {
            let warnings = locate_all(checked.warnings().to_vec(), &map);
            Ok(checked.with_warnings(origin, warnings))
        }
        (Err(report), Some(map)) => Err(Report::new(origin, locate_all(report.into_diagnostics(), &map))),
        (Err(report), None) => Err(Report::new(origin, report.into_diagnostics())),
    }
}

fn locate_all(mut diagnostics: Vec<Diagnostic>, map: &SourceMap<'_>) -> Vec<Diagnostic> {
    for d in &mut diagnostics {
        if let Some(location) = &mut d.location {
            map.resolve(location);
        }
        for label in &mut d.labels {
            map.resolve(&mut label.location);
        }
    }
    diagnostics
}

/// The serde-saphyr options: every budget explicit, sized for specs of up to 1 MiB.
pub(crate) fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(MAX_INPUT_BYTES),
            max_events: 4 * MAX_NODES,
            max_aliases: MAX_ALIASES,
            max_anchors: MAX_ALIASES,
            max_recorded_anchor_events: MAX_NODES,
            max_recorded_anchor_bytes: MAX_INPUT_BYTES,
            max_depth: MAX_DEPTH,
            max_documents: 1,
            max_nodes: MAX_NODES,
            max_total_scalar_bytes: 4 * MAX_INPUT_BYTES,
            max_merge_keys: MAX_ALIASES,
        },
        duplicate_keys: DuplicateKeyPolicy::Error,
        merge_keys: MergeKeyPolicy::Error,
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_NODES,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: MAX_ALIASES,
        },
        with_snippet: false,
    }
}

/// What a mapping under a top-level section holds, for messages about its keys.
fn item_kind(path: &Path) -> Option<&'static str> {
    match path.0.as_slice() {
        [Segment::Key(section), _] => Some(match section.as_str() {
            "nodes" => "node",
            "roles" => "role",
            "team" => "person",
            "channels" => "channel",
            "branches" => "branch",
            "environments" => "environment",
            "windows" => "window",
            "phases" => "phase",
            _ => return None,
        }),
        _ => None,
    }
}

fn from_yaml_error(error: &YamlError, map: &SourceMap<'_>) -> Diagnostic {
    let error = error.without_snippet();
    let location = error
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| map.locate(usize::try_from(l.line()).unwrap_or(0), usize::try_from(l.column()).unwrap_or(0)));
    let d = match error {
        YamlError::AliasError { error, .. } => return from_yaml_error(error, map),
        YamlError::SerdeUnknownField { field, expected, .. } => {
            Diagnostic::error(Code::UnknownField, format!("unknown field `{field}`")).label("not a field here").help(
                suggest::help(field, expected.iter().copied())
                    .unwrap_or_else(|| format!("expected one of {}", suggest::list(expected.iter().copied()))),
            )
        }
        YamlError::SerdeMissingField { field, .. } => {
            return missing_field(field, error, map);
        }
        YamlError::SerdeUnknownVariant { variant, expected, .. } => {
            let d = Diagnostic::error(Code::InvalidValue, format!("unknown value `{variant}`"))
                .help(format!("expected one of {}", suggest::list(expected.iter().copied())));
            match suggest::help(variant, expected.iter().copied()) {
                Some(h) => Diagnostic { help: vec![h], ..d },
                None => d,
            }
        }
        YamlError::DuplicateMappingKey { key, .. } => {
            let key = key.clone().unwrap_or_else(|| "?".to_owned());
            let path = location.as_ref().and_then(|l| l.path.clone()).unwrap_or_default();
            let message = match item_kind(&path) {
                Some(kind) => format!("{kind} `{key}` is defined twice"),
                None => format!("the key `{key}` appears twice in the same mapping"),
            };
            let mut first = Location::key(path);
            map.resolve(&mut first);
            Diagnostic::error(Code::DuplicateKey, message)
                .label("defined again here")
                .with_label(first, "first defined here")
                .help("each key may appear once in a mapping; remove or rename one of them")
        }
        YamlError::Message { msg, .. } => Diagnostic::error(Code::InvalidValue, msg.clone()),
        YamlError::SerdeInvalidType { unexpected, expected, .. } => {
            Diagnostic::error(Code::InvalidValue, format!("expected {expected}, found {unexpected}"))
        }
        YamlError::SerdeInvalidValue { unexpected, expected, .. } => {
            Diagnostic::error(Code::InvalidValue, format!("invalid value {unexpected}, expected {expected}"))
        }
        YamlError::SerdeInvalidLength { len, expected, .. } => {
            Diagnostic::error(Code::InvalidValue, format!("{len} elements, expected {expected}"))
        }
        YamlError::InvalidScalar { ty, .. } => {
            Diagnostic::error(Code::InvalidValue, format!("expected {}", describe(ty)))
        }
        YamlError::Unexpected { expected, .. } => {
            let at_root = location.as_ref().and_then(|l| l.path.as_ref()).is_none_or(Path::is_root);
            if at_root && *expected == "mapping start" {
                Diagnostic::error(Code::InvalidValue, "a spec is a mapping of fields, not a single value")
                    .help("a spec starts with `version: 1`, then `name`, `timezone`, `nodes` and `edges`")
            } else {
                Diagnostic::error(Code::InvalidValue, format!("expected {expected}"))
            }
        }
        YamlError::NullIntoString { .. } => Diagnostic::error(Code::InvalidValue, "expected a string, found nothing"),
        YamlError::Budget { breach, .. } => {
            Diagnostic::error(Code::Limit, format!("the spec exceeds a loader limit ({})", describe_breach(breach)))
        }
        YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayStackDepthExceeded { .. }
        | YamlError::AliasReplayCounterOverflow { .. } => {
            Diagnostic::error(Code::Limit, "aliases expand to more data than a spec may hold")
                .help("a spec rarely needs aliases; write the values out")
        }
        YamlError::MultipleDocuments { .. } => {
            Diagnostic::error(Code::SeveralDocuments, "the file holds more than one YAML document")
        }
        YamlError::Eof { .. } => Diagnostic::error(Code::Empty, "the file is empty"),
        YamlError::InvalidUtf8Input => Diagnostic::error(Code::NotUtf8, "the file is not UTF-8 text"),
        YamlError::MergeKeyNotAllowed { .. } => {
            Diagnostic::error(Code::Syntax, "merge keys (`<<`) are not allowed in a spec")
                .help("write the merged fields out")
        }
        other => {
            let text = other.to_string();
            let text = text.rfind(" at line ").map_or(text.as_str(), |i| text.get(..i).unwrap_or(&text));
            Diagnostic::error(Code::Syntax, text.to_owned())
        }
    };
    match location {
        Some(location) => d.at(location),
        None => d,
    }
}

/// A missing field: serde reports it where the mapping ends, so point at the mapping's key.
fn missing_field(field: &str, error: &YamlError, map: &SourceMap<'_>) -> Diagnostic {
    let d = Diagnostic::error(Code::MissingField, format!("missing field `{field}`"));
    let Some(l) = error.location().filter(|l| l.line() > 0) else { return d };
    let found = map.locate(usize::try_from(l.line()).unwrap_or(0), usize::try_from(l.column()).unwrap_or(0));
    // The error position is the mapping's first key or its end; its path is a child of the
    // mapping that lacks the field, or the mapping itself.
    let owner = match found.path {
        Some(mut path) if found.at_key => {
            path.0.pop();
            path
        }
        Some(path) => path,
        None => Path::root(),
    };
    let label = if owner.is_root() { "the document".to_owned() } else { format!("`{owner}`") };
    let mut location = if owner.is_root() { map.point(1, 1) } else { Location::key(owner.clone()) };
    if !owner.is_root() {
        map.resolve(&mut location);
    } else {
        location.path = Some(owner);
    }
    d.at(location).label(format!("{label} needs a `{field}` field"))
}

fn describe(ty: &str) -> String {
    match ty {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "bool" => "`true` or `false`".to_owned(),
        other => format!("a value of type {other}"),
    }
}

fn describe_breach(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Depth { .. } => format!("nesting deeper than {MAX_DEPTH} levels"),
        B::Nodes { .. } | B::Events { .. } => format!("more than {MAX_NODES} YAML nodes"),
        B::Aliases { .. } | B::Anchors { .. } | B::AliasAnchorRatio { .. } => {
            format!("more than {MAX_ALIASES} aliases or anchors")
        }
        B::InputBytes { .. } => format!("more than {MAX_INPUT_BYTES} bytes"),
        B::Documents { .. } => "more than one document".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    }
}
