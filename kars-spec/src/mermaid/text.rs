//! Label text both ways: escaping for mermaid (render) and decoding mermaid text (import).
//!
//! Rules (render):
//! - a line break is written `<br/>`;
//! - `"` is `#quot;`; `<`, `>`, `&`, `|`, `;`, `` ` `` are numeric entities (`#60;` ...), so
//!   mermaid never reads them as HTML, link text, statement ends or markdown strings;
//! - `#` is `#35;` only where mermaid would read it as the start of an entity (`#\w+;`);
//! - `%%`, control characters and whitespace at either end (mermaid trims labels) are numeric
//!   entities;
//! - on a line that holds `style` or `classDef` anywhere, `:` is `#58;`: mermaid rewrites such
//!   lines (it drops their last `;`) before parsing;
//! - the `d` of `direction` is `#100;`: mermaid reads any line holding `direction TB` (or
//!   `LR`, ...) as a direction statement, even inside a quoted label;
//! - a label is written plain (`A[Sprint Planning]`) when it holds only letters, digits, spaces
//!   and `-_.,:!?'/*+→#` (no `--`, `==`, `-.`, `.-`, `::`, no `/` or `\` at an end, no mermaid
//!   keyword as a word); otherwise it is quoted (`A["..."]`).
//!
//! Decoding (import) mirrors mermaid: trim, `<br>`/`<br/>`/`<br />` to a line break, then
//! `#name;` and `#NNN;` entities.

use crate::id::MERMAID_KEYWORDS;

/// Whitespace that JavaScript's `String.prototype.trim` removes, which mermaid applies to labels.
pub(crate) fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{B}' | '\u{C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}' | '\u{FEFF}'
    )
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `rest` (the text after a `#`) starts like an entity: `\w+;`.
fn entity_follows(rest: &str) -> bool {
    let after = rest.trim_start_matches(is_word_char);
    after.len() < rest.len() && after.starts_with(';')
}

/// Whether mermaid would read `line` through its `style`/`classDef` rewrite.
pub(crate) fn needs_colon_guard(parts: &[&str]) -> bool {
    parts.iter().any(|p| p.contains("style") || p.contains("classDef"))
}

/// The text to write between a shape's delimiters (or edge pipes): plain where safe, else quoted.
pub(crate) fn label_text(label: &str, colon_guard: bool) -> String {
    if is_plain(label, colon_guard) {
        return label.replace('\n', "<br/>");
    }
    format!("\"{}\"", quoted_inner(label, colon_guard))
}

/// The escaped text of a label for use between `"` quotes; a lone space for an empty label
/// (mermaid refuses `""` and trims the space away).
pub(crate) fn quoted_inner(label: &str, colon_guard: bool) -> String {
    if label.is_empty() {
        return " ".to_owned();
    }
    let mut out = String::with_capacity(label.len() + 2);
    let chars: Vec<char> = label.chars().collect();
    let first_kept = chars.iter().position(|&c| c == '\n' || !is_js_space(c)).unwrap_or(chars.len());
    let last_kept = chars.iter().rposition(|&c| c == '\n' || !is_js_space(c)).map_or(0, |i| i + 1);
    for (i, (at, c)) in label.char_indices().enumerate() {
        let at_edge = i < first_kept || i >= last_kept;
        let rest = &label[at + c.len_utf8()..];
        match c {
            '\n' => out.push_str("<br/>"),
            '"' => out.push_str("#quot;"),
            '#' if entity_follows(rest) => out.push_str("#35;"),
            '#' => out.push('#'),
            '%' if rest.starts_with('%') || label[..at].ends_with('%') => out.push_str("#37;"),
            ':' if colon_guard => out.push_str("#58;"),
            'd' if label[at..].starts_with("direction") => out.push_str("#100;"),
            '<' | '>' | '&' | '|' | ';' | '`' => push_numeric(&mut out, c),
            c if at_edge || c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}') => {
                push_numeric(&mut out, c);
            }
            c => out.push(c),
        }
    }
    out
}

fn push_numeric(out: &mut String, c: char) {
    out.push('#');
    out.push_str(&u32::from(c).to_string());
    out.push(';');
}

fn is_plain(label: &str, colon_guard: bool) -> bool {
    const SAFE: &str = "-_.,:!?'/*+→# ";
    if label.is_empty() || label.starts_with(is_js_space) || label.ends_with(is_js_space) {
        return false;
    }
    if label.starts_with(['/', '\\']) || label.ends_with(['/', '\\']) || label.contains("\n\n") {
        return false;
    }
    for line in label.split('\n') {
        if line.is_empty() || line.starts_with(is_js_space) || line.ends_with(is_js_space) {
            return false;
        }
    }
    for bad in ["--", "==", "-.", ".-", "::", "  ", "direction"] {
        if label.contains(bad) {
            return false;
        }
    }
    if colon_guard && label.contains(':') {
        return false;
    }
    for (i, c) in label.char_indices() {
        let ok = c == '\n' || c.is_alphanumeric() || SAFE.contains(c);
        if !ok || (c == '#' && entity_follows(&label[i + 1..])) {
            return false;
        }
    }
    !label.split(|c: char| !c.is_alphanumeric()).any(|word| MERMAID_KEYWORDS.contains(&word))
}

/// Decodes a label as mermaid shows it: trimmed, `<br>` variants as line breaks, entities decoded.
pub(crate) fn decode_label(raw: &str) -> String {
    let trimmed = raw.trim_matches(is_js_space);
    let with_breaks = replace_breaks(trimmed);
    decode_entities(&with_breaks)
}

/// Replaces `<br>`, `<br/>`, `<br />` (any case, any spaces before `/`) with `\n`.
fn replace_breaks(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        match br_len(tail) {
            Some(n) => {
                out.push('\n');
                rest = &tail[n..];
            }
            None => {
                out.push('<');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The byte length of a `<br>` tag at the start of `s`, if there is one.
fn br_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    if bytes.len() < 4 || !bytes[1].eq_ignore_ascii_case(&b'b') || !bytes[2].eq_ignore_ascii_case(&b'r') {
        return None;
    }
    let mut i = 3;
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    if bytes.get(i) == Some(&b'/') {
        i += 1;
    }
    (bytes.get(i) == Some(&b'>')).then_some(i + 1)
}

const NAMED: &[(&str, char)] = &[
    ("quot", '"'),
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("apos", '\''),
    ("nbsp", '\u{A0}'),
    ("num", '#'),
    ("semi", ';'),
    ("colon", ':'),
    ("vert", '|'),
    ("verbar", '|'),
    ("lpar", '('),
    ("rpar", ')'),
    ("lsqb", '['),
    ("rsqb", ']'),
    ("lbrack", '['),
    ("rbrack", ']'),
    ("lcub", '{'),
    ("rcub", '}'),
    ("lbrace", '{'),
    ("rbrace", '}'),
    ("grave", '`'),
    ("percnt", '%'),
];

/// Decodes mermaid entities: `#quot;` and the other named ones, and `#NNN;` decimal code points.
/// Anything else is kept as written.
pub(crate) fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('#') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let word = after.chars().take_while(|&c| is_word_char(c)).count();
        let decoded = if word > 0 && after[word..].starts_with(';') { entity(&after[..word]) } else { None };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[word + 1..];
            }
            None => {
                out.push('#');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return name.parse::<u32>().ok().and_then(char::from_u32);
    }
    NAMED.iter().find(|(n, _)| *n == name).map(|&(_, c)| c)
}

/// Whether a style property can be written on a `style` line as is.
pub(crate) fn is_safe_style(key: &str, value: &str) -> bool {
    let key_ok = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let value = value.trim();
    let value_ok = !value.is_empty()
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '#' | '.' | '%' | '(' | ')' | '-' | ' '));
    key_ok && value_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_labels_stay_plain() {
        assert_eq!(label_text("Previous Release\nComplete", false), "Previous Release<br/>Complete");
        assert_eq!(label_text("Create PRs\nfeature/* → kars-dev", false), "Create PRs<br/>feature/* → kars-dev");
        assert_eq!(
            label_text("Announce Code Freeze\n#kars-releases", false),
            "Announce Code Freeze<br/>#kars-releases"
        );
        assert_eq!(label_text("QA Sign-Off\n3:00 PM EST", false), "QA Sign-Off<br/>3:00 PM EST");
    }

    #[test]
    fn hostile_labels_are_quoted_and_escaped() {
        assert_eq!(label_text("say \"hi\"", false), "\"say #quot;hi#quot;\"");
        assert_eq!(label_text("a|b;c", false), "\"a#124;b#59;c\"");
        assert_eq!(label_text("#quot;", false), "\"#35;quot#59;\"");
        assert_eq!(label_text(" x ", false), "\"#32;x#32;\"");
        assert_eq!(label_text("end", false), "\"end\"");
        assert_eq!(label_text("a:b", true), "\"a#58;b\"");
        assert_eq!(label_text("<br/>", false), "\"#60;br/#62;\"");
        assert_eq!(label_text("", false), "\" \"");
        assert_eq!(label_text("set direction TB", false), "\"set #100;irection TB\"");
        assert_eq!(label_text("a@b", false), "\"a@b\"");
    }

    fn unquote(s: &str) -> &str {
        s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
    }

    #[test]
    fn decoding_inverts_escaping() {
        for label in ["say \"hi\"", "a|b;c", "#quot;", " x ", "a\nb", "<br/>", "100%% sure", "`md`", "#x#59;", "\t\r"] {
            assert_eq!(decode_label(unquote(&label_text(label, false))), label, "{label:?}");
            assert_eq!(decode_label(unquote(&label_text(label, true))), label, "{label:?}");
        }
    }

    #[test]
    fn decoding_reads_mermaid_text() {
        assert_eq!(decode_label(" a<br>b<BR />c<br/>d "), "a\nb\nc\nd");
        assert_eq!(decode_label("#quot;x#35;y#unknown;#99999999;"), "\"x#y#unknown;#99999999;");
        assert_eq!(decode_label("é→#128512;"), "é→😀");
    }
}
