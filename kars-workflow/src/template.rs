//! Message templates: `{release}`, `{workflow}`, `{node}`, `{label}` and `{deadline}`.

/// The values a template may use.
pub(crate) struct Vars<'a> {
    pub(crate) release: &'a str,
    pub(crate) workflow: &'a str,
    pub(crate) node: &'a str,
    pub(crate) label: &'a str,
    pub(crate) deadline: Option<&'a str>,
}

/// Expands every known `{name}` in `template`; unknown names and a `{deadline}` for a node
/// without one are left as written, so the reader sees what was not filled in.
pub(crate) fn expand(template: &str, vars: &Vars<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    // Braces are ASCII, so byte positions found in the bytes are char boundaries.
    while let Some(open) = rest.bytes().position(|b| b == b'{') {
        let (before, after) = rest.split_at(open);
        out.push_str(before);
        let Some(close) = after.bytes().position(|b| b == b'}') else {
            out.push_str(after);
            return out;
        };
        let name = after.get(1..close).unwrap_or("");
        let value = match name {
            "release" => Some(vars.release),
            "workflow" => Some(vars.workflow),
            "node" => Some(vars.node),
            "deadline" => vars.deadline,
            "label" => {
                // Line breaks in a label become spaces.
                let mut lines = vars.label.split('\n');
                if let Some(first) = lines.next() {
                    out.push_str(first);
                }
                for line in lines {
                    out.push(' ');
                    out.push_str(line);
                }
                rest = after.get(close + 1..).unwrap_or("");
                continue;
            }
            _ => None,
        };
        match value {
            Some(v) => out.push_str(v),
            None => out.push_str(after.get(..=close).unwrap_or("")),
        }
        rest = after.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_names_and_keeps_the_rest() {
        let vars = Vars {
            release: "2026-W48",
            workflow: "kars-release",
            node: "Q",
            label: "QA Sign-Off\n3:00 PM EST",
            deadline: None,
        };
        assert_eq!(
            expand("{release} {workflow} {node}: {label} by {deadline} {other} {", &vars),
            "2026-W48 kars-release Q: QA Sign-Off 3:00 PM EST by {deadline} {other} {"
        );
        let with = Vars { deadline: Some("2026-11-27 15:00 EST"), ..vars };
        assert_eq!(expand("by {deadline}.", &with), "by 2026-11-27 15:00 EST.");
        assert_eq!(expand("é{release}ü", &with), "é2026-W48ü");
        let lines = Vars { label: "\nA\n\nB\n", ..vars };
        assert_eq!(expand("[{label}] {label", &lines), "[ A  B ] {label");
    }
}
