//! What the simulator's YAML files (models, expectations) share: the parser's message without
//! the location it repeats, so that errors say `file:line:column: message` once.

/// The parser's limits for these files: one document, no anchors or aliases, at most 16 levels
/// of nesting and 20,000 values (what [`parser_message`] says when one is passed).
pub(crate) fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 16;
    budget.max_nodes = 20_000;
    budget.max_aliases = 0;
    budget.max_anchors = 0;
    budget.max_documents = 1;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    options
}

/// The parser's message for `error` without its own location, with a budget breach said in
/// words: `files` names the kind of file (`model files`).
pub(crate) fn parser_message(error: &serde_saphyr::Error, files: &str) -> String {
    let text = error.without_snippet().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    // The parser says where in its own words (`line 3 column 7: ...`); the location says it once.
    let message = match text.split_once(": ") {
        Some((place, rest)) if place.starts_with("line ") => rest,
        _ => text,
    };
    let message = match message.rsplit_once(" at line ") {
        Some((head, tail)) if tail.contains(", column ") => head,
        _ => message,
    };
    if message.starts_with("budget breached") {
        format!(
            "the file goes past a parse limit: {files} take no anchors or aliases, at most 16 levels of nesting and 20,000 values"
        )
    } else {
        message.to_owned()
    }
}

/// Where `error` happened, when the parser knows: line and column from 1.
pub(crate) fn location(error: &serde_saphyr::Error) -> Option<(u64, u64)> {
    error.location().filter(|l| l.line() > 0).map(|at| (at.line(), at.column()))
}
