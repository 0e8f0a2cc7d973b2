//! `${VAR}`, `${VAR:-default}` and `$${` substitution on the raw text, keeping line numbers.
//!
//! Substitution is textual and happens everywhere, comments included: write `$${` for a
//! literal `${`. A value is inserted as is, so quote it in YAML if it may hold `#` or `: `.
//! `${VAR:-default}` uses the default when `VAR` is unset or empty, as the shell does.

/// A replaced span of one line; columns are 1-based characters, ends exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shift {
    line: usize,
    new_start: usize,
    new_end: usize,
    old_start: usize,
    old_end: usize,
}

/// The text after substitution, and where it moved columns.
#[derive(Debug)]
pub(crate) struct Substituted {
    pub(crate) text: String,
    pub(crate) shifts: Vec<Shift>,
}

/// A substitution that failed, at a 1-based line and column of the original text.
#[derive(Debug)]
pub(crate) struct EnvError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

/// Replaces every `${…}` of `text`, reading variables through `lookup`.
pub(crate) fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Substituted, EnvError> {
    let mut out = Substituted {
        text: String::with_capacity(text.len()),
        shifts: Vec::new(),
    };
    let (mut line, mut col, mut new_col) = (1, 1, 1);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let (consumed, replacement) = if rest.starts_with("$${") {
            (3, "${".to_owned())
        } else if rest.starts_with("${") {
            expand(rest, lookup).map_err(|(message, hint)| EnvError {
                line,
                column: col,
                message,
                hint,
            })?
        } else {
            out.text.push(c);
            rest = &rest[c.len_utf8()..];
            if c == '\n' {
                (line, col, new_col) = (line + 1, 1, 1);
            } else {
                (col, new_col) = (col + 1, new_col + 1);
            }
            continue;
        };
        // `consumed` counts bytes of ASCII syntax plus the name and default.
        let old_len = rest[..consumed].chars().count();
        let new_len = replacement.chars().count();
        out.shifts.push(Shift {
            line,
            new_start: new_col,
            new_end: new_col + new_len,
            old_start: col,
            old_end: col + old_len,
        });
        out.text.push_str(&replacement);
        rest = &rest[consumed..];
        (col, new_col) = (col + old_len, new_col + new_len);
    }
    Ok(out)
}

/// Expands the `${…}` at the start of `rest`: (bytes consumed, value) or (message, hint).
fn expand(
    rest: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(usize, String), (String, Option<String>)> {
    let body = &rest[2..];
    let end = body
        .find(['}', '\n'])
        .filter(|&end| body[end..].starts_with('}'));
    let Some(end) = end else {
        return Err((
            "unterminated `${`: missing `}`".into(),
            Some(ESCAPE_HINT.into()),
        ));
    };
    let (name, default) = match body[..end].split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (&body[..end], None),
    };
    if !is_variable_name(name) {
        let message = format!("invalid environment variable name `{name}`");
        return Err((message, Some(ESCAPE_HINT.into())));
    }
    let value = match (lookup(name), default) {
        (Some(value), Some(default)) if value.is_empty() => default.to_owned(),
        (Some(value), _) => value,
        (None, Some(default)) => default.to_owned(),
        (None, None) => {
            let message = format!("environment variable `{name}` is not set");
            let hint = format!("set it, or give a default: ${{{name}:-value}}");
            return Err((message, Some(hint)));
        }
    };
    if value.contains(['\n', '\r']) {
        let message = format!(
            "environment variable `{name}` holds a line break, which config files do not allow"
        );
        return Err((message, None));
    }
    Ok((2 + end + 1, value))
}

const ESCAPE_HINT: &str = "write `$${` for a literal `${`";

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Maps a column of the substituted text back to the original file; a column inside a
/// substituted value maps to the `$` that produced it.
pub(crate) fn original_column(shifts: &[Shift], line: usize, column: usize) -> usize {
    let mut moved = column;
    for shift in shifts.iter().filter(|shift| shift.line == line) {
        if column < shift.new_start {
            break;
        }
        if column < shift.new_end {
            return shift.old_start;
        }
        moved = (column + shift.old_end).saturating_sub(shift.new_end);
    }
    moved
}
