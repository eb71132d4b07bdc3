//! "Did you mean" suggestions: the closest candidate by edit distance.

/// The candidate closest to `word`, when it is close enough to be a likely typo: equal but for
/// case, or within an edit distance of a third of the word's length (at least 1, at most 3).
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate == word {
            continue;
        }
        let distance =
            if candidate.to_lowercase() == lower { 0 } else { levenshtein(&lower, &candidate.to_lowercase()) };
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// `did you mean `x`?` for the closest candidate, when there is one.
pub(crate) fn help<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    did_you_mean(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// A list of names in backticks: `a`, `b` and `c`; long lists are cut.
pub(crate) fn list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    const MAX: usize = 12;
    let mut out = names.iter().take(MAX).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    if names.len() > MAX {
        out.push_str(&format!(" and {} more", names.len() - MAX));
    }
    if out.is_empty() {
        out.push_str("(none)");
    }
    out
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let next = (row[j] + 1).min(row[j + 1] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("timezon", ["version", "timezone", "name"]), Some("timezone"));
        assert_eq!(did_you_mean("QA", ["qa", "devops"]), Some("qa"));
        assert_eq!(did_you_mean("rol", ["role", "outcome_of", "map"]), Some("role"));
        assert_eq!(did_you_mean("zzzzzz", ["role", "map"]), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
