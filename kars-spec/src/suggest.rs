//! "Did you mean" suggestions: the closest candidate by edit distance.

/// The candidate closest to `word`, when it is close enough to be a likely typo: equal but for
/// case, or within an edit distance of a third of the word's length (at least 1, at most 3).
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate == word {
            continue;
        }
        let distance = if candidate.to_lowercase() == lower { 0 } else { distance(&lower, &candidate.to_lowercase()) };
        // A suggestion that replaces the whole word is a guess, not a typo fix.
        let plausible = distance == 0 || distance < word.chars().count();
        if plausible && distance <= limit && best.is_none_or(|(d, _)| distance < d) {
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
    const MAX: usize = 16;
    let mut out = names.iter().take(MAX).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    if names.len() > MAX {
        out.push_str(&format!(" and {} more", names.len() - MAX));
    }
    if out.is_empty() {
        out.push_str("(none)");
    }
    out
}

/// The optimal string alignment distance: edits, where swapping two neighbours is one edit.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        d[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        d[at(0, j)] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[at(i - 1, j)] + 1).min(d[at(i, j - 1)] + 1).min(d[at(i - 1, j - 1)] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[at(i - 2, j - 2)] + 1);
            }
            d[at(i, j)] = best;
        }
    }
    d[at(a.len(), b.len())]
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
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("taks", "task"), 1);
        assert_eq!(did_you_mean("Q", ["A", "B"]), None);
        assert_eq!(did_you_mean("c", ["A", "C"]), Some("C"));
    }
}
