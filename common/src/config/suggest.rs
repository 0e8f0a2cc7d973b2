//! "Did you mean …?" suggestions for misspelled keys, enum variants and names.

/// Returns the candidate closest to `name`, if one is close enough to be a likely typo.
///
/// A case-insensitive exact match always wins. Otherwise the candidate with the smallest
/// Damerau–Levenshtein distance (optimal string alignment, compared case-insensitively) is
/// returned when that distance is at most `max(1, len / 3)`, `len` being the length of
/// `name` in characters. Ties go to the first candidate.
/// For example `did_you_mean("timeot", ["timeout", "limits"])` is `Some("timeout")`.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wanted: Vec<char> = name.to_lowercase().chars().collect();
    let threshold = (wanted.len() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let other: Vec<char> = candidate.to_lowercase().chars().collect();
        if other == wanted {
            return Some(candidate);
        }
        let distance = osa_distance(&wanted, &other);
        if distance <= threshold && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// [`did_you_mean`] phrased as a hint: "did you mean `users`?".
pub fn did_you_mean_hint<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    did_you_mean(name, candidates).map(|found| format!("did you mean `{found}`?"))
}

/// Optimal string alignment distance: insertions, deletions, substitutions and
/// transpositions of two adjacent characters each cost 1.
fn osa_distance(a: &[char], b: &[char]) -> usize {
    // Three rolling rows: the one two back is needed for transpositions.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Extracts the hint for serde's "unknown field `x`, expected one of `a`, `b`" and
/// "unknown variant `x`, expected `a` or `b`" messages.
pub(crate) fn hint_for_unknown(message: &str) -> Option<String> {
    if !message.starts_with("unknown field") && !message.starts_with("unknown variant") {
        return None;
    }
    // Backticked words: the first is the unknown name, the rest the expected ones.
    let mut quoted = message.split('`').skip(1).step_by(2);
    let name = quoted.next()?;
    did_you_mean_hint(name, quoted)
}
